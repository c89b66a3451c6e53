//! `fivewatch replay`: offline analysis of capture files as fast as possible.

use super::*;

/// One file's outcome in a replay.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// Path as given.
    pub path: String,
    /// Packets read from it.
    pub packets: u64,
    /// Its capture time span: the latest packet timestamp minus the first packet's, seconds
    /// (0 without packets).
    pub capture_duration_s: f64,
    /// The error that ended it early (names the file and byte offset), if any.
    pub error: Option<String>,
}

/// An opened alert, listed in the replay summary.
#[derive(Debug, Clone, Serialize)]
pub struct AlertLine {
    /// `alert.kind`.
    pub kind: String,
    /// Episode id.
    pub alert_id: String,
    /// The victim (floods) or scanner (scans).
    pub entity_ip: String,
    /// Signature text of the latest record.
    pub signature: String,
    /// Severity of the latest record.
    pub severity: String,
}

/// What `fivewatch replay` reports (printed, and written by `--stats-json`).
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// Per input file.
    pub files: Vec<FileReport>,
    /// Frames processed.
    pub packets: u64,
    /// Wire bytes processed.
    pub bytes: u64,
    /// Frames per link type.
    pub link_types: std::collections::BTreeMap<String, u64>,
    /// Decode errors, all layers and reasons.
    pub decode_errors: u64,
    /// Decode errors by `layer:reason`, non-zero only.
    pub decode_errors_by_reason: std::collections::BTreeMap<String, u64>,
    /// Frames without IP.
    pub non_ip_packets: u64,
    /// Frames with outer IPv4.
    pub ipv4_packets: u64,
    /// Frames with outer IPv6.
    pub ipv6_packets: u64,
    /// Packets by flow transport (inner for GTP-U).
    pub transports: std::collections::BTreeMap<String, u64>,
    /// GTP-U messages by type.
    pub gtpu: std::collections::BTreeMap<String, u64>,
    /// GTP-U messages carrying an extension header, by header type.
    pub gtpu_extension_headers: std::collections::BTreeMap<String, u64>,
    /// PFCP messages by type.
    pub pfcp: std::collections::BTreeMap<String, u64>,
    /// GTPv2-C messages by type.
    pub gtpc: std::collections::BTreeMap<String, u64>,
    /// GTPv1-C messages on UDP 2123 (counted, not decoded).
    pub gtpv1c_messages: u64,
    /// PFCP session table at the end: `active`, `established`, `deleted`, `evicted`,
    /// `purged_by_restart`, `rejected`, `replaced`, `retransmissions`, `peer_restarts`,
    /// `unmatched_responses`, `unknown_session`, `malformed`, `teid_conflicts`,
    /// `teid_keys_dropped`.
    pub sessions: std::collections::BTreeMap<String, u64>,
    /// Whole NGAP messages by `procedure/pdu_choice`, non-zero only.
    pub ngap: std::collections::BTreeMap<String, u64>,
    /// Whole S1AP messages by PDU choice.
    pub s1ap: std::collections::BTreeMap<String, u64>,
    /// G-PDUs by session lookup result (`known`, `unknown`, `unmapped`).
    pub gtpu_session_lookups: std::collections::BTreeMap<String, u64>,
    /// Outer IP fragment reassembly events (`fragments`, `reassembled`, drops by reason).
    pub ip_reassembly: std::collections::BTreeMap<String, u64>,
    /// Outer datagrams still incomplete at the end of input (their fragments were counted,
    /// their packets never reached a flow).
    pub ip_reassembly_pending: u64,
    /// Frames whose timestamp was earlier than the previous frame's (clamped to it).
    pub timestamps_backwards: u64,
    /// Times capture time jumped back by more than a second: a new time base was started
    /// (flows ended, open alerts closed, detector windows restarted).
    pub time_discontinuities: u64,
    /// Packets per flow worker (empty with one worker).
    pub worker_packets: Vec<u64>,
    /// Flows created.
    pub flows: u64,
    /// Flows evicted at capacity.
    pub flow_evictions: u64,
    /// Flows ended by idle timeout.
    pub flows_expired: u64,
    /// Detector table entries evicted to make room, by kind.
    pub detector_evictions: std::collections::BTreeMap<String, u64>,
    /// Port-scan probes not counted because the probe budget was spent (see
    /// [`crate::pipeline::Stats::port_scan_probes_dropped`]).
    pub port_scan_probes_dropped: u64,
    /// Alerts opened, by kind.
    pub alerts: std::collections::BTreeMap<String, u64>,
    /// The alerts opened.
    pub alert_list: Vec<AlertLine>,
    /// Alert records written (per sink: a record written to two sinks counts twice).
    pub alert_records_written: u64,
    /// Alert records that could not be written (per sink); non-zero makes `replay` exit 3.
    pub alert_sink_errors: u64,
    /// Flow records written (`--flows`).
    pub flow_records_written: u64,
    /// Flow records that could not be written; non-zero makes `replay` exit 3.
    pub flow_record_errors: u64,
    /// Capture time covered, seconds: the sum of the files' spans
    /// ([`FileReport::capture_duration_s`]), so that files from different days or given out
    /// of time order add up instead of giving the distance between their dates.
    pub capture_duration_s: f64,
    /// Wall-clock time of the replay, seconds (with `--preload`: of processing the frames
    /// held in memory, the reading of the files left out).
    pub wall_time_s: f64,
    /// With `--preload`: wall-clock time spent reading the capture files into memory before
    /// processing started, seconds; `null` without it.
    pub preload_time_s: Option<f64>,
    /// Packets per second of wall-clock time.
    pub packets_per_second: f64,
}

