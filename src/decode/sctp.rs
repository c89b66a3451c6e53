//! SCTP (RFC 9260): common header (§3.1), chunk walk (§3.2), DATA chunks (§3.3.1) and I-DATA
//! chunks (RFC 8260 §2.1); and the first octets of the NGAP (TS 38.413) or S1AP (TS 36.413)
//! PDU carried in an unfragmented DATA chunk.
//!
//! NGAP and S1AP are ASN.1 aligned PER (X.691). Their top-level PDU is an extensible CHOICE of
//! three alternatives (initiatingMessage, successfulOutcome, unsuccessfulOutcome), each a
//! SEQUENCE { procedureCode INTEGER (0..255), criticality ENUMERATED { reject, ignore, notify },
//! value OPEN TYPE } (TS 38.413 §9.4.3, TS 36.413 §9.3.3). In APER this puts the extension bit
//! and the 2-bit choice index in the top bits of octet 0, the procedure code in octet 1 (an
//! octet-aligned 8-bit field), and the criticality in the top 2 bits of octet 2.

use super::link::{be16, be32};
use super::{DecodeError, Layer, Reason};

/// SCTP port of NGAP (TS 38.412 §7).
pub const NGAP_PORT: u16 = 38412;
/// SCTP port of S1AP (TS 36.412 §7).
pub const S1AP_PORT: u16 = 36412;
/// Payload protocol identifier of NGAP (TS 38.412 §7; IANA SCTP PPID registry).
pub const PPID_NGAP: u32 = 60;
/// Payload protocol identifier of S1AP (TS 36.412 §7).
pub const PPID_S1AP: u32 = 18;
/// Most chunks walked in one SCTP packet; the next one is `sctp: too_many_headers`.
pub const MAX_SCTP_CHUNKS: usize = 32;
/// Chunk type DATA (RFC 9260 §3.3.1).
pub const CHUNK_DATA: u8 = 0;
/// Chunk type SACK (RFC 9260 §3.3.4).
pub const CHUNK_SACK: u8 = 3;
/// Chunk type ABORT (RFC 9260 §3.3.7).
pub const CHUNK_ABORT: u8 = 6;
/// Chunk type I-DATA (RFC 8260 §2.1).
pub const CHUNK_I_DATA: u8 = 64;

const COMMON_HEADER_LEN: usize = 12;

/// SCTP common header (RFC 9260 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Verification tag.
    pub verification_tag: u32,
    /// CRC32c checksum as on the wire (not verified).
    pub checksum: u32,
}

/// Parse the common header of an SCTP packet (`d` starts at the SCTP header, as
/// [`super::L4::payload`] gives it) and return it with an iterator over its chunks.
///
/// Error `sctp: truncated` for fewer than 12 octets.
pub fn parse(d: &[u8]) -> Result<(CommonHeader, Chunks<'_>), DecodeError> {
    let t = DecodeError::new(Layer::Sctp, Reason::Truncated);
    let h = CommonHeader {
        src_port: be16(d, 0).ok_or(t)?,
        dst_port: be16(d, 2).ok_or(t)?,
        verification_tag: be32(d, 4).ok_or(t)?,
        checksum: be32(d, 8).ok_or(t)?,
    };
    Ok((h, chunks(d.get(COMMON_HEADER_LEN..).ok_or(t)?)))
}

/// One chunk (RFC 9260 §3.2): type, flags, length and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Chunk type.
    pub chunk_type: u8,
    /// Chunk flags.
    pub flags: u8,
    /// Chunk length: header plus value, without padding (≥ 4).
    pub length: u16,
    /// Value: `length - 4` octets.
    pub value: &'a [u8],
}

/// Iterator over the chunks after the common header. At most [`MAX_SCTP_CHUNKS`] are
/// yielded; then, or at the first malformed chunk, one `Err` and the end:
/// `sctp: zero_length_chunk` (length 0), `sctp: bad_length` (length 1..=3),
/// `sctp: truncated` (a chunk running past the bytes at hand, or 1..=3 stray octets),
/// `sctp: too_many_headers` (more than [`MAX_SCTP_CHUNKS`] chunks).
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    rest: &'a [u8],
    n: usize,
}

