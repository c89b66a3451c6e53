//! Wiring: the `replay` (offline, as fast as possible) and `run` (daemon: live interface or
//! paced capture file, HTTP metrics, signals) jobs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use prometheus::IntCounter;
use serde::Serialize;

use crate::alert::AlertRecord;
use crate::capture::file::{FileSource, Pacer};
use crate::capture::live::{LiveBackend, LiveSource};
use crate::capture::{Frame, LinkType};
use crate::config::Config;
use crate::decode::{Layer, Reason};
use crate::detect::AlertKind;
use crate::export::http::HttpServer;
use crate::export::Metrics;
use crate::pipeline::{Engine, Stats, GTPU_MESSAGES, LINK_TYPES, TRANSPORTS};

/// Slowest accepted replay speed of `run --pcap` (`--speed`, `capture.replay_speed`): at
/// 0.001 one second of capture takes about 17 minutes.
pub const MIN_REPLAY_SPEED: f64 = 0.001;
/// Longest accepted `run --linger`, seconds (about 115 days).
pub const MAX_LINGER_S: f64 = 1e7;
/// Alert records queued per sink of the daemon before records for that sink are dropped.
pub const ALERT_QUEUE_RECORDS: usize = 65536;
/// How long the daemon waits at shutdown for standard output to take the queued records.
pub const STDOUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Minimum interval between two repeated warnings about the same sink problem.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// A sink writes its buffered records once this many bytes are pending.
const SINK_FLUSH_BYTES: usize = 64 * 1024;

/// Rate limiter for repeated warnings: the first occurrence is reported at once, later
/// ones at most every [`WARN_INTERVAL`], with the number of occurrences since the last report.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    count: u64,
}

impl Throttle {
    /// Records `n` occurrences; `Some(total since the last report)` when it is time to report.
    fn hit(&mut self, n: u64) -> Option<u64> {
        self.count += n;
        if self.last.is_some_and(|t| t.elapsed() < WARN_INTERVAL) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.count))
    }
}

enum Target {
    File { path: PathBuf, file: File },
    Stdout,
}

/// One alert sink (the JSON-lines file or standard output): buffers lines and writes them
/// with one call per batch, counting per record what was written and what was lost.
struct LineOut {
    target: Target,
    buf: Vec<u8>,
    pending: u64,
    written: u64,
    errors: u64,
    error_metric: Option<IntCounter>,
    warn: Throttle,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LineOut {
    fn new(target: Target) -> LineOut {
        LineOut {
            target,
            buf: Vec::new(),
            pending: 0,
            written: 0,
            errors: 0,
            error_metric: None,
            warn: Throttle::default(),
        }
    }

    /// `file` or `stdout` (log field and thread name).
    fn name(&self) -> &'static str {
        match self.target {
            Target::File { .. } => "file",
            Target::Stdout => "stdout",
        }
    }

    fn push(&mut self, line: &str) {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self.pending += 1;
        if self.buf.len() >= SINK_FLUSH_BYTES {
            self.flush();
        }
    }

    /// Writes the pending records. On an error all of them count as not written (part of
    /// the batch may have reached the sink).
    fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        let res = match &mut self.target {
            Target::File { file, .. } => file.write_all(&self.buf),
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&self.buf).and_then(|()| out.flush())
            }
        };
        let n = std::mem::take(&mut self.pending);
        self.buf.clear();
        match res {
            Ok(()) => self.written += n,
            Err(e) => {
                self.errors += n;
                if let Some(m) = &self.error_metric {
                    m.inc_by(n);
                }
                if let Some(lost) = self.warn.hit(n) {
                    match &self.target {
                        Target::File { path, .. } => tracing::error!(
                            sink = "file", file = %path.display(), error = %e, records_lost = lost,
                            "cannot write alert records"
                        ),
                        Target::Stdout => tracing::error!(
                            sink = "stdout", error = %e, records_lost = lost,
                            "cannot write alert records"
                        ),
                    }
                }
            }
        }
    }

    /// Log rotation: writes what is pending, then closes the file and opens its path again
    /// (append, created if missing). If that fails the old file stays in use.
    fn reopen(&mut self) {
        self.flush();
        if let Target::File { path, file } = &mut self.target {
            match open_append(path) {
                Ok(f) => {
                    *file = f;
                    tracing::info!(file = %path.display(), "reopened alert file");
                }
                Err(e) => tracing::error!(
                    file = %path.display(), error = %e,
                    "cannot reopen alert file; still writing to the file opened before"
                ),
            }
        }
    }
}

