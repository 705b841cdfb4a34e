//! Memory prefetch: one of the two places the crate uses `unsafe` (with [`crate::wide`]).
//!
//! The context statistics, copy and retrieval tables are tens of MiB per lane, so most of
//! their lookups miss every cache. A lookup whose address is known a byte ahead (the next
//! byte's contexts are fixed once the current byte is known) is prefetched then, and the
//! miss overlaps the rest of the update. A prefetch is only a hint: it never changes a
//! value, so it cannot affect what is coded.

/// Asks the CPU to bring the cache line holding `slice[index]` closer; does nothing for an
/// index out of range or where the target has no prefetch instruction.
#[inline(always)]
pub(crate) fn prefetch<T>(slice: &[T], index: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = slice.get(index) {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch has no architectural effect (it cannot fault, not even on an
        // invalid address) and the pointer comes from a live reference; SSE, which the
        // instruction belongs to, is part of every x86-64 target.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast::<i8>());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, index);
}
