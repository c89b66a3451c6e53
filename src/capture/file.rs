//! Capture-file reader for classic pcap (micro- or nanosecond timestamps, either byte order,
//! plus the LE "modified" variant 0xa1b2cd34) and pcapng (any number of sections and
//! interfaces, either byte order).
//!
//! The format is chosen by the magic number, never by the file name. Parsing is done by
//! `pcap-parser`'s streaming readers over a 1 MiB buffer; this module adds absolute byte
//! offsets, per-interface link types and timestamp resolution, sanity limits and error
//! messages that name the file and the offset of the bad record.
//!
//! Policy decisions (all documented on the items below):
//! * a record whose captured length exceeds [`MAX_CAPLEN`] is treated as corruption; one that
//!   merely exceeds the snaplen declared in the file header / IDB is delivered whole (as
//!   Wireshark does; libpcap would cut it to the snaplen), because its bytes are all present;
//! * a classic-pcap fractional-seconds field that is out of range (>= 1e9 ns or >= 1e6 µs) is
//!   carried into the seconds, i.e. `ts = sec * 1e9 + frac * unit`;
//! * the classic-pcap `thiszone` field is ignored (every known writer sets it to 0).

use super::{Frame, LinkType};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, LegacyPcapReader, OptionCode, PcapBlockOwned, PcapError, PcapNGReader};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Size of the streaming read buffer in bytes. A pcapng block must be smaller than this.
const BUF_CAP: usize = 1 << 20;
/// Largest captured length of one packet that is accepted, in bytes (256 KiB, the same limit
/// libpcap and Wireshark use). Larger values are reported as corruption.
pub const MAX_CAPLEN: u32 = 256 * 1024;
const NS_PER_SEC: u64 = 1_000_000_000;
/// pcapng Obsolete Packet Block type.
const OPB_TYPE: u32 = 2;

/// Error from opening or reading a capture file. The `Display` form always names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureFileError {
    /// The file could not be opened or read.
    #[error("capture file {}: {cause}", .path.display())]
    Io {
        /// Path as given to [`FileSource::open`].
        path: PathBuf,
        /// Underlying I/O error (part of the message, so not chained as a `source`).
        cause: io::Error,
    },
    /// The content is not a valid capture (empty, unknown magic, truncated or corrupt).
    #[error(
        "capture file {}: {reason} at byte offset {offset}{}",
        .path.display(),
        .detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    Format {
        /// Path as given to [`FileSource::open`].
        path: PathBuf,
        /// Byte offset from the start of the file where the bad header, record or block starts.
        offset: u64,
        /// Short description of the problem, e.g. `truncated record`.
        reason: String,
        /// Numbers backing the diagnosis, e.g. `record header says 100 bytes, 8 left`.
        detail: Option<String>,
    },
}

impl CaptureFileError {
    /// Byte offset of the problem for format errors, `None` for I/O errors.
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureFileError::Io { .. } => None,
            CaptureFileError::Format { offset, .. } => Some(*offset),
        }
    }
}

/// Totals returned by [`FileSource::for_each`] after the whole file was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileSummary {
    /// Number of packets passed to the callback.
    pub packets: u64,
    /// Sum of the captured lengths (`Frame::data.len()`) of those packets, in bytes.
    pub bytes_captured: u64,
    /// Byte offset just past the last complete header, record or block (the file size for a
    /// well-formed file).
    pub end_offset: u64,
}

/// A capture file opened for reading. Create with [`FileSource::open`], then call
/// [`FileSource::for_each`].
pub struct FileSource {
    path: PathBuf,
    opened: Option<(Kind, Src)>,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource").field("path", &self.path).finish()
    }
}

impl FileSource {
    /// Opens `path` and checks its file header (magic number, and the whole pcap file header or
    /// pcapng section header block).
    ///
    /// # Errors
    /// [`CaptureFileError::Io`] if the file cannot be opened or read;
    /// [`CaptureFileError::Format`] at offset 0 if it is empty, shorter than its header, has an
    /// unknown magic number or an invalid section header.
    pub fn open(path: &Path) -> Result<FileSource, CaptureFileError> {
        let opened = probe(path)?;
        Ok(FileSource {
            path: path.to_path_buf(),
            opened: Some(opened),
        })
    }

