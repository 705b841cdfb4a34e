//! Neural expert: a byte-level GRU run with tract. The only module that imports tract.
//!
//! ```text
//! h_q[lanes, H] --tract MatMul--> mm[lanes, 3H+256]   integer-valued f32: exact on every CPU
//! mm[.., 3H..]  -> logits -> deterministic softmax -> integer weights   (predict)
//! mm[.., ..3H] + input_table[byte] -> GRU gates -> new h -> h_q        (update)
//! ```
//!
//! Why this split: tract's float kernels give different results on different instruction
//! sets (summation order, FMA). So the plan only ever computes `h_q x W_q` where both
//! operands hold integers in [-127, 127]: every product and partial sum is an integer below
//! `H * 127^2 < 2^24`, exactly representable in f32, so no kernel ever rounds and all agree
//! bit for bit (checked at load: `H <= 1040`). The plan is tract's, with the matmul node
//! replaced by this crate's integer operator (`int8`, over `super::matvec`), which computes
//! the same exact sums from `i8` weights. Every float operation after the matmul is
//! plain Rust with `+ - * /`, `floor` and
//! `round_ties_even` (all exactly rounded by IEEE 754, and Rust never fuses them into FMAs)
//! plus our own `exp`: the same bits on every machine, thread count and lane placement.
//!
//! The ONNX file is written by `onnx-models/export.py`, which documents its inputs and
//! outputs.

use std::fmt;
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use super::matvec::{PackedMatrix, MAX_ROWS};
use super::{Predictor, Weights};
use crate::error::Error;
use crate::format::{SEEN_COLUMNS_VERSION, SUMMED_SLOPE_VERSION};

/// The default model, embedded in the binary (see `onnx-models/README.md`).
const DEFAULT_MODEL: &[u8] = include_bytes!("../../onnx-models/nc-gru256.onnx");

/// The plan tract runs: the matmul alone, for a fixed lane count.
type Plan = Arc<TypedRunnableModel>;

/// A loaded byte model: its identity and the constant tables the Rust side needs.
pub struct NeuralModel {
    /// Name stored in stream headers.
    name: [u8; 16],
    /// SHA-256 of the ONNX bytes, stored in stream headers.
    fingerprint: [u8; 32],
    /// Hidden size `H`.
    hidden: usize,
    /// The parsed model, before the lane count is fixed.
    graph: InferenceModel,
    /// `input_table[byte * 3H + j]`: the GRU's input half for each byte.
    input_table: Vec<f32>,
    /// Recurrent bias, `3H`.
    hidden_bias: Vec<f32>,
    /// Per-column dequantisation factor `col_scale / 127`, `3H + 256`.
    col_factor: Vec<f32>,
    /// Output bias, 256.
    out_bias: Vec<f32>,
    /// The matmul's weights as `i8`, when they are integers in `[-127, 127]` (every model
    /// `export.py` writes): what the plans multiply by.
    packed: Option<Arc<PackedMatrix>>,
}

impl fmt::Debug for NeuralModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NeuralModel")
            .field("name", &self.name_str())
            .field("hidden", &self.hidden)
            .field("fingerprint", &hex(&self.fingerprint))
            .finish()
    }
}

impl PartialEq for NeuralModel {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Eq for NeuralModel {}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn model_error(what: impl fmt::Display) -> Error {
    Error::Model {
        what: what.to_string(),
    }
}

impl NeuralModel {
    /// The model embedded in the binary.
    ///
    /// # Errors
    /// Never for a correctly built crate; `InvalidData` if the embedded file is damaged.
    pub fn default_model() -> Result<Arc<NeuralModel>, Error> {
        static DEFAULT: OnceLock<Result<Arc<NeuralModel>, String>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Self::from_bytes(DEFAULT_MODEL)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(model_error)
    }

    /// Loads a model from an ONNX file.
    ///
    /// # Errors
    /// The file's I/O errors; `InvalidData` when it is not a model for nc.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> std::io::Result<NeuralModel> {
        let bytes = std::fs::read(path)?;
        Ok(Self::from_bytes(&bytes)?)
    }

