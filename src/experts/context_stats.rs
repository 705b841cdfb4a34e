//! Adaptive context statistics: a blended order-0..=N byte model that learns as it codes.
//!
//! For each order `k` the last `k` bytes select a slot of 256 counts. Orders 0 and 1 index
//! their slots directly; higher orders hash the context into a table whose slots carry a
//! 16-bit check so a collision restarts the slot instead of mixing two contexts. The
//! prediction blends the orders from the highest down, PPM-style without exclusion: order `k`
//! takes the share `n / (n + d + 1)` of what is left (`n` = count total, `d` = distinct bytes
//! seen, so contexts that keep meeting new bytes yield to lower orders), and a uniform floor
//! takes the rest. All arithmetic is integer, so predictions are bit-identical everywhere.
//!
//! A lane reset is O(1): slots carry the generation they were written in, and bumping the
//! lane's generation empties every table at once.

use super::{Predictor, Weights};
use crate::error::Error;

/// Highest supported order.
pub const MAX_ORDER: u8 = 3;
/// Default order.
pub const DEFAULT_ORDER: u8 = 3;

/// Counts are halved when a slot's total passes this, so statistics follow the data.
const COUNT_LIMIT: u32 = 4000;
/// Fixed-point one for blend shares: weights stay below `2^31`, well inside `u32`.
const ONE: u64 = 1 << 31;

/// log2 of the slot count of the table for each order (index = order); hashed orders use
/// fewer when the block is smaller, since a block of `n` bytes has at most `n` contexts.
const TABLE_BITS: [u32; 4] = [0, 8, 12, 14];

/// The slots of one order, stored flat so a new table is one zeroed allocation (the OS
/// hands out zero pages lazily, so an unused slot costs nothing).
struct Table {
    /// `counts[slot * 256 + byte]`: occurrences of `byte` after the slot's context.
    counts: Vec<u16>,
    /// Per slot: `[total, distinct, check, generation]`; a slot whose generation is not the
    /// lane's is empty, and one whose check differs belongs to another context.
    meta: Vec<[u32; 4]>,
}

const TOTAL: usize = 0;
const DISTINCT: usize = 1;
const CHECK: usize = 2;
const GENERATION: usize = 3;

impl Table {
    fn new(bits: u32) -> Self {
        Table {
            counts: vec![0; 256 << bits],
            meta: vec![[0; 4]; 1 << bits],
        }
    }

    /// The counts of `slot` if it currently holds the context with `check`.
    fn get(&self, slot: usize, check: u32, generation: u32) -> Option<(&[u16], [u32; 4])> {
        let meta = self.meta[slot];
        (meta[GENERATION] == generation && meta[CHECK] == check && meta[TOTAL] > 0)
            .then(|| (&self.counts[slot * 256..slot * 256 + 256], meta))
    }

    /// Counts `byte` in `slot`, taking the slot over for `check` if it held something else.
    fn add(&mut self, slot: usize, check: u32, generation: u32, byte: u8) {
        let meta = &mut self.meta[slot];
        let counts = &mut self.counts[slot * 256..slot * 256 + 256];
        if meta[GENERATION] != generation || meta[CHECK] != check {
            counts.fill(0);
            *meta = [0, 0, check, generation];
        }
        let c = &mut counts[usize::from(byte)];
        if *c == 0 {
            meta[DISTINCT] += 1;
        }
        *c += 1;
        meta[TOTAL] += 1;
        if meta[TOTAL] > COUNT_LIMIT {
            meta[TOTAL] = 0;
            meta[DISTINCT] = 0;
            for c in counts.iter_mut() {
                *c /= 2;
                meta[TOTAL] += u32::from(*c);
                meta[DISTINCT] += u32::from(*c != 0);
            }
        }
    }
}

/// All statistics of one lane.
struct LaneState {
    /// `tables[k]` holds the slots of order `k`.
    tables: Vec<Table>,
    /// The last 8 bytes, most recent in the low byte.
    history: u64,
    /// Bytes seen since the last reset (orders above this have no context yet).
    seen: u64,
    /// Current generation; slots of other generations count as empty.
    generation: u32,
    /// Slot and check chosen for each order by the last `predict`, reused by `update`.
    chosen: [(usize, u32); MAX_ORDER as usize + 1],
}

/// Blended order-0..=N context model over any number of lanes.
pub struct ContextStats {
    order: u8,
    /// log2 of the slot count of each order's table.
    table_bits: [u32; MAX_ORDER as usize + 1],
    /// Per-lane state, allocated on a lane's first use.
    lanes: Vec<Option<Box<LaneState>>>,
}

impl ContextStats {
    /// A model of the given order (`1..=MAX_ORDER`) driving `lanes` lanes over blocks of
    /// at most `block_size` bytes.
    pub fn new(order: u8, lanes: usize, block_size: u32) -> Self {
        let order = order.clamp(1, MAX_ORDER);
        let block_bits = u32::BITS - block_size.max(256).saturating_sub(1).leading_zeros();
        let mut table_bits = TABLE_BITS;
        for bits in table_bits.iter_mut().skip(2) {
            *bits = (*bits).min(block_bits);
        }
        ContextStats {
            order,
            table_bits,
            lanes: (0..lanes).map(|_| None).collect(),
        }
    }

