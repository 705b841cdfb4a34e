//! The engine: blocks of bytes <-> coded blocks, with no I/O in it.
//!
//! ```text
//! blocks --(one lane each)--> [ predictor -> quantizer -> range coder ] x lanes --> payloads
//! ```
//!
//! A batch of up to `lanes` blocks is coded in lockstep: at step `t` every lane that still
//! has a byte `t` is predicted in one `Predictor::predict` call, then coded, then fed back
//! with one `update`. Lanes are split into contiguous groups, one per worker thread, each
//! worker owning its predictor. Every block starts from a reset lane, so the coded bytes do
//! not depend on how blocks are grouped into batches, lanes or threads.

use std::sync::Arc;

use crate::container::{
    predictor_id, BlockHeader, BlockKind, Header, FLAG_DICT, FLAG_FROM_DICT, FLAG_NO_NEURAL,
    FLAG_X86,
};
use crate::error::{Error, Location};
use crate::experts::{ContextStats, NeuralExpert, NeuralModel, Predictor, Weights};
use crate::filter;
use crate::light;
use crate::mixer::Mix;
use crate::quantizer::{FreqTable, Quantizer};
use crate::range_coder::{RangeDecoder, RangeEncoder};

/// A block as the engine produced it, ready to be framed.
#[derive(Debug)]
pub(crate) struct CodedBlock {
    /// Coded, light or stored.
    pub kind: BlockKind,
    /// [`FLAG_NO_NEURAL`] for a plain coded block, [`FLAG_X86`] for a filtered one.
    pub flags: u8,
    /// The range-coded bytes, or empty for a stored block (the caller has the raw bytes).
    pub payload: Vec<u8>,
    /// CRC32 of the uncompressed bytes.
    pub crc: u32,
}

/// One thread's share: a predictor for its lanes plus scratch space.
struct Worker {
    predictor: Box<dyn Predictor>,
    weights: Vec<Weights>,
}

/// Codes batches of blocks with the predictor a header describes.
pub(crate) struct Engine {
    quantizer: Quantizer,
    /// The most bytes a coded block may hold per payload byte (format version 10 on):
    /// shorter range codes are padded with zero bytes.
    ratio: Option<u32>,
    /// The most bytes a plain block may hold per payload byte, where plain blocks exist
    /// (format version 13 on, with the neural expert): blocks are also coded plain where
    /// that may win ([`encode_worker`]), and are plain when that is shorter after padding
    /// (the neural expert gains nothing on some data, and a block it would code below its
    /// bound is padded).
    plain_ratio: Option<u32>,
    /// The most bytes a light block may hold per payload byte, where light blocks exist
    /// (format version 12 on): a block whose code would be padded is light when the light
    /// coder's code, padded to this bound, is shorter.
    light_ratio: Option<u32>,
    /// Blocks that look like x86 code are coded through the x86 filter (format version
    /// 13 on).
    filters: bool,
    /// Whether the stream's first block may be a dictionary ([`Header::dictionaries`]).
    dictionaries: bool,
    /// Once a dictionary block is coded or decoded: whether it went through the x86 filter
    /// (blocks start from it only where theirs went the same way).
    dictionary: Option<bool>,
    workers: Vec<Worker>,
    lanes: usize,
}

