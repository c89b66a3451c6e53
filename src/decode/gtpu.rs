//! GTP-U header (3GPP TS 29.281 §5.1), extension-header chain (§5.2) and the PDU Session
//! Container (TS 38.415 §5.5.2).

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
/// Message type End Marker.
pub const MSG_END_MARKER: u8 = 254;
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

/// QoS information from a PDU Session Container (TS 38.415 §5.5.2.1/§5.5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduSessionInfo {
    /// PDU Type: 0 = DL PDU SESSION INFORMATION, 1 = UL PDU SESSION INFORMATION.
    pub pdu_type: u8,
    /// QoS Flow Identifier (6 bits, 0..=63).
    pub qfi: u8,
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
        if next == EXT_PDU_SESSION_CONTAINER && len >= 4 {
            h.pdu_session = Some(PduSessionInfo {
                pdu_type: d[off + 1] >> 4,
                qfi: d[off + 2] & 0x3f,
            });
        }
        h.ext_headers += 1;
        h.ext_types |= ext_bit(next);
        next = d[off + len - 1];
        off += len;
    }
    Ok((h, d.get(off..end).unwrap_or(&[])))
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
        assert_eq!(h.pdu_session, Some(PduSessionInfo { pdu_type: 0, qfi: 5 }));
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
}
