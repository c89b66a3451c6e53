//! PFCP decoding and the PFCP session table against tshark's dissection of real captures
//! (`tests/data/expected/pfcp/<capture>.json`, made by `scripts/tshark-pfcp-expected.py`,
//! whose docstring defines every field), the exact TEID → UE mapping of the 5G SA capture,
//! session-table behaviours on hand-built messages (TS 29.244 layouts), and a no-panic
//! property over arbitrary bytes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fivewatch::decode;
use fivewatch::decode::pfcp::{self, ie, NodeId};
use fivewatch::session::{SessionConfig, SessionTable, TeidState};
use proptest::prelude::*;

const SA: &str = "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng";
const RAWIP: &str = "pfcp-session-rawip.pcapng";

use common::planes::{items, Item};

fn pfcp_payloads(name: &str) -> Vec<(IpAddr, IpAddr, Vec<u8>, u64)> {
    items(name)
        .into_iter()
        .filter_map(|i| match i {
            Item::Pfcp { src, dst, payload, ts } => Some((src, dst, payload, ts)),
            Item::Gtpc { .. } | Item::Gpdu { .. } => None,
        })
        .collect()
}

/// Sorted sets of the values tshark reports, in the expected JSON's key names.
#[derive(Default, Debug)]
struct Facts {
    messages: Vec<serde_json::Value>,
    by_type: BTreeMap<String, u64>,
    /// Values as JSON text (`1`, `"10.45.0.2"`), comparable with the expected arrays.
    sets: BTreeMap<&'static str, BTreeSet<String>>,
    f_teid_choose: u64,
}

impl Facts {
    fn add(&mut self, key: &'static str, v: impl Into<serde_json::Value>) {
        let v: serde_json::Value = v.into();
        self.sets.entry(key).or_default().insert(v.to_string());
    }

    /// Add the value when present (addresses as text, as tshark prints them).
    fn add_some<T: std::fmt::Display>(&mut self, key: &'static str, v: Option<T>) {
        if let Some(v) = v {
            self.add(key, v.to_string());
        }
    }
}

const SET_KEYS: [&str; 19] = [
    "header_seids",
    "f_seids",
    "f_seid_ipv4",
    "f_seid_ipv6",
    "f_teid_teids",
    "f_teid_ipv4",
    "f_teid_ipv6",
    "ue_ipv4",
    "ue_ipv6",
    "ohc_teids",
    "ohc_ipv4",
    "ohc_ipv6",
    "recovery_time_stamps_unix",
    "node_id_ipv4",
    "node_id_ipv6",
    "node_id_fqdn",
    "causes",
    "pdr_ids",
    "qfis",
];

fn fqdn(raw: &[u8]) -> String {
    pfcp::fqdn_labels(raw)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

/// Decode every message of `name` with `pfcp::parse` + `pfcp::walk` and collect what the
/// script collects from tshark.
fn facts(name: &str) -> Facts {
    let mut f = Facts::default();
    for (_, _, payload, _) in pfcp_payloads(name) {
        let (h, body) = pfcp::parse(&payload).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!h.follow_on, "no FO chains in these captures");
        f.messages
            .push(serde_json::json!([h.message_type.0, h.seid, h.sequence]));
        *f.by_type.entry(h.message_type.0.to_string()).or_default() += 1;
        if let Some(s) = h.seid {
            f.add("header_seids", s);
        }
        let mut ies = Vec::new();
        pfcp::walk(body, &mut |_, ie| ies.push(*ie)).unwrap_or_else(|e| panic!("{name}: {e}"));
        for i in ies.iter().filter(|i| i.enterprise_id.is_none()) {
            let v = i.value;
            match i.ie_type {
                ie::F_SEID => {
                    let s = pfcp::f_seid(v).expect("F-SEID");
                    f.add("f_seids", s.seid);
                    f.add_some("f_seid_ipv4", s.ipv4);
                    f.add_some("f_seid_ipv6", s.ipv6);
                }
                ie::F_TEID => {
                    let t = pfcp::f_teid(v).expect("F-TEID");
                    f.f_teid_choose += u64::from(t.choose);
                    if let Some(x) = t.teid {
                        f.add("f_teid_teids", x);
                    }
                    f.add_some("f_teid_ipv4", t.ipv4);
                    f.add_some("f_teid_ipv6", t.ipv6);
                }
                ie::UE_IP_ADDRESS => {
                    let u = pfcp::ue_ip_address(v).expect("UE IP Address");
                    f.add_some("ue_ipv4", u.ipv4);
                    f.add_some("ue_ipv6", u.ipv6);
                }
                ie::OUTER_HEADER_CREATION => {
                    let o = pfcp::outer_header_creation(v).expect("Outer Header Creation");
                    if let Some(x) = o.teid {
                        f.add("ohc_teids", x);
                    }
                    f.add_some("ohc_ipv4", o.ipv4);
                    f.add_some("ohc_ipv6", o.ipv6);
                }
                ie::RECOVERY_TIME_STAMP => {
                    let r = pfcp::recovery_time_stamp(v).expect("Recovery Time Stamp");
                    f.add("recovery_time_stamps_unix", r.unix_seconds());
                }
                ie::NODE_ID => match pfcp::node_id(v).expect("Node ID") {
                    NodeId::Ipv4(a) => f.add("node_id_ipv4", a.to_string()),
                    NodeId::Ipv6(a) => f.add("node_id_ipv6", a.to_string()),
                    NodeId::Fqdn(raw) => f.add("node_id_fqdn", fqdn(raw)),
                },
                // tshark files the FQDN of an SMF Set ID (§8.2.140: a spare octet, then the
                // FQDN) under the same field name as a Node ID's FQDN.
                ie::SMF_SET_ID => f.add("node_id_fqdn", fqdn(&v[1..])),
                ie::CAUSE => f.add("causes", pfcp::cause(v).expect("Cause").0),
                ie::PDR_ID => f.add("pdr_ids", pfcp::pdr_id(v).expect("PDR ID")),
                ie::QFI => f.add("qfis", pfcp::qfi(v).expect("QFI")),
                _ => {}
            }
        }
    }
    f
}

