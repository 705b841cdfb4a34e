//! The primer and the primed lane states of the process.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use super::lane::{Lane, Spec};
use super::Mix;
use crate::format::LONG_PRIMER_VERSION;

/// Whether two lanes were primed with the same primer (or both with none).
pub(super) fn same_primer(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::ptr::eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// The primer (format version 7 on, with the header flag
/// [`FLAG_PRIMED`](crate::format::FLAG_PRIMED)): text, code, markup and data cut from the
/// training corpus by `onnx-models/primer.py`. Every lane codes it, without output, before
/// each block, so a block starts with tables, copy history and gate that know what such
/// bytes look like (a small file gains most; zstd's and brotli's dictionaries play the same
/// part). A primed state is built once and copied, grown to the block's tables
/// (`Lane::grown`), at each block start.
// A `static`, not a `const`: lanes tell primed states apart by the primer's address
// (`same_primer`), and each use of a `const` may have an address of its own.
pub static PRIMER: &[u8] = include_bytes!("../../onnx-models/nc-primer.bin");

/// The primer of format versions 7 to 12: the same files' slices as [`PRIMER`]'s, shorter,
/// without its further prose.
pub static PRIMER_V7: &[u8] = include_bytes!("../../onnx-models/nc-primer-v7.bin");

/// The text primer of format `version` (from [`PRIMED_VERSION`](crate::format::PRIMED_VERSION)).
/// [`LONG_PRIMER_VERSION`] on, [`PRIMER`].
pub(crate) fn primer(version: u16) -> &'static [u8] {
    if version >= LONG_PRIMER_VERSION {
        PRIMER
    } else {
        PRIMER_V7
    }
}

/// The x86 primer (format version 13 on): one whole x86-64 executable from the training
/// corpus, cut by `onnx-models/primer.py --x86`. Blocks through the x86 filter start from
/// its state instead of [`PRIMER`]'s: an executable's tables and code have little in
/// common with text.
pub const PRIMER_X86: &[u8] = include_bytes!("../../onnx-models/nc-primer-x86.bin");

/// [`PRIMER_X86`] as lanes code it: through the x86 filter, as the blocks it primes are.
pub(super) fn primer_x86_filtered() -> &'static [u8] {
    static FILTERED: OnceLock<Vec<u8>> = OnceLock::new();
    FILTERED.get_or_init(|| {
        let mut bytes = PRIMER_X86.to_vec();
        crate::filter::encode(&mut bytes);
        bytes
    })
}

/// Primed lane states of the process, shared by every mixing predictor: priming costs as
/// much as coding the primer, so threads and streams that start blocks with the
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

/// What a primed state depends on: format version, expert mask, table sizes, and whether
/// the primer is [`PRIMER_X86`].
pub(super) type PrimedKey = (u16, u32, (u32, u32), bool);

static PRIMED: Mutex<PrimedCache> = Mutex::new(PrimedCache {
    states: Vec::new(),
    kept: Vec::new(),
});

pub(super) const KEEP_PRIMED: usize = 2;

pub(super) const KEEP_TABLE_BITS: u32 = 20;

/// The key a primed state is stored on disk under. Where the neural input takes another
/// expert's column, priming leaves it to that expert: the state is the expert set's
/// without the neural expert, one file for both.
pub(super) fn stored_key(spec: &Spec, key: &PrimedKey) -> PrimedKey {
    match spec.neural_col {
        Some(_) => (key.0, key.1 & !crate::format::EXPERT_NEURAL, key.2, key.3),
        None => *key,
    }
}

