//! Property tests of [`FlowIndex`] and [`SlabMap`] against `std` maps: random insert /
//! remove / find sequences with adversarial hash patterns (one hash for every key, one home
//! bucket, the last bucket so that chains wrap, tag 0, two hashes), checking after each step
//! that every overflow count and distance equals what the true homes say.
use super::*;
use std::collections::HashMap;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Check internal invariants: overflow counts equal the number of entries whose probe path
/// passes each bucket; every model entry findable; len matches.
fn check(ix: &FlowIndex, model: &HashMap<u32, u64>) {
    let n = ix.buckets.len();
    let mut want = vec![0u32; n];
    let mut count = 0;
    for (b, bucket) in ix.buckets.iter().enumerate() {
        for w in 0..WAYS {
            let s = bucket.slots[w];
            if s == 0 {
                continue;
            }
            count += 1;
            let h = *model
                .get(&(s - 1))
                .unwrap_or_else(|| panic!("slot {} in index, not in model", s - 1));
            assert_eq!(bucket.meta[w] & 0xFFF0, tag(h), "tag");
            let dist = usize::from(bucket.meta[w] & 0xF);
            let mut x = ix.home(h);
            let mut steps = 0;
            while x != b {
                want[x] += 1;
                x = ix.next(x);
                steps += 1;
                assert!(steps <= n);
            }
            assert!(dist == steps.min(15), "distance {dist} but {steps} buckets from home");
        }
    }
    assert_eq!(count, model.len());
    assert_eq!(ix.len(), model.len());
    for (b, want) in want.iter().enumerate() {
        assert_eq!(ix.buckets[b].overflow, *want, "overflow of bucket {b} of {n}");
    }
    for (&s, &h) in model {
        assert_eq!(ix.find(h, |x| x == s), Some(s), "find slot {s} hash {h:#x}");
    }
}

fn run_index(cap: usize, seed: u64, ops: usize, hashgen: &dyn Fn(&mut Rng, u32) -> u64, check_every: usize) {
    let mut rng = Rng(seed | 1);
    let mut ix = FlowIndex::new(cap);
    let mut model: HashMap<u32, u64> = HashMap::new();
    let mut next_slot = 0u32;
    let mut free: Vec<u32> = Vec::new();
    for op in 0..ops {
        let r = rng.below(100);
        let bias = if (op / 5000) % 2 == 0 { 60 } else { 35 }; // alternate growth/shrink phases
        if r < bias {
            let s = free.pop().unwrap_or_else(|| {
                next_slot += 1;
                next_slot - 1
            });
            let h = hashgen(&mut rng, s);
            // Growing rehashes the slots already in (the model has exactly those).
            ix.insert(h, s, |j| *model.get(&j).expect("rehash of a slot in the index"));
            model.insert(s, h);
        } else if r < 90 {
            if model.is_empty() {
                continue;
            }
            // remove random existing
            let k = *model.keys().nth(rng.below(model.len() as u64) as usize).unwrap();
            let h = model.remove(&k).unwrap();
            assert!(ix.remove(h, k), "remove existing {k}");
            free.push(k);
        } else if r < 95 {
            // remove absent slot under a hash
            let s = next_slot + 1 + rng.below(10) as u32;
            let h = hashgen(&mut rng, s);
            assert!(!ix.remove(h, s), "remove absent");
            // absent slot that is free (was removed)
            if let Some(&f) = free.last() {
                let h = hashgen(&mut rng, f);
                assert!(!ix.remove(h, f), "remove freed");
            }
        } else {
            // find absent
            let h = hashgen(&mut rng, 0);
            let found = ix.find(h, |x| !model.contains_key(&x));
            assert_eq!(found, None);
        }
        if check_every > 0 && op % check_every == 0 {
            check(&ix, &model);
        }
    }
    check(&ix, &model);
}

/// Makes the hash of a slot.
type HashGen = Box<dyn Fn(&mut Rng, u32) -> u64>;

fn gens() -> Vec<(&'static str, HashGen)> {
    vec![
        ("random", Box::new(|r: &mut Rng, _| r.next())),
        ("same_hash", Box::new(|_: &mut Rng, _| 0x1234_5678_0000_0000)),
        (
            "same_home_bucket0_rand_tag",
            Box::new(|r: &mut Rng, _| r.next() & 0xFFFF_FFFF_0000_0000),
        ),
        ("last_bucket_same_tag", Box::new(|_: &mut Rng, _| 0xABCD_0000_FFFF_FFFF)),
        (
            "last_bucket_rand_tag",
            Box::new(|r: &mut Rng, _| (r.next() & 0xFFFF_FFFF_0000_0000) | 0xFFFF_FFFF),
        ),
        (
            "tag_zero_random_home",
            Box::new(|r: &mut Rng, _| r.next() & 0xFFFF_0000_FFFF_FFFF),
        ),
        (
            "few_homes_high",
            Box::new(|r: &mut Rng, _| (r.next() & 0xFFFF_FFFF_0000_0000) | (0xFFFF_FFFF - r.below(4) * 0x0100_0000)),
        ),
        (
            "two_hashes",
            Box::new(|r: &mut Rng, _| if r.below(2) == 0 { 7 } else { 0xFFFF_FFFF }),
        ),
    ]
}

