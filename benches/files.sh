#!/bin/bash
# Each file of DIR in turn (MANIFEST.md left out), file by file alternating three coders
# so that the machine's drift falls on all of them: `NCCAT -z -c -T 1` reading primed
# states from the cache (filled first), the same with `--no-cache`, and `xz -9e -T1`.
# Prints the total input, and per coder the total output bytes and wall seconds.
#
#   benches/files.sh target/release/nccat ../shared/corpus/bench
set -eu
NC=$1 DIR=$2
files=$(ls "$DIR" | grep -vx MANIFEST.md)
raw=$(cd "$DIR" && cat $files | wc -c)
echo x | "$NC" -z -c -T 1 > /dev/null # fills the cache
now() { date +%s.%N; }
ta=0 tb=0 tx=0 ba=0 bb=0 bx=0
for f in $files; do
    s=$(now); n=$("$NC" -z -c -T 1 "$DIR/$f" | wc -c); e=$(now)
    ta=$(echo "$ta + $e - $s" | bc); ba=$((ba + n))
    s=$(now); n=$("$NC" -z -c -T 1 --no-cache "$DIR/$f" | wc -c); e=$(now)
    tb=$(echo "$tb + $e - $s" | bc); bb=$((bb + n))
    s=$(now); n=$(xz -9e -T1 -c "$DIR/$f" | wc -c); e=$(now)
    tx=$(echo "$tx + $e - $s" | bc); bx=$((bx + n))
done
echo "$DIR: $raw bytes"
printf 'nc, cache read:  %d bytes, %.2f s\n' "$ba" "$ta"
printf 'nc, --no-cache:  %d bytes, %.2f s\n' "$bb" "$tb"
printf 'xz -9e -T1:      %d bytes, %.2f s\n' "$bx" "$tx"
