//! Transport headers: TCP (RFC 9293 §3.1), UDP (RFC 768), ICMP (RFC 792), ICMPv6
//! (RFC 4443 §2.1) and the SCTP common header (RFC 9260 §3.1).

use super::link::be16;
use super::{ipproto, DecodeError, Layer, Packet, Reason};

/// Fill ports, flags and ICMP type/code of `pkt` from the transport header in `d`.
///
/// Returns the transport payload (the UDP payload cut to the UDP length, the TCP segment
/// data, ...). A header cut by the snap length still fills what it can (ports from the first
/// 4 octets, TCP flags from octet 13) and returns `Err(<layer>: truncated)` as an anomaly.
pub fn transport<'a>(proto: u8, d: &'a [u8], pkt: &mut Packet) -> Result<&'a [u8], DecodeError> {
    match proto {
        ipproto::TCP => {
            let e = |r| DecodeError::new(Layer::Tcp, r);
            if let (Some(s), Some(t)) = (be16(d, 0), be16(d, 2)) {
                pkt.src_port = s;
                pkt.dst_port = t;
            }
            if let Some(f) = d.get(13) {
                pkt.tcp_flags = *f;
            }
            if d.len() < 20 {
                return Err(e(Reason::Truncated));
            }
            let off = usize::from(d[12] >> 4) * 4;
            if off < 20 {
                return Err(e(Reason::BadHeaderLength));
            }
            Ok(d.get(off..).unwrap_or(&[]))
        }
        ipproto::UDP => {
            let e = |r| DecodeError::new(Layer::Udp, r);
            if let (Some(s), Some(t)) = (be16(d, 0), be16(d, 2)) {
                pkt.src_port = s;
                pkt.dst_port = t;
            }
            let len = be16(d, 4).ok_or(e(Reason::Truncated))?;
            if d.len() < 8 {
                return Err(e(Reason::Truncated));
            }
            let len = usize::from(len);
            if len != 0 && len < 8 {
                return Err(e(Reason::BadLength));
            }
            // Length 0 is legal for IPv6 jumbograms; otherwise honour it over padding.
            let end = if len == 0 { d.len() } else { len.min(d.len()) };
            Ok(&d[8..end])
        }
        ipproto::ICMP | ipproto::ICMPV6 => {
            match (d.first(), d.get(1)) {
                (Some(t), Some(c)) => pkt.icmp = Some((*t, *c)),
                _ => return Err(DecodeError::new(Layer::Icmp, Reason::Truncated)),
            }
            Ok(d.get(8..).unwrap_or(&[]))
        }
        ipproto::SCTP => {
            if let (Some(s), Some(t)) = (be16(d, 0), be16(d, 2)) {
                pkt.src_port = s;
                pkt.dst_port = t;
            }
            d.get(12..).ok_or(DecodeError::new(Layer::Sctp, Reason::Truncated))
        }
        _ => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> Packet {
        Packet::EMPTY
    }

    #[test]
    fn tcp_syn() {
        let mut h = [0u8; 20];
        h[0..2].copy_from_slice(&40000u16.to_be_bytes());
        h[2..4].copy_from_slice(&443u16.to_be_bytes());
        h[12] = 0x50;
        h[13] = 0x02;
        let mut p = blank();
        assert_eq!(transport(6, &h, &mut p), Ok(&[][..]));
        assert_eq!((p.src_port, p.dst_port, p.tcp_flags), (40000, 443, 0x02));
    }

    #[test]
    fn tcp_cut_by_snaplen_keeps_ports_and_flags() {
        let mut h = [0u8; 14];
        h[0..4].copy_from_slice(&[0, 80, 0x1f, 0x90]);
        h[13] = 0x12;
        let mut p = blank();
        assert_eq!(
            transport(6, &h, &mut p),
            Err(DecodeError::new(Layer::Tcp, Reason::Truncated))
        );
        assert_eq!((p.src_port, p.dst_port, p.tcp_flags), (80, 8080, 0x12));
    }

    #[test]
    fn udp_bad_length() {
        let h = [0, 53, 0, 53, 0, 4, 0, 0];
        let mut p = blank();
        assert_eq!(
            transport(17, &h, &mut p),
            Err(DecodeError::new(Layer::Udp, Reason::BadLength))
        );
    }
}
