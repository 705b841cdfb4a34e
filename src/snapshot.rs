//! A lane's state written as bytes and read back in place: how a primed state outlives
//! the process (`mixer::stored`).
//!
//! One walk serves both directions. Each state's [`Snapshot::walk`] visits its fields in a
//! fixed order, and the [`Walker`] either writes them out or overwrites them with what it
//! reads. Loading goes into a state built for the same configuration (same table sizes,
//! same experts), so nothing is allocated from what the bytes claim but a few short
//! vectors, none larger than the bytes left; configuration the state was built with is
//! compared, not overwritten ([`Walker::check`]). Each `walk` destructures its struct
//! without `..`, so a field added later does not compile until it is walked.

/// A state that can be written to bytes and read back in place.
pub(crate) trait Snapshot {
    /// Visits every part of the state, in the same order for saving and loading.
    fn walk(&mut self, w: &mut Walker<'_>);

    /// Visits a slice of such states; plain numbers override this to move in one pass.
    fn walk_slice(items: &mut [Self], w: &mut Walker<'_>)
    where
        Self: Sized,
    {
        for item in items {
            item.walk(w);
        }
    }
}

/// Fixed-size numbers, stored little-endian.
pub(crate) trait Pod: Copy {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! pods {
    ($($t:ty),*) => {$(
        impl Pod for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline(always)]
            fn get(bytes: &[u8]) -> Self {
                let mut b = [0; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }

        impl Snapshot for $t {
            fn walk(&mut self, w: &mut Walker<'_>) {
                w.pods(std::slice::from_mut(self));
            }

            fn walk_slice(items: &mut [Self], w: &mut Walker<'_>) {
                w.pods(items);
            }
        }
    )*};
}

pods!(u8, u16, u32, u64, i16, i32, i64);

/// Saves to a writer, or loads from a reader.
pub(crate) enum Walker<'a> {
    /// `None` once a write failed.
    Save(Option<Sink<'a>>),
    /// `None` once something could not be read or did not match.
    Load(Option<Source<'a>>),
}

/// The bytes a load reads: at most `left` more from `read`.
pub(crate) struct Source<'a> {
    read: &'a mut dyn std::io::Read,
    left: u64,
    buf: Vec<u8>,
}

/// Where a save goes, through a buffer of `Sink::CHUNK` bytes.
pub(crate) struct Sink<'a> {
    write: &'a mut dyn std::io::Write,
    buf: Vec<u8>,
}

impl Sink<'_> {
    const CHUNK: usize = 1 << 16;

    /// Writes the buffer out if it holds `CHUNK` bytes or more, or `all` and any.
    fn drain(&mut self, all: bool) -> std::io::Result<()> {
        if self.buf.len() >= Self::CHUNK || (all && !self.buf.is_empty()) {
            self.write.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl Source<'_> {
    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        self.left = self.left.checked_sub(n as u64)?;
        self.buf.resize(n, 0);
        self.read.read_exact(&mut self.buf).ok()?;
        Some(&self.buf)
    }
}

impl Walker<'_> {
    /// Moves a slice of numbers.
    pub(crate) fn pods<P: Pod>(&mut self, items: &mut [P]) {
        match self {
            Walker::Save(output) => {
                let Some(sink) = output else { return };
                for chunk in items.chunks(Sink::CHUNK / P::SIZE) {
                    for &x in chunk {
                        x.put(&mut sink.buf);
                    }
                    if sink.drain(false).is_err() {
                        *output = None;
                        return;
                    }
                }
            }
            Walker::Load(input) => {
                let Some(source) = input else { return };
                let Some(bytes) = items
                    .len()
                    .checked_mul(P::SIZE)
                    .and_then(|n| source.take(n))
                else {
                    *input = None;
                    return;
                };
                for (x, b) in items.iter_mut().zip(bytes.chunks_exact(P::SIZE)) {
                    *x = P::get(b);
                }
            }
        }
    }

    /// Moves many short slices of numbers (the lines of a table), a run of them at a time.
    pub(crate) fn parts<P: Pod, T: AsMut<[P]>>(&mut self, parts: &mut [T]) {
        const BYTES_AT_ONCE: usize = 1 << 16;
        let Walker::Load(input) = self else {
            for part in parts {
                self.pods(part.as_mut());
            }
            return;
        };
        let Some(source) = input else { return };
        let at_once =
            (BYTES_AT_ONCE / P::SIZE / parts.first_mut().map_or(1, |p| p.as_mut().len())).max(1);
        for run in parts.chunks_mut(at_once) {
            let len = run.iter_mut().map(|p| p.as_mut().len()).sum::<usize>();
            let Some(bytes) = source.take(len * P::SIZE) else {
                *input = None;
                return;
            };
            let mut bytes = bytes.chunks_exact(P::SIZE);
            for part in run {
                for (x, b) in part.as_mut().iter_mut().zip(&mut bytes) {
                    *x = P::get(b);
                }
            }
        }
    }

    /// Configuration the state was built with: saved, and on loading compared with the
    /// state's own (a difference fails the load).
    pub(crate) fn check(&mut self, value: &[u8]) {
        let mut len = value.len() as u64;
        len.walk(self);
        match self {
            Walker::Save(output) => {
                if let Some(sink) = output {
                    sink.buf.extend_from_slice(value);
                    if sink.drain(false).is_err() {
                        *output = None;
                    }
                }
            }
            Walker::Load(input) => {
                let Some(source) = input else { return };
                if len != value.len() as u64 || source.take(value.len()) != Some(value) {
                    *input = None;
                }
            }
        }
    }

    /// A length or count the state was built with ([`Walker::check`]).
    pub(crate) fn check_len(&mut self, n: usize) {
        self.check(&(n as u64).to_le_bytes());
    }

    /// A length of a vector whose length the state varies: saved, or loaded and kept
    /// within the bytes left, at `size` bytes an element (what the vector will hold in
    /// memory, so no more is allocated than the bytes left).
    fn len(&mut self, len: usize, size: usize) -> Option<usize> {
        let mut n = len as u64;
        n.walk(self);
        match self {
            Walker::Save(_) => Some(len),
            Walker::Load(input) => {
                let left = input.as_ref()?.left;
                match usize::try_from(n) {
                    Ok(n) if n.checked_mul(size).is_some_and(|b| b as u64 <= left) => Some(n),
                    _ => {
                        *input = None;
                        None
                    }
                }
            }
        }
    }

    /// Optional state that comes and goes as the bytes do, made by `make` where the
    /// saved state has it and this one does not.
    pub(crate) fn optional<T: Snapshot>(&mut self, part: &mut Option<T>, make: impl FnOnce() -> T) {
        let mut present = part.is_some();
        present.walk(self);
        if !present {
            *part = None;
            return;
        }
        part.get_or_insert_with(make).walk(self);
    }

    /// An optional part that exists or not by configuration: the state's own must be
    /// present or absent as the saved one was.
    pub(crate) fn fixed<T: Snapshot>(&mut self, part: &mut Option<T>) {
        let mut present = part.is_some();
        present.walk(self);
        match part {
            Some(p) if present => p.walk(self),
            None if !present => {}
            _ => self.fail(),
        }
    }

    /// Fails the load (a value no state holds).
    pub(crate) fn fail(&mut self) {
        if let Walker::Load(input) = self {
            *input = None;
        }
    }
}

impl Snapshot for usize {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let mut x = *self as u64;
        x.walk(w);
        match usize::try_from(x) {
            Ok(x) => *self = x,
            Err(_) => w.fail(),
        }
    }
}

