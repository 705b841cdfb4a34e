//! The mixing predictor as format versions 2 to 8 code a byte: from a distribution over its
//! 256 values (versions 2 to 5) or over its two nibbles (6 to 8), every node of the byte's
//! tree (or of the nibble's) evaluated, where version 9 on codes the byte's 8 decisions one
//! by one and evaluates the 8 nodes on its path (`FORMAT.md`, "Versioning"). Frozen: this
//! crate still reads those streams, and these paths run for them alone. What only they
//! keep beside the gate is a [`Tree`], which a lane of version 9 on does without.

use super::gate::Apm;
use super::lane::{class, Lane, CLASSES, SKIP_BELOW_BITS};
use crate::experts::Weights;
use crate::hint::prefetch;
use crate::snapshot::{Snapshot, Walker};

/// A lane's state for coding a byte as one distribution (format versions 2 to 8).
#[derive(Clone)]
pub(super) struct Tree {
    /// Context of the order-1 APM: the previous byte, times 256.
    pub(super) cx1: usize,
    /// Secondary estimation on the node and the previous byte.
    pub(super) apm_order1: Apm,
    /// High nibbles whose low-nibble subtree was evaluated for the current byte.
    evaluated: u16,
    /// Per character class of the previous byte and high nibble: how often each low nibble
    /// came (counts from 1, in steps of 16, halved past 4000; `docs/tuning.md`, "Gate
    /// constants").
    low_counts: [[[u16; 16]; 16]; CLASSES],
    /// `class` of the previous byte.
    low_class: usize,
}

impl Tree {
    /// `apm_both`: whether the APM trains both points it interpolated between.
    pub(super) fn new(apm_both: bool) -> Self {
        Tree {
            cx1: 0,
            apm_order1: Apm::new(256 * 256, 7, apm_both),
            evaluated: 0,
            low_counts: [[[1; 16]; 16]; CLASSES],
            low_class: 0,
        }
    }

    /// Forgets the counts (the lane resets the APM with its others).
    pub(super) fn reset(&mut self) {
        self.low_counts = [[[1; 16]; 16]; CLASSES];
    }

    /// Makes this tree `from`, copying the APM's written rows back.
    pub(super) fn restore_from(&mut self, from: &Tree) {
        let Tree {
            cx1,
            apm_order1,
            evaluated,
            low_counts,
            low_class,
        } = from;
        self.cx1 = *cx1;
        self.apm_order1.restore_from(apm_order1);
        self.evaluated = *evaluated;
        self.low_counts = *low_counts;
        self.low_class = *low_class;
    }

    /// Starts fetching the order-1 APM rows of the next byte's first nodes, `b` being the
    /// byte just coded.
    pub(super) fn prefetch(&self, b: usize) {
        let next_rows = b * 256 * 33;
        for i in (next_rows + 33..next_rows + 16 * 33).step_by(32) {
            prefetch(self.apm_order1.table.as_slice(), i);
        }
    }
}

impl Snapshot for Tree {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Tree {
            cx1,
            apm_order1,
            evaluated,
            low_counts,
            low_class,
        } = self;
        cx1.walk(w);
        apm_order1.walk(w);
        evaluated.walk(w);
        low_counts.walk(w);
        low_class.walk(w);
    }
}

impl Lane {
    fn tree(&mut self) -> &mut Tree {
        match self.tree.as_deref_mut() {
            Some(t) => t,
            None => unreachable!("a lane without bit coding has a tree"),
        }
    }

    /// Fills `out` with the next byte's weights (the high nibble's 16 from version 6),
    /// `last` being the previous byte: [`Lane::predict`] after its experts and contexts.
    pub(super) fn predict_tree(&mut self, last: u8, out: &mut Weights) {
        let tree = self.tree();
        tree.low_class = class(last);
        tree.cx1 = usize::from(last) * 256;
        // Probabilities of the high nibble's nodes, then the mass of every high nibble.
        let mut high = [0u64; 32];
        high[1] = 1 << 40;
        for c0 in 1..16 {
            self.split(c0, c0, &mut high);
        }
        if self.spec.nibbles {
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
        let mut evaluated = 0;
        for nibble in 0..16 {
            if mass[16 + nibble] >= (1 << 40) >> SKIP_BELOW_BITS {
                evaluated |= 1 << nibble;
            }
        }
        self.tree().evaluated = evaluated;
        if let Some(o) = &mut self.orders {
            o.predict_low(evaluated, &mut self.inputs, 0);
        }
        for nibble in 0..16 {
            if evaluated & (1 << nibble) == 0 {
                let m = mass[16 + nibble];
                let leaves = &mut mass[256 + nibble * 16..256 + nibble * 16 + 16];
                if self.spec.records {
                    // In proportion to how often each low nibble followed this high
                    // nibble after a byte of this class (every count is at least 1).
                    // One division per subtree: a unit of `m / Σc` per count.
                    let tree = self.tree();
                    let counts = &tree.low_counts[tree.low_class][nibble];
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
    /// coding, versions 6 to 8): its subtree is evaluated from a mass of 2^40.
    pub(super) fn predict_low(&mut self, high: usize, out: &mut [u32; 16]) {
        self.tree().evaluated = 1 << high;
        if let Some(o) = &mut self.orders {
            o.predict_low(1 << high, &mut self.inputs, 0);
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

    /// Evaluates node `c0`, remembering what training needs; returns its 12-bit P(1).
    pub(super) fn eval(&mut self, c0: usize) -> i32 {
        let (p_mix, a0, a1, _) = self.gate(c0);
        let (a0, a1) = ((a0 >> 4).clamp(1, 4095), (a1 >> 4).clamp(1, 4095));
        ((p_mix + a0 + 2 * a1 + 2) >> 2).clamp(1, 4095)
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

    /// What byte `b` teaches the tree before [`Lane::update`] trains the gate: a byte
    /// that landed in a subtree coded flat has its path evaluated now, so the gate and the
    /// calibration learn from it as usual; and (version 5) the low nibbles' counts.
    pub(super) fn learn_tree(&mut self, b: usize) {
        let nibble = b >> 4;
        if self.tree().evaluated & (1 << nibble) == 0 {
            if let Some(o) = &mut self.orders {
                o.predict_low(1 << nibble, &mut self.inputs, 0);
            }
            for j in 4..8 {
                self.eval((1 << j) | (b >> (8 - j)));
            }
        }
        if self.spec.records && !self.spec.nibbles {
            let tree = self.tree();
            let counts = &mut tree.low_counts[tree.low_class][nibble];
            counts[b & 15] += 16;
            if counts[b & 15] > 4000 {
                for c in counts.iter_mut() {
                    *c = c.div_ceil(2);
                }
            }
        }
    }
}
