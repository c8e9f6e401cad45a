//! Burst-processing latency, recorded per worker with hdrhistogram.
//! (Being written.)

use std::sync::Mutex;

/// A worker's published latency histogram (TSC cycles per burst).
pub struct LatencyCell {
    pub hist: Mutex<hdrhistogram::Histogram<u64>>,
}

impl LatencyCell {
    pub fn new() -> LatencyCell {
        LatencyCell {
            hist: Mutex::new(
                hdrhistogram::Histogram::new(3).expect("3 significant digits is valid"),
            ),
        }
    }
}
