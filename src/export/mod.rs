//! Every metric fivewatch exports, defined in one place, and the HTTP server that serves
//! them (`/metrics` in the Prometheus text format, `/healthz`).
//!
//! Names follow `fivewatch_<subsystem>_<name>_<unit>[_total]` with base units; labels come
//! from small fixed sets only (decode layer and reason, link type, GTP-U and PFCP message
//! type, transport protocol, reassembly event, session end reason, alert kind and severity). No per-IP or per-TEID label exists.

pub mod http;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::alert::Severity;
use crate::decode::{gtpv2c, pfcp, sctp};
use crate::decode::{Layer, Reason};
use crate::detect::AlertKind;
use crate::pipeline::{Stats, GTPU_MESSAGES, LINK_TYPES, SESSION_LOOKUPS, TRANSPORTS};
use crate::reassembly::Counter as ReassemblyCounter;
use crate::session::SessionStats;

/// Label values of `fivewatch_sessions_ended_total{reason}`.
pub const SESSION_END_REASONS: [&str; 5] = ["deleted", "evicted", "purged_by_restart", "rejected", "replaced"];

/// Label values of `fivewatch_session_messages_ignored_total{reason}`.
pub const SESSION_IGNORED: [&str; 3] = ["unmatched_response", "unknown_session", "malformed"];

fn session_ignored(s: &SessionStats) -> [u64; 3] {
    [s.unmatched_responses, s.unknown_session, s.malformed]
}

fn session_ends(s: &SessionStats) -> [u64; 5] {
    [s.deleted, s.evicted, s.purged_by_restart, s.rejected, s.replaced]
}

/// Add to counter `c` the increase of a cumulative count from `before` to `now`. Counts
/// only go up; one that went back (a source restarted its count) adds nothing rather than
/// wrapping.
fn add(c: &IntCounter, now: u64, before: u64) {
    c.inc_by(now.saturating_sub(before));
}

/// [`add`] for the series of `labels[i]` of `v`, from `before[i]` to `now[i]`.
fn add_each(v: &IntCounterVec, labels: &[&str], now: &[u64], before: &[u64]) {
    for ((l, n), b) in labels.iter().zip(now).zip(before) {
        if n > b {
            add(&v.with_label_values(&[l]), *n, *b);
        }
    }
}

/// Label values of `fivewatch_gtpu_extension_headers_total`, in [`Stats::gtpu_ext`] order.
pub fn gtpu_ext_names() -> impl Iterator<Item = &'static str> {
    crate::decode::gtpu::EXT_TYPES
        .iter()
        .map(|(_, n)| *n)
        .chain(std::iter::once("other"))
}

/// The metric handles. Cheap to clone (handles are reference-counted).
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    packets: IntCounter,
    bytes: IntCounter,
    link_types: IntCounterVec,
    decode_errors: IntCounterVec,
    non_ip: IntCounter,
    ip_versions: IntCounterVec,
    transports: IntCounterVec,
    gtpu: IntCounterVec,
    gtpu_ext: IntCounterVec,
    timestamps_backwards: IntCounter,
    reassembly: IntCounterVec,
    reassembly_datagrams: IntGauge,
    reassembly_bytes: IntGauge,
    inner_fragment_ports: IntCounterVec,
    pfcp_messages: IntCounterVec,
    gtpc_messages: IntCounterVec,
    gtpv1c_messages: IntCounter,
    pfcp_retransmissions: IntCounter,
    pfcp_peer_restarts: IntCounter,
    session_ignored: IntCounterVec,
    teid_conflicts: IntCounter,
    teid_keys_dropped: IntCounter,
    sessions_active: IntGauge,
    session_capacity: IntGauge,
    sessions_established: IntCounter,
    sessions_ended: IntCounterVec,
    session_evictions: IntCounter,
    gtpu_session_lookups: IntCounterVec,
    ngap: IntCounterVec,
    s1ap: IntCounterVec,
    sctp_chunks: IntCounter,
    flows_active: IntGauge,
    flow_capacity: IntGauge,
    flows_created: IntCounter,
    flows_expired: IntCounter,
    flow_evictions: IntCounter,
    alerts: IntCounterVec,
    alerts_open: IntGaugeVec,
    detector_evictions: IntCounterVec,
    alerts_suppressed: IntCounterVec,
    time_discontinuities: IntCounter,
    port_scan_probes_dropped: IntCounter,
    /// Packets the kernel dropped before fivewatch read them (live capture).
    pub kernel_drops: IntCounter,
    /// 1 when the source reports kernel packet/drop counters (live AF_PACKET), else 0.
    pub kernel_stats_supported: IntGauge,
    /// Packets the kernel delivered to the capture socket (live capture).
    pub kernel_packets: IntCounter,
    /// Times the kernel found the capture ring full (live `ring` backend).
    pub kernel_freeze_queue: IntCounter,
    /// Frames dropped because the worker queue was full.
    pub queue_drops: IntCounter,
    /// Packets dispatched to each flow worker, by `worker` (0..N-1).
    pub worker_packets: IntCounterVec,
    /// Packets dropped because a flow worker's queue was full, by `worker`.
    pub worker_queue_drops: IntCounterVec,
    /// Ticks and session-table messages lost for a worker whose queue stayed full, by `worker`.
    pub worker_control_drops: IntCounterVec,
    /// Alert records that could not be written to a sink.
    pub alert_sink_errors: IntCounter,
    /// Per-packet processing time (decode, flow update, detectors), sampled 1 in 64.
    pub processing_seconds: Histogram,
    last_capture_ts: prometheus::Gauge,
    prev: Stats,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Names are static and distinct, so registration cannot fail; a failure would only
    // drop that series from /metrics, never stop the sensor.
    let _ = r.register(Box::new(c.clone()));
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    reg(
        r,
        IntCounter::with_opts(Opts::new(name, help)).expect("static metric options are valid"),
    )
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    reg(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("static metric options are valid"),
    )
}

