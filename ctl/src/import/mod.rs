//! `lbctl import ipvsadm|keepalived|ldirectord FILE`: an LVS setup turned
//! into lbd's RON configuration.
//!
//! Each importer ([`ipvsadm_save`], [`keepalived`], [`ldirectord`]) parses
//! its format for real and converts what it found into an [`Imported`]:
//! services, VRRP, sync, timeouts, and a [`Note`] for everything that lbd
//! cannot do or does differently, with its file and line. [`render`] turns
//! that into a configuration: on top of a base configuration (`--base
//! FILE`, or the running lbd's for `--apply`), whose ports and other
//! sections are kept, or, without one, with a placeholder ports section
//! that must be filled in (the LVS files do not name DPDK devices). The
//! notes head the output as comments, and go to standard error.

pub mod glob;
pub mod ipvsadm_save;
pub mod keepalived;
pub mod ldirectord;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use lb_api::config::{
    Config, Ipv4Cidr, Ipv6Cidr, KernelPathConfig, PortConfig, ServiceConfig, SyncConfig, VrrpConfig,
};
use lb_api::protocol::TimeoutEdit;

/// A place in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    /// The file as it is named to the user.
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Something that was not converted, or converted differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub loc: Option<Loc>,
    pub text: String,
}

impl Note {
    pub fn at(loc: &Loc, text: impl Into<String>) -> Note {
        Note {
            loc: Some(loc.clone()),
            text: text.into(),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(l) => write!(f, "{l}: {}", self.text),
            None => write!(f, "{}", self.text),
        }
    }
}

/// Orders notes as the input is read: files in the order they first
/// appear, lines ascending within a file (importers note in several
/// passes).
pub fn sort_notes(notes: &mut [Note]) {
    let mut files: Vec<String> = Vec::new();
    for n in notes.iter() {
        if let Some(l) = &n.loc {
            if !files.contains(&l.file) {
                files.push(l.file.clone());
            }
        }
    }
    notes.sort_by_key(|n| match &n.loc {
        Some(l) => (files.iter().position(|f| *f == l.file).unwrap_or(0), l.line),
        None => (usize::MAX, 0),
    });
}

/// Why a file could not be read or parsed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file (or an included one) could not be read.
    Read { path: String, error: String },
    /// keepalived: a `{` whose block is never closed (at the `{`'s line).
    UnclosedBlock,
    /// keepalived: a `}` with no block open.
    UnexpectedClose,
    /// keepalived: a `{` with no keyword before it.
    OpenWithoutKeyword,
    /// keepalived: a `"` not closed on its line; ipvsadm: a quote not
    /// closed on its line.
    UnterminatedQuote,
    /// keepalived: `include` with no file name.
    IncludeWithoutFile { keyword: String },
    /// keepalived: includer/includea/...: the pattern matches no file.
    NoIncludeMatch { keyword: String, pattern: String },
    /// keepalived: a file includes itself, directly or not.
    IncludeCycle { path: String },
    /// keepalived: includes nest deeper than `max` files.
    IncludeDepth { max: usize },
    /// keepalived: `$A` refers to `$B` which refers to `$A`...
    ParameterLoop,
    /// ldirectord: an indented line outside a virtual section.
    IndentOutsideSection,
    /// ldirectord: a section's line indented by fewer than 4 spaces.
    ShallowIndent,
    /// ldirectord: a line that is not `key=value`.
    ExpectedKeyValue { found: String },
    /// ipvsadm-save: a line that is not an ipvsadm rule.
    NotARule { why: String, line: String },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Read { path, error } => write!(f, "cannot read {path}: {error}"),
            ErrorKind::UnclosedBlock => write!(f, "this block is never closed (a `}}` is missing)"),
            ErrorKind::UnexpectedClose => write!(f, "`}}` without a block to close"),
            ErrorKind::OpenWithoutKeyword => write!(f, "`{{` without a keyword before it"),
            ErrorKind::UnterminatedQuote => {
                write!(f, "a quoted string is not closed on its line (missing \")")
            }
            ErrorKind::IncludeWithoutFile { keyword } => {
                write!(f, "`{keyword}` needs a file name")
            }
            ErrorKind::NoIncludeMatch { keyword, pattern } => {
                write!(f, "{keyword} {pattern}: no file matches")
            }
            ErrorKind::IncludeCycle { path } => {
                write!(f, "{path} includes itself (an include cycle)")
            }
            ErrorKind::IncludeDepth { max } => write!(f, "includes nest deeper than {max} files"),
            ErrorKind::ParameterLoop => write!(
                f,
                "parameter substitution does not end (does a parameter contain itself?)"
            ),
            ErrorKind::IndentOutsideSection => write!(
                f,
                "an indented line outside a virtual section (a blank line or an unindented \
                 line ends the section)"
            ),
            ErrorKind::ShallowIndent => write!(
                f,
                "indented by fewer than 4 spaces: a virtual section's lines are indented by at \
                 least 4 spaces or a tab"
            ),
            ErrorKind::ExpectedKeyValue { found } => {
                write!(f, "expected KEY=VALUE, found `{found}`")
            }
            ErrorKind::NotARule { why, line } => write!(f, "not an ipvsadm rule: {why}: `{line}`"),
        }
    }
}

