//! Frame decoder and the whole per-packet core: the input is a sequence of frames, each
//! `[link-type selector u8][timestamp step u8][length u16 LE][bytes]`; every frame is decoded
//! on its own and then fed to one `Engine` (flow table, detectors, alert lifecycle), so state
//! built by earlier frames is exercised by later ones.
#![no_main]

use fivewatch::capture::{Frame, LinkType};
use fivewatch::config::Config;
use fivewatch::decode;
use fivewatch::pipeline::Engine;
use libfuzzer_sys::fuzz_target;

/// Link types the decoder knows, plus one it does not.
const LINK_TYPES: [u32; 10] = [1, 113, 276, 101, 12, 228, 229, 0, 108, 147];

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
    let mut rest = data;
    let mut ts: u64 = 1_700_000_000_000_000_000;
    while rest.len() >= 4 {
        let lt = LinkType(LINK_TYPES[usize::from(rest[0]) % LINK_TYPES.len()]);
        // Steps of up to ~2 s so that ticks, window roll-over and expiry run; 0xff jumps back.
        ts = if rest[1] == 0xff {
            ts.saturating_sub(5_000_000_000)
        } else {
            ts.saturating_add(u64::from(rest[1]) * 8_000_000)
        };
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        let bytes = &rest[4..4 + len];
        rest = &rest[4 + len..];
        let _ = decode::decode_with(lt, bytes, 2153);
        engine.process(&Frame {
            ts_ns: ts,
            linktype: lt,
            data: bytes,
            wire_len: bytes.len() as u32,
        });
        engine.take_records().for_each(drop);
    }
    engine.finish();
    engine.take_records().for_each(drop);
});
