//! Bounded flow table with per-protocol idle timeouts and earliest-deadline eviction.
//!
//! Flows live in a slab; a keyed (randomly seeded) hash index maps [`FlowKey`] to a slot.
//! Each flow's idle deadline is its last packet time plus the timeout of its class (TCP
//! opening, TCP established, TCP closed, UDP, other). Flows wait for their deadline on an
//! expiry wheel of one-second buckets (intrusive lists through the flows' `prev`/`next`),
//! checked lazily: a packet only moves its flow's last-seen time, and a flow leaves its
//! bucket only when its class changes (a TCP state change, a few times per connection). When
//! the wheel reaches a bucket, each flow in it is either expired (its real deadline has
//! passed) or moved to the bucket of its real deadline. So expiry is exact at every
//! [`FlowTable::expire`] call, as a list ordered by last-seen time would make it, without
//! rewriting the links of two other flows on every packet (two cache misses per packet on a
//! large table). Eviction at capacity removes the flow whose deadline comes first (a flow of
//! the earliest non-empty second, the first placed there). Nothing allocates per packet
//! once the slab has grown to capacity: a flow allocates only when it is the first on a new
//! GTP-U tunnel endpoint pair (one shared allocation per pair, module `flow::tunnel`) or
//! outgrows its narrow counters (once per flow, see [`Flow`]).

use std::hash::BuildHasher;
use std::sync::Arc;

use super::index::{self, FlowIndex};
use super::key::{from_addr16, Addr16, FlowKey, F_TUNNEL, F_V6};
use super::stats::{mean, Spread};
use super::tunnel::{Side, TunnelTable, Wide};
use crate::decode::{ipproto, tcpflags, Packet};

/// One second of capture time, ns.
const SEC: u64 = 1_000_000_000;
/// Most buckets (seconds) of an expiry wheel: 8 MiB of bucket heads. The wheel spans the
/// longest timeout (the configuration allows 7 days, 604 800 s); a deadline further away
/// (a longer timeout given through the API) waits in the last bucket and is moved on when
/// the wheel gets there, and eviction among such flows is in the order they were placed.
const MAX_WHEEL: u64 = 1 << 20;
const C_TCP_NEW: u8 = 0;
const C_TCP_EST: u8 = 1;
const C_TCP_CLOSED: u8 = 2;
const C_UDP: u8 = 3;
const C_OTHER: u8 = 4;

/// Idle timeouts per protocol state, in nanoseconds of capture time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP flows that have not completed the handshake.
    pub tcp_new_ns: u64,
    /// Established TCP flows (or TCP picked up mid-stream).
    pub tcp_established_ns: u64,
    /// TCP flows after RST or FIN in both directions.
    pub tcp_closed_ns: u64,
    /// UDP flows.
    pub udp_ns: u64,
    /// Every other protocol (ICMP, SCTP, ESP, fragments ...).
    pub other_ns: u64,
}

impl Timeouts {
    fn of(&self, class: u8) -> u64 {
        match class {
            C_TCP_NEW => self.tcp_new_ns,
            C_TCP_EST => self.tcp_established_ns,
            C_TCP_CLOSED => self.tcp_closed_ns,
            C_UDP => self.udp_ns,
            _ => self.other_ns,
        }
    }
}

/// TCP connection state as a passive observer sees it (RFC 9293 §3.3.2, simplified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TcpState {
    /// Not TCP, or nothing decisive seen yet.
    #[default]
    None,
    /// SYN seen from the initiator.
    SynSent,
    /// SYN-ACK seen from the responder.
    SynReceived,
    /// Handshake completed, or the flow was picked up mid-stream.
    Established,
    /// RST seen, or FIN in both directions.
    Closed,
}

/// Per-flag TCP packet counts over both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlagCounts {
    /// Packets with SYN and without ACK.
    pub syn: u32,
    /// Packets with SYN and ACK.
    pub syn_ack: u32,
    /// Packets with FIN.
    pub fin: u32,
    /// Packets with RST.
    pub rst: u32,
    /// Packets with PSH.
    pub psh: u32,
    /// Packets with ACK.
    pub ack: u32,
    /// Packets with URG.
    pub urg: u32,
}

/// One flow and its statistics. Direction index 0 is initiator → responder.
///
/// The entry is laid out for memory: two cache lines (128 bytes, aligned, on 64-bit targets,
/// checked by a test; a flow costs about 136 bytes in a full table with the hash index). The
/// key's inner addresses and ports are inline, the GTP-U tunnel endpoint pair behind a
/// pointer shared by every flow of that pair, the counters narrow (see below), the first
/// packet time a 48-bit age relative to the last, every small state field in one bit word,
/// and the size and inter-arrival statistics keep only their spread: their means follow from
/// the exact byte, packet and age counters. Counters that would overflow their
/// narrow field (more than 2^32 − 1 packets or bytes in a direction, more than 65 535 SYN or
/// PSH packets, more than 255 SYN-ACK, FIN, RST, URG or neither-SYN-nor-ACK packets, a
/// lifetime above 2^48 ns ≈ 3.3 days) move the flow to full-width counters in an allocation of its own, so
/// every value the accessors return is exact: the record of a flow is the same as with
/// 64-bit fields.
#[derive(Debug, Clone)]
#[repr(align(64))]
pub struct Flow {
    /// Spread of the packet sizes (bytes, IP length), over all packets
    /// ([`Flow::size_std_dev`]; the mean is bytes / packets).
    size: Spread,
    /// Spread of the inter-arrival times (seconds), over the gaps between packets
    /// ([`Flow::iat_std_dev`]; the mean is the age over the gaps).
    iat: Spread,
    /// Last packet time, ns since the Unix epoch.
    last_ns: u64,
    /// Id of the tunnel's session (valid when the session state is `Known` or `UeMismatch`):
    /// the CP SEID of a PFCP session, the requester's control TEID of a GTPv2-C one.
    cp_seid: u64,
    /// Tunnel endpoint pair (shared) and, once the flow outgrew its narrow counters, its
    /// wide counters (own); `None` for an untunnelled flow with narrow counters.
    side: Option<Arc<Side>>,
    /// Lower endpoint address (as [`FlowKey::a`]).
    a: Addr16,
    /// Higher endpoint address (as [`FlowKey::b`]).
    b: Addr16,
    /// Packets per direction (narrow).
    packets: [u32; 2],
    /// Wire bytes per direction (IP length of the flow's packets; inner for tunnels; narrow).
    bytes: [u32; 2],
    /// `last_ns - first_ns`, low 32 bits (narrow).
    age_lo: u32,
    /// Uplink TEID (allocated by the UPF), valid with `B_UL`.
    ul_teid: u32,
    /// Downlink TEID (allocated by the gNB), valid with `B_DL`.
    dl_teid: u32,
    /// Previous flow (or bucket head, see `FlowTable::bucket0`) in this flow's expiry-wheel
    /// bucket.
    prev: u32,
    /// Next flow (or bucket head) in this flow's expiry-wheel bucket.
    next: u32,
    /// Key flags and small state, see the `B_*` and `S_*` constants.
    bits: u32,
    /// Port (or ICMP equivalent) of `a`.
    port_a: u16,
    /// Port (or ICMP equivalent) of `b`.
    port_b: u16,
    /// `last_ns - first_ns`, high 16 of 48 bits (narrow).
    age_hi: u16,
    /// TCP packets with PSH (narrow).
    psh: u16,
    /// TCP packets with SYN and without ACK (narrow).
    syn: u16,
    /// IP protocol number.
    proto: u8,
    /// TCP packets with SYN and ACK (narrow).
    syn_ack: u8,
    /// TCP packets with FIN (narrow).
    fin: u8,
    /// TCP packets with RST (narrow).
    rst: u8,
    /// TCP packets with URG (narrow).
    urg: u8,
    /// TCP packets with neither SYN nor ACK (narrow); the ACK count is the packet count
    /// minus these and `syn`.
    bare: u8,
}

