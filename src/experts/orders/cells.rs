//! Spreadsheet cells in BIFF records, the binary `.xls` format's (format version 13 on).
//!
//! A BIFF stream is a chain of records: a 16-bit type, a 16-bit length and that many
//! bytes of body. A cell's body starts with its row and column, and a sheet is written
//! row by row, so the record that says a value sits a whole row (thousands of bytes, not
//! a fixed distance: rows differ in their cells) after the one that said the value above
//! it. The record contexts find the cells' period but not the column; keyed on the
//! column, a cell's type and value are the column's (`docs/tuning.md`, "Spreadsheet
//! cells").
//!
//! Nothing here reads a file name or a signature: a chain of records is followed once
//! three plausible records in a row end where the next begins, wherever a block starts.

use super::mix;
use crate::snapshot::{Snapshot, Walker};

/// Positions kept for finding a chain: more than the longest record.
const RING: usize = 1 << 14;

/// BIFF8's longest record body (BIFF2-5's is 2,080 bytes).
const MAX_BODY: u16 = 8224;

/// Plausible records in a row before a chain is followed.
const LOCK: u8 = 3;

/// Cells in a chain before the cell contexts run: a coincidental chain of records
/// seldom has cells of a cell's length.
const CELLS_ON: u8 = 8;

/// The value bytes kept per column (a cell's body past its row and column).
const VALUE: usize = 12;

/// Columns told apart (a sheet's columns beyond it share).
const COLUMNS: usize = 256;

/// A record header that could be a BIFF record's: a type below `0x1000` (BIFF's are),
/// other than 0 (runs of zero bytes would chain), and a body no longer than BIFF allows.
fn plausible(ty: u16, len: u16) -> bool {
    (1..0x1000).contains(&ty) && len <= MAX_BODY
}

