//! Runs the built `lbctl` against a fake lbd: a unix socket in a temporary
//! directory answering canned frames. Checks what lbctl prints, its exit
//! status, and the requests it sent.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

use lb_api::config::{Forward, Protocol, RealServerConfig, Scheduler, ServiceConfig, Timeouts};
use lb_api::protocol::{
    ConnFilter, ConnInfo, ConnList, Counters, ErrorKind, Rates, RemoveMode, Request, Response,
    ResponseFrame, ServiceInfo, ServiceKey, StatusInfo, TimeoutEdit, PROTOCOL_VERSION,
};

fn key() -> ServiceKey {
    ServiceKey::addr(Protocol::Tcp, "198.18.0.100".parse().unwrap(), 80)
}

fn services() -> Vec<ServiceInfo> {
    vec![ServiceInfo {
        members: Vec::new(),
        key: key(),
        scheduler: Scheduler::Rr,
        persistence: None,
        counters: Counters::default(),
        rates: Rates::default(),
        reals: vec![real_dr("198.18.0.11"), real_dr("198.18.0.12")],
    }]
}

fn status() -> StatusInfo {
    StatusInfo {
        version: "0.1.0".into(),
        uptime_s: 61.0,
        config_path: "/etc/lbd/lbd.ron".into(),
        generation: 3,
        last_change_ok: true,
        last_change_message: String::new(),
        ports: vec![],
        workers: vec![],
        conn_capacity: 1024,
        conns: 2,
        counters: Default::default(),
        vrrp: None,
        vrrp_instances: Vec::new(),
        announce: None,
    }
}

