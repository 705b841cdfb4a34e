//! Retrieval: earlier contexts that are *similar* to the current one, not only identical,
//! trusted by how well their continuations agree.
//!
//! Contexts are compared after normalisation (letters case-folded, digits made equal,
//! whitespace made equal), so "The 12 cats" finds "the 47 cats" and a reindented line finds
//! its twin. A hash of the last `MIN_LEN` normalised bytes keeps the two latest positions
//! that followed such a context; each candidate is scored by its normalised match length
//! (verified backwards). The expert predicts the byte that followed the best candidate,
//! with a confidence learned per (length bucket, whether the two candidates' continuations
//! agree, recent record): two similar contexts that continue alike are strong evidence,
//! two that disagree are weak.

use super::copy::{clear_path, train_path, write_path};
use crate::hint::prefetch;
use crate::logistic::StateMap;
use crate::snapshot::{Snapshot, Walker};
use crate::tracked::Tracked;

/// Normalised bytes hashed to find candidates.
const MIN_LEN: usize = 6;

/// [`Retrieval::recent`] holds `MIN_LEN` bytes.
const RECENT_MASK: u64 = (1 << (8 * MIN_LEN)) - 1;

/// The bucket of the context whose last `MIN_LEN` normalised bytes are `recent`.
fn bucket(recent: u64, bits: u32) -> usize {
    (recent.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}
/// Longest normalised match measured.
const MAX_LEN: usize = 64;
/// Length buckets of the confidence contexts.
const BUCKETS: usize = 16;

/// The byte with case, digit value and whitespace kind removed.
#[inline]
fn normalise(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' => b | 0x20,
        b'0'..=b'9' => b'0',
        b'\t' | b'\n' | b'\r' => b' ',
        _ => b,
    }
}

/// The retrieval expert of one lane.
#[derive(Clone)]
pub(crate) struct Retrieval {
    /// Per hash: the two latest positions after a context with that hash (+1; 0 = none).
    table: Tracked<[u32; 2]>,
    bits: u32,
    dirty: bool,
    /// Rolling hash state: the last `MIN_LEN` normalised bytes.
    recent: u64,
    /// The predicted byte, the length bucket and the agreement flag behind it.
    expected: Option<u8>,
    context: usize,
    confidence: StateMap,
    record: u32,
    /// The candidates scored at the last byte (normalised match length, continuation
    /// index): a candidate that continues one of them extends its length by a byte
    /// instead of comparing up to `MAX_LEN` bytes again.
    scored: [(usize, usize); 2],
}

impl Retrieval {
    /// Bytes of the table of `2^bits` entries.
    pub(crate) fn table_bytes(bits: u32) -> u64 {
        (std::mem::size_of::<[u32; 2]>() as u64) << bits
    }

    /// Heap bytes of the table now (the memory estimate is checked against it).
    #[cfg(test)]
    pub(crate) fn table_capacity_bytes(&self) -> u64 {
        (self.table.capacity() * std::mem::size_of::<[u32; 2]>()) as u64
    }

    /// Mixer inputs per node.
    pub(crate) const INPUTS: usize = 2;

    /// A retrieval expert with `2^bits` buckets.
    pub(crate) fn new(bits: u32, limit: u32) -> Self {
        Retrieval {
            table: Tracked::new(vec![[0; 2]; 1 << bits]),
            bits,
            dirty: false,
            recent: 0,
            expected: None,
            context: 0,
            confidence: StateMap::new(BUCKETS * 3 * 4 * 2, limit),
            record: 0,
            scored: [(0, usize::MAX); 2],
        }
    }

    /// Forgets what was written so far: this state is the one
    /// [`Retrieval::restore_from`] returns to.
    pub(crate) fn clear_marks(&mut self) {
        self.table.clear_marks();
    }

    /// Returns this expert to `src`'s state, given that it was in that state, with a table
    /// of the same size, when its marks were last cleared.
    pub(crate) fn restore_from(&mut self, src: &Retrieval) {
        let Retrieval {
            table,
            bits,
            dirty,
            recent,
            expected,
            context,
            confidence,
            record,
            scored,
        } = src;
        assert_eq!(self.bits, *bits, "restored from a table of another size");
        self.table.restore_from(table);
        self.dirty = *dirty;
        self.recent = *recent;
        self.expected = *expected;
        self.context = *context;
        self.confidence.clone_from(confidence);
        self.record = *record;
        self.scored = *scored;
    }

    /// Forgets the block.
    pub(crate) fn reset(&mut self) {
        if self.dirty {
            self.table.all_mut().fill([0; 2]);
            self.dirty = false;
        }
        self.recent = 0;
        self.expected = None;
        self.context = 0;
        self.confidence.reset();
        self.record = 0;
        self.scored = [(0, usize::MAX); 2];
    }

    fn bucket(&self) -> usize {
        bucket(self.recent, self.bits)
    }

    /// Moves the table to `2^bits` buckets, filed from `bytes` as [`Retrieval::update`]
    /// files them: the table a lane that had learned `bytes` from its reset with `2^bits`
    /// buckets would hold (a grown primed lane, `Lane::grown`).
    pub(crate) fn grow(&mut self, bits: u32, bytes: &[u8]) {
        if bits == self.bits {
            return;
        }
        self.table = Tracked::new(vec![[0; 2]; 1 << bits]);
        self.bits = bits;
        let mut recent = 0;
        for (i, &byte) in bytes.iter().enumerate() {
            if i >= MIN_LEN {
                let entry = &mut self.table[bucket(recent, bits)];
                *entry = [i as u32 + 1, entry[0]];
                self.dirty = true;
            }
            recent = ((recent << 8) | u64::from(normalise(byte))) & RECENT_MASK;
        }
        debug_assert_eq!(recent, self.recent);
    }

