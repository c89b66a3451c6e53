//! Port scan: one source sending connection attempts (TCP SYN, or a UDP datagram opening
//! a flow) that go unanswered to many ports of one host (vertical) or to many hosts on one
//! port (horizontal) within a window of capture time. Answered attempts (SYN-ACK, or any
//! UDP reply) do not count, so busy clients do not look like scanners. One episode per
//! scanner. A scanner inside a GTP-U tunnel is keyed by its address *and* its tunnel
//! endpoint pair: UE address pools overlap between gNB/UPF pairs, so two UEs with the same
//! address are two sources.

use std::net::IpAddr;

use super::hll::Hll;
use super::window::LruMap;
use super::FlowView;
use super::{hash_ip, AlertKind, Context, Detail, Event, Phase};
use crate::decode::{ipproto, tcpflags, Packet};
use crate::flow::table::Update;

const SAMPLE: usize = 10;
const EXACT_HOSTS: usize = 64;

/// Port scan settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PortScanConfig {
    /// Window over which probes are counted, ns (tumbling, restarted when it ends).
    pub window_ns: u64,
    /// Distinct unanswered ports on one host that open a vertical-scan episode.
    pub vertical_ports: u32,
    /// Distinct unanswered hosts on one port that open a horizontal-scan episode.
    pub horizontal_hosts: u32,
    /// Time without new probes after which an episode closes, ns.
    pub resolve_after_ns: u64,
    /// Most sources tracked at once.
    pub max_sources: usize,
    /// Most probes remembered over all sources at once.
    pub max_probes: usize,
    /// Most episodes open at once; crossings beyond are counted, not opened.
    pub max_open_alerts: usize,
}

type FastMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;

struct Episode {
    id: u64,
    first_ns: u64,
    last_ns: u64,
    scan_type: &'static str,
    observed: f64,
    peak: f64,
    threshold: f64,
    probes: u64,
    answered: u64,
    ports: Box<[u64; 1024]>,
    hosts_exact: Vec<IpAddr>,
    hosts: Hll,
    scope_port: Option<u16>,
    context: Context,
    dirty: bool,
    /// The `Open` event was sent (at the first tick after the threshold was crossed).
    announced: bool,
}

impl Episode {
    fn add_target(&mut self, dst: IpAddr, port: u16) {
        self.ports[usize::from(port >> 6)] |= 1 << (port & 63);
        if self.hosts_exact.len() < EXACT_HOSTS && !self.hosts_exact.contains(&dst) {
            self.hosts_exact.push(dst);
        }
        self.hosts.add(hash_ip(&dst));
    }

