//! The per-packet core: [`Engine`] takes frames in capture order and runs decode → flow
//! table → detectors → alert lifecycle, keeping plain counters ([`Stats`]) that the export
//! module publishes. Capture time is its only clock: ticks (window roll-over, flow expiry,
//! episode closing) happen once per second of packet timestamps, so a capture gives the
//! same alerts whatever the replay speed.

use crate::alert::{AlertManager, AlertRecord, Severity};
use crate::capture::{Frame, LinkType};
use crate::config::Config;
use crate::decode::link::{self, Network};
use crate::decode::sctp::{self, DataChunk, RanProtocol};
use crate::decode::{gtpu, gtpv2c, ip, ipproto, pfcp, DecodeError, Fragment, Layer, Packet, Reason};
use crate::detect::{port_scan::PortScan, syn_flood::SynFlood, AlertKind, Detectors, Event, FlowView};
use crate::flow::table::{EndReason, SessionState, Update};
use crate::flow::{FlowHasher, FlowKey, FlowRecord, FlowTable};
use crate::reassembly::{self, FragmentPorts, Outcome, Reassembler, ReassemblyStats};
use crate::session::{SessionStats, SessionTable, TunnelSession, TunnelState};

pub mod workers;

const SEC: u64 = 1_000_000_000;

/// Largest backward step of packet timestamps treated as reordering (clamped), 1 s; a
/// larger one starts a new time base (see [`Stats::time_discontinuities`]).
pub const MAX_REORDER_NS: u64 = SEC;

/// Link-type label names and the LINKTYPE_ values they cover (last: everything else).
pub const LINK_TYPES: [(&str, &[u32]); 6] = [
    ("ethernet", &[1]),
    ("linux_sll", &[113]),
    ("linux_sll2", &[276]),
    ("raw_ip", &[101, 12, 14, 228, 229]),
    ("null", &[0, 108]),
    ("unsupported", &[]),
];

/// Transport label names, in [`Stats::transports`] order.
pub const TRANSPORTS: [&str; 7] = ["tcp", "udp", "icmp", "icmpv6", "sctp", "other", "ip_fragment"];

/// GTP-U message label names, in [`Stats::gtpu`] order (defined with the decoder).
pub use crate::decode::gtpu::MESSAGE_LABELS as GTPU_MESSAGES;

/// Label values of the G-PDU session lookup result, in [`Stats::gtpu_session_lookups`] order.
pub const SESSION_LOOKUPS: [&str; 4] = ["known", "unknown", "unmapped", "ue_mismatch"];

/// Cumulative counters of one engine. Plain integers: no atomics on the packet path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Frames processed.
    pub packets: u64,
    /// Wire bytes of the frames processed.
    pub bytes: u64,
    /// Frames per link type, indexed like [`LINK_TYPES`].
    pub link_types: [u64; 6],
    /// Decode errors (fatal and non-fatal) by [`Layer::ALL`] × [`Reason::ALL`] index.
    pub decode_errors: [[u64; Reason::ALL.len()]; Layer::ALL.len()],
    /// Frames that carry no IP.
    pub non_ip: u64,
    /// Frames with an outer IPv4 header.
    pub ipv4: u64,
    /// Frames with an outer IPv6 header.
    pub ipv6: u64,
    /// Packets by flow transport, indexed like [`TRANSPORTS`].
    pub transports: [u64; 7],
    /// GTP-U messages by type, indexed like [`GTPU_MESSAGES`].
    pub gtpu: [u64; 7],
    /// GTP-U messages carrying an extension header of each type, indexed like
    /// [`gtpu::EXT_TYPES`] (last: other types).
    pub gtpu_ext: [u64; 9],
    /// Frames whose timestamp went backwards.
    pub timestamps_backwards: u64,
    /// Outer IP fragment reassembly counters and occupancy (refreshed at every tick).
    pub reassembly: ReassemblyStats,
    /// Later inner (tunnelled) fragments given the ports of their first fragment.
    pub inner_fragment_ports_hits: u64,
    /// Later inner fragments whose first fragment was not seen (ports stay 0).
    pub inner_fragment_ports_misses: u64,
    /// PFCP session-table counters (refreshed at every tick).
    pub sessions: SessionStats,
    /// PFCP session-table capacity.
    pub session_capacity: u64,
    /// G-PDUs by the session lookup of their (outer destination, TEID), indexed like
    /// [`SESSION_LOOKUPS`].
    pub gtpu_session_lookups: [u64; 4],
    /// Whole NGAP messages in SCTP DATA chunks, by procedure ([`sctp::PROCEDURE_LABELS`]
    /// index) and PDU choice ([`sctp::PDU_CHOICE_LABELS`] index).
    pub ngap: [[u64; 4]; sctp::PROCEDURE_LABELS.len()],
    /// Whole S1AP messages in SCTP DATA chunks, by PDU choice.
    pub s1ap: [u64; 4],
    /// GTPv1-C messages (version 1 on UDP 2123; counted, not decoded).
    pub gtpv1c_messages: u64,
    /// SCTP chunks walked (at most [`sctp::MAX_SCTP_CHUNKS`] per packet).
    pub sctp_chunks: u64,
    /// Flows in the table.
    pub flows_active: u64,
    /// Flow-table capacity.
    pub flow_capacity: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Flows expired by idle timeout.
    pub flows_expired: u64,
    /// Flows evicted at capacity.
    pub flows_evicted: u64,
    /// Alerts opened by [`AlertKind::ALL`] × [`Severity::ALL`] index.
    pub alerts: [[u64; 4]; 2],
    /// Alerts open now, by [`AlertKind::ALL`] index.
    pub alerts_open: [u64; 2],
    /// Detector table entries evicted to make room, by [`AlertKind::ALL`] index.
    pub detector_evictions: [u64; 2],
    /// Episodes not opened because the detector's `max_open_alerts` were open, by
    /// [`AlertKind::ALL`] index.
    pub alerts_suppressed: [u64; 2],
    /// Port-scan probes not remembered because the per-source or the global probe budget
    /// (`detect.port_scan.max_tracked_probes`) was spent: probes the scan thresholds did not
    /// count.
    pub port_scan_probes_dropped: u64,
    /// Times capture time jumped backwards by more than [`MAX_REORDER_NS`]: flows were
    /// ended, open alerts closed and detector windows restarted.
    pub time_discontinuities: u64,
    /// Capture time of the last frame, ns since the Unix epoch.
    pub last_ts_ns: u64,
    /// Capture time of the first frame, ns since the Unix epoch.
    pub first_ts_ns: u64,
    /// Packets dispatched to each flow worker (empty for a single [`Engine`]).
    pub worker_packets: Vec<u64>,
    /// Packets dropped because a flow worker's queue was full, per worker (live capture
    /// only; file replay waits instead). Empty for a single [`Engine`].
    pub worker_queue_drops: Vec<u64>,
    /// Ticks and session-table messages lost for each worker because its queue stayed full
    /// beyond [`workers::RETAINED_MAX`] (live capture only; its session-table replica may
    /// then miss a session until that session's next message).
    pub worker_control_drops: Vec<u64>,
}

