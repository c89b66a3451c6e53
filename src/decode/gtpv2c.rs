//! GTPv2-C (3GPP TS 29.274): message header (§5.1), piggybacked messages (§5.5.1),
//! information elements (§8.2) and the typed IEs a session table needs: F-TEID (§8.22), PDN
//! Address Allocation (§8.14), EPS Bearer ID (§8.8), Cause (§8.4), Recovery (§8.5), IMSI
//! (§8.3) and the grouped Bearer Context (§8.28).
//!
//! Carried on UDP port [`GTPC_PORT`], which GTPv1-C shares: a version-1 header there is
//! `gtpc: bad_version`, not a GTPv2-C message.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::link::{be16, be32};
use super::{DecodeError, Layer, Reason};

/// UDP port of GTP-C (TS 29.274 §4.2; shared with GTPv1-C).
pub const GTPC_PORT: u16 = 2123;
/// Most messages read from one datagram: the message and the one message piggybacked on it
/// (TS 29.274 §5.5.1). A piggybacked message that sets P again is `gtpc: too_many_headers`.
pub const MAX_MESSAGES: usize = 2;
/// Deepest nesting of grouped IEs walked by [`summarize`] (a Bearer Context is depth 1);
/// deeper is `gtpc: too_many_headers`.
pub const MAX_GROUP_DEPTH: usize = 4;
/// Most F-TEIDs kept by [`summarize`]; more are counted in [`GtpcSummary::fteids_omitted`].
pub const MAX_SUMMARY_FTEIDS: usize = 16;

code_labels! {
    /// GTPv2-C message label names (metric label values), indexed by [`message_index`]; the
    /// last one, `other`, covers every other type (TS 29.274 Table 6.1-1).
    MESSAGE_LABELS, message_index, message_label;
    /// Echo Request.
    MSG_ECHO_REQUEST = 1 => "echo_request",
    /// Echo Response.
    MSG_ECHO_RESPONSE = 2 => "echo_response",
    /// Version Not Supported Indication.
    MSG_VERSION_NOT_SUPPORTED = 3 => "version_not_supported_indication",
    /// Create Session Request.
    MSG_CREATE_SESSION_REQUEST = 32 => "create_session_request",
    /// Create Session Response.
    MSG_CREATE_SESSION_RESPONSE = 33 => "create_session_response",
    /// Modify Bearer Request.
    MSG_MODIFY_BEARER_REQUEST = 34 => "modify_bearer_request",
    /// Modify Bearer Response.
    MSG_MODIFY_BEARER_RESPONSE = 35 => "modify_bearer_response",
    /// Delete Session Request.
    MSG_DELETE_SESSION_REQUEST = 36 => "delete_session_request",
    /// Delete Session Response.
    MSG_DELETE_SESSION_RESPONSE = 37 => "delete_session_response",
    /// Modify Bearer Command.
    MSG_MODIFY_BEARER_COMMAND = 64 => "modify_bearer_command",
    /// Modify Bearer Failure Indication.
    MSG_MODIFY_BEARER_FAILURE = 65 => "modify_bearer_failure_indication",
    /// Delete Bearer Command.
    MSG_DELETE_BEARER_COMMAND = 66 => "delete_bearer_command",
    /// Delete Bearer Failure Indication.
    MSG_DELETE_BEARER_FAILURE = 67 => "delete_bearer_failure_indication",
    /// Bearer Resource Command.
    MSG_BEARER_RESOURCE_COMMAND = 68 => "bearer_resource_command",
    /// Bearer Resource Failure Indication.
    MSG_BEARER_RESOURCE_FAILURE = 69 => "bearer_resource_failure_indication",
    /// Downlink Data Notification Failure Indication.
    MSG_DDN_FAILURE = 70 => "downlink_data_notification_failure_indication",
    /// Create Bearer Request.
    MSG_CREATE_BEARER_REQUEST = 95 => "create_bearer_request",
    /// Create Bearer Response.
    MSG_CREATE_BEARER_RESPONSE = 96 => "create_bearer_response",
    /// Update Bearer Request.
    MSG_UPDATE_BEARER_REQUEST = 97 => "update_bearer_request",
    /// Update Bearer Response.
    MSG_UPDATE_BEARER_RESPONSE = 98 => "update_bearer_response",
    /// Delete Bearer Request.
    MSG_DELETE_BEARER_REQUEST = 99 => "delete_bearer_request",
    /// Delete Bearer Response.
    MSG_DELETE_BEARER_RESPONSE = 100 => "delete_bearer_response",
    /// Delete PDN Connection Set Request.
    MSG_DELETE_PDN_SET_REQUEST = 101 => "delete_pdn_connection_set_request",
    /// Delete PDN Connection Set Response.
    MSG_DELETE_PDN_SET_RESPONSE = 102 => "delete_pdn_connection_set_response",
    /// Release Access Bearers Request.
    MSG_RELEASE_ACCESS_BEARERS_REQUEST = 170 => "release_access_bearers_request",
    /// Release Access Bearers Response.
    MSG_RELEASE_ACCESS_BEARERS_RESPONSE = 171 => "release_access_bearers_response",
    /// Downlink Data Notification.
    MSG_DDN = 176 => "downlink_data_notification",
    /// Downlink Data Notification Acknowledge.
    MSG_DDN_ACK = 177 => "downlink_data_notification_acknowledge",
    /// Modify Access Bearers Request.
    MSG_MODIFY_ACCESS_BEARERS_REQUEST = 211 => "modify_access_bearers_request",
    /// Modify Access Bearers Response.
    MSG_MODIFY_ACCESS_BEARERS_RESPONSE = 212 => "modify_access_bearers_response",
}

