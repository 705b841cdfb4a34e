//! Whether AVX2 gathers compute the context slots' node inputs faster than the scalar loop
//! (`Orders::node_inputs`; `docs/profile.md`, "Lookups and the node loop"): both
//! computations on synthetic tables, checked equal, then timed.
//!
//! `cargo bench --bench gather` (set `NSLOTS` for the table's slots, default 16,384: 512
//! KiB, L2-sized). A measurement for deciding, not part of the codec.

#[cfg(target_arch = "x86_64")]
mod bench {
    use std::arch::x86_64::*;
    use std::time::Instant;

    /// Context slots per node, as `default` has.
    const K: usize = 17;
    const NO_SLOT: u32 = u32::MAX;

    /// What one node's inputs read and write, as in `NodeAt::input`.
    struct Node<'a> {
        lines: &'a [[u16; 16]],
        adapt: &'a [u32],
        /// 4,096 stretches and one more entry, so a 32-bit gather of the last stays inside.
        stretch: &'a [i16],
        depth: usize,
        cell: usize,
        branch: usize,
    }

    struct State {
        slot: [u32; 32],
        follow: [u8; 32],
        on_path: [u8; 32],
        out: [i32; 32],
    }

    fn scalar(n: &Node, s: &mut State) {
        let stretch = |p: usize| i32::from(n.stretch[p & 4095]);
        for k in 0..K {
            let slot = s.slot[k];
            if slot == NO_SLOT {
                s.follow[k] = 2;
                s.out[k] = 0;
                continue;
            }
            let on = n.depth == 0 || usize::from(s.follow[k]) == n.branch;
            let c = n.lines[slot as usize][n.cell];
            s.follow[k] = if on { ((c >> 4) & 1) as u8 } else { 2 };
            s.on_path[k] |= (1u8 << n.depth) & 0u8.wrapping_sub(u8::from(on));
            s.out[k] = if c & 15 == 0 {
                0
            } else {
                let st = stretch(usize::from(c >> 4));
                let state = (usize::from(c) & 31) | usize::from(on) << 5;
                let i = ((k << 6 | state) << 5) | ((st + 2048) as usize >> 7);
                (stretch((n.adapt[i] >> 20) as usize) + st) >> 1
            };
        }
    }

    /// # Safety
    /// The CPU has AVX2; every slot is `NO_SLOT` or below `lines.len() - 1` (a gather of
    /// the last cell reads two bytes of the next slot); `adapt` holds `K << 11` cells.
    #[target_feature(enable = "avx2")]
    unsafe fn gathered(n: &Node, s: &mut State) {
        let (stretch, lines, adapt) = (
            n.stretch.as_ptr().cast::<i32>(),
            n.lines.as_ptr().cast::<i32>(),
            n.adapt.as_ptr().cast::<i32>(),
        );
        let one = |v: i32| _mm256_set1_epi32(v);
        for base in (0..K).step_by(8) {
            // SAFETY: `slot` has 32 entries, `base + 8 <= 32`.
            let slot = unsafe { _mm256_loadu_si256(s.slot.as_ptr().add(base).cast()) };
            let lane =
                _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), one(base as i32));
            let valid = _mm256_andnot_si256(
                _mm256_cmpeq_epi32(slot, one(-1)),
                _mm256_cmpgt_epi32(one(K as i32), lane),
            );
            let at = _mm256_add_epi32(_mm256_slli_epi32(slot, 4), one(n.cell as i32));
            // SAFETY: masked lanes read nothing; the others read inside `lines` (above).
            let raw =
                unsafe { _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), lines, at, valid, 2) };
            let c = _mm256_and_si256(raw, one(0xFFFF));
            // SAFETY: `follow` has 32 entries.
            let follow = unsafe { _mm_loadl_epi64(s.follow.as_ptr().add(base).cast()) };
            let on = if n.depth == 0 {
                one(-1)
            } else {
                _mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(follow), one(n.branch as i32))
            };
            let on = _mm256_and_si256(on, valid);
            let last = _mm256_and_si256(_mm256_srli_epi32(c, 4), one(1));
            let next = _mm256_blendv_epi8(one(2), last, on);
            let learned = _mm256_andnot_si256(
                _mm256_cmpeq_epi32(_mm256_and_si256(c, one(15)), _mm256_setzero_si256()),
                valid,
            );
            let gather16 = |idx: __m256i| {
                // SAFETY: indices within 0..4096, the table has 4,097 entries.
                let v = unsafe {
                    _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), stretch, idx, learned, 2)
                };
                _mm256_srai_epi32(_mm256_slli_epi32(v, 16), 16)
            };
            let st = gather16(_mm256_srli_epi32(c, 4));
            let state =
                _mm256_or_si256(_mm256_and_si256(c, one(31)), _mm256_and_si256(on, one(32)));
            let i = _mm256_or_si256(
                _mm256_slli_epi32(_mm256_or_si256(_mm256_slli_epi32(lane, 6), state), 5),
                _mm256_srli_epi32(_mm256_add_epi32(st, one(2048)), 7),
            );
            // SAFETY: below `K << 11` for lanes below `K`, the others masked.
            let a = unsafe {
                _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), adapt, i, learned, 4)
            };
            let x = _mm256_and_si256(
                _mm256_srai_epi32(_mm256_add_epi32(st, gather16(_mm256_srli_epi32(a, 20))), 1),
                learned,
            );
            // SAFETY: `out` has 32 entries.
            unsafe { _mm256_storeu_si256(s.out.as_mut_ptr().add(base).cast(), x) };
            let (mut nexts, mut ons) = ([0i32; 8], [0i32; 8]);
            // SAFETY: both arrays hold 8 lanes.
            unsafe {
                _mm256_storeu_si256(nexts.as_mut_ptr().cast(), next);
                _mm256_storeu_si256(ons.as_mut_ptr().cast(), on);
            }
            for j in 0..8.min(K - base) {
                let k = base + j;
                s.follow[k] = nexts[j] as u8;
                s.on_path[k] |= (1u8 << n.depth) & ons[j] as u8;
            }
        }
    }

    pub fn main() {
        if !std::is_x86_feature_detected!("avx2") {
            println!("no AVX2");
            return;
        }
        let stretch: Vec<i16> = (0..4097)
            .map(|i| {
                let p = (f64::from(i.min(4095)) + 0.5) / 4096.0;
                ((p / (1.0 - p)).ln() * 256.0)
                    .round()
                    .clamp(-2047.0, 2047.0) as i16
            })
            .collect();
        let mut seed = 12_345u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let slots: u64 = std::env::var("NSLOTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 14);
        let lines: Vec<[u16; 16]> = (0..=slots)
            .map(|_| std::array::from_fn(|_| rnd() as u16))
            .collect();
        let adapt: Vec<u32> = (0..K << 11).map(|_| rnd() as u32).collect();
        let cases: Vec<([u32; 32], usize, usize, usize)> = (0..1024)
            .map(|_| {
                let mut slot = [NO_SLOT; 32];
                for s in &mut slot[..K] {
                    *s = if rnd() % 8 == 0 {
                        NO_SLOT
                    } else {
                        (rnd() % slots) as u32
                    };
                }
                (
                    slot,
                    (rnd() % 8) as usize,
                    (rnd() % 15 + 1) as usize,
                    (rnd() & 1) as usize,
                )
            })
            .collect();
        let node = |&(_, depth, cell, branch): &([u32; 32], usize, usize, usize)| Node {
            lines: &lines,
            adapt: &adapt,
            stretch: &stretch,
            depth,
            cell,
            branch,
        };
        let fresh = || State {
            slot: [NO_SLOT; 32],
            follow: [2; 32],
            on_path: [0; 32],
            out: [0; 32],
        };
        let (mut a, mut b) = (fresh(), fresh());
        for case in &cases {
            (a.slot, b.slot) = (case.0, case.0);
            scalar(&node(case), &mut a);
            // SAFETY: AVX2 checked above; slots below `slots`, `lines` one longer.
            unsafe { gathered(&node(case), &mut b) };
            assert_eq!((a.out, a.follow, a.on_path), (b.out, b.follow, b.on_path));
        }
        println!("the two computations agree on {} nodes", cases.len());
        let nodes = 2_000_000;
        for round in 1..=3 {
            let time = |f: &dyn Fn(&Node, &mut State), s: &mut State| {
                let t = Instant::now();
                for i in 0..nodes {
                    let case = &cases[i & 1023];
                    s.slot = case.0;
                    f(&node(case), s);
                }
                t.elapsed().as_secs_f64() / nodes as f64 * 1e9
            };
            let ts = time(&|n, s| scalar(n, s), &mut a);
            // SAFETY: as above.
            let tg = time(&|n, s| unsafe { gathered(n, s) }, &mut b);
            println!("round {round}: scalar {ts:.1} ns a node, AVX2 gathers {tg:.1} ns a node ({K} slots, {slots} in the table)");
        }
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    bench::main();
}
