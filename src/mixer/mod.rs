//! The meta-gate: mixes the experts' opinions into one probability per decision.
//!
//! Layout: `gate.rs` holds the mixers and the calibration maps; `lane.rs` one block's
//! experts and gate, and the `Spec` a format version and expert set select; `primer.rs` the
//! embedded [`PRIMER`] and the primed states shared by the process; `profile.rs` the named
//! presets ([`Profile`]); this module the [`Mix`] predictor over many lanes.
//!
//! The byte is modelled as 8 binary decisions (nodes `c0 = 1..=255` of its bit tree). For
//! every node each expert gives the mixer one or more inputs in the logistic domain
//! (`src/logistic.rs`). From format version 6 three weight sets weigh them, each chosen by
//! the node and a context of its own (the copy experts' match state with the context class
//! — letter, digit, space, punctuation, binary, derived from the bytes —; nothing more; the
//! top bits of the last two bytes), from version 13 a fourth (the two bytes before the
//! last), each learning from its own prediction, and a final mixer weighs their outputs
//! (paq8's two-layer network; from version 13 two, by different contexts, averaged);
//! before, the first set alone. From version 13 the inputs include a constant, so each
//! weight set learns a bias of its own. Two adaptive probability maps (secondary estimation
//! on the node, and on the node with the last two bytes; before version 9 with the
//! previous byte) calibrate the result.
//! From version 9 each of the byte's 8 decisions is coded under its node's probability, so
//! only the 8 nodes on the byte's path are evaluated. Versions 6 to 8 coded the high
//! nibble, whose 16 probabilities are the products along the paths through the tree's top 4
//! levels (15 nodes), and then the low nibble, from the 15-node subtree below the high
//! nibble that came; before version 6 the full 256-symbol distribution, with unlikely
//! subtrees shared out flat. After the byte is coded the 8 nodes on its path learn.
//!
//! All arithmetic is integer: the same inputs give the same weights on every machine and
//! thread count. Weight updates follow the gradient of the coding cost, as in the
//! context-mixing compressors (paq, lpaq).

mod gate;
mod lane;
mod legacy;
mod primer;
mod profile;
mod stored;

use std::sync::Arc;

use crate::error::Error;
use crate::experts::{Dictionary, NeuralExpert, NeuralModel, Predictor, Weights};
use lane::{Lane, Spec, EVEN};
use primer::{KEEP_PRIMED, KEEP_TABLE_BITS};
pub use primer::{PRIMER, PRIMER_V7, PRIMER_X86};
pub use profile::Profile;
pub use stored::set_primed_cache_dir;

pub use crate::format::{
    EXPERT_LONG_COPY, EXPERT_NEURAL_INPUT, EXPERT_ORDERS, EXPERT_RETRIEVAL, EXPERT_SHORT_COPY,
    EXPERT_SPARSE, EXPERT_TEXT, MIX_EXPERTS,
};

