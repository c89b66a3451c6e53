//! 5G session state learned passively from PFCP (N4, 3GPP TS 29.244): which GTP-U tunnel
//! endpoint (F-TEID) and which UE address belong to which PFCP session.
//!
//! [`SessionTable::on_pfcp`] takes every PFCP datagram (UDP port 8805, either direction) in
//! capture order. Sessions are created by a Session Establishment Request (§7.5.2), completed
//! by its Response (§7.5.3: UP F-SEID, F-TEIDs the UP function chose), changed by Session
//! Modification (§7.5.4) and removed by Session Deletion (§7.5.7). Rules are applied when the
//! *request* is seen, because the UP function starts forwarding before its response reaches
//! the wire; a rejected Establishment Response removes the session again.
//!
//! The GTP-U path asks [`SessionTable::lookup_teid`] with the outer destination address and
//! TEID of a G-PDU: a TEID is only unique at the endpoint that allocated it (the uplink TEID
//! at the UPF's N3 address, the downlink TEID at the gNB's), so the index is keyed by both.
//! That lookup is one hash probe and never allocates.
//!
//! Everything is bounded: sessions (LRU eviction by last activity, sessions never answered
//! first), the request/response matcher, the retransmission filter, the peers, the rules and
//! tunnel keys kept per session, and the owners remembered per tunnel key.
//!
//! Responses change sessions only when they answer a request seen before (same sequence
//! number, from the request's destination to its source, the matching type): anyone can put
//! a response on the wire. The trade-off: when the capture misses a request, its response is
//! only counted ([`SessionStats::unmatched_responses`]) and the session stays as it was until
//! a later procedure, eviction, a peer restart or a daemon restart. Retransmissions are
//! recognised by identical octets, not only by sequence number and type.
//!
//! 4G and NSA cores feed the same table through [`SessionTable::on_gtpv2c`] (GTPv2-C, TS
//! 29.274, on S11 and S5/S8): one [`Session`] per PDN connection, with
//! [`SessionOrigin::Gtpv2c`], whose S1-U and S5/S8-U tunnel endpoints are indexed like the
//! PFCP ones. See the [`gtpc`] module for the procedures read.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::decode::pfcp::{self, ie, Interface, MessageType, MESSAGE_LABELS};
use crate::decode::{gtpv2c, DecodeError};
use crate::flow::index::SlabMap;

pub mod gtpc;

use gtpc::{Bearer, GtpcPending};

type Map<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;

/// Most PDRs and most FARs remembered per session (further ones are ignored).
pub const MAX_RULES_PER_SESSION: usize = 64;
/// Most PFCP messages read from one datagram (FO flag chain, TS 29.244 §7.2.2.1).
pub const MAX_MESSAGES_PER_DATAGRAM: usize = 16;
/// Most PFCP peers whose Recovery Time Stamp is tracked.
pub const MAX_PEERS: usize = 4096;
/// Most GTP-U tunnel keys (address, TEID) indexed per session. A GTPv2-C PDN connection
/// can declare 15 bearers × 4 F-TEIDs × IPv4+IPv6 = 120; the default bearer's endpoints are
/// indexed first, then the other bearers' in EBI order of arrival; the rest are counted in
/// [`SessionStats::teid_keys_dropped`].
pub const MAX_TEID_KEYS_PER_SESSION: usize = 16;
/// Sessions remembered per tunnel key: the current owner (the newest declaration) and up
/// to two earlier ones, which get the key back when the newer owner goes.
const TEID_OWNERS: usize = 3;

/// Sizes and times of a [`SessionTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Most sessions kept. To make room, the least recently active session not yet
    /// established (a request nobody answered) is evicted first, then the least recently
    /// active established one.
    ///
    /// Memory (release build, measured as replay RSS over a near-empty baseline): about
    /// 1.5 KB per established PFCP session (100 000 sessions with one UE address and two
    /// tunnel keys each: 154 MB RSS), about 1.45 KB per unanswered Establishment Request from
    /// a random source, and at most about 4.8 KB per GTPv2-C PDN connection with 15 bearers
    /// × 4 F-TEIDs (IPv4+IPv6), whose tunnel keys are capped at
    /// [`MAX_TEID_KEYS_PER_SESSION`]. The default 100 000 thus needs roughly 150-500 MB.
    pub capacity: usize,
    /// Nanoseconds after the first packet the table saw during which a TEID without PFCP
    /// state is [`TeidState::Unknown`] (the session may predate the capture) rather than
    /// [`TeidState::Unmapped`].
    pub learning_period_ns: u64,
    /// Most recent messages remembered for retransmission detection.
    pub dedup_capacity: usize,
    /// A message repeating (peer pair, sequence number, type) within this many nanoseconds
    /// is a retransmission (TS 29.244 §6.4: same sequence number on retransmission).
    pub dedup_window_ns: u64,
    /// Most requests awaiting their response.
    pub pending_capacity: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            capacity: 100_000,
            learning_period_ns: 60_000_000_000,
            dedup_capacity: 4096,
            dedup_window_ns: 30_000_000_000,
            pending_capacity: 4096,
        }
    }
}

/// What the session table said about a G-PDU's tunnel (see [`crate::flow::table::SessionState`]),
/// as flow records and alert records report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelSession {
    /// Lookup result.
    pub state: crate::flow::table::SessionState,
    /// The session's id and origin when the TEID has a session (`Known`, `UeMismatch`): the
    /// CP SEID of a PFCP session, the requester's control TEID of a GTPv2-C one.
    pub id: Option<(u64, SessionOrigin)>,
}

impl TunnelSession {
    /// The fields records write for this lookup.
    pub fn record_fields(&self) -> SessionFields {
        SessionFields {
            seid: self.id.and_then(|(id, o)| (o == SessionOrigin::Pfcp).then_some(id)),
            control_teid: self
                .id
                .and_then(|(id, o)| (o == SessionOrigin::Gtpv2c).then_some(id as u32)),
            session_state: self.state.as_str(),
        }
    }
}

/// The session of a tunnel as flow and alert records write it (inside their `gtp` object).
/// Field names are a stable interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SessionFields {
    /// SEID the SMF (CP function) allocated for the tunnel's PFCP session (TS 29.244
    /// §8.2.37; Wireshark shows it in hex as `pfcp.seid`); null unless the session is a PFCP
    /// one and `session_state` is `known` or `ue_mismatch`.
    pub seid: Option<u64>,
    /// For a session learnt from GTPv2-C (4G/NSA): the TEID the MME (or, when only S5 is
    /// seen, the SGW) allocated for the session's S11/S5 control tunnel (TS 29.274 §8.22;
    /// Wireshark: `gtpv2.teid`); null otherwise.
    pub control_teid: Option<u32>,
    /// What the session table said about the TEID: `known` (a session the sensor saw set
    /// up), `unknown` (none yet, inside the learning period), `unmapped` (none after it),
    /// `ue_mismatch` (a session whose UE address is not the packet's), `none` (no lookup).
    pub session_state: &'static str,
}

impl SessionFields {
    /// No lookup was made.
    pub const NONE: SessionFields = SessionFields {
        seid: None,
        control_teid: None,
        session_state: "none",
    };
}

/// A GTP-U tunnel endpoint: the TEID and the address(es) of the node that allocated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TunnelEndpoint {
    /// Tunnel Endpoint Identifier, allocated by the receiving node.
    pub teid: u32,
    /// The receiving node's IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// The receiving node's IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
}

