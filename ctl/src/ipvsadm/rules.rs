//! ipvsadm commands applied to a configuration, and the configuration
//! written as ipvsadm-save's rules.
//!
//! `-R` and `lbctl import ipvsadm` both read rules and apply them here, to
//! a copy of a configuration, so that lbd gets the result in one atomic
//! restore: a failing line changes nothing. `-S` writes the rules of the
//! running configuration in the order and spelling ipvsadm-save uses, so
//! that save, restore and save again gives the same text.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use lb_api::addr::SockAddr;
use lb_api::config::{Forward, Persistence, RealServerConfig, ServiceConfig, Timeouts};
use lb_api::protocol::ServiceKey;

use super::{Command, ServerSpec, ServiceRef, ServiceSpec};

/// Why a command could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// `-A` of a service, or `-a` of a real server, that exists.
    Exists(String),
    /// `-E`, `-D`, `-a`, `-e`, `-d` of something that does not exist.
    NotFound(String),
    /// A command that does not change the rules (`-L`, `-S`, `-Z`, ...).
    NotARule(&'static str),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Exists(m) | ApplyError::NotFound(m) => write!(f, "{m}"),
            ApplyError::NotARule(what) => write!(f, "{what} is not a rule (it changes nothing)"),
        }
    }
}

fn key_of(s: &ServiceConfig) -> ServiceKey {
    ServiceKey::of(s)
}

fn addr(service: ServiceRef) -> Result<ServiceKey, ApplyError> {
    Ok(service.key())
}

/// The real server's port as lbd keeps it: `None` (the service's) unless
/// NAT maps it to another one. Direct routing and tunnels cannot change
/// the port, so IPVS uses the service's whatever `-r` said. A service
/// group has no port of its own: a real server keeps the one `-r` gave
/// (as IPVS does; lbd's health checks use it).
pub fn real_port(spec: &ServerSpec, service: &ServiceKey) -> Option<u16> {
    match (spec.forward, spec.port) {
        (_, Some(p)) if service.fwmark.is_some() && p != 0 => Some(p),
        (Forward::Nat, Some(p)) if p != service.port => Some(p),
        _ => None,
    }
}

/// A new service as `-A` makes it (`-f MARK`: a service group with no
/// members yet).
pub fn new_service(key: ServiceKey, spec: &ServiceSpec) -> ServiceConfig {
    ServiceConfig {
        vip: key.vip,
        port: key.port,
        protocol: key.protocol,
        scheduler: spec.scheduler,
        real_servers: vec![],
        persistence: spec.persistence,
        health_check: None,
        fallback: None,
        sloppy_tcp: false,
        ecmp: false,
        fwmark: key.fwmark,
    }
}

/// A new real server as `-a` makes it.
pub fn new_real(spec: &ServerSpec, service: &ServiceKey) -> RealServerConfig {
    RealServerConfig {
        address: spec.address,
        port: real_port(spec, service),
        weight: spec.weight,
        forward: spec.forward,
        health_check: None,
    }
}

