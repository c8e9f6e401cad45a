//! State shared between the control thread, the control socket, the metrics
//! endpoint and the workers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam::queue::ArrayQueue;
use lbcore::counters::WorkerStats;
use lbcore::neigh::NeighTable;
use lbcore::pipeline::Snapshot;

use crate::clock::Clock;
use crate::latency::LatencyCell;

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

/// A frame one worker passes to another ([`lbcore::pipeline::Verdict::Handoff`]):
/// an ICMP error about a DR/tunnel connection that may be in the other
/// worker's table.
pub struct Handoff {
    pub mbuf: dpdk::Mbuf,
    /// The port it arrived on.
    pub port: u16,
    /// Workers that have already looked it up.
    pub hops: u8,
}

/// Depth of each worker's hand-over mailbox. ICMP errors are rare; a flood
/// beyond this is dropped and counted (`drop_handoff_full`).
pub const HANDOFF_QUEUE_DEPTH: usize = 256;

/// A director port, as the control side sees it.
pub struct PortHandle {
    pub name: String,
    pub device: String,
    pub address: String,
    pub port: dpdk::Port,
    /// What bring-up negotiated, and link changes (device.rs).
    pub dev: Arc<crate::device::DeviceInfo>,
}

/// One worker, as the control side sees it.
pub struct WorkerHandle {
    pub index: u16,
    pub port: u16,
    pub queue: u16,
    pub lcore: u32,
    pub stats: Arc<WorkerStats>,
    /// Burst-processing latency, published by the worker about once a second.
    pub latency: Arc<LatencyCell>,
    /// Mailbox for connection listings (`lbctl conns`).
    pub dump: Arc<crate::control::conns::DumpSlot>,
}

/// Outcome of the last configuration change (reload, lbctl edit, restore).
#[derive(Debug, Clone)]
pub struct ChangeStatus {
    pub ok: bool,
    pub message: String,
    /// Unix time (seconds) of the change.
    pub at_unix: u64,
}

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
    /// Per worker: frames other workers handed over. Declared before `pool`
    /// so that leftover mbufs are freed while their pool still exists.
    pub handoff: Vec<ArrayQueue<Handoff>>,
    /// Per port: its kernel exception path, if configured (`kernel.rs`).
    /// Before `pool`, like `handoff`.
    pub kernel: Vec<Option<crate::kernel::KernelPath>>,
    /// Packet buffers, for frames the workers build (control frames).
    pub pool: dpdk::Mempool,
    pub ports: Vec<PortHandle>,
    pub workers: Vec<WorkerHandle>,
    /// Total connection-table capacity (all workers).
    pub conn_capacity: u64,
    /// Where NAT clients' packets come from (for replies), shared by all
    /// workers; connection sync fills it for connections it takes over.
    pub nat_clients: Arc<lbcore::neigh::ClientMacs>,
    /// NAT connections, shared by all workers (two entries each).
    pub nat: Arc<lbcore::conntrack::shared::SharedConnTable>,
    pub last_change: Mutex<ChangeStatus>,
    /// VRRP backup or fault: the workers leave the VIPs alone (vrrp/).
    pub standby: AtomicBool,
    /// lbd is stopping: the VRRP speaker resigns (priority 0) ...
    pub resigning: AtomicBool,
    /// ... and says when it has.
    pub resigned: AtomicBool,
    /// The VRRP instance's state, for status.
    pub vrrp: Mutex<Option<lbcore::api::VrrpInfo>>,
    /// Connection sync is configured.
    pub sync_configured: bool,
    /// Connection sync's counters (sync.rs).
    pub sync_stats: crate::sync::SyncStats,
    /// Health-checked real servers and their state (health/).
    pub health: Mutex<crate::health::HealthBook>,
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

    /// Publish a new snapshot; workers switch to it at their next burst.
    pub fn publish(&self, snap: Arc<Snapshot>) {
        let g = snap.generation;
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = snap;
        self.generation.store(g, Ordering::Release);
    }

    pub fn worker_stats(&self) -> Vec<Arc<WorkerStats>> {
        self.workers.iter().map(|w| w.stats.clone()).collect()
    }

    pub fn last_change(&self) -> ChangeStatus {
        self.last_change
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
