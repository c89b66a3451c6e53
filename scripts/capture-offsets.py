#!/usr/bin/env python3
"""Walk a pcap / pcapng file structurally (no dissection) and report how many
complete packet records/blocks it contains and the byte offset where the first
incomplete (truncated) record/block starts, if any.

    python3 scripts/capture-offsets.py FILE [FILE...]

stdlib only. Used to derive the ground truth for the corrupt-* test captures
(see scripts/make-corrupt-captures.sh and tests/data/MANIFEST.tsv).
"""
import struct
import sys

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", "us"),
    b"\xa1\xb2\xc3\xd4": (">", "us"),
    b"\x4d\x3c\xb2\xa1": ("<", "ns"),
    b"\xa1\xb2\x3c\x4d": (">", "ns"),
}
PCAPNG_SHB = 0x0A0D0D0A
PACKET_BLOCKS = {0x00000006: "EPB", 0x00000003: "SPB", 0x00000002: "PB(obsolete)"}


def walk_pcap(data, endian, res):
    out = {"format": "pcap", "endian": endian, "ts_res": res}
    if len(data) < 24:
        out.update(complete_packets=0, incomplete_at=0, reason="global header truncated")
        return out
    snaplen, linktype = struct.unpack(endian + "II", data[16:24])
    out.update(snaplen=snaplen, linktype=linktype)
    off, n = 24, 0
    while off < len(data):
        if len(data) - off < 16:
            out.update(complete_packets=n, incomplete_at=off,
                       reason="record header truncated (%d of 16 bytes)" % (len(data) - off))
            return out
        _sec, _frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        if off + 16 + incl > len(data):
            out.update(complete_packets=n, incomplete_at=off,
                       reason="record data truncated: incl_len=%d orig_len=%d, only %d data bytes present"
                       % (incl, orig, len(data) - off - 16))
            return out
        off += 16 + incl
        n += 1
    out.update(complete_packets=n, incomplete_at=None, reason="clean end of file")
    return out


def walk_pcapng(data):
    out = {"format": "pcapng"}
    off, n, endian, blocks = 0, 0, None, 0
    while off < len(data):
        if len(data) - off < 12:
            out.update(complete_packets=n, complete_blocks=blocks, incomplete_at=off,
                       reason="block header truncated (%d bytes left)" % (len(data) - off))
            return out
        btype_raw = data[off:off + 4]
        if struct.unpack("<I", btype_raw)[0] == PCAPNG_SHB:
            bom = data[off + 8:off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else None
            if endian is None:
                out.update(complete_packets=n, complete_blocks=blocks, incomplete_at=off, reason="bad SHB byte-order magic")
                return out
        if endian is None:
            out.update(complete_packets=n, complete_blocks=blocks, incomplete_at=off, reason="no SHB first")
            return out
        btype, blen = struct.unpack(endian + "II", data[off:off + 8])
        name = PACKET_BLOCKS.get(btype, "0x%08x" % btype)
        if blen < 12 or blen % 4:
            out.update(complete_packets=n, complete_blocks=blocks, incomplete_at=off,
                       reason="invalid block total length %d (type %s)" % (blen, name))
            return out
        if off + blen > len(data):
            out.update(complete_packets=n, complete_blocks=blocks, incomplete_at=off,
                       reason="block truncated: type %s, total length %d, only %d bytes present"
                       % (name, blen, len(data) - off))
            return out
        trailer = struct.unpack(endian + "I", data[off + blen - 4:off + blen])[0]
        if trailer != blen:
            out.update(complete_packets=n, complete_blocks=blocks, incomplete_at=off,
                       reason="trailing length %d != leading length %d" % (trailer, blen))
            return out
        if btype in PACKET_BLOCKS:
            n += 1
        blocks += 1
        off += blen
    out.update(complete_packets=n, complete_blocks=blocks, incomplete_at=None, reason="clean end of file")
    return out


def walk(path):
    with open(path, "rb") as fh:
        data = fh.read()
    out = {"file": path, "size": len(data)}
    if len(data) < 4:
        out.update(format="unknown", complete_packets=0, incomplete_at=0, reason="file shorter than a magic number")
    elif data[:4] in PCAP_MAGICS:
        out.update(walk_pcap(data, *PCAP_MAGICS[data[:4]]))
    elif struct.unpack("<I", data[:4])[0] == PCAPNG_SHB:
        out.update(walk_pcapng(data))
    else:
        out.update(format="unknown", complete_packets=0, incomplete_at=0,
                   reason="unrecognised magic %s" % data[:4].hex())
    return out


if __name__ == "__main__":
    for p in sys.argv[1:]:
        r = walk(p)
        print("  ".join("%s=%s" % (k, v) for k, v in r.items()))
