//! Bounded flow table with per-protocol idle timeouts and least-recently-seen eviction.
//!
//! Flows live in a slab; a keyed (randomly seeded) hash index maps [`FlowKey`] to a slot.
//! Each flow sits on one of five intrusive lists (TCP opening, TCP established, TCP
//! closed, UDP, other), ordered by last-seen time. Because every flow on a list shares the
//! list's timeout, expiry pops from list tails in O(1) per expired flow, and eviction at
//! capacity removes the least recently seen flow of all lists. Nothing allocates per packet
//! once the slab has grown to capacity.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::key::FlowKey;
use super::stats::Welford;
use crate::decode::{ipproto, tcpflags, Packet};

const NIL: u32 = u32::MAX;
const CLASSES: usize = 5;
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
#[derive(Debug, Clone)]
pub struct Flow {
    /// Canonical key.
    pub key: FlowKey,
    /// Whether endpoint `a` of the key initiated the flow.
    pub initiator_is_a: bool,
    /// First packet time, ns since the Unix epoch.
    pub first_ns: u64,
    /// Last packet time, ns since the Unix epoch.
    pub last_ns: u64,
    /// Packets per direction.
    pub packets: [u64; 2],
    /// Wire bytes per direction (IP length of the flow's packets; inner for tunnels).
    pub bytes: [u64; 2],
    /// TCP flag counts.
    pub tcp_flags: TcpFlagCounts,
    /// TCP state.
    pub tcp_state: TcpState,
    fin_dirs: u8,
    /// Packet size (bytes, IP length) mean and deviation, over all packets
    /// ([`Flow::size_std_dev`]).
    pub size: Welford,
    /// Inter-arrival time (seconds) mean and deviation, over the gaps between packets
    /// ([`Flow::iat_std_dev`]).
    pub iat: Welford,
    /// Uplink TEID (allocated by the UPF), when tunnelled.
    pub ul_teid: Option<u32>,
    /// Downlink TEID (allocated by the gNB), when tunnelled.
    pub dl_teid: Option<u32>,
    /// Last QoS Flow Identifier seen in a PDU Session Container.
    pub qfi: Option<u8>,
    /// Outer tunnel endpoint the initiator's first packet came from: 1 = `key.tun_a`,
    /// 2 = `key.tun_b`, 0 = not tunnelled or both endpoints equal.
    init_outer: u8,
    /// Which key endpoint is the UE (1 = `a`, 2 = `b`, 0 = unknown) and which outer endpoint
    /// the gNB (1 = `tun_a`, 2 = `tun_b`), from the direction of uplink packets.
    ue_side: u8,
    gnb_side: u8,
    /// [`SessionState`] of the tunnel at the last G-PDU, as a `u8`.
    session_state: u8,
    /// Id of the tunnel's session (valid when `session_state` is `Known` or `UeMismatch`):
    /// the CP SEID of a PFCP session, the requester's control TEID of a GTPv2-C one.
    cp_seid: u64,
    /// 1 when that session was learnt from GTPv2-C, 0 from PFCP.
    session_gtpc: bool,
    prev: u32,
    next: u32,
    class: u8,
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
    /// The session of the flow's tunnel at its last G-PDU: the lookup state and, when the
    /// TEID has a session (`Known`, `UeMismatch`), the session's id and origin: the CP SEID
    /// (TS 29.244 §8.2.37, allocated by the SMF) of a PFCP session, or the requester's S11/S5
    /// control TEID (TS 29.274 §8.22, allocated by the MME or SGW) of a GTPv2-C one.
    pub fn session(&self) -> crate::session::TunnelSession {
        use crate::session::SessionOrigin;
        let origin = if self.session_gtpc {
            SessionOrigin::Gtpv2c
        } else {
            SessionOrigin::Pfcp
        };
        let (state, has_id) = match self.session_state {
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
        self.session_state = s.state as u8;
        if let Some((id, origin)) = s.id {
            self.cp_seid = id;
            self.session_gtpc = origin == crate::session::SessionOrigin::Gtpv2c;
        }
    }

    /// Standard deviation of the packet sizes (bytes).
    pub fn size_std_dev(&self) -> f64 {
        self.size.std_dev(self.packets[0] + self.packets[1])
    }

    /// Standard deviation of the inter-arrival times (seconds).
    pub fn iat_std_dev(&self) -> f64 {
        self.iat.std_dev((self.packets[0] + self.packets[1]).saturating_sub(1))
    }

    /// Initiator address and port (ICMP: port equivalent).
    pub fn initiator(&self) -> (std::net::IpAddr, u16) {
        (self.key.ip(self.initiator_is_a), self.key.port(self.initiator_is_a))
    }

    /// Responder address and port (ICMP: port equivalent).
    pub fn responder(&self) -> (std::net::IpAddr, u16) {
        (self.key.ip(!self.initiator_is_a), self.key.port(!self.initiator_is_a))
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
        let ue = match self.ue_side {
            1 => Some(self.key.ip(true)),
            2 => Some(self.key.ip(false)),
            _ => None,
        };
        let (gnb, upf) = match (self.key.tunnel_endpoints(), self.gnb_side) {
            (Some((a, b)), 1) => (Some(a), Some(b)),
            (Some((a, b)), 2) => (Some(b), Some(a)),
            _ => (None, None),
        };
        (gnb, upf, ue)
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

/// The bounded flow table.
pub struct FlowTable {
    index: HashTable<u32>,
    slab: Vec<Flow>,
    free: Vec<u32>,
    heads: [u32; CLASSES],
    tails: [u32; CLASSES],
    hasher: foldhash::fast::RandomState,
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

impl FlowTable {
    /// A table holding at most `capacity` flows (at least 1).
    pub fn new(capacity: usize, timeouts: Timeouts) -> FlowTable {
        let capacity = capacity.max(1);
        FlowTable {
            index: HashTable::with_capacity(capacity.min(1 << 16)),
            slab: Vec::with_capacity(capacity.min(1 << 16)),
            free: Vec::new(),
            heads: [NIL; CLASSES],
            tails: [NIL; CLASSES],
            hasher: foldhash::fast::RandomState::default(),
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
        self.index.is_empty()
    }

    /// Maximum number of flows.
    pub fn capacity(&self) -> usize {
        self.capacity
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
        let h = self.hasher.hash_one(key);
        let slab = &self.slab;
        self.index
            .find(h, |&i| slab[i as usize].key == *key)
            .map(|&i| &slab[i as usize])
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, class) = {
            let f = &self.slab[i as usize];
            (f.prev, f.next, usize::from(f.class))
        };
        if prev == NIL {
            self.heads[class] = next;
        } else {
            self.slab[prev as usize].next = next;
        }
        if next == NIL {
            self.tails[class] = prev;
        } else {
            self.slab[next as usize].prev = prev;
        }
    }

    fn push_front(&mut self, i: u32, class: u8) {
        let c = usize::from(class);
        let head = self.heads[c];
        {
            let f = &mut self.slab[i as usize];
            f.prev = NIL;
            f.next = head;
            f.class = class;
        }
        if head == NIL {
            self.tails[c] = i;
        } else {
            self.slab[head as usize].prev = i;
        }
        self.heads[c] = i;
    }

    fn remove_slot(&mut self, i: u32, reason: EndReason, on_end: &mut impl FnMut(&Flow, EndReason)) {
        self.unlink(i);
        let key = self.slab[i as usize].key;
        let h = self.hasher.hash_one(key);
        let slab = &self.slab;
        if let Ok(e) = self.index.find_entry(h, |&j| slab[j as usize].key == key) {
            e.remove();
        }
        on_end(&self.slab[i as usize], reason);
        self.free.push(i);
    }

    /// Remove every flow idle for longer than its timeout at capture time `now_ns`, calling
    /// `on_end` for each.
    pub fn expire(&mut self, now_ns: u64, on_end: &mut impl FnMut(&Flow, EndReason)) {
        for class in 0..CLASSES as u8 {
            let timeout = self.timeouts.of(class);
            loop {
                let t = self.tails[usize::from(class)];
                if t == NIL || now_ns.saturating_sub(self.slab[t as usize].last_ns) <= timeout {
                    break;
                }
                self.remove_slot(t, EndReason::IdleTimeout, on_end);
                self.expired += 1;
            }
        }
    }

    /// Remove every flow (end of input), calling `on_end` for each.
    pub fn drain(&mut self, on_end: &mut impl FnMut(&Flow, EndReason)) {
        for class in 0..CLASSES {
            while self.tails[class] != NIL {
                self.remove_slot(self.tails[class], EndReason::Shutdown, on_end);
            }
        }
    }

    fn evict_oldest(&mut self, on_end: &mut impl FnMut(&Flow, EndReason)) {
        let victim = self
            .tails
            .iter()
            .filter(|&&t| t != NIL)
            .min_by_key(|&&t| self.slab[t as usize].last_ns)
            .copied();
        if let Some(v) = victim {
            self.remove_slot(v, EndReason::Evicted, on_end);
            self.evicted += 1;
        }
    }

    /// Account packet `p` (key `key`, travelling a → b when `a_to_b`) at capture time
    /// `ts_ns` to its flow, creating the flow if needed (evicting the least recently seen
    /// flow when the table is full; `on_end` sees the evicted flow).
    pub fn update(
        &mut self,
        p: &Packet,
        key: &FlowKey,
        a_to_b: bool,
        ts_ns: u64,
        on_end: &mut impl FnMut(&Flow, EndReason),
    ) -> Update {
        let h = self.hasher.hash_one(key);
        let found = {
            let slab = &self.slab;
            self.index.find(h, |&i| slab[i as usize].key == *key).copied()
        };
        let (slot, new_flow) = match found {
            Some(i) => (i, false),
            None => {
                if self.index.len() >= self.capacity {
                    self.evict_oldest(on_end);
                }
                // A SYN-ACK opening a flow means its SYN was missed: the sender is the responder.
                let syn_ack = p.tcp_flags & (tcpflags::SYN | tcpflags::ACK) == (tcpflags::SYN | tcpflags::ACK);
                let initiator_is_a = if p.proto == ipproto::TCP && syn_ack {
                    !a_to_b
                } else {
                    a_to_b
                };
                let flow = Flow {
                    key: *key,
                    initiator_is_a,
                    first_ns: ts_ns,
                    last_ns: ts_ns,
                    packets: [0; 2],
                    bytes: [0; 2],
                    tcp_flags: TcpFlagCounts::default(),
                    tcp_state: TcpState::None,
                    fin_dirs: 0,
                    size: Welford::default(),
                    iat: Welford::default(),
                    ul_teid: None,
                    dl_teid: None,
                    qfi: None,
                    init_outer: 0,
                    ue_side: 0,
                    gnb_side: 0,
                    session_state: SessionState::None as u8,
                    cp_seid: 0,
                    session_gtpc: false,
                    prev: NIL,
                    next: NIL,
                    class: C_OTHER,
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slab[i as usize] = flow;
                        i
                    }
                    None => {
                        self.slab.push(flow);
                        (self.slab.len() - 1) as u32
                    }
                };
                let (slab, hasher) = (&self.slab, &self.hasher);
                self.index
                    .insert_unique(h, i, |&j| hasher.hash_one(slab[j as usize].key));
                self.created += 1;
                // Link into a list now so unlink below is uniform.
                self.push_front(i, C_OTHER);
                (i, true)
            }
        };
        let f = &mut self.slab[slot as usize];
        let from_initiator = a_to_b == f.initiator_is_a;
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
            f.init_outer = match outer_side {
                0 => 0,
                s if from_initiator => s,
                s => 3 - s,
            };
        }
        let forged_reply = !from_initiator && outer_side != 0 && outer_side == f.init_outer;
        let first_reply = !from_initiator && !forged_reply && f.packets[1] == 0;
        let seen = f.packets[0] + f.packets[1];
        if !new_flow {
            // The gap before this packet is the `seen`-th inter-arrival sample.
            let gap = ts_ns.saturating_sub(f.last_ns);
            f.iat.push(gap as f64 * 1e-9, seen);
        }
        f.last_ns = f.last_ns.max(ts_ns);
        f.packets[dir] += 1;
        f.bytes[dir] += u64::from(p.ip_len);
        f.size.push(f64::from(p.ip_len), seen + 1);
        if let Some(t) = &p.tunnel {
            if let Some(psc) = t.header.pdu_session {
                f.qfi = Some(psc.qfi);
            }
            // Uplink = towards the UPF. The PDU Session Container or the session table says
            // which way a packet goes (`Tunnel::uplink`); without either (4G S1-U with no
            // GTPv2-C seen) the initiator's direction is taken as uplink, since UEs open most
            // flows.
            let uplink = t.uplink.unwrap_or(from_initiator);
            if uplink {
                f.ul_teid = Some(t.header.teid);
                // Uplink: the inner source is the UE, the outer source the gNB.
                f.ue_side = if a_to_b { 1 } else { 2 };
                f.gnb_side = outer_side;
            } else {
                f.dl_teid = Some(t.header.teid);
            }
        }
        let mut established = false;
        if p.proto == ipproto::TCP {
            let fl = p.tcp_flags;
            let c = &mut f.tcp_flags;
            let syn = fl & tcpflags::SYN != 0;
            let ack = fl & tcpflags::ACK != 0;
            if syn && !ack {
                c.syn += 1;
            }
            if syn && ack {
                c.syn_ack += 1;
            }
            if fl & tcpflags::FIN != 0 {
                c.fin += 1;
                f.fin_dirs |= 1 << dir;
            }
            if fl & tcpflags::RST != 0 {
                c.rst += 1;
            }
            if fl & tcpflags::PSH != 0 {
                c.psh += 1;
            }
            if ack {
                c.ack += 1;
            }
            if fl & tcpflags::URG != 0 {
                c.urg += 1;
            }
            let before = f.tcp_state;
            f.tcp_state = match before {
                _ if forged_reply => before,
                _ if fl & tcpflags::RST != 0 || f.fin_dirs == 3 => TcpState::Closed,
                TcpState::None if syn && !ack => TcpState::SynSent,
                TcpState::None if syn && ack => TcpState::SynReceived,
                TcpState::None => TcpState::Established,
                TcpState::SynSent if syn && ack && !from_initiator => TcpState::SynReceived,
                TcpState::SynReceived if ack && !syn && from_initiator => TcpState::Established,
                s => s,
            };
            established = before == TcpState::SynReceived && f.tcp_state == TcpState::Established;
        }
        let class = class_of(p.proto, f.tcp_state);
        self.unlink(slot);
        self.push_front(slot, class);
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

    const SEC: u64 = 1_000_000_000;

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
        assert_eq!(f.packets, [2, 1]);
        assert_eq!(f.tcp_state, TcpState::Established);
        assert_eq!(f.initiator().0, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(f.iat.mean, 1.0);
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
}
