//! GTP-U flow keying (built frames, values fixed by construction after TS 29.281 §5 and
//! TS 38.415 §5.5.2): uplink and downlink of one UE flow — different TEIDs, each chosen by
//! its receiver — are one flow with both TEIDs and the QFI recorded, while the same UE
//! address behind another gNB/UPF pair is another flow.

use fivewatch::capture::LinkType;
use fivewatch::decode::{decode, Decoded, Packet};
use fivewatch::flow::table::Timeouts;
use fivewatch::flow::{FlowKey, FlowTable};

mod common;

use common::frames::{gtpu, ipv4, udp};

/// G-PDU from `outer_src` to `outer_dst` with TEID `teid` and a PSC of `pdu_type`
/// (0 = DL, 1 = UL) and QFI 5, carrying UDP `inner` (src, sport, dst, dport), decoded.
fn gpdu(
    outer_src: [u8; 4],
    outer_dst: [u8; 4],
    teid: u32,
    pdu_type: u8,
    inner: ([u8; 4], u16, [u8; 4], u16),
) -> Packet {
    let (is, isp, id, idp) = inner;
    let f = gtpu(
        outer_src,
        outer_dst,
        teid,
        Some((pdu_type, 5)),
        ipv4(17, is, id, &udp(isp, idp, b"q")),
    );
    match decode(LinkType::ETHERNET, &f) {
        Ok(Decoded::Ip(p)) => p,
        other => panic!("built G-PDU must decode: {other:?}"),
    }
}

const S: u64 = 1_000_000_000;

#[test]
fn uplink_and_downlink_are_one_flow_with_both_teids() {
    let timeouts = Timeouts {
        tcp_new_ns: 30 * S,
        tcp_established_ns: 300 * S,
        tcp_closed_ns: 10 * S,
        udp_ns: 60 * S,
        other_ns: 30 * S,
    };
    let mut t = FlowTable::new(16, timeouts);
    let gnb = [192, 0, 2, 1];
    let upf = [192, 0, 2, 2];
    let ue = [10, 45, 0, 2];
    let dns = [8, 8, 8, 8];
    // UL: gNB → UPF, TEID 0x100 chosen by the UPF. DL: UPF → gNB, TEID 0x200 chosen by the gNB.
    let ul = gpdu(gnb, upf, 0x100, 1, (ue, 4000, dns, 53));
    let dl = gpdu(upf, gnb, 0x200, 0, (dns, 53, ue, 4000));
    let (k1, ab1) = FlowKey::of_packet(&ul);
    let (k2, ab2) = FlowKey::of_packet(&dl);
    assert_eq!(k1, k2, "both directions share the key");
    t.update(&ul, &k1, ab1, S, &mut |_, _| {});
    let u = t.update(&dl, &k2, ab2, 2 * S, &mut |_, _| {});
    let f = t.get(u.slot).unwrap();
    assert_eq!((f.ul_teid(), f.dl_teid(), f.qfi()), (Some(0x100), Some(0x200), Some(5)));
    assert_eq!(f.packets(), [1, 1]);
    assert_eq!(t.len(), 1);

    // The same UE address and 5-tuple behind another gNB/UPF pair (overlapping pools) is
    // another flow, even with the same TEID value.
    let other = gpdu([198, 51, 100, 1], [198, 51, 100, 2], 0x100, 1, (ue, 4000, dns, 53));
    let (k3, ab3) = FlowKey::of_packet(&other);
    assert_ne!(k3, k1);
    t.update(&other, &k3, ab3, 3 * S, &mut |_, _| {});
    assert_eq!(t.len(), 2);
}

/// 60 UEs with the same address 10.45.0.2, each behind its own gNB/UPF pair, each sending
/// two unanswered UDP datagrams to port 443 of two servers: 120 probes in all, but no UE
/// probed more than 2 hosts, so there is no horizontal scan (threshold 100 hosts).
#[test]
fn overlapping_ue_addresses_are_separate_scanners() {
    use fivewatch::capture::Frame;
    use fivewatch::config::Config;
    use fivewatch::pipeline::Engine;
    let mut e = Engine::new(&Config::default(), "t".into());
    let mut n = 0u64;
    for ue in 0..60u8 {
        for server in 0..2u8 {
            let inner = ipv4(
                17,
                [10, 45, 0, 2],
                [203, 0, 113, ue * 2 + server],
                &udp(40000, 443, b"x"),
            );
            let f = gtpu([192, 0, 2, ue], [198, 51, 100, ue], 0x100, Some((1, 5)), inner);
            n += 1;
            e.process(&Frame {
                ts_ns: 1_700_000_000 * S + n * S / 100,
                linktype: LinkType::ETHERNET,
                data: &f,
                wire_len: f.len() as u32,
            });
        }
    }
    e.finish();
    assert_eq!(e.take_records().count(), 0);
    assert_eq!(e.stats().flows_created, 120);
}

