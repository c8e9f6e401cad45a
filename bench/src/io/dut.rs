//! The device under test as a child process: lbd or dpdk-testpmd, started
//! and stopped by `bench io` itself (DPDK's EAL initialises once per process,
//! so the DUT cannot live in the generator's process).
//!
//! Its stdout and stderr are collected line by line by two threads, so the
//! generator can poll for "ready" while it keeps answering the DUT's ARP
//! requests, and so every error can show what the DUT said. The child is
//! killed if it is dropped still running.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::cmdline::{Layout, MemoryKind};
use super::frame::addr;

/// Which device is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DutKind {
    Lbd,
    /// lbd whose large heap allocations (the connection table among them)
    /// are madvised for transparent huge pages: glibc does it with
    /// `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (glibc ≥ 2.35; THP mode
    /// `madvise` or `always`). EAL memory is what `--memory` says.
    LbdThp,
    TestpmdIo,
    TestpmdMacswap,
}

impl DutKind {
    pub fn parse(s: &str) -> Result<DutKind, String> {
        match s.trim() {
            "lbd" => Ok(DutKind::Lbd),
            "lbd-thp" => Ok(DutKind::LbdThp),
            "testpmd-io" | "io" => Ok(DutKind::TestpmdIo),
            "testpmd-macswap" | "macswap" => Ok(DutKind::TestpmdMacswap),
            o => Err(format!(
                "unknown DUT {o:?}: use lbd, lbd-thp, testpmd-io or testpmd-macswap"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DutKind::Lbd => "lbd",
            DutKind::LbdThp => "lbd-thp",
            DutKind::TestpmdIo => "testpmd-io",
            DutKind::TestpmdMacswap => "testpmd-macswap",
        }
    }

    pub fn is_testpmd(self) -> bool {
        !self.is_lbd()
    }

    pub fn is_lbd(self) -> bool {
        matches!(self, DutKind::Lbd | DutKind::LbdThp)
    }
}

/// What the DUT said about itself when it stopped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DutReport {
    /// Packets its port received / sent (lbd: port counters; testpmd: the
    /// accumulated forward statistics).
    pub rx_packets: Option<u64>,
    pub tx_packets: Option<u64>,
    /// lbd: `counter drop_total`; testpmd: RX-dropped + TX-dropped.
    pub dropped: Option<u64>,
    /// lbd: its workers' busy and idle polls over their whole life, summed.
    pub busy_polls: Option<u64>,
    pub idle_polls: Option<u64>,
    /// lbd: each worker's line of the final report (one per queue).
    pub workers: Vec<WorkerReport>,
    /// lbd: connections created (`counter conn_created`), if reported.
    pub conns_created: Option<u64>,
    /// lbd: new flows refused for a full table (`drop_conn_table_full`).
    pub table_full: Option<u64>,
    /// lbd: frames its TX queue refused three times and it freed
    /// (`tx_failed`; not part of `drop_total`): the generator's RX ring was
    /// full because the generator fell behind.
    pub tx_failed: Option<u64>,
    /// testpmd: "CPU cycles/packet" of its forwarding loop
    /// (`--record-core-cycles`: cycles of the polls that received frames,
    /// ÷ frames). Idle polls are left out, but a DUT that is fed slower
    /// than it forwards gets small bursts, which cost more per frame.
    pub cycles_per_packet: Option<f64>,
    /// lbd: frames received per busy poll (`rx_packets / busy_polls`, its
    /// whole life): 32, its burst, means every poll found a full burst
    /// waiting, i.e. lbd was the bottleneck whenever it had work.
    pub avg_rx_burst: Option<f64>,
}

/// One lbd worker at exit: `worker I busy_polls=… idle_polls=… conns=…`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerReport {
    pub worker: u64,
    pub busy_polls: u64,
    pub idle_polls: u64,
    /// Connections in its table when lbd stopped.
    pub conns: u64,
}

/// How to find the DUT programs.
#[derive(Debug, Clone)]
pub struct Programs {
    pub lbd: PathBuf,
    pub testpmd: PathBuf,
    /// Whether coreutils' `stdbuf` is there to line-buffer testpmd.
    pub stdbuf: bool,
}

