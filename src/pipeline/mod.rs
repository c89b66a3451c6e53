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
use crate::detect::{port_scan::PortScan, syn_flood::SynFlood, AlertKind, Detectors, Event};
use crate::flow::table::{EndReason, SessionState};
use crate::flow::{FlowKey, FlowRecord, FlowTable};
use crate::reassembly::{self, FragmentPorts, Outcome, Reassembler, ReassemblyStats};
use crate::session::{SessionStats, SessionTable, TeidState, TunnelSession};

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
    /// Times capture time jumped backwards by more than [`MAX_REORDER_NS`]: flows were
    /// ended, open alerts closed and detector windows restarted.
    pub time_discontinuities: u64,
    /// Capture time of the last frame, ns since the Unix epoch.
    pub last_ts_ns: u64,
    /// Capture time of the first frame, ns since the Unix epoch.
    pub first_ts_ns: u64,
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

    fn count_error(&mut self, e: DecodeError) {
        let li = Layer::ALL.iter().position(|l| *l == e.layer).unwrap_or(0);
        let ri = Reason::ALL.iter().position(|r| *r == e.reason).unwrap_or(0);
        self.decode_errors[li][ri] += 1;
    }
}

fn link_index(l: LinkType) -> usize {
    LINK_TYPES.iter().position(|(_, v)| v.contains(&l.0)).unwrap_or(5)
}