/// A lane of `spec` for blocks of `block_len` that has coded its primer: read from `dir`
/// where a state for `key` is stored there, else primed (and stored there).
pub(super) fn primed_state(
    spec: &Spec,
    block_len: usize,
    key: &PrimedKey,
    dir: Option<&std::path::Path>,
) -> Box<Lane> {
    if let Some(lane) = dir.and_then(|dir| stored_state(spec, block_len, key, dir)) {
        return lane;
    }
    let mut lane = Lane::new(spec, block_len);
    #[cfg(test)]
    super::tests::PRIMINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    lane.prime(spec.primer.unwrap_or_default());
    if let Some(dir) = dir {
        super::stored::store(dir, &stored_key(spec, key), &mut lane);
    }
    lane
}

/// [`primed_state`] read from `dir`, if a state for `key` is stored there.
fn stored_state(
    spec: &Spec,
    block_len: usize,
    key: &PrimedKey,
    dir: &std::path::Path,
) -> Option<Box<Lane>> {
    let mut lane = Lane::new(spec, block_len);
    super::stored::load(dir, &stored_key(spec, key), &mut lane).then_some(lane)
}

impl Mix {
    /// The primed state a block of `block_len` bytes starts from: [`PRIMER_X86`]'s for a
    /// block through the x86 filter (`x86`, format version 13 on), else [`PRIMER`]'s.
    pub(super) fn primed_lane(&mut self, block_len: usize, x86: bool) -> Arc<Lane> {
        let spec = self.lane_spec(x86).clone();
        let spec = &spec;
        let bits = spec.table_bits(block_len);
        if let Some(i) = self.holding(spec, bits) {
            let l = self.primed.remove(i);
            self.primed.push(l.clone());
            return l;
        }
        let key = (spec.version, spec.mask, bits, x86);
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
            // On disk, the states of small tables: every state from format version 13
            // (primed at the smallest size, then grown), before it those of small blocks,
            // where priming is most of a process's work.
            let dir = self
                .stored_dir
                .clone()
                .filter(|_| bits.0 <= KEEP_TABLE_BITS);
            let mut lane = primed_state(spec, block_len, &key, dir.as_deref());
            // Lanes made from this state copy back what they wrote since.
            lane.clear_marks();
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
        let bytes = |l: &Arc<Lane>| l.spec.lane_bytes(l.block_len);
        while self.primed.len() > 1
            && self.primed.iter().map(bytes).sum::<u64>() > self.primed_budget
        {
            self.primed.remove(0);
        }
        lane
    }

    /// The primed state of a growing lane (`x86`: through the x86 filter) read from the
    /// directory [`super::stored::set_primed_cache_dir`] names, where this predictor holds
    /// none in memory and one is stored there: what [`Mix::primed_lane`] would give for
    /// a block of length 0, unshared.
    pub(super) fn stored_lane(&self, x86: bool) -> Option<Box<Lane>> {
        let dir = self.stored_dir.as_deref()?;
        let spec = self.lane_spec(x86);
        let bits = spec.table_bits(0);
        if !spec.grows || bits.0 > KEEP_TABLE_BITS || self.holding(spec, bits).is_some() {
            return None;
        }
        let mut lane = stored_state(spec, 0, &(spec.version, spec.mask, bits, x86), dir)?;
        lane.clear_marks();
        Some(lane)
    }

    /// Where among this predictor's primed states is the one of `spec` with tables of
    /// `bits`, if it holds one.
    fn holding(&self, spec: &Spec, bits: (u32, u32)) -> Option<usize> {
        self.primed.iter().position(|l| {
            spec.table_bits(l.block_len) == bits && same_primer(l.spec.primer, spec.primer)
        })
    }

    /// The spec of a lane whose block is through the x86 filter (`x86`) or not.
    pub(super) fn lane_spec(&self, x86: bool) -> &Spec {
        match &self.spec_x86 {
            Some(spec) if x86 => spec,
            _ => &self.spec,
        }
    }

    /// Sets the bytes the primed states this predictor keeps may take (default: no limit):
    /// what its memory limit leaves after the lanes. One state is always kept.
    pub(crate) fn set_primed_budget(&mut self, bytes: u64) {
        self.primed_budget = bytes;
    }
}
