#!/usr/bin/env bash
# Run the cargo-fuzz targets of fuzz/ (libFuzzer + AddressSanitizer) seeded from tests/data.
#
#   scripts/fuzz.sh SECONDS [TARGET ...]   each TARGET (default: all) for SECONDS
#
# The machine's Rust is stable; cargo-fuzz needs the -Z sanitizer flags, which
# RUSTC_BOOTSTRAP=1 enables on a stable compiler (the ASan runtime ships with it).
# cargo-fuzz is installed when missing. A crash leaves its input in fuzz/artifacts/TARGET/
# and makes this script fail; the executions count of every run is printed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs="${1:?usage: scripts/fuzz.sh SECONDS [TARGET ...]}"
shift
export RUSTC_BOOTSTRAP=1
# The pcap_reader target writes its input to a file: keep that in memory.
export TMPDIR=/dev/shm

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
python3 fuzz/seed-corpus.py
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -O
summary=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    log="fuzz/$t.log"
    echo "=== fuzz $t for ${secs} s"
    extra=()
    # The workers target runs scoped threads per input: when the time is up, libFuzzer may
    # exit while the last input's threads are still running their thread-local destructors
    # (crossbeam's 48-byte channel context), which LeakSanitizer reports as a leak.
    [ "$t" = workers ] && extra=(-detect_leaks=0)
    if ! cargo fuzz run -O "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
        -print_final_stats=1 "${extra[@]}" >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz target $t failed; input in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    summary+=("$t: $execs executions in ${secs} s, no crash")
done
printf '%s\n' "${summary[@]}"
