//! Share-nothing flow workers: the same stages as [`Engine`](super::Engine), on several
//! threads, with results identical to one engine's.
//!
//! ```text
//!  caller's thread            N flow workers                 collector thread
//!  Dispatcher                 Back (own flow table and        Detect (detectors, alert
//!  clock, link, reassembly,   session-table replica)          lifecycle), flow records
//!  decode, inner fragment  ─▶ session lookup, flow update ─▶  k-way merge by frame
//!  ports; hash of the inner   detector inputs (TCP SYN,       sequence number
//!  5-tuple picks the worker   handshake, first packets)
//! ```
//!
//! - **Dispatch.** Each decoded packet goes to worker `hash(5-tuple) % N`, the hash taken
//!   over the *inner* 5-tuple of GTP-U (a base station's tunnels spread over all workers)
//!   and symmetric (both directions of a flow meet on one worker). Outer fragments are
//!   reassembled before dispatch and later inner fragments borrow their first fragment's
//!   ports before hashing, so a flow's packets never split.
//! - **Session table.** PFCP and GTPv2-C messages go to *every* worker (each keeps a
//!   replica of the session table; only the owner counts the packet), in capture order with
//!   the G-PDUs, so each G-PDU sees the same session state it would in one engine. Control
//!   traffic is a small share of a user plane's packets, so the replicas cost little.
//! - **Detectors.** Per-destination fan-in (SYN flood) and per-source fan-out (port scan)
//!   need every worker's packets. Workers send the few packets detectors act on (see
//!   [`Detectors::wants`](crate::detect::Detectors::wants)), tagged with the frame's
//!   sequence number; the collector merges the workers' streams in sequence order, up to
//!   the lowest sequence number every worker has finished (each batch carries it), and
//!   feeds one set of detectors in exactly the order one engine would. Ticks travel in the
//!   same streams, so alerts are identical for 1 and N workers.
//! - **Overload.** Queues are bounded. A lossless pipeline (file replay) blocks the caller
//!   when a worker falls behind; a lossy one (live capture) drops the batch instead and
//!   counts its packets per worker ([`Stats::worker_queue_drops`]); the caller never
//!   blocks. A dropped batch also takes the PFCP/GTPv2-C messages and ticks in it away from
//!   that worker (its session-table replica may miss a session until that session's next
//!   message; its idle flows expire at its next tick). Batches are recycled, so the
//!   per-packet path does not allocate once the queues are warm.
//!
//! Flow tables are split: each worker gets `ceil(flow.capacity / N)` flows, so memory
//! stays within the configured bound. Results differ from one engine only where a bound is
//! hit (flow-table eviction happens per worker).

use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::{Back, Clock, Control, Detect, Front, KeyHashes, Stats};
use crate::alert::AlertRecord;
use crate::capture::Frame;
use crate::config::Config;
use crate::decode::Packet;
use crate::detect::{Detectors, FlowView};
use crate::flow::table::Update;
use crate::flow::{FlowHasher, FlowKey, FlowRecord};

/// Packets per batch handed to a worker.
pub const BATCH: usize = 256;

/// Most ticks and session-table messages kept for a worker whose queue is full (live
/// capture), waiting for the next batch.
pub const RETAINED_MAX: usize = 4 * BATCH;

/// How many packets ahead of the one it processes a flow worker prefetches its index bucket
/// (and half as many, its flow).
const PREFETCH_AHEAD: usize = 8;

/// Most bytes of session-table messages kept for a worker whose queue is full.
pub const RETAINED_BYTES_MAX: usize = 1 << 20;

/// How [`run`] runs the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Flow workers (at least 1).
    pub workers: usize,
    /// Batches queued per worker before the dispatcher blocks (lossless) or drops (lossy).
    pub queue_batches: usize,
    /// Block the caller when a worker is behind (file replay) instead of dropping.
    pub lossless: bool,
    /// Produce flow records.
    pub flow_records: bool,
    /// Alert records name this sensor.
    pub sensor: String,
    /// Per-packet processing time of the workers (sampled 1 in 64 packets).
    pub timing: Option<prometheus::Histogram>,
}

