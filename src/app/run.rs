//! `fivewatch run`: capture thread → bounded queue → worker → alert sinks, with the
//! metrics server, signals and linger.

use super::sink::{open_append, LineOut, SinkQueue, Target};
use super::*;
use crate::pipeline::workers::{self, Dispatcher, PipelineOptions};

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
    // SIGHUP: the file writers reopen the alert file and the flow-record file (each has its
    // own flag, since a writer clears the flag it acts on); the worker logs it.
    let reopen = Arc::new(AtomicBool::new(false));
    let reopen_flows = Arc::new(AtomicBool::new(false));
    let hup_note = Arc::new(AtomicBool::new(false));
    for flag in [&reopen, &reopen_flows, &hup_note] {
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

    // Flow records (flow.records_file): a writer thread of their own, like the alert file.
    let mut flow_sink = None;
    let mut engine = Engine::new(cfg, sensor_name(cfg)).with_timing(metrics.processing_seconds.clone());
    if !cfg.flow.records_file.is_empty() {
        let path = PathBuf::from(&cfg.flow.records_file);
        let file = open_append(&path).with_context(|| format!("cannot open flow records file {}", path.display()))?;
        let out = LineOut::new(Target::File { path, file });
        flow_sink = Some(
            SinkQueue::start(out, metrics.alert_sink_errors.clone(), Arc::clone(&reopen_flows))
                .context("cannot start flow record writer thread")?,
        );
        engine = engine.with_flow_records();
    }

    let live = matches!(opts.source, Source::Interface(_));
    let workers = cfg.pipeline.worker_count();
    let capture_result = if workers > 1 {
        let popts = PipelineOptions {
            workers,
            queue_batches: cfg.pipeline.worker_queue_batches,
            lossless: !live,
            flow_records: flow_sink.is_some(),
            sensor: sensor_name(cfg),
            timing: Some(metrics.processing_seconds.clone()),
        };
        let hup = (hup_note.as_ref(), has_file);
        pipeline_capture(cfg, opts, &popts, &stop, sinks, flow_sink, &shared, hup)
    } else {
        one_engine_capture(
            cfg,
            opts,
            &stop,
            engine,
            sinks,
            flow_sink,
            &shared,
            (Arc::clone(&hup_note), has_file),
        )
    };
    // Keep /metrics up after a capture file ends so that it can still be scraped; without
    // a metrics server there is nothing to wait for.
    // A damaged file ends the replay at the damage (everything before it was processed):
    // say so now, and still serve what was counted for the linger time; `run` then exits
    // with the error.
    if !stop.load(Ordering::Relaxed) && server.is_some() {
        if let Source::File { .. } = opts.source {
            if let Err(e) = &capture_result {
                tracing::error!(error = %format!("{e:#}"), "capture file ended early");
            }
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

/// One engine: capture thread → bounded queue → worker thread (the engine) → sinks.
#[allow(clippy::too_many_arguments)]
fn one_engine_capture(
    cfg: &Config,
    opts: &RunOptions,
    stop: &AtomicBool,
    engine: Engine,
    sinks: Vec<SinkQueue>,
    flow_sink: Option<SinkQueue>,
    shared: &Arc<Mutex<Metrics>>,
    (worker_hup, has_file): (Arc<AtomicBool>, bool),
) -> anyhow::Result<()> {
    let (full_tx, full_rx) = crossbeam_channel::bounded::<Batch>(cfg.capture.queue_batches);
    let (free_tx, free_rx) = crossbeam_channel::bounded::<Batch>(cfg.capture.queue_batches + 2);

    let worker_metrics = Arc::clone(shared);
    let live = matches!(opts.source, Source::Interface(_));
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
            let mut flow_sink = flow_sink;
            let mut emit = |engine: &mut Engine| {
                for rec in engine.take_records() {
                    let line: Arc<str> = rec.to_json().into();
                    for s in &mut sinks {
                        s.send(&line);
                    }
                    records += 1;
                }
                for rec in engine.take_flow_records() {
                    if let Some(fs) = &mut flow_sink {
                        fs.send(&rec.to_json().into());
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
                            engine.advance_to(crate::time::now_ns());
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
            sinks.extend(flow_sink);
            publish(&mut engine);
            log_finished(engine.stats(), 1, records);
            sinks
        })?;

    let mut frames = QueueFrames {
        batch: Batch::default(),
        full_tx: &full_tx,
        free_rx: &free_rx,
        metrics: shared,
    };
    let capture_result = capture_loop(cfg, opts, stop, &mut frames, shared);
    drop(full_tx);
    match worker.join() {
        // The file writer is joined (flushed); standard output gets a bounded wait.
        Ok(sinks) => sinks.into_iter().for_each(SinkQueue::close),
        Err(_) => tracing::error!("worker thread panicked"),
    }
    capture_result
}

/// Several flow workers: the capture thread decodes every frame where the capture left it
/// (the ring, for live capture) and dispatches it (see [`crate::pipeline::workers`]); the
/// detector thread writes alert and flow records to the sinks, which are closed before this
/// returns.
#[allow(clippy::too_many_arguments)]
fn pipeline_capture(
    cfg: &Config,
    opts: &RunOptions,
    popts: &PipelineOptions,
    stop: &AtomicBool,
    mut sinks: Vec<SinkQueue>,
    mut flow_sink: Option<SinkQueue>,
    metrics: &Mutex<Metrics>,
    (hup, has_file): (&AtomicBool, bool),
) -> anyhow::Result<()> {
    let mut records = 0u64;
    let mut on_alert = |rec: AlertRecord| {
        let line: Arc<str> = rec.to_json().into();
        for s in &mut sinks {
            s.send(&line);
        }
        records += 1;
    };
    let mut on_flow = |rec: crate::flow::FlowRecord| {
        if let Some(fs) = &mut flow_sink {
            fs.send(&rec.to_json().into());
        }
    };
    let piped = workers::run(cfg, popts, &mut on_alert, &mut on_flow, |d| {
        let board = Arc::clone(d.board());
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("fivewatch-house".into())
                .spawn_scoped(scope, || housekeeping(&board, &done, metrics, (hup, has_file)));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the metrics thread: /metrics is updated at the end only");
            }
            let mut frames = DispatchFrames {
                d,
                pending: 0,
                live: matches!(opts.source, Source::Interface(_)),
                last_publish: Instant::now(),
            };
            let res = capture_loop(cfg, opts, stop, &mut frames, metrics);
            let _ = frames.hand_over(false);
            frames.d.publish();
            done.store(true, Ordering::Relaxed);
            res
        })
    });
    let (res, s) = match piped {
        Ok(r) => r,
        Err(e) => {
            sinks.into_iter().chain(flow_sink).for_each(SinkQueue::close);
            return Err(anyhow::anyhow!(e).context(format!(
                "cannot run {} flow workers (set pipeline.workers / --workers lower)",
                popts.workers
            )));
        }
    };
    if let Ok(mut m) = metrics.lock() {
        m.publish(&s);
    }
    log_finished(&s, popts.workers, records);
    // The file writer is joined (flushed); standard output gets a bounded wait.
    sinks.into_iter().chain(flow_sink).for_each(SinkQueue::close);
    res
}

/// The end-of-run log line: what the engine or the workers processed.
fn log_finished(s: &crate::pipeline::Stats, workers: usize, alert_records: u64) {
    tracing::info!(
        workers,
        packets = s.packets,
        bytes = s.bytes,
        decode_errors = s.decode_errors_total(),
        flows = s.flows_created,
        syn_flood_alerts = s.alerts_of(AlertKind::SynFlood),
        port_scan_alerts = s.alerts_of(AlertKind::PortScan),
        alert_records,
        worker_queue_drops = s.worker_queue_drops.iter().sum::<u64>(),
        "workers finished"
    );
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

/// Kernel packet/drop/ring-full counters of a live source, published as increases since the
/// last call.
#[derive(Default)]
struct KernelCounters {
    packets: u64,
    drops: u64,
    freeze_queue: u64,
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
            m.kernel_freeze_queue
                .inc_by(st.freeze_queue.saturating_sub(self.freeze_queue));
        }
        (self.packets, self.drops, self.freeze_queue) = (st.kernel_packets, st.kernel_drops, st.freeze_queue);
    }
}

