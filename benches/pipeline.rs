//! Criterion benchmarks: decode (plain TCP, GTP-U with PDU Session Container), flow-table
//! update, each detector on its own, the session-table lookup of a G-PDU, and the whole
//! engine (decode → flows → detectors → alerts) over captures loaded into memory. Figures are per packet; `cargo bench` prints them and throughput in
//! elements (packets) per second.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fivewatch::capture::file::FileSource;
use fivewatch::capture::{Frame, LinkType};
use fivewatch::config::Config;
use fivewatch::decode::{decode, Decoded};
use fivewatch::flow::table::Timeouts;
use fivewatch::flow::{FlowKey, FlowTable};
use fivewatch::pipeline::Engine;
use fivewatch::session::{SessionConfig, SessionTable, TeidState, TunnelState};

#[path = "../tests/common/frames.rs"]
mod frames;

use frames::{ether, gtpu, ipv4, tcp};

/// Ethernet / IPv4 / UDP 2152 / GTP-U (PDU Session Container UL, QFI 9) / IPv4 / TCP SYN.
fn gtpu_frame() -> Vec<u8> {
    gtpu(
        [192, 168, 1, 10],
        [192, 168, 1, 20],
        1,
        Some((1, 9)),
        ipv4(6, [10, 45, 0, 2], [8, 8, 8, 8], &tcp(40000, 443, 0x02)),
    )
}

fn load(path: &str) -> Vec<(u64, LinkType, Vec<u8>, u32)> {
    let mut v = Vec::new();
    let mut src = FileSource::open(Path::new(path)).expect("bundled capture opens");
    let _ = src.for_each(|f| v.push((f.ts_ns, f.linktype, f.data.to_vec(), f.wire_len)));
    v
}

fn bench_decode(c: &mut Criterion) {
    let plain = ether(ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp(40000, 80, 0x02)));
    let gtp = gtpu_frame();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ethernet_ipv4_tcp", |b| {
        b.iter(|| decode(LinkType::ETHERNET, black_box(&plain)))
    });
    g.bench_function("ethernet_ipv4_udp_gtpu_psc_ipv4_tcp", |b| {
        b.iter(|| decode(LinkType::ETHERNET, black_box(&gtp)))
    });
    // The pipeline's path: the packet written in place into a buffer that is reused.
    let mut out = fivewatch::decode::Packet::EMPTY;
    g.bench_function("ethernet_ipv4_udp_gtpu_psc_ipv4_tcp_in_place", |b| {
        b.iter(|| {
            if let Ok(fivewatch::decode::link::Network::Ip(ip)) =
                fivewatch::decode::link::network_layer(LinkType::ETHERNET, black_box(&gtp))
            {
                let _ = fivewatch::decode::ip::decode_ip_into(ip, Some(0), &mut out);
            }
            black_box(&out);
        })
    });
    g.finish();
}

/// `n` decoded TCP SYNs, each of its own flow: from `10.<net>.x.y`, port 1024 up, to
/// 10.0.0.2:80.
fn syn_packets(n: u32, net: u8) -> Vec<fivewatch::decode::Packet> {
    (0..n)
        .map(|i| {
            let f = ether(ipv4(
                6,
                [10, net, (i >> 8) as u8, i as u8],
                [10, 0, 0, 2],
                &tcp((i >> 16) as u16 + 1024, 80, 0x02),
            ));
            match decode(LinkType::ETHERNET, &f) {
                Ok(Decoded::Ip(p)) => p,
                _ => unreachable!("benchmark packet decodes"),
            }
        })
        .collect()
}

