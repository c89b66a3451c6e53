//! Building blocks shared by detectors: a sliding-window rate counter and a bounded map.

use std::hash::Hash;

use hashbrown::HashMap;

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

/// A hash map with a fixed capacity and a keyed, randomly seeded hash (attackers choose
/// the keys). When full, new keys are refused and counted in `rejected`; callers sweep
/// stale entries with [`BoundedMap::retain`].
pub struct BoundedMap<K, V> {
    map: HashMap<K, V, foldhash::fast::RandomState>,
    capacity: usize,
    /// Keys refused because the map was full.
    pub rejected: u64,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    /// A map of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            map: HashMap::with_capacity_and_hasher(capacity.min(4096), Default::default()),
            capacity: capacity.max(1),
            rejected: 0,
        }
    }

    /// The entry for `k`, inserted with `make` when absent; `None` when the map is full.
    #[inline]
    pub fn entry(&mut self, k: K, make: impl FnOnce() -> V) -> Option<&mut V> {
        let full = self.map.len() >= self.capacity;
        match self.map.entry(k) {
            hashbrown::hash_map::Entry::Occupied(o) => Some(o.into_mut()),
            hashbrown::hash_map::Entry::Vacant(v) => {
                if full {
                    self.rejected += 1;
                    None
                } else {
                    Some(v.insert(make()))
                }
            }
        }
    }

    /// The entry for `k`, if present.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k)
    }

    /// Keep only the entries for which `f` returns true.
    pub fn retain(&mut self, f: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(f)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
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
    fn bounded_map_refuses_when_full() {
        let mut m = BoundedMap::new(2);
        assert!(m.entry(1, || 0).is_some());
        assert!(m.entry(2, || 0).is_some());
        assert!(m.entry(3, || 0).is_none());
        assert!(m.entry(1, || 0).is_some());
        assert_eq!((m.len(), m.rejected), (2, 1));
    }
}
