//! `lbctl`: the operator's tool for the lbd director, the ipvsadm of lbd.
//!
//! This file holds the command line (clap) and the dispatch: each command
//! becomes one [`Request`] ([`to_request`], pure, so tests can check it),
//! which [`client::Client`] sends over lbd's control socket; [`format`] turns
//! the answers into text. `validate` (without `--remote`) and `completions`
//! work offline.
//!
//! Two verbs bring LVS habits along: `ipvsadm` takes ipvsadm's own command
//! line, parsed by [`ipvsadm`] rather than clap (it is split off before
//! clap sees it, so that ipvsadm's `--timeout`, `-r` and `-Ln` stay
//! ipvsadm's; lbctl invoked as `ipvsadm`, `ipvsadm-save` or
//! `ipvsadm-restore` does the same), and `import` converts ipvsadm-save,
//! keepalived.conf and ldirectord.cf files ([`import`]).

#![forbid(unsafe_code)]

mod args;
mod client;
mod format;
mod import;
mod ipvsadm;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use lb_api::config::{Forward, Persistence, Protocol, RealServerConfig, ServiceConfig};
use lb_api::protocol::{
    ConnFilter, DrainReport, PersistenceChange, RealEdit, RemoveMode, Request, Response,
    ServiceEdit, ServiceKey, TimeoutEdit, DEFAULT_SOCKET,
};

use args::{scheduler_parser, RealAddr, ServiceAddr};
use client::{exit, Client, CtlError};
use format::ListMode;

const LONG_ABOUT: &str = "\
lbctl — control tool for the lbd load-balancer director (the ipvsadm of lbd).

It talks to the running lbd over its unix control socket (--socket, or
LBCTL_SOCKET, default /run/lbd/lbd.sock). Anyone who can open the socket may
read (list, conns, status, ...); changes need root or lbd's control group.
Every change is applied atomically and written to lbd's configuration file.
`validate FILE` (without --remote), `import` (without --apply) and
`completions` work without lbd.

Read commands print ipvsadm-style tables, or JSON with --json.

Addresses: VIP:PORT and RIP[:PORT] as 198.18.0.100:80, or IPv6 in brackets
as ipvsadm writes it, [2001:db8::100]:80. lbd forwards IPv6 to DR, tunnel
and NAT real servers (NAT66); mixed families (NAT64/NAT46) are refused.

Coming from LVS: `lbctl ipvsadm ARGS` takes ipvsadm's own command line
(also when lbctl is installed as `ipvsadm`, `ipvsadm-save` or
`ipvsadm-restore`), and `lbctl import ipvsadm|keepalived|ldirectord FILE`
converts an existing setup (docs/coming-from-lvs.md).";

const EXIT_CODES: &str = "\
Exit status:
  0   success
  1   internal error in lbd, saving the configuration failed (the change
      was rolled back), or a local file could not be read
  2   invalid configuration or change (nothing changed); `validate` found
      problems
  3   protocol error: bad request, version mismatch between lbctl and lbd,
      no answer within --timeout, connection closed
  4   permission denied (changes need root or lbd's control group)
  5   not found (no such service or real server)
  6   already exists
  7   cannot connect to lbd (is lbd running? is --socket right?)
  64  usage error (bad command line)";

/// lbctl — control tool for the lbd load-balancer director.
#[derive(Parser, Debug)]
#[command(
    name = "lbctl",
    version,
    long_about = LONG_ABOUT,
    after_long_help = EXIT_CODES,
    after_help = "See `lbctl --help` for exit statuses."
)]
pub struct Cli {
    /// lbd's control socket.
    #[arg(
        long,
        global = true,
        env = "LBCTL_SOCKET",
        default_value = DEFAULT_SOCKET,
        value_name = "PATH"
    )]
    socket: PathBuf,
    /// Print JSON instead of tables (every read command; changes print lbd's answer).
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for connecting, sending and each answer.
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        default_value = "5",
        value_parser = args::parse_timeout
    )]
    timeout: Duration,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `--tcp` / `--udp`: the service's protocol (TCP unless `--udp`).
#[derive(Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtoArg {
    /// TCP service (the default).
    #[arg(long, short = 't', conflicts_with = "udp")]
    tcp: bool,
    /// UDP service.
    #[arg(long, short = 'u')]
    udp: bool,
}

impl ProtoArg {
    fn protocol(self) -> Protocol {
        if self.udp {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }
    }

    /// For filters: `None` unless one of the flags was given.
    fn filter(self) -> Option<Protocol> {
        (self.tcp || self.udp).then(|| self.protocol())
    }
}