impl ReplaySummary {
    fn new(
        stats: &Stats,
        files: Vec<FileReport>,
        alert_list: Vec<AlertLine>,
        sink: &AlertSink,
        flows: Option<&AlertSink>,
        wall: f64,
    ) -> ReplaySummary {
        let mut by_reason = std::collections::BTreeMap::new();
        for (li, l) in Layer::ALL.iter().enumerate() {
            for (ri, r) in Reason::ALL.iter().enumerate() {
                let n = stats.decode_errors[li][ri];
                if n > 0 {
                    by_reason.insert(format!("{}:{}", l.as_str(), r.as_str()), n);
                }
            }
        }
        let named = |names: &[&str], v: &[u64]| names.iter().zip(v).map(|(n, c)| (n.to_string(), *c)).collect();
        let lt_names: Vec<&str> = LINK_TYPES.iter().map(|(n, _)| *n).collect();
        let capture_duration_s = files.iter().map(|f| f.capture_duration_s).sum();
        ReplaySummary {
            files,
            packets: stats.packets,
            bytes: stats.bytes,
            link_types: named(&lt_names, &stats.link_types),
            decode_errors: stats.decode_errors_total(),
            decode_errors_by_reason: by_reason,
            non_ip_packets: stats.non_ip,
            ipv4_packets: stats.ipv4,
            ipv6_packets: stats.ipv6,
            transports: named(&TRANSPORTS, &stats.transports),
            gtpu: named(&GTPU_MESSAGES, &stats.gtpu),
            gtpu_extension_headers: crate::export::gtpu_ext_names()
                .zip(stats.gtpu_ext)
                .map(|(n, c)| (n.to_string(), c))
                .collect(),
            pfcp: named(&crate::decode::pfcp::MESSAGE_LABELS, &stats.sessions.messages),
            gtpc: named(crate::decode::gtpv2c::MESSAGE_LABELS, &stats.sessions.gtpc_messages),
            gtpv1c_messages: stats.gtpv1c_messages,
            sessions: {
                let t = &stats.sessions;
                [
                    ("active", t.active),
                    ("established", t.established),
                    ("deleted", t.deleted),
                    ("evicted", t.evicted),
                    ("purged_by_restart", t.purged_by_restart),
                    ("rejected", t.rejected),
                    ("replaced", t.replaced),
                    ("retransmissions", t.retransmissions),
                    ("merged", t.merged),
                    ("peer_restarts", t.peer_restarts),
                    ("unmatched_responses", t.unmatched_responses),
                    ("unknown_session", t.unknown_session),
                    ("malformed", t.malformed),
                    ("teid_conflicts", t.teid_conflicts),
                    ("teid_keys_dropped", t.teid_keys_dropped),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
            },
            ngap: {
                use crate::decode::sctp::{PDU_CHOICE_LABELS, PROCEDURE_LABELS};
                let mut m = std::collections::BTreeMap::new();
                for (p, row) in PROCEDURE_LABELS.iter().zip(&stats.ngap) {
                    for (c, n) in PDU_CHOICE_LABELS.iter().zip(row) {
                        if *n > 0 {
                            m.insert(format!("{p}/{c}"), *n);
                        }
                    }
                }
                m
            },
            s1ap: named(&crate::decode::sctp::PDU_CHOICE_LABELS, &stats.s1ap),
            gtpu_session_lookups: named(&crate::pipeline::SESSION_LOOKUPS, &stats.gtpu_session_lookups),
            ip_reassembly: crate::reassembly::Counter::ALL
                .iter()
                .map(|c| (c.as_str().to_string(), stats.reassembly.get(*c)))
                .collect(),
            ip_reassembly_pending: stats.reassembly.datagrams as u64,
            timestamps_backwards: stats.timestamps_backwards,
            time_discontinuities: stats.time_discontinuities,
            worker_packets: stats.worker_packets.clone(),
            flows: stats.flows_created,
            flow_evictions: stats.flows_evicted,
            flows_expired: stats.flows_expired,
            detector_evictions: AlertKind::ALL
                .iter()
                .zip(stats.detector_evictions)
                .map(|(k, n)| (k.as_str().to_string(), n))
                .collect(),
            port_scan_probes_dropped: stats.port_scan_probes_dropped,
            alerts: AlertKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), stats.alerts_of(*k)))
                .collect(),
            alert_list,
            alert_records_written: sink.written,
            alert_sink_errors: sink.errors,
            flow_records_written: flows.map_or(0, |f| f.written),
            flow_record_errors: flows.map_or(0, |f| f.errors),
            capture_duration_s,
            wall_time_s: wall,
            preload_time_s: None,
            packets_per_second: if wall > 0.0 { stats.packets as f64 / wall } else { 0.0 },
        }
    }

    /// Human-readable summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let kv = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        for f in &self.files {
            match &f.error {
                Some(e) => s += &format!("file      {} ({} packets) ERROR: {e}\n", f.path, f.packets),
                None => s += &format!("file      {} ({} packets)\n", f.path, f.packets),
            }
        }
        s += &format!(
            "packets   {} ({} bytes, {:.3} s of capture)\n",
            self.packets, self.bytes, self.capture_duration_s
        );
        s += &format!("link      {}\n", kv(&self.link_types));
        s += &format!(
            "ip        ipv4={} ipv6={} non_ip={}\n",
            self.ipv4_packets, self.ipv6_packets, self.non_ip_packets
        );
        s += &format!("transport {}\n", kv(&self.transports));
        if self.gtpu.values().any(|n| *n > 0) {
            s += &format!("gtpu      {}\n", kv(&self.gtpu));
        }
        if self.gtpu_extension_headers.values().any(|n| *n > 0) {
            s += &format!("gtpu ext  {}\n", kv(&self.gtpu_extension_headers));
        }
        if self.gtpu_session_lookups.values().any(|n| *n > 0) {
            s += &format!("gtpu sess {}\n", kv(&self.gtpu_session_lookups));
        }
        if !self.ngap.is_empty() {
            s += &format!("ngap      {}\n", kv(&self.ngap));
        }
        if self.s1ap.values().any(|n| *n > 0) {
            s += &format!("s1ap      {}\n", kv(&self.s1ap));
        }
        if self.pfcp.values().any(|n| *n > 0) {
            s += &format!("pfcp      {}\n", kv(&self.pfcp));
        }
        if self.gtpc.values().any(|n| *n > 0) {
            s += &format!("gtpv2-c   {}\n", kv(&self.gtpc));
        }
        if self.gtpv1c_messages > 0 {
            s += &format!("gtpv1-c   {} messages (not decoded)\n", self.gtpv1c_messages);
        }
        if self.sessions.values().any(|n| *n > 0) {
            s += &format!("sessions  {}\n", kv(&self.sessions));
        }
        if self.ip_reassembly.values().any(|n| *n > 0) {
            s += &format!("ip frags  {}", kv(&self.ip_reassembly));
            if self.ip_reassembly_pending > 0 {
                s += &format!(
                    " (incomplete at the end of input: {} datagrams, not in any flow)",
                    self.ip_reassembly_pending
                );
            }
            s += "\n";
        }
        match self.decode_errors {
            0 => s += "errors    no decode errors\n",
            n => s += &format!("errors    {n} decode errors: {}\n", kv(&self.decode_errors_by_reason)),
        }
        if self.timestamps_backwards > 0 {
            let order = match self.files.len() {
                1 => "",
                _ => "; files are one stream, give them in capture order",
            };
            s += &format!(
                "warning   {} frames had a timestamp earlier than the frame before (clamped{order})\n",
                self.timestamps_backwards
            );
        }
        if self.time_discontinuities > 0 {
            s += &format!(
                "warning   capture time jumped back by more than 1 s {} times: each started a new \
                 time base (flows ended, open alerts closed)\n",
                self.time_discontinuities
            );
        }
        if !self.worker_packets.is_empty() {
            s += &format!(
                "workers   {} (packets per worker: {})\n",
                self.worker_packets.len(),
                self.worker_packets
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        s += &format!(
            "flows     {} (expired {}, evicted {})\n",
            self.flows, self.flows_expired, self.flow_evictions
        );
        if self.detector_evictions.values().any(|n| *n > 0) {
            s += &format!("detector  evictions {}\n", kv(&self.detector_evictions));
        }
        if self.port_scan_probes_dropped > 0 {
            s += &format!(
                "warning   {} port-scan probes not counted: the probe budget \
                 (detect.port_scan.max_tracked_probes) was spent\n",
                self.port_scan_probes_dropped
            );
        }
        s += &format!(
            "alerts    {}\n",
            self.alerts
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for a in &self.alert_list {
            s += &format!("  [{}] {} {} {}\n", a.severity, a.kind, a.alert_id, a.signature);
        }
        if self.flow_records_written + self.flow_record_errors > 0 {
            s += &format!(
                "flow recs {} written{}\n",
                self.flow_records_written,
                match self.flow_record_errors {
                    0 => String::new(),
                    n => format!(", {n} COULD NOT BE WRITTEN"),
                }
            );
        }
        if self.alert_sink_errors > 0 {
            s += &format!(
                "records   {} alert records written, {} COULD NOT BE WRITTEN\n",
                self.alert_records_written, self.alert_sink_errors
            );
        }
        s += &format!(
            "time      {:.3} s wall, {:.0} packets/s{}\n",
            self.wall_time_s,
            self.packets_per_second,
            match self.preload_time_s {
                Some(t) => format!(" (processing only; the files were read into memory before, in {t:.3} s)"),
                None => String::new(),
            }
        );
        s
    }
}

fn note_alerts(list: &mut Vec<AlertLine>, rec: &AlertRecord) {
    match list.iter_mut().find(|a| a.alert_id == rec.alert_id) {
        Some(a) => {
            a.signature = rec.alert.signature.clone();
            a.severity = rec.severity.as_str().into();
        }
        None => list.push(AlertLine {
            kind: rec.alert.kind.into(),
            alert_id: rec.alert_id.clone(),
            entity_ip: rec.entity_ip.to_string(),
            signature: rec.alert.signature.clone(),
            severity: rec.severity.as_str().into(),
        }),
    }
}

/// Offline analysis of capture files, as fast as possible (the files are processed in order
/// as one stream): in one engine on this thread when `pipeline.workers` is 1, else with that
/// many flow workers (see [`crate::pipeline::workers`]; same alert records, same flow records
/// in another order, same counters). Alert records go to `sink`. Errors in a file end that
/// file (reported in the summary) after its earlier packets were processed; the caller
/// decides the exit status from [`FileReport::error`] and
/// [`ReplaySummary::alert_sink_errors`].
pub fn replay(cfg: &Config, paths: &[PathBuf], sink: &mut AlertSink, flows: Option<&mut AlertSink>) -> ReplaySummary {
    replay_with(cfg, paths, sink, flows, ReplayOptions::default())
}

/// How [`replay_with`] reads its capture files.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayOptions {
    /// Read every file whole into memory first, then process the frames from there
    /// (`fivewatch replay --preload`): the summary's wall time and packets/s then measure
    /// the processing alone, as a benchmark of the pipeline "from memory". Needs memory for
    /// every file's captured bytes (plus 32 bytes per frame); a file that does not fit is
    /// reported like one that cannot be read.
    pub preload: bool,
}

