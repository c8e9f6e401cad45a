//! The snapshot in force and its generation: written by the control plane,
//! read by the workers, the metrics and the control threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lbcore::pipeline::Snapshot;

/// Holds the current [`Snapshot`]. Workers compare [`SnapshotCell::generation`]
/// with their own once per burst (one relaxed load) and take the mutex only
/// when it changed — never on the steady-state hot path.
pub struct SnapshotCell {
    generation: AtomicU64,
    snapshot: Mutex<Arc<Snapshot>>,
}

impl SnapshotCell {
    pub fn new(first: Arc<Snapshot>) -> SnapshotCell {
        SnapshotCell {
            generation: AtomicU64::new(first.generation),
            snapshot: Mutex::new(first),
        }
    }

    /// The snapshot in force.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The generation of the snapshot in force (relaxed: a worker that reads
    /// a stale value sees the new one a burst later).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Publish a new snapshot; workers switch to it at their next burst.
    pub fn publish(&self, snap: Arc<Snapshot>) {
        let g = snap.generation;
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = snap;
        self.generation.store(g, Ordering::Release);
    }
}
