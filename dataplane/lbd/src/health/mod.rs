//! Health checks of real servers (keepalived's checkers, ldirectord), run
//! by lbd itself, never on the workers.
//!
//! The [`HealthBook`] holds one [`Target`] per checked (service, real
//! server): its check, its state and its streaks. A scheduler thread
//! ([`run`]) hands due checks to a small pool of threads (a check blocks up
//! to its timeout) and records each result. A real server's first result
//! decides its state at once; afterwards `fall` failures in a row take it
//! out of service and `rise` successes in a row bring it back. A change of
//! state is logged with its reason and marks the book dirty; the control
//! plane's tick then rebuilds the snapshot from the running configuration
//! with every target's state applied ([`HealthBook::health_of`] →
//! `Snapshot::apply_health`) and publishes it. Recovery is the same path
//! as failure, so a recovered server always comes back.

pub mod checks;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam::channel;
use lbcore::addr::SockAddr;
use lbcore::api::{RealHealth, ServiceKey};
use lbcore::config::{CheckKind, Config, HealthCheck, OnFailure, Protocol};
use lbcore::pipeline::snapshot::{RealServer, RsHealth, Service};
use tracing::{info, warn};

/// Threads running checks at once.
const POOL: usize = 8;
/// How often the scheduler looks for due checks and results.
const TICK: Duration = Duration::from_millis(20);

/// (service, real server address, real server port).
pub type TargetKey = (ServiceKey, IpAddr, u16);

/// One checked real server.
#[derive(Debug, Clone)]
pub struct Target {
    pub check: HealthCheck,
    pub up: bool,
    pub checked: bool,
    pub ok_streak: u32,
    pub fail_streak: u32,
    /// The last result, for listings and logs.
    pub last: String,
    pub since: Instant,
    pub transitions: u64,
    next_due: Instant,
    in_flight: bool,
    /// Bumped when the check changes, so a result of the old check is
    /// ignored.
    epoch: u64,
}

/// Every checked real server, shared by the control plane (which syncs it
/// with the configuration and applies it to snapshots) and the health
/// threads (which record results).
#[derive(Debug, Default)]
pub struct HealthBook {
    targets: HashMap<TargetKey, Target>,
    /// A target changed state since the control plane last looked.
    dirty: bool,
}

/// One check to run.
struct Job {
    key: TargetKey,
    epoch: u64,
    probe: checks::Probe,
}

impl HealthBook {
    /// Make the targets those of `cfg`: new ones start in service and are
    /// checked at once; ones whose check changed are checked again at once
    /// (keeping their state); the others keep their state and timers.
    pub fn sync(&mut self, cfg: &Config, now: Instant) {
        let mut want: HashMap<TargetKey, HealthCheck> = HashMap::new();
        for s in &cfg.services {
            for r in &s.real_servers {
                if let Some(hc) = r.health_check.as_ref().or(s.health_check.as_ref()) {
                    let k = (ServiceKey::of(s), r.address, r.port.unwrap_or(s.port));
                    want.insert(k, hc.clone());
                }
            }
        }
        self.targets.retain(|k, _| want.contains_key(k));
        for (k, hc) in want {
            match self.targets.get_mut(&k) {
                Some(t) if t.check == hc => {}
                Some(t) => {
                    // A new check: its first result decides again.
                    t.check = hc;
                    t.checked = false;
                    t.epoch += 1;
                    t.in_flight = false;
                    t.next_due = now;
                }
                None => {
                    self.targets.insert(
                        k,
                        Target {
                            check: hc,
                            up: true,
                            checked: false,
                            ok_streak: 0,
                            fail_streak: 0,
                            last: "not checked yet".into(),
                            since: now,
                            transitions: 0,
                            next_due: now,
                            in_flight: false,
                            epoch: 0,
                        },
                    );
                }
            }
        }
    }

    /// The health of real server `r` of `svc`, for `Snapshot::apply_health`.
    pub fn health_of(&self, svc: &Service, r: &RealServer) -> RsHealth {
        let k = (svc.key(), r.addr.into(), r.port);
        match self.targets.get(&k) {
            Some(t) if !t.up => RsHealth::Down {
                quiesce: t.check.on_failure == OnFailure::Quiesce,
                expire: t.check.expire_connections,
            },
            _ => RsHealth::Up,
        }
    }

    /// What `lbctl list` shows for a real server (None: not checked).
    pub fn info(&self, key: &TargetKey, now: Instant) -> Option<RealHealth> {
        self.targets.get(key).map(|t| RealHealth {
            up: t.up,
            checked: t.checked,
            last: t.last.clone(),
            since_s: now.duration_since(t.since).as_secs_f64(),
            transitions: t.transitions,
        })
    }

    /// Every target and its state (for metrics).
    pub fn targets(&self) -> impl Iterator<Item = (&TargetKey, &Target)> {
        self.targets.iter()
    }

    /// Whether there are checked real servers and every one is down.
    pub fn all_down(&self) -> bool {
        !self.targets.is_empty() && self.targets.values().all(|t| t.checked && !t.up)
    }

