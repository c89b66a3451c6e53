//! PFCP, the N4/Sxa/Sxb protocol between control plane (SMF) and user plane (UPF), per
//! 3GPP TS 29.244: message header (§7.2.2), message types (§7.3, Table 7.3-1), information
//! elements (§8.1.1, Table 8.1.2-1) and the IEs a passive monitor needs to learn which
//! tunnel (F-TEID) and UE address belong to which session (§8.2).
//!
//! Like every decoder here: zero-copy views over `&[u8]`, lengths checked before use, no
//! allocation, no panic whatever the input. IE values are decoded on demand by the typed
//! functions at the end of this file (`fn(value: &[u8]) -> Option<T>`, `None` when the value
//! is shorter than its flags say).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::link::{be16, be32};
use super::{DecodeError, Layer, Reason};

/// UDP port of PFCP (TS 29.244 §4.2.2).
pub const PFCP_PORT: u16 = 8805;

/// Most nested levels of grouped IEs [`walk`] opens; a grouped IE below that is
/// `pfcp: too_deep`. The deepest nesting the session procedures use is 3 (Create PDR → PDI →
/// Ethernet Packet Filter).
pub const MAX_GROUP_DEPTH: usize = 4;

const FLAG_S: u8 = 0x01;
const FLAG_MP: u8 = 0x02;
const FLAG_FO: u8 = 0x04;
/// Octets before the Length field's coverage starts (flags, type, length).
const FIXED_LEN: usize = 4;

/// A PFCP message type (TS 29.244 Table 7.3-1). Open: any value survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(pub u8);

impl MessageType {
    /// Heartbeat Request (§7.4.2.1).
    pub const HEARTBEAT_REQUEST: MessageType = MessageType(1);
    /// Heartbeat Response (§7.4.2.2).
    pub const HEARTBEAT_RESPONSE: MessageType = MessageType(2);
    /// PFD Management Request (§7.4.3.1).
    pub const PFD_MANAGEMENT_REQUEST: MessageType = MessageType(3);
    /// PFD Management Response (§7.4.3.2).
    pub const PFD_MANAGEMENT_RESPONSE: MessageType = MessageType(4);
    /// Association Setup Request (§7.4.4.1).
    pub const ASSOCIATION_SETUP_REQUEST: MessageType = MessageType(5);
    /// Association Setup Response (§7.4.4.2).
    pub const ASSOCIATION_SETUP_RESPONSE: MessageType = MessageType(6);
    /// Association Update Request (§7.4.4.3).
    pub const ASSOCIATION_UPDATE_REQUEST: MessageType = MessageType(7);
    /// Association Update Response (§7.4.4.4).
    pub const ASSOCIATION_UPDATE_RESPONSE: MessageType = MessageType(8);
    /// Association Release Request (§7.4.4.5).
    pub const ASSOCIATION_RELEASE_REQUEST: MessageType = MessageType(9);
    /// Association Release Response (§7.4.4.6).
    pub const ASSOCIATION_RELEASE_RESPONSE: MessageType = MessageType(10);
    /// Version Not Supported Response (§7.4.4.7).
    pub const VERSION_NOT_SUPPORTED_RESPONSE: MessageType = MessageType(11);
    /// Node Report Request (§7.4.5.1).
    pub const NODE_REPORT_REQUEST: MessageType = MessageType(12);
    /// Node Report Response (§7.4.5.2).
    pub const NODE_REPORT_RESPONSE: MessageType = MessageType(13);
    /// Session Set Deletion Request (§7.4.6.1).
    pub const SESSION_SET_DELETION_REQUEST: MessageType = MessageType(14);
    /// Session Set Deletion Response (§7.4.6.2).
    pub const SESSION_SET_DELETION_RESPONSE: MessageType = MessageType(15);
    /// Session Establishment Request (§7.5.2).
    pub const SESSION_ESTABLISHMENT_REQUEST: MessageType = MessageType(50);
    /// Session Establishment Response (§7.5.3).
    pub const SESSION_ESTABLISHMENT_RESPONSE: MessageType = MessageType(51);
    /// Session Modification Request (§7.5.4).
    pub const SESSION_MODIFICATION_REQUEST: MessageType = MessageType(52);
    /// Session Modification Response (§7.5.5).
    pub const SESSION_MODIFICATION_RESPONSE: MessageType = MessageType(53);
    /// Session Deletion Request (§7.5.6).
    pub const SESSION_DELETION_REQUEST: MessageType = MessageType(54);
    /// Session Deletion Response (§7.5.7).
    pub const SESSION_DELETION_RESPONSE: MessageType = MessageType(55);
    /// Session Report Request (§7.5.8).
    pub const SESSION_REPORT_REQUEST: MessageType = MessageType(56);
    /// Session Report Response (§7.5.9).
    pub const SESSION_REPORT_RESPONSE: MessageType = MessageType(57);

    /// Stable snake_case name (a [`MESSAGE_LABELS`] entry); `"other"` for types outside
    /// 1–15 and 50–57.
    pub fn name(self) -> &'static str {
        MESSAGE_LABELS[label_index(self)]
    }

    /// Session-related message (types 50–99, §7.3): the header carries a SEID.
    pub fn is_session(self) -> bool {
        (50..=99).contains(&self.0)
    }

    /// A request of Table 7.3-1 (node requests are odd, session requests even).
    pub fn is_request(self) -> bool {
        match self.0 {
            1..=15 => self.0 % 2 == 1 && self.0 != 11,
            50..=57 => self.0 % 2 == 0,
            _ => false,
        }
    }

    /// A response of Table 7.3-1 (including Version Not Supported Response).
    pub fn is_response(self) -> bool {
        match self.0 {
            1..=15 => self.0 % 2 == 0 || self.0 == 11,
            50..=57 => self.0 % 2 == 1,
            _ => false,
        }
    }
}

