//! Several flow workers give the results of one engine (issue: "results must be identical
//! for 1 and N workers on the same capture"): the same alert records in the same order, the
//! same flow records (workers end flows in their own order, so records are compared as
//! sorted sets) and the same counters, on every test capture and on captures concatenated
//! into one stream (a capture-time jump back restarts the time base). And the work is
//! really spread: a base station's GTP-U tunnels land on several workers.

mod common;

use std::path::{Path, PathBuf};

use fivewatch::app::{self, AlertSink};
use fivewatch::config::Config;
use serde_json::Value;

/// Pipeline options of the tests: no flow records, no timing.
fn options(workers: usize, queue_batches: usize, lossless: bool) -> fivewatch::pipeline::workers::PipelineOptions {
    fivewatch::pipeline::workers::PipelineOptions {
        workers,
        queue_batches,
        lossless,
        flow_records: false,
        sensor: "test".into(),
        timing: None,
    }
}

/// Alert lines, sorted flow lines and the summary (without wall-clock figures) of a replay
/// of `paths` with `workers` flow workers.
fn replay(paths: &[PathBuf], workers: usize) -> (String, Vec<String>, Value) {
    replay_opts(paths, workers, app::ReplayOptions::default())
}

/// [`replay`] with `opts`.
fn replay_opts(paths: &[PathBuf], workers: usize, opts: app::ReplayOptions) -> (String, Vec<String>, Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (alerts, flows) = (dir.path().join("alerts"), dir.path().join("flows"));
    let mut cfg = Config::default();
    cfg.pipeline.workers = workers;
    let mut sink = AlertSink::open(Some(&alerts), false).expect("alert file");
    let mut flow_sink = AlertSink::open(Some(&flows), false).expect("flow file");
    let summary = app::replay_with(&cfg, paths, &mut sink, Some(&mut flow_sink), opts);
    let mut v = serde_json::to_value(&summary).expect("summary is JSON");
    let obj = v.as_object_mut().expect("summary is an object");
    obj.remove("wall_time_s");
    obj.remove("packets_per_second");
    let preload = obj.remove("preload_time_s");
    assert_eq!(
        preload.is_some_and(|t| t.is_f64()),
        opts.preload,
        "preload_time_s is a number with --preload only"
    );
    // How the packets were spread differs by design; checked on its own below.
    let spread = obj.remove("worker_packets");
    assert_eq!(
        spread.and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0),
        if workers > 1 { workers } else { 0 },
        "per-worker packet counts"
    );
    let read = |p: &Path| std::fs::read_to_string(p).expect("output file");
    let mut flow_lines: Vec<String> = read(&flows).lines().map(str::to_string).collect();
    flow_lines.sort();
    (read(&alerts), flow_lines, v)
}

fn assert_same(paths: &[PathBuf]) {
    let (a1, f1, s1) = replay(paths, 1);
    for n in [2, 3] {
        let (an, fln, sn) = replay(paths, n);
        let name = format!("{paths:?} with {n} workers");
        assert_eq!(s1, sn, "summary of {name}");
        assert_eq!(a1, an, "alert records of {name}");
        assert_eq!(f1.len(), fln.len(), "flow record count of {name}");
        for (x, y) in f1.iter().zip(&fln) {
            assert_eq!(x, y, "flow records of {name}");
        }
    }
}

#[test]
fn every_capture_gives_the_same_results_with_one_two_and_three_workers() {
    let captures = common::all_captures();
    assert!(captures.len() >= 30, "test captures found: {}", captures.len());
    for c in &captures {
        assert_same(std::slice::from_ref(c));
    }
}

#[test]
fn preloaded_captures_give_the_same_results_as_read_ones() {
    // `replay --preload` reads every file into memory before processing: the frames, the
    // per-file packet counts and errors (a truncated file's frames before the damage, a
    // missing file), and so every result must be those of reading while processing.
    let mut paths = common::all_captures();
    paths.push(common::data_dir().join("does-not-exist.pcap"));
    let corrupt = paths
        .iter()
        .filter(|p| p.to_string_lossy().contains("corrupt-truncated-mid-record"))
        .count();
    assert_eq!(corrupt, 1, "the truncated capture is among the inputs");
    let preload = app::ReplayOptions { preload: true };
    for workers in [1, 2] {
        let (a, f, s) = replay(&paths, workers);
        let (ap, fp, sp) = replay_opts(&paths, workers, preload);
        assert_eq!(s, sp, "summary with {workers} workers");
        assert_eq!(a, ap, "alert records with {workers} workers");
        assert_eq!(f, fp, "flow records with {workers} workers");
        let errors = sp["files"]
            .as_array()
            .map_or(0, |fs| fs.iter().filter(|f| !f["error"].is_null()).count());
        assert!(errors >= 2, "the truncated and the missing file report errors: {sp}");
        assert!(sp["alerts"]["syn_flood"].as_u64().unwrap_or(0) >= 1, "{sp}");
    }
}