    /// Whether a target changed state since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The checks due at `now`, marked in flight.
    fn take_due(&mut self, now: Instant) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (k, t) in &mut self.targets {
            if t.in_flight || t.next_due > now {
                continue;
            }
            t.in_flight = true;
            let (svc, addr, rport) = *k;
            let port = t.check.port.unwrap_or(rport);
            let env = match &t.check.check {
                CheckKind::Exec { .. } => vec![
                    ("LBD_RS_ADDRESS".into(), addr.to_string()),
                    ("LBD_RS_PORT".into(), port.to_string()),
                    ("LBD_VIP".into(), svc.vip.to_string()),
                    ("LBD_VPORT".into(), svc.port.to_string()),
                    // A service group's: its VIP and port are 0.0.0.0 and 0.
                    (
                        "LBD_FWMARK".into(),
                        svc.fwmark.map(|m| m.to_string()).unwrap_or_default(),
                    ),
                    (
                        "LBD_PROTOCOL".into(),
                        match svc.protocol {
                            Protocol::Tcp => "tcp",
                            Protocol::Udp => "udp",
                        }
                        .into(),
                    ),
                ],
                _ => Vec::new(),
            };
            jobs.push(Job {
                key: *k,
                epoch: t.epoch,
                probe: checks::Probe {
                    kind: t.check.check.clone(),
                    addr,
                    port,
                    timeout: Duration::from_millis(t.check.timeout_ms as u64),
                    env,
                },
            });
        }
        jobs
    }

    /// Record a check's result; log and mark dirty on a change of state.
    fn record(
        &mut self,
        key: &TargetKey,
        epoch: u64,
        result: Result<String, String>,
        now: Instant,
    ) {
        let Some(t) = self.targets.get_mut(key) else {
            return;
        };
        if t.epoch != epoch {
            return;
        }
        t.in_flight = false;
        t.next_due = now + Duration::from_millis(t.check.interval_ms as u64);
        let first = !t.checked;
        t.checked = true;
        let ok = result.is_ok();
        t.last = match result {
            Ok(s) | Err(s) => s,
        };
        if ok {
            t.ok_streak += 1;
            t.fail_streak = 0;
        } else {
            t.fail_streak += 1;
            t.ok_streak = 0;
        }
        let flip = if t.up {
            !ok && (first || t.fail_streak >= t.check.fall)
        } else {
            ok && (first || t.ok_streak >= t.check.rise)
        };
        let (svc, addr, port) = key;
        if flip {
            t.up = !t.up;
            t.since = now;
            t.transitions += 1;
            self.dirty = true;
            if t.up {
                info!(
                    "health: real server {} of {svc} is UP after {} good check(s): {}",
                    SockAddr(*addr, *port),
                    t.ok_streak,
                    t.last
                );
            } else {
                warn!(
                    "health: real server {} of {svc} is DOWN after {} failed check(s) \
                     ({}): {}",
                    SockAddr(*addr, *port),
                    t.fail_streak,
                    match t.check.on_failure {
                        OnFailure::Remove => "removed from scheduling",
                        OnFailure::Quiesce => "quiesced",
                    },
                    t.last
                );
            }
        } else if first {
            info!(
                "health: real server {} of {svc} checked: {} ({})",
                SockAddr(*addr, *port),
                if t.up { "up" } else { "down" },
                t.last
            );
        }
    }
}

