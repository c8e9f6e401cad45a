//! lc, wlc, sed and nq in O(log n): an indexed binary heap per service.
//!
//! The scans in [`lc`](super::lc) and [`sed`](super::sed) look at every
//! real server for every new connection. Here each worker keeps, for each
//! service with one of these schedulers, a min-heap of its real servers
//! ordered by exactly what the scan minimises, with the scan's tie-break
//! (the earliest server in the service's list) as the last key. The root is
//! then the scan's choice; a change of one server's counts moves that one
//! node up or down (O(log n)). Servers at weight 0 are never chosen by the
//! scan, so they are not in the heap at all.
//!
//! The nodes live in one array (all services' heaps end to end) and a table
//! by real-server id says where each server's node is, so a count change
//! finds its node without a search. Everything is sized when the index is
//! built (from a snapshot): updates and picks never allocate.
//!
//! Updates take `&self` (the nodes are [`Cell`]s): the counts change in
//! places that only hold shared borrows of the worker (NAT table callbacks,
//! for one), and a `Cell` of a `Copy` value costs nothing over a plain
//! store. The index belongs to one worker and never crosses threads while
//! in use.

use std::cell::Cell;

use crate::config::Scheduler;

/// What a heap orders by: one of the scan schedulers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Least overhead (`active * 256 + inactive`).
    Lc,
    /// Least overhead / weight.
    Wlc,
    /// Least (active + 1) / weight.
    Sed,
    /// The first idle server (no active connection), else as sed.
    Nq,
}

impl Order {
    /// The order for `sched`, if it is one the index answers.
    pub fn of(sched: Scheduler) -> Option<Order> {
        match sched {
            Scheduler::Lc => Some(Order::Lc),
            Scheduler::Wlc => Some(Order::Wlc),
            Scheduler::Sed => Some(Order::Sed),
            Scheduler::Nq => Some(Order::Nq),
            _ => None,
        }
    }

    /// Whether the scan would prefer `a` to `b`: `a`'s load is lower, or
    /// equal and `a` comes first in the list. Products are compared as the
    /// scans compare them (exact cross multiplication).
    #[inline(always)]
    fn before(self, a: &Node, b: &Node) -> bool {
        let (x, y) = match self {
            Order::Lc => (a.overhead(), b.overhead()),
            // overhead < 2^40 and weight <= 65535 (the configuration's
            // limit): the products fit u64, as in the scan.
            Order::Wlc => (
                a.overhead() * b.weight as u64,
                b.overhead() * a.weight as u64,
            ),
            Order::Sed => (a.delay() * b.weight as u64, b.delay() * a.weight as u64),
            Order::Nq => match (a.active == 0, b.active == 0) {
                (true, true) => (0, 0),
                (true, false) => return true,
                (false, true) => return false,
                (false, false) => (a.delay() * b.weight as u64, b.delay() * a.weight as u64),
            },
        };
        x < y || (x == y && a.pos < b.pos)
    }
}

/// One real server in its service's heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    /// Active connections, clamped at 0 (as the scan reads them).
    active: u32,
    inactive: u32,
    weight: u32,
    /// Its index in the service's list: the tie-break and the answer.
    pos: u16,
    /// Its real-server id (to keep the id → slot table right on moves).
    rs: u16,
}

impl Node {
    #[inline(always)]
    fn overhead(&self) -> u64 {
        ((self.active as u64) << 8) + self.inactive as u64
    }

    #[inline(always)]
    fn delay(&self) -> u64 {
        self.active as u64 + 1
    }
}

/// One service's heap: `len` nodes from `base`.
#[derive(Debug, Clone, Copy)]
struct Heap {
    /// Its service's index (what [`Place::heap`] holds).
    number: u16,
    base: u32,
    len: u32,
    /// `None`: the service is not indexed (another scheduler, or a list
    /// the index cannot represent); its picks are the caller's business.
    order: Option<Order>,
}

/// Where a real server's node is: its heap (service index) and slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    heap: u16,
    slot: u16,
}

const NOWHERE: Place = Place {
    heap: u16::MAX,
    slot: u16::MAX,
};

/// The service is not indexed: scan it (see [`LeastIndex::pick`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotIndexed;

/// A real server as the index is built from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Real-server id.
    pub rs: u32,
    pub weight: u32,
    /// Its connection counts now (raw: may be negative).
    pub active: i32,
    pub inactive: i32,
}

