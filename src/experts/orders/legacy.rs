//! The context statistics as format versions 2 to 8 read them: every node of the byte's
//! high nibble, then of the low nibbles wanted, in one pass each (`mixer::legacy` codes the
//! byte from them), where version 9 on reads the nodes on the byte's path one by one
//! ([`Orders::node_inputs`]). Frozen with the versions that run it.

use super::{input_in, AdaptShape, Orders};
use crate::logistic::StateMap;

impl Orders {
    /// Looks up every context's high-nibble slot and writes the inputs of nodes `1..16`
    /// (`inputs[c0][first + k]` for context `k`). The contexts were computed when the last
    /// byte was learned (or at the reset).
    pub(crate) fn predict_high<const N: usize>(
        &mut self,
        inputs: &mut [[i32; N]; 256],
        first: usize,
    ) {
        // Text slots write their own columns node by node (`node_inputs`), coding bit by bit.
        debug_assert!(self.text_slots.is_none());
        self.lookup_high();
        // Inputs only once every lookup has been issued, so their cache misses overlap.
        for k in 0..self.kinds.len() {
            let col = first + k;
            match self.found[k].high {
                Some(s) => {
                    let slot = &self.table[s as usize];
                    for c0 in 1..16usize {
                        let j = c0.ilog2() as usize;
                        let row = self.adapt_row(k, j);
                        inputs[c0][col] = input(&self.adapt, row, slot[c0], self.adapt_shape, true);
                    }
                }
                None => {
                    for row in inputs.iter_mut().take(16).skip(1) {
                        row[col] = 0;
                    }
                }
            }
        }
    }

    /// Looks up every context's slots for the low nibbles under the high nibbles in
    /// `nibbles` (a bit set) and writes the inputs of their nodes
    /// (`c0 = (16 + nibble) << j | low bits`). All lookups are issued before any input is
    /// written, so their cache misses overlap.
    pub(crate) fn predict_low<const N: usize>(
        &mut self,
        nibbles: u16,
        inputs: &mut [[i32; N]; 256],
        first: usize,
    ) {
        for k in 0..self.kinds.len() {
            let hash = self.found[k].hash;
            for nibble in 0..16 {
                if nibbles & (1 << nibble) != 0 && !self.found[k].idle {
                    self.found[k].low[nibble] = self.lookup(self.place_low(hash, nibble));
                }
            }
        }
        for k in 0..self.kinds.len() {
            let col = first + k;
            for nibble in 0..16 {
                if nibbles & (1 << nibble) == 0 {
                    continue;
                }
                let slot = self.found[k].low[nibble].map(|s| &self.table[s as usize]);
                for j in 0..4 {
                    let base = (16 + nibble) << j;
                    for lowbits in 0..(1usize << j) {
                        inputs[base + lowbits][col] = slot.map_or(0, |slot| {
                            input(
                                &self.adapt,
                                self.adapt_row(k, j + 4),
                                slot[(1 << j) + lowbits],
                                self.adapt_shape,
                                true,
                            )
                        });
                    }
                }
            }
        }
    }
}

/// Mixer input of a counter whose adapt rows are `row` ([`Orders::adapt_row`]): the
/// stretch of what its state predicts, or 0 for a counter that has never been updated.
#[inline]
fn input(adapt: &StateMap, row: usize, cell: u16, shape: AdaptShape, on_path: bool) -> i32 {
    if shape.recent() {
        input_in::<true>(adapt, row, cell, on_path)
    } else {
        input_in::<false>(adapt, row, cell, on_path)
    }
}
