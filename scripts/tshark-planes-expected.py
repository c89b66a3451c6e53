#!/usr/bin/env python3
"""Generate tshark-derived ground truth for the control/user-plane decoders (GTP-U messages
and IEs, GTPv2-C, SCTP chunks, NGAP/S1AP PDU headers) of the captures in tests/data.

Regenerate (from the crate root, needs tshark on PATH; Python 3 stdlib only):

    python3 scripts/tshark-planes-expected.py

Optional arguments: capture file names to restrict the run.

For every capture in tests/data/ (except corrupt-*) in which tshark finds GTP-U, GTPv2-C or
SCTP, this writes tests/data/expected/planes/<capture file name>.json. tshark is run once per
capture, exactly as

    WIRESHARK_CONFIG_DIR=<empty temp dir> LC_ALL=C tshark -r tests/data/<capture> -n \\
        -o ip.defragment:FALSE -o ipv6.defragment:FALSE -o tcp.desegment_tcp_streams:FALSE \\
        -o sctp.reassembly:FALSE -d udp.port==2152,gtp \\
        -T fields -E separator=/t -E occurrence=a -E aggregator=, -E header=n \\
        -e <each field of FIELDS below>

(the exact command is stored in each JSON file under _generated_by.command).
"""
# DEFINITIONS (per frame; "tokens" are the colon-separated frame.protocols):
#
#   gtpu: frames whose first "gtp" token directly follows "udp", with UDP src or dst port
#       2152, not followed by "gtpv2", and no icmp/icmpv6 token before it (the same rule as
#       scripts/tshark-expected.py). Values are the first (outer) GTP header's.
#       messages: count by gtp.message (decimal string keys).
#       non_gpdu: one entry per non-G-PDU message: frame, type, teid, recovery (gtp.recovery),
#           teid_data_i (gtp.teid_data), peer_address (gtp.gsn_ipv4 / gtp.gsn_ipv6),
#           ext_header_types (gtp.ext_hdr_type list of a Supported Extension Headers
#           Notification).
#       psc: G-PDUs with a PDU Session Container, counted by the key
#           "pdu_type/qfi/ppp/rqi/ppi" (ppp, rqi as 0/1; ppi or "-" when absent). tshark 4.0
#           decodes PPP/RQI/PPI of the DL layout only; UL flags are not in its fields, so the
#           UL frames' ppp/rqi are "-".
#   gtpv2c: frames with a "gtpv2" token. "transport" is "udp" or "tcp" (the token before
#       "gtp"). Per frame, in wire order over the message and any piggybacked one:
#       messages [{type, p, t, mp, teid (null when T=0), seq}], fteids [{interface_type,
#       teid, ipv4, ipv6}] rebuilt from gtpv2.f_teid_v4/_v6 flags and the address lists,
#       paa_ipv4 / paa_ipv6 / paa_ipv6_len (gtpv2.pdn_addr_and_prefix.*, gtpv2.pdn_ipv6_len),
#       causes (gtpv2.cause, every Cause IE incl. those inside Bearer Contexts), ebis
#       (gtpv2.ebi, every EPS Bearer ID IE, depth first), recovery (gtpv2.rec), malformed.
#       messages_by_type / tcp_messages_by_type: message counts by type over all frames.
#   gtpv1c_on_2123: frames with a "gtp" token after "udp", a UDP port 2123 and no "gtpv2"
#       (GTPv1-C on the shared GTP-C port): [{frame, type}].
#   sctp: frames with an "sctp" token: frame, ports, chunk_count (number of sctp.chunk_type
#       occurrences), chunk_types (the first 64 only), ppids (sctp.data_payload_proto_id per
#       DATA chunk), ngap [[choice, procedureCode]...] from ngap.NGAP_PDU/ngap.procedureCode
#       (one pair per PDU; choice 0 initiatingMessage, 1 successfulOutcome, 2
#       unsuccessfulOutcome), ngap_criticality (the first ngap.criticality, i.e. the PDU's own,
#       given only when the frame has exactly one NGAP PDU), and the same for s1ap.
#       chunks_by_type: chunk counts by type over all frames.
#       NGAP decoded by tshark inside SBI HTTP bodies (N2 information in multipart) is not
#       SCTP and not counted here.
#
# DEFINITIONAL DIFFERENCES with fivewatch (checked frame by frame in
# tests/planes_vs_tshark.rs, which names the frames):
#   - tshark dissects GTPv2 on TCP 2123 as well; fivewatch's GTPv2-C entry point is the UDP
#     payload (TS 29.274 §4.2), so TCP messages are kept apart in tcp_messages_by_type.
#   - tshark does not enforce the GTPv2-C message length: it dissects a header whose length
#     is shorter than the header itself, and reads IEs past the length, without marking the
#     frame malformed. fivewatch honours the length (it delimits a piggybacked message) and
#     reports gtpc: bad_length / gtpc: ie_overrun for those frames.
#   - tshark 4.0 has no fields for the UL PDU Session Container flags (QMP, delay
#     indications, SNP, New IE flag), so UL containers are compared on type and QFI only.
#   - tshark walks every SCTP chunk; fivewatch stops after MAX_SCTP_CHUNKS with
#     sctp: too_many_headers, which is why only the first MAX_LISTED_CHUNKS types are kept.
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
OUT = os.path.join(DATA, "expected", "planes")
MAX_LISTED_CHUNKS = 64