    /// An upper bound on the memory of a model of `order` over `lanes` lanes of blocks up
    /// to `block_size` bytes: each lane's tables, allocated on its first block.
    pub(crate) fn memory(order: u8, lanes: usize, block_size: u32) -> u64 {
        let model = ContextStats::new(order, 0, block_size);
        let slot = (256 * std::mem::size_of::<u16>() + std::mem::size_of::<[u32; 4]>()) as u64;
        let per_lane: u64 = model.table_bits[..=usize::from(model.order)]
            .iter()
            .map(|&bits| slot << bits)
            .sum();
        lanes as u64 * (per_lane + 4096)
    }

    fn new_lane(order: u8, table_bits: &[u32]) -> Box<LaneState> {
        Box::new(LaneState {
            tables: (0..=usize::from(order))
                .map(|k| Table::new(table_bits[k]))
                .collect(),
            history: 0,
            seen: 0,
            generation: 1,
            chosen: [(0, 0); MAX_ORDER as usize + 1],
        })
    }

    /// Slot index and check for order `k` of a lane's context.
    fn locate(history: u64, k: usize, bits: u32) -> (usize, u32) {
        match k {
            0 => (0, 0),
            1 => ((history & 0xFF) as usize, 0),
            _ => {
                let ctx = history & ((1u64 << (8 * k)) - 1);
                let h = (ctx ^ ((k as u64) << 56)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                ((h >> (64 - bits)) as usize, (h >> 16) as u32 & 0xFFFF)
            }
        }
    }
}

impl Predictor for ContextStats {
    fn lanes(&self) -> usize {
        self.lanes.len()
    }

    fn reset_lane(&mut self, lane: usize, _block_len: usize) {
        let (order, bits) = (self.order, &self.table_bits);
        let state = self.lanes[lane].get_or_insert_with(|| Self::new_lane(order, bits));
        state.history = 0;
        state.seen = 0;
        state.generation = state.generation.wrapping_add(1);
        if state.generation == 0 {
            // Wrapped after 2^32 resets: start afresh so no stale slot looks current.
            *state = Self::new_lane(order, bits);
        }
    }

    fn predict(&mut self, lanes: &[usize], out: &mut [Weights]) -> Result<(), Error> {
        let (order, bits) = (self.order, &self.table_bits);
        for (&lane, weights) in lanes.iter().zip(out.iter_mut()) {
            let state = self.lanes[lane].get_or_insert_with(|| Self::new_lane(order, bits));
            let mut acc = [0u64; 256];
            let mut rest = ONE;
            let top = usize::from(order).min(state.seen as usize);
            for k in (0..=top).rev() {
                let (slot, check) = Self::locate(state.history, k, self.table_bits[k]);
                state.chosen[k] = (slot, check);
                let Some((counts, meta)) = state.tables[k].get(slot, check, state.generation)
                else {
                    continue;
                };
                let n = u64::from(meta[TOTAL]);
                let share = rest * n / (n + u64::from(meta[DISTINCT]) + 1);
                let per_count = share / n;
                for (a, &c) in acc.iter_mut().zip(counts.iter()) {
                    *a += per_count * u64::from(c);
                }
                rest -= per_count * n;
            }
            let floor = rest / 256;
            for (w, a) in weights.iter_mut().zip(acc.iter()) {
                // acc + floor <= ONE < 2^32.
                *w = (a + floor) as u32;
            }
        }
        Ok(())
    }

    fn update(&mut self, lanes: &[usize], bytes: &[u8]) {
        let (order, bits) = (self.order, &self.table_bits);
        for (&lane, &byte) in lanes.iter().zip(bytes.iter()) {
            let state = self.lanes[lane].get_or_insert_with(|| Self::new_lane(order, bits));
            let top = usize::from(order).min(state.seen as usize);
            for k in 0..=top {
                let (slot, check) = state.chosen[k];
                state.tables[k].add(slot, check, state.generation, byte);
            }
            state.history = (state.history << 8) | u64::from(byte);
            state.seen += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_repeating_pattern() {
        let mut model = ContextStats::new(3, 1, 1 << 20);
        let pattern = b"abcabcabc";
        let mut out = [[0u32; 256]];
        for _ in 0..50 {
            for &b in pattern {
                model.predict(&[0], &mut out).unwrap();
                model.update(&[0], &[b]);
            }
        }
        model.predict(&[0], &mut out).unwrap();
        let total: u64 = out[0].iter().map(|&w| u64::from(w)).sum();
        // After "...abc" the next byte is 'a' with high confidence.
        assert!(u64::from(out[0][usize::from(b'a')]) * 10 > total * 9);
    }

    #[test]
    fn reset_forgets_everything() {
        let mut model = ContextStats::new(3, 2, 1 << 20);
        let mut fresh = [[0u32; 256]];
        model.predict(&[1], &mut fresh).unwrap();
        for &b in b"hello world hello world" {
            let mut out = [[0u32; 256]];
            model.predict(&[1], &mut out).unwrap();
            model.update(&[1], &[b]);
        }
        model.reset_lane(1, 1 << 20);
        let mut after = [[0u32; 256]];
        model.predict(&[1], &mut after).unwrap();
        assert_eq!(fresh, after);
    }
}
