//! The control plane: the running configuration and every change to it.
//!
//! A change (from lbctl, a reload, SIGHUP or the file watch) goes through one
//! path, [`ControlPlane::commit`]: validate → compile a snapshot on a copy of
//! the id registry (no side effects) → persist the file atomically (lbctl
//! changes and restores; a reload reads the file instead) → bind neighbours →
//! publish the snapshot, which workers pick up at their next burst. If any
//! step before publishing fails, nothing has changed and the error is
//! returned; the running configuration stays as it was.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use lbcore::api::*;
use lbcore::config::{self, Config, ServiceConfig};
use lbcore::pipeline::snapshot::RsHealth;
use lbcore::pipeline::{Registry, Snapshot};
use lbcore::wire::MacAddr;
use tracing::{info, warn};

use super::conns;
use super::persist;
use super::resolve_first::{HoldEvent, ResolveFirst, HOLD_MAX};
use crate::shared::{ChangeStatus, Shared};

/// Traffic counters of one service or real server, summed over workers.
fn totals(shared: &Shared, service: Option<u32>, rs: Option<u32>) -> Counters {
    let mut c = Counters::default();
    for w in &shared.workers {
        let s = &w.stats;
        if let Some(id) = service {
            let x = &s.services[id as usize];
            c.conns += x.conns.load(Relaxed);
            c.packets_in += x.packets.load(Relaxed);
            c.bytes_in += x.bytes.load(Relaxed);
            c.packets_out += x.packets_out.load(Relaxed);
            c.bytes_out += x.bytes_out.load(Relaxed);
        }
        if let Some(id) = rs {
            let x = &s.rs[id as usize];
            c.conns += x.conns.load(Relaxed);
            c.packets_in += x.packets.load(Relaxed);
            c.bytes_in += x.bytes.load(Relaxed);
            c.packets_out += x.packets_out.load(Relaxed);
            c.bytes_out += x.bytes_out.load(Relaxed);
        }
    }
    c
}

/// Whether the MAC of neighbour `ip` of snapshot `snap` is known.
fn resolved(shared: &Shared, snap: &Snapshot, ip: Ipv4Addr) -> bool {
    snap.neighbours
        .get(&u32::from(ip))
        .is_some_and(|&slot| shared.neigh.mac(slot as usize).is_some())
}

fn minus(a: Counters, b: Counters) -> Counters {
    Counters {
        conns: a.conns.saturating_sub(b.conns),
        packets_in: a.packets_in.saturating_sub(b.packets_in),
        bytes_in: a.bytes_in.saturating_sub(b.bytes_in),
        packets_out: a.packets_out.saturating_sub(b.packets_out),
        bytes_out: a.bytes_out.saturating_sub(b.bytes_out),
    }
}

/// Rate estimation like IPVS's estimator: sample every 2 s, smooth.
#[derive(Default)]
struct RateState {
    last: HashMap<(bool, u32), (Counters, Instant)>,
    rates: HashMap<(bool, u32), Rates>,
}

impl RateState {
    fn sample(&mut self, id: (bool, u32), now_c: Counters, now: Instant) {
        if let Some((prev, at)) = self.last.get(&id) {
            let dt = now.duration_since(*at).as_secs_f64();
            if dt > 0.0 {
                let d = minus(now_c, *prev);
                let inst = Rates {
                    conns: d.conns as f64 / dt,
                    packets_in: d.packets_in as f64 / dt,
                    bytes_in: d.bytes_in as f64 / dt,
                    packets_out: d.packets_out as f64 / dt,
                    bytes_out: d.bytes_out as f64 / dt,
                };
                let r = self.rates.entry(id).or_default();
                // Weight 1/2 on the newest 2-second sample: quick to follow,
                // still smooth.
                let mix = |old: f64, new: f64| old + (new - old) / 2.0;
                r.conns = mix(r.conns, inst.conns);
                r.packets_in = mix(r.packets_in, inst.packets_in);
                r.bytes_in = mix(r.bytes_in, inst.bytes_in);
                r.packets_out = mix(r.packets_out, inst.packets_out);
                r.bytes_out = mix(r.bytes_out, inst.bytes_out);
            }
        }
        self.last.insert(id, (now_c, now));
    }
}