/// The health scheduler: runs until `stopping()`.
pub fn run(book: &Mutex<HealthBook>, stopping: &dyn Fn() -> bool) {
    let (job_tx, job_rx) = channel::unbounded::<Job>();
    let (res_tx, res_rx) = channel::unbounded::<(TargetKey, u64, Result<String, String>)>();
    let pool: Vec<_> = (0..POOL)
        .map(|_| {
            let (rx, tx) = (job_rx.clone(), res_tx.clone());
            std::thread::spawn(move || {
                for job in rx {
                    let r = checks::run(&job.probe);
                    if tx.send((job.key, job.epoch, r)).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(res_tx);
    while !stopping() {
        let now = Instant::now();
        let jobs = {
            let mut b = book.lock().unwrap_or_else(|e| e.into_inner());
            while let Ok((k, epoch, r)) = res_rx.try_recv() {
                b.record(&k, epoch, r, now);
            }
            b.take_due(now)
        };
        for j in jobs {
            let _ = job_tx.send(j);
        }
        std::thread::sleep(TICK);
    }
    drop(job_tx);
    // Checks in flight end within their timeouts; do not wait for them.
    drop(pool);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(hc: &str) -> Config {
        lbcore::config::parse(
            &format!(
                r#"(ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
                    services: [(vip: "198.18.0.100", port: 80, health_check: Some({hc}),
                        real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])])"#
            ),
            "t.ron",
        )
        .unwrap()
    }

    fn key(ip: [u8; 4]) -> TargetKey {
        (
            ServiceKey::addr(Protocol::Tcp, [198, 18, 0, 100].into(), 80),
            IpAddr::from(ip),
            80,
        )
    }

    #[test]
    fn first_result_decides_then_rise_and_fall() {
        let t0 = Instant::now();
        let mut b = HealthBook::default();
        b.sync(&cfg("(check: Tcp, rise: 2, fall: 3)"), t0);
        let jobs = b.take_due(t0);
        assert_eq!(jobs.len(), 2, "both checked at once");
        assert!(b.take_due(t0).is_empty(), "in flight");
        let k = key([198, 18, 0, 11]);
        let fail = || Err("connect: refused".to_string());
        let ok = || Ok("TCP connect ok".to_string());
        // First result: down at once.
        b.record(&k, 0, fail(), t0);
        assert!(!b.targets[&k].up);
        assert!(b.take_dirty());
        // One success is not enough to come back (rise 2) ...
        b.record(&k, 0, ok(), t0);
        assert!(!b.targets[&k].up);
        assert!(!b.take_dirty());
        // ... two are.
        b.record(&k, 0, ok(), t0);
        assert!(b.targets[&k].up);
        assert!(b.take_dirty());
        // Two failures keep it up (fall 3), the third takes it down.
        b.record(&k, 0, fail(), t0);
        b.record(&k, 0, fail(), t0);
        assert!(b.targets[&k].up);
        b.record(&k, 0, fail(), t0);
        assert!(!b.targets[&k].up);
        assert_eq!(b.targets[&k].transitions, 3);
        assert_eq!(b.targets[&k].last, "connect: refused");
        // The next checks are due an interval later (default 5 s).
        b.record(&key([198, 18, 0, 12]), 0, ok(), t0);
        assert!(b.targets[&key([198, 18, 0, 12])].up);
        assert!(b.take_due(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(b.take_due(t0 + Duration::from_secs(5)).len(), 2);
    }

    #[test]
    fn a_real_servers_own_check_and_port_win() {
        let t0 = Instant::now();
        let mut c = cfg("(check: Tcp, port: Some(8080))");
        c.services[0].real_servers[1].health_check = Some(
            lbcore::config::parse(
                &format!(
                    r#"(ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
                        services: [(vip: "198.18.0.100", port: 80, real_servers: [
                          (address: "198.18.0.12", health_check: Some({})) ])])"#,
                    r#"(check: Udp(send: "ping"), timeout_ms: 500)"#
                ),
                "t.ron",
            )
            .unwrap()
            .services[0]
                .real_servers[0]
                .health_check
                .clone()
                .unwrap(),
        );
        let mut b = HealthBook::default();
        b.sync(&c, t0);
        let mut jobs = b.take_due(t0);
        jobs.sort_by_key(|j| j.key.1);
        assert_eq!(jobs.len(), 2);
        assert!(matches!(jobs[0].probe.kind, CheckKind::Tcp));
        assert_eq!(jobs[0].probe.port, 8080, "the check's port");
        assert!(matches!(jobs[1].probe.kind, CheckKind::Udp { .. }));
        assert_eq!(jobs[1].probe.port, 80, "the real server's port");
        assert_eq!(jobs[1].probe.timeout, Duration::from_millis(500));
        assert!(
            jobs.iter().all(|j| j.probe.env.is_empty()),
            "env for Exec only"
        );
    }

    #[test]
    fn sync_keeps_state_and_ignores_stale_results() {
        let t0 = Instant::now();
        let mut b = HealthBook::default();
        b.sync(&cfg("(check: Tcp)"), t0);
        let k = key([198, 18, 0, 11]);
        let _ = b.take_due(t0);
        b.record(&k, 0, Err("down".into()), t0);
        assert!(!b.targets[&k].up);
        // Same check: state kept.
        b.sync(&cfg("(check: Tcp)"), t0);
        assert!(!b.targets[&k].up);
        // Another check: checked again at once, old results ignored.
        b.sync(&cfg("(check: Tcp, port: Some(8080))"), t0);
        assert_eq!(b.take_due(t0).len(), 2);
        b.record(&k, 0, Ok("stale".into()), t0);
        assert_eq!(b.targets[&k].last, "down");
        b.record(&k, 1, Ok("fresh".into()), t0);
        assert!(b.targets[&k].up, "first result of the new check decides");
        // Health: Remove by default; the overlay says so.
        b.record(&k, 1, Err("x".into()), t0);
        b.record(&k, 1, Err("x".into()), t0);
        b.record(&k, 1, Err("x".into()), t0);
        assert!(!b.targets[&k].up);
        assert!(!b.all_down(), ".12 is not checked down");
        let k2 = key([198, 18, 0, 12]);
        b.record(&k2, 1, Err("x".into()), t0);
        assert!(b.all_down());
        // Gone from the configuration: forgotten.
        let mut c = cfg("(check: Tcp)");
        c.services[0].health_check = None;
        b.sync(&c, t0);
        assert_eq!(b.targets().count(), 0);
    }
}
