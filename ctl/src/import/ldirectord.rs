//! `lbctl import ldirectord FILE`: ldirectord.cf read as ldirectord reads
//! it, and converted.
//!
//! The file is `key = value` lines. Global settings start at the beginning
//! of a line; `virtual=VIP:PORT` (`virtual6=[IPV6]:PORT` for IPv6) opens
//! a virtual service whose settings
//! follow on lines indented by at least four spaces or a tab. A blank line,
//! or a line that is not indented, ends the virtual section; comment lines
//! (`#` as the first non-blank character) do not, wherever they start. `#`
//! outside double quotes starts a comment. Per-virtual settings override
//! the global ones of the same name (checktimeout, negotiatetimeout,
//! failurecount, fallback, quiescent, ...).
//!
//! Converted: real servers (`real=HOST[->HOST2][:PORT] gate|masq|ipip
//! [WEIGHT] ["REQUEST", "RECEIVE"]`, `real6=[IPV6]:PORT ...`), scheduler,
//! persistence, protocol,
//! checktype/service/request/receive/checkport/checktimeout/
//! negotiatetimeout/checkinterval/failurecount as lbd health checks,
//! quiescent as on_failure, fallback (fallback6 for the IPv6 services) as
//! the fallback server, autoreload.
//! Everything else is noted.

use std::net::{IpAddr, Ipv4Addr};

use lb_api::config::{
    CheckKind, Fallback, Forward, HealthCheck, OnFailure, Persistence, Protocol, RealServerConfig,
    Scheduler, ServiceConfig,
};

use super::{ErrorKind, ImportError, Imported, ImportedService, Loc, Note};
use crate::ipvsadm::{port_number, resolve_host};

/// ldirectord's fwmark virtual services are left to the user: lbd has
/// service groups, but which VIP:ports a mark stood for is not in the file.
const FWM_NOT_CONVERTED: &str = "ldirectord's fwmark services are not converted: lbd reads \
                                 no firewall marks; write a service group (`fwmark` and \
                                 `match`, see docs/coming-from-lvs.md) with the VIP:ports the \
                                 mark was set on";

/// A `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub loc: Loc,
}

/// A `virtual=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Virtual {
    /// What follows `virtual=` (or `virtual6=`).
    pub spec: String,
    pub ipv6: bool,
    pub loc: Loc,
    pub settings: Vec<Setting>,
}

/// The file, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cf {
    pub globals: Vec<Setting>,
    pub virtuals: Vec<Virtual>,
}

/// The line without its comment: from the first `#` outside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

fn key_value(text: &str, loc: &Loc) -> Result<(String, String), ImportError> {
    let text = text.trim();
    match text.split_once('=') {
        Some((k, v)) => Ok((k.trim().to_ascii_lowercase(), v.trim().to_string())),
        // A bare `supervised` is ldirectord's old spelling of supervised=yes.
        None if text == "supervised" => Ok(("supervised".into(), "yes".into())),
        None => Err(ImportError::at(
            loc,
            ErrorKind::ExpectedKeyValue {
                found: text.to_string(),
            },
        )),
    }
}

/// Parses ldirectord.cf text (from the file shown as `shown`).
pub fn parse(text: &str, shown: &str) -> Result<Cf, ImportError> {
    let mut cf = Cf::default();
    let mut cur: Option<Virtual> = None;
    for (n, raw) in text.lines().enumerate() {
        let loc = Loc {
            file: shown.to_string(),
            line: n + 1,
        };
        let t = raw.trim();
        if t.starts_with('#') {
            continue;
        }
        if t.is_empty() {
            cf.virtuals.extend(cur.take());
            continue;
        }
        let lead: String = raw
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if !lead.is_empty() {
            let width: usize = lead.chars().map(|c| if c == '\t' { 4 } else { 1 }).sum();
            let Some(v) = cur.as_mut() else {
                return Err(ImportError::at(&loc, ErrorKind::IndentOutsideSection));
            };
            if width < 4 {
                return Err(ImportError::at(&loc, ErrorKind::ShallowIndent));
            }
            let (key, value) = key_value(strip_comment(t), &loc)?;
            v.settings.push(Setting { key, value, loc });
            continue;
        }
        cf.virtuals.extend(cur.take());
        let (key, value) = key_value(strip_comment(t), &loc)?;
        if key == "virtual" || key == "virtual6" {
            cur = Some(Virtual {
                spec: value,
                ipv6: key == "virtual6",
                loc,
                settings: Vec::new(),
            });
        } else {
            cf.globals.push(Setting { key, value, loc });
        }
    }
    cf.virtuals.extend(cur);
    Ok(cf)
}

