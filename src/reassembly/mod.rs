//! Bounded reassembly of **outer** IP fragments: IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5),
//! so that GTP-U and PFCP carried in fragmented outer packets can be decoded like any other
//! packet, plus a small cache ([`FragmentPorts`]) that lends the ports of a first fragment to
//! the later fragments of the same datagram, for fragments inside a GTP-U tunnel (which are
//! not reassembled).
//!
//! # Use
//!
//! [`Reassembler::push`] takes one IP packet (the bytes [`crate::decode::link::network_layer`]
//! returns) and its capture time, and says what became of it ([`Outcome`]):
//! - [`Outcome::NotFragment`]: not a fragment (or not parseable as one): decode it as usual.
//! - [`Outcome::Pending`] / [`Outcome::Duplicate`]: held (or ignored) until the datagram is
//!   complete.
//! - [`Outcome::Complete`]: this fragment completed a datagram; the slice is the rebuilt IP
//!   packet, which [`crate::decode::ip::decode_ip_with`] decodes unchanged.
//! - [`Outcome::Dropped`]: the fragment (and, for some reasons, its whole datagram) was
//!   discarded; the [`Counter`] says why.
//!
//! [`Reassembler::expire`] is to be called once per second of capture time; it drops the
//! datagrams still incomplete after their timeout (counted as `timeout`).
//!
//! # Where the engine calls it
//!
//! In the per-packet path, between the link layer and the IP decoder (today both happen inside
//! [`crate::decode::decode_with`]; the engine would call the two halves itself):
//!
//! ```text
//! Network::Ip(ip) = decode::link::network_layer(linktype, data)?
//! match reassembler.push(ip, ts) {
//!     NotFragment        => decode_ip_with(ip, Some(extra_port))      // as today
//!     Complete(rebuilt)  => decode_ip_with(rebuilt, Some(extra_port)) // the whole datagram:
//!                           // one flow update with the datagram's length, GTP-U/PFCP visible
//!     Pending | Duplicate => count the frame (outer version, transport "ip_fragment"),
//!                           // no flow update: the bytes arrive with Complete
//!     Dropped(reason)    => count `reason`, then decode the fragment itself as today, so
//!                           // that fragment attacks stay visible to flows and detectors
//! }
//! ```
//!
//! and, in the engine's once-per-second tick, `reassembler.expire(now)` and
//! `fragment_ports.expire(now)`. For a tunnelled packet whose inner packet is a fragment
//! (`pkt.tunnel.is_some() && pkt.fragment != Fragment::None`), the inner packet comes from
//! [`gtpu_inner_ip`] on the outer (possibly rebuilt) packet, and
//! [`FragmentPorts::observe`] on it gives the ports to put into `pkt`. The counters map to
//! one labelled series each ([`Counter::ALL`], [`Counter::as_str`]) plus two gauges
//! ([`ReassemblyStats::datagrams`], [`ReassemblyStats::buffered_bytes`]).
//!
//! # Rebuilt packet
//!
//! - IPv4: the header (with options) of the offset-0 fragment, with MF and Fragment Offset
//!   cleared (DF and the reserved bit kept as the first fragment had them), Total Length set
//!   to the rebuilt length, and the header checksum **recomputed** (RFC 1071) so the rebuilt
//!   packet is a valid IPv4 packet.
//! - IPv6: the Unfragmentable Part of the offset-0 fragment (the IPv6 header and every
//!   extension header before the Fragment header), with the Next Header field of the last of
//!   them set to the Fragment header's Next Header of the offset-0 fragment, the Fragment
//!   header removed and Payload Length set (RFC 8200 §4.5, "reassembled original packet").
//!
//! # Keys
//!
//! IPv4 datagrams are told apart by (source, destination, protocol, identification) as
//! RFC 791 §3.2 says. IPv6 by (source, destination, identification): RFC 8200 §4.5 lets the
//! Next Header of the Fragment headers of one packet differ and uses the offset-0 one, so
//! [`FragmentKey::proto`] is 0 for IPv6. The address family keeps the two versions apart.
//!
//! # Rules
//!
//! - **Overlap** (RFC 5722 for IPv6; the same rule for IPv4, where RFC 791 would let the
//!   later copy win): a fragment that overlaps bytes already held, even partially and even
//!   with identical bytes, abandons the whole datagram. Only an *exact* duplicate (same
//!   offset, same length, same bytes; RFC 8200 §4.5 allows dropping these instead of
//!   treating them as overlaps) is ignored and counted `duplicate`: mirror ports and
//!   retransmitting links produce those, while a partial overlap is what the overlapping-
//!   fragment evasions (RFC 1858 §4, RFC 3128) need, and no sender produces one for a single
//!   datagram. Conflicting length claims (data past the end set by the last fragment, or two
//!   last fragments ending at different offsets) are counted as `overlap` too.
//! - An **abandoned** datagram (overlap, tiny first fragment, too many fragments, memory limit)
//!   frees its buffers at once but keeps its key until its timeout, so that the fragments
//!   still to come are discarded (`abandoned`) rather than buffered again (RFC 5722: "including
//!   those not yet received").
//! - **Per-fragment** problems discard only that fragment (RFC 8200 §4.5): `bad_fragment`
//!   (a non-last fragment whose length is not a multiple of 8, a fragment without data, an
//!   impossible length field), `too_large` (the rebuilt packet would exceed 65,535 octets of
//!   IPv4 Total Length or IPv6 Payload Length, or [`ReassemblyLimits::max_datagram_bytes`]),
//!   `truncated` (fewer bytes captured than the IP length says: the snap length cut it).
//! - **Tiny first fragment** (RFC 1858 §3; RFC 7112 for IPv6): an offset-0 fragment too short
//!   to hold the transport header (TCP 20, UDP 8, SCTP 12, ICMP/ICMPv6 8 octets), after any
//!   IPv6 extension headers or IPv4 AH in the fragmentable part, abandons the datagram.
//!   Unknown transports are not checked.
//! - **Bounds**: at most [`ReassemblyLimits::max_datagrams`] datagrams (live or abandoned)
//!   and [`ReassemblyLimits::max_bytes`] buffered bytes. When either is reached the **oldest**
//!   datagram (by first fragment) is evicted to make room and counted (`too_many_datagrams`,
//!   `memory_limit`): a flood of never-completed fragments then only shortens how long a
//!   datagram may take to complete, instead of blocking every new datagram until the flood's
//!   entries time out. A fragment that does not fit even when every other datagram is gone
//!   abandons its own datagram (`memory_limit`).
//! - A datagram times out [`ReassemblyLimits::ipv4_timeout_s`] /
//!   [`ReassemblyLimits::ipv6_timeout_s`] after its **first-arriving** fragment (RFC 8200
//!   §4.5), whatever arrives later.
//! - A completed datagram leaves nothing behind: a late duplicate of one of its fragments
//!   starts a new datagram that will time out. (Keeping a marker would discard a new
//!   datagram reusing the 16-bit IPv4 identification, which fast senders do within seconds,
//!   RFC 4963 §2.)
//!
//! # Memory
//!
//! Datagrams live in a slab of at most `max_datagrams` slots, found through a keyed
//! (randomly seeded) hash index. Each slot keeps its buffers when it is freed, so the steady
//! state allocates nothing per fragment; a freed buffer larger than
//! `max(2048, min(max_bytes / max_datagrams, 65575))` bytes is shrunk to that size, which bounds
//! the memory kept for reuse. The budget counts the fragment bytes and headers held plus
//! [`PIECE_COST`] per fragment. The heap used for buffers stays below about
//! `2 × max_bytes` (held bytes plus the vectors' growth slack) plus
//! `max(max_bytes, 2048 × max_datagrams)` (capacity kept for reuse), and the slot table and
//! index take about 200 bytes per datagram slot, allocated up front.

