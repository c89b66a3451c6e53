//! GTP-U header (3GPP TS 29.281 §5.1), extension-header chain (§5.2), the PDU Session
//! Container (TS 38.415 §5.5.2) and the information elements of the path-management and
//! tunnel-management messages (TS 29.281 §7, §8).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::link::{be16, be32};
use super::{DecodeError, Layer, Reason};

/// UDP port of GTP-U (TS 29.281 §4.4.2.3).
pub const GTPU_PORT: u16 = 2152;
/// Message type of a G-PDU: a tunnelled user packet (TS 29.281 Table 6.1-1).
pub const MSG_GPDU: u8 = 255;
/// Message type Echo Request.
pub const MSG_ECHO_REQUEST: u8 = 1;
/// Message type Echo Response.
pub const MSG_ECHO_RESPONSE: u8 = 2;
/// Message type Error Indication.
pub const MSG_ERROR_INDICATION: u8 = 26;
/// Message type Supported Extension Headers Notification.
pub const MSG_SUPPORTED_EXT_HEADERS_NOTIFICATION: u8 = 31;
/// Message type End Marker.
pub const MSG_END_MARKER: u8 = 254;

/// GTP-U message label names (metric label values), indexed by [`message_index`]. The last
/// one, `other`, covers every type TS 29.281 Table 6.1-1 does not define for GTP-U (GTPv1-C
/// types on the GTP-U port, Tunnel Status, junk).
pub const MESSAGE_LABELS: [&str; 7] = [
    "g_pdu",
    "echo_request",
    "echo_response",
    "error_indication",
    "supported_extension_headers_notification",
    "end_marker",
    "other",
];

/// Index of GTP-U message type `t` in [`MESSAGE_LABELS`] (6, `other`, for unnamed types).
pub const fn message_index(t: u8) -> usize {
    match t {
        MSG_GPDU => 0,
        MSG_ECHO_REQUEST => 1,
        MSG_ECHO_RESPONSE => 2,
        MSG_ERROR_INDICATION => 3,
        MSG_SUPPORTED_EXT_HEADERS_NOTIFICATION => 4,
        MSG_END_MARKER => 5,
        _ => 6,
    }
}
/// Extension header type of the PDU Session Container (TS 29.281 §5.2.1.3).
pub const EXT_PDU_SESSION_CONTAINER: u8 = 0x85;
/// Extension header types with a name (TS 29.281 §5.2.1, Table 5.2.1-3), in the bit order
/// of [`GtpuHeader::ext_types`]; bit 8 stands for any other type.
pub const EXT_TYPES: [(u8, &str); 8] = [
    (0x20, "service_class_indicator"),
    (0x40, "udp_port"),
    (0x81, "ran_container"),
    (0x82, "long_pdcp_pdu_number"),
    (0x83, "xw_ran_container"),
    (0x84, "nr_ran_container"),
    (0x85, "pdu_session_container"),
    (0xc0, "pdcp_pdu_number"),
];

/// Bit of [`GtpuHeader::ext_types`] for extension header type `t`.
#[inline]
fn ext_bit(t: u8) -> u16 {
    match EXT_TYPES.iter().position(|(v, _)| *v == t) {
        Some(i) => 1 << i,
        None => 1 << EXT_TYPES.len(),
    }
}

/// Most extension headers walked before `gtpu: too_many_headers`.
pub const MAX_EXT_HEADERS: usize = 16;

const FLAG_E: u8 = 0x04;
const FLAG_S: u8 = 0x02;
const FLAG_PN: u8 = 0x01;
const FLAG_PT: u8 = 0x10;
const MANDATORY_LEN: usize = 8;

/// PDU Type of the DL PDU SESSION INFORMATION frame (TS 38.415 §5.5.3.1).
pub const PSC_DL: u8 = 0;
/// PDU Type of the UL PDU SESSION INFORMATION frame.
pub const PSC_UL: u8 = 1;

