//! Bilevel images: a specialist that reads binary records as rows of pixels, one bit per
//! pixel, the leftmost in a byte's high bit (fax pages, scanned documents, icons and fonts
//! stored as bitmaps).
//!
//! Each bit decision is a pixel, and the pixels already coded around it (to the left in
//! its row, and in the rows above, one record length apart) predict it far better than
//! any byte context can: a byte context sees the byte above as a whole, a pixel context
//! the few pixels that touch this one. The contexts are templates of neighbouring pixels,
//! as in JBIG's (ITU-T T.82) and paq8px's 1-bit image model, each indexing its own table
//! of adaptive probabilities, and counts of the black pixels around (dithering). A mixer
//! of its own weighs them, its weight sets chosen by the nearest pixels: the gate's
//! weight sets, split by the byte's contexts, each see too few pixels to mix two dozen
//! templates well. The gate takes its output among its inputs, and a blend of the two,
//! learned, gives the pixel's probability: on tables whose records pass for a bitmap's
//! rows the gate knows better (`docs/tuning.md`, "Bilevel images").
//!
//! The rows are the record length, or a length found from the bytes that repeat one row
//! down, whichever the JBIG template predicts better on.

use crate::logistic::{squash, stretch, StateMap, STRETCH_MAX};
use crate::snapshot::{Snapshot, Walker};

/// Gate inputs: the mixer's output, its three groups' and the JBIG template's stretch.
pub(crate) const INPUTS: usize = 5;

/// The shortest record taken for a bitmap's row: 32 pixels.
const MIN_ROW: usize = 4;

/// The largest multiple of the rows' length taken for the same rows.
const MAX_MULTIPLE: usize = 4;

/// Rows above the pixel that the templates read.
const ROWS: usize = 8;

/// Cells of the templates indexed directly: JBIG's three-line template first (it judges
/// whether the rows are a bitmap's), the counts of black pixels last.
const DIRECT: [usize; 18] = [
    1 << 10,
    4,
    16,
    16,
    64,
    256,
    256,
    256,
    256,
    256,
    512,
    1024,
    4096,
    4096,
    5,
    13,
    25,
    41,
];

/// Templates too wide to index directly, hashed into tables of `2^HASHED_BITS` cells.
const HASHED: usize = 5;
const HASHED_BITS: u32 = 18;

/// All templates.
const TEMPLATES: usize = DIRECT.len() + HASHED;

/// The mixer's inputs: a stretch per template, each template's stationary probability
/// ([`Bitmap::slow`]), and a bias.
const MIX_INPUTS: usize = 2 * TEMPLATES + 1;

/// The mixer's weight sets, per group: by the 4 pixels nearest (left, above-right, above,
/// above-left), by the 3 to the left and the 3 above, by the count of black pixels among
/// the 40 around.
const SETS: [usize; 3] = [16, 64, 41];

/// A template's counters settle to averages over this many pixels, and its slow
/// counters over this many more.
const LIMIT: u32 = 127;
const SLOW_LIMIT: u32 = 1023;

/// The JBIG template's mean error (12-bit) below which the rows are taken for a bitmap's:
/// records of other data (tables, code) that the templates predict poorly leave the gate
/// as it was.
const ERROR_ON: u32 = 640;

/// The blend's weight of the mixer below which the mixer rests (`Bitmap::resting`),
/// and how often it wakes then, in bytes.
const REST: i32 = ONE / 32;
const AWAKE: usize = 8;

/// A weight of 1 in the mixer, and the largest magnitude of one (below 16).
const ONE: i32 = 1 << 16;
const W_MAX: i32 = 16 * ONE - 1;

/// What a node computed, kept for its training (at the next node, or for the byte's last
/// node after the byte).
#[derive(Clone, Copy)]
struct Node {
    cells: [u32; TEMPLATES],
    inputs: [i32; MIX_INPUTS],
    /// Each group's weight set (its first weight's index) and output stretch.
    sets: [u32; 3],
    dots: [i32; 3],
    out: i32,
    /// The blend's inputs (the gate's stretch and the mixer's) and output.
    blend: [i32; 2],
    blended: i32,
}

