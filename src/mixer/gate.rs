//! The gate's parts: online logistic mixers (weight sets chosen per node and context) and
//! adaptive probability maps that calibrate their output.

use super::lane::{FRESH, MAX_INPUTS};
use crate::hint::prefetch;
use crate::logistic::{squash, STRETCH_MAX};
use crate::snapshot::{Snapshot, Walker};
use crate::tracked::{Marks, Tracked};

/// Online logistic mixing: `p = squash(sum w_i x_i)` with one weight vector per selected set.
/// Vectors are a fixed `N` wide (unused inputs are zero) so the products vectorise; every
/// term is shifted before summing so `i32` cannot overflow (`|x| < 2^11`, `|w| < 2^19`).
pub(super) struct Mixer<const N: usize = MAX_INPUTS> {
    /// The weight sets, set `i` at `weights[start + i * N..][..N]`: `start` puts the first
    /// on a cache-line boundary, so a 16-input set is one line (a `Vec` from the allocator
    /// starts 16 bytes into a page, which put every set across two).
    pub(super) weights: Vec<i32>,
    pub(super) start: usize,
    pub(super) sets: usize,
    pub(super) rate: i32,
    /// A training step is skipped where the prediction was within this 12-bit error of
    /// the bit (0: never).
    pub(super) skip: i32,
    /// The weight sets written ([`Mixer::restore_from`]).
    written: Marks,
    /// Inputs that can be non-zero, rounded up to a multiple of 8 (at most `N`): the
    /// products past them are zero, so the dot products and steps stop there.
    width: usize,
    /// Where fresh sets learn faster ([`Mixer::fresh`]): each set's training steps so far,
    /// saturating; else empty.
    steps: Vec<u16>,
}

impl<const N: usize> Clone for Mixer<N> {
    fn clone(&self) -> Self {
        // A copy has its own address, hence its own `start`.
        let mut m = Mixer::new(self.sets, self.rate, 0)
            .skipping(self.skip)
            .fresh(!self.steps.is_empty())
            .inputs(self.width);
        m.weights[m.start..].copy_from_slice(&self.weights[self.start..]);
        m.steps.copy_from_slice(&self.steps);
        m.written = self.written.clone();
        m
    }
}

/// Weight 1.0.
pub(super) const WEIGHT_ONE: i32 = 1 << 16;

/// Weights stay within +-8.0.
pub(super) const WEIGHT_LIMIT: i32 = (8 << 16) - 1;

impl<const N: usize> Mixer<N> {
    pub(super) fn new(sets: usize, rate: i32, init: i32) -> Self {
        const LINE: usize = 64 / std::mem::size_of::<i32>();
        let mut weights = vec![init; sets * N + LINE];
        let start = weights.as_ptr().align_offset(64).min(LINE);
        weights.truncate(start + sets * N);
        Mixer {
            weights,
            start,
            sets,
            rate,
            skip: 0,
            written: Marks::new(sets),
            width: N,
            steps: Vec::new(),
        }
    }

    /// The mixer, with inputs past the first `n` always zero ([`Mixer::width`]).
    pub(super) fn inputs(mut self, n: usize) -> Self {
        self.width = n.next_multiple_of(8).min(N);
        self
    }

    /// The mixer, skipping training steps within error `skip` ([`Mixer::skip`]).
    pub(super) fn skipping(mut self, skip: i32) -> Self {
        self.skip = skip;
        self
    }

    /// Sets learn faster while fresh, by [`FRESH`], counting their steps.
    pub(super) fn fresh(mut self, on: bool) -> Self {
        self.steps = if on { vec![0; self.sets] } else { Vec::new() };
        self
    }

    pub(super) fn reset(&mut self, init: i32) {
        self.weights.fill(init);
        self.steps.fill(0);
        self.written.mark_all();
    }

    /// Sets input `i`'s weight to `w` in every set.
    pub(super) fn set_input_weights(&mut self, i: usize, w: i32) {
        for set in 0..self.sets {
            self.row_mut(set)[i] = w;
        }
    }

    /// Forgets which sets were written: this state is the one [`Mixer::restore_from`]
    /// returns to.
    pub(super) fn clear_marks(&mut self) {
        self.written.clear();
    }

    /// Returns this mixer to `src`'s state, given that it was in that state when its
    /// marks were last cleared: copies back the sets written since.
    pub(super) fn restore_from(&mut self, src: &Mixer<N>) {
        let Mixer {
            weights: _,
            start: _,
            sets,
            rate,
            skip,
            written: _,
            width,
            steps,
        } = src;
        assert_eq!(
            self.steps.len(),
            steps.len(),
            "restored from a mixer of another kind"
        );
        assert_eq!(self.width, *width, "restored from a mixer of another width");
        assert_eq!(self.sets, *sets, "restored from a mixer of another size");
        let mut written = std::mem::take(&mut self.written);
        written.drain(|set, count| {
            let (to, from) = (self.start + set * N, src.start + set * N);
            self.weights[to..to + count * N].copy_from_slice(&src.weights[from..from + count * N]);
            if !steps.is_empty() {
                self.steps[set..set + count].copy_from_slice(&steps[set..set + count]);
            }
        });
        self.written = written;
        self.rate = *rate;
        self.skip = *skip;
    }

