//! End-to-end tests: the real `lbd` binary on DPDK's `net_af_packet` inside a
//! lab of network namespaces (scripts/lab), with curl as the client and
//! Python HTTP servers as DR real servers.
//!
//! They need root (namespaces, veth, raw sockets). Without root they FAIL
//! with an explanation, unless `LBD_SKIP_E2E=1` is set, in which case they
//! print a loud notice and return. CI runs as root.
//!
//! Each test builds its own lab (unique namespace prefix) and always removes
//! it, also when the test fails (Drop). Tests run one at a time: the machine
//! has two cores and each lbd pins one worker lcore.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

const VIP: &str = "198.18.0.100";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Root check: fail loudly, or skip loudly on explicit request.
fn may_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { geteuid() } == 0;
    if root {
        return true;
    }
    if std::env::var("LBD_SKIP_E2E").as_deref() == Ok("1") {
        eprintln!("\n!!!!!!!! e2e test {test} SKIPPED: not root and LBD_SKIP_E2E=1 !!!!!!!!\n");
        return false;
    }
    panic!("e2e test {test} needs root (network namespaces, veth, raw sockets); run as root, or set LBD_SKIP_E2E=1 to skip explicitly");
}

extern "C" {
    fn geteuid() -> u32;
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("spawn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A lab built by scripts/lab, removed on drop.
struct Lab {
    prefix: String,
    env: HashMap<String, String>,
    _serial: MutexGuard<'static, ()>,
}

impl Lab {
    fn up(prefix: &str, servers: usize) -> Lab {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (ok, out, err) = run(Command::new(repo().join("scripts/lab")).args([
            "up",
            "--prefix",
            prefix,
            "--servers",
            &servers.to_string(),
        ]));
        let mut lab = Lab {
            prefix: prefix.to_string(),
            env: HashMap::new(),
            _serial: serial,
        };
        assert!(ok, "scripts/lab up failed:\n{out}\n{err}");
        let text = std::fs::read_to_string(format!("/run/lbd-lab/{prefix}/lab.env")).unwrap();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                lab.env
                    .insert(k.to_string(), v.trim_matches('"').to_string());
            }
        }
        lab
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{}", self.prefix, role)
    }

    fn exec(&self, role: &str, args: &[&str]) -> (bool, String, String) {
        let ns = self.ns(role);
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns]).args(args);
        run(&mut c)
    }

    /// One HTTP GET from the client; the body (the real server's name).
    fn curl(&self, url: &str) -> String {
        let (ok, out, err) = self.exec("client", &["curl", "-sS", "--max-time", "10", url]);
        assert!(ok, "curl {url} failed: {err}");
        out.trim().to_string()
    }

    /// Start lbd in the director namespace with `services` (RON list body).
    fn start_lbd(&self, services: &str) -> Lbd {
        let cfg = format!(
            r#"(
    eal: (cores: "0-1", no_huge: true, memory_mb: Some(512), no_pci: true, file_prefix: Some("lbd-e2e-{p}")),
    ports: [(name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24")],
    conn_table: (capacity: 65536),
    services: [{services}],
)"#,
            p = self.prefix
        );
        let path = std::env::temp_dir().join(format!("lbd-e2e-{}.ron", self.prefix));
        std::fs::write(&path, cfg).unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns("dir")])
            .arg(env!("CARGO_BIN_EXE_lbd"))
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lbd");
        let out = Arc::new(Mutex::new(Vec::<String>::new()));
        let err = Arc::new(Mutex::new(Vec::<String>::new()));
        for (stream, sink) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                out.clone(),
            ),
            (Box::new(child.stderr.take().unwrap()), err.clone()),
        ] {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let lbd = Lbd {
            child: Some(child),
            out,
            err,
        };
        lbd.wait_for(
            |o, _| o.iter().any(|l| l.starts_with("lbd: ready")),
            "lbd: ready",
        );
        lbd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/lab"))
            .args(["down", "--prefix", &self.prefix])
            .output();
    }
}