    /// Loads a model from the bytes of an ONNX file written by `onnx-models/export.py`.
    ///
    /// # Errors
    /// `InvalidData` when the bytes are not such a model.
    pub fn from_bytes(bytes: &[u8]) -> Result<NeuralModel, Error> {
        let onnx = tract_onnx::onnx();
        let proto = onnx
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| model_error(format!("not an ONNX model: {e}")))?;
        let prop = |key: &str| {
            proto
                .metadata_props
                .iter()
                .find(|p| p.key == key)
                .map(|p| p.value.clone())
        };
        let name_str = prop("nc.name").ok_or_else(|| model_error("no nc.name property"))?;
        // H * 127^2 < 2^24 keeps the f32 matmul exact (see the module docs).
        let hidden: usize = prop("nc.hidden")
            .and_then(|h| h.parse().ok())
            .filter(|h| (1..=MAX_ROWS).contains(h))
            .ok_or_else(|| model_error(format!("no nc.hidden property in 1..={MAX_ROWS}")))?;
        let mut name = [0u8; 16];
        if name_str.len() > 16 || !name_str.is_ascii() || name_str.is_empty() {
            return Err(model_error("nc.name must be 1 to 16 ASCII bytes"));
        }
        name[..name_str.len()].copy_from_slice(name_str.as_bytes());
        let graph = onnx
            .model_for_proto_model(&proto)
            .map_err(|e| model_error(format!("cannot import: {e:#}")))?;
        let mut model = NeuralModel {
            name,
            fingerprint: Sha256::digest(bytes).into(),
            hidden,
            graph,
            input_table: Vec::new(),
            hidden_bias: Vec::new(),
            col_factor: Vec::new(),
            out_bias: Vec::new(),
            packed: None,
        };
        // The constant outputs do not depend on the input: read them from one run.
        let plan = model.plan(1, None)?;
        let outputs = plan
            .run(tvec![Tensor::zero::<f32>(&[1, hidden])
                .map_err(model_error)?
                .into_tvalue()])
            .map_err(|e| model_error(format!("cannot run: {e:#}")))?;
        let floats = |i: usize, len: usize, what: &str| -> Result<Vec<f32>, Error> {
            let v = outputs
                .get(i)
                .and_then(|t| t.try_as_plain_ram().ok())
                .and_then(|v| v.as_slice::<f32>().ok())
                .ok_or_else(|| model_error(format!("output {i} ({what}) is not f32")))?;
            if v.len() != len || v.iter().any(|x| !x.is_finite()) {
                return Err(model_error(format!(
                    "output {i} ({what}) has the wrong shape"
                )));
            }
            Ok(v.to_vec())
        };
        model.input_table = floats(1, 256 * 3 * hidden, "input_table")?;
        model.hidden_bias = floats(2, 3 * hidden, "hidden_bias")?;
        model.col_factor = floats(3, 3 * hidden + 256, "col_scale")?
            .into_iter()
            .map(|s| s / 127.0)
            .collect();
        model.out_bias = floats(4, 256, "out_bias")?;
        model.packed = int8::weights(&model.graph, hidden)
            .map_err(|e| model_error(format!("cannot read the weights: {e:#}")))?
            .map(Arc::new);
        Ok(model)
    }

    /// An optimised plan for `lanes` lanes; with `matmul_only` (a place for the runs to
    /// hand back their outputs), the constant outputs are cut so each run computes nothing
    /// but the matmul, and the matmul is this crate's integer operator
    /// ([`int8::MatVecI8`]) where the weights allow it.
    fn plan(&self, lanes: usize, matmul_only: Option<&int8::Spare>) -> Result<Plan, Error> {
        let plan_error =
            |e: TractError| model_error(format!("cannot plan for {lanes} lanes: {e:#}"));
        let mut graph = self.graph.clone();
        if matmul_only.is_some() {
            let mm = graph
                .output_outlets()
                .ok()
                .and_then(|o| o.first().copied())
                .ok_or_else(|| model_error("no outputs"))?;
            graph
                .select_output_outlets(&[mm])
                .map_err(|e| model_error(format!("cannot select the matmul: {e:#}")))?;
        }
        let mut typed = graph
            .with_input_fact(0, f32::fact([lanes, self.hidden]).into())
            .and_then(|m| m.into_typed())
            .and_then(|m| m.into_decluttered())
            .map_err(plan_error)?;
        if let Some(spare) = matmul_only {
            if let Some(weights) = &self.packed {
                int8::substitute(&mut typed, weights, spare).map_err(plan_error)?;
            }
        }
        typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(plan_error)
    }

    /// Name stored in stream headers.
    pub fn name(&self) -> [u8; 16] {
        self.name
    }

    /// The name as text.
    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(&self.name)
            .trim_end_matches('\0')
            .to_string()
    }

    /// SHA-256 of the model file.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Hidden size.
    pub fn hidden(&self) -> usize {
        self.hidden
    }
}

/// `e^x`, deterministic: range reduction by `ln 2` and a degree-7 polynomial, using only
/// exactly rounded operations and exact conversions (no libm call, so loops over it
/// vectorise). Relative error below 1e-6 on the range used here.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    // k = floor(x * log2(e) + 0.5), via an exact truncating conversion.
    let y = x * LOG2E + 0.5;
    // `as i32` would saturate, which the compiler does lane by lane; after the clamp `y` is
    // within `i32` or NaN (which `as` made 0), so the plain conversion gives the same.
    let t = if y.is_nan() {
        0
    } else {
        // SAFETY: `y` is finite and within [-126, 128] after the clamp above.
        #[allow(unsafe_code)]
        unsafe {
            y.to_int_unchecked::<i32>()
        }
    };
    let k = t - i32::from(y < t as f32);
    let kf = k as f32;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^k by building the exponent bits; k is in [-126, 127] after the clamp.
    p * f32::from_bits(((k + 127) as u32) << 23)
}

/// Rounds to the nearest integer, ties to even, for `|x| < 2^22`: adding and subtracting
/// 1.5 * 2^23 leaves no fraction bits, and IEEE round-to-nearest-even does the rest.
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// `v as u32` for `v` in `[0, 2^31)`, 0 for NaN and below, as the compiler can do it
/// sixteen lanes at a time (`as` saturates lane by lane); softmax weights are at most
/// [`WEIGHT_ONE`].
#[inline(always)]
fn to_weight(v: f32) -> u32 {
    if v > 0.0 {
        let v = if v < 2_147_483_520.0 {
            v
        } else {
            2_147_483_520.0
        };
        // SAFETY: `v` is in (0, 2^31), so it truncates to an `i32` in range.
        #[allow(unsafe_code)]
        let t = unsafe { v.to_int_unchecked::<i32>() };
        t as u32
    } else {
        0
    }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    2.0 * sigmoid(2.0 * x) - 1.0
}

