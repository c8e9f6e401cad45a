//! A port's kernel exception path as the workers and the control side see
//! it (its queues and counters, each worker's rate budget), and the names
//! EAL gives the TAP devices. The thread that moves the frames is in
//! `mod.rs`.

use std::sync::atomic::AtomicU64;

use crossbeam::queue::ArrayQueue;
use lbcore::config::KernelPathConfig;
use lbcore::conntrack::Tick;

/// Depth of each direction's queue, per port.
pub const KERNEL_QUEUE_DEPTH: usize = 1024;

/// The DPDK device name lbd gives port `index`'s TAP (matched by the
/// `net_tap` driver by its prefix).
pub fn vdev_name(index: usize) -> String {
    format!("net_tap_lbd{index}")
}

/// The `--vdev` argument creating port `index`'s TAP interface.
pub fn vdev_arg(index: usize, k: &KernelPathConfig) -> String {
    format!("--vdev={},iface={}", vdev_name(index), k.iface)
}

/// One port's exception path, as the workers and the control side see it.
pub struct KernelPath {
    /// The TAP interface's name.
    pub iface: String,
    pub rate_pps: u32,
    /// Frames from the wire for the kernel (filled by workers).
    pub to_kernel: ArrayQueue<dpdk::Mbuf>,
    /// Frames the kernel sent, to transmit (drained by the queue-0 worker).
    pub from_kernel: ArrayQueue<dpdk::Mbuf>,
    /// Frames written to the TAP device.
    pub delivered: AtomicU64,
    /// Frames the TAP device refused (kernel's queue full).
    pub tap_refused: AtomicU64,
    /// Frames read from the TAP device.
    pub sent_by_kernel: AtomicU64,
    /// Frames from the kernel dropped because `from_kernel` was full.
    pub from_kernel_full: AtomicU64,
}

impl KernelPath {
    pub fn new(k: &KernelPathConfig) -> KernelPath {
        KernelPath {
            iface: k.iface.clone(),
            rate_pps: k.rate_pps,
            to_kernel: ArrayQueue::new(KERNEL_QUEUE_DEPTH),
            from_kernel: ArrayQueue::new(KERNEL_QUEUE_DEPTH),
            delivered: AtomicU64::new(0),
            tap_refused: AtomicU64::new(0),
            sent_by_kernel: AtomicU64::new(0),
            from_kernel_full: AtomicU64::new(0),
        }
    }
}

/// A worker's allowance of frames to one port's kernel: a token bucket
/// refilled from the worker's millisecond clock (per-core state: no shared
/// counter on any path).
#[derive(Debug, Clone)]
pub struct KernelBudget {
    /// Thousandths of a frame available.
    milli_tokens: u64,
    /// Frames per second for this worker.
    rate: u64,
    /// At most this many thousandths (a tenth of a second's worth, at least
    /// a burst).
    cap: u64,
    last: Tick,
}

impl KernelBudget {
    /// A bucket for `rate_pps` shared by `workers` workers (each gets an
    /// equal part, at least 1 frame/s).
    pub fn new(rate_pps: u32, workers: usize) -> KernelBudget {
        let rate = (rate_pps as u64 / workers.max(1) as u64).max(1);
        let cap = (rate / 10).max(32) * 1000;
        KernelBudget {
            milli_tokens: cap,
            rate,
            cap,
            last: 0,
        }
    }

    /// Take one frame's worth at time `now` (ms); false when over budget.
    #[inline]
    pub fn take(&mut self, now: Tick) -> bool {
        let elapsed = now.wrapping_sub(self.last) as u64;
        if elapsed > 0 {
            // 1 frame/s is 1 thousandth of a frame per millisecond.
            self.milli_tokens = (self.milli_tokens + elapsed * self.rate).min(self.cap);
            self.last = now;
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_allows_a_burst_then_the_rate() {
        // 1000 frames/s over 2 workers: 500/s each, a burst of 50.
        let mut b = KernelBudget::new(1000, 2);
        let burst = (0..1000).take_while(|_| b.take(0)).count();
        assert_eq!(burst, 50);
        assert!(!b.take(0));
        // 10 ms later: 5 more frames.
        let more = (0..1000).take_while(|_| b.take(10)).count();
        assert_eq!(more, 5);
        // A long pause refills only up to the cap.
        let after_pause = (0..1000).take_while(|_| b.take(100_000)).count();
        assert_eq!(after_pause, 50);
    }

    #[test]
    fn budget_is_never_zero() {
        let mut b = KernelBudget::new(1, 8);
        assert!(b.take(0), "the initial burst");
        let n = (0..100).take_while(|_| b.take(0)).count();
        assert_eq!(n, 31, "a burst of 32 in all");
        assert!(b.take(1000), "1 frame per second still passes");
    }

    #[test]
    fn vdev_arguments() {
        let k = KernelPathConfig {
            iface: "lbd-lan0".into(),
            rate_pps: 10,
        };
        assert_eq!(vdev_arg(1, &k), "--vdev=net_tap_lbd1,iface=lbd-lan0");
    }
}