/// lbd's service and table (testpmd ignores them).
#[derive(Debug, Clone, Copy)]
pub struct LbdSetup<'a> {
    pub reals: usize,
    pub scheduler: &'a str,
    pub capacity: u64,
}

/// A running DUT.
pub struct Dut {
    pub kind: DutKind,
    pub memory: MemoryKind,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl std::io::Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
}

impl Dut {
    /// Start `kind` with its EAL on `memory`; for lbd, its config is
    /// written into `dir`.
    pub fn start(
        kind: DutKind,
        memory: MemoryKind,
        progs: &Programs,
        layout: &Layout,
        dir: &Path,
        lbd: LbdSetup,
    ) -> Result<Dut, String> {
        let mut cmd = match kind {
            DutKind::Lbd | DutKind::LbdThp => {
                let path = dir.join("lbd.ron");
                let cfg = layout.lbd_config(lbd.reals, lbd.scheduler, lbd.capacity, dir, memory);
                std::fs::write(&path, cfg)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                let mut c = Command::new(&progs.lbd);
                c.arg("--config").arg(&path);
                // The generator parses lbd's log lines; keep them plain.
                c.env("LBD_LOG", "info");
                if kind == DutKind::LbdThp {
                    c.env("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1");
                }
                c
            }
            DutKind::TestpmdIo | DutKind::TestpmdMacswap => {
                let mode = if kind == DutKind::TestpmdIo {
                    "io"
                } else {
                    "macswap"
                };
                // testpmd writes to a pipe here, so C buffers its stdout
                // and "Press enter to exit" would only arrive at exit;
                // `stdbuf -oL` (coreutils) makes it line-buffered.
                let mut c = if progs.stdbuf {
                    let mut c = Command::new("stdbuf");
                    c.arg("-oL").arg(&progs.testpmd);
                    c
                } else {
                    Command::new(&progs.testpmd)
                };
                c.args(layout.testpmd_args(mode, memory));
                c
            }
        };
        let prog = match kind {
            DutKind::Lbd | DutKind::LbdThp => &progs.lbd,
            _ => &progs.testpmd,
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} ({}): {e}{}",
                    kind.name(),
                    prog.display(),
                    match kind {
                        DutKind::Lbd | DutKind::LbdThp =>
                            "; build it with `cargo build --release -p lbd` or pass --lbd PATH",
                        _ => "; install it (Debian: apt-get install dpdk) or pass --testpmd PATH",
                    }
                )
            })?;
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().expect("piped"), out.clone());
        collect(child.stderr.take().expect("piped"), err.clone());
        let stdin = child.stdin.take();
        Ok(Dut {
            kind,
            memory,
            child: Some(child),
            stdin,
            out,
            err,
        })
    }

    fn any_line(lines: &Mutex<Vec<String>>, pred: impl Fn(&str) -> bool) -> bool {
        lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|l| pred(l))
    }

    /// Whether the DUT says it forwards: lbd printed "lbd: ready" and
    /// resolved the first `reals` real servers; testpmd started its port.
    pub fn ready(&self, reals: usize) -> bool {
        match self.kind {
            DutKind::Lbd | DutKind::LbdThp => {
                Dut::any_line(&self.out, |l| l.starts_with("lbd: ready"))
                    && resolved(&self.err.lock().unwrap_or_else(|e| e.into_inner()), reals) >= reals
            }
            // "Press enter to exit" comes once forwarding has started (it
            // reaches us line by line thanks to `stdbuf -oL`, see `start`).
            _ => Dut::any_line(&self.out, |l| l.contains("Press enter to exit")),
        }
    }

    /// A line saying the DUT cannot forward although it keeps running
    /// (testpmd carries on when its port failed to start).
    pub fn failure(&self) -> Option<String> {
        let bad = ["Fail to start port", "Not all ports were started"];
        let out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.iter()
            .find(|l| bad.iter().any(|b| l.contains(b)))
            .cloned()
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` once the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The last `n` lines of each stream, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let pick = |v: &Mutex<Vec<String>>| {
            let v = v.lock().unwrap_or_else(|e| e.into_inner());
            v[v.len().saturating_sub(n)..].join("\n")
        };
        format!(
            "--- {} stdout (last lines):\n{}\n--- stderr:\n{}",
            self.kind.name(),
            pick(&self.out),
            pick(&self.err)
        )
    }

    /// Stop the DUT (lbd: SIGTERM; testpmd: a newline on stdin, as its
    /// prompt asks), wait up to `timeout` (then SIGKILL), and parse its
    /// final report.
    pub fn stop(mut self, timeout: Duration) -> Result<DutReport, String> {
        let Some(mut child) = self.child.take() else {
            return Err("DUT already stopped".into());
        };
        match self.kind {
            DutKind::Lbd | DutKind::LbdThp => {
                // SAFETY: kill(2) with a pid we own (our child, not yet
                // reaped, so the pid cannot have been reused) and SIGTERM.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            }
            _ => {
                if let Some(mut s) = self.stdin.take() {
                    let _ = s.write_all(b"\n");
                }
            }
        }
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not stop within {timeout:?}; killed\n{}",
                    self.kind.name(),
                    self.tail(20)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The collector threads see EOF right after exit; give them a moment.
        std::thread::sleep(Duration::from_millis(200));
        if !status.success() {
            return Err(format!(
                "{} exited with {status}\n{}",
                self.kind.name(),
                self.tail(30)
            ));
        }
        let out = self.out.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(match self.kind {
            DutKind::Lbd | DutKind::LbdThp => parse_lbd_report(&out),
            _ => parse_testpmd_report(&out),
        })
    }
}

impl Drop for Dut {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How many of the first `reals` real servers lbd has logged as resolved
/// ("neighbour 198.18.1.1 is at 02:…").
fn resolved(lines: &[String], reals: usize) -> usize {
    let mut seen = vec![false; reals];
    for l in lines {
        let Some(rest) = l.split("neighbour ").nth(1) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(ip), Some("is"), Some("at")) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if let Some(i) = ip
            .parse()
            .ok()
            .and_then(|ip| addr::real_server_index(ip, reals))
        {
            seen[i] = true;
        }
    }
    seen.iter().filter(|&&s| s).count()
}

/// `key=value` in a line of space-separated fields.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// lbd's final report (see lbd's report.rs for the format).
pub fn parse_lbd_report(lines: &[String]) -> DutReport {
    let mut r = DutReport::default();
    let counter = |name: &str| {
        lines.iter().find_map(|l| {
            let rest = l.strip_prefix("counter ")?;
            let (k, v) = rest.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok()).flatten()
        })
    };
    if let Some(l) = lines.iter().find(|l| l.starts_with("port bench0 ")) {
        r.rx_packets = field(l, "rx_packets");
        r.tx_packets = field(l, "tx_packets");
    }
    for l in lines.iter().filter(|l| l.starts_with("worker ")) {
        let Some(worker) = l.split_whitespace().nth(1).and_then(|w| w.parse().ok()) else {
            continue;
        };
        r.workers.push(WorkerReport {
            worker,
            busy_polls: field(l, "busy_polls").unwrap_or(0),
            idle_polls: field(l, "idle_polls").unwrap_or(0),
            conns: field(l, "conns").unwrap_or(0),
        });
    }
    if !r.workers.is_empty() {
        r.busy_polls = Some(r.workers.iter().map(|w| w.busy_polls).sum());
        r.idle_polls = Some(r.workers.iter().map(|w| w.idle_polls).sum());
    }
    r.dropped = counter("drop_total");
    r.conns_created = counter("conn_created");
    r.table_full = counter("drop_conn_table_full");
    r.tx_failed = counter("tx_failed");
    if let (Some(p), Some(b)) = (r.rx_packets, r.busy_polls) {
        r.avg_rx_burst = (b > 0).then(|| p as f64 / b as f64);
    }
    r
}

/// The "Accumulated forward statistics" block testpmd prints on exit:
/// `RX-packets: N  RX-dropped: N  RX-total: N` and the same for TX.
pub fn parse_testpmd_report(lines: &[String]) -> DutReport {
    let mut r = DutReport::default();
    let Some(start) = lines
        .iter()
        .position(|l| l.contains("Accumulated forward statistics"))
    else {
        return r;
    };
    let value = |line: &str, key: &str| -> Option<u64> {
        let i = line.find(key)? + key.len();
        line[i..].split_whitespace().next()?.parse().ok()
    };
    let mut dropped = 0;
    for l in lines[start..].iter().take(4) {
        if let Some(v) = value(l, "RX-packets:") {
            r.rx_packets = Some(v);
        }
        if let Some(v) = value(l, "TX-packets:") {
            r.tx_packets = Some(v);
        }
        dropped += value(l, "RX-dropped:").unwrap_or(0) + value(l, "TX-dropped:").unwrap_or(0);
    }
    r.dropped = Some(dropped);
    r.cycles_per_packet = lines.iter().find_map(|l| {
        let rest = l.split("CPU cycles/packet=").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn reads_lbd_report() {
        let r = parse_lbd_report(&lines(
            "lbd: final report after 3.0 s\n\
             port bench0 rx_packets=10 rx_bytes=640 tx_packets=9 tx_bytes=576 rx_missed=0 rx_errors=0 tx_errors=0 rx_nombuf=0\n\
             worker 0 busy_polls=5 idle_polls=7 conns=3\n\
             counter conn_created 3\n\
             counter drop_conn_table_full 0\n\
             counter tx_failed 2\n\
             counter drop_total 1",
        ));
        assert_eq!(r.rx_packets, Some(10));
        assert_eq!(r.tx_packets, Some(9));
        assert_eq!(r.busy_polls, Some(5));
        assert_eq!(r.idle_polls, Some(7));
        assert_eq!(r.dropped, Some(1));
        assert_eq!(r.conns_created, Some(3));
        assert_eq!(r.tx_failed, Some(2));
        assert_eq!(r.workers.len(), 1);
        assert_eq!(r.workers[0].conns, 3);
    }

    #[test]
    fn reads_every_lbd_worker() {
        let r = parse_lbd_report(&lines(
            "port bench0 rx_packets=10 tx_packets=9\n\
             worker 0 busy_polls=5 idle_polls=7 conns=3\n\
             worker 1 busy_polls=4 idle_polls=1 conns=2",
        ));
        let w: Vec<(u64, u64, u64)> = r
            .workers
            .iter()
            .map(|w| (w.worker, w.busy_polls, w.conns))
            .collect();
        assert_eq!(w, [(0, 5, 3), (1, 4, 2)]);
        assert_eq!(r.busy_polls, Some(9));
        assert_eq!(r.idle_polls, Some(8));
    }

    #[test]
    fn counts_resolved_real_servers() {
        let l = lines(
            "2026-11-22T05:00:00Z  INFO lbd::control::periodic: neighbour 198.18.1.1 is at 02:00:c6:12:80:00\n\
             INFO neighbour 198.18.1.2 unresolved\n\
             INFO neighbour 198.18.1.3 is at 02:00:c6:12:80:02\n\
             INFO neighbour 198.18.1.3 is at 02:00:c6:12:80:02\n\
             INFO neighbour 198.18.0.1 is at 02:00:00:00:00:01",
        );
        assert_eq!(resolved(&l, 4), 2);
        assert_eq!(resolved(&l, 1), 1);
    }

    #[test]
    fn reads_testpmd_report() {
        let r = parse_testpmd_report(&lines(
            "  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++\n\
             \x20 RX-packets: 1234           RX-dropped: 5             RX-total: 1239\n\
             \x20 TX-packets: 1230           TX-dropped: 4             TX-total: 1234\n\
             \x20 ++++++++++\n\
             \x20 CPU cycles/packet=49.38 (total cycles=7796725030 / total io packets=157891680) at 2300 MHz Clock",
        ));
        assert_eq!(r.cycles_per_packet, Some(49.38));
        assert_eq!(r.rx_packets, Some(1234));
        assert_eq!(r.tx_packets, Some(1230));
        assert_eq!(r.dropped, Some(9));
    }
}
