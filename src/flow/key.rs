//! The flow key: a canonical bidirectional 5-tuple, extended with the unordered pair of
//! outer tunnel endpoints for GTP-U, and the Community ID v1 of a flow.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::decode::{ipproto, Packet};

/// An address in 16 bytes: IPv4 as IPv4-mapped IPv6 (RFC 4291 §2.5.5.2), so that byte
/// order equals the numeric order Community ID uses within one family.
pub type Addr16 = [u8; 16];

/// Convert an address to its 16-byte form.
#[inline]
pub fn addr16(ip: IpAddr) -> Addr16 {
    addr_bits(ip).to_be_bytes()
}

/// The 16-byte form as one big-endian number: comparing two of these compares the byte
/// arrays. Built in registers (building the array byte by byte and reading it back as
/// words for the comparison stalled on every packet).
#[inline]
fn addr_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xFFFF_u128 << 32 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Convert a 16-byte address back; `v6` says which family it came from.
#[inline]
pub fn from_addr16(a: Addr16, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[12], a[13], a[14], a[15]))
    }
}

pub(crate) const F_V6: u8 = 0x01;
pub(crate) const F_TUNNEL: u8 = 0x02;
pub(crate) const F_OUTER_V6: u8 = 0x04;

/// Canonical flow key. Endpoint `a` is the numerically smaller (address, port) pair, so
/// both directions of a conversation map to the same key. For GTP-U the inner 5-tuple is
/// combined with the *unordered* pair of outer tunnel endpoints: uplink and downlink of a UE
/// flow carry different TEIDs (each chosen by its receiver) but share the endpoint pair,
/// while the same UE address behind two different gNB/UPF pairs stays two flows.
///
/// For ICMP/ICMPv6 the "ports" are the Community ID port equivalents of type and code
/// (a request and its reply share a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    /// Lower endpoint address.
    pub a: Addr16,
    /// Higher endpoint address.
    pub b: Addr16,
    /// Lower outer tunnel endpoint (zeros when not tunnelled).
    pub tun_a: Addr16,
    /// Higher outer tunnel endpoint (zeros when not tunnelled).
    pub tun_b: Addr16,
    /// Port (or ICMP equivalent) of `a`.
    pub port_a: u16,
    /// Port (or ICMP equivalent) of `b`.
    pub port_b: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Bit 0: inner IPv6; bit 1: tunnelled; bit 2: outer IPv6.
    pub flags: u8,
}

/// Hashes the key in five word-sized writes (three for untunnelled keys, whose tunnel
/// endpoints are zero) instead of field by field: the flow table hashes every packet's key.
/// Equal keys have equal flags, so they take the same writes.
impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from_ne_bytes(self.a));
        h.write_u128(u128::from_ne_bytes(self.b));
        h.write_u64(
            u64::from(self.port_a)
                | u64::from(self.port_b) << 16
                | u64::from(self.proto) << 32
                | u64::from(self.flags) << 40,
        );
        if self.flags & F_TUNNEL != 0 {
            h.write_u128(u128::from_ne_bytes(self.tun_a));
            h.write_u128(u128::from_ne_bytes(self.tun_b));
        }
    }
}

/// Map ICMP/ICMPv6 type and code to Community ID port equivalents (Zeek's mapping, as the
/// Community ID spec v1 requires). Returns `(sport, dport, one_way)`.
pub fn icmp_ports(proto: u8, icmp_type: u8, code: u8) -> (u16, u16, bool) {
    let counterpart = if proto == ipproto::ICMP {
        match icmp_type {
            8 => Some(0),
            0 => Some(8),
            13 => Some(14),
            14 => Some(13),
            15 => Some(16),
            16 => Some(15),
            10 => Some(9),
            9 => Some(10),
            17 => Some(18),
            18 => Some(17),
            _ => None,
        }
    } else {
        match icmp_type {
            128 => Some(129),
            129 => Some(128),
            130 => Some(131),
            131 => Some(130),
            133 => Some(134),
            134 => Some(133),
            135 => Some(136),
            136 => Some(135),
            139 => Some(140),
            140 => Some(139),
            144 => Some(145),
            145 => Some(144),
            _ => None,
        }
    };
    match counterpart {
        Some(c) => (u16::from(icmp_type), c, false),
        None => (u16::from(icmp_type), u16::from(code), true),
    }
}

/// The 5-tuple of a packet as seen on the wire, with ICMP mapped to port equivalents.
fn packet_ports(p: &Packet) -> (u16, u16) {
    match p.icmp {
        Some((t, c)) => {
            let (s, d, _) = icmp_ports(p.proto, t, c);
            (s, d)
        }
        None => (p.src_port, p.dst_port),
    }
}

