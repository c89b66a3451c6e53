//! The flow table's hash index: a flow key's 64-bit hash → the slot of its flow in the
//! table's slab.
//!
//! Open addressing over buckets of one cache line (64 bytes): ten entries, each a 12-bit tag
//! from the hash, a 4-bit distance from its home bucket and a 32-bit slot, and an overflow
//! count. A lookup reads the key's home bucket, compares tags, and checks the stored key only
//! of a flow whose tag matches (a wrong match costs one flow read, about once in 500 lookups
//! in a full bucket); it reads the next bucket only while the overflow count says that some
//! key whose home is this bucket or an earlier one was placed further on because it was full.
//! So a lookup usually touches two cache lines, the bucket and the flow, and
//! [`FlowIndex::prefetch`] and [`FlowIndex::candidate`] let a caller that knows the hashes of
//! the next packets start both loads early.
//!
//! Removing decrements the overflow counts that inserting incremented, and moves entries
//! that were placed past the freed entry's bucket back into it (their distance says where
//! their home is, no rehash needed), so that a table churning at capacity (a flood of
//! spoofed sources: evict one flow, insert one) keeps its overflow runs as short as a freshly
//! filled one: without that, displaced entries would stay displaced and the overflow counts
//! would act as tombstones, lengthening every lookup of a new key.
//!
//! The home bucket is taken from the hash's lower 32 bits by multiply-shift, so the bucket
//! count need not be a power of two: the index grows by doubling up to `capacity / 8`
//! buckets, 8 bytes per flow in a full table (eight flows per bucket on average; 8 to 16
//! bytes per flow while it grows).

/// Entries per bucket.
const WAYS: usize = 10;
/// The distance field of an entry at least this many buckets from home: its home is not
/// known without its hash, so removals leave it where it is.
const FAR: u16 = 15;
/// Most flows per bucket on average before the index grows (at its final size, when full).
const LOAD: usize = 8;
/// Buckets of a new index (at most those of its final size), unless made with
/// [`FlowIndex::with_start`].
const START_BUCKETS: usize = 1 << 10;

#[repr(C, align(64))]
#[derive(Clone, Copy, Default)]
struct Bucket {
    /// Per entry: its [`tag`] in the upper 12 bits, its distance from its home bucket in the
    /// lower 4 (at most [`FAR`]).
    meta: [u16; WAYS],
    /// `slot + 1` of the entries; 0 is an empty entry.
    slots: [u32; WAYS],
    /// Entries whose home is this bucket or an earlier one, placed after it because it was
    /// full when they were inserted, and not removed since.
    overflow: u32,
}

/// The tag bits of an entry's `meta` (the lower 4 are its distance from home).
const TAG_BITS: u16 = 0xFFF0;

/// The tag of hash `h` in an entry's `meta`: 12 bits the home bucket is not taken from.
#[inline]
fn tag(h: u64) -> u16 {
    ((h >> 32) as u16) & TAG_BITS
}

/// How many entries ahead [`FlowIndex::grow`] prefetches the key of the entry to rehash.
const GROW_AHEAD: usize = 16;

/// The hash of an entry already in an index, by its slot, for growing the index; the keys
/// live with the caller. Any `Fn(u32) -> u64` is one (without prefetching).
pub(crate) trait Rehash {
    /// The hash of the key in `slot`.
    fn hash(&self, slot: u32) -> u64;
    /// Start loading what [`Rehash::hash`] will read for `slot` (a hint; changes nothing).
    #[inline]
    fn prefetch(&self, _slot: u32) {}
}

impl<F: Fn(u32) -> u64> Rehash for F {
    #[inline]
    fn hash(&self, slot: u32) -> u64 {
        self(slot)
    }
}

/// Index from a 64-bit hash to a `u32` slot (see the module documentation).
pub(crate) struct FlowIndex {
    buckets: Vec<Bucket>,
    len: usize,
    max_buckets: usize,
}

