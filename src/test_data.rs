//! Test data shared by the unit tests.

/// `len` pseudo-random bytes from `seed`: a small deterministic generator (xorshift), so
/// the tests need no crate.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