/// The mixing predictor: context statistics, copy experts and optionally the neural
/// expert, combined by the gate above.
pub struct Mix {
    spec: Spec,
    /// Format version 13 on, when primed: the spec of lanes whose block is through the x86
    /// filter, primed with [`PRIMER_X86`].
    spec_x86: Option<Spec>,
    lanes: Vec<Option<Box<Lane>>>,
    /// The primed lane states this predictor has started blocks from, one per table size,
    /// least recently used first.
    primed: Vec<Arc<Lane>>,
    /// Bytes the primed states may hold before the least recently used go
    /// ([`Mix::set_primed_budget`]).
    primed_budget: u64,
    neural: Option<NeuralExpert>,
    neural_out: Vec<Weights>,
    /// Per lane: whether its block is plain ([`Predictor::reset_lane_plain`]).
    plain: Vec<bool>,
    /// Per lane: whether its next block is through the x86 filter
    /// ([`Predictor::set_lane_x86`], until the lane's reset).
    x86: Vec<bool>,
    /// The stream's dictionary ([`Predictor::set_dictionary`]): a lane state at the end of
    /// the stream's first block, which blocks flagged by [`Predictor::set_lane_from_dict`]
    /// start from.
    dictionary: Option<Arc<Lane>>,
    /// Where primed states are kept on disk ([`set_primed_cache_dir`] when the predictor
    /// was made).
    stored_dir: Option<std::path::PathBuf>,
    /// Per lane: whether its next block starts from `dictionary`, and whether it is to be
    /// the dictionary (until the lane's reset).
    from_dict: Vec<bool>,
    makes_dict: Vec<bool>,
    /// Scratch: the lanes of a step that run the neural expert (set by `predict`, which
    /// `update` follows over the same lanes), and their bytes.
    neural_lanes: Vec<usize>,
    neural_bytes: Vec<u8>,
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
            spec.primer = Some(primer::primer(version));
        }
        let spec_x86 = (primed && version >= crate::format::X86_PRIMER_VERSION).then(|| Spec {
            primer: Some(primer::primer_x86_filtered()),
            ..spec.clone()
        });
        Ok(Mix {
            spec,
            spec_x86,
            lanes: (0..lanes).map(|_| None).collect(),
            primed: Vec::new(),
            primed_budget: u64::MAX,
            neural_out: vec![[0; 256]; if neural.is_some() { lanes } else { 0 }],
            neural,
            plain: vec![false; lanes],
            x86: vec![false; lanes],
            dictionary: None,
            stored_dir: stored::dir(),
            from_dict: vec![false; lanes],
            makes_dict: vec![false; lanes],
            neural_lanes: Vec::with_capacity(lanes),
            neural_bytes: Vec::with_capacity(lanes),
        })
    }
}

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
        let text_primer = primer::primer(version);
        spec.primer = Some(text_primer);
        if spec.grows {
            // The lanes; the primed states: every one has the smallest tables, so the
            // process keeps the `KEEP_PRIMED` last used (the stream's text and x86 primers'
            // among them once used) and primes at most one more before the oldest goes;
            // where blocks need larger tables, the primed copy (or the dictionary's) a lane
            // holds while it grows. (The text primer is the longer: its states bound both.)
            debug_assert!(text_primer.len() >= PRIMER_X86.len() && KEEP_PRIMED >= 2);
            let grows = spec.table_bits(block_size) != spec.table_bits(0);
            // Primed states never make the bilevel image specialist's tables: the
            // primers are text and machine code.
            let primed_state = spec.lane_bytes(0) - spec.bitmap_bytes();
            // The stream's dictionary, where it may have one: a lane's state at the end of
            // a block of up to `DICT_LEN` bytes, in a primed state's context table.
            let dictionary = if version >= crate::format::DICT_VERSION {
                spec.dictionary_bytes(block_size.min(crate::format::DICT_LEN as usize))
            } else {
                0
            };
            return lanes as u64 * spec.lane_bytes(block_size)
                + (KEEP_PRIMED as u64 + 1) * primed_state
                + u64::from(grows) * primed_state.max(dictionary)
                + dictionary;
        }
        // The largest block whose state the process keeps: context table <= 2^KEEP_TABLE_BITS.
        let kept_len = (1usize << (KEEP_TABLE_BITS - spec.table_extra))
            .saturating_sub(text_primer.len())
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

impl Mix {
    /// Starts lane `lane`'s mixing state (experts and gate) for a block of `block_len`
    /// bytes: from the primed state, or empty.
    fn reset_mixing_lane(&mut self, lane: usize, block_len: usize) {
        let x86 = std::mem::take(&mut self.x86[lane]);
        let from_dict = std::mem::take(&mut self.from_dict[lane]);
        let makes_dict = std::mem::take(&mut self.makes_dict[lane]);
        if self.spec.primer.is_some() {
            self.reset_primed_lane(lane, block_len, x86, (from_dict, makes_dict));
        } else {
            self.reset_unprimed_lane(lane, block_len);
        }
        if let Some(l) = &mut self.lanes[lane] {
            if x86 {
                l.set_code();
            }
            l.set_neural(self.neural.is_some() && !self.plain[lane]);
        }
    }