fn bench_flow_table(c: &mut Criterion) {
    const S: u64 = 1_000_000_000;
    let timeouts = Timeouts {
        tcp_new_ns: 30 * S,
        tcp_established_ns: 300 * S,
        tcp_closed_ns: 10 * S,
        udp_ns: 60 * S,
        other_ns: 30 * S,
    };
    let mut g = c.benchmark_group("flow_table_update");
    g.throughput(Throughput::Elements(1));
    for flows in [1_000u32, 100_000] {
        let pkts = syn_packets(flows, 1);
        let mut table = FlowTable::new(flows as usize * 2, timeouts);
        let mut i = 0usize;
        g.bench_function(format!("{flows}_flows"), |b| {
            b.iter(|| {
                let p = &pkts[i % pkts.len()];
                i += 1;
                let (k, ab) = FlowKey::of_packet(p);
                black_box(table.update(p, &k, ab, S, &mut |_, _| {}));
            })
        });
    }
    // A full table of flows with week-long timeouts, each packet a new flow (twice as many
    // keys as room, cycled) evicting one, 1 ms of capture time apart, the engine's expiry
    // call once per second: eviction must find the earliest deadline without walking the
    // table (it once moved every flow on by one bucket per second).
    let week = Timeouts {
        tcp_new_ns: 7 * 86_400 * S,
        tcp_established_ns: 7 * 86_400 * S,
        tcp_closed_ns: 7 * 86_400 * S,
        udp_ns: 7 * 86_400 * S,
        other_ns: 7 * 86_400 * S,
    };
    let pkts = syn_packets(200_000, 2);
    let mut table = FlowTable::new(100_000, week);
    let (mut i, mut next_tick) = (0u64, 0u64);
    g.bench_function("eviction_at_capacity_week_timeouts", |b| {
        b.iter(|| {
            let p = &pkts[(i % pkts.len() as u64) as usize];
            let ts = S + i * 1_000_000;
            i += 1;
            if ts >= next_tick {
                table.expire(ts, &mut |_, _| {});
                next_tick = ts - ts % S + S;
            }
            let (k, ab) = FlowKey::of_packet(p);
            black_box(table.update(p, &k, ab, ts, &mut |_, _| {}));
        })
    });
    g.finish();
}

/// `n` TCP SYNs (a flow each) through a flow table, kept with the flow-table verdict and the
/// flow as the detectors receive them: `src(i)` → `dst(i)`.
fn detector_inputs(
    n: u32,
    src: impl Fn(u32) -> ([u8; 4], u16),
    dst: impl Fn(u32) -> ([u8; 4], u16),
) -> Vec<DetectorInput> {
    let timeouts = Config::default().timeouts();
    let mut table = FlowTable::new(n as usize * 2, timeouts);
    (0..n)
        .map(|i| {
            let ((s, sp), (d, dp)) = (src(i), dst(i));
            let f = ether(ipv4(6, s, d, &tcp(sp, dp, 0x02)));
            let Ok(Decoded::Ip(p)) = decode(LinkType::ETHERNET, &f) else {
                unreachable!("benchmark packet decodes")
            };
            let (k, ab) = FlowKey::of_packet(&p);
            let u = table.update(&p, &k, ab, 1, &mut |_, _| {});
            let flow = table.get(u.slot).expect("flow just updated");
            (p, u, fivewatch::detect::FlowView::of(flow))
        })
        .collect()
}

type DetectorInput = (
    fivewatch::decode::Packet,
    fivewatch::flow::table::Update,
    fivewatch::detect::FlowView,
);

/// Benchmark `on_packet` over `inputs` in turn, capture time advancing 1 µs per packet and
/// `pass_jump_ns` more at the start of every pass over them (past every detector window
/// when it is 120 s: every pass then sees new connections, as the first did, instead of
/// repeats of remembered ones).
fn detector_loop(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    inputs: &[DetectorInput],
    pass_jump_ns: u64,
    mut on_packet: impl FnMut(
        &fivewatch::decode::Packet,
        &fivewatch::flow::table::Update,
        &fivewatch::detect::FlowView,
        u64,
    ),
) {
    let (mut i, mut ts) = (0usize, 1_700_000_000_000_000_000u64);
    g.bench_function(name, |b| {
        b.iter(|| {
            if i % inputs.len() == 0 {
                ts += pass_jump_ns;
            }
            let (p, u, f) = &inputs[i % inputs.len()];
            i += 1;
            ts += 1_000;
            on_packet(black_box(p), u, f, ts);
        })
    });
}

/// Clients, as in a 5G user plane: 4096 sources opening TCP connections to servers on port
/// 443, 40 each, the servers picked among 4096 with a Zipf-like popularity (index
/// `4096·u²`), each SYN followed by its SYN-ACK. Returns the inputs in order (SYN, SYN-ACK,
/// SYN, ...) through one flow table, so that the detectors see new flows and first replies.
fn client_inputs() -> Vec<DetectorInput> {
    const SOURCES: u32 = 4096;
    const CONNECTIONS: u32 = 40;
    let timeouts = Config::default().timeouts();
    let mut table = FlowTable::new((SOURCES * CONNECTIONS) as usize * 2, timeouts);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::new();
    for i in 0..SOURCES * CONNECTIONS {
        let ue = i % SOURCES;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let u = (rng >> 11) as f64 / (1u64 << 53) as f64;
        let server = (4096.0 * u * u) as u32;
        let client = [10, 45, (ue >> 8) as u8, ue as u8];
        let srv = [198, 18, (server >> 8) as u8, server as u8];
        let sport = 1024 + (i / SOURCES) as u16;
        for f in [
            ether(ipv4(6, client, srv, &tcp(sport, 443, 0x02))),
            ether(ipv4(6, srv, client, &tcp(443, sport, 0x12))),
        ] {
            let Ok(Decoded::Ip(p)) = decode(LinkType::ETHERNET, &f) else {
                unreachable!("benchmark packet decodes")
            };
            let (k, ab) = FlowKey::of_packet(&p);
            let u = table.update(&p, &k, ab, 1, &mut |_, _| {});
            let flow = table.get(u.slot).expect("flow just updated");
            out.push((p, u, fivewatch::detect::FlowView::of(flow)));
        }
    }
    out
}

