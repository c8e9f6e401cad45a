//! The control thread's periodic work (on the main lcore, never on workers):
//! resolving real servers' MAC addresses (ARP requests for IPv4 neighbours,
//! Neighbour Solicitations for IPv6 ones), reporting neighbour changes, and
//! the control plane's timers (rates, drains, SIGHUP and file-watch reloads),
//! and feeding systemd's watchdog while the workers are alive.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lbcore::neigh::ArpRequest;
use lbcore::pipeline::snapshot::PortInfo;
use lbcore::pipeline::{arp_request, ndp_solicit};
use lbcore::wire::MacAddr;
use tracing::{info, warn};

use super::plane::ControlPlane;
use crate::dataplane::CtlFrame;
use crate::shared::Shared;

/// How often the control loop runs.
const PERIOD: Duration = Duration::from_millis(100);
/// Retry interval for an unanswered ARP request or solicitation.
const ARP_RETRY_MS: u32 = 1000;

/// Run until `shared.stop` is set. `sighup` is raised by the signal handler.
pub fn run(shared: &Shared, plane: &Mutex<ControlPlane>, sighup: &AtomicBool) {
    let mut requests: Vec<ArpRequest> = Vec::new();
    let mut known: HashMap<IpAddr, Option<MacAddr>> = HashMap::new();
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
            // The interface whose subnet holds the neighbour.
            let Some((idx, port)) = snap
                .ports
                .iter()
                .enumerate()
                .find(|(_, p)| on_subnet(p, r.ip))
            else {
                continue;
            };
            let mut f = CtlFrame {
                len: 0,
                bytes: [0; crate::dataplane::CTL_FRAME_LEN],
            };
            // On a VLAN: the request built after 4 spare bytes, then tagged
            // in place, and sent on the VLAN's port.
            let (tag, idx) = match port.vlan {
                0 => (0, idx),
                _ => (lbcore::wire::vlan::TAG_LEN, port.phys as usize),
            };
            f.len = match r.ip {
                IpAddr::V4(ip) => arp_request(&mut f.bytes[tag..], port.mac, port.addr, ip),
                // From the port's address6 (on the neighbour's subnet).
                IpAddr::V6(ip) => ndp_solicit(
                    &mut f.bytes[tag..],
                    port.mac,
                    port.addr6.unwrap_or(port.link_local),
                    ip,
                ),
            } as u16;
            if tag != 0 {
                lbcore::wire::vlan::push_tag(&mut f.bytes[..tag + f.len as usize], port.vlan);
                f.len += tag as u16;
            }
            let Some(queue) = dp.ctl_tx.get(idx) else {
                continue;
            };
            if queue.push(f).is_err() {
                warn!(port = %port.name, "control TX queue full; neighbour request for {} dropped", r.ip);
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

/// Whether `ip` is on `port`'s subnet of its family.
fn on_subnet(port: &PortInfo, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => port.subnet_contains(a),
        IpAddr::V6(a) => port.subnet6_contains(a),
    }
}