/// A file that could not be read or parsed at all, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub loc: Option<Loc>,
    pub kind: ErrorKind,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(l) => write!(f, "{l}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for ImportError {}

impl ImportError {
    pub fn at(loc: &Loc, kind: ErrorKind) -> ImportError {
        ImportError {
            loc: Some(loc.clone()),
            kind,
        }
    }
}

/// Addresses in 127.0.0.0/8 stand for the director itself (ldirectord's
/// `fallback=127.0.0.1:80`): lbd serves those as a local real server at
/// the address of its port, which [`render`] fills in.
pub fn is_director_itself(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// A service and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedService {
    pub config: ServiceConfig,
    pub origin: Loc,
    /// How the input names it, e.g. `virtual_server 172.16.0.30 80`.
    pub what: String,
}

/// A VRRP instance (lbd's `vrrp` for IPv4, `vrrp6` for IPv6); [`render`]
/// puts lbd's port in `config.port`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedVrrp {
    pub config: VrrpConfig,
    /// The interface it ran on (keepalived's `interface`).
    pub interface: Option<String>,
    /// keepalived's `unicast_src_ip`: the director's own address.
    pub own_address: Option<IpAddr>,
    /// The prefix of the virtual addresses, when given (`172.16.0.30/24`).
    pub prefix: Option<u8>,
    /// The VIPs it holds (services' VIPs among them), of the instance's
    /// family.
    pub virtual_addresses: Vec<IpAddr>,
    pub origin: Loc,
}

/// Connection sync (keepalived's `lvs_sync_daemon`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedSync {
    pub interface: Option<String>,
    /// The peer director, when the input names it (a single unicast peer).
    pub peer: Option<Ipv4Addr>,
    pub port: Option<u16>,
    pub origin: Loc,
}

/// What an importer found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Imported {
    pub services: Vec<ImportedService>,
    /// What carries each service group's mark (keepalived's `virtual_server
    /// fwmark`): assumed, since the input does not say (see the notes).
    pub fwmarks: Vec<lb_api::config::FwmarkConfig>,
    /// The IPv4 VRRP instance (lbd's `vrrp`).
    pub vrrp: Option<ImportedVrrp>,
    /// The IPv6 VRRP instance (lbd's `vrrp6`, VRRPv3 over IPv6).
    pub vrrp6: Option<ImportedVrrp>,
    pub sync: Option<ImportedSync>,
    pub timeouts: Option<TimeoutEdit>,
    /// ldirectord's `autoreload`.
    pub autoreload: Option<bool>,
    pub notes: Vec<Note>,
}

impl Imported {
    /// The services' VIPs: ordinary services' own, and the addresses that
    /// carry the groups' marks.
    pub fn vips(&self) -> Vec<IpAddr> {
        self.services
            .iter()
            .filter(|s| !s.config.is_group())
            .map(|s| s.config.vip)
            .chain(
                self.fwmarks
                    .iter()
                    .flat_map(|f| f.matches.iter().map(|m| m.vip)),
            )
            .collect()
    }
}

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// ipvsadm-save's rules (`ipvsadm -S`, /etc/sysconfig/ipvsadm).
    Ipvsadm,
    /// keepalived.conf (virtual_server, vrrp_instance, lvs_sync_daemon).
    Keepalived,
    /// ldirectord.cf (virtual=, real=, checktype=, fallback=, quiescent=).
    Ldirectord,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Ipvsadm => "ipvsadm",
            Format::Keepalived => "keepalived",
            Format::Ldirectord => "ldirectord",
        }
    }
}

