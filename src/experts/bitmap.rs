//! Bilevel images: a specialist that reads binary records as rows of pixels, one bit per
//! pixel, the leftmost in a byte's high bit (fax pages, scanned documents, icons and fonts
//! stored as bitmaps).
//!
//! Each bit decision is a pixel, and the pixels already coded around it (to the left in
//! its row, and in the rows above, one record length apart) predict it far better than
//! any byte context can: a byte context sees the byte above as a whole, a pixel context
//! the few pixels that touch this one. The contexts are templates of neighbouring pixels,
//! as in JBIG's (ITU-T T.82) and paq8px's 1-bit image model, each indexing its own table
//! of adaptive probabilities directly; the gate weighs them with the other experts.

use crate::logistic::StateMap;

/// Mixer inputs: one per template.
pub(crate) const INPUTS: usize = 5;

/// The shortest record taken for a bitmap's row: 32 pixels.
const MIN_ROW: usize = 4;

/// The largest multiple of the rows' length taken for the same rows.
const MAX_MULTIPLE: usize = 4;

/// log2 of the cells of the hashed, largest template.
const HASHED_BITS: u32 = 20;

/// Each template's cells, as log2: the small ones direct, the last hashed.
const TEMPLATE_BITS: [u32; INPUTS] = [4, 10, 11, 16, HASHED_BITS];

/// A template's counters settle to averages over this many pixels.
const LIMIT: u32 = 127;

/// The JBIG template's mean error (12-bit) below which the rows are taken for a bitmap's:
/// records of other data (tables, code) that the templates predict poorly leave the gate
/// as it was.
const ERROR_ON: u32 = 512;

/// The pixels around the next byte, and the tables of the templates over them.
#[derive(Clone)]
pub(crate) struct Bitmap {
    maps: StateMap,
    /// Where each template's cells start in `maps`.
    offsets: [usize; INPUTS],
    /// The three rows above, 24 pixels each: the byte above in bits 8..16, with the bytes
    /// before and after it on either side.
    above: [u32; 3],
    /// The current row's last 16 pixels before the byte (the newest in bit 0).
    left: u32,
    /// Whether the templates run for this byte (a record length of a bitmap's row is
    /// known and the rows above are in the block).
    on: bool,
    /// Per bit of the byte (its depth in the byte's tree), the cell of each template.
    cells: [[u32; INPUTS]; 8],
    /// The JBIG template's mean absolute error over the last ~4096 pixels (12-bit, times
    /// 2^8).
    error: u32,
    /// The row length the templates take: the record length, but one that a record
    /// length detected later is a small multiple of.
    row: Option<usize>,
}

impl Bitmap {
    pub(crate) fn new() -> Self {
        let mut offsets = [0; INPUTS];
        let mut total = 0;
        for (o, bits) in offsets.iter_mut().zip(TEMPLATE_BITS) {
            *o = total;
            total += 1 << bits;
        }
        Bitmap {
            maps: StateMap::new(total, LIMIT),
            offsets,
            above: [0; 3],
            left: 0,
            on: false,
            cells: [[0; INPUTS]; 8],
            error: 2048 << 8,
            row: None,
        }
    }

    /// Heap bytes of one.
    pub(crate) fn table_bytes() -> u64 {
        TEMPLATE_BITS.iter().map(|&b| 4u64 << b).sum()
    }

    /// Reads the pixels around the next byte, `bytes` being the block so far, where
    /// `row` (a record length, in bytes) is known.
    pub(crate) fn start_byte(&mut self, bytes: &[u8], row: Option<usize>) {
        let p = bytes.len();
        // A page's rows recur at twice and three times their length as well, and the
        // record length follows whichever distance collected the latest votes: the rows
        // stay as they were while that is a multiple of them (up to 4).
        if let Some(new) = row {
            self.row = match self.row {
                Some(old) if new % old == 0 && new / old <= MAX_MULTIPLE => Some(old),
                _ => Some(new),
            };
        }
        let row = row.and(self.row);
        self.on = match row {
            Some(r) => r >= MIN_ROW && p > 3 * r + 1,
            None => false,
        };
        if !self.on {
            return;
        }
        let r = row.unwrap_or(0);
        let byte = |i: usize| u32::from(bytes[i]);
        for (k, a) in self.above.iter_mut().enumerate() {
            let at = p - (k + 1) * r;
            *a = byte(at - 1) << 16 | byte(at) << 8 | byte(at + 1);
        }
        self.left = byte(p - 2) << 8 | byte(p - 1);
    }

    /// Whether the templates run for this byte: rows of a record length are known.
    pub(crate) fn on(&self) -> bool {
        self.on
    }

    /// Whether the gate takes the templates' inputs and pixel contexts for this byte: they
    /// run and have predicted well.
    pub(crate) fn active(&self) -> bool {
        self.on && self.error < ERROR_ON << 8
    }

