//! Link layers: Ethernet II with 802.1Q/802.1ad tags (IEEE 802.1Q-2018 §9.6), MPLS label
//! stacks (RFC 3032), Linux cooked capture v1/v2 (tcpdump.org LINKTYPE_LINUX_SLL/SLL2),
//! BSD loopback (LINKTYPE_NULL/LOOP) and raw IP (LINKTYPE_RAW, IPV4, IPV6).

use super::{DecodeError, Layer, Reason};
use crate::capture::LinkType;

/// EtherType IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType 802.1Q C-tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType 802.1ad S-tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Pre-standard QinQ tag used by some switches.
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// EtherType MPLS unicast.
pub const ETHERTYPE_MPLS: u16 = 0x8847;
/// EtherType MPLS multicast.
pub const ETHERTYPE_MPLS_MC: u16 = 0x8848;

/// Most VLAN tags / MPLS labels followed before the frame is counted as `too_many_headers`.
pub const MAX_STACKED: usize = 8;

const ETH_HDR_LEN: usize = 14;
/// Largest value of the Ethernet type/length field that is an IEEE 802.3 length.
const MAX_8023_LENGTH: u16 = 1500;
/// Linux `ETH_P_802_2`: the SLL protocol field of a frame carrying an 802.2 LLC header.
const LINUX_SLL_P_802_2: u16 = 0x0004;
/// Linux `ARPHRD_NETLINK`: cooked captures of Netlink messages (`nlmon` devices).
const ARPHRD_NETLINK: u16 = 824;
const SLL_HDR_LEN: usize = 16;
const SLL2_HDR_LEN: usize = 20;

/// What the link layer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network<'a> {
    /// An IPv4 or IPv6 packet (version decided by the IP decoder).
    Ip(&'a [u8]),
    /// Some other protocol, by EtherType (0 when unknown).
    Other(u16),
}

#[inline]
pub(crate) fn be16(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

#[inline]
pub(crate) fn be32(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

const fn err(layer: Layer, reason: Reason) -> DecodeError {
    DecodeError::new(layer, reason)
}

/// Strip the link header of `data` and say what it carries.
///
/// Errors: `link: truncated` when the frame is shorter than its link header,
/// `link: unsupported_link_type` for link types other than Ethernet, Linux SLL/SLL2, NULL,
/// LOOP and the raw-IP types, `vlan: ...` for bad tag or label stacks.
pub fn network_layer(linktype: LinkType, data: &[u8]) -> Result<Network<'_>, DecodeError> {
    match linktype {
        LinkType::ETHERNET => ethernet(data),
        LinkType::LINUX_SLL => {
            // Packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2).
            let proto = be16(data, 14).ok_or(err(Layer::Link, Reason::Truncated))?;
            let arphrd = be16(data, 2).unwrap_or(0);
            ethertype_payload(proto, &data[SLL_HDR_LEN..], arphrd)
        }
        LinkType::LINUX_SLL2 => {
            // Protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) addr len(1) addr(8).
            let proto = be16(data, 0).ok_or(err(Layer::Link, Reason::Truncated))?;
            if data.len() < SLL2_HDR_LEN {
                return Err(err(Layer::Link, Reason::Truncated));
            }
            let arphrd = be16(data, 8).unwrap_or(0);
            ethertype_payload(proto, &data[SLL2_HDR_LEN..], arphrd)
        }
        LinkType::RAW | LinkType::RAW_BSD | LinkType(14) | LinkType::IPV4 | LinkType::IPV6 => Ok(Network::Ip(data)),
        LinkType::NULL | LinkType::LOOP => {
            let b = data.get(..4).ok_or(err(Layer::Link, Reason::Truncated))?;
            // NULL stores the address family in host byte order of the capturing machine;
            // LOOP in network order. Accept either by looking at both readings.
            let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let be = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let fam = if le < 256 { le } else { be };
            match fam {
                // AF_INET everywhere; AF_INET6 is 24 (BSD), 28 (FreeBSD), 30 (Darwin).
                2 | 24 | 28 | 30 => Ok(Network::Ip(&data[4..])),
                _ => Ok(Network::Other(0)),
            }
        }
        _ => Err(err(Layer::Link, Reason::UnsupportedLinkType)),
    }
}

/// Ethernet II frame, with any number (up to [`MAX_STACKED`]) of VLAN tags.
fn ethernet(data: &[u8]) -> Result<Network<'_>, DecodeError> {
    let ethertype = be16(data, 12).ok_or(err(Layer::Link, Reason::Truncated))?;
    ethertype_payload(ethertype, &data[ETH_HDR_LEN..], 1)
}

