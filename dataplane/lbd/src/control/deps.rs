//! What the control plane works against: narrow interfaces to the running
//! director, so that the plane can be driven in memory by its tests (no
//! DPDK, no root) as the pipeline is.
//!
//! * the snapshot cell ([`crate::snapshot_cell::SnapshotCell`]) and the
//!   neighbour table, plain objects in both lbd and the tests;
//! * [`WorkerCounters`]: the workers' counters, read only;
//! * [`HealthView`]: the health checks' verdicts (`health/`);
//! * [`ConfigStore`]: the configuration file (`store.rs` in lbd);
//! * [`Director`]: the rest, which needs the devices and the workers — the
//!   ports' and workers' status, and connection listings (`live.rs`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use lbcore::api::{
    ApiError, ConnFilter, ConnList, Counters, PortStatus, RealHealth, VrrpInfo, WorkerStatus,
};
use lbcore::config::Config;
use lbcore::counters::WorkerStats;
use lbcore::pipeline::snapshot::{RealServer, RsHealth, Service};
use lbcore::pipeline::Snapshot;

use crate::health::TargetKey;

/// The workers' counters, in worker order; the plane only reads them.
#[derive(Clone, Default)]
pub struct WorkerCounters(pub Vec<Arc<WorkerStats>>);

impl WorkerCounters {
    /// Traffic counters of one service or real server, summed over workers.
    pub fn totals(&self, service: Option<u32>, rs: Option<u32>) -> Counters {
        let mut c = Counters::default();
        for s in &self.0 {
            if let Some(x) = service.and_then(|id| s.services.get(id as usize)) {
                c.conns += x.conns.load(Relaxed);
                c.packets_in += x.packets.load(Relaxed);
                c.bytes_in += x.bytes.load(Relaxed);
                c.packets_out += x.packets_out.load(Relaxed);
                c.bytes_out += x.bytes_out.load(Relaxed);
            }
            if let Some(x) = rs.and_then(|id| s.rs.get(id as usize)) {
                c.conns += x.conns.load(Relaxed);
                c.packets_in += x.packets.load(Relaxed);
                c.bytes_in += x.bytes.load(Relaxed);
                c.packets_out += x.packets_out.load(Relaxed);
                c.bytes_out += x.bytes_out.load(Relaxed);
            }
        }
        c
    }

    /// (active, inactive) connections of real server `rs`, summed over
    /// workers. Each worker's count is signed (a NAT connection may be
    /// counted in by one worker and out by another); the sum is exact.
    pub fn conns_of(&self, rs: u32) -> (i64, i64) {
        let mut both = (0i64, 0i64);
        for s in &self.0 {
            if let Some(x) = s.rs.get(rs as usize) {
                both.0 += x.active() as i64;
                both.1 += x.inactive() as i64;
            }
        }
        both
    }

    /// One worker counter summed over workers.
    pub fn total(&self, c: lbcore::counters::Counter) -> u64 {
        self.0.iter().map(|w| w.get(c)).sum()
    }

    /// Connections in every worker's table.
    pub fn conns_live(&self) -> u64 {
        self.0.iter().map(|w| w.conns_live.load(Relaxed)).sum()
    }
}

/// The health checks' verdicts on real servers (`health/`).
pub trait HealthView: Send + Sync {
    /// Make the checked real servers those of `cfg`.
    fn sync(&self, cfg: &Config, now: Instant);
    /// For `Snapshot::apply_health`.
    fn health_of(&self, svc: &Service, r: &RealServer) -> RsHealth;
    /// What `lbctl list` shows (None: not checked).
    fn info(&self, key: &TargetKey, now: Instant) -> Option<RealHealth>;
    /// Whether a verdict changed since the last call.
    fn take_dirty(&self) -> bool;
}

/// (modified time, length) of the configuration file, to notice edits.
pub type Stamp = (SystemTime, u64);

/// The configuration file: where changes are persisted and reloads read.
pub trait ConfigStore: Send {
    /// The file's name, for messages and `lbctl status`.
    fn describe(&self) -> String;
    /// Read and validate the file (an error says where and why).
    fn load(&self) -> Result<Config, String>;
    /// Replace the file's contents atomically.
    fn save(&mut self, text: &str) -> std::io::Result<()>;
    /// The file's current stamp (None if it cannot be read).
    fn stamp(&self) -> Option<Stamp>;
}

/// What `lbctl status` reports about the devices and workers, besides the
/// counters the plane sums itself.
pub struct DirectorStatus {
    pub uptime_s: f64,
    pub ports: Vec<PortStatus>,
    pub workers: Vec<WorkerStatus>,
    pub conn_capacity: u64,
    /// Counters kept outside the workers (kernel path, sync), by name.
    pub other_counters: Vec<(String, u64)>,
    /// The VRRP instances that run, in order: `vrrp`, `vrrp6`.
    pub vrrp: Vec<VrrpInfo>,
    /// BGP announcement, with `bgp` configured.
    pub announce: Option<lbcore::api::AnnounceInfo>,
}

/// The parts of the running director that need DPDK.
pub trait Director: Send + Sync {
    /// The ports (with the MACs of `snap`), the workers and what else
    /// `lbctl status` shows.
    fn status(&self, snap: &Snapshot) -> DirectorStatus;
    /// List connections from the workers' tables (`lbctl conns`).
    fn conns(&self, filter: &ConnFilter, limit: u32) -> Result<ConnList, ApiError>;
}
