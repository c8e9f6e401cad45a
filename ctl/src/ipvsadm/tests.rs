//! ipvsadm's command line: the seeds' lines verbatim, ipvsadm's option
//! syntax, refusals that name what lbd lacks, and the rules format.

use super::rules::{self, ApplyError};
use super::run::change_request;
use super::*;
use lb_api::config::{RealServerConfig, ServiceConfig, Timeouts};
use lb_api::protocol::{
    PersistenceChange, RealEdit, RemoveMode, Request, ServiceEdit, TimeoutEdit,
};

fn ok(line: &str) -> Command {
    let words = split_words(line).unwrap();
    parse(&words).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn err(line: &str) -> IpvsError {
    let words = split_words(line).unwrap();
    match parse(&words) {
        Ok(c) => panic!("{line} parsed: {c:?}"),
        Err(e) => e,
    }
}

fn tcp(vip: &str, port: u16) -> ServiceRef {
    ServiceRef::Addr(ServiceKey::addr(Protocol::Tcp, vip.parse().unwrap(), port))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The seeds' lines after the program name, as a shell would split them
/// (redirections are the shell's).
fn seed_lines(file: &str) -> Vec<Vec<String>> {
    let path = format!("{}/tests/data/seeds/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("ipvsadm "))
        .map(|l| {
            split_words(l.split('>').next().unwrap())
                .unwrap()
                .into_iter()
                .skip(1)
                .collect()
        })
        .collect()
}

/// ipvsadm's bracket syntax for IPv6, everywhere an address is taken.
#[test]
fn ipv6_addresses_in_brackets() {
    let v6 = tcp("2001:db8::100", 80);
    assert_eq!(
        ok("-A -t [2001:db8::100]:80 -s rr -p 60 -M 64"),
        Command::AddService(ServiceSpec {
            service: v6,
            scheduler: Scheduler::Rr,
            persistence: Some(Persistence {
                timeout: 60,
                netmask: 32,
                prefix: Some(64),
            }),
        })
    );
    assert_eq!(
        ok("-a -t [2001:db8::100]:80 -r [2001:db8::10]:80 -g -w 2"),
        Command::AddServer(ServerSpec {
            service: v6,
            address: ip("2001:db8::10"),
            port: Some(80),
            forward: Forward::Dr,
            weight: 2,
        })
    );
    // Without a port the brackets may be left out; service names work.
    assert_eq!(
        ok("-d -t [2001:db8::100]:http -r 2001:db8::10"),
        Command::DeleteServer {
            service: v6,
            address: ip("2001:db8::10"),
        }
    );
    assert!(matches!(
        ok("-L -n -u [2001:db8::100]:53"),
        Command::List(ListSpec { service: Some(ServiceRef::Addr(k)), .. })
            if k.vip == ip("2001:db8::100") && k.port == 53
    ));
    for (line, says) in [
        ("-A -t [2001:db8::100:80", "needs its `]`"),
        ("-A -t 2001:db8::100:80x", "in brackets"),
        ("-A -t [198.18.0.1]:80", "not an IP address"),
        ("-A -t [2001:db8::100]:80 -p -M 129", "0 to 128"),
        (
            "-A -t [2001:db8::100]:80 -p -M 255.255.255.0",
            "IPv6 prefix length",
        ),
    ] {
        let e = err(line).to_string();
        assert!(e.contains(says), "{line}: {e}");
    }
}

/// `-S` writes IPv6 as ipvsadm-save does (sorted by protocol first), and
/// `-R` reads it back.
#[test]
fn ipv6_rules_save_and_restore() {
    let text = "-A -t [2001:db8::100]:80 -s rr -p 300 -M 64\n\
                -a -t [2001:db8::100]:80 -r [2001:db8::10]:80 -g -w 1\n\
                -A -u 198.18.0.100:53 -s wlc\n";
    let mut services = Vec::new();
    let mut timeouts = Timeouts::default();
    for (_, c) in rules::parse_rules(text).unwrap() {
        rules::apply(&mut services, &mut timeouts, &c).unwrap();
    }
    let (saved, notes) = rules::save(&services, true);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        saved,
        "-A -t [2001:db8::100]:80 -s rr -p 300 -M 64\n\
         -a -t [2001:db8::100]:80 -r [2001:db8::10]:80 -g -w 1\n\
         -A -u 198.18.0.100:53 -s wlc\n"
    );
}

#[test]
fn seed_001_lines_parse_verbatim() {
    let lines = seed_lines("001-ipvsadm.sh");
    assert_eq!(lines.len(), 5);
    // `ipvsadm –C` with the document's en dash.
    assert_eq!(lines[0], ["\u{2013}C"]);
    assert_eq!(parse(&lines[0]), Ok(Command::Clear));
    assert_eq!(
        dash_notes(&lines[0]),
        ["read `–C` as `-C` (a typographic dash, as in copied documents)"]
    );
    assert_eq!(
        parse(&lines[1]),
        Ok(Command::AddService(ServiceSpec {
            service: tcp("192.168.11.200", 80),
            scheduler: Scheduler::Wlc,
            persistence: None,
        }))
    );
    // `-r RIP` without a port: the service's; -g direct routing.
    for (line, rip) in [(&lines[2], "192.168.11.21"), (&lines[3], "192.168.11.22")] {
        assert_eq!(
            parse(line),
            Ok(Command::AddServer(ServerSpec {
                service: tcp("192.168.11.200", 80),
                address: ip(rip),
                port: None,
                forward: Forward::Dr,
                weight: 1,
            }))
        );
    }
    assert_eq!(
        parse(&lines[4]),
        Ok(Command::List(ListSpec {
            what: ListWhat::Table,
            service: None,
            columns: Columns::Plain,
            exact: false,
            nosort: false,
        }))
    );
}

#[test]
fn seed_002_and_004_lines_parse_verbatim() {
    let lines = seed_lines("002-ipvsadm.sh");
    // ipvsadm-save is a program of its own; `ipvsadm --save` is -S.
    assert_eq!(lines.len(), 6);
    assert_eq!(parse(&lines[0]), Ok(Command::Save));
    assert_eq!(parse(&lines[1]), Ok(Command::Clear));
    assert!(matches!(parse(&lines[2]), Ok(Command::AddService(s)) if s.scheduler == Scheduler::Rr));
    assert_eq!(
        parse(&lines[3]),
        Ok(Command::AddServer(ServerSpec {
            service: tcp("192.168.200.188", 80),
            address: ip("192.168.200.60"),
            port: Some(80),
            forward: Forward::Dr,
            weight: 1,
        }))
    );
    assert!(matches!(parse(&lines[4]), Ok(Command::AddServer(_))));
    assert!(matches!(parse(&lines[5]), Ok(Command::List(_))));
    let lines = seed_lines("004-ipvsadm.sh");
    assert_eq!(lines.len(), 4);
    for l in &lines {
        parse(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
    }
}

#[test]
fn options_cluster_and_take_values_as_ipvsadm_does() {
    let spec = |c: Command| match c {
        Command::AddService(s) => s,
        other => panic!("{other:?}"),
    };
    let want = ServiceSpec {
        service: tcp("10.0.0.1", 80),
        scheduler: Scheduler::Rr,
        persistence: None,
    };
    for line in [
        "-A -t 10.0.0.1:80 -s rr",
        "-At 10.0.0.1:80 -s rr",
        "-A -t10.0.0.1:80 -srr",
        "--add-service --tcp-service=10.0.0.1:80 --scheduler rr",
        "-s rr -t 10.0.0.1:80 -A",
        "-A -t 10.0.0.1:http -s RR",
    ] {
        assert_eq!(spec(ok(line)), want, "{line}");
    }
    // -p takes a timeout only when the next word is not an option.
    let p = |line: &str| spec(ok(line)).persistence.map(|p| (p.timeout, p.netmask));
    assert_eq!(p("-A -t 10.0.0.1:80 -p"), Some((300, 32)));
    assert_eq!(p("-A -t 10.0.0.1:80 -p -s rr"), Some((300, 32)));
    assert_eq!(p("-A -t 10.0.0.1:80 -p 600"), Some((600, 32)));
    assert_eq!(
        p("-A -t 10.0.0.1:80 -p600 -M 255.255.255.0"),
        Some((600, 24))
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 --persistent=60 --netmask 16"),
        Some((60, 16))
    );
    // VIP without a port, or :0: all ports, which needs -p.
    assert_eq!(spec(ok("-A -t 10.0.0.1 -p")).service, tcp("10.0.0.1", 0));
    assert!(err("-A -t 10.0.0.1:0").to_string().contains("Zero port"));
    // -E: what is left out takes ipvsadm's default.
    assert_eq!(
        ok("-E -t 10.0.0.1:80"),
        Command::EditService(ServiceSpec {
            service: tcp("10.0.0.1", 80),
            scheduler: Scheduler::Wlc,
            persistence: None,
        })
    );
    assert_eq!(
        ok("-D -t 10.0.0.1:80"),
        Command::DeleteService(tcp("10.0.0.1", 80))
    );
    assert_eq!(
        ok("-D -u 10.0.0.1:53"),
        Command::DeleteService(ServiceRef::Addr(ServiceKey::addr(
            Protocol::Udp,
            ip("10.0.0.1"),
            53
        )))
    );
}

#[test]
fn real_servers() {
    let server = |line: &str| match ok(line) {
        Command::AddServer(s) | Command::EditServer(s) => s,
        other => panic!("{other:?}"),
    };
    let s = server("-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -m -w 3");
    assert_eq!(
        (s.address, s.port, s.forward, s.weight),
        (ip("10.0.0.11"), Some(8080), Forward::Nat, 3)
    );
    assert_eq!(
        server("-a -t 10.0.0.1:80 -r 10.0.0.11 -i").forward,
        Forward::Tunnel
    );
    assert_eq!(
        server("-a -t 10.0.0.1:80 -r 10.0.0.11 --ipip --tun-type ipip").forward,
        Forward::Tunnel
    );
    assert_eq!(server("-e -t 10.0.0.1:80 -r 10.0.0.11 -w 0").weight, 0);
    assert_eq!(
        server("-e -t 10.0.0.1:80 --real-server=10.0.0.11 --gatewaying").forward,
        Forward::Dr
    );
    assert_eq!(
        ok("-d -t 10.0.0.1:80 -r 10.0.0.11:80"),
        Command::DeleteServer {
            service: tcp("10.0.0.1", 80),
            address: ip("10.0.0.11")
        }
    );
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.11 -w 65536")
        .to_string()
        .contains("weight"));
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.11 -g -m")
        .to_string()
        .contains("multiple 'forwarding-method'"));
}

#[test]
fn listings() {
    let list = |line: &str| match ok(line) {
        Command::List(l) => l,
        other => panic!("{other:?}"),
    };
    for line in ["-L", "-l", "-Ln", "-ln", "-L -n", "--list --numeric", "-nL"] {
        assert_eq!(list(line).what, ListWhat::Table, "{line}");
    }
    assert_eq!(list("-Lnc").what, ListWhat::Connections);
    assert_eq!(list("-L --timeout").what, ListWhat::Timeout);
    assert_eq!(list("-L --daemon").what, ListWhat::Daemon);
    assert_eq!(list("-Ln --stats").columns, Columns::Stats);
    assert_eq!(list("-Ln --rate --exact").columns, Columns::Rate);
    assert!(list("-Ln --rate --exact").exact);
    assert!(list("-Ln -X").exact);
    assert_eq!(list("-Ln --thresholds").columns, Columns::Thresholds);
    assert!(list("-Ln --nosort").nosort);
    assert!(!list("-Ln --sort").nosort);
    assert_eq!(list("-L -t 10.0.0.1:80").service, Some(tcp("10.0.0.1", 80)));
    // ipvsadm's conflicts.
    assert!(err("-L -c --stats").to_string().contains("conflicts"));
    assert!(err("-L -c -t 10.0.0.1:80")
        .to_string()
        .contains("conflicts"));
    assert!(err("-L --timeout --daemon")
        .to_string()
        .contains("conflicts"));
    // No arguments at all: the table.
    assert!(matches!(parse::<&str>(&[]), Ok(Command::List(_))));
    assert_eq!(ok("-S -n"), Command::Save);
    assert_eq!(ok("--save"), Command::Save);
    assert_eq!(ok("-R"), Command::Restore);
    assert_eq!(ok("-Z"), Command::Zero(None));
    assert_eq!(
        ok("-Z -t 10.0.0.1:80"),
        Command::Zero(Some(tcp("10.0.0.1", 80)))
    );
    assert_eq!(
        ok("--set 900 0 300"),
        Command::SetTimeouts {
            tcp: 900,
            tcpfin: 0,
            udp: 300
        }
    );
    assert!(err("--set 900 120")
        .to_string()
        .contains("3 timeout values"));
    assert_eq!(ok("-h"), Command::Help);
    assert_eq!(ok("--version"), Command::Version);
}

#[test]
fn malformed_lines_are_usage_errors() {
    for (line, says) in [
        ("-A -a -t 10.0.0.1:80", "multiple commands"),
        (
            "-a -t 10.0.0.1:80",
            "You need to supply the 'real-server' option",
        ),
        (
            "-A -r 10.0.0.11",
            "You need to supply the 'service-address'",
        ),
        (
            "-A -t 10.0.0.1:80 -r 10.0.0.11",
            "Illegal 'real-server' option",
        ),
        ("-C -n", "Illegal 'numeric' option"),
        ("-t 10.0.0.1:80", "no command given"),
        ("-A -t 10.0.0.1:80 -s", "needs a value"),
        ("-A -t 10.0.0.1:80 -q", "unknown option `-q`"),
        (
            "-A -t 10.0.0.1:80 --frobnicate",
            "unknown option `--frobnicate`",
        ),
        ("-A -t 10.0.0.1:80 -s rr extra", "unexpected argument extra"),
        ("-A -t 10.0.0.1:99999", "illegal virtual server port"),
        ("-A -t no_such_host!:80", "illegal virtual server address"),
        ("-A -t 10.0.0.1:80 -s bogus", "unknown scheduler"),
        ("-A -t 10.0.0.1:80 -p 0", "invalid timeout"),
        ("-A -t 10.0.0.1:80 -p abc", "invalid timeout"),
        ("-A -f 0", "invalid fwmark"),
        (
            "-A -t 10.0.0.1:80 -t 10.0.0.2:80",
            "multiple 'service-address'",
        ),
    ] {
        let e = err(line);
        assert!(matches!(e, IpvsError::Usage(_)), "{line}: {e:?}");
        assert!(e.to_string().contains(says), "{line}: {e}");
    }
}

#[test]
fn what_lbd_lacks_is_refused_by_name() {
    for (line, names) in [
        (
            "--start-daemon master --syncid 3",
            "`--start-daemon master`",
        ),
        ("-a -t 10.0.0.1:80 -r 10.0.0.11 --syncid 3", "`--syncid 3`"),
        ("--stop-daemon backup", "`--stop-daemon backup`"),
        ("-A -u 10.0.0.1:53 -o", "`-o`"),
        ("-A -u 10.0.0.1:53 --ops", "`--ops`"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.11 -x 100", "`-x 100`"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.11 -y 10", "`-y 10`"),
        ("-A -t 10.0.0.1:80 --pe sip", "`--pe sip`"),
        ("-A -t 10.0.0.1:80 -s sh -b sh-port", "`-b sh-port`"),
        ("-A -t 10.0.0.1:80 -s dh", "scheduler `dh`"),
        ("-A -t 10.0.0.1:80 -s lblc", "scheduler `lblc`"),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue",
            "`--tun-type gue`",
        ),
        ("-L --persistent-conn", "`--persistent-conn`"),
        (
            "-A -t 10.0.0.1:80 -p 3000000",
            "persistence timeout 3000000",
        ),
    ] {
        let e = err(line);
        assert!(matches!(e, IpvsError::Unsupported { .. }), "{line}: {e:?}");
        let text = e.to_string();
        assert!(text.contains(names), "{line}: {text}");
        assert!(text.contains("is not supported: "), "{line}: {text}");
    }
}

