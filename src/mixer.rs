//! The meta-gate: mixes the experts' opinions into one next-byte distribution.
//!
//! The byte is modelled as 8 binary decisions (nodes `c0 = 1..=255` of its bit tree). For
//! every node each expert gives the mixer one or more inputs in the logistic domain
//! (`src/logistic.rs`). From format version 6 three weight sets weigh them, each chosen by
//! the node and a context of its own (the copy experts' match state with the context class
//! — letter, digit, space, punctuation, binary, derived from the bytes —; nothing more; the
//! top bits of the last two bytes), each learning from its own prediction, and a final
//! mixer weighs their three outputs (paq8's two-layer network); before, the first set
//! alone. Two adaptive probability maps (secondary estimation on the node, and on the node
//! with the previous byte) calibrate the result. A byte is coded as its high nibble, whose
//! 16 probabilities are the products along the paths through the tree's top 4 levels (15
//! nodes), and then its low nibble, from the 15-node subtree below the high nibble that
//! came (before version 6 the full 256-symbol distribution, with unlikely subtrees shared
//! out flat). After the byte is coded the 8 nodes on its path learn.
//!
//! All arithmetic is integer: the same inputs give the same weights on every machine and
//! thread count. Weight updates follow the gradient of the coding cost, as in the
//! context-mixing compressors (paq, lpaq).

use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::error::Error;
use crate::experts::copy::Copy;
use crate::experts::orders::{Kind, Orders, Surprise};
use crate::experts::retrieval::Retrieval;
use crate::experts::{NeuralExpert, NeuralModel, Predictor, Weights};
use crate::format::{profile_mask, BITS_VERSION};
use crate::hint::prefetch;
use crate::logistic::{squash, stretch, STRETCH_MAX};

/// The primer (format version 7 on, with the header flag
/// [`FLAG_PRIMED`](crate::format::FLAG_PRIMED)): text, code, markup and data cut from the
/// training corpus by `onnx-models/primer.py`. Every lane codes it, without output, before
/// each block, so a block starts with tables, copy history and gate that know what such
/// bytes look like (a small file gains most; zstd's and brotli's dictionaries play the same
/// part). A primed state is built once per table size and copied at each block start.
pub const PRIMER: &[u8] = include_bytes!("../onnx-models/nc-primer.bin");

/// Most mixer inputs per node (all experts together need 16; the APMs calibrate, so no
/// bias input is needed).
const MAX_INPUTS: usize = 16;

pub use crate::format::{
    EXPERT_LONG_COPY, EXPERT_NEURAL_INPUT, EXPERT_ORDERS, EXPERT_RETRIEVAL, EXPERT_SHORT_COPY,
    EXPERT_SPARSE, EXPERT_TEXT, MIX_EXPERTS,
};

/// Named presets of the mixing predictor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// Orders 1-4 and 6, word and column contexts, the long copy: the quickest. (Before
    /// format version 9 it left the word and column contexts out: streams of that expert
    /// set still decode, and are listed as `fast`.)
    Fast,
    /// All context (orders, text, sparse), copy and retrieval experts; no neural model.
    #[default]
    Default,
    /// Everything, the neural expert included: the smallest output, the slowest.
    Max,
}

impl Profile {
    /// The experts of this profile, as an `expert_mask`.
    pub fn experts(self) -> u32 {
        match self {
            Profile::Fast => profile_mask::FAST,
            Profile::Default => profile_mask::DEFAULT,
            Profile::Max => profile_mask::MAX,
        }
    }

    /// The profile whose expert set is `mask`, if any (`fast`'s set before format version
    /// 9 included).
    pub fn from_experts(mask: u32) -> Option<Profile> {
        if mask == profile_mask::FAST_BEFORE_9 {
            return Some(Profile::Fast);
        }
        [Profile::Fast, Profile::Default, Profile::Max]
            .into_iter()
            .find(|p| p.experts() == mask)
    }

    /// The profile's name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Default => "default",
            Profile::Max => "max",
        }
    }
}

/// Online logistic mixing: `p = squash(sum w_i x_i)` with one weight vector per selected set.
/// Vectors are a fixed `N` wide (unused inputs are zero) so the products vectorise; every
/// term is shifted before summing so `i32` cannot overflow (`|x| < 2^11`, `|w| < 2^19`).
struct Mixer<const N: usize = MAX_INPUTS> {
    /// The weight sets, set `i` at `weights[start + i * N..][..N]`: `start` puts the first
    /// on a cache-line boundary, so a 16-input set is one line (a `Vec` from the allocator
    /// starts 16 bytes into a page, which put every set across two).
    weights: Vec<i32>,
    start: usize,
    sets: usize,
    rate: i32,
}

impl<const N: usize> Clone for Mixer<N> {
    fn clone(&self) -> Self {
        // A copy has its own address, hence its own `start`.
        let mut m = Mixer::new(self.sets, self.rate, 0);
        m.weights[m.start..].copy_from_slice(&self.weights[self.start..]);
        m
    }
}

/// Weight 1.0.
const WEIGHT_ONE: i32 = 1 << 16;
/// Weights stay within +-8.0.
const WEIGHT_LIMIT: i32 = (8 << 16) - 1;

impl<const N: usize> Mixer<N> {
    fn new(sets: usize, rate: i32, init: i32) -> Self {
        const LINE: usize = 64 / std::mem::size_of::<i32>();
        let mut weights = vec![init; sets * N + LINE];
        let start = weights.as_ptr().align_offset(64).min(LINE);
        weights.truncate(start + sets * N);
        Mixer {
            weights,
            start,
            sets,
            rate,
        }
    }

    fn reset(&mut self, init: i32) {
        self.weights.fill(init);
    }

    /// Heap bytes held.
    #[cfg(test)]
    fn capacity_bytes(&self) -> u64 {
        (self.weights.capacity() * std::mem::size_of::<i32>()) as u64
    }

    #[inline(always)]
    fn row(&self, set: usize) -> &[i32] {
        let at = self.start + set * N;
        &self.weights[at..at + N]
    }

    #[inline(always)]
    fn row_mut(&mut self, set: usize) -> &mut [i32] {
        let at = self.start + set * N;
        &mut self.weights[at..at + N]
    }

    /// Starts fetching weight set `set`.
    #[inline(always)]
    fn prefetch(&self, set: usize) {
        prefetch(&self.weights, self.start + set * N);
    }

    /// The mixed stretch of inputs `x` under weight set `set`.
    #[inline(always)]
    fn dot(&self, set: usize, x: &[i32; N]) -> i32 {
        let mut sum = 0i32;
        for (&w, &x) in self.row(set).iter().zip(x) {
            sum += (w * x) >> 8;
        }
        (sum >> 8).clamp(-STRETCH_MAX, STRETCH_MAX)
    }

    /// One gradient step of set `set` after predicting `p` (12-bit) for a bit that came out
    /// `bit`.
    #[inline(always)]
    fn train(&mut self, set: usize, x: &[i32; N], p: i32, bit: u32, boost: i32) {
        let err = ((bit as i32) << 12) - p;
        let rate = self.rate + boost;
        for (w, &x) in self.row_mut(set).iter_mut().zip(x) {
            *w = (*w + ((x * err * rate) >> 16)).clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT);
        }
    }
}

/// Adaptive probability map: refines a probability given a context, interpolating between
/// 33 points on the stretch axis.
#[derive(Clone)]
struct Apm {
    table: Vec<u16>,
    rate: u32,
}

impl Apm {
    fn new(contexts: usize, rate: u32) -> Self {
        let mut table = vec![0u16; contexts * 33];
        Self::init(&mut table);
        Apm { table, rate }
    }

