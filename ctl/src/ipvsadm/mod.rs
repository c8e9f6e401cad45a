//! `lbctl ipvsadm ARGS...`: ipvsadm's own command line, as ipvsadm(8)
//! documents it, translated into lbd's requests.
//!
//! The parser ([`parse`]) is pure: it turns the words into a [`Command`]
//! or an [`IpvsError`] that names what was wrong or what lbd does not
//! support. [`run`] carries a command out against lbd; [`rules`] applies
//! commands to a configuration (for `-R` and the ipvsadm-save importer) and
//! writes ipvsadm-save's format; [`listing`] prints ipvsadm's tables.
//!
//! The syntax follows ipvsadm rather than clap: short options cluster
//! (`-Ln`), an option's value may be attached (`-tVIP:80`, `--weight=3`),
//! `-p` takes its timeout only when the next word is not an option, and
//! the command may come anywhere on the line. Dashes that a word processor
//! turned into typographic ones (`–C`, as in copied how-tos) are read as
//! the ASCII dashes they were.

pub mod listing;
pub mod rules;
pub mod run;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use lb_api::config::{Forward, Persistence, Protocol, Scheduler};
use lb_api::protocol::ServiceKey;

/// The most a persistence timeout may be in lbd (24 days; IPVS allows 31).
pub const MAX_PERSISTENCE: u32 = 2_073_600;

/// A virtual service as ipvsadm names it: `-t|-u VIP[:PORT]` or `-f MARK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRef {
    Addr(ServiceKey),
    /// `-f MARK`: a firewall-mark service, lbd's service group.
    Fwmark(u32),
}

impl ServiceRef {
    /// The key lbd knows the service by.
    pub fn key(self) -> ServiceKey {
        match self {
            ServiceRef::Addr(k) => k,
            ServiceRef::Fwmark(m) => ServiceKey::group(m),
        }
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceRef::Addr(k) => write!(f, "{k}"),
            ServiceRef::Fwmark(m) => write!(f, "fwmark {m}"),
        }
    }
}

/// A service's settings for `-A` and `-E` (ipvsadm sets them all at once:
/// what is not given takes ipvsadm's default, wlc and no persistence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    pub service: ServiceRef,
    pub scheduler: Scheduler,
    pub persistence: Option<Persistence>,
}

/// A real server's settings for `-a` and `-e` (defaults: `-g`, `-w 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec {
    pub service: ServiceRef,
    pub address: IpAddr,
    /// The port given with `-r`; `None`: the service's.
    pub port: Option<u16>,
    pub forward: Forward,
    pub weight: u32,
}

/// What `-L` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListWhat {
    /// The service table, with `--stats`, `--rate` or `--thresholds` columns.
    Table,
    /// `-c`: the connection table.
    Connections,
    /// `--timeout`: tcp, tcpfin and udp timeouts.
    Timeout,
    /// `--daemon`: the connection sync.
    Daemon,
}

/// The columns of the service table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Columns {
    #[default]
    Plain,
    Stats,
    Rate,
    Thresholds,
}

/// `-L` / `-l` and its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListSpec {
    pub what: ListWhat,
    /// `-L -t VIP:PORT`: one service.
    pub service: Option<ServiceRef>,
    pub columns: Columns,
    /// `--exact`: numbers not scaled to K, M, G.
    pub exact: bool,
    /// `--nosort`: lbd's order instead of ipvsadm's sorted one.
    pub nosort: bool,
}

/// One ipvsadm command line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    AddService(ServiceSpec),
    EditService(ServiceSpec),
    DeleteService(ServiceRef),
    AddServer(ServerSpec),
    EditServer(ServerSpec),
    DeleteServer {
        service: ServiceRef,
        address: IpAddr,
    },
    /// `-C`.
    Clear,
    List(ListSpec),
    /// `-Z [SERVICE]`.
    Zero(Option<ServiceRef>),
    /// `-S`: the rules, in ipvsadm-save's format.
    Save,
    /// `-R`: rules from standard input.
    Restore,
    /// `--set TCP TCPFIN UDP` (0 leaves one unchanged).
    SetTimeouts {
        tcp: u32,
        tcpfin: u32,
        udp: u32,
    },
    Help,
    Version,
}

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsError {
    /// Not a valid ipvsadm command line (ipvsadm refuses it too).
    Usage(String),
    /// Valid for ipvsadm, but lbd has nothing that does it.
    Unsupported { what: String, why: String },
}

impl fmt::Display for IpvsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpvsError::Usage(m) => write!(f, "{m}"),
            IpvsError::Unsupported { what, why } => write!(f, "{what} is not supported: {why}"),
        }
    }
}

impl std::error::Error for IpvsError {}

fn usage(m: impl Into<String>) -> IpvsError {
    IpvsError::Usage(m.into())
}

fn unsupported(what: impl Into<String>, why: impl Into<String>) -> IpvsError {
    IpvsError::Unsupported {
        what: what.into(),
        why: why.into(),
    }
}

/// What ipvsadm's rules cannot say about a service group: which packets
/// it takes (iptables marks them under IPVS). Shared by the importers.
pub const GROUP_MEMBERS: &str = "lbd reads no firewall marks: which VIP:ports carry a mark is \
                                 said by a `fwmarks` entry in lbd's configuration";

