//! Detectors. Each keeps bounded per-host state over windows of capture time, opens an
//! *episode* when its threshold is crossed, updates it while the attack goes on and closes
//! it after a quiet period (hysteresis: the rate must stay below half the threshold). The
//! alert module turns episode events into alert records.

pub mod hll;
pub mod port_scan;
pub mod syn_flood;
pub mod window;

use std::net::IpAddr;

use crate::decode::{ipproto, tcpflags, Packet, Tunnel};
use crate::flow::table::{Flow, Update};

/// What the detectors need of the flow a packet belongs to, copied out of the flow table so
/// that detection can run on another thread than the flow table (see
/// [`crate::pipeline::workers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowView {
    /// The flow's initiator address (the side of its first packet, or of its SYN).
    pub initiator: IpAddr,
    /// The flow's responder address and port (ICMP: the port equivalent).
    pub responder: (IpAddr, u16),
    /// The address space of the flow's endpoints: 0 for plain IP, else a hash of its
    /// unordered GTP-U tunnel endpoint pair (see [`Event::scope`]).
    pub scope: u64,
}

impl FlowView {
    /// The view of `flow`.
    #[inline]
    pub fn of(flow: &Flow) -> FlowView {
        FlowView {
            initiator: flow.initiator().0,
            responder: flow.responder(),
            scope: scope_of(&flow.key()),
        }
    }
}

/// The kinds of alert fivewatch raises. `as_str` is the stable `alert.kind` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Half-open TCP SYN rate towards one destination above threshold.
    SynFlood,
    /// One source probing many ports of a host or many hosts on a port.
    PortScan,
}

impl AlertKind {
    /// Every kind, for pre-registering metric series.
    pub const ALL: [AlertKind; 2] = [AlertKind::SynFlood, AlertKind::PortScan];

    /// Stable name (`syn_flood`, `port_scan`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::SynFlood => "syn_flood",
            AlertKind::PortScan => "port_scan",
        }
    }
}

/// Lifecycle phase of an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Threshold crossed: a new episode (sent at the first tick after the crossing, with
    /// the value measured then).
    Open,
    /// Still going on (sent at most once per second of capture time per episode).
    Update,
    /// Quiet for the configured time: the episode is over.
    Close,
}

/// Which packet/flow an episode is about, for the EVE 5-tuple fields of the alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// Source address (attacker or a sample of the attackers).
    pub src_ip: IpAddr,
    /// Source port of the sample packet.
    pub src_port: Option<u16>,
    /// Destination address (victim or a sample target).
    pub dest_ip: IpAddr,
    /// Destination port of the sample packet (TCP, UDP, SCTP).
    pub dest_port: Option<u16>,
    /// IP protocol number.
    pub proto: u8,
    /// Community ID v1 of the sample packet's flow.
    pub community_id: String,
    /// GTP-U context of the sample packet, for tunnelled traffic.
    pub tunnel: Option<Tunnel>,
}

impl Context {
    /// Context of packet `p`: its 5-tuple and Community ID, so that the alert's EVE fields
    /// describe one real flow an analyst can pivot on.
    pub fn of_packet(p: &Packet) -> Context {
        let ports = matches!(
            p.proto,
            crate::decode::ipproto::TCP | crate::decode::ipproto::UDP | crate::decode::ipproto::SCTP
        );
        Context {
            src_ip: p.src,
            src_port: ports.then_some(p.src_port),
            dest_ip: p.dst,
            dest_port: ports.then_some(p.dst_port),
            proto: p.proto,
            community_id: crate::flow::key::packet_community_id(0, p),
            tunnel: p.tunnel,
        }
    }
}

/// Detector-specific numbers of an episode.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// SYN flood.
    SynFlood {
        /// SYN packets towards the victim port: those in the window that opened the episode,
        /// and all towards the victim host since.
        syn_packets: u64,
        /// Handshakes completed with the victim since the episode opened.
        completed_handshakes: u64,
        /// Distinct source addresses since the threshold was crossed (HyperLogLog estimate,
        /// standard error 1.6 %; the sources of the build-up before the crossing are not in it).
        distinct_sources: u64,
        /// The first few source addresses seen.
        sources_sample: Vec<IpAddr>,
    },
    /// Port scan.
    PortScan {
        /// `vertical` (many ports on one host), `horizontal` (many hosts on one port) or
        /// `vertical+horizontal`.
        scan_type: &'static str,
        /// Probes (new connection attempts) sent since the episode opened, plus those that
        /// triggered it.
        probes: u64,
        /// Distinct destination ports probed.
        distinct_ports: u64,
        /// Distinct destination hosts probed (exact up to 64, then HyperLogLog).
        distinct_hosts: u64,
        /// Probes that were answered (SYN-ACK, or any UDP reply).
        answered: u64,
        /// A few target hosts: those probed before the episode opened in address order,
        /// then later ones as they are probed.
        targets_sample: Vec<IpAddr>,
    },
}

