//! EPS bearer sessions learned passively from GTPv2-C (3GPP TS 29.274) on S11 (MME ↔ SGW-C)
//! and S5/S8 (SGW-C ↔ PGW-C), so that G-PDUs on S1-U and S5/S8-U map to a [`Session`] with
//! the UE address just like PFCP sessions do.
//!
//! [`SessionTable::on_gtpv2c`] takes every GTPv2-C datagram (UDP port 2123, either direction)
//! in capture order. One session is one PDN connection:
//!
//! - **Create Session Request** (§7.2.1) creates it. Its Sender F-TEID for Control Plane
//!   (instance 0, §8.22) names the requester's control tunnel and gives the session id
//!   ([`Session::cp_seid`]); the first Bearer Context's EBI (§8.8) is the default bearer; on
//!   S5/S8 the Bearer Context carries the SGW's S5/S8-U F-TEID (interface type 4).
//! - **Create Session Response** (§7.2.2) is matched to its request by (peer pair, sequence
//!   number, type); like every response, an unmatched one is counted and changes nothing
//!   (see the [module](super) documentation for the trade-off). A Cause (§8.4) outside
//!   the acceptance range 16-63 removes the session. Otherwise it gives the responder's
//!   control F-TEID, the PDN Address Allocation (§8.14: UE IPv4 address and/or IPv6 prefix)
//!   and, in Bearer Contexts created, the user-plane F-TEIDs: type 1 S1-U SGW (uplink on
//!   S1-U), type 5 S5/S8-U PGW (uplink on S5/S8), type 4 S5/S8-U SGW (downlink on S5/S8).
//! - **Modify Bearer Request/Response** (§7.2.7, §7.2.8) give the eNodeB's S1-U F-TEID
//!   (type 0, downlink on S1-U); any other message of a session that carries user-plane
//!   F-TEIDs in a Bearer Context with an EBI updates that bearer the same way (e.g. Create
//!   Bearer Response, §7.2.4, for dedicated bearers).
//! - **Delete Session Response** (§7.2.10, answering the Delete Session Request of §7.2.9)
//!   with an accepted Cause removes the session and its TEID index entries; so does an
//!   accepted **Delete Bearer Response** (§7.2.10.2) for the default bearer or with a Linked
//!   EBI, while one for dedicated bearers removes those bearers only. An accepted **Release
//!   Access Bearers Response** (§7.2.22) forgets the eNodeB S1-U F-TEIDs of the UE.
//! - **Recovery** (§8.5): a changed restart counter of a peer (any message, Echo included)
//!   purges the GTPv2-C sessions that peer took part in.
//!
//! Messages are addressed by the receiver's control TEID, so a control tunnel is indexed by
//! (node address, TEID); the MME uses one S11 tunnel for all PDN connections of a UE, so a
//! tunnel may hold several sessions, told apart by EBI. The S11 and S5/S8 halves of one PDN
//! connection are first two sessions (two requesters); when the S11 Create Session Response
//! names the PGW's S5/S8 control F-TEID that the S5/S8 half already holds (same interface
//! type, same default EBI, same UE address), the S5/S8 half is folded into the S11 one
//! ([`SessionStats::merged`](super::SessionStats::merged)).
//!
//! Retransmissions (same peer pair, sequence number, type and octets within the dedup window,
//! TS 29.274 §7.6) are counted once and not re-applied. Everything is bounded like the PFCP
//! side; a session indexes at most [`MAX_TEID_KEYS_PER_SESSION`](super::MAX_TEID_KEYS_PER_SESSION)
//! user-plane tunnel keys.

use std::hash::BuildHasher;
use std::net::IpAddr;

use super::{Session, SessionOrigin, SessionTable, TunnelEndpoint, MAX_PEERS};
use crate::decode::gtpv2c::{self, Fteid, GtpcSummary, Message};
use crate::decode::{DecodeError, Layer, Reason};

