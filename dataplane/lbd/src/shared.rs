//! State shared between the control thread and the workers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam::queue::ArrayQueue;
use lbcore::neigh::NeighTable;
use lbcore::pipeline::Snapshot;

use crate::clock::Clock;

/// A small frame built by the control thread (ARP requests, later
/// gratuitous ARP) for a worker to transmit on its port.
#[derive(Clone, Copy)]
pub struct CtlFrame {
    pub len: u16,
    pub bytes: [u8; 64],
}

/// Frames the control thread queues per port; the worker on queue 0 of that
/// port drains it between bursts.
pub const CTL_QUEUE_DEPTH: usize = 256;

pub struct Shared {
    /// Set to stop all workers.
    pub stop: AtomicBool,
    /// Generation of the snapshot in `snapshot`; workers compare it with
    /// their own once per burst (one relaxed load) and take the mutex only
    /// when it changed — never on the steady-state hot path.
    pub generation: AtomicU64,
    pub snapshot: Mutex<Arc<Snapshot>>,
    pub neigh: Arc<NeighTable>,
    pub clock: Clock,
    /// Per port: frames to send.
    pub ctl_tx: Vec<ArrayQueue<CtlFrame>>,
    /// Packet buffers, for frames the workers build (control frames).
    pub pool: dpdk::Mempool,
}

impl Shared {
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
