//! The session table fed by GTPv2-C (TS 29.274): the EPC capture's G-PDUs mapped to their UE
//! with PFCP and GTPv2-C together and with GTPv2-C alone, the Create/Delete capture against
//! tshark's F-TEIDs and PAA, session behaviours on hand-built messages (§5.1 header, §8.2 IE
//! layout), and a no-panic property over arbitrary bytes.
//!
//! Expected values come from tshark (commands quoted next to each table), not from fivewatch.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use fivewatch::decode::{self, gtpv2c};
use fivewatch::session::{Direction, SessionConfig, SessionOrigin, SessionTable, TeidState, TunnelEndpoint};
use proptest::prelude::*;

const EPC: &str = "epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng";
const CREATE_DELETE: &str = "gtpv2c-create-delete-session.pcap";

use common::planes::{items, Item};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP literal")
}

fn ep4(teid: u32, a: &str) -> Option<TunnelEndpoint> {
    Some(TunnelEndpoint {
        teid,
        ipv4: Some(a.parse().expect("IPv4 literal")),
        ipv6: None,
    })
}

/// Every G-PDU of the EPC capture: (outer destination, TEID) → (direction, UE address,
/// G-PDUs), from `tshark -r tests/data/epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng -Y 'gtp &&
/// !gtpv2' -T fields -e ip.dst -e gtp.teid -e ip.src` (outer, inner address pairs), 1844
/// G-PDUs. The UE 10.45.0.2 is the inner source on uplink (eNB 127.0.1.1 → SGW-U 127.0.0.6 on
/// S1-U, SGW-U → PGW-U 127.0.0.7 on S5-U) and the inner destination on downlink (PGW-U →
/// SGW-U, SGW-U → eNB).
const EPC_GPDU_MAP: [(&str, u32, Direction, &str, u32); 4] = [
    ("127.0.0.6", 1, Direction::Downlink, "10.45.0.2", 577), // S5-U, from 127.0.0.7
    ("127.0.0.6", 2, Direction::Uplink, "10.45.0.2", 345),   // S1-U, from 127.0.1.1
    ("127.0.0.7", 2, Direction::Uplink, "10.45.0.2", 345),   // S5-U, from 127.0.0.6
    ("127.0.1.1", 1, Direction::Downlink, "10.45.0.2", 577), // S1-U, from 127.0.0.6
];

type GpduCount = BTreeMap<(IpAddr, u32), (Direction, IpAddr, u32)>;

/// Replay the EPC capture (PFCP only when `with_pfcp`) and map every G-PDU at its time.
fn replay_epc(with_pfcp: bool) -> (SessionTable, GpduCount, Vec<SessionOrigin>) {
    let cfg = SessionConfig {
        learning_period_ns: 0,
        ..SessionConfig::default()
    };
    let mut t = SessionTable::new(cfg);
    let mut got = GpduCount::new();
    let mut origins = Vec::new();
    for item in items(EPC) {
        match item {
            Item::Pfcp { src, dst, payload, ts } => {
                if with_pfcp {
                    t.on_pfcp(src, dst, &payload, ts).expect("PFCP decodes");
                    t.check_tunnel_info()
                        .expect("tunnel index entries follow their sessions");
                }
            }
            Item::Gtpc { src, dst, payload, ts } => {
                t.on_gtpv2c(src, dst, &payload, ts).expect("GTPv2-C decodes");
                t.check_tunnel_info()
                    .expect("tunnel index entries follow their sessions");
            }
            Item::Gpdu { pkt, ts } => {
                let tun = pkt.tunnel.expect("tunnel");
                let (dst, teid) = (tun.outer_dst, tun.header.teid);
                let TeidState::Known(s) = t.lookup_teid(dst, teid, ts) else {
                    panic!(
                        "G-PDU to {dst} TEID {teid} (inner {} → {}) is not mapped",
                        pkt.src, pkt.dst
                    );
                };
                let dir = s
                    .direction_of(dst, teid)
                    .expect("the key is one of the session's endpoints");
                let ue = match dir {
                    Direction::Uplink => pkt.src,
                    Direction::Downlink => pkt.dst,
                };
                assert!(s.has_ue_ip(ue), "{dst} TEID {teid}: session UE {:?} ≠ {ue}", s.ue_ipv4);
                if !origins.contains(&s.origin) {
                    origins.push(s.origin);
                }
                let e = got.entry((dst, teid)).or_insert((dir, ue, 0));
                assert_eq!((e.0, e.1), (dir, ue), "{dst} TEID {teid}: one direction and UE");
                e.2 += 1;
            }
        }
    }
    (t, got, origins)
}

fn epc_expected() -> GpduCount {
    EPC_GPDU_MAP
        .iter()
        .map(|(d, teid, dir, ue, n)| ((ip(d), *teid), (*dir, ip(ue), *n)))
        .collect()
}