/// The pixels around the next byte, and the tables of the templates over them.
#[derive(Clone)]
pub(crate) struct Bitmap {
    maps: StateMap,
    /// The same cells averaged over many more pixels: a page's statistics change
    /// little, and a cell seen a thousand times is surer than `maps` says. The mixer
    /// takes their probability as it is, not stretched (paq8px's 1-bit image model adds
    /// a count-based probability beside each context's stretch likewise).
    slow: StateMap,
    /// Where each template's cells start in `maps`.
    offsets: [usize; TEMPLATES],
    /// The mixer's weights: the groups' sets, then the last layer's three.
    weights: Vec<i32>,
    last: [i32; 3],
    /// The weights of the gate's output and the mixer's ([`Bitmap::blend`]).
    blend: [i32; 2],
    /// The rows above, 24 pixels each: the byte above in bits 8..16, with the bytes
    /// before and after it on either side (0 above the block's start).
    above: [u32; ROWS],
    /// The current row's last 16 pixels before the byte (the newest in bit 0).
    left: u32,
    /// Whether the templates run for this byte (a record length of a bitmap's row is
    /// known and the rows above are in the block).
    on: bool,
    /// Per bit of the byte (its depth in the byte's tree), what its node computed.
    nodes: [Node; 8],
    /// The judges of two row lengths: the record length's and the row finder's.
    judges: [Judge; 2],
    /// The judge whose rows the templates read.
    using: usize,
    /// Whether the templates and the mixer rest for this byte (the gate's output is the
    /// pixel's probability, and its columns are 0).
    resting: bool,
    finder: Box<RowFinder>,
}

/// The JBIG template over the rows of one length, judging whether they are a bitmap's.
#[derive(Clone)]
struct Judge {
    /// The row length: the one given, but one given later that is a small multiple of it
    /// leaves it as it was.
    row: Option<usize>,
    /// Whether it runs for this byte: its rows are in the block.
    on: bool,
    /// The two rows above (as [`Bitmap::above`]).
    above: [u32; 2],
    /// Where its cells start in the maps.
    table: usize,
    /// Per bit of the byte, its cell and probability.
    cells: [u32; 8],
    p: [i32; 8],
    /// Its mean absolute error over the last ~4096 pixels (12-bit, times 2^8).
    error: u32,
}

impl Judge {
    fn new(table: usize) -> Self {
        Judge {
            row: None,
            on: false,
            above: [0; 2],
            table,
            cells: [0; 8],
            p: [0; 8],
            error: 2048 << 8,
        }
    }

    fn start_byte(&mut self, bytes: &[u8], row: Option<usize>) {
        // A page's rows recur at twice and three times their length as well, and the
        // record length follows whichever distance collected the latest votes: the rows
        // stay as they were while that is a multiple of them (up to 4).
        if let Some(new) = row {
            self.row = match self.row {
                Some(old) if new % old == 0 && new / old <= MAX_MULTIPLE => Some(old),
                _ => Some(new),
            };
        }
        let p = bytes.len();
        self.on = match row.and(self.row) {
            Some(r) => r >= MIN_ROW && p > 3 * r + 1,
            None => false,
        };
        if self.on {
            let r = self.row.unwrap_or(0);
            self.above = [1, 2].map(|k| row_at(bytes, p - k * r));
        }
    }

    /// Its template's cell at node `c0` of depth `j`, `r0` the pixels before it.
    fn node(&mut self, maps: &StateMap, j: u32, r0: u32) {
        let t = 7 - j;
        let [r1, r2] = self.above.map(|a| a >> t);
        let cell = (self.table as u32) + ((r0 & 3) | (r1 >> 6 & 31) << 2 | (r2 >> 7 & 7) << 7);
        self.cells[j as usize] = cell;
        self.p[j as usize] = maps.p(cell as usize);
    }

    fn learn(&mut self, maps: &mut StateMap, j: usize, bit: u32, train: bool) {
        let p = self.p[j] as u32;
        let e = if bit != 0 { 4096 - p } else { p };
        self.error = self.error - (self.error >> 12) + (e << 8 >> 12);
        if train {
            maps.update(self.cells[j] as usize, bit);
        }
    }
}

/// The bytes before, at and after `at` as 24 pixels, 0 at the block's start.
fn row_at(bytes: &[u8], at: usize) -> u32 {
    if at == 0 {
        return 0;
    }
    u32::from(bytes[at - 1]) << 16 | u32::from(bytes[at]) << 8 | u32::from(bytes[at + 1])
}

/// The longest row the finder counts, in bytes.
const FINDER_MAX: usize = 4096;

/// Votes after which the finder's counts halve: it follows the latest ~2,000.
const FINDER_DECAY: u32 = 1024;

