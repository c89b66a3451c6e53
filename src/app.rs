//! Wiring: the `replay` (offline, as fast as possible) and `run` (daemon: live interface or
//! paced capture file, HTTP metrics, signals) jobs.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
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

/// Where alert records go: an append-only JSON-lines file and/or standard output.
pub struct AlertSink {
    file: Option<(PathBuf, BufWriter<File>)>,
    stdout: bool,
    /// Records that could not be written.
    pub errors: u64,
    /// Records written.
    pub written: u64,
}

impl AlertSink {
    /// Open the sinks. `file` is created if missing and appended to. Errors: the file
    /// cannot be opened (names it).
    pub fn open(file: Option<&Path>, stdout: bool) -> anyhow::Result<AlertSink> {
        let file = match file {
            Some(p) => {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open alert file {}", p.display()))?;
                Some((p.to_path_buf(), BufWriter::new(f)))
            }
            None => None,
        };
        Ok(AlertSink {
            file,
            stdout,
            errors: 0,
            written: 0,
        })
    }

    /// Write one record as a JSON line to every sink.
    pub fn write(&mut self, rec: &AlertRecord) {
        let line = rec.to_json();
        if let Some((path, w)) = &mut self.file {
            if let Err(e) = writeln!(w, "{line}") {
                self.errors += 1;
                tracing::error!(file = %path.display(), error = %e, "cannot write alert");
            }
        }
        if self.stdout {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{line}").is_err() {
                self.errors += 1;
            }
        }
        self.written += 1;
    }

    /// Flush buffered records to the file (and stdout).
    pub fn flush(&mut self) {
        if let Some((path, w)) = &mut self.file {
            if let Err(e) = w.flush() {
                self.errors += 1;
                tracing::error!(file = %path.display(), error = %e, "cannot flush alert file");
            }
        }
        if self.stdout {
            let _ = std::io::stdout().flush();
        }
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
    /// Alerts opened, by kind.
    pub alerts: std::collections::BTreeMap<String, u64>,
    /// The alerts opened.
    pub alert_list: Vec<AlertLine>,
    /// Capture time span, seconds.
    pub capture_duration_s: f64,
    /// Wall-clock time of the replay, seconds.
    pub wall_time_s: f64,
    /// Packets per second of wall-clock time.
    pub packets_per_second: f64,
}

impl ReplaySummary {
    fn new(stats: &Stats, files: Vec<FileReport>, alert_list: Vec<AlertLine>, wall: f64) -> ReplaySummary {
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
            alerts: AlertKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), stats.alerts_of(*k)))
                .collect(),
            alert_list,
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
        s += &format!("flows     {} (evicted {})\n", self.flows, self.flow_evictions);
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
/// decides the exit status from [`FileReport::error`].
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
    ReplaySummary::new(engine.stats(), files, list, wall)
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