#[test]
fn epc_every_gpdu_maps_to_its_ue_with_pfcp_and_gtpv2c() {
    let (t, got, _) = replay_epc(true);
    assert_eq!(got, epc_expected());
    assert_eq!(got.values().map(|v| v.2).sum::<u32>(), 1844, "tshark: 1844 G-PDUs");
    // tshark: PFCP Session Establishment with the SGW-U (frames 43/44, no UE IP Address in its
    // PDRs) and with the PGW-U (48/49); both deleted (frames 1919-1925), as is the GTPv2-C
    // PDN connection (1917-1926). Frames 19 and 21 repeat the PFCP Association Setup
    // Requests of frames 1 and 3 (same peer pair, type 5, sequence 1; each was answered by an
    // ICMP port unreachable): two retransmissions.
    let s = t.stats();
    assert_eq!((s.established, s.deleted, s.active, s.merged), (3, 3, 0, 1));
    assert_eq!(
        (s.retransmissions, s.unmatched_responses, s.malformed, s.unknown_session),
        (2, 0, 0, 0)
    );
}

#[test]
fn epc_gtpv2c_alone_maps_s1u_and_s5u() {
    let (t, got, origins) = replay_epc(false);
    // GTPv2-C alone announces all four endpoints: S1-U SGW (127.0.0.6, 2) and S5/S8-U PGW
    // (127.0.0.7, 2) in the S11 Create Session Response (frame 53, interface types 1 and 5),
    // S5/S8-U SGW (127.0.0.6, 1) in the S5 Create Session Request (frame 45, type 4) and the
    // eNodeB (127.0.1.1, 1) in the Modify Bearer Request (frame 57, type 0).
    assert_eq!(got, epc_expected());
    assert_eq!(origins, [SessionOrigin::Gtpv2c]);
    let s = t.stats();
    // tshark: Create Session Request/Response on S11 (42, 53) and S5 (45, 50), Modify Bearer
    // Request/Response (57, 61), Delete Session Request/Response on S11 (1917, 1926) and S5
    // (1918, 1923). The S5 half is folded into the S11 one: one PDN connection.
    assert_eq!((s.established, s.merged, s.deleted, s.active), (1, 1, 1, 0));
    assert_eq!(
        (s.retransmissions, s.unmatched_responses, s.malformed, s.unknown_session),
        (0, 0, 0, 0)
    );
    let n = |label: &str| {
        let i = gtpv2c::MESSAGE_LABELS.iter().position(|l| *l == label).expect("label");
        s.gtpc_messages[i]
    };
    assert_eq!(
        [
            n("create_session_request"),
            n("create_session_response"),
            n("modify_bearer_request"),
            n("modify_bearer_response"),
            n("delete_session_request"),
            n("delete_session_response"),
            n("other"),
        ],
        [2, 2, 1, 1, 2, 2, 0]
    );
    assert!(t.is_empty());
    assert!(t.lookup_ue(ip("10.45.0.2")).is_none());
    assert!(!matches!(
        t.lookup_teid(ip("127.0.0.6"), 2, u64::MAX),
        TeidState::Known(_)
    ));
}

/// The EPC PDN connection just before its Delete Session Request (frame 1917), GTPv2-C only.
#[test]
fn epc_gtpv2c_session_fields() {
    let mut t = SessionTable::new(SessionConfig::default());
    for item in items(EPC) {
        if let Item::Gtpc { src, dst, payload, ts } = item {
            // The first Delete Session Request (tshark: message type 36, frame 1917).
            if payload.get(1) == Some(&gtpv2c::MSG_DELETE_SESSION_REQUEST) {
                break;
            }
            t.on_gtpv2c(src, dst, &payload, ts).expect("decodes");
            t.check_tunnel_info()
                .expect("tunnel index entries follow their sessions");
        }
    }
    assert_eq!(t.len(), 1);
    let s = t.sessions().next().expect("one session");
    // tshark frame 42: Sender F-TEID type 10 (S11 MME), TEID 1 at 127.0.0.2; frame 53: type
    // 11 (S11/S4 SGW) TEID 1 at 127.0.0.3, PAA 10.45.0.2, Bearer Context EBI 5 with type 1
    // TEID 2 at 127.0.0.6 and type 5 TEID 2 at 127.0.0.7; frame 45: type 4 TEID 1 at
    // 127.0.0.6; frame 57: type 0 TEID 1 at 127.0.1.1.
    assert_eq!(s.origin, SessionOrigin::Gtpv2c);
    assert_eq!(
        (s.cp_seid, s.cp_ip, s.up_seid, s.up_ip),
        (1, ip("127.0.0.2"), Some(1), ip("127.0.0.3"))
    );
    assert_eq!(s.ebi, Some(5));
    assert_eq!(s.bearer_ebis().collect::<Vec<_>>(), [5]);
    assert_eq!(s.uplink, ep4(2, "127.0.0.6"));
    assert_eq!(s.downlink, ep4(1, "127.0.1.1"));
    assert_eq!(s.core_uplink, ep4(2, "127.0.0.7"));
    assert_eq!(s.core_downlink, ep4(1, "127.0.0.6"));
    assert_eq!((s.ue_ipv4, s.ue_ipv6), (Some(Ipv4Addr::new(10, 45, 0, 2)), None));
    assert!(s.established);
    assert_eq!(t.lookup_ue(ip("10.45.0.2")).map(|x| x.cp_seid), Some(1));
    // Every control tunnel of both halves leads to it: MME S11, SGW S11/S5 (both TEID 1 at
    // 127.0.0.3) and PGW S5 (TEID 1 at 127.0.0.4 and ::1).
    for (node, teid) in [("127.0.0.2", 1), ("127.0.0.3", 1), ("127.0.0.4", 1), ("::1", 1)] {
        assert_eq!(
            t.session_by_control_teid(ip(node), teid).map(|x| x.cp_seid),
            Some(1),
            "{node} {teid}"
        );
    }
}