impl Engine {
    /// Builds the predictor of `header` for `lanes` lanes split over up to `threads` threads,
    /// with fewer lanes where that many would need more than `memlimit` bytes
    /// ([`memory`]). A neural header must name `model` (when given) or the embedded
    /// default model.
    ///
    /// # Errors
    /// `MemoryLimit` when even one lane would need more than `memlimit`, before anything
    /// large is allocated.
    pub fn new(
        header: &Header,
        lanes: usize,
        threads: usize,
        model: Option<&Arc<NeuralModel>>,
        memlimit: u64,
    ) -> Result<Engine, Error> {
        header.validate()?;
        let neural = if header.uses_model() {
            Some(resolve_model(header, model)?)
        } else {
            None
        };
        let hidden = neural.as_ref().map(|m| m.hidden());
        let wanted = lanes.max(1);
        let lanes = (1..=wanted)
            .rev()
            .find(|&n| memory(header, n, threads, hidden) <= memlimit)
            .ok_or_else(|| Error::MemoryLimit {
                need: memory(header, 1, 1, hidden),
                limit: memlimit,
            })?;
        let threads = threads.clamp(1, lanes);
        // What the limit leaves after the lanes goes to keeping primed states of more table
        // sizes (so blocks of many lengths do not prime again and again), shared by workers.
        let primed_budget = memlimit.saturating_sub(memory(header, lanes, threads, hidden))
            / threads as u64
            + Mix::primed_state_bytes(
                header.version,
                header.expert_mask,
                header.block_size as usize,
            );
        let per_worker = lanes.div_ceil(threads);
        let workers = (0..threads)
            .map(|_| -> Result<Worker, Error> {
                let predictor: Box<dyn Predictor> = match (header.predictor, &neural) {
                    (predictor_id::NEURAL, Some(m)) => Box::new(NeuralExpert::for_version(
                        header.version,
                        m.clone(),
                        per_worker,
                        header.temperature,
                    )?),
                    (predictor_id::MIX, m) => {
                        let mut mix = Mix::for_version(
                            header.version,
                            header.expert_mask,
                            per_worker,
                            m.clone(),
                            header.temperature,
                            header.flags & crate::container::FLAG_PRIMED != 0,
                        )?;
                        mix.set_primed_budget(primed_budget);
                        Box::new(mix)
                    }
                    (predictor_id::CONTEXT_STATS, _) => Box::new(ContextStats::new(
                        header.context_order,
                        per_worker,
                        header.block_size,
                    )),
                    (other, _) => {
                        return Err(Error::Unsupported {
                            what: format!("predictor id {other}"),
                        })
                    }
                };
                Ok(Worker {
                    predictor,
                    weights: vec![[0; 256]; per_worker],
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Engine {
            quantizer: Quantizer::new(u32::from(header.quant_bits)),
            ratio: header.coded_ratio(),
            plain_ratio: header.plain_ratio(),
            light_ratio: header.light_ratio(),
            filters: header.version >= crate::format::FILTER_VERSION,
            dictionaries: header.dictionaries(),
            dictionary: None,
            workers,
            lanes,
        })
    }

    /// Most blocks one batch may hold.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Blocks per worker for a batch of `n` blocks.
    fn group_size(&self, n: usize) -> usize {
        n.div_ceil(self.workers.len()).max(1)
    }

    /// Whether the stream's first block may be a dictionary ([`FLAG_DICT`]).
    pub fn dictionaries(&self) -> bool {
        self.dictionaries
    }

    /// Forgets the dictionary, for the next stream.
    pub fn clear_dictionary(&mut self) {
        if self.dictionary.take().is_some() {
            for w in &mut self.workers {
                w.predictor.set_dictionary(None);
            }
        }
    }

    /// Whether a dictionary was coded or decoded since the last [`Engine::clear_dictionary`].
    pub fn has_dictionary(&self) -> bool {
        self.dictionary.is_some()
    }

    /// Makes the state worker 0's lane 0 ended its block in the dictionary of every worker
    /// (`x86`: the block went through the filter). False where the predictor has none.
    fn keep_dictionary(&mut self, x86: bool) -> bool {
        let Some(d) = self.workers[0].predictor.dictionary(0) else {
            return false;
        };
        for w in &mut self.workers {
            w.predictor.set_dictionary(Some(d.clone()));
        }
        self.dictionary = Some(x86);
        true
    }

    /// Codes up to `lanes` blocks; a block that would not shrink comes back `Stored`. Blocks
    /// that look like x86 code are filtered in place while they are coded, and restored.
    /// With `dictionary` (where [`Engine::dictionaries`], one block, the stream's first),
    /// the block becomes the stream's dictionary where it is coded ([`FLAG_DICT`]); blocks
    /// after it that go through the filter as it did start from its state
    /// ([`FLAG_FROM_DICT`]).
    pub fn encode(
        &mut self,
        blocks: &mut [&mut [u8]],
        dictionary: bool,
    ) -> Result<Vec<CodedBlock>, Error> {
        debug_assert!(blocks.len() <= self.lanes);
        debug_assert!(!dictionary || (self.dictionaries && blocks.len() == 1));
        let crcs: Vec<u32> = blocks.iter().map(|b| crc32fast::hash(b)).collect();
        let filtered: Vec<bool> = blocks
            .iter_mut()
            .map(|block| {
                let worth = self.filters && filter::worth_filtering(block);
                if worth {
                    filter::encode(block);
                }
                worth
            })
            .collect();
        let views: Vec<&[u8]> = blocks.iter().map(|b| &**b).collect();
        let mut coded = self.encode_as_given(&views, &crcs, &filtered, dictionary);
        if let Ok(coded) = &mut coded {
            if dictionary && coded[0].kind == BlockKind::Coded && self.keep_dictionary(filtered[0])
            {
                coded[0].flags |= FLAG_DICT;
            }
        }
        // The caller keeps the block's own bytes: a stored block is written from them.
        for (block, _) in blocks.iter_mut().zip(&filtered).filter(|(_, &f)| f) {
            filter::decode(block);
        }
        coded
    }

    /// Codes `blocks` as they are (`filtered`: through the x86 filter; `crcs`: of the
    /// unfiltered bytes).
    fn encode_as_given(
        &mut self,
        blocks: &[&[u8]],
        crcs: &[u32],
        filtered: &[bool],
        dictionary: bool,
    ) -> Result<Vec<CodedBlock>, Error> {
        let group = self.group_size(blocks.len());
        let quantizer = self.quantizer;
        // Blocks may also be coded plain, where that exists, but a dictionary: its state
        // must be the one its code ends in.
        let try_plain = (self.plain_ratio.is_some() && !dictionary).then_some(self.ratio);
        // Blocks start from the dictionary where they go through the filter as it did.
        let from_dict: Vec<bool> = filtered
            .iter()
            .map(|&f| self.dictionary == Some(f))
            .collect();
        let makes_dict = [dictionary];
        let mut results: Vec<Result<Vec<Codes>, Error>> = Vec::new();
        if blocks.len() <= group {
            results.push(encode_worker(
                &mut self.workers[0],
                quantizer,
                blocks,
                (filtered, &from_dict, &makes_dict),
                try_plain,
            ));
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .workers
                    .iter_mut()
                    .zip(blocks.chunks(group))
                    .zip(filtered.chunks(group).zip(from_dict.chunks(group)))
                    .map(|((worker, chunk), (filtered, from_dict))| {
                        // Only a batch of one block is a dictionary.
                        let lanes = (filtered, from_dict, &[][..]);
                        scope.spawn(move || {
                            encode_worker(worker, quantizer, chunk, lanes, try_plain)
                        })
                    })
                    .collect();
                for h in handles {
                    // A worker only panics on a bug; surface it rather than lose data.
                    results.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
                }
            });
        }
        let mut codes = Vec::with_capacity(blocks.len());
        for r in results {
            codes.extend(r?);
        }
        Ok(blocks
            .iter()
            .zip(crcs.iter().zip(filtered))
            .zip(codes.into_iter().zip(from_dict))
            .map(|((block, (&crc, &filtered)), (code, from_dict))| {
                let mut coded = self.finish_block(block, crc, filtered, code);
                if from_dict && coded.kind == BlockKind::Coded {
                    coded.flags |= FLAG_FROM_DICT;
                }
                coded
            })
            .collect())
    }

    /// Frames block `block` whose range codes are `codes`: the code padded to the ratio
    /// bound, or the plain code padded to its bound, or the light code padded to its,
    /// whichever is shortest (the first of equals), or stored where none is shorter than
    /// the block. `block` is as coded (`filtered`: through the x86 filter), `crc` that of
    /// its own bytes.
    fn finish_block(&self, block: &[u8], crc: u32, filtered: bool, codes: Codes) -> CodedBlock {
        let filter_flag = if filtered { FLAG_X86 } else { 0 };
        let padded = |mut code: Vec<u8>, ratio: Option<u32>| {
            if let Some(ratio) = ratio {
                code.resize(code.len().max(block.len().div_ceil(ratio as usize)), 0);
            }
            code
        };
        let light = (would_pad(&codes.full, block, self.ratio) && self.light_ratio.is_some())
            .then(|| padded(light::encode(block), self.light_ratio));
        let mut best = (BlockKind::Coded, 0, padded(codes.full, self.ratio));
        let others = [
            codes.plain.map(|c| {
                (
                    BlockKind::Coded,
                    FLAG_NO_NEURAL,
                    padded(c, self.plain_ratio),
                )
            }),
            light.map(|c| (BlockKind::Light, 0, c)),
        ];
        for other in others.into_iter().flatten() {
            if other.2.len() < best.2.len() {
                best = other;
            }
        }
        let (kind, flags, payload) = best;
        if payload.len() < block.len() {
            CodedBlock {
                kind,
                flags: flags | filter_flag,
                payload,
                crc,
            }
        } else {
            CodedBlock {
                kind: BlockKind::Stored,
                flags: 0,
                payload: Vec::new(),
                crc,
            }
        }
    }

    /// Decodes a batch of blocks (their headers and payloads), appending the verified bytes
    /// to `out` in order. `first_block` numbers the first block in error messages.
    pub fn decode(
        &mut self,
        blocks: &[(BlockHeader, &[u8])],
        out: &mut Vec<u8>,
        first_block: Option<u64>,
    ) -> Result<(), Error> {
        debug_assert!(blocks.len() <= self.lanes);
        let dictionary = blocks
            .first()
            .is_some_and(|(h, _)| h.flags & FLAG_DICT != 0);
        // Where a dictionary may occur the readers check (`Header::check_block`) and decode
        // it alone; a block that starts from one needs it decoded first.
        for (i, (h, _)) in blocks.iter().enumerate() {
            let x86 = h.flags & FLAG_X86 != 0;
            if h.flags & FLAG_FROM_DICT != 0 && self.dictionary != Some(x86) {
                return Err(Error::corrupt(
                    if self.dictionary.is_none() {
                        "the block starts from the stream's dictionary (block 0), which was not \
                         decoded: read the stream from its start, or seek in it"
                    } else {
                        "the block starts from a dictionary of the other kind (x86 filter)"
                    },
                    Location {
                        block: first_block.map(|b| b + i as u64),
                        offset: None,
                    },
                ));
            }
        }
        let start = out.len();
        let total: usize = blocks.iter().map(|(h, _)| h.raw_len as usize).sum();
        out.resize(start + total, 0);
        let mut slices: Vec<&mut [u8]> = Vec::with_capacity(blocks.len());
        let mut rest = &mut out[start..];
        for (h, _) in blocks {
            let (head, tail) = rest.split_at_mut(h.raw_len as usize);
            slices.push(head);
            rest = tail;
        }
        let group = self.group_size(blocks.len());
        let (quantizer, padded) = (self.quantizer, self.ratio.is_some());
        let mut results = Vec::new();
        if blocks.len() <= group {
            results.push(decode_lockstep(
                &mut self.workers[0],
                quantizer,
                padded,
                blocks,
                &mut slices,
            ));
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .workers
                    .iter_mut()
                    .zip(blocks.chunks(group).zip(slices.chunks_mut(group)))
                    .map(|(worker, (chunk, outs))| {
                        scope.spawn(move || decode_lockstep(worker, quantizer, padded, chunk, outs))
                    })
                    .collect();
                for h in handles {
                    results.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
                }
            });
        }
        // Report the first bad block, in stream order; return no byte of a failed batch.
        let mut index = 0;
        for (result, chunk) in results.into_iter().zip(blocks.chunks(group)) {
            let (bad, range_code) = match result {
                Ok(()) => {
                    index += chunk.len();
                    continue;
                }
                Err(DecodeFailure::Predictor(e)) => {
                    out.truncate(start);
                    return Err(e);
                }
                Err(DecodeFailure::Block(bad, range_code)) => (bad, range_code),
            };
            out.truncate(start);
            let what = if range_code {
                "block payload does not decode to its length"
            } else {
                "block checksum mismatch"
            };
            return Err(Error::corrupt(
                what,
                Location {
                    block: first_block.map(|b| b + (index + bad) as u64),
                    offset: None,
                },
            ));
        }
        if dictionary && !self.keep_dictionary(blocks[0].0.flags & FLAG_X86 != 0) {
            out.truncate(start);
            return Err(Error::corrupt(
                "a dictionary block in a stream whose predictor keeps none",
                Location {
                    block: first_block,
                    offset: None,
                },
            ));
        }
        Ok(())
    }
}

