#!/bin/sh
# Regenerate the synthetic corrupt captures used by robustness tests.
#
#   sh scripts/make-corrupt-captures.sh        (run from the crate root)
#
# Outputs (committed under tests/data/, listed in tests/data/MANIFEST.tsv as
# derived works of their source capture, under the source's licence):
#   corrupt-truncated-mid-record.pcap      first 1000 bytes of benign-web-browsing-4600pkts.pcap
#                                          (file ends inside a packet record)
#   corrupt-bad-magic.pcap                 24 bytes of 0xff (in place of the pcap global header)
#                                          followed by bytes 24..123 of benign-web-browsing-4600pkts.pcap
#                                          (i.e. the first 100 bytes of its record stream); 124 bytes total
#   corrupt-pcapng-truncated-block.pcapng  first 3000 bytes of 5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng
#                                          (file ends inside an Enhanced Packet Block)
#
# If python3 / tshark are available, also prints where the last incomplete
# record/block starts (scripts/capture-offsets.py) and what tshark reports.
set -eu

cd "$(dirname "$0")/.."
D=tests/data

head -c 1000 "$D/benign-web-browsing-4600pkts.pcap" > "$D/corrupt-truncated-mid-record.pcap"

{
    head -c 24 /dev/zero | tr '\000' '\377'
    tail -c +25 "$D/benign-web-browsing-4600pkts.pcap" | head -c 100
} > "$D/corrupt-bad-magic.pcap"

head -c 3000 "$D/5g-sa-registration-ngap-pfcp-gtpu-psc.pcapng" > "$D/corrupt-pcapng-truncated-block.pcapng"

for f in corrupt-truncated-mid-record.pcap corrupt-bad-magic.pcap corrupt-pcapng-truncated-block.pcapng; do
    echo "== $f ($(wc -c < "$D/$f") bytes)"
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$D/$f" | cut -d' ' -f1; fi
    if command -v python3 >/dev/null 2>&1; then python3 scripts/capture-offsets.py "$D/$f" || true; fi
    if command -v tshark >/dev/null 2>&1; then
        echo "tshark -r $f: $(tshark -n -r "$D/$f" 2>/dev/null | grep -Ec '^ *[0-9]+ ') packet line(s); stderr:"
        tshark -n -r "$D/$f" 2>&1 >/dev/null | grep -v '^Running as user' | sed 's/^/    /' || true
    fi
done