/// QoS information from a PDU Session Container (TS 38.415 §5.5.2.1 DL, §5.5.2.2 UL).
///
/// Only the flags of the frame's own layout are set: the DL fields (`msnp`, `ppp`, `rqi`,
/// `ppi`) stay false/`None` for an UL frame and the UL fields (`dl_delay_ind`,
/// `ul_delay_ind`, `n3n9_delay_ind`, `new_ie_flag`) for a DL frame. PDU types other than 0
/// and 1 give only `pdu_type` and `qfi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PduSessionInfo {
    /// PDU Type (4 bits): 0 = DL PDU SESSION INFORMATION, 1 = UL PDU SESSION INFORMATION.
    pub pdu_type: u8,
    /// QoS Flow Identifier (6 bits, 0..=63).
    pub qfi: u8,
    /// QoS Monitoring Packet flag (DL and UL, octet 1 bit 4): time stamps follow.
    pub qmp: bool,
    /// Sequence Number Presence (DL octet 1 bit 3; UL octet 1 bit 1): a QFI sequence number
    /// follows.
    pub snp: bool,
    /// DL: MBS Sequence Number Presence (octet 1 bit 2, Rel-17).
    pub msnp: bool,
    /// DL: Paging Policy Presence (octet 2 bit 8): the PPI octet follows.
    pub ppp: bool,
    /// DL: Reflective QoS Indicator (octet 2 bit 7).
    pub rqi: bool,
    /// DL: Paging Policy Indicator (3 bits, 0..=7) from octet 3, when `ppp` is set and the
    /// container is long enough to hold octet 3.
    pub ppi: Option<u8>,
    /// UL: DL Delay Ind. (octet 1 bit 3): a DL Delay Result follows.
    pub dl_delay_ind: bool,
    /// UL: UL Delay Ind. (octet 1 bit 2): an UL Delay Result follows.
    pub ul_delay_ind: bool,
    /// UL: N3/N9 Delay Ind. (octet 2 bit 8).
    pub n3n9_delay_ind: bool,
    /// UL: New IE Flag (octet 2 bit 7): a New IE Flags octet follows.
    pub new_ie_flag: bool,
}

impl PduSessionInfo {
    /// Decode the content of a PDU Session Container: the octets after the extension header's
    /// length octet, without the trailing next-type octet (`4 * length - 2` octets).
    ///
    /// `None` when fewer than 2 octets are given. Optional fields beyond octet 3 (time
    /// stamps, delay results, sequence numbers) are not decoded.
    pub fn parse(content: &[u8]) -> Option<PduSessionInfo> {
        let (&o1, &o2) = (content.first()?, content.get(1)?);
        let mut p = PduSessionInfo {
            pdu_type: o1 >> 4,
            qfi: o2 & 0x3f,
            qmp: o1 & 0x08 != 0,
            ..PduSessionInfo::default()
        };
        match p.pdu_type {
            PSC_DL => {
                p.snp = o1 & 0x04 != 0;
                p.msnp = o1 & 0x02 != 0;
                p.ppp = o2 & 0x80 != 0;
                p.rqi = o2 & 0x40 != 0;
                if p.ppp {
                    p.ppi = content.get(2).map(|b| b >> 5);
                }
            }
            PSC_UL => {
                p.dl_delay_ind = o1 & 0x04 != 0;
                p.ul_delay_ind = o1 & 0x02 != 0;
                p.snp = o1 & 0x01 != 0;
                p.n3n9_delay_ind = o2 & 0x80 != 0;
                p.new_ie_flag = o2 & 0x40 != 0;
            }
            _ => {}
        }
        Some(p)
    }
}

/// A decoded GTPv1-U header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtpuHeader {
    /// Message type (255 = G-PDU).
    pub message_type: u8,
    /// Length field: octets after the mandatory 8-octet header.
    pub length: u16,
    /// Tunnel Endpoint Identifier, allocated by the receiving endpoint.
    pub teid: u32,
    /// Sequence number when the S flag is set.
    pub sequence: Option<u16>,
    /// Number of extension headers walked.
    pub ext_headers: u8,
    /// Extension header types present: bit `i` for `EXT_TYPES[i]`, bit 8 for any other.
    pub ext_types: u16,
    /// PDU Session Container contents, when present.
    pub pdu_session: Option<PduSessionInfo>,
    /// The captured bytes end before the GTP-U length does (snap length or an outer IP
    /// fragment): the T-PDU is incomplete. Also set when the length field itself is too large
    /// for a complete UDP datagram; the IP decoder then reports `gtpu: bad_length` instead of
    /// `gtpu: truncated`.
    pub truncated: bool,
}