/// Metric label of every message type [`label_index`] distinguishes: types 1–15, then
/// 50–57, then `"other"` (bounded label set for pre-registered series).
pub const MESSAGE_LABELS: [&str; 24] = [
    "heartbeat_request",
    "heartbeat_response",
    "pfd_management_request",
    "pfd_management_response",
    "association_setup_request",
    "association_setup_response",
    "association_update_request",
    "association_update_response",
    "association_release_request",
    "association_release_response",
    "version_not_supported_response",
    "node_report_request",
    "node_report_response",
    "session_set_deletion_request",
    "session_set_deletion_response",
    "session_establishment_request",
    "session_establishment_response",
    "session_modification_request",
    "session_modification_response",
    "session_deletion_request",
    "session_deletion_response",
    "session_report_request",
    "session_report_response",
    "other",
];

/// Index of `t` in [`MESSAGE_LABELS`] (the last index for unnamed types).
pub fn label_index(t: MessageType) -> usize {
    match t.0 {
        1..=15 => usize::from(t.0 - 1),
        50..=57 => usize::from(t.0 - 50) + 15,
        _ => MESSAGE_LABELS.len() - 1,
    }
}

/// A decoded PFCP message header (TS 29.244 §7.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PfcpHeader {
    /// Version (always 1 here; other versions are rejected).
    pub version: u8,
    /// FO (Follow On): another PFCP message follows this one in the same datagram
    /// (§7.2.2.1); it starts at [`PfcpHeader::message_len`].
    pub follow_on: bool,
    /// Message type.
    pub message_type: MessageType,
    /// Length field: octets after the first 4 (header rest plus IEs).
    pub length: u16,
    /// SEID when the S flag is set (session messages): the *receiver's* SEID, 0 in a
    /// Session Establishment Request.
    pub seid: Option<u64>,
    /// Sequence number (24 bits).
    pub sequence: u32,
    /// Message priority (4 bits, high nibble of the header's last octet) when the MP flag is
    /// set; 0 is the highest priority.
    pub priority: Option<u8>,
}

impl PfcpHeader {
    /// Octets of the whole message (4 + [`PfcpHeader::length`]).
    pub fn message_len(&self) -> usize {
        FIXED_LEN + usize::from(self.length)
    }
}

/// Parse the PFCP message at the start of `d` (a UDP payload).
///
/// Returns the header and the IE bytes, cut to the Length field (trailing bytes, e.g. a
/// follow-on message, are left out). Errors (layer `pfcp`): `truncated` (fewer octets than the
/// header, or than the Length field says), `bad_version` (version ≠ 1), `bad_length` (Length
/// shorter than the rest of the header).
pub fn parse(d: &[u8]) -> Result<(PfcpHeader, &[u8]), DecodeError> {
    let e = |r| DecodeError::new(Layer::Pfcp, r);
    let (Some(&flags), Some(&mtype), Some(length)) = (d.first(), d.get(1), be16(d, 2)) else {
        return Err(e(Reason::Truncated));
    };
    let version = flags >> 5;
    if version != 1 {
        return Err(e(Reason::BadVersion));
    }
    let s = flags & FLAG_S != 0;
    let hdr_len = FIXED_LEN + if s { 8 } else { 0 } + 4;
    let end = FIXED_LEN + usize::from(length);
    if end < hdr_len {
        return Err(e(Reason::BadLength));
    }
    let (Some(msg), Some(hdr)) = (d.get(..end), d.get(..hdr_len)) else {
        return Err(e(Reason::Truncated));
    };
    let (seid, seq_off) = if s {
        let hi = be32(hdr, 4).unwrap_or(0);
        let lo = be32(hdr, 8).unwrap_or(0);
        (Some((u64::from(hi) << 32) | u64::from(lo)), 12)
    } else {
        (None, 4)
    };
    let sequence = be32(hdr, seq_off).unwrap_or(0) >> 8;
    let priority = (flags & FLAG_MP != 0).then(|| hdr[hdr_len - 1] >> 4);
    let h = PfcpHeader {
        version,
        follow_on: flags & FLAG_FO != 0,
        message_type: MessageType(mtype),
        length,
        seid,
        sequence,
        priority,
    };
    Ok((h, &msg[hdr_len..]))
}

/// One information element (TS 29.244 §8.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ie<'a> {
    /// IE type; ≥ 32768 is vendor-specific.
    pub ie_type: u16,
    /// Enterprise ID (IANA SMI Network Management Private Enterprise Code) of a
    /// vendor-specific IE.
    pub enterprise_id: Option<u16>,
    /// Value octets (after the Enterprise ID for vendor-specific IEs).
    pub value: &'a [u8],
}

impl<'a> Ie<'a> {
    /// The IEs inside this IE's value, for grouped IEs (§8.1.1: a grouped IE's value is a
    /// list of IEs). No depth limit of its own: callers nest at most a fixed number of
    /// levels, or use [`walk`].
    pub fn children(&self) -> Ies<'a> {
        ies(self.value)
    }

    /// A grouped IE of Table 8.1.2-1 (see [`is_grouped`]) that is not vendor-specific.
    pub fn is_grouped(&self) -> bool {
        self.enterprise_id.is_none() && is_grouped(self.ie_type)
    }
}

/// Iterator over the IEs of a message or a grouped IE's value.
///
/// Yields `Err(pfcp: ie_overrun)` once and then stops when an IE header or value runs past
/// the bytes (or a vendor-specific IE is too short for its Enterprise ID).
#[derive(Debug, Clone)]
pub struct Ies<'a> {
    rest: &'a [u8],
}

/// Iterate over the IEs in `d`.
pub fn ies(d: &[u8]) -> Ies<'_> {
    Ies { rest: d }
}

impl<'a> Iterator for Ies<'a> {
    type Item = Result<Ie<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let d = self.rest;
        let overrun = Some(Err(DecodeError::new(Layer::Pfcp, Reason::IeOverrun)));
        let (Some(ie_type), Some(len)) = (be16(d, 0), be16(d, 2)) else {
            self.rest = &[];
            return overrun;
        };
        let Some(body) = d.get(4..4 + usize::from(len)) else {
            self.rest = &[];
            return overrun;
        };
        self.rest = &d[4 + usize::from(len)..];
        if ie_type & 0x8000 != 0 {
            // §8.1.1: the Length of a vendor-specific IE covers its Enterprise ID.
            let Some(eid) = be16(body, 0) else {
                self.rest = &[];
                return overrun;
            };
            return Some(Ok(Ie {
                ie_type,
                enterprise_id: Some(eid),
                value: &body[2..],
            }));
        }
        Some(Ok(Ie {
            ie_type,
            enterprise_id: None,
            value: body,
        }))
    }
}

