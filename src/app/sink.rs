//! Alert sinks: the JSON-lines file and standard output, written synchronously (replay)
//! or by one writer thread per sink behind a bounded queue (run).

use super::*;

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

pub(super) enum Target {
    File { path: PathBuf, file: File },
    Stdout,
}

/// One alert sink (the JSON-lines file or standard output): buffers lines and writes them
/// with one call per batch, counting per record what was written and what was lost.
pub(super) struct LineOut {
    pub(super) target: Target,
    buf: Vec<u8>,
    pending: u64,
    written: u64,
    errors: u64,
    error_metric: Option<IntCounter>,
    warn: Throttle,
}

pub(super) fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LineOut {
    pub(super) fn new(target: Target) -> LineOut {
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
    pub(super) fn name(&self) -> &'static str {
        match self.target {
            Target::File { .. } => "file",
            Target::Stdout => "stdout",
        }
    }

    pub(super) fn push(&mut self, line: &str) {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self.pending += 1;
        if self.buf.len() >= SINK_FLUSH_BYTES {
            self.flush();
        }
    }

    /// Writes the pending records. On an error all of them count as not written (part of
    /// the batch may have reached the sink).
    pub(super) fn flush(&mut self) {
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
    pub(super) fn reopen(&mut self) {
        self.flush();
        if let Target::File { path, file } = &mut self.target {
            match open_append(path) {
                Ok(f) => {
                    *file = f;
                    tracing::info!(file = %path.display(), "reopened output file");
                }
                Err(e) => tracing::error!(
                    file = %path.display(), error = %e,
                    "cannot reopen output file; still writing to the file opened before"
                ),
            }
        }
    }
}

/// Where alert records go: an append-only JSON-lines file and/or standard output.
///
/// `replay` writes through it synchronously; `run` hands each sink to its own writer thread.
pub struct AlertSink {
    pub(super) outs: Vec<LineOut>,
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
            let f = open_append(p).with_context(|| format!("cannot open output file {}", p.display()))?;
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
        self.write_line(&rec.to_json());
    }

    /// Write one JSON line (a record of any kind, e.g. a flow record) to every sink.
    pub fn write_line(&mut self, line: &str) {
        for o in &mut self.outs {
            o.push(line);
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

/// The daemon's side of one sink: a bounded queue to the sink's writer thread. The worker
/// never blocks on it: a full queue drops the record for this sink only (counted).
pub(super) struct SinkQueue {
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
    pub(super) fn start(
        mut out: LineOut,
        error_metric: IntCounter,
        reopen: Arc<AtomicBool>,
    ) -> std::io::Result<SinkQueue> {
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
    pub(super) fn send(&mut self, line: &Arc<str>) {
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
    pub(super) fn close(mut self) {
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
                "record sink closed (alert or flow records)"
            ),
            Err(_) => tracing::error!(sink = self.name, "record writer thread panicked"),
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
