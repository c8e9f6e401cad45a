//! Burst-processing latency, recorded per worker with hdrhistogram.
//!
//! A worker times each burst it processes (in TSC cycles) and records the
//! value into a histogram of its own, [`LatencyRecorder`]: a bounds check and
//! an array increment, no allocation, no lock, no atomic. About once a second
//! it folds that local histogram into its [`LatencyCell`], the copy the
//! `/metrics` endpoint reads, with `try_lock`: if a scrape holds the lock at
//! that moment the worker keeps its samples and tries again after its next
//! burst, so it never waits for another thread.
//!
//! Both histograms have the same fixed bounds ([`LOWEST_CYCLES`] to
//! [`HIGHEST_CYCLES`], [`SIGNIFICANT_DIGITS`]), so their count arrays are
//! allocated once, at creation, and adding one to the other is a plain
//! element-wise add that cannot fail or resize. Values outside the bounds are
//! clamped to them (a burst longer than `HIGHEST_CYCLES` — a third of a second
//! at 3 GHz — is recorded as `HIGHEST_CYCLES`).

use std::sync::{Mutex, TryLockError};

use hdrhistogram::Histogram;

/// Smallest value the histograms distinguish (cycles).
pub const LOWEST_CYCLES: u64 = 1;
/// Largest value the histograms track; larger ones are clamped to it.
pub const HIGHEST_CYCLES: u64 = 1_000_000_000;
/// Value precision: 2 significant digits, i.e. every recorded value is
/// within 1% of the true one. Latency dashboards need no more, and it keeps
/// each histogram at about 24 KiB instead of the ~170 KiB that 3 digits
/// take: the once-a-second fold on the worker's core touches (and evicts
/// from its cache) 7 times less memory.
pub const SIGNIFICANT_DIGITS: u8 = 2;

/// A histogram with the bounds shared by [`LatencyRecorder`] and
/// [`LatencyCell`].
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_CYCLES, HIGHEST_CYCLES, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// A worker's published latency histogram (TSC cycles per burst), cumulative
/// since start. The worker adds to it about once a second; a scrape locks it
/// briefly to read it.
pub struct LatencyCell {
    pub hist: Mutex<Histogram<u64>>,
}

impl LatencyCell {
    pub fn new() -> LatencyCell {
        LatencyCell {
            hist: Mutex::new(new_histogram()),
        }
    }
}

impl Default for LatencyCell {
    fn default() -> Self {
        LatencyCell::new()
    }
}

/// The worker-side recorder: samples go into `local`, which is folded into
/// the worker's [`LatencyCell`] about once a second.
pub struct LatencyRecorder {
    local: Histogram<u64>,
    last_publish_tsc: u64,
    publish_every_tsc: u64,
}

/// Publish period assumed when the TSC frequency is unknown (0).
const FALLBACK_PUBLISH_EVERY_TSC: u64 = 1_000_000_000;

impl LatencyRecorder {
    /// A recorder that publishes about once a second for a TSC running at
    /// `tsc_hz` (0, unknown: every 10^9 cycles). Allocates its histogram
    /// here, once.
    pub fn new(tsc_hz: u64) -> LatencyRecorder {
        LatencyRecorder {
            local: new_histogram(),
            last_publish_tsc: 0,
            publish_every_tsc: if tsc_hz == 0 {
                FALLBACK_PUBLISH_EVERY_TSC
            } else {
                tsc_hz
            },
        }
    }

    /// Record one burst's processing time in TSC cycles. Never allocates,
    /// locks or fails: values beyond the histogram's range are clamped.
    #[inline]
    pub fn record(&mut self, cycles: u64) {
        self.local.saturating_record(cycles);
    }

    /// Samples recorded and not yet published.
    #[cfg(test)]
    pub fn pending(&self) -> u64 {
        self.local.len()
    }

    /// About once a second, fold the local samples into `cell` if its lock
    /// is free right now; if it is busy (a scrape is reading it), keep them
    /// and try again at the next call. Never blocks.
    #[inline]
    pub fn maybe_publish(&mut self, now_tsc: u64, cell: &LatencyCell) {
        if now_tsc.wrapping_sub(self.last_publish_tsc) < self.publish_every_tsc {
            return;
        }
        self.publish(now_tsc, cell);
    }