/// Scale of the softmax weights handed to the quantizer (the largest is `2^22`).
const WEIGHT_ONE: f32 = (1u32 << 22) as f32;

/// Columns of the online layer's correction per tile of its pass (see `Adapt::settle`).
const TILE: usize = 32;
/// Floats per vector register with AVX-512.
const V: usize = 16;

/// A tile as register-sized arrays, which the compiler keeps in registers.
#[inline(always)]
fn vectors(tile: &[f32]) -> [[f32; V]; TILE / V] {
    let mut v = [[0.0; V]; TILE / V];
    for (v, t) in v.iter_mut().zip(tile.chunks_exact(V)) {
        v.copy_from_slice(t);
    }
    v
}

/// Learning rate of the output layer's online correction (format version 4): one step of
/// plain gradient descent on the coding cost per byte. Chosen on the training corpus's
/// held-out split (`onnx-models/README.md` has the commands and the table): 0.004 codes it
/// smallest of 0.002, 0.003 and 0.004; long uniform prose prefers less (book1), text that
/// changes subject more.
const ADAPT_RATE: f32 = 0.004;

/// The first format version whose neural expert adapts its output layer to the block.
const ADAPT_VERSION: u16 = 4;

/// The first format version whose online layer takes normalised steps and also learns the
/// trained logits' scale ([`Rule::Normalised`]).
const NORMALISED_VERSION: u16 = 8;

/// Format version 8's step size: each output's step is its error divided by the root mean
/// square of its recent errors, times this.
const NORM_RATE: f32 = 0.0004;
/// Decay of each output's mean squared error: it spans about `1 / (1 - NORM_DECAY)` bytes.
const NORM_DECAY: f32 = 0.9999;
/// Added to the mean squared error before its root, so an output that has not erred yet
/// does not take an unbounded step.
const NORM_EPSILON: f32 = 0.0001;
/// Learning rate of the scale of the trained logits (format version 8): an online
/// temperature, which corrects the trained model's over- or under-confidence on the block.
const SCALE_RATE: f32 = 0.003;

/// How the online output layer steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Versions 4 to 7: plain gradient descent at [`ADAPT_RATE`].
    Plain,
    /// Version 8 on: each output's gradient divided by the root of its running mean square
    /// (RMSprop), so rare bytes learn as fast as common ones and the step shrinks where an
    /// output keeps erring noisily; plus an online scale of the trained logits.
    Normalised,
}

/// Dynamic evaluation of the output layer: a correction `delta` (`H x 256`: hidden unit `i`'s
/// weight for output `s`, stored by tiles of `TILE` outputs, see `settle`) and `delta_bias` added to the trained logits, learned per lane from
/// the bytes of the block as they are coded, and cleared at each block start. The trained
/// model knows language; this learns the block (its names, its words, its markup). All of
/// it is element-wise f32 `+` and `*` in a fixed order, so every machine computes the same
/// bits.
struct Adapt {
    /// `lanes * H * 256`.
    delta: Vec<f32>,
    /// `lanes * 256`.
    delta_bias: Vec<f32>,
    /// Per lane: the softmax numerators of the last prediction and their sum.
    numerators: Vec<f32>,
    sums: Vec<f32>,
    /// Per lane: the step `delta` still owes (`delta[i] += step * owed_state[i]`), made
    /// in the pass of the next correction: `delta` is 256 KiB per lane for `H = 256`,
    /// more than a core's cache holds for several lanes, so it is read once per byte,
    /// not twice. Every element sees the same operations in the same order either way.
    step: Vec<f32>,
    owed_state: Vec<f32>,
    owed: Vec<bool>,
    /// Scratch: the correction of one lane.
    scratch: Vec<f32>,
    rule: Rule,
    /// [`Rule::Normalised`] only, per lane: the scale of the trained logits (1 at a block
    /// start), the trained logits of the last prediction (`256`), and each output's
    /// running mean squared error (`256`, 0 at a block start).
    scale: Vec<f32>,
    trained: Vec<f32>,
    mean_square: Vec<f32>,
    /// Version 11 on: `delta` has a column only for each byte value that has occurred in
    /// the block, in the order they first occurred, and the pass over it reads only those
    /// (text uses a third of the 256). Per lane: each byte's column (`NO_COLUMN` for none
    /// yet), each column's byte, and the count of columns.
    seen: bool,
    /// Version [`SUMMED_SLOPE_VERSION`] on: the scale's slope is summed in eight running
    /// sums ([`sum`]) rather than one, a chain of 256 dependent additions.
    summed_slope: bool,
    column_of: Vec<u16>,
    byte_of: Vec<u8>,
    columns: Vec<usize>,
}

/// [`Adapt::column_of`] of a byte that has not occurred in the block.
const NO_COLUMN: u16 = u16::MAX;

impl Adapt {
    fn new(lanes: usize, hidden: usize, rule: Rule, version: u16) -> Adapt {
        let per_lane = |n: usize, v: f32| match rule {
            Rule::Plain => Vec::new(),
            Rule::Normalised => vec![v; lanes * n],
        };
        Adapt {
            seen: version >= SEEN_COLUMNS_VERSION,
            summed_slope: version >= SUMMED_SLOPE_VERSION,
            column_of: vec![NO_COLUMN; lanes * 256],
            byte_of: vec![0; lanes * 256],
            columns: vec![0; lanes],
            rule,
            scale: per_lane(1, 1.0),
            trained: per_lane(256, 0.0),
            mean_square: per_lane(256, 0.0),
            delta: vec![0.0; lanes * hidden * 256],
            delta_bias: vec![0.0; lanes * 256],
            numerators: vec![0.0; lanes * 256],
            sums: vec![1.0; lanes],
            step: vec![0.0; lanes * 256],
            owed_state: vec![0.0; lanes * hidden],
            owed: vec![false; lanes],
            scratch: vec![0.0; 256],
        }
    }

