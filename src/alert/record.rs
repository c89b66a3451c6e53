//! The JSON shape of an alert record (one object per line).

use std::net::IpAddr;

use serde::Serialize;

use crate::detect::{Detail, Event};
use crate::session::SessionFields;

/// Alert severity, lowest to highest. Serialised lower-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Just over threshold.
    Low,
    /// At least 2x threshold.
    Medium,
    /// At least 4x threshold.
    High,
    /// At least 10x threshold.
    Critical,
}

impl Severity {
    /// Every severity, for pre-registering metric series.
    pub const ALL: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub(crate) fn of(s: &str) -> Severity {
        match s {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" => Severity::Medium,
            _ => Severity::Low,
        }
    }

    /// Lower-case name (metric label and JSON value).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// EVE-style numeric severity: 1 is the most severe.
    pub fn eve(self) -> u8 {
        match self {
            Severity::Critical => 1,
            Severity::High => 2,
            Severity::Medium => 3,
            Severity::Low => 4,
        }
    }
}

/// The `alert` object (EVE's `alert` with fivewatch's `kind`).
#[derive(Debug, Clone, Serialize)]
pub struct AlertInfo {
    /// `syn_flood`, `port_scan`.
    pub kind: &'static str,
    /// Human-readable one-line description.
    pub signature: String,
    /// Category (EVE's classtype text).
    pub category: &'static str,
    /// EVE numeric severity, 1 = most severe.
    pub severity: u8,
}

/// GTP-U context of a tunnelled alert.
#[derive(Debug, Clone, Serialize)]
pub struct GtpInfo {
    /// TEID of the sample packet (allocated by the receiving endpoint `outer_dst_ip`).
    pub teid: u32,
    /// QoS Flow Identifier from the PDU Session Container, when present.
    pub qfi: Option<u8>,
    /// Sending tunnel endpoint.
    pub outer_src_ip: IpAddr,
    /// Receiving tunnel endpoint.
    pub outer_dst_ip: IpAddr,
    /// The UE address: inner source for uplink, inner destination for downlink (direction
    /// from the session table or the PDU Session Container), absent when it is unknown.
    pub ue_ip: Option<IpAddr>,
    /// The session of the sample packet's TEID: `seid`, `control_teid`, `session_state`.
    #[serde(flatten)]
    pub session: SessionFields,
}

/// One alert record. Field names are a stable interface.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRecord {
    /// Time of the record (first packet for `new`, last packet otherwise), EVE format.
    pub timestamp: String,
    /// Always `alert`.
    pub event_type: &'static str,
    /// Source (attacker, or a sample of the attackers).
    pub src_ip: IpAddr,
    /// Source port of the sample packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination (victim, or a sample target).
    pub dest_ip: IpAddr,
    /// Destination port, when the episode is about one port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// Transport protocol name (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`, `SCTP`) or number.
    pub proto: String,
    /// Community ID v1 of the sample packet's flow.
    pub community_id: String,
    /// Kind, signature, category and EVE severity.
    pub alert: AlertInfo,
    /// `low`, `medium`, `high`, `critical` (from the peak against the threshold).
    pub severity: Severity,
    /// `new`, `ongoing` or `resolved`.
    pub state: &'static str,
    /// Stable id of the episode (16 hex digits).
    pub alert_id: String,
    /// First packet of the episode.
    pub first_seen: String,
    /// Last packet counted.
    pub last_seen: String,
    /// `last_seen - first_seen`, seconds.
    pub duration_s: f64,
    /// The host the alert is about: the victim (floods) or the scanner (scans).
    pub entity_ip: IpAddr,
    /// The port the alert is about, when it is about one: the flooded port, or the port of
    /// a horizontal scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_port: Option<u16>,
    /// Current value of the measured quantity (in `unit`).
    pub observed: f64,
    /// Highest value during the episode.
    pub peak: f64,
    /// Configured threshold (in `unit`).
    pub threshold: f64,
    /// Window the value is measured over, seconds.
    pub window_s: f64,
    /// Unit of `observed`, `peak` and `threshold`.
    pub unit: &'static str,
    /// SYN flood numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syn_flood: Option<serde_json::Value>,
    /// Port scan numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_scan: Option<serde_json::Value>,
    /// GTP-U context, for tunnelled traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gtp: Option<GtpInfo>,
    /// Sensor name.
    pub sensor: String,
}

pub use crate::decode::ipproto::name as proto_name;
pub use crate::time::eve_timestamp;

