//! `lbctl import keepalived FILE`: keepalived.conf read with keepalived's
//! grammar, and its LVS and VRRP parts converted.
//!
//! Reading ([`parse`]) follows keepalived.conf(5): keywords in blocks
//! delimited by `{` and `}` (on the keyword's line or the next), comments
//! from `#` or `!` to the end of the line, double-quoted strings, `include`
//! (and includer/includem/includew/includeb/includea) with wildcards and
//! braces relative to the including file, `$NAME=VALUE` parameters
//! (multi-line with `\`) substituted as `$NAME` or `${NAME}`, and `@ID` /
//! `@^ID` conditional lines for a config id (`--config-id`). Syntax errors
//! are [`ImportError`]s with file and line.
//!
//! Converting maps virtual servers (and virtual_server_group), their real
//! servers and checkers, the sorry server, one IPv4 vrrp_instance (lbd's
//! `vrrp`) and one IPv6 (`vrrp6`), lvs_sync_daemon and lvs_timeouts onto
//! lbd's configuration. Every keyword that is not
//! converted, or is converted differently, becomes a [`Note`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use lb_api::addr::SockAddr;
use lb_api::config::{
    CheckKind, Fallback, Forward, FwmarkConfig, GroupMatch, HealthCheck, OnFailure, PortRange,
    Protocol, RealServerConfig, Scheduler, ServiceConfig, VrrpConfig,
};
use lb_api::protocol::TimeoutEdit;

use super::{
    glob, ErrorKind, ImportError, Imported, ImportedService, ImportedSync, ImportedVrrp, Loc, Note,
};

/// One keyword with its arguments and, for blocks, its children.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub key: String,
    pub args: Vec<String>,
    pub block: Option<Vec<Node>>,
    pub loc: Loc,
}

impl Node {
    fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }

    fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }

    /// The keyword and its arguments, as written (for notes).
    fn text(&self) -> String {
        let mut s = self.key.clone();
        for a in &self.args {
            s.push(' ');
            if a.is_empty() || a.contains(char::is_whitespace) {
                s.push_str(&format!("\"{a}\""));
            } else {
                s.push_str(a);
            }
        }
        if s.chars().count() > 70 {
            s = s.chars().take(67).collect::<String>() + "...";
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Eol,
}

const MAX_INCLUDE_DEPTH: usize = 16;
const MAX_SUBSTITUTIONS: usize = 64;

struct Reader<'a> {
    config_id: Option<&'a str>,
    params: HashMap<String, String>,
    notes: Vec<Note>,
    /// Files being read, for include cycles.
    stack: Vec<PathBuf>,
    toks: Vec<(Tok, Loc)>,
    conditionals_noted: bool,
}

/// `$NAME=VALUE` (no blank before `=`, only blanks before `$`).
fn definition(line: &str) -> Option<(String, String)> {
    let t = line.trim_start().strip_prefix('$')?;
    let eq = t.find('=')?;
    let name = &t[..eq];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((name.to_string(), t[eq + 1..].to_string()))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn tokenize(piece: &str, loc: &Loc) -> Result<Vec<Tok>, ImportError> {
    let mut out = Vec::new();
    let mut chars = piece.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '#' | '!' => break,
            '{' => {
                chars.next();
                out.push(Tok::Open);
            }
            '}' => {
                chars.next();
                out.push(Tok::Close);
            }
            '"' => {
                chars.next();
                let mut w = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(x) => w.push(x),
                        None => return Err(ImportError::at(loc, ErrorKind::UnterminatedQuote)),
                    }
                }
                out.push(Tok::Word(w));
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            _ => {
                let mut w = String::new();
                while let Some(&x) = chars.peek() {
                    if x.is_whitespace() || matches!(x, '{' | '}' | '"' | '#' | '!') {
                        break;
                    }
                    w.push(x);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

const INCLUDES: [&str; 6] = [
    "include", "includer", "includem", "includew", "includeb", "includea",
];

impl<'a> Reader<'a> {
    /// Applies an `@ID` / `@^ID` prefix: the rest of the line, or `None`
    /// when the line is not for this config id.
    fn conditional(&mut self, line: &str, loc: &Loc) -> Option<String> {
        let t = line.trim_start();
        let Some(rest) = t.strip_prefix('@') else {
            return Some(line.to_string());
        };
        let (negated, rest) = match rest.strip_prefix('^') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let id = &rest[..end];
        if self.config_id.is_none() && !self.conditionals_noted {
            self.conditionals_noted = true;
            self.notes.push(Note::at(
                loc,
                "conditional lines (`@ID ...`) were read without a config id: `@ID` lines left \
                 out, `@^ID` lines kept; give --config-id (keepalived's -i) to choose",
            ));
        }
        let matched = self.config_id == Some(id);
        (matched != negated).then(|| rest[end..].to_string())
    }

    /// Replaces `$NAME` (followed by a blank or the end) and `${NAME}` with
    /// their values, again and again; undefined ones stay as written.
    fn substitute(&self, line: &str, loc: &Loc) -> Result<String, ImportError> {
        let mut cur = line.to_string();
        for _ in 0..MAX_SUBSTITUTIONS {
            let mut out = String::new();
            let mut changed = false;
            let chars: Vec<char> = cur.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                if chars[i] != '$' {
                    out.push(chars[i]);
                    i += 1;
                    continue;
                }
                if chars.get(i + 1) == Some(&'{') {
                    if let Some(close) = chars[i + 2..].iter().position(|c| *c == '}') {
                        let name: String = chars[i + 2..i + 2 + close].iter().collect();
                        if let Some(v) = self.params.get(&name) {
                            out.push_str(v);
                            i += close + 3;
                            changed = true;
                            continue;
                        }
                    }
                } else {
                    let len = chars[i + 1..]
                        .iter()
                        .take_while(|c| is_name_char(**c))
                        .count();
                    let after = chars.get(i + 1 + len);
                    if len > 0 && after.is_none_or(|c| c.is_whitespace()) {
                        let name: String = chars[i + 1..i + 1 + len].iter().collect();
                        if let Some(v) = self.params.get(&name) {
                            out.push_str(v);
                            i += 1 + len;
                            changed = true;
                            continue;
                        }
                    }
                }
                out.push('$');
                i += 1;
            }
            if !changed {
                return Ok(out);
            }
            cur = out;
        }
        Err(ImportError::at(loc, ErrorKind::ParameterLoop))
    }

    fn read(&mut self, path: &Path, shown: &str, text: &str) -> Result<(), ImportError> {
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let loc = Loc {
                file: shown.to_string(),
                line: i + 1,
            };
            let raw = lines[i];
            i += 1;
            let Some(line) = self.conditional(raw, &loc) else {
                continue;
            };
            if let Some((name, mut value)) = definition(&line) {
                while value.trim_end().ends_with('\\') && i < lines.len() {
                    let t = value.trim_end();
                    value = format!("{}\n{}", &t[..t.len() - 1], lines[i]);
                    i += 1;
                }
                self.params.insert(name, value.trim().to_string());
                continue;
            }
            let line = self.substitute(&line, &loc)?;
            for piece in line.split('\n') {
                let Some(piece) = self.conditional(piece, &loc) else {
                    continue;
                };
                let toks = tokenize(&piece, &loc)?;
                if let Some(Tok::Word(w)) = toks.first() {
                    if INCLUDES.contains(&w.as_str()) {
                        self.include(&dir, w, &toks[1..], &loc)?;
                        continue;
                    }
                }
                if toks.is_empty() {
                    continue;
                }
                for t in toks {
                    self.toks.push((t, loc.clone()));
                }
                self.toks.push((Tok::Eol, loc.clone()));
            }
        }
        Ok(())
    }

    fn include(
        &mut self,
        dir: &Path,
        keyword: &str,
        rest: &[Tok],
        loc: &Loc,
    ) -> Result<(), ImportError> {
        let Some(Tok::Word(pattern)) = rest.first() else {
            return Err(ImportError::at(
                loc,
                ErrorKind::IncludeWithoutFile {
                    keyword: keyword.to_string(),
                },
            ));
        };
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(ImportError::at(
                loc,
                ErrorKind::IncludeDepth {
                    max: MAX_INCLUDE_DEPTH,
                },
            ));
        }
        let files = glob::glob(dir, pattern);
        if files.is_empty() {
            // The plain `include` tolerates a missing file, as keepalived's does.
            if keyword == "include" {
                self.notes.push(Note::at(
                    loc,
                    format!("include {pattern}: no file matches; nothing read"),
                ));
                return Ok(());
            }
            return Err(ImportError::at(
                loc,
                ErrorKind::NoIncludeMatch {
                    keyword: keyword.to_string(),
                    pattern: pattern.clone(),
                },
            ));
        }
        for f in files {
            let canon = f.canonicalize().unwrap_or_else(|_| f.clone());
            if self.stack.contains(&canon) {
                return Err(ImportError::at(
                    loc,
                    ErrorKind::IncludeCycle {
                        path: f.display().to_string(),
                    },
                ));
            }
            let text = std::fs::read(&f).map_err(|e| {
                ImportError::at(
                    loc,
                    ErrorKind::Read {
                        path: f.display().to_string(),
                        error: e.to_string(),
                    },
                )
            })?;
            let text = String::from_utf8_lossy(&text).into_owned();
            self.stack.push(canon);
            let shown = f.display().to_string();
            self.read(&f, &shown, &text)?;
            self.stack.pop();
        }
        Ok(())
    }
}

