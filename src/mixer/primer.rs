//! The primer and the primed lane states of the process.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::lane::Lane;
use super::Mix;

/// The primer (format version 7 on, with the header flag
/// [`FLAG_PRIMED`](crate::format::FLAG_PRIMED)): text, code, markup and data cut from the
/// training corpus by `onnx-models/primer.py`. Every lane codes it, without output, before
/// each block, so a block starts with tables, copy history and gate that know what such
/// bytes look like (a small file gains most; zstd's and brotli's dictionaries play the same
/// part). A primed state is built once and copied, grown to the block's tables
/// (`Lane::grown`), at each block start.
pub const PRIMER: &[u8] = include_bytes!("../../onnx-models/nc-primer.bin");

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

/// What a primed state depends on: format version, expert mask, table sizes.
type PrimedKey = (u16, u32, (u32, u32));

static PRIMED: Mutex<PrimedCache> = Mutex::new(PrimedCache {
    states: Vec::new(),
    kept: Vec::new(),
});

pub(super) const KEEP_PRIMED: usize = 2;

pub(super) const KEEP_TABLE_BITS: u32 = 20;

impl Mix {
    /// The primed state a block of `block_len` bytes starts from.
    pub(super) fn primed_lane(&mut self, block_len: usize) -> Arc<Lane> {
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
            super::tests::PRIMINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut lane = Lane::new(&self.spec, block_len);
            lane.prime(PRIMER, self.spec.neural);
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
