#!/usr/bin/env python3
"""Generate tshark-derived ground truth for the test captures in tests/data.

Regenerate (from the crate root, needs tshark on PATH; Python 3 stdlib only):

    python3 scripts/tshark-expected.py

Optional arguments: capture file names (or paths) to restrict the run, e.g.
    python3 scripts/tshark-expected.py syn-flood-spoofed-sources.pcap

For every capture in tests/data/ (*.pcap, *.pcapng, except corrupt-*) this
writes tests/data/expected/<capture file name>.json, e.g.
tests/data/expected/syn-flood-spoofed-sources.pcap.json.

tshark is run with IP/IPv6 defragmentation and TCP reassembly OFF, with an
empty private configuration directory (so personal Wireshark preferences can't
change the result), and one line per frame is exported with -T fields.
Every value below is computed from those lines; see the DEFINITIONS comment.
"""
# DEFINITIONS (all per frame, from frame.protocols tokens and field occurrences;
# the Nth "ip" token of frame.protocols corresponds to the Nth occurrence of
# every ip.* field, likewise for ipv6, ipv6.fraghdr, udp, tcp):
#
#   frames, bytes_wire (sum frame.len), bytes_captured (sum frame.cap_len)
#   ipv4 / ipv6 / non_ip: outermost network layer = first "ip"/"ipv6" token.
#   G-PDU: the first "gtp" token is directly preceded by "udp", that UDP
#       layer has src or dst port 2152, there is no icmp/icmpv6 token before
#       it (i.e. not a header quoted in an ICMP error) and the first
#       gtp.message is 0xff.  (GTPv1-C on 2123, GTPv2-C and GTP over TCP are
#       thus excluded.)  gtpu_teids / gtpu_qfis / gtpu_psc_pdu_types use the
#       first (outer) GTP header's fields.
#   l4 (the packet's *flow* transport protocol):
#       - G-PDU: if the token after "gtp" is ip/ipv6, the rule below applied
#         to that inner IP layer; otherwise the first tcp/udp/icmp/icmpv6/sctp
#         token after "gtp", or "other".
#       - other IP frames: the rule below applied to the first ip/ipv6 layer.
#       - frames without ip/ipv6: "non_ip".
#       Rule for an IP layer: if it is a non-first fragment (IPv4
#       ip.frag_offset > 0, or an ipv6.fraghdr belonging to that IPv6 header
#       with offset > 0) -> "ip_fragment"; else the first of
#       tcp/udp/icmp/icmpv6/sctp after it (so IPv6 extension headers / AH are
#       skipped, and an ICMP error quoting ip:udp counts as icmp); else "other".
#       Note: inner (tunnelled) non-first fragments in G-PDUs also count as
#       "ip_fragment".
#   tcp_syn_only: flow l4 is tcp and that (flow) TCP layer has SYN=1, ACK=0.
#       tcp_syn_only_last_tcp_occurrence: the naive variant (LAST tcp.flags
#       occurrence in the frame, any l4); it differs only when an ICMP error
#       quotes a TCP SYN.
#   malformed_frames: frames where tshark added _ws.malformed.
import collections
import glob
import json
import os
import shlex
import sys
import tempfile

import tshark_fields

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(DATA, "expected")

TSHARK_OPTS = [
    "-n",
    "-o", "ip.defragment:FALSE",
    "-o", "ipv6.defragment:FALSE",
    "-o", "tcp.desegment_tcp_streams:FALSE",
    "-d", "udp.port==2152,gtp",  # the default anyway; explicit for clarity
    "-T", "fields",
    "-E", "separator=/t",
    "-E", "occurrence=a",
    "-E", "aggregator=,",
    "-E", "header=n",
]
FIELDS = [
    "frame.number", "frame.len", "frame.cap_len", "frame.protocols",
    "gtp.message", "gtp.teid",
    "gtp.ext_hdr.pdu_ses_con.qos_flow_id", "gtp.ext_hdr.pdu_ses_con.pdu_type",
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "tcp.flags.syn", "tcp.flags.ack", "tcp.dstport", "udp.dstport",
    # additions beyond the minimal list:
    "tcp.srcport", "udp.srcport", "ip.frag_offset", "ipv6.fraghdr.offset",
    "frame.time_epoch", "_ws.malformed",
    "gtp.ext_hdr.next",
]
L4 = ("tcp", "udp", "icmp", "icmpv6", "sctp")
IPS = ("ip", "ipv6")
GTPU_PORT = 2152


def tshark_cmd(path):
    return tshark_fields.tshark_cmd(path, TSHARK_OPTS, FIELDS)


def run_tshark(path, confdir):
    return tshark_fields.run_tshark(path, TSHARK_OPTS, FIELDS, confdir)


def as_int(s):
    return int(s, 0)