// `Flow::bits`. Bits 0–2 are the key's flags (`FlowKey::flags`), unchanged.
const KEY_FLAGS: u32 = 0x7;
/// Endpoint `a` of the key initiated the flow.
const B_INIT_A: u32 = 1 << 3;
/// 1 when the session (state `Known`/`UeMismatch`) was learnt from GTPv2-C, 0 from PFCP.
const B_GTPC: u32 = 1 << 4;
/// `ul_teid` is set.
const B_UL: u32 = 1 << 5;
/// `dl_teid` is set.
const B_DL: u32 = 1 << 6;
/// A QFI is set (`S_QFI`).
const B_QFI: u32 = 1 << 7;
/// The counters live in the flow's own `Side::wide`.
const B_WIDE: u32 = 1 << 8;
/// [`TcpState`] (3 bits, see `tcp_state_code`).
const S_TCP_STATE: u32 = 9;
/// Directions that sent a FIN (2 bits, 1 << direction).
const S_FIN_DIRS: u32 = 12;
/// Timeout class of the flow (3 bits, `C_*`).
const S_CLASS: u32 = 14;
/// Outer tunnel endpoint the initiator's first packet came from (2 bits): 1 = lower
/// (`tun_a`), 2 = higher (`tun_b`), 0 = not tunnelled or both endpoints equal.
const S_INIT_OUTER: u32 = 17;
/// Which key endpoint is the UE (2 bits: 1 = `a`, 2 = `b`, 0 = unknown), from the direction
/// of uplink packets.
const S_UE_SIDE: u32 = 19;
/// Which outer endpoint is the gNB (2 bits: 1 = `tun_a`, 2 = `tun_b`, 0 = unknown).
const S_GNB_SIDE: u32 = 21;
/// [`SessionState`] of the tunnel at the last G-PDU (3 bits, its `u8` value).
const S_SESSION: u32 = 23;
/// Last QoS Flow Identifier seen in a PDU Session Container (6 bits, TS 38.415 §5.5.3),
/// valid with `B_QFI`.
const S_QFI: u32 = 26;

/// Largest age (`last_ns - first_ns`) the narrow 48-bit field holds.
const AGE_MAX: u64 = (1 << 48) - 1;

fn tcp_state_code(s: TcpState) -> u32 {
    match s {
        TcpState::None => 0,
        TcpState::SynSent => 1,
        TcpState::SynReceived => 2,
        TcpState::Established => 3,
        TcpState::Closed => 4,
    }
}

fn tcp_state_of(code: u32) -> TcpState {
    match code {
        1 => TcpState::SynSent,
        2 => TcpState::SynReceived,
        3 => TcpState::Established,
        4 => TcpState::Closed,
        _ => TcpState::None,
    }
}

/// What the PFCP session table said about a tunnelled flow's TEID at its last G-PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SessionState {
    /// Not tunnelled, or no lookup made.
    None = 0,
    /// The TEID belongs to a PFCP session the sensor saw set up.
    Known = 1,
    /// No session for the TEID, still inside the learning period (it may predate the sensor).
    Unknown = 2,
    /// No session for the TEID after the learning period.
    Unmapped = 3,
    /// The TEID belongs to a session whose UE address is not the inner packet's UE address
    /// (a stale TEID reused by another session, or a forged G-PDU).
    UeMismatch = 4,
}

impl SessionState {
    /// Stable snake_case name (flow records, metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::None => "none",
            SessionState::Known => "known",
            SessionState::Unknown => "unknown",
            SessionState::Unmapped => "unmapped",
            SessionState::UeMismatch => "ue_mismatch",
        }
    }
}

impl Flow {
    #[inline]
    fn field(&self, shift: u32, width: u32) -> u8 {
        ((self.bits >> shift) & ((1 << width) - 1)) as u8
    }

    #[inline]
    fn set_field(&mut self, shift: u32, width: u32, v: u32) {
        let mask = ((1u32 << width) - 1) << shift;
        self.bits = (self.bits & !mask) | ((v << shift) & mask);
    }

    #[inline]
    fn set_bit(&mut self, bit: u32, on: bool) {
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
    }

    #[inline]
    fn class(&self) -> u8 {
        self.field(S_CLASS, 3)
    }

    /// The flow's own wide counters, when it has outgrown the narrow ones.
    #[inline]
    fn wide(&self) -> Option<&Wide> {
        if self.bits & B_WIDE == 0 {
            return None;
        }
        self.side.as_ref().and_then(|s| s.wide.as_ref())
    }

    /// Whether the stored key equals `k` (what the hash index compares per probe).
    #[inline]
    fn matches(&self, k: &FlowKey) -> bool {
        self.a == k.a
            && self.b == k.b
            && self.port_a == k.port_a
            && self.port_b == k.port_b
            && self.proto == k.proto
            && (self.bits & KEY_FLAGS) as u8 == k.flags
            && (k.flags & F_TUNNEL == 0 || self.side.as_ref().is_some_and(|s| s.tunnel == [k.tun_a, k.tun_b]))
    }

    /// The flow's canonical key.
    pub fn key(&self) -> FlowKey {
        let [tun_a, tun_b] = match &self.side {
            Some(s) if self.bits & u32::from(F_TUNNEL) != 0 => s.tunnel,
            _ => [[0; 16]; 2],
        };
        FlowKey {
            a: self.a,
            b: self.b,
            tun_a,
            tun_b,
            port_a: self.port_a,
            port_b: self.port_b,
            proto: self.proto,
            flags: (self.bits & KEY_FLAGS) as u8,
        }
    }

    /// IP protocol number.
    pub fn proto(&self) -> u8 {
        self.proto
    }

    /// Whether the flow was seen inside a GTP-U tunnel.
    pub fn is_tunnelled(&self) -> bool {
        self.bits & u32::from(F_TUNNEL) != 0
    }

    /// Whether endpoint `a` of the key initiated the flow.
    pub fn initiator_is_a(&self) -> bool {
        self.bits & B_INIT_A != 0
    }

    /// First packet time, ns since the Unix epoch.
    pub fn first_ns(&self) -> u64 {
        match self.wide() {
            Some(w) => w.first_ns,
            None => self.last_ns.saturating_sub(self.narrow_age()),
        }
    }

    /// Last packet time, ns since the Unix epoch.
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    /// Packets per direction.
    pub fn packets(&self) -> [u64; 2] {
        match self.wide() {
            Some(w) => w.packets,
            None => self.packets.map(u64::from),
        }
    }

    /// Packets responder → initiator.
    #[inline]
    fn replies(&self) -> u64 {
        match self.wide() {
            Some(w) => w.packets[1],
            None => u64::from(self.packets[1]),
        }
    }

    /// Packets in both directions.
    #[inline]
    fn packets_total(&self) -> u64 {
        match self.wide() {
            Some(w) => w.packets[0].saturating_add(w.packets[1]),
            None => u64::from(self.packets[0]) + u64::from(self.packets[1]),
        }
    }

    /// Wire bytes per direction (IP length of the flow's packets; inner for tunnels).
    pub fn bytes(&self) -> [u64; 2] {
        match self.wide() {
            Some(w) => w.bytes,
            None => self.bytes.map(u64::from),
        }
    }

    /// TCP flag counts (each wraps at 2^32 like the `u32` fields it is returned in).
    pub fn tcp_flags(&self) -> TcpFlagCounts {
        if self.proto != ipproto::TCP {
            return TcpFlagCounts::default();
        }
        let total = self.packets_total();
        match self.wide() {
            Some(w) => TcpFlagCounts {
                syn: w.syn as u32,
                syn_ack: w.syn_ack as u32,
                fin: w.fin as u32,
                rst: w.rst as u32,
                psh: w.psh as u32,
                ack: total.saturating_sub(w.no_ack) as u32,
                urg: w.urg as u32,
            },
            None => TcpFlagCounts {
                syn: u32::from(self.syn),
                syn_ack: u32::from(self.syn_ack),
                fin: u32::from(self.fin),
                rst: u32::from(self.rst),
                psh: u32::from(self.psh),
                ack: total.saturating_sub(u64::from(self.syn) + u64::from(self.bare)) as u32,
                urg: u32::from(self.urg),
            },
        }
    }

    /// TCP state.
    pub fn tcp_state(&self) -> TcpState {
        tcp_state_of(u32::from(self.field(S_TCP_STATE, 3)))
    }

    /// Uplink TEID (allocated by the UPF), when tunnelled and an uplink G-PDU was seen.
    pub fn ul_teid(&self) -> Option<u32> {
        (self.bits & B_UL != 0).then_some(self.ul_teid)
    }

    /// Downlink TEID (allocated by the gNB), when tunnelled and a downlink G-PDU was seen.
    pub fn dl_teid(&self) -> Option<u32> {
        (self.bits & B_DL != 0).then_some(self.dl_teid)
    }

    /// Last QoS Flow Identifier seen in a PDU Session Container.
    pub fn qfi(&self) -> Option<u8> {
        (self.bits & B_QFI != 0).then_some(self.field(S_QFI, 6))
    }

