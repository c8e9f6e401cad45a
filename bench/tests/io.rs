//! `bench io` still works: a short run (about a second per DUT) against
//! dpdk-testpmd (io) and lbd, each of which must return packets, with
//! well-formed JSON; a short run of lbd alone on two memif queues, in
//! which both of lbd's workers must handle traffic; and a short run on
//! real hugepages against `--no-huge`, in which the DUTs on hugepages must
//! map some and return packets, and the pages must be given back. No timing
//! is asserted: CI machines are shared.
//!
//! Like lbd's end-to-end tests this needs root (DPDK, memif) and FAILS
//! without it, unless `LBD_SKIP_E2E=1` is set, in which case it says so
//! loudly and returns. It also needs `dpdk-testpmd` (Debian: `dpdk`) and
//! the lbd binary, which it builds if the workspace's target directory
//! does not have it yet.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

extern "C" {
    fn geteuid() -> u32;
}

/// Root check: fail loudly, or skip loudly on explicit request.
fn may_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } == 0 {
        return true;
    }
    if std::env::var("LBD_SKIP_E2E").as_deref() == Ok("1") {
        eprintln!("\n!!!!!!!! e2e test {test} SKIPPED: not root and LBD_SKIP_E2E=1 !!!!!!!!\n");
        return false;
    }
    panic!("e2e test {test} needs root (DPDK EAL, memif); run as root, or set LBD_SKIP_E2E=1 to skip explicitly");
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The lbd binary next to `bench` (same profile), built on demand.
fn lbd_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_bench")).with_file_name("lbd");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut c = Command::new(cargo);
        c.args(["build", "-p", "lbd"]);
        if bin.parent().and_then(|p| p.file_name()) == Some("release".as_ref()) {
            c.arg("--release");
        }
        let ok = c
            .current_dir(repo())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok && bin.exists(),
            "could not build lbd at {}",
            bin.display()
        );
    }
    bin
}