class Frame:
    """One tshark row plus the token -> field-occurrence mapping."""

    def __init__(self, row):
        self.row = row
        self.num = int(row["frame.number"][0])
        self.len = int(row["frame.len"][0])
        self.cap_len = int(row["frame.cap_len"][0])
        self.time = row["frame.time_epoch"][0] if row["frame.time_epoch"] else None
        self.tokens = row["frame.protocols"][0].split(":") if row["frame.protocols"] else []
        # occurrence index of each token among tokens of the same name
        seen = collections.Counter()
        self.occ = []
        for t in self.tokens:
            self.occ.append(seen[t])
            seen[t] += 1
        self.count = seen

    def field(self, name, idx):
        vals = self.row[name]
        return vals[idx] if 0 <= idx < len(vals) else None

    def first_net(self):
        for i, t in enumerate(self.tokens):
            if t in IPS:
                return i
        return None

    def addr(self, i):
        """(src, dst) of the IP layer at token index i."""
        t = self.tokens[i]
        k = self.occ[i]
        return self.field(t + ".src", k), self.field(t + ".dst", k)

    def is_nonfirst_fragment(self, i):
        t = self.tokens[i]
        if t == "ip":
            off = self.field("ip.frag_offset", self.occ[i])
            return off is not None and int(off) > 0
        # ipv6: look at fraghdr tokens belonging to this IPv6 header chain
        for j in range(i + 1, len(self.tokens)):
            tj = self.tokens[j]
            if tj in IPS or tj in L4:
                break
            if tj == "ipv6.fraghdr":
                off = self.field("ipv6.fraghdr.offset", self.occ[j])
                return off is not None and int(off) > 0
        return False

    def l4_after(self, i):
        for j in range(i + 1, len(self.tokens)):
            if self.tokens[j] in L4:
                return j
        return None

    def flow_from_ip(self, i):
        """(l4 name, token index of the l4 layer or None) for IP layer at i."""
        if self.is_nonfirst_fragment(i):
            return "ip_fragment", None
        j = self.l4_after(i)
        return (self.tokens[j], j) if j is not None else ("other", None)

    def gtpu_gpdu(self):
        """Token index of the G-PDU's gtp token, or None."""
        if "gtp" not in self.tokens:
            return None
        g = self.tokens.index("gtp")
        if g == 0 or self.tokens[g - 1] != "udp":
            return None
        if any(t in ("icmp", "icmpv6") for t in self.tokens[:g]):
            return None
        u = self.occ[g - 1]
        ports = {self.field("udp.srcport", u), self.field("udp.dstport", u)}
        if str(GTPU_PORT) not in ports:
            return None
        msg = self.field("gtp.message", 0)
        if msg is None or as_int(msg) != 0xFF:
            return None
        return g


ALIGN = [("ip", "ip.src"), ("ip", "ip.frag_offset"), ("ipv6", "ipv6.src"),
         ("ipv6.fraghdr", "ipv6.fraghdr.offset"), ("udp", "udp.srcport"),
         ("udp", "udp.dstport"), ("tcp", "tcp.srcport"), ("tcp", "tcp.flags.syn")]


def alignment_warnings(frames):
    """Frames where the token count doesn't match a field's occurrence count
    (would break the token -> occurrence mapping). Expected to be empty."""
    out = []
    for f in frames:
        for tok, fld in ALIGN:
            if f.count[tok] != len(f.row[fld]):
                out.append("frame %d: %d '%s' tokens but %d %s values" % (f.num, f.count[tok], tok, len(f.row[fld]), fld))
    return out