/// Where alert records go: an append-only JSON-lines file and/or standard output.
///
/// `replay` writes through it synchronously; `run` hands each sink to its own writer thread.
pub struct AlertSink {
    outs: Vec<LineOut>,
    /// Record writes that failed, per sink (a record lost on both sinks counts twice).
    pub errors: u64,
    /// Record writes that succeeded, per sink (a record written to both sinks counts twice).
    pub written: u64,
}

impl AlertSink {
    /// Open the sinks. `file` is created if missing and appended to. Errors: the file
    /// cannot be opened (names it).
    pub fn open(file: Option<&Path>, stdout: bool) -> anyhow::Result<AlertSink> {
        let mut outs = Vec::new();
        if let Some(p) = file {
            let f = open_append(p).with_context(|| format!("cannot open alert file {}", p.display()))?;
            outs.push(LineOut::new(Target::File {
                path: p.to_path_buf(),
                file: f,
            }));
        }
        if stdout {
            outs.push(LineOut::new(Target::Stdout));
        }
        Ok(AlertSink {
            outs,
            errors: 0,
            written: 0,
        })
    }

    fn sync_counts(&mut self) {
        self.errors = self.outs.iter().map(|o| o.errors).sum();
        self.written = self.outs.iter().map(|o| o.written).sum();
    }

    /// Write one record as a JSON line to every sink (buffered: see [`AlertSink::flush`]).
    pub fn write(&mut self, rec: &AlertRecord) {
        let line = rec.to_json();
        for o in &mut self.outs {
            o.push(&line);
        }
        self.sync_counts();
    }

    /// Write buffered records to every sink; `errors` and `written` are exact afterwards.
    pub fn flush(&mut self) {
        for o in &mut self.outs {
            o.flush();
        }
        self.sync_counts();
    }
}

/// Checks that what the configuration points at exists, so that `check-config` (run as
/// `ExecStartPre`) catches what would stop `run`: the capture file can be opened and has a
/// capture header, the interface exists, and the alert file's directory exists. Errors name
/// the key and the problem. Creates nothing.
pub fn preflight(cfg: &Config) -> anyhow::Result<()> {
    if !cfg.capture.pcap.is_empty() {
        FileSource::open(Path::new(&cfg.capture.pcap)).context("capture.pcap")?;
    }
    // Validation only requires > 0; a replay at 1e-300 would take practically forever.
    let speed = cfg.capture.replay_speed;
    if speed.is_nan() || speed < MIN_REPLAY_SPEED {
        bail!("capture.replay_speed: must be at least {MIN_REPLAY_SPEED}, got {speed}");
    }
    let iface = &cfg.capture.interface;
    if !iface.is_empty() {
        if iface.contains('/') || iface == "." || iface == ".." {
            bail!("capture.interface: not an interface name: {iface:?}");
        }
        if !Path::new("/sys/class/net").join(iface).exists() {
            bail!("capture.interface: no network interface named {iface:?} on this host");
        }
    }
    if !cfg.alerts.file.is_empty() {
        let p = Path::new(&cfg.alerts.file);
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!("alerts.file: directory {} does not exist", dir.display());
        }
        if p.is_dir() {
            bail!("alerts.file: {} is a directory", p.display());
        }
    }
    Ok(())
}

/// One file's outcome in a replay.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// Path as given.
    pub path: String,
    /// Packets read from it.
    pub packets: u64,
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
    /// Frames whose timestamp was earlier than the previous frame's (clamped to it).
    pub timestamps_backwards: u64,
    /// Flows created.
    pub flows: u64,
    /// Flows evicted at capacity.
    pub flow_evictions: u64,
    /// Flows ended by idle timeout.
    pub flows_expired: u64,
    /// Detector table entries evicted to make room, by kind.
    pub detector_evictions: std::collections::BTreeMap<String, u64>,
    /// Alerts opened, by kind.
    pub alerts: std::collections::BTreeMap<String, u64>,
    /// The alerts opened.
    pub alert_list: Vec<AlertLine>,
    /// Alert records written (per sink: a record written to two sinks counts twice).
    pub alert_records_written: u64,
    /// Alert records that could not be written (per sink); non-zero makes `replay` exit 3.
    pub alert_sink_errors: u64,
    /// Capture time span, seconds.
    pub capture_duration_s: f64,
    /// Wall-clock time of the replay, seconds.
    pub wall_time_s: f64,
    /// Packets per second of wall-clock time.
    pub packets_per_second: f64,
}