/// Builds the tree from the tokens; `pos` advances past what was used.
fn tree(
    toks: &[(Tok, Loc)],
    pos: &mut usize,
    opened: Option<&Loc>,
) -> Result<Vec<Node>, ImportError> {
    let mut nodes = Vec::new();
    loop {
        let Some((tok, loc)) = toks.get(*pos) else {
            return match opened {
                Some(o) => Err(ImportError::at(o, ErrorKind::UnclosedBlock)),
                None => Ok(nodes),
            };
        };
        match tok {
            Tok::Eol => *pos += 1,
            Tok::Close => {
                if opened.is_none() {
                    return Err(ImportError::at(loc, ErrorKind::UnexpectedClose));
                }
                *pos += 1;
                return Ok(nodes);
            }
            Tok::Open => return Err(ImportError::at(loc, ErrorKind::OpenWithoutKeyword)),
            Tok::Word(w) => {
                let mut node = Node {
                    key: w.clone(),
                    args: Vec::new(),
                    block: None,
                    loc: loc.clone(),
                };
                *pos += 1;
                while let Some((Tok::Word(a), _)) = toks.get(*pos) {
                    node.args.push(a.clone());
                    *pos += 1;
                }
                // The block opens on this line, or on the next one.
                let mut look = *pos;
                if matches!(toks.get(look), Some((Tok::Eol, _))) {
                    while matches!(toks.get(look), Some((Tok::Eol, _))) {
                        look += 1;
                    }
                    if !matches!(toks.get(look), Some((Tok::Open, _))) {
                        look = *pos;
                    }
                }
                if let Some((Tok::Open, _)) = toks.get(look) {
                    *pos = look + 1;
                    node.block = Some(tree(toks, pos, Some(&node.loc))?);
                }
                nodes.push(node);
            }
        }
    }
}

/// Reads `text` (the file at `path`, named `shown`) and its includes into
/// keyword trees; also the notes reading made.
pub fn parse(
    path: &Path,
    shown: &str,
    text: &str,
    config_id: Option<&str>,
) -> Result<(Vec<Node>, Vec<Note>), ImportError> {
    let mut r = Reader {
        config_id,
        params: HashMap::new(),
        notes: Vec::new(),
        stack: vec![path.canonicalize().unwrap_or_else(|_| path.to_path_buf())],
        toks: Vec::new(),
        conditionals_noted: false,
    };
    r.read(path, shown, text)?;
    let mut pos = 0;
    let nodes = tree(&r.toks, &mut pos, None)?;
    Ok((nodes, r.notes))
}

/// Reads and converts a keepalived.conf.
pub fn import(
    path: &Path,
    shown: &str,
    text: &str,
    config_id: Option<&str>,
) -> Result<Imported, ImportError> {
    let (nodes, notes) = parse(path, shown, text, config_id)?;
    let mut c = Conv {
        imp: Imported {
            notes,
            ..Imported::default()
        },
        groups: HashMap::new(),
        vrrp_version: None,
        vrrp_vips: Vec::new(),
        cross_family: Vec::new(),
    };
    c.convert(&nodes);
    Ok(c.imp)
}

/// Checker timings, inherited virtual server → real server → checker.
#[derive(Debug, Clone, Default)]
struct Timing {
    delay_loop: Option<f64>,
    connect_timeout: Option<f64>,
    retry: Option<u32>,
    delay_before_retry: Option<(f64, Loc)>,
    inhibit: Option<bool>,
    virtualhost: Option<String>,
}

impl Timing {
    fn under(&self, parent: &Timing) -> Timing {
        Timing {
            delay_loop: self.delay_loop.or(parent.delay_loop),
            connect_timeout: self.connect_timeout.or(parent.connect_timeout),
            retry: self.retry.or(parent.retry),
            delay_before_retry: self
                .delay_before_retry
                .clone()
                .or_else(|| parent.delay_before_retry.clone()),
            inhibit: self.inhibit.or(parent.inhibit),
            virtualhost: self
                .virtualhost
                .clone()
                .or_else(|| parent.virtualhost.clone()),
        }
    }
}

/// An entry of a virtual_server_group.
#[derive(Debug, Clone)]
enum GroupEntry {
    Addr(IpAddr, u16),
    Fwmark(String),
}

struct Conv {
    imp: Imported,
    groups: HashMap<String, (Vec<GroupEntry>, Loc)>,
    vrrp_version: Option<u8>,
    /// Every vrrp_instance's virtual_ipaddress, each once: the assumed
    /// members of firewall-mark groups (those of the group's `ip_family`).
    vrrp_vips: Vec<IpAddr>,
    /// Addresses and unicast peers of the other family than their
    /// instance's (keepalived's virtual_ipaddress_excluded may mix them):
    /// they go to lbd's instance of their family, if the file has one.
    cross_family: Vec<CrossFamily>,
}

fn parse_bool(s: Option<&str>) -> Option<bool> {
    match s.map(|x| x.to_ascii_lowercase()) {
        None => Some(true),
        Some(v) => match v.as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            _ => None,
        },
    }
}

fn secs(s: Option<&str>) -> Option<f64> {
    s?.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

fn ms(v: f64) -> u32 {
    (v * 1000.0).round().min(u32::MAX as f64) as u32
}

/// An address or unicast peer found in an instance of the other family.
struct CrossFamily {
    addr: IpAddr,
    peer: bool,
    loc: Loc,
    text: String,
}

/// An IPv4 or IPv6 address and optional `/prefix` (virtual_ipaddress
/// entries).
fn addr_prefix(s: &str) -> Option<(IpAddr, Option<u8>)> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let a: IpAddr = a.parse().ok()?;
    let max = if a.is_ipv6() { 128 } else { 32 };
    match p {
        Some(p) => Some((a, Some(p.parse().ok().filter(|p| *p <= max)?))),
        None => Some((a, None)),
    }
}

/// The family keepalived gives an instance: the first virtual_ipaddress's,
/// else IPv6 with `native_ipv6`, else the family of its unicast_src_ip or
/// first unicast_peer; IPv4 when nothing says.
fn instance_is_ipv6(inst: &Node) -> bool {
    let children = inst.children();
    let first_vip = children
        .iter()
        .filter(|c| c.key == "virtual_ipaddress")
        .flat_map(|c| c.children())
        .find_map(|a| addr_prefix(&a.key));
    if let Some((a, _)) = first_vip {
        return a.is_ipv6();
    }
    if children.iter().any(|c| c.key == "native_ipv6") {
        return true;
    }
    let unicast = children
        .iter()
        .filter(|c| c.key == "unicast_src_ip")
        .filter_map(|c| c.arg(0))
        .chain(
            children
                .iter()
                .filter(|c| c.key == "unicast_peer")
                .flat_map(|c| c.children())
                .map(|p| p.key.as_str()),
        )
        .find_map(|a| a.parse::<IpAddr>().ok());
    unicast.is_some_and(|a| a.is_ipv6())
}

