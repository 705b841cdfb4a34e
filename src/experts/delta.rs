//! Counting fields: a specialist for records whose field changes by the same step from
//! one record to the next (row and cell numbers in a spreadsheet, serials and offsets in a
//! table, timestamps at a fixed interval).
//!
//! The record contexts see the bytes one and two records back as a pair: a counter that
//! has gone 0x43, 0x44 makes a pair never seen before, and nothing predicts 0x45. This
//! expert extrapolates: it expects the byte one record back plus the change since the
//! record before it, and says so on that byte's path as the copy experts do, with a
//! confidence learned from how such guesses fared. Where the records are a series of
//! numbers, it expects the byte of the value they extrapolate to instead (with carries
//! between the bytes, which a field's bytes stepped one by one miss).

use super::copy::{clear_path, train_path, write_path};
use crate::logistic::StateMap;
use crate::snapshot::{Snapshot, Walker};

/// Confidence contexts: the last 3 guesses' hits; whether the step is ±1, or in a series
/// of numbers the place in the record (8 more); the expected bit.
const CONTEXTS: usize = 8 * 10 * 2;

/// The expert's state in one lane.
#[derive(Clone)]
pub(crate) struct Delta {
    confidence: StateMap,
    /// Misses among the last guesses (shifted in, the newest in bit 0).
    misses: u32,
    /// The byte expected at this position, and its confidence context.
    expected: Option<u8>,
    context: usize,
}

impl Delta {
    /// Gate inputs: the path expert's two.
    pub(crate) const INPUTS: usize = 2;

    pub(crate) fn new(limit: u32) -> Self {
        Delta {
            confidence: StateMap::new(CONTEXTS, limit),
            misses: 0,
            expected: None,
            context: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.confidence.reset();
        self.misses = 0;
        self.expected = None;
    }

    /// Writes its two inputs for the nodes on the expected byte's path
    /// (`inputs[c0][first..first + 2]`), `bytes` being the block so far and `row` the
    /// record length, where it is known and the field is changing, or where `series`
    /// gives the byte records read as numbers extrapolate to (and its place in the
    /// record, [`crate::experts::orders::Orders::series`]); the rest of its columns stay
    /// zero.
    pub(crate) fn predict<const N: usize>(
        &mut self,
        bytes: &[u8],
        row: Option<usize>,
        series: Option<(u8, usize)>,
        inputs: &mut [[i32; N]; 256],
        first: usize,
    ) {
        if let Some(e) = self.expected.take() {
            clear_path(inputs, first, e);
        }
        let p = bytes.len();
        let Some(r) = row.filter(|&r| p >= 2 * r) else {
            return;
        };
        let (e, kind) = match series {
            Some((e, place)) => (e, 2 + place),
            None => {
                let (above, before) = (bytes[p - r], bytes[p - 2 * r]);
                let step = above.wrapping_sub(before);
                if step == 0 {
                    // A constant field: the record contexts know it.
                    return;
                }
                (
                    above.wrapping_add(step),
                    usize::from(matches!(step, 1 | 255)),
                )
            }
        };
        self.context = ((self.misses & 7) as usize * 10 + kind) * 2;
        let hits = 8 - (self.misses & 0xFF).count_ones() as i32;
        write_path(
            inputs,
            first,
            e,
            &self.confidence,
            self.context,
            hits * 64,
            true,
        );
        self.expected = Some(e);
    }

    /// Learns how the guess for `byte` fared.
    pub(crate) fn update(&mut self, byte: u8) {
        if let Some(e) = self.expected {
            train_path(&mut self.confidence, self.context, e, byte);
            self.misses = (self.misses << 1) | u32::from(e != byte);
        }
    }
}

impl Snapshot for Delta {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Delta {
            confidence,
            misses,
            expected,
            context,
        } = self;
        confidence.walk(w);
        misses.walk(w);
        expected.walk(w);
        context.walk(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counting_field_is_expected_one_step_on() {
        // Records of 5 bytes: a constant, a counter, and three constants.
        let data: Vec<u8> = (0..200u8)
            .flat_map(|i| [7, i.wrapping_mul(3), 1, 2, 3])
            .collect();
        let mut d = Delta::new(255);
        let mut inputs = Box::new([[0i32; 4]; 256]);
        let mut hits = 0;
        for pos in 0..data.len() {
            d.predict(&data[..pos], Some(5), None, &mut inputs, 1);
            if let Some(e) = d.expected {
                assert_eq!(pos % 5, 1, "only the changing field");
                hits += usize::from(e == data[pos]);
            }
            d.update(data[pos]);
        }
        assert_eq!(hits, 198);
        // On the expected byte's path, the inputs say its bits, and confidently.
        d.predict(&data, Some(5), None, &mut inputs, 1);
        assert_eq!(d.expected, None, "a constant field next");
        let mut d2 = d.clone();
        d2.predict(&data[..data.len() - 4], Some(5), None, &mut inputs, 1);
        let e = usize::from(d2.expected.unwrap_or(0));
        assert_eq!(e, 199 * 3 % 256);
        for j in 0..8 {
            let c0 = (1 << j) | (e >> (8 - j));
            let bit = (e >> (7 - j)) & 1;
            let (confidence, strength) = (inputs[c0][1], inputs[c0][2]);
            // Toward the expected bit: negative where it is a 0.
            let toward = if bit == 1 { confidence } else { -confidence };
            assert!(toward > 1000, "node {c0}: {confidence}");
            assert_eq!(strength, if bit == 1 { 512 } else { -512 });
            assert_eq!(inputs[c0][0], 0);
            assert_eq!(inputs[c0][3], 0);
        }
        // In a series of numbers the extrapolated byte is expected, even in a field that
        // did not change, and its confidence is learned apart.
        let mut d3 = d.clone();
        d3.predict(&data, Some(5), Some((42, 1)), &mut inputs, 1);
        assert_eq!(d3.expected, Some(42));
        assert_eq!(d3.context, ((d.misses & 7) as usize * 10 + 3) * 2);
    }
}