#[test]
fn list_prints_the_ipvsadm_table() {
    let fake = Fake::start(vec![
        ok(Response::Status(status())),
        ok(Response::Services(services())),
    ]);
    let (out, got) = fake.run(&["list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "\
lbd director 0.1.0 (generation 3)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 rr
  -> 198.18.0.11:80               Route   1      0          0
  -> 198.18.0.12:80               Route   1      0          0
"
    );
    assert_eq!(got, vec![Request::Status, Request::List]);
}

#[test]
fn list_json_is_machine_readable() {
    let fake = Fake::start(vec![ok(Response::Services(services()))]);
    let (out, got) = fake.run(&["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let back: Vec<ServiceInfo> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back, services());
    assert_eq!(got, vec![Request::List]);
}

#[test]
fn service_add_sends_the_service() {
    let fake = Fake::start(vec![ok(Response::Applied { generation: 4 })]);
    let (out, got) = fake.run(&["service", "add", "198.18.0.100:80", "--scheduler", "rr"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "applied (configuration generation 4)\n");
    assert_eq!(
        got,
        vec![Request::AddService(ServiceConfig {
            vip: "198.18.0.100".parse().unwrap(),
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
        })]
    );
}

#[test]
fn invalid_change_exits_2() {
    let fake = Fake::start(vec![err(
        ErrorKind::Invalid,
        "real server 10.9.9.9 is not on any port's subnet",
    )]);
    let (out, got) = fake.run(&["real", "add", "198.18.0.100:80", "10.9.9.9", "-w", "2"]);
    assert_eq!(code(&out), 2);
    let e = stderr(&out);
    assert!(
        e.starts_with("lbctl: real server 10.9.9.9 is not on any port's subnet\n"),
        "{e}"
    );
    assert!(e.contains("lbctl: hint: "), "{e}");
    assert_eq!(
        got,
        vec![Request::AddReal {
            service: key(),
            real: RealServerConfig {
                address: "10.9.9.9".parse().unwrap(),
                port: None,
                weight: 2,
                forward: Forward::Dr,
                health_check: None,
            },
        }]
    );
}

#[test]
fn permission_denied_exits_4() {
    let fake = Fake::start(vec![err(
        ErrorKind::PermissionDenied,
        "changes need root or group lbd",
    )]);
    let (out, got) = fake.run(&["clear"]);
    assert_eq!(code(&out), 4);
    assert!(stderr(&out).contains("lbctl: changes need root or group lbd"));
    assert_eq!(got, vec![Request::Clear]);
}

#[test]
fn not_found_exits_5() {
    let fake = Fake::start(vec![err(ErrorKind::NotFound, "no real server 198.18.0.13")]);
    let (out, got) = fake.run(&["real", "del", "198.18.0.100:80", "198.18.0.13", "--drain"]);
    assert_eq!(code(&out), 5);
    assert!(stderr(&out).contains("lbctl list"), "{}", stderr(&out));
    assert_eq!(
        got,
        vec![Request::DeleteReal {
            service: key(),
            address: "198.18.0.13".parse().unwrap(),
            mode: RemoveMode::Drain,
        }]
    );
}

#[test]
fn already_exists_exits_6() {
    let fake = Fake::start(vec![err(ErrorKind::AlreadyExists, "service exists")]);
    let (out, _) = fake.run(&["service", "add", "198.18.0.100:80"]);
    assert_eq!(code(&out), 6);
}

#[test]
fn missing_socket_exits_7() {
    let dir = TempDir::new();
    let out = lbctl(&dir.0.join("nothing.sock"), &["list"], "");
    assert_eq!(code(&out), 7);
    let e = stderr(&out);
    assert!(e.starts_with("lbctl: cannot connect to lbd at "), "{e}");
    assert!(
        e.contains("is lbd running? is the socket path right (--socket)?"),
        "{e}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn socket_from_the_environment() {
    let fake = Fake::start(vec![ok(Response::Done)]);
    let out = Command::new(env!("CARGO_BIN_EXE_lbctl"))
        .arg("zero")
        .env("LBCTL_SOCKET", &fake.socket)
        .output()
        .unwrap();
    let got = fake.requests();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(got, vec![Request::Zero]);
}

#[test]
fn wrong_version_exits_3() {
    let fake = Fake::start(vec![Answer::Frame(ResponseFrame {
        version: PROTOCOL_VERSION + 1,
        response: Ok(Response::Done),
    })]);
    let (out, _) = fake.run(&["zero"]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("version mismatch"),
        "{}",
        stderr(&out)
    );

    // A future lbd whose answer lbctl could not even parse.
    let fake = Fake::start(vec![Answer::Raw(
        r#"{"version":99,"answer":{"Something":"new"}}"#,
    )]);
    let (out, _) = fake.run(&["status"]);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("lbd speaks version 99"));
}

#[test]
fn hangup_and_garbage_exit_3() {
    let fake = Fake::start(vec![Answer::Hangup]);
    let (out, _) = fake.run(&["status"]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("closed the connection"),
        "{}",
        stderr(&out)
    );

    let fake = Fake::start(vec![Answer::Raw("[1,2,3]")]);
    let (out, _) = fake.run(&["status"]);
    assert_eq!(code(&out), 3);

    // An answer that does not fit the request.
    let fake = Fake::start(vec![ok(Response::Valid)]);
    let (out, _) = fake.run(&["timeouts"]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("unexpected answer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn conns_are_filtered_and_truncation_is_noted() {
    let c = ConnInfo {
        protocol: Protocol::Tcp,
        client: "198.18.0.1".parse().unwrap(),
        client_port: 40000,
        vip: "198.18.0.100".parse().unwrap(),
        vport: 80,
        real: Some("198.18.0.11".parse().unwrap()),
        real_port: 80,
        state: "ESTABLISHED".into(),
        expires_ms: 61_000,
        worker: 0,
        template: false,
    };
    let fake = Fake::start(vec![ok(Response::Conns(ConnList {
        conns: vec![c],
        total: 7,
        truncated: true,
    }))]);
    let (out, got) = fake.run(&["conns", "--vip", "198.18.0.100", "--limit", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "\
lbd connection entries
pro expire state       source             virtual            destination
TCP 01:01  ESTABLISHED 198.18.0.1:40000   198.18.0.100:80    198.18.0.11:80
"
    );
    assert_eq!(stderr(&out), "(1 of 7 connections shown; use --limit)\n");
    assert_eq!(
        got,
        vec![Request::Conns {
            filter: ConnFilter {
                vip: Some("198.18.0.100".parse().unwrap()),
                ..Default::default()
            },
            limit: 1,
        }]
    );
}

#[test]
fn status_and_timeouts() {
    let fake = Fake::start(vec![ok(Response::Status(status()))]);
    let (out, got) = fake.run(&["status"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("lbd 0.1.0, up 00:01:01\n"));
    assert!(stdout(&out).contains("connections: 2 of 1024"));
    assert_eq!(got, vec![Request::Status]);

    let fake = Fake::start(vec![ok(Response::Timeouts(Timeouts::default()))]);
    let (out, _) = fake.run(&["timeouts", "--json"]);
    assert_eq!(code(&out), 0);
    let t: Timeouts = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t, Timeouts::default());

    let fake = Fake::start(vec![ok(Response::Applied { generation: 9 })]);
    let (out, got) = fake.run(&["timeouts", "set", "0", "60", "30"]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        got,
        vec![Request::SetTimeouts(TimeoutEdit {
            tcp: None,
            tcpfin: Some(60),
            udp: Some(30),
        })]
    );
}

#[test]
fn save_and_restore() {
    let ron = "(\n    ports: [],\n)\n";
    let fake = Fake::start(vec![ok(Response::Config(ron.into()))]);
    let (out, got) = fake.run(&["save"]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), ron);
    assert_eq!(got, vec![Request::Save]);

    let dir = TempDir::new();
    let file = dir.0.join("new.ron");
    std::fs::write(&file, ron).unwrap();
    let fake = Fake::start(vec![ok(Response::Applied { generation: 10 })]);
    let (out, got) = fake.run(&["restore", file.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(got, vec![Request::Restore { ron: ron.into() }]);

    // Remote validation: lbd's verdict decides the exit status.
    let fake = Fake::start(vec![err(
        ErrorKind::Invalid,
        "new.ron:2:5: ports: no ports",
    )]);
    let (out, got) = fake.run(&["validate", "--remote", file.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert_eq!(got, vec![Request::Validate { ron: ron.into() }]);

    // A file that cannot be read never reaches lbd.
    let out = lbctl(
        &dir.0.join("unused.sock"),
        &["restore", dir.0.join("missing.ron").to_str().unwrap()],
        "",
    );
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}

#[test]
fn offline_commands_need_no_lbd() {
    let nowhere = Path::new("/nonexistent/lbd.sock");
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/lab-dr-rr.ron");
    let out = lbctl(nowhere, &["validate", good], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains(": valid ("), "{}", stdout(&out));

    let dir = TempDir::new();
    let bad = dir.0.join("bad.ron");
    std::fs::write(&bad, "(ports: [], services: [(vip: \"1.2.3.4\", port: 0)])").unwrap();
    let out = lbctl(nowhere, &["validate", bad.to_str().unwrap()], "");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("bad.ron"), "{}", stderr(&out));

    let out = lbctl(nowhere, &["completions", "bash"], "");
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("lbctl"));
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let nowhere = Path::new("/nonexistent/lbd.sock");
    for args in [
        &["frobnicate"][..],
        &["service", "add", "198.18.0.100"],
        &["service", "add", "198.18.0.100:80", "-s", "dh"],
        &[
            "real",
            "add",
            "198.18.0.100:80",
            "198.18.0.11",
            "-w",
            "4294967296",
        ],
        &[],
    ] {
        let out = lbctl(nowhere, args, "");
        assert_eq!(code(&out), 64, "{args:?}: {}", stderr(&out));
    }
    let out = lbctl(nowhere, &["--help"], "");
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("Exit status:"));
    let out = lbctl(nowhere, &["--version"], "");
    assert_eq!(code(&out), 0);
}
