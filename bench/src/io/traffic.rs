//! Which packet the generator sends next.
//!
//! Warm-up: one SYN per flow, flow numbers `0..flows` in order, so that
//! lbd holds a connection for each before anything is timed.
//!
//! Measurement: ACKs on the flows whose SYN came back (the *live* flows),
//! visited in a shuffled order and again from the start when the order runs
//! out, so consecutive packets hit unrelated table buckets as real traffic
//! does; and, if `syn_percent > 0`, that share of SYNs of *new* flows
//! (numbers from `flows` upwards, each used once), spread evenly among the
//! ACKs by an accumulator rather than at random, so every run of the same
//! parameters sends the same sequence.
//!
//! With several queues (`--queues N`) flow `f` always travels on queue
//! `f % N` ([`queue_of`]): the sequences are split per queue (the warm-up's
//! SYNs and the measurement's ACKs and new SYNs alike), so a DUT that
//! dispatches by queue (lbd: one worker and one connection table per queue)
//! sees every packet of a flow on the same worker.

use super::frame::{TCP_ACK, TCP_SYN};

/// A small deterministic PRNG (SplitMix64) for the shuffle: reproducible and
/// independent of any crate's algorithm changes.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The queue (of `queues`) that flow number `flow` travels on.
#[inline]
pub fn queue_of(flow: u64, queues: usize) -> usize {
    (flow % queues.max(1) as u64) as usize
}

/// The measurement's packet sequence (of one queue).
pub struct Mix {
    order: Vec<u32>,
    pos: usize,
    syn_percent: u32,
    acc: u32,
    next_new: u64,
    /// Distance between this sequence's new flow numbers (the queue count).
    step: u64,
    /// New flows started so far.
    pub new_flows: u64,
}

impl Mix {
    /// ACKs over `live` (flow numbers; shuffled with `seed`), plus
    /// `syn_percent` % SYNs of new flows numbered from `first_new`.
    /// `live` may be empty only if `syn_percent` is 100.
    pub fn new(mut live: Vec<u32>, syn_percent: u32, first_new: u64, seed: u64) -> Mix {
        let mut s = seed;
        // Fisher–Yates.
        for i in (1..live.len()).rev() {
            let j = (splitmix(&mut s) % (i as u64 + 1)) as usize;
            live.swap(i, j);
        }
        Mix {
            order: live,
            pos: 0,
            syn_percent: syn_percent.min(100),
            acc: 0,
            next_new: first_new,
            step: 1,
            new_flows: 0,
        }
    }

    /// One sequence per queue: queue `q` gets the live flows with
    /// `queue_of(f, queues) == q` and the new flows from `first_new`
    /// upwards that belong to it. Each is shuffled with its own seed.
    pub fn split(
        live: &[u32],
        syn_percent: u32,
        first_new: u64,
        seed: u64,
        queues: usize,
    ) -> Vec<Mix> {
        let n = queues.max(1);
        (0..n)
            .map(|q| {
                let mine: Vec<u32> = live
                    .iter()
                    .copied()
                    .filter(|&f| queue_of(u64::from(f), n) == q)
                    .collect();
                // The first flow number >= first_new on queue q.
                let first = first_new + ((q + n - queue_of(first_new, n)) % n) as u64;
                let mut m = Mix::new(mine, syn_percent, first, seed.wrapping_add(q as u64));
                m.step = n as u64;
                m
            })
            .collect()
    }

    /// Whether this sequence has no live flow to send ACKs on.
    pub fn no_live_flows(&self) -> bool {
        self.order.is_empty()
    }

    /// The next packet: (flow number, TCP flags).
    #[inline]
    pub fn next_packet(&mut self) -> (u64, u8) {
        self.acc += self.syn_percent;
        if self.acc >= 100 || self.order.is_empty() {
            self.acc = self.acc.saturating_sub(100);
            let f = self.next_new;
            self.next_new += self.step;
            self.new_flows += 1;
            return (f, TCP_SYN);
        }
        let f = self.order[self.pos];
        self.pos += 1;
        if self.pos == self.order.len() {
            self.pos = 0;
        }
        (u64::from(f), TCP_ACK)
    }
}

/// The warm-up sequence: a SYN for every flow number below `flows` (of
/// one queue: every `step`-th from `next`).
pub struct Warmup {
    next: u64,
    flows: u64,
    step: u64,
}

impl Warmup {
    pub fn new(flows: u64) -> Warmup {
        Warmup {
            next: 0,
            flows,
            step: 1,
        }
    }

    /// One sequence per queue: queue `q` gets the flows below `flows` with
    /// `queue_of(f, queues) == q`.
    pub fn split(flows: u64, queues: usize) -> Vec<Warmup> {
        let n = queues.max(1) as u64;
        (0..n)
            .map(|q| Warmup {
                next: q,
                flows,
                step: n,
            })
            .collect()
    }

    /// The next SYN's flow number, or `None` when every flow has had one.
    #[inline]
    pub fn next_flow(&mut self) -> Option<u64> {
        (self.next < self.flows).then(|| {
            self.next += self.step;
            self.next - self.step
        })
    }

    pub fn done(&self) -> bool {
        self.next >= self.flows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_visit_every_live_flow_once_per_round() {
        let mut m = Mix::new((0..1000).collect(), 0, 1000, 7);
        let mut seen: Vec<u64> = (0..1000).map(|_| m.next_packet().0).collect();
        assert_ne!(seen, (0..1000).collect::<Vec<_>>(), "shuffled");
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        assert_eq!(m.new_flows, 0);
    }

    #[test]
    fn syn_share_is_exact_and_new_flows_are_fresh() {
        let mut m = Mix::new((0..100).collect(), 10, 100, 7);
        let pkts: Vec<(u64, u8)> = (0..1000).map(|_| m.next_packet()).collect();
        let syns: Vec<u64> = pkts
            .iter()
            .filter(|p| p.1 == TCP_SYN)
            .map(|p| p.0)
            .collect();
        assert_eq!(syns.len(), 100);
        assert_eq!(syns, (100..200).collect::<Vec<_>>());
        assert!(pkts.iter().all(|p| p.1 == TCP_SYN || p.0 < 100));
    }

    #[test]
    fn warmup_sends_each_flow_once() {
        let mut w = Warmup::new(3);
        assert_eq!(
            std::iter::from_fn(|| w.next_flow()).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(w.done());
    }

    #[test]
    fn split_keeps_each_flow_on_its_queue() {
        let mut ws = Warmup::split(7, 2);
        let q0: Vec<u64> = std::iter::from_fn(|| ws[0].next_flow()).collect();
        let q1: Vec<u64> = std::iter::from_fn(|| ws[1].next_flow()).collect();
        assert_eq!((q0, q1), (vec![0, 2, 4, 6], vec![1, 3, 5]));
        let mut ms = Mix::split(&(0..100).collect::<Vec<_>>(), 10, 101, 7, 3);
        for (q, m) in ms.iter_mut().enumerate() {
            let pkts: Vec<(u64, u8)> = (0..300).map(|_| m.next_packet()).collect();
            assert!(pkts.iter().all(|p| queue_of(p.0, 3) == q), "queue {q}");
            let syns: Vec<u64> = pkts
                .iter()
                .filter(|p| p.1 == TCP_SYN)
                .map(|p| p.0)
                .collect();
            assert_eq!(syns.len(), 30);
            assert!(syns.iter().all(|&f| f >= 101));
            assert!(syns.windows(2).all(|w| w[1] == w[0] + 3));
        }
    }
}
