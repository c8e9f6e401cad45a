//! `lb-bench`: drive `lbcore::pipeline::Worker::process` on one core with
//! synthetic frames, without DPDK, and measure ns/packet and burst latency.
//!
//! Set-up (untimed): one port 10.0.0.2/16, one TCP service 10.0.0.100:80
//! under wlc with 100 real servers (10.0.1.1–10.0.1.100, weights 1, 2, 3
//! in turn), every neighbour resolved. Frames are built once into a *trace*
//! (one 64-byte-aligned buffer per packet, in the order they are sent), so
//! frame data streams through memory as NIC-written mbufs would while the
//! connection-table accesses land wherever the hash puts them.
//!
//! Timed: for each burst of `burst` frames, `process` on every frame, then
//! the busy-poll housekeeping the real worker does (`housekeeping(now, 4)`).
//! DR rewrites the MAC addresses, so a reused trace buffer gets its client
//! MACs back after its burst (outside the timed region) before it comes
//! round again.
//!
//! Every verdict is counted; a run in which any packet is not `Tx` fails.

pub mod clock;
pub mod frames;
// DPDK and the child processes are Linux-only (libc is a Linux dependency).
#[cfg(target_os = "linux")]
pub mod io;
pub mod scale;
pub mod stat;
pub mod thp;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbcore::config::Config;
use lbcore::conntrack::{ConnTable, Tick};
use lbcore::counters::{Counter, WorkerStats};
use lbcore::neigh::NeighTable;
use lbcore::pipeline::{
    Registry, SliceBuf, Snapshot, Verdict, Worker, MAX_REAL_SERVERS, MAX_SERVICES,
};
use lbcore::wire::MacAddr;
use serde::Serialize;

use frames::{build_tcp, client_of, FrameBuf, DIR_MAC, TCP_ACK, TCP_SYN};

/// Real servers behind the benchmark's service (default).
pub const REAL_SERVERS: usize = 100;
/// Housekeeping after every burst, as `lbd`'s worker does on a busy poll.
pub const SWEEP_BUCKETS_BUSY: usize = 4;
/// `now` (ms) advances by one every this many bursts (about 1 ms at 20 Mpps
/// with bursts of 32).
pub const BURSTS_PER_TICK: u64 = 600;

/// What traffic a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// ACKs on `flows` pre-created connections, in a random order.
    Established,
    /// SYNs, each creating a connection (`flows` of them).
    New,
    /// ACKs on `flows` pre-created connections plus a share of new SYNs.
    Mixed,
}

/// Parameters of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub workload: Workload,
    /// Established: live connections. New: SYNs (= packets). Mixed: live
    /// connections the ACKs go to.
    pub flows: u64,
    /// Packets to time (established and mixed; new sends `flows`).
    pub packets: u64,
    pub burst: usize,
    /// Stop timing after this long even if packets remain.
    pub seconds: Option<f64>,
    /// Mixed: percentage of packets that are new SYNs.
    pub syn_percent: u32,
    /// Real servers behind the service (1..=1000).
    pub real_servers: usize,
    /// Process frame by frame (`Worker::process`, the full classifier)
    /// instead of the burst pipeline lbd runs (`Worker::begin_burst` +
    /// `process_in_burst`, which prefetches the burst's buckets itself).
    pub one_frame: bool,
    /// With `one_frame`: prefetch every frame's table bucket at the start of
    /// its burst (`Worker::prefetch_frame`).
    pub prefetch: bool,
    /// Experiment: transparent huge pages for large allocations (see
    /// [`thp`]); takes effect only with the `bench` binary's allocator.
    pub hugepages: bool,
    pub seed: u64,
    /// This worker's share of the flows, as RSS splits them over queues:
    /// `(index, count)` takes flow numbers `index, index + count, …` of the
    /// single-worker sequence. `(0, 1)`: all of them.
    pub shard: (u32, u32),
}

impl Params {
    pub fn new(workload: Workload, flows: u64, packets: u64) -> Params {
        Params {
            workload,
            flows,
            packets,
            burst: 32,
            seconds: None,
            syn_percent: 10,
            real_servers: REAL_SERVERS,
            one_frame: false,
            prefetch: false,
            hugepages: false,
            seed: 0x1bd_5eed,
            shard: (0, 1),
        }
    }

