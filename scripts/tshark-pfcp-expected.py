#!/usr/bin/env python3
"""Generate tshark-derived PFCP ground truth for tests/pfcp_session.rs.

Regenerate (from the crate root, needs tshark on PATH; Python 3 stdlib only):

    python3 scripts/tshark-pfcp-expected.py

For each capture in CAPTURES this runs, with an empty private configuration
directory (WIRESHARK_CONFIG_DIR=<empty temp dir>, LC_ALL=C):

    tshark -r tests/data/<capture> -n -Y 'pfcp && !icmp && !icmpv6' \
        -T fields -E separator=/t -E occurrence=a -E aggregator=| -E header=n \
        -e frame.number -e pfcp.s -e pfcp.msg_type -e pfcp.seid -e pfcp.seqno \
        -e pfcp.f_seid.ipv4 -e pfcp.f_seid.ipv6 \
        -e pfcp.f_teid_flags.ch -e pfcp.f_teid.teid -e pfcp.f_teid.ipv4_addr -e pfcp.f_teid.ipv6_addr \
        -e pfcp.ue_ip_addr_ipv4 -e pfcp.ue_ip_addr_ipv6 \
        -e pfcp.outer_hdr_creation.teid -e pfcp.outer_hdr_creation.ipv4 -e pfcp.outer_hdr_creation.ipv6 \
        -e pfcp.recovery_time_stamp -e pfcp.node_id_ipv4 -e pfcp.node_id_ipv6 -e pfcp.node_id_fqdn \
        -e pfcp.cause -e pfcp.pdr_id -e pfcp.qfi_value

(the exact command, with the capture path, is recorded in each output file) and
writes tests/data/expected/pfcp/<capture file name>.json with:

    messages        one [msg_type, header SEID or null, sequence number] per
                    PFCP message, in frame order. "!icmp" drops PFCP datagrams
                    quoted inside ICMP errors: they are not PFCP messages on
                    the wire (fivewatch reads PFCP from UDP port 8805 only).
    by_type         message count per message type (decimal string keys).
    header_seids    sorted set of header SEIDs (S flag set).
    f_seids         sorted set of F-SEID SEIDs: tshark names both the header
                    SEID and the F-SEID SEID "pfcp.seid"; with S=1 the first
                    occurrence is the header's, every other one an F-SEID's.
    f_seid_ipv4 / f_seid_ipv6, f_teid_teids, f_teid_ipv4 / f_teid_ipv6,
    f_teid_choose   (count of F-TEIDs with CH=1),
    ue_ipv4 / ue_ipv6, ohc_teids / ohc_ipv4 / ohc_ipv6 (Outer Header Creation),
    node_id_ipv4 / node_id_ipv6 / node_id_fqdn, causes, pdr_ids, qfis:
                    sorted sets of every occurrence anywhere in the message
                    (grouped IEs included).
    recovery_time_stamps_unix
                    sorted set of Recovery Time Stamps as Unix seconds (tshark
                    prints them as UTC dates with whole seconds).

Integers are JSON numbers, addresses strings as tshark prints them.
"""
import calendar
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "expected", "pfcp")
CAPTURES = ["5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng", "pfcp-session-rawip.pcapng"]

FIELDS = [
    "frame.number", "pfcp.s", "pfcp.msg_type", "pfcp.seid", "pfcp.seqno",
    "pfcp.f_seid.ipv4", "pfcp.f_seid.ipv6",
    "pfcp.f_teid_flags.ch", "pfcp.f_teid.teid", "pfcp.f_teid.ipv4_addr", "pfcp.f_teid.ipv6_addr",
    "pfcp.ue_ip_addr_ipv4", "pfcp.ue_ip_addr_ipv6",
    "pfcp.outer_hdr_creation.teid", "pfcp.outer_hdr_creation.ipv4", "pfcp.outer_hdr_creation.ipv6",
    "pfcp.recovery_time_stamp", "pfcp.node_id_ipv4", "pfcp.node_id_ipv6", "pfcp.node_id_fqdn",
    "pfcp.cause", "pfcp.pdr_id", "pfcp.qfi_value",
]


def tshark_cmd(rel):
    cmd = ["tshark", "-r", rel, "-n", "-Y", "pfcp && !icmp && !icmpv6", "-T", "fields",
           "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|", "-E", "header=n"]
    for f in FIELDS:
        cmd += ["-e", f]
    return cmd


def as_int(s):
    return int(s, 0)


def is_true(s):
    return s in ("1", "True", "true")


