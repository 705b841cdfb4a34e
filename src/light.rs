//! The light coder: a small, fast predictor for blocks the full predictor would code
//! smaller than its ratio bound allows (runs, sparse and highly repetitive data).
//!
//! ```text
//! byte -> 8 decisions, high bit first -> counter[previous byte][bits so far] -> range coder
//! ```
//!
//! Why it exists: a few bytes of a stream may claim many bytes of output, and the work a
//! decoder does per output byte is what a hostile stream buys. The full predictors cost
//! microseconds per byte, so coded blocks are bound to [`CODED_RATIO`] bytes per payload
//! byte (format version 13: [`MIXING_RATIO`], or [`NEURAL_RATIO`] with the neural
//! expert); this coder costs nanoseconds, so its blocks may hold [`LIGHT_RATIO`]. The encoder
//! chooses it for a block only when it is shorter than the full predictor's padded code.
//! `FORMAT.md` ("Light payload") specifies it bit for bit: integer arithmetic only.
//!
//! [`CODED_RATIO`]: crate::format::CODED_RATIO
//! [`MIXING_RATIO`]: crate::format::MIXING_RATIO
//! [`NEURAL_RATIO`]: crate::format::NEURAL_RATIO
//! [`LIGHT_RATIO`]: crate::format::LIGHT_RATIO

use crate::range_coder::{RangeDecoder, RangeEncoder};

/// Probability precision of the counters: 22 bits, so a long run drives the coded
/// probability to its floor of `1 / 2^16`.
const PRECISION: u32 = 22;
/// Counters adapt at `1 / (n + 2)` for their first updates, then at `1 / (LIMIT + 2)`.
const LIMIT: u8 = 30;

/// `65536 / (n + 2)` for `n` in `0..=LIMIT`: the adaptation rates, as multipliers.
const RATES: [i64; LIMIT as usize + 1] = {
    let mut r = [0i64; LIMIT as usize + 1];
    let mut n = 0;
    while n <= LIMIT as usize {
        r[n] = 65536 / (n as i64 + 2);
        n += 1;
    }
    r
};

/// The model: one counter per (previous byte, bits of this byte so far).
struct Model {
    /// Probability that the next decision is 1, in `0..=2^PRECISION`.
    p: Vec<u32>,
    /// Updates each counter has had, up to `LIMIT`.
    n: Vec<u8>,
}

impl Model {
    fn new() -> Model {
        Model {
            p: vec![1 << (PRECISION - 1); 256 * 256],
            n: vec![0; 256 * 256],
        }
    }

    /// The coder's probability of a 1 (`1..2^16`) from counter `i`.
    #[inline(always)]
    fn p1(&self, i: usize) -> u32 {
        (self.p[i] >> (PRECISION - 16)).clamp(1, (1 << 16) - 1)
    }

    #[inline(always)]
    fn update(&mut self, i: usize, bit: bool) {
        let target = if bit { 1i64 << PRECISION } else { 0 };
        let p = i64::from(self.p[i]);
        let n = self.n[i];
        // Floor division by 2^16 (arithmetic shift): stays within 0..=2^PRECISION.
        self.p[i] = (p + (((target - p) * RATES[usize::from(n)]) >> 16)) as u32;
        self.n[i] = (n + 1).min(LIMIT);
    }
}

/// Codes `block`; the code ends where the range coder's does (no padding).
pub(crate) fn encode(block: &[u8]) -> Vec<u8> {
    let mut model = Model::new();
    let mut enc = RangeEncoder::new();
    let mut previous = 0usize;
    for &byte in block {
        let base = previous << 8;
        let mut c0 = 1usize;
        for k in (0..8).rev() {
            let bit = (byte >> k) & 1 == 1;
            let i = base | c0;
            enc.encode_bit(model.p1(i), bit);
            model.update(i, bit);
            c0 = (c0 << 1) | usize::from(bit);
        }
        previous = usize::from(byte);
    }
    enc.finish()
}

/// Decodes `payload` into `out` (its length is the block's). False when the payload is not
/// a light code of that many bytes followed by nothing but zeros; decoding stops as soon
/// as the payload proves bad, so a block that claims more than it holds costs little.
pub(crate) fn decode(payload: &[u8], out: &mut [u8]) -> bool {
    let mut model = Model::new();
    let mut dec = RangeDecoder::new(payload);
    let mut previous = 0usize;
    for o in out.iter_mut() {
        let base = previous << 8;
        let mut c0 = 1usize;
        while c0 < 256 {
            let i = base | c0;
            let bit = dec.decode_bit(model.p1(i));
            model.update(i, bit);
            c0 = (c0 << 1) | usize::from(bit);
        }
        if dec.is_corrupt() {
            return false;
        }
        *o = (c0 - 256) as u8;
        previous = usize::from(*o);
    }
    dec.finished_before_padding()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8]) -> usize {
        let code = encode(data);
        let mut out = vec![0u8; data.len()];
        assert!(decode(&code, &mut out));
        assert_eq!(out, data);
        // Zero padding after the code is allowed, anything else is not.
        let mut padded = code.clone();
        padded.extend_from_slice(&[0; 9]);
        assert!(decode(&padded, &mut out));
        assert_eq!(out, data);
        padded.push(1);
        assert!(!decode(&padded, &mut out));
        code.len()
    }

    #[test]
    fn codes_runs_text_and_noise() {
        // A run of one byte costs well under the light ratio bound.
        let run = roundtrip(&[0u8; 1 << 20]);
        assert!(
            run * crate::format::LIGHT_RATIO as usize <= 1 << 20,
            "{run}"
        );
        roundtrip(&[7u8; 3]);
        roundtrip(b"");
        let text = b"the light coder is an order-1 model of bits; ".repeat(200);
        assert!(roundtrip(&text) < text.len() / 4);
        let mut s = 1u64;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect();
        roundtrip(&noise);
    }

    #[test]
    fn a_payload_that_runs_out_is_refused() {
        let code = encode(&b"abcdefgh".repeat(1000));
        let mut out = vec![0u8; 1 << 20];
        assert!(!decode(&code[..code.len() / 2], &mut out));
    }
}