/// Finds a bitmap's row length where the record length has not: each byte other than
/// 0x00 and 0xFF votes for its distance to the last byte of its value. A page's top is
/// white, and the record length, which waits for a value repeated at four equal
/// distances, can take some 70 of its first rows of text to find it; a stroke's byte
/// recurs one row down at once.
#[derive(Clone)]
struct RowFinder {
    /// Each byte value's last position (the count of bytes up to and including it).
    last: [u32; 256],
    /// Votes per distance.
    votes: Vec<u16>,
    /// The distance with the most votes.
    best: usize,
    /// Votes since the counts last halved.
    n: u32,
}

impl RowFinder {
    fn new() -> Self {
        RowFinder {
            last: [0; 256],
            votes: vec![0; FINDER_MAX + 1],
            best: 0,
            n: 0,
        }
    }

    /// Takes the last of `bytes`, the block so far.
    fn update(&mut self, bytes: &[u8]) {
        let (Some(&b), p) = (bytes.last(), bytes.len() as u32) else {
            return;
        };
        if b == 0 || b == 0xFF {
            return;
        }
        let last = std::mem::replace(&mut self.last[usize::from(b)], p);
        let r = p.saturating_sub(last) as usize;
        if !(MIN_ROW..=FINDER_MAX).contains(&r) {
            return;
        }
        self.votes[r] += 1;
        if self.votes[r] > self.votes[self.best] {
            self.best = r;
        }
        self.n += 1;
        if self.n == FINDER_DECAY {
            self.n = 0;
            for v in self.votes.iter_mut() {
                *v >>= 1;
            }
        }
    }

    /// The distance with the most votes, if any.
    fn row(&self) -> Option<usize> {
        (self.votes[self.best] != 0).then_some(self.best)
    }
}

/// The stretch of a mixer's dot product of weights `w` and inputs `x`: each product
/// fits 32 bits (`|w| < 2^20`, `|x| < 2^11`), and their sum once each is shifted by 8.
#[inline(always)]
fn dot(w: &[i32], x: &[i32]) -> i32 {
    let sum: i32 = w.iter().zip(x).map(|(&w, &x)| (w * x) >> 8).sum();
    (sum >> 8).clamp(-STRETCH_MAX, STRETCH_MAX)
}

/// Moves weights `w` against the error of their output `st` on `bit`, by `x · err ·
/// 2^-shift`.
#[inline(always)]
fn train(w: &mut [i32], x: &[i32], st: i32, bit: u32, shift: u32) {
    let err = ((bit as i32) << 12) - squash(st);
    for (w, &x) in w.iter_mut().zip(x) {
        *w = (*w + ((x * err + (1 << (shift - 1))) >> shift)).clamp(-W_MAX, W_MAX);
    }
}

impl Bitmap {
    pub(crate) fn new() -> Self {
        let mut offsets = [0; TEMPLATES];
        let mut total = 0;
        let sizes = DIRECT.iter().copied().chain([1 << HASHED_BITS; HASHED]);
        for (o, cells) in offsets.iter_mut().zip(sizes) {
            *o = total;
            total += cells;
        }
        // The second judge's template.
        let second = total;
        total += DIRECT[0];
        // Each template's stretch at weight 0.15 to start, the bias at 0.
        // The slow probabilities and the bias start at 0.
        let mut set = [0; MIX_INPUTS];
        set[..TEMPLATES].fill(ONE * 15 / 100);
        // The mixer's last input, the bias, is constant (the templates' are written per
        // node).
        let mut bias = [0; MIX_INPUTS];
        bias[MIX_INPUTS - 1] = 256;
        Bitmap {
            maps: StateMap::new(total, LIMIT),
            slow: StateMap::new(total, SLOW_LIMIT),
            offsets,
            weights: set.repeat(SETS.iter().sum()),
            last: [ONE / 3; 3],
            blend: [ONE / 2; 2],
            above: [0; ROWS],
            left: 0,
            on: false,
            nodes: [Node {
                cells: [0; TEMPLATES],
                inputs: bias,
                sets: [0; 3],
                dots: [0; 3],
                out: 0,
                blend: [0; 2],
                blended: 0,
            }; 8],
            judges: [Judge::new(offsets[0]), Judge::new(second)],
            using: 0,
            resting: false,
            finder: Box::new(RowFinder::new()),
        }
    }