/// ipvsadm's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Restore,
    Save,
    Help,
    Version,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::AddService => "add-service",
            Cmd::EditService => "edit-service",
            Cmd::DeleteService => "delete-service",
            Cmd::Clear => "clear",
            Cmd::List => "list",
            Cmd::Zero => "zero",
            Cmd::AddServer => "add-server",
            Cmd::EditServer => "edit-server",
            Cmd::DeleteServer => "delete-server",
            Cmd::Set => "set",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Help => "help",
            Cmd::Version => "version",
        }
    }
}

/// ipvsadm's options (those that modify a command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    NoSort,
    Exact,
}

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Numeric => "numeric",
            Opt::Connection => "connection",
            Opt::Service => "service-address",
            Opt::Scheduler => "scheduler",
            Opt::Persistent => "persistent",
            Opt::Netmask => "netmask",
            Opt::Server => "real-server",
            Opt::Forward => "forwarding-method",
            Opt::Weight => "weight",
            Opt::Timeout => "timeout",
            Opt::Daemon => "daemon",
            Opt::Stats => "stats",
            Opt::Rate => "rate",
            Opt::Thresholds => "thresholds",
            Opt::NoSort => "nosort",
            Opt::Exact => "exact",
        }
    }
}

/// Which options each command takes: required ones, optional ones. What is
/// in neither list is refused, as ipvsadm refuses it.
fn allowed(cmd: Cmd) -> (&'static [Opt], &'static [Opt]) {
    use Opt::*;
    match cmd {
        Cmd::AddService | Cmd::EditService => (&[Service], &[Scheduler, Persistent, Netmask]),
        Cmd::DeleteService => (&[Service], &[]),
        Cmd::AddServer | Cmd::EditServer => (&[Service, Server], &[Forward, Weight]),
        Cmd::DeleteServer => (&[Service, Server], &[]),
        Cmd::List => (
            &[],
            &[
                Numeric, Connection, Service, Timeout, Daemon, Stats, Rate, Thresholds, NoSort,
                Exact,
            ],
        ),
        Cmd::Save => (&[], &[Numeric]),
        Cmd::Zero => (&[], &[Service]),
        Cmd::Clear | Cmd::Set | Cmd::Restore | Cmd::Help | Cmd::Version => (&[], &[]),
    }
}

/// How an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Value,
    /// `-p [TIMEOUT]`: the next word, unless it is an option.
    Optional,
}

/// What a word on the command line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    Cmd(Cmd),
    Opt(Opt),
    /// `-t` / `-u` / `-f`.
    Tcp,
    Udp,
    Fwmark,
    /// `-6` after `-f`: an IPv6 service group.
    Ipv6,
    Masq,
    Ipip,
    Gate,
    /// `--sort`: the default, accepted and ignored (as ipvsadm does).
    Sort,
    /// `--tun-type TYPE`: only `ipip` is lbd's.
    TunType,
    /// An ipvsadm option lbd does not have, with the reason.
    Refused(&'static str),
}

struct Spelling {
    long: &'static str,
    short: Option<char>,
    meaning: Meaning,
    takes: Takes,
}

const fn sp(long: &'static str, short: Option<char>, meaning: Meaning, takes: Takes) -> Spelling {
    Spelling {
        long,
        short,
        meaning,
        takes,
    }
}

const NO_SYNC_DAEMON: &str = "lbd's connection sync is the `sync` section of its configuration \
                              (peer, port), always running when configured; there is no daemon \
                              to start or stop";

