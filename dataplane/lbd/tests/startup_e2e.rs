//! End-to-end tests of lbd's start-up and shutdown edges: `--check` and the
//! final report with a closed stdout, configurations asking for CPUs or
//! interfaces the machine lacks, a second lbd next to a running one, and
//! how a refused control-socket write is logged.
//!
//! The `--check` tests run the built binary without DPDK (no root needed);
//! the others need root and a namespace lab (see `common/mod.rs`). Lab
//! prefixes here start with `st`.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ONE_RS: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
    (address: "198.18.0.11")])"#;

/// A scratch directory for one test's files (removed first, so a previous
/// run's leftovers cannot matter).
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lbd-startup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The CPUs this machine has online (as lbd sees them).
fn allowed_cpus() -> Vec<u32> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .expect("/sys/devices/system/cpu/online");
    lbcore::config::parse_lcore_list(list.trim()).unwrap()
}

/// A configuration lbd's `--check` accepts on any machine: a null device
/// (no interface needed) and two lcores on one CPU the machine has.
fn portable_config(eal_extra: &str) -> String {
    format!(
        r#"(
    eal: (lcores: Some("(0-1)@{}"), no_huge: true, memory_mb: Some(256), no_pci: true{eal_extra}),
    ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
    services: [{ONE_RS}],
)
"#,
        allowed_cpus()[0]
    )
}