/// Hand a packet that is not tunnelled to the control-plane decoders it belongs to: PFCP
/// (UDP 8805, either direction) and GTPv2-C (UDP 2123) feed the session table. `ip_bytes` is the packet's IP
/// header onwards (reassembled when it came in fragments).
#[inline]
fn control_plane(sessions: &mut SessionTable, s: &mut Stats, pkt: &Packet, ip_bytes: &[u8], ts: u64) {
    if pkt.fragment != Fragment::None {
        return;
    }
    if pkt.proto == ipproto::SCTP {
        return sctp_chunks(s, ip_bytes);
    }
    if pkt.proto != ipproto::UDP {
        return;
    }
    if pkt.src_port == pfcp::PFCP_PORT || pkt.dst_port == pfcp::PFCP_PORT {
        if let Some(payload) = udp_payload(ip_bytes) {
            if let Err(e) = sessions.on_pfcp(pkt.src, pkt.dst, payload, ts) {
                s.count_error(e);
            }
        }
    } else if pkt.src_port == gtpv2c::GTPC_PORT || pkt.dst_port == gtpv2c::GTPC_PORT {
        if let Some(payload) = udp_payload(ip_bytes) {
            // GTPv1-C (TS 29.060, 2G/3G Gn/Gp) shares the port: counted, not decoded, and
            // not a GTPv2-C decode error.
            if payload.first().is_some_and(|b| b >> 5 == 1) {
                s.gtpv1c_messages += 1;
            } else if let Err(e) = sessions.on_gtpv2c(pkt.src, pkt.dst, payload, ts) {
                s.count_error(e);
            }
        }
    }
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
) -> (TunnelSession, Option<bool>) {
    use std::net::IpAddr;
    let sess = match sessions.lookup_teid(t.outer_dst, t.header.teid, ts) {
        TeidState::Known(sess) => sess,
        TeidState::Unknown => {
            return (
                TunnelSession {
                    state: SessionState::Unknown,
                    id: None,
                },
                None,
            )
        }
        TeidState::Unmapped => {
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
    let uplink = sess
        .direction_of(t.outer_dst, t.header.teid)
        .map(|d| d == crate::session::Direction::Uplink);
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

/// Decode, flow state, detection and alert lifecycle for one stream of frames.
pub struct Engine {
    flows: FlowTable,
    reasm: Reassembler,
    /// Whether outer fragments go through `reasm` (`reassembly.enabled`).
    reassemble: bool,
    frag_ports: FragmentPorts,
    sessions: SessionTable,
    detectors: Detectors,
    alerts: AlertManager,
    stats: Stats,
    events: Vec<Event>,
    records: Vec<AlertRecord>,
    next_tick_ns: u64,
    last_tick_ns: u64,
    sample: u32,
    timing: Option<prometheus::Histogram>,
    /// GTP-U is also opened on this UDP port (0: only 2152).
    extra_gtpu_port: u16,
    /// Whether flow records are wanted.
    flow_records: bool,
    /// Records of ended flows not yet taken.
    ended: Vec<FlowRecord>,
}

#[inline]
fn note_end(wanted: bool, ended: &mut Vec<FlowRecord>, f: &crate::flow::Flow, r: EndReason) {
    if wanted {
        ended.push(FlowRecord::of(f, r));
    }
}

impl Engine {
    /// An engine configured by `cfg`; `sensor` is written into alert records.
    pub fn new(cfg: &Config, sensor: String) -> Engine {
        let flows = FlowTable::new(cfg.flow.capacity, cfg.timeouts());
        let stats = Stats {
            flow_capacity: flows.capacity() as u64,
            session_capacity: cfg.session.capacity as u64,
            ..Stats::default()
        };
        Engine {
            flows,
            reasm: Reassembler::new(&cfg.reassembly),
            reassemble: cfg.reassembly.enabled,
            frag_ports: FragmentPorts::new(&cfg.reassembly),
            sessions: SessionTable::new(cfg.session()),
            detectors: Detectors {
                syn_flood: cfg.syn_flood().map(SynFlood::new),
                port_scan: cfg.port_scan().map(PortScan::new),
            },
            alerts: AlertManager::new((cfg.alerts.update_interval_s * 1e9) as u64, sensor),
            stats,
            events: Vec::new(),
            records: Vec::new(),
            next_tick_ns: 0,
            last_tick_ns: 0,
            sample: 0,
            timing: None,
            extra_gtpu_port: cfg.decode.extra_gtpu_port,
            flow_records: false,
            ended: Vec::new(),
        }
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
        self.flow_records = true;
        self
    }

    /// Flow records produced since the last call (empty unless enabled).
    pub fn take_flow_records(&mut self) -> std::vec::Drain<'_, FlowRecord> {
        self.ended.drain(..)
    }

    /// Alert records produced since the last call.
    pub fn take_records(&mut self) -> std::vec::Drain<'_, AlertRecord> {
        self.records.drain(..)
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
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += u64::from(frame.wire_len);
        s.link_types[link_index(frame.linktype)] += 1;
        // Capture time never goes backwards inside the engine: small reordering (merged
        // interfaces, mirror ports) is clamped; a jump back by more than MAX_REORDER_NS
        // (files given out of order, a bogus future timestamp before, a clock step) starts
        // a new time base, since windows measured across it would be meaningless.
        let ts = if frame.ts_ns.saturating_add(MAX_REORDER_NS) < s.last_ts_ns {
            s.time_discontinuities += 1;
            self.restart_time(frame.ts_ns);
            frame.ts_ns
        } else if frame.ts_ns < s.last_ts_ns {
            s.timestamps_backwards += 1;
            s.last_ts_ns
        } else {
            frame.ts_ns
        };
        let s = &mut self.stats;
        if s.first_ts_ns == 0 {
            s.first_ts_ns = ts;
        }
        s.last_ts_ns = ts;
        if ts >= self.next_tick_ns && ts > self.last_tick_ns {
            self.last_tick_ns = ts;
            self.tick(ts);
        }
        self.sessions.note_packet(ts);
        let s = &mut self.stats;
        let net = match link::network_layer(frame.linktype, frame.data) {
            Ok(Network::Ip(b)) => b,
            Ok(Network::Other(_)) => {
                s.non_ip += 1;
                return;
            }
            Err(e) => {
                s.count_error(e);
                return;
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
                return;
            }
        };
        let mut pkt = match ip::decode_ip_with(ip_bytes, Some(self.extra_gtpu_port)) {
            Ok(p) => p,
            Err(e) => {
                s.count_error(e);
                return;
            }
        };
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
        match &pkt.tunnel {
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
            }
            Some(t) if t.header.message_type != gtpu::MSG_GPDU => gtpu_signalling(s, ip_bytes),
            Some(_) => {}
            None => control_plane(&mut self.sessions, s, &pkt, ip_bytes, ts),
        }
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
        let session = match pkt.tunnel.as_mut() {
            Some(t) if t.header.message_type == gtpu::MSG_GPDU => {
                let (sess, uplink) = tunnel_session(&self.sessions, t, pkt.src, pkt.dst, !inner_missing, ts);
                t.uplink = uplink.or(t.uplink);
                s.gtpu_session_lookups[sess.state as usize - 1] += 1;
                t.session = Some(sess);
                t.session
            }
            _ => None,
        };
        let (key, a_to_b) = FlowKey::of_packet(&pkt);
        let (wanted, ended) = (self.flow_records, &mut self.ended);
        let u = self
            .flows
            .update(&pkt, &key, a_to_b, ts, &mut |f, r| note_end(wanted, ended, f, r));
        if let Some(sess) = session {
            if let Some(f) = self.flows.get_mut(u.slot) {
                f.set_session(sess);
            }
        }
        if let Some(flow) = self.flows.get(u.slot) {
            self.detectors.on_packet(&pkt, &u, flow, ts);
        }
    }

    fn drain_events(&mut self) {
        for ev in self.events.drain(..) {
            self.alerts.handle(ev, &mut self.records);
        }
    }

    /// Advance capture time to `now_ns`: expire flows, roll detector windows, close quiet
    /// episodes. Called automatically once per second of capture time.
    pub fn tick(&mut self, now_ns: u64) {
        let (wanted, ended) = (self.flow_records, &mut self.ended);
        self.flows.expire(now_ns, &mut |f, r| note_end(wanted, ended, f, r));
        self.reasm.expire(now_ns);
        self.frag_ports.expire(now_ns);
        self.detectors.tick(now_ns, &mut self.events);
        self.drain_events();
        // Saturating: a timestamp near the end of u64 must not wrap the schedule around
        // (that would run a full tick on every later packet).
        self.next_tick_ns = (now_ns - now_ns % SEC).saturating_add(SEC);
        self.refresh_stats();
    }

    /// A new time base at `now_ns` (capture time jumped backwards): end every flow, close
    /// every open alert and restart the detectors' windows.
    fn restart_time(&mut self, now_ns: u64) {
        let (wanted, ended) = (self.flow_records, &mut self.ended);
        self.flows.drain(&mut |f, r| note_end(wanted, ended, f, r));
        self.detectors.reset(&mut self.events);
        self.drain_events();
        self.stats.last_ts_ns = now_ns;
        self.next_tick_ns = 0;
        self.last_tick_ns = 0;
    }

    /// Copy flow, alert and detector figures into [`Engine::stats`].
    pub fn refresh_stats(&mut self) {
        let s = &mut self.stats;
        s.flows_active = self.flows.len() as u64;
        s.flows_created = self.flows.created;
        s.flows_expired = self.flows.expired;
        s.flows_evicted = self.flows.evicted;
        s.reassembly = self.reasm.stats().clone();
        s.sessions = self.sessions.stats();
        for (ki, k) in AlertKind::ALL.iter().enumerate() {
            for (si, sv) in Severity::ALL.iter().enumerate() {
                s.alerts[ki][si] = self.alerts.opened.get(&(*k, *sv)).copied().unwrap_or(0);
            }
            s.alerts_open[ki] = self.alerts.open_count(*k) as u64;
        }
        s.detector_evictions = self.detectors.evicted();
        s.alerts_suppressed = self.detectors.suppressed();
    }

    /// Run a tick if capture time `now_ns` has reached the next one. A live worker calls
    /// this with the wall clock when no packet arrived for a while, so that alerts open and
    /// resolve on a quiet link too.
    pub fn advance_to(&mut self, now_ns: u64) {
        // The last packet timestamp is left alone: packets captured just before `now_ns`
        // but processed after it are not "going backwards".
        if now_ns >= self.next_tick_ns && now_ns >= self.stats.last_ts_ns {
            self.tick(now_ns);
        }
    }

    /// End of input: announce episodes opened since the last tick and emit the final
    /// numbers of every open alert (without closing it: the attack may still be going on
    /// when the capture ends).
    pub fn finish(&mut self) {
        let now = self.stats.last_ts_ns;
        self.detectors.tick(now, &mut self.events);
        if let Some(d) = &mut self.detectors.syn_flood {
            d.flush(&mut self.events);
        }
        if let Some(d) = &mut self.detectors.port_scan {
            d.flush(&mut self.events);
        }
        self.drain_events();
        self.alerts.flush(&mut self.records);
        // Flows still open at the end of input get their record too.
        if self.flow_records {
            let ended = &mut self.ended;
            self.flows.drain(&mut |f, r| ended.push(FlowRecord::of(f, r)));
        }
        self.refresh_stats();
    }

    /// Flows currently in the table.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }
}