/// Every option ipvsadm knows, with lbd's meaning.
const SPELLINGS: &[Spelling] = &[
    sp(
        "add-service",
        Some('A'),
        Meaning::Cmd(Cmd::AddService),
        Takes::Nothing,
    ),
    sp(
        "edit-service",
        Some('E'),
        Meaning::Cmd(Cmd::EditService),
        Takes::Nothing,
    ),
    sp(
        "delete-service",
        Some('D'),
        Meaning::Cmd(Cmd::DeleteService),
        Takes::Nothing,
    ),
    sp("clear", Some('C'), Meaning::Cmd(Cmd::Clear), Takes::Nothing),
    sp("list", Some('L'), Meaning::Cmd(Cmd::List), Takes::Nothing),
    sp("list", Some('l'), Meaning::Cmd(Cmd::List), Takes::Nothing),
    sp("zero", Some('Z'), Meaning::Cmd(Cmd::Zero), Takes::Nothing),
    sp(
        "add-server",
        Some('a'),
        Meaning::Cmd(Cmd::AddServer),
        Takes::Nothing,
    ),
    sp(
        "edit-server",
        Some('e'),
        Meaning::Cmd(Cmd::EditServer),
        Takes::Nothing,
    ),
    sp(
        "delete-server",
        Some('d'),
        Meaning::Cmd(Cmd::DeleteServer),
        Takes::Nothing,
    ),
    sp("set", None, Meaning::Cmd(Cmd::Set), Takes::Nothing),
    sp("help", Some('h'), Meaning::Cmd(Cmd::Help), Takes::Nothing),
    sp(
        "version",
        Some('v'),
        Meaning::Cmd(Cmd::Version),
        Takes::Nothing,
    ),
    sp(
        "restore",
        Some('R'),
        Meaning::Cmd(Cmd::Restore),
        Takes::Nothing,
    ),
    sp("save", Some('S'), Meaning::Cmd(Cmd::Save), Takes::Nothing),
    sp("tcp-service", Some('t'), Meaning::Tcp, Takes::Value),
    sp("udp-service", Some('u'), Meaning::Udp, Takes::Value),
    sp("fwmark-service", Some('f'), Meaning::Fwmark, Takes::Value),
    sp(
        "scheduler",
        Some('s'),
        Meaning::Opt(Opt::Scheduler),
        Takes::Value,
    ),
    sp(
        "persistent",
        Some('p'),
        Meaning::Opt(Opt::Persistent),
        Takes::Optional,
    ),
    sp(
        "netmask",
        Some('M'),
        Meaning::Opt(Opt::Netmask),
        Takes::Value,
    ),
    sp(
        "real-server",
        Some('r'),
        Meaning::Opt(Opt::Server),
        Takes::Value,
    ),
    sp("masquerading", Some('m'), Meaning::Masq, Takes::Nothing),
    sp("ipip", Some('i'), Meaning::Ipip, Takes::Nothing),
    sp("gatewaying", Some('g'), Meaning::Gate, Takes::Nothing),
    sp("weight", Some('w'), Meaning::Opt(Opt::Weight), Takes::Value),
    sp(
        "numeric",
        Some('n'),
        Meaning::Opt(Opt::Numeric),
        Takes::Nothing,
    ),
    sp(
        "connection",
        Some('c'),
        Meaning::Opt(Opt::Connection),
        Takes::Nothing,
    ),
    sp("timeout", None, Meaning::Opt(Opt::Timeout), Takes::Nothing),
    sp("daemon", None, Meaning::Opt(Opt::Daemon), Takes::Nothing),
    sp("stats", None, Meaning::Opt(Opt::Stats), Takes::Nothing),
    sp("rate", None, Meaning::Opt(Opt::Rate), Takes::Nothing),
    sp(
        "thresholds",
        None,
        Meaning::Opt(Opt::Thresholds),
        Takes::Nothing,
    ),
    sp("nosort", None, Meaning::Opt(Opt::NoSort), Takes::Nothing),
    sp("sort", None, Meaning::Sort, Takes::Nothing),
    sp("exact", Some('X'), Meaning::Opt(Opt::Exact), Takes::Nothing),
    sp("tun-type", None, Meaning::TunType, Takes::Value),
    sp(
        "start-daemon",
        None,
        Meaning::Refused(NO_SYNC_DAEMON),
        Takes::Value,
    ),
    sp(
        "stop-daemon",
        None,
        Meaning::Refused(NO_SYNC_DAEMON),
        Takes::Value,
    ),
    sp(
        "mcast-interface",
        None,
        Meaning::Refused(NO_SYNC_DAEMON),
        Takes::Value,
    ),
    sp(
        "syncid",
        None,
        Meaning::Refused(NO_SYNC_DAEMON),
        Takes::Value,
    ),
    sp(
        "u-threshold",
        Some('x'),
        Meaning::Refused("lbd has no per-server connection thresholds"),
        Takes::Value,
    ),
    sp(
        "l-threshold",
        Some('y'),
        Meaning::Refused("lbd has no per-server connection thresholds"),
        Takes::Value,
    ),
    sp(
        "ops",
        Some('o'),
        Meaning::Refused("lbd has no one-packet scheduling: each UDP flow is a connection"),
        Takes::Nothing,
    ),
    sp(
        "pe",
        None,
        Meaning::Refused("lbd has no persistence engines (such as sip)"),
        Takes::Value,
    ),
    sp(
        "sched-flags",
        Some('b'),
        Meaning::Refused("lbd's schedulers take no flags (sh-port, sh-fallback, mh-port, ...)"),
        Takes::Value,
    ),
    sp("ipv6", Some('6'), Meaning::Ipv6, Takes::Nothing),
    sp(
        "sctp-service",
        None,
        Meaning::Refused("lbd serves TCP and UDP only"),
        Takes::Value,
    ),
    sp(
        "tun-port",
        None,
        Meaning::Refused("lbd's tunnels are IPIP only (no GUE or GRE)"),
        Takes::Value,
    ),
    sp(
        "tun-nocsum",
        None,
        Meaning::Refused("lbd's tunnels are IPIP only (no GUE or GRE)"),
        Takes::Nothing,
    ),
    sp(
        "tun-csum",
        None,
        Meaning::Refused("lbd's tunnels are IPIP only (no GUE or GRE)"),
        Takes::Nothing,
    ),
    sp(
        "tun-remcsum",
        None,
        Meaning::Refused("lbd's tunnels are IPIP only (no GUE or GRE)"),
        Takes::Nothing,
    ),
    sp(
        "persistent-conn",
        None,
        Meaning::Refused(
            "lbd does not count persistent connections per real server; `lbctl conns` lists \
             the persistence templates",
        ),
        Takes::Nothing,
    ),
];

