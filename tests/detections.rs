//! Detections with the default configuration on real captures. Expected values come from
//! the tshark facts (`tests/data/expected/*.json`), the MANIFEST's `expected_detections`
//! column and the Community ID spec — never from a previous fivewatch run.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use base64::Engine as _;
use fivewatch::app::{self, AlertSink};
use fivewatch::config::Config;
use serde_json::Value;
use sha1::{Digest, Sha1};

/// Alert records of a replay of `name` with the default configuration, as parsed JSON lines.
fn alerts(name: &str) -> Vec<Value> {
    common::run_engine(&Config::default(), &common::capture(name))
        .records
        .iter()
        .map(|r| serde_json::from_str(&r.to_json()).expect("alert record is JSON"))
        .collect()
}

fn of_kind<'a>(recs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["alert"]["kind"] == kind).collect()
}

/// Distinct `alert_id`s (episodes) among `recs`.
fn episodes(recs: &[&Value]) -> BTreeSet<String> {
    recs.iter()
        .map(|r| r["alert_id"].as_str().expect("alert_id is a string").to_string())
        .collect()
}

fn ip(v: &Value) -> IpAddr {
    v.as_str().expect("address string").parse().expect("IP address")
}

/// Community ID v1 (https://github.com/corelight/community-id-spec), written from the spec
/// independently of `fivewatch::flow::key`: SHA-1 over seed (2 octets, network order),
/// the ordered addresses, protocol, one zero pad octet and the ordered ports; base64 of the
/// digest, prefixed with the version `1:`. Endpoints are ordered so that the smaller
/// (address, port) comes first.
fn community_id_v1(seed: u16, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, proto: u8) -> String {
    let bytes = |a: IpAddr| match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    let (mut s, mut d, mut sp, mut dp) = (bytes(src), bytes(dst), sport, dport);
    if (s.as_slice(), sp) > (d.as_slice(), dp) {
        std::mem::swap(&mut s, &mut d);
        std::mem::swap(&mut sp, &mut dp);
    }
    let mut buf = Vec::new();
    buf.extend_from_slice(&seed.to_be_bytes());
    buf.extend_from_slice(&s);
    buf.extend_from_slice(&d);
    buf.push(proto);
    buf.push(0);
    buf.extend_from_slice(&sp.to_be_bytes());
    buf.extend_from_slice(&dp.to_be_bytes());
    let digest = Sha1::digest(&buf);
    format!("1:{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

#[test]
fn community_id_reference_vectors() {
    // Examples published with the spec's reference implementations.
    let a = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        community_id_v1(0, a("128.232.110.120"), 34855, a("66.35.250.204"), 80, 6),
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    );
    assert_eq!(
        community_id_v1(0, a("66.35.250.204"), 80, a("128.232.110.120"), 34855, 6),
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    );
    assert_eq!(
        community_id_v1(0, a("192.168.1.52"), 54585, a("8.8.8.8"), 53, 17),
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
    );
}

/// Field names every alert record must carry (EVE-compatible names plus the lifecycle and
/// threshold fields the issue asks for).
fn assert_record_shape(r: &Value, proto: &str) {
    for key in [
        "timestamp",
        "event_type",
        "src_ip",
        "dest_ip",
        "proto",
        "community_id",
        "alert",
        "severity",
        "alert_id",
        "first_seen",
        "last_seen",
        "observed",
        "threshold",
        "window_s",
        "state",
        "entity_ip",
    ] {
        assert!(r.get(key).is_some(), "record lacks {key}: {r}");
    }
    assert_eq!(r["event_type"], "alert", "{r}");
    assert_eq!(r["proto"], proto, "{r}");
    assert!(r["alert"]["kind"].is_string(), "{r}");
    assert!(r["community_id"].as_str().unwrap().starts_with("1:"), "{r}");
    assert!(
        ["low", "medium", "high", "critical"].contains(&r["severity"].as_str().unwrap()),
        "{r}"
    );
    assert!(
        ["new", "ongoing", "resolved"].contains(&r["state"].as_str().unwrap()),
        "{r}"
    );
    let _: IpAddr = ip(&r["src_ip"]);
    let _: IpAddr = ip(&r["dest_ip"]);
    for k in ["observed", "threshold", "window_s"] {
        assert!(r[k].is_number(), "{k} is not a number: {r}");
    }
    // EVE timestamp format: 2021-04-28T10:30:21.099510+0000.
    for k in ["timestamp", "first_seen", "last_seen"] {
        let t = r[k].as_str().unwrap();
        assert!(
            t.len() == 31 && t.ends_with("+0000") && t.as_bytes()[10] == b'T',
            "{k}: {t}"
        );
    }
}

#[test]
fn syn_flood_spoofed_sources_one_episode_with_tshark_numbers() {
    let name = "syn-flood-spoofed-sources.pcap";
    let facts = &common::expected(name).unwrap()["facts"];
    let recs = alerts(name);
    let syn = of_kind(&recs, "syn_flood");
    assert!(!syn.is_empty(), "no syn_flood alert");
    assert_eq!(episodes(&syn).len(), 1, "one SYN flood episode");
    assert!(of_kind(&recs, "port_scan").is_empty(), "MANIFEST: no port-scan alert");

    let first = syn[0];
    assert_eq!(first["state"], "new");
    for r in &syn {
        assert_record_shape(r, "TCP");
        assert_eq!(ip(&r["dest_ip"]), "10.10.10.10".parse::<IpAddr>().unwrap(), "{r}");
        assert_eq!(ip(&r["entity_ip"]), ip(&r["dest_ip"]), "{r}");
        // The only destination port in the capture (facts.dst_ports).
        assert_eq!(facts["dst_ports"], serde_json::json!([25565]));
        assert_eq!(r["dest_port"], 25565, "{r}");
        assert_eq!(r["first_seen"], first["first_seen"], "{r}");
    }
    assert!(syn[1..].iter().all(|r| r["state"] != "new"));

    // The episode covers the whole flood: every SYN to the victim is counted.
    let last = syn.last().unwrap();
    assert_eq!(
        last["syn_flood"]["syn_packets"].as_u64(),
        facts["syn_only_to_10.10.10.10"].as_u64(),
        "{last}"
    );
    assert_eq!(
        last["syn_flood"]["completed_handshakes"], 0,
        "one-way flood: no handshakes"
    );
    // HyperLogLog estimate of the distinct (spoofed) sources.
    let want = common::u(facts, "distinct_src_ips") as f64;
    let got = last["syn_flood"]["distinct_sources"].as_u64().unwrap() as f64;
    assert!(
        (got - want).abs() <= 0.05 * want,
        "distinct_sources {got}, tshark {want}"
    );
    // The capture starts with the flood, so the episode starts at the first SYN.
    let first_epoch = facts["first_time_epoch"].as_str().unwrap();
    let micros = &first_epoch[first_epoch.find('.').unwrap() + 1..][..6];
    assert!(
        first["first_seen"].as_str().unwrap().contains(&format!(".{micros}+")),
        "first_seen {} vs first SYN at {first_epoch}",
        first["first_seen"]
    );
}

#[test]
fn syn_flood_community_id_follows_the_spec() {
    let recs = alerts("syn-flood-spoofed-sources.pcap");
    let syn = of_kind(&recs, "syn_flood");
    assert!(!syn.is_empty());
    for r in syn {
        let sport = r["src_port"].as_u64().expect("src_port") as u16;
        let dport = r["dest_port"].as_u64().expect("dest_port") as u16;
        let want = community_id_v1(0, ip(&r["src_ip"]), sport, ip(&r["dest_ip"]), dport, 6);
        assert_eq!(r["community_id"], want.as_str(), "{r}");
    }
}

#[test]
fn nmap_syn_scan_one_vertical_episode() {
    let name = "syn-scan-nmap-1000-ports.pcap";
    let facts = &common::expected(name).unwrap()["facts"];
    let scanner: IpAddr = facts["scanner_ip"].as_str().unwrap().parse().unwrap();
    let targets = facts["distinct_dst_ips"].as_array().unwrap();
    assert_eq!(targets.len(), 1);
    let recs = alerts(name);
    assert!(of_kind(&recs, "syn_flood").is_empty(), "MANIFEST: no SYN-flood alert");
    let scan = of_kind(&recs, "port_scan");
    assert_eq!(episodes(&scan).len(), 1, "one port-scan episode");
    assert_eq!(scan[0]["state"], "new");
    for r in &scan {
        assert_record_shape(r, "TCP");
        assert_eq!(ip(&r["entity_ip"]), scanner, "{r}");
        assert_eq!(ip(&r["src_ip"]), scanner, "{r}");
        assert_eq!(ip(&r["dest_ip"]), ip(&targets[0]), "{r}");
    }
    let last = scan.last().unwrap();
    // One target host, so distinct ports = distinct (host, port) pairs probed.
    assert_eq!(
        last["port_scan"]["distinct_ports"].as_u64(),
        facts["distinct_dst_ip_port_pairs"].as_u64(),
        "{last}"
    );
    assert_eq!(last["port_scan"]["distinct_hosts"], 1, "{last}");
    // Every SYN nmap sent opened a flow (tshark: 1994 SYN-only frames), and the three
    // ports that answered SYN-ACK (22, 53, 80) are the answered probes.
    assert_eq!(
        last["port_scan"]["probes"].as_u64(),
        facts["syn_only_frames"].as_u64(),
        "{last}"
    );
    assert_eq!(
        last["port_scan"]["answered"].as_u64(),
        facts["distinct_ports_replying_synack"].as_u64(),
        "{last}"
    );
    assert!(
        last["port_scan"]["scan_type"].as_str().unwrap().contains("vertical"),
        "{last}"
    );
}

#[test]
fn udp_port_scan_three_hosts() {
    let name = "udp-port-scan-3-hosts.pcap";
    let facts = &common::expected(name).unwrap()["facts"];
    let scanner: IpAddr = facts["scanner_ip"].as_str().unwrap().parse().unwrap();
    assert_eq!(scanner, "10.0.0.135".parse::<IpAddr>().unwrap());
    let targets: BTreeSet<IpAddr> = facts["dst_ips"].as_array().unwrap().iter().map(ip).collect();
    let recs = alerts(name);
    assert!(of_kind(&recs, "syn_flood").is_empty());
    let scan = of_kind(&recs, "port_scan");
    assert_eq!(episodes(&scan).len(), 1, "one port-scan episode");
    assert_eq!(scan[0]["state"], "new");
    for r in &scan {
        assert_record_shape(r, "UDP");
        assert_eq!(ip(&r["entity_ip"]), scanner, "{r}");
        assert_eq!(ip(&r["src_ip"]), scanner, "{r}");
        assert!(targets.contains(&ip(&r["dest_ip"])), "{r}");
    }
    let last = scan.last().unwrap();
    assert_eq!(
        last["port_scan"]["distinct_hosts"].as_u64(),
        facts["distinct_dst_ips"].as_u64(),
        "{last}"
    );
    let sample: BTreeSet<IpAddr> = last["port_scan"]["targets_sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(ip)
        .collect();
    assert_eq!(sample, targets, "{last}");
    // The same 977 ports were probed on each host (facts), so 977 distinct ports.
    let per_ip = facts["distinct_dst_ports_per_dst_ip"].as_object().unwrap();
    let max_per_ip = per_ip.values().map(|v| v.as_u64().unwrap()).max().unwrap();
    let pairs = common::u(facts, "distinct_dst_ip_port_pairs");
    let ports = last["port_scan"]["distinct_ports"].as_u64().unwrap();
    assert!(ports >= max_per_ip && ports <= pairs, "distinct_ports {ports}: {last}");
}

#[test]
fn benign_web_browsing_raises_nothing() {
    let recs = alerts("benign-web-browsing-4600pkts.pcap");
    assert!(recs.is_empty(), "false positives: {recs:#?}");
}

/// `expected_detections` of every MANIFEST row, by file name.
fn manifest_expectations() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(common::data_dir().join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = header.iter().position(|h| *h == "expected_detections").unwrap();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[col].to_string())
        })
        .collect()
}