impl Stats {
    /// Total decode errors of all layers and reasons.
    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().flatten().sum()
    }

    /// Count of one decode error.
    pub fn decode_error(&self, layer: Layer, reason: Reason) -> u64 {
        let li = Layer::ALL.iter().position(|l| *l == layer).unwrap_or(0);
        let ri = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.decode_errors[li][ri]
    }

    /// Packets of transport `name` (one of [`TRANSPORTS`]).
    pub fn transport(&self, name: &str) -> u64 {
        TRANSPORTS
            .iter()
            .position(|t| *t == name)
            .map_or(0, |i| self.transports[i])
    }

    /// Alerts opened of `kind`, all severities.
    pub fn alerts_of(&self, kind: AlertKind) -> u64 {
        let ki = AlertKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.alerts[ki].iter().sum()
    }

    /// Add the counters of another stage of the same pipeline (see [`workers`]): sums of
    /// counters and gauges; the session table's figures are taken from `o` only when
    /// `sessions` is set (every flow worker holds a replica of the same table); the
    /// reassembly figures are `self`'s (call it on the decode stage's counters), the first
    /// timestamp `self`'s unless unset, the last the later of both.
    pub fn add_worker(&mut self, o: &Stats, sessions: bool) {
        fn add<const N: usize>(a: &mut [u64; N], b: &[u64; N]) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        // Destructured without `..` so that a new field cannot be forgotten here.
        let Stats {
            packets,
            bytes,
            link_types,
            decode_errors,
            non_ip,
            ipv4,
            ipv6,
            transports,
            gtpu,
            gtpu_ext,
            timestamps_backwards,
            reassembly: _, // Only the decode stage reassembles: `self`'s are the figures.
            inner_fragment_ports_hits,
            inner_fragment_ports_misses,
            sessions: o_sessions,
            session_capacity,
            gtpu_session_lookups,
            ngap,
            s1ap,
            gtpv1c_messages,
            sctp_chunks,
            flows_active,
            flow_capacity,
            flows_created,
            flows_expired,
            flows_evicted,
            alerts,
            alerts_open,
            detector_evictions,
            alerts_suppressed,
            port_scan_probes_dropped,
            time_discontinuities,
            last_ts_ns,
            first_ts_ns,
            worker_packets,
            worker_queue_drops,
            worker_control_drops,
        } = o;
        self.packets += packets;
        self.bytes += bytes;
        add(&mut self.link_types, link_types);
        for (a, b) in self.decode_errors.iter_mut().zip(decode_errors) {
            add(a, b);
        }
        self.non_ip += non_ip;
        self.ipv4 += ipv4;
        self.ipv6 += ipv6;
        add(&mut self.transports, transports);
        add(&mut self.gtpu, gtpu);
        add(&mut self.gtpu_ext, gtpu_ext);
        self.timestamps_backwards += timestamps_backwards;
        self.inner_fragment_ports_hits += inner_fragment_ports_hits;
        self.inner_fragment_ports_misses += inner_fragment_ports_misses;
        if sessions {
            self.sessions.clone_from(o_sessions);
        }
        self.session_capacity = self.session_capacity.max(*session_capacity);
        add(&mut self.gtpu_session_lookups, gtpu_session_lookups);
        for (a, b) in self.ngap.iter_mut().zip(ngap) {
            add(a, b);
        }
        add(&mut self.s1ap, s1ap);
        self.gtpv1c_messages += gtpv1c_messages;
        self.sctp_chunks += sctp_chunks;
        self.flows_active += flows_active;
        self.flow_capacity += flow_capacity;
        self.flows_created += flows_created;
        self.flows_expired += flows_expired;
        self.flows_evicted += flows_evicted;
        for (a, b) in self.alerts.iter_mut().zip(alerts) {
            add(a, b);
        }
        add(&mut self.alerts_open, alerts_open);
        add(&mut self.detector_evictions, detector_evictions);
        add(&mut self.alerts_suppressed, alerts_suppressed);
        self.port_scan_probes_dropped += port_scan_probes_dropped;
        self.time_discontinuities += time_discontinuities;
        self.last_ts_ns = self.last_ts_ns.max(*last_ts_ns);
        if self.first_ts_ns == 0 {
            self.first_ts_ns = *first_ts_ns;
        }
        for (v, o) in [
            (&mut self.worker_packets, worker_packets),
            (&mut self.worker_queue_drops, worker_queue_drops),
            (&mut self.worker_control_drops, worker_control_drops),
        ] {
            if v.len() < o.len() {
                v.resize(o.len(), 0);
            }
            v.iter_mut().zip(o).for_each(|(x, y)| *x += y);
        }
    }

    fn count_error(&mut self, e: DecodeError) {
        let li = Layer::ALL.iter().position(|l| *l == e.layer).unwrap_or(0);
        let ri = Reason::ALL.iter().position(|r| *r == e.reason).unwrap_or(0);
        self.decode_errors[li][ri] += 1;
    }
}

