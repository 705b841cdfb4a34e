#!/bin/sh
# Two builds of nccat over a set of files, file by file.
#
#   benches/setpair.sh DIR NCCAT_A NCCAT_B [nccat options...]
#
# For each file of DIR (but MANIFEST.md) runs `NCCAT -z -c -T 1 OPTIONS FILE` with A and with
# B one after the other, which first alternating from file to file, and prints each
# file's output bytes and CPU seconds (user and system) for both, then the totals and B's
# over A's. Each build keeps its primed states in a cache of its own (created under
# $TMPDIR), filled by a first run on the first file, so neither reads the other's (a
# state first needed later, such as machine code's, is primed at its first file by both).
# Both builds meet the same phases of a noisy machine file by file; a file's bytes are
# exact, its seconds are not.
set -eu
dir=$1 a=$2 b=$3
shift 3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir "$out/cache-a" "$out/cache-b"
for f in "$dir"/*; do
    [ -f "$f" ] && [ "$(basename "$f")" != MANIFEST.md ] || continue
    NC_CACHE_DIR="$out/cache-a" "$a" -z -c -T 1 "$@" "$f" > /dev/null
    NC_CACHE_DIR="$out/cache-b" "$b" -z -c -T 1 "$@" "$f" > /dev/null
    break
done
i=0
printf '%-40s %12s %9s %12s %9s\n' file "A bytes" "A s" "B bytes" "B s"
for f in "$dir"/*; do
    [ -f "$f" ] && [ "$(basename "$f")" != MANIFEST.md ] || continue
    i=$((i + 1))
    for which in $(if [ $((i % 2)) -eq 0 ]; then echo a b; else echo b a; fi); do
        if [ "$which" = a ]; then bin=$a; else bin=$b; fi
        bytes=$(/usr/bin/time -f '%U %S' -o "$out/time" env NC_CACHE_DIR="$out/cache-$which" \
            "$bin" -z -c -T 1 "$@" "$f" | wc -c)
        secs=$(awk '{ printf "%.2f", $1 + $2 }' "$out/time")
        echo "$bytes $secs" > "$out/$which"
    done
    read -r ab as < "$out/a"
    read -r bb bs < "$out/b"
    printf '%-40s %12d %9.2f %12d %9.2f\n' "$(basename "$f")" "$ab" "$as" "$bb" "$bs" | tee -a "$out/rows"
done
awk '{ ab += $2; as += $3; bb += $4; bs += $5 }
    END { printf "%-40s %12d %9.2f %12d %9.2f\nB/A bytes %.4f, seconds %.3f\n",
        "total", ab, as, bb, bs, bb / ab, bs / as }' "$out/rows"