def analyse(frames):
    res = collections.OrderedDict()
    res["frames"] = len(frames)
    res["bytes_wire"] = sum(f.len for f in frames)
    res["bytes_captured"] = sum(f.cap_len for f in frames)
    net = collections.Counter()
    l4 = collections.Counter()
    gpdu = 0
    teids, qfis = set(), set()
    pdu_types = collections.Counter()
    ext_types = collections.Counter()
    gpdu_with_psc = 0
    syn_only = 0
    syn_only_last = 0
    malformed = 0
    gtp_any = 0
    teid_map = collections.defaultdict(lambda: {"frames": 0, "outer": set(), "inner": set()})
    per_frame = []
    for f in frames:
        info = {"frame": f}
        n = f.first_net()
        if n is None:
            net["non_ip"] += 1
        else:
            net["ipv4" if f.tokens[n] == "ip" else "ipv6"] += 1
        if "gtp" in f.tokens:
            gtp_any += 1
        if f.row["_ws.malformed"]:
            malformed += 1
        g = f.gtpu_gpdu()
        info["gpdu"] = g is not None
        if g is not None:
            gpdu += 1
            # Extension header types present (the chain as "next type" values, 0 = end).
            for t in {int(v, 16) for v in f.row["gtp.ext_hdr.next"] if int(v, 16) != 0}:
                ext_types["0x%02x" % t] += 1
            teid = as_int(f.field("gtp.teid", 0))
            teids.add(teid)
            q = f.field("gtp.ext_hdr.pdu_ses_con.qos_flow_id", 0)
            if q is not None:
                qfis.add(int(q))
            pt = f.field("gtp.ext_hdr.pdu_ses_con.pdu_type", 0)
            if pt is not None:
                pdu_types[str(int(pt))] += 1
                gpdu_with_psc += 1
            if g + 1 < len(f.tokens) and f.tokens[g + 1] in IPS:
                kind, j = f.flow_from_ip(g + 1)
                inner = f.addr(g + 1)
            else:
                j = next((k for k in range(g + 1, len(f.tokens)) if f.tokens[k] in L4), None)
                kind = f.tokens[j] if j is not None else "other"
                inner = None
            outer = f.addr(n)
            tm = teid_map[teid]
            tm["frames"] += 1
            tm["outer"].add(outer)
            if inner is not None:
                tm["inner"].add(inner)
            info["flow_ip"] = inner
        elif n is None:
            kind, j = "non_ip", None
            info["flow_ip"] = None
        else:
            kind, j = f.flow_from_ip(n)
            info["flow_ip"] = f.addr(n)
        l4[kind] += 1
        info["l4"] = kind
        info["l4_idx"] = j
        # flow-level SYN-only
        info["syn"] = info["ack"] = None
        info["sport"] = info["dport"] = None
        if kind in ("tcp", "udp") and j is not None:
            k = f.occ[j]
            info["sport"] = f.field(kind + ".srcport", k)
            info["dport"] = f.field(kind + ".dstport", k)
            if kind == "tcp":
                info["syn"] = f.field("tcp.flags.syn", k)
                info["ack"] = f.field("tcp.flags.ack", k)
                if info["syn"] == "1" and info["ack"] == "0":
                    syn_only += 1
        if f.row["tcp.flags.syn"] and f.row["tcp.flags.syn"][-1] == "1" and \
                f.row["tcp.flags.ack"] and f.row["tcp.flags.ack"][-1] == "0":
            syn_only_last += 1
        per_frame.append(info)
    res["ipv4"] = net["ipv4"]
    res["ipv6"] = net["ipv6"]
    res["non_ip"] = net["non_ip"]
    res["gtp_frames_any"] = gtp_any
    res["gtpu_gpdu"] = gpdu
    res["gtpu_teids"] = sorted(teids)
    res["gtpu_qfis"] = sorted(qfis)
    res["gtpu_gpdu_with_psc"] = gpdu_with_psc
    res["gtpu_psc_pdu_types"] = dict(sorted(pdu_types.items()))
    res["gtpu_gpdu_ext_header_types"] = dict(sorted(ext_types.items()))
    res["l4"] = dict(sorted(l4.items()))
    res["tcp_syn_only"] = syn_only
    res["tcp_syn_only_last_tcp_occurrence"] = syn_only_last
    res["malformed_frames"] = malformed
    return res, per_frame, teid_map


def pair(p):
    return list(p) if p is not None else None