/// Reads and converts `path` (shown to the user as `shown`).
pub fn import(
    format: Format,
    path: &std::path::Path,
    shown: &str,
    text: &str,
    config_id: Option<&str>,
) -> Result<Imported, ImportError> {
    match format {
        Format::Ipvsadm => ipvsadm_save::import(text, shown),
        Format::Keepalived => keepalived::import(path, shown, text, config_id),
        Format::Ldirectord => ldirectord::import(text, shown),
    }
}

/// An import made into a configuration.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub config: Config,
    /// The RON text, notes at the top.
    pub text: String,
    /// Every note, the importer's and the rendering's.
    pub notes: Vec<Note>,
    /// The ports section is a placeholder (no base was given).
    pub placeholder: bool,
}

/// A configuration with every default and the given ports, whatever
/// fields lbd's configuration grows (serde fills the defaults in).
fn default_config(ports: Vec<PortConfig>) -> Config {
    let mut cfg: Config = serde_json::from_str(r#"{"ports": []}"#)
        .expect("a configuration with only ports deserialises");
    cfg.ports = ports;
    cfg
}

/// A name usable for a port and its kernel interface (at most 15
/// characters of letters, digits, `-`, `_`, `.`).
fn port_name(interface: Option<&str>) -> String {
    let n: String = interface
        .unwrap_or("lan0")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(11)
        .collect();
    if n.is_empty() {
        "lan0".into()
    } else {
        n
    }
}

/// The placeholder port: the interface's name, no device (validation
/// refuses it until one is given), and the network address of the VIPs'
/// subnet (refused as well, until the director's own address replaces it).
fn placeholder_port(imp: &Imported) -> PortConfig {
    let vrrp = imp.vrrp.as_ref();
    let interface = vrrp
        .or(imp.vrrp6.as_ref())
        .and_then(|v| v.interface.clone())
        .or_else(|| imp.sync.as_ref().and_then(|s| s.interface.clone()));
    let name = port_name(interface.as_deref());
    let prefix = vrrp.and_then(|v| v.prefix).unwrap_or(24);
    let address = match vrrp.and_then(|v| v.own_address) {
        Some(IpAddr::V4(own)) => Ipv4Cidr { addr: own, prefix },
        _ => {
            let any = imp
                .vips()
                .into_iter()
                .chain(vrrp.into_iter().flat_map(|v| v.virtual_addresses.clone()))
                .find_map(|a| match a {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
                .unwrap_or(Ipv4Addr::new(198, 18, 0, 0));
            let c = Ipv4Cidr { addr: any, prefix };
            Ipv4Cidr {
                addr: Ipv4Addr::from(u32::from(any) & c.netmask()),
                prefix,
            }
        }
    };
    PortConfig {
        name: name.clone(),
        device: String::new(),
        address,
        address6: placeholder_address6(imp),
        mac: None,
        mtu: 1500,
        kernel: Some(KernelPathConfig {
            iface: format!("lbd-{name}"),
            rate_pps: 20_000,
        }),
        vlans: Vec::new(),
    }
}

/// The placeholder port's IPv6 address when the input has IPv6 VIPs or an
/// IPv6 VRRP instance: the director's own (`unicast_src_ip`), else the
/// network address of the first IPv6 VIP's subnet (a /64 unless the input
/// gives the prefix), which validation refuses until it is replaced.
fn placeholder_address6(imp: &Imported) -> Option<Ipv6Cidr> {
    let v6 = |a: IpAddr| match a {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    };
    let vrrp6 = imp.vrrp6.as_ref();
    let prefix = vrrp6.and_then(|v| v.prefix).unwrap_or(64);
    if let Some(own) = vrrp6.and_then(|v| v.own_address).and_then(v6) {
        return Some(Ipv6Cidr { addr: own, prefix });
    }
    let any = imp
        .vips()
        .into_iter()
        .chain(vrrp6.into_iter().flat_map(|v| v.virtual_addresses.clone()))
        .find_map(v6)?;
    let mask = match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    };
    Some(Ipv6Cidr {
        addr: (u128::from(any) & mask).into(),
        prefix,
    })
}

/// The base's port the imported services and VRRP belong on: the one whose
/// subnet holds a VIP, else a real server, else the first.
fn choose_port<'a>(ports: &'a [PortConfig], imp: &Imported) -> Option<&'a PortConfig> {
    let vrrp = imp.vrrp.iter().chain(imp.vrrp6.iter());
    let vips: Vec<IpAddr> = imp
        .vips()
        .into_iter()
        .chain(vrrp.flat_map(|v| v.virtual_addresses.iter().copied()))
        .collect();
    ports
        .iter()
        .find(|p| vips.iter().any(|v| p.on_subnet(*v)))
        .or_else(|| {
            ports.iter().find(|p| {
                imp.services
                    .iter()
                    .any(|s| s.config.real_servers.iter().any(|r| p.on_subnet(r.address)))
            })
        })
        .or_else(|| ports.first())
}