fn by_long(name: &str) -> Option<&'static Spelling> {
    SPELLINGS.iter().find(|s| s.long == name)
}

fn by_short(c: char) -> Option<&'static Spelling> {
    SPELLINGS.iter().find(|s| s.short == Some(c))
}

/// Dashes a word processor may have put where ipvsadm's were.
const TYPOGRAPHIC_DASHES: [char; 4] = ['\u{2010}', '\u{2013}', '\u{2014}', '\u{2212}'];

/// A word with typographic dashes in front turned back into ASCII ones.
/// A single typographic dash before a long option's name (`—save`) stood
/// for two hyphens; before anything else (`–C`, `–Ln`) for one. Returns the
/// word and whether it was changed.
pub fn ascii_dashes(word: &str) -> (String, bool) {
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return (String::new(), false);
    };
    if !TYPOGRAPHIC_DASHES.contains(&first) {
        return (word.to_string(), false);
    }
    let rest: String = chars.collect();
    let rest = rest
        .trim_start_matches(|c| TYPOGRAPHIC_DASHES.contains(&c) || c == '-')
        .to_string();
    let name = rest.split('=').next().unwrap_or("");
    if name.chars().count() > 1 && by_long(name).is_some() {
        (format!("--{rest}"), true)
    } else {
        (format!("-{rest}"), true)
    }
}

/// Notes for the words [`ascii_dashes`] changed, for standard error.
pub fn dash_notes<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    args.iter()
        .filter_map(|a| {
            let (ascii, changed) = ascii_dashes(a.as_ref());
            changed.then(|| {
                format!(
                    "read `{}` as `{ascii}` (a typographic dash, as in copied documents)",
                    a.as_ref()
                )
            })
        })
        .collect()
}

/// What the parser gathered before checking the combination.
#[derive(Default)]
struct Gathered {
    cmd: Option<(Cmd, String)>,
    opts: Vec<Opt>,
    service: Option<ServiceRef>,
    scheduler: Option<String>,
    persistent: Option<Option<String>>,
    netmask: Option<String>,
    server: Option<String>,
    forward: Option<Forward>,
    weight: Option<String>,
    positional: Vec<String>,
    /// The protocol of `-t`/`-u` (for port names of `-r`).
    protocol: Option<Protocol>,
    /// `-6`: the `-f` group is IPv6 (its `-M` is a prefix length).
    ipv6: bool,
    /// Lenient (importer) mode: what lbd lacks is collected in `dropped`
    /// and left out instead of refusing the line.
    lenient: bool,
    dropped: Vec<IpvsError>,
}

impl Gathered {
    fn set_cmd(&mut self, cmd: Cmd, written: &str) -> Result<(), IpvsError> {
        if let Some((_, first)) = &self.cmd {
            return Err(usage(format!(
                "multiple commands specified ({first} and {written})"
            )));
        }
        self.cmd = Some((cmd, written.to_string()));
        Ok(())
    }

    fn set_opt(&mut self, opt: Opt) -> Result<(), IpvsError> {
        if self.opts.contains(&opt) {
            return Err(usage(format!(
                "multiple '{}' options specified",
                opt.name()
            )));
        }
        self.opts.push(opt);
        Ok(())
    }
}

/// Parses ipvsadm's arguments (without the program name). No arguments at
/// all lists the table, as ipvsadm does.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, IpvsError> {
    parse_with(args, false).map(|(c, _)| c)
}

/// Parses a rule for an importer: options lbd lacks (`-x`, `-o`, `--pe`,
/// ...) are left out, an IPVS scheduler lbd lacks becomes wlc and a
/// persistence timeout above lbd's limit its limit; each such change is
/// returned, to be listed as not converted. Malformed lines still fail.
pub fn parse_lenient<S: AsRef<str>>(args: &[S]) -> Result<(Command, Vec<IpvsError>), IpvsError> {
    parse_with(args, true)
}