fn check_against_tshark(name: &str) {
    let e = common::data_dir()
        .join("expected")
        .join("pfcp")
        .join(format!("{name}.json"));
    let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(e).expect("expected JSON")).expect("JSON");
    let f = facts(name);
    assert_eq!(f.messages.len() as u64, common::u(&e, "message_count"), "{name}");
    assert_eq!(
        serde_json::Value::from(f.messages.clone()),
        e["messages"],
        "{name}: messages"
    );
    let by_type: BTreeMap<String, u64> = serde_json::from_value(e["by_type"].clone()).expect("by_type");
    assert_eq!(f.by_type, by_type, "{name}: by_type");
    assert_eq!(f.f_teid_choose, common::u(&e, "f_teid_choose"), "{name}");
    for key in SET_KEYS {
        let want: BTreeSet<String> = e[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}"))
            .iter()
            .map(|v| v.to_string())
            .collect();
        let got = f.sets.get(key).cloned().unwrap_or_default();
        assert_eq!(got, want, "{name}: {key}");
    }

    // The session table counts the same messages by type.
    let mut t = SessionTable::new(SessionConfig::default());
    for (src, dst, payload, ts) in pfcp_payloads(name) {
        let _ = t.on_pfcp(src, dst, &payload, ts);
        t.check_tunnel_info()
            .expect("tunnel index entries follow their sessions");
    }
    let s = t.stats();
    for (k, n) in &by_type {
        let mt = pfcp::MessageType(k.parse().expect("type"));
        assert_eq!(s.messages[pfcp::label_index(mt)], *n, "{name}: {}", mt.name());
    }
    assert_eq!(s.messages.iter().sum::<u64>(), common::u(&e, "message_count"));
}

#[test]
fn sa_capture_matches_tshark() {
    check_against_tshark(SA);
}

#[test]
fn rawip_capture_matches_tshark() {
    check_against_tshark(RAWIP);
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP literal")
}

#[test]
fn sa_capture_session_table_state() {
    let mut t = SessionTable::new(SessionConfig::default());
    for (src, dst, payload, ts) in pfcp_payloads(SA) {
        t.on_pfcp(src, dst, &payload, ts)
            .expect("every PFCP message of the capture decodes");
        t.check_tunnel_info()
            .expect("tunnel index entries follow their sessions");
    }
    let s = t.stats();
    // tshark: 23 Session Establishment Request/Response pairs (SEIDs 1..=23) and 20
    // Deletion pairs (every SEID except 1, 4 and 7).
    assert_eq!((s.established, s.deleted, s.active), (23, 20, 3));
    let left: BTreeSet<u64> = t.sessions().map(|x| x.cp_seid).collect();
    assert_eq!(left, BTreeSet::from([1, 4, 7]));
    // Frame 55 repeats frame 25 (127.0.0.7 → 127.0.0.4, Association Setup Request, sequence
    // 1) after frame 26, an ICMP port unreachable for frame 25: one retransmission. Every
    // response has its request.
    assert_eq!((s.retransmissions, s.unmatched_responses, s.malformed), (1, 0, 0));
    assert_eq!(
        (s.evicted, s.purged_by_restart, s.peer_restarts, s.unknown_session),
        (0, 0, 0, 0)
    );
    // Both nodes sent Recovery Time Stamp 2020-08-22 15:53:09 UTC (tshark).
    for peer in ["127.0.0.4", "127.0.0.7"] {
        assert_eq!(t.peer_recovery(ip(peer)).map(|r| r.unix_seconds()), Some(1_598_111_589));
    }
    // Session 1 (frames 119, 122, 133): CP F-SEID 1 at 127.0.0.4, UP F-SEID 1 at 127.0.0.7,
    // UL F-TEID 1 at 127.0.0.7 and ::1, DL OHC TEID 1 at 127.0.0.2, UE 10.45.0.2 and cafe::2,
    // QFI 1.
    let s1 = t.session_by_cp_seid(ip("127.0.0.4"), 1).expect("session 1");
    assert_eq!(
        (s1.up_seid, s1.cp_ip, s1.up_ip),
        (Some(1), ip("127.0.0.4"), ip("127.0.0.7"))
    );
    assert_eq!(
        (s1.cp_node_id, s1.up_node_id),
        (Some(ip("127.0.0.4")), Some(ip("127.0.0.7")))
    );
    let ul = s1.uplink.expect("UL F-TEID");
    assert_eq!(
        (ul.teid, ul.ipv4, ul.ipv6),
        (1, Some(Ipv4Addr::new(127, 0, 0, 7)), Some(Ipv6Addr::LOCALHOST))
    );
    let dl = s1.downlink.expect("DL F-TEID");
    assert_eq!((dl.teid, dl.ipv4), (1, Some(Ipv4Addr::new(127, 0, 0, 2))));
    assert_eq!(s1.ue_ipv4, Some(Ipv4Addr::new(10, 45, 0, 2)));
    assert_eq!(
        (s1.ue_ipv6, s1.ue_ipv6_prefix_len),
        (Some("cafe::2".parse().expect("v6")), 64)
    );
    assert_eq!(s1.qfi_list().collect::<Vec<_>>(), vec![1]);
    assert!(s1.first_seen_ns < s1.last_seen_ns);
    assert_eq!(t.lookup_ue(ip("10.45.0.2")).map(|x| x.cp_seid), Some(1));
    assert_eq!(t.lookup_ue(ip("10.45.0.5")).map(|x| x.cp_seid), Some(4));
    assert!(t.lookup_ue(ip("10.45.0.3")).is_none(), "session 2 was deleted");
    // The UL TEID 1 is also reachable over the UPF's IPv6 N3 address from the F-TEID.
    assert!(matches!(t.lookup_teid(ip("::1"), 1, 0), TeidState::Known(x) if x.cp_seid == 1));
}