fn link_index(l: LinkType) -> usize {
    LINK_TYPES.iter().position(|(_, v)| v.contains(&l.0)).unwrap_or(5)
}

/// A control-plane message that feeds the session table: the UDP payload of a PFCP (UDP
/// 8805, either direction) or GTPv2-C (UDP 2123) datagram that is not tunnelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control<'a> {
    /// Not a session-table message.
    None,
    /// A PFCP message (TS 29.244).
    Pfcp(&'a [u8]),
    /// A GTPv2-C message (TS 29.274).
    Gtpv2c(&'a [u8]),
}

/// Classify a packet that is not tunnelled for the control planes. SCTP (NGAP/S1AP) and
/// GTPv1-C are only counted here; PFCP and GTPv2-C are returned for the session table.
/// `ip_bytes` is the packet's IP header onwards (reassembled when it came in fragments).
#[inline]
fn control_plane<'a>(s: &mut Stats, pkt: &Packet, ip_bytes: &'a [u8]) -> Control<'a> {
    if pkt.fragment != Fragment::None {
        return Control::None;
    }
    if pkt.proto == ipproto::SCTP {
        sctp_chunks(s, ip_bytes);
        return Control::None;
    }
    if pkt.proto != ipproto::UDP {
        return Control::None;
    }
    if pkt.src_port == pfcp::PFCP_PORT || pkt.dst_port == pfcp::PFCP_PORT {
        if let Some(payload) = udp_payload(ip_bytes) {
            return Control::Pfcp(payload);
        }
    } else if pkt.src_port == gtpv2c::GTPC_PORT || pkt.dst_port == gtpv2c::GTPC_PORT {
        if let Some(payload) = udp_payload(ip_bytes) {
            // GTPv1-C (TS 29.060, 2G/3G Gn/Gp) shares the port: counted, not decoded, and
            // not a GTPv2-C decode error.
            if payload.first().is_some_and(|b| b >> 5 == 1) {
                s.gtpv1c_messages += 1;
            } else {
                return Control::Gtpv2c(payload);
            }
        }
    }
    Control::None
}

/// The session of a G-PDU's tunnel. The receiving endpoint allocated the TEID (TS 29.281
/// §5.1), so the lookup is keyed by the outer destination. Returns the lookup state, the
/// session's CP SEID when known, and the direction the session gives the endpoint (uplink:
/// the UPF's/SGW's F-TEID; downlink: the gNB's/eNB's). When the inner packet was decoded and
/// the session knows the UE's address, the inner source (uplink) or destination (downlink)
/// must be that address (or lie in its IPv6 prefix); otherwise the state is `UeMismatch`: a
/// stale TEID reused by another session, or a forged G-PDU.
fn tunnel_session(
    sessions: &SessionTable,
    t: &crate::decode::Tunnel,
    inner_src: std::net::IpAddr,
    inner_dst: std::net::IpAddr,
    inner_decoded: bool,
    ts: u64,
    hash: Option<u64>,
) -> (TunnelSession, Option<bool>) {
    use std::net::IpAddr;
    let hash = hash.unwrap_or_else(|| sessions.tunnel_hash(t.outer_dst, t.header.teid));
    let sess = match sessions.lookup_tunnel(hash, t.outer_dst, t.header.teid, ts) {
        TunnelState::Known(sess) => sess,
        TunnelState::Unknown => {
            return (
                TunnelSession {
                    state: SessionState::Unknown,
                    id: None,
                },
                None,
            )
        }
        TunnelState::Unmapped => {
            return (
                TunnelSession {
                    state: SessionState::Unmapped,
                    id: None,
                },
                None,
            )
        }
    };
    let id = Some((sess.cp_seid, sess.origin));
    let uplink = sess.direction.map(|d| d == crate::session::Direction::Uplink);
    let ue = match uplink.or(t.uplink) {
        Some(true) => inner_src,
        Some(false) => inner_dst,
        None => {
            return (
                TunnelSession {
                    state: SessionState::Known,
                    id,
                },
                uplink,
            )
        }
    };
    // A session that knows no UE address of this family cannot contradict the packet.
    let matches = match ue {
        IpAddr::V4(_) => sess.ue_ipv4.is_none() || sess.has_ue_ip(ue),
        IpAddr::V6(_) => sess.ue_ipv6.is_none() || sess.has_ue_ip(ue),
    };
    let state = if !inner_decoded || matches {
        SessionState::Known
    } else {
        SessionState::UeMismatch
    };
    (TunnelSession { state, id }, uplink)
}

/// Walk the chunks of the SCTP packet in `ip_bytes` (RFC 9260 §3, at most
/// [`sctp::MAX_SCTP_CHUNKS`]) and count the NGAP/S1AP messages of whole DATA chunks by
/// procedure and PDU choice (TS 38.413 §9.4); malformed chunks are counted as decode errors.
fn sctp_chunks(s: &mut Stats, ip_bytes: &[u8]) {
    let Some(payload) = ip::parse_ip(ip_bytes).ok().map(|v| v.payload) else {
        return;
    };
    let Ok((h, chunks)) = sctp::parse(payload) else {
        return; // Already counted as `sctp: truncated` by the IP decoder.
    };
    for c in chunks {
        let c = match c {
            Ok(c) => c,
            Err(e) => return s.count_error(e),
        };
        s.sctp_chunks += 1;
        let pdu = match DataChunk::parse(&c) {
            Some(Ok(d)) => sctp::ran_pdu(&d, h.src_port, h.dst_port),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        match pdu {
            Some(Ok((RanProtocol::Ngap, p))) => {
                let proc_i = p
                    .procedure_code
                    .map_or(sctp::PROCEDURE_LABELS.len() - 1, sctp::procedure_index);
                s.ngap[proc_i][p.choice.index()] += 1;
            }
            Some(Ok((RanProtocol::S1ap, p))) => s.s1ap[p.choice.index()] += 1,
            Some(Err(e)) => s.count_error(e),
            None => {}
        }
    }
}

/// The information elements of a GTP-U message other than a G-PDU (Echo, Error Indication,
/// Supported Extension Headers Notification, End Marker; TS 29.281 §7, §8), checked so that
/// malformed signalling on the user plane is counted.
fn gtpu_signalling(s: &mut Stats, ip_bytes: &[u8]) {
    let Some(Ok((h, body))) = udp_payload(ip_bytes).map(gtpu::parse) else {
        return;
    };
    if let Err(e) = gtpu::parse_ies(h.message_type, body) {
        s.count_error(e);
    }
}

/// The payload of the UDP datagram in `ip_bytes` (cut to the UDP length), or `None` when the
/// headers do not hold. Only control-plane packets (PFCP, GTPv2-C, GTP-U signalling) come
/// here, so reading their headers a second time stays off the G-PDU path.
fn udp_payload(ip_bytes: &[u8]) -> Option<&[u8]> {
    let v = ip::parse_ip(ip_bytes).ok()?;
    crate::decode::transport::transport(ipproto::UDP, v.payload, &mut ip::bare_packet(&v)).ok()
}

/// What [`Front::decode`] found in a frame besides its packet.
pub(crate) struct Decoded<'a> {
    /// A PFCP/GTPv2-C message for the session table.
    pub control: Control<'a>,
    /// A G-PDU whose T-PDU was not decoded (left as its outer UDP packet).
    pub inner_missing: bool,
}