/// An upper bound on the memory coding the stream of `header` takes with `lanes` lanes over
/// `threads` threads (`hidden`: the neural model's hidden size, when it has one): each
/// worker's predictor, and a block of input and one of output per lane. Tables are sized
/// by the block size the header states, so this holds whatever the blocks claim.
pub(crate) fn memory(header: &Header, lanes: usize, threads: usize, hidden: Option<usize>) -> u64 {
    let lanes = lanes.max(1);
    let workers = threads.clamp(1, lanes);
    let per_worker = lanes.div_ceil(workers);
    let block = header.block_size as usize;
    // Each worker's predictor keeps the state of every lane slot it has used.
    let slots = workers * per_worker;
    let neural = workers as u64 * hidden.map_or(0, |h| NeuralExpert::memory(h, per_worker));
    let predictor = match header.predictor {
        predictor_id::MIX => {
            // Primed states are shared by the workers (one per table size, process-wide).
            Mix::memory(
                header.version,
                header.expert_mask,
                header.flags & crate::container::FLAG_PRIMED != 0,
                block,
                slots,
            ) + neural
        }
        predictor_id::CONTEXT_STATS => {
            ContextStats::memory(header.context_order, slots, header.block_size)
        }
        _ => neural,
    };
    predictor + lanes as u64 * 2 * u64::from(header.block_size)
}

