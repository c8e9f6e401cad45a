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
//! With `--memory huge` (or `huge,no-huge`) the EALs run on real 2 MiB
//! hugepages, reserved and mounted for the run and given back after it;
//! with both kinds every DUT runs on each in every repeat, alternating.
//!
//! Files: `cmdline` (how each process is started and placed, on which
//! memory), `cpu` (the CPU time each side got), `huge` (hugepages reserved, mounted, watched, restored),
//! `interrupt` (Ctrl-C as an error, so the guards run), `link` (the
//! generator's EAL and memif port), `frame` (frames built and read back),
//! `traffic` (which packet is next), `gen` (the send/receive loops), `dut`
//! (the child process), `report` (table and JSON).

pub mod cmdline;
pub mod cpu;
pub mod dut;
pub mod frame;
pub mod gen;
pub mod huge;
pub mod interrupt;
pub mod link;
pub mod report;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cmdline::{Layout, MemoryKind};
use dut::{Dut, DutKind, LbdSetup, Programs};
use gen::{Gen, Load};
use huge::{HugeSetup, HugeUse, Hugepages};
use link::Link;
use report::{IoReport, RunResult};
use traffic::Mix;

/// Options of `bench io`.
#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct IoArgs {
    /// DUTs to run, in this order, once per repeat: testpmd-io,
    /// testpmd-macswap, lbd, and lbd-thp (lbd with its large heap
    /// allocations, the connection table among them, on transparent huge
    /// pages).
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
    /// Runs of every DUT (on every --memory kind); medians and spreads are
    /// reported.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Memory of the DUTs' EALs: `no-huge` (ordinary pages, `--no-huge
    /// -m 512`), `huge` (real 2 MiB hugepages, reserved for the run on a
    /// private hugetlbfs and given back afterwards; needs root), or
    /// `huge,no-huge`: every DUT runs on both in each repeat, the order
    /// alternating between repeats.
    #[arg(long, default_value = "no-huge")]
    pub memory: String,
    /// Memory of the generator's EAL, fixed for the run (default: `huge`
    /// if --memory has `huge`, else `no-huge`).
    #[arg(long)]
    pub gen_memory: Option<String>,
    /// DUTs on hugepages open their memif client in zero-copy mode
    /// (`zero-copy=yes`, `--single-file-segments`); the generator, the
    /// server, copies as before. Needs --memory huge.
    #[arg(long)]
    pub zero_copy: bool,
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

/// What a `bench io` run does, from its checked options.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub duts: Vec<DutKind>,
    /// The DUTs' memory kinds, in the order of the first repeat.
    pub memories: Vec<MemoryKind>,
    pub gen_memory: MemoryKind,
}

impl Plan {
    /// The runs of repeat `rep`, in order: each memory kind in turn (the
    /// order reversed on odd repeats, so neither kind always runs first
    /// after a start-up or always last when the machine got busier), every
    /// DUT on it.
    pub fn runs(&self, rep: usize) -> Vec<(MemoryKind, DutKind)> {
        let mut mems = self.memories.clone();
        if rep % 2 == 1 {
            mems.reverse();
        }
        mems.iter()
            .flat_map(|&m| self.duts.iter().map(move |&d| (m, d)))
            .collect()
    }

    /// Whether any EAL of the run uses hugepages.
    pub fn uses_hugepages(&self) -> bool {
        self.gen_memory == MemoryKind::Huge || self.memories.contains(&MemoryKind::Huge)
    }
}

/// `--memory`: a comma-separated list of memory kinds, each at most once.
fn parse_memories(s: &str) -> Result<Vec<MemoryKind>, String> {
    let mut v: Vec<MemoryKind> = Vec::new();
    for x in s.split(',') {
        let x = MemoryKind::parse(x)?;
        if v.contains(&x) {
            return Err(format!("--memory names {} twice", x.name()));
        }
        v.push(x);
    }
    Ok(v)
}