/// Most bearers kept per PDN connection (EBI 1..=15, §8.8).
pub const MAX_BEARERS: usize = 15;
/// Most control-plane F-TEID keys kept per session.
pub const MAX_CTL_KEYS: usize = 8;
/// Most sessions indexed under one control tunnel (PDN connections of one UE).
pub const MAX_SESSIONS_PER_TUNNEL: usize = 16;
/// Most control nodes remembered per session (for Recovery purges).
pub const MAX_NODES: usize = 4;

/// F-TEID interface types read by the table (TS 29.274 §8.22 Table 8.22-1).
pub mod interface {
    /// S1-U eNodeB GTP-U.
    pub const S1U_ENB: u8 = 0;
    /// S1-U SGW GTP-U.
    pub const S1U_SGW: u8 = 1;
    /// S5/S8 SGW GTP-U.
    pub const S5_SGW_U: u8 = 4;
    /// S5/S8 PGW GTP-U.
    pub const S5_PGW_U: u8 = 5;
    /// S5/S8 SGW GTP-C.
    pub const S5_SGW_C: u8 = 6;
    /// S5/S8 PGW GTP-C.
    pub const S5_PGW_C: u8 = 7;
    /// S11 MME GTP-C.
    pub const S11_MME_C: u8 = 10;
    /// S11/S4 SGW GTP-C.
    pub const S11_SGW_C: u8 = 11;
    /// S4 SGSN GTP-C.
    pub const S4_SGSN_C: u8 = 17;
}

use interface as itf;

fn is_control(t: u8) -> bool {
    matches!(
        t,
        itf::S5_SGW_C | itf::S5_PGW_C | itf::S11_MME_C | itf::S11_SGW_C | itf::S4_SGSN_C
    )
}

fn is_user_plane(t: u8) -> bool {
    matches!(t, itf::S1U_ENB | itf::S1U_SGW | itf::S5_SGW_U | itf::S5_PGW_U)
}

/// The user-plane tunnel endpoints of one EPS bearer.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Bearer {
    pub(super) ebi: u8,
    /// S1-U eNodeB F-TEID (type 0): downlink on S1-U.
    pub(super) s1u_enb: Option<TunnelEndpoint>,
    /// S1-U SGW F-TEID (type 1): uplink on S1-U.
    pub(super) s1u_sgw: Option<TunnelEndpoint>,
    /// S5/S8-U SGW F-TEID (type 4): downlink on S5/S8.
    pub(super) s5_sgw: Option<TunnelEndpoint>,
    /// S5/S8-U PGW F-TEID (type 5): uplink on S5/S8.
    pub(super) s5_pgw: Option<TunnelEndpoint>,
}

impl Bearer {
    fn get(&self, iftype: u8) -> Option<TunnelEndpoint> {
        match iftype {
            itf::S1U_ENB => self.s1u_enb,
            itf::S1U_SGW => self.s1u_sgw,
            itf::S5_SGW_U => self.s5_sgw,
            itf::S5_PGW_U => self.s5_pgw,
            _ => None,
        }
    }
}

/// A GTPv2-C request awaiting its response.
#[derive(Debug, Clone, Copy)]
pub(super) struct GtpcPending {
    msg_type: u8,
    session: Option<u64>,
}

/// The request type a response type answers (TS 29.274 Table 6.1-1), for the procedures
/// whose triggered message is a response.
fn request_of(response: u8) -> Option<u8> {
    use gtpv2c::*;
    Some(match response {
        MSG_ECHO_RESPONSE => MSG_ECHO_REQUEST,
        MSG_CREATE_SESSION_RESPONSE => MSG_CREATE_SESSION_REQUEST,
        MSG_MODIFY_BEARER_RESPONSE => MSG_MODIFY_BEARER_REQUEST,
        MSG_DELETE_SESSION_RESPONSE => MSG_DELETE_SESSION_REQUEST,
        MSG_CREATE_BEARER_RESPONSE => MSG_CREATE_BEARER_REQUEST,
        MSG_UPDATE_BEARER_RESPONSE => MSG_UPDATE_BEARER_REQUEST,
        MSG_DELETE_BEARER_RESPONSE => MSG_DELETE_BEARER_REQUEST,
        MSG_DELETE_PDN_SET_RESPONSE => MSG_DELETE_PDN_SET_REQUEST,
        MSG_RELEASE_ACCESS_BEARERS_RESPONSE => MSG_RELEASE_ACCESS_BEARERS_REQUEST,
        MSG_DDN_ACK => MSG_DDN,
        MSG_MODIFY_ACCESS_BEARERS_RESPONSE => MSG_MODIFY_ACCESS_BEARERS_REQUEST,
        _ => return None,
    })
}

