//! Building blocks shared by detectors: a sliding-window rate counter and a bounded map.

use std::hash::Hash;

use std::hash::BuildHasher;

use crate::flow::index::{prefetch_value, FlowIndex};

/// Event counter over a sliding window of capture time, approximated by two adjacent
/// fixed buckets (the previous bucket is weighted by how much of it still overlaps the
/// window). 16 bytes; O(1) per event.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateWindow {
    start_ns: u64,
    cur: u32,
    prev: u32,
}

impl RateWindow {
    fn roll(&mut self, now_ns: u64, window_ns: u64) {
        if self.start_ns == 0 {
            self.start_ns = now_ns;
            return;
        }
        let elapsed = now_ns.saturating_sub(self.start_ns);
        if elapsed >= window_ns {
            self.prev = if elapsed >= 2 * window_ns { 0 } else { self.cur };
            self.cur = 0;
            self.start_ns = now_ns - elapsed % window_ns;
        }
    }

    /// Count `n` events at `now_ns`.
    #[inline]
    pub fn add(&mut self, now_ns: u64, window_ns: u64, n: u32) {
        self.roll(now_ns, window_ns);
        self.cur = self.cur.saturating_add(n);
    }

    /// Events in the window ending at `now_ns` (fractional because of the weighting).
    pub fn count(&mut self, now_ns: u64, window_ns: u64) -> f64 {
        self.roll(now_ns, window_ns);
        let into = now_ns.saturating_sub(self.start_ns) as f64 / window_ns.max(1) as f64;
        f64::from(self.prev) * (1.0 - into).max(0.0) + f64::from(self.cur)
    }

    /// Events per second over the window ending at `now_ns`.
    pub fn rate(&mut self, now_ns: u64, window_ns: u64) -> f64 {
        self.count(now_ns, window_ns) / (window_ns.max(1) as f64 * 1e-9)
    }

    /// Whether nothing was counted for two windows before `now_ns`.
    pub fn idle(&self, now_ns: u64, window_ns: u64) -> bool {
        now_ns.saturating_sub(self.start_ns) >= 2 * window_ns
    }
}

/// A hash map with a fixed capacity, a keyed (randomly seeded) hash — attackers choose the
/// keys — and least-recently-used eviction: when full, inserting a key evicts the entry
/// touched longest ago, so junk keys cannot keep a real victim or scanner out of the table
/// (an attack is touched all the time, junk cycling through the table is not). Entries for
/// which the `protected` predicate holds (an open alert episode) are skipped by eviction.
/// O(1) per operation; nothing allocates once the table has grown to capacity.
pub struct LruMap<K, V> {
    index: FlowIndex,
    nodes: Vec<Node<K, V>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    hasher: foldhash::fast::RandomState,
    capacity: usize,
    /// Entries evicted to make room since start (not reset by [`LruMap::clear`]).
    pub evicted: u64,
}

const NIL: u32 = u32::MAX;

struct Node<K, V> {
    kv: Option<(K, V)>,
    prev: u32,
    next: u32,
}

