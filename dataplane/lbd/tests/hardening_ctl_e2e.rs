//! End-to-end tests of the control side's limits and of the operator
//! mistakes it must survive: idle connections to the control socket or to
//! /metrics lock nobody out and pile up no threads; a control socket path
//! that names the configuration file, or any file that is not a stale
//! socket, is refused without harm. See `common/mod.rs` for the harness and
//! the root requirement.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

const ONE_RS: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
    (address: "198.18.0.11")])"#;

/// Threads of process `pid`, from /proc.
fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line")
}

/// How many of `pid`'s threads are named `name`.
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// The value of the sample `name` (labels included, as written) in a scrape.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} not in the scrape:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn idle_control_connections_do_not_lock_out_lbctl() {
    if !may_run("idle_control_connections_do_not_lock_out_lbctl") {
        return;
    }
    let lab = Lab::up("ctlhc", 1);
    let lbd = lab.start_lbd(ONE_RS);
    let before = threads_of(lbd.pid());
    // Far more idle connections than lbd serves at once (16), held open
    // and silent for the whole test.
    let idle: Vec<UnixStream> = (0..40)
        .map(|_| UnixStream::connect(lab.socket_path()).unwrap())
        .collect();
    // lbctl connects after all of them (lbd accepts in order) and gets in
    // at once: no error, no waiting for idle ones to time out.
    let out = lab.lbctl_ok(&["status"]);
    assert!(out.contains("generation"), "{out}");
    // Room was made by disconnecting idle clients, and lbd said so.
    lbd.wait_for(
        |_, e| {
            e.iter()
                .filter(|l| l.contains("to make room for pid"))
                .count()
                > idle.len() - 16
        },
        "lbd to log that it disconnected idle clients to make room",
    );
    // One thread per connected client at most, and at most 16 of them
    // (waited for: a client disconnected to make room ends its thread
    // just after lbd logs it).
    let pid = lbd.pid();
    lbd.wait_for(
        |_, _| threads_named(pid, "lbd-ctl-client") <= 16,
        "at most 16 client threads",
    );
    let after = threads_of(pid);
    assert!(
        after <= before + 16,
        "threads: {before} before, {after} with {} idle clients",
        idle.len()
    );
    drop(idle);
    lbd.stop();
}

#[test]
fn idle_metrics_connections_neither_add_threads_nor_block_a_scrape() {
    if !may_run("idle_metrics_connections_neither_add_threads_nor_block_a_scrape") {
        return;
    }
    let lab = Lab::up("ctlhm", 1);
    let lbd = lab.start_lbd(ONE_RS);
    let before = threads_of(lbd.pid());
    // 300 idle connections to /metrics from inside the director's
    // namespace (where it listens on 127.0.0.1), held until stdin closes.
    let holder = r#"
import socket, sys
held = [socket.create_connection(("127.0.0.1", 9300)) for _ in range(300)]
print("open", len(held), flush=True)
sys.stdin.read()
"#;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.ns("dir"), "python3", "-c", holder])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "open 300", "the holder could not connect");
    // A real scrape is answered while they are held.
    let (ok, text, err) = lab.exec(
        "dir",
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "http://127.0.0.1:9300/metrics",
        ],
    );
    assert!(ok, "scrape failed: {err}");
    assert!(text.contains("lbd_uptime_seconds"), "{text}");
    // No thread per connection: the server is one thread, started already
    // (waited for, in case a thread of lbd's own was still ending).
    let pid = lbd.pid();
    lbd.wait_for(
        |_, _| threads_of(pid) <= before,
        "no more threads than before the 300 idle connections",
    );
    // The connections over the limit (64) made room or timed out, counted.
    let accepted = sample(
        &text,
        "lbd_metrics_http_connections_total{event=\"accepted\"}",
    );
    assert!(accepted >= 301.0, "accepted {accepted}");
    let evicted = sample(&text, "lbd_metrics_http_rejected_total{reason=\"evicted\"}");
    let timed_out = sample(&text, "lbd_metrics_http_rejected_total{reason=\"timeout\"}");
    assert!(
        evicted + timed_out >= 300.0 - 64.0,
        "evicted {evicted}, timed out {timed_out}"
    );
    // Closing its stdin ends the holder.
    drop(child.stdin.take());
    let _ = child.wait();
    lbd.stop();
}

/// lbd run directly (no namespace) with the configuration at `path`, for
/// configurations it must refuse: (whether it exited without becoming ready,
/// its stderr). An lbd that does become ready is stopped at once.
fn lbd_refuses(path: &std::path::Path) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("--config")
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lbd");
    let stderr = {
        let mut e = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
            s
        })
    };
    // Its stdout ends when it exits; "lbd: ready" means it did not refuse.
    let ready = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("lbd: ready"));
    if ready {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    (!ready && !status.success(), stderr.join().unwrap())
}

#[test]
fn a_control_socket_on_the_config_file_is_refused_and_the_file_kept() {
    // Fails in validation, before anything needs root.
    let dir = std::env::temp_dir().join(format!("lbd-ctlhf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lbd.ron");
    let text = format!(
        r#"(
    eal: (cores: "0-1", no_huge: true, memory_mb: Some(512), no_pci: true, file_prefix: Some("lbd-ctlhf")),
    ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
    control: (socket: "{}"),
    services: [{ONE_RS}],
)
"#,
        path.display()
    );
    std::fs::write(&path, &text).unwrap();
    let (refused, err) = lbd_refuses(&path);
    assert!(refused, "lbd started with its socket on its configuration");
    assert!(
        err.contains(&format!("{}:4:", path.display()))
            && err.contains("control.socket: socket path")
            && err.contains("is this configuration file"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // lbctl finds the mistake offline too.
    let out = Command::new(lbctl_bin())
        .args(["validate"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is this configuration file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_control_socket_on_a_regular_file_is_refused_and_the_file_kept() {
    if !may_run("a_control_socket_on_a_regular_file_is_refused_and_the_file_kept") {
        return;
    }
    // No lab needed: a null port is enough to get to binding the socket.
    let dir = std::env::temp_dir().join(format!("lbd-ctlhr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("precious.txt");
    std::fs::write(&victim, "do not delete").unwrap();
    let path = dir.join("lbd.ron");
    std::fs::write(
        &path,
        format!(
            r#"(
    eal: (cores: "0-1", no_huge: true, memory_mb: Some(512), no_pci: true, file_prefix: Some("lbd-ctlhr")),
    ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
    control: (socket: "{}"),
    metrics: (listen: None),
    services: [{ONE_RS}],
)
"#,
            victim.display()
        ),
    )
    .unwrap();
    let (refused, err) = lbd_refuses(&path);
    assert!(refused, "lbd started with its socket on a regular file");
    assert!(
        err.contains(&format!(
            "{} is a regular file, not a socket",
            victim.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "do not delete");
    std::fs::remove_dir_all(&dir).unwrap();
}
