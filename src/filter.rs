//! The x86 filter (format version 13 on, block flag
//! [`FLAG_X86`](crate::format::FLAG_X86)): before a block of x86 machine code is coded,
//! the 32-bit operands that locate code and data relative to the next instruction — `CALL
//! rel32`, `JMP rel32` and `Jcc rel32`, and in 64-bit code `MOV`/`LEA` with a RIP-relative
//! address — are rewritten relative to the block's start, so every reference to one
//! function, branch target or variable carries the same four bytes and the context and
//! copy experts learn them. The operand's three low bytes are then stored high byte first:
//! the bytes that differ least between nearby targets come first and give the ones that
//! differ most their context. The reader undoes it after decoding. The idea is the E8/E9
//! transform of executable compressors (xz's BCJ filters; paq8's exe preprocessing, which
//! also takes `Jcc` and stores the address high byte first); the scan is this crate's own
//! (`docs/tuning.md`, "x86 filter").
//!
//! The scan visits positions in order. An operand is found by its opcode bytes alone: `E8`
//! or `E9` (operand in the next 4 bytes), `0F 80`-`0F 8F` (likewise), or a REX prefix
//! (`40`-`4F`), then `8B`, `8D` or `89`, then a ModRM byte with `mod = 00, r/m = 101`
//! (operand in the 4 bytes after it; in 32-bit code this form is an absolute address, which
//! the REX prefix rules out). An operand whose top byte is `00` or `FF` (within ±16 MiB) is
//! moved by the position after it, wrapping within that range so the top byte stays `00`
//! or `FF`; either way the scan resumes after the operand. The bytes a decision reads are
//! never rewritten (a byte before an opcode that ends an earlier operand is its top byte,
//! `00` or `FF` both ways), so both directions find the same operands, and decoding inverts
//! encoding for every input.

/// `CALL rel32`.
pub(crate) const CALL: u8 = 0xE8;

/// `JMP rel32`.
const JUMP: u8 = 0xE9;

/// The escape byte before the `Jcc rel32` opcodes `80`-`8F`.
const ESCAPE: u8 = 0x0F;

/// Mask applied to the three moved bytes as stored: it moves the small high bytes of
/// addresses in a module (`00`-`1F`) away from the zeros and small numbers of the code
/// around them, as paq8's exe transform does (measured: `docs/tuning.md`, "x86 filter").
const MASK: u8 = 0xB0;

/// `MOV r, r/m`; `LEA`; `MOV r/m, r`: with a RIP-relative ModRM, the most common references
/// to data in 64-bit code.
const RIP_OPCODES: [u8; 3] = [0x8B, 0x8D, 0x89];

/// Operands span `±2^24`: those whose top byte is `00` or `FF`.
const SPAN: i64 = 1 << 24;

/// Blocks with fewer filterable calls than one per this many bytes are left alone: x86
/// code has one every 20-160 bytes; other binary data about one per 4 KiB or fewer, text
/// none.
pub(crate) const DENSITY: usize = 256;

pub(crate) fn filterable(operand_top: u8) -> bool {
    operand_top == 0x00 || operand_top == 0xFF
}

/// Where the first operand found from position `from` on starts.
#[inline]
fn next_operand(block: &[u8], from: usize) -> Option<usize> {
    (from..block.len()).find_map(|i| {
        let branch = block[i] == CALL
            || block[i] == JUMP
            || (i >= 1 && block[i - 1] == ESCAPE && block[i] & 0xF0 == 0x80);
        if branch {
            return (i + 5 <= block.len()).then_some(i + 1);
        }
        let rip = i >= 1
            && i + 6 <= block.len()
            && (0x40..=0x4F).contains(&block[i - 1])
            && RIP_OPCODES.contains(&block[i])
            && block[i + 1] & 0xC7 == 0x05;
        rip.then_some(i + 2)
    })
}

/// How a moved operand's bytes are stored: its three low bytes high byte first, masked,
/// then its top byte (`00` or `FF`) where it was. An involution.
fn stored(bytes: [u8; 4]) -> [u8; 4] {
    [bytes[2] ^ MASK, bytes[1] ^ MASK, bytes[0] ^ MASK, bytes[3]]
}

/// Applies `f(operand, position after it)` to every filterable operand, the operand read
/// as the block holds it (`encode`: little-endian) and written the other way.
fn scan(block: &mut [u8], encode: bool, f: impl Fn(i64, i64) -> i64) {
    let mut from = 0;
    while let Some(at) = next_operand(block, from) {
        let operand: [u8; 4] = [block[at], block[at + 1], block[at + 2], block[at + 3]];
        if filterable(operand[3]) {
            let raw = if encode { operand } else { stored(operand) };
            let value = i64::from(i32::from_le_bytes(raw));
            let moved = (f(value, (at + 4) as i64) + SPAN).rem_euclid(2 * SPAN) - SPAN;
            let moved = (moved as i32).to_le_bytes();
            block[at..at + 4].copy_from_slice(&if encode { stored(moved) } else { moved });
        }
        from = at + 4;
    }
}

/// Whether a block looks like x86 code: at least one filterable call per [`DENSITY`]
/// bytes, counted by the filter's own scan.
pub(crate) fn worth_filtering(block: &[u8]) -> bool {
    let (mut calls, mut from) = (0, 0);
    while let Some(at) = next_operand(block, from) {
        // A RIP-relative operand follows its ModRM byte, which is never `CALL`.
        calls += usize::from(block[at - 1] == CALL && filterable(block[at + 3]));
        from = at + 4;
    }
    calls * DENSITY >= block.len() && calls > 0
}