pub struct ControlPlane {
    shared: Arc<Shared>,
    config_path: PathBuf,
    running: Config,
    registry: Registry,
    port_macs: Vec<MacAddr>,
    /// Real servers being drained: removed once their connections end.
    draining: HashSet<(ServiceKey, Ipv4Addr)>,
    /// Counter values at the last `zero`, by (is_service, id).
    baseline: HashMap<(bool, u32), Counters>,
    rates: RateState,
    last_rate_sample: Instant,
    /// (modified time, length) of the file as last read or written.
    file_stamp: Option<(SystemTime, u64)>,
    /// Real servers added live, held out of scheduling until resolved.
    resolve_first: ResolveFirst,
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn key_of(s: &ServiceConfig) -> ServiceKey {
    ServiceKey::of(s)
}

fn not_found_service(k: &ServiceKey) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("no service {k}; `lbctl list` shows the services"),
    )
}

impl ControlPlane {
    pub fn new(
        shared: Arc<Shared>,
        config_path: PathBuf,
        running: Config,
        registry: Registry,
        port_macs: Vec<MacAddr>,
    ) -> ControlPlane {
        let file_stamp = stamp(&config_path);
        ControlPlane {
            shared,
            config_path,
            running,
            registry,
            port_macs,
            draining: HashSet::new(),
            baseline: HashMap::new(),
            rates: RateState::default(),
            last_rate_sample: Instant::now(),
            file_stamp,
            resolve_first: ResolveFirst::default(),
        }
    }

    pub fn running(&self) -> &Config {
        &self.running
    }

