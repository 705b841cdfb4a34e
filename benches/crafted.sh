#!/bin/sh
# Decoding time of the worst crafted 4 KB streams of each profile (examples/crafted.rs:
# claimed lengths, table sizes, tiny blocks):
#
#   benches/crafted.sh NCCAT [nccat options...]
#
# Every stream must be refused (exit 1). Each is decoded RUNS times (default 5; machines are
# noisy) and the script prints the stream, the median and the largest wall-clock seconds,
# and the peak memory.
set -eu
nccat=$1
shift
runs=${RUNS:-5}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo run -q --release --example crafted -- "$dir" >/dev/null
for f in "$dir"/*.nc; do
    for _ in $(seq "$runs"); do
        /usr/bin/time -f "%e %M" "$nccat" -t "$@" "$f" 2>&1 | grep -E '^[0-9.]+ [0-9]+$' || true
    done | sort -n | awk -v name="$(basename "$f" .nc)" '
        { t[NR] = $1; if ($2 > m) m = $2 }
        END { printf "%-14s median %.2f s  max %.2f s  %d KB\n", name, t[int((NR + 1) / 2)], t[NR], m }'
done
