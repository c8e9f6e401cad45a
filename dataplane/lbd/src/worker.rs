//! The poll-mode worker: one per (port, RX queue), pinned to its own lcore.
//!
//! The loop: check for a new config snapshot (one relaxed load), read the
//! clock, pull a burst, run it through the sans-IO burst pipeline (classify
//! and prefetch the whole burst, then process each frame), send
//! what is to be sent in one TX burst per port, free the rest in bulk. Once
//! per loop (not per packet) it also looks at its hand-over mailbox (ICMP
//! errors other workers could not place), the VRRP standby flag, and, on a
//! port's queue-0 worker, the frames queued by the control thread and by
//! the host's kernel interface; each is one check when empty. When a poll
//! returns nothing, it does bounded housekeeping (table expiry), and after
//! a long run of empty polls it may sleep between polls
//! (`workers.idle_sleep_us`, see `idle.rs`). No
//! allocation, no lock, no syscall and no shared-counter atomics per
//! packet.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use dpdk::{sys, MbufBurst, RxQueue, TxQueue};
use lbcore::counters::{bump, Counter, WorkerStats};
use lbcore::pipeline::{TxChecksums, Verdict, Worker};

use crate::control::conns::DumpSlot;
use crate::dataplane::{Dataplane, Handoff};
use crate::idle::IdleBackoff;
use crate::kernel::path::KernelBudget;
use crate::latency::{LatencyCell, LatencyRecorder};

/// Buckets of the connection table swept per idle poll.
const SWEEP_BUCKETS_IDLE: usize = 64;
/// Buckets swept per busy poll (keeps expiry moving under full load).
const SWEEP_BUCKETS_BUSY: usize = 4;
/// Attempts to send the remainder of a TX burst before dropping it.
const TX_RETRIES: usize = 3;
/// Handed-over frames served per loop iteration (bounded like a burst).
const HANDOFFS_PER_POLL: usize = 32;

pub struct WorkerCtx {
    /// This worker's index (into `Shared::workers` and `Dataplane::handoff`).
    pub index: usize,
    pub port: u16,
    pub queue: u16,
    pub rx: RxQueue,
    /// A way to transmit on every port (index = port index).
    pub tx: Vec<TxPath>,
    pub worker: Worker,
    /// Where this worker publishes its burst latency histogram.
    pub latency: Arc<LatencyCell>,
    /// Connection listings asked by the control socket.
    pub dump: Arc<DumpSlot>,
    pub dataplane: Arc<Dataplane>,
    /// Packets pulled per poll (config `workers.burst`, at most 64).
    pub burst: usize,
    /// Whether to sleep between polls when idle (`workers.idle_sleep_us`).
    pub idle: IdleBackoff,
    /// Per port: this worker's allowance of frames to the port's kernel
    /// interface (None: the port has no kernel path).
    pub kernel_budget: Vec<Option<KernelBudget>>,
}