/// A PFCP/GTPv2-C payload kept in a batch's byte arena.
#[derive(Debug, Clone, Copy)]
enum Ctl {
    None,
    Pfcp(u32, u32),
    Gtpv2c(u32, u32),
}

/// One unit of work for a flow worker.
#[derive(Debug, Clone, Copy)]
enum Item {
    /// A decoded packet. `owner`: this worker counts it and keeps its flow; other workers
    /// get control-plane packets only, to update their session-table replica.
    Packet {
        seq: u64,
        ts: u64,
        pkt: Packet,
        inner_missing: bool,
        owner: bool,
        ctl: Ctl,
        /// The flow key's hash ([`dispatch_hash`]), for the owner's flow table.
        hash: u64,
    },
    /// The first frame's capture time: the session tables' learning period starts here.
    Start { ts: u64 },
    /// A tick at capture time `ts`, before frame `seq`.
    Tick { seq: u64, ts: u64 },
    /// A new time base (capture time jumped back), before frame `seq`.
    Restart { seq: u64 },
}

/// Work for one worker: items in capture order, with the bytes of control-plane payloads.
#[derive(Default)]
struct InBatch {
    items: Vec<Item>,
    arena: Vec<u8>,
    /// Every frame with a sequence number below this one has been dispatched.
    upto: u64,
}

/// A packet the detectors act on, with what it did to its flow.
#[derive(Debug, Clone, Copy)]
struct DetectorInput {
    ts: u64,
    pkt: Packet,
    update: Update,
    view: FlowView,
}

/// One entry of a worker's ordered output stream.
// Entries live in reused vectors: boxing the large variant would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
enum Out {
    Packet(DetectorInput),
    Tick(u64),
    Restart,
}

/// A worker's output for one input batch.
#[derive(Default)]
struct OutBatch {
    worker: usize,
    /// `(order key, entry)`: key = 2 × sequence number, + 1 for packets (a tick or restart
    /// runs before the frame that triggered it).
    items: Vec<(u64, Out)>,
    flows: Vec<FlowRecord>,
    /// The worker has processed every frame below this sequence number.
    upto: u64,
}

/// Counters of every stage, updated by each thread at its ticks (not per packet), read by
/// the metrics exporter.
#[derive(Default)]
pub struct StatsBoard {
    front: Mutex<Stats>,
    workers: Vec<Mutex<Stats>>,
    detect: Mutex<Stats>,
}

impl StatsBoard {
    fn new(workers: usize) -> StatsBoard {
        StatsBoard {
            workers: (0..workers).map(|_| Mutex::new(Stats::default())).collect(),
            ..StatsBoard::default()
        }
    }

    /// The pipeline's counters: the sum of its stages (the session table, replicated on
    /// every worker, counted once).
    pub fn total(&self) -> Stats {
        let get = |m: &Mutex<Stats>| m.lock().map(|s| s.clone()).unwrap_or_default();
        let mut t = get(&self.front);
        for (i, w) in self.workers.iter().enumerate() {
            t.add_worker(&get(w), i == 0);
        }
        t.add_worker(&get(&self.detect), false);
        t
    }
}

fn put(slot: &Mutex<Stats>, s: &Stats) {
    if let Ok(mut m) = slot.lock() {
        m.clone_from(s);
    }
}

/// The dispatch hash of a packet: the hash of its flow key ([`FlowKey::of_packet`]: the
/// inner 5-tuple, ordered so that both directions give the same key, and for GTP-U the
/// ordered pair of outer tunnel endpoints). One G-PDU flow's packets stay together, while
/// a base station's many flows spread. Seeded at random per process, so that an attacker
/// cannot choose addresses that all land on one worker. The worker's flow table hashes
/// with the same seed and takes this value instead of hashing the key again.
#[inline]
fn dispatch_hash(h: &FlowHasher, p: &Packet) -> u64 {
    use std::hash::BuildHasher;
    h.hash_one(FlowKey::of_packet(p).0)
}

