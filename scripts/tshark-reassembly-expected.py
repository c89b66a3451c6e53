#!/usr/bin/env python3
"""Ground truth for the outer IP reassembly test (tests/reassembly_vs_tshark.rs), from tshark.

    python3 scripts/tshark-reassembly-expected.py tests/data/CAPTURE [...]

writes tests/data/expected/reassembly/CAPTURE.json for each capture. For each capture it runs,
once, with tshark's default preferences (ip.defragment and ipv6.defragment on; an empty
WIRESHARK_CONFIG_DIR so that no user preference applies):

    WIRESHARK_CONFIG_DIR=<empty dir> tshark -2 -r CAPTURE -T json --no-duplicate-keys

The files in the repository were made, from the crate root, with

    python3 scripts/tshark-reassembly-expected.py tests/data/ipv4-fragments-nfs-udp.pcap \
        tests/data/ipv6-fragments-mdns-udp.pcap tests/data/gtpu-gn-http-outer-ipfrag.pcap \
        tests/data/gtpu-ext-hdr-pdcp-outer-ipfrag.pcap tests/data/dns-amplification-rrsig-fragmented.pcap

(two passes, so that `ip.reassembled_in` / `ipv6.reassembled.in` are known on every
fragment), and keeps, for the *outermost* IP header of every frame only (the first `ip` or
`ipv6` layer; tshark also reassembles tunnelled inner fragments, fivewatch does not):

  frames            number of frames in the capture (`frame.number` of the last one)
  fragments         frames whose outer IP header is a fragment: IPv4 with `ip.flags.mf` 1 or
                    `ip.frag_offset` > 0; IPv6 with a Fragment header (`ipv6.fraghdr`)
  reassembled       one object per datagram tshark reassembled, in frame order:
    frame             `frame.number` of the frame where reassembly completes (the frame whose
                      outer IP layer carries `ip.fragments` / `ipv6.fragments`)
    version           4 or 6
    fragment_frames   the `ip.fragment` / `ipv6.fragment` frame numbers listed in that frame
    overlap_frames    the fragment frames tshark flags `ip.fragment.overlap` /
                      `ipv6.fragment.overlap` (a fragment covering bytes already held)
    conflict_frames   those also flagged `*.fragment.overlap.conflict` (different bytes)
    reassembled_length  `ip.reassembled.length` / `ipv6.reassembled.length`: the bytes of the
                      reassembled payload (the fragmentable part), without the IP header
    reassembled_sha1  SHA-1 (hex) of `ip.reassembled.data` / `ipv6.reassembled.data`
    header_length     IPv4: `ip.hdr_len` of the completing frame; IPv6: 40 plus the lengths
                      of the extension headers tshark shows before `ipv6.fraghdr`
                      (Hop-by-Hop, Destination Options, Routing: (len + 1) * 8)
    total_length      header_length + reassembled_length: the length of the rebuilt packet
    proto             `ip.proto` / `ipv6.fraghdr.nxt` of the datagram
    src_port, dst_port  the first `udp` / `tcp` layer's ports (the outer transport), or null
    gtp_teid          `gtp.teid` of the first `gtp` layer (GTP-U), or null
    inner_src_port, inner_dst_port  for GTP-U: the ports of the transport inside the tunnel
                      (the second `udp`, or the `tcp` layer), or null

stdlib only; needs tshark on PATH (4.0 was used; the version is stored in the JSON).
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

EXT_HEADERS = ("ipv6.hopopts", "ipv6.dstopts", "ipv6.routing")


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def num(v):
    if v is None:
        return None
    return int(v, 0)


def ports(layer):
    if layer is None:
        return None, None
    for proto in ("udp", "tcp"):
        if proto + ".srcport" in layer:
            return num(layer[proto + ".srcport"]), num(layer[proto + ".dstport"])
    return None, None


def outer_ip(layers):
    """(version, outer IP layer dict) of the first ip/ipv6 layer, in key order."""
    for key in layers:
        if key == "ip":
            return 4, as_list(layers[key])[0]
        if key == "ipv6":
            return 6, as_list(layers[key])[0]
    return None, None


def ipv6_unfragmentable(ip6):
    length = 40
    for key, val in ip6.items():
        if key == "ipv6.fraghdr":
            return length
        if key in EXT_HEADERS:
            for h in as_list(val):
                ln = h.get(key + ".len")
                if ln is None:
                    raise SystemExit("extension header %s without a length field" % key)
                length += (int(ln) + 1) * 8
    raise SystemExit("IPv6 fragments without ipv6.fraghdr")


def transports(layers):
    """Outer and inner transport layers (dicts) in tshark's order."""
    udp = as_list(layers.get("udp"))
    tcp = as_list(layers.get("tcp"))
    keys = [k for k in layers if k in ("udp", "tcp")]
    seq = []
    for k in keys:
        seq.extend(udp if k == "udp" else tcp)
    return seq


