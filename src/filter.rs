//! The x86 call filter (format version 13 on, block flag
//! [`FLAG_X86`](crate::format::FLAG_X86)): before a block of x86 machine code is coded,
//! each `CALL rel32` target is rewritten from relative to the instruction to relative to the
//! block's start, so every call to one function carries the same four bytes and the
//! context and copy experts learn them. The reader undoes it after decoding. Size-preserving
//! and its own inverse's mirror; the idea is the E8 transform of executable compressors
//! (xz's BCJ filters, paq8's exe preprocessing) — the code here is this crate's own
//! (`docs/tuning.md`, "x86 call filter").
//!
//! The scan: at each position, an `E8` byte is an opcode candidate and the next 4 bytes
//! its little-endian operand; an operand whose top byte is `00` or `FF` (a target within
//! ±16 MiB) is moved by the position after the instruction, wrapping within that range so
//! the top byte stays `00` or `FF`; either way the scan resumes after the operand. Which
//! positions are candidates therefore depends only on bytes the filter never changes (the
//! opcode bytes, at positions the scan reaches identically in both directions), and a
//! candidate's operand is filtered in both directions exactly when its top byte is `00`
//! or `FF`: decoding inverts encoding for every input.

/// The opcode the filter rewrites: `CALL rel32`. (`JMP rel32`, `E9`, measured worse: jumps
/// are mostly local, and their targets repeat less than calls'.)
const CALL: u8 = 0xE8;

/// Operands span `±2^24`: those whose top byte is `00` or `FF`.
const SPAN: i64 = 1 << 24;

/// Blocks with fewer filterable calls than one per this many bytes are left alone: x86
/// code has one every 20-100 bytes; other binary data about one per 32 KiB, text none.
const DENSITY: usize = 256;

fn filterable(operand_top: u8) -> bool {
    operand_top == 0x00 || operand_top == 0xFF
}

/// Applies `f(operand, position after the instruction)` to every filterable operand.
fn scan(block: &mut [u8], f: impl Fn(i64, i64) -> i64) {
    let mut i = 0;
    while i + 5 <= block.len() {
        if block[i] != CALL {
            i += 1;
            continue;
        }
        if filterable(block[i + 4]) {
            let operand = i64::from(i32::from_le_bytes([
                block[i + 1],
                block[i + 2],
                block[i + 3],
                block[i + 4],
            ]));
            let moved = (f(operand, (i + 5) as i64) + SPAN).rem_euclid(2 * SPAN) - SPAN;
            block[i + 1..i + 5].copy_from_slice(&(moved as i32).to_le_bytes());
        }
        i += 5;
    }
}

/// Whether a block looks like x86 code: at least one filterable call per [`DENSITY`]
/// bytes.
pub(crate) fn worth_filtering(block: &[u8]) -> bool {
    let mut calls = 0;
    let mut i = 0;
    while i + 5 <= block.len() {
        if block[i] == CALL {
            calls += usize::from(filterable(block[i + 4]));
            i += 5;
        } else {
            i += 1;
        }
    }
    calls * DENSITY >= block.len() && calls > 0
}

/// Rewrites `block`'s call targets as offsets from the block's start.
pub(crate) fn encode(block: &mut [u8]) {
    scan(block, |operand, next| operand + next);
}

/// Undoes [`encode`].
pub(crate) fn decode(block: &mut [u8]) {
    scan(block, |operand, next| operand - next);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the tests need no crate.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

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
        // Calls, filterable operands and the edges of the span everywhere, overlapping.
        let mut dense = noise(20_000, 9);
        for (i, b) in dense.iter_mut().enumerate() {
            match i % 7 {
                0 | 3 => *b = CALL,
                4 => *b = [0x00, 0xFF, 0x80, 0x7F][i % 4],
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