/// The worker of `n` for dispatch hash `h`: from its upper 32 bits by multiply-shift, so
/// that the bits the flow index takes its bucket from (the lower 32) stay evenly spread
/// within each worker.
#[inline]
fn worker_of(h: u64, n: usize) -> usize {
    (((h >> 32) * n as u64) >> 32) as usize
}

/// The caller's side of the pipeline (see [`run`]): give it frames in capture order.
pub struct Dispatcher {
    front: Front,
    clock: Clock,
    stats: Stats,
    seq: u64,
    lossless: bool,
    txs: Vec<Sender<InBatch>>,
    free: Vec<Receiver<InBatch>>,
    cur: Vec<InBatch>,
    board: Arc<StatsBoard>,
    hasher: FlowHasher,
    /// The packet being decoded.
    pkt: Packet,
}

impl Dispatcher {
    fn fresh(&self, w: usize) -> InBatch {
        self.free[w].try_recv().unwrap_or_default()
    }

    /// Send every worker its batch (also empty ones: they carry the sequence number the
    /// collector waits for). A lossy pipeline whose worker is behind drops that worker's
    /// packets but keeps its ticks and session-table messages for the next batch (at most
    /// [`RETAINED_MAX`] of them; beyond, they are dropped too and counted). Called when a
    /// batch is full and at every tick; a live capture calls it at each of its batch
    /// boundaries so that a quiet link's packets are not held back.
    pub fn flush(&mut self) {
        for w in 0..self.txs.len() {
            let mut b = std::mem::take(&mut self.cur[w]);
            b.upto = self.seq;
            let b = if self.lossless {
                match self.txs[w].send(b) {
                    Ok(()) => self.fresh(w),
                    Err(e) => e.into_inner(), // The worker is gone (only after a panic).
                }
            } else {
                match self.txs[w].try_send(b) {
                    Ok(()) => self.fresh(w),
                    Err(TrySendError::Full(mut b) | TrySendError::Disconnected(mut b)) => {
                        let plain = |i: &Item| matches!(i, Item::Packet { ctl: Ctl::None, .. });
                        let lost = b
                            .items
                            .iter()
                            .filter(|i| plain(i) && matches!(i, Item::Packet { owner: true, .. }))
                            .count();
                        self.stats.worker_queue_drops[w] += lost as u64;
                        b.items.retain(|i| !plain(i));
                        if b.items.len() > RETAINED_MAX || b.arena.len() > RETAINED_BYTES_MAX {
                            let owned = b
                                .items
                                .iter()
                                .filter(|i| matches!(i, Item::Packet { owner: true, .. }))
                                .count();
                            self.stats.worker_queue_drops[w] += owned as u64;
                            self.stats.worker_control_drops[w] += b.items.len() as u64;
                            b.items.clear();
                            b.arena.clear();
                        }
                        self.cur[w] = b;
                        continue;
                    }
                }
            };
            self.cur[w] = b;
            self.cur[w].items.clear();
            self.cur[w].arena.clear();
        }
    }

    fn broadcast(&mut self, item: Item) {
        for b in &mut self.cur {
            b.items.push(item);
        }
    }

    fn tick(&mut self, now_ns: u64) {
        self.front.expire(now_ns);
        self.clock.ticked(now_ns);
        self.publish();
    }

