#!/usr/bin/env python3
"""What pixel templates can do on a bilevel image, outside the codec (docs/tuning.md,
"Bilevel images").

usage: bilevel_sim.py FILE ROW_BYTES LIMIT one|ctx TEMPLATES [RATE [lsb]]

FILE holds rows of ROW_BYTES bytes, one bit per pixel, the leftmost pixel in a byte's
high bit. Each template (t0, jbig, run, j16, wide; comma-separated) indexes adaptive
probabilities (steps 1/(n + 1.5), n counting to LIMIT); a logistic mixer at RATE (0.02)
with one weight set (`one`) or one per value of the first template (`ctx`) mixes their
stretches. Prints the mix's code length in bytes and each template's alone. `lsb` reads
the leftmost pixel from a byte's low bit instead.
"""
import math
import sys

TEMPLATES = {
    "t0": [(0, -1), (-1, 0), (-2, 0)],
    "jbig": [(-2, -1), (-2, 0), (-2, 1), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (0, -2), (0, -1)],
    "run": [(0, -d) for d in range(1, 9)] + [(-1, -1), (-1, 0), (-1, 1)],
    "j16": [(0, -d) for d in range(1, 5)] + [(-1, d) for d in range(-3, 4)] + [(-2, d) for d in range(-2, 3)],
    "wide": [(0, -d) for d in range(1, 7)]
    + [(-1, d) for d in range(-4, 5)]
    + [(-2, d) for d in range(-3, 4)]
    + [(-3, d) for d in range(-2, 3)],
}


def main():
    data = open(sys.argv[1], "rb").read()
    if len(sys.argv) > 7 and sys.argv[7] == "lsb":
        data = data.translate(bytes(int(f"{b:08b}"[::-1], 2) for b in range(256)))
    r, limit, mode = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    names = sys.argv[5].split(",")
    rate = float(sys.argv[6]) if len(sys.argv) > 6 else 0.02
    width, nrows = r * 8, len(data) // r
    rows = [int.from_bytes(data[i * r : (i + 1) * r], "big") for i in range(nrows)]
    templates = [TEMPLATES[n] for n in names]
    probs = [{} for _ in templates]
    counts = [{} for _ in templates]
    weights = {}
    bits, single = 0.0, [0.0] * len(templates)
    for y in range(nrows):
        cur = rows[y]
        up = [rows[y - k] if y >= k else 0 for k in (1, 2, 3)]
        for x in range(width):
            b = (cur >> (width - 1 - x)) & 1
            st, cs = [], []
            for ti, t in enumerate(templates):
                c = 0
                for dy, dx in t:
                    xx = x + dx
                    row = cur if dy == 0 else up[-dy - 1]
                    c = c * 2 + (0 if xx < 0 or xx >= width else (row >> (width - 1 - xx)) & 1)
                cs.append(c)
                p = min(max(probs[ti].get(c, 0.5), 1 / 4096), 1 - 1 / 4096)
                single[ti] -= math.log2(p if b else 1 - p)
                st.append(math.log(p / (1 - p)))
            w = weights.setdefault(cs[0] if mode == "ctx" else 0, [0.3] * len(templates))
            dot = max(min(sum(a * s for a, s in zip(w, st)), 30), -30)
            pm = min(max(1 / (1 + math.exp(-dot)), 1 / 65536), 1 - 1 / 65536)
            bits -= math.log2(pm if b else 1 - pm)
            for i, s in enumerate(st):
                w[i] += rate * (b - pm) * s
            for ti, c in enumerate(cs):
                p, n = probs[ti].get(c, 0.5), counts[ti].get(c, 0)
                probs[ti][c] = p + (b - p) / (n + 1.5)
                counts[ti][c] = min(n + 1, limit)
    print(mode, ",".join(names), limit, rate, "mix", int(bits / 8), "alone", [int(s / 8) for s in single])


main()