/// Every capture the MANIFEST says should raise no alert ("No alert", "no alert", "No
/// flood/scan alert", and no "-> ALERT" for some other kind) raises no syn_flood and no
/// port_scan alert with the defaults.
#[test]
fn manifest_no_alert_captures_raise_no_flood_or_scan_alert() {
    let quiet: Vec<String> = manifest_expectations()
        .into_iter()
        .filter(|(_, exp)| {
            let e = exp.to_lowercase();
            (e.contains("no alert") || e.contains("no flood/scan alert")) && !e.contains("-> alert")
        })
        .map(|(f, _)| f)
        .collect();
    assert!(quiet.len() >= 30, "{quiet:?}");
    for must in [
        "benign-web-browsing-4600pkts.pcap",
        "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng",
        "epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng",
        "gtpu-unknown-or-short-payload.pcap",
        "volte-gtpu-sip-rtp.pcapng",
    ] {
        assert!(quiet.iter().any(|q| q == must), "{must} not selected");
    }
    for name in &quiet {
        let recs: Vec<Value> = common::run_engine(&Config::default(), &common::capture(name))
            .records
            .iter()
            .map(|r| serde_json::from_str(&r.to_json()).unwrap())
            .collect();
        let bad: Vec<&Value> = recs
            .iter()
            .filter(|r| r["alert"]["kind"] == "syn_flood" || r["alert"]["kind"] == "port_scan")
            .collect();
        assert!(bad.is_empty(), "{name}: {bad:#?}");
    }
}