    fn init(table: &mut [u16]) {
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

    fn reset(&mut self) {
        Self::init(&mut self.table);
    }

    /// Refined 16-bit probability (`0..2^16`) of stretch `st` in context `cx`, and the
    /// index to update.
    #[inline(always)]
    fn refine(&self, st: i32, cx: usize) -> (i32, u32) {
        let s = st + 2048;
        let w = s & 127;
        let i = (s >> 7) as usize + cx * 33;
        let p = (i32::from(self.table[i]) * (128 - w) + i32::from(self.table[i + 1]) * w) >> 7;
        // Point to the nearer of the two points: it learns.
        let near = if w < 64 { i } else { i + 1 };
        (p, near as u32)
    }

    #[inline(always)]
    fn update(&mut self, index: u32, bit: u32) {
        let g = ((bit << 16) + (bit << self.rate) - bit - bit) as i32;
        let t = &mut self.table[index as usize];
        *t = (i32::from(*t) + ((g - i32::from(*t)) >> self.rate)) as u16;
    }
}

/// Character class of a byte, for choosing weight sets: the gate's context class.
fn class(byte: u8) -> usize {
    match byte {
        b'a'..=b'z' | b'A'..=b'Z' => 0,
        b'0'..=b'9' => 1,
        b' ' | b'\n' | b'\r' | b'\t' => 2,
        0x21..=0x7E => 3,
        _ => 4,
    }
}
const CLASSES: usize = 5;
/// A high nibble below `2^-SKIP_BELOW_BITS` probability gets no low-nibble evaluation.
/// Measured on the bench corpus (`nccat -z` per file) and 8 MiB of text (`nccat`, 2
/// threads), format version 2: 8 gave 1,384,463 bytes and 0.245/0.213 MB/s, 7 gives
/// 1,388,064 and about 0.27/0.28 MB/s.
const SKIP_BELOW_BITS: u32 = 7;
/// The least probability a decision is coded with, out of 2^16 (bit coding): a surprise
/// costs at most 13 bits, and `Header::max_raw_len` relies on it. On the bench corpus 32
/// cost 0.03% on the most predictable files, 2 and 8 were within 40 bytes of each other.
const P_MIN: i32 = 8;
/// Contexts of the order-2 APM (format version 9 on).
const APM2_ROWS: usize = 1 << 16;
/// Match-state buckets for the first mixer's weight sets.
const MATCH_STATES: usize = 4;
/// From version 6 the APMs learn at rate 1/64 over a block's first 128 KiB, then 1/128
/// (before, 1/128 throughout). On the 7 files of `GROUPS`: 249,817 bytes at 1/128
/// throughout, 249,660 switching at 32 KiB, 249,655 at 128 KiB (book1 200,161 -> 200,113,
/// enwik6 225,362 -> 225,308); 1/64 throughout had cost book1 119 bytes in version 5.
const APM_FAST_BYTES: usize = 128 << 10;
/// The gate's learning boost from version 6 (version 5: 36 over 8 KiB): the rate gains
/// `peak * horizon / (horizon + bytes so far)`. The three groups each see a third of the
/// traffic a single set saw, and learn faster for longer. On the 7 files of `GROUPS`: 36/8
/// KiB gave 250,961 bytes, 64/16 KiB 250,093, 96/16 KiB 249,817, 128/16 KiB 249,727 (the
/// text files a little larger); on paper1, 3, 4, 5, 6, progc, fields.c, cp.html,
/// grammar.lsp and xargs.1, 69,240 bytes at 36/8 KiB, 68,867 at 96/16 KiB.
const BOOST: (usize, usize) = (96, 16384);
/// Learning rate of the gate's second layer (the first's is 12, plus a boost while the
/// block is young). Its weight sets are the first group's (node, match state, class). On
/// the 7 files of `GROUPS`, with all four groups: rate 6 and sets per node alone 251,403
/// bytes; per node and match state 251,140 (rate 9) and 251,158 (rate 12); per node, match
/// state and class 251,083 (rate 9); per node and class 251,156.
const FINAL_RATE: i32 = 9;

/// The mixing state of one lane: its block so far, its experts and its gate.
#[derive(Clone)]
struct Lane {
    /// Length of the block the tables were sized for.
    block_len: usize,
    bytes: Vec<u8>,
    orders: Option<Orders>,
    long: Option<Copy>,
    short: Option<Copy>,
    retrieval: Option<Retrieval>,
    n: usize,
    /// Context of the order-1 APM: the previous byte, times 256.
    cx1: usize,
    /// High nibbles whose low-nibble subtree was evaluated for the current byte.
    evaluated: u16,
    /// The gate's first layer: one mixer per weight-set group ([`GROUPS`] from version 6,
    /// the first alone before).
    mixers: Vec<Mixer>,
    /// The weight set each group uses for the current byte, times 256: the node is added
    /// to it.
    sets: [usize; GROUPS],
    /// The second layer (version 6 on): weighs the groups' outputs, with the first group's
    /// weight sets.
    final_mix: Option<Mixer<GROUPS>>,
    apm_order0: Apm,
    /// Secondary estimation on the node and the previous byte (empty from version 9).
    apm_order1: Apm,
    /// Format version 9 on: secondary estimation on the node and the last two bytes
    /// (hashed with the node to 2^16 contexts, as lpaq's second APM).
    apm_order2: Option<Apm>,
    /// Its context for the current byte: the hash of the last two bytes.
    cx2: usize,
    /// Per node: the inputs, the gate's output, the APM points used, and each group's
    /// output (stretch, for the second layer) and prediction (for its own training).
    inputs: Box<[[i32; MAX_INPUTS]; 256]>,
    p_mix: Box<[i32; 256]>,
    apm_index: Box<[[u32; 2]; 256]>,
    group_st: Box<[[i32; GROUPS]; 256]>,
    group_p: Box<[[i32; GROUPS]; 256]>,
    /// Subtrees coded flat share their mass by `low_counts` (format version 5 on) rather
    /// than evenly.
    spread_by_counts: bool,
    /// Per character class of the previous byte and high nibble: how often each low nibble
    /// came (counts from 1, in steps of 16, halved past 4000). On alice29.txt, paper2,
    /// progc, news, obj2, cp.html and bib (`nccat -z` per file, builds differing only in
    /// this index): evenly 256,273 bytes, counts per high nibble alone 255,517, per class
    /// 255,357, per previous byte 255,368.
    low_counts: [[[u16; 16]; 16]; CLASSES],
    /// `class` of the previous byte.
    low_class: usize,
    /// Code the byte as two nibbles (`Spec::nibbles`).
    nibbles: bool,
    /// Code the byte bit by bit (`Spec::bits`).
    bits: bool,
    /// The gate's learning boost (`Spec::boost`).
    boost: (usize, usize),
    /// The APMs learn at rate 1/64 before this many bytes, 1/128 after (`Spec`).
    apm_fast_bytes: usize,
    /// Bytes of `bytes` before the block's first: the primer's. The boost and the APMs'
    /// fast start count from the block's first byte.
    start: usize,
}

/// Weight-set groups of the gate's first layer from format version 6. Each group's context
/// (with the node): the copy match state and the previous byte's class (version 2's single
/// set); none; the top 3 bits of the two previous bytes. On alice29.txt, paper2, progc,
/// news, obj2, cp.html and bib (`nccat -z` per file, builds differing only in the groups,
/// second layer per node at rate 6): the first alone 254,705 bytes; with the classes of the
/// two previous bytes, averaged 252,772, under a second layer 252,531; first, classes and
/// none 251,879; first, none and top bits (kept) 251,580; all four 251,403, but each group
/// costs about 10% of the time (its weights miss the caches), so the classes were left out.
const GROUPS: usize = 3;
/// Weight sets per group, each times 256 nodes.
const GROUP_SETS: [usize; GROUPS] = [MATCH_STATES * CLASSES, 1, 64];

/// Which experts a lane runs and how large its tables are.
#[derive(Clone, Debug)]
struct Spec {
    kinds: Vec<Kind>,
    long: bool,
    short: bool,
    retrieval: bool,
    neural: bool,
    /// The context table holds `2^(block_bits + table_extra)` slots, at most
    /// `2^table_max`.
    table_extra: u32,
    table_max: u32,
    /// The context counters' setback on a surprise.
    surprise: Surprise,
    /// Format version 5 on: record contexts in the word slots on binary data
    /// (`Orders::new`), and subtrees coded flat share their mass by low-nibble counts.
    records: bool,
    /// Format version 6 on: a byte is coded as its high nibble, then its low nibble
    /// ([`Predictor::codes_nibbles`]), so no subtree is coded flat.
    nibbles: bool,
    /// Format version 6 on: the gate has [`GROUPS`] weight-set groups under a second layer.
    groups: bool,
    /// Format version 9 on: a byte is coded as 8 binary decisions
    /// ([`Predictor::codes_bits`]), so only the 8 nodes on its path are evaluated, with a
    /// 16-bit probability each.
    bits: bool,
    /// The gate's learning boost at the block start and the bytes over which it halves.
    boost: (usize, usize),
    /// The APMs learn at rate 1/64 over the block's first this many bytes (0 before
    /// version 6), then 1/128.
    apm_fast_bytes: usize,
    /// Format version 7 on, when the header says so: the lanes code [`PRIMER`] before each
    /// block.
    primer: Option<&'static [u8]>,
    /// What the spec was made from: the key of a primed state.
    version: u16,
    mask: u32,
}

impl Spec {
    /// The lanes of experts `mask` as format `version` (`2..=VERSION`) computes them.
    fn new(mask: u32, version: u16) -> Spec {
        let mut kinds = Vec::new();
        if mask & EXPERT_ORDERS != 0 {
            kinds.extend([1, 2, 3, 4, 6].map(Kind::Order));
        }
        if mask & EXPERT_TEXT != 0 {
            kinds.extend([Kind::Word, Kind::Column]);
            // Version 4: the current word alone as well, where the mixer has room for it
            // (16 inputs): with the neural expert, which knows words, it is left out.
            if version >= 4 && mask & EXPERT_NEURAL_INPUT == 0 {
                kinds.push(Kind::Unigram);
            }
        }
        if mask & EXPERT_SPARSE != 0 {
            kinds.extend([Kind::Sparse(0b110), Kind::Sparse(0b1101)]);
        }
        Spec {
            kinds,
            long: mask & EXPERT_LONG_COPY != 0,
            short: mask & EXPERT_SHORT_COPY != 0,
            retrieval: mask & EXPERT_RETRIEVAL != 0,
            neural: mask & EXPERT_NEURAL_INPUT != 0,
            // Version 3: twice the slots for blocks under 1 MiB (a block can create up to 18
            // slots per byte, so small tables lost contexts to collisions) but no more than
            // version 2's 64 MiB for the default block, and nonstationary counters.
            table_extra: if version >= 3 { 2 } else { 1 },
            table_max: if version >= 3 { 21 } else { 22 },
            surprise: if version >= 3 {
                Surprise::CURRENT
            } else {
                Surprise::NONE
            },
            records: version >= 5,
            nibbles: version >= 6,
            groups: version >= 6,
            bits: version >= BITS_VERSION,
            boost: if version >= 6 { BOOST } else { (36, 8192) },
            apm_fast_bytes: if version >= 6 { APM_FAST_BYTES } else { 0 },
            primer: None,
            version,
            mask,
        }
    }