    /// Decode one frame and hand it to its worker (control-plane messages to all).
    pub fn process(&mut self, frame: &Frame<'_>) {
        let step = self.clock.step(&mut self.stats, frame.ts_ns);
        let (ts, seq) = (step.ts, self.seq);
        self.seq += 1;
        if seq == 0 {
            self.broadcast(Item::Start { ts });
        }
        if step.restart {
            self.broadcast(Item::Restart { seq });
        }
        if step.tick {
            self.tick(ts);
            self.broadcast(Item::Tick { seq, ts });
        }
        let pkt = &mut self.pkt;
        let Some(d) = self
            .front
            .decode(&mut self.stats, frame.linktype, frame.data, frame.wire_len, ts, pkt)
        else {
            if step.tick || step.restart {
                self.flush();
            }
            return;
        };
        let hash = dispatch_hash(&self.hasher, pkt);
        let owner = worker_of(hash, self.cur.len());
        self.stats.worker_packets[owner] += 1;
        let payload = match d.control {
            Control::None => None,
            Control::Pfcp(p) => Some((true, p)),
            Control::Gtpv2c(p) => Some((false, p)),
        };
        // A message that can change the session table goes to every replica; one that
        // cannot (junk on the PFCP/GTP-C ports) only to its owner (which counts its decode
        // error) and worker 0 (whose replica's counters are the ones reported), so that such
        // junk is not copied and parsed N times.
        let shared = match payload {
            Some((true, p)) => crate::session::SessionTable::pfcp_may_change(p),
            Some((false, p)) => crate::session::SessionTable::gtpv2c_may_change(p),
            None => false,
        };
        let mut full = false;
        for (w, b) in self.cur.iter_mut().enumerate() {
            let gets = w == owner || (payload.is_some() && (shared || w == 0));
            if !gets {
                continue;
            }
            let ctl = match payload {
                None => Ctl::None,
                Some((pfcp, p)) => {
                    let off = b.arena.len() as u32;
                    b.arena.extend_from_slice(p);
                    match pfcp {
                        true => Ctl::Pfcp(off, p.len() as u32),
                        false => Ctl::Gtpv2c(off, p.len() as u32),
                    }
                }
            };
            b.items.push(Item::Packet {
                seq,
                ts,
                pkt: *pkt,
                inner_missing: d.inner_missing,
                owner: w == owner,
                ctl,
                hash,
            });
            full |= b.items.len() >= BATCH;
        }
        if full || step.tick || step.restart {
            self.flush();
        }
    }

    /// Run a tick if the wall clock `now_ns` reached the next one (a quiet live link), and
    /// hand every worker what is queued.
    pub fn advance_to(&mut self, now_ns: u64) {
        if self.clock.due(&self.stats, now_ns) {
            let seq = self.seq;
            self.seq += 1;
            self.tick(now_ns);
            self.broadcast(Item::Tick { seq, ts: now_ns });
        }
        self.flush();
    }

    /// The counters of every stage, refreshed at each tick of capture time.
    pub fn board(&self) -> &Arc<StatsBoard> {
        &self.board
    }

    /// Publish the dispatcher's own counters to [`Dispatcher::board`] now.
    pub fn publish(&mut self) {
        self.stats.reassembly = self.front.reassembly_stats().clone();
        put(&self.board.front, &self.stats);
    }
}

fn ctl_of<'a>(ctl: Ctl, arena: &'a [u8]) -> Control<'a> {
    let slice = |o: u32, l: u32| {
        arena
            .get(o as usize..(o as usize).saturating_add(l as usize))
            .unwrap_or(&[])
    };
    match ctl {
        Ctl::None => Control::None,
        Ctl::Pfcp(o, l) => Control::Pfcp(slice(o, l)),
        Ctl::Gtpv2c(o, l) => Control::Gtpv2c(slice(o, l)),
    }
}

/// A worker's queues: work in, used work batches back, output out, used output back.
struct WorkerIo {
    rx: Receiver<InBatch>,
    free: Sender<InBatch>,
    out_tx: Sender<OutBatch>,
    out_free: Receiver<OutBatch>,
}

