//! The control plane: the running configuration and every change to it.
//!
//! A change (from lbctl, a reload, SIGHUP or the file watch) goes through one
//! path, [`ControlPlane::commit`]: validate → compile a snapshot on a copy of
//! the id registry (no side effects) → persist the file atomically (lbctl
//! changes and restores; a reload reads the file instead) → bind neighbours →
//! publish the snapshot, which workers pick up at their next burst. If any
//! step before publishing fails, nothing has changed and the error is
//! returned; the running configuration stays as it was.
//!
//! Sans-IO: the plane works against the narrow interfaces of `deps.rs`, so
//! its tests (`tests.rs`) drive it in memory. Requests are typed
//! (`lbcore::api::Request`) before they get here; each verb's edit of the
//! configuration is a pure function in `edits.rs`; what the plane reports
//! (list, status) is in `report.rs`, counters since `zero` and rates in
//! `tally.rs`.

mod edits;
mod report;
mod tally;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbcore::api::*;
use lbcore::config::{self, Config};
use lbcore::neigh::NeighTable;
use lbcore::pipeline::snapshot::RsHealth;
use lbcore::pipeline::{Registry, Snapshot};
use lbcore::wire::MacAddr;
use tracing::{info, warn};

use super::change::{unix_now, ChangeLog, ChangeStatus};
use super::deps::{ConfigStore, Director, HealthView, Stamp, WorkerCounters};
use super::resolve_first::{HoldEvent, ResolveFirst, HOLD_MAX};
use crate::announce::drain::{self, DrainWatch};
use crate::announce::Announce;
use crate::snapshot_cell::SnapshotCell;
use edits::key_of;
use std::sync::atomic::Ordering::Relaxed;
use tally::Tally;

/// How often `tick` samples the rates (IPVS's estimator period).
const RATE_PERIOD: Duration = Duration::from_secs(2);

/// Everything the plane works against (see `deps.rs`).
pub struct PlaneDeps {
    pub snapshots: Arc<SnapshotCell>,
    pub neigh: Arc<NeighTable>,
    pub counters: WorkerCounters,
    pub health: Arc<dyn HealthView>,
    pub store: Box<dyn ConfigStore>,
    pub changes: Arc<ChangeLog>,
    pub director: Arc<dyn Director>,
    /// BGP announcement: the drain switch, and the running configuration
    /// the announce thread reads.
    pub announce: Arc<Announce>,
}

pub struct ControlPlane {
    snapshots: Arc<SnapshotCell>,
    neigh: Arc<NeighTable>,
    counters: WorkerCounters,
    health: Arc<dyn HealthView>,
    store: Box<dyn ConfigStore>,
    changes: Arc<ChangeLog>,
    director: Arc<dyn Director>,
    running: Config,
    registry: Registry,
    port_macs: Vec<MacAddr>,
    /// Real servers being drained: removed once their connections end.
    draining: HashSet<(ServiceKey, IpAddr)>,
    /// Counters since `zero`, and rates.
    tally: Tally,
    last_rate_sample: Instant,
    /// The file's stamp as last read or written.
    file_stamp: Option<Stamp>,
    /// Real servers added live, held out of scheduling until resolved.
    resolve_first: ResolveFirst,
    announce: Arc<Announce>,
    /// `lbctl director drain`'s progress, while drained.
    drain: Option<DrainWatch>,
}

impl ControlPlane {
    /// A plane for `running`, compiled with `registry` into the snapshot
    /// `deps.snapshots` holds.
    pub fn new(
        deps: PlaneDeps,
        running: Config,
        registry: Registry,
        port_macs: Vec<MacAddr>,
    ) -> ControlPlane {
        let file_stamp = deps.store.stamp();
        deps.announce.set_running(&running);
        ControlPlane {
            snapshots: deps.snapshots,
            neigh: deps.neigh,
            counters: deps.counters,
            health: deps.health,
            store: deps.store,
            changes: deps.changes,
            director: deps.director,
            running,
            registry,
            port_macs,
            draining: HashSet::new(),
            tally: Tally::default(),
            last_rate_sample: Instant::now(),
            file_stamp,
            resolve_first: ResolveFirst::default(),
            announce: deps.announce,
            drain: None,
        }
    }

    pub fn running(&self) -> &Config {
        &self.running
    }

