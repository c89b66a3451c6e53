//! Synthetic 5G capture generator for benchmarks: a GTP-U-heavy N3 mix with its N4 (PFCP)
//! signalling, N6 background and two attacks, written as a classic pcap (LINKTYPE_ETHERNET,
//! microsecond timestamps). The same seed gives the same file, octet for octet.
//!
//! ```text
//! cargo run --release --example synth_5g -- --packets 5000000 --out FILE.pcap [--seed N]
//! cargo run --release --example synth_5g -- --flows-only 2000000 --out FLOWS.pcap
//! ```
//!
//! # The mix (defaults)
//!
//! Topology: `--ues` (10 000) UEs 10.45.x.y behind `--gnbs` (4) gNBs (N3 10.30.0.1–4), one
//! UPF (N3 10.31.0.1, N4 10.32.0.2) and one SMF (N4 10.32.0.1); 4096 Internet servers with
//! Zipf-ish popularity (server index ⌊4096·u²⌋: the top server gets 1.6 % of the
//! conversations, the top 64 get 12.5 %).
//!
//! - **N4 (PFCP, UDP 8805)**: one Session Establishment Request (SMF → UPF) and its
//!   Response (UPF → SMF, Cause accepted, UP F-SEID) per UE, written just before the UE's
//!   first packet; UEs come online over the first 20 % of the capture (10 % of them at
//!   once). UEs are numbered from 0: UE i is 10.45.0.0 + i + 2. The Request carries Node ID, CP F-SEID, Create PDR 1 (PDI: Source Interface
//!   Access, F-TEID = UL TEID 0x10000000+i at the UPF's N3 address, UE IP Address), Create
//!   PDR 2 (PDI: Source Interface Core, UE IP Address as destination), Create FAR 1 (to
//!   Core), Create FAR 2 (to Access, Outer Header Creation GTP-U/UDP/IPv4 with the DL TEID
//!   0x20000000+i at the UE's gNB) and Create QER (QFI 9). These are the IEs
//!   `fivewatch::session` reads, so every G-PDU below maps to its UE's session.
//! - **N3 (GTP-U, UDP 2152), about 95 % of packets**: G-PDUs with a PDU Session Container
//!   (UL type 1 gNB → UPF with the UL TEID, DL type 0 UPF → gNB with the DL TEID, QFI 9).
//!   `--concurrency` (20 000) conversations are open at any time (the slots open over the
//!   first 10 × concurrency packets); each packet goes to a random one, so packets of a
//!   conversation are ~`concurrency` packets (0.1 s) apart. New
//!   conversations: 70 % TCP to port 443/80 (SYN and SYN-ACK with options, ACK, a request
//!   of 100–700 octets, responses of 1400 octets with one client ACK per two segments, FIN
//!   both ways, last ACK; data segments per flow Pareto(x_m = 2, α = 1.1) capped at 5000:
//!   most flows are short, a few are elephants), 15 % DNS (query 60–90 octets, answer
//!   90–300; a quarter ask twice), 15 % QUIC-like UDP 443 (1252-octet Initial both ways, then
//!   DL 1000–1350 / UL 60–90, Pareto as above). Sizes are inner IPv4 total lengths.
//! - **N6 (plain IPv4)**: 5 % of the conversations above are written untunnelled (the
//!   UPF's N6 side), with the same UE addresses as clients.
//! - **Attacks**, about 3 % of packets: a SYN flood from UE 7 through its tunnel towards
//!   203.0.113.80:80 (random source ports, never answered) in the middle 40 % of the
//!   capture (5 % of the packets there, ~10 000 SYN/s at the default rate), and a
//!   vertical TCP SYN port scan from UE 42 of 203.0.113.200, ports 1, 2, 3 ... in 20–80 %
//!   of the capture (0.4 % there, ~800 probes/s: below the 2000 SYN/s per host that would
//!   also make it a flood); ports 22, 80, 443 and 8080 answer SYN-ACK and the scanner
//!   resets them, the rest are filtered (no answer). The two attacker UEs send nothing
//!   else. With the defaults and 5 M packets: G-PDUs 94.7 % (attacks included), N6 4.9 %,
//!   PFCP 0.4 % (2 per UE whatever the size), flood 2.2 %, scan 0.25 % (`synth_5g` prints
//!   the counts).
//!
//! Capture time advances by a uniform jitter around 1/`--rate` (200 000 packets/s) from
//! 2026-01-01T00:00:00Z. IPv4 header checksums are computed; TCP checksums are left 0 and
//! UDP checksums are 0 (allowed for IPv4); payloads are zeros.
//!
//! `--flows-only N` writes instead the PFCP sessions of all UEs and then N distinct UDP
//! conversations (one UL query, one DL answer each, all through GTP-U) inside ~N/rate·2 s:
//! a capture with N concurrent flows for measuring flow-table memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Write a synthetic GTP-U-heavy 5G capture (classic pcap, Ethernet)")]
struct Args {
    /// Packets to write (at least; the last conversation step may add a few).
    #[arg(long, default_value_t = 5_000_000)]
    packets: u64,
    /// Output pcap file.
    #[arg(long, required_unless_present = "print_sizes")]
    out: Option<PathBuf>,
    /// Random seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of UEs (at most 60 000).
    #[arg(long, default_value_t = 10_000)]
    ues: u32,
    /// Number of gNBs (1–200).
    #[arg(long, default_value_t = 4)]
    gnbs: u32,
    /// Conversations open at once.
    #[arg(long, default_value_t = 20_000)]
    concurrency: u32,
    /// Average packets per second of capture time.
    #[arg(long, default_value_t = 200_000)]
    rate: u64,
    /// Instead of the mix: PFCP for every UE, then this many 2-packet UDP conversations
    /// (all distinct, all concurrent).
    #[arg(long)]
    flows_only: Option<u64>,
    /// Print `size_of` of fivewatch's flow-table entry and key, and exit.
    #[arg(long)]
    print_sizes: bool,
}

