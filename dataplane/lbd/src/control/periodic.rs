//! The control thread's periodic work (on the main lcore, never on workers):
//! resolving real servers' MAC addresses, reporting neighbour changes, and
//! the control plane's timers (rates, drains, SIGHUP and file-watch reloads),
//! and feeding systemd's watchdog while the workers are alive.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lbcore::neigh::ArpRequest;
use lbcore::pipeline::arp_request;
use lbcore::wire::MacAddr;
use tracing::{info, warn};

use super::plane::ControlPlane;
use crate::dataplane::CtlFrame;
use crate::shared::Shared;

/// How often the control loop runs.
const PERIOD: Duration = Duration::from_millis(100);
/// Retry interval for an unanswered ARP request.
const ARP_RETRY_MS: u32 = 1000;

/// Run until `shared.stop` is set. `sighup` is raised by the signal handler.
pub fn run(shared: &Shared, plane: &Mutex<ControlPlane>, sighup: &AtomicBool) {
    let mut requests: Vec<ArpRequest> = Vec::new();
    let mut known: HashMap<Ipv4Addr, Option<MacAddr>> = HashMap::new();
    let polls = || -> Vec<u64> {
        let w = &shared.workers;
        w.iter()
            .map(|w| {
                w.stats.busy_polls.load(Ordering::Relaxed)
                    + w.stats.idle_polls.load(Ordering::Relaxed)
            })
            .collect()
    };
    // systemd's watchdog (WatchdogSec=): fed here, only while every worker
    // polls, so a stuck worker gets lbd restarted (notify.rs).
    let mut watchdog = crate::notify::Watchdog::from_env(&polls(), Instant::now());
    while !shared.stopping() {
        if let Some(w) = watchdog.as_mut() {
            w.tick(Instant::now(), &polls());
        }
        let (refresh_s, expire_s) = {
            let mut p = plane.lock().unwrap_or_else(|e| e.into_inner());
            if sighup.swap(false, Ordering::Relaxed) {
                let _ = p.reload("SIGHUP");
            }
            p.tick();
            let n = p.running().neighbours;
            (n.refresh, n.expire)
        };
        let dp = &*shared.dataplane;
        let now = dp.clock.now();
        let snap = dp.current();
        requests.clear();
        dp.neigh.tick(
            now,
            ARP_RETRY_MS,
            refresh_s.saturating_mul(1000),
            expire_s.saturating_mul(1000),
            &mut requests,
        );
        for r in &requests {
            let Some((idx, port)) = snap
                .ports
                .iter()
                .enumerate()
                .find(|(_, p)| p.subnet_contains(r.ip))
            else {
                continue;
            };
            let mut f = CtlFrame {
                len: 0,
                bytes: [0; 64],
            };
            // On a VLAN: the request built after 4 spare bytes, then tagged
            // in place, and sent on the VLAN's port.
            let (tag, idx) = match port.vlan {
                0 => (0, idx),
                _ => (lbcore::wire::vlan::TAG_LEN, port.phys as usize),
            };
            f.len = arp_request(&mut f.bytes[tag..], port.mac, port.addr, r.ip) as u16;
            if tag != 0 {
                lbcore::wire::vlan::push_tag(&mut f.bytes[..tag + f.len as usize], port.vlan);
                f.len += tag as u16;
            }
            let Some(queue) = dp.ctl_tx.get(idx) else {
                continue;
            };
            if queue.push(f).is_err() {
                warn!(port = %port.name, "control TX queue full; ARP request for {} dropped", r.ip);
            }
        }
        // Log neighbour transitions so operators (and tests) see resolution.
        for e in dp.neigh.entries() {
            let prev = known.insert(e.ip, e.mac);
            if prev != Some(e.mac) {
                match e.mac {
                    Some(mac) => info!("neighbour {} is at {}", e.ip, mac),
                    None if prev.is_some() => info!("neighbour {} unresolved", e.ip),
                    None => {}
                }
            }
        }
        known.retain(|ip, _| dp.neigh.entries().iter().any(|e| e.ip == *ip));
        std::thread::sleep(PERIOD);
    }
}
