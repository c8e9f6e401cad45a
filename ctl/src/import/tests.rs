//! The importers on the seeds' files verbatim and on a corpus of variants
//! (ctl/tests/data/), the output read back, and errors with their lines.

use super::*;
use lb_api::config::SyncConfig;
use lb_api::config::{
    CheckKind, Fallback, Forward, HealthCheck, OnFailure, Persistence, Protocol, RealServerConfig,
    Scheduler,
};
use std::path::{Path, PathBuf};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(data(rel)).unwrap()
}

fn keepalived_text(rel: &str, text: &str, id: Option<&str>) -> Result<Imported, ImportError> {
    keepalived::import(&data(rel), rel, text, id)
}

fn keepalived(rel: &str, id: Option<&str>) -> Imported {
    keepalived_text(rel, &read(rel), id).unwrap_or_else(|e| panic!("{e}"))
}

fn ldirectord(rel: &str) -> Imported {
    ldirectord::import(&read(rel), rel).unwrap_or_else(|e| panic!("{e}"))
}

fn ipvsadm(rel: &str) -> Imported {
    ipvsadm_save::import(&read(rel), rel).unwrap_or_else(|e| panic!("{e}"))
}

/// The note at `file:line` that contains `text`.
#[track_caller]
fn has_note(imp_notes: &[Note], file: &str, line: usize, text: &str) {
    assert!(
        imp_notes.iter().any(|n| n
            .loc
            .as_ref()
            .is_some_and(|l| l.file.ends_with(file) && l.line == line)
            && n.text.contains(text)),
        "no note at {file}:{line} with {text:?} in:\n{}",
        imp_notes
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn real(addr: &str, weight: u32, forward: Forward) -> RealServerConfig {
    RealServerConfig {
        address: ip(addr),
        port: None,
        weight,
        forward,
        health_check: None,
    }
}

fn tcp_check(interval_ms: u32, timeout_ms: u32, fall: u32) -> HealthCheck {
    HealthCheck {
        check: CheckKind::Tcp,
        interval_ms,
        timeout_ms,
        rise: 1,
        fall,
        port: None,
        on_failure: OnFailure::Remove,
        expire_connections: false,
    }
}

/// The lab's director port (with the kernel interface health checks and
/// VRRP need), as a base configuration.
fn lab_base(addr: &str) -> Config {
    lb_api::config::parse(
        &format!(
            r#"(ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
                address: "{addr}/24", kernel: Some((iface: "lbd-lan0")))])"#
        ),
        "base",
    )
    .unwrap()
}

/// The seeds' addresses rewritten to the lab's (VIP 198.18.0.100, real
/// servers 198.18.0.11/12).
fn to_lab(text: &str) -> String {
    text.replace("172.16.0.30", "198.18.0.100")
        .replace("172.16.0.31", "198.18.0.11")
        .replace("172.16.0.32", "198.18.0.12")
        .replace("192.168.214.140", "198.18.0.100")
        .replace("192.168.214.143", "198.18.0.11")
        .replace("192.168.214.145", "198.18.0.12")
}

/// The rendered text reads back (RON with its comments) to the rendered
/// configuration.
#[track_caller]
fn reads_back(r: &Rendered) {
    let back: Config = ron::Options::default()
        .from_str(&r.text)
        .unwrap_or_else(|e| panic!("{e}\n{}", r.text));
    assert_eq!(back, r.config, "{}", r.text);
}

#[test]
fn seed_003_keepalived_with_notify_scripts() {
    let imp = keepalived("seeds/003-keepalived-bypass.conf", None);
    assert_eq!(imp.services.len(), 1);
    let s = &imp.services[0];
    assert_eq!(s.what, "virtual_server 172.16.0.30 80");
    assert_eq!(s.origin.line, 24);
    assert_eq!(
        s.config,
        ServiceConfig {
            vip: ip("172.16.0.30"),
            port: 80,
            protocol: Protocol::Tcp,
            fwmark: None,
            scheduler: Scheduler::Rr,
            real_servers: vec![
                real("172.16.0.31", 1, Forward::Dr),
                real("172.16.0.32", 1, Forward::Dr)
            ],
            // persistence_timeout 0: not persistent.
            persistence: None,
            // delay_loop 30, connect_timeout 3, keepalived's retry 1.
            health_check: Some(tcp_check(30_000, 3_000, 2)),
            fallback: None,
            sloppy_tcp: false,
            ecmp: false,
        }
    );
    let v = imp.vrrp.as_ref().unwrap();
    assert_eq!(v.interface.as_deref(), Some("enp0s3"));
    assert_eq!(v.virtual_addresses, [ip("172.16.0.30")]);
    assert_eq!(v.prefix, Some(24));
    assert_eq!(
        v.config,
        VrrpConfig {
            port: String::new(),
            vrid: 51,
            priority: 100,
            version: 2,
            auth_pass: Some("1111".into()),
            advert_interval_ms: 1000,
            preempt: true,
            // The VIP is the service's: held anyway.
            addresses: vec![],
            unicast_peers: vec![],
            garp_count: 5,
            garp_refresh_s: 0,
            track_health: false,
            notify_master: Some("/etc/keepalived/bypass_ipvs.sh del 172.16.0.30".into()),
            notify_backup: Some("/etc/keepalived/bypass_ipvs.sh add 172.16.0.30".into()),
            notify_fault: Some("/etc/keepalived/bypass_ipvs.sh add 172.16.0.30".into()),
        }
    );
    has_note(
        &imp.notes,
        "003-keepalived-bypass.conf",
        2,
        "router_id LVS_DEVEL",
    );
    has_note(&imp.notes, "003-keepalived-bypass.conf", 5, "state MASTER");
    assert_eq!(imp.notes.len(), 2, "{:?}", imp.notes);
    assert!(imp.sync.is_none());

    // Device B, as the document describes it.
    let b = read("seeds/003-keepalived-bypass.conf")
        .replace("state MASTER", "state BACKUP")
        .replace("priority 100", "priority 50");
    let imp_b = keepalived_text("seeds/003-keepalived-bypass.conf", &b, None).unwrap();
    assert_eq!(imp_b.vrrp.unwrap().config.priority, 50);

    // Without a base: the placeholder port is named after the interface;
    // the text reads back; the notes head it.
    let r = render(&imp, None, "keepalived 003-keepalived-bypass.conf");
    assert!(r.placeholder);
    assert_eq!(r.config.ports[0].name, "enp0s3");
    assert_eq!(r.config.ports[0].device, "");
    assert_eq!(r.config.ports[0].address.to_string(), "172.16.0.0/24");
    assert_eq!(r.config.vrrp.as_ref().unwrap().port, "enp0s3");
    reads_back(&r);
    let head: Vec<&str> = r.text.lines().take_while(|l| l.starts_with("//")).collect();
    assert!(
        head.iter().any(|l| l.contains(":2: `router_id LVS_DEVEL`")),
        "{head:?}"
    );
    // lbd refuses it until the placeholder is filled in.
    let problems = lb_api::config::validate(&r.config);
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("device is empty")),
        "{problems:?}"
    );

    // With the lab's addresses and ports it is a valid configuration.
    let lab = keepalived_text(
        "seeds/003-keepalived-bypass.conf",
        &to_lab(&read("seeds/003-keepalived-bypass.conf")),
        None,
    )
    .unwrap();
    let r = render(&lab, Some(&lab_base("198.18.0.2")), "keepalived x");
    assert!(!r.placeholder);
    assert_eq!(r.config.vrrp.as_ref().unwrap().port, "lan0");
    let parsed = lb_api::config::parse(&r.text, "rendered").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed, r.config);
}

