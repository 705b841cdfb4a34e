//! Quantizer: a predictor's integer weights -> a frequency table the range coder can use.
//!
//! The table's total is exactly `2^bits`, every symbol gets at least 1 (so any byte can be
//! coded, however confident the prediction), and the arithmetic is integer with a fixed order
//! of operations, so encoder and decoder build the same table on every machine.
//!
//! A table covers a whole byte (256 symbols) or, for predictors that code a byte as its high
//! nibble then its low nibble ([`crate::experts::Predictor::codes_nibbles`]), one nibble (16
//! symbols).

/// Smallest allowed quantizer precision.
pub const MIN_BITS: u32 = 10;
/// Largest allowed quantizer precision (bounded by the range coder's invariant 1).
pub const MAX_BITS: u32 = 16;

/// A frequency table over 256 (or 16) symbols with a power-of-two total, in cumulative form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreqTable {
    /// `cum[s]` = sum of the frequencies of symbols `< s`; `cum[symbols] == 2^bits`.
    cum: [u32; 257],
    /// Number of symbols: 256, or 16 for a nibble.
    symbols: usize,
    /// log2 of the total.
    bits: u32,
}

impl FreqTable {
    /// An all-uniform 256-symbol table of total `2^bits`.
    pub fn uniform(bits: u32) -> Self {
        let mut table = FreqTable {
            cum: [0; 257],
            symbols: 256,
            bits,
        };
        table.fill_uniform(256);
        table
    }

    /// Makes this an all-uniform table of `symbols` symbols (a power of two, at most 256).
    fn fill_uniform(&mut self, symbols: usize) {
        self.symbols = symbols;
        let step = (1u32 << self.bits) / symbols as u32;
        for (s, c) in self.cum[..=symbols].iter_mut().enumerate() {
            *c = s as u32 * step;
        }
    }

    /// Same as [`FreqTable::uniform`]; the contents are overwritten by [`Quantizer::quantize`].
    pub fn new(bits: u32) -> Self {
        Self::uniform(bits)
    }

    /// log2 of the total.
    #[inline]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The total, `2^bits`.
    #[inline]
    pub fn total(&self) -> u32 {
        self.cum[self.symbols]
    }

    /// Number of symbols: 256, or 16 for a nibble.
    #[inline]
    pub fn symbols(&self) -> usize {
        self.symbols
    }

    /// Start and width of `symbol`'s interval (`symbol < symbols()`).
    #[inline]
    pub fn interval(&self, symbol: u8) -> (u32, u32) {
        let s = usize::from(symbol);
        (self.cum[s], self.cum[s + 1] - self.cum[s])
    }

    /// Frequency of `symbol`.
    #[inline]
    pub fn freq(&self, symbol: u8) -> u32 {
        self.interval(symbol).1
    }

    /// The symbol whose interval holds `target` (`target < total`).
    #[inline]
    pub fn find(&self, target: u32) -> u8 {
        // Largest s in 0..symbols with cum[s] <= target; cum[0] == 0 so it exists.
        let mut lo = 0usize;
        let mut size = self.symbols;
        while size > 1 {
            let half = size / 2;
            let mid = lo + half;
            if self.cum[mid] <= target {
                lo = mid;
            }
            size -= half;
        }
        lo as u8
    }
}

/// Turns non-negative integer weights into a [`FreqTable`].
#[derive(Clone, Copy, Debug)]
pub struct Quantizer {
    bits: u32,
}

impl Quantizer {
    /// A quantizer producing tables of total `2^bits` (`MIN_BITS..=MAX_BITS`).
    pub fn new(bits: u32) -> Self {
        debug_assert!((MIN_BITS..=MAX_BITS).contains(&bits));
        Quantizer { bits }
    }