/// Most Ethernet pseudowires opened inside one another (an MPLS pseudowire carrying Ethernet
/// that carries MPLS again); beyond it the frame is `vlan: too_many_headers`.
pub const MAX_PSEUDOWIRE_DEPTH: usize = 2;

/// Follow `ethertype` through VLAN tags and MPLS labels to the network layer.
/// `arphrd` is the Linux ARPHRD type for cooked captures (1 for Ethernet).
fn ethertype_payload(ethertype: u16, rest: &[u8], arphrd: u16) -> Result<Network<'_>, DecodeError> {
    ethertype_payload_at(ethertype, rest, arphrd, 0)
}

/// [`ethertype_payload`] inside `depth` pseudowires.
fn ethertype_payload_at(
    mut ethertype: u16,
    mut rest: &[u8],
    arphrd: u16,
    depth: usize,
) -> Result<Network<'_>, DecodeError> {
    // Linux cooked captures of Netlink sockets (ARPHRD 824) put the Netlink family in the
    // protocol field, not an EtherType.
    if arphrd == ARPHRD_NETLINK {
        return Ok(Network::Other(0));
    }
    for _ in 0..=MAX_STACKED {
        match ethertype {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return Ok(Network::Ip(rest)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                // TCI(2) then the next EtherType(2).
                ethertype = be16(rest, 2).ok_or(err(Layer::Vlan, Reason::Truncated))?;
                rest = &rest[4..];
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => return mpls(rest, depth),
            // An IEEE 802.3 length (Ethernet) or Linux's ETH_P_802_2 (cooked captures): an
            // 802.2 LLC header follows; SNAP (AA-AA-03, OUI 0) carries an EtherType
            // (RFC 1042), anything else (STP, NetBIOS, ...) is not IP.
            t if t <= MAX_8023_LENGTH || t == LINUX_SLL_P_802_2 => match rest.get(..8) {
                Some([0xaa, 0xaa, 0x03, 0, 0, 0, hi, lo]) => {
                    ethertype = u16::from_be_bytes([*hi, *lo]);
                    rest = &rest[8..];
                }
                _ => return Ok(Network::Other(0)),
            },
            // Linux's ETH_P_802_3 (Novell raw 802.3), CAN, and every EtherType fivewatch does
            // not decode (ARP, LLDP, PPPoE, ...).
            t => return Ok(Network::Other(t)),
        }
    }
    Err(err(Layer::Vlan, Reason::TooManyHeaders))
}

/// MPLS label stack (RFC 3032 §2.1): 4 octets per entry, bottom-of-stack bit 0x100 in the
/// third octet. The payload after the bottom label is told by its first nibble: 4 or 6 is
/// IP; 0 is the pseudowire control word of RFC 4385 §3, after which an Ethernet pseudowire
/// (RFC 4448 §3) is opened when the 14 octets that follow look like an Ethernet header
/// whose EtherType fivewatch follows (IPv4, IPv6, VLAN, MPLS); anything else (including
/// 1, the associated channel of RFC 4385 §3) is reported as MPLS payload, not decoded.
fn mpls(mut rest: &[u8], depth: usize) -> Result<Network<'_>, DecodeError> {
    for _ in 0..MAX_STACKED {
        let entry = be32(rest, 0).ok_or(err(Layer::Vlan, Reason::Truncated))?;
        rest = &rest[4..];
        if entry & 0x100 != 0 {
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => Ok(Network::Ip(rest)),
                Some(0) => pseudowire_ethernet(&rest[rest.len().min(4)..], depth),
                Some(_) => Ok(Network::Other(ETHERTYPE_MPLS)),
                None => Err(err(Layer::Vlan, Reason::Truncated)),
            };
        }
    }
    Err(err(Layer::Vlan, Reason::TooManyHeaders))
}