/// Where the capture loop puts frames: a queue to the engine thread (one worker), or the
/// pipeline's dispatcher on the capture thread itself (several workers: frames are decoded
/// straight from the capture ring, without a copy).
trait Frames {
    /// One captured frame.
    fn push(&mut self, f: &Frame<'_>);
    /// Frames pushed since the last hand-over.
    fn pending(&self) -> usize;
    /// Hand what was pushed to the workers. `live`: never block (drop and count instead).
    fn hand_over(&mut self, live: bool) -> anyhow::Result<()>;
    /// A live capture call returned (with or without frames): wall-clock duties.
    fn idle(&mut self) {}
}

/// Frames copied into batches for the engine thread.
struct QueueFrames<'a> {
    batch: Batch,
    full_tx: &'a crossbeam_channel::Sender<Batch>,
    free_rx: &'a crossbeam_channel::Receiver<Batch>,
    metrics: &'a Mutex<Metrics>,
}

impl Frames for QueueFrames<'_> {
    fn push(&mut self, f: &Frame<'_>) {
        self.batch.push(f);
    }

    fn pending(&self) -> usize {
        self.batch.frames.len()
    }

    fn hand_over(&mut self, live: bool) -> anyhow::Result<()> {
        if self.batch.frames.is_empty() {
            return Ok(());
        }
        let next = self.free_rx.try_recv().unwrap_or_default();
        let b = std::mem::replace(&mut self.batch, next);
        if !live {
            let _ = self.full_tx.send(b);
            return Ok(());
        }
        let n = b.frames.len() as u64;
        match self.full_tx.try_send(b) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Full(mut b)) => {
                // The worker is behind: drop and count, never block capture.
                if let Ok(m) = self.metrics.lock() {
                    m.queue_drops.inc_by(n);
                }
                b.clear();
                self.batch = b;
                Ok(())
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => bail!("worker thread stopped"),
        }
    }
}

