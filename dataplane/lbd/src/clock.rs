//! The director's millisecond clock, read from the TSC.
//!
//! Workers read it once per burst; the control thread uses the same clock so
//! that connection and neighbour timestamps compare across threads.

use lbcore::conntrack::Tick;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: u64,
    /// Milliseconds per TSC tick as a 64.64 fixed-point factor: a multiply
    /// and a shift per read instead of a division.
    ms_per_tsc: u128,
}

impl Clock {
    pub fn new(tsc_hz: u64) -> Clock {
        Clock {
            start: dpdk::tsc::now(),
            ms_per_tsc: (1000u128 << 64) / tsc_hz.max(1) as u128,
        }
    }

    /// Milliseconds since start, wrapping at 2^32 (about 49.7 days); all
    /// comparisons on ticks are wrap-safe.
    #[inline]
    pub fn now(&self) -> Tick {
        let d = dpdk::tsc::now().wrapping_sub(self.start) as u128;
        ((d * self.ms_per_tsc) >> 64) as Tick
    }

    /// Seconds since start, for reports.
    pub fn seconds(&self) -> f64 {
        let d = dpdk::tsc::now().wrapping_sub(self.start) as u128;
        ((d * self.ms_per_tsc) >> 64) as f64 / 1000.0
    }
}