/// IE type IMSI (§8.3).
pub const IE_IMSI: u8 = 1;
/// IE type Cause (§8.4).
pub const IE_CAUSE: u8 = 2;
/// IE type Recovery (§8.5).
pub const IE_RECOVERY: u8 = 3;
/// IE type EPS Bearer ID (§8.8).
pub const IE_EBI: u8 = 73;
/// IE type PDN Address Allocation (§8.14).
pub const IE_PAA: u8 = 79;
/// IE type Fully Qualified TEID (§8.22).
pub const IE_FTEID: u8 = 87;
/// IE type Bearer Context (§8.28), grouped.
pub const IE_BEARER_CONTEXT: u8 = 93;

const FLAG_P: u8 = 0x10;
const FLAG_T: u8 = 0x08;
const FLAG_MP: u8 = 0x04;

/// A decoded GTPv2-C header (TS 29.274 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// P flag: another message is piggybacked after this one.
    pub piggyback: bool,
    /// Message priority (4 bits, 0 = highest) when the MP flag is set.
    pub message_priority: Option<u8>,
    /// Message type (see [`MESSAGE_LABELS`]).
    pub message_type: u8,
    /// Length field: octets after the first 4 (includes TEID, sequence and IEs).
    pub length: u16,
    /// TEID when the T flag is set (all but Echo and Version Not Supported).
    pub teid: Option<u32>,
    /// Sequence number (24 bits).
    pub sequence: u32,
}

/// One GTPv2-C message: the header and its IE octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The header.
    pub header: Header,
    /// The IE octets after the header, cut to the message length (and to the captured bytes).
    pub ies: &'a [u8],
    /// The length field runs past the bytes at hand: `ies` is cut short.
    pub truncated: bool,
}

/// Parse one GTPv2-C message at the start of `d`; returns it and the bytes after it (where a
/// piggybacked message starts when P is set).
///
/// Errors (layer `gtpc`): `truncated` (fewer octets than the 8- or 12-octet header),
/// `bad_version` (version ≠ 2, e.g. GTPv1-C), `bad_length` (length shorter than the rest of
/// the header).
pub fn parse_message(d: &[u8]) -> Result<(Message<'_>, &[u8]), DecodeError> {
    let e = |r| DecodeError::new(Layer::Gtpc, r);
    let (&flags, &message_type) = match (d.first(), d.get(1)) {
        (Some(f), Some(t)) => (f, t),
        _ => return Err(e(Reason::Truncated)),
    };
    if flags >> 5 != 2 {
        return Err(e(Reason::BadVersion));
    }
    let length = be16(d, 2).ok_or(e(Reason::Truncated))?;
    let t = flags & FLAG_T != 0;
    let hdr_len = if t { 12 } else { 8 };
    if usize::from(length) + 4 < hdr_len {
        return Err(e(Reason::BadLength));
    }
    if d.len() < hdr_len {
        return Err(e(Reason::Truncated));
    }
    let (teid, seq_off) = if t { (be32(d, 4), 8) } else { (None, 4) };
    let sequence = u32::from_be_bytes([0, d[seq_off], d[seq_off + 1], d[seq_off + 2]]);
    let message_priority = (flags & FLAG_MP != 0).then_some(d[seq_off + 3] >> 4);
    let end_declared = usize::from(length) + 4;
    let end = end_declared.min(d.len());
    let msg = Message {
        header: Header {
            piggyback: flags & FLAG_P != 0,
            message_priority,
            message_type,
            length,
            teid,
            sequence,
        },
        ies: &d[hdr_len..end],
        truncated: end_declared > d.len(),
    };
    Ok((msg, &d[end..]))
}

