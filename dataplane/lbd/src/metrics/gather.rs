//! Gathering: reads what a scrape needs from the running daemon into the
//! plain [`MetricInputs`], briefly taking each lock it needs.

use std::sync::atomic::Ordering::Relaxed;

use crate::shared::Shared;

use super::inputs::{HealthSample, KernelSample, MetricInputs, PortSample};
use super::render::{real_server_label, service_label};

/// Read everything a scrape needs from `shared`. Takes, one at a time and
/// briefly, the snapshot mutex, each worker's latency mutex (to clone the
/// histogram: a worker that finds it busy just publishes a burst later), the
/// last-change mutex and DPDK's port control lock.
pub fn gather(shared: &Shared) -> MetricInputs {
    let ports = shared
        .ports
        .iter()
        .map(|p| PortSample {
            name: p.name.clone(),
            stats: p.port.stats().ok(),
            link_up: p.port.link().ok().map(|l| l.up),
            xstats: p.port.xstats().unwrap_or_default(),
            link_changes: p
                .dev
                .link_changes
                .load(std::sync::atomic::Ordering::Relaxed),
        })
        .collect();
    let latency = shared
        .workers
        .iter()
        .map(|w| {
            w.latency
                .hist
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
        .collect();
    MetricInputs {
        sync: {
            let s = &shared.sync_stats;
            [
                ("sent", s.sent.load(Relaxed)),
                ("received", s.received.load(Relaxed)),
                ("rejected", s.rejected.load(Relaxed)),
                ("bad_datagram", s.bad_datagrams.load(Relaxed)),
                ("send_error", s.send_errors.load(Relaxed)),
            ]
            .into_iter()
            .filter(|_| shared.sync_configured)
            .collect()
        },
        vrrp: shared.vrrp_instances(),
        announce: shared.announce.info(),
        health: shared
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .targets()
            .map(|((svc, addr, port), t)| HealthSample {
                service: service_label(svc),
                real_server: real_server_label(*addr, *port),
                up: t.up,
                transitions: t.transitions,
            })
            .collect(),
        ports,
        kernel: kernel_samples(shared),
        workers: shared.worker_stats(),
        latency,
        tsc_hz: dpdk::tsc::hz(),
        snapshot: shared.dataplane.current(),
        neighbours: shared.dataplane.neigh.entries(),
        generation: shared.dataplane.snapshots.generation(),
        last_change: shared.changes.last(),
        conn_capacity: shared.conn_capacity,
        uptime_s: shared.dataplane.clock.seconds(),
    }
}

/// The kernel exception paths' own counters.
pub fn kernel_samples(shared: &Shared) -> Vec<KernelSample> {
    shared
        .ports
        .iter()
        .zip(&shared.dataplane.kernel)
        .filter_map(|(p, k)| {
            let k = k.as_ref()?;
            Some(KernelSample {
                port: p.name.clone(),
                iface: k.iface.clone(),
                rate_pps: k.rate_pps,
                delivered: k.delivered.load(Relaxed),
                tap_refused: k.tap_refused.load(Relaxed),
                sent_by_kernel: k.sent_by_kernel.load(Relaxed),
                from_kernel_full: k.from_kernel_full.load(Relaxed),
            })
        })
        .collect()
}