/// The chunks in `d` (the octets after the common header), see [`Chunks`].
pub fn chunks(d: &[u8]) -> Chunks<'_> {
    Chunks { rest: d, n: 0 }
}

impl<'a> Chunks<'a> {
    /// Chunks yielded so far.
    pub fn count_so_far(&self) -> usize {
        self.n
    }

    fn fail(&mut self, r: Reason) -> Option<Result<Chunk<'a>, DecodeError>> {
        self.rest = &[];
        Some(Err(DecodeError::new(Layer::Sctp, r)))
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<Chunk<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let d = self.rest;
        if d.is_empty() {
            return None;
        }
        if self.n >= MAX_SCTP_CHUNKS {
            return self.fail(Reason::TooManyHeaders);
        }
        let Some(length) = be16(d, 2) else {
            return self.fail(Reason::Truncated);
        };
        let len = usize::from(length);
        match len {
            0 => return self.fail(Reason::ZeroLengthChunk),
            1..=3 => return self.fail(Reason::BadLength),
            _ => {}
        }
        let Some(value) = d.get(4..len) else {
            return self.fail(Reason::Truncated);
        };
        // Chunks are padded to a multiple of 4 octets; the padding is not in the length.
        let padded = (len + 3) & !3;
        self.rest = d.get(padded..).unwrap_or(&[]);
        self.n += 1;
        Some(Ok(Chunk {
            chunk_type: d[0],
            flags: d[1],
            length,
            value,
        }))
    }
}

/// A DATA (RFC 9260 §3.3.1) or I-DATA (RFC 8260 §2.1) chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChunk<'a> {
    /// Whether this is an I-DATA chunk.
    pub i_data: bool,
    /// Transmission sequence number.
    pub tsn: u32,
    /// Stream identifier.
    pub stream_id: u16,
    /// Stream sequence number (DATA only).
    pub ssn: Option<u16>,
    /// Message identifier (I-DATA only).
    pub mid: Option<u32>,
    /// Payload protocol identifier: always in DATA; in I-DATA only in the first fragment (B
    /// set), where the field is not the FSN.
    pub ppid: Option<u32>,
    /// Fragment sequence number (I-DATA without B).
    pub fsn: Option<u32>,
    /// U flag: unordered.
    pub unordered: bool,
    /// B flag: first fragment of a user message.
    pub begin: bool,
    /// E flag: last fragment of a user message.
    pub end: bool,
    /// User data.
    pub payload: &'a [u8],
}

impl<'a> DataChunk<'a> {
    /// Decode `c` when it is a DATA or I-DATA chunk; `None` for other chunk types.
    /// Error `sctp: bad_length` when the value is shorter than the fixed fields (12 octets for
    /// DATA, 16 for I-DATA).
    pub fn parse(c: &Chunk<'a>) -> Option<Result<DataChunk<'a>, DecodeError>> {
        let v = c.value;
        let bad = Err(DecodeError::new(Layer::Sctp, Reason::BadLength));
        let (begin, end, unordered) = (c.flags & 0x02 != 0, c.flags & 0x01 != 0, c.flags & 0x04 != 0);
        let d = match c.chunk_type {
            CHUNK_DATA => {
                let (Some(tsn), Some(sid), Some(ssn), Some(ppid)) = (be32(v, 0), be16(v, 4), be16(v, 6), be32(v, 8))
                else {
                    return Some(bad);
                };
                DataChunk {
                    i_data: false,
                    tsn,
                    stream_id: sid,
                    ssn: Some(ssn),
                    mid: None,
                    ppid: Some(ppid),
                    fsn: None,
                    unordered,
                    begin,
                    end,
                    payload: &v[12..],
                }
            }
            CHUNK_I_DATA => {
                let (Some(tsn), Some(sid), Some(mid), Some(x)) = (be32(v, 0), be16(v, 4), be32(v, 8), be32(v, 12))
                else {
                    return Some(bad);
                };
                DataChunk {
                    i_data: true,
                    tsn,
                    stream_id: sid,
                    ssn: None,
                    mid: Some(mid),
                    ppid: begin.then_some(x),
                    fsn: (!begin).then_some(x),
                    unordered,
                    begin,
                    end,
                    payload: &v[16..],
                }
            }
            _ => return None,
        };
        Some(Ok(d))
    }

    /// Whether the chunk holds a whole user message (B and E set).
    pub fn unfragmented(&self) -> bool {
        self.begin && self.end
    }
}

/// RAN application protocol of a DATA chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RanProtocol {
    /// NGAP (N2).
    Ngap,
    /// S1AP (S1-MME).
    S1ap,
}