/// Iterator over the messages of one datagram: the first message, then the piggybacked one
/// while P is set, at most [`MAX_MESSAGES`]. Yields `Err` once and stops at the first error
/// (a piggybacked message that is missing or cut is `gtpc: truncated`).
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    more: bool,
    n: usize,
}

/// The messages of a GTP-C UDP payload, see [`Messages`].
pub fn messages(udp_payload: &[u8]) -> Messages<'_> {
    Messages {
        rest: udp_payload,
        more: true,
        n: 0,
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.more {
            return None;
        }
        if self.n >= MAX_MESSAGES {
            self.more = false;
            return Some(Err(DecodeError::new(Layer::Gtpc, Reason::TooManyHeaders)));
        }
        self.n += 1;
        match parse_message(self.rest) {
            Ok((m, rest)) => {
                self.rest = rest;
                self.more = m.header.piggyback && !m.truncated;
                Some(Ok(m))
            }
            Err(err) => {
                self.more = false;
                Some(Err(err))
            }
        }
    }
}

/// One information element (TS 29.274 §8.2.1): type, instance and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ie<'a> {
    /// IE type (octet 1).
    pub ie_type: u8,
    /// Instance (low 4 bits of octet 4): tells apart IEs of one type in one message.
    pub instance: u8,
    /// Value octets (the 2-octet length field's worth).
    pub value: &'a [u8],
}

/// Iterator over the IEs of a message or of a grouped IE. Yields `Err(gtpc: ie_overrun)` once
/// and stops when an IE header or value runs past the octets given.
#[derive(Debug, Clone)]
pub struct Ies<'a> {
    rest: &'a [u8],
}

/// The IEs in `octets` (a message's [`Message::ies`] or a grouped IE's value).
pub fn ies(octets: &[u8]) -> Ies<'_> {
    Ies { rest: octets }
}

impl<'a> Iterator for Ies<'a> {
    type Item = Result<Ie<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let d = self.rest;
        let overrun = DecodeError::new(Layer::Gtpc, Reason::IeOverrun);
        let (Some(len), Some(&inst)) = (be16(d, 1), d.get(3)) else {
            self.rest = &[];
            return Some(Err(overrun));
        };
        let end = 4 + usize::from(len);
        let Some(value) = d.get(4..end) else {
            self.rest = &[];
            return Some(Err(overrun));
        };
        self.rest = &d[end..];
        Some(Ok(Ie {
            ie_type: d[0],
            instance: inst & 0x0f,
            value,
        }))
    }
}

/// Fully Qualified TEID (§8.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fteid {
    /// Interface type (6 bits, §8.22 Table 8.22-1): 0 S1-U eNodeB GTP-U, 1 S1-U SGW GTP-U,
    /// 4 S5/S8 SGW GTP-U, 5 S5/S8 PGW GTP-U, 6 S5/S8 SGW GTP-C, 7 S5/S8 PGW GTP-C,
    /// 10 S11 MME GTP-C, 11 S11/S4 SGW GTP-C, ...
    pub interface_type: u8,
    /// TEID or GRE key.
    pub teid: u32,
    /// IPv4 address when the V4 flag is set.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address when the V6 flag is set.
    pub ipv6: Option<Ipv6Addr>,
}

fn ipv6_at(v: &[u8], off: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = v.get(off..off + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(b))
}

fn ipv4_at(v: &[u8], off: usize) -> Option<Ipv4Addr> {
    be32(v, off).map(Ipv4Addr::from)
}

impl Fteid {
    /// Decode an F-TEID value: flags/interface octet, TEID (4), IPv4 (4) if V4, IPv6 (16) if
    /// V6. Error `gtpc: bad_length` when the value is shorter than its flags require.
    pub fn parse(v: &[u8]) -> Result<Fteid, DecodeError> {
        let bad = DecodeError::new(Layer::Gtpc, Reason::BadLength);
        let flags = *v.first().ok_or(bad)?;
        let teid = be32(v, 1).ok_or(bad)?;
        let mut off = 5;
        let ipv4 = if flags & 0x80 != 0 {
            off += 4;
            Some(ipv4_at(v, 5).ok_or(bad)?)
        } else {
            None
        };
        let ipv6 = if flags & 0x40 != 0 {
            Some(ipv6_at(v, off).ok_or(bad)?)
        } else {
            None
        };
        Ok(Fteid {
            interface_type: flags & 0x3f,
            teid,
            ipv4,
            ipv6,
        })
    }
}

