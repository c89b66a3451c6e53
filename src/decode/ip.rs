//! IPv4 (RFC 791) and IPv6 (RFC 8200, extension headers per §4) network layers, and the
//! dispatch to transports and GTP-U tunnels.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::link::be16;
use super::transport::transport;
use super::{gtpu, ipproto, DecodeError, Fragment, Layer, Packet, Reason, Tunnel};

/// Most IPv6 extension headers walked; a packet with more is `ipv6: too_many_headers`.
pub const MAX_IPV6_EXT_HEADERS: usize = 16;

/// The parts of an IP header the rest of the decoder needs.
#[derive(Debug, Clone, Copy)]
pub struct IpView<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Transport bytes (cut to the IP length when the frame carries padding).
    pub payload: &'a [u8],
    /// IP packet length in bytes as the header says (captured length when the field is 0).
    pub ip_len: u32,
    /// Fragment position.
    pub fragment: Fragment,
}

/// Parse an IPv4 or IPv6 header, chosen by the version nibble.
///
/// Errors: `ipv4`/`ipv6` with `truncated` (header cut), `bad_version`, `bad_header_length`
/// (IHL < 5), `bad_length` (total length < header), `too_many_headers`.
pub fn parse_ip(d: &[u8]) -> Result<IpView<'_>, DecodeError> {
    match d.first().map(|b| b >> 4) {
        Some(4) => parse_ipv4(d),
        Some(6) => parse_ipv6(d),
        Some(_) => Err(DecodeError::new(Layer::Ipv4, Reason::BadVersion)),
        None => Err(DecodeError::new(Layer::Ipv4, Reason::Truncated)),
    }
}

fn parse_ipv4(d: &[u8]) -> Result<IpView<'_>, DecodeError> {
    let e = |r| DecodeError::new(Layer::Ipv4, r);
    if d.len() < 20 {
        return Err(e(Reason::Truncated));
    }
    let ihl = usize::from(d[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(e(Reason::BadHeaderLength));
    }
    if d.len() < ihl {
        return Err(e(Reason::Truncated));
    }
    let total = usize::from(u16::from_be_bytes([d[2], d[3]]));
    // A total length of 0 is what TCP segmentation offload leaves in captures taken on the
    // sender: use the captured length then.
    let (end, ip_len) = if total == 0 {
        (d.len(), d.len() as u32)
    } else if total < ihl {
        return Err(e(Reason::BadLength));
    } else {
        (total.min(d.len()), total as u32)
    };
    let frag = u16::from_be_bytes([d[6], d[7]]);
    let offset = frag & 0x1fff;
    let more = frag & 0x2000 != 0;
    let fragment = match (offset, more) {
        (0, false) => Fragment::None,
        (0, true) => Fragment::First,
        _ => Fragment::Later,
    };
    let (mut proto, mut start) = (d[9], ihl);
    // IPsec Authentication Header (RFC 4302 §2.2) in transport mode: skip it to the
    // protected transport, as for IPv6. Later fragments carry no AH.
    if proto == AH && fragment != Fragment::Later {
        let ah = d.get(start..end).ok_or(e(Reason::Truncated))?;
        let (Some(&next), Some(&len)) = (ah.first(), ah.get(1)) else {
            return Err(e(Reason::Truncated));
        };
        proto = next;
        start = (start + (usize::from(len) + 2) * 4).min(end);
    }
    Ok(IpView {
        src: IpAddr::V4(Ipv4Addr::new(d[12], d[13], d[14], d[15])),
        dst: IpAddr::V4(Ipv4Addr::new(d[16], d[17], d[18], d[19])),
        proto,
        payload: &d[start..end],
        ip_len,
        fragment,
    })
}

/// IP protocol number of the Authentication Header.
const AH: u8 = 51;

fn addr6(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    IpAddr::V6(Ipv6Addr::from(a))
}