pub fn run(mut ctx: WorkerCtx) -> i32 {
    let n_ports = ctx.tx.len();
    let mut rx = MbufBurst::new();
    let mut tx: Vec<MbufBurst> = (0..n_ports).map(|_| MbufBurst::new()).collect();
    let mut drop = MbufBurst::new();
    // One verdict per frame of a burst (`MbufBurst` holds at most
    // `dpdk::BURST_SIZE`).
    let mut verdicts = [Verdict::Consumed; dpdk::BURST_SIZE];
    let mut generation = ctx.worker.snapshot().generation;
    let stats = ctx.worker.stats().clone();
    let drains_ctl = ctx.queue == 0;
    let mut latency = LatencyRecorder::new(dpdk::tsc::hz());
    let mut standby = ctx.dataplane.standby.load(Relaxed);
    ctx.worker.set_standby(standby);
    while !ctx.dataplane.stopping() {
        let g = ctx.dataplane.snapshots.generation();
        if g != generation {
            ctx.worker.set_snapshot(ctx.dataplane.current());
            generation = g;
        }
        // VRRP mastership, flipped by the speaker (one relaxed load of a
        // rarely written flag per loop).
        let sb = ctx.dataplane.standby.load(Relaxed);
        if sb != standby {
            ctx.worker.set_standby(sb);
            standby = sb;
        }
        let now = ctx.dataplane.clock.now();
        ctx.dump.serve(&ctx.worker, now);
        if !ctx.dataplane.handoff[ctx.index].is_empty() {
            serve_handoffs(&mut ctx, &mut tx, now);
        }
        if drains_ctl {
            send_kernel_frames(&mut ctx, &mut tx);
            // ARP requests and gratuitous ARPs from the control side, sent
            // even under full load (a failover's GARPs cannot wait).
            let p = ctx.port as usize;
            send_control_frames(&mut ctx, &mut tx[p]);
        }
        let n = ctx.rx.rx_burst_upto(&mut rx, ctx.burst);
        let nap = ctx.idle.after_poll(n);
        if n == 0 {
            bump(&stats.idle_polls, 1);
            latency.maybe_publish(dpdk::tsc::now(), &ctx.latency);
            ctx.worker.housekeeping(now, SWEEP_BUCKETS_IDLE);
            if let Some(d) = nap {
                // Idle for a while: give the core back (see idle.rs).
                bump(&stats.idle_sleeps, 1);
                std::thread::sleep(d);
            }
            continue;
        }
        bump(&stats.busy_polls, 1);
        let t0 = dpdk::tsc::now();
        // The pipeline sees the first segment only: a chained frame would
        // be parsed truncated (or its tail forwarded unseen). Pools hold the
        // port's largest frame in one mbuf, so only a PMD that chains anyway
        // (virtio's mergeable buffers) gives one; it is received and
        // dropped here, before the pipeline sees the burst.
        if rx.iter().any(|p| p.nb_segs() != 1) {
            drop_chained(&mut rx, &stats);
        }
        // Stage 1 of the burst pipeline: parse and classify every frame and
        // prefetch its connection bucket, so the burst's table misses
        // overlap (counts rx_frames for the whole burst).
        ctx.worker
            .begin_burst(rx.iter().map(dpdk::Packet::data), ctx.port);
        // Stage 2: every frame's lookup, state update and rewrite, the
        // burst's counters added once at its end.
        let n = rx.len();
        ctx.worker
            .process_planned(rx.iter_mut().map(MbufBuf), now, &mut verdicts[..n]);
        let worker = &mut ctx.worker;
        let port = ctx.port;
        let dataplane = &*ctx.dataplane;
        let next = (ctx.index + 1) % dataplane.handoff.len();
        let budgets = &mut ctx.kernel_budget;
        let mut verdict = verdicts[..n].iter();
        rx.drain(|mut m| {
            let Some(&v) = verdict.next() else {
                // Not reached: one verdict per frame of the burst.
                let _ = drop.push(m);
                return;
            };
            let out = match v {
                Verdict::Tx(p) if (p as usize) < n_ports => &mut tx[p as usize],
                // A VLAN interface: tagged, then sent on its port.
                Verdict::Tx(p) => match worker.vlan_egress(&mut MbufBuf(&mut m), p) {
                    Some(p) if (p as usize) < n_ports => &mut tx[p as usize],
                    _ => &mut drop,
                },
                Verdict::Handoff => {
                    pass_on(dataplane, next, m, port, 1, &stats);
                    return;
                }
                Verdict::Kernel => {
                    to_kernel(dataplane, budgets, port, m, now, &stats);
                    return;
                }
                Verdict::Local { port: p, peer } => {
                    to_local(dataplane, p, peer, m, &stats);
                    return;
                }
                _ => &mut drop,
            };
            // Both bursts are as large as the RX burst: a push cannot fail.
            let _ = out.push(m);
        });
        flush_tx(&mut ctx.tx, &mut tx, &stats);
        drop.free_all();
        let t1 = dpdk::tsc::now();
        latency.record(t1.wrapping_sub(t0));
        latency.maybe_publish(t1, &ctx.latency);
        ctx.worker.housekeeping(now, SWEEP_BUCKETS_BUSY);
    }
    0
}

/// Drop the frames of `rx` that came in several mbufs (counted received
/// and `drop_multi_segment`), keeping the others in order. Out of line:
/// the common burst has none.
#[cold]
#[inline(never)]
fn drop_chained(rx: &mut MbufBurst, stats: &WorkerStats) {
    let before = rx.len();
    rx.retain(|p| p.nb_segs() == 1);
    let chained = (before - rx.len()) as u64;
    stats.add(Counter::RxFrames, chained);
    stats.add(Counter::DropMultiSegment, chained);
}

