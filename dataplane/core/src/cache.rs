//! The one place `lbcore` uses `unsafe`: a cache prefetch hint.
//!
//! The crate denies `unsafe_code`; this module is the fenced exception. A
//! prefetch is only a hint to the CPU (it cannot fault, even on a bad
//! address, and changes no state visible to the program), but Rust exposes
//! it only as an `unsafe` intrinsic. Every other part of the packet path is
//! safe code; more prefetching (the burst pipeline) belongs here too.

/// Ask the CPU to bring the cache line holding `*value` into all cache
/// levels, ahead of a read a few packets later.
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: _mm_prefetch is a hint with no memory effect; the pointer
    // comes from a live reference.
    unsafe {
        core::arch::x86_64::_mm_prefetch(
            value as *const T as *const i8,
            core::arch::x86_64::_MM_HINT_T0,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// [`prefetch`] of element `i` of `slice`, without a bounds check: the
/// address is only computed (`wrapping_add`), never read by the program,
/// and a prefetch of any address (even past the end) is a hint that cannot
/// fault. The callers' index is a hash masked to the slice's length.
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch_at<T>(slice: &[T], i: usize) {
    let p = slice.as_ptr().wrapping_add(i);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: _mm_prefetch is a hint with no memory effect and cannot
    // fault, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`prefetch`] of the cache line holding address `p`, computed by the
/// caller and never read by the program (a hint that cannot fault,
/// whatever the address).
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch_addr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: _mm_prefetch is a hint with no memory effect and cannot
    // fault, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
