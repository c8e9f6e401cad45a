//! Carrying out an ipvsadm command against lbd: each one becomes lbctl's
//! requests (the same ones `lbctl service`, `real`, `list`... send), and
//! the answers are printed as ipvsadm prints them. Changes print nothing,
//! as ipvsadm's do.

use lb_api::config::{self, Config};
use lb_api::protocol::{
    ConnFilter, ErrorKind, PersistenceChange, RealEdit, RemoveMode, Request, Response, ServiceEdit,
    TimeoutEdit,
};

use super::rules::{self, ApplyError};
use super::{listing, Command, IpvsError, ListWhat, ServiceRef, HELP};
use crate::client::{Client, CtlError};

/// What a command printed: standard output, and notes for standard error.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub notes: Vec<String>,
}

fn refused(e: IpvsError) -> CtlError {
    CtlError::Usage(e.to_string())
}

fn key(s: ServiceRef) -> Result<lb_api::protocol::ServiceKey, CtlError> {
    Ok(s.key())
}

fn unexpected(request: &'static str, got: Response) -> CtlError {
    let mut got = format!("{got:?}");
    got.truncate(200);
    CtlError::Unexpected { request, got }
}

/// The request a change sends (`None` for commands that are not a single
/// change: listings, -S, -R, -h, -v).
pub fn change_request(cmd: &Command) -> Result<Option<Request>, CtlError> {
    Ok(Some(match cmd {
        Command::AddService(spec) => {
            let k = key(spec.service)?;
            Request::AddService(rules::new_service(k, spec))
        }
        // ipvsadm -E sets the service as given: what is left out takes
        // ipvsadm's default (wlc, not persistent).
        Command::EditService(spec) => Request::EditService {
            key: key(spec.service)?,
            edit: ServiceEdit {
                scheduler: Some(spec.scheduler),
                persistence: Some(match spec.persistence {
                    Some(p) => PersistenceChange::Set(p),
                    None => PersistenceChange::Off,
                }),
            },
        },
        Command::DeleteService(s) => Request::DeleteService(key(*s)?),
        Command::AddServer(spec) => {
            let k = key(spec.service)?;
            Request::AddReal {
                service: k,
                real: rules::new_real(spec, &k),
            }
        }
        // ipvsadm -e sets weight and method as given (else -w 1, -g).
        Command::EditServer(spec) => Request::EditReal {
            service: key(spec.service)?,
            address: spec.address,
            edit: RealEdit {
                weight: Some(spec.weight),
                forward: Some(spec.forward),
            },
        },
        Command::DeleteServer { service, address } => Request::DeleteReal {
            service: key(*service)?,
            address: *address,
            mode: RemoveMode::Immediate,
        },
        Command::Clear => Request::Clear,
        Command::Zero(None) => Request::Zero,
        Command::Zero(Some(s)) => {
            key(*s)?;
            return Err(refused(IpvsError::Unsupported {
                what: format!("`-Z` for one service ({s})"),
                why: "lbd zeroes all counters at once: run `-Z` alone".into(),
            }));
        }
        Command::SetTimeouts { tcp, tcpfin, udp } => {
            let nz = |v: u32| (v != 0).then_some(v);
            Request::SetTimeouts(TimeoutEdit {
                tcp: nz(*tcp),
                tcpfin: nz(*tcpfin),
                udp: nz(*udp),
            })
        }
        Command::List(_) | Command::Save | Command::Restore | Command::Help | Command::Version => {
            return Ok(None)
        }
    }))
}

/// The running configuration, parsed.
fn running_config(client: &mut Client) -> Result<Config, CtlError> {
    match client.call(Request::Save)? {
        Response::Config(ron) => config::parse(&ron, "lbd's running configuration")
            .map_err(|e| CtlError::Input(e.to_string())),
        other => Err(unexpected("save", other)),
    }
}

/// The rules of `text` (ipvsadm-save's format) applied to `cfg`; the first
/// failing line is the error, with its number. The configuration's
/// `fwmarks` (what iptables rules are to IPVS) are not rules: they stay.
pub fn restore_into(cfg: &mut Config, text: &str) -> Result<(), CtlError> {
    let parsed =
        rules::parse_rules(text).map_err(|(n, e)| CtlError::Usage(format!("line {n}: {e}")))?;
    for (n, cmd) in parsed {
        rules::apply(&mut cfg.services, &mut cfg.timeouts, &cmd).map_err(|e| {
            let kind = match e {
                ApplyError::Exists(_) => ErrorKind::AlreadyExists,
                ApplyError::NotFound(_) => ErrorKind::NotFound,
                ApplyError::NotARule(_) => return CtlError::Usage(format!("line {n}: {e}")),
            };
            CtlError::Api(lb_api::protocol::ApiError::new(
                kind,
                format!("line {n}: {e}"),
            ))
        })?;
    }
    Ok(())
}

