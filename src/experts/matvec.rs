//! The neural expert's matrix-vector product in integers: `y = x W` with `x` and `W`
//! integers in `[-127, 127]`, as the ONNX model's one matmul defines it.
//!
//! Why a kernel of our own: the model holds its weights as integer-valued `f32` (1 MiB for
//! `H = 256`), and a block of one lane multiplies one row per byte, so tract's `f32`
//! kernels stream the whole matrix for every byte with 8 or 16 products per instruction.
//! Held as `i8` the weights are a quarter of that, and the integer dot-product instructions
//! do 32 (AVX2) or 64 (AVX-512 VNNI) products per instruction. Integer sums are exact in
//! any order, so every tier here and tract's `f32` matmul (whose sums are exact too: see
//! `neural.rs`) give the same numbers; `tests` check each tier against a plain product.
//! `neural.rs` runs it as an operator of the tract plan in place of the matmul.

/// Columns per block of the packed matrix.
const BLOCK: usize = 64;

/// The most rows a matrix may have: its sums stay exact as `f32` (`1040 * 127^2 < 2^24`).
pub(crate) const MAX_ROWS: usize = 1040;

/// A weight matrix `W[rows, cols]` packed for [`PackedMatrix::mul`]: column blocks of 64,
/// and within a block, for each quad of rows `4q..4q + 4`, each column's four weights side
/// by side (256 bytes, four cache lines). Rows are padded to a multiple of 4 and columns
/// to a whole block with zeros.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PackedMatrix {
    rows: usize,
    cols: usize,
    data: Vec<i8>,
    /// Per padded column, the sum of its weights: AVX-512 VNNI multiplies unsigned by
    /// signed bytes, so it takes `x + 128` and subtracts `128 * sum` after.
    sums: Vec<i32>,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedMatrix({}x{})", self.rows, self.cols)
    }
}

/// Which instructions [`PackedMatrix::mul`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tier {
    Scalar,
    Avx2,
    Avx512Vnni,
}

