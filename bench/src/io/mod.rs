//! `bench io`: the DPDK I/O benchmark.
//!
//! A traffic generator of our own, in this process, sends stamped TCP
//! frames over a `net_memif` link to a device under test (DUT) in a child
//! process, which forwards them back; the generator counts what returns and
//! times each round trip. The DUTs take turns on the same link, the same
//! CPUs and the same traffic: `dpdk-testpmd` in `io` or `macswap` mode
//! (forwarding with no lookup: the ceiling of this path) and `lbd` with one
//! DR service. The result is lbd's received rate as a ratio of testpmd's.
//!
//! One DUT run: start the DUT; answer its ARP requests until it is ready
//! (lbd: "lbd: ready" and every real server resolved); warm up (a SYN per
//! flow, so lbd holds every connection); measure (ACKs on the live flows
//! plus `--syn-percent` SYNs of new flows, at full speed or `--rate`);
//! drain; stop the DUT and read its own counters.
//!
//! Files: `cmdline` (how each process is started and placed), `link` (the
//! generator's EAL and memif port), `frame` (frames built and read back),
//! `traffic` (which packet is next), `gen` (the send/receive loops), `dut`
//! (the child process), `report` (table and JSON).

pub mod cmdline;
pub mod dut;
pub mod frame;
pub mod gen;
pub mod link;
pub mod report;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cmdline::Layout;
use dut::{Dut, DutKind, Programs};
use gen::{Gen, Load};
use link::Link;
use report::{IoReport, RunResult};
use traffic::Mix;

/// Options of `bench io`.
#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct IoArgs {
    /// DUTs to run, in this order, once per repeat.
    #[arg(long, default_value = "testpmd-io,testpmd-macswap,lbd")]
    pub duts: String,
    /// Established flows (a SYN each in the warm-up, then ACKs).
    #[arg(long, default_value_t = 10_000)]
    pub flows: u64,
    /// Frame size in bytes without FCS (64..=1514).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Share of the measured packets that are SYNs of new flows, 0–100.
    #[arg(long, default_value_t = 0)]
    pub syn_percent: u32,
    /// Offered load in Mpps (default: as fast as the DUT takes frames).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Length of each measurement.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Cap on packets sent per measurement.
    #[arg(long, default_value_t = 100_000_000)]
    pub packets: u64,
    /// Frames per TX burst of the generator (64: the generator does more
    /// per frame than testpmd io, so it takes the largest bursts).
    #[arg(long, default_value_t = 64)]
    pub burst: usize,
    /// Real servers behind lbd's service (198.18.1.1 upwards).
    #[arg(long, default_value_t = 4)]
    pub real_servers: usize,
    /// lbd's scheduler (Rr, Wrr, Lc, Wlc, Sh, Mh, Sed, Nq, Fo).
    #[arg(long, default_value = "Wlc")]
    pub scheduler: String,
    /// CPU of the generator (and of the DUT's main lcore).
    #[arg(long, default_value_t = 0)]
    pub gen_cpu: usize,
    /// CPU of the DUT's forwarding lcore (all of them, with --queues > 1).
    #[arg(long, default_value_t = 1)]
    pub dut_cpu: usize,
    /// Queues of the memif link, 1–4: the generator sends flow f on TX
    /// queue f % N and polls every RX queue; lbd runs N workers
    /// (`queues_per_port: N`), testpmd N forwarding cores. All DUT
    /// forwarding lcores share --dut-cpu.
    #[arg(long, default_value_t = 1)]
    pub queues: u16,
    /// Runs of every DUT; medians and spreads are reported.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Seed of the flow order.
    #[arg(long, default_value_t = 0x1bd_5eed)]
    pub seed: u64,
    /// The lbd binary (default: `lbd` next to this program).
    #[arg(long)]
    pub lbd: Option<PathBuf>,
    /// The testpmd binary.
    #[arg(long, default_value = "dpdk-testpmd")]
    pub testpmd: PathBuf,
    /// JSON (one object) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON object to this file (with the tables on stdout).
    #[arg(long, value_name = "PATH")]
    pub json_file: Option<PathBuf>,
}