/// Applies one command to `services` and `timeouts`, as IPVS would.
pub fn apply(
    services: &mut Vec<ServiceConfig>,
    timeouts: &mut Timeouts,
    cmd: &Command,
) -> Result<(), ApplyError> {
    let find = |services: &Vec<ServiceConfig>, k: ServiceKey| -> Result<usize, ApplyError> {
        services
            .iter()
            .position(|s| key_of(s) == k)
            .ok_or_else(|| ApplyError::NotFound(format!("no service {k}")))
    };
    match cmd {
        Command::AddService(spec) => {
            let k = addr(spec.service)?;
            if find(services, k).is_ok() {
                return Err(ApplyError::Exists(format!("service {k} already exists")));
            }
            services.push(new_service(k, spec));
        }
        Command::EditService(spec) => {
            let k = addr(spec.service)?;
            let i = find(services, k)?;
            services[i].scheduler = spec.scheduler;
            services[i].persistence = spec.persistence;
        }
        Command::DeleteService(s) => {
            let i = find(services, addr(*s)?)?;
            services.remove(i);
        }
        Command::AddServer(spec) => {
            let k = addr(spec.service)?;
            let i = find(services, k)?;
            let svc = &mut services[i];
            if svc.real_servers.iter().any(|r| r.address == spec.address) {
                return Err(ApplyError::Exists(format!(
                    "real server {} of {k} already exists",
                    spec.address
                )));
            }
            svc.real_servers.push(new_real(spec, &k));
        }
        Command::EditServer(spec) => {
            let k = addr(spec.service)?;
            let i = find(services, k)?;
            let r = services[i]
                .real_servers
                .iter_mut()
                .find(|r| r.address == spec.address)
                .ok_or_else(|| {
                    ApplyError::NotFound(format!("no real server {} in {k}", spec.address))
                })?;
            r.weight = spec.weight;
            r.forward = spec.forward;
            r.port = real_port(spec, &k);
        }
        Command::DeleteServer { service, address } => {
            let k = addr(*service)?;
            let i = find(services, k)?;
            let reals = &mut services[i].real_servers;
            let j = reals
                .iter()
                .position(|r| r.address == *address)
                .ok_or_else(|| ApplyError::NotFound(format!("no real server {address} in {k}")))?;
            reals.remove(j);
        }
        Command::Clear => services.clear(),
        Command::SetTimeouts { tcp, tcpfin, udp } => {
            if *tcp != 0 {
                timeouts.tcp_established = *tcp;
            }
            if *tcpfin != 0 {
                timeouts.tcp_fin_wait = *tcpfin;
            }
            if *udp != 0 {
                timeouts.udp = *udp;
            }
        }
        Command::List(_) => return Err(ApplyError::NotARule("-L")),
        Command::Zero(_) => return Err(ApplyError::NotARule("-Z")),
        Command::Save => return Err(ApplyError::NotARule("-S")),
        Command::Restore => return Err(ApplyError::NotARule("-R")),
        Command::Help | Command::Version => return Err(ApplyError::NotARule("-h/-v")),
    }
    Ok(())
}

/// How a rule names the service: `-t VIP:PORT`, `-u VIP:PORT`, `-f MARK`,
/// `-f MARK -6` (an IPv6 group: `family` is an address of its family).
fn service_flag(k: &ServiceKey, family: IpAddr) -> String {
    if let Some(m) = k.fwmark {
        return match family {
            IpAddr::V4(_) => format!("-f {m}"),
            IpAddr::V6(_) => format!("-f {m} -6"),
        };
    }
    let p = match k.protocol {
        lb_api::config::Protocol::Tcp => "-t",
        lb_api::config::Protocol::Udp => "-u",
    };
    format!("{p} {}", SockAddr(k.vip, k.port))
}

/// How ipvsadm shows a persistent service's client mask (` mask ...` in
/// listings, `-M ...` in rules), if it is not the whole address: a
/// dotted netmask for IPv4, a prefix length for IPv6.
pub fn mask_text(p: &Persistence, vip: IpAddr) -> Option<String> {
    match vip {
        IpAddr::V4(_) => (p.netmask < 32).then(|| Ipv4Addr::from(p.mask()).to_string()),
        IpAddr::V6(_) => {
            let n = p.client_prefix(vip);
            (n < 128).then(|| n.to_string())
        }
    }
}

fn forward_flag(f: Forward) -> &'static str {
    match f {
        Forward::Dr => "-g",
        Forward::Tunnel => "-i",
        Forward::Nat => "-m",
    }
}

/// ipvsadm's sort order of services: firewall mark (services without one
/// first), protocol (TCP before UDP), address, port.
pub fn service_order(a: &ServiceKey, b: &ServiceKey) -> std::cmp::Ordering {
    let order = |k: &ServiceKey| (k.fwmark.unwrap_or(0), k.protocol.ip_proto(), k.vip, k.port);
    order(a).cmp(&order(b))
}