/// Flow records of the Open5GS 5G SA capture: every tunnelled flow names a UL TEID, gNB,
/// UPF and UE that tshark saw together in one G-PDU (uplink: outer gNB → UPF, inner source
/// = UE) and the SEID of that UE's PFCP session, and every G-PDU TEID tshark lists appears
/// on some flow.
#[test]
fn flow_records_of_the_5g_capture_agree_with_tshark() {
    let name = "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng";
    let teids = &common::expected(name).unwrap()["facts"]["gtpu_teids"];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.jsonl");
    let mut alerts = fivewatch::app::AlertSink::open(None, false).unwrap();
    let mut flows = fivewatch::app::AlertSink::open(Some(&path), false).unwrap();
    let s = fivewatch::app::replay(
        &fivewatch::config::Config::default(),
        &[common::capture(name)],
        &mut alerts,
        Some(&mut flows),
    );
    assert_eq!(s.flow_records_written, s.flows, "one record per flow");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut tunnelled = 0;
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["event_type"], "flow");
        let Some(g) = r.get("gtp") else { continue };
        tunnelled += 1;
        for teid_key in ["ul_teid", "dl_teid"] {
            if let Some(t) = g[teid_key].as_u64() {
                seen.insert(t);
            }
        }
        let ul = g["ul_teid"]
            .as_u64()
            .expect("every tunnelled flow here has uplink packets");
        let fact = &teids[ul.to_string()];
        let outer = serde_json::json!([g["gnb_ip"], g["upf_ip"]]);
        assert!(fact["outer_src_dst"].as_array().unwrap().contains(&outer), "{line}");
        let ue = &g["ue_ip"];
        assert!(
            fact["inner_src_dst"].as_array().unwrap().iter().any(|p| &p[0] == ue),
            "UE {ue} is an inner source of TEID {ul}: {line}"
        );
        assert_eq!(g["qfi"], 1, "{line}");
        // tshark (`-Y pfcp.msg_type==50 -e pfcp.seid -e pfcp.ue_ip_addr_ipv4`): the k-th
        // Session Establishment Request carries CP F-SEID k and UE address 10.45.0.(k+1).
        assert_eq!(g["session_state"], "known", "{line}");
        if let Some(v4) = ue.as_str().and_then(|u| u.parse::<std::net::Ipv4Addr>().ok()) {
            assert_eq!(g["seid"], u64::from(v4.octets()[3]) - 1, "{line}");
        }
    }
    assert!(tunnelled > 0);
    let all: std::collections::BTreeSet<u64> = teids.as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect();
    assert_eq!(seen, all);
}

/// GTP-U on a non-standard port (here 4000 → 4000) is left as plain UDP by default and
/// opened when `decode.extra_gtpu_port` names the port (the inner TCP packet is the flow).
#[test]
fn gtpu_on_a_configured_extra_port() {
    use common::frames::{ether, tcp};
    let inner = ipv4(6, [10, 45, 0, 2], [198, 51, 100, 7], &tcp(40000, 443, 0x02));
    let mut g = vec![0x30, 0xff, 0, 0, 0, 0, 0, 7];
    g[2..4].copy_from_slice(&(inner.len() as u16).to_be_bytes());
    g.extend(inner);
    let f = ether(ipv4(17, [192, 0, 2, 1], [192, 0, 2, 2], &udp(4000, 4000, &g)));
    match decode(LinkType::ETHERNET, &f) {
        Ok(Decoded::Ip(p)) => assert_eq!((p.proto, p.dst_port, p.tunnel.is_some()), (17, 4000, false)),
        other => panic!("{other:?}"),
    }
    match fivewatch::decode::decode_with(LinkType::ETHERNET, &f, 4000) {
        Ok(Decoded::Ip(p)) => {
            assert_eq!((p.proto, p.dst_port), (6, 443));
            assert_eq!(p.tunnel.unwrap().header.teid, 7);
        }
        other => panic!("{other:?}"),
    }
    let cfg =
        fivewatch::config::Config::parse("[decode]\nextra_gtpu_port = 4000\n", std::path::Path::new("t.toml")).unwrap();
    let mut e = fivewatch::pipeline::Engine::new(&cfg, "t".into());
    e.process(&fivewatch::capture::Frame {
        ts_ns: 1_700_000_000 * S,
        linktype: LinkType::ETHERNET,
        data: &f,
        wire_len: f.len() as u32,
    });
    assert_eq!(
        (e.stats().gtpu[0], e.stats().transport("tcp")),
        (1, 1),
        "the engine opens the tunnel"
    );
}

