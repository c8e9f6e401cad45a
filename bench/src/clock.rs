//! A cheap cycle clock for per-burst timing: the TSC on x86_64 (invariant on
//! every CPU this project targets), calibrated once against `Instant`;
//! elsewhere `Instant` itself, counted in nanoseconds.

use std::time::{Duration, Instant};

/// Read the clock (TSC ticks on x86_64, nanoseconds elsewhere).
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: lfence and rdtsc have no memory-safety preconditions; every
    // x86_64 CPU has both.
    unsafe {
        // lfence keeps rdtsc from running ahead of the work being timed.
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<Instant> = OnceLock::new();
        T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Clock ticks per nanosecond, measured over `over` (at least).
///
/// Sleeps rather than spins: the TSC is invariant, so it counts through the
/// sleep, and a run executes the same instructions however long the sleep
/// really took (callgrind's instruction counts of two runs then differ only
/// by what the runs were asked to do).
pub fn calibrate(over: Duration) -> f64 {
    let (t0, c0) = (Instant::now(), ticks());
    std::thread::sleep(over);
    let (c1, el) = (ticks(), t0.elapsed());
    (c1.wrapping_sub(c0)) as f64 / el.as_nanos() as f64
}