/// Largest connection table lbd accepts.
const MAX_CAPACITY: u64 = 67_108_864;

impl IoArgs {
    fn check(&self) -> Result<Vec<DutKind>, String> {
        let duts: Vec<DutKind> = self
            .duts
            .split(',')
            .map(DutKind::parse)
            .collect::<Result<_, _>>()?;
        if duts.is_empty() {
            return Err("--duts is empty".into());
        }
        frame::Template::new(self.size, [0; 6], [0; 6])?;
        if self.flows == 0 || self.flows > MAX_CAPACITY {
            return Err(format!("--flows must be 1..={MAX_CAPACITY}"));
        }
        if self.syn_percent > 100 {
            return Err("--syn-percent must be 0..=100".into());
        }
        if !(self.seconds > 0.0 && self.seconds <= 3600.0) {
            return Err("--seconds must be in (0, 3600]".into());
        }
        // NaN fails as well as zero and negatives.
        if self.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
            return Err("--rate must be > 0 (Mpps)".into());
        }
        if self.burst == 0 || self.burst > dpdk::BURST_SIZE {
            return Err(format!("--burst must be 1..={}", dpdk::BURST_SIZE));
        }
        if self.real_servers == 0 || self.real_servers > 1000 {
            return Err("--real-servers must be 1..=1000".into());
        }
        if !(1..=4).contains(&self.queues) {
            return Err("--queues must be 1..=4".into());
        }
        if self.flows < u64::from(self.queues) {
            return Err("--flows must be at least --queues (every queue needs a flow)".into());
        }
        if self.gen_cpu == self.dut_cpu {
            return Err("--gen-cpu and --dut-cpu must differ: each needs a CPU of its own".into());
        }
        if duts.contains(&DutKind::Lbd) && self.capacity() > MAX_CAPACITY {
            return Err(format!(
                "lbd would need a table of {} connections (flows + new SYNs); lower --flows, \
                 --syn-percent or --packets",
                self.capacity()
            ));
        }
        Ok(duts)
    }

    /// lbd's table: every flow plus every new SYN the measurement can send,
    /// with half as much again as headroom (a table refuses some new flows
    /// before it is full; see RESULTS.md, "Table fill").
    fn capacity(&self) -> u64 {
        let new = self.packets.saturating_mul(u64::from(self.syn_percent)) / 100;
        (self.flows.saturating_add(new).saturating_mul(3) / 2).max(65_536)
    }

    fn programs(&self) -> Result<Programs, String> {
        let lbd = match &self.lbd {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find this program's path: {e}"))?
                .with_file_name("lbd"),
        };
        let stdbuf = std::process::Command::new("stdbuf")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Ok(Programs {
            lbd,
            testpmd: self.testpmd.clone(),
            stdbuf,
        })
    }
}

/// A temporary directory for the memif socket and lbd's config and control
/// socket, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let d = std::env::temp_dir().join(format!("lb-bench-io-{}", std::process::id()));
        std::fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        Ok(TempDir(d))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this process may run on `cpu`.
fn cpu_allowed(cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most
    // its size into it; CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return true; // unknown: let EAL decide
        }
        cpu < libc::CPU_SETSIZE as usize && libc::CPU_ISSET(cpu, &set)
    }
}