#[test]
fn seed_003_fwmark_service_becomes_a_service_group() {
    let imp = keepalived("seeds/003-keepalived-fwmark.conf", None);
    assert_eq!(imp.services.len(), 1);
    let g = &imp.services[0].config;
    assert_eq!(imp.services[0].what, "virtual_server fwmark 3");
    assert_eq!(imp.services[0].origin.line, 18);
    assert_eq!(g.fwmark, Some(3));
    assert_eq!((g.vip, g.port), (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
    assert_eq!(g.scheduler, Scheduler::Rr);
    assert_eq!(g.persistence, None, "persistence_timeout 0");
    // The marks were set by iptables, outside keepalived.conf: the members
    // are assumed (the VRRP address on the real servers' port), and said so.
    assert_eq!(
        imp.fwmarks,
        [lb_api::config::FwmarkConfig {
            mark: 3,
            matches: vec![lb_api::config::GroupMatch {
                vip: ip("172.16.0.30"),
                protocol: Protocol::Tcp,
                ports: lb_api::config::PortRange::one(80),
            }],
        }]
    );
    has_note(
        &imp.notes,
        "003-keepalived-fwmark.conf",
        18,
        "`virtual_server fwmark 3`: lbd reads no firewall marks (under IPVS, iptables rules \
         outside keepalived.conf set mark 3); its members are ASSUMED to be 172.16.0.30:80/tcp",
    );
    // DR keeps the port: each real server keeps its own for its TCP check.
    let mut want = real("172.16.0.31", 1, Forward::Dr);
    want.port = Some(80);
    assert_eq!(g.real_servers[0], want);
    assert_eq!(g.health_check, Some(tcp_check(30_000, 3_000, 2)));
    // The VIP is the group's now, not one of VRRP's extra addresses.
    assert!(imp.vrrp.as_ref().unwrap().config.addresses.is_empty());
    let r = render(&imp, None, "keepalived x");
    let top: String = r
        .text
        .lines()
        .take_while(|l| l.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        top.contains("003-keepalived-fwmark.conf:18: `virtual_server fwmark 3`"),
        "{top}"
    );
    assert!(top.contains("ASSUMED"), "{top}");
    reads_back(&r);
    assert_eq!(r.config.fwmarks, imp.fwmarks);
    // On the lab's addresses it is a valid configuration lbd would load.
    let lab = keepalived_text(
        "seeds/003-keepalived-fwmark.conf",
        &to_lab(&read("seeds/003-keepalived-fwmark.conf")),
        None,
    )
    .unwrap();
    let r = render(&lab, Some(&lab_base("198.18.0.2")), "keepalived x");
    let parsed = lb_api::config::parse(&r.text, "rendered").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed, r.config);
    assert_eq!(parsed.fwmarks[0].matches[0].vip, ip("198.18.0.100"));
}

#[test]
fn fwmark_members_that_cannot_be_assumed_are_to_be_filled_in() {
    // No VRRP instance: no address to assume.
    let text = read("seeds/003-keepalived-fwmark.conf");
    let at = text.find("virtual_server").unwrap();
    let imp = keepalived_text("x.conf", &text[at..], None).unwrap();
    assert!(imp.fwmarks.is_empty());
    assert_eq!(imp.services[0].config.fwmark, Some(3));
    has_note(
        &imp.notes,
        "x.conf",
        1,
        "what carries it could not be assumed",
    );
    // NAT (keepalived's default lb_kind) cannot be a group; a mark of 0
    // is none.
    let nat = keepalived_text("x.conf", &text.replace("lb_kind DR", "lb_kind NAT"), None).unwrap();
    assert!(nat.services.is_empty());
    has_note(&nat.notes, "x.conf", 18, "forward by DR or tunnel");
    let zero = keepalived_text("x.conf", &text.replace("fwmark 3", "fwmark 0"), None).unwrap();
    assert!(zero.services.is_empty());
    has_note(&zero.notes, "x.conf", 18, "is not a firewall mark");
    let hex = keepalived_text("x.conf", &text.replace("fwmark 3", "fwmark 0x10"), None).unwrap();
    assert_eq!(hex.services[0].config.fwmark, Some(16));
}

#[test]
fn seed_004_ldirectord() {
    let imp = ldirectord("seeds/004-ldirectord.cf");
    assert_eq!(imp.autoreload, Some(true));
    assert_eq!(imp.services.len(), 1);
    let s = &imp.services[0].config;
    assert_eq!(
        *s,
        ServiceConfig {
            vip: ip("192.168.214.140"),
            port: 80,
            protocol: Protocol::Tcp,
            fwmark: None,
            scheduler: Scheduler::Rr,
            real_servers: vec![
                real("192.168.214.143", 1, Forward::Dr),
                real("192.168.214.145", 1, Forward::Dr)
            ],
            persistence: None,
            health_check: Some(HealthCheck {
                check: CheckKind::Http {
                    path: "/index.html".into(),
                    status: 200,
                    expect: Some("RS".into()),
                    host: None,
                },
                interval_ms: 1000,
                timeout_ms: 3000,
                rise: 1,
                fall: 1,
                port: Some(80),
                // quiescent=no
                on_failure: OnFailure::Remove,
                expire_connections: false,
            }),
            // The director itself, filled in by render.
            fallback: Some(Fallback {
                address: ip("127.0.0.1"),
                port: None,
                forward: Forward::Dr,
            }),
            sloppy_tcp: false,
            ecmp: false,
        }
    );
    has_note(&imp.notes, "004-ldirectord.cf", 7, "logfile");
    assert_eq!(imp.notes.len(), 1, "{:?}", imp.notes);
    // Without a base the fallback cannot be placed: noted, left out.
    let r = render(&imp, None, "ldirectord x");
    assert_eq!(r.config.services[0].fallback, None);
    has_note(
        &r.notes,
        "004-ldirectord.cf",
        15,
        "fallback 127.0.0.1: the director itself",
    );
    assert!(r.config.control.autoreload);
    reads_back(&r);
    // On the lab's port the fallback is the director's own address, served
    // by its kernel interface.
    let lab = ldirectord::import(&to_lab(&read("seeds/004-ldirectord.cf")), "004").unwrap();
    let r = render(&lab, Some(&lab_base("198.18.0.2")), "ldirectord x");
    assert_eq!(
        r.config.services[0].fallback,
        Some(Fallback {
            address: ip("198.18.0.2"),
            port: None,
            forward: Forward::Dr
        })
    );
    let problems = lb_api::config::validate(&r.config);
    assert!(problems.is_empty(), "{problems:?}");
    // A base port without a kernel interface cannot serve it: noted.
    let mut no_kernel = lab_base("198.18.0.2");
    no_kernel.ports[0].kernel = None;
    let r = render(&lab, Some(&no_kernel), "ldirectord x");
    assert_eq!(r.config.services[0].fallback, None);
    assert!(r
        .notes
        .iter()
        .any(|n| n.text.contains("no kernel interface")));
}

#[test]
fn keepalived_grammar_corpus() {
    let imp = keepalived("keepalived/full.conf", None);
    let svcs: Vec<&ServiceConfig> = imp.services.iter().map(|s| &s.config).collect();
    assert_eq!(svcs.len(), 6, "{svcs:#?}");
    // Parameters, a multi-line one used twice with different values.
    let web = svcs[0];
    assert_eq!(
        (web.vip, web.port, web.scheduler),
        (ip("198.18.0.100"), 80, Scheduler::Wrr)
    );
    assert_eq!(
        web.real_servers,
        [
            real("198.18.0.11", 3, Forward::Dr),
            real("198.18.0.12", 1, Forward::Dr)
        ]
    );
    assert_eq!(web.persistence, Some(Persistence::v4(600, 24)));
    assert_eq!(
        web.fallback,
        Some(Fallback {
            address: ip("198.18.0.50"),
            port: None,
            forward: Forward::Dr
        })
    );
    // The inline `url { path /health status_code 200 }`, the virtual
    // server's virtualhost, connect_timeout and retry.
    assert_eq!(
        web.health_check,
        Some(HealthCheck {
            check: CheckKind::Http {
                path: "/health".into(),
                status: 200,
                expect: None,
                host: Some("www.example.com".into())
            },
            interval_ms: 2000,
            timeout_ms: 4000,
            rise: 1,
            fall: 3,
            port: None,
            on_failure: OnFailure::Remove,
            expire_connections: false,
        })
    );
    // From the include: SSL_GET as TCP, inhibit_on_failure as Quiesce.
    let tls = svcs[1];
    assert_eq!((tls.port, tls.scheduler), (443, Scheduler::Sh));
    assert!(tls
        .real_servers
        .iter()
        .all(|r| r.forward == Forward::Tunnel));
    let hc = tls.health_check.as_ref().unwrap();
    assert_eq!(
        (&hc.check, hc.on_failure, hc.timeout_ms, hc.interval_ms),
        (&CheckKind::Tcp, OnFailure::Quiesce, 2000, 5000)
    );
    // Per-server checks, NAT ports, an unknown scheduler.
    let nat = svcs[2];
    assert_eq!(nat.scheduler, Scheduler::Wlc);
    assert_eq!(nat.health_check, None);
    assert_eq!(nat.real_servers[0].port, Some(8081));
    assert_eq!(nat.real_servers[0].forward, Forward::Nat);
    assert_eq!(
        nat.real_servers[0].health_check.as_ref().unwrap().port,
        Some(8081)
    );
    assert_eq!(
        nat.real_servers[1].health_check.as_ref().unwrap().check,
        CheckKind::Exec {
            command: "/bin/sh".into(),
            args: vec!["-c".into(), "/usr/local/bin/check web2 --quiet".into()]
        }
    );
    // MISC_CHECK: retry 0 (fall 1), misc_timeout.
    let misc = nat.real_servers[1].health_check.as_ref().unwrap();
    assert_eq!((misc.fall, misc.timeout_ms), (1, 3000));
    // The group expanded: .100, and the range .102-103.
    let dns: Vec<(IpAddr, u16, Protocol)> = svcs[3..]
        .iter()
        .map(|s| (s.vip, s.port, s.protocol))
        .collect();
    assert_eq!(
        dns,
        [
            (ip("198.18.0.100"), 53, Protocol::Udp),
            (ip("198.18.0.102"), 53, Protocol::Udp),
            (ip("198.18.0.103"), 53, Protocol::Udp)
        ]
    );
    // VRRP: the instance holding a service VIP; conditional lines without
    // a config id; VRRPv3 from global_defs; the generic notify script.
    let v = imp.vrrp.as_ref().unwrap();
    assert_eq!(
        v.config,
        VrrpConfig {
            port: String::new(),
            vrid: 77,
            priority: 90,
            version: 3,
            auth_pass: None,
            advert_interval_ms: 500,
            preempt: false,
            addresses: vec![std::net::IpAddr::V4(ip4("198.19.0.1"))],
            unicast_peers: vec![ip4("198.18.0.3").into()],
            garp_count: 3,
            garp_refresh_s: 60,
            track_health: false,
            notify_master: Some("/usr/local/bin/vrrp-notify.sh INSTANCE VI_1 MASTER 90".into()),
            notify_backup: Some("/usr/local/bin/vrrp-notify.sh INSTANCE VI_1 BACKUP 90".into()),
            notify_fault: Some("/usr/local/bin/vrrp-notify.sh INSTANCE VI_1 FAULT 90".into()),
        }
    );
    assert_eq!(v.own_address, Some(ip("198.18.0.2")));
    let sync = imp.sync.as_ref().unwrap();
    assert_eq!(
        (sync.peer, sync.port),
        (Some(ip4("198.18.0.3")), Some(8850))
    );
    assert_eq!(
        imp.timeouts,
        Some(TimeoutEdit {
            tcp: Some(7200),
            tcpfin: Some(60),
            udp: Some(120)
        })
    );
    for (file, line, text) in [
        ("full.conf", 16, "router_id lbd_test"),
        ("full.conf", 17, "notification_email"),
        ("full.conf", 21, "lvs_sync_daemon id 7"),
        ("full.conf", 30, "without a config id"),
        ("full.conf", 45, "track_script"),
        ("full.conf", 50, "lbd runs one IPv4 VRRP instance, `vrrp`"),
        ("full.conf", 41, "the options after the address"),
        (
            "10-https.conf",
            10,
            "`SSL_GET`: converted to a TCP connect check",
        ),
        ("10-https.conf", 31, "`lb_algo lblc`"),
        ("10-https.conf", 36, "`delay_before_retry 3`"),
        ("10-https.conf", 38, "one check per real server"),
        ("10-https.conf", 46, "misc_dynamic"),
        ("20-group.conf", 7, "group member fwmark 9"),
        (
            "20-group.conf",
            16,
            "`virtual_server fwmark 3`: not converted",
        ),
    ] {
        has_note(&imp.notes, file, line, text);
    }
    // README.txt is not included (the pattern is *.conf).
    assert!(!imp.notes.iter().any(|n| n.to_string().contains("README")));
    // With the config id the other conditional line counts.
    let lb1 = keepalived("keepalived/full.conf", Some("lb1"));
    assert_eq!(lb1.vrrp.unwrap().config.priority, 150);
    // The rendered text reads back, with and without a base.
    reads_back(&render(&imp, None, "keepalived full.conf"));
    // On a base with the two networks it names, a valid configuration:
    // VRRP on the port of the VIPs, the NAT gateway on the other.
    let mut base = lab_base("198.18.0.2");
    let mut inner = base.ports[0].clone();
    inner.name = "lan1".into();
    inner.device = "net_af_packet1,iface=eth1".into();
    inner.address = "198.19.0.2/24".parse().unwrap();
    inner.kernel = None;
    base.ports.push(inner);
    base.eal.cores = "0-2".into();
    let r = render(&imp, Some(&base), "keepalived full.conf");
    assert_eq!(r.config.vrrp.as_ref().unwrap().port, "lan0");
    let problems = lb_api::config::validate(&r.config);
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn keepalived_syntax_errors_have_their_line() {
    type Is = fn(&ErrorKind) -> bool;
    let cases: [(&str, usize, Is, &str); 7] = [
        (
            "keepalived/err-unclosed.conf",
            4,
            |k| *k == ErrorKind::UnclosedBlock,
            "never closed",
        ),
        (
            "keepalived/err-stray-close.conf",
            4,
            |k| *k == ErrorKind::UnexpectedClose,
            "`}` without a block",
        ),
        (
            "keepalived/err-quote.conf",
            2,
            |k| *k == ErrorKind::UnterminatedQuote,
            "quoted string is not closed",
        ),
        (
            "keepalived/err-cycle.conf",
            2,
            |k| matches!(k, ErrorKind::IncludeCycle { .. }),
            "includes itself",
        ),
        (
            "keepalived/err-includea.conf",
            1,
            |k| matches!(k, ErrorKind::NoIncludeMatch { keyword, .. } if keyword == "includea"),
            "no file matches",
        ),
        (
            "keepalived/err-open.conf",
            3,
            |k| *k == ErrorKind::OpenWithoutKeyword,
            "`{` without a keyword",
        ),
        (
            "keepalived/err-param-loop.conf",
            3,
            |k| *k == ErrorKind::ParameterLoop,
            "substitution does not end",
        ),
    ];
    for (file, line, is, says) in cases {
        let e = keepalived_text(file, &read(file), None).unwrap_err();
        assert_eq!(e.loc.as_ref().map(|l| l.line), Some(line), "{file}: {e}");
        assert!(is(&e.kind), "{file}: {e:?}");
        assert!(e.to_string().contains(says), "{file}: {e}");
        assert!(
            e.to_string().starts_with(&format!("{file}:{line}: ")),
            "{e}"
        );
    }
}

#[test]
fn keepalived_tokens_and_blocks() {
    let text = "\
a 1 \"two words\" # comment
b \"x#y!z\" ! another comment
c { d 1 } e 2
f
{
  g
}
h {
  i {
    j \"\"
  }
}
$P=5
k $P ${P}0 $Px $Q
";
    let (nodes, _) =
        keepalived::parse(Path::new("/nonexistent/t.conf"), "t.conf", text, None).unwrap();
    let keys: Vec<(&str, Vec<&str>)> = nodes
        .iter()
        .map(|n| (n.key.as_str(), n.args.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        keys,
        [
            ("a", vec!["1", "two words"]),
            ("b", vec!["x#y!z"]),
            ("c", vec![]),
            ("e", vec!["2"]),
            ("f", vec![]),
            ("h", vec![]),
            // $P followed by a blank or the end, ${P} anywhere; $Px and
            // undefined $Q stay as written.
            ("k", vec!["5", "50", "$Px", "$Q"]),
        ]
    );
    assert_eq!(nodes[2].block.as_ref().unwrap()[0].key, "d");
    assert_eq!(nodes[4].block.as_ref().unwrap()[0].key, "g");
    let i = &nodes[5].block.as_ref().unwrap()[0];
    assert_eq!(i.block.as_ref().unwrap()[0].args, [""]);
    assert_eq!(nodes[6].loc.line, 14);
}

#[test]
fn ldirectord_corpus() {
    let imp = ldirectord("ldirectord/full.cf");
    let all: Vec<&ServiceConfig> = imp.services.iter().map(|s| &s.config).collect();
    assert_eq!(all.len(), 7);
    // virtual6= with real6=: converted as written (validation refuses it).
    let v6 = all[3];
    assert_eq!((v6.vip, v6.port), (ip("2001:db8::1"), 80));
    assert_eq!(v6.real_servers.len(), 1);
    assert_eq!(
        (v6.real_servers[0].address, v6.real_servers[0].forward),
        (ip("2001:db8::11"), Forward::Dr)
    );
    let svcs: Vec<&ServiceConfig> = all.iter().copied().filter(|s| s.vip.is_ipv4()).collect();
    let web = svcs[0];
    // The comment at column 0 did not end the section: both servers.
    assert_eq!(web.real_servers.len(), 2);
    assert_eq!(web.real_servers[0].weight, 5);
    assert_eq!(web.scheduler, Scheduler::Wlc);
    assert_eq!(web.persistence, Some(Persistence::v4(600, 24)));
    let hc = web.health_check.as_ref().unwrap();
    assert_eq!(
        hc.check,
        CheckKind::Http {
            path: "/status".into(),
            status: 200,
            expect: Some("OK".into()),
            host: Some("www.example.com".into())
        }
    );
    // negotiatetimeout (global) for negotiate checks; the global interval
    // (the virtual's is ignored with fork=no); failurecount; quiescent=no
    // in the section overrides the global yes.
    assert_eq!(
        (
            hc.timeout_ms,
            hc.interval_ms,
            hc.fall,
            hc.rise,
            hc.on_failure
        ),
        (6000, 2000, 3, 1, OnFailure::Remove)
    );
    // The per-server request/receive: that server's own check.
    let own = web.real_servers[1].health_check.as_ref().unwrap();
    assert_eq!(
        own.check,
        CheckKind::Http {
            path: "/alive.txt".into(),
            status: 200,
            expect: Some("ALIVE".into()),
            host: Some("www.example.com".into())
        }
    );
    assert_eq!(web.real_servers[0].health_check, None);
    // The global fallback.
    assert_eq!(web.fallback.unwrap().address, ip("198.18.0.50"));
    // A range of NAT servers on another port; connect check on checkport;
    // the global quiescent=yes; its own fallback, the director itself.
    let nat = svcs[1];
    assert_eq!(nat.port, 443);
    assert_eq!(nat.real_servers.len(), 3);
    assert!(nat
        .real_servers
        .iter()
        .all(|r| r.port == Some(8443) && r.forward == Forward::Nat));
    assert_eq!(nat.real_servers[2].address, ip("198.18.0.23"));
    let hc = nat.health_check.as_ref().unwrap();
    assert_eq!(
        (&hc.check, hc.timeout_ms, hc.port, hc.on_failure),
        (&CheckKind::Tcp, 4000, Some(8443), OnFailure::Quiesce)
    );
    assert_eq!(nat.fallback.unwrap().address, ip("127.0.0.1"));
    // Port 53: UDP; the external check gets ldirectord's four arguments.
    let dns = svcs[2];
    assert_eq!(dns.protocol, Protocol::Udp);
    match &dns.health_check.as_ref().unwrap().check {
        CheckKind::Exec { command, args } => {
            assert_eq!(command, "/bin/sh");
            assert_eq!(
                args[1],
                "/usr/local/bin/check-dns \"$LBD_VIP\" \"$LBD_VPORT\" \"$LBD_RS_ADDRESS\" \"$LBD_RS_PORT\""
            );
        }
        other => panic!("{other:?}"),
    }
    // checktype=5 on https: a TCP check; checktype=on: none; ping: none.
    assert_eq!(svcs[3].health_check.as_ref().unwrap().check, CheckKind::Tcp);
    assert_eq!(svcs[4].health_check, None);
    assert_eq!(svcs[5].health_check, None);
    assert_eq!(svcs[5].scheduler, Scheduler::Wlc);
    assert_eq!(imp.autoreload, Some(false));
    for (line, text) in [
        (6, "direct routing and tunnels cannot change the port"),
        (9, "emailalert"),
        (26, "`checkinterval` in a virtual section"),
        (
            43,
            "`virtual=7`: not converted: ldirectord's fwmark services are not converted",
        ),
        (51, "`checktype=5`"),
        (51, "converted to a TCP connect check"),
        (57, "`checktype=ping`"),
        (58, "`scheduler=dh`"),
    ] {
        has_note(&imp.notes, "full.cf", line, text);
    }
    let r = render(&imp, None, "ldirectord full.cf");
    has_note(
        &r.notes,
        "full.cf",
        45,
        "forwards IPv6 to DR, tunnel and NAT",
    );
    reads_back(&r);
}

#[test]
fn ldirectord_errors_have_their_line() {
    type Is = fn(&ErrorKind) -> bool;
    let cases: [(&str, usize, Is); 4] = [
        ("ldirectord/err-blank-ends-section.cf", 5, |k| {
            *k == ErrorKind::IndentOutsideSection
        }),
        ("ldirectord/err-shallow-indent.cf", 2, |k| {
            *k == ErrorKind::ShallowIndent
        }),
        (
            "ldirectord/err-no-equals.cf",
            1,
            |k| matches!(k, ErrorKind::ExpectedKeyValue { found } if found == "checkinterval 5"),
        ),
        ("ldirectord/err-indent-outside.cf", 1, |k| {
            *k == ErrorKind::IndentOutsideSection
        }),
    ];
    for (file, line, is) in cases {
        let e = ldirectord::import(&read(file), file).unwrap_err();
        assert_eq!(e.loc.as_ref().map(|l| l.line), Some(line), "{file}: {e}");
        assert!(is(&e.kind), "{file}: {e:?}");
    }
}

#[test]
fn ldirectord_sections() {
    let cf = ldirectord::parse(
        "a=1\n# c\nvirtual=1.2.3.4:80\n\treal=1.2.3.5:80 gate\n# inside\n    b = \"x # y\"  # gone\n\nc=2\n",
        "t",
    )
    .unwrap();
    assert_eq!(cf.globals.len(), 2);
    assert_eq!(
        (cf.globals[1].key.as_str(), cf.globals[1].loc.line),
        ("c", 8)
    );
    assert_eq!(cf.virtuals.len(), 1);
    let v = &cf.virtuals[0];
    assert_eq!(v.settings.len(), 2);
    assert_eq!(v.settings[1].value, "\"x # y\"");
}

#[test]
fn ipvsadm_save_corpus() {
    let imp = ipvsadm("ipvsadm/saved.rules");
    let svcs: Vec<&ServiceConfig> = imp.services.iter().map(|s| &s.config).collect();
    assert_eq!(svcs.len(), 5);
    assert_eq!(svcs[0].real_servers.len(), 2);
    assert_eq!(svcs[1].persistence, Some(Persistence::v4(600, 24)));
    assert_eq!(svcs[1].real_servers[0].weight, 3);
    assert_eq!(svcs[1].real_servers[0].forward, Forward::Tunnel);
    assert_eq!(
        (svcs[2].protocol, svcs[2].scheduler),
        (Protocol::Udp, Scheduler::Wlc)
    );
    assert_eq!(svcs[2].real_servers[0].port, Some(5353));
    // A port name, as ipvsadm-save writes without -n.
    assert_eq!(
        Some(svcs[4].port),
        crate::ipvsadm::port_number("http-alt", Protocol::Tcp)
    );
    assert_eq!(svcs[4].scheduler, Scheduler::Sed);
    // `-A -f 3`: a service group, its real server with the port -r gave.
    assert_eq!(svcs[3].fwmark, Some(3));
    assert!(imp.fwmarks.is_empty());
    assert_eq!(svcs[3].real_servers[0].port, None, "198.18.0.11:0");
    assert_eq!(imp.services[1].origin.line, 4);
    for (line, text) in [
        (5, "`-x 1000`"),
        (5, "`-y 100`"),
        (6, "scheduler `dh`"),
        (8, "service group fwmark 3: lbd reads no firewall marks"),
    ] {
        has_note(&imp.notes, "saved.rules", line, text);
    }
    let e = ipvsadm_save::import(&read("ipvsadm/err-garbage.rules"), "g").unwrap_err();
    assert_eq!(e.loc.as_ref().unwrap().line, 3);
    assert!(
        matches!(&e.kind, ErrorKind::NotARule { line, .. } if line == "this is not a rule"),
        "{e:?}"
    );
    reads_back(&render(&imp, None, "ipvsadm saved.rules"));
}

#[test]
fn notes_are_sorted_by_file_then_line() {
    let at = |f: &str, l: usize| {
        Note::at(
            &Loc {
                file: f.into(),
                line: l,
            },
            "x",
        )
    };
    let mut v = vec![
        at("a", 9),
        at("b", 1),
        Note {
            loc: None,
            text: "y".into(),
        },
        at("a", 2),
    ];
    sort_notes(&mut v);
    let order: Vec<String> = v.iter().map(|n| n.to_string()).collect();
    assert_eq!(order, ["a:2: x", "a:9: x", "b:1: x", "y"]);
}

#[test]
fn a_bases_vrrp_and_sync_stay_unless_the_input_has_its_own() {
    let mut base = lab_base("198.18.0.2");
    base.vrrp = Some(VrrpConfig {
        port: "lan0".into(),
        vrid: 9,
        priority: 200,
        version: 3,
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
    });
    base.sync = Some(SyncConfig {
        peer: ip4("198.18.0.3"),
        port: 8848,
        max_kbps: 10_000,
        batch_ms: 50,
    });
    // ldirectord has no VRRP or sync: the base's stay.
    let ld = ldirectord::import(&to_lab(&read("seeds/004-ldirectord.cf")), "004").unwrap();
    let r = render(&ld, Some(&base), "ldirectord x");
    assert_eq!(r.config.vrrp, base.vrrp);
    assert_eq!(r.config.sync, base.sync);
    // keepalived's instance replaces the base's VRRP.
    let ka = keepalived_text(
        "seeds/003-keepalived-bypass.conf",
        &to_lab(&read("seeds/003-keepalived-bypass.conf")),
        None,
    )
    .unwrap();
    let r = render(&ka, Some(&base), "keepalived x");
    assert_eq!(r.config.vrrp.as_ref().unwrap().vrid, 51);
    assert_eq!(r.config.sync, base.sync);
}

#[test]
fn a_setting_inherited_by_several_servers_is_noted_once() {
    let text = "\
virtual_server 198.18.0.100 80 {
    lb_kind DR
    delay_before_retry 3
    real_server 198.18.0.11 80 {
        TCP_CHECK {
        }
    }
    real_server 198.18.0.12 80 {
        TCP_CHECK {
        }
    }
}
";
    let imp = keepalived_text("t.conf", text, None).unwrap();
    let r = render(&imp, None, "keepalived t.conf");
    let at3: Vec<&Note> = r
        .notes
        .iter()
        .filter(|n| n.loc.as_ref().is_some_and(|l| l.line == 3))
        .collect();
    assert_eq!(at3.len(), 1, "{:?}", r.notes);
    assert!(at3[0].text.contains("delay_before_retry 3"));
    // Both servers share the check: the service's.
    assert_eq!(
        r.config.services[0].health_check,
        Some(tcp_check(60_000, 5_000, 2))
    );
}

/// keepalived's IPv6 virtual and real servers (written bare, as
/// keepalived.conf does) are converted as written; the rendering notes
/// what lbd needs for them (a port's address6), and validation says so.
#[test]
fn keepalived_ipv6_servers_convert_and_are_noted() {
    let text = "virtual_server 2001:db8::100 80 {\n\
                \x20   lb_algo rr\n\
                \x20   lb_kind DR\n\
                \x20   persistence_timeout 60\n\
                \x20   persistence_granularity 64\n\
                \x20   real_server 2001:db8::10 80 {\n\
                \x20       weight 2\n\
                \x20   }\n\
                }\n";
    let imp = keepalived_text("v6.conf", text, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(imp.services.len(), 1);
    let s = &imp.services[0].config;
    assert_eq!((s.vip, s.port), (ip("2001:db8::100"), 80));
    assert_eq!(s.persistence.unwrap().prefix, Some(64));
    assert_eq!(s.real_servers, vec![real("2001:db8::10", 2, Forward::Dr)]);
    let r = render(&imp, Some(&lab_base("198.18.0.2")), "keepalived v6.conf");
    has_note(
        &r.notes,
        "v6.conf",
        1,
        "forwards IPv6 to DR, tunnel and NAT",
    );
    reads_back(&r);
    let e = lb_api::config::parse(&lb_api::config::to_ron_string(&r.config), "out").unwrap_err();
    assert!(
        e.to_string()
            .contains("real server 2001:db8::10 is not on any port's subnet"),
        "{e}"
    );
}

/// A base with two dual-stack ports: lan0 faces the clients (198.18.0.2,
/// 2001:db8::2), lan1 the NAT real servers (198.18.1.2, 2001:db8:1::2).
fn dual_stack_base() -> Config {
    lb_api::config::parse(
        r#"(eal: (cores: "0-2"), ports: [
            (name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24",
             address6: Some("2001:db8::2/64"), kernel: Some((iface: "lbd-lan0"))),
            (name: "lan1", device: "net_af_packet1,iface=eth1", address: "198.18.1.2/24",
             address6: Some("2001:db8:1::2/64"), kernel: Some((iface: "lbd-lan1"))),
        ])"#,
        "base",
    )
    .unwrap()
}

/// An IPv4 and an IPv6 vrrp_instance become `vrrp` and `vrrp6`: the IPv6
/// one VRRPv3 whatever vrrp_version says, its floating NAT66 gateway in
/// `vrrp6.addresses`, the peers and excluded addresses of the other
/// family moved to the instance of their family; the whole validates.
#[test]
fn keepalived_dual_stack_becomes_vrrp_and_vrrp6() {
    let file = "keepalived/dual-stack.conf";
    let imp = keepalived(file, None);
    let v4 = imp.vrrp.as_ref().unwrap();
    let v6 = imp.vrrp6.as_ref().unwrap();
    assert_eq!(v4.origin.line, 9);
    assert_eq!(v6.origin.line, 28);
    assert_eq!(v6.own_address, Some(ip("2001:db8::2")));
    assert_eq!(v6.prefix, Some(64));
    let r = render(&imp, Some(&dual_stack_base()), "keepalived dual-stack.conf");
    reads_back(&r);
    let vrrp = r.config.vrrp.as_ref().unwrap();
    let vrrp6 = r.config.vrrp6.as_ref().unwrap();
    assert_eq!(
        (vrrp.port.as_str(), vrrp.vrid, vrrp.priority, vrrp.version),
        ("lan0", 51, 150, 2)
    );
    assert_eq!(vrrp.auth_pass.as_deref(), Some("s3cret"));
    assert_eq!(vrrp.unicast_peers, [ip("198.18.0.3")]);
    // The service VIP is held anyway; the IPv4 gateway written in the IPv6
    // instance's virtual_ipaddress_excluded is the IPv4 instance's.
    assert_eq!(vrrp.addresses, [ip("198.18.1.1")]);
    assert_eq!(vrrp.notify_master.as_deref(), Some("/etc/lbd/master.sh"));
    assert_eq!(
        (
            vrrp6.port.as_str(),
            vrrp6.vrid,
            vrrp6.priority,
            vrrp6.version
        ),
        ("lan0", 52, 150, 3)
    );
    assert_eq!(vrrp6.advert_interval_ms, 500);
    assert!(!vrrp6.preempt);
    assert_eq!(vrrp6.unicast_peers, [ip("2001:db8::3")]);
    assert_eq!(vrrp6.addresses, [ip("2001:db8:1::1")]);
    assert_eq!(vrrp6.notify_master.as_deref(), Some("/etc/lbd/master6.sh"));
    let services: Vec<(IpAddr, u16, Forward)> = r
        .config
        .services
        .iter()
        .map(|s| (s.vip, s.port, s.real_servers[0].forward))
        .collect();
    assert_eq!(
        services,
        [
            (ip("198.18.0.100"), 80, Forward::Dr),
            (ip("2001:db8::100"), 80, Forward::Dr),
            (ip("2001:db8::100"), 443, Forward::Nat),
        ]
    );
    has_note(
        &r.notes,
        file,
        20,
        "an IPv6 peer in an instance of the other family",
    );
    has_note(&r.notes, file, 20, "`vrrp6`");
    has_note(
        &r.notes,
        file,
        40,
        "an IPv4 address in an instance of the other family",
    );
    has_note(
        &r.notes,
        file,
        37,
        "the options after the address are not converted",
    );
    // Nothing says lbd is IPv4 only, or refuses a second family.
    for n in &r.notes {
        assert!(!n.text.contains("IPv4 only"), "{n}");
        assert!(!n.text.contains("one VRRP instance"), "{n}");
    }
    let ron = lb_api::config::to_ron_string(&r.config);
    lb_api::config::parse(&ron, "out").unwrap_or_else(|e| panic!("{e}\n{ron}"));
    // Without a base the placeholder port gets an IPv6 address as well, and
    // the text holds both instances.
    let p = render(&imp, None, "keepalived dual-stack.conf");
    reads_back(&p);
    let port = &p.config.ports[0];
    assert_eq!(
        port.address6.map(|c| c.addr),
        Some("2001:db8::2".parse().unwrap())
    );
    assert_eq!(p.config.vrrp6.as_ref().unwrap().port, port.name);
    assert!(p.text.contains("vrrp6: Some("), "{}", p.text);
}

/// Two instances of one family: the one holding a service's VIP becomes
/// lbd's instance of that family, the other is noted; an address of the
/// other family in virtual_ipaddress is ignored (as keepalived does), and
/// cross-family peers or excluded addresses without an instance of their
/// family are noted with why.
#[test]
fn keepalived_instances_of_one_family_and_mixed_families_are_noted() {
    let text = "\
vrrp_instance A6 {
    virtual_router_id 60
    native_ipv6
    version 2
    authentication {
        auth_type PASS
        auth_pass x
    }
    unicast_peer {
        2001:db8::3
    }
}
vrrp_instance B6 {
    virtual_router_id 61
    virtual_ipaddress {
        2001:db8::100
        198.18.0.50
    }
    virtual_ipaddress_excluded {
        198.18.0.51
    }
    unicast_peer {
        198.18.0.3
    }
}
virtual_server 2001:db8::100 80 {
    lb_kind DR
    real_server 2001:db8::11 80 {
    }
}
";
    let imp = keepalived_text("two6.conf", text, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(imp.vrrp.is_none());
    let v6 = imp.vrrp6.as_ref().unwrap();
    // B6 holds the service's VIP.
    assert_eq!(v6.config.vrid, 61);
    assert_eq!(v6.config.version, 3);
    assert_eq!(v6.virtual_addresses, [ip("2001:db8::100")]);
    assert!(v6.config.addresses.is_empty());
    let n = &imp.notes;
    has_note(
        n,
        "two6.conf",
        1,
        "lbd runs one IPv6 VRRP instance, `vrrp6`",
    );
    has_note(
        n,
        "two6.conf",
        17,
        "its family differs from the instance's first address",
    );
    has_note(n, "two6.conf", 20, "which this file does not have");
    has_note(n, "two6.conf", 23, "a unicast peer of the other family");
    // An instance that is not converted says nothing about its own lines.
    assert!(!n
        .iter()
        .any(|x| x.loc.as_ref().is_some_and(|l| l.line == 4)));
}

/// lbd's sync goes over IPv4: an IPv6-only file's VRRP peer is not taken
/// as the sync peer, and the note says why.
#[test]
fn keepalived_sync_peer_is_not_an_ipv6_vrrp_peer() {
    let text = "\
global_defs {
    lvs_sync_daemon eth0 V6
}
vrrp_instance V6 {
    virtual_router_id 60
    unicast_peer {
        2001:db8::3
    }
    virtual_ipaddress {
        2001:db8::100
    }
}
";
    let imp = keepalived_text("s6.conf", text, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(imp.sync.as_ref().unwrap().peer, None);
    has_note(
        &imp.notes,
        "s6.conf",
        2,
        "goes to the peer director's IPv4 address",
    );
}

/// An IPv6 instance's own settings: `version 2` and authentication are
/// VRRPv2's, which IPv6 does not have.
#[test]
fn keepalived_ipv6_instance_is_vrrpv3() {
    let text = "\
vrrp_instance V6 {
    virtual_router_id 60
    native_ipv6
    version 2
    advert_int 0.25
    authentication {
        auth_type PASS
        auth_pass x
    }
}
";
    let imp = keepalived_text("v3.conf", text, None).unwrap_or_else(|e| panic!("{e}"));
    let v6 = imp.vrrp6.as_ref().unwrap();
    assert_eq!(v6.config.version, 3);
    assert_eq!(v6.config.advert_interval_ms, 250);
    assert_eq!(v6.config.auth_pass, None);
    has_note(&imp.notes, "v3.conf", 4, "VRRP over IPv6 is version 3");
    has_note(&imp.notes, "v3.conf", 6, "VRRPv3 has no authentication");
    assert!(!imp.notes.iter().any(|n| n.text.contains("native_ipv6")));
}

