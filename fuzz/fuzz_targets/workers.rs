//! Differential: the flow-worker pipeline against one engine. The input is a sequence of
//! frames in the `frame` target's format; the same frames go to one `Engine` and to
//! `workers::run` with 3 workers. Alert records must be the same, in the same order, and so
//! must every counter but the per-worker ones and the split flow capacity (the flow table
//! is large enough that no worker evicts, where results may differ by design).
#![no_main]

use fivewatch::capture::{Frame, LinkType};
use fivewatch::config::Config;
use fivewatch::pipeline::workers::{self, PipelineOptions};
use fivewatch::pipeline::Engine;
use libfuzzer_sys::fuzz_target;

/// Same as the `frame` target's.
const LINK_TYPES: [u32; 10] = [1, 113, 276, 101, 12, 228, 229, 0, 108, 147];

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

fn frame<'a>(&(ts_ns, linktype, data): &(u64, LinkType, &'a [u8])) -> Frame<'a> {
    Frame {
        ts_ns,
        linktype,
        data,
        wire_len: data.len() as u32,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut frames: Vec<(u64, LinkType, &[u8])> = Vec::new();
    let mut rest = data;
    let mut ts: u64 = 1_700_000_000_000_000_000;
    while rest.len() >= 4 && frames.len() < 4096 {
        let lt = LinkType(LINK_TYPES[usize::from(rest[0]) % LINK_TYPES.len()]);
        ts = if rest[1] == 0xff {
            ts.saturating_sub(5_000_000_000)
        } else {
            ts.saturating_add(u64::from(rest[1]) * 8_000_000)
        };
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        frames.push((ts, lt, &rest[4..4 + len]));
        rest = &rest[4 + len..];
    }
    let cfg = config();
    let mut engine = Engine::new(&cfg, "fuzz".into());
    let mut one = Vec::new();
    for f in &frames {
        engine.process(&frame(f));
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
        frames.iter().for_each(|f| d.process(&frame(f)))
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
