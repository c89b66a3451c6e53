//! GTP-U header, extension-header chain, PDU Session Container (TS 29.281 §5) and the
//! information elements of signalling messages (§8), given a UDP payload; and the same bytes as the UDP payload of an IPv4 packet to UDP 2152, so the
//! inner T-PDU is opened too.
#![no_main]

use fivewatch::decode::{gtpu, ip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((h, body)) = gtpu::parse(data) {
        // The information elements of every message type (TS 29.281 §7-8).
        let _ = gtpu::parse_ies(h.message_type, body);
    }
    let udp_len = (8 + data.len()).min(usize::from(u16::MAX));
    let total = (20 + udp_len).min(usize::from(u16::MAX));
    let mut pkt = Vec::with_capacity(total);
    pkt.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0, 0, 64, 17, 0, 0]);
    pkt.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    pkt.extend_from_slice(&[0x08, 0x68, 0x08, 0x68, (udp_len >> 8) as u8, udp_len as u8, 0, 0]);
    pkt.extend_from_slice(&data[..total - 28]);
    let by_value = ip::decode_ip_with(&pkt, Some(0));
    // The in-place decoder (the pipeline's) writes every field: into a buffer left dirty by
    // another packet it gives the same packet.
    let mut out = ip::decode_ip_with(&pkt[..pkt.len().min(60)], Some(0))
        .unwrap_or(fivewatch::decode::Packet::EMPTY);
    let in_place = ip::decode_ip_into(&pkt, Some(0), &mut out).map(|()| out);
    assert_eq!(by_value, in_place);
});
