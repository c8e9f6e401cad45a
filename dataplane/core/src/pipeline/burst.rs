//! The burst pipeline: a whole RX burst in two stages, as VPP's graph nodes
//! process a vector of packets per node.
//!
//! 1. [`Worker::begin_burst`] classifies every frame of the burst without
//!    side effects ([`flow::parse_into`]: the parsed [`Flow`] of a service
//!    packet, or "needs the full classifier"), and prefetches each flow's
//!    connection-table bucket. The burst's cache misses then overlap
//!    instead of being paid one after another, and every frame is parsed
//!    and hashed exactly once.
//! 2. [`Worker::process_planned`] processes the whole burst (lbd's worker
//!    loop and the bench), [`Worker::process_in_burst`] one frame `i` of
//!    it: a parsed flow goes straight to connection lookup, state update
//!    and rewrite; any other frame takes the full one-frame path. The
//!    burst's per-service packet and byte counts are added to the shared
//!    counters when it ends (`tally`).
//!
//! Because stage 1 changes nothing, the outcome — verdicts, rewrites,
//! counters, table contents — is exactly that of processing the frames one
//! by one with [`Worker::process_buf`] (property-tested in
//! `pipeline/tests/burst.rs`). `rx_frames` is counted once per burst.

use crate::conntrack::Tick;
use crate::counters::Counter;

use crate::conntrack::ConnKey;

use super::flow::{self, BurstCtx, Kind};
use super::parsed::Flow;
use super::plan::{self, Planned, MAX_BURST};
use super::{PacketBuf, Verdict, Worker};

/// Frame i's bits of the burst's masks, nonzero if set: planned as a
/// service packet, planned as a candidate NAT reply.
#[derive(Clone, Copy)]
struct FrameBits {
    service: u64,
    reply: u64,
}

