//! What the plane reports: `lbctl list` (services, real servers, counters
//! since the last `zero`, rates) and `lbctl status`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Instant;

use lbcore::api::{RealInfo, ServiceInfo, ServiceKey, StatusInfo};
use lbcore::config::Config;
use lbcore::counters::Counter;
use lbcore::pipeline::Snapshot;

use super::tally::Tally;
use crate::control::change::ChangeStatus;
use crate::control::deps::{DirectorStatus, HealthView, WorkerCounters};

/// `lbctl list`: the services and real servers of `snap` (and the marks
/// of `running` its service groups serve).
pub fn list(
    snap: &Snapshot,
    running: &Config,
    counters: &WorkerCounters,
    tally: &Tally,
    health: &dyn HealthView,
    draining: &HashSet<(ServiceKey, IpAddr)>,
) -> Vec<ServiceInfo> {
    let now = Instant::now();
    snap.services
        .iter()
        .map(|s| {
            let key = s.key();
            ServiceInfo {
                key,
                members: s
                    .fwmark
                    .map(|m| running.marked(m).copied().collect())
                    .unwrap_or_default(),
                scheduler: s.scheduler,
                persistence: s.persistence,
                counters: tally.since_zero(counters, (true, s.id)),
                rates: tally.rate((true, s.id)),
                reals: s
                    .reals
                    .iter()
                    .map(|r| {
                        let (active, inactive) = counters.conns_of(r.id);
                        RealInfo {
                            address: r.addr,
                            port: r.port,
                            forward: r.forward,
                            weight: r.weight,
                            active: active.max(0) as u64,
                            inactive: inactive.max(0) as u64,
                            draining: draining.contains(&(key, r.addr)),
                            health: health.info(&(key, r.addr, r.port), now),
                            fallback: r.fallback,
                            counters: tally.since_zero(counters, (false, r.id)),
                            rates: tally.rate((false, r.id)),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// `lbctl status`.
pub fn status(
    config_path: String,
    generation: u64,
    last: ChangeStatus,
    counters: &WorkerCounters,
    director: DirectorStatus,
) -> StatusInfo {
    let d = director;
    StatusInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: d.uptime_s,
        config_path,
        generation,
        last_change_ok: last.ok,
        last_change_message: last.message,
        ports: d.ports,
        workers: d.workers,
        conn_capacity: d.conn_capacity,
        conns: counters.conns_live(),
        counters: Counter::ALL
            .iter()
            .map(|&c| (c.name().to_string(), counters.total(c)))
            .chain(d.other_counters)
            .filter(|&(_, v)| v > 0)
            .collect(),
        vrrp: d.vrrp.first().cloned(),
        vrrp_instances: d.vrrp,
        announce: d.announce.map(Box::new),
    }
}