/// Visit every IE of `d` depth-first, opening grouped IEs ([`Ie::is_grouped`]).
///
/// `visit` gets the grouped IE types above the IE (outermost first; empty at top level) and
/// the IE; a grouped IE is visited before its children. Stops at the first error:
/// `pfcp: ie_overrun` (see [`Ies`]) or `pfcp: too_deep` when a grouped IE sits more than
/// [`MAX_GROUP_DEPTH`] levels down. No allocation.
pub fn walk<'a>(d: &'a [u8], visit: &mut dyn FnMut(&[u16], &Ie<'a>)) -> Result<(), DecodeError> {
    let mut path = [0u16; MAX_GROUP_DEPTH];
    walk_at(d, &mut path, 0, visit)
}

fn walk_at<'a>(
    d: &'a [u8],
    path: &mut [u16; MAX_GROUP_DEPTH],
    depth: usize,
    visit: &mut dyn FnMut(&[u16], &Ie<'a>),
) -> Result<(), DecodeError> {
    for ie in ies(d) {
        let ie = ie?;
        visit(&path[..depth], &ie);
        if ie.is_grouped() {
            if depth >= MAX_GROUP_DEPTH {
                return Err(DecodeError::new(Layer::Pfcp, Reason::TooDeep));
            }
            path[depth] = ie.ie_type;
            walk_at(ie.value, path, depth + 1, visit)?;
        }
    }
    Ok(())
}

/// IE type numbers (TS 29.244 Table 8.1.2-1) used by fivewatch.
pub mod ie {
    /// Create PDR (grouped, Table 7.5.2.2-1).
    pub const CREATE_PDR: u16 = 1;
    /// PDI (grouped, Table 7.5.2.2-2).
    pub const PDI: u16 = 2;
    /// Create FAR (grouped, Table 7.5.2.3-1).
    pub const CREATE_FAR: u16 = 3;
    /// Forwarding Parameters (grouped, Table 7.5.2.3-2).
    pub const FORWARDING_PARAMETERS: u16 = 4;
    /// Create QER (grouped, Table 7.5.2.5-1).
    pub const CREATE_QER: u16 = 7;
    /// Created PDR (grouped, Table 7.5.3.2-1).
    pub const CREATED_PDR: u16 = 8;
    /// Update PDR (grouped, Table 7.5.4.2-1).
    pub const UPDATE_PDR: u16 = 9;
    /// Update FAR (grouped, Table 7.5.4.3-1).
    pub const UPDATE_FAR: u16 = 10;
    /// Update Forwarding Parameters (grouped, Table 7.5.4.3-2).
    pub const UPDATE_FORWARDING_PARAMETERS: u16 = 11;
    /// Update QER (grouped, Table 7.5.4.5-1).
    pub const UPDATE_QER: u16 = 14;
    /// Remove PDR (grouped, Table 7.5.4.6-1).
    pub const REMOVE_PDR: u16 = 15;
    /// Remove FAR (grouped, Table 7.5.4.7-1).
    pub const REMOVE_FAR: u16 = 16;
    /// Cause (§8.2.1).
    pub const CAUSE: u16 = 19;
    /// Source Interface (§8.2.2).
    pub const SOURCE_INTERFACE: u16 = 20;
    /// F-TEID (§8.2.3).
    pub const F_TEID: u16 = 21;
    /// Network Instance (§8.2.4).
    pub const NETWORK_INSTANCE: u16 = 22;
    /// Destination Interface (§8.2.24).
    pub const DESTINATION_INTERFACE: u16 = 42;
    /// Apply Action (§8.2.26).
    pub const APPLY_ACTION: u16 = 44;
    /// PDR ID (§8.2.36).
    pub const PDR_ID: u16 = 56;
    /// F-SEID (§8.2.37).
    pub const F_SEID: u16 = 57;
    /// Node ID (§8.2.38).
    pub const NODE_ID: u16 = 60;
    /// Outer Header Creation (§8.2.56).
    pub const OUTER_HEADER_CREATION: u16 = 84;
    /// UE IP Address (§8.2.62).
    pub const UE_IP_ADDRESS: u16 = 93;
    /// Outer Header Removal (§8.2.64).
    pub const OUTER_HEADER_REMOVAL: u16 = 95;
    /// Recovery Time Stamp (§8.2.65).
    pub const RECOVERY_TIME_STAMP: u16 = 96;
    /// FAR ID (§8.2.74).
    pub const FAR_ID: u16 = 108;
    /// QER ID (§8.2.75).
    pub const QER_ID: u16 = 109;
    /// QFI (§8.2.89).
    pub const QFI: u16 = 124;
    /// SMF Set ID (§8.2.140).
    pub const SMF_SET_ID: u16 = 180;
}

/// Grouped IE types of TS 29.244 Table 8.1.2-1 (Release 17), sorted.
pub const GROUPED_IE_TYPES: &[u16] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, // rules: create/update/remove
    51, 54, // load / overload control information
    58, 59, // application ID's PFDs, PFD context
    68, 77, 78, 79, 80, 83, // application detection info, query URR, usage reports, DL data report
    85, 86, 87, // create / update / remove BAR
    99, 102, 105, 118, // error indication report, UP path failure report, update dup., aggregated URRs
    127, 128, 129, 130, 132, 143, 147, // traffic endpoints, Ethernet packet filter / traffic info
    165, 166, 167, 168, 169, 175, 176, // MAR and access forwarding action information
    183, 187, 188, 189, 190, 195, // session retention, UP path recovery, IP multicast, bridge info
    199, 200, 201, 203, 205, // TSC management information, clock drift
    211, 212, 213, 214, 216, 217, 220, 221, 225, 226, 227, // SRR, access availability, ATSSS
    238, 239, 240, 242, 247, 252, 254, 256, // GTP-U path QoS, QoS monitoring, packet rate status
    261, 263, 264, 267, // RDS, packet rate status, UE IP address usage information
];