    /// Path of the file, as given to [`FileSource::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `f` for every packet of the file, in file order, and returns the totals once the
    /// end of the file is reached. Calling it again reads the file again from the start.
    ///
    /// Timestamps are nanoseconds since the Unix epoch (saturating at 0 and `u64::MAX`).
    /// pcapng Simple Packet Blocks carry no timestamp and get the previous packet's one.
    ///
    /// # Errors
    /// On a truncated or corrupt record/block, returns [`CaptureFileError::Format`] with the
    /// byte offset where that record starts, after every earlier packet was passed to `f`.
    /// Read failures give [`CaptureFileError::Io`]. Never panics on file content.
    pub fn for_each(&mut self, mut f: impl FnMut(Frame<'_>)) -> Result<FileSummary, CaptureFileError> {
        let (kind, src) = match self.opened.take() {
            Some(o) => o,
            None => probe(&self.path)?,
        };
        let io_slot = Rc::clone(&src.err);
        let res = match kind {
            Kind::Pcap { .. } => {
                LegacyPcapReader::new(BUF_CAP, src).map(|r| Box::new(r) as Box<dyn PcapReaderIterator>)
            }
            Kind::PcapNg => PcapNGReader::new(BUF_CAP, src).map(|r| Box::new(r) as Box<dyn PcapReaderIterator>),
        };
        let mut reader = res.map_err(|e| self.format_err(0, "unreadable file header", Some(e.to_string())))?;
        let mut walker = Walker::new(kind);
        let mut sum = FileSummary::default();
        let mut offset = 0u64;
        let read_err = |path: &Path| CaptureFileError::Io {
            path: path.to_path_buf(),
            cause: io_slot
                .borrow_mut()
                .take()
                .unwrap_or_else(|| io::Error::other("read failed")),
        };
        loop {
            match reader.next() {
                Ok((len, block)) => {
                    if let Some(frame) = walker.frame(&block).map_err(|b| self.bad(offset, b))? {
                        sum.packets += 1;
                        sum.bytes_captured += frame.data.len() as u64;
                        f(frame);
                    }
                    offset += len as u64;
                    reader.consume_noshift(len);
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => {
                    if let Some(b) = walker.diagnose(reader.data(), false) {
                        return Err(self.bad(offset, b));
                    }
                    let before = reader.data().len();
                    if reader.refill().is_err() {
                        return Err(read_err(&self.path));
                    }
                    if !reader.reader_exhausted() && reader.data().len() == before {
                        return Err(self.format_err(offset, "reader made no progress", None));
                    }
                }
                Err(PcapError::ReadError) => return Err(read_err(&self.path)),
                Err(e) => {
                    let generic = match e {
                        PcapError::NomError(_, kind) => format!("parser error {kind:?}"),
                        other => other.to_string(),
                    };
                    let b = walker
                        .diagnose(reader.data(), true)
                        .unwrap_or(Bad("malformed record", Some(generic)));
                    return Err(self.bad(offset, b));
                }
            }
        }
        sum.end_offset = offset;
        Ok(sum)
    }

    fn bad(&self, offset: u64, Bad(reason, detail): Bad) -> CaptureFileError {
        self.format_err(offset, reason, detail)
    }

    fn format_err(&self, offset: u64, reason: &str, detail: Option<String>) -> CaptureFileError {
        format_err(&self.path, offset, reason, detail)
    }
}

/// Every frame of a capture file, held in memory ([`FileSource::load`]), to be processed
/// later without reading the file: `fivewatch replay --preload` times the processing of a
/// capture apart from reading it. Memory: the captured bytes of every frame plus 32 bytes
/// per frame.
#[derive(Debug, Default)]
pub struct Loaded {
    bytes: Vec<u8>,
    frames: Vec<Stored>,
}

/// Where a [`Loaded`] frame's bytes are, and its metadata.
#[derive(Debug, Clone, Copy)]
struct Stored {
    ts_ns: u64,
    start: usize,
    len: u32,
    wire_len: u32,
    linktype: LinkType,
}

impl Loaded {
    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// No frame held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Calls `f` for every frame held, in file order.
    pub fn for_each(&self, mut f: impl FnMut(Frame<'_>)) {
        // Frames ahead of this one whose headers are loaded meanwhile: a decoder reads the
        // first ~100 bytes of each frame only, a pattern the hardware prefetcher does not
        // follow across frames of several hundred bytes.
        const AHEAD: usize = 8;
        for (i, s) in self.frames.iter().enumerate() {
            if let Some(next) = self.frames.get(i + AHEAD) {
                let p = self.bytes.as_ptr().wrapping_add(next.start);
                crate::flow::index::prefetch(p);
                crate::flow::index::prefetch(p.wrapping_add(64));
            }
            let data = self.bytes.get(s.start..s.start + s.len as usize).unwrap_or(&[]);
            f(Frame {
                ts_ns: s.ts_ns,
                linktype: s.linktype,
                data,
                wire_len: s.wire_len,
            });
        }
    }

    /// Keep one frame; `false` when memory for it cannot be had.
    fn push(&mut self, fr: &Frame<'_>) -> bool {
        let n = fr.data.len();
        // Grow by doubling (a file whose size was reserved up front never grows here).
        if (self.bytes.capacity() - self.bytes.len() < n && !grow(&mut self.bytes, n))
            || (self.frames.len() == self.frames.capacity() && !grow(&mut self.frames, 1024))
        {
            return false;
        }
        self.frames.push(Stored {
            ts_ns: fr.ts_ns,
            start: self.bytes.len(),
            len: n as u32,
            wire_len: fr.wire_len,
            linktype: fr.linktype,
        });
        self.bytes.extend_from_slice(fr.data);
        true
    }
}

/// Memory, in bytes (64 MiB), that preloading leaves free for everything else (the pipeline's buffers, alert
/// and flow records, a next file's read buffer): a frame that would eat into it is not
/// loaded, and the load ends with an out-of-memory error instead of a later allocation
/// failing (which would abort the process).
pub const PRELOAD_HEADROOM: usize = 64 << 20;

/// Room for `needed` more items in `v`, or as many as it holds if more (it doubles), if it
/// can be had with [`PRELOAD_HEADROOM`] bytes still free afterwards (as far as the
/// allocator tells: under an address-space limit, or when the system refuses).
fn grow<T>(v: &mut Vec<T>, needed: usize) -> bool {
    let additional = needed.max(v.len());
    let mut spare = Vec::<u8>::new();
    if spare.try_reserve_exact(PRELOAD_HEADROOM).is_err() {
        return false;
    }
    // Keep the compiler from leaving out an allocation that is never used.
    std::hint::black_box(&mut spare);
    v.try_reserve_exact(additional).is_ok()
}

impl FileSource {
    /// Reads every frame of the file into memory, as [`FileSource::for_each`] would hand
    /// them out. Returns the frames read and how the read ended: on a truncated or corrupt
    /// file, the frames before the damage with the error of [`FileSource::for_each`].
    ///
    /// # Errors
    /// Those of [`FileSource::for_each`], and [`CaptureFileError::Io`] with
    /// [`io::ErrorKind::OutOfMemory`] when the next frame does not fit in memory with
    /// [`PRELOAD_HEADROOM`] to spare (the frames read until then are kept).
    pub fn load(&mut self) -> (Loaded, Result<FileSummary, CaptureFileError>) {
        let mut mem = Loaded::default();
        // The captured bytes are at most the file's size: one allocation holds them all
        // (when it can be had; otherwise, or for a pipe, they grow as they are read).
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if usize::try_from(size).is_ok_and(|n| n > 0 && grow(&mut mem.bytes, n)) {
            crate::flow::index::advise_huge(&mem.bytes);
        }
        let mut full = false;
        let res = self.for_each(|fr| {
            full = full || !mem.push(&fr);
        });
        if !full {
            return (mem, res);
        }
        let e = CaptureFileError::Io {
            path: self.path.clone(),
            cause: io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "cannot hold the capture in memory with {} MiB to spare ({} frames, {} bytes held); replay it without --preload",
                    PRELOAD_HEADROOM >> 20,
                    mem.len(),
                    mem.bytes.len()
                ),
            ),
        };
        (mem, Err(e))
    }
}

fn format_err(path: &Path, offset: u64, reason: &str, detail: Option<String>) -> CaptureFileError {
    CaptureFileError::Format {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
        detail,
    }
}

/// A diagnosis: short reason plus optional numbers.
struct Bad(&'static str, Option<String>);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Pcap { be: bool, nanos: bool, modified: bool },
    PcapNg,
}

/// File reader that first replays the header bytes already read by [`probe`] and keeps the
/// last I/O error (pcap-parser only reports "read error").
struct Src {
    prefix: Vec<u8>,
    pos: usize,
    file: File,
    err: Rc<RefCell<Option<io::Error>>>,
}

impl Read for Src {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(rest) = self.prefix.get(self.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            return Ok(n);
        }
        loop {
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = e.kind();
                    *self.err.borrow_mut() = Some(e);
                    return Err(kind.into());
                }
                ok => return ok,
            }
        }
    }
}