/// The payload of an MPLS pseudowire after its control word: an Ethernet frame without
/// preamble or FCS (RFC 4448 §3) when its EtherType is one fivewatch follows, else undecoded
/// MPLS payload.
fn pseudowire_ethernet(pw: &[u8], depth: usize) -> Result<Network<'_>, DecodeError> {
    let Some(ethertype) = be16(pw, 12) else {
        return Ok(Network::Other(ETHERTYPE_MPLS));
    };
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_MPLS => {
            if depth >= MAX_PSEUDOWIRE_DEPTH {
                return Err(err(Layer::Vlan, Reason::TooManyHeaders));
            }
            ethertype_payload_at(ethertype, &pw[ETH_HDR_LEN..], 1, depth + 1)
        }
        _ => Ok(Network::Other(ETHERTYPE_MPLS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_ipv4() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45]);
        assert_eq!(network_layer(LinkType::ETHERNET, &f), Ok(Network::Ip(&[0x45][..])));
    }

    #[test]
    fn qinq_s_tag_c_tag_arp() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 0xc8, 0x81, 0x00, 0x07, 0xd1, 0x08, 0x06]);
        assert_eq!(network_layer(LinkType::ETHERNET, &f), Ok(Network::Other(ETHERTYPE_ARP)));
    }

    #[test]
    fn too_many_tags() {
        let mut f = vec![0u8; 12];
        for _ in 0..20 {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        assert_eq!(
            network_layer(LinkType::ETHERNET, &f),
            Err(err(Layer::Vlan, Reason::TooManyHeaders))
        );
    }

    #[test]
    fn truncated_headers() {
        assert_eq!(
            network_layer(LinkType::ETHERNET, &[0u8; 13]),
            Err(err(Layer::Link, Reason::Truncated))
        );
        assert_eq!(
            network_layer(LinkType::LINUX_SLL, &[0u8; 15]),
            Err(err(Layer::Link, Reason::Truncated))
        );
        assert_eq!(
            network_layer(LinkType::LINUX_SLL2, &[0x08, 0, 0]),
            Err(err(Layer::Link, Reason::Truncated))
        );
        assert_eq!(
            network_layer(LinkType(999), &[0u8; 64]),
            Err(err(Layer::Link, Reason::UnsupportedLinkType))
        );
    }

    /// Ethernet → MPLS bottom label → zero control word → Ethernet → `payload_type`.
    fn pw_frame(inner_ethertype: [u8; 2], payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x01, 0x40, 0, 0, 0, 0]);
        f.extend_from_slice(&[0u8; 12]);
        f.extend_from_slice(&inner_ethertype);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn mpls_ethernet_pseudowire_with_control_word() {
        let f = pw_frame([0x08, 0x00], &[0x45]);
        assert_eq!(network_layer(LinkType::ETHERNET, &f), Ok(Network::Ip(&[0x45][..])));
        // An EtherType fivewatch does not follow leaves the pseudowire undecoded.
        let f = pw_frame([0x12, 0x34], &[0x45]);
        assert_eq!(
            network_layer(LinkType::ETHERNET, &f),
            Ok(Network::Other(ETHERTYPE_MPLS))
        );
    }

    #[test]
    fn nested_pseudowires_are_bounded() {
        // Each level: MPLS bottom label, zero control word, Ethernet header with EtherType MPLS.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0x47]);
        for _ in 0..10 {
            f.extend_from_slice(&[0x00, 0x01, 0x01, 0x40, 0, 0, 0, 0]);
            f.extend_from_slice(&[0u8; 12]);
            f.extend_from_slice(&[0x88, 0x47]);
        }
        f.extend_from_slice(&[0x00, 0x01, 0x01, 0x40, 0x45]);
        assert_eq!(
            network_layer(LinkType::ETHERNET, &f),
            Err(err(Layer::Vlan, Reason::TooManyHeaders))
        );
    }

    #[test]
    fn llc_snap_carries_an_ethertype() {
        // IEEE 802.3 length 0x0030, LLC AA-AA-03, SNAP OUI 0, EtherType IPv4.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x00, 0x30, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00, 0x45]);
        assert_eq!(network_layer(LinkType::ETHERNET, &f), Ok(Network::Ip(&[0x45][..])));
        // Spanning tree: LLC 42-42-03, not IP.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x00, 0x26, 0x42, 0x42, 0x03, 0, 0, 0, 0, 0]);
        assert_eq!(network_layer(LinkType::ETHERNET, &f), Ok(Network::Other(0)));
        // Linux cooked capture, protocol ETH_P_802_2 then SNAP/IPv6.
        let mut f = vec![0u8; 14];
        f.extend_from_slice(&[0x00, 0x04, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x86, 0xdd, 0x60]);
        assert_eq!(network_layer(LinkType::LINUX_SLL, &f), Ok(Network::Ip(&[0x60][..])));
    }

    #[test]
    fn netlink_cooked_capture_is_not_ip() {
        // SLL with ARPHRD_NETLINK (824) and Netlink family 0x0800 would look like IPv4.
        let mut f = vec![0u8; 14];
        f[2..4].copy_from_slice(&824u16.to_be_bytes());
        f.extend_from_slice(&[0x08, 0x00, 0x45]);
        assert_eq!(network_layer(LinkType::LINUX_SLL, &f), Ok(Network::Other(0)));
    }

    #[test]
    fn mpls_bottom_of_stack_ipv4() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40, 0x45]);
        assert_eq!(network_layer(LinkType::ETHERNET, &f), Ok(Network::Ip(&[0x45][..])));
    }
}