// ---------------------------------------------------------------- addresses and constants

const UE_NET: [u8; 2] = [10, 45];
const UPF_N3: [u8; 4] = [10, 31, 0, 1];
const SMF_N4: [u8; 4] = [10, 32, 0, 1];
const UPF_N4: [u8; 4] = [10, 32, 0, 2];
const FLOOD_UE: u32 = 7;
const FLOOD_TARGET: [u8; 4] = [203, 0, 113, 80];
const SCAN_UE: u32 = 42;
const SCAN_TARGET: [u8; 4] = [203, 0, 113, 200];
const SCAN_OPEN: [u16; 4] = [22, 80, 443, 8080];
const SERVERS: u32 = 4096;
const QFI: u8 = 9;
const START_S: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const MAC_GNB_SIDE: [u8; 6] = [0x02, 0, 0, 0, 0x30, 0x01];
const MAC_UPF_SIDE: [u8; 6] = [0x02, 0, 0, 0, 0x31, 0x01];
const MAC_CORE: [u8; 6] = [0x02, 0, 0, 0, 0x32, 0x01];
const MAC_INTERNET: [u8; 6] = [0x02, 0, 0, 0, 0x40, 0x01];

const ETH: usize = 14;
const IP4: usize = 20;
const UDPH: usize = 8;
/// GTP-U header (8), sequence/N-PDU/next-type (4), PDU Session Container (4).
const GTPH: usize = 16;
const TUN: usize = ETH + IP4 + UDPH + GTPH;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

// ---------------------------------------------------------------- random numbers

/// SplitMix64: small, fast, and good enough for traffic shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(u64::from(hi - lo) + 1) as u32
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Pareto(x_m = 2, α = 1.1) capped at 5000: data packets of one conversation.
    fn flow_len(&mut self) -> u32 {
        let u = 1.0 - self.unit(); // (0, 1]
        (2.0 / u.powf(1.0 / 1.1)).min(5000.0) as u32
    }
}

// ---------------------------------------------------------------- the model

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Dns,
    Quic,
}

/// One conversation between a UE (client) and a server.
#[derive(Clone, Copy)]
struct Conv {
    live: bool,
    kind: Kind,
    tunnelled: bool,
    ue: u32,
    server: [u8; 4],
    sport: u16,
    dport: u16,
    step: u32,
    /// Data packets (TCP segments after the handshake, QUIC packets after the Initials,
    /// DNS: number of query/answer pairs).
    data: u32,
    cseq: u32,
    sseq: u32,
}

const IDLE: Conv = Conv {
    live: false,
    kind: Kind::Tcp,
    tunnelled: true,
    ue: 0,
    server: [0; 4],
    sport: 0,
    dport: 0,
    step: 0,
    data: 0,
    cseq: 0,
    sseq: 0,
};