/// `tests/data/gtpv2c-create-delete-session.pcap` (S5/S8 only), tshark `-T fields -e
/// gtpv2.message_type -e gtpv2.teid -e gtpv2.seq -e gtpv2.f_teid_interface_type -e
/// gtpv2.f_teid_gre_key -e gtpv2.f_teid_ipv4 -e gtpv2.pdn_addr_and_prefix.ipv4 -e gtpv2.rec`:
/// 1: 32, TEID 0, F-TEIDs 6/0x35529204/10.101.0.2 and 4/0x35529205/10.101.0.2, PAA 33.23.23.1;
/// 2: 33, TEID 0x35529204, cause 16, F-TEIDs 7/0x35529206/10.102.0.2 and
/// 5/0x35529207/10.102.0.2, PAA 33.23.23.1, recovery 1; 3: 36, TEID 0x35529206; 4: 37, TEID
/// 0x35529204, cause 16, recovery 1. All four use sequence 0x4b5462.
#[test]
fn create_then_delete_session_capture() {
    let mut t = SessionTable::new(SessionConfig::default());
    let msgs: Vec<_> = items(CREATE_DELETE)
        .into_iter()
        .filter_map(|i| match i {
            Item::Gtpc { src, dst, payload, ts } => Some((src, dst, payload, ts)),
            _ => None,
        })
        .collect();
    assert_eq!(msgs.len(), 4);
    for (src, dst, payload, ts) in &msgs[..2] {
        t.on_gtpv2c(*src, *dst, payload, *ts).expect("decodes");
        t.check_tunnel_info()
            .expect("tunnel index entries follow their sessions");
    }
    let s = t.sessions().next().expect("established");
    assert!(s.established);
    assert_eq!(
        (s.cp_seid, s.cp_ip, s.up_seid, s.up_ip),
        (0x3552_9204, ip("10.101.0.2"), Some(0x3552_9206), ip("10.102.0.2"))
    );
    assert_eq!(s.core_downlink, ep4(0x3552_9205, "10.101.0.2"));
    assert_eq!(s.core_uplink, ep4(0x3552_9207, "10.102.0.2"));
    assert_eq!((s.uplink, s.downlink), (None, None), "no S1-U on S5/S8");
    assert_eq!(s.ue_ipv4, Some(Ipv4Addr::new(33, 23, 23, 1)));
    assert_eq!(s.ebi, Some(5));
    let ts = msgs[1].3;
    for (node, teid, dir) in [
        ("10.101.0.2", 0x3552_9205, Direction::Downlink),
        ("10.102.0.2", 0x3552_9207, Direction::Uplink),
    ] {
        let TeidState::Known(x) = t.lookup_teid(ip(node), teid, ts) else {
            panic!("{node} {teid:#x} not mapped")
        };
        assert_eq!(x.direction_of(ip(node), teid), Some(dir));
    }
    assert_eq!(t.gtpc_peer_restart_counter(ip("10.102.0.2")), Some(1));
    for (src, dst, payload, ts) in &msgs[2..] {
        t.on_gtpv2c(*src, *dst, payload, *ts).expect("decodes");
        t.check_tunnel_info()
            .expect("tunnel index entries follow their sessions");
    }
    assert!(t.is_empty());
    let st = t.stats();
    assert_eq!(
        (st.established, st.deleted, st.retransmissions, st.unmatched_responses),
        (1, 1, 0, 0)
    );
    assert!(matches!(
        t.lookup_teid(ip("10.102.0.2"), 0x3552_9207, ts),
        TeidState::Unknown
    ));
    assert!(t.lookup_ue(ip("33.23.23.1")).is_none());
    assert!(t.session_by_control_teid(ip("10.101.0.2"), 0x3552_9204).is_none());
}

// ---- hand-built messages (TS 29.274 §5.1 header, §8.2.1 IE layout) ----

fn ie(t: u8, instance: u8, v: &[u8]) -> Vec<u8> {
    let mut o = vec![t];
    o.extend_from_slice(&(v.len() as u16).to_be_bytes());
    o.push(instance & 0x0f);
    o.extend_from_slice(v);
    o
}

/// Version 2 header with T set when `teid` is given, sequence `seq`, then `body`.
fn msg(t: u8, teid: Option<u32>, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut o = vec![if teid.is_some() { 0x48 } else { 0x40 }, t, 0, 0];
    if let Some(teid) = teid {
        o.extend_from_slice(&teid.to_be_bytes());
    }
    o.extend_from_slice(&(seq << 8).to_be_bytes());
    o.extend_from_slice(body);
    let len = (o.len() - 4) as u16;
    o[2..4].copy_from_slice(&len.to_be_bytes());
    o
}