mod ports;
#[cfg(test)]
mod tests;

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashTable;
use serde::Deserialize;

use crate::decode::{gtpu, ip, ipproto};

pub use ports::{FragmentPorts, FragmentPortsStats};

const NIL: u32 = u32::MAX;
const SEC: f64 = 1e9;

/// Largest rebuilt IPv4 packet: Total Length is 16 bits (RFC 791 §3.1).
pub const IPV4_MAX_PACKET: usize = 65_535;
/// Largest rebuilt IPv6 packet: 40-octet header plus a 16-bit Payload Length (RFC 8200 §4.5).
pub const IPV6_MAX_PACKET: usize = 65_535 + 40;
/// Budget bytes charged per fragment held, besides its data (its entry in the datagram's
/// sorted fragment list).
pub const PIECE_COST: usize = std::mem::size_of::<Piece>();
/// Extension headers walked before the IPv6 Fragment header (as the decoder does).
const MAX_EXT_HEADERS: usize = ip::MAX_IPV6_EXT_HEADERS;

/// IPv6 Fragment header (RFC 8200 §4.5).
const NH_FRAGMENT: u8 = 44;
/// Authentication Header (RFC 4302).
const NH_AH: u8 = 51;

/// Limits of the reassembler and of the inner-fragment port cache: the `[reassembly]` config
/// section. Every key carries its unit; `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReassemblyLimits {
    /// Reassemble outer fragments at all (default true). When false every fragment is
    /// decoded on its own, as a capture tool with defragmentation off would.
    pub enabled: bool,
    /// Most datagrams being reassembled at once (live or abandoned); the oldest is evicted
    /// beyond it. Default 4096.
    pub max_datagrams: usize,
    /// Most bytes buffered over all datagrams (fragment data, headers and [`PIECE_COST`] per
    /// fragment); the oldest datagrams are evicted beyond it. Default 16 MiB.
    pub max_bytes: usize,
    /// Most fragments held for one datagram; one more abandons it (`too_many_fragments`).
    /// A 65,535-octet datagram over the 576-octet IPv4 minimum MTU needs 119. Default 128.
    pub max_fragments_per_datagram: usize,
    /// Longest rebuilt packet in bytes, header included; fragments reaching past it are
    /// `too_large`. The protocol limits (65,535 for IPv4, 65,575 for IPv6) apply anyway.
    /// Default 65,575.
    pub max_datagram_bytes: usize,
    /// Seconds after its first fragment that an incomplete IPv4 datagram is dropped
    /// (`timeout`). Default 30 (Linux `ipfrag_time`; RFC 791 leaves it to the implementation).
    pub ipv4_timeout_s: f64,
    /// Seconds after its first fragment that an incomplete IPv6 datagram is dropped
    /// (`timeout`). Default 60 (RFC 8200 §4.5).
    pub ipv6_timeout_s: f64,
    /// Entries of the inner-fragment port cache ([`FragmentPorts`]); the oldest is replaced
    /// beyond it. Default 4096.
    pub inner_port_entries: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            enabled: true,
            max_datagrams: 4096,
            max_bytes: 16 << 20,
            max_fragments_per_datagram: 128,
            max_datagram_bytes: IPV6_MAX_PACKET,
            ipv4_timeout_s: 30.0,
            ipv6_timeout_s: 60.0,
            inner_port_entries: 4096,
        }
    }
}

