//! GTP-U extension headers by type (TS 29.281 §5.2.1) against tshark: for every capture,
//! the number of G-PDUs carrying each extension header type equals
//! `gtpu_gpdu_ext_header_types` in `tests/data/expected/` (made by
//! `scripts/tshark-expected.py` from `gtp.ext_hdr.next`).

mod common;

use std::collections::BTreeMap;

use fivewatch::decode::gtpu::{EXT_TYPES, MSG_GPDU};
use fivewatch::decode::Decoded;

#[test]
fn gpdu_extension_header_types_match_tshark() {
    let mut checked = 0;
    for name in common::captures_with_expected() {
        let exp = common::expected(&name).unwrap();
        let want: BTreeMap<String, u64> = exp["gtpu_gpdu_ext_header_types"]
            .as_object()
            .expect("expected JSON has gtpu_gpdu_ext_header_types")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for d in common::decode_all(&common::capture(&name)) {
            let Ok(Decoded::Ip(p)) = d else { continue };
            let Some(t) = p.tunnel else { continue };
            if t.header.message_type != MSG_GPDU {
                continue;
            }
            for (i, (code, _)) in EXT_TYPES.iter().enumerate() {
                if t.header.ext_types & (1 << i) != 0 {
                    *got.entry(format!("0x{code:02x}")).or_default() += 1;
                }
            }
            assert_eq!(
                t.header.ext_types >> EXT_TYPES.len(),
                0,
                "{name}: no unnamed types in these captures"
            );
        }
        assert_eq!(got, want, "{name}");
        checked += usize::from(!want.is_empty());
    }
    // 5G SA (0x85), the PcapPlusPlus GTP sample (0xc0, 0x40) and Zeek's PDCP sample (0xc0).
    assert_eq!(checked, 3);
}