    /// The session of the flow's tunnel at its last G-PDU: the lookup state and, when the
    /// TEID has a session (`Known`, `UeMismatch`), the session's id and origin: the CP SEID
    /// (TS 29.244 §8.2.37, allocated by the SMF) of a PFCP session, or the requester's S11/S5
    /// control TEID (TS 29.274 §8.22, allocated by the MME or SGW) of a GTPv2-C one.
    pub fn session(&self) -> crate::session::TunnelSession {
        use crate::session::SessionOrigin;
        let origin = if self.bits & B_GTPC != 0 {
            SessionOrigin::Gtpv2c
        } else {
            SessionOrigin::Pfcp
        };
        let (state, has_id) = match self.field(S_SESSION, 3) {
            1 => (SessionState::Known, true),
            2 => (SessionState::Unknown, false),
            3 => (SessionState::Unmapped, false),
            4 => (SessionState::UeMismatch, true),
            _ => (SessionState::None, false),
        };
        crate::session::TunnelSession {
            state,
            id: has_id.then_some((self.cp_seid, origin)),
        }
    }

    /// Record the session lookup of the flow's latest G-PDU.
    pub fn set_session(&mut self, s: crate::session::TunnelSession) {
        self.set_field(S_SESSION, 3, u32::from(s.state as u8));
        if let Some((id, origin)) = s.id {
            self.cp_seid = id;
            self.set_bit(B_GTPC, origin == crate::session::SessionOrigin::Gtpv2c);
        }
    }

    /// The narrow 48-bit age field, ns (meaningful without `B_WIDE`).
    #[inline]
    fn narrow_age(&self) -> u64 {
        u64::from(self.age_lo) | u64::from(self.age_hi) << 32
    }

    /// `last_ns - first_ns`: the sum of the gaps between the flow's packets, ns.
    #[inline]
    fn age_ns(&self) -> u64 {
        match self.wide() {
            Some(w) => self.last_ns.saturating_sub(w.first_ns),
            None => self.narrow_age(),
        }
    }

    /// Bytes in both directions.
    #[inline]
    fn bytes_total(&self) -> u64 {
        let [a, b] = self.bytes();
        a.saturating_add(b)
    }

    /// Mean packet size (bytes, IP length): bytes / packets; 0 without packets.
    pub fn size_mean(&self) -> f64 {
        mean(self.bytes_total() as f64, self.packets_total())
    }

    /// Mean inter-arrival time (seconds): the flow's age over the gaps between its packets;
    /// 0 for fewer than two packets.
    pub fn iat_mean(&self) -> f64 {
        mean(self.age_ns() as f64 * 1e-9, self.packets_total().saturating_sub(1))
    }

    /// Standard deviation of the packet sizes (bytes).
    pub fn size_std_dev(&self) -> f64 {
        self.size.std_dev(self.packets_total())
    }

    /// Standard deviation of the inter-arrival times (seconds).
    pub fn iat_std_dev(&self) -> f64 {
        self.iat.std_dev(self.packets_total().saturating_sub(1))
    }

    /// Initiator address and port (ICMP: port equivalent).
    pub fn initiator(&self) -> (std::net::IpAddr, u16) {
        self.endpoint(self.initiator_is_a())
    }

    /// Responder address and port (ICMP: port equivalent).
    pub fn responder(&self) -> (std::net::IpAddr, u16) {
        self.endpoint(!self.initiator_is_a())
    }

    /// Address and port of key endpoint `a` (`true`) or `b` (`false`).
    fn endpoint(&self, a: bool) -> (std::net::IpAddr, u16) {
        let v6 = self.bits & u32::from(F_V6) != 0;
        if a {
            (from_addr16(self.a, v6), self.port_a)
        } else {
            (from_addr16(self.b, v6), self.port_b)
        }
    }

    /// For a tunnelled flow: (gNB, UPF, UE) addresses as learnt from the direction of its
    /// uplink packets (PDU Session Container type 1, or the initiator's direction without
    /// one); `None` where no uplink packet was seen or both tunnel endpoints are equal.
    pub fn gtp_roles(
        &self,
    ) -> (
        Option<std::net::IpAddr>,
        Option<std::net::IpAddr>,
        Option<std::net::IpAddr>,
    ) {
        let ue = match self.field(S_UE_SIDE, 2) {
            1 => Some(self.endpoint(true).0),
            2 => Some(self.endpoint(false).0),
            _ => None,
        };
        let (gnb, upf) = match (self.key().tunnel_endpoints(), self.field(S_GNB_SIDE, 2)) {
            (Some((a, b)), 1) => (Some(a), Some(b)),
            (Some((a, b)), 2) => (Some(b), Some(a)),
            _ => (None, None),
        };
        (gnb, upf, ue)
    }

    /// Count one packet of `len` bytes in direction `dir` at `ts_ns` (TCP flags `tcp`, when
    /// TCP) into the narrow counters; `false` (and nothing changed) when one of them could
    /// overflow: a packet, byte or age counter that would, or, for TCP, any flag counter
    /// already at its maximum (whatever this packet's flags; the wide counters are exact too).
    #[inline(always)]
    fn count_narrow(&mut self, dir: usize, len: u32, tcp: Option<u8>, ts_ns: u64) -> bool {
        let last = self.last_ns.max(ts_ns);
        let age = self.narrow_age() + (last - self.last_ns);
        let full = self.packets[dir] == u32::MAX || self.bytes[dir] > u32::MAX - len || age > AGE_MAX;
        let tcp_full = tcp.is_some()
            && (self.syn == u16::MAX
                || self.psh == u16::MAX
                || self.syn_ack.max(self.fin).max(self.rst).max(self.urg).max(self.bare) == u8::MAX);
        if full || tcp_full {
            return false;
        }
        if let Some(fl) = tcp {
            let syn = fl & tcpflags::SYN != 0;
            let ack = fl & tcpflags::ACK != 0;
            // No overflow: each counter is below its maximum (checked above).
            self.syn += u16::from(syn && !ack);
            self.syn_ack += u8::from(syn && ack);
            self.fin += u8::from(fl & tcpflags::FIN != 0);
            self.rst += u8::from(fl & tcpflags::RST != 0);
            self.urg += u8::from(fl & tcpflags::URG != 0);
            self.bare += u8::from(!syn && !ack);
            self.psh += u16::from(fl & tcpflags::PSH != 0);
        }
        self.packets[dir] += 1;
        self.bytes[dir] += len;
        self.age_lo = age as u32;
        self.age_hi = (age >> 32) as u16;
        self.last_ns = last;
        true
    }

    /// The narrow counters as wide ones.
    fn widened(&self) -> Wide {
        Wide {
            first_ns: self.first_ns(),
            packets: self.packets.map(u64::from),
            bytes: self.bytes.map(u64::from),
            syn: u64::from(self.syn),
            syn_ack: u64::from(self.syn_ack),
            fin: u64::from(self.fin),
            rst: u64::from(self.rst),
            psh: u64::from(self.psh),
            urg: u64::from(self.urg),
            no_ack: u64::from(self.syn) + u64::from(self.bare),
        }
    }

    /// Count one packet into the wide counters (the flow has them: `B_WIDE`). Counters
    /// saturate at 2^64 − 1, which no capture reaches.
    #[cold]
    fn count_wide(&mut self, dir: usize, len: u32, tcp: Option<u8>, ts_ns: u64) {
        self.last_ns = self.last_ns.max(ts_ns);
        let Some(w) = self.side.as_mut().and_then(|s| Arc::make_mut(s).wide.as_mut()) else {
            return;
        };
        w.packets[dir] = w.packets[dir].saturating_add(1);
        w.bytes[dir] = w.bytes[dir].saturating_add(u64::from(len));
        if let Some(fl) = tcp {
            let syn = fl & tcpflags::SYN != 0;
            let ack = fl & tcpflags::ACK != 0;
            let bump = |c: &mut u64, on: bool| *c = c.saturating_add(u64::from(on));
            bump(&mut w.syn, syn && !ack);
            bump(&mut w.syn_ack, syn && ack);
            bump(&mut w.fin, fl & tcpflags::FIN != 0);
            bump(&mut w.rst, fl & tcpflags::RST != 0);
            bump(&mut w.psh, fl & tcpflags::PSH != 0);
            bump(&mut w.urg, fl & tcpflags::URG != 0);
            bump(&mut w.no_ack, !ack);
        }
    }
}

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Idle longer than its protocol's timeout.
    IdleTimeout,
    /// Removed to make room for a new flow at capacity.
    Evicted,
    /// The table was drained at shutdown / end of input.
    Shutdown,
}

