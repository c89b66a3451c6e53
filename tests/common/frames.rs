//! Frame builders for tests and benchmarks: Ethernet II / IPv4 (RFC 791) / TCP (RFC 9293)
//! / UDP (RFC 768) / GTP-U G-PDU (TS 29.281 §5.1, PDU Session Container TS 38.415 §5.5.2),
//! byte by byte, so the values a test expects are fixed by construction.
#![allow(dead_code)]

/// IPv4 header (no options, DF set, TTL 64, checksum 0) followed by `l4`.
pub fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut v = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, proto, 0, 0];
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(l4);
    v
}

/// 20-byte TCP header with `flags` (0x02 SYN, 0x12 SYN-ACK, 0x10 ACK).
pub fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t
}

/// UDP header (checksum 0) and payload.
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// Ethernet II frame (zero MACs, EtherType IPv4) around `ip`.
pub fn ether(ip: Vec<u8>) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend(ip);
    f
}

/// Ethernet frame of a TCP SYN.
pub fn syn(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    ether(ipv4(6, src, dst, &tcp(sport, dport, 0x02)))
}

/// Ethernet / IPv4 `outer_src` → `outer_dst` / UDP 2152 → 2152 / GTP-U G-PDU with `teid`,
/// optionally a PDU Session Container `(pdu_type, qfi)` (0 = DL, 1 = UL), carrying `inner`.
pub fn gtpu(outer_src: [u8; 4], outer_dst: [u8; 4], teid: u32, psc: Option<(u8, u8)>, inner: Vec<u8>) -> Vec<u8> {
    let mut g = vec![if psc.is_some() { 0x34 } else { 0x30 }, 0xff, 0, 0];
    g.extend_from_slice(&teid.to_be_bytes());
    if let Some((pdu_type, qfi)) = psc {
        // Sequence/N-PDU/next type 0x85; PSC: length 1 (4 octets), type, QFI, next type 0.
        g.extend_from_slice(&[0, 0, 0, 0x85, 1, pdu_type << 4, qfi, 0]);
    }
    let glen = (g.len() - 8 + inner.len()) as u16;
    g[2..4].copy_from_slice(&glen.to_be_bytes());
    g.extend(inner);
    ether(ipv4(17, outer_src, outer_dst, &udp(2152, 2152, &g)))
}