    /// log2 of the context table's slots and of the copy tables' entries for a block of
    /// `len` bytes. Tables follow the block's length, never the lane count, so a decoder
    /// builds the same tables whatever lanes it runs; short blocks get small, cache-resident
    /// tables.
    fn table_bits(&self, len: usize) -> (u32, u32) {
        let bits = |len: usize| usize::BITS - len.max(256).saturating_sub(1).leading_zeros();
        let primer = self.primer.map_or(0, <[u8]>::len);
        // A primed lane's context table holds the primer's contexts as well as the
        // block's; its copy tables index positions of either, never fewer than the
        // primer's. (Copy tables sized for the sum would double for the default 1 MiB
        // block, +70 MB of peak memory at 2 lanes, for 3 bytes on enwik6; a context table
        // sized by the larger alone lost 0.5% on asyoulik.txt, bib and obj2.)
        let (context_bits, copy_bits) = (bits(len + primer), bits(len.max(primer)));
        (
            (context_bits + self.table_extra).clamp(10, self.table_max),
            copy_bits.clamp(10, 22),
        )
    }

    /// An upper bound on the heap bytes of one lane coding a block of `len` bytes: the
    /// tables that scale with the block, exactly, plus a margin for the fixed-size state.
    fn lane_bytes(&self, len: usize) -> u64 {
        let (table_bits, copy_bits) = self.table_bits(len);
        let mut bytes = 0;
        if !self.kinds.is_empty() {
            bytes += Orders::table_bytes(table_bits);
        }
        bytes +=
            u64::from(u8::from(self.long) + u8::from(self.short)) * Copy::table_bytes(copy_bits);
        if self.retrieval {
            bytes += Retrieval::table_bytes(copy_bits);
        }
        // Each mixer's sets, and up to a cache line to align them.
        let rows = |sets: usize, n: usize| ((256 * sets * n + 16) * 4) as u64;
        bytes += if self.groups {
            GROUP_SETS.iter().map(|&s| rows(s, MAX_INPUTS)).sum::<u64>()
                + rows(GROUP_SETS[0], GROUPS)
        } else {
            rows(GROUP_SETS[0], MAX_INPUTS)
        };
        // Bit coding refines with the order-2 APM where nibble coding used the order-1.
        let apm_rows = 256 + if self.bits { APM2_ROWS } else { 256 * 256 };
        bytes += (apm_rows * 33 * std::mem::size_of::<u16>()) as u64;
        // The history holds the primer and the block; a growing `Vec` may double once.
        bytes += 2 * (len + self.primer.map_or(0, <[u8]>::len)) as u64;
        bytes + LANE_FIXED_BYTES
    }

    fn inputs(&self) -> usize {
        self.kinds.len()
            + Copy::INPUTS * (usize::from(self.long) + usize::from(self.short))
            + Retrieval::INPUTS * usize::from(self.retrieval)
            + usize::from(self.neural)
    }
}

impl Lane {
    fn new(spec: &Spec, block_len: usize) -> Box<Lane> {
        let n = spec.inputs();
        // Every expert set fits: 10 contexts + 3 x 2 copy/retrieval = 16, or 9 contexts (no
        // unigram) + 3 x 2 + 1 neural = 16.
        debug_assert!(n <= MAX_INPUTS);
        let (table_bits, copy_bits) = spec.table_bits(block_len);
        let mut lane = Box::new(Lane {
            block_len,
            bytes: Vec::with_capacity(block_len),
            orders: (!spec.kinds.is_empty())
                .then(|| Orders::new(&spec.kinds, table_bits, spec.surprise, spec.records)),
            long: spec.long.then(|| Copy::new(12, copy_bits)),
            short: spec.short.then(|| Copy::new(4, copy_bits)),
            retrieval: spec.retrieval.then(|| Retrieval::new(copy_bits)),
            n,
            cx1: 0,
            evaluated: 0,
            mixers: if spec.groups {
                GROUP_SETS
                    .iter()
                    .map(|&n| Mixer::new(256 * n, 12, WEIGHT_ONE / 4))
                    .collect()
            } else {
                vec![Mixer::new(256 * GROUP_SETS[0], 12, WEIGHT_ONE / 4)]
            },
            sets: [0; GROUPS],
            final_mix: spec
                .groups
                .then(|| Mixer::new(256 * GROUP_SETS[0], FINAL_RATE, WEIGHT_ONE / GROUPS as i32)),
            group_st: Box::new([[0; GROUPS]; 256]),
            group_p: Box::new([[2048; GROUPS]; 256]),
            apm_order0: Apm::new(256, 7),
            // Bit coding has the order-2 APM instead (on the bench corpus the order-1 one
            // beside it saved 0.003%, for 4 MiB per lane and a cache miss per node).
            apm_order1: Apm::new(if spec.bits { 0 } else { 256 * 256 }, 7),
            apm_order2: spec.bits.then(|| Apm::new(APM2_ROWS, 7)),
            cx2: 0,
            inputs: Box::new([[0; MAX_INPUTS]; 256]),
            p_mix: Box::new([2048; 256]),
            apm_index: Box::new([[0; 2]; 256]),
            spread_by_counts: spec.records,
            low_counts: [[[1; 16]; 16]; CLASSES],
            low_class: 0,
            nibbles: spec.nibbles,
            bits: spec.bits,
            boost: spec.boost,
            apm_fast_bytes: spec.apm_fast_bytes,
            start: 0,
        });
        lane.reset();
        lane
    }

