//! Outer IP reassembly ([`fivewatch::reassembly::Reassembler`]) against tshark's on the same
//! captures. Every expected value comes from `tests/data/expected/reassembly/<capture>.json`,
//! made once by `scripts/tshark-reassembly-expected.py` (its docstring gives the command and
//! defines every field).
//!
//! Each frame's IP packet (link layer stripped by `decode::link::network_layer`) is pushed
//! in file order with its capture time, and `expire` runs once per second of capture time as
//! the engine's tick does. Checked per capture: the number of outer fragments; the frames
//! where a datagram completes; for each datagram its rebuilt length, its payload bytes (SHA-1
//! of tshark's `reassembled.data`), and what `decode_ip_with(.., Some(0))` makes of it
//! (protocol, ports, GTP-U TEID and inner ports); that no fragment tshark used was dropped;
//! and that the fragments tshark flags as overlapping (all with identical data in these
//! captures) are exactly the ones counted `duplicate`.
//!
//! Where the definitions differ (none changes a checked value on these captures):
//! - A fragment arriving after its datagram completed (frames 30 and 42 of
//!   `ipv4-fragments-nfs-udp.pcap`, repeats of a last fragment) starts a new datagram here,
//!   which times out; tshark lists it under no reassembly either, and flags nothing.
//! - tshark keeps overlapping fragments with different data (flagging a conflict) and still
//!   reassembles; fivewatch abandons the datagram (RFC 5722). None of these captures has one.
//! - tshark has no reassembly timeout or memory limit; fivewatch's defaults (30 s IPv4, 60 s
//!   IPv6, 4096 datagrams, 16 MiB) are not reached here.
//! - tshark's IPv4 key also includes the VLAN id; these captures have no VLAN tags.

mod common;

use std::collections::BTreeMap;

use fivewatch::capture::FileSource;
use fivewatch::decode::ip::decode_ip_with;
use fivewatch::decode::link::{self, Network};
use fivewatch::decode::Fragment;
use fivewatch::reassembly::{Counter, Outcome, Reassembler, ReassemblyLimits, ReassemblyStats};
use serde_json::Value;
use sha1::{Digest, Sha1};

const CAPTURES: [&str; 5] = [
    "ipv4-fragments-nfs-udp.pcap",
    "ipv6-fragments-mdns-udp.pcap",
    "gtpu-gn-http-outer-ipfrag.pcap",
    "gtpu-ext-hdr-pdcp-outer-ipfrag.pcap",
    "dns-amplification-rrsig-fragmented.pcap",
];

const SEC: u64 = 1_000_000_000;

/// What became of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    NotIp,
    NotFragment,
    Pending,
    Duplicate,
    Complete(Vec<u8>),
    Dropped(&'static str),
}