fn parse_with<S: AsRef<str>>(
    args: &[S],
    lenient: bool,
) -> Result<(Command, Vec<IpvsError>), IpvsError> {
    let words: Vec<String> = args.iter().map(|a| ascii_dashes(a.as_ref()).0).collect();
    if words.is_empty() {
        let list = Command::List(ListSpec {
            what: ListWhat::Table,
            service: None,
            columns: Columns::Plain,
            exact: false,
            nosort: false,
        });
        return Ok((list, vec![]));
    }
    let mut g = Gathered {
        lenient,
        ..Gathered::default()
    };
    let mut i = 0;
    let mut only_positional = false;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if only_positional || w == "-" || !w.starts_with('-') {
            g.positional.push(w.clone());
            continue;
        }
        if w == "--" {
            only_positional = true;
            continue;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some(s) = by_long(name) else {
                if matches!(name, "socket" | "json") {
                    return Err(usage(format!(
                        "`--{name}` is lbctl's option: give it before `ipvsadm` \
                         (lbctl --{name} ... ipvsadm ...)"
                    )));
                }
                return Err(usage(format!("unknown option `--{name}`")));
            };
            let value = match (s.takes, attached) {
                (Takes::Nothing, Some(_)) => {
                    return Err(usage(format!("option `--{name}` takes no value")))
                }
                (Takes::Nothing, None) => None,
                (_, Some(v)) => Some(v),
                (Takes::Value, None) => match words.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => return Err(usage(format!("option `--{name}` needs a value"))),
                },
                (Takes::Optional, None) => match words.get(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(v.clone())
                    }
                    _ => None,
                },
            };
            apply(&mut g, s, &format!("--{name}"), value)?;
            continue;
        }
        // A cluster of short options: -Ln, -At, -tVIP:80, -p600.
        let cluster: Vec<char> = w[1..].chars().collect();
        let mut k = 0;
        while k < cluster.len() {
            let c = cluster[k];
            k += 1;
            let Some(s) = by_short(c) else {
                return Err(usage(format!("unknown option `-{c}`")));
            };
            let rest: String = cluster[k..].iter().collect();
            let value = match s.takes {
                Takes::Nothing => None,
                Takes::Value if !rest.is_empty() => {
                    k = cluster.len();
                    Some(rest)
                }
                Takes::Value => match words.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => return Err(usage(format!("option `-{c}` needs a value"))),
                },
                Takes::Optional if !rest.is_empty() => {
                    k = cluster.len();
                    Some(rest)
                }
                Takes::Optional => match words.get(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(v.clone())
                    }
                    _ => None,
                },
            };
            apply(&mut g, s, &format!("-{c}"), value)?;
        }
    }
    let mut dropped = std::mem::take(&mut g.dropped);
    let cmd = finish(g, &mut dropped)?;
    Ok((cmd, dropped))
}