    /// Codes `primer` as if it began the block (its bytes stay in the history for the copy
    /// experts); the block's own bytes then start the boost and the APMs' fast phase. A
    /// neural input, which the primer does not drive, sits at 0 (even odds).
    fn prime(&mut self, primer: &[u8], neural: bool) {
        let even = [1u32; 256];
        let mut out = [0u32; 256];
        let mut low = [0u32; 16];
        for &b in primer {
            self.predict(neural.then_some(&even), &mut out);
            if self.bits {
                for j in 0..8 {
                    self.predict_bit((1 << j) | usize::from(b) >> (8 - j));
                }
            } else if self.nibbles {
                self.predict_low(usize::from(b >> 4), &mut low);
            }
            self.update(b);
        }
        self.start_block();
    }

    /// Marks the block's first byte: the boost and the APMs' fast phase count from here.
    fn start_block(&mut self) {
        self.start = self.bytes.len();
        let rate = if self.apm_fast_bytes > 0 { 6 } else { 7 };
        self.apm_order0.rate = rate;
        self.apm_order1.rate = rate;
        if let Some(a) = &mut self.apm_order2 {
            a.rate = rate;
        }
    }

    fn reset(&mut self) {
        self.bytes.clear();
        if let Some(o) = &mut self.orders {
            o.reset();
        }
        for c in [&mut self.long, &mut self.short].into_iter().flatten() {
            c.reset();
        }
        if let Some(r) = &mut self.retrieval {
            r.reset();
        }
        for m in self.mixers.iter_mut() {
            m.reset(WEIGHT_ONE / 4);
        }
        if let Some(f) = &mut self.final_mix {
            f.reset(WEIGHT_ONE / GROUPS as i32);
        }
        self.low_counts = [[[1; 16]; 16]; CLASSES];
        self.apm_order0.reset();
        self.apm_order1.reset();
        if let Some(a) = &mut self.apm_order2 {
            a.reset();
        }
        for row in self.inputs.iter_mut() {
            *row = [0; MAX_INPUTS];
        }
        self.start_block();
    }

    /// Fills `out` with the next byte's weights; `neural` holds the neural expert's weights
    /// when it takes part.
    fn predict(&mut self, neural: Option<&Weights>, out: &mut Weights) {
        let mut col = 0;
        if let Some(o) = &mut self.orders {
            if self.bits {
                // The inputs follow node by node in `predict_bit`.
                o.lookup_high();
            } else {
                o.predict_high(&mut self.inputs, col);
            }
            col += o.inputs();
        }
        let mut longest = 0;
        for c in [&mut self.long, &mut self.short].into_iter().flatten() {
            c.predict(&self.bytes, &mut self.inputs, col);
            col += Copy::INPUTS;
            longest = longest.max(c.len());
        }
        if let Some(r) = &mut self.retrieval {
            r.predict(&self.bytes, &mut self.inputs, col);
            col += Retrieval::INPUTS;
        }
        if let Some(w) = neural {
            neural_inputs(w, &mut self.inputs, col);
            col += 1;
        }
        debug_assert_eq!(col, self.n);
        let last = self.bytes.last().copied().unwrap_or(0);
        let match_state = match longest {
            0 => 0,
            1..=15 => 1,
            16..=31 => 2,
            _ => 3,
        };
        let before = self.bytes.len().checked_sub(2).map_or(0, |i| self.bytes[i]);
        self.sets = [
            match_state * CLASSES + class(last),
            0,
            usize::from(before >> 5) * 8 + usize::from(last >> 5),
        ]
        .map(|s| s * 256);
        self.low_class = class(last);
        self.cx1 = usize::from(last) * 256;
        let two = u32::from(last) | u32::from(before) << 8;
        self.cx2 = (two.wrapping_mul(0x9E37_79B1) >> 16) as usize;
        if self.bits {
            self.prefetch_gate(1);
            return;
        }

        // Probabilities of the high nibble's nodes, then the mass of every high nibble.
        let mut high = [0u64; 32];
        high[1] = 1 << 40;
        for c0 in 1..16 {
            self.split(c0, c0, &mut high);
        }
        if self.nibbles {
            // The high nibble is coded by itself; `predict_low` follows for the one that
            // came. Masses sum to 2^40; scaled down they stay below 2^31.
            for (w, &m) in out[..16].iter_mut().zip(&high[16..]) {
                *w = (m >> 9) as u32;
            }
            return;
        }
        let mut mass = [0u64; 512];
        mass[..32].copy_from_slice(&high);
        // The low nibble's subtree only where its high nibble is plausible: elsewhere its
        // 16 bytes share the (tiny) mass by how often each came after such a byte (evenly
        // before version 5), and the subtree is evaluated after the fact if the byte
        // lands there. Encoder and decoder skip the same subtrees.
        self.evaluated = 0;
        for nibble in 0..16 {
            if mass[16 + nibble] >= (1 << 40) >> SKIP_BELOW_BITS {
                self.evaluated |= 1 << nibble;
            }
        }
        if let Some(o) = &mut self.orders {
            o.predict_low(self.evaluated, &mut self.inputs, 0);
        }
        for nibble in 0..16 {
            if self.evaluated & (1 << nibble) == 0 {
                let m = mass[16 + nibble];
                let leaves = &mut mass[256 + nibble * 16..256 + nibble * 16 + 16];
                if self.spread_by_counts {
                    // In proportion to how often each low nibble followed this high
                    // nibble after a byte of this class (every count is at least 1).
                    // One division per subtree: a unit of `m / Σc` per count.
                    let counts = &self.low_counts[self.low_class][nibble];
                    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
                    let unit = m / total;
                    let mut given = 0;
                    for (leaf, &c) in leaves.iter_mut().zip(counts) {
                        *leaf = unit * u64::from(c);
                        given += *leaf;
                    }
                    leaves[0] += m - given;
                } else {
                    leaves.fill(m / 16);
                    leaves[0] += m % 16;
                }
                continue;
            }
            for j in 0..4 {
                for low in 0..(1usize << j) {
                    let c0 = ((16 + nibble) << j) | low;
                    self.split(c0, c0, &mut mass);
                }
            }
        }
        for (w, &m) in out.iter_mut().zip(mass[256..].iter()) {
            // Path masses sum to 2^40; scaled down they stay below 2^31.
            *w = (m >> 9) as u32;
        }
    }

