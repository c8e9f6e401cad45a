//! What the control side shares between its threads (the control loop and
//! socket, the metrics endpoint, health checks, VRRP, sync): the dataplane
//! handles (`dataplane.rs`), the ports and workers as the control side sees
//! them, and the control state.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use lbcore::counters::WorkerStats;

use crate::announce::Announce;
use crate::control::change::ChangeLog;
use crate::control::conns::DumpSlot;
use crate::dataplane::Dataplane;
use crate::device::DeviceInfo;
use crate::health::HealthBook;
use crate::latency::LatencyCell;
use crate::sync::SyncStats;

/// A director port, as the control side sees it.
pub struct PortHandle {
    pub name: String,
    pub device: String,
    pub address: String,
    pub port: dpdk::Port,
    /// What bring-up negotiated, and link changes (device.rs).
    pub dev: Arc<DeviceInfo>,
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
    pub dump: Arc<DumpSlot>,
}

pub struct Shared {
    /// What the workers use too.
    pub dataplane: Arc<Dataplane>,
    pub ports: Vec<PortHandle>,
    pub workers: Vec<WorkerHandle>,
    /// Total connection-table capacity (all workers).
    pub conn_capacity: u64,
    /// Outcome of the last configuration change.
    pub changes: Arc<ChangeLog>,
    /// lbd is stopping: the VRRP speaker resigns (priority 0) ...
    pub resigning: AtomicBool,
    /// ... and says when it has.
    pub resigned: AtomicBool,
    /// The VRRP instances' states (`vrrp`, `vrrp6`), for status and
    /// metrics: each written by its speaker.
    pub vrrp: Mutex<Option<lbcore::api::VrrpInfo>>,
    pub vrrp6: Mutex<Option<lbcore::api::VrrpInfo>>,
    /// Connection sync is configured.
    pub sync_configured: bool,
    /// Connection sync's counters (sync.rs).
    pub sync_stats: Arc<SyncStats>,
    /// Health-checked real servers and their state (health/).
    pub health: Arc<Mutex<HealthBook>>,
    /// BGP announcement of the VIPs (announce/).
    pub announce: Arc<Announce>,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.dataplane.stopping()
    }

    /// The VRRP instances that have reported a state, in order: `vrrp`,
    /// `vrrp6`.
    pub fn vrrp_instances(&self) -> Vec<lbcore::api::VrrpInfo> {
        [&self.vrrp, &self.vrrp6]
            .into_iter()
            .filter_map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    pub fn worker_stats(&self) -> Vec<Arc<WorkerStats>> {
        self.workers.iter().map(|w| w.stats.clone()).collect()
    }
}