    /// Heap bytes held.
    #[cfg(test)]
    pub(super) fn capacity_bytes(&self) -> u64 {
        (self.weights.capacity() * std::mem::size_of::<i32>()) as u64
    }

    #[inline(always)]
    pub(super) fn row(&self, set: usize) -> &[i32] {
        let at = self.start + set * N;
        &self.weights[at..at + N]
    }

    #[inline(always)]
    pub(super) fn row_mut(&mut self, set: usize) -> &mut [i32] {
        self.written.mark(set);
        let at = self.start + set * N;
        &mut self.weights[at..at + N]
    }

    /// Starts fetching weight set `set`.
    #[inline(always)]
    pub(super) fn prefetch(&self, set: usize) {
        let at = self.start + set * N;
        prefetch(&self.weights, at);
        // The row's second line, where it spans two (`start` is a line's first).
        const LINE: usize = 64 / std::mem::size_of::<i32>();
        if set * N % LINE + self.width > LINE {
            prefetch(&self.weights, at + self.width - 1);
        }
    }

    /// The mixed stretch of inputs `x` under weight set `set`.
    #[inline(always)]
    pub(super) fn dot(&self, set: usize, x: &[i32; N]) -> i32 {
        let mut sum = 0i32;
        for (&w, &x) in self.row(set)[..self.width].iter().zip(&x[..self.width]) {
            sum += (w * x) >> 8;
        }
        (sum >> 8).clamp(-STRETCH_MAX, STRETCH_MAX)
    }

    /// One gradient step of set `set` after predicting `p` (12-bit) for a bit that came out
    /// `bit`.
    #[inline(always)]
    pub(super) fn train(&mut self, set: usize, x: &[i32; N], p: i32, bit: u32, boost: i32) {
        let err = ((bit as i32) << 12) - p;
        if err.abs() < self.skip {
            return;
        }
        let mut rate = self.rate + boost;
        if let Some(steps) = self.steps.get_mut(set) {
            rate += i32::from(FRESH_RATES[fresh_bucket(*steps)]);
            *steps = steps.saturating_add(1);
            // `x * err * rate` stays within `i32`: `|x| < 2^11`, `|err| < 2^12`.
            rate = rate.min(255);
        }
        let width = self.width;
        for (w, &x) in self.row_mut(set)[..width].iter_mut().zip(&x[..width]) {
            *w = (*w + ((x * err * rate) >> 16)).clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT);
        }
    }
}

/// Step counts below this have a bucket each in [`FRESH_RATES`]; above it, buckets of 128.
const FRESH_EXACT: usize = 512;

#[inline(always)]
fn fresh_bucket(steps: u16) -> usize {
    let s = usize::from(steps);
    if s < FRESH_EXACT {
        s
    } else {
        FRESH_EXACT + ((s - FRESH_EXACT) >> 7)
    }
}

/// [`FRESH`]'s extra rate by [`fresh_bucket`], at each bucket's first step count: a table,
/// so the training step (the per-byte path) divides nothing.
static FRESH_RATES: [u8; 1024] = {
    let (extra, knee) = FRESH;
    let mut t = [0u8; 1024];
    let mut i = 0;
    while i < 1024 {
        let steps = if i < FRESH_EXACT {
            i
        } else {
            FRESH_EXACT + ((i - FRESH_EXACT) << 7)
        } as i32;
        t[i] = (extra * knee / (steps + knee)) as u8;
        i += 1;
    }
    t
};

/// Adaptive probability map: refines a probability given a context, interpolating between
/// 33 points on the stretch axis.
#[derive(Clone)]
pub(super) struct Apm {
    pub(super) table: Tracked<u16>,
    pub(super) rate: u32,
    /// Format version 13 on: both points the value was interpolated between learn (as
    /// paq8's APMs do); before, the nearer alone (as lpaq1's).
    pub(super) both: bool,
}

impl Apm {
    pub(super) fn new(contexts: usize, rate: u32, both: bool) -> Self {
        let mut table = vec![0u16; contexts * 33];
        Self::init(&mut table);
        Apm {
            table: Tracked::new(table),
            rate,
            both,
        }
    }

    pub(super) fn init(table: &mut [u16]) {
        // Every context starts as the identity map; build the row once and copy it (a
        // reset runs at every block, and the order-1 map has 65,536 rows).
        let mut identity = [0u16; 33];
        for (j, t) in identity.iter_mut().enumerate() {
            *t = (squash((j as i32 - 16) * 128) * 16) as u16;
        }
        for row in table.chunks_exact_mut(33) {
            row.copy_from_slice(&identity);
        }
    }