    fn reset_lane(&mut self, lane: usize, hidden: usize) {
        self.delta[lane * hidden * 256..(lane + 1) * hidden * 256].fill(0.0);
        self.delta_bias[lane * 256..(lane + 1) * 256].fill(0.0);
        self.owed[lane] = false;
        self.column_of[lane * 256..(lane + 1) * 256].fill(NO_COLUMN);
        self.columns[lane] = 0;
        if self.rule == Rule::Normalised {
            self.scale[lane] = 1.0;
            self.mean_square[lane * 256..(lane + 1) * 256].fill(0.0);
        }
    }

    /// Scales lane `lane`'s trained logits by its learned scale (version 8 on), keeping
    /// them for the scale's next step.
    #[inline(always)]
    fn scale_trained(&mut self, lane: usize, logits: &mut [f32]) {
        if self.rule == Rule::Normalised {
            let k = self.scale[lane];
            for (t, l) in self.trained[lane * 256..(lane + 1) * 256]
                .iter_mut()
                .zip(logits.iter_mut())
            {
                *t = *l;
                *l *= k;
            }
        }
    }

    /// Makes lane `lane`'s owed step, and with `state` also computes its correction for
    /// that state into `scratch`, in one pass over `delta`.
    #[inline(always)]
    fn settle(&mut self, lane: usize, hidden: usize, state: Option<&[f32]>) {
        let z = &mut self.scratch;
        let bias = &self.delta_bias[lane * 256..(lane + 1) * 256];
        // Columns in use (all 256 before version 11), in whole tiles: a column past the
        // last byte seen holds zeros and steps by zero.
        let used = if self.seen {
            self.columns[lane].div_ceil(TILE) * TILE
        } else {
            256
        };
        if self.seen {
            // `z` in column order: each seen byte's bias, then its sum below.
            let bytes = &self.byte_of[lane * 256..(lane + 1) * 256];
            for (z, &b) in z.iter_mut().zip(bytes).take(used) {
                *z = bias[usize::from(b)];
            }
        } else {
            z.copy_from_slice(bias);
        }
        let owed = self.owed[lane].then(|| {
            (
                &self.step[lane * 256..(lane + 1) * 256],
                &self.owed_state[lane * hidden..(lane + 1) * hidden],
            )
        });
        self.owed[lane] = false;
        let delta = &mut self.delta[lane * hidden * 256..(lane + 1) * hidden * 256];
        // Column tiles, so a tile of `z` (and of the step) stays in registers down all the
        // rows; each element still sees its rows in order, so the bits are the same. One
        // loop per case keeps the branch out of the rows.
        // `delta` is stored tile after tile (each tile `H x TILE`, row after row), so the
        // pass over the tiles in use streams through one contiguous range.
        for (t, tile) in (0..used)
            .step_by(TILE)
            .zip(delta.chunks_exact_mut(hidden * TILE))
        {
            let rows = tile.chunks_exact_mut(TILE);
            match (owed, state) {
                (Some((step, owed_state)), Some(state)) => {
                    let g = vectors(&step[t..t + TILE]);
                    let mut acc = vectors(&z[t..t + TILE]);
                    for (row, (&so, &s)) in rows.zip(owed_state.iter().zip(state)) {
                        for ((d, g), a) in row.chunks_exact_mut(V).zip(&g).zip(&mut acc) {
                            for k in 0..V {
                                d[k] += g[k] * so;
                                a[k] += d[k] * s;
                            }
                        }
                    }
                    for (z, a) in z[t..t + TILE].chunks_exact_mut(V).zip(&acc) {
                        z.copy_from_slice(a);
                    }
                }
                (Some((step, owed_state)), None) => {
                    let g = vectors(&step[t..t + TILE]);
                    for (row, &so) in rows.zip(owed_state) {
                        for (d, g) in row.chunks_exact_mut(V).zip(&g) {
                            for k in 0..V {
                                d[k] += g[k] * so;
                            }
                        }
                    }
                }
                (None, Some(state)) => {
                    let mut acc = vectors(&z[t..t + TILE]);
                    for (row, &s) in rows.zip(state) {
                        for (d, a) in row.chunks_exact(V).zip(&mut acc) {
                            for k in 0..V {
                                a[k] += d[k] * s;
                            }
                        }
                    }
                    for (z, a) in z[t..t + TILE].chunks_exact_mut(V).zip(&acc) {
                        z.copy_from_slice(a);
                    }
                }
                (None, None) => {}
            }
        }
        if self.seen && state.is_some() {
            // Back to byte order; a byte not seen yet has its bias alone.
            let mut by_byte = [0.0f32; 256];
            let columns = &self.column_of[lane * 256..(lane + 1) * 256];
            for ((c, &col), &b) in by_byte.iter_mut().zip(columns).zip(bias) {
                *c = if col == NO_COLUMN {
                    b
                } else {
                    z[usize::from(col)]
                };
            }
            z.copy_from_slice(&by_byte);
        }
    }