    /// Computes the templates for node `c0` (the byte's bits so far under a leading 1),
    /// remembering their cells for [`Bitmap::learn`]. Where [`Bitmap::active`], writes
    /// their inputs into `row` and returns the node's pixel context (8 bits: the two
    /// pixels to the left, the five above, the one two rows above); else computes the
    /// JBIG template alone, which judges whether the rows are a bitmap's, and leaves
    /// `row` as it is.
    #[inline]
    pub(crate) fn node_inputs(&mut self, c0: usize, row: &mut [i32]) -> Option<usize> {
        let j = c0.ilog2();
        // The pixel's place in the rows above: bit 8 + t, left of it the higher bits.
        let t = 7 - j;
        let near = |a: u32, k: u32| (a >> (8 + t - k)) & ((1 << (2 * k + 1)) - 1);
        let left = (self.left << j) | (c0 as u32 & ((1 << j) - 1));
        let [n, nn, nnn] = self.above;
        // JBIG's three-line template.
        let jbig = (left & 3) | near(n, 2) << 2 | near(nn, 1) << 7;
        let j = j as usize;
        self.cells[j][1] = (self.offsets[1] + jbig as usize) as u32;
        if !self.active() {
            // Only the template that judges whether the rows are a bitmap's learns.
            return None;
        }
        let contexts: [u32; INPUTS] = [
            // The pixel above and the one to the left, with the one above that.
            (left & 1) | near(n, 0) << 1 | near(nn, 0) << 2,
            jbig,
            // Runs along the row, under the pixels above.
            (left & 0xFF) | near(n, 1) << 8,
            // A wider neighbourhood.
            (left & 0xF) | near(n, 3) << 4 | near(nn, 2) << 11,
            // The widest, hashed.
            {
                let key = u64::from(left & 0x3F)
                    | u64::from(near(n, 4)) << 6
                    | u64::from(near(nn, 3)) << 15
                    | u64::from(near(nnn, 2)) << 22;
                (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - HASHED_BITS)) as u32
            },
        ];
        for (k, (&cx, x)) in contexts.iter().zip(row.iter_mut()).enumerate() {
            let cell = self.offsets[k] + cx as usize;
            self.cells[j][k] = cell as u32;
            *x = self.maps.st(cell);
        }
        Some(((left & 3) | near(n, 2) << 2 | near(nn, 0) << 7) as usize)
    }

    /// Trains the cells the templates used on the bits of `byte`.
    pub(crate) fn learn(&mut self, byte: u8) {
        if !self.on {
            return;
        }
        // The templates' inputs ran for this byte, or only the JBIG template.
        let all = self.active();
        for (j, cells) in self.cells.iter().enumerate() {
            let bit = u32::from(byte >> (7 - j)) & 1;
            let p = self.maps.p(cells[1] as usize) as u32;
            let e = if bit != 0 { 4096 - p } else { p };
            self.error = self.error - (self.error >> 12) + (e << 8 >> 12);
            if all {
                for &cell in cells {
                    self.maps.update(cell as usize, bit);
                }
            } else {
                self.maps.update(cells[1] as usize, bit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_see_the_pixels_around_the_one_coded() {
        // Rows of 4 bytes; one black pixel in the row above, bit 4 of the byte above.
        let mut bytes = vec![0u8; 18];
        bytes[14] = 0b0001_0000;
        let mut b = Bitmap::new();
        b.start_byte(&bytes, Some(4));
        assert!(
            b.on() && !b.active(),
            "runs, but has not yet predicted well"
        );
        let mut row = [i32::MIN; INPUTS];
        assert_eq!(b.node_inputs(1, &mut row), None);
        assert_eq!(
            row,
            [i32::MIN; INPUTS],
            "an inactive bitmap leaves its columns alone"
        );
        b.error = 0;
        // Three pixels of the byte coded (c0 = 0b1000): the fourth is under the black one,
        // the middle of the five above.
        assert_eq!(b.node_inputs(0b1000, &mut row), Some(0b00100 << 2));
        // Two coded: the black pixel is above and to the right.
        assert_eq!(b.node_inputs(0b100, &mut row), Some(0b00010 << 2));
        // Six coded, the last two of them black: the two pixels to the left.
        assert_eq!(b.node_inputs(0b100_0011, &mut row), Some(0b11));
        // Rows too short for a bitmap, or not yet three rows above: the templates rest.
        b.start_byte(&bytes[..12], Some(4));
        assert!(!b.on());
        b.start_byte(&bytes, Some(MIN_ROW - 1));
        assert!(!b.on());
        b.start_byte(&bytes, None);
        assert!(!b.on());
    }

    #[test]
    fn the_rows_stay_while_the_record_length_is_a_multiple_of_them() {
        let bytes = vec![0u8; 100];
        let mut b = Bitmap::new();
        for (detected, rows) in [(4, 4), (8, 4), (16, 4), (12, 4), (20, 20), (5, 5), (6, 6)] {
            b.start_byte(&bytes, Some(detected));
            assert_eq!(b.row, Some(rows), "{detected}");
        }
        b.start_byte(&bytes, None);
        assert!(!b.on() && b.row == Some(6));
    }

    #[test]
    fn the_templates_learn_the_pixels_that_came() {
        // A page of vertical stripes: each pixel is the one above it.
        let bytes: Vec<u8> = [0b1100_1010u8; 8].repeat(256);
        let mut b = Bitmap::new();
        let mut row = [0; INPUTS];
        for (i, &byte) in bytes.iter().enumerate() {
            b.start_byte(&bytes[..i], Some(8));
            if b.on() {
                for j in 0..8 {
                    b.node_inputs((1 << j) | usize::from(byte) >> (8 - j), &mut row);
                }
            }
            b.learn(byte);
        }
        assert!(b.active());
        b.start_byte(&bytes, Some(8));
        b.node_inputs(1, &mut row);
        assert!(
            row.iter().all(|&x| x > 1000),
            "the first pixel is black: {row:?}"
        );
        b.node_inputs(0b111, &mut row);
        assert!(
            row.iter().all(|&x| x < -1000),
            "the third is white: {row:?}"
        );
    }
}