impl ReplaySummary {
    fn new(
        stats: &Stats,
        files: Vec<FileReport>,
        alert_list: Vec<AlertLine>,
        sink: &AlertSink,
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
            timestamps_backwards: stats.timestamps_backwards,
            flows: stats.flows_created,
            flow_evictions: stats.flows_evicted,
            flows_expired: stats.flows_expired,
            detector_evictions: AlertKind::ALL
                .iter()
                .zip(stats.detector_evictions)
                .map(|(k, n)| (k.as_str().to_string(), n))
                .collect(),
            alerts: AlertKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), stats.alerts_of(*k)))
                .collect(),
            alert_list,
            alert_records_written: sink.written,
            alert_sink_errors: sink.errors,
            capture_duration_s: stats.last_ts_ns.saturating_sub(stats.first_ts_ns) as f64 * 1e-9,
            wall_time_s: wall,
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
        s += &format!("gtpu      {}\n", kv(&self.gtpu));
        match self.decode_errors {
            0 => s += "errors    none\n",
            n => s += &format!("errors    {n}: {}\n", kv(&self.decode_errors_by_reason)),
        }
        if self.timestamps_backwards > 0 {
            s += &format!(
                "warning   {} frames had a timestamp earlier than the frame before (clamped; \
                 files are one stream, give them in capture order)\n",
                self.timestamps_backwards
            );
        }
        s += &format!(
            "flows     {} (expired {}, evicted {})\n",
            self.flows, self.flows_expired, self.flow_evictions
        );
        if self.detector_evictions.values().any(|n| *n > 0) {
            s += &format!("detector  evictions {}\n", kv(&self.detector_evictions));
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
        if self.alert_sink_errors > 0 {
            s += &format!(
                "records   {} alert records written, {} COULD NOT BE WRITTEN\n",
                self.alert_records_written, self.alert_sink_errors
            );
        }
        s += &format!(
            "time      {:.3} s wall, {:.0} packets/s\n",
            self.wall_time_s, self.packets_per_second
        );
        s
    }
}

fn sensor_name(cfg: &Config) -> String {
    if !cfg.alerts.sensor_name.is_empty() {
        return cfg.alerts.sensor_name.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "fivewatch".into())
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

/// Offline analysis of capture files, as fast as possible, in one engine (the files are
/// processed in order as one stream). Alert records go to `sink`. Errors in a file end that
/// file (reported in the summary) after its earlier packets were processed; the caller
/// decides the exit status from [`FileReport::error`] and
/// [`ReplaySummary::alert_sink_errors`].
pub fn replay(cfg: &Config, paths: &[PathBuf], sink: &mut AlertSink) -> ReplaySummary {
    let mut engine = Engine::new(cfg, sensor_name(cfg));
    let mut files = Vec::new();
    let mut list = Vec::new();
    let t0 = Instant::now();
    for path in paths {
        let mut packets = 0u64;
        let res = FileSource::open(path).and_then(|mut src| {
            src.for_each(|f| {
                packets += 1;
                engine.process(&f);
                for rec in engine.take_records() {
                    note_alerts(&mut list, &rec);
                    sink.write(&rec);
                }
            })
        });
        files.push(FileReport {
            path: path.display().to_string(),
            packets,
            error: res.err().map(|e| e.to_string()),
        });
    }
    engine.finish();
    for rec in engine.take_records() {
        note_alerts(&mut list, &rec);
        sink.write(&rec);
    }
    sink.flush();
    let wall = t0.elapsed().as_secs_f64();
    ReplaySummary::new(engine.stats(), files, list, sink, wall)
}

/// Where `run` reads frames from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A live interface.
    Interface(String),
    /// A capture file replayed at `speed` times the recorded rate, optionally looped.
    File {
        /// Path.
        path: PathBuf,
        /// 1.0 = recorded speed.
        speed: f64,
        /// Start again at the end.
        looped: bool,
    },
}

