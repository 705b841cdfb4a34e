//! The fixed-point logistic domain shared by the binary experts and the mixer.
//!
//! The mixing predictor models a byte as 8 binary decisions, most significant bit first.
//! A bit probability is a 12-bit integer `p` in `1..=4095` (`p / 4096` = P(bit = 1)); its
//! *stretch* `ln(p / (1 - p))` is an integer in `-2047..=2047` in units of 1/256. Both maps are
//! tables built from integers at compile time (the interpolated logistic curve of lpaq), so
//! every machine computes the same values.

/// `squash` at `-2048, -1920, ..., 2048` (steps of 128 = 0.5 in logit units), 12-bit.
const SQUASH_POINTS: [i32; 33] = [
    1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994, 3348,
    3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094,
];

/// Largest stretch magnitude.
pub(crate) const STRETCH_MAX: i32 = 2047;

/// `4096 / (1 + exp(-d / 256))`, interpolated between the table's points, clamped to
/// `1..=4095`.
#[inline]
pub(crate) const fn squash(d: i32) -> i32 {
    if d > STRETCH_MAX {
        return 4095;
    }
    if d < -STRETCH_MAX {
        return 1;
    }
    let w = d & 127;
    let i = ((d >> 7) + 16) as usize;
    let p = (SQUASH_POINTS[i] * (128 - w) + SQUASH_POINTS[i + 1] * w + 64) >> 7;
    if p < 1 {
        1
    } else {
        p
    }
}

/// The inverse of [`squash`]: the smallest `d` with `squash(d) >= p`.
static STRETCH: [i16; 4096] = build_stretch();

const fn build_stretch() -> [i16; 4096] {
    let mut table = [0i16; 4096];
    let mut next = 0usize;
    let mut d = -STRETCH_MAX;
    while d <= STRETCH_MAX {
        let v = squash(d) as usize;
        while next <= v {
            table[next] = d as i16;
            next += 1;
        }
        d += 1;
    }
    while next < 4096 {
        table[next] = STRETCH_MAX as i16;
        next += 1;
    }
    table
}

/// `ln(p / (1 - p))` of a 12-bit probability, in units of 1/256.
#[inline(always)]
pub(crate) fn stretch(p: i32) -> i32 {
    i32::from(STRETCH[(p & 4095) as usize])
}

/// Reciprocals `65536 / (n + 1.5)`: the learning rate of a counter that has seen `n` bits,
/// so early updates move fast and later ones average.
pub(crate) const RECIPROCAL: [i32; 1024] = build_reciprocal();

const fn build_reciprocal() -> [i32; 1024] {
    let mut t = [0i32; 1024];
    let mut n = 0;
    while n < 1024 {
        t[n] = (65536 * 2) / (2 * n as i32 + 3);
        n += 1;
    }
    t
}

/// How a counter's rate falls with its count: a counter of count `n` moves by
/// `pace[n] / 65536` ([`pace`]).
pub(crate) type Pace = [i32; 16];

/// The pace whose rate at count `n` is `1 / (m[n] + 1.5)` ([`RECIPROCAL`]'s).
pub(crate) const fn pace(m: [u8; 16]) -> Pace {
    let mut t = [0; 16];
    let mut n = 0;
    while n < 16 {
        t[n] = RECIPROCAL[m[n] as usize];
        n += 1;
    }
    t
}