/// The daemon: capture thread → bounded queue → worker thread (engine) → alert sink,
/// with `/metrics` served over HTTP. Returns after SIGINT/SIGTERM (or when a capture file
/// ends and the linger time is over), having processed every queued frame and written
/// every alert.
pub fn run(cfg: &Config, opts: &RunOptions, mut sink: AlertSink) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install signal handler")?;
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

    let (full_tx, full_rx) = crossbeam_channel::bounded::<Batch>(cfg.capture.queue_batches);
    let (free_tx, free_rx) = crossbeam_channel::bounded::<Batch>(cfg.capture.queue_batches + 2);
    let engine = Engine::new(cfg, sensor_name(cfg)).with_timing(metrics.processing_seconds.clone());

    let worker_metrics = Arc::clone(&shared);
    let live = matches!(opts.source, Source::Interface(_));
    let worker = std::thread::Builder::new()
        .name("fivewatch-worker".into())
        .spawn(move || {
            let mut engine = engine;
            let mut last_publish = Instant::now();
            let publish = |engine: &mut Engine, sink: &mut AlertSink| {
                engine.refresh_stats();
                if let Ok(mut m) = worker_metrics.lock() {
                    m.publish(engine.stats());
                    let errs = sink.errors;
                    let already = m.alert_sink_errors.get();
                    if errs > already {
                        m.alert_sink_errors.inc_by(errs - already);
                    }
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
                let mut wrote = false;
                for rec in engine.take_records() {
                    sink.write(&rec);
                    wrote = true;
                }
                if wrote {
                    sink.flush();
                }
                if last_publish.elapsed() >= Duration::from_millis(500) {
                    publish(&mut engine, &mut sink);
                    last_publish = Instant::now();
                }
            }
            engine.finish();
            for rec in engine.take_records() {
                sink.write(&rec);
            }
            sink.flush();
            publish(&mut engine, &mut sink);
            let s = engine.stats();
            tracing::info!(
                packets = s.packets,
                bytes = s.bytes,
                decode_errors = s.decode_errors_total(),
                flows = s.flows_created,
                syn_flood_alerts = s.alerts_of(AlertKind::SynFlood),
                port_scan_alerts = s.alerts_of(AlertKind::PortScan),
                alert_records = sink.written,
                "worker finished"
            );
        })?;

    let capture_result = capture_loop(cfg, opts, &stop, &full_tx, &free_rx, &shared);
    drop(full_tx);
    if worker.join().is_err() {
        tracing::error!("worker thread panicked");
    }
    // Keep /metrics up after a capture file ends so that it can still be scraped; without
    // a metrics server there is nothing to wait for.
    if capture_result.is_ok() && !stop.load(Ordering::Relaxed) && server.is_some() {
        if let Source::File { .. } = opts.source {
            linger(opts.linger, &stop);
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

fn linger(secs: Option<f64>, stop: &AtomicBool) {
    match secs {
        Some(s) => tracing::info!(
            seconds = s,
            "capture file finished; serving /metrics until the linger time is over"
        ),
        None => tracing::info!("capture file finished; serving /metrics until interrupted (Ctrl-C / SIGTERM)"),
    }
    let end = secs.map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    while !stop.load(Ordering::Relaxed) && end.is_none_or(|e| Instant::now() < e) {
        std::thread::sleep(Duration::from_millis(100));
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
            let mut last_stats = Instant::now();
            let (mut seen_pkts, mut seen_drops) = (0u64, 0u64);
            let mut batch = take_batch();
            while !stop.load(Ordering::Relaxed) {
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
                    let st = src.stats();
                    if st.supported {
                        if let Ok(m) = metrics.lock() {
                            m.kernel_stats_supported.set(1);
                            m.kernel_packets.inc_by(st.kernel_packets - seen_pkts);
                            m.kernel_drops.inc_by(st.kernel_drops - seen_drops);
                        }
                        (seen_pkts, seen_drops) = (st.kernel_packets, st.kernel_drops);
                    }
                    last_stats = Instant::now();
                }
            }
            Ok(())
        }
        Source::File { path, speed, looped } => {
            // Each pass of a looped replay is shifted to start 1 s after the previous one
            // ended, so capture time keeps moving forward.
            let mut shift = 0u64;
            loop {
                let (mut first, mut last) = (u64::MAX, 0u64);
                let mut pacer = Pacer::new(*speed);
                let mut batch = take_batch();
                let mut last_send = Instant::now();
                let mut src = FileSource::open(path)?;
                let res = src.for_each(|f| {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    pacer.wait(f.ts_ns);
                    first = first.min(f.ts_ns);
                    last = last.max(f.ts_ns);
                    batch.push(&Frame {
                        ts_ns: f.ts_ns.saturating_add(shift),
                        ..f
                    });
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
                shift = shift.saturating_add(last.saturating_sub(first.min(last)) + 1_000_000_000);
            }
        }
    }
}