/// Reads and converts an ldirectord.cf.
pub fn import(text: &str, shown: &str) -> Result<Imported, ImportError> {
    let cf = parse(text, shown)?;
    let mut c = Conv::default();
    c.globals(&cf.globals);
    for v in &cf.virtuals {
        c.virtual_service(v);
    }
    Ok(c.imp)
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

fn yes_no(s: &Setting) -> Option<bool> {
    match unquote(&s.value).as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn number(s: &Setting) -> Option<u32> {
    unquote(&s.value).parse().ok().filter(|n| *n > 0)
}

/// ldirectord's service for a port (its default for negotiate checks).
fn service_of_port(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        25 => "smtp",
        53 => "dns",
        80 => "http",
        110 => "pop",
        119 => "nntp",
        143 => "imap",
        389 => "ldap",
        443 => "https",
        587 => "submission",
        993 => "imaps",
        995 => "pops",
        1521 => "oracle",
        1812 => "radius",
        3128 => "http_proxy",
        3306 => "mysql",
        5060 => "sip",
        5432 => "pgsql",
        _ => "none",
    }
}

/// Settings that may be global or per virtual, the virtual's winning.
#[derive(Debug, Clone, Default)]
struct Shared {
    checktimeout: Option<u32>,
    negotiatetimeout: Option<u32>,
    checkinterval: Option<u32>,
    failurecount: Option<u32>,
    quiescent: Option<bool>,
    /// `fallback=` (globally: the IPv4 services').
    fallback: Option<Setting>,
    /// `fallback6=` (globally: the IPv6 services'; in a virtual section
    /// the same as `fallback=`, as in ldirectord).
    fallback6: Option<Setting>,
}

#[derive(Default)]
struct Conv {
    imp: Imported,
    global: Shared,
    fork: bool,
}

fn why_not(key: &str) -> &'static str {
    match key {
        "logfile" => "lbd logs to standard error (the journal under systemd)",
        "callback" | "execute" => "lbd runs no commands when its configuration changes",
        "supervised" => "lbd runs in the foreground under its service manager",
        "fork" => "lbd checks every real server on its own schedule",
        "readdquiescent" | "cleanstop" => {
            "lbd keeps no kernel table: its servers live in its own configuration"
        }
        "maintenancedir" => {
            "lbd has no maintenance directory: `lbctl real edit VIP:PORT RIP -w 0` (or `real \
             del --drain`) takes a server out"
        }
        "fallbackcommand" => "lbd runs no command when all real servers are down",
        "monitorfile" => "lbd logs check results to its own log",
        "login" | "passwd" | "database" | "secret" => {
            "lbd's checks do not log in to services (TCP, HTTP, UDP or a command)"
        }
        "load" => "lbd has no load checks",
        "ops" => "lbd has no one-packet scheduling",
        "checkcount" => "ldirectord applies it to ping checks only; lbd uses failurecount",
        "connecttimeout" => {
            "ldirectord refuses it (deprecated in favour of negotiatetimeout), so does lbctl"
        }
        k if k.starts_with("emailalert") || k == "smtp" => {
            "lbd sends no email; its log and /metrics report changes of state"
        }
        _ => "ldirectord has no such setting, or lbd no equivalent",
    }
}

impl Conv {
    fn note(&mut self, loc: &Loc, text: impl Into<String>) {
        self.imp.notes.push(Note::at(loc, text));
    }

    fn skip(&mut self, s: &Setting) {
        let why = why_not(&s.key);
        self.note(
            &s.loc,
            format!("`{}={}`: not converted: {why}", s.key, s.value),
        );
    }