/// The rate `1 / (count + 1.5)`.
pub(crate) const EVEN_PACE: Pace = pace([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

/// Four adaptive probabilities with their own counts, 16 bits each: 12-bit probability
/// above a 4-bit count, each moved toward its own bit by `pace[count] / 65536` (at first
/// `1 / (count + 1.5)`), the count saturating at `limit` (`<= 15`), so a counter starts
/// as a frequency estimate and ends as a moving average. A bit the counter gave less than
/// 1/4 first drops the count to at most `surprise`: after a change of regime the counter
/// learns fast again (`surprise >= limit` never drops it). The four cells are distinct
/// (a context's nodes on one nibble's path), so their steps are independent; they are
/// written without branches, which would follow the coded bits and mispredict.
/// `tests::bump16` is the one-cell reference.
#[inline(always)]
pub(crate) fn bump16x4(
    cells: [u16; 4],
    bits: [u32; 4],
    limit: u16,
    surprise: u16,
    pace: &Pace,
) -> [u16; 4] {
    let p: [i32; 4] = cells.map(|c| i32::from(c >> 4));
    let count: [i32; 4] = cells.map(|c| i32::from(c & 15));
    let one: [bool; 4] = bits.map(|b| b != 0);
    let (limit, surprise) = (i32::from(limit), i32::from(surprise));
    let n: [i32; 4] = std::array::from_fn(|j| {
        let surprised = if one[j] {
            p[j] < 1024
        } else {
            p[j] > 4095 - 1024
        };
        if surprised {
            count[j].min(surprise)
        } else {
            count[j]
        }
    });
    let rate: [i32; 4] = n.map(|n| pace[n as usize & 15]);
    std::array::from_fn(|j| {
        let target = if one[j] { 4095 } else { 0 };
        let delta = ((target - p[j]) * rate[j] + (1 << 15)) >> 16;
        let q = (p[j] + delta).clamp(1, 4095);
        ((q << 4) | (n[j] + i32::from(n[j] < limit))) as u16
    })
}

/// A fresh counter cell: probability 1/2, count 0.
pub(crate) const CELL_INIT: u16 = 2048 << 4;

/// A 32-bit adaptive probability for small context sets (22-bit probability above a
/// 10-bit count), finer than [`bump16x4`]'s counters for contexts that see millions of
/// bits. A cell is the state alone, 4 bytes, its stretch looked up in the (L1-resident)
/// table on each read: coding bit by bit, cells are read about as often as they learn,
/// and the smaller map stays in L2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateMap {
    cells: Vec<u32>,
    /// What a reset returns each run of `row.len()` cells to.
    row: Vec<u32>,
    limit: u32,
}

impl StateMap {
    /// `n` contexts, each at probability 1/2; counts saturate at `limit` (`<= 1023`).
    pub(crate) fn new(n: usize, limit: u32) -> Self {
        Self::with_rows(n, &[2048], limit)
    }

    /// `rows` rows of contexts, context `i` of each row starting at 12-bit probability
    /// `row[i]`.
    pub(crate) fn with_rows(rows: usize, row: &[i32], limit: u32) -> Self {
        let row: Vec<u32> = row
            .iter()
            .map(|&p| (p.clamp(1, 4095) as u32) << 20)
            .collect();
        let mut map = StateMap {
            cells: vec![row[0]; rows * row.len()],
            row,
            limit: limit.min(1023),
        };
        map.reset();
        map
    }

    /// 12-bit probability of context `cx`.
    #[inline]
    pub(crate) fn p(&self, cx: usize) -> i32 {
        (self.cells[cx] >> 20) as i32
    }

    /// `stretch(self.p(cx))`.
    #[inline]
    pub(crate) fn st(&self, cx: usize) -> i32 {
        stretch(self.p(cx))
    }

    /// Moves context `cx` toward `bit`.
    #[inline(always)]
    pub(crate) fn update(&mut self, cx: usize, bit: u32) {
        let cell = self.cells[cx];
        let n = cell & 1023;
        let p = i64::from(cell >> 10);
        let target = if bit != 0 { (1i64 << 22) - 1 } else { 0 };
        let p = p + (((target - p) * i64::from(RECIPROCAL[n as usize])) >> 16);
        self.cells[cx] = ((p as u32) << 10) | (n + u32::from(n < self.limit));
    }

    /// Number of cells.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// Forgets everything.
    pub(crate) fn reset(&mut self) {
        for cells in self.cells.chunks_exact_mut(self.row.len()) {
            cells.copy_from_slice(&self.row);
        }
    }
}

impl crate::snapshot::Snapshot for StateMap {
    fn walk(&mut self, w: &mut crate::snapshot::Walker<'_>) {
        let StateMap { cells, row, limit } = self;
        w.check_len(cells.len());
        w.pods(cells);
        let row: Vec<u8> = row.iter().flat_map(|r| r.to_le_bytes()).collect();
        w.check(&row);
        w.check(&limit.to_le_bytes());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One counter's step, as [`bump16x4`] makes four: the plain reference.
    pub(crate) fn bump16(cell: &mut u16, bit: u32, limit: u16, surprise: u16, pace: &Pace) {
        let p = i32::from(*cell >> 4);
        let target = if bit != 0 { 4095 } else { 0 };
        let surprised = if bit != 0 { p < 1024 } else { p > 4095 - 1024 };
        let n = if surprised {
            (*cell & 15).min(surprise)
        } else {
            *cell & 15
        };
        let delta = ((target - p) * pace[usize::from(n)] + (1 << 15)) >> 16;
        let p = (p + delta).clamp(1, 4095) as u16;
        *cell = (p << 4) | (n + u16::from(n < limit));
    }

    #[test]
    fn stretch_inverts_squash() {
        for d in (-2047..=2047).step_by(7) {
            let p = squash(d);
            assert!((1..=4095).contains(&p));
            // stretch(p) is the smallest d' with squash(d') >= p.
            assert!(squash(stretch(p)) >= p);
            assert!(stretch(p) <= d);
        }
        assert_eq!(squash(0), 2047);
        assert!(stretch(1) < -1500 && stretch(4095) > 1500);
    }

    #[test]
    fn four_counters_step_as_one_each() {
        // Every probability and count, toward either bit, under every surprise cap and
        // two paces, lane by lane beside the single step.
        let slow = pace([0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32, 40, 48]);
        for pace in [&EVEN_PACE, &slow] {
            for surprise in [0, 3, 15] {
                for p in (0..4096u16).step_by(3) {
                    for count in 0..16 {
                        let cells = [0, 1, 2, 3].map(|j| (p ^ j) << 4 | (count + j) & 15);
                        let bits = [count as u32 & 1, 1, 0, (p as u32 >> 3) & 1];
                        let four = bump16x4(cells, bits, 15, surprise, pace);
                        for j in 0..4 {
                            let mut one = cells[j];
                            bump16(&mut one, bits[j], 15, surprise, pace);
                            assert_eq!(four[j], one, "cell {:#x} bit {}", cells[j], bits[j]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn counters_learn() {
        let mut c = CELL_INIT;
        for _ in 0..100 {
            bump16(&mut c, 1, 15, 15, &EVEN_PACE);
        }
        assert!(c >> 4 > 3900);
        let mut sm = StateMap::new(1, 63);
        for _ in 0..100 {
            sm.update(0, 0);
        }
        assert!(sm.p(0) < 100);
        assert_eq!(sm.st(0), stretch(sm.p(0)));
    }
}