    /// Heap bytes of one.
    pub(crate) fn table_bytes() -> u64 {
        let cells = DIRECT.iter().sum::<usize>() + DIRECT[0] + (HASHED << HASHED_BITS);
        let weights = SETS.iter().sum::<usize>() * MIX_INPUTS;
        let finder = std::mem::size_of::<RowFinder>() + 2 * (FINDER_MAX + 1);
        // `maps` and `slow`.
        (4 * (2 * cells + weights) + finder) as u64
    }

    /// Reads the pixels around the next byte, `bytes` being the block so far, where
    /// `row` (a record length, in bytes) is known.
    pub(crate) fn start_byte(&mut self, bytes: &[u8], row: Option<usize>) {
        let p = bytes.len();
        self.finder.update(bytes);
        // The finder's rows are judged while there is a record length (the data is
        // binary).
        self.judges[0].start_byte(bytes, row);
        self.judges[1].start_byte(bytes, row.and(self.finder.row()));
        let [a, b] = &self.judges;
        self.using = usize::from(b.on && (!a.on || b.error < a.error));
        let judge = &self.judges[self.using];
        self.on = judge.on;
        if !self.on {
            return;
        }
        // Where the blend has all but left the mixer out (tables that pass for bitmaps),
        // the templates and the mixer run one byte in `AWAKE` only: enough to learn
        // whether they would be worth their time again.
        self.resting = self.blend[1] < REST && !p.is_multiple_of(AWAKE);
        let r = judge.row.unwrap_or(0);
        self.above[..2].copy_from_slice(&judge.above);
        for (k, a) in self.above.iter_mut().enumerate().skip(2) {
            *a = p.checked_sub((k + 1) * r).map_or(0, |at| row_at(bytes, at));
        }
        self.left = u32::from(bytes[p - 2]) << 8 | u32::from(bytes[p - 1]);
    }

    /// Whether the templates run for this byte: rows of a record length are known.
    pub(crate) fn on(&self) -> bool {
        self.on
    }

    /// Whether the gate takes the templates' inputs and pixel contexts for this byte: they
    /// run and have predicted well.
    pub(crate) fn active(&self) -> bool {
        self.on && self.judges[self.using].error < ERROR_ON << 8
    }