/// `virtual_server fwmark` with `ip_family inet6`: its assumed members
/// are the IPv6 VRRP addresses.
#[test]
fn keepalived_ipv6_fwmark_group_takes_the_ipv6_vrrp_addresses() {
    let text = "\
vrrp_instance V4 {
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100
    }
}
vrrp_instance V6 {
    virtual_router_id 52
    virtual_ipaddress {
        2001:db8::100
    }
}
virtual_server fwmark 6 {
    ip_family inet6
    lb_kind DR
    real_server 2001:db8::11 80 {
    }
}
";
    let imp = keepalived_text("fw6.conf", text, None).unwrap_or_else(|e| panic!("{e}"));
    let members: Vec<IpAddr> = imp.fwmarks[0].matches.iter().map(|m| m.vip).collect();
    assert_eq!(members, [ip("2001:db8::100")]);
    assert!(!imp.notes.iter().any(|n| n.text.contains("ip_family")));
}

/// ldirectord's IPv6 directives: virtual6=, real6=, fallback6= (global for
/// the IPv6 services, while the global fallback= is the IPv4 ones').
#[test]
fn ldirectord_virtual6_real6_fallback6() {
    let text = "\
fallback=198.18.0.50:80
fallback6=[2001:db8::50]:80
checktimeout=3

virtual6=[2001:db8::100]:80
    real6=[2001:db8::10]:80 gate 2
    real6=[2001:db8::11]:80 ipip
    checktype=connect

virtual6=[2001:db8::100]:443
    real6=[2001:db8:1::10]:8443 masq
    real6=[2001:db8::20]->[2001:db8::21]:443 gate
    fallback6=[::1]:443

virtual=198.18.0.100:80
    real=198.18.0.11:80 gate

virtual=[2001:db8::101]:80
    real=[2001:db8::12]:80 gate
    fallback=198.18.0.50:80
";
    let imp = ldirectord::import(text, "v6.cf").unwrap_or_else(|e| panic!("{e}"));
    let s: Vec<&ServiceConfig> = imp.services.iter().map(|s| &s.config).collect();
    assert_eq!(s.len(), 4);
    assert_eq!((s[0].vip, s[0].port), (ip("2001:db8::100"), 80));
    assert_eq!(
        s[0].real_servers
            .iter()
            .map(|r| (r.address, r.weight, r.forward))
            .collect::<Vec<_>>(),
        [
            (ip("2001:db8::10"), 2, Forward::Dr),
            (ip("2001:db8::11"), 1, Forward::Tunnel)
        ]
    );
    assert_eq!(s[0].fallback.unwrap().address, ip("2001:db8::50"));
    assert_eq!(s[1].real_servers[0].forward, Forward::Nat);
    assert_eq!(s[1].real_servers[0].port, Some(8443));
    assert_eq!(s[1].fallback.unwrap().address, ip("::1"));
    assert_eq!(s[2].fallback.unwrap().address, ip("198.18.0.50"));
    assert_eq!(s[3].fallback, None);
    has_note(
        &imp.notes,
        "v6.cf",
        12,
        "ldirectord has no IPv6 address ranges",
    );
    has_note(&imp.notes, "v6.cf", 18, "ldirectord wants `virtual6=`");
    has_note(
        &imp.notes,
        "v6.cf",
        20,
        "its fallback server must be too (`fallback6=`)",
    );
    for n in &imp.notes {
        assert!(!n.text.contains("IPv4 only"), "{n}");
    }
    // ::1 is the director itself: its port's IPv6 address.
    let r = render(&imp, Some(&dual_stack_base()), "ldirectord v6.cf");
    let fb = r.config.services[1].fallback.unwrap();
    assert_eq!(fb.address, ip("2001:db8::2"));
    reads_back(&r);
    // No VRRP in ldirectord.cf: the configuration validates as it is.
    let ron = lb_api::config::to_ron_string(&r.config);
    lb_api::config::parse(&ron, "out").unwrap_or_else(|e| panic!("{e}\n{ron}"));
}