impl FlowIndex {
    /// An index for at most `capacity` entries (at least 1; it holds more, less efficiently).
    pub(crate) fn new(capacity: usize) -> FlowIndex {
        FlowIndex::with_start(capacity, START_BUCKETS * LOAD)
    }

    /// [`FlowIndex::new`] starting with room for `start` entries before it first grows (at
    /// most `capacity`): growing rehashes every entry.
    pub(crate) fn with_start(capacity: usize, start: usize) -> FlowIndex {
        let max_buckets = capacity.max(1).div_ceil(LOAD);
        FlowIndex {
            buckets: vec![Bucket::default(); max_buckets.min(start.div_ceil(LOAD)).max(1)],
            len: 0,
            max_buckets,
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, h: u64) -> usize {
        (((h & 0xFFFF_FFFF) * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// The slot of the entry with hash `h` for which `eq(slot)` holds.
    #[inline]
    pub(crate) fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(h);
        let mut b = self.home(h);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            for w in 0..WAYS {
                let s = bucket.slots[w];
                if bucket.meta[w] & TAG_BITS == t && s != 0 && eq(s - 1) {
                    return Some(s - 1);
                }
            }
            if bucket.overflow == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Start loading the home bucket of hash `h` into the cache.
    #[inline]
    pub(crate) fn prefetch(&self, h: u64) {
        prefetch((&self.buckets[self.home(h)] as *const Bucket).cast());
    }

    /// The slot of the first entry in the home bucket of `h` whose tag matches: most likely
    /// the flow [`FlowIndex::find`] will return, to prefetch. Reads the bucket.
    #[inline]
    pub(crate) fn candidate(&self, h: u64) -> Option<u32> {
        let (t, bucket) = (tag(h), &self.buckets[self.home(h)]);
        (0..WAYS)
            .find(|&w| bucket.meta[w] & TAG_BITS == t && bucket.slots[w] != 0)
            .map(|w| bucket.slots[w] - 1)
    }

    /// Add `slot` under hash `h` (the caller knows it is not there yet). `rehash` gives the
    /// hash of any slot already in the index, for growing it.
    pub(crate) fn insert(&mut self, h: u64, slot: u32, rehash: impl Rehash) {
        let n = self.buckets.len();
        if self.len >= n * LOAD && n < self.max_buckets {
            self.grow((n * 2).min(self.max_buckets), rehash);
        } else if self.len >= n * (WAYS - 1) {
            // More entries than the capacity it was made for: keep a free entry anyway.
            self.grow(n * 2, rehash);
        }
        self.place(h, slot);
        self.len += 1;
    }

    fn place(&mut self, h: u64, slot: u32) {
        let mut b = self.home(h);
        // There is a free entry: len < (WAYS - 1) x buckets (see insert).
        for d in 0..self.buckets.len() {
            let next = self.next(b);
            let bucket = &mut self.buckets[b];
            if let Some(w) = bucket.slots.iter().position(|&s| s == 0) {
                bucket.meta[w] = tag(h) | (d.min(FAR as usize) as u16);
                bucket.slots[w] = slot + 1;
                return;
            }
            bucket.overflow += 1;
            b = next;
        }
        unreachable_full();
    }

    /// Remove `slot`, inserted under hash `h`. Returns whether it was there.
    pub(crate) fn remove(&mut self, h: u64, slot: u32) -> bool {
        let home = self.home(h);
        let mut b = home;
        let mut found = None;
        for _ in 0..self.buckets.len() {
            if let Some(w) = self.buckets[b].slots.iter().position(|&s| s == slot + 1) {
                found = Some((b, w));
                break;
            }
            if self.buckets[b].overflow == 0 {
                break;
            }
            b = self.next(b);
        }
        let Some((at, w)) = found else {
            return false;
        };
        self.buckets[at].slots[w] = 0;
        self.buckets[at].meta[w] = 0;
        self.unpass(home, at);
        self.len -= 1;
        self.refill(at, w);
        true
    }

    /// An entry placed in bucket `to` no longer passes buckets `from` up to `to` (excluded):
    /// decrement their overflow counts.
    fn unpass(&mut self, from: usize, to: usize) {
        let mut b = from;
        while b != to {
            self.buckets[b].overflow -= 1;
            b = self.next(b);
        }
    }

    /// Entry `w` of bucket `hole` was just emptied: move into it an entry placed further on
    /// that passed this bucket (its home is at or before it), then fill the place that one
    /// left, and so on. Only buckets reached through non-zero overflow counts are looked at:
    /// past a bucket nobody passed, nobody passed the hole either.
    fn refill(&mut self, mut hole: usize, mut hw: usize) {
        let n = self.buckets.len();
        'fill: while self.buckets[hole].overflow != 0 {
            let mut j = self.next(hole);
            for gap in 1..usize::from(FAR) {
                let bucket = &self.buckets[j];
                let pick = (0..WAYS).find(|&w| {
                    let d = usize::from(bucket.meta[w] & !TAG_BITS);
                    bucket.slots[w] != 0 && d < usize::from(FAR) && d >= gap
                });
                if let Some(w) = pick {
                    let (meta, slot) = (bucket.meta[w], bucket.slots[w]);
                    self.buckets[hole].meta[hw] = meta - gap as u16;
                    self.buckets[hole].slots[hw] = slot;
                    self.buckets[j].meta[w] = 0;
                    self.buckets[j].slots[w] = 0;
                    self.unpass(hole, j);
                    (hole, hw) = (j, w);
                    continue 'fill;
                }
                if self.buckets[j].overflow == 0 || gap + 1 >= n {
                    break;
                }
                j = self.next(j);
            }
            break;
        }
    }

    /// Move every entry into `n` buckets. The entries' keys are read in random order (a
    /// cache miss each), so the key of the entry [`GROW_AHEAD`] places further on is
    /// prefetched meanwhile.
    fn grow(&mut self, n: usize, rehash: impl Rehash) {
        let mut fresh = reserve_huge(n, n);
        fresh.resize(n, Bucket::default());
        let old = std::mem::replace(&mut self.buckets, fresh);
        let slots = || old.iter().flat_map(|b| b.slots).filter(|&s| s != 0).map(|s| s - 1);
        let mut ahead = slots().skip(GROW_AHEAD);
        for s in slots() {
            if let Some(next) = ahead.next() {
                rehash.prefetch(next);
            }
            self.place(rehash.hash(s), s);
        }
    }

    /// The slots in the index, in no particular order.
    fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.slots)
            .filter(|&s| s != 0)
            .map(|s| s - 1)
    }

    /// Bytes of memory the buckets take.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }
}

/// A map of `Copy` keys and values over a [`FlowIndex`] and a slab, for lookups on the
/// per-packet path that a caller can prefetch ([`SlabMap::prefetch`] a few packets ahead,
/// then [`SlabMap::prefetch_entry`]). Keys are hashed with a randomly seeded hasher.
pub(crate) struct SlabMap<K, V> {
    hasher: foldhash::fast::RandomState,
    index: FlowIndex,
    slab: Vec<(K, V)>,
    free: Vec<u32>,
}

impl<K: std::hash::Hash + Eq + Copy, V: Copy> SlabMap<K, V> {
    /// A map for about `capacity` entries (it holds more, less efficiently).
    pub(crate) fn new(capacity: usize) -> Self {
        SlabMap {
            hasher: foldhash::fast::RandomState::default(),
            index: FlowIndex::new(capacity),
            slab: reserve_huge(capacity, 0),
            free: Vec::new(),
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The hash of `k`, for the `_hashed` and prefetch calls.
    #[inline]
    pub(crate) fn hash(&self, k: &K) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(k)
    }

    #[inline]
    fn slot(&self, h: u64, k: &K) -> Option<u32> {
        let slab = &self.slab;
        self.index.find(h, |i| slab[i as usize].0 == *k)
    }

    /// The value of `k`.
    #[inline]
    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.get_hashed(self.hash(k), k)
    }