fn parse_ipv6(d: &[u8]) -> Result<IpView<'_>, DecodeError> {
    let e = |r| DecodeError::new(Layer::Ipv6, r);
    if d.len() < 40 {
        return Err(e(Reason::Truncated));
    }
    let payload_len = usize::from(u16::from_be_bytes([d[4], d[5]]));
    // Payload length 0 means a jumbogram (RFC 2675) or TSO: use what was captured.
    let (end, ip_len) = if payload_len == 0 {
        (d.len(), d.len() as u32)
    } else {
        ((40 + payload_len).min(d.len()), 40 + payload_len as u32)
    };
    let mut next = d[6];
    let mut off = 40usize;
    let mut fragment = Fragment::None;
    // One pass per extension header, plus the pass that reaches the transport.
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        let hdr_len = match next {
            // Hop-by-Hop, Routing, Destination Options, Mobility, HIP, Shim6, experimental
            // (RFC 8200 §4.1, RFC 7045): (Hdr Ext Len + 1) * 8 octets.
            0 | 43 | 60 | 135 | 139 | 140 | 253 | 254 => {
                let b = d.get(off + 1).ok_or(e(Reason::Truncated))?;
                (usize::from(*b) + 1) * 8
            }
            // Fragment header (RFC 8200 §4.5): 8 octets.
            44 => {
                let fo = be16(d, off + 2).ok_or(e(Reason::Truncated))?;
                let offset = fo >> 3;
                let more = fo & 1 != 0;
                fragment = match (offset, more) {
                    (0, false) => Fragment::None,
                    (0, true) => Fragment::First,
                    _ => Fragment::Later,
                };
                8
            }
            // Authentication Header (RFC 4302 §2.2): (Payload Len + 2) * 4 octets.
            AH => {
                let b = d.get(off + 1).ok_or(e(Reason::Truncated))?;
                (usize::from(*b) + 2) * 4
            }
            _ => {
                return Ok(IpView {
                    src: addr6(&d[8..24]),
                    dst: addr6(&d[24..40]),
                    proto: next,
                    payload: d.get(off..end).unwrap_or(&[]),
                    ip_len,
                    fragment,
                });
            }
        };
        next = *d.get(off).ok_or(e(Reason::Truncated))?;
        off += hdr_len;
        if fragment == Fragment::Later {
            // Later fragments carry no transport header; stop at the fragment header.
            return Ok(IpView {
                src: addr6(&d[8..24]),
                dst: addr6(&d[24..40]),
                proto: next,
                payload: &[],
                ip_len,
                fragment,
            });
        }
    }
    Err(e(Reason::TooManyHeaders))
}

/// The packet of IP header `ip` before its transport is read: no ports, flags, tunnel or
/// anomaly yet.
pub(crate) fn bare_packet(ip: &IpView<'_>) -> Packet {
    let mut pkt = Packet::EMPTY;
    set_ip_fields(&mut pkt, ip);
    pkt
}

/// Decode an IP packet and its transport; when `open_tunnels` is set and the packet is
/// GTP-U on UDP 2152, decode the G-PDU's inner IP packet as the flow instead.
///
/// A GTP-U packet whose header or T-PDU is bad still yields the outer UDP packet, with
/// the problem in [`Packet::anomaly`]. A G-PDU whose GTP-U length runs past the bytes at hand
/// still opens its inner packet, with `gtpu: truncated` (cut by the snap length or an outer
/// fragment) or `gtpu: bad_length` (the UDP datagram is complete, the length field is wrong).
pub fn decode_ip(d: &[u8], open_tunnels: bool) -> Result<Packet, DecodeError> {
    decode_ip_with(d, open_tunnels.then_some(0))
}

/// As [`decode_ip`]; `tunnels` is `None` to leave GTP-U closed (inner packets), or
/// `Some(extra_port)` to open GTP-U on UDP 2152 and, when non-zero, on `extra_port` too (a
/// core that runs GTP-U on a non-standard port).
pub fn decode_ip_with(d: &[u8], tunnels: Option<u16>) -> Result<Packet, DecodeError> {
    let mut pkt = Packet::EMPTY;
    decode_ip_into(d, tunnels, &mut pkt)?;
    Ok(pkt)
}