    /// The settings both levels share; `false` when `s` is not one.
    fn shared(&mut self, sh: &mut Shared, s: &Setting) -> bool {
        let bad = |this: &mut Conv, what: &str| {
            this.note(
                &s.loc,
                format!("`{}={}`: not {what}: ignored", s.key, s.value),
            )
        };
        match s.key.as_str() {
            "checktimeout" => match number(s) {
                Some(n) => sh.checktimeout = Some(n),
                None => bad(self, "a number of seconds"),
            },
            "negotiatetimeout" => match number(s) {
                Some(n) => sh.negotiatetimeout = Some(n),
                None => bad(self, "a number of seconds"),
            },
            "checkinterval" => match number(s) {
                Some(n) => sh.checkinterval = Some(n),
                None => bad(self, "a number of seconds"),
            },
            "failurecount" => match number(s) {
                Some(n) => sh.failurecount = Some(n),
                None => bad(self, "a count"),
            },
            "quiescent" => match yes_no(s) {
                Some(q) => sh.quiescent = Some(q),
                None => bad(self, "yes or no"),
            },
            "fallback" => sh.fallback = Some(s.clone()),
            "fallback6" => sh.fallback6 = Some(s.clone()),
            _ => return false,
        }
        true
    }

    fn globals(&mut self, globals: &[Setting]) {
        let mut sh = Shared::default();
        for s in globals {
            if self.shared(&mut sh, s) {
                continue;
            }
            match s.key.as_str() {
                "autoreload" => match yes_no(s) {
                    Some(a) => self.imp.autoreload = Some(a),
                    None => self.note(&s.loc, "autoreload must be yes or no: ignored"),
                },
                "fork" => {
                    self.fork = yes_no(s) == Some(true);
                    if self.fork {
                        self.skip(s);
                    }
                }
                _ => self.skip(s),
            }
        }
        self.global = sh;
    }