/// F-TEID IE (§8.22) with an IPv4 address.
fn fteid(instance: u8, iftype: u8, teid: u32, a: [u8; 4]) -> Vec<u8> {
    let mut v = vec![0x80 | iftype];
    v.extend_from_slice(&teid.to_be_bytes());
    v.extend_from_slice(&a);
    ie(gtpv2c::IE_FTEID, instance, &v)
}

fn bearer_context(ebi: u8, inner: &[u8]) -> Vec<u8> {
    let mut v = ie(gtpv2c::IE_EBI, 0, &[ebi]);
    v.extend_from_slice(inner);
    ie(gtpv2c::IE_BEARER_CONTEXT, 0, &v)
}

fn cause(v: u8) -> Vec<u8> {
    ie(gtpv2c::IE_CAUSE, 0, &[v, 0])
}

const MME: [u8; 4] = [10, 0, 0, 2];
const SGW: [u8; 4] = [10, 0, 0, 3];
const SGW_U: [u8; 4] = [10, 0, 0, 6];
const ENB: [u8; 4] = [10, 0, 1, 1];
const SEC: u64 = 1_000_000_000;
/// The S1-U SGW TEID [`establish`] gives the PDN connection of MME TEID 0x40.
const S1U_0X40: u32 = 100 + 0x40;

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

/// S11 Create Session Request from the MME (sender TEID `mme_teid`, default bearer 5).
fn cs_request(seq: u32, mme_teid: u32) -> Vec<u8> {
    let mut b = fteid(0, 10, mme_teid, MME);
    b.extend(ie(gtpv2c::IE_PAA, 0, &[1, 0, 0, 0, 0]));
    b.extend(bearer_context(5, &[]));
    msg(gtpv2c::MSG_CREATE_SESSION_REQUEST, Some(0), seq, &b)
}

/// S11 Create Session Response from `sgw`: Cause, sender (SGW S11) TEID `sgw_teid`, PAA
/// 10.60.0.`ue`, Bearer Context 5 with the S1-U SGW F-TEID `s1u` at SGW-U.
fn cs_response(seq: u32, mme_teid: u32, sgw_teid: u32, s1u: u32, ue: u8, cause_value: u8, sgw: [u8; 4]) -> Vec<u8> {
    let mut b = cause(cause_value);
    b.extend(fteid(0, 11, sgw_teid, sgw));
    b.extend(ie(gtpv2c::IE_PAA, 0, &[1, 10, 60, 0, ue]));
    b.extend(bearer_context(5, &[cause(16), fteid(0, 1, s1u, SGW_U)].concat()));
    msg(gtpv2c::MSG_CREATE_SESSION_RESPONSE, Some(mme_teid), seq, &b)
}

fn echo(seq: u32, restart: u8, response: bool) -> Vec<u8> {
    let t = if response {
        gtpv2c::MSG_ECHO_RESPONSE
    } else {
        gtpv2c::MSG_ECHO_REQUEST
    };
    msg(t, None, seq, &ie(gtpv2c::IE_RECOVERY, 0, &[restart]))
}

/// Create Session Request/Response with `sgw` (sequence `seq`, MME TEID = SGW TEID = `n`).
fn establish(t: &mut SessionTable, seq: u32, n: u32, sgw: [u8; 4], ts: u64) {
    t.on_gtpv2c(v4(MME), v4(sgw), &cs_request(seq, n), ts).unwrap();
    t.on_gtpv2c(v4(sgw), v4(MME), &cs_response(seq, n, n, 100 + n, n as u8, 16, sgw), ts)
        .unwrap();
}

fn label(l: &str) -> usize {
    gtpv2c::MESSAGE_LABELS.iter().position(|x| *x == l).expect("label")
}

#[test]
fn retransmission_is_counted_once_and_not_reapplied() {
    let mut t = SessionTable::new(SessionConfig::default());
    let req = cs_request(7, 0x11);
    t.on_gtpv2c(v4(MME), v4(SGW), &req, SEC).unwrap();
    t.on_gtpv2c(v4(MME), v4(SGW), &req, 4 * SEC).unwrap(); // T3 expiry: same sequence number
    t.on_gtpv2c(v4(MME), v4(SGW), &req, 7 * SEC).unwrap();
    let rsp = cs_response(7, 0x11, 0x22, 0x33, 1, 16, SGW);
    t.on_gtpv2c(v4(SGW), v4(MME), &rsp, 7 * SEC).unwrap();
    t.on_gtpv2c(v4(SGW), v4(MME), &rsp, 8 * SEC).unwrap();
    let s = t.stats();
    assert_eq!((s.retransmissions, s.active, s.established, s.replaced), (3, 1, 1, 0));
    assert_eq!(s.gtpc_messages[label("create_session_request")], 3);
    assert_eq!(s.gtpc_messages[label("create_session_response")], 2);
    assert_eq!((s.unmatched_responses, s.unknown_session), (0, 0));
    assert!(matches!(t.lookup_teid(v4(SGW_U), 0x33, 8 * SEC), TeidState::Known(x) if x.cp_seid == 0x11));
    // A new sequence number from the same MME tunnel and default EBI is a new PDN connection
    // replacing the old one.
    t.on_gtpv2c(v4(MME), v4(SGW), &cs_request(8, 0x11), 9 * SEC).unwrap();
    let s = t.stats();
    assert_eq!((s.retransmissions, s.active, s.replaced), (3, 1, 1));
    assert!(matches!(t.lookup_teid(v4(SGW_U), 0x33, 9 * SEC), TeidState::Unknown));
}