/// [`decode_ip_with`] writing into `pkt`, which every field of is set on success (the hot
/// path: the packet is built where it is used, not returned and copied through the
/// layers). IP per RFC 791 / RFC 8200, GTP-U per TS 29.281 §5 (as [`decode_ip`]).
///
/// Errors: those of [`parse_ip`] for the outer IP header, with `pkt` left unchanged; a
/// problem further in is [`Packet::anomaly`].
pub fn decode_ip_into(d: &[u8], tunnels: Option<u16>, pkt: &mut Packet) -> Result<(), DecodeError> {
    let ip = parse_ip(d)?;
    set_ip_fields(pkt, &ip);
    pkt.tunnel = None;
    let open_tunnels = tunnels.is_some();
    let extra = tunnels.unwrap_or(0);
    if ip.fragment == Fragment::Later {
        return Ok(());
    }
    let udp_payload = match transport(ip.proto, ip.payload, pkt) {
        Ok(p) => p,
        Err(a) => {
            pkt.anomaly = Some(a);
            return Ok(());
        }
    };
    if !(open_tunnels
        && ip.proto == ipproto::UDP
        && (pkt.dst_port == gtpu::GTPU_PORT
            || pkt.src_port == gtpu::GTPU_PORT
            || (extra != 0 && (pkt.dst_port == extra || pkt.src_port == extra))))
    {
        return Ok(());
    }
    let (header, tpdu) = match gtpu::parse(udp_payload) {
        Ok(x) => x,
        Err(a) => {
            pkt.anomaly = Some(a);
            return Ok(());
        }
    };
    pkt.tunnel = Some(Tunnel {
        outer_src: ip.src,
        outer_dst: ip.dst,
        outer_src_port: pkt.src_port,
        outer_dst_port: pkt.dst_port,
        header,
        uplink: header.pdu_session.map(|psc| psc.pdu_type == gtpu::PSC_UL),
        session: None,
    });
    if header.message_type != gtpu::MSG_GPDU {
        return Ok(());
    }
    if header.truncated {
        pkt.anomaly = Some(DecodeError::new(Layer::Gtpu, gtpu_overrun_reason(&ip)));
    }
    // An inner IPv4/IPv6 packet that fails to decode is reported with the inner IP layer's
    // error (`ipv4: truncated`, ...); only a T-PDU that is not IP at all is `non_ip_payload`.
    match gtpu::tpdu_kind(tpdu) {
        gtpu::TpduKind::Ipv4 | gtpu::TpduKind::Ipv6 => match parse_ip(tpdu) {
            Ok(inner) => {
                // The inner packet becomes the flow's, keeping the tunnel; an inner transport
                // problem is reported before the outer one.
                let outer_anomaly = pkt.anomaly;
                set_ip_fields(pkt, &inner);
                if inner.fragment != Fragment::Later {
                    if let Err(a) = transport(inner.proto, inner.payload, pkt) {
                        pkt.anomaly = Some(a);
                    }
                }
                pkt.anomaly = pkt.anomaly.or(outer_anomaly);
            }
            Err(a) => pkt.anomaly = Some(a),
        },
        // An outer fragment cut inside the GTP-U header leaves no T-PDU to look at.
        gtpu::TpduKind::Empty if header.truncated => {}
        gtpu::TpduKind::Empty | gtpu::TpduKind::NonIp => {
            pkt.anomaly = Some(DecodeError::new(Layer::Gtpu, Reason::NonIpPayload));
        }
    }
    Ok(())
}

/// Set every field of `pkt` but the tunnel to those of the bare packet of `ip`: its
/// addresses, protocol, length and fragment position; no ports, flags or anomaly.
#[inline]
fn set_ip_fields(pkt: &mut Packet, ip: &IpView<'_>) {
    pkt.src = ip.src;
    pkt.dst = ip.dst;
    pkt.proto = ip.proto;
    pkt.src_port = 0;
    pkt.dst_port = 0;
    pkt.icmp = None;
    pkt.tcp_flags = 0;
    pkt.ip_len = ip.ip_len;
    pkt.fragment = ip.fragment;
    pkt.anomaly = None;
}

