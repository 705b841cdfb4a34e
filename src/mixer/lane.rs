//! One lane of the mixing predictor: a block's history, its experts and its gate, and the
//! [`Spec`] that says which experts a format version and expert set run.

use super::gate::{Apm, Mixer, WEIGHT_ONE};
use super::legacy::Tree;
use crate::experts::bitmap::{self, Bitmap};
use crate::experts::copy::CopyExpert;
use crate::experts::delta::Delta;
use crate::experts::orders::{
    Kind, Orders, Surprise, GROW_BITS, GROW_MAX_BITS, TABLE_SETS, TEXT_ORDER_STATES, TEXT_SETS,
};
use crate::experts::retrieval::Retrieval;
use crate::experts::Weights;
use crate::format::{
    profile_mask, BITS_VERSION, EXPERT_LONG_COPY, EXPERT_NEURAL_INPUT, EXPERT_ORDERS,
    EXPERT_RETRIEVAL, EXPERT_SHORT_COPY, EXPERT_SPARSE, EXPERT_TEXT, GROWN_VERSION, RATIO_VERSION,
    STRUCTURE_VERSION, UNIGRAM_NEURAL_VERSION,
};
use crate::hint::prefetch;
use crate::logistic::{squash, stretch};
use crate::snapshot::{Snapshot, Walker};

/// The neural input of a column of its own (no unigram slot to take, [`Spec::neural_col`])
/// while priming and in plain blocks: even odds on every decision.
pub(super) const EVEN: Weights = [1; 256];

/// Most mixer inputs per node: all experts together need 19 from format version 13 (16
/// before), and the gate's weight sets are a whole number of 8-lane vectors wide. The
/// APMs calibrate, so no bias input is needed.
pub(super) const MAX_INPUTS: usize = 24;

/// Character class of a byte, for choosing weight sets: the gate's context class.
pub(super) fn class(byte: u8) -> usize {
    match byte {
        b'a'..=b'z' | b'A'..=b'Z' => 0,
        b'0'..=b'9' => 1,
        b' ' | b'\n' | b'\r' | b'\t' => 2,
        0x21..=0x7E => 3,
        _ => 4,
    }
}

pub(super) const CLASSES: usize = 5;

/// Before version 6: a high nibble below `2^-SKIP_BELOW_BITS` probability gets no
/// low-nibble evaluation (`docs/tuning.md`, "Gate constants").
pub(super) const SKIP_BELOW_BITS: u32 = 7;

/// The least probability a decision is coded with, out of 2^16 (bit coding): a surprise
/// costs at most 13 bits, and `Header::max_raw_len` relies on it (`docs/tuning.md`, "Bit
/// coding").
pub(super) const P_MIN: i32 = 8;

/// At the node that decides the high nibble's last bit, the low-nibble slots are fetched
/// early for the candidate that the context slots' inputs, summed, lean to by at least
/// this (log-odds of 1.0 in the inputs' units of 1/256), and for both where they lean
/// less: fetches of the unused candidate's lines stall the core once its outstanding
/// misses are full (`docs/profile.md`, "The low nibble's slots, fetched for one
/// candidate").
const LOW_LEAN: i32 = 256;
/// ... and once the gate has spoken, for the other too if it gives that one at least this
/// probability (out of 2^16).
const LOW_DOUBT: i32 = 51 * 256;

/// Contexts of the order-2 APM (format version 9 on).
pub(super) const APM2_ROWS: usize = 1 << 16;

/// Contexts of the copy APM (format version 13 on).
pub(super) const APM_COPY_ROWS: usize = 1 << 16;

/// Match-state buckets for the first mixer's weight sets before format version 13: no
/// copy, then the longest copy's length (1-15, 16-31, 32 on).
pub(super) const MATCH_STATES: usize = 4;

/// Format version 13 on: the first mixer's match states are node by node
/// ([`Lane::set`]): no copy; on the path of the byte the copy expects by the copy's length
/// as in [`MATCH_STATES`] and the bit it expects there; off that path, once the byte has
/// parted from it (`docs/tuning.md`, "Weight sets chosen node by node").
pub(super) const PATH_STATES: usize = 8;

/// The state of [`PATH_STATES`] off the expected byte's path.
const OFF_PATH: usize = PATH_STATES - 1;

/// From version 6 the APMs learn at rate 1/64 over a block's first 128 KiB, then 1/128
/// (before, 1/128 throughout): a young block's calibration has little to go on, an old
/// one's should not drift (`docs/tuning.md`, "Gate constants").
pub(super) const APM_FAST_BYTES: usize = 128 << 10;

/// The gate's learning boost from version 6 (version 5: 36 over 8 KiB): the rate gains
/// `peak * horizon / (horizon + bytes so far)`. The three groups each see a third of the
/// traffic a single set saw, and learn faster for longer (`docs/tuning.md`, "Gate
/// constants").
pub(super) const BOOST: (usize, usize) = (96, 16384);

/// [`BOOST`] of the groups from format version 13, where fresh weight sets learn
/// faster ([`FRESH`]): they need less of the block's boost (`docs/tuning.md`, "Fresh
/// weight sets").
pub(super) const BOOST_FRESH: (usize, usize) = (48, 16384);

/// Learning rate of the gate's first layer from format version 13 (12 before), plus a
/// boost while the block is young: code, markup and data change regime more often than
/// prose (`docs/tuning.md`, "Counter setbacks" and "Novelty in the gate"). With the
/// groups and fresh weight sets, [`GATE_RATE_FRESH`].
pub(super) const GATE_RATE: i32 = 15;

/// [`GATE_RATE`] of the groups from format version 13, whose fresh weight sets
/// learn faster ([`FRESH`]; `docs/tuning.md`, "Fresh weight sets").
pub(super) const GATE_RATE_FRESH: i32 = 12;

/// Learning rate of the gate's first layer on binary data from format version 13
/// ([`GATE_RATE`] on text): records, instructions and tables change regime more often
/// than text, prose least (`docs/tuning.md`, "Coarse classes").
pub(super) const GATE_RATE_BINARY: i32 = 40;

/// Learning rate of the gate's first layer on prose (text of few digits and punctuation)
/// from format version 13, with the groups ([`GATE_RATE_FRESH`] on other text): prose
/// changes regime least, and its fresh weight sets still learn fast (`docs/tuning.md`,
/// "Counters on prose").
pub(super) const GATE_RATE_PROSE: i32 = 6;

/// How a decision's coded probability weighs the gate's output and the order-0, order-2
/// and copy APMs' refinements of it, out of 16 (`docs/tuning.md`, "Output weights" and
/// "The copy APM").
pub(super) const OUTPUT_WEIGHTS: [i32; 4] = [1, 2, 8, 5];

/// [`OUTPUT_WEIGHTS`] of a lane without the copy APM (`fast`).
pub(super) const OUTPUT_WEIGHTS_NO_COPY: [i32; 4] = [2, 5, 9, 0];

/// Learning rate of the gate's second layer (the first's is [`GATE_RATE`], plus a boost
/// while the block is young). Its weight sets are those of group [`FINAL_GROUP`]
/// (`docs/tuning.md`, "Gate constants").
pub(super) const FINAL_RATE: i32 = 9;

/// Format version 13 on: the group whose context (with the node) selects the gate's
/// second-layer weight set: the top bits of the last two bytes, which say more of what
/// the groups' outputs are worth than the match state and class (`docs/tuning.md`, "The
/// second layer and the APMs").
pub(super) const FINAL_GROUP: usize = 2;

/// Format version 13 on, where the groups run: the group whose weight-set context selects
/// the weight set of a second mixer of the second layer beside the first ([`FINAL_GROUP`]'s),
/// the two outputs averaged in the stretch domain: the match state and class. Two second
/// layers by different contexts beat one; which contexts matters little (`docs/tuning.md`,
/// "Two second layers").
pub(super) const FINAL_TWIN_GROUP: usize = 0;

/// Format version 13 on, `(extra, knee)`: a first-layer weight set learns at
/// `extra * knee / (steps + knee)` more than the layer's rate after `steps` training
/// steps: sets chosen by rare contexts see few steps and would otherwise stay near their
/// start for most of a block (`docs/tuning.md`, "Fresh weight sets").
pub(super) const FRESH: (i32, i32) = (255, 96);

/// Format version 13 on: the error (12-bit) within which a first-layer mixer skips its
/// training step: most decisions of predictable data are predicted that well, and their
/// steps would be small (`docs/tuning.md`, "Gate constants", "A primer with more prose").
pub(super) const SKIP_ERROR: i32 = 48;

/// [`SKIP_ERROR`] of format versions 10 to 12.
const SKIP_ERROR_V10: i32 = 32;

/// The mixing state of one lane: its block so far, its experts and its gate.
#[derive(Clone)]
pub(super) struct Lane {
    /// Length of the block the tables were sized for.
    pub(super) block_len: usize,
    pub(super) bytes: Vec<u8>,
    pub(super) orders: Option<Orders>,
    pub(super) long: Option<CopyExpert>,
    pub(super) short: Option<CopyExpert>,
    pub(super) retrieval: Option<Retrieval>,
    /// The bilevel image specialist ([`Spec::bitmap`]), made when the block first shows a
    /// bitmap's rows.
    pub(super) bitmap: Option<Box<Bitmap>>,
    /// Whether the bitmap's inputs filled its columns for the last byte.
    pub(super) bitmap_active: bool,
    /// The counting-field specialist ([`Spec::bitmap`]): in the bitmap's first columns
    /// while the bitmap is not active.
    pub(super) delta: Option<Delta>,
    pub(super) n: usize,
    /// Before format version 9 (no bit coding): what coding a byte as one distribution
    /// keeps beside the gate ([`Tree`]); `None` from version 9.
    pub(super) tree: Option<Box<Tree>>,
    /// The gate's first layer: one mixer per weight-set group ([`GROUPS`] from version 6,
    /// the first alone before).
    pub(super) mixers: Vec<Mixer>,
    /// The weight set each group uses for the current byte, times 256: the node is added
    /// to it.
    pub(super) sets: [usize; GROUPS],
    /// Format version 13 on: the byte the copy expects, with bit 8 set (0: none), and the
    /// first group's weight sets, times 256, for the nodes off its path and for those on
    /// it where it expects a 1 (`sets[0]` is the set where it expects a 0; [`Lane::set`]).
    pub(super) path: usize,
    pub(super) path_sets: [usize; 2],
    /// The word, unigram and word-with-separator contexts' columns while their slots run
    /// ([`Spec::word_columns`]; the neural input takes the unigram's in the blocks that run
    /// it).
    pub(super) word_columns: [Option<usize>; 3],
    /// The second layer (version 6 on): weighs the groups' outputs, with the weight sets of
    /// group [`Spec::final_group`].
    pub(super) final_mix: Option<Mixer<GROUPS>>,
    /// Format version 13 on, with the groups: the second layer's second mixer
    /// ([`Spec::final_twin`]).
    pub(super) final_twin: Option<Mixer<GROUPS>>,
    /// Per node, the second-layer mixers' outputs (stretch), each trained on its own.
    pub(super) final_st: Box<[[i32; 2]; 256]>,
    pub(super) apm_order0: Apm,
    /// Format version 9 on: secondary estimation on the node and the last two bytes
    /// (hashed with the node to 2^16 contexts, as lpaq's second APM).
    pub(super) apm_order2: Option<Apm>,
    /// Its context for the current byte: the hash of the last two bytes.
    pub(super) cx2: usize,
    /// Format version 13 on: secondary estimation on the node and what the copy experts
    /// expect ([`Lane::copy_context`]), hashed to [`APM_COPY_ROWS`] contexts.
    pub(super) apm_copy: Option<Apm>,
    /// Its context for the current byte.
    pub(super) cx_copy: usize,
    /// Per node: the inputs, the gate's output, the APM points used, and each group's
    /// output (stretch, for the second layer) and prediction (for its own training).
    pub(super) inputs: Box<[[i32; MAX_INPUTS]; 256]>,
    pub(super) p_mix: Box<[i32; 256]>,
    pub(super) apm_index: Box<[[u32; 3]; 256]>,
    /// Per node, each group's weight set with the node's row in it ([`Lane::set`]), as the
    /// gate used it: its training steps use the same.
    pub(super) rows: Box<[[u32; GROUPS]; 256]>,
    /// Per node, the row its weight sets and APM points take in their set: the node
    /// itself, or on a bitmap a context of the pixels around it ([`Bitmap::node_inputs`]).
    pub(super) keys: [u8; 256],
    pub(super) group_st: Box<[[i32; GROUPS]; 256]>,
    pub(super) group_p: Box<[[i32; GROUPS]; 256]>,
    /// What the lane runs, and how its format version codes and learns.
    pub(super) spec: Spec,
    /// Bytes of `bytes` before the block's first: the primer's. The boost and the APMs'
    /// fast start count from the block's first byte.
    pub(super) start: usize,
}

