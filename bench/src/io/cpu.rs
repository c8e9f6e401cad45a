//! How much CPU the DUT's forwarding thread and the generator actually got
//! during a measurement, from the kernel's per-thread run time
//! (`/proc/PID/task/TID/schedstat`, first field: nanoseconds on a CPU).
//!
//! On a shared machine other work takes CPU time from either side, and a
//! descheduled poller forwards nothing: the wall-clock rate then measures
//! the neighbours as much as the DUT. The shares say how disturbed a run
//! was, and frames ÷ the DUT's on-CPU seconds is a rate that the DUT's own
//! preemption does not lower (its idle polls still count: a DUT that waits
//! for a starved generator spins on its CPU, so it stays a lower bound).

use serde::Serialize;

/// On-CPU nanoseconds of every thread of a process at one moment.
#[derive(Debug, Clone, Default)]
pub struct Threads(Vec<(u32, u64)>);

fn runtime_ns(path: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Threads {
    /// Now, for process `pid` (empty if it is gone).
    pub fn of(pid: Option<u32>) -> Threads {
        let Some(pid) = pid else {
            return Threads::default();
        };
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Threads::default();
        };
        Threads(
            dir.flatten()
                .filter_map(|e| {
                    let tid: u32 = e.file_name().to_str()?.parse().ok()?;
                    let ns = runtime_ns(&format!("/proc/{pid}/task/{tid}/schedstat"))?;
                    Some((tid, ns))
                })
                .collect(),
        )
    }

    /// The largest run time any one thread gained since `before`: the
    /// forwarding lcore's, which polls without pause (the other threads
    /// sleep).
    pub fn busiest_since(&self, before: &Threads) -> u64 {
        self.0
            .iter()
            .map(|&(tid, ns)| {
                let was = before.0.iter().find(|t| t.0 == tid).map_or(0, |t| t.1);
                ns.saturating_sub(was)
            })
            .max()
            .unwrap_or(0)
    }
}

/// On-CPU nanoseconds of the calling thread (the kernel brings a running
/// thread's figure up to date at its ticks: a few ms late at most).
pub fn this_thread_ns() -> u64 {
    runtime_ns("/proc/thread-self/schedstat").unwrap_or(0)
}

/// CPU time of one measurement window.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuUse {
    /// Seconds the DUT's forwarding thread ran, and the generator's.
    pub dut_seconds: f64,
    pub gen_seconds: f64,
    /// Each as a share of the window, %: 100 means undisturbed.
    pub dut_percent: f64,
    pub gen_percent: f64,
}

impl CpuUse {
    pub fn new(dut_ns: u64, gen_ns: u64, window_seconds: f64) -> CpuUse {
        let w = window_seconds.max(1e-9);
        let (d, g) = (dut_ns as f64 / 1e9, gen_ns as f64 / 1e9);
        CpuUse {
            dut_seconds: d,
            gen_seconds: g,
            dut_percent: (d * 100.0 / w).min(100.0),
            gen_percent: (g * 100.0 / w).min(100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_thread_is_the_one_that_gained_most() {
        let before = Threads(vec![(1, 100), (2, 5_000), (3, 0)]);
        let after = Threads(vec![(1, 150), (2, 905_000), (3, 10), (4, 7)]);
        assert_eq!(after.busiest_since(&before), 900_000);
        assert_eq!(Threads::default().busiest_since(&before), 0);
    }

    #[test]
    fn shares_are_of_the_window() {
        let c = CpuUse::new(500_000_000, 1_000_000_000, 1.0);
        assert_eq!(c.dut_percent, 50.0);
        assert_eq!(c.gen_percent, 100.0);
        assert_eq!(c.dut_seconds, 0.5);
    }

    #[test]
    fn a_spinning_thread_gains_run_time() {
        // The kernel updates a running thread's figure at its ticks and
        // context switches, so spin (bounded) until it moves.
        let t0 = this_thread_ns();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut x = 0u64;
        while this_thread_ns() == t0 && std::time::Instant::now() < end {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(
            this_thread_ns() > t0,
            "no run time gained in 5 s of spinning"
        );
        let me = Threads::of(Some(std::process::id()));
        assert!(!me.0.is_empty());
    }
}