fn key(service: ServiceAddr, proto: ProtoArg) -> ServiceKey {
    ServiceKey::addr(proto.protocol(), service.vip, service.port)
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Add, change or delete virtual services (ipvsadm -A / -E / -D).
    #[command(subcommand, visible_alias = "svc")]
    Service(ServiceCmd),
    /// Add, change or delete real servers (ipvsadm -a / -e / -d).
    #[command(subcommand, visible_aliases = ["rs", "server"])]
    Real(RealCmd),
    /// List services and real servers (ipvsadm -Ln, --stats, --rate).
    #[command(visible_alias = "ls")]
    List {
        /// Traffic totals: Conns InPkts OutPkts InBytes OutBytes.
        #[arg(long, conflicts_with = "rate")]
        stats: bool,
        /// Rates per second: CPS InPPS OutPPS InBPS OutBPS.
        #[arg(long)]
        rate: bool,
        /// Exact numbers instead of K/M/G-scaled ones.
        #[arg(long, short = 'x')]
        exact: bool,
        /// Accepted for ipvsadm habits (-Ln): lbctl always prints numbers.
        #[arg(long, short = 'n')]
        numeric: bool,
    },
    /// List connections (ipvsadm -Lnc), filtered.
    ///
    /// IPv4 and IPv6 connections, and persistence templates (state NONE,
    /// client port 0, the client's masked address), of every worker and the
    /// shared NAT table. IPv6 addresses are bracketed as ipvsadm prints them
    /// ([2001:db8::1]:51234), plain in --json. The filters take either
    /// family; an address of one family selects that family's entries.
    #[command(visible_alias = "connections")]
    Conns(ConnsArgs),
    /// Remove every service, without asking (ipvsadm -C).
    ///
    /// It never prompts, so scripts can use it; run `lbctl save > backup.ron`
    /// first if unsure.
    Clear,
    /// Zero all traffic counters (ipvsadm -Z).
    Zero,
    /// Show connection timeouts (ipvsadm -L --timeout), or `set` them.
    #[command(visible_alias = "timeout")]
    Timeouts {
        #[command(subcommand)]
        set: Option<TimeoutsCmd>,
    },
    /// Print the running configuration as RON (ipvsadm -S).
    Save,
    /// Replace the whole running configuration with FILE, atomically (ipvsadm -R).
    Restore {
        /// RON configuration file, or `-` for standard input.
        file: PathBuf,
    },
    /// Check a configuration file without applying it (offline unless --remote).
    ///
    /// Exit status 0 when valid; 2 with one `FILE:LINE:COLUMN: field: problem`
    /// line per problem.
    Validate {
        /// The RON configuration file.
        file: PathBuf,
        /// Print the configuration as lbd understands it (defaults filled in).
        #[arg(long, conflicts_with = "remote")]
        show: bool,
        /// Ask the running lbd to check it (against its ports and devices)
        /// instead of checking it here.
        #[arg(long)]
        remote: bool,
    },
    /// Show lbd's version, uptime, configuration, ports, workers and table use.
    ///
    /// Also each VRRP instance that runs, a line each (`vrrp:` for the IPv4
    /// VIPs, `vrrp6:` for the IPv6 ones; in --json, `vrrp_instances`), the
    /// BGP announcements, and the non-zero counters.
    Status,
    /// Make lbd re-read its configuration file and apply it.
    Reload,
    /// Scale-out: take this director out of the routers' ECMP set (drain)
    /// or put it back (resume), through its BGP announcements.
    #[command(subcommand)]
    Director(DirectorCmd),
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print lbctl's man page (roff), for packaging.
    #[command(hide = true)]
    Man,
    /// ipvsadm's own command line against lbd: -A -E -D -a -e -d -C -L -Z -S -R --set.
    ///
    /// Also what lbctl does when invoked as `ipvsadm` (a symlink), and as
    /// `ipvsadm-save` (-S) or `ipvsadm-restore` (-R).
    #[command(
        long_about = ipvsadm::HELP,
        disable_help_flag = true,
        after_long_help = ""
    )]
    Ipvsadm {
        /// ipvsadm's arguments, e.g. `-A -t 198.18.0.100:80 -s rr`; `-h` for the supported subset.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            num_args = 0..,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// Convert an LVS setup (ipvsadm-save rules, keepalived.conf, ldirectord.cf) to lbd's RON.
    ///
    /// Prints the configuration; what cannot be converted is listed as
    /// comments at its top and on standard error (exit 0). Without --base
    /// or --apply the ports section is a placeholder to fill in (the LVS
    /// files do not name DPDK devices). A file that cannot be read or
    /// parsed exits 2 with FILE:LINE: and the problem.
    Import {
        /// The format of FILE.
        #[arg(value_enum)]
        from: import::Format,
        /// The file (`-` for standard input). keepalived's includes are
        /// read relative to it.
        file: PathBuf,
        /// An lbd configuration file whose sections (ports, eal, control,
        /// ...) the result keeps; its services are replaced by the imported
        /// ones, and its vrrp, vrrp6 and sync when the input has them. The result
        /// is checked: exit 2 (with the problems on standard error) if it
        /// is not valid.
        #[arg(long, value_name = "FILE", conflicts_with = "apply")]
        base: Option<PathBuf>,
        /// Apply the result to the running lbd instead of printing it: its
        /// running configuration is the base (ports kept), the services are
        /// replaced atomically. VRRP and sync change only when lbd starts:
        /// imported ones that differ are reported, not applied.
        #[arg(long)]
        apply: bool,
        /// keepalived's config id (keepalived -i) for `@ID` conditional
        /// lines; without it `@ID` lines are left out and `@^ID` lines kept.
        #[arg(long, value_name = "ID")]
        config_id: Option<String>,
    },
}