impl FlowKey {
    /// Build the canonical key of `p`. The boolean is true when the packet travels from
    /// endpoint `a` to endpoint `b`.
    #[inline]
    pub fn of_packet(p: &Packet) -> (FlowKey, bool) {
        let (sp, dp) = packet_ports(p);
        let s = addr_bits(p.src);
        let d = addr_bits(p.dst);
        let a_to_b = (s, sp) <= (d, dp);
        let (a, b, port_a, port_b) = if a_to_b { (s, d, sp, dp) } else { (d, s, dp, sp) };
        let (a, b) = (a.to_be_bytes(), b.to_be_bytes());
        let mut flags = if p.src.is_ipv6() { F_V6 } else { 0 };
        let (mut tun_a, mut tun_b) = ([0u8; 16], [0u8; 16]);
        if let Some(t) = &p.tunnel {
            flags |= F_TUNNEL;
            if t.outer_src.is_ipv6() {
                flags |= F_OUTER_V6;
            }
            let (x, y) = (addr_bits(t.outer_src), addr_bits(t.outer_dst));
            let (x, y) = if x <= y { (x, y) } else { (y, x) };
            (tun_a, tun_b) = (x.to_be_bytes(), y.to_be_bytes());
        }
        (
            FlowKey {
                a,
                b,
                tun_a,
                tun_b,
                port_a,
                port_b,
                proto: p.proto,
                flags,
            },
            a_to_b,
        )
    }

    /// Whether the inner addresses are IPv6.
    pub fn is_v6(&self) -> bool {
        self.flags & F_V6 != 0
    }

    /// Whether the flow was seen inside a GTP-U tunnel.
    pub fn is_tunnelled(&self) -> bool {
        self.flags & F_TUNNEL != 0
    }

    /// Address of endpoint `a` (`true`) or `b` (`false`).
    pub fn ip(&self, a: bool) -> IpAddr {
        from_addr16(if a { self.a } else { self.b }, self.is_v6())
    }

    /// Port (ICMP: port equivalent) of endpoint `a` (`true`) or `b` (`false`).
    pub fn port(&self, a: bool) -> u16 {
        if a {
            self.port_a
        } else {
            self.port_b
        }
    }

    /// The outer tunnel endpoint pair (lower, higher), when tunnelled.
    pub fn tunnel_endpoints(&self) -> Option<(IpAddr, IpAddr)> {
        self.is_tunnelled().then(|| {
            let v6 = self.flags & F_OUTER_V6 != 0;
            (from_addr16(self.tun_a, v6), from_addr16(self.tun_b, v6))
        })
    }
}

/// Community ID v1 (corelight community-id-spec, seed `seed`) of a flow given in its
/// initiator → responder orientation. ICMP types/codes must already be mapped with
/// [`icmp_ports`] by the caller through `ports`; `one_way` disables endpoint reordering as
/// the spec does for one-way ICMP messages. Protocols other than TCP, UDP, SCTP and
/// ICMP(v6) hash without ports. Returns e.g. `1:vTdrngJjlP5eZ9mw9JtnKyn99KM=`.
pub fn community_id(seed: u16, src: IpAddr, dst: IpAddr, proto: u8, ports: (u16, u16), one_way: bool) -> String {
    let (sb, db) = (ip_bytes(src), ip_bytes(dst));
    let (s, d) = (&sb[..ip_len(src)], &db[..ip_len(dst)]);
    let (sp, dp) = ports;
    let ordered = one_way || s < d || (s == d && sp < dp);
    let (s, d, sp, dp) = if ordered { (s, d, sp, dp) } else { (d, s, dp, sp) };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(s);
    h.update(d);
    h.update([proto, 0]);
    if matches!(
        proto,
        ipproto::TCP | ipproto::UDP | ipproto::SCTP | ipproto::ICMP | ipproto::ICMPV6
    ) {
        h.update(sp.to_be_bytes());
        h.update(dp.to_be_bytes());
    }
    let digest = h.finalize();
    format!("1:{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    b
}

fn ip_len(ip: IpAddr) -> usize {
    if ip.is_ipv4() {
        4
    } else {
        16
    }
}

/// Community ID of a packet in its own orientation (ICMP mapped per the spec).
pub fn packet_community_id(seed: u16, p: &Packet) -> String {
    let (ports, one_way) = match p.icmp {
        Some((t, c)) => {
            let (s, d, ow) = icmp_ports(p.proto, t, c);
            ((s, d), ow)
        }
        None => ((p.src_port, p.dst_port), false),
    };
    community_id(seed, p.src, p.dst, p.proto, ports, one_way)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // Vectors from the Community ID spec's baseline data (corelight/community-id-spec).
    #[test]
    fn community_id_udp_both_directions() {
        let want = "1:vTdrngJjlP5eZ9mw9JtnKyn99KM=";
        assert_eq!(
            community_id(0, ip("192.168.1.42"), ip("8.8.8.8"), 17, (4242, 53), false),
            want
        );
        assert_eq!(
            community_id(0, ip("8.8.8.8"), ip("192.168.1.42"), 17, (53, 4242), false),
            want
        );
    }

    #[test]
    fn community_id_icmpv6_vectors() {
        let nd = |s: &str, d: &str, t, c| {
            let (sp, dp, ow) = icmp_ports(58, t, c);
            community_id(0, ip(s), ip(d), 58, (sp, dp), ow)
        };
        // Neighbour solicitation/advertisement pair share an id.
        assert_eq!(
            nd("fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 0),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="
        );
        assert_eq!(
            nd("fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 0),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="
        );
        // One-way time exceeded (type 3 code 0).
        assert_eq!(
            nd("3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0),
            "1:2ObVBgIn28oZvibYZhZMBgh7WdQ="
        );
        assert_eq!(
            nd("3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 0),
            "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="
        );
    }
}
