//! Range coder: turns (symbol, frequency table) pairs into bytes and back.
//!
//! # Read me first: invariants
//!
//! This is the carry-propagating range coder of LZMA (Subbotin's scheme with a pending byte
//! and a count of pending `0xFF`s), specialised to frequency tables whose total is a power of
//! two, `2^bits` with `bits <= 16`.
//!
//! 1. `range` is a `u32`; after every call it is `>= 2^24` (the *normalisation* bound `TOP`).
//!    Hence `range >> bits >= 2^8`, so every symbol with frequency `>= 1` keeps a non-empty
//!    interval: no symbol is ever uncodable.
//! 2. Encoder `low` is a `u64` of which only the low 33 bits are ever set: bits 0..32 are the
//!    current window, bit 32 is a carry not yet added into the bytes already produced.
//! 3. Bytes leave the encoder one at a time through `shift_low`: the byte just above the window
//!    is held back in `cache`, followed by `pending_ff` bytes of `0xFF`, because a later carry
//!    can still ripple through them. A carry turns `cache` into `cache + 1` and every pending
//!    `0xFF` into `0x00`; without a carry they are written as they are.
//! 4. The very first byte LZMA would emit is always `0` (initially `low + range < 2^32`, so no
//!    carry can reach it); we drop it and the decoder assumes it.
//! 5. `finish` emits the 4 bytes of the window, so the encoder writes exactly as many bytes as
//!    the decoder reads: 4 at start plus one per normalisation shift. The decoder checks this;
//!    reading past the end or stopping short means the payload is corrupt.
//! 6. The decoder keeps `code - low` (the offset of the encoder's `low` inside its `range`);
//!    for a valid stream `code < range` always holds. A value of `code / r` at or beyond the
//!    table total can only come from corruption: it is clamped and flagged, never panics.
//! 7. All arithmetic is on integers; encoder and decoder compute the same `r = range >> bits`,
//!    so the stream is identical on every machine.
//! 8. A binary decision (format version 9's mixing predictor) is given by the probability of
//!    a 1, `p1` in `1..2^16` out of 2^16: the 1 takes the interval's bottom `range * p1 >> 16`
//!    (computed in 64 bits), the 0 the rest. Both parts are non-empty (`range >= 2^24`), and
//!    no division or table is needed.
//!
//! `tests` holds a plain reference encoder (explicit carry propagation into the output vector)
//! that this one must match bit for bit.

use crate::quantizer::FreqTable;

/// Normalisation bound: `range` never stays below this.
const TOP: u32 = 1 << 24;

/// Where a binary decision splits `range` (invariant 8): the exact `range * p1 / 2^16`,
/// rounded down, so the split loses no coding space to rounding `range` first.
#[inline(always)]
fn split(range: u32, p1: u32) -> u32 {
    ((u64::from(range) * u64::from(p1)) >> 16) as u32
}

/// Encodes symbols into a byte vector.
#[derive(Debug)]
pub struct RangeEncoder {
    /// Current interval start; see invariant 2.
    low: u64,
    /// Current interval width; see invariant 1.
    range: u32,
    /// The held-back byte of invariant 3 (`None` before the first shift, invariant 4).
    cache: Option<u8>,
    /// Number of `0xFF` bytes held back behind `cache`.
    pending_ff: u64,
    /// Coded bytes so far.
    out: Vec<u8>,
}

impl Default for RangeEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeEncoder {
    /// A fresh encoder with an empty output.
    pub fn new() -> Self {
        RangeEncoder {
            low: 0,
            range: u32::MAX,
            cache: None,
            pending_ff: 0,
            out: Vec::new(),
        }
    }

    /// Codes `symbol` under `table`.
    #[inline]
    pub fn encode(&mut self, table: &FreqTable, symbol: u8) {
        let (start, freq) = table.interval(symbol);
        let r = self.range >> table.bits();
        self.low += u64::from(r) * u64::from(start);
        self.range = r * freq;
        while self.range < TOP {
            self.range <<= 8;
            self.shift_low();
        }
    }

