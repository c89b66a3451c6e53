//! Hand-built fragment sets. Expected values come from the RFCs: IPv4 Total Length and
//! Fragment Offset (RFC 791 §3.1), the IPv6 Fragment header and reassembled packet
//! (RFC 8200 §4.5), overlaps (RFC 5722), tiny fragments (RFC 1858 §3), header checksum
//! (RFC 1071 §1: a header with a valid checksum sums to 0xffff).

use proptest::prelude::*;

use super::*;
use crate::decode::ip::decode_ip_with;
use crate::decode::{Fragment, Packet};

const SEC_NS: u64 = 1_000_000_000;

/// UDP header (1111 → 2222, length set) followed by `n` payload bytes 0, 1, 2, ...
fn udp_datagram(n: usize) -> Vec<u8> {
    let len = 8 + n;
    let mut v = vec![0x04, 0x57, 0x08, 0xae, (len >> 8) as u8, len as u8, 0, 0];
    v.extend((0..n).map(|i| i as u8));
    v
}

/// TCP header (443 → 50000, SYN|ACK, data offset 5) followed by `n` bytes.
fn tcp_segment(n: usize) -> Vec<u8> {
    let mut v = vec![
        0x01, 0xbb, 0xc3, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0,
    ];
    v.extend((0..n).map(|i| (i * 7) as u8));
    v
}

/// IPv4 fragment 10.0.0.1 → 10.0.0.2 with DF clear, TTL 64.
fn v4_frag(id: u16, proto: u8, off: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let total = 20 + data.len();
    let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut v = vec![0x45, 0, (total >> 8) as u8, total as u8];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&fo.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0xde, 0xad, 10, 0, 0, 1, 10, 0, 0, 2]);
    v.extend_from_slice(data);
    v
}

/// Split `payload` into IPv4 fragments of `size` data bytes (a multiple of 8).
fn v4_split(id: u16, proto: u8, payload: &[u8], size: usize) -> Vec<Vec<u8>> {
    let n = payload.len().div_ceil(size);
    (0..n)
        .map(|i| {
            let end = ((i + 1) * size).min(payload.len());
            v4_frag(id, proto, i * size, i + 1 < n, &payload[i * size..end])
        })
        .collect()
}

