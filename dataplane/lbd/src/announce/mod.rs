//! Scale-out: announcing the VIPs by BGP through the speaker on this host
//! (BIRD 2). lbd speaks no BGP: per VIP it decides whether the routers
//! should send it traffic (`machine.rs`, sans-IO) and keeps the answer as
//! routes in a dedicated kernel table (`routes.rs`) that BIRD's kernel
//! protocol learns and its BGP sessions export. BIRD's view of the sessions
//! comes from its control socket (`bird.rs`). A drain's progress is
//! `drain.rs`'s (the control plane drives it).
//!
//! Threads: `lbd-announce` evaluates every 100 ms (health, reloads, drain,
//! VRRP state and stop all show within one period) and `lbd-birdc` asks
//! the speaker every 2 s, so that a slow birdc never delays a withdrawal.

pub mod bird;
pub mod drain;
pub mod machine;
pub mod routes;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lbcore::api::{AnnounceInfo, ServiceKey, SpeakerInfo, VipAnnouncement};
use lbcore::config::{BgpConfig, Config};
use lbcore::pipeline::Snapshot;
use tracing::{info, warn};

use machine::{Announcer, Conditions, VipInput};
use routes::RouteTable;

/// How often the announce thread evaluates.
const PERIOD: Duration = Duration::from_millis(100);
/// How often the speaker is asked for its sessions.
const BIRDC_PERIOD: Duration = Duration::from_secs(2);

/// What the announce threads share with the control plane, the status and
/// metrics, and the stop sequence.
pub struct Announce {
    /// `lbctl director drain` (set and cleared by the control plane).
    pub drained: AtomicBool,
    /// lbd is stopping: withdraw everything (set by the stop sequence).
    pub stopping: AtomicBool,
    /// Set by the announce thread once stopping and nothing is announced.
    pub withdrawn: AtomicBool,
    /// Route changes that failed (each is retried).
    route_errors: AtomicU64,
    /// The running configuration (the control plane replaces it at each
    /// change): which VIPs, their services, the `bgp` settings.
    running: Mutex<Arc<Config>>,
    /// The VIPs' last states.
    vips: Mutex<Vec<VipAnnouncement>>,
    speaker: Mutex<SpeakerInfo>,
}

impl Announce {
    pub fn new(cfg: &Config) -> Announce {
        Announce {
            drained: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            withdrawn: AtomicBool::new(false),
            route_errors: AtomicU64::new(0),
            running: Mutex::new(Arc::new(cfg.clone())),
            vips: Mutex::new(Vec::new()),
            speaker: Mutex::new(SpeakerInfo {
                state: "unknown".into(),
                sessions: Vec::new(),
            }),
        }
    }

    /// The control plane's running configuration changed.
    pub fn set_running(&self, cfg: &Config) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg.clone());
    }

    /// The running configuration, as last set.
    pub fn running(&self) -> Arc<Config> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// For `lbctl status` and `/metrics`: `None` without `bgp`.
    pub fn info(&self) -> Option<AnnounceInfo> {
        self.running().bgp.as_ref()?;
        Some(AnnounceInfo {
            drained: self.drained.load(Relaxed),
            vips: self.vips.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            speaker: self
                .speaker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            route_errors: self.route_errors.load(Relaxed),
        })
    }
}

/// Each VIP of `cfg` and whether one of its services has a real server that
/// takes new connections in `snap` (health applied: up, weight above 0).
pub fn vip_inputs(cfg: &Config, snap: &Snapshot) -> Vec<VipInput> {
    let mut out: Vec<VipInput> = Vec::new();
    for s in &cfg.services {
        let key = ServiceKey::of(s);
        let live = snap
            .services
            .iter()
            .find(|c| c.key() == key)
            .is_some_and(|c| c.reals.iter().any(|r| r.up && r.weight > 0));
        for vip in cfg.service_vips(s) {
            match out.iter_mut().find(|v| v.vip == vip) {
                Some(v) => v.live_servers |= live,
                None => out.push(VipInput {
                    vip,
                    live_servers: live,
                }),
            }
        }
    }
    out
}

/// The announce thread: evaluate, apply, publish the states, until the
/// dataplane stops; then withdraw whatever is left.
pub fn run(
    ann: &Announce,
    bgp: &BgpConfig,
    dev: String,
    snapshot: &dyn Fn() -> Arc<Snapshot>,
    forwarding: &dyn Fn() -> bool,
    stopped: &dyn Fn() -> bool,
) {
    let table = RouteTable {
        table: bgp.table,
        dev,
    };
    if let Err(e) = table.flush() {
        warn!(
            "announce: could not empty routing table {}: {e}",
            table.table
        );
    }
    info!(
        "announce: VIP routes in table {} via {} (for the BGP speaker)",
        table.table, table.dev
    );
    let mut m = Announcer::default();
    let mut last: Vec<VipAnnouncement> = Vec::new();
    while !stopped() {
        let cfg = ann.running();
        let c = Conditions {
            forwarding: forwarding(),
            drained: ann.drained.load(Relaxed),
            stopping: ann.stopping.load(Relaxed),
            without_servers: cfg.bgp.as_ref().is_some_and(|b| b.announce_without_servers),
        };
        let vips = vip_inputs(&cfg, &snapshot());
        for a in m.evaluate(&c, &vips) {
            let r = table.apply(a);
            match &r {
                Ok(()) => info!("announce: {a:?}"),
                Err(e) => {
                    ann.route_errors.fetch_add(1, Relaxed);
                    warn!("announce: {a:?} failed (retried): {e}");
                }
            }
            m.applied(a, r);
        }
        let now: Vec<VipAnnouncement> = m
            .states()
            .into_iter()
            .map(|(vip, announced, reason)| VipAnnouncement {
                vip,
                announced,
                reason,
            })
            .collect();
        if now != last {
            *ann.vips.lock().unwrap_or_else(|e| e.into_inner()) = now.clone();
            last = now;
        }
        ann.withdrawn
            .store(c.stopping && m.nothing_announced(), Relaxed);
        std::thread::sleep(PERIOD);
    }
    if let Err(e) = table.flush() {
        warn!(
            "announce: could not empty routing table {}: {e}",
            table.table
        );
    }
    ann.withdrawn.store(true, Relaxed);
}