/// A running lbd; killed on drop if the test did not stop it.
struct Lbd {
    child: Option<Child>,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

impl Lbd {
    fn wait_for(&self, cond: impl Fn(&[String], &[String]) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let o = self.out.lock().unwrap();
                let e = self.err.lock().unwrap();
                if cond(&o, &e) {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}\nstdout:\n{}\nstderr:\n{}",
                    self.out.lock().unwrap().join("\n"),
                    self.err.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until lbd logged every real server's MAC as resolved.
    fn wait_resolved(&self, ips: &[&str]) {
        for ip in ips {
            let needle = format!("neighbour {ip} is at");
            self.wait_for(|_, e| e.iter().any(|l| l.contains(&needle)), &needle);
        }
    }

    /// SIGTERM, wait, and parse the final report.
    fn stop(mut self) -> Report {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("lbd did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        std::thread::sleep(Duration::from_millis(200)); // let readers drain
        let lines = self.out.lock().unwrap().clone();
        assert!(
            status.success(),
            "lbd exited with {status}\nstdout:\n{}\nstderr:\n{}",
            lines.join("\n"),
            self.err.lock().unwrap().join("\n")
        );
        Report::parse(lines)
    }
}

impl Drop for Lbd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Report {
    lines: Vec<String>,
    counters: HashMap<String, u64>,
}

impl Report {
    fn parse(lines: Vec<String>) -> Report {
        let mut counters = HashMap::new();
        for l in &lines {
            let mut it = l.split_whitespace();
            if it.next() == Some("counter") {
                if let (Some(k), Some(v)) = (it.next(), it.next()) {
                    counters.insert(k.to_string(), v.parse().unwrap());
                }
            }
        }
        assert!(
            counters.contains_key("rx_frames"),
            "no final report:\n{}",
            lines.join("\n")
        );
        Report { lines, counters }
    }

    fn get(&self, name: &str) -> u64 {
        *self
            .counters
            .get(name)
            .unwrap_or_else(|| panic!("no counter {name} in report:\n{}", self.lines.join("\n")))
    }

    /// The `  -> IP:PORT ...` line of a real server, as key=value pairs.
    fn real_server(&self, ip: &str) -> HashMap<String, String> {
        let line = self
            .lines
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("-> {ip}:")))
            .unwrap_or_else(|| panic!("no real server {ip} in report"));
        line.split_whitespace()
            .filter_map(|w| {
                w.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    }
}

const TWO_RS_RR: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
    (address: "198.18.0.11"), (address: "198.18.0.12")])"#;

#[test]
fn rr_alternates_between_two_real_servers() {
    if !may_run("rr_alternates_between_two_real_servers") {
        return;
    }
    let lab = Lab::up("e2rr", 2);
    let lbd = lab.start_lbd(TWO_RS_RR);
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    let answers: Vec<String> = (0..10)
        .map(|_| lab.curl(&format!("http://{VIP}/")))
        .collect();
    eprintln!("answers: {answers:?}");
    for pair in answers.windows(2) {
        assert_ne!(pair[0], pair[1], "round robin must alternate: {answers:?}");
    }
    assert!(
        answers.iter().all(|a| a == "rs1" || a == "rs2"),
        "{answers:?}"
    );
    let r = lbd.stop();
    assert_eq!(r.get("conn_created"), 10);
    assert!(
        r.get("forwarded_dr") >= 30,
        "SYN, ACK, request, ... per connection"
    );
    assert_eq!(r.real_server("198.18.0.11")["conns"], "5");
    assert_eq!(r.real_server("198.18.0.12")["conns"], "5");
    // The connections closed: nothing is counted active any more.
    assert_eq!(r.real_server("198.18.0.11")["active"], "0");
}

#[test]
fn weighted_schedulers_follow_weights() {
    if !may_run("weighted_schedulers_follow_weights") {
        return;
    }
    let lab = Lab::up("e2wt", 2);
    for sched in ["Wrr", "Wlc"] {
        let lbd = lab.start_lbd(&format!(
            r#"(vip: "198.18.0.100", port: 80, scheduler: {sched}, real_servers: [
                (address: "198.18.0.11", weight: 3), (address: "198.18.0.12", weight: 1)])"#
        ));
        lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
        let n = 100;
        let rs1 = (0..n)
            .filter(|_| lab.curl(&format!("http://{VIP}/")) == "rs1")
            .count();
        eprintln!("{sched}: rs1 answered {rs1} of {n}");
        assert!(
            (70..=80).contains(&rs1),
            "{sched}: weights 3:1 over {n} requests gave rs1 {rs1}"
        );
        let r = lbd.stop();
        assert_eq!(r.get("conn_created"), n as u64);
    }
}

#[test]
fn keepalive_requests_stay_on_one_real_server() {
    if !may_run("keepalive_requests_stay_on_one_real_server") {
        return;
    }
    let lab = Lab::up("e2ka", 2);
    let lbd = lab.start_lbd(TWO_RS_RR);
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    // curl reuses one connection for several URLs on the same host.
    let url = format!("http://{VIP}/");
    let mut args = vec!["curl", "-sS", "--max-time", "20"];
    for _ in 0..20 {
        args.push(&url);
    }
    let (ok, out, err) = lab.exec("client", &args);
    assert!(ok, "{err}");
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(names.len(), 20, "{out}");
    assert!(
        names.iter().all(|n| *n == names[0]),
        "one connection, one real server: {names:?}"
    );
    let r = lbd.stop();
    assert_eq!(r.get("conn_created"), 1);
}