/// `A.B.C.D`, `A.B.C.D-E`, `A.B.C.D-A.B.C.E` or `A.B.C.D/N` (group
/// ranges), or one IPv6 address.
fn addr_range(s: &str) -> Option<Vec<IpAddr>> {
    if let Ok(v6) = s.parse::<std::net::Ipv6Addr>() {
        return Some(vec![v6.into()]);
    }
    addr_range_v4(s).map(|v| v.into_iter().map(IpAddr::V4).collect())
}

fn addr_range_v4(s: &str) -> Option<Vec<Ipv4Addr>> {
    if let Some((a, p)) = s.split_once('/') {
        let a: Ipv4Addr = a.parse().ok()?;
        let p: u32 = p.parse().ok().filter(|p| *p <= 32)?;
        let size = 1u64 << (32 - p);
        if size > 65_536 {
            return None;
        }
        let base = u32::from(a) & if p == 0 { 0 } else { u32::MAX << (32 - p) };
        return Some((0..size as u32).map(|i| Ipv4Addr::from(base + i)).collect());
    }
    let Some((a, b)) = s.split_once('-') else {
        return Some(vec![s.parse().ok()?]);
    };
    let a: Ipv4Addr = a.parse().ok()?;
    let last = if b.contains('.') {
        b.parse::<Ipv4Addr>().ok()?
    } else {
        let o = a.octets();
        Ipv4Addr::new(o[0], o[1], o[2], b.parse().ok()?)
    };
    let (x, y) = (u32::from(a), u32::from(last));
    if y < x || y - x >= 65_536 {
        return None;
    }
    Some((x..=y).map(Ipv4Addr::from).collect())
}

fn scheduler(name: &str) -> Option<Scheduler> {
    crate::ipvsadm::parse_scheduler(name).ok()
}

fn forward(name: &str) -> Option<Forward> {
    match name.to_ascii_uppercase().as_str() {
        "DR" => Some(Forward::Dr),
        "NAT" => Some(Forward::Nat),
        "TUN" => Some(Forward::Tunnel),
        _ => None,
    }
}

/// Why common keywords without an lbd equivalent are left out.
fn reason(key: &str) -> &'static str {
    match key {
        "router_id" | "lvs_id" => "lbd has no router id (keepalived names itself with it)",
        k if k.starts_with("notification_email") || k.starts_with("smtp") => {
            "lbd sends no email; its log and /metrics report changes of state"
        }
        "enable_script_security" | "script_user" => {
            "lbd runs its notify and check commands as itself"
        }
        "lvs_flush" | "lvs_flush_on_stop" => {
            "lbd applies its whole table at start and on restore: nothing to flush"
        }
        "alpha" => "lbd counts a server as up until its first check ends",
        "omega" | "quorum" | "quorum_up" | "quorum_down" | "hysteresis" => {
            "lbd has no quorum; its fallback server answers while every real server is down"
        }
        "notify_up" | "notify_down" => {
            "lbd logs each real server's change of state (and counts it in /metrics) but runs no \
             command"
        }
        "uthreshold" | "lthreshold" => "lbd has no per-server connection thresholds",
        "ops" => "lbd has no one-packet scheduling",
        "persistence_engine" => "lbd has no persistence engines",
        "ha_suspend" => "lbd checks whether or not it holds the VIP",
        "track_script" | "track_interface" | "track_file" | "track_process" | "track_bfd" => {
            "lbd's VRRP tracks no scripts, interfaces or files (vrrp.track_health makes a \
             director whose real servers are all down give way)"
        }
        "vrrp_script" | "vrrp_track_process" => "lbd's VRRP tracks no scripts, processes or files",
        "vrrp_sync_group" => {
            "lbd runs one IPv4 and one IPv6 instance, which act as one group (the director \
             serves while both are master)"
        }
        "static_ipaddress" | "static_routes" | "static_rules" | "virtual_routes"
        | "virtual_rules" => "lbd manages no routes or host addresses besides its VIPs",
        "warmup" => "lbd starts every check at once",
        "log_all_failures" => "lbd logs changes of state",
        "bindto" | "bind_port" | "bind_if" | "fwmark" | "connect_ip" => {
            "lbd's checks connect from the port's kernel interface to the real server's address"
        }
        "smtp_alert" => "lbd sends no email",
        "snmp_name" => "lbd has no SNMP; see /metrics",
        "mcast_src_ip" => "lbd advertises from its port's address",
        "dont_track_primary" | "use_vmac" | "vmac_xmit_base" | "use_ipvlan" => {
            "lbd's VRRP uses the port's own MAC and address"
        }
        k if k.starts_with("vrrp_") => "lbd's VRRP has no such setting",
        "http_protocol" => "lbd's HTTP check speaks HTTP/1.0",
        "fast_recovery" => "lbd checks one URL, at every interval",
        "digest" => "lbd's HTTP check compares status and body text, not an MD5 digest",
        _ => "lbd has no equivalent",
    }
}

impl Conv {
    fn note(&mut self, n: &Node, text: impl Into<String>) {
        self.imp.notes.push(Note::at(&n.loc, text));
    }

    /// `KEY ARGS`: not converted, with the reason.
    fn skip(&mut self, n: &Node) {
        let why = reason(&n.key);
        self.note(n, format!("`{}`: not converted: {why}", n.text()));
    }

    fn convert(&mut self, nodes: &[Node]) {
        for n in nodes {
            match n.key.as_str() {
                "global_defs" => self.global_defs(n),
                "virtual_server_group" => self.group(n),
                "virtual_server" | "vrrp_instance" => {}
                _ => self.skip(n),
            }
        }
        // The VRRP addresses, for the members of fwmark services.
        let vips = nodes
            .iter()
            .filter(|n| n.key == "vrrp_instance")
            .flat_map(|n| n.children())
            .filter(|c| c.key == "virtual_ipaddress")
            .flat_map(|c| c.children())
            .filter_map(|a| addr_prefix(&a.key).map(|(a, _)| a));
        for a in vips {
            if !self.vrrp_vips.contains(&a) {
                self.vrrp_vips.push(a);
            }
        }
        for n in nodes.iter().filter(|n| n.key == "virtual_server") {
            self.virtual_server(n);
        }
        let instances: Vec<&Node> = nodes.iter().filter(|n| n.key == "vrrp_instance").collect();
        self.vrrp(&instances);
        if let Some(s) = &mut self.imp.sync {
            if s.peer.is_none() {
                if let Some(v) = &self.imp.vrrp {
                    if let [std::net::IpAddr::V4(p)] = v.config.unicast_peers[..] {
                        s.peer = Some(p);
                    }
                }
            }
            // lbd's sync datagrams (IPv6 connections' records among them)
            // travel over IPv4: an IPv6 peer cannot be the sync peer.
            let v6_peer = self
                .imp
                .vrrp6
                .as_ref()
                .and_then(|v| v.config.unicast_peers.first().copied());
            if let (None, Some(p)) = (s.peer, v6_peer) {
                let origin = s.origin.clone();
                self.imp.notes.push(Note::at(
                    &origin,
                    format!(
                        "lvs_sync_daemon: the IPv6 VRRP peer {p} is not used for sync: lbd's \
                         sync (IPv6 connections included) goes to the peer director's IPv4 \
                         address"
                    ),
                ));
            }
        }
    }

    fn global_defs(&mut self, g: &Node) {
        for n in g.children() {
            match n.key.as_str() {
                "vrrp_version" => match n.arg(0).and_then(|v| v.parse::<u8>().ok()) {
                    Some(v @ (2 | 3)) => self.vrrp_version = Some(v),
                    _ => self.note(n, format!("`{}`: not a VRRP version (2 or 3)", n.text())),
                },
                "lvs_sync_daemon" => self.sync_daemon(n),
                "lvs_timeouts" => {
                    let mut t = TimeoutEdit::default();
                    let mut it = n.args.iter();
                    while let Some(k) = it.next() {
                        let v = it.next().and_then(|v| v.parse::<u32>().ok());
                        match (k.as_str(), v) {
                            ("tcp", Some(v)) => t.tcp = Some(v),
                            ("tcpfin", Some(v)) => t.tcpfin = Some(v),
                            ("udp", Some(v)) => t.udp = Some(v),
                            _ => {
                                self.note(n, format!("`{}`: `{k}` not understood", n.text()));
                                break;
                            }
                        }
                    }
                    self.imp.timeouts = Some(t);
                }
                _ => self.skip(n),
            }
        }
    }