    /// The low nibble's 16 weights once the high nibble is known to be `high` (nibble
    /// coding): its subtree is evaluated from a mass of 2^40.
    fn predict_low(&mut self, high: usize, out: &mut [u32; 16]) {
        self.evaluated = 1 << high;
        if let Some(o) = &mut self.orders {
            o.predict_low(self.evaluated, &mut self.inputs, 0);
        }
        // `mass[k]` is the mass of node `((16 + high) << depth) | offset` for `k = (1 <<
        // depth) | offset`, as in a tree of its own.
        let mut mass = [0u64; 32];
        mass[1] = 1 << 40;
        for k in 1..16 {
            let depth = 31 - (k as u32).leading_zeros();
            self.split(
                ((16 + high) << depth) | (k & ((1 << depth) - 1)),
                k,
                &mut mass,
            );
        }
        for (w, &m) in out.iter_mut().zip(&mass[16..]) {
            *w = (m >> 9) as u32;
        }
    }

    /// Starts fetching the gate's weight and APM rows of node `c0` (and of its sibling,
    /// which shares their cache lines or sits next to them): the node's rows are known a
    /// decision ahead, and a decision waits on them otherwise.
    #[inline(always)]
    fn prefetch_gate(&self, c0: usize) {
        for (g, m) in self.mixers.iter().enumerate() {
            m.prefetch(self.sets[g] + c0);
            m.prefetch(self.sets[g] + (c0 ^ 1));
        }
        if let Some(f) = &self.final_mix {
            f.prefetch(self.sets[0] + c0);
        }
        if let Some(a) = &self.apm_order2 {
            prefetch(&a.table, ((self.cx2 ^ c0) & (APM2_ROWS - 1)) * 33 + 16);
            prefetch(&a.table, ((self.cx2 ^ c0 ^ 1) & (APM2_ROWS - 1)) * 33 + 16);
        }
    }

    /// P(1) of node `c0` out of 2^16 (bit coding): its inputs, then the gate.
    fn predict_bit(&mut self, c0: usize) -> u32 {
        if c0 < 128 {
            self.prefetch_gate(2 * c0);
        }
        if let Some(o) = &mut self.orders {
            if (8..16).contains(&c0) {
                // The high nibble is one of two: fetch both candidates' low slots.
                o.prefetch_low(2 * c0 - 16);
                o.prefetch_low(2 * c0 + 1 - 16);
            }
            if (16..32).contains(&c0) {
                // The high nibble is known: its low nibble's slots.
                o.lookup_low(c0 - 16);
            }
            o.node_inputs(c0, &mut self.inputs[c0], 0);
        }
        if (16..32).contains(&c0) {
            self.evaluated = 1 << (c0 - 16);
        }
        let (p_mix, a0, a2) = self.gate(c0);
        // The gate's output and the two APMs' (docs/tuning.md, "Bit coding").
        ((p_mix * 64 + a0 * 5 + a2 * 7 + 8) >> 4).clamp(P_MIN, (1 << 16) - P_MIN) as u32
    }

    /// Evaluates node `c0`, remembering what training needs; returns its 12-bit P(1).
    fn eval(&mut self, c0: usize) -> i32 {
        let (p_mix, a0, a1) = self.gate(c0);
        let (a0, a1) = ((a0 >> 4).clamp(1, 4095), (a1 >> 4).clamp(1, 4095));
        ((p_mix + a0 + 2 * a1 + 2) >> 2).clamp(1, 4095)
    }

    /// The gate's output for node `c0`, remembering what training needs: its 12-bit P(1)
    /// and the APMs' 16-bit refinements of it. Integer arithmetic throughout, so AVX2
    /// (where the CPU has it) gives the same bits as SSE2.
    #[inline(never)]
    fn gate(&mut self, c0: usize) -> (i32, i32, i32) {
        crate::wide::run(|| self.gate_body(c0))
    }

    #[inline(always)]
    fn gate_body(&mut self, c0: usize) -> (i32, i32, i32) {
        let x = &self.inputs[c0];
        let mut group_st = [0; GROUPS];
        for (g, m) in self.mixers.iter().enumerate() {
            group_st[g] = m.dot(self.sets[g] + c0, x);
            self.group_p[c0][g] = squash(group_st[g]);
        }
        let st = match &self.final_mix {
            Some(f) => f.dot(self.sets[0] + c0, &group_st),
            None => group_st[0],
        };
        self.group_st[c0] = group_st;
        let p_mix = squash(st);
        self.p_mix[c0] = p_mix;
        let (a0, i0) = self.apm_order0.refine(st, c0);
        let (a1, i1) = match &self.apm_order2 {
            Some(a) => a.refine(st, (self.cx2 ^ c0) & (APM2_ROWS - 1)),
            None => self.apm_order1.refine(st, self.cx1 + c0),
        };
        self.apm_index[c0] = [i0, i1];
        (p_mix, a0, a1)
    }

    /// Evaluates node `c0` and splits its mass, `mass[k]`, between its children at `2k`
    /// and `2k + 1` (`k` is `c0` in a whole tree, or the node's place in a subtree's own).
    #[inline]
    fn split(&mut self, c0: usize, k: usize, mass: &mut [u64]) {
        let p = self.eval(c0) as u64;
        let m = mass[k];
        let one = (m * p) >> 12;
        mass[2 * k + 1] = one;
        mass[2 * k] = m - one;
    }

    fn update(&mut self, byte: u8) {
        let b = usize::from(byte);
        // Learn fast while the block is young and the weight sets have seen little; the
        // calibration too, from version 6.
        let (peak, horizon) = self.boost;
        let coded = self.bytes.len() - self.start;
        let boost = (peak * horizon / (horizon + coded.min(1 << 30))) as i32;
        if coded == self.apm_fast_bytes {
            self.apm_order0.rate = 7;
            self.apm_order1.rate = 7;
            if let Some(a) = &mut self.apm_order2 {
                a.rate = 7;
            }
        }
        let nibble = b >> 4;
        if self.evaluated & (1 << nibble) == 0 {
            // The byte landed in a subtree coded flat: evaluate its path now so the gate
            // and the calibration learn from it as usual.
            if let Some(o) = &mut self.orders {
                o.predict_low(1 << nibble, &mut self.inputs, 0);
            }
            for j in 4..8 {
                self.eval((1 << j) | (b >> (8 - j)));
            }
        }
        if self.spread_by_counts && !self.nibbles {
            let counts = &mut self.low_counts[self.low_class][nibble];
            counts[b & 15] += 16;
            if counts[b & 15] > 4000 {
                for c in counts.iter_mut() {
                    *c = c.div_ceil(2);
                }
            }
        }
        // The experts first: each starts fetching what its next lookup needs, and the
        // gate's training below runs while those cache misses are served.
        self.bytes.push(byte);
        for c in [&self.long, &self.short].into_iter().flatten() {
            c.prefetch(&self.bytes);
        }
        if let Some(o) = &mut self.orders {
            o.update(&self.bytes, byte);
        }
        for c in [&mut self.long, &mut self.short].into_iter().flatten() {
            c.update(&self.bytes, byte);
        }
        if let Some(r) = &mut self.retrieval {
            r.update(&self.bytes, byte);
        }
        // The order-1 APM rows of the next byte's first nodes (nibble coding).
        if !self.bits {
            let next_rows = b * 256 * 33;
            for i in (next_rows + 33..next_rows + 16 * 33).step_by(32) {
                prefetch(&self.apm_order1.table, i);
            }
        }
        crate::wide::run(|| self.learn_path(b, boost));
    }