    /// The flow number of this shard's `j`-th flow.
    #[inline]
    pub fn flow_no(&self, j: u64) -> u64 {
        j * self.shard.1 as u64 + self.shard.0 as u64
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: Workload,
    pub flows: u64,
    pub burst: usize,
    pub real_servers: usize,
    pub one_frame: bool,
    pub prefetch: bool,
    pub hugepages: bool,
    /// Packets processed in the timed part.
    pub packets: u64,
    /// `Verdict::Tx` among them (must equal `packets`).
    pub tx: u64,
    /// Connections created in the timed part.
    pub conns_created: u64,
    /// New flows refused because their probe window was full
    /// (`DropConnTableFull`); always 0 for established.
    pub refused: u64,
    /// Sum of timed bursts / packets.
    pub ns_per_packet: f64,
    pub mpps: f64,
    /// New connections per second (new: = Mpps × 1e6; mixed: SYNs only).
    pub new_conns_per_sec: f64,
    /// Wall time of the timed loop (including untimed MAC restores and
    /// clock reads) / packets.
    pub wall_ns_per_packet: f64,
    pub burst_p50_ns: f64,
    pub burst_p99_ns: f64,
    pub burst_p999_ns: f64,
    pub burst_max_ns: f64,
    pub bursts: u64,
    pub table_capacity: usize,
    pub table_len: usize,
    pub table_bytes: usize,
    /// `memory_bytes() / capacity`.
    pub bytes_per_conn: f64,
    pub tsc_ticks_per_ns: f64,
    pub setup_seconds: f64,
    /// Wall time of the timed loop.
    pub wall_seconds: f64,
    /// CPU the run ended on (`sched_getcpu`), if known.
    pub cpu: Option<usize>,
}

/// The benchmark's configuration: one port, one wlc service, `n` real
/// servers (weights 1, 2, 3 in turn).
pub fn config(n: usize) -> Config {
    let mut reals = String::new();
    for i in 0..n {
        reals.push_str(&format!(
            "(address: \"{}\", weight: {}),",
            real_server(i),
            i % 3 + 1
        ));
    }
    let text = format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "{}/16")],
            services: [(vip: "{}", port: {}, scheduler: Wlc, real_servers: [{reals}])],
        )"#,
        frames::DIR_IP,
        frames::VIP,
        frames::VPORT
    );
    ron::from_str(&text).expect("benchmark configuration parses")
}

/// A worker with a table for `capacity` connections, `reals` real servers
/// and every real server's MAC learned.
pub fn worker(capacity: usize, seed: u64, reals: usize) -> Worker {
    let cfg = config(reals);
    let neigh = Arc::new(NeighTable::new(MAX_REAL_SERVERS));
    let mut reg = Registry::default();
    let snap = Snapshot::build(&cfg, &[MacAddr(DIR_MAC)], &mut reg, &neigh, 1)
        .expect("benchmark snapshot builds");
    for e in neigh.entries() {
        let o = e.ip.octets();
        let mac = MacAddr([0x02, 0, 0x11, o[1], o[2], o[3]]);
        neigh.learn(e.slot, e.ip, mac, 0);
    }
    assert!(
        neigh.entries().iter().all(|e| e.mac.is_some()),
        "every neighbour resolved"
    );
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    Worker::new(Arc::new(snap), ConnTable::new(capacity, seed), stats, neigh)
}

