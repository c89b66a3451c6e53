"""Shared by the tshark ground-truth scripts (scripts/tshark-*-expected.py): run tshark with
`-T fields` on one capture and split its rows.

`tshark_cmd(path, opts, fields)` is the argument list, written into every expected file as the
command that produced it; `run_tshark` runs it from the repository root with an empty
configuration directory and LC_ALL=C, and returns one dict per frame (field → list of
values, split on ',') and tshark's stderr lines (the "Running as user" notice dropped).
"""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tshark_version():
    out = subprocess.run(["tshark", "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


def tshark_cmd(path, opts, fields):
    cmd = ["tshark", "-r", path] + opts
    for f in fields:
        cmd += ["-e", f]
    return cmd


def run_tshark(path, opts, fields, confdir):
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=confdir, LC_ALL="C")
    p = subprocess.run(tshark_cmd(path, opts, fields), capture_output=True, text=True, env=env, cwd=ROOT)
    stderr = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith("Running as user")]
    if p.returncode != 0:
        raise SystemExit("tshark failed on %s (rc %d): %s" % (path, p.returncode, "\n".join(stderr)))
    rows = []
    for line in p.stdout.splitlines():
        vals = line.split("\t")
        if len(vals) != len(fields):
            raise SystemExit("unexpected column count in %s: %r" % (path, line[:200]))
        rows.append({f: (v.split(",") if v != "" else []) for f, v in zip(fields, vals)})
    return rows, stderr
