//! Tables that remember which of their lines were written, so a lane returns to its
//! primed state by copying back those lines alone: a block start then costs what the
//! previous block wrote, not a copy of the whole primed state (tens of MiB).

use std::ops::{Index, IndexMut};

/// Which units of a table (lines, weight sets) were written since the marks were last
/// cleared: one bit per unit.
#[derive(Clone, Default)]
pub(crate) struct Marks {
    bits: Vec<u64>,
    units: usize,
}

impl Marks {
    /// Marks for `units` units, none marked.
    pub(crate) fn new(units: usize) -> Self {
        Marks {
            bits: vec![0; units.div_ceil(64)],
            units,
        }
    }

    #[inline(always)]
    pub(crate) fn mark(&mut self, unit: usize) {
        debug_assert!(unit < self.units);
        self.bits[unit >> 6] |= 1 << (unit & 63);
    }

    /// Marks every unit.
    pub(crate) fn mark_all(&mut self) {
        self.bits.fill(!0);
        if !self.units.is_multiple_of(64) {
            if let Some(last) = self.bits.last_mut() {
                *last = !0 >> (64 - self.units % 64);
            }
        }
    }

    /// Calls `f` with each run of marked units (first unit, count), then clears the marks.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(usize, usize)) {
        for (w, word) in self.bits.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let first = bits.trailing_zeros() as usize;
                let run = (bits >> first).trailing_ones() as usize;
                f(w * 64 + first, run);
                bits &= !(u64::MAX >> (64 - run) << first);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.bits.fill(0);
    }
}

/// A table of `T` whose writes are marked per 64-byte line ([`Tracked::restore_from`]).
/// Every mutable access marks what it reaches.
#[derive(Clone)]
pub(crate) struct Tracked<T> {
    data: Vec<T>,
    marks: Marks,
}

impl<T: Copy> Tracked<T> {
    /// log2 of the elements per line (`size_of::<T>()` is a power of two up to 64 bytes).
    const SHIFT: u32 = {
        let size = std::mem::size_of::<T>();
        assert!(size.is_power_of_two() && size <= 64);
        (64 / size).trailing_zeros()
    };

    /// `data`, with nothing marked: the state later restores return to is what
    /// [`Tracked::restore_from`] is given, not this.
    pub(crate) fn new(data: Vec<T>) -> Self {
        let lines = data.len().div_ceil(1 << Self::SHIFT);
        Tracked {
            data,
            marks: Marks::new(lines),
        }
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.data.capacity()
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// Starts fetching the mark of the line holding element `i`, which a write will set.
    #[inline(always)]
    pub(crate) fn prefetch_mark(&self, i: usize) {
        crate::hint::prefetch(&self.marks.bits, i >> Self::SHIFT >> 6);
    }

    /// The whole table, for writing: every line is marked.
    pub(crate) fn all_mut(&mut self) -> &mut [T] {
        self.marks.mark_all();
        &mut self.data
    }

    /// Forgets the marks: the table is now the state restores return to.
    pub(crate) fn clear_marks(&mut self) {
        self.marks.clear();
    }

    /// Makes this table equal to `src`, given that it was equal to `src` when its marks
    /// were last cleared: copies the marked lines, and clears the marks.
    pub(crate) fn restore_from(&mut self, src: &Tracked<T>) {
        assert_eq!(self.data.len(), src.data.len(), "tables of different sizes");
        let (data, shift) = (&mut self.data, Self::SHIFT);
        self.marks.drain(|line, count| {
            let start = line << shift;
            let end = ((line + count) << shift).min(data.len());
            // The last line may be partial.
            data[start..end].copy_from_slice(&src.data[start..end]);
        });
    }

    /// Makes each marked line what `element` gives for each of its elements' indices, and
    /// clears the marks: [`Tracked::restore_from`] where the state to return to is computed
    /// rather than held.
    pub(crate) fn restore_with(&mut self, mut element: impl FnMut(usize) -> T) {
        let (data, shift) = (&mut self.data, Self::SHIFT);
        self.marks.drain(|line, count| {
            let start = line << shift;
            let end = ((line + count) << shift).min(data.len());
            for (i, x) in data[start..end].iter_mut().enumerate() {
                *x = element(start + i);
            }
        });
    }
}

impl<T> Index<usize> for Tracked<T> {
    type Output = T;
    #[inline(always)]
    fn index(&self, i: usize) -> &T {
        &self.data[i]
    }
}

impl<T: Copy> IndexMut<usize> for Tracked<T> {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.marks.mark(i >> Self::SHIFT);
        &mut self.data[i]
    }
}

/// The data alone: marks say what was written since a state, and a loaded state is one.
impl<T: crate::snapshot::Snapshot> crate::snapshot::Snapshot for Tracked<T> {
    fn walk(&mut self, w: &mut crate::snapshot::Walker<'_>) {
        let Tracked { data, marks: _ } = self;
        w.check_len(data.len());
        T::walk_slice(data, w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_what_was_written_through_each_access() {
        let src = Tracked::new((0..1000u32).collect());
        let mut t = src.clone();
        t[3] = 7;
        t[999] = 7;
        for i in 15..40 {
            t[i] = 7;
        }
        assert_ne!(t.as_slice(), src.as_slice());
        t.restore_from(&src);
        assert_eq!(t.as_slice(), src.as_slice());
        t.all_mut().fill(9);
        t.restore_from(&src);
        assert_eq!(t.as_slice(), src.as_slice());
    }

    #[test]
    fn restores_marked_lines_to_a_computed_state() {
        let state = |i: usize| (i * 3) as u32;
        let mut t = Tracked::new((0..1000).map(state).collect());
        t.clear_marks();
        t[5] = 0;
        t[998] = 0;
        // Lines of 16 elements: 0-15 and 992-999 are rewritten whole, nothing else.
        let mut asked = Vec::new();
        t.restore_with(|i| {
            asked.push(i);
            state(i)
        });
        assert_eq!(asked, (0..16).chain(992..1000).collect::<Vec<_>>());
        assert!(t.as_slice().iter().enumerate().all(|(i, &x)| x == state(i)));
        t.restore_with(|_| panic!("marks were cleared"));
    }

    #[test]
    fn drains_runs_of_marks_across_words() {
        let mut m = Marks::new(200);
        for u in [0, 1, 2, 63, 64, 65, 130, 199] {
            m.mark(u);
        }
        let mut runs = Vec::new();
        m.drain(|first, count| runs.push((first, count)));
        assert_eq!(runs, [(0, 3), (63, 1), (64, 2), (130, 1), (199, 1)]);
        m.drain(|_, _| panic!("marks were cleared"));
        m.mark_all();
        let mut n = 0;
        m.drain(|_, count| n += count);
        assert_eq!(n, 200);
    }
}
