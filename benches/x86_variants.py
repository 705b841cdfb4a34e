#!/usr/bin/env python3
"""Writes FILE with one variant of the x86 filter applied, to compare variants by coding
the result with an nccat that does not filter (a build before format version 13's filter,
e.g. commit 87eab16):

    benches/x86_variants.py IN OUT [--ops e8,e9] [--all] [--rip 8b,8d,89] [--rex] [--ff]

--ops: opcodes whose rel32 operand is rewritten (default e8); --all: every such operand,
as 32 bits, instead of those whose top byte is 00/FF, wrapped within +-2^24; --rip:
opcodes whose RIP-relative operand (ModRM & 0xC7 == 5) is rewritten too; --rex: only after
a REX prefix; --ff: also FF 15 / FF 25. Checks that the inverse restores IN.
"""
import argparse

BLOCK = 1 << 20


def move(out, at, next_pos, inverse, full):
    if full:
        v = int.from_bytes(out[at:at + 4], "little")
        v = (v - next_pos if inverse else v + next_pos) & 0xFFFFFFFF
        out[at:at + 4] = v.to_bytes(4, "little")
    elif out[at + 3] in (0, 0xFF):
        v = int.from_bytes(out[at:at + 4], "little", signed=True)
        v = ((v - next_pos if inverse else v + next_pos) + (1 << 24)) % (1 << 25) - (1 << 24)
        out[at:at + 4] = v.to_bytes(4, "little", signed=True)


def apply(data, a, inverse):
    out = bytearray(data)
    for start in range(0, len(out), BLOCK):
        end = min(len(out), start + BLOCK)
        i = start
        while i < end:
            b = out[i]
            if b in a.ops and i + 5 <= end:
                move(out, i + 1, i - start + 5, inverse, a.all)
                i += 5
                continue
            rip = (
                i + 6 <= end
                and ((b in a.rip and out[i + 1] & 0xC7 == 5) or (a.ff and b == 0xFF and out[i + 1] in (0x15, 0x25)))
                and (not a.rex or (i > start and 0x40 <= out[i - 1] <= 0x4F))
            )
            if rip:
                move(out, i + 2, i - start + 6, inverse, a.all)
                i += 6
            else:
                i += 1
    return bytes(out)


def opcodes(text):
    return {int(x, 16) for x in text.split(",") if x}


p = argparse.ArgumentParser()
p.add_argument("input")
p.add_argument("output")
p.add_argument("--ops", type=opcodes, default={0xE8})
p.add_argument("--all", action="store_true")
p.add_argument("--rip", type=opcodes, default=set())
p.add_argument("--rex", action="store_true")
p.add_argument("--ff", action="store_true")
a = p.parse_args()
data = open(a.input, "rb").read()
filtered = apply(data, a, False)
assert apply(filtered, a, True) == data, "this variant does not invert"
open(a.output, "wb").write(filtered)