    /// [`Mix::reset_mixing_lane`] from the primed state: restored in place where the
    /// lane's tables and primer are the block's, else copied.
    fn reset_primed_lane(
        &mut self,
        lane: usize,
        block_len: usize,
        x86: bool,
        (from_dict, dictionary): (bool, bool),
    ) {
        let grows = self.lane_spec(x86).grows;
        let dictionary = dictionary && grows;
        if grows && !from_dict && self.lanes[lane].is_none() {
            // A lane's first block: read straight from disk where the state is stored
            // there, rather than read into a primed state kept beside the lane and copied
            // (a stream of one block never needs the kept one).
            if let Some(l) = self.stored_lane(x86) {
                self.lanes[lane] = Some(Lane::grow(l, block_len, dictionary));
                return;
            }
        }
        // The engine asks for the dictionary only once it has set one.
        let primed = match &self.dictionary {
            Some(d) if from_dict => d.clone(),
            _ => self.primed_lane(if grows { 0 } else { block_len }, x86),
        };
        if let Some(l) = &mut self.lanes[lane] {
            if !dictionary && l.restore_from(&primed, block_len) {
                return;
            }
        }
        // Free the old state before copying: a lane's tables are tens of MiB.
        self.lanes[lane] = None;
        let l = if grows {
            Lane::grown(&primed, block_len, dictionary)
        } else {
            let mut l = Box::new((*primed).clone());
            l.block_len = block_len;
            l
        };
        self.lanes[lane] = Some(l);
    }

    /// [`Mix::reset_mixing_lane`] without a primer: cleared in place where the tables
    /// have the block's sizes.
    fn reset_unprimed_lane(&mut self, lane: usize, block_len: usize) {
        match &mut self.lanes[lane] {
            // Same table sizes: clear in place rather than reallocate.
            Some(l) if self.spec.table_bits(l.block_len) == self.spec.table_bits(block_len) => {
                l.block_len = block_len;
                l.reset();
            }
            slot => *slot = Some(Lane::new(&self.spec, block_len)),
        }
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
        self.plain[lane] = false;
        self.reset_mixing_lane(lane, block_len);
    }

    fn set_lane_x86(&mut self, lane: usize) {
        self.x86[lane] = true;
    }

    fn set_lane_from_dict(&mut self, lane: usize) {
        self.from_dict[lane] = true;
    }

    fn set_lane_makes_dict(&mut self, lane: usize) {
        self.makes_dict[lane] = true;
    }

    fn dictionary(&self, lane: usize) -> Option<Dictionary> {
        // Only where the lanes grow from a primed state (format version 13 on).
        if self.spec.primer.is_none() || !self.spec.grows {
            return None;
        }
        let lane = self.lanes.get(lane)?.as_ref()?;
        if lane.spec.dictionary != lane::MAKES_DICTIONARY {
            return None;
        }
        Some(Dictionary(Arc::new(lane.dictionary())))
    }

    fn set_dictionary(&mut self, dictionary: Option<Dictionary>) {
        self.dictionary = dictionary.and_then(|d| d.0.downcast::<Lane>().ok());
    }

    fn reset_lane_plain(&mut self, lane: usize, block_len: usize) -> bool {
        if self.neural.is_none() || self.spec.version < crate::format::PLAIN_VERSION {
            return false;
        }
        // The neural lane keeps its state: it is reset when a block next uses it.
        self.plain[lane] = true;
        self.reset_mixing_lane(lane, block_len);
        true
    }