    /// Answer one request (the caller has checked permissions).
    pub fn handle(&mut self, req: Request) -> Result<Response, ApiError> {
        match req {
            Request::Status => Ok(Response::Status(self.status())),
            Request::List => Ok(Response::Services(self.list())),
            Request::Conns { filter, limit } => {
                conns::list(&self.shared, &filter, limit).map(Response::Conns)
            }
            Request::AddService(svc) => {
                let k = key_of(&svc);
                self.change(&format!("add service {k}"), |c| {
                    if c.services.iter().any(|s| key_of(s) == k) {
                        return Err(ApiError::new(
                            ErrorKind::AlreadyExists,
                            format!("service {k} already exists"),
                        ));
                    }
                    c.services.push(svc);
                    Ok(())
                })
            }
            Request::EditService { key, edit } => {
                self.change(&format!("edit service {key}"), |c| {
                    let s = c
                        .services
                        .iter_mut()
                        .find(|s| key_of(s) == key)
                        .ok_or_else(|| not_found_service(&key))?;
                    if let Some(sch) = edit.scheduler {
                        s.scheduler = sch;
                    }
                    match edit.persistence {
                        Some(lbcore::api::PersistenceChange::Off) => s.persistence = None,
                        Some(lbcore::api::PersistenceChange::Set(p)) => s.persistence = Some(p),
                        None => {}
                    }
                    Ok(())
                })
            }
            Request::DeleteService(key) => {
                let r = self.change(&format!("delete service {key}"), |c| {
                    let before = c.services.len();
                    c.services.retain(|s| key_of(s) != key);
                    if c.services.len() == before {
                        return Err(not_found_service(&key));
                    }
                    Ok(())
                });
                if r.is_ok() {
                    self.draining.retain(|(k, _)| *k != key);
                }
                r
            }
            Request::AddReal { service, real } => self.change(
                &format!("add real server {} to {service}", real.address),
                |c| {
                    let s = c
                        .services
                        .iter_mut()
                        .find(|s| key_of(s) == service)
                        .ok_or_else(|| not_found_service(&service))?;
                    if s.real_servers.iter().any(|r| r.address == real.address) {
                        return Err(ApiError::new(
                            ErrorKind::AlreadyExists,
                            format!("real server {} is already in {service}", real.address),
                        ));
                    }
                    s.real_servers.push(real);
                    Ok(())
                },
            ),
            Request::EditReal {
                service,
                address,
                edit,
            } => {
                let r = self.change(&format!("edit real server {address} of {service}"), |c| {
                    let rs = find_real(c, &service, address)?;
                    if let Some(w) = edit.weight {
                        rs.weight = w;
                    }
                    if let Some(f) = edit.forward {
                        rs.forward = f;
                    }
                    Ok(())
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
                mode,
            } => match mode {
                RemoveMode::Immediate => {
                    let r =
                        self.change(&format!("delete real server {address} of {service}"), |c| {
                            find_real(c, &service, address)?;
                            let s = c
                                .services
                                .iter_mut()
                                .find(|s| key_of(s) == service)
                                .expect("found above");
                            s.real_servers.retain(|r| r.address != address);
                            Ok(())
                        });
                    if r.is_ok() {
                        self.draining.remove(&(service, address));
                    }
                    r
                }
                RemoveMode::Drain => {
                    let r =
                        self.change(&format!("drain real server {address} of {service}"), |c| {
                            find_real(c, &service, address)?.weight = 0;
                            Ok(())
                        });
                    if r.is_ok() {
                        self.draining.insert((service, address));
                    }
                    r
                }
            },
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
                let snap = self.shared.current();
                for s in &snap.services {
                    self.baseline
                        .insert((true, s.id), totals(&self.shared, Some(s.id), None));
                    for r in &s.reals {
                        self.baseline
                            .insert((false, r.id), totals(&self.shared, None, Some(r.id)));
                    }
                }
                info!("counters zeroed");
                Ok(Response::Done)
            }
            Request::GetTimeouts => Ok(Response::Timeouts(self.running.timeouts)),
            Request::SetTimeouts(t) => self.change("set timeouts", |c| {
                if let Some(v) = t.tcp {
                    c.timeouts.tcp_established = v;
                }
                if let Some(v) = t.tcpfin {
                    c.timeouts.tcp_fin_wait = v;
                }
                if let Some(v) = t.udp {
                    c.timeouts.udp = v;
                }
                Ok(())
            }),
            Request::Save => Ok(Response::Config(config::to_ron_string(&self.running))),
            Request::Restore { ron } => {
                let cfg = config::parse(&ron, "restored configuration")
                    .map_err(|e| ApiError::new(ErrorKind::Invalid, e.to_string()))?;
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
            Request::Validate { ron } => {
                let cfg = config::parse(&ron, "configuration")
                    .map_err(|e| ApiError::new(ErrorKind::Invalid, e.to_string()))?;
                self.check_restart_fields(&cfg)?;
                Ok(Response::Valid)
            }
            Request::Reload => self
                .reload("lbctl reload")
                .map(|g| Response::Applied { generation: g }),
        }
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
        let r = &self.running;
        let mut fixed = Vec::new();
        if cfg.eal != r.eal {
            fixed.push("eal");
        }
        if cfg.ports != r.ports {
            fixed.push("ports");
        }
        if cfg.workers != r.workers {
            fixed.push("workers");
        }
        if cfg.conn_table != r.conn_table {
            fixed.push("conn_table");
        }
        if cfg.control.socket != r.control.socket || cfg.control.group != r.control.group {
            fixed.push("control.socket/control.group");
        }
        if cfg.metrics != r.metrics {
            fixed.push("metrics");
        }
        if cfg.vrrp != r.vrrp {
            fixed.push("vrrp");
        }
        if cfg.sync != r.sync {
            fixed.push("sync");
        }
        if fixed.is_empty() {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorKind::Invalid,
                format!(
                    "{} cannot change while lbd runs; restart lbd to apply {}",
                    fixed.join(", "),
                    if fixed.len() == 1 { "it" } else { "them" }
                ),
            ))
        }
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
                    at_unix: crate::unix_now(),
                }
            }
            Err(e) => {
                warn!("{what}: refused: {}", e.message);
                ChangeStatus {
                    ok: false,
                    message: format!("{what}: refused: {}", e.message),
                    at_unix: crate::unix_now(),
                }
            }
        };
        *self
            .shared
            .last_change
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = status;
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
        let generation = self.shared.generation.load(Relaxed) + 1;
        let mut registry = self.registry.clone();
        let mut snap = Snapshot::prepare(
            &cfg,
            &self.port_macs,
            &mut registry,
            &self.shared.neigh,
            generation,
        )
        .map_err(|e| ApiError::new(ErrorKind::Invalid, e.to_string()))?;
        {
            // Real servers failing their health checks (health/), and new
            // ones whose MAC is not resolved yet (resolve_first.rs).
            let book = self.shared.health.lock().unwrap_or_else(|e| e.into_inner());
            let prev = self.shared.current();
            let (held, events) = self.resolve_first.plan(
                &prev,
                &snap,
                |ip| resolved(&self.shared, &prev, ip),
                |s, r| r.weight > 0 && book.health_of(s, r) == RsHealth::Up,
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
                    book.health_of(s, r)
                }
            });
        }
        if persist {
            persist::write_atomic(&self.config_path, &config::to_ron_string(&cfg)).map_err(
                |e| {
                    ApiError::new(
                        ErrorKind::PersistFailed,
                        format!(
                            "could not write {}: {e}; the change was not applied",
                            self.config_path.display()
                        ),
                    )
                },
            )?;
            self.file_stamp = stamp(&self.config_path);
        }
        registry.commit(&self.shared.neigh);
        self.registry = registry;
        self.shared.publish(Arc::new(snap));
        self.shared
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sync(&cfg, Instant::now());
        self.running = cfg;
        Ok(generation)
    }

    /// Re-read the configuration file and apply it (not persisted: the file
    /// is the source). An invalid file changes nothing.
    pub fn reload(&mut self, why: &str) -> Result<u64, ApiError> {
        self.file_stamp = stamp(&self.config_path);
        match config::load(&self.config_path) {
            Ok(cfg) => self.commit(cfg, false, why),
            Err(e) => {
                let err = ApiError::new(ErrorKind::Invalid, e.to_string());
                warn!("{why}: refused: {}", err.message);
                *self
                    .shared
                    .last_change
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = ChangeStatus {
                    ok: false,
                    message: format!("{why}: refused: {}", err.message),
                    at_unix: crate::unix_now(),
                };
                Err(err)
            }
        }
    }

    /// Periodic work: rates, drains that finished, the file watch.
    pub fn tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_rate_sample).as_secs_f64() >= 2.0 {
            self.last_rate_sample = now;
            let snap = self.shared.current();
            for s in &snap.services {
                self.rates
                    .sample((true, s.id), totals(&self.shared, Some(s.id), None), now);
                for r in &s.reals {
                    self.rates
                        .sample((false, r.id), totals(&self.shared, None, Some(r.id)), now);
                }
            }
        }
        self.finish_drains();
        let health_changed = self
            .shared
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_dirty();
        if health_changed {
            // Rebuild from the running configuration with the new health
            // states applied; nothing is written.
            let _ = self.commit(self.running.clone(), false, "health check change");
        } else {
            let prev = self.shared.current();
            if self
                .resolve_first
                .due(|ip| resolved(&self.shared, &prev, ip), now)
            {
                let _ = self.commit(self.running.clone(), false, "new real server resolved");
            }
        }
        if self.running.control.autoreload {
            let st = stamp(&self.config_path);
            if st.is_some() && st != self.file_stamp {
                let _ = self.reload("configuration file changed (autoreload)");
            }
        }
    }

    fn finish_drains(&mut self) {
        if self.draining.is_empty() {
            return;
        }
        let snap = self.shared.current();
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
                    let live: i64 = self
                        .shared
                        .workers
                        .iter()
                        .map(|w| {
                            w.stats.rs[r.id as usize].active() as i64
                                + w.stats.rs[r.id as usize].inactive() as i64
                        })
                        .sum();
                    if live <= 0 {
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

    fn list(&self) -> Vec<ServiceInfo> {
        let snap = self.shared.current();
        let health = self.shared.health.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        snap.services
            .iter()
            .map(|s| {
                let key = s.key();
                let base = self
                    .baseline
                    .get(&(true, s.id))
                    .copied()
                    .unwrap_or_default();
                ServiceInfo {
                    key,
                    members: s
                        .fwmark
                        .map(|m| self.running.marked(m).copied().collect())
                        .unwrap_or_default(),
                    scheduler: s.scheduler,
                    persistence: s.persistence,
                    counters: minus(totals(&self.shared, Some(s.id), None), base),
                    rates: self
                        .rates
                        .rates
                        .get(&(true, s.id))
                        .copied()
                        .unwrap_or_default(),
                    reals: s
                        .reals
                        .iter()
                        .map(|r| {
                            let base = self
                                .baseline
                                .get(&(false, r.id))
                                .copied()
                                .unwrap_or_default();
                            let (mut active, mut inactive) = (0i64, 0i64);
                            for w in &self.shared.workers {
                                active += w.stats.rs[r.id as usize].active() as i64;
                                inactive += w.stats.rs[r.id as usize].inactive() as i64;
                            }
                            let (active, inactive) = (active.max(0) as u64, inactive.max(0) as u64);
                            RealInfo {
                                address: r.addr,
                                port: r.port,
                                forward: r.forward,
                                weight: r.weight,
                                active,
                                inactive,
                                draining: self.draining.contains(&(key, r.addr)),
                                health: health.info(&(key, r.addr, r.port), now),
                                fallback: r.fallback,
                                counters: minus(totals(&self.shared, None, Some(r.id)), base),
                                rates: self
                                    .rates
                                    .rates
                                    .get(&(false, r.id))
                                    .copied()
                                    .unwrap_or_default(),
                            }
                        })
                        .collect(),
                }
            })
            .collect()
    }

    fn status(&self) -> StatusInfo {
        let snap = self.shared.current();
        let last = self.shared.last_change();
        StatusInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: self.shared.clock.seconds(),
            config_path: self.config_path.display().to_string(),
            generation: self.shared.generation.load(Relaxed),
            last_change_ok: last.ok,
            last_change_message: last.message,
            ports: self
                .shared
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
                        device_info: Some(crate::device::status_of(&h.dev)),
                    }
                })
                .collect(),
            workers: self
                .shared
                .workers
                .iter()
                .map(|w| WorkerStatus {
                    index: w.index,
                    port: self.shared.ports[w.port as usize].name.clone(),
                    queue: w.queue,
                    lcore: w.lcore,
                    busy_polls: w.stats.busy_polls.load(Relaxed),
                    idle_polls: w.stats.idle_polls.load(Relaxed),
                    conns: w.stats.conns_live.load(Relaxed),
                    flood_defence: w.stats.flood_engaged.load(Relaxed) != 0,
                    rx_frames: w.stats.get(lbcore::counters::Counter::RxFrames),
                })
                .collect(),
            conn_capacity: self.shared.conn_capacity,
            conns: self
                .shared
                .workers
                .iter()
                .map(|w| w.stats.conns_live.load(Relaxed))
                .sum(),
            counters: lbcore::counters::Counter::ALL
                .iter()
                .map(|&c| {
                    let v: u64 = self.shared.workers.iter().map(|w| w.stats.get(c)).sum();
                    (c.name().to_string(), v)
                })
                .chain(
                    crate::metrics::kernel_samples(&self.shared)
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
                        }),
                )
                .chain({
                    let s = &self.shared.sync_stats;
                    [
                        ("sync_sent", s.sent.load(Relaxed)),
                        ("sync_received", s.received.load(Relaxed)),
                        ("sync_rejected", s.rejected.load(Relaxed)),
                        ("sync_bad_datagrams", s.bad_datagrams.load(Relaxed)),
                        ("sync_send_errors", s.send_errors.load(Relaxed)),
                    ]
                    .map(|(k, v)| (k.to_string(), v))
                })
                .filter(|&(_, v)| v > 0)
                .collect(),
            vrrp: self
                .shared
                .vrrp
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

fn find_real<'a>(
    c: &'a mut Config,
    service: &ServiceKey,
    address: Ipv4Addr,
) -> Result<&'a mut lbcore::config::RealServerConfig, ApiError> {
    let s = c
        .services
        .iter_mut()
        .find(|s| key_of(s) == *service)
        .ok_or_else(|| not_found_service(service))?;
    s.real_servers
        .iter_mut()
        .find(|r| r.address == address)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                format!("real server {address} is not in {service}"),
            )
        })
}
