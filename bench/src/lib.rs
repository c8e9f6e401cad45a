//! `lb-bench`: drive `lbcore::pipeline::Worker` on one core with
//! synthetic frames, without DPDK, and measure ns/packet and burst latency.
//!
//! Set-up (untimed): one port 10.0.0.2/16, one TCP service 10.0.0.100:80
//! under wlc with 100 real servers (10.0.1.1–10.0.1.100, weights 1, 2, 3
//! in turn), every neighbour resolved; DR by default, or tunnel or NAT
//! (see [`forward`]). Frames are built once into a *trace* (one
//! 64-byte-aligned buffer per packet, in the order they are sent), so frame
//! data streams through memory as NIC-written mbufs would while the
//! connection-table accesses land wherever the hash puts them.
//!
//! Timed: for each burst of `burst` frames, the burst pipeline on every
//! frame, then the busy-poll housekeeping the real worker does
//! (`housekeeping(now, 4)`). The worker rewrites the frames, so a reused
//! trace buffer gets back what was rewritten after its burst (outside the
//! timed region, see [`trace`]) before it comes round again.
//!
//! Every verdict is counted; a run in which any packet is not forwarded
//! out of the port its method sends by fails.

pub mod clock;
pub mod forward;
pub mod frames;
pub mod headroom;
// DPDK and the child processes are Linux-only (libc is a Linux dependency).
#[cfg(target_os = "linux")]
pub mod io;
pub mod scale;
pub mod stat;
pub mod thp;
pub mod trace;
pub mod v6;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbcore::config::Config;
use lbcore::conntrack::shared::SharedConnTable;
use lbcore::conntrack::Tick;
use lbcore::counters::{Counter, WorkerStats};
use lbcore::pipeline::{PacketBuf, Verdict, Worker};
use serde::Serialize;

pub use forward::Forward;
use frames::{build_segment, build_tcp, client_of, FrameBuf, Segment, IP_DST_AT, TCP_ACK, TCP_SYN};
use headroom::HeadroomBuf;
use trace::{Trace, TraceFrame};

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
    /// How the real servers are reached (and, for NAT, which direction is
    /// timed).
    pub forward: Forward,
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
    /// IPv6 clients, VIP and real servers (DR; see [`v6`]).
    pub ipv6: bool,
}