/// Parse a GTP-U header at the start of a UDP payload.
///
/// Returns the header and the T-PDU (the bytes after the optional fields and extension
/// headers, cut to the GTP-U length). Errors (layer `gtpu`): `truncated` (fewer than 8
/// octets, or the option block cut), `bad_version` (version ≠ 1), `not_gtpu` (PT = 0, GTP'),
/// `bad_length` (length shorter than the option block), `ext_header_zero_length`,
/// `ext_header_overrun` (an extension header runs past the GTP-U length),
/// `too_many_headers` (more than [`MAX_EXT_HEADERS`]).
pub fn parse(d: &[u8]) -> Result<(GtpuHeader, &[u8]), DecodeError> {
    let e = |r| DecodeError::new(Layer::Gtpu, r);
    if d.len() < MANDATORY_LEN {
        return Err(e(Reason::Truncated));
    }
    let flags = d[0];
    if flags >> 5 != 1 {
        return Err(e(Reason::BadVersion));
    }
    if flags & FLAG_PT == 0 {
        return Err(e(Reason::NotGtpu));
    }
    let length = be16(d, 2).unwrap_or(0);
    let teid = be32(d, 4).unwrap_or(0);
    let end_declared = MANDATORY_LEN + usize::from(length);
    let truncated = end_declared > d.len();
    let end = end_declared.min(d.len());
    let mut h = GtpuHeader {
        message_type: d[1],
        length,
        teid,
        sequence: None,
        ext_headers: 0,
        ext_types: 0,
        pdu_session: None,
        truncated,
    };
    if flags & (FLAG_E | FLAG_S | FLAG_PN) == 0 {
        return Ok((h, &d[MANDATORY_LEN..end]));
    }
    if end_declared < MANDATORY_LEN + 4 {
        return Err(e(Reason::BadLength));
    }
    if d.len() < MANDATORY_LEN + 4 {
        return Err(e(Reason::Truncated));
    }
    if flags & FLAG_S != 0 {
        h.sequence = be16(d, 8);
    }
    let mut next = if flags & FLAG_E != 0 { d[11] } else { 0 };
    let mut off = MANDATORY_LEN + 4;
    while next != 0 {
        if usize::from(h.ext_headers) >= MAX_EXT_HEADERS {
            return Err(e(Reason::TooManyHeaders));
        }
        let Some(&len_units) = d.get(off) else {
            return if truncated {
                Ok((h, &[]))
            } else {
                Err(e(Reason::ExtHeaderOverrun))
            };
        };
        if len_units == 0 {
            return Err(e(Reason::ExtHeaderZeroLength));
        }
        let len = usize::from(len_units) * 4;
        if off + len > end_declared {
            return Err(e(Reason::ExtHeaderOverrun));
        }
        if off + len > d.len() {
            return Ok((h, &[]));
        }
        if next == EXT_PDU_SESSION_CONTAINER {
            h.pdu_session = PduSessionInfo::parse(&d[off + 1..off + len - 1]);
        }
        h.ext_headers += 1;
        h.ext_types |= ext_bit(next);
        next = d[off + len - 1];
        off += len;
    }
    Ok((h, d.get(off..end).unwrap_or(&[])))
}

/// IE type Recovery (TS 29.281 §8.2): TV, 1 octet restart counter.
pub const IE_RECOVERY: u8 = 14;
/// IE type Tunnel Endpoint Identifier Data I (§8.3): TV, 4 octets.
pub const IE_TEID_DATA_I: u8 = 16;
/// IE type GTP-U Peer Address (§8.4): TLV, an IPv4 (4 octets) or IPv6 (16 octets) address.
pub const IE_PEER_ADDRESS: u8 = 133;
/// IE type Extension Header Type List (§8.5): type, a 1-octet length, then one octet per
/// supported extension header type.
pub const IE_EXT_HEADER_TYPE_LIST: u8 = 141;
/// IE type Private Extension (§8.6): TLV, skipped.
pub const IE_PRIVATE_EXTENSION: u8 = 255;
/// Most extension header types kept from an Extension Header Type List; later ones are
/// counted in [`GtpuIes::ext_header_types_omitted`].
pub const MAX_LISTED_EXT_TYPES: usize = 16;