/// Push every frame of `name`; the outcome per frame (index = frame number - 1) and the
/// final counters.
fn replay(name: &str) -> (Vec<Got>, ReassemblyStats) {
    let mut r = Reassembler::new(&ReassemblyLimits::default());
    let mut got = Vec::new();
    let mut next_tick = 0u64;
    FileSource::open(&common::capture(name))
        .and_then(|mut src| {
            src.for_each(|f| {
                if f.ts_ns >= next_tick {
                    r.expire(f.ts_ns);
                    next_tick = f.ts_ns - f.ts_ns % SEC + SEC;
                }
                let g = match link::network_layer(f.linktype, f.data) {
                    Ok(Network::Ip(ip)) => match r.push(ip, f.ts_ns) {
                        Outcome::NotFragment => Got::NotFragment,
                        Outcome::Pending => Got::Pending,
                        Outcome::Duplicate => Got::Duplicate,
                        Outcome::Complete(p) => Got::Complete(p.to_vec()),
                        Outcome::Dropped(d) => Got::Dropped(d.as_str()),
                    },
                    _ => Got::NotIp,
                };
                got.push(g);
            })
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (got, r.stats().clone())
}

fn uint(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no integer {key:?} in {v}"))
}

fn opt(v: &Value, key: &str) -> Option<u64> {
    v[key].as_u64()
}

fn frames_of(v: &Value, key: &str) -> Vec<usize> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array {key:?}"))
        .iter()
        .map(|x| x.as_u64().expect("frame number") as usize)
        .collect()
}

fn expected(name: &str) -> Value {
    let p = common::data_dir()
        .join("expected")
        .join("reassembly")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("expected JSON parses")
}

fn check_capture(name: &str) {
    let e = expected(name);
    assert_eq!(e["capture"], name);
    let (got, stats) = replay(name);
    assert_eq!(got.len() as u64, uint(&e, "frames"), "{name}: frames");
    assert_eq!(
        stats.get(Counter::Fragments),
        uint(&e, "fragments"),
        "{name}: outer fragments"
    );

    let want = e["reassembled"].as_array().expect("reassembled array");
    let want_frames: Vec<usize> = want.iter().map(|d| uint(d, "frame") as usize).collect();
    let got_frames: Vec<usize> = got
        .iter()
        .enumerate()
        .filter(|(_, g)| matches!(g, Got::Complete(_)))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(got_frames, want_frames, "{name}: frames where a datagram completes");
    assert_eq!(
        stats.get(Counter::Reassembled),
        want.len() as u64,
        "{name}: reassembled"
    );

    let mut duplicates = 0u64;
    for d in want {
        let frame = uint(d, "frame") as usize;
        let Got::Complete(p) = &got[frame - 1] else {
            unreachable!("checked above")
        };
        let ctx = format!("{name} frame {frame}");
        let hl = uint(d, "header_length") as usize;
        assert_eq!(p.len() as u64, uint(d, "total_length"), "{ctx}: rebuilt length");
        let sha: String = Sha1::digest(&p[hl..]).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha, d["reassembled_sha1"].as_str().unwrap(), "{ctx}: payload bytes");
        let version = uint(d, "version");
        assert_eq!(u64::from(p[0] >> 4), version, "{ctx}: version");
        let stated = if version == 4 {
            usize::from(u16::from_be_bytes([p[2], p[3]]))
        } else {
            40 + usize::from(u16::from_be_bytes([p[4], p[5]]))
        };
        assert_eq!(stated, p.len(), "{ctx}: length field");

        let pkt = decode_ip_with(p, Some(0)).unwrap_or_else(|err| panic!("{ctx}: {err}"));
        assert_eq!(pkt.anomaly, None, "{ctx}: decodes cleanly");
        match opt(d, "gtp_teid") {
            Some(teid) => {
                let t = pkt.tunnel.unwrap_or_else(|| panic!("{ctx}: GTP-U tunnel expected"));
                assert_eq!(u64::from(t.header.teid), teid, "{ctx}: TEID");
                assert_eq!(
                    (Some(u64::from(t.outer_src_port)), Some(u64::from(t.outer_dst_port))),
                    (opt(d, "src_port"), opt(d, "dst_port")),
                    "{ctx}: outer ports"
                );
                assert_eq!(
                    (Some(u64::from(pkt.src_port)), Some(u64::from(pkt.dst_port))),
                    (opt(d, "inner_src_port"), opt(d, "inner_dst_port")),
                    "{ctx}: inner ports"
                );
            }
            None => {
                assert!(pkt.tunnel.is_none(), "{ctx}: no tunnel expected");
                assert_eq!(u64::from(pkt.proto), uint(d, "proto"), "{ctx}: protocol");
                assert_eq!(
                    (Some(u64::from(pkt.src_port)), Some(u64::from(pkt.dst_port))),
                    (opt(d, "src_port"), opt(d, "dst_port")),
                    "{ctx}: ports"
                );
            }
        }
        assert_eq!(pkt.fragment, Fragment::None, "{ctx}: not a fragment any more");

        // Every fragment tshark used was kept (or was an exact duplicate of one kept).
        let overlap = frames_of(d, "overlap_frames");
        assert!(frames_of(d, "conflict_frames").is_empty(), "{ctx}: conflicting overlap");
        for f in frames_of(d, "fragment_frames") {
            let g = &got[f - 1];
            if overlap.contains(&f) {
                assert_eq!(*g, Got::Duplicate, "{ctx}: fragment frame {f} (tshark: overlap)");
            } else if f != frame {
                assert_eq!(*g, Got::Pending, "{ctx}: fragment frame {f}");
            }
        }
        duplicates += overlap.len() as u64;
    }
    assert_eq!(stats.get(Counter::Duplicate), duplicates, "{name}: duplicates");
    let dropped: BTreeMap<&str, u64> = got.iter().fold(BTreeMap::new(), |mut m, g| {
        if let Got::Dropped(r) = g {
            *m.entry(*r).or_default() += 1;
        }
        m
    });
    assert!(dropped.is_empty(), "{name}: fragments dropped: {dropped:?}");
}

#[test]
fn ipv4_nfs_fragments_with_duplicates() {
    check_capture(CAPTURES[0]);
}

#[test]
fn ipv6_mdns_fragments() {
    check_capture(CAPTURES[1]);
}

#[test]
fn gtpu_gn_outer_fragments() {
    check_capture(CAPTURES[2]);
}

#[test]
fn gtpu_pdcp_ext_header_outer_fragments() {
    check_capture(CAPTURES[3]);
}

#[test]
fn dns_amplification_fragments() {
    check_capture(CAPTURES[4]);
}

/// The fragments fivewatch holds without completing (`Pending` outcomes not followed by a
/// completion) are exactly the outer fragments tshark put in no reassembly.
#[test]
fn fragments_tshark_left_unused_stay_pending() {
    for name in CAPTURES {
        let e = expected(name);
        let (got, _) = replay(name);
        let used: usize = e["reassembled"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| frames_of(d, "fragment_frames").len())
            .sum();
        let unused = uint(&e, "fragments") as usize - used;
        let pending = got.iter().filter(|g| **g == Got::Pending).count();
        let complete_frags: usize = e["reassembled"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| frames_of(d, "fragment_frames").len() - frames_of(d, "overlap_frames").len() - 1)
            .sum();
        // Frames held but never completed are exactly the fragments tshark did not use.
        assert_eq!(pending - complete_frags, unused, "{name}: fragments left incomplete");
    }
}