    /// The value of `k`, whose [`SlabMap::hash`] is `h`.
    #[inline]
    pub(crate) fn get_hashed(&self, h: u64, k: &K) -> Option<&V> {
        self.slot(h, k).map(|i| &self.slab[i as usize].1)
    }

    /// The value of `k`, to change.
    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let i = self.slot(self.hash(k), k)?;
        Some(&mut self.slab[i as usize].1)
    }

    /// The value of `k`, inserting `v` first when there is none.
    pub(crate) fn get_or_insert(&mut self, k: K, v: V) -> &mut V {
        let h = self.hash(&k);
        let i = match self.slot(h, &k) {
            Some(i) => i,
            None => {
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slab[i as usize] = (k, v);
                        i
                    }
                    None => {
                        self.slab.push((k, v));
                        (self.slab.len() - 1) as u32
                    }
                };
                let (slab, hasher) = (&self.slab, &self.hasher);
                self.index.insert(h, i, |j| {
                    use std::hash::BuildHasher;
                    hasher.hash_one(slab[j as usize].0)
                });
                i
            }
        };
        &mut self.slab[i as usize].1
    }

    /// Remove `k`, returning its value.
    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        let h = self.hash(k);
        let i = self.slot(h, k)?;
        self.index.remove(h, i);
        self.free.push(i);
        Some(self.slab[i as usize].1)
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let slab = &self.slab;
        let mut live = vec![false; slab.len()];
        for i in self.index.slots() {
            live[i as usize] = true;
        }
        slab.iter().zip(live).filter(|(_, l)| *l).map(|((k, v), _)| (k, v))
    }

    /// Start loading the index bucket of a key hashed `h`. Changes nothing.
    #[inline]
    pub(crate) fn prefetch(&self, h: u64) {
        self.index.prefetch(h);
    }

    /// Start loading the entry a key hashed `h` most likely has (reads its index bucket,
    /// best prefetched before). Changes nothing.
    #[inline]
    pub(crate) fn prefetch_entry(&self, h: u64) {
        if let Some(e) = self.index.candidate(h).and_then(|i| self.slab.get(i as usize)) {
            prefetch_value(e);
        }
    }
}