/// Reads until `buf` is full or end of file; returns the number of bytes read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Opens the file, recognises the format by magic number and reads the complete file header
/// (pcap) or first section header block (pcapng).
fn probe(path: &Path) -> Result<(Kind, Src), CaptureFileError> {
    let io_err = |cause| CaptureFileError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let err0 = |reason, detail| format_err(path, 0, reason, detail);
    let mut file = File::open(path).map_err(io_err)?;
    let mut head = vec![0u8; 24];
    let got = read_up_to(&mut file, &mut head[..12]).map_err(io_err)?;
    if got == 0 {
        return Err(err0("empty file", None));
    }
    if got < 4 {
        return Err(err0(
            "file too short for a capture header",
            Some(format!("{got} bytes")),
        ));
    }
    let magic = [head[0], head[1], head[2], head[3]];
    let pcap = |be, nanos, modified| Kind::Pcap { be, nanos, modified };
    let kind = match u32::from_le_bytes(magic) {
        0xa1b2_c3d4 => pcap(false, false, false),
        0xd4c3_b2a1 => pcap(true, false, false),
        0xa1b2_3c4d => pcap(false, true, false),
        0x4d3c_b2a1 => pcap(true, true, false),
        0xa1b2_cd34 => pcap(false, false, true),
        0x0a0d_0d0a => Kind::PcapNg,
        _ => {
            let hex = magic.map(|b| format!("{b:02x}")).join(" ");
            return Err(err0(
                "unknown magic number, not pcap or pcapng",
                Some(format!("first bytes {hex}")),
            ));
        }
    };
    let want = match kind {
        Kind::Pcap { .. } => 24,
        Kind::PcapNg => {
            if got < 12 {
                return Err(err0(
                    "truncated pcapng section header",
                    Some(format!("{got} of 12 bytes")),
                ));
            }
            let be = match [head[8], head[9], head[10], head[11]] {
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                _ => return Err(err0("pcapng section header has an invalid byte-order magic", None)),
            };
            let len = u32_at(&head, 4, be).unwrap_or(0);
            if len < 28 || len % 4 != 0 || len as usize >= BUF_CAP {
                return Err(err0(
                    "invalid pcapng section header length",
                    Some(format!("{len} bytes")),
                ));
            }
            len as usize
        }
    };
    head.resize(want, 0);
    let more = if got < want {
        read_up_to(&mut file, &mut head[got..]).map_err(io_err)?
    } else {
        0
    };
    if got + more < want {
        let what = match kind {
            Kind::Pcap { .. } => "truncated pcap file header",
            Kind::PcapNg => "truncated pcapng section header",
        };
        return Err(err0(what, Some(format!("{} of {want} bytes", got + more))));
    }
    let src = Src {
        prefix: head,
        pos: 0,
        file,
        err: Rc::default(),
    };
    Ok((kind, src))
}