/// A [`ReassemblyLimits`] value out of range: the dotted config key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    /// Dotted key, e.g. `reassembly.max_bytes`.
    pub key: &'static str,
    /// What is wrong, with the accepted range.
    pub message: String,
}

impl ReassemblyLimits {
    /// Check every limit against its accepted range (the ranges [`Reassembler::new`] clamps
    /// to): `max_datagrams` 1..=1,048,576, `max_bytes` 65,575..=2^34,
    /// `max_fragments_per_datagram` 1..=8192, `max_datagram_bytes` 68..=65,575, timeouts
    /// 0.001..=3600 s, `inner_port_entries` 1..=1,048,576.
    pub fn validate(&self) -> Result<(), LimitError> {
        let count = |key: &'static str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(LimitError {
                    key,
                    message: format!("must be between {lo} and {hi}, got {v}"),
                })
            }
        };
        let secs = |key: &'static str, v: f64| {
            if v.is_finite() && (0.001..=3600.0).contains(&v) {
                Ok(())
            } else {
                Err(LimitError {
                    key,
                    message: format!("must be between 0.001 and 3600 seconds, got {v}"),
                })
            }
        };
        count("reassembly.max_datagrams", self.max_datagrams, 1, MAX_SLOTS)?;
        count("reassembly.max_bytes", self.max_bytes, IPV6_MAX_PACKET, MAX_BYTES)?;
        count(
            "reassembly.max_fragments_per_datagram",
            self.max_fragments_per_datagram,
            1,
            8192,
        )?;
        count(
            "reassembly.max_datagram_bytes",
            self.max_datagram_bytes,
            68,
            IPV6_MAX_PACKET,
        )?;
        secs("reassembly.ipv4_timeout_s", self.ipv4_timeout_s)?;
        secs("reassembly.ipv6_timeout_s", self.ipv6_timeout_s)?;
        count("reassembly.inner_port_entries", self.inner_port_entries, 1, MAX_SLOTS)
    }

    /// Timeout of `v6` (or IPv4) datagrams in ns, clamped to the validated range.
    fn timeout_ns(&self, v6: bool) -> u64 {
        let s = if v6 { self.ipv6_timeout_s } else { self.ipv4_timeout_s };
        let s = if s.is_finite() { s.clamp(0.001, 3600.0) } else { 60.0 };
        (s * SEC) as u64
    }
}

const MAX_SLOTS: usize = 1 << 20;
const MAX_BYTES: usize = 1 << 34;

/// Identity of a fragmented datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    /// Source address (its family is the IP version).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 Protocol; 0 for IPv6 (RFC 8200 §4.5 keys on addresses and identification only).
    pub proto: u8,
    /// Identification: 16 bits for IPv4, 32 for IPv6.
    pub id: u32,
}

/// What the reassembler counts, and why it dropped a fragment ([`Outcome::Dropped`] carries
/// one of the drop counters: everything but `Fragments`, `Reassembled`, `Duplicate` and
/// `Timeout`). `as_str` gives the stable metric label, `ALL` the fixed set of series. Units: `fragments`, `duplicate`, `too_large`, `bad_fragment`, `truncated` and
/// `abandoned` count fragments; the others count datagrams (`overlap`, `tiny_first_fragment`,
/// `too_many_fragments` once per datagram abandoned, `too_many_datagrams` and `memory_limit`
/// once per datagram evicted or abandoned for that limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Fragments received (every push that was a fragment, whatever became of it).
    Fragments,
    /// Datagrams reassembled.
    Reassembled,
    /// Exact duplicate fragments, ignored.
    Duplicate,
    /// Datagrams abandoned for overlapping fragments or conflicting lengths (RFC 5722; the
    /// same rule for IPv4).
    Overlap,
    /// Incomplete datagrams dropped at their timeout.
    Timeout,
    /// Datagrams evicted because `max_datagrams` were in flight.
    TooManyDatagrams,
    /// Datagrams evicted or abandoned because of the byte budget.
    MemoryLimit,
    /// Fragments reaching past the largest rebuilt packet (offset + length), discarded.
    TooLarge,
    /// Malformed fragments (non-last length not a multiple of 8, empty, impossible length
    /// field), discarded.
    BadFragment,
    /// Datagrams abandoned because the offset-0 fragment cannot hold the transport header
    /// (RFC 1858 §3, RFC 7112).
    TinyFirstFragment,
    /// Datagrams abandoned for having more than
    /// [`ReassemblyLimits::max_fragments_per_datagram`] fragments.
    TooManyFragments,
    /// Fragments cut by the snap length (fewer bytes than the IP length says), discarded.
    Truncated,
    /// Fragments of abandoned datagrams, discarded until that datagram's timeout.
    Abandoned,
}

