//! The `TPACKET_V3` memory-mapped receive ring of [`super::LiveBackend::Ring`] (Linux).
//!
//! Layout and protocol, from `packet(7)` and the kernel's
//! `Documentation/networking/packet_mmap.rst`:
//!
//! * `setsockopt(PACKET_VERSION, TPACKET_V3)`, then `setsockopt(PACKET_RX_RING, tpacket_req3)`
//!   makes the kernel allocate `tp_block_nr` blocks of `tp_block_size` bytes, which `mmap`
//!   maps contiguously into this process.
//! * Each block starts with a `tpacket_block_desc`; its `block_status` belongs to the kernel
//!   (`TP_STATUS_KERNEL`) while the kernel fills the block and to user space once
//!   `TP_STATUS_USER` is set (block full, or `tp_retire_blk_tov` ms after its first frame).
//!   The kernel fills blocks in ring order, so user space reads them in ring order too.
//! * A block holds `num_pkts` frames, the first at `offset_to_first_pkt`, each one a
//!   `tpacket3_hdr` (`tp_next_offset` to the next, `tp_snaplen` captured bytes at `tp_mac`,
//!   `tp_len` bytes on the wire, `tp_sec`/`tp_nsec` kernel time stamp, VLAN tag in `hv1`)
//!   followed by a `sockaddr_ll` (packet type) at `TPACKET_ALIGN(sizeof(tpacket3_hdr))`.
//! * Writing `TP_STATUS_KERNEL` to `block_status` gives the block back. Reads of the block
//!   happen after an acquire load of `TP_STATUS_USER` and before the release store that
//!   returns it, so neither side sees the other's half-written data.

use super::sys::{bind_and_join, get_opt, ifindex, poll_in, set_opt, socket};
use super::{Frame, LinkType, LiveOptions, MAX_BATCH, RING_FRAME_SIZE};
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Offset of the `tpacket_hdr_v1` inside a block (`tpacket_block_desc.hdr.bh1`).
const BH1: usize = offset_of!(libc::tpacket_block_desc, hdr);
/// Offset of `block_status` in a block (4-byte aligned: blocks are page aligned).
const BLOCK_STATUS: usize = BH1 + offset_of!(libc::tpacket_hdr_v1, block_status);
/// Offset of `num_pkts` in a block.
const BLOCK_NUM_PKTS: usize = BH1 + offset_of!(libc::tpacket_hdr_v1, num_pkts);
/// Offset of `offset_to_first_pkt` in a block.
const BLOCK_FIRST_PKT: usize = BH1 + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
/// Size of the frame header the kernel writes before the `sockaddr_ll`.
const HDR_LEN: usize = size_of::<libc::tpacket3_hdr>();
/// Offset of `sll_pkttype` from the start of a frame: the `sockaddr_ll` follows the header,
/// aligned to `TPACKET_ALIGNMENT` (16).
const PKTTYPE: usize = ((HDR_LEN + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1))
    + offset_of!(libc::sockaddr_ll, sll_pkttype);
/// Most frames (delivered or skipped) examined by one `recv` call.
const MAX_EXAMINED: usize = 4 * MAX_BATCH;
/// 802.1Q tag protocol identifier, used when the kernel does not report one.
const ETH_P_8021Q: u16 = 0x8100;

/// Where reading stopped inside a block that was only partly delivered.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Frames of the block not delivered yet.
    left: u32,
    /// Offset of the next frame from the block start.
    offset: usize,
}

/// An `AF_PACKET` socket with its mapped `TPACKET_V3` receive ring. Dropping it unmaps the
/// ring and closes the socket (which also leaves promiscuous mode and the fanout group).
pub struct Ring {
    // Declared first: dropped after `Drop::drop` unmapped the ring.
    fd: OwnedFd,
    /// Start of the mapping: `block_count` blocks of `block_size` bytes.
    map: NonNull<u8>,
    map_len: usize,
    block_size: usize,
    block_count: usize,
    /// Index of the block to read next.
    block: usize,
    /// Position inside `block` when it was opened but not finished.
    cursor: Option<Cursor>,
    /// Loopback: skip the outgoing copy of each packet (the incoming one is kept).
    skip_outgoing: bool,
    /// A frame whose VLAN tag the kernel stripped, with the tag put back.
    scratch: Vec<u8>,
    /// A malformed block was reported already (logged once per socket).
    malformed_logged: bool,
}

