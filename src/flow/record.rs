//! Flow records: one JSON object per flow when it ends (idle timeout, eviction, end of
//! input or shutdown), shaped like Suricata's EVE `flow` event (`event_type: "flow"`,
//! `src_ip`/`src_port` = the initiator, `dest_ip`/`dest_port` = the responder, `proto`,
//! `community_id`, a `flow` object with per-direction counters), plus fivewatch's flow
//! statistics and, for tunnelled flows, a `gtp` object an analyst can pivot on from an alert.

use std::net::IpAddr;

use serde::Serialize;

use super::key::{community_id, icmp_ports};
use super::table::{EndReason, Flow, TcpState};
use crate::decode::ipproto::{self, name as proto_name};
use crate::session::SessionFields;
use crate::time::eve_timestamp;

/// The `flow` object (EVE names).
#[derive(Debug, Clone, Serialize)]
pub struct FlowCounters {
    /// Packets initiator → responder.
    pub pkts_toserver: u64,
    /// Packets responder → initiator.
    pub pkts_toclient: u64,
    /// Bytes (IP length) initiator → responder.
    pub bytes_toserver: u64,
    /// Bytes (IP length) responder → initiator.
    pub bytes_toclient: u64,
    /// First packet.
    pub start: String,
    /// Last packet.
    pub end: String,
    /// `end - start`, seconds.
    pub age_s: f64,
    /// Why the record was written: `timeout`, `evicted` or `shutdown`.
    pub reason: &'static str,
    /// TCP state at the end (`new`, `syn_sent`, `syn_received`, `established`, `closed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
}

/// GTP-U context of a tunnelled flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowGtp {
    /// Uplink TEID (allocated by the UPF).
    pub ul_teid: Option<u32>,
    /// Downlink TEID (allocated by the gNB).
    pub dl_teid: Option<u32>,
    /// Last QoS Flow Identifier seen.
    pub qfi: Option<u8>,
    /// gNB (sender of uplink packets).
    pub gnb_ip: Option<IpAddr>,
    /// UPF (receiver of uplink packets).
    pub upf_ip: Option<IpAddr>,
    /// The UE's address (inner source of uplink packets).
    pub ue_ip: Option<IpAddr>,
    /// The tunnel's session at the flow's last G-PDU: `seid`, `control_teid`,
    /// `session_state`.
    #[serde(flatten)]
    pub session: SessionFields,
}

/// One flow record. Field names are a stable interface.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRecord {
    /// Time of the flow's last packet, EVE format.
    pub timestamp: String,
    /// Always `flow`.
    pub event_type: &'static str,
    /// Initiator address.
    pub src_ip: IpAddr,
    /// Initiator port (TCP, UDP, SCTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Responder address.
    pub dest_ip: IpAddr,
    /// Responder port (TCP, UDP, SCTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// ICMP/ICMPv6 type of the initiator's packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u16>,
    /// Transport protocol name.
    pub proto: String,
    /// Community ID v1 (seed 0).
    pub community_id: String,
    /// Counters and lifetime.
    pub flow: FlowCounters,
    /// TCP flag counts (TCP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<serde_json::Value>,
    /// Packet size (bytes) and inter-arrival time (seconds) mean and standard deviation.
    pub stats: serde_json::Value,
    /// GTP-U context (tunnelled flows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gtp: Option<FlowGtp>,
}

impl FlowRecord {
    /// The record of `f`, which ended for `reason`.
    pub fn of(f: &Flow, reason: EndReason) -> FlowRecord {
        let (src, sport) = f.initiator();
        let (dst, dport) = f.responder();
        let proto = f.proto();
        let ports = matches!(proto, ipproto::TCP | ipproto::UDP | ipproto::SCTP);
        let icmp = matches!(proto, ipproto::ICMP | ipproto::ICMPV6);
        // ICMP keys hold Community ID port equivalents: the initiator's "port" is its type.
        let one_way = icmp && icmp_ports(proto, sport as u8, dport as u8).2;
        let cid = community_id(
            0,
            src,
            dst,
            proto,
            if ports || icmp { (sport, dport) } else { (0, 0) },
            one_way,
        );
        let state = (proto == ipproto::TCP).then_some(match f.tcp_state() {
            TcpState::None => "new",
            TcpState::SynSent => "syn_sent",
            TcpState::SynReceived => "syn_received",
            TcpState::Established => "established",
            TcpState::Closed => "closed",
        });
        let t = f.tcp_flags();
        let gtp = f.is_tunnelled().then(|| {
            let (gnb_ip, upf_ip, ue_ip) = f.gtp_roles();

            FlowGtp {
                ul_teid: f.ul_teid(),
                dl_teid: f.dl_teid(),
                qfi: f.qfi(),
                gnb_ip,
                upf_ip,
                ue_ip,
                session: f.session().record_fields(),
            }
        });
        let (packets, bytes) = (f.packets(), f.bytes());
        FlowRecord {
            timestamp: eve_timestamp(f.last_ns()),
            event_type: "flow",
            src_ip: src,
            src_port: ports.then_some(sport),
            dest_ip: dst,
            dest_port: ports.then_some(dport),
            icmp_type: icmp.then_some(sport),
            proto: proto_name(proto),
            community_id: cid,
            flow: FlowCounters {
                pkts_toserver: packets[0],
                pkts_toclient: packets[1],
                bytes_toserver: bytes[0],
                bytes_toclient: bytes[1],
                start: eve_timestamp(f.first_ns()),
                end: eve_timestamp(f.last_ns()),
                age_s: (f.last_ns().saturating_sub(f.first_ns()) / 1000) as f64 / 1e6,
                reason: match reason {
                    EndReason::IdleTimeout => "timeout",
                    EndReason::Evicted => "evicted",
                    EndReason::Shutdown => "shutdown",
                },
                state,
            },
            tcp: (proto == ipproto::TCP).then(|| {
                serde_json::json!({
                    "syn": t.syn, "syn_ack": t.syn_ack, "fin": t.fin, "rst": t.rst,
                    "psh": t.psh, "ack": t.ack, "urg": t.urg,
                })
            }),
            stats: serde_json::json!({
                "size_mean_bytes": f.size_mean(),
                "size_std_bytes": f.size_std_dev(),
                "iat_mean_s": f.iat_mean(),
                "iat_std_s": f.iat_std_dev(),
            }),
            gtp,
        }
    }

    /// The record as one JSON line (without the newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"event_type\":\"error\",\"error\":\"{e}\"}}"))
    }
}