    /// Trains the gate and the APMs on the 8 nodes of byte `b`'s path.
    #[inline(always)]
    fn learn_path(&mut self, b: usize, boost: i32) {
        for j in 0..8 {
            let c0 = (1 << j) | (b >> (8 - j));
            let bit = ((b >> (7 - j)) & 1) as u32;
            let x = &self.inputs[c0];
            for (g, m) in self.mixers.iter_mut().enumerate() {
                m.train(self.sets[g] + c0, x, self.group_p[c0][g], bit, boost);
            }
            if let Some(f) = &mut self.final_mix {
                f.train(
                    self.sets[0] + c0,
                    &self.group_st[c0],
                    self.p_mix[c0],
                    bit,
                    0,
                );
            }
            let [i0, i1] = self.apm_index[c0];
            self.apm_order0.update(i0, bit);
            match &mut self.apm_order2 {
                Some(a) => a.update(i1, bit),
                None => self.apm_order1.update(i1, bit),
            }
        }
    }
}

/// The neural expert's bit probabilities for every node, from its byte weights.
fn neural_inputs(w: &Weights, inputs: &mut [[i32; MAX_INPUTS]; 256], col: usize) {
    let mut sums = [0u64; 512];
    for (s, &w) in sums[256..].iter_mut().zip(w.iter()) {
        *s = u64::from(w) + 1;
    }
    for n in (1..256).rev() {
        sums[n] = sums[2 * n] + sums[2 * n + 1];
    }
    for c0 in 1..256 {
        let p = ((sums[2 * c0 + 1] << 12) / sums[c0]).clamp(1, 4095) as i32;
        inputs[c0][col] = stretch(p);
    }
}

/// The mixing predictor: context statistics, copy experts and optionally the neural
/// expert, combined by the gate above.
pub struct Mix {
    spec: Spec,
    lanes: Vec<Option<Box<Lane>>>,
    /// The primed lane states this predictor has started blocks from, one per table size,
    /// least recently used first.
    primed: Vec<Arc<Lane>>,
    /// Bytes the primed states may hold before the least recently used go
    /// ([`Mix::set_primed_budget`]).
    primed_budget: u64,
    neural: Option<NeuralExpert>,
    neural_out: Vec<Weights>,
}

impl Mix {
    /// A mixing predictor with the experts of `mask` ([`Profile::experts`]) for `lanes`
    /// lanes, as this build writes it by default ([`crate::format::VERSION`], blocks
    /// primed with [`PRIMER`]); `model` is required when the mask includes the neural
    /// expert.
    ///
    /// # Errors
    /// When the neural model cannot be planned for this lane count.
    pub fn new(
        mask: u32,
        lanes: usize,
        model: Option<Arc<NeuralModel>>,
        temperature_q8: u16,
    ) -> Result<Mix, Error> {
        Mix::for_version(
            crate::format::VERSION,
            mask,
            lanes,
            model,
            temperature_q8,
            true,
        )
    }

    /// [`Mix::new`] with the arithmetic of format `version`, to decode older streams, and
    /// with [`PRIMER`] (version 7 on) or without.
    ///
    /// # Errors
    /// When `version` is not one this build decodes the mixing predictor from, it has no
    /// primer but `primed` is asked for, or the neural model cannot be planned for this
    /// lane count.
    pub fn for_version(
        version: u16,
        mask: u32,
        lanes: usize,
        model: Option<Arc<NeuralModel>>,
        temperature_q8: u16,
        primed: bool,
    ) -> Result<Mix, Error> {
        if !(2..=crate::format::VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion { version });
        }
        let spec = Spec::new(mask, version);
        let neural = match (spec.neural, model) {
            (true, Some(m)) => Some(NeuralExpert::for_version(
                version,
                m,
                lanes,
                temperature_q8,
            )?),
            (true, None) => {
                return Err(Error::InvalidConfig {
                    what: "the neural expert needs a model".into(),
                })
            }
            (false, _) => None,
        };
        let mut spec = spec;
        if primed {
            if version < crate::format::PRIMED_VERSION {
                return Err(Error::Unsupported {
                    what: format!("a primer in format version {version}"),
                });
            }
            spec.primer = Some(PRIMER);
        }
        Ok(Mix {
            spec,
            lanes: (0..lanes).map(|_| None).collect(),
            primed: Vec::new(),
            primed_budget: u64::MAX,
            neural_out: vec![[0; 256]; if neural.is_some() { lanes } else { 0 }],
            neural,
        })
    }
}

/// Margin in [`Spec::lane_bytes`] for a lane's state that does not scale with the block
/// (per-node scratch, state maps, counters: about 100 KiB today).
const LANE_FIXED_BYTES: u64 = 256 << 10;

impl Mix {
    /// An upper bound on the memory a mixing predictor of format `version` and expert
    /// `mask` needs for `lanes` lane slots of blocks up to `block_size` bytes, the neural
    /// expert left out ([`NeuralExpert::memory`] gives it): the lanes' tables, and when
    /// `primed` the primed state the next block starts from plus the small ones the process
    /// keeps ([`KEEP_PRIMED`]). States of more table sizes are kept only within what
    /// [`Mix::set_primed_budget`] allows.
    pub(crate) fn memory(
        version: u16,
        mask: u32,
        primed: bool,
        block_size: usize,
        lanes: usize,
    ) -> u64 {
        let mut spec = Spec::new(mask, version);
        if !primed {
            return lanes as u64 * spec.lane_bytes(block_size);
        }
        spec.primer = Some(PRIMER);
        // The largest block whose state the process keeps: context table <= 2^KEEP_TABLE_BITS.
        let kept_len = (1usize << (KEEP_TABLE_BITS - spec.table_extra))
            .saturating_sub(PRIMER.len())
            .clamp(1, block_size.max(1));
        (lanes as u64 + 1) * spec.lane_bytes(block_size)
            + KEEP_PRIMED as u64 * spec.lane_bytes(kept_len)
    }

    /// What one primed state of the largest table size takes: the part of [`Mix::memory`]
    /// each further lane does not add.
    pub(crate) fn primed_state_bytes(version: u16, mask: u32, block_size: usize) -> u64 {
        Mix::memory(version, mask, true, block_size, 1)
            - Mix::memory(version, mask, true, block_size, 0)
    }
}

/// Primed lane states of the process, shared by every mixing predictor: priming costs as
/// much as coding the primer (~0.9 s), so threads and streams that start blocks with the
/// same tables prime once.
struct PrimedCache {
    /// By key. Weak, so the memory goes when the last predictor using a state does...
    states: Vec<(PrimedKey, Weak<Lane>)>,
    /// ... except for the [`KEEP_PRIMED`] most recently used states of small tables (at
    /// most `2^KEEP_TABLE_BITS` context slots, for blocks up to ~160 KB: ~40 MB each), which
    /// the process keeps: a program that codes many small streams one after another
    /// (messages, files of a directory) would otherwise prime for every one, where priming
    /// costs more than coding.
    kept: Vec<Arc<Lane>>,
}
/// What a primed state depends on: format version, expert mask, table sizes.
type PrimedKey = (u16, u32, (u32, u32));
static PRIMED: Mutex<PrimedCache> = Mutex::new(PrimedCache {
    states: Vec::new(),
    kept: Vec::new(),
});
const KEEP_PRIMED: usize = 2;
const KEEP_TABLE_BITS: u32 = 20;

impl Mix {
    /// The primed state a block of `block_len` bytes starts from.
    fn primed_lane(&mut self, block_len: usize) -> Arc<Lane> {
        let bits = self.spec.table_bits(block_len);
        let same = |l: &&Arc<Lane>| self.spec.table_bits(l.block_len) == bits;
        if let Some(i) = self.primed.iter().position(|l| same(&l)) {
            let l = self.primed.remove(i);
            self.primed.push(l.clone());
            return l;
        }
        let key = (self.spec.version, self.spec.mask, bits);
        // A poisoned lock only means another thread panicked while priming; the entries
        // are whole either way.
        let mut cache = PRIMED.lock().unwrap_or_else(PoisonError::into_inner);
        cache.states.retain(|(_, l)| l.strong_count() > 0);
        let found = cache
            .states
            .iter()
            .filter(|(k, _)| *k == key)
            .find_map(|(_, l)| l.upgrade());
        let lane = found.unwrap_or_else(|| {
            #[cfg(test)]
            tests::PRIMINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut lane = Lane::new(&self.spec, block_len);
            lane.prime(PRIMER, self.spec.neural);
            let lane = Arc::from(lane);
            cache.states.push((key, Arc::downgrade(&lane)));
            lane
        });
        if bits.0 <= KEEP_TABLE_BITS {
            cache.kept.retain(|l| !Arc::ptr_eq(l, &lane));
            cache.kept.push(lane.clone());
            if cache.kept.len() > KEEP_PRIMED {
                cache.kept.remove(0);
            }
        }
        self.primed.push(lane.clone());
        // Keep every table size's state while the budget allows (blocks of many lengths
        // then prime once per size); past it, the least recently used go first.
        let bytes = |l: &Arc<Lane>| self.spec.lane_bytes(l.block_len);
        while self.primed.len() > 1
            && self.primed.iter().map(bytes).sum::<u64>() > self.primed_budget
        {
            self.primed.remove(0);
        }
        lane
    }

