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

/// Highest supported order.
pub const MAX_ORDER: u8 = 3;
/// Default order.
pub const DEFAULT_ORDER: u8 = 3;

/// Counts are halved when a slot's total passes this, so statistics follow the data.
const COUNT_LIMIT: u32 = 4000;
/// Fixed-point one for blend shares: weights stay below `2^31`, well inside `u32`.
const ONE: u64 = 1 << 31;

/// log2 of the slot count of the hashed table for each order (index = order).
const TABLE_BITS: [u32; 4] = [0, 8, 12, 14];

/// One context's statistics.
#[derive(Clone)]
struct Slot {
    /// Occurrences of each next byte in this context.
    counts: [u16; 256],
    /// Sum of `counts`.
    total: u32,
    /// Number of non-zero entries of `counts`.
    distinct: u32,
    /// Hash check of the context that owns the slot (0 for directly indexed orders).
    check: u16,
    /// Lane generation in which the slot was last written; older means empty.
    generation: u32,
}

impl Slot {
    const EMPTY: Slot = Slot {
        counts: [0; 256],
        total: 0,
        distinct: 0,
        check: 0,
        generation: 0,
    };

    fn add(&mut self, byte: u8) {
        let c = &mut self.counts[usize::from(byte)];
        if *c == 0 {
            self.distinct += 1;
        }
        *c += 1;
        self.total += 1;
        if self.total > COUNT_LIMIT {
            self.total = 0;
            self.distinct = 0;
            for c in self.counts.iter_mut() {
                *c /= 2;
                self.total += u32::from(*c);
                self.distinct += u32::from(*c != 0);
            }
        }
    }
}

/// All statistics of one lane.
struct LaneState {
    /// `tables[k]` holds the slots of order `k`.
    tables: Vec<Vec<Slot>>,
    /// The last 8 bytes, most recent in the low byte.
    history: u64,
    /// Bytes seen since the last reset (orders above this have no context yet).
    seen: u64,
    /// Current generation; slots of other generations count as empty.
    generation: u32,
    /// Slot index chosen for each order by the last `predict`, reused by `update`.
    chosen: [usize; MAX_ORDER as usize + 1],
}

/// Blended order-0..=N context model over any number of lanes.
pub struct ContextStats {
    order: u8,
    /// Per-lane state, allocated on a lane's first reset so unused lanes cost nothing.
    lanes: Vec<Option<Box<LaneState>>>,
}

impl ContextStats {
    /// A model of the given order (`1..=MAX_ORDER`) driving `lanes` lanes.
    pub fn new(order: u8, lanes: usize) -> Self {
        let order = order.clamp(1, MAX_ORDER);
        ContextStats {
            order,
            lanes: (0..lanes).map(|_| None).collect(),
        }
    }

    fn new_lane(order: u8) -> Box<LaneState> {
        Box::new(LaneState {
            tables: (0..=usize::from(order))
                .map(|k| vec![Slot::EMPTY; 1 << TABLE_BITS[k]])
                .collect(),
            history: 0,
            seen: 0,
            generation: 1,
            chosen: [0; MAX_ORDER as usize + 1],
        })
    }

    /// Slot index and check for order `k` of a lane's context.
    fn locate(history: u64, k: usize) -> (usize, u16) {
        match k {
            0 => (0, 0),
            1 => ((history & 0xFF) as usize, 0),
            _ => {
                let ctx = history & ((1u64 << (8 * k)) - 1);
                let h = (ctx ^ ((k as u64) << 56)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                ((h >> (64 - TABLE_BITS[k])) as usize, (h >> 16) as u16)
            }
        }
    }
}

impl Predictor for ContextStats {
    fn lanes(&self) -> usize {
        self.lanes.len()
    }

    fn reset_lane(&mut self, lane: usize) {
        let order = self.order;
        let state = self.lanes[lane].get_or_insert_with(|| Self::new_lane(order));
        state.history = 0;
        state.seen = 0;
        state.generation = state.generation.wrapping_add(1);
        if state.generation == 0 {
            // Wrapped after 2^32 resets: clear for real so no stale slot looks current.
            for table in state.tables.iter_mut() {
                table.fill(Slot::EMPTY);
            }
            state.generation = 1;
        }
    }

    fn predict(&mut self, lanes: &[usize], out: &mut [Weights]) {
        for (&lane, weights) in lanes.iter().zip(out.iter_mut()) {
            let state = self.lanes[lane].get_or_insert_with(|| Self::new_lane(self.order));
            let mut acc = [0u64; 256];
            let mut rest = ONE;
            let top = usize::from(self.order).min(state.seen as usize);
            for k in (0..=top).rev() {
                let (index, check) = Self::locate(state.history, k);
                state.chosen[k] = index;
                let slot = &state.tables[k][index];
                if slot.generation != state.generation || slot.check != check || slot.total == 0
                {
                    continue;
                }
                let n = u64::from(slot.total);
                let share = rest * n / (n + u64::from(slot.distinct) + 1);
                let per_count = share / n;
                for (a, &c) in acc.iter_mut().zip(slot.counts.iter()) {
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
    }

    fn update(&mut self, lanes: &[usize], bytes: &[u8]) {
        for (&lane, &byte) in lanes.iter().zip(bytes.iter()) {
            let state = self.lanes[lane].get_or_insert_with(|| Self::new_lane(self.order));
            let top = usize::from(self.order).min(state.seen as usize);
            for k in 0..=top {
                let (_, check) = Self::locate(state.history, k);
                let slot = &mut state.tables[k][state.chosen[k]];
                if slot.generation != state.generation || slot.check != check {
                    *slot = Slot::EMPTY;
                    slot.generation = state.generation;
                    slot.check = check;
                }
                slot.add(byte);
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
        let mut model = ContextStats::new(3, 1);
        let pattern = b"abcabcabc";
        let mut out = [[0u32; 256]];
        for _ in 0..50 {
            for &b in pattern {
                model.predict(&[0], &mut out);
                model.update(&[0], &[b]);
            }
        }
        model.predict(&[0], &mut out);
        let total: u64 = out[0].iter().map(|&w| u64::from(w)).sum();
        // After "...abc" the next byte is 'a' with high confidence.
        assert!(u64::from(out[0][usize::from(b'a')]) * 10 > total * 9);
    }

    #[test]
    fn reset_forgets_everything() {
        let mut model = ContextStats::new(3, 2);
        let mut fresh = [[0u32; 256]];
        model.predict(&[1], &mut fresh);
        for &b in b"hello world hello world" {
            let mut out = [[0u32; 256]];
            model.predict(&[1], &mut out);
            model.update(&[1], &[b]);
        }
        model.reset_lane(1);
        let mut after = [[0u32; 256]];
        model.predict(&[1], &mut after);
        assert_eq!(fresh, after);
    }
}