impl Counter {
    /// Every counter, in a fixed order (the index into [`ReassemblyStats::counts`]).
    pub const ALL: [Counter; 13] = [
        Counter::Fragments,
        Counter::Reassembled,
        Counter::Duplicate,
        Counter::Overlap,
        Counter::Timeout,
        Counter::TooManyDatagrams,
        Counter::MemoryLimit,
        Counter::TooLarge,
        Counter::BadFragment,
        Counter::TinyFirstFragment,
        Counter::TooManyFragments,
        Counter::Truncated,
        Counter::Abandoned,
    ];

    /// Stable snake_case label.
    pub fn as_str(self) -> &'static str {
        match self {
            Counter::Fragments => "fragments",
            Counter::Reassembled => "reassembled",
            Counter::Duplicate => "duplicate",
            Counter::Overlap => "overlap",
            Counter::Timeout => "timeout",
            Counter::TooManyDatagrams => "too_many_datagrams",
            Counter::MemoryLimit => "memory_limit",
            Counter::TooLarge => "too_large",
            Counter::BadFragment => "bad_fragment",
            Counter::TinyFirstFragment => "tiny_first_fragment",
            Counter::TooManyFragments => "too_many_fragments",
            Counter::Truncated => "truncated",
            Counter::Abandoned => "abandoned",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters and occupancy of a [`Reassembler`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Cumulative counts, indexed like [`Counter::ALL`].
    pub counts: [u64; Counter::ALL.len()],
    /// Datagrams held now (live and abandoned).
    pub datagrams: usize,
    /// Bytes charged to the budget now (see [`ReassemblyLimits::max_bytes`]).
    pub buffered_bytes: usize,
}

impl ReassemblyStats {
    /// Count of one counter.
    pub fn get(&self, c: Counter) -> u64 {
        self.counts[c.index()]
    }

    fn bump(&mut self, c: Counter) {
        self.counts[c.index()] += 1;
    }
}

/// What [`Reassembler::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Not a fragment (including IPv6 atomic fragments, RFC 6946, and anything that does not
    /// parse as an IP fragment): decode the packet as it is.
    NotFragment,
    /// Held; the datagram is not complete yet.
    Pending,
    /// An exact duplicate of a fragment held: ignored.
    Duplicate,
    /// This fragment completed its datagram: the rebuilt IP packet (valid until the next call).
    Complete(&'a [u8]),
    /// Discarded, with why.
    Dropped(Counter),
}

/// One fragment held: `len` data bytes at fragment offset `off`, stored at `pos` in the
/// datagram's data buffer.
#[derive(Debug, Clone, Copy)]
struct Piece {
    off: u32,
    len: u32,
    pos: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Live,
    Abandoned,
}

struct Slot {
    key: FragmentKey,
    state: State,
    /// Capture time of the first-arriving fragment, ns.
    created_ns: u64,
    prev: u32,
    next: u32,
    /// Header (IPv4) or Unfragmentable Part (IPv6) of the offset-0 fragment; empty until it
    /// arrives.
    hdr: Vec<u8>,
    /// IPv6: offset in `hdr` of the Next Header field that named the Fragment header.
    nh_pos: usize,
    /// IPv6: the offset-0 Fragment header's Next Header.
    frag_nh: u8,
    data: Vec<u8>,
    /// Held fragments, sorted by offset, never overlapping.
    pieces: Vec<Piece>,
    /// Fragmentable length, once the last fragment (MF = 0) arrived.
    total: Option<u32>,
    /// Data bytes held (sum of the pieces' lengths).
    held: u32,
    /// Bytes charged to the budget.
    charged: usize,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            key: FragmentKey {
                src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                proto: 0,
                id: 0,
            },
            state: State::Free,
            created_ns: 0,
            prev: NIL,
            next: NIL,
            hdr: Vec::new(),
            nh_pos: 0,
            frag_nh: 0,
            data: Vec::new(),
            pieces: Vec::new(),
            total: None,
            held: 0,
            charged: 0,
        }
    }

    /// Forget the datagram's contents, keeping (at most `retain` bytes of) the buffers.
    fn clear(&mut self, retain: usize) {
        self.hdr.clear();
        self.data.clear();
        self.pieces.clear();
        if self.data.capacity() > retain {
            self.data.shrink_to(retain);
        }
        if self.hdr.capacity() > 256 {
            self.hdr.shrink_to(256);
        }
        if self.pieces.capacity() > 64 {
            self.pieces.shrink_to(64);
        }
        self.total = None;
        self.held = 0;
        self.charged = 0;
    }
}