/// The decode stage: link layer, outer IP reassembly, IP/transport/GTP-U decode, inner
/// fragment ports, and the stateless control-plane counts (NGAP/S1AP, GTPv1-C, GTP-U
/// signalling IEs). It keeps no flow or session state, so one instance can decode for many
/// flow workers (see [`workers`]).
pub(crate) struct Front {
    reasm: Reassembler,
    /// Whether outer fragments go through `reasm` (`reassembly.enabled`).
    reassemble: bool,
    frag_ports: FragmentPorts,
    /// GTP-U is also opened on this UDP port (0: only 2152).
    extra_gtpu_port: u16,
}

impl Front {
    pub(crate) fn new(cfg: &Config) -> Front {
        Front {
            reasm: Reassembler::new(&cfg.reassembly),
            reassemble: cfg.reassembly.enabled,
            frag_ports: FragmentPorts::new(&cfg.reassembly),
            extra_gtpu_port: cfg.decode.extra_gtpu_port,
        }
    }

    /// Expire reassembly and inner-fragment state at capture time `now_ns`.
    pub(crate) fn expire(&mut self, now_ns: u64) {
        self.reasm.expire(now_ns);
        self.frag_ports.expire(now_ns);
    }

    /// Outer reassembly counters and occupancy.
    pub(crate) fn reassembly_stats(&self) -> &ReassemblyStats {
        self.reasm.stats()
    }

    /// Decode one frame captured at (clamped) time `ts` into `pkt` (the flow's packet: inner
    /// for GTP-U; later inner fragments carry the ports of their first fragment when it was
    /// seen), counting it in `s` (frame, link, IP version, transport, GTP-U and
    /// control-plane counters, decode errors). `None` when the frame ends here: not IP,
    /// undecodable, or an outer fragment held for reassembly (`pkt` is then unspecified).
    pub(crate) fn decode<'a>(
        &'a mut self,
        s: &mut Stats,
        linktype: LinkType,
        data: &'a [u8],
        wire_len: u32,
        ts: u64,
        pkt: &mut Packet,
    ) -> Option<Decoded<'a>> {
        s.packets += 1;
        s.bytes += u64::from(wire_len);
        s.link_types[link_index(linktype)] += 1;
        let net = match link::network_layer(linktype, data) {
            Ok(Network::Ip(b)) => b,
            Ok(Network::Other(_)) => {
                s.non_ip += 1;
                return None;
            }
            Err(e) => {
                s.count_error(e);
                return None;
            }
        };
        // Outer fragments are reassembled first, so that GTP-U and PFCP in fragmented outer
        // packets are seen whole; the datagram becomes one packet when its last fragment
        // arrives. Held fragments count as packets of the "ip_fragment" transport only.
        let outcome = if self.reassemble {
            self.reasm.push(net, ts)
        } else {
            Outcome::NotFragment
        };
        let ip_bytes = match outcome {
            Outcome::NotFragment | Outcome::Dropped(_) => net,
            Outcome::Complete(rebuilt) => rebuilt,
            Outcome::Pending | Outcome::Duplicate => {
                if net.first().is_some_and(|b| b >> 4 == 6) {
                    s.ipv6 += 1;
                } else {
                    s.ipv4 += 1;
                }
                s.transports[6] += 1;
                return None;
            }
        };
        if let Err(e) = ip::decode_ip_into(ip_bytes, Some(self.extra_gtpu_port), pkt) {
            s.count_error(e);
            return None;
        }
        if let Some(a) = pkt.anomaly {
            s.count_error(a);
        }
        let outer_v6 = match &pkt.tunnel {
            Some(t) => t.outer_src.is_ipv6(),
            None => pkt.src.is_ipv6(),
        };
        if outer_v6 {
            s.ipv6 += 1;
        } else {
            s.ipv4 += 1;
        }
        let mut inner_missing = false;
        if let Some(t) = &pkt.tunnel {
            s.gtpu[gtpu::message_index(t.header.message_type)] += 1;
            let mut bits = t.header.ext_types;
            while bits != 0 {
                s.gtpu_ext[bits.trailing_zeros() as usize] += 1;
                bits &= bits - 1;
            }
            // A G-PDU whose T-PDU was not decoded is left as its outer UDP packet.
            inner_missing = t.header.message_type == gtpu::MSG_GPDU
                && pkt.proto == ipproto::UDP
                && pkt.dst_port == t.outer_dst_port
                && pkt.src == t.outer_src;
        }
        let control = match &pkt.tunnel {
            // Fragments inside a tunnel are not reassembled: the first lends its ports to
            // the later ones of its datagram, so that they join the same flow.
            Some(_) if pkt.fragment != Fragment::None => {
                let inner = reassembly::gtpu_inner_ip(ip_bytes, self.extra_gtpu_port);
                let ports = inner.and_then(|b| self.frag_ports.observe(b, ts));
                if pkt.fragment == Fragment::Later {
                    match ports {
                        Some((sp, dp)) => {
                            (pkt.src_port, pkt.dst_port) = (sp, dp);
                            s.inner_fragment_ports_hits += 1;
                        }
                        None => s.inner_fragment_ports_misses += 1,
                    }
                }
                Control::None
            }
            Some(t) if t.header.message_type != gtpu::MSG_GPDU => {
                gtpu_signalling(s, ip_bytes);
                Control::None
            }
            Some(_) => Control::None,
            None => control_plane(s, pkt, ip_bytes),
        };
        let ti = if pkt.fragment == Fragment::Later {
            6
        } else if inner_missing {
            5
        } else {
            match pkt.proto {
                ipproto::TCP => 0,
                ipproto::UDP => 1,
                ipproto::ICMP => 2,
                ipproto::ICMPV6 => 3,
                ipproto::SCTP => 4,
                _ => 5,
            }
        };
        s.transports[ti] += 1;
        Some(Decoded { control, inner_missing })
    }
}