    /// [`Retrieval::similarity`], from the last byte's scores where `candidate` continues
    /// a candidate scored then: its context is that one's plus one byte.
    fn similarity_after(&self, bytes: &[u8], candidate: usize) -> usize {
        let pos = bytes.len();
        let Some(&(len, _)) = self
            .scored
            .iter()
            .find(|&&(_, before)| before.wrapping_add(1) == candidate)
        else {
            return Self::similarity(bytes, candidate);
        };
        let len = if normalise(bytes[candidate - 1]) == normalise(bytes[pos - 1]) {
            (len + 1).min(MAX_LEN)
        } else {
            0
        };
        debug_assert_eq!(len, Self::similarity(bytes, candidate));
        len
    }

    /// Normalised match length of the context ending before index `candidate` with the
    /// current one (ending at the end of `bytes`).
    fn similarity(bytes: &[u8], candidate: usize) -> usize {
        let pos = bytes.len();
        let mut len = 0;
        while len < MAX_LEN
            && len < candidate
            && normalise(bytes[candidate - 1 - len]) == normalise(bytes[pos - 1 - len])
        {
            len += 1;
        }
        len
    }

    /// Writes inputs for the nodes on the expected byte's path; its columns are otherwise
    /// zero (and must be zero at a reset).
    pub(crate) fn predict<const N: usize>(
        &mut self,
        bytes: &[u8],
        inputs: &mut [[i32; N]; 256],
        first: usize,
    ) {
        if let Some(e) = self.expected.take() {
            clear_path(inputs, first, e);
        }
        if bytes.len() < MIN_LEN {
            return;
        }
        let [a, b] = self.table[self.bucket()];
        // A candidate is stored as the index of its continuation plus one.
        let scored = [a, b].map(|c| {
            (c > 0).then(|| {
                let at = c as usize - 1;
                (self.similarity_after(bytes, at), at)
            })
        });
        self.scored = scored.map(|s| s.unwrap_or((0, usize::MAX)));
        let [first_c, second_c] = scored.map(|s| s.filter(|&(len, _)| len >= MIN_LEN));
        let best = match (first_c, second_c) {
            (Some(x), Some(y)) => Some(if y.0 > x.0 { y } else { x }),
            (x, y) => x.or(y),
        };
        let Some((len, at)) = best else { return };
        let agree = match (first_c, second_c) {
            (Some(x), Some(y)) => {
                if bytes[x.1] == bytes[y.1] {
                    1
                } else {
                    2
                }
            }
            _ => 0,
        };
        let e = bytes[at];
        self.expected = Some(e);
        let bucket = (len - MIN_LEN).min(BUCKETS - 1);
        self.context = ((bucket * 3 + agree) * 4 + (self.record & 3) as usize) * 2;
        let strength = (len as i32) * 16 * if agree == 2 { 1 } else { 2 };
        write_path(
            inputs,
            first,
            e,
            &self.confidence,
            self.context,
            strength,
            false,
        );
    }

    /// Learns how the prediction fared and files the current context. `bytes` already ends
    /// with `byte`.
    pub(crate) fn update(&mut self, bytes: &[u8], byte: u8) {
        if let Some(e) = self.expected {
            train_path(&mut self.confidence, self.context, e, byte);
            self.record = (self.record << 1) | u32::from(e != byte);
        }
        // File the context that preceded `byte` under its hash, then move on.
        let pos = bytes.len();
        if pos > MIN_LEN {
            let i = self.bucket();
            let entry = &mut self.table[i];
            // The continuation is `byte`, at index pos - 1: stored plus one.
            *entry = [pos as u32, entry[0]];
            self.dirty = true;
        }
        self.recent = ((self.recent << 8) | u64::from(normalise(byte))) & RECENT_MASK;
        // The next prediction reads this bucket.
        prefetch(self.table.as_slice(), self.bucket());
    }
}

impl Snapshot for Retrieval {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Retrieval {
            table,
            bits,
            dirty,
            recent,
            expected,
            context,
            confidence,
            record,
            scored,
        } = self;
        w.check(&bits.to_le_bytes());
        table.walk(w);
        dirty.walk(w);
        recent.walk(w);
        expected.walk(w);
        context.walk(w);
        confidence.walk(w);
        record.walk(w);
        scored.walk(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Growing files the bytes where a table of the larger size would have them.
    #[test]
    fn a_grown_table_is_the_table_the_bytes_file() {
        let text = b"The Cat sat on the mat;\nthe cat sat on the hat. ".repeat(300);
        let (mut small, mut large) = (Retrieval::new(10, 63), Retrieval::new(14, 63));
        for pos in 1..=text.len() {
            small.update(&text[..pos], text[pos - 1]);
            large.update(&text[..pos], text[pos - 1]);
        }
        small.grow(14, &text);
        assert!(small.table.as_slice() == large.table.as_slice() && small.bits == 14);
    }
}