    /// Codes a binary decision `bit` whose 1 has probability `p1 / 2^16`, `p1` in
    /// `1..2^16` (invariant 8).
    #[inline]
    pub fn encode_bit(&mut self, p1: u32, bit: bool) {
        debug_assert!((1..1 << 16).contains(&p1));
        let bound = split(self.range, p1);
        if bit {
            self.range = bound;
        } else {
            self.low += u64::from(bound);
            self.range -= bound;
        }
        while self.range < TOP {
            self.range <<= 8;
            self.shift_low();
        }
    }

    /// Moves the top byte of the window out, resolving carries (invariant 3).
    #[inline]
    fn shift_low(&mut self) {
        if self.low < 0xFF00_0000 || self.low >= 1 << 32 {
            let carry = (self.low >> 32) as u8;
            if let Some(cache) = self.cache {
                self.out.push(cache.wrapping_add(carry));
            }
            for _ in 0..self.pending_ff {
                self.out.push(0xFFu8.wrapping_add(carry));
            }
            self.pending_ff = 0;
            self.cache = Some((self.low >> 24) as u8);
        } else {
            self.pending_ff += 1;
        }
        self.low = (self.low & 0x00FF_FFFF) << 8;
    }

    /// Ends the code and returns the bytes (invariant 5).
    pub fn finish(mut self) -> Vec<u8> {
        for _ in 0..5 {
            self.shift_low();
        }
        self.out
    }

    /// Bytes produced so far (the final size is this plus at most `5 + pending`).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True when nothing has been produced yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }
}

/// Decodes symbols from a byte slice.
#[derive(Debug)]
pub struct RangeDecoder<'a> {
    /// Offset of the code point inside the current interval (invariant 6).
    code: u32,
    /// Current interval width.
    range: u32,
    /// The coded bytes.
    input: &'a [u8],
    /// Next byte of `input` to read.
    pos: usize,
    /// Set once the stream proved inconsistent: read past its end or decoded out of range.
    corrupt: bool,
}

impl<'a> RangeDecoder<'a> {
    /// Starts decoding `input`.
    pub fn new(input: &'a [u8]) -> Self {
        let mut dec = RangeDecoder {
            code: 0,
            range: u32::MAX,
            input,
            pos: 0,
            corrupt: false,
        };
        for _ in 0..4 {
            dec.code = (dec.code << 8) | u32::from(dec.next_byte());
        }
        dec
    }

