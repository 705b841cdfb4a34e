//! Options for writers and readers, as plain data with chained setters.

use std::sync::Arc;

use crate::container::{
    self, Header, EXPERT_CONTEXT_STATS, EXPERT_NEURAL, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE,
    TEMPERATURE_ONE, VERSION,
};
use crate::error::Error;
use crate::experts::{context_stats, NeuralModel};
use crate::mixer::Profile;

/// Which predictor codes the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PredictorKind {
    /// Context statistics, copy experts and (in [`Profile::Max`]) the neural expert, mixed
    /// per bit by the adaptive gate of [`crate::mixer`]: the default.
    Mix(Profile),
    /// The mixing predictor with an explicit expert set (a mask of the
    /// [`crate::mixer`]`::EXPERT_*` bits), for experiments such as ablations.
    MixExperts(u32),
    /// Blended byte-level context statistics (orders 0 to `context_order`) alone: the
    /// simplest predictor, kept for its speed and for streams written with it.
    ContextStats,
    /// The neural byte model alone ([`Config::model`], or the embedded default).
    Neural,
}

impl Default for PredictorKind {
    fn default() -> Self {
        PredictorKind::Mix(Profile::Default)
    }
}

impl std::str::FromStr for PredictorKind {
    type Err = Error;

    /// Parses the names the command line uses: `fast`, `default`, `max` (profiles of the
    /// mixing predictor), `ctx` and `neural`.
    fn from_str(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "fast" => PredictorKind::Mix(Profile::Fast),
            "default" | "mix" => PredictorKind::Mix(Profile::Default),
            "max" => PredictorKind::Mix(Profile::Max),
            "ctx" => PredictorKind::ContextStats,
            "neural" => PredictorKind::Neural,
            other => {
                return Err(Error::InvalidConfig {
                    what: format!("unknown predictor '{other}' (fast, default, max, ctx, neural)"),
                })
            }
        })
    }
}

impl PredictorKind {
    /// True when the predictor runs the neural model.
    pub fn uses_model(self) -> bool {
        match self {
            PredictorKind::Neural => true,
            PredictorKind::Mix(p) => p.experts() & crate::mixer::EXPERT_NEURAL_INPUT != 0,
            PredictorKind::MixExperts(mask) => mask & crate::mixer::EXPERT_NEURAL_INPUT != 0,
            PredictorKind::ContextStats => false,
        }
    }
}

/// Default checkpoint interval, 1 MiB: chosen by measurement (see the README's benchmark
/// section). Smaller intervals seek finer but pay for predictors restarting cold.
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
/// Default checkpoint interval of an input of known length coded by one lane
/// ([`Config::size_hint`]): 4 MiB, where blocks of the default size would only cost ratio.
pub const SINGLE_LANE_BLOCK_SIZE: u32 = 4 << 20;
/// Default quantizer precision (frequency tables total `2^16`).
pub const DEFAULT_QUANT_BITS: u8 = 16;
/// Default number of lanes (blocks coded side by side) for predictors with a neural model,
/// whose calls amortise over lanes; model-free predictors default to one lane per thread.
pub const DEFAULT_LANES: usize = 8;

/// Default memory limit of a writer or reader, 1 GiB: like xz's `--memlimit`, a bound a
/// stream cannot make the decoder exceed. Lanes shrink to fit it; a stream that needs more
/// with one lane is refused before anything large is allocated.
pub const DEFAULT_MEMLIMIT: u64 = 1 << 30;

/// Most lanes one coder may drive.
pub const MAX_LANES: usize = 256;

/// The lane count: `lanes` when set, else the default for a stream that does (`uses_model`)
/// or does not run a neural model over `threads` threads. A reader passes what the stream's
/// header says, not [`Config::predictor`], which only says how to compress.
pub(crate) fn lanes_for(lanes: Option<usize>, threads: usize, uses_model: bool) -> usize {
    lanes.unwrap_or(if uses_model {
        DEFAULT_LANES
    } else {
        threads.clamp(1, MAX_LANES)
    })
}