/// Finds the model a neural header names: the one given, or the embedded default.
fn resolve_model(
    header: &Header,
    given: Option<&Arc<NeuralModel>>,
) -> Result<Arc<NeuralModel>, Error> {
    if let Some(m) = given.filter(|m| m.fingerprint() == header.model_fingerprint) {
        return Ok(m.clone());
    }
    let default = NeuralModel::default_model()?;
    if default.fingerprint() == header.model_fingerprint {
        return Ok(default);
    }
    let name = String::from_utf8_lossy(&header.model_name)
        .trim_end_matches('\0')
        .to_string();
    let hex: String = header
        .model_fingerprint
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Err(Error::Unsupported {
        what: format!(
            "the stream was coded with model '{name}' (sha256 {hex}), which this reader \
             does not have; load it with Config::model or nccat -m"
        ),
    })
}

/// Whether `code` for `block` is shorter than `ratio` allows, so it would be padded.
fn would_pad(code: &[u8], block: &[u8], ratio: Option<u32>) -> bool {
    ratio.is_some_and(|ratio| code.len() < block.len().div_ceil(ratio as usize))
}

/// A block's range codes: by every expert of the stream, and plain where that was tried.
struct Codes {
    full: Vec<u8>,
    plain: Option<Vec<u8>>,
}