    fn distinct_ports(&self) -> u64 {
        self.ports.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    fn distinct_hosts(&self) -> u64 {
        if self.hosts_exact.len() < EXACT_HOSTS {
            self.hosts_exact.len() as u64
        } else {
            self.hosts.estimate().max(EXACT_HOSTS as u64)
        }
    }
}

#[derive(Default)]
struct Source {
    window_start: u64,
    /// The window's distinct probes, with their unanswered counts per host and per port.
    probes: ProbeSet,
    /// Connection attempts in the window (every new flow, repeats included).
    attempts: u64,
    /// Attempts answered in the window.
    answers: u64,
    episode: Option<Box<Episode>>,
}

impl Source {
    fn reset(&mut self, now: u64) {
        self.window_start = now;
        self.attempts = 0;
        self.answers = 0;
        self.probes.clear();
    }
}

/// Most probes a [`ProbeSet`] keeps in its lanes before it moves them to hash maps.
const SMALL_PROBES: usize = 64;
// A small set's lane masks are one u64; lanes are compared 16 at a time.
const _: () = assert!(SMALL_PROBES <= 64 && SMALL_PROBES % 16 == 0);

/// The distinct probes (target, port) of one source in one window, each marked answered or
/// not, with the number of unanswered ones per target host and per port.
///
/// Up to [`SMALL_PROBES`] probes are kept "small": their ports and target hosts in blocks
/// of 16 probes ([`Lanes`], 96 bytes), compared 16 at a time (the first block inline in the
/// source's table entry, the others on the heap). An IPv4 target is its own lane value, so
/// a lookup reads no other memory; an IPv6 target's lane holds a 32-bit hash of it
/// ([`host_lane`]), and its address, kept beside ([`ProbeSet::v6_hosts`]), decides between
/// colliding ones. Most sources are clients whose probes are answered within a round trip:
/// when the lanes fill a block of 16 and at least half of their probes were answered, the
/// answered ones move to an archive ([`ProbeSet::make_room`]) that only a new probe's
/// duplicate check reads, behind a one-line Bloom filter, so a busy client's lookups stay in
/// its inline block. Beyond [`SMALL_PROBES`] in the lanes, or [`ARCHIVE_MAX`] archived,
/// the probes move to three hash maps (a lookup each, at any size). Every form gives the
/// same answers.
#[derive(Default)]
struct ProbeSet {
    /// Small: probes held (slots `0..n` of the lanes).
    n: usize,
    /// Small: bit `i` set when probe `i` was answered.
    answered: u64,
    /// Small: bit `i` set when the target of slot `i` is an IPv6 address.
    v6: u64,
    /// Small: empty while no IPv6 target was held since the last [`ProbeSet::clear`];
    /// afterwards the target of every slot, in slot order (IPv4 ones as `::`, unread).
    v6_hosts: Vec<std::net::Ipv6Addr>,
    /// Small: ports and hosts of slots 0 to 15.
    first: Lanes,
    /// Small: those of slots `16 (b + 1)` to `16 (b + 1) + 15` in block `b`.
    more: Vec<Lanes>,
    /// Small: answered probes moved out of the lanes, in no particular order.
    archive: Vec<(IpAddr, u16)>,
    /// Small: bit [`archive_bit`] of every archived probe (a Bloom filter of 512 bits and one
    /// hash: a clear bit means not archived, without reading the archive).
    archived: [u64; 8],
    large: Option<Box<LargeProbes>>,
}

/// Bits `0..n` set (all of them from 64 up).
#[inline]
fn low_bits(n: usize) -> u64 {
    match n {
        n if n >= 64 => u64::MAX,
        n => (1u64 << n) - 1,
    }
}

/// Most probes a small [`ProbeSet`] archives before it moves to hash maps.
const ARCHIVE_MAX: usize = 64;

/// The bit of probe `(dst, port)` in [`ProbeSet::archived`] (0 to 511).
#[inline]
fn archive_bit(dst: IpAddr, port: u16) -> usize {
    let x = (u64::from(host_lane(dst)) << 16 | u64::from(port)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 55) as usize
}

/// The ports and host lanes ([`host_lane`]) of 16 probes of a small [`ProbeSet`] (96 bytes).
#[derive(Clone, Copy, Default)]
struct Lanes {
    ports: [u16; 16],
    hosts: [u32; 16],
}

#[derive(Default)]
struct LargeProbes {
    /// (target, port) → answered.
    probes: FastMap<(IpAddr, u16), bool>,
    /// Unanswered probes per target host.
    per_host: FastMap<IpAddr, u32>,
    /// Unanswered probes per destination port.
    per_port: FastMap<u16, u32>,
}

/// The lane value of a target host in a small [`ProbeSet`]: an IPv4 address itself, or a
/// 32-bit multiplicative hash of an IPv6 one (equal addresses give equal values; an IPv6
/// lane is only compared with IPv6 targets).
#[inline]
fn host_lane(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            let x = (v as u64) ^ ((v >> 64) as u64).rotate_left(17);
            (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
        }
    }
}

/// Bit `i` set where `a[i] == v`, for 16 lanes of 16 bits: one compare (SSE2, which every
/// x86_64 processor has), one lane at a time elsewhere.
#[inline(always)]
fn ports_eq(a: &[u16; 16], v: u16) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cmpeq_epi16, _mm_loadu_si128, _mm_movemask_epi8, _mm_packs_epi16, _mm_set1_epi16};
        let p = a.as_ptr().cast::<std::arch::x86_64::__m128i>();
        // SAFETY: SSE2 is part of every x86_64 target; the two unaligned 16-byte loads read
        // the 16 lanes of `a` (32 bytes) and nothing beyond.
        let bits = unsafe {
            let needle = _mm_set1_epi16(v as i16);
            let lo = _mm_cmpeq_epi16(_mm_loadu_si128(p), needle);
            let hi = _mm_cmpeq_epi16(_mm_loadu_si128(p.add(1)), needle);
            // Each 16-bit lane (all ones or zero) to one byte, in order, then a bit each.
            _mm_movemask_epi8(_mm_packs_epi16(lo, hi))
        };
        u64::from(bits as u16)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        lanes_eq_scalar(a, v)
    }
}