    /// Computes the templates for node `c0` (the byte's bits so far under a leading 1),
    /// remembering their cells for [`Bitmap::learn`]. Where [`Bitmap::active`], mixes
    /// them, writes the gate's inputs into `row` and returns the node's pixel context (8
    /// bits: the two pixels to the left, the five above, the one two rows above); else
    /// computes the JBIG template alone, which judges whether the rows are a bitmap's, and
    /// leaves `row` as it is.
    #[inline]
    pub(crate) fn node_inputs(&mut self, c0: usize, row: &mut [i32]) -> Option<usize> {
        let j = c0.ilog2();
        // Row `k` above as 17 pixels: the one over this pixel in bit 8, `m` to its left
        // in bit `8 + m`, `m` to its right in bit `8 − m`.
        let t = 7 - j;
        let [r1, r2, r3, r4, r5, r6, r7, r8] = self.above.map(|a| (a >> t) & 0x1_FFFF);
        // This row's pixels before it, the nearest in bit 0.
        let r0 = (self.left << j) | (c0 as u32 & ((1 << j) - 1));
        for judge in self.judges.iter_mut().filter(|judge| judge.on) {
            judge.node(&self.maps, j, r0);
        }
        if !self.active() {
            // Only the templates that judge whether the rows are a bitmap's learn.
            return None;
        }
        let key = ((r0 & 3) | (r1 >> 6 & 31) << 2 | (r2 >> 8 & 1) << 7) as usize;
        if self.resting {
            row[..INPUTS].fill(0);
            return Some(key);
        }
        if j > 0 {
            // The pixel before this one is known: its node learns it now.
            self.train(j as usize - 1, c0 as u32 & 1);
        }
        let y = r0 & 1;
        let near4 = y | (r1 >> 7 & 7) << 1;
        let near6 = (r0 & 7) | (r1 >> 8 & 1) << 3 | (r2 >> 8 & 1) << 4 | (r3 >> 8 & 1) << 5;
        let box12 = (r0 & 3) | (r1 >> 6 & 31) << 2 | (r2 >> 6 & 31) << 7;
        let box24 = (r0 & 7) | (r1 >> 5 & 127) << 3 | (r2 >> 5 & 127) << 10 | (r3 >> 5 & 127) << 17;
        // The ring around `box24`, a pixel further out.
        let ring = (r0 >> 3 & 1)
            | (r1 >> 12 & 1) << 1
            | (r2 >> 12 & 1) << 2
            | (r3 >> 12 & 1) << 3
            | (r4 >> 4 & 511) << 4
            | (r3 >> 4 & 1) << 13
            | (r2 >> 4 & 1) << 14
            | (r1 >> 4 & 1) << 15;
        let black40 = box24.count_ones() + ring.count_ones();
        let column = [r1, r2, r3, r4, r5, r6, r7, r8]
            .iter()
            .fold(0, |c, r| c << 1 | (r >> 8 & 1));
        let direct: [u32; DIRECT.len()] = [
            0,
            y | (r1 >> 8 & 1) << 1,
            near4,
            (r0 & 3) | (r1 >> 8 & 1) << 2 | (r2 >> 8 & 1) << 3,
            near6,
            (r0 & 7) | (r1 >> 7 & 7) << 3 | (r2 >> 9 & 3) << 6,
            y | (r1 >> 5 & 31) << 1 | (r2 >> 8 & 1) << 6 | (r3 >> 8 & 1) << 7,
            y | (r1 >> 6 & 7) << 1 | (r2 >> 7 & 3) << 4 | (r3 >> 7 & 3) << 6,
            column,
            r0 & 255,
            y | (r1 >> 8 & 3) << 1 | (r2 >> 8 & 3) << 3 | (r3 >> 8 & 3) << 5 | (r4 >> 8 & 3) << 7,
            (r0 & 15) | (r1 >> 8 & 63) << 4,
            (r0 & 7) | (r1 >> 4 & 127) << 3 | (r2 >> 5 & 3) << 10,
            box12,
            near4.count_ones(),
            box12.count_ones(),
            box24.count_ones(),
            black40,
        ];
        let two = |r: u32| u64::from(r >> 7 & 3);
        let hashed: [u64; HASHED] = [
            u64::from(r0 & 63)
                | u64::from(r1 >> 1 & 0x1FFF) << 6
                | u64::from(r2 >> 5 & 127) << 19
                | u64::from(r3 >> 6 & 31) << 26,
            u64::from(r0 & 255) | u64::from(r1 >> 7 & 255) << 8 | (two(r2) << 2 | two(r3)) << 16,
            [r2, r3, r4, r5, r6, r7, r8]
                .iter()
                .fold(u64::from(y) | two(r1) << 1, |c, &r| c << 2 | two(r)),
            u64::from(box24),
            u64::from(box24) | u64::from(ring) << 24,
        ];
        let node = &mut self.nodes[j as usize];
        for (k, &cx) in direct.iter().enumerate() {
            node.cells[k] = (self.offsets[k] + cx as usize) as u32;
        }
        // JBIG's template: the judge's of these rows.
        node.cells[0] = self.judges[self.using].cells[j as usize];
        for (k, &key) in hashed.iter().enumerate() {
            let h = (key ^ (k as u64) << 56).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let k = DIRECT.len() + k;
            node.cells[k] = (self.offsets[k] + (h >> (64 - HASHED_BITS)) as usize) as u32;
        }
        let (stretched, slow) = node.inputs.split_at_mut(TEMPLATES);
        for ((x, s), &cell) in stretched.iter_mut().zip(slow).zip(&node.cells) {
            *x = self.maps.st(cell as usize);
            *s = (self.slow.p(cell as usize) - 2048) >> 1;
        }
        let mut first = 0;
        for (g, s) in [near4, near6, black40].into_iter().enumerate() {
            node.sets[g] = ((first + s as usize) * MIX_INPUTS) as u32;
            first += SETS[g];
        }
        let weights = &self.weights;
        crate::wide::run(
            #[inline(always)]
            || {
                for (d, &at) in node.dots.iter_mut().zip(&node.sets) {
                    let at = at as usize;
                    *d = dot(&weights[at..at + MIX_INPUTS], &node.inputs);
                }
            },
        );
        node.out = dot(&self.last, &node.dots);
        row[..INPUTS].copy_from_slice(&[
            node.out,
            node.dots[0],
            node.dots[1],
            node.dots[2],
            node.inputs[0],
        ]);
        Some(key)
    }

