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

/// Follow `ethertype` through VLAN tags and MPLS labels to the network layer.
/// `arphrd` is the Linux ARPHRD type for cooked captures (1 for Ethernet).
fn ethertype_payload(mut ethertype: u16, mut rest: &[u8], arphrd: u16) -> Result<Network<'_>, DecodeError> {
    for _ in 0..=MAX_STACKED {
        match ethertype {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return Ok(Network::Ip(rest)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                // TCI(2) then the next EtherType(2).
                ethertype = be16(rest, 2).ok_or(err(Layer::Vlan, Reason::Truncated))?;
                rest = &rest[4..];
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => return mpls(rest),
            // Linux cooked captures of non-Ethernet devices put an ARPHRD-specific value here
            // (e.g. 0x0004 for 802.2 LLC); IP-over-GRE (ARPHRD 778) and tunnels use EtherTypes.
            t => {
                let _ = arphrd;
                return Ok(Network::Other(t));
            }
        }
    }
    Err(err(Layer::Vlan, Reason::TooManyHeaders))
}

/// MPLS label stack (RFC 3032 §2.1): 4 octets per entry, bottom-of-stack bit 0x100 in the
/// third octet. The payload after the bottom label is guessed from its first nibble
/// (RFC 4385 §3: 0 starts a pseudowire control word, which is not decoded further).
fn mpls(mut rest: &[u8]) -> Result<Network<'_>, DecodeError> {
    for _ in 0..MAX_STACKED {
        let entry = be32(rest, 0).ok_or(err(Layer::Vlan, Reason::Truncated))?;
        rest = &rest[4..];
        if entry & 0x100 != 0 {
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => Ok(Network::Ip(rest)),
                Some(_) => Ok(Network::Other(ETHERTYPE_MPLS)),
                None => Err(err(Layer::Vlan, Reason::Truncated)),
            };
        }
    }
    Err(err(Layer::Vlan, Reason::TooManyHeaders))
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

    #[test]
    fn mpls_bottom_of_stack_ipv4() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40, 0x45]);
        assert_eq!(network_layer(LinkType::ETHERNET, &f), Ok(Network::Ip(&[0x45][..])));
    }
}