/// The per-worker index over all services (see the module notes).
#[derive(Debug)]
pub struct LeastIndex {
    nodes: Vec<Cell<Node>>,
    heaps: Vec<Heap>,
    /// By real-server id.
    places: Box<[Cell<Place>]>,
}

#[inline(always)]
fn clamp(n: i32) -> u32 {
    n.max(0) as u32
}

impl LeastIndex {
    /// An empty index for real-server ids below `max_rs`, with room for
    /// `max_services` services: building it later allocates nothing.
    pub fn new(max_rs: usize, max_services: usize) -> LeastIndex {
        LeastIndex {
            nodes: Vec::with_capacity(max_rs),
            heaps: Vec::with_capacity(max_services),
            places: vec![Cell::new(NOWHERE); max_rs].into_boxed_slice(),
        }
    }

    /// Forget every service (before adding a snapshot's services again).
    pub fn clear(&mut self) {
        for n in &self.nodes {
            self.places[n.get().rs as usize].set(NOWHERE);
        }
        self.nodes.clear();
        self.heaps.clear();
    }

    /// Add the next service (services are numbered in the order added)
    /// with its scheduler and its real servers in list order.
    pub fn add_service(&mut self, sched: Scheduler, members: impl IntoIterator<Item = Member>) {
        let base = self.nodes.len();
        let heap = self.heaps.len();
        let mut order = Order::of(sched);
        if order.is_some() {
            for (pos, m) in members.into_iter().enumerate() {
                if m.weight == 0 {
                    continue; // never chosen
                }
                let fits = heap < u16::MAX as usize && pos < u16::MAX as usize;
                let free = self.places.get(m.rs as usize).map(Cell::get) == Some(NOWHERE);
                if !(fits && free) {
                    // An id listed twice (configuration validation rejects
                    // that) or out of range: leave the service to the scan.
                    order = None;
                    break;
                }
                let n = Node {
                    active: clamp(m.active),
                    inactive: clamp(m.inactive),
                    weight: m.weight,
                    pos: pos as u16,
                    rs: m.rs as u16,
                };
                self.nodes.push(Cell::new(n));
                self.places[m.rs as usize].set(Place {
                    heap: heap as u16,
                    slot: (self.nodes.len() - base - 1) as u16,
                });
            }
        }
        if order.is_none() {
            for n in &self.nodes[base..] {
                self.places[n.get().rs as usize].set(NOWHERE);
            }
            self.nodes.truncate(base);
        }
        let h = Heap {
            number: heap as u16,
            base: base as u32,
            len: (self.nodes.len() - base) as u32,
            order,
        };
        self.heaps.push(h);
        for slot in 1..h.len as usize {
            let n = self.nodes[base + slot].get();
            self.sift_up(h, slot, n);
        }
    }

    /// The scan's choice for service `svc` (an index into its list), `None`
    /// when every server is at weight 0; [`NotIndexed`] when the service
    /// is not indexed.
    #[inline]
    pub fn pick(&self, svc: usize) -> Result<Option<usize>, NotIndexed> {
        match self.heaps.get(svc) {
            Some(h) if h.order.is_some() => Ok(if h.len == 0 {
                None
            } else {
                Some(self.nodes[h.base as usize].get().pos as usize)
            }),
            _ => Err(NotIndexed),
        }
    }

    /// Real server `rs`'s counts are now `active` and `inactive` (raw, as
    /// the worker's counters hold them): move its node where it belongs.
    /// A server in no indexed service is ignored.
    #[inline]
    pub fn set(&self, rs: u32, active: i32, inactive: i32) {
        let Some(place) = self.places.get(rs as usize).map(Cell::get) else {
            return;
        };
        if place == NOWHERE {
            return;
        }
        let h = self.heaps[place.heap as usize];
        let Some(order) = h.order else { return };
        let slot = place.slot as usize;
        let old = self.nodes[h.base as usize + slot].get();
        let new = Node {
            active: clamp(active),
            inactive: clamp(inactive),
            ..old
        };
        if order.before(&new, &old) {
            self.sift_up(h, slot, new);
        } else {
            self.sift_down(h, order, slot, new);
        }
    }

    /// Put `n` at `slot` of `h` and record where it is.
    #[inline(always)]
    fn put(&self, nodes: &[Cell<Node>], heap: u16, slot: usize, n: Node) {
        nodes[slot].set(n);
        self.places[n.rs as usize].set(Place {
            heap,
            slot: slot as u16,
        });
    }

    /// The heap's nodes.
    #[inline(always)]
    fn nodes_of(&self, h: Heap) -> &[Cell<Node>] {
        &self.nodes[h.base as usize..(h.base + h.len) as usize]
    }

