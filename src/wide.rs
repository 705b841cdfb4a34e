//! Wider vectors where the CPU has them: for the mixing gate's integer arithmetic and the
//! neural expert's element-wise kernels.
//!
//! The crate is built for the baseline of its target (SSE2 on x86-64), so the compiler
//! vectorises four floats at a time. The neural expert's own arithmetic (the online output
//! layer, the GRU gates, the softmax) is element-wise `+ - * /` over arrays of 256 and more,
//! and runs twice as wide with AVX2, four times with AVX-512. Width never changes a result:
//! every element sees the same exactly rounded operations in the same order (Rust never
//! contracts `a * b + c` into a fused multiply-add, whatever the target has), and sums are
//! written with a fixed order of running sums, not left to the compiler. So a stream coded
//! with either decodes without it, bit for bit; `tests/neural.rs` checks that across
//! kernels. The gate's arithmetic is integer, so width cannot change it either;
//! `tests/roundtrip.rs` checks that the mixing streams written without AVX-512 and without
//! AVX2 are the same bytes.

/// Runs `f`, compiled for AVX-512 or AVX2 when this CPU has it. `f` and what it calls must
/// be inlined into it (`#[inline(always)]`) to be compiled for them too: the closure
/// itself as well, or the compiler may keep it a function of its own, built for the
/// baseline.
#[inline(always)]
pub(crate) fn run<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        #[target_feature(enable = "avx2,avx512f,avx512bw")]
        fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has AVX-512 F and BW, and AVX2 (checked just above), the one
        // requirement of calling a function compiled for them.
        #[allow(unsafe_code)]
        return unsafe { with_avx512(f) };
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        #[target_feature(enable = "avx2")]
        fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has AVX2 (checked just above), the one requirement of calling a
        // function compiled for it.
        #[allow(unsafe_code)]
        return unsafe { with_avx2(f) };
    }
    f()
}

/// Whether to use AVX2: the CPU has it, and `NC_NO_AVX2` is not set (tests use it to check
/// that both paths give the same bits).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2.get_or_init(|| {
        std::is_x86_feature_detected!("avx2") && std::env::var_os("NC_NO_AVX2").is_none()
    })
}

/// Whether to use AVX-512 (F and BW): the CPU has it, and neither `NC_NO_AVX2` nor
/// `NC_NO_AVX512` is set (tests use them to check that every path gives the same bits).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    static AVX512: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX512.get_or_init(|| {
        has_avx2()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::env::var_os("NC_NO_AVX512").is_none()
    })
}