/// Bit `i` set where `a[i] == v`, for 16 lanes of 32 bits (as [`ports_eq`]).
#[inline(always)]
fn hosts_eq(a: &[u32; 16], v: u32) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_epi8, _mm_packs_epi16, _mm_packs_epi32, _mm_set1_epi32,
        };
        let p = a.as_ptr().cast::<std::arch::x86_64::__m128i>();
        // SAFETY: SSE2 is part of every x86_64 target; the four unaligned 16-byte loads read
        // the 16 lanes of `a` (64 bytes) and nothing beyond.
        let bits = unsafe {
            let needle = _mm_set1_epi32(v as i32);
            let q = |k: usize| _mm_cmpeq_epi32(_mm_loadu_si128(p.add(k)), needle);
            // All-ones or zero 32-bit lanes narrow to 16, then 8 bits without changing.
            let lo = _mm_packs_epi32(q(0), q(1));
            let hi = _mm_packs_epi32(q(2), q(3));
            _mm_movemask_epi8(_mm_packs_epi16(lo, hi))
        };
        u64::from(bits as u16)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        lanes_eq_scalar(a, v)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn lanes_eq_scalar<T: PartialEq + Copy>(a: &[T; 16], v: T) -> u64 {
    let mut m = 0u64;
    for (i, x) in a.iter().enumerate() {
        m |= u64::from(*x == v) << i;
    }
    m
}

impl ProbeSet {
    /// Distinct probes held, answered or not.
    fn len(&self) -> usize {
        match &self.large {
            Some(l) => l.probes.len(),
            None => self.n + self.archive.len(),
        }
    }

    /// Small: bit `i` set for every slot held.
    #[inline]
    fn live(&self) -> u64 {
        low_bits(self.n)
    }

    /// Small: the blocks of slots 0–15, 16–31, ... in order.
    #[inline]
    fn blocks(&self) -> impl Iterator<Item = &Lanes> {
        std::iter::once(&self.first).chain(&self.more)
    }

    /// Small: block `b` (slots `16 b` to `16 b + 15`), if allocated.
    fn block_mut(&mut self, b: usize) -> Option<&mut Lanes> {
        match b {
            0 => Some(&mut self.first),
            b => self.more.get_mut(b - 1),
        }
    }

    /// Small: the port and lane value of slot `i` (`i < n`).
    fn slot(&self, i: usize) -> (u16, u32) {
        let l = if i < 16 { &self.first } else { &self.more[i / 16 - 1] };
        (l.ports[i % 16], l.hosts[i % 16])
    }

    /// Small: the target host of slot `i` (`i < n`).
    fn host(&self, i: usize) -> IpAddr {
        match self.v6 & (1 << i) {
            0 => IpAddr::V4(self.slot(i).1.into()),
            _ => IpAddr::V6(self.v6_hosts[i]),
        }
    }

    /// Small: bit `i` set for every slot whose port is `port`, and for every one whose
    /// target is `dst`: one pass over the blocks (an IPv6 lane match is confirmed with its
    /// address).
    #[inline]
    fn masks(&self, port: u16, dst: IpAddr) -> (u64, u64) {
        let lane = host_lane(dst);
        let (mut p, mut h) = (0u64, 0u64);
        for (b, l) in self.blocks().enumerate() {
            p |= ports_eq(&l.ports, port) << (16 * b);
            h |= hosts_eq(&l.hosts, lane) << (16 * b);
        }
        let h = match dst {
            IpAddr::V4(_) => h & !self.v6,
            IpAddr::V6(a) => {
                let mut m = h & self.v6 & self.live();
                let mut same = 0;
                while m != 0 {
                    let i = m.trailing_zeros() as usize;
                    if self.v6_hosts.get(i) == Some(&a) {
                        same |= 1 << i;
                    }
                    m &= m - 1;
                }
                same
            }
        };
        (p & self.live(), h & self.live())
    }

    /// Small: the slot of probe `(dst, port)`, if held.
    #[inline]
    fn find_small(&self, dst: IpAddr, port: u16) -> Option<usize> {
        let (p, h) = self.masks(port, dst);
        let m = p & h;
        (m != 0).then(|| m.trailing_zeros() as usize)
    }

    fn contains(&self, dst: IpAddr, port: u16) -> bool {
        match &self.large {
            Some(l) => l.probes.contains_key(&(dst, port)),
            None => self.find_small(dst, port).is_some() || self.is_archived(dst, port),
        }
    }

    /// Small: whether probe `(dst, port)` is in the archive (reads it only when its Bloom
    /// bit is set).
    #[inline]
    fn is_archived(&self, dst: IpAddr, port: u16) -> bool {
        let b = archive_bit(dst, port);
        self.archived[b / 64] & (1 << (b % 64)) != 0 && self.archive.contains(&(dst, port))
    }