/// The bytes the short copy keys on from format version 13 (4 before): a 3-byte match
/// already predicts the recurring tokens of code and markup (`docs/tuning.md`, "Copy
/// lengths").
const SHORT_COPY_LEN: usize = 3;

/// The copy and retrieval experts' confidence (per match length, recent record and
/// expected bit) counts up to 1,023 hits and misses from format version 13: it is close to
/// stationary, so longer averages measure better (`docs/tuning.md`, "Copy lengths").
const CONFIDENCE_LIMIT: u32 = 1023;

/// Weight-set groups of the gate's first layer: three from format version 6, five from
/// version 13 (where more than one runs). Each group's context (with the node): the copy
/// match state and the previous byte's class (version 2's single set); none, or from
/// format version 13 [`Orders::gate_context`] (in machine code the instruction field of
/// the byte, on text how many order contexts were seen before); the top bits of the two
/// previous bytes ([`PAIR_BITS`]; `docs/tuning.md`, "Gate constants"); the two bytes
/// before the last ([`OLDER_PAIR_BITS`]); the current word or the bytes 3 and 4 back
/// ([`Spec::fifth`]). The second layer's mixers take one input per group, a group that
/// does not run giving 0.
pub(super) const GROUPS: usize = 5;

/// Format version 13 on, where the groups run: a constant input of the gate's first layer,
/// whose weight in each set (from 0) is the set's own bias: the bit's odds where the set's
/// context, rather than the experts, says them (paq8's mixers have one too). A larger
/// input takes larger steps at the fresh sets' rates and overshoots (`docs/tuning.md`,
/// "The gate's bias input").
pub(super) const BIAS_INPUT: i32 = 768;

/// Format version 13 on, where the groups run: every first-layer weight's start (a quarter
/// before). Over 23 inputs a quarter each is more confidence than a fresh set has, where
/// the experts agree; `fast`'s single group lost by a sixth (`docs/tuning.md`, "Tried after
/// the bias input").
pub(super) const WEIGHT_INIT: i32 = WEIGHT_ONE / 6;

/// Format version 13 on, where the groups run: the top bits of the bytes three and two
/// back that select the fourth group's weight set (keyed as the third's, [`PAIR_KEYS`]).
/// The last byte selects the third group's; the two before it say what the orders and
/// the sparse contexts are worth where the last byte does not (`docs/tuning.md`, "The
/// fourth weight-set group").
pub(super) const OLDER_PAIR_BITS: (u32, u32) = (2, 8);

/// A byte's class in [`class_pattern`] (2 bits): letters and the bytes of UTF-8 sequences,
/// spaces and newlines, the punctuation that ends a phrase, anything else (digits
/// included: the orders' coarse class keeps digits apart and lumps the punctuation in).
#[inline(always)]
fn pattern_class(byte: u8) -> usize {
    match byte {
        b'a'..=b'z' | b'A'..=b'Z' | 0x80.. => 0,
        b' ' | b'\n' => 1,
        b'.' | b',' | b';' | b':' | b'!' | b'?' => 2,
        _ => 3,
    }
}

/// Format version 13 on, on text: the [`pattern_class`]es of the last five bytes
/// (`back(i)` the byte `i` back), the nearest in the low bits. Where the groups run it
/// selects the fourth group's weight set in place of the bytes three and two back
/// ([`OLDER_PAIR_BITS`]), and in every profile its part for the bytes three to five back
/// (`>> 4`) joins the last two bytes in the order-2 APM's context: where a word, phrase or
/// line stands says more of what the experts are worth than which bytes came (paq8px's
/// text model selects mixer weights by masks of character classes; `docs/tuning.md`, "The
/// class pattern").
#[inline(always)]
fn class_pattern(back: impl Fn(usize) -> u8) -> usize {
    (1..=5)
        .rev()
        .fold(0, |m, i| m << 2 | pattern_class(back(i)))
}

/// Format version 13 on, in the profiles with the weight-set groups: context slots that
/// run on text only, their inputs in the bilevel image's columns, which sit idle on text
/// (the bias keeps the last): the recent window's words, and the current word with what
/// orders and the word slots lack — the separator before it, the word two back, the
/// column (paq8px's ideas but the last; `docs/tuning.md`, "Text slots" and "A recent
/// window", has the alternatives measured).
pub(super) const TEXT_SLOTS: [Kind; 4] = [
    Kind::Recent,
    Kind::WordGap,
    Kind::WordSkip,
    Kind::WordColumn,
];
const _: () = assert!(TEXT_SLOTS.len() < bitmap::INPUTS);

/// Format version 13 on: the last text slots that run on binary data too, keyed there on
/// binary contexts (the word-two-back slot on the bytes 1 and 5 back, the word-with-column
/// slot on the byte the copy expects, [`Kind::Expected`]; [`Orders::set_text_slots`]). The
/// first two of the image's columns are the counting fields' while no bitmap is active;
/// each slot run on binary data costs its share of the time there (`docs/tuning.md`, "The
/// expected byte on binary data", "A second text slot on binary data").
pub(super) const TEXT_SLOTS_ON_BINARY: usize = 2;
const _: () = assert!(TEXT_SLOTS_ON_BINARY + Delta::INPUTS <= TEXT_SLOTS.len());

/// The top bits of the byte before the last and of the last byte that select the third
/// group's weight set from format version 13 (3 and 3 before): the last byte's case and
/// class need more than its top 3 bits (`docs/tuning.md`, "Binary data and UTF-8"); with
/// fresh weight sets ([`FRESH`]) and [`PAIR_KEYS`] keys a set, the whole last byte.
pub(super) const PAIR_BITS: (u32, u32) = (2, 8);

/// Format version 13 on: the keys of a third-group weight set, where the other groups key
/// on the node (256): the decision's depth and the byte's first two bits
/// ([`pair_key`]). The last byte says most of what the node would, and with 64 keys a set
/// the 1,024 sets of the whole last byte take the memory of 256 sets keyed by node
/// (`docs/tuning.md`, "Fresh weight sets").
pub(super) const PAIR_KEYS: usize = 64;

/// log2 of the fifth group's weight sets (format version 13 on, [`Spec::fifth`]), each of
/// [`FIFTH_ROWS`] rows: more sets of fewer rows code smaller in the same memory. 12 MiB a
/// lane: twice as many would take `default`'s bound for two lanes of 16 MiB blocks over
/// the 1 GiB default limit (`docs/tuning.md`, "A fifth weight-set group").
pub(super) const FIFTH_BITS: u32 = 14;

/// Rows of a fifth-group weight set: one per depth in the byte ([`fifth_key`]).
pub(super) const FIFTH_ROWS: usize = 8;

/// The fifth group's row of node `c0` in its set: the node's depth.
#[inline(always)]
fn fifth_key(c0: usize) -> usize {
    c0.ilog2() as usize
}

/// The third group's key of node `c0` (1 to 255) from format version 13 ([`PAIR_KEYS`]):
/// the node itself to depth 1, then the depth and the byte's first two bits.
#[inline(always)]
pub(super) fn pair_key(c0: usize) -> usize {
    if c0 < 4 {
        return c0;
    }
    let depth = (usize::BITS - 1 - c0.leading_zeros()) as usize;
    depth * 8 + (c0 >> (depth - 2))
}

/// The top `h` bits of `older` above the top `l` bits of `newer` (`(h, l)`, each 1 to 8):
/// the weight-set contexts of the third and fourth groups.
#[inline(always)]
fn top_bits(older: u8, newer: u8, (h, l): (u32, u32)) -> usize {
    usize::from(older >> (8 - h)) << l | usize::from(newer >> (8 - l))
}

/// [`Spec::dictionary`] of a lane coding a block that is to be a dictionary.
pub(super) const MAKES_DICTIONARY: u64 = u64::MAX;