/// `t` is a grouped IE type ([`GROUPED_IE_TYPES`]).
pub fn is_grouped(t: u16) -> bool {
    GROUPED_IE_TYPES.binary_search(&t).is_ok()
}

fn v4(d: &[u8], off: usize) -> Option<Ipv4Addr> {
    be32(d, off).map(Ipv4Addr::from)
}

fn v6(d: &[u8], off: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = d.get(off..off + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(b))
}

/// Node ID (§8.2.38): octet 5 low nibble is the type, then the address or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeId<'a> {
    /// Type 0: IPv4 address.
    Ipv4(Ipv4Addr),
    /// Type 1: IPv6 address.
    Ipv6(Ipv6Addr),
    /// Type 2: FQDN, encoded as DNS labels (length octet + label, TS 23.003 §19.4.2.4). The
    /// raw encoded octets; see [`fqdn_labels`].
    Fqdn(&'a [u8]),
}

/// Decode a Node ID value; `None` for an unknown type or a short value.
pub fn node_id(v: &[u8]) -> Option<NodeId<'_>> {
    match v.first()? & 0x0f {
        0 => v4(v, 1).map(NodeId::Ipv4),
        1 => v6(v, 1).map(NodeId::Ipv6),
        2 if v.len() > 1 => Some(NodeId::Fqdn(&v[1..])),
        _ => None,
    }
}

/// The labels of a DNS-label-encoded name (length octet + label, repeated), stopping at a
/// zero length or at a label that runs past the bytes.
pub fn fqdn_labels(mut d: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (&n, rest) = d.split_first()?;
        let label = rest.get(..usize::from(n)).filter(|l| !l.is_empty())?;
        d = &rest[usize::from(n)..];
        Some(label)
    })
}

/// F-SEID (§8.2.37): flags (V6 bit 1, V4 bit 2), SEID (8 octets), IPv4 if V4, IPv6 if V6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FSeid {
    /// Session Endpoint Identifier allocated by the sender.
    pub seid: u64,
    /// Sender's IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// Sender's IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
}

/// Decode an F-SEID value; `None` when shorter than its flags say.
pub fn f_seid(v: &[u8]) -> Option<FSeid> {
    let flags = *v.first()?;
    let hi = be32(v, 1)?;
    let lo = be32(v, 5)?;
    let mut off = 9;
    let ipv4 = if flags & 0x02 != 0 {
        off += 4;
        Some(v4(v, off - 4)?)
    } else {
        None
    };
    let ipv6 = if flags & 0x01 != 0 { Some(v6(v, off)?) } else { None };
    Some(FSeid {
        seid: (u64::from(hi) << 32) | u64::from(lo),
        ipv4,
        ipv6,
    })
}

/// F-TEID (§8.2.3): flags V4 (bit 1), V6 (bit 2), CH (bit 3), CHID (bit 4). With CH=0:
/// TEID (4 octets), IPv4 if V4, IPv6 if V6. With CH=1 the UP function is asked to choose
/// the TEID and address: neither is present, only the CHOOSE ID octet when CHID=1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FTeid {
    /// TEID (absent when CH=1).
    pub teid: Option<u32>,
    /// IPv4 address (absent when CH=1).
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address (absent when CH=1).
    pub ipv6: Option<Ipv6Addr>,
    /// CH: the UP function allocates the F-TEID and returns it in Created PDR.
    pub choose: bool,
    /// With CH=1: the V4 / V6 flags, i.e. which address families the UP should allocate.
    pub choose_v4_v6: (bool, bool),
    /// CHOOSE ID (CHID=1): PDRs with the same CHOOSE ID share one allocated F-TEID.
    pub choose_id: Option<u8>,
}

/// Decode an F-TEID value; `None` when shorter than its flags say.
pub fn f_teid(v: &[u8]) -> Option<FTeid> {
    let flags = *v.first()?;
    let (has4, has6) = (flags & 0x01 != 0, flags & 0x02 != 0);
    if flags & 0x04 != 0 {
        let choose_id = if flags & 0x08 != 0 { Some(*v.get(1)?) } else { None };
        return Some(FTeid {
            teid: None,
            ipv4: None,
            ipv6: None,
            choose: true,
            choose_v4_v6: (has4, has6),
            choose_id,
        });
    }
    let teid = be32(v, 1)?;
    let mut off = 5;
    let ipv4 = if has4 {
        off += 4;
        Some(v4(v, off - 4)?)
    } else {
        None
    };
    let ipv6 = if has6 { Some(v6(v, off)?) } else { None };
    Some(FTeid {
        teid: Some(teid),
        ipv4,
        ipv6,
        choose: false,
        choose_v4_v6: (false, false),
        choose_id: None,
    })
}

/// UE IP Address (§8.2.62): flags V6 (bit 1), V4 (bit 2), S/D (bit 3), IPv6D (bit 4), CHV4
/// (bit 5), CHV6 (bit 6), IP6PL (bit 7); then IPv4 if V4, IPv6 if V6, IPv6 Prefix Delegation
/// Bits (1 octet) if IPv6D, IPv6 Prefix Length (1 octet) if IP6PL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UeIpAddress {
    /// UE IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// UE IPv6 address (or prefix, see [`UeIpAddress::ipv6_prefix_len`]).
    pub ipv6: Option<Ipv6Addr>,
    /// S/D = 1: the address is a destination address (in a PDR: downlink, detected on the
    /// core side); 0: a source address.
    pub destination: bool,
    /// IPv6 Prefix Delegation Bits: prefix bits delegated beyond the default /64 (8 = /56).
    pub ipv6_delegation_bits: Option<u8>,
    /// IPv6 Prefix Length (IP6PL): the prefix length of `ipv6`.
    pub ipv6_prefix_length: Option<u8>,
    /// CHV4: the UP function is asked to allocate the IPv4 address.
    pub choose_v4: bool,
    /// CHV6: the UP function is asked to allocate the IPv6 prefix.
    pub choose_v6: bool,
}