/// Every G-PDU of the 5G SA capture: (outer destination, TEID, UE address, G-PDUs), from
/// `tshark -r tests/data/5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng -Y gtp -T fields
/// -e ip.src -e ip.dst -e gtp.teid` (plus ipv6.src/ipv6.dst for the two IPv6 T-PDUs). The UE
/// address is the inner source towards the UPF (127.0.0.7), the inner destination towards the
/// gNB (127.0.0.2). The gNB reuses DL TEIDs after release (1 for .2 and .3, 7 for .7 and .8,
/// 11 for .11 and .12), and its DL TEID 1 is also the UPF's UL TEID 1.
const SA_GPDU_MAP: [(&str, u32, &str, u32); 24] = [
    ("127.0.0.7", 1, "10.45.0.2", 3),
    ("127.0.0.2", 1, "10.45.0.2", 3),
    ("127.0.0.7", 1, "cafe::2", 1),
    ("127.0.0.2", 1, "cafe::2", 1),
    ("127.0.0.7", 2, "10.45.0.3", 1),
    ("127.0.0.2", 1, "10.45.0.3", 1),
    ("127.0.0.7", 3, "10.45.0.4", 6),
    ("127.0.0.2", 3, "10.45.0.4", 6),
    ("127.0.0.7", 4, "10.45.0.5", 4),
    ("127.0.0.2", 5, "10.45.0.5", 4),
    ("127.0.0.7", 5, "10.45.0.6", 2),
    ("127.0.0.2", 6, "10.45.0.6", 2),
    ("127.0.0.7", 6, "10.45.0.7", 2),
    ("127.0.0.2", 7, "10.45.0.7", 2),
    ("127.0.0.7", 7, "10.45.0.8", 2),
    ("127.0.0.2", 7, "10.45.0.8", 2),
    ("127.0.0.7", 8, "10.45.0.9", 4),
    ("127.0.0.2", 8, "10.45.0.9", 4),
    ("127.0.0.7", 9, "10.45.0.10", 2),
    ("127.0.0.2", 9, "10.45.0.10", 2),
    ("127.0.0.7", 10, "10.45.0.11", 2),
    ("127.0.0.2", 11, "10.45.0.11", 2),
    ("127.0.0.7", 11, "10.45.0.12", 2),
    ("127.0.0.2", 11, "10.45.0.12", 2),
];

#[test]
fn sa_capture_every_gpdu_maps_to_its_ue() {
    let cfg = SessionConfig {
        learning_period_ns: 0,
        ..SessionConfig::default()
    };
    let mut t = SessionTable::new(cfg);
    let mut got: Vec<(IpAddr, u32, IpAddr, u32)> = Vec::new();
    let mut gpdus = 0;
    for item in items(SA) {
        match item {
            Item::Pfcp { src, dst, payload, ts } => {
                t.on_pfcp(src, dst, &payload, ts).expect("decodes");
                t.check_tunnel_info()
                    .expect("tunnel index entries follow their sessions");
            }
            Item::Gtpc { .. } => unreachable!("the 5G SA capture carries no GTPv2-C"),
            Item::Gpdu { pkt, ts } => {
                gpdus += 1;
                let tun = pkt.tunnel.expect("tunnel");
                let (dst, teid) = (tun.outer_dst, tun.header.teid);
                let TeidState::Known(s) = t.lookup_teid(dst, teid, ts) else {
                    panic!(
                        "G-PDU to {dst} TEID {teid} (inner {} → {}) is not mapped",
                        pkt.src, pkt.dst
                    );
                };
                let ue = if s.uplink.is_some_and(|e| e.matches(dst, teid)) {
                    pkt.src
                } else {
                    assert!(s.downlink.is_some_and(|e| e.matches(dst, teid)));
                    pkt.dst
                };
                assert!(s.has_ue_ip(ue), "{dst} TEID {teid}: session UE {:?} ≠ {ue}", s.ue_ipv4);
                assert!(
                    s.ue_ipv4.map(IpAddr::V4) == Some(ue) || s.ue_ipv6.map(IpAddr::V6) == Some(ue),
                    "{dst} TEID {teid}: UE address is exactly {ue}"
                );
                match got.iter_mut().find(|g| (g.0, g.1, g.2) == (dst, teid, ue)) {
                    Some(g) => g.3 += 1,
                    None => got.push((dst, teid, ue, 1)),
                }
            }
        }
    }
    assert_eq!(gpdus, 62, "tshark: 62 G-PDUs");
    let want: Vec<(IpAddr, u32, IpAddr, u32)> = SA_GPDU_MAP
        .iter()
        .map(|(d, teid, ue, n)| (ip(d), *teid, ip(ue), *n))
        .collect();
    assert_eq!(got, want);
}

// ---- hand-built messages (TS 29.244 §7.2.2 header, §8.1.1 IE layout) ----

fn ie_b(t: u16, v: &[u8]) -> Vec<u8> {
    let mut o = t.to_be_bytes().to_vec();
    o.extend_from_slice(&(v.len() as u16).to_be_bytes());
    o.extend_from_slice(v);
    o
}

fn msg(mtype: u8, seid: Option<u64>, seq: u32, ies: &[u8]) -> Vec<u8> {
    let hdr_rest = if seid.is_some() { 12 } else { 4 };
    let mut o = vec![if seid.is_some() { 0x21 } else { 0x20 }, mtype];
    o.extend_from_slice(&((hdr_rest + ies.len()) as u16).to_be_bytes());
    if let Some(s) = seid {
        o.extend_from_slice(&s.to_be_bytes());
    }
    o.extend_from_slice(&(seq << 8).to_be_bytes());
    o.extend_from_slice(ies);
    o
}

fn f_seid_v4(seid: u64, a: [u8; 4]) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend_from_slice(&seid.to_be_bytes());
    v.extend_from_slice(&a);
    ie_b(ie::F_SEID, &v)
}

