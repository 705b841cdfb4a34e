//! Copy experts: the byte that followed the latest earlier occurrence of the recent context.
//!
//! A hash of the last `min_len` bytes maps to the latest position that followed them; when
//! the current match ends, the next byte looks its context up and verifies the candidate
//! backwards to get the true match length. The expert predicts the byte after the match,
//! bit by bit, for the nodes on that byte's path (elsewhere it has nothing to say), with a
//! confidence learned per match-length bucket from how often such matches were right.
//!
//! Two instances serve as the *long copy* (`min_len` 12: repeated lines, records, files
//! inside files) and the *short copy* (`min_len` 3, 4 before format version 13: recurring
//! words, indentation and punctuation patterns, found again a few bytes after a long match
//! breaks).

use crate::hint::prefetch;
use crate::logistic::StateMap;
use crate::snapshot::{Snapshot, Walker};
use crate::tracked::Tracked;

/// Length buckets: 0 (no match), then 1..=15 exactly, then logarithmic up to 31.
const BUCKETS: usize = 32;
/// Longest match tracked.
const MAX_LEN: u32 = 65_535;

fn bucket(len: u32) -> usize {
    if len < 16 {
        len as usize
    } else {
        // Two buckets per power of two from 16 up.
        let log = (31 - len.leading_zeros()) as usize;
        let half = ((len >> (log - 1)) & 1) as usize;
        (16 + (log - 4) * 2 + half).min(BUCKETS - 1)
    }
}

/// One copy expert of one lane.
#[derive(Clone)]
pub(crate) struct CopyExpert {
    min_len: usize,
    /// `table[hash]` = position after an occurrence of the hashed context, plus 1 (0 = none).
    table: Tracked<u32>,
    bits: u32,
    dirty: bool,
    /// Position in the block of the predicted byte, and the current match length.
    ptr: usize,
    len: u32,
    /// Confidence per (length bucket, expected bit).
    confidence: StateMap,
    /// Recent record of this expert: misses among the last predictions (shifted in).
    record: u32,
    /// The byte predicted for this position, if any.
    expected: Option<u8>,
    /// Format version 13 on: the confidence input is signed by the expected bit
    /// ([`write_path`]).
    signed: bool,
    /// Format version 13 on: in binary data a match goes on past a missed byte
    /// ([`CopyExpert::update`]).
    recovers: bool,
}

impl CopyExpert {
    /// Bytes of the table of `2^bits` entries.
    pub(crate) fn table_bytes(bits: u32) -> u64 {
        (std::mem::size_of::<u32>() as u64) << bits
    }

    /// Heap bytes of the table now (the memory estimate is checked against it).
    #[cfg(test)]
    pub(crate) fn table_capacity_bytes(&self) -> u64 {
        (self.table.capacity() * std::mem::size_of::<u32>()) as u64
    }

    /// A copy expert keyed on the last `min_len` bytes, with `2^bits` table entries, its
    /// confidence counting up to `limit` hits and misses per context, its input signed
    /// by the expected bit where `signed` ([`write_path`]), and its matches going on past
    /// a missed byte in binary data where `recovers`.
    pub(crate) fn new(min_len: usize, bits: u32, limit: u32, signed: bool, recovers: bool) -> Self {
        CopyExpert {
            min_len,
            table: Tracked::new(vec![0; 1 << bits]),
            bits,
            dirty: false,
            ptr: 0,
            len: 0,
            confidence: StateMap::new(BUCKETS * 2 * 4, limit),
            record: 0,
            expected: None,
            signed,
            recovers,
        }
    }

    /// Mixer inputs per node.
    pub(crate) const INPUTS: usize = 2;

    /// Forgets what was written so far: this state is the one
    /// [`CopyExpert::restore_from`] returns to.
    pub(crate) fn clear_marks(&mut self) {
        self.table.clear_marks();
    }

    /// Returns this expert to `src`'s state, given that it was in that state, with a table
    /// of the same size, when its marks were last cleared.
    pub(crate) fn restore_from(&mut self, src: &CopyExpert) {
        let CopyExpert {
            min_len,
            table,
            bits,
            dirty,
            ptr,
            len,
            confidence,
            record,
            expected,
            signed,
            recovers,
        } = src;
        assert_eq!(self.bits, *bits, "restored from a table of another size");
        self.table.restore_from(table);
        self.min_len = *min_len;
        self.dirty = *dirty;
        self.ptr = *ptr;
        self.len = *len;
        self.confidence.clone_from(confidence);
        self.record = *record;
        self.expected = *expected;
        self.signed = *signed;
        self.recovers = *recovers;
    }

    /// Forgets the block.
    pub(crate) fn reset(&mut self) {
        if self.dirty {
            self.table.all_mut().fill(0);
            self.dirty = false;
        }
        self.ptr = 0;
        self.len = 0;
        self.confidence.reset();
        self.record = 0;
        self.expected = None;
    }

    /// The byte the match predicts for this position, if any.
    pub(crate) fn expected(&self) -> Option<u8> {
        self.expected
    }