impl Metrics {
    /// Create and register every metric; label combinations are pre-registered at 0 so
    /// that dashboards and `rate()` see them from the first scrape.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let build = reg(
            &r,
            IntGaugeVec::new(
                Opts::new("fivewatch_build_info", "Build information; value is always 1."),
                &["version"],
            )
            .expect("static metric options are valid"),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let m = Metrics {
            packets: counter(&r, "fivewatch_capture_packets_total", "Frames read from the capture source."),
            bytes: counter(&r, "fivewatch_capture_bytes_total", "Bytes on the wire of the frames read (original length, not the captured length)."),
            link_types: counter_vec(&r, "fivewatch_capture_link_type_packets_total", "Frames read, by link-layer type.", &["link_type"]),
            decode_errors: counter_vec(
                &r,
                "fivewatch_decode_errors_total",
                "Malformed or truncated headers, by layer and reason. Frames whose error left a usable flow (e.g. a TCP header cut by the snap length) are counted here and still processed.",
                &["layer", "reason"],
            ),
            non_ip: counter(&r, "fivewatch_decode_non_ip_packets_total", "Frames that carry no IP (ARP, LLDP, ...)."),
            ip_versions: counter_vec(&r, "fivewatch_decode_ip_packets_total", "IP packets by outer IP version.", &["version"]),
            transports: counter_vec(
                &r,
                "fivewatch_decode_transport_packets_total",
                "Packets by the transport protocol of their flow (the inner packet for GTP-U); ip_fragment = non-first fragments.",
                &["protocol"],
            ),
            gtpu: counter_vec(&r, "fivewatch_gtpu_packets_total", "GTP-U messages on UDP 2152, by message type (TS 29.281 Table 6.1-1).", &["message_type"]),
            gtpu_ext: counter_vec(
                &r,
                "fivewatch_gtpu_extension_headers_total",
                "GTP-U messages carrying an extension header, by header type (TS 29.281 §5.2.1; unnamed types are \"other\").",
                &["type"],
            ),
            reassembly: counter_vec(
                &r,
                "fivewatch_ip_reassembly_events_total",
                "Outer IP fragment reassembly (RFC 791 §3.2, RFC 8200 §4.5), by event: fragments received, datagrams reassembled, exact duplicates ignored, and fragments or datagrams dropped (overlap, timeout, too_many_datagrams, memory_limit, too_large, bad_fragment, tiny_first_fragment, too_many_fragments, truncated, abandoned).",
                &["event"],
            ),
            reassembly_datagrams: reg(&r, IntGauge::new("fivewatch_ip_reassembly_datagrams", "Outer IP datagrams being reassembled now (incomplete or abandoned).").expect("valid")),
            reassembly_bytes: reg(&r, IntGauge::new("fivewatch_ip_reassembly_buffered_bytes", "Bytes held by outer IP fragment reassembly now.").expect("valid")),
            inner_fragment_ports: counter_vec(
                &r,
                "fivewatch_inner_fragment_port_lookups_total",
                "Later IP fragments inside a GTP-U tunnel, by whether the ports of their first fragment were known (hit) or not (miss).",
                &["result"],
            ),
            pfcp_messages: counter_vec(&r, "fivewatch_pfcp_messages_total", "PFCP messages on UDP 8805, by message type (TS 29.244 Table 7.3-1; unnamed types are \"other\").", &["message_type"]),
            gtpc_messages: counter_vec(&r, "fivewatch_gtpc_messages_total", "GTPv2-C messages on UDP 2123 (piggybacked ones included), by message type (TS 29.274 Table 6.1-1; unnamed types are \"other\").", &["message_type"]),
            gtpv1c_messages: counter(&r, "fivewatch_gtpv1c_messages_total", "GTPv1-C messages (TS 29.060, version 1 on UDP 2123): counted, not decoded."),
            pfcp_retransmissions: counter(&r, "fivewatch_session_retransmissions_total", "PFCP and GTPv2-C messages repeating a recent one (same peers, sequence number, type and bytes; TS 29.244 §6.4, TS 29.274 §7.6), not applied again."),
            pfcp_peer_restarts: counter(&r, "fivewatch_session_peer_restarts_total", "PFCP peers whose Recovery Time Stamp changed, or GTPv2-C peers whose Recovery restart counter changed (the node restarted); their sessions were purged."),
            session_ignored: counter_vec(
                &r,
                "fivewatch_session_messages_ignored_total",
                "PFCP and GTPv2-C messages that changed no session, by reason: unmatched_response (no request seen), unknown_session (names no known session), malformed (decode error or a mandatory IE missing).",
                &["reason"],
            ),
            teid_conflicts: counter(&r, "fivewatch_session_teid_conflicts_total", "A tunnel endpoint (address, TEID) claimed by a new session while another session of the same protocol held it: a TEID reused before its session was deleted, or a forged take-over. The newest owner is used; the previous one gets the TEID back when the newer one ends."),
            teid_keys_dropped: counter(&r, "fivewatch_session_teid_keys_dropped_total", "Tunnel endpoints not indexed because a session already had the most it may hold (16)."),
            sessions_active: reg(&r, IntGauge::new("fivewatch_session_table_sessions", "Sessions (PFCP, or GTPv2-C PDN connections) in the session table.").expect("valid")),
            session_capacity: reg(&r, IntGauge::new("fivewatch_session_table_capacity_sessions", "Configured session-table capacity.").expect("valid")),
            sessions_established: counter(&r, "fivewatch_sessions_established_total", "Sessions a PFCP Session Establishment Response or a GTPv2-C Create Session Response accepted."),
            sessions_ended: counter_vec(
                &r,
                "fivewatch_sessions_ended_total",
                "Sessions removed from the session table, by reason: deleted (PFCP Session Deletion, GTPv2-C Delete Session), evicted (table full), purged_by_restart (the peer restarted), rejected (the response's cause), replaced (a new establishment with the same CP F-SEID or control TEID).",
                &["reason"],
            ),
            session_evictions: counter(&r, "fivewatch_session_table_evictions_total", "Sessions evicted because the session table was full (not yet established ones first, then least recently active)."),
            gtpu_session_lookups: counter_vec(
                &r,
                "fivewatch_gtpu_session_lookups_total",
                "G-PDUs by the PFCP session of their (outer destination, TEID): known, unknown (no session yet, inside the learning period), unmapped (no session after it).",
                &["result"],
            ),
            ngap: counter_vec(
                &r,
                "fivewatch_ngap_messages_total",
                "Whole NGAP messages (N2, SCTP PPID 60 or port 38412) by elementary procedure (TS 38.413 §8; unnamed codes are \"other\") and PDU choice (initiating_message, successful_outcome, unsuccessful_outcome, other).",
                &["procedure", "pdu"],
            ),
            s1ap: counter_vec(
                &r,
                "fivewatch_s1ap_messages_total",
                "Whole S1AP messages (S1-MME, SCTP PPID 18 or port 36412) by PDU choice.",
                &["pdu"],
            ),
            sctp_chunks: counter(&r, "fivewatch_sctp_chunks_total", "SCTP chunks walked (at most 32 per packet; more is counted as decode error sctp:too_many_headers)."),
            timestamps_backwards: counter(&r, "fivewatch_capture_timestamps_backwards_total", "Frames whose timestamp was earlier than the previous frame's (clamped to it)."),
            flows_active: reg(&r, IntGauge::new("fivewatch_flow_table_flows", "Flows currently in the flow table.").expect("valid")),
            flow_capacity: reg(&r, IntGauge::new("fivewatch_flow_table_capacity_flows", "Configured flow-table capacity.").expect("valid")),
            flows_created: counter(&r, "fivewatch_flows_created_total", "Flows created."),
            flows_expired: counter(&r, "fivewatch_flows_expired_total", "Flows removed after their idle timeout."),
            flow_evictions: counter(&r, "fivewatch_flow_table_evictions_total", "Flows evicted because the flow table was full."),
            alerts: counter_vec(&r, "fivewatch_alerts_total", "Alerts raised (attack episodes opened), by kind and severity at opening.", &["kind", "severity"]),
            alerts_open: reg(
                &r,
                IntGaugeVec::new(Opts::new("fivewatch_alerts_open", "Alerts currently open (episode not yet resolved), by kind."), &["kind"])
                    .expect("valid"),
            ),
            detector_evictions: counter_vec(
                &r,
                "fivewatch_detector_evictions_total",
                "Entries a detector evicted from a full table (least recently used first), by detector.",
                &["detector"],
            ),
            alerts_suppressed: counter_vec(
                &r,
                "fivewatch_alerts_suppressed_total",
                "Attack episodes not opened because the detector's max_open_alerts were already open, by kind.",
                &["kind"],
            ),
            port_scan_probes_dropped: counter(
                &r,
                "fivewatch_port_scan_probes_dropped_total",
                "Port-scan probes (first packets of new flows) not remembered because the per-source or the global probe budget (detect.port_scan.max_tracked_probes) was spent: the scan thresholds did not count them.",
            ),
            time_discontinuities: counter(
                &r,
                "fivewatch_capture_time_discontinuities_total",
                "Times packet timestamps jumped backwards by more than 1 s: flows were ended, open alerts closed and detector windows restarted.",
            ),
            kernel_drops: counter(&r, "fivewatch_capture_kernel_drops_total", "Packets the kernel dropped before fivewatch read them (PACKET_STATISTICS, live AF_PACKET capture; see fivewatch_capture_kernel_stats_supported)."),
            kernel_stats_supported: reg(&r, IntGauge::new("fivewatch_capture_kernel_stats_supported", "1 when the capture source reports kernel packet and drop counters (live AF_PACKET: ring or af_packet backend), 0 otherwise (capture files, pnet backend): the kernel counters are then not measured.").expect("valid")),
            kernel_packets: counter(&r, "fivewatch_capture_kernel_packets_total", "Packets the kernel passed to the capture socket (PACKET_STATISTICS, live AF_PACKET capture). On loopback the kernel counts every packet twice (outgoing and incoming copy); fivewatch processes it once."),
            kernel_freeze_queue: counter(&r, "fivewatch_capture_kernel_freeze_queue_total", "Times the kernel found the TPACKET_V3 capture ring full (tp_freeze_q_cnt of PACKET_STATISTICS, live ring backend): events, not packets; the packets lost meanwhile are in fivewatch_capture_kernel_drops_total. Always 0 for the other backends."),
            queue_drops: counter(&r, "fivewatch_pipeline_queue_drops_total", "Frames dropped because the worker queue was full."),
            worker_packets: counter_vec(
                &r,
                "fivewatch_worker_packets_total",
                "Packets dispatched to each flow worker (symmetric hash of the inner 5-tuple).",
                &["worker"],
            ),
            worker_queue_drops: counter_vec(
                &r,
                "fivewatch_worker_queue_drops_total",
                "Packets dropped because a flow worker's queue was full (live capture; replay waits).",
                &["worker"],
            ),
            worker_control_drops: counter_vec(
                &r,
                "fivewatch_worker_control_drops_total",
                "Ticks and PFCP/GTPv2-C messages lost for a flow worker whose queue stayed full (its session-table replica may miss a session).",
                &["worker"],
            ),
            alert_sink_errors: counter(&r, "fivewatch_alert_sink_errors_total", "Alert records that could not be written to a sink."),
            processing_seconds: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new("fivewatch_packet_processing_seconds", "Time to process one packet (decode, flow update, detectors), sampled 1 in 64 packets.")
                        .buckets(vec![50e-9, 100e-9, 200e-9, 500e-9, 1e-6, 2e-6, 5e-6, 10e-6, 50e-6, 100e-6, 1e-3]),
                )
                .expect("valid"),
            ),
            last_capture_ts: reg(
                &r,
                prometheus::Gauge::new("fivewatch_capture_last_packet_timestamp_seconds", "Capture timestamp of the last frame processed, seconds since the Unix epoch.")
                    .expect("valid"),
            ),
            registry: r,
            prev: Stats::default(),
        };
        for (name, _) in LINK_TYPES {
            m.link_types.with_label_values(&[name]);
        }
        m.kernel_stats_supported.set(0);
        for l in Layer::ALL {
            for rsn in l.reasons() {
                m.decode_errors.with_label_values(&[l.as_str(), rsn.as_str()]);
            }
        }
        for v in ["4", "6"] {
            m.ip_versions.with_label_values(&[v]);
        }
        for t in TRANSPORTS {
            m.transports.with_label_values(&[t]);
        }
        for g in GTPU_MESSAGES {
            m.gtpu.with_label_values(&[g]);
        }
        for t in gtpu_ext_names() {
            m.gtpu_ext.with_label_values(&[t]);
        }
        for c in ReassemblyCounter::ALL {
            m.reassembly.with_label_values(&[c.as_str()]);
        }
        for l in ["hit", "miss"] {
            m.inner_fragment_ports.with_label_values(&[l]);
        }
        for l in pfcp::MESSAGE_LABELS {
            m.pfcp_messages.with_label_values(&[l]);
        }
        for l in gtpv2c::MESSAGE_LABELS {
            m.gtpc_messages.with_label_values(&[l]);
        }
        for l in SESSION_IGNORED {
            m.session_ignored.with_label_values(&[l]);
        }
        for l in SESSION_END_REASONS {
            m.sessions_ended.with_label_values(&[l]);
        }
        for l in SESSION_LOOKUPS {
            m.gtpu_session_lookups.with_label_values(&[l]);
        }
        for c in sctp::PDU_CHOICE_LABELS {
            m.s1ap.with_label_values(&[c]);
            for p in sctp::PROCEDURE_LABELS {
                m.ngap.with_label_values(&[p, c]);
            }
        }
        for k in AlertKind::ALL {
            m.alerts_open.with_label_values(&[k.as_str()]);
            m.detector_evictions.with_label_values(&[k.as_str()]);
            m.alerts_suppressed.with_label_values(&[k.as_str()]);
            for s in Severity::ALL {
                m.alerts.with_label_values(&[k.as_str(), s.as_str()]);
            }
        }
        m
    }

    /// Publish the worker's cumulative `stats` (adds the increase since the last call).
    pub fn publish(&mut self, s: &Stats) {
        let p = &self.prev;
        add(&self.packets, s.packets, p.packets);
        add(&self.bytes, s.bytes, p.bytes);
        for (i, (name, _)) in LINK_TYPES.iter().enumerate() {
            add(
                &self.link_types.with_label_values(&[name]),
                s.link_types[i],
                p.link_types[i],
            );
        }
        for (li, l) in Layer::ALL.iter().enumerate() {
            for (ri, r) in Reason::ALL.iter().enumerate() {
                let (n, b) = (s.decode_errors[li][ri], p.decode_errors[li][ri]);
                if n > b {
                    add(&self.decode_errors.with_label_values(&[l.as_str(), r.as_str()]), n, b);
                }
            }
        }
        add(&self.non_ip, s.non_ip, p.non_ip);
        for (vec, now, prev) in [
            (&self.worker_packets, &s.worker_packets, &p.worker_packets),
            (&self.worker_queue_drops, &s.worker_queue_drops, &p.worker_queue_drops),
            (
                &self.worker_control_drops,
                &s.worker_control_drops,
                &p.worker_control_drops,
            ),
        ] {
            for (w, n) in now.iter().enumerate() {
                let before = prev.get(w).copied().unwrap_or(0);
                add(&vec.with_label_values(&[&w.to_string()]), *n, before);
            }
        }
        add(&self.ip_versions.with_label_values(&["4"]), s.ipv4, p.ipv4);
        add(&self.ip_versions.with_label_values(&["6"]), s.ipv6, p.ipv6);
        for (i, t) in TRANSPORTS.iter().enumerate() {
            add(
                &self.transports.with_label_values(&[t]),
                s.transports[i],
                p.transports[i],
            );
        }
        for (i, t) in gtpu_ext_names().enumerate() {
            add(&self.gtpu_ext.with_label_values(&[t]), s.gtpu_ext[i], p.gtpu_ext[i]);
        }
        for (i, g) in GTPU_MESSAGES.iter().enumerate() {
            add(&self.gtpu.with_label_values(&[g]), s.gtpu[i], p.gtpu[i]);
        }
        add(
            &self.timestamps_backwards,
            s.timestamps_backwards,
            p.timestamps_backwards,
        );
        let names: Vec<&str> = ReassemblyCounter::ALL.iter().map(|c| c.as_str()).collect();
        add_each(&self.reassembly, &names, &s.reassembly.counts, &p.reassembly.counts);
        self.reassembly_datagrams.set(s.reassembly.datagrams as i64);
        self.reassembly_bytes.set(s.reassembly.buffered_bytes as i64);
        add_each(
            &self.inner_fragment_ports,
            &["hit", "miss"],
            &[s.inner_fragment_ports_hits, s.inner_fragment_ports_misses],
            &[p.inner_fragment_ports_hits, p.inner_fragment_ports_misses],
        );
        for (i, proc_name) in sctp::PROCEDURE_LABELS.iter().enumerate() {
            for (j, c) in sctp::PDU_CHOICE_LABELS.iter().enumerate() {
                let (n, b) = (s.ngap[i][j], p.ngap[i][j]);
                if n > b {
                    add(&self.ngap.with_label_values(&[proc_name, c]), n, b);
                }
            }
        }
        add_each(&self.s1ap, &sctp::PDU_CHOICE_LABELS, &s.s1ap, &p.s1ap);
        add(&self.sctp_chunks, s.sctp_chunks, p.sctp_chunks);
        add(&self.gtpv1c_messages, s.gtpv1c_messages, p.gtpv1c_messages);
        let (ss, ps) = (&s.sessions, &p.sessions);
        add_each(&self.pfcp_messages, &pfcp::MESSAGE_LABELS, &ss.messages, &ps.messages);
        add_each(
            &self.gtpc_messages,
            gtpv2c::MESSAGE_LABELS,
            &ss.gtpc_messages,
            &ps.gtpc_messages,
        );
        add(&self.pfcp_retransmissions, ss.retransmissions, ps.retransmissions);
        add(&self.pfcp_peer_restarts, ss.peer_restarts, ps.peer_restarts);
        add_each(
            &self.session_ignored,
            &SESSION_IGNORED,
            &session_ignored(ss),
            &session_ignored(ps),
        );
        add(&self.teid_conflicts, ss.teid_conflicts, ps.teid_conflicts);
        add(&self.teid_keys_dropped, ss.teid_keys_dropped, ps.teid_keys_dropped);
        self.sessions_active.set(ss.active as i64);
        self.session_capacity.set(s.session_capacity as i64);
        add(&self.sessions_established, ss.established, ps.established);
        add_each(
            &self.sessions_ended,
            &SESSION_END_REASONS,
            &session_ends(ss),
            &session_ends(ps),
        );
        add(&self.session_evictions, ss.evicted, ps.evicted);
        add_each(
            &self.gtpu_session_lookups,
            &SESSION_LOOKUPS,
            &s.gtpu_session_lookups,
            &p.gtpu_session_lookups,
        );
        add(
            &self.time_discontinuities,
            s.time_discontinuities,
            p.time_discontinuities,
        );
        add(
            &self.port_scan_probes_dropped,
            s.port_scan_probes_dropped,
            p.port_scan_probes_dropped,
        );
        self.flows_active.set(s.flows_active as i64);
        self.flow_capacity.set(s.flow_capacity as i64);
        add(&self.flows_created, s.flows_created, p.flows_created);
        add(&self.flows_expired, s.flows_expired, p.flows_expired);
        add(&self.flow_evictions, s.flows_evicted, p.flows_evicted);
        for (ki, k) in AlertKind::ALL.iter().enumerate() {
            for (si, sv) in Severity::ALL.iter().enumerate() {
                add(
                    &self.alerts.with_label_values(&[k.as_str(), sv.as_str()]),
                    s.alerts[ki][si],
                    p.alerts[ki][si],
                );
            }
            self.alerts_open
                .with_label_values(&[k.as_str()])
                .set(s.alerts_open[ki] as i64);
            add(
                &self.detector_evictions.with_label_values(&[k.as_str()]),
                s.detector_evictions[ki],
                p.detector_evictions[ki],
            );
            add(
                &self.alerts_suppressed.with_label_values(&[k.as_str()]),
                s.alerts_suppressed[ki],
                p.alerts_suppressed[ki],
            );
        }
        if s.last_ts_ns > 0 {
            self.last_capture_ts.set(s.last_ts_ns as f64 * 1e-9);
        }
        self.prev = s.clone();
    }

    /// The registry rendered in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        let enc = prometheus::TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
