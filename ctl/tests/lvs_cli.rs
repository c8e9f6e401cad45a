//! "Coming from LVS" without root: `lbctl ipvsadm`, lbctl installed as
//! `ipvsadm`/`ipvsadm-save`/`ipvsadm-restore`, and `lbctl import`, run as
//! built against a fake lbd. Checks the requests lbctl sends, what it
//! prints and its exit status.

mod common;

use common::*;
use lb_api::config::{
    Config, Forward, Protocol, RealServerConfig, Scheduler, ServiceConfig, Timeouts,
};
use lb_api::protocol::{
    Counters, ErrorKind, Rates, Request, Response, ServiceInfo, ServiceKey, StatusInfo,
};

fn key(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::addr(Protocol::Tcp, vip.parse().unwrap(), port)
}

fn status() -> StatusInfo {
    StatusInfo {
        version: "0.1.0".into(),
        uptime_s: 1.0,
        config_path: "/etc/lbd/lbd.ron".into(),
        generation: 1,
        last_change_ok: true,
        last_change_message: String::new(),
        ports: vec![],
        workers: vec![],
        conn_capacity: 65536,
        conns: 0,
        counters: Default::default(),
        vrrp: None,
        vrrp_instances: Vec::new(),
        announce: None,
    }
}

/// The lab's running configuration as lbd saves it, with `services`.
fn running(services: &str) -> String {
    running_with(services, "")
}

/// As [`running`], with more top-level `sections`.
fn running_with(services: &str, sections: &str) -> String {
    let cfg = lb_api::config::parse(
        &format!(
            r#"(ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
                address: "198.18.0.2/24", kernel: Some((iface: "lbd-lan0")))],
                services: [{services}], {sections})"#
        ),
        "running",
    )
    .unwrap();
    lb_api::config::to_ron_string(&cfg)
}

fn parse_ron(ron: &str) -> Config {
    lb_api::config::parse(ron, "sent").unwrap_or_else(|e| panic!("{e}\n{ron}"))
}

/// The seed's ipvsadm words after the program name.
fn seed_line(file: &str, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(data(&format!("seeds/{file}"))).unwrap();
    let line = text.lines().nth(n).unwrap();
    line.split_whitespace().skip(1).map(String::from).collect()
}