impl TunnelEndpoint {
    /// True when `(addr, teid)` names this endpoint.
    pub fn matches(&self, addr: IpAddr, teid: u32) -> bool {
        self.teid == teid
            && match addr {
                IpAddr::V4(a) => self.ipv4 == Some(a),
                IpAddr::V6(a) => self.ipv6 == Some(a),
            }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pdr {
    id: u16,
    source: Option<Interface>,
    fteid: Option<TunnelEndpoint>,
}

#[derive(Debug, Clone, Copy)]
struct Far {
    id: u32,
    destination: Option<Interface>,
    ohc: Option<TunnelEndpoint>,
}

/// Which control protocol a [`Session`] was learned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionOrigin {
    /// A PFCP session (N4/Sxa/Sxb, TS 29.244).
    Pfcp,
    /// An EPS PDN connection seen in GTPv2-C (S11 and/or S5/S8, TS 29.274).
    Gtpv2c,
}

/// Direction of a G-PDU on a tunnel of a [`Session`] (see [`Session::direction_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Towards the core network: the UE address is the inner source.
    Uplink,
    /// Towards the UE: the UE address is the inner destination.
    Downlink,
}

/// One PFCP session (TS 29.244 §5.2) or one GTPv2-C PDN connection (TS 29.274), as far as it
/// has been seen.
///
/// For [`SessionOrigin::Gtpv2c`] the fields mean: `cp_seid` is the TEID of the *requester's*
/// control-plane F-TEID (the Sender F-TEID for Control Plane of the Create Session Request,
/// §7.2.1: the MME's S11 TEID, or the SGW's S5/S8 TEID when only S5/S8 is seen), `cp_ip` its
/// address; `up_seid` and `up_ip` the responder's Sender F-TEID (SGW on S11, PGW on S5/S8,
/// §7.2.2); `uplink`/`downlink` the S1-U endpoints of the default bearer (SGW and eNodeB
/// F-TEIDs, interface types 1 and 0) and `core_uplink`/`core_downlink` its S5/S8-U endpoints
/// (PGW and SGW, types 5 and 4); `ue_ipv4`/`ue_ipv6` come from the PDN Address Allocation
/// (§8.14). Node IDs, PDR/FAR state and QFIs stay empty.
#[derive(Debug, Clone)]
pub struct Session {
    /// Protocol the session was learned from.
    pub origin: SessionOrigin,
    /// PFCP: SEID the CP function allocated (F-SEID of the Establishment Request, §8.2.37).
    /// GTPv2-C: the requester's control-plane TEID (see the type documentation).
    pub cp_seid: u64,
    /// PFCP: SEID the UP function allocated (F-SEID of the Establishment Response), once
    /// seen. GTPv2-C: the responder's control-plane TEID, once seen.
    pub up_seid: Option<u64>,
    /// CP function address: from its F-SEID, else the request's source address (GTPv2-C:
    /// the requester's control F-TEID address).
    pub cp_ip: IpAddr,
    /// UP function address: from its F-SEID, else the request's destination address
    /// (GTPv2-C: the responder's control F-TEID address).
    pub up_ip: IpAddr,
    /// CP Node ID (§8.2.38) when it is an IP address.
    pub cp_node_id: Option<IpAddr>,
    /// UP Node ID when it is an IP address.
    pub up_node_id: Option<IpAddr>,
    /// Uplink F-TEID: that of a PDR whose Source Interface is access (given by the CP, or
    /// chosen by the UP with CH=1 and returned in Created PDR). G-PDUs to the UPF carry it.
    pub uplink: Option<TunnelEndpoint>,
    /// Downlink tunnel: Outer Header Creation of a FAR whose Destination Interface is
    /// access (the gNB's TEID and address). G-PDUs to the gNB carry it.
    pub downlink: Option<TunnelEndpoint>,
    /// GTPv2-C only: S5/S8-U PGW F-TEID of the default bearer (interface type 5), where the
    /// SGW sends uplink G-PDUs. Always `None` for PFCP sessions.
    pub core_uplink: Option<TunnelEndpoint>,
    /// GTPv2-C only: S5/S8-U SGW F-TEID of the default bearer (interface type 4), where the
    /// PGW sends downlink G-PDUs. Always `None` for PFCP sessions.
    pub core_downlink: Option<TunnelEndpoint>,
    /// GTPv2-C only: EPS Bearer ID of the default bearer (§8.8), the first Bearer Context of
    /// the Create Session Request.
    pub ebi: Option<u8>,
    /// UE IPv4 address (UE IP Address IE of a PDI, §8.2.62).
    pub ue_ipv4: Option<Ipv4Addr>,
    /// UE IPv6 address or prefix.
    pub ue_ipv6: Option<Ipv6Addr>,
    /// Prefix length of `ue_ipv6` ([`pfcp::UeIpAddress::ipv6_prefix_len`], /64 by default).
    pub ue_ipv6_prefix_len: u8,
    /// QFIs seen in PDIs and QERs: bit `q` set for QFI `q` (0..=63).
    pub qfis: u64,
    /// Capture time of the first message of the session, ns since the Unix epoch.
    pub first_seen_ns: u64,
    /// Capture time of the latest message of the session, ns since the Unix epoch.
    pub last_seen_ns: u64,
    /// The establishment response accepted the session.
    pub established: bool,
    cp_peer: IpAddr,
    up_peer: IpAddr,
    pdrs: Vec<Pdr>,
    fars: Vec<Far>,
    lru_tick: u64,
    /// The (address, TEID) keys this session declares (sorted), at most
    /// [`MAX_TEID_KEYS_PER_SESSION`].
    teid_keys: Vec<(IpAddr, u32)>,
    /// Keys beyond [`MAX_TEID_KEYS_PER_SESSION`] at the last re-index.
    teid_dropped: u8,
    /// The exact `by_up` key (UP packet address, UP SEID) this session indexed, if any.
    up_key: Option<(IpAddr, u64)>,
    ue_keys: [Option<IpAddr>; 3],
    /// GTPv2-C: the bearers of the PDN connection (at most [`gtpc::MAX_BEARERS`]).
    bearers: Vec<Bearer>,
    /// GTPv2-C: control-plane F-TEIDs (address, TEID, interface type) of the connection.
    ctl_keys: Vec<(IpAddr, u32, u8)>,
    /// GTPv2-C: packet addresses of the control nodes (MME, SGW-C, PGW-C) that exchanged it.
    nodes: Vec<IpAddr>,
}

impl Session {
    /// A session with nothing learned yet; `cp`/`up` are the packet addresses of the CP side
    /// (requester) and the UP side (responder).
    fn blank(origin: SessionOrigin, cp_seid: u64, cp: IpAddr, up: IpAddr, ts: u64) -> Session {
        Session {
            origin,
            cp_seid,
            up_seid: None,
            cp_ip: cp,
            up_ip: up,
            cp_node_id: None,
            up_node_id: None,
            uplink: None,
            downlink: None,
            core_uplink: None,
            core_downlink: None,
            ebi: None,
            ue_ipv4: None,
            ue_ipv6: None,
            ue_ipv6_prefix_len: 64,
            qfis: 0,
            first_seen_ns: ts,
            last_seen_ns: ts,
            established: false,
            cp_peer: cp,
            up_peer: up,
            pdrs: Vec::new(),
            fars: Vec::new(),
            lru_tick: 0,
            teid_keys: Vec::new(),
            teid_dropped: 0,
            up_key: None,
            ue_keys: [None; 3],
            bearers: Vec::new(),
            ctl_keys: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// The QFIs of [`Session::qfis`], ascending.
    pub fn qfi_list(&self) -> impl Iterator<Item = u8> + '_ {
        (0..64u8).filter(|q| self.qfis & (1u64 << q) != 0)
    }

    /// The UE address is `ip` (IPv4 exactly; IPv6 within the UE prefix).
    pub fn has_ue_ip(&self, ip: IpAddr) -> bool {
        ue_ip_matches(self.ue_ipv4, self.ue_ipv6, self.ue_ipv6_prefix_len, ip)
    }

    /// Whether `(endpoint, teid)` is an uplink or a downlink tunnel endpoint of this session
    /// (any bearer for GTPv2-C sessions), `None` when it is neither.
    pub fn direction_of(&self, endpoint: IpAddr, teid: u32) -> Option<Direction> {
        let m = |e: Option<TunnelEndpoint>| e.is_some_and(|e| e.matches(endpoint, teid));
        if m(self.uplink) || m(self.core_uplink) {
            return Some(Direction::Uplink);
        }
        if m(self.downlink) || m(self.core_downlink) {
            return Some(Direction::Downlink);
        }
        self.bearers.iter().find_map(|b| {
            if m(b.s1u_sgw) || m(b.s5_pgw) {
                Some(Direction::Uplink)
            } else if m(b.s1u_enb) || m(b.s5_sgw) {
                Some(Direction::Downlink)
            } else {
                None
            }
        })
    }

    /// EPS Bearer IDs of the bearers of a GTPv2-C session, in the order learned.
    pub fn bearer_ebis(&self) -> impl Iterator<Item = u8> + '_ {
        self.bearers.iter().map(|b| b.ebi)
    }

