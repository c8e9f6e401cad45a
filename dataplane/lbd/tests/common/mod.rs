//! The lab harness shared by the end-to-end tests: a namespace lab built by
//! scripts/lab (removed on drop), a running lbd (killed on drop), its final
//! report, and lbctl.
//!
//! End-to-end tests need root (namespaces, veth, raw sockets). Without root
//! they FAIL with an explanation, unless `LBD_SKIP_E2E=1` is set, in which
//! case they print a loud notice and return. CI runs as root. Tests of one
//! binary run one at a time (a lab holds a lock): the machine has two cores
//! and each lbd pins one worker lcore.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub static SERIAL: Mutex<()> = Mutex::new(());

pub const VIP: &str = "198.18.0.100";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Root check: fail loudly, or skip loudly on explicit request.
pub fn may_run(test: &str) -> bool {
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
    pub fn geteuid() -> u32;
}

pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("spawn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A lab built by scripts/lab, removed on drop.
pub struct Lab {
    pub prefix: String,
    pub env: HashMap<String, String>,
    _serial: MutexGuard<'static, ()>,
}

impl Lab {
    pub fn up(prefix: &str, servers: usize) -> Lab {
        Lab::up_with(prefix, servers, &[])
    }

    /// A two-armed NAT lab (`scripts/lab up --nat`): client and the
    /// director's `eth0` on the external segment 198.18.0.0/24, the
    /// director's `eth1` and the real servers (198.19.0.10+I, default route
    /// via 198.19.0.1) on the internal one.
    pub fn up_nat(prefix: &str, servers: usize) -> Lab {
        Lab::up_with(prefix, servers, &["--nat"])
    }

    /// `scripts/lab up` with more arguments (e.g. `--decap`).
    pub fn up_with(prefix: &str, servers: usize, extra_args: &[&str]) -> Lab {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (ok, out, err) = run(Command::new(repo().join("scripts/lab"))
            .args(["up", "--prefix", prefix, "--servers", &servers.to_string()])
            .args(extra_args));
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

    pub fn ns(&self, role: &str) -> String {
        format!("{}-{}", self.prefix, role)
    }

    pub fn exec(&self, role: &str, args: &[&str]) -> (bool, String, String) {
        let ns = self.ns(role);
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns]).args(args);
        run(&mut c)
    }

    /// curl from the client with `extra` arguments before `url` (a 10 s
    /// limit); (success, stdout, stderr).
    pub fn curl_args(&self, extra: &[&str], url: &str) -> (bool, String, String) {
        let mut args = vec!["curl", "-sS", "--max-time", "10"];
        args.extend_from_slice(extra);
        args.push(url);
        self.exec("client", &args)
    }

    /// One HTTP GET from the client; the body (the real server's name).
    pub fn curl(&self, url: &str) -> String {
        let (ok, out, err) = self.exec("client", &["curl", "-sS", "--max-time", "10", url]);
        assert!(ok, "curl {url} failed: {err}");
        out.trim().to_string()
    }

    /// `n` requests to the VIP over one keep-alive connection (curl reuses a
    /// connection for several URLs on one host); asserts every request was
    /// answered, by one real server, and returns the answers.
    pub fn keepalive_requests(&self, n: usize) -> Vec<String> {
        let url = format!("http://{VIP}/");
        let mut args = vec!["curl", "-sS", "--max-time", "20"];
        args.extend(std::iter::repeat_n(url.as_str(), n));
        let (ok, out, err) = self.exec("client", &args);
        assert!(ok, "{err}");
        let names: Vec<String> = out.lines().map(String::from).collect();
        assert_eq!(names.len(), n, "{out}");
        assert!(
            names.iter().all(|x| *x == names[0]),
            "one connection, one real server: {names:?}"
        );
        names
    }

    /// Directory holding this lab's lbd config and control socket.
    pub fn dir(&self) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lbd-e2e-{}", self.prefix));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("lbd.ron")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir().join("lbd.sock")
    }

    /// Start lbd in the director namespace with `services` (RON list body).
    pub fn start_lbd(&self, services: &str) -> Lbd {
        self.start_lbd_with(services, "")
    }

    /// The lab's state directory (lab.env, server pid and log files).
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/lbd-lab/{}", self.prefix))
    }

    /// Start lbd with `services` and extra top-level config `sections`.
    pub fn start_lbd_with(&self, services: &str, sections: &str) -> Lbd {
        self.start_lbd_in("dir", services, sections)
    }

    /// The control socket of the lbd in namespace `role` ("dir", "dir2").
    pub fn socket_of(&self, role: &str) -> PathBuf {
        if role == "dir" {
            self.socket_path()
        } else {
            self.dir().join(format!("lbd-{role}.sock"))
        }
    }

    /// Start lbd in the director namespace `role` ("dir", or "dir2" in a
    /// lab made with `--dir2`), with its own config file, socket and EAL
    /// file prefix. "SOCK" in `sections` stands for its socket path.
    pub fn start_lbd_in(&self, role: &str, services: &str, sections: &str) -> Lbd {
        self.start_lbd_env(role, services, sections, &[])
    }

    /// As `start_lbd_in`, with extra environment variables for lbd.
    pub fn start_lbd_env(
        &self,
        role: &str,
        services: &str,
        sections: &str,
        env: &[(&str, &str)],
    ) -> Lbd {
        let socket = self.socket_of(role);
        let cfg = format!(
            r#"(
    {eal}
    {ports}
    {conn_table}
    {control}
    {sections}
    services: [{services}],
)"#,
            // An `eal` section of the caller's replaces the default one.
            eal = if has_section(sections, "eal") {
                String::new()
            } else {
                format!(
                    r#"eal: (cores: "0-1", no_huge: true, memory_mb: Some(512), no_pci: true, file_prefix: Some("lbd-e2e-{}{}")),"#,
                    self.prefix,
                    if role == "dir" { "" } else { role }
                )
            },
            // A `ports` section of the caller's replaces the default one.
            ports = if sections.contains("ports:") {
                ""
            } else {
                r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24")],"#
            },
            // A `conn_table` section of the caller's replaces the default.
            conn_table = if sections.contains("conn_table:") {
                ""
            } else {
                "conn_table: (capacity: 65536),"
            },
            // A `control` section of the caller's replaces the default one;
            // "SOCK" in it stands for this lab's socket path.
            control = if sections.contains("control:") {
                String::new()
            } else {
                format!("control: (socket: \"{}\"),", socket.display())
            },
            sections = sections.replace("SOCK", &socket.display().to_string()),
        );
        let path = if role == "dir" {
            self.config_path()
        } else {
            self.dir().join(format!("lbd-{role}.ron"))
        };
        std::fs::write(&path, cfg).unwrap();
        self.spawn_lbd(role, &path, env)
    }

    /// Start lbd in namespace `role` with a copy of the configuration file
    /// `file` (relative to the repository) in which each `(from, to)` of
    /// `edits` was replaced (each must apply); "SOCK" in a `to` stands for
    /// this role's socket path.
    pub fn start_lbd_from(&self, role: &str, file: &str, edits: &[(&str, &str)]) -> Lbd {
        let mut cfg = std::fs::read_to_string(repo().join(file)).unwrap();
        let socket = self.socket_of(role).display().to_string();
        for (from, to) in edits {
            assert!(cfg.contains(from), "{file} does not contain {from:?}");
            cfg = cfg.replace(from, &to.replace("SOCK", &socket));
        }
        let path = self.dir().join(format!("lbd-{role}-from-file.ron"));
        std::fs::write(&path, cfg).unwrap();
        self.spawn_lbd(role, &path, &[])
    }

    /// Run lbd in namespace `role` with the configuration at `path`, and
    /// wait until it is ready. `env`: extra environment variables.
    fn spawn_lbd(&self, role: &str, path: &std::path::Path, env: &[(&str, &str)]) -> Lbd {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(role)])
            .envs(env.iter().copied())
            .arg(env!("CARGO_BIN_EXE_lbd"))
            .arg("--config")
            .arg(path);
        spawn_lbd_command(cmd)
    }
}

