//! Wire-format decoding: link layer → IP → transport, with GTP-U tunnels opened so that the
//! inner (UE) packet becomes the flow.
//!
//! Every decoder is a zero-copy view over `&[u8]` that checks lengths once; nothing here
//! allocates or panics, whatever the input. A packet that cannot be decoded yields a
//! [`DecodeError`] (a layer and a reason, both small enums with stable names for metrics);
//! an oddity that still leaves a usable flow (a TCP header cut by the snap length, a GTP-U
//! T-PDU that is not IP) is reported in [`Packet::anomaly`] and counted the same way.
//!
//! Control planes are decoded by separate entry points that take a transport payload (see
//! [`outer_l4`]): GTP-U information elements ([`gtpu::parse_ies`]), GTPv2-C ([`gtpv2c`]) and
//! SCTP chunks with the NGAP/S1AP PDU header ([`sctp`]).

/// Shared shape of the protocol-code "open enums" (message types, procedure codes): a code is
/// a plain `u8` (so unknown values survive), named by a `pub const`, with a fixed table of
/// snake_case labels and an `other` label for every code not in it.
///
/// Generates one `pub const NAME: u8` per entry, `pub const <labels>: &[&str]` (the entries'
/// labels in table order, then `"other"`) and `index(code)` / `label(code)` functions. Label
/// order never changes once published (metric series are pre-registered from it).
macro_rules! code_labels {
    ($(#[$doc:meta])* $labels:ident, $index:ident, $label:ident;
     $( $(#[$cdoc:meta])* $konst:ident = $code:expr => $name:expr ),+ $(,)?) => {
        $( $(#[$cdoc])* pub const $konst: u8 = $code; )+
        const CODES: &[u8] = &[$($code),+];
        $(#[$doc])*
        pub const $labels: &[&str] = &[$($name),+, "other"];

        /// Index of `code` in the labels array; the last index (`other`) for codes not in the
        /// table.
        pub const fn $index(code: u8) -> usize {
            let mut i = 0;
            while i < CODES.len() {
                if CODES[i] == code {
                    return i;
                }
                i += 1;
            }
            CODES.len()
        }

        /// Stable snake_case label of `code` (`"other"` for codes not in the table).
        pub const fn $label(code: u8) -> &'static str {
            $labels[$index(code)]
        }
    };
}

pub mod gtpu;
pub mod gtpv2c;
pub mod ip;
pub mod link;
pub mod pfcp;
pub mod sctp;
pub mod transport;

use std::net::IpAddr;

use crate::capture::LinkType;

pub use gtpu::{GtpuHeader, PduSessionInfo, GTPU_PORT};

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
pub mod ipproto {
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// IPv6 Encapsulating Security Payload (RFC 4303).
    pub const ESP: u8 = 50;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
    /// SCTP (RFC 9260).
    pub const SCTP: u8 = 132;

    /// Protocol name as Suricata's EVE writes it (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`,
    /// `SCTP`), or the number.
    pub fn name(p: u8) -> String {
        match p {
            1 => "ICMP".into(),
            6 => "TCP".into(),
            17 => "UDP".into(),
            58 => "IPv6-ICMP".into(),
            132 => "SCTP".into(),
            n => n.to_string(),
        }
    }
}

/// TCP flag bits as found in octet 13 of the TCP header (RFC 9293 §3.1).
pub mod tcpflags {
    /// FIN: no more data from sender.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// PSH: push function.
    pub const PSH: u8 = 0x08;
    /// ACK: acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// URG: urgent pointer significant.
    pub const URG: u8 = 0x20;
}

/// The protocol layer a decode error belongs to. `as_str` gives the stable metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Link layer (Ethernet, Linux SLL/SLL2, loopback, raw-IP framing).
    Link,
    /// 802.1Q / 802.1ad VLAN tags and MPLS labels.
    Vlan,
    /// IPv4 (outer, or inner when tunnelled).
    Ipv4,
    /// IPv6 and its extension headers.
    Ipv6,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP and ICMPv6.
    Icmp,
    /// SCTP common header.
    Sctp,
    /// GTP-U header, extension headers and T-PDU.
    Gtpu,
    /// PFCP header and information elements (TS 29.244).
    Pfcp,
    /// GTPv2-C header, piggybacked message and information elements (TS 29.274).
    Gtpc,
    /// NGAP (or S1AP) PDU header inside an SCTP DATA chunk (TS 38.413 §9.4, TS 36.413 §9.3).
    Ngap,
}

impl Layer {
    /// Every layer, in a fixed order (for pre-registering metric series).
    pub const ALL: [Layer; 12] = [
        Layer::Link,
        Layer::Vlan,
        Layer::Ipv4,
        Layer::Ipv6,
        Layer::Tcp,
        Layer::Udp,
        Layer::Icmp,
        Layer::Sctp,
        Layer::Gtpu,
        Layer::Pfcp,
        Layer::Gtpc,
        Layer::Ngap,
    ];

    /// The reasons a decoder of this layer can report (the metric series that exist).
    pub fn reasons(self) -> &'static [Reason] {
        use Reason::*;
        match self {
            Layer::Link => &[Truncated, UnsupportedLinkType],
            Layer::Vlan => &[Truncated, TooManyHeaders],
            Layer::Ipv4 => &[Truncated, BadVersion, BadHeaderLength, BadLength],
            Layer::Ipv6 => &[Truncated, TooManyHeaders],
            Layer::Tcp => &[Truncated, BadHeaderLength],
            Layer::Udp => &[Truncated, BadLength],
            Layer::Icmp | Layer::Ngap => &[Truncated],
            Layer::Sctp => &[Truncated, BadLength, ZeroLengthChunk, TooManyHeaders],
            Layer::Gtpu => &[
                Truncated,
                BadVersion,
                NotGtpu,
                BadLength,
                ExtHeaderZeroLength,
                ExtHeaderOverrun,
                TooManyHeaders,
                NonIpPayload,
                IeOverrun,
                UnknownIe,
            ],
            Layer::Pfcp => &[Truncated, BadVersion, BadLength, IeOverrun, TooDeep],
            Layer::Gtpc => &[Truncated, BadVersion, BadLength, IeOverrun, TooManyHeaders],
        }
    }

    /// Stable lower-case name used as the `layer` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Vlan => "vlan",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
            Layer::Sctp => "sctp",
            Layer::Gtpu => "gtpu",
            Layer::Pfcp => "pfcp",
            Layer::Gtpc => "gtpc",
            Layer::Ngap => "ngap",
        }
    }
}

/// Why a layer could not be decoded. `as_str` gives the stable metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Fewer captured bytes than the header needs.
    Truncated,
    /// The link type of the capture is not one fivewatch decodes.
    UnsupportedLinkType,
    /// IP version nibble (or GTP version) is not the one expected.
    BadVersion,
    /// A header-length field is smaller than the fixed header or beyond the data.
    BadHeaderLength,
    /// A total/payload-length field is inconsistent with the header.
    BadLength,
    /// More VLAN tags, MPLS labels, IPv6 extension headers, SCTP chunks, piggybacked GTPv2-C
    /// messages or nested grouped IEs than the decoder follows.
    TooManyHeaders,
    /// GTP-U extension header with length 0 (TS 29.281 §5.2.1: length is in 4-octet units and
    /// never 0).
    ExtHeaderZeroLength,
    /// GTP-U extension header running past the GTP-U length or the captured bytes.
    ExtHeaderOverrun,
    /// G-PDU whose T-PDU is neither IPv4 nor IPv6 (Ethernet/unstructured PDU sessions or junk).
    NonIpPayload,
    /// GTP' (PT bit 0) on the GTP-U port.
    NotGtpu,
    /// An information element whose header or length runs past its message or grouped IE
    /// (GTP-U TS 29.281 §8, GTPv2-C TS 29.274 §8.2, PFCP TS 29.244 §8.1.1).
    IeOverrun,
    /// PFCP grouped IEs nested deeper than the decoder follows.
    TooDeep,
    /// A GTP-U TV information element (type < 128) of a type whose fixed length is not known
    /// (TS 29.281 §8.1): the rest of the message cannot be delimited.
    UnknownIe,
    /// SCTP chunk with length 0 (RFC 9260 §3.2: the length covers the 4-octet chunk header).
    ZeroLengthChunk,
}