    fn virtual_service(&mut self, v: &Virtual) {
        let what = format!("{}={}", if v.ipv6 { "virtual6" } else { "virtual" }, v.spec);
        let spec = v.spec.split_whitespace().next().unwrap_or("");
        let Some((host, port)) = split_host_port(spec) else {
            if spec.chars().all(|c| c.is_ascii_digit()) && !spec.is_empty() {
                self.note(
                    &v.loc,
                    format!(
                        "`{what}`: not converted: {} (nor its {} setting{})",
                        FWM_NOT_CONVERTED,
                        v.settings.len(),
                        if v.settings.len() == 1 { "" } else { "s" }
                    ),
                );
            } else {
                self.note(&v.loc, format!("`{what}`: not ADDRESS:PORT: not converted"));
            }
            return;
        };
        // The protocol decides service names: read it first.
        let mut protocol = Protocol::Tcp;
        let mut protocol_given = false;
        for s in v.settings.iter().filter(|s| s.key == "protocol") {
            match unquote(&s.value).as_str() {
                "tcp" => protocol = Protocol::Tcp,
                "udp" => protocol = Protocol::Udp,
                "fwm" => {
                    self.note(
                        &s.loc,
                        format!("`{what}`: protocol=fwm: {FWM_NOT_CONVERTED}"),
                    );
                    return;
                }
                other => {
                    self.note(
                        &s.loc,
                        format!("`protocol={other}`: lbd serves tcp and udp: not converted"),
                    );
                    return;
                }
            }
            protocol_given = true;
        }
        let Some(vip) = resolve(host) else {
            self.note(
                &v.loc,
                format!("`{what}`: `{host}` is not an IP address or a known host: not converted"),
            );
            return;
        };
        let Some(vport) = port_number(port, protocol) else {
            self.note(
                &v.loc,
                format!("`{what}`: `{port}` is not a port: not converted"),
            );
            return;
        };
        if vip.is_ipv6() && !v.ipv6 {
            self.note(
                &v.loc,
                format!(
                    "`{what}`: ldirectord wants `virtual6=` for an IPv6 address (it refuses this \
                     line); converted as an IPv6 service"
                ),
            );
        }
        if !protocol_given && vport == 53 {
            protocol = Protocol::Udp;
        }
        let mut svc = ServiceConfig {
            vip,
            port: vport,
            protocol,
            // ldirectord's default scheduler.
            scheduler: Scheduler::Wrr,
            real_servers: vec![],
            persistence: None,
            health_check: None,
            fallback: None,
            sloppy_tcp: false,
            ecmp: false,
            fwmark: None,
        };
        let mut sh = self.global.clone();
        // Settings given in this virtual section override the global ones.
        sh.fallback = None;
        sh.fallback6 = None;
        let mut checktype = "negotiate".to_string();
        let mut checktype_loc = v.loc.clone();
        let mut service: Option<String> = None;
        let mut request = "/".to_string();
        let mut receive = String::new();
        let mut checkport = None;
        let mut checkcommand = "/bin/true".to_string();
        let mut httpmethod_head = None;
        let mut virtualhost = None;
        let mut netmask = None;
        let mut reals = Vec::new();
        for s in &v.settings {
            if s.key == "checkinterval" && !self.fork {
                self.note(
                    &s.loc,
                    "`checkinterval` in a virtual section: ldirectord ignores it unless fork=yes; \
                     so does lbctl (the global one is used)",
                );
                continue;
            }
            if self.shared(&mut sh, s) {
                continue;
            }
            let val = unquote(&s.value);
            match s.key.as_str() {
                "real" | "real6" => reals.push(s),
                "protocol" => {}
                "scheduler" => match crate::ipvsadm::parse_scheduler(&val) {
                    Ok(x) => svc.scheduler = x,
                    Err(_) => {
                        svc.scheduler = Scheduler::Wlc;
                        self.note(
                            &s.loc,
                            format!("`scheduler={val}`: lbd has no such scheduler: wlc is used"),
                        )
                    }
                },
                "persistent" => match val.parse::<u32>() {
                    Ok(0) => {}
                    Ok(t) => {
                        let max = crate::ipvsadm::MAX_PERSISTENCE;
                        if t > max {
                            self.note(
                                &s.loc,
                                format!("`persistent={t}` is above lbd's {max} s: {max} is used"),
                            );
                        }
                        svc.persistence = Some(Persistence::v4(t.min(max), 32))
                    }
                    Err(_) => self.note(
                        &s.loc,
                        format!("`persistent={val}`: not a number of seconds: ignored"),
                    ),
                },
                "netmask" => match crate::args::parse_netmask(&val) {
                    Ok(m) => netmask = Some((m, s.loc.clone())),
                    Err(e) => self.note(&s.loc, format!("`netmask={val}`: {e}: ignored")),
                },
                "checktype" => {
                    checktype = val.to_ascii_lowercase();
                    checktype_loc = s.loc.clone();
                }
                "service" => service = Some(val.to_ascii_lowercase()),
                "request" => {
                    request = if val.starts_with('/') {
                        val
                    } else {
                        format!("/{val}")
                    }
                }
                "receive" => receive = val,
                "checkport" => match val.parse::<u16>() {
                    Ok(p) if p > 0 => checkport = Some(p),
                    _ => self.note(&s.loc, format!("`checkport={val}`: not a port: ignored")),
                },
                "checkcommand" => checkcommand = val,
                "httpmethod" => {
                    httpmethod_head = (val.eq_ignore_ascii_case("head")).then(|| s.loc.clone())
                }
                "virtualhost" => virtualhost = Some(val),
                _ => self.skip(s),
            }
        }
        if let Some((m, loc)) = netmask {
            match &mut svc.persistence {
                // An IPv6 service's netmask is a prefix length.
                Some(p) if vip.is_ipv6() => p.prefix = Some(m),
                Some(p) => p.netmask = m,
                None => self.note(&loc, "`netmask` without `persistent`: not converted"),
            }
        }
        // In a section, fallback= and fallback6= are one setting (the later
        // wins); the global one is the service's family's.
        let local = match (&sh.fallback, &sh.fallback6) {
            (Some(a), Some(b)) => Some(if a.loc.line > b.loc.line { a } else { b }),
            (a, b) => a.as_ref().or(b.as_ref()),
        };
        let global = if vip.is_ipv6() {
            &self.global.fallback6
        } else {
            &self.global.fallback
        };
        if let Some(f) = local.or(global.as_ref()).cloned() {
            svc.fallback = self.fallback(&f, &svc);
        }
        let service = service.unwrap_or_else(|| service_of_port(vport).to_string());
        let params = CheckParams {
            checktype: &checktype,
            checktype_loc: &checktype_loc,
            service: &service,
            protocol,
            checkcommand: &checkcommand,
            head: httpmethod_head.as_ref(),
            virtualhost: virtualhost.as_deref(),
        };
        svc.health_check = self.check(&params, &sh, checkport, &request, &receive, true);
        // A per-server request/receive gives that server its own check; the
        // others keep the service's.
        for s in reals {
            self.real(s, &mut svc, &params, &sh, checkport);
        }
        self.imp.services.push(ImportedService {
            config: svc,
            origin: v.loc.clone(),
            what,
        });
    }