    /// The correction of lane `lane` for hidden state `state`.
    #[inline(always)]
    fn correction(&mut self, lane: usize, state: &[f32]) -> &[f32] {
        self.settle(lane, state.len(), Some(state));
        &self.scratch
    }

    /// One gradient step for lane `lane`, whose state was `state` when it predicted
    /// `numerators`, after byte `byte`: the cost's gradient is `p - onehot(byte)`. The
    /// bias learns now, `delta` in the next pass over it.
    #[inline(always)]
    fn learn(&mut self, lane: usize, state: &[f32], byte: u8) {
        let h = state.len();
        if self.owed[lane] {
            self.settle(lane, h, None);
        }
        let g = &mut self.step[lane * 256..(lane + 1) * 256];
        let numerators = &self.numerators[lane * 256..(lane + 1) * 256];
        let x = usize::from(byte);
        match self.rule {
            Rule::Plain => {
                let scale = ADAPT_RATE / self.sums[lane];
                for (g, &e) in g.iter_mut().zip(numerators) {
                    *g = -(e * scale);
                }
                g[x] += ADAPT_RATE;
            }
            Rule::Normalised => {
                let inv = 1.0 / self.sums[lane];
                // The scale's gradient: E_p[trained] - trained[x], summed in order.
                let trained = &self.trained[lane * 256..(lane + 1) * 256];
                let mut slope = -trained[x];
                if self.summed_slope {
                    let mut terms = [0.0f32; 256];
                    for ((t, &e), &a) in terms.iter_mut().zip(numerators).zip(trained) {
                        *t = e * inv * a;
                    }
                    slope += sum(&terms);
                } else {
                    for (&e, &a) in numerators.iter().zip(trained) {
                        slope += e * inv * a;
                    }
                }
                self.scale[lane] -= SCALE_RATE * slope;
                for (g, &e) in g.iter_mut().zip(numerators) {
                    *g = e * inv;
                }
                let mean_square = &mut self.mean_square[lane * 256..(lane + 1) * 256];
                g[x] -= 1.0;
                for (g, m) in g.iter_mut().zip(mean_square.iter_mut()) {
                    *m = NORM_DECAY * *m + (1.0 - NORM_DECAY) * *g * *g;
                    *g = -(NORM_RATE * *g / (*m + NORM_EPSILON).sqrt());
                }
            }
        }
        for (b, &g) in self.delta_bias[lane * 256..(lane + 1) * 256]
            .iter_mut()
            .zip(g.iter())
        {
            *b += g;
        }
        if self.seen {
            // `x` has occurred: it gets a column (zeros so far) and steps with the others;
            // the step goes to `delta` in column order.
            let columns = &mut self.column_of[lane * 256..(lane + 1) * 256];
            let bytes = &mut self.byte_of[lane * 256..(lane + 1) * 256];
            let n = &mut self.columns[lane];
            if columns[x] == NO_COLUMN {
                columns[x] = *n as u16;
                bytes[*n] = byte;
                *n += 1;
            }
            let g = &mut self.step[lane * 256..(lane + 1) * 256];
            let mut by_column = [0.0f32; 256];
            for (c, &b) in by_column.iter_mut().zip(&bytes[..*n]) {
                *c = g[usize::from(b)];
            }
            g.copy_from_slice(&by_column);
        }
        self.owed_state[lane * h..(lane + 1) * h].copy_from_slice(state);
        self.owed[lane] = true;
    }
}

/// Sum of `v` in a fixed order (eight running sums, then those in order): vectorises, and
/// gives the same bits on every machine.
#[inline(always)]
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let mut total = 0.0;
    for a in acc.into_iter().chain(rest.iter().copied()) {
        total += a;
    }
    total
}

/// The neural expert over a fixed number of lanes.
pub struct NeuralExpert {
    model: Arc<NeuralModel>,
    /// `states[k]`: the run state of a plan for `k` rows, built when `k` lanes are first
    /// active together and kept, so each step allocates nothing in tract. Only the active
    /// lanes' rows are multiplied: a file of one block runs one row, not `lanes`. Rows are
    /// exact integers whatever their neighbours, so packing changes no result.
    states: Vec<Option<TypedSimpleState>>,
    /// The last run's input and output, kept so the next run writes into them instead of
    /// allocating: tract keeps no reference to either once a run returns.
    input: Option<Arc<Tensor>>,
    spare: int8::Spare,
    lanes: usize,
    /// `1 / temperature`.
    inv_temperature: f32,
    /// Hidden state per lane, `lanes * H`.
    h: Vec<f32>,
    /// Quantised hidden state per lane (integers in [-127, 127]), the matmul input.
    h_q: Vec<f32>,
    /// Recurrent half of the gates from the last `predict`, `lanes * 3H`.
    gh: Vec<f32>,
    /// Scratch logits.
    logits: Vec<f32>,
    /// The output layer's online correction (format version 4 on).
    adapt: Option<Adapt>,
}

impl NeuralExpert {
    /// An upper bound on the memory of an expert over `lanes` lanes of a model of hidden
    /// size `hidden`: a plan per active-lane count (tract keeps the weights packed in each,
    /// counted twice over), and per lane the state and the online output layer.
    pub(crate) fn memory(hidden: usize, lanes: usize) -> u64 {
        let weights = ((3 * hidden + 256) * hidden * std::mem::size_of::<f32>()) as u64;
        let input_table = (256 * 3 * hidden * std::mem::size_of::<f32>()) as u64;
        let per_lane = ((hidden * 256 + 6 * 256 + 6 * hidden) * std::mem::size_of::<f32>()) as u64;
        (lanes as u64 + 2) * 2 * weights + input_table + lanes as u64 * per_lane + (1 << 20)
    }