/// Run `bench io` and print its report.
pub fn run(args: &IoArgs) -> Result<(), String> {
    let duts = args.check()?;
    for cpu in [args.gen_cpu, args.dut_cpu] {
        if !cpu_allowed(cpu) {
            return Err(format!(
                "CPU {cpu} is not available to this process (see --gen-cpu/--dut-cpu)"
            ));
        }
    }
    let progs = args.programs()?;
    if duts.contains(&DutKind::Lbd) && !progs.lbd.exists() {
        return Err(format!(
            "lbd not found at {}: build it (`cargo build --release -p lbd`) or pass --lbd PATH",
            progs.lbd.display()
        ));
    }
    let dir = TempDir::new()?;
    let layout = Layout::new(args.gen_cpu, args.dut_cpu, args.queues, &dir.0);
    let result = measure_all(args, &duts, &progs, &layout, &dir.0);
    // After EAL's cleanup (Link dropped in measure_all) and every DUT's exit.
    for d in layout.runtime_dirs() {
        let _ = std::fs::remove_dir_all(d);
    }
    let (runs, hz) = result?;
    let rep = IoReport::new(args.clone(), &layout, hz, runs);
    let json = serde_json::to_string(&rep).map_err(|e| format!("JSON: {e}"))?;
    if let Some(path) = &args.json_file {
        std::fs::write(path, format!("{json}\n"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", rep.table());
    }
    Ok(())
}

/// Every repeat of every DUT; the runs and the TSC frequency.
fn measure_all(
    args: &IoArgs,
    duts: &[DutKind],
    progs: &Programs,
    layout: &Layout,
    dir: &Path,
) -> Result<(Vec<RunResult>, u64), String> {
    let mut link = Link::open(layout)?;
    let mut runs = Vec::new();
    for rep in 0..args.repeat.max(1) {
        for &kind in duts {
            let r = run_one(kind, rep, args, progs, layout, dir, &mut link)?;
            if !args.json {
                eprintln!("  {}", report::progress_line(&r, args.repeat.max(1)));
            }
            runs.push(r);
        }
    }
    Ok((runs, link.hz))
}

/// One DUT, start to stop.
fn run_one(
    kind: DutKind,
    rep: usize,
    args: &IoArgs,
    progs: &Programs,
    layout: &Layout,
    dir: &Path,
    link: &mut Link,
) -> Result<RunResult, String> {
    let mut dut = Dut::start(
        kind,
        progs,
        layout,
        dir,
        args.real_servers,
        &args.scheduler,
        args.capacity(),
    )?;
    let reals = args.real_servers;
    let mut g = Gen::new(link, args.size, reals)?;
    // testpmd waits for the link itself; lbd resolves its real servers
    // through us, so the generator must be polling while it waits.
    let ready = g.idle_until(Duration::from_secs(60), |l| {
        if let Some(st) = dut.exited() {
            return Err(format!(
                "{} exited during start-up ({st})\n{}",
                kind.name(),
                dut.tail(30)
            ));
        }
        if let Some(line) = dut.failure() {
            return Err(format!("{} cannot forward: {line}", kind.name()));
        }
        Ok(l.up() && dut.ready(reals))
    });
    if let Err(e) = ready {
        return Err(format!(
            "{} did not become ready: {e}\n{}",
            kind.name(),
            dut.tail(30)
        ));
    }
    let warm_timeout = Duration::from_secs(60 + args.flows / 100_000);
    let (warm, live) = g
        .warmup(args.flows, args.burst, warm_timeout)
        .map_err(|e| format!("{}: {e}\n{}", kind.name(), dut.tail(20)))?;
    if live.is_empty() && args.syn_percent < 100 {
        return Err(format!(
            "{}: no SYN of the warm-up came back ({} sent); nothing to measure\n{}",
            kind.name(),
            warm.sent,
            dut.tail(30)
        ));
    }
    let mut mixes = Mix::split(
        &live,
        args.syn_percent,
        args.flows,
        args.seed,
        usize::from(args.queues),
    );
    if args.syn_percent < 100 {
        if let Some(q) = mixes.iter().position(Mix::no_live_flows) {
            return Err(format!(
                "{}: no SYN sent on queue {q} came back in the warm-up; nothing to measure there\n{}",
                kind.name(),
                dut.tail(30)
            ));
        }
    }
    let load = Load {
        burst: args.burst,
        rate_mpps: args.rate,
        seconds: args.seconds,
        max_packets: args.packets,
    };
    let measured = g.measure(&mut mixes, &load)?;
    let (arp_replies, other) = (g.arp_replies, g.other);
    drop(g);
    let dut_report = dut.stop(Duration::from_secs(30))?;
    // The next DUT's "link up" must be its own.
    link.wait_down(Duration::from_secs(5));
    Ok(RunResult::new(
        kind,
        rep,
        warm,
        measured,
        arp_replies,
        other,
        dut_report,
    ))
}
