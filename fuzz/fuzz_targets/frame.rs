//! Frame decoder and the whole per-packet core: the input is a sequence of frames, each
//! `[link-type selector u8][timestamp step u8][length u16 LE][bytes]`; every frame is decoded
//! on its own and then fed to one `Engine` (flow table, detectors, alert lifecycle), so state
//! built by earlier frames is exercised by later ones.
#![no_main]

use fivewatch::config::Config;
use fivewatch::decode;
use fivewatch::pipeline::Engine;
use libfuzzer_sys::fuzz_target;

#[path = "../common/frames.rs"]
mod frames;

/// Default configuration with small tables, so that each run is cheap and capacity limits
/// (eviction, protected entries) are reached by short inputs.
fn config() -> Config {
    let mut cfg = Config::default();
    cfg.flow.capacity = 64;
    cfg.detect.syn_flood.max_tracked_hosts = 16;
    cfg.detect.syn_flood.max_tracked_ports = 16;
    cfg.detect.port_scan.max_tracked_sources = 16;
    cfg.detect.port_scan.max_tracked_probes = 256;
    cfg
}

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new(&config(), "fuzz".into());
    for f in frames::parse(data, usize::MAX) {
        let _ = decode::decode_with(f.linktype, f.data, 2153);
        engine.process(&f);
        engine.take_records().for_each(drop);
    }
    engine.finish();
    engine.take_records().for_each(drop);
});
