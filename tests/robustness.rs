//! Robustness: every capture in tests/data replays without panicking; the corrupt ones end
//! with an error that names the file and the byte offset documented in
//! `tests/data/README.md`, after the complete packets before it were processed; the decoder
//! never panics on arbitrary bytes; flow keys are direction-independent.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fivewatch::app::{self, AlertSink};
use fivewatch::capture::LinkType;
use fivewatch::config::Config;
use fivewatch::decode::{self, Decoded, Packet};
use fivewatch::flow::FlowKey;
use proptest::prelude::*;

/// Rows of the "Corrupt captures" table of tests/data/README.md:
/// (file, complete packets, byte offset where the bad part starts).
fn corrupt_table() -> Vec<(String, u64, u64)> {
    let readme = std::fs::read_to_string(common::data_dir().join("README.md")).unwrap();
    let rows: Vec<(String, u64, u64)> = readme
        .lines()
        .filter(|l| l.starts_with("| `corrupt-"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // | file | made from | complete packets | the incomplete or invalid part starts at byte |
            let file = cells[1].trim_matches('`').to_string();
            let packets = cells[3].parse().unwrap_or_else(|_| panic!("packets cell in {l}"));
            let offset = cells[4]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("offset cell in {l}"));
            (file, packets, offset)
        })
        .collect();
    assert_eq!(rows.len(), 3, "README corrupt-capture table: {rows:?}");
    rows
}

#[test]
fn readme_corrupt_table_is_what_the_brief_says() {
    let mut t = corrupt_table();
    t.sort();
    assert_eq!(
        t,
        [
            ("corrupt-bad-magic.pcap".to_string(), 0, 0),
            ("corrupt-pcapng-truncated-block.pcapng".to_string(), 5, 2848),
            ("corrupt-truncated-mid-record.pcap".to_string(), 8, 926),
        ]
    );
}

/// Every capture file replays without panicking, through the library's replay entry point
/// and the engine directly. Captures with an expected JSON are read completely (tshark
/// read them completely too); corrupt ones end with an error.
#[test]
fn every_capture_replays_without_panic() {
    let corrupt: Vec<String> = corrupt_table().into_iter().map(|r| r.0).collect();
    let all = common::all_captures();
    assert!(all.len() >= 39, "{all:?}");
    for path in &all {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let mut sink = AlertSink::open(None, false).unwrap();
        let s = app::replay(&Config::default(), std::slice::from_ref(path), &mut sink, None);
        let run = common::run_engine(&Config::default(), path);
        assert_eq!(run.stats.packets, s.packets, "{name}");
        match common::expected(&name) {
            Some(e) => {
                assert_eq!(s.files[0].error, None, "{name}");
                assert_eq!(s.files[0].packets, common::u(&e, "frames"), "{name}");
            }
            None => assert!(
                corrupt.contains(&name),
                "{name} has no expected JSON and is not corrupt-*"
            ),
        }
        if corrupt.contains(&name) {
            assert!(s.files[0].error.is_some(), "{name} replayed without error");
        }
    }
}

/// The corrupt captures: an error naming the file and the README's byte offset, and the
/// complete packets before it processed by the engine.
#[test]
fn corrupt_captures_report_file_and_offset_after_earlier_packets() {
    for (name, packets, offset) in corrupt_table() {
        let path = common::capture(&name);
        let mut sink = AlertSink::open(None, false).unwrap();
        let s = app::replay(&Config::default(), std::slice::from_ref(&path), &mut sink, None);
        let f = &s.files[0];
        let err = f.error.as_deref().unwrap_or_else(|| panic!("{name}: no error"));
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        assert!(err.contains(&format!("byte offset {offset}")), "{name}: {err}");
        assert_eq!(f.packets, packets, "{name}: FileReport.packets");
        assert_eq!(s.packets, packets, "{name}: engine packets");
        assert!(s.alert_list.is_empty(), "{name}");

        let run = common::run_engine(&Config::default(), &path);
        assert_eq!((run.packets, run.stats.packets), (packets, packets), "{name}");
        assert!(run.error.unwrap().contains(&format!("byte offset {offset}")));
    }
}