TSHARK_OPTS = [
    "-n",
    "-o", "ip.defragment:FALSE",
    "-o", "ipv6.defragment:FALSE",
    "-o", "tcp.desegment_tcp_streams:FALSE",
    "-o", "sctp.reassembly:FALSE",
    "-d", "udp.port==2152,gtp",
    "-T", "fields",
    "-E", "separator=/t",
    "-E", "occurrence=a",
    "-E", "aggregator=,",
    "-E", "header=n",
]
FIELDS = [
    "frame.number", "frame.protocols", "udp.srcport", "udp.dstport", "_ws.malformed",
    # GTP-U
    "gtp.message", "gtp.teid", "gtp.recovery", "gtp.teid_data", "gtp.gsn_ipv4", "gtp.gsn_ipv6",
    "gtp.ext_hdr_type",
    "gtp.ext_hdr.pdu_ses_con.pdu_type", "gtp.ext_hdr.pdu_ses_con.qos_flow_id",
    "gtp.ext_hdr.pdu_ses_cont.ppp", "gtp.ext_hdr.pdu_ses_cont.rqi", "gtp.ext_hdr.pdu_ses_cont.ppi",
    # GTPv2-C
    "gtpv2.p", "gtpv2.t", "gtpv2.mp", "gtpv2.message_type", "gtpv2.teid", "gtpv2.seq",
    "gtpv2.f_teid_v4", "gtpv2.f_teid_v6", "gtpv2.f_teid_interface_type", "gtpv2.f_teid_gre_key",
    "gtpv2.f_teid_ipv4", "gtpv2.f_teid_ipv6",
    "gtpv2.pdn_addr_and_prefix.ipv4", "gtpv2.pdn_addr_and_prefix.ipv6", "gtpv2.pdn_ipv6_len",
    "gtpv2.cause", "gtpv2.ebi", "gtpv2.rec",
    # SCTP, NGAP, S1AP
    "sctp.srcport", "sctp.dstport", "sctp.chunk_type", "sctp.data_payload_proto_id",
    "ngap.NGAP_PDU", "ngap.procedureCode", "ngap.criticality",
    "s1ap.S1AP_PDU", "s1ap.procedureCode", "s1ap.criticality",
]


def tshark_cmd(path):
    return tshark_fields.tshark_cmd(path, TSHARK_OPTS, FIELDS)


def run_tshark(path, confdir):
    return tshark_fields.run_tshark(path, TSHARK_OPTS, FIELDS, confdir)


def num(s):
    return int(s, 0)


def flag(s):
    return s in ("1", "True", "true")


def first(row, f):
    v = row[f]
    return v[0] if v else None


def gtpu_frame(row, tokens):
    """Is this a GTP-U frame per the DEFINITIONS?"""
    if "gtp" not in tokens:
        return False
    i = tokens.index("gtp")
    if i == 0 or tokens[i - 1] != "udp" or "icmp" in tokens[:i] or "icmpv6" in tokens[:i]:
        return False
    if i + 1 < len(tokens) and tokens[i + 1] == "gtpv2":
        return False
    ports = {num(p) for p in row["udp.srcport"][:1] + row["udp.dstport"][:1]}
    return 2152 in ports


