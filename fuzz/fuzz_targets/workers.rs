//! Differential: the flow-worker pipeline against one engine. The input is a sequence of
//! frames in the `frame` target's format; the same frames go to one `Engine` and to
//! `workers::run` with 3 workers. Alert records must be the same, in the same order, and so
//! must every counter but the per-worker ones and the split flow capacity (the flow table
//! is large enough that no worker evicts, where results may differ by design).
#![no_main]

use fivewatch::config::Config;
use fivewatch::pipeline::workers::{self, PipelineOptions};
use fivewatch::pipeline::Engine;
use libfuzzer_sys::fuzz_target;

#[path = "../common/frames.rs"]
mod frames;

fn config() -> Config {
    let mut cfg = Config::default();
    cfg.flow.capacity = 1 << 16;
    cfg.detect.syn_flood.max_tracked_hosts = 16;
    cfg.detect.syn_flood.max_tracked_ports = 16;
    cfg.detect.port_scan.max_tracked_sources = 16;
    cfg.detect.port_scan.max_tracked_probes = 256;
    cfg.session.capacity = 16;
    cfg
}

fuzz_target!(|data: &[u8]| {
    let input = frames::parse(data, 4096);
    let cfg = config();
    let mut engine = Engine::new(&cfg, "fuzz".into());
    let mut one = Vec::new();
    for f in &input {
        engine.process(f);
        one.extend(engine.take_records().map(|r| r.to_json()));
    }
    engine.finish();
    one.extend(engine.take_records().map(|r| r.to_json()));
    let opts = PipelineOptions {
        workers: 3,
        queue_batches: 2,
        lossless: true,
        flow_records: false,
        sensor: "fuzz".into(),
        timing: None,
    };
    let mut many = Vec::new();
    let ((), mut s) = workers::run(&cfg, &opts, &mut |r| many.push(r.to_json()), &mut |_| {}, |d| {
        input.iter().for_each(|f| d.process(f))
    })
    .expect("threads start");
    assert_eq!(one, many, "alert records");
    let e = engine.stats();
    s.worker_packets.clear();
    s.worker_queue_drops.clear();
    s.worker_control_drops.clear();
    s.flow_capacity = e.flow_capacity;
    assert_eq!(&s, e, "counters");
});