    /// Small, when the lanes are full to a multiple of 16 and at least half of their probes
    /// were answered: move the answered ones to the archive (while it has room for them), so
    /// that a busy client's lanes hold its few unanswered probes. Changes nothing that the
    /// other methods answer. Returns how many moved.
    fn make_room(&mut self) -> usize {
        let n = self.n;
        let answered = self.answered.count_ones() as usize;
        if self.large.is_some()
            || n == 0
            || n % 16 != 0
            || 2 * answered < n
            || self.archive.len() + answered > ARCHIVE_MAX
        {
            return 0;
        }
        let mut kept = 0;
        for i in 0..n {
            if self.answered & (1 << i) != 0 {
                let probe = (self.host(i), self.slot(i).0);
                let b = archive_bit(probe.0, probe.1);
                self.archived[b / 64] |= 1 << (b % 64);
                self.archive.push(probe);
                continue;
            }
            let (p, h) = self.slot(i);
            if let Some(l) = self.block_mut(kept / 16) {
                l.ports[kept % 16] = p;
                l.hosts[kept % 16] = h;
            }
            let v6 = (self.v6 >> i) & 1;
            self.v6 = (self.v6 & !(1 << kept)) | (v6 << kept);
            if !self.v6_hosts.is_empty() {
                self.v6_hosts[kept] = self.v6_hosts[i];
            }
            kept += 1;
        }
        self.v6 &= low_bits(kept);
        self.v6_hosts.truncate(kept);
        self.answered = 0;
        self.n = kept;
        answered
    }

    /// Add probe `(dst, port)`, which must not be held yet. Returns the unanswered probes
    /// to `dst` and on `port`, this one included.
    fn insert(&mut self, dst: IpAddr, port: u16) -> (u32, u32) {
        self.make_room();
        if self.large.is_none() && (self.n >= SMALL_PROBES || self.archive.len() >= ARCHIVE_MAX) {
            let mut l = LargeProbes::default();
            // The lanes' probes come first, then the archived ones (all answered).
            for (i, (h, p)) in self.targets().into_iter().enumerate() {
                let answered = i >= self.n || (self.answered >> i) & 1 != 0;
                l.probes.insert((h, p), answered);
                if !answered {
                    *l.per_host.entry(h).or_insert(0) += 1;
                    *l.per_port.entry(p).or_insert(0) += 1;
                }
            }
            *self = ProbeSet {
                large: Some(Box::new(l)),
                ..ProbeSet::default()
            };
        }
        match &mut self.large {
            Some(l) => {
                l.probes.insert((dst, port), false);
                let host = l.per_host.entry(dst).or_insert(0);
                *host += 1;
                let on_port = l.per_port.entry(port).or_insert(0);
                *on_port += 1;
                (*host, *on_port)
            }
            None => {
                let (same_port, same_host) = self.masks(port, dst);
                let i = self.n;
                if i >= 16 && i % 16 == 0 && self.more.len() < i / 16 {
                    self.more.push(Lanes::default());
                }
                if let Some(l) = self.block_mut(i / 16) {
                    l.ports[i % 16] = port;
                    l.hosts[i % 16] = host_lane(dst);
                }
                // Bits of `v6` from `n` up are clear (`make_room` and `clear` keep them so).
                self.v6 |= u64::from(dst.is_ipv6()) << i;
                match dst {
                    // The first IPv6 target gives every slot before it an (unread) address.
                    IpAddr::V6(a) => {
                        self.v6_hosts.resize(i, std::net::Ipv6Addr::UNSPECIFIED);
                        self.v6_hosts.push(a);
                    }
                    IpAddr::V4(_) if !self.v6_hosts.is_empty() => {
                        self.v6_hosts.push(std::net::Ipv6Addr::UNSPECIFIED);
                    }
                    IpAddr::V4(_) => {}
                }
                self.n += 1;
                let open = !self.answered;
                (1 + (same_host & open).count_ones(), 1 + (same_port & open).count_ones())
            }
        }
    }

    /// Mark probe `(dst, port)` answered, if it is held and was not yet.
    fn answer(&mut self, dst: IpAddr, port: u16) {
        match &mut self.large {
            Some(l) => {
                if let Some(answered) = l.probes.get_mut(&(dst, port)) {
                    if !*answered {
                        *answered = true;
                        if let Some(n) = l.per_host.get_mut(&dst) {
                            *n = n.saturating_sub(1);
                        }
                        if let Some(n) = l.per_port.get_mut(&port) {
                            *n = n.saturating_sub(1);
                        }
                    }
                }
            }
            None => {
                if let Some(i) = self.find_small(dst, port) {
                    self.answered |= 1 << i;
                }
            }
        }
    }

    /// The probes held: a small set's in slot order, then the archived ones; a large one's
    /// in no particular order.
    fn targets(&self) -> Vec<(IpAddr, u16)> {
        match &self.large {
            Some(l) => l.probes.keys().copied().collect(),
            None => (0..self.n)
                .map(|i| (self.host(i), self.slot(i).0))
                .chain(self.archive.iter().copied())
                .collect(),
        }
    }