/// What one packet did to its flow; the detectors' view of flow events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    /// Slot of the flow (valid until the next call that inserts or expires).
    pub slot: u32,
    /// The packet created the flow.
    pub new_flow: bool,
    /// The packet travels initiator → responder.
    pub from_initiator: bool,
    /// The packet is the responder's first (a SYN-ACK for TCP): the initiator was answered.
    pub first_reply: bool,
    /// The packet completed a TCP three-way handshake.
    pub established: bool,
}

/// The flow table's key hasher: seeded at random when made, so that an attacker cannot
/// choose keys that collide. Clones hash alike, which lets the pipeline's dispatcher hash a
/// packet's key once for both choosing its worker and that worker's table lookup.
pub type FlowHasher = foldhash::fast::RandomState;

/// The bounded flow table.
pub struct FlowTable {
    index: FlowIndex,
    slab: Vec<Flow>,
    free: Vec<u32>,
    /// The expiry wheel's bucket heads, `[prev, next]` of each circular list: bucket `k`
    /// holds the flows placed for a deadline in a second `s` with `s % len == k`, from
    /// `cursor` to `cursor + len - 1`. One bucket per second of the longest timeout, and two
    /// more, so that every deadline has its own second.
    wheel: Vec<[u32; 2]>,
    /// Link values from this one up name the wheel's buckets (the list heads), not flows;
    /// the table holds fewer flows than this.
    bucket0: u32,
    /// The second (of capture time) the wheel is at: every bucket before it has been
    /// checked, and no flow is placed before it. 0 before the first flow.
    cursor: u64,
    /// Every bucket from the cursor's second to this one (excluded) is empty: where
    /// eviction starts looking.
    earliest: u64,
    hasher: FlowHasher,
    tunnels: TunnelTable,
    capacity: usize,
    timeouts: Timeouts,
    /// Flows created since start.
    pub created: u64,
    /// Flows removed by idle timeout since start.
    pub expired: u64,
    /// Flows evicted at capacity since start.
    pub evicted: u64,
}

fn class_of(proto: u8, state: TcpState) -> u8 {
    match proto {
        ipproto::TCP => match state {
            TcpState::Established => C_TCP_EST,
            TcpState::Closed => C_TCP_CLOSED,
            _ => C_TCP_NEW,
        },
        ipproto::UDP => C_UDP,
        _ => C_OTHER,
    }
}

/// The flows' keys, hashed, for growing the index ([`index::Rehash`]); a flow's key spans
/// both its cache lines (the tunnel pair's pointer is in the second).
struct SlabKeys<'a> {
    slab: &'a [Flow],
    hasher: &'a FlowHasher,
}

impl index::Rehash for SlabKeys<'_> {
    #[inline]
    fn hash(&self, slot: u32) -> u64 {
        self.hasher.hash_one(self.slab[slot as usize].key())
    }

    #[inline]
    fn prefetch(&self, slot: u32) {
        if let Some(f) = self.slab.get(slot as usize) {
            index::prefetch_value(f);
        }
    }
}

impl FlowTable {
    /// A table holding at most `capacity` flows (at least 1).
    pub fn new(capacity: usize, timeouts: Timeouts) -> FlowTable {
        FlowTable::with_hasher(capacity, timeouts, FlowHasher::default())
    }

    /// [`FlowTable::new`] hashing keys with `hasher`.
    pub fn with_hasher(capacity: usize, timeouts: Timeouts, hasher: FlowHasher) -> FlowTable {
        let longest = (C_TCP_NEW..=C_OTHER).map(|c| timeouts.of(c)).max().unwrap_or(0);
        let buckets = (longest / SEC).saturating_add(2).min(MAX_WHEEL) as u32;
        let bucket0 = u32::MAX - buckets;
        let capacity = capacity.clamp(1, bucket0 as usize);
        FlowTable {
            // Room for 64 Ki flows (512 KiB) before the first rehash; it grows by doubling,
            // so that a table far from full stays small enough for the cache.
            index: FlowIndex::with_start(capacity, 1 << 16),
            // Reserved whole (address space) so that it never moves; see `reserve_huge`.
            slab: index::reserve_huge(capacity, 1 << 16),
            free: Vec::new(),
            wheel: (0..buckets).map(|k| [bucket0 + k; 2]).collect(),
            bucket0,
            cursor: 0,
            earliest: 0,
            hasher,
            tunnels: TunnelTable::new(),
            capacity,
            timeouts,
            created: 0,
            expired: 0,
            evicted: 0,
        }
    }

    /// Number of flows in the table.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the table holds no flow.
    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    /// Maximum number of flows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of distinct GTP-U tunnel endpoint pairs the table's flows share (each is
    /// stored once, however many flows use it).
    pub fn tunnel_pairs(&self) -> usize {
        self.tunnels.len()
    }

    /// The flow in `slot` (as returned in [`Update::slot`]).
    pub fn get(&self, slot: u32) -> Option<&Flow> {
        self.slab.get(slot as usize)
    }

    /// The flow in `slot`, to change.
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Flow> {
        self.slab.get_mut(slot as usize)
    }

    /// Look a flow up by key.
    pub fn find(&self, key: &FlowKey) -> Option<&Flow> {
        let slab = &self.slab;
        self.index
            .find(self.hash(key), |i| slab[i as usize].matches(key))
            .map(|i| &slab[i as usize])
    }