/// Options of `run` after flags were merged over the config file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Frame source.
    pub source: Source,
    /// Metrics listen address (None: no HTTP server).
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds to keep serving `/metrics` after a (non-looped) file ends; None = until a
    /// signal arrives.
    pub linger: Option<f64>,
}

const BATCH: usize = 256;

/// A batch of frames copied out of the capture buffer, recycled between capture and worker.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    frames: Vec<(u64, u32, u32, u32, u32)>, // ts_ns, linktype, wire_len, offset, len
}

impl Batch {
    fn push(&mut self, f: &Frame<'_>) {
        let off = self.data.len() as u32;
        self.data.extend_from_slice(f.data);
        self.frames
            .push((f.ts_ns, f.linktype.0, f.wire_len, off, f.data.len() as u32));
    }

    fn clear(&mut self) {
        self.data.clear();
        self.frames.clear();
    }
}

/// The daemon's side of one sink: a bounded queue to the sink's writer thread. The worker
/// never blocks on it: a full queue drops the record for this sink only (counted).
struct SinkQueue {
    name: &'static str,
    tx: Option<crossbeam_channel::Sender<Arc<str>>>,
    thread: Option<JoinHandle<LineOut>>,
    /// Records the writer thread has finished with (written or failed).
    handled: Arc<AtomicU64>,
    queued: u64,
    dropped: u64,
    error_metric: IntCounter,
    warn: Throttle,
}

impl SinkQueue {
    /// Starts the writer thread of `out`. `reopen` (set by SIGHUP) makes a file sink reopen
    /// its path.
    fn start(mut out: LineOut, error_metric: IntCounter, reopen: Arc<AtomicBool>) -> std::io::Result<SinkQueue> {
        let name = out.name();
        out.error_metric = Some(error_metric.clone());
        let (tx, rx) = crossbeam_channel::bounded::<Arc<str>>(ALERT_QUEUE_RECORDS);
        let handled = Arc::new(AtomicU64::new(0));
        let done = Arc::clone(&handled);
        let is_file = matches!(out.target, Target::File { .. });
        let thread = std::thread::Builder::new()
            .name(format!("fivewatch-alerts-{name}"))
            .spawn(move || {
                loop {
                    match rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(line) => {
                            out.push(&line);
                            let mut n = 1u64;
                            // Take what is queued (bounded, so that a reopen is not held off).
                            while n < 4096 {
                                let Ok(line) = rx.try_recv() else { break };
                                out.push(&line);
                                n += 1;
                            }
                            out.flush();
                            done.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                    }
                    if is_file && reopen.swap(false, Ordering::Relaxed) {
                        out.reopen();
                    }
                }
                out.flush();
                out
            })?;
        Ok(SinkQueue {
            name,
            tx: Some(tx),
            thread: Some(thread),
            handled,
            queued: 0,
            dropped: 0,
            error_metric,
            warn: Throttle::default(),
        })
    }

    /// Queues one record without blocking.
    fn send(&mut self, line: &Arc<str>) {
        let Some(tx) = &self.tx else { return };
        let why = match tx.try_send(Arc::clone(line)) {
            Ok(()) => {
                self.queued += 1;
                return;
            }
            Err(crossbeam_channel::TrySendError::Full(_)) => "queue full (the sink is not keeping up or is blocked)",
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => "writer thread stopped",
        };
        self.dropped += 1;
        self.error_metric.inc();
        if let Some(n) = self.warn.hit(1) {
            tracing::warn!(
                sink = self.name,
                records_dropped = n,
                reason = why,
                "alert records dropped"
            );
        }
    }

    /// Closes the queue and waits for the writer: without limit for the file (its records
    /// are flushed), at most [`STDOUT_DRAIN_TIMEOUT`] for standard output (a blocked pipe
    /// must not keep the daemon alive; what it did not take is abandoned and logged).
    fn close(mut self) {
        drop(self.tx.take());
        let Some(thread) = self.thread.take() else { return };
        if self.name == "stdout" {
            let deadline = Instant::now() + STDOUT_DRAIN_TIMEOUT;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !thread.is_finished() {
                let abandoned = self.queued.saturating_sub(self.handled.load(Ordering::Relaxed));
                tracing::warn!(
                    sink = "stdout",
                    records_abandoned = abandoned,
                    records_dropped = self.dropped,
                    "standard output is blocked; exiting without waiting for it"
                );
                return;
            }
        }
        match thread.join() {
            Ok(out) => tracing::info!(
                sink = self.name,
                records_written = out.written,
                write_errors = out.errors,
                records_dropped = self.dropped,
                "alert sink closed"
            ),
            Err(_) => tracing::error!(sink = self.name, "alert writer thread panicked"),
        }
    }
}

