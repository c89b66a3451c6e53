//! fivewatch's control/user-plane decoders (GTP-U messages and IEs, GTPv2-C, SCTP chunks,
//! NGAP/S1AP PDU headers) against tshark's dissection of the same captures
//! (`tests/data/expected/planes/<capture>.json`, made once by
//! `scripts/tshark-planes-expected.py`, whose header comment defines every field).
//!
//! fivewatch's view is built frame by frame with the crate's public decoders only:
//! [`decode::outer_l4`] (link → IP → UDP/TCP/SCTP payload), then [`gtpu::parse`] /
//! [`gtpu::parse_ies`], [`gtpv2c::messages`] / [`gtpv2c::summarize`] / [`gtpv2c::ies`], and
//! [`sctp::parse`] / [`sctp::DataChunk::parse`] / [`sctp::ran_pdu`].
//!
//! Definitional differences with tshark, each checked where it applies:
//! - GTPv2-C over TCP (frame 3 of `gtpv2c-odd-tcp-malformed.pcapng`): tshark dissects GTPv2
//!   on TCP port 2123 too. TS 29.274 §4.2 carries GTPv2-C over UDP, and fivewatch's entry
//!   point is the UDP payload; the TCP-carried message is counted apart (tshark's
//!   `tcp_messages_by_type`) and checked to decode identically when its TCP payload is given
//!   to the same parser.
//! - GTPv1-C on the shared port 2123 is `gtpc: bad_version` for fivewatch (tshark's
//!   `gtpv1c_on_2123`).
//! - PDU Session Container: tshark 4.0 decodes PPP/RQI/PPI of the DL layout only; fivewatch
//!   decodes the UL flags too (unit tests), but the UL frames are compared on PDU type and
//!   QFI only (`-` in the key, as in the generator).
//! - SCTP chunks: fivewatch walks at most `MAX_SCTP_CHUNKS` chunks per packet and then
//!   reports `sctp: too_many_headers`; tshark walks all 16143 of
//!   `sctp-too-many-chunks-rawip4.pcap`. The first chunks must agree and the bound must be
//!   reported.
//! - NGAP/S1AP are identified by PPID (60/18) and, for PPID 0, by port; tshark uses its PPID
//!   and port tables the same way for these captures (Diameter on port 3868 with PPID 0 is
//!   neither). NGAP carried inside SBI HTTP bodies is not SCTP and not compared.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use fivewatch::decode::{self, gtpu, gtpv2c, ipproto, sctp, DecodeError, Layer, Reason, L4};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Captures the issue names; each must have a planes JSON.
const REQUIRED: [&str; 8] = [
    "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng",
    "epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng",
    "gtpv2c-create-delete-session.pcap",
    "gtpv2c-odd-tcp-malformed.pcapng",
    "gtp-v1c-gtpu-ext-nonstd-ports.pcapng",
    "gtpu-unknown-or-short-payload.pcap",
    "sctp-too-many-chunks-rawip4.pcap",
    "volte-gtpu-sip-rtp.pcapng",
];

fn planes_dir() -> PathBuf {
    common::data_dir().join("expected").join("planes")
}