/// Which experts a lane runs and how large its tables are.
#[derive(Clone, Debug)]
pub(super) struct Spec {
    pub(super) kinds: Vec<Kind>,
    /// Format version 13 on, with the groups and the bilevel image's columns: the last
    /// kinds are [`TEXT_SLOTS`], whose inputs take the image's columns on text.
    pub(super) text_slots: usize,
    pub(super) long: bool,
    pub(super) short: bool,
    /// The bytes the short copy keys on: [`SHORT_COPY_LEN`] from format version 13, 4
    /// before.
    pub(super) short_len: usize,
    /// The count at which the copy and retrieval experts' confidence settles to a
    /// moving average: [`CONFIDENCE_LIMIT`] from format version 13, 63 before.
    pub(super) confidence_limit: u32,
    pub(super) retrieval: bool,
    /// Format version 13 on, with the sparse contexts: the bilevel image specialist
    /// ([`Bitmap`]) and the counting-field one ([`Delta`]), sharing the last columns.
    pub(super) bitmap: bool,
    pub(super) neural: bool,
    /// Format version 13 on, with the text experts: the input column of the unigram
    /// slot, which the neural input takes in blocks that run it ([`Lane::set_neural`]);
    /// otherwise the neural input is a column of its own after the others'.
    pub(super) neural_col: Option<usize>,
    /// The context table holds `2^(block_bits + table_extra)` slots, at most
    /// `2^table_max`.
    pub(super) table_extra: u32,
    pub(super) table_max: u32,
    /// The context counters' setback on a surprise.
    pub(super) surprise: Surprise,
    /// Format version 5 on: record contexts in the word slots on binary data
    /// (`Orders::new`), and subtrees coded flat share their mass by low-nibble counts.
    pub(super) records: bool,
    /// Format version 13 on: the sparse slots key on text structure while the data is
    /// text (`Orders::new`).
    pub(super) structure: bool,
    /// Format version 13 on: the copy experts' confidence input is signed by the expected
    /// bit (`copy::write_path`).
    pub(super) copy_signed: bool,
    /// Whether the copy experts' matches go on past a missed byte in binary data (format
    /// version 13 on; `CopyExpert::update`).
    pub(super) copy_recovers: bool,
    /// Format version 13 on: primed lanes start from one state primed in the smallest
    /// tables, grown to the block's ([`Lane::grown`]).
    pub(super) grows: bool,
    /// Whether the context counters reach the gate through the adapt map (version 2 on);
    /// from version 13 `fast` gives the gate each counter's stretch alone, for its
    /// speed (`docs/tuning.md`, "`fast` without the adapt map").
    pub(super) mapped: bool,
    /// Format version 6 on: a byte is coded as its high nibble, then its low nibble
    /// ([`Predictor::codes_nibbles`](crate::experts::Predictor::codes_nibbles)), so no
    /// subtree is coded flat.
    pub(super) nibbles: bool,
    /// Format version 6 on: the gate has three weight-set groups under a second layer.
    pub(super) groups: bool,
    /// Format version 13 on, with the groups: a fourth, by [`OLDER_PAIR_BITS`] (on text
    /// by [`class_pattern`]).
    pub(super) older_pair: bool,
    /// Format version 13 on, with the groups: a fifth, `2^`[`FIFTH_BITS`] sets by the current
    /// word on text and the bytes 3 and 4 back on binary data ([`Orders::fifth_set`]).
    pub(super) fifth: bool,
    /// Format version 13 on: on text the [`class_pattern`] keys the order-2 APM (its part
    /// for the bytes three to five back) and, where it runs, chooses the fourth group.
    pub(super) text_pattern: bool,
    /// Every first-layer weight's start: [`WEIGHT_INIT`] from format version 13 with the
    /// groups, a quarter before.
    pub(super) weight_init: i32,
    /// The group whose weight-set context selects the second layer's weight set: the
    /// third (the top bits of the last two bytes) from format version 13, the first
    /// before ([`FINAL_GROUP`]).
    pub(super) final_group: usize,
    /// Format version 13 on, with the groups: a second second-layer mixer, with the weight
    /// sets of group [`FINAL_TWIN_GROUP`].
    pub(super) final_twin: bool,
    /// The top bits of the byte before the last and of the last byte that select the third
    /// group's weight set ([`PAIR_BITS`] from format version 13, 3 and 3 before).
    pub(super) pair_bits: (u32, u32),
    /// Format version 13 on: the third group's sets have [`PAIR_KEYS`] keys, not a node's
    /// 256, and rows of their own for a bitmap's pixel contexts after them.
    pub(super) pair_keys: bool,
    /// Format version 13 on: the APMs train both points they interpolated between.
    pub(super) apm_both: bool,
    /// Format version 13 on, with the weight-set groups and a copy expert: the copy
    /// APM ([`Lane::apm_copy`]).
    pub(super) apm_copy: bool,
    /// Match states of the first group's weight sets: [`PATH_STATES`], node by node, from
    /// format version 13, [`MATCH_STATES`] before.
    pub(super) match_states: usize,
    /// Leading order contexts among the inputs (the order slots come first), and the
    /// columns of the word and unigram contexts where there are, and (format version 13
    /// on, with the text slots) of the word-with-separator context.
    pub(super) order_columns: usize,
    pub(super) word_columns: [Option<usize>; 3],
    /// Contexts of the order-0 APM besides the node: from format version 13 the first
    /// weight-set group's (the copy experts' match state and the previous byte's class,
    /// `Spec::group_rows()[0] / 256`), 1 before.
    pub(super) apm0_sets: usize,
    /// Format version 9 on: a byte is coded as 8 binary decisions
    /// ([`Predictor::codes_bits`](crate::experts::Predictor::codes_bits)), so only the 8
    /// nodes on its path are evaluated, with a 16-bit probability each.
    pub(super) bits: bool,
    /// The learning rate of the gate's first layer ([`GATE_RATE_FRESH`] from format
    /// version 13 with the groups, [`GATE_RATE`] with one, 12 before).
    pub(super) gate_rate: i32,
    /// Its rate on binary data ([`GATE_RATE_BINARY`] from format version 13 with the
    /// weight-set groups, `gate_rate` otherwise).
    pub(super) gate_rate_binary: i32,
    /// Its rate on prose ([`GATE_RATE_PROSE`] from format version 13 with the weight-set
    /// groups, `gate_rate` otherwise).
    pub(super) gate_rate_prose: i32,
    /// Weights of the gate's output and the APMs' (order 0, order 2, copy) in a coded
    /// decision, out of 16 ([`OUTPUT_WEIGHTS`] from format version 13; 4, 5, 7 and no copy
    /// APM before).
    pub(super) output_weights: [i32; 4],
    /// The gate's learning boost at the block start and the bytes over which it halves.
    pub(super) boost: (usize, usize),
    /// Format version 10 on: a first-layer mixer skips its training step on a decision it
    /// predicted within this error (12-bit), as paq8px does ([`SKIP_ERROR`]).
    pub(super) skip_error: i32,
    /// Format version 13 on, with the weight-set groups (not `fast`'s single one):
    /// the first layer's weight sets learn faster while fresh ([`FRESH`]).
    pub(super) fresh: bool,
    /// The APMs learn at rate 1/64 over the block's first this many bytes (0 before
    /// version 6), then 1/128.
    pub(super) apm_fast_bytes: usize,
    /// Format version 7 on, when the header says so: the lanes code
    /// [`PRIMER`](super::primer::PRIMER) before each block.
    pub(super) primer: Option<&'static [u8]>,
    /// The dictionary the lane's block started from ([`Lane::dictionary`]; 0 for none): a
    /// lane is restored in place only from the state it was made from.
    pub(super) dictionary: u64,
    /// What the spec was made from: the key of a primed state.
    pub(super) version: u16,
    pub(super) mask: u32,
    /// Format version 13 on, with the groups: the gate's column that holds
    /// [`BIAS_INPUT`]: the bilevel image's last where the profile has its columns (the bias
    /// takes it while no bitmap is active), else one of its own after the others.
    pub(super) bias: Option<usize>,
}

/// A setting that a format version changed: `new` where the stream's version has the
/// change (`on`), `old` before.
fn since<T>(on: bool, new: T, old: T) -> T {
    if on {
        new
    } else {
        old
    }
}

impl Spec {
    /// The lanes of experts `mask` as format `version` (`2..=VERSION`) computes them.
    pub(super) fn new(mask: u32, version: u16) -> Spec {
        let mut kinds = Vec::new();
        if mask & EXPERT_ORDERS != 0 {
            kinds.extend([1, 2, 3, 4, 6].map(Kind::Order));
        }
        let neural = mask & EXPERT_NEURAL_INPUT != 0;
        // Version 13: the neural input takes the unigram slot's place in the blocks that
        // run it, so lanes with and without it share one primed state.
        let in_unigram = neural && version >= UNIGRAM_NEURAL_VERSION;
        let mut neural_col = None;
        if mask & EXPERT_TEXT != 0 {
            kinds.extend([Kind::Word, Kind::Column]);
            // Version 4: the current word alone as well, where the mixer has room for it
            // (16 inputs): with the neural expert, which knows words, it was left out
            // before version 13.
            if version >= 4 && (!neural || in_unigram) {
                neural_col = in_unigram.then_some(kinds.len());
                kinds.push(Kind::Unigram);
            }
        }
        let v13 = version >= STRUCTURE_VERSION;
        // Version 10: `fast`, the profile for speed, keeps the first group alone
        // (`docs/tuning.md`, "Gate constants").
        let groups = version >= 6 && !(version >= RATIO_VERSION && mask == profile_mask::FAST);
        // Version 13: the copy APM, in the profiles that run the groups (`fast` keeps
        // its speed; `docs/tuning.md`, "Coarse classes").
        let apm_copy = v13 && groups && mask & (EXPERT_LONG_COPY | EXPERT_SHORT_COPY) != 0;
        if mask & EXPERT_SPARSE != 0 {
            kinds.extend([Kind::Sparse(0b110), Kind::Sparse(0b1101)]);
            if v13 {
                kinds.extend([Kind::Shape, Kind::BinaryShape, Kind::Line(0)]);
            }
        }
        let order_columns = kinds
            .iter()
            .take_while(|k| matches!(k, Kind::Order(_)))
            .count();
        let column = |kind| kinds.iter().position(|&k| k == kind);
        let word_columns = [column(Kind::Word), column(Kind::Unigram), None];
        // Version 13: the text slots, where the image's columns are there for them.
        let text_slots = if v13 && groups && mask & EXPERT_TEXT != 0 && mask & EXPERT_SPARSE != 0 {
            kinds.extend(TEXT_SLOTS);
            TEXT_SLOTS.len()
        } else {
            0
        };
        let mut spec = Spec {
            kinds,
            text_slots,
            long: mask & EXPERT_LONG_COPY != 0,
            short: mask & EXPERT_SHORT_COPY != 0,
            confidence_limit: since(v13, CONFIDENCE_LIMIT, 63),
            short_len: since(v13, SHORT_COPY_LEN, 4),
            retrieval: mask & EXPERT_RETRIEVAL != 0,
            bitmap: v13 && mask & EXPERT_SPARSE != 0,
            neural,
            neural_col,
            // Version 3: twice the slots for blocks under 1 MiB (a block can create up to 18
            // slots per byte, so small tables lost contexts to collisions) but no more than
            // version 2's 64 MiB for the default block, and nonstationary counters.
            // Version 13: four times the slots, up to the largest table (from blocks of
            // ~130 KB): with every context spread over the whole table, fewer are lost to
            // collisions (`docs/tuning.md`, "Binary data: the column slot, and the context
            // hash").
            table_extra: if version >= GROWN_VERSION {
                3
            } else if version >= 3 {
                2
            } else {
                1
            },
            // Version 13: 2^22 slots (128 MiB) for the blocks of 512 KiB and more, but
            // `fast` keeps its speed with 2^21 (`docs/tuning.md`, "Binary data: the column
            // slot, and the context hash").
            table_max: if version >= GROWN_VERSION && mask != profile_mask::FAST {
                GROW_MAX_BITS
            } else if version >= 3 {
                21
            } else {
                22
            },
            surprise: since(
                v13,
                since(groups, Surprise::SPLIT, Surprise::SPLIT_ONE_GROUP),
                since(version >= 3, Surprise::UNIFORM_TEXT, Surprise::NONE),
            ),
            records: version >= 5,
            structure: v13,
            copy_signed: v13,
            copy_recovers: v13,
            grows: version >= GROWN_VERSION,
            mapped: !(v13 && mask == profile_mask::FAST),
            nibbles: version >= 6,
            groups,
            older_pair: v13 && groups,
            fifth: v13 && groups,
            text_pattern: v13,
            weight_init: since(v13 && groups, WEIGHT_INIT, WEIGHT_ONE / 4),
            bits: version >= BITS_VERSION,
            final_group: since(v13, FINAL_GROUP, 0),
            final_twin: v13 && groups,
            pair_bits: since(v13, PAIR_BITS, (3, 3)),
            pair_keys: v13,
            apm_both: v13,
            apm_copy,
            match_states: since(v13, PATH_STATES, MATCH_STATES),
            order_columns,
            word_columns,
            apm0_sets: since(v13, PATH_STATES * CLASSES, 1),
            gate_rate: since(v13, since(groups, GATE_RATE_FRESH, GATE_RATE), 12),
            // `fast`'s single group, with its larger boost, learns too fast at this rate.
            gate_rate_binary: since(v13, since(groups, GATE_RATE_BINARY, GATE_RATE), 12),
            gate_rate_prose: since(v13, since(groups, GATE_RATE_PROSE, GATE_RATE), 12),
            output_weights: match apm_copy {
                true => OUTPUT_WEIGHTS,
                false => since(v13, OUTPUT_WEIGHTS_NO_COPY, [4, 5, 7, 0]),
            },
            boost: match version {
                _ if v13 && groups => BOOST_FRESH,
                6.. => BOOST,
                _ => (36, 8192),
            },
            skip_error: since(
                v13,
                SKIP_ERROR,
                since(version >= RATIO_VERSION, SKIP_ERROR_V10, 0),
            ),
            fresh: v13 && groups,
            apm_fast_bytes: since(version >= 6, APM_FAST_BYTES, 0),
            primer: None,
            dictionary: 0,
            version,
            mask,
            bias: None,
        };
        if v13 && groups {
            // The bilevel image's last column where the profile has them, else a column
            // of its own after the others. (`fast`'s single group lost on prose by it.)
            let n = spec.inputs();
            spec.bias = Some(if spec.bitmap { n - 1 } else { n });
        }
        if spec.text_slots != 0 {
            let gap = TEXT_SLOTS.iter().position(|&k| k == Kind::WordGap);
            spec.word_columns[2] = gap.map(|i| spec.text_columns().start + i);
        }
        spec
    }

    /// The text slots' input columns: the first of the bilevel image's, one per slot.
    pub(super) fn text_columns(&self) -> std::ops::Range<usize> {
        let first = self.inputs() - bitmap::INPUTS;
        first..first + self.text_slots
    }