/// Logs (once per SIGHUP) that SIGHUP only reopens the alert file.
fn note_sighup(flag: &AtomicBool, has_file: bool) {
    if flag.swap(false, Ordering::Relaxed) {
        if has_file {
            tracing::info!(
                "SIGHUP: reopening the alert file (log rotation); reloading the configuration is not supported yet (planned)"
            );
        } else {
            tracing::info!(
                "SIGHUP: no alert file open (none configured, or no more records are written); reloading the configuration is not supported yet (planned)"
            );
        }
    }
}

/// The daemon: capture thread → bounded queue → worker thread (engine) → one bounded queue
/// and writer thread per alert sink, with `/metrics` served over HTTP. Returns after
/// SIGINT/SIGTERM (or when a capture file ends and the linger time is over), having
/// processed every queued frame and written every alert to the file (standard output gets
/// [`STDOUT_DRAIN_TIMEOUT`] to take its records). SIGHUP reopens the alert file.
pub fn run(cfg: &Config, opts: &RunOptions, sink: AlertSink) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install signal handler")?;
    }
    // SIGHUP: the file writer reopens the alert file; the worker logs it.
    let reopen = Arc::new(AtomicBool::new(false));
    let hup_note = Arc::new(AtomicBool::new(false));
    for flag in [&reopen, &hup_note] {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(flag))
            .context("cannot install signal handler")?;
    }
    let metrics = Metrics::new();
    let shared = Arc::new(Mutex::new(metrics.clone()));
    let server = match opts.metrics_listen {
        Some(addr) => {
            let m = Arc::clone(&shared);
            let render = Arc::new(move || m.lock().map(|m| m.render()).unwrap_or_default());
            let s = HttpServer::start(addr, render).with_context(|| format!("cannot serve metrics on {addr}"))?;
            tracing::info!(address = %s.local_addr, "serving /metrics");
            Some(s)
        }
        None => None,
    };

    let has_file = sink.outs.iter().any(|o| matches!(o.target, Target::File { .. }));
    let mut sinks = Vec::new();
    for out in sink.outs {
        sinks.push(
            SinkQueue::start(out, metrics.alert_sink_errors.clone(), Arc::clone(&reopen))
                .context("cannot start alert writer thread")?,
        );
    }

    let (full_tx, full_rx) = crossbeam_channel::bounded::<Batch>(cfg.capture.queue_batches);
    let (free_tx, free_rx) = crossbeam_channel::bounded::<Batch>(cfg.capture.queue_batches + 2);
    let engine = Engine::new(cfg, sensor_name(cfg)).with_timing(metrics.processing_seconds.clone());

    let worker_metrics = Arc::clone(&shared);
    let live = matches!(opts.source, Source::Interface(_));
    let worker_hup = Arc::clone(&hup_note);
    let worker = std::thread::Builder::new()
        .name("fivewatch-worker".into())
        .spawn(move || {
            let mut engine = engine;
            let mut sinks = sinks;
            let mut records = 0u64;
            let mut last_publish = Instant::now();
            let publish = |engine: &mut Engine| {
                engine.refresh_stats();
                if let Ok(mut m) = worker_metrics.lock() {
                    m.publish(engine.stats());
                }
            };
            let mut emit = |engine: &mut Engine| {
                for rec in engine.take_records() {
                    let line: Arc<str> = rec.to_json().into();
                    for s in &mut sinks {
                        s.send(&line);
                    }
                    records += 1;
                }
            };
            loop {
                match full_rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(mut b) => {
                        for &(ts, lt, wire, off, len) in &b.frames {
                            let data = b.data.get(off as usize..(off + len) as usize).unwrap_or(&[]);
                            engine.process(&Frame {
                                ts_ns: ts,
                                linktype: LinkType(lt),
                                data,
                                wire_len: wire,
                            });
                        }
                        b.clear();
                        let _ = free_tx.try_send(b);
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        // A quiet live link: let the wall clock (which live timestamps follow)
                        // drive ticks, so open alerts still resolve. Replayed files keep their
                        // own capture time.
                        if live {
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_nanos() as u64);
                            engine.advance_to(now);
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
                emit(&mut engine);
                note_sighup(&worker_hup, has_file);
                if last_publish.elapsed() >= Duration::from_millis(500) {
                    publish(&mut engine);
                    last_publish = Instant::now();
                }
            }
            engine.finish();
            emit(&mut engine);
            publish(&mut engine);
            let s = engine.stats();
            tracing::info!(
                packets = s.packets,
                bytes = s.bytes,
                decode_errors = s.decode_errors_total(),
                flows = s.flows_created,
                syn_flood_alerts = s.alerts_of(AlertKind::SynFlood),
                port_scan_alerts = s.alerts_of(AlertKind::PortScan),
                alert_records = records,
                "worker finished"
            );
            sinks
        })?;

    let capture_result = capture_loop(cfg, opts, &stop, &full_tx, &free_rx, &shared);
    drop(full_tx);
    match worker.join() {
        // The file writer is joined (flushed); standard output gets a bounded wait.
        Ok(sinks) => sinks.into_iter().for_each(SinkQueue::close),
        Err(_) => tracing::error!("worker thread panicked"),
    }
    // Keep /metrics up after a capture file ends so that it can still be scraped; without
    // a metrics server there is nothing to wait for.
    if capture_result.is_ok() && !stop.load(Ordering::Relaxed) && server.is_some() {
        if let Source::File { .. } = opts.source {
            linger(opts.linger, &stop, &hup_note);
        }
    }
    if stop.load(Ordering::Relaxed) {
        tracing::info!("signal received: stopped capture, processed queued frames and wrote alerts");
    }
    if let Some(s) = server {
        s.shutdown();
    }
    capture_result
}