def gtpv2_frame(row, num_frame, tokens):
    i = tokens.index("gtp")
    transport = tokens[i - 1]
    flags_v4 = [flag(x) for x in row["gtpv2.f_teid_v4"]]
    flags_v6 = [flag(x) for x in row["gtpv2.f_teid_v6"]]
    v4s, v6s = list(row["gtpv2.f_teid_ipv4"]), list(row["gtpv2.f_teid_ipv6"])
    fteids = []
    for k, (itype, key) in enumerate(zip(row["gtpv2.f_teid_interface_type"], row["gtpv2.f_teid_gre_key"])):
        ipv4 = v4s.pop(0) if k < len(flags_v4) and flags_v4[k] and v4s else None
        ipv6 = v6s.pop(0) if k < len(flags_v6) and flags_v6[k] and v6s else None
        fteids.append({"interface_type": num(itype), "teid": num(key), "ipv4": ipv4, "ipv6": ipv6})
    # The T flag decides whether a message has a TEID; gtpv2.teid occurs once per T=1 message.
    # gtpv2.mp is used by tshark both for the MP flag and for the Message Priority value,
    # which follows its message's flag when MP=1: consume the list in that order.
    teids = list(row["gtpv2.teid"])
    mps = list(row["gtpv2.mp"])
    msgs = []
    for k, mt in enumerate(row["gtpv2.message_type"]):
        t = flag(row["gtpv2.t"][k]) if k < len(row["gtpv2.t"]) else False
        mp = flag(mps.pop(0)) if mps else False
        prio = num(mps.pop(0)) if mp and mps else None
        msgs.append({
            "type": num(mt),
            "p": flag(row["gtpv2.p"][k]) if k < len(row["gtpv2.p"]) else False,
            "t": t,
            "mp": mp,
            "priority": prio,
            "teid": num(teids.pop(0)) if t and teids else None,
            "seq": num(row["gtpv2.seq"][k]) if k < len(row["gtpv2.seq"]) else None,
        })
    return {
        "frame": num_frame,
        "transport": transport,
        "messages": msgs,
        "fteids": fteids,
        "paa_ipv4": row["gtpv2.pdn_addr_and_prefix.ipv4"],
        "paa_ipv6": row["gtpv2.pdn_addr_and_prefix.ipv6"],
        "paa_ipv6_len": [num(x) for x in row["gtpv2.pdn_ipv6_len"]],
        "causes": [num(x) for x in row["gtpv2.cause"]],
        "ebis": [num(x) for x in row["gtpv2.ebi"]],
        "recovery": [num(x) for x in row["gtpv2.rec"]],
        "malformed": bool(row["_ws.malformed"]),
    }


def ap_pdus(row, proto):
    choices = row["%s.%s_PDU" % (proto, proto.upper())]
    codes = row["%s.procedureCode" % proto]
    pdus = [[num(c), num(p)] for c, p in zip(choices, codes)]
    crit = num(row["%s.criticality" % proto][0]) if len(pdus) == 1 and row["%s.criticality" % proto] else None
    return pdus, crit