/// Establishment Request: CP F-SEID, an access PDR (ID 1) with F-TEID `ul_teid` at 10.0.0.7
/// and UE 10.60.0.`ue`, a FAR (ID 1) towards access with OHC TEID `dl_teid` at 10.0.0.2.
fn establishment(seq: u32, cp_seid: u64, ul_teid: u32, dl_teid: u32, ue: u8) -> Vec<u8> {
    let mut fteid = vec![0x01];
    fteid.extend_from_slice(&ul_teid.to_be_bytes());
    fteid.extend_from_slice(&[10, 0, 0, 7]);
    let mut pdi = ie_b(ie::SOURCE_INTERFACE, &[0]);
    pdi.extend(ie_b(ie::F_TEID, &fteid));
    pdi.extend(ie_b(ie::UE_IP_ADDRESS, &[0x02, 10, 60, 0, ue]));
    let mut pdr = ie_b(ie::PDR_ID, &[0, 1]);
    pdr.extend(ie_b(ie::PDI, &pdi));
    let mut ohc = vec![0x01, 0x00];
    ohc.extend_from_slice(&dl_teid.to_be_bytes());
    ohc.extend_from_slice(&[10, 0, 0, 2]);
    let mut fp = ie_b(ie::DESTINATION_INTERFACE, &[0]);
    fp.extend(ie_b(ie::OUTER_HEADER_CREATION, &ohc));
    let mut far = ie_b(ie::FAR_ID, &[0, 0, 0, 1]);
    far.extend(ie_b(ie::FORWARDING_PARAMETERS, &fp));
    let mut body = ie_b(ie::NODE_ID, &[0, 10, 0, 0, 4]);
    body.extend(f_seid_v4(cp_seid, [10, 0, 0, 4]));
    body.extend(ie_b(ie::CREATE_PDR, &pdr));
    body.extend(ie_b(ie::CREATE_FAR, &far));
    msg(50, Some(0), seq, &body)
}

fn heartbeat(seq: u32, recovery: u32, response: bool) -> Vec<u8> {
    msg(
        if response { 2 } else { 1 },
        None,
        seq,
        &ie_b(ie::RECOVERY_TIME_STAMP, &recovery.to_be_bytes()),
    )
}

const SMF: [u8; 4] = [10, 0, 0, 4];
const UPF: [u8; 4] = [10, 0, 0, 7];
const SEC: u64 = 1_000_000_000;

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

#[test]
fn establishment_with_choose_then_created_pdr() {
    let mut t = SessionTable::new(SessionConfig::default());
    // CH=1 (flags 0x05: CH + V4): the UPF chooses the UL TEID and returns it in Created PDR.
    let mut pdi = ie_b(ie::SOURCE_INTERFACE, &[0]);
    pdi.extend(ie_b(ie::F_TEID, &[0x05]));
    let mut pdr = ie_b(ie::PDR_ID, &[0, 3]);
    pdr.extend(ie_b(ie::PDI, &pdi));
    let mut req = f_seid_v4(0x55, SMF);
    req.extend(ie_b(ie::CREATE_PDR, &pdr));
    t.on_pfcp(v4(SMF), v4(UPF), &msg(50, Some(0), 9, &req), SEC).unwrap();
    assert!(matches!(t.lookup_teid(v4(UPF), 0x1234, SEC), TeidState::Unknown));
    let mut created = ie_b(ie::PDR_ID, &[0, 3]);
    created.extend(ie_b(ie::F_TEID, &[0x01, 0, 0, 0x12, 0x34, 10, 0, 0, 7]));
    let mut rsp = ie_b(ie::CAUSE, &[1]);
    rsp.extend(f_seid_v4(0x77, UPF));
    rsp.extend(ie_b(ie::CREATED_PDR, &created));
    t.on_pfcp(v4(UPF), v4(SMF), &msg(51, Some(0x55), 9, &rsp), 2 * SEC)
        .unwrap();
    let TeidState::Known(s) = t.lookup_teid(v4(UPF), 0x1234, 2 * SEC) else {
        panic!("not mapped")
    };
    assert_eq!(
        (s.cp_seid, s.up_seid, s.first_seen_ns, s.last_seen_ns),
        (0x55, Some(0x77), SEC, 2 * SEC)
    );
    // Deletion request (header SEID = UP SEID) and response (header SEID = CP SEID).
    t.on_pfcp(v4(SMF), v4(UPF), &msg(54, Some(0x77), 10, &[]), 3 * SEC)
        .unwrap();
    assert_eq!(t.len(), 1, "removed on the response");
    t.on_pfcp(
        v4(UPF),
        v4(SMF),
        &msg(55, Some(0x55), 10, &ie_b(ie::CAUSE, &[1])),
        3 * SEC,
    )
    .unwrap();
    assert!(t.is_empty());
    assert!(matches!(t.lookup_teid(v4(UPF), 0x1234, 3 * SEC), TeidState::Unknown));
    let st = t.stats();
    assert_eq!((st.established, st.deleted, st.unmatched_responses), (1, 1, 0));
}

#[test]
fn rejected_establishment_removes_the_session() {
    let mut t = SessionTable::new(SessionConfig::default());
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(1, 5, 100, 200, 9), SEC)
        .unwrap();
    assert_eq!(t.len(), 1);
    // Cause 64: Request rejected (§8.2.1).
    t.on_pfcp(v4(UPF), v4(SMF), &msg(51, Some(5), 1, &ie_b(ie::CAUSE, &[64])), SEC)
        .unwrap();
    assert!(t.is_empty());
    assert_eq!(t.stats().rejected, 1);
}

#[test]
fn retransmission_is_counted_once_and_not_reapplied() {
    let mut t = SessionTable::new(SessionConfig::default());
    let req = establishment(7, 1, 100, 200, 1);
    t.on_pfcp(v4(SMF), v4(UPF), &req, SEC).unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &req, 4 * SEC).unwrap(); // T1 expiry: same sequence number
    t.on_pfcp(v4(SMF), v4(UPF), &req, 7 * SEC).unwrap();
    let s = t.stats();
    assert_eq!((s.retransmissions, s.active, s.replaced), (2, 1, 0));
    assert_eq!(s.messages[pfcp::label_index(pfcp::MessageType(50))], 3);
    // A different sequence number with the same CP SEID is a new establishment.
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(8, 1, 101, 201, 1), 8 * SEC)
        .unwrap();
    let s = t.stats();
    assert_eq!((s.retransmissions, s.active, s.replaced), (2, 1, 1));
    assert!(matches!(t.lookup_teid(v4(UPF), 101, 8 * SEC), TeidState::Known(_)));
    assert!(matches!(t.lookup_teid(v4(UPF), 100, 8 * SEC), TeidState::Unknown));
}