    /// `lvs_sync_daemon IFACE [inst] INSTANCE [id N] [maxlen N] [port N]
    /// [ttl N] [group IP]`.
    fn sync_daemon(&mut self, n: &Node) {
        let mut sync = ImportedSync {
            interface: n.arg(0).map(String::from),
            peer: None,
            port: None,
            origin: n.loc.clone(),
        };
        let mut i = 1;
        if n.arg(i) == Some("inst") {
            i += 1;
        }
        i += 1; // the instance
        let mut ignored = Vec::new();
        while i < n.args.len() {
            let k = n.args[i].as_str();
            let v = n.arg(i + 1);
            match k {
                "port" => sync.port = v.and_then(|v| v.parse().ok()),
                "id" | "maxlen" | "ttl" | "group" => {
                    ignored.push(format!("{k} {}", v.unwrap_or("")))
                }
                _ => ignored.push(k.to_string()),
            }
            i += 2;
        }
        if !ignored.is_empty() {
            self.note(
                n,
                format!(
                    "lvs_sync_daemon {}: not converted: lbd's sync goes to one peer by unicast \
                     (no sync id, multicast group, ttl or packet size)",
                    ignored.join(", ")
                ),
            );
        }
        self.imp.sync = Some(sync);
    }

    fn group(&mut self, g: &Node) {
        let Some(name) = g.arg(0) else {
            self.note(g, "virtual_server_group without a name: not converted");
            return;
        };
        let mut entries = Vec::new();
        for n in g.children() {
            if n.key == "fwmark" {
                entries.push(GroupEntry::Fwmark(n.arg(0).unwrap_or("?").to_string()));
                continue;
            }
            let port = n.arg(0).and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
            match addr_range(&n.key) {
                Some(addrs) => entries.extend(addrs.into_iter().map(|a| GroupEntry::Addr(a, port))),
                None => self.note(
                    n,
                    format!(
                        "virtual_server_group {name}: `{}` is not an address or an IPv4 range: \
                         not converted",
                        n.text()
                    ),
                ),
            }
        }
        self.groups
            .insert(name.to_string(), (entries, g.loc.clone()));
    }

    fn virtual_server(&mut self, vs: &Node) {
        let what = format!("virtual_server {}", vs.args.join(" "));
        let reals = vs
            .children()
            .iter()
            .filter(|n| n.key == "real_server")
            .count();
        let targets: Vec<(IpAddr, u16)> = match vs.arg(0) {
            Some("fwmark") => {
                self.fwmark_service(vs, &what, reals);
                return;
            }
            Some("group") => {
                let name = vs.arg(1).unwrap_or("");
                let Some((entries, _)) = self.groups.get(name).cloned() else {
                    self.note(
                        vs,
                        format!("`{what}`: no virtual_server_group {name}: not converted"),
                    );
                    return;
                };
                let mut t = Vec::new();
                for e in entries {
                    match e {
                        GroupEntry::Addr(a, p) => t.push((a, p)),
                        GroupEntry::Fwmark(m) => self.note(
                            vs,
                            format!(
                                "`{what}`: group member fwmark {m}: not converted: lbd's \
                                 service groups are `virtual_server fwmark` services, not \
                                 members of a virtual_server_group"
                            ),
                        ),
                    }
                }
                t
            }
            Some(ip) => match ip.parse::<IpAddr>() {
                Ok(a) => {
                    let port = match vs.arg(1) {
                        None => 0,
                        Some(p) => match p.parse::<u16>() {
                            Ok(p) => p,
                            Err(_) => {
                                self.note(
                                    vs,
                                    format!("`{what}`: `{p}` is not a port: not converted"),
                                );
                                return;
                            }
                        },
                    };
                    vec![(a, port)]
                }
                Err(_) => {
                    self.note(vs, format!("`{what}`: not an IP address: not converted"));
                    return;
                }
            },
            None => {
                self.note(vs, "virtual_server without an address: not converted");
                return;
            }
        };
        // The group's services share one body: notes about it once.
        let mut first = true;
        for (vip, port) in targets {
            let notes_before = self.imp.notes.len();
            if let Some(svc) = self.service_body(vs, vip, port, None, &what) {
                self.imp.services.push(ImportedService {
                    config: svc,
                    origin: vs.loc.clone(),
                    what: if vs.arg(0) == Some("group") {
                        format!("{what} ({})", SockAddr(vip, port))
                    } else {
                        what.clone()
                    },
                });
            }
            if !first {
                self.imp.notes.truncate(notes_before);
            }
            first = false;
        }
    }

    /// `virtual_server fwmark MARK`: a service group. Its members are what
    /// iptables rules outside keepalived.conf marked, which the file does
    /// not say: they are assumed to be the VRRP addresses on the real
    /// servers' ports, and a note says so (or that they are to be filled in).
    fn fwmark_service(&mut self, vs: &Node, what: &str, reals: usize) {
        // keepalived reads the mark with strtoul: decimal or 0x hex.
        let arg = vs.arg(1).unwrap_or("");
        let mark = match arg.strip_prefix("0x").or_else(|| arg.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => arg.parse::<u32>().ok(),
        };
        let Some(mark) = mark.filter(|m| *m != 0) else {
            self.note(
                vs,
                format!(
                    "`{what}`: `{arg}` is not a firewall mark (1 to 4294967295): not converted                      (nor its {reals} real server{})",
                    if reals == 1 { "" } else { "s" }
                ),
            );
            return;
        };
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let Some(mut svc) = self.service_body(vs, unspecified, 0, Some(mark), what) else {
            return;
        };
        let nat = svc.real_servers.iter().map(|r| r.forward);
        if nat
            .chain(svc.fallback.map(|f| f.forward))
            .any(|f| f == Forward::Nat)
        {
            self.note(
                vs,
                format!(
                    "`{what}`: not converted: lbd's service groups forward by DR or tunnel, not \
                     NAT (keepalived's default lb_kind)"
                ),
            );
            return;
        }
        // A group's protocols are its members'.
        let protocol = std::mem::replace(&mut svc.protocol, Protocol::Tcp);
        let mut ports: Vec<u16> = svc.real_servers.iter().filter_map(|r| r.port).collect();
        ports.sort_unstable();
        ports.dedup();
        // keepalived's `ip_family inet6` makes the mark's service IPv6
        // (inet, the default, IPv4): its members are of that family.
        let v6 = vs
            .children()
            .iter()
            .any(|c| c.key == "ip_family" && c.arg(0) == Some("inet6"));
        let members: Vec<GroupMatch> = self
            .vrrp_vips
            .iter()
            .filter(|vip| vip.is_ipv6() == v6)
            .flat_map(|&vip| {
                ports.iter().map(move |&p| GroupMatch {
                    vip,
                    protocol,
                    ports: PortRange::one(p),
                })
            })
            .collect();
        let why = format!(
            "lbd reads no firewall marks (under IPVS, iptables rules outside keepalived.conf \
             set mark {mark})"
        );
        if members.is_empty() {
            self.note(
                vs,
                format!(
                    "`{what}`: {why}; what carries it could not be assumed (no VRRP address of \
                     its family or no real server port): add a `fwmarks` entry for mark {mark} with the VIPs \
                     and ports that were marked; until then the group takes no packets"
                ),
            );
        } else {
            let list = members
                .iter()
                .map(|m| {
                    let p = match m.protocol {
                        Protocol::Tcp => "tcp",
                        Protocol::Udp => "udp",
                    };
                    format!("{}:{}/{p}", m.vip, m.ports)
                })
                .collect::<Vec<_>>()
                .join(", ");
            self.note(
                vs,
                format!(
                    "`{what}`: {why}; its members are ASSUMED to be {list} (the VRRP addresses \
                     on the real servers' ports): check them against the rules that set mark \
                     {mark} and edit the `fwmarks` entry of mark {mark}"
                ),
            );
            self.imp.fwmarks.push(FwmarkConfig {
                mark,
                matches: members,
            });
        }
        self.imp.services.push(ImportedService {
            config: svc,
            origin: vs.loc.clone(),
            what: what.to_string(),
        });
    }

