//! The format's constants: versions, flags, sizes, predictor ids and expert-mask bits.
//!
//! A leaf: it depends on nothing else in the crate, so the container (which frames streams)
//! and the predictors (which compute them) both read their numbers from here instead of from
//! each other. `FORMAT.md` says what each one means on the wire.

/// First four bytes of every stream.
pub const MAGIC: [u8; 4] = [0x89, b'N', b'C', b'\n'];
/// Last four bytes of every complete stream: lets a seeking reader find the index.
pub const TAIL_MAGIC: [u8; 4] = *b"NCix";
/// The format version this build writes. It also reads older versions where it can still
/// reproduce their arithmetic: version 2 of the mixing predictor, version 1 of the others
/// (see `FORMAT.md`, "Versioning").
pub const VERSION: u16 = 13;
/// The oldest format version this build reads (for some predictor: see `Header::validate`).
pub const OLDEST_READABLE_VERSION: u16 = 1;

/// Header flag (format version 7 on, mixing predictor only): every block's lanes first code
/// the embedded primer (`mixer::PRIMER`) without output, so blocks start from a
/// state that knows common text, code and markup.
pub const FLAG_PRIMED: u16 = 1;
/// The first version whose mixing predictor codes a byte as 8 binary decisions.
pub const BITS_VERSION: u16 = 9;
/// The first version whose coded blocks hold at most [`MAX_RATIO`] bytes per payload byte.
pub const RATIO_VERSION: u16 = 10;
/// The most bytes a coded block may hold per byte of its payload (version [`RATIO_VERSION`]
/// on): the encoder pads the range code of a block that would code smaller with zero bytes.
/// It bounds the work a few bytes of input can ask of a decoder (a 4 KB stream decodes to at
/// most 512 KiB) at the price of a floor of 1/16 bit per byte, which only runs and sparse
/// data come near.
pub const MAX_RATIO: u32 = 128;
/// The first version with light blocks (`BlockKind::Light`, coded by `light`), and with
/// coded blocks bound to [`CODED_RATIO`] instead of [`MAX_RATIO`].
pub const LIGHT_VERSION: u16 = 12;
/// Version [`LIGHT_VERSION`] on: the most bytes a coded block may hold per payload byte.
/// A 4 KB stream then asks at most 256 KiB of the full predictor; a block that would code
/// smaller goes to the light coder, or is padded.
pub const CODED_RATIO: u32 = 64;
/// The most bytes a light block may hold per payload byte: the light coder decodes over
/// 10 MB/s, so a 4 KB stream asks at most 8 MiB of it (under a second), while a run of
/// one byte codes in 1/256 bit per byte.
pub const LIGHT_RATIO: u32 = 2048;
/// The first version with plain blocks ([`FLAG_NO_NEURAL`]), whose coded blocks that
/// run the neural expert hold at most [`NEURAL_RATIO`] bytes per payload byte, and the
/// others at most [`MIXING_RATIO`].
pub const PLAIN_VERSION: u16 = 13;
/// Version [`PLAIN_VERSION`] on: the most bytes a coded block that does not run the
/// neural expert (a plain block too) may hold per payload byte, [`MAX_RATIO`] again:
/// spreadsheets' cells code beyond 64 bytes per payload byte, and a 4 KB stream asks at
/// most 512 KiB of the mixing predictor (seconds, not minutes).
pub const MIXING_RATIO: u32 = MAX_RATIO;
/// Version [`PLAIN_VERSION`] on: the most bytes a coded block that runs the neural expert
/// may hold per payload byte. The neural expert decodes about 50 KB/s on one core, so a
/// 4 KB stream asks at most 48 KiB of it (about a second); a mixing block that would code
/// smaller is coded plain ([`FLAG_NO_NEURAL`], bound by [`MIXING_RATIO`]), light, or padded.
pub const NEURAL_RATIO: u32 = 12;
/// The first version whose mixing predictor gives the neural expert's input the unigram
/// slot's column in the blocks that run it (the slot sits those blocks out), instead of a
/// column of its own beside a predictor without the unigram slot: plain blocks code as
/// the expert set without the neural expert does, from the same primed state.
pub const UNIGRAM_NEURAL_VERSION: u16 = 13;
/// The first version whose mixing predictor's sparse slots key on text structure while the
/// data is text (`experts::orders`, `Structure`).
pub const STRUCTURE_VERSION: u16 = 13;
/// The first version whose primed mixing lanes prime once, in the smallest tables, and
/// grow them to a block's size (`FORMAT.md`, "Priming"): a stream primes once whatever its
/// blocks' lengths.
pub const GROWN_VERSION: u16 = 13;
/// The first version whose neural expert keeps its online output layer's weights only for
/// the byte values that have occurred in the block (`FORMAT.md`, "Predictor 2").
pub const SEEN_COLUMNS_VERSION: u16 = 11;
/// The first version whose neural expert sums the slope of its logits' scale in eight
/// running sums, as it sums the softmax's numerators (`FORMAT.md`, "Predictor 2").
pub const SUMMED_SLOPE_VERSION: u16 = 13;
/// The first version whose primed mixing lanes start blocks through the x86 filter
/// ([`FLAG_X86`]) from the x86 primer's state instead of the text primer's (`FORMAT.md`,
/// "Primer").
pub const X86_PRIMER_VERSION: u16 = 13;
/// The first version that defines [`FLAG_PRIMED`].
pub const PRIMED_VERSION: u16 = 7;
/// The first version whose primer is the longer one (`onnx-models/nc-primer.bin`, 445,541
/// bytes: the same files' slices three times as long, the prose's five times, and four more
/// books); versions [`PRIMED_VERSION`] to 12 prime with `nc-primer-v7.bin` (96,519 bytes).
pub const LONG_PRIMER_VERSION: u16 = 13;
/// The most of a primer's length that a primed lane's table sizes count: version 7's
/// primer's, so the longer primer of [`LONG_PRIMER_VERSION`] leaves every block's tables
/// and memory as they were.
pub const TABLE_PRIMER_LEN: usize = 96_519;

