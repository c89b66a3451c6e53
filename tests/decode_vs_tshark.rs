//! fivewatch's decoder and engine counters against tshark's dissection of the same
//! captures (`tests/data/expected/<capture>.json`, made by `scripts/tshark-expected.py`,
//! whose header comment defines every field).
//!
//! Every expected number comes from those JSON files. Where fivewatch classifies a frame
//! differently from tshark *by design*, the frame is listed in [`MAPPINGS`] with the reason,
//! and the test checks that fivewatch really decodes that frame the way the mapping says
//! before moving it into tshark's category.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use fivewatch::app::{self, AlertSink};
use fivewatch::config::Config;
use fivewatch::decode::{gtpu, ipproto, DecodeError, Decoded, Fragment, Layer, Packet, Reason};

/// tshark's `l4` categories (script: "l4 (the packet's *flow* transport protocol)").
const L4: [&str; 8] = ["tcp", "udp", "icmp", "icmpv6", "sctp", "ip_fragment", "other", "non_ip"];

/// Outermost network layer categories (script: "ipv4 / ipv6 / non_ip").
const NET: [&str; 3] = ["ipv4", "ipv6", "non_ip"];

/// A frame that fivewatch puts in a different category than tshark, by design.
struct Mapping {
    capture: &'static str,
    /// 1-based frame number (tshark's `frame.number`).
    frame: usize,
    /// fivewatch's (outer network, flow transport) category of the frame.
    fivewatch: (&'static str, &'static str),
    /// tshark's category of the frame (per the script's definitions).
    tshark: (&'static str, &'static str),
    /// Checks, on the frame's bytes and fivewatch's decode result, that the frame is what
    /// this mapping claims.
    check: fn(&[u8], &Result<Decoded, DecodeError>) -> bool,
    /// Why the two differ.
    why: &'static str,
}

const MAPPINGS: &[Mapping] = &[
    Mapping {
        capture: "truncated-record-snaplen1.pcap",
        frame: 1,
        fivewatch: ("link_error", "link_error"),
        tshark: ("non_ip", "non_ip"),
        check: |b, d| {
            b.len() < 14
                && *d
                    == Err(DecodeError {
                        layer: Layer::Link,
                        reason: Reason::Truncated,
                    })
        },
        why: "the only record has 8 captured bytes of a 78-byte Ethernet frame (snaplen 1 \
              in the file header): shorter than the 14-byte Ethernet header, so fivewatch \
              counts a `link: truncated` decode error where tshark (no ip token) says non_ip",
    },
    Mapping {
        capture: "dns-amplification-rrsig-fragmented.pcap",
        frame: 4194,
        fivewatch: ("ipv4", "other"),
        tshark: ("ipv4", "udp"),
        check: |b, d| {
            // Ethernet → IPv4 (IHL 5) protocol 47 → GRE with no options, protocol 0x0800 →
            // IPv4 whose protocol is UDP (17).
            b[12..14] == [0x08, 0x00]
                && b[14] == 0x45
                && b[14 + 9] == 47
                && b[34..38] == [0, 0, 0x08, 0x00]
                && b[38] >> 4 == 4
                && b[38 + 9] == 17
                && matches!(d, Ok(Decoded::Ip(p)) if p.proto == 47 && p.fragment == Fragment::None && p.tunnel.is_none())
        },
        why: "IPv4/GRE/IPv4/UDP: fivewatch opens GTP-U tunnels only, so the flow transport \
              is GRE (IP protocol 47) = 'other'; the script's l4 rule takes the first \
              tcp/udp/... token after the first ip layer, which is the UDP inside GRE",
    },
];

/// Counts per category in tshark's terms.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    frames: u64,
    bytes_wire: u64,
    net: BTreeMap<String, u64>,
    l4: BTreeMap<String, u64>,
    gpdu: u64,
}

fn tshark_counts(e: &serde_json::Value) -> Counts {
    let mut c = Counts {
        frames: common::u(e, "frames"),
        bytes_wire: common::u(e, "bytes_wire"),
        gpdu: common::u(e, "gtpu_gpdu"),
        ..Counts::default()
    };
    for n in NET {
        c.net.insert(n.into(), common::u(e, n));
    }
    let l4 = e["l4"].as_object().expect("l4 object");
    for k in l4.keys() {
        assert!(L4.contains(&k.as_str()), "unknown l4 category {k:?} in expected JSON");
    }
    for n in L4 {
        c.l4.insert(n.into(), l4.get(n).and_then(|v| v.as_u64()).unwrap_or(0));
    }
    c
}