impl UeIpAddress {
    /// Prefix length of `ipv6`: IP6PL when present, else 64 minus the delegation bits, else
    /// the default /64 of a UE (TS 23.501 §5.8.2.2.3). At most 128.
    pub fn ipv6_prefix_len(&self) -> u8 {
        match (self.ipv6_prefix_length, self.ipv6_delegation_bits) {
            (Some(l), _) => l.min(128),
            (None, Some(b)) => 64u8.saturating_sub(b),
            (None, None) => 64,
        }
    }
}

/// Decode a UE IP Address value; `None` when shorter than its flags say.
pub fn ue_ip_address(v: &[u8]) -> Option<UeIpAddress> {
    let flags = *v.first()?;
    let mut off = 1;
    let ipv4 = if flags & 0x02 != 0 {
        off += 4;
        Some(v4(v, off - 4)?)
    } else {
        None
    };
    let ipv6 = if flags & 0x01 != 0 {
        off += 16;
        Some(v6(v, off - 16)?)
    } else {
        None
    };
    let ipv6_delegation_bits = if flags & 0x08 != 0 {
        off += 1;
        Some(*v.get(off - 1)?)
    } else {
        None
    };
    let ipv6_prefix_length = if flags & 0x40 != 0 { Some(*v.get(off)?) } else { None };
    Some(UeIpAddress {
        ipv4,
        ipv6,
        destination: flags & 0x04 != 0,
        ipv6_delegation_bits,
        ipv6_prefix_length,
        choose_v4: flags & 0x10 != 0,
        choose_v6: flags & 0x20 != 0,
    })
}

/// An interface value (low nibble of octet 5) of Source Interface (§8.2.2) or Destination
/// Interface (§8.2.24). Values 0–3 mean the same in both; 4 is "5G VN internal" as a source
/// but "LI function" as a destination, where 5G VN internal is 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interface(pub u8);

impl Interface {
    /// Access (N3/S1-U side: the gNB/eNB).
    pub const ACCESS: Interface = Interface(0);
    /// Core (N6/N9/SGi side).
    pub const CORE: Interface = Interface(1);
    /// SGi-LAN / N6-LAN.
    pub const SGI_LAN: Interface = Interface(2);
    /// CP-function.
    pub const CP_FUNCTION: Interface = Interface(3);
    /// 5G VN internal as a Source Interface.
    pub const SOURCE_5G_VN_INTERNAL: Interface = Interface(4);
    /// LI function as a Destination Interface.
    pub const DESTINATION_LI_FUNCTION: Interface = Interface(4);
    /// 5G VN internal as a Destination Interface.
    pub const DESTINATION_5G_VN_INTERNAL: Interface = Interface(5);
}

/// Decode a Source Interface value (§8.2.2).
pub fn source_interface(v: &[u8]) -> Option<Interface> {
    v.first().map(|b| Interface(b & 0x0f))
}

/// Decode a Destination Interface value (§8.2.24).
pub fn destination_interface(v: &[u8]) -> Option<Interface> {
    v.first().map(|b| Interface(b & 0x0f))
}

/// Outer Header Creation (§8.2.56): a 2-octet description bit field, then TEID if a GTP-U
/// bit is set, IPv4 if a v4 bit is set, IPv6 if a v6 bit is set, port number if a UDP bit
/// is set (C-TAG / S-TAG after that are not decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OuterHeaderCreation {
    /// Description: octet 5 in the high byte, octet 6 in the low byte (see the `OHC_*`
    /// constants).
    pub description: u16,
    /// TEID allocated by the remote tunnel endpoint (GTP-U).
    pub teid: Option<u32>,
    /// Remote IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// Remote IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// Remote UDP port (UDP/IP descriptions).
    pub port: Option<u16>,
}

/// Outer Header Creation description bit: GTP-U/UDP/IPv4.
pub const OHC_GTPU_UDP_IPV4: u16 = 0x0100;
/// Outer Header Creation description bit: GTP-U/UDP/IPv6.
pub const OHC_GTPU_UDP_IPV6: u16 = 0x0200;
/// Outer Header Creation description bit: UDP/IPv4.
pub const OHC_UDP_IPV4: u16 = 0x0400;
/// Outer Header Creation description bit: UDP/IPv6.
pub const OHC_UDP_IPV6: u16 = 0x0800;
/// Outer Header Creation description bit: IPv4.
pub const OHC_IPV4: u16 = 0x1000;
/// Outer Header Creation description bit: IPv6.
pub const OHC_IPV6: u16 = 0x2000;

/// Decode an Outer Header Creation value; `None` when shorter than its description says.
pub fn outer_header_creation(v: &[u8]) -> Option<OuterHeaderCreation> {
    let description = be16(v, 0)?;
    let has = |bits: u16| description & bits != 0;
    let mut off = 2;
    let teid = if has(OHC_GTPU_UDP_IPV4 | OHC_GTPU_UDP_IPV6) {
        off += 4;
        Some(be32(v, off - 4)?)
    } else {
        None
    };
    let ipv4 = if has(OHC_GTPU_UDP_IPV4 | OHC_UDP_IPV4 | OHC_IPV4) {
        off += 4;
        Some(v4(v, off - 4)?)
    } else {
        None
    };
    let ipv6 = if has(OHC_GTPU_UDP_IPV6 | OHC_UDP_IPV6 | OHC_IPV6) {
        off += 16;
        Some(v6(v, off - 16)?)
    } else {
        None
    };
    let port = if has(OHC_UDP_IPV4 | OHC_UDP_IPV6) {
        Some(be16(v, off)?)
    } else {
        None
    };
    Some(OuterHeaderCreation {
        description,
        teid,
        ipv4,
        ipv6,
        port,
    })
}