/// Records one option.
fn apply(
    g: &mut Gathered,
    s: &Spelling,
    written: &str,
    value: Option<String>,
) -> Result<(), IpvsError> {
    let value_of = || value.clone().unwrap_or_default();
    let refuse = |g: &mut Gathered, e: IpvsError| {
        if g.lenient {
            g.dropped.push(e);
            Ok(())
        } else {
            Err(e)
        }
    };
    match s.meaning {
        Meaning::Cmd(c) => g.set_cmd(c, written)?,
        Meaning::Refused(why) => {
            let what = match &value {
                Some(v) => format!("`{written} {v}`"),
                None => format!("`{written}`"),
            };
            refuse(g, unsupported(what, why))?
        }
        Meaning::Sort => {}
        Meaning::TunType => {
            let v = value_of();
            if !v.eq_ignore_ascii_case("ipip") {
                refuse(
                    g,
                    unsupported(
                        format!("`{written} {v}`"),
                        "lbd's tunnels are IPIP only (no GUE or GRE)",
                    ),
                )?;
            }
        }
        Meaning::Tcp | Meaning::Udp => {
            g.set_opt(Opt::Service)?;
            let protocol = if s.meaning == Meaning::Tcp {
                Protocol::Tcp
            } else {
                Protocol::Udp
            };
            g.protocol = Some(protocol);
            let (vip, port) = parse_host_port(&value_of(), protocol, "virtual server")?;
            g.service = Some(ServiceRef::Addr(ServiceKey::addr(
                protocol,
                vip,
                port.unwrap_or(0),
            )));
        }
        Meaning::Fwmark => {
            g.set_opt(Opt::Service)?;
            let v = value_of();
            let mark = v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|m| *m > 0)
                .ok_or_else(|| usage(format!("invalid fwmark value `{v}` specified")))?;
            g.service = Some(ServiceRef::Fwmark(mark));
        }
        Meaning::Ipv6 => {
            // As ipvsadm: `-6` qualifies the firewall mark given before
            // it (an address says its family itself). lbd takes a group's
            // family from its `fwmarks` VIPs; `-6` makes `-M` a prefix.
            if !matches!(g.service, Some(ServiceRef::Fwmark(_))) {
                return Err(usage("-6 used before -f"));
            }
            g.ipv6 = true;
        }
        Meaning::Masq | Meaning::Ipip | Meaning::Gate => {
            g.set_opt(Opt::Forward)?;
            g.forward = Some(match s.meaning {
                Meaning::Masq => Forward::Nat,
                Meaning::Ipip => Forward::Tunnel,
                _ => Forward::Dr,
            });
        }
        Meaning::Opt(o) => {
            g.set_opt(o)?;
            match o {
                Opt::Scheduler => g.scheduler = Some(value_of()),
                Opt::Persistent => g.persistent = Some(value.clone()),
                Opt::Netmask => g.netmask = Some(value_of()),
                Opt::Server => g.server = Some(value_of()),
                Opt::Weight => g.weight = Some(value_of()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Checks the combination and builds the command. In lenient mode what
/// lbd lacks is replaced and recorded in `dropped`.
fn finish(g: Gathered, dropped: &mut Vec<IpvsError>) -> Result<Command, IpvsError> {
    let lenient = g.lenient;
    let Some((cmd, _)) = g.cmd else {
        return Err(usage(
            "no command given: one of -A -E -D -C -R -S -a -e -d -L -Z --set -h is needed",
        ));
    };
    let (required, optional) = allowed(cmd);
    for o in required {
        if !g.opts.contains(o) {
            return Err(usage(format!(
                "You need to supply the '{}' option for the '{}' command",
                o.name(),
                cmd.name()
            )));
        }
    }
    for o in &g.opts {
        if !required.contains(o) && !optional.contains(o) {
            return Err(usage(format!(
                "Illegal '{}' option with the '{}' command",
                o.name(),
                cmd.name()
            )));
        }
    }
    let has = |o: Opt| g.opts.contains(&o);
    if cmd == Cmd::Set {
        if g.positional.len() != 3 {
            return Err(usage("--set option requires 3 timeout values"));
        }
        let t = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| usage(format!("invalid timeout value `{s}` specified")))
        };
        return Ok(Command::SetTimeouts {
            tcp: t(&g.positional[0])?,
            tcpfin: t(&g.positional[1])?,
            udp: t(&g.positional[2])?,
        });
    }
    if let Some(p) = g.positional.first() {
        return Err(usage(format!("unexpected argument {p}")));
    }
    let service = g.service;
    let server = || -> Result<(IpAddr, Option<u16>), IpvsError> {
        let protocol = g.protocol.unwrap_or(Protocol::Tcp);
        parse_host_port(g.server.as_deref().unwrap_or(""), protocol, "real server")
    };
    Ok(match cmd {
        Cmd::AddService | Cmd::EditService => {
            let service = service.expect("required");
            let scheduler = match &g.scheduler {
                Some(s) => match parse_scheduler(s) {
                    Err(IpvsError::Unsupported { .. }) if lenient => {
                        dropped.push(IpvsError::Unsupported {
                            what: format!("scheduler `{s}`"),
                            why: "lbd has no such scheduler; wlc (IPVS's default) is used".into(),
                        });
                        Scheduler::Wlc
                    }
                    r => r?,
                },
                None => Scheduler::Wlc,
            };
            let persistence = match &g.persistent {
                None => None,
                Some(t) => {
                    let timeout = match parse_persistence_timeout(t.as_deref()) {
                        Err(e @ IpvsError::Unsupported { .. }) if lenient => {
                            dropped.push(e);
                            MAX_PERSISTENCE
                        }
                        r => r?,
                    };
                    // -M is a netmask for IPv4 services and a prefix
                    // length for IPv6 ones (`-f N -6`).
                    let family = match service {
                        ServiceRef::Addr(k) => k.vip,
                        ServiceRef::Fwmark(_) if g.ipv6 => Ipv6Addr::UNSPECIFIED.into(),
                        ServiceRef::Fwmark(_) => Ipv4Addr::UNSPECIFIED.into(),
                    };
                    Some(
                        crate::args::persistence(timeout, family, g.netmask.as_deref()).map_err(
                            |e| usage(format!("illegal virtual server persistent mask: {e}")),
                        )?,
                    )
                }
            };
            if let ServiceRef::Addr(k) = service {
                if k.port == 0 && persistence.is_none() {
                    return Err(usage("Zero port specified for non-persistent service"));
                }
            }
            let spec = ServiceSpec {
                service,
                scheduler,
                persistence,
            };
            if cmd == Cmd::AddService {
                Command::AddService(spec)
            } else {
                Command::EditService(spec)
            }
        }
        Cmd::DeleteService => Command::DeleteService(service.expect("required")),
        Cmd::AddServer | Cmd::EditServer => {
            let (address, port) = server()?;
            let weight = match &g.weight {
                Some(w) => w
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|w| *w <= 65535)
                    .ok_or_else(|| usage(format!("illegal weight `{w}` specified (0 to 65535)")))?,
                None => 1,
            };
            let spec = ServerSpec {
                service: service.expect("required"),
                address,
                port,
                forward: g.forward.unwrap_or(Forward::Dr),
                weight,
            };
            if cmd == Cmd::AddServer {
                Command::AddServer(spec)
            } else {
                Command::EditServer(spec)
            }
        }
        Cmd::DeleteServer => Command::DeleteServer {
            service: service.expect("required"),
            address: server()?.0,
        },
        Cmd::Clear => Command::Clear,
        Cmd::List => {
            // ipvsadm shows one of: connections, one service, timeouts, the
            // daemon — and the column options do not go with the last three.
            let exclusive: Vec<Opt> = [Opt::Connection, Opt::Service, Opt::Timeout, Opt::Daemon]
                .into_iter()
                .filter(|o| has(*o))
                .collect();
            if exclusive.len() > 1 {
                return Err(usage(format!(
                    "The option '{}' conflicts with the '{}' option in the 'list' command",
                    exclusive[1].name(),
                    exclusive[0].name()
                )));
            }
            let columns_given = has(Opt::Stats) || has(Opt::Rate) || has(Opt::Thresholds);
            if columns_given && (has(Opt::Connection) || has(Opt::Timeout) || has(Opt::Daemon)) {
                return Err(usage("options conflicts in the list command"));
            }
            let what = if has(Opt::Connection) {
                ListWhat::Connections
            } else if has(Opt::Timeout) {
                ListWhat::Timeout
            } else if has(Opt::Daemon) {
                ListWhat::Daemon
            } else {
                ListWhat::Table
            };
            // ipvsadm's precedence when several are given: stats, rate,
            // thresholds.
            let columns = if has(Opt::Stats) {
                Columns::Stats
            } else if has(Opt::Rate) {
                Columns::Rate
            } else if has(Opt::Thresholds) {
                Columns::Thresholds
            } else {
                Columns::Plain
            };
            Command::List(ListSpec {
                what,
                service,
                columns,
                exact: has(Opt::Exact),
                nosort: has(Opt::NoSort),
            })
        }
        Cmd::Zero => Command::Zero(service),
        Cmd::Save => Command::Save,
        Cmd::Restore => Command::Restore,
        Cmd::Help => Command::Help,
        Cmd::Version => Command::Version,
        Cmd::Set => unreachable!("handled above"),
    })
}

/// `-s NAME`: lbd's schedulers by IPVS's names.
pub fn parse_scheduler(name: &str) -> Result<Scheduler, IpvsError> {
    if let Some(s) = Scheduler::from_name(name) {
        return Ok(s);
    }
    match name.trim().to_ascii_lowercase().as_str() {
        other @ ("lblc" | "lblcr" | "dh" | "ovf" | "twos") => Err(unsupported(
            format!("scheduler `{other}`"),
            "lbd's schedulers are rr, wrr, lc, wlc, sh, mh, sed, nq and fo",
        )),
        other => Err(usage(format!(
            "unknown scheduler `{other}` (lbd has rr, wrr, lc, wlc, sh, mh, sed, nq, fo)"
        ))),
    }
}

/// `-p [TIMEOUT]`: IPVS's default 300 s, at most lbd's 24 days.
fn parse_persistence_timeout(t: Option<&str>) -> Result<u32, IpvsError> {
    let Some(t) = t else {
        return Ok(300);
    };
    match t.trim().parse::<u64>() {
        Ok(n) if (1..=u64::from(MAX_PERSISTENCE)).contains(&n) => Ok(n as u32),
        Ok(n) if n > u64::from(MAX_PERSISTENCE) => Err(unsupported(
            format!("persistence timeout {n}"),
            format!("lbd allows at most {MAX_PERSISTENCE} seconds (24 days)"),
        )),
        _ => Err(usage(format!("invalid timeout value `{t}` specified"))),
    }
}

/// `HOST[:PORT]` as ipvsadm reads it: a dotted IPv4 address, an IPv6
/// address in brackets (`[2001:db8::100]:80`; without a port the brackets
/// may be left out) or a host name, and a port number or a service name
/// from /etc/services.
pub fn parse_host_port(
    s: &str,
    protocol: Protocol,
    what: &str,
) -> Result<(IpAddr, Option<u16>), IpvsError> {
    let s = s.trim();
    let illegal = || usage(format!("illegal {what} address[:port] specified: `{s}`"));
    let (address, port) = if s.starts_with('[') || s.matches(':').count() > 1 {
        lb_api::addr::split_endpoint(s)
            .map_err(|e| usage(format!("illegal {what} address[:port] specified: {e}")))?
    } else {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if host.is_empty() {
            return Err(illegal());
        }
        (IpAddr::V4(resolve_host(host).ok_or_else(illegal)?), port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            port_number(p, protocol)
                .ok_or_else(|| usage(format!("illegal {what} port `{p}` specified")))?,
        ),
    };
    Ok((address, port))
}

/// A dotted IPv4 address, or the first IPv4 address of a host name.
pub fn resolve_host(host: &str) -> Option<Ipv4Addr> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(ip);
    }
    // Only names that could be host names reach the resolver.
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return None;
    }
    (host, 0)
        .to_socket_addrs()
        .ok()?
        .find_map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        })
}