impl IoArgs {
    fn check(&self) -> Result<Plan, String> {
        let duts: Vec<DutKind> = self
            .duts
            .split(',')
            .map(DutKind::parse)
            .collect::<Result<_, _>>()?;
        let memories = parse_memories(&self.memory)?;
        let gen_memory = match &self.gen_memory {
            Some(m) => MemoryKind::parse(m)?,
            None if memories.contains(&MemoryKind::Huge) => MemoryKind::Huge,
            None => MemoryKind::NoHuge,
        };
        if self.zero_copy && memories != [MemoryKind::Huge] {
            return Err(
                "--zero-copy needs --memory huge alone (memif zero-copy passed no traffic on \
                 --no-huge)"
                    .into(),
            );
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
        if duts.iter().any(|d| d.is_lbd()) && self.capacity() > MAX_CAPACITY {
            return Err(format!(
                "lbd would need a table of {} connections (flows + new SYNs); lower --flows, \
                 --syn-percent or --packets",
                self.capacity()
            ));
        }
        Ok(Plan {
            duts,
            memories,
            gen_memory,
        })
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
    let plan = args.check()?;
    let duts = &plan.duts;
    for cpu in [args.gen_cpu, args.dut_cpu] {
        if !cpu_allowed(cpu) {
            return Err(format!(
                "CPU {cpu} is not available to this process (see --gen-cpu/--dut-cpu)"
            ));
        }
    }
    let progs = args.programs()?;
    if duts.iter().any(|d| d.is_lbd()) && !progs.lbd.exists() {
        return Err(format!(
            "lbd not found at {}: build it (`cargo build --release -p lbd`) or pass --lbd PATH",
            progs.lbd.display()
        ));
    }
    interrupt::install();
    let dir = TempDir::new()?;
    let layout = Layout::new(args.gen_cpu, args.dut_cpu, args.queues, &dir.0);
    // Declared after `dir`, so dropped before it: the mount is inside it.
    let mut hugepages = None;
    let mut huge_setup = None;
    let layout = if plan.uses_hugepages() {
        let mount = dir.0.join("huge");
        let wanted = layout
            .clone()
            .with_memory(plan.gen_memory, Some(&mount), args.zero_copy);
        let (gen_mb, dut_mb) = wanted.huge_mb(&plan.memories);
        let pages = huge::pages_for(gen_mb, dut_mb);
        let h = Hugepages::reserve(pages, &mount).map_err(|e| e.to_string())?;
        huge_setup = Some(HugeSetup {
            pages,
            mount: mount.display().to_string(),
            gen_mb,
            dut_mb,
            pool_before: h.before,
            pool_reserved: h.reserved,
            pool_after: None,
        });
        hugepages = Some(h);
        wanted
    } else {
        layout.with_memory(plan.gen_memory, None, false)
    };
    let result = measure_all(args, &plan, &progs, &layout, &dir.0, hugepages.as_ref());
    // After EAL's cleanup (Link dropped in measure_all) and every DUT's exit.
    for d in layout.runtime_dirs() {
        let _ = std::fs::remove_dir_all(d);
    }
    drop(hugepages);
    if let Some(h) = &mut huge_setup {
        h.pool_after = Some(huge::PoolState::now());
    }
    let (runs, hz) = result?;
    let mut rep = IoReport::new(args.clone(), &layout, hz, runs);
    rep.gen_memory = plan.gen_memory;
    rep.hugepages = huge_setup;
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

/// Every repeat of every DUT on every memory kind; the runs and the TSC
/// frequency.
fn measure_all(
    args: &IoArgs,
    plan: &Plan,
    progs: &Programs,
    layout: &Layout,
    dir: &Path,
    hugepages: Option<&Hugepages>,
) -> Result<(Vec<RunResult>, u64), String> {
    let mut link = Link::open(layout)?;
    let gen_kib = huge::process_hugetlb_kib(std::process::id()).unwrap_or(0);
    if layout.gen_memory == MemoryKind::Huge && gen_kib == 0 {
        return Err("the generator's EAL was started on hugepages but maps none".into());
    }
    let mut runs = Vec::new();
    for rep in 0..args.repeat.max(1) {
        for (memory, kind) in plan.runs(rep) {
            let r = run_one(kind, memory, rep, args, progs, layout, dir, &mut link);
            // A DUT that stopped leaves its hugepage files (and their
            // pages) behind; the next DUT needs those pages.
            if let Some(h) = hugepages {
                let who = if kind.is_testpmd() { "testpmd" } else { "lbd" };
                h.remove_files(&layout.file_prefix(who));
            }
            let mut r = r?;
            r.hugepages.gen_kib = gen_kib;
            if !args.json {
                eprintln!("  {}", report::progress_line(&r, args.repeat.max(1)));
            }
            runs.push(r);
        }
    }
    Ok((runs, link.hz))
}

/// One DUT on one memory kind, start to stop.
#[allow(clippy::too_many_arguments)]
fn run_one(
    kind: DutKind,
    memory: MemoryKind,
    rep: usize,
    args: &IoArgs,
    progs: &Programs,
    layout: &Layout,
    dir: &Path,
    link: &mut Link,
) -> Result<RunResult, String> {
    let lbd = LbdSetup {
        reals: args.real_servers,
        scheduler: &args.scheduler,
        capacity: args.capacity(),
    };
    let mut dut = Dut::start(kind, memory, progs, layout, dir, lbd)?;
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
    let pid = dut.pid();
    let (dut_t0, gen_t0) = (cpu::Threads::of(pid), cpu::this_thread_ns());
    let mut at_end = (cpu::Threads::default(), gen_t0);
    let measured = g.measure(&mut mixes, &load, || {
        at_end = (cpu::Threads::of(pid), cpu::this_thread_ns());
    })?;
    let cpu_use = cpu::CpuUse::new(
        at_end.0.busiest_since(&dut_t0),
        at_end.1.saturating_sub(gen_t0),
        measured.seconds,
    );
    // While the DUT still runs: the hugepages it maps, and the pool.
    let use_ = HugeUse::of(dut.pid());
    use_.check(kind.name(), memory)
        .map_err(|e| format!("{e}\n{}", dut.tail(30)))?;
    let (arp_replies, other) = (g.arp_replies, g.other);
    drop(g);
    let dut_report = dut.stop(Duration::from_secs(30))?;
    // The next DUT's "link up" must be its own.
    link.wait_down(Duration::from_secs(5));
    Ok(
        RunResult::new(kind, rep, warm, measured, arp_replies, other, dut_report)
            .on(memory, use_)
            .with_cpu(cpu_use),
    )
}

/// `bench io ARGS` parsed as the command line parses it (for tests).
#[cfg(test)]
impl IoArgs {
    pub(crate) fn parse_for_test(args: &[&str]) -> Result<IoArgs, String> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            io: IoArgs,
        }
        let cli = Cli::try_parse_from(std::iter::once("io").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Ok(cli.io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        IoArgs::parse_for_test(args)?.check()
    }

    #[test]
    fn default_is_no_huge_everywhere() {
        let p = plan(&[]).unwrap();
        assert_eq!(p.memories, [MemoryKind::NoHuge]);
        assert_eq!(p.gen_memory, MemoryKind::NoHuge);
        assert!(!p.uses_hugepages());
    }

    #[test]
    fn both_memory_kinds_alternate_between_repeats() {
        let p = plan(&["--duts", "testpmd-io,lbd", "--memory", "huge,no-huge"]).unwrap();
        assert_eq!(p.gen_memory, MemoryKind::Huge);
        assert!(p.uses_hugepages());
        use DutKind::*;
        use MemoryKind::*;
        assert_eq!(
            p.runs(0),
            [
                (Huge, TestpmdIo),
                (Huge, Lbd),
                (NoHuge, TestpmdIo),
                (NoHuge, Lbd)
            ]
        );
        assert_eq!(
            p.runs(1),
            [
                (NoHuge, TestpmdIo),
                (NoHuge, Lbd),
                (Huge, TestpmdIo),
                (Huge, Lbd)
            ]
        );
        let p = plan(&["--memory", "huge", "--gen-memory", "no-huge"]).unwrap();
        assert_eq!(p.gen_memory, NoHuge);
        assert!(p.uses_hugepages());
    }

    #[test]
    fn bad_memory_options_are_refused() {
        assert!(plan(&["--memory", "huge,huge"]).is_err());
        assert!(plan(&["--memory", "1G"]).is_err());
        assert!(plan(&["--gen-memory", "x"]).is_err());
        assert!(plan(&["--zero-copy"]).is_err(), "zero-copy on --no-huge");
        assert!(plan(&["--zero-copy", "--memory", "huge,no-huge"]).is_err());
        assert!(plan(&["--zero-copy", "--memory", "huge"]).is_ok());
    }
}
