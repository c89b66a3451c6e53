//! Attacks on the sensor itself, built frame by frame (every expected value is fixed by
//! the constructed input): bogus timestamps, detector-table flooding to hide a real flood,
//! forged handshakes inside a GTP-U tunnel.

use fivewatch::capture::{Frame, LinkType};
use fivewatch::config::Config;
use fivewatch::pipeline::Engine;

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

mod common;

use common::frames::{gtpu, ipv4, syn, tcp};

fn feed(e: &mut Engine, ts: u64, f: &[u8]) {
    e.process(&Frame {
        ts_ns: ts,
        linktype: LinkType::ETHERNET,
        data: f,
        wire_len: f.len() as u32,
    });
}

fn syn_flood_alerts(e: &mut Engine) -> Vec<serde_json::Value> {
    e.finish();
    e.take_records()
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.to_json()).unwrap())
        .filter(|r| r["alert"]["kind"] == "syn_flood" && r["state"] == "new")
        .collect()
}

/// 5 unanswered SYN/s for 120 s is far below the 300 SYN/s threshold. One packet stamped an
/// hour ahead must not freeze capture time and turn them into a "flood".
#[test]
fn one_future_timestamp_does_not_create_a_flood() {
    let mut e = Engine::new(&Config::default(), "t".into());
    for i in 0..600u64 {
        if i == 50 {
            feed(&mut e, T0 + 3600 * S, &syn([192, 0, 2, 99], 1, [10, 0, 0, 9], 80));
        }
        feed(
            &mut e,
            T0 + i * S / 5,
            &syn([192, 0, 2, 1], 20000 + i as u16, [10, 0, 0, 2], 443),
        );
    }
    assert_eq!(syn_flood_alerts(&mut e).len(), 0);
    assert_eq!(e.stats().time_discontinuities, 1);
    assert_eq!(e.stats().packets, 601);
}

/// A frame stamped at the very end of u64 followed by a real flood: the flood is still
/// measured (new time base) and reported once.
#[test]
fn timestamp_at_u64_max_then_a_flood() {
    let mut e = Engine::new(&Config::default(), "t".into());
    feed(&mut e, u64::MAX, &syn([192, 0, 2, 99], 1, [10, 0, 0, 9], 80));
    // 1000 SYN/s for 5 s against 10.0.0.1:80.
    for i in 0..5000u64 {
        feed(
            &mut e,
            T0 + i * S / 1000,
            &syn([198, 18, (i >> 8) as u8, i as u8], 1024 + i as u16, [10, 0, 0, 1], 80),
        );
    }
    let alerts = syn_flood_alerts(&mut e);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["dest_ip"], "10.0.0.1");
    assert_eq!(e.stats().time_discontinuities, 1);
}

/// 16k SYN/s of junk cycling over 65,536 destination hosts (0.24 SYN/s each) keeps the
/// host table full; a real 1,000 SYN/s flood against 10.0.0.1:80 must still be reported.
#[test]
fn junk_keys_filling_the_tables_do_not_hide_a_flood() {
    let mut e = Engine::new(&Config::default(), "t".into());
    let junk_per_flood = 16;
    let mut j = 0u32;
    for i in 0..10_000u64 {
        let t = T0 + i * S / 1000;
        for _ in 0..junk_per_flood {
            let h = j % 65_536;
            j += 1;
            let dst = [172, 16, (h >> 8) as u8, h as u8];
            feed(&mut e, t, &syn([192, 0, 2, 7], (j % 50_000) as u16 + 1024, dst, 80));
        }
        feed(
            &mut e,
            t,
            &syn(
                [198, 18, (i >> 8) as u8, i as u8],
                1024 + (i % 60_000) as u16,
                [10, 0, 0, 1],
                80,
            ),
        );
    }
    let alerts = syn_flood_alerts(&mut e);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["dest_ip"], "10.0.0.1");
    assert_eq!(alerts[0]["dest_port"], 80);
    assert!(
        e.stats().detector_evictions[0] > 0,
        "the junk was evicted, not the victim"
    );
}

/// A UE behind a gNB sends 1000 SYN/s to a server for 3 s; each SYN is followed by a
/// SYN-ACK sent from `synack_from` (outer source, TEID) and the UE's ACK. Returns the
/// syn_flood alerts raised.
fn tunnelled_handshakes(synack_from: ([u8; 4], [u8; 4], u32)) -> Vec<serde_json::Value> {
    let (gnb, upf) = ([192, 0, 2, 10], [192, 0, 2, 20]);
    let (ue, server) = ([10, 45, 0, 2], [203, 0, 113, 5]);
    let (sa_src, sa_dst, sa_teid) = synack_from;
    let mut e = Engine::new(&Config::default(), "t".into());
    for i in 0..3000u64 {
        let t = T0 + i * S / 1000;
        let port = 10_000 + i as u16;
        feed(
            &mut e,
            t,
            &gtpu(gnb, upf, 0x100, None, ipv4(6, ue, server, &tcp(port, 443, 0x02))),
        );
        feed(
            &mut e,
            t + 1000,
            &gtpu(
                sa_src,
                sa_dst,
                sa_teid,
                None,
                ipv4(6, server, ue, &tcp(443, port, 0x12)),
            ),
        );
        feed(
            &mut e,
            t + 2000,
            &gtpu(gnb, upf, 0x100, None, ipv4(6, ue, server, &tcp(port, 443, 0x10))),
        );
    }
    syn_flood_alerts(&mut e)
}