/// A port number, or a service name looked up in /etc/services (a few
/// well-known names are built in for hosts without the file).
pub fn port_number(p: &str, protocol: Protocol) -> Option<u16> {
    let p = p.trim();
    if let Ok(n) = p.parse::<u16>() {
        return Some(n);
    }
    if p.is_empty() || p.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let proto = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    if let Ok(text) = std::fs::read_to_string("/etc/services") {
        if let Some(n) = services_lookup(&text, p, proto) {
            return Some(n);
        }
    }
    const WELL_KNOWN: &[(&str, u16)] = &[
        ("ftp", 21),
        ("ssh", 22),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("www", 80),
        ("pop3", 110),
        ("nntp", 119),
        ("imap", 143),
        ("ldap", 389),
        ("https", 443),
        ("submission", 587),
        ("imaps", 993),
        ("pop3s", 995),
        ("mysql", 3306),
        ("postgresql", 5432),
    ];
    WELL_KNOWN.iter().find(|(n, _)| *n == p).map(|(_, v)| *v)
}

/// Looks `name` up in the text of an /etc/services file.
pub fn services_lookup(text: &str, name: &str, proto: &str) -> Option<u16> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(first), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, pr)) = port_proto.split_once('/') else {
            continue;
        };
        if pr != proto {
            continue;
        }
        if first == name || words.any(|alias| alias == name) {
            return port.parse().ok();
        }
    }
    None
}