impl Params {
    pub fn new(workload: Workload, flows: u64, packets: u64) -> Params {
        Params {
            workload,
            forward: Forward::Dr,
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
            ipv6: false,
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
    /// An IPv6 run (`--ipv6`).
    pub ipv6: bool,
    pub forward: Forward,
    pub flows: u64,
    pub burst: usize,
    pub real_servers: usize,
    pub one_frame: bool,
    pub prefetch: bool,
    pub hugepages: bool,
    /// Packets processed in the timed part.
    pub packets: u64,
    /// `Verdict::Tx` out of the method's port among them (must equal
    /// `packets`, but for refused new flows).
    pub tx: u64,
    /// Connections created in the timed part.
    pub conns_created: u64,
    /// Every worker counter the timed part changed, by name, and by how
    /// much (e.g. `forwarded_nat`, `rx_frames`).
    pub counters: BTreeMap<&'static str, u64>,
    /// Packets the timed part counted towards the real servers (ipvsadm's
    /// "in": DR, tunnel, NAT requests) and from them ("out": NAT replies),
    /// summed over the real servers.
    pub rs_packets_in: u64,
    pub rs_packets_out: u64,
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
    /// The connection table's capacity, live entries and bytes: the
    /// worker's own, or for NAT the shared table's (two entries per
    /// connection: request and reply).
    pub table_capacity: usize,
    pub table_len: usize,
    pub table_bytes: usize,
    /// `memory_bytes()` per connection the table can hold.
    pub bytes_per_conn: f64,
    pub tsc_ticks_per_ns: f64,
    pub setup_seconds: f64,
    /// Wall time of the timed loop.
    pub wall_seconds: f64,
    /// CPU the run ended on (`sched_getcpu`), if known.
    pub cpu: Option<usize>,
}

/// The benchmark's DR configuration: one port, one wlc service, `n` real
/// servers (weights 1, 2, 3 in turn).
pub fn config(n: usize) -> Config {
    forward::config(Forward::Dr, n)
}

/// A DR worker with a table for `capacity` connections, `reals` real
/// servers and every real server's MAC learned.
pub fn worker(capacity: usize, seed: u64, reals: usize) -> Worker {
    forward::director(Forward::Dr, capacity, seed, reals).worker
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

fn expect_tx(v: Verdict, port: u16, what: &str) -> Result<(), String> {
    match v {
        Verdict::Tx(p) if p == port => Ok(()),
        v => Err(format!("{what}: expected Tx({port}), got {v:?}")),
    }
}

/// The connections a run opened before timing.
#[derive(Debug, Default)]
pub struct Live {
    /// Flow numbers (see [`client_of`]).
    pub flows: Vec<u32>,
    /// NAT: each flow's real server address (its replies' source); else
    /// empty.
    pub rs: Vec<u32>,
}

/// Open `n` DR flows (SYN then ACK each) at time `now`, untimed, and return
/// their flow numbers. A SYN the table refuses (its probe window is full:
/// `DropConnTableFull`, which happens well before capacity, see
/// RESULTS.md) is skipped and the next flow number tried, so exactly `n`
/// connections are live afterwards.
pub fn precreate(w: &mut Worker, n: u64, now: Tick) -> Result<Vec<u32>, String> {
    precreate_mapped(w, Forward::Dr, None, n, now, |j| j).map(|l| l.flows)
}

/// [`precreate`] for method `f` (NAT: the worker's shared table `nat`)
/// with flow numbers `flow_no(0), flow_no(1), …` (a shard's). A NAT
/// connection is opened as TCP opens it — the client's SYN, the real
/// server's SYN-ACK, the client's ACK — so it is established in both
/// directions.
pub fn precreate_mapped(
    w: &mut Worker,
    f: Forward,
    nat: Option<&SharedConnTable>,
    n: u64,
    now: Tick,
    flow_no: impl Fn(u64) -> u64,
) -> Result<Live, String> {
    let (rx, tx) = f.request_ports();
    let mut frame = FrameBuf::ZERO;
    // A buffer with headroom: a tunnelled SYN grows.
    let mut buf = HeadroomBuf::ZERO;
    let mut send = |w: &mut Worker, s: &Segment, port: u16| {
        build_segment(&mut frame, s);
        buf.load(&frame);
        (w.process_buf(&mut buf, port, now), buf)
    };
    let mut live = Live::default();
    let mut i = 0u64;
    while (live.flows.len() as u64) < n {
        if i >= n.saturating_mul(2) + 1000 {
            return Err(format!("could not open {n} flows in {i} attempts"));
        }
        let no = flow_no(i);
        if no > u32::MAX as u64 {
            return Err(format!("flow number {no} out of range"));
        }
        i += 1;
        let (ip, port) = client_of(no);
        let (v, sent) = send(w, &Segment::to_vip(ip, port, TCP_SYN), rx);
        match v {
            Verdict::Tx(p) if p == tx => {}
            Verdict::Drop(Counter::DropConnTableFull) => continue,
            v => return Err(format!("pre-create SYN: expected Tx({tx}), got {v:?}")),
        }
        if f.is_nat() {
            // The SYN went to the real server the connection has.
            let d = &sent.data()[IP_DST_AT..IP_DST_AT + 4];
            let rs = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            let syn_ack = forward::reply_segment(rs, ip, port, TCP_SYN | TCP_ACK);
            let (v, _) = send(w, &syn_ack, tx);
            expect_tx(v, rx, "pre-create SYN-ACK")?;
            live.rs.push(rs);
        }
        let (v, _) = send(w, &Segment::to_vip(ip, port, TCP_ACK), rx);
        expect_tx(v, tx, "pre-create ACK")?;
        live.flows.push(no as u32);
    }
    let (held, want) = match nat {
        Some(t) => (t.len() as u64, 2 * n),
        None => (w.table().len() as u64, n),
    };
    if held != want {
        return Err(format!(
            "pre-created {n} flows but the table holds {held} entries, not {want}"
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

/// The trace of a run, by the buffer its method needs.
enum Frames {
    /// One cache line per frame, rewritten in place (DR, NAT).
    Plain(Trace<FrameBuf>),
    /// Two cache lines per frame, with headroom to grow (tunnel).
    Headroom(Trace<HeadroomBuf>),
    /// IPv6 frames, two cache lines each (`--ipv6`).
    V6(Trace<v6::Frame6>),
}

/// A worker and its trace, set up and ready to be timed.
pub struct Prepared {
    p: Params,
    w: Worker,
    nat: Option<Arc<SharedConnTable>>,
    trace: Frames,
    packets: u64,
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
    if p.forward == Forward::NatReply && p.workload != Workload::Established {
        return Err(
            "nat-reply times replies on open connections: use --workload established".into(),
        );
    }
    if p.hugepages {
        thp::enable();
    }
    let setup = Instant::now();
    // Shard 0 keeps the single-worker shuffle; others get their own.
    let seed = p.seed ^ (p.shard.0 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng::new(seed);
    if p.ipv6 {
        return v6::prepare(p, setup, &mut rng);
    }
    let f = p.forward;
    let director = |capacity: u64| forward::director(f, capacity as usize, p.seed, p.real_servers);
    let precreate = |w: &mut Worker, nat: &Option<Arc<SharedConnTable>>| {
        precreate_mapped(w, f, nat.as_deref(), p.flows, 0, |j| p.flow_no(j))
    };
    let (d, frames, packets, replayed) = match p.workload {
        Workload::Established => {
            let mut d = director(p.flows);
            let live = precreate(&mut d.worker, &d.nat)?;
            let perm = permutation(p.flows as usize, &mut rng);
            let mut trace = frames::alloc(p.flows as usize);
            for (fb, &j) in trace.iter_mut().zip(&perm) {
                let (ip, port) = client_of(live.flows[j as usize] as u64);
                let s = if f == Forward::NatReply {
                    forward::reply_segment(live.rs[j as usize], ip, port, TCP_ACK)
                } else {
                    Segment::to_vip(ip, port, TCP_ACK)
                };
                build_segment(fb, &s);
            }
            (d, trace, p.packets, true)
        }
        Workload::New => {
            let n = p.flows as usize;
            let d = director(p.flows);
            let mut trace = frames::alloc(n);
            for (i, fb) in trace.iter_mut().enumerate() {
                let (ip, port) = client_of(p.flow_no(i as u64));
                build_segment(fb, &Segment::to_vip(ip, port, TCP_SYN));
            }
            (d, trace, p.flows, false)
        }
        Workload::Mixed => {
            if p.syn_percent > 100 {
                return Err("syn-percent must be 0..=100".into());
            }
            // Size the table for the live flows plus every SYN to come.
            let syns = (0..p.packets)
                .filter(|_| rng.below(100) < p.syn_percent as u64)
                .count() as u64;
            let mut d = director(p.flows + syns);
            let live = precreate(&mut d.worker, &d.nat)?;
            let mut rng = Rng::new(seed);
            let mut trace = frames::alloc(p.packets as usize);
            // Fresh flows start after every one pre-creation tried.
            let last = *live.flows.last().expect("flows > 0") as u64;
            let mut fresh = (last - p.shard.0 as u64) / p.shard.1 as u64 + 1;
            for fb in trace.iter_mut() {
                let (i, flags) = if rng.below(100) < p.syn_percent as u64 {
                    fresh += 1;
                    (p.flow_no(fresh - 1), TCP_SYN)
                } else {
                    (live.flows[rng.below(p.flows) as usize] as u64, TCP_ACK)
                };
                let (ip, port) = client_of(i);
                build_segment(fb, &Segment::to_vip(ip, port, flags));
            }
            (d, trace, p.packets, false)
        }
    };
    let trace = match (f, replayed) {
        (Forward::Tunnel, _) => {
            let bufs = frames.iter().map(HeadroomBuf::from_frame).collect();
            drop(frames);
            Frames::Headroom(if replayed {
                Trace::replayed(bufs, trace::restore_encap)
            } else {
                Trace::once(bufs)
            })
        }
        (_, false) => Frames::Plain(Trace::once(frames)),
        (Forward::Dr, true) => Frames::Plain(Trace::replayed(frames, trace::restore_macs)),
        (Forward::Nat | Forward::NatReply, true) => Frames::Plain(Trace::replayed_by_copy(frames)),
    };
    Ok(Prepared {
        p: p.clone(),
        w: d.worker,
        nat: d.nat,
        trace,
        packets,
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
            nat,
            mut trace,
            packets,
            setup,
            tpns,
        } = self;
        let cx = Context {
            p: &p,
            nat: nat.as_deref(),
            packets,
            setup,
            tpns,
            stop,
        };
        let r = match &mut trace {
            Frames::Plain(t) => time_loop(&cx, &mut w, t),
            Frames::Headroom(t) => time_loop(&cx, &mut w, t),
            Frames::V6(t) => time_loop(&cx, &mut w, t),
        };
        if let Some(s) = stop {
            s.store(true, Ordering::Relaxed);
        }
        r
    }
}

/// What the timed loop needs besides the worker and the trace.
struct Context<'a> {
    p: &'a Params,
    nat: Option<&'a SharedConnTable>,
    packets: u64,
    setup: Instant,
    tpns: f64,
    stop: Option<&'a AtomicBool>,
}

/// How many of a burst's verdicts send to `tx_port`, and how many refused
/// a new flow for a full table (out of line: its two counts stay in
/// registers instead of the timed loop's stack frame).
#[inline(never)]
fn check_verdicts(out: &[Verdict], tx_port: u16) -> (u64, u64) {
    let (mut tx, mut refused) = (0u64, 0u64);
    for v in out {
        match *v {
            Verdict::Tx(port) if port == tx_port => tx += 1,
            Verdict::Drop(Counter::DropConnTableFull) => refused += 1,
            _ => {}
        }
    }
    (tx, refused)
}

fn time_loop<T: TraceFrame>(
    cx: &Context,
    w: &mut Worker,
    trace: &mut Trace<T>,
) -> Result<Report, String> {
    let (p, packets, tpns, stop) = (cx.p, cx.packets, cx.tpns, cx.stop);
    let (rx_port, tx_port) = p.forward.timed_ports();
    let fwd_counter = p.forward.counter();
    let before = Tally::of(w.stats());
    let setup_seconds = cx.setup.elapsed().as_secs_f64();

    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 40, 3)
        .map_err(|e| e.to_string())?;
    let deadline = p
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let reusable = trace.is_replayed();
    let Trace {
        frames: trace,
        pristine,
        restore,
    } = trace;
    let trace_len = trace.len();
    let (mut done, mut tx, mut timed, mut bursts) = (0u64, 0u64, 0u64, 0u64);
    let mut refused = 0u64;
    let mut pos = 0usize;
    let mut verdicts = vec![Verdict::Consumed; p.burst];
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
                let mut buf = black_box(f.buf());
                match black_box(w.process_buf(&mut buf, rx_port, now)) {
                    Verdict::Tx(port) if port == tx_port => tx += 1,
                    Verdict::Drop(Counter::DropConnTableFull) => refused += 1,
                    _ => {}
                }
            }
        } else {
            // What lbd's worker does: both stages of the burst pipeline.
            let out = &mut verdicts[..n];
            if tail.is_empty() {
                // The common burst, not wrapping the trace: one slice (as
                // lbd's burst is), without the chained iterator's tests.
                w.begin_burst(head.iter().map(|f| f.frame()), rx_port);
                w.process_planned(head.iter_mut().map(|f| f.buf()), now, out);
            } else {
                w.begin_burst(head.iter().chain(tail.iter()).map(|f| f.frame()), rx_port);
                let bufs = head.iter_mut().chain(tail.iter_mut()).map(|f| f.buf());
                w.process_planned(bufs, now, out);
            }
            // Every verdict checked, as the one-frame loop does.
            let (t, r) = check_verdicts(black_box(&*out), tx_port);
            tx += t;
            refused += r;
        }
        w.housekeeping(now, SWEEP_BUCKETS_BUSY);
        let dt = clock::ticks().wrapping_sub(t0);
        timed += dt;
        hist.saturating_record(dt.max(1));
        if let Some(restore) = restore {
            let copies = |r: std::ops::Range<usize>| pristine.get(r).unwrap_or(&[]);
            if end <= trace_len {
                restore(head, copies(pos..end));
            } else {
                restore(head, copies(pos..trace_len));
                restore(tail, copies(0..end - trace_len));
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

    let change = Tally::of(w.stats()).since(&before);
    let created = change.get(Counter::ConnCreated);
    let fwd = change.get(fwd_counter);
    // Only a new flow the table has no room for may be refused; everything
    // else must be forwarded, by the method measured.
    let refusable = p.workload != Workload::Established;
    if tx + refused != done || fwd != tx || (!refusable && refused > 0) {
        return Err(format!(
            "{done} packets: {tx} Tx({tx_port}) verdicts, {refused} refused for a full table, \
             {fwd} counted {}: the benchmark measured drops",
            fwd_counter.name()
        ));
    }
    // A non-reused trace was processed once from its start.
    let syns_sent = if reusable {
        0
    } else {
        trace[..done as usize]
            .iter()
            .filter(|f| f.sent_flags() & TCP_SYN != 0)
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
    let (table_capacity, table_len, table_bytes, conns) = match cx.nat {
        Some(t) => (t.capacity(), t.len(), t.memory_bytes(), t.capacity() / 2),
        None => match w.table6().filter(|_| p.ipv6) {
            Some(t) => (t.capacity(), t.len(), t.memory_bytes(), t.capacity()),
            None => {
                let t = w.table();
                (t.capacity(), t.len(), t.memory_bytes(), t.capacity())
            }
        },
    };
    Ok(Report {
        workload: p.workload,
        ipv6: p.ipv6,
        forward: p.forward,
        flows: p.flows,
        burst: p.burst,
        real_servers: p.real_servers,
        one_frame: p.one_frame,
        prefetch: p.prefetch,
        hugepages: p.hugepages,
        packets: done,
        tx,
        conns_created: created,
        counters: change.named(),
        rs_packets_in: change.rs_in,
        rs_packets_out: change.rs_out,
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
        table_capacity,
        table_len,
        table_bytes,
        bytes_per_conn: table_bytes as f64 / conns.max(1) as f64,
        tsc_ticks_per_ns: tpns,
        setup_seconds,
        wall_seconds: wall.as_secs_f64(),
        cpu: current_cpu(),
    })
}

/// A worker's counters at one moment (or their change over a run).
struct Tally {
    counters: Vec<u64>,
    rs_in: u64,
    rs_out: u64,
}

impl Tally {
    fn of(s: &WorkerStats) -> Tally {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Tally {
            counters: Counter::ALL.iter().map(|&c| s.get(c)).collect(),
            rs_in: s.rs.iter().map(|r| load(&r.packets)).sum(),
            rs_out: s.rs.iter().map(|r| load(&r.packets_out)).sum(),
        }
    }

    fn since(&self, before: &Tally) -> Tally {
        Tally {
            counters: self
                .counters
                .iter()
                .zip(&before.counters)
                .map(|(a, b)| a.wrapping_sub(*b))
                .collect(),
            rs_in: self.rs_in.wrapping_sub(before.rs_in),
            rs_out: self.rs_out.wrapping_sub(before.rs_out),
        }
    }

    fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize]
    }

    fn named(&self) -> BTreeMap<&'static str, u64> {
        Counter::ALL
            .iter()
            .zip(&self.counters)
            .filter(|(_, &n)| n != 0)
            .map(|(c, &n)| (c.name(), n))
            .collect()
    }
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
    // Tunnel frames take two cache lines; a replayed NAT trace keeps a
    // pristine copy; a NAT connection takes two table entries.
    let frame_bytes = match (p.forward, p.workload) {
        (Forward::Tunnel, _) => 128,
        (Forward::Nat | Forward::NatReply, Workload::Established) => 128,
        _ => 64,
    };
    let entries = if p.forward.is_nat() { 2 * conns } else { conns };
    let slots = (entries + entries / 4).next_power_of_two();
    frames * frame_bytes + slots * 32 + p.flows * 8
}

/// Available memory from /proc/meminfo, if readable.
pub fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The address of DR real server `i` (10.0.1.1 upwards, 250 per /24).
pub fn real_server(i: usize) -> Ipv4Addr {
    Forward::Dr.real_server(i)
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