/// Send every non-empty burst of `bursts` (index = port) on its port,
/// retrying a little; what the NIC still refuses is counted and freed.
fn flush_tx(paths: &mut [TxPath], bursts: &mut [MbufBurst], stats: &WorkerStats) {
    for (p, b) in bursts.iter_mut().enumerate() {
        if b.is_empty() {
            continue;
        }
        let mut tries = 0;
        while !b.is_empty() && tries < TX_RETRIES {
            paths[p].send(b);
            tries += 1;
        }
        if !b.is_empty() {
            stats.add(Counter::TxFailed, b.len() as u64);
            b.free_all();
        }
    }
}

/// Hand frame `m` (arrived on `port`, already looked up by `hops` workers)
/// to worker `to`'s mailbox; a full mailbox drops it (counted).
fn pass_on(
    dataplane: &Dataplane,
    to: usize,
    m: dpdk::Mbuf,
    port: u16,
    hops: u8,
    stats: &WorkerStats,
) {
    let h = Handoff {
        mbuf: m,
        port,
        hops,
    };
    match dataplane.handoff[to].push(h) {
        Ok(()) => stats.count(Counter::IcmpErrorHandedOff),
        // Dropping the hand-over frees its mbuf.
        Err(_) => stats.count(Counter::DropHandoffFull),
    }
}

/// Look up frames other workers handed over (ICMP errors about connections
/// they do not hold) in this worker's table: relay, pass on to the next
/// worker, or drop when every worker has missed.
fn serve_handoffs(ctx: &mut WorkerCtx, tx: &mut [MbufBurst], now: lbcore::conntrack::Tick) {
    let n_ports = tx.len();
    let next = (ctx.index + 1) % ctx.dataplane.handoff.len();
    let stats = ctx.worker.stats().clone();
    for _ in 0..HANDOFFS_PER_POLL {
        let Some(mut h) = ctx.dataplane.handoff[ctx.index].pop() else {
            break;
        };
        let v =
            ctx.worker
                .process_handed_off(&mut MbufBuf(&mut h.mbuf), h.port, h.hops as usize, now);
        match v {
            // At most HANDOFFS_PER_POLL (< burst capacity) frames per port.
            Verdict::Tx(p) if (p as usize) < n_ports => {
                let _ = tx[p as usize].push(h.mbuf);
            }
            Verdict::Tx(p) => {
                if let Some(p) = ctx.worker.vlan_egress(&mut MbufBuf(&mut h.mbuf), p) {
                    if let Some(out) = tx.get_mut(p as usize) {
                        let _ = out.push(h.mbuf);
                    }
                }
            }
            Verdict::Handoff => pass_on(
                &ctx.dataplane,
                next,
                h.mbuf,
                h.port,
                h.hops.saturating_add(1),
                &stats,
            ),
            // Dropped (and counted by the pipeline): the mbuf is freed here.
            _ => {}
        }
    }
    flush_tx(&mut ctx.tx, tx, &stats);
}

/// Queue frame `m` for the kernel interface of `port`, within this worker's
/// budget; otherwise drop it (counted).
fn to_kernel(
    dataplane: &Dataplane,
    budgets: &mut [Option<KernelBudget>],
    port: u16,
    m: dpdk::Mbuf,
    now: lbcore::conntrack::Tick,
    stats: &WorkerStats,
) {
    let (Some(Some(k)), Some(Some(budget))) = (
        dataplane.kernel.get(port as usize),
        budgets.get_mut(port as usize),
    ) else {
        // The pipeline only says Kernel for ports with a kernel path.
        stats.count(Counter::DropKernelQueueFull);
        return;
    };
    if !budget.take(now) {
        stats.count(Counter::DropKernelRate);
    } else if k.to_kernel.push(m).is_err() {
        stats.count(Counter::DropKernelQueueFull);
    } else {
        stats.count(Counter::ToKernel);
    }
}

/// Queue VIP traffic for this box's own stack (a local real server, or a
/// two-box peer's frame) on port `port`'s kernel interface: no budget (it
/// is scheduled traffic), only the queue's bound.
fn to_local(dataplane: &Dataplane, port: u16, peer: bool, m: dpdk::Mbuf, stats: &WorkerStats) {
    let Some(Some(k)) = dataplane.kernel.get(port as usize) else {
        stats.count(Counter::DropKernelQueueFull);
        return;
    };
    if k.to_kernel.push(m).is_err() {
        stats.count(Counter::DropKernelQueueFull);
    } else if peer {
        stats.count(Counter::LocalFromPeer);
    } else {
        stats.count(Counter::FwdLocal);
    }
}

