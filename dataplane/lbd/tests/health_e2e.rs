//! End-to-end tests of health checks: lbd checks real servers through the
//! port's kernel interface (`ports[].kernel`), takes failed ones out of
//! scheduling (or quiesces them), brings recovered ones back, and uses the
//! fallback server only while all are down. See `common/mod.rs` for the
//! harness and the root requirement. No timing is asserted: every wait is
//! for a state, bounded.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PORTS: &str = r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
    address: "198.18.0.2/24", kernel: Some((iface: "lbd-lan0")))],"#;

/// The real servers' health as `lbctl --json list` shows it: (address,
/// up, checked, last result, weight, fallback) per real server of the first
/// service.
fn health(lab: &Lab) -> Vec<(String, bool, bool, String, u64, bool)> {
    let v: serde_json::Value = serde_json::from_str(&lab.lbctl_ok(&["--json", "list"])).unwrap();
    v[0]["reals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let h = &r["health"];
            (
                r["address"].as_str().unwrap().to_string(),
                h["up"].as_bool().unwrap_or(true),
                h["checked"].as_bool().unwrap_or(false),
                h["last"].as_str().unwrap_or("").to_string(),
                r["weight"].as_u64().unwrap(),
                r["fallback"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Wait (at most 60 s) until `cond` holds for the health listing.
#[allow(clippy::type_complexity)]
fn wait_health(
    lab: &Lab,
    what: &str,
    cond: impl Fn(&[(String, bool, bool, String, u64, bool)]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = health(lab);
        if cond(&h) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether real server `ip` is up by its check (None: not checked yet), as
/// the published snapshot applies it: up means weight 1 (as configured),
/// down weight 0. (The checkers' state changes a moment before the snapshot
/// that applies it is published.)
fn is_up(h: &[(String, bool, bool, String, u64, bool)], ip: &str) -> Option<bool> {
    h.iter()
        .find(|r| r.0 == ip)
        .filter(|r| r.2 && r.1 == (r.4 > 0))
        .map(|r| r.1)
}

/// Stop real server `rs` (1-based)'s HTTP server.
fn stop_httpd(lab: &Lab, rs: usize) {
    let pid_file = lab.state_dir().join(format!("rs{rs}.pid"));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let ok = Command::new("kill")
        .arg(pid.trim())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill rs{rs} httpd");
    // Wait until nothing listens on port 80 there any more.
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab
        .exec(
            &format!("rs{rs}"),
            &["sh", "-c", "ss -Hltn 'sport = :80' | grep -q ."],
        )
        .0
    {
        assert!(Instant::now() < deadline, "rs{rs} httpd did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start real server `rs`'s HTTP server again, as the lab did.
fn start_httpd(lab: &Lab, rs: usize) {
    let stem = lab.state_dir().join(format!("rs{rs}"));
    let status = Command::new("setsid")
        .args(["-f", "ip", "netns", "exec", &lab.ns(&format!("rs{rs}"))])
        .arg("python3")
        .arg(repo().join("scripts/lab-httpd.py"))
        .args(["--name", &format!("rs{rs}"), "--port", "80", "--pid-file"])
        .arg(stem.with_extension("pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_stopped_server_is_removed_and_comes_back() {
    if !may_run("a_stopped_server_is_removed_and_comes_back") {
        return;
    }
    let lab = Lab::up("hcstop", 2);
    let lbd = lab.start_lbd_with(
        r#"(vip: "198.18.0.100", port: 80, scheduler: Rr,
            health_check: Some((check: Tcp, interval_ms: 300, timeout_ms: 1000, rise: 2, fall: 2)),
            real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])"#,
        PORTS,
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    wait_health(&lab, "both checked up", |h| {
        is_up(h, "198.18.0.11") == Some(true) && is_up(h, "198.18.0.12") == Some(true)
    });

    stop_httpd(&lab, 1);
    wait_health(&lab, "rs1 down", |h| is_up(h, "198.18.0.11") == Some(false));
    let h = health(&lab);
    assert!(h[0].3.contains("refused"), "the reason is shown: {h:?}");
    assert_eq!(h[0].4, 0, "out of scheduling: {h:?}");
    // No failed request once it is out: every one goes to rs2.
    for _ in 0..6 {
        assert_eq!(lab.curl(&format!("http://{VIP}/")), "rs2");
    }
    let listing = lab.lbctl_ok(&["list"]);
    assert!(listing.contains("DOWN (connect: refused)"), "{listing}");

    start_httpd(&lab, 1);
    wait_health(&lab, "rs1 back", |h| is_up(h, "198.18.0.11") == Some(true));
    let answers: Vec<String> = (0..4)
        .map(|_| lab.curl(&format!("http://{VIP}/")))
        .collect();
    assert!(answers.contains(&"rs1".to_string()), "{answers:?}");

    // Both transitions are logged, with their reasons.
    for what in ["is DOWN", "is UP"] {
        let needle = format!("198.18.0.11:80 of 198.18.0.100:80/tcp {what}");
        lbd.wait_for(|_, e| e.iter().any(|l| l.contains(&needle)), &needle);
    }
    lbd.stop();
}

#[test]
fn an_http_check_with_the_wrong_body_marks_the_server_down() {
    if !may_run("an_http_check_with_the_wrong_body_marks_the_server_down") {
        return;
    }
    let lab = Lab::up("hchttp", 2);
    // Each lab server answers its name: only rs1's body holds "rs1".
    let lbd = lab.start_lbd_with(
        r#"(vip: "198.18.0.100", port: 80, scheduler: Rr,
            health_check: Some((check: Http(path: "/health", expect: Some("rs1")),
                                interval_ms: 300, timeout_ms: 1000)),
            real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])"#,
        PORTS,
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    wait_health(&lab, "rs1 up and rs2 down", |h| {
        is_up(h, "198.18.0.11") == Some(true) && is_up(h, "198.18.0.12") == Some(false)
    });
    let h = health(&lab);
    assert_eq!(h[1].3, "HTTP 200, body lacks \"rs1\"", "{h:?}");
    for _ in 0..4 {
        assert_eq!(lab.curl(&format!("http://{VIP}/")), "rs1");
    }
    lbd.stop();
}

/// An exec check that fails while the file DIR/down-ADDRESS exists.
fn exec_check(dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"health_check: Some((check: Exec(command: "/bin/sh",
               args: ["-c", "test ! -e {}/down-$LBD_RS_ADDRESS"]),
           interval_ms: 200, timeout_ms: 2000, rise: 1, fall: 1{extra})),"#,
        dir.display()
    )
}

fn mark(dir: &std::path::Path, ip: &str, down: bool) {
    let f = dir.join(format!("down-{ip}"));
    if down {
        std::fs::write(f, "").unwrap();
    } else {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn the_fallback_server_answers_only_while_all_are_down() {
    if !may_run("the_fallback_server_answers_only_while_all_are_down") {
        return;
    }
    let lab = Lab::up("hcfall", 3);
    let flags = lab.dir().join("health-flags");
    std::fs::create_dir_all(&flags).unwrap();
    let lbd = lab.start_lbd_with(
        &format!(
            r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, {}
                fallback: Some((address: "198.18.0.13")),
                real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])"#,
            exec_check(&flags, "")
        ),
        PORTS,
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12", "198.18.0.13"]);
    wait_health(&lab, "both up", |h| {
        is_up(h, "198.18.0.11") == Some(true) && is_up(h, "198.18.0.12") == Some(true)
    });
    let h = health(&lab);
    assert!(
        h[2].5 && h[2].4 == 0,
        "the fallback is listed, unused: {h:?}"
    );
    let answers: Vec<String> = (0..4)
        .map(|_| lab.curl(&format!("http://{VIP}/")))
        .collect();
    assert!(!answers.contains(&"rs3".to_string()), "{answers:?}");

    mark(&flags, "198.18.0.11", true);
    mark(&flags, "198.18.0.12", true);
    wait_health(&lab, "both down, the fallback in service", |h| {
        is_up(h, "198.18.0.11") == Some(false)
            && is_up(h, "198.18.0.12") == Some(false)
            && h[2].4 == 1
    });
    for _ in 0..3 {
        assert_eq!(lab.curl(&format!("http://{VIP}/")), "rs3");
    }
    mark(&flags, "198.18.0.12", false);
    wait_health(&lab, "rs2 back, the fallback out", |h| {
        is_up(h, "198.18.0.12") == Some(true) && h[2].4 == 0
    });
    for _ in 0..3 {
        assert_eq!(lab.curl(&format!("http://{VIP}/")), "rs2");
    }
    lbd.stop();
}

#[test]
fn quiesced_servers_keep_their_established_connections() {
    if !may_run("quiesced_servers_keep_their_established_connections") {
        return;
    }
    let lab = Lab::up("hcquiet", 2);
    let flags = lab.dir().join("health-flags");
    std::fs::create_dir_all(&flags).unwrap();
    let lbd = lab.start_lbd_with(
        &format!(
            r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, {}
                real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])"#,
            exec_check(&flags, ", on_failure: Quiesce")
        ),
        PORTS,
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    wait_health(&lab, "both up", |h| {
        is_up(h, "198.18.0.11") == Some(true) && is_up(h, "198.18.0.12") == Some(true)
    });
    let mut client = KeepAlive::open(&lab);
    let mut ask = || client.ask();
    let first = ask();
    assert!(first == "rs1" || first == "rs2", "{first}");

    // Both fail their checks: quiesced (weight 0), not removed.
    mark(&flags, "198.18.0.11", true);
    mark(&flags, "198.18.0.12", true);
    wait_health(&lab, "both quiesced", |h| {
        h.iter().all(|r| r.2 && !r.1 && r.4 == 0)
    });
    // New connections find no server ...
    let (ok, _, _) = lab.exec(
        "client",
        &["curl", "-sS", "--max-time", "2", &format!("http://{VIP}/")],
    );
    assert!(!ok, "a new connection was scheduled to a quiesced server");
    // ... while the established one keeps its server.
    for _ in 0..3 {
        assert_eq!(ask(), first);
    }
    drop(client);
    let r = lbd.stop();
    assert!(r.get("drop_no_real_server") > 0);
}