/// Bytes of a long block coded plain first, to judge whether the rest is worth coding
/// plain too ([`encode_worker`]).
const PLAIN_PROBE: usize = 32 << 10;

/// Codes one worker's blocks, and where `try_plain` (`Some` of the coded blocks' ratio
/// bound) codes them plain again, but for the blocks the plain code is sure to lose: where
/// a block is longer than [`PLAIN_PROBE`] and its full code is not padded to the bound,
/// its first `PLAIN_PROBE` bytes are coded plain first, and the rest only when that code
/// is within 1/64 of the full code's length at the same byte: a plain pass costs what the
/// mixing experts' share of the full pass costs, and where the neural expert knows the
/// data the plain code already loses by more in the probe (`docs/tuning.md`, "The plain
/// pass's probe"). An encoder's choice: the format allows either kind of block.
fn encode_worker(
    worker: &mut Worker,
    quantizer: Quantizer,
    blocks: &[&[u8]],
    (filtered, from_dict, makes_dict): (&[bool], &[bool], &[bool]),
    try_plain: Option<Option<u32>>,
) -> Result<Vec<Codes>, Error> {
    let lanes = (filtered, from_dict, makes_dict);
    let (full, at_probe) = encode_lockstep(worker, quantizer, blocks, lanes, false, None)?;
    let mut plain: Vec<Option<Vec<u8>>> = vec![None; full.len()];
    if let Some(ratio) = try_plain {
        // The blocks `which`, coded plain up to `stop` bytes.
        let mut plain_pass = |which: &[usize], stop: Option<usize>| {
            let pick = |flags: &[bool]| -> Vec<bool> {
                which.iter().map(|&b| flags.get(b) == Some(&true)).collect()
            };
            let subset: Vec<&[u8]> = which.iter().map(|&b| blocks[b]).collect();
            let (filtered, from_dict) = (pick(filtered), pick(from_dict));
            let lanes = (&filtered[..], &from_dict[..], &[][..]);
            encode_lockstep(worker, quantizer, &subset, lanes, true, stop).map(|(c, _)| c)
        };
        let long: Vec<usize> = (0..blocks.len())
            .filter(|&b| blocks[b].len() > PLAIN_PROBE && !would_pad(&full[b], blocks[b], ratio))
            .collect();
        let mut sure_to_lose = vec![false; blocks.len()];
        if !long.is_empty() {
            for (&b, probe) in long.iter().zip(plain_pass(&long, Some(PLAIN_PROBE))?) {
                sure_to_lose[b] = probe.len() > at_probe[b] + at_probe[b] / 64;
            }
        }
        let again: Vec<usize> = (0..blocks.len()).filter(|&b| !sure_to_lose[b]).collect();
        if !again.is_empty() {
            for (&b, code) in again.iter().zip(plain_pass(&again, None)?) {
                plain[b] = Some(code);
            }
        }
    }
    Ok(full
        .into_iter()
        .zip(plain)
        .map(|(full, plain)| Codes { full, plain })
        .collect())
}