    /// Blends node `c0`'s 16-bit probability from the gate, `p`, with the specialist's
    /// own mixer's (after [`Bitmap::node_inputs`] returned a context for it): where a
    /// table's records pass for a bitmap's, the gate knows better.
    pub(crate) fn blend(&mut self, c0: usize, p: i32) -> i32 {
        if self.resting {
            return p;
        }
        let node = &mut self.nodes[c0.ilog2() as usize];
        node.blend = [stretch(p >> 4), node.out];
        node.blended = dot(&self.blend, &node.blend);
        squash(node.blended) << 4
    }

    /// Trains node `j`'s mixer and templates on `bit`.
    fn train(&mut self, j: usize, bit: u32) {
        let node = &self.nodes[j];
        crate::wide::run(
            #[inline(always)]
            || {
                train(&mut self.blend, &node.blend, node.blended, bit, 12);
                train(&mut self.last, &node.dots, node.out, bit, 14);
                for (&at, &st) in node.sets.iter().zip(&node.dots) {
                    let at = at as usize;
                    train(
                        &mut self.weights[at..at + MIX_INPUTS],
                        &node.inputs,
                        st,
                        bit,
                        13,
                    );
                }
            },
        );
        for &cell in &node.cells {
            self.maps.update(cell as usize, bit);
            self.slow.update(cell as usize, bit);
        }
    }

    /// Trains the cells the templates used, and the mixer, on the bits of `byte`.
    pub(crate) fn learn(&mut self, byte: u8) {
        // The templates' inputs ran for this byte, or only the judges'.
        let all = self.active();
        for j in 0..8 {
            let bit = u32::from(byte >> (7 - j)) & 1;
            for (s, judge) in self.judges.iter_mut().enumerate() {
                if judge.on {
                    // The judge of the rows in use learns with the templates.
                    judge.learn(
                        &mut self.maps,
                        j,
                        bit,
                        !all || self.resting || s != self.using,
                    );
                }
            }
            if all && j == 7 && !self.resting {
                self.train(j, bit);
            }
        }
    }
}

impl Snapshot for Node {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Node {
            cells,
            inputs,
            sets,
            dots,
            out,
            blend,
            blended,
        } = self;
        cells.walk(w);
        inputs.walk(w);
        sets.walk(w);
        dots.walk(w);
        out.walk(w);
        blend.walk(w);
        blended.walk(w);
    }
}

impl Snapshot for Judge {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Judge {
            row,
            on,
            above,
            table,
            cells,
            p,
            error,
        } = self;
        row.walk(w);
        on.walk(w);
        above.walk(w);
        w.check_len(*table);
        cells.walk(w);
        p.walk(w);
        error.walk(w);
    }
}

impl Snapshot for RowFinder {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let RowFinder {
            last,
            votes,
            best,
            n,
        } = self;
        last.walk(w);
        w.check_len(votes.len());
        w.pods(votes);
        best.walk(w);
        n.walk(w);
    }
}