#[test]
fn director_answers_arp_and_ping_for_the_vip() {
    if !may_run("director_answers_arp_and_ping_for_the_vip") {
        return;
    }
    let lab = Lab::up("e2arp", 2);
    let lbd = lab.start_lbd(TWO_RS_RR);
    let (ok, out, err) = lab.exec("client", &["ping", "-c", "3", "-W", "2", VIP]);
    assert!(ok, "ping {VIP} failed:\n{out}\n{err}");
    let (_, neigh, _) = lab.exec("client", &["ip", "neigh", "show", VIP]);
    let dir_mac = &lab.env["LAB_DIR_MAC"];
    assert!(
        neigh.contains(dir_mac.as_str()),
        "client must learn the VIP at the director's MAC {dir_mac}: {neigh}"
    );
    for rs_mac in lab.env["LAB_RS_MACS"].split_whitespace() {
        assert!(
            !neigh.contains(rs_mac),
            "a real server answered ARP for the VIP: {neigh}"
        );
    }
    // The director's own address answers too.
    let (ok, _, err) = lab.exec("client", &["ping", "-c", "1", "-W", "2", "198.18.0.2"]);
    assert!(ok, "ping 198.18.0.2: {err}");
    let r = lbd.stop();
    assert!(r.get("arp_replied") >= 1);
    assert_eq!(r.get("icmp_echo_replied"), 4);
}

#[test]
fn malformed_frames_are_counted_and_service_continues() {
    if !may_run("malformed_frames_are_counted_and_service_continues") {
        return;
    }
    let lab = Lab::up("e2bad", 2);
    let lbd = lab.start_lbd(TWO_RS_RR);
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    assert!(lab.curl(&format!("http://{VIP}/")).starts_with("rs"));
    let counts = std::env::temp_dir().join("lbd-e2e-bad-counts.json");
    let script = repo().join("scripts/inject-malformed.py");
    let (ok, out, err) = lab.exec(
        "client",
        &[
            "python3",
            script.to_str().unwrap(),
            "--iface",
            "eth0",
            "--dst-mac",
            &lab.env["LAB_DIR_MAC"],
            "--vip",
            VIP,
            "--count-file",
            counts.to_str().unwrap(),
        ],
    );
    assert!(ok, "inject-malformed failed:\n{out}\n{err}");
    // The director still serves.
    for _ in 0..4 {
        assert!(lab.curl(&format!("http://{VIP}/")).starts_with("rs"));
    }
    let sent: HashMap<String, u64> = parse_flat_json(&std::fs::read_to_string(&counts).unwrap());
    let r = lbd.stop();
    // Each hostile case lands in its own drop counter.
    for (case, counter) in [
        ("ipv4_bad_version", "drop_ipv4_bad_version"),
        ("ipv4_total_length_too_big", "drop_ipv4_bad_total_len"),
        ("ipv4_bad_header_checksum", "drop_ipv4_bad_checksum"),
        ("ipv4_ttl_zero", "drop_ipv4_ttl_expired"),
        ("tcp_data_offset_too_small", "drop_tcp_malformed"),
        ("udp_length_too_big", "drop_udp_malformed"),
        ("arp_bad_hardware_type", "drop_arp_unsupported"),
        ("arp_truncated", "drop_arp_truncated"),
        ("unknown_ethertype", "drop_unknown_ethertype"),
    ] {
        let n = sent[case];
        assert!(n > 0, "case {case} sent nothing");
        assert!(
            r.get(counter) >= n,
            "{case}: sent {n}, {counter} = {}",
            r.get(counter)
        );
    }
    assert!(r.get("drop_ipv4_bad_header_len") >= sent["ipv4_ihl_too_small"]);
    // Fragments never reach the director in this lab: DPDK 22.11's
    // net_af_packet joins a PACKET_FANOUT group with the kernel's DEFRAG
    // flag (no devarg turns it off), so the kernel holds incomplete
    // fragments. The fragment policy is covered by the pipeline unit tests.
    let frags = sent["ipv4_fragment_first"] + sent["ipv4_fragment_non_first"];
    let total_sent: u64 = sent.values().sum::<u64>() - frags;
    assert!(
        r.get("drop_total") >= total_sent,
        "drop_total {} < sent {total_sent}",
        r.get("drop_total")
    );
    assert_eq!(r.get("conn_created"), 5);
}

/// Parse `{"a": 1, "b": 2}` (the injector's flat count file).
fn parse_flat_json(s: &str) -> HashMap<String, u64> {
    s.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once(':')?;
            Some((
                k.trim().trim_matches('"').to_string(),
                v.trim().parse().ok()?,
            ))
        })
        .collect()
}