    /// The session knows a UE address.
    fn knows_ue(&self) -> bool {
        self.ue_ipv4.is_some() || self.ue_ipv6.is_some()
    }

    /// The tunnel keys to index (sorted, distinct, at most [`MAX_TEID_KEYS_PER_SESSION`],
    /// default bearer first) and how many were left out.
    fn wanted_teid_keys(&self) -> (Vec<(IpAddr, u32)>, usize) {
        let mut all: Vec<((IpAddr, u32), usize)> = Vec::new();
        let mut add = |e: Option<TunnelEndpoint>| {
            let Some(e) = e else { return };
            for a in [e.ipv4.map(IpAddr::V4), e.ipv6.map(IpAddr::V6)].into_iter().flatten() {
                let rank = all.len();
                all.push(((a, e.teid), rank));
            }
        };
        add(self.uplink);
        add(self.downlink);
        add(self.core_uplink);
        add(self.core_downlink);
        for b in &self.bearers {
            add(b.s1u_sgw);
            add(b.s1u_enb);
            add(b.s5_sgw);
            add(b.s5_pgw);
        }
        // Distinct keys, each at its first (highest priority) rank, then the first ones.
        all.sort_unstable();
        all.dedup_by_key(|e| e.0);
        all.sort_unstable_by_key(|e| e.1);
        let dropped = all.len().saturating_sub(MAX_TEID_KEYS_PER_SESSION);
        all.truncate(MAX_TEID_KEYS_PER_SESSION);
        let mut keys: Vec<(IpAddr, u32)> = all.into_iter().map(|e| e.0).collect();
        keys.sort_unstable();
        (keys, dropped)
    }

    /// Packet addresses of the peers whose restart ends this session: the CP and UP
    /// functions for PFCP, the control nodes for GTPv2-C.
    fn peers(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let pfcp = (self.origin == SessionOrigin::Pfcp).then_some([self.cp_peer, self.up_peer]);
        let gtpc = (self.origin == SessionOrigin::Gtpv2c).then_some(self.nodes.iter().copied());
        pfcp.into_iter().flatten().chain(gtpc.into_iter().flatten())
    }

    fn wanted_ue_keys(&self) -> [Option<IpAddr>; 3] {
        [
            self.ue_ipv4.map(IpAddr::V4),
            self.ue_ipv6.map(IpAddr::V6),
            self.ue_ipv6.map(|a| IpAddr::V6(mask6(a, 64))),
        ]
    }
}

fn mask6(a: Ipv6Addr, len: u8) -> Ipv6Addr {
    let bits = u128::from(a);
    let len = u32::from(len.min(128));
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    Ipv6Addr::from(bits & mask)
}

/// What the GTP-U path needs of the session that owns a tunnel key `(endpoint, TEID)`,
/// copied into the key's index entry whenever the session or the key's owner changes, so
/// that a G-PDU's lookup ([`SessionTable::lookup_tunnel`]) reads that one entry and not the
/// session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelInfo {
    /// The owner's [`Session::cp_seid`].
    pub cp_seid: u64,
    /// The owner's [`Session::origin`].
    pub origin: SessionOrigin,
    /// [`Session::direction_of`] the key.
    pub direction: Option<Direction>,
    /// The owner's [`Session::ue_ipv4`].
    pub ue_ipv4: Option<Ipv4Addr>,
    /// The owner's [`Session::ue_ipv6`].
    pub ue_ipv6: Option<Ipv6Addr>,
    /// The owner's [`Session::ue_ipv6_prefix_len`].
    pub ue_ipv6_prefix_len: u8,
}

impl TunnelInfo {
    /// What session `s` says about its tunnel key `(endpoint, teid)`.
    pub fn of(s: &Session, (endpoint, teid): (IpAddr, u32)) -> TunnelInfo {
        TunnelInfo {
            cp_seid: s.cp_seid,
            origin: s.origin,
            direction: s.direction_of(endpoint, teid),
            ue_ipv4: s.ue_ipv4,
            ue_ipv6: s.ue_ipv6,
            ue_ipv6_prefix_len: s.ue_ipv6_prefix_len,
        }
    }

    /// [`Session::has_ue_ip`] of the owner.
    #[inline]
    pub fn has_ue_ip(&self, ip: IpAddr) -> bool {
        ue_ip_matches(self.ue_ipv4, self.ue_ipv6, self.ue_ipv6_prefix_len, ip)
    }
}

/// Whether `ip` is UE address `v4`, or inside UE prefix `v6`/`len`.
#[inline]
fn ue_ip_matches(v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>, len: u8, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => v4 == Some(a),
        IpAddr::V6(a) => v6.is_some_and(|p| mask6(p, len) == mask6(a, len)),
    }
}

/// [`TeidState`] with the owner's [`TunnelInfo`] instead of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelState {
    /// A live session set this tunnel up.
    Known(TunnelInfo),
    /// See [`TeidState::Unknown`].
    Unknown,
    /// See [`TeidState::Unmapped`].
    Unmapped,
}

/// What the PFCP state says about a GTP-U tunnel `(endpoint, TEID)`.
#[derive(Debug, Clone, Copy)]
pub enum TeidState<'a> {
    /// A live session set this tunnel up.
    Known(&'a Session),
    /// No session, but the table is still inside its learning period: the tunnel may have
    /// been set up before the capture started. Not suspicious.
    Unknown,
    /// No session, after the learning period: traffic on a tunnel no PFCP set up.
    Unmapped,
}

/// Counters of a [`SessionTable`] (cumulative except `active`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Sessions in the table now.
    pub active: u64,
    /// Sessions an Establishment Response accepted.
    pub established: u64,
    /// Sessions removed by Session Deletion.
    pub deleted: u64,
    /// Sessions evicted for capacity.
    pub evicted: u64,
    /// Sessions removed because a peer's Recovery Time Stamp (PFCP) or Recovery restart
    /// counter (GTPv2-C) changed (it restarted).
    pub purged_by_restart: u64,
    /// Peer restarts seen (Recovery Time Stamp or restart counter changes).
    pub peer_restarts: u64,
    /// Sessions removed by a rejecting Establishment Response.
    pub rejected: u64,
    /// Tunnel keys (address, TEID) taken over by a session from a different live session
    /// of the same origin ("newest wins"; the previous owner gets the key back when the new
    /// one goes). Normal when a node reuses a TEID whose old session was never seen to end;
    /// many of them suggest forged requests. A PFCP session and a GTPv2-C PDN connection
    /// sharing an F-TEID (an SGW-U's Sxa session and its S11 bearer) are not counted.
    pub teid_conflicts: u64,
    /// Tunnel keys not indexed because a session declared more than
    /// [`MAX_TEID_KEYS_PER_SESSION`] (counted when a session's overflow grows).
    pub teid_keys_dropped: u64,
    /// Sessions replaced by a new Establishment Request with the same CP F-SEID.
    pub replaced: u64,
    /// Retransmitted messages (same peer pair, sequence number and type), not re-applied.
    pub retransmissions: u64,
    /// Responses without a remembered request.
    pub unmatched_responses: u64,
    /// Session messages whose SEID names no known session.
    pub unknown_session: u64,
    /// PFCP messages by [`pfcp::label_index`] (every message on the wire, retransmissions too).
    pub messages: [u64; MESSAGE_LABELS.len()],
    /// GTPv2-C messages by [`gtpv2c::message_index`] (every message on the wire,
    /// retransmissions too).
    pub gtpc_messages: [u64; gtpv2c::MESSAGE_LABELS.len()],
    /// GTPv2-C sessions folded into another one of the same PDN connection (its S11 and
    /// S5/S8 halves, recognised by the PGW's S5/S8 control F-TEID).
    pub merged: u64,
    /// Messages (PFCP or GTPv2-C) that failed to decode (header or IE framing) or lack a
    /// mandatory IE.
    pub malformed: u64,
}