/// `-p [TIMEOUT]` / `-M NETMASK`: persistence, as ipvsadm takes it.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistArg {
    /// Persistent service (ipvsadm -p): a client keeps its real server,
    /// across connections, until TIMEOUT seconds (default 300) after its
    /// last packet. Required for VIP:0 (all ports).
    #[arg(
        long = "persistent",
        short = 'p',
        value_name = "TIMEOUT",
        num_args = 0..=1,
        default_missing_value = "300",
        value_parser = clap::value_parser!(u32).range(1..=2_073_600)
    )]
    persistent: Option<u32>,
    /// With -p: clients in the same network share their real server
    /// (ipvsadm -M): a prefix length (24) or a mask (255.255.255.0).
    /// Default 32: each client address on its own. For an IPv6 service, a
    /// prefix length from 0 to 128 (default 128), as in ipvsadm.
    #[arg(
        long = "netmask",
        short = 'M',
        value_name = "NETMASK",
        requires = "persistent"
    )]
    netmask: Option<String>,
}

impl PersistArg {
    /// The persistence asked for a service on `vip` (whose family says
    /// what `-M` means).
    fn persistence(&self, vip: IpAddr) -> Result<Option<Persistence>, CtlError> {
        self.persistent
            .map(|timeout| args::persistence(timeout, vip, self.netmask.as_deref()))
            .transpose()
            .map_err(|e| {
                CtlError::Usage(format!("-M {}: {e}", self.netmask.as_deref().unwrap_or("")))
            })
    }
}

#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Add a virtual service with no real servers (ipvsadm -A).
    Add {
        /// VIP:PORT, e.g. 198.18.0.100:80 ([2001:db8::100]:80 for IPv6); VIP:0
        /// serves every port (needs -p).
        #[arg(value_parser = args::parse_service_addr, value_name = "VIP:PORT")]
        service: ServiceAddr,
        #[command(flatten)]
        proto: ProtoArg,
        /// Scheduler (default wlc, as in IPVS).
        #[arg(long, short = 's', ignore_case = true, value_parser = scheduler_parser())]
        scheduler: Option<lb_api::config::Scheduler>,
        #[command(flatten)]
        persist: PersistArg,
    },
    /// Change a service's scheduler or persistence (ipvsadm -E).
    ///
    /// `-p [TIMEOUT] [-M NETMASK]` sets persistence (the netmask back to
    /// 32 unless given), `--no-persistent` ends it; what is not given stays.
    #[command(visible_alias = "set")]
    #[command(group = clap::ArgGroup::new("change").required(true).multiple(true).args(["scheduler", "persistent", "no_persistent"]))]
    Edit {
        #[arg(value_parser = args::parse_service_addr, value_name = "VIP:PORT")]
        service: ServiceAddr,
        #[command(flatten)]
        proto: ProtoArg,
        #[arg(long, short = 's', ignore_case = true, value_parser = scheduler_parser())]
        scheduler: Option<lb_api::config::Scheduler>,
        #[command(flatten)]
        persist: PersistArg,
        /// Turn persistence off: every connection is scheduled on its own.
        #[arg(long, conflicts_with = "persistent")]
        no_persistent: bool,
    },
    /// Delete a service and its real servers; its connections end (ipvsadm -D).
    #[command(visible_aliases = ["delete", "rm"])]
    Del {
        #[arg(value_parser = args::parse_service_addr, value_name = "VIP:PORT")]
        service: ServiceAddr,
        #[command(flatten)]
        proto: ProtoArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum RealCmd {
    /// Add a real server to a service (ipvsadm -a).
    Add {
        /// The service, VIP:PORT.
        #[arg(value_parser = args::parse_service_addr, value_name = "VIP:PORT")]
        service: ServiceAddr,
        /// The real server; its port defaults to the service's (DR needs them equal).
        #[arg(value_parser = args::parse_real_addr, value_name = "RIP[:PORT]")]
        real: RealAddr,
        /// Weight; 0 takes no new connections.
        #[arg(long, short = 'w', value_name = "N", default_value_t = 1)]
        weight: u32,
        /// Direct routing (ipvsadm -g), the default.
        #[arg(long = "dr", short = 'g', visible_alias = "gatewaying")]
        dr: bool,
        /// IPIP tunnel (ipvsadm -i): the server decapsulates and answers directly.
        #[arg(
            long = "tunnel",
            short = 'i',
            visible_alias = "ipip",
            conflicts_with = "dr"
        )]
        tunnel: bool,
        /// NAT / masquerading (ipvsadm -m): addresses rewritten, replies come
        /// back through the director; the real server's port may differ.
        #[arg(
            long = "masq",
            short = 'm',
            visible_alias = "nat",
            conflicts_with_all = ["dr", "tunnel"]
        )]
        masq: bool,
        #[command(flatten)]
        proto: ProtoArg,
    },
    /// Change a real server's weight or forwarding method (ipvsadm -e).
    #[command(visible_alias = "set")]
    #[command(group = clap::ArgGroup::new("change").required(true).multiple(true).args(["weight", "dr", "tunnel", "masq"]))]
    Edit {
        #[arg(value_parser = args::parse_service_addr, value_name = "VIP:PORT")]
        service: ServiceAddr,
        /// The real server's address.
        #[arg(value_parser = args::parse_real_ip, value_name = "RIP[:PORT]")]
        real: IpAddr,
        /// New weight; 0 quiesces it (existing connections continue).
        #[arg(long, short = 'w', value_name = "N")]
        weight: Option<u32>,
        /// Set the forwarding method to direct routing.
        #[arg(long = "dr", short = 'g', visible_alias = "gatewaying")]
        dr: bool,
        /// Set the forwarding method to IPIP tunnel.
        #[arg(
            long = "tunnel",
            short = 'i',
            visible_alias = "ipip",
            conflicts_with = "dr"
        )]
        tunnel: bool,
        /// Set the forwarding method to NAT (masquerading).
        #[arg(
            long = "masq",
            short = 'm',
            visible_alias = "nat",
            conflicts_with_all = ["dr", "tunnel"]
        )]
        masq: bool,
        #[command(flatten)]
        proto: ProtoArg,
    },
    /// Remove a real server (ipvsadm -d); --drain lets its connections finish.
    #[command(visible_aliases = ["delete", "rm"])]
    Del {
        #[arg(value_parser = args::parse_service_addr, value_name = "VIP:PORT")]
        service: ServiceAddr,
        #[arg(value_parser = args::parse_real_ip, value_name = "RIP[:PORT]")]
        real: IpAddr,
        /// Set its weight to 0 and remove it once its last connection ends,
        /// instead of now (which drops its connections).
        #[arg(long)]
        drain: bool,
        #[command(flatten)]
        proto: ProtoArg,
    },
}