fn bench_detectors(c: &mut Criterion) {
    const N: u32 = 65_536;
    let cfg = Config::default();
    let mut g = c.benchmark_group("detector");
    g.throughput(Throughput::Elements(1));
    // A spoofed SYN flood: every packet a new source towards one victim port.
    let flood = detector_inputs(
        N,
        |i| ([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 40000),
        |_| ([192, 0, 2, 1], 80),
    );
    // A vertical scan: one source, a new destination port per packet.
    let scan = detector_inputs(
        N,
        |_| ([10, 0, 0, 9], 40000),
        |i| ([192, 0, 2, 1], (i % 65535) as u16 + 1),
    );
    let syn_flood = cfg.syn_flood().expect("enabled by default");
    let port_scan = cfg.port_scan().expect("enabled by default");
    for (input, inputs) in [("spoofed_flood", &flood), ("port_scan", &scan)] {
        let mut d = fivewatch::detect::syn_flood::SynFlood::new(syn_flood.clone());
        detector_loop(&mut g, &format!("syn_flood/{input}"), inputs, 0, |p, u, f, ts| {
            d.on_packet(p, u, f, ts)
        });
        let mut d = fivewatch::detect::port_scan::PortScan::new(port_scan.clone());
        detector_loop(&mut g, &format!("port_scan/{input}"), inputs, 0, |p, u, f, ts| {
            d.on_packet(p, u, f, ts)
        });
    }
    let clients = client_inputs();
    let mut d = fivewatch::detect::syn_flood::SynFlood::new(syn_flood.clone());
    detector_loop(&mut g, "syn_flood/clients", &clients, 120_000_000_000, |p, u, f, ts| {
        d.on_packet(p, u, f, ts)
    });
    let mut d = fivewatch::detect::port_scan::PortScan::new(port_scan.clone());
    detector_loop(&mut g, "port_scan/clients", &clients, 120_000_000_000, |p, u, f, ts| {
        d.on_packet(p, u, f, ts)
    });
    g.finish();
}

/// The per-G-PDU session lookup, (UPF address, TEID) → session, in a table built from the
/// Open5GS 5G SA capture's PFCP messages: a TEID with a session, and one without.
fn bench_session_lookup(c: &mut Criterion) {
    let mut table = SessionTable::new(SessionConfig::default());
    for (ts, lt, data, _) in load("tests/data/5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng") {
        let Ok(Some(l4)) = fivewatch::decode::outer_l4(lt, &data) else {
            continue;
        };
        if l4.src_port == 8805 || l4.dst_port == 8805 {
            let _ = table.on_pfcp(l4.src, l4.dst, l4.payload, ts);
        }
    }
    let upf: std::net::IpAddr = [127, 0, 0, 7].into();
    assert!(matches!(table.lookup_teid(upf, 1, u64::MAX), TeidState::Known(_)));
    let mut g = c.benchmark_group("session_lookup");
    g.throughput(Throughput::Elements(1));
    // The per-packet path: hash the tunnel key, then read its index entry.
    for (name, teid) in [("known", 1u32), ("unmapped", 0xdead_beef)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let teid = black_box(teid);
                let h = table.tunnel_hash(upf, teid);
                matches!(table.lookup_tunnel(h, upf, teid, u64::MAX), TunnelState::Known(_))
            })
        });
    }
    g.finish();
}

/// The frames of a loaded capture.
fn frames_of(v: &[(u64, LinkType, Vec<u8>, u32)]) -> impl Iterator<Item = Frame<'_>> {
    v.iter().map(|(ts, lt, data, wire)| Frame {
        ts_ns: *ts,
        linktype: *lt,
        data,
        wire_len: *wire,
    })
}

/// One engine over `frames` from start to finish; the number of alert records.
fn engine_run(cfg: &Config, frames: &[(u64, LinkType, Vec<u8>, u32)]) -> usize {
    let mut e = Engine::new(cfg, "bench".into());
    frames_of(frames).for_each(|f| e.process(&f));
    e.finish();
    e.take_records().count()
}