def analyse(rows):
    gtpu_msgs = collections.Counter()
    non_gpdu, psc = [], collections.Counter()
    v2_frames, v2_by_type, v2_tcp_by_type, v1c = [], collections.Counter(), collections.Counter(), []
    sctp_frames, chunks_by_type = [], collections.Counter()
    for row in rows:
        n = num(row["frame.number"][0])
        tokens = row["frame.protocols"][0].split(":") if row["frame.protocols"] else []
        if gtpu_frame(row, tokens):
            mt = num(first(row, "gtp.message"))
            gtpu_msgs[str(mt)] += 1
            if mt != 255:
                peer = first(row, "gtp.gsn_ipv4") or first(row, "gtp.gsn_ipv6")
                non_gpdu.append({
                    "frame": n,
                    "type": mt,
                    "teid": num(first(row, "gtp.teid")),
                    "recovery": num(first(row, "gtp.recovery")) if row["gtp.recovery"] else None,
                    "teid_data_i": num(first(row, "gtp.teid_data")) if row["gtp.teid_data"] else None,
                    "peer_address": peer,
                    "ext_header_types": [num(x) for x in row["gtp.ext_hdr_type"]],
                })
            elif row["gtp.ext_hdr.pdu_ses_con.pdu_type"]:
                def opt(f, conv):
                    v = first(row, f)
                    return "-" if v is None else str(conv(v))
                key = "/".join([
                    str(num(first(row, "gtp.ext_hdr.pdu_ses_con.pdu_type"))),
                    str(num(first(row, "gtp.ext_hdr.pdu_ses_con.qos_flow_id"))),
                    opt("gtp.ext_hdr.pdu_ses_cont.ppp", lambda v: int(flag(v))),
                    opt("gtp.ext_hdr.pdu_ses_cont.rqi", lambda v: int(flag(v))),
                    opt("gtp.ext_hdr.pdu_ses_cont.ppi", num),
                ])
                psc[key] += 1
        if "gtpv2" in tokens:
            f = gtpv2_frame(row, n, tokens)
            v2_frames.append(f)
            bucket = v2_by_type if f["transport"] == "udp" else v2_tcp_by_type
            for m in f["messages"]:
                bucket[str(m["type"])] += 1
        elif "gtp" in tokens and tokens[tokens.index("gtp") - 1] == "udp":
            ports = {num(p) for p in row["udp.srcport"][:1] + row["udp.dstport"][:1]}
            if 2123 in ports:
                v1c.append({"frame": n, "type": num(first(row, "gtp.message"))})
        if "sctp" in tokens:
            types = [num(x) for x in row["sctp.chunk_type"]]
            chunks_by_type.update(str(t) for t in types)
            ngap, ngap_crit = ap_pdus(row, "ngap")
            s1ap, s1ap_crit = ap_pdus(row, "s1ap")
            sctp_frames.append({
                "frame": n,
                "src_port": num(first(row, "sctp.srcport")),
                "dst_port": num(first(row, "sctp.dstport")),
                "chunk_count": len(types),
                "chunk_types": types[:MAX_LISTED_CHUNKS],
                "ppids": [num(x) for x in row["sctp.data_payload_proto_id"]],
                "ngap": ngap,
                "ngap_criticality": ngap_crit,
                "s1ap": s1ap,
                "s1ap_criticality": s1ap_crit,
            })
    doc = collections.OrderedDict()
    if gtpu_msgs:
        doc["gtpu"] = {"messages": dict(sorted(gtpu_msgs.items())), "non_gpdu": non_gpdu,
                       "psc": dict(sorted(psc.items()))}
    if v2_frames:
        doc["gtpv2c"] = {"messages_by_type": dict(sorted(v2_by_type.items())),
                         "tcp_messages_by_type": dict(sorted(v2_tcp_by_type.items())), "frames": v2_frames}
    if v1c:
        doc["gtpv1c_on_2123"] = v1c
    if sctp_frames:
        doc["sctp"] = {"chunks_by_type": dict(sorted(chunks_by_type.items())), "frames": sctp_frames}
    return doc


def dump(v, depth=0):
    """JSON with one line per element of a list of objects (per-frame records), indented
    objects elsewhere: readable diffs without a line per field."""
    pad = "  " * (depth + 1)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = ["%s%s: %s" % (pad, json.dumps(k), dump(x, depth + 1)) for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}" + ("\n" if depth == 0 else "")
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        items = [pad + json.dumps(x, separators=(",", ":")) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"
    return json.dumps(v, separators=(",", ":"))


def main(argv):
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
            res = analyse(rows)
            if not res:
                continue
            doc = collections.OrderedDict()
            doc["_generated_by"] = collections.OrderedDict([
                ("script", "scripts/tshark-planes-expected.py"),
                ("tshark_version", version),
                ("command", "WIRESHARK_CONFIG_DIR=<empty temp dir> LC_ALL=C " + shlex.join(tshark_cmd(rel))),
                ("tshark_stderr", stderr),
            ])
            doc["capture"] = name
            doc.update(res)
            with open(os.path.join(OUT, name + ".json"), "w") as fh:
                fh.write(dump(doc))
            print("%-48s %s" % (name, ", ".join("%s" % k for k in res)))


if __name__ == "__main__":
    main(sys.argv[1:])
