//! Experts: everything that predicts the next byte, behind one batched seam.
//!
//! A [`Predictor`] drives many *lanes* at once: each lane is one checkpoint block being coded,
//! and the engine steps all lanes in lockstep, one byte per lane per step. Batching lanes is
//! what lets a neural expert answer many blocks with a single model call.

pub(crate) mod bitmap;
pub mod context_stats;
pub(crate) mod copy;
pub(crate) mod delta;
#[cfg(feature = "neural")]
mod matvec;
#[cfg_attr(not(feature = "neural"), path = "neural_off.rs")]
pub mod neural;
pub(crate) mod orders;
pub(crate) mod retrieval;
pub(crate) mod x86;

pub use context_stats::ContextStats;
pub use neural::{NeuralExpert, NeuralModel};

use crate::error::Error;

/// A lane state that later blocks of a stream start from ([`Predictor::dictionary`]): what
/// a predictor left at the end of a dictionary block
/// ([`FLAG_DICT`](crate::format::FLAG_DICT)). Opaque; only the predictor that made it reads
/// it, and it is shared, never changed.
#[derive(Clone)]
pub struct Dictionary(pub(crate) std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dictionary")
    }
}

/// Unnormalised, non-negative integer weights over the 256 possible next bytes; the
/// [`Quantizer`](crate::quantizer::Quantizer) turns them into a frequency table.
pub type Weights = [u32; 256];

/// Predicts the next byte of many independent lanes at once.
///
/// The contract that keeps encoder and decoder in step: for the same sequence of calls the
/// same weights come out, bit for bit, on every machine, whatever the lane count or the lane
/// a block is placed in.
pub trait Predictor: Send {
    /// Number of lanes this predictor drives (valid lane indices are `0..lanes()`).
    fn lanes(&self) -> usize;

    /// Forgets a lane's history: the state at the start of every checkpoint block, whose
    /// length is `block_len` (a predictor may size its tables by it: encoder and decoder
    /// both know it before the block's first byte).
    fn reset_lane(&mut self, lane: usize, block_len: usize);

    /// [`Predictor::reset_lane`] for a *plain* block (a block header's
    /// [`FLAG_NO_NEURAL`](crate::format::FLAG_NO_NEURAL)): the lane codes it with the
    /// neural expert left out, as the expert set without it codes it. False, with the
    /// lane left as it was, for a predictor without a neural expert to leave out.
    fn reset_lane_plain(&mut self, lane: usize, block_len: usize) -> bool {
        let _ = (lane, block_len);
        false
    }

    /// Says, before a lane's reset, that its next block is x86 machine code through the
    /// filter (a block header's [`FLAG_X86`](crate::format::FLAG_X86)), so a predictor may
    /// start it from another state and model its instructions. The reset consumes it. The
    /// default ignores it.
    fn set_lane_x86(&mut self, lane: usize) {
        let _ = lane;
    }

    /// Says, before a lane's reset, that its next block starts from the dictionary set by
    /// [`Predictor::set_dictionary`] (a block header's
    /// [`FLAG_FROM_DICT`](crate::format::FLAG_FROM_DICT)) instead of the usual state. The
    /// reset consumes it. The default ignores it: a predictor without dictionaries never
    /// gets one.
    fn set_lane_from_dict(&mut self, lane: usize) {
        let _ = lane;
    }

    /// Says, before a lane's reset, that its next block is to be the stream's dictionary
    /// ([`FLAG_DICT`](crate::format::FLAG_DICT)): [`Predictor::dictionary`] gives its end
    /// state. The reset consumes it. The default ignores it.
    fn set_lane_makes_dict(&mut self, lane: usize) {
        let _ = lane;
    }

    /// The state lane `lane` ended its last block in, where that block was reset after
    /// [`Predictor::set_lane_makes_dict`], for later blocks to start from; `None` for a
    /// predictor without dictionaries (the default).
    fn dictionary(&self, lane: usize) -> Option<Dictionary> {
        let _ = lane;
        None
    }

    /// Sets the dictionary (from [`Predictor::dictionary`] of a predictor of the same kind
    /// and stream), or clears it with `None`.
    fn set_dictionary(&mut self, dictionary: Option<Dictionary>) {
        let _ = dictionary;
    }

    /// Writes the next-byte weights of each lane in `lanes` into the matching entry of `out`
    /// (`out.len() >= lanes.len()`).
    ///
    /// # Errors
    /// Only when a model runtime fails; the stream cannot go on.
    fn predict(&mut self, lanes: &[usize], out: &mut [Weights]) -> Result<(), Error>;

    /// Feeds each lane in `lanes` the byte that actually came, `bytes[i]` for `lanes[i]`.
    /// Always follows a `predict` over the same lanes.
    fn update(&mut self, lanes: &[usize], bytes: &[u8]);

    /// Whether a byte is coded as two symbols, its high nibble and then its low nibble
    /// (false: as one symbol of 256). A predictor that answers true writes only the 16
    /// weights of the high nibble, in `out[i][..16]`, from [`Predictor::predict`], and
    /// gives the low nibble's from [`Predictor::predict_low`] once the high nibble is known:
    /// the same distribution over bytes, but the low nibbles of the 15 other high nibbles
    /// are never computed.
    fn codes_nibbles(&self) -> bool {
        false
    }

    /// For a predictor that [`codes_nibbles`](Predictor::codes_nibbles): the 16 weights of
    /// lane `lane`'s low nibble given that its high nibble is `high`. Called once per lane
    /// and byte, between that lane's `predict` and `update`. The default (never called for
    /// a predictor that codes whole bytes) is uniform.
    fn predict_low(&mut self, lane: usize, high: u8, out: &mut [u32; 16]) {
        let _ = (lane, high);
        out.fill(1);
    }

    /// Whether a byte is coded as 8 binary decisions, from its top bit down (format version
    /// 9's mixing predictor). A predictor that answers true is asked, after
    /// [`Predictor::predict`] (whose `out` it may leave alone), for each decision in turn by
    /// [`Predictor::predict_bit`]. It takes precedence over
    /// [`codes_nibbles`](Predictor::codes_nibbles).
    fn codes_bits(&self) -> bool {
        false
    }

    /// For a predictor that [`codes_bits`](Predictor::codes_bits): the probability, in
    /// `1..2^16` out of `2^16`, that the next bit of lane `lane`'s byte is 1, when the bits
    /// before it in the byte make up `c0` (`1`, then `c0 * 2 + bit`: the node of the byte's
    /// bit tree). Called for `c0 = 1` and then the node each decoded bit leads to, 8 times
    /// per lane and byte between that lane's `predict` and `update`.
    fn predict_bit(&mut self, lane: usize, c0: usize) -> u32 {
        let _ = (lane, c0);
        1 << 15
    }
}