/// The port the IPv6 VRRP instance speaks on: the one whose `address6`
/// subnet holds its first address (the services' port may have only an
/// IPv4 address), else `fallback` (the services' port).
fn instance_port(ports: &[PortConfig], v: &ImportedVrrp, fallback: &str) -> String {
    v.virtual_addresses
        .iter()
        .find_map(|a| ports.iter().find(|p| p.on_subnet(*a)))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| fallback.to_string())
}

/// Puts the director's own address where the input said 127.0.0.1; drops
/// them (noted) when there is no base to say what that address is.
fn resolve_director_itself(
    svc: &mut ImportedService,
    port: Option<&PortConfig>,
    notes: &mut Vec<Note>,
) {
    // The director's address of the family the input wrote (127.0.0.1 or
    // ::1).
    let own = |v6: bool| {
        let p = port.filter(|p| p.kernel.is_some())?;
        if v6 {
            p.address6.map(|c| IpAddr::V6(c.addr))
        } else {
            Some(IpAddr::V4(p.address.addr))
        }
    };
    let why = |v6: bool| match port {
        None => "give --base or --apply, so that lbctl knows the director's address".to_string(),
        Some(p) if p.kernel.is_none() => format!(
            "port {} has no kernel interface, which lbd needs to serve a local real server",
            p.name
        ),
        Some(p) if v6 => format!("port {} has no IPv6 address (`address6`)", p.name),
        Some(p) => format!("port {} cannot serve it", p.name),
    };
    let what = svc.what.clone();
    let origin = svc.origin.clone();
    if let Some(fb) = svc.config.fallback {
        if is_director_itself(fb.address) {
            let v6 = fb.address.is_ipv6();
            let why = why(v6);
            match own(v6) {
                Some(a) => {
                    svc.config.fallback = Some(lb_api::config::Fallback { address: a, ..fb })
                }
                None => {
                    svc.config.fallback = None;
                    notes.push(Note::at(
                        &origin,
                        format!(
                            "{what}: fallback {}: the director itself, served locally by lbd at \
                             its port's address; left out: {why}",
                            fb.address
                        ),
                    ));
                }
            }
        }
    }
    let mut kept = Vec::new();
    for mut r in std::mem::take(&mut svc.config.real_servers) {
        if is_director_itself(r.address) {
            let v6 = r.address.is_ipv6();
            let why = why(v6);
            match own(v6) {
                Some(a) => r.address = a,
                None => {
                    notes.push(Note::at(
                        &origin,
                        format!(
                            "{what}: real server {}: the director itself; left out: {why}",
                            r.address
                        ),
                    ));
                    continue;
                }
            }
        }
        kept.push(r);
    }
    svc.config.real_servers = kept;
}

/// IPv6 services and real servers are converted as written; lbd forwards
/// IPv6 to DR, tunnel and NAT real servers and needs a port's `address6`:
/// say so, for each service that has any.
fn ipv6_notes(
    services: &[ImportedService],
    fwmarks: &[lb_api::config::FwmarkConfig],
    notes: &mut Vec<Note>,
) {
    for s in services {
        let c = &s.config;
        let marked = c.fwmark.is_some_and(|m| {
            fwmarks
                .iter()
                .any(|f| f.mark == m && f.matches.iter().any(|g| g.vip.is_ipv6()))
        });
        let v6 = (!c.is_group() && c.vip.is_ipv6())
            || marked
            || c.real_servers.iter().any(|r| r.address.is_ipv6())
            || c.fallback.is_some_and(|f| f.address.is_ipv6());
        if v6 {
            notes.push(Note::at(
                &s.origin,
                format!(
                    "{}: converted with its IPv6 addresses; lbd forwards IPv6 to DR, tunnel and \
                     NAT real servers and needs an IPv6 address on a port on their subnet \
                     (`ports[].address6`)",
                    s.what
                ),
            ));
        }
    }
}