/// The speaker thread: ask BIRD for its sessions every few seconds.
pub fn poll_speaker(ann: &Announce, stopped: &dyn Fn() -> bool) {
    let mut next = std::time::Instant::now();
    while !stopped() {
        if std::time::Instant::now() >= next {
            next += BIRDC_PERIOD;
            let socket = ann.running().bgp.as_ref().and_then(|b| b.birdc.clone());
            let info = match socket {
                None => SpeakerInfo {
                    state: "not configured".into(),
                    sessions: Vec::new(),
                },
                Some(s) => match bird::query(&s) {
                    Ok(sessions) => SpeakerInfo {
                        state: "ok".into(),
                        sessions,
                    },
                    Err(e) => SpeakerInfo {
                        state: format!("unreachable: {e}"),
                        sessions: Vec::new(),
                    },
                },
            };
            *ann.speaker.lock().unwrap_or_else(|e| e.into_inner()) = info;
        }
        std::thread::sleep(PERIOD);
    }
}

/// The stop sequence's part: withdraw (wait, bounded, until the routes are
/// gone), then keep forwarding `linger_ms` while the routers move the
/// traffic. Returns what happened, for the log.
pub fn withdraw_and_linger(ann: &Announce, linger_ms: u32) -> String {
    ann.stopping.store(true, Relaxed);
    let give_up = std::time::Instant::now() + Duration::from_secs(5);
    while !ann.withdrawn.load(Relaxed) && std::time::Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(20));
    }
    let withdrawn = ann.withdrawn.load(Relaxed);
    // Not a synchronisation: the operator's chosen grace time.
    std::thread::sleep(Duration::from_millis(linger_ms as u64));
    if withdrawn {
        format!("VIPs withdrawn; lingered {linger_ms} ms")
    } else {
        format!("VIP routes not all withdrawn within 5 s; lingered {linger_ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbcore::neigh::NeighTable;
    use lbcore::pipeline::snapshot::{RsHealth, MAX_NEIGHBOURS};
    use lbcore::pipeline::Registry;
    use lbcore::wire::MacAddr;

    const CONFIG: &str = r#"(
        ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
        services: [
            (vip: "198.18.100.1", port: 80, real_servers: [(address: "198.18.0.11", weight: 0)]),
            (vip: "198.18.100.1", port: 443, real_servers: [(address: "198.18.0.12")]),
            (vip: "198.18.100.2", port: 80, real_servers: [(address: "198.18.0.13")]),
            (vip: "198.18.100.3", port: 80, real_servers: []),
            (fwmark: Some(7), real_servers: [(address: "198.18.0.14")]),
        ],
        fwmarks: [(mark: 7, match: [(vip: "198.18.100.4", ports: 80)])],
    )"#;

    fn live(v: &[VipInput], vip: &str) -> bool {
        let vip: std::net::IpAddr = vip.parse().unwrap();
        v.iter()
            .find(|x| x.vip == vip)
            .expect("VIP listed")
            .live_servers
    }

    #[test]
    fn a_vip_is_live_when_one_of_its_services_has_a_server_in_service() {
        let cfg = lbcore::config::parse(CONFIG, "t").unwrap();
        let neigh = NeighTable::new(MAX_NEIGHBOURS);
        let mut snap = Snapshot::build(
            &cfg,
            &[MacAddr([2, 0, 0, 0, 0, 2])],
            &mut Registry::default(),
            &neigh,
            1,
        )
        .unwrap();
        // 198.18.0.13 failed its health check.
        snap.apply_health(|_, r| {
            if r.addr == std::net::Ipv4Addr::new(198, 18, 0, 13) {
                RsHealth::Down {
                    quiesce: false,
                    expire: false,
                }
            } else {
                RsHealth::Up
            }
        });
        let v = vip_inputs(&cfg, &snap);
        assert_eq!(v.len(), 4, "each VIP once: {v:?}");
        assert!(
            live(&v, "198.18.100.1"),
            "port 443 has a server (80's is quiesced)"
        );
        assert!(!live(&v, "198.18.100.2"), "its only server is down");
        assert!(!live(&v, "198.18.100.3"), "no real server");
        assert!(live(&v, "198.18.100.4"), "a service group's VIP");
    }
}