/// Record types whose body starts with a row and a column: BIFF2's BLANK, INTEGER,
/// NUMBER, LABEL, BOOLERR and FORMULA; BIFF3-8's versions of those, RK, MULRK, MULBLANK,
/// RSTRING and LABELSST.
fn cell(ty: u16, len: u16) -> bool {
    len >= 6
        && matches!(
            ty,
            0x0001..=0x0006 | 0x0201..=0x0206 | 0x0406 | 0x027E | 0x00BD | 0x00BE | 0x00D6 | 0x00FD
        )
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// The records being read, and each column's last cell.
#[derive(Clone, Default)]
pub(super) struct Cells {
    /// Per position (modulo [`RING`]), how many plausible records in a row end there.
    chained: Vec<u8>,
    /// Whether a chain is followed; while it is, where the current record starts (its
    /// header) in the history.
    locked: bool,
    start: usize,
    /// The current record's type and body length, once its header is read.
    ty: u16,
    len: u16,
    /// The current cell's row and column, once read, and its value bytes so far.
    row: u16,
    col: u16,
    value: [u8; VALUE],
    /// The record before the current one: its type and length, and if it was a cell its
    /// row and column.
    prev_ty: u16,
    prev_len: u16,
    prev_row: u16,
    prev_col: u16,
    /// Per column, the type and value bytes of its last cell.
    above_ty: Vec<u16>,
    above: Vec<[u8; VALUE]>,
    /// The last cell's value bytes, whatever its column.
    left: [u8; VALUE],
    /// Cells read since the chain was found (counted to 255; [`CELLS_ON`] turn the
    /// contexts on).
    cells: u8,
}

impl Cells {
    pub(super) fn new() -> Self {
        Cells {
            chained: vec![0; RING],
            above_ty: vec![0; COLUMNS],
            above: vec![[0; VALUE]; COLUMNS],
            ..Cells::default()
        }
    }

    /// Forgets the block, keeping the tables' allocations.
    pub(super) fn reset(&mut self) {
        let Cells {
            mut chained,
            mut above_ty,
            mut above,
            ..
        } = std::mem::take(self);
        chained.fill(0);
        above_ty.fill(0);
        above.fill([0; VALUE]);
        *self = Cells {
            chained,
            above_ty,
            above,
            ..Cells::default()
        };
    }

    /// Whether the next byte, at `pos` in the history, is in a cell, or in the header of
    /// the record after one, of a chain of records that has had cells.
    pub(super) fn in_cells(&self, pos: usize) -> bool {
        let (ty, len) = match pos.checked_sub(self.start) {
            Some(0..4) => (self.prev_ty, self.prev_len),
            Some(_) => (self.ty, self.len),
            None => return false,
        };
        self.locked && self.cells >= CELLS_ON && cell(ty, len)
    }

    /// Takes the byte just coded, the last of `bytes` (the history), the block's bytes
    /// starting at `origin`.
    pub(super) fn update(&mut self, bytes: &[u8], origin: usize) {
        let pos = bytes.len();
        if pos >= origin + 4 {
            // A header that ends here: the chain it continues goes on where its body ends.
            let h = pos - 4;
            let before = std::mem::take(&mut self.chained[h % RING]);
            let (ty, len) = (u16_at(bytes, h), u16_at(bytes, h + 2));
            if plausible(ty, len) {
                let next = &mut self.chained[(pos + usize::from(len)) % RING];
                *next = (*next).max(before.saturating_add(1));
                if !self.locked && before >= LOCK - 1 {
                    self.locked = true;
                    self.start = h;
                    self.prev_ty = 0;
                    self.prev_len = 0;
                    self.cells = 0;
                }
            }
        }
        if !self.locked {
            return;
        }
        let s = self.start;
        if pos < s {
            // Only a state restored into a shorter history: start over.
            self.locked = false;
            return;
        }
        if pos == s + 4 {
            (self.ty, self.len) = (u16_at(bytes, s), u16_at(bytes, s + 2));
            if !plausible(self.ty, self.len) {
                self.locked = false;
                return;
            }
            self.value = [0; VALUE];
        } else if pos > s + 4 && cell(self.ty, self.len) {
            let o = pos - 1 - (s + 4);
            if o == 3 {
                self.row = u16_at(bytes, s + 4);
                self.col = u16_at(bytes, s + 6);
            } else if (4..4 + VALUE).contains(&o) {
                self.value[o - 4] = bytes[pos - 1];
            }
        }
        if pos >= s + 4 && pos == s + 4 + usize::from(self.len) {
            if cell(self.ty, self.len) {
                let c = usize::from(self.col) % COLUMNS;
                self.above_ty[c] = self.ty;
                self.above[c] = self.value;
                self.left = self.value;
                self.prev_row = self.row;
                self.prev_col = self.col;
                self.cells = self.cells.saturating_add(1);
            }
            self.prev_ty = self.ty;
            self.prev_len = self.len;
            self.start = pos;
        }
    }

    /// The next byte's context `variant` (0-2) where [`Cells::in_cells`], `bytes` the
    /// history: for the word, column and shape slots.
    pub(super) fn context(&self, variant: u8, bytes: &[u8]) -> u64 {
        let pos = bytes.len();
        let Some(k) = pos.checked_sub(self.start) else {
            return 0;
        };
        // The last `n` bytes of the record so far.
        let last = |n: usize| {
            bytes[pos - n.min(k)..pos]
                .iter()
                .fold(0u64, |a, &b| a << 8 | u64::from(b))
        };
        if k < 4 {
            // The next record's header: a cell like the last, or the type its column had.
            let next_col = usize::from(self.prev_col.wrapping_add(1)) % COLUMNS;
            let before = match variant {
                0 => self.above_ty[next_col],
                1 => self.prev_len,
                _ => self.prev_col,
            };
            let what = u64::from(before) << 16 | u64::from(self.prev_ty);
            return mix(u64::from(variant) << 8 | k as u64, mix(last(k), what));
        }
        let o = k - 4;
        let at = u64::from(variant) << 8 | 4 | (o.min(255) as u64) << 16 | u64::from(self.ty) << 32;
        if o < 4 {
            // The row and column: the last cell's, or one column on.
            let what = match variant {
                0 => u64::from(self.prev_row) | u64::from(self.prev_col) << 16,
                1 => u64::from(self.prev_ty),
                _ => 0,
            };
            return mix(at, mix(last(o), what));
        }
        let i = o - 4;
        let c = usize::from(self.col) % COLUMNS;
        let above = |j: usize| u64::from(self.above[c].get(j).copied().unwrap_or(0));
        let left = u64::from(self.left.get(i).copied().unwrap_or(0));
        let so_far = last(i.min(3));
        let col = u64::from(self.col);
        let what = match variant {
            0 => {
                let above_ty = u64::from(self.above_ty[c]);
                mix(
                    col | above_ty << 16 | above(i) << 32 | above(i + 1) << 40,
                    so_far,
                )
            }
            1 => mix(col, so_far),
            _ => above(i) | left << 8 | (so_far & 0xFF) << 16,
        };
        mix(at, what)
    }

    /// The place of the next byte, at `pos` in the history, in its record, for the gate's
    /// weight sets: the header's bytes 0-3, the body's from 4 (to 15).
    pub(super) fn place(&self, pos: usize) -> usize {
        pos.saturating_sub(self.start).min(15)
    }
}

impl Snapshot for Cells {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Cells {
            chained,
            locked,
            start,
            ty,
            len,
            row,
            col,
            value,
            prev_ty,
            prev_len,
            prev_row,
            prev_col,
            above_ty,
            above,
            left,
            cells,
        } = self;
        // Fixed sizes, compared rather than loaded: the tables are indexed without checks.
        w.check_len(chained.len());
        u8::walk_slice(chained, w);
        locked.walk(w);
        start.walk(w);
        for x in [ty, len, row, col, prev_ty, prev_len, prev_row, prev_col] {
            x.walk(w);
        }
        value.walk(w);
        w.check_len(above_ty.len());
        u16::walk_slice(above_ty, w);
        w.check_len(above.len());
        <[u8; VALUE]>::walk_slice(above, w);
        left.walk(w);
        cells.walk(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::noise;

    /// A BIFF2 sheet: a BOF record, then `rows` rows of a ROW record and INTEGER cells in
    /// columns 0-5, each column's value its own (column `c` holds `c * 7`).
    fn sheet(rows: u16) -> Vec<u8> {
        let mut out = vec![0x09, 0x00, 0x04, 0x00, 0x02, 0x00, 0x10, 0x00];
        for r in 0..rows {
            out.extend([0x08, 0x00, 0x02, 0x00]);
            out.extend(r.to_le_bytes());
            for c in 0..6u16 {
                out.extend([0x02, 0x00, 0x09, 0x00]);
                out.extend(r.to_le_bytes());
                out.extend(c.to_le_bytes());
                out.extend([0, 0, 0]);
                out.extend((c * 7).to_le_bytes());
            }
        }
        out
    }

    /// Runs `data` through a tracker from the block's start; returns it and, per byte,
    /// whether the cell contexts were in force for it.
    fn run(data: &[u8]) -> (Cells, Vec<bool>) {
        let mut cells = Cells::new();
        let mut on = Vec::new();
        for i in 0..data.len() {
            on.push(cells.in_cells(i));
            cells.update(&data[..=i], 0);
        }
        (cells, on)
    }

    #[test]
    fn a_chain_of_cells_is_followed_and_noise_or_text_is_not() {
        let data = sheet(40);
        let (_, on) = run(&data);
        // Three records find the chain, eight cells turn the contexts on; from then every
        // cell's bytes and the header after a cell are in force, a ROW record's are not.
        let first = on.iter().position(|&x| x).unwrap();
        assert!(first < 8 + 4 * (4 + 2 + 6 * 13), "{first}");
        let last_row = data.len() - (4 + 2 + 6 * 13);
        assert!(!on[last_row + 4], "a ROW record's body");
        assert!(on[last_row + 6 + 4 + 4], "a cell's body");
        let prose = b"A chain of records is followed once three end where the next begins.\n";
        for data in [noise(1 << 16, 3), prose.repeat(400)] {
            assert!(!run(&data).1.iter().any(|&x| x));
        }
    }

    #[test]
    fn a_cells_value_context_is_its_columns() {
        let data = sheet(40);
        let (cells, _) = run(&data);
        // The last cell's first value byte (column 5) and that of the row before.
        let at = |rows_back: usize| data.len() - rows_back * (4 + 2 + 6 * 13) - 2;
        let context = |rows_back: usize, variant| {
            let (c, _) = run(&data[..at(rows_back)]);
            c.context(variant, &data[..at(rows_back)])
        };
        for variant in 0..3 {
            assert_eq!(context(0, variant), context(1, variant), "{variant}");
        }
        // Another column's differs.
        let (c, _) = run(&data[..at(0) - 13]);
        assert_ne!(c.context(1, &data[..at(0) - 13]), context(0, 1));
        let mut reset = cells.clone();
        reset.reset();
        assert!(!reset.in_cells(data.len()));
    }
}