#[test]
fn fwmark_services_are_service_groups() {
    let cmd = ok("-A -f 3 -s rr -p 300");
    assert!(matches!(cmd, Command::AddService(s) if s.service == ServiceRef::Fwmark(3)));
    let Some(Request::AddService(g)) = change_request(&cmd).unwrap() else {
        panic!("not an AddService");
    };
    // A group: which packets carry mark 3 is lbd's `fwmarks` section.
    assert_eq!(g.fwmark, Some(3));
    assert_eq!((g.vip, g.port), (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
    assert_eq!(g.persistence.map(|p| p.timeout), Some(300));
    assert!(lb_api::config::validate(&lb_api::config::Config {
        services: vec![g],
        ..lb_api::config::parse(
            r#"(ports: [(name: "lan0", device: "net_null0", address: "10.0.0.2/24")])"#,
            "t"
        )
        .unwrap()
    })
    .is_empty());
    // A real server keeps the port -r gave (its checks use it).
    assert_eq!(
        change_request(&ok("-a -f 3 -r 10.0.0.11:80 -g -w 2")).unwrap(),
        Some(Request::AddReal {
            service: ServiceKey::group(3),
            real: RealServerConfig {
                address: ip("10.0.0.11"),
                port: Some(80),
                weight: 2,
                forward: Forward::Dr,
                health_check: None,
            },
        })
    );
    assert_eq!(
        change_request(&ok("-D -f 3")).unwrap(),
        Some(Request::DeleteService(ServiceKey::group(3)))
    );
    assert!(matches!(
        change_request(&ok("-d -f 3 -r 10.0.0.11")).unwrap(),
        Some(Request::DeleteReal { service, .. }) if service == ServiceKey::group(3)
    ));
    assert!(matches!(
        change_request(&ok("-E -f 3 -s wlc")).unwrap(),
        Some(Request::EditService { key, .. }) if key == ServiceKey::group(3)
    ));
    assert!(err("-A -f x").to_string().contains("invalid fwmark value"));
}

#[test]
fn typographic_dashes() {
    assert_eq!(ascii_dashes("\u{2013}C"), ("-C".to_string(), true));
    assert_eq!(ascii_dashes("\u{2014}save"), ("--save".to_string(), true));
    assert_eq!(ascii_dashes("\u{2013}Ln"), ("-Ln".to_string(), true));
    assert_eq!(
        ascii_dashes("\u{2013}\u{2013}clear"),
        ("--clear".to_string(), true)
    );
    assert_eq!(ascii_dashes("-C"), ("-C".to_string(), false));
    assert_eq!(ok("\u{2014}clear"), Command::Clear);
    assert!(dash_notes(&["-A", "-t"]).is_empty());
}

#[test]
fn changes_become_lbctls_requests() {
    let key = |vip: &str| ServiceKey::addr(Protocol::Tcp, ip(vip), 80);
    assert_eq!(
        change_request(&ok("-A -t 10.0.0.1:80 -s rr -p 60")).unwrap(),
        Some(Request::AddService(ServiceConfig {
            vip: ip("10.0.0.1"),
            port: 80,
            protocol: Protocol::Tcp,
            scheduler: Scheduler::Rr,
            real_servers: vec![],
            persistence: Some(Persistence::v4(60, 32)),
            health_check: None,
            fallback: None,
            sloppy_tcp: false,
            ecmp: false,
            fwmark: None,
        }))
    );
    // -E turns persistence off when -p is left out, as IPVS does.
    assert_eq!(
        change_request(&ok("-E -t 10.0.0.1:80 -s rr")).unwrap(),
        Some(Request::EditService {
            key: key("10.0.0.1"),
            edit: ServiceEdit {
                scheduler: Some(Scheduler::Rr),
                persistence: Some(PersistenceChange::Off),
            },
        })
    );
    // DR keeps the service's port whatever -r says; NAT maps it.
    let add = |line: &str| match change_request(&ok(line)).unwrap() {
        Some(Request::AddReal { real, .. }) => real,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        add("-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g"),
        RealServerConfig {
            address: ip("10.0.0.11"),
            port: None,
            weight: 1,
            forward: Forward::Dr,
            health_check: None,
        }
    );
    assert_eq!(add("-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -g").port, None);
    assert_eq!(
        add("-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -m").port,
        Some(8080)
    );
    assert_eq!(add("-a -t 10.0.0.1:80 -r 10.0.0.11:80 -m").port, None);
    // -e sets weight and method as given, else -w 1 and -g.
    assert_eq!(
        change_request(&ok("-e -t 10.0.0.1:80 -r 10.0.0.11 -w 5")).unwrap(),
        Some(Request::EditReal {
            service: key("10.0.0.1"),
            address: ip("10.0.0.11"),
            edit: RealEdit {
                weight: Some(5),
                forward: Some(Forward::Dr)
            },
        })
    );
    assert_eq!(
        change_request(&ok("-d -t 10.0.0.1:80 -r 10.0.0.11")).unwrap(),
        Some(Request::DeleteReal {
            service: key("10.0.0.1"),
            address: ip("10.0.0.11"),
            mode: RemoveMode::Immediate,
        })
    );
    assert_eq!(change_request(&ok("-C")).unwrap(), Some(Request::Clear));
    assert_eq!(change_request(&ok("-Z")).unwrap(), Some(Request::Zero));
    let e = change_request(&ok("-Z -t 10.0.0.1:80")).unwrap_err();
    assert!(
        e.to_string().contains("lbd zeroes all counters at once"),
        "{e}"
    );
    assert_eq!(
        change_request(&ok("--set 0 60 30")).unwrap(),
        Some(Request::SetTimeouts(TimeoutEdit {
            tcp: None,
            tcpfin: Some(60),
            udp: Some(30)
        }))
    );
    assert_eq!(change_request(&ok("-Ln")).unwrap(), None);
}

#[test]
fn lenient_parsing_for_importers() {
    let words = split_words("-a -t 10.0.0.1:80 -r 10.0.0.11 -x 100 -y 5 -w 2").unwrap();
    let (cmd, dropped) = parse_lenient(&words).unwrap();
    assert!(matches!(cmd, Command::AddServer(s) if s.weight == 2));
    assert_eq!(dropped.len(), 2);
    assert!(dropped[0].to_string().contains("`-x 100`"));
    let words = split_words("-A -t 10.0.0.1:80 -s dh -o -p 9999999").unwrap();
    let (cmd, dropped) = parse_lenient(&words).unwrap();
    assert_eq!(
        cmd,
        Command::AddService(ServiceSpec {
            service: tcp("10.0.0.1", 80),
            scheduler: Scheduler::Wlc,
            persistence: Some(Persistence::v4(MAX_PERSISTENCE, 32)),
        })
    );
    assert_eq!(dropped.len(), 3, "{dropped:?}");
    // Malformed lines still fail.
    assert!(parse_lenient(&["-A", "-q"]).is_err());
}

#[test]
fn port_names_from_services_files() {
    let text = "# comment\nhttp\t\t80/tcp\t\twww\t# WorldWideWeb\nhttp 80/udp\ndomain 53/udp\nmyapp 8080/tcp alt-app\n";
    assert_eq!(services_lookup(text, "http", "tcp"), Some(80));
    assert_eq!(services_lookup(text, "www", "tcp"), Some(80));
    assert_eq!(services_lookup(text, "alt-app", "tcp"), Some(8080));
    assert_eq!(services_lookup(text, "domain", "tcp"), None);
    assert_eq!(services_lookup(text, "domain", "udp"), Some(53));
    assert_eq!(port_number("443", Protocol::Tcp), Some(443));
    assert_eq!(port_number("https", Protocol::Tcp), Some(443));
    assert_eq!(port_number("70000", Protocol::Tcp), None);
    assert_eq!(port_number("no-such-service-name", Protocol::Tcp), None);
}

#[test]
fn words_split_with_quotes() {
    assert_eq!(
        split_words("  -A  -t \"10.0.0.1:80\" -s 'rr' ").unwrap(),
        ["-A", "-t", "10.0.0.1:80", "-s", "rr"]
    );
    assert_eq!(split_words("a \"\" b").unwrap(), ["a", "", "b"]);
    assert_eq!(split_words("-A \"unterminated"), None);
}

fn svc(vip: &str, port: u16) -> ServiceConfig {
    ServiceConfig {
        vip: ip(vip),
        port,
        protocol: Protocol::Tcp,
        scheduler: Scheduler::Wlc,
        real_servers: vec![],
        persistence: None,
        health_check: None,
        fallback: None,
        sloppy_tcp: false,
        ecmp: false,
        fwmark: None,
    }
}

#[test]
fn rules_apply_as_ipvs_would() {
    let mut s = Vec::new();
    let mut t = Timeouts::default();
    for line in [
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.0.12 -g",
        "-a -t 10.0.0.1:80 -r 10.0.0.11 -g -w 3",
        "-E -t 10.0.0.1:80 -s wrr -p 60",
        "-e -t 10.0.0.1:80 -r 10.0.0.12 -w 0",
        "--set 0 60 0",
    ] {
        rules::apply(&mut s, &mut t, &ok(line)).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].scheduler, Scheduler::Wrr);
    assert_eq!(s[0].persistence.unwrap().timeout, 60);
    assert_eq!(s[0].real_servers[0].weight, 0);
    assert_eq!(s[0].real_servers[1].weight, 3);
    assert_eq!((t.tcp_established, t.tcp_fin_wait, t.udp), (900, 60, 300));
    for (line, want) in [
        ("-A -t 10.0.0.1:80", "already exists"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.11", "already exists"),
        (
            "-a -t 10.0.0.2:80 -r 10.0.0.11",
            "no service 10.0.0.2:80/tcp",
        ),
        ("-e -t 10.0.0.1:80 -r 10.0.0.99", "no real server 10.0.0.99"),
        ("-d -t 10.0.0.1:80 -r 10.0.0.99", "no real server 10.0.0.99"),
        ("-D -t 10.0.0.9:80", "no service"),
        ("-D -f 3", "no service fwmark 3"),
        ("-Ln", "is not a rule"),
    ] {
        let e = rules::apply(&mut s, &mut t, &ok(line)).unwrap_err();
        assert!(e.to_string().contains(want), "{line}: {e}");
    }
    assert!(matches!(
        rules::apply(&mut s, &mut t, &ok("-a -t 10.0.0.1:80 -r 10.0.0.11")),
        Err(ApplyError::Exists(_))
    ));
    rules::apply(&mut s, &mut t, &ok("-d -t 10.0.0.1:80 -r 10.0.0.12")).unwrap();
    assert_eq!(s[0].real_servers.len(), 1);
    rules::apply(&mut s, &mut t, &ok("-D -t 10.0.0.1:80")).unwrap();
    assert!(s.is_empty());
    rules::apply(&mut s, &mut t, &ok("-A -t 10.0.0.1:80")).unwrap();
    rules::apply(&mut s, &mut t, &ok("-C")).unwrap();
    assert!(s.is_empty());
}

#[test]
fn save_writes_ipvsadm_saves_format_sorted() {
    let mut a = svc("10.0.0.2", 443);
    a.scheduler = Scheduler::Rr;
    a.persistence = Some(Persistence::v4(600, 24));
    let real = |addr: &str, port: Option<u16>, w: u32, f: Forward| RealServerConfig {
        address: ip(addr),
        port,
        weight: w,
        forward: f,
        health_check: None,
    };
    a.real_servers = vec![
        real("10.0.0.12", None, 1, Forward::Dr),
        real("10.0.0.11", None, 2, Forward::Tunnel),
    ];
    let mut b = svc("10.0.0.2", 80);
    b.real_servers = vec![real("10.0.0.13", Some(8080), 1, Forward::Nat)];
    let mut u = svc("10.0.0.1", 53);
    u.protocol = Protocol::Udp;
    u.health_check = Some(lb_api::config::HealthCheck {
        check: lb_api::config::CheckKind::Tcp,
        interval_ms: 1000,
        timeout_ms: 1000,
        rise: 1,
        fall: 1,
        port: None,
        on_failure: lb_api::config::OnFailure::Remove,
        expire_connections: false,
    });
    let (text, notes) = rules::save(&[u, a, b], true);
    assert_eq!(
        text,
        "-A -t 10.0.0.2:80 -s wlc\n\
         -a -t 10.0.0.2:80 -r 10.0.0.13:8080 -m -w 1\n\
         -A -t 10.0.0.2:443 -s rr -p 600 -M 255.255.255.0\n\
         -a -t 10.0.0.2:443 -r 10.0.0.11:443 -i -w 2\n\
         -a -t 10.0.0.2:443 -r 10.0.0.12:443 -g -w 1\n\
         -A -u 10.0.0.1:53 -s wlc\n"
    );
    assert_eq!(
        notes,
        ["10.0.0.1:53/udp has health checks that ipvsadm's rules cannot hold; `lbctl save` keeps them"]
    );
}

#[test]
fn saved_rules_restore_to_the_same_rules() {
    let text = "\
-A -t 198.18.0.100:80 -s rr
-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1
-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1
-A -t 198.18.0.100:443 -s sh -p 300 -M 255.255.0.0
-a -t 198.18.0.100:443 -r 198.18.0.11:443 -i -w 5
-A -u 198.18.0.100:53 -s wrr
-a -u 198.18.0.100:53 -r 198.18.0.12:5353 -m -w 0
";
    let mut s = Vec::new();
    let mut t = Timeouts::default();
    for (_, cmd) in rules::parse_rules(text).unwrap() {
        rules::apply(&mut s, &mut t, &cmd).unwrap();
    }
    let (again, notes) = rules::save(&s, true);
    assert_eq!(again, text);
    assert!(notes.is_empty());
}

#[test]
fn group_rules_save_and_restore_to_the_same_rules_and_marks() {
    let text = "\
-A -t 198.18.0.100:80 -s rr
-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1
-A -f 3 -s wlc -p 300
-a -f 3 -r 198.18.0.11:80 -g -w 1
-a -f 3 -r 198.18.0.12:0 -i -w 2
-A -f 10 -s rr
";
    let mut cfg = lb_api::config::parse(
        r#"(ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")])"#,
        "t",
    )
    .unwrap();
    super::run::restore_into(&mut cfg, text).unwrap();
    let (again, notes) = rules::save(&cfg.services, true);
    assert_eq!(again, text);
    assert!(notes.is_empty(), "{notes:?}");
    // What carries mark 3 (as lbd's configuration says) is not a rule:
    // cleared and restored, the configuration is the same.
    cfg.fwmarks = ron::from_str(
        r#"[(mark: 3, match: [(vip: "198.18.0.100", ports: 443), (vip: "198.18.0.101", ports: "8000-8009")])]"#,
    )
    .unwrap();
    assert!(lb_api::config::validate(&cfg).is_empty());
    assert_eq!(rules::save(&cfg.services, true).0, text);
    let before = cfg.clone();
    super::run::restore_into(&mut cfg, "-C\n").unwrap();
    assert!(cfg.services.is_empty());
    assert_eq!(cfg.fwmarks, before.fwmarks);
    super::run::restore_into(&mut cfg, text).unwrap();
    assert_eq!(cfg, before);
}

#[test]
fn rules_files_skip_comments_and_name_the_failing_line() {
    let text = "# saved\n\nipvsadm -A -t 10.0.0.1:80 -s rr\n/sbin/ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.11\n-a -t 10.0.0.1:80 -q\n";
    let (n, e) = rules::parse_rules(text).unwrap_err();
    assert_eq!(n, 5);
    assert!(e.to_string().contains("-q"), "{e}");
    let good = rules::parse_rules(&text.replace(" -q", " -r 10.0.0.12")).unwrap();
    assert_eq!(good.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [3, 4, 5]);
}

#[test]
fn ipv6_service_groups_take_dash_6_after_the_mark() {
    // `-6` qualifies `-f`: -M is then a prefix length.
    let cmd = ok("-A -f 3 -6 -s rr -p 300 -M 64");
    let Command::AddService(spec) = &cmd else {
        panic!("not an AddService: {cmd:?}");
    };
    assert_eq!(spec.service, ServiceRef::Fwmark(3));
    assert_eq!(spec.persistence.and_then(|p| p.prefix), Some(64));
    // As ipvsadm: an address says its family, `-6` goes after `-f`.
    for line in ["-A -6 -f 3 -s rr", "-A -t 10.0.0.1:80 -6"] {
        assert!(
            err(line).to_string().contains("-6 used before -f"),
            "{line}"
        );
    }
    // Saved with `-6` on the group's lines, and restored to the same rules.
    let text = "\
-A -f 3 -6 -s rr -p 300 -M 64
-a -f 3 -6 -r [2001:db8::11]:80 -g -w 1
-a -f 3 -6 -r [2001:db8::12]:80 -i -w 2
";
    let mut s = Vec::new();
    let mut t = Timeouts::default();
    for (_, cmd) in rules::parse_rules(text).unwrap() {
        rules::apply(&mut s, &mut t, &cmd).unwrap();
    }
    assert_eq!(s[0].fwmark, Some(3));
    assert_eq!(s[0].real_servers[1].address, ip("2001:db8::12"));
    let (again, notes) = rules::save(&s, true);
    assert_eq!(again, text);
    assert!(notes.is_empty());
}