/// Why a GTP-U length runs past the bytes at hand. When the UDP datagram is all there (the
/// outer IP packet is not a fragment and the UDP length fits in the captured bytes), the
/// GTP-U length field itself is wrong: `bad_length`. Otherwise the datagram was cut by the
/// snap length or by outer IP fragmentation: `truncated`.
fn gtpu_overrun_reason(outer: &IpView<'_>) -> Reason {
    let udp_len = be16(outer.payload, 4).map_or(0, usize::from);
    if outer.fragment == Fragment::None && udp_len >= 8 && udp_len <= outer.payload.len() {
        Reason::BadLength
    } else {
        Reason::Truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place decoder the pipeline uses gives, for every frame of every bundled
    /// capture, the packet (or error) the by-value one gives, although its buffer still
    /// holds the previous frame's packet: it sets every field.
    #[test]
    fn in_place_matches_by_value_on_every_bundled_frame() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let mut out = Packet::EMPTY;
        let (mut frames, mut tunnelled) = (0, 0);
        for entry in std::fs::read_dir(&dir).expect("tests/data") {
            let path = entry.expect("entry").path();
            let Ok(mut src) = crate::capture::FileSource::open(&path) else {
                continue;
            };
            let _ = src.for_each(|f| {
                let Ok(crate::decode::link::Network::Ip(ip)) = crate::decode::link::network_layer(f.linktype, f.data)
                else {
                    return;
                };
                let want = decode_ip_with(ip, Some(0));
                let got = decode_ip_into(ip, Some(0), &mut out).map(|()| out);
                assert_eq!(got, want, "{} at {} ns", path.display(), f.ts_ns);
                frames += 1;
                tunnelled += usize::from(out.tunnel.is_some());
            });
        }
        // The bundled captures hold thousands of IP frames, hundreds of them GTP-U.
        assert!(
            frames > 10_000 && tunnelled > 1_000,
            "{frames} frames, {tunnelled} GTP-U"
        );
    }

    fn ipv4_udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let total = 20 + 8 + payload.len();
        let mut v = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 17, 0, 0];
        v.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        let ulen = 8 + payload.len();
        v.extend_from_slice(&src_port.to_be_bytes());
        v.extend_from_slice(&dst_port.to_be_bytes());
        v.extend_from_slice(&[(ulen >> 8) as u8, ulen as u8, 0, 0]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn ipv4_udp_ports_and_padding() {
        let mut p = ipv4_udp(5353, 53, b"abcd");
        p.extend_from_slice(&[0u8; 10]); // Ethernet padding beyond the IP length
        let pkt = decode_ip(&p, true).unwrap();
        assert_eq!((pkt.src_port, pkt.dst_port, pkt.proto, pkt.ip_len), (5353, 53, 17, 32));
    }

    #[test]
    fn ipv4_bad_ihl_and_truncated() {
        let mut p = ipv4_udp(1, 2, b"");
        p[0] = 0x44;
        assert_eq!(
            decode_ip(&p, true).unwrap_err(),
            DecodeError::new(Layer::Ipv4, Reason::BadHeaderLength)
        );
        assert_eq!(
            decode_ip(&p[..19], true).unwrap_err(),
            DecodeError::new(Layer::Ipv4, Reason::Truncated)
        );
    }

    #[test]
    fn gtpu_gpdu_with_psc_opens_inner_packet() {
        let inner = ipv4_udp(1000, 2000, b"x");
        // Flags 0x34 (E), G-PDU, length, TEID 0x01020304, seq 0, N-PDU 0, next ext 0x85,
        // PSC: len 1, UL (type 1), QFI 9, next 0.
        let mut g = vec![0x34, 0xff, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0x85, 1, 0x10, 0x09, 0];
        let glen = (g.len() - 8 + inner.len()) as u16;
        g[2..4].copy_from_slice(&glen.to_be_bytes());
        g.extend_from_slice(&inner);
        let outer = ipv4_udp(2152, 2152, &g);
        let pkt = decode_ip(&outer, true).unwrap();
        assert_eq!((pkt.src_port, pkt.dst_port), (1000, 2000));
        let t = pkt.tunnel.unwrap();
        assert_eq!(t.header.teid, 0x01020304);
        let ul_qfi9 = gtpu::PduSessionInfo {
            pdu_type: 1,
            qfi: 9,
            ..Default::default()
        };
        assert_eq!(t.header.pdu_session, Some(ul_qfi9));
        assert_eq!(pkt.anomaly, None);
    }

    /// A T-PDU that starts like IPv4 but is cut (0x45 then 3 octets) is an inner `ipv4:
    /// truncated`, while one starting with 0x01 is `gtpu: non_ip_payload`; both keep the
    /// tunnel context and leave the outer UDP packet as the flow.
    #[test]
    fn inner_ip_that_fails_is_not_counted_as_non_ip() {
        for (tpdu, want) in [
            (
                &[0x45u8, 0, 0, 20][..],
                DecodeError::new(Layer::Ipv4, Reason::Truncated),
            ),
            (&[0x60, 0, 0][..], DecodeError::new(Layer::Ipv6, Reason::Truncated)),
            (
                &[0x01, 0x4c, 0x7f, 0xb3][..],
                DecodeError::new(Layer::Gtpu, Reason::NonIpPayload),
            ),
        ] {
            let mut g = vec![0x30, 0xff, 0, tpdu.len() as u8, 0, 0, 0, 9];
            g.extend_from_slice(tpdu);
            let pkt = decode_ip(&ipv4_udp(2152, 2152, &g), true).unwrap();
            assert_eq!(pkt.anomaly, Some(want));
            assert_eq!((pkt.proto, pkt.dst_port), (17, 2152));
            assert_eq!(pkt.tunnel.map(|t| t.header.teid), Some(9));
        }
    }

    /// A G-PDU whose GTP-U length (2096) exceeds its complete UDP datagram (as in frame 139 of
    /// the Open5GS 5G SA capture) has a bad length field; the same G-PDU cut by the snap
    /// length, or carried in a first outer fragment, is truncated.
    #[test]
    fn gtpu_length_past_complete_datagram_is_bad_length_not_truncated() {
        // Inner IPv6 echo request (payload length 8).
        let mut inner = vec![0x60, 0, 0, 1, 0, 8, 58, 0xff];
        inner.extend_from_slice(&[0u8; 32]);
        inner.extend_from_slice(&[128, 0, 0, 0, 0, 1, 0, 1]);
        // Flags 0x34, G-PDU, length 0x0830 (should be 56), TEID 1, PSC UL QFI 1.
        let mut g = vec![0x34, 0xff, 0x08, 0x30, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0x10, 0x01, 0];
        g.extend_from_slice(&inner);
        let outer = ipv4_udp(2152, 2152, &g);
        let pkt = decode_ip(&outer, true).unwrap();
        assert_eq!((pkt.proto, pkt.icmp), (58, Some((128, 0))), "inner packet still used");
        let t = pkt.tunnel.unwrap();
        assert!(t.header.truncated);
        assert_eq!(pkt.anomaly, Some(DecodeError::new(Layer::Gtpu, Reason::BadLength)));

        // Cut by the snap length inside the T-PDU: the UDP length is beyond the capture.
        let cut = &outer[..outer.len() - 4];
        let pkt = decode_ip(cut, true).unwrap();
        assert_eq!(pkt.anomaly, Some(DecodeError::new(Layer::Gtpu, Reason::Truncated)));

        // First fragment of a fragmented outer packet (MF set, offset 0).
        let mut frag = outer.clone();
        frag[6] = 0x20;
        let pkt = decode_ip(&frag, true).unwrap();
        assert_eq!(pkt.anomaly, Some(DecodeError::new(Layer::Gtpu, Reason::Truncated)));
    }

    #[test]
    fn ipv4_ah_then_udp() {
        let udp = [0x13, 0x88, 0x00, 0x35, 0, 9, 0, 0, 0x61];
        // AH: next header UDP (17), payload length 4 → (4 + 2) * 4 = 24 octets.
        let mut ah = vec![17, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
        ah.extend_from_slice(&[0u8; 12]);
        let total = 20 + ah.len() + udp.len();
        let mut p = vec![
            0x45,
            0,
            0,
            total as u8,
            0,
            0,
            0,
            0,
            64,
            51,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        p.extend_from_slice(&ah);
        p.extend_from_slice(&udp);
        let pkt = decode_ip(&p, true).unwrap();
        assert_eq!((pkt.proto, pkt.src_port, pkt.dst_port), (17, 5000, 53));
        // An AH cut before its length field is a truncated IPv4 packet, not a panic.
        assert_eq!(
            decode_ip(&p[..21], true).unwrap_err(),
            DecodeError::new(Layer::Ipv4, Reason::Truncated)
        );
    }

    /// `n` Destination Options headers (8 octets each) before TCP.
    fn ipv6_with_dst_opts(n: usize) -> Vec<u8> {
        let plen = n * 8 + 20;
        let first = if n == 0 { 6 } else { 60 };
        let mut p = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, first, 64];
        p.extend_from_slice(&[0u8; 32]);
        for i in 0..n {
            let next = if i + 1 == n { 6 } else { 60 };
            p.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        let mut tcp = [0u8; 20];
        tcp[2..4].copy_from_slice(&443u16.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x02;
        p.extend_from_slice(&tcp);
        p
    }

    #[test]
    fn ipv6_extension_header_limit_is_inclusive() {
        let pkt = decode_ip(&ipv6_with_dst_opts(MAX_IPV6_EXT_HEADERS), true).unwrap();
        assert_eq!((pkt.proto, pkt.dst_port, pkt.tcp_flags), (6, 443, 0x02));
        assert_eq!(
            decode_ip(&ipv6_with_dst_opts(MAX_IPV6_EXT_HEADERS + 1), true).unwrap_err(),
            DecodeError::new(Layer::Ipv6, Reason::TooManyHeaders)
        );
    }

    #[test]
    fn ipv6_ah_then_icmpv6() {
        let mut p = vec![0x60, 0, 0, 0, 0, 20, 51, 64];
        p.extend_from_slice(&[0u8; 32]);
        // AH: next 58, payload len 1 → (1+2)*4 = 12 octets.
        p.extend_from_slice(&[58, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        p.extend_from_slice(&[128, 0, 0, 0, 0, 0, 0, 0]);
        let pkt = decode_ip(&p, true).unwrap();
        assert_eq!((pkt.proto, pkt.icmp), (58, Some((128, 0))));
    }
}
