#!/bin/bash
# Start time of small inputs: for each FILE, `NCCAT -z -c -T 1 FILE` run RUNS times with
# the primed states read from a cache directory (filled first), with `--no-cache`, and
# with `--no-primer`; per mode the median wall seconds, the peak resident size and the
# output bytes.
#
#   benches/start.sh target/release/nccat 7 FILE...
set -eu
NC=$1 RUNS=$2
shift 2
export NC_CACHE_DIR="${NC_CACHE_DIR:-${TMPDIR:-/tmp}/nc-start-cache}"
"$NC" -z -c -T 1 "$1" > /dev/null # fills the cache
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf '%s\t%s\t%s\t%s\t%s\n' file bytes cached no-cache no-primer
for f in "$@"; do
    row="$(basename "$f")\t$(wc -c < "$f")"
    for opt in "" --no-cache --no-primer; do
        runs=$(for _ in $(seq "$RUNS"); do
            /usr/bin/time -f '%e %M' "$NC" -z -c -T 1 $opt "$f" 2>&1 > /dev/null
        done)
        secs=$(echo "$runs" | cut -d' ' -f1 | median)
        peak=$(echo "$runs" | cut -d' ' -f2 | sort -n | tail -1)
        row="$row\t$secs s $((peak / 1024)) MiB $("$NC" -z -c -T 1 $opt "$f" | wc -c) B"
    done
    printf "$row\n"
done
