//! SYN flood: the half-open SYN rate towards one destination — SYNs (without ACK) minus
//! handshakes completed — over a sliding window of capture time, per destination host:port
//! and per destination host (for floods spread over random ports). One episode per victim
//! host.

use std::net::IpAddr;

use super::hll::Hll;
use super::window::{LruMap, RateWindow};
use super::FlowView;
use super::{hash_ip, AlertKind, Context, Detail, Event, Phase};
use crate::decode::{ipproto, tcpflags, Packet};
use crate::flow::table::Update;

const SEC: u64 = 1_000_000_000;
const SAMPLE: usize = 10;

/// SYN flood settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SynFloodConfig {
    /// Sliding window, ns.
    pub window_ns: u64,
    /// Half-open SYN/s towards one host:port that opens an episode.
    pub port_threshold: f64,
    /// Half-open SYN/s towards one host (all ports) that opens an episode.
    pub host_threshold: f64,
    /// Quiet time (rate below half the threshold) after which an episode closes, ns.
    pub resolve_after_ns: u64,
    /// Most destination hosts tracked at once.
    pub max_hosts: usize,
    /// Most destination host:port pairs tracked at once.
    pub max_ports: usize,
    /// Most episodes open at once; crossings beyond are counted, not opened.
    pub max_open_alerts: usize,
}

#[derive(Debug, Default)]
struct Counters {
    first_ns: u64,
    syn: RateWindow,
    done: RateWindow,
}

impl Counters {
    /// Half-open SYN/s, measured over the time since the key was first seen (at least 1 s,
    /// at most the window) so that a flood is reported within a second of its start.
    fn rate(&mut self, now: u64, window: u64) -> f64 {
        let span = now.saturating_sub(self.first_ns).clamp(SEC, window.max(SEC));
        let n = (self.syn.count(now, window) - self.done.count(now, window)).max(0.0);
        n / (span as f64 * 1e-9)
    }
}

struct Episode {
    id: u64,
    first_ns: u64,
    last_ns: u64,
    quiet_since: Option<u64>,
    port: Option<u16>,
    peak: f64,
    observed: f64,
    threshold: f64,
    syn_packets: u64,
    completed: u64,
    sources: Hll,
    sample: Vec<IpAddr>,
    context: Context,
    dirty: bool,
    /// The `Open` event was sent (at the first tick after the threshold was crossed, so
    /// that it carries a full second's rate and severity).
    announced: bool,
}

#[derive(Default)]
struct Host {
    c: Counters,
    episode: Option<Box<Episode>>,
}

/// The SYN flood detector of one worker.
pub struct SynFlood {
    cfg: SynFloodConfig,
    hosts: LruMap<IpAddr, Host>,
    ports: LruMap<(IpAddr, u16), Counters>,
    open: Vec<IpAddr>,
    next_id: u64,
    /// Episodes not opened because `max_open_alerts` were already open.
    pub suppressed: u64,
}

fn has_episode(h: &Host) -> bool {
    h.episode.is_some()
}

fn never(_: &Counters) -> bool {
    false
}

impl SynFlood {
    /// A detector with settings `cfg`.
    pub fn new(cfg: SynFloodConfig) -> Self {
        SynFlood {
            hosts: LruMap::new(cfg.max_hosts),
            ports: LruMap::new(cfg.max_ports),
            cfg,
            open: Vec::new(),
            next_id: 0,
            suppressed: 0,
        }
    }

    /// Entries evicted from the detector's tables to make room (least recently used first).
    pub fn evicted(&self) -> u64 {
        self.hosts.evicted + self.ports.evicted
    }

    /// End every open episode (`Close` events for the announced ones) and forget all state:
    /// used when capture time jumps backwards and the windows no longer mean anything.
    pub fn reset(&mut self, out: &mut Vec<Event>) {
        for host in std::mem::take(&mut self.open) {
            if let Some(e) = self.hosts.get_mut(&host).and_then(|h| h.episode.take()) {
                if e.announced {
                    out.push(event(&self.cfg, host, &e, Phase::Close));
                }
            }
        }
        self.hosts.clear();
        self.ports.clear();
    }

    /// Episodes currently open.
    pub fn open_episodes(&self) -> usize {
        self.open.len()
    }

    /// Start loading the state [`SynFlood::on_packet`] will read for this input: its index
    /// buckets, or (`entries`, a few inputs later) the entries themselves. Changes nothing.
    #[inline]
    pub fn prefetch(&self, p: &Packet, u: &Update, flow: &FlowView, entries: bool) {
        if p.proto != ipproto::TCP {
            return;
        }
        let syn = p.tcp_flags & (tcpflags::SYN | tcpflags::ACK) == tcpflags::SYN;
        if !syn && !u.established {
            return;
        }
        let (host, port) = if syn { (p.dst, p.dst_port) } else { flow.responder };
        if entries {
            self.ports.prefetch_entry(&(host, port));
            self.hosts.prefetch_entry(&host);
        } else {
            self.ports.prefetch(&(host, port));
            self.hosts.prefetch(&host);
        }
    }