/// [`replay`], with `opts` ([`ReplayOptions::preload`]: the files read into memory first,
/// the summary's `wall_time_s` and `packets_per_second` covering the processing alone and
/// `preload_time_s` the reading, in seconds). Errors are reported as in [`replay`]: per
/// file in [`FileReport::error`] (with preload, a file that does not fit in memory too),
/// and in the sink error counts.
pub fn replay_with(
    cfg: &Config,
    paths: &[PathBuf],
    sink: &mut AlertSink,
    flows: Option<&mut AlertSink>,
    opts: ReplayOptions,
) -> ReplaySummary {
    let input = Input::new(paths, opts.preload);
    let mut summary = match cfg.pipeline.worker_count() {
        0 | 1 => replay_one(cfg, &input, sink, flows),
        n => replay_workers(cfg, n, &input, sink, flows),
    };
    summary.preload_time_s = input.preload_s.get();
    summary
}

/// The capture files of a replay: read while they are processed, or read into memory
/// first ([`ReplayOptions::preload`]), once the pipeline is set up (its tables reserved).
struct Input<'a> {
    paths: &'a [PathBuf],
    preload: bool,
    /// Seconds spent preloading, once done.
    preload_s: std::cell::Cell<Option<f64>>,
}

impl<'a> Input<'a> {
    fn new(paths: &'a [PathBuf], preload: bool) -> Input<'a> {
        Input {
            paths,
            preload,
            preload_s: std::cell::Cell::new(None),
        }
    }

    /// Wall-clock seconds since `t0` spent processing: with preload, the reading of the
    /// files into memory left out.
    fn processing_seconds(&self, t0: Instant) -> f64 {
        (t0.elapsed().as_secs_f64() - self.preload_s.get().unwrap_or(0.0)).max(0.0)
    }

    /// Hand every frame to `f`, file by file in order; one report per file. With preload,
    /// every file is read into memory first (per file: its frames and the error that ended
    /// its reading early, if any).
    fn read(&self, mut f: impl FnMut(&Frame<'_>)) -> Vec<FileReport> {
        let loaded: Option<Vec<(Loaded, Option<String>)>> = self.preload.then(|| {
            let t0 = Instant::now();
            let v = self
                .paths
                .iter()
                .map(|path| match FileSource::open(path) {
                    Ok(mut src) => {
                        let (mem, res) = src.load();
                        (mem, res.err().map(|e| e.to_string()))
                    }
                    Err(e) => (Loaded::default(), Some(e.to_string())),
                })
                .collect();
            self.preload_s.set(Some(t0.elapsed().as_secs_f64()));
            v
        });
        let mut files = Vec::new();
        for (i, path) in self.paths.iter().enumerate() {
            let (mut packets, mut first, mut last) = (0u64, 0u64, 0u64);
            let mut count = |fr: Frame<'_>| {
                if packets == 0 {
                    first = fr.ts_ns;
                }
                packets += 1;
                last = last.max(fr.ts_ns);
                f(&fr);
            };
            let error = match loaded.as_ref().and_then(|l| l.get(i)) {
                Some((mem, error)) => {
                    mem.for_each(&mut count);
                    error.clone()
                }
                None => FileSource::open(path)
                    .and_then(|mut src| src.for_each(&mut count))
                    .err()
                    .map(|e| e.to_string()),
            };
            files.push(FileReport {
                path: path.display().to_string(),
                packets,
                capture_duration_s: last.saturating_sub(first) as f64 * 1e-9,
                error,
            });
        }
        files
    }
}

fn replay_workers(
    cfg: &Config,
    workers: usize,
    input: &Input<'_>,
    sink: &mut AlertSink,
    mut flows: Option<&mut AlertSink>,
) -> ReplaySummary {
    use crate::pipeline::workers::{self, PipelineOptions};
    let opts = PipelineOptions {
        workers,
        queue_batches: cfg.pipeline.worker_queue_batches,
        lossless: true,
        flow_records: flows.is_some(),
        sensor: sensor_name(cfg),
        timing: None,
    };
    let mut list = Vec::new();
    let t0 = Instant::now();
    let result = {
        let mut on_alert = |rec: AlertRecord| {
            note_alerts(&mut list, &rec);
            sink.write(&rec);
        };
        let mut on_flow = |rec: crate::flow::FlowRecord| {
            if let Some(fs) = flows.as_deref_mut() {
                fs.write_line(&rec.to_json());
            }
        };
        workers::run(cfg, &opts, &mut on_alert, &mut on_flow, |d| {
            input.read(|f| d.process(f))
        })
    };
    let (files, stats) = match result {
        Ok(r) => r,
        Err(e) => {
            // Nothing was read yet: the same replay on this thread alone gives the same
            // results, only slower.
            tracing::warn!(error = %e, workers, "cannot start the flow workers: replaying on one thread");
            return replay_one(cfg, input, sink, flows);
        }
    };
    sink.flush();
    if let Some(fs) = flows.as_deref_mut() {
        fs.flush();
    }
    let wall = input.processing_seconds(t0);
    ReplaySummary::new(&stats, files, list, sink, flows.as_deref(), wall)
}

fn replay_one(
    cfg: &Config,
    input: &Input<'_>,
    sink: &mut AlertSink,
    mut flows: Option<&mut AlertSink>,
) -> ReplaySummary {
    let mut engine = Engine::new(cfg, sensor_name(cfg)).with_lookahead();
    if flows.is_some() {
        engine = engine.with_flow_records();
    }
    let mut list = Vec::new();
    let t0 = Instant::now();
    let files = input.read(|f| {
        engine.process(f);
        for rec in engine.take_records() {
            note_alerts(&mut list, &rec);
            sink.write(&rec);
        }
        if let Some(fs) = flows.as_deref_mut() {
            for rec in engine.take_flow_records() {
                fs.write_line(&rec.to_json());
            }
        }
    });
    engine.finish();
    for rec in engine.take_records() {
        note_alerts(&mut list, &rec);
        sink.write(&rec);
    }
    sink.flush();
    if let Some(fs) = flows.as_deref_mut() {
        for rec in engine.take_flow_records() {
            fs.write_line(&rec.to_json());
        }
        fs.flush();
    }
    let wall = input.processing_seconds(t0);
    ReplaySummary::new(engine.stats(), files, list, sink, flows.as_deref(), wall)
}
