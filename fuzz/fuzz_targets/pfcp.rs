//! PFCP (TS 29.244): header, the grouped-IE walk with every typed IE decoder, and the session
//! table. The input is a sequence of messages `[length u16 LE][bytes]`, each decoded on its
//! own and fed to one `SessionTable` from the peer its type suggests, so that requests,
//! responses, retransmissions and restarts built by earlier messages meet later ones; after
//! each message a TEID and a UE address are looked up.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use fivewatch::decode::pfcp;
use fivewatch::session::{SessionConfig, SessionTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = SessionConfig {
        capacity: 8,
        ..SessionConfig::default()
    };
    let mut table = SessionTable::new(cfg);
    let cp = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
    let up = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
    let mut rest = data;
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut i = 0u32;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let msg = &rest[2..2 + len];
        rest = &rest[2 + len..];
        let _ = pfcp::parse(msg).map(|(_, ies)| {
            pfcp::walk(ies, &mut |_, ie| {
                let v = ie.value;
                let _ = (
                    pfcp::node_id(v),
                    pfcp::f_seid(v),
                    pfcp::f_teid(v),
                    pfcp::ue_ip_address(v),
                );
                let _ = (
                    pfcp::source_interface(v),
                    pfcp::outer_header_creation(v),
                    pfcp::cause(v),
                );
                let _ = (pfcp::recovery_time_stamp(v).map(|r| r.unix_seconds()), pfcp::qfi(v));
            })
        });
        ts += 100_000_000;
        i += 1;
        // Responses come from the UP function, requests from the CP function (and, for node
        // messages, sometimes the other way round: every 4th message swaps).
        let response = msg.get(1).is_some_and(|t| pfcp::MessageType(*t).is_response());
        let (src, dst) = if response != (i % 4 == 0) { (up, cp) } else { (cp, up) };
        table.note_packet(ts);
        let _ = table.on_pfcp(src, dst, msg, ts);
        if let Err(e) = table.check_tunnel_info() {
            panic!("{e}");
        }
        let teid = msg.get(..4).map_or(1, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let _ = table.lookup_teid(up, teid, ts);
        let _ = table.lookup_ue(IpAddr::V4(Ipv4Addr::new(10, 45, 0, (i % 16) as u8)));
    }
});