fn pretty() -> ron::ser::PrettyConfig {
    ron::ser::PrettyConfig::new()
        .indentor("    ")
        .new_line("\n")
        .struct_names(false)
        .separate_tuple_members(false)
        .enumerate_arrays(false)
}

/// A value as pretty RON, its continuation lines indented by `indent`.
fn ron_value<T: serde::Serialize>(v: &T, indent: &str) -> String {
    let s = ron::Options::default()
        .to_string_pretty(v, pretty())
        .expect("configuration values serialise to RON");
    s.replace('\n', &format!("\n{indent}"))
}

/// Comment lines, each prefixed with `indent// `.
fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            out.push_str(&format!("{indent}//\n"));
        } else {
            out.push_str(&format!("{indent}// {line}\n"));
        }
    }
}

/// Turns an import into a configuration: on top of `base` (whose sections
/// are kept; its services replaced by the imported ones, and its VRRP and
/// sync when the input has them), or
/// with a placeholder port when there is no base. `origin` names the input
/// in the header (e.g. `keepalived /etc/keepalived/keepalived.conf`).
pub fn render(imp: &Imported, base: Option<&Config>, origin: &str) -> Rendered {
    let mut notes = imp.notes.clone();
    let placeholder = base.is_none();
    let mut cfg = match base {
        Some(b) => b.clone(),
        None => default_config(vec![placeholder_port(imp)]),
    };
    let port = if placeholder {
        None
    } else {
        choose_port(&cfg.ports, imp).cloned()
    };
    let port_label = port
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| cfg.ports[0].name.clone());

    let mut services = imp.services.clone();
    for s in &mut services {
        resolve_director_itself(s, port.as_ref(), &mut notes);
    }
    ipv6_notes(&services, &imp.fwmarks, &mut notes);
    cfg.services = services.iter().map(|s| s.config.clone()).collect();
    // The imported marks replace the base's of the same numbers.
    cfg.fwmarks
        .retain(|f| !imp.fwmarks.iter().any(|i| i.mark == f.mark));
    cfg.fwmarks.extend(imp.fwmarks.iter().cloned());

    // The base's VRRP and sync stay unless the input has its own.
    if let Some(v) = &imp.vrrp {
        cfg.vrrp = Some(VrrpConfig {
            port: port_label.clone(),
            ..v.config.clone()
        });
    }
    if let Some(v) = &imp.vrrp6 {
        cfg.vrrp6 = Some(VrrpConfig {
            port: instance_port(&cfg.ports, v, &port_label),
            ..v.config.clone()
        });
    }
    let mut sync_placeholder = None;
    if let Some(s) = &imp.sync {
        match s.peer {
            Some(peer) => {
                cfg.sync = Some(SyncConfig {
                    peer,
                    port: s.port.unwrap_or(8848),
                    max_kbps: 10_000,
                    batch_ms: 50,
                })
            }
            None => {
                notes.push(Note::at(
                    &s.origin,
                    "lvs_sync_daemon: lbd's sync sends to the peer director's address, which the \
                     file does not give (IPVS's sync daemon multicasts); set sync.peer (a \
                     commented sync section is in the output)",
                ));
                sync_placeholder = Some(s.port.unwrap_or(8848));
            }
        }
    }
    if let Some(t) = imp.timeouts {
        if let Some(v) = t.tcp {
            cfg.timeouts.tcp_established = v;
        }
        if let Some(v) = t.tcpfin {
            cfg.timeouts.tcp_fin_wait = v;
        }
        if let Some(v) = t.udp {
            cfg.timeouts.udp = v;
        }
    }
    if let Some(a) = imp.autoreload {
        cfg.control.autoreload = a;
    }

    sort_notes(&mut notes);
    // A setting inherited by several servers is noted once.
    let mut seen = std::collections::HashSet::new();
    notes.retain(|n| seen.insert(n.to_string()));
    let mut text = String::new();
    comment(
        &mut text,
        "",
        &format!("lbd configuration made by `lbctl import {origin}`."),
    );
    if placeholder {
        comment(
            &mut text,
            "",
            "The ports section is a PLACEHOLDER: fill it in, then check the file with\n\
             `lbctl validate FILE`.",
        );
    } else {
        comment(
            &mut text,
            "",
            "Ports and the other sections come from the base configuration.",
        );
    }
    if notes.is_empty() {
        comment(&mut text, "", "\nEverything in the input was converted.");
    } else {
        comment(
            &mut text,
            "",
            "\nNOT CONVERTED, or converted differently (also printed on standard error):",
        );
        for n in &notes {
            comment(&mut text, "", &format!("  {n}"));
        }
    }
    text.push('\n');
    if placeholder {
        text.push_str(&placeholder_body(&cfg, &services, sync_placeholder, imp));
    } else {
        text.push_str(&lb_api::config::to_ron_string(&cfg));
    }
    Rendered {
        config: cfg,
        text,
        notes,
        placeholder,
    }
}