/// Capture time as the engine sees it: never backwards (small reordering is clamped), a
/// jump back by more than [`MAX_REORDER_NS`] starts a new time base, and a tick runs once
/// per second of capture time.
#[derive(Debug, Default, Clone)]
pub(crate) struct Clock {
    next_tick_ns: u64,
    last_tick_ns: u64,
}

/// What [`Clock::step`] decided for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// The frame's capture time as used by the engine, ns.
    pub ts: u64,
    /// Capture time jumped backwards: start a new time base (before the tick and the frame).
    pub restart: bool,
    /// Run a tick at `ts` before the frame.
    pub tick: bool,
}

impl Clock {
    /// Place a frame stamped `frame_ts` (ns) in capture time, updating the clock figures of
    /// `s` (first/last timestamp, backwards steps, discontinuities).
    #[inline]
    pub(crate) fn step(&mut self, s: &mut Stats, frame_ts: u64) -> Step {
        // Capture time never goes backwards inside the engine: small reordering (merged
        // interfaces, mirror ports) is clamped; a jump back by more than MAX_REORDER_NS
        // (files given out of order, a bogus future timestamp before, a clock step) starts
        // a new time base, since windows measured across it would be meaningless.
        let mut restart = false;
        let ts = if frame_ts.saturating_add(MAX_REORDER_NS) < s.last_ts_ns {
            s.time_discontinuities += 1;
            restart = true;
            self.next_tick_ns = 0;
            self.last_tick_ns = 0;
            frame_ts
        } else if frame_ts < s.last_ts_ns {
            s.timestamps_backwards += 1;
            s.last_ts_ns
        } else {
            frame_ts
        };
        if s.first_ts_ns == 0 {
            s.first_ts_ns = ts;
        }
        s.last_ts_ns = ts;
        let tick = ts >= self.next_tick_ns && ts > self.last_tick_ns;
        if tick {
            self.last_tick_ns = ts;
        }
        Step { ts, restart, tick }
    }

    /// A tick ran at `now_ns`: schedule the next one at the next whole second.
    #[inline]
    pub(crate) fn ticked(&mut self, now_ns: u64) {
        // Saturating: a timestamp near the end of u64 must not wrap the schedule around
        // (that would run a full tick on every later packet).
        self.next_tick_ns = (now_ns - now_ns % SEC).saturating_add(SEC);
    }

    /// Whether a wall-clock tick at `now_ns` is due (no packet for a while on a live link).
    #[inline]
    pub(crate) fn due(&self, s: &Stats, now_ns: u64) -> bool {
        // The last packet timestamp is left alone: packets captured just before `now_ns`
        // but processed after it are not "going backwards".
        now_ns >= self.next_tick_ns && now_ns >= s.last_ts_ns
    }
}

/// The flow and session stage: the session table (fed by PFCP/GTPv2-C), the G-PDU session
/// lookup, and the flow table. Each flow worker owns one (see [`workers`]).
pub(crate) struct Back {
    pub(crate) flows: FlowTable,
    pub(crate) sessions: SessionTable,
    /// Whether flow records are wanted.
    flow_records: bool,
    /// Records of ended flows not yet taken.
    pub(crate) ended: Vec<FlowRecord>,
}

#[inline]
fn note_end(wanted: bool, ended: &mut Vec<FlowRecord>, f: &crate::flow::Flow, r: EndReason) {
    if wanted {
        ended.push(FlowRecord::of(f, r));
    }
}

impl Back {
    pub(crate) fn new(cfg: &Config, flow_capacity: usize, hasher: FlowHasher) -> Back {
        Back {
            flows: FlowTable::with_hasher(flow_capacity, cfg.timeouts(), hasher),
            sessions: SessionTable::new(cfg.session()),
            flow_records: false,
            ended: Vec::new(),
        }
    }

    /// Apply a PFCP/GTPv2-C message to the session table; its decode error, if any, is
    /// counted in `s` when given (a replica of the session table on another worker passes
    /// `None`, so that each message is counted once).
    #[inline]
    pub(crate) fn control(&mut self, s: Option<&mut Stats>, pkt: &Packet, control: Control<'_>, ts: u64) {
        let res = match control {
            Control::None => return,
            Control::Pfcp(payload) => self.sessions.on_pfcp(pkt.src, pkt.dst, payload, ts),
            Control::Gtpv2c(payload) => self.sessions.on_gtpv2c(pkt.src, pkt.dst, payload, ts),
        };
        if let (Err(e), Some(s)) = (res, s) {
            s.count_error(e);
        }
    }

    /// The key hashes of `pkt`, whose flow key hashes to `flow` by this back's table (or one
    /// with the same hasher): the flow's, and a G-PDU's tunnel key's.
    #[inline]
    pub(crate) fn key_hashes(&self, pkt: &Packet, flow: u64) -> KeyHashes {
        KeyHashes {
            flow: Some(flow),
            tunnel: pkt
                .tunnel
                .filter(|t| t.header.message_type == gtpu::MSG_GPDU)
                .map(|t| self.sessions.tunnel_hash(t.outer_dst, t.header.teid)),
        }
    }