    /// log2 of the context table's slots and of the copy tables' entries for a block of
    /// `len` bytes. Tables follow the block's length, never the lane count, so a decoder
    /// builds the same tables whatever lanes it runs; short blocks get small, cache-resident
    /// tables.
    pub(super) fn table_bits(&self, len: usize) -> (u32, u32) {
        let bits = |len: usize| usize::BITS - len.max(256).saturating_sub(1).leading_zeros();
        let primer = self
            .primer
            .map_or(0, <[u8]>::len)
            .min(crate::format::TABLE_PRIMER_LEN);
        // A primed lane's context table holds the primer's contexts as well as the
        // block's; its copy tables index positions of either, never fewer than the
        // primer's (`docs/tuning.md`, "Table sizes when primed").
        let (context_bits, copy_bits) = (bits(len + primer), bits(len.max(primer)));
        let mut context_bits = (context_bits + self.table_extra).clamp(10, self.table_max);
        if self.grows && primer > 0 {
            // The primed state's table (a block of length 0's) is the smallest any block
            // has, which every block's grows from; a larger one for the primer alone would
            // take more memory in every primed state the process keeps.
            debug_assert!(self.table_max <= GROW_MAX_BITS);
            context_bits = if len == 0 {
                GROW_MAX_BITS - GROW_BITS
            } else {
                context_bits.max(GROW_MAX_BITS - GROW_BITS)
            };
        }
        (context_bits, copy_bits.clamp(10, 22))
    }

    /// An upper bound on the heap bytes of one lane coding a block of `len` bytes: the
    /// tables that scale with the block, exactly, plus a margin for the fixed-size state.
    pub(super) fn lane_bytes(&self, len: usize) -> u64 {
        let (table_bits, copy_bits) = self.table_bits(len);
        let mut bytes = 0;
        if !self.kinds.is_empty() {
            bytes += Orders::table_bytes(table_bits);
        }
        bytes += u64::from(u8::from(self.long) + u8::from(self.short))
            * CopyExpert::table_bytes(copy_bits);
        if self.retrieval {
            bytes += Retrieval::table_bytes(copy_bits);
        }
        bytes += self.bitmap_bytes();
        // Each mixer's sets, and up to a cache line to align them; the first layer's step
        // counts where fresh sets learn faster.
        let rows = |rows: usize, n: usize| ((rows * n + 16) * 4) as u64;
        let steps = |rows: usize| if self.fresh { rows as u64 * 2 } else { 0 };
        bytes += if self.groups {
            let group = self.group_rows();
            group[..self.group_count()]
                .iter()
                .map(|&r| rows(r, MAX_INPUTS) + steps(r))
                .sum::<u64>()
                + rows(group[self.final_group], GROUPS)
                + if self.final_twin {
                    rows(group[FINAL_TWIN_GROUP], GROUPS)
                } else {
                    0
                }
        } else {
            let first = self.group_rows()[0];
            rows(first, MAX_INPUTS) + steps(first)
        };
        // Bit coding refines with the order-2 APM where nibble coding used the order-1.
        let apm_rows = 256 * self.apm0_sets
            + if self.bits { APM2_ROWS } else { 256 * 256 }
            + if self.apm_copy { APM_COPY_ROWS } else { 0 };
        bytes += (apm_rows * 33 * std::mem::size_of::<u16>()) as u64;
        // The history holds the primer and the block; a growing `Vec` may double once.
        bytes += 2 * (len + self.primer.map_or(0, <[u8]>::len)) as u64;
        bytes + LANE_FIXED_BYTES
    }

    /// An upper bound on the heap bytes of a dictionary of a block of `len` bytes
    /// ([`Lane::dictionary`]): a lane's, with the context table of a primed state.
    pub(super) fn dictionary_bytes(&self, len: usize) -> u64 {
        let table = |len| {
            if self.kinds.is_empty() {
                0
            } else {
                Orders::table_bytes(self.table_bits(len).0)
            }
        };
        self.lane_bytes(len) - table(len) + table(0)
    }

    /// What the bilevel image specialist's tables add to [`Spec::lane_bytes`] once a block
    /// shows a bitmap's rows.
    pub(super) fn bitmap_bytes(&self) -> u64 {
        if self.bitmap {
            Bitmap::table_bytes()
        } else {
            0
        }
    }

    /// Weight rows per group: its sets times their keys (256 nodes, or [`PAIR_KEYS`] and
    /// a bitmap's 256 pixel contexts after the third group's sets).
    pub(super) fn group_rows(&self) -> [usize; GROUPS] {
        let (before, last) = self.pair_bits;
        let pixels = if self.pair_keys { 256 } else { 0 };
        let (third, second) = OLDER_PAIR_BITS;
        [
            self.match_states * CLASSES * 256,
            (TABLE_SETS + 16) * 256,
            (1 << (before + last)) * self.pair_set_keys() + pixels,
            if self.older_pair {
                (1 << (third + second)) * PAIR_KEYS
            } else {
                0
            },
            if self.fifth {
                (1 << FIFTH_BITS) * FIFTH_ROWS
            } else {
                0
            },
        ]
    }

    /// The weight-set groups of the first layer that run.
    pub(super) fn group_count(&self) -> usize {
        match (self.groups, self.older_pair) {
            (false, _) => 1,
            (true, false) => 3,
            (true, true) => 4 + usize::from(self.fifth),
        }
    }

    /// Keys of a third-group weight set: [`PAIR_KEYS`] from format version 13, else a
    /// node's 256.
    pub(super) fn pair_set_keys(&self) -> usize {
        if self.pair_keys {
            PAIR_KEYS
        } else {
            256
        }
    }

    /// The third group's first row of a bitmap's 256 pixel contexts: from format version 13
    /// the rows after its sets, before the first set's.
    pub(super) fn pixel_rows(&self) -> usize {
        let (before, last) = self.pair_bits;
        if self.pair_keys {
            (1 << (before + last)) * PAIR_KEYS
        } else {
            0
        }
    }

    pub(super) fn inputs(&self) -> usize {
        self.kinds.len() - self.text_slots
            + CopyExpert::INPUTS * (usize::from(self.long) + usize::from(self.short))
            + Retrieval::INPUTS * usize::from(self.retrieval)
            + usize::from(self.neural && self.neural_col.is_none())
            + bitmap::INPUTS * usize::from(self.bitmap)
            + usize::from(self.bias.is_some() && !self.bitmap)
    }
}

impl Lane {
    pub(super) fn new(spec: &Spec, block_len: usize) -> Box<Lane> {
        let n = spec.inputs();
        // Every expert set fits: 10 contexts + 3 x 2 copy/retrieval = 16 (the neural input
        // in the unigram's column from version 13), or 9 contexts (no unigram) + 3 x 2 + 1
        // neural = 16.
        debug_assert!(n <= MAX_INPUTS);
        let (table_bits, copy_bits) = spec.table_bits(block_len);
        let mut lane = Box::new(Lane {
            block_len,
            bytes: Vec::with_capacity(block_len),
            orders: (!spec.kinds.is_empty()).then(|| {
                let mut orders = Orders::new(
                    &spec.kinds,
                    table_bits,
                    spec.surprise,
                    spec.records,
                    spec.structure,
                    spec.grows,
                    spec.mapped,
                );
                if spec.text_slots != 0 {
                    orders.set_text_slots(
                        spec.kinds.len() - spec.text_slots,
                        spec.text_columns().start,
                        TEXT_SLOTS_ON_BINARY,
                    );
                }
                orders
            }),
            long: spec.long.then(|| {
                CopyExpert::new(
                    12,
                    copy_bits,
                    spec.confidence_limit,
                    spec.copy_signed,
                    spec.copy_recovers,
                )
            }),
            short: spec.short.then(|| {
                let limit = spec.confidence_limit;
                CopyExpert::new(
                    spec.short_len,
                    copy_bits,
                    limit,
                    spec.copy_signed,
                    spec.copy_recovers,
                )
            }),
            retrieval: spec
                .retrieval
                .then(|| Retrieval::new(copy_bits, spec.confidence_limit)),
            bitmap: None,
            bitmap_active: false,
            delta: spec.bitmap.then(|| Delta::new(spec.confidence_limit)),
            n,
            tree: (!spec.bits).then(|| Box::new(Tree::new(spec.apm_both))),
            mixers: spec.group_rows()[..spec.group_count()]
                .iter()
                .map(|&rows| {
                    Mixer::new(rows, spec.gate_rate, spec.weight_init)
                        .skipping(spec.skip_error)
                        .fresh(spec.fresh)
                        .inputs(spec.inputs())
                })
                .collect(),
            sets: [0; GROUPS],
            path: 0,
            path_sets: [0; 2],
            word_columns: spec.word_columns,
            final_twin: spec.final_twin.then(|| {
                Mixer::new(
                    spec.group_rows()[FINAL_TWIN_GROUP],
                    FINAL_RATE,
                    WEIGHT_ONE / spec.group_count() as i32,
                )
            }),
            final_st: Box::new([[0; 2]; 256]),
            final_mix: spec.groups.then(|| {
                Mixer::new(
                    spec.group_rows()[spec.final_group],
                    FINAL_RATE,
                    WEIGHT_ONE / spec.group_count() as i32,
                )
            }),
            group_st: Box::new([[0; GROUPS]; 256]),
            group_p: Box::new([[2048; GROUPS]; 256]),
            apm_order0: Apm::new(256 * spec.apm0_sets, 7, spec.apm_both),
            // Bit coding has the order-2 APM in place of the tree's order-1 one: that one
            // beside it was worth nothing for 4 MiB per lane and a cache miss per node
            // (`docs/tuning.md`, "Bit coding").
            apm_order2: spec.bits.then(|| Apm::new(APM2_ROWS, 7, spec.apm_both)),
            cx2: 0,
            apm_copy: spec
                .apm_copy
                .then(|| Apm::new(APM_COPY_ROWS, 7, spec.apm_both)),
            cx_copy: 0,
            inputs: Box::new([[0; MAX_INPUTS]; 256]),
            p_mix: Box::new([2048; 256]),
            apm_index: Box::new([[0; 3]; 256]),
            rows: Box::new([[0; GROUPS]; 256]),
            keys: std::array::from_fn(|i| i as u8),
            spec: spec.clone(),
            start: 0,
        });
        lane.reset();
        lane
    }

    /// A lane for a block of `block_len` bytes from `primed`, a state primed in the
    /// smallest tables ([`Spec::grows`]): the context table grown, the copy and retrieval
    /// tables rebuilt from the primer's bytes at the block's sizes.
    ///
    /// A block that is to be the stream's dictionary (`dictionary`) keeps the primed
    /// state's context table, so that its end state is a primed state in size too
    /// ([`Lane::dictionary`]); it is never restored in place.
    pub(super) fn grown(primed: &Lane, block_len: usize, dictionary: bool) -> Box<Lane> {
        Lane::grow(Box::new(primed.clone()), block_len, dictionary)
    }

    /// [`Lane::grown`] of `lane`, a primed state, in place.
    pub(super) fn grow(mut lane: Box<Lane>, block_len: usize, dictionary: bool) -> Box<Lane> {
        let (mut table_bits, copy_bits) = lane.spec.table_bits(block_len);
        if dictionary {
            table_bits = lane.spec.table_bits(lane.block_len).0;
            lane.spec.dictionary = MAKES_DICTIONARY;
        }
        lane.block_len = block_len;
        lane.bytes.reserve(block_len);
        if let Some(o) = &mut lane.orders {
            o.grow(table_bits);
        }
        for c in [&mut lane.long, &mut lane.short].into_iter().flatten() {
            c.grow(copy_bits, &lane.bytes);
        }
        if let Some(r) = &mut lane.retrieval {
            r.grow(copy_bits, &lane.bytes);
        }
        lane
    }

    /// Forgets what was written so far: this state is the one [`Lane::restore_from`]
    /// returns to (a primed state, once primed).
    pub(super) fn clear_marks(&mut self) {
        if let Some(o) = &mut self.orders {
            o.clear_marks();
        }
        for c in [&mut self.long, &mut self.short].into_iter().flatten() {
            c.clear_marks();
        }
        if let Some(r) = &mut self.retrieval {
            r.clear_marks();
        }
        for m in &mut self.mixers {
            m.clear_marks();
        }
        for f in [&mut self.final_mix, &mut self.final_twin]
            .into_iter()
            .flatten()
        {
            f.clear_marks();
        }
        for a in self.apms() {
            a.clear_marks();
        }
    }

    /// Every APM the lane has.
    fn apms(&mut self) -> impl Iterator<Item = &mut Apm> {
        [&mut self.apm_order0]
            .into_iter()
            .chain(self.tree.as_deref_mut().map(|t| &mut t.apm_order1))
            .chain(&mut self.apm_order2)
            .chain(&mut self.apm_copy)
    }