/// A flow worker: session table replica, flow table, detector inputs.
fn worker(
    w: usize,
    mut back: Back,
    wants: (bool, bool),
    io: WorkerIo,
    board: Arc<StatsBoard>,
    timing: Option<prometheus::Histogram>,
) {
    let WorkerIo {
        rx,
        free,
        out_tx,
        out_free,
    } = io;
    // Should this thread ever unwind, tell the collector it is done, so that the other
    // workers' detector inputs are not held back waiting for it.
    struct Done(Sender<OutBatch>, usize);
    impl Drop for Done {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let done = OutBatch {
                    worker: self.1,
                    upto: u64::MAX,
                    ..OutBatch::default()
                };
                let _ = self.0.send(done);
            }
        }
    }
    let _done = Done(out_tx.clone(), w);
    let mut stats = Stats::default();
    let mut sample = 0u32;
    // Per item of the current batch: the key hashes of a packet this worker owns (the flow
    // hash from the dispatcher, the tunnel hash computed here once), `None` for the others.
    let mut hashes: Vec<Option<KeyHashes>> = Vec::new();
    for mut b in rx {
        let mut out = out_free.try_recv().unwrap_or_default();
        out.worker = w;
        out.items.clear();
        out.flows.clear();
        // Flows and tunnel keys are mostly out of cache: start loading the index buckets of
        // the packet PREFETCH_AHEAD on, and the flow and tunnel entries of the one half as
        // far, whose buckets are in by now.
        hashes.clear();
        hashes.extend(b.items.iter().map(|i| match i {
            Item::Packet {
                owner: true, hash, pkt, ..
            } => Some(back.key_hashes(pkt, *hash)),
            _ => None,
        }));
        let at = |j: usize| hashes.get(j).copied().flatten().unwrap_or_default();
        for i in 0..b.items.len() {
            back.prefetch(at(i + PREFETCH_AHEAD), at(i + PREFETCH_AHEAD / 2));
            match &mut b.items[i] {
                Item::Packet {
                    seq,
                    ts,
                    pkt,
                    inner_missing,
                    owner,
                    ctl,
                    hash: _,
                } => {
                    let (seq, ts, inner_missing, owner, ctl) = (*seq, *ts, *inner_missing, *owner, *ctl);
                    back.sessions.note_packet(ts);
                    let control = ctl_of(ctl, &b.arena);
                    if !owner {
                        back.control(None, pkt, control, ts);
                        continue;
                    }
                    sample = sample.wrapping_add(1);
                    let t0 = (sample % 64 == 0 && timing.is_some()).then(std::time::Instant::now);
                    back.control(Some(&mut stats), pkt, control, ts);
                    let u = back.packet(&mut stats, pkt, inner_missing, ts, at(i));
                    if Detectors::wants_for(wants.0, wants.1, pkt, &u) {
                        if let Some(flow) = back.flows.get(u.slot) {
                            let view = FlowView::of(flow);
                            out.items.push((
                                seq * 2 + 1,
                                Out::Packet(DetectorInput {
                                    ts,
                                    pkt: *pkt,
                                    update: u,
                                    view,
                                }),
                            ));
                        }
                    }
                    if let (Some(t0), Some(h)) = (t0, &timing) {
                        h.observe(t0.elapsed().as_secs_f64());
                    }
                }
                Item::Start { ts } => back.sessions.note_packet(*ts),
                Item::Tick { seq, ts } => {
                    let (seq, ts) = (*seq, *ts);
                    back.sessions.note_packet(ts);
                    back.expire(ts);
                    back.refresh(&mut stats);
                    put(&board.workers[w], &stats);
                    if w == 0 {
                        out.items.push((seq * 2, Out::Tick(ts)));
                    }
                }
                Item::Restart { seq } => {
                    let seq = *seq;
                    back.drain();
                    if w == 0 {
                        out.items.push((seq * 2, Out::Restart));
                    }
                }
            }
        }
        b.items.clear();
        out.flows.append(&mut back.ended);
        out.upto = b.upto;
        b.arena.clear();
        let _ = free.try_send(b);
        if out_tx.send(out).is_err() {
            break;
        }
    }
    // End of input: the flows still open get their records (like `Engine::finish`, only
    // when records are wanted: otherwise the flows stay, and so does the flow gauge).
    if back.flow_records {
        back.drain();
    }
    back.refresh(&mut stats);
    put(&board.workers[w], &stats);
    let mut out = OutBatch {
        worker: w,
        upto: u64::MAX,
        ..OutBatch::default()
    };
    out.flows.append(&mut back.ended);
    let _ = out_tx.send(out);
}