    fn fallback(&mut self, s: &Setting, svc: &ServiceConfig) -> Option<Fallback> {
        let val = unquote(&s.value);
        let key = &s.key;
        let mut words = val.split_whitespace();
        let addr = words.next().unwrap_or("");
        let method = match words.next() {
            None | Some("gate") => Forward::Dr,
            Some("masq") => Forward::Nat,
            Some("ipip") => Forward::Tunnel,
            Some(m) => {
                self.note(
                    &s.loc,
                    format!("`{key}={val}`: `{m}` is not gate, masq or ipip: not converted"),
                );
                return None;
            }
        };
        let (host, port) = match split_host_port(addr) {
            Some((h, p)) => match port_number(p, svc.protocol) {
                Some(p) => (h, Some(p)),
                None => {
                    self.note(
                        &s.loc,
                        format!("`{key}={val}`: `{p}` is not a port: not converted"),
                    );
                    return None;
                }
            },
            None => (unbracket(addr), None),
        };
        let Some(address) = resolve(host) else {
            self.note(
                &s.loc,
                format!("`{key}={val}`: not an IP address or a known host: not converted"),
            );
            return None;
        };
        if address.is_ipv6() != svc.vip.is_ipv6() {
            let (family, other) = if svc.vip.is_ipv6() {
                ("IPv6", "fallback6")
            } else {
                ("IPv4", "fallback")
            };
            self.note(
                &s.loc,
                format!(
                    "`{key}={val}`: not converted for {}: the service is {family} and its \
                     fallback server must be too (`{other}=`)",
                    lb_api::addr::SockAddr(svc.vip, svc.port)
                ),
            );
            return None;
        }
        let port = match (method, port) {
            (Forward::Nat, Some(p)) if p != svc.port => Some(p),
            (_, Some(p)) if p != svc.port => {
                self.note(
                    &s.loc,
                    format!(
                        "`{key}={val}`: direct routing and tunnels cannot change the port: \
                         the service port {} is used",
                        svc.port
                    ),
                );
                None
            }
            _ => None,
        };
        Some(Fallback {
            address,
            port,
            forward: method,
        })
    }