    /// Answer one request (the caller has checked permissions).
    pub fn handle(&mut self, req: Request) -> Result<Response, ApiError> {
        match req {
            Request::Status => {
                let snap = self.snapshots.current();
                Ok(Response::Status(report::status(
                    self.store.describe(),
                    self.snapshots.generation(),
                    self.changes.last(),
                    &self.counters,
                    self.director.status(&snap),
                )))
            }
            Request::List => Ok(Response::Services(report::list(
                &self.snapshots.current(),
                &self.running,
                &self.counters,
                &self.tally,
                &*self.health,
                &self.draining,
            ))),
            Request::Conns { filter, limit } => {
                self.director.conns(&filter, limit).map(Response::Conns)
            }
            Request::AddService(svc) => {
                let what = format!("add service {}", key_of(&svc));
                self.change(&what, |c| edits::add_service(c, svc))
            }
            Request::EditService { key, edit } => self
                .change(&format!("edit service {key}"), |c| {
                    edits::edit_service(c, &key, &edit)
                }),
            Request::DeleteService(key) => {
                let r = self.change(&format!("delete service {key}"), |c| {
                    edits::delete_service(c, &key)
                });
                if r.is_ok() {
                    self.draining.retain(|(k, _)| *k != key);
                }
                r
            }
            Request::AddReal { service, real } => {
                let what = format!("add real server {} to {service}", real.address);
                self.change(&what, |c| edits::add_real(c, &service, real))
            }
            Request::EditReal {
                service,
                address,
                edit,
            } => {
                let r = self.change(&format!("edit real server {address} of {service}"), |c| {
                    edits::edit_real(c, &service, address, &edit)
                });
                if r.is_ok() && edit.weight.is_some_and(|w| w > 0) {
                    // A new weight ends a drain.
                    self.draining.remove(&(service, address));
                }
                r
            }
            Request::DeleteReal {
                service,
                address,
                mode: RemoveMode::Immediate,
            } => {
                let r = self.change(&format!("delete real server {address} of {service}"), |c| {
                    edits::delete_real(c, &service, address)
                });
                if r.is_ok() {
                    self.draining.remove(&(service, address));
                }
                r
            }
            Request::DeleteReal {
                service,
                address,
                mode: RemoveMode::Drain,
            } => {
                let r = self.change(&format!("drain real server {address} of {service}"), |c| {
                    edits::drain_real(c, &service, address)
                });
                if r.is_ok() {
                    self.draining.insert((service, address));
                }
                r
            }
            Request::Clear => {
                let r = self.change("clear all services", |c| {
                    c.services.clear();
                    Ok(())
                });
                if r.is_ok() {
                    self.draining.clear();
                }
                r
            }
            Request::Zero => {
                self.tally.zero(&self.snapshots.current(), &self.counters);
                info!("counters zeroed");
                Ok(Response::Done)
            }
            Request::GetTimeouts => Ok(Response::Timeouts(self.running.timeouts)),
            Request::SetTimeouts(t) => self.change("set timeouts", |c| {
                edits::set_timeouts(c, &t);
                Ok(())
            }),
            Request::Save => Ok(Response::Config(config::to_ron_string(&self.running))),
            Request::Restore { ron } => self.restore(&ron),
            Request::Validate { ron } => {
                let cfg = parse_request_config(&ron, "configuration")?;
                self.check_restart_fields(&cfg)?;
                Ok(Response::Valid)
            }
            Request::DirectorDrain => self.director_drain(),
            Request::DirectorResume => self.director_resume(),
            Request::DrainStatus => Ok(Response::Drain(self.drain_report(Instant::now()))),
            Request::Reload => self
                .reload("lbctl reload")
                .map(|g| Response::Applied { generation: g }),
        }
    }

    /// `lbctl restore`: the whole configuration replaced, and persisted.
    /// Withdraw every VIP and keep them withdrawn; connections keep being
    /// forwarded. Drained twice: the first drain goes on.
    fn director_drain(&mut self) -> Result<Response, ApiError> {
        if self.running.bgp.is_none() {
            return Err(ApiError::new(
                ErrorKind::Invalid,
                "no `bgp` section: this director announces nothing, so there is nothing to drain",
            ));
        }
        let now = Instant::now();
        if self.drain.is_none() {
            info!("director drain: withdrawing every VIP");
            self.drain = Some(DrainWatch::begin(now, self.conns_created()));
            self.announce.drained.store(true, Relaxed);
        }
        Ok(Response::Drain(self.drain_report(now)))
    }