    fn predict(&mut self, lanes: &[usize], out: &mut [Weights]) -> Result<(), Error> {
        if let Some(n) = &mut self.neural {
            self.neural_lanes.clear();
            self.neural_lanes
                .extend(lanes.iter().copied().filter(|&l| !self.plain[l]));
            if !self.neural_lanes.is_empty() {
                n.predict(&self.neural_lanes, &mut self.neural_out)?;
            }
        }
        let mut next_neural = 0;
        for (&lane, w) in lanes.iter().zip(out.iter_mut()) {
            let neural = match self.neural {
                None => None,
                // A plain lane's unigram slot has the neural input's column back (version
                // 13), or that input sits at even odds.
                Some(_) if self.plain[lane] => self.spec.neural_col.is_none().then_some(&EVEN),
                Some(_) => {
                    next_neural += 1;
                    Some(&self.neural_out[next_neural - 1])
                }
            };
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
            self.neural_bytes.clear();
            self.neural_bytes.extend(
                lanes
                    .iter()
                    .zip(bytes)
                    .filter(|&(&lane, _)| !self.plain[lane])
                    .map(|(_, &byte)| byte),
            );
            if !self.neural_lanes.is_empty() {
                n.update(&self.neural_lanes, &self.neural_bytes);
            }
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
    use super::gate::Mixer;
    use super::lane::{LANE_FIXED_BYTES, MAX_INPUTS, P_MIN};
    use super::*;
    use crate::experts::copy::CopyExpert;
    use crate::experts::orders::Orders;
    use crate::experts::retrieval::Retrieval;

    pub(super) static PRIMINGS: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);

    /// Blocks of lengths that cycle through table sizes prime once per size while the
    /// budget allows (format version 12): a crafted stream of short blocks of many lengths
    /// cannot make every block pay for priming. From version 13 they prime once.
    #[rstest::rstest]
    #[case::per_size(12)]
    #[case::once(crate::format::GROWN_VERSION)]
    fn blocks_of_many_lengths_prime_once_per_size(#[case] version: u16) {
        use std::sync::atomic::Ordering;
        let mask = Profile::Fast.experts();
        let mut mix = Mix::for_version(version, mask, 1, None, 256, true).unwrap();
        let lens = [1000, 300_000, 600_000, 1_200_000];
        let sizes: std::collections::HashSet<_> =
            lens.iter().map(|&l| mix.spec.table_bits(l)).collect();
        let states = if mix.spec.grows { 1 } else { sizes.len() };
        let before = PRIMINGS.load(Ordering::Relaxed);
        for _ in 0..3 {
            for len in lens {
                mix.reset_lane(0, len);
                let lane = mix.lanes[0].as_ref().unwrap();
                assert_eq!(lane.block_len, len);
            }
        }
        // Other tests may prime at the same time, never fewer than this one needs.
        let primed = PRIMINGS.load(Ordering::Relaxed) - before;
        assert_eq!(sizes.len(), 4);
        assert_eq!(mix.primed.len(), states);
        assert!(
            primed <= states + 8,
            "{primed} primings for {states} states"
        );
    }

    /// With the neural expert (format version 13), blocks that run it and plain blocks
    /// start from one primed state, the one the expert set without it primes: the neural
    /// input takes the unigram slot's column, which plain blocks leave to the unigram.
    #[cfg(feature = "neural")]
    #[test]
    fn plain_and_neural_blocks_start_from_one_primed_state() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/onnx-models/nc-test32.onnx");
        let model = Arc::new(NeuralModel::from_file(path).unwrap());
        let mut max = Mix::new(Profile::Max.experts(), 1, Some(model), 256).unwrap();
        let mut default = Mix::new(Profile::Default.experts(), 1, None, 256).unwrap();
        let spec = &max.spec;
        assert!(spec.inputs() <= MAX_INPUTS);
        // The neural input adds no column: it takes the unigram slot's.
        assert_eq!(spec.inputs(), default.spec.inputs());
        let col = spec.neural_col.unwrap();
        assert_eq!(spec.kinds[col], crate::experts::orders::Kind::Unigram);
        assert_eq!(spec.kinds, default.spec.kinds);
        let len = 5000;
        max.reset_lane(0, len);
        assert!(max.reset_lane_plain(0, len));
        max.reset_lane(0, len);
        assert_eq!(
            max.primed.len(),
            1,
            "one primed state for both kinds of block"
        );
        // The primed state is the expert set's without the neural expert.
        default.reset_lane(0, len);
        let (m, d) = (&max.primed[0], &default.primed[0]);
        assert_eq!(m.bytes, d.bytes);
        fn same<const N: usize>(a: &Mixer<N>, b: &Mixer<N>) {
            assert_eq!(a.sets, b.sets);
            for set in 0..a.sets {
                assert_eq!(a.row(set), b.row(set));
            }
        }
        for (a, b) in m.mixers.iter().zip(&d.mixers) {
            same(a, b);
        }
        same(m.final_mix.as_ref().unwrap(), d.final_mix.as_ref().unwrap());
        assert_eq!(m.p_mix[..], d.p_mix[..]);
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
                let lane = if primed {
                    // As a block starts from the primed state (grown from version 13).
                    let mut lane = Lane::new(&spec, if spec.grows { 0 } else { len });
                    lane.prime(PRIMER);
                    if spec.grows {
                        lane = Lane::grown(&lane, len, false);
                    }
                    lane
                } else {
                    Lane::new(&spec, len)
                };
                let tables = lane.orders.as_ref().map_or(0, Orders::table_capacity_bytes)
                    + [&lane.long, &lane.short]
                        .iter()
                        .filter_map(|c| c.as_ref().map(CopyExpert::table_capacity_bytes))
                        .sum::<u64>()
                    + lane
                        .retrieval
                        .as_ref()
                        .map_or(0, Retrieval::table_capacity_bytes);
                let gate: u64 = lane.mixers.iter().map(Mixer::capacity_bytes).sum::<u64>()
                    + ((lane.apm_order0.table.capacity()
                        + lane
                            .tree
                            .as_ref()
                            .map_or(0, |t| t.apm_order1.table.capacity())
                        + lane.apm_order2.as_ref().map_or(0, |a| a.table.capacity())
                        + lane.apm_copy.as_ref().map_or(0, |a| a.table.capacity()))
                        * 2) as u64
                    + lane.final_mix.as_ref().map_or(0, Mixer::capacity_bytes)
                    + lane.final_twin.as_ref().map_or(0, Mixer::capacity_bytes);
                // The bilevel image specialist's tables come with the first bitmap rows: a
                // lane may grow by them.
                assert!(lane.bitmap.is_none());
                let held = tables + gate + spec.bitmap_bytes() + lane.bytes.capacity() as u64;
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
        cost_in_bits_as(mix, data, false)
    }