#[test]
fn seed_001_lines_run_verbatim() {
    // ipvsadm –C, with the document's en dash.
    let fake = Fake::start(vec![ok(Response::Applied { generation: 2 })]);
    let words = seed_line("001-ipvsadm.sh", 0);
    let mut args = vec!["ipvsadm"];
    args.extend(words.iter().map(String::as_str));
    let out = lbctl(&fake.socket, &args, "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "ipvsadm prints nothing on success");
    assert!(
        stderr(&out).contains("read `–C` as `-C`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fake.requests(), [Request::Clear]);

    let fake = Fake::start(vec![ok(Response::Applied { generation: 3 })]);
    let words = seed_line("001-ipvsadm.sh", 1);
    let mut args = vec!["ipvsadm"];
    args.extend(words.iter().map(String::as_str));
    let out = lbctl(&fake.socket, &args, "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fake.requests(),
        [Request::AddService(ServiceConfig {
            vip: "192.168.11.200".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
            scheduler: Scheduler::Wlc,
            real_servers: vec![],
            persistence: None,
            health_check: None,
            fallback: None,
            sloppy_tcp: false,
            ecmp: false,
            fwmark: None,
        })]
    );

    // -r RIP, the real server as ipvsadm takes it.
    let fake = Fake::start(vec![ok(Response::Applied { generation: 4 })]);
    let words = seed_line("001-ipvsadm.sh", 2);
    let mut args = vec!["ipvsadm"];
    args.extend(words.iter().map(String::as_str));
    let out = lbctl(&fake.socket, &args, "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fake.requests(),
        [Request::AddReal {
            service: key("192.168.11.200", 80),
            real: RealServerConfig {
                address: "192.168.11.21".parse().unwrap(),
                port: None,
                weight: 1,
                forward: Forward::Dr,
                health_check: None,
            },
        }]
    );

    // -Ln: ipvsadm's table, sorted, with its padding.
    let svc = ServiceInfo {
        members: Vec::new(),
        key: key("192.168.11.200", 80),
        scheduler: Scheduler::Wlc,
        persistence: None,
        counters: Counters::default(),
        rates: Rates::default(),
        reals: vec![real_dr("192.168.11.22"), real_dr("192.168.11.21")],
    };
    // lbd holds a just-added server back until its MAC is resolved (its
    // weight 0 for that moment): ipvsadm shows the configured weight.
    let mut held = real_dr("192.168.11.22");
    held.weight = 0;
    let svc = ServiceInfo {
        reals: vec![held, real_dr("192.168.11.21")],
        ..svc
    };
    let fake = Fake::start(vec![
        ok(Response::Status(status())),
        ok(Response::Services(vec![svc])),
        ok(Response::Config(running_192())),
    ]);
    let words = seed_line("001-ipvsadm.sh", 4);
    assert_eq!(words, ["-Ln"]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-Ln"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "IP Virtual Server version 1.2.1 (size=65536)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  192.168.11.200:80 wlc\n  \
         -> 192.168.11.21:80             Route   1      0          0         \n  \
         -> 192.168.11.22:80             Route   1      0          0         \n"
    );
    assert_eq!(
        fake.requests(),
        [Request::Status, Request::List, Request::Save]
    );
}

/// Seed 001's table as lbd would save it (on a port of its subnet).
fn running_192() -> String {
    let cfg = lb_api::config::parse(
        r#"(ports: [(name: "lan0", device: "net_af_packet0,iface=eth0", address: "192.168.11.10/24")],
            services: [(vip: "192.168.11.200", port: 80,
                        real_servers: [(address: "192.168.11.21"), (address: "192.168.11.22")])])"#,
        "running",
    )
    .unwrap();
    lb_api::config::to_ron_string(&cfg)
}

#[test]
fn ipvsadms_timeout_option_is_not_lbctls() {
    let fake = Fake::start(vec![ok(Response::Timeouts(Timeouts::default()))]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-L", "--timeout"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "Timeout (tcp tcpfin udp): 900 120 300\n");
    assert_eq!(fake.requests(), [Request::GetTimeouts]);
    // lbctl's own global options still come before `ipvsadm`.
    let fake = Fake::start(vec![ok(Response::Timeouts(Timeouts::default()))]);
    let sock = format!("--socket={}", fake.socket.display());
    let out = run_with(
        &lbctl_path(),
        &["--timeout", "3", &sock, "ipvsadm", "-l", "--timeout"],
        "",
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fake.requests(), [Request::GetTimeouts]);
}

#[test]
fn save_prints_ipvsadm_save_rules_and_restore_applies_them_at_once() {
    let cfg = running(
        r#"(vip: "198.18.0.100", port: 80, scheduler: Rr,
            real_servers: [(address: "198.18.0.12"), (address: "198.18.0.11", weight: 2)])"#,
    );
    let fake = Fake::start(vec![ok(Response::Config(cfg.clone()))]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-S", "-n"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rules = "\
-A -t 198.18.0.100:80 -s rr
-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 2
-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1
";
    assert_eq!(stdout(&out), rules);
    assert_eq!(fake.requests(), [Request::Save]);

    // -R onto a cleared table: one restore with the same services.
    let fake = Fake::start(vec![
        ok(Response::Config(running(""))),
        ok(Response::Applied { generation: 9 }),
    ]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-R"], rules);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = fake.requests();
    assert_eq!(got[0], Request::Save);
    let Request::Restore { ron } = &got[1] else {
        panic!("{got:?}")
    };
    // The same configuration, the real servers in ipvsadm's sorted order
    // (as `ipvsadm-save | ipvsadm-restore` leaves IPVS).
    let mut want = parse_ron(&cfg);
    want.services[0].real_servers.sort_by_key(|r| r.address);
    assert_eq!(parse_ron(ron), want);

    // A failing line changes nothing: lbd never gets a restore.
    let fake = Fake::start(vec![ok(Response::Config(cfg.clone()))]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-R"], rules);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 1: service 198.18.0.100:80/tcp already exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fake.requests(), [Request::Save]);
}

/// A persistent service group on 80 and 443, as lbd runs it.
const GROUP: &str = r#"(fwmark: Some(3), persistence: Some((timeout: 300)),
    real_servers: [(address: "198.18.0.12"), (address: "198.18.0.11", port: Some(80))])"#;

/// What carries mark 3.
const MARK3: &str = r#"fwmarks: [(mark: 3, match: [(vip: "198.18.0.100", ports: 80), (vip: "198.18.0.100", ports: 443)])]"#;

#[test]
fn fwmark_services_are_service_groups() {
    // -A -f and -a -f: a group (its members are lbd's configuration's).
    let fake = Fake::start(vec![ok(Response::Applied { generation: 2 })]);
    let out = lbctl(
        &fake.socket,
        &["ipvsadm", "-A", "-f", "3", "-s", "wlc", "-p", "300"],
        "",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = fake.requests();
    let Request::AddService(g) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(
        (g.fwmark, g.persistence.map(|p| p.timeout)),
        (Some(3), Some(300))
    );
    let fake = Fake::start(vec![ok(Response::Applied { generation: 3 })]);
    let out = lbctl(
        &fake.socket,
        &["ipvsadm", "-a", "-f", "3", "-r", "198.18.0.11:80", "-g"],
        "",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(matches!(
        &fake.requests()[0],
        Request::AddReal { service, real } if *service == ServiceKey::group(3) && real.port == Some(80)
    ));

    // -Ln lists it as ipvsadm lists a fwmark service; -f 3 picks it.
    let cfg = running_with(
        &format!(
            r#"(vip: "198.18.0.100", port: 22, real_servers: [(address: "198.18.0.11")]), {GROUP}"#
        ),
        MARK3,
    );
    let list = vec![
        ServiceInfo {
            members: Vec::new(),
            key: key("198.18.0.100", 22),
            scheduler: Scheduler::Wlc,
            persistence: None,
            counters: Counters::default(),
            rates: Rates::default(),
            reals: vec![real_dr("198.18.0.11")],
        },
        ServiceInfo {
            members: parse_ron(&cfg).fwmarks[0].matches.clone(),
            key: ServiceKey::group(3),
            scheduler: Scheduler::Wlc,
            persistence: Some(lb_api::config::Persistence::default()),
            counters: Counters::default(),
            rates: Rates::default(),
            reals: vec![real_dr("198.18.0.11"), real_dr("198.18.0.12")],
        },
    ];
    let fake = Fake::start(vec![
        ok(Response::Status(status())),
        ok(Response::Services(list.clone())),
        ok(Response::Config(cfg.clone())),
    ]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-L", "-n"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("TCP  198.18.0.100:22 wlc\n  -> 198.18.0.11:80")
            && text.contains("\nFWM  3 wlc persistent 300\n  -> 198.18.0.11:80 "),
        "{text}"
    );
    let fake = Fake::start(vec![
        ok(Response::Services(list.clone())),
        ok(Response::Config(cfg.clone())),
    ]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-L", "-n", "-f", "3"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stdout(&out).contains("TCP"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("FWM  3 wlc persistent 300\n"),
        "{}",
        stdout(&out)
    );
    // lbctl's own listing names the members.
    let fake = Fake::start(vec![
        ok(Response::Status(status())),
        ok(Response::Services(list)),
    ]);
    let out = lbctl(&fake.socket, &["list"], "");
    assert!(
        stdout(&out).contains(
            "FWM  3 wlc persistent 300\n  match 198.18.0.100:80/tcp, 198.18.0.100:443/tcp\n"
        ),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // -S: ipvsadm-save's rules, and a note that the members are lbd's.
    let fake = Fake::start(vec![ok(Response::Config(cfg.clone()))]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-S", "-n"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rules = "\
-A -t 198.18.0.100:22 -s wlc
-a -t 198.18.0.100:22 -r 198.18.0.11:22 -g -w 1
-A -f 3 -s wlc -p 300
-a -f 3 -r 198.18.0.11:80 -g -w 1
-a -f 3 -r 198.18.0.12:0 -g -w 1
";
    assert_eq!(stdout(&out), rules);
    // Cleared and restored: the same configuration; its `fwmarks` are not
    // rules, and stay.
    let fake = Fake::start(vec![
        ok(Response::Config(cfg.clone())),
        ok(Response::Applied { generation: 9 }),
    ]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-R"], &format!("-C\n{rules}"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = fake.requests();
    let Request::Restore { ron } = &got[1] else {
        panic!("{got:?}")
    };
    let mut want = parse_ron(&cfg);
    want.services[1].real_servers.sort_by_key(|r| r.address);
    assert_eq!(parse_ron(ron), want);
    // And saved again: the same rules.
    let fake = Fake::start(vec![ok(Response::Config(ron.clone()))]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-S", "-n"], "");
    assert_eq!(stdout(&out), rules);
}

#[test]
fn refusals_name_what_lbd_lacks_and_touch_nothing() {
    // A socket nobody listens on: connecting would exit 7, refusing is 64.
    let dir = TempDir::new();
    let nowhere = dir.0.join("none.sock");
    for (args, says) in [
        (
            &["ipvsadm", "--start-daemon", "master", "--syncid", "3"][..],
            "`--start-daemon master` is not supported",
        ),
        (
            &[
                "ipvsadm",
                "-a",
                "-t",
                "198.18.0.100:80",
                "-r",
                "198.18.0.11",
                "-x",
                "9",
            ],
            "`-x 9` is not supported",
        ),
        (
            &["ipvsadm", "-A", "-u", "198.18.0.100:53", "-o"],
            "`-o` is not supported",
        ),
        (
            &["ipvsadm", "-Z", "-t", "198.18.0.100:80"],
            "lbd zeroes all counters at once",
        ),
        (
            &["ipvsadm", "-A", "-t", "198.18.0.100:80", "-s", "dh"],
            "scheduler `dh` is not supported",
        ),
        (
            &["ipvsadm", "-a", "-t", "198.18.0.100:80"],
            "You need to supply the 'real-server' option",
        ),
    ] {
        let out = lbctl(&nowhere, args, "");
        assert_eq!(code(&out), 64, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
    // --json has nothing to do with ipvsadm's text.
    let out = lbctl(&nowhere, &["--json", "ipvsadm", "-Ln"], "");
    assert_eq!(code(&out), 64);
    // Help, without lbd.
    let out = lbctl(&nowhere, &["ipvsadm", "--help"], "");
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("Refused, with a message saying why"));
    let out = run_with(&lbctl_path(), &["help", "ipvsadm"], "", &[]);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("-f / --fwmark-service"),
        "{}",
        stdout(&out)
    );
}

/// lbctl under ipvsadm's names, as a symlink would install it.
#[test]
fn installed_as_ipvsadm() {
    let bin = TempDir::new();
    for name in ["ipvsadm", "ipvsadm-save", "ipvsadm-restore"] {
        std::os::unix::fs::symlink(lbctl_path(), bin.0.join(name)).unwrap();
    }
    let svc = ServiceInfo {
        members: Vec::new(),
        key: key("198.18.0.100", 80),
        scheduler: Scheduler::Rr,
        persistence: None,
        counters: Counters::default(),
        rates: Rates::default(),
        reals: vec![real_dr("198.18.0.11")],
    };
    let fake = Fake::start(vec![
        ok(Response::Status(status())),
        ok(Response::Services(vec![svc])),
    ]);
    let env = [("LBCTL_SOCKET", fake.socket.as_path())];
    let out = run_with(&bin.0.join("ipvsadm"), &["-ln"], "", &env);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("TCP  198.18.0.100:80 rr\n"),
        "{}",
        stdout(&out)
    );
    // Without the configured weights (lbd hung up), lbd's are shown.
    assert!(
        stdout(&out).contains("  -> 198.18.0.11:80               Route   1 "),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        fake.requests(),
        [Request::Status, Request::List, Request::Save]
    );

    let cfg =
        running(r#"(vip: "198.18.0.100", port: 80, real_servers: [(address: "198.18.0.11")])"#);
    let fake = Fake::start(vec![ok(Response::Config(cfg))]);
    let env = [("LBCTL_SOCKET", fake.socket.as_path())];
    let out = run_with(&bin.0.join("ipvsadm-save"), &["-n"], "", &env);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "-A -t 198.18.0.100:80 -s wlc\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\n"
    );
    fake.requests();

    let fake = Fake::start(vec![
        ok(Response::Config(running(""))),
        ok(Response::Applied { generation: 2 }),
    ]);
    let env = [("LBCTL_SOCKET", fake.socket.as_path())];
    let out = run_with(
        &bin.0.join("ipvsadm-restore"),
        &[],
        "-A -u 198.18.0.100:53 -s rr\n",
        &env,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = fake.requests();
    let Request::Restore { ron } = &got[1] else {
        panic!("{got:?}")
    };
    assert_eq!(parse_ron(ron).services[0].protocol, Protocol::Udp);
}

#[test]
fn lbctls_own_verbs_take_n_and_hint_at_ipvsadm() {
    let fake = Fake::start(vec![ok(Response::Services(vec![]))]);
    let out = lbctl(&fake.socket, &["--json", "list", "-n"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fake.requests(), [Request::List]);
    let dir = TempDir::new();
    let nowhere = dir.0.join("none.sock");
    let out = lbctl(
        &nowhere,
        &["real", "add", "198.18.0.100:80", "-r", "198.18.0.11", "-g"],
        "",
    );
    assert_eq!(code(&out), 64);
    assert!(
        stderr(&out).contains("lbctl: hint: that looks like ipvsadm's syntax: `lbctl ipvsadm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn import_prints_a_configuration_and_lists_what_was_not_converted() {
    let dir = TempDir::new();
    let nowhere = dir.0.join("none.sock");
    let file = data("seeds/003-keepalived-fwmark.conf");
    let out = lbctl(
        &nowhere,
        &["import", "keepalived", file.to_str().unwrap()],
        "",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let top: Vec<&str> = text.lines().take_while(|l| l.starts_with("//")).collect();
    assert!(
        top.iter().any(|l| l.contains(
            "003-keepalived-fwmark.conf:18: `virtual_server fwmark 3`: lbd reads no firewall marks"
        ) && l.contains("its members are ASSUMED to be 172.16.0.30:80/tcp")),
        "{top:?}"
    );
    assert!(
        stderr(&out).contains(
            "003-keepalived-fwmark.conf:18: `virtual_server fwmark 3`: lbd reads no firewall marks"
        ),
        "{}",
        stderr(&out)
    );
    // The output reads back as RON.
    let _: Config = ron::Options::default().from_str(&text).unwrap();

    // --base: a complete configuration, checked.
    let base = dir.0.join("base.ron");
    std::fs::write(&base, running("")).unwrap();
    let lab = dir.0.join("ldirectord.cf");
    let cf = std::fs::read_to_string(data("seeds/004-ldirectord.cf"))
        .unwrap()
        .replace("192.168.214.140", "198.18.0.100")
        .replace("192.168.214.143", "198.18.0.11")
        .replace("192.168.214.145", "198.18.0.12");
    std::fs::write(&lab, cf).unwrap();
    let args = [
        "import",
        "ldirectord",
        lab.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
    ];
    let out = lbctl(&nowhere, &args, "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let cfg = parse_ron(&stdout(&out));
    assert_eq!(
        cfg.services[0].fallback.unwrap().address.to_string(),
        "198.18.0.2"
    );
    // The seed's own addresses are not on the base's subnet: exit 2.
    let args = [
        "import",
        "ldirectord",
        data("seeds/004-ldirectord.cf").to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lbctl(&nowhere, &args, "");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not on any port's subnet"),
        "{}",
        stderr(&out)
    );

    // A file that does not parse: exit 2, FILE:LINE.
    let bad = data("keepalived/err-stray-close.conf");
    let out = lbctl(
        &nowhere,
        &["import", "keepalived", bad.to_str().unwrap()],
        "",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("err-stray-close.conf:4: `}` without a block"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn import_apply_keeps_the_running_ports_vrrp_and_sync() {
    let dir = TempDir::new();
    let conf = dir.0.join("keepalived.conf");
    let text = std::fs::read_to_string(data("seeds/003-keepalived-bypass.conf"))
        .unwrap()
        .replace("172.16.0.30", "198.18.0.100")
        .replace("172.16.0.31", "198.18.0.11")
        .replace("172.16.0.32", "198.18.0.12");
    std::fs::write(&conf, text).unwrap();
    let before = running(r#"(vip: "198.18.0.100", port: 443)"#);
    let fake = Fake::start(vec![
        ok(Response::Config(before.clone())),
        ok(Response::Applied { generation: 5 }),
    ]);
    let out = lbctl(
        &fake.socket,
        &["import", "keepalived", conf.to_str().unwrap(), "--apply"],
        "",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "applied (configuration generation 5): 1 services\n"
    );
    assert!(
        stderr(&out).contains("vrrp: not applied: lbd reads its vrrp section when it starts"),
        "{}",
        stderr(&out)
    );
    let got = fake.requests();
    assert_eq!(got[0], Request::Save);
    let Request::Restore { ron } = &got[1] else {
        panic!("{got:?}")
    };
    let sent = parse_ron(ron);
    let was = parse_ron(&before);
    assert_eq!(sent.ports, was.ports);
    assert_eq!(sent.vrrp, None);
    assert_eq!(sent.services.len(), 1);
    assert_eq!(sent.services[0].port, 80);
    assert_eq!(sent.services[0].real_servers.len(), 2);
    // lbd refusing the result: its exit status.
    let fake = Fake::start(vec![
        ok(Response::Config(before)),
        err(ErrorKind::Invalid, "services[0]: bad"),
    ]);
    let out = lbctl(
        &fake.socket,
        &["import", "keepalived", conf.to_str().unwrap(), "--apply"],
        "",
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let _ = fake.requests();
}

/// ipvsadm's bracket syntax for IPv6 goes to lbd as IPv6 addresses, and
/// IPv6 services and connections are listed as ipvsadm lists them.
#[test]
fn ipv6_with_ipvsadms_brackets() {
    let fake = Fake::start(vec![ok(Response::Applied { generation: 2 })]);
    let out = lbctl(
        &fake.socket,
        &[
            "ipvsadm",
            "-a",
            "-t",
            "[2001:db8::100]:80",
            "-r",
            "[2001:db8::10]:80",
            "-g",
            "-w",
            "2",
        ],
        "",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fake.requests(),
        [Request::AddReal {
            service: key("2001:db8::100", 80),
            real: RealServerConfig {
                address: "2001:db8::10".parse().unwrap(),
                // The service's port, as for IPv4: left to it.
                port: None,
                weight: 2,
                forward: Forward::Dr,
                health_check: None,
            },
        }]
    );

    // A bracket left open: a usage error naming it, before connecting (a
    // socket nobody listens on would exit 7).
    let dir = TempDir::new();
    let out = lbctl(
        &dir.0.join("none.sock"),
        &["ipvsadm", "-A", "-t", "[2001:db8::100:80"],
        "",
    );
    assert_eq!(code(&out), 64, "{}", stderr(&out));
    assert!(stderr(&out).contains("needs its `]`"), "{}", stderr(&out));

    let svc = ServiceInfo {
        members: Vec::new(),
        key: key("2001:db8::100", 80),
        scheduler: Scheduler::Rr,
        persistence: None,
        counters: Counters::default(),
        rates: Rates::default(),
        reals: vec![real_dr("2001:db8::10")],
    };
    let fake = Fake::start(vec![
        ok(Response::Status(status())),
        ok(Response::Services(vec![svc])),
        ok(Response::Config(running_192())),
    ]);
    let out = lbctl(&fake.socket, &["ipvsadm", "-Ln"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "IP Virtual Server version 1.2.1 (size=65536)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  [2001:db8::100]:80 rr\n  \
         -> [2001:db8::10]:80            Route   1      0          0         \n"
    );
}