impl Snapshot for bool {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let mut x = u8::from(*self);
        x.walk(w);
        match x {
            0 | 1 => *self = x == 1,
            _ => w.fail(),
        }
    }
}

impl<T: Snapshot, const N: usize> Snapshot for [T; N] {
    fn walk(&mut self, w: &mut Walker<'_>) {
        T::walk_slice(self, w);
    }
}

impl<T: Snapshot + ?Sized> Snapshot for Box<T> {
    fn walk(&mut self, w: &mut Walker<'_>) {
        (**self).walk(w);
    }
}

impl<T: Snapshot + Default> Snapshot for Vec<T> {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Some(len) = w.len(self.len(), std::mem::size_of::<T>().max(1)) else {
            return;
        };
        self.resize_with(len, T::default);
        T::walk_slice(self, w);
    }
}

/// Optional state that comes and goes as the bytes do (for parts that exist by
/// configuration, [`Walker::fixed`]).
impl<T: Snapshot + Default> Snapshot for Option<T> {
    fn walk(&mut self, w: &mut Walker<'_>) {
        w.optional(self, T::default);
    }
}

impl<A: Snapshot, B: Snapshot> Snapshot for (A, B) {
    fn walk(&mut self, w: &mut Walker<'_>) {
        self.0.walk(w);
        self.1.walk(w);
    }
}