/// The collector: merges the workers' output streams in sequence order into one set of
/// detectors and the alert lifecycle, and hands alert and flow records to the callers'
/// sinks.
fn collector(
    mut detect: Detect,
    workers: usize,
    rx: Receiver<OutBatch>,
    free: Sender<OutBatch>,
    board: Arc<StatsBoard>,
    on_alert: &mut dyn FnMut(AlertRecord),
    on_flow: &mut dyn FnMut(FlowRecord),
) {
    use std::collections::VecDeque;
    // Each worker's batches not yet fed, in order, read in place (`pos`: the next entry).
    let mut queues: Vec<VecDeque<(OutBatch, usize)>> = (0..workers).map(|_| VecDeque::new()).collect();
    let mut upto = vec![0u64; workers];
    let mut stats = Stats::default();
    let mut last_ts = 0u64;
    let mut feed = |detect: &mut Detect, out: &Out| match out {
        Out::Packet(d) => {
            last_ts = d.ts;
            detect.feed(&d.pkt, &d.update, &d.view, d.ts);
        }
        Out::Tick(ts) => {
            last_ts = *ts;
            detect.tick(*ts);
            detect.refresh(&mut stats);
            put(&board.detect, &stats);
        }
        Out::Restart => detect.reset(),
    };
    // Feed, in order key order across the workers, every entry whose key is below `bound`.
    let mut merge = |queues: &mut [VecDeque<(OutBatch, usize)>], detect: &mut Detect, bound: u64| loop {
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().and_then(|(b, pos)| b.items.get(*pos)).map(|(k, _)| (*k, i)))
            .min();
        let Some((_, i)) = next.filter(|(k, _)| *k < bound) else {
            break;
        };
        let q = &mut queues[i];
        if let Some((b, pos)) = q.front_mut() {
            feed(detect, &b.items[*pos].1);
            *pos += 1;
            if *pos >= b.items.len() {
                if let Some((b, _)) = q.pop_front() {
                    let _ = free.try_send(b);
                }
            }
        }
    };
    for mut b in rx {
        for f in b.flows.drain(..) {
            on_flow(f);
        }
        upto[b.worker] = b.upto;
        if b.items.is_empty() {
            let _ = free.try_send(b);
        } else {
            let w = b.worker;
            queues[w].push_back((b, 0));
        }
        // Everything below the lowest sequence number all workers finished is complete.
        let bound = upto.iter().copied().min().unwrap_or(0).saturating_mul(2);
        merge(&mut queues, &mut detect, bound);
        for r in detect.records.drain(..) {
            on_alert(r);
        }
    }
    // Workers are done: what is left is complete (a worker that died leaves its part out).
    merge(&mut queues, &mut detect, u64::MAX);
    detect.finish(last_ts.max(board.front.lock().map(|s| s.last_ts_ns).unwrap_or(0)));
    for r in detect.records.drain(..) {
        on_alert(r);
    }
    detect.refresh(&mut stats);
    put(&board.detect, &stats);
}