#[test]
fn recovery_time_stamp_change_purges_the_peers_sessions() {
    let mut t = SessionTable::new(SessionConfig::default());
    let other_upf = [10, 0, 0, 8];
    t.on_pfcp(v4(UPF), v4(SMF), &heartbeat(1, 0xe2eb_bde5, false), SEC)
        .unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(2, 1, 100, 200, 1), SEC)
        .unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(3, 2, 101, 201, 2), SEC)
        .unwrap();
    t.on_pfcp(v4(SMF), v4(other_upf), &establishment(4, 3, 102, 202, 3), SEC)
        .unwrap();
    // Same stamp again: nothing happens.
    t.on_pfcp(v4(UPF), v4(SMF), &heartbeat(5, 0xe2eb_bde5, false), 2 * SEC)
        .unwrap();
    assert_eq!(t.len(), 3);
    // The UPF restarted: new Recovery Time Stamp in its Heartbeat Response.
    t.on_pfcp(v4(UPF), v4(SMF), &heartbeat(6, 0xe2eb_c000, true), 3 * SEC)
        .unwrap();
    let s = t.stats();
    assert_eq!((s.peer_restarts, s.purged_by_restart, s.active), (1, 2, 1));
    assert_eq!(t.sessions().map(|x| x.cp_seid).collect::<Vec<_>>(), vec![3]);
    assert!(t.lookup_ue(ip("10.60.0.1")).is_none());
    assert_eq!(t.lookup_ue(ip("10.60.0.3")).map(|x| x.cp_seid), Some(3));
    assert_eq!(t.peer_recovery(v4(UPF)).map(|r| r.0), Some(0xe2eb_c000));
}

#[test]
fn capacity_evicts_the_least_recently_active_session() {
    let cfg = SessionConfig {
        capacity: 2,
        ..SessionConfig::default()
    };
    let mut t = SessionTable::new(cfg);
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(1, 1, 100, 200, 1), SEC)
        .unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(2, 2, 101, 201, 2), SEC)
        .unwrap();
    // Session 1 becomes the most recently active (its establishment response).
    t.on_pfcp(v4(UPF), v4(SMF), &msg(51, Some(1), 1, &f_seid_v4(11, UPF)), SEC)
        .unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(3, 3, 102, 202, 3), SEC)
        .unwrap();
    let s = t.stats();
    assert_eq!((s.evicted, s.active), (1, 2));
    let left: BTreeSet<u64> = t.sessions().map(|x| x.cp_seid).collect();
    assert_eq!(left, BTreeSet::from([1, 3]));
    assert!(matches!(t.lookup_teid(v4(UPF), 101, SEC), TeidState::Unknown));
    assert!(matches!(t.lookup_teid(ip("10.0.0.2"), 201, SEC), TeidState::Unknown));
    assert!(t.lookup_ue(ip("10.60.0.2")).is_none());
}

#[test]
fn learning_period_gives_unknown_then_unmapped() {
    let cfg = SessionConfig {
        learning_period_ns: 10 * SEC,
        ..SessionConfig::default()
    };
    let mut t = SessionTable::new(cfg);
    assert!(
        matches!(t.lookup_teid(v4(UPF), 5, 0), TeidState::Unknown),
        "nothing seen yet"
    );
    t.note_packet(100 * SEC);
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(1, 1, 100, 200, 1), 101 * SEC)
        .unwrap();
    assert!(matches!(t.lookup_teid(v4(UPF), 5, 109 * SEC), TeidState::Unknown));
    assert!(matches!(t.lookup_teid(v4(UPF), 5, 110 * SEC), TeidState::Unmapped));
    assert!(matches!(t.lookup_teid(v4(UPF), 100, 500 * SEC), TeidState::Known(_)));
    assert!(matches!(
        t.lookup_teid(ip("10.0.0.2"), 200, 500 * SEC),
        TeidState::Known(_)
    ));
    // The DL TEID is keyed by the gNB address: the same TEID at the UPF is not that session.
    assert!(matches!(t.lookup_teid(v4(UPF), 200, 500 * SEC), TeidState::Unmapped));
}

#[test]
fn malformed_messages_are_counted_and_change_nothing() {
    let mut t = SessionTable::new(SessionConfig::default());
    let mut bad = establishment(1, 1, 100, 200, 1);
    let n = bad.len();
    bad[n - 1] = 0; // still well-framed
    bad.extend([0, 19, 0, 9, 1]); // a Cause claiming 9 octets with 1 present
    let len = (bad.len() - 4) as u16;
    bad[2..4].copy_from_slice(&len.to_be_bytes());
    let e = t.on_pfcp(v4(SMF), v4(UPF), &bad, SEC).unwrap_err();
    assert_eq!(e.reason, decode::Reason::IeOverrun);
    assert!(t.on_pfcp(v4(SMF), v4(UPF), &[0x21, 50, 0], SEC).is_err());
    assert_eq!((t.stats().malformed, t.len()), (2, 0));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        seid in any::<bool>(),
        rts in any::<u32>(),
    ) {
        let _ = pfcp::RecoveryTimeStamp(rts).unix_seconds();
        let mut d = data;
        // Every typed decoder on the raw bytes as an IE value.
        let _ = (pfcp::node_id(&d), pfcp::f_seid(&d), pfcp::f_teid(&d), pfcp::ue_ip_address(&d));
        let _ = (pfcp::outer_header_creation(&d), pfcp::fqdn_labels(&d).count());
        let _ = pfcp::ue_ip_address(&d).map(|u| u.ipv6_prefix_len());
        // Half the cases get a plausible header so the IE paths are reached.
        if seid && d.len() >= 16 {
            d[0] = 0x21;
            d[1] = 50 + d[1] % 8;
            let len = (d.len() - 4) as u16;
            d[2..4].copy_from_slice(&len.to_be_bytes());
        }
        if let Ok((_, body)) = pfcp::parse(&d) {
            let _ = pfcp::walk(body, &mut |_, ie| {
                let v = ie.value;
                let _ = (pfcp::node_id(v), pfcp::f_seid(v), pfcp::f_teid(v), pfcp::ue_ip_address(v));
                let _ = (pfcp::outer_header_creation(v), pfcp::recovery_time_stamp(v).map(|r| r.unix_seconds()));
                let _ = (pfcp::cause(v), pfcp::qfi(v), pfcp::pdr_id(v), pfcp::far_id(v));
                let _ = (pfcp::source_interface(v), pfcp::destination_interface(v), pfcp::fqdn_labels(v).count());
            });
        }
        let mut t = SessionTable::new(SessionConfig { capacity: 4, ..SessionConfig::default() });
        let (a, b) = (v4(SMF), v4(UPF));
        let _ = t.on_pfcp(a, b, &d, 1);
        let _ = t.on_pfcp(b, a, &d, 2);
        prop_assert!(t.len() <= 4);
        let _ = t.lookup_teid(b, 0, 3);
    }
}