impl Reason {
    /// Every reason, in a fixed order (for pre-registering metric series).
    pub const ALL: [Reason; 14] = [
        Reason::Truncated,
        Reason::UnsupportedLinkType,
        Reason::BadVersion,
        Reason::BadHeaderLength,
        Reason::BadLength,
        Reason::TooManyHeaders,
        Reason::ExtHeaderZeroLength,
        Reason::ExtHeaderOverrun,
        Reason::NonIpPayload,
        Reason::NotGtpu,
        Reason::IeOverrun,
        Reason::TooDeep,
        Reason::UnknownIe,
        Reason::ZeroLengthChunk,
    ];

    /// Stable snake_case name used as the `reason` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Truncated => "truncated",
            Reason::UnsupportedLinkType => "unsupported_link_type",
            Reason::BadVersion => "bad_version",
            Reason::BadHeaderLength => "bad_header_length",
            Reason::BadLength => "bad_length",
            Reason::TooManyHeaders => "too_many_headers",
            Reason::ExtHeaderZeroLength => "ext_header_zero_length",
            Reason::ExtHeaderOverrun => "ext_header_overrun",
            Reason::NonIpPayload => "non_ip_payload",
            Reason::NotGtpu => "not_gtpu",
            Reason::IeOverrun => "ie_overrun",
            Reason::TooDeep => "too_deep",
            Reason::UnknownIe => "unknown_ie",
            Reason::ZeroLengthChunk => "zero_length_chunk",
        }
    }
}