#[test]
fn prop_index_vs_model() {
    for cap in [1usize, 2, 9, 10, 11, 80, 81, 1000, 20_000] {
        for (name, g) in gens() {
            for seed in 1..3u64 {
                let ops = if cap >= 1000 { 12_000 } else { 6_000 };
                let every = if name.starts_with("same") || name.starts_with("last") || name == "two_hashes" {
                    97
                } else {
                    13
                };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_index(cap, seed * 7919 + cap as u64, ops, &*g, every)
                }));
                if r.is_err() {
                    panic!("FAILED cap={cap} gen={name} seed={seed}");
                }
            }
        }
    }
}

#[test]
fn prop_slabmap_vs_model() {
    for cap in [1usize, 2, 16, 200, 5000] {
        for seed in 1..4u64 {
            let mut rng = Rng(seed * 31 + cap as u64);
            let mut m: SlabMap<(u16, u32), u64> = SlabMap::new(cap);
            let mut model: HashMap<(u16, u32), u64> = HashMap::new();
            let keyspace = (cap as u64 * 3).max(8);
            for op in 0..20_000u64 {
                let k = ((rng.below(4)) as u16, rng.below(keyspace) as u32);
                match rng.below(10) {
                    0..=3 => {
                        let v = rng.next();
                        let got = *m.get_or_insert(k, v);
                        let want = *model.entry(k).or_insert(v);
                        assert_eq!(got, want);
                    }
                    4..=5 => {
                        assert_eq!(m.remove(&k), model.remove(&k), "remove {k:?} op {op}");
                    }
                    6 => {
                        if let Some(v) = m.get_mut(&k) {
                            *v = v.wrapping_add(1);
                        }
                        if let Some(v) = model.get_mut(&k) {
                            *v = v.wrapping_add(1);
                        }
                    }
                    _ => {
                        assert_eq!(m.get(&k), model.get(&k), "get {k:?}");
                        let h = m.hash(&k);
                        assert_eq!(m.get_hashed(h, &k), model.get(&k));
                    }
                }
                assert_eq!(m.len(), model.len());
                if op % 4999 == 0 {
                    let mut a: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
                    let mut b: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
                    a.sort();
                    b.sort();
                    assert_eq!(a, b);
                }
            }
        }
    }
}

/// Mean buckets a lookup of an absent key reads (it stops at a bucket nobody passed).
fn absent_lookup_buckets(ix: &FlowIndex, rng: &mut Rng, n: usize) -> f64 {
    let mut total = 0usize;
    for _ in 0..n {
        let mut b = ix.home(rng.next());
        let mut read = 1;
        while ix.buckets[b].overflow != 0 && read < ix.buckets.len() {
            b = ix.next(b);
            read += 1;
        }
        total += read;
    }
    total as f64 / n as f64
}

/// A full index churned like a flow table under a spoofed-source flood (remove the oldest,
/// insert a new random key, three times its capacity over) keeps the overflow runs of a
/// freshly filled one: removals move displaced entries back, so the counts do not pile up
/// like tombstones (without that, this mean went from 1.7 to 9–10 buckets).
#[test]
fn churn_at_capacity_keeps_lookups_short() {
    let cap = 200_000usize;
    let mut rng = Rng(12345);
    let mut ix = FlowIndex::new(cap);
    let mut hashes: Vec<u64> = (0..cap).map(|_| rng.next()).collect();
    for s in 0..cap as u32 {
        let hs = &hashes;
        ix.insert(hs[s as usize], s, |j| hs[j as usize]);
    }
    let fresh = absent_lookup_buckets(&ix, &mut rng, 100_000);
    let mut order: std::collections::VecDeque<u32> = (0..cap as u32).collect();
    for _ in 0..3 * cap {
        let s = order.pop_front().expect("full");
        assert!(ix.remove(hashes[s as usize], s));
        hashes[s as usize] = rng.next();
        let hs = &hashes;
        ix.insert(hs[s as usize], s, |j| hs[j as usize]);
        order.push_back(s);
    }
    let churned = absent_lookup_buckets(&ix, &mut rng, 100_000);
    assert!(fresh < 2.0, "fresh {fresh}");
    assert!(churned < 1.5 * fresh, "fresh {fresh}, after churn {churned}");
    let model: HashMap<u32, u64> = (0..cap as u32).map(|s| (s, hashes[s as usize])).collect();
    check(&ix, &model);
}
