//! The configuration edits lbctl asks for, one function per verb: each
//! changes a copy of the running configuration or says why it cannot. No
//! effects: the plane commits the result (`mod.rs`).

use std::net::IpAddr;

use lbcore::api::{
    ApiError, ErrorKind, PersistenceChange, RealEdit, ServiceEdit, ServiceKey, TimeoutEdit,
};
use lbcore::config::{Config, RealServerConfig, ServiceConfig};

pub fn key_of(s: &ServiceConfig) -> ServiceKey {
    ServiceKey::of(s)
}

fn not_found_service(k: &ServiceKey) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("no service {k}; `lbctl list` shows the services"),
    )
}

fn find_service<'a>(
    c: &'a mut Config,
    key: &ServiceKey,
) -> Result<&'a mut ServiceConfig, ApiError> {
    c.services
        .iter_mut()
        .find(|s| key_of(s) == *key)
        .ok_or_else(|| not_found_service(key))
}

pub fn find_real<'a>(
    c: &'a mut Config,
    service: &ServiceKey,
    address: IpAddr,
) -> Result<&'a mut RealServerConfig, ApiError> {
    find_service(c, service)?
        .real_servers
        .iter_mut()
        .find(|r| r.address == address)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                format!("real server {address} is not in {service}"),
            )
        })
}

pub fn add_service(c: &mut Config, svc: ServiceConfig) -> Result<(), ApiError> {
    let k = key_of(&svc);
    if c.services.iter().any(|s| key_of(s) == k) {
        return Err(ApiError::new(
            ErrorKind::AlreadyExists,
            format!("service {k} already exists"),
        ));
    }
    c.services.push(svc);
    Ok(())
}

pub fn edit_service(c: &mut Config, key: &ServiceKey, edit: &ServiceEdit) -> Result<(), ApiError> {
    let s = find_service(c, key)?;
    if let Some(sch) = edit.scheduler {
        s.scheduler = sch;
    }
    match edit.persistence {
        Some(PersistenceChange::Off) => s.persistence = None,
        Some(PersistenceChange::Set(p)) => s.persistence = Some(p),
        None => {}
    }
    Ok(())
}

pub fn delete_service(c: &mut Config, key: &ServiceKey) -> Result<(), ApiError> {
    let before = c.services.len();
    c.services.retain(|s| key_of(s) != *key);
    if c.services.len() == before {
        return Err(not_found_service(key));
    }
    Ok(())
}

pub fn add_real(
    c: &mut Config,
    service: &ServiceKey,
    real: RealServerConfig,
) -> Result<(), ApiError> {
    let s = find_service(c, service)?;
    if s.real_servers.iter().any(|r| r.address == real.address) {
        return Err(ApiError::new(
            ErrorKind::AlreadyExists,
            format!("real server {} is already in {service}", real.address),
        ));
    }
    s.real_servers.push(real);
    Ok(())
}

pub fn edit_real(
    c: &mut Config,
    service: &ServiceKey,
    address: IpAddr,
    edit: &RealEdit,
) -> Result<(), ApiError> {
    let rs = find_real(c, service, address)?;
    if let Some(w) = edit.weight {
        rs.weight = w;
    }
    if let Some(f) = edit.forward {
        rs.forward = f;
    }
    Ok(())
}

pub fn delete_real(c: &mut Config, service: &ServiceKey, address: IpAddr) -> Result<(), ApiError> {
    find_real(c, service, address)?;
    find_service(c, service)?
        .real_servers
        .retain(|r| r.address != address);
    Ok(())
}

/// Weight 0: no new connections; the plane removes it once its
/// connections are gone.
pub fn drain_real(c: &mut Config, service: &ServiceKey, address: IpAddr) -> Result<(), ApiError> {
    find_real(c, service, address)?.weight = 0;
    Ok(())
}

pub fn set_timeouts(c: &mut Config, t: &TimeoutEdit) {
    if let Some(v) = t.tcp {
        c.timeouts.tcp_established = v;
    }
    if let Some(v) = t.tcpfin {
        c.timeouts.tcp_fin_wait = v;
    }
    if let Some(v) = t.udp {
        c.timeouts.udp = v;
    }
}

/// Fields that need a restart (ports, cores, memory, sockets) may not
/// change live: the names of those that differ between `running` and `cfg`.
pub fn restart_only_changes(running: &Config, cfg: &Config) -> Vec<&'static str> {
    let r = running;
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
    if cfg.vrrp6 != r.vrrp6 {
        fixed.push("vrrp6");
    }
    if cfg.sync != r.sync {
        fixed.push("sync");
    }
    // The rest of `bgp` (timers, birdc, announce_without_servers) applies
    // live; the table and the port's interface are set up at start.
    let bgp_where = |c: &Config| c.bgp.as_ref().map(|b| (b.port.clone(), b.table));
    if bgp_where(cfg) != bgp_where(r) {
        fixed.push("bgp (presence, port, table)");
    }
    fixed
}