    /// Announce again what should be.
    fn director_resume(&mut self) -> Result<Response, ApiError> {
        if self.drain.take().is_some() {
            info!("director resume: announcing again");
        }
        self.announce.drained.store(false, Relaxed);
        Ok(Response::Done)
    }

    fn drain_report(&self, now: Instant) -> DrainReport {
        let open = self.counters.conns_live();
        match (&self.drain, &self.running.bgp) {
            (Some(w), Some(b)) => {
                w.report(now, Duration::from_millis(b.drain_quiet_ms as u64), open)
            }
            _ => drain::not_drained(open),
        }
    }

    fn conns_created(&self) -> u64 {
        self.counters.total(lbcore::counters::Counter::ConnCreated)
    }

    fn restore(&mut self, ron: &str) -> Result<Response, ApiError> {
        let cfg = parse_request_config(ron, "restored configuration")?;
        let g = self.commit(cfg, true, "restore")?;
        let running = &self.running;
        self.draining.retain(|(k, a)| {
            running
                .services
                .iter()
                .any(|s| key_of(s) == *k && s.real_servers.iter().any(|r| r.address == *a))
        });
        Ok(Response::Applied { generation: g })
    }

    /// Apply `edit` to a copy of the running config and commit it.
    fn change(
        &mut self,
        what: &str,
        edit: impl FnOnce(&mut Config) -> Result<(), ApiError>,
    ) -> Result<Response, ApiError> {
        let mut cfg = self.running.clone();
        edit(&mut cfg)?;
        self.commit(cfg, true, what)
            .map(|g| Response::Applied { generation: g })
    }