    /// [`cost_in_bits`] of a block said to be x86 code (`x86`) or not.
    fn cost_in_bits_as(mix: &mut Mix, data: &[u8], x86: bool) -> f64 {
        if x86 {
            mix.set_lane_x86(0);
        }
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

    /// Bits the unprimed `default` experts of format versions `old` and `new` spend on
    /// `data`, printed (`cargo test --lib -- --nocapture`) and returned in that order.
    fn costs_of_versions(old: u16, new: u16, data: &[u8]) -> (f64, f64) {
        let mask = Profile::Default.experts();
        let cost = |version| {
            let mut mix = Mix::for_version(version, mask, 1, None, 256, false).unwrap();
            cost_in_bits(&mut mix, data)
        };
        let (old_bits, new_bits) = (cost(old), cost(new));
        eprintln!("version {new} {new_bits:.0} bits, version {old} {old_bits:.0}");
        (old_bits, new_bits)
    }

    #[test]
    fn version_5_learns_a_bitmap_by_its_rows() {
        let data = crate::experts::orders::tests::bitmap(61, 400);
        let (old, new) = costs_of_versions(4, 5, &data);
        // Measured: 0.87 (the copy experts find part of each row in the one above).
        assert!(
            new < 0.9 * old,
            "version 5 {new:.0} bits, version 4 {old:.0}"
        );
    }

    #[test]
    fn version_6_codes_text_in_fewer_bits() {
        // 40 KB of the golden prose's words, drawn with a skew toward the first ones.
        let words: Vec<&[u8]> = include_bytes!("../../tests/golden/prose.txt")
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

    /// Indented, nested records (JSON-like), generated: version 13's structure contexts
    /// (nesting, indentation) make them cheaper.
    #[test]
    fn version_13_codes_nested_text_in_fewer_bits() {
        let keys = ["name", "id", "tags", "value", "children", "enabled"];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut data = Vec::new();
        fn object(
            out: &mut Vec<u8>,
            depth: usize,
            next: &mut dyn FnMut(u64) -> u64,
            keys: &[&str],
        ) {
            let pad = "  ".repeat(depth);
            out.extend_from_slice(b"{\n");
            let fields = 1 + next(4) as usize;
            for f in 0..fields {
                let key = keys[next(keys.len() as u64) as usize];
                out.extend_from_slice(format!("{pad}  \"{key}\": ").as_bytes());
                match next(4) {
                    0 if depth < 4 => object(out, depth + 1, next, keys),
                    1 => {
                        out.extend_from_slice(format!("[{}, {}]", next(100), next(1000)).as_bytes())
                    }
                    2 => {
                        out.extend_from_slice(format!("\"{}\"", keys[next(6) as usize]).as_bytes())
                    }
                    _ => out.extend_from_slice(next(10).to_string().as_bytes()),
                }
                out.extend_from_slice(if f + 1 < fields { b",\n" } else { b"\n" });
            }
            out.extend_from_slice(format!("{pad}}}").as_bytes());
        }
        while data.len() < 30_000 {
            object(&mut data, 0, &mut next, &keys);
            data.push(b'\n');
        }
        let (old, new) = costs_of_versions(12, 13, &data);
        // Measured 0.986 (20,918 bits against 21,218: the random choices are most of the
        // information). Real code and JSON gain 2-4% (`docs/tuning.md`, "Structure
        // contexts").
        assert!(
            new < 0.995 * old,
            "version 13 {new:.0} bits, version 12 {old:.0}"
        );
    }

    #[test]
    fn the_primers_are_the_ones_format_versions_7_and_13_name() {
        // FORMAT.md and onnx-models/README.md give these hashes: another primer is another
        // format version.
        assert_eq!(
            sha256_hex(PRIMER_V7),
            "5d512cd88dadd0975005113f1a4a34a33eeb7f4d07b92407e33759d3b23feca5"
        );
        assert_eq!(
            sha256_hex(PRIMER),
            "c6d5c232055f04aa44469f8ac23512eddc248d58490cb4aeccf369e646f3d88e"
        );
        // Table sizes count the primer to version 7's length.
        assert_eq!(crate::format::TABLE_PRIMER_LEN, PRIMER_V7.len());
        for version in crate::format::PRIMED_VERSION..=crate::format::VERSION {
            let long = version >= crate::format::LONG_PRIMER_VERSION;
            assert_eq!(
                primer::primer(version).len(),
                if long { 445_541 } else { 96_519 }
            );
        }
    }

    #[test]
    fn a_lane_restored_after_blocks_codes_as_a_fresh_one() {
        // Text, records and x86-like code write to every table and state a lane has.
        let text = &include_bytes!("../../tests/golden/prose.txt")[..];
        let mixed = &include_bytes!("../../tests/golden/mixed.bin")[..];
        let records: Vec<u8> = (0..600u32)
            .flat_map(|i| [i.to_le_bytes(), (i * i / 7).to_le_bytes()].concat())
            .collect();
        let code: Vec<u8> = (0..700u32)
            .flat_map(|i| {
                [
                    0x55,
                    0x48,
                    0x89,
                    0xE5,
                    0xE8,
                    (i * 37) as u8,
                    (i >> 3) as u8,
                    0,
                    0,
                ]
            })
            .collect();
        let next = &text[..3000.min(text.len())];
        for version in [7, 12, crate::format::VERSION] {
            for profile in [Profile::Fast, Profile::Default] {
                let mask = profile.experts();
                let new = || Mix::for_version(version, mask, 1, None, 256, true).unwrap();
                let fresh = cost_in_bits(&mut new(), next);
                let fresh_code = cost_in_bits_as(&mut new(), &code[..3000], true);
                let mut mix = new();
                let blocks = [
                    (text, false),
                    (&records[..], false),
                    (&code[..], true),
                    (&code[..], true),
                    (mixed, false),
                ];
                for (block, x86) in blocks {
                    cost_in_bits_as(&mut mix, block, x86);
                }
                // The lane is restored in place, not made anew.
                let lane = mix.lanes[0].as_deref().map(std::ptr::from_ref);
                mix.reset_lane(0, next.len());
                assert_eq!(mix.lanes[0].as_deref().map(std::ptr::from_ref), lane);
                assert_eq!(
                    cost_in_bits(&mut mix, next),
                    fresh,
                    "version {version} {profile:?}"
                );
                // From version 13 an x86 block starts from another primer's state: the
                // lane is made anew from it, then restored in place.
                for _ in 0..2 {
                    assert_eq!(
                        cost_in_bits_as(&mut mix, &code[..3000], true),
                        fresh_code,
                        "version {version} {profile:?}"
                    );
                }
            }
        }
    }

    /// A lane's first block starts from the state read from disk, unshared, and codes as
    /// it would from the primed state; later blocks restore from one read into memory.
    #[test]
    fn a_first_block_read_from_disk_codes_as_from_the_primed_state() {
        let dir = tempfile::tempdir().unwrap();
        let text = &include_bytes!("../../tests/golden/prose.txt")[..];
        let code = x86_code(20_000);
        let blocks = [
            (text, false),
            (&code[..], true),
            (text, false),
            (text, false),
        ];
        for profile in [Profile::Fast, Profile::Default] {
            let new = || {
                let v = crate::format::VERSION;
                Mix::for_version(v, profile.experts(), 1, None, 256, true).unwrap()
            };
            let mut plain = new();
            let costs: Vec<f64> = blocks
                .iter()
                .map(|&(b, x86)| cost_in_bits_as(&mut plain, b, x86))
                .collect();
            let mut read = new();
            read.stored_dir = Some(dir.path().to_path_buf());
            for x86 in [false, true] {
                let spec = read.lane_spec(x86);
                let key = (spec.version, spec.mask, spec.table_bits(0), x86);
                primer::primed_state(spec, 0, &key, Some(dir.path()));
            }
            for (i, &(b, x86)) in blocks.iter().enumerate() {
                assert_eq!(
                    cost_in_bits_as(&mut read, b, x86),
                    costs[i],
                    "{profile:?} block {i}"
                );
                if i == 0 {
                    assert!(read.primed.is_empty(), "the first block's state was kept");
                }
            }
        }
    }

    #[test]
    fn x86_blocks_start_from_the_x86_primer_from_version_13() {
        let mask = Profile::Default.experts();
        for (version, x86_primer) in [(12, false), (crate::format::VERSION, true)] {
            let mut mix = Mix::for_version(version, mask, 1, None, 256, true).unwrap();
            let history = |mix: &Mix| mix.lanes[0].as_ref().unwrap().bytes.clone();
            mix.set_lane_x86(0);
            mix.reset_lane(0, 1000);
            let primer = history(&mix);
            if x86_primer {
                // Filtered, as the blocks it primes are.
                assert_eq!(primer.len(), PRIMER_X86.len());
                assert_ne!(primer, PRIMER_X86);
                let mut unfiltered = primer.clone();
                crate::filter::decode(&mut unfiltered);
                assert_eq!(unfiltered, PRIMER_X86);
            } else {
                assert_eq!(primer, primer::primer(version));
            }
            // The flag holds for one reset.
            mix.reset_lane(0, 1000);
            assert_eq!(history(&mix), primer::primer(version));
        }
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_x86_primer_is_the_one_format_version_13_names() {
        // FORMAT.md and onnx-models/README.md give this hash.
        assert_eq!(
            sha256_hex(PRIMER_X86),
            "57a4229aa1c6d96fc0450f4eb75791fb3f47e1abec4cee1efe0e1ab9ac8801aa"
        );
    }

    #[test]
    fn a_primed_lane_codes_a_small_text_in_fewer_bits() {
        let data = include_bytes!("../../tests/golden/prose.txt");
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

    /// x86-64 instructions drawn from a few common forms with random registers, offsets
    /// and targets (pushes and pops, register and stack moves, calls, RIP-relative loads,
    /// immediates, short jumps).
    fn x86_code(len: usize) -> Vec<u8> {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as u8
        };
        let mut code = Vec::new();
        while code.len() < len {
            let r = next(8);
            let form = next(10);
            match form {
                0 => code.push(0x50 + r),
                1 => code.push(0x58 + r),
                2 => code.extend([0x48, 0x8B, 0xC0 | r << 3 | next(8)]),
                3 => code.extend([0x8B, 0x45 | r << 3, 0xF8 - 8 * next(8)]),
                4 => code.extend([0xE8, next(255), next(16), 0, 0]),
                5 => code.extend([0x48, 0x8D, 0x05 | r << 3, next(255), next(255), 0x01, 0]),
                6 => code.extend([0x48, 0x83, 0xC0 | r, 8 * next(4)]),
                7 => code.extend([0x74 + next(2), next(64)]),
                8 => code.extend([0xB8 + r, next(16), 0, 0, 0]),
                _ => code.extend([0x48, 0x85, 0xC0 | r << 3 | r]),
            }
        }
        code.truncate(len);
        code
    }

    #[test]
    fn x86_code_costs_fewer_bits_as_code() {
        let data = x86_code(40_000);
        let mut mix = Mix::new(Profile::Default.experts(), 1, None, 256).unwrap();
        let (old, new) = (
            cost_in_bits_as(&mut mix, &data, false),
            cost_in_bits_as(&mut mix, &data, true),
        );
        // Measured 0.953 (134,239 bits against 140,825); `cargo test --lib as_code --
        // --nocapture` prints the two.
        eprintln!("as code {new:.0} bits, as other data {old:.0}");
        assert!(
            new < 0.97 * old,
            "as code {new:.0} bits, as other data {old:.0}"
        );
        // A reset forgets it: the next block is not code unless said so.
        assert_eq!(cost_in_bits_as(&mut mix, &data, false), old);
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