    #[cold]
    fn publish(&mut self, now_tsc: u64, cell: &LatencyCell) {
        if self.local.is_empty() {
            self.last_publish_tsc = now_tsc;
            return;
        }
        let mut shared = match cell.hist.try_lock() {
            Ok(g) => g,
            // A scrape that panicked cannot have left the histogram half
            // written in a way that matters for counting: keep using it.
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        // Same bounds and precision on both sides: this is an element-wise
        // add that cannot fail. Were it ever to, the samples are dropped
        // rather than left to pile up.
        let _ = shared.add(&self.local);
        drop(shared);
        self.local.reset();
        self.last_publish_tsc = now_tsc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 2_000_000_000;

    #[test]
    fn records_and_publishes_once_per_period() {
        let cell = LatencyCell::new();
        let mut rec = LatencyRecorder::new(HZ);
        let t0 = 10 * HZ;
        for v in [100, 200, 300] {
            rec.record(v);
        }
        // First call: the period since "0" has long passed.
        rec.maybe_publish(t0, &cell);
        assert_eq!(rec.pending(), 0);
        assert_eq!(cell.hist.lock().unwrap().len(), 3);
        // Within the period: kept locally.
        rec.record(400);
        rec.maybe_publish(t0 + HZ / 2, &cell);
        assert_eq!(rec.pending(), 1);
        assert_eq!(cell.hist.lock().unwrap().len(), 3);
        // After the period: folded in; the shared histogram is cumulative.
        rec.maybe_publish(t0 + HZ, &cell);
        assert_eq!(rec.pending(), 0);
        let h = cell.hist.lock().unwrap();
        assert_eq!(h.len(), 4);
        assert!(h.equivalent(h.max(), 400));
        assert!(h.equivalent(h.min(), 100));
    }

    #[test]
    fn busy_lock_is_not_waited_for() {
        let cell = LatencyCell::new();
        let mut rec = LatencyRecorder::new(HZ);
        rec.record(1234);
        let t = 5 * HZ;
        {
            let _scrape = cell.hist.lock().unwrap();
            rec.maybe_publish(t, &cell); // returns at once
            assert_eq!(rec.pending(), 1);
        }
        // Next call (even within the period) retries: the period restarts
        // only after a successful publish.
        rec.maybe_publish(t + 1, &cell);
        assert_eq!(rec.pending(), 0);
        assert_eq!(cell.hist.lock().unwrap().len(), 1);
    }

    #[test]
    fn busy_lock_from_another_thread() {
        let cell = std::sync::Arc::new(LatencyCell::new());
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let c = cell.clone();
        let holder = std::thread::spawn(move || {
            let _g = c.hist.lock().unwrap();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        locked_rx.recv().unwrap();
        let mut rec = LatencyRecorder::new(HZ);
        rec.record(10);
        rec.maybe_publish(3 * HZ, &cell);
        assert_eq!(rec.pending(), 1, "kept while the lock is held elsewhere");
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        rec.maybe_publish(3 * HZ + 1, &cell);
        assert_eq!(rec.pending(), 0);
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let cell = LatencyCell::new();
        let mut rec = LatencyRecorder::new(HZ);
        rec.record(0);
        rec.record(u64::MAX);
        rec.record(HIGHEST_CYCLES * 10);
        rec.maybe_publish(HZ, &cell);
        let h = cell.hist.lock().unwrap();
        assert_eq!(h.len(), 3);
        assert!(h.max() >= HIGHEST_CYCLES && h.max() <= HIGHEST_CYCLES + HIGHEST_CYCLES / 50);
        assert_eq!(h.min(), 0);
    }

    #[test]
    fn precision_is_within_one_percent() {
        let mut h = new_histogram();
        for v in [1u64, 37, 999, 12_345, 6_789_012, 987_654_321] {
            h.record(v).unwrap();
            let q = h.median_equivalent(v);
            assert!(q.abs_diff(v) * 100 <= v.max(1), "{v} -> {q}");
        }
    }

    #[test]
    fn unknown_tsc_rate_still_rate_limits() {
        let cell = LatencyCell::new();
        let mut rec = LatencyRecorder::new(0);
        rec.record(5);
        rec.maybe_publish(FALLBACK_PUBLISH_EVERY_TSC, &cell);
        assert_eq!(rec.pending(), 0);
        rec.record(5);
        rec.maybe_publish(FALLBACK_PUBLISH_EVERY_TSC + 1000, &cell);
        assert_eq!(rec.pending(), 1);
    }

    #[test]
    fn publishing_keeps_the_worker_cheap() {
        // The fold is element-wise over the histogram's counts; print its
        // cost so a change of bounds or precision shows in the test log.
        let cell = LatencyCell::new();
        let mut rec = LatencyRecorder::new(HZ);
        let mut t = HZ;
        let mut times = Vec::new();
        for round in 0..200u64 {
            for i in 0..1000u64 {
                rec.record(1000 + (i * 7919 + round) % 100_000);
            }
            let start = std::time::Instant::now();
            rec.maybe_publish(t, &cell);
            times.push(start.elapsed());
            t += HZ;
        }
        assert_eq!(cell.hist.lock().unwrap().len(), 200_000);
        times.sort();
        eprintln!(
            "latency publish: median {:?}, max {:?}, {} counts per histogram",
            times[times.len() / 2],
            times[times.len() - 1],
            rec.local.distinct_values()
        );
    }
}