    /// The prefetch stages of a caller that knows the key hashes of the packets to come:
    /// the flow and tunnel index buckets of a packet far ahead (`far`), and the flow and
    /// tunnel entries of one half as far (`near`, whose buckets are in by now). Changes
    /// nothing.
    #[inline]
    pub(crate) fn prefetch(&self, far: KeyHashes, near: KeyHashes) {
        if let Some(h) = far.flow {
            self.flows.prefetch(h);
        }
        if let Some(h) = far.tunnel {
            self.sessions.prefetch_tunnel(h);
        }
        if let Some(h) = near.flow {
            self.flows.prefetch_flow(h);
        }
        if let Some(h) = near.tunnel {
            self.sessions.prefetch_tunnel_entry(h);
        }
    }

    /// Session lookup (G-PDUs) and flow update for a decoded packet at capture time `ts`.
    /// Returns what the packet did to its flow and the flow's slot.
    /// `hashes`: the packet's key hashes the caller computed already (to prefetch with).
    #[inline]
    pub(crate) fn packet(
        &mut self,
        s: &mut Stats,
        pkt: &mut Packet,
        inner_missing: bool,
        ts: u64,
        hashes: KeyHashes,
    ) -> Update {
        let session = match pkt.tunnel.as_mut() {
            Some(t) if t.header.message_type == gtpu::MSG_GPDU => {
                let (sess, uplink) =
                    tunnel_session(&self.sessions, t, pkt.src, pkt.dst, !inner_missing, ts, hashes.tunnel);
                t.uplink = uplink.or(t.uplink);
                s.gtpu_session_lookups[sess.state as usize - 1] += 1;
                t.session = Some(sess);
                t.session
            }
            _ => None,
        };
        let (key, a_to_b) = FlowKey::of_packet(pkt);
        let h = hashes.flow.unwrap_or_else(|| self.flows.hash(&key));
        let (wanted, ended) = (self.flow_records, &mut self.ended);
        let u = self
            .flows
            .update_hashed(h, pkt, &key, a_to_b, ts, &mut |f, r| note_end(wanted, ended, f, r));
        if let Some(sess) = session {
            if let Some(f) = self.flows.get_mut(u.slot) {
                f.set_session(sess);
            }
        }
        u
    }

    /// Expire idle flows at `now_ns`.
    pub(crate) fn expire(&mut self, now_ns: u64) {
        let (wanted, ended) = (self.flow_records, &mut self.ended);
        self.flows.expire(now_ns, &mut |f, r| note_end(wanted, ended, f, r));
    }

    /// End every flow (a new time base), with records when wanted.
    pub(crate) fn drain(&mut self) {
        let (wanted, ended) = (self.flow_records, &mut self.ended);
        self.flows.drain(&mut |f, r| note_end(wanted, ended, f, r));
    }

    /// Copy flow and session figures into `s`.
    pub(crate) fn refresh(&self, s: &mut Stats) {
        s.flows_active = self.flows.len() as u64;
        s.flow_capacity = self.flows.capacity() as u64;
        s.flows_created = self.flows.created;
        s.flows_expired = self.flows.expired;
        s.flows_evicted = self.flows.evicted;
        s.sessions = self.sessions.stats();
    }
}

/// The detection stage: detectors and the alert lifecycle, fed in capture order.
pub(crate) struct Detect {
    pub(crate) detectors: Detectors,
    alerts: AlertManager,
    events: Vec<Event>,
    /// Alert records not yet taken.
    pub(crate) records: Vec<AlertRecord>,
    /// Detector inputs whose detector state is being prefetched (see [`Detect::feed`]).
    ahead: std::collections::VecDeque<DetectIn>,
}

/// A detector input waiting for the detectors.
struct DetectIn {
    ts: u64,
    pkt: Packet,
    update: Update,
    view: FlowView,
}

/// How many detector inputs [`Detect::feed`] keeps before feeding the detectors.
const DETECT_AHEAD: usize = 4;

impl Detect {
    pub(crate) fn new(cfg: &Config, sensor: String) -> Detect {
        Detect {
            detectors: Detectors {
                syn_flood: cfg.syn_flood().map(SynFlood::new),
                port_scan: cfg.port_scan().map(PortScan::new),
            },
            alerts: AlertManager::new((cfg.alerts.update_interval_s * 1e9) as u64, sensor),
            events: Vec::new(),
            records: Vec::new(),
            ahead: std::collections::VecDeque::with_capacity(DETECT_AHEAD + 1),
        }
    }

    /// Feed one detector input (a packet [`Detectors::wants`], what it did to its flow, and
    /// the flow) at capture time `ts`. The detectors see it [`DETECT_AHEAD`] inputs later
    /// (or at the next tick, reset, refresh or finish, which take every input first): their
    /// per-destination and per-source entries are loaded from memory meanwhile, so that the
    /// cache misses of several inputs overlap. They see the inputs in the order fed.
    #[inline]
    pub(crate) fn feed(&mut self, pkt: &Packet, update: &Update, view: &FlowView, ts: u64) {
        self.detectors.prefetch(pkt, update, view, false);
        self.ahead.push_back(DetectIn {
            ts,
            pkt: *pkt,
            update: *update,
            view: *view,
        });
        if let Some(d) = self.ahead.get(self.ahead.len().saturating_sub(DETECT_AHEAD / 2 + 1)) {
            self.detectors.prefetch(&d.pkt, &d.update, &d.view, true);
        }
        if self.ahead.len() > DETECT_AHEAD {
            if let Some(d) = self.ahead.pop_front() {
                self.detectors.on_packet(&d.pkt, &d.update, &d.view, d.ts);
            }
        }
    }

    /// Give the detectors every input fed so far.
    fn drain_ahead(&mut self) {
        while let Some(d) = self.ahead.pop_front() {
            self.detectors.on_packet(&d.pkt, &d.update, &d.view, d.ts);
        }
    }

