//! A SYN flood sent by a UE through a GTP-U tunnel (N3, with a PDU Session Container)
//! raises a syn_flood alert whose `gtp` object names the tunnel, and its flows carry the
//! uplink TEID and QFI. The frames are built here byte by byte after TS 29.281 §5.1/§5.2 and
//! TS 38.415 §5.5.2, so every expected value is fixed by construction.

use fivewatch::config::Config;
use fivewatch::pipeline::Engine;

mod common;

use common::frames::{gtpu, ipv4, tcp};

/// Ethernet / IPv4 gNB 192.0.2.10 → UPF 192.0.2.20 / UDP 2152 / GTP-U G-PDU TEID 0x1234 with
/// a UL PDU Session Container (QFI 9) / IPv4 UE 10.45.0.2 → 198.51.100.7 / TCP SYN to 443.
fn uplink_syn(sport: u16) -> Vec<u8> {
    let inner = ipv4(6, [10, 45, 0, 2], [198, 51, 100, 7], &tcp(sport, 443, 0x02));
    gtpu([192, 0, 2, 10], [192, 0, 2, 20], 0x1234, Some((1, 9)), inner)
}

#[test]
fn tunnelled_syn_flood_alert_carries_gtp_context() {
    let mut engine = Engine::new(&Config::default(), "test".into());
    let t0 = 1_700_000_000_000_000_000u64;
    // 3000 SYNs, one per millisecond: 1000 half-open SYN/s against a 300 SYN/s threshold.
    for i in 0..3000u64 {
        common::feed_ethernet(&mut engine, t0 + i * 1_000_000, &uplink_syn(10000 + i as u16));
    }
    engine.finish();
    let recs: Vec<serde_json::Value> = engine
        .take_records()
        .map(|r| serde_json::from_str(&r.to_json()).unwrap())
        .collect();
    let first = recs.first().expect("an alert record");
    assert_eq!(first["alert"]["kind"], "syn_flood");
    assert_eq!(first["state"], "new");
    assert_eq!(first["dest_ip"], "198.51.100.7");
    assert_eq!(first["dest_port"], 443);
    assert_eq!(first["src_ip"], "10.45.0.2");
    let gtp = &first["gtp"];
    assert_eq!(gtp["teid"], 0x1234);
    assert_eq!(gtp["qfi"], 9);
    assert_eq!(gtp["outer_src_ip"], "192.0.2.10");
    assert_eq!(gtp["outer_dst_ip"], "192.0.2.20");
    assert_eq!(gtp["ue_ip"], "10.45.0.2");
    // No PFCP in view and the flood lasts 3 s, inside the 60 s learning period.
    assert_eq!(
        (&gtp["session_state"], &gtp["seid"]),
        (&"unknown".into(), &serde_json::Value::Null)
    );
    let ids: std::collections::BTreeSet<_> = recs
        .iter()
        .map(|r| r["alert_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one episode");
    // Every SYN of the 3 s flood is accounted to the episode.
    assert_eq!(recs.last().unwrap()["syn_flood"]["syn_packets"], 3000);
    assert_eq!(engine.stats().gtpu[0], 3000, "G-PDUs");
    assert_eq!(engine.stats().transport("tcp"), 3000, "inner transport is the flow's");
}

/// The same flood from UE 10.45.0.2 after the Open5GS 5G SA capture has set up its PFCP
/// session (tshark: Session Establishment Request with CP F-SEID 1, UE 10.45.0.2, UPF N3
/// F-TEID 1 at 127.0.0.7; never deleted): the alert names the session's SEID. The G-PDUs
/// carry no PDU Session Container, so the direction (and `ue_ip`) comes from the session
/// table alone.
#[test]
fn tunnelled_flood_alert_names_the_pfcp_session() {
    let mut engine = Engine::new(&Config::default(), "test".into());
    let last = common::feed_capture(&mut engine, "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng");
    engine.take_records().for_each(drop);
    let t0 = last + 1_000_000_000;
    for i in 0..3000u64 {
        let inner = ipv4(6, [10, 45, 0, 2], [198, 51, 100, 7], &tcp(10000 + i as u16, 443, 0x02));
        common::feed_ethernet(
            &mut engine,
            t0 + i * 1_000_000,
            &gtpu([127, 0, 0, 2], [127, 0, 0, 7], 1, None, inner),
        );
    }
    engine.finish();
    let recs: Vec<serde_json::Value> = engine
        .take_records()
        .map(|r| serde_json::from_str(&r.to_json()).unwrap())
        .collect();
    let first = recs
        .iter()
        .find(|r| r["alert"]["kind"] == "syn_flood")
        .expect("a syn_flood alert");
    let gtp = &first["gtp"];
    assert_eq!(gtp["teid"], 1);
    assert_eq!(gtp["ue_ip"], "10.45.0.2");
    assert_eq!(gtp["session_state"], "known");
    assert_eq!(gtp["seid"], 1);
    assert_eq!(gtp["control_teid"], serde_json::Value::Null);
}