/// Writes `state` to `write`; false if a write failed.
#[must_use]
pub(crate) fn save<T: Snapshot>(state: &mut T, write: &mut dyn std::io::Write) -> bool {
    let mut w = Walker::Save(Some(Sink {
        write,
        buf: Vec::with_capacity(2 * Sink::CHUNK),
    }));
    state.walk(&mut w);
    match w {
        Walker::Save(Some(mut sink)) => sink.drain(true).is_ok(),
        _ => false,
    }
}

/// Loads the `len` bytes `read` gives into `state`, built for the configuration it was
/// saved from; false if they do not fit it (`state` is then partly overwritten and must
/// not be used).
#[must_use]
pub(crate) fn load<T: Snapshot>(state: &mut T, read: &mut dyn std::io::Read, len: u64) -> bool {
    let mut w = Walker::Load(Some(Source {
        read,
        left: len,
        buf: Vec::new(),
    }));
    state.walk(&mut w);
    matches!(w, Walker::Load(Some(Source { left: 0, .. })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug, PartialEq)]
    struct Sample {
        a: u16,
        b: Vec<u32>,
        c: Option<(u8, bool)>,
        d: [i64; 3],
        e: usize,
    }

    impl Snapshot for Sample {
        fn walk(&mut self, w: &mut Walker<'_>) {
            let Sample { a, b, c, d, e } = self;
            a.walk(w);
            b.walk(w);
            c.walk(w);
            d.walk(w);
            e.walk(w);
        }
    }

    fn save_all<T: Snapshot>(state: &mut T) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(save(state, &mut out));
        out
    }

    fn load_all<T: Snapshot>(state: &mut T, mut bytes: &[u8]) -> bool {
        let len = bytes.len() as u64;
        load(state, &mut bytes, len)
    }

    fn sample() -> Sample {
        Sample {
            a: 0xBEEF,
            b: vec![1, 2, u32::MAX],
            c: Some((7, true)),
            d: [-1, 0, i64::MAX],
            e: 12345,
        }
    }

    #[test]
    fn a_saved_state_loads_back_equal() {
        let bytes = save_all(&mut sample());
        let mut back = Sample::default();
        assert!(load_all(&mut back, &bytes));
        assert_eq!(back, sample());
    }

    #[test]
    fn short_long_or_bad_bytes_do_not_load() {
        let bytes = save_all(&mut sample());
        for cut in 0..bytes.len() {
            assert!(
                !load_all(&mut Sample::default(), &bytes[..cut]),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!load_all(&mut Sample::default(), &longer));
        // The flag of `c`'s bool, past a (len 8 + 3 × 4) vector and `a`.
        let mut bad = bytes.clone();
        bad[2 + 8 + 12 + 1 + 1] = 2;
        assert!(!load_all(&mut Sample::default(), &bad));
        // A vector longer than the bytes left is refused before anything is allocated.
        let mut huge = bytes;
        huge[2..10].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!load_all(&mut Sample::default(), &huge));
    }

    #[test]
    fn parts_move_in_runs_and_load_back_equal() {
        struct Table(Vec<[u16; 3]>);
        impl Snapshot for Table {
            fn walk(&mut self, w: &mut Walker<'_>) {
                w.parts(&mut self.0);
            }
        }
        // More parts than one run holds (65,536 bytes at a time).
        let parts: Vec<[u16; 3]> = (0..40_000u16).map(|i| [i, !i, i.rotate_left(5)]).collect();
        let bytes = save_all(&mut Table(parts.clone()));
        assert_eq!(bytes.len(), 40_000 * 6);
        let mut back = Table(vec![[0; 3]; 40_000]);
        assert!(load_all(&mut back, &bytes));
        assert!(back.0 == parts);
        assert!(!load_all(
            &mut Table(vec![[0; 3]; 40_000]),
            &bytes[..bytes.len() - 1]
        ));
    }

    #[test]
    fn configuration_is_compared_not_loaded() {
        struct Built(u32, Option<u8>);
        impl Snapshot for Built {
            fn walk(&mut self, w: &mut Walker<'_>) {
                w.check(&self.0.to_le_bytes());
                w.fixed(&mut self.1);
            }
        }
        let bytes = save_all(&mut Built(5, Some(9)));
        let mut same = Built(5, Some(0));
        assert!(load_all(&mut same, &bytes));
        assert_eq!(same.1, Some(9));
        assert!(!load_all(&mut Built(6, Some(0)), &bytes));
        assert!(!load_all(&mut Built(5, None), &bytes));
    }
}