/// Fixed value length of the TV information elements GTP-U defines (TS 29.281 §8.1: types
/// below 128 are TV with a length fixed by the type); `None` for a type GTP-U does not define.
pub const fn tv_length(ie_type: u8) -> Option<usize> {
    match ie_type {
        IE_RECOVERY => Some(1),
        IE_TEID_DATA_I => Some(4),
        _ => None,
    }
}

/// The information elements of a GTP-U message other than a G-PDU (TS 29.281 §7.2, §7.3).
///
/// Each field holds the first occurrence of its IE. Which IEs are mandatory depends on the
/// message type, see [`GtpuIes::mandatory_present`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GtpuIes {
    /// Recovery restart counter (Echo Response; TS 29.281 §7.2.2 says GTP-U senders set it
    /// to 0 and receivers ignore it, but the value on the wire is kept).
    pub recovery: Option<u8>,
    /// TEID Data I (Error Indication): the TEID of the G-PDU that triggered it.
    pub teid_data_i: Option<u32>,
    /// GTP-U Peer Address (Error Indication): the address of the sender of the indication.
    pub peer_address: Option<IpAddr>,
    ext_types: [u8; MAX_LISTED_EXT_TYPES],
    ext_types_len: u8,
    /// Extension header types beyond [`MAX_LISTED_EXT_TYPES`] in the list (not kept).
    pub ext_header_types_omitted: u8,
    /// Whether an Extension Header Type List IE was present.
    pub ext_header_type_list: bool,
    /// Private Extension IEs skipped.
    pub private_extensions: u16,
    /// TLV IEs (type ≥ 128) of another type, skipped by their length.
    pub unknown_tlv: u16,
    /// IEs walked in total.
    pub count: u16,
}

impl GtpuIes {
    /// Extension header types of the Extension Header Type List (Supported Extension Headers
    /// Notification), at most [`MAX_LISTED_EXT_TYPES`], in wire order.
    pub fn ext_header_types(&self) -> &[u8] {
        let n = usize::from(self.ext_types_len).min(MAX_LISTED_EXT_TYPES);
        &self.ext_types[..n]
    }

    /// Whether the IEs that TS 29.281 makes mandatory for `msg_type` are present: Recovery
    /// for Echo Response (§7.2.2), TEID Data I and GTP-U Peer Address for Error Indication
    /// (§7.3.1), the Extension Header Type List for Supported Extension Headers Notification
    /// (§7.2.3). Always true for other types.
    pub fn mandatory_present(&self, msg_type: u8) -> bool {
        match msg_type {
            MSG_ECHO_RESPONSE => self.recovery.is_some(),
            MSG_ERROR_INDICATION => self.teid_data_i.is_some() && self.peer_address.is_some(),
            MSG_SUPPORTED_EXT_HEADERS_NOTIFICATION => self.ext_header_type_list,
            _ => true,
        }
    }
}