fn is_request(t: u8) -> bool {
    use gtpv2c::*;
    matches!(
        t,
        MSG_ECHO_REQUEST
            | MSG_CREATE_SESSION_REQUEST
            | MSG_MODIFY_BEARER_REQUEST
            | MSG_DELETE_SESSION_REQUEST
            | MSG_CREATE_BEARER_REQUEST
            | MSG_UPDATE_BEARER_REQUEST
            | MSG_DELETE_BEARER_REQUEST
            | MSG_DELETE_PDN_SET_REQUEST
            | MSG_RELEASE_ACCESS_BEARERS_REQUEST
            | MSG_DDN
            | MSG_MODIFY_ACCESS_BEARERS_REQUEST
    )
}

/// (EBI, Cause) of each top-level Bearer Context of instance 0 in `ies` (§8.28).
fn bearer_contexts(ies: &[u8]) -> impl Iterator<Item = (Option<u8>, Option<gtpv2c::Cause>)> + '_ {
    gtpv2c::ies(ies)
        .map_while(Result::ok)
        .filter(|ie| ie.ie_type == gtpv2c::IE_BEARER_CONTEXT && ie.instance == 0)
        .map(|bc| {
            let (mut ebi, mut cause) = (None, None);
            for c in gtpv2c::ies(bc.value).map_while(Result::ok) {
                match (c.ie_type, c.instance) {
                    (gtpv2c::IE_EBI, 0) => ebi = ebi.or(gtpv2c::parse_ebi(c.value)),
                    (gtpv2c::IE_CAUSE, 0) => cause = cause.or(gtpv2c::Cause::parse(c.value).ok()),
                    _ => {}
                }
            }
            (ebi, cause)
        })
}

/// The top-level EPS Bearer ID of instance 0: the Linked EBI of Delete Session / Delete
/// Bearer messages (§7.2.9, §7.2.10).
fn linked_ebi(ies: &[u8]) -> Option<u8> {
    gtpv2c::ies(ies)
        .map_while(Result::ok)
        .find(|ie| ie.ie_type == gtpv2c::IE_EBI && ie.instance == 0)
        .and_then(|ie| gtpv2c::parse_ebi(ie.value))
}

/// The Sender F-TEID for Control Plane: instance 0 outside Bearer Contexts.
fn sender(sum: &GtpcSummary) -> Option<Fteid> {
    sum.fteids()
        .iter()
        .find(|e| !e.in_bearer_context && e.instance == 0)
        .map(|e| e.fteid)
}

/// The responder's control F-TEID in a Create Session Response (§7.2.2): the Sender F-TEID
/// for Control Plane (instance 0, e.g. the SGW's on S11), else the PGW S5/S8 F-TEID for
/// Control Plane (instance 1, interface type 7), which is what a PGW sends on S5/S8.
fn responder(sum: &GtpcSummary) -> Option<Fteid> {
    sender(sum).or_else(|| {
        sum.fteids()
            .iter()
            .find(|e| !e.in_bearer_context && e.instance == 1 && e.fteid.interface_type == itf::S5_PGW_C)
            .map(|e| e.fteid)
    })
}

fn fteid_addrs(f: &Fteid) -> impl Iterator<Item = IpAddr> {
    [f.ipv4.map(IpAddr::V4), f.ipv6.map(IpAddr::V6)].into_iter().flatten()
}

/// The index keys (address, TEID) of a tunnel endpoint.
fn fteid_keys(e: TunnelEndpoint) -> impl Iterator<Item = (IpAddr, u32)> {
    [e.ipv4.map(IpAddr::V4), e.ipv6.map(IpAddr::V6)]
        .into_iter()
        .flatten()
        .map(move |a| (a, e.teid))
}