impl<K: Hash + Eq + Clone, V> LruMap<K, V> {
    /// A map of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        LruMap {
            index: FlowIndex::new(capacity.clamp(1, NIL as usize - 1)),
            nodes: crate::flow::index::reserve_huge(capacity.clamp(1, NIL as usize - 1), 4096),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            hasher: Default::default(),
            capacity: capacity.clamp(1, NIL as usize - 1),
            evicted: 0,
        }
    }

    /// Remove every entry, keeping the room the entries took (the index is rebuilt
    /// empty, at the map's capacity). [`LruMap::evicted`] keeps
    /// counting: it is a total since start, exported as a Prometheus counter, which must
    /// never go back.
    pub fn clear(&mut self) {
        self.index = FlowIndex::new(self.capacity);
        self.nodes.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
    }

    fn find(&self, k: &K) -> Option<u32> {
        let h = self.hasher.hash_one(k);
        let nodes = &self.nodes;
        self.index
            .find(h, |i| nodes[i as usize].kv.as_ref().is_some_and(|(nk, _)| nk == k))
    }

    /// Start loading the index bucket of `k` (a lookup a few detector inputs later).
    /// Changes nothing.
    #[inline]
    pub fn prefetch(&self, k: &K) {
        self.index.prefetch(self.hasher.hash_one(k));
    }

    /// Start loading the entry `k` most likely has (reads its index bucket, best prefetched
    /// before). Changes nothing.
    #[inline]
    pub fn prefetch_entry(&self, k: &K) {
        let h = self.hasher.hash_one(k);
        if let Some(n) = self.index.candidate(h).and_then(|i| self.nodes.get(i as usize)) {
            prefetch_value(n);
        }
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = (self.nodes[i as usize].prev, self.nodes[i as usize].next);
        match p {
            NIL => self.head = n,
            p => self.nodes[p as usize].next = n,
        }
        match n {
            NIL => self.tail = p,
            n => self.nodes[n as usize].prev = p,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = old;
        match old {
            NIL => self.tail = i,
            o => self.nodes[o as usize].prev = i,
        }
        self.head = i;
    }

    fn remove_slot(&mut self, i: u32) -> Option<(K, V)> {
        self.unlink(i);
        let kv = self.nodes[i as usize].kv.take();
        if let Some((k, _)) = &kv {
            self.index.remove(self.hasher.hash_one(k), i);
        }
        self.free.push(i);
        kv
    }

    /// The entry for `k`, made most recently used; inserted with `make` when absent, evicting
    /// the least recently used entry that is not `protected` when the map is full.
    #[inline]
    pub fn entry(&mut self, k: K, make: impl FnOnce() -> V, protected: impl Fn(&V) -> bool) -> &mut V {
        self.entry_evicting(k, make, protected, |_| {})
    }

    /// As [`LruMap::entry`]; an evicted value is handed to `on_evict` before it is dropped.
    #[inline]
    pub fn entry_evicting(
        &mut self,
        k: K,
        make: impl FnOnce() -> V,
        protected: impl Fn(&V) -> bool,
        on_evict: impl FnOnce(V),
    ) -> &mut V {
        let i = match self.find(&k) {
            Some(i) => {
                if self.head != i {
                    self.unlink(i);
                    self.push_front(i);
                }
                i
            }
            None => {
                if self.index.len() >= self.capacity {
                    if let Some(v) = self.evict_one(&protected) {
                        on_evict(v);
                    }
                }
                let node = Node {
                    kv: Some((k.clone(), make())),
                    prev: NIL,
                    next: NIL,
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.nodes[i as usize] = node;
                        i
                    }
                    None => {
                        self.nodes.push(node);
                        (self.nodes.len() - 1) as u32
                    }
                };
                let h = self.hasher.hash_one(&k);
                let (nodes, hasher) = (&self.nodes, &self.hasher);
                self.index.insert(h, i, |j| {
                    nodes[j as usize].kv.as_ref().map_or(0, |(nk, _)| hasher.hash_one(nk))
                });
                self.push_front(i);
                i
            }
        };
        match &mut self.nodes[i as usize].kv {
            Some((_, v)) => v,
            None => unreachable!("a linked node holds an entry"),
        }
    }

    /// Evict the least recently used unprotected entry; protected ones met on the way are
    /// moved to the front. If every entry is protected, the oldest is evicted anyway: the
    /// capacity is a hard bound.
    fn evict_one(&mut self, protected: &impl Fn(&V) -> bool) -> Option<V> {
        let mut budget = self.index.len();
        let mut t = self.tail;
        while t != NIL && budget > 0 {
            let keep = self.nodes[t as usize].kv.as_ref().is_some_and(|(_, v)| protected(v));
            if !keep {
                break;
            }
            self.unlink(t);
            self.push_front(t);
            t = self.tail;
            budget -= 1;
        }
        if t == NIL {
            return None;
        }
        self.evicted += 1;
        self.remove_slot(t).map(|(_, v)| v)
    }

    /// The entry for `k`, if present (its recency is left alone).
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let i = self.find(k)?;
        self.nodes[i as usize].kv.as_mut().map(|(_, v)| v)
    }

    /// Keep only the entries for which `f` returns true.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        for i in 0..self.nodes.len() as u32 {
            let drop = match &mut self.nodes[i as usize].kv {
                Some((k, v)) => !f(k, v),
                None => false,
            };
            if drop {
                self.remove_slot(i);
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn steady_rate_is_measured() {
        let mut w = RateWindow::default();
        // 100 events per second for 20 s.
        for i in 0..2000u64 {
            w.add(S + i * S / 100, 5 * S, 1);
        }
        let r = w.rate(S + 20 * S, 5 * S);
        assert!((r - 100.0).abs() < 2.0, "{r}");
        assert_eq!(w.rate(S + 40 * S, 5 * S), 0.0);
    }

    #[test]
    fn lru_map_evicts_least_recently_used_unprotected() {
        let mut m: LruMap<u32, u32> = LruMap::new(3);
        let unprotected = |_: &u32| false;
        *m.entry(1, || 10, unprotected) += 1;
        m.entry(2, || 20, unprotected);
        m.entry(3, || 30, unprotected);
        m.entry(1, || 0, unprotected); // 1 is now the most recent; 2 the least
        m.entry(4, || 40, unprotected);
        assert_eq!((m.len(), m.evicted), (3, 1));
        assert!(m.get_mut(&2).is_none());
        assert_eq!(m.get_mut(&1).copied(), Some(11));
        // Protected entries (value >= 30 here) survive; 1 (value 11) goes.
        m.entry(5, || 50, |v| *v >= 30);
        assert!(m.get_mut(&1).is_none());
        assert!(m.get_mut(&3).is_some() && m.get_mut(&4).is_some() && m.get_mut(&5).is_some());
        m.retain(|k, _| *k != 4);
        assert_eq!(m.len(), 2);
        m.entry(6, || 60, unprotected);
        m.entry(7, || 70, unprotected);
        assert_eq!(m.len(), 3, "capacity is a hard bound");
    }

    /// Junk keys cycling through a full table do not evict a key touched all the time.
    #[test]
    fn hot_key_survives_churn() {
        let mut m: LruMap<u32, u32> = LruMap::new(100);
        for round in 0..50u32 {
            *m.entry(0, || 0, |_| false) += 1;
            for j in 0..99u32 {
                m.entry(1 + (round * 99 + j) % 10_000, || 0, |_| false);
            }
        }
        assert_eq!(m.get_mut(&0).copied(), Some(50));
    }

    /// Junk keys touched twice each (a second chance would treat them as hot as the key)
    /// still cannot evict a key touched after every half-table of them.
    #[test]
    fn hot_key_survives_junk_touched_twice() {
        let mut m: LruMap<u32, u32> = LruMap::new(64);
        for round in 0..100u32 {
            *m.entry(0, || 0, |_| false) += 1;
            for j in 0..32u32 {
                let junk = 1 + round * 32 + j;
                m.entry(junk, || 0, |_| false);
                m.entry(junk, || 0, |_| false);
            }
        }
        assert_eq!(m.get_mut(&0).copied(), Some(100));
    }

    /// A cleared map is an empty map of the same capacity (nothing found; it fills and
    /// evicts as a new one does) whose eviction total goes on from where it was.
    #[test]
    fn cleared_map_behaves_as_new() {
        let mut m: LruMap<u32, u32> = LruMap::new(2);
        for k in 0..5 {
            m.entry(k, || k, |_| false);
        }
        assert_eq!((m.len(), m.evicted), (2, 3));
        m.clear();
        assert_eq!((m.len(), m.evicted), (0, 3));
        assert!(m.get_mut(&4).is_none() && m.get_mut(&3).is_none());
        m.entry(7, || 70, |_| false);
        m.entry(8, || 80, |_| false);
        m.entry(9, || 90, |_| false);
        assert_eq!((m.len(), m.evicted), (2, 4));
        assert!(m.get_mut(&7).is_none());
        assert_eq!(m.get_mut(&9).copied(), Some(90));
    }
}
