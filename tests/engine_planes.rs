//! The engine's per-plane counters (what `fivewatch replay` prints and /metrics exports) on
//! every capture with control-plane ground truth: GTP-U and GTPv2-C messages by type, NGAP
//! messages by procedure and PDU choice, S1AP messages by PDU choice (tests/data/expected/planes/, made
//! by scripts/tshark-planes-expected.py) and PFCP messages by type
//! (tests/data/expected/pfcp/, made by scripts/tshark-pfcp-expected.py), all produced once by
//! tshark 4.0 and checked in.
//!
//! The replay runs with reassembly off, since the ground truth is per frame with tshark's
//! defragmentation off.

mod common;

use std::collections::BTreeMap;

use fivewatch::app;
use fivewatch::app::AlertSink;
use fivewatch::config::Config;
use fivewatch::decode::{gtpu, gtpv2c, pfcp, sctp};

fn replay(name: &str) -> app::ReplaySummary {
    let mut cfg = Config::default();
    cfg.reassembly.enabled = false;
    let mut sink = AlertSink::open(None, false).unwrap();
    app::replay(&cfg, &[common::capture(name)], &mut sink, None)
}

fn nonzero(m: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    m.iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn planes(name: &str) -> serde_json::Value {
    let p = common::data_dir().join("expected/planes").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// Captures whose GTP-U runs on ports other than 2152: the ground truth decodes them with
/// tshark's heuristics (`-d udp.port==2152,gtp` plus GTP's own heuristic dissector), the
/// engine only on 2152 and the configured `decode.extra_gtpu_port`.
const NONSTANDARD_GTPU_PORTS: &[&str] = &["gtp-v1c-gtpu-ext-nonstd-ports.pcapng"];

/// (capture, message label, decode error): one message of that type that tshark counts and
/// the engine reports as that decode error. odd-tcp frame 6 declares a 42-octet message in
/// a 12-octet datagram; lookalike frame 7 is a GTPv2 header with message length 0.
const GTPC_ERRORS: &[(&str, &str, &str)] = &[
    (
        "gtpv2c-odd-tcp-malformed.pcapng",
        "modify_bearer_request",
        "gtpc:truncated",
    ),
    (
        "gtp-lookalike-udp-false-positive.pcapng",
        "echo_request",
        "gtpc:bad_length",
    ),
];

#[test]
fn gtpu_ngap_s1ap_gtpc_counts_match_tshark() {
    let dir = common::data_dir().join("expected/planes");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(String::from))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    let (mut checked_ngap, mut checked_gtpc) = (0, 0);
    for name in &names {
        let e = planes(name);
        let s = replay(name);
        // Each file holds the planes its capture carries.
        if let Some(msgs) = e["gtpu"]["messages"]
            .as_object()
            .filter(|_| !NONSTANDARD_GTPU_PORTS.contains(&name.as_str()))
        {
            let mut want = BTreeMap::new();
            for (t, n) in msgs {
                let t: u8 = t.parse().unwrap();
                *want
                    .entry(gtpu::MESSAGE_LABELS[gtpu::message_index(t)].to_string())
                    .or_insert(0) += n.as_u64().unwrap();
            }
            assert_eq!(nonzero(&s.gtpu), want, "{name}: GTP-U messages by type");
        }
        let (mut ngap, mut s1ap) = (BTreeMap::new(), BTreeMap::new());
        for f in e["sctp"]["frames"].as_array().map_or(&[][..], |v| v) {
            for pair in f["ngap"].as_array().unwrap() {
                let (choice, code) = (pair[0].as_u64().unwrap() as usize, pair[1].as_u64().unwrap() as u8);
                let key = format!("{}/{}", sctp::procedure_label(code), sctp::PDU_CHOICE_LABELS[choice]);
                *ngap.entry(key).or_insert(0u64) += 1;
            }
            for pair in f["s1ap"].as_array().unwrap() {
                let choice = pair[0].as_u64().unwrap() as usize;
                *s1ap.entry(sctp::PDU_CHOICE_LABELS[choice].to_string()).or_insert(0u64) += 1;
            }
        }
        if let Some(msgs) = e["gtpv2c"]["messages_by_type"].as_object() {
            let mut want = BTreeMap::new();
            for (t, n) in msgs {
                let t: u8 = t.parse().unwrap();
                *want.entry(gtpv2c::message_label(t).to_string()).or_insert(0) += n.as_u64().unwrap();
            }
            // Messages tshark counts that the engine reports as decode errors instead (see
            // tests/planes_vs_tshark.rs): the GTPv2-C length field is enforced here.
            for (cap, label, error) in GTPC_ERRORS {
                if cap == name {
                    *want.get_mut(*label).unwrap() -= 1;
                    want.retain(|_, n| *n > 0);
                    assert_eq!(s.decode_errors_by_reason.get(*error), Some(&1), "{name}: {error}");
                }
            }
            assert_eq!(nonzero(&s.gtpc), want, "{name}: GTPv2-C messages by type");
            checked_gtpc += 1;
        }
        checked_ngap += ngap.values().sum::<u64>();
        assert_eq!(s.ngap, ngap, "{name}: NGAP messages by procedure/choice");
        assert_eq!(nonzero(&s.s1ap), s1ap, "{name}: S1AP messages by choice");
    }
    // The 5G SA capture alone has 1310 whole NGAP messages in SCTP DATA chunks.
    assert!(checked_ngap > 1000, "{checked_ngap}");
    assert!(checked_gtpc >= 4, "{checked_gtpc}");
}

#[test]
fn pfcp_counts_match_tshark() {
    for name in [
        "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng",
        "pfcp-session-rawip.pcapng",
    ] {
        let p = common::data_dir().join("expected/pfcp").join(format!("{name}.json"));
        let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let mut want = BTreeMap::new();
        for (t, n) in e["by_type"].as_object().unwrap() {
            let t = pfcp::MessageType(t.parse().unwrap());
            *want.entry(t.name().to_string()).or_insert(0) += n.as_u64().unwrap();
        }
        let s = replay(name);
        assert_eq!(nonzero(&s.pfcp), want, "{name}: PFCP messages by type");
    }
}

#[test]
fn every_gpdu_of_the_5g_capture_maps_to_a_pfcp_session() {
    // 62 G-PDUs (tshark: `-Y 'gtp.message == 255'`), all to or from a session the capture sets
    // up; the flow records name the SMF's SEID.
    let s = replay("5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng");
    let want: BTreeMap<String, u64> = [("known".to_string(), 62)].into();
    assert_eq!(nonzero(&s.gtpu_session_lookups), want);
    assert_eq!(s.sessions["established"], 23);
    assert_eq!(s.sessions["deleted"], 20);
    assert_eq!(s.sessions["active"], 3);
}

/// Engine over built Ethernet frames, one per millisecond.
fn run_frames(frames: &[Vec<u8>]) -> fivewatch::pipeline::Stats {
    let mut engine = fivewatch::pipeline::Engine::new(&Config::default(), "test".into());
    for (i, f) in frames.iter().enumerate() {
        common::feed_ethernet(&mut engine, 1_700_000_000_000_000_000 + i as u64 * 1_000_000, f);
    }
    engine.finish();
    engine.stats().clone()
}

/// Ethernet / IPv4 / UDP 2152 / GTP-U message `msg_type` with TEID `teid` and `ies` (TS
/// 29.281 §5.1: flags 0x32 = version 1, PT, S; sequence 7).
fn gtpu_signalling(msg_type: u8, teid: u32, ies: &[u8]) -> Vec<u8> {
    use common::frames::{ether, ipv4, udp};
    let mut g = vec![0x32, msg_type];
    g.extend_from_slice(&((4 + ies.len()) as u16).to_be_bytes());
    g.extend_from_slice(&teid.to_be_bytes());
    g.extend_from_slice(&[0, 7, 0, 0]);
    g.extend_from_slice(ies);
    ether(ipv4(17, [10, 0, 0, 1], [10, 0, 0, 2], &udp(2152, 2152, &g)))
}

#[test]
fn gtpu_signalling_messages_are_counted_and_their_ies_checked() {
    let stats = run_frames(&[
        // Echo Request, Recovery IE (type 14, TV, 1 octet: restart counter 0).
        gtpu_signalling(1, 0, &[14, 0]),
        // Error Indication: TEID Data I (16, TV 4 octets) and GTP-U Peer Address (133, TLV).
        gtpu_signalling(26, 0, &[16, 0, 0, 0, 9, 133, 0, 4, 10, 0, 0, 2]),
        // End Marker: no IEs.
        gtpu_signalling(254, 9, &[]),
        // Supported Extension Headers Notification: Extension Header Type List (141).
        gtpu_signalling(31, 0, &[141, 2, 0x85, 0xc0]),
        // Error Indication whose Peer Address runs past the message: malformed.
        gtpu_signalling(26, 0, &[16, 0, 0, 0, 9, 133, 0, 16, 10, 0]),
        // An unknown TV IE type: its length cannot be known.
        gtpu_signalling(1, 0, &[99, 1]),
        // A message type TS 29.281 does not define.
        gtpu_signalling(77, 0, &[]),
    ]);
    let got: BTreeMap<&str, u64> = gtpu::MESSAGE_LABELS
        .iter()
        .copied()
        .zip(stats.gtpu)
        .filter(|(_, n)| *n > 0)
        .collect();
    let want: BTreeMap<&str, u64> = [
        ("echo_request", 2),
        ("error_indication", 2),
        ("end_marker", 1),
        ("supported_extension_headers_notification", 1),
        ("other", 1),
    ]
    .into();
    assert_eq!(got, want);
    use fivewatch::decode::{Layer, Reason};
    assert_eq!(stats.decode_error(Layer::Gtpu, Reason::IeOverrun), 1);
    assert_eq!(stats.decode_error(Layer::Gtpu, Reason::UnknownIe), 1);
    assert_eq!(stats.decode_errors_total(), 2);
}

#[test]
fn later_inner_fragments_join_the_flow_of_their_first_fragment() {
    use common::frames::{gtpu, udp};
    // Inner IPv4 UDP 10.45.0.2:5000 → 8.8.8.8:53 (RFC 791: id 0x1234), split in two: the
    // first fragment (MF, offset 0) carries the UDP header, the second (offset 16 octets)
    // none. Both travel in G-PDUs to the UPF on TEID 1.
    let inner = |flags_off: u16, payload: &[u8]| {
        let total = (20 + payload.len()) as u16;
        let mut v = vec![0x45, 0, (total >> 8) as u8, total as u8, 0x12, 0x34];
        v.extend_from_slice(&flags_off.to_be_bytes());
        v.extend_from_slice(&[64, 17, 0, 0, 10, 45, 0, 2, 8, 8, 8, 8]);
        v.extend_from_slice(payload);
        v
    };
    let first = inner(0x2000, &udp(5000, 53, &[0u8; 8]));
    let later = inner(2, &[0u8; 8]);
    let (gnb, upf) = ([127, 0, 0, 2], [127, 0, 0, 7]);
    let stats = run_frames(&[
        gtpu(gnb, upf, 1, Some((1, 9)), first),
        gtpu(gnb, upf, 1, Some((1, 9)), later),
    ]);
    assert_eq!(stats.inner_fragment_ports_hits, 1);
    assert_eq!(stats.inner_fragment_ports_misses, 0);
    assert_eq!(
        stats.flows_created, 1,
        "the later fragment joins the first one's 5-tuple flow"
    );
    // A later fragment seen alone has no ports to borrow: a flow of its own, counted as a miss.
    let stats = run_frames(&[gtpu(gnb, upf, 1, Some((1, 9)), inner(2, &[0u8; 8]))]);
    assert_eq!(
        (stats.inner_fragment_ports_hits, stats.inner_fragment_ports_misses),
        (0, 1)
    );
}

#[test]
fn gtpv1c_on_the_gtpc_port_is_counted_not_an_error() {
    // tshark -r tests/data/gtp-v1c-gtpu-ext-nonstd-ports.pcapng -Y 'udp.port==2123 && gtp':
    // one GTPv1-C message (TS 29.060), which is not GTPv2-C.
    let s = replay("gtp-v1c-gtpu-ext-nonstd-ports.pcapng");
    assert_eq!(s.gtpv1c_messages, 1);
    assert!(
        !s.decode_errors_by_reason.keys().any(|k| k.starts_with("gtpc:")),
        "{:?}",
        s.decode_errors_by_reason
    );
}