/// IPv6 fe80::1 → ff02::fb packet: `ext` (already chained, the last header's Next Header
/// being 44; `first_nh` names the first) then a Fragment header (next `nh`, identification
/// `id`) and `data`.
fn v6_frag(first_nh: u8, ext: &[u8], nh: u8, id: u32, off: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let plen = ext.len() + 8 + data.len();
    let mut v = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, first_nh, 255];
    v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb]);
    v.extend_from_slice(ext);
    let fo = off as u16 | u16::from(more);
    v.extend_from_slice(&[nh, 0]);
    v.extend_from_slice(&fo.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn v6_split(ext_first: u8, ext: &[u8], id: u32, payload: &[u8], size: usize) -> Vec<Vec<u8>> {
    let n = payload.len().div_ceil(size);
    (0..n)
        .map(|i| {
            let end = ((i + 1) * size).min(payload.len());
            v6_frag(ext_first, ext, 17, id, i * size, i + 1 < n, &payload[i * size..end])
        })
        .collect()
}

fn owned(o: Outcome<'_>) -> Result<Vec<u8>, Outcome<'static>> {
    match o {
        Outcome::Complete(p) => Ok(p.to_vec()),
        Outcome::NotFragment => Err(Outcome::NotFragment),
        Outcome::Pending => Err(Outcome::Pending),
        Outcome::Duplicate => Err(Outcome::Duplicate),
        Outcome::Dropped(r) => Err(Outcome::Dropped(r)),
    }
}

/// Push `frags` in order at time 0; the outcomes, with the rebuilt packet copied out.
fn push_all(r: &mut Reassembler, frags: &[Vec<u8>]) -> Vec<Result<Vec<u8>, Outcome<'static>>> {
    frags.iter().map(|f| owned(r.push(f, 0))).collect()
}

fn only_complete(outs: &[Result<Vec<u8>, Outcome<'static>>]) -> Vec<u8> {
    let done: Vec<&Vec<u8>> = outs.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(done.len(), 1, "{outs:?}");
    done[0].clone()
}

fn rfc1071_sum(h: &[u8]) -> u16 {
    let mut s: u32 = h.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn decoded(p: &[u8]) -> Packet {
    decode_ip_with(p, Some(0)).expect("rebuilt packet decodes")
}

fn default_r() -> Reassembler {
    Reassembler::new(&ReassemblyLimits::default())
}

#[test]
fn ipv4_in_order_rebuilds_a_valid_packet() {
    let payload = udp_datagram(1992); // 2000 octets of UDP
    let frags = v4_split(0x1234, 17, &payload, 1480);
    assert_eq!(frags.len(), 2);
    let mut r = default_r();
    let outs = push_all(&mut r, &frags);
    assert_eq!(outs[0], Err(Outcome::Pending));
    let p = only_complete(&outs);
    // RFC 791: Total Length = 20-octet header + 2000 data octets; MF and offset cleared.
    assert_eq!(p.len(), 2020);
    assert_eq!(u16::from_be_bytes([p[2], p[3]]), 2020);
    assert_eq!(u16::from_be_bytes([p[6], p[7]]), 0);
    assert_eq!(&p[4..6], &[0x12, 0x34], "identification kept");
    assert_eq!(rfc1071_sum(&p[..20]), 0xffff, "header checksum valid");
    assert_eq!(&p[20..], &payload[..]);
    let pkt = decoded(&p);
    assert_eq!(
        (pkt.src_port, pkt.dst_port, pkt.ip_len, pkt.fragment),
        (1111, 2222, 2020, Fragment::None)
    );
    assert_eq!(r.stats().get(Counter::Reassembled), 1);
    assert_eq!(r.stats().get(Counter::Fragments), 2);
    assert_eq!((r.stats().datagrams, r.stats().buffered_bytes), (0, 0));
}

#[test]
fn ipv4_out_of_order_and_last_first_give_the_same_packet() {
    let payload = udp_datagram(4000);
    let frags = v4_split(7, 17, &payload, 1000);
    assert_eq!(frags.len(), 5);
    let in_order = only_complete(&push_all(&mut default_r(), &frags));
    for order in [[4, 3, 2, 1, 0], [2, 0, 4, 1, 3], [4, 0, 1, 2, 3]] {
        let set: Vec<Vec<u8>> = order.iter().map(|&i| frags[i].clone()).collect();
        let outs = push_all(&mut default_r(), &set);
        assert!(outs[..4].iter().all(|o| *o == Err(Outcome::Pending)), "{order:?}");
        assert_eq!(outs[4].as_ref().ok(), Some(&in_order), "{order:?}");
    }
    assert_eq!(in_order.len(), 20 + 4008);
}

#[test]
fn exact_duplicates_are_ignored_and_counted() {
    let frags = v4_split(9, 17, &udp_datagram(2992), 1480);
    let mut r = default_r();
    let set = [&frags[0], &frags[0], &frags[1], &frags[1], &frags[2]].map(|f| f.clone());
    let outs = push_all(&mut r, &set);
    assert_eq!(outs[1], Err(Outcome::Duplicate));
    assert_eq!(outs[3], Err(Outcome::Duplicate));
    assert_eq!(only_complete(&outs).len(), 20 + 3000);
    assert_eq!(r.stats().get(Counter::Duplicate), 2);
    assert_eq!(r.stats().get(Counter::Fragments), 5);
}

#[test]
fn overlap_with_different_data_abandons_the_datagram() {
    let payload = udp_datagram(2992);
    let frags = v4_split(11, 17, &payload, 1480);
    let mut forged = frags[1].clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff; // same offset and length, one byte differs
    let mut r = default_r();
    assert_eq!(r.push(&frags[0], 0), Outcome::Pending);
    assert_eq!(r.push(&frags[1], 0), Outcome::Pending);
    assert_eq!(r.push(&forged, 0), Outcome::Dropped(Counter::Overlap));
    // RFC 5722: later fragments of the datagram are discarded too.
    assert_eq!(r.push(&frags[2], 0), Outcome::Dropped(Counter::Abandoned));
    assert_eq!(r.stats().get(Counter::Overlap), 1);
    assert_eq!(r.stats().get(Counter::Abandoned), 1);
    assert_eq!(r.stats().get(Counter::Reassembled), 0);
    assert_eq!(r.stats().buffered_bytes, 0, "abandoned datagrams hold no bytes");
    // The tombstone goes silently at the timeout (not counted as `timeout`).
    r.expire(30 * SEC_NS);
    assert_eq!((r.stats().datagrams, r.stats().get(Counter::Timeout)), (0, 0));
}

/// A partial overlap whose overlapping bytes are identical is still an overlap: RFC 5722
/// (IPv6) makes no exception for it, and the same rule is applied to IPv4.
#[test]
fn partial_overlap_with_identical_data_is_dropped_for_both_versions() {
    let payload = udp_datagram(40); // 48 octets
    let mut r = default_r();
    assert_eq!(r.push(&v4_frag(1, 17, 0, true, &payload[..24]), 0), Outcome::Pending);
    assert_eq!(
        r.push(&v4_frag(1, 17, 16, false, &payload[16..]), 0),
        Outcome::Dropped(Counter::Overlap)
    );
    assert_eq!(
        r.push(&v6_frag(44, &[], 17, 1, 0, true, &payload[..24]), 0),
        Outcome::Pending
    );
    assert_eq!(
        r.push(&v6_frag(44, &[], 17, 1, 8, false, &payload[8..]), 0),
        Outcome::Dropped(Counter::Overlap)
    );
    assert_eq!(r.stats().get(Counter::Overlap), 2);
}

#[test]
fn conflicting_last_fragments_are_an_overlap() {
    let payload = udp_datagram(40);
    let mut r = default_r();
    assert_eq!(r.push(&v4_frag(2, 17, 32, false, &payload[32..]), 0), Outcome::Pending);
    // A second last fragment ending earlier (at 24, not 48), overlapping nothing.
    assert_eq!(
        r.push(&v4_frag(2, 17, 16, false, &payload[16..24]), 0),
        Outcome::Dropped(Counter::Overlap)
    );
    // Data past the end set by the last fragment.
    assert_eq!(r.push(&v4_frag(4, 17, 8, false, &payload[8..16]), 0), Outcome::Pending);
    assert_eq!(
        r.push(&v4_frag(4, 17, 16, true, &payload[16..24]), 0),
        Outcome::Dropped(Counter::Overlap)
    );
}

#[test]
fn timeouts_count_from_the_first_fragment_per_version() {
    let v4 = v4_split(5, 17, &udp_datagram(2000), 1480);
    let v6 = v6_split(44, &[], 5, &udp_datagram(2000), 1232);
    let mut r = default_r();
    assert_eq!(r.push(&v4[0], 0), Outcome::Pending);
    assert_eq!(r.push(&v6[0], 0), Outcome::Pending);
    assert_eq!(r.stats().datagrams, 2);
    r.expire(30 * SEC_NS - 1);
    assert_eq!(r.stats().datagrams, 2);
    r.expire(30 * SEC_NS); // IPv4: 30 s
    assert_eq!((r.stats().datagrams, r.stats().get(Counter::Timeout)), (1, 1));
    r.expire(60 * SEC_NS); // IPv6: 60 s (RFC 8200 §4.5)
    assert_eq!((r.stats().datagrams, r.stats().get(Counter::Timeout)), (0, 2));
    assert_eq!(r.stats().buffered_bytes, 0);
    // A fragment arriving after the timeout without an expire call starts a new datagram.
    assert_eq!(r.push(&v4[1], 100 * SEC_NS), Outcome::Pending);
    assert_eq!(r.push(&v4[0], 131 * SEC_NS), Outcome::Pending);
    assert_eq!(r.stats().get(Counter::Timeout), 3);
}

#[test]
fn datagram_limit_evicts_the_oldest() {
    let limits = ReassemblyLimits {
        max_datagrams: 4,
        ..ReassemblyLimits::default()
    };
    let mut r = Reassembler::new(&limits);
    let sets: Vec<Vec<Vec<u8>>> = (0..5).map(|id| v4_split(id, 17, &udp_datagram(1600), 1480)).collect();
    for (t, s) in sets.iter().enumerate() {
        assert_eq!(r.push(&s[0], t as u64), Outcome::Pending);
    }
    assert_eq!(r.stats().datagrams, 4);
    assert_eq!(r.stats().get(Counter::TooManyDatagrams), 1);
    // id 0 (the oldest) was evicted: its last fragment starts over; id 4 completes.
    assert_eq!(r.push(&sets[0][1], 10), Outcome::Pending);
    assert!(matches!(r.push(&sets[4][1], 10), Outcome::Complete(p) if p.len() == 1628));
    assert_eq!(r.stats().get(Counter::TooManyDatagrams), 2, "id 1 made room for id 0");
}

#[test]
fn byte_budget_evicts_the_oldest_and_is_never_exceeded() {
    let limits = ReassemblyLimits {
        max_bytes: IPV6_MAX_PACKET,
        ..ReassemblyLimits::default()
    };
    let mut r = Reassembler::new(&limits);
    // First fragments of 8000 data octets: 8 fit in 65,575 bytes, the 9th evicts one.
    for id in 0..9u16 {
        let f = v4_frag(id, 17, 0, true, &udp_datagram(7992));
        assert_eq!(r.push(&f, u64::from(id)), Outcome::Pending);
        assert!(r.stats().buffered_bytes <= IPV6_MAX_PACKET);
    }
    assert_eq!(r.stats().get(Counter::MemoryLimit), 1);
    assert_eq!(r.stats().datagrams, 8);
    assert_eq!(r.stats().buffered_bytes, 8 * (8000 + 20 + PIECE_COST));
    // One datagram alone over the budget: 9 fragments holding 65,512 octets plus the header
    // and bookkeeping exceed 65,575, so its last fragment abandons it.
    let mut r = Reassembler::new(&limits);
    let frags = v4_split(99, 17, &udp_datagram(65_504), 7280);
    assert_eq!(frags.len(), 9);
    let outs = push_all(&mut r, &frags);
    assert_eq!(outs[8], Err(Outcome::Dropped(Counter::MemoryLimit)));
    assert_eq!(r.stats().buffered_bytes, 0);
}

/// A flood of first fragments with random identifications that never complete stays within
/// both limits, and, because the oldest datagram is the one evicted, a datagram whose two
/// fragments arrive close together still completes in the middle of the flood.
#[test]
fn random_id_flood_stays_bounded_and_recent_datagrams_complete() {
    let limits = ReassemblyLimits {
        max_datagrams: 256,
        max_bytes: 1 << 20,
        ..ReassemblyLimits::default()
    };
    let mut r = Reassembler::new(&limits);
    let junk = udp_datagram(1472);
    let good = v4_split(0xbeef, 17, &udp_datagram(2000), 1480);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut completed = 0;
    for i in 0..20_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut f = v4_frag(x as u16, 17, 0, true, &junk);
        f[12..16].copy_from_slice(&((x >> 16) as u32).to_be_bytes()); // random source
        assert_eq!(r.push(&f, i), Outcome::Pending);
        if i % 1000 == 500 {
            assert_eq!(r.push(&good[0], i), Outcome::Pending);
        }
        if i % 1000 == 510 && matches!(r.push(&good[1], i), Outcome::Complete(p) if p.len() == 2028) {
            completed += 1;
        }
        assert!(r.stats().buffered_bytes <= 1 << 20);
        assert!(r.stats().datagrams <= 256);
    }
    assert_eq!(completed, 20);
    assert!(r.slots.len() <= 256);
    let evicted = r.stats().get(Counter::TooManyDatagrams) + r.stats().get(Counter::MemoryLimit);
    assert_eq!(
        evicted + r.stats().datagrams as u64,
        20_000,
        "every flood datagram evicted or held"
    );
}

#[test]
fn offsets_past_the_largest_packet_are_too_large() {
    let mut r = default_r();
    // IPv4: offset 8191 * 8 = 65528 plus 8 octets plus a 20-octet header > 65,535.
    assert_eq!(
        r.push(&v4_frag(1, 17, 65_528, true, &[0; 8]), 0),
        Outcome::Dropped(Counter::TooLarge)
    );
    // Ending exactly at Total Length 65,535 is fine.
    assert_eq!(r.push(&v4_frag(1, 17, 65_512, false, &[0; 3]), 0), Outcome::Pending);
    // IPv6: the reassembled Payload Length may be 65,535 at most: 65,528 + 8 + 8 is not.
    assert_eq!(
        r.push(&v6_frag(44, &[], 17, 1, 65_528, false, &[0; 8]), 0),
        Outcome::Dropped(Counter::TooLarge)
    );
    assert_eq!(
        r.push(&v6_frag(44, &[], 17, 1, 65_528, false, &[0; 7]), 0),
        Outcome::Pending
    );
    assert_eq!(r.stats().get(Counter::TooLarge), 2);
}

#[test]
fn tiny_first_fragment_abandons_the_datagram() {
    let seg = tcp_segment(100);
    let mut r = default_r();
    // 16 octets cannot hold the 20-octet TCP header (RFC 1858 §3).
    assert_eq!(
        r.push(&v4_frag(3, 6, 0, true, &seg[..16]), 0),
        Outcome::Dropped(Counter::TinyFirstFragment)
    );
    assert_eq!(
        r.push(&v4_frag(3, 6, 16, false, &seg[16..]), 0),
        Outcome::Dropped(Counter::Abandoned)
    );
    // 24 octets hold it.
    assert_eq!(r.push(&v4_frag(4, 6, 0, true, &seg[..24]), 0), Outcome::Pending);
    assert!(matches!(
        r.push(&v4_frag(4, 6, 24, false, &seg[24..]), 0),
        Outcome::Complete(_)
    ));
    // IPv6: a Destination Options header in the fragmentable part pushes the UDP header
    // past the 8 octets of the first fragment (RFC 7112).
    let mut dst_then_udp = vec![17, 0, 1, 4, 0, 0, 0, 0];
    dst_then_udp.extend_from_slice(&udp_datagram(32));
    assert_eq!(
        r.push(&v6_frag(44, &[], 60, 9, 0, true, &dst_then_udp[..8]), 0),
        Outcome::Dropped(Counter::TinyFirstFragment)
    );
    assert_eq!(r.stats().get(Counter::TinyFirstFragment), 2);
}

#[test]
fn bad_and_truncated_fragments_are_discarded_alone() {
    let mut r = default_r();
    // Non-last fragment of 12 octets: not a multiple of 8.
    assert_eq!(
        r.push(&v4_frag(1, 17, 0, true, &[0; 12]), 0),
        Outcome::Dropped(Counter::BadFragment)
    );
    // A fragment without data.
    assert_eq!(
        r.push(&v4_frag(1, 17, 8, false, &[]), 0),
        Outcome::Dropped(Counter::BadFragment)
    );
    // Captured bytes end before Total Length.
    let f = v4_frag(1, 17, 0, true, &[0; 16]);
    assert_eq!(r.push(&f[..30], 0), Outcome::Dropped(Counter::Truncated));
    assert_eq!(r.stats().datagrams, 0, "nothing was buffered");
    assert_eq!(r.stats().get(Counter::Fragments), 3);
}

#[test]
fn non_fragments_pass_through() {
    let mut r = default_r();
    let whole = v4_frag(1, 17, 0, false, &udp_datagram(10));
    assert_eq!(r.push(&whole, 0), Outcome::NotFragment);
    // IPv6 atomic fragment (offset 0, M 0): processed in isolation (RFC 6946).
    assert_eq!(
        r.push(&v6_frag(44, &[], 17, 1, 0, false, &udp_datagram(10)), 0),
        Outcome::NotFragment
    );
    for junk in [&[][..], &[0x45], &[0x60; 39], &[0x12; 64]] {
        assert_eq!(r.push(junk, 0), Outcome::NotFragment);
    }
    assert_eq!(r.stats().get(Counter::Fragments), 0);
}

#[test]
fn ipv4_key_includes_the_protocol() {
    let a = udp_datagram(40);
    let mut r = default_r();
    assert_eq!(r.push(&v4_frag(1, 17, 0, true, &a[..24]), 0), Outcome::Pending);
    // Same addresses and identification, protocol 6: another datagram (RFC 791 §3.2).
    assert_eq!(r.push(&v4_frag(1, 6, 24, false, &a[24..]), 0), Outcome::Pending);
    assert_eq!(r.stats().datagrams, 2);
    assert!(matches!(
        r.push(&v4_frag(1, 17, 24, false, &a[24..]), 0),
        Outcome::Complete(_)
    ));
}

/// IPv6 with Hop-by-Hop and Destination Options before the Fragment header: the rebuilt
/// packet keeps both, the Destination Options header's Next Header becomes the Fragment
/// header's (UDP, from the offset-0 fragment) and Payload Length covers both headers plus the
/// reassembled data (RFC 8200 §4.5).
#[test]
fn ipv6_unfragmentable_extension_headers_are_kept() {
    // HBH (next 60, 8 octets, PadN) then Destination Options (next 44, 8 octets, PadN).
    let ext = [60, 0, 1, 4, 0, 0, 0, 0, 44, 0, 1, 4, 0, 0, 0, 0];
    let payload = udp_datagram(3000);
    let mut frags = v6_split(0, &ext, 0xabcd_0001, &payload, 1232);
    assert_eq!(frags.len(), 3);
    // Next Header of a non-first Fragment header is ignored (RFC 8200 §4.5).
    let nh_at = 40 + ext.len();
    frags[2][nh_at] = 59;
    let mut r = default_r();
    let p = only_complete(&push_all(
        &mut r,
        &[frags[2].clone(), frags[0].clone(), frags[1].clone()],
    ));
    assert_eq!(p.len(), 40 + 16 + 3008);
    assert_eq!(u16::from_be_bytes([p[4], p[5]]), 16 + 3008);
    assert_eq!(p[6], 0, "first Next Header still Hop-by-Hop");
    assert_eq!(&p[40..48], &ext[..8]);
    assert_eq!(p[48], 17, "last extension header now names UDP");
    assert_eq!(&p[49..56], &ext[9..16]);
    assert_eq!(&p[56..], &payload[..]);
    let pkt = decoded(&p);
    assert_eq!((pkt.proto, pkt.src_port, pkt.dst_port), (17, 1111, 2222));
    assert_eq!(pkt.ip_len as usize, p.len());
}

#[test]
fn ipv6_plain_fragments_reassemble() {
    let payload = udp_datagram(2000);
    let frags = v6_split(44, &[], 77, &payload, 1232);
    let mut r = default_r();
    let p = only_complete(&push_all(&mut r, &frags));
    assert_eq!(p.len(), 40 + 2008);
    assert_eq!((p[6], u16::from_be_bytes([p[4], p[5]])), (17, 2008));
}

#[test]
fn too_many_fragments_abandon_the_datagram() {
    let limits = ReassemblyLimits {
        max_fragments_per_datagram: 4,
        ..ReassemblyLimits::default()
    };
    let mut r = Reassembler::new(&limits);
    let frags = v4_split(1, 17, &udp_datagram(72), 16);
    assert_eq!(frags.len(), 5);
    let outs = push_all(&mut r, &frags);
    assert_eq!(outs[4], Err(Outcome::Dropped(Counter::TooManyFragments)));
}

/// The steady state reuses one slot and its buffer: completed datagrams leave no slot
/// behind, so the table never grows past the datagrams in flight.
#[test]
fn slots_are_reused() {
    let mut r = default_r();
    for id in 0..100u16 {
        let frags = v4_split(id, 17, &udp_datagram(2992), 1480);
        assert_eq!(only_complete(&push_all(&mut r, &frags)).len(), 3020);
    }
    assert_eq!(r.slots.len(), 1);
    assert!(r.slots[0].data.capacity() >= 3000);
}

#[test]
fn fragment_ports_lend_first_fragment_ports() {
    let limits = ReassemblyLimits {
        inner_port_entries: 2,
        ..ReassemblyLimits::default()
    };
    let mut c = FragmentPorts::new(&limits);
    let f = v4_split(1, 17, &udp_datagram(2000), 1480);
    // A later fragment before its first: no ports.
    assert_eq!(c.observe(&f[1], 0), None);
    assert_eq!(c.observe(&f[0], 0), Some((1111, 2222)));
    assert_eq!(c.observe(&f[1], 1), Some((1111, 2222)));
    // Two more first fragments evict the oldest entry (capacity 2).
    let g = v4_split(2, 17, &udp_datagram(2000), 1480);
    let h = v6_split(44, &[], 3, &tcp_segment(2000), 1232);
    assert_eq!(c.observe(&g[0], 2), Some((1111, 2222)));
    let h0: Vec<u8> = {
        let mut v = h[0].clone();
        v[40] = 6; // the TCP segment: Fragment header Next Header 6
        v
    };
    assert_eq!(c.observe(&h0, 3), Some((443, 50000)));
    assert_eq!(c.observe(&f[1], 4), None, "evicted");
    assert_eq!(c.stats().evicted, 1);
    assert_eq!(c.observe(&h[1], 4), Some((443, 50000)));
    // IPv4 entries expire 30 s after they were learned, IPv6 ones after 60 s.
    c.expire(2 + 30 * SEC_NS);
    assert_eq!(c.observe(&g[1], 2 + 30 * SEC_NS), None);
    assert_eq!(c.observe(&h[1], 2 + 30 * SEC_NS), Some((443, 50000)));
    c.expire(3 + 60 * SEC_NS);
    assert_eq!((c.stats().entries, c.stats().expired), (0, 2));
    assert_eq!(c.observe(&whole_packet(), 0), None);
}

fn whole_packet() -> Vec<u8> {
    v4_frag(1, 17, 0, false, &udp_datagram(8))
}

#[test]
fn gtpu_inner_ip_finds_the_t_pdu() {
    let inner = v4_frag(0x55, 17, 0, true, &udp_datagram(40)[..16]);
    // GTP-U G-PDU, no options: flags 0x30, type 255, length, TEID 0x01020304.
    let mut g = vec![0x30, 0xff, 0, inner.len() as u8, 1, 2, 3, 4];
    g.extend_from_slice(&inner);
    let mut udp = vec![0x08, 0x68, 0x08, 0x68, 0, (8 + g.len()) as u8, 0, 0];
    udp.extend_from_slice(&g);
    let outer = v4_frag(9, 17, 0, false, &udp);
    assert_eq!(gtpu_inner_ip(&outer, 0), Some(&inner[..]));
    let mut other = outer.clone();
    other[20..22].copy_from_slice(&[0x13, 0x88]); // ports 5000 → 5000
    other[22..24].copy_from_slice(&[0x13, 0x88]);
    assert_eq!(gtpu_inner_ip(&other, 0), None);
    assert_eq!(gtpu_inner_ip(&other, 5000), Some(&inner[..]));
    let mut c = FragmentPorts::new(&ReassemblyLimits::default());
    assert_eq!(c.observe(&inner, 0), Some((1111, 2222)));
}

#[test]
fn limits_validate_and_default() {
    let d = ReassemblyLimits::default();
    assert_eq!(d.validate(), Ok(()));
    assert_eq!((d.max_datagrams, d.max_bytes), (4096, 16 << 20));
    let bad = ReassemblyLimits {
        ipv6_timeout_s: f64::NAN,
        ..d.clone()
    };
    assert_eq!(bad.validate().unwrap_err().key, "reassembly.ipv6_timeout_s");
    let bad = ReassemblyLimits { max_bytes: 1000, ..d };
    assert_eq!(bad.validate().unwrap_err().key, "reassembly.max_bytes");
    let parsed: ReassemblyLimits = toml::from_str("max_datagrams = 10\nipv4_timeout_s = 15.0").unwrap();
    assert_eq!(
        (parsed.max_datagrams, parsed.ipv4_timeout_s, parsed.max_bytes),
        (10, 15.0, 16 << 20)
    );
    assert!(toml::from_str::<ReassemblyLimits>("max_datagram = 10").is_err());
    for (i, c) in Counter::ALL.iter().enumerate() {
        assert_eq!(c.index(), i);
    }
}

/// One fragment of a small set of datagrams (few identifications, so fragments meet),
/// with arbitrary offsets, flags and data, or raw bytes.
fn arb_packet() -> impl Strategy<Value = Vec<u8>> {
    let frag = (
        0u16..4,
        any::<bool>(),
        0u16..64,
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(id, v6, off8, more, data)| {
            if v6 {
                v6_frag(44, &[], 17, u32::from(id), usize::from(off8) * 8, more, &data)
            } else {
                v4_frag(id, 17, usize::from(off8) * 8, more, &data)
            }
        });
    prop_oneof![
        4 => frag,
        1 => prop::collection::vec(any::<u8>(), 0..120),
        1 => prop::collection::vec(any::<u8>(), 0..120).prop_map(|mut v| {
            if let Some(b) = v.first_mut() {
                *b = 0x45;
            }
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever is pushed: no panic, the budget and the datagram limit hold, and a rebuilt
    /// packet always decodes and states its own length.
    #[test]
    fn never_panics_and_stays_within_limits(
        pkts in prop::collection::vec((arb_packet(), 0u64..5), 0..80),
        max_datagrams in 1usize..6,
    ) {
        let limits = ReassemblyLimits {
            max_datagrams,
            max_bytes: IPV6_MAX_PACKET,
            max_fragments_per_datagram: 8,
            ..ReassemblyLimits::default()
        };
        let mut r = Reassembler::new(&limits);
        let mut ports = FragmentPorts::new(&limits);
        let mut now = 0u64;
        for (p, dt) in &pkts {
            now += dt * 10 * SEC_NS;
            let o = r.push(p, now);
            if let Outcome::Complete(b) = o {
                let pkt = decode_ip_with(b, Some(0));
                prop_assert!(pkt.is_ok());
                prop_assert_eq!(pkt.map(|x| x.ip_len as usize).ok(), Some(b.len()));
            }
            ports.observe(p, now);
            prop_assert!(r.stats().buffered_bytes <= IPV6_MAX_PACKET);
            prop_assert!(r.stats().datagrams <= max_datagrams);
            r.expire(now);
            ports.expire(now);
        }
        r.expire(u64::MAX);
        prop_assert_eq!((r.stats().datagrams, r.stats().buffered_bytes), (0, 0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any arrival order of a datagram's fragments, with exact duplicates of the fragments
    /// already held mixed in, rebuilds the original payload exactly once, on the fragment
    /// that fills the last hole.
    #[test]
    fn any_order_with_duplicates_rebuilds_the_payload(
        n in 1usize..3000,
        size8 in 1usize..200,
        v6 in any::<bool>(),
        order in prop::collection::vec(any::<prop::sample::Index>(), 1..80),
    ) {
        let payload = udp_datagram(n);
        let frags = if v6 {
            v6_split(44, &[], 42, &payload, size8 * 8)
        } else {
            v4_split(42, 17, &payload, size8 * 8)
        };
        prop_assume!(frags.len() > 1);
        // Each fragment once, in an order drawn from `order`, then duplicates of some.
        let mut seq: Vec<usize> = (0..frags.len()).collect();
        for (i, ix) in order.iter().enumerate() {
            let len = seq.len();
            seq.swap(i % len, ix.index(len));
        }
        let last = seq.pop().unwrap_or(0);
        seq.extend(order.iter().map(|ix| ix.index(frags.len())).filter(|&i| i != last));
        seq.push(last);
        let limits = ReassemblyLimits { max_fragments_per_datagram: 8192, ..ReassemblyLimits::default() };
        let mut r = Reassembler::new(&limits);
        let mut done = Vec::new();
        for (k, &i) in seq.iter().enumerate() {
            if let Outcome::Complete(p) = r.push(&frags[i], 0) {
                done.push((k, p.to_vec()));
            }
        }
        prop_assert_eq!(done.len(), 1);
        prop_assert_eq!(done[0].0, seq.len() - 1);
        let hdr = if v6 { 40 } else { 20 };
        prop_assert_eq!(&done[0].1[hdr..], &payload[..]);
        prop_assert_eq!(r.stats().get(Counter::Reassembled), 1);
    }
}