/// MANIFEST: the 7-port connect scan "should alert only if the port threshold is <= 7".
#[test]
fn seven_port_connect_scan_is_below_the_default_threshold() {
    let (_, exp) = manifest_expectations()
        .into_iter()
        .find(|(f, _)| f == "tcp-connect-scan-7-ports.pcap")
        .unwrap();
    assert!(exp.contains("only if the port threshold is <=7"), "{exp}");
    let cfg = Config::default();
    assert!(cfg.detect.port_scan.vertical_ports > 7);
    let run = common::run_engine(&cfg, &common::capture("tcp-connect-scan-7-ports.pcap"));
    assert!(run.records.is_empty(), "{:?}", run.records);
}

/// One worker: replaying the same capture twice gives identical records (same alert ids,
/// same numbers, same order), through the public replay path and its alert file.
#[test]
fn replay_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for (i, name) in ["syn-flood-spoofed-sources.pcap", "syn-scan-nmap-1000-ports.pcap"]
        .iter()
        .cycle()
        .take(4)
        .enumerate()
    {
        let file = dir.path().join(format!("alerts-{i}.jsonl"));
        let mut sink = AlertSink::open(Some(&file), false).unwrap();
        let s = app::replay(&Config::default(), &[common::capture(name)], &mut sink, None);
        assert_eq!(sink.errors, 0);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count() as u64, sink.written);
        assert!(!text.is_empty(), "{name}: no alerts");
        let ids: Vec<String> = s.alert_list.iter().map(|a| a.alert_id.clone()).collect();
        outputs.push((text, ids));
    }
    assert_eq!(outputs[0], outputs[2], "syn flood replayed twice");
    assert_eq!(outputs[1], outputs[3], "syn scan replayed twice");
    assert_ne!(outputs[0].1, outputs[1].1);
}