#[derive(Args, Debug)]
pub struct ConnsArgs {
    /// Only connections from this client address (IPv4 or IPv6).
    #[arg(long, value_parser = args::parse_ip, value_name = "IP")]
    client: Option<IpAddr>,
    /// Only connections to this virtual address (IPv4 or IPv6).
    #[arg(long, value_parser = args::parse_ip, value_name = "IP")]
    vip: Option<IpAddr>,
    /// Only connections to this virtual port.
    #[arg(long, value_name = "PORT")]
    vport: Option<u16>,
    /// Only connections forwarded to this real server (IPv4 or IPv6).
    #[arg(long, value_parser = args::parse_ip, value_name = "IP")]
    real: Option<IpAddr>,
    /// Only connections in this state (ESTABLISHED, SYN_RECV, FIN_WAIT, ...).
    #[arg(long, value_name = "STATE")]
    state: Option<String>,
    #[command(flatten)]
    proto: ProtoArg,
    /// Show at most N connections.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    limit: u32,
    /// Accepted for ipvsadm habits (-Lnc): lbctl always prints numbers.
    #[arg(long, short = 'n')]
    numeric: bool,
}

#[derive(Subcommand, Debug)]
pub enum DirectorCmd {
    /// Withdraw every VIP's BGP announcement, wait until the routers have
    /// moved the traffic, and report.
    ///
    /// The traffic counts as moved once no new connection arrived for
    /// `bgp.drain_quiet_ms`. Connections still open keep being forwarded
    /// (the routers send their packets to the other directors, which pick
    /// the same real server for `ecmp` services). The director stays
    /// drained, across reloads, until `lbctl director resume`. Exit status
    /// 0 when the traffic moved, 8 when it had not when the wait ended.
    Drain {
        /// How long to wait for the traffic to move, in seconds.
        #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = args::parse_timeout)]
        wait: std::time::Duration,
        /// Withdraw and return at once, without waiting.
        #[arg(long, conflicts_with = "wait")]
        no_wait: bool,
    },
    /// Announce the VIPs again (those with a live real server).
    Resume,
}

#[derive(Subcommand, Debug)]
pub enum TimeoutsCmd {
    /// Set timeouts in seconds, in ipvsadm --set order; 0 leaves one unchanged.
    Set {
        /// TCP established.
        tcp: u32,
        /// TCP after a FIN.
        tcpfin: u32,
        /// UDP.
        udp: u32,
    },
}

fn nonzero(v: u32) -> Option<u32> {
    (v != 0).then_some(v)
}

