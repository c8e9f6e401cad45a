//! End-to-end tests of the control plane: lbctl against a running lbd in a
//! namespace lab — live changes under traffic, save/restore, reloads of a
//! hand-edited file, the socket's permission checks, and /metrics. See
//! `common/mod.rs` for the harness and the root requirement.

mod common;

use common::*;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SVC: &str = "198.18.0.100:80";

/// Short closing-state timeouts so drained servers empty within seconds.
const QUICK_CLOSE: &str = "timeouts: (tcp_fin_wait: 2, tcp_time_wait: 2, tcp_close: 2),";

/// One request of the background client.
#[derive(Debug, Clone)]
struct Sample {
    start: Instant,
    answer: Result<String, String>,
}

/// A client making sequential requests until stopped (at most `max`, and
/// at most two minutes).
fn client_loop(
    lab_prefix: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Sample>>>,
    max: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let ns = format!("{lab_prefix}-client");
    for _ in 0..max {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            break;
        }
        let start = Instant::now();
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "curl",
                "-sS",
                "--max-time",
                "5",
                "http://198.18.0.100/",
            ])
            .output()
            .expect("curl");
        let answer = if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        };
        log.lock().unwrap().push(Sample { start, answer });
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn list_json(lab: &Lab) -> serde_json::Value {
    serde_json::from_str(&lab.lbctl_ok(&["--json", "list", "--stats"]))
        .expect("lbctl list --json is JSON")
}