fn linger(secs: Option<f64>, stop: &AtomicBool, hup_note: &AtomicBool) {
    match secs {
        Some(s) => tracing::info!(
            seconds = s,
            "capture file finished; serving /metrics until the linger time is over"
        ),
        None => tracing::info!("capture file finished; serving /metrics until interrupted (Ctrl-C / SIGTERM)"),
    }
    // A linger too long to represent (main.rs rejects those) waits for a signal.
    let end = secs
        .and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok())
        .and_then(|d| Instant::now().checked_add(d));
    while !stop.load(Ordering::Relaxed) && end.is_none_or(|e| Instant::now() < e) {
        // The alert writers are closed by now: nothing is written any more.
        note_sighup(hup_note, false);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kernel packet/drop counters of a live source, published as increases since the last call.
#[derive(Default)]
struct KernelCounters {
    packets: u64,
    drops: u64,
}

impl KernelCounters {
    fn publish(&mut self, src: &mut LiveSource, metrics: &Mutex<Metrics>) {
        let st = src.stats();
        if !st.supported {
            return;
        }
        if let Ok(m) = metrics.lock() {
            m.kernel_stats_supported.set(1);
            m.kernel_packets.inc_by(st.kernel_packets.saturating_sub(self.packets));
            m.kernel_drops.inc_by(st.kernel_drops.saturating_sub(self.drops));
        }
        (self.packets, self.drops) = (st.kernel_packets, st.kernel_drops);
    }
}

fn capture_loop(
    cfg: &Config,
    opts: &RunOptions,
    stop: &AtomicBool,
    full_tx: &crossbeam_channel::Sender<Batch>,
    free_rx: &crossbeam_channel::Receiver<Batch>,
    metrics: &Mutex<Metrics>,
) -> anyhow::Result<()> {
    let take_batch = || free_rx.try_recv().unwrap_or_default();
    match &opts.source {
        Source::Interface(name) => {
            let backend = if cfg.capture.backend == "pnet" {
                LiveBackend::Pnet
            } else {
                LiveBackend::AfPacket
            };
            let mut src = LiveSource::open(name, backend, cfg.capture.promiscuous, cfg.capture.socket_buffer_bytes)?;
            tracing::info!(interface = %name, backend = ?backend, "capturing");
            let mut kernel = KernelCounters::default();
            let mut last_stats = Instant::now();
            let mut batch = take_batch();
            let mut run = || -> anyhow::Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    // A link that goes down is waited for inside `recv` (logged once down and
                    // once up again); an interface that was deleted and does not come back
                    // within a few seconds ends the capture with an error.
                    src.recv(Duration::from_millis(100), |f| batch.push(&f))?;
                    if !batch.frames.is_empty() {
                        let n = batch.frames.len() as u64;
                        match full_tx.try_send(std::mem::replace(&mut batch, take_batch())) {
                            Ok(()) => {}
                            Err(crossbeam_channel::TrySendError::Full(mut b)) => {
                                // The worker is behind: drop and count, never block capture.
                                if let Ok(m) = metrics.lock() {
                                    m.queue_drops.inc_by(n);
                                }
                                b.clear();
                                batch = b;
                            }
                            Err(crossbeam_channel::TrySendError::Disconnected(_)) => bail!("worker thread stopped"),
                        }
                    }
                    if last_stats.elapsed() >= Duration::from_secs(1) {
                        kernel.publish(&mut src, metrics);
                        last_stats = Instant::now();
                    }
                }
                Ok(())
            };
            let res = run();
            // The last partial second of kernel counters, also when capture failed.
            kernel.publish(&mut src, metrics);
            if let Ok(m) = metrics.lock() {
                tracing::info!(
                    interface = %name,
                    kernel_packets = m.kernel_packets.get(),
                    kernel_drops = m.kernel_drops.get(),
                    "capture stopped"
                );
            }
            res
        }
        Source::File { path, speed, looped } => {
            // Each pass of a looped replay is shifted to start 1 s after the previous one
            // ended, so capture time keeps moving forward; one pacer paces the shifted
            // timestamps across passes, so the gap between passes is waited for too.
            let mut shift = 0u64;
            let mut pacer = Pacer::new(*speed);
            loop {
                let (mut first, mut last, mut frames) = (u64::MAX, 0u64, 0u64);
                let mut batch = take_batch();
                let mut last_send = Instant::now();
                let mut src = FileSource::open(path)?;
                let res = src.for_each(|f| {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let ts = f.ts_ns.saturating_add(shift);
                    if !pacer.wait_unless(ts, stop) {
                        return;
                    }
                    frames += 1;
                    first = first.min(f.ts_ns);
                    last = last.max(f.ts_ns);
                    batch.push(&Frame { ts_ns: ts, ..f });
                    // Paced replay sends small batches often so alerts appear in real time.
                    if batch.frames.len() >= BATCH || last_send.elapsed() >= Duration::from_millis(50) {
                        let b = std::mem::replace(&mut batch, take_batch());
                        let _ = full_tx.send(b);
                        last_send = Instant::now();
                    }
                });
                if !batch.frames.is_empty() {
                    let _ = full_tx.send(batch);
                }
                res?;
                if !*looped || stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if frames == 0 {
                    bail!("capture file {} has no packets; cannot loop", path.display());
                }
                shift = shift.saturating_add(last.saturating_sub(first.min(last)).saturating_add(1_000_000_000));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_reports_first_then_accumulates() {
        let mut t = Throttle::default();
        assert_eq!(t.hit(1), Some(1));
        assert_eq!(t.hit(2), None);
        assert_eq!(t.hit(3), None);
        // Pretend the interval has passed: the report carries what was suppressed since.
        t.last = Instant::now().checked_sub(WARN_INTERVAL);
        assert_eq!(t.hit(1), Some(6));
    }

    #[test]
    fn line_out_counts_records_not_bytes() {
        let mut full = LineOut::new(Target::File {
            path: "/dev/full".into(),
            file: open_append(Path::new("/dev/full")).unwrap(),
        });
        for _ in 0..3 {
            full.push("{\"a\":1}");
        }
        full.flush();
        assert_eq!((full.written, full.errors), (0, 3));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut out = LineOut::new(Target::File {
            path: path.clone(),
            file: open_append(&path).unwrap(),
        });
        out.push("one");
        out.push("two");
        out.flush();
        // Rotation: rename, reopen; later lines go to a new file of the same name.
        let rotated = dir.path().join("a.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        out.push("three");
        out.reopen();
        out.push("four");
        out.flush();
        assert_eq!((out.written, out.errors), (4, 0));
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\nthree\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "four\n");
    }
}
