//! What a scrape reports, as plain data: filled by `gather.rs` from the
//! running daemon, or by tests by hand, and turned into text by `render.rs`.

use std::sync::Arc;

use hdrhistogram::Histogram;
use lbcore::counters::WorkerStats;
use lbcore::neigh::NeighEntry;
use lbcore::pipeline::Snapshot;

use crate::control::change::ChangeStatus;

/// One port's device readings; `None` when the device could not be read
/// (e.g. during shutdown), in which case its metrics are left out.
#[derive(Debug, Clone)]
pub struct PortSample {
    pub name: String,
    pub stats: Option<dpdk::PortStats>,
    pub link_up: Option<bool>,
    /// The driver's extended stats by name (empty if unreadable).
    pub xstats: Vec<(String, u64)>,
    /// Link state changes since start (device.rs's link watcher).
    pub link_changes: u64,
}

/// One port's kernel exception path (kernel/), as counted by its thread.
#[derive(Debug, Clone, Default)]
pub struct KernelSample {
    pub port: String,
    pub iface: String,
    pub rate_pps: u32,
    pub delivered: u64,
    pub tap_refused: u64,
    pub sent_by_kernel: u64,
    pub from_kernel_full: u64,
}

/// One health-checked real server (health/).
#[derive(Debug, Clone)]
pub struct HealthSample {
    /// Service label, as in the other per-service metrics.
    pub service: String,
    /// "address:port".
    pub real_server: String,
    pub up: bool,
    pub transitions: u64,
}

/// Everything a scrape reports, as plain data.
pub struct MetricInputs {
    /// Connection sync: (event, records or datagrams), when configured.
    pub sync: Vec<(&'static str, u64)>,
    /// The VRRP instances that run (`vrrp`, `vrrp6`).
    pub vrrp: Vec<lbcore::api::VrrpInfo>,
    /// BGP announcement, when `bgp` is configured.
    pub announce: Option<lbcore::api::AnnounceInfo>,
    /// Health-checked real servers.
    pub health: Vec<HealthSample>,
    pub ports: Vec<PortSample>,
    /// The ports that have a kernel exception path.
    pub kernel: Vec<KernelSample>,
    /// Per worker, in worker-index order.
    pub workers: Vec<Arc<WorkerStats>>,
    /// Per worker (same order): cumulative burst latency in TSC cycles.
    pub latency: Vec<Histogram<u64>>,
    /// TSC frequency; 0 (unknown) leaves the latency histogram out.
    pub tsc_hz: u64,
    pub snapshot: Arc<Snapshot>,
    pub neighbours: Vec<NeighEntry>,
    pub generation: u64,
    pub last_change: ChangeStatus,
    pub conn_capacity: u64,
    pub uptime_s: f64,
}