/// Cause (§8.2.1, Table 8.2.1-1). Open: any value survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cause(pub u8);

impl Cause {
    /// Request accepted (success).
    pub const REQUEST_ACCEPTED: Cause = Cause(1);
    /// More Usage Report to send (acceptance).
    pub const MORE_USAGE_REPORT_TO_SEND: Cause = Cause(2);
    /// Request rejected (reason not specified).
    pub const REQUEST_REJECTED: Cause = Cause(64);
    /// Session context not found.
    pub const SESSION_CONTEXT_NOT_FOUND: Cause = Cause(65);
    /// No established PFCP Association.
    pub const NO_ESTABLISHED_ASSOCIATION: Cause = Cause(72);

    /// Values 1–63 are acceptance causes, 64 and up rejections (0 is reserved).
    pub fn is_accepted(self) -> bool {
        (1..64).contains(&self.0)
    }
}

/// Decode a Cause value.
pub fn cause(v: &[u8]) -> Option<Cause> {
    v.first().map(|b| Cause(*b))
}

/// Seconds between the NTP era 0 epoch (1900-01-01) and the Unix epoch.
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Recovery Time Stamp (§8.2.65): when the sending node last (re)started, in the format of
/// the seconds part of an NTP timestamp (RFC 5905 §6): seconds since 1900-01-01 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecoveryTimeStamp(pub u32);

impl RecoveryTimeStamp {
    /// Seconds since the Unix epoch (negative before 1970). Values with the top bit clear are
    /// read as NTP era 1 (from 2036-02-07, RFC 4330 §3), as Wireshark does.
    pub fn unix_seconds(self) -> i64 {
        let s = i64::from(self.0);
        let offset = NTP_UNIX_OFFSET as i64;
        if self.0 & 0x8000_0000 != 0 {
            s - offset
        } else {
            s + (1i64 << 32) - offset
        }
    }
}

/// Decode a Recovery Time Stamp value (4 octets).
pub fn recovery_time_stamp(v: &[u8]) -> Option<RecoveryTimeStamp> {
    be32(v, 0).map(RecoveryTimeStamp)
}

/// Decode a QFI value (§8.2.89): the low 6 bits of octet 5.
pub fn qfi(v: &[u8]) -> Option<u8> {
    v.first().map(|b| b & 0x3f)
}

/// Decode a PDR ID value (§8.2.36): the 2-octet Rule ID.
pub fn pdr_id(v: &[u8]) -> Option<u16> {
    be16(v, 0)
}