    /// An expert over `lanes` lanes, as this build writes it
    /// ([`crate::container::VERSION`]); `temperature` in Q8.8 (256 = 1.0).
    ///
    /// # Errors
    /// `InvalidData` when tract cannot plan the model.
    pub fn new(model: Arc<NeuralModel>, lanes: usize, temperature: u16) -> Result<Self, Error> {
        Self::for_version(crate::container::VERSION, model, lanes, temperature)
    }

    /// [`NeuralExpert::new`] with the arithmetic of format `version`: before version 4 the
    /// expert is the trained model alone, with no online correction.
    ///
    /// # Errors
    /// `InvalidData` when tract cannot plan the model.
    pub fn for_version(
        version: u16,
        model: Arc<NeuralModel>,
        lanes: usize,
        temperature: u16,
    ) -> Result<Self, Error> {
        let h = model.hidden;
        let mut states: Vec<Option<TypedSimpleState>> = (0..=lanes).map(|_| None).collect();
        let spare = int8::Spare::default();
        // The full-width plan now, so a model tract cannot plan fails here, not mid-stream.
        states[lanes] = Some(
            model
                .plan(lanes, Some(&spare))?
                .spawn()
                .map_err(model_error)?,
        );
        Ok(NeuralExpert {
            states,
            input: None,
            spare,
            lanes,
            inv_temperature: 256.0 / f32::from(temperature.max(1)),
            h: vec![0.0; lanes * h],
            h_q: vec![0.0; lanes * h],
            gh: vec![0.0; lanes * 3 * h],
            logits: vec![0.0; 256],
            adapt: (version >= ADAPT_VERSION).then(|| {
                let rule = if version >= NORMALISED_VERSION {
                    Rule::Normalised
                } else {
                    Rule::Plain
                };
                Adapt::new(lanes, h, rule, version)
            }),
            model,
        })
    }

    /// Runs the matmul for the current states of `lanes`, one output row per lane in order.
    fn run(&mut self, lanes: &[usize]) -> Result<TValue, Error> {
        let h = self.model.hidden;
        let k = lanes.len();
        let mut input = match self.input.take() {
            Some(t) if t.shape() == [k, h] => t,
            // SAFETY: `f32` has no invalid bit patterns, and every element is written below.
            #[allow(unsafe_code)]
            _ => Arc::new(unsafe { Tensor::uninitialized::<f32>(&[k, h]) }.map_err(model_error)?),
        };
        {
            let mut plain = Arc::make_mut(&mut input)
                .try_as_plain_ram_mut()
                .map_err(model_error)?;
            let rows = plain.as_slice_mut::<f32>().map_err(model_error)?;
            for (row, &lane) in rows.chunks_exact_mut(h).zip(lanes) {
                row.copy_from_slice(&self.h_q[lane * h..(lane + 1) * h]);
            }
        }
        let state = match &mut self.states[k] {
            Some(state) => state,
            slot => slot.insert(
                self.model
                    .plan(k, Some(&self.spare))?
                    .spawn()
                    .map_err(model_error)?,
            ),
        };
        let mut out = state
            .run(tvec![input.clone().into_tvalue()])
            .map_err(|e| model_error(format!("model run failed: {e:#}")))?;
        self.input = Some(input);
        if out.is_empty() {
            return Err(model_error("model has no outputs"));
        }
        Ok(out.swap_remove(0))
    }
}

impl Predictor for NeuralExpert {
    fn lanes(&self) -> usize {
        self.lanes
    }

    fn reset_lane(&mut self, lane: usize, _block_len: usize) {
        let h = self.model.hidden;
        self.h[lane * h..(lane + 1) * h].fill(0.0);
        self.h_q[lane * h..(lane + 1) * h].fill(0.0);
        if let Some(a) = &mut self.adapt {
            a.reset_lane(lane, h);
        }
    }

    fn predict(&mut self, lanes: &[usize], out: &mut [Weights]) -> Result<(), Error> {
        if lanes.is_empty() {
            return Ok(());
        }
        let mm_value = self.run(lanes)?;
        let mm = mm_value
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(model_error)?;
        let m = &*self.model;
        let h = m.hidden;
        let width = 3 * h + 256;
        if mm.len() != lanes.len() * width {
            return Err(model_error("matmul output has the wrong shape"));
        }
        crate::wide::run(
            #[inline(always)]
            || self.predict_rows(lanes, out, mm),
        );
        self.spare.give_back(mm_value);
        Ok(())
    }

    fn update(&mut self, lanes: &[usize], bytes: &[u8]) {
        crate::wide::run(
            #[inline(always)]
            || self.update_rows(lanes, bytes),
        );
    }
}

