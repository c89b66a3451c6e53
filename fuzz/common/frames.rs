//! The frame-sequence input format of the `frame` and `workers` targets: each frame is
//! `[link-type selector u8][timestamp step u8][length u16 LE][bytes]`.

use fivewatch::capture::{Frame, LinkType};

/// Link types the decoder knows, plus one it does not.
pub const LINK_TYPES: [u32; 10] = [1, 113, 276, 101, 12, 228, 229, 0, 108, 147];

/// The frames of `data`, at most `max`: capture time starts at 1.7e18 ns and moves by up to
/// ~2 s per frame (so that ticks, window roll-over and expiry run); a step of 0xff jumps
/// back 5 s (a new time base).
pub fn parse(data: &[u8], max: usize) -> Vec<Frame<'_>> {
    let mut frames = Vec::new();
    let mut rest = data;
    let mut ts: u64 = 1_700_000_000_000_000_000;
    while rest.len() >= 4 && frames.len() < max {
        let linktype = LinkType(LINK_TYPES[usize::from(rest[0]) % LINK_TYPES.len()]);
        ts = if rest[1] == 0xff {
            ts.saturating_sub(5_000_000_000)
        } else {
            ts.saturating_add(u64::from(rest[1]) * 8_000_000)
        };
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        let bytes = &rest[4..4 + len];
        rest = &rest[4 + len..];
        frames.push(Frame {
            ts_ns: ts,
            linktype,
            data: bytes,
            wire_len: bytes.len() as u32,
        });
    }
    frames
}