impl Worker {
    /// Stage 1: classify the frames of a burst that arrived on `rx_port`
    /// (at most [`MAX_BURST`]; more are left to the full path) and prefetch
    /// their connection buckets. Counts `rx_frames` for every frame given.
    /// Follow with [`process_in_burst`](Self::process_in_burst) for each
    /// frame, in order, before the next burst.
    #[inline(never)]
    pub fn begin_burst<'a>(&mut self, frames: impl IntoIterator<Item = &'a [u8]>, rx_port: u16) {
        let mut n = 0usize;
        let mut valid = 0u64;
        // `Worker::nat_table`, spelled out: the plan is borrowed mutably.
        let nat = match &self.nat {
            Some(n) if self.snap.has_nat => Some(&*n.table),
            _ => None,
        };
        let snap = &*self.snap;
        // A port that does not exist (or no storage for the flows, see
        // `Plan::take_frames`): every frame takes the full path.
        let (frames_mut, reply) = self.plan.frames_and_reply();
        let mut burst =
            BurstCtx::new(snap, &self.table, nat, self.standby, rx_port).zip(frames_mut);
        for f in frames {
            if let (true, Some((ctx, slots))) = (n < MAX_BURST, &mut burst) {
                let slot = &mut slots[n];
                match flow::parse_into(snap, ctx, f, &mut slot.flow) {
                    Some(Kind::Service) => {
                        slot.len = f.len() as u16;
                        valid |= 1 << n;
                    }
                    Some(Kind::NatReply) => {
                        slot.len = f.len() as u16;
                        valid |= 1 << n;
                        *reply |= 1 << n;
                    }
                    None => {}
                }
            }
            n += 1;
        }
        self.plan.valid = valid;
        self.plan.rx_port = rx_port;
        self.stats.add(Counter::RxFrames, n as u64);
    }

    /// Stage 2 over the whole burst begun by
    /// [`begin_burst`](Self::begin_burst): `pkts` are its frames, in order
    /// and unchanged since; frame `i`'s verdict goes to `out[i]` (`out` at
    /// least as long as `pkts`). The plan is read once for the burst, and
    /// its per-packet counters are added to the shared ones once, at the
    /// end. The outcome is exactly that of
    /// [`process_in_burst`](Self::process_in_burst) for each frame in turn
    /// (frames of one flow are processed in their order).
    #[inline(never)]
    pub fn process_planned<B: PacketBuf>(
        &mut self,
        pkts: impl IntoIterator<Item = B>,
        now: Tick,
        out: &mut [Verdict],
    ) {
        let rx_port = self.plan.rx_port;
        self.check_neigh();
        let taken = self.plan.take_frames();
        // Every planned frame is processed below, exactly once.
        let valid = std::mem::take(&mut self.plan.valid);
        let (service, reply) = plan::split(valid, self.plan.reply);
        let frames = plan::frames_of(&taken);
        // Whether service packets are looked up in the NAT table first is
        // the snapshot's and the worker's, the same for every frame of the
        // burst: chosen once here, so the DR director's loop carries no NAT
        // lookup and the NAT director's has it in line (measured with
        // callgrind: in line in a loop shared with DR, it cost DR).
        if self.nat_table().is_some() {
            self.planned_frames_nat(pkts, frames, service, reply, rx_port, now, out);
        } else {
            self.planned_frames::<false, B>(pkts, frames, service, reply, rx_port, now, out);
        }
        self.plan.give_back(taken);
        self.flush_tally();
    }

    /// [`planned_frames`](Self::planned_frames) for a NAT director, out
    /// of line: the DR director's loop keeps its registers (measured with
    /// callgrind).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn planned_frames_nat<B: PacketBuf>(
        &mut self,
        pkts: impl IntoIterator<Item = B>,
        frames: &[Planned; MAX_BURST],
        service: u64,
        reply: u64,
        rx_port: u16,
        now: Tick,
        out: &mut [Verdict],
    ) {
        self.planned_frames::<true, B>(pkts, frames, service, reply, rx_port, now, out);
    }

    /// The loop of [`process_planned`](Self::process_planned) over the
    /// burst's frames; `MAY_NAT` false when the worker has no NAT table for
    /// this snapshot (no frame of the burst is looked up in it).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn planned_frames<const MAY_NAT: bool, B: PacketBuf>(
        &mut self,
        pkts: impl IntoIterator<Item = B>,
        frames: &[Planned; MAX_BURST],
        service: u64,
        reply: u64,
        rx_port: u16,
        now: Tick,
        out: &mut [Verdict],
    ) {
        // Frame i's bit in the masks, moved along with i (not shifted into
        // place per frame: measured with callgrind).
        let mut bit = 1u64;
        for (i, pkt) in pkts.into_iter().enumerate() {
            let Some(o) = out.get_mut(i) else {
                panic!("process_planned: one verdict per frame")
            };
            let planned = FrameBits {
                service: service & bit,
                reply: reply & bit,
            };
            self.planned_frame::<MAY_NAT, B>(frames, i, planned, pkt, rx_port, now, o);
            bit <<= 1;
        }
    }

    /// Stage 2: process frame `i` of the burst begun by
    /// [`begin_burst`](Self::begin_burst) — the same frame, unchanged since.
    #[inline]
    pub fn process_in_burst<B: PacketBuf>(&mut self, i: usize, pkt: &mut B, now: Tick) -> Verdict {
        self.check_neigh();
        let taken = self.plan.take_frames();
        let bit = if i < MAX_BURST { 1u64 << i } else { 0 };
        let (service, reply) = plan::split(self.plan.valid, self.plan.reply);
        let planned = FrameBits {
            service: service & bit,
            reply: reply & bit,
        };
        self.plan.valid &= !bit;
        let frames = plan::frames_of(&taken);
        let mut v = Verdict::Consumed;
        let rx_port = self.plan.rx_port;
        self.planned_frame::<true, &mut B>(frames, i, planned, pkt, rx_port, now, &mut v);
        self.plan.give_back(taken);
        self.flush_tally();
        v
    }

    /// Frame `i` of the burst: its planned flow in `frames` if `planned`
    /// says it has one (a service packet or a candidate NAT reply), the
    /// full path otherwise. Each path writes its verdict to `out` (a DR
    /// plan's `Tx` as it is, not merged with the other paths' verdicts
    /// first: measured with callgrind). `pkt` comes by value and is moved
    /// into a place of its own only on the paths that need its address
    /// (not stored to memory for every frame: measured with callgrind).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn planned_frame<const MAY_NAT: bool, B: PacketBuf>(
        &mut self,
        frames: &[Planned; MAX_BURST],
        i: usize,
        planned: FrameBits,
        mut pkt: B,
        rx_port: u16,
        now: Tick,
        out: &mut Verdict,
    ) {
        // (A planned frame is one of the first `MAX_BURST`: `get` is Some.)
        let len = pkt.data().len();
        if planned.service != 0 {
            if let Some(p) = frames.get(i).filter(|p| p.len as usize == len) {
                match self.service_flow_dr::<MAY_NAT>(pkt.data_mut(), &p.flow, rx_port, now) {
                    Ok(port) => *out = Verdict::Tx(port),
                    Err(action) => {
                        let mut pkt = pkt;
                        self.complete_into(&mut pkt, action, rx_port, out)
                    }
                }
                return;
            }
        }
        if planned.reply != 0 {
            if let Some(p) = frames.get(i).filter(|p| p.len as usize == len) {
                let mut pkt = pkt;
                *out = if MAY_NAT {
                    self.nat_reply_in_line(&mut pkt, &p.flow, rx_port, now)
                } else {
                    self.nat_reply_planned(&mut pkt, &p.flow, rx_port, now)
                };
                return;
            }
        }
        let mut pkt = pkt;
        *out = self.run_unplanned(&mut pkt, rx_port, now);
    }

    /// A candidate NAT reply stage 1 planned: what the full classifier
    /// would do with it, without classifying it again. Out of line for the
    /// DR director's loop (its service packets' path stays small); a NAT
    /// director's loop has it in line ([`nat_reply_in_line`]: the reply
    /// 20 instructions fewer, the request about 4 more, by callgrind).
    ///
    /// [`nat_reply_in_line`]: Self::nat_reply_in_line
    #[inline(never)]
    fn nat_reply_planned<B: PacketBuf>(
        &mut self,
        pkt: &mut B,
        f: &Flow,
        rx_port: u16,
        now: Tick,
    ) -> Verdict {
        self.nat_reply_in_line(pkt, f, rx_port, now)
    }

    /// [`nat_reply_planned`](Self::nat_reply_planned), in line in a NAT
    /// director's loop.
    #[inline(always)]
    fn nat_reply_in_line<B: PacketBuf>(
        &mut self,
        pkt: &mut B,
        f: &Flow,
        rx_port: u16,
        now: Tick,
    ) -> Verdict {
        let [addrs, _] = f.words;
        let proto = ConnKey::proto_of_words(&f.words);
        let (l4, l4_end) = (f.l4 as usize, f.l4_end as usize);
        let frame = pkt.data_mut();
        match self.nat_reply_hashed(frame, proto, addrs, l4, l4_end, Some(f.hash), now) {
            Ok(port) => Verdict::Tx(port),
            Err(action) => self.complete(pkt, action, rx_port),
        }
    }

    /// The full path for a frame stage 1 did not plan (ARP, ICMP, tagged
    /// frames, anything unusual): out of line, so that the planned flows'
    /// path above stays small (measured with callgrind).
    #[inline(never)]
    fn run_unplanned<B: PacketBuf>(&mut self, pkt: &mut B, rx_port: u16, now: Tick) -> Verdict {
        self.run(pkt, rx_port, now)
    }

    /// Process a burst of frames that arrived on `rx_port`, writing each
    /// frame's verdict to `out` (as long as `pkts`): both stages, for tests,
    /// benchmarks and callers that hold their frames in a slice.
    pub fn process_burst<B: PacketBuf>(
        &mut self,
        pkts: &mut [B],
        rx_port: u16,
        now: Tick,
        out: &mut [Verdict],
    ) {
        assert_eq!(pkts.len(), out.len(), "one verdict per frame");
        for (pkts, out) in pkts.chunks_mut(MAX_BURST).zip(out.chunks_mut(MAX_BURST)) {
            self.begin_burst(pkts.iter().map(|p| p.data()), rx_port);
            self.process_planned(pkts.iter_mut(), now, out);
        }
    }
}