impl NeuralExpert {
    /// The element-wise half of [`Predictor::predict`], from the matmul's rows `mm`.
    #[inline(always)]
    fn predict_rows(&mut self, lanes: &[usize], out: &mut [Weights], mm: &[f32]) {
        let m = &*self.model;
        let h = m.hidden;
        let width = 3 * h + 256;
        for ((&lane, weights), row) in lanes.iter().zip(out.iter_mut()).zip(mm.chunks_exact(width))
        {
            let gh = &mut self.gh[lane * 3 * h..(lane + 1) * 3 * h];
            for ((g, &v), (&f, &b)) in gh
                .iter_mut()
                .zip(&row[..3 * h])
                .zip(m.col_factor[..3 * h].iter().zip(&m.hidden_bias))
            {
                *g = v * f + b;
            }
            for ((l, &v), (&f, &b)) in self
                .logits
                .iter_mut()
                .zip(&row[3 * h..])
                .zip(m.col_factor[3 * h..].iter().zip(&m.out_bias))
            {
                *l = v * f + b;
            }
            if let Some(a) = &mut self.adapt {
                a.scale_trained(lane, &mut self.logits);
                let z = a.correction(lane, &self.h[lane * h..(lane + 1) * h]);
                for (l, &z) in self.logits.iter_mut().zip(z) {
                    *l += z;
                }
            }
            // The largest logit, by lanes of 16 (a comparison, not `f32::max`, whose NaN
            // rule keeps the compiler from vectorising). Only a tie of -0 and +0 can pick
            // differently, and `exp` of either zero is 1, so the weights are the same.
            let mut lanes_max = [f32::MIN; V];
            for chunk in self.logits.chunks_exact_mut(V) {
                for (m, l) in lanes_max.iter_mut().zip(chunk) {
                    *l *= self.inv_temperature;
                    *m = if *l > *m { *l } else { *m };
                }
            }
            let max = lanes_max
                .into_iter()
                .fold(f32::MIN, |m, l| if l > m { l } else { m });
            let softmax = |w: &mut u32, n: &mut f32, l: f32| {
                let e = exp(l - max);
                *n = e;
                // exp <= 1 after subtracting the max; truncation is exact.
                *w = to_weight(e * WEIGHT_ONE);
            };
            match &mut self.adapt {
                // The online layer keeps the numerators for its step.
                Some(a) => {
                    let numerators = &mut a.numerators[lane * 256..(lane + 1) * 256];
                    for ((w, n), &l) in weights
                        .iter_mut()
                        .zip(numerators.iter_mut())
                        .zip(&self.logits)
                    {
                        softmax(w, n, l);
                    }
                    a.sums[lane] = sum(numerators);
                }
                None => {
                    for (w, l) in weights.iter_mut().zip(self.logits.iter_mut()) {
                        softmax(w, l, *l);
                    }
                }
            }
        }
    }

    /// [`Predictor::update`]: the online layer's step and the GRU's gates.
    #[inline(always)]
    fn update_rows(&mut self, lanes: &[usize], bytes: &[u8]) {
        let m = &*self.model;
        let h = m.hidden;
        for (&lane, &byte) in lanes.iter().zip(bytes) {
            if let Some(a) = &mut self.adapt {
                // Learn from the state that made the prediction, before it moves on.
                a.learn(lane, &self.h[lane * h..(lane + 1) * h], byte);
            }
            let gi = &m.input_table[usize::from(byte) * 3 * h..(usize::from(byte) + 1) * 3 * h];
            let gh = &self.gh[lane * 3 * h..(lane + 1) * 3 * h];
            let state = &mut self.h[lane * h..(lane + 1) * h];
            let state_q = &mut self.h_q[lane * h..(lane + 1) * h];
            // PyTorch's GRU: r = σ(.), z = σ(.), n = tanh(gi_n + r * gh_n), h = (1-z) n + z h.
            let (gi_r, gi) = gi.split_at(h);
            let (gi_z, gi_n) = gi.split_at(h);
            let (gh_r, gh) = gh.split_at(h);
            let (gh_z, gh_n) = gh.split_at(h);
            let gates = gi_r.iter().zip(gh_r).zip(gi_z.iter().zip(gh_z));
            let news = gi_n.iter().zip(gh_n);
            for ((((ir, hr), (iz, hz)), (inn, hn)), (s, q)) in gates
                .zip(news)
                .zip(state.iter_mut().zip(state_q.iter_mut()))
            {
                let r = sigmoid(ir + hr);
                let z = sigmoid(iz + hz);
                let n = tanh(inn + r * hn);
                let new = (1.0 - z) * n + z * *s;
                *s = new;
                *q = round_even(new * 127.0).clamp(-127.0, 127.0);
            }
        }
    }
}

/// The matmul as an operator of the tract plan with `i8` weights ([`PackedMatrix`]):
/// the plan, its state and the model stay tract's; the one node that multiplies is ours.
mod int8 {
    use std::sync::{Arc, Mutex};

    use tract_onnx::prelude::*;
    use tract_onnx::tract_core::internal::{
        bail, format_err, EvalContext, EvalOp, Op, StaticName, TypedModelPatch, TypedOp,
    };
    use tract_onnx::tract_core::ops::einsum::EinSum;
    use tract_onnx::tract_core::ops::konst::Const;

    use super::PackedMatrix;

    /// Where a run's output goes back once read, for the next run to write into: shared by
    /// an expert and the operator of its plans.
    #[derive(Clone, Debug, Default)]
    pub(super) struct Spare(Arc<Mutex<Option<Tensor>>>);

    impl Spare {
        /// Keeps `value`'s tensor when nothing else holds it.
        pub(super) fn give_back(&self, value: TValue) {
            if let Ok(tensor) = Arc::try_unwrap(value.into_arc_tensor()) {
                if let Ok(mut spare) = self.0.lock() {
                    *spare = Some(tensor);
                }
            }
        }