/// A fragment as parsed from one IP packet.
#[derive(Debug, Clone, Copy)]
struct Frag<'a> {
    key: FragmentKey,
    v6: bool,
    /// Fragment offset in bytes.
    off: u32,
    more: bool,
    /// Fragment data.
    data: &'a [u8],
    /// IPv4 header / IPv6 Unfragmentable Part of this packet.
    hdr: &'a [u8],
    /// IPv6: offset of the Next Header field naming the Fragment header.
    nh_pos: usize,
    /// Protocol of the fragmentable part (IPv4 Protocol, IPv6 Fragment header Next Header).
    proto: u8,
}

enum Parsed<'a> {
    NotFragment,
    Bad(Counter),
    Fragment(Frag<'a>),
}

fn be16(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn addr4(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    IpAddr::V4(Ipv4Addr::from(a))
}

fn addr6(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    IpAddr::V6(Ipv6Addr::from(a))
}

/// Parse `d` as an IP fragment. Anything that is not a fragment, or is too broken to tell,
/// is `NotFragment` (the decoder reports it); a fragment whose own lengths are wrong is `Bad`.
fn parse_fragment(d: &[u8]) -> Parsed<'_> {
    match d.first().map(|b| b >> 4) {
        Some(4) => parse_v4(d),
        Some(6) => parse_v6(d),
        _ => Parsed::NotFragment,
    }
}

fn parse_v4(d: &[u8]) -> Parsed<'_> {
    if d.len() < 20 {
        return Parsed::NotFragment;
    }
    let ihl = usize::from(d[0] & 0x0f) * 4;
    if ihl < 20 || d.len() < ihl {
        return Parsed::NotFragment;
    }
    let fo = u16::from_be_bytes([d[6], d[7]]);
    let off = u32::from(fo & 0x1fff) * 8;
    let more = fo & 0x2000 != 0;
    if off == 0 && !more {
        return Parsed::NotFragment;
    }
    let total = usize::from(u16::from_be_bytes([d[2], d[3]]));
    if total <= ihl {
        // 0 (what segmentation offload leaves) or no room for data: not a usable fragment.
        return Parsed::Bad(Counter::BadFragment);
    }
    let Some(data) = d.get(ihl..total) else {
        return Parsed::Bad(Counter::Truncated);
    };
    Parsed::Fragment(Frag {
        key: FragmentKey {
            src: addr4(&d[12..16]),
            dst: addr4(&d[16..20]),
            proto: d[9],
            id: u32::from(u16::from_be_bytes([d[4], d[5]])),
        },
        v6: false,
        off,
        more,
        data,
        hdr: &d[..ihl],
        nh_pos: 0,
        proto: d[9],
    })
}

fn parse_v6(d: &[u8]) -> Parsed<'_> {
    if d.len() < 40 {
        return Parsed::NotFragment;
    }
    let plen = usize::from(u16::from_be_bytes([d[4], d[5]]));
    let mut next = d[6];
    let mut nh_pos = 6;
    let mut off = 40usize;
    for _ in 0..=MAX_EXT_HEADERS {
        let len = match next {
            NH_FRAGMENT => {
                let Some(fh) = d.get(off..off + 8) else {
                    return Parsed::NotFragment;
                };
                let fo = u16::from_be_bytes([fh[2], fh[3]]);
                let frag_off = u32::from(fo & 0xfff8);
                let more = fo & 1 != 0;
                if frag_off == 0 && !more {
                    // Atomic fragment: processed in isolation (RFC 6946 §4).
                    return Parsed::NotFragment;
                }
                let end = 40 + plen;
                if plen == 0 || end < off + 8 {
                    // A jumbogram cannot be fragmented (RFC 2675 §3); a Payload Length that
                    // ends inside the Fragment header is wrong.
                    return Parsed::Bad(Counter::BadFragment);
                }
                let Some(data) = d.get(off + 8..end) else {
                    return Parsed::Bad(Counter::Truncated);
                };
                return Parsed::Fragment(Frag {
                    key: FragmentKey {
                        src: addr6(&d[8..24]),
                        dst: addr6(&d[24..40]),
                        proto: 0,
                        id: u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]),
                    },
                    v6: true,
                    off: frag_off,
                    more,
                    data,
                    hdr: &d[..off],
                    nh_pos,
                    proto: fh[0],
                });
            }
            // Hop-by-Hop, Routing, Destination Options and the other (Hdr Ext Len + 1) * 8
            // headers the decoder walks (RFC 8200 §4, RFC 7045).
            0 | 43 | 60 | 135 | 139 | 140 | 253 | 254 => match d.get(off + 1) {
                Some(&l) => (usize::from(l) + 1) * 8,
                None => return Parsed::NotFragment,
            },
            NH_AH => match d.get(off + 1) {
                Some(&l) => (usize::from(l) + 2) * 4,
                None => return Parsed::NotFragment,
            },
            _ => return Parsed::NotFragment,
        };
        next = d[off];
        nh_pos = off;
        off += len;
    }
    Parsed::NotFragment
}