def ntp_date_to_unix(s):
    # e.g. "Aug 22, 2020 15:53:09.000000000 UTC"
    date, frac = s.rsplit(" UTC", 1)[0].rsplit(".", 1)
    assert int(frac) == 0, s
    return calendar.timegm(time.strptime(date, "%b %d, %Y %H:%M:%S"))


def main():
    version = subprocess.run(["tshark", "--version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0].strip()
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tshark-conf-") as confdir:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=confdir, LC_ALL="C")
        for name in CAPTURES:
            rel = os.path.join("tests", "data", name)
            cmd = tshark_cmd(rel)
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            if p.returncode != 0:
                raise SystemExit("tshark failed on %s: %s" % (name, p.stderr))
            sets = {k: set() for k in [
                "header_seids", "f_seids", "f_seid_ipv4", "f_seid_ipv6", "f_teid_teids", "f_teid_ipv4",
                "f_teid_ipv6", "ue_ipv4", "ue_ipv6", "ohc_teids", "ohc_ipv4", "ohc_ipv6",
                "recovery_time_stamps_unix", "node_id_ipv4", "node_id_ipv6", "node_id_fqdn", "causes",
                "pdr_ids", "qfis"]}
            messages, by_type, choose = [], {}, 0
            for line in p.stdout.splitlines():
                vals = line.split("\t")
                if len(vals) != len(FIELDS):
                    raise SystemExit("unexpected column count in %s: %r" % (name, line))
                r = {f: (v.split("|") if v != "" else []) for f, v in zip(FIELDS, vals)}
                if len(r["pfcp.msg_type"]) != 1:
                    raise SystemExit("frame %s: %d PFCP messages" % (r["frame.number"], len(r["pfcp.msg_type"])))
                mt = as_int(r["pfcp.msg_type"][0])
                seids = [as_int(x) for x in r["pfcp.seid"]]
                s_flag = is_true(r["pfcp.s"][0])
                hdr = seids[0] if s_flag else None
                if s_flag:
                    sets["header_seids"].add(hdr)
                    seids = seids[1:]
                sets["f_seids"].update(seids)
                messages.append([mt, hdr, as_int(r["pfcp.seqno"][0])])
                by_type[str(mt)] = by_type.get(str(mt), 0) + 1
                choose += sum(1 for x in r["pfcp.f_teid_flags.ch"] if is_true(x))
                for key, field, conv in [
                    ("f_seid_ipv4", "pfcp.f_seid.ipv4", str), ("f_seid_ipv6", "pfcp.f_seid.ipv6", str),
                    ("f_teid_teids", "pfcp.f_teid.teid", as_int), ("f_teid_ipv4", "pfcp.f_teid.ipv4_addr", str),
                    ("f_teid_ipv6", "pfcp.f_teid.ipv6_addr", str), ("ue_ipv4", "pfcp.ue_ip_addr_ipv4", str),
                    ("ue_ipv6", "pfcp.ue_ip_addr_ipv6", str), ("ohc_teids", "pfcp.outer_hdr_creation.teid", as_int),
                    ("ohc_ipv4", "pfcp.outer_hdr_creation.ipv4", str),
                    ("ohc_ipv6", "pfcp.outer_hdr_creation.ipv6", str),
                    ("recovery_time_stamps_unix", "pfcp.recovery_time_stamp", ntp_date_to_unix),
                    ("node_id_ipv4", "pfcp.node_id_ipv4", str), ("node_id_ipv6", "pfcp.node_id_ipv6", str),
                    ("node_id_fqdn", "pfcp.node_id_fqdn", str), ("causes", "pfcp.cause", as_int),
                    ("pdr_ids", "pfcp.pdr_id", as_int), ("qfis", "pfcp.qfi_value", as_int),
                ]:
                    sets[key].update(conv(x) for x in r[field])
            doc = {
                "_generated_by": {
                    "script": "scripts/tshark-pfcp-expected.py",
                    "tshark_version": version,
                    "command": "WIRESHARK_CONFIG_DIR=<empty temp dir> LC_ALL=C " + shlex.join(cmd),
                },
                "capture": name,
                "message_count": len(messages),
                "by_type": dict(sorted(by_type.items(), key=lambda kv: int(kv[0]))),
                "f_teid_choose": choose,
            }
            doc.update({k: sorted(v) for k, v in sets.items()})
            doc["messages"] = messages
            with open(os.path.join(OUT, name + ".json"), "w") as fh:
                json.dump(doc, fh, indent=1)
                fh.write("\n")
            print("%-48s messages=%d types=%s" % (name, len(messages), doc["by_type"]))


if __name__ == "__main__":
    main()