fn u32_at(b: &[u8], at: usize, be: bool) -> Option<u32> {
    let a: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

/// Per-interface state of the current pcapng section.
struct Iface {
    linktype: LinkType,
    snaplen: u32,
    /// Timestamp units per second (`if_tsresol`).
    units_per_sec: u128,
    /// `if_tsoffset`, seconds added to every timestamp.
    offset_s: i64,
}

impl Iface {
    fn ts_ns(&self, raw: u64) -> u64 {
        // raw < 2^64 and 1e9 < 2^30, so the product fits in u128; units_per_sec >= 1.
        let ns = u128::from(raw) * u128::from(NS_PER_SEC) / self.units_per_sec;
        let ns = i128::try_from(ns).unwrap_or(i128::MAX);
        let ns = ns.saturating_add(i128::from(self.offset_s) * i128::from(NS_PER_SEC));
        u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
    }
}

/// Turns parsed blocks into frames and keeps the state needed to do so.
struct Walker {
    kind: Kind,
    /// Byte order of the current pcapng section.
    be: bool,
    /// Classic pcap: link type from the file header.
    linktype: LinkType,
    ifaces: Vec<Iface>,
    last_ts: u64,
}

impl Walker {
    fn new(kind: Kind) -> Walker {
        Walker {
            kind,
            be: false,
            linktype: LinkType::ETHERNET,
            ifaces: Vec::new(),
            last_ts: 0,
        }
    }

    fn frame<'a>(&mut self, block: &PcapBlockOwned<'a>) -> Result<Option<Frame<'a>>, Bad> {
        let frame = match block {
            PcapBlockOwned::LegacyHeader(h) => {
                // The upper bits of the link-type field carry FCS information (as libpcap).
                self.linktype = LinkType(h.network.0 as u32 & 0x03ff_ffff);
                return Ok(None);
            }
            PcapBlockOwned::Legacy(b) => {
                check_caplen(b.caplen)?;
                let unit = match self.kind {
                    Kind::Pcap { nanos: true, .. } => 1,
                    _ => 1_000,
                };
                // Cannot overflow (u32::MAX * 1e9 + u32::MAX * 1e3 < u64::MAX); an out-of-range
                // fraction is thereby carried into the seconds.
                let ts = u64::from(b.ts_sec) * NS_PER_SEC + u64::from(b.ts_usec) * unit;
                let data = b.data.get(..b.caplen as usize).unwrap_or(b.data);
                self.mk(ts, self.linktype, data, b.origlen)
            }
            PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                self.be = shb.big_endian();
                self.ifaces.clear();
                return Ok(None);
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                let (mut resol, mut offset_s) = (6u8, 0i64);
                for o in &idb.options {
                    let v = o.value();
                    if o.code == OptionCode::IfTsresol {
                        resol = v.first().copied().unwrap_or(6);
                    } else if o.code == OptionCode::IfTsoffset {
                        if let Some(a) = v.get(..8).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                            offset_s = if self.be {
                                i64::from_be_bytes(a)
                            } else {
                                i64::from_le_bytes(a)
                            };
                        }
                    }
                }
                let units = if resol & 0x80 != 0 {
                    1u128.checked_shl(u32::from(resol & 0x7f))
                } else {
                    10u128.checked_pow(u32::from(resol))
                };
                let Some(units_per_sec) = units else {
                    return Err(Bad("invalid if_tsresol", Some(format!("value 0x{resol:02x}"))));
                };
                self.ifaces.push(Iface {
                    linktype: LinkType(u32::from(idb.linktype.0 as u16)),
                    snaplen: idb.snaplen,
                    units_per_sec,
                    offset_s,
                });
                return Ok(None);
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let iface = self.iface(epb.if_id)?;
                check_caplen(epb.caplen)?;
                let ts = iface.ts_ns(u64::from(epb.ts_high) << 32 | u64::from(epb.ts_low));
                let data = epb.data.get(..epb.caplen as usize).unwrap_or(epb.data);
                self.mk(ts, iface.linktype, data, epb.origlen)
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let iface = self.iface(0)?;
                let mut caplen = spb.data.len().min(spb.origlen as usize);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                self.mk(self.last_ts, iface.linktype, &spb.data[..caplen], spb.origlen)
            }
            PcapBlockOwned::NG(Block::Unknown(ub)) => {
                // Block types are read little-endian by pcap-parser.
                let opb = if self.be { OPB_TYPE.swap_bytes() } else { OPB_TYPE };
                if ub.block_type != opb {
                    return Ok(None);
                }
                self.obsolete_packet(ub.data)?
            }
            PcapBlockOwned::NG(_) => return Ok(None),
        };
        self.last_ts = frame.ts_ns;
        Ok(Some(frame))
    }

    /// Obsolete Packet Block body: if_id u16, drops u16, ts high/low, caplen, origlen, data.
    fn obsolete_packet<'a>(&self, d: &'a [u8]) -> Result<Frame<'a>, Bad> {
        let be = self.be;
        let field = |at| u32_at(d, at, be).ok_or(Bad("malformed obsolete packet block", None));
        // if_id is the first u16: the high half of a big-endian u32, the low half of an LE one.
        let first = field(0)?;
        let iface = self.iface(if be { first >> 16 } else { first & 0xffff })?;
        let (hi, lo, caplen, origlen) = (field(4)?, field(8)?, field(12)?, field(16)?);
        check_caplen(caplen)?;
        let data = d.get(20..).and_then(|p| p.get(..caplen as usize)).ok_or_else(|| {
            Bad(
                "malformed obsolete packet block",
                Some(format!("captured length {caplen} exceeds the block")),
            )
        })?;
        Ok(self.mk(
            iface.ts_ns(u64::from(hi) << 32 | u64::from(lo)),
            iface.linktype,
            data,
            origlen,
        ))
    }

    fn iface(&self, id: u32) -> Result<&Iface, Bad> {
        self.ifaces.get(id as usize).ok_or_else(|| {
            let n = self.ifaces.len();
            Bad(
                "packet for an undeclared interface",
                Some(format!("interface id {id}, {n} declared in this section")),
            )
        })
    }

    /// `wire_len` is never reported below the captured length, even if the file says so.
    fn mk<'a>(&self, ts_ns: u64, linktype: LinkType, data: &'a [u8], origlen: u32) -> Frame<'a> {
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        Frame {
            ts_ns,
            linktype,
            data,
            wire_len: origlen.max(caplen),
        }
    }

    /// Explains why the record/block starting at `d[0]` cannot be parsed. With `eof == false`
    /// it only reports problems that more data cannot fix (returns `None` to ask for a refill).
    fn diagnose(&self, d: &[u8], eof: bool) -> Option<Bad> {
        let n = d.len();
        match self.kind {
            Kind::Pcap { be, modified, .. } => {
                let hl = if modified { 24 } else { 16 };
                if n < hl {
                    return eof.then(|| Bad("truncated record header", Some(format!("{n} of {hl} bytes"))));
                }
                let caplen = u32_at(d, 8, be)?;
                if let Err(b) = check_caplen(caplen) {
                    return Some(b);
                }
                let left = n - hl;
                (caplen as usize > left).then_some(())?;
                eof.then(|| {
                    Bad(
                        "truncated record",
                        Some(format!("record header says {caplen} bytes, {left} left")),
                    )
                })
            }
            Kind::PcapNg => {
                if n < 12 {
                    return eof.then(|| Bad("truncated block header", Some(format!("{n} of 12 bytes"))));
                }
                let btype = u32_at(d, 0, false)?;
                let be = if btype == 0x0a0d_0d0a { d[8] == 0x1a } else { self.be };
                let btype = u32_at(d, 0, be)?;
                let blen = u32_at(d, 4, be)?;
                let what = |s| Some(format!("block type 0x{btype:08x}, {s}"));
                if blen < 12 || blen % 4 != 0 {
                    Some(Bad(
                        "invalid block length",
                        what(format!("length field says {blen} bytes")),
                    ))
                } else if blen as usize >= BUF_CAP {
                    Some(Bad(
                        "block too large",
                        what(format!("length field says {blen} bytes, limit {BUF_CAP}")),
                    ))
                } else if blen as usize > n {
                    eof.then(|| {
                        Bad(
                            "truncated block",
                            what(format!("block header says {blen} bytes, {n} left")),
                        )
                    })
                } else {
                    Some(Bad(
                        "malformed block",
                        what(format!("{blen} bytes, inner fields inconsistent with its length")),
                    ))
                }
            }
        }
    }
}