/// The body without a base: only the sections the import filled in, the
/// placeholder port first with what to put there.
fn placeholder_body(
    cfg: &Config,
    services: &[ImportedService],
    sync_placeholder: Option<u16>,
    imp: &Imported,
) -> String {
    let mut out = String::from("(\n");
    let iface = imp
        .vrrp
        .as_ref()
        .or(imp.vrrp6.as_ref())
        .and_then(|v| v.interface.clone())
        .map(|i| format!("\n(The input's interface was `{i}`.)"))
        .unwrap_or_default();
    comment(
        &mut out,
        "    ",
        &format!(
            "PLACEHOLDER, to fill in: the input does not say which DPDK device this\n\
             director uses, nor its own address.{iface}\n\
             Give `device` (a PCI address such as \"0000:3b:00.0\", or\n\
             \"net_af_packet0,iface=eth0\") and `address`, the director's address with\n\
             its prefix (the VIPs' network address stands in), and `address6`\n\
             likewise when there is one. The kernel interface\n\
             carries health checks, VRRP and sync. Or run `lbctl import ... --base\n\
             FILE` with an lbd configuration whose ports are kept, or `--apply` (the\n\
             running lbd's)."
        ),
    );
    out.push_str(&format!("    ports: {},\n", ron_value(&cfg.ports, "    ")));
    if imp.timeouts.is_some() {
        out.push_str(&format!(
            "    timeouts: {},\n",
            ron_value(&cfg.timeouts, "    ")
        ));
    }
    if imp.autoreload.is_some() {
        out.push_str(&format!(
            "    control: {},\n",
            ron_value(&cfg.control, "    ")
        ));
    }
    if let Some(v) = &cfg.vrrp {
        if let Some(iv) = &imp.vrrp {
            comment(&mut out, "    ", &format!("From {}.", iv.origin));
        }
        out.push_str(&format!("    vrrp: Some({}),\n", ron_value(v, "    ")));
    }
    if let Some(v) = &cfg.vrrp6 {
        if let Some(iv) = &imp.vrrp6 {
            comment(&mut out, "    ", &format!("From {}.", iv.origin));
        }
        out.push_str(&format!("    vrrp6: Some({}),\n", ron_value(v, "    ")));
    }
    if let Some(s) = &cfg.sync {
        out.push_str(&format!("    sync: Some({}),\n", ron_value(s, "    ")));
    } else if let Some(port) = sync_placeholder.filter(|_| cfg.sync.is_none()) {
        comment(
            &mut out,
            "    ",
            &format!(
                "Connection sync: give the peer director's address and uncomment.\n\
                 sync: Some((peer: \"PEER-ADDRESS\", port: {port})),"
            ),
        );
    }
    out.push_str("    services: [\n");
    for s in services {
        comment(
            &mut out,
            "        ",
            &format!("From {}: {}", s.origin, s.what),
        );
        out.push_str(&format!("        {},\n", ron_value(&s.config, "        ")));
    }
    out.push_str("    ],\n");
    if !cfg.fwmarks.is_empty() {
        comment(
            &mut out,
            "    ",
            "Which VIP:ports carry each service group's mark: ASSUMED (see the notes\n\
             above); check them against the iptables rules that set the marks.",
        );
        out.push_str(&format!(
            "    fwmarks: {},\n",
            ron_value(&cfg.fwmarks, "    ")
        ));
    }
    out.push_str(")\n");
    out
}

#[cfg(test)]
mod tests;