#[test]
fn rejected_create_session_response_removes_the_session() {
    let mut t = SessionTable::new(SessionConfig::default());
    t.on_gtpv2c(v4(MME), v4(SGW), &cs_request(1, 5), SEC).unwrap();
    assert_eq!(t.len(), 1);
    // Cause 64 "Context Not Found" (§8.4: 64-239 reject).
    t.on_gtpv2c(v4(SGW), v4(MME), &cs_response(1, 5, 6, 7, 1, 64, SGW), SEC)
        .unwrap();
    assert!(t.is_empty());
    assert!(matches!(t.lookup_teid(v4(SGW_U), 7, SEC), TeidState::Unknown));
    assert!(t.lookup_ue(v4([10, 60, 0, 1])).is_none());
    let s = t.stats();
    assert_eq!((s.rejected, s.established), (1, 0));
    // 17 "Request accepted partially" and 18 "New PDN type due to network preference" are
    // acceptances (16-63).
    for (seq, c) in [(2, 17), (3, 18)] {
        t.on_gtpv2c(v4(MME), v4(SGW), &cs_request(seq, seq), SEC).unwrap();
        t.on_gtpv2c(v4(SGW), v4(MME), &cs_response(seq, seq, seq, 50 + seq, 2, c, SGW), SEC)
            .unwrap();
    }
    let s = t.stats();
    assert_eq!((s.rejected, s.established, s.active), (1, 2, 2));
}

#[test]
fn recovery_restart_counter_change_purges_the_peers_sessions() {
    let mut t = SessionTable::new(SessionConfig::default());
    let other_sgw = [10, 0, 0, 13];
    t.on_gtpv2c(v4(SGW), v4(MME), &echo(1, 5, false), SEC).unwrap();
    establish(&mut t, 2, 1, SGW, SEC);
    establish(&mut t, 3, 2, SGW, SEC);
    establish(&mut t, 4, 3, other_sgw, SEC);
    assert_eq!(t.len(), 3);
    // Same counter again: nothing happens.
    t.on_gtpv2c(v4(SGW), v4(MME), &echo(5, 5, false), 2 * SEC).unwrap();
    assert_eq!(t.len(), 3);
    // The SGW restarted: new restart counter in its Echo Response.
    t.on_gtpv2c(v4(MME), v4(SGW), &echo(6, 9, false), 3 * SEC).unwrap();
    t.on_gtpv2c(v4(SGW), v4(MME), &echo(6, 6, true), 3 * SEC).unwrap();
    let s = t.stats();
    assert_eq!((s.peer_restarts, s.purged_by_restart, s.active), (1, 2, 1));
    assert_eq!(t.sessions().map(|x| x.cp_seid).collect::<Vec<_>>(), [3]);
    assert!(t.lookup_ue(v4([10, 60, 0, 1])).is_none());
    assert_eq!(t.lookup_ue(v4([10, 60, 0, 3])).map(|x| x.cp_seid), Some(3));
    assert_eq!(t.gtpc_peer_restart_counter(v4(SGW)), Some(6));
    assert_eq!(t.gtpc_peer_restart_counter(v4(MME)), Some(9));
    assert_eq!(s.gtpc_messages[label("echo_request")], 3);
    assert_eq!(s.gtpc_messages[label("echo_response")], 1);
}