/// Captured length limit [`MAX_CAPLEN`] (the declared snaplen is deliberately not enforced).
fn check_caplen(caplen: u32) -> Result<(), Bad> {
    if caplen > MAX_CAPLEN {
        Err(Bad(
            "record too large",
            Some(format!(
                "captured length {caplen} bytes exceeds the {MAX_CAPLEN}-byte maximum"
            )),
        ))
    } else {
        Ok(())
    }
}

/// Longest single pause [`Pacer::wait`] inserts between two frames. Longer recorded gaps are
/// shortened to this so that idle periods in real captures do not stall a replay.
pub const MAX_PACER_GAP: Duration = Duration::from_secs(1);

/// Replays frames at their recorded pace: [`Pacer::wait`] sleeps so that consecutive frames are
/// released `(ts difference) / speed` apart.
///
/// The first frame is released immediately; a timestamp earlier than the latest one seen is
/// released without waiting; a single gap is capped at [`MAX_PACER_GAP`]. Sleeps are scheduled
/// against a running deadline, so oversleeping does not accumulate drift; if the caller falls
/// more than [`MAX_PACER_GAP`] behind, the schedule restarts from the current instant.
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: f64,
    last_ts: Option<u64>,
    due: Option<Instant>,
}

impl Pacer {
    /// `speed` is a multiplier of real time: 1.0 = recorded speed, 2.0 = twice as fast.
    /// A speed that is not a finite number > 0 disables pacing (every frame released at once).
    pub fn new(speed: f64) -> Pacer {
        Pacer {
            speed,
            last_ts: None,
            due: None,
        }
    }

    /// Blocks the calling thread until the frame with timestamp `ts_ns` (nanoseconds) is due.
    pub fn wait(&mut self, ts_ns: u64) {
        let d = self.delay(ts_ns, Instant::now());
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }

    /// Like [`Pacer::wait`], but returns early (within 50 ms) once `stop` is set; `false`
    /// when it did.
    pub fn wait_unless(&mut self, ts_ns: u64, stop: &std::sync::atomic::AtomicBool) -> bool {
        let d = self.delay(ts_ns, Instant::now());
        let Some(end) = Instant::now().checked_add(d) else {
            return !stop.load(std::sync::atomic::Ordering::Relaxed);
        };
        loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    /// How long to wait at instant `now` before releasing the frame stamped `ts_ns`.
    fn delay(&mut self, ts_ns: u64, now: Instant) -> Duration {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Duration::ZERO;
        }
        let (Some(last), Some(due)) = (self.last_ts, self.due) else {
            self.last_ts = Some(ts_ns);
            self.due = Some(now);
            return Duration::ZERO;
        };
        self.last_ts = Some(last.max(ts_ns));
        let secs = ts_ns.saturating_sub(last) as f64 / 1e9 / self.speed;
        let gap = Duration::try_from_secs_f64(secs).map_or(MAX_PACER_GAP, |g| g.min(MAX_PACER_GAP));
        let base = if now.saturating_duration_since(due) > MAX_PACER_GAP {
            now
        } else {
            due
        };
        // `gap` is at most MAX_PACER_GAP, but never let an Instant overflow panic.
        let next = base.checked_add(gap).unwrap_or(base);
        self.due = Some(next);
        next.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn u16b(v: u16, be: bool) -> [u8; 2] {
        if be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32b(v: u32, be: bool) -> [u8; 4] {
        if be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Classic pcap: records are (sec, frac, data, origlen).
    fn pcap(be: bool, nanos: bool, snaplen: u32, lt: u32, recs: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut v = u32b(magic, be).to_vec();
        v.extend(u16b(2, be));
        v.extend(u16b(4, be));
        v.extend([0; 8]);
        v.extend(u32b(snaplen, be));
        v.extend(u32b(lt, be));
        for (s, fr, d, orig) in recs {
            for x in [*s, *fr, d.len() as u32, *orig] {
                v.extend(u32b(x, be));
            }
            v.extend(*d);
        }
        v
    }

    fn block(be: bool, ty: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        body.resize(body.len().next_multiple_of(4), 0);
        let len = body.len() as u32 + 12;
        let mut v = u32b(ty, be).to_vec();
        v.extend(u32b(len, be));
        v.extend(body);
        v.extend(u32b(len, be));
        v
    }
    fn shb(be: bool) -> Vec<u8> {
        let mut b = u32b(0x1a2b_3c4d, be).to_vec();
        b.extend(u16b(1, be));
        b.extend(u16b(0, be));
        b.extend([0xff; 8]);
        block(be, 0x0a0d_0d0a, &b)
    }
    fn opt(be: bool, code: u16, val: &[u8]) -> Vec<u8> {
        let mut v = u16b(code, be).to_vec();
        v.extend(u16b(val.len() as u16, be));
        v.extend(val);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }
    fn idb(be: bool, lt: u16, snaplen: u32, opts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = u16b(lt, be).to_vec();
        b.extend([0, 0]);
        b.extend(u32b(snaplen, be));
        if !opts.is_empty() {
            opts.iter().for_each(|o| b.extend(o));
            b.extend([0; 4]);
        }
        block(be, 1, &b)
    }
    fn epb(be: bool, if_id: u32, ts: u64, data: &[u8], orig: u32) -> Vec<u8> {
        let mut b = Vec::new();
        for x in [if_id, (ts >> 32) as u32, ts as u32, data.len() as u32, orig] {
            b.extend(u32b(x, be));
        }
        b.extend(data);
        block(be, 6, &b)
    }
    fn spb(be: bool, data: &[u8], orig: u32) -> Vec<u8> {
        let mut b = u32b(orig, be).to_vec();
        b.extend(data);
        block(be, 3, &b)
    }
    fn opb(be: bool, if_id: u16, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut b = u16b(if_id, be).to_vec();
        b.extend([0, 0]);
        for x in [(ts >> 32) as u32, ts as u32, data.len() as u32, data.len() as u32] {
            b.extend(u32b(x, be));
        }
        b.extend(data);
        block(be, 2, &b)
    }

    #[derive(Debug, PartialEq)]
    struct Got {
        ts: u64,
        lt: u32,
        data: Vec<u8>,
        wire: u32,
    }

    fn write_tmp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn read_path(p: &Path) -> (Vec<Got>, Result<FileSummary, CaptureFileError>) {
        let mut got = Vec::new();
        let res = FileSource::open(p).and_then(|mut s| {
            s.for_each(|fr| {
                got.push(Got {
                    ts: fr.ts_ns,
                    lt: fr.linktype.0,
                    data: fr.data.to_vec(),
                    wire: fr.wire_len,
                })
            })
        });
        (got, res)
    }

    fn read_bytes(bytes: &[u8]) -> (Vec<Got>, Result<FileSummary, CaptureFileError>) {
        let f = write_tmp(bytes);
        read_path(f.path())
    }

    const S: u32 = 1_700_000_000;

    #[test]
    fn classic_pcap_all_variants() {
        for be in [false, true] {
            for nanos in [false, true] {
                let recs: &[(u32, u32, &[u8], u32)] = &[(S, 5, b"abcd", 4), (S + 1, 999, b"xyz", 60)];
                let bytes = pcap(be, nanos, 65535, 101, recs);
                let (got, res) = read_bytes(&bytes);
                let sum = res.unwrap();
                let unit = if nanos { 1 } else { 1000 };
                let s = u64::from(S) * NS_PER_SEC;
                assert_eq!(
                    sum,
                    FileSummary {
                        packets: 2,
                        bytes_captured: 7,
                        end_offset: bytes.len() as u64
                    }
                );
                assert_eq!(
                    got[0],
                    Got {
                        ts: s + 5 * unit,
                        lt: 101,
                        data: b"abcd".to_vec(),
                        wire: 4
                    }
                );
                assert_eq!(
                    got[1],
                    Got {
                        ts: s + NS_PER_SEC + 999 * unit,
                        lt: 101,
                        data: b"xyz".to_vec(),
                        wire: 60
                    }
                );
            }
        }
    }

    #[test]
    fn invalid_nanosecond_fraction_is_carried() {
        let recs: &[(u32, u32, &[u8], u32)] = &[
            (S, 999_999_999, b"a", 1),
            (S, 1_000_000_000, b"b", 1),
            (S, u32::MAX, b"c", 1),
        ];
        let (got, res) = read_bytes(&pcap(false, true, 0, 1, recs));
        assert_eq!(res.unwrap().packets, 3);
        let s = u64::from(S) * NS_PER_SEC;
        let ts: Vec<u64> = got.iter().map(|g| g.ts).collect();
        assert_eq!(ts, [s + 999_999_999, s + NS_PER_SEC, s + u64::from(u32::MAX)]);
    }

    #[test]
    fn header_only_is_ok_and_bad_headers_name_offset_zero() {
        let (got, res) = read_bytes(&pcap(false, false, 65535, 1, &[]));
        assert!(got.is_empty());
        assert_eq!(
            res.unwrap(),
            FileSummary {
                packets: 0,
                bytes_captured: 0,
                end_offset: 24
            }
        );

        for (bytes, needle) in [
            (&b""[..], "empty file at byte offset 0"),
            (&b"\xd4\xc3"[..], "too short"),
            (&b"GIF89a-not-a-capture-at-all"[..], "unknown magic number"),
            (
                &pcap(false, false, 65535, 1, &[])[..20],
                "truncated pcap file header at byte offset 0 (20 of 24 bytes)",
            ),
            (&shb(false)[..20], "truncated pcapng section header"),
        ] {
            let f = write_tmp(bytes);
            let e = FileSource::open(f.path()).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
            assert!(e.contains(&f.path().display().to_string()), "{e}");
            assert!(e.contains("byte offset 0"), "{e}");
        }
        let e = FileSource::open(Path::new("/nonexistent/x.pcap")).unwrap_err();
        assert!(matches!(e, CaptureFileError::Io { .. }) && e.to_string().contains("/nonexistent/x.pcap"));
    }

    #[test]
    fn truncated_record_reports_offset_after_delivering_earlier_packets() {
        let mut bytes = pcap(false, false, 65535, 1, &[(S, 0, b"first", 5), (S, 1, b"second", 6)]);
        let bad_at = bytes.len();
        bytes.extend(u32b(S, false));
        bytes.extend(u32b(2, false));
        bytes.extend(u32b(100, false));
        bytes.extend(u32b(100, false));
        bytes.extend([7u8; 8]);
        let f = write_tmp(&bytes);
        let (got, res) = read_path(f.path());
        assert_eq!(got.len(), 2);
        let e = res.unwrap_err();
        assert_eq!(e.offset(), Some(bad_at as u64));
        let want = format!(
            "capture file {}: truncated record at byte offset {bad_at} (record header says 100 bytes, 8 left)",
            f.path().display()
        );
        assert_eq!(e.to_string(), want);

        // A cut inside the 16-byte record header.
        let (got, res) = read_bytes(&bytes[..bad_at + 10]);
        assert_eq!(got.len(), 2);
        assert!(res
            .unwrap_err()
            .to_string()
            .contains(&format!("truncated record header at byte offset {bad_at} (10 of 16")));
    }

    #[test]
    fn oversized_records_are_corruption() {
        // caplen above the snaplen is delivered whole (all its bytes are present).
        let (got, res) = read_bytes(&pcap(false, false, 4, 1, &[(S, 0, b"too long", 8)]));
        assert_eq!(res.unwrap().packets, 1);
        assert_eq!(got[0].data, b"too long");
        // caplen of 2 GiB: rejected from the header alone, no huge read.
        let mut bytes = pcap(true, false, 0, 1, &[]);
        for x in [S, 0, 0x8000_0000, 0x8000_0000] {
            bytes.extend(u32b(x, true));
        }
        bytes.extend([0u8; 100]);
        let e = read_bytes(&bytes).1.unwrap_err();
        assert_eq!(e.offset(), Some(24));
        assert!(e.to_string().contains("record too large"), "{e}");
    }

    #[test]
    fn pcapng_interfaces_linktypes_and_resolutions() {
        for be in [false, true] {
            let mut b = shb(be);
            b.extend(idb(be, 1, 0, &[])); // if 0: Ethernet, default µs
            b.extend(idb(be, 101, 65535, &[opt(be, 9, &[9])])); // if 1: raw IP, ns
            b.extend(epb(be, 0, 1_700_000_000_123_456, b"eth-frame", 9));
            b.extend(epb(be, 1, 1_700_000_001_000_000_007, b"ip", 1500));
            b.extend(spb(be, b"simple", 6));
            b.extend(block(be, 0x0000_0bad, b"unknown block is skipped"));
            // Second section: if 0 is NULL, 2^-10 s units, offset +100 s; OPB.
            let offs = if be { 100i64.to_be_bytes() } else { 100i64.to_le_bytes() };
            b.extend(shb(be));
            b.extend(idb(be, 0, 0, &[opt(be, 9, &[0x80 | 10]), opt(be, 14, &offs)]));
            b.extend(epb(be, 0, 1024 * 5 + 512, b"null", 4));
            b.extend(opb(be, 0, 2048, b"old"));
            let (got, res) = read_bytes(&b);
            let sum = res.unwrap();
            assert_eq!(sum.packets, 5);
            assert_eq!(sum.end_offset, b.len() as u64);
            let lts: Vec<u32> = got.iter().map(|g| g.lt).collect();
            assert_eq!(lts, [1, 101, 1, 0, 0]);
            assert_eq!(got[0].ts, 1_700_000_000_123_456_000);
            assert_eq!(
                got[1],
                Got {
                    ts: 1_700_000_001_000_000_007,
                    lt: 101,
                    data: b"ip".to_vec(),
                    wire: 1500
                }
            );
            assert_eq!(got[2].data, b"simple");
            assert_eq!(got[2].ts, got[1].ts, "SPB inherits the previous timestamp");
            assert_eq!(got[3].ts, 105_500_000_000);
            assert_eq!(
                got[4],
                Got {
                    ts: 102_000_000_000,
                    lt: 0,
                    data: b"old".to_vec(),
                    wire: 3
                }
            );
        }
    }

    #[test]
    fn pcapng_errors() {
        let mut b = shb(false);
        b.extend(idb(false, 1, 0, &[]));
        let good = b.len();
        b.extend(epb(false, 0, 1, b"ok", 2));
        let at = b.len();
        // Packet on an interface that was never declared.
        let mut undeclared = b.clone();
        undeclared.extend(epb(false, 3, 1, b"x", 1));
        let (got, res) = read_bytes(&undeclared);
        assert_eq!(got.len(), 1);
        let e = res.unwrap_err();
        assert_eq!(e.offset(), Some(at as u64));
        assert!(e.to_string().contains("undeclared interface"), "{e}");
        // Truncated block.
        let mut cut = b.clone();
        cut.extend(&epb(false, 0, 1, &[1; 40], 40)[..30]);
        let e = read_bytes(&cut).1.unwrap_err().to_string();
        assert!(
            e.contains(&format!("truncated block at byte offset {at}")) && e.contains("72 bytes, 30 left"),
            "{e}"
        );
        // EPB whose captured length exceeds its block: malformed, and no endless refill loop.
        let mut lie = epb(false, 0, 1, &[1; 8], 8);
        lie[20..24].copy_from_slice(&500u32.to_le_bytes());
        let mut m = b.clone();
        m.extend(&lie);
        m.extend(epb(false, 0, 1, b"after", 5));
        let e = read_bytes(&m).1.unwrap_err();
        assert_eq!(e.offset(), Some(at as u64));
        assert!(e.to_string().contains("malformed block"), "{e}");
        // Silly block length.
        let mut z = b[..good].to_vec();
        z.extend(u32b(6, false));
        z.extend(u32b(0x7fff_fff0, false));
        z.extend([0; 64]);
        let e = read_bytes(&z).1.unwrap_err();
        assert_eq!(e.offset(), Some(good as u64));
        assert!(e.to_string().contains("block too large"), "{e}");
    }

    /// Truncations and byte flips of valid files must give Ok or Err, never panic or hang.
    #[test]
    fn mutated_files_never_panic() {
        let mut ng = shb(false);
        ng.extend(idb(false, 1, 0, &[opt(false, 9, &[9])]));
        ng.extend(epb(false, 0, 7, &[0xaa; 33], 60));
        ng.extend(spb(false, b"spb", 3));
        ng.extend(opb(false, 0, 2, b"opb"));
        let classic = pcap(true, true, 100, 1, &[(1, 2, &[0x55; 20], 20), (3, 4, &[0x66; 9], 90)]);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for base in [ng, classic] {
            for cut in 0..base.len() {
                let _ = read_bytes(&base[..cut]);
            }
            for _ in 0..120 {
                let mut m = base.clone();
                for _ in 0..3 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = (seed % m.len() as u64) as usize;
                    m[i] = (seed >> 32) as u8;
                }
                let (got, res) = read_bytes(&m);
                if let Ok(s) = res {
                    assert_eq!(s.packets, got.len() as u64);
                }
            }
        }
    }

    #[test]
    fn pacer_schedule() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(2.0);
        assert_eq!(p.delay(10_000_000_000, t0), Duration::ZERO, "first frame immediately");
        assert_eq!(p.delay(10_100_000_000, t0), ms(50), "100 ms recorded / speed 2");
        assert_eq!(
            p.delay(10_000_000_000, t0 + ms(50)),
            Duration::ZERO,
            "backwards: no wait"
        );
        assert_eq!(p.delay(20_000_000_000, t0 + ms(50)), MAX_PACER_GAP, "huge gap capped");
        // Running late by more than the cap resynchronises instead of bursting.
        assert_eq!(p.delay(20_000_000_000, t0 + ms(5000)), Duration::ZERO);
        assert_eq!(p.delay(20_010_000_000, t0 + ms(5000)), ms(5));
        let mut off = Pacer::new(0.0);
        assert_eq!(off.delay(1, t0), Duration::ZERO);
        assert_eq!(off.delay(u64::MAX, t0), Duration::ZERO);
        let mut slow = Pacer::new(f64::MIN_POSITIVE);
        slow.delay(0, t0);
        assert_eq!(slow.delay(u64::MAX, t0), MAX_PACER_GAP);
    }

    /// `run --loop` keeps one pacer across passes and shifts each pass to start 1 s of capture
    /// time after the previous one ended: a one-packet file is then released once per second
    /// at speed 1 (twice per second at speed 2), not as fast as possible.
    #[test]
    fn pacer_across_loop_passes() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let ts = 1_600_000_000_000_000_000u64;
        let mut p = Pacer::new(1.0);
        assert_eq!(p.delay(ts, t0), Duration::ZERO);
        assert_eq!(p.delay(ts + 1_000_000_000, t0), ms(1000), "pass 2, 1 s later");
        assert_eq!(p.delay(ts + 2_000_000_000, t0 + ms(1000)), ms(1000), "pass 3");
        let mut fast = Pacer::new(2.0);
        assert_eq!(fast.delay(ts, t0), Duration::ZERO);
        assert_eq!(fast.delay(ts + 1_000_000_000, t0), ms(500));
    }