/// Smallest transport header RFC 1858 / RFC 7112 expect in a first fragment, or 0 when the
/// protocol is not checked.
fn min_transport(proto: u8) -> usize {
    match proto {
        ipproto::TCP => 20,
        ipproto::UDP => 8,
        ipproto::SCTP => 12,
        ipproto::ICMP | ipproto::ICMPV6 => 8,
        _ => 0,
    }
}

/// Whether the first fragment's data `d` (protocol `proto`) stops before the end of the
/// transport header, walking AH and, for IPv6 (`v6`), the extension headers in the
/// fragmentable part (RFC 7112: the first fragment holds the whole header chain).
fn first_fragment_too_short(v6: bool, mut proto: u8, d: &[u8]) -> bool {
    let mut pos = 0usize;
    for _ in 0..=MAX_EXT_HEADERS {
        let len = match proto {
            0 | 43 | 60 if v6 => d.get(pos + 1).map(|l| (usize::from(*l) + 1) * 8),
            NH_AH => d.get(pos + 1).map(|l| (usize::from(*l) + 2) * 4),
            p => return d.len().saturating_sub(pos) < min_transport(p),
        };
        let (Some(len), Some(&next)) = (len, d.get(pos)) else {
            return true;
        };
        proto = next;
        pos += len;
    }
    false
}

