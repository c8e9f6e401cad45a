//! The control plane's interfaces (`deps.rs`) over the running daemon.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lbcore::api::{ApiError, ConnFilter, ConnList, PortStatus, RealHealth, WorkerStatus};
use lbcore::config::Config;
use lbcore::counters::Counter;
use lbcore::pipeline::snapshot::{RealServer, RsHealth, Service};
use lbcore::pipeline::Snapshot;

use super::conns;
use super::deps::{Director, DirectorStatus, HealthView};
use crate::device::status_of;
use crate::health::{HealthBook, TargetKey};
use crate::metrics::kernel_samples;
use crate::shared::Shared;

impl HealthView for Mutex<HealthBook> {
    fn sync(&self, cfg: &Config, now: Instant) {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .sync(cfg, now)
    }

    fn health_of(&self, svc: &Service, r: &RealServer) -> RsHealth {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .health_of(svc, r)
    }

    fn info(&self, key: &TargetKey, now: Instant) -> Option<RealHealth> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .info(key, now)
    }

    fn take_dirty(&self) -> bool {
        self.lock().unwrap_or_else(|e| e.into_inner()).take_dirty()
    }
}

/// The running director: its ports, workers and side threads.
pub struct LiveDirector(pub Arc<Shared>);

impl Director for LiveDirector {
    fn status(&self, snap: &Snapshot) -> DirectorStatus {
        let shared = &self.0;
        DirectorStatus {
            uptime_s: shared.dataplane.clock.seconds(),
            ports: shared
                .ports
                .iter()
                .zip(&snap.ports)
                .map(|(h, p)| {
                    let link = h.port.link().unwrap_or_default();
                    PortStatus {
                        name: h.name.clone(),
                        device: h.device.clone(),
                        address: h.address.clone(),
                        mac: p.mac.to_string(),
                        link_up: link.up,
                        speed_mbps: link.speed_mbps,
                        device_info: Some(status_of(&h.dev)),
                    }
                })
                .collect(),
            workers: shared
                .workers
                .iter()
                .map(|w| WorkerStatus {
                    index: w.index,
                    port: shared.ports[w.port as usize].name.clone(),
                    queue: w.queue,
                    lcore: w.lcore,
                    busy_polls: w.stats.busy_polls.load(Relaxed),
                    idle_polls: w.stats.idle_polls.load(Relaxed),
                    conns: w.stats.conns_live.load(Relaxed),
                    flood_defence: w.stats.flood_engaged.load(Relaxed) != 0,
                    rx_frames: w.stats.get(Counter::RxFrames),
                })
                .collect(),
            conn_capacity: shared.conn_capacity,
            other_counters: kernel_samples(shared)
                .into_iter()
                .flat_map(|k| {
                    [
                        (format!("kernel_{}_delivered", k.port), k.delivered),
                        (format!("kernel_{}_refused", k.port), k.tap_refused),
                        (
                            format!("kernel_{}_sent_by_kernel", k.port),
                            k.sent_by_kernel,
                        ),
                        (
                            format!("kernel_{}_dropped_queue_full", k.port),
                            k.from_kernel_full,
                        ),
                    ]
                })
                .chain({
                    let s = &shared.sync_stats;
                    [
                        ("sync_sent", s.sent.load(Relaxed)),
                        ("sync_received", s.received.load(Relaxed)),
                        ("sync_rejected", s.rejected.load(Relaxed)),
                        ("sync_bad_datagrams", s.bad_datagrams.load(Relaxed)),
                        ("sync_send_errors", s.send_errors.load(Relaxed)),
                    ]
                    .map(|(k, v)| (k.to_string(), v))
                })
                .collect(),
            vrrp: shared.vrrp_instances(),
            announce: shared.announce.info(),
        }
    }

    fn conns(&self, filter: &ConnFilter, limit: u32) -> Result<ConnList, ApiError> {
        let shared = &self.0;
        let dumps: Vec<_> = shared.workers.iter().map(|w| &*w.dump).collect();
        let live = shared
            .workers
            .iter()
            .map(|w| w.stats.conns_live.load(Relaxed))
            .sum();
        conns::list(&shared.dataplane, &dumps, live, filter, limit)
    }
}