        /// A tensor of `shape` whose contents are to be overwritten.
        fn take(&self, shape: &[usize]) -> TractResult<Tensor> {
            let kept = self.0.lock().ok().and_then(|mut spare| spare.take());
            match kept {
                Some(t) if t.shape() == shape => Ok(t),
                // SAFETY: `f32` has no invalid bit patterns, and the caller writes every
                // element.
                #[allow(unsafe_code)]
                _ => unsafe { Tensor::uninitialized::<f32>(shape) },
            }
        }
    }

    /// `y[k, cols] = x[k, rows] W`, `x` integer-valued `f32` in `[-127, 127]` (the
    /// quantised states), `y` the exact sums: what the model's matmul computes.
    #[derive(Clone, Debug)]
    pub(super) struct MatVecI8 {
        weights: Arc<PackedMatrix>,
        spare: Spare,
    }

    impl PartialEq for MatVecI8 {
        fn eq(&self, other: &Self) -> bool {
            self.weights == other.weights
        }
    }

    impl Eq for MatVecI8 {}

    impl Op for MatVecI8 {
        fn name(&self) -> StaticName {
            "NcMatVecI8".into()
        }

        fn as_typed(&self) -> Option<&dyn TypedOp> {
            Some(self)
        }
    }

    impl EvalOp for MatVecI8 {
        fn eval_out_of_plan(&self, inputs: TVec<TValue>) -> TractResult<Option<TVec<TValue>>> {
            Ok(Some(self.eval(&EvalContext::out_of_plan(), inputs)?))
        }

        fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
            let (rows, cols) = (self.weights.rows(), self.weights.cols());
            let input = inputs.first().ok_or_else(|| format_err!("no input"))?;
            let x = input.try_as_plain_ram()?;
            let x = x.as_slice::<f32>()?;
            if x.len() % rows != 0 {
                bail!("input of {} values for {rows} rows", x.len());
            }
            let k = x.len() / rows;
            // `mul` writes every element.
            let mut out = self.spare.take(&[k, cols])?;
            self.weights
                .mul(x, out.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?);
            Ok(tvec!(out.into_tvalue()))
        }
    }

    impl TypedOp for MatVecI8 {
        fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
            let k = inputs[0].shape[0].clone();
            Ok(tvec!(f32::fact([k, self.weights.cols().to_dim()])))
        }

        fn as_op(&self) -> &dyn Op {
            self
        }

        fn as_op_mut(&mut self) -> &mut dyn Op {
            self
        }
    }

    /// The model's matmul node: an `EinSum` of the input by a constant `[hidden, cols]`.
    fn matmul(model: &TypedModel) -> Option<(usize, Arc<Tensor>)> {
        model.nodes().iter().find_map(|node| {
            node.op_as::<EinSum>()?;
            let [_, b] = node.inputs[..] else { return None };
            let konst = model.node(b.node).op_as::<Const>()?;
            Some((node.id, konst.val().clone()))
        })
    }

    /// The weights of the matmul of `graph`, packed, if they are integers in range.
    pub(super) fn weights(
        graph: &InferenceModel,
        hidden: usize,
    ) -> TractResult<Option<PackedMatrix>> {
        let mut graph = graph.clone();
        let mm = graph.output_outlets()?[0];
        graph.select_output_outlets(&[mm])?;
        let typed = graph
            .with_input_fact(0, f32::fact([1, hidden]).into())?
            .into_typed()?
            .into_decluttered()?;
        let Some((_, w)) = matmul(&typed) else {
            return Ok(None);
        };
        let &[rows, cols] = w.shape() else {
            return Ok(None);
        };
        if rows != hidden || w.datum_type() != f32::datum_type() {
            return Ok(None);
        }
        let view = w.try_as_plain_ram()?;
        Ok(PackedMatrix::pack(view.as_slice::<f32>()?, rows, cols))
    }

    /// Replaces the matmul of `model` by [`MatVecI8`] over `weights`.
    pub(super) fn substitute(
        model: &mut TypedModel,
        weights: &Arc<PackedMatrix>,
        spare: &Spare,
    ) -> TractResult<()> {
        let Some((id, _)) = matmul(model) else {
            bail!("the model has no matmul by constant weights");
        };
        let node = model.node(id);
        let op = MatVecI8 {
            weights: weights.clone(),
            spare: spare.clone(),
        };
        let patch = TypedModelPatch::replace_single_op(model, node, &[node.inputs[0]], op)?;
        patch.apply(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_even_matches_the_standard_library() {
        let mut x = -130.0f32;
        while x < 130.0 {
            assert_eq!(round_even(x), x.round_ties_even(), "{x}");
            x += 0.125;
        }
    }

    #[test]
    fn weights_convert_as_a_saturating_cast_does() {
        let specials = [
            f32::NAN,
            f32::NEG_INFINITY,
            -1.0,
            -0.0,
            0.0,
            0.5,
            WEIGHT_ONE,
        ];
        let sweep = (0..=4096).map(|i| i as f32 * (WEIGHT_ONE / 4096.0) + 0.37);
        for v in specials.into_iter().chain(sweep) {
            assert_eq!(to_weight(v), v as u32, "{v}");
        }
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn exp_is_accurate() {
        let mut x = -80.0f32;
        while x < 80.0 {
            let (a, b) = (exp(x), x.exp());
            assert!(((a - b) / b).abs() < 1e-6, "exp({x}) = {a}, want {b}");
            x += 0.037;
        }
    }
}