/// One `bench io` at a time: each busy-polls both CPUs of a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// Run `bench io ARGS --json --lbd LBD`, bounded; its JSON object.
fn bench_io(args: &[&str], lbd: &std::path::Path) -> serde_json::Value {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("io")
        .args(args)
        .args(["--json", "--lbd"])
        .arg(lbd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    // Bounded: start-up of two DUTs plus two one-second runs.
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bench io did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench io failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{stdout}"))
}

#[test]
fn io_bench_runs_against_testpmd_and_lbd() {
    if !may_run("bench io") {
        return;
    }
    assert!(
        Command::new("dpdk-testpmd")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok(),
        "dpdk-testpmd not found: install DPDK's tools (Debian: apt-get install dpdk)"
    );
    let lbd = lbd_bin();
    let v = bench_io(
        &[
            "--duts",
            "testpmd-io,lbd",
            "--flows",
            "2000",
            "--syn-percent",
            "5",
            "--seconds",
            "1",
            "--packets",
            "2000000",
        ],
        &lbd,
    );
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{v}");
    for r in runs {
        let dut = r["dut"].as_str().expect("dut");
        let m = &r["measured"];
        let sent = m["sent"].as_u64().unwrap();
        let received = m["received"].as_u64().unwrap();
        assert!(sent > 0, "{dut} sent nothing: {r}");
        assert!(received > 0, "{dut} returned nothing: {r}");
        assert!(r["mpps_per_core"].as_f64().unwrap() > 0.0, "{r}");
        // Every warm-up SYN created a connection (testpmd: came back).
        assert_eq!(r["warmup"]["sent"].as_u64(), Some(2000), "{r}");
        assert!(r["warmup"]["live_flows"].as_u64().unwrap() > 0, "{r}");
        // 5 % SYNs of new flows went out and some came back.
        assert!(m["new_flows_sent"].as_u64().unwrap() > 0, "{r}");
        assert!(m["syn_received"].as_u64().unwrap() > 0, "{r}");
    }
    let lbd_run = runs.iter().find(|r| r["dut"] == "lbd").expect("lbd run");
    // lbd answered through us: it resolved its real servers by ARP.
    assert!(lbd_run["arp_replies"].as_u64().unwrap() > 0, "{lbd_run}");
    assert_eq!(
        lbd_run["dut_report"]["dropped"].as_u64(),
        Some(0),
        "{lbd_run}"
    );
    let ratios = v["ratios"].as_array().expect("ratios");
    assert_eq!(ratios.len(), 1, "{v}");
    assert_eq!(ratios[0]["against"], "testpmd-io");
    assert!(ratios[0]["ratio"]["median"].as_f64().unwrap() > 0.0);
}

#[test]
fn io_bench_spreads_two_queues_over_two_lbd_workers() {
    if !may_run("bench io --queues 2") {
        return;
    }
    let lbd = lbd_bin();
    let v = bench_io(
        &[
            "--duts",
            "lbd",
            "--queues",
            "2",
            "--flows",
            "2000",
            "--seconds",
            "1",
            "--packets",
            "1000000",
        ],
        &lbd,
    );
    assert_eq!(v["queues"].as_u64(), Some(2), "{v}");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{v}");
    let r = &runs[0];
    let m = &r["measured"];
    assert!(
        m["received"].as_u64().unwrap() > 0,
        "lbd returned nothing: {r}"
    );
    assert_eq!(r["warmup"]["live_flows"].as_u64(), Some(2000), "{r}");
    // The generator sent and received on both queues.
    for key in ["sent_by_queue", "received_by_queue"] {
        let per: Vec<u64> = m[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {r}"))
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(per.len(), 2, "{key}: {r}");
        assert!(per.iter().all(|&n| n > 0), "{key}: a queue idle: {r}");
    }
    // Both lbd workers handled traffic and hold connections.
    let workers = r["dut_report"]["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 2, "{r}");
    for w in workers {
        assert!(w["busy_polls"].as_u64().unwrap() > 0, "idle worker: {w}");
        assert!(
            w["conns"].as_u64().unwrap() > 0,
            "worker without connections: {w}"
        );
    }
    assert_eq!(r["dut_report"]["dropped"].as_u64(), Some(0), "{r}");
}

#[test]
fn io_bench_on_hugepages_uses_them_and_gives_them_back() {
    if !may_run("bench io --memory huge,no-huge") {
        return;
    }
    let lbd = lbd_bin();
    let nr = || -> u64 {
        std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
            .expect("nr_hugepages")
            .trim()
            .parse()
            .expect("a number")
    };
    let before = nr();
    // bench io reserves the pages itself and fails, saying why, if the
    // kernel cannot find them.
    let v = bench_io(
        &[
            "--duts",
            "testpmd-io,lbd",
            "--memory",
            "huge,no-huge",
            "--flows",
            "2000",
            "--seconds",
            "1",
            "--packets",
            "1000000",
        ],
        &lbd,
    );
    assert_eq!(v["gen_memory"], "huge", "{v}");
    let h = &v["hugepages"];
    let pages = h["pages"].as_u64().expect("pages reserved");
    assert!(pages > 0, "{h}");
    assert!(
        h["pool_reserved"]["free"].as_u64().unwrap()
            >= h["pool_before"]["free"].as_u64().unwrap() + pages,
        "HugePages_Free did not rise by the reservation: {h}"
    );
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 4, "{v}");
    for r in runs {
        let m = &r["measured"];
        assert!(m["received"].as_u64().unwrap() > 0, "returned nothing: {r}");
        let mapped = r["hugepages"]["dut_kib"].as_u64().expect("dut_kib");
        match r["memory"].as_str() {
            Some("huge") => assert!(mapped > 0, "on hugepages but maps none: {r}"),
            Some("no-huge") => assert_eq!(mapped, 0, "{r}"),
            m => panic!("memory {m:?}: {r}"),
        }
    }
    // Given back: the pool and the mount are as before.
    assert_eq!(nr(), before, "nr_hugepages not restored");
    let mount = h["mount"].as_str().expect("mount");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(mount)),
        "{mount} is still mounted:\n{mounts}"
    );
}