/// PDN type IPv4 of a PAA (§8.34).
pub const PDN_IPV4: u8 = 1;
/// PDN type IPv6.
pub const PDN_IPV6: u8 = 2;
/// PDN type IPv4v6.
pub const PDN_IPV4V6: u8 = 3;

/// PDN Address Allocation (§8.14): the UE's address(es).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paa {
    /// PDN type (3 bits): 1 IPv4, 2 IPv6, 3 IPv4v6, 4 Non-IP, 5 Ethernet.
    pub pdn_type: u8,
    /// IPv4 address (types 1 and 3); 0.0.0.0 when the UE gets it later by DHCP.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 prefix length (types 2 and 3).
    pub ipv6_prefix_len: Option<u8>,
    /// IPv6 prefix/interface identifier (types 2 and 3).
    pub ipv6: Option<Ipv6Addr>,
}

impl Paa {
    /// Decode a PAA value: PDN type octet, then IPv4 (4) for type 1; prefix length (1) and
    /// IPv6 (16) for type 2; prefix length, IPv6 and IPv4 for type 3; nothing for other
    /// types. Error `gtpc: bad_length` when the value is shorter than the type requires.
    pub fn parse(v: &[u8]) -> Result<Paa, DecodeError> {
        let bad = DecodeError::new(Layer::Gtpc, Reason::BadLength);
        let pdn_type = v.first().ok_or(bad)? & 0x07;
        let mut p = Paa {
            pdn_type,
            ..Paa::default()
        };
        match pdn_type {
            PDN_IPV4 => p.ipv4 = Some(ipv4_at(v, 1).ok_or(bad)?),
            PDN_IPV6 | PDN_IPV4V6 => {
                p.ipv6_prefix_len = Some(*v.get(1).ok_or(bad)?);
                p.ipv6 = Some(ipv6_at(v, 2).ok_or(bad)?);
                if pdn_type == PDN_IPV4V6 {
                    p.ipv4 = Some(ipv4_at(v, 18).ok_or(bad)?);
                }
            }
            _ => {}
        }
        Ok(p)
    }
}

/// Cause (§8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    /// Cause value (16 = Request accepted, 17 = partially accepted, ≥ 64 rejections).
    pub value: u8,
    /// PCE: PDN Connection IE Error.
    pub pce: bool,
    /// BCE: Bearer Context IE Error.
    pub bce: bool,
    /// CS: Cause Source (1 = originated by the remote node).
    pub cs: bool,
    /// Type of the offending IE, when the Cause carries one (value of 6 octets).
    pub offending_ie: Option<u8>,
}

impl Cause {
    /// Decode a Cause value (2 or 6 octets). Error `gtpc: bad_length` for fewer than 2.
    pub fn parse(v: &[u8]) -> Result<Cause, DecodeError> {
        let bad = DecodeError::new(Layer::Gtpc, Reason::BadLength);
        let (&value, &f) = (v.first().ok_or(bad)?, v.get(1).ok_or(bad)?);
        Ok(Cause {
            value,
            pce: f & 0x04 != 0,
            bce: f & 0x02 != 0,
            cs: f & 0x01 != 0,
            offending_ie: if v.len() >= 6 { v.get(2).copied() } else { None },
        })
    }

    /// The value is in the acceptance range of a response (§8.4 Table 8.4-1: 16 Request
    /// accepted, 17 Request accepted partially, 18 and 19 New PDN type ..., 20-63 spare
    /// values reserved for acceptance). 2-15 are request causes, 64-239 rejections.
    pub fn is_accepted(&self) -> bool {
        (16..=63).contains(&self.value)
    }
}

/// EPS Bearer ID (§8.8): the low 4 bits of the first octet; `None` for an empty value.
pub fn parse_ebi(v: &[u8]) -> Option<u8> {
    v.first().map(|b| b & 0x0f)
}

/// An IMSI (§8.3) as up to 16 decimal digits (TBCD: low nibble first, 0xF filler).
///
/// Subscriber identity: for alerts and session state only, never a metric label.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Imsi {
    digits: [u8; 16],
    len: u8,
}

impl Imsi {
    /// Decode TBCD digits; `None` when a nibble other than the final filler is not 0..=9 or
    /// the value is empty or longer than 8 octets.
    pub fn parse(v: &[u8]) -> Option<Imsi> {
        if v.is_empty() || v.len() > 8 {
            return None;
        }
        let mut imsi = Imsi::default();
        for (i, b) in v.iter().enumerate() {
            for (k, nib) in [b & 0x0f, b >> 4].into_iter().enumerate() {
                match nib {
                    0..=9 => {
                        imsi.digits[usize::from(imsi.len)] = b'0' + nib;
                        imsi.len += 1;
                    }
                    0x0f if i + 1 == v.len() && k == 1 => {}
                    _ => return None,
                }
            }
        }
        Some(imsi)
    }

