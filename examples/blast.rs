//! Frame blaster for `scripts/bench-live`: sends minimum-size IPv4/UDP Ethernet frames out of
//! one interface as fast as it can for a given time, through an `AF_PACKET` socket with
//! `PACKET_QDISC_BYPASS` (no queueing discipline) and `sendmmsg` batches, then prints what
//! it sent. Linux only; needs root (or `CAP_NET_RAW`).
//!
//! ```text
//! cargo run --release --example blast -- IFACE SECONDS [FRAME_BYTES] [THREADS]
//! ```
//!
//! `THREADS` (default 1, up to 64) sending threads, each with its own socket.
//! `FRAME_BYTES` (default 60, 60 to 1514) is the frame length handed to the kernel: 60
//! bytes is a 64-byte Ethernet frame on the wire once the 4-byte FCS is added. Frames go to
//! the locally administered MAC 02:f1:5e:00:00:01 (nobody's address: the receiving stack
//! drops them as "other host" after the capture taps saw them), from 10.213.250.2 to
//! 10.213.250.1, UDP source ports cycling over 1024 values (1024 flows), destination port 9.
//!
//! Output, one line on standard output (the script parses it):
//! `blast: sent N frames in S s = P pps (B batches, E send errors ENOBUFS/EAGAIN)`.
//! Exit status 2 with a message on bad arguments or a socket error.

#[cfg(target_os = "linux")]
fn main() {
    if let Err(e) = linux::run() {
        eprintln!("blast: {e}");
        std::process::exit(2);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("blast: AF_PACKET is Linux-only");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    /// Frames per `sendmmsg` call.
    const BATCH: usize = 256;
    /// Distinct UDP source ports (flows).
    const FLOWS: usize = 1024;

    fn os_err(what: &str) -> String {
        format!("{what}: {}", io::Error::last_os_error())
    }

    /// One IPv4/UDP frame of `len` bytes with UDP source port `sport`.
    fn frame(len: usize, src_mac: [u8; 6], sport: u16) -> Vec<u8> {
        let ip_len = len - 14;
        let mut ip = [
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 213, 250, 2, 10, 213, 250, 1,
        ];
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        let mut sum: u32 = ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        let mut f = Vec::with_capacity(len);
        f.extend_from_slice(&[0x02, 0xf1, 0x5e, 0, 0, 1]);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&9u16.to_be_bytes());
        f.extend_from_slice(&((ip_len - 20) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.resize(len, 0);
        f
    }

    /// MAC address of `iface` from sysfs (zeros if unreadable: any source MAC will do).
    fn mac_of(iface: &str) -> [u8; 6] {
        let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).unwrap_or_default();
        let mut mac = [0u8; 6];
        for (m, p) in mac.iter_mut().zip(text.trim().split(':')) {
            *m = u8::from_str_radix(p, 16).unwrap_or(0);
        }
        mac
    }

    pub fn run() -> Result<(), String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let usage = "usage: blast IFACE SECONDS [FRAME_BYTES 60..1514] [THREADS 1..64]";
        let iface = args.first().ok_or(usage)?;
        let secs: f64 = args
            .get(1)
            .and_then(|s| s.parse().ok())
            .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 3600.0)
            .ok_or(usage)?;
        let len: usize = match args.get(2) {
            None => 60,
            Some(s) => s.parse().ok().filter(|l| (60..=1514).contains(l)).ok_or(usage)?,
        };
        let threads: usize = match args.get(3) {
            None => 1,
            Some(s) => s.parse().ok().filter(|t| (1..=64).contains(t)).ok_or(usage)?,
        };
        let cname = std::ffi::CString::new(iface.as_str()).map_err(|_| "NUL in interface name")?;
        // SAFETY: `cname` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(os_err(&format!("interface {iface}")));
        }
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(secs);
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let iface = iface.clone();
                std::thread::spawn(move || send_until(&iface, ifindex, len, end))
            })
            .collect();
        let (mut sent, mut batches, mut errors) = (0u64, 0u64, 0u64);
        for w in workers {
            let (s, b, e) = w.join().map_err(|_| "sender thread panicked")??;
            (sent, batches, errors) = (sent + s, batches + b, errors + e);
        }
        let took = start.elapsed().as_secs_f64();
        println!(
            "blast: sent {sent} frames in {took:.3} s = {:.0} pps ({batches} batches, {errors} send errors ENOBUFS/EAGAIN, {threads} threads)",
            sent as f64 / took
        );
        Ok(())
    }

    /// One sender: its own socket, sending until `end`. Returns (frames, batches, errors).
    fn send_until(iface: &str, ifindex: u32, len: usize, end: Instant) -> Result<(u64, u64, u64), String> {
        // SAFETY: plain socket(2) call; protocol 0 = this socket receives nothing.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(os_err("AF_PACKET socket (needs root or CAP_NET_RAW)"));
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        // SAFETY: `one` is a live c_int of the stated size. Failure only costs speed.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as libc::c_int;
        sll.sll_halen = 6;

        let src_mac = mac_of(iface);
        let frames: Vec<Vec<u8>> = (0..FLOWS).map(|i| frame(len, src_mac, 10000 + i as u16)).collect();
        let mut iovs: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = (0..FLOWS)
            .map(|i| {
                // SAFETY: mmsghdr is plain old data; all-zero is valid.
                let mut m: libc::mmsghdr = unsafe { zeroed() };
                m.msg_hdr.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
                m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                m.msg_hdr.msg_iov = &mut iovs[i];
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();

        let (mut sent, mut batches, mut errors) = (0u64, 0u64, 0u64);
        let mut next = 0usize;
        while Instant::now() < end {
            for _ in 0..16 {
                let n = BATCH.min(FLOWS - next);
                // SAFETY: `msgs[next..next + n]` are valid mmsghdrs whose pointers (`sll`,
                // `iovs`, `frames`) stay alive and unmoved for the whole loop.
                let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr().add(next), n as libc::c_uint, 0) };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR) => {
                            errors += 1;
                            std::thread::yield_now();
                        }
                        _ => return Err(format!("sendmmsg on {iface}: {e}")),
                    }
                    continue;
                }
                sent += r as u64;
                batches += 1;
                next = (next + r as usize) % FLOWS;
            }
        }
        Ok((sent, batches, errors))
    }
}
