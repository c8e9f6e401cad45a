//! The traffic generator's loops, on the generator's one lcore: build and
//! send stamped frames, receive what comes back, answer the DUT's ARP.
//!
//! One thread does both directions, so its CPU is the generator's whole
//! budget; every loop is bounded in time (and the measurement also in
//! packets). Sending: a TX burst is topped up to `burst` with fresh frames
//! (stamped when built) and offered to the port; what the port refuses
//! (memif ring full: the DUT is behind) stays for the next round, and the
//! time until that next round is counted as *ring full*. Receiving: up to 64 frames per poll,
//! stamped once per poll with the TSC; each of ours gives one round-trip
//! time into an HDR histogram.
//!
//! With several queues each TX queue has its own pending burst and its own
//! share of the flows (flow `f` on queue `f % N`, see `traffic`); the rounds
//! go to the queues in turn (round robin per burst), and every RX poll reads
//! all RX queues. Measurement frames are counted per queue both ways.

use std::time::{Duration, Instant};

use dpdk::{MbufBurst, BURST_SIZE};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::frame::{self, addr, Returned, Template, TAG_MEASURE, TAG_WARMUP, TCP_SYN};
use super::link::Link;
use super::traffic::{Mix, Warmup};

/// How long the generator keeps receiving after it stopped sending, at most,
/// and how long a quiet link must stay quiet to end that early.
const DRAIN_MAX: Duration = Duration::from_millis(1000);
const DRAIN_QUIET: Duration = Duration::from_millis(50);

/// What one measurement counted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measured {
    /// Packets the port accepted during the window.
    pub sent: u64,
    /// Stamped measurement frames back during the window.
    pub received: u64,
    /// ... and after it, while draining.
    pub late: u64,
    /// `sent - received - late` (never negative).
    pub lost: u64,
    /// SYNs of new flows sent, and SYNs back.
    pub new_flows_sent: u64,
    pub syn_received: u64,
    /// Length of the window (first send to last send), seconds.
    pub seconds: f64,
    /// TX rounds, and those in which the port refused part of the burst.
    pub tx_rounds: u64,
    pub tx_ring_full_rounds: u64,
    /// Per queue: packets accepted in the window, and measurement frames
    /// received on it (window and drain).
    pub sent_by_queue: Vec<u64>,
    pub received_by_queue: Vec<u64>,
    /// Time from a round that found the ring full to the next round, summed,
    /// in seconds: how long the generator waited for the DUT. (Counting
    /// rounds instead would overweight stalls, when the generator spins
    /// through many short rounds against a DUT that is not running.)
    pub ring_full_seconds: f64,
    /// Rounds in which the pool had no mbufs for the top-up.
    pub alloc_failures: u64,
    /// Round-trip time of the frames received in the window, ns.
    pub rtt_p50_ns: f64,
    pub rtt_p99_ns: f64,
    pub rtt_p999_ns: f64,
    pub rtt_max_ns: f64,
}

/// What the warm-up counted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Warmed {
    pub sent: u64,
    pub received: u64,
    /// Flows whose SYN came back: these get the ACKs.
    pub live_flows: u64,
    pub seconds: f64,
}

/// How to send during the measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub burst: usize,
    /// Offered rate in Mpps; `None`: as fast as the port accepts.
    pub rate_mpps: Option<f64>,
    pub seconds: f64,
    pub max_packets: u64,
}

/// The generator: the link plus what it needs per packet.
pub struct Gen<'a> {
    link: &'a mut Link,
    tpl: Template,
    reals: usize,
    ns_per_tick: f64,
    /// ARP replies waiting to be sent.
    arp_out: MbufBurst,
    pub arp_replies: u64,
    /// Frames that were neither ours nor ARP requests we answer.
    pub other: u64,
    /// Measurement frames received per RX queue.
    rx_measure_by_queue: Vec<u64>,
}

/// Current TSC.
#[inline(always)]
fn tsc() -> u64 {
    dpdk::tsc::now()
}

