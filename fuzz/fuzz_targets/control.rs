//! The other control-plane decoders, on one input: GTPv2-C (TS 29.274: header, piggybacked
//! message, IE walk with grouped Bearer Contexts, F-TEID/PAA/Cause/EBI/IMSI, the summary the
//! session table uses, and the session table itself) and SCTP (RFC 9260 chunk walk, DATA/I-DATA, NGAP/S1AP PDU header).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use fivewatch::decode::{gtpv2c, sctp};
use fivewatch::session::{SessionConfig, SessionTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The session table learns from the same bytes as a datagram each way (request from the
    // MME side, response from the SGW side), then from each half as its own datagram.
    let mut table = SessionTable::new(SessionConfig {
        capacity: 8,
        ..SessionConfig::default()
    });
    let (mme, sgw) = (
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
    );
    let half = data.len() / 2;
    for (i, (src, dst, d)) in [
        (mme, sgw, data),
        (sgw, mme, data),
        (mme, sgw, &data[..half]),
        (sgw, mme, &data[half..]),
    ]
    .into_iter()
    .enumerate()
    {
        let ts = 1_700_000_000_000_000_000 + i as u64 * 1_000_000;
        let _ = table.on_gtpv2c(src, dst, d, ts);
        if let Err(e) = table.check_tunnel_info() {
            panic!("{e}");
        }
        let _ = table.lookup_teid(sgw, 1, ts);
    }
    for m in gtpv2c::messages(data).flatten() {
        let summary = gtpv2c::summarize(&m);
        std::hint::black_box(&summary);
        for ie in gtpv2c::ies(m.ies).flatten() {
            let v = ie.value;
            let _ = (gtpv2c::Fteid::parse(v), gtpv2c::Paa::parse(v), gtpv2c::Cause::parse(v));
            let _ = (gtpv2c::parse_ebi(v), gtpv2c::Imsi::parse(v).map(|i| i.as_str().len()));
        }
    }
    if let Ok((h, chunks)) = sctp::parse(data) {
        for c in chunks.flatten() {
            if let Some(Ok(d)) = sctp::DataChunk::parse(&c) {
                let _ = sctp::ran_pdu(&d, h.src_port, h.dst_port);
                let _ = sctp::parse_ap_pdu(d.payload);
            }
        }
    }
});