def expected(path):
    cmd = ["tshark", "-2", "-r", path, "-T", "json", "--no-duplicate-keys"]
    with tempfile.TemporaryDirectory() as conf:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=conf)
        out = subprocess.run(cmd, check=True, capture_output=True, env=env).stdout
    packets = json.loads(out)
    frames, fragments, reassembled = 0, 0, []
    for p in packets:
        layers = p["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        frames = max(frames, frame)
        version, ip = outer_ip(layers)
        if ip is None:
            continue
        if version == 4:
            flags = ip.get("ip.flags_tree", {})
            is_frag = flags.get("ip.flags.mf") == "1" or int(ip.get("ip.frag_offset", "0")) > 0
            tree = ip.get("ip.fragments_tree")
            prefix = "ip"
        else:
            is_frag = "ipv6.fraghdr" in ip
            tree = ip.get("ipv6.fragments_tree") or (ip.get("ipv6.fragments") if isinstance(ip.get("ipv6.fragments"), dict) else None)
            prefix = "ipv6"
        if is_frag:
            fragments += 1
        if not tree:
            continue
        rlen = int(tree[prefix + ".reassembled.length"])
        frag_frames = [int(x) for x in as_list(tree.get(prefix + ".fragment"))]
        flags = as_list(tree.get(prefix + ".fragment_tree"))
        if len(flags) != len(frag_frames):
            flags = [""] * len(frag_frames)
        overlap = [f for f, t in zip(frag_frames, flags)
                   if isinstance(t, dict) and t.get(prefix + ".fragment.overlap") == "1"]
        conflict = [f for f, t in zip(frag_frames, flags)
                    if isinstance(t, dict) and t.get(prefix + ".fragment.overlap.conflict") == "1"]
        data = bytes.fromhex(tree[prefix + ".reassembled.data"].replace(":", ""))
        if len(data) != rlen:
            raise SystemExit("frame %d: reassembled data is %d bytes, length says %d" % (frame, len(data), rlen))
        if version == 4:
            hlen = int(ip["ip.hdr_len"])
            proto = int(ip["ip.proto"])
        else:
            hlen = ipv6_unfragmentable(ip)
            proto = int(ip["ipv6.fraghdr"]["ipv6.fraghdr.nxt"])
        tl = transports(layers)
        sp, dp = ports(tl[0] if tl else None)
        gtp = as_list(layers.get("gtp"))
        teid = num(gtp[0].get("gtp.teid")) if gtp and "gtp.teid" in gtp[0] else None
        isp, idp = ports(tl[1] if teid is not None and len(tl) > 1 else None)
        reassembled.append({
            "frame": frame,
            "version": version,
            "fragment_frames": frag_frames,
            "overlap_frames": overlap,
            "conflict_frames": conflict,
            "reassembled_length": rlen,
            "reassembled_sha1": hashlib.sha1(data).hexdigest(),
            "header_length": hlen,
            "total_length": hlen + rlen,
            "proto": proto,
            "src_port": sp,
            "dst_port": dp,
            "gtp_teid": teid,
            "inner_src_port": isp,
            "inner_dst_port": idp,
        })
    version = subprocess.run(["tshark", "--version"], check=True, capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "capture": os.path.basename(path),
        "tool": version,
        "command": "WIRESHARK_CONFIG_DIR=<empty> " + " ".join(cmd[:3] + [os.path.basename(path)] + cmd[4:]),
        "frames": frames,
        "fragments": fragments,
        "reassembled": reassembled,
    }


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "expected", "reassembly")
    os.makedirs(root, exist_ok=True)
    for path in sys.argv[1:]:
        e = expected(path)
        dst = os.path.join(root, e["capture"] + ".json")
        with open(dst, "w") as f:
            # One reassembled datagram per line, for readable diffs.
            head = {k: v for k, v in e.items() if k != "reassembled"}
            f.write(json.dumps(head, indent=1)[:-2] + ',\n "reassembled": [\n')
            f.write(",\n".join("  " + json.dumps(r) for r in e["reassembled"]))
            f.write("\n ]\n}\n")
        print("%s: %d frames, %d fragments, %d reassembled" % (dst, e["frames"], e["fragments"], len(e["reassembled"])))


if __name__ == "__main__":
    main()