/// Reads a file given on the command line (`-` is standard input).
fn read_text(path: &Path) -> Result<String, CtlError> {
    let res = if path == Path::new("-") {
        let mut s = String::new();
        io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(path)
    };
    res.map_err(|source| CtlError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// The request a command sends, `None` for commands that work offline.
/// `restore` and `validate --remote` read their file here.
pub fn to_request(cmd: &Cmd) -> Result<Option<Request>, CtlError> {
    let req = match cmd {
        Cmd::Service(ServiceCmd::Add {
            service,
            proto,
            scheduler,
            persist,
        }) => Request::AddService(ServiceConfig {
            vip: service.vip,
            port: service.port,
            protocol: proto.protocol(),
            scheduler: scheduler.unwrap_or_default(),
            real_servers: vec![],
            persistence: persist.persistence(service.vip)?,
            health_check: None,
            fallback: None,
            sloppy_tcp: false,
            ecmp: false,
            fwmark: None,
        }),
        Cmd::Service(ServiceCmd::Edit {
            service,
            proto,
            scheduler,
            persist,
            no_persistent,
        }) => Request::EditService {
            key: key(*service, *proto),
            edit: ServiceEdit {
                scheduler: *scheduler,
                persistence: match persist.persistence(service.vip)? {
                    Some(p) => Some(PersistenceChange::Set(p)),
                    None => no_persistent.then_some(PersistenceChange::Off),
                },
            },
        },
        Cmd::Service(ServiceCmd::Del { service, proto }) => {
            Request::DeleteService(key(*service, *proto))
        }
        Cmd::Real(RealCmd::Add {
            service,
            real,
            weight,
            dr: _,
            tunnel,
            masq,
            proto,
        }) => Request::AddReal {
            service: key(*service, *proto),
            real: RealServerConfig {
                address: real.address,
                port: real.port,
                weight: *weight,
                forward: if *tunnel {
                    Forward::Tunnel
                } else if *masq {
                    Forward::Nat
                } else {
                    Forward::Dr
                },
                health_check: None,
            },
        },
        Cmd::Real(RealCmd::Edit {
            service,
            real,
            weight,
            dr,
            tunnel,
            masq,
            proto,
        }) => Request::EditReal {
            service: key(*service, *proto),
            address: *real,
            edit: RealEdit {
                weight: *weight,
                forward: if *tunnel {
                    Some(Forward::Tunnel)
                } else if *masq {
                    Some(Forward::Nat)
                } else {
                    dr.then_some(Forward::Dr)
                },
            },
        },
        Cmd::Real(RealCmd::Del {
            service,
            real,
            drain,
            proto,
        }) => Request::DeleteReal {
            service: key(*service, *proto),
            address: *real,
            mode: if *drain {
                RemoveMode::Drain
            } else {
                RemoveMode::Immediate
            },
        },
        Cmd::List { .. } => Request::List,
        Cmd::Conns(c) => Request::Conns {
            filter: ConnFilter {
                protocol: c.proto.filter(),
                client: c.client,
                vip: c.vip,
                vport: c.vport,
                real: c.real,
                state: c.state.clone(),
            },
            limit: c.limit,
        },
        Cmd::Clear => Request::Clear,
        Cmd::Zero => Request::Zero,
        Cmd::Timeouts { set: None } => Request::GetTimeouts,
        Cmd::Timeouts {
            set: Some(TimeoutsCmd::Set { tcp, tcpfin, udp }),
        } => Request::SetTimeouts(TimeoutEdit {
            tcp: nonzero(*tcp),
            tcpfin: nonzero(*tcpfin),
            udp: nonzero(*udp),
        }),
        Cmd::Save => Request::Save,
        Cmd::Restore { file } => Request::Restore {
            ron: read_text(file)?,
        },
        Cmd::Validate {
            file, remote: true, ..
        } => Request::Validate {
            ron: read_text(file)?,
        },
        Cmd::Validate { remote: false, .. }
        | Cmd::Completions { .. }
        | Cmd::Man
        | Cmd::Ipvsadm { .. }
        | Cmd::Import { .. } => return Ok(None),
        Cmd::Status => Request::Status,
        Cmd::Reload => Request::Reload,
        Cmd::Director(DirectorCmd::Drain { .. }) => Request::DirectorDrain,
        Cmd::Director(DirectorCmd::Resume) => Request::DirectorResume,
    };
    Ok(Some(req))
}

/// Writes to stdout; a closed pipe (`lbctl conns | head`) is not an error.
fn emit(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn emit_json<T: serde::Serialize>(v: &T) {
    let mut s = serde_json::to_string_pretty(v).expect("answers serialise to JSON");
    s.push('\n');
    emit(&s);
}

fn unexpected(request: &'static str, got: Response) -> CtlError {
    let mut got = format!("{got:?}");
    if got.len() > 200 {
        got.truncate(200);
        got.push_str("...");
    }
    CtlError::Unexpected { request, got }
}

/// `validate FILE` offline: exit 0 when valid, 2 otherwise.
fn validate_offline(file: &Path, show: bool) -> u8 {
    match lb_api::config::load(file) {
        Ok(cfg) => {
            if show {
                emit(&lb_api::config::to_ron_string(&cfg));
            } else {
                emit(&format!(
                    "{}: valid ({} ports, {} services, {} real servers)\n",
                    file.display(),
                    cfg.ports.len(),
                    cfg.services.len(),
                    cfg.services
                        .iter()
                        .map(|s| s.real_servers.len())
                        .sum::<usize>()
                ));
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("{e}");
            exit::INVALID
        }
    }
}

fn run(cli: &Cli) -> Result<u8, CtlError> {
    let request = match to_request(&cli.cmd)? {
        Some(r) => r,
        None => {
            return Ok(match &cli.cmd {
                Cmd::Validate { file, show, .. } => validate_offline(file, *show),
                Cmd::Completions { shell } => {
                    let mut buf = Vec::new();
                    clap_complete::generate(*shell, &mut Cli::command(), "lbctl", &mut buf);
                    emit(&String::from_utf8_lossy(&buf));
                    exit::OK
                }
                Cmd::Man => {
                    let mut buf = Vec::new();
                    // Rendering into memory cannot fail.
                    // NAME is "lbctl - ABOUT": without the leading "lbctl —".
                    let cmd =
                        Cli::command().about("control tool for the lbd load-balancer director");
                    let _ = clap_mangen::Man::new(cmd).section("8").render(&mut buf);
                    emit(&String::from_utf8_lossy(&buf));
                    exit::OK
                }
                Cmd::Ipvsadm { args } => ipvsadm_main("lbctl ipvsadm", cli, args),
                Cmd::Import {
                    from,
                    file,
                    base,
                    apply,
                    config_id,
                } => import_main(
                    cli,
                    *from,
                    file,
                    base.as_deref(),
                    *apply,
                    config_id.as_deref(),
                )?,
                _ => unreachable!("only offline commands have no request"),
            });
        }
    };
    let mut client = Client::connect(&cli.socket, cli.timeout)?;

    // The first line of `list` names lbd's version and config generation;
    // a refusal to tell just leaves it out.
    let status = match (&cli.cmd, cli.json) {
        (Cmd::List { .. }, false) => match client.call(Request::Status) {
            Ok(Response::Status(st)) => Some(st),
            Ok(_) | Err(CtlError::Api(_)) => None,
            Err(e) => return Err(e),
        },
        _ => None,
    };

    let answer = client.call(request)?;
    match (&cli.cmd, answer) {
        (
            Cmd::List {
                stats, rate, exact, ..
            },
            Response::Services(v),
        ) => {
            if cli.json {
                emit_json(&v);
            } else {
                let mode = if *stats {
                    ListMode::Stats
                } else if *rate {
                    ListMode::Rate
                } else {
                    ListMode::Plain
                };
                emit(&format::services(status.as_ref(), &v, mode, *exact));
            }
        }
        (Cmd::Conns(_), Response::Conns(list)) => {
            if cli.json {
                emit_json(&list);
            } else {
                emit(&format::conns(&list));
                if let Some(note) = format::conns_note(&list) {
                    eprintln!("{note}");
                }
            }
        }
        (Cmd::Director(DirectorCmd::Drain { wait, no_wait }), Response::Drain(first)) => {
            return drain_wait(&mut client, first, (!*no_wait).then_some(*wait), cli.json);
        }
        (Cmd::Director(DirectorCmd::Resume), r @ Response::Done) => {
            if cli.json {
                emit_json(&r);
            } else {
                emit("resumed: the VIPs are announced again (those with a live real server)\n");
            }
        }
        (Cmd::Status, Response::Status(st)) => {
            if cli.json {
                emit_json(&st);
            } else {
                emit(&format::status(&st));
            }
        }
        (Cmd::Timeouts { set: None }, Response::Timeouts(t)) => {
            if cli.json {
                emit_json(&t);
            } else {
                emit(&format::timeouts(&t));
            }
        }
        (Cmd::Save, Response::Config(ron)) => {
            if cli.json {
                emit_json(&ron);
            } else if ron.ends_with('\n') {
                emit(&ron);
            } else {
                emit(&format!("{ron}\n"));
            }
        }
        (Cmd::Validate { file, .. }, Response::Valid) => {
            if cli.json {
                emit_json(&Response::Valid);
            } else {
                emit(&format!("{}: valid (checked by lbd)\n", file.display()));
            }
        }
        (
            Cmd::Service(_)
            | Cmd::Real(_)
            | Cmd::Clear
            | Cmd::Zero
            | Cmd::Timeouts { set: Some(_) }
            | Cmd::Restore { .. }
            | Cmd::Reload,
            r @ (Response::Applied { .. } | Response::Done),
        ) => {
            if cli.json {
                emit_json(&r);
            } else if let Response::Applied { generation } = r {
                emit(&format!(
                    "applied (configuration generation {generation})\n"
                ));
            }
        }
        (cmd, other) => return Err(unexpected(command_name(cmd), other)),
    }
    Ok(exit::OK)
}

/// `director drain`: ask for the drain's progress until the traffic has
/// moved or `wait` has passed, then report.
fn drain_wait(
    client: &mut Client,
    first: DrainReport,
    wait: Option<std::time::Duration>,
    json: bool,
) -> Result<u8, CtlError> {
    let until = wait.map(|w| std::time::Instant::now() + w);
    let mut last = first;
    while let Some(until) = until {
        if last.moved || std::time::Instant::now() >= until {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        last = match client.call(Request::DrainStatus)? {
            Response::Drain(d) => d,
            other => return Err(unexpected("director drain", other)),
        };
    }
    if json {
        emit_json(&last);
    } else {
        emit(&format::drain(&last, wait.is_some()));
    }
    Ok(if last.moved || wait.is_none() {
        exit::OK
    } else {
        exit::NOT_MOVED
    })
}

fn command_name(cmd: &Cmd) -> &'static str {
    match cmd {
        Cmd::Service(_) => "service",
        Cmd::Real(_) => "real",
        Cmd::List { .. } => "list",
        Cmd::Conns(_) => "conns",
        Cmd::Clear => "clear",
        Cmd::Zero => "zero",
        Cmd::Timeouts { .. } => "timeouts",
        Cmd::Save => "save",
        Cmd::Restore { .. } => "restore",
        Cmd::Validate { .. } => "validate",
        Cmd::Status => "status",
        Cmd::Reload => "reload",
        Cmd::Director(_) => "director",
        Cmd::Completions { .. } => "completions",
        Cmd::Man => "man",
        Cmd::Ipvsadm { .. } => "ipvsadm",
        Cmd::Import { .. } => "import",
    }
}

/// Prints an error as lbctl does: the message, then a hint.
fn report(prog: &str, e: &CtlError) -> u8 {
    eprintln!("{prog}: {e}");
    if let Some(hint) = e.hint() {
        eprintln!("{prog}: hint: {hint}");
    }
    e.exit_code()
}

/// `lbctl ipvsadm ARGS` (or lbctl invoked as `ipvsadm`): parse ipvsadm's
/// line, run it against lbd, print what ipvsadm would.
fn ipvsadm_main(prog: &str, cli: &Cli, args: &[String]) -> u8 {
    for note in ipvsadm::dash_notes(args) {
        eprintln!("{prog}: note: {note}");
    }
    let cmd = match ipvsadm::parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{prog}: {e}");
            eprintln!("{prog}: hint: `{prog} --help` lists what is supported");
            return exit::USAGE;
        }
    };
    if cli.json && !matches!(cmd, ipvsadm::Command::Help | ipvsadm::Command::Version) {
        eprintln!(
            "{prog}: --json does not apply: ipvsadm's command line prints ipvsadm's text; \
             `lbctl --json list` gives JSON"
        );
        return exit::USAGE;
    }
    let (socket, timeout) = (cli.socket.clone(), cli.timeout);
    let mut connect = || Client::connect(&socket, timeout);
    let mut stdin = || read_text(Path::new("-"));
    match ipvsadm::run::run(&cmd, &mut connect, &mut stdin) {
        Ok(out) => {
            emit(&out.stdout);
            for n in out.notes {
                eprintln!("{prog}: note: {n}");
            }
            exit::OK
        }
        Err(e) => report(prog, &e),
    }
}

/// `lbctl import FORMAT FILE [--base FILE | --apply]`.
fn import_main(
    cli: &Cli,
    from: import::Format,
    file: &Path,
    base: Option<&Path>,
    apply: bool,
    config_id: Option<&str>,
) -> Result<u8, CtlError> {
    let text = read_text(file)?;
    let shown = if file == Path::new("-") {
        "<stdin>".to_string()
    } else {
        file.display().to_string()
    };
    let imported = import::import(from, file, &shown, &text, config_id)
        .map_err(|e| CtlError::Input(e.to_string()))?;
    let origin = format!("{} {shown}", from.name());
    if apply {
        let mut client = Client::connect(&cli.socket, cli.timeout)?;
        let running = match client.call(Request::Save)? {
            Response::Config(ron) => lb_api::config::parse(&ron, "lbd's running configuration")
                .map_err(|e| CtlError::Input(e.to_string()))?,
            other => return Err(unexpected("save", other)),
        };
        let mut rendered = import::render(&imported, Some(&running), &origin);
        // VRRP and sync are read when lbd starts: keep the running ones.
        for (section, differs) in [
            (
                "vrrp",
                imported.vrrp.is_some() && rendered.config.vrrp != running.vrrp,
            ),
            (
                "vrrp6",
                imported.vrrp6.is_some() && rendered.config.vrrp6 != running.vrrp6,
            ),
            (
                "sync",
                imported.sync.is_some() && rendered.config.sync != running.sync,
            ),
        ] {
            if differs {
                rendered.notes.push(import::Note {
                    loc: None,
                    text: format!(
                        "{section}: not applied: lbd reads its {section} section when it starts; \
                         `lbctl import {} {shown} --base FILE` writes a configuration to \
                         restart lbd with",
                        from.name()
                    ),
                });
            }
        }
        rendered.config.vrrp = running.vrrp.clone();
        rendered.config.vrrp6 = running.vrrp6.clone();
        rendered.config.sync = running.sync.clone();
        for n in &rendered.notes {
            eprintln!("lbctl import: note: {n}");
        }
        let ron = lb_api::config::to_ron_string(&rendered.config);
        return match client.call(Request::Restore { ron })? {
            r @ Response::Applied { generation } => {
                if cli.json {
                    emit_json(&r);
                } else {
                    emit(&format!(
                        "applied (configuration generation {generation}): {} services\n",
                        rendered.config.services.len()
                    ));
                }
                Ok(exit::OK)
            }
            other => Err(unexpected("restore", other)),
        };
    }
    let base_cfg = match base {
        None => None,
        Some(b) => Some(lb_api::config::load(b).map_err(|e| CtlError::Input(e.to_string()))?),
    };
    let rendered = import::render(&imported, base_cfg.as_ref(), &origin);
    emit(&rendered.text);
    for n in &rendered.notes {
        eprintln!("lbctl import: note: {n}");
    }
    if rendered.placeholder {
        eprintln!(
            "lbctl import: note: the ports section is a placeholder: fill it in (or use --base \
             FILE or --apply)"
        );
        return Ok(exit::OK);
    }
    let problems = lb_api::config::validate(&rendered.config);
    if problems.is_empty() {
        return Ok(exit::OK);
    }
    for p in problems {
        eprintln!("lbctl import: invalid: {}: {}", p.field, p.message);
    }
    Ok(exit::INVALID)
}

/// Global options that may come before `ipvsadm`, and whether each takes a
/// value.
const GLOBALS: [(&str, bool); 3] = [("--socket", true), ("--timeout", true), ("--json", false)];

/// Splits `lbctl [GLOBALS] ipvsadm ARGS` into the part clap reads and
/// ipvsadm's arguments, which clap must not see: ipvsadm's `--timeout` is
/// not lbctl's, and `-r`, `-n`, `-Ln` are not lbctl's options.
fn split_ipvsadm(argv: &[OsString]) -> Option<(Vec<OsString>, Vec<String>)> {
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].to_string_lossy();
        if a == "ipvsadm" {
            let mut head = argv[..i].to_vec();
            head.push(OsString::from("ipvsadm"));
            let rest = argv[i + 1..]
                .iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect();
            return Some((head, rest));
        }
        match GLOBALS
            .iter()
            .find(|(g, _)| a == *g || a.starts_with(&format!("{g}=")))
        {
            Some((g, takes)) => {
                i += if *takes && a == *g { 2 } else { 1 };
            }
            None => return None,
        }
    }
    None
}