impl<K: std::fmt::Debug, V> std::fmt::Debug for SlabMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlabMap")
            .field("len", &self.index.len())
            .finish_non_exhaustive()
    }
}

#[cold]
fn unreachable_full() {
    debug_assert!(false, "flow index full: more entries than its capacity");
}

/// An empty vector with room for `capacity` items reserved up front (address space only:
/// pages are touched as items are pushed) and advised for huge pages ([`advise_huge`]), so
/// that a table that fills up to its capacity never moves (no copy of every entry when it
/// would double, a stall a live capture would drop packets in). Room for `fallback` items
/// that grows on demand instead when address space is accounted ([`reservation_is_free`]),
/// where a reservation would take from what later allocations may use, or when it is
/// refused.
pub(crate) fn reserve_huge<T>(capacity: usize, fallback: usize) -> Vec<T> {
    let mut v = Vec::new();
    if !reservation_is_free() || v.try_reserve_exact(capacity).is_err() {
        v = Vec::with_capacity(capacity.min(fallback));
    }
    advise_huge(&v);
    v
}

/// Whether reserving address space costs nothing that other allocations need: no
/// address-space limit on the process (`RLIMIT_AS`, `ulimit -v`, systemd `LimitAS=`) and
/// no strict overcommit accounting (`vm.overcommit_memory = 2`), under which a reservation
/// counts as memory committed. Read once per process.
fn reservation_is_free() -> bool {
    static FREE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FREE.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes the struct it is given.
            let unlimited =
                unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0 && lim.rlim_cur == libc::RLIM_INFINITY;
            let strict = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|m| m.trim() == "2");
            unlimited && !strict
        }
        #[cfg(not(target_os = "linux"))]
        false
    })
}