/// Entry counts of the indexes of a [`SessionTable`] (see [`SessionTable::index_sizes`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSizes {
    /// (CP address, CP SEID) keys.
    pub by_cp: usize,
    /// (UP address, UP SEID) keys.
    pub by_up: usize,
    /// GTP-U tunnel keys (address, TEID).
    pub teids: usize,
    /// UE address keys.
    pub ues: usize,
    /// GTPv2-C control tunnel keys.
    pub ctl: usize,
    /// (peer, session) entries for Recovery purges.
    pub by_peer: usize,
    /// Established sessions in LRU order.
    pub lru_established: usize,
    /// Sessions not yet established in LRU order.
    pub lru_pending: usize,
}

/// A map with a fixed capacity that forgets its oldest insertions first.
#[derive(Debug)]
struct Fifo<K, V> {
    map: Map<K, (V, u64)>,
    order: VecDeque<(K, u64)>,
    cap: usize,
    serial: u64,
}

impl<K: Hash + Eq + Copy, V> Fifo<K, V> {
    fn new(cap: usize) -> Self {
        Fifo {
            map: Map::default(),
            order: VecDeque::new(),
            cap: cap.max(1),
            serial: 0,
        }
    }

    fn insert(&mut self, k: K, v: V) {
        self.serial += 1;
        self.map.insert(k, (v, self.serial));
        self.order.push_back((k, self.serial));
        while self.map.len() > self.cap {
            let Some((old, s)) = self.order.pop_front() else { break };
            if self.map.get(&old).is_some_and(|e| e.1 == s) {
                self.map.remove(&old);
            }
        }
        if self.order.len() > 2 * self.cap + 16 {
            let map = &self.map;
            self.order.retain(|(k, s)| map.get(k).is_some_and(|e| e.1 == *s));
        }
    }

    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|e| &e.0)
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        self.map.remove(k).map(|e| e.0)
    }
}

/// Retransmission filter key: (source, destination, sequence number, message type, hash of
/// the message). A retransmission repeats the message octet for octet (TS 29.244 §6.4, TS
/// 29.274 §7.6), so a different message reusing the peers, sequence number and type (e.g.
/// forged with a victim's upcoming sequence numbers) is not one.
type DedupKey = (IpAddr, IpAddr, u32, u8, u64);

/// Sessions declaring one tunnel key, the current owner first, then earlier owners, newest
/// first; 0 marks an empty slot (session ids start at 1). Every id in it is a live session
/// whose `teid_keys` hold the key.
type Owners = [u64; TEID_OWNERS];

/// A tunnel key's index entry: its owners, and what the first one says about it.
#[derive(Debug, Clone, Copy)]
struct TeidEntry {
    owners: Owners,
    info: Option<TunnelInfo>,
}

fn slot(origin: SessionOrigin) -> usize {
    match origin {
        SessionOrigin::Pfcp => 0,
        SessionOrigin::Gtpv2c => 1,
    }
}

/// All `(peer, id)` entries of `peer` in a `by_peer` set.
fn peer_range(peer: IpAddr) -> std::ops::RangeInclusive<(IpAddr, u64)> {
    (peer, 0)..=(peer, u64::MAX)
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    msg_type: MessageType,
    session: Option<u64>,
}

/// The PFCP session table. See the module documentation.
#[derive(Debug)]
pub struct SessionTable {
    cfg: SessionConfig,
    sessions: Map<u64, Session>,
    next_id: u64,
    tick: u64,
    /// Established sessions by last activity (LRU order).
    lru: BTreeMap<u64, u64>,
    /// Sessions not yet established by last activity: evicted before any established one.
    lru_pending: BTreeMap<u64, u64>,
    by_cp: Map<(IpAddr, u64), u64>,
    by_up: Map<(IpAddr, u64), u64>,
    teids: SlabMap<(IpAddr, u32), TeidEntry>,
    ues: Map<IpAddr, u64>,
    pending: Fifo<(IpAddr, IpAddr, u32), Pending>,
    recent: Fifo<DedupKey, u64>,
    /// Keys the message-content hash of the retransmission filters.
    content_hash: foldhash::fast::RandomState,
    peers: Map<IpAddr, pfcp::RecoveryTimeStamp>,
    /// (peer address, session id) of PFCP sessions (`[0]`) and GTPv2-C ones (`[1]`), for
    /// Recovery purges in O(log n + that peer's sessions).
    by_peer: [BTreeSet<(IpAddr, u64)>; 2],
    /// GTPv2-C control tunnels (node address, TEID) → the sessions using them.
    ctl: Map<(IpAddr, u32), Vec<u64>>,
    gtpc_pending: Fifo<(IpAddr, IpAddr, u32), GtpcPending>,
    gtpc_recent: Fifo<DedupKey, u64>,
    gtpc_peers: Map<IpAddr, u8>,
    learning_start_ns: Option<u64>,
    stats: SessionStats,
}

/// The IEs of one message that the session procedures read at top level.
#[derive(Default)]
struct TopIes {
    f_seid: Option<pfcp::FSeid>,
    node_id: Option<IpAddr>,
    cause: Option<pfcp::Cause>,
    recovery: Option<pfcp::RecoveryTimeStamp>,
}

fn top_ies(body: &[u8]) -> TopIes {
    let mut t = TopIes::default();
    for ie in pfcp::ies(body).flatten() {
        if ie.enterprise_id.is_some() {
            continue;
        }
        match ie.ie_type {
            ie::F_SEID => t.f_seid = t.f_seid.or(pfcp::f_seid(ie.value)),
            ie::NODE_ID => {
                t.node_id = match pfcp::node_id(ie.value) {
                    Some(pfcp::NodeId::Ipv4(a)) => Some(IpAddr::V4(a)),
                    Some(pfcp::NodeId::Ipv6(a)) => Some(IpAddr::V6(a)),
                    _ => None,
                }
            }
            ie::CAUSE => t.cause = pfcp::cause(ie.value),
            ie::RECOVERY_TIME_STAMP => t.recovery = pfcp::recovery_time_stamp(ie.value),
            _ => {}
        }
    }
    t
}

/// Standard (non vendor-specific) children of a grouped IE value.
fn children(v: &[u8]) -> impl Iterator<Item = pfcp::Ie<'_>> {
    pfcp::ies(v).flatten().filter(|i| i.enterprise_id.is_none())
}

fn endpoint(f: &pfcp::FTeid) -> Option<TunnelEndpoint> {
    Some(TunnelEndpoint {
        teid: f.teid?,
        ipv4: f.ipv4,
        ipv6: f.ipv6,
    })
}

