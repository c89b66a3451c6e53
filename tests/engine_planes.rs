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