#[test]
fn rawip_capture_session_table_state() {
    let mut t = SessionTable::new(SessionConfig::default());
    for (src, dst, payload, ts) in pfcp_payloads(RAWIP) {
        t.on_pfcp(src, dst, &payload, ts)
            .expect("IE framing of every message is sound");
    }
    let s = t.stats();
    // tshark: all 11 messages go 127.0.0.1 → 127.0.0.2, so none of the 4 responses (frames 1,
    // 6, 8, 11) answers a request of ours; the Establishment Request (frame 3) has no
    // top-level CP F-SEID (mandatory, §7.5.2.1), so it is malformed and creates nothing;
    // the 3 Deletion Requests and 2 Deletion Responses name SEIDs no session has.
    assert_eq!((s.unmatched_responses, s.malformed, s.unknown_session), (4, 1, 5));
    assert_eq!((s.active, s.established, s.deleted, s.retransmissions), (0, 0, 0, 0));
    // No Recovery Time Stamp in this capture (tshark: recovery_time_stamps_unix is empty).
    assert!(t.peer_recovery(ip("127.0.0.1")).is_none());
}

// ---- adversarial captures (forged or unanswered messages) ----

/// Establishment Response (cause 1 "Request accepted") to `cp_seid` with UP F-SEID `up_seid`.
fn est_response(seq: u32, cp_seid: u64, up_seid: u64) -> Vec<u8> {
    let mut b = ie_b(ie::CAUSE, &[1]);
    b.extend(f_seid_v4(up_seid, UPF));
    msg(51, Some(cp_seid), seq, &b)
}

#[test]
fn establishment_responses_with_new_up_fseids_keep_one_index_entry_per_session() {
    let mut t = SessionTable::new(SessionConfig::default());
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(1, 5, 100, 200, 1), SEC)
        .unwrap();
    t.on_pfcp(v4(UPF), v4(SMF), &est_response(1, 5, 0x50), SEC).unwrap();
    // 1000 more responses with new sequence numbers and new UP F-SEIDs: no request matches.
    for i in 0..1000u32 {
        t.on_pfcp(v4(UPF), v4(SMF), &est_response(2 + i, 5, 0x1000 + u64::from(i)), SEC)
            .unwrap();
    }
    let s = t.stats();
    assert_eq!((s.active, s.established, s.unmatched_responses), (1, 1, 1000));
    assert_eq!(t.index_sizes().by_up, 1);
    assert_eq!(t.sessions().next().and_then(|x| x.up_seid), Some(0x50));
    // Re-establishing the same CP SEID 300 times (each answered with a new UP F-SEID) replaces
    // the session and its by_up key each time.
    for i in 0..300u32 {
        t.on_pfcp(v4(SMF), v4(UPF), &establishment(2000 + i, 5, 100, 200, 1), 2 * SEC)
            .unwrap();
        t.on_pfcp(
            v4(UPF),
            v4(SMF),
            &est_response(2000 + i, 5, 0x9000 + u64::from(i)),
            2 * SEC,
        )
        .unwrap();
    }
    let s = t.stats();
    assert_eq!((s.active, s.replaced, s.established), (1, 300, 301));
    let ix = t.index_sizes();
    assert_eq!((ix.by_up, ix.by_cp, ix.teids, ix.ues), (1, 1, 2, 1));
    // A Modification Request reaches the session only by its current UP SEID.
    t.on_pfcp(v4(SMF), v4(UPF), &msg(52, Some(0x50), 3000, &[]), 3 * SEC)
        .unwrap();
    assert_eq!(t.stats().unknown_session, 1);
    t.on_pfcp(v4(SMF), v4(UPF), &msg(52, Some(0x9000 + 299), 3001, &[]), 3 * SEC)
        .unwrap();
    assert_eq!(t.stats().unknown_session, 1);
}

#[test]
fn unmatched_session_responses_change_nothing() {
    let att = [6, 6, 6, 6];
    let mut t = SessionTable::new(SessionConfig::default());
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(1, 5, 100, 200, 1), SEC)
        .unwrap();
    // A rejecting Establishment Response from another address, and one to another address.
    let reject = msg(51, Some(5), 1, &ie_b(ie::CAUSE, &[64]));
    t.on_pfcp(v4(att), v4(SMF), &reject, SEC).unwrap();
    t.on_pfcp(v4(UPF), v4(att), &reject, SEC).unwrap();
    // A Deletion Response and a Modification Response with the CP SEID, no request seen.
    t.on_pfcp(v4(UPF), v4(SMF), &msg(55, Some(5), 7, &ie_b(ie::CAUSE, &[1])), SEC)
        .unwrap();
    t.on_pfcp(v4(UPF), v4(SMF), &msg(53, Some(5), 8, &ie_b(ie::CAUSE, &[1])), SEC)
        .unwrap();
    // A Deletion Response answering the Establishment Request's sequence number: wrong type.
    t.on_pfcp(v4(UPF), v4(SMF), &msg(55, Some(5), 1, &ie_b(ie::CAUSE, &[1])), SEC)
        .unwrap();
    let s = t.stats();
    assert_eq!((s.active, s.rejected, s.deleted, s.established), (1, 0, 0, 0));
    // The one to 6.6.6.6 names a CP SEID no session of that node has.
    assert_eq!((s.unmatched_responses, s.unknown_session), (5, 1));
    assert!(matches!(t.lookup_teid(v4(UPF), 100, SEC), TeidState::Known(_)));
    // The real response still finds its request.
    t.on_pfcp(v4(UPF), v4(SMF), &est_response(1, 5, 0x55), SEC).unwrap();
    // Deletion: request then response removes it; a second response (unmatched) does not
    // touch the next session.
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(2, 6, 101, 201, 2), SEC)
        .unwrap();
    t.on_pfcp(v4(UPF), v4(SMF), &est_response(2, 6, 0x66), SEC).unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &msg(54, Some(0x55), 3, &[]), SEC).unwrap();
    let del_rsp = msg(55, Some(5), 3, &ie_b(ie::CAUSE, &[1]));
    t.on_pfcp(v4(UPF), v4(SMF), &del_rsp, SEC).unwrap();
    t.on_pfcp(v4(UPF), v4(SMF), &msg(55, Some(6), 3, &ie_b(ie::CAUSE, &[1])), SEC)
        .unwrap();
    let s = t.stats();
    assert_eq!(
        (s.active, s.established, s.deleted, s.unmatched_responses),
        (1, 2, 1, 6)
    );
    assert_eq!(t.sessions().next().map(|x| x.cp_seid), Some(6));
    assert!(matches!(t.lookup_teid(v4(UPF), 101, SEC), TeidState::Known(_)));
}