/// Rewrites `block`'s operands as offsets from the block's start.
pub(crate) fn encode(block: &mut [u8]) {
    scan(block, true, |operand, next| operand + next);
}

/// Undoes [`encode`].
pub(crate) fn decode(block: &mut [u8]) {
    scan(block, false, |operand, next| operand - next);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::noise;

    /// Calls to a few functions: the kind of block the filter is for.
    fn calls(len: usize) -> Vec<u8> {
        let mut block: Vec<u8> = noise(len, 3).into_iter().map(|b| b & 0x7F).collect();
        let targets = [0x400i64, 0x2000, 0x9000];
        let mut i = 7;
        while i + 5 <= len {
            let next = (i + 5) as i64;
            let rel = targets[i % 3] - next;
            block[i] = CALL;
            block[i + 1..i + 5].copy_from_slice(&(rel as i32).to_le_bytes());
            i += 37;
        }
        block
    }

    #[test]
    fn decoding_inverts_encoding_whatever_the_bytes() {
        let mut cases = vec![calls(10_000), vec![CALL; 64], vec![]];
        // Calls, jumps, filterable operands and the edges of the span everywhere,
        // overlapping.
        let mut dense = noise(20_000, 9);
        for (i, b) in dense.iter_mut().enumerate() {
            match i % 11 {
                0 | 3 => *b = [CALL, JUMP, ESCAPE][i % 3],
                1 => *b = 0x80 | (*b & 0x0F),
                4 | 9 => *b = [0x00, 0xFF, 0x80, 0x7F][i % 4],
                5 => *b = 0x48,
                6 => *b = RIP_OPCODES[i % 3],
                7 => *b = 0x05 | (*b & 0x38),
                _ => {}
            }
        }
        cases.push(dense);
        for seed in 1..50 {
            cases.push(noise(seed as usize * 97, seed));
        }
        for original in cases {
            let mut block = original.clone();
            encode(&mut block);
            decode(&mut block);
            assert_eq!(block, original);
        }
    }

    /// Every call to one function carries the same operand once filtered.
    #[test]
    fn calls_to_one_function_look_alike() {
        let mut block = calls(10_000);
        encode(&mut block);
        let operands: std::collections::HashSet<[u8; 4]> = (7..block.len() - 5)
            .step_by(37)
            .map(|i| block[i + 1..i + 5].try_into().unwrap())
            .collect();
        assert_eq!(operands.len(), 3);
    }

    /// Jumps and conditional branches to one target carry one operand once filtered, its
    /// high byte first.
    #[test]
    fn branches_to_one_target_look_alike_high_byte_first() {
        let mut block = vec![0x90u8; 8000];
        let target = 0x12_3456i64;
        let mut at = Vec::new();
        for (n, i) in (10..7900).step_by(40).enumerate() {
            let opcode: &[u8] = match n % 3 {
                0 => &[JUMP],
                1 => &[ESCAPE, 0x84],
                _ => &[ESCAPE, 0x8F],
            };
            block[i..i + opcode.len()].copy_from_slice(opcode);
            let operand = i + opcode.len();
            let rel = (target - (operand as i64 + 4)) as i32;
            block[operand..operand + 4].copy_from_slice(&rel.to_le_bytes());
            at.push(operand);
        }
        let original = block.clone();
        encode(&mut block);
        for &a in &at {
            assert_eq!(
                block[a..a + 4],
                [0x12 ^ MASK, 0x34 ^ MASK, 0x56 ^ MASK, 0x00]
            );
        }
        decode(&mut block);
        assert_eq!(block, original);
    }

    /// RIP-relative loads of one variable carry one operand once filtered; the same bytes
    /// without a REX prefix (an absolute address in 32-bit code) are left alone.
    #[test]
    fn rip_relative_references_look_alike() {
        let mut block = vec![0x90u8; 4000];
        let target = 0x3000i64;
        for (n, i) in (10..3900).step_by(50).enumerate() {
            let rex = n % 2 == 0;
            block[i] = if rex { 0x48 } else { 0x90 };
            block[i + 1] = RIP_OPCODES[n % 3];
            block[i + 2] = 0x05;
            let rel = (target - (i as i64 + 7)) as i32;
            block[i + 3..i + 7].copy_from_slice(&rel.to_le_bytes());
        }
        let original = block.clone();
        encode(&mut block);
        let operands = |rex: bool| -> std::collections::HashSet<[u8; 4]> {
            (10..3900)
                .step_by(50)
                .enumerate()
                .filter(|&(n, _)| (n % 2 == 0) == rex)
                .map(|(_, i)| block[i + 3..i + 7].try_into().unwrap())
                .collect()
        };
        assert_eq!(operands(true).len(), 1);
        assert!(operands(false).len() > 30);
        decode(&mut block);
        assert_eq!(block, original);
    }

    #[test]
    fn only_code_is_worth_filtering() {
        assert!(worth_filtering(&calls(100_000)));
        assert!(!worth_filtering(&noise(100_000, 5)));
        assert!(!worth_filtering(
            &b"plain text, and UTF-8: \xe8\xa8\x80\xe8\x91\x89 ".repeat(500)
        ));
        assert!(!worth_filtering(&[]));
    }
}