/// The first bytes of every header, which say how long it is: magic, version, flags,
/// block size, predictor configuration and expert set (`Header::size_from_prefix`).
pub const HEADER_PREFIX_LEN: usize = 24;
/// The header without a model identity (format version 6 on, no neural expert).
pub const MIN_HEADER_LEN: usize = 28;
/// The header with a model identity, and every header before format version 6.
pub const MAX_HEADER_LEN: usize = 76;
/// The first version whose header leaves out an empty model identity.
pub const COMPACT_HEADER_VERSION: u16 = 6;
/// Size of a block header.
pub const BLOCK_HEADER_LEN: usize = 16;
/// Size of one trailer index entry.
pub const INDEX_ENTRY_LEN: usize = 8;
/// Size of the fixed tail that closes the trailer (format version 6 on).
pub const TAIL_LEN: usize = 16;
/// Size of the tail before format version 6, which also held the total length.
pub const LEGACY_TAIL_LEN: usize = 28;

/// Smallest checkpoint interval.
pub const MIN_BLOCK_SIZE: u32 = 256;
/// Largest checkpoint interval: also the most a reader ever allocates for one block.
pub const MAX_BLOCK_SIZE: u32 = 64 << 20;
/// Most blocks one stream can hold (the trailer length must fit the END block's `u32`).
pub const MAX_BLOCKS: u64 = (u32::MAX as u64 - TAIL_LEN as u64) / INDEX_ENTRY_LEN as u64;

/// Identifies the predictor a stream was coded with.
pub mod predictor_id {
    /// Adaptive context statistics alone (`experts::ContextStats`).
    pub const CONTEXT_STATS: u16 = 1;
    /// The neural expert alone (`experts::NeuralExpert`).
    pub const NEURAL: u16 = 2;
    /// Experts mixed by the gate (`mixer::Mix`); `expert_mask` says which.
    pub const MIX: u16 = 3;
}

/// Bit of `expert_mask`: adaptive context statistics.
pub const EXPERT_CONTEXT_STATS: u32 = 1 << 0;
/// Bit of `expert_mask`: the neural expert.
pub const EXPERT_NEURAL: u32 = 1 << 1;

/// Temperature 1.0 in the header's Q8.8 fixed point.
pub const TEMPERATURE_ONE: u16 = 256;