/// ldirectord's bracketed `virtual=[...]:PORT` and `real=[...]:PORT`.
#[test]
fn ldirectord_bracketed_ipv6() {
    let text = "virtual=[2001:db8::100]:80\n\
                \x20   real=[2001:db8::10]:80 gate\n\
                \x20   real=[2001:db8::11] gate 3\n\
                \x20   fallback=[2001:db8::50]:80\n";
    let imp = ldirectord::import(text, "v6.cf").unwrap_or_else(|e| panic!("{e}"));
    let s = &imp.services[0].config;
    assert_eq!((s.vip, s.port), (ip("2001:db8::100"), 80));
    assert_eq!(
        s.real_servers
            .iter()
            .map(|r| (r.address, r.weight))
            .collect::<Vec<_>>(),
        [(ip("2001:db8::10"), 1), (ip("2001:db8::11"), 3)]
    );
    assert_eq!(s.fallback.unwrap().address, ip("2001:db8::50"));
    let r = render(&imp, None, "ldirectord v6.cf");
    has_note(&r.notes, "v6.cf", 1, "forwards IPv6 to DR, tunnel and NAT");
}

/// ipvsadm-save's IPv6 rules.
#[test]
fn ipvsadm_save_ipv6_rules() {
    let text = "-A -t [2001:db8::100]:80 -s wlc\n\
                -a -t [2001:db8::100]:80 -r [2001:db8::10]:80 -g -w 1\n";
    let imp = ipvsadm_save::import(text, "v6.rules").unwrap_or_else(|e| panic!("{e}"));
    let s = &imp.services[0].config;
    assert_eq!(s.vip, ip("2001:db8::100"));
    assert_eq!(s.real_servers[0].address, ip("2001:db8::10"));
    let r = render(&imp, None, "ipvsadm v6.rules");
    has_note(
        &r.notes,
        "v6.rules",
        1,
        "forwards IPv6 to DR, tunnel and NAT",
    );
}