    /// The byte the next [`CopyExpert::predict`] will expect, if any, given the bytes so
    /// far (those `update` was given).
    pub(crate) fn next_expected(&self, bytes: &[u8]) -> Option<u8> {
        (self.len > 0).then(|| bytes[self.ptr])
    }

    /// Current match length (0 when there is no match).
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Confidence context of the current match, for expected bit 0 (+1 for bit 1).
    fn context(&self) -> usize {
        (bucket(self.len) * 4 + (self.record & 3) as usize) * 2
    }

    /// Writes inputs for the nodes on the expected byte's path (`inputs[c0][first..first+2]`);
    /// the rest of its columns stay zero. Its columns must be zero at a reset.
    pub(crate) fn predict<const N: usize>(
        &mut self,
        bytes: &[u8],
        inputs: &mut [[i32; N]; 256],
        first: usize,
    ) {
        if let Some(e) = self.expected {
            clear_path(inputs, first, e);
        }
        self.expected = self.next_expected(bytes);
        let Some(e) = self.expected else { return };
        let strength = (self.len.min(32) as i32) * 32;
        let context = self.context();
        write_path(
            inputs,
            first,
            e,
            &self.confidence,
            context,
            strength,
            self.signed,
        );
    }

    /// Moves the table to `2^bits` entries, filed from `bytes` as [`CopyExpert::update`]
    /// files them: the table a lane that had learned `bytes` from its reset with `2^bits`
    /// entries would hold (a grown primed lane, `Lane::grown`).
    pub(crate) fn grow(&mut self, bits: u32, bytes: &[u8]) {
        if bits == self.bits {
            return;
        }
        self.table = Tracked::new(vec![0; 1 << bits]);
        self.bits = bits;
        for pos in self.min_len..=bytes.len() {
            self.table[hash(&bytes[pos - self.min_len..pos], bits)] = pos as u32;
            self.dirty = true;
        }
    }

    /// Starts fetching the table entry [`CopyExpert::update`] will read for `bytes` (which ends
    /// with the byte just coded), so the miss overlaps other work.
    pub(crate) fn prefetch(&self, bytes: &[u8]) {
        let pos = bytes.len();
        if pos >= self.min_len {
            prefetch(
                self.table.as_slice(),
                hash(&bytes[pos - self.min_len..], self.bits),
            );
        }
    }

    /// Learns how the prediction fared, then extends or looks up the match. `bytes` already
    /// ends with `byte`; `binary`, whether the recent bytes are binary data.
    ///
    /// In binary data a field or an address often differs where the rest repeats (paq8px's
    /// match model recovers the same way): where it `recovers`, a match whose byte missed
    /// goes on one byte further, as if the byte had been replaced, with a length of 1 (a
    /// confidence of its own) until a lookup finds a match or three predictions in a row
    /// have missed. In text an edit is as often an insertion, and going on cost more than
    /// it brought (`docs/tuning.md`, "Matches that go on past a miss").
    pub(crate) fn update(&mut self, bytes: &[u8], byte: u8, binary: bool) {
        if let Some(e) = self.expected {
            let base = self.context();
            train_path(&mut self.confidence, base, e, byte);
            self.record = (self.record << 1) | u32::from(e != byte);
        }
        let pos = bytes.len();
        if self.len > 0 && bytes[self.ptr] == byte {
            self.len = (self.len + 1).min(MAX_LEN);
            self.ptr += 1;
        } else if self.recovers && binary && self.len > 0 && self.record & 7 != 7 {
            self.len = 1;
            self.ptr += 1;
        } else {
            self.len = 0;
        }
        if pos >= self.min_len {
            let h = hash(&bytes[pos - self.min_len..], self.bits);
            if self.len <= 1 {
                let candidate = self.table[h] as usize;
                if candidate > 0 {
                    let mut len = 0usize;
                    while len < candidate
                        && len < MAX_LEN as usize
                        && bytes[candidate - 1 - len] == bytes[pos - 1 - len]
                    {
                        len += 1;
                    }
                    if len >= self.min_len {
                        self.len = len as u32;
                        self.ptr = candidate;
                    }
                }
            }
            self.table[h] = pos as u32;
            self.dirty = true;
        }
    }
}

/// Zeroes the two input columns at `first` on the path of a byte predicted earlier (the
/// only nodes a path expert writes).
pub(crate) fn clear_path<const N: usize>(inputs: &mut [[i32; N]; 256], first: usize, expected: u8) {
    let e = usize::from(expected);
    for j in 0..8 {
        let c0 = (1 << j) | (e >> (8 - j));
        inputs[c0][first] = 0;
        inputs[c0][first + 1] = 0;
    }
}