/// Files after a corrupt one are still processed in the same replay.
#[test]
fn replay_continues_after_a_corrupt_file() {
    let files = [
        common::capture("corrupt-truncated-mid-record.pcap"),
        common::capture("vlan-triple-tagged-http.pcap"),
    ];
    let frames = common::u(&common::expected("vlan-triple-tagged-http.pcap").unwrap(), "frames");
    let mut sink = AlertSink::open(None, false).unwrap();
    let s = app::replay(&Config::default(), &files, &mut sink, None);
    assert!(s.files[0].error.is_some());
    assert_eq!(s.files[1].error, None);
    assert_eq!(s.files[1].packets, frames);
    assert_eq!(s.packets, 8 + frames);
}

#[test]
fn special_captures() {
    let cfg = Config::default();
    // Header only: no packets, no flows, no error.
    let r = common::run_engine(&cfg, &common::capture("empty-header-only.pcap"));
    assert_eq!((r.packets, r.stats.packets, r.stats.flows_created), (0, 0, 0));
    assert_eq!(r.error, None);

    // MANIFEST: 62 Ethernet packets on interface 0 and 2 NULL/loopback packets on
    // interface 10 of an 11-IDB pcapng.
    let r = common::run_engine(&cfg, &common::capture("pcapng-8-interfaces-mixed-linktypes.pcapng"));
    let lt = |n: &str| {
        let i = fivewatch::pipeline::LINK_TYPES
            .iter()
            .position(|(x, _)| *x == n)
            .unwrap();
        r.stats.link_types[i]
    };
    assert_eq!((lt("ethernet"), lt("null")), (62, 2));

    // MANIFEST: a fractional-seconds field >= 1e9; timestamps must not go backwards.
    let r = common::run_engine(&cfg, &common::capture("nanosecond-invalid-timestamp-sll.pcap"));
    assert_eq!(r.stats.packets, 3);
    assert_eq!(r.stats.timestamps_backwards, 0);
    assert!(r.stats.last_ts_ns >= r.stats.first_ts_ns);

    // MANIFEST: zero capture duration (10000 packets with one timestamp) must not break rates.
    let r = common::run_engine(&cfg, &common::capture("dhcp-broadcast-flood-zero-duration.pcap"));
    assert_eq!(r.stats.packets, 10000);
    assert_eq!(r.stats.first_ts_ns, r.stats.last_ts_ns);

    // A single record shorter than the Ethernet header.
    let r = common::run_engine(&cfg, &common::capture("truncated-record-snaplen1.pcap"));
    assert_eq!(r.stats.packets, 1);
    assert_eq!(r.stats.decode_errors_total(), 1);
}

/// Link types the decoder handles (and one it does not).
const LINK_TYPES: [u32; 8] = [1, 113, 276, 101, 0, 228, 229, 147];

/// The reverse-direction packet of `p`: addresses, ports and tunnel endpoints swapped; for
/// ICMP request/reply types the counterpart type (Community ID spec's port equivalents).
/// `None` for one-way ICMP messages, which have no reverse packet.
fn reversed(p: &Packet) -> Option<Packet> {
    let mut r = *p;
    std::mem::swap(&mut r.src, &mut r.dst);
    std::mem::swap(&mut r.src_port, &mut r.dst_port);
    if let Some(t) = &mut r.tunnel {
        std::mem::swap(&mut t.outer_src, &mut t.outer_dst);
        std::mem::swap(&mut t.outer_src_port, &mut t.outer_dst_port);
    }
    if let Some((ty, code)) = p.icmp {
        // ICMP: echo, timestamp, info, router, address mask; ICMPv6: echo, MLD,
        // router/neighbour discovery, node information (community-id-spec).
        let pairs: &[(u8, u8)] = if p.proto == 1 {
            &[(8, 0), (13, 14), (15, 16), (10, 9), (17, 18)]
        } else {
            &[(128, 129), (130, 131), (133, 134), (135, 136), (139, 140), (144, 145)]
        };
        let other = pairs
            .iter()
            .find_map(|&(a, b)| (ty == a).then_some(b).or((ty == b).then_some(a)))?;
        r.icmp = Some((other, code));
    }
    Some(r)
}