    pub(super) fn reset(&mut self) {
        Self::init(self.table.all_mut());
    }

    /// Forgets what was written: this state is the one [`Apm::restore_from`] returns to.
    pub(super) fn clear_marks(&mut self) {
        self.table.clear_marks();
    }

    /// Returns this map to `src`'s state, given that it was in that state when its table's
    /// marks were last cleared.
    pub(super) fn restore_from(&mut self, src: &Apm) {
        let Apm { table, rate, both } = src;
        self.table.restore_from(table);
        self.rate = *rate;
        self.both = *both;
    }

    /// Refined 16-bit probability (`0..2^16`) of stretch `st` in context `cx`, and the
    /// index to update: the lower of the two points where both learn, else the nearer.
    #[inline(always)]
    pub(super) fn refine(&self, st: i32, cx: usize) -> (i32, u32) {
        let s = st + 2048;
        let w = s & 127;
        let i = (s >> 7) as usize + cx * 33;
        let p = (i32::from(self.table[i]) * (128 - w) + i32::from(self.table[i + 1]) * w) >> 7;
        let near = if self.both || w < 64 { i } else { i + 1 };
        (p, near as u32)
    }

    #[inline(always)]
    pub(super) fn update(&mut self, index: u32, bit: u32) {
        let g = ((bit << 16) + (bit << self.rate) - bit - bit) as i32;
        let points = if self.both { 2 } else { 1 };
        for i in index as usize..index as usize + points {
            let t = &mut self.table[i];
            *t = (i32::from(*t) + ((g - i32::from(*t)) >> self.rate)) as u16;
        }
    }
}

impl<const N: usize> Snapshot for Mixer<N> {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Mixer {
            weights,
            start,
            sets,
            rate,
            skip,
            written: _,
            width,
            steps,
        } = self;
        // The sets alone: `start` aligns them in this allocation, not the saved one's.
        w.check_len(*sets);
        w.check_len(N);
        w.pods(&mut weights[*start..]);
        w.check(&rate.to_le_bytes());
        w.check(&skip.to_le_bytes());
        w.check_len(*width);
        w.check_len(steps.len());
        w.pods(steps);
    }
}

impl Snapshot for Apm {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Apm { table, rate, both } = self;
        table.walk(w);
        w.check(&rate.to_le_bytes());
        w.check(&[u8::from(*both)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_rates_follow_the_formula_at_each_bucket() {
        let (extra, knee) = FRESH;
        for s in 0..512u16 {
            let exact = extra * knee / (i32::from(s) + knee);
            assert_eq!(i32::from(FRESH_RATES[fresh_bucket(s)]), exact);
        }
        for s in [512u16, 639, 640, 1000, 30_000, u16::MAX] {
            let start = 512 + (i32::from(s) - 512) / 128 * 128;
            let bucket = fresh_bucket(s);
            assert!(bucket < FRESH_RATES.len());
            assert_eq!(
                i32::from(FRESH_RATES[bucket]),
                extra * knee / (start + knee)
            );
        }
        // Rates only fall as a set ages.
        assert!(FRESH_RATES.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn fresh_sets_learn_faster_and_restore_their_step_counts() {
        // Input 512 and error 2048 (p = 1/2, bit 1): a step moves each weight by 16 * rate.
        let x = [512; MAX_INPUTS];
        let mut plain = Mixer::<MAX_INPUTS>::new(2, 15, 0);
        let mut fresh = Mixer::<MAX_INPUTS>::new(2, 15, 0).fresh(true);
        assert!(plain.steps.is_empty());
        fresh.clear_marks();
        let start = fresh.clone();
        plain.train(1, &x, 2048, 1, 0);
        fresh.train(1, &x, 2048, 1, 0);
        assert_eq!(plain.row(1)[0], 16 * 15);
        // A new set learns at the most the arithmetic allows.
        assert_eq!(fresh.row(1)[0], 16 * 255);
        assert_eq!(fresh.steps, [0, 1]);
        for i in 1..1000 {
            fresh.train(1, &x, 2048, i & 1, 0);
        }
        // After 1,000 steps (bucket from 896): 15 + 255 * 96 / (896 + 96) = 15 + 24.
        let (extra, knee) = FRESH;
        assert_eq!(extra * knee / (896 + knee), 24);
        let before = fresh.row(1)[0];
        fresh.train(1, &x, 2048, 1, 0);
        assert_eq!(fresh.row(1)[0] - before, 16 * 39);
        assert_eq!(fresh.row(0)[0], 0);
        fresh.restore_from(&start);
        assert_eq!(fresh.steps, [0, 0]);
        assert_eq!(fresh.row(1)[0], 0);
    }
}