    #[inline]
    fn next_byte(&mut self) -> u8 {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => {
                self.corrupt = true;
                0
            }
        }
    }

    /// Decodes one symbol under `table` (which must equal the encoder's table).
    #[inline]
    pub fn decode(&mut self, table: &FreqTable) -> u8 {
        let r = self.range >> table.bits();
        let mut target = self.code / r;
        if target >= table.total() {
            self.corrupt = true;
            target = table.total() - 1;
        }
        let symbol = table.find(target);
        let (start, freq) = table.interval(symbol);
        self.code = self.code.wrapping_sub(r * start);
        self.range = r * freq;
        while self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.next_byte());
        }
        symbol
    }

    /// Decodes a binary decision coded by [`RangeEncoder::encode_bit`] with the same `p1`.
    #[inline]
    pub fn decode_bit(&mut self, p1: u32) -> bool {
        let bound = split(self.range, p1);
        let bit = self.code < bound;
        if bit {
            self.range = bound;
        } else {
            // A valid stream keeps `code < range` (invariant 6); past it lies corruption.
            self.corrupt |= self.code >= self.range;
            self.code = self.code.wrapping_sub(bound);
            self.range -= bound;
        }
        while self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.next_byte());
        }
        bit
    }

    /// True once the stream proved inconsistent (read past its end, or a target out of
    /// range). No valid payload ever gets here, so a caller can stop decoding at once instead
    /// of running on to the length a block claims.
    #[inline]
    pub fn is_corrupt(&self) -> bool {
        self.corrupt
    }

    /// True when the input was consumed exactly and never overrun: the only end state a
    /// valid payload reaches (invariant 5).
    pub fn finished_cleanly(&self) -> bool {
        !self.corrupt && self.pos == self.input.len()
    }

    /// [`finished_cleanly`](Self::finished_cleanly) for a payload that may continue with
    /// zero bytes after the code (format version 10 on): nothing else may follow.
    pub fn finished_before_padding(&self) -> bool {
        !self.corrupt && self.input[self.pos..].iter().all(|&b| b == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantizer::Quantizer;

    /// Plain reference encoder: the window `low` never exceeds 32 bits because every carry is
    /// added straight into the bytes already written, walking back over `0xFF`s.
    struct ReferenceEncoder {
        low: u64,
        range: u64,
        out: Vec<u8>,
    }

    impl ReferenceEncoder {
        fn new() -> Self {
            ReferenceEncoder {
                low: 0,
                range: 0xFFFF_FFFF,
                out: Vec::new(),
            }
        }

        fn encode(&mut self, table: &FreqTable, symbol: u8) {
            let (start, freq) = table.interval(symbol);
            let r = self.range / (1u64 << table.bits());
            self.narrow(r * u64::from(start), r * u64::from(freq));
        }

        fn encode_bit(&mut self, p1: u32, bit: bool) {
            // A two-symbol table: the 1 first, the 0 after it.
            let bound = self.range * u64::from(p1) / (1 << 16);
            let (start, size) = if bit {
                (0, bound)
            } else {
                (bound, self.range - bound)
            };
            self.narrow(start, size);
        }

        /// Moves to the sub-interval at `start` of width `size`, adding a carry into the
        /// bytes written, then normalises.
        fn narrow(&mut self, start: u64, size: u64) {
            self.low += start;
            self.range = size;
            if self.low >= 1 << 32 {
                self.low -= 1 << 32;
                for byte in self.out.iter_mut().rev() {
                    let (v, overflow) = byte.overflowing_add(1);
                    *byte = v;
                    if !overflow {
                        break;
                    }
                }
            }
            while self.range < 1 << 24 {
                self.out.push((self.low >> 24) as u8);
                self.low = (self.low << 8) & 0xFFFF_FFFF;
                self.range <<= 8;
            }
        }

        fn finish(mut self) -> Vec<u8> {
            for _ in 0..4 {
                self.out.push((self.low >> 24) as u8);
                self.low = (self.low << 8) & 0xFFFF_FFFF;
            }
            self.out
        }
    }

    /// Deterministic xorshift for test data.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn random_table(seed: &mut u64, bits: u32) -> FreqTable {
        let mut weights = [0u32; 256];
        let skew = rng(seed) % 4;
        for w in weights.iter_mut() {
            let x = rng(seed);
            *w = match skew {
                0 => (x % 1000) as u32,
                1 => (x % 3) as u32,
                2 => (x.is_multiple_of(100) as u32) * 1_000_000,
                _ => (x >> 40) as u32,
            };
        }
        let mut table = FreqTable::new(bits);
        Quantizer::new(bits).quantize(&weights, &mut table);
        table
    }

    #[test]
    fn matches_reference_bit_for_bit_and_round_trips() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for case in 0..200 {
            let bits = [10, 12, 15, 16][case % 4];
            let n = (rng(&mut seed) % 3000) as usize;
            let mut tables = Vec::new();
            let mut symbols = Vec::new();
            let mut enc = RangeEncoder::new();
            let mut reference = ReferenceEncoder::new();
            for i in 0..n {
                if i % 50 == 0 {
                    tables.push(random_table(&mut seed, bits));
                }
                let table = tables.last().unwrap();
                // Draw symbols mostly from the likely ones so carries and 0xFF runs happen.
                let s = if rng(&mut seed).is_multiple_of(4) {
                    (rng(&mut seed) % 256) as u8
                } else {
                    table.find((rng(&mut seed) % u64::from(table.total())) as u32)
                };
                symbols.push(s);
                enc.encode(table, s);
                reference.encode(table, s);
            }
            let fast = enc.finish();
            let slow = reference.finish();
            assert_eq!(fast, slow, "case {case}: differs from the reference coder");

            let mut dec = RangeDecoder::new(&fast);
            for (i, &s) in symbols.iter().enumerate() {
                let table = &tables[i / 50];
                assert_eq!(dec.decode(table), s, "case {case}, symbol {i}");
            }
            assert!(dec.finished_cleanly(), "case {case}");
        }
    }

    #[test]
    fn binary_decisions_match_reference_and_mix_with_tables() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for case in 0..100 {
            let n = (rng(&mut seed) % 20_000) as usize;
            let table = random_table(&mut seed, 16);
            let mut coded = Vec::new();
            let mut enc = RangeEncoder::new();
            let mut reference = ReferenceEncoder::new();
            for i in 0..n {
                if i % 9 == 8 {
                    // Symbols under tables and bits interleave in one code.
                    let s = table.find((rng(&mut seed) % 65536) as u32);
                    enc.encode(&table, s);
                    reference.encode(&table, s);
                    coded.push((u32::MAX, u32::from(s)));
                    continue;
                }
                // Extreme probabilities as well as even ones, and bits against the odds.
                let p1 = match rng(&mut seed) % 4 {
                    0 => 1 + (rng(&mut seed) % 65535) as u32,
                    1 => 65535,
                    2 => 1,
                    _ => 32768,
                };
                let likely = p1 >= 32768;
                let bit = if rng(&mut seed).is_multiple_of(16) {
                    !likely
                } else {
                    likely
                };
                enc.encode_bit(p1, bit);
                reference.encode_bit(p1, bit);
                coded.push((p1, u32::from(bit)));
            }
            let fast = enc.finish();
            assert_eq!(fast, reference.finish(), "case {case}");
            let mut dec = RangeDecoder::new(&fast);
            for (i, &(p1, value)) in coded.iter().enumerate() {
                if p1 == u32::MAX {
                    assert_eq!(u32::from(dec.decode(&table)), value, "case {case}, {i}");
                } else {
                    assert_eq!(u32::from(dec.decode_bit(p1)), value, "case {case}, {i}");
                }
            }
            assert!(dec.finished_cleanly(), "case {case}");
        }
    }

    #[test]
    fn garbage_bits_never_panic_and_are_flagged() {
        let mut seed = 777u64;
        for len in 0..64 {
            let data: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
            let mut dec = RangeDecoder::new(&data);
            for _ in 0..1000 {
                dec.decode_bit(32768);
            }
            // 1000 even bits need 125 bytes.
            assert!(!dec.finished_cleanly());
        }
    }

    #[test]
    fn long_runs_of_certain_symbols_produce_carries() {
        // A near-certain symbol drives low up in tiny steps: exercises pending 0xFF chains.
        let mut weights = [1u32; 256];
        weights[255] = u32::MAX / 2;
        let mut table = FreqTable::new(16);
        Quantizer::new(16).quantize(&weights, &mut table);
        let mut enc = RangeEncoder::new();
        let mut reference = ReferenceEncoder::new();
        for i in 0..100_000u32 {
            let s = if i % 997 == 0 { (i % 255) as u8 } else { 255 };
            enc.encode(&table, s);
            reference.encode(&table, s);
        }
        assert_eq!(enc.finish(), reference.finish());
    }

    #[test]
    fn garbage_input_never_panics_and_is_flagged() {
        let table = FreqTable::uniform(16);
        let mut seed = 12345u64;
        for len in 0..64 {
            let data: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
            let mut dec = RangeDecoder::new(&data);
            for _ in 0..100 {
                dec.decode(&table);
            }
            // 100 uniform symbols need 100 bytes: any shorter input must be flagged.
            assert!(!dec.finished_cleanly());
        }
    }
}