def facts_for(name, per_frame, teid_map):
    facts = collections.OrderedDict()
    syn_only = [i for i in per_frame if i["syn"] == "1" and i["ack"] == "0"]
    if name == "syn-flood-spoofed-sources.pcap":
        v = [i for i in syn_only if i["flow_ip"] and i["flow_ip"][1] == "10.10.10.10"]
        facts["syn_only_to_10.10.10.10"] = len(v)
        facts["distinct_src_ips"] = len({i["flow_ip"][0] for i in v})
        facts["distinct_dst_ports"] = len({i["dport"] for i in v})
        facts["dst_ports"] = sorted({int(i["dport"]) for i in v})
        facts["first_time_epoch"] = v[0]["frame"].time if v else None
        facts["last_time_epoch"] = v[-1]["frame"].time if v else None
    elif name == "syn-scan-nmap-1000-ports.pcap":
        srcs = collections.Counter(i["flow_ip"][0] for i in syn_only)
        scanner = srcs.most_common(1)[0][0]
        facts["syn_only_sources"] = dict(srcs)
        facts["scanner_ip"] = scanner
        mine = [i for i in syn_only if i["flow_ip"][0] == scanner]
        facts["syn_only_frames"] = len(mine)
        facts["distinct_dst_ip_port_pairs"] = len({(i["flow_ip"][1], i["dport"]) for i in mine})
        facts["distinct_dst_ips"] = sorted({i["flow_ip"][1] for i in mine})
        synack = [i for i in per_frame if i["syn"] == "1" and i["ack"] == "1"
                  and i["flow_ip"] and i["flow_ip"][1] == scanner]
        facts["synack_frames_to_scanner"] = len(synack)
        facts["distinct_ports_replying_synack"] = len({i["sport"] for i in synack})
        facts["ports_replying_synack"] = sorted({int(i["sport"]) for i in synack})
        rst = [i for i in per_frame if i["l4"] == "tcp" and i["flow_ip"][1] == scanner and i["syn"] == "0"]
        facts["other_tcp_frames_to_scanner"] = len(rst)
    elif name == "udp-port-scan-3-hosts.pcap":
        udp = [i for i in per_frame if i["l4"] == "udp"]
        srcs = collections.Counter(i["flow_ip"][0] for i in udp)
        scanner = srcs.most_common(1)[0][0]
        mine = [i for i in udp if i["flow_ip"][0] == scanner]
        facts["udp_sources"] = dict(srcs)
        facts["scanner_ip"] = scanner
        facts["udp_frames_from_scanner"] = len(mine)
        facts["distinct_dst_ips"] = len({i["flow_ip"][1] for i in mine})
        facts["dst_ips"] = sorted({i["flow_ip"][1] for i in mine})
        facts["distinct_dst_ip_port_pairs"] = len({(i["flow_ip"][1], i["dport"]) for i in mine})
        per_ip = collections.defaultdict(set)
        for i in mine:
            per_ip[i["flow_ip"][1]].add(i["dport"])
        facts["distinct_dst_ports_per_dst_ip"] = {k: len(v) for k, v in sorted(per_ip.items())}
    elif name == "dns-amplification-rrsig-fragmented.pcap":
        victim = "10.10.10.10"
        resp = [i for i in per_frame if i["l4"] == "udp" and i["sport"] == "53"
                and i["flow_ip"] and i["flow_ip"][1] == victim]
        frags = [i for i in per_frame if i["l4"] == "ip_fragment"
                 and i["flow_ip"] and i["flow_ip"][1] == victim]
        facts["udp_sport53_frames_to_victim"] = len(resp)
        facts["distinct_resolvers"] = len({i["flow_ip"][0] for i in resp})
        facts["nonfirst_fragments_to_victim"] = len(frags)
        facts["distinct_fragment_sources"] = len({i["flow_ip"][0] for i in frags})
        facts["frames_from_victim_udp_dport53"] = sum(
            1 for i in per_frame if i["l4"] == "udp" and i["dport"] == "53"
            and i["flow_ip"] and i["flow_ip"][0] == victim)
    if teid_map:
        tf = collections.OrderedDict()
        for teid in sorted(teid_map):
            tm = teid_map[teid]
            tf[str(teid)] = {
                "teid_hex": "0x%08x" % teid,
                "gpdu_frames": tm["frames"],
                "outer_src_dst": sorted(pair(p) for p in tm["outer"]),
                "inner_src_dst": sorted(pair(p) for p in tm["inner"]),
            }
        facts["gtpu_teids"] = tf
    return facts


def main(argv):
    if not os.path.isdir(DATA):
        raise SystemExit("no %s" % DATA)
    caps = sorted(p for p in glob.glob(os.path.join(DATA, "*.pcap")) + glob.glob(os.path.join(DATA, "*.pcapng"))
                  if not os.path.basename(p).startswith("corrupt-"))
    if argv:
        want = {os.path.basename(a) for a in argv}
        caps = [c for c in caps if os.path.basename(c) in want]
    os.makedirs(OUT, exist_ok=True)
    version = tshark_fields.tshark_version()
    with tempfile.TemporaryDirectory(prefix="tshark-conf-") as confdir:
        for path in caps:
            name = os.path.basename(path)
            rel = os.path.join("tests", "data", name)
            rows, stderr = run_tshark(rel, confdir)
            frames = [Frame(r) for r in rows]
            res, per_frame, teid_map = analyse(frames)
            doc = collections.OrderedDict()
            doc["_generated_by"] = collections.OrderedDict([
                ("script", "scripts/tshark-expected.py"),
                ("tshark_version", version),
                ("command", "WIRESHARK_CONFIG_DIR=<empty temp dir> " + shlex.join(tshark_cmd(rel))),
                ("tshark_stderr", stderr),
                ("alignment_warnings", alignment_warnings(frames)),
            ])
            doc["capture"] = name
            doc.update(res)
            doc["facts"] = facts_for(name, per_frame, teid_map)
            with open(os.path.join(OUT, name + ".json"), "w") as fh:
                json.dump(doc, fh, indent=2)
                fh.write("\n")
            print("%-48s frames=%-6d v4=%-6d v6=%-6d gpdu=%-5d l4=%s" % (
                name, res["frames"], res["ipv4"], res["ipv6"], res["gtpu_gpdu"], res["l4"]))


if __name__ == "__main__":
    main(sys.argv[1:])