/// Transmit what the kernel sent on this worker's port's kernel interface
/// (the queue-0 worker of each port does this, between bursts).
fn send_kernel_frames(ctx: &mut WorkerCtx, tx: &mut [MbufBurst]) {
    let p = ctx.port as usize;
    let Some(Some(k)) = ctx.dataplane.kernel.get(p) else {
        return;
    };
    if k.from_kernel.is_empty() {
        return;
    }
    let out = &mut tx[p];
    while out.remaining() > 0 {
        let Some(m) = k.from_kernel.pop() else { break };
        let _ = out.push(m);
    }
    let stats = ctx.worker.stats().clone();
    stats.add(Counter::FromKernel, out.len() as u64);
    flush_tx(&mut ctx.tx, tx, &stats);
}

/// Transmit frames the control thread queued for this port (ARP requests).
fn send_control_frames(ctx: &mut WorkerCtx, out: &mut MbufBurst) {
    let q = &ctx.dataplane.ctl_tx[ctx.port as usize];
    if q.is_empty() {
        return;
    }
    while out.len() < out.capacity() {
        let Some(f) = q.pop() else { break };
        let Some(mut m) = ctx.dataplane.pool.alloc() else {
            break;
        };
        match m.append(f.len) {
            Some(buf) => buf.copy_from_slice(&f.bytes[..f.len as usize]),
            None => continue,
        }
        let _ = out.push(m);
    }
    let mut tries = 0;
    while !out.is_empty() && tries < TX_RETRIES {
        ctx.tx[ctx.port as usize].send(out);
        tries += 1;
    }
    if !out.is_empty() {
        ctx.worker.stats().add(Counter::TxFailed, out.len() as u64);
        out.free_all();
    }
}

/// An mbuf as the pipeline's packet buffer (grows into its headroom).
struct MbufBuf<'a>(&'a mut dpdk::Packet);

impl lbcore::pipeline::PacketBuf for MbufBuf<'_> {
    #[inline]
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        u16::try_from(n).is_ok_and(|n| self.0.prepend(n).is_some())
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        u16::try_from(n).is_ok_and(|n| self.0.adj(n).is_some())
    }
    /// The NIC computes them: the frame prepared as DPDK requires, the
    /// mbuf's TX flags and header lengths set. The pipeline asks only for
    /// checksums the egress port negotiated (`Worker::set_tx_checksums`).
    #[inline]
    fn offload_checksums(&mut self, l2_len: usize, l3_len: usize, what: TxChecksums) {
        lbcore::pipeline::buf::prepare_for_nic(self.0.data_mut(), l2_len, l3_len, what);
        let mut flags = 0;
        if what.contains(TxChecksums::IPV4) {
            flags |= sys::RTE_MBUF_F_TX_IPV4 | sys::RTE_MBUF_F_TX_IP_CKSUM;
        }
        if what.contains(TxChecksums::TCP) {
            flags |= sys::RTE_MBUF_F_TX_IPV4 | sys::RTE_MBUF_F_TX_TCP_CKSUM;
        } else if what.contains(TxChecksums::UDP) {
            flags |= sys::RTE_MBUF_F_TX_IPV4 | sys::RTE_MBUF_F_TX_UDP_CKSUM;
        }
        // Header lengths of Ethernet and IPv4 fit 7 and 9 bits.
        self.0
            .request_tx_checksums(l2_len as u8, l3_len as u16, flags);
    }
    #[inline]
    fn truncate(&mut self, len: usize) -> bool {
        let cur = self.0.data().len();
        // `data()` is the first segment and `trim` works on the last one:
        // they agree only for single-segment frames (all we receive).
        if len > cur || self.0.nb_segs() != 1 {
            return false;
        }
        u16::try_from(cur - len).is_ok_and(|n| n == 0 || self.0.trim(n).is_some())
    }
}

/// How a worker transmits on one port.
pub enum TxPath {
    /// Its own TX queue: no lock (the normal case on real NICs).
    Own(TxQueue),
    /// A queue shared with other workers, because the device has fewer TX
    /// queues than there are workers (net_af_packet has one): locked once
    /// per burst.
    Shared(Arc<std::sync::Mutex<TxQueue>>),
}

impl TxPath {
    /// Transmit from the front of `burst`; unsent packets stay in it.
    #[inline]
    pub fn send(&mut self, burst: &mut MbufBurst) -> usize {
        match self {
            TxPath::Own(q) => q.tx_burst(burst),
            TxPath::Shared(q) => q.lock().unwrap_or_else(|e| e.into_inner()).tx_burst(burst),
        }
    }
}