/// One inner packet to write.
struct Pkt {
    up: bool,
    proto: u8,
    len: usize,
    flags: u8,
    /// TCP header length (20, 24 or 40).
    thl: usize,
    seq: u32,
    ack: u32,
}

fn ue_ip(i: u32) -> [u8; 4] {
    let n = i + 2;
    [UE_NET[0], UE_NET[1], (n >> 8) as u8, n as u8]
}

fn server_ip(i: u32) -> [u8; 4] {
    // Spread over public-looking /8s, never 10/8 or 203.0.113/24.
    [
        23 + (i % 97) as u8,
        (i >> 4) as u8 ^ 0x5a,
        (i * 37) as u8,
        1 + (i % 251) as u8,
    ]
}

fn gnb_ip(g: u32) -> [u8; 4] {
    [10, 30, 0, 1 + g as u8]
}

fn ul_teid(i: u32) -> u32 {
    0x1000_0000 + i
}

fn dl_teid(i: u32) -> u32 {
    0x2000_0000 + i
}

fn cp_seid(i: u32) -> u64 {
    0x0001_0000 + u64::from(i)
}

// ---------------------------------------------------------------- writer

struct Out {
    w: BufWriter<File>,
    buf: Vec<u8>,
    ts_ns: u64,
    step_ns: u64,
    rng_time: Rng,
    packets: u64,
    bytes: u64,
    ip_id: u16,
}

impl Out {
    fn new(file: File, rate: u64, seed: u64) -> io::Result<Out> {
        let mut w = BufWriter::with_capacity(8 << 20, file);
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&65535u32.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        w.write_all(&h)?;
        Ok(Out {
            w,
            buf: vec![0; 2048],
            ts_ns: START_S * 1_000_000_000,
            step_ns: (1_000_000_000 / rate.max(1)).max(1),
            rng_time: Rng(seed ^ 0x7469_6d65),
            packets: 0,
            bytes: 0,
            ip_id: 0,
        })
    }