    /// log2 of the tables' total.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Fills `table` with frequencies proportional to `weights` (256 of them, or 16 for a
    /// nibble), each at least 1.
    ///
    /// `freq[s] = 1 + floor(w[s] * spare / W)` with `spare = 2^bits - n` for `n` symbols and
    /// `W = sum(w)`, computed through a 32.32 fixed-point reciprocal; the few units lost to
    /// rounding go to the first symbol of largest weight. All-zero weights give the uniform
    /// table.
    pub fn quantize(&self, weights: &[u32], table: &mut FreqTable) {
        let n = weights.len();
        assert!(
            n == 256 || n == 16,
            "a table has 256 or 16 symbols, not {n}"
        );
        table.bits = self.bits;
        table.symbols = n;
        let total = 1u64 << self.bits;
        let spare = total - n as u64;
        let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        if sum == 0 {
            table.fill_uniform(n);
            return;
        }
        // w * reciprocal <= sum * spare * 2^32 / sum = spare * 2^32 < 2^48: fits in u64.
        let reciprocal = (spare << 32) / sum;
        // The product in two halves of 32 bits, each a 32 x 32-bit multiply that vectorises:
        // (w * (hi * 2^32 + lo)) >> 32 = w * hi + (w * lo) >> 32, exactly.
        let (hi, lo) = (reciprocal >> 32, reciprocal & 0xffff_ffff);
        let mut freq = [0u32; 256];
        let freq = &mut freq[..n];
        let mut max = 0;
        crate::wide::run(
            #[inline(always)]
            || {
                for (f, &w) in freq.iter_mut().zip(weights) {
                    let w = u64::from(w);
                    // At most spare + 1 <= 2^16.
                    *f = (1 + w * hi + ((w * lo) >> 32)) as u32;
                }
                max = weights.iter().fold(0, |m, &w| m.max(w));
            },
        );
        // The first symbol of largest weight.
        let best = weights.iter().position(|&w| w == max).unwrap_or(0);
        let mut cum = 0u32;
        for (c, &f) in table.cum.iter_mut().zip(freq.iter()) {
            *c = cum;
            cum += f;
        }
        // Rounding only ever loses: hand the remainder to the most likely symbol.
        let remainder = total as u32 - cum;
        for c in table.cum[best + 1..n].iter_mut() {
            *c += remainder;
        }
        table.cum[n] = total as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(table: &FreqTable) {
        assert_eq!(table.total(), 1 << table.bits());
        for s in 0..table.symbols() as u8 {
            assert!(table.freq(s) >= 1, "symbol {s} has no room");
        }
        for target in (0..table.total()).step_by(7) {
            let s = table.find(target);
            let (start, freq) = table.interval(s);
            assert!(start <= target && target < start + freq);
        }
    }

    /// Every table over `N` symbols is complete, whatever the weights, and a lone weight
    /// takes all but one unit per other symbol.
    fn complete_and_proportional<const N: usize>() {
        for bits in MIN_BITS..=MAX_BITS {
            let q = Quantizer::new(bits);
            let mut table = FreqTable::new(bits);
            for weights in [
                [0u32; N],
                [u32::MAX; N],
                core::array::from_fn(|i| i as u32),
                core::array::from_fn(|i| if i == 7 { u32::MAX } else { 0 }),
                core::array::from_fn(|i| (i as u32).wrapping_mul(2_654_435_761)),
            ] {
                q.quantize(&weights, &mut table);
                assert_eq!(table.symbols(), N);
                check(&table);
            }
            q.quantize(
                &core::array::from_fn::<u32, N, _>(|i| if i == 7 { 1000 } else { 0 }),
                &mut table,
            );
            assert_eq!(table.freq(7), (1 << bits) - (N as u32 - 1));
            assert_eq!(usize::from(table.find(table.total() - 1)), N - 1);
        }
    }

    /// The table as the definition in [`Quantizer::quantize`]'s doc computes it, one
    /// symbol after the other in 64-bit arithmetic.
    fn reference(bits: u32, weights: &[u32]) -> Vec<u32> {
        let n = weights.len() as u64;
        let (total, sum) = (
            1u64 << bits,
            weights.iter().map(|&w| u64::from(w)).sum::<u64>(),
        );
        if sum == 0 {
            return (0..=n).map(|s| (s * (total / n)) as u32).collect();
        }
        let reciprocal = ((total - n) << 32) / sum;
        let freq: Vec<u64> = weights
            .iter()
            .map(|&w| 1 + ((u64::from(w) * reciprocal) >> 32))
            .collect();
        let best = (0..weights.len()).fold(0, |b, s| if weights[s] > weights[b] { s } else { b });
        let mut cum = vec![0u64];
        for (s, f) in freq.iter().enumerate() {
            let next = cum[s] + f;
            cum.push(next);
        }
        let remainder = total - cum[weights.len()];
        for c in &mut cum[best + 1..] {
            *c += remainder;
        }
        cum.into_iter().map(|c| c as u32).collect()
    }

    #[test]
    fn tables_are_the_definitions() {
        for round in 0..200 {
            let bits = MIN_BITS + round % (MAX_BITS - MIN_BITS + 1);
            let n = if round % 3 == 0 { 16 } else { 256 };
            // Softmax-like weights (up to 2^22), full-range ones, and sparse ones.
            let noise = crate::test_data::noise(8 * n, u64::from(round) + 1);
            let weights: Vec<u32> = noise
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .map(|v| match round % 4 {
                    0 => (v % (1 << 22)) as u32,
                    1 => v as u32,
                    2 => (v % 3) as u32 * 7,
                    _ => (v >> (v % 64)) as u32,
                })
                .collect();
            let mut table = FreqTable::new(bits);
            Quantizer::new(bits).quantize(&weights, &mut table);
            assert_eq!(
                table.cum[..=n].to_vec(),
                reference(bits, &weights),
                "round {round}"
            );
        }
    }

    #[test]
    fn tables_are_complete_and_proportional() {
        complete_and_proportional::<256>();
    }

    #[test]
    fn nibble_tables_are_complete_and_proportional() {
        complete_and_proportional::<16>();
        // A byte table after a nibble table is a byte table again.
        let q = Quantizer::new(16);
        let mut table = FreqTable::new(16);
        q.quantize(&[5u32; 16], &mut table);
        q.quantize(&[5u32; 256], &mut table);
        assert_eq!(table.symbols(), 256);
        check(&table);
    }
}