impl SessionTable {
    /// An empty table.
    pub fn new(cfg: SessionConfig) -> SessionTable {
        SessionTable {
            cfg,
            sessions: Map::default(),
            next_id: 1,
            tick: 0,
            lru: BTreeMap::new(),
            lru_pending: BTreeMap::new(),
            by_cp: Map::default(),
            by_up: Map::default(),
            teids: SlabMap::new(cfg.capacity.saturating_mul(2)),
            ues: Map::default(),
            pending: Fifo::new(cfg.pending_capacity),
            recent: Fifo::new(cfg.dedup_capacity),
            content_hash: foldhash::fast::RandomState::default(),
            peers: Map::default(),
            by_peer: [BTreeSet::new(), BTreeSet::new()],
            ctl: Map::default(),
            gtpc_pending: Fifo::new(cfg.pending_capacity),
            gtpc_recent: Fifo::new(cfg.dedup_capacity),
            gtpc_peers: Map::default(),
            learning_start_ns: None,
            stats: SessionStats::default(),
        }
    }

    /// Counters; `active` is the current number of sessions.
    pub fn stats(&self) -> SessionStats {
        let mut s = self.stats.clone();
        s.active = self.sessions.len() as u64;
        s
    }

    /// Entry counts of the internal indexes (for tests and diagnostics; not a stable API).
    #[doc(hidden)]
    pub fn index_sizes(&self) -> IndexSizes {
        IndexSizes {
            by_cp: self.by_cp.len(),
            by_up: self.by_up.len(),
            teids: self.teids.len(),
            ues: self.ues.len(),
            ctl: self.ctl.len(),
            by_peer: self.by_peer.iter().map(BTreeSet::len).sum(),
            lru_established: self.lru.len(),
            lru_pending: self.lru_pending.len(),
        }
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// No sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every session, in no particular order.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// The session the CP function at `cp` (packet address) knows as `cp_seid`.
    pub fn session_by_cp_seid(&self, cp: IpAddr, cp_seid: u64) -> Option<&Session> {
        self.by_cp.get(&(cp, cp_seid)).and_then(|id| self.sessions.get(id))
    }

    /// Latest Recovery Time Stamp (§8.2.65) of the PFCP node at `peer` (packet address).
    pub fn peer_recovery(&self, peer: IpAddr) -> Option<pfcp::RecoveryTimeStamp> {
        self.peers.get(&peer).copied()
    }

    /// Start the learning period at `ts_ns` (ns since the Unix epoch) if it has not started:
    /// the caller passes its first packet of any kind. [`SessionTable::on_pfcp`] does this too.
    pub fn note_packet(&mut self, ts_ns: u64) {
        if self.learning_start_ns.is_none() {
            self.learning_start_ns = Some(ts_ns);
        }
    }

    /// State of the GTP-U tunnel `(endpoint, teid)` at capture time `now_ns`: `endpoint` is
    /// the outer destination address of a G-PDU (the node that allocated `teid`). One hash
    /// probe, no allocation. Before any packet was noted the table is learning.
    #[inline]
    pub fn lookup_teid(&self, endpoint: IpAddr, teid: u32, now_ns: u64) -> TeidState<'_> {
        if let Some(s) = self
            .teids
            .get(&(endpoint, teid))
            .and_then(|e| self.sessions.get(&e.owners[0]))
        {
            return TeidState::Known(s);
        }
        match self.learning(now_ns) {
            true => TeidState::Unknown,
            false => TeidState::Unmapped,
        }
    }

    fn learning(&self, now_ns: u64) -> bool {
        !matches!(self.learning_start_ns, Some(t0) if now_ns.saturating_sub(t0) >= self.cfg.learning_period_ns)
    }

    /// [`SessionTable::lookup_teid`] for the per-packet path: the same answer with the
    /// owner's [`TunnelInfo`], read from the key's index entry alone. `hash` is
    /// [`SessionTable::tunnel_hash`] of the key.
    #[inline]
    pub fn lookup_tunnel(&self, hash: u64, endpoint: IpAddr, teid: u32, now_ns: u64) -> TunnelState {
        match self.teids.get_hashed(hash, &(endpoint, teid)).and_then(|e| e.info) {
            Some(info) => TunnelState::Known(info),
            None if self.learning(now_ns) => TunnelState::Unknown,
            None => TunnelState::Unmapped,
        }
    }

    /// The hash of tunnel key `(endpoint, teid)` for [`SessionTable::lookup_tunnel`] and the
    /// prefetch calls.
    #[inline]
    pub fn tunnel_hash(&self, endpoint: IpAddr, teid: u32) -> u64 {
        self.teids.hash(&(endpoint, teid))
    }

    /// Start loading the index bucket of a tunnel key hashed `hash`, a few packets before
    /// its lookup. Changes nothing.
    #[inline]
    pub fn prefetch_tunnel(&self, hash: u64) {
        self.teids.prefetch(hash);
    }

    /// Start loading the index entry of a tunnel key hashed `hash` (after
    /// [`SessionTable::prefetch_tunnel`]). Changes nothing.
    #[inline]
    pub fn prefetch_tunnel_entry(&self, hash: u64) {
        self.teids.prefetch_entry(hash);
    }

    /// Check that every tunnel key's [`TunnelInfo`] is what its owner says now (for tests:
    /// the copies must follow every change of a session and of a key's owner).
    #[doc(hidden)]
    pub fn check_tunnel_info(&self) -> Result<(), String> {
        for (k, e) in self.teids.iter() {
            let want = self.sessions.get(&e.owners[0]).map(|s| TunnelInfo::of(s, *k));
            if e.info != want {
                return Err(format!("tunnel {k:?}: index has {:?}, owner says {want:?}", e.info));
            }
        }
        Ok(())
    }

    /// The session of UE address `ip`: IPv4 exactly; IPv6 exactly, else by its /64 prefix
    /// (TS 23.501 §5.8.2.2.3; when several sessions share a /64, the latest one).
    pub fn lookup_ue(&self, ip: IpAddr) -> Option<&Session> {
        let id = match ip {
            IpAddr::V4(_) => self.ues.get(&ip),
            IpAddr::V6(a) => self.ues.get(&ip).or_else(|| self.ues.get(&IpAddr::V6(mask6(a, 64)))),
        }?;
        self.sessions.get(id)
    }