    /// `real=HOST[->HOST2][:PORT] METHOD [WEIGHT] ["REQUEST", "RECEIVE"]`
    /// (`real6=[IPV6]:PORT ...` alike).
    fn real(
        &mut self,
        s: &Setting,
        svc: &mut ServiceConfig,
        params: &CheckParams,
        sh: &Shared,
        checkport: Option<u16>,
    ) {
        let val = s.value.trim();
        let what = format!("{}={val}", s.key);
        let (target, rest) = match val.split_once(char::is_whitespace) {
            Some((t, r)) => (t, r.trim()),
            None => (val, ""),
        };
        let (hosts, port) = match split_host_port(target) {
            Some((h, p)) => match port_number(p, svc.protocol) {
                Some(p) => (h, Some(p)),
                None => {
                    self.note(
                        &s.loc,
                        format!("`{what}`: `{p}` is not a port: not converted"),
                    );
                    return;
                }
            },
            None => (unbracket(target), None),
        };
        let addrs: Vec<IpAddr> = match hosts.split_once("->") {
            Some((a, b)) => match (resolve_host(a), resolve_host(b)) {
                (Some(a), Some(b))
                    if u32::from(a) <= u32::from(b) && u32::from(b) - u32::from(a) < 65_536 =>
                {
                    (u32::from(a)..=u32::from(b))
                        .map(|a| Ipv4Addr::from(a).into())
                        .collect()
                }
                _ if a.contains(':') || b.contains(':') => {
                    self.note(
                        &s.loc,
                        format!(
                            "`{what}`: not converted: ldirectord has no IPv6 address ranges \
                             (one real6= line per server)"
                        ),
                    );
                    return;
                }
                _ => {
                    self.note(
                        &s.loc,
                        format!("`{what}`: not an address range: not converted"),
                    );
                    return;
                }
            },
            None => match resolve(hosts) {
                Some(a) => vec![a],
                None => {
                    self.note(
                        &s.loc,
                        format!("`{what}`: not an IP address or a known host: not converted"),
                    );
                    return;
                }
            },
        };
        let mut words = rest.splitn(2, char::is_whitespace);
        let forward = match words.next() {
            Some("gate") => Forward::Dr,
            Some("masq") => Forward::Nat,
            Some("ipip") => Forward::Tunnel,
            other => {
                self.note(
                    &s.loc,
                    format!(
                        "`{what}`: the forwarding method must be gate, masq or ipip (found `{}`): \
                         not converted",
                        other.unwrap_or("")
                    ),
                );
                return;
            }
        };
        let mut rest = words.next().unwrap_or("").trim();
        let mut weight = 1;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() {
            match digits.parse::<u32>() {
                Ok(w) if w <= 65535 => weight = w,
                _ => self.note(
                    &s.loc,
                    format!("`{what}`: weight {digits} is out of range: 1 is used"),
                ),
            }
            rest = rest[digits.len()..].trim();
        }
        // ["REQUEST", "RECEIVE"]: two quoted strings, a comma or blank between.
        let mut own = None;
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('"').collect();
            // `"a", "b"` splits into ["", "a", ", ", "b", ""].
            if parts.len() == 5
                && parts[0].trim().is_empty()
                && matches!(parts[2].trim(), "," | "")
                && parts[4].trim().is_empty()
            {
                let req = if parts[1].starts_with('/') {
                    parts[1].to_string()
                } else {
                    format!("/{}", parts[1])
                };
                own = Some((req, parts[3].to_string()));
            } else {
                self.note(
                    &s.loc,
                    format!("`{what}`: `{rest}` not understood: ignored"),
                );
            }
        }
        let real_port = match (forward, port) {
            (Forward::Nat, Some(p)) if p != svc.port => Some(p),
            (_, Some(p)) if p != svc.port && p != 0 => {
                self.note(
                    &s.loc,
                    format!(
                        "`{what}`: direct routing and tunnels cannot change the port: the \
                         service port {} is used",
                        svc.port
                    ),
                );
                None
            }
            _ => None,
        };
        let own_check =
            own.and_then(|(req, rec)| self.check(params, sh, checkport, &req, &rec, false));
        for address in addrs {
            svc.real_servers.push(RealServerConfig {
                address,
                port: real_port,
                weight,
                forward,
                health_check: own_check.clone(),
            });
        }
    }

    /// The health check a virtual section describes (`notes` only for the
    /// service's own, so that per-server checks do not repeat them).
    fn check(
        &mut self,
        p: &CheckParams,
        sh: &Shared,
        checkport: Option<u16>,
        request: &str,
        receive: &str,
        notes: bool,
    ) -> Option<HealthCheck> {
        let loc = p.checktype_loc.clone();
        let note = |this: &mut Conv, text: String| {
            if notes {
                this.note(&loc, text);
            }
        };
        let negotiate_timeout = sh.negotiatetimeout.or(sh.checktimeout).unwrap_or(30);
        let connect_timeout = sh.checktimeout.or(sh.negotiatetimeout).unwrap_or(5);
        let (check, timeout) = match p.checktype {
            "on" => return None,
            "off" => {
                note(
                    self,
                    "`checktype=off`: ldirectord then activates no real server; lbd's are in \
                     service, unchecked"
                        .into(),
                );
                return None;
            }
            "ping" => {
                note(
                    self,
                    "`checktype=ping`: not converted: lbd has no ICMP checks".into(),
                );
                return None;
            }
            "connect" => {
                if p.protocol == Protocol::Udp {
                    note(
                        self,
                        "`checktype=connect` on a UDP service is a ping for ldirectord: not \
                         converted (lbd has no ICMP checks)"
                            .into(),
                    );
                    return None;
                }
                (CheckKind::Tcp, connect_timeout)
            }
            "external" | "external-perl" => {
                if p.checktype == "external-perl" {
                    note(
                        self,
                        "`checktype=external-perl`: lbd runs the script as a command (it needs \
                         its #! line)"
                            .into(),
                    );
                }
                // ldirectord passes VIP, VPORT, RIP and RPORT as arguments;
                // lbd gives them in the environment.
                (
                    CheckKind::Exec {
                        command: "/bin/sh".into(),
                        args: vec![
                            "-c".into(),
                            format!(
                                "{} \"$LBD_VIP\" \"$LBD_VPORT\" \"$LBD_RS_ADDRESS\" \"$LBD_RS_PORT\"",
                                p.checkcommand
                            ),
                        ],
                    },
                    connect_timeout,
                )
            }
            ct => {
                let combined = ct != "negotiate";
                if combined && !ct.chars().all(|c| c.is_ascii_digit()) {
                    note(
                        self,
                        format!("`checktype={ct}`: not a check type: not converted"),
                    );
                    return None;
                }
                if combined {
                    note(
                        self,
                        format!(
                            "`checktype={ct}`: lbd runs the negotiate check every time (no \
                             connect checks in between)"
                        ),
                    );
                }
                match p.service {
                    "none" => return None,
                    "http" => {
                        if p.head.is_some() {
                            note(self, "`httpmethod=HEAD`: lbd's HTTP check sends GET".into());
                        }
                        let literal = !receive.contains([
                            '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '^', '$', '|', '\\',
                        ]);
                        let expect = if receive.is_empty() {
                            None
                        } else if literal {
                            Some(receive.to_string())
                        } else {
                            note(
                                self,
                                format!(
                                    "receive=\"{receive}\" is a regular expression: lbd looks \
                                     for this text as written"
                                ),
                            );
                            Some(receive.to_string())
                        };
                        (
                            CheckKind::Http {
                                path: request.to_string(),
                                status: 200,
                                expect,
                                host: p.virtualhost.map(String::from),
                            },
                            negotiate_timeout,
                        )
                    }
                    svc_name if p.protocol == Protocol::Udp => {
                        note(
                            self,
                            format!(
                                "negotiate check of service {svc_name} over UDP: not converted \
                                 (lbd does not speak {svc_name})"
                            ),
                        );
                        return None;
                    }
                    svc_name => {
                        note(
                            self,
                            format!(
                                "negotiate check of service {svc_name}: converted to a TCP \
                                 connect check (lbd does not speak {svc_name}{})",
                                if svc_name == "https" { ", or TLS" } else { "" }
                            ),
                        );
                        (CheckKind::Tcp, negotiate_timeout)
                    }
                }
            }
        };
        let fall = sh.failurecount.unwrap_or(1).min(100);
        let interval_s = sh.checkinterval.unwrap_or(10);
        Some(HealthCheck {
            check,
            interval_ms: interval_s.saturating_mul(1000).clamp(100, 3_600_000),
            timeout_ms: timeout.saturating_mul(1000).clamp(10, 600_000),
            // ldirectord puts a server back on its first good check.
            rise: 1,
            fall,
            port: checkport,
            on_failure: if sh.quiescent == Some(true) {
                OnFailure::Quiesce
            } else {
                OnFailure::Remove
            },
            expire_connections: false,
        })
    }
}

/// What a virtual section says about its checks.
struct CheckParams<'a> {
    checktype: &'a str,
    checktype_loc: &'a Loc,
    service: &'a str,
    protocol: Protocol,
    checkcommand: &'a str,
    head: Option<&'a Loc>,
    virtualhost: Option<&'a str>,
}

/// `HOST:PORT` or `[IPV6]:PORT` split at the port's colon; `None` when
/// there is no port.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return after.strip_prefix(':').map(|p| (host, p));
    }
    if s.matches(':').count() > 1 {
        // A bare IPv6 address: its colons are its own.
        return None;
    }
    s.rsplit_once(':')
}

/// `[IPV6]` without its brackets (an address given without a port).
fn unbracket(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s)
}

/// An IPv6 address, or an IPv4 address or host name (its IPv4 address).
fn resolve(host: &str) -> Option<IpAddr> {
    if let Ok(v6) = host.parse::<std::net::Ipv6Addr>() {
        return Some(v6.into());
    }
    resolve_host(host).map(IpAddr::V4)
}
