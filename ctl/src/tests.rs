//! Command-line tests: every verb parses to the right request, and bad input
//! is refused with a message that says why.

use super::*;
use clap::error::ErrorKind as ClapKind;
use lb_api::config::Scheduler;

fn parse(args: &[&str]) -> Cli {
    let mut v = vec!["lbctl"];
    v.extend_from_slice(args);
    match Cli::try_parse_from(v) {
        Ok(c) => c,
        Err(e) => panic!("{args:?} did not parse: {e}"),
    }
}

fn req(args: &[&str]) -> Request {
    to_request(&parse(args).cmd)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .unwrap_or_else(|| panic!("{args:?} sends no request"))
}

/// The error clap gives, rendered, for a command line that must not parse.
fn refused(args: &[&str]) -> (ClapKind, String) {
    let mut v = vec!["lbctl"];
    v.extend_from_slice(args);
    match Cli::try_parse_from(v) {
        Ok(c) => panic!("{args:?} parsed: {c:?}"),
        Err(e) => {
            assert!(e.use_stderr(), "{args:?} is an error, not help");
            (e.kind(), e.to_string())
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp_key(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::addr(Protocol::Tcp, ip(vip), port)
}

#[test]
fn the_command_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn global_options() {
    let c = parse(&[
        "--socket",
        "/tmp/x.sock",
        "--timeout",
        "0.5",
        "--json",
        "list",
    ]);
    assert_eq!(c.socket, PathBuf::from("/tmp/x.sock"));
    assert_eq!(c.timeout, Duration::from_millis(500));
    assert!(c.json);
    // Global options also go after the verb.
    let c = parse(&["list", "--json", "--socket", "/s"]);
    assert!(c.json);
    assert_eq!(c.socket, PathBuf::from("/s"));
    let c = parse(&["status"]);
    assert_eq!(c.timeout, Duration::from_secs(5));
    assert!(!c.json);
    if std::env::var_os("LBCTL_SOCKET").is_none() {
        assert_eq!(c.socket, PathBuf::from(DEFAULT_SOCKET));
    }
    let (_, msg) = refused(&["--timeout", "0", "list"]);
    assert!(msg.contains("out of range"), "{msg}");
    let (_, msg) = refused(&["--timeout", "soon", "list"]);
    assert!(msg.contains("not a number of seconds"), "{msg}");
}

#[test]
fn service_add() {
    assert_eq!(
        req(&["service", "add", "198.18.0.100:80", "--scheduler", "rr"]),
        Request::AddService(ServiceConfig {
            vip: ip("198.18.0.100"),
            port: 80,
            protocol: Protocol::Tcp,
            scheduler: Scheduler::Rr,
            real_servers: vec![],
            persistence: None,
            health_check: None,
            fallback: None,
            sloppy_tcp: false,
            ecmp: false,
            fwmark: None,
        })
    );
    // Default scheduler is wlc; --udp, -s and the svc alias.
    assert_eq!(
        req(&["svc", "add", "198.18.0.100:53", "--udp"]),
        Request::AddService(ServiceConfig {
            vip: ip("198.18.0.100"),
            port: 53,
            protocol: Protocol::Udp,
            scheduler: Scheduler::Wlc,
            real_servers: vec![],
            persistence: None,
            health_check: None,
            fallback: None,
            sloppy_tcp: false,
            ecmp: false,
            fwmark: None,
        })
    );
    for (name, want) in [
        ("rr", Scheduler::Rr),
        ("wrr", Scheduler::Wrr),
        ("lc", Scheduler::Lc),
        ("wlc", Scheduler::Wlc),
        ("WLC", Scheduler::Wlc),
        ("sh", Scheduler::Sh),
        ("mh", Scheduler::Mh),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
        ("fo", Scheduler::Fo),
    ] {
        match req(&["service", "add", "10.0.0.1:443", "-s", name, "-t"]) {
            Request::AddService(s) => assert_eq!(s.scheduler, want, "{name}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn service_add_persistent() {
    let persistence = |args: &[&str]| match req(args) {
        Request::AddService(s) => s.persistence.map(|p| (p.timeout, p.netmask)),
        other => panic!("{other:?}"),
    };
    fn with(extra: &[&'static str]) -> Vec<&'static str> {
        [&["service", "add", "198.18.0.100:80"][..], extra].concat()
    }
    assert_eq!(persistence(&with(&[])), None);
    // -p alone: IPVS's default 300 s; -M as a prefix or a dotted mask.
    assert_eq!(persistence(&with(&["-p"])), Some((300, 32)));
    assert_eq!(persistence(&with(&["-p", "60"])), Some((60, 32)));
    assert_eq!(
        persistence(&with(&["--persistent", "60", "-M", "24"])),
        Some((60, 24))
    );
    assert_eq!(
        persistence(&with(&["-p", "-M", "255.255.0.0", "-s", "rr"])),
        Some((300, 16))
    );
    assert_eq!(persistence(&with(&["-s", "rr", "-p"])), Some((300, 32)));
    // All ports: VIP:0.
    match req(&["service", "add", "198.18.0.100:0", "-p", "600"]) {
        Request::AddService(s) => {
            assert_eq!(s.port, 0);
            assert_eq!(s.persistence.unwrap().timeout, 600);
        }
        other => panic!("{other:?}"),
    }
    let (kind, _) = refused(&with(&["-M", "24"]));
    assert_eq!(kind, ClapKind::MissingRequiredArgument);
    let (_, msg) = refused(&with(&["-p", "0"]));
    assert!(msg.contains("0"), "{msg}");
    // -M's meaning depends on the VIP's family, known once both are read.
    let e = to_request(&parse(&with(&["-p", "-M", "40"])).cmd).unwrap_err();
    assert!(e.to_string().contains("out of range (0 to 32)"), "{e}");
    assert!(matches!(e, CtlError::Usage(_)), "{e:?}");
}

#[test]
fn ipv6_addresses_in_brackets_everywhere() {
    let v6 = tcp_key("2001:db8::100", 80);
    match req(&["service", "add", "[2001:db8::100]:80", "-p", "-M", "64"]) {
        Request::AddService(s) => {
            assert_eq!((s.vip, s.port), (ip("2001:db8::100"), 80));
            let p = s.persistence.unwrap();
            assert_eq!((p.timeout, p.prefix), (300, Some(64)));
        }
        other => panic!("{other:?}"),
    }
    let e = to_request(
        &parse(&[
            "service",
            "add",
            "[2001:db8::100]:80",
            "-p",
            "-M",
            "255.255.255.0",
        ])
        .cmd,
    )
    .unwrap_err();
    assert!(e.to_string().contains("IPv6 prefix length"), "{e}");
    match req(&[
        "real",
        "add",
        "[2001:db8::100]:80",
        "[2001:db8::10]:80",
        "-w",
        "2",
    ]) {
        Request::AddReal { service, real } => {
            assert_eq!(service, v6);
            assert_eq!(
                (real.address, real.port, real.weight),
                (ip("2001:db8::10"), Some(80), 2)
            );
        }
        other => panic!("{other:?}"),
    }
    match req(&["real", "del", "[2001:db8::100]:80", "2001:db8::10"]) {
        Request::DeleteReal {
            service, address, ..
        } => {
            assert_eq!((service, address), (v6, ip("2001:db8::10")));
        }
        other => panic!("{other:?}"),
    }
    match req(&[
        "conns",
        "--vip",
        "2001:db8::100",
        "--client",
        "[2001:db8::1]",
    ]) {
        Request::Conns { filter, .. } => {
            assert_eq!(filter.vip, Some(ip("2001:db8::100")));
            assert_eq!(filter.client, Some(ip("2001:db8::1")));
        }
        other => panic!("{other:?}"),
    }
    let (_, msg) = refused(&["service", "add", "2001:db8::100:80"]);
    assert!(msg.contains("brackets"), "{msg}");
    let (_, msg) = refused(&["service", "add", "[2001:db8::100:80"]);
    assert!(msg.contains("needs its `]`"), "{msg}");
}

#[test]
fn service_edit_persistence() {
    let edit = |args: &[&str]| match req(args) {
        Request::EditService { edit, .. } => edit,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        edit(&[
            "service",
            "edit",
            "198.18.0.100:80",
            "-p",
            "120",
            "-M",
            "24"
        ]),
        ServiceEdit {
            scheduler: None,
            persistence: Some(PersistenceChange::Set(Persistence::v4(120, 24))),
        }
    );
    assert_eq!(
        edit(&[
            "service",
            "edit",
            "198.18.0.100:80",
            "--no-persistent",
            "-s",
            "rr"
        ]),
        ServiceEdit {
            scheduler: Some(Scheduler::Rr),
            persistence: Some(PersistenceChange::Off),
        }
    );
    let (kind, _) = refused(&[
        "service",
        "edit",
        "198.18.0.100:80",
        "-p",
        "--no-persistent",
    ]);
    assert_eq!(kind, ClapKind::ArgumentConflict);
}

#[test]
fn service_add_refuses_bad_input() {
    let (kind, msg) = refused(&["service", "add", "198.18.0.100"]);
    assert_eq!(kind, ClapKind::ValueValidation);
    assert!(msg.contains("has no port"), "{msg}");
    let (_, msg) = refused(&["service", "add", "198.18.0.256:80"]);
    assert!(msg.contains("not an IP address"), "{msg}");
    let (_, msg) = refused(&["service", "add", "198.18.0.100:99999"]);
    assert!(msg.contains("out of range"), "{msg}");
    let (kind, msg) = refused(&["service", "add", "198.18.0.100:80", "-s", "dh"]);
    assert_eq!(kind, ClapKind::InvalidValue);
    assert!(
        msg.contains("possible values: rr, wrr, lc, wlc, sh, mh, sed, nq, fo"),
        "{msg}"
    );
    let (kind, _) = refused(&["service", "add"]);
    assert_eq!(kind, ClapKind::MissingRequiredArgument);
    let (kind, _) = refused(&["service", "add", "198.18.0.100:80", "--udp", "--tcp"]);
    assert_eq!(kind, ClapKind::ArgumentConflict);
    let (kind, _) = refused(&["service", "add", "198.18.0.100:80", "extra"]);
    assert_eq!(kind, ClapKind::UnknownArgument);
}

#[test]
fn service_edit_and_del() {
    assert_eq!(
        req(&["service", "edit", "198.18.0.100:80", "--scheduler", "wrr"]),
        Request::EditService {
            key: tcp_key("198.18.0.100", 80),
            edit: ServiceEdit {
                scheduler: Some(Scheduler::Wrr),
                persistence: None,
            },
        }
    );
    assert_eq!(
        req(&["service", "edit", "198.18.0.100:53", "--udp", "-s", "lc"]),
        Request::EditService {
            key: ServiceKey::addr(Protocol::Udp, ip("198.18.0.100"), 53),
            edit: ServiceEdit {
                scheduler: Some(Scheduler::Lc),
                persistence: None,
            },
        }
    );
    // Nothing to change: refused.
    let (kind, _) = refused(&["service", "edit", "198.18.0.100:80"]);
    assert_eq!(kind, ClapKind::MissingRequiredArgument);

    assert_eq!(
        req(&["service", "del", "198.18.0.100:80"]),
        Request::DeleteService(tcp_key("198.18.0.100", 80))
    );
    for alias in ["delete", "rm"] {
        assert_eq!(
            req(&["service", alias, "198.18.0.100:53", "-u"]),
            Request::DeleteService(ServiceKey::addr(Protocol::Udp, ip("198.18.0.100"), 53))
        );
    }
    let (kind, _) = refused(&["service", "del"]);
    assert_eq!(kind, ClapKind::MissingRequiredArgument);
    let (_, msg) = refused(&["service", "del", "x:80"]);
    assert!(msg.contains("not an IP address"), "{msg}");
}

#[test]
fn real_add() {
    assert_eq!(
        req(&["real", "add", "198.18.0.100:80", "198.18.0.11"]),
        Request::AddReal {
            service: tcp_key("198.18.0.100", 80),
            real: RealServerConfig {
                address: ip("198.18.0.11"),
                port: None,
                weight: 1,
                forward: Forward::Dr,
                health_check: None,
            },
        }
    );
    assert_eq!(
        req(&[
            "rs",
            "add",
            "198.18.0.100:53",
            "198.18.0.12:53",
            "--weight",
            "3",
            "-g",
            "--udp"
        ]),
        Request::AddReal {
            service: ServiceKey::addr(Protocol::Udp, ip("198.18.0.100"), 53),
            real: RealServerConfig {
                address: ip("198.18.0.12"),
                port: Some(53),
                weight: 3,
                forward: Forward::Dr,
                health_check: None,
            },
        }
    );
    match req(&["real", "add", "10.0.0.1:80", "10.0.0.2", "-w", "0", "--dr"]) {
        Request::AddReal { real, .. } => assert_eq!(real.weight, 0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn real_add_refuses_bad_input() {
    let (kind, _) = refused(&["real", "add", "198.18.0.100:80"]);
    assert_eq!(kind, ClapKind::MissingRequiredArgument);
    let (_, msg) = refused(&["real", "add", "198.18.0.100:80", "rs1"]);
    assert!(msg.contains("not an IP address"), "{msg}");
    let (_, msg) = refused(&["real", "add", "198.18.0.100:80", "198.18.0.11:0"]);
    assert!(msg.contains("port 0"), "{msg}");
    let (kind, _) = refused(&[
        "real",
        "add",
        "198.18.0.100:80",
        "198.18.0.11",
        "-w",
        "4294967296",
    ]);
    assert_eq!(kind, ClapKind::ValueValidation);
    let (kind, _) = refused(&["real", "add", "198.18.0.100:80", "198.18.0.11", "-w", "-1"]);
    assert!(
        matches!(kind, ClapKind::ValueValidation | ClapKind::UnknownArgument),
        "{kind:?}"
    );
    let (kind, _) = refused(&["real", "add", "198.18.0.100:80", "198.18.0.11", "-w"]);
    assert_eq!(kind, ClapKind::InvalidValue);
}

#[test]
fn real_edit() {
    assert_eq!(
        req(&[
            "real",
            "edit",
            "198.18.0.100:80",
            "198.18.0.11",
            "--weight",
            "5"
        ]),
        Request::EditReal {
            service: tcp_key("198.18.0.100", 80),
            address: ip("198.18.0.11"),
            edit: RealEdit {
                weight: Some(5),
                forward: None
            },
        }
    );
    assert_eq!(
        req(&["real", "set", "198.18.0.100:80", "198.18.0.11:80", "-g"]),
        Request::EditReal {
            service: tcp_key("198.18.0.100", 80),
            address: ip("198.18.0.11"),
            edit: RealEdit {
                weight: None,
                forward: Some(Forward::Dr)
            },
        }
    );
    // Nothing to change.
    let (kind, _) = refused(&["real", "edit", "198.18.0.100:80", "198.18.0.11"]);
    assert_eq!(kind, ClapKind::MissingRequiredArgument);
    let (kind, _) = refused(&[
        "real",
        "edit",
        "198.18.0.100:80",
        "198.18.0.11",
        "-w",
        "99999999999",
    ]);
    assert_eq!(kind, ClapKind::ValueValidation);
}

#[test]
fn real_del() {
    assert_eq!(
        req(&["real", "del", "198.18.0.100:80", "198.18.0.11"]),
        Request::DeleteReal {
            service: tcp_key("198.18.0.100", 80),
            address: ip("198.18.0.11"),
            mode: RemoveMode::Immediate,
        }
    );
    assert_eq!(
        req(&["server", "rm", "198.18.0.100:80", "198.18.0.11", "--drain"]),
        Request::DeleteReal {
            service: tcp_key("198.18.0.100", 80),
            address: ip("198.18.0.11"),
            mode: RemoveMode::Drain,
        }
    );
    let (kind, _) = refused(&["real", "del", "198.18.0.100:80"]);
    assert_eq!(kind, ClapKind::MissingRequiredArgument);
    let (kind, _) = refused(&["real"]);
    assert_eq!(
        kind,
        ClapKind::DisplayHelpOnMissingArgumentOrSubcommand,
        "a bare group verb shows help as a usage error"
    );
}

#[test]
fn list() {
    assert_eq!(req(&["list"]), Request::List);
    assert_eq!(req(&["ls", "--stats"]), Request::List);
    let c = parse(&["list", "--rate", "--exact"]);
    assert!(matches!(
        c.cmd,
        Cmd::List {
            rate: true,
            exact: true,
            stats: false,
            numeric: false
        }
    ));
    let (kind, _) = refused(&["list", "--stats", "--rate"]);
    assert_eq!(kind, ClapKind::ArgumentConflict);
    // ipvsadm's habit -n (numeric) is accepted: lbctl prints numbers anyway.
    assert!(matches!(
        parse(&["list", "-n"]).cmd,
        Cmd::List { numeric: true, .. }
    ));
    assert_eq!(req(&["conns", "-n"]), req(&["conns"]));
}

#[test]
fn conns() {
    assert_eq!(
        req(&["conns"]),
        Request::Conns {
            filter: ConnFilter::default(),
            limit: 1000
        }
    );
    assert_eq!(
        req(&[
            "connections",
            "--client",
            "198.18.0.1",
            "--vip",
            "198.18.0.100",
            "--vport",
            "80",
            "--real",
            "198.18.0.11",
            "--state",
            "ESTABLISHED",
            "--tcp",
            "--limit",
            "10",
        ]),
        Request::Conns {
            filter: ConnFilter {
                protocol: Some(Protocol::Tcp),
                client: Some(ip("198.18.0.1")),
                vip: Some(ip("198.18.0.100")),
                vport: Some(80),
                real: Some(ip("198.18.0.11")),
                state: Some("ESTABLISHED".into()),
            },
            limit: 10,
        }
    );
    match req(&["conns", "--udp"]) {
        Request::Conns { filter, .. } => assert_eq!(filter.protocol, Some(Protocol::Udp)),
        other => panic!("{other:?}"),
    }
    let (_, msg) = refused(&["conns", "--client", "client1"]);
    assert!(msg.contains("not an IP address"), "{msg}");
    let (kind, _) = refused(&["conns", "--vport", "65536"]);
    assert_eq!(kind, ClapKind::ValueValidation);
    let (kind, _) = refused(&["conns", "--limit", "-5"]);
    assert!(matches!(
        kind,
        ClapKind::ValueValidation | ClapKind::UnknownArgument
    ));
}

#[test]
fn simple_verbs() {
    assert_eq!(req(&["clear"]), Request::Clear);
    assert_eq!(req(&["zero"]), Request::Zero);
    assert_eq!(req(&["save"]), Request::Save);
    assert_eq!(req(&["status"]), Request::Status);
    assert_eq!(req(&["reload"]), Request::Reload);
    assert_eq!(req(&["timeouts"]), Request::GetTimeouts);
    assert_eq!(req(&["timeout"]), Request::GetTimeouts);
    let (kind, _) = refused(&["clear", "now"]);
    assert_eq!(kind, ClapKind::UnknownArgument);
    let (kind, _) = refused(&["frobnicate"]);
    assert_eq!(kind, ClapKind::InvalidSubcommand);
}

#[test]
fn timeouts_set() {
    assert_eq!(
        req(&["timeouts", "set", "900", "120", "300"]),
        Request::SetTimeouts(TimeoutEdit {
            tcp: Some(900),
            tcpfin: Some(120),
            udp: Some(300)
        })
    );
    // 0 leaves a value unchanged, as with ipvsadm --set.
    assert_eq!(
        req(&["timeouts", "set", "0", "60", "0"]),
        Request::SetTimeouts(TimeoutEdit {
            tcp: None,
            tcpfin: Some(60),
            udp: None
        })
    );
    let (kind, _) = refused(&["timeouts", "set", "900", "120"]);
    assert_eq!(kind, ClapKind::MissingRequiredArgument);
    let (kind, _) = refused(&["timeouts", "set", "900", "2m", "300"]);
    assert_eq!(kind, ClapKind::ValueValidation);
}

#[test]
fn files_are_read_locally() {
    let dir = std::env::temp_dir().join(format!("lbctl-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("c.ron");
    std::fs::write(&f, "(ports: [])").unwrap();
    let path = f.to_str().unwrap();
    assert_eq!(
        req(&["restore", path]),
        Request::Restore {
            ron: "(ports: [])".into()
        }
    );
    assert_eq!(
        req(&["validate", path, "--remote"]),
        Request::Validate {
            ron: "(ports: [])".into()
        }
    );
    // Offline validation and completions send nothing.
    assert_eq!(to_request(&parse(&["validate", path]).cmd).unwrap(), None);
    assert_eq!(
        to_request(&parse(&["completions", "bash"]).cmd).unwrap(),
        None
    );
    // A file that cannot be read: exit status 1, naming the file.
    let missing = dir.join("missing.ron");
    let e = to_request(&parse(&["restore", missing.to_str().unwrap()]).cmd).unwrap_err();
    assert_eq!(e.exit_code(), exit::INTERNAL);
    assert!(e.to_string().contains("missing.ron"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_and_completions_arguments() {
    let c = parse(&["validate", "x.ron", "--show"]);
    assert!(matches!(
        c.cmd,
        Cmd::Validate {
            show: true,
            remote: false,
            ..
        }
    ));
    let (kind, _) = refused(&["validate"]);
    assert_eq!(kind, ClapKind::MissingRequiredArgument);
    let (kind, _) = refused(&["validate", "x.ron", "--show", "--remote"]);
    assert_eq!(kind, ClapKind::ArgumentConflict);
    for sh in ["bash", "zsh", "fish"] {
        assert!(matches!(
            parse(&["completions", sh]).cmd,
            Cmd::Completions { .. }
        ));
    }
    let (kind, _) = refused(&["completions", "tcsh"]);
    assert_eq!(kind, ClapKind::InvalidValue);
    let (kind, _) = refused(&["restore"]);
    assert_eq!(kind, ClapKind::MissingRequiredArgument);
}

#[test]
fn help_lists_exit_codes() {
    let help = Cli::command().render_long_help().to_string();
    assert!(help.contains("Exit status:"), "{help}");
    assert!(help.contains("64  usage error"), "{help}");
    assert!(help.contains("7   cannot connect"), "{help}");
}

#[test]
fn real_add_and_edit_tunnel() {
    assert_eq!(
        req(&["real", "add", "198.18.0.100:80", "198.18.0.11", "-i"]),
        Request::AddReal {
            service: tcp_key("198.18.0.100", 80),
            real: RealServerConfig {
                address: ip("198.18.0.11"),
                port: None,
                weight: 1,
                forward: Forward::Tunnel,
                health_check: None,
            },
        }
    );
    for flag in ["--tunnel", "--ipip"] {
        match req(&[
            "real",
            "add",
            "198.18.0.100:80",
            "198.18.0.12",
            flag,
            "-w",
            "3",
        ]) {
            Request::AddReal { real, .. } => {
                assert_eq!((real.forward, real.weight), (Forward::Tunnel, 3))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        req(&["real", "edit", "198.18.0.100:80", "198.18.0.11", "-i"]),
        Request::EditReal {
            service: tcp_key("198.18.0.100", 80),
            address: ip("198.18.0.11"),
            edit: RealEdit {
                weight: None,
                forward: Some(Forward::Tunnel)
            },
        }
    );
    assert_eq!(
        req(&[
            "real",
            "edit",
            "198.18.0.100:80",
            "198.18.0.11",
            "--tunnel",
            "-w",
            "0"
        ]),
        Request::EditReal {
            service: tcp_key("198.18.0.100", 80),
            address: ip("198.18.0.11"),
            edit: RealEdit {
                weight: Some(0),
                forward: Some(Forward::Tunnel)
            },
        }
    );
    // One method at a time.
    let (kind, _) = refused(&["real", "add", "198.18.0.100:80", "198.18.0.11", "-g", "-i"]);
    assert_eq!(kind, ClapKind::ArgumentConflict);
    let (kind, _) = refused(&["real", "edit", "198.18.0.100:80", "198.18.0.11", "-i", "-g"]);
    assert_eq!(kind, ClapKind::ArgumentConflict);
}

#[test]
fn real_add_and_edit_masquerading() {
    assert_eq!(
        req(&["real", "add", "198.18.0.100:80", "198.19.0.11:8080", "-m"]),
        Request::AddReal {
            service: tcp_key("198.18.0.100", 80),
            real: RealServerConfig {
                address: ip("198.19.0.11"),
                port: Some(8080),
                weight: 1,
                forward: Forward::Nat,
                health_check: None,
            },
        }
    );
    for flag in ["--masq", "--nat"] {
        match req(&["real", "edit", "198.18.0.100:80", "198.19.0.11", flag]) {
            Request::EditReal { edit, .. } => assert_eq!(edit.forward, Some(Forward::Nat)),
            other => panic!("{other:?}"),
        }
    }
    // One forwarding method at a time.
    assert!(Cli::try_parse_from([
        "lbctl",
        "real",
        "add",
        "198.18.0.100:80",
        "198.19.0.11",
        "-m",
        "-g"
    ])
    .is_err());
    assert!(Cli::try_parse_from([
        "lbctl",
        "real",
        "add",
        "198.18.0.100:80",
        "198.19.0.11",
        "-m",
        "-i"
    ])
    .is_err());
}