/// Identify NGAP/S1AP: by PPID 60/18; when the PPID is 0 (unspecified, RFC 9260 §3.3.1) or
/// absent (a later I-DATA fragment), by SCTP port 38412/36412 on either side. Any other PPID
/// names another protocol (e.g. 46 Diameter) and gives `None`, whatever the ports.
pub fn ran_protocol(ppid: Option<u32>, src_port: u16, dst_port: u16) -> Option<RanProtocol> {
    let port = |p| src_port == p || dst_port == p;
    match ppid {
        Some(PPID_NGAP) => Some(RanProtocol::Ngap),
        Some(PPID_S1AP) => Some(RanProtocol::S1ap),
        Some(0) | None if port(NGAP_PORT) => Some(RanProtocol::Ngap),
        Some(0) | None if port(S1AP_PORT) => Some(RanProtocol::S1ap),
        _ => None,
    }
}

/// Top-level choice of an NGAP/S1AP PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PduChoice {
    /// initiatingMessage (index 0): a request or a class-2 message.
    InitiatingMessage,
    /// successfulOutcome (index 1).
    SuccessfulOutcome,
    /// unsuccessfulOutcome (index 2).
    UnsuccessfulOutcome,
    /// An alternative added by a later release (extension bit set) or the unused index 3;
    /// procedure code and criticality are then not decoded.
    Other,
}

/// Labels of [`PduChoice`], indexed by [`PduChoice::index`].
pub const PDU_CHOICE_LABELS: [&str; 4] = [
    "initiating_message",
    "successful_outcome",
    "unsuccessful_outcome",
    "other",
];

impl PduChoice {
    /// Index in [`PDU_CHOICE_LABELS`] (the APER choice index for the three root alternatives).
    pub const fn index(self) -> usize {
        match self {
            PduChoice::InitiatingMessage => 0,
            PduChoice::SuccessfulOutcome => 1,
            PduChoice::UnsuccessfulOutcome => 2,
            PduChoice::Other => 3,
        }
    }

    /// Stable snake_case label.
    pub const fn as_str(self) -> &'static str {
        PDU_CHOICE_LABELS[self.index()]
    }
}

/// The header of an NGAP or S1AP PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApPdu {
    /// The top-level choice.
    pub choice: PduChoice,
    /// Procedure code (see [`PROCEDURE_LABELS`] for NGAP); `None` for [`PduChoice::Other`].
    pub procedure_code: Option<u8>,
    /// Criticality: 0 reject, 1 ignore, 2 notify (3 is not a valid value but is kept); `None`
    /// for [`PduChoice::Other`].
    pub criticality: Option<u8>,
}

/// Decode the first 3 octets of an NGAP/S1AP PDU (aligned PER, see the module docs).
///
/// Error `ngap: truncated` for fewer than 3 octets (1 is enough for an extension choice).
pub fn parse_ap_pdu(d: &[u8]) -> Result<ApPdu, DecodeError> {
    let t = DecodeError::new(Layer::Ngap, Reason::Truncated);
    let o0 = *d.first().ok_or(t)?;
    let choice = match (o0 & 0x80 != 0, (o0 >> 5) & 0x03) {
        (false, 0) => PduChoice::InitiatingMessage,
        (false, 1) => PduChoice::SuccessfulOutcome,
        (false, 2) => PduChoice::UnsuccessfulOutcome,
        _ => PduChoice::Other,
    };
    if choice == PduChoice::Other {
        return Ok(ApPdu {
            choice,
            procedure_code: None,
            criticality: None,
        });
    }
    let (&code, &crit) = (d.get(1).ok_or(t)?, d.get(2).ok_or(t)?);
    Ok(ApPdu {
        choice,
        procedure_code: Some(code),
        criticality: Some(crit >> 6),
    })
}

