#!/usr/bin/env python3
"""Seed the fuzz corpora from the captures in tests/data (run from the repository root:
`python3 fuzz/seed-corpus.py`). Writes fuzz/corpus/<target>/<name>:

- frame:       frames of each capture, 16 per seed, encoded as the `frame` target reads them
               ([link-type selector][timestamp step][length u16 LE][bytes]);
- workers:     the same sequences as frame (differential: 3 flow workers against one engine);
- gtpu:        UDP payloads to or from port 2152;
- pfcp:        UDP payloads to or from port 8805, 8 per seed, each preceded by its length
               (u16 LE), as the `pfcp` target reads them;
- control:     UDP payloads to or from port 2123 (GTPv2-C) and SCTP packets (common header on);
- pcap_reader: every capture file under 256 KiB, whole.

Reads pcap and pcapng itself (no dependencies); only Ethernet/SLL/SLL2/raw/NULL frames are
used for the link-independent seeds.
"""
import hashlib
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "fuzz", "corpus")
# Same order as LINK_TYPES in fuzz_targets/frame.rs.
LINK_TYPES = [1, 113, 276, 101, 12, 228, 229, 0, 108, 147]


def frames(path):
    """Yield (linktype, bytes) for every packet of a pcap or pcapng file."""
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 24:
        return
    magic = b[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        lt = struct.unpack(e + "I", b[20:24])[0] & 0xFFFF
        off = 24
        while off + 16 <= len(b):
            incl = struct.unpack(e + "I", b[off + 8:off + 12])[0]
            yield lt, b[off + 16:off + 16 + incl]
            off += 16 + incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        off, e, ifaces = 0, "<", []
        while off + 12 <= len(b):
            if b[off:off + 4] == b"\x0a\x0d\x0d\x0a":
                e = "<" if b[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                ifaces = []
            btype, blen = struct.unpack(e + "II", b[off:off + 8])
            if blen < 12:
                return
            body = b[off + 8:off + blen - 4]
            if btype == 1 and len(body) >= 2:
                ifaces.append(struct.unpack(e + "H", body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                iface, _, _, caplen, _ = struct.unpack(e + "IIIII", body[:20])
                if iface < len(ifaces):
                    yield ifaces[iface], body[20:20 + caplen]
            off += blen


def udp_payloads(lt, fr, port):
    """UDP payload to/from `port` of an Ethernet/SLL/raw IPv4 or IPv6 frame, else None;
    with port None, the SCTP packet of the frame instead."""
    off = {1: 14, 113: 16, 276: 20, 101: 0, 12: 0, 228: 0, 229: 0}.get(lt)
    if off is None:
        return None
    if lt == 1:
        et = fr[12:14]
        while et in (b"\x81\x00", b"\x88\xa8") and len(fr) >= off + 4:
            et, off = fr[off + 2:off + 4], off + 4
    ip = fr[off:]
    if not ip:
        return None
    proto = 132 if port is None else 17
    if ip[0] >> 4 == 4 and len(ip) >= 20 and ip[9] == proto:
        udp = ip[(ip[0] & 15) * 4:]
    elif ip[0] >> 4 == 6 and len(ip) >= 40 and ip[6] == proto:
        udp = ip[40:]
    else:
        return None
    if port is None:
        return udp if len(udp) >= 12 else None
    if len(udp) < 8:
        return None
    sp, dp = struct.unpack(">HH", udp[:4])
    return udp[8:] if port in (sp, dp) else None


def write(target, data):
    if target == "frame":
        # The workers target reads the same frame sequences.
        write("workers", data)
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def main():
    counts = {}
    for name in sorted(os.listdir(DATA)):
        path = os.path.join(DATA, name)
        if not name.endswith((".pcap", ".pcapng")):
            continue
        if os.path.getsize(path) < 256 * 1024:
            write("pcap_reader", open(path, "rb").read())
            counts["pcap_reader"] = counts.get("pcap_reader", 0) + 1
        batch = b""
        pfcp = []
        for i, (lt, fr) in enumerate(frames(path)):
            if lt in LINK_TYPES:
                fr = fr[:65535]
                batch += bytes([LINK_TYPES.index(lt), 1]) + struct.pack("<H", len(fr)) + fr
            if i % 16 == 15 and batch:
                write("frame", batch)
                counts["frame"] = counts.get("frame", 0) + 1
                batch = b""
            if i > 4000:
                break
            p = udp_payloads(lt, fr, 2152)
            if p:
                write("gtpu", p)
                counts["gtpu"] = counts.get("gtpu", 0) + 1
            for p in (udp_payloads(lt, fr, 2123), udp_payloads(lt, fr, None)):
                if p:
                    write("control", p)
                    counts["control"] = counts.get("control", 0) + 1
            p = udp_payloads(lt, fr, 8805)
            if p:
                pfcp.append(struct.pack("<H", len(p)) + p)
        if batch:
            write("frame", batch)
        for k in range(0, len(pfcp), 8):
            write("pfcp", b"".join(pfcp[k:k + 8]))
            counts["pfcp"] = counts.get("pfcp", 0) + 1
    for t, n in sorted(counts.items()):
        print(f"{t}: {n} seeds written (duplicates collapse by content hash)", file=sys.stderr)


if __name__ == "__main__":
    main()