fn check_symmetric(p: &Packet) {
    let Some(r) = reversed(p) else { return };
    let (k1, d1) = FlowKey::of_packet(p);
    let (k2, d2) = FlowKey::of_packet(&r);
    assert_eq!(k1, k2, "flow key differs for the reverse of {p:?}");
    let same_endpoint = p.src == p.dst && (p.icmp.is_some() || p.src_port == p.dst_port);
    if !same_endpoint {
        assert_ne!(d1, d2, "direction flag not flipped for {p:?}");
    }
}

/// Every IP packet of every capture: the reverse packet has the same flow key.
#[test]
fn flow_key_is_direction_independent_on_real_packets() {
    let mut n = 0;
    for path in common::all_captures() {
        if !path.file_name().unwrap().to_str().unwrap().starts_with("corrupt-") {
            for d in common::decode_all(&path) {
                if let Ok(Decoded::Ip(p)) = d {
                    check_symmetric(&p);
                    n += 1;
                }
            }
        }
    }
    assert!(n > 100_000, "{n}");
}

fn ip_packet_bytes(v6: bool, proto: u8, src: [u8; 16], dst: [u8; 16], frag: u16, l4: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if v6 {
        let plen = l4.len() as u16;
        v.extend_from_slice(&[0x60, 0, 0, 0]);
        v.extend_from_slice(&plen.to_be_bytes());
        v.extend_from_slice(&[proto, 64]);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
    } else {
        let total = (20 + l4.len()) as u16;
        v.extend_from_slice(&[0x45, 0]);
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&[0, 1]);
        v.extend_from_slice(&frag.to_be_bytes());
        v.extend_from_slice(&[64, proto, 0, 0]);
        v.extend_from_slice(&src[..4]);
        v.extend_from_slice(&dst[..4]);
    }
    v.extend_from_slice(l4);
    v
}

/// A raw IP packet: IPv4/IPv6, TCP/UDP/ICMP/ICMPv6/SCTP/other, possibly a fragment,
/// possibly a GTP-U G-PDU (with a PDU Session Container) around an inner packet.
fn arb_ip_packet() -> impl Strategy<Value = Vec<u8>> {
    let inner = (
        any::<bool>(),
        prop::sample::select(vec![6u8, 17, 1, 58, 132, 47]),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        prop::sample::select(vec![0u16, 0x2000, 0x0010]),
        any::<u16>(),
        any::<u16>(),
        prop::sample::select(vec![0u8, 8, 3, 128, 129, 135, 11]),
        prop::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(v6, proto, s, d, frag, sp, dp, ity, tail)| {
            let mut l4 = Vec::new();
            match proto {
                1 | 58 => l4.extend_from_slice(&[ity, 0, 0, 0, 0, 1, 0, 1]),
                _ => {
                    l4.extend_from_slice(&sp.to_be_bytes());
                    l4.extend_from_slice(&dp.to_be_bytes());
                    let len = (8 + tail.len()) as u16;
                    match proto {
                        6 => l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]),
                        17 => l4.extend_from_slice(&[(len >> 8) as u8, len as u8, 0, 0]),
                        _ => l4.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]),
                    }
                }
            }
            l4.extend_from_slice(&tail);
            ip_packet_bytes(v6, proto, s, d, if v6 { 0 } else { frag }, &l4)
        });
    (
        inner,
        any::<bool>(),
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u32>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(inner, tunnel, os, od, teid, qfi, dl)| {
            if !tunnel {
                return inner;
            }
            // GTP-U G-PDU with a PDU Session Container (TS 29.281 §5.2.2.7, TS 38.415).
            let mut g = vec![0x34, 0xff, 0, 0];
            g.extend_from_slice(&teid.to_be_bytes());
            g.extend_from_slice(&[0, 0, 0, 0x85, 1, if dl { 0x00 } else { 0x10 }, qfi & 0x3f, 0]);
            let glen = (g.len() - 8 + inner.len()) as u16;
            g[2..4].copy_from_slice(&glen.to_be_bytes());
            g.extend_from_slice(&inner);
            let ulen = (8 + g.len()) as u16;
            let mut udp = vec![0x08, 0x68, 0x08, 0x68];
            udp.extend_from_slice(&ulen.to_be_bytes());
            udp.extend_from_slice(&[0, 0]);
            udp.extend_from_slice(&g);
            let mut s16 = [0u8; 16];
            let mut d16 = [0u8; 16];
            s16[..4].copy_from_slice(&os);
            d16[..4].copy_from_slice(&od);
            ip_packet_bytes(false, 17, s16, d16, 0, &udp)
        })
}