    /// Feed one PFCP datagram: `udp_payload` of a UDP datagram to or from port 8805, sent
    /// from `src` to `dst` at capture time `ts_ns` (ns since the Unix epoch). Messages
    /// chained with the FO flag are all read (up to [`MAX_MESSAGES_PER_DATAGRAM`]).
    ///
    /// Errors (layer `pfcp`, also counted in [`SessionStats::malformed`]): those of
    /// [`pfcp::parse`] and of [`pfcp::walk`] over the message's IEs; such a message changes
    /// no session.
    pub fn on_pfcp(&mut self, src: IpAddr, dst: IpAddr, udp_payload: &[u8], ts_ns: u64) -> Result<(), DecodeError> {
        self.note_packet(ts_ns);
        let mut d = udp_payload;
        for _ in 0..MAX_MESSAGES_PER_DATAGRAM {
            let (h, body) = pfcp::parse(d).inspect_err(|_| self.stats.malformed += 1)?;
            pfcp::walk(body, &mut |_, _| {}).inspect_err(|_| self.stats.malformed += 1)?;
            let whole = d.get(..h.message_len()).unwrap_or(d);
            self.on_message(src, dst, &h, body, whole, ts_ns);
            d = d.get(h.message_len()..).unwrap_or(&[]);
            if !h.follow_on || d.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Whether [`SessionTable::on_pfcp`] could change the table (beyond its malformed counter
    /// and the learning period's start) for this UDP payload: its first message has a valid
    /// header (TS 29.244 §7.2.2) and IEs that walk to their end (§8.1.1). The flow workers'
    /// session-table replicas get only such payloads (see [`crate::pipeline::workers`]), so
    /// junk on the PFCP port is not copied to every worker.
    pub fn pfcp_may_change(udp_payload: &[u8]) -> bool {
        pfcp::parse(udp_payload).is_ok_and(|(_, body)| pfcp::walk(body, &mut |_, _| {}).is_ok())
    }

    /// One PFCP message (`whole`: its octets, header included; `body`: its IEs).
    fn on_message(&mut self, src: IpAddr, dst: IpAddr, h: &pfcp::PfcpHeader, body: &[u8], whole: &[u8], ts: u64) {
        let t = h.message_type;
        self.stats.messages[pfcp::label_index(t)] += 1;
        let key = (src, dst, h.sequence, t.0, self.content_hash.hash_one(whole));
        if let Some(&prev) = self.recent.get(&key) {
            if ts.saturating_sub(prev) <= self.cfg.dedup_window_ns {
                self.stats.retransmissions += 1;
                return;
            }
        }
        // Only a message that was read enters the filter: one rejected as malformed must not
        // make a later message look like its repeat.
        if self.apply_message(src, dst, h, body, ts) {
            self.recent.insert(key, ts);
        }
    }

    /// Apply one PFCP message; false when it lacks a mandatory IE (counted as malformed).
    fn apply_message(&mut self, src: IpAddr, dst: IpAddr, h: &pfcp::PfcpHeader, body: &[u8], ts: u64) -> bool {
        let t = h.message_type;
        let top = top_ies(body);
        if let Some(r) = top.recovery {
            self.on_recovery(src, r);
        }
        let seid = h.seid.unwrap_or(0);
        // A response answers the request seen from its destination to its source with the
        // same sequence number and the type before it (TS 29.244 Table 7.3-1: every request
        // type is followed by its response type); any other response leaves that entry.
        let pending = if t.is_response() {
            let k = (dst, src, h.sequence);
            let p = self
                .pending
                .get(&k)
                .is_some_and(|p| u16::from(p.msg_type.0) + 1 == u16::from(t.0))
                .then(|| self.pending.remove(&k))
                .flatten();
            if p.is_none() {
                self.stats.unmatched_responses += 1;
            }
            p
        } else {
            None
        };
        match t {
            MessageType::SESSION_ESTABLISHMENT_REQUEST => {
                let Some(f) = top.f_seid else {
                    self.stats.malformed += 1;
                    return false;
                };
                let id = self.create(src, dst, f, top.node_id, ts);
                self.apply_rules(id, body);
                self.pending.insert(
                    (src, dst, h.sequence),
                    Pending {
                        msg_type: t,
                        session: Some(id),
                    },
                );
            }
            MessageType::SESSION_ESTABLISHMENT_RESPONSE => {
                // Only the answer to an Establishment Request seen from `dst` to `src` (the
                // matcher's key) completes or rejects a session; see `unmatched_response`.
                let Some(p) = pending.filter(|p| p.msg_type == MessageType::SESSION_ESTABLISHMENT_REQUEST) else {
                    self.unmatched_response(dst, seid);
                    return true;
                };
                let Some(id) = p.session.filter(|id| self.sessions.contains_key(id)) else {
                    self.stats.unknown_session += 1;
                    return true;
                };
                if top.cause.is_some_and(|c| !c.is_accepted()) {
                    self.remove(id);
                    self.stats.rejected += 1;
                    return true;
                }
                self.touch(id, ts);
                let mut up_key_change = None;
                if let Some(s) = self.sessions.get_mut(&id) {
                    if let Some(f) = top.f_seid {
                        s.up_seid = Some(f.seid);
                        if let Some(a) = f.ipv4.map(IpAddr::V4).or(f.ipv6.map(IpAddr::V6)) {
                            s.up_ip = a;
                        }
                        // One `by_up` key per session: a new UP F-SEID replaces the old key.
                        let k = (src, f.seid);
                        if src == s.up_peer && s.up_key != Some(k) {
                            up_key_change = Some((s.up_key.replace(k), k));
                        }
                    }
                    s.up_node_id = top.node_id.or(s.up_node_id);
                }
                if let Some((old, new)) = up_key_change {
                    if let Some(old) = old {
                        if self.by_up.get(&old) == Some(&id) {
                            self.by_up.remove(&old);
                        }
                    }
                    self.by_up.insert(new, id);
                }
                if self.mark_established(id) {
                    self.stats.established += 1;
                }
                self.apply_rules(id, body);
            }
            MessageType::SESSION_MODIFICATION_REQUEST | MessageType::SESSION_DELETION_REQUEST => {
                let id = self.by_up.get(&(dst, seid)).copied();
                if let Some(id) = id {
                    self.touch(id, ts);
                    if t == MessageType::SESSION_MODIFICATION_REQUEST {
                        self.apply_rules(id, body);
                    }
                } else {
                    self.stats.unknown_session += 1;
                }
                self.pending.insert(
                    (src, dst, h.sequence),
                    Pending {
                        msg_type: t,
                        session: id,
                    },
                );
            }
            MessageType::SESSION_MODIFICATION_RESPONSE | MessageType::SESSION_DELETION_RESPONSE => {
                let request = if t == MessageType::SESSION_DELETION_RESPONSE {
                    MessageType::SESSION_DELETION_REQUEST
                } else {
                    MessageType::SESSION_MODIFICATION_REQUEST
                };
                let Some(p) = pending.filter(|p| p.msg_type == request) else {
                    self.unmatched_response(dst, seid);
                    return true;
                };
                // The request named no known UP SEID (e.g. its Establishment Response was not
                // seen): the response's header SEID is the CP SEID.
                let id = p.session.or_else(|| self.by_cp.get(&(dst, seid)).copied());
                let Some(id) = id.filter(|id| self.sessions.contains_key(id)) else {
                    self.stats.unknown_session += 1;
                    return true;
                };
                let accepted = top.cause.is_none_or(|c| c.is_accepted());
                if t == MessageType::SESSION_DELETION_RESPONSE {
                    if accepted {
                        self.remove(id);
                        self.stats.deleted += 1;
                    }
                } else {
                    self.touch(id, ts);
                    self.apply_rules(id, body);
                }
            }
            _ if t.is_request() => {
                let id = if t.is_session() {
                    self.by_cp
                        .get(&(dst, seid))
                        .or_else(|| self.by_up.get(&(dst, seid)))
                        .copied()
                } else {
                    None
                };
                if let Some(id) = id {
                    self.touch(id, ts);
                }
                self.pending.insert(
                    (src, dst, h.sequence),
                    Pending {
                        msg_type: t,
                        session: id,
                    },
                );
            }
            _ => {}
        }
        true
    }

    /// A session response without its request (already counted in `unmatched_responses`)
    /// changes nothing: anyone can put a response on the wire, and only the request's
    /// destination answering its source proves the procedure happened. The price is that a
    /// request the capture missed leaves its session as it was (stale until a later
    /// procedure, eviction, a peer restart, or a daemon restart). A header SEID naming no
    /// session is still counted in `unknown_session`.
    fn unmatched_response(&mut self, dst: IpAddr, seid: u64) {
        if !self.by_cp.contains_key(&(dst, seid)) {
            self.stats.unknown_session += 1;
        }
    }

    fn on_recovery(&mut self, peer: IpAddr, r: pfcp::RecoveryTimeStamp) {
        match self.peers.get(&peer).copied() {
            Some(old) if old != r => {
                self.stats.peer_restarts += 1;
                self.purge_peer(SessionOrigin::Pfcp, peer);
                self.peers.insert(peer, r);
            }
            Some(_) => {}
            None if self.peers.len() < MAX_PEERS => {
                self.peers.insert(peer, r);
            }
            None => {}
        }
    }

    /// Remove the sessions of `origin` that `peer` took part in (it restarted): cost
    /// O(log n + those sessions), nothing for a peer without sessions.
    fn purge_peer(&mut self, origin: SessionOrigin, peer: IpAddr) {
        let gone: Vec<u64> = self.by_peer[slot(origin)]
            .range(peer_range(peer))
            .map(|(_, id)| *id)
            .collect();
        for id in gone {
            if self.sessions.contains_key(&id) {
                self.remove(id);
                self.stats.purged_by_restart += 1;
            }
        }
    }

    fn create(&mut self, cp: IpAddr, up: IpAddr, f: pfcp::FSeid, node: Option<IpAddr>, ts: u64) -> u64 {
        if let Some(old) = self.by_cp.get(&(cp, f.seid)).copied() {
            self.remove(old);
            self.stats.replaced += 1;
        }
        let cp_ip = f.ipv4.map(IpAddr::V4).or(f.ipv6.map(IpAddr::V6)).unwrap_or(cp);
        let mut s = Session::blank(SessionOrigin::Pfcp, f.seid, cp, up, ts);
        s.cp_ip = cp_ip;
        s.cp_node_id = node;
        let id = self.insert_session(s);
        self.by_cp.insert((cp, f.seid), id);
        id
    }

    /// Make room and insert `s` as the most recently active session. The victim is the
    /// least recently active session not yet established (requests nobody answered, e.g. a
    /// flood of forged Establishment Requests), and only when there is none the least
    /// recently active established one.
    fn insert_session(&mut self, mut s: Session) -> u64 {
        while self.sessions.len() >= self.cfg.capacity.max(1) {
            let Some((_, victim)) = self.lru_pending.pop_first().or_else(|| self.lru.pop_first()) else {
                break;
            };
            self.remove(victim);
            self.stats.evicted += 1;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.tick += 1;
        s.lru_tick = self.tick;
        let order = if s.established {
            &mut self.lru
        } else {
            &mut self.lru_pending
        };
        order.insert(self.tick, id);
        let set = &mut self.by_peer[slot(s.origin)];
        for p in s.peers() {
            set.insert((p, id));
        }
        self.sessions.insert(id, s);
        id
    }

    fn touch(&mut self, id: u64, ts: u64) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(s) = self.sessions.get_mut(&id) {
            let order = if s.established {
                &mut self.lru
            } else {
                &mut self.lru_pending
            };
            order.remove(&s.lru_tick);
            s.lru_tick = tick;
            s.last_seen_ns = s.last_seen_ns.max(ts);
            order.insert(tick, id);
        }
    }

    /// Mark session `id` established (moving it to the established LRU order); true when it
    /// was not.
    fn mark_established(&mut self, id: u64) -> bool {
        let Some(s) = self.sessions.get_mut(&id) else {
            return false;
        };
        if s.established {
            return false;
        }
        s.established = true;
        self.lru_pending.remove(&s.lru_tick);
        self.lru.insert(s.lru_tick, id);
        true
    }

    /// Record that GTPv2-C node `n` took part in session `id` (at most
    /// [`gtpc::MAX_NODES`]), for Recovery purges.
    fn add_node(&mut self, id: u64, n: IpAddr) {
        let Some(s) = self.sessions.get_mut(&id) else { return };
        if !s.nodes.contains(&n) && s.nodes.len() < gtpc::MAX_NODES {
            s.nodes.push(n);
            self.by_peer[slot(s.origin)].insert((n, id));
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(s) = self.sessions.remove(&id) else { return };
        self.lru.remove(&s.lru_tick);
        self.lru_pending.remove(&s.lru_tick);
        let set = &mut self.by_peer[slot(s.origin)];
        for p in s.peers() {
            set.remove(&(p, id));
        }
        if self.by_cp.get(&(s.cp_peer, s.cp_seid)) == Some(&id) {
            self.by_cp.remove(&(s.cp_peer, s.cp_seid));
        }
        if let Some(k) = s.up_key {
            if self.by_up.get(&k) == Some(&id) {
                self.by_up.remove(&k);
            }
        }
        for k in &s.teid_keys {
            self.release_teid(*k, id);
        }
        for k in s.ue_keys.iter().flatten() {
            if self.ues.get(k) == Some(&id) {
                self.ues.remove(k);
            }
        }
        for &(a, t, _) in &s.ctl_keys {
            if let Some(list) = self.ctl.get_mut(&(a, t)) {
                list.retain(|x| *x != id);
                if list.is_empty() {
                    self.ctl.remove(&(a, t));
                }
            }
        }
    }

    /// Session `id` no longer declares tunnel key `k`: drop it from the key's owners; when it
    /// was the current owner the previous one still declaring the key gets it back.
    fn release_teid(&mut self, k: (IpAddr, u32), id: u64) {
        let Some(e) = self.teids.get_mut(&k) else { return };
        let o = &mut e.owners;
        if let Some(p) = o.iter().position(|x| *x == id) {
            o.copy_within(p + 1.., p);
            o[TEID_OWNERS - 1] = 0;
        }
        if o[0] == 0 {
            self.teids.remove(&k);
        } else {
            e.info = self.sessions.get(&o[0]).map(|s| TunnelInfo::of(s, k));
        }
    }

    /// Copy what session `id` says now into the entries of the tunnel keys it owns.
    fn refresh_tunnel_info(&mut self, id: u64) {
        let Some(s) = self.sessions.get(&id) else { return };
        for k in &s.teid_keys {
            if let Some(e) = self.teids.get_mut(k).filter(|e| e.owners[0] == id) {
                e.info = Some(TunnelInfo::of(s, *k));
            }
        }
    }

    /// Session `id` declares tunnel key `k` (`fresh`: it did not at its previous re-index).
    /// A fresh declaration takes the key over ("newest wins": a node may reuse a TEID whose
    /// old session was never seen to end), keeping the previous owner below it, unless the
    /// current owner knows the UE address and `id` does not (e.g. an SGW-U PFCP session, which
    /// has no UE IP Address, against the GTPv2-C PDN connection that announced the same S1-U
    /// F-TEID): then `id` waits below it. A key declared before is not taken back from a
    /// newer owner, except by a session that knows the UE from one that does not.
    fn claim_teid(&mut self, k: (IpAddr, u32), id: u64, fresh: bool) {
        let Some(me) = self.sessions.get(&id) else { return };
        let (knows_ue, origin) = (me.knows_ue(), me.origin);
        let e = self.teids.get_or_insert(
            k,
            TeidEntry {
                owners: [0; TEID_OWNERS],
                info: None,
            },
        );
        let o = &mut e.owners;
        let top = o[0];
        if top == id {
            return;
        }
        let top_s = self.sessions.get(&top);
        let top_knows_ue = top_s.is_some_and(|t| t.knows_ue());
        let upgrade = knows_ue && !top_knows_ue;
        if !fresh && top != 0 && !upgrade {
            return;
        }
        if let Some(p) = o.iter().position(|x| *x == id) {
            o.copy_within(p + 1.., p);
            o[TEID_OWNERS - 1] = 0;
        }
        let at = if top_knows_ue && !knows_ue { 1 } else { 0 };
        o.copy_within(at..TEID_OWNERS - 1, at + 1);
        o[at] = id;
        e.info = self.sessions.get(&o[0]).map(|s| TunnelInfo::of(s, k));
        if at == 0 && top_s.is_some_and(|t| t.origin == origin) {
            self.stats.teid_conflicts += 1;
        }
    }

    /// Apply the rule IEs of an establishment/modification request or response to session
    /// `id`, then re-index its tunnels and UE addresses.
    fn apply_rules(&mut self, id: u64, body: &[u8]) {
        let Some(s) = self.sessions.get_mut(&id) else { return };
        for top in children(body) {
            match top.ie_type {
                ie::CREATE_PDR | ie::UPDATE_PDR => apply_pdr(s, top.value),
                ie::CREATED_PDR => apply_created_pdr(s, top.value),
                ie::CREATE_FAR | ie::UPDATE_FAR => apply_far(s, top.value),
                ie::REMOVE_PDR => {
                    if let Some(pid) = children(top.value).find(|c| c.ie_type == ie::PDR_ID) {
                        let pid = pfcp::pdr_id(pid.value);
                        s.pdrs.retain(|p| Some(p.id) != pid);
                        s.uplink = s
                            .pdrs
                            .iter()
                            .filter(|p| p.source == Some(Interface::ACCESS))
                            .find_map(|p| p.fteid);
                    }
                }
                ie::REMOVE_FAR => {
                    if let Some(fid) = children(top.value).find(|c| c.ie_type == ie::FAR_ID) {
                        let fid = pfcp::far_id(fid.value);
                        s.fars.retain(|f| Some(f.id) != fid);
                        s.downlink = s
                            .fars
                            .iter()
                            .filter(|f| f.destination == Some(Interface::ACCESS))
                            .find_map(|f| f.ohc);
                    }
                }
                ie::CREATE_QER | ie::UPDATE_QER => {
                    for c in children(top.value) {
                        if c.ie_type == ie::QFI {
                            if let Some(q) = pfcp::qfi(c.value) {
                                s.qfis |= 1u64 << q;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        self.reindex(id);
    }

    /// Re-index the tunnels and UE addresses of session `id` (tunnel keys: see
    /// [`SessionTable::claim_teid`]).
    fn reindex(&mut self, id: u64) {
        let Some(s) = self.sessions.get_mut(&id) else { return };
        let (new_t, dropped) = s.wanted_teid_keys();
        let dropped = u8::try_from(dropped).unwrap_or(u8::MAX);
        self.stats.teid_keys_dropped += u64::from(dropped.saturating_sub(s.teid_dropped));
        s.teid_dropped = dropped;
        let old_t = std::mem::replace(&mut s.teid_keys, new_t.clone());
        let (old_u, new_u) = (s.ue_keys, s.wanted_ue_keys());
        s.ue_keys = new_u;
        for k in &old_t {
            if new_t.binary_search(k).is_err() {
                self.release_teid(*k, id);
            }
        }
        for k in new_t {
            let fresh = old_t.binary_search(&k).is_err();
            self.claim_teid(k, id, fresh);
        }
        for k in old_u.iter().flatten() {
            if !new_u.contains(&Some(*k)) && self.ues.get(k) == Some(&id) {
                self.ues.remove(k);
            }
        }
        for k in new_u.iter().flatten() {
            self.ues.insert(*k, id);
        }
        self.refresh_tunnel_info(id);
    }

    /// Forget tunnel keys `gone` of session `id` without re-indexing the others.
    fn unindex_teids(&mut self, id: u64, gone: &[(IpAddr, u32)]) {
        let Some(s) = self.sessions.get_mut(&id) else { return };
        s.teid_keys.retain(|k| !gone.contains(k));
        for k in gone {
            self.release_teid(*k, id);
        }
        self.refresh_tunnel_info(id);
    }
}

/// Create PDR / Update PDR (Tables 7.5.2.2-1, 7.5.4.2-1): PDR ID and PDI {Source Interface,
/// F-TEID, UE IP Address, QFI}.
fn apply_pdr(s: &mut Session, v: &[u8]) {
    let mut id = None;
    let mut source = None;
    let mut fteid = None;
    for c in children(v) {
        match c.ie_type {
            ie::PDR_ID => id = pfcp::pdr_id(c.value),
            ie::PDI => {
                for p in children(c.value) {
                    match p.ie_type {
                        ie::SOURCE_INTERFACE => source = pfcp::source_interface(p.value),
                        ie::F_TEID => fteid = pfcp::f_teid(p.value).as_ref().and_then(endpoint),
                        ie::UE_IP_ADDRESS => {
                            if let Some(u) = pfcp::ue_ip_address(p.value) {
                                s.ue_ipv4 = u.ipv4.or(s.ue_ipv4);
                                if let Some(a) = u.ipv6 {
                                    s.ue_ipv6 = Some(a);
                                    s.ue_ipv6_prefix_len = u.ipv6_prefix_len();
                                }
                            }
                        }
                        ie::QFI => {
                            if let Some(q) = pfcp::qfi(p.value) {
                                s.qfis |= 1u64 << q;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let Some(id) = id else { return };
    let i = match s.pdrs.iter().position(|p| p.id == id) {
        Some(i) => i,
        None if s.pdrs.len() < MAX_RULES_PER_SESSION => {
            s.pdrs.push(Pdr {
                id,
                source: None,
                fteid: None,
            });
            s.pdrs.len() - 1
        }
        None => return,
    };
    let Some(pdr) = s.pdrs.get_mut(i) else { return };
    pdr.source = source.or(pdr.source);
    pdr.fteid = fteid.or(pdr.fteid);
    if pdr.source == Some(Interface::ACCESS) && fteid.is_some() {
        s.uplink = fteid;
    }
}

/// Created PDR (Table 7.5.3.2-1): PDR ID and the F-TEID the UP function chose (CH=1).
fn apply_created_pdr(s: &mut Session, v: &[u8]) {
    let mut id = None;
    let mut fteid = None;
    for c in children(v) {
        match c.ie_type {
            ie::PDR_ID => id = pfcp::pdr_id(c.value),
            ie::F_TEID => fteid = pfcp::f_teid(c.value).as_ref().and_then(endpoint),
            _ => {}
        }
    }
    let (Some(id), Some(fteid)) = (id, fteid) else { return };
    if let Some(p) = s.pdrs.iter_mut().find(|p| p.id == id) {
        p.fteid = Some(fteid);
        if p.source == Some(Interface::ACCESS) {
            s.uplink = Some(fteid);
        }
    }
}

/// Create FAR / Update FAR (Tables 7.5.2.3-1, 7.5.4.3-1): FAR ID and (Update) Forwarding
/// Parameters {Destination Interface, Outer Header Creation}. An Update FAR without a
/// Destination Interface keeps the one of its Create FAR.
fn apply_far(s: &mut Session, v: &[u8]) {
    let mut id = None;
    let mut destination = None;
    let mut ohc = None;
    for c in children(v) {
        match c.ie_type {
            ie::FAR_ID => id = pfcp::far_id(c.value),
            ie::FORWARDING_PARAMETERS | ie::UPDATE_FORWARDING_PARAMETERS => {
                for p in children(c.value) {
                    match p.ie_type {
                        ie::DESTINATION_INTERFACE => destination = pfcp::destination_interface(p.value),
                        ie::OUTER_HEADER_CREATION => {
                            ohc = pfcp::outer_header_creation(p.value).and_then(|o| {
                                Some(TunnelEndpoint {
                                    teid: o.teid?,
                                    ipv4: o.ipv4,
                                    ipv6: o.ipv6,
                                })
                            })
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let Some(id) = id else { return };
    let i = match s.fars.iter().position(|f| f.id == id) {
        Some(i) => i,
        None if s.fars.len() < MAX_RULES_PER_SESSION => {
            s.fars.push(Far {
                id,
                destination: None,
                ohc: None,
            });
            s.fars.len() - 1
        }
        None => return,
    };
    let Some(far) = s.fars.get_mut(i) else { return };
    far.destination = destination.or(far.destination);
    far.ohc = ohc.or(far.ohc);
    if far.destination == Some(Interface::ACCESS) && far.ohc.is_some() {
        s.downlink = far.ohc;
    }
}