#[test]
fn alerts_of_floods_and_scans_are_the_same_with_several_workers() {
    // The attack captures must raise their alerts (MANIFEST's expected detections), so the
    // equality above is not an equality of empty outputs.
    for (name, kind) in [
        ("syn-flood-spoofed-sources.pcap", "syn_flood"),
        ("udp-port-scan-3-hosts.pcap", "port_scan"),
    ] {
        let (alerts, _, summary) = replay(&[common::capture(name)], 2);
        assert!(
            alerts.lines().any(|l| l.contains(&format!("\"kind\":\"{kind}\""))),
            "{name}: no {kind} alert with 2 workers"
        );
        assert!(summary["alerts"][kind].as_u64().unwrap_or(0) >= 1, "{name}: {summary}");
    }
}

#[test]
fn concatenated_captures_restart_time_the_same_way() {
    // Files given out of time order: capture time jumps back between them and the engine
    // starts a new time base (flows ended, alerts closed). The workers must do it at the
    // same frame.
    let paths: Vec<PathBuf> = [
        "syn-flood-spoofed-sources.pcap",
        "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng",
        "udp-port-scan-3-hosts.pcap",
        "epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng",
    ]
    .iter()
    .map(|n| common::capture(n))
    .collect();
    let (_, _, s) = replay(&paths, 2);
    assert!(
        s["time_discontinuities"].as_u64().unwrap_or(0) > 0,
        "the concatenation should jump back in time at least once: {s}"
    );
    assert_same(&paths);
}

#[test]
fn one_base_stations_tunnels_spread_over_workers() {
    // The Open5GS 5G SA capture: every G-PDU travels between one gNB and one UPF (one outer
    // address pair), so a hash of the outer addresses would pin them all to one worker; the
    // inner 5-tuple spreads the UEs' flows. Checked through the pipeline's own counters.
    use fivewatch::capture::FileSource;
    use fivewatch::pipeline::workers;
    let cfg = Config::default();
    let opts = options(2, 4, true);
    let path = common::capture("epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng");
    let (frames, stats) = workers::run(&cfg, &opts, &mut |_| {}, &mut |_| {}, |d| {
        let mut n = 0u64;
        FileSource::open(&path)
            .and_then(|mut src| {
                src.for_each(|f| {
                    n += 1;
                    d.process(&f)
                })
            })
            .expect("capture reads");
        n
    })
    .expect("threads start");
    assert_eq!(stats.packets, frames);
    assert_eq!(stats.worker_packets.len(), 2);
    // tshark: 1844 G-PDUs in this capture (tests/gtpc_session.rs), all on one eNB–SGW pair.
    assert_eq!(stats.gtpu[0], 1844, "G-PDUs");
    // The hash is seeded at random per run. The capture's 90 inner flows (one UE) carry 1928
    // packets, the largest 232 each: a worker left with fewer than 150 would need all of the
    // four largest flows and nearly all of the 84 small ones to go the other way.
    for (w, n) in stats.worker_packets.iter().enumerate() {
        assert!(
            *n >= 150,
            "worker {w} got {n} of {frames} packets: {:?}",
            stats.worker_packets
        );
    }
    assert_eq!(stats.worker_queue_drops, vec![0, 0], "replay never drops");
}

#[test]
fn a_lossy_pipeline_drops_whole_batches_and_counts_them_per_worker() {
    // Live capture never waits for a worker: with one queued batch per worker and frames
    // handed over as fast as they can be decoded (a flow worker's work per packet is larger
    // than the dispatcher's: every spoofed SYN creates a flow), batches are dropped and
    // their packets counted against their worker. What was dispatched = what the workers
    // were given (processed or dropped); nothing is lost silently and nothing blocks.
    use fivewatch::capture::Frame;
    use fivewatch::pipeline::workers;
    let frames = common::frames(&common::capture("syn-flood-spoofed-sources.pcap"));
    let (first, last) = (frames[0].ts_ns, frames[frames.len() - 1].ts_ns);
    let span = last - first + 1_000_000_000;
    let cfg = Config::default();
    let opts = options(2, 1, false);
    const REPEAT: u64 = 20;
    let ((), stats) = workers::run(&cfg, &opts, &mut |_| {}, &mut |_| {}, |d| {
        for k in 0..REPEAT {
            for f in &frames {
                d.process(&Frame {
                    ts_ns: f.ts_ns + k * span,
                    linktype: f.linktype,
                    data: &f.data,
                    wire_len: f.data.len() as u32,
                });
            }
        }
    })
    .expect("threads start");
    let n = frames.len() as u64 * REPEAT;
    assert_eq!(stats.packets, n);
    // tshark: every frame of this capture is IPv4/TCP, so every one is dispatched.
    assert_eq!(
        stats.worker_packets.iter().sum::<u64>(),
        n,
        "{:?}",
        stats.worker_packets
    );
    let drops: u64 = stats.worker_queue_drops.iter().sum();
    assert!(drops > 0, "expected queue drops with one batch of queue: {stats:?}");
    assert!(drops < n, "some batches must get through: {drops} of {n}");
    for (w, (d, p)) in stats.worker_queue_drops.iter().zip(&stats.worker_packets).enumerate() {
        assert!(d <= p, "worker {w}: {d} dropped of {p} dispatched");
    }
}