#[test]
fn modify_bearer_then_delete_session_removes_the_teid_index_entries() {
    let mut t = SessionTable::new(SessionConfig {
        learning_period_ns: 0,
        ..SessionConfig::default()
    });
    establish(&mut t, 1, 0x40, SGW, SEC);
    // Modify Bearer Request to the SGW's S11 TEID: eNB S1-U F-TEID (type 0) 0x99.
    let mb = bearer_context(5, &fteid(0, 0, 0x99, ENB));
    t.on_gtpv2c(v4(MME), v4(SGW), &msg(34, Some(0x40), 2, &mb), 2 * SEC)
        .unwrap();
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(35, Some(0x40), 2, &cause(16)), 2 * SEC)
        .unwrap();
    let TeidState::Known(s) = t.lookup_teid(v4(ENB), 0x99, 2 * SEC) else {
        panic!("eNB TEID not mapped")
    };
    assert_eq!(s.direction_of(v4(ENB), 0x99), Some(Direction::Downlink));
    assert_eq!(s.downlink.map(|e| e.teid), Some(0x99));
    assert!(matches!(
        t.lookup_teid(v4(SGW_U), S1U_0X40, 2 * SEC),
        TeidState::Known(_)
    ));
    // Release Access Bearers (§7.2.21/7.2.22) forgets the eNB F-TEID only.
    t.on_gtpv2c(v4(MME), v4(SGW), &msg(170, Some(0x40), 3, &[]), 3 * SEC)
        .unwrap();
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(171, Some(0x40), 3, &cause(16)), 3 * SEC)
        .unwrap();
    assert!(matches!(t.lookup_teid(v4(ENB), 0x99, 3 * SEC), TeidState::Unmapped));
    assert!(matches!(
        t.lookup_teid(v4(SGW_U), S1U_0X40, 3 * SEC),
        TeidState::Known(_)
    ));
    t.on_gtpv2c(v4(MME), v4(SGW), &msg(34, Some(0x40), 4, &mb), 4 * SEC)
        .unwrap();
    // Delete Session Request (Linked EBI 5) to the SGW: nothing removed until the response.
    let ds = ie(gtpv2c::IE_EBI, 0, &[5]);
    t.on_gtpv2c(v4(MME), v4(SGW), &msg(36, Some(0x40), 5, &ds), 5 * SEC)
        .unwrap();
    assert_eq!(t.len(), 1);
    // A rejected Delete Session Response keeps it.
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(37, Some(0x40), 5, &cause(64)), 5 * SEC)
        .unwrap();
    assert_eq!(t.len(), 1);
    t.on_gtpv2c(v4(MME), v4(SGW), &msg(36, Some(0x40), 6, &ds), 6 * SEC)
        .unwrap();
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(37, Some(0x40), 6, &cause(16)), 6 * SEC)
        .unwrap();
    assert!(t.is_empty());
    for (node, teid) in [(ENB, 0x99), (SGW_U, S1U_0X40)] {
        assert!(matches!(t.lookup_teid(v4(node), teid, 6 * SEC), TeidState::Unmapped));
    }
    assert!(t.session_by_control_teid(v4(SGW), 0x40).is_none());
    assert!(t.session_by_control_teid(v4(MME), 0x40).is_none());
    assert!(t.lookup_ue(v4([10, 60, 0, 0x40])).is_none());
    let s = t.stats();
    assert_eq!((s.deleted, s.unknown_session, s.unmatched_responses), (1, 0, 0));
}

#[test]
fn delete_bearer_of_a_dedicated_bearer_keeps_the_pdn_connection() {
    let mut t = SessionTable::new(SessionConfig::default());
    establish(&mut t, 1, 0x40, SGW, SEC);
    // Create Bearer Response (§7.2.4) with dedicated bearer 6: S1-U SGW F-TEID (instance 1).
    let bc = bearer_context(6, &[cause(16), fteid(1, 1, 0x600, SGW_U)].concat());
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(95, Some(0x40), 2, &[]), SEC)
        .unwrap();
    t.on_gtpv2c(
        v4(MME),
        v4(SGW),
        &msg(96, Some(0x40), 2, &[cause(16), bc].concat()),
        SEC,
    )
    .unwrap();
    let TeidState::Known(s) = t.lookup_teid(v4(SGW_U), 0x600, SEC) else {
        panic!("dedicated bearer not mapped")
    };
    assert_eq!(s.bearer_ebis().collect::<Vec<_>>(), [5, 6]);
    assert_eq!(
        s.uplink.map(|e| e.teid),
        Some(S1U_0X40),
        "default bearer stays in `uplink`"
    );
    // Delete Bearer Request/Response for EBI 6 (instance 1; no Linked EBI).
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(99, Some(0x40), 3, &ie(73, 1, &[6])), SEC)
        .unwrap();
    let rsp = [cause(16), bearer_context(6, &cause(16))].concat();
    t.on_gtpv2c(v4(MME), v4(SGW), &msg(100, Some(0x40), 3, &rsp), SEC)
        .unwrap();
    assert_eq!(t.len(), 1);
    assert!(matches!(t.lookup_teid(v4(SGW_U), 0x600, SEC), TeidState::Unknown));
    assert!(matches!(t.lookup_teid(v4(SGW_U), S1U_0X40, SEC), TeidState::Known(_)));
    // Delete Bearer for the default bearer: the whole PDN connection goes.
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(99, Some(0x40), 4, &ie(73, 0, &[5])), SEC)
        .unwrap();
    t.on_gtpv2c(
        v4(MME),
        v4(SGW),
        &msg(100, Some(0x40), 4, &[cause(16), ie(73, 0, &[5])].concat()),
        SEC,
    )
    .unwrap();
    assert!(t.is_empty());
    assert_eq!(t.stats().deleted, 1);
}