    fn drain_events(&mut self) {
        for ev in self.events.drain(..) {
            self.alerts.handle(ev, &mut self.records);
        }
    }

    /// Roll windows and close quiet episodes at `now_ns`.
    pub(crate) fn tick(&mut self, now_ns: u64) {
        self.drain_ahead();
        self.detectors.tick(now_ns, &mut self.events);
        self.drain_events();
    }

    /// Close every episode and restart the windows (a new time base).
    pub(crate) fn reset(&mut self) {
        self.drain_ahead();
        self.detectors.reset(&mut self.events);
        self.drain_events();
    }

    /// End of input at `now_ns`: see [`Engine::finish`].
    pub(crate) fn finish(&mut self, now_ns: u64) {
        self.drain_ahead();
        self.detectors.tick(now_ns, &mut self.events);
        if let Some(d) = &mut self.detectors.syn_flood {
            d.flush(&mut self.events);
        }
        if let Some(d) = &mut self.detectors.port_scan {
            d.flush(&mut self.events);
        }
        self.drain_events();
        self.alerts.flush(&mut self.records);
    }

    /// Copy alert and detector figures into `s`.
    pub(crate) fn refresh(&mut self, s: &mut Stats) {
        self.drain_ahead();
        for (ki, k) in AlertKind::ALL.iter().enumerate() {
            for (si, sv) in Severity::ALL.iter().enumerate() {
                s.alerts[ki][si] = self.alerts.opened.get(&(*k, *sv)).copied().unwrap_or(0);
            }
            s.alerts_open[ki] = self.alerts.open_count(*k) as u64;
        }
        s.detector_evictions = self.detectors.evicted();
        s.alerts_suppressed = self.detectors.suppressed();
        s.port_scan_probes_dropped = self.detectors.port_scan.as_ref().map_or(0, |d| d.probes_dropped);
    }
}

/// Decode, flow state, detection and alert lifecycle for one stream of frames, on the
/// calling thread. [`workers::run`] runs the same stages on several threads.
pub struct Engine {
    front: Front,
    back: Back,
    detect: Detect,
    clock: Clock,
    stats: Stats,
    sample: u32,
    timing: Option<prometheus::Histogram>,
    /// Decoded packets waiting for the flow and detection stages (see
    /// [`Engine::with_lookahead`]), a ring of [`RING`] slots: `held` of them from `head` on
    /// (none unless `lookahead`). A frame is decoded into the slot after them, in place.
    ring: Box<[Ahead; RING]>,
    head: usize,
    held: usize,
    lookahead: bool,
}

/// A packet's key hashes computed before its flow stage (by the dispatcher, or by a
/// lookahead that prefetched with them), so that the flow stage does not hash the keys
/// again. `None`: not computed (the flow stage hashes).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyHashes {
    /// The flow key's hash by the flow table ([`FlowTable::hash`], or a table with the
    /// same [`FlowHasher`]).
    pub(crate) flow: Option<u64>,
    /// A G-PDU's tunnel key hash by the session table ([`SessionTable::tunnel_hash`]).
    pub(crate) tunnel: Option<u64>,
}

/// A decoded packet whose flow and tunnel entries are being prefetched.
#[derive(Clone, Copy)]
struct Ahead {
    ts: u64,
    pkt: Packet,
    inner_missing: bool,
    /// Its key hashes ([`Back::key_hashes`]).
    hashes: KeyHashes,
}

/// How many decoded packets an engine with lookahead keeps before their flow stage.
pub const LOOKAHEAD: usize = 8;

/// Slots of an engine's lookahead ring: the packets held and the one being decoded (a power
/// of two, for the index mask).
const RING: usize = (LOOKAHEAD + 1).next_power_of_two();

impl Ahead {
    const EMPTY: Ahead = Ahead {
        ts: 0,
        pkt: Packet::EMPTY,
        inner_missing: false,
        hashes: KeyHashes {
            flow: None,
            tunnel: None,
        },
    };
}

/// The flow stage of the oldest packets of an engine's lookahead ring (`held` from `head`
/// on) until `keep` are left.
#[inline]
fn run_held(
    ring: &mut [Ahead; RING],
    head: &mut usize,
    held: &mut usize,
    keep: usize,
    back: &mut Back,
    detect: &mut Detect,
    s: &mut Stats,
) {
    while *held > keep {
        flow_stage(back, detect, s, &mut ring[*head]);
        *head = (*head + 1) % RING;
        *held -= 1;
    }
}

/// Session lookup, flow update and detectors for one decoded packet `a` (its key hashes
/// used when known).
#[inline]
fn flow_stage(back: &mut Back, detect: &mut Detect, s: &mut Stats, a: &mut Ahead) {
    let (ts, pkt) = (a.ts, &mut a.pkt);
    let u = back.packet(s, pkt, a.inner_missing, ts, a.hashes);
    if detect.detectors.wants(pkt, &u) {
        if let Some(flow) = back.flows.get(u.slot) {
            detect.feed(pkt, &u, &FlowView::of(flow), ts);
        }
    }
}

impl Engine {
    /// An engine configured by `cfg`; `sensor` is written into alert records.
    pub fn new(cfg: &Config, sensor: String) -> Engine {
        let back = Back::new(cfg, cfg.flow.capacity, FlowHasher::default());
        let stats = Stats {
            flow_capacity: back.flows.capacity() as u64,
            session_capacity: cfg.session.capacity as u64,
            ..Stats::default()
        };
        Engine {
            front: Front::new(cfg),
            back,
            detect: Detect::new(cfg, sensor),
            clock: Clock::default(),
            stats,
            sample: 0,
            timing: None,
            ring: Box::new([Ahead::EMPTY; RING]),
            head: 0,
            held: 0,
            lookahead: false,
        }
    }