/// Bit of `expert_mask`: context statistics of orders 1-4 and 6.
pub const EXPERT_ORDERS: u32 = 1 << 2;
/// Bit of `expert_mask`: word and column contexts.
pub const EXPERT_TEXT: u32 = 1 << 3;
/// Bit of `expert_mask`: the long-copy expert.
pub const EXPERT_LONG_COPY: u32 = 1 << 4;
/// Bit of `expert_mask`: the short-copy expert.
pub const EXPERT_SHORT_COPY: u32 = 1 << 5;
/// Bit of `expert_mask`: sparse contexts (skipping bytes), for binary data.
pub const EXPERT_SPARSE: u32 = 1 << 7;
/// Bit of `expert_mask`: the retrieval expert (similar earlier contexts).
pub const EXPERT_RETRIEVAL: u32 = 1 << 6;
/// Bit of `expert_mask`: the neural expert as a mixer input ([`EXPERT_NEURAL`]).
pub const EXPERT_NEURAL_INPUT: u32 = EXPERT_NEURAL;
/// Every expert bit the mixing predictor knows.
pub const MIX_EXPERTS: u32 = EXPERT_ORDERS
    | EXPERT_TEXT
    | EXPERT_LONG_COPY
    | EXPERT_SHORT_COPY
    | EXPERT_RETRIEVAL
    | EXPERT_SPARSE
    | EXPERT_NEURAL_INPUT;

/// The expert sets of the mixing predictor's profiles (`mixer::Profile`).
pub mod profile_mask {
    use super::*;
    /// `fast`: orders, word and column contexts, the long copy (format version 9 on).
    pub const FAST: u32 = EXPERT_ORDERS | EXPERT_TEXT | EXPERT_LONG_COPY;
    /// `fast` before format version 9: orders and the long copy.
    pub const FAST_BEFORE_9: u32 = EXPERT_ORDERS | EXPERT_LONG_COPY;
    /// `default`: every context, copy and retrieval expert; no neural model.
    pub const DEFAULT: u32 = EXPERT_ORDERS
        | EXPERT_TEXT
        | EXPERT_SPARSE
        | EXPERT_LONG_COPY
        | EXPERT_SHORT_COPY
        | EXPERT_RETRIEVAL;
    /// `max`: everything, the neural expert included.
    pub const MAX: u32 = MIX_EXPERTS;
}

/// Block header flag: the writer flushed after this block, so a reader must decode what it
/// holds instead of waiting for more blocks to fill its lanes.
pub const FLAG_SYNC: u8 = 1;
/// Block header flag (format version [`PLAIN_VERSION`] on, coded blocks of a mixing
/// predictor with the neural expert only): the block is *plain*, coded by the expert set
/// without the neural expert (the unigram context in its place, as `default` codes it),
/// so it is bound by [`MIXING_RATIO`] instead of [`NEURAL_RATIO`]. The writer codes every
/// block both ways and keeps the plain code where it is shorter once padded.
pub const FLAG_NO_NEURAL: u8 = 2;
/// Block header flag (format version [`FILTER_VERSION`] on, coded and light blocks): the
/// block's bytes were coded after the x86 filter (`filter`), which the reader undoes
/// after decoding them. The writer filters blocks that look like x86 code.
pub const FLAG_X86: u8 = 4;
/// The first version with [`FLAG_X86`].
pub const FILTER_VERSION: u16 = 13;
/// Block header flag (format version [`DICT_VERSION`] on, the first block of a primed
/// mixing predictor, coded and not plain): the block is the stream's *dictionary*. The
/// lane state it ends in is where the blocks flagged [`FLAG_FROM_DICT`] start, instead of the primer's state, so later checkpoints know the
/// stream's own vocabulary and layout and still decode alone (plus this block). The
/// writer cuts it at [`DICT_LEN`] bytes when it knows that more blocks follow.
pub const FLAG_DICT: u8 = 8;
/// Block header flag (format version [`DICT_VERSION`] on, coded blocks after a
/// [`FLAG_DICT`] block): the block starts from the dictionary's state.
pub const FLAG_FROM_DICT: u8 = 16;
/// The first version with [`FLAG_DICT`] and [`FLAG_FROM_DICT`].
pub const DICT_VERSION: u16 = 13;
/// The most bytes a dictionary block holds: what the writer cuts it at. It is coded in the
/// primed state's context table (`2^20` slots), so its state is a primed state in size;
/// longer ones gained less there (`docs/tuning.md`, "A stream's dictionary").
pub const DICT_LEN: u32 = 160 << 10;