/// The NGAP/S1AP PDU of a DATA chunk, when the chunk is NGAP/S1AP per [`ran_protocol`] and
/// holds a whole user message (fragments need reassembly, which is not done here: `None`).
pub fn ran_pdu(c: &DataChunk<'_>, src_port: u16, dst_port: u16) -> Option<Result<(RanProtocol, ApPdu), DecodeError>> {
    let proto = ran_protocol(c.ppid, src_port, dst_port)?;
    if !c.unfragmented() {
        return None;
    }
    Some(parse_ap_pdu(c.payload).map(|p| (proto, p)))
}

code_labels! {
    /// NGAP procedure label names (metric label values) for the common elementary procedures
    /// (TS 38.413 §9.4.7 / §8), indexed by [`procedure_index`]; `other` for the rest.
    PROCEDURE_LABELS, procedure_index, procedure_label;
    /// AMF Configuration Update.
    PROC_AMF_CONFIGURATION_UPDATE = 0 => "amf_configuration_update",
    /// AMF Status Indication.
    PROC_AMF_STATUS_INDICATION = 1 => "amf_status_indication",
    /// Downlink NAS Transport.
    PROC_DOWNLINK_NAS_TRANSPORT = 4 => "downlink_nas_transport",
    /// Error Indication.
    PROC_ERROR_INDICATION = 9 => "error_indication",
    /// Handover Cancel.
    PROC_HANDOVER_CANCEL = 10 => "handover_cancel",
    /// Handover Notification.
    PROC_HANDOVER_NOTIFICATION = 11 => "handover_notification",
    /// Handover Preparation.
    PROC_HANDOVER_PREPARATION = 12 => "handover_preparation",
    /// Handover Resource Allocation.
    PROC_HANDOVER_RESOURCE_ALLOCATION = 13 => "handover_resource_allocation",
    /// Initial Context Setup.
    PROC_INITIAL_CONTEXT_SETUP = 14 => "initial_context_setup",
    /// Initial UE Message.
    PROC_INITIAL_UE_MESSAGE = 15 => "initial_ue_message",
    /// NAS Non Delivery Indication.
    PROC_NAS_NON_DELIVERY_INDICATION = 19 => "nas_non_delivery_indication",
    /// NG Reset.
    PROC_NG_RESET = 20 => "ng_reset",
    /// NG Setup.
    PROC_NG_SETUP = 21 => "ng_setup",
    /// Overload Start.
    PROC_OVERLOAD_START = 22 => "overload_start",
    /// Overload Stop.
    PROC_OVERLOAD_STOP = 23 => "overload_stop",
    /// Paging.
    PROC_PAGING = 24 => "paging",
    /// Path Switch Request.
    PROC_PATH_SWITCH_REQUEST = 25 => "path_switch_request",
    /// PDU Session Resource Modify.
    PROC_PDU_SESSION_RESOURCE_MODIFY = 26 => "pdu_session_resource_modify",
    /// PDU Session Resource Modify Indication.
    PROC_PDU_SESSION_RESOURCE_MODIFY_INDICATION = 27 => "pdu_session_resource_modify_indication",
    /// PDU Session Resource Release.
    PROC_PDU_SESSION_RESOURCE_RELEASE = 28 => "pdu_session_resource_release",
    /// PDU Session Resource Setup.
    PROC_PDU_SESSION_RESOURCE_SETUP = 29 => "pdu_session_resource_setup",
    /// PDU Session Resource Notify.
    PROC_PDU_SESSION_RESOURCE_NOTIFY = 30 => "pdu_session_resource_notify",
    /// RAN Configuration Update.
    PROC_RAN_CONFIGURATION_UPDATE = 35 => "ran_configuration_update",
    /// Reroute NAS Request.
    PROC_REROUTE_NAS_REQUEST = 36 => "reroute_nas_request",
    /// UE Context Modification.
    PROC_UE_CONTEXT_MODIFICATION = 40 => "ue_context_modification",
    /// UE Context Release.
    PROC_UE_CONTEXT_RELEASE = 41 => "ue_context_release",
    /// UE Context Release Request.
    PROC_UE_CONTEXT_RELEASE_REQUEST = 42 => "ue_context_release_request",
    /// UE Radio Capability Info Indication.
    PROC_UE_RADIO_CAPABILITY_INFO_INDICATION = 44 => "ue_radio_capability_info_indication",
    /// Uplink NAS Transport.
    PROC_UPLINK_NAS_TRANSPORT = 46 => "uplink_nas_transport",
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(t: u8, flags: u8, value: &[u8]) -> Vec<u8> {
        let len = 4 + value.len();
        let mut c = vec![t, flags, (len >> 8) as u8, len as u8];
        c.extend_from_slice(value);
        while c.len() % 4 != 0 {
            c.push(0);
        }
        c
    }

    fn data(flags: u8, ppid: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 7, 0, 1, 0, 2];
        v.extend_from_slice(&ppid.to_be_bytes());
        v.extend_from_slice(payload);
        chunk(CHUNK_DATA, flags, &v)
    }

    const HDR: [u8; 12] = [0x96, 0x0c, 0x96, 0x0c, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0];

    #[test]
    fn common_header_sack_then_data_with_padding() {
        let mut p = HDR.to_vec();
        p.extend(chunk(CHUNK_SACK, 0, &[0, 0, 0, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0]));
        // NGAP InitialUEMessage: initiatingMessage, code 15, criticality ignore; 17 octets of
        // DATA value → 3 octets of padding.
        p.extend(data(0x03, PPID_NGAP, &[0x00, 0x0f, 0x40, 0x01, 0x00]));
        let (h, cs) = parse(&p).unwrap();
        assert_eq!((h.src_port, h.dst_port, h.verification_tag), (38412, 38412, 0x11223344));
        let cs: Vec<Chunk> = cs.map(Result::unwrap).collect();
        assert_eq!(cs.iter().map(|c| c.chunk_type).collect::<Vec<_>>(), [3, 0]);
        assert_eq!(cs[1].length, 21);
        let d = DataChunk::parse(&cs[1]).unwrap().unwrap();
        assert_eq!((d.tsn, d.stream_id, d.ssn, d.ppid), (7, 1, Some(2), Some(60)));
        assert!(d.unfragmented() && !d.unordered);
        let (proto, pdu) = ran_pdu(&d, h.src_port, h.dst_port).unwrap().unwrap();
        assert_eq!(proto, RanProtocol::Ngap);
        assert_eq!(
            pdu,
            ApPdu {
                choice: PduChoice::InitiatingMessage,
                procedure_code: Some(15),
                criticality: Some(1)
            }
        );
        assert_eq!(procedure_label(15), "initial_ue_message");
        assert!(DataChunk::parse(&cs[0]).is_none());
        assert_eq!(
            parse(&p[..11]).unwrap_err(),
            DecodeError::new(Layer::Sctp, Reason::Truncated)
        );
    }

    #[test]
    fn chunk_bound() {
        let mut p = Vec::new();
        for _ in 0..MAX_SCTP_CHUNKS {
            p.extend(chunk(CHUNK_ABORT, 0, &[]));
        }
        assert!(chunks(&p).all(|c| c.is_ok()));
        assert_eq!(chunks(&p).count(), MAX_SCTP_CHUNKS);
        p.extend(chunk(CHUNK_ABORT, 0, &[]));
        let got: Vec<_> = chunks(&p).collect();
        assert_eq!(got.len(), MAX_SCTP_CHUNKS + 1);
        assert_eq!(
            got[MAX_SCTP_CHUNKS],
            Err(DecodeError::new(Layer::Sctp, Reason::TooManyHeaders))
        );
    }

    #[test]
    fn malformed_chunks_end_the_walk() {
        let reason = |d: &[u8]| chunks(d).find_map(Result::err).map(|e| e.reason);
        // Length 0 would loop forever if taken as "advance by length".
        assert_eq!(reason(&[0, 0, 0, 0, 0, 0, 0, 0]), Some(Reason::ZeroLengthChunk));
        assert_eq!(reason(&[0, 0, 0, 2]), Some(Reason::BadLength));
        assert_eq!(reason(&[0, 3, 0, 20, 1, 2]), Some(Reason::Truncated));
        assert_eq!(reason(&[6, 0, 0, 4, 0, 0]), Some(Reason::Truncated));
        assert_eq!(chunks(&[0, 0, 0, 0, 6, 0, 0, 4]).count(), 1);
    }

    #[test]
    fn data_and_i_data_fields() {
        // DATA: only B set (first fragment), unordered.
        let c = data(0x06, PPID_S1AP, &[0x00]);
        let ch = chunks(&c).next().unwrap().unwrap();
        let d = DataChunk::parse(&ch).unwrap().unwrap();
        assert_eq!(
            (d.begin, d.end, d.unordered, d.unfragmented()),
            (true, false, true, false)
        );
        assert!(ran_pdu(&d, 1, 2).is_none(), "fragments are not parsed");
        // I-DATA, B+E: TSN, SID, reserved, MID, PPID.
        let v = [0, 0, 0, 9, 0, 3, 0, 0, 0, 0, 0, 5, 0, 0, 0, 60, 0x20, 0x15, 0x00];
        let c = chunk(CHUNK_I_DATA, 0x03, &v);
        let d = DataChunk::parse(&chunks(&c).next().unwrap().unwrap()).unwrap().unwrap();
        assert_eq!(
            (d.i_data, d.tsn, d.stream_id, d.mid, d.ppid, d.fsn),
            (true, 9, 3, Some(5), Some(60), None)
        );
        let (_, pdu) = ran_pdu(&d, 1, 2).unwrap().unwrap();
        assert_eq!(
            (pdu.choice, pdu.procedure_code, pdu.criticality),
            (PduChoice::SuccessfulOutcome, Some(21), Some(0))
        );
        // I-DATA middle fragment: the field is the FSN.
        let c = chunk(CHUNK_I_DATA, 0x00, &v);
        let d = DataChunk::parse(&chunks(&c).next().unwrap().unwrap()).unwrap().unwrap();
        assert_eq!((d.ppid, d.fsn), (None, Some(60)));
        // DATA value shorter than its 12 fixed octets.
        let c = chunk(CHUNK_DATA, 0x03, &[0, 0, 0, 1]);
        assert_eq!(
            DataChunk::parse(&chunks(&c).next().unwrap().unwrap()),
            Some(Err(DecodeError::new(Layer::Sctp, Reason::BadLength)))
        );
    }

    #[test]
    fn identification_by_ppid_then_port() {
        assert_eq!(ran_protocol(Some(60), 1, 2), Some(RanProtocol::Ngap));
        assert_eq!(ran_protocol(Some(18), 1, 2), Some(RanProtocol::S1ap));
        assert_eq!(ran_protocol(Some(0), 5000, NGAP_PORT), Some(RanProtocol::Ngap));
        assert_eq!(ran_protocol(None, S1AP_PORT, 5000), Some(RanProtocol::S1ap));
        assert_eq!(ran_protocol(Some(46), NGAP_PORT, NGAP_PORT), None);
        assert_eq!(ran_protocol(Some(0), 1, 2), None);
    }

    #[test]
    fn ap_pdu_choices() {
        let p = parse_ap_pdu(&[0x40, 0x0e, 0x00]).unwrap();
        assert_eq!(
            (p.choice, p.procedure_code, p.criticality),
            (PduChoice::UnsuccessfulOutcome, Some(14), Some(0))
        );
        assert_eq!(p.choice.as_str(), "unsuccessful_outcome");
        // Extension bit set: a later-release alternative.
        assert_eq!(parse_ap_pdu(&[0x80]).unwrap().choice, PduChoice::Other);
        assert_eq!(parse_ap_pdu(&[0x60, 1, 2]).unwrap().choice, PduChoice::Other);
        assert_eq!(
            parse_ap_pdu(&[0x00, 0x15]).unwrap_err(),
            DecodeError::new(Layer::Ngap, Reason::Truncated)
        );
    }

    #[test]
    fn procedure_labels_per_ts_38_413() {
        for (code, name) in [
            (4, "downlink_nas_transport"),
            (9, "error_indication"),
            (12, "handover_preparation"),
            (14, "initial_context_setup"),
            (20, "ng_reset"),
            (21, "ng_setup"),
            (24, "paging"),
            (25, "path_switch_request"),
            (28, "pdu_session_resource_release"),
            (29, "pdu_session_resource_setup"),
            (41, "ue_context_release"),
            (42, "ue_context_release_request"),
            (46, "uplink_nas_transport"),
            (52, "other"),
        ] {
            assert_eq!(procedure_label(code), name, "code {code}");
        }
    }
}