/// Frames handed to one engine and to pipelines of 2, 3 and 7 workers: the counters must be
/// equal (the pipeline's per-worker figures aside).
fn frame((ts, data): &(u64, Vec<u8>)) -> fivewatch::capture::Frame<'_> {
    fivewatch::capture::Frame {
        ts_ns: *ts,
        linktype: fivewatch::capture::LinkType::ETHERNET,
        data: data.as_slice(),
        wire_len: data.len() as u32,
    }
}

fn same_counters(frames: &[(u64, Vec<u8>)]) -> fivewatch::pipeline::Stats {
    use fivewatch::pipeline::workers;
    use fivewatch::pipeline::Engine;
    let cfg = Config::default();
    let mut e = Engine::new(&cfg, "test".into());
    frames.iter().for_each(|f| e.process(&frame(f)));
    e.finish();
    let one = e.stats().clone();
    for n in [2, 3, 7] {
        let opts = options(n, 2, true);
        let ((), mut s) = workers::run(&cfg, &opts, &mut |_| {}, &mut |_| {}, |d| {
            frames.iter().for_each(|f| d.process(&frame(f)))
        })
        .expect("threads start");
        assert_eq!(
            s.worker_packets.iter().sum::<u64>(),
            one.packets - one.non_ip,
            "{n} workers"
        );
        (s.worker_packets, s.worker_queue_drops, s.worker_control_drops) = (vec![], vec![], vec![]);
        // Each worker holds ceil(capacity / N) flows (documented).
        assert_eq!(s.flow_capacity, (one.flow_capacity).div_ceil(n as u64) * n as u64);
        s.flow_capacity = one.flow_capacity;
        assert_eq!(s, one, "{n} workers");
    }
    one
}

#[test]
fn a_first_frame_stamped_zero_starts_every_replicas_learning_period() {
    // One UDP frame at capture time 0, then G-PDUs without a session 61 s later: after the
    // 60 s learning period (`session.learning_period_s`) their TEIDs are `unmapped` — on
    // every worker, not only on the one that got the first frame.
    let mut frames = vec![(
        0u64,
        common::frames::ether(common::frames::ipv4(
            17,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            &common::frames::udp(1000, 53, b"q"),
        )),
    )];
    for i in 0..20u8 {
        let inner = common::frames::ipv4(
            17,
            [10, 45, 0, i],
            [8, 8, 8, 8],
            &common::frames::udp(40000 + u16::from(i), 53, b"q"),
        );
        frames.push((
            61_000_000_000 + u64::from(i),
            common::frames::gtpu([192, 0, 2, 1], [192, 0, 2, 2], 7, None, inner),
        ));
    }
    let s = same_counters(&frames);
    assert_eq!(
        s.gtpu_session_lookups,
        [0, 0, 20, 0],
        "known, unknown, unmapped, ue_mismatch"
    );
}

#[test]
fn junk_on_the_pfcp_port_is_counted_once_whatever_the_worker_count() {
    // Datagrams from UDP port 8805 that are not PFCP (a version-0 header, a length beyond
    // the datagram): each is one `pfcp` decode error and one malformed message of the
    // session table, with 1 worker or 7 — the junk is not given to every replica.
    let mut frames = Vec::new();
    for i in 0..30u16 {
        let junk: &[u8] = if i % 2 == 0 {
            &[0x00, 0x01, 0x00, 0x04, 0, 0, 0, 0]
        } else {
            &[0x21, 0x01, 0xff, 0xff, 0, 0, 1, 0]
        };
        let ip = common::frames::ipv4(
            17,
            [10, 9, 0, (i % 200) as u8],
            [10, 9, 1, 1],
            &common::frames::udp(8805, 30000 + i, junk),
        );
        frames.push((
            1_700_000_000_000_000_000 + u64::from(i) * 1000,
            common::frames::ether(ip),
        ));
    }
    let s = same_counters(&frames);
    assert_eq!(s.sessions.malformed, 30, "{:?}", s.sessions);
    assert_eq!(s.decode_errors_total(), 30);
}