/// Every planes JSON: (capture name, document).
fn planes_expected() -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = std::fs::read_dir(planes_dir())
        .expect("tests/data/expected/planes")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .map(|p| {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("parse");
            (doc["capture"].as_str().expect("capture").to_string(), doc)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// `outer_l4` of every frame of a capture, with the 1-based frame number.
fn with_l4(name: &str, mut f: impl FnMut(u64, &L4<'_>)) {
    for (i, fr) in common::frames(&common::capture(name)).iter().enumerate() {
        if let Ok(Some(l4)) = decode::outer_l4(fr.linktype, &fr.data) {
            f(i as u64 + 1, &l4);
        }
    }
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|o| o.iter().map(|(k, n)| (k.clone(), n.as_u64().expect("count"))).collect())
        .unwrap_or_default()
}

fn udp_port(l4: &L4<'_>, port: u16) -> bool {
    l4.proto == ipproto::UDP && (l4.src_port == port || l4.dst_port == port)
}

#[test]
fn every_named_capture_has_planes_ground_truth() {
    let names: Vec<String> = planes_expected().into_iter().map(|(n, _)| n).collect();
    for must in REQUIRED {
        assert!(names.iter().any(|n| n == must), "{must}: no planes JSON in {names:?}");
    }
}

// ---------------------------------------------------------------------------------------
// GTP-U
// ---------------------------------------------------------------------------------------

/// The generator's PSC key: `pdu_type/qfi/ppp/rqi/ppi`, `-` where tshark 4.0 has no field.
fn psc_key(p: &gtpu::PduSessionInfo) -> String {
    if p.pdu_type == gtpu::PSC_DL {
        let ppi = p.ppi.map_or("-".to_string(), |v| v.to_string());
        format!("0/{}/{}/{}/{ppi}", p.qfi, u8::from(p.ppp), u8::from(p.rqi))
    } else {
        format!("{}/{}/-/-/-", p.pdu_type, p.qfi)
    }
}

/// GTP-U messages by type, the non-G-PDU messages' IEs and the PSC keys equal tshark's.
#[test]
fn gtpu_messages_ies_and_psc_match_tshark() {
    let mut checked = 0;
    for (name, doc) in planes_expected() {
        let Some(want) = doc.get("gtpu") else { continue };
        let mut msgs = BTreeMap::<String, u64>::new();
        let mut psc = BTreeMap::<String, u64>::new();
        let mut non_gpdu = Vec::new();
        with_l4(&name, |n, l4| {
            if !udp_port(l4, gtpu::GTPU_PORT) {
                return;
            }
            let Ok((h, body)) = gtpu::parse(l4.payload) else { return };
            *msgs.entry(h.message_type.to_string()).or_default() += 1;
            if h.message_type == gtpu::MSG_GPDU {
                if let Some(p) = &h.pdu_session {
                    *psc.entry(psc_key(p)).or_default() += 1;
                }
                return;
            }
            let ies = gtpu::parse_ies(h.message_type, body).unwrap_or_else(|e| panic!("{name} frame {n}: {e}"));
            non_gpdu.push(json!({
                "frame": n,
                "type": h.message_type,
                "teid": h.teid,
                "recovery": ies.recovery,
                "teid_data_i": ies.teid_data_i,
                "peer_address": ies.peer_address.map(|a| a.to_string()),
                "ext_header_types": ies.ext_header_types(),
            }));
        });
        assert_eq!(msgs, counts(&want["messages"]), "{name}: GTP-U messages by type");
        assert_eq!(psc, counts(&want["psc"]), "{name}: PSC pdu_type/qfi/ppp/rqi/ppi");
        assert_eq!(Value::Array(non_gpdu), want["non_gpdu"], "{name}: non-G-PDU messages");
        checked += 1;
    }
    assert!(checked >= 7, "GTP-U captures checked: {checked}");
}

/// The one G-PDU of `gtpu-unknown-or-short-payload.pcap` whose T-PDU tshark leaves
/// undissected (`eth:ethertype:ip:udp:gtp`, frame 12) is `gtpu: non_ip_payload` for fivewatch
/// (first octet 0x01), not an inner IP error; every other G-PDU opens its inner IP packet.
#[test]
fn gtpu_non_ip_tpdu_is_counted_as_such() {
    let name = "gtpu-unknown-or-short-payload.pcap";
    let frames = common::frames(&common::capture(name));
    let f = &frames[11];
    let d = decode::decode(f.linktype, &f.data).unwrap();
    let decode::Decoded::Ip(p) = d else {
        panic!("frame 12 is IP")
    };
    assert_eq!(
        p.anomaly,
        Some(DecodeError {
            layer: Layer::Gtpu,
            reason: Reason::NonIpPayload
        })
    );
    let l4 = decode::outer_l4(f.linktype, &f.data).unwrap().unwrap();
    let (_, tpdu) = gtpu::parse(l4.payload).unwrap();
    assert_eq!(gtpu::tpdu_kind(tpdu), gtpu::TpduKind::NonIp);
}

// ---------------------------------------------------------------------------------------
// GTPv2-C
// ---------------------------------------------------------------------------------------

/// Every Cause, EPS Bearer ID and Recovery IE of a message in wire order, descending into
/// Bearer Contexts (what tshark's `gtpv2.cause` / `gtpv2.ebi` / `gtpv2.rec` list).
fn walk_ies(octets: &[u8], causes: &mut Vec<u64>, ebis: &mut Vec<u64>, rec: &mut Vec<u64>) -> Result<(), DecodeError> {
    for ie in gtpv2c::ies(octets) {
        let ie = ie?;
        match ie.ie_type {
            gtpv2c::IE_CAUSE => causes.push(u64::from(gtpv2c::Cause::parse(ie.value)?.value)),
            gtpv2c::IE_EBI => ebis.extend(gtpv2c::parse_ebi(ie.value).map(u64::from)),
            gtpv2c::IE_RECOVERY => rec.extend(ie.value.first().map(|b| u64::from(*b))),
            gtpv2c::IE_BEARER_CONTEXT => walk_ies(ie.value, causes, ebis, rec)?,
            _ => {}
        }
    }
    Ok(())
}

/// fivewatch's record of one GTP-C datagram, shaped like the generator's frame records.
fn gtpv2c_record(n: u64, transport: &str, payload: &[u8]) -> (Value, Option<DecodeError>) {
    let (mut msgs, mut fteids) = (Vec::new(), Vec::new());
    let (mut paa4, mut paa6, mut paa6len) = (Vec::new(), Vec::new(), Vec::new());
    let (mut causes, mut ebis, mut rec) = (Vec::new(), Vec::new(), Vec::new());
    let mut error = None;
    for m in gtpv2c::messages(payload) {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        let h = m.header;
        msgs.push(json!({
            "type": h.message_type,
            "p": h.piggyback,
            "t": h.teid.is_some(),
            "mp": h.message_priority.is_some(),
            "priority": h.message_priority,
            "teid": h.teid,
            "seq": h.sequence,
        }));
        let s = gtpv2c::summarize(&m);
        for f in s.fteids() {
            fteids.push(json!({
                "interface_type": f.fteid.interface_type,
                "teid": f.fteid.teid,
                "ipv4": f.fteid.ipv4.map(|a| a.to_string()),
                "ipv6": f.fteid.ipv6.map(|a| a.to_string()),
            }));
        }
        if let Some(p) = s.paa {
            paa4.extend(p.ipv4.map(|a| a.to_string()));
            paa6.extend(p.ipv6.map(|a| a.to_string()));
            paa6len.extend(p.ipv6_prefix_len);
        }
        let cause_start = causes.len();
        let walked = walk_ies(m.ies, &mut causes, &mut ebis, &mut rec);
        // The summary's message-level cause is the first Cause IE of the message (it precedes
        // the Bearer Contexts in every message here).
        if s.cause.is_some() {
            assert_eq!(
                s.cause.map(|c| u64::from(c.value)),
                causes.get(cause_start).copied(),
                "frame {n}"
            );
        }
        // A length past the datagram (`Message::truncated`) is a flag, not an error: the
        // header and the IEs at hand are usable (tshark does not mark it either; frame 6 of
        // gtpv2c-odd-tcp-malformed.pcapng).
        error = error.or(s.error).or(walked.err());
    }
    let rec = json!({
        "frame": n,
        "transport": transport,
        "messages": msgs,
        "fteids": fteids,
        "paa_ipv4": paa4,
        "paa_ipv6": paa6,
        "paa_ipv6_len": paa6len,
        "causes": causes,
        "ebis": ebis,
        "recovery": rec,
    });
    (rec, error)
}

/// A GTPv2-C frame that fivewatch reports as erroneous and tshark dissects without marking it
/// malformed, by design: both come from message length fields that are too short.
struct LengthDifference {
    capture: &'static str,
    frame: u64,
    /// fivewatch's error.
    reason: Reason,
    /// The first 4 octets of the payload (flags, type, length), which show why.
    first4: &'static [u8],
    /// Whether fivewatch still reads the header (only the IEs are cut by the length).
    header_read: bool,
    why: &'static str,
}

const LENGTH_DIFFERENCES: &[LengthDifference] = &[
    LengthDifference {
        capture: "gtp-lookalike-udp-false-positive.pcapng",
        frame: 7,
        reason: Reason::BadLength,
        first4: &[0x46, 0x01, 0x00, 0x00],
        header_read: false,
        why: "flags 0x46 (version 2, T=0, MP=1), Echo Request, message length 0: the length \
              (octets after the first 4) cannot even hold the sequence number and priority of \
              a T=0 header (TS 29.274 §5.1), so fivewatch reports gtpc: bad_length; tshark \
              ignores the length, reads IEs from the rest of the 326-octet datagram and only \
              adds an expert note (a UDP flow from port 2123 that merely looks like GTP, per \
              the capture's MANIFEST entry)",
    },
    LengthDifference {
        capture: "gtpv2c-odd-tcp-malformed.pcapng",
        frame: 3,
        reason: Reason::IeOverrun,
        first4: &[0x48, 0x25, 0x00, 0x09],
        header_read: true,
        why: "Delete Session Response over TCP with T=1 and message length 9: 8 of those are \
              TEID, sequence and spare, leaving 1 octet for IEs, but a 5-octet Recovery IE \
              follows. fivewatch honours the length (it is what delimits a piggybacked \
              message) and reports gtpc: ie_overrun with no Recovery; tshark reads the IE past \
              the length (Recovery 17) without an expert error",
    },
];

fn length_difference(name: &str, n: u64) -> Option<&'static LengthDifference> {
    LENGTH_DIFFERENCES.iter().find(|r| r.capture == name && r.frame == n)
}

/// Per frame: messages (type, P/T/MP flags, priority, TEID, sequence, piggybacked ones),
/// F-TEIDs (interface type, TEID, IPv4, IPv6), PAA addresses, every Cause/EBI/Recovery; and
/// per type counts, UDP and TCP apart. A frame tshark marks malformed is one where fivewatch
/// reports an error, and only those.
#[test]
fn gtpv2c_messages_fteids_paa_match_tshark() {
    let mut checked = Vec::new();
    for (name, doc) in planes_expected() {
        let Some(want) = doc.get("gtpv2c") else { continue };
        let want_frames: BTreeMap<u64, &Value> = want["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["frame"].as_u64().unwrap(), f))
            .collect();
        let (mut by_type, mut tcp_by_type) = (BTreeMap::<String, u64>::new(), BTreeMap::<String, u64>::new());
        let mut seen = Vec::new();
        let mut rejected = Vec::new();
        with_l4(&name, |n, l4| {
            let transport = match l4.proto {
                ipproto::UDP => "udp",
                ipproto::TCP if !l4.payload.is_empty() => "tcp",
                _ => return,
            };
            if l4.src_port != gtpv2c::GTPC_PORT && l4.dst_port != gtpv2c::GTPC_PORT {
                return;
            }
            match gtpv2c::parse_message(l4.payload) {
                // GTPv1-C on the shared port: checked in gtpv1c_on_2123_is_bad_version.
                Err(e) if e.reason == Reason::BadVersion => return,
                Err(e) => {
                    rejected.push((n, e.reason, l4.payload.get(..4).map(<[u8]>::to_vec)));
                    return;
                }
                Ok(_) if length_difference(&name, n).is_some() => {
                    let d = length_difference(&name, n).unwrap();
                    let (rec, err) = gtpv2c_record(n, transport, l4.payload);
                    assert!(d.header_read, "{}", d.why);
                    assert_eq!(
                        (err.map(|e| e.reason), &l4.payload[..4]),
                        (Some(d.reason), d.first4),
                        "{}",
                        d.why
                    );
                    let w = want_frames[&n];
                    assert_eq!(w["malformed"], json!(false));
                    assert_eq!((&rec["messages"], &rec["transport"]), (&w["messages"], &w["transport"]));
                    let bucket = if transport == "udp" {
                        &mut by_type
                    } else {
                        &mut tcp_by_type
                    };
                    for m in rec["messages"].as_array().unwrap() {
                        *bucket.entry(m["type"].to_string()).or_default() += 1;
                    }
                    seen.push(n);
                    return;
                }
                Ok(_) => {}
            }
            let (mut rec, err) = gtpv2c_record(n, transport, l4.payload);
            let Some(w) = want_frames.get(&n) else {
                panic!("{name} frame {n}: GTPv2-C for fivewatch only: {rec}")
            };
            assert_eq!(
                err.is_some(),
                w["malformed"].as_bool().unwrap(),
                "{name} frame {n}: fivewatch error {err:?} vs tshark malformed"
            );
            rec["malformed"] = json!(err.is_some());
            assert_eq!(&rec, *w, "{name} frame {n}");
            let bucket = if transport == "udp" {
                &mut by_type
            } else {
                &mut tcp_by_type
            };
            for m in rec["messages"].as_array().unwrap() {
                *bucket.entry(m["type"].to_string()).or_default() += 1;
            }
            seen.push(n);
        });
        // Frames tshark dissects as GTPv2-C although the header is unusable, by design.
        let mut want_by_type = counts(&want["messages_by_type"]);
        for (n, reason, first4) in rejected {
            let w = want_frames[&n];
            let why = length_difference(&name, n)
                .unwrap_or_else(|| panic!("{name} frame {n}: undocumented {reason:?} ({first4:?})"));
            assert!(!why.header_read, "{}", why.why);
            assert_eq!(
                (reason, first4.as_deref()),
                (why.reason, Some(why.first4)),
                "{}",
                why.why
            );
            for m in w["messages"].as_array().unwrap() {
                *want_by_type.get_mut(&m["type"].to_string()).unwrap() -= 1;
            }
            want_by_type.retain(|_, c| *c > 0);
            seen.push(n);
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            want_frames.keys().copied().collect::<Vec<_>>(),
            "{name}: GTPv2-C frames"
        );
        assert_eq!(by_type, want_by_type, "{name}: messages by type (UDP)");
        assert_eq!(
            tcp_by_type,
            counts(&want["tcp_messages_by_type"]),
            "{name}: messages by type (TCP)"
        );
        checked.push(name);
    }
    for must in [
        "epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng",
        "gtpv2c-create-delete-session.pcap",
        "gtpv2c-odd-tcp-malformed.pcapng",
        "volte-gtpu-sip-rtp.pcapng",
    ] {
        assert!(checked.iter().any(|n| n == must), "{must} not checked: {checked:?}");
    }
}

/// The malformed frame of `gtpv2c-odd-tcp-malformed.pcapng` (frame 4): an Echo Request with
/// P=1 followed by only 2 octets (`31 32`, "12"). fivewatch reads the Echo Request (Recovery
/// 17) and reports the would-be piggybacked message as `gtpc: bad_version` (its first octet
/// says version 1); tshark marks the frame malformed. The piggyback of frame 2 (an Echo
/// Request carrying a Create Session Response) is walked to both messages.
#[test]
fn gtpv2c_piggyback_and_malformed_frames() {
    let frames = common::frames(&common::capture("gtpv2c-odd-tcp-malformed.pcapng"));
    let l4 = |i: usize| decode::outer_l4(frames[i].linktype, &frames[i].data).unwrap().unwrap();
    let f4 = l4(3);
    let got: Vec<_> = gtpv2c::messages(f4.payload).collect();
    assert_eq!(got.len(), 2);
    let echo = got[0].as_ref().unwrap();
    assert_eq!((echo.header.message_type, echo.header.piggyback), (1, true));
    assert_eq!(gtpv2c::summarize(echo).recovery, Some(17));
    assert_eq!(&f4.payload[13..], b"12");
    assert_eq!(
        got[1],
        Err(DecodeError {
            layer: Layer::Gtpc,
            reason: Reason::BadVersion
        })
    );
    // Frame 6: Modify Bearer Request whose length (42) runs past its complete 12-octet UDP
    // payload: header read, no IEs, flagged truncated.
    let f6 = l4(5);
    let (m, _) = gtpv2c::parse_message(f6.payload).unwrap();
    assert_eq!(
        (f6.payload.len(), m.header.length, m.truncated, m.ies.len()),
        (12, 42, true, 0)
    );
    let f2 = l4(1);
    let types: Vec<&str> = gtpv2c::messages(f2.payload)
        .map(|m| gtpv2c::message_label(m.unwrap().header.message_type))
        .collect();
    assert_eq!(types, ["echo_request", "create_session_response"]);
}

/// Frames tshark dissects as GTPv1-C on UDP 2123 are `gtpc: bad_version` for fivewatch.
#[test]
fn gtpv1c_on_2123_is_bad_version() {
    let mut checked = 0;
    for (name, doc) in planes_expected() {
        let Some(want) = doc.get("gtpv1c_on_2123") else {
            continue;
        };
        let want: Vec<u64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["frame"].as_u64().unwrap())
            .collect();
        let mut got = Vec::new();
        with_l4(&name, |n, l4| {
            if udp_port(l4, gtpv2c::GTPC_PORT)
                && gtpv2c::parse_message(l4.payload).map_err(|e| e.reason) == Err(Reason::BadVersion)
            {
                got.push(n);
            }
        });
        assert_eq!(got, want, "{name}");
        checked += 1;
    }
    assert!(checked >= 2);
}

// ---------------------------------------------------------------------------------------
// SCTP, NGAP, S1AP
// ---------------------------------------------------------------------------------------

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

/// Per SCTP frame: ports, chunk types (bounded walk), DATA PPIDs, NGAP/S1AP PDU choice and
/// procedure code (and criticality where tshark's is unambiguous); NGAP and S1AP PDUs counted
/// by (choice, procedure code) and chunks by type equal tshark's.
#[test]
fn sctp_chunks_and_ngap_s1ap_match_tshark() {
    let mut checked = Vec::new();
    for (name, doc) in planes_expected() {
        let Some(want) = doc.get("sctp") else { continue };
        let want_frames: BTreeMap<u64, &Value> = want["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["frame"].as_u64().unwrap(), f))
            .collect();
        let mut seen = Vec::new();
        let mut chunks_by_type = BTreeMap::<String, u64>::new();
        let (mut ngap_got, mut ngap_want) = (BTreeMap::<String, u64>::new(), BTreeMap::<String, u64>::new());
        let mut bound_hit = false;
        with_l4(&name, |n, l4| {
            if l4.proto != ipproto::SCTP {
                return;
            }
            let w = want_frames
                .get(&n)
                .unwrap_or_else(|| panic!("{name} frame {n}: SCTP for fivewatch only"));
            seen.push(n);
            let (h, chunks) = sctp::parse(l4.payload).unwrap();
            assert_eq!(
                (u64::from(h.src_port), u64::from(h.dst_port)),
                (w["src_port"].as_u64().unwrap(), w["dst_port"].as_u64().unwrap())
            );
            let (mut types, mut ppids, mut err) = (Vec::new(), Vec::new(), None);
            let (mut ngap, mut s1ap, mut crit) = (Vec::new(), Vec::new(), Vec::new());
            for c in chunks {
                let c = match c {
                    Ok(c) => c,
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                };
                types.push(u64::from(c.chunk_type));
                *chunks_by_type.entry(c.chunk_type.to_string()).or_default() += 1;
                let Some(d) = sctp::DataChunk::parse(&c) else { continue };
                let d = d.unwrap();
                ppids.extend(d.ppid.map(u64::from));
                if let Some(r) = sctp::ran_pdu(&d, h.src_port, h.dst_port) {
                    let (proto, pdu) = r.unwrap();
                    let pair = vec![pdu.choice.index() as u64, u64::from(pdu.procedure_code.unwrap())];
                    crit.push(pdu.criticality.map(u64::from));
                    match proto {
                        sctp::RanProtocol::Ngap => ngap.push(pair),
                        sctp::RanProtocol::S1ap => s1ap.push(pair),
                    }
                }
            }
            let tshark_count = w["chunk_count"].as_u64().unwrap() as usize;
            let tshark_types = u64s(&w["chunk_types"]);
            if tshark_count <= sctp::MAX_SCTP_CHUNKS {
                assert_eq!(err, None, "{name} frame {n}");
                assert_eq!(types, tshark_types, "{name} frame {n}: chunk types");
            } else {
                // The documented bound: the first chunks agree, then too_many_headers.
                bound_hit = true;
                assert_eq!(
                    err,
                    Some(DecodeError {
                        layer: Layer::Sctp,
                        reason: Reason::TooManyHeaders
                    })
                );
                assert_eq!(types.len(), sctp::MAX_SCTP_CHUNKS);
                assert_eq!(types[..], tshark_types[..sctp::MAX_SCTP_CHUNKS], "{name} frame {n}");
            }
            assert_eq!(ppids, u64s(&w["ppids"]), "{name} frame {n}: PPIDs");
            let pairs = |v: &Value| -> Vec<Vec<u64>> { v.as_array().unwrap().iter().map(u64s).collect() };
            assert_eq!(ngap, pairs(&w["ngap"]), "{name} frame {n}: NGAP PDUs");
            assert_eq!(s1ap, pairs(&w["s1ap"]), "{name} frame {n}: S1AP PDUs");
            for key in ["ngap_criticality", "s1ap_criticality"] {
                if let Some(c) = w[key].as_u64() {
                    assert_eq!(crit, [Some(c)], "{name} frame {n}: {key}");
                }
            }
            for (pdus, label) in [(&ngap, "ngap"), (&s1ap, "s1ap")] {
                for p in pdus {
                    *ngap_got.entry(format!("{label}/{}/{}", p[0], p[1])).or_default() += 1;
                }
            }
            for label in ["ngap", "s1ap"] {
                for p in pairs(&w[label]) {
                    *ngap_want.entry(format!("{label}/{}/{}", p[0], p[1])).or_default() += 1;
                }
            }
        });
        assert_eq!(
            seen,
            want_frames.keys().copied().collect::<Vec<_>>(),
            "{name}: SCTP frames"
        );
        assert_eq!(ngap_got, ngap_want, "{name}: PDUs by protocol/choice/procedure code");
        if !bound_hit {
            assert_eq!(
                chunks_by_type,
                counts(&want["chunks_by_type"]),
                "{name}: chunks by type"
            );
        }
        checked.push(name);
    }
    for must in [
        "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng",
        "sctp-too-many-chunks-rawip4.pcap",
        "epc-srsenb-gtpu-user-traffic-gtpv2c.pcapng",
        "volte-gtpu-sip-rtp.pcapng",
    ] {
        assert!(checked.iter().any(|n| n == must), "{must} not checked: {checked:?}");
    }
}

/// The NGAP procedures of the 5G SA registration capture by label, from tshark's codes: the
/// registration flow (NG Setup, Initial UE Message, NAS transport both ways, Initial Context
/// Setup, PDU Session Resource Setup/Release, UE Context Release) is all named, nothing is
/// `other`.
#[test]
fn ngap_procedures_of_the_5g_capture_are_named() {
    let doc = planes_expected()
        .into_iter()
        .find(|(n, _)| n == "5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng")
        .unwrap()
        .1;
    let mut by_label = BTreeMap::<&str, u64>::new();
    for f in doc["sctp"]["frames"].as_array().unwrap() {
        for p in f["ngap"].as_array().unwrap() {
            let code = p[1].as_u64().unwrap() as u8;
            *by_label.entry(sctp::procedure_label(code)).or_default() += 1;
        }
    }
    assert!(!by_label.contains_key("other"), "{by_label:?}");
    for l in [
        "ng_setup",
        "initial_ue_message",
        "downlink_nas_transport",
        "uplink_nas_transport",
        "initial_context_setup",
        "pdu_session_resource_setup",
        "pdu_session_resource_release",
        "ue_context_release",
    ] {
        assert!(by_label.contains_key(l), "{l} missing: {by_label:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Arbitrary bytes: the GTPv2-C message walk and summary, the GTP-U IE parser (every
    /// message type), the SCTP chunk walk with DATA/NGAP decoding, and the PSC parser return
    /// without panicking, and the walks are bounded.
    #[test]
    fn plane_parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..300), t in any::<u8>()) {
        let msgs: Vec<_> = gtpv2c::messages(&data).collect();
        prop_assert!(msgs.len() <= gtpv2c::MAX_MESSAGES + 1);
        for m in msgs.iter().flatten() {
            let s = gtpv2c::summarize(m);
            prop_assert!(s.fteids().len() <= gtpv2c::MAX_SUMMARY_FTEIDS);
            let _ = gtpv2c::Imsi::parse(m.ies).map(|i| i.as_str().len());
        }
        let _ = gtpu::parse_ies(t, &data);
        if let Ok((_, body)) = gtpu::parse(&data) {
            let _ = gtpu::parse_ies(t, body);
        }
        let _ = gtpu::PduSessionInfo::parse(&data);
        if let Ok((h, chunks)) = sctp::parse(&data) {
            let mut n = 0;
            for c in chunks {
                n += 1;
                let Ok(c) = c else { break };
                if let Some(Ok(d)) = sctp::DataChunk::parse(&c) {
                    let _ = sctp::ran_pdu(&d, h.src_port, h.dst_port);
                }
            }
            prop_assert!(n <= sctp::MAX_SCTP_CHUNKS + 1);
        }
        let _ = sctp::parse_ap_pdu(&data);
    }

    /// Structured GTPv2-C: a valid header in front of arbitrary IEs, so that the IE walk and
    /// the typed IE decoders (F-TEID, PAA, Cause, Bearer Context nesting) are reached.
    #[test]
    fn gtpv2c_ies_never_panic(ies in prop::collection::vec(any::<u8>(), 0..400), t in any::<u8>(), piggy in any::<bool>()) {
        let mut d = vec![0x48 | if piggy { 0x10 } else { 0 }, t, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0];
        d.extend_from_slice(&ies);
        let len = (d.len() - 4) as u16;
        d[2..4].copy_from_slice(&len.to_be_bytes());
        if piggy {
            d.extend_from_slice(&ies);
        }
        for m in gtpv2c::messages(&d).flatten() {
            let _ = gtpv2c::summarize(&m);
        }
    }

    /// Structured SCTP: valid chunk headers with arbitrary lengths and values.
    #[test]
    fn sctp_chunks_never_panic(parts in prop::collection::vec((any::<u8>(), any::<u8>(), 0u16..40, prop::collection::vec(any::<u8>(), 0..40)), 0..40)) {
        let mut d = vec![0x96, 0x0c, 0x96, 0x0c, 0, 0, 0, 1, 0, 0, 0, 0];
        for (ty, flags, len, v) in parts {
            d.extend_from_slice(&[ty % 2 * 64 % 128, flags]);
            d.extend_from_slice(&len.to_be_bytes());
            d.extend_from_slice(&v);
        }
        let (h, chunks) = sctp::parse(&d).unwrap();
        for c in chunks.flatten() {
            if let Some(Ok(dc)) = sctp::DataChunk::parse(&c) {
                let _ = sctp::ran_pdu(&dc, h.src_port, h.dst_port);
            }
        }
    }
}