    /// Sets the bytes the primed states this predictor keeps may take (default: no limit):
    /// what its memory limit leaves after the lanes. One state is always kept.
    pub(crate) fn set_primed_budget(&mut self, bytes: u64) {
        self.primed_budget = bytes;
    }
}

impl Predictor for Mix {
    fn lanes(&self) -> usize {
        self.lanes.len()
    }

    fn reset_lane(&mut self, lane: usize, block_len: usize) {
        if let Some(n) = &mut self.neural {
            n.reset_lane(lane, block_len);
        }
        if self.spec.primer.is_some() {
            let primed = self.primed_lane(block_len);
            // Free the old state first: a lane's tables are tens of MiB.
            self.lanes[lane] = None;
            let mut l = Box::new((*primed).clone());
            l.block_len = block_len;
            self.lanes[lane] = Some(l);
            return;
        }
        match &mut self.lanes[lane] {
            // Same table sizes: clear in place rather than reallocate.
            Some(l) if self.spec.table_bits(l.block_len) == self.spec.table_bits(block_len) => {
                l.block_len = block_len;
                l.reset();
            }
            slot => *slot = Some(Lane::new(&self.spec, block_len)),
        }
    }

    fn predict(&mut self, lanes: &[usize], out: &mut [Weights]) -> Result<(), Error> {
        if let Some(n) = &mut self.neural {
            n.predict(lanes, &mut self.neural_out)?;
        }
        for (i, (&lane, w)) in lanes.iter().zip(out.iter_mut()).enumerate() {
            let neural = self.neural.is_some().then(|| &self.neural_out[i]);
            self.lanes[lane]
                .as_mut()
                .ok_or_else(|| Error::InvalidConfig {
                    what: format!("lane {lane} predicted before its reset"),
                })?
                .predict(neural, w);
        }
        Ok(())
    }

    fn update(&mut self, lanes: &[usize], bytes: &[u8]) {
        if let Some(n) = &mut self.neural {
            n.update(lanes, bytes);
        }
        for (&lane, &byte) in lanes.iter().zip(bytes) {
            if let Some(l) = &mut self.lanes[lane] {
                l.update(byte);
            }
        }
    }

    fn codes_nibbles(&self) -> bool {
        self.spec.nibbles
    }

    fn codes_bits(&self) -> bool {
        self.spec.bits
    }

    fn predict_bit(&mut self, lane: usize, c0: usize) -> u32 {
        self.lanes[lane]
            .as_mut()
            .map_or(1 << 15, |l| l.predict_bit(c0))
    }