/// Parse the information elements of a GTP-U message of type `msg_type`; `body` is what
/// [`parse`] returns after the header (the octets after the optional fields and extension
/// headers, cut to the GTP-U length).
///
/// TV IEs (type < 128) have the fixed length of [`tv_length`]; TLV IEs (type ≥ 128) a 2-octet
/// length, except the Extension Header Type List which has a 1-octet length (§8.5). Unknown
/// TLV IEs and Private Extensions are skipped by their length. A G-PDU's body is a T-PDU, not
/// IEs: it gives an empty result without being read.
///
/// Errors (layer `gtpu`): `unknown_ie` for a TV type GTP-U does not define (its length is
/// unknown, so the walk cannot go on); `ie_overrun` for an IE running past `body`;
/// `bad_length` for a GTP-U Peer Address that is neither 4 nor 16 octets.
pub fn parse_ies(msg_type: u8, body: &[u8]) -> Result<GtpuIes, DecodeError> {
    let e = |r| DecodeError::new(Layer::Gtpu, r);
    let mut ies = GtpuIes::default();
    if msg_type == MSG_GPDU {
        return Ok(ies);
    }
    let mut off = 0usize;
    while let Some(&t) = body.get(off) {
        ies.count = ies.count.saturating_add(1);
        if t < 128 {
            let len = tv_length(t).ok_or(e(Reason::UnknownIe))?;
            let v = body.get(off + 1..off + 1 + len).ok_or(e(Reason::IeOverrun))?;
            match t {
                IE_RECOVERY => {
                    ies.recovery = ies.recovery.or(Some(v[0]));
                }
                _ => {
                    ies.teid_data_i = ies.teid_data_i.or(be32(v, 0));
                }
            }
            off += 1 + len;
        } else if t == IE_EXT_HEADER_TYPE_LIST {
            let n = usize::from(*body.get(off + 1).ok_or(e(Reason::IeOverrun))?);
            let v = body.get(off + 2..off + 2 + n).ok_or(e(Reason::IeOverrun))?;
            if !ies.ext_header_type_list {
                ies.ext_header_type_list = true;
                let keep = n.min(MAX_LISTED_EXT_TYPES);
                ies.ext_types[..keep].copy_from_slice(&v[..keep]);
                ies.ext_types_len = keep as u8;
                ies.ext_header_types_omitted = (n - keep).min(255) as u8;
            }
            off += 2 + n;
        } else {
            let n = usize::from(be16(body, off + 1).ok_or(e(Reason::IeOverrun))?);
            let v = body.get(off + 3..off + 3 + n).ok_or(e(Reason::IeOverrun))?;
            match t {
                IE_PEER_ADDRESS => {
                    let a = match v.len() {
                        4 => IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
                        16 => {
                            let mut b = [0u8; 16];
                            b.copy_from_slice(v);
                            IpAddr::V6(Ipv6Addr::from(b))
                        }
                        _ => return Err(e(Reason::BadLength)),
                    };
                    ies.peer_address = ies.peer_address.or(Some(a));
                }
                IE_PRIVATE_EXTENSION => ies.private_extensions = ies.private_extensions.saturating_add(1),
                _ => ies.unknown_tlv = ies.unknown_tlv.saturating_add(1),
            }
            off += 3 + n;
        }
    }
    Ok(ies)
}

/// What a G-PDU's T-PDU looks like by its first octet (TS 29.281 §5.1 leaves the type to the
/// PDU session: IP, Ethernet or Unstructured, TS 23.501 §5.6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TpduKind {
    /// No octets (an End Marker-like G-PDU, or the T-PDU was cut away).
    Empty,
    /// First nibble 4: decoded as IPv4 (a failure is then an `ipv4:` error, not
    /// `gtpu: non_ip_payload`).
    Ipv4,
    /// First nibble 6: decoded as IPv6.
    Ipv6,
    /// Anything else: Ethernet/Unstructured PDU sessions or junk, counted as
    /// `gtpu: non_ip_payload` and not parsed.
    NonIp,
}