/// The UE forges the server's SYN-ACK uplink (gNB → UPF) to make every attempt look like a
/// completed handshake. A genuine SYN-ACK comes downlink from the UPF, so the forged ones do
/// not cancel the half-open count and the flood is reported.
#[test]
fn forged_uplink_handshakes_do_not_hide_a_tunnelled_flood() {
    let alerts = tunnelled_handshakes(([192, 0, 2, 10], [192, 0, 2, 20], 0x100));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["dest_ip"], "203.0.113.5");
    assert_eq!(alerts[0]["gtp"]["teid"], 0x100);
}

/// With genuine replies (SYN-ACK downlink, UPF → gNB, TEID chosen by the gNB) the same
/// exchange is a burst of completed connections, not a SYN flood.
#[test]
fn genuine_tunnelled_handshakes_are_not_a_flood() {
    assert_eq!(tunnelled_handshakes(([192, 0, 2, 20], [192, 0, 2, 10], 0x200)).len(), 0);
}

/// A flood, 65 s of background SYNs (50/s, below threshold: the alert resolves), then a
/// second flood at t = 75 s: two episodes with their own ids, the second starting no earlier
/// than one window (5 s) before it crossed the threshold.
#[test]
fn a_second_flood_is_a_new_episode() {
    let mut e = Engine::new(&Config::default(), "t".into());
    let victim = [10, 0, 0, 1];
    let mut n = 0u64;
    let mut send = |e: &mut Engine, t: u64| {
        n += 1;
        feed(
            e,
            t,
            &syn(
                [198, 18, (n >> 8) as u8, n as u8],
                1024 + (n % 60_000) as u16,
                victim,
                80,
            ),
        );
    };
    for i in 0..10_000u64 {
        send(&mut e, T0 + i * S / 1000); // 1000 SYN/s for 10 s
    }
    for i in 0..(65 * 50u64) {
        send(&mut e, T0 + 10 * S + i * S / 50); // 50 SYN/s until t = 75 s
    }
    for i in 0..5000u64 {
        send(&mut e, T0 + 75 * S + i * S / 1000); // second flood
    }
    e.finish();
    let recs: Vec<serde_json::Value> = e
        .take_records()
        .map(|r| serde_json::from_str(&r.to_json()).unwrap())
        .filter(|r: &serde_json::Value| r["alert"]["kind"] == "syn_flood")
        .collect();
    let new: Vec<_> = recs.iter().filter(|r| r["state"] == "new").collect();
    assert_eq!(new.len(), 2);
    assert_ne!(new[0]["alert_id"], new[1]["alert_id"]);
    assert!(recs
        .iter()
        .any(|r| r["state"] == "resolved" && r["alert_id"] == new[0]["alert_id"]));
    // first_seen of the second episode: 2023-11-14T22:14:30 (t = 70 s) or later.
    let first = new[1]["first_seen"].as_str().unwrap();
    assert!(first >= "2023-11-14T22:14:30", "{first}");
}

/// Detector table evictions are a total since start (exported as
/// `fivewatch_detector_evictions_total`): a jump back in capture time, which clears the
/// detectors' tables, must not take the count back to zero (a Prometheus counter that goes
/// back would make the exporter's delta underflow).
#[test]
fn detector_evictions_survive_a_time_restart() {
    let cfg = Config::parse(
        "[detect.port_scan]\nmax_tracked_sources = 2\nmax_open_alerts = 1\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let mut e = Engine::new(&cfg, "t".into());
    // Five scanners, one probe each, into a table of two: three evictions.
    for i in 0..5u8 {
        feed(
            &mut e,
            T0 + u64::from(i) * S / 10,
            &syn([192, 0, 2, 10 + i], 40000, [10, 0, 0, 2], 22),
        );
    }
    // An hour back: a new time base, the detectors' tables cleared.
    feed(&mut e, T0 - 3600 * S, &syn([192, 0, 2, 99], 40000, [10, 0, 0, 2], 22));
    e.finish();
    let s = e.stats();
    assert_eq!(s.time_discontinuities, 1);
    assert_eq!(s.detector_evictions, [0, 3], "syn_flood, port_scan");
}