    /// The digits as a string.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for Imsi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Imsi({})", self.as_str())
    }
}

/// One F-TEID found in a message, with where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FteidEntry {
    /// The F-TEID.
    pub fteid: Fteid,
    /// Its IE instance (e.g. in a Create Session Request, instance 0 = Sender F-TEID for
    /// Control Plane, 1 = PGW S5/S8 address for Control Plane).
    pub instance: u8,
    /// EBI of the enclosing Bearer Context, when the F-TEID is inside one (and it has an EBI).
    pub bearer_ebi: Option<u8>,
    /// Whether the F-TEID is inside a Bearer Context.
    pub in_bearer_context: bool,
}

/// What a session table needs from one GTPv2-C message; see [`summarize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtpcSummary {
    /// Message type.
    pub message_type: u8,
    /// Header TEID (T flag set).
    pub teid: Option<u32>,
    /// Header sequence number.
    pub sequence: u32,
    /// The message-level Cause (first Cause IE outside Bearer Contexts).
    pub cause: Option<Cause>,
    /// Recovery restart counter.
    pub recovery: Option<u8>,
    /// PDN Address Allocation (first).
    pub paa: Option<Paa>,
    /// The message-level EPS Bearer ID (first EBI outside Bearer Contexts: the default
    /// bearer, or the Linked EBI).
    pub ebi: Option<u8>,
    /// IMSI (first).
    pub imsi: Option<Imsi>,
    /// Bearer Context IEs walked (all depths).
    pub bearer_contexts: u16,
    fteids: [FteidEntry; MAX_SUMMARY_FTEIDS],
    fteid_count: u8,
    /// F-TEIDs beyond [`MAX_SUMMARY_FTEIDS`] (not kept).
    pub fteids_omitted: u16,
    /// The first problem met while walking the IEs (the walk stops there; what came before
    /// is kept): `gtpc: ie_overrun`, `gtpc: bad_length` (a typed IE too short for its
    /// layout) or `gtpc: too_many_headers` (grouped IEs nested deeper than
    /// [`MAX_GROUP_DEPTH`]).
    pub error: Option<DecodeError>,
}

impl GtpcSummary {
    /// The F-TEIDs of the message in wire order (depth first), at most
    /// [`MAX_SUMMARY_FTEIDS`].
    pub fn fteids(&self) -> &[FteidEntry] {
        &self.fteids[..usize::from(self.fteid_count).min(MAX_SUMMARY_FTEIDS)]
    }

    fn push_fteid(&mut self, e: FteidEntry) {
        match self.fteids.get_mut(usize::from(self.fteid_count)) {
            Some(slot) => {
                *slot = e;
                self.fteid_count += 1;
            }
            None => self.fteids_omitted = self.fteids_omitted.saturating_add(1),
        }
    }
}

/// Walk the IEs of `msg` (and of its Bearer Contexts, depth-limited) and collect F-TEIDs,
/// PAA, Cause, Recovery, EBI and IMSI. Never fails: a problem is recorded in
/// [`GtpcSummary::error`]. No allocation.
pub fn summarize(msg: &Message<'_>) -> GtpcSummary {
    let mut s = GtpcSummary {
        message_type: msg.header.message_type,
        teid: msg.header.teid,
        sequence: msg.header.sequence,
        cause: None,
        recovery: None,
        paa: None,
        ebi: None,
        imsi: None,
        bearer_contexts: 0,
        fteids: [FteidEntry::default(); MAX_SUMMARY_FTEIDS],
        fteid_count: 0,
        fteids_omitted: 0,
        error: None,
    };
    if let Err(e) = walk(msg.ies, 0, None, &mut s) {
        s.error = Some(e);
    }
    s
}