/// Classify a T-PDU by its first nibble.
pub fn tpdu_kind(tpdu: &[u8]) -> TpduKind {
    match tpdu.first().map(|b| b >> 4) {
        None => TpduKind::Empty,
        Some(4) => TpduKind::Ipv4,
        Some(6) => TpduKind::Ipv6,
        Some(_) => TpduKind::NonIp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_gpdu() {
        let d = [0x30, 0xff, 0, 2, 0, 0, 0, 7, 0x45, 0];
        let (h, t) = parse(&d).unwrap();
        assert_eq!((h.message_type, h.teid, h.length, h.truncated), (255, 7, 2, false));
        assert_eq!(t, &[0x45, 0]);
    }

    #[test]
    fn echo_request_with_sequence() {
        let d = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0x12, 0x34, 0, 0];
        let (h, t) = parse(&d).unwrap();
        assert_eq!((h.message_type, h.sequence), (1, Some(0x1234)));
        assert!(t.is_empty());
    }

    #[test]
    fn pdcp_then_psc_chain() {
        // E set, next 0xc0 (PDCP PDU number, len 1), then 0x85 DL QFI 5, then end.
        let d = [
            0x34, 0xff, 0, 13, 0, 0, 0, 1, 0, 0, 0, 0xc0, 1, 0, 1, 0x85, 1, 0x00, 0x05, 0, 0x60,
        ];
        let (h, t) = parse(&d).unwrap();
        assert_eq!(h.ext_headers, 2);
        assert_eq!(h.ext_types, ext_bit(0xc0) | ext_bit(0x85));
        assert_eq!(ext_bit(0x01), 1 << 8, "unnamed types share the last bit");
        let dl_qfi5 = PduSessionInfo {
            pdu_type: 0,
            qfi: 5,
            ..PduSessionInfo::default()
        };
        assert_eq!(h.pdu_session, Some(dl_qfi5));
        assert_eq!(t, &[0x60]);
    }

    #[test]
    fn zero_length_ext_header_is_malformed_not_a_loop() {
        let d = [0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 0, 0, 0, 0];
        assert_eq!(
            parse(&d).unwrap_err(),
            DecodeError::new(Layer::Gtpu, Reason::ExtHeaderZeroLength)
        );
    }

    #[test]
    fn ext_header_past_length() {
        let d = [0x34, 0xff, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0x85, 2, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse(&d).unwrap_err(),
            DecodeError::new(Layer::Gtpu, Reason::ExtHeaderOverrun)
        );
    }

    #[test]
    fn version_and_pt() {
        assert_eq!(
            parse(&[0x48, 0xff, 0, 0, 0, 0, 0, 0]).unwrap_err().reason,
            Reason::BadVersion
        );
        assert_eq!(
            parse(&[0x20, 0xff, 0, 0, 0, 0, 0, 0]).unwrap_err().reason,
            Reason::NotGtpu
        );
        assert_eq!(parse(&[0x30, 0xff, 0]).unwrap_err().reason, Reason::Truncated);
    }

    #[test]
    fn truncated_tpdu_is_flagged() {
        let d = [0x30, 0xff, 0, 100, 0, 0, 0, 1, 0x45];
        let (h, t) = parse(&d).unwrap();
        assert!(h.truncated);
        assert_eq!(t, &[0x45]);
    }
    /// Header (S set) + body: flags 0x32, `msg`, length, TEID 0, seq 0x0102, N-PDU 0, next 0.
    fn with_seq(msg: u8, body: &[u8]) -> Vec<u8> {
        let mut d = vec![0x32, msg, 0, (4 + body.len()) as u8, 0, 0, 0, 0, 0x01, 0x02, 0, 0];
        d.extend_from_slice(body);
        d
    }

    #[test]
    fn message_labels_follow_table_6_1_1() {
        let label = |t| MESSAGE_LABELS[message_index(t)];
        assert_eq!(label(255), "g_pdu");
        assert_eq!(label(1), "echo_request");
        assert_eq!(label(2), "echo_response");
        assert_eq!(label(26), "error_indication");
        assert_eq!(label(31), "supported_extension_headers_notification");
        assert_eq!(label(254), "end_marker");
        // Tunnel Status (253) and GTPv1-C Create PDP Context Request (16) are not named.
        assert_eq!((label(253), label(16), label(0)), ("other", "other", "other"));
    }

    #[test]
    fn echo_response_recovery() {
        // §7.2.2: Recovery IE (type 14, TV, 1 octet); here restart counter 5.
        let d = with_seq(MSG_ECHO_RESPONSE, &[14, 5]);
        let (h, body) = parse(&d).unwrap();
        let ies = parse_ies(h.message_type, body).unwrap();
        assert_eq!((ies.recovery, ies.count), (Some(5), 1));
        assert!(ies.mandatory_present(MSG_ECHO_RESPONSE));
        // An Echo Response without it lacks its mandatory IE; an Echo Request needs none.
        let empty = parse_ies(MSG_ECHO_RESPONSE, &[]).unwrap();
        assert!(!empty.mandatory_present(MSG_ECHO_RESPONSE));
        assert!(empty.mandatory_present(MSG_ECHO_REQUEST));
    }

    #[test]
    fn error_indication_teid_data_i_and_peer_address() {
        // §7.3.1: TEID Data I (16, TV 4 octets) then GTP-U Peer Address (133, TLV).
        let v4 = [16, 0x0a, 0x0b, 0x0c, 0x0d, 133, 0, 4, 192, 168, 1, 2];
        let d = with_seq(MSG_ERROR_INDICATION, &v4);
        let (h, body) = parse(&d).unwrap();
        let ies = parse_ies(h.message_type, body).unwrap();
        assert_eq!(ies.teid_data_i, Some(0x0a0b0c0d));
        assert_eq!(ies.peer_address, Some("192.168.1.2".parse().unwrap()));
        assert!(ies.mandatory_present(MSG_ERROR_INDICATION));

        let mut v6 = vec![16, 0, 0, 0, 1, 133, 0, 16];
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let ies = parse_ies(MSG_ERROR_INDICATION, &v6).unwrap();
        assert_eq!(ies.peer_address, Some("2001:db8::1".parse().unwrap()));
        assert!(!parse_ies(MSG_ERROR_INDICATION, &v6[..5]).unwrap().mandatory_present(26));
    }

    #[test]
    fn supported_extension_headers_notification_type_list() {
        // §8.5: type 141, 1-octet length 2, types 0x40 (UDP Port) and 0x85 (PSC).
        let ies = parse_ies(MSG_SUPPORTED_EXT_HEADERS_NOTIFICATION, &[141, 2, 0x40, 0x85]).unwrap();
        assert_eq!(ies.ext_header_types(), &[0x40, 0x85]);
        assert!(ies.mandatory_present(MSG_SUPPORTED_EXT_HEADERS_NOTIFICATION));
        // A list longer than the kept maximum keeps the first 16 and counts the rest.
        let mut long = vec![141, 20];
        long.extend(1..=20u8);
        let ies = parse_ies(MSG_SUPPORTED_EXT_HEADERS_NOTIFICATION, &long).unwrap();
        assert_eq!(ies.ext_header_types(), &(1..=16u8).collect::<Vec<_>>()[..]);
        assert_eq!(ies.ext_header_types_omitted, 4);
    }

    #[test]
    fn end_marker_and_private_extension() {
        let d = [0x30, MSG_END_MARKER, 0, 0, 0, 0, 0x12, 0x34];
        let (h, body) = parse(&d).unwrap();
        assert_eq!((h.teid, body.len()), (0x1234, 0));
        assert_eq!(parse_ies(h.message_type, body).unwrap(), GtpuIes::default());
        // §8.6: Private Extension (255, TLV) skipped by its length; Recovery after it read.
        let ies = parse_ies(MSG_ECHO_RESPONSE, &[255, 0, 3, 0x00, 0x0a, 0x77, 14, 9]).unwrap();
        assert_eq!((ies.private_extensions, ies.recovery, ies.count), (1, Some(9), 2));
        // An unknown TLV type (e.g. 200) is skipped the same way and counted.
        let ies = parse_ies(MSG_ECHO_REQUEST, &[200, 0, 1, 0xaa]).unwrap();
        assert_eq!(ies.unknown_tlv, 1);
        // A G-PDU body is a T-PDU: never read as IEs.
        assert_eq!(parse_ies(MSG_GPDU, &[1, 2, 3]).unwrap(), GtpuIes::default());
    }

    #[test]
    fn ie_errors() {
        let err = |b: &[u8]| parse_ies(MSG_ERROR_INDICATION, b).unwrap_err().reason;
        // TV type 1 (GTPv1-C Cause) has no GTP-U length: the walk cannot continue.
        assert_eq!(err(&[1, 0]), Reason::UnknownIe);
        assert_eq!(err(&[16, 0, 0, 1]), Reason::IeOverrun);
        assert_eq!(err(&[14]), Reason::IeOverrun);
        assert_eq!(err(&[133, 0]), Reason::IeOverrun);
        assert_eq!(err(&[133, 0, 16, 1, 2, 3, 4]), Reason::IeOverrun);
        assert_eq!(err(&[141, 3, 0x40]), Reason::IeOverrun);
        assert_eq!(err(&[133, 0, 5, 1, 2, 3, 4, 5]), Reason::BadLength);
        assert_eq!(parse_ies(MSG_ECHO_RESPONSE, &[14]).unwrap_err().layer, Layer::Gtpu);
    }

    /// G-PDU with one PSC of `len` 4-octet units whose content is `content` (padded).
    fn gpdu_with_psc(len: u8, content: &[u8]) -> Vec<u8> {
        let total = usize::from(len) * 4;
        let mut ext = vec![len];
        ext.extend_from_slice(content);
        ext.resize(total - 1, 0);
        ext.push(0);
        let mut d = vec![0x34, 0xff, 0, (4 + ext.len() + 1) as u8, 0, 0, 0, 1, 0, 0, 0, 0x85];
        d.extend_from_slice(&ext);
        d.push(0x45);
        d
    }

    #[test]
    fn psc_dl_ppp_rqi_ppi() {
        // TS 38.415 §5.5.2.1: oct 1 type 0; oct 2 PPP=1 RQI=1 QFI 9; oct 3 PPI 5 (bits 8-6).
        let d = gpdu_with_psc(2, &[0x00, 0xc9, 0xa0]);
        let (h, t) = parse(&d).unwrap();
        let p = h.pdu_session.unwrap();
        assert_eq!((p.pdu_type, p.qfi, p.ppp, p.rqi, p.ppi), (0, 9, true, true, Some(5)));
        assert_eq!((p.qmp, p.snp, p.msnp), (false, false, false));
        assert_eq!(t, &[0x45]);
        // PPP set in a 1-unit container: octet 3 is the next-type octet, so no PPI.
        let (h, _) = parse(&gpdu_with_psc(1, &[0x00, 0x81])).unwrap();
        let p = h.pdu_session.unwrap();
        assert_eq!((p.ppp, p.rqi, p.qfi, p.ppi), (true, false, 1, None));
        // QMP, SNP and MSNP in octet 1 (bits 4, 3, 2).
        let p = PduSessionInfo::parse(&[0x0e, 0x3f]).unwrap();
        assert_eq!((p.qmp, p.snp, p.msnp, p.qfi), (true, true, true, 63));
    }

    #[test]
    fn psc_ul_flags() {
        // TS 38.415 §5.5.2.2: oct 1 type 1 | QMP | DL Delay | UL Delay | SNP;
        // oct 2 N3/N9 Delay | New IE Flag | QFI.
        let p = PduSessionInfo::parse(&[0x1f, 0xc1]).unwrap();
        assert_eq!((p.pdu_type, p.qfi), (1, 1));
        assert_eq!(
            (
                p.qmp,
                p.dl_delay_ind,
                p.ul_delay_ind,
                p.snp,
                p.n3n9_delay_ind,
                p.new_ie_flag
            ),
            (true, true, true, true, true, true)
        );
        // The DL-only flags stay clear, whatever the bits say.
        assert_eq!((p.ppp, p.rqi, p.ppi, p.msnp), (false, false, None, false));
        let p = PduSessionInfo::parse(&[0x14, 0x05]).unwrap();
        assert_eq!((p.dl_delay_ind, p.ul_delay_ind, p.snp, p.qfi), (true, false, false, 5));
        assert_eq!(PduSessionInfo::parse(&[0x10]), None);
    }

    #[test]
    fn tpdu_kinds() {
        assert_eq!(tpdu_kind(&[]), TpduKind::Empty);
        assert_eq!(tpdu_kind(&[0x45]), TpduKind::Ipv4);
        assert_eq!(tpdu_kind(&[0x60]), TpduKind::Ipv6);
        assert_eq!(tpdu_kind(&[0x01]), TpduKind::NonIp);
    }
}