/// A decode failure: which layer, and why. Small and `Copy`; never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecodeError {
    /// Layer that failed.
    pub layer: Layer,
    /// Why it failed.
    pub reason: Reason,
}

impl DecodeError {
    pub(crate) const fn new(layer: Layer, reason: Reason) -> Self {
        DecodeError { layer, reason }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.layer.as_str(), self.reason.as_str())
    }
}

/// IP fragment position of the flow's IP packet (RFC 791 §3.1, RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fragment {
    /// Not a fragment.
    #[default]
    None,
    /// First fragment (offset 0, more fragments): carries the transport header.
    First,
    /// A later fragment: no transport header, ports are 0.
    Later,
}

/// GTP-U tunnel context of a G-PDU (or other GTP-U message) per TS 29.281 §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// Outer source IP (the sending tunnel endpoint: gNB or UPF).
    pub outer_src: IpAddr,
    /// Outer destination IP (the receiving tunnel endpoint, which allocated `teid`).
    pub outer_dst: IpAddr,
    /// Outer UDP source port.
    pub outer_src_port: u16,
    /// Outer UDP destination port.
    pub outer_dst_port: u16,
    /// GTP-U header fields.
    pub header: GtpuHeader,
    /// Direction of the G-PDU when known: `Some(true)` uplink (towards the core; the inner
    /// source is the UE), `Some(false)` downlink. The decoder takes it from the PDU Session
    /// Container type (TS 38.415 §5.5.2: 1 = UL PDU SESSION INFORMATION); the engine
    /// overrides it from the session table when the TEID's session names the endpoint.
    pub uplink: Option<bool>,
    /// What the session table said about this G-PDU's TEID; `None` until the engine looked
    /// it up (and for other GTP-U messages).
    pub session: Option<crate::session::TunnelSession>,
}

/// Everything the flow table and the detectors need from one frame.
///
/// For a GTP-U G-PDU carrying IP, the addresses, ports and flags are those of the *inner*
/// packet and [`Packet::tunnel`] holds the outer context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Source IP of the flow's IP packet.
    pub src: IpAddr,
    /// Destination IP of the flow's IP packet.
    pub dst: IpAddr,
    /// IP protocol number of the transport (after IPv6 extension headers).
    pub proto: u8,
    /// Transport source port (TCP/UDP/SCTP); 0 otherwise.
    pub src_port: u16,
    /// Transport destination port (TCP/UDP/SCTP); 0 otherwise.
    pub dst_port: u16,
    /// ICMP/ICMPv6 type and code, when the transport is ICMP.
    pub icmp: Option<(u8, u8)>,
    /// TCP flags octet (see [`tcpflags`]); 0 for other transports.
    pub tcp_flags: u8,
    /// Length of the flow's IP packet in bytes as its header states (inner packet for
    /// tunnels); falls back to the captured length when the header says 0.
    pub ip_len: u32,
    /// Fragment position of the flow's IP packet.
    pub fragment: Fragment,
    /// GTP-U context when the packet was tunnelled.
    pub tunnel: Option<Tunnel>,
    /// A non-fatal oddity seen while decoding (counted like an error, packet still used).
    pub anomaly: Option<DecodeError>,
}

impl Packet {
    /// Every field zero or none, addresses 0.0.0.0: the starting value of a packet that
    /// [`ip::decode_ip_into`] writes.
    pub const EMPTY: Packet = Packet {
        src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        proto: 0,
        src_port: 0,
        dst_port: 0,
        icmp: None,
        tcp_flags: 0,
        ip_len: 0,
        fragment: Fragment::None,
        tunnel: None,
        anomaly: None,
    };
}

/// Result of decoding one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// An IP packet that belongs to a flow.
    Ip(Packet),
    /// A frame that carries no IP (ARP, LLDP, STP, ...): counted, not decoded further.
    /// Holds the EtherType (or 0 when the link layer has none).
    NotIp(u16),
}

/// Decode one captured frame of link type `linktype`.
///
/// Errors: the first layer that cannot be decoded, e.g. `link: truncated` for a frame
/// shorter than its link header, `link: unsupported_link_type` for an unknown DLT.
/// GTP-U is recognised on UDP port [`GTPU_PORT`] (either direction).
pub fn decode(linktype: LinkType, data: &[u8]) -> Result<Decoded, DecodeError> {
    decode_with(linktype, data, 0)
}