    /// Makes this lane what [`Lane::grown`] (or a clone, before format version 13) makes
    /// of `primed` for a block of `block_len` bytes, where this lane was made from `primed`
    /// for a block with the same tables: the lines its blocks wrote are copied back (or,
    /// in a context table grown from the primed state's, grown again), not the whole
    /// state. False, and nothing done, where the tables differ.
    pub(super) fn restore_from(&mut self, primed: &Lane, block_len: usize) -> bool {
        let bits = self.spec.table_bits(block_len);
        let (primed_context, primed_copy) = self.spec.table_bits(primed.block_len);
        // The context table is the primed state's, or (format version 13) grown from it.
        let context = primed_context == bits.0 || (self.spec.grows && primed_context < bits.0);
        if self.spec.dictionary != primed.spec.dictionary
            || self.spec.table_bits(self.block_len) != bits
            || !context
            || primed_copy != bits.1
            || !super::primer::same_primer(self.spec.primer, primed.spec.primer)
        {
            return false;
        }
        // Every field named, so a new one cannot be left out.
        let Lane {
            path: _,
            path_sets: _,
            word_columns: _,
            rows: _,
            block_len: _,
            bytes,
            orders,
            long,
            short,
            retrieval,
            bitmap,
            bitmap_active,
            delta,
            n,
            tree,
            mixers,
            sets,
            final_mix,
            final_twin,
            final_st,
            apm_order0,
            apm_order2,
            cx2,
            apm_copy,
            cx_copy,
            inputs,
            p_mix,
            apm_index,
            keys,
            group_st,
            group_p,
            spec,
            start,
        } = primed;
        fn both<T>(to: &mut Option<T>, from: &Option<T>, restore: impl FnOnce(&mut T, &T)) {
            match (to, from) {
                (Some(to), Some(from)) => restore(to, from),
                (None, None) => {}
                _ => unreachable!("lanes of one spec run the same experts"),
            }
        }
        self.block_len = block_len;
        self.bytes.clone_from(bytes);
        self.bytes.reserve(block_len);
        both(&mut self.orders, orders, Orders::restore_from);
        both(&mut self.long, long, CopyExpert::restore_from);
        both(&mut self.short, short, CopyExpert::restore_from);
        both(&mut self.retrieval, retrieval, Retrieval::restore_from);
        self.bitmap.clone_from(bitmap);
        self.bitmap_active = *bitmap_active;
        self.delta.clone_from(delta);
        self.n = *n;
        both(&mut self.tree, tree, |to, from| to.restore_from(from));
        assert_eq!(self.mixers.len(), mixers.len());
        for (to, from) in self.mixers.iter_mut().zip(mixers) {
            to.restore_from(from);
        }
        self.sets = *sets;
        both(&mut self.final_mix, final_mix, Mixer::restore_from);
        both(&mut self.final_twin, final_twin, Mixer::restore_from);
        *self.final_st = **final_st;
        self.apm_order0.restore_from(apm_order0);
        both(&mut self.apm_order2, apm_order2, Apm::restore_from);
        self.cx2 = *cx2;
        both(&mut self.apm_copy, apm_copy, Apm::restore_from);
        self.cx_copy = *cx_copy;
        *self.inputs = **inputs;
        *self.p_mix = **p_mix;
        *self.apm_index = **apm_index;
        self.keys = *keys;
        *self.group_st = **group_st;
        *self.group_p = **group_p;
        self.spec.clone_from(spec);
        self.start = *start;
        true
    }

    /// This lane's state at the end of its block (made by [`Lane::grown`] as a dictionary)
    /// as a state later blocks start from ([`crate::format::FLAG_DICT`]), as a primed
    /// state is: the tables of a block of length 0 (the copy and retrieval tables filed
    /// again at that size), written lines unmarked, the next block's start marked, under
    /// an identity of its own.
    pub(super) fn dictionary(&self) -> Lane {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        debug_assert_eq!(self.spec.dictionary, MAKES_DICTIONARY);
        let mut lane = self.clone();
        lane.block_len = 0;
        // The copy and retrieval tables a block of length 0 has, filed from the history as
        // coding files them: a lane restored in place from this state (`restore_from`)
        // must find the tables that `grown` would build.
        let copy_bits = lane.spec.table_bits(0).1;
        for c in [&mut lane.long, &mut lane.short].into_iter().flatten() {
            c.grow(copy_bits, &lane.bytes);
        }
        if let Some(r) = &mut lane.retrieval {
            r.grow(copy_bits, &lane.bytes);
        }
        lane.spec.dictionary = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lane.clear_marks();
        lane.start_block();
        lane
    }

    /// Codes `primer` as if it began the block (its bytes stay in the history for the copy
    /// experts); the block's own bytes then start the boost and the APMs' fast phase. A
    /// neural input of a column of its own, which the primer does not drive, sits at 0
    /// (even odds); one in the unigram's column gives it back to the unigram.
    pub(super) fn prime(&mut self, primer: &[u8]) {
        let neural = self.spec.neural && self.spec.neural_col.is_none();
        let mut out = [0u32; 256];
        let mut low = [0u32; 16];
        for &b in primer {
            self.predict(neural.then_some(&EVEN), &mut out);
            if self.spec.bits {
                for j in 0..8 {
                    self.predict_bit((1 << j) | usize::from(b) >> (8 - j));
                }
            } else if self.spec.nibbles {
                self.predict_low(usize::from(b >> 4), &mut low);
            }
            self.update(b);
        }
        self.start_block();
    }

    /// Whether the block runs the neural expert, where its input takes the unigram slot's
    /// column ([`Spec::neural_col`]): the slot sits the block out. Set at the block start;
    /// primed states are without.
    pub(super) fn set_neural(&mut self, on: bool) {
        if let (Some(c), Some(o)) = (self.spec.neural_col, &mut self.orders) {
            o.set_displaced(on.then_some(c));
            self.word_columns[1] = self.spec.word_columns[1].filter(|&u| !on || u != c);
        }
    }

    /// Models the block as x86 machine code ([`Orders::set_code`]).
    pub(super) fn set_code(&mut self) {
        if let Some(o) = &mut self.orders {
            o.set_code();
        }
    }

    /// Marks the block's first byte: the boost, the APMs' fast phase and the offsets the
    /// machine-code contexts key on count from here.
    pub(super) fn start_block(&mut self) {
        self.start = self.bytes.len();
        if let Some(o) = &mut self.orders {
            o.start_block(self.start);
        }
        let rate = if self.spec.apm_fast_bytes > 0 { 6 } else { 7 };
        for a in self.apms() {
            a.rate = rate;
        }
    }

    pub(super) fn reset(&mut self) {
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
        self.bitmap = None;
        self.bitmap_active = false;
        if let Some(d) = &mut self.delta {
            d.reset();
        }
        for m in self.mixers.iter_mut() {
            m.reset(self.spec.weight_init);
            if let Some(b) = self.spec.bias {
                m.set_input_weights(b, 0);
            }
        }
        for f in [&mut self.final_mix, &mut self.final_twin]
            .into_iter()
            .flatten()
        {
            f.reset(WEIGHT_ONE / self.spec.group_count() as i32);
        }
        if let Some(t) = &mut self.tree {
            t.reset();
        }
        for a in self.apms() {
            a.reset();
        }
        for row in self.inputs.iter_mut() {
            *row = [0; MAX_INPUTS];
        }
        self.set_bias();
        self.start_block();
    }

    /// Writes [`BIAS_INPUT`] into its column at every node, where the spec has one.
    fn set_bias(&mut self) {
        if let Some(b) = self.spec.bias {
            for x in self.inputs.iter_mut() {
                x[b] = BIAS_INPUT;
            }
        }
    }