/// xorshift64*: a small, fast, good-enough generator for shuffles.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0; Lemire's multiply, bias negligible here).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// A random permutation of `0..n` (Fisher–Yates).
pub fn permutation(n: usize, rng: &mut Rng) -> Vec<u32> {
    assert!(n <= u32::MAX as usize);
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

fn expect_tx(v: Verdict, what: &str) -> Result<(), String> {
    match v {
        Verdict::Tx(0) => Ok(()),
        v => Err(format!("{what}: expected Tx(0), got {v:?}")),
    }
}

/// Open `n` flows (SYN then ACK each) at time `now`, untimed, and return
/// their flow numbers. A SYN the table refuses (its probe window is full:
/// `DropConnTableFull`, which happens well before capacity, see
/// RESULTS.md) is skipped and the next flow number tried, so exactly `n`
/// connections are live afterwards.
pub fn precreate(w: &mut Worker, n: u64, now: Tick) -> Result<Vec<u32>, String> {
    precreate_mapped(w, n, now, |j| j)
}

/// [`precreate`] with flow numbers `flow_no(0), flow_no(1), …` (a shard's).
pub fn precreate_mapped(
    w: &mut Worker,
    n: u64,
    now: Tick,
    flow_no: impl Fn(u64) -> u64,
) -> Result<Vec<u32>, String> {
    let mut f = FrameBuf::ZERO;
    let mut live = Vec::with_capacity(n as usize);
    let mut i = 0u64;
    while (live.len() as u64) < n {
        if i >= n.saturating_mul(2) + 1000 {
            return Err(format!("could not open {n} flows in {i} attempts"));
        }
        let no = flow_no(i);
        if no > u32::MAX as u64 {
            return Err(format!("flow number {no} out of range"));
        }
        let (ip, port) = client_of(no);
        build_tcp(&mut f, ip, port, TCP_SYN);
        match w.process(f.frame_mut(), 0, now) {
            Verdict::Tx(0) => {
                build_tcp(&mut f, ip, port, TCP_ACK);
                expect_tx(w.process(f.frame_mut(), 0, now), "pre-create ACK")?;
                live.push(no as u32);
            }
            Verdict::Drop(Counter::DropConnTableFull) => {}
            v => return Err(format!("pre-create SYN: expected Tx(0), got {v:?}")),
        }
        i += 1;
    }
    if w.table().len() as u64 != n {
        return Err(format!(
            "pre-created {n} flows but the table holds {}",
            w.table().len()
        ));
    }
    Ok(live)
}

/// How a table of `capacity` fills: send SYNs for fresh flows until
/// `attempts` were sent; report the first refusal and how many were refused.
#[derive(Debug, Clone, Serialize)]
pub struct Fill {
    pub capacity: usize,
    /// Slots in the table (capacity plus headroom, rounded to a power of 2).
    pub slots: usize,
    pub attempts: u64,
    /// Connections in the table before the first refused SYN.
    pub first_refusal_at: Option<u64>,
    pub refused: u64,
    pub final_len: usize,
}

pub fn fill(capacity: usize, attempts: u64, seed: u64) -> Fill {
    let mut w = worker(capacity, seed, REAL_SERVERS);
    let slots = w.table().memory_bytes() / 32;
    let mut f = FrameBuf::ZERO;
    let (mut first, mut refused) = (None, 0);
    for i in 0..attempts {
        let (ip, port) = client_of(i);
        build_tcp(&mut f, ip, port, TCP_SYN);
        if w.process(f.frame_mut(), 0, 0) != Verdict::Tx(0) {
            first.get_or_insert(w.table().len() as u64);
            refused += 1;
        }
    }
    Fill {
        capacity,
        slots,
        attempts,
        first_refusal_at: first,
        refused,
        final_len: w.table().len(),
    }
}

/// Build the worker and the trace for `p`, run it, and report.
pub fn run(p: &Params) -> Result<Report, String> {
    prepare(p)?.time(None)
}

/// A worker and its trace, set up and ready to be timed.
pub struct Prepared {
    p: Params,
    w: Worker,
    trace: Vec<FrameBuf>,
    packets: u64,
    reusable: bool,
    setup: Instant,
    tpns: f64,
}

/// The untimed part of [`run`]: build the worker, open the flows, build the
/// trace. Allocates and first-touches everything on the calling thread (so
/// on the NUMA node of the CPU it is pinned to).
pub fn prepare(p: &Params) -> Result<Prepared, String> {
    if p.shard.1 == 0 || p.shard.0 >= p.shard.1 {
        return Err("shard index must be below the shard count".into());
    }
    if p.burst == 0 || p.burst > 1024 {
        return Err("burst must be 1..=1024".into());
    }
    if p.flows == 0 {
        return Err("flows must be > 0".into());
    }
    if !(1..=1000).contains(&p.real_servers) {
        return Err("real servers must be 1..=1000".into());
    }
    if p.workload == Workload::Established && p.flows < p.burst as u64 {
        return Err("established: flows must be at least the burst size".into());
    }
    if p.hugepages {
        thp::enable();
    }
    let setup = Instant::now();
    // Shard 0 keeps the single-worker shuffle; others get their own.
    let seed = p.seed ^ (p.shard.0 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng::new(seed);
    let (w, trace, packets, reusable) = match p.workload {
        Workload::Established => {
            let mut w = worker(p.flows as usize, p.seed, p.real_servers);
            let live = precreate_mapped(&mut w, p.flows, 0, |j| p.flow_no(j))?;
            let perm = permutation(p.flows as usize, &mut rng);
            let mut trace = frames::alloc(p.flows as usize);
            for (f, &j) in trace.iter_mut().zip(&perm) {
                let (ip, port) = client_of(live[j as usize] as u64);
                build_tcp(f, ip, port, TCP_ACK);
            }
            (w, trace, p.packets, true)
        }
        Workload::New => {
            let n = p.flows as usize;
            let w = worker(n, p.seed, p.real_servers);
            let mut trace = frames::alloc(n);
            for (i, f) in trace.iter_mut().enumerate() {
                let (ip, port) = client_of(p.flow_no(i as u64));
                build_tcp(f, ip, port, TCP_SYN);
            }
            (w, trace, p.flows, false)
        }
        Workload::Mixed => {
            if p.syn_percent > 100 {
                return Err("syn-percent must be 0..=100".into());
            }
            // Size the table for the live flows plus every SYN to come.
            let syns = (0..p.packets)
                .filter(|_| rng.below(100) < p.syn_percent as u64)
                .count() as u64;
            let mut w = worker((p.flows + syns) as usize, p.seed, p.real_servers);
            let live = precreate_mapped(&mut w, p.flows, 0, |j| p.flow_no(j))?;
            let mut rng = Rng::new(seed);
            let mut trace = frames::alloc(p.packets as usize);
            // Fresh flows start after every one pre-creation tried.
            let last = *live.last().expect("flows > 0") as u64;
            let mut fresh = (last - p.shard.0 as u64) / p.shard.1 as u64 + 1;
            for f in trace.iter_mut() {
                let (i, flags) = if rng.below(100) < p.syn_percent as u64 {
                    fresh += 1;
                    (p.flow_no(fresh - 1), TCP_SYN)
                } else {
                    (live[rng.below(p.flows) as usize] as u64, TCP_ACK)
                };
                let (ip, port) = client_of(i);
                build_tcp(f, ip, port, flags);
            }
            (w, trace, p.packets, false)
        }
    };
    Ok(Prepared {
        p: p.clone(),
        w,
        trace,
        packets,
        reusable,
        setup,
        tpns: clock::calibrate(Duration::from_millis(50)),
    })
}

impl Prepared {
    /// The timed part of [`run`]. With `stop`, the loop also ends soon
    /// after `stop` is set, and sets it itself when it ends (its trace or
    /// packets ran out, or its deadline passed), so that workers timed
    /// together share one wall-clock window.
    pub fn time(self, stop: Option<&AtomicBool>) -> Result<Report, String> {
        let Prepared {
            p,
            mut w,
            mut trace,
            packets,
            reusable,
            setup,
            tpns,
        } = self;
        let p = &p;
        let r = time_loop(
            p,
            &mut w,
            &mut trace,
            packets,
            reusable,
            (setup, tpns),
            stop,
        );
        if let Some(s) = stop {
            s.store(true, Ordering::Relaxed);
        }
        r
    }
}

fn time_loop(
    p: &Params,
    w: &mut Worker,
    trace: &mut [FrameBuf],
    packets: u64,
    reusable: bool,
    (setup, tpns): (Instant, f64),
    stop: Option<&AtomicBool>,
) -> Result<Report, String> {
    let created_before = w.stats().get(Counter::ConnCreated);
    let fwd_before = w.stats().get(Counter::FwdDr);
    let setup_seconds = setup.elapsed().as_secs_f64();

    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 40, 3)
        .map_err(|e| e.to_string())?;
    let deadline = p
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let trace_len = trace.len();
    let (mut done, mut tx, mut timed, mut bursts) = (0u64, 0u64, 0u64, 0u64);
    let mut refused = 0u64;
    let mut pos = 0usize;
    let wall = Instant::now();
    while done < packets {
        if pos == trace_len {
            if !reusable {
                break;
            }
            pos = 0;
        }
        // A reused trace wraps inside a burst, so every burst is full.
        let left = if reusable { trace_len } else { trace_len - pos };
        let n = (p.burst as u64).min(packets - done).min(left as u64) as usize;
        let end = pos + n;
        let (head, tail) = if end <= trace_len {
            (&mut trace[pos..end], &mut [][..])
        } else {
            let (a, b) = trace.split_at_mut(pos);
            (b, &mut a[..end - trace_len])
        };
        let now: Tick = 1 + (bursts / BURSTS_PER_TICK) as Tick;
        let t0 = clock::ticks();
        if p.one_frame {
            if p.prefetch {
                for f in head.iter().chain(tail.iter()) {
                    w.prefetch_frame(f.frame());
                }
            }
            for f in head.iter_mut().chain(tail.iter_mut()) {
                match black_box(w.process(black_box(f.frame_mut()), 0, now)) {
                    Verdict::Tx(0) => tx += 1,
                    Verdict::Drop(Counter::DropConnTableFull) => refused += 1,
                    _ => {}
                }
            }
        } else {
            // What lbd's worker does: both stages of the burst pipeline.
            w.begin_burst(head.iter().chain(tail.iter()).map(|f| f.frame()), 0);
            for (i, f) in head.iter_mut().chain(tail.iter_mut()).enumerate() {
                let mut buf = SliceBuf(black_box(f.frame_mut()));
                match black_box(w.process_in_burst(i, &mut buf, now)) {
                    Verdict::Tx(0) => tx += 1,
                    Verdict::Drop(Counter::DropConnTableFull) => refused += 1,
                    _ => {}
                }
            }
        }
        w.housekeeping(now, SWEEP_BUCKETS_BUSY);
        let dt = clock::ticks().wrapping_sub(t0);
        timed += dt;
        hist.saturating_record(dt.max(1));
        if reusable {
            for f in head.iter_mut().chain(tail.iter_mut()) {
                f.restore_macs();
            }
        }
        done += n as u64;
        pos = if end <= trace_len {
            end
        } else {
            end - trace_len
        };
        bursts += 1;
        if bursts % 256 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if bursts % 16 == 0 && stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
    }
    let wall = wall.elapsed();
    black_box(&mut *trace);

    let created = w.stats().get(Counter::ConnCreated) - created_before;
    let fwd = w.stats().get(Counter::FwdDr) - fwd_before;
    // Only a new flow the table has no room for may be refused; everything
    // else must be forwarded.
    let refusable = p.workload != Workload::Established;
    if tx + refused != done || fwd != tx || (!refusable && refused > 0) {
        return Err(format!(
            "{done} packets: {tx} Tx verdicts, {refused} refused for a full table, \
             {fwd} forwarded: the benchmark measured drops"
        ));
    }
    // A non-reused trace was processed once from its start.
    let syns_sent = if reusable {
        0
    } else {
        trace[..done as usize]
            .iter()
            .filter(|f| f.0[frames::TCP_FLAGS_AT] & TCP_SYN != 0)
            .count() as u64
    };
    if created + refused != syns_sent {
        return Err(format!(
            "{syns_sent} SYNs: {created} connections, {refused} refused"
        ));
    }
    if p.workload == Workload::Established && created != 0 {
        return Err(format!("established run created {created} connections"));
    }
    let ns = |t: u64| t as f64 / tpns;
    let ns_per_packet = ns(timed) / done.max(1) as f64;
    let t = w.table();
    Ok(Report {
        workload: p.workload,
        flows: p.flows,
        burst: p.burst,
        real_servers: p.real_servers,
        one_frame: p.one_frame,
        prefetch: p.prefetch,
        hugepages: p.hugepages,
        packets: done,
        tx,
        conns_created: created,
        refused,
        ns_per_packet,
        mpps: 1e3 / ns_per_packet,
        new_conns_per_sec: created as f64 / (ns(timed) * 1e-9),
        wall_ns_per_packet: wall.as_nanos() as f64 / done.max(1) as f64,
        burst_p50_ns: ns(hist.value_at_quantile(0.5)),
        burst_p99_ns: ns(hist.value_at_quantile(0.99)),
        burst_p999_ns: ns(hist.value_at_quantile(0.999)),
        burst_max_ns: ns(hist.max()),
        bursts,
        table_capacity: t.capacity(),
        table_len: t.len(),
        table_bytes: t.memory_bytes(),
        bytes_per_conn: t.memory_bytes() as f64 / t.capacity() as f64,
        tsc_ticks_per_ns: tpns,
        setup_seconds,
        wall_seconds: wall.as_secs_f64(),
        cpu: current_cpu(),
    })
}

/// Bytes of memory the run for `p` needs, roughly (trace + table), so `all`
/// can skip what does not fit.
pub fn memory_estimate(p: &Params) -> u64 {
    let frames = match p.workload {
        Workload::Established | Workload::New => p.flows,
        Workload::Mixed => p.packets,
    };
    let conns = match p.workload {
        Workload::Mixed => p.flows + p.packets * p.syn_percent as u64 / 100,
        _ => p.flows,
    };
    let slots = (conns + conns / 4).next_power_of_two();
    frames * 64 + slots * 32 + p.flows * 4
}

/// Available memory from /proc/meminfo, if readable.
pub fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The address of real server `i` (10.0.1.1 upwards, 250 per /24).
pub fn real_server(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

/// The CPU the calling thread runs on, if known.
pub fn current_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getcpu has no preconditions.
        let c = unsafe { libc::sched_getcpu() };
        usize::try_from(c).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}