fn valid_ebi(e: Option<u8>) -> Option<u8> {
    e.filter(|e| (1..=15).contains(e))
}

fn same_ue(a: &Session, b: &Session) -> bool {
    let v4 = match (a.ue_ipv4, b.ue_ipv4) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    let v6 = match (a.ue_ipv6, b.ue_ipv6) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    v4 && v6
}

fn set_endpoint(s: &mut Session, ebi: u8, iftype: u8, ep: TunnelEndpoint) {
    let i = match s.bearers.iter().position(|b| b.ebi == ebi) {
        Some(i) => i,
        None if s.bearers.len() < MAX_BEARERS => {
            s.bearers.push(Bearer {
                ebi,
                ..Bearer::default()
            });
            s.bearers.len() - 1
        }
        None => return,
    };
    let Some(b) = s.bearers.get_mut(i) else { return };
    match iftype {
        itf::S1U_ENB => b.s1u_enb = Some(ep),
        itf::S1U_SGW => b.s1u_sgw = Some(ep),
        itf::S5_SGW_U => b.s5_sgw = Some(ep),
        itf::S5_PGW_U => b.s5_pgw = Some(ep),
        _ => {}
    }
}

/// Copy the default bearer's endpoints (else the first bearer's) into the public fields.
fn refresh_default(s: &mut Session) {
    let b = s
        .bearers
        .iter()
        .find(|b| Some(b.ebi) == s.ebi)
        .or(s.bearers.first())
        .copied()
        .unwrap_or_default();
    s.uplink = b.s1u_sgw;
    s.downlink = b.s1u_enb;
    s.core_uplink = b.s5_pgw;
    s.core_downlink = b.s5_sgw;
}

fn has_bearer(s: &Session, ebi: u8) -> bool {
    s.ebi == Some(ebi) || s.bearers.iter().any(|b| b.ebi == ebi)
}

impl SessionTable {
    /// Feed one GTPv2-C datagram: `udp_payload` of a UDP datagram to or from port 2123, sent
    /// from `src` to `dst` at capture time `ts_ns` (ns since the Unix epoch). A piggybacked
    /// message (§5.5.1) is read too. See the [`gtpc`](self) module for what is learned.
    ///
    /// Errors (layer `gtpc`): those of [`gtpv2c::messages`] (`bad_version` for GTPv1-C on the
    /// shared port, not counted as malformed), `truncated` for a message whose length runs
    /// past the datagram, and the first IE problem [`gtpv2c::summarize`] meets; the last two
    /// are counted in [`SessionStats::malformed`](super::SessionStats::malformed). Such a
    /// message changes no session (a piggybacked message before it still applies).
    pub fn on_gtpv2c(&mut self, src: IpAddr, dst: IpAddr, udp_payload: &[u8], ts_ns: u64) -> Result<(), DecodeError> {
        self.note_packet(ts_ns);
        for m in gtpv2c::messages(udp_payload) {
            let m = m.inspect_err(|e| {
                if e.reason != Reason::BadVersion {
                    self.stats.malformed += 1;
                }
            })?;
            if m.truncated {
                self.stats.malformed += 1;
                return Err(DecodeError::new(Layer::Gtpc, Reason::Truncated));
            }
            let sum = gtpv2c::summarize(&m);
            if let Some(e) = sum.error {
                self.stats.malformed += 1;
                return Err(e);
            }
            self.on_gtpc_message(src, dst, &m, &sum, ts_ns);
        }
        Ok(())
    }

    /// Whether [`SessionTable::on_gtpv2c`] could change the table (beyond its malformed
    /// counter and the learning period's start) for this UDP payload: its first message is
    /// whole (header of TS 29.274 §5.1) and its IEs (§8) summarize without error (see
    /// [`SessionTable::pfcp_may_change`]).
    pub fn gtpv2c_may_change(udp_payload: &[u8]) -> bool {
        match gtpv2c::messages(udp_payload).next() {
            Some(Ok(m)) => !m.truncated && gtpv2c::summarize(&m).error.is_none(),
            _ => false,
        }
    }