impl AlertRecord {
    /// Build the record of event `ev`.
    pub fn from_event(ev: &Event, alert_id: &str, sev: Severity, state: &'static str, sensor: &str) -> AlertRecord {
        let c = &ev.context;
        let (signature, category, detail_key, detail) = match &ev.detail {
            Detail::SynFlood { syn_packets, completed_handshakes, distinct_sources, sources_sample } => {
                let target = match ev.scope_port {
                    Some(p) => format!("{}:{}", ev.entity, p),
                    None => format!("{} (all ports)", ev.entity),
                };
                (
                    format!(
                        "SYN flood towards {target}: {} half-open SYN/s now, peak {} (threshold {}/s, {} s window)",
                        num(ev.observed),
                        num(ev.peak),
                        num(ev.threshold),
                        num(ev.window_s)
                    ),
                    "Denial of Service",
                    "syn_flood",
                    serde_json::json!({
                    "syn_packets": syn_packets,
                        "completed_handshakes": completed_handshakes,
                        "distinct_sources": distinct_sources,
                        "sources_sample": sources_sample,
                    }),
                )
            }
            Detail::PortScan { scan_type, probes, distinct_ports, distinct_hosts, answered, targets_sample } => (
                format!(
                    "{scan_type} port scan from {}: {probes} probes to {distinct_ports} distinct ports on {distinct_hosts} host{}, {answered} answered (threshold {} unanswered {} in {} s)",
                    ev.entity,
                    if *distinct_hosts == 1 { "" } else { "s" },
                    num(ev.threshold),
                    ev.unit,
                    num(ev.window_s)
                ),
                "Network Scan",
                "port_scan",
                serde_json::json!({
                    "scan_type": scan_type,
                    "probes": probes,
                    "distinct_ports": distinct_ports,
                    "distinct_hosts": distinct_hosts,
                    "answered": answered,
                    "targets_sample": targets_sample,
                }),
            ),
        };
        let gtp = c.tunnel.map(|t| {
            let ue_ip = t.uplink.map(|up| if up { c.src_ip } else { c.dest_ip });

            GtpInfo {
                teid: t.header.teid,
                qfi: t.header.pdu_session.map(|p| p.qfi),
                outer_src_ip: t.outer_src,
                outer_dst_ip: t.outer_dst,
                ue_ip,
                session: t.session.map_or(SessionFields::NONE, |s| s.record_fields()),
            }
        });
        let ts = if state == "new" {
            ev.first_seen_ns
        } else {
            ev.last_seen_ns
        };
        AlertRecord {
            timestamp: eve_timestamp(ts),
            event_type: "alert",
            src_ip: c.src_ip,
            src_port: c.src_port,
            dest_ip: c.dest_ip,
            dest_port: c.dest_port,
            proto: proto_name(c.proto),
            community_id: c.community_id.clone(),
            alert: AlertInfo {
                kind: ev.kind.as_str(),
                signature,
                category,
                severity: sev.eve(),
            },
            severity: sev,
            state,
            alert_id: alert_id.to_string(),
            first_seen: eve_timestamp(ev.first_seen_ns),
            last_seen: eve_timestamp(ev.last_seen_ns),
            duration_s: (ev.last_seen_ns.saturating_sub(ev.first_seen_ns) / 1000) as f64 / 1e6,
            entity_ip: ev.entity,
            entity_port: ev.scope_port,
            observed: round3(ev.observed),
            peak: round3(ev.peak),
            threshold: ev.threshold,
            window_s: ev.window_s,
            unit: ev.unit,
            syn_flood: (detail_key == "syn_flood").then(|| detail.clone()),
            port_scan: (detail_key == "port_scan").then_some(detail),
            gtp,
            sensor: sensor.to_string(),
        }
    }

    /// The record as one JSON line (without the newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"event_type\":\"error\",\"error\":\"{e}\"}}"))
    }
}

/// A number for a sentence: integers without decimals, others with up to 3.
fn num(x: f64) -> String {
    if x.fract() == 0.0 || x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_signatures() {
        assert_eq!(
            (num(300.0), num(0.5), num(83.637), num(22322.4)),
            ("300".into(), "0.5".into(), "83.637".into(), "22322".into())
        );
    }

    #[test]
    fn eve_timestamp_format() {
        assert_eq!(
            eve_timestamp(1_619_605_821_099_510_000),
            "2021-04-28T10:30:21.099510+0000"
        );
    }
}
