//! Ports for fragments that are not reassembled (inner packets of GTP-U tunnels): the first
//! fragment carries the transport header, the later ones do not, so the ports seen in a first
//! fragment are remembered under its [`FragmentKey`] and lent to the later fragments that
//! arrive after it. Later fragments that arrive before their first fragment get no ports.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::{parse_fragment, FragmentKey, Parsed, ReassemblyLimits, MAX_SLOTS, NH_AH};
use crate::decode::ipproto;

/// Counters and occupancy of a [`FragmentPorts`] cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragmentPortsStats {
    /// First fragments whose ports were stored (or refreshed, for a repeated first fragment).
    pub learned: u64,
    /// Later fragments given the ports of their first fragment.
    pub hits: u64,
    /// Later fragments whose first fragment was not seen (not yet, evicted or expired).
    pub misses: u64,
    /// Entries replaced, oldest first, because the cache was full.
    pub evicted: u64,
    /// Entries dropped at their timeout.
    pub expired: u64,
    /// Entries held now.
    pub entries: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: FragmentKey,
    ports: (u16, u16),
    ts_ns: u64,
}

/// Bounded cache (source, destination, protocol, identification) → (source port,
/// destination port), learned from first fragments. Entries are kept in a ring in arrival
/// order: the oldest is replaced when the cache is full, and each expires after the
/// reassembly timeout of its IP version ([`ReassemblyLimits::ipv4_timeout_s`],
/// [`ReassemblyLimits::ipv6_timeout_s`]) from when it was learned. Nothing allocates once the
/// ring has filled.
pub struct FragmentPorts {
    ring: Vec<Entry>,
    cap: usize,
    /// Ring position of the next entry.
    next: usize,
    /// Entries held: the `len` positions before `next`, cyclically.
    len: usize,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    timeouts_ns: [u64; 2],
    stats: FragmentPortsStats,
}

impl FragmentPorts {
    /// A cache of [`ReassemblyLimits::inner_port_entries`] entries (clamped to
    /// 1..=1,048,576) with the limits' timeouts.
    pub fn new(limits: &ReassemblyLimits) -> FragmentPorts {
        let cap = limits.inner_port_entries.clamp(1, MAX_SLOTS);
        FragmentPorts {
            ring: Vec::with_capacity(cap),
            cap,
            next: 0,
            len: 0,
            index: HashTable::with_capacity(cap),
            hasher: foldhash::fast::RandomState::default(),
            timeouts_ns: [limits.timeout_ns(false), limits.timeout_ns(true)],
            stats: FragmentPortsStats::default(),
        }
    }

    /// Counters and occupancy.
    pub fn stats(&self) -> &FragmentPortsStats {
        &self.stats
    }

    /// Look at the IP packet `ip_packet` (an inner packet, e.g. from
    /// [`super::gtpu_inner_ip`]) captured at `ts_ns` (ns). A first fragment of TCP, UDP or
    /// SCTP (after any IPv6 extension headers in its fragmentable part) stores and returns its
    /// ports; a later fragment returns the ports stored for its datagram, if any. `None` for
    /// packets that are not fragments, first fragments too short to hold the ports, and later
    /// fragments whose first fragment is unknown.
    pub fn observe(&mut self, ip_packet: &[u8], ts_ns: u64) -> Option<(u16, u16)> {
        let Parsed::Fragment(f) = parse_fragment(ip_packet) else {
            return None;
        };
        if f.off == 0 {
            let ports = transport_ports(f.proto, f.data)?;
            self.learn(f.key, ports, ts_ns);
            return Some(ports);
        }
        let hash = self.hasher.hash_one(f.key);
        let found = self
            .index
            .find(hash, |&i| self.ring[i as usize].key == f.key)
            .map(|&i| self.ring[i as usize]);
        match found {
            Some(e) if e.ts_ns.saturating_add(self.timeout(&e.key)) > ts_ns => {
                self.stats.hits += 1;
                Some(e.ports)
            }
            _ => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Drop the entries whose timeout has passed at capture time `now_ns` (ns), oldest first;
    /// stops at the first one still valid (an expired entry behind it is no longer returned
    /// by [`observe`](Self::observe), and goes when it reaches the front).
    pub fn expire(&mut self, now_ns: u64) {
        while self.len > 0 {
            let oldest = (self.next + self.cap - self.len) % self.cap;
            let e = self.ring[oldest];
            if e.ts_ns.saturating_add(self.timeout(&e.key)) > now_ns {
                break;
            }
            self.unindex(oldest);
            self.len -= 1;
            self.stats.expired += 1;
        }
        self.stats.entries = self.len;
    }

    fn timeout(&self, key: &FragmentKey) -> u64 {
        self.timeouts_ns[usize::from(key.src.is_ipv6())]
    }

    fn learn(&mut self, key: FragmentKey, ports: (u16, u16), ts_ns: u64) {
        self.stats.learned += 1;
        let hash = self.hasher.hash_one(key);
        if let Some(&i) = self.index.find(hash, |&i| self.ring[i as usize].key == key) {
            // A repeated first fragment: refresh the ports, keep the place in the ring.
            self.ring[i as usize].ports = ports;
            return;
        }
        let pos = self.next;
        let entry = Entry { key, ports, ts_ns };
        if pos == self.ring.len() {
            self.ring.push(entry);
        } else {
            if self.len == self.cap {
                self.unindex(pos);
                self.len -= 1;
                self.stats.evicted += 1;
            }
            self.ring[pos] = entry;
        }
        let (ring, hasher) = (&self.ring, &self.hasher);
        self.index
            .insert_unique(hash, pos as u32, |&i| hasher.hash_one(ring[i as usize].key));
        self.len += 1;
        self.next = (pos + 1) % self.cap;
        self.stats.entries = self.len;
    }

    fn unindex(&mut self, pos: usize) {
        let hash = self.hasher.hash_one(self.ring[pos].key);
        if let Ok(e) = self.index.find_entry(hash, |&i| i as usize == pos) {
            e.remove();
        }
    }
}

/// Source and destination port of a TCP, UDP or SCTP header at the start of `d` (after any
/// IPv6 extension headers or AH), if its first 4 octets are there.
fn transport_ports(mut proto: u8, d: &[u8]) -> Option<(u16, u16)> {
    let mut pos = 0usize;
    for _ in 0..=super::MAX_EXT_HEADERS {
        match proto {
            0 | 43 | 60 => {
                let next = *d.get(pos)?;
                pos += (usize::from(*d.get(pos + 1)?) + 1) * 8;
                proto = next;
            }
            NH_AH => {
                let next = *d.get(pos)?;
                pos += (usize::from(*d.get(pos + 1)?) + 2) * 4;
                proto = next;
            }
            ipproto::TCP | ipproto::UDP | ipproto::SCTP => {
                let b = d.get(pos..pos + 4)?;
                return Some((u16::from_be_bytes([b[0], b[1]]), u16::from_be_bytes([b[2], b[3]])));
            }
            _ => return None,
        }
    }
    None
}