/// Every capture with an expected JSON: frames, wire bytes, outer IPv4/IPv6/non-IP, flow
/// transport and G-PDU counts of a full replay equal tshark's, after the documented
/// [`MAPPINGS`].
#[test]
fn replay_counts_match_tshark_for_every_capture() {
    let names = common::captures_with_expected();
    assert!(names.len() >= 36, "expected JSON files missing: {names:?}");
    for m in MAPPINGS {
        assert!(
            names.iter().any(|n| n == m.capture),
            "mapping for unknown capture {}",
            m.capture
        );
    }
    let mut failures = Vec::new();
    for name in &names {
        let e = common::expected(name).unwrap();
        let want = tshark_counts(&e);
        let path = common::capture(name);
        let mut sink = AlertSink::open(None, false).unwrap();
        // The ground truth is per frame with tshark's defragmentation off: so is this replay
        // (tests/reassembly_vs_tshark.rs compares reassembly with tshark's).
        let mut cfg = Config::default();
        cfg.reassembly.enabled = false;
        let s = app::replay(&cfg, std::slice::from_ref(&path), &mut sink, None);
        assert_eq!(s.files.len(), 1);
        assert_eq!(s.files[0].error, None, "{name}: reader error");
        assert_eq!(s.files[0].packets, s.packets, "{name}: reader and engine packet counts");

        // Frames that ended in a decode error are in none of ipv4/ipv6/non_ip/transports.
        let fatal = s.packets - s.ipv4_packets - s.ipv6_packets - s.non_ip_packets;
        let mut got = Counts {
            frames: s.packets,
            bytes_wire: s.bytes,
            gpdu: s.gtpu["g_pdu"],
            ..Counts::default()
        };
        got.net.insert("ipv4".into(), s.ipv4_packets);
        got.net.insert("ipv6".into(), s.ipv6_packets);
        got.net.insert("non_ip".into(), s.non_ip_packets);
        got.net.insert("link_error".into(), fatal);
        for n in fivewatch::pipeline::TRANSPORTS {
            got.l4.insert(n.into(), s.transports[n]);
        }
        got.l4.insert("non_ip".into(), s.non_ip_packets);
        got.l4.insert("link_error".into(), fatal);
        assert_eq!(
            s.transports.values().sum::<u64>(),
            s.ipv4_packets + s.ipv6_packets,
            "{name}: every IP frame has exactly one flow transport"
        );

        // Apply the documented differences, after checking each frame decodes as claimed.
        let maps: Vec<&Mapping> = MAPPINGS.iter().filter(|m| m.capture == name).collect();
        if !maps.is_empty() {
            let frames = common::frames(&path);
            for m in &maps {
                let f = &frames[m.frame - 1];
                let d = fivewatch::decode::decode(f.linktype, &f.data);
                assert!(
                    (m.check)(&f.data, &d),
                    "{name} frame {}: mapping '{}' does not hold: {d:?}",
                    m.frame,
                    m.why
                );
                for (map, from, to) in [
                    (&mut got.net, m.fivewatch.0, m.tshark.0),
                    (&mut got.l4, m.fivewatch.1, m.tshark.1),
                ] {
                    let n = map.get_mut(from).unwrap();
                    assert!(*n > 0, "{name}: mapping from empty category {from}");
                    *n -= 1;
                    *map.entry(to.into()).or_insert(0) += 1;
                }
            }
        }
        // A decode error that no mapping explains is a discrepancy.
        assert_eq!(
            got.net.remove("link_error"),
            Some(0),
            "{name}: unexplained decode errors {:?}",
            s.decode_errors_by_reason
        );
        assert_eq!(got.l4.remove("link_error"), Some(0), "{name}");
        if got != want {
            failures.push(format!("{name}:\n  fivewatch {got:?}\n  tshark    {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "counts differ from tshark:\n{}",
        failures.join("\n")
    );
}

/// Is this decoded packet a G-PDU (tshark's definition: GTP-U on UDP 2152, message 0xff)?
fn gpdu(p: &Packet) -> Option<&fivewatch::decode::Tunnel> {
    p.tunnel.as_ref().filter(|t| t.header.message_type == gtpu::MSG_GPDU)
}

/// Whether fivewatch decoded the T-PDU of a G-PDU (otherwise the packet is the outer UDP one).
fn inner_decoded(p: &Packet) -> bool {
    let Some(t) = &p.tunnel else { return false };
    !(p.proto == ipproto::UDP
        && p.src == t.outer_src
        && p.dst == t.outer_dst
        && p.src_port == t.outer_src_port
        && p.dst_port == t.outer_dst_port)
}

#[derive(Default, Debug, PartialEq, Eq)]
struct TeidFacts {
    frames: u64,
    outer: BTreeSet<(IpAddr, IpAddr)>,
    inner: BTreeSet<(IpAddr, IpAddr)>,
}

#[derive(Default)]
struct GtpView {
    gpdu: u64,
    teids: BTreeSet<u64>,
    qfis: BTreeSet<u64>,
    psc_types: BTreeMap<String, u64>,
    with_psc: u64,
    per_teid: BTreeMap<u64, TeidFacts>,
}

fn gtp_view(name: &str) -> GtpView {
    let mut v = GtpView::default();
    for d in common::decode_all(&common::capture(name)) {
        let Ok(Decoded::Ip(p)) = d else { continue };
        let Some(t) = gpdu(&p) else { continue };
        let teid = u64::from(t.header.teid);
        v.gpdu += 1;
        v.teids.insert(teid);
        if let Some(psc) = t.header.pdu_session {
            v.qfis.insert(u64::from(psc.qfi));
            *v.psc_types.entry(psc.pdu_type.to_string()).or_insert(0) += 1;
            v.with_psc += 1;
        }
        let f = v.per_teid.entry(teid).or_default();
        f.frames += 1;
        f.outer.insert((t.outer_src, t.outer_dst));
        if inner_decoded(&p) {
            f.inner.insert((p.src, p.dst));
        }
    }
    v
}

fn u64_set(v: &serde_json::Value) -> BTreeSet<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("integer"))
        .collect()
}

fn pairs(v: &serde_json::Value) -> BTreeSet<(IpAddr, IpAddr)> {
    v.as_array()
        .expect("array of pairs")
        .iter()
        .map(|p| {
            let ip = |i: usize| p[i].as_str().expect("address").parse::<IpAddr>().expect("IP address");
            (ip(0), ip(1))
        })
        .collect()
}

/// TEIDs, QFIs and PDU Session Container types of the G-PDUs, decoded frame by frame with
/// `fivewatch::decode::decode`, equal tshark's for every capture with G-PDUs.
#[test]
fn gtpu_teids_qfis_and_psc_types_match_tshark() {
    let with_gpdu: Vec<String> = common::captures_with_expected()
        .into_iter()
        .filter(|n| common::u(&common::expected(n).unwrap(), "gtpu_gpdu") > 0)
        .collect();
    // The issue names these explicitly: 5G SA registration, VoLTE, and the GTP-U
    // extension-header captures.
    for must in [
        "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng",
        "volte-gtpu-sip-rtp.pcapng",
        "gtpu-ext-hdr-pdcp-outer-ipfrag.pcap",
        "gtp-v1c-gtpu-ext-nonstd-ports.pcapng",
    ] {
        assert!(
            with_gpdu.iter().any(|n| n == must),
            "{must} has no G-PDUs in its expected JSON"
        );
    }
    for name in &with_gpdu {
        let e = common::expected(name).unwrap();
        let v = gtp_view(name);
        assert_eq!(v.gpdu, common::u(&e, "gtpu_gpdu"), "{name}: G-PDUs");
        assert_eq!(v.teids, u64_set(&e["gtpu_teids"]), "{name}: TEIDs");
        assert_eq!(v.qfis, u64_set(&e["gtpu_qfis"]), "{name}: QFIs");
        let want_types: BTreeMap<String, u64> = e["gtpu_psc_pdu_types"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
            .collect();
        assert_eq!(v.psc_types, want_types, "{name}: PSC PDU types");
        assert_eq!(
            v.with_psc,
            common::u(&e, "gtpu_gpdu_with_psc"),
            "{name}: G-PDUs with a PSC"
        );
    }
}

/// Captures without G-PDUs in tshark's view yield none in fivewatch's decoder either (GTPv1-C
/// and GTPv2-C on 2123, GTP' look-alikes on 3386 ...).
#[test]
fn no_gpdu_where_tshark_has_none() {
    for name in common::captures_with_expected() {
        let e = common::expected(&name).unwrap();
        if common::u(&e, "gtpu_gpdu") == 0 {
            assert_eq!(gtp_view(&name).gpdu, 0, "{name}");
        }
    }
}

/// Per TEID: number of G-PDUs, (outer src, outer dst) pairs and (inner src, inner dst)
/// pairs equal `facts.gtpu_teids` — for the 5G SA capture as the issue requires, and for
/// every other capture that has the facts.
#[test]
fn gtpu_teid_endpoint_facts_match_tshark() {
    let mut checked = Vec::new();
    for name in common::captures_with_expected() {
        let e = common::expected(&name).unwrap();
        let Some(facts) = e["facts"]["gtpu_teids"].as_object() else {
            continue;
        };
        let want: BTreeMap<u64, TeidFacts> = facts
            .iter()
            .map(|(teid, f)| {
                let teid: u64 = teid.parse().expect("TEID key");
                assert_eq!(f["teid_hex"].as_str(), Some(format!("0x{teid:08x}").as_str()));
                (
                    teid,
                    TeidFacts {
                        frames: common::u(f, "gpdu_frames"),
                        outer: pairs(&f["outer_src_dst"]),
                        inner: pairs(&f["inner_src_dst"]),
                    },
                )
            })
            .collect();
        let got = gtp_view(&name).per_teid;
        assert_eq!(got, want, "{name}: per-TEID facts");
        checked.push(name);
    }
    assert!(
        checked
            .iter()
            .any(|n| n == "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng"),
        "the 5G SA capture has no facts.gtpu_teids: {checked:?}"
    );
}

/// Frames whose flow TCP layer is SYN without ACK (`tcp_syn_only`): fivewatch's decoded
/// `tcp_flags` of the flow packet (inner packet for G-PDUs) agree with tshark.
#[test]
fn tcp_syn_only_counts_match_tshark() {
    for name in common::captures_with_expected() {
        let e = common::expected(&name).unwrap();
        let got = common::decode_all(&common::capture(&name))
            .iter()
            .filter(|d| {
                matches!(d, Ok(Decoded::Ip(p)) if p.proto == ipproto::TCP
                    && p.fragment != Fragment::Later
                    && p.tcp_flags & 0x12 == 0x02)
            })
            .count() as u64;
        assert_eq!(got, common::u(&e, "tcp_syn_only"), "{name}");
    }
}

/// The per-capture facts about attack traffic, recomputed from fivewatch's decoded packets.
#[test]
fn attack_capture_facts_match_decoder() {
    let syn_only = |p: &Packet| p.proto == ipproto::TCP && p.fragment != Fragment::Later && p.tcp_flags & 0x12 == 0x02;
    let decoded = |name: &str| -> Vec<Packet> {
        common::decode_all(&common::capture(name))
            .into_iter()
            .filter_map(|d| match d {
                Ok(Decoded::Ip(p)) => Some(p),
                _ => None,
            })
            .collect()
    };

    // SYN flood: SYN-only frames to 10.10.10.10, distinct sources, one destination port.
    let name = "syn-flood-spoofed-sources.pcap";
    let f = &common::expected(name).unwrap()["facts"];
    let victim: IpAddr = "10.10.10.10".parse().unwrap();
    let syns: Vec<Packet> = decoded(name)
        .into_iter()
        .filter(|p| syn_only(p) && p.dst == victim)
        .collect();
    assert_eq!(syns.len() as u64, common::u(f, "syn_only_to_10.10.10.10"));
    let srcs: BTreeSet<IpAddr> = syns.iter().map(|p| p.src).collect();
    assert_eq!(srcs.len() as u64, common::u(f, "distinct_src_ips"));
    let ports: BTreeSet<u64> = syns.iter().map(|p| u64::from(p.dst_port)).collect();
    assert_eq!(ports, u64_set(&f["dst_ports"]));

    // nmap SYN scan: scanner, SYN-only frames and distinct (host, port) pairs.
    let name = "syn-scan-nmap-1000-ports.pcap";
    let f = &common::expected(name).unwrap()["facts"];
    let scanner: IpAddr = f["scanner_ip"].as_str().unwrap().parse().unwrap();
    let pkts = decoded(name);
    let mine: Vec<&Packet> = pkts.iter().filter(|p| syn_only(p) && p.src == scanner).collect();
    assert_eq!(mine.len() as u64, common::u(f, "syn_only_frames"));
    let targets: BTreeSet<(IpAddr, u16)> = mine.iter().map(|p| (p.dst, p.dst_port)).collect();
    assert_eq!(targets.len() as u64, common::u(f, "distinct_dst_ip_port_pairs"));
    let synack_ports: BTreeSet<u64> = pkts
        .iter()
        .filter(|p| p.proto == ipproto::TCP && p.tcp_flags & 0x12 == 0x12 && p.dst == scanner)
        .map(|p| u64::from(p.src_port))
        .collect();
    assert_eq!(synack_ports, u64_set(&f["ports_replying_synack"]));

    // UDP scan: one source, three targets, 977 ports each.
    let name = "udp-port-scan-3-hosts.pcap";
    let f = &common::expected(name).unwrap()["facts"];
    let scanner: IpAddr = f["scanner_ip"].as_str().unwrap().parse().unwrap();
    let mut per_ip: BTreeMap<IpAddr, BTreeSet<u16>> = BTreeMap::new();
    let mut from_scanner = 0u64;
    for p in decoded(name).iter().filter(|p| p.proto == ipproto::UDP) {
        assert_eq!(p.src, scanner);
        from_scanner += 1;
        per_ip.entry(p.dst).or_default().insert(p.dst_port);
    }
    assert_eq!(from_scanner, common::u(f, "udp_frames_from_scanner"));
    let want: BTreeMap<IpAddr, u64> = f["distinct_dst_ports_per_dst_ip"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.as_u64().unwrap()))
        .collect();
    let got: BTreeMap<IpAddr, u64> = per_ip.iter().map(|(k, v)| (*k, v.len() as u64)).collect();
    assert_eq!(got, want);

    // DNS amplification: unsolicited responses and later fragments towards the victim.
    let name = "dns-amplification-rrsig-fragmented.pcap";
    let f = &common::expected(name).unwrap()["facts"];
    let pkts = decoded(name);
    let resp: Vec<&Packet> = pkts
        .iter()
        .filter(|p| p.proto == ipproto::UDP && p.fragment != Fragment::Later && p.src_port == 53 && p.dst == victim)
        .collect();
    assert_eq!(resp.len() as u64, common::u(f, "udp_sport53_frames_to_victim"));
    let resolvers: BTreeSet<IpAddr> = resp.iter().map(|p| p.src).collect();
    assert_eq!(resolvers.len() as u64, common::u(f, "distinct_resolvers"));
    let frags: Vec<&Packet> = pkts
        .iter()
        .filter(|p| p.fragment == Fragment::Later && p.dst == victim)
        .collect();
    assert_eq!(frags.len() as u64, common::u(f, "nonfirst_fragments_to_victim"));
    let frag_srcs: BTreeSet<IpAddr> = frags.iter().map(|p| p.src).collect();
    assert_eq!(frag_srcs.len() as u64, common::u(f, "distinct_fragment_sources"));
}

/// A G-PDU whose GTP-U length runs past the UDP payload is `gtpu: truncated` when the outer
/// datagram was cut (snap length or first outer fragment) and `gtpu: bad_length` when the
/// datagram is complete, judged here from the outer IPv4/UDP headers of the capture bytes.
/// Frame 139 of the 5G SA capture is such a complete datagram: UDP length 208, GTP-U length
/// 2096.
#[test]
fn gtpu_length_overruns_are_classified_from_the_outer_headers() {
    let be16 = |b: &[u8], o: usize| u16::from_be_bytes([b[o], b[o + 1]]) as usize;
    let mut bad_length = Vec::new();
    let mut truncated = 0;
    for name in common::captures_with_expected() {
        if common::u(&common::expected(&name).unwrap(), "gtpu_gpdu") == 0 {
            continue;
        }
        for (i, f) in common::frames(&common::capture(&name)).iter().enumerate() {
            let Ok(Decoded::Ip(p)) = fivewatch::decode::decode(f.linktype, &f.data) else {
                continue;
            };
            let Some(t) = gpdu(&p) else { continue };
            if !t.header.truncated {
                continue;
            }
            // Outer IPv4 after Ethernet (with 802.1Q tags) or Linux SLL.
            let b = &f.data;
            let mut ip = match f.linktype.0 {
                1 => 14,
                113 => 16,
                lt => panic!("{name}: link type {lt}"),
            };
            while be16(b, ip - 2) == 0x8100 {
                ip += 4;
            }
            assert_eq!(b[ip] >> 4, 4, "{name} frame {}", i + 1);
            let ihl = usize::from(b[ip] & 0x0f) * 4;
            let fragmented = be16(b, ip + 6) & 0x3fff != 0;
            let ip_bytes = be16(b, ip + 2).min(b.len() - ip);
            let udp_len = be16(b, ip + ihl + 4);
            let gtp_len = be16(b, ip + ihl + 8 + 2);
            assert!(
                8 + gtp_len > udp_len - 8 || udp_len > ip_bytes - ihl,
                "{name} frame {}",
                i + 1
            );
            let want = if !fragmented && udp_len <= ip_bytes - ihl {
                bad_length.push((name.clone(), i + 1));
                Reason::BadLength
            } else {
                truncated += 1;
                Reason::Truncated
            };
            assert_eq!(
                p.anomaly,
                Some(DecodeError {
                    layer: Layer::Gtpu,
                    reason: want
                }),
                "{name} frame {}",
                i + 1
            );
        }
    }
    assert_eq!(
        bad_length,
        [("5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng".to_string(), 139)]
    );
    assert!(truncated > 0);
}