    /// Decode each frame [`LOOKAHEAD`] packets before its flow and detection stages, and
    /// start loading its flow-table and tunnel-index entries from memory meanwhile, so that
    /// the cache misses of several packets overlap instead of adding up. Results are the
    /// same, in the same order; only later: up to [`LOOKAHEAD`] packets' alert and flow
    /// records, and their counts in [`Engine::stats`], wait for the next frames, a tick or
    /// [`Engine::finish`]. A packet carrying PFCP/GTPv2-C is not held back (its stages run
    /// after those of every packet before it). For file replay.
    pub fn with_lookahead(mut self) -> Engine {
        self.lookahead = true;
        self
    }

    /// Observe per-packet processing time (1 in 64 packets) into `h`.
    pub fn with_timing(mut self, h: prometheus::Histogram) -> Engine {
        self.timing = Some(h);
        self
    }

    /// Counters so far (flow and alert figures refreshed at every tick and by
    /// [`Engine::refresh_stats`]).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Produce a record for every flow that ends (idle timeout, eviction, a time-base restart,
    /// and all remaining flows at [`Engine::finish`]); fetch them with
    /// [`Engine::take_flow_records`].
    pub fn with_flow_records(mut self) -> Engine {
        self.back.flow_records = true;
        self
    }

    /// Flow records produced since the last call (empty unless enabled).
    pub fn take_flow_records(&mut self) -> std::vec::Drain<'_, FlowRecord> {
        self.back.ended.drain(..)
    }

    /// Alert records produced since the last call.
    pub fn take_records(&mut self) -> std::vec::Drain<'_, AlertRecord> {
        self.detect.records.drain(..)
    }

    /// Process one frame.
    #[inline]
    pub fn process(&mut self, frame: &Frame<'_>) {
        self.sample = self.sample.wrapping_add(1);
        let start = (self.sample % 64 == 0 && self.timing.is_some()).then(std::time::Instant::now);
        self.process_inner(frame);
        if let (Some(t0), Some(h)) = (start, &self.timing) {
            h.observe(t0.elapsed().as_secs_f64());
        }
    }

    fn process_inner(&mut self, frame: &Frame<'_>) {
        let step = self.clock.step(&mut self.stats, frame.ts_ns);
        let ts = step.ts;
        if step.restart {
            self.restart_time();
        }
        if step.tick {
            self.tick(ts);
        }
        self.back.sessions.note_packet(ts);
        // Decode into the ring slot after the packets held, in place.
        let slot = (self.head + self.held) % RING;
        let s = &mut self.stats;
        let a = &mut self.ring[slot];
        let Some(d) = self
            .front
            .decode(s, frame.linktype, frame.data, frame.wire_len, ts, &mut a.pkt)
        else {
            return;
        };
        a.ts = ts;
        a.inner_missing = d.inner_missing;
        if !self.lookahead || !matches!(d.control, Control::None) {
            let control = d.control;
            // The packets held go first (their slots are not this one).
            let Engine {
                ring,
                head,
                held,
                back,
                detect,
                stats,
                ..
            } = self;
            run_held(ring, head, held, 0, back, detect, stats);
            let a = &mut ring[slot];
            a.hashes = KeyHashes::default();
            back.control(Some(stats), &a.pkt, control, ts);
            flow_stage(back, detect, stats, a);
            return;
        }
        a.hashes = self
            .back
            .key_hashes(&a.pkt, self.back.flows.hash(&FlowKey::of_packet(&a.pkt).0));
        let hashes = a.hashes;
        self.held += 1;
        // This packet's index buckets, and the entries of the one half-way through, whose
        // buckets are in cache by now.
        let at = |back: usize| match self.held.checked_sub(back + 1) {
            Some(i) => self.ring[(self.head + i) % RING].hashes,
            None => KeyHashes::default(),
        };
        self.back.prefetch(hashes, at(LOOKAHEAD / 2));
        self.run_held(LOOKAHEAD);
    }

    /// Run the flow stage of every packet held back by the lookahead, oldest first.
    fn drain_ahead(&mut self) {
        self.run_held(0);
    }

    /// Run the flow stage of the oldest packets held until `keep` are left.
    #[inline]
    fn run_held(&mut self, keep: usize) {
        let (ring, head, held) = (&mut self.ring, &mut self.head, &mut self.held);
        run_held(
            ring,
            head,
            held,
            keep,
            &mut self.back,
            &mut self.detect,
            &mut self.stats,
        );
    }

    /// Advance capture time to `now_ns`: expire flows, roll detector windows, close quiet
    /// episodes. Called automatically once per second of capture time.
    pub fn tick(&mut self, now_ns: u64) {
        self.drain_ahead();
        self.back.expire(now_ns);
        self.front.expire(now_ns);
        self.detect.tick(now_ns);
        self.clock.ticked(now_ns);
        self.refresh_stats();
    }

    /// A new time base (capture time jumped backwards): end every flow, close every open
    /// alert and restart the detectors' windows.
    fn restart_time(&mut self) {
        self.drain_ahead();
        self.back.drain();
        self.detect.reset();
    }

    /// Copy flow, alert and detector figures into [`Engine::stats`].
    pub fn refresh_stats(&mut self) {
        self.back.refresh(&mut self.stats);
        self.stats.reassembly = self.front.reassembly_stats().clone();
        self.detect.refresh(&mut self.stats);
    }

    /// Run a tick if capture time `now_ns` has reached the next one. A live worker calls
    /// this with the wall clock when no packet arrived for a while, so that alerts open and
    /// resolve on a quiet link too.
    pub fn advance_to(&mut self, now_ns: u64) {
        if self.clock.due(&self.stats, now_ns) {
            self.tick(now_ns);
        }
    }

    /// End of input: announce episodes opened since the last tick and emit the final
    /// numbers of every open alert (without closing it: the attack may still be going on
    /// when the capture ends).
    pub fn finish(&mut self) {
        self.drain_ahead();
        self.detect.finish(self.stats.last_ts_ns);
        // Flows still open at the end of input get their record too.
        if self.back.flow_records {
            self.back.drain();
        }
        self.refresh_stats();
    }

    /// Flows currently in the table.
    pub fn flow_count(&self) -> usize {
        self.back.flows.len()
    }
}