/// One's complement checksum of an IPv4 header whose checksum field is zero (RFC 1071).
fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for w in h.chunks(2) {
        let hi = u32::from(w[0]) << 8;
        sum += hi | w.get(1).map_or(0, |b| u32::from(*b));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Bounded reassembler of outer IPv4 and IPv6 fragments. See the [module docs](self) for the
/// rules, the rebuilt packet and the memory bounds.
pub struct Reassembler {
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Oldest-first lists of held datagrams, [IPv4, IPv6].
    heads: [u32; 2],
    tails: [u32; 2],
    timeouts_ns: [u64; 2],
    max_datagrams: usize,
    max_bytes: usize,
    max_pieces: usize,
    max_packet: usize,
    retain: usize,
    out: Vec<u8>,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// A reassembler with `limits`, each clamped to the range [`ReassemblyLimits::validate`]
    /// accepts. Allocates the slot table and hash index for `max_datagrams` up front.
    pub fn new(limits: &ReassemblyLimits) -> Reassembler {
        let max_datagrams = limits.max_datagrams.clamp(1, MAX_SLOTS);
        let max_bytes = limits.max_bytes.clamp(IPV6_MAX_PACKET, MAX_BYTES);
        Reassembler {
            slots: Vec::with_capacity(max_datagrams),
            free: Vec::with_capacity(max_datagrams),
            index: HashTable::with_capacity(max_datagrams),
            hasher: foldhash::fast::RandomState::default(),
            heads: [NIL; 2],
            tails: [NIL; 2],
            timeouts_ns: [limits.timeout_ns(false), limits.timeout_ns(true)],
            max_datagrams,
            max_bytes,
            max_pieces: limits.max_fragments_per_datagram.clamp(1, 8192),
            max_packet: limits.max_datagram_bytes.clamp(68, IPV6_MAX_PACKET),
            retain: (max_bytes / max_datagrams).clamp(2048, IPV6_MAX_PACKET),
            out: Vec::new(),
            stats: ReassemblyStats::default(),
        }
    }

    /// Counters and occupancy.
    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// Offer one IP packet (`ip_packet` starts at the IP version nibble; trailing link-layer
    /// padding is ignored) captured at `ts_ns` (ns since the Unix epoch, non-decreasing as the
    /// engine's clamped capture time is; going backwards only delays expiry).
    ///
    /// Never panics, whatever the bytes. See [`Outcome`] for what the caller does next.
    pub fn push(&mut self, ip_packet: &[u8], ts_ns: u64) -> Outcome<'_> {
        let f = match parse_fragment(ip_packet) {
            Parsed::NotFragment => return Outcome::NotFragment,
            Parsed::Bad(r) => {
                self.stats.bump(Counter::Fragments);
                return self.discard(r);
            }
            Parsed::Fragment(f) => f,
        };
        self.stats.bump(Counter::Fragments);
        let len = f.data.len();
        if len == 0 || (f.more && len % 8 != 0) {
            return self.discard(Counter::BadFragment);
        }
        let end = f.off as usize + len;
        if f.hdr.len() + end > self.packet_limit(f.v6) {
            return self.discard(Counter::TooLarge);
        }
        let hash = self.hasher.hash_one(f.key);
        let found = self.index.find(hash, |&i| self.slots[i as usize].key == f.key).copied();
        let s = match found {
            Some(s) if self.slots[s as usize].created_ns.saturating_add(self.timeout(f.v6)) <= ts_ns => {
                self.remove(s, Some(Counter::Timeout));
                None
            }
            other => other,
        };
        let s = match s {
            Some(s) => s,
            None => match self.allocate(f.key, f.v6, ts_ns, hash) {
                Some(s) => s,
                None => return self.discard(Counter::TooManyDatagrams),
            },
        };
        self.add(s, &f)
    }

    /// Drop the datagrams whose timeout has passed at capture time `now_ns` (ns since the
    /// Unix epoch): incomplete ones count as `timeout`; abandoned ones go silently.
    pub fn expire(&mut self, now_ns: u64) {
        for v in 0..2 {
            loop {
                let h = self.heads[v];
                if h == NIL || self.slots[h as usize].created_ns.saturating_add(self.timeouts_ns[v]) > now_ns {
                    break;
                }
                self.remove(h, Some(Counter::Timeout));
            }
        }
    }

    fn timeout(&self, v6: bool) -> u64 {
        self.timeouts_ns[usize::from(v6)]
    }

    fn packet_limit(&self, v6: bool) -> usize {
        self.max_packet.min(if v6 { IPV6_MAX_PACKET } else { IPV4_MAX_PACKET })
    }

    fn discard(&mut self, r: Counter) -> Outcome<'static> {
        self.stats.bump(r);
        Outcome::Dropped(r)
    }

    /// Add fragment `f` to the datagram in slot `s`.
    fn add(&mut self, s: u32, f: &Frag<'_>) -> Outcome<'_> {
        let si = s as usize;
        if self.slots[si].state == State::Abandoned {
            return self.discard(Counter::Abandoned);
        }
        let len = f.data.len() as u32;
        let end = f.off + len;
        let slot = &self.slots[si];
        // Length claims: the last fragment fixes the end; nothing may reach past it.
        let conflict = match slot.total {
            Some(t) => end > t || (!f.more && end != t),
            None => !f.more && slot.pieces.last().is_some_and(|p| p.off + p.len > end),
        };
        if conflict {
            return self.abandon(s, Counter::Overlap);
        }
        let at = slot.pieces.partition_point(|p| p.off < f.off);
        if let Some(&p) = slot.pieces.get(at) {
            if p.off == f.off && p.len == len {
                let held = &slot.data[p.pos as usize..(p.pos + p.len) as usize];
                if held == f.data {
                    self.stats.bump(Counter::Duplicate);
                    return Outcome::Duplicate;
                }
                return self.abandon(s, Counter::Overlap);
            }
            if p.off < end {
                return self.abandon(s, Counter::Overlap);
            }
        }
        if at > 0 {
            let p = slot.pieces[at - 1];
            if p.off + p.len > f.off {
                return self.abandon(s, Counter::Overlap);
            }
        }
        if f.off == 0 && first_fragment_too_short(f.v6, f.proto, f.data) {
            return self.abandon(s, Counter::TinyFirstFragment);
        }
        if slot.pieces.len() >= self.max_pieces {
            return self.abandon(s, Counter::TooManyFragments);
        }
        let need = f.data.len() + PIECE_COST + if f.off == 0 { f.hdr.len() } else { 0 };
        while self.stats.buffered_bytes + need > self.max_bytes {
            match self.oldest_except(s) {
                Some(victim) => self.remove(victim, Some(Counter::MemoryLimit)),
                None => return self.abandon(s, Counter::MemoryLimit),
            }
        }
        let slot = &mut self.slots[si];
        let pos = slot.data.len() as u32;
        slot.data.extend_from_slice(f.data);
        slot.pieces.insert(at, Piece { off: f.off, len, pos });
        slot.held += len;
        if f.off == 0 {
            slot.hdr.extend_from_slice(f.hdr);
            slot.nh_pos = f.nh_pos;
            slot.frag_nh = f.proto;
        }
        if !f.more {
            slot.total = Some(end);
        }
        slot.charged += need;
        self.stats.buffered_bytes += need;
        match slot.total {
            Some(t) if slot.held == t && !slot.hdr.is_empty() => self.complete(s, f.v6),
            _ => Outcome::Pending,
        }
    }

    /// Build the packet of the complete datagram in slot `s` into `out` and free the slot.
    fn complete(&mut self, s: u32, v6: bool) -> Outcome<'_> {
        let slot = &self.slots[s as usize];
        let total = slot.total.unwrap_or(0) as usize;
        let rebuilt = slot.hdr.len() + total;
        if rebuilt > self.packet_limit(v6) {
            // The offset-0 fragment's header is longer than the one the limit was checked with.
            return self.abandon(s, Counter::TooLarge);
        }
        self.out.clear();
        self.out.extend_from_slice(&slot.hdr);
        for p in &slot.pieces {
            self.out
                .extend_from_slice(&slot.data[p.pos as usize..(p.pos + p.len) as usize]);
        }
        let out = &mut self.out;
        if v6 {
            let plen = (rebuilt - 40) as u16;
            out[4..6].copy_from_slice(&plen.to_be_bytes());
            if let Some(nh) = out.get_mut(slot.nh_pos) {
                *nh = slot.frag_nh;
            }
        } else {
            let ihl = slot.hdr.len();
            out[2..4].copy_from_slice(&(rebuilt as u16).to_be_bytes());
            // Keep the reserved bit and DF; clear MF and the offset.
            out[6] &= 0xc0;
            out[7] = 0;
            out[10] = 0;
            out[11] = 0;
            let c = ipv4_checksum(&out[..ihl]);
            out[10..12].copy_from_slice(&c.to_be_bytes());
        }
        self.stats.bump(Counter::Reassembled);
        self.remove(s, None);
        Outcome::Complete(&self.out)
    }

    /// Give up on the datagram in slot `s`: free its buffers, keep its key until timeout.
    fn abandon(&mut self, s: u32, r: Counter) -> Outcome<'static> {
        let retain = self.retain;
        let slot = &mut self.slots[s as usize];
        self.stats.buffered_bytes -= slot.charged;
        slot.clear(retain);
        slot.state = State::Abandoned;
        self.discard(r)
    }

    /// A free slot for a new datagram `key`, linked at the tail of its version's list and
    /// indexed; evicts the oldest datagram when the table is full.
    fn allocate(&mut self, key: FragmentKey, v6: bool, ts_ns: u64, hash: u64) -> Option<u32> {
        let s = if let Some(s) = self.free.pop() {
            s
        } else if self.slots.len() < self.max_datagrams {
            self.slots.push(Slot::empty());
            (self.slots.len() - 1) as u32
        } else {
            let victim = self.oldest_except(NIL)?;
            self.remove(victim, Some(Counter::TooManyDatagrams));
            self.free.pop()?
        };
        let v = usize::from(v6);
        let slot = &mut self.slots[s as usize];
        slot.key = key;
        slot.state = State::Live;
        slot.created_ns = ts_ns;
        slot.prev = self.tails[v];
        slot.next = NIL;
        match self.tails[v] {
            NIL => self.heads[v] = s,
            t => self.slots[t as usize].next = s,
        }
        self.tails[v] = s;
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index
            .insert_unique(hash, s, |&i| hasher.hash_one(slots[i as usize].key));
        self.stats.datagrams += 1;
        Some(s)
    }

    /// The held datagram with the oldest first fragment, other than `except`.
    fn oldest_except(&self, except: u32) -> Option<u32> {
        let cand = |v: usize| {
            let h = self.heads[v];
            let h = if h == except && h != NIL {
                self.slots[h as usize].next
            } else {
                h
            };
            (h != NIL).then_some(h)
        };
        match (cand(0), cand(1)) {
            (Some(a), Some(b)) => Some(
                if self.slots[a as usize].created_ns <= self.slots[b as usize].created_ns {
                    a
                } else {
                    b
                },
            ),
            (a, b) => a.or(b),
        }
    }

    /// Unlink, unindex and free slot `s`; count `why` if the datagram was still live.
    fn remove(&mut self, s: u32, why: Option<Counter>) {
        let si = s as usize;
        let key = self.slots[si].key;
        let hash = self.hasher.hash_one(key);
        if let Ok(e) = self.index.find_entry(hash, |&i| i == s) {
            e.remove();
        }
        let v = usize::from(key.src.is_ipv6());
        let (prev, next) = (self.slots[si].prev, self.slots[si].next);
        match prev {
            NIL => self.heads[v] = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tails[v] = prev,
            n => self.slots[n as usize].prev = prev,
        }
        let retain = self.retain;
        let slot = &mut self.slots[si];
        if let (Some(c), State::Live) = (why, slot.state) {
            self.stats.bump(c);
        }
        self.stats.buffered_bytes -= slot.charged;
        slot.clear(retain);
        slot.state = State::Free;
        slot.prev = NIL;
        slot.next = NIL;
        self.stats.datagrams -= 1;
        self.free.push(s);
    }
}