/// Writes a path expert's inputs on the nodes of its `expected` byte: the stretched
/// confidence of context `base + expected bit` (the odds that the bit is the expected
/// one), where `signed` turned into the odds of a 1 (negated where a 0 is expected), and
/// `strength` signed by that bit.
///
/// Unsigned, the input says how sure the expert is but not of which bit: a confident 0
/// then pushes the gate toward a 1. The retrieval expert passes it unsigned, where it
/// measured better (`docs/tuning.md`, "The copy's confidence, signed").
pub(crate) fn write_path<const N: usize>(
    inputs: &mut [[i32; N]; 256],
    first: usize,
    expected: u8,
    confidence: &StateMap,
    base: usize,
    strength: i32,
    signed: bool,
) {
    let e = usize::from(expected);
    for j in 0..8 {
        let c0 = (1 << j) | (e >> (8 - j));
        let bit = (e >> (7 - j)) & 1;
        let st = confidence.st(base + bit);
        inputs[c0][first] = if signed && bit == 0 { -st } else { st };
        inputs[c0][first + 1] = if bit != 0 { strength } else { -strength };
    }
}

/// Trains a path expert's confidence on the nodes the `actual` byte shared with the
/// `expected` one, down to the first bit where they part.
pub(crate) fn train_path(confidence: &mut StateMap, base: usize, expected: u8, actual: u8) {
    let (e, b) = (usize::from(expected), usize::from(actual));
    for j in 0..8 {
        let bit = (e >> (7 - j)) & 1;
        let hit = bit == (b >> (7 - j)) & 1;
        confidence.update(base + bit, u32::from(hit));
        if !hit {
            break;
        }
    }
}

/// Hash of a short context into `bits` bits.
fn hash(context: &[u8], bits: u32) -> usize {
    let mut h: u64 = 0;
    for &b in context {
        h = (h ^ u64::from(b))
            .wrapping_mul(0x100_0000_01B3)
            .rotate_left(5);
    }
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

impl Snapshot for CopyExpert {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let CopyExpert {
            min_len,
            table,
            bits,
            dirty,
            ptr,
            len,
            confidence,
            record,
            expected,
            signed,
            recovers,
        } = self;
        w.check_len(*min_len);
        w.check(&bits.to_le_bytes());
        table.walk(w);
        dirty.walk(w);
        ptr.walk(w);
        len.walk(w);
        confidence.walk(w);
        record.walk(w);
        expected.walk(w);
        w.check(&[u8::from(*signed), u8::from(*recovers)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signed, a confident expectation says which bit: toward a 1 where it expects a 1,
    /// toward a 0 where it expects a 0.
    #[test]
    fn a_signed_confidence_points_to_the_expected_bit() {
        let mut confidence = StateMap::new(2, 1023);
        for _ in 0..50 {
            train_path(&mut confidence, 0, 0b1010_0110, 0b1010_0110);
        }
        for signed in [false, true] {
            let mut inputs = [[0i32; 2]; 256];
            write_path(&mut inputs, 0, 0b1010_0110, &confidence, 0, 100, signed);
            for j in 0..8 {
                let c0 = (1 << j) | (0b1010_0110 >> (8 - j));
                let one = (0b1010_0110 >> (7 - j)) & 1 == 1;
                let [st, strength] = inputs[c0];
                assert!(st.abs() > 1000, "node {c0:#x}: {st}");
                assert_eq!(strength, if one { 100 } else { -100 });
                assert_eq!(st > 0, one || !signed, "node {c0:#x}: {st}");
            }
        }
    }

    /// In binary data a match goes on past a replaced byte; in text it ends there.
    #[test]
    fn a_match_goes_on_past_a_replaced_byte_in_binary_data() {
        let record: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5A).collect();
        let mut data = record.clone();
        let mut edited = record.clone();
        edited[20] ^= 0xFF;
        data.extend_from_slice(&edited);
        let run = |binary: bool, recovers: bool| {
            let mut copy = CopyExpert::new(12, 12, 63, true, recovers);
            let mut inputs = Box::new([[0i32; 2]; 256]);
            let mut after = Vec::new();
            for pos in 0..data.len() {
                copy.predict(&data[..pos], &mut inputs, 0);
                if pos > 60 {
                    after.push(copy.expected());
                }
                copy.update(&data[..=pos], data[pos], binary);
            }
            after
        };
        // The byte after the replaced one (position 61) is expected from the source at
        // position 21 only where the match went on.
        let went_on = run(true, true);
        assert_eq!(went_on[0], Some(record[21]));
        assert!(went_on.iter().all(|&e| e.is_some()));
        for (binary, recovers) in [(false, true), (true, false)] {
            assert_eq!(run(binary, recovers)[0], None, "{binary} {recovers}");
        }
    }

    /// Growing files the bytes where a table of the larger size would have them.
    #[test]
    fn a_grown_table_is_the_table_the_bytes_file() {
        let text = b"the cat sat on the mat; the cat sat on the hat. ".repeat(300);
        for min_len in [4, 12] {
            let (mut small, mut large) = (
                CopyExpert::new(min_len, 10, 63, true, true),
                CopyExpert::new(min_len, 14, 63, true, true),
            );
            for pos in 1..=text.len() {
                small.update(&text[..pos], text[pos - 1], false);
                large.update(&text[..pos], text[pos - 1], false);
            }
            small.grow(14, &text);
            assert!(small.table.as_slice() == large.table.as_slice() && small.bits == 14);
        }
    }
}