// SAFETY: the mapping is owned by this value alone (no other handle to it exists in the
// process) and only accessed through `&mut self`, so moving it to another thread is sound.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `map`/`map_len` are exactly the mapping created in `open`, unmapped once,
        // here; no frame borrowing it can outlive `&mut self` calls.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

impl Ring {
    /// Opens the socket, sets up and maps the ring, then binds it to interface `name`
    /// (hardware type `arphrd`) and joins the fanout group of `opts`. `opts.ring` has been
    /// checked with `RingConfig::validate`.
    pub fn open(name: &str, arphrd: u16, opts: &LiveOptions) -> io::Result<Ring> {
        let ifindex = ifindex(name)?;
        let cfg = opts.ring;
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let block_size = cfg.block_size as usize;
        if page == 0 || block_size % page != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "capture.ring_block_size: {block_size} bytes is not a multiple of the page size ({page} bytes)"
                ),
            ));
        }
        let map_len = usize::try_from(cfg.bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "capture.ring_block_count: the ring does not fit the address space",
            )
        })?;
        // Protocol 0: receive nothing until bind() attaches us to this interface only.
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW)?;
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set_opt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(|e| io::Error::new(e.kind(), format!("setting PACKET_VERSION to TPACKET_V3: {e}")))?;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: RING_FRAME_SIZE,
            tp_frame_nr: (cfg.block_size / RING_FRAME_SIZE).saturating_mul(cfg.block_count),
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_opt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::ENOMEM) {
                " (the kernel could not allocate it: lower capture.ring_block_count or capture.ring_block_size)"
            } else {
                ""
            };
            io::Error::new(
                e.kind(),
                format!(
                    "PACKET_RX_RING of {} blocks of {} bytes ({} MiB): {e}{hint}",
                    cfg.block_count,
                    cfg.block_size,
                    cfg.bytes() >> 20
                ),
            )
        })?;
        // SAFETY: a fresh shared mapping of the ring the kernel just allocated for `fd`, of
        // exactly its size; no existing memory is affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("mmap of the ring ({map_len} bytes): {e}"),
            ));
        }
        let Some(map) = NonNull::new(map.cast::<u8>()) else {
            return Err(io::Error::other("mmap of the ring returned a null address"));
        };
        let ring = Ring {
            fd,
            map,
            map_len,
            block_size,
            block_count: cfg.block_count as usize,
            block: 0,
            cursor: None,
            // As the recvmsg backend: on loopback every packet is seen once outgoing and
            // once incoming; elsewhere outgoing packets are distinct traffic.
            skip_outgoing: arphrd == libc::ARPHRD_LOOPBACK,
            scratch: Vec::new(),
            malformed_logged: false,
        };
        bind_and_join(&ring.fd, ifindex, opts)?;
        Ok(ring)
    }

    /// The `block_status` word of block `b` (< `block_count`).
    fn status(&self, b: usize) -> &AtomicU32 {
        debug_assert!(b < self.block_count);
        // SAFETY: `b * block_size + BLOCK_STATUS` lies inside the mapping (b < block_count,
        // BLOCK_STATUS < block_size); blocks are page aligned, so the u32 is 4-byte aligned.
        // The kernel accesses it concurrently, hence an atomic, which lives as long as the
        // mapping, i.e. as long as `&self`.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(b * self.block_size + BLOCK_STATUS).cast()) }
    }

    /// A `u32` at `offset` of block `b`, read while user space owns the block.
    fn block_u32(&self, b: usize, offset: usize) -> u32 {
        // SAFETY: callers pass the fixed header offsets above, far inside the block; the
        // block belongs to user space (TP_STATUS_USER was seen with acquire ordering).
        unsafe { std::ptr::read_unaligned(self.map.as_ptr().add(b * self.block_size + offset).cast()) }
    }

    /// Whether the kernel handed block `b` to user space.
    fn ready(&self, b: usize) -> bool {
        self.status(b).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Gives the current block back to the kernel and moves on to the next one.
    fn release(&mut self) {
        // Release: every read of the block above happens before the kernel may refill it.
        self.status(self.block).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block = (self.block + 1) % self.block_count;
        self.cursor = None;
    }

    /// Logs a block whose headers point outside it (once per socket); the rest of the block
    /// is skipped.
    fn malformed(&mut self, what: &str) {
        if !self.malformed_logged {
            self.malformed_logged = true;
            tracing::error!(
                block = self.block,
                "capture ring: {what}; the rest of the block is skipped (reported once)"
            );
        }
        self.release();
    }

    /// Waits up to `timeout` for the kernel: `Ok(true)` when the socket became readable,
    /// `Ok(false)` on time-out or a signal, the socket's pending error (e.g. `ENETDOWN` when
    /// the interface goes down or away) as `Err`.
    fn wait(&self, timeout: Duration) -> io::Result<bool> {
        match poll_in(&self.fd, timeout)? {
            None => Ok(false),
            Some(r) if r & libc::POLLNVAL != 0 => Err(io::Error::from_raw_os_error(libc::EBADF)),
            Some(r) if r & libc::POLLERR != 0 => match self.take_error() {
                Some(e) => Err(e),
                None => Ok(true),
            },
            Some(_) => Ok(true),
        }
    }

    /// The socket's pending error (`SO_ERROR`, which also clears it).
    fn take_error(&self) -> Option<io::Error> {
        // SAFETY: SO_ERROR fills a c_int.
        match unsafe { get_opt::<libc::c_int>(&self.fd, libc::SOL_SOCKET, libc::SO_ERROR) } {
            Ok(0) => None,
            Ok(err) => Some(io::Error::from_raw_os_error(err)),
            Err(e) => Some(e),
        }
    }

    /// Delivers up to `MAX_BATCH` frames from the ring, waiting up to `timeout` if none is
    /// ready. Returns the number delivered and the error that ended the call, if any.
    pub fn recv(
        &mut self,
        timeout: Duration,
        linktype: LinkType,
        f: &mut dyn FnMut(Frame<'_>),
    ) -> (usize, io::Result<()>) {
        let (mut delivered, mut examined, mut waited) = (0, 0, false);
        while delivered < MAX_BATCH && examined < MAX_EXAMINED {
            let cursor = match self.cursor {
                Some(c) => c,
                None => {
                    if !self.ready(self.block) {
                        if delivered > 0 || waited {
                            break;
                        }
                        match self.wait(timeout) {
                            Ok(true) => {
                                waited = true;
                                continue;
                            }
                            Ok(false) => break,
                            Err(e) => return (delivered, Err(e)),
                        }
                    }
                    let left = self.block_u32(self.block, BLOCK_NUM_PKTS);
                    let offset = self.block_u32(self.block, BLOCK_FIRST_PKT) as usize;
                    if left == 0 {
                        self.release();
                        continue;
                    }
                    Cursor { left, offset }
                }
            };
            examined += 1;
            match self.frame(cursor, linktype, f) {
                Ok(sent) => delivered += usize::from(sent),
                Err(what) => self.malformed(what),
            }
        }
        (delivered, Ok(()))
    }

    /// Reads the frame at `cursor` in the current block, hands it to `f` unless it is a
    /// skipped loopback copy (`Ok(false)`), and advances the cursor (releasing the block
    /// after its last frame). `Err` describes a header that points outside the block.
    fn frame(
        &mut self,
        cursor: Cursor,
        linktype: LinkType,
        f: &mut dyn FnMut(Frame<'_>),
    ) -> Result<bool, &'static str> {
        let (bs, off) = (self.block_size, cursor.offset);
        if off.checked_add(HDR_LEN.max(PKTTYPE + 1)).is_none_or(|end| end > bs) {
            return Err("frame header beyond the end of the block");
        }
        // SAFETY: the header lies inside the block (checked above), which belongs to user
        // space until it is released; read_unaligned makes no alignment assumption.
        let base = unsafe { self.map.as_ptr().add(self.block * bs) };
        // SAFETY: as above.
        let hdr: libc::tpacket3_hdr = unsafe { std::ptr::read_unaligned(base.add(off).cast()) };
        // SAFETY: `off + PKTTYPE < block_size` (checked above).
        let pkttype = unsafe { *base.add(off + PKTTYPE) };
        let start = off + usize::from(hdr.tp_mac);
        let len = hdr.tp_snaplen as usize;
        if start.checked_add(len).is_none_or(|end| end > bs) {
            return Err("frame data beyond the end of the block");
        }
        let left = cursor.left - 1;
        let next = off.saturating_add(hdr.tp_next_offset as usize);
        if left > 0 && (hdr.tp_next_offset == 0 || next >= bs) {
            return Err("next-frame offset outside the block");
        }
        let deliver = !(self.skip_outgoing && pkttype == libc::PACKET_OUTGOING);
        if deliver {
            // SAFETY: `start..start + len` lies inside the block (checked above), which stays
            // user-owned (and mapped) until `release`, after `f` returned; `f` cannot keep
            // the slice, whose lifetime is that of the call.
            let data = unsafe { std::slice::from_raw_parts(base.add(start), len) };
            let ts_ns = u64::from(hdr.tp_sec) * 1_000_000_000 + u64::from(hdr.tp_nsec);
            let mut wire_len = hdr.tp_len;
            let vlan = hdr.tp_status & libc::TP_STATUS_VLAN_VALID != 0;
            let data = if vlan && linktype == LinkType::ETHERNET && data.len() >= 12 {
                // The kernel took the 802.1Q tag out of the frame (receive offload, or veth's
                // software untagging) and reports it in the header: put it back after the two
                // MAC addresses so that the decoder sees the frame as it was on the wire.
                let tpid = if hdr.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    hdr.hv1.tp_vlan_tpid
                } else {
                    ETH_P_8021Q
                };
                let tci = hdr.hv1.tp_vlan_tci as u16;
                self.scratch.clear();
                self.scratch.extend_from_slice(&data[..12]);
                self.scratch.extend_from_slice(&tpid.to_be_bytes());
                self.scratch.extend_from_slice(&tci.to_be_bytes());
                self.scratch.extend_from_slice(&data[12..]);
                wire_len = wire_len.saturating_add(4);
                &self.scratch[..]
            } else {
                data
            };
            f(Frame {
                ts_ns,
                linktype,
                data,
                wire_len,
            });
        }
        if left == 0 {
            self.release();
        } else {
            self.cursor = Some(Cursor { left, offset: next });
        }
        Ok(deliver)
    }

    /// Reads (and thereby resets) the kernel counters of `tpacket_stats_v3`:
    /// `(packets incl. drops, drops, queue freezes)`.
    pub fn kernel_stats(&self) -> Option<(u64, u64, u64)> {
        // SAFETY: tpacket_stats_v3 is plain old data, what PACKET_STATISTICS fills on a
        // TPACKET_V3 socket.
        let st: libc::tpacket_stats_v3 =
            unsafe { get_opt(&self.fd, libc::SOL_PACKET, libc::PACKET_STATISTICS) }.ok()?;
        Some((
            u64::from(st.tp_packets),
            u64::from(st.tp_drops),
            u64::from(st.tp_freeze_q_cnt),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets match the kernel's `if_packet.h` layout on every Linux target.
    #[test]
    fn header_offsets() {
        assert_eq!(BLOCK_STATUS, 8);
        assert_eq!(BLOCK_NUM_PKTS, 12);
        assert_eq!(BLOCK_FIRST_PKT, 16);
        assert_eq!(HDR_LEN, 48);
        assert_eq!(PKTTYPE, 48 + 10);
    }
}