    // ---- real captures, only when copied into tests/data ----

    fn data_file(name: &str) -> Option<PathBuf> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
        if p.exists() {
            Some(p)
        } else {
            eprintln!("skipping: tests/data/{name} not present");
            None
        }
    }

    #[test]
    fn real_nanosecond_big_endian() {
        let Some(p) = data_file("nanosecond-big-endian-http.pcap") else {
            return;
        };
        let (got, res) = read_path(&p);
        assert_eq!(res.unwrap().packets, 10);
        assert!(got.iter().all(|g| g.lt == 1));
        assert!(got.windows(2).all(|w| w[0].ts <= w[1].ts));
    }

    #[test]
    fn real_pcapng_mixed_linktypes() {
        let Some(p) = data_file("pcapng-8-interfaces-mixed-linktypes.pcapng") else {
            return;
        };
        let (got, res) = read_path(&p);
        assert_eq!(res.unwrap().packets, 64);
        assert_eq!(got.iter().filter(|g| g.lt == 1).count(), 62);
        assert_eq!(got.iter().filter(|g| g.lt == 0).count(), 2);
    }

    #[test]
    fn real_invalid_nanosecond_timestamps() {
        let Some(p) = data_file("nanosecond-invalid-timestamp-sll.pcap") else {
            return;
        };
        let (got, res) = read_path(&p);
        assert_eq!(res.unwrap().packets, 3);
        assert!(got.iter().all(|g| g.lt == 113));
        let ts: Vec<u64> = got.iter().map(|g| g.ts).collect();
        assert_eq!(
            ts,
            [
                1_418_145_369_999_999_999,
                1_418_145_371_000_000_000,
                1_418_145_372_147_483_648
            ]
        );
    }

    #[test]
    fn real_header_only_and_truncated_snaplen1() {
        if let Some(p) = data_file("empty-header-only.pcap") {
            assert_eq!(read_path(&p).1.unwrap().packets, 0);
        }
        if let Some(p) = data_file("truncated-record-snaplen1.pcap") {
            // snaplen 1 in the header, 8 captured bytes of a 78-byte frame: delivered whole.
            let (got, res) = read_path(&p);
            assert_eq!(res.unwrap().packets, 1);
            assert_eq!((got[0].data.len(), got[0].wire), (8, 78));
        }
    }

    #[test]
    fn real_corrupt_files() {
        let cases = [
            (
                "corrupt-truncated-mid-record.pcap",
                8,
                926,
                "truncated record at byte offset 926 (record header says 74 bytes, 58 left)",
            ),
            (
                "corrupt-bad-magic.pcap",
                0,
                0,
                "unknown magic number, not pcap or pcapng at byte offset 0 (first bytes ff ff ff ff)",
            ),
            (
                "corrupt-pcapng-truncated-block.pcapng",
                5,
                2848,
                "truncated block at byte offset 2848 (block type 0x00000006, block header says 400 bytes, 152 left)",
            ),
        ];
        for (name, packets, offset, msg) in cases {
            let Some(p) = data_file(name) else { continue };
            let (got, res) = read_path(&p);
            let e = res.unwrap_err();
            assert_eq!(got.len(), packets, "{name}");
            assert_eq!(e.offset(), Some(offset), "{name}");
            assert_eq!(e.to_string(), format!("capture file {}: {msg}", p.display()));
        }
    }

    /// Frame and byte totals of every capture agree with tshark (tests/data/expected/*.json).
    #[test]
    fn real_files_match_tshark_totals() {
        let Some(dir) = data_file("expected") else {
            return;
        };
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            // Only the per-capture files; subdirectories (expected/pfcp/, expected/planes/,
            // expected/reassembly/) hold other facts.
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let json = std::fs::read_to_string(path).unwrap();
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            let name = v["capture"].as_str().unwrap();
            let Some(p) = data_file(name) else { continue };
            let (got, res) = read_path(&p);
            let sum = res.unwrap_or_else(|e| panic!("{e}"));
            let wire: u64 = got.iter().map(|g| u64::from(g.wire)).sum();
            let totals = (sum.packets, sum.bytes_captured, wire);
            let want = (
                v["frames"].as_u64(),
                v["bytes_captured"].as_u64(),
                v["bytes_wire"].as_u64(),
            );
            assert_eq!((Some(totals.0), Some(totals.1), Some(totals.2)), want, "{name}");
            assert_eq!(sum.end_offset, std::fs::metadata(&p).unwrap().len(), "{name}");
            checked += 1;
        }
        assert!(checked > 0);
    }
}