#[test]
fn malformed_and_gtpv1_messages() {
    let mut t = SessionTable::new(SessionConfig::default());
    // IE overrun: an F-TEID claiming 40 octets.
    let mut bad = cs_request(1, 1);
    bad.extend([87, 0, 40, 0, 1]);
    let len = (bad.len() - 4) as u16;
    bad[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        t.on_gtpv2c(v4(MME), v4(SGW), &bad, SEC).unwrap_err().reason,
        decode::Reason::IeOverrun
    );
    // Length running past the datagram.
    let mut cut = cs_request(2, 2);
    cut[3] += 4;
    assert_eq!(
        t.on_gtpv2c(v4(MME), v4(SGW), &cut, SEC).unwrap_err().reason,
        decode::Reason::Truncated
    );
    // Create Session Request without a Sender F-TEID: mandatory (§7.2.1).
    let no_sender = msg(32, Some(0), 3, &bearer_context(5, &[]));
    t.on_gtpv2c(v4(MME), v4(SGW), &no_sender, SEC).unwrap();
    assert_eq!((t.stats().malformed, t.len()), (3, 0));
    // GTPv1-C on the shared port: an error, but not a malformed GTPv2-C message.
    let v1 = [0x32, 0x10, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
    assert_eq!(
        t.on_gtpv2c(v4(MME), v4(SGW), &v1, SEC).unwrap_err().reason,
        decode::Reason::BadVersion
    );
    assert_eq!(t.stats().malformed, 3);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        header in any::<bool>(),
        mtype in prop::sample::select(vec![1u8, 2, 32, 33, 34, 35, 36, 37, 95, 96, 99, 100, 170, 171]),
    ) {
        let mut d = data;
        // Half the cases get a plausible header (T=1, TEID 1) so that the IE paths are reached.
        if header && d.len() >= 12 {
            d[0] = 0x48;
            d[1] = mtype;
            let len = (d.len() - 4) as u16;
            d[2..4].copy_from_slice(&len.to_be_bytes());
            d[4..8].copy_from_slice(&1u32.to_be_bytes());
        }
        let mut t = SessionTable::new(SessionConfig { capacity: 2, ..SessionConfig::default() });
        // A live session on MME TEID 1 / SGW TEID 1 first, so that session paths are taken.
        establish(&mut t, 0, 1, SGW, 1);
        let (a, b) = (v4(MME), v4(SGW));
        let _ = t.on_gtpv2c(a, b, &d, 2);
        let _ = t.on_gtpv2c(b, a, &d, 3);
        let _ = t.on_gtpv2c(b, a, &d, 4);
        prop_assert!(t.len() <= 2);
        let _ = t.lookup_teid(v4(SGW_U), 101, 5);
        let _ = t.stats();
    }
}

// ---- adversarial captures (forged or unanswered messages) ----

#[test]
fn unmatched_gtpv2c_responses_change_nothing() {
    let att = [6, 6, 6, 6];
    let mut t = SessionTable::new(SessionConfig {
        learning_period_ns: 0,
        ..SessionConfig::default()
    });
    establish(&mut t, 1, 0x40, SGW, SEC);
    let mb = bearer_context(5, &fteid(0, 0, 0x99, ENB));
    t.on_gtpv2c(v4(MME), v4(SGW), &msg(34, Some(0x40), 2, &mb), SEC)
        .unwrap();
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(35, Some(0x40), 2, &cause(16)), SEC)
        .unwrap();
    // No request seen for any of these: Delete Session, Delete Bearer (default bearer),
    // Release Access Bearers, a rejecting Create Session Response; then a Delete Session
    // Response from another node answering a real request's sequence number.
    let forged = [
        msg(37, Some(0x40), 10, &cause(16)),
        msg(100, Some(0x40), 11, &[cause(16), ie(73, 0, &[5])].concat()),
        msg(171, Some(0x40), 12, &cause(16)),
        cs_response(13, 0x40, 0x40, 0x77, 0x40, 64, SGW),
    ];
    for m in &forged {
        t.on_gtpv2c(v4(SGW), v4(MME), m, 2 * SEC).unwrap();
    }
    t.on_gtpv2c(v4(MME), v4(SGW), &msg(36, Some(0x40), 14, &ie(73, 0, &[5])), 2 * SEC)
        .unwrap();
    t.on_gtpv2c(v4(att), v4(MME), &msg(37, Some(0x40), 14, &cause(16)), 2 * SEC)
        .unwrap();
    // A Delete Bearer Response with the Delete Session Request's sequence number: wrong type.
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(100, Some(0x40), 14, &cause(16)), 2 * SEC)
        .unwrap();
    let s = t.stats();
    assert_eq!((s.active, s.deleted, s.rejected), (1, 0, 0));
    assert_eq!((s.unmatched_responses, s.unknown_session), (6, 0));
    for (node, teid) in [(ENB, 0x99), (SGW_U, S1U_0X40)] {
        assert!(matches!(t.lookup_teid(v4(node), teid, 2 * SEC), TeidState::Known(_)));
    }
    // The real Delete Session Response still finds its request.
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(37, Some(0x40), 14, &cause(16)), 3 * SEC)
        .unwrap();
    let s = t.stats();
    assert_eq!((s.active, s.deleted, s.unmatched_responses), (0, 1, 6));
}