    /// Forget every probe (a small set keeps its vectors' room for the next window).
    fn clear(&mut self) {
        self.n = 0;
        self.answered = 0;
        self.v6 = 0;
        self.v6_hosts.clear();
        self.more.clear();
        self.archive.clear();
        self.archived = [0; 8];
        self.large = None;
    }
}

/// The port scan detector of one worker.
pub struct PortScan {
    cfg: PortScanConfig,
    sources: LruMap<Scoped, Source>,
    open: Vec<Scoped>,
    next_id: u64,
    /// Probes remembered over all sources (bounded by `max_tracked_probes`).
    probes_held: usize,
    /// Most distinct probes remembered per source and window (32 x the larger threshold):
    /// enough to reach either threshold when the probes are spread over several hosts or
    /// ports, while one source cannot take the whole global budget.
    per_source_probes: usize,
    /// Probes not remembered because a per-source or the global budget was spent.
    pub probes_dropped: u64,
    /// Episodes not opened because `max_open_alerts` were already open.
    pub suppressed: u64,
}

/// A source address and the scope it is unique in (see [`super::scope_of`]).
type Scoped = (IpAddr, u64);

fn has_episode(s: &Source) -> bool {
    s.episode.is_some()
}

impl PortScan {
    /// A detector with settings `cfg`.
    pub fn new(cfg: PortScanConfig) -> Self {
        // Enough for a scan interleaved over 32 targets to reach the threshold on each; the
        // global `max_probes` budget is what bounds memory.
        let per_source_probes = (cfg.vertical_ports.max(cfg.horizontal_hosts) as usize * 32).min(65_536);
        PortScan {
            sources: LruMap::new(cfg.max_sources),
            cfg,
            open: Vec::new(),
            next_id: 0,
            probes_held: 0,
            per_source_probes,
            probes_dropped: 0,
            suppressed: 0,
        }
    }

    /// Sources evicted from the table to make room (least recently used first).
    pub fn evicted(&self) -> u64 {
        self.sources.evicted
    }

    /// End every open episode (`Close` events for the announced ones) and forget all state:
    /// used when capture time jumps backwards and the windows no longer mean anything.
    pub fn reset(&mut self, out: &mut Vec<Event>) {
        for src in std::mem::take(&mut self.open) {
            if let Some(e) = self.sources.get_mut(&src).and_then(|s| s.episode.take()) {
                if e.announced {
                    out.push(event(&self.cfg, src, &e, Phase::Close));
                }
            }
        }
        self.sources.clear();
        self.probes_held = 0;
    }

    /// Start loading the source entry [`PortScan::on_packet`] will read for this input: its
    /// index bucket, or (`entry`, a few inputs later) the entry itself. Changes nothing.
    #[inline]
    pub fn prefetch(&self, p: &Packet, u: &Update, flow: &FlowView, entry: bool) {
        if !matches!(p.proto, ipproto::TCP | ipproto::UDP) {
            return;
        }
        let k = if u.first_reply {
            (flow.initiator, flow.scope)
        } else if u.new_flow && u.from_initiator {
            (p.src, flow.scope)
        } else {
            return;
        };
        if entry {
            self.sources.prefetch_entry(&k);
        } else {
            self.sources.prefetch(&k);
        }
    }

