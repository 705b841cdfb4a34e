#!/bin/sh
# Paired timing of two builds of nccat on this machine's two cores.
#
#   benches/paired.sh ROUNDS FILE NCCAT_A NCCAT_B [nccat options...]
#
# Runs `NCCAT_A -z -c -T 1 OPTIONS FILE` and the same with NCCAT_B at once, each pinned to
# a core (`taskset`), swapping the cores each round, and prints each round's CPU seconds
# (user and system: a change that moves work into the kernel, page faults say, must not
# look free) and, at the end, the median and range of B's time over A's. Both builds see
# the same moment of a noisy machine, so the ratio varies less than two runs one after
# another.
# PAIRED_MODE=-d times decoding instead (FILE a stream both builds read).
set -eu
rounds=$1 file=$2 a=$3 b=$4 mode=${PAIRED_MODE:--z}
shift 4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
r=1
while [ "$r" -le "$rounds" ]; do
    if [ $((r % 2)) -eq 0 ]; then ca=0 cb=1; else ca=1 cb=0; fi
    /usr/bin/time -f '%U %S' -o "$out/a" taskset -c "$ca" "$a" "$mode" -c -T 1 "$@" "$file" >/dev/null &
    /usr/bin/time -f '%U %S' -o "$out/b" taskset -c "$cb" "$b" "$mode" -c -T 1 "$@" "$file" >/dev/null &
    wait
    cpu() { awk '{ printf "%.2f", $1 + $2 }' "$1"; }
    echo "$(cpu "$out/a") $(cpu "$out/b")" | tee -a "$out/rounds"
    r=$((r + 1))
done
awk '{ print $2 / $1, $1, $2 }' "$out/rounds" | sort -n | awk '
    { r[NR] = $1; a += $2; b += $3 }
    END { printf "A %.2f s, B %.2f s in all; B/A median %.3f, range %.3f-%.3f\n",
          a, b, r[int((NR + 1) / 2)], r[1], r[NR] }'