/// Runs `cmd`. `connect` opens a connection to lbd when one is needed;
/// `stdin` is read by `-R`.
pub fn run(
    cmd: &Command,
    connect: &mut dyn FnMut() -> Result<Client, CtlError>,
    stdin: &mut dyn FnMut() -> Result<String, CtlError>,
) -> Result<Output, CtlError> {
    let mut out = Output::default();
    if let Some(req) = change_request(cmd)? {
        match connect()?.call(req)? {
            Response::Applied { .. } | Response::Done => return Ok(out),
            other => return Err(unexpected("ipvsadm", other)),
        }
    }
    match cmd {
        Command::Help => out.stdout = format!("{HELP}\n"),
        Command::Version => {
            out.stdout = format!(
                "lbctl {} (ipvsadm's command line for lbd, IPVS {})\n",
                env!("CARGO_PKG_VERSION"),
                listing::IPVS_VERSION
            )
        }
        Command::Save => {
            let cfg = running_config(&mut connect()?)?;
            let (text, notes) = rules::save(&cfg.services, true);
            out.stdout = text;
            out.notes = notes;
        }
        Command::Restore => {
            let text = stdin()?;
            let mut client = connect()?;
            let mut cfg = running_config(&mut client)?;
            restore_into(&mut cfg, &text)?;
            let ron = config::to_ron_string(&cfg);
            match client.call(Request::Restore { ron })? {
                Response::Applied { .. } | Response::Done => {}
                other => return Err(unexpected("restore", other)),
            }
        }
        Command::List(spec) => {
            let mut client = connect()?;
            match spec.what {
                ListWhat::Table => {
                    let size = if spec.service.is_none() {
                        match client.call(Request::Status) {
                            Ok(Response::Status(st)) => Some(st.conn_capacity),
                            Ok(_) | Err(CtlError::Api(_)) => None,
                            Err(e) => return Err(e),
                        }
                    } else {
                        None
                    };
                    let mut services = match client.call(Request::List)? {
                        Response::Services(v) => v,
                        other => return Err(unexpected("list", other)),
                    };
                    if let Some(k) = spec.service.map(ServiceRef::key) {
                        services.retain(|s| s.key == k);
                        if services.is_empty() {
                            return Err(CtlError::Api(lb_api::protocol::ApiError::new(
                                ErrorKind::NotFound,
                                format!("no service {k}"),
                            )));
                        }
                    }
                    // The configured weights, which the listing shows
                    // (lbd's own are those of the moment).
                    let configured = running_config(&mut client).ok().map(|cfg| {
                        let mut w = listing::Weights::new();
                        for s in &cfg.services {
                            let k = lb_api::protocol::ServiceKey::of(s);
                            for r in &s.real_servers {
                                w.insert((k, r.address), r.weight);
                            }
                        }
                        w
                    });
                    out.stdout = listing::table(size, &services, spec, configured.as_ref());
                }
                ListWhat::Connections => {
                    let req = Request::Conns {
                        filter: ConnFilter::default(),
                        limit: u32::MAX,
                    };
                    match client.call(req)? {
                        Response::Conns(list) => {
                            out.stdout = listing::connections(&list);
                            if list.truncated {
                                out.notes.push(format!(
                                    "{} of {} connections shown (lbd's listing limit)",
                                    list.conns.len(),
                                    list.total
                                ));
                            }
                        }
                        other => return Err(unexpected("list connections", other)),
                    }
                }
                ListWhat::Timeout => match client.call(Request::GetTimeouts)? {
                    Response::Timeouts(t) => out.stdout = listing::timeouts(&t),
                    other => return Err(unexpected("timeouts", other)),
                },
                ListWhat::Daemon => {
                    let cfg = running_config(&mut client)?;
                    out.stdout = listing::daemon(cfg.sync.as_ref());
                }
            }
        }
        _ => unreachable!("every change returned above"),
    }
    Ok(out)
}