/// The real servers of the first service, as (address, entry) pairs.
fn reals(v: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    v.as_array().expect("a list of services")[0]["reals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["address"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

#[test]
fn live_changes_under_traffic_lose_no_request() {
    if !may_run("live_changes_under_traffic_lose_no_request") {
        return;
    }
    let lab = Lab::up("c2live", 3);
    let lbd = lab.start_lbd_with(
        r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
            (address: "198.18.0.11"), (address: "198.18.0.12")])"#,
        QUICK_CLOSE,
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let client = {
        let (p, s, l) = (lab.prefix.clone(), stop.clone(), log.clone());
        std::thread::spawn(move || client_loop(p, s, l, 2000))
    };
    let pause = || std::thread::sleep(Duration::from_secs(2));
    pause();
    lab.lbctl_ok(&["real", "add", SVC, "198.18.0.13"]);
    let t_added = Instant::now();
    lbd.wait_resolved(&["198.18.0.13"]);
    pause();
    // Quiesce rs2, then delete it once it has nothing in flight.
    lab.lbctl_ok(&["real", "edit", SVC, "198.18.0.12", "--weight", "0"]);
    let t_quiesced = Instant::now();
    pause();
    lab.lbctl_ok(&["real", "del", SVC, "198.18.0.12"]);
    // Drain rs1: weight 0 now, removed when its connections are gone.
    lab.lbctl_ok(&["real", "del", SVC, "198.18.0.11", "--drain"]);
    let t_drained = Instant::now();
    let v = list_json(&lab);
    let r1 = reals(&v).into_iter().find(|(a, _)| a == "198.18.0.11");
    if let Some((_, r1)) = r1 {
        assert_eq!(r1["weight"], 0);
        assert_eq!(r1["draining"], true);
    }
    // Scheduler and weight changes.
    lab.lbctl_ok(&["service", "edit", SVC, "--scheduler", "wrr"]);
    lab.lbctl_ok(&["real", "edit", SVC, "198.18.0.13", "--weight", "3"]);
    pause();
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    let samples = log.lock().unwrap().clone();
    assert!(samples.len() >= 20, "too few requests: {}", samples.len());
    let failed: Vec<_> = samples.iter().filter(|s| s.answer.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        samples.len()
    );
    let answer = |s: &Sample| s.answer.clone().unwrap();
    assert!(
        samples
            .iter()
            .filter(|s| s.start > t_added)
            .any(|s| answer(s) == "rs3"),
        "the added server received no requests"
    );
    assert!(
        samples
            .iter()
            .filter(|s| s.start > t_quiesced)
            .all(|s| answer(s) != "rs2"),
        "the quiesced server received new connections"
    );
    assert!(
        samples
            .iter()
            .filter(|s| s.start > t_drained)
            .all(|s| answer(s) != "rs1"),
        "the drained server received new connections"
    );
    // The drained server leaves once its closing connections expire (2 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = list_json(&lab);
        let names: Vec<String> = reals(&v).into_iter().map(|(a, _)| a).collect();
        if names == ["198.18.0.13"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drained server never removed: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // lbctl's counters match what the client saw for the new server.
    let v = list_json(&lab);
    let rs3 = &reals(&v)[0].1;
    let got_rs3 = samples.iter().filter(|s| answer(s) == "rs3").count() as u64;
    assert_eq!(rs3["counters"]["conns"].as_u64().unwrap(), got_rs3, "{v}");
    assert_eq!(v[0]["scheduler"], "Wrr");
    // The change was persisted: the file holds the new state.
    let text = std::fs::read_to_string(lab.config_path()).unwrap();
    assert!(
        text.contains("198.18.0.13") && !text.contains("198.18.0.12"),
        "{text}"
    );
    let r = lbd.stop();
    assert_eq!(r.get("drop_real_server_gone"), 0);
}

#[test]
fn save_restore_reload_and_invalid_files() {
    if !may_run("save_restore_reload_and_invalid_files") {
        return;
    }
    let lab = Lab::up("c2cfg", 2);
    let lbd = lab.start_lbd(
        r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
            (address: "198.18.0.11"), (address: "198.18.0.12", weight: 2)])"#,
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    // save → restore → save gives the same text; validate accepts it.
    let saved = lab.lbctl_ok(&["save"]);
    let file = lab.dir().join("saved.ron");
    std::fs::write(&file, &saved).unwrap();
    lab.lbctl_ok(&["validate", file.to_str().unwrap()]);
    lab.lbctl_ok(&["restore", file.to_str().unwrap()]);
    assert_eq!(lab.lbctl_ok(&["save"]), saved);

    let status = |lab: &Lab| -> serde_json::Value {
        serde_json::from_str(&lab.lbctl_ok(&["--json", "status"])).unwrap()
    };
    let g0 = status(&lab)["generation"].as_u64().unwrap();

    // A hand-edited file with an out-of-range weight: refused, with a place.
    let good = std::fs::read_to_string(lab.config_path()).unwrap();
    std::fs::write(
        lab.config_path(),
        good.replace("weight: 2", "weight: 70000"),
    )
    .unwrap();
    let (code, _, err) = lab.lbctl(&["reload"]);
    assert_eq!(code, 2, "invalid config must exit 2: {err}");
    assert!(
        err.contains("lbd.ron:") && err.contains("weight"),
        "error names file and field: {err}"
    );
    assert!(
        lab.curl("http://198.18.0.100/").starts_with("rs"),
        "traffic continues"
    );
    let st = status(&lab);
    assert_eq!(st["last_change_ok"], false);
    assert_eq!(st["generation"].as_u64().unwrap(), g0, "nothing applied");

    // A syntax error, applied by SIGHUP: refused too.
    std::fs::write(
        lab.config_path(),
        good.replace("services: [", "services: [["),
    )
    .unwrap();
    let pid = lbd.pid();
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let st = status(&lab);
    assert_eq!(st["last_change_ok"], false, "{st}");
    assert!(
        st["last_change_message"]
            .as_str()
            .unwrap()
            .contains("SIGHUP"),
        "{st}"
    );
    assert!(lab.curl("http://198.18.0.100/").starts_with("rs"));

    // A valid edit by hand + SIGHUP: applied.
    std::fs::write(
        lab.config_path(),
        good.replace("scheduler: Rr", "scheduler: Wlc"),
    )
    .unwrap();
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&lab)["generation"].as_u64().unwrap() == g0 {
        assert!(Instant::now() < deadline, "SIGHUP reload did not apply");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status(&lab)["last_change_ok"], true);
    let v = list_json(&lab);
    assert_eq!(v[0]["scheduler"], "Wlc");
    // Fields that need a restart are refused live, with a reason.
    std::fs::write(
        lab.config_path(),
        good.replace("capacity: 65536", "capacity: 131072"),
    )
    .unwrap();
    let (code, _, err) = lab.lbctl(&["reload"]);
    assert_eq!(code, 2);
    assert!(err.contains("restart"), "{err}");

    // IPv6: a real server of the other family than its VIP is refused,
    // in the file with its place (IPv6 services are forwarded by DR; see
    // the IPv6 lab tests).
    std::fs::write(
        lab.config_path(),
        good.replace("\"198.18.0.12\"", "\"2001:db8::12\""),
    )
    .unwrap();
    let (code, _, err) = lab.lbctl(&["reload"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("lbd.ron:") && err.contains("is not of the VIP's address family"),
        "error names file and field: {err}"
    );
    assert!(lab.curl("http://198.18.0.100/").starts_with("rs"));
    lbd.stop();
}

#[test]
fn socket_refuses_unprivileged_writers() {
    if !may_run("socket_refuses_unprivileged_writers") {
        return;
    }
    let lab = Lab::up("c2perm", 2);
    let lbd = lab.start_lbd(TWO_RS);
    let sock = lab.socket_path();
    let meta = std::fs::metadata(&sock).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o660,
        "socket must not be world-accessible"
    );
    let as_nobody = |args: &[&str]| -> (i32, String) {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(lbctl_bin())
            .arg("--socket")
            .arg(&sock)
            .args(args)
            .output()
            .expect("setpriv");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The file mode keeps nobody out entirely.
    let (code, err) = as_nobody(&["list"]);
    assert_eq!(code, 4, "cannot connect: {err}");
    assert!(err.contains("permission denied"), "{err}");
    // Even if the socket's mode were opened up by mistake, peer credentials
    // still refuse changes from an unprivileged user (reads are allowed).
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, err) = as_nobody(&["zero"]);
    assert_eq!(code, 4, "write must be refused: {err}");
    let (code, err) = as_nobody(&["real", "del", SVC, "198.18.0.11"]);
    assert_eq!(code, 4, "{err}");
    let (code, err) = as_nobody(&["list"]);
    assert_eq!(code, 0, "reads are allowed: {err}");
    // Root may write.
    lab.lbctl_ok(&["zero"]);
    // Garbage on the socket does not hurt the daemon.
    {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let _ = s.write_all(&[0, 0, 0, 5, b'x', b'y', b'z', b'!', b'?']);
        let mut s2 = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let _ = s2.write_all(&u32::MAX.to_be_bytes());
    }
    lab.lbctl_ok(&["status"]);
    assert!(lab.curl("http://198.18.0.100/").starts_with("rs"));
    lbd.stop();
}