    /// Account one packet.
    #[inline]
    pub fn on_packet(&mut self, p: &Packet, u: &Update, flow: &FlowView, ts: u64) {
        let probe = u.new_flow
            && u.from_initiator
            && match p.proto {
                ipproto::TCP => p.tcp_flags & (tcpflags::SYN | tcpflags::ACK) == tcpflags::SYN,
                ipproto::UDP => true,
                _ => false,
            };
        let answer = u.first_reply
            && match p.proto {
                ipproto::TCP => p.tcp_flags & (tcpflags::SYN | tcpflags::ACK) == (tcpflags::SYN | tcpflags::ACK),
                ipproto::UDP => true,
                _ => false,
            };
        if answer {
            let scanner = (flow.initiator, flow.scope);
            let (dst, port) = flow.responder;
            if let Some(s) = self.sources.get_mut(&scanner) {
                s.probes.answer(dst, port);
                match &mut s.episode {
                    Some(e) => {
                        e.answered += 1;
                        e.dirty = true;
                    }
                    None => s.answers += 1,
                }
            }
            return;
        }
        if !probe {
            return;
        }
        let w = self.cfg.window_ns;
        let held = &mut self.probes_held;
        let scanner = (p.src, flow.scope);
        let s = self
            .sources
            .entry_evicting(scanner, Source::default, has_episode, |old| {
                *held = held.saturating_sub(old.probes.len())
            });
        if let Some(e) = &mut s.episode {
            e.probes += 1;
            e.last_ns = e.last_ns.max(ts);
            e.add_target(p.dst, p.dst_port);
            e.dirty = true;
            return;
        }
        if s.window_start == 0 || ts.saturating_sub(s.window_start) >= w {
            self.probes_held = self.probes_held.saturating_sub(s.probes.len());
            s.reset(ts);
        }
        s.attempts += 1;
        let (d, port) = (p.dst, p.dst_port);
        if s.probes.contains(d, port) {
            return;
        }
        if s.probes.len() >= self.per_source_probes || self.probes_held >= self.cfg.max_probes {
            self.probes_dropped += 1;
            return;
        }
        let (vertical, horizontal) = s.probes.insert(d, port);
        self.probes_held += 1;
        let v_hit = vertical >= self.cfg.vertical_ports;
        let h_hit = horizontal >= self.cfg.horizontal_hosts;
        if !(v_hit || h_hit) {
            return;
        }
        let (scan_type, observed, threshold) = match (v_hit, h_hit) {
            (true, true) => (
                "vertical+horizontal",
                f64::from(vertical),
                f64::from(self.cfg.vertical_ports),
            ),
            (true, false) => ("vertical", f64::from(vertical), f64::from(self.cfg.vertical_ports)),
            _ => (
                "horizontal",
                f64::from(horizontal),
                f64::from(self.cfg.horizontal_hosts),
            ),
        };
        if self.open.len() >= self.cfg.max_open_alerts {
            self.suppressed += 1;
            return;
        }
        self.next_id += 1;
        let mut e = Episode {
            id: self.next_id,
            first_ns: s.window_start,
            last_ns: ts,
            scan_type,
            observed,
            peak: observed,
            threshold,
            probes: s.attempts,
            answered: s.answers.min(s.attempts),
            ports: Box::new([0u64; 1024]),
            hosts_exact: Vec::new(),
            hosts: Hll::default(),
            scope_port: (scan_type == "horizontal").then_some(p.dst_port),
            context: Context::of_packet(p),
            dirty: false,
            announced: false,
        };
        // In address order, not the map's (randomly seeded) order, so that the sample of
        // targets is the same on every run.
        let mut probed = s.probes.targets();
        probed.sort_unstable();
        for (dst, port) in probed {
            e.add_target(dst, port);
        }
        self.probes_held = self.probes_held.saturating_sub(s.probes.len());
        s.reset(s.window_start);
        s.episode = Some(Box::new(e));
        self.open.push(scanner);
    }

    /// Once per second of capture time.
    pub fn tick(&mut self, now: u64, out: &mut Vec<Event>) {
        let mut i = 0;
        while i < self.open.len() {
            let src = self.open[i];
            let Some(s) = self.sources.get_mut(&src) else {
                self.open.swap_remove(i);
                continue;
            };
            let Some(e) = &mut s.episode else {
                self.open.swap_remove(i);
                continue;
            };
            e.observed = match e.scan_type {
                "horizontal" => e.distinct_hosts() as f64,
                _ => e.distinct_ports() as f64,
            };
            e.peak = e.peak.max(e.observed);
            if !e.announced {
                e.announced = true;
                e.dirty = false;
                out.push(event(&self.cfg, src, e, Phase::Open));
            } else if now.saturating_sub(e.last_ns) >= self.cfg.resolve_after_ns {
                out.push(event(&self.cfg, src, e, Phase::Close));
                s.episode = None;
                s.window_start = 0;
                self.open.swap_remove(i);
                continue;
            }
            if std::mem::take(&mut e.dirty) {
                out.push(event(&self.cfg, src, e, Phase::Update));
            }
            i += 1;
        }
        let w = self.cfg.window_ns;
        let held = &mut self.probes_held;
        self.sources.retain(|_, s| {
            let keep = s.episode.is_some() || now.saturating_sub(s.window_start) < w;
            if !keep {
                *held = held.saturating_sub(s.probes.len());
            }
            keep
        });
    }

    /// Final `Update` events for open episodes with unreported changes (end of input).
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        for src in &self.open {
            if let Some(e) = self.sources.get_mut(src).and_then(|s| s.episode.as_mut()) {
                if std::mem::take(&mut e.dirty) {
                    e.observed = match e.scan_type {
                        "horizontal" => e.distinct_hosts() as f64,
                        _ => e.distinct_ports() as f64,
                    };
                    e.peak = e.peak.max(e.observed);
                    out.push(event(&self.cfg, *src, e, Phase::Update));
                }
            }
        }
    }
}