    /// Fills `out` with the next byte's weights; `neural` holds the neural expert's weights
    /// when it takes part.
    pub(super) fn predict(&mut self, neural: Option<&Weights>, out: &mut Weights) {
        let mut col = 0;
        if let Some(o) = &mut self.orders {
            if let Some(columns) = o.text_slots_left() {
                // The data turned binary: the columns go back to the specialists, which
                // write only the nodes they predict.
                for x in self.inputs.iter_mut() {
                    x[columns.clone()].fill(0);
                }
            }
            if self.spec.bits {
                // The long copy's expected byte, else the short one's.
                let copy = [&self.long, &self.short]
                    .into_iter()
                    .flatten()
                    .find_map(|c| Some((c.next_expected(&self.bytes)?, c.len())));
                o.expect(copy.map(|(e, _)| e), copy.map_or(0, |(_, len)| len));
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
            col += CopyExpert::INPUTS;
            longest = longest.max(c.len());
        }
        if let Some(r) = &mut self.retrieval {
            r.predict(&self.bytes, &mut self.inputs, col);
            col += Retrieval::INPUTS;
        }
        if let Some(w) = neural {
            match self.spec.neural_col {
                Some(c) => neural_inputs(w, &mut self.inputs, c),
                None => {
                    neural_inputs(w, &mut self.inputs, col);
                    col += 1;
                }
            }
        }
        if self.spec.bitmap {
            let row = self.orders.as_ref().and_then(Orders::record_length);
            if row.is_some() && self.bitmap.is_none() {
                self.bitmap = Some(Box::new(Bitmap::new()));
            }
            if let Some(b) = &mut self.bitmap {
                b.start_byte(&self.bytes, row);
            }
            let active = self.bitmap.as_ref().is_some_and(|b| b.active());
            if self.bitmap_active && !active {
                // The templates' inputs leave: the columns are the counting field's, zero
                // off its path.
                for x in self.inputs.iter_mut() {
                    x[col..col + bitmap::INPUTS].fill(0);
                }
                self.set_bias();
            }
            self.bitmap_active = active;
            if let Some(d) = &mut self.delta {
                let row = row.filter(|_| !active);
                let series = self.orders.as_ref().and_then(|o| o.series(&self.bytes));
                d.predict(&self.bytes, row, series, &mut self.inputs, col);
            }
            col += bitmap::INPUTS;
        }
        if self.spec.bias.is_some() && !self.spec.bitmap {
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
        // The byte `i` back (0 before the history's first).
        let back = |i: usize| self.bytes.len().checked_sub(i).map_or(0, |i| self.bytes[i]);
        let before = back(2);
        let pair = top_bits(before, last, self.spec.pair_bits);
        let pair_keys = self.spec.pair_set_keys();
        self.sets = [
            (match_state * CLASSES + class(last)) * 256,
            self.orders.as_ref().map_or(0, Orders::gate_context) * 256,
            pair * pair_keys,
            0,
            0,
        ];
        if self.spec.fifth {
            self.sets[4] = self.orders.as_ref().map_or(0, |o| o.fifth_set(FIFTH_BITS)) * FIFTH_ROWS;
        }
        let text = self.orders.as_ref().is_some_and(|o| !o.binary());
        let pattern = (self.spec.text_pattern && text).then(|| class_pattern(back));
        if self.spec.older_pair {
            self.sets[3] =
                pattern.unwrap_or_else(|| top_bits(back(3), before, OLDER_PAIR_BITS)) * PAIR_KEYS;
        }
        if self.spec.match_states == PATH_STATES {
            let expected = (self.long.as_ref().and_then(CopyExpert::expected))
                .or_else(|| self.short.as_ref().and_then(CopyExpert::expected));
            self.path = expected.map_or(0, |e| 256 | usize::from(e));
            self.path_sets = [
                OFF_PATH * CLASSES + class(last),
                (match_state + 3) * CLASSES + class(last),
            ]
            .map(|s| s * 256);
        }
        if self.bitmap_active {
            // The last two bytes' top bits are pixels the templates see better; the nodes'
            // pixel contexts ([`Lane::keys`]) take their place, from format version 13 in
            // rows of their own after the sets.
            self.sets[2] = self.spec.pixel_rows();
        }
        let two = u32::from(last) | u32::from(before) << 8;
        self.cx2 = match pattern {
            Some(pattern) => {
                let key = u64::from(two) | ((pattern >> 4) as u64 + 1) << 16;
                (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48) as usize
            }
            None => (two.wrapping_mul(0x9E37_79B1) >> 16) as usize,
        };
        if self.apm_copy.is_some() {
            self.cx_copy = self.copy_context(longest, last);
        }
        if self.spec.bits {
            self.prefetch_gate(1);
        } else {
            self.predict_tree(last, out);
        }
    }

    /// Starts fetching the gate's weight and APM rows of node `c0` (and of its sibling,
    /// which shares their cache lines or sits next to them): the node's rows are known a
    /// decision ahead, and a decision waits on them otherwise. Where the second group
    /// chooses by the orders found at the node, which its inputs say only later, it takes
    /// the grandparent's choice: a node rarely finds more orders than the nodes above it.
    #[inline(always)]
    pub(super) fn prefetch_gate(&self, c0: usize) {
        let row = |g: usize, node: usize| match g {
            1 if self.node_orders() => (self.rows[node >> 2][1] as usize & !255) + node,
            _ => self.row(g, node, node),
        };
        let row0 = row(0, c0);
        for (g, m) in self.mixers.iter().enumerate() {
            m.prefetch(if g == 0 { row0 } else { row(g, c0) });
            // The root (node 1) has no sibling.
            if c0 > 1 {
                m.prefetch(row(g, c0 ^ 1));
            }
        }
        if let Some(f) = &self.final_mix {
            f.prefetch(row(self.spec.final_group, c0));
        }
        if let Some(f) = &self.final_twin {
            f.prefetch(row(FINAL_TWIN_GROUP, c0));
        }
        if self.spec.apm0_sets > 1 {
            let at = self.apm0_row(row0, c0) * 33;
            prefetch(self.apm_order0.table.as_slice(), at);
            prefetch(self.apm_order0.table.as_slice(), at + 32);
        }
        // A row of 33 points is 66 bytes: two cache lines, either of which the refinement
        // may read.
        let apms = [
            (&self.apm_order2, self.cx2, APM2_ROWS),
            (&self.apm_copy, self.cx_copy, APM_COPY_ROWS),
        ];
        for (a, cx, rows) in apms {
            if let Some(a) = a {
                for row in [cx ^ c0, cx ^ c0 ^ 1] {
                    let at = (row & (rows - 1)) * 33;
                    prefetch(a.table.as_slice(), at);
                    prefetch(a.table.as_slice(), at + 32);
                }
            }
        }
    }

    /// P(1) of node `c0` out of 2^16 (bit coding): its inputs, then the gate.
    pub(super) fn predict_bit(&mut self, c0: usize) -> u32 {
        if c0 < 128 {
            self.prefetch_gate(2 * c0);
        }
        let mut lean = 0;
        if let Some(o) = &mut self.orders {
            if (16..32).contains(&c0) {
                // The high nibble is known: its low nibble's slots.
                o.lookup_low(c0 - 16);
            }
            o.node_inputs(c0, &mut self.inputs[c0], 0);
            if (8..16).contains(&c0) {
                // The high nibble is one of two: fetch the low slots of the one the
                // contexts lean to, or of both where they do not (below, the gate may
                // still ask for the other).
                lean = self.inputs[c0][..o.inputs()].iter().sum::<i32>();
                if lean > -LOW_LEAN {
                    o.prefetch_low(2 * c0 + 1 - 16);
                }
                if lean < LOW_LEAN {
                    o.prefetch_low(2 * c0 - 16);
                }
            }
        }
        if self.spec.bitmap {
            let row = &mut self.inputs[c0][self.n - bitmap::INPUTS..self.n];
            self.keys[c0] = match &mut self.bitmap {
                Some(b) if b.on() => b.node_inputs(c0, row).unwrap_or(c0),
                _ => c0,
            } as u8;
        }
        let (p_mix, a0, a2, a3) = self.gate(c0);
        // The gate's output (12-bit, so times 16) and the APMs' (16-bit).
        let [w, w0, w2, w3] = self.spec.output_weights;
        let p = ((p_mix * 16 * w + a0 * w0 + a2 * w2 + a3 * w3 + 8) >> 4)
            .clamp(P_MIN, (1 << 16) - P_MIN);
        if let Some(o) = &self.orders {
            // The candidate the contexts leaned away from, where the gate gives it a chance.
            if lean >= LOW_LEAN && p < (1 << 16) - LOW_DOUBT {
                o.prefetch_low(2 * c0 - 16);
            } else if lean <= -LOW_LEAN && p > LOW_DOUBT {
                o.prefetch_low(2 * c0 + 1 - 16);
            }
        }
        match &mut self.bitmap {
            // A bitmap's pixel: the specialist's own mixer has its say beside the gate.
            Some(b) if self.bitmap_active => b.blend(c0, p).clamp(P_MIN, (1 << 16) - P_MIN) as u32,
            _ => p as u32,
        }
    }

    /// The gate's output for node `c0`, remembering what training needs: its 12-bit P(1)
    /// and the APMs' 16-bit refinements of it. Integer arithmetic throughout, so AVX2
    /// (where the CPU has it) gives the same bits as SSE2.
    #[inline(never)]
    pub(super) fn gate(&mut self, c0: usize) -> (i32, i32, i32, i32) {
        crate::wide::run(
            #[inline(always)]
            || self.gate_body(c0),
        )
    }

    #[inline(always)]
    pub(super) fn gate_body(&mut self, c0: usize) -> (i32, i32, i32, i32) {
        let x = &self.inputs[c0];
        let key = usize::from(self.keys[c0]);
        // The rows of the groups that run (`fast` has one).
        let mut rows = [0; GROUPS];
        for (g, r) in rows.iter_mut().enumerate().take(self.mixers.len()) {
            *r = self.row(g, c0, key);
        }
        self.rows[c0] = rows.map(|r| r as u32);
        let mut group_st = [0; GROUPS];
        for (g, m) in self.mixers.iter().enumerate() {
            group_st[g] = m.dot(rows[g], x);
            self.group_p[c0][g] = squash(group_st[g]);
        }
        let st = match &self.final_mix {
            Some(f) => {
                let st = f.dot(rows[self.spec.final_group], &group_st);
                self.final_st[c0][0] = st;
                match &self.final_twin {
                    Some(twin) => {
                        let twin_st = twin.dot(rows[FINAL_TWIN_GROUP], &group_st);
                        self.final_st[c0][1] = twin_st;
                        // Rounded toward minus infinity, as the mixers' own sums.
                        (st + twin_st) >> 1
                    }
                    None => st,
                }
            }
            None => group_st[0],
        };
        self.group_st[c0] = group_st;
        let p_mix = squash(st);
        self.p_mix[c0] = p_mix;
        let (a0, i0) = self.apm_order0.refine(st, self.apm0_row(rows[0], key));
        let (a1, i1) = match (&self.apm_order2, &self.tree) {
            (Some(a), _) => a.refine(st, (self.cx2 ^ key) & (APM2_ROWS - 1)),
            // Before bit coding: the tree's order-1 APM.
            (None, Some(t)) => t.apm_order1.refine(st, t.cx1 + c0),
            (None, None) => unreachable!("a lane without bit coding has a tree"),
        };
        let (a3, i3) = match &self.apm_copy {
            Some(a) => a.refine(st, (self.cx_copy ^ key) & (APM_COPY_ROWS - 1)),
            None => (0, 0),
        };
        self.apm_index[c0] = [i0, i1, i3];
        (p_mix, a0, a1, a3)
    }

    /// The copy APM's context for the next byte: the byte the long copy expects (else the
    /// short one's) with the longest match's length up to 15; without a match, the last
    /// byte.
    fn copy_context(&self, longest: u32, last: u8) -> usize {
        let expected = (self.long.as_ref().and_then(CopyExpert::expected))
            .or_else(|| self.short.as_ref().and_then(CopyExpert::expected));
        let key = match expected {
            Some(e) => u64::from(e) | u64::from(longest.min(15)) << 8 | 2 << 40,
            None => u64::from(last) | 3 << 40,
        };
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48) as usize
    }

    /// Group `g`'s weight set for node `c0`, times 256 (the node is added to it). From
    /// format version 13 two groups choose node by node: the first by where the node sits
    /// on the byte the copy expects (on its path by the bit it expects, off it in a set of
    /// its own), the second on text by the highest order context found at the node and
    /// whether the word, unigram and word-with-separator contexts were (`docs/tuning.md`,
    /// "Weight sets chosen node by node", "Text slots").
    #[inline(always)]
    fn set(&self, g: usize, c0: usize) -> usize {
        match g {
            0 if self.path != 0 => {
                // The decisions made so far in this byte: those of `c0` below its top bit.
                let depth = 31 - (c0 as u32).leading_zeros();
                if self.path >> (8 - depth) != c0 {
                    self.path_sets[0]
                } else if (self.path >> (7 - depth)) & 1 != 0 {
                    self.path_sets[1]
                } else {
                    self.sets[0]
                }
            }
            1 if self.node_orders() => {
                let x = &self.inputs[c0];
                let orders = &x[..self.spec.order_columns];
                let highest = orders.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
                let [word, unigram, gap] = self.word_columns.map(|c| c.is_some_and(|c| x[c] != 0));
                let words = usize::from(word) + 2 * usize::from(unigram) + 4 * usize::from(gap);
                (TEXT_SETS + highest + TEXT_ORDER_STATES * words) * 256
            }
            _ => self.sets[g],
        }
    }

    /// Group `g`'s weight row for node `c0`, `key` being the node's key ([`Lane::keys`]):
    /// from format version 13 the third group's sets have keys of their own
    /// ([`pair_key`]) but where a bitmap's pixel contexts key them.
    #[inline(always)]
    fn row(&self, g: usize, c0: usize, key: usize) -> usize {
        debug_assert!((1..256).contains(&c0), "node {c0}");
        match g {
            2 if self.spec.pair_keys && !self.bitmap_active => self.sets[2] + pair_key(c0),
            3 => self.sets[3] + pair_key(c0),
            4 => self.sets[4] + fifth_key(c0),
            _ => self.set(g, c0) + key,
        }
    }

    /// Whether the second group chooses node by node (on text, format version 13 on).
    #[inline(always)]
    fn node_orders(&self) -> bool {
        self.sets[1] == TEXT_SETS * 256
    }

    /// The order-0 APM's row for a node: its key, or from format version 13 its row in the
    /// first weight-set group, `row0` ([`Spec::apm0_sets`]).
    #[inline(always)]
    fn apm0_row(&self, row0: usize, key: usize) -> usize {
        if self.spec.apm0_sets > 1 {
            row0
        } else {
            key
        }
    }

    pub(super) fn update(&mut self, byte: u8) {
        let b = usize::from(byte);
        // Learn fast while the block is young and the weight sets have seen little; the
        // calibration too, from version 6.
        let (peak, horizon) = self.spec.boost;
        let coded = self.bytes.len() - self.start;
        let mut boost = (peak * horizon / (horizon + coded.min(1 << 30))) as i32;
        // The first layer's rate on binary data and on prose, as a further boost over its
        // rate on text.
        match &self.orders {
            Some(o) if o.binary() => boost += self.spec.gate_rate_binary - self.spec.gate_rate,
            Some(o) if o.prose() => boost += self.spec.gate_rate_prose - self.spec.gate_rate,
            _ => {}
        }
        if coded == self.spec.apm_fast_bytes {
            for a in self.apms() {
                a.rate = 7;
            }
        }
        if self.tree.is_some() {
            self.learn_tree(b);
        }
        if let Some(b) = &mut self.bitmap {
            b.learn(byte);
        }
        if let Some(d) = &mut self.delta {
            d.update(byte);
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
        let binary = self.orders.as_ref().is_some_and(Orders::binary);
        for c in [&mut self.long, &mut self.short].into_iter().flatten() {
            c.update(&self.bytes, byte, binary);
        }
        if let Some(r) = &mut self.retrieval {
            r.update(&self.bytes, byte);
        }
        if let Some(t) = &self.tree {
            t.prefetch(b);
        }
        crate::wide::run(
            #[inline(always)]
            || self.learn_path(b, boost),
        );
    }

    /// Trains the gate and the APMs on the 8 nodes of byte `b`'s path.
    #[inline(always)]
    pub(super) fn learn_path(&mut self, b: usize, boost: i32) {
        for j in 0..8 {
            let c0 = (1 << j) | (b >> (8 - j));
            let bit = ((b >> (7 - j)) & 1) as u32;
            let x = &self.inputs[c0];
            let rows = self.rows[c0].map(|r| r as usize);
            for (g, m) in self.mixers.iter_mut().enumerate() {
                m.train(rows[g], x, self.group_p[c0][g], bit, boost);
            }
            // Each second-layer mixer learns from its own output.
            let [st, twin_st] = self.final_st[c0];
            if let Some(f) = &mut self.final_mix {
                f.train(
                    rows[self.spec.final_group],
                    &self.group_st[c0],
                    squash(st),
                    bit,
                    0,
                );
            }
            if let Some(f) = &mut self.final_twin {
                f.train(
                    rows[FINAL_TWIN_GROUP],
                    &self.group_st[c0],
                    squash(twin_st),
                    bit,
                    0,
                );
            }
            let [i0, i1, i3] = self.apm_index[c0];
            self.apm_order0.update(i0, bit);
            if let Some(a) = &mut self.apm_copy {
                a.update(i3, bit);
            }
            match &mut self.apm_order2 {
                Some(a) => a.update(i1, bit),
                None => {
                    if let Some(t) = &mut self.tree {
                        t.apm_order1.update(i1, bit);
                    }
                }
            }
        }
    }
}

/// The neural expert's bit probabilities for every node, from its byte weights.
pub(super) fn neural_inputs(w: &Weights, inputs: &mut [[i32; MAX_INPUTS]; 256], col: usize) {
    if w.iter().all(|&x| x == w[0]) {
        // Even odds on every decision (priming, plain blocks): each node's two subtrees
        // weigh the same, so the division below gives exactly 2048 at every node.
        let even = stretch(2048);
        for row in &mut inputs[1..] {
            row[col] = even;
        }
        return;
    }
    neural_inputs_divided(w, inputs, col);
}

/// [`neural_inputs`] without the shortcut for even odds.
fn neural_inputs_divided(w: &Weights, inputs: &mut [[i32; MAX_INPUTS]; 256], col: usize) {
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

/// Margin in [`Spec::lane_bytes`] for a lane's state that does not scale with the block:
/// the context statistics' adapt map (320 KiB with `default`'s contexts), their follow
/// tables (65 KiB) and, in machine code, operand table (32 KiB); per-node scratch, state
/// maps and counters.
pub(super) const LANE_FIXED_BYTES: u64 = 640 << 10;

/// Everything but `block_len` and `spec`: a state is loaded into a lane built for the same
/// spec and table sizes ([`Lane::new`]), which they describe.
impl Snapshot for Lane {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Lane {
            block_len: _,
            bytes,
            orders,
            long,
            short,
            retrieval,
            bitmap,
            bitmap_active,
            delta,
            n,
            tree,
            mixers,
            sets,
            path,
            path_sets,
            word_columns,
            final_mix,
            final_twin,
            final_st,
            apm_order0,
            apm_order2,
            cx2,
            apm_copy,
            cx_copy,
            inputs,
            p_mix,
            apm_index,
            rows,
            keys,
            group_st,
            group_p,
            spec: _,
            start,
        } = self;
        bytes.walk(w);
        w.fixed(orders);
        w.fixed(long);
        w.fixed(short);
        w.fixed(retrieval);
        // Made when a bitmap's rows are found.
        w.optional(bitmap, || Box::new(Bitmap::new()));
        bitmap_active.walk(w);
        w.fixed(delta);
        n.walk(w);
        w.fixed(tree);
        w.check_len(mixers.len());
        for m in mixers {
            m.walk(w);
        }
        sets.walk(w);
        path.walk(w);
        path_sets.walk(w);
        word_columns.walk(w);
        w.fixed(final_mix);
        w.fixed(final_twin);
        final_st.walk(w);
        apm_order0.walk(w);
        w.fixed(apm_order2);
        cx2.walk(w);
        w.fixed(apm_copy);
        cx_copy.walk(w);
        inputs.walk(w);
        p_mix.walk(w);
        apm_index.walk(w);
        rows.walk(w);
        keys.walk(w);
        group_st.walk(w);
        group_p.walk(w);
        start.walk(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixer::Profile;
    use crate::test_data::noise;

    #[test]
    fn pair_keys_are_the_depth_and_the_first_two_bits() {
        let mut seen = std::collections::BTreeMap::new();
        for c0 in 1..256usize {
            let key = pair_key(c0);
            assert!(key < PAIR_KEYS, "node {c0} key {key}");
            let depth = usize::BITS - 1 - c0.leading_zeros();
            let first_two = ((c0 << 8 >> depth) & 0xC0) | (usize::from(depth == 1) * (c0 & 1));
            // Nodes of one depth share a key exactly when they share the first two bits.
            if let Some(&(d, f)) = seen.get(&key) {
                assert_eq!((d, f), (depth, first_two), "node {c0}");
            }
            seen.insert(key, (depth, first_two));
        }
        assert_eq!(seen.len(), 1 + 2 + 6 * 4);
        // The third group's rows: the last set's keys end where the pixel rows start, and
        // those end where the mixer does.
        let spec = Spec::new(Profile::Default.experts(), crate::format::VERSION);
        let (b, l) = spec.pair_bits;
        let last_set = ((1 << (b + l)) - 1) * spec.pair_set_keys();
        let highest_key = (1..256).map(pair_key).max().unwrap_or(0);
        assert_eq!(last_set + highest_key + 1, spec.pixel_rows());
        assert_eq!(spec.pixel_rows() + 256, spec.group_rows()[2]);
    }

    #[test]
    fn the_copy_apm_keys_on_the_byte_the_copy_expects() {
        let spec = Spec::new(Profile::Default.experts(), crate::format::VERSION);
        let context = |text: &[u8]| predicting_after(&spec, text).cx_copy;
        let fox = b"the quick brown fox jumps over the lazy ";
        let after = |before: &[u8], animal: &[u8]| [before, fox, animal, b". ", fox].concat();
        // What came before the match does not count; the byte it expects does.
        let dog = context(&after(b"", b"dog"));
        assert_eq!(dog, context(&after(b"another start, then ", b"dog")));
        assert_ne!(dog, context(&after(b"", b"cat")));
        // Only lanes with the weight-set groups have it, from version 13.
        assert!(Lane::new(&spec, 1 << 12).apm_copy.is_some());
        let fast = Spec::new(Profile::Fast.experts(), crate::format::VERSION);
        assert!(!fast.apm_copy && fast.output_weights[3] == 0);
        assert!(!Spec::new(Profile::Default.experts(), 12).apm_copy);
    }

    #[test]
    fn two_groups_choose_their_weight_sets_node_by_node() {
        let spec = Spec::new(Profile::Default.experts(), crate::format::VERSION);
        let fox = b"the quick brown fox jumps over the lazy dog. ";
        let history = [fox.as_slice(), b"the quick brown fox jumps over the lazy "].concat();
        let mut lane = predicting_after(&spec, &history);
        // The copy expects `d` (0x64, 0b0110_0100): its nodes take the set of their
        // expected bit, the nodes off its path a set of their own.
        assert_eq!(lane.path, 256 | usize::from(b'd'));
        let d = usize::from(b'd');
        let (zero, one, off) = (lane.sets[0], lane.path_sets[1], lane.path_sets[0]);
        assert!(zero != one && one != off && off != zero);
        assert_eq!(off, (OFF_PATH * CLASSES + class(b' ')) * 256);
        for j in 0..8 {
            let on = (1 << j) | d >> (8 - j);
            let expected = if (d >> (7 - j)) & 1 != 0 { one } else { zero };
            assert_eq!(lane.set(0, on), expected, "node {on:#x}");
            if j > 0 {
                assert_eq!(lane.set(0, on ^ 1), off, "node {:#x}", on ^ 1);
            }
        }
        // On text the second group counts the order contexts up to the highest with a
        // counter at the node, and says whether the word, unigram and word-with-separator
        // contexts have one: after "lazy ", all five orders and the three word contexts
        // have seen the first bit.
        assert!(lane.node_orders());
        lane.predict_bit(1);
        assert_eq!(lane.set(1, 1), (TEXT_SETS + 5 + 6 * 7) * 256);
        let (orders, [word, unigram, gap]) = (spec.order_columns, spec.word_columns);
        assert_eq!((orders, word, unigram), (5, Some(5), Some(7)));
        assert_eq!(gap, Some(spec.text_columns().start + 1));
        lane.inputs[2].fill(0);
        lane.inputs[2][..orders].copy_from_slice(&[300, -20, 0, 0, 0]);
        assert_eq!(lane.set(1, 2), (TEXT_SETS + 2) * 256);
        lane.inputs[2][7] = 40;
        assert_eq!(lane.set(1, 2), (TEXT_SETS + 2 + 6 * 2) * 256);
        lane.inputs[2][gap.unwrap()] = -40;
        assert_eq!(lane.set(1, 2), (TEXT_SETS + 2 + 6 * 6) * 256);
        lane.inputs[2].fill(0);
        assert_eq!(lane.set(1, 2), TEXT_SETS * 256);
        // Before version 13, one set per byte.
        let old = Spec::new(Profile::Default.experts(), 12);
        let lane = predicting_after(&old, fox);
        assert!(lane.path == 0 && !lane.node_orders());
    }

    #[test]
    fn the_order2_apm_keys_on_the_class_pattern_three_to_five_back_on_text() {
        for profile in [Profile::Default, Profile::Fast] {
            let spec = Spec::new(profile.experts(), crate::format::VERSION);
            let cx2 = |history: &[u8]| predicting_after(&spec, history).cx2;
            // On text bytes three to five back of one class key alike, of another not.
            let key = cx2(b"x@. cz");
            assert_eq!(cx2(b"y#!\ncz"), key);
            assert_ne!(cx2(b"x@.1cz"), key);
            // The last two bytes still key it.
            assert_ne!(cx2(b"x@. dz"), key);
            // On binary data the last two bytes alone.
            let binary = |tail: &[u8]| {
                let mut history = noise(4096, 7);
                history.extend_from_slice(tail);
                cx2(&history)
            };
            assert_eq!(binary(b"\x01. cz"), binary(b"\xf0\xf1\xf2cz"));
            // Version 12 keys on the last two bytes on text too.
            let old = Spec::new(profile.experts(), 12);
            assert_eq!(
                predicting_after(&old, b"x@. cz").cx2,
                predicting_after(&old, b"x@.1cz").cx2
            );
        }
    }

    /// The weight sets a lane of `spec` chooses after binary noise and then `tail`.
    fn binary_sets(spec: &Spec, tail: &[u8]) -> [usize; GROUPS] {
        let mut history = noise(4096, 7);
        history.extend_from_slice(tail);
        let lane = predicting_after(spec, &history);
        assert!(lane.orders.as_ref().unwrap().binary());
        lane.sets
    }

    #[test]
    fn the_fourth_group_chooses_by_class_pattern_on_text_and_byte_pair_elsewhere() {
        let spec = Spec::new(Profile::Default.experts(), crate::format::VERSION);
        let sets = |history: &[u8]| {
            let lane = predicting_after(&spec, history);
            (lane.sets[3], lane.row(3, 0x5a, 0x5a), lane.mixers.len())
        };
        // On text the classes of the last five bytes, the nearest lowest: `@` 3, `.` 2,
        // space 1, letters 0; keyed as the third group's sets.
        let (set, row, groups) = sets(b"x@. cz");
        assert_eq!(set, (3 << 8 | 2 << 6 | 1 << 4) * PAIR_KEYS);
        assert_eq!(row, set + pair_key(0x5a));
        assert_eq!(groups, 5);
        // Bytes of one class choose alike; the sixth byte back does not choose.
        assert_eq!(sets(b"y#!\nAb").0, set);
        assert_ne!(sets(b"x@.1cz").0, set);
        // On binary data the top 2 bits of the byte three back and the byte two back.
        let binary = |tail: &[u8]| binary_sets(&spec, tail)[3];
        let set = binary(b"@c\x02");
        assert_eq!(set, (1 << 8 | usize::from(b'c')) * PAIR_KEYS);
        // The last byte and the low bits of the byte three back do not choose it.
        assert_eq!(binary(b"@c\x9f"), set);
        assert_eq!(binary(b"Ac\x02"), set);
        assert_ne!(binary(b"@d\x02"), set);
        assert_ne!(binary(b"\x80c\x02"), set);
        // Every set fits its group.
        let rows = spec.group_rows()[3];
        assert_eq!(rows, (1 << 10) * PAIR_KEYS);
        assert!(sets(b"\xff\xff\xff\xff").1 < rows);
        // Before version 13 three groups, `fast` one.
        for (spec, groups) in [
            (Spec::new(Profile::Default.experts(), 12), 3),
            (
                Spec::new(Profile::Fast.experts(), crate::format::VERSION),
                1,
            ),
        ] {
            assert_eq!(spec.group_count(), groups);
            assert_eq!(Lane::new(&spec, 1 << 12).mixers.len(), groups);
        }
    }

    #[test]
    fn the_fifth_group_chooses_by_word_on_text_and_older_bytes_elsewhere() {
        let spec = Spec::new(Profile::Default.experts(), crate::format::VERSION);
        let set = |history: &[u8]| {
            let lane = predicting_after(&spec, history);
            // A row per depth: node 0x5a is at depth 6.
            assert_eq!(lane.row(4, 0x5a, 0x5a), lane.sets[4] + 6);
            lane.sets[4]
        };
        // On text the word being read, whatever came before it; between words the last.
        let word = set(b"the cat sat on the mat");
        assert_eq!(set(b"a dog and a mat"), word);
        assert_ne!(set(b"a dog and a map"), word);
        assert_eq!(set(b"on the mat "), set(b"a mat "));
        assert!(set(b"a mat ") < (1 << FIFTH_BITS) * FIFTH_ROWS);
        // On binary data the top five bits of the bytes three and four back.
        let binary = |tail: &[u8]| binary_sets(&spec, tail)[4];
        let older = binary(b"\x40\x81\x02\x03");
        assert_eq!(binary(b"\x47\x86\xf2\x13"), older);
        assert_ne!(binary(b"\x48\x81\x02\x03"), older);
        assert_ne!(binary(b"\x40\x89\x02\x03"), older);
        // Before version 13, and in `fast`, no fifth group.
        assert!(!Spec::new(Profile::Default.experts(), 12).fifth);
        assert!(!Spec::new(Profile::Fast.experts(), crate::format::VERSION).fifth);
    }

    #[test]
    fn the_bias_input_has_a_column_and_starts_unweighted() {
        let v = crate::format::VERSION;
        let default = Spec::new(Profile::Default.experts(), v);
        let plain = Spec::new(
            Profile::Default.experts() & !crate::format::EXPERT_SPARSE,
            v,
        );
        // `default` shares the bilevel image's last column; experts without the image's
        // columns give it one of its own.
        assert_eq!(default.bias, Some(default.inputs() - 1));
        assert_eq!(default.inputs(), MAX_INPUTS);
        assert_eq!(plain.bias, Some(plain.inputs() - 1));
        assert_eq!(Spec::new(plain.mask, 12).inputs(), plain.inputs() - 1);
        assert_eq!(Spec::new(Profile::Default.experts(), 12).bias, None);
        assert_eq!(Spec::new(Profile::Fast.experts(), v).bias, None);
        for spec in [default, plain] {
            let b = spec.bias.unwrap();
            let mut lane = Lane::new(&spec, 1 << 12);
            lane.prime(b"some text, then the bias");
            lane.reset();
            assert!(lane.inputs[1..].iter().all(|x| x[b] == BIAS_INPUT));
            for m in &lane.mixers {
                assert!((0..m.sets).all(|set| m.row(set)[b] == 0));
                assert!((0..m.sets).all(|set| m.row(set)[0] == WEIGHT_ONE / 6));
            }
            // It learns like any other input.
            lane.prime(b"some text, then the bias");
            assert!(lane.mixers[0]
                .weights
                .iter()
                .skip(lane.mixers[0].start + b)
                .step_by(MAX_INPUTS)
                .any(|&w| w != 0));
        }
    }

    #[test]
    fn two_second_layer_mixers_average_their_stretches() {
        let v = crate::format::VERSION;
        let spec = Spec::new(Profile::Default.experts(), v);
        assert!(spec.final_twin);
        assert!(!Spec::new(Profile::Default.experts(), 12).final_twin);
        assert!(!Spec::new(Profile::Fast.experts(), v).final_twin);
        let mut lane = predicting_after(
            &spec,
            b"the quick brown fox jumps over the lazy dog. the quick brown fox ",
        );
        // The path of `j` (0b0110_1010), the next byte the copy expects.
        let j = usize::from(b'j');
        let mut apart = false;
        for depth in 0..8 {
            let c0 = (1 << depth) | j >> (8 - depth);
            lane.predict_bit(c0);
            let [st, twin] = lane.final_st[c0];
            apart |= st != twin;
            assert_eq!(lane.p_mix[c0], squash((st + twin) >> 1));
        }
        assert!(apart, "trained apart, by other contexts");
    }

    /// The text slots run in `default` and `max` from format version 13, their inputs in
    /// the bilevel image's columns while the data is text, and give those columns back
    /// (cleared at every node) when the data turns binary, where the last runs on the
    /// byte the copy expects.
    #[test]
    fn text_slots_take_the_image_columns_on_text_alone() {
        let v = crate::format::VERSION;
        let default = Spec::new(Profile::Default.experts(), v);
        assert_eq!(default.text_slots, TEXT_SLOTS.len());
        assert_eq!(
            default.kinds[default.kinds.len() - TEXT_SLOTS.len()..],
            TEXT_SLOTS
        );
        assert_eq!(
            Spec::new(Profile::Max.experts(), v).text_slots,
            TEXT_SLOTS.len()
        );
        assert_eq!(Spec::new(Profile::Fast.experts(), v).text_slots, 0);
        assert_eq!(Spec::new(Profile::Default.experts(), 12).text_slots, 0);
        // The gate is no wider for them.
        assert_eq!(default.inputs(), MAX_INPUTS);
        let columns = default.text_columns();
        assert_eq!(
            columns,
            default.inputs() - bitmap::INPUTS..default.bias.unwrap()
        );

        // Every slot has seen the context after a line's end.
        let text: Vec<u8> = (0..40)
            .flat_map(|i| format!("{} sat on the cat\n", i * i).into_bytes())
            .collect();
        let (_, mut lane) = bits_of(&default, &text);
        lane.predict(None, &mut [0; 256]);
        lane.predict_bit(1);
        assert!(
            columns.clone().all(|c| lane.inputs[1][c] != 0),
            "{:?}",
            &lane.inputs[1][columns.clone()]
        );
        // Binary data: the slots stop (once each time the data turns binary), their
        // columns cleared (the counting fields write the first two on their path alone,
        // the last the binary slot node by node); while it lasts the others write
        // nothing, the last its binary context's inputs.
        let (first, last) = (
            columns.start..columns.end - TEXT_SLOTS_ON_BINARY,
            columns.end - TEXT_SLOTS_ON_BINARY..columns.end,
        );
        let mut stops = 0;
        let mut binary_inputs = 0;
        let mut records = noise(256, 7);
        records.extend(noise(64, 8).repeat(12));
        for &b in &records {
            lane.predict(None, &mut [0; 256]);
            let orders = lane.orders.as_ref().unwrap();
            if orders.text_slots_left().is_some() {
                assert_eq!(orders.text_slots_left(), Some(columns.clone()));
                let unwritten = columns.start + Delta::INPUTS..columns.end;
                assert!(lane.inputs[1..]
                    .iter()
                    .all(|x| x[unwritten.clone()].iter().all(|&v| v == 0)));
                stops += 1;
            }
            for j in 0..8 {
                let c0 = (1 << j) | usize::from(b) >> (8 - j);
                let was = lane.inputs[c0];
                lane.predict_bit(c0);
                if lane.orders.as_ref().unwrap().binary() && !lane.bitmap_active {
                    assert_eq!(lane.inputs[c0][first.clone()], was[first.clone()]);
                    binary_inputs += lane.inputs[c0][last.clone()]
                        .iter()
                        .filter(|&&v| v != 0)
                        .count();
                }
            }
            lane.update(b);
        }
        assert!(stops >= 1);
        // Repeated records: the slot has seen its contexts.
        assert!(binary_inputs > 500, "{binary_inputs}");
    }

    /// A lane of `spec` (for blocks of 4 KiB) that has coded `history` as a primer and
    /// predicts the next byte.
    fn predicting_after(spec: &Spec, history: &[u8]) -> Box<Lane> {
        let mut lane = Lane::new(spec, 1 << 12);
        lane.prime(history);
        lane.predict(None, &mut [0; 256]);
        lane
    }

    /// Bits a fresh lane of `spec` spends on `data`, coded bit by bit.
    fn bits_of(spec: &Spec, data: &[u8]) -> (f64, Box<Lane>) {
        let mut lane = Lane::new(spec, data.len());
        let mut out = [0; 256];
        let mut bits = 0.0;
        for &b in data {
            lane.predict(None, &mut out);
            for j in 0..8 {
                let p1 = f64::from(lane.predict_bit((1 << j) | usize::from(b) >> (8 - j)));
                let p = if (b >> (7 - j)) & 1 == 1 {
                    p1
                } else {
                    65536.0 - p1
                };
                bits -= (p / 65536.0).log2();
            }
            lane.update(b);
        }
        (bits, lane)
    }

    /// A bilevel page, 256 pixels wide: black discs on white.
    fn page(rows: usize) -> Vec<u8> {
        let mut state = 1u64;
        let mut next = move |n: u64| {
            // Knuth's MMIX generator.
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % n) as i64
        };
        let discs: Vec<_> = (0..rows / 4)
            .map(|_| (next(256), next(rows as u64), next(9) + 2))
            .collect();
        let mut data = vec![0u8; 32 * rows];
        for (y, row) in data.chunks_mut(32).enumerate() {
            for x in 0..256 {
                let black = discs
                    .iter()
                    .any(|&(cx, cy, r)| (x - cx).pow(2) + (y as i64 - cy).pow(2) <= r * r);
                row[x as usize / 8] |= u8::from(black) << (7 - x % 8);
            }
        }
        data
    }

    #[test]
    fn a_bilevel_page_is_coded_by_its_pixels() {
        let spec = Spec::new(Profile::Default.experts(), crate::format::VERSION);
        let data = page(400);
        let (bits, lane) = bits_of(&spec, &data);
        let b = lane.bitmap.as_ref().unwrap();
        assert!(b.active());
        assert!((0..256).any(|c0| usize::from(lane.keys[c0]) != c0));
        let mut without = spec.clone();
        without.bitmap = false;
        let (bits_without, lane) = bits_of(&without, &data);
        assert!(lane.bitmap.is_none());
        eprintln!("{bits:.0} bits with the templates, {bits_without:.0} without");
        assert!(
            bits < 0.9 * bits_without,
            "{bits:.0} bits, {bits_without:.0} without"
        );
        // Text never makes one, and the nodes keep their own rows.
        let (_, lane) = bits_of(
            &spec,
            &b"the quick brown fox jumps over the lazy dog. ".repeat(40),
        );
        assert!(lane.bitmap.is_none());
        assert!((0..256).all(|c0| usize::from(lane.keys[c0]) == c0));
    }

    #[test]
    fn even_odds_take_the_shortcut_to_the_same_inputs() {
        for w in [EVEN, [7; 256], [u32::MAX >> 9; 256]] {
            // Filled with a value neither writes, so a node left out shows.
            let mut short = Box::new([[i32::MIN; MAX_INPUTS]; 256]);
            let mut divided = Box::new([[i32::MIN; MAX_INPUTS]; 256]);
            neural_inputs(&w, &mut short, 3);
            neural_inputs_divided(&w, &mut divided, 3);
            assert_eq!(short, divided);
            assert!(short[1..].iter().all(|row| row[3] == stretch(2048)));
        }
    }
}
