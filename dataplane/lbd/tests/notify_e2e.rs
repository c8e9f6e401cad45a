//! End-to-end test of lbd's systemd notifications (`src/notify.rs`): the
//! real lbd in a namespace lab, with `NOTIFY_SOCKET` pointing at a datagram
//! socket this test holds (as systemd's would be) and `WATCHDOG_USEC` set
//! (as `WatchdogSec=` does). READY=1 must come once lbd is ready, WATCHDOG=1
//! while the worker polls, none while the worker thread is stopped, again
//! once it runs, and STOPPING=1 on SIGTERM.
//!
//! The worker is made stuck for real, without any hook in lbd: the test
//! stops that one thread with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT stop
//! a single thread; SIGSTOP would stop the whole process, control loop
//! included). Needs root. Lab prefix: `sdwd`.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

const ONE_RS: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
    (address: "198.18.0.11")])"#;

/// Bound on every wait for a notification (generous: a loaded CI machine).
const WAIT: Duration = Duration::from_secs(30);

/// The next notification, waiting at most `WAIT`.
fn next(sock: &UnixDatagram) -> String {
    sock.set_nonblocking(false).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification from lbd within {WAIT:?}: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Every notification already queued, without waiting.
fn queued(sock: &UnixDatagram) -> Vec<String> {
    sock.set_nonblocking(true).unwrap();
    let mut v = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = sock.recv(&mut buf) {
        v.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    v
}

/// The thread id of lbd's (only) worker lcore: DPDK names its threads
/// `rte-worker-N` (DPDK 22.11).
fn worker_tid(pid: u32) -> i32 {
    let mut names = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let t = t.unwrap();
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim().starts_with("rte-worker") {
            return t.file_name().to_string_lossy().parse().unwrap();
        }
        names.push(comm.trim().to_string());
    }
    panic!("no rte-worker thread in lbd (pid {pid}); threads: {names:?}");
}

/// One thread held in a ptrace stop; let go (detached, running) on drop,
/// so a failing test leaves no stopped thread behind.
struct Stopped(i32);

impl Stopped {
    fn new(tid: i32) -> Stopped {
        // SAFETY: ptrace and waitpid on a thread id, with no pointers passed.
        unsafe {
            let rc = libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0);
            assert_eq!(
                rc,
                0,
                "PTRACE_SEIZE {tid}: {}",
                std::io::Error::last_os_error()
            );
            let rc = libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0);
            assert_eq!(
                rc,
                0,
                "PTRACE_INTERRUPT {tid}: {}",
                std::io::Error::last_os_error()
            );
            let mut status = 0;
            let rc = libc::waitpid(tid, &mut status, libc::__WALL);
            assert_eq!(
                rc,
                tid,
                "waitpid {tid}: {}",
                std::io::Error::last_os_error()
            );
            assert!(
                libc::WIFSTOPPED(status),
                "thread {tid} did not stop ({status:#x})"
            );
        }
        Stopped(tid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe {
            libc::ptrace(libc::PTRACE_DETACH, self.0, 0, 0);
        }
    }
}

/// How many times lbd said it withheld the watchdog.
fn withheld(err: &[String]) -> usize {
    err.iter()
        .filter(|l| l.contains("the systemd watchdog is not fed"))
        .count()
}

#[test]
fn ready_then_watchdog_only_while_the_worker_polls() {
    if !may_run("ready_then_watchdog_only_while_the_worker_polls") {
        return;
    }
    let lab = Lab::up("sdwd", 1);
    let path = lab.dir().join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).unwrap();
    // WatchdogSec=1: lbd looks at its worker (and feeds) every 500 ms.
    let lbd = lab.start_lbd_env(
        "dir",
        ONE_RS,
        "",
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    // start_lbd_env returned: "lbd: ready" is on lbd's stdout. The first
    // notification is READY=1, and it is the only one.
    assert_eq!(next(&sock), "READY=1");
    // The worker polls: the watchdog is fed, again and again.
    for _ in 0..2 {
        assert_eq!(next(&sock), "WATCHDOG=1");
    }
    assert_eq!(withheld(&lbd.err.lock().unwrap()), 0);

    // Stop the worker thread. The feed after the stop may still see the
    // polls made before it, so wait until lbd has withheld a feed, then
    // until it has withheld two more: nothing may arrive in between.
    let stopped = Stopped::new(worker_tid(lbd.pid()));
    lbd.wait_for(|_, e| withheld(e) >= 1, "a withheld watchdog feed");
    let _ = queued(&sock);
    let n = withheld(&lbd.err.lock().unwrap());
    lbd.wait_for(|_, e| withheld(e) >= n + 2, "two more withheld feeds");
    let during = queued(&sock);
    assert!(
        during.iter().all(|m| m != "WATCHDOG=1"),
        "WATCHDOG=1 sent while the worker was stopped: {during:?}"
    );
    assert!(
        lbd.err
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("worker(s) [0] have not polled")),
        "the warning names the stuck worker"
    );

    // Let it run: the feeds come back.
    drop(stopped);
    let deadline = Instant::now() + WAIT;
    while next(&sock) != "WATCHDOG=1" {
        assert!(
            Instant::now() < deadline,
            "no WATCHDOG=1 after the worker resumed"
        );
    }

    // SIGTERM: STOPPING=1 (after any feeds still on their way).
    let _report = lbd.stop();
    let rest = queued(&sock);
    assert!(
        rest.iter().any(|m| m == "STOPPING=1"),
        "no STOPPING=1 on shutdown: {rest:?}"
    );
    assert!(
        rest.iter().all(|m| m == "WATCHDOG=1" || m == "STOPPING=1"),
        "{rest:?}"
    );
    assert!(!rest.iter().any(|m| m == "READY=1"), "READY=1 twice");
}