#[test]
fn forged_message_reusing_a_sequence_number_does_not_suppress_the_real_one() {
    let mut t = SessionTable::new(SessionConfig::default());
    // Forged, IE-less Establishment Requests with the SMF's next sequence numbers (malformed:
    // no CP F-SEID), and a forged well-formed one for sequence 12.
    for seq in 10..20 {
        t.on_pfcp(v4(SMF), v4(UPF), &msg(50, Some(0), seq, &[]), SEC).unwrap();
    }
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(12, 0xbad, 900, 901, 99), SEC)
        .unwrap();
    assert_eq!((t.stats().malformed, t.len()), (10, 1));
    // The real establishments with those sequence numbers are applied, and answered.
    for seq in 10..13u32 {
        let cp = u64::from(seq);
        t.on_pfcp(
            v4(SMF),
            v4(UPF),
            &establishment(seq, cp, seq, 100 + seq, seq as u8),
            2 * SEC,
        )
        .unwrap();
        t.on_pfcp(v4(UPF), v4(SMF), &est_response(seq, cp, 0x100 + cp), 2 * SEC)
            .unwrap();
    }
    let s = t.stats();
    assert_eq!((s.retransmissions, s.established, s.active), (0, 3, 4));
    for seq in 10..13u32 {
        let TeidState::Known(x) = t.lookup_teid(v4(UPF), seq, 2 * SEC) else {
            panic!("TEID {seq} not mapped")
        };
        assert_eq!((x.cp_seid, x.established), (u64::from(seq), true));
    }
    // A true retransmission (same octets) is still one.
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(12, 12, 12, 112, 12), 3 * SEC)
        .unwrap();
    assert_eq!((t.stats().retransmissions, t.stats().replaced), (1, 0));
}

#[test]
fn recovery_of_a_peer_without_sessions_purges_nothing_and_purges_are_exact() {
    let mut t = SessionTable::new(SessionConfig::default());
    let (upf2, stranger) = ([10, 0, 0, 8], [9, 9, 9, 9]);
    for i in 0..50u32 {
        let upf = if i % 5 == 0 { upf2 } else { UPF };
        t.on_pfcp(
            v4(SMF),
            v4(upf),
            &establishment(i, u64::from(i), i, 1000 + i, i as u8),
            SEC,
        )
        .unwrap();
    }
    assert_eq!(t.index_sizes().by_peer, 100);
    // 1000 Heartbeats with alternating Recovery Time Stamps from a node with no sessions.
    for j in 0..1000u32 {
        t.on_pfcp(
            v4(stranger),
            v4(UPF),
            &heartbeat(j, 0xe000_0000 + (j & 1), false),
            2 * SEC,
        )
        .unwrap();
    }
    let s = t.stats();
    assert_eq!((s.peer_restarts, s.purged_by_restart, s.active), (999, 0, 50));
    // The second UPF restarts: exactly its 10 sessions go.
    t.on_pfcp(v4(upf2), v4(SMF), &heartbeat(1, 1, false), 3 * SEC).unwrap();
    t.on_pfcp(v4(upf2), v4(SMF), &heartbeat(2, 2, false), 3 * SEC).unwrap();
    let s = t.stats();
    assert_eq!((s.peer_restarts, s.purged_by_restart, s.active), (1000, 10, 40));
    assert_eq!(t.index_sizes().by_peer, 80);
    // Then the SMF: the other 40; then again: nothing left to purge.
    t.on_pfcp(v4(SMF), v4(UPF), &heartbeat(3, 1, false), 4 * SEC).unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &heartbeat(4, 2, false), 4 * SEC).unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &heartbeat(5, 3, false), 4 * SEC).unwrap();
    let s = t.stats();
    assert_eq!((s.peer_restarts, s.purged_by_restart, s.active), (1002, 50, 0));
    let ix = t.index_sizes();
    assert_eq!((ix.by_peer, ix.teids, ix.ues, ix.by_cp), (0, 0, 0, 0));
}