    /// Write `buf[..len]` as the next record and advance capture time.
    fn emit(&mut self, len: usize) -> io::Result<()> {
        let us = self.ts_ns / 1000;
        let mut r = [0u8; 16];
        r[0..4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        r[4..8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        r[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        r[12..16].copy_from_slice(&(len as u32).to_le_bytes());
        self.w.write_all(&r)?;
        self.w.write_all(&self.buf[..len])?;
        self.packets += 1;
        self.bytes += len as u64;
        self.ts_ns += self.rng_time.below(2 * self.step_ns) + 1;
        Ok(())
    }

    fn eth(&mut self, dst: [u8; 6], src: [u8; 6]) {
        let b = &mut self.buf;
        b[0..6].copy_from_slice(&dst);
        b[6..12].copy_from_slice(&src);
        b[12..14].copy_from_slice(&[0x08, 0x00]);
    }

    /// IPv4 header at `off` (no options, DF, TTL 64) with its checksum.
    fn ipv4(&mut self, off: usize, total: usize, proto: u8, src: [u8; 4], dst: [u8; 4]) {
        self.ip_id = self.ip_id.wrapping_add(1);
        let h = &mut self.buf[off..off + IP4];
        h[0] = 0x45;
        h[1] = 0;
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        h[6..8].copy_from_slice(&[0x40, 0]);
        h[8] = 64;
        h[9] = proto;
        h[10..12].copy_from_slice(&[0, 0]);
        h[12..16].copy_from_slice(&src);
        h[16..20].copy_from_slice(&dst);
        let mut sum = 0u32;
        for c in h.chunks_exact(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }

    fn udp(&mut self, off: usize, sport: u16, dport: u16, len: usize) {
        let h = &mut self.buf[off..off + UDPH];
        h[0..2].copy_from_slice(&sport.to_be_bytes());
        h[2..4].copy_from_slice(&dport.to_be_bytes());
        h[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        h[6..8].copy_from_slice(&[0, 0]);
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(&mut self, off: usize, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, thl: usize) {
        let h = &mut self.buf[off..off + thl];
        h[0..2].copy_from_slice(&sport.to_be_bytes());
        h[2..4].copy_from_slice(&dport.to_be_bytes());
        h[4..8].copy_from_slice(&seq.to_be_bytes());
        h[8..12].copy_from_slice(&ack.to_be_bytes());
        h[12] = ((thl / 4) as u8) << 4;
        h[13] = flags;
        h[14..16].copy_from_slice(&64240u16.to_be_bytes());
        h[16..20].copy_from_slice(&[0, 0, 0, 0]);
        match thl {
            // MSS 1460 (a scanner's SYN).
            24 => h[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]),
            // MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
            40 => h[20..40].copy_from_slice(&[2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]),
            _ => {}
        }
    }

    /// GTP-U G-PDU header with sequence flag and a PDU Session Container at `off`,
    /// carrying `inner` octets.
    fn gtpu(&mut self, off: usize, teid: u32, up: bool, inner: usize) {
        let h = &mut self.buf[off..off + GTPH];
        h[0] = 0x34; // version 1, PT 1, E 1
        h[1] = 0xff;
        h[2..4].copy_from_slice(&((GTPH - 8 + inner) as u16).to_be_bytes());
        h[4..8].copy_from_slice(&teid.to_be_bytes());
        h[8..12].copy_from_slice(&[0, 0, 0, 0x85]);
        h[12..16].copy_from_slice(&[1, if up { 0x10 } else { 0x00 }, QFI, 0]);
    }

    /// Write one inner packet of conversation `c` (client = UE `c.ue`), tunnelled or not.
    fn conv_packet(&mut self, c: &Conv, p: &Pkt, gnbs: u32) -> io::Result<()> {
        let ue = ue_ip(c.ue);
        let (src, dst, sport, dport) = if p.up {
            (ue, c.server, c.sport, c.dport)
        } else {
            (c.server, ue, c.dport, c.sport)
        };
        let base = if c.tunnelled { TUN } else { ETH };
        self.ipv4(base, p.len, p.proto, src, dst);
        let l4 = base + IP4;
        let hdr = if p.proto == 6 {
            self.tcp(l4, sport, dport, p.seq, p.ack, p.flags, p.thl);
            p.thl
        } else {
            self.udp(l4, sport, dport, p.len - IP4);
            UDPH
        };
        self.buf[l4 + hdr..base + p.len].fill(0);
        if c.tunnelled {
            let gnb = gnb_ip(c.ue % gnbs);
            let (osrc, odst, teid, msrc, mdst) = if p.up {
                (gnb, UPF_N3, ul_teid(c.ue), MAC_GNB_SIDE, MAC_UPF_SIDE)
            } else {
                (UPF_N3, gnb, dl_teid(c.ue), MAC_UPF_SIDE, MAC_GNB_SIDE)
            };
            self.eth(mdst, msrc);
            self.ipv4(ETH, IP4 + UDPH + GTPH + p.len, 17, osrc, odst);
            self.udp(ETH + IP4, 2152, 2152, UDPH + GTPH + p.len);
            self.gtpu(ETH + IP4 + UDPH, teid, p.up, p.len);
        } else if p.up {
            self.eth(MAC_INTERNET, MAC_UPF_SIDE);
        } else {
            self.eth(MAC_UPF_SIDE, MAC_INTERNET);
        }
        self.emit(base + p.len)
    }

    /// A PFCP message from `src` to `dst` (UDP 8805 both ways).
    fn pfcp(&mut self, src: [u8; 4], dst: [u8; 4], msg: &[u8]) -> io::Result<()> {
        self.eth(MAC_CORE, MAC_CORE);
        let len = IP4 + UDPH + msg.len();
        self.ipv4(ETH, len, 17, src, dst);
        self.udp(ETH + IP4, 8805, 8805, UDPH + msg.len());
        self.buf[ETH + IP4 + UDPH..ETH + len].copy_from_slice(msg);
        self.emit(ETH + len)
    }
}

// ---------------------------------------------------------------- PFCP (TS 29.244)

fn ie(out: &mut Vec<u8>, t: u16, v: &[u8]) {
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

fn pfcp_msg(mtype: u8, seid: u64, seq: u32, ies: &[u8]) -> Vec<u8> {
    let mut m = vec![0x21, mtype];
    m.extend_from_slice(&((12 + ies.len()) as u16).to_be_bytes());
    m.extend_from_slice(&seid.to_be_bytes());
    m.extend_from_slice(&(seq << 8).to_be_bytes());
    m.extend_from_slice(ies);
    m
}

/// Session Establishment Request and Response for UE `i`.
fn pfcp_establishment(i: u32, gnb: [u8; 4], seq: u32) -> (Vec<u8>, Vec<u8>) {
    use fivewatch::decode::pfcp::ie as t;
    let ue = ue_ip(i);
    let mut fseid = vec![0x02];
    fseid.extend_from_slice(&cp_seid(i).to_be_bytes());
    fseid.extend_from_slice(&SMF_N4);
    let mut fteid = vec![0x01];
    fteid.extend_from_slice(&ul_teid(i).to_be_bytes());
    fteid.extend_from_slice(&UPF_N3);
    let ue_src = [0x02, ue[0], ue[1], ue[2], ue[3]];
    let ue_dst = [0x06, ue[0], ue[1], ue[2], ue[3]];

    let mut body = Vec::with_capacity(256);
    ie(&mut body, t::NODE_ID, &[0, SMF_N4[0], SMF_N4[1], SMF_N4[2], SMF_N4[3]]);
    ie(&mut body, t::F_SEID, &fseid);
    // PDR 1: uplink, from Access, matched on the F-TEID; outer header removed.
    let mut pdi = Vec::new();
    ie(&mut pdi, t::SOURCE_INTERFACE, &[0]);
    ie(&mut pdi, t::F_TEID, &fteid);
    ie(&mut pdi, t::UE_IP_ADDRESS, &ue_src);
    ie(&mut pdi, t::QFI, &[QFI]);
    let mut pdr = Vec::new();
    ie(&mut pdr, t::PDR_ID, &[0, 1]);
    ie(&mut pdr, 29, &255u32.to_be_bytes()); // Precedence
    ie(&mut pdr, t::PDI, &pdi);
    ie(&mut pdr, t::OUTER_HEADER_REMOVAL, &[0]);
    ie(&mut pdr, t::FAR_ID, &1u32.to_be_bytes());
    ie(&mut pdr, t::QER_ID, &1u32.to_be_bytes());
    ie(&mut body, t::CREATE_PDR, &pdr);
    // PDR 2: downlink, from Core, matched on the UE address as destination.
    let mut pdi = Vec::new();
    ie(&mut pdi, t::SOURCE_INTERFACE, &[1]);
    ie(&mut pdi, t::UE_IP_ADDRESS, &ue_dst);
    let mut pdr = Vec::new();
    ie(&mut pdr, t::PDR_ID, &[0, 2]);
    ie(&mut pdr, 29, &255u32.to_be_bytes());
    ie(&mut pdr, t::PDI, &pdi);
    ie(&mut pdr, t::FAR_ID, &2u32.to_be_bytes());
    ie(&mut pdr, t::QER_ID, &1u32.to_be_bytes());
    ie(&mut body, t::CREATE_PDR, &pdr);
    // FAR 1: forward to Core.
    let mut fp = Vec::new();
    ie(&mut fp, t::DESTINATION_INTERFACE, &[1]);
    let mut far = Vec::new();
    ie(&mut far, t::FAR_ID, &1u32.to_be_bytes());
    ie(&mut far, t::APPLY_ACTION, &[0x02]);
    ie(&mut far, t::FORWARDING_PARAMETERS, &fp);
    ie(&mut body, t::CREATE_FAR, &far);
    // FAR 2: forward to Access through the gNB's tunnel.
    let mut ohc = vec![0x01, 0x00];
    ohc.extend_from_slice(&dl_teid(i).to_be_bytes());
    ohc.extend_from_slice(&gnb);
    let mut fp = Vec::new();
    ie(&mut fp, t::DESTINATION_INTERFACE, &[0]);
    ie(&mut fp, t::OUTER_HEADER_CREATION, &ohc);
    let mut far = Vec::new();
    ie(&mut far, t::FAR_ID, &2u32.to_be_bytes());
    ie(&mut far, t::APPLY_ACTION, &[0x02]);
    ie(&mut far, t::FORWARDING_PARAMETERS, &fp);
    ie(&mut body, t::CREATE_FAR, &far);
    let mut qer = Vec::new();
    ie(&mut qer, t::QER_ID, &1u32.to_be_bytes());
    ie(&mut qer, 25, &[0]); // Gate Status: both open
    ie(&mut qer, t::QFI, &[QFI]);
    ie(&mut body, t::CREATE_QER, &qer);
    let req = pfcp_msg(50, 0, seq, &body);

    let mut body = Vec::with_capacity(64);
    ie(&mut body, t::NODE_ID, &[0, UPF_N4[0], UPF_N4[1], UPF_N4[2], UPF_N4[3]]);
    ie(&mut body, t::CAUSE, &[1]);
    let mut fseid = vec![0x02];
    fseid.extend_from_slice(&(0x8000_0000_0000 + u64::from(i)).to_be_bytes());
    fseid.extend_from_slice(&UPF_N4);
    ie(&mut body, t::F_SEID, &fseid);
    let resp = pfcp_msg(51, cp_seid(i), seq, &body);
    (req, resp)
}

// ---------------------------------------------------------------- generator

struct Gen {
    out: Out,
    rng: Rng,
    ues: u32,
    gnbs: u32,
    session_up: Vec<bool>,
    pfcp_seq: u32,
    next_sport: Vec<u16>,
    counts: Counts,
}

#[derive(Default)]
struct Counts {
    pfcp: u64,
    gpdu: u64,
    n6: u64,
    flood: u64,
    scan: u64,
    convs: u64,
}

impl Gen {
    fn ensure_session(&mut self, ue: u32) -> io::Result<()> {
        if self.session_up[ue as usize] {
            return Ok(());
        }
        self.session_up[ue as usize] = true;
        self.pfcp_seq = (self.pfcp_seq + 1) & 0x00ff_ffff;
        let (req, resp) = pfcp_establishment(ue, gnb_ip(ue % self.gnbs), self.pfcp_seq);
        self.out.pfcp(SMF_N4, UPF_N4, &req)?;
        self.out.pfcp(UPF_N4, SMF_N4, &resp)?;
        self.counts.pfcp += 2;
        Ok(())
    }

    /// Next ephemeral port of UE `ue` (32768–60999, cycling).
    fn sport(&mut self, ue: u32) -> u16 {
        let p = &mut self.next_sport[ue as usize];
        *p = if *p >= 60999 || *p < 32768 { 32768 } else { *p + 1 };
        *p
    }

    fn new_conv(&mut self, online: u32) -> Conv {
        let mut ue = self.rng.below(u64::from(online)) as u32;
        if ue == FLOOD_UE || ue == SCAN_UE {
            // The attackers send nothing else.
            ue = (ue + 1) % online;
        }
        let r = self.rng.unit();
        let server = server_ip((f64::from(SERVERS) * r * r) as u32);
        let k = self.rng.below(100);
        let (kind, dport, data) = if k < 70 {
            (Kind::Tcp, if k < 60 { 443 } else { 80 }, self.rng.flow_len())
        } else if k < 85 {
            (Kind::Dns, 53, if self.rng.chance(0.25) { 2 } else { 1 })
        } else {
            (Kind::Quic, 443, self.rng.flow_len())
        };
        self.counts.convs += 1;
        Conv {
            live: true,
            kind,
            tunnelled: !self.rng.chance(0.05),
            ue,
            server: if kind == Kind::Dns {
                [8, 8, (k & 1) as u8 * 4, 8]
            } else {
                server
            },
            sport: self.sport(ue),
            dport,
            step: 0,
            data,
            cseq: self.rng.next() as u32,
            sseq: self.rng.next() as u32,
        }
    }

    /// The next packet of `c`, advancing it; `None` when the conversation is over.
    fn step(&mut self, c: &mut Conv) -> Option<Pkt> {
        let s = c.step;
        c.step += 1;
        let rng = &mut self.rng;
        let udp = |up, len| Pkt {
            up,
            proto: 17,
            len,
            flags: 0,
            thl: 0,
            seq: 0,
            ack: 0,
        };
        match c.kind {
            Kind::Dns => {
                if s >= 2 * c.data {
                    return None;
                }
                Some(if s % 2 == 0 {
                    udp(true, rng.range(60, 90) as usize)
                } else {
                    udp(false, rng.range(90, 300) as usize)
                })
            }
            Kind::Quic => {
                if s >= 2 + c.data {
                    return None;
                }
                Some(match s {
                    0 => udp(true, 1252),
                    1 => udp(false, 1252),
                    _ if s % 4 == 3 => udp(true, rng.range(60, 90) as usize),
                    _ => udp(false, rng.range(1000, 1350) as usize),
                })
            }
            Kind::Tcp => {
                let d = c.data;
                let (up, flags, thl, payload) = if s == 0 {
                    (true, TCP_SYN, 40, 0)
                } else if s == 1 {
                    (false, TCP_SYN | TCP_ACK, 40, 0)
                } else if s == 2 {
                    (true, TCP_ACK, 20, 0)
                } else if s < 3 + d {
                    let i = s - 3;
                    if i == 0 {
                        (true, TCP_PSH | TCP_ACK, 20, rng.range(80, 680) as usize)
                    } else if i % 3 == 0 {
                        (true, TCP_ACK, 20, 0)
                    } else if i + 1 == d {
                        (false, TCP_PSH | TCP_ACK, 20, rng.range(20, 1360) as usize)
                    } else {
                        (false, TCP_ACK, 20, 1360)
                    }
                } else if s == 3 + d {
                    (true, TCP_FIN | TCP_ACK, 20, 0)
                } else if s == 4 + d {
                    (false, TCP_FIN | TCP_ACK, 20, 0)
                } else if s == 5 + d {
                    (true, TCP_ACK, 20, 0)
                } else {
                    return None;
                };
                let (seq, ack) = if up { (c.cseq, c.sseq) } else { (c.sseq, c.cseq) };
                let adv = payload as u32 + u32::from(flags & (TCP_SYN | TCP_FIN) != 0);
                if up {
                    c.cseq = c.cseq.wrapping_add(adv);
                } else {
                    c.sseq = c.sseq.wrapping_add(adv);
                }
                Some(Pkt {
                    up,
                    proto: 6,
                    len: IP4 + thl + payload,
                    flags,
                    thl,
                    seq,
                    ack: if flags & TCP_ACK != 0 { ack } else { 0 },
                })
            }
        }
    }

    fn conv_packet(&mut self, c: &Conv, p: &Pkt) -> io::Result<()> {
        if c.tunnelled {
            self.counts.gpdu += 1;
        } else {
            self.counts.n6 += 1;
        }
        self.out.conv_packet(c, p, self.gnbs)
    }

    fn tcp_probe(&mut self, ue: u32, sport: u16, server: [u8; 4], dport: u16, up: bool, flags: u8) -> io::Result<()> {
        let c = Conv {
            live: true,
            ue,
            server,
            sport,
            dport,
            ..IDLE
        };
        let thl = if flags & TCP_RST != 0 { 20 } else { 24 };
        let seq = self.rng.next() as u32;
        let p = Pkt {
            up,
            proto: 6,
            len: IP4 + thl,
            flags,
            thl,
            seq,
            ack: 0,
        };
        self.counts.gpdu += 1;
        self.out.conv_packet(&c, &p, self.gnbs)
    }

    fn flood_packet(&mut self) -> io::Result<()> {
        self.ensure_session(FLOOD_UE)?;
        let sport = self.rng.range(1024, 65535) as u16;
        self.counts.flood += 1;
        self.tcp_probe(FLOOD_UE, sport, FLOOD_TARGET, 80, true, TCP_SYN)
    }

    fn scan_probe(&mut self, port: u16) -> io::Result<()> {
        self.ensure_session(SCAN_UE)?;
        let sport = 40000 + (port % 7);
        self.tcp_probe(SCAN_UE, sport, SCAN_TARGET, port, true, TCP_SYN)?;
        self.counts.scan += 1;
        if SCAN_OPEN.contains(&port) {
            self.tcp_probe(SCAN_UE, sport, SCAN_TARGET, port, false, TCP_SYN | TCP_ACK)?;
            self.tcp_probe(SCAN_UE, sport, SCAN_TARGET, port, true, TCP_RST)?;
            self.counts.scan += 2;
        }
        Ok(())
    }

    fn mix(&mut self, total: u64, concurrency: u32) -> io::Result<()> {
        let mut slots = vec![IDLE; concurrency.max(1) as usize];
        let mut scan_port: u16 = 0;
        let ramp = (total / 5).max(1);
        while self.out.packets < total {
            let pos = self.out.packets as f64 / total as f64;
            if (0.3..0.7).contains(&pos) && self.rng.chance(0.05) {
                self.flood_packet()?;
                continue;
            }
            if (0.2..0.8).contains(&pos) && self.rng.chance(0.004) {
                scan_port = if scan_port == u16::MAX { 1 } else { scan_port + 1 };
                self.scan_probe(scan_port)?;
                continue;
            }
            let online =
                (u64::from(self.ues) / 10 + u64::from(self.ues) * self.out.packets / ramp).min(u64::from(self.ues));
            // Open the conversation slots over the first 10 × concurrency packets rather than
            // all at once, so the start is not a burst of handshakes.
            let usable = (slots.len() as u64).min(self.out.packets / 10 + 1000);
            let i = self.rng.below(usable) as usize;
            let mut c = slots[i];
            if !c.live {
                c = self.new_conv(online.max(1) as u32);
            }
            match self.step(&mut c) {
                Some(p) => {
                    if c.tunnelled {
                        self.ensure_session(c.ue)?;
                    }
                    self.conv_packet(&c, &p)?;
                    slots[i] = c;
                }
                None => slots[i] = IDLE,
            }
        }
        Ok(())
    }

    /// PFCP for every UE, then `flows` distinct UDP query/answer pairs through GTP-U.
    fn flows_only(&mut self, flows: u64) -> io::Result<()> {
        for ue in 0..self.ues {
            self.ensure_session(ue)?;
        }
        let ues = u64::from(self.ues);
        for j in 0..flows {
            let ue = (j % ues) as u32;
            let k = j / ues;
            let c = Conv {
                live: true,
                kind: Kind::Dns,
                ue,
                server: server_ip((k / 28_000) as u32 % SERVERS),
                sport: 32768 + (k % 28_000) as u16,
                dport: 53,
                ..IDLE
            };
            for up in [true, false] {
                let p = Pkt {
                    up,
                    proto: 17,
                    len: if up { 72 } else { 120 },
                    flags: 0,
                    thl: 0,
                    seq: 0,
                    ack: 0,
                };
                self.conv_packet(&c, &p)?;
            }
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if a.print_sizes {
        println!(
            "size_of::<fivewatch::flow::table::Flow>() = {}",
            std::mem::size_of::<fivewatch::flow::table::Flow>()
        );
        println!(
            "size_of::<fivewatch::flow::FlowKey>() = {}",
            std::mem::size_of::<fivewatch::flow::FlowKey>()
        );
        return Ok(());
    }
    anyhow::ensure!((1..=60_000).contains(&a.ues), "--ues must be 1..=60000");
    anyhow::ensure!((1..=200).contains(&a.gnbs), "--gnbs must be 1..=200");
    anyhow::ensure!(a.ues > SCAN_UE, "--ues must be more than {SCAN_UE}");
    let started = Instant::now();
    let file = File::create(a.out.as_deref().unwrap_or(std::path::Path::new("-")))?;
    let mut g = Gen {
        out: Out::new(file, a.rate, a.seed)?,
        rng: Rng(a.seed),
        ues: a.ues,
        gnbs: a.gnbs,
        session_up: vec![false; a.ues as usize],
        pfcp_seq: 0,
        next_sport: vec![0; a.ues as usize],
        counts: Counts::default(),
    };
    match a.flows_only {
        Some(n) => g.flows_only(n)?,
        None => g.mix(a.packets, a.concurrency)?,
    }
    g.out.w.flush()?;
    let secs = started.elapsed().as_secs_f64();
    let c = &g.counts;
    let n = g.out.packets.max(1) as f64;
    let pct = |x: u64| 100.0 * x as f64 / n;
    eprintln!(
        "synth_5g: {} packets, {} bytes, {:.1} s of capture, in {:.2} s ({:.2} M packets/s)\n  \
         gtpu g_pdu {} ({:.1} %), n6 {} ({:.1} %), pfcp {} ({:.2} %), syn flood {} ({:.2} %), \
         port scan {} ({:.2} %), conversations {}",
        g.out.packets,
        g.out.bytes,
        (g.out.ts_ns - START_S * 1_000_000_000) as f64 / 1e9,
        secs,
        n / secs / 1e6,
        c.gpdu,
        pct(c.gpdu),
        c.n6,
        pct(c.n6),
        c.pfcp,
        pct(c.pfcp),
        c.flood,
        pct(c.flood),
        c.scan,
        pct(c.scan),
        c.convs,
    );
    Ok(())
}