impl<'a> Gen<'a> {
    pub fn new(link: &'a mut Link, size: usize, reals: usize) -> Result<Gen<'a>, String> {
        if link.hz == 0 {
            return Err("TSC frequency unknown".into());
        }
        let queues = link.rx.len();
        Ok(Gen {
            rx_measure_by_queue: vec![0; queues],
            tpl: Template::new(size, addr::GEN_MAC, addr::DUT_MAC)?,
            ns_per_tick: 1e9 / link.hz as f64,
            link,
            reals,
            arp_out: MbufBurst::new(),
            arp_replies: 0,
            other: 0,
        })
    }

    /// Poll every RX queue once: answer ARP requests for the real servers
    /// (and count anything foreign); hand each stamped frame with the poll's
    /// TSC to `on`. Returns the number of frames received.
    #[inline]
    fn rx_once(
        &mut self,
        rxb: &mut MbufBurst,
        mut on: impl FnMut(u16, u64, u64, bool, u64),
    ) -> usize {
        let mut total = 0;
        for q in 0..self.link.rx.len() {
            total += self.rx_queue(q, rxb, &mut on);
        }
        total
    }

    /// `rx_once` for RX queue `q`.
    #[inline]
    fn rx_queue(
        &mut self,
        q: usize,
        rxb: &mut MbufBurst,
        on: &mut impl FnMut(u16, u64, u64, bool, u64),
    ) -> usize {
        let n = self.link.rx[q].rx_burst(rxb);
        if n == 0 {
            return 0;
        }
        let now = tsc();
        for p in rxb.iter() {
            match frame::parse(p.data()) {
                Returned::Stamped {
                    tag,
                    tsc,
                    flow,
                    syn,
                } => {
                    if tag == TAG_MEASURE {
                        self.rx_measure_by_queue[q] += 1;
                    }
                    on(tag, tsc, flow, syn, now)
                }
                Returned::ArpRequest { sha, spa, tpa } => {
                    match addr::real_server_index(tpa, self.reals) {
                        Some(i) if !self.arp_out.is_full() => {
                            let r = frame::arp_reply(addr::real_server_mac(i), tpa, sha, spa);
                            if let Some(mut m) = self.link.pool.alloc() {
                                if m.append(r.len() as u16).is_some() {
                                    m.data_mut().copy_from_slice(&r);
                                    let _ = self.arp_out.push(m);
                                }
                            }
                        }
                        _ => self.other += 1,
                    }
                }
                Returned::Other => self.other += 1,
            }
        }
        rxb.free_all();
        if !self.arp_out.is_empty() {
            // Answered on the queue the request came in on.
            let (sent, _) = self.link.tx[q].tx_burst_or_free(&mut self.arp_out);
            self.arp_replies += sent as u64;
        }
        n
    }

    /// Keep receiving (answering ARP, discarding the rest) until `ready`
    /// says so, checked every 10 ms, for at most `timeout`.
    pub fn idle_until(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut(&Link) -> Result<bool, String>,
    ) -> Result<(), String> {
        let end = Instant::now() + timeout;
        let mut rxb = MbufBurst::new();
        let mut next_check = Instant::now();
        loop {
            self.rx_once(&mut rxb, |_, _, _, _, _| {});
            let now = Instant::now();
            if now >= next_check {
                super::interrupt::check()?;
                if ready(self.link)? {
                    return Ok(());
                }
                if now >= end {
                    return Err(format!("not ready after {timeout:?}"));
                }
                next_check = now + Duration::from_millis(10);
            }
        }
    }

    /// Top `pending` up to `upto` frames built by `next`, stamped `now`.
    /// Returns false if the pool was empty.
    #[inline]
    fn top_up(
        &mut self,
        pending: &mut MbufBurst,
        upto: usize,
        tag: u16,
        now: u64,
        mut next: impl FnMut() -> Option<(u64, u8)>,
    ) -> bool {
        let start = pending.len();
        let want = upto.min(BURST_SIZE).saturating_sub(start);
        if want == 0 {
            return true;
        }
        if !self.link.pool.alloc_bulk(pending, want) {
            return false;
        }
        let size = self.tpl.len() as u16;
        let mut keep = pending.len();
        for i in start..pending.len() {
            let Some((flow, flags)) = next() else {
                keep = i;
                break;
            };
            let p = pending.get_mut(i).expect("index below len");
            let buf = p
                .append(size)
                .expect("a 2 KiB mbuf holds a 1514-byte frame");
            self.tpl.write(buf, flow, flags, tag, now);
        }
        // The sequence ran out: give back the mbufs it did not fill.
        while pending.len() > keep {
            drop(pending.pop());
        }
        true
    }

    /// One SYN per flow, as fast as the DUT takes them, then drain. Returns
    /// the counts and the flows whose SYN came back (the DUT created their
    /// connection), for the ACKs of the measurement.
    pub fn warmup(
        &mut self,
        flows: u64,
        burst: usize,
        timeout: Duration,
    ) -> Result<(Warmed, Vec<u32>), String> {
        let mut w = Warmed::default();
        let queues = self.link.tx.len();
        let mut seqs = Warmup::split(flows, queues);
        let mut live = vec![false; flows as usize];
        let mut pending: Vec<MbufBurst> = (0..queues).map(|_| MbufBurst::new()).collect();
        let mut rxb = MbufBurst::new();
        let t0 = Instant::now();
        let end = t0 + timeout;
        let mut received = 0u64;
        let mut q = 0;
        while seqs.iter().any(|s| !s.done()) || pending.iter().any(|p| !p.is_empty()) {
            if Instant::now() >= end {
                return Err(format!(
                    "warm-up did not finish within {timeout:?}: {} of {flows} SYNs sent",
                    w.sent
                ));
            }
            super::interrupt::check()?;
            let now = tsc();
            let seq = &mut seqs[q];
            self.top_up(&mut pending[q], burst, TAG_WARMUP, now, || {
                seq.next_flow().map(|f| (f, TCP_SYN))
            });
            w.sent += self.link.tx[q].tx_burst(&mut pending[q]) as u64;
            q = (q + 1) % queues;
            self.rx_once(&mut rxb, |tag, _, flow, _, _| {
                if tag == TAG_WARMUP {
                    received += 1;
                    if let Some(l) = live.get_mut(flow as usize) {
                        *l = true;
                    }
                }
            });
        }
        // Drain: until everything is back or the link has been quiet.
        let drain_end = Instant::now() + DRAIN_MAX;
        let mut last = Instant::now();
        while received < w.sent && Instant::now() < drain_end && last.elapsed() < DRAIN_QUIET {
            let n = self.rx_once(&mut rxb, |tag, _, flow, _, _| {
                if tag == TAG_WARMUP {
                    received += 1;
                    if let Some(l) = live.get_mut(flow as usize) {
                        *l = true;
                    }
                }
            });
            if n > 0 {
                last = Instant::now();
            }
        }
        w.received = received;
        w.seconds = t0.elapsed().as_secs_f64();
        let live: Vec<u32> = live
            .iter()
            .enumerate()
            .filter(|(_, &l)| l)
            .map(|(i, _)| i as u32)
            .collect();
        w.live_flows = live.len() as u64;
        Ok((w, live))
    }

    /// The measurement: send `mix` at `load` for `load.seconds` (or
    /// `load.max_packets`), count and time what returns, then drain.
    /// `mixes` has one sequence per queue (`Mix::split`). `at_window_end`
    /// runs once, right after the last send and before the drain.
    pub fn measure(
        &mut self,
        mixes: &mut [Mix],
        load: &Load,
        mut at_window_end: impl FnMut(),
    ) -> Result<Measured, String> {
        let queues = self.link.tx.len();
        if mixes.len() != queues {
            return Err(format!("{} sequences for {queues} queues", mixes.len()));
        }
        let mut m = Measured {
            sent_by_queue: vec![0; queues],
            ..Measured::default()
        };
        self.rx_measure_by_queue.iter_mut().for_each(|c| *c = 0);
        // 1 ns to 100 s, 3 significant digits.
        let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3)
            .map_err(|e| format!("histogram: {e}"))?;
        let hz = self.link.hz as f64;
        let per_tick = load.rate_mpps.map(|r| r * 1e6 / hz);
        let ns_per_tick = self.ns_per_tick;
        let mut pending: Vec<MbufBurst> = (0..queues).map(|_| MbufBurst::new()).collect();
        let mut rxb = MbufBurst::new();
        let mut q = 0;
        let t0 = tsc();
        let deadline = t0 + (load.seconds * hz) as u64;
        let mut received = 0u64;
        let mut syn_received = 0u64;
        let mut t_end = t0;
        let (mut prev, mut was_full, mut full_ticks) = (t0, false, 0u64);
        loop {
            let now = tsc();
            if was_full {
                full_ticks += now.wrapping_sub(prev);
            }
            prev = now;
            if now >= deadline || m.sent >= load.max_packets || super::interrupt::interrupted() {
                t_end = t_end.max(now);
                break;
            }
            // How many frames may be outstanding in `pending` now.
            let cap = match per_tick {
                None => load.burst,
                Some(r) => {
                    let due = ((now - t0) as f64 * r) as u64;
                    (due.saturating_sub(m.sent) as usize).min(load.burst)
                }
            };
            let cap = cap.min((load.max_packets - m.sent) as usize);
            let mix = &mut mixes[q];
            if !self.top_up(&mut pending[q], cap, TAG_MEASURE, now, || {
                Some(mix.next_packet())
            }) {
                m.alloc_failures += 1;
            }
            if !pending[q].is_empty() {
                let sent = self.link.tx[q].tx_burst(&mut pending[q]) as u64;
                m.sent += sent;
                m.sent_by_queue[q] += sent;
                m.tx_rounds += 1;
                was_full = !pending[q].is_empty();
                m.tx_ring_full_rounds += was_full as u64;
                t_end = now;
            }
            q = (q + 1) % queues;
            self.rx_once(&mut rxb, |tag, sent_at, _, syn, at| {
                if tag == TAG_MEASURE {
                    received += 1;
                    syn_received += syn as u64;
                    let ns = (at.wrapping_sub(sent_at) as f64 * ns_per_tick) as u64;
                    hist.saturating_record(ns.max(1));
                }
            });
        }
        at_window_end();
        if super::interrupt::interrupted() {
            pending.iter_mut().for_each(MbufBurst::free_all);
            super::interrupt::check()?;
        }
        m.seconds = (t_end - t0) as f64 / hz;
        m.ring_full_seconds = full_ticks as f64 / hz;
        m.received = received;
        // Frames built but never accepted were never sent: not counted.
        pending.iter_mut().for_each(MbufBurst::free_all);
        let drain_end = Instant::now() + DRAIN_MAX;
        let mut last = Instant::now();
        let mut late = 0u64;
        while received + late < m.sent && Instant::now() < drain_end && last.elapsed() < DRAIN_QUIET
        {
            let n = self.rx_once(&mut rxb, |tag, _, _, syn, _| {
                if tag == TAG_MEASURE {
                    late += 1;
                    syn_received += syn as u64;
                }
            });
            if n > 0 {
                last = Instant::now();
            }
        }
        m.late = late;
        m.lost = m.sent.saturating_sub(received + late);
        m.new_flows_sent = mixes.iter().map(|x| x.new_flows).sum();
        m.received_by_queue = self.rx_measure_by_queue.clone();
        m.syn_received = syn_received;
        if !hist.is_empty() {
            m.rtt_p50_ns = hist.value_at_quantile(0.5) as f64;
            m.rtt_p99_ns = hist.value_at_quantile(0.99) as f64;
            m.rtt_p999_ns = hist.value_at_quantile(0.999) as f64;
            m.rtt_max_ns = hist.max() as f64;
        }
        Ok(m)
    }
}
