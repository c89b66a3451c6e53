//! Criterion benchmarks: decode (plain TCP, GTP-U with PDU Session Container), flow-table
//! update, and the whole engine (decode → flows → detectors → alerts) over captures loaded
//! into memory. Figures are per packet; `cargo bench` prints them and throughput in
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
    g.finish();
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
        let pkts: Vec<_> = (0..flows)
            .map(|i| {
                let f = ether(ipv4(
                    6,
                    [10, 1, (i >> 8) as u8, i as u8],
                    [10, 0, 0, 2],
                    &tcp((i >> 16) as u16 + 1024, 80, 0x02),
                ));
                match decode(LinkType::ETHERNET, &f) {
                    Ok(Decoded::Ip(p)) => p,
                    _ => unreachable!("benchmark packet decodes"),
                }
            })
            .collect();
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
    g.finish();
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
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut e = Engine::new(&Config::default(), "bench".into());
                for (ts, lt, data, wire) in &frames {
                    e.process(&Frame {
                        ts_ns: *ts,
                        linktype: *lt,
                        data,
                        wire_len: *wire,
                    });
                }
                e.finish();
                black_box(e.take_records().count())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decode, bench_flow_table, bench_engine);
criterion_main!(benches);