    fn predict_low(&mut self, lane: usize, high: u8, out: &mut [u32; 16]) {
        if let Some(l) = &mut self.lanes[lane] {
            l.predict_low(usize::from(high & 15), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) static PRIMINGS: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);

    /// Blocks of lengths that cycle through table sizes prime once per size while the
    /// budget allows: a crafted stream of short blocks of many lengths cannot make every
    /// block pay for priming.
    #[test]
    fn blocks_of_many_lengths_prime_once_per_size() {
        use std::sync::atomic::Ordering;
        let mut mix = Mix::new(Profile::Fast.experts(), 1, None, 256).unwrap();
        let lens = [1000, 140_000, 200_000, 600_000];
        let sizes: std::collections::HashSet<_> =
            lens.iter().map(|&l| mix.spec.table_bits(l)).collect();
        let before = PRIMINGS.load(Ordering::Relaxed);
        for _ in 0..3 {
            for len in lens {
                mix.reset_lane(0, len);
            }
        }
        // Other tests may prime at the same time, never fewer than this one needs.
        let primed = PRIMINGS.load(Ordering::Relaxed) - before;
        assert_eq!(mix.primed.len(), sizes.len());
        assert!(
            primed <= sizes.len() + 8,
            "{primed} primings for {} sizes",
            sizes.len()
        );
    }

    /// The memory estimate a reader refuses streams by covers what a lane really holds,
    /// and not by much more: the tables that scale with the block are counted exactly.
    #[test]
    fn the_lane_estimate_bounds_the_lane() {
        for profile in [Profile::Fast, Profile::Default, Profile::Max] {
            for (primed, len) in [
                (false, 300),
                (true, 5000),
                (true, 1 << 20),
                (false, 3 << 20),
            ] {
                let mut spec = Spec::new(profile.experts(), crate::format::VERSION);
                if primed {
                    spec.primer = Some(PRIMER);
                }
                let mut lane = Lane::new(&spec, len);
                if primed {
                    lane.prime(PRIMER, spec.neural);
                }
                let tables = lane.orders.as_ref().map_or(0, Orders::table_capacity_bytes)
                    + [&lane.long, &lane.short]
                        .iter()
                        .filter_map(|c| c.as_ref().map(Copy::table_capacity_bytes))
                        .sum::<u64>()
                    + lane
                        .retrieval
                        .as_ref()
                        .map_or(0, Retrieval::table_capacity_bytes);
                let gate: u64 = lane.mixers.iter().map(Mixer::capacity_bytes).sum::<u64>()
                    + ((lane.apm_order0.table.capacity()
                        + lane.apm_order1.table.capacity()
                        + lane.apm_order2.as_ref().map_or(0, |a| a.table.capacity()))
                        * 2) as u64
                    + lane.final_mix.as_ref().map_or(0, Mixer::capacity_bytes);
                let held = tables + gate + lane.bytes.capacity() as u64;
                let estimate = spec.lane_bytes(len);
                assert!(
                    held <= estimate
                        && estimate <= held + 2 * LANE_FIXED_BYTES + 2 * len as u64 + 200_000,
                    "{profile:?} primed {primed} len {len}: holds {held}, estimated {estimate}"
                );
            }
        }
    }

    /// Feeds `data` to lane 0 as the engine would (the decisions of each byte, or its
    /// nibbles), after a reset.
    fn feed(mix: &mut Mix, data: &[u8]) {
        mix.reset_lane(0, 1 << 16);
        let mut out = [[0u32; 256]];
        for &b in data {
            mix.predict(&[0], &mut out).unwrap();
            if mix.codes_bits() {
                for j in 0..8 {
                    mix.predict_bit(0, (1 << j) | usize::from(b) >> (8 - j));
                }
            } else {
                let mut low = [0; 16];
                mix.predict_low(0, b >> 4, &mut low);
            }
            mix.update(&[0], &[b]);
        }
    }

    /// What the predictor says next, after `data`: the 8 decisions of the likeliest byte
    /// (bit coding), or the high nibble's 16 weights and the low nibble's 16 for the
    /// likeliest high nibble.
    fn run(mix: &mut Mix, data: &[u8]) -> Vec<u32> {
        feed(mix, data);
        let mut out = [[0u32; 256]];
        mix.predict(&[0], &mut out).unwrap();
        if mix.codes_bits() {
            let mut c0 = 1;
            let mut said = Vec::new();
            while c0 < 256 {
                let p1 = mix.predict_bit(0, c0);
                said.push(p1);
                c0 = 2 * c0 + usize::from(p1 >= 1 << 15);
            }
            said.push(c0 as u32 - 256);
            return said;
        }
        let high = (0..16).max_by_key(|&h| out[0][h]).unwrap();
        let mut low = [0; 16];
        mix.predict_low(0, high as u8, &mut low);
        out[0][..16].iter().chain(&low).copied().collect()
    }

    #[test]
    fn learns_and_keeps_every_byte_codable() {
        let data: Vec<u8> = b"abcdefgh".iter().cycle().take(4000).copied().collect();
        // Bit by bit: 'a' (0x61) follows "...h" with near certainty, and no decision is
        // ever certain.
        let mut mix = Mix::new(Profile::Default.experts(), 1, None, 256).unwrap();
        assert!(mix.codes_bits());
        let said = run(&mut mix, &data);
        assert_eq!(said[8], 0x61);
        let mut p = 1.0;
        for &p1 in &said[..8] {
            assert!((P_MIN as u32..=(1 << 16) - P_MIN as u32).contains(&p1));
            p *= f64::from(p1.max((1 << 16) - p1)) / 65536.0;
        }
        assert!(p > 0.99, "{p}");
        // By nibbles (format version 8).
        let mut mix = Mix::for_version(8, Profile::Default.experts(), 1, None, 256, true).unwrap();
        assert!(mix.codes_nibbles() && !mix.codes_bits());
        let w = run(&mut mix, &data);
        for (nibble, half) in [(6, &w[..16]), (1, &w[16..])] {
            let total: u64 = half.iter().map(|&x| u64::from(x)).sum();
            // Masses sum to 2^31 (rounding down loses at most one unit per leaf).
            assert!(total <= 1 << 31 && total > (1 << 31) - 16);
            assert!(u64::from(half[nibble]) * 100 > total * 99);
        }
    }

    /// Bits `mix` spends on `data` (from its weights or decisions, as the coder would see
    /// them).
    fn cost_in_bits(mix: &mut Mix, data: &[u8]) -> f64 {
        mix.reset_lane(0, data.len());
        let mut out = [[0u32; 256]];
        let mut bits = 0.0;
        let share = |w: &[u32], s: usize| {
            let total: f64 = w.iter().map(|&w| f64::from(w)).sum();
            -(f64::from(w[s].max(1)) / total).log2()
        };
        for &b in data {
            mix.predict(&[0], &mut out).unwrap();
            if mix.codes_bits() {
                for j in 0..8 {
                    let c0 = (1 << j) | usize::from(b) >> (8 - j);
                    let p1 = f64::from(mix.predict_bit(0, c0)) / 65536.0;
                    let one = (b >> (7 - j)) & 1 == 1;
                    bits -= if one { p1 } else { 1.0 - p1 }.log2();
                }
            } else if mix.codes_nibbles() {
                let mut low = [0; 16];
                mix.predict_low(0, b >> 4, &mut low);
                bits +=
                    share(&out[0][..16], usize::from(b >> 4)) + share(&low, usize::from(b & 15));
            } else {
                bits += share(&out[0], usize::from(b));
            }
            mix.update(&[0], &[b]);
        }
        bits
    }

    #[test]
    fn version_5_learns_a_bitmap_by_its_rows() {
        let data = crate::experts::orders::tests::bitmap(61, 400);
        let mask = Profile::Default.experts();
        let mut v4 = Mix::for_version(4, mask, 1, None, 256, false).unwrap();
        let mut v5 = Mix::for_version(5, mask, 1, None, 256, false).unwrap();
        let (old, new) = (cost_in_bits(&mut v4, &data), cost_in_bits(&mut v5, &data));
        // Measured: 0.87 (the copy experts find part of each row in the one above); `cargo
        // test --lib bitmap -- --nocapture` prints it.
        eprintln!("version 5 {new:.0} bits, version 4 {old:.0}");
        assert!(
            new < 0.9 * old,
            "version 5 {new:.0} bits, version 4 {old:.0}"
        );
    }

    #[test]
    fn version_6_codes_text_in_fewer_bits() {
        // 40 KB of the golden prose's words, drawn with a skew toward the first ones.
        let words: Vec<&[u8]> = include_bytes!("../tests/golden/prose.txt")
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut data = Vec::new();
        while data.len() < 40_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let (a, b) = ((seed >> 33) as usize, (seed >> 13) as usize & 0xFFFFF);
            data.extend_from_slice(words[(a % words.len()) * (b % words.len()) / words.len()]);
            data.push(if a % 13 == 0 { b'\n' } else { b' ' });
        }
        let data = &data[..];
        let mask = Profile::Default.experts();
        let mut v5 = Mix::for_version(5, mask, 1, None, 256, false).unwrap();
        let mut v6 = Mix::for_version(6, mask, 1, None, 256, false).unwrap();
        assert!(!v5.codes_nibbles() && v6.codes_nibbles());
        let (old, new) = (cost_in_bits(&mut v5, data), cost_in_bits(&mut v6, data));
        // Measured 0.986 (59,065 bits against 59,902: words drawn at random leave the gate
        // little to learn); `cargo test --lib fewer_bits -- --nocapture` prints it.
        eprintln!("version 6 {new:.0} bits, version 5 {old:.0}");
        assert!(
            new < 0.995 * old,
            "version 6 {new:.0} bits, version 5 {old:.0}"
        );
    }

    #[test]
    fn the_primer_is_the_one_format_version_7_names() {
        use sha2::{Digest, Sha256};
        let hex: String = Sha256::digest(PRIMER)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // FORMAT.md and onnx-models/README.md give this hash: another primer is another
        // format version.
        assert_eq!(
            hex,
            "5d512cd88dadd0975005113f1a4a34a33eeb7f4d07b92407e33759d3b23feca5"
        );
    }

    #[test]
    fn a_primed_lane_codes_a_small_text_in_fewer_bits() {
        let data = include_bytes!("../tests/golden/prose.txt");
        let mask = Profile::Default.experts();
        let mut plain = Mix::for_version(7, mask, 1, None, 256, false).unwrap();
        let mut primed = Mix::for_version(7, mask, 1, None, 256, true).unwrap();
        let (old, new) = (
            cost_in_bits(&mut plain, data),
            cost_in_bits(&mut primed, data),
        );
        // Measured 0.65 (3,692 bits against 5,706); `cargo test --lib fewer_bits --
        // --nocapture` prints it.
        eprintln!("primed {new:.0} bits, unprimed {old:.0}");
        assert!(new < 0.8 * old, "primed {new:.0} bits, unprimed {old:.0}");
        // Priming twice (a second block) starts from the same state.
        assert_eq!(cost_in_bits(&mut primed, data), new);
        assert!(Mix::for_version(6, mask, 1, None, 256, true).is_err());
    }

    #[test]
    fn a_reset_lane_predicts_like_a_new_one() {
        let mut used = Mix::new(Profile::Default.experts(), 1, None, 256).unwrap();
        run(
            &mut used,
            b"some earlier block with its own statistics 0123456789",
        );
        let mut fresh = Mix::new(Profile::Default.experts(), 1, None, 256).unwrap();
        let text = b"the same input after a reset gives the same predictions";
        assert_eq!(run(&mut used, text), run(&mut fresh, text));
    }

    #[test]
    fn every_profile_fits_the_mixer() {
        for mask in [Profile::Fast, Profile::Default, Profile::Max].map(Profile::experts) {
            assert!(Spec::new(mask, 3).inputs() <= MAX_INPUTS);
            assert_eq!(
                Profile::from_experts(mask).map(Profile::experts),
                Some(mask)
            );
        }
        assert!(Spec::new(MIX_EXPERTS, 3).inputs() <= MAX_INPUTS);
    }
}
