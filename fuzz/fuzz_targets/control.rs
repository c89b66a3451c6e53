//! The other control-plane decoders, on one input: GTPv2-C (TS 29.274: header, piggybacked
//! message, IE walk with grouped Bearer Contexts, F-TEID/PAA/Cause/EBI/IMSI, the summary the
//! session table uses) and SCTP (RFC 9260 chunk walk, DATA/I-DATA, NGAP/S1AP PDU header).
#![no_main]

use fivewatch::decode::{gtpv2c, sctp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