/// Codes one worker's blocks in lockstep, plain ones (`plain`) or not; `lanes` says
/// which blocks went through the x86 filter, which start from the dictionary and which is
/// to be it (a missing entry: no). With `stop`, codes only each block's first `stop`
/// bytes (modelled as in the whole block). Also returns, for each block longer than
/// [`PLAIN_PROBE`], its code's length once that many bytes were coded (0 for the others).
fn encode_lockstep(
    worker: &mut Worker,
    quantizer: Quantizer,
    blocks: &[&[u8]],
    (filtered, from_dict, makes_dict): (&[bool], &[bool], &[bool]),
    plain: bool,
    stop: Option<usize>,
) -> Result<(Vec<Vec<u8>>, Vec<usize>), Error> {
    let predictor = worker.predictor.as_mut();
    let mut encoders: Vec<RangeEncoder> = Vec::with_capacity(blocks.len());
    for (lane, block) in blocks.iter().enumerate() {
        if filtered[lane] {
            predictor.set_lane_x86(lane);
        }
        if from_dict[lane] {
            predictor.set_lane_from_dict(lane);
        }
        if makes_dict.get(lane) == Some(&true) {
            predictor.set_lane_makes_dict(lane);
        }
        if !plain {
            predictor.reset_lane(lane, block.len());
        } else if !predictor.reset_lane_plain(lane, block.len()) {
            return Err(Error::InvalidConfig {
                what: "plain blocks without a neural expert".into(),
            });
        }
        encoders.push(RangeEncoder::new());
        debug_assert!(!block.is_empty());
    }
    let longest = blocks.iter().map(|b| b.len()).max().unwrap_or(0);
    let longest = stop.map_or(longest, |stop| longest.min(stop));
    let mut active: Vec<usize> = (0..blocks.len()).collect();
    let mut bytes = vec![0u8; blocks.len()];
    let mut at_probe = vec![0usize; blocks.len()];
    let mut table = FreqTable::new(quantizer.bits());
    let nibbles = predictor.codes_nibbles();
    let bits = predictor.codes_bits();
    let mut low = [0u32; 16];
    for t in 0..longest {
        if t == PLAIN_PROBE {
            for (at, e) in at_probe.iter_mut().zip(&encoders) {
                *at = e.len();
            }
        }
        active.retain(|&lane| t < blocks[lane].len());
        predictor.predict(&active, &mut worker.weights)?;
        for (i, &lane) in active.iter().enumerate() {
            let byte = blocks[lane][t];
            if bits {
                let mut c0 = 1;
                for j in (0..8).rev() {
                    let bit = (byte >> j) & 1;
                    encoders[lane].encode_bit(predictor.predict_bit(lane, c0), bit != 0);
                    c0 = (c0 << 1) | usize::from(bit);
                }
            } else if nibbles {
                quantizer.quantize(&worker.weights[i][..16], &mut table);
                encoders[lane].encode(&table, byte >> 4);
                predictor.predict_low(lane, byte >> 4, &mut low);
                quantizer.quantize(&low, &mut table);
                encoders[lane].encode(&table, byte & 15);
            } else {
                quantizer.quantize(&worker.weights[i], &mut table);
                encoders[lane].encode(&table, byte);
            }
            bytes[i] = byte;
        }
        predictor.update(&active, &bytes[..active.len()]);
    }
    Ok((
        encoders.into_iter().map(RangeEncoder::finish).collect(),
        at_probe,
    ))
}