/// Wrap a raw IP packet in the link header of `lt`.
fn framed(lt: u32, ip: &[u8]) -> Vec<u8> {
    let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
    let et: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let mut f = Vec::new();
    match lt {
        1 => {
            f.extend_from_slice(&[0u8; 12]);
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
            f.extend_from_slice(&et);
        }
        113 => {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
            f.extend_from_slice(&et);
        }
        276 => {
            f.extend_from_slice(&et);
            f.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        0 => f.extend_from_slice(&(if v6 { 30u32 } else { 2u32 }).to_le_bytes()),
        _ => {}
    }
    f.extend_from_slice(ip);
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes of every link type: decode returns, whatever the input.
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(
        lt in prop::sample::select(LINK_TYPES.to_vec()),
        data in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = decode::decode(LinkType(lt), &data);
    }

    /// Structured packets (so that the deeper layers are reached), framed in each link
    /// type, then cut at any length and with any byte overwritten: decode returns.
    #[test]
    fn decode_never_panics_on_damaged_packets(
        lt in prop::sample::select(LINK_TYPES.to_vec()),
        ip in arb_ip_packet(),
        cut in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut f = framed(lt, &ip);
        let _ = decode::decode(LinkType(lt), &f);
        let i = pos.index(f.len());
        f[i] = byte;
        let _ = decode::decode(LinkType(lt), &f);
        f.truncate(cut.index(f.len() + 1));
        let _ = decode::decode(LinkType(lt), &f);
    }

    /// For any decoded IP packet, the reverse-direction packet has the same flow key.
    #[test]
    fn flow_key_is_direction_independent(
        lt in prop::sample::select(vec![1u32, 113, 276, 101, 0, 228, 229]),
        ip in arb_ip_packet(),
    ) {
        if (lt == 228 && ip[0] >> 4 != 4) || (lt == 229 && ip[0] >> 4 != 6) {
            return Ok(());
        }
        let d = decode::decode(LinkType(lt), &framed(lt, &ip));
        prop_assert!(matches!(d, Ok(Decoded::Ip(_))), "{:?}", d);
        if let Ok(Decoded::Ip(p)) = d {
            check_symmetric(&p);
        }
    }

    /// The same property on packets built directly (any addresses and ports).
    #[test]
    fn flow_key_of_constructed_packets_is_direction_independent(
        v6 in any::<bool>(),
        a in any::<[u8; 16]>(),
        b in any::<[u8; 16]>(),
        same in any::<bool>(),
        sp in any::<u16>(),
        dp in any::<u16>(),
        proto in prop::sample::select(vec![6u8, 17, 132, 47]),
    ) {
        let addr = |x: [u8; 16]| if v6 { IpAddr::V6(Ipv6Addr::from(x)) } else { IpAddr::V4(Ipv4Addr::new(x[0], x[1], x[2], x[3])) };
        let (src, dst) = (addr(a), if same { addr(a) } else { addr(b) });
        let d = decode::decode(
            LinkType::RAW,
            &ip_packet_bytes(v6, proto, a, if same { a } else { b }, 0, &[0u8; 20]),
        );
        prop_assert!(matches!(d, Ok(Decoded::Ip(_))));
        if let Ok(Decoded::Ip(mut p)) = d {
            prop_assert_eq!((p.src, p.dst), (src, dst));
            p.src_port = sp;
            p.dst_port = dp;
            check_symmetric(&p);
        }
    }
}