const TWO_RS: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
    (address: "198.18.0.11"), (address: "198.18.0.12")])"#;

/// Scrape /metrics inside the director's namespace and parse it with the
/// reference Prometheus text parser (python3-prometheus-client); returns
/// samples as (name, labels, value).
fn scrape(lab: &Lab) -> Vec<(String, serde_json::Map<String, serde_json::Value>, f64)> {
    let (ok, text, err) = lab.exec(
        "dir",
        &[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "http://127.0.0.1:9300/metrics",
        ],
    );
    assert!(ok, "scrape failed: {err}");
    let parser = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", parser])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser rejected /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s[0].as_str().unwrap().to_string(),
                s[1].as_object().unwrap().clone(),
                s[2].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn metrics_parse_and_match_the_traffic() {
    if !may_run("metrics_parse_and_match_the_traffic") {
        return;
    }
    let lab = Lab::up("c2met", 2);
    let lbd = lab.start_lbd(TWO_RS);
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    let n = 12;
    for _ in 0..n {
        assert!(lab.curl("http://198.18.0.100/").starts_with("rs"));
    }
    // A ping and a frame for no service add known outcomes.
    let (ok, _, _) = lab.exec("client", &["ping", "-c", "2", "-W", "2", "198.18.0.100"]);
    assert!(ok);
    let samples = scrape(&lab);
    let sum =
        |name: &str, pred: &dyn Fn(&serde_json::Map<String, serde_json::Value>) -> bool| -> f64 {
            samples
                .iter()
                .filter(|(n, l, _)| n == name && pred(l))
                .map(|(_, _, v)| v)
                .sum()
        };
    let any = |_: &serde_json::Map<String, serde_json::Value>| true;
    assert_eq!(sum("lbd_service_connections_total", &any), n as f64);
    assert_eq!(sum("lbd_real_server_connections_total", &any), n as f64);
    let per_rs = |ip: &str| {
        sum("lbd_real_server_connections_total", &|l| {
            l["real"] == format!("{ip}:80")
        })
    };
    assert_eq!(per_rs("198.18.0.11"), (n / 2) as f64);
    assert_eq!(per_rs("198.18.0.12"), (n / 2) as f64);
    assert_eq!(
        sum("lbd_packets_total", &|l| l["outcome"]
            == "icmp_echo_replied"),
        2.0
    );
    // Every forwarded packet was received on the port.
    let fwd = sum("lbd_packets_total", &|l| l["outcome"] == "forwarded_dr");
    let rx = sum("lbd_port_packets_total", &|l| l["direction"] == "rx");
    assert!(
        fwd >= (n * 5) as f64 && rx >= fwd,
        "forwarded {fwd}, received {rx}"
    );
    assert_eq!(sum("lbd_connection_table_capacity", &any), 65536.0);
    assert_eq!(sum("lbd_neighbours", &|l| l["state"] == "resolved"), 2.0);
    assert_eq!(sum("lbd_config_last_change_success", &any), 1.0);
    assert!(
        sum("lbd_burst_latency_seconds_count", &any) > 0.0,
        "latency histogram is empty"
    );
    assert!(
        samples.iter().any(|(n, _, _)| n == "lbd_drops_total"),
        "drop reasons exported"
    );
    // A change shows up as a new generation.
    lab.lbctl_ok(&["real", "edit", SVC, "198.18.0.12", "--weight", "5"]);
    let samples2 = scrape(&lab);
    let generation = samples2
        .iter()
        .find(|(n, _, _)| n == "lbd_config_generation")
        .unwrap()
        .2;
    assert_eq!(generation, 2.0);
    lbd.stop();
}

#[test]
fn conns_zero_timeouts_concurrency_rollback_and_autoreload() {
    if !may_run("conns_zero_timeouts_concurrency_rollback_and_autoreload") {
        return;
    }
    let lab = Lab::up("c2verbs", 2);
    let lbd = lab.start_lbd_with(TWO_RS, "control: (socket: \"SOCK\", autoreload: true),");
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    for _ in 0..4 {
        lab.curl("http://198.18.0.100/");
    }
    // conns: the four closed connections, filterable by real server and state.
    let v: serde_json::Value = serde_json::from_str(&lab.lbctl_ok(&["--json", "conns"])).unwrap();
    assert_eq!(v["conns"].as_array().unwrap().len(), 4, "{v}");
    let v: serde_json::Value =
        serde_json::from_str(&lab.lbctl_ok(&["--json", "conns", "--real", "198.18.0.11"])).unwrap();
    let conns = v["conns"].as_array().unwrap();
    assert_eq!(conns.len(), 2);
    assert!(conns
        .iter()
        .all(|c| c["real"] == "198.18.0.11" && c["client"] == "198.18.0.1"));
    let v: serde_json::Value =
        serde_json::from_str(&lab.lbctl_ok(&["--json", "conns", "--state", "ESTABLISHED"]))
            .unwrap();
    assert_eq!(v["conns"].as_array().unwrap().len(), 0);
    let v: serde_json::Value =
        serde_json::from_str(&lab.lbctl_ok(&["--json", "conns", "--limit", "1"])).unwrap();
    assert_eq!(v["conns"].as_array().unwrap().len(), 1);
    assert_eq!(v["truncated"], true);
    let text = lab.lbctl_ok(&["conns"]);
    assert!(text.contains("198.18.0.100:80"), "{text}");

    // zero resets the listed counters (the daemon's own counters go on).
    let conns_of = |lab: &Lab| list_json(lab)[0]["counters"]["conns"].as_u64().unwrap();
    assert_eq!(conns_of(&lab), 4);
    lab.lbctl_ok(&["zero"]);
    assert_eq!(conns_of(&lab), 0);
    lab.curl("http://198.18.0.100/");
    assert_eq!(conns_of(&lab), 1);

    // timeouts: ipvsadm --set order, 0 keeps a value.
    lab.lbctl_ok(&["timeouts", "set", "600", "0", "30"]);
    let t: serde_json::Value =
        serde_json::from_str(&lab.lbctl_ok(&["--json", "timeouts"])).unwrap();
    assert_eq!(t["tcp_established"], 600);
    assert_eq!(t["tcp_fin_wait"], 120);
    assert_eq!(t["udp"], 30);

    // Several clients at once all get answers.
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let sock = lab.socket_path();
            std::thread::spawn(move || {
                let verb = if i % 2 == 0 { "list" } else { "status" };
                Command::new(lbctl_bin())
                    .arg("--socket")
                    .arg(sock)
                    .arg(verb)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().status.success());
    }

    // A change that cannot be persisted is not applied. (A directory in the
    // place of the configuration file makes the rename over it fail, even
    // for root; a leftover temporary file no longer does.)
    let g = |lab: &Lab| -> u64 {
        let s: serde_json::Value =
            serde_json::from_str(&lab.lbctl_ok(&["--json", "status"])).unwrap();
        s["generation"].as_u64().unwrap()
    };
    let before = g(&lab);
    let aside = lab.dir().join("lbd.ron.aside");
    std::fs::rename(lab.config_path(), &aside).unwrap();
    std::fs::create_dir(lab.config_path()).unwrap();
    let (code, _, err) = lab.lbctl(&["real", "add", SVC, "198.18.0.13"]);
    assert_eq!(code, 1, "persist failure exits 1: {err}");
    assert!(err.contains("not applied"), "{err}");
    assert_eq!(g(&lab), before);
    assert!(!lab.lbctl_ok(&["list"]).contains("198.18.0.13"));
    std::fs::remove_dir(lab.config_path()).unwrap();
    std::fs::rename(&aside, lab.config_path()).unwrap();

    // autoreload: a hand edit of the file is applied by itself.
    let text = std::fs::read_to_string(lab.config_path()).unwrap();
    std::fs::write(
        lab.config_path(),
        text.replace("scheduler: Rr", "scheduler: Lc"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while list_json(&lab)[0]["scheduler"] != "Lc" {
        assert!(
            Instant::now() < deadline,
            "autoreload did not apply the edited file"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(g(&lab) > before);
    lbd.stop();
}

/// IPv6 connections and persistence templates in `lbctl conns` next to
/// IPv4 ones: bracketed in text (`conns` and ipvsadm's `-Lnc`), plain in
/// JSON, and filtered by client, VIP and real server of either family.
#[test]
fn ipv6_connections_and_templates_are_listed_and_filtered() {
    if !may_run("ipv6_connections_and_templates_are_listed_and_filtered") {
        return;
    }
    let lab = Lab::up_with("c2v6c", 2, &["--ipv6"]);
    let services = r#"(vip: "2001:db8::100", port: 80, scheduler: Rr,
            persistence: Some((timeout: 300, prefix: Some(64))),
            real_servers: [(address: "2001:db8::11"), (address: "2001:db8::12")]),
        (vip: "198.18.0.100", port: 80, scheduler: Rr,
            real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])"#;
    let lbd = lab.start_lbd_with(
        services,
        r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
            address: "198.18.0.2/24", address6: Some("2001:db8::2/64"))],"#,
    );
    lbd.wait_resolved(&["2001:db8::11", "2001:db8::12", "198.18.0.11", "198.18.0.12"]);
    // One open connection of each family.
    let mut c6 = KeepAlive::open_to(&lab, "2001:db8::100");
    let rs = c6.ask();
    let rs6 = match rs.as_str() {
        "rs1" => "2001:db8::11",
        "rs2" => "2001:db8::12",
        other => panic!("IPv6 request answered {other:?}"),
    };
    let mut c4 = KeepAlive::open(&lab);
    assert!(c4.ask().starts_with("rs"));
    let conns = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["--json", "conns"];
        all.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(&lab.lbctl_ok(&all)).unwrap();
        v["conns"].as_array().unwrap().clone()
    };
    let all = conns(&[]);
    let open6: Vec<_> = all
        .iter()
        .filter(|c| c["client"] == "2001:db8::1" && c["state"] == "ESTABLISHED")
        .collect();
    assert_eq!(open6.len(), 1, "{all:?}");
    let c = open6[0];
    assert_eq!(
        (
            &c["vip"],
            &c["vport"],
            &c["real"],
            &c["real_port"],
            &c["template"]
        ),
        (
            &"2001:db8::100".into(),
            &80.into(),
            &rs6.into(),
            &80.into(),
            &false.into()
        ),
        "{c}"
    );
    let port6 = c["client_port"].as_u64().unwrap();
    // The client's /64 template, like ipvsadm's: state NONE, port 0.
    let templates: Vec<_> = all.iter().filter(|c| c["template"] == true).collect();
    assert_eq!(templates.len(), 1, "{all:?}");
    let t = templates[0];
    assert_eq!(
        (&t["client"], &t["client_port"], &t["state"], &t["real"]),
        (&"2001:db8::".into(), &0.into(), &"NONE".into(), &rs6.into()),
        "{t}"
    );
    assert!(all
        .iter()
        .any(|c| c["client"] == "198.18.0.1" && c["state"] == "ESTABLISHED"));
    // Filters, of either family.
    let by_client6 = conns(&["--client", "2001:db8::1"]);
    assert!(!by_client6.is_empty());
    assert!(
        by_client6.iter().all(|c| c["client"] == "2001:db8::1"),
        "{by_client6:?}"
    );
    let by_vip4 = conns(&["--vip", "198.18.0.100"]);
    assert!(!by_vip4.is_empty());
    assert!(
        by_vip4.iter().all(|c| c["vip"] == "198.18.0.100"),
        "{by_vip4:?}"
    );
    let by_real6 = conns(&["--real", rs6]);
    assert!(by_real6.iter().all(|c| c["real"] == rs6), "{by_real6:?}");
    assert!(by_real6.iter().any(|c| c["template"] == true));
    assert!(by_real6
        .iter()
        .any(|c| c["client_port"].as_u64() == Some(port6)));
    let est6 = conns(&["--vip", "2001:db8::100", "--state", "established"]);
    assert_eq!(est6.len(), 1, "{est6:?}");
    // Text: bracketed, as ipvsadm -Lnc prints IPv6.
    let line = format!("ESTABLISHED [2001:db8::1]:{port6} [2001:db8::100]:80 [{rs6}]:80");
    for args in [&["conns"][..], &["ipvsadm", "-Lnc"][..]] {
        let text = lab.lbctl_ok(args);
        assert!(text.contains(&line), "lbctl {args:?}:\n{text}");
        assert!(
            text.contains("NONE        [2001:db8::]:0"),
            "lbctl {args:?}:\n{text}"
        );
        assert!(
            text.contains(" 198.18.0.100:80 "),
            "lbctl {args:?}:\n{text}"
        );
    }
    drop((c4, c6));
    lbd.stop();
}