/// One lifecycle event of an episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Alert kind.
    pub kind: AlertKind,
    /// Lifecycle phase.
    pub phase: Phase,
    /// The host the episode is about: the victim (flood) or the scanner (scan).
    pub entity: IpAddr,
    /// The address space `entity` is unique in: 0 for plain IP, else a hash of the GTP-U
    /// tunnel endpoint pair (UE addresses repeat behind different gNB/UPF pairs).
    pub scope: u64,
    /// The port the episode is about, when it is about one (a flooded host:port, the port of
    /// a horizontal scan).
    pub scope_port: Option<u16>,
    /// Sequence number of the episode within its detector (for stable alert ids).
    pub episode: u64,
    /// Capture time of the first packet of the episode, ns since the Unix epoch.
    pub first_seen_ns: u64,
    /// Capture time of the last packet counted, ns since the Unix epoch.
    pub last_seen_ns: u64,
    /// Current value of the measured quantity (in `unit`).
    pub observed: f64,
    /// Highest value seen during the episode.
    pub peak: f64,
    /// The configured threshold (in `unit`).
    pub threshold: f64,
    /// Window length the value is measured over, seconds.
    pub window_s: f64,
    /// Unit of `observed`/`threshold`, e.g. `syn_per_second`, `ports`.
    pub unit: &'static str,
    /// The 5-tuple context.
    pub context: Context,
    /// Detector-specific numbers.
    pub detail: Detail,
}

/// All detectors of one worker.
pub struct Detectors {
    /// SYN flood detector (None when disabled).
    pub syn_flood: Option<syn_flood::SynFlood>,
    /// Port scan detector (None when disabled).
    pub port_scan: Option<port_scan::PortScan>,
}

impl Detectors {
    /// Whether any enabled detector acts on packet `p` given what it did to its flow (`u`):
    /// TCP SYNs and completed handshakes (SYN flood), first packets of flows from their
    /// initiator and first replies (port scan). Every other packet leaves detector state
    /// unchanged, so it need not be fed (nor its [`FlowView`] built).
    #[inline]
    pub fn wants(&self, p: &Packet, u: &Update) -> bool {
        Self::wants_for(self.syn_flood.is_some(), self.port_scan.is_some(), p, u)
    }

    /// [`Detectors::wants`] for a set of detectors with SYN flood detection `flood` and port
    /// scan detection `scan` enabled.
    #[inline]
    pub fn wants_for(flood: bool, scan: bool, p: &Packet, u: &Update) -> bool {
        let syn_only = p.proto == ipproto::TCP && p.tcp_flags & (tcpflags::SYN | tcpflags::ACK) == tcpflags::SYN;
        let flood = flood && (syn_only || (p.proto == ipproto::TCP && u.established));
        let scan = scan && (u.new_flow || u.first_reply) && matches!(p.proto, ipproto::TCP | ipproto::UDP);
        flood || scan
    }

    /// Start loading the detector state [`Detectors::on_packet`] will read for this input: the
    /// index buckets, or (`entries`, a few inputs later) the entries. Changes nothing.
    #[inline]
    pub fn prefetch(&self, p: &Packet, u: &Update, flow: &FlowView, entries: bool) {
        if let Some(d) = &self.syn_flood {
            d.prefetch(p, u, flow, entries);
        }
        if let Some(d) = &self.port_scan {
            d.prefetch(p, u, flow, entries);
        }
    }

    /// Feed one packet and what it did to its flow. Episodes open on the packet that
    /// crosses a threshold; their events are produced by [`Detectors::tick`].
    #[inline]
    pub fn on_packet(&mut self, p: &Packet, u: &Update, flow: &FlowView, ts_ns: u64) {
        if let Some(d) = &mut self.syn_flood {
            d.on_packet(p, u, flow, ts_ns);
        }
        if let Some(d) = &mut self.port_scan {
            d.on_packet(p, u, flow, ts_ns);
        }
    }

    /// Once per second of capture time: roll windows, update and close episodes, sweep
    /// stale state.
    pub fn tick(&mut self, now_ns: u64, out: &mut Vec<Event>) {
        if let Some(d) = &mut self.syn_flood {
            d.tick(now_ns, out);
        }
        if let Some(d) = &mut self.port_scan {
            d.tick(now_ns, out);
        }
    }

    /// Table entries evicted to make room, per detector (in [`AlertKind::ALL`] order).
    pub fn evicted(&self) -> [u64; 2] {
        [
            self.syn_flood.as_ref().map_or(0, |d| d.evicted()),
            self.port_scan.as_ref().map_or(0, |d| d.evicted()),
        ]
    }

    /// Episodes not opened because the detector's `max_open_alerts` were open, per detector.
    pub fn suppressed(&self) -> [u64; 2] {
        [
            self.syn_flood.as_ref().map_or(0, |d| d.suppressed),
            self.port_scan.as_ref().map_or(0, |d| d.suppressed),
        ]
    }

    /// End every open episode and forget all detector state (capture time jumped backwards).
    pub fn reset(&mut self, out: &mut Vec<Event>) {
        if let Some(d) = &mut self.syn_flood {
            d.reset(out);
        }
        if let Some(d) = &mut self.port_scan {
            d.reset(out);
        }
    }
}

/// The address space of a flow's endpoints: 0 for plain IP, else a hash of its unordered
/// GTP-U tunnel endpoint pair.
#[inline]
pub(crate) fn scope_of(key: &crate::flow::FlowKey) -> u64 {
    use std::hash::BuildHasher;
    if key.is_tunnelled() {
        foldhash::quality::FixedState::with_seed(0x5c0e).hash_one((key.tun_a, key.tun_b)) | 1
    } else {
        0
    }
}

/// Hash an address for sketches with a fixed seed (sketch contents never leave the process).
#[inline]
pub(crate) fn hash_ip(ip: &IpAddr) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x5eed_f1ea_u64).hash_one(ip)
}

/// Severity of an episode from how far it is over its threshold.
pub fn severity(observed: f64, threshold: f64) -> &'static str {
    let ratio = if threshold > 0.0 {
        observed / threshold
    } else {
        f64::INFINITY
    };
    if ratio >= 10.0 {
        "critical"
    } else if ratio >= 4.0 {
        "high"
    } else if ratio >= 2.0 {
        "medium"
    } else {
        "low"
    }
}