/// Run `cmd` (an lbd command line), collect its output, and wait until it
/// is ready.
pub fn spawn_lbd_command(mut cmd: Command) -> Lbd {
    let mut child = cmd
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

/// Whether the config text `sections` has a top-level-looking field `name:`
/// (not merely a field whose name ends in `name`, such as `real:` for `eal`).
fn has_section(sections: &str, name: &str) -> bool {
    let pat = format!("{name}:");
    sections.match_indices(&pat).any(|(i, _)| {
        !sections[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Waits until `cond` holds, polling, at most a minute (then fails,
/// naming `what`).
pub fn wait(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// keepalived (`--vrrp`) running in one of a lab's namespaces on a
/// configuration the test wrote; killed on drop.
pub struct Keepalived {
    pid_file: PathBuf,
}

impl Keepalived {
    /// Writes `conf` to `<lab dir>/<dir>/keepalived.conf` and starts
    /// keepalived on it in namespace `role` (it daemonises: started once
    /// it returns).
    pub fn start(lab: &Lab, role: &str, dir: &str, conf: &str) -> Keepalived {
        let dir = lab.dir().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keepalived.conf");
        std::fs::write(&file, conf).unwrap();
        let pid_file = dir.join("keepalived.pid");
        let st = Command::new("ip")
            .args(["netns", "exec", &lab.ns(role), "keepalived", "--vrrp", "-f"])
            .arg(&file)
            .arg("-p")
            .arg(&pid_file)
            .arg("-r")
            .arg(dir.join("vrrp.pid"))
            .status()
            .expect("keepalived");
        assert!(st.success(), "keepalived failed to start");
        Keepalived { pid_file }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// The lbctl binary (built on demand when only lbd's tests were built).
pub fn lbctl_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_lbd")).with_file_name("lbctl");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "lbctl"])
            .current_dir(repo())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok && bin.exists(), "could not build lbctl");
    }
    bin
}

impl Lab {
    /// Run lbctl against this lab's lbd; (exit code, stdout, stderr).
    pub fn lbctl(&self, args: &[&str]) -> (i32, String, String) {
        self.lbctl_in("dir", args)
    }

    /// Run lbctl against the lbd in namespace `role`.
    pub fn lbctl_in(&self, role: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(lbctl_bin())
            .arg("--socket")
            .arg(self.socket_of(role))
            .args(args)
            .output()
            .expect("run lbctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// lbctl that must succeed; its stdout.
    pub fn lbctl_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.lbctl(args);
        assert_eq!(code, 0, "lbctl {args:?} failed ({code}):\n{out}\n{err}");
        out
    }

    /// The VRRP state and master of the lbd in `role` (`lbctl status`),
    /// empty while it does not answer.
    pub fn vrrp_status(&self, role: &str) -> (String, String) {
        let (code, out, _) = self.lbctl_in(role, &["--json", "status"]);
        if code != 0 {
            return (String::new(), String::new());
        }
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        (
            v["vrrp"]["state"].as_str().unwrap_or("").to_string(),
            v["vrrp"]["master"].as_str().unwrap_or("").to_string(),
        )
    }

    /// The VRRP state of the lbd in `role` ("" while it does not answer).
    pub fn vrrp_state(&self, role: &str) -> String {
        self.vrrp_status(role).0
    }

    /// Runs `line` with `sh -c` in this lab's directory, as a document's
    /// command line: `ipvsadm`, `ipvsadm-save` and `ipvsadm-restore` on
    /// its PATH are lbctl (links to it) talking to this lab's lbd;
    /// (exit code, stdout, stderr).
    pub fn ipvsadm_shell(&self, line: &str) -> (i32, String, String) {
        let bin = self.dir().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for name in ["ipvsadm", "ipvsadm-save", "ipvsadm-restore"] {
            let link = bin.join(name);
            if std::fs::read_link(&link).ok() != Some(lbctl_bin()) {
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(lbctl_bin(), &link).unwrap();
            }
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("sh")
            .args(["-c", line])
            .current_dir(self.dir())
            .env("PATH", path)
            .env("LBCTL_SOCKET", self.socket_path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// [`ipvsadm_shell`](Self::ipvsadm_shell) that must succeed; its stdout.
    pub fn ipvsadm_ok(&self, line: &str) -> String {
        let (code, out, err) = self.ipvsadm_shell(line);
        assert_eq!(code, 0, "`{line}` failed ({code}):\n{out}\n{err}");
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ =
            std::fs::remove_dir_all(std::env::temp_dir().join(format!("lbd-e2e-{}", self.prefix)));
        let _ = Command::new(repo().join("scripts/lab"))
            .args(["down", "--prefix", &self.prefix])
            .output();
    }
}

/// A running lbd; killed on drop if the test did not stop it.
pub struct Lbd {
    child: Option<Child>,
    pub out: Arc<Mutex<Vec<String>>>,
    pub err: Arc<Mutex<Vec<String>>>,
}

impl Lbd {
    pub fn wait_for(&self, cond: impl Fn(&[String], &[String]) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let o = self.out.lock().unwrap();
                let e = self.err.lock().unwrap();
                if cond(&o, &e) {
                    return;
                }
            }
            let exited = self.exited();
            if exited {
                // Let the readers drain what it wrote last, then look again.
                std::thread::sleep(Duration::from_millis(300));
                if cond(&self.out.lock().unwrap(), &self.err.lock().unwrap()) {
                    return;
                }
            }
            if exited || Instant::now() > deadline {
                panic!(
                    "{} waiting for {what}\nstdout:\n{}\nstderr:\n{}",
                    if exited { "lbd exited" } else { "timed out" },
                    self.out.lock().unwrap().join("\n"),
                    self.err.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the lbd process has exited: it stays a zombie until `stop`
    /// or drop reaps it, so look at its state in /proc.
    fn exited(&self) -> bool {
        let Some(c) = self.child.as_ref() else {
            return true;
        };
        match std::fs::read_to_string(format!("/proc/{}/stat", c.id())) {
            // "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => true,
        }
    }

    /// Wait until lbd logged every real server's MAC as resolved.
    pub fn wait_resolved(&self, ips: &[&str]) {
        for ip in ips {
            let needle = format!("neighbour {ip} is at");
            self.wait_for(|_, e| e.iter().any(|l| l.contains(&needle)), &needle);
        }
    }

    /// The process id of the running lbd.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, wait, and parse the final report.
    pub fn stop(mut self) -> Report {
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

pub struct Report {
    pub lines: Vec<String>,
    pub counters: HashMap<String, u64>,
}

impl Report {
    pub fn parse(lines: Vec<String>) -> Report {
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

    pub fn get(&self, name: &str) -> u64 {
        *self
            .counters
            .get(name)
            .unwrap_or_else(|| panic!("no counter {name} in report:\n{}", self.lines.join("\n")))
    }

    /// The `worker I busy_polls=... idle_polls=... conns=...` lines, in
    /// worker order, as key=value pairs.
    pub fn workers(&self) -> Vec<HashMap<String, u64>> {
        self.lines
            .iter()
            .filter(|l| l.starts_with("worker "))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|w| {
                        let (k, v) = w.split_once('=')?;
                        Some((k.to_string(), v.parse().ok()?))
                    })
                    .collect()
            })
            .collect()
    }

    /// The `port NAME rx_packets=... tx_packets=...` line of a port, as
    /// key=value pairs.
    pub fn port(&self, name: &str) -> HashMap<String, u64> {
        let line = self
            .lines
            .iter()
            .find(|l| l.starts_with(&format!("port {name} ")))
            .unwrap_or_else(|| panic!("no port {name} in report:\n{}", self.lines.join("\n")));
        line.split_whitespace()
            .filter_map(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    /// The `  -> IP:PORT ...` line of a real server, as key=value pairs.
    pub fn real_server(&self, ip: &str) -> HashMap<String, String> {
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

/// Parse `{"a": 1, "b": 2}` (the injector's flat count file).
pub fn parse_flat_json(s: &str) -> HashMap<String, u64> {
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

/// A keep-alive HTTP client in the client namespace: one GET per
/// [`KeepAlive::ask`], all over one TCP connection to the VIP.
pub struct KeepAlive {
    child: Child,
    to: std::process::ChildStdin,
    from: BufReader<std::process::ChildStdout>,
}

/// The client: one GET per line on its stdin, printing each body.
const KEEPALIVE_PY: &str = r#"
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=20)
for line in sys.stdin:
    c.request("GET", "/")
    print(c.getresponse().read().decode().strip(), flush=True)
"#;

impl KeepAlive {
    pub fn open(lab: &Lab) -> KeepAlive {
        KeepAlive::open_to(lab, VIP)
    }

    /// The same to another address (an IPv6 VIP, unbracketed).
    pub fn open_to(lab: &Lab, vip: &str) -> KeepAlive {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("client"), "/usr/bin/python3", "-c"])
            .arg(KEEPALIVE_PY)
            .arg(vip)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 keep-alive client");
        let to = child.stdin.take().unwrap();
        let from = BufReader::new(child.stdout.take().unwrap());
        KeepAlive { child, to, from }
    }

    /// One request on the connection; the answer's body ("" if the client
    /// failed).
    pub fn ask(&mut self) -> String {
        use std::io::Write as _;
        let _ = self.to.write_all(b"GET\n");
        let _ = self.to.flush();
        let mut line = String::new();
        let _ = self.from.read_line(&mut line);
        line.trim().to_string()
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
