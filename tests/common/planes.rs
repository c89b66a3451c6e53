//! The control-plane datagrams and G-PDUs of a capture, in capture order, read with the
//! crate's public decoders (`decode::decode` for G-PDUs, `decode::outer_l4` for the rest):
//! what the session-table tests feed to `SessionTable` and look up.

use std::net::IpAddr;

use fivewatch::capture::FileSource;
use fivewatch::decode::gtpv2c::GTPC_PORT;
use fivewatch::decode::pfcp::PFCP_PORT;
use fivewatch::decode::{self, gtpu, ipproto, Decoded, Fragment, Packet};

/// A captured frame of interest.
pub enum Item {
    /// A whole UDP datagram to or from port 8805 (outer IP, not quoted in ICMP).
    Pfcp {
        src: IpAddr,
        dst: IpAddr,
        payload: Vec<u8>,
        ts: u64,
    },
    /// A whole UDP datagram to or from port 2123.
    Gtpc {
        src: IpAddr,
        dst: IpAddr,
        payload: Vec<u8>,
        ts: u64,
    },
    /// A GTP-U G-PDU (decoded by the crate: inner packet with its tunnel).
    Gpdu { pkt: Packet, ts: u64 },
}

/// PFCP and GTPv2-C datagrams and G-PDUs of capture `name` (panics on a reader error).
pub fn items(name: &str) -> Vec<Item> {
    let mut out = Vec::new();
    FileSource::open(&super::capture(name))
        .and_then(|mut src| {
            src.for_each(|f| {
                if let Ok(Decoded::Ip(p)) = decode::decode(f.linktype, f.data) {
                    if p.tunnel.is_some_and(|t| t.header.message_type == gtpu::MSG_GPDU) {
                        out.push(Item::Gpdu { pkt: p, ts: f.ts_ns });
                        return;
                    }
                }
                let Ok(Some(l4)) = decode::outer_l4(f.linktype, f.data) else {
                    return;
                };
                if l4.proto != ipproto::UDP || l4.fragment != Fragment::None {
                    return;
                }
                let (src, dst, payload, ts) = (l4.src, l4.dst, l4.payload.to_vec(), f.ts_ns);
                let port = |p| l4.src_port == p || l4.dst_port == p;
                if port(PFCP_PORT) {
                    out.push(Item::Pfcp { src, dst, payload, ts });
                } else if port(GTPC_PORT) {
                    out.push(Item::Gtpc { src, dst, payload, ts });
                }
            })
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    out
}