/// Frames decoded and dispatched on the capture thread (several flow workers).
struct DispatchFrames<'a> {
    d: &'a mut Dispatcher,
    pending: usize,
    live: bool,
    last_publish: Instant,
}

/// Every 100 ms until `done`: log SIGHUP, and publish the pipeline's counters to `/metrics`
/// every 500 ms (on a thread of its own, so that a paced replay waiting for its next frame
/// or a quiet link does not hold them up).
fn housekeeping(
    board: &workers::StatsBoard,
    done: &AtomicBool,
    metrics: &Mutex<Metrics>,
    (hup, has_file): (&AtomicBool, bool),
) {
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        note_sighup(hup, has_file);
        if last.elapsed() >= Duration::from_millis(500) {
            let total = board.total();
            if let Ok(mut m) = metrics.lock() {
                m.publish(&total);
            }
            last = Instant::now();
        }
    }
}

impl DispatchFrames<'_> {
    /// Put the dispatcher's own counters on the board twice a second (workers and the
    /// detector thread put theirs at each tick of capture time).
    fn chores(&mut self) {
        if self.last_publish.elapsed() >= Duration::from_millis(500) {
            self.d.publish();
            self.last_publish = Instant::now();
        }
    }
}

impl Frames for DispatchFrames<'_> {
    fn push(&mut self, f: &Frame<'_>) {
        self.pending += 1;
        self.d.process(f);
    }

    fn pending(&self) -> usize {
        self.pending
    }

    fn hand_over(&mut self, _live: bool) -> anyhow::Result<()> {
        self.pending = 0;
        self.d.flush();
        self.chores();
        Ok(())
    }

    fn idle(&mut self) {
        if self.pending == 0 && self.live {
            // A quiet live link: the wall clock (which live timestamps follow) drives ticks,
            // so open alerts still resolve.
            self.d.advance_to(crate::time::now_ns());
        }
        self.chores();
    }
}

fn capture_loop(
    cfg: &Config,
    opts: &RunOptions,
    stop: &AtomicBool,
    out: &mut dyn Frames,
    metrics: &Mutex<Metrics>,
) -> anyhow::Result<()> {
    match &opts.source {
        Source::Interface(name) => {
            let live = cfg.capture.live_options();
            let mut src = LiveSource::open_with(name, &live)?;
            let ring_bytes = (live.backend == LiveBackend::Ring).then(|| live.ring.bytes());
            let fanout = live.fanout.map(|f| format!("{}/{:?}", f.group, f.mode));
            tracing::info!(interface = %name, backend = %live.backend, ring_bytes, fanout, "capturing");
            let mut kernel = KernelCounters::default();
            let mut last_stats = Instant::now();
            let mut run = || -> anyhow::Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    // A link that goes down is waited for inside `recv` (logged once down and
                    // once up again); an interface that was deleted and does not come back
                    // within a few seconds ends the capture with an error.
                    src.recv(Duration::from_millis(100), |f| out.push(&f))?;
                    if out.pending() > 0 {
                        out.hand_over(true)?;
                    }
                    out.idle();
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
                    kernel_freeze_queue = m.kernel_freeze_queue.get(),
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
                let mut last_send = Instant::now();
                let mut src = FileSource::open(path)?;
                let mut handed = Ok(());
                let res = src.for_each(|f| {
                    if stop.load(Ordering::Relaxed) || handed.is_err() {
                        return;
                    }
                    let ts = f.ts_ns.saturating_add(shift);
                    if !pacer.wait_unless(ts, stop) {
                        return;
                    }
                    frames += 1;
                    first = first.min(f.ts_ns);
                    last = last.max(f.ts_ns);
                    out.push(&Frame { ts_ns: ts, ..f });
                    // Paced replay sends small batches often so alerts appear in real time.
                    if out.pending() >= BATCH || last_send.elapsed() >= Duration::from_millis(50) {
                        handed = out.hand_over(false);
                        last_send = Instant::now();
                    }
                });
                out.hand_over(false)?;
                handed?;
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
