#!/usr/bin/env python3
"""Damaged streams: flips 1-3 random bits (at offsets from 30 on) in
copies of a stream and decodes each with `NCCAT -d`; every exit status must be 0 or 1
(decoded, or refused with a message), never a crash.

    python3 benches/flips.py STREAM NCCAT SEED TRIALS

Prints the trials and how many ended otherwise (with their stderr's tail).
"""
import os
import random
import subprocess
import sys

stream, nccat, seed, trials = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
src = open(stream, "rb").read()
random.seed(seed)
env = dict(os.environ, NC_CACHE_DIR="")
bad = 0
for _ in range(trials):
    d = bytearray(src)
    for _ in range(random.randint(1, 3)):
        d[random.randrange(30, len(d))] ^= 1 << random.randrange(8)
    r = subprocess.run([nccat, "-d", "-c", "-q"], input=bytes(d), capture_output=True, env=env)
    if r.returncode not in (0, 1):
        bad += 1
        print("exit", r.returncode, r.stderr[-300:])
print("trials", trials, "bad", bad)
