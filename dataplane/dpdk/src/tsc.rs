//! The time-stamp counter.

use dpdk_sys as sys;

/// Current TSC value (`rte_rdtsc`). Inlined `rdtsc` on x86-64.
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc is available on every x86-64 CPU and has no
        // preconditions.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: the shim wraps rte_rdtsc, which has no preconditions.
        unsafe { sys::lbd_shim_rdtsc() }
    }
}

/// TSC ticks per second (`rte_get_tsc_hz`); 0 before EAL initialisation.
#[inline]
pub fn hz() -> u64 {
    if !crate::eal::is_initialized() {
        return 0;
    }
    // SAFETY: EAL is initialised; this reads a calibrated global.
    unsafe { sys::rte_get_tsc_hz() }
}