/// Ask the kernel to back the buffer of `v` with transparent huge pages (2 MiB) where it
/// spans whole ones: random lookups into tables of tens of megabytes then miss the TLB far
/// less often. A hint; does nothing for buffers under 4 MiB or off Linux.
pub(crate) fn advise_huge<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
        if bytes < 2 * HUGE {
            return;
        }
        let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (v.as_ptr() as usize + bytes) & !(HUGE - 1);
        if end > start {
            // SAFETY: the range lies inside the vector's own allocation; MADV_HUGEPAGE only
            // changes how the kernel backs it, never its contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// Start loading the cache line holding `p` (a hint: any address is allowed, none is read).
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of every x86_64 target, and a prefetch neither reads nor
        // writes memory nor faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Start loading every cache line `v` spans (a hint, as [`prefetch`]).
#[inline(always)]
pub(crate) fn prefetch_value<T>(v: &T) {
    let p = (v as *const T).cast::<u8>();
    let size = std::mem::size_of::<T>();
    let mut off = 0;
    while off < size {
        prefetch(p.wrapping_add(off));
        off += 64;
    }
    // The last line too when `v` may start inside a line (a constant test: nothing for a
    // type aligned to lines).
    if size > 0 && std::mem::align_of::<T>() % 64 != 0 {
        prefetch(p.wrapping_add(size - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes chosen to collide: all in home bucket 0 of a small index.
    fn crowded(i: u32) -> u64 {
        u64::from(i.wrapping_mul(0x9E37_79B9)) << 32 | u64::from(i % 3)
    }

    #[test]
    fn finds_removes_and_reuses_without_tombstones() {
        let mut ix = FlowIndex::new(1000);
        for s in 0..1000u32 {
            ix.insert(crowded(s), s, crowded);
        }
        assert_eq!(ix.len(), 1000);
        for s in 0..1000u32 {
            assert_eq!(ix.find(crowded(s), |x| x == s), Some(s));
        }
        assert_eq!(ix.find(crowded(5), |x| x == 6), None);
        for s in (0..1000u32).step_by(2) {
            assert!(ix.remove(crowded(s), s));
        }
        assert!(!ix.remove(crowded(0), 0));
        assert_eq!(ix.len(), 500);
        for s in 0..1000u32 {
            assert_eq!(ix.find(crowded(s), |x| x == s).is_some(), s % 2 == 1);
        }
        for s in (1..1000u32).step_by(2) {
            assert!(ix.remove(crowded(s), s));
        }
        // Every overflow count went back to zero: no tombstones.
        assert!(ix.buckets.iter().all(|b| b.overflow == 0 && b.slots == [0; WAYS]));
    }

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn holds_more_than_its_capacity() {
        let h = |s: u32| u64::from(s).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut ix = FlowIndex::new(10);
        for s in 0..5000u32 {
            ix.insert(h(s), s, h);
        }
        assert!((0..5000u32).all(|s| ix.find(h(s), |x| x == s) == Some(s)));
        assert!(ix.len() <= ix.buckets.len() * (WAYS - 1));
    }

    #[test]
    fn grows_to_an_eighth_of_the_capacity_in_buckets() {
        let n = 100_000u32;
        let h = |s: u32| u64::from(s).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut ix = FlowIndex::new(n as usize);
        for s in 0..n {
            ix.insert(h(s), s, h);
        }
        assert_eq!(ix.buckets.len(), 12_500);
        assert_eq!(ix.bytes(), 12_500 * 64);
        let mut home = 0;
        for s in 0..n {
            assert_eq!(ix.find(h(s), |x| x == s), Some(s));
            home += usize::from(ix.candidate(h(s)) == Some(s));
        }
        // Eight of ten entries used on average: most flows sit in their home bucket, where
        // the prefetch candidate finds them.
        assert!(home > n as usize * 9 / 10, "{home} of {n} in their home bucket");
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod properties;