impl Tier {
    /// The best tier this CPU has, short of those switched off for tests (`NC_NO_AVX2`
    /// switches off both SIMD tiers, `NC_NO_AVX512` the AVX-512 one).
    pub(crate) fn detect() -> Tier {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::wide::has_avx512() && std::is_x86_feature_detected!("avx512vnni") {
                return Tier::Avx512Vnni;
            }
            if crate::wide::has_avx2() {
                return Tier::Avx2;
            }
        }
        Tier::Scalar
    }

    /// Whether this CPU can run the tier.
    pub(crate) fn available(self) -> bool {
        match self {
            Tier::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512Vnni => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

impl PackedMatrix {
    /// Packs the row-major `w` (`rows * cols` values), or `None` unless every value is an
    /// integer in `[-127, 127]` and `rows <= MAX_ROWS`.
    pub(crate) fn pack(w: &[f32], rows: usize, cols: usize) -> Option<PackedMatrix> {
        if rows == 0 || rows > MAX_ROWS || cols == 0 || w.len() != rows.checked_mul(cols)? {
            return None;
        }
        let quads = rows.div_ceil(4);
        let blocks = cols.div_ceil(BLOCK);
        let mut data = vec![0i8; blocks * quads * 4 * BLOCK];
        let mut sums = vec![0i32; blocks * BLOCK];
        for (r, row) in w.chunks_exact(cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if !(v.fract() == 0.0 && (-127.0..=127.0).contains(&v)) {
                    return None;
                }
                let (q, t) = (r / 4, r % 4);
                let (b, j) = (c / BLOCK, c % BLOCK);
                data[((b * quads + q) * BLOCK + j) * 4 + t] = v as i8;
                sums[c] += v as i32;
            }
        }
        Some(PackedMatrix {
            rows,
            cols,
            data,
            sums,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// `y = x W` with the best tier this CPU has, for `k` rows of `x` at once: `x` holds
    /// `k * rows` integer values in `[-127, 127]` (the model's quantised states), `y` gets
    /// the `k * cols` sums, exact as `f32` (`rows * 127^2 < 2^24`), row after row.
    pub(crate) fn mul(&self, x: &[f32], y: &mut [f32]) {
        static TIER: std::sync::OnceLock<Tier> = std::sync::OnceLock::new();
        self.mul_with(*TIER.get_or_init(Tier::detect), x, y);
    }

    /// [`PackedMatrix::mul`] with `tier`, which the CPU must have ([`Tier::available`]).
    pub(crate) fn mul_with(&self, tier: Tier, x: &[f32], y: &mut [f32]) {
        let k = x.len() / self.rows;
        assert!(x.len() == k * self.rows && y.len() == k * self.cols && tier.available());
        // Up to four rows share each pass over the weights (the lanes of one call).
        for (x, y) in x.chunks(4 * self.rows).zip(y.chunks_mut(4 * self.cols)) {
            match x.len() / self.rows {
                1 => self.rows_with::<1>(tier, x, y),
                2 => self.rows_with::<2>(tier, x, y),
                3 => self.rows_with::<3>(tier, x, y),
                _ => self.rows_with::<4>(tier, x, y),
            }
        }
    }

    /// `R` rows of `x` through the weights in one pass.
    fn rows_with<const R: usize>(&self, tier: Tier, x: &[f32], y: &mut [f32]) {
        // The conversions in and out are compiled for the CPU's vectors too.
        crate::wide::run(
            #[inline(always)]
            || self.rows_in::<R>(tier, x, y),
        );
    }

    /// [`PackedMatrix::rows_with`]'s body.
    #[inline(always)]
    fn rows_in<const R: usize>(&self, tier: Tier, x: &[f32], y: &mut [f32]) {
        // Each row's values by row quad, four bytes as one `i32` (the padding rows 0), on
        // the stack: this runs for every byte.
        let quads = self.rows.div_ceil(4);
        let mut xq = [[0i32; R]; MAX_ROWS / 4];
        for (r, x) in x.chunks_exact(self.rows).enumerate() {
            let mut bytes = [0u8; MAX_ROWS.next_multiple_of(4)];
            for (b, &v) in bytes.iter_mut().zip(x) {
                *b = to_i8(v) as u8;
            }
            for (q, chunk) in bytes[..4 * quads].chunks_exact(4).enumerate() {
                xq[q][r] = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        }
        let xq = &xq[..quads];
        let per_block = quads * 4 * BLOCK;
        let mut acc = [[0i32; BLOCK]; R];
        for (b, chunk) in self.data.chunks_exact(per_block).enumerate() {
            match tier {
                Tier::Scalar => block_scalar(chunk, xq, &mut acc),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX2 (asserted by the caller).
                #[allow(unsafe_code)]
                Tier::Avx2 => unsafe { block_avx2(chunk, xq, &mut acc) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX-512 F, BW and VNNI (asserted by the caller).
                #[allow(unsafe_code)]
                Tier::Avx512Vnni => unsafe {
                    block_avx512vnni(chunk, xq, &self.sums[b * BLOCK..][..BLOCK], &mut acc)
                },
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("no such tier here"),
            }
            let start = b * BLOCK;
            let end = (start + BLOCK).min(self.cols);
            for (y, acc) in y.chunks_exact_mut(self.cols).zip(&acc) {
                for (y, &s) in y[start..end].iter_mut().zip(acc) {
                    // |s| <= rows * 127^2 < 2^24: exact as f32.
                    *y = s as f32;
                }
            }
        }
    }
}

/// `v.clamp(-127.0, 127.0) as i8` (NaN to 0), without `as`'s lane-by-lane saturation:
/// the inputs are the model's quantised states, integers in `[-127, 127]`.
#[inline(always)]
fn to_i8(v: f32) -> i8 {
    if v.is_nan() {
        return 0;
    }
    let v = v.clamp(-127.0, 127.0);
    // SAFETY: `v` is finite and within [-127, 127].
    #[allow(unsafe_code)]
    let t = unsafe { v.to_int_unchecked::<i32>() };
    t as i8
}

/// One column block in plain Rust: the reference the SIMD tiers are checked against.
fn block_scalar<const R: usize>(chunk: &[i8], xq: &[[i32; R]], acc: &mut [[i32; BLOCK]; R]) {
    for (acc, r) in acc.iter_mut().zip(0..R) {
        acc.fill(0);
        for (line, x) in chunk.chunks_exact(4 * BLOCK).zip(xq) {
            let x = x[r].to_le_bytes().map(|v| i32::from(v as i8));
            for (a, w) in acc.iter_mut().zip(line.chunks_exact(4)) {
                for (&w, &x) in w.iter().zip(&x) {
                    *a += i32::from(w) * x;
                }
            }
        }
    }
}

/// One column block with AVX2, one row at a time (the eight accumulators of a row fill
/// half the registers): `vpmaddubsw` multiplies unsigned by signed bytes, so it takes `|x|`
/// and the weights with `x`'s sign (`vpsignb`); pairs of products stay within `i16`
/// (`2 * 127 * 127`), and `vpmaddwd` by ones adds the pairs into `i32`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn block_avx2<const R: usize>(chunk: &[i8], xq: &[[i32; R]], acc: &mut [[i32; BLOCK]; R]) {
    use std::arch::x86_64::*;
    let ones = _mm256_set1_epi16(1);
    for (acc, r) in acc.iter_mut().zip(0..R) {
        let mut sums = [_mm256_setzero_si256(); BLOCK / 8];
        for (line, x) in chunk.chunks_exact(4 * BLOCK).zip(xq) {
            let xs = _mm256_set1_epi32(x[r]);
            let magnitude = _mm256_abs_epi8(xs);
            for (j, s) in sums.iter_mut().enumerate() {
                // SAFETY: `line` holds 256 bytes: eight 32-byte loads (unaligned).
                let w = unsafe { _mm256_loadu_si256(line.as_ptr().add(32 * j).cast::<__m256i>()) };
                let pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w, xs));
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(pairs, ones));
            }
        }
        for (j, s) in sums.iter().enumerate() {
            // SAFETY: `acc` has room for eight stores of eight lanes.
            unsafe { _mm256_storeu_si256(acc.as_mut_ptr().add(8 * j).cast::<__m256i>(), *s) };
        }
    }
}

/// One column block with AVX-512 VNNI, all `R` rows in one pass over the weights:
/// `vpdpbusd` adds four products of unsigned by signed bytes into each `i32` lane, so it
/// takes `x + 128` (in `1..=255`) and subtracts `128` times the column's weight sum after.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(unsafe_code)]
unsafe fn block_avx512vnni<const R: usize>(
    chunk: &[i8],
    xq: &[[i32; R]],
    col_sums: &[i32],
    acc: &mut [[i32; BLOCK]; R],
) {
    use std::arch::x86_64::*;
    let mut sums = [[_mm512_setzero_si512(); BLOCK / 16]; R];
    for (line, x) in chunk.chunks_exact(4 * BLOCK).zip(xq) {
        let mut w = [_mm512_setzero_si512(); BLOCK / 16];
        for (j, w) in w.iter_mut().enumerate() {
            // SAFETY: `line` holds 256 bytes: four 64-byte loads (unaligned).
            *w = unsafe { _mm512_loadu_si512(line.as_ptr().add(64 * j).cast()) };
        }
        for (sums, &x) in sums.iter_mut().zip(x) {
            let xs = _mm512_set1_epi32(x ^ 0x8080_8080u32 as i32);
            for (s, &w) in sums.iter_mut().zip(&w) {
                *s = _mm512_dpbusd_epi32(*s, xs, w);
            }
        }
    }
    for (acc, sums) in acc.iter_mut().zip(&sums) {
        for (j, s) in sums.iter().enumerate() {
            // SAFETY: `col_sums` holds 64 values: four loads of sixteen.
            let sum = unsafe { _mm512_loadu_si512(col_sums.as_ptr().add(16 * j).cast()) };
            let exact = _mm512_sub_epi32(*s, _mm512_slli_epi32(sum, 7));
            // SAFETY: `acc` has room for four stores of sixteen lanes.
            unsafe { _mm512_storeu_si512(acc.as_mut_ptr().add(16 * j).cast(), exact) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<i32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 255) as i32 - 127
            })
            .collect()
    }

    #[test]
    fn every_tier_computes_the_exact_product() {
        let tiers = [Tier::Scalar, Tier::Avx2, Tier::Avx512Vnni];
        for (rows, cols) in [(256, 1024), (7, 33), (1, 1), (33, 64), (66, 130)] {
            let w = random(rows * cols, rows as u64 * 31 + cols as u64);
            let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let m = PackedMatrix::pack(&wf, rows, cols).unwrap();
            for seed in 1..5 {
                let mut x: Vec<i32> = random(rows, seed);
                if seed == 3 {
                    // The extremes: every product at its largest magnitude.
                    for (i, v) in x.iter_mut().enumerate() {
                        *v = if i % 2 == 0 { 127 } else { -127 };
                    }
                }
                if seed == 4 {
                    x.fill(0);
                }
                let want: Vec<f32> = (0..cols)
                    .map(|c| (0..rows).map(|r| x[r] * w[r * cols + c]).sum::<i32>() as f32)
                    .collect();
                let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                for tier in tiers.into_iter().filter(|t| t.available()) {
                    let mut y = vec![0.0; cols];
                    m.mul_with(tier, &xf, &mut y);
                    assert_eq!(y, want, "{tier:?} {rows}x{cols}");
                    // Several rows at once: each row's product, whatever its neighbours.
                    for k in [2, 3, 4, 5, 9] {
                        let xs: Vec<f32> = (0..k)
                            .flat_map(|j| xf.iter().map(move |&v| if j % 2 == 0 { v } else { -v }))
                            .collect();
                        let mut ys = vec![0.0; k * cols];
                        m.mul_with(tier, &xs, &mut ys);
                        for (j, y) in ys.chunks_exact(cols).enumerate() {
                            let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
                            let want: Vec<f32> = want.iter().map(|&v| sign * v).collect();
                            assert_eq!(y, want, "{tier:?} {rows}x{cols}, row {j} of {k}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_input_conversion_is_a_saturating_cast() {
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            127.5,
            -128.0,
        ];
        let sweep = (-600..=600).map(|i| i as f32 * 0.25);
        for v in specials.into_iter().chain(sweep) {
            assert_eq!(to_i8(v), v.clamp(-127.0, 127.0) as i8, "{v}");
        }
    }

    #[test]
    fn only_integer_weights_in_range_pack() {
        assert!(PackedMatrix::pack(&[1.0, -127.0, 127.0, 0.0], 2, 2).is_some());
        assert!(PackedMatrix::pack(&[1.5, 0.0], 1, 2).is_none());
        assert!(PackedMatrix::pack(&[128.0, 0.0], 1, 2).is_none());
        assert!(PackedMatrix::pack(&[f32::NAN, 0.0], 1, 2).is_none());
        assert!(PackedMatrix::pack(&[0.0; 3], 2, 2).is_none());
        assert!(PackedMatrix::pack(&vec![0.0; MAX_ROWS + 1], MAX_ROWS + 1, 1).is_none());
    }
}