    /// The table's (randomly seeded) hash of `key`, for [`FlowTable::update_hashed`] and
    /// [`FlowTable::prefetch`]. Tables made with the same [`FlowHasher`] hash alike.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Start loading the index bucket of a key hashed `h` into the cache, for a lookup a few
    /// packets later; [`FlowTable::prefetch_flow`] then loads its flow. Changes nothing.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        self.index.prefetch(h);
    }

    /// Start loading the flow that a key hashed `h` most likely has (reads its index bucket,
    /// best prefetched before). Changes nothing.
    #[inline]
    pub fn prefetch_flow(&self, h: u64) {
        if let Some(f) = self.index.candidate(h).and_then(|i| self.slab.get(i as usize)) {
            // Both its cache lines (a flow is aligned to them).
            index::prefetch_value(f);
        }
    }

    /// Links `[prev, next]` of flow or bucket head `i`.
    #[inline]
    fn links(&self, i: u32) -> [u32; 2] {
        if i >= self.bucket0 {
            self.wheel[(i - self.bucket0) as usize]
        } else {
            let f = &self.slab[i as usize];
            [f.prev, f.next]
        }
    }

    /// Set link `which` (0 = prev, 1 = next) of flow or bucket head `i` to `to`.
    #[inline]
    fn set_link(&mut self, i: u32, which: usize, to: u32) {
        if i >= self.bucket0 {
            let b = (i - self.bucket0) as usize;
            self.wheel[b][which] = to;
        } else {
            let f = &mut self.slab[i as usize];
            *(if which == 0 { &mut f.prev } else { &mut f.next }) = to;
        }
    }

    /// Take flow `i` out of its wheel bucket.
    fn unlink(&mut self, i: u32) {
        let [prev, next] = self.links(i);
        self.set_link(prev, 1, next);
        self.set_link(next, 0, prev);
    }

    /// The idle deadline of flow `f`: capture time (ns) after which it has expired.
    #[inline]
    fn deadline(&self, f: &Flow) -> u64 {
        f.last_ns.saturating_add(self.timeouts.of(f.class()))
    }

    /// The wheel's second for a deadline at `deadline_ns`: its own second, or the cursor's
    /// for one already past, or the wheel's last for one beyond it.
    #[inline]
    fn second_of(&self, deadline_ns: u64) -> u64 {
        (deadline_ns / SEC).clamp(self.cursor, self.cursor + self.wheel.len() as u64 - 1)
    }

    /// Put flow `i` (in no bucket) last in the bucket of its deadline.
    fn place(&mut self, i: u32) {
        let s = self.second_of(self.deadline(&self.slab[i as usize]));
        self.earliest = self.earliest.min(s);
        let k = (s % self.wheel.len() as u64) as usize;
        let (head, tail) = (self.bucket0 + k as u32, self.wheel[k][0]);
        let f = &mut self.slab[i as usize];
        f.prev = tail;
        f.next = head;
        self.set_link(tail, 1, i);
        self.wheel[k][0] = i;
    }

    /// End flow `i`, already out of its bucket: `on_end` sees it, then its slot is freed.
    fn release(&mut self, i: u32, reason: EndReason, on_end: &mut impl FnMut(&Flow, EndReason)) {
        let h = self.hash(&self.slab[i as usize].key());
        self.index.remove(h, i);
        on_end(&self.slab[i as usize], reason);
        if let Some(side) = self.slab[i as usize].side.take() {
            self.tunnels.release(side);
        }
        self.free.push(i);
    }

    fn remove_slot(&mut self, i: u32, reason: EndReason, on_end: &mut impl FnMut(&Flow, EndReason)) {
        self.unlink(i);
        self.release(i, reason, on_end);
    }

    /// Remove every flow idle for longer than its timeout at capture time `now_ns`, calling
    /// `on_end` for each. Capture time must not go back between calls without a
    /// [`FlowTable::drain`] (the pipeline's clock starts a new time base then).
    pub fn expire(&mut self, now_ns: u64, on_end: &mut impl FnMut(&Flow, EndReason)) {
        let now_s = now_ns / SEC;
        if now_s < self.cursor {
            return;
        }
        // Every bucket from the cursor's second to now's (all of them after a jump of the
        // wheel's span or more). Flows moved on go to now's second or later, so a bucket is
        // detached before its flows are looked at.
        let from = self.cursor;
        let len = self.wheel.len() as u64;
        let last = now_s.min(from + len - 1);
        self.cursor = now_s;
        // Buckets before now's are emptied below; later ones get flows only through `place`,
        // which lowers `earliest` to theirs.
        self.earliest = self.earliest.max(now_s);
        for x in from..=last {
            let k = (x % len) as usize;
            let head = self.bucket0 + k as u32;
            let [tail, mut i] = self.wheel[k];
            if i == head {
                continue;
            }
            self.wheel[k] = [head, head];
            loop {
                let next = self.slab[i as usize].next;
                if self.deadline(&self.slab[i as usize]) < now_ns {
                    self.release(i, EndReason::IdleTimeout, on_end);
                    self.expired += 1;
                } else {
                    self.place(i);
                }
                if i == tail {
                    break;
                }
                i = next;
            }
        }
    }

    /// Remove every flow (end of input, or a new time base), calling `on_end` for each.
    pub fn drain(&mut self, on_end: &mut impl FnMut(&Flow, EndReason)) {
        let len = self.wheel.len() as u64;
        for off in 0..len {
            let k = ((self.cursor + off) % len) as usize;
            loop {
                let first = self.wheel[k][1];
                if first >= self.bucket0 {
                    break;
                }
                self.remove_slot(first, EndReason::Shutdown, on_end);
            }
        }
        self.cursor = 0;
        self.earliest = 0;
    }

    /// Evict the flow whose idle deadline comes first: the first flow of the earliest
    /// non-empty bucket that belongs there (a flow seen since it was placed moves on to the
    /// bucket of its real deadline first).
    fn evict_oldest(&mut self, on_end: &mut impl FnMut(&Flow, EndReason)) {
        let len = self.wheel.len() as u64;
        let mut x = self.earliest.max(self.cursor);
        while x < self.cursor + len {
            let k = (x % len) as usize;
            let first = self.wheel[k][1];
            if first >= self.bucket0 {
                x += 1;
                self.earliest = x;
                continue;
            }
            if self.second_of(self.deadline(&self.slab[first as usize])) > x {
                self.unlink(first);
                self.place(first);
                continue;
            }
            self.remove_slot(first, EndReason::Evicted, on_end);
            self.evicted += 1;
            return;
        }
    }

    /// A new flow for `key` whose first packet is `p` (travelling a → b when `a_to_b`) at
    /// `ts_ns`, with no packet counted yet.
    fn new_flow(&mut self, p: &Packet, key: &FlowKey, a_to_b: bool, ts_ns: u64) -> Flow {
        // A SYN-ACK opening a flow means its SYN was missed: the sender is the responder.
        let syn_ack = p.tcp_flags & (tcpflags::SYN | tcpflags::ACK) == (tcpflags::SYN | tcpflags::ACK);
        let initiator_is_a = if p.proto == ipproto::TCP && syn_ack {
            !a_to_b
        } else {
            a_to_b
        };
        let side = key
            .is_tunnelled()
            .then(|| self.tunnels.intern([key.tun_a, key.tun_b], self.index.len()));
        Flow {
            size: Spread::default(),
            iat: Spread::default(),
            last_ns: ts_ns,
            cp_seid: 0,
            side,
            a: key.a,
            b: key.b,
            packets: [0; 2],
            bytes: [0; 2],
            age_lo: 0,
            ul_teid: 0,
            dl_teid: 0,
            prev: u32::MAX,
            next: u32::MAX,
            bits: u32::from(key.flags) & KEY_FLAGS
                | if initiator_is_a { B_INIT_A } else { 0 }
                | u32::from(C_OTHER) << S_CLASS,
            port_a: key.port_a,
            port_b: key.port_b,
            age_hi: 0,
            psh: 0,
            proto: key.proto,
            syn: 0,
            syn_ack: 0,
            fin: 0,
            rst: 0,
            urg: 0,
            bare: 0,
        }
    }

    /// Move the flow in `slot` to wide counters: its own [`Side`] holding a copy of its tunnel
    /// endpoints, the shared one given back.
    #[cold]
    #[inline(never)]
    fn widen(&mut self, slot: u32) {
        let Some(f) = self.slab.get_mut(slot as usize) else {
            return;
        };
        let wide = f.widened();
        let tunnel = f.side.as_ref().map_or([[0; 16]; 2], |s| s.tunnel);
        let old = f.side.replace(Arc::new(Side {
            tunnel,
            wide: Some(wide),
        }));
        f.bits |= B_WIDE;
        if let Some(old) = old {
            self.tunnels.release(old);
        }
    }

    /// Account packet `p` (key `key`, travelling a → b when `a_to_b`) at capture time
    /// `ts_ns` to its flow, creating the flow if needed (evicting the flow whose idle
    /// deadline comes first when the table is full; `on_end` sees the evicted flow).
    #[inline]
    pub fn update(
        &mut self,
        p: &Packet,
        key: &FlowKey,
        a_to_b: bool,
        ts_ns: u64,
        on_end: &mut impl FnMut(&Flow, EndReason),
    ) -> Update {
        self.update_hashed(self.hash(key), p, key, a_to_b, ts_ns, on_end)
    }

    /// [`FlowTable::update`] with the key's hash `h` already computed by
    /// [`FlowTable::hash`] (of this table or of one made with the same [`FlowHasher`]).
    pub fn update_hashed(
        &mut self,
        h: u64,
        p: &Packet,
        key: &FlowKey,
        a_to_b: bool,
        ts_ns: u64,
        on_end: &mut impl FnMut(&Flow, EndReason),
    ) -> Update {
        let slab = &self.slab;
        let found = self.index.find(h, |i| slab[i as usize].matches(key));
        let (slot, new_flow) = match found {
            Some(i) => (i, false),
            None => {
                if self.index.len() >= self.capacity {
                    self.evict_oldest(on_end);
                }
                let flow = self.new_flow(p, key, a_to_b, ts_ns);
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slab[i as usize] = flow;
                        i
                    }
                    None => {
                        let room = self.slab.capacity();
                        self.slab.push(flow);
                        if self.slab.capacity() != room {
                            index::advise_huge(&self.slab);
                        }
                        (self.slab.len() - 1) as u32
                    }
                };
                let (slab, hasher) = (&self.slab, &self.hasher);
                self.index.insert(h, i, SlabKeys { slab, hasher });
                self.created += 1;
                if self.cursor == 0 {
                    self.cursor = ts_ns / SEC;
                }
                (i, true)
            }
        };
        let f = &mut self.slab[slot as usize];
        let from_initiator = a_to_b == f.initiator_is_a();
        let dir = usize::from(!from_initiator);
        // Which outer endpoint sent this packet (tunnels only). A genuine reply comes from the
        // other tunnel endpoint than the initiator's packets: a "reply" sent from the
        // initiator's own side (a UE forging the server's SYN-ACK uplink to hide a SYN flood)
        // is counted as traffic but neither answers the initiator nor completes a handshake.
        let outer_side = match &p.tunnel {
            Some(t) if key.tun_a != key.tun_b => 1 + u8::from(crate::flow::key::addr16(t.outer_src) != key.tun_a),
            _ => 0,
        };
        if new_flow {
            // The initiator's side: this packet's side if it is the initiator's, else the other.
            let init_outer = match outer_side {
                0 => 0,
                s if from_initiator => s,
                s => 3 - s,
            };
            f.set_field(S_INIT_OUTER, 2, u32::from(init_outer));
        }
        let init_outer = f.field(S_INIT_OUTER, 2);
        let forged_reply = !from_initiator && outer_side != 0 && outer_side == init_outer;
        let first_reply = !from_initiator && !forged_reply && f.replies() == 0;
        let seen = f.packets_total();
        let (age_before, bytes_before) = (f.age_ns(), f.bytes_total());
        let tcp = (p.proto == ipproto::TCP).then_some(p.tcp_flags);
        let len = p.ip_len;
        if f.bits & B_WIDE != 0 || !f.count_narrow(dir, len, tcp, ts_ns) {
            if f.bits & B_WIDE == 0 {
                self.widen(slot);
            }
            self.slab[slot as usize].count_wide(dir, len, tcp, ts_ns);
        }
        let f = &mut self.slab[slot as usize];
        // The means before and after this packet come from the exact counters.
        if !new_flow {
            // The gap before this packet is the `seen`-th inter-arrival sample.
            let age = f.age_ns();
            let before = mean(age_before as f64 * 1e-9, seen - 1);
            let after = mean(age as f64 * 1e-9, seen);
            f.iat.push((age - age_before) as f64 * 1e-9, before, after);
        }
        let before = mean(bytes_before as f64, seen);
        let after = mean(f.bytes_total() as f64, seen.saturating_add(1));
        f.size.push(f64::from(len), before, after);
        if let Some(t) = &p.tunnel {
            if let Some(psc) = t.header.pdu_session {
                f.set_field(S_QFI, 6, u32::from(psc.qfi));
                f.bits |= B_QFI;
            }
            // Uplink = towards the UPF. The PDU Session Container or the session table says
            // which way a packet goes (`Tunnel::uplink`); without either (4G S1-U with no
            // GTPv2-C seen) the initiator's direction is taken as uplink, since UEs open most
            // flows.
            let uplink = t.uplink.unwrap_or(from_initiator);
            if uplink {
                f.ul_teid = t.header.teid;
                f.bits |= B_UL;
                // Uplink: the inner source is the UE, the outer source the gNB.
                f.set_field(S_UE_SIDE, 2, if a_to_b { 1 } else { 2 });
                f.set_field(S_GNB_SIDE, 2, u32::from(outer_side));
            } else {
                f.dl_teid = t.header.teid;
                f.bits |= B_DL;
            }
        }
        let mut established = false;
        if p.proto == ipproto::TCP {
            let fl = p.tcp_flags;
            let syn = fl & tcpflags::SYN != 0;
            let ack = fl & tcpflags::ACK != 0;
            let mut fin_dirs = f.field(S_FIN_DIRS, 2);
            if fl & tcpflags::FIN != 0 {
                fin_dirs |= 1 << dir;
                f.set_field(S_FIN_DIRS, 2, u32::from(fin_dirs));
            }
            let before = f.tcp_state();
            let after = match before {
                _ if forged_reply => before,
                _ if fl & tcpflags::RST != 0 || fin_dirs == 3 => TcpState::Closed,
                TcpState::None if syn && !ack => TcpState::SynSent,
                TcpState::None if syn && ack => TcpState::SynReceived,
                TcpState::None => TcpState::Established,
                TcpState::SynSent if syn && ack && !from_initiator => TcpState::SynReceived,
                TcpState::SynReceived if ack && !syn && from_initiator => TcpState::Established,
                s => s,
            };
            f.set_field(S_TCP_STATE, 3, tcp_state_code(after));
            established = before == TcpState::SynReceived && after == TcpState::Established;
        }
        // The flow's deadline moved with its last-seen time: the wheel checks that lazily.
        // A new class can bring it closer (a TCP close), so the flow moves to its bucket now.
        let class = class_of(p.proto, f.tcp_state());
        if new_flow || class != f.class() {
            f.set_field(S_CLASS, 3, u32::from(class));
            if !new_flow {
                self.unlink(slot);
            }
            self.place(slot);
        }
        Update {
            slot,
            new_flow,
            from_initiator,
            first_reply,
            established,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Fragment, Packet};
    use std::net::IpAddr;

    fn tcp(src: &str, sp: u16, dst: &str, dp: u16, flags: u8) -> Packet {
        Packet {
            src: src.parse::<IpAddr>().unwrap(),
            dst: dst.parse::<IpAddr>().unwrap(),
            proto: 6,
            src_port: sp,
            dst_port: dp,
            icmp: None,
            tcp_flags: flags,
            ip_len: 60,
            fragment: Fragment::None,
            tunnel: None,
            anomaly: None,
        }
    }

    fn table(cap: usize) -> FlowTable {
        FlowTable::new(
            cap,
            Timeouts {
                tcp_new_ns: 30 * SEC,
                tcp_established_ns: 300 * SEC,
                tcp_closed_ns: 10 * SEC,
                udp_ns: 60 * SEC,
                other_ns: 30 * SEC,
            },
        )
    }

    fn feed(t: &mut FlowTable, p: Packet, ts: u64) -> Update {
        let (k, ab) = FlowKey::of_packet(&p);
        t.update(&p, &k, ab, ts, &mut |_, _| {})
    }

    #[test]
    fn handshake_both_directions_one_flow() {
        let mut t = table(10);
        let u1 = feed(&mut t, tcp("10.0.0.2", 40000, "10.0.0.1", 80, 0x02), SEC);
        let u2 = feed(&mut t, tcp("10.0.0.1", 80, "10.0.0.2", 40000, 0x12), 2 * SEC);
        let u3 = feed(&mut t, tcp("10.0.0.2", 40000, "10.0.0.1", 80, 0x10), 3 * SEC);
        assert!(u1.new_flow && !u2.new_flow && !u3.new_flow);
        assert!(u2.first_reply && !u2.from_initiator);
        assert!(u3.established);
        let f = t.get(u3.slot).unwrap();
        assert_eq!(f.packets(), [2, 1]);
        assert_eq!(f.tcp_state(), TcpState::Established);
        assert_eq!(f.initiator().0, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(f.iat_mean(), 1.0);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn expiry_by_class_and_eviction_at_capacity() {
        let mut t = table(2);
        feed(&mut t, tcp("10.0.0.2", 1, "10.0.0.1", 80, 0x02), SEC);
        feed(&mut t, tcp("10.0.0.3", 1, "10.0.0.1", 80, 0x02), 2 * SEC);
        let mut ended = Vec::new();
        let p = tcp("10.0.0.4", 1, "10.0.0.1", 80, 0x02);
        let (k, ab) = FlowKey::of_packet(&p);
        t.update(&p, &k, ab, 3 * SEC, &mut |f, r| ended.push((f.initiator().0, r)));
        assert_eq!(ended, vec![("10.0.0.2".parse().unwrap(), EndReason::Evicted)]);
        assert_eq!((t.len(), t.evicted), (2, 1));
        t.expire(33 * SEC, &mut |_, _| {});
        assert_eq!(t.len(), 1); // the flow last seen at 3 s is still within 30 s
        t.expire(34 * SEC, &mut |_, _| {});
        assert_eq!((t.len(), t.expired), (0, 2));
    }

    /// Initiator addresses of the flows `on_end` saw, with why they ended.
    type Ended = Vec<(IpAddr, EndReason)>;

    fn update_noting(t: &mut FlowTable, p: Packet, ts: u64, ended: &mut Ended) {
        let (k, ab) = FlowKey::of_packet(&p);
        t.update(&p, &k, ab, ts, &mut |f, r| ended.push((f.initiator().0, r)));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn eviction_takes_the_flow_nearest_its_timeout() {
        // An established flow (300 s) last seen at 3 s, then a half-open one (30 s) at 4 s:
        // the half-open one is evicted although it was seen later.
        let mut t = table(2);
        let mut ended = Vec::new();
        update_noting(&mut t, tcp("10.0.0.2", 1, "10.0.0.1", 80, 0x02), SEC, &mut ended);
        update_noting(&mut t, tcp("10.0.0.1", 80, "10.0.0.2", 1, 0x12), 2 * SEC, &mut ended);
        update_noting(&mut t, tcp("10.0.0.2", 1, "10.0.0.1", 80, 0x10), 3 * SEC, &mut ended);
        update_noting(&mut t, tcp("10.0.0.3", 1, "10.0.0.1", 80, 0x02), 4 * SEC, &mut ended);
        update_noting(&mut t, tcp("10.0.0.4", 1, "10.0.0.1", 80, 0x02), 5 * SEC, &mut ended);
        assert_eq!(ended, vec![(ip("10.0.0.3"), EndReason::Evicted)]);
        // Among flows of one timeout, the one seen longest ago goes, even when it was
        // created first and waits in an earlier bucket: 10.0.0.5 (seen at 6 and 9 s) stays,
        // 10.0.0.4 (7 s) goes, then 10.0.0.5 (9 s) before 10.0.0.6 (10 s).
        let mut t = table(2);
        ended.clear();
        update_noting(&mut t, tcp("10.0.0.5", 1, "10.0.0.1", 80, 0x02), 6 * SEC, &mut ended);
        update_noting(&mut t, tcp("10.0.0.4", 1, "10.0.0.1", 80, 0x02), 7 * SEC, &mut ended);
        update_noting(&mut t, tcp("10.0.0.5", 1, "10.0.0.1", 80, 0x02), 9 * SEC, &mut ended);
        update_noting(&mut t, tcp("10.0.0.6", 1, "10.0.0.1", 80, 0x02), 10 * SEC, &mut ended);
        update_noting(&mut t, tcp("10.0.0.7", 1, "10.0.0.1", 80, 0x02), 11 * SEC, &mut ended);
        assert_eq!(
            ended,
            vec![
                (ip("10.0.0.4"), EndReason::Evicted),
                (ip("10.0.0.5"), EndReason::Evicted)
            ]
        );
    }

    #[test]
    fn eviction_order_holds_for_timeouts_of_hours() {
        // Established flows time out after an hour: a flow busy every second until 300 s
        // outlasts flows idle since 100 s and 200 s (a wheel shorter than the timeout kept
        // deadlines beyond it in the order they were placed and evicted the busy one).
        let mut t = FlowTable::new(
            3,
            Timeouts {
                tcp_established_ns: 3600 * SEC,
                ..table(1).timeouts
            },
        );
        let mut ended = Vec::new();
        let ack = |port| tcp("10.0.0.1", port, "10.0.0.2", 443, 0x10);
        for s in 1..=300 {
            update_noting(&mut t, ack(40000), s * SEC, &mut ended);
            if s == 100 || s == 200 {
                update_noting(&mut t, ack(40000 + s as u16 / 100), s * SEC, &mut ended);
            }
            if s % 60 == 0 {
                t.expire(s * SEC, &mut |_, _| {});
            }
        }
        let mut evicted = Vec::new();
        for port in [40003, 40004] {
            let p = ack(port);
            let (k, ab) = FlowKey::of_packet(&p);
            t.update(&p, &k, ab, 301 * SEC, &mut |f, r| evicted.push((f.initiator().1, r)));
        }
        assert!(ended.is_empty());
        assert_eq!(evicted, vec![(40001, EndReason::Evicted), (40002, EndReason::Evicted)]);
    }

    #[test]
    fn expiry_is_exact_at_every_call() {
        // Flows seen again after they were placed, a class that shortens the timeout (RST:
        // 10 s), a timeout beyond the wheel's span (3 000 s UDP), and a jump of capture time
        // past the whole wheel: each flow ends at the first call later than its deadline.
        let mut t = FlowTable::new(
            16,
            Timeouts {
                tcp_new_ns: 30 * SEC,
                tcp_established_ns: 300 * SEC,
                tcp_closed_ns: 10 * SEC,
                udp_ns: 3000 * SEC,
                other_ns: 30 * SEC,
            },
        );
        let mut ended = Vec::new();
        let syn = |src| tcp(src, 1, "10.0.0.1", 80, 0x02);
        update_noting(&mut t, syn("10.0.0.2"), SEC, &mut ended); // deadline 31 s
        update_noting(&mut t, syn("10.0.0.3"), SEC, &mut ended);
        update_noting(&mut t, syn("10.0.0.3"), 20 * SEC + 1, &mut ended); // 50 s + 1 ns
        update_noting(&mut t, syn("10.0.0.4"), 2 * SEC, &mut ended);
        update_noting(&mut t, tcp("10.0.0.4", 1, "10.0.0.1", 80, 0x04), 5 * SEC, &mut ended); // RST: 15 s
        let mut udp = syn("10.0.0.5");
        udp.proto = 17;
        update_noting(&mut t, udp, 3 * SEC, &mut ended); // 3 003 s
        fn at(t: &mut FlowTable, now: u64) -> Vec<IpAddr> {
            let mut out = Vec::new();
            t.expire(now, &mut |f, r| {
                assert_eq!(r, EndReason::IdleTimeout);
                out.push(f.initiator().0)
            });
            out
        }
        let none: Vec<IpAddr> = Vec::new();
        assert_eq!(at(&mut t, 15 * SEC), none);
        assert_eq!(at(&mut t, 15 * SEC + 1), vec![ip("10.0.0.4")]);
        assert_eq!(at(&mut t, 31 * SEC), none);
        assert_eq!(at(&mut t, 31 * SEC + 1), vec![ip("10.0.0.2")]);
        assert_eq!(at(&mut t, 50 * SEC + 1), none);
        assert_eq!(at(&mut t, 50 * SEC + 2), vec![ip("10.0.0.3")]);
        assert_eq!(at(&mut t, 3003 * SEC), none);
        assert_eq!(t.len(), 1);
        assert_eq!(at(&mut t, 3003 * SEC + 1), vec![ip("10.0.0.5")]);
        assert_eq!((t.len(), t.expired), (0, 4));
        assert!(ended.is_empty());
        // A jump of more than the wheel's span, with flows waiting in every part of it.
        for i in 0..8u64 {
            let mut p = syn("10.0.1.1");
            p.src_port = i as u16;
            p.proto = if i % 2 == 0 { 6 } else { 17 };
            update_noting(&mut t, p, 4000 * SEC + i * 300 * SEC, &mut ended);
        }
        // TCP flows (30 s) seen at 4 000, 4 600, 5 200 and 5 800 s; UDP (3 000 s) at 4 300,
        // 4 900, 5 500 and 6 100 s.
        assert_eq!(at(&mut t, 7000 * SEC).len(), 4);
        assert_eq!(at(&mut t, 7300 * SEC), none);
        assert_eq!(at(&mut t, 7300 * SEC + 1).len(), 1);
        assert_eq!(at(&mut t, 20_000 * SEC).len(), 3);
        assert!(t.is_empty());
    }

    /// The entry size the flow-memory figures (BENCHMARKS.md) rest on: two cache lines.
    const _: () = assert!(std::mem::size_of::<Flow>() <= 128);

    #[test]
    fn entry_is_two_cache_lines() {
        assert_eq!((std::mem::size_of::<Flow>(), std::mem::align_of::<Flow>()), (128, 64));
    }

    fn gpdu(outer: (&str, &str), inner: (&str, u16, &str, u16), teid: u32, uplink: bool) -> Packet {
        use crate::decode::gtpu::GtpuHeader;
        let mut p = tcp(inner.0, inner.1, inner.2, inner.3, 0x10);
        p.proto = 17;
        p.tunnel = Some(crate::decode::Tunnel {
            outer_src: outer.0.parse().unwrap(),
            outer_dst: outer.1.parse().unwrap(),
            outer_src_port: 2152,
            outer_dst_port: 2152,
            header: GtpuHeader {
                message_type: 255,
                length: 0,
                teid,
                sequence: None,
                ext_headers: 0,
                ext_types: 0,
                pdu_session: None,
                truncated: false,
            },
            uplink: Some(uplink),
            session: None,
        });
        p
    }

    #[test]
    fn tunnel_pairs_shared_and_released() {
        let mut t = table(3);
        let ul = |ue: &str, port| gpdu(("192.0.2.1", "192.0.2.2"), (ue, port, "8.8.8.8", 53), 7, true);
        let u1 = feed(&mut t, ul("10.45.0.1", 1000), SEC);
        feed(&mut t, ul("10.45.0.2", 1000), SEC);
        let dl = gpdu(("192.0.2.2", "192.0.2.1"), ("8.8.8.8", 53, "10.45.0.1", 1000), 9, false);
        let u3 = feed(&mut t, dl, 2 * SEC);
        assert_eq!((t.len(), t.tunnel_pairs(), u3.slot), (2, 1, u1.slot));
        let f = t.get(u1.slot).unwrap();
        assert_eq!((f.ul_teid(), f.dl_teid(), f.packets()), (Some(7), Some(9), [1, 1]));
        let (gnb, upf, ue) = f.gtp_roles();
        assert_eq!(gnb, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(upf, Some("192.0.2.2".parse().unwrap()));
        assert_eq!(ue, Some("10.45.0.1".parse().unwrap()));
        let (k, _) = FlowKey::of_packet(&ul("10.45.0.1", 1000));
        assert_eq!(f.key(), k);
        // Another pair, then eviction at capacity 3 of both flows of the first pair (UDP
        // flows, all with the same timeout: the earliest seen go first).
        let other = gpdu(("192.0.2.9", "192.0.2.2"), ("10.45.0.1", 1000, "8.8.8.8", 53), 7, true);
        feed(&mut t, other, 3 * SEC);
        assert_eq!((t.len(), t.tunnel_pairs()), (3, 2));
        let mut udp = tcp("10.0.0.1", 1, "10.0.0.2", 2, 0);
        udp.proto = 17;
        feed(&mut t, udp, 4 * SEC);
        udp.src_port = 3;
        feed(&mut t, udp, 5 * SEC);
        assert_eq!((t.len(), t.evicted, t.tunnel_pairs()), (3, 2, 1));
        t.drain(&mut |_, _| {});
        assert_eq!((t.len(), t.tunnel_pairs()), (0, 0));
        // Slots and pairs are reused.
        let u = feed(&mut t, ul("10.45.0.3", 1), 6 * SEC);
        assert!(u.slot < 4);
        assert_eq!(t.tunnel_pairs(), 1);
    }

    /// Feed `n` packets of `p` (reversed every `reverse_every`-th) and compare every counter
    /// with a plain 64-bit count.
    fn check_counts(p: Packet, n: u64, step_ns: u64, wide: bool) {
        let mut t = table(4);
        let mut r = p;
        std::mem::swap(&mut r.src, &mut r.dst);
        std::mem::swap(&mut r.src_port, &mut r.dst_port);
        let mut want = [0u64; 2];
        let mut slot = 0;
        for i in 0..n {
            let (q, d) = if i % 3 == 2 { (r, 1) } else { (p, 0) };
            slot = feed(&mut t, q, SEC + i * step_ns).slot;
            want[d] += 1;
        }
        let f = t.get(slot).unwrap();
        assert_eq!(f.bits & B_WIDE != 0, wide);
        assert_eq!(f.packets(), want);
        assert_eq!(f.bytes(), want.map(|x| x * u64::from(p.ip_len)));
        assert_eq!((f.first_ns(), f.last_ns()), (SEC, SEC + (n - 1) * step_ns));
        if p.proto == 6 {
            let c = f.tcp_flags();
            let all = (want[0] + want[1]) as u32;
            let on = |bit: u8| if p.tcp_flags & bit != 0 { all } else { 0 };
            assert_eq!((c.syn, c.ack, c.psh, c.fin), (on(0x02), on(0x10), on(0x08), 0));
        }
        let ended = std::cell::RefCell::new(Vec::new());
        t.drain(&mut |f, _| ended.borrow_mut().push(f.packets()));
        assert_eq!(ended.into_inner(), vec![want]);
    }

    #[test]
    fn counters_exact_past_the_narrow_fields() {
        // Narrow throughout.
        check_counts(tcp("10.0.0.1", 1, "10.0.0.2", 2, 0x18), 200, 1, false);
        // 300 SYN-less, ACK-less packets (and 300 FINs): the 8-bit counters overflow.
        check_counts(tcp("10.0.0.1", 1, "10.0.0.2", 2, 0x08), 300, 1, true);
        // 70 000 SYNs: the 16-bit SYN counter overflows.
        check_counts(tcp("10.0.0.1", 1, "10.0.0.2", 2, 0x02), 70_000, 1, true);
        check_counts(tcp("10.0.0.1", 1, "10.0.0.2", 2, 0x02), 60_000, 1, false);
        // 70 000 PSH: the 16-bit counter overflows.
        check_counts(tcp("10.0.0.1", 1, "10.0.0.2", 2, 0x18), 70_000, 1, true);
        // 5 GB in one direction: the 32-bit byte counter overflows.
        let mut big = tcp("10.0.0.1", 1, "10.0.0.2", 2, 0x10);
        big.proto = 17;
        big.ip_len = 65_535;
        check_counts(big, 120_000, 1, true);
        // Lifetime above 2^48 ns (3.3 days).
        check_counts(tcp("10.0.0.1", 1, "10.0.0.2", 2, 0x10), 3, 1 << 47, true);
        // A tunnelled flow keeps its tunnel after widening, and gives the shared pair back.
        let mut t = table(4);
        let p = gpdu(("192.0.2.1", "192.0.2.2"), ("10.45.0.1", 1, "8.8.8.8", 53), 7, true);
        let mut slot = 0;
        for i in 0..3 {
            slot = feed(&mut t, p, SEC + i * (1 << 47)).slot;
        }
        assert_eq!((t.len(), t.tunnel_pairs()), (1, 0));
        let f = t.get(slot).unwrap();
        assert_eq!((f.packets(), f.first_ns()), ([3, 0], SEC));
        assert_eq!(f.key(), FlowKey::of_packet(&p).0);
        assert_eq!(t.find(&FlowKey::of_packet(&p).0).map(|f| f.packets()), Some([3, 0]));
        feed(&mut t, p, SEC + 3 * (1 << 47));
        assert_eq!(t.len(), 1);
    }

    mod wheel_model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        const TIMEOUTS: Timeouts = Timeouts {
            tcp_new_ns: 30 * SEC,
            tcp_established_ns: 300 * SEC,
            tcp_closed_ns: 10 * SEC,
            // A long one: the wheel spans it.
            udp_ns: 2000 * SEC,
            other_ns: 30 * SEC,
        };

        /// A packet from client port `port` (flow identity: protocol and port), of kind
        /// `kind` (SYN, SYN-ACK reply, ACK, RST, FIN-ACK, UDP), `gap_ms` after the last one.
        fn packet(port: u16, kind: u8) -> Packet {
            match kind {
                0 => tcp("10.0.0.2", port, "10.0.0.1", 80, 0x02),
                1 => tcp("10.0.0.1", 80, "10.0.0.2", port, 0x12),
                2 => tcp("10.0.0.2", port, "10.0.0.1", 80, 0x10),
                3 => tcp("10.0.0.2", port, "10.0.0.1", 80, 0x04),
                4 => tcp("10.0.0.2", port, "10.0.0.1", 80, 0x11),
                _ => {
                    let mut p = tcp("10.0.0.2", port, "10.0.0.1", 80, 0);
                    p.proto = 17;
                    p
                }
            }
        }

        fn id(f: &Flow) -> (u8, u16) {
            let (a, b) = (f.initiator(), f.responder());
            (f.proto(), if a.1 == 80 { b.1 } else { a.1 })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Against a model holding each flow's idle deadline: at every tick (the first
            /// packet of each second, as the engine calls it) exactly the flows whose deadline
            /// has passed end, and an eviction takes a flow whose deadline second (or the
            /// current second, for one due) is the earliest.
            #[test]
            fn wheel_matches_deadlines(
                ops in proptest::collection::vec(
                    (0u16..24, 0u8..6, prop_oneof![8 => 0u64..3_000, 1 => 0u64..3_000_000]),
                    1..400,
                )
            ) {
                let mut t = FlowTable::new(6, TIMEOUTS);
                let mut model: HashMap<(u8, u16), u64> = HashMap::new();
                let (mut ts, mut tick_s) = (SEC, 0);
                for (port, kind, gap_ms) in ops {
                    ts += gap_ms * 1_000_000;
                    if ts / SEC > tick_s {
                        tick_s = ts / SEC;
                        let mut ended = Vec::new();
                        t.expire(ts, &mut |f, r| ended.push((id(f), r)));
                        let mut want: Vec<_> = model.iter().filter(|(_, &d)| d < ts).map(|(&k, _)| k).collect();
                        let mut got: Vec<_> = ended.iter().map(|&(k, r)| {
                            assert_eq!(r, EndReason::IdleTimeout);
                            k
                        }).collect();
                        want.sort_unstable();
                        got.sort_unstable();
                        prop_assert_eq!(&got, &want);
                        model.retain(|_, &mut d| d >= ts);
                    }
                    let second = |d: u64| (d / SEC).max(tick_s);
                    let earliest = model.values().map(|&d| second(d)).min();
                    let p = packet(port, kind);
                    let (k, ab) = FlowKey::of_packet(&p);
                    let mut ended = Vec::new();
                    let u = t.update(&p, &k, ab, ts, &mut |f, r| ended.push((id(f), r, f.last_ns())));
                    prop_assert!(ended.len() <= 1);
                    for (victim, r, _) in ended {
                        prop_assert_eq!(r, EndReason::Evicted);
                        let d = model.remove(&victim).expect("evicted a flow the model holds");
                        prop_assert_eq!(Some(second(d)), earliest);
                    }
                    let f = t.get(u.slot).unwrap();
                    let deadline = f.last_ns() + TIMEOUTS.of(class_of(f.proto(), f.tcp_state()));
                    model.insert(id(f), deadline);
                    prop_assert_eq!(t.len(), model.len());
                }
            }
        }
    }
}