fn event(cfg: &PortScanConfig, src: Scoped, e: &Episode, phase: Phase) -> Event {
    Event {
        kind: AlertKind::PortScan,
        phase,
        entity: src.0,
        scope: src.1,
        scope_port: e.scope_port,
        episode: e.id,
        first_seen_ns: e.first_ns,
        last_seen_ns: e.last_ns,
        observed: e.observed,
        peak: e.peak,
        threshold: e.threshold,
        window_s: cfg.window_ns as f64 / 1e9,
        unit: if e.scan_type == "horizontal" { "hosts" } else { "ports" },
        context: e.context.clone(),
        detail: Detail::PortScan {
            scan_type: e.scan_type,
            probes: e.probes,
            distinct_ports: e.distinct_ports(),
            distinct_hosts: e.distinct_hosts(),
            answered: e.answered.min(e.probes),
            targets_sample: e.hosts_exact.iter().take(SAMPLE).copied().collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// The three maps every source used to keep, as the reference for [`ProbeSet`].
    #[derive(Default)]
    struct Model {
        probes: HashMap<(IpAddr, u16), bool>,
        per_host: HashMap<IpAddr, u32>,
        per_port: HashMap<u16, u32>,
    }

    #[derive(Debug, Clone)]
    enum Op {
        Probe(u8, u16),
        Answer(u8, u16),
        MakeRoom,
        Clear,
    }

    /// Hosts 0..6 as IPv4, 6..12 as IPv6 (with ::ffff:10.0.0.n among them: the same bits as
    /// an IPv4 target, a different address).
    fn host(n: u8) -> IpAddr {
        if n < 6 {
            IpAddr::from([10, 0, 0, n])
        } else {
            IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, n - 6).to_ipv6_mapped())
        }
    }

    /// Operations on hosts 0..12 and ports `0..ports`.
    fn op(ports: u16) -> impl Strategy<Value = Op> {
        prop_oneof![
            // About 90 operations between clears: sets reach 16 and SMALL_PROBES probes.
            60 => (0u8..12, 0..ports).prop_map(|(h, p)| Op::Probe(h, p)),
            30 => (0u8..12, 0..ports).prop_map(|(h, p)| Op::Answer(h, p)),
            3 => Just(Op::MakeRoom),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Every operation gives the model's answer, below and above `SMALL_PROBES` (12 hosts
        /// x 16 ports can reach 192 probes) and across the move to maps.
        #[test]
        fn probe_set_matches_the_maps(ops in proptest::collection::vec(op(16), 1..400)) {
            check(ops)?;
        }

        /// The same on 4 ports (48 probes at most), where answers often hit a held probe and
        /// `make_room` archives answered ones.
        #[test]
        fn make_room_matches_the_model(ops in proptest::collection::vec(op(4), 1..400)) {
            check(ops)?;
        }
    }

    /// `make_room`, which must change nothing the model sees (the checks after every
    /// operation compare the set with it).
    fn room(set: &mut ProbeSet, m: &Model) -> Result<(), TestCaseError> {
        let moved = set.make_room();
        let answered = m.probes.values().filter(|a| **a).count();
        prop_assert!(moved <= answered);
        Ok(())
    }

    fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let (mut set, mut m) = (ProbeSet::default(), Model::default());
        for op in ops {
            match op {
                Op::Probe(h, port) => {
                    let d = host(h);
                    prop_assert_eq!(set.contains(d, port), m.probes.contains_key(&(d, port)));
                    if m.probes.contains_key(&(d, port)) {
                        continue;
                    }
                    // As the detector does before every new probe.
                    room(&mut set, &m)?;
                    m.probes.insert((d, port), false);
                    let v = {
                        let n = m.per_host.entry(d).or_insert(0);
                        *n += 1;
                        *n
                    };
                    let hz = {
                        let n = m.per_port.entry(port).or_insert(0);
                        *n += 1;
                        *n
                    };
                    prop_assert_eq!(set.insert(d, port), (v, hz));
                }
                Op::Answer(h, port) => {
                    let d = host(h);
                    set.answer(d, port);
                    if let Some(a) = m.probes.get_mut(&(d, port)) {
                        if !*a {
                            *a = true;
                            *m.per_host.get_mut(&d).unwrap() -= 1;
                            *m.per_port.get_mut(&port).unwrap() -= 1;
                        }
                    }
                }
                Op::MakeRoom => room(&mut set, &m)?,
                Op::Clear => {
                    set.clear();
                    m = Model::default();
                }
            }
            prop_assert_eq!(set.len(), m.probes.len());
            let mut got = set.targets();
            got.sort_unstable();
            let mut want: Vec<_> = m.probes.keys().copied().collect();
            want.sort_unstable();
            prop_assert_eq!(got, want);
        }
        Ok(())
    }

    /// A client that reconnects to targets it reached earlier in the window makes no new
    /// probes, also once their answered probes left the lanes for the archive.
    #[test]
    fn answered_targets_stay_known_after_make_room() {
        let mut set = ProbeSet::default();
        let hosts: Vec<IpAddr> = (0..40u8)
            .map(|i| match i % 4 {
                0 => IpAddr::from(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i))),
                _ => IpAddr::from([192, 0, 2, i]),
            })
            .collect();
        for (i, &h) in hosts.iter().enumerate() {
            assert!(!set.contains(h, 443));
            assert_eq!(set.insert(h, 443), (1, 1), "probe {i}");
            set.answer(h, 443);
        }
        assert!(!set.archive.is_empty() && set.n < 16, "{} in the lanes", set.n);
        assert_eq!(set.len(), 40);
        for h in &hosts {
            assert!(set.contains(*h, 443), "{h}");
            assert!(!set.contains(*h, 80), "{h}");
        }
        // Unanswered probes still count: one per new host, each on port 80.
        for (i, &h) in hosts.iter().enumerate() {
            assert_eq!(set.insert(h, 80), (1, i as u32 + 1));
        }
        assert_eq!((set.len(), set.archive.len(), set.n), (80, 40, 40));
    }

    /// Two IPv6 targets whose lane values collide are still two targets (their addresses
    /// decide), and so are an IPv6 target and the IPv4 address equal to its lane value.
    #[test]
    fn colliding_host_lanes_stay_apart() {
        let mut seen = HashMap::new();
        let (a, b) = (0u128..1 << 24)
            .map(|i: u128| {
                // Addresses scattered over the 96 bits below 2001:db8::/32.
                let bits = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) >> 32;
                IpAddr::from(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | bits))
            })
            .find_map(|ip| seen.insert(host_lane(ip), ip).map(|other| (other, ip)))
            .expect("a 32-bit lane value collides within 2^24 addresses");
        assert_ne!(a, b);
        assert_eq!(host_lane(a), host_lane(b));
        let v4 = IpAddr::from(std::net::Ipv4Addr::from(host_lane(a)));
        let mut set = ProbeSet::default();
        assert_eq!(set.insert(v4, 80), (1, 1));
        assert_eq!(set.insert(a, 80), (1, 2));
        assert!(!set.contains(b, 80));
        // b's first probe: 1 unanswered on b (a's and v4's do not count), 3 on port 80.
        assert_eq!(set.insert(b, 80), (1, 3));
        set.answer(b, 80);
        set.answer(v4, 80);
        // a's probe is still unanswered: a second one to a counts 2 on a, 1 on port 81.
        assert_eq!(set.insert(a, 81), (2, 1));
        assert_eq!(set.insert(b, 81), (1, 2));
        assert_eq!(set.insert(v4, 81), (1, 3));
        assert!(set.contains(a, 80) && set.contains(b, 80) && set.contains(v4, 80));
    }

    /// Past `SMALL_PROBES` distinct probes the set moves to its maps, keeping the answered
    /// marks and counts it had.
    #[test]
    fn move_to_maps_keeps_counts() {
        let mut set = ProbeSet::default();
        let d = host(1);
        for port in 0..SMALL_PROBES as u16 {
            set.insert(d, port);
        }
        set.answer(d, 0);
        set.answer(d, 1);
        assert!(set.large.is_none());
        // SMALL_PROBES probes to d, 2 answered: the next one makes SMALL_PROBES - 1
        // unanswered on d, 1 on its port.
        assert_eq!(set.insert(d, 1000), (SMALL_PROBES as u32 - 1, 1));
        assert!(set.large.is_some());
        assert_eq!(set.insert(host(2), 5), (1, 2));
        assert_eq!(set.len(), SMALL_PROBES + 2);
    }

    /// Archived probes move to the maps answered: 16 answered probes to d archived, then
    /// SMALL_PROBES unanswered ones fill the lanes; the next one counts SMALL_PROBES + 1 on d.
    #[test]
    fn move_to_maps_keeps_archived_probes_answered() {
        let mut set = ProbeSet::default();
        let d = host(7);
        for port in 0..16 {
            set.insert(d, port);
            set.answer(d, port);
        }
        for port in 100..100 + SMALL_PROBES as u16 {
            set.insert(d, port);
        }
        assert_eq!(
            (set.archive.len(), set.n, set.large.is_none()),
            (16, SMALL_PROBES, true)
        );
        assert_eq!(set.insert(d, 1000), (SMALL_PROBES as u32 + 1, 1));
        assert!(set.large.is_some());
        assert!(set.contains(d, 3) && set.contains(d, 100));
        assert_eq!(set.len(), 16 + SMALL_PROBES + 1);
    }
}