/// `bearer`: `None` at message level, `Some(ebi)` inside a Bearer Context.
fn walk(octets: &[u8], depth: usize, bearer: Option<Option<u8>>, s: &mut GtpcSummary) -> Result<(), DecodeError> {
    for ie in ies(octets) {
        let ie = ie?;
        match ie.ie_type {
            IE_FTEID => s.push_fteid(FteidEntry {
                fteid: Fteid::parse(ie.value)?,
                instance: ie.instance,
                bearer_ebi: bearer.flatten(),
                in_bearer_context: bearer.is_some(),
            }),
            IE_PAA if s.paa.is_none() => s.paa = Some(Paa::parse(ie.value)?),
            IE_CAUSE if bearer.is_none() && s.cause.is_none() => s.cause = Some(Cause::parse(ie.value)?),
            IE_RECOVERY if s.recovery.is_none() => s.recovery = ie.value.first().copied(),
            IE_EBI if bearer.is_none() && s.ebi.is_none() => s.ebi = parse_ebi(ie.value),
            IE_IMSI if s.imsi.is_none() => s.imsi = Imsi::parse(ie.value),
            IE_BEARER_CONTEXT => {
                if depth + 1 > MAX_GROUP_DEPTH {
                    return Err(DecodeError::new(Layer::Gtpc, Reason::TooManyHeaders));
                }
                s.bearer_contexts = s.bearer_contexts.saturating_add(1);
                // The context's own EBI (instance 0), wherever it sits among its IEs.
                let ebi = ies(ie.value)
                    .map_while(Result::ok)
                    .find(|c| c.ie_type == IE_EBI && c.instance == 0)
                    .and_then(|c| parse_ebi(c.value));
                walk(ie.value, depth + 1, Some(ebi), s)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ie(t: u8, instance: u8, v: &[u8]) -> Vec<u8> {
        let mut out = vec![t, 0, v.len() as u8, instance];
        out.extend_from_slice(v);
        out
    }

    /// Header with T=1 (`flags` adds P/MP), TEID, sequence 0x000102, priority octet.
    fn msg(flags: u8, t: u8, teid: u32, prio: u8, body: &[u8]) -> Vec<u8> {
        let mut d = vec![0x48 | flags, t, 0, 0];
        d.extend_from_slice(&teid.to_be_bytes());
        d.extend_from_slice(&[0x00, 0x01, 0x02, prio]);
        d.extend_from_slice(body);
        let len = (d.len() - 4) as u16;
        d[2..4].copy_from_slice(&len.to_be_bytes());
        d
    }

    #[test]
    fn header_flags_teid_sequence_priority() {
        let d = msg(FLAG_MP, MSG_MODIFY_BEARER_REQUEST, 0xd37d1590, 0x30, &[]);
        let (m, rest) = parse_message(&d).unwrap();
        assert_eq!(
            m.header,
            Header {
                piggyback: false,
                message_priority: Some(3),
                message_type: 34,
                length: 8,
                teid: Some(0xd37d1590),
                sequence: 0x000102,
            }
        );
        assert!(rest.is_empty() && m.ies.is_empty() && !m.truncated);
        // Echo Request: T=0, 8-octet header, sequence in octets 5-7, Recovery 17.
        let echo = [0x40, 1, 0, 9, 0x00, 0x30, 0x39, 0, 3, 0, 1, 0, 17];
        let (m, _) = parse_message(&echo).unwrap();
        assert_eq!(
            (m.header.teid, m.header.sequence, m.header.message_priority),
            (None, 0x3039, None)
        );
        assert_eq!(summarize(&m).recovery, Some(17));
    }

    #[test]
    fn header_errors() {
        let err = |d: &[u8]| parse_message(d).unwrap_err();
        // GTPv1-C (version 1) on the shared port.
        assert_eq!(
            err(&[0x32, 0x10, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]).reason,
            Reason::BadVersion
        );
        assert_eq!(err(&[0x48, 32, 0, 4, 0, 0, 0, 0]).reason, Reason::BadLength);
        assert_eq!(err(&[0x48, 32, 0, 8, 0, 0, 0, 0]).reason, Reason::Truncated);
        assert_eq!(err(&[0x48]), DecodeError::new(Layer::Gtpc, Reason::Truncated));
        // Length beyond the bytes: usable, flagged, IEs cut.
        let mut d = msg(0, 32, 1, 0, &ie(IE_RECOVERY, 0, &[7]));
        d[3] += 10;
        let (m, rest) = parse_message(&d).unwrap();
        assert!(m.truncated && rest.is_empty());
        assert_eq!(m.ies.len(), 5);
    }

    #[test]
    fn piggybacked_message_is_walked() {
        // Create Session Response (P=1) carrying a piggybacked Create Bearer Request.
        let second = msg(0, MSG_CREATE_BEARER_REQUEST, 7, 0, &ie(IE_EBI, 0, &[5]));
        let mut d = msg(FLAG_P, MSG_CREATE_SESSION_RESPONSE, 6, 0, &ie(IE_CAUSE, 0, &[16, 0]));
        d.extend_from_slice(&second);
        let got: Vec<_> = messages(&d).collect();
        assert_eq!(got.len(), 2);
        let types: Vec<u8> = got.iter().map(|m| m.as_ref().unwrap().header.message_type).collect();
        assert_eq!(types, [33, 95]);
        assert_eq!(summarize(got[0].as_ref().unwrap()).cause.map(|c| c.value), Some(16));
        // P set but nothing follows: the missing message is an error.
        let lone = msg(FLAG_P, MSG_ECHO_REQUEST, 0, 0, &[]);
        let got: Vec<_> = messages(&lone).collect();
        assert!(got[0].is_ok());
        assert_eq!(got[1], Err(DecodeError::new(Layer::Gtpc, Reason::Truncated)));
        assert_eq!(got.len(), 2);
        // A piggybacked message that sets P again is beyond MAX_MESSAGES.
        let mut chain = msg(FLAG_P, 33, 1, 0, &[]);
        chain.extend_from_slice(&msg(FLAG_P, 95, 1, 0, &[]));
        chain.extend_from_slice(&msg(0, 95, 1, 0, &[]));
        let got: Vec<_> = messages(&chain).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], Err(DecodeError::new(Layer::Gtpc, Reason::TooManyHeaders)));
    }

    #[test]
    fn message_labels() {
        assert_eq!(message_label(1), "echo_request");
        assert_eq!(message_label(32), "create_session_request");
        assert_eq!(message_label(37), "delete_session_response");
        assert_eq!(message_label(95), "create_bearer_request");
        assert_eq!(message_label(100), "delete_bearer_response");
        assert_eq!(message_label(170), "release_access_bearers_request");
        assert_eq!(message_label(176), "downlink_data_notification");
        assert_eq!(message_label(4), "other");
        assert_eq!(message_index(255), MESSAGE_LABELS.len() - 1);
        assert_eq!(
            MESSAGE_LABELS[message_index(MSG_DDN_ACK)],
            "downlink_data_notification_acknowledge"
        );
    }

    #[test]
    fn ie_iterator_instance_and_overrun() {
        let mut b = ie(IE_RECOVERY, 0x21, &[9]);
        b.extend_from_slice(&[IE_EBI, 0, 5, 0, 1]);
        let mut it = ies(&b);
        let first = it.next().unwrap().unwrap();
        assert_eq!((first.ie_type, first.instance, first.value), (3, 1, &[9][..]));
        assert_eq!(it.next(), Some(Err(DecodeError::new(Layer::Gtpc, Reason::IeOverrun))));
        assert_eq!(it.next(), None);
        assert_eq!(
            ies(&[2, 0]).next(),
            Some(Err(DecodeError::new(Layer::Gtpc, Reason::IeOverrun)))
        );
    }

    #[test]
    fn fteid_layouts() {
        // V4, interface 10 (S11 MME GTP-C), TEID 1, 127.0.0.2.
        let f = Fteid::parse(&[0x8a, 0, 0, 0, 1, 127, 0, 0, 2]).unwrap();
        assert_eq!(
            f,
            Fteid {
                interface_type: 10,
                teid: 1,
                ipv4: Some(Ipv4Addr::new(127, 0, 0, 2)),
                ipv6: None
            }
        );
        // V4 + V6, interface 7 (S5/S8 PGW GTP-C).
        let mut v = vec![0xc7, 0, 0, 0, 2, 10, 0, 0, 1];
        v.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let f = Fteid::parse(&v).unwrap();
        assert_eq!(
            (f.interface_type, f.ipv4, f.ipv6),
            (7, Some(Ipv4Addr::new(10, 0, 0, 1)), Some(Ipv6Addr::LOCALHOST))
        );
        // V6 only: the address starts right after the TEID.
        let mut v = vec![0x41, 0, 0, 0, 3];
        v.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert_eq!(Fteid::parse(&v).unwrap().ipv6, Some(Ipv6Addr::LOCALHOST));
        // V4 flag without the address.
        assert_eq!(Fteid::parse(&[0x80, 0, 0, 0, 1]).unwrap_err().reason, Reason::BadLength);
    }

    #[test]
    fn paa_layouts() {
        assert_eq!(
            Paa::parse(&[1, 10, 45, 0, 2]).unwrap().ipv4,
            Some(Ipv4Addr::new(10, 45, 0, 2))
        );
        let mut v6 = vec![2, 64];
        v6.extend_from_slice(&"2001:db8:1::".parse::<Ipv6Addr>().unwrap().octets());
        let p = Paa::parse(&v6).unwrap();
        assert_eq!((p.pdn_type, p.ipv6_prefix_len, p.ipv4), (2, Some(64), None));
        let mut v46 = v6.clone();
        v46[0] = 3;
        v46.extend_from_slice(&[0, 0, 0, 0]);
        let p = Paa::parse(&v46).unwrap();
        assert_eq!(
            (p.ipv4, p.ipv6),
            (Some(Ipv4Addr::UNSPECIFIED), "2001:db8:1::".parse().ok())
        );
        assert_eq!(Paa::parse(&[3, 64]).unwrap_err().reason, Reason::BadLength);
        assert_eq!(Paa::parse(&[5]).unwrap().pdn_type, 5);
    }

    #[test]
    fn cause_ebi_imsi() {
        let c = Cause::parse(&[64, 0x05, 87, 0, 9, 0]).unwrap();
        assert_eq!(
            (c.value, c.pce, c.bce, c.cs, c.offending_ie),
            (64, true, false, true, Some(87))
        );
        assert_eq!(Cause::parse(&[16]).unwrap_err().reason, Reason::BadLength);
        let accepted = |v: u8| Cause::parse(&[v, 0]).unwrap().is_accepted();
        assert!(accepted(16) && accepted(17) && accepted(19) && accepted(63));
        assert!(!accepted(15) && !accepted(64) && !accepted(0) && !accepted(255));
        assert_eq!(parse_ebi(&[0xf5]), Some(5));
        // 001010123456789: TBCD with the filler in the last high nibble.
        let imsi = Imsi::parse(&[0x00, 0x01, 0x01, 0x21, 0x43, 0x65, 0x87, 0xf9]).unwrap();
        assert_eq!(imsi.as_str(), "001010123456789");
        assert_eq!(Imsi::parse(&[0xa0]), None);
    }

    #[test]
    fn summary_with_bearer_contexts() {
        // Create Session Response: Cause 16, sender F-TEID (S11/S4 SGW, instance 0), PAA,
        // Bearer Context { F-TEID S1-U SGW (instance 0) before EBI 5 }.
        let mut body = ie(IE_CAUSE, 0, &[16, 0]);
        body.extend(ie(IE_FTEID, 0, &[0x8b, 0, 0, 0, 1, 127, 0, 0, 3]));
        body.extend(ie(IE_PAA, 0, &[1, 10, 45, 0, 2]));
        let mut bc = ie(IE_FTEID, 0, &[0x81, 0, 0, 0, 2, 127, 0, 0, 6]);
        bc.extend(ie(IE_EBI, 0, &[5]));
        bc.extend(ie(IE_CAUSE, 0, &[64, 0]));
        body.extend(ie(IE_BEARER_CONTEXT, 0, &bc));
        let d = msg(0, MSG_CREATE_SESSION_RESPONSE, 1, 0, &body);
        let (m, _) = parse_message(&d).unwrap();
        let s = summarize(&m);
        assert_eq!(s.error, None);
        assert_eq!(s.cause.map(|c| c.value), Some(16), "bearer-level cause not taken");
        assert_eq!(s.paa.and_then(|p| p.ipv4), Some(Ipv4Addr::new(10, 45, 0, 2)));
        let f: Vec<(u8, u32, Option<u8>, bool)> = s
            .fteids()
            .iter()
            .map(|e| (e.fteid.interface_type, e.fteid.teid, e.bearer_ebi, e.in_bearer_context))
            .collect();
        assert_eq!(f, [(11, 1, None, false), (1, 2, Some(5), true)]);
        assert_eq!((s.bearer_contexts, s.ebi), (1, None));
    }

    #[test]
    fn summary_bounds() {
        // Bearer Contexts nested deeper than MAX_GROUP_DEPTH.
        let mut g = ie(IE_EBI, 0, &[5]);
        for _ in 0..MAX_GROUP_DEPTH + 1 {
            g = ie(IE_BEARER_CONTEXT, 0, &g);
        }
        let d = msg(0, MSG_CREATE_BEARER_REQUEST, 1, 0, &g);
        let (m, _) = parse_message(&d).unwrap();
        let s = summarize(&m);
        assert_eq!(s.error, Some(DecodeError::new(Layer::Gtpc, Reason::TooManyHeaders)));
        assert_eq!(s.bearer_contexts as usize, MAX_GROUP_DEPTH);
        // More F-TEIDs than kept.
        let mut body = Vec::new();
        for i in 0..MAX_SUMMARY_FTEIDS as u8 + 3 {
            body.extend(ie(IE_FTEID, 0, &[0x01, 0, 0, 0, i]));
        }
        let d = msg(0, MSG_CREATE_SESSION_REQUEST, 0, 0, &body);
        let s = summarize(&parse_message(&d).unwrap().0);
        assert_eq!((s.fteids().len(), s.fteids_omitted), (MAX_SUMMARY_FTEIDS, 3));
        assert_eq!(s.fteids()[15].fteid.teid, 15);
    }
}