    /// Move `n` (destined for `slot`) towards the root while it goes
    /// before its parent.
    fn sift_up(&self, h: Heap, mut slot: usize, n: Node) {
        let Some(order) = h.order else { return };
        let nodes = self.nodes_of(h);
        let heap = h.number;
        while slot > 0 {
            let parent = (slot - 1) / 2;
            let p = nodes[parent].get();
            if !order.before(&n, &p) {
                break;
            }
            self.put(nodes, heap, slot, p);
            slot = parent;
        }
        self.put(nodes, heap, slot, n);
    }

    /// Move `n` (destined for `slot`) towards the leaves while a child
    /// goes before it.
    fn sift_down(&self, h: Heap, order: Order, mut slot: usize, n: Node) {
        let nodes = self.nodes_of(h);
        let heap = h.number;
        loop {
            let left = 2 * slot + 1;
            if left >= nodes.len() {
                break;
            }
            let mut child = left;
            let mut c = nodes[left].get();
            if let Some(r) = nodes.get(left + 1).map(Cell::get) {
                if order.before(&r, &c) {
                    child = left + 1;
                    c = r;
                }
            }
            if !order.before(&c, &n) {
                break;
            }
            self.put(nodes, heap, slot, c);
            slot = child;
        }
        self.put(nodes, heap, slot, n);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{lc, sed, Candidate};
    use super::*;
    use proptest::prelude::*;

    const ORDERS: [Scheduler; 4] = [Scheduler::Lc, Scheduler::Wlc, Scheduler::Sed, Scheduler::Nq];

    /// The reference: the scan implementations.
    fn scan(sched: Scheduler, cands: &[Candidate]) -> Option<usize> {
        match sched {
            Scheduler::Lc => lc::least_connection(cands),
            Scheduler::Wlc => lc::weighted_least_connection(cands),
            Scheduler::Sed => sed::shortest_expected_delay(cands),
            Scheduler::Nq => sed::never_queue(cands),
            _ => unreachable!(),
        }
    }

    /// One list of real servers served by the four schedulers at once:
    /// service `k` (scheduler `ORDERS[k]`) holds the same servers under
    /// ids `k * n ..`, and every count change is applied to all four.
    struct Model {
        weights: Vec<u32>,
        active: Vec<i32>,
        inactive: Vec<i32>,
        index: LeastIndex,
    }

    impl Model {
        fn new(weights: Vec<u32>) -> Model {
            let n = weights.len();
            let mut m = Model {
                weights,
                active: vec![0; n],
                inactive: vec![0; n],
                index: LeastIndex::new(4 * n + 1, 8),
            };
            m.rebuild();
            m
        }

        fn rebuild(&mut self) {
            self.index.clear();
            let n = self.weights.len();
            for (k, s) in ORDERS.into_iter().enumerate() {
                let members = (0..n).map(|i| Member {
                    rs: (k * n + i) as u32,
                    weight: self.weights[i],
                    active: self.active[i],
                    inactive: self.inactive[i],
                });
                self.index.add_service(s, members);
            }
        }

        fn change(&mut self, i: usize, da: i32, di: i32) {
            self.active[i] += da;
            self.inactive[i] += di;
            let n = self.weights.len();
            for k in 0..ORDERS.len() {
                self.index
                    .set((k * n + i) as u32, self.active[i], self.inactive[i]);
            }
        }

        fn cands(&self) -> Vec<Candidate> {
            (0..self.weights.len())
                .map(|i| Candidate {
                    weight: self.weights[i],
                    active: self.active[i].max(0) as u32,
                    inactive: self.inactive[i].max(0) as u32,
                })
                .collect()
        }

        /// Every scheduler's indexed pick equals its scan's.
        fn check(&self) -> Result<(), TestCaseError> {
            let cands = self.cands();
            for (k, s) in ORDERS.into_iter().enumerate() {
                let got = self.index.pick(k).expect("indexed");
                prop_assert_eq!(got, scan(s, &cands), "{:?} over {:?}", s, cands);
            }
            Ok(())
        }
    }

    /// What happens to a worker's counts.
    #[derive(Debug, Clone)]
    enum Event {
        /// A new connection to `sched`'s choice, in SYN_RECV (inactive) or
        /// established at once (a mid-flow adoption).
        Schedule {
            sched: usize,
            established: bool,
        },
        /// Server `i`'s connection became established (or left it).
        Activate(usize),
        Deactivate(usize),
        /// One of server `i`'s connections ended (active or not). Counts
        /// may go below 0, as a worker's can (another worker counted the
        /// connection in).
        EndActive(usize),
        EndInactive(usize),
        /// A new snapshot with server `i` at weight `w`.
        Reweight(usize, u32),
    }

    fn event(n: usize) -> impl Strategy<Value = Event> {
        prop_oneof![
            4 => (0..4usize, any::<bool>())
                .prop_map(|(sched, established)| Event::Schedule { sched, established }),
            2 => (0..n).prop_map(Event::Activate),
            1 => (0..n).prop_map(Event::Deactivate),
            2 => (0..n).prop_map(Event::EndActive),
            2 => (0..n).prop_map(Event::EndInactive),
            1 => (0..n, weight()).prop_map(|(i, w)| Event::Reweight(i, w)),
        ]
    }

    /// Small weights make ties frequent; a few large ones test the
    /// products.
    fn weight() -> impl Strategy<Value = u32> {
        prop_oneof![8 => 0..4u32, 1 => Just(65535u32), 1 => 1..65535u32]
    }

    fn case() -> impl Strategy<Value = (Vec<u32>, Vec<Event>)> {
        (1..40usize).prop_flat_map(|n| {
            (
                proptest::collection::vec(weight(), n),
                proptest::collection::vec(event(n), 0..400),
            )
        })
    }

    proptest! {
        #[test]
        fn indexed_picks_equal_the_scans((weights, events) in case()) {
            let mut m = Model::new(weights);
            m.check()?;
            for e in events {
                match e {
                    Event::Schedule { sched, established } => {
                        let pick = m.index.pick(sched).unwrap();
                        prop_assert_eq!(pick, scan(ORDERS[sched], &m.cands()));
                        if let Some(i) = pick {
                            if established {
                                m.change(i, 1, 0);
                            } else {
                                m.change(i, 0, 1);
                            }
                        }
                    }
                    Event::Activate(i) => m.change(i, 1, -1),
                    Event::Deactivate(i) => m.change(i, -1, 1),
                    Event::EndActive(i) => m.change(i, -1, 0),
                    Event::EndInactive(i) => m.change(i, 0, -1),
                    Event::Reweight(i, w) => {
                        m.weights[i] = w;
                        m.rebuild();
                    }
                }
                m.check()?;
            }
        }
    }

    #[test]
    fn ties_go_to_the_earliest_and_weight_0_is_never_chosen() {
        let mut m = Model::new(vec![0, 2, 1, 2]);
        // All idle: lc and wlc take the first live one (1); sed and nq the
        // first of the heaviest (1).
        for k in 0..4 {
            assert_eq!(m.index.pick(k), Ok(Some(1)), "{:?}", ORDERS[k]);
        }
        m.change(1, 1, 0);
        m.check().unwrap();
        // nq: server 2 is idle, and the first idle one.
        assert_eq!(m.index.pick(3), Ok(Some(2)));
        let mut m = Model::new(vec![0, 0]);
        for k in 0..4 {
            assert_eq!(m.index.pick(k), Ok(None));
        }
        m.change(0, -3, 5);
        assert_eq!(m.index.pick(0), Ok(None));
    }

    #[test]
    fn other_schedulers_and_duplicate_ids_are_not_indexed() {
        let mut ix = LeastIndex::new(16, 4);
        let m = |rs| Member {
            rs,
            weight: 1,
            active: 0,
            inactive: 0,
        };
        ix.add_service(Scheduler::Rr, [m(0), m(1)]);
        ix.add_service(Scheduler::Wlc, [m(2), m(3), m(2)]);
        ix.add_service(Scheduler::Lc, [m(4), m(99)]);
        ix.add_service(Scheduler::Lc, [m(5), m(6)]);
        assert_eq!(ix.pick(0), Err(NotIndexed));
        assert_eq!(ix.pick(1), Err(NotIndexed));
        assert_eq!(ix.pick(2), Err(NotIndexed));
        assert_eq!(ix.pick(3), Ok(Some(0)));
        assert_eq!(ix.pick(4), Err(NotIndexed));
        // Servers of unindexed services are ignored; the ids of a refused
        // service are free again.
        ix.set(2, 5, 5);
        ix.set(4, 5, 5);
        ix.set(5, 1, 0);
        assert_eq!(ix.pick(3), Ok(Some(1)));
        ix.clear();
        ix.add_service(Scheduler::Lc, [m(2), m(3), m(4)]);
        assert_eq!(ix.pick(0), Ok(Some(0)));
    }
}