fn bench_engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    for name in [
        "syn-flood-spoofed-sources.pcap",
        "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng",
        "epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng",
    ] {
        let frames = load(&format!("tests/data/{name}"));
        g.throughput(Throughput::Elements(frames.len() as u64));
        let cfg = Config::default();
        g.bench_function(name, |b| b.iter(|| black_box(engine_run(&cfg, &frames))));
    }
    g.finish();
}

/// The whole pipeline on an in-memory capture: the srsENB/Open5GS EPC capture (GTP-U user
/// traffic of one eNB, GTPv2-C, PFCP-free) repeated 40 times with capture time shifted so it
/// keeps moving forward, in one engine and with 1 and 2 flow workers (reader/decode thread,
/// workers, detector thread).
fn bench_workers(c: &mut Criterion) {
    use fivewatch::pipeline::workers::{self, PipelineOptions};
    let one = load("tests/data/epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng");
    let (first, last) = (one.first().map_or(0, |f| f.0), one.last().map_or(0, |f| f.0));
    let span = last - first + 1_000_000_000;
    let frames: Vec<_> = (0..40u64)
        .flat_map(|k| {
            one.iter()
                .map(move |(ts, lt, d, w)| (ts + k * span, *lt, d.clone(), *w))
        })
        .collect();
    let cfg = Config::default();
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("epc_x40/engine", |b| b.iter(|| black_box(engine_run(&cfg, &frames))));
    for n in [1usize, 2] {
        let opts = PipelineOptions {
            workers: n,
            queue_batches: 64,
            lossless: true,
            flow_records: false,
            sensor: "bench".into(),
            timing: None,
        };
        g.bench_function(format!("epc_x40/workers_{n}"), |b| {
            b.iter(|| {
                let (_, s) = workers::run(&cfg, &opts, &mut |_| {}, &mut |_| {}, |d| {
                    frames_of(&frames).for_each(|f| d.process(&f))
                })
                .expect("threads start");
                black_box(s.packets)
            })
        });
    }
    g.finish();
}

/// The two ways of building the cross-worker detector views that issue 4 asks to compare,
/// each with 2 worker threads making 1 M updates in all (a SYN flood):
/// - `ordered_merge`: what fivewatch does — each worker appends its detector input (216
///   bytes: packet, flow update, flow view) to a batch of 256 and sends the batch to one
///   detector thread, which reads every input (there it would feed the detectors, in
///   capture order, identical to one engine);
/// - `dashmap_one_victim` / `dashmap_65536_victims`: a shared concurrent map of
///   per-destination SYN counters that every worker updates in place (one shard lock per
///   update), for a flood towards one victim and one spread over many.
///
/// Time per update (the detector logic itself is not included in either).
fn bench_cross_worker(c: &mut Criterion) {
    use dashmap::DashMap;
    use std::net::{IpAddr, Ipv4Addr};
    const UPDATES: u64 = 1 << 20;
    const THREADS: u64 = 2;
    let per = UPDATES / THREADS;
    let mut g = c.benchmark_group("cross_worker");
    g.sample_size(10);
    g.throughput(Throughput::Elements(UPDATES));
    g.bench_function("ordered_merge", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::bounded::<Vec<[u64; 27]>>(64);
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let tx = tx.clone();
                    s.spawn(move || {
                        let mut batch = Vec::with_capacity(256);
                        for i in 0..per {
                            let mut input = [0u64; 27];
                            input[0] = i * THREADS + t;
                            batch.push(input);
                            if batch.len() == 256 {
                                let _ = tx.send(std::mem::replace(&mut batch, Vec::with_capacity(256)));
                            }
                        }
                        let _ = tx.send(batch);
                    });
                }
                drop(tx);
                let mut sum = 0u64;
                for batch in rx {
                    for input in &batch {
                        sum = sum.wrapping_add(black_box(input)[0]);
                    }
                }
                black_box(sum)
            })
        })
    });
    for (name, victims) in [("dashmap_one_victim", 1u64), ("dashmap_65536_victims", 65536)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let map: DashMap<IpAddr, (u64, u64)> = DashMap::new();
                std::thread::scope(|s| {
                    for t in 0..THREADS {
                        let map = &map;
                        s.spawn(move || {
                            for i in 0..per {
                                let v = ((i * THREADS + t) % victims) as u32;
                                let mut e = map.entry(IpAddr::V4(Ipv4Addr::from(0xcb00_7100 + v))).or_default();
                                e.0 += 1;
                                e.1 = i;
                            }
                        });
                    }
                });
                black_box(map.len())
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_cross_worker,
    bench_workers,
    bench_decode,
    bench_flow_table,
    bench_detectors,
    bench_session_lookup,
    bench_engine
);
criterion_main!(benches);
