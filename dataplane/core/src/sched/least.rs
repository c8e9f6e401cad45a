//! lc, wlc, sed and nq in O(log n): a tournament tree per service.
//!
//! The scans in [`lc`](super::lc) and [`sed`](super::sed) look at every
//! real server for every new connection. Here each worker keeps, for each
//! service with one of these schedulers, a tournament (winner) tree over its
//! real servers: the leaves are the servers in list order, and each inner
//! node holds the winner of its two children by exactly what the scan
//! minimises, ties going to the left child (the earlier server, the scan's
//! tie-break). The root is the scan's choice. A change of one server's
//! counts replays the matches on its path to the root: one comparison per
//! level, log2(servers) levels, nothing moved but the winners' positions.
//! Servers at weight 0 hold a key that loses every match, so they are never
//! chosen.
//!
//! All services' trees live in two arrays (keys and winners, end to end),
//! and a table by real-server id says which tree and leaf a server is, so a
//! count change finds its leaf without a search. Everything is sized when
//! the index is built (from a snapshot): updates and picks never allocate.
//!
//! Updates take `&self` (keys and winners are [`Cell`]s): the counts change
//! in places that only hold shared borrows of the worker (NAT table
//! callbacks, for one), and a `Cell` of a `Copy` value costs nothing over a
//! plain store. The index belongs to one worker and never crosses threads
//! while in use.

use std::cell::Cell;

use crate::config::Scheduler;

/// What a tree orders by: one of the scan schedulers.
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

    /// A server's key: the load this order minimises, as a fraction over
    /// its weight, from counts clamped at 0 (as the scans read them). nq's
    /// idle servers get load 0: any busy server's fraction is larger (its
    /// weight is not 0), and among idle ones the first wins, exactly nq's
    /// "first idle server". lc ignores weights.
    #[inline(always)]
    fn key(self, weight: u32, active: u32, inactive: u32) -> Key {
        if weight == 0 {
            return NEVER;
        }
        let (load, weight) = match self {
            Order::Lc => (((active as u64) << 8) + inactive as u64, 1),
            Order::Wlc => (((active as u64) << 8) + inactive as u64, weight),
            Order::Sed => (active as u64 + 1, weight),
            Order::Nq if active == 0 => (0, weight),
            Order::Nq => (active as u64 + 1, weight),
        };
        Key { load, weight }
    }
}

/// What a server is ranked by: `load / weight`, lower first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    load: u64,
    weight: u32,
}

/// The key of a server at weight 0 (and of the padding leaves): it loses
/// to every server of weight > 0 (`1 * w > load * 0`), whatever its load.
const NEVER: Key = Key { load: 1, weight: 0 };

/// Whether server `a` (at position `ap`) wins over `b` (at `bp`): a lower
/// `load / weight`, or equal and earlier in the list. Compared by cross
/// multiplication, exact, as the scans compare: loads are below 2^40 and
/// weights at most 65535 (the configuration's limit), so the products fit.
#[inline(always)]
fn wins(a: Key, ap: u16, b: Key, bp: u16) -> bool {
    let (x, y) = (a.load * b.weight as u64, b.load * a.weight as u64);
    x < y || (x == y && ap < bp)
}

/// One service's tree: `leaves` keys from `keys`, and `2 * leaves` winner
/// slots from `winners` (slot 1 is the root, slot `leaves + i` leaf `i`;
/// slot 0 unused).
#[derive(Debug, Clone, Copy)]
struct Tree {
    keys: u32,
    winners: u32,
    /// A power of two, at least the number of servers (and 1).
    leaves: u32,
    /// `None`: the service is not indexed (another scheduler, or a list
    /// the index cannot represent); its picks are the caller's business.
    order: Option<Order>,
}

/// Which tree (service index) and leaf (list position) a server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    tree: u16,
    pos: u16,
}

const NOWHERE: Place = Place {
    tree: u16::MAX,
    pos: u16::MAX,
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
    keys: Vec<Cell<Key>>,
    winners: Vec<Cell<u16>>,
    trees: Vec<Tree>,
    /// By real-server id; only servers of weight > 0 in an indexed service.
    places: Box<[Place]>,
    /// Ids placed since the last [`clear`](Self::clear).
    placed: Vec<u32>,
}

#[inline(always)]
fn clamp(n: i32) -> u32 {
    n.max(0) as u32
}

impl LeastIndex {
    /// An empty index for real-server ids below `max_rs`, with room for
    /// `max_services` services: building it later allocates nothing (while
    /// the servers fit; padding to powers of two at most doubles them).
    pub fn new(max_rs: usize, max_services: usize) -> LeastIndex {
        let leaves = 2 * max_rs + max_services;
        LeastIndex {
            keys: Vec::with_capacity(leaves),
            winners: Vec::with_capacity(2 * leaves),
            trees: Vec::with_capacity(max_services),
            places: vec![NOWHERE; max_rs].into_boxed_slice(),
            placed: Vec::with_capacity(max_rs),
        }
    }

    /// Forget every service (before adding a snapshot's services again).
    pub fn clear(&mut self) {
        for &rs in &self.placed {
            self.places[rs as usize] = NOWHERE;
        }
        self.placed.clear();
        self.keys.clear();
        self.winners.clear();
        self.trees.clear();
    }