/// An address of the family of `s`'s clients: its VIP, or for a service
/// group (whose `vip` is unset) its real servers' (validation keeps them
/// in the family of the group's VIPs), or IPv6 if its persistence has a
/// prefix length. A group with neither is written as IPv4, which restores
/// to the same configuration.
pub fn config_family(s: &ServiceConfig) -> IpAddr {
    if s.fwmark.is_none() {
        return s.vip;
    }
    match s.real_servers.first() {
        Some(r) => r.address,
        None if s.persistence.is_some_and(|p| p.prefix.is_some()) => {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        }
        None => Ipv4Addr::UNSPECIFIED.into(),
    }
}

/// An address of the family of a listed service's clients: its VIP, or a
/// service group's first member's.
pub fn info_family(s: &lb_api::protocol::ServiceInfo) -> IpAddr {
    match (s.key.fwmark, s.members.first()) {
        (Some(_), Some(m)) => m.vip,
        _ => s.key.vip,
    }
}

/// The `-A` line of a service (`family`: see [`config_family`]).
pub fn service_rule(
    k: &ServiceKey,
    family: IpAddr,
    scheduler: &str,
    p: Option<Persistence>,
) -> String {
    let mut line = format!("-A {} -s {scheduler}", service_flag(k, family));
    if let Some(p) = p {
        line.push_str(&format!(" -p {}", p.timeout));
        if let Some(m) = mask_text(&p, family) {
            line.push_str(&format!(" -M {m}"));
        }
    }
    line
}

/// The rules of `services`, as `ipvsadm -S -n` prints them: services and
/// their real servers sorted, one `-A` line per service and one `-a` line
/// per real server. Also what the rules cannot say (health checks,
/// fallback servers, sloppy_tcp), as notes for standard error.
pub fn save(services: &[ServiceConfig], sort: bool) -> (String, Vec<String>) {
    let mut order: Vec<&ServiceConfig> = services.iter().collect();
    if sort {
        order.sort_by(|a, b| service_order(&key_of(a), &key_of(b)));
    }
    let mut out = String::new();
    let mut notes = Vec::new();
    for s in order {
        let k = key_of(s);
        let family = config_family(s);
        out.push_str(&service_rule(&k, family, s.scheduler.name(), s.persistence));
        out.push('\n');
        let mut reals: Vec<&RealServerConfig> = s.real_servers.iter().collect();
        if sort {
            reals.sort_by_key(|r| (r.address, r.port.unwrap_or(s.port)));
        }
        for r in reals {
            out.push_str(&format!(
                "-a {} -r {} {} -w {}\n",
                service_flag(&k, family),
                SockAddr(r.address, r.port.unwrap_or(s.port)),
                forward_flag(r.forward),
                r.weight
            ));
        }
        let mut lost = Vec::new();
        if s.health_check.is_some() || s.real_servers.iter().any(|r| r.health_check.is_some()) {
            lost.push("health checks");
        }
        if s.fallback.is_some() {
            lost.push("a fallback server");
        }
        if s.sloppy_tcp {
            lost.push("sloppy_tcp");
        }
        if s.ecmp {
            lost.push("ECMP mode");
        }
        if !lost.is_empty() {
            notes.push(format!(
                "{k} has {} that ipvsadm's rules cannot hold; `lbctl save` keeps them",
                lost.join(" and ")
            ));
        }
    }
    (out, notes)
}

/// Rules read from text (ipvsadm-save's format), with their line numbers.
/// Blank lines and `#` comments are skipped, and a leading `ipvsadm` word
/// (rules written as shell commands) is dropped.
pub fn parse_rules(text: &str) -> Result<Vec<(usize, Command)>, (usize, super::IpvsError)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut words = super::split_words(t)
            .ok_or_else(|| (n, super::IpvsError::Usage("unterminated quote".into())))?;
        if words
            .first()
            .is_some_and(|w| w == "ipvsadm" || w.ends_with("/ipvsadm"))
        {
            words.remove(0);
        }
        let cmd = super::parse(&words).map_err(|e| (n, e))?;
        out.push((n, cmd));
    }
    Ok(out)
}