/// Why a worker's batch failed to decode.
enum DecodeFailure {
    /// Block `.0` is bad: its range code (`.1 == true`) or its checksum failed.
    Block(usize, bool),
    /// The predictor failed.
    Predictor(Error),
}

/// Decodes one worker's blocks in lockstep into `outs`.
fn decode_lockstep(
    worker: &mut Worker,
    quantizer: Quantizer,
    padded: bool,
    blocks: &[(BlockHeader, &[u8])],
    outs: &mut [&mut [u8]],
) -> Result<(), DecodeFailure> {
    let predictor = worker.predictor.as_mut();
    // Stored blocks need no predictor; coded ones take lanes 0.. in order.
    let mut coded: Vec<usize> = Vec::new();
    let mut decoders: Vec<RangeDecoder<'_>> = Vec::new();
    for (i, (h, payload)) in blocks.iter().enumerate() {
        match h.kind {
            BlockKind::Stored => outs[i].copy_from_slice(payload),
            BlockKind::Light => {
                if !light::decode(payload, outs[i]) {
                    return Err(DecodeFailure::Block(i, true));
                }
            }
            _ => {
                let lane = coded.len();
                if h.flags & FLAG_X86 != 0 {
                    predictor.set_lane_x86(lane);
                }
                if h.flags & FLAG_FROM_DICT != 0 {
                    predictor.set_lane_from_dict(lane);
                }
                if h.flags & FLAG_DICT != 0 {
                    predictor.set_lane_makes_dict(lane);
                }
                if h.flags & FLAG_NO_NEURAL == 0 {
                    predictor.reset_lane(lane, h.raw_len as usize);
                } else if !predictor.reset_lane_plain(lane, h.raw_len as usize) {
                    // The reader refuses such a block before it gets here.
                    return Err(DecodeFailure::Block(i, true));
                }
                coded.push(i);
                decoders.push(RangeDecoder::new(payload));
            }
        }
    }
    let longest = coded
        .iter()
        .map(|&i| blocks[i].0.raw_len as usize)
        .max()
        .unwrap_or(0);
    let mut active: Vec<usize> = (0..coded.len()).collect();
    let mut bytes = vec![0u8; coded.len()];
    let mut table = FreqTable::new(quantizer.bits());
    let nibbles = predictor.codes_nibbles();
    let bits = predictor.codes_bits();
    let mut low = [0u32; 16];
    for t in 0..longest {
        active.retain(|&lane| t < outs[coded[lane]].len());
        predictor
            .predict(&active, &mut worker.weights)
            .map_err(DecodeFailure::Predictor)?;
        for (i, &lane) in active.iter().enumerate() {
            let byte = if bits {
                let mut c0 = 1;
                while c0 < 256 {
                    let p1 = predictor.predict_bit(lane, c0);
                    c0 = (c0 << 1) | usize::from(decoders[lane].decode_bit(p1));
                }
                (c0 - 256) as u8
            } else if nibbles {
                quantizer.quantize(&worker.weights[i][..16], &mut table);
                let high = decoders[lane].decode(&table);
                predictor.predict_low(lane, high, &mut low);
                quantizer.quantize(&low, &mut table);
                (high << 4) | decoders[lane].decode(&table)
            } else {
                quantizer.quantize(&worker.weights[i], &mut table);
                decoders[lane].decode(&table)
            };
            if decoders[lane].is_corrupt() {
                // Out of payload or out of range: no valid block gets here, and running on
                // to the length the block claims would let a few bytes of input cost
                // minutes of work.
                return Err(DecodeFailure::Block(coded[lane], true));
            }
            outs[coded[lane]][t] = byte;
            bytes[i] = byte;
        }
        predictor.update(&active, &bytes[..active.len()]);
    }
    let mut lanes = decoders.iter();
    for (i, (h, _)) in blocks.iter().enumerate() {
        let clean = |d: &RangeDecoder<'_>| {
            if padded {
                d.finished_before_padding()
            } else {
                d.finished_cleanly()
            }
        };
        if h.kind == BlockKind::Coded && !lanes.next().is_some_and(clean) {
            return Err(DecodeFailure::Block(i, true));
        }
        if h.flags & FLAG_X86 != 0 {
            filter::decode(outs[i]);
        }
        if crc32fast::hash(outs[i]) != h.crc {
            return Err(DecodeFailure::Block(i, false));
        }
    }
    Ok(())
}