    /// Account one packet.
    #[inline]
    pub fn on_packet(&mut self, p: &Packet, u: &Update, flow: &FlowView, ts: u64) {
        if p.proto != ipproto::TCP {
            return;
        }
        let syn = p.tcp_flags & (tcpflags::SYN | tcpflags::ACK) == tcpflags::SYN;
        if !syn && !u.established {
            return;
        }
        let w = self.cfg.window_ns;
        // A SYN counts against its destination; a completed handshake against the responder.
        let (host, port) = if syn { (p.dst, p.dst_port) } else { flow.responder };
        let pc = self.ports.entry((host, port), Counters::default, never);
        if pc.first_ns == 0 {
            pc.first_ns = ts;
        }
        let h = self.hosts.entry(host, Host::default, has_episode);
        if h.c.first_ns == 0 {
            h.c.first_ns = ts;
        }
        if syn {
            pc.syn.add(ts, w, 1);
            h.c.syn.add(ts, w, 1);
        } else {
            pc.done.add(ts, w, 1);
            h.c.done.add(ts, w, 1);
        }
        if let Some(e) = &mut h.episode {
            e.last_ns = e.last_ns.max(ts);
            e.dirty = true;
            if syn {
                e.syn_packets += 1;
                e.sources.add(hash_ip(&p.src));
                if e.sample.len() < SAMPLE && !e.sample.contains(&p.src) {
                    e.sample.push(p.src);
                }
            } else {
                e.completed += 1;
            }
            return;
        }
        if !syn {
            return;
        }
        let port_rate = pc.rate(ts, w);
        let host_rate = h.c.rate(ts, w);
        let (observed, threshold, port) = if port_rate >= self.cfg.port_threshold {
            (port_rate, self.cfg.port_threshold, Some(port))
        } else if host_rate >= self.cfg.host_threshold {
            (host_rate, self.cfg.host_threshold, None)
        } else {
            return;
        };
        if self.open.len() >= self.cfg.max_open_alerts {
            self.suppressed += 1;
            return;
        }
        let mut sources = Hll::default();
        sources.add(hash_ip(&p.src));
        self.next_id += 1;
        let e = Episode {
            id: self.next_id,
            // The episode starts with the first SYN of the window in which the threshold was
            // crossed (not earlier: the destination may have seen normal traffic for long).
            first_ns: (if port.is_some() { pc.first_ns } else { h.c.first_ns }).max(ts.saturating_sub(w)),
            last_ns: ts,
            quiet_since: None,
            port,
            peak: observed,
            observed,
            threshold,
            // The SYNs that built up the rate belong to the episode too.
            syn_packets: pc.syn.count(ts, w).round().max(1.0) as u64,
            completed: 0,
            sources,
            sample: vec![p.src],
            context: Context::of_packet(p),
            dirty: false,
            announced: false,
        };
        h.episode = Some(Box::new(e));
        self.open.push(host);
    }

    /// Once per second of capture time.
    pub fn tick(&mut self, now: u64, out: &mut Vec<Event>) {
        let w = self.cfg.window_ns;
        let mut i = 0;
        while i < self.open.len() {
            let host = self.open[i];
            let rate_port = |ports: &mut LruMap<(IpAddr, u16), Counters>, port| {
                ports.get_mut(&(host, port)).map_or(0.0, |c| c.rate(now, w))
            };
            let Some(h) = self.hosts.get_mut(&host) else {
                self.open.swap_remove(i);
                continue;
            };
            let Some(mut e) = h.episode.take() else {
                self.open.swap_remove(i);
                continue;
            };
            let host_rate = h.c.rate(now, w);
            let observed = match e.port {
                Some(port) => rate_port(&mut self.ports, port),
                None => host_rate,
            };
            e.observed = observed;
            e.peak = e.peak.max(observed);
            if !e.announced {
                e.announced = true;
                e.dirty = false;
                out.push(event(&self.cfg, host, &e, Phase::Open));
            } else if observed < e.threshold / 2.0 {
                let since = *e.quiet_since.get_or_insert(now);
                if now.saturating_sub(since) >= self.cfg.resolve_after_ns {
                    out.push(event(&self.cfg, host, &e, Phase::Close));
                    self.open.swap_remove(i);
                    continue;
                }
            } else {
                e.quiet_since = None;
            }
            if std::mem::take(&mut e.dirty) {
                out.push(event(&self.cfg, host, &e, Phase::Update));
            }
            if let Some(h) = self.hosts.get_mut(&host) {
                h.episode = Some(e);
            }
            i += 1;
        }
        self.hosts.retain(|_, h| h.episode.is_some() || !h.c.syn.idle(now, w));
        self.ports.retain(|_, c| !c.syn.idle(now, w));
    }

    /// Events for every open episode (end of input): an `Update` with the final numbers.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        for host in &self.open {
            if let Some(e) = self.hosts.get_mut(host).and_then(|h| h.episode.take()) {
                if e.dirty {
                    out.push(event(&self.cfg, *host, &e, Phase::Update));
                }
                if let Some(h) = self.hosts.get_mut(host) {
                    h.episode = Some(e);
                }
            }
        }
    }
}

fn event(cfg: &SynFloodConfig, host: IpAddr, e: &Episode, phase: Phase) -> Event {
    Event {
        kind: AlertKind::SynFlood,
        phase,
        entity: host,
        scope: 0,
        scope_port: e.port,
        episode: e.id,
        first_seen_ns: e.first_ns,
        last_seen_ns: e.last_ns,
        observed: e.observed,
        peak: e.peak,
        threshold: e.threshold,
        window_s: cfg.window_ns as f64 / 1e9,
        unit: "syn_per_second",
        context: e.context.clone(),
        detail: Detail::SynFlood {
            syn_packets: e.syn_packets,
            completed_handshakes: e.completed,
            distinct_sources: e.sources.estimate().max(e.sample.len() as u64),
            sources_sample: e.sample.clone(),
        },
    }
}