impl Snapshot for Bitmap {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Bitmap {
            maps,
            slow,
            offsets,
            weights,
            last,
            blend,
            above,
            left,
            on,
            nodes,
            judges,
            using,
            resting,
            finder,
        } = self;
        maps.walk(w);
        slow.walk(w);
        for &o in offsets.iter() {
            w.check_len(o);
        }
        w.check_len(weights.len());
        w.pods(weights);
        last.walk(w);
        blend.walk(w);
        above.walk(w);
        left.walk(w);
        on.walk(w);
        nodes.walk(w);
        judges.walk(w);
        using.walk(w);
        resting.walk(w);
        finder.walk(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bitmap that has coded `bytes` as the mixer does, given record length `row`.
    fn learned(bytes: &[u8], row: usize) -> Bitmap {
        let mut b = Bitmap::new();
        for (i, &byte) in bytes.iter().enumerate() {
            b.start_byte(&bytes[..i], Some(row));
            if b.on() {
                for j in 0..8 {
                    b.node_inputs((1 << j) | usize::from(byte) >> (8 - j), &mut [0; INPUTS]);
                }
            }
            b.learn(byte);
        }
        b
    }

    #[test]
    fn the_templates_see_the_pixels_around_the_one_coded() {
        // Rows of 4 bytes; one black pixel in the row above, bit 4 of the byte above.
        let mut bytes = vec![0u8; 18];
        bytes[14] = 0b0001_0000;
        let mut b = Bitmap::new();
        b.start_byte(&bytes, Some(4));
        assert!(
            b.on() && !b.active(),
            "runs, but has not yet predicted well"
        );
        let mut row = [i32::MIN; INPUTS];
        assert_eq!(b.node_inputs(1, &mut row), None);
        assert_eq!(
            row,
            [i32::MIN; INPUTS],
            "an inactive bitmap leaves its columns alone"
        );
        b.judges[0].error = 0;
        // Three pixels of the byte coded (c0 = 0b1000): the fourth is under the black one,
        // the middle of the five above.
        assert_eq!(b.node_inputs(0b1000, &mut row), Some(0b00100 << 2));
        // Two coded: the black pixel is above and to the right.
        assert_eq!(b.node_inputs(0b100, &mut row), Some(0b00010 << 2));
        // Six coded, the last two of them black: the two pixels to the left.
        assert_eq!(b.node_inputs(0b100_0011, &mut row), Some(0b11));
        // Rows too short for a bitmap, or not yet three rows above: the templates rest.
        b.start_byte(&bytes[..12], Some(4));
        assert!(!b.on());
        b.start_byte(&bytes, Some(MIN_ROW - 1));
        assert!(!b.on());
        b.start_byte(&bytes, None);
        assert!(!b.on());
    }

    #[test]
    fn the_rows_stay_while_the_record_length_is_a_multiple_of_them() {
        let bytes = vec![0u8; 100];
        let mut b = Bitmap::new();
        for (detected, rows) in [(4, 4), (8, 4), (16, 4), (12, 4), (20, 20), (5, 5), (6, 6)] {
            b.start_byte(&bytes, Some(detected));
            assert_eq!(b.judges[0].row, Some(rows), "{detected}");
        }
        b.start_byte(&bytes, None);
        assert!(!b.on() && b.judges[0].row == Some(6));
    }

    #[test]
    fn the_mixer_rests_where_the_blend_leaves_it_out() {
        // A page of vertical stripes, learned; then a blend that gives the mixer no weight.
        let bytes: Vec<u8> = [0b1100_1010u8; 8].repeat(256);
        let mut b = learned(&bytes, 8);
        b.blend[1] = 0;
        let mut row = [7; INPUTS];
        let mut keys = Vec::new();
        // Byte 2,047 rests, byte 2,048 (a multiple of 8) wakes.
        for (p, rests) in [(bytes.len() - 1, true), (bytes.len(), false)] {
            b.start_byte(&bytes[..p], Some(8));
            assert!(b.active());
            keys.push(b.node_inputs(1, &mut row));
            assert_eq!(b.resting, rests, "{p}");
            // The columns are 0 only while resting.
            assert_eq!(row.iter().all(|&x| x == 0), rests, "{p}: {row:?}");
            // Resting, the gate's probability goes through as it is.
            assert_eq!(b.blend(1, 12_345) == 12_345, rests, "{p}");
        }
        // The node's key is its pixels' either way (the same pixels around both bytes).
        assert!(keys[0].is_some() && keys[0] == keys[1]);
    }

    #[test]
    fn rows_the_record_length_misses_are_found_and_judged() {
        // Rows of 24 bytes, each byte repeating the one above; the record length given is
        // 4 bytes.
        let bytes: Vec<u8> = (1..=24u8).collect::<Vec<_>>().repeat(64);
        let mut b = learned(&bytes, 4);
        assert_eq!(b.finder.row(), Some(24));
        assert_eq!(b.judges[1].row, Some(24));
        assert!(b.judges[1].error < b.judges[0].error);
        assert_eq!(b.using, 1, "the found rows predict better");
        assert!(b.active());
        // Without a record length the data is not taken for binary: no judge runs.
        b.start_byte(&bytes, None);
        assert!(!b.on());
    }

    #[test]
    fn the_templates_learn_the_pixels_that_came() {
        // A page of vertical stripes: each pixel is the one above it.
        let bytes: Vec<u8> = [0b1100_1010u8; 8].repeat(256);
        let mut b = learned(&bytes, 8);
        let mut row = [0; INPUTS];
        assert!(b.active());
        b.start_byte(&bytes, Some(8));
        b.node_inputs(1, &mut row);
        assert!(
            row.iter().all(|&x| x > 1000),
            "the first pixel is black: {row:?}"
        );
        b.node_inputs(0b111, &mut row);
        assert!(
            row.iter().all(|&x| x < -1000),
            "the third is white: {row:?}"
        );
    }
}