    /// The service a virtual_server body describes for `vip:port` (a
    /// service group's for `fwmark`).
    fn service_body(
        &mut self,
        vs: &Node,
        vip: IpAddr,
        port: u16,
        fwmark: Option<u32>,
        what: &str,
    ) -> Option<ServiceConfig> {
        let mut svc = ServiceConfig {
            vip,
            port,
            protocol: Protocol::Tcp,
            scheduler: Scheduler::Wlc,
            real_servers: vec![],
            persistence: None,
            health_check: None,
            fallback: None,
            sloppy_tcp: false,
            ecmp: false,
            fwmark,
        };
        // keepalived's default method is NAT.
        let mut method = Forward::Nat;
        let mut timing = Timing::default();
        let mut granularity: Option<String> = None;
        let mut persistence_timeout: Option<u32> = None;
        let mut sorry: Option<&Node> = None;
        let mut sorry_method: Option<Forward> = None;
        for n in vs.children() {
            match n.key.as_str() {
                "real_server" => {}
                "lb_algo" | "lvs_sched" => match n.arg(0).and_then(scheduler) {
                    Some(s) => svc.scheduler = s,
                    None => self.note(
                        n,
                        format!(
                            "`{}`: lbd has no such scheduler (it has rr, wrr, lc, wlc, sh, mh, \
                             sed, nq, fo): wlc is used",
                            n.text()
                        ),
                    ),
                },
                // A firewall-mark service's family (`fwmark_service` reads
                // it); an address service's is its VIP's.
                "ip_family" => {}
                "lb_kind" | "lvs_method" => match n.arg(0).and_then(forward) {
                    Some(f) => {
                        method = f;
                        if n.args.len() > 1
                            && !(n.arg(1) == Some("type") && n.arg(2) == Some("ipip"))
                        {
                            self.note(n, format!("`{}`: lbd's tunnels are IPIP only; the options are not converted", n.text()));
                        }
                    }
                    None => self.note(
                        n,
                        format!(
                            "`{}`: not a forwarding method: NAT (keepalived's default) is used",
                            n.text()
                        ),
                    ),
                },
                "protocol" => {
                    match n.arg(0).map(|p| p.to_ascii_uppercase()).as_deref() {
                        Some("TCP") => svc.protocol = Protocol::Tcp,
                        Some("UDP") => svc.protocol = Protocol::Udp,
                        _ => {
                            self.note(
                            vs,
                            format!("`{what}`: protocol {}: lbd serves TCP and UDP only: not converted", n.args.join(" ")),
                        );
                            return None;
                        }
                    }
                }
                "persistence_timeout" => {
                    // Without a value: keepalived's 6 minutes.
                    persistence_timeout = match n.arg(0) {
                        None => Some(360),
                        Some(v) => match v.parse::<u32>() {
                            Ok(t) => Some(t),
                            Err(_) => {
                                self.note(
                                    n,
                                    format!(
                                        "`{}`: not a number of seconds: not converted",
                                        n.text()
                                    ),
                                );
                                None
                            }
                        },
                    }
                }
                // A netmask for IPv4 services, a prefix length for IPv6
                // ones: checked below, where the family is known.
                "persistence_granularity" => match n.arg(0) {
                    Some(m) => granularity = Some(m.to_string()),
                    None => self.note(n, format!("`{}`: not a netmask: not converted", n.text())),
                },
                "sorry_server" => sorry = Some(n),
                "sorry_server_lvs_method" => sorry_method = n.arg(0).and_then(forward),
                "virtualhost" => timing.virtualhost = n.arg(0).map(String::from),
                "delay_loop" => timing.delay_loop = secs(n.arg(0)),
                "connect_timeout" => timing.connect_timeout = secs(n.arg(0)),
                "retry" | "nb_get_retry" => timing.retry = n.arg(0).and_then(|v| v.parse().ok()),
                "delay_before_retry" => {
                    timing.delay_before_retry = secs(n.arg(0)).map(|v| (v, n.loc.clone()))
                }
                "inhibit_on_failure" => timing.inhibit = parse_bool(n.arg(0)),
                "sorry_server_inhibit" => self.note(
                    n,
                    "`sorry_server_inhibit`: not converted: lbd's fallback server is taken out \
                     (not quiesced) when a real server comes back",
                ),
                _ => self.skip(n),
            }
        }
        if let Some(t) = persistence_timeout.filter(|t| *t > 0) {
            let max = crate::ipvsadm::MAX_PERSISTENCE;
            if t > max {
                self.note(
                    vs,
                    format!(
                        "`{what}`: persistence_timeout {t} is above lbd's {max} s: {max} is used"
                    ),
                );
            }
            let p = crate::args::persistence(t.min(max), svc.vip, granularity.as_deref())
                .unwrap_or_else(|e| {
                    self.note(
                        vs,
                        format!("`{what}`: persistence_granularity: {e}: not converted"),
                    );
                    crate::args::persistence(t.min(max), svc.vip, None)
                        .expect("no mask is always valid")
                });
            svc.persistence = Some(p);
        } else if granularity.is_some() {
            self.note(
                vs,
                format!("`{what}`: persistence_granularity without persistence: not converted"),
            );
        }
        if let Some(s) = sorry {
            svc.fallback = self.sorry_server(s, port, sorry_method.unwrap_or(method));
        }
        let mut checks = Vec::new();
        for n in vs.children().iter().filter(|n| n.key == "real_server") {
            if let Some((r, hc)) = self.real_server(n, &svc, method, &timing) {
                svc.real_servers.push(r);
                checks.push(hc);
            }
        }
        // One check for all: the service's; otherwise each server's own.
        if !checks.is_empty() && checks.iter().all(|c| c.is_some() && *c == checks[0]) {
            svc.health_check = checks[0].clone();
        } else {
            for (r, c) in svc.real_servers.iter_mut().zip(checks) {
                r.health_check = c;
            }
        }
        Some(svc)
    }

    fn sorry_server(&mut self, n: &Node, port: u16, method: Forward) -> Option<Fallback> {
        let Some(address) = n.arg(0).and_then(|a| a.parse::<IpAddr>().ok()) else {
            self.note(
                n,
                format!("`{}`: not an IP address: not converted", n.text()),
            );
            return None;
        };
        let p = n.arg(1).and_then(|p| p.parse::<u16>().ok());
        let p = match (method, p) {
            (Forward::Nat, Some(p)) if p != port => Some(p),
            (_, Some(p)) if p != port && port != 0 => {
                self.note(
                    n,
                    format!(
                        "`{}`: direct routing and tunnels cannot change the port: the service \
                         port {port} is used",
                        n.text()
                    ),
                );
                None
            }
            _ => None,
        };
        Some(Fallback {
            address,
            port: p,
            forward: method,
        })
    }