    /// The GTPv2-C session whose control tunnel at `node` (the address the node receives on)
    /// has TEID `teid`; the latest one when several PDN connections share the tunnel.
    pub fn session_by_control_teid(&self, node: IpAddr, teid: u32) -> Option<&Session> {
        self.ctl
            .get(&(node, teid))
            .and_then(|l| l.last())
            .and_then(|id| self.sessions.get(id))
    }

    /// Latest GTPv2-C Recovery restart counter (§8.5) sent by the node at `peer` (packet
    /// address).
    pub fn gtpc_peer_restart_counter(&self, peer: IpAddr) -> Option<u8> {
        self.gtpc_peers.get(&peer).copied()
    }

    fn on_gtpc_message(&mut self, src: IpAddr, dst: IpAddr, m: &Message<'_>, sum: &GtpcSummary, ts: u64) {
        let t = sum.message_type;
        self.stats.gtpc_messages[gtpv2c::message_index(t)] += 1;
        // The content hash covers the header TEID and the IEs: a retransmission repeats the
        // message octet for octet (§7.6), a forged one reusing the sequence number does not.
        let key = (src, dst, sum.sequence, t, self.content_hash.hash_one((sum.teid, m.ies)));
        if let Some(&prev) = self.gtpc_recent.get(&key) {
            if ts.saturating_sub(prev) <= self.cfg.dedup_window_ns {
                self.stats.retransmissions += 1;
                return;
            }
        }
        // Only a message that was read enters the filter (see the PFCP side).
        if self.apply_gtpc_message(src, dst, m, sum, ts) {
            self.gtpc_recent.insert(key, ts);
        }
    }

    /// Apply one GTPv2-C message; false when it lacks a mandatory IE (counted as malformed).
    fn apply_gtpc_message(&mut self, src: IpAddr, dst: IpAddr, m: &Message<'_>, sum: &GtpcSummary, ts: u64) -> bool {
        let t = sum.message_type;
        if let Some(r) = sum.recovery {
            self.on_gtpc_recovery(src, r);
        }
        let ebi_hint = valid_ebi(sum.ebi).or_else(|| bearer_contexts(m.ies).find_map(|(e, _)| valid_ebi(e)));
        if let Some(req) = request_of(t) {
            // Only the matching request type is consumed: a response of another type with the
            // same peers and sequence number leaves the request waiting for its answer.
            let k = (dst, src, sum.sequence);
            let p = self
                .gtpc_pending
                .get(&k)
                .is_some_and(|p| p.msg_type == req)
                .then(|| self.gtpc_pending.remove(&k))
                .flatten();
            match p {
                Some(p) if t != gtpv2c::MSG_ECHO_RESPONSE => self.on_gtpc_response(src, dst, m, sum, p, ebi_hint, ts),
                Some(_) => {}
                // Like PFCP (see `unmatched_response` there): a response without its request
                // (seen from this response's destination to its source, same sequence number,
                // the matching type) changes nothing; a header TEID naming no control tunnel is
                // still counted as an unknown session.
                None => {
                    self.stats.unmatched_responses += 1;
                    if t != gtpv2c::MSG_ECHO_RESPONSE
                        && self.gtpc_lookup(dst, sum.teid.unwrap_or(0), ebi_hint).is_none()
                    {
                        self.stats.unknown_session += 1;
                    }
                }
            }
        } else if is_request(t) {
            let session = if t == gtpv2c::MSG_CREATE_SESSION_REQUEST {
                let Some(id) = self.gtpc_create_request(src, dst, m, sum, ts) else {
                    return false;
                };
                Some(id)
            } else {
                let id = self.gtpc_lookup(dst, sum.teid.unwrap_or(0), ebi_hint);
                match id {
                    Some(id) => {
                        self.touch(id, ts);
                        self.gtpc_update(id, src, dst, sum);
                    }
                    None if sum.teid.is_some() => self.stats.unknown_session += 1,
                    None => {}
                }
                id
            };
            self.gtpc_pending
                .insert((src, dst, sum.sequence), GtpcPending { msg_type: t, session });
        }
        true
    }

