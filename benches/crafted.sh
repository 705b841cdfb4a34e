#!/bin/sh
# Decoding time of the worst crafted 4 KB stream of each profile (examples/crafted.rs):
#
#   benches/crafted.sh NCCAT [nccat options...]
#
# Every stream must be refused (exit 1); prints the profile, the seconds and the peak memory.
set -eu
nccat=$1
shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo run -q --release --example crafted -- "$dir" >/dev/null
for f in "$dir"/*.nc; do
    /usr/bin/time -f "$(basename "$f" .nc) %e s %M KB" "$nccat" -t "$@" "$f" 2>&1 |
        grep -v '^nccat:' || true
done