/// How a stream is coded (stored in its header) and how the work is run (not stored:
/// any lane or thread count decodes any stream to the same bytes). The lane count
/// touches the coding in one place: with one lane, an input of known length and no
/// [`Config::block_size`], blocks are longer ([`Config::size_hint`]).
///
/// ```
/// let config = nc_codec::Config::new().block_size(256 * 1024).threads(2);
/// assert_eq!(config.get_block_size(), 256 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    predictor: PredictorKind,
    model: Option<Arc<NeuralModel>>,
    temperature: u16,
    block_size: u32,
    quant_bits: u8,
    context_order: u8,
    /// `None`: chosen from the predictor and thread count.
    lanes: Option<usize>,
    threads: usize,
    primer: bool,
    memlimit: u64,
    /// The input's length, when the caller knows it.
    size_hint: Option<u64>,
    /// [`Config::block_size`] was called: the block size is the caller's, not a default.
    block_size_given: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// The defaults: 1 MiB blocks, the mixing predictor's default profile, 16-bit quantizer,
    /// one thread per available core, one lane per thread (8 with a neural model).
    pub fn new() -> Self {
        Config {
            predictor: PredictorKind::default(),
            model: None,
            temperature: TEMPERATURE_ONE,
            block_size: DEFAULT_BLOCK_SIZE,
            quant_bits: DEFAULT_QUANT_BITS,
            context_order: context_stats::DEFAULT_ORDER,
            lanes: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            primer: true,
            memlimit: DEFAULT_MEMLIMIT,
            size_hint: None,
            block_size_given: false,
        }
    }

    /// Chooses the predictor (stored in the header; the decoder follows it).
    pub fn predictor(mut self, predictor: PredictorKind) -> Self {
        self.predictor = predictor;
        self
    }

    /// Sets the neural model to code with, and to decode streams that name it; without one
    /// the embedded default model is used.
    pub fn model(mut self, model: Arc<NeuralModel>) -> Self {
        self.model = Some(model);
        self
    }

    /// Sets the neural expert's softmax temperature in Q8.8 (256 = 1.0, `1..=65535`).
    pub fn temperature(mut self, temperature_q8: u16) -> Self {
        self.temperature = temperature_q8;
        self
    }

    /// Whether the mixing predictor starts every block from the embedded primer's state
    /// (default `true`; stored in the header). Small inputs gain most: they start knowing
    /// common text, code and markup. Priming costs about a second (the primer is ~183 KB),
    /// once per process and table size while a writer or reader holds it (the states of
    /// small tables are kept, so many small streams prime once, and
    /// [`set_primed_cache_dir`](crate::set_primed_cache_dir) keeps them on disk); `false`
    /// saves it on tiny inputs. The other predictors ignore it.
    pub fn primer(mut self, primer: bool) -> Self {
        self.primer = primer;
        self
    }

    /// Whether the mixing predictor uses the primer ([`Config::primer`]).
    pub fn get_primer(&self) -> bool {
        self.primer
    }

    /// The predictor.
    pub fn get_predictor(&self) -> PredictorKind {
        self.predictor
    }

    /// The neural model given with [`Config::model`], if any.
    pub fn get_model(&self) -> Option<&Arc<NeuralModel>> {
        self.model.as_ref()
    }

    /// Sets the checkpoint interval: uncompressed bytes per independently decodable block
    /// (`256..=64 MiB`).
    pub fn block_size(mut self, bytes: u32) -> Self {
        self.block_size = bytes;
        self.block_size_given = true;
        self
    }

    /// Sets the checkpoint interval as a default rather than a requirement (a level's
    /// block size, where the caller asked for none): like [`Config::block_size`], except
    /// that an input of known length coded by one lane may get longer blocks
    /// ([`Config::size_hint`]).
    pub fn default_block_size(mut self, bytes: u32) -> Self {
        self.block_size = bytes;
        self.block_size_given = false;
        self
    }

    /// Tells the writer how long the input is, when that is known (a file's length), as
    /// zstd's pledged source size does. The writer then lengthens its blocks, up to 1.5
    /// times the block size, where the input would otherwise end in a block shorter than
    /// half of one: a short last block codes poorly (little context to learn from, a
    /// priming of its own). With one lane, or one thread and the lane count left at its
    /// default, and the block size left at its default, blocks grow to
    /// [`SINGLE_LANE_BLOCK_SIZE`]: coded one after another, more blocks buy no speed (a
    /// neural model's lanes share its weight reads, a few percent) and cost ratio (xz
    /// `-T1` writes one block). The
    /// hint only chooses the block size the header states; a stream holds whatever is
    /// written, whatever the hint said.
    pub fn size_hint(mut self, len: u64) -> Self {
        self.size_hint = Some(len);
        self
    }

    /// The block size the header states: [`Config::block_size`], lengthened by
    /// [`Config::size_hint`] so the input ends in no short block.
    fn stated_block_size(&self) -> u32 {
        let single = !self.block_size_given
            && (self.get_lanes() == 1 || (self.lanes.is_none() && self.threads == 1));
        let size = match self.size_hint {
            Some(_) if single => u64::from(SINGLE_LANE_BLOCK_SIZE.max(self.block_size)),
            _ => u64::from(self.block_size),
        };
        let valid = (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&self.block_size);
        match self.size_hint {
            // One block of the input's length, no shorter than the default.
            Some(len) if single && len <= size => len.max(u64::from(self.block_size)) as u32,
            Some(len) if valid && len > size && len % size < size / 2 && len % size != 0 => {
                // The short tail shared out over the full blocks: at most half a block each.
                let blocks = len / size;
                len.div_ceil(blocks).min(u64::from(MAX_BLOCK_SIZE)) as u32
            }
            _ => size as u32,
        }
    }

    /// Sets the quantizer precision in bits (`10..=16`).
    pub fn quant_bits(mut self, bits: u8) -> Self {
        self.quant_bits = bits;
        self
    }

    /// Sets the highest order of the context statistics (`1..=3`).
    pub fn context_order(mut self, order: u8) -> Self {
        self.context_order = order;
        self
    }

    /// Sets how many blocks are coded side by side (`1..=256`). Memory grows with it:
    /// each lane holds one block of input and output and its predictor state. Unset, it is
    /// one lane per thread, or [`DEFAULT_LANES`] for a predictor with the neural model; a
    /// reader applies that to the stream it reads (its header says whether it has a model).
    pub fn lanes(mut self, lanes: usize) -> Self {
        self.lanes = Some(lanes);
        self
    }

    /// Sets how many threads share the lanes (`>= 1`; more than `lanes` are not used).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Sets the memory limit in bytes (default [`DEFAULT_MEMLIMIT`]): a writer or reader
    /// runs fewer lanes than asked where that many would need more, and refuses a stream
    /// that needs more with one lane (`Error::MemoryLimit`, `io::ErrorKind::OutOfMemory`)
    /// before allocating it. The need is an upper bound computed from the stream header
    /// (predictor, block size): see the README's memory table.
    pub fn memlimit(mut self, bytes: u64) -> Self {
        self.memlimit = bytes;
        self
    }

    /// The memory limit.
    pub fn get_memlimit(&self) -> u64 {
        self.memlimit
    }

    /// The checkpoint interval.
    pub fn get_block_size(&self) -> u32 {
        self.block_size
    }

    /// The quantizer precision.
    pub fn get_quant_bits(&self) -> u8 {
        self.quant_bits
    }

    /// The context statistics' order.
    pub fn get_context_order(&self) -> u8 {
        self.context_order
    }

    /// The lane count: as set, or by default one per thread (8 with a neural model).
    pub fn get_lanes(&self) -> usize {
        lanes_for(self.lanes, self.threads, self.predictor.uses_model())
    }

    /// The lane count as set, `None` for the default.
    pub(crate) fn lanes_setting(&self) -> Option<usize> {
        self.lanes
    }

    /// The thread count.
    pub fn get_threads(&self) -> usize {
        self.threads
    }

    /// Checks the run-time settings (lanes, threads).
    pub(crate) fn validate_runtime(&self) -> Result<(), Error> {
        if !(1..=MAX_LANES).contains(&self.get_lanes()) {
            return Err(Error::InvalidConfig {
                what: format!("lanes {} outside 1..={MAX_LANES}", self.get_lanes()),
            });
        }
        if self.threads == 0 {
            return Err(Error::InvalidConfig {
                what: "threads must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The stream header this configuration writes.
    ///
    /// # Errors
    /// `InvalidConfig` when a value is out of range.
    pub fn header(&self) -> Result<Header, Error> {
        let mut header = Header {
            version: VERSION,
            flags: 0,
            block_size: self.stated_block_size(),
            predictor: container::predictor_id::CONTEXT_STATS,
            quant_bits: self.quant_bits,
            context_order: self.context_order,
            temperature: TEMPERATURE_ONE,
            expert_mask: EXPERT_CONTEXT_STATS,
            model_name: [0; 16],
            model_fingerprint: [0; 32],
        };
        if let PredictorKind::Mix(profile) = self.predictor {
            header.predictor = container::predictor_id::MIX;
            header.context_order = 0;
            header.expert_mask = profile.experts();
        }
        if let PredictorKind::MixExperts(mask) = self.predictor {
            header.predictor = container::predictor_id::MIX;
            header.context_order = 0;
            header.expert_mask = mask;
        }
        if header.predictor == container::predictor_id::MIX && self.primer {
            header.flags = container::FLAG_PRIMED;
        }
        if self.predictor == PredictorKind::Neural {
            header.predictor = container::predictor_id::NEURAL;
            header.context_order = 0;
            header.expert_mask = EXPERT_NEURAL;
        }
        if self.predictor.uses_model() {
            let model = match &self.model {
                Some(m) => m.clone(),
                None => NeuralModel::default_model()?,
            };
            header.temperature = self.temperature;
            header.model_name = model.name();
            header.model_fingerprint = model.fingerprint();
        }
        header.validate()?;
        self.validate_runtime()?;
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With one lane (or one thread) and no block size asked for, a known length gets
    /// blocks of up to 4 MiB (one block where it fits), still without a short last one.
    #[test]
    fn one_lane_codes_a_known_length_in_longer_blocks() {
        let stated = |config: Config, len: u64| config.size_hint(len).header().unwrap().block_size;
        let one = || Config::new().threads(1);
        let mib = 1u32 << 20;
        assert_eq!(stated(one(), 1000), mib, "never below the default");
        assert_eq!(stated(one(), 3_000_000), 3_000_000, "one block");
        assert_eq!(stated(one(), 10 * u64::from(mib)), 4 * mib);
        assert_eq!(
            stated(one(), 9 * u64::from(mib)),
            9 * mib / 2,
            "no short tail"
        );
        // Two lanes code two blocks side by side; a block size asked for is kept.
        assert_eq!(stated(Config::new().threads(2), 3_000_000), mib);
        // A neural model's lanes run one after another on one thread, unless asked for.
        let max = || one().predictor(PredictorKind::Mix(crate::Profile::Max));
        assert_eq!(stated(max(), 3_000_000), 3_000_000);
        assert_eq!(stated(max().lanes(8), 3_000_000), mib);
        assert_eq!(stated(max().threads(2), 3_000_000), mib);
        assert_eq!(stated(one().block_size(mib), 3_000_000), mib);
        assert_eq!(stated(one().default_block_size(mib), 3_000_000), 3_000_000);
        // Without a length, the default.
        assert_eq!(one().header().unwrap().block_size, mib);
    }

    /// A known length lengthens blocks only where the input would end in a block shorter
    /// than half of one, and then by no more than half a block.
    #[test]
    fn a_size_hint_shares_a_short_tail_out() {
        let size = 1 << 20;
        let stated = |len: u64| {
            Config::new()
                .block_size(size)
                .size_hint(len)
                .header()
                .unwrap()
                .block_size
        };
        assert_eq!(stated(1000), size);
        assert_eq!(stated(u64::from(size)), size);
        assert_eq!(stated(u64::from(size) + 1), size + 1);
        assert_eq!(stated(1_050_197), 1_050_197);
        assert_eq!(stated(u64::from(size) * 3 / 2 - 1), size * 3 / 2 - 1);
        assert_eq!(stated(u64::from(size) * 3 / 2), size);
        assert_eq!(stated(1_716_576), size);
        assert_eq!(stated(10 * u64::from(size) + 4), size + 1);
        assert_eq!(stated(12 * u64::from(size)), size);
        for len in [5_000_000u64, 3_300_000, 2_000_001] {
            let block = u64::from(stated(len));
            let tail = len % block;
            assert!(block <= u64::from(size) * 3 / 2);
            assert!(tail == 0 || tail >= u64::from(size) / 2, "{len}: {block}");
        }
        assert_eq!(
            Config::new().block_size(size).header().unwrap().block_size,
            size
        );
    }
}