/// Wait for `child` to exit, at most `limit`; kill it and fail after that.
fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run lbd with `args` (in namespace `ns` when given), bounded in time;
/// (exit status, stdout, stderr).
fn lbd_output(ns: Option<&str>, args: &[&str]) -> (ExitStatus, String, String) {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(env!("CARGO_BIN_EXE_lbd"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_lbd")),
    };
    let mut child = cmd
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lbd");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_exit(&mut child, Duration::from_secs(60), "lbd");
    (status, out_t.join().unwrap(), err_t.join().unwrap())
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_with_closed_stdout_exits_cleanly() {
    let dir = scratch("closed");
    let cfg = write_config(&dir, "lbd.ron", &portable_config(""));
    // A pipe whose reading end is closed before lbd starts: every write to
    // it fails with EPIPE (Rust ignores SIGPIPE), as in `lbd --check | true`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("--config")
        .arg(&cfg)
        .arg("--check")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run lbd --check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "lbd panicked: {err}");
    // Documented: 0 when the configuration is valid, even when nothing
    // reads the output.
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    // The same configuration is reported as valid on an open stdout.
    let (status, stdout, err) = lbd_output(None, &["--config", cfg.to_str().unwrap(), "--check"]);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(stdout.starts_with("configuration OK: "), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_refuses_cores_the_machine_lacks_and_suggests_lcores() {
    let dir = scratch("cores");
    let cpus = allowed_cpus();
    let missing = cpus.iter().max().unwrap() + 1;
    let text = portable_config("").replace(
        &format!(r#"lcores: Some("(0-1)@{}")"#, cpus[0]),
        &format!(r#"cores: "{},{missing}""#, cpus[0]),
    );
    let cfg = write_config(&dir, "lbd.ron", &text);
    let (status, stdout, err) = lbd_output(None, &["--config", cfg.to_str().unwrap(), "--check"]);
    assert_eq!(status.code(), Some(2), "stdout: {stdout}\nstderr: {err}");
    // One line, located, naming the field and the missing CPU.
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    let want = format!(
        "lbd: {}:2:11: eal.cores: core list \"{},{missing}\" names CPU {missing}, which this \
         machine does not have",
        cfg.display(),
        cpus[0]
    );
    assert!(lines[0].starts_with(&want), "{}\nwanted: {want}", lines[0]);
    // The suggestion is a mapping this machine accepts.
    let suggested = lines[0]
        .split("e.g. ")
        .nth(1)
        .unwrap_or_else(|| panic!("no suggestion in {}", lines[0]));
    assert!(suggested.starts_with("lcores: Some(\""), "{suggested}");
    let text = text.replace(&format!(r#"cores: "{},{missing}""#, cpus[0]), suggested);
    let cfg = write_config(&dir, "suggested.ron", &text);
    let (status, stdout, err) = lbd_output(None, &["--config", cfg.to_str().unwrap(), "--check"]);
    assert_eq!(status.code(), Some(0), "{text}\n{stdout}\n{err}");
    assert!(stdout.contains("--lcores"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_refuses_an_interface_that_does_not_exist() {
    let dir = scratch("iface");
    let text = portable_config("").replace("net_null0", "net_af_packet0,iface=st-nope0");
    let cfg = write_config(&dir, "lbd.ron", &text);
    let (status, stdout, err) = lbd_output(None, &["--config", cfg.to_str().unwrap(), "--check"]);
    assert_eq!(status.code(), Some(2), "stdout: {stdout}\nstderr: {err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "lbd: {}:3:28: ports[0].device: interface st-nope0 does not exist (No such device) \
             in this network namespace; iface= must name an existing interface (see `ip link`)",
            cfg.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default lab configuration of `Lab::start_lbd_in` for the director,
/// with this socket and file prefix, for an lbd started by hand.
fn lab_config(socket: &Path, file_prefix: &str, device: &str) -> String {
    format!(
        r#"(
    eal: (cores: "0-1", no_huge: true, memory_mb: Some(512), no_pci: true, file_prefix: Some("{file_prefix}")),
    ports: [(name: "lan0", device: "{device}", address: "198.18.0.2/24")],
    conn_table: (capacity: 65536),
    control: (socket: "{}"),
    metrics: (listen: None),
    services: [{ONE_RS}],
)
"#,
        socket.display()
    )
}

/// Whether lbd's stderr shows that DPDK's EAL ran (it logs `EAL: ...`).
fn eal_ran(err: &str) -> bool {
    err.lines().any(|l| l.starts_with("EAL:"))
}

#[test]
fn startup_names_a_missing_interface_before_eal_and_a_refused_device() {
    if !may_run("startup_names_a_missing_interface_before_eal_and_a_refused_device") {
        return;
    }
    let lab = Lab::up("stif", 1);
    let cfg = write_config(
        &lab.dir(),
        "wrong-iface.ron",
        &lab_config(
            &lab.socket_path(),
            "lbd-e2e-stif",
            "net_af_packet0,iface=eth9",
        ),
    );
    let ns = lab.ns("dir");
    let (status, stdout, err) = lbd_output(Some(&ns), &["--config", cfg.to_str().unwrap()]);
    assert_eq!(status.code(), Some(2), "stdout: {stdout}\nstderr: {err}");
    assert!(
        err.contains(
            "ports[0].device: interface eth9 does not exist (No such device) in this network \
             namespace"
        ),
        "{err}"
    );
    assert!(!eal_ran(&err), "EAL must not start: {err}");
    assert!(!err.contains("no DPDK port named"), "{err}");
    // A device EAL refuses for another reason: the message names the field
    // and points at EAL's own explanation, rather than blaming the name.
    let cfg = write_config(
        &lab.dir(),
        "bad-device.ron",
        &lab_config(
            &lab.socket_path(),
            "lbd-e2e-stif",
            "net_af_packet0,iface=eth0,qpairs=abc",
        ),
    );
    let (status, stdout, err) = lbd_output(Some(&ns), &["--config", cfg.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {err}");
    assert!(
        err.contains(
            "lbd: ports[0].device: DPDK could not create device \
             net_af_packet0,iface=eth0,qpairs=abc (its EAL log lines above say why)"
        ),
        "{err}"
    );
    assert!(err.contains("invalid qpairs value"), "EAL said why: {err}");
    assert!(!err.contains("no DPDK port named"), "{err}");
}

#[test]
fn a_second_lbd_on_the_same_socket_stops_before_touching_the_port() {
    if !may_run("a_second_lbd_on_the_same_socket_stops_before_touching_the_port") {
        return;
    }
    let lab = Lab::up("stsock", 1);
    let first = lab.start_lbd(ONE_RS);
    // The same socket and port, but its own EAL file prefix: nothing in
    // DPDK stops this one, so only the socket can.
    let cfg = write_config(
        &lab.dir(),
        "second.ron",
        &lab_config(
            &lab.socket_path(),
            "lbd-e2e-stsock-2",
            "net_af_packet0,iface=eth0",
        ),
    );
    let ns = lab.ns("dir");
    let (status, stdout, err) = lbd_output(Some(&ns), &["--config", cfg.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {err}");
    assert!(
        err.contains("lbd: control.socket: ")
            && err.contains("another lbd is already listening on")
            && err.contains("give this one its own control.socket"),
        "{err}"
    );
    assert!(!eal_ran(&err), "EAL must not start: {err}");
    assert!(!err.contains("worker 0:"), "no worker may start: {err}");
    // The first one is untouched: its socket answers and it forwards.
    lab.lbctl_ok(&["status"]);
    first.wait_resolved(&["198.18.0.11"]);
    assert_eq!(lab.curl("http://198.18.0.100/"), "rs1");
    first.stop();
}

#[test]
fn a_second_lbd_with_the_same_file_prefix_is_told_which_process_has_it() {
    if !may_run("a_second_lbd_with_the_same_file_prefix_is_told_which_process_has_it") {
        return;
    }
    let lab = Lab::up("stpfx", 1);
    let first = lab.start_lbd(ONE_RS);
    // `Lab::start_lbd` gives the director this prefix; another socket.
    let cfg = write_config(
        &lab.dir(),
        "second.ron",
        &lab_config(
            &lab.dir().join("second.sock"),
            "lbd-e2e-stpfx",
            "net_af_packet0,iface=eth0",
        ),
    );
    let ns = lab.ns("dir");
    let (status, stdout, err) = lbd_output(Some(&ns), &["--config", cfg.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {err}");
    let want = format!(
        "lbd: eal.file_prefix: another DPDK process (pid {}, lbd) is running with file prefix \
         \"lbd-e2e-stpfx\"",
        first.pid()
    );
    assert!(err.contains(&want), "{err}\nwanted: {want}");
    assert!(!err.contains("errno 0"), "{err}");
    assert!(!eal_ran(&err), "EAL must not start: {err}");
    assert!(
        !lab.dir().join("second.sock").exists(),
        "a failed start leaves no socket behind"
    );
    lab.lbctl_ok(&["status"]);
    first.stop();
}

#[test]
fn final_report_goes_to_stderr_when_stdout_is_closed() {
    if !may_run("final_report_goes_to_stderr_when_stdout_is_closed") {
        return;
    }
    let lab = Lab::up("strep", 1);
    let cfg = write_config(
        &lab.dir(),
        "lbd.ron",
        &lab_config(
            &lab.socket_path(),
            "lbd-e2e-strep",
            "net_af_packet0,iface=eth0",
        ),
    );
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.ns("dir")])
        .arg(env!("CARGO_BIN_EXE_lbd"))
        .arg("--config")
        .arg(&cfg)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lbd");
    let err_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader_thread = {
        let (stream, sink) = (child.stderr.take().unwrap(), err_lines.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        })
    };
    let has = |needle: &str| err_lines.lock().unwrap().iter().any(|l| l.contains(needle));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !has("lbd: ready") {
        if let Some(s) = child.try_wait().unwrap() {
            reader_thread.join().unwrap();
            panic!(
                "lbd exited ({s}) before it was ready:\n{}",
                err_lines.lock().unwrap().join("\n")
            );
        }
        assert!(
            Instant::now() < deadline,
            "lbd not ready within 60 s:\n{}",
            err_lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Traffic, so that the report has counts to lose.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !has("neighbour 198.18.0.11 is at") {
        assert!(Instant::now() < deadline, "real server not resolved");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(lab.curl("http://198.18.0.100/"), "rs1");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_exit(&mut child, Duration::from_secs(30), "lbd after SIGTERM");
    reader_thread.join().unwrap();
    let lines = err_lines.lock().unwrap().clone();
    let all = lines.join("\n");
    assert!(!all.contains("panicked"), "{all}");
    assert!(status.success(), "lbd exited with {status}:\n{all}");
    assert!(
        all.contains("lbd: cannot write to stdout (Broken pipe"),
        "{all}"
    );
    // The whole report is there, counters included.
    let report = Report::parse(
        lines
            .into_iter()
            .skip_while(|l| !l.starts_with("lbd: final report"))
            .collect(),
    );
    assert!(report.get("rx_frames") > 0, "{}", report.lines.join("\n"));
    assert!(
        report.lines.iter().any(|l| l.starts_with("port lan0 ")),
        "{}",
        report.lines.join("\n")
    );
}

#[test]
fn a_refused_write_is_logged_by_name_and_reason() {
    if !may_run("a_refused_write_is_logged_by_name_and_reason") {
        return;
    }
    let lab = Lab::up("stperm", 1);
    let lbd = lab.start_lbd(ONE_RS);
    let sock = lab.socket_path();
    // Open the socket's mode so that nobody reaches the credentials check.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(lbctl_bin())
        .arg("--socket")
        .arg(&sock)
        .arg("zero")
        .output()
        .expect("setpriv");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lbd.wait_for(
        |_, e| e.iter().any(|l| l.contains("control socket: refused")),
        "the refusal in lbd's log",
    );
    let line = lbd
        .err
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("control socket: refused"))
        .cloned()
        .unwrap();
    assert!(!line.contains("Discriminant"), "{line}");
    assert!(
        line.contains("refused `zero` from pid ")
            && line.contains(
                "permission denied: uid 65534 is not root, and without control.group only root \
                 may change lbd"
            ),
        "{line}"
    );
    lbd.stop();
}