#[test]
fn forged_gtpv2c_request_reusing_a_sequence_number_does_not_suppress_the_real_one() {
    let mut t = SessionTable::new(SessionConfig::default());
    // IE-less Create Session Requests (malformed: no Sender F-TEID) with the MME's next
    // sequence numbers, and a well-formed forged one for sequence 12.
    for seq in 10..20 {
        t.on_gtpv2c(v4(MME), v4(SGW), &msg(32, Some(0), seq, &[]), SEC).unwrap();
    }
    t.on_gtpv2c(v4(MME), v4(SGW), &cs_request(12, 0xbad), SEC).unwrap();
    assert_eq!((t.stats().malformed, t.len()), (10, 1));
    for n in 10..13u32 {
        establish(&mut t, n, n, SGW, 2 * SEC);
    }
    let s = t.stats();
    assert_eq!((s.retransmissions, s.established, s.active), (0, 3, 4));
    for n in 10..13u32 {
        let TeidState::Known(x) = t.lookup_teid(v4(SGW_U), 100 + n, 2 * SEC) else {
            panic!("S1-U {n} not mapped")
        };
        assert_eq!((x.cp_seid, x.established), (u64::from(n), true));
    }
    // A true retransmission (same octets) is still one.
    t.on_gtpv2c(v4(MME), v4(SGW), &cs_request(12, 12), 3 * SEC).unwrap();
    assert_eq!((t.stats().retransmissions, t.stats().replaced), (1, 0));
}

#[test]
fn gtpv2c_recovery_of_a_peer_without_sessions_purges_nothing() {
    let mut t = SessionTable::new(SessionConfig::default());
    let other_sgw = [10, 0, 0, 13];
    for n in 1..=6u32 {
        establish(&mut t, n, n, if n % 3 == 0 { other_sgw } else { SGW }, SEC);
    }
    for j in 0..1000u32 {
        t.on_gtpv2c(v4([9, 9, 9, 9]), v4(SGW), &echo(j, (j & 1) as u8, false), 2 * SEC)
            .unwrap();
    }
    let s = t.stats();
    assert_eq!((s.peer_restarts, s.purged_by_restart, s.active), (999, 0, 6));
    t.on_gtpv2c(v4(other_sgw), v4(MME), &echo(1, 1, false), 3 * SEC)
        .unwrap();
    t.on_gtpv2c(v4(other_sgw), v4(MME), &echo(2, 2, false), 3 * SEC)
        .unwrap();
    let s = t.stats();
    assert_eq!((s.peer_restarts, s.purged_by_restart, s.active), (1000, 2, 4));
    // Every session has the MME and the SGW as nodes.
    assert_eq!(t.index_sizes().by_peer, 8);
}

/// Create Bearer Request from the SGW on MME tunnel `n`: 15 bearers × one F-TEID of type
/// `iftype` (TEID `iftype << 8 | ebi` at 10.`iftype`.0.`ebi`).
fn fat_bearers(seq: u32, n: u32, iftype: u8) -> Vec<u8> {
    let bcs: Vec<u8> = (1..=15u8)
        .flat_map(|e| {
            bearer_context(
                e,
                &fteid(0, iftype, u32::from(iftype) << 8 | u32::from(e), [10, iftype, 0, e]),
            )
        })
        .collect();
    msg(95, Some(n), seq, &bcs)
}

#[test]
fn tunnel_keys_per_session_are_capped_and_release_access_bearers_drops_only_enb_keys() {
    let mut t = SessionTable::new(SessionConfig {
        learning_period_ns: 0,
        ..SessionConfig::default()
    });
    establish(&mut t, 1, 0x40, SGW, SEC);
    for (seq, iftype) in [(2, 1), (3, 4), (4, 5), (5, 0)] {
        t.on_gtpv2c(v4(SGW), v4(MME), &fat_bearers(seq, 0x40, iftype), SEC)
            .unwrap();
    }
    // 15 bearers × 4 F-TEIDs = 60 keys; bearer 5's S1-U SGW F-TEID of the Create Session
    // Response was replaced by the one above.
    let s = t.stats();
    assert_eq!(t.index_sizes().teids, 16);
    assert_eq!(s.teid_keys_dropped, 60 - 16);
    let x = t.sessions().next().expect("one session");
    assert_eq!(x.bearer_ebis().count(), 15);
    // The default bearer's four endpoints are indexed first.
    for iftype in [0u8, 1, 4, 5] {
        let (a, teid) = ([10, iftype, 0, 5], u32::from(iftype) << 8 | 5);
        assert!(
            matches!(t.lookup_teid(v4(a), teid, SEC), TeidState::Known(_)),
            "type {iftype}"
        );
    }
    // Release Access Bearers: the indexed eNodeB keys (type 0) go, nothing else.
    let enb_indexed = (1..=15u8)
        .filter(|e| {
            matches!(
                t.lookup_teid(v4([10, 0, 0, *e]), u32::from(*e), SEC),
                TeidState::Known(_)
            )
        })
        .count();
    assert!(enb_indexed >= 1);
    t.on_gtpv2c(v4(MME), v4(SGW), &msg(170, Some(0x40), 6, &[]), 2 * SEC)
        .unwrap();
    t.on_gtpv2c(v4(SGW), v4(MME), &msg(171, Some(0x40), 6, &cause(16)), 2 * SEC)
        .unwrap();
    assert_eq!(t.index_sizes().teids, 16 - enb_indexed);
    for e in 1..=15u8 {
        assert!(matches!(
            t.lookup_teid(v4([10, 0, 0, e]), u32::from(e), 2 * SEC),
            TeidState::Unmapped
        ));
    }
    assert!(matches!(
        t.lookup_teid(v4([10, 1, 0, 5]), 0x105, 2 * SEC),
        TeidState::Known(_)
    ));
    assert_eq!(t.stats().teid_keys_dropped, 44);
}
