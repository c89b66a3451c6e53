//! Packet sources: capture files (pcap / pcapng, recognised by magic number) and
//! live interfaces (AF_PACKET).
//!
//! Every source hands out [`Frame`]s in capture order. A frame borrows its bytes from
//! the source's buffer and is only valid inside the callback that receives it.

pub mod file;
pub mod live;

pub use file::{CaptureFileError, FileSource, Loaded};
pub use live::{LiveBackend, LiveSource, LiveStats};

/// Link-layer header type of a frame, as numbered by the tcpdump.org LINKTYPE_ registry.
///
/// Kept as the raw number so unknown link types survive and can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// LINKTYPE_NULL (0): BSD loopback, 4-byte host-order address family.
    pub const NULL: LinkType = LinkType(0);
    /// LINKTYPE_ETHERNET (1): IEEE 802.3 Ethernet.
    pub const ETHERNET: LinkType = LinkType(1);
    /// LINKTYPE_RAW (101): raw IPv4 or IPv6, version from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// DLT_RAW as written by some BSDs (12 or 14 in old files): raw IP.
    pub const RAW_BSD: LinkType = LinkType(12);
    /// LINKTYPE_LOOP (108): OpenBSD loopback, 4-byte network-order address family.
    pub const LOOP: LinkType = LinkType(108);
    /// LINKTYPE_LINUX_SLL (113): Linux cooked capture v1, 16-byte header.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// LINKTYPE_IPV4 (228): raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// LINKTYPE_IPV6 (229): raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2, 20-byte header.
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture timestamp, nanoseconds since the Unix epoch (UTC).
    pub ts_ns: u64,
    /// Link-layer type of `data`.
    pub linktype: LinkType,
    /// Captured bytes (possibly cut by the snap length).
    pub data: &'a [u8],
    /// Length of the frame on the wire in bytes (>= `data.len()` when truncated).
    pub wire_len: u32,
}