/// As [`decode`], also opening GTP-U on UDP port `extra_gtpu_port` (either direction) when
/// it is not 0.
pub fn decode_with(linktype: LinkType, data: &[u8], extra_gtpu_port: u16) -> Result<Decoded, DecodeError> {
    match link::network_layer(linktype, data)? {
        link::Network::Ip(ip_bytes) => ip::decode_ip_with(ip_bytes, Some(extra_gtpu_port)).map(Decoded::Ip),
        link::Network::Other(ethertype) => Ok(Decoded::NotIp(ethertype)),
    }
}

/// The outermost transport of a frame: what the control-plane decoders ([`gtpu::parse_ies`],
/// [`gtpv2c::messages`], [`sctp::parse`]) take as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L4<'a> {
    /// Outer source IP.
    pub src: IpAddr,
    /// Outer destination IP.
    pub dst: IpAddr,
    /// IP protocol number of the transport (after IPv6 extension headers).
    pub proto: u8,
    /// Transport source port (TCP/UDP/SCTP); 0 otherwise.
    pub src_port: u16,
    /// Transport destination port (TCP/UDP/SCTP); 0 otherwise.
    pub dst_port: u16,
    /// UDP: the payload cut to the UDP length. TCP: the segment data. SCTP: the whole SCTP
    /// packet *including* its 12-octet common header (input of [`sctp::parse`]). Other
    /// protocols: the IP payload.
    pub payload: &'a [u8],
    /// [`Fragment::First`] when the IP packet is the first fragment of a larger datagram
    /// (the payload is then incomplete); [`Fragment::None`] otherwise.
    pub fragment: Fragment,
}

/// Decode the link and the outer IP header of one frame and return its transport payload,
/// without opening tunnels.
///
/// `Ok(None)` for frames that carry no IP and for non-first IP fragments (no transport
/// header). Errors: as [`decode`] for the link and IP layers; `tcp`/`udp: truncated`,
/// `udp: bad_length`, `tcp: bad_header_length` for a transport header that cannot be read;
/// `sctp: truncated` for fewer than 12 octets of SCTP.
pub fn outer_l4(linktype: LinkType, data: &[u8]) -> Result<Option<L4<'_>>, DecodeError> {
    let link::Network::Ip(bytes) = link::network_layer(linktype, data)? else {
        return Ok(None);
    };
    let ip = ip::parse_ip(bytes)?;
    if ip.fragment == Fragment::Later {
        return Ok(None);
    }
    let mut pkt = ip::bare_packet(&ip);
    let after = transport::transport(ip.proto, ip.payload, &mut pkt)?;
    let payload = if ip.proto == ipproto::SCTP { ip.payload } else { after };
    Ok(Some(L4 {
        src: ip.src,
        dst: ip.dst,
        proto: ip.proto,
        src_port: pkt.src_port,
        dst_port: pkt.dst_port,
        payload,
        fragment: ip.fragment,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_and_reason_tables_are_consistent() {
        for (i, l) in Layer::ALL.iter().enumerate() {
            assert!(!Layer::ALL[..i].contains(l), "{l:?} twice in Layer::ALL");
            for r in l.reasons() {
                assert!(Reason::ALL.contains(r), "{l:?}: {r:?} missing from Reason::ALL");
            }
        }
        let mut names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
        // Every reason is reported by some layer (otherwise no metric series exists for it).
        for r in Reason::ALL {
            assert!(Layer::ALL.iter().any(|l| l.reasons().contains(&r)), "{r:?} unused");
        }
    }

    #[test]
    fn outer_l4_gives_sctp_with_common_header_and_udp_payload() {
        // Raw IPv4 (LINKTYPE_RAW), SCTP 38412 → 38412, common header only.
        let mut p = vec![0x45, 0, 0, 32, 0, 0, 0, 0, 64, 132, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        p.extend_from_slice(&[0x96, 0x0c, 0x96, 0x0c, 0, 0, 0, 1, 0, 0, 0, 0]);
        let l4 = outer_l4(LinkType::RAW, &p).unwrap().unwrap();
        assert_eq!(
            (l4.proto, l4.src_port, l4.dst_port, l4.payload.len()),
            (132, 38412, 38412, 12)
        );
        // The same as UDP 2123 with a 2-octet payload and 2 octets of link padding.
        let mut u = vec![0x45, 0, 0, 30, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        u.extend_from_slice(&[0x08, 0x4b, 0x08, 0x4b, 0, 10, 0, 0, 0x48, 0x01, 0xee, 0xee]);
        let l4 = outer_l4(LinkType::RAW, &u).unwrap().unwrap();
        assert_eq!((l4.dst_port, l4.payload), (2123, &[0x48, 0x01][..]));
    }
}