    /// The session on control tunnel `(node, teid)`: the one with bearer `ebi` when given and
    /// present, else the latest.
    fn gtpc_lookup(&self, node: IpAddr, teid: u32, ebi: Option<u8>) -> Option<u64> {
        let list = self.ctl.get(&(node, teid))?;
        ebi.and_then(|e| {
            list.iter()
                .copied()
                .find(|id| self.sessions.get(id).is_some_and(|s| has_bearer(s, e)))
        })
        .or(list.last().copied())
    }

    /// Create Session Request (§7.2.1): a new session keyed by the Sender F-TEID for Control
    /// Plane (mandatory; without it the message is malformed). A session of the same
    /// requester tunnel and default EBI is replaced.
    fn gtpc_create_request(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        m: &Message<'_>,
        sum: &GtpcSummary,
        ts: u64,
    ) -> Option<u64> {
        let Some(snd) = sender(sum) else {
            self.stats.malformed += 1;
            return None;
        };
        let ebi = bearer_contexts(m.ies).find_map(|(e, _)| valid_ebi(e));
        let olds: Vec<u64> = fteid_addrs(&snd)
            .filter_map(|a| self.ctl.get(&(a, snd.teid)).map(|l| (a, l)))
            .flat_map(|(a, l)| l.iter().map(move |id| (a, *id)))
            .filter(|(a, id)| {
                self.sessions.get(id).is_some_and(|s| {
                    s.origin == SessionOrigin::Gtpv2c
                        && s.ebi == ebi
                        && s.ctl_keys.contains(&(*a, snd.teid, snd.interface_type))
                })
            })
            .map(|(_, id)| id)
            .collect();
        for old in olds {
            if self.sessions.contains_key(&old) {
                self.remove(old);
                self.stats.replaced += 1;
            }
        }
        let mut s = Session::blank(SessionOrigin::Gtpv2c, u64::from(snd.teid), src, dst, ts);
        s.cp_ip = fteid_addrs(&snd).next().unwrap_or(src);
        s.ebi = ebi;
        s.nodes = if src == dst { vec![src] } else { vec![src, dst] };
        let id = self.insert_session(s);
        self.gtpc_update(id, src, dst, sum);
        Some(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_gtpc_response(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        m: &Message<'_>,
        sum: &GtpcSummary,
        pending: GtpcPending,
        ebi_hint: Option<u8>,
        ts: u64,
    ) {
        let t = sum.message_type;
        let teid = sum.teid.unwrap_or(0);
        let id = match pending.session {
            Some(id) => Some(id).filter(|id| self.sessions.contains_key(id)),
            // The request named no known tunnel: the response's header TEID may.
            None => self.gtpc_lookup(dst, teid, ebi_hint),
        };
        let Some(id) = id else {
            // A request whose session is already gone (e.g. the S11 Delete Session Response
            // after the S5/S8 one removed the PDN connection) is not an unknown session.
            if pending.session.is_none() {
                self.stats.unknown_session += 1;
            }
            return;
        };
        let accepted = sum.cause.is_none_or(|c| c.is_accepted());
        match t {
            gtpv2c::MSG_CREATE_SESSION_RESPONSE => {
                if !accepted {
                    self.remove(id);
                    self.stats.rejected += 1;
                    return;
                }
                self.touch(id, ts);
                if let Some(s) = self.sessions.get_mut(&id) {
                    if let Some(snd) = responder(sum) {
                        s.up_seid = Some(u64::from(snd.teid));
                        s.up_ip = fteid_addrs(&snd).next().unwrap_or(src);
                    }
                }
                self.add_node(id, src);
                self.add_node(id, dst);
                self.gtpc_update(id, src, dst, sum);
                if self.mark_established(id) {
                    self.stats.established += 1;
                }
            }
            gtpv2c::MSG_DELETE_SESSION_RESPONSE => {
                if accepted {
                    self.remove(id);
                    self.stats.deleted += 1;
                }
            }
            gtpv2c::MSG_DELETE_BEARER_RESPONSE => {
                if !accepted {
                    return;
                }
                let default = self.sessions.get(&id).and_then(|s| s.ebi);
                let whole = linked_ebi(m.ies).is_some()
                    || bearer_contexts(m.ies)
                        .any(|(e, c)| e.is_some() && e == default && c.is_none_or(|c| c.is_accepted()));
                if whole {
                    self.remove(id);
                    self.stats.deleted += 1;
                    return;
                }
                if let Some(s) = self.sessions.get_mut(&id) {
                    for (e, c) in bearer_contexts(m.ies) {
                        if let (Some(e), true) = (e, c.is_none_or(|c| c.is_accepted())) {
                            s.bearers.retain(|b| b.ebi != e);
                        }
                    }
                    refresh_default(s);
                }
                self.reindex(id);
            }
            gtpv2c::MSG_RELEASE_ACCESS_BEARERS_RESPONSE => {
                if !accepted {
                    return;
                }
                let mut ids = self.ctl.get(&(dst, teid)).cloned().unwrap_or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
                // Only the eNodeB keys go; the session's other keys stay as indexed.
                for id in ids {
                    let mut gone = Vec::new();
                    if let Some(s) = self.sessions.get_mut(&id) {
                        for b in &mut s.bearers {
                            if let Some(e) = b.s1u_enb.take() {
                                gone.extend(fteid_keys(e));
                            }
                        }
                        refresh_default(s);
                    }
                    self.unindex_teids(id, &gone);
                }
            }
            _ => {
                self.touch(id, ts);
                if accepted {
                    self.gtpc_update(id, src, dst, sum);
                }
            }
        }
    }

    /// Apply what a message of session `id` (sent `src` → `dst`) says: PAA, control F-TEIDs
    /// (folding in the other half of the PDN connection), user-plane F-TEIDs of Bearer
    /// Contexts; then re-index.
    fn gtpc_update(&mut self, id: u64, src: IpAddr, dst: IpAddr, sum: &GtpcSummary) {
        if let (Some(p), Some(s)) = (sum.paa, self.sessions.get_mut(&id)) {
            if let Some(a) = p.ipv4.filter(|a| !a.is_unspecified()) {
                s.ue_ipv4 = Some(a);
            }
            if let Some(a) = p.ipv6.filter(|a| !a.is_unspecified()) {
                s.ue_ipv6 = Some(a);
                s.ue_ipv6_prefix_len = p.ipv6_prefix_len.unwrap_or(64).min(128);
            }
        }
        for e in sum.fteids() {
            let f = e.fteid;
            if e.in_bearer_context || f.teid == 0 || !is_control(f.interface_type) {
                continue;
            }
            let mut addrs: Vec<IpAddr> = fteid_addrs(&f).collect();
            if addrs.is_empty() && e.instance == 0 {
                addrs.push(src);
            }
            for a in addrs {
                self.add_ctl(id, (a, f.teid, f.interface_type));
            }
        }
        // Bearer F-TEIDs go to the session of the tunnel that has that EBI, else to `id`.
        let mut candidates = self.ctl.get(&(dst, sum.teid.unwrap_or(0))).cloned().unwrap_or_default();
        if !candidates.contains(&id) {
            candidates.push(id);
        }
        let mut touched = vec![id];
        for e in sum.fteids() {
            let f = e.fteid;
            let Some(ebi) = valid_ebi(e.bearer_ebi) else { continue };
            if !e.in_bearer_context || f.teid == 0 || !is_user_plane(f.interface_type) {
                continue;
            }
            if f.ipv4.is_none() && f.ipv6.is_none() {
                continue;
            }
            let target = candidates
                .iter()
                .copied()
                .find(|c| {
                    self.sessions
                        .get(c)
                        .is_some_and(|s| s.bearers.iter().any(|b| b.ebi == ebi))
                })
                .unwrap_or(id);
            let ep = TunnelEndpoint {
                teid: f.teid,
                ipv4: f.ipv4,
                ipv6: f.ipv6,
            };
            if let Some(s) = self.sessions.get_mut(&target) {
                set_endpoint(s, ebi, f.interface_type, ep);
                if !touched.contains(&target) {
                    touched.push(target);
                }
            }
        }
        for t in touched {
            if let Some(s) = self.sessions.get_mut(&t) {
                refresh_default(s);
            }
            self.reindex(t);
        }
    }

    /// Index control F-TEID `k` = (address, TEID, interface type) to session `id`, first
    /// folding into `id` any other GTPv2-C session that holds the same F-TEID for the same
    /// default EBI and UE address (the other half of the same PDN connection).
    fn add_ctl(&mut self, id: u64, k: (IpAddr, u32, u8)) {
        let others: Vec<u64> = self
            .ctl
            .get(&(k.0, k.1))
            .map(|l| l.iter().copied().filter(|o| *o != id).collect())
            .unwrap_or_default();
        for o in others {
            let same = match (self.sessions.get(&id), self.sessions.get(&o)) {
                (Some(s), Some(x)) => {
                    x.origin == SessionOrigin::Gtpv2c
                        && x.ctl_keys.contains(&k)
                        && s.ebi.is_some()
                        && s.ebi == x.ebi
                        && same_ue(s, x)
                }
                _ => false,
            };
            if same {
                self.absorb(id, o);
            }
        }
        self.index_ctl(id, k);
    }

    fn index_ctl(&mut self, id: u64, k: (IpAddr, u32, u8)) {
        let Some(s) = self.sessions.get_mut(&id) else { return };
        if !s.ctl_keys.contains(&k) {
            if s.ctl_keys.len() >= MAX_CTL_KEYS {
                return;
            }
            s.ctl_keys.push(k);
        }
        let list = self.ctl.entry((k.0, k.1)).or_default();
        if !list.contains(&id) {
            if list.len() >= MAX_SESSIONS_PER_TUNNEL {
                list.remove(0);
            }
            list.push(id);
        }
    }

    /// Fold session `other` into `keep` (bearers, control keys, UE address, nodes) and
    /// remove `other`.
    fn absorb(&mut self, keep: u64, other: u64) {
        let Some(o) = self.sessions.get(&other).cloned() else {
            return;
        };
        self.remove(other);
        self.stats.merged += 1;
        if let Some(s) = self.sessions.get_mut(&keep) {
            for b in &o.bearers {
                for (t, ep) in [
                    (itf::S1U_ENB, b.s1u_enb),
                    (itf::S1U_SGW, b.s1u_sgw),
                    (itf::S5_SGW_U, b.s5_sgw),
                    (itf::S5_PGW_U, b.s5_pgw),
                ] {
                    let known = s.bearers.iter().any(|x| x.ebi == b.ebi && x.get(t).is_some());
                    if let (Some(ep), false) = (ep, known) {
                        set_endpoint(s, b.ebi, t, ep);
                    }
                }
            }
            s.ue_ipv4 = s.ue_ipv4.or(o.ue_ipv4);
            if s.ue_ipv6.is_none() {
                s.ue_ipv6 = o.ue_ipv6;
                s.ue_ipv6_prefix_len = o.ue_ipv6_prefix_len;
            }
            s.first_seen_ns = s.first_seen_ns.min(o.first_seen_ns);
            s.last_seen_ns = s.last_seen_ns.max(o.last_seen_ns);
            refresh_default(s);
        }
        if o.established {
            self.mark_established(keep);
        }
        for n in o.nodes {
            self.add_node(keep, n);
        }
        for k in o.ctl_keys {
            self.index_ctl(keep, k);
        }
        self.reindex(keep);
    }

    fn on_gtpc_recovery(&mut self, peer: IpAddr, r: u8) {
        match self.gtpc_peers.get(&peer).copied() {
            Some(old) if old != r => {
                self.stats.peer_restarts += 1;
                self.purge_peer(SessionOrigin::Gtpv2c, peer);
                self.gtpc_peers.insert(peer, r);
            }
            Some(_) => {}
            None if self.gtpc_peers.len() < MAX_PEERS => {
                self.gtpc_peers.insert(peer, r);
            }
            None => {}
        }
    }
}