/// The T-PDU of a GTP-U G-PDU carried in the IP packet `ip_packet`, when it starts like an IP
/// packet: the inner packet, for [`FragmentPorts::observe`]. GTP-U is recognised as the
/// decoder does: UDP port 2152, or `extra_gtpu_port` when not 0, in either direction. `None`
/// for anything else, including a fragmented outer packet (reassemble it first).
pub fn gtpu_inner_ip(ip_packet: &[u8], extra_gtpu_port: u16) -> Option<&[u8]> {
    let outer = ip::parse_ip(ip_packet).ok()?;
    if outer.proto != ipproto::UDP || outer.fragment != crate::decode::Fragment::None {
        return None;
    }
    let u = outer.payload;
    let (sp, dp) = (be16(u, 0)?, be16(u, 2)?);
    let is_gtpu = |p: u16| p == gtpu::GTPU_PORT || (extra_gtpu_port != 0 && p == extra_gtpu_port);
    if !(is_gtpu(sp) || is_gtpu(dp)) {
        return None;
    }
    let ulen = usize::from(be16(u, 4)?).clamp(8, u.len().max(8));
    let (h, tpdu) = gtpu::parse(u.get(8..ulen)?).ok()?;
    (h.message_type == gtpu::MSG_GPDU && matches!(tpdu.first().map(|b| b >> 4), Some(4 | 6))).then_some(tpdu)
}
