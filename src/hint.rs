//! Memory hints: prefetch and huge pages, one of the two places the crate uses `unsafe`
//! (with [`crate::wide`]).
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

/// `vec![value; len]`, backed by huge pages where the kernel allows ([`advise_huge`]).
pub(crate) fn huge_vec<T: Clone>(value: T, len: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    advise_huge(&mut v);
    v.resize(len, value);
    v
}

/// `items.to_vec()`, backed by huge pages where the kernel allows ([`advise_huge`]).
pub(crate) fn huge_copy<T: Copy>(items: &[T]) -> Vec<T> {
    let mut v = Vec::with_capacity(items.len());
    advise_huge(&mut v);
    v.extend_from_slice(items);
    v
}

/// Asks the kernel to back `v`'s spare capacity with huge pages (Linux, transparent huge
/// pages in `madvise` mode or always): the context table, the gate's weights and the APMs
/// are megabytes to tens of MiB read at random, which with 4 KiB pages misses the TLB on
/// nearly every lookup (`docs/profile.md`, "Huge pages"). Only the 2 MiB-aligned part
/// inside the spare capacity is advised, before any of it is written; the advice changes
/// no value, and where the kernel declines it nothing changes at all.
fn advise_huge<T>(v: &mut Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let spare = v.spare_capacity_mut().as_ptr_range();
        let (first, last) = (
            (spare.start as usize).next_multiple_of(HUGE),
            spare.end as usize & !(HUGE - 1),
        );
        if last > first {
            // SAFETY: madvise only tells the kernel how to back pages; the range lies
            // within this vector's allocation, and MADV_HUGEPAGE changes no contents.
            #[allow(unsafe_code)]
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_vectors_hold_what_plain_ones_do() {
        // Lengths below, across and well past a 2 MiB page, of 1-, 4- and 64-byte items.
        for len in [0, 1, 1000, (2 << 20) + 3, 5 << 20] {
            assert!(huge_vec(7u8, len) == vec![7u8; len], "{len}");
        }
        let words: Vec<u32> = (0..3u32 << 20).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
        assert!(huge_copy(&words) == words);
        assert!(huge_vec([1u64; 8], 70_000) == vec![[1u64; 8]; 70_000]);
    }
}