    fn real_server(
        &mut self,
        n: &Node,
        svc: &ServiceConfig,
        method: Forward,
        vs_timing: &Timing,
    ) -> Option<(RealServerConfig, Option<HealthCheck>)> {
        let Some(address) = n.arg(0).and_then(|a| a.parse::<IpAddr>().ok()) else {
            self.note(
                n,
                format!("`{}`: not an IP address: not converted", n.text()),
            );
            return None;
        };
        let rs_port = match n.arg(1) {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) => Some(p),
                Err(_) => {
                    self.note(
                        n,
                        format!("`{}`: `{p}` is not a port: not converted", n.text()),
                    );
                    return None;
                }
            },
        };
        let mut r = RealServerConfig {
            address,
            port: None,
            weight: 1,
            forward: method,
            health_check: None,
        };
        let mut timing = Timing::default();
        let mut checkers = Vec::new();
        for c in n.children() {
            match c.key.as_str() {
                "weight" => match c.arg(0).and_then(|w| w.parse::<u32>().ok()) {
                    Some(w) if w <= 65535 => r.weight = w,
                    _ => self.note(
                        c,
                        format!("`{}`: not a weight (0 to 65535): 1 is used", c.text()),
                    ),
                },
                "lvs_method" | "lb_kind" => match c.arg(0).and_then(forward) {
                    Some(f) => r.forward = f,
                    None => self.note(
                        c,
                        format!("`{}`: not a forwarding method: not converted", c.text()),
                    ),
                },
                "inhibit_on_failure" => timing.inhibit = parse_bool(c.arg(0)),
                "delay_loop" => timing.delay_loop = secs(c.arg(0)),
                "connect_timeout" => timing.connect_timeout = secs(c.arg(0)),
                "retry" | "nb_get_retry" => timing.retry = c.arg(0).and_then(|v| v.parse().ok()),
                "delay_before_retry" => {
                    timing.delay_before_retry = secs(c.arg(0)).map(|v| (v, c.loc.clone()))
                }
                "virtualhost" => timing.virtualhost = c.arg(0).map(String::from),
                "HTTP_GET" | "SSL_GET" | "TCP_CHECK" | "MISC_CHECK" | "SMTP_CHECK"
                | "DNS_CHECK" | "UDP_CHECK" | "PING_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
                    checkers.push(c)
                }
                _ => self.skip(c),
            }
        }
        let service_port = svc.port;
        if let Some(p) = rs_port {
            if svc.is_group() {
                // A group has no port: the real server keeps its own (IPVS
                // does too); lbd's checks use it.
                r.port = (p != 0).then_some(p);
            } else if r.forward == Forward::Nat {
                r.port = (p != service_port).then_some(p);
            } else if p != service_port && service_port != 0 {
                self.note(
                    n,
                    format!(
                        "`{}`: direct routing and tunnels cannot change the port: the service \
                         port {service_port} is used",
                        n.text()
                    ),
                );
            }
        }
        let timing = timing.under(vs_timing);
        let mut check = None;
        for c in checkers {
            if check.is_some() {
                self.note(
                    c,
                    format!(
                        "`{}` of real server {address}: not converted: lbd runs one check per \
                         real server (the first one is used)",
                        c.key
                    ),
                );
                continue;
            }
            check = self.checker(c, &timing);
        }
        Some((r, check))
    }

    /// One checker block as an lbd health check.
    fn checker(&mut self, c: &Node, parent: &Timing) -> Option<HealthCheck> {
        let mut t = Timing::default();
        let mut port = None;
        let mut urls: Vec<&Node> = Vec::new();
        let mut misc_path: Option<String> = None;
        let mut misc_timeout: Option<f64> = None;
        let mut payload: Option<String> = None;
        let mut require_reply: Option<Option<String>> = None;
        for n in c.children() {
            match n.key.as_str() {
                "connect_port" => port = n.arg(0).and_then(|p| p.parse::<u16>().ok()),
                "connect_timeout" => t.connect_timeout = secs(n.arg(0)),
                "retry" | "nb_get_retry" => t.retry = n.arg(0).and_then(|v| v.parse().ok()),
                "delay_before_retry" => {
                    t.delay_before_retry = secs(n.arg(0)).map(|v| (v, n.loc.clone()))
                }
                "delay_loop" => t.delay_loop = secs(n.arg(0)),
                "virtualhost" => t.virtualhost = n.arg(0).map(String::from),
                "url" if c.key == "HTTP_GET" || c.key == "SSL_GET" => urls.push(n),
                "misc_path" if c.key == "MISC_CHECK" => misc_path = n.arg(0).map(String::from),
                "misc_timeout" if c.key == "MISC_CHECK" => misc_timeout = secs(n.arg(0)),
                "misc_dynamic" if c.key == "MISC_CHECK" => self.note(
                    n,
                    "`misc_dynamic`: not converted: lbd's exec check passes on exit status 0 \
                     and fails otherwise; it does not set weights",
                ),
                "user" if c.key == "MISC_CHECK" => self.note(
                    n,
                    format!(
                        "`{}`: not converted: lbd runs the command as itself",
                        n.text()
                    ),
                ),
                "payload" if c.key == "UDP_CHECK" => payload = Some(n.args.join(" ")),
                "require_reply" if c.key == "UDP_CHECK" => {
                    require_reply = Some((!n.args.is_empty()).then(|| n.args.join(" ")))
                }
                _ => self.skip(n),
            }
        }
        let t = t.under(parent);
        if let Some((d, loc)) = &t.delay_before_retry {
            self.imp.notes.push(Note::at(
                loc,
                format!(
                    "`delay_before_retry {d}`: not converted: lbd retries at the check interval \
                     (a server is taken out after retry + 1 failed checks)"
                ),
            ));
        }
        // keepalived's retry defaults: 1 (0 for MISC_CHECK, 3 for DNS_CHECK).
        let default_retry = match c.key.as_str() {
            "MISC_CHECK" => 0,
            "DNS_CHECK" => 3,
            _ => 1,
        };
        let check = match c.key.as_str() {
            "TCP_CHECK" => CheckKind::Tcp,
            "SMTP_CHECK" => {
                self.note(
                    c,
                    "`SMTP_CHECK`: converted to a TCP connect check (lbd does not speak SMTP: \
                     the greeting and HELO are not checked)",
                );
                CheckKind::Tcp
            }
            "SSL_GET" => {
                self.note(
                    c,
                    "`SSL_GET`: converted to a TCP connect check (lbd has no TLS checks: the \
                     handshake, URL, status and digest are not checked)",
                );
                CheckKind::Tcp
            }
            "HTTP_GET" => self.http(c, &urls, t.virtualhost.clone()),
            "MISC_CHECK" => {
                let Some(path) = misc_path else {
                    self.note(c, "`MISC_CHECK` without misc_path: not converted");
                    return None;
                };
                CheckKind::Exec {
                    command: "/bin/sh".into(),
                    args: vec!["-c".into(), path],
                }
            }
            "UDP_CHECK" => {
                let text = |hex: &str| -> Option<String> {
                    let digits: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
                    if !digits.len().is_multiple_of(2) {
                        return None;
                    }
                    let bytes: Option<Vec<u8>> = (0..digits.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
                        .collect();
                    String::from_utf8(bytes?).ok().filter(|s| !s.is_empty())
                };
                let send = match payload.as_deref().map(text) {
                    Some(Some(s)) => s,
                    Some(None) => {
                        self.note(
                            c,
                            "`UDP_CHECK` payload is not text: lbd sends \"lbd\" instead",
                        );
                        "lbd".into()
                    }
                    None => "lbd".into(),
                };
                let expect = match &require_reply {
                    Some(Some(h)) => match text(h) {
                        Some(s) => Some(s),
                        None => {
                            self.note(
                                c,
                                "`UDP_CHECK` require_reply is not text: any reply is accepted",
                            );
                            None
                        }
                    },
                    _ => None,
                };
                if require_reply.is_none() {
                    self.note(
                        c,
                        "`UDP_CHECK` without require_reply: lbd's UDP check needs an answer (keepalived's passes unless an ICMP error comes back)",
                    );
                }
                CheckKind::Udp { send, expect }
            }
            _ => {
                self.note(
                    c,
                    format!(
                        "`{}`: not converted: lbd's checks are TCP, HTTP, UDP and commands",
                        c.key
                    ),
                );
                return None;
            }
        };
        let retry = t.retry.unwrap_or(default_retry);
        let interval = t.delay_loop.unwrap_or(60.0);
        let timeout = if c.key == "MISC_CHECK" {
            misc_timeout.unwrap_or(interval)
        } else {
            t.connect_timeout.unwrap_or(5.0)
        };
        let clamp = |this: &mut Conv, v: u32, lo: u32, hi: u32, what: &str| -> u32 {
            let x = v.clamp(lo, hi);
            if x != v {
                this.note(
                    c,
                    format!("{what} of {v} ms is outside lbd's {lo} to {hi}: {x} is used"),
                );
            }
            x
        };
        let interval_ms = clamp(self, ms(interval), 100, 3_600_000, "the check interval");
        let timeout_ms = clamp(self, ms(timeout), 10, 600_000, "the check timeout");
        let fall = clamp(self, retry.saturating_add(1), 1, 100, "retry + 1 (fall)");
        Some(HealthCheck {
            check,
            interval_ms,
            timeout_ms,
            rise: 1,
            fall,
            port,
            on_failure: if t.inhibit == Some(true) {
                OnFailure::Quiesce
            } else {
                OnFailure::Remove
            },
            expire_connections: false,
        })
    }

    fn http(&mut self, c: &Node, urls: &[&Node], virtualhost: Option<String>) -> CheckKind {
        let mut path = "/".to_string();
        let mut status = 200u16;
        let mut expect = None;
        let mut host = virtualhost;
        let mut status_given = false;
        for (i, u) in urls.iter().enumerate() {
            if i > 0 {
                self.note(
                    u,
                    "`url`: not converted: lbd's HTTP check fetches one path (the first url)",
                );
                continue;
            }
            for n in u.children() {
                match n.key.as_str() {
                    "path" => {
                        if let Some(p) = n.arg(0) {
                            path = p.to_string()
                        }
                    }
                    "status_code" => {
                        status_given = true;
                        let first = n.arg(0).unwrap_or("");
                        let single = n.args.len() == 1 && !first.contains('-');
                        let code = first.split('-').next().and_then(|x| x.parse::<u16>().ok());
                        match code {
                            Some(code) => {
                                status = code;
                                if !single {
                                    self.note(
                                        n,
                                        format!(
                                            "`{}`: lbd's HTTP check wants one status: {code} is used",
                                            n.text()
                                        ),
                                    );
                                }
                            }
                            None => self.note(n, format!("`{}`: not a status code", n.text())),
                        }
                    }
                    "virtualhost" => host = n.arg(0).map(String::from),
                    "regex" => {
                        let re = n.arg(0).unwrap_or("");
                        let literal = !re.contains([
                            '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '^', '$', '|', '\\',
                        ]);
                        if literal && !re.is_empty() {
                            expect = Some(re.to_string());
                        } else {
                            self.note(
                                n,
                                format!(
                                    "`{}`: not converted: lbd looks for plain text in the \
                                     body, not a regular expression",
                                    n.text()
                                ),
                            );
                        }
                    }
                    _ => self.skip(n),
                }
            }
        }
        if !status_given {
            self.note(
                c,
                "`HTTP_GET` without status_code: keepalived accepts any 2xx; lbd's HTTP check \
                 wants 200",
            );
        }
        CheckKind::Http {
            path,
            status,
            expect,
            host,
        }
    }

    /// keepalived's IPv4 instances become lbd's `vrrp`, its IPv6 ones
    /// (VRRPv3 over IPv6) `vrrp6`: of each family, the instance holding a
    /// service's VIP, else the first; the others are noted.
    fn vrrp(&mut self, instances: &[&Node]) {
        let vips: Vec<IpAddr> = self.imp.vips();
        for v6 in [false, true] {
            let of_family: Vec<&Node> = instances
                .iter()
                .copied()
                .filter(|n| instance_is_ipv6(n) == v6)
                .collect();
            if of_family.is_empty() {
                continue;
            }
            let holds = |n: &Node| {
                n.children()
                    .iter()
                    .filter(|c| c.key == "virtual_ipaddress")
                    .flat_map(|c| c.children())
                    .filter_map(|a| addr_prefix(&a.key))
                    .any(|(a, _)| vips.contains(&a))
            };
            let chosen = of_family.iter().position(|n| holds(n)).unwrap_or(0);
            let (family, field) = if v6 {
                ("IPv6", "vrrp6")
            } else {
                ("IPv4", "vrrp")
            };
            for (i, n) in of_family.iter().enumerate() {
                if i != chosen {
                    self.note(
                        n,
                        format!(
                            "`{}`: not converted: lbd runs one {family} VRRP instance, `{field}` \
                             (`vrrp_instance {}` is converted); its addresses are not held",
                            n.text(),
                            of_family[chosen].args.join(" ")
                        ),
                    );
                }
            }
            let out = self.instance(of_family[chosen], &vips, v6);
            if v6 {
                self.imp.vrrp6 = Some(out);
            } else {
                self.imp.vrrp = Some(out);
            }
        }
        self.place_cross_family(&vips);
    }

    /// Addresses and peers written in an instance of the other family go
    /// to lbd's instance of their own family, when there is one (lbd's two
    /// instances act as one group, like a keepalived sync group).
    fn place_cross_family(&mut self, service_vips: &[IpAddr]) {
        for x in std::mem::take(&mut self.cross_family) {
            let (slot, field) = if x.addr.is_ipv6() {
                (self.imp.vrrp6.as_mut(), "vrrp6")
            } else {
                (self.imp.vrrp.as_mut(), "vrrp")
            };
            let family = if x.addr.is_ipv6() { "IPv6" } else { "IPv4" };
            let Some(inst) = slot else {
                let why = if x.peer {
                    "a unicast peer"
                } else {
                    "an address"
                };
                self.imp.notes.push(Note::at(
                    &x.loc,
                    format!(
                        "`{}`: not converted: {why} of the other family than its instance's; \
                         lbd keeps {family} addresses and peers in its {family} instance \
                         (`{field}`), which this file does not have",
                        x.text
                    ),
                ));
                continue;
            };
            let c = &mut inst.config;
            if x.peer {
                if !c.unicast_peers.contains(&x.addr) {
                    c.unicast_peers.push(x.addr);
                }
            } else {
                if !inst.virtual_addresses.contains(&x.addr) {
                    inst.virtual_addresses.push(x.addr);
                }
                if !service_vips.contains(&x.addr) && !c.addresses.contains(&x.addr) {
                    c.addresses.push(x.addr);
                }
            }
            let what = if x.peer { "peer" } else { "address" };
            self.imp.notes.push(Note::at(
                &x.loc,
                format!(
                    "`{}`: an {family} {what} in an instance of the other family: lbd keeps it \
                     in its {family} instance, `{field}`",
                    x.text
                ),
            ));
        }
    }

    /// One vrrp_instance, IPv6 (`v6`: lbd's `vrrp6`) or IPv4.
    fn instance(&mut self, inst: &Node, service_vips: &[IpAddr], v6: bool) -> ImportedVrrp {
        let name = inst.arg(0).unwrap_or("").to_string();
        let mut v = VrrpConfig {
            port: String::new(),
            vrid: 0,
            priority: 100,
            // keepalived's default version is 2; over IPv6 it speaks
            // VRRPv3 whatever vrrp_version says.
            version: if v6 {
                3
            } else {
                self.vrrp_version.unwrap_or(2)
            },
            auth_pass: None,
            advert_interval_ms: 1000,
            preempt: true,
            addresses: vec![],
            unicast_peers: vec![],
            garp_count: 5,
            garp_refresh_s: 0,
            track_health: false,
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
        };
        let mut out = ImportedVrrp {
            config: v.clone(),
            interface: None,
            own_address: None,
            prefix: None,
            virtual_addresses: vec![],
            origin: inst.loc.clone(),
        };
        let mut advert: Option<(f64, Loc)> = None;
        let mut notify: Option<String> = None;
        let mut vrid_given = false;
        for n in inst.children() {
            match n.key.as_str() {
                "state" => self.note(
                    n,
                    format!(
                        "`{}`: lbd has no initial state: the director with the highest \
                         priority becomes master",
                        n.text()
                    ),
                ),
                "interface" => out.interface = n.arg(0).map(String::from),
                "virtual_router_id" => match n.arg(0).and_then(|x| x.parse::<u8>().ok()) {
                    Some(id) if id > 0 => {
                        v.vrid = id;
                        vrid_given = true;
                    }
                    _ => self.note(n, format!("`{}`: not a router id (1 to 255)", n.text())),
                },
                "priority" => match n.arg(0).and_then(|x| x.parse::<u16>().ok()) {
                    Some(p) if (1..=254).contains(&p) => v.priority = p as u8,
                    Some(255) => {
                        v.priority = 254;
                        self.note(
                            n,
                            "`priority 255`: lbd's highest is 254 (255 is for an address owner): \
                             254 is used",
                        );
                    }
                    _ => self.note(
                        n,
                        format!("`{}`: not a priority (1 to 254): 100 is used", n.text()),
                    ),
                },
                "advert_int" => {
                    advert = secs(n.arg(0)).map(|s| (s, n.loc.clone()));
                }
                "version" => match n.arg(0).and_then(|x| x.parse::<u8>().ok()) {
                    Some(2) if v6 => self.note(
                        n,
                        "`version 2`: VRRP over IPv6 is version 3 (keepalived uses 3 as well): \
                         3 is used",
                    ),
                    Some(x @ (2 | 3)) => v.version = x,
                    _ => self.note(n, format!("`{}`: not a VRRP version (2 or 3)", n.text())),
                },
                // The family is decided before (`instance_is_ipv6`).
                "native_ipv6" => {}
                "nopreempt" => v.preempt = false,
                "preempt" => v.preempt = true,
                "authentication" => {
                    let mut kind = None;
                    let mut pass = None;
                    for a in n.children() {
                        match a.key.as_str() {
                            "auth_type" => kind = a.arg(0).map(|x| x.to_ascii_uppercase()),
                            "auth_pass" => pass = a.arg(0).map(String::from),
                            _ => self.skip(a),
                        }
                    }
                    match (kind.as_deref(), pass) {
                        (Some("PASS"), Some(mut p)) => {
                            if p.len() > 8 {
                                self.note(
                                    n,
                                    "auth_pass is longer than 8 characters: keepalived sends the \
                                     first 8, and so does lbd",
                                );
                                p.truncate(8);
                            }
                            v.auth_pass = Some(p);
                        }
                        (Some("AH"), _) => self.note(
                            n,
                            "`auth_type AH`: not converted: lbd's VRRPv2 has PASS authentication \
                             only",
                        ),
                        _ => self.note(
                            n,
                            "authentication without auth_type PASS and auth_pass: not converted",
                        ),
                    }
                }
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    let excluded = n.key == "virtual_ipaddress_excluded";
                    for a in n.children() {
                        match addr_prefix(&a.key) {
                            // keepalived ignores a virtual_ipaddress of the
                            // other family; virtual_ipaddress_excluded may
                            // mix them.
                            Some((addr, _)) if addr.is_ipv6() != v6 && !excluded => self.note(
                                a,
                                format!(
                                    "`{}`: not converted: its family differs from the \
                                     instance's first address (keepalived ignores it too); \
                                     lbd holds {} addresses in `{}`",
                                    a.text(),
                                    if addr.is_ipv6() { "IPv6" } else { "IPv4" },
                                    if addr.is_ipv6() { "vrrp6" } else { "vrrp" },
                                ),
                            ),
                            Some((addr, _)) if addr.is_ipv6() != v6 => {
                                self.cross_family.push(CrossFamily {
                                    addr,
                                    peer: false,
                                    loc: a.loc.clone(),
                                    text: a.text(),
                                })
                            }
                            Some((addr, prefix)) => {
                                if out.prefix.is_none() {
                                    out.prefix = prefix;
                                }
                                if !out.virtual_addresses.contains(&addr) {
                                    out.virtual_addresses.push(addr);
                                }
                                if !a.args.is_empty() {
                                    self.note(
                                        a,
                                        format!(
                                            "`{}`: the options after the address are not \
                                             converted: lbd holds it on its VRRP port",
                                            a.text()
                                        ),
                                    );
                                }
                            }
                            None => self.note(
                                a,
                                format!(
                                    "`{}`: not an IPv4 or IPv6 address (a host name or a \
                                     malformed address): not converted",
                                    a.text()
                                ),
                            ),
                        }
                    }
                }
                "unicast_peer" => {
                    for a in n.children() {
                        match a.key.parse::<IpAddr>() {
                            Ok(p) if p.is_ipv6() != v6 => self.cross_family.push(CrossFamily {
                                addr: p,
                                peer: true,
                                loc: a.loc.clone(),
                                text: a.text(),
                            }),
                            Ok(p) => v.unicast_peers.push(p),
                            Err(_) => self.note(
                                a,
                                format!(
                                    "`{}`: not an IPv4 or IPv6 address: not converted",
                                    a.text()
                                ),
                            ),
                        }
                        if !a.args.is_empty() {
                            self.note(
                                a,
                                format!("`{}`: min_ttl/max_ttl are not converted", a.text()),
                            );
                        }
                    }
                }
                "unicast_src_ip" => {
                    out.own_address = n.arg(0).and_then(|a| a.parse().ok());
                    self.note(
                        n,
                        format!(
                            "`{}`: lbd advertises from its port's address (this one is the \
                             port address in the placeholder)",
                            n.text()
                        ),
                    );
                }
                "notify_master" | "notify_backup" | "notify_fault" => {
                    let cmd = n.arg(0).map(String::from);
                    if n.args.len() > 1 {
                        self.note(
                            n,
                            format!(
                                "`{}`: the user and group are not converted: lbd runs it as \
                                 itself",
                                n.text()
                            ),
                        );
                    }
                    match n.key.as_str() {
                        "notify_master" => v.notify_master = cmd,
                        "notify_backup" => v.notify_backup = cmd,
                        _ => v.notify_fault = cmd,
                    }
                }
                "notify" => notify = n.arg(0).map(String::from),
                "garp_master_repeat" => match n.arg(0).and_then(|x| x.parse::<u32>().ok()) {
                    Some(c) => v.garp_count = c.min(100),
                    None => self.note(n, format!("`{}`: not a count", n.text())),
                },
                "garp_master_refresh" => match n.arg(0).and_then(|x| x.parse::<u32>().ok()) {
                    Some(s) => v.garp_refresh_s = s,
                    None => self.note(n, format!("`{}`: not a number of seconds", n.text())),
                },
                "lvs_sync_daemon_interface" => {
                    self.imp.sync = Some(ImportedSync {
                        interface: n.arg(0).map(String::from),
                        peer: None,
                        port: None,
                        origin: n.loc.clone(),
                    })
                }
                _ => self.skip(n),
            }
        }
        // keepalived's generic notify script gets the type, name, state and
        // priority as arguments; lbd runs one command per state.
        if let Some(script) = notify {
            let prio = v.priority;
            let states = [
                ("MASTER", &mut v.notify_master),
                ("BACKUP", &mut v.notify_backup),
                ("FAULT", &mut v.notify_fault),
            ];
            for (state, slot) in states {
                if slot.is_none() {
                    *slot = Some(format!("{script} INSTANCE {name} {state} {prio}"));
                }
            }
        }
        if !vrid_given {
            self.note(
                inst,
                format!("`{}` has no virtual_router_id: 51 is used", inst.text()),
            );
            v.vrid = 51;
        }
        if let Some((a, loc)) = advert {
            let mut m = ms(a);
            if v.version == 2 && !m.is_multiple_of(1000) {
                let whole = m.div_ceil(1000).max(1) * 1000;
                self.imp.notes.push(Note::at(
                    &loc,
                    format!(
                        "advert_int {a}: VRRPv2 counts whole seconds: {} s is used",
                        whole / 1000
                    ),
                ));
                m = whole;
            }
            v.advert_interval_ms = m;
        }
        // VRRPv3 has no authentication.
        if v.version == 3 && v.auth_pass.is_some() {
            v.auth_pass = None;
            if let Some(a) = inst.children().iter().find(|c| c.key == "authentication") {
                self.note(
                    a,
                    "`authentication`: not converted: VRRPv3 has no authentication \
                     (keepalived ignores it as well)",
                );
            }
        }
        // The services' VIPs are held by the master anyway; other addresses
        // (a NAT gateway, say) are VRRP's own.
        v.addresses = out
            .virtual_addresses
            .iter()
            .copied()
            .filter(|a| !service_vips.contains(a))
            .collect();
        out.config = v;
        out
    }
}