    /// Fields that need a restart (ports, cores, memory, sockets) may not change live.
    fn check_restart_fields(&self, cfg: &Config) -> Result<(), ApiError> {
        let fixed = edits::restart_only_changes(&self.running, cfg);
        if fixed.is_empty() {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorKind::Invalid,
            format!(
                "{} cannot change while lbd runs; restart lbd to apply {}",
                fixed.join(", "),
                if fixed.len() == 1 { "it" } else { "them" }
            ),
        ))
    }

    /// Validate, compile, persist (if asked), publish. Returns the new generation.
    pub fn commit(&mut self, cfg: Config, persist: bool, what: &str) -> Result<u64, ApiError> {
        let result = self.try_commit(cfg, persist);
        let status = match &result {
            Ok(g) => {
                info!("{what}: applied (generation {g})");
                ChangeStatus {
                    ok: true,
                    message: format!("{what}: applied (generation {g})"),
                    at_unix: unix_now(),
                }
            }
            Err(e) => {
                warn!("{what}: refused: {}", e.message);
                ChangeStatus {
                    ok: false,
                    message: format!("{what}: refused: {}", e.message),
                    at_unix: unix_now(),
                }
            }
        };
        self.changes.record(status);
        result
    }

    fn try_commit(&mut self, cfg: Config, persist: bool) -> Result<u64, ApiError> {
        let problems = config::validate(&cfg);
        if !problems.is_empty() {
            let msg: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            return Err(ApiError::new(ErrorKind::Invalid, msg.join("\n")));
        }
        self.check_restart_fields(&cfg)?;
        let generation = self.snapshots.generation() + 1;
        let mut registry = self.registry.clone();
        let mut snap = Snapshot::prepare(
            &cfg,
            &self.port_macs,
            &mut registry,
            &self.neigh,
            generation,
        )
        .map_err(|e| ApiError::new(ErrorKind::Invalid, e.to_string()))?;
        {
            // Real servers failing their health checks (health/), and new
            // ones whose MAC is not resolved yet (resolve_first.rs).
            let prev = self.snapshots.current();
            let health = &*self.health;
            let (held, events) = self.resolve_first.plan(
                &prev,
                &snap,
                |ip| resolved_in(&prev, &self.neigh, ip),
                |s, r| r.weight > 0 && health.health_of(s, r) == RsHealth::Up,
                Instant::now(),
            );
            for e in events {
                match e {
                    HoldEvent::Held(ip) => {
                        info!("real server {ip} held out of scheduling until its MAC is resolved")
                    }
                    HoldEvent::Resolved(ip) => info!("real server {ip} resolved: in service"),
                    HoldEvent::TimedOut(ip) => warn!(
                        "real server {ip}: MAC not resolved after {} s; scheduling it anyway \
                         (its packets are dropped as drop_neigh_unresolved until it answers ARP)",
                        HOLD_MAX.as_secs()
                    ),
                }
            }
            const HELD: RsHealth = RsHealth::Down {
                quiesce: false,
                expire: false,
            };
            snap.apply_health(|s, r| {
                if held.contains(&r.id) {
                    HELD
                } else {
                    health.health_of(s, r)
                }
            });
        }
        if persist {
            self.store.save(&config::to_ron_string(&cfg)).map_err(|e| {
                ApiError::new(
                    ErrorKind::PersistFailed,
                    format!(
                        "could not write {}: {e}; the change was not applied",
                        self.store.describe()
                    ),
                )
            })?;
            self.file_stamp = self.store.stamp();
        }
        registry.commit(&self.neigh);
        self.registry = registry;
        self.snapshots.publish(Arc::new(snap));
        self.health.sync(&cfg, Instant::now());
        self.announce.set_running(&cfg);
        self.running = cfg;
        Ok(generation)
    }

    /// Re-read the configuration file and apply it (not persisted: the file
    /// is the source). An invalid file changes nothing.
    pub fn reload(&mut self, why: &str) -> Result<u64, ApiError> {
        self.file_stamp = self.store.stamp();
        match self.store.load() {
            Ok(cfg) => self.commit(cfg, false, why),
            Err(e) => {
                let err = ApiError::new(ErrorKind::Invalid, e);
                warn!("{why}: refused: {}", err.message);
                self.changes.record(ChangeStatus {
                    ok: false,
                    message: format!("{why}: refused: {}", err.message),
                    at_unix: unix_now(),
                });
                Err(err)
            }
        }
    }

    /// Periodic work: rates, drains that finished, the file watch.
    pub fn tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_rate_sample) >= RATE_PERIOD {
            self.last_rate_sample = now;
            self.tally
                .sample(&self.snapshots.current(), &self.counters, now);
        }
        self.finish_drains();
        if let Some(mut w) = self.drain {
            w.observe(now, self.conns_created());
            self.drain = Some(w);
        }
        if self.health.take_dirty() {
            // Rebuild from the running configuration with the new health
            // states applied; nothing is written.
            let _ = self.commit(self.running.clone(), false, "health check change");
        } else {
            let prev = self.snapshots.current();
            let neigh = &self.neigh;
            let resolved = |ip: IpAddr| resolved_in(&prev, neigh, ip);
            if self.resolve_first.due(resolved, now) {
                let _ = self.commit(self.running.clone(), false, "new real server resolved");
            }
        }
        if self.running.control.autoreload {
            let st = self.store.stamp();
            if st.is_some() && st != self.file_stamp {
                let _ = self.reload("configuration file changed (autoreload)");
            }
        }
    }

    /// Remove the drained real servers whose connections have all ended.
    fn finish_drains(&mut self) {
        if self.draining.is_empty() {
            return;
        }
        let snap = self.snapshots.current();
        let mut done = Vec::new();
        for (key, addr) in &self.draining {
            let rs = snap
                .services
                .iter()
                .find(|s| s.key() == *key)
                .and_then(|s| s.reals.iter().find(|r| r.addr == *addr));
            match rs {
                None => done.push((*key, *addr, false)),
                Some(r) => {
                    let (active, inactive) = self.counters.conns_of(r.id);
                    if active + inactive <= 0 {
                        done.push((*key, *addr, true));
                    }
                }
            }
        }
        for (key, addr, remove) in done {
            self.draining.remove(&(key, addr));
            if remove {
                let _ = self.change(
                    &format!("drained real server {addr} of {key} removed"),
                    |c| {
                        if let Some(s) = c.services.iter_mut().find(|s| key_of(s) == key) {
                            s.real_servers.retain(|r| r.address != addr);
                        }
                        Ok(())
                    },
                );
            }
        }
    }
}

/// A configuration sent with a request (restore, validate), parsed.
fn parse_request_config(ron: &str, origin: &str) -> Result<Config, ApiError> {
    config::parse(ron, origin).map_err(|e| ApiError::new(ErrorKind::Invalid, e.to_string()))
}

/// Whether `snap` binds `ip` (either family) to a neighbour slot whose MAC
/// is resolved.
fn resolved_in(snap: &Snapshot, neigh: &NeighTable, ip: IpAddr) -> bool {
    let slot = match ip {
        IpAddr::V4(a) => snap.neighbours.get(&u32::from(a)),
        IpAddr::V6(a) => snap.neighbours6.get(&u128::from(a)),
    };
    slot.is_some_and(|&slot| neigh.mac(slot as usize).is_some())
}