/// Decode a FAR ID value (§8.2.74): 4 octets; the top bit says the FAR is predefined in
/// the UP function, and is kept as part of the identifier.
pub fn far_id(v: &[u8]) -> Option<u32> {
    be32(v, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ie_bytes(t: u16, v: &[u8]) -> Vec<u8> {
        let mut o = t.to_be_bytes().to_vec();
        o.extend_from_slice(&(v.len() as u16).to_be_bytes());
        o.extend_from_slice(v);
        o
    }

    #[test]
    fn header_session_message() {
        // Version 1, S=1, type 50, length 12 + 5 (one IE of 1 octet), SEID, seq 0x0a0b0c.
        let mut d = vec![0x21, 50, 0, 17, 0, 0, 0, 0, 0, 0, 0, 9, 0x0a, 0x0b, 0x0c, 0];
        d.extend(ie_bytes(19, &[1]));
        d.extend([0xee, 0xee]); // trailing padding is cut off
        let (h, body) = parse(&d).unwrap();
        assert_eq!(h.version, 1);
        assert_eq!(h.message_type, MessageType::SESSION_ESTABLISHMENT_REQUEST);
        assert_eq!(h.seid, Some(9));
        assert_eq!(h.sequence, 0x0a0b0c);
        assert_eq!((h.follow_on, h.priority), (false, None));
        assert_eq!(h.message_len(), 21);
        assert_eq!(body, &[0, 19, 0, 1, 1]);
    }

    #[test]
    fn header_node_message_and_flags() {
        // S=0: sequence then a spare octet; FO=1 and MP=1 with priority 5 in the high nibble.
        let d = [0x26, 1, 0, 4, 0, 0, 7, 0x50];
        let (h, body) = parse(&d).unwrap();
        assert_eq!((h.seid, h.sequence, h.follow_on, h.priority), (None, 7, true, Some(5)));
        assert_eq!(h.message_type.name(), "heartbeat_request");
        assert!(body.is_empty());
        let big_seid = [0x21, 55, 0, 12, 0x80, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0];
        assert_eq!(parse(&big_seid).unwrap().0.seid, Some(0x8000_0000_0000_0001));
        assert_eq!(parse(&big_seid).unwrap().0.sequence, 0xff_ffff);
    }

    #[test]
    fn header_errors() {
        let pfcp = |r| Err(DecodeError::new(Layer::Pfcp, r));
        assert_eq!(parse(&[0x20, 1, 0]), pfcp(Reason::Truncated));
        assert_eq!(parse(&[0x40, 1, 0, 4, 0, 0, 1, 0]), pfcp(Reason::BadVersion));
        // S=1 needs length ≥ 12.
        assert_eq!(parse(&[0x21, 50, 0, 4, 0, 0, 1, 0]), pfcp(Reason::BadLength));
        // Length says 8 more octets than present.
        assert_eq!(parse(&[0x20, 1, 0, 12, 0, 0, 1, 0]), pfcp(Reason::Truncated));
    }

    #[test]
    fn message_type_labels() {
        assert_eq!(MessageType(5).name(), "association_setup_request");
        assert_eq!(MessageType(11).name(), "version_not_supported_response");
        assert_eq!(MessageType(15).name(), "session_set_deletion_response");
        assert_eq!(MessageType(50).name(), "session_establishment_request");
        assert_eq!(MessageType(57).name(), "session_report_response");
        assert_eq!(MessageType(16).name(), "other");
        assert_eq!(MessageType(0).name(), "other");
        assert_eq!(MessageType(255).name(), "other");
        assert!(MessageType(54).is_request() && MessageType(55).is_response());
        assert!(MessageType(11).is_response() && !MessageType(11).is_request());
        assert!(MessageType(1).is_request() && !MessageType(1).is_session());
        let mut seen: Vec<usize> = (0..=255u8).map(|t| label_index(MessageType(t))).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), MESSAGE_LABELS.len(), "every label reachable, none beyond");
    }

    #[test]
    fn ie_iterator_plain_enterprise_and_overrun() {
        let mut d = ie_bytes(60, &[0, 10, 0, 0, 1]);
        // Vendor IE 32770, length 5 = Enterprise ID 18681 (0x48f9) + 3 value octets.
        d.extend([0x80, 0x02, 0, 5, 0x48, 0xf9, 1, 2, 3]);
        d.extend([0, 19, 0, 9, 1]); // Cause claiming 9 octets, 1 present
        let v: Vec<_> = ies(&d).collect();
        assert_eq!(v.len(), 3);
        let a = v[0].unwrap();
        assert_eq!((a.ie_type, a.enterprise_id, a.value), (60, None, &[0, 10, 0, 0, 1][..]));
        let b = v[1].unwrap();
        assert_eq!(
            (b.ie_type, b.enterprise_id, b.value),
            (32770, Some(18681), &[1, 2, 3][..])
        );
        assert_eq!(v[2], Err(DecodeError::new(Layer::Pfcp, Reason::IeOverrun)));
        // A partial IE header, and a vendor IE too short for its Enterprise ID.
        assert_eq!(ies(&[0, 19, 0]).collect::<Vec<_>>().len(), 1);
        assert!(ies(&[0, 19, 0]).next().unwrap().is_err());
        assert!(ies(&[0x80, 1, 0, 1, 7]).next().unwrap().is_err());
        assert_eq!(ies(&[]).count(), 0);
    }

    #[test]
    fn walk_groups_and_depth_limit() {
        // Create PDR { PDR ID 7, PDI { Source Interface access } }.
        let pdi = ie_bytes(ie::PDI, &ie_bytes(ie::SOURCE_INTERFACE, &[0]));
        let mut pdr_body = ie_bytes(ie::PDR_ID, &[0, 7]);
        pdr_body.extend(&pdi);
        let msg = ie_bytes(ie::CREATE_PDR, &pdr_body);
        let mut seen = Vec::new();
        walk(&msg, &mut |path, ie| seen.push((path.to_vec(), ie.ie_type))).unwrap();
        assert_eq!(seen, vec![(vec![], 1), (vec![1], 56), (vec![1], 2), (vec![1, 2], 20),]);
        // Nest grouped IEs deeper than the limit: PDI inside PDI ... (MAX + 1 levels).
        let mut nested = ie_bytes(ie::SOURCE_INTERFACE, &[0]);
        for _ in 0..=MAX_GROUP_DEPTH {
            nested = ie_bytes(ie::PDI, &nested);
        }
        assert_eq!(
            walk(&nested, &mut |_, _| {}),
            Err(DecodeError::new(Layer::Pfcp, Reason::TooDeep))
        );
        // Exactly MAX levels of grouping is fine.
        let mut ok = ie_bytes(ie::SOURCE_INTERFACE, &[0]);
        for _ in 0..MAX_GROUP_DEPTH {
            ok = ie_bytes(ie::PDI, &ok);
        }
        assert_eq!(walk(&ok, &mut |_, _| {}), Ok(()));
        // An overrun inside a group is reported.
        let bad = ie_bytes(ie::PDI, &[0, 20, 0, 5, 0]);
        assert_eq!(
            walk(&bad, &mut |_, _| {}),
            Err(DecodeError::new(Layer::Pfcp, Reason::IeOverrun))
        );
        assert!(is_grouped(267) && is_grouped(1) && !is_grouped(21) && !is_grouped(19));
        assert!(GROUPED_IE_TYPES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn node_id_types() {
        assert_eq!(
            node_id(&[0, 127, 0, 0, 4]),
            Some(NodeId::Ipv4(Ipv4Addr::new(127, 0, 0, 4)))
        );
        let mut v6b = vec![0xf1]; // spare bits ignored, type 1
        v6b.extend(Ipv6Addr::LOCALHOST.octets());
        assert_eq!(node_id(&v6b), Some(NodeId::Ipv6(Ipv6Addr::LOCALHOST)));
        let f = [2, 3, b'u', b'p', b'f', 3, b'l', b'a', b'b'];
        let Some(NodeId::Fqdn(raw)) = node_id(&f) else { panic!() };
        assert_eq!(fqdn_labels(raw).collect::<Vec<_>>(), vec![&b"upf"[..], &b"lab"[..]]);
        assert_eq!(fqdn_labels(&[5, b'a']).count(), 0, "label past the end");
        assert_eq!(node_id(&[0, 1, 2, 3]), None);
        assert_eq!(node_id(&[3, 1, 2, 3, 4]), None);
        assert_eq!(node_id(&[2]), None);
    }

    #[test]
    fn f_seid_layouts() {
        // V4 only: flags 0x02, SEID 1, 127.0.0.4 (frame 119 of the 5G SA capture).
        let v = [2, 0, 0, 0, 0, 0, 0, 0, 1, 127, 0, 0, 4];
        assert_eq!(
            f_seid(&v),
            Some(FSeid {
                seid: 1,
                ipv4: Some(Ipv4Addr::new(127, 0, 0, 4)),
                ipv6: None
            })
        );
        let mut both = vec![3, 0, 0, 0, 0, 0, 0, 1, 0, 10, 0, 0, 1];
        both.extend(Ipv6Addr::LOCALHOST.octets());
        let s = f_seid(&both).unwrap();
        assert_eq!(
            (s.seid, s.ipv4, s.ipv6),
            (256, Some(Ipv4Addr::new(10, 0, 0, 1)), Some(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(f_seid(&both[..both.len() - 1]), None);
        assert_eq!(f_seid(&[0, 0, 0, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn f_teid_layouts() {
        // V4+V6, TEID 1, 127.0.0.7, ::1 (frame 119).
        let mut v = vec![0x03, 0, 0, 0, 1, 127, 0, 0, 7];
        v.extend(Ipv6Addr::LOCALHOST.octets());
        let t = f_teid(&v).unwrap();
        assert_eq!(
            (t.teid, t.ipv4, t.ipv6, t.choose),
            (
                Some(1),
                Some(Ipv4Addr::new(127, 0, 0, 7)),
                Some(Ipv6Addr::LOCALHOST),
                false
            )
        );
        // CH=1, CHID=1, V4: no TEID, no address, CHOOSE ID 9.
        let c = f_teid(&[0x0d, 9]).unwrap();
        assert_eq!(
            (c.teid, c.ipv4, c.choose, c.choose_v4_v6, c.choose_id),
            (None, None, true, (true, false), Some(9))
        );
        assert_eq!(f_teid(&[0x05]).unwrap().choose_id, None);
        assert_eq!(f_teid(&[0x0c]), None, "CHID without the CHOOSE ID octet");
        assert_eq!(f_teid(&[0x01, 0, 0, 0, 1, 127]), None);
    }

    #[test]
    fn ue_ip_address_layouts() {
        // S/D=1, V4+V6: 10.45.0.2, cafe::2 (frame 119).
        let mut v = vec![0x07, 10, 45, 0, 2];
        v.extend("cafe::2".parse::<Ipv6Addr>().unwrap().octets());
        let u = ue_ip_address(&v).unwrap();
        assert_eq!(u.ipv4, Some(Ipv4Addr::new(10, 45, 0, 2)));
        assert_eq!(u.ipv6, Some("cafe::2".parse().unwrap()));
        assert!(u.destination);
        assert_eq!(
            (u.ipv6_delegation_bits, u.ipv6_prefix_length, u.ipv6_prefix_len()),
            (None, None, 64)
        );
        // V6 + IPv6D (8 bits → /56) + IP6PL (48).
        let mut d = vec![0x49];
        d.extend(Ipv6Addr::LOCALHOST.octets());
        d.extend([8, 48]);
        let u = ue_ip_address(&d).unwrap();
        assert_eq!(
            (u.ipv6_delegation_bits, u.ipv6_prefix_length, u.ipv6_prefix_len()),
            (Some(8), Some(48), 48)
        );
        d.pop();
        assert_eq!(ue_ip_address(&d), None);
        d[0] = 0x09;
        assert_eq!(ue_ip_address(&d).unwrap().ipv6_prefix_len(), 56);
        // CHV4 only: no address.
        let c = ue_ip_address(&[0x10]).unwrap();
        assert!(c.choose_v4 && c.ipv4.is_none() && !c.destination);
    }

    #[test]
    fn interfaces_cause_qfi_ids() {
        assert_eq!(source_interface(&[0xf0]), Some(Interface::ACCESS));
        assert_eq!(source_interface(&[1]), Some(Interface::CORE));
        assert_eq!(source_interface(&[4]), Some(Interface::SOURCE_5G_VN_INTERNAL));
        assert_eq!(destination_interface(&[5]), Some(Interface::DESTINATION_5G_VN_INTERNAL));
        assert_eq!(source_interface(&[]), None);
        assert!(cause(&[1]).unwrap().is_accepted());
        assert!(!cause(&[64]).unwrap().is_accepted());
        assert!(!Cause(0).is_accepted());
        assert_eq!(qfi(&[0xc9]), Some(9));
        assert_eq!(pdr_id(&[0, 2]), Some(2));
        assert_eq!(far_id(&[0x80, 0, 0, 1]), Some(0x8000_0001));
        assert_eq!(far_id(&[0, 0, 1]), None);
    }

    #[test]
    fn outer_header_creation_layouts() {
        // GTP-U/UDP/IPv4 (256), TEID 1, 127.0.0.2 (frame 133).
        let o = outer_header_creation(&[1, 0, 0, 0, 0, 1, 127, 0, 0, 2]).unwrap();
        assert_eq!(
            (o.description, o.teid, o.ipv4, o.ipv6, o.port),
            (256, Some(1), Some(Ipv4Addr::new(127, 0, 0, 2)), None, None)
        );
        // UDP/IPv6 with port 2152.
        let mut v = vec![0x08, 0];
        v.extend(Ipv6Addr::LOCALHOST.octets());
        v.extend(2152u16.to_be_bytes());
        let o = outer_header_creation(&v).unwrap();
        assert_eq!(
            (o.teid, o.ipv4, o.ipv6, o.port),
            (None, None, Some(Ipv6Addr::LOCALHOST), Some(2152))
        );
        assert_eq!(outer_header_creation(&v[..v.len() - 1]), None);
        assert_eq!(outer_header_creation(&[1, 0, 0, 0, 0, 1, 127]), None);
    }

    #[test]
    fn recovery_time_stamp_eras() {
        // The Recovery Time Stamp of the 5G SA capture: tshark shows 2020-08-22 15:53:09 UTC,
        // Unix 1598111589 (NTP 3807100389 = 0xe2ebbde5).
        let r = recovery_time_stamp(&[0xe2, 0xeb, 0xbd, 0xe5]).unwrap();
        assert_eq!(r.unix_seconds(), 1_598_111_589);
        // 2000-01-01T00:00:00Z is Unix 946684800 and NTP 3155673600.
        assert_eq!(RecoveryTimeStamp(3_155_673_600).unix_seconds(), 946_684_800);
        // Era 1: NTP 0 is 2036-02-07T06:28:16Z = Unix 2085978496.
        assert_eq!(RecoveryTimeStamp(0).unix_seconds(), 2_085_978_496);
        // The oldest era-0 value, 0x80000000, is 1968-01-20T03:14:08Z: before the Unix epoch.
        assert_eq!(RecoveryTimeStamp(0x8000_0000).unix_seconds(), -61_505_152);
        assert_eq!(RecoveryTimeStamp(u32::MAX).unix_seconds(), 2_085_978_495);
        assert_eq!(recovery_time_stamp(&[1, 2, 3]), None);
    }
}