/// lbctl installed under ipvsadm's names: `ipvsadm ARGS`, `ipvsadm-save
/// [-n]` (-S) and `ipvsadm-restore` (-R). Socket and timeout come from
/// LBCTL_SOCKET and the defaults, since ipvsadm has no options for them.
fn as_ipvsadm(argv: &[OsString]) -> Option<(String, Vec<String>)> {
    let name = Path::new(argv.first()?)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    let rest: Vec<String> = argv[1..]
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let args = match name.as_str() {
        "ipvsadm" => rest,
        "ipvsadm-save" => [vec!["-S".to_string()], rest].concat(),
        "ipvsadm-restore" => [vec!["-R".to_string()], rest].concat(),
        _ => return None,
    };
    Some((name, args))
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if let Some((prog, args)) = as_ipvsadm(&argv) {
        let cli = match Cli::try_parse_from(["lbctl", "ipvsadm"]) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(exit::USAGE);
            }
        };
        return ExitCode::from(ipvsadm_main(&prog, &cli, &args));
    }
    if let Some((head, args)) = split_ipvsadm(&argv) {
        return match Cli::try_parse_from(head) {
            Ok(cli) => ExitCode::from(ipvsadm_main("lbctl ipvsadm", &cli, &args)),
            Err(e) => {
                let _ = e.print();
                ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 })
            }
        };
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and --version go to stdout with 0; usage errors exit 64,
            // not clap's 2, which means "invalid configuration" here.
            let _ = e.print();
            if e.use_stderr() {
                if let Some(hint) = ipvsadm_hint(&argv) {
                    eprintln!("lbctl: hint: {hint}");
                }
            }
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lbctl: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("lbctl: hint: {hint}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// A hint for a refused command line that looks like ipvsadm's.
fn ipvsadm_hint(argv: &[OsString]) -> Option<String> {
    let words: Vec<String> = argv[1..]
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let ipvsadm_like = words.iter().any(|w| {
        let w = ipvsadm::ascii_dashes(w).0;
        matches!(
            w.as_str(),
            "-A" | "-E"
                | "-D"
                | "-a"
                | "-e"
                | "-d"
                | "-C"
                | "-L"
                | "-l"
                | "-Ln"
                | "-ln"
                | "-Lnc"
                | "-Z"
                | "-S"
                | "-R"
                | "-r"
                | "-g"
                | "-c"
                | "--set"
                | "--save"
                | "--restore"
                | "--add-service"
                | "--add-server"
        ) || (words.first().is_some_and(|f| f == "list" || f == "ls") && w == "--timeout")
    });
    ipvsadm_like.then(|| {
        let line: Vec<&str> = words
            .iter()
            .map(String::as_str)
            .skip_while(|w| {
                matches!(
                    *w,
                    "list" | "ls" | "service" | "svc" | "real" | "rs" | "add" | "edit" | "del"
                )
            })
            .collect();
        format!(
            "that looks like ipvsadm's syntax: `lbctl ipvsadm {}` takes it as ipvsadm does \
             (`lbctl ipvsadm --help`)",
            line.join(" ")
        )
    })
}

#[cfg(test)]
mod tests;