    /// Add the next service (services are numbered in the order added)
    /// with its scheduler and its real servers in list order.
    pub fn add_service(&mut self, sched: Scheduler, members: impl IntoIterator<Item = Member>) {
        let number = self.trees.len();
        let (keys, winners, placed) = (self.keys.len(), self.winners.len(), self.placed.len());
        let order = Order::of(sched).filter(|&o| self.push_leaves(o, number, members));
        let leaves = if order.is_some() {
            self.push_winners(keys, winners)
        } else {
            // Undo what a refused service placed.
            for &rs in &self.placed[placed..] {
                self.places[rs as usize] = NOWHERE;
            }
            self.placed.truncate(placed);
            self.keys.truncate(keys);
            0
        };
        self.trees.push(Tree {
            keys: keys as u32,
            winners: winners as u32,
            leaves: leaves as u32,
            order,
        });
    }

    /// Append tree `number`'s leaf keys, padded to a power of two. False if
    /// the index cannot hold them: an id listed twice (configuration
    /// validation rejects that) or out of range, or too many servers. The
    /// service is then left to the scan.
    fn push_leaves(
        &mut self,
        order: Order,
        number: usize,
        members: impl IntoIterator<Item = Member>,
    ) -> bool {
        let base = self.keys.len();
        for (pos, m) in members.into_iter().enumerate() {
            let key = order.key(m.weight, clamp(m.active), clamp(m.inactive));
            self.keys.push(Cell::new(key));
            if key == NEVER {
                continue; // never chosen: its counts need not be followed
            }
            let fits = number < u16::MAX as usize && pos < (u16::MAX / 2) as usize;
            if !fits || self.places.get(m.rs as usize) != Some(&NOWHERE) {
                return false;
            }
            self.places[m.rs as usize] = Place {
                tree: number as u16,
                pos: pos as u16,
            };
            self.placed.push(m.rs);
        }
        let n = self.keys.len() - base;
        let leaves = n.max(1).next_power_of_two();
        self.keys.resize(base + leaves, Cell::new(NEVER));
        true
    }

    /// Append the winner slots of the tree whose keys start at `keys`, play
    /// every match, and return its number of leaves.
    fn push_winners(&mut self, keys: usize, winners: usize) -> usize {
        let leaves = self.keys.len() - keys;
        self.winners.resize(winners + 2 * leaves, Cell::new(0));
        let k = &self.keys[keys..];
        let w = &self.winners[winners..];
        for i in 0..leaves {
            w[leaves + i].set(i as u16);
        }
        for i in (1..leaves).rev() {
            let (a, b) = (w[2 * i].get(), w[2 * i + 1].get());
            let a_wins = wins(k[a as usize].get(), a, k[b as usize].get(), b);
            w[i].set(if a_wins { a } else { b });
        }
        leaves
    }

    /// The scan's choice for service `svc` (an index into its list), `None`
    /// when every server is at weight 0; [`NotIndexed`] when the service
    /// is not indexed.
    #[inline]
    pub fn pick(&self, svc: usize) -> Result<Option<usize>, NotIndexed> {
        match self.trees.get(svc) {
            Some(t) if t.order.is_some() => {
                let w = self.winners[t.winners as usize + 1].get();
                let key = self.keys[t.keys as usize + w as usize].get();
                Ok((key != NEVER).then_some(w as usize))
            }
            _ => Err(NotIndexed),
        }
    }

    /// Real server `rs`'s counts are now `active` and `inactive` (raw, as
    /// the worker's counters hold them): replay its matches. A server in
    /// no indexed service (or at weight 0) is ignored.
    #[inline]
    pub fn set(&self, rs: u32, active: i32, inactive: i32) {
        let Some(&place) = self.places.get(rs as usize) else {
            return;
        };
        if place == NOWHERE {
            return;
        }
        let t = self.trees[place.tree as usize];
        let Some(order) = t.order else { return };
        let leaves = t.leaves as usize;
        let keys = &self.keys[t.keys as usize..][..leaves];
        let winners = &self.winners[t.winners as usize..][..2 * leaves];
        let pos = place.pos;
        let old = keys[pos as usize].get();
        let key = Key {
            load: order.key(old.weight, clamp(active), clamp(inactive)).load,
            ..old
        };
        keys[pos as usize].set(key);
        // Climb from the leaf, carrying the winner of the subtree so far.
        let (mut w, mut wk) = (pos, key);
        let mut slot = leaves + pos as usize;
        while slot > 1 {
            let s = winners[slot ^ 1].get();
            let sk = keys[s as usize].get();
            // The sibling subtree is left of us when `slot` is odd: it wins
            // ties then (its positions are smaller), and `wins` breaks them
            // by position anyway.
            if wins(sk, s, wk, w) {
                (w, wk) = (s, sk);
            }
            slot /= 2;
            // Another server still wins here, as before: nothing above
            // changes (its key did not).
            if w != pos && winners[slot].get() == w {
                return;
            }
            winners[slot].set(w);
        }
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
        for (k, s) in ORDERS.iter().enumerate() {
            assert_eq!(m.index.pick(k), Ok(Some(1)), "{s:?}");
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
