#!/bin/sh
# Per-file compressed sizes of a build of nccat, to compare format changes file by file.
#
#   benches/sizes.sh NCCAT DIR OUT [nccat options...]
#
# Compresses every file of DIR except its MANIFEST.md (as the corpus bench does) with `NCCAT -z -c -T 1`
# plus the options given, two files at a time, writes "name bytes" lines sorted by name to
# OUT and prints the total. `join OLD NEW | awk '$3 > $2'` then lists the files that grew.
set -eu
nccat=$1 dir=$2 out=$3
shift 3
ls "$dir" | grep -vx 'MANIFEST.md' |
    xargs -P 2 -I{} sh -c 'f=$1 d=$2; shift 2; echo "$f $("$0" -z -c -T 1 "$@" "$d/$f" | wc -c)"' \
        "$nccat" {} "$dir" "$@" |
    sort >"$out"
awk '{ s += $2 } END { print s }' "$out"