#[test]
fn unanswered_requests_do_not_evict_established_sessions() {
    let mut t = SessionTable::new(SessionConfig {
        capacity: 4,
        ..SessionConfig::default()
    });
    for (seq, cp) in [(1, 1), (2, 2)] {
        t.on_pfcp(
            v4(SMF),
            v4(UPF),
            &establishment(seq, cp, seq, 100 + seq, seq as u8),
            SEC,
        )
        .unwrap();
        t.on_pfcp(v4(UPF), v4(SMF), &est_response(seq, cp, 0x10 + cp), SEC)
            .unwrap();
    }
    // 100 Establishment Requests nobody answers, from 100 sources.
    for i in 0..100u32 {
        let src = [172, 16, 0, i as u8];
        t.on_pfcp(
            v4(src),
            v4(UPF),
            &establishment(i, 0x1000 + u64::from(i), 500 + i, 600 + i, 200),
            2 * SEC,
        )
        .unwrap();
    }
    let s = t.stats();
    assert_eq!((s.active, s.evicted, s.established), (4, 98, 2));
    let ix = t.index_sizes();
    assert_eq!((ix.lru_established, ix.lru_pending, ix.by_peer), (2, 2, 8));
    for teid in [1, 2] {
        assert!(matches!(t.lookup_teid(v4(UPF), teid, 2 * SEC), TeidState::Known(x) if x.established));
    }
    // With only established sessions left to evict, the least recently active goes.
    let cfg = SessionConfig {
        capacity: 2,
        ..SessionConfig::default()
    };
    let mut t = SessionTable::new(cfg);
    for seq in 1..=3u32 {
        let cp = u64::from(seq);
        t.on_pfcp(
            v4(SMF),
            v4(UPF),
            &establishment(seq, cp, seq, 100 + seq, seq as u8),
            SEC,
        )
        .unwrap();
        t.on_pfcp(v4(UPF), v4(SMF), &est_response(seq, cp, 0x10 + cp), SEC)
            .unwrap();
    }
    let left: BTreeSet<u64> = t.sessions().map(|x| x.cp_seid).collect();
    assert_eq!((left, t.stats().evicted), (BTreeSet::from([2, 3]), 1));
}

#[test]
fn teid_take_over_is_counted_and_undone_when_the_new_owner_goes() {
    let att = [6, 6, 6, 6];
    let mut t = SessionTable::new(SessionConfig::default());
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(1, 1, 100, 200, 1), SEC)
        .unwrap();
    t.on_pfcp(v4(UPF), v4(SMF), &est_response(1, 1, 0x11), SEC).unwrap();
    // A forged Establishment Request from another node claims the UL TEID 100 at the UPF.
    t.on_pfcp(v4(att), v4(UPF), &establishment(7, 0xdead, 100, 999, 1), 2 * SEC)
        .unwrap();
    assert_eq!(t.stats().teid_conflicts, 1, "UL TEID 100 (DL 999 was free)");
    assert!(matches!(t.lookup_teid(v4(UPF), 100, 2 * SEC), TeidState::Known(x) if x.cp_seid == 0xdead));
    // The thief goes (its rejecting response, answering its request): the key comes back.
    t.on_pfcp(
        v4(UPF),
        v4(att),
        &msg(51, Some(0xdead), 7, &ie_b(ie::CAUSE, &[64])),
        3 * SEC,
    )
    .unwrap();
    assert!(matches!(t.lookup_teid(v4(UPF), 100, 3 * SEC), TeidState::Known(x) if x.cp_seid == 1));
    assert_eq!(
        t.lookup_ue(ip("10.60.0.1")).map(|x| x.cp_seid),
        None,
        "UE key not restored"
    );
    // A gNB reusing DL TEID 200 for a new session: newest wins, the older one gets it back.
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(2, 2, 101, 200, 2), 4 * SEC)
        .unwrap();
    assert_eq!(t.stats().teid_conflicts, 2);
    let gnb = ip("10.0.0.2");
    assert!(matches!(t.lookup_teid(gnb, 200, 4 * SEC), TeidState::Known(x) if x.cp_seid == 2));
    t.on_pfcp(v4(SMF), v4(UPF), &heartbeat(9, 1, false), 4 * SEC).unwrap();
    t.on_pfcp(v4(UPF), v4(SMF), &est_response(2, 2, 0x22), 4 * SEC).unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &msg(54, Some(0x22), 3, &[]), 5 * SEC)
        .unwrap();
    t.on_pfcp(v4(UPF), v4(SMF), &msg(55, Some(2), 3, &ie_b(ie::CAUSE, &[1])), 5 * SEC)
        .unwrap();
    assert_eq!(t.stats().deleted, 1);
    assert!(matches!(t.lookup_teid(gnb, 200, 5 * SEC), TeidState::Known(x) if x.cp_seid == 1));
    // A re-index of the older owner (Modification) does not take a key back from a newer one.
    t.on_pfcp(v4(SMF), v4(UPF), &establishment(4, 3, 102, 200, 3), 6 * SEC)
        .unwrap();
    t.on_pfcp(v4(SMF), v4(UPF), &msg(52, Some(0x11), 5, &[]), 6 * SEC)
        .unwrap();
    assert!(matches!(t.lookup_teid(gnb, 200, 6 * SEC), TeidState::Known(x) if x.cp_seid == 3));
    assert_eq!(t.stats().teid_conflicts, 3);
    // The owner stack is bounded (3): with 2 more claimants session 1 falls off.
    for (seq, cp) in [(5, 4), (6, 5)] {
        t.on_pfcp(
            v4(SMF),
            v4(UPF),
            &establishment(seq, cp, 100 + seq, 200, cp as u8),
            7 * SEC,
        )
        .unwrap();
    }
    for cp in [5, 4] {
        assert!(matches!(t.lookup_teid(gnb, 200, 7 * SEC), TeidState::Known(x) if x.cp_seid == cp));
        let seid = t.session_by_cp_seid(v4(SMF), cp).map(|x| x.cp_seid);
        assert_eq!(seid, Some(cp));
        // Rejected: removed.
        t.on_pfcp(
            v4(UPF),
            v4(SMF),
            &msg(51, Some(cp), cp as u32 + 1, &ie_b(ie::CAUSE, &[64])),
            7 * SEC,
        )
        .unwrap();
    }
    assert!(matches!(t.lookup_teid(gnb, 200, 7 * SEC), TeidState::Known(x) if x.cp_seid == 3));
    t.on_pfcp(v4(UPF), v4(SMF), &msg(51, Some(3), 4, &ie_b(ie::CAUSE, &[64])), 7 * SEC)
        .unwrap();
    assert!(
        matches!(t.lookup_teid(gnb, 200, 7 * SEC), TeidState::Unknown),
        "session 1 fell off the bounded owner stack"
    );
    assert_eq!(t.stats().teid_conflicts, 5);
}
