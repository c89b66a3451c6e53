//! The out-of-line part of a flow-table entry: the GTP-U tunnel endpoint pair, shared by
//! every flow of that pair through one reference-counted [`Side`], and, for the rare flow
//! whose counters outgrow the entry's narrow fields, that flow's own wide counters.
//!
//! A 5G core has few tunnel endpoint pairs (gNB × UPF) and millions of flows, so the pair
//! (2 × 16 octets) is stored once per pair instead of once per flow; a flow holds an
//! 8-byte pointer. [`TunnelTable`] interns the pairs: a flow created on a pair takes a
//! reference to the pair's `Side`; when the table releases the last flow's reference the
//! pair leaves the intern table. The entry keeps its `Side` readable without the table, so
//! `&Flow` alone still answers every question about the flow (records, detectors).

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::key::Addr16;

/// Counters of a flow that outgrew the entry's narrow fields (see `Flow` in
/// [`super::table`]): full-width copies, updated instead of the narrow ones from then on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Wide {
    /// First packet time, ns since the Unix epoch.
    pub first_ns: u64,
    /// Packets per direction.
    pub packets: [u64; 2],
    /// Bytes (IP length) per direction.
    pub bytes: [u64; 2],
    /// TCP packets with SYN and without ACK.
    pub syn: u64,
    /// TCP packets with SYN and ACK.
    pub syn_ack: u64,
    /// TCP packets with FIN.
    pub fin: u64,
    /// TCP packets with RST.
    pub rst: u64,
    /// TCP packets with PSH.
    pub psh: u64,
    /// TCP packets with URG.
    pub urg: u64,
    /// TCP packets without ACK (the ACK count is the packet count minus this).
    pub no_ack: u64,
}

/// What a flow entry keeps behind its one pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Side {
    /// Outer tunnel endpoints (lower, higher) as in [`super::FlowKey`]; zeros when the flow
    /// is not tunnelled.
    pub tunnel: [Addr16; 2],
    /// The flow's own wide counters; `None` in a shared (interned) `Side`.
    pub wide: Option<Wide>,
}

/// Interning table of tunnel endpoint pairs: one shared [`Side`] per pair in use.
///
/// Reference counts are the `Arc` strong counts: the table holds one reference per pair,
/// every flow entry on the pair one more. A pair leaves when the flow table releases its last
/// flow on it; a pair nobody else holds can only stay behind when a flow entry was cloned out
/// of the flow table and outlived its flow, and `intern` sweeps those once the table holds
/// `2 × live flows + 64` pairs. So the table holds at most that many pairs plus the pairs
/// such clones still reference.
pub(crate) struct TunnelTable {
    index: HashTable<Arc<Side>>,
    hasher: foldhash::fast::RandomState,
}

impl TunnelTable {
    /// An empty table.
    pub fn new() -> TunnelTable {
        TunnelTable {
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Number of pairs interned.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// A reference to the shared `Side` of `pair`, creating it when no flow uses the pair.
    /// `live_flows` (the flow table's length) bounds the table, see [`TunnelTable`].
    pub fn intern(&mut self, pair: [Addr16; 2], live_flows: usize) -> Arc<Side> {
        let h = self.hasher.hash_one(pair);
        if let Some(s) = self.index.find(h, |s| s.tunnel == pair) {
            return Arc::clone(s);
        }
        if self.index.len() >= live_flows.saturating_mul(2).saturating_add(64) {
            self.index.retain(|s| Arc::strong_count(s) > 1);
        }
        let s = Arc::new(Side {
            tunnel: pair,
            wide: None,
        });
        let hasher = &self.hasher;
        self.index
            .insert_unique(h, Arc::clone(&s), |x| hasher.hash_one(x.tunnel));
        s
    }

    /// Give back a flow's reference. A shared pair that no other flow uses leaves the table;
    /// a flow's own `Side` (wide counters) is simply dropped.
    pub fn release(&mut self, side: Arc<Side>) {
        if side.wide.is_some() || Arc::strong_count(&side) != 2 {
            return;
        }
        let h = self.hasher.hash_one(side.tunnel);
        if let Ok(e) = self.index.find_entry(h, |s| Arc::ptr_eq(s, &side)) {
            e.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(x: u8) -> [Addr16; 2] {
        let mut a = [0u8; 16];
        a[15] = x;
        let mut b = a;
        b[14] = 1;
        [a, b]
    }

    #[test]
    fn shared_counted_and_released() {
        let mut t = TunnelTable::new();
        let s1 = t.intern(pair(1), 0);
        let s2 = t.intern(pair(1), 1);
        assert!(Arc::ptr_eq(&s1, &s2), "one Side per pair");
        assert_eq!((t.len(), Arc::strong_count(&s1)), (1, 3));
        let s3 = t.intern(pair(2), 2);
        assert_eq!(t.len(), 2);
        t.release(s1);
        assert_eq!(t.len(), 2, "pair 1 still used by s2");
        t.release(s2);
        assert_eq!(t.len(), 1, "last user of pair 1 gone");
        t.release(s3);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn reused_after_release() {
        let mut t = TunnelTable::new();
        let s = t.intern(pair(7), 0);
        t.release(s);
        let s = t.intern(pair(7), 0);
        assert_eq!((t.len(), s.tunnel, Arc::strong_count(&s)), (1, pair(7), 2));
    }

    #[test]
    fn own_side_release_is_a_no_op() {
        let mut t = TunnelTable::new();
        let shared = t.intern(pair(3), 0);
        let own = Arc::new(Side {
            tunnel: pair(3),
            wide: Some(Wide::default()),
        });
        t.release(own);
        assert_eq!((t.len(), Arc::strong_count(&shared)), (1, 2));
    }

    #[test]
    fn bounded_when_references_leak() {
        // References kept outside the flow table (cloned entries) are never released; the
        // table sweeps the pairs nobody else holds once it passes its bound.
        let mut t = TunnelTable::new();
        let mut kept = Vec::new();
        for i in 0..1000u32 {
            let mut a = [0u8; 16];
            a[12..].copy_from_slice(&i.to_be_bytes());
            let s = t.intern([a, [0xff; 16]], 10);
            if i % 100 == 0 {
                kept.push(s);
            }
            assert!(t.len() <= 2 * 10 + 64 + 1);
        }
        // A pair still held outside is never swept, so it stays shared, never duplicated.
        for s in &kept {
            assert!(Arc::ptr_eq(s, &t.intern(s.tunnel, 10)));
        }
    }

    #[test]
    fn release_of_unknown_side_does_not_panic() {
        let mut t = TunnelTable::new();
        let stray = Arc::new(Side {
            tunnel: pair(9),
            wide: None,
        });
        let _other = Arc::clone(&stray);
        t.release(stray);
        assert_eq!(t.len(), 0);
    }
}