/// Run the pipeline: start `opts.workers` flow workers and a collector, call `source` with
/// the [`Dispatcher`] on this thread, then drain every stage. Alert and flow records are
/// handed to `on_alert` / `on_flow` on the collector thread, alert records in the order one
/// [`Engine`](super::Engine) would produce them. A [`StatsBoard`] exposes
/// the counters while it runs ([`Dispatcher::board`]). Returns what `source` returned and the final counters.
pub fn run<R>(
    cfg: &Config,
    opts: &PipelineOptions,
    on_alert: &mut (dyn FnMut(AlertRecord) + Send),
    on_flow: &mut (dyn FnMut(FlowRecord) + Send),
    source: impl FnOnce(&mut Dispatcher) -> R,
) -> std::io::Result<(R, Stats)> {
    let n = opts.workers.max(1);
    let queue = opts.queue_batches.max(1);
    let board = Arc::new(StatsBoard::new(n));
    let detect = Detect::new(cfg, opts.sensor.clone());
    let wants = (
        detect.detectors.syn_flood.is_some(),
        detect.detectors.port_scan.is_some(),
    );
    let capacity = cfg.flow.capacity.div_ceil(n).max(1);
    let hasher = FlowHasher::default();
    let (out_tx, out_rx) = crossbeam_channel::bounded::<OutBatch>(n * (queue + 2));
    let (out_free_tx, out_free_rx) = crossbeam_channel::bounded::<OutBatch>(n * (queue + 2));
    let mut txs = Vec::new();
    let mut frees = Vec::new();
    let mut ends = Vec::new();
    for _ in 0..n {
        let (tx, rx) = crossbeam_channel::bounded::<InBatch>(queue);
        let (ftx, frx) = crossbeam_channel::bounded::<InBatch>(queue + 2);
        txs.push(tx);
        frees.push(frx);
        ends.push((rx, ftx));
    }
    let mut stats = Stats {
        worker_queue_drops: vec![0; n],
        worker_control_drops: vec![0; n],
        worker_packets: vec![0; n],
        ..Stats::default()
    };
    stats.session_capacity = cfg.session.capacity as u64;
    let mut failed: Option<std::io::Error> = None;
    // A thread that cannot be started (a thread limit) fails the whole pipeline before any
    // frame is read: the queues close, the threads that did start stop, and the caller gets
    // the error (instead of a pipeline that silently misses a worker's or the detector's part).
    std::thread::scope(|scope| {
        for (w, (rx, ftx)) in ends.into_iter().enumerate() {
            let mut back = Back::new(cfg, capacity, hasher);
            back.flow_records = opts.flow_records;
            let (out_tx, out_free_rx, board, timing) = (
                out_tx.clone(),
                out_free_rx.clone(),
                Arc::clone(&board),
                opts.timing.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("fivewatch-w{w}"))
                .spawn_scoped(scope, move || {
                    let io = WorkerIo {
                        rx,
                        free: ftx,
                        out_tx,
                        out_free: out_free_rx,
                    };
                    worker(w, back, wants, io, board, timing)
                });
            if let Err(e) = spawned {
                failed.get_or_insert(std::io::Error::new(
                    e.kind(),
                    format!("cannot start flow worker thread {w} of {n}: {e}"),
                ));
            }
        }
        drop(out_tx);
        let cboard = Arc::clone(&board);
        let collector = std::thread::Builder::new()
            .name("fivewatch-detect".into())
            .spawn_scoped(scope, move || {
                collector(detect, n, out_rx, out_free_tx, cboard, on_alert, on_flow)
            });
        let collector = match collector {
            Ok(c) if failed.is_none() => c,
            Ok(_) => return Err(failed.unwrap_or_else(|| std::io::Error::other("flow worker"))),
            Err(e) => {
                let msg = format!("cannot start the detector thread: {e}");
                return Err(failed.unwrap_or_else(|| std::io::Error::new(e.kind(), msg)));
            }
        };
        // Every thread runs: from here on the pipeline cannot lose a stage.
        let mut d = Dispatcher {
            front: Front::new(cfg),
            clock: Clock::default(),
            stats,
            seq: 0,
            lossless: opts.lossless,
            txs,
            free: frees,
            cur: (0..n).map(|_| InBatch::default()).collect(),
            board: Arc::clone(&board),
            hasher,
            pkt: Packet::EMPTY,
        };
        let r = source(&mut d);
        d.flush();
        d.publish();
        drop(d); // Closes the worker queues: workers drain and stop, then the collector.
        if collector.join().is_err() {
            tracing::error!("detector thread panicked");
        }
        Ok((r, board.total()))
    })
}