/// 4G S1-U/S5-U flows of the srsENB + Open5GS EPC capture: many start with a downlink
/// packet and no PDU Session Container says which way a packet goes; the GTPv2-C sessions
/// (tshark: S1-U SGW F-TEID 2 at 127.0.0.6, eNB F-TEID 1 at 127.0.1.1, S5 PGW F-TEID 2 at
/// 127.0.0.7, S5 SGW F-TEID 1 at 127.0.0.6, PAA 10.45.0.2, MME S11 TEID 1) give each flow's
/// direction, so every record names the UE 10.45.0.2, UL TEID 2, DL TEID 1 and the access-side
/// endpoint (eNB on S1-U, SGW-U on S5).
#[test]
fn epc_flow_records_take_the_direction_from_the_session_table() {
    let name = "epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.jsonl");
    let mut alerts = fivewatch::app::AlertSink::open(None, false).unwrap();
    let mut flows = fivewatch::app::AlertSink::open(Some(&path), false).unwrap();
    let cfg = fivewatch::config::Config::default();
    fivewatch::app::replay(&cfg, &[common::capture(name)], &mut alerts, Some(&mut flows));
    let mut by_path = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(&path).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(g) = r.get("gtp") else { continue };
        assert_eq!(g["ue_ip"], "10.45.0.2", "{line}");
        assert_eq!((&g["ul_teid"], &g["dl_teid"]), (&2.into(), &1.into()), "{line}");
        assert_eq!(g["session_state"], "known", "{line}");
        assert_eq!(
            (&g["seid"], &g["control_teid"]),
            (&serde_json::Value::Null, &1.into()),
            "{line}"
        );
        let key = (
            g["gnb_ip"].as_str().unwrap().to_string(),
            g["upf_ip"].as_str().unwrap().to_string(),
        );
        *by_path.entry(key).or_insert(0) += 1;
    }
    let want: std::collections::BTreeMap<(String, String), u32> = [
        (("127.0.0.6".to_string(), "127.0.0.7".to_string()), 40),
        (("127.0.1.1".to_string(), "127.0.0.6".to_string()), 40),
    ]
    .into();
    assert_eq!(by_path, want, "40 inner flows, each seen on S1-U and on S5-U");
}

/// A G-PDU on a live session's TEID whose inner UE address is not the session's: after the
/// 5G SA capture (session 1: UPF 127.0.0.7 UL TEID 1, UE 10.45.0.2, never deleted), an uplink
/// G-PDU from 10.45.0.99 on that TEID is `ue_mismatch`, the session's own traffic `known`.
#[test]
fn a_gpdu_whose_ue_is_not_the_sessions_is_a_mismatch() {
    use common::frames::{gtpu, ipv4, udp};
    let mut e = fivewatch::pipeline::Engine::new(&fivewatch::config::Config::default(), "t".into());
    let t0 = 1_598_111_600_000_000_000u64; // after the capture (2020-08-22 15:53 UTC)
    let ts = common::feed_capture(&mut e, "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng");
    assert!(ts < t0);
    let before = e.stats().gtpu_session_lookups;
    for (i, ue) in [[10, 45, 0, 99], [10, 45, 0, 2]].into_iter().enumerate() {
        let inner = ipv4(17, ue, [8, 8, 8, 8], &udp(5000, 53, &[0; 4]));
        common::feed_ethernet(
            &mut e,
            t0 + i as u64,
            &gtpu([127, 0, 0, 2], [127, 0, 0, 7], 1, Some((1, 1)), inner),
        );
    }
    let after = e.stats().gtpu_session_lookups;
    let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    // Indexed like fivewatch::pipeline::SESSION_LOOKUPS: known, unknown, unmapped, ue_mismatch.
    assert_eq!(
        fivewatch::pipeline::SESSION_LOOKUPS,
        ["known", "unknown", "unmapped", "ue_mismatch"]
    );
    assert_eq!(delta, [1, 0, 0, 1]);
}