/// Splits a line of an ipvsadm rules file into words: blanks separate,
/// double or single quotes group. `None` for an unterminated quote.
pub fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// `lbctl ipvsadm --help`: what is supported, and what is refused.
pub const HELP: &str = "\
lbctl ipvsadm — ipvsadm's command line, against the running lbd.

Usage (as ipvsadm(8); also when lbctl is invoked as `ipvsadm`, and
`ipvsadm-save` / `ipvsadm-restore` for -S / -R):
  lbctl ipvsadm -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-M netmask]
  lbctl ipvsadm -D -t|u service-address
  lbctl ipvsadm -C
  lbctl ipvsadm -R
  lbctl ipvsadm -S [-n]
  lbctl ipvsadm -a|e -t|u service-address -r server-address [-g|-i|-m] [-w weight]
  lbctl ipvsadm -d -t|u service-address -r server-address
  lbctl ipvsadm -L|l [-n] [-c] [--stats|--rate|--thresholds] [--exact] [--timeout]
                     [--daemon] [--nosort] [-t|u service-address]
  lbctl ipvsadm -Z
  lbctl ipvsadm --set tcp tcpfin udp
  lbctl ipvsadm -h | -v

Commands (long or short):
  --add-service     -A    add a virtual service
  --edit-service    -E    change a service: scheduler and persistence are set
                          as given (what is left out takes ipvsadm's default:
                          wlc, not persistent)
  --delete-service  -D    delete a service and its real servers
  --clear           -C    remove every service
  --restore         -R    apply rules (as -S prints them) from standard input,
                          all at once: nothing changes if one line fails
  --save            -S    print the rules (always numeric, as with -n)
  --add-server      -a    add a real server
  --edit-server     -e    change a real server (weight and method as given,
                          else -w 1 and -g)
  --delete-server   -d    remove a real server (its connections end)
  --list            -L|-l list the table (always numeric, as with -n)
  --zero            -Z    zero all counters
  --set tcp tcpfin udp    set connection timeouts (0 leaves one unchanged)
  --help            -h    this text
  --version         -v    lbctl's version

Options:
  --tcp-service  -t host[:port]   a TCP service (port 0 or none: all ports,
                                  needs -p); host and port may be names
  --udp-service  -u host[:port]   a UDP service
  --scheduler    -s NAME          rr wrr lc wlc sh mh sed nq fo (default wlc)
  --persistent   -p [timeout]     persistent service (default 300 s, at most
                                  2073600)
  --netmask      -M netmask       persistence granularity (255.255.255.0 or 24;
                                  a prefix length, 0 to 128, for IPv6)
  --real-server  -r host[:port]   the real server (port: the service's if left
                                  out; direct routing and tunnels keep it)
  --gatewaying   -g               direct routing (the default)
  --ipip         -i               IPIP tunnel (--tun-type ipip is accepted)
  --masquerading -m               NAT
  --weight       -w weight        0 to 65535 (default 1)
  --numeric      -n               accepted: lbctl prints numbers anyway
  --connection   -c               list connections
  --timeout                       list the tcp tcpfin udp timeouts
  --daemon                        show the connection sync (lbd's sync section)
  --stats / --rate / --thresholds columns of the list (thresholds are all 0:
                                  lbd has none)
  --exact        -X               exact numbers
  --nosort / --sort               lbd's order / ipvsadm's sorted order (default)

  -f / --fwmark-service MARK      a service group (lbd's `fwmark` services):
                                  the VIP:ports that carry the mark are the
                                  `fwmarks` section of lbd's configuration
                                  (lbd reads no firewall marks); -C leaves it
  -6 / --ipv6     (after -f)      an IPv6 service group: its VIPs in
                                  `fwmarks` are IPv6 (a mark is one family,
                                  as in IPVS) and -M is a prefix length

IPv6 addresses are written in brackets, as ipvsadm takes them:
-t [2001:db8::100]:80, -r [2001:db8::10]:80 (without a port the brackets may
be left out). lbctl reads them and lists them so; lbd forwards IPv6 to
direct-routing (-g) and tunnel (-i) real servers; it refuses IPv6 masquerading
(-m) real servers and a real server of the other family than its VIP.

Refused, with a message saying why (lbd has no such feature):
  --start-daemon, --stop-daemon, --mcast-interface, --syncid
                                  the sync is lbd's `sync` configuration section
  -x / -y (connection thresholds), -o / --ops (one-packet scheduling),
  --pe (persistence engines), -b / --sched-flags,
  --sctp-service, --tun-port / --tun-*csum, --persistent-conn,
  -Z with a service (lbd zeroes all counters at once),
  schedulers lblc, lblcr, dh, ovf and twos.

Differences from ipvsadm: the listing's first line names IPVS 1.2.1 for
scripts that read it, with lbd's connection-table capacity as size; a real
server that its health check took out shows weight 0; the fallback server
is listed only while it is in service. Typographic dashes (–C, —save) from
copied documents are read as ASCII ones, with a note on standard error.
Exit status: as lbctl's (`lbctl --help`); 64 for a refused command line.";

#[cfg(test)]
mod tests;
