//! The worker's lc/wlc/sed/nq index follows its connection counts: after
//! any sequence of packets, expiries and reconfigurations, the index's
//! choice is the scan's over the worker's counters (`sched::lc`,
//! `sched::sed`, the reference implementations).

use super::*;
use crate::conntrack::shared::SharedConnTable;
use crate::neigh::ClientMacs;
use crate::pipeline::nat::NatState;
use crate::sched::{lc, sed, Candidate};
use proptest::prelude::*;

const INT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xe1]);
const SCHEDULERS: [&str; 4] = ["Lc", "Wlc", "Sed", "Nq"];
/// Real servers: the first half by DR, the second by NAT (one service may
/// mix them), so both connection tables' accounting is exercised.
const REALS: usize = 6;

fn config(sched: &str, weights: &[u32]) -> Config {
    let reals: String = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i < REALS / 2 {
                format!(r#"(address: "198.18.0.{}", weight: {w}),"#, 11 + i)
            } else {
                format!(
                    r#"(address: "198.19.0.{}", weight: {w}, forward: Nat),"#,
                    11 + i
                )
            }
        })
        .collect();
    ron::from_str(&format!(
        r#"(
            ports: [(name: "ext", device: "net_null0", address: "198.18.0.2/24"),
                    (name: "int", device: "net_null1", address: "198.19.0.1/24")],
            eal: (cores: "0-2"),
            services: [(vip: "198.18.0.100", port: 80, scheduler: {sched}, real_servers: [{reals}])],
        )"#
    ))
    .unwrap()
}

struct IndexLab {
    w: Worker,
    neigh: Arc<NeighTable>,
    reg: Registry,
    sched: &'static str,
    generation: u64,
}

impl IndexLab {
    fn new(sched: &'static str, weights: &[u32]) -> IndexLab {
        let cfg = config(sched, weights);
        let problems = crate::config::validate(&cfg);
        assert!(problems.is_empty(), "{problems:?}");
        let neigh = Arc::new(NeighTable::new(64));
        let mut reg = Registry::default();
        let snap = Snapshot::build(&cfg, &[DIR_MAC, INT_MAC], &mut reg, &neigh, 1).unwrap();
        for e in neigh.entries() {
            neigh.learn(e.slot, e.ip, RS1_MAC, 0);
        }
        let nat = NatState::new(
            Arc::new(SharedConnTable::new(1024, 3)),
            Arc::new(ClientMacs::new(64)),
            0,
            1,
        );
        let w = Worker::new(
            Arc::new(snap),
            ConnTable::new(1024, 5),
            Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
            neigh.clone(),
        )
        .with_nat(nat);
        IndexLab {
            w,
            neigh,
            reg,
            sched,
            generation: 1,
        }
    }

    fn reconfigure(&mut self, weights: &[u32]) {
        self.generation += 1;
        let cfg = config(self.sched, weights);
        let snap = Snapshot::build(
            &cfg,
            &[DIR_MAC, INT_MAC],
            &mut self.reg,
            &self.neigh,
            self.generation,
        )
        .unwrap();
        self.w.set_snapshot(Arc::new(snap));
    }

    /// The scan's choice over the worker's counters.
    fn scan(&self) -> Option<usize> {
        let svc = &self.w.snapshot().services[0];
        let cands: Vec<Candidate> = svc
            .reals
            .iter()
            .map(|r| {
                let st = &self.w.stats().rs[r.id as usize];
                Candidate {
                    weight: r.weight,
                    active: st.active().max(0) as u32,
                    inactive: st.inactive().max(0) as u32,
                }
            })
            .collect();
        match self.sched {
            "Lc" => lc::least_connection(&cands),
            "Wlc" => lc::weighted_least_connection(&cands),
            "Sed" => sed::shortest_expected_delay(&cands),
            _ => sed::never_queue(&cands),
        }
    }
}

/// A segment from NAT real server `i` to the client's port `cport`.
fn reply(i: usize, cport: u16, kind: u8) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(RS1_MAC.0, INT_MAC.0)
        .ipv4([198, 19, 0, 11 + i as u8], CLIENT, 64)
        .tcp(80, cport, 5000, 65535);
    b = match kind {
        0 => b.syn().ack(1001),
        1 => b.ack(1001),
        2 => b.fin().ack(1001),
        _ => b.rst(),
    };
    let mut out = Vec::new();
    b.write(&mut out, b"").unwrap();
    out
}

#[derive(Debug, Clone)]
enum Step {
    /// A client segment on flow `flow`: SYN, ACK, FIN+ACK or RST.
    Segment { flow: u16, kind: u8 },
    /// A NAT real server's answer on flow `flow` (sent from each NAT
    /// server: the one that has the flow takes it): SYN+ACK, ACK, FIN+ACK
    /// or RST.
    Reply { flow: u16, kind: u8 },
    /// Time passes; the worker sweeps its tables.
    Wait(u32),
    /// A new snapshot with these weights.
    Reweight(Vec<u32>),
}

fn weights() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(prop_oneof![4 => 0..4u32, 1 => 1..65535u32], REALS)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..24u16, 0..4u8).prop_map(|(flow, kind)| Step::Segment { flow, kind }),
        6 => (0..24u16, 0..4u8).prop_map(|(flow, kind)| Step::Reply { flow, kind }),
        2 => (1..1_000_000u32).prop_map(Step::Wait),
        1 => weights().prop_map(Step::Reweight),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn the_index_follows_the_counts(
        sched in 0..4usize,
        start in weights(),
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let mut l = IndexLab::new(SCHEDULERS[sched], &start);
        let mut now: Tick = 0;
        prop_assert_eq!(l.w.least.pick(0), Ok(l.scan()));
        for s in steps {
            match s {
                Step::Segment { flow, kind } => {
                    let (syn, ack, fin, rst) = match kind {
                        0 => (true, false, false, false),
                        1 => (false, true, false, false),
                        2 => (false, true, true, false),
                        _ => (false, false, false, true),
                    };
                    let mut f = tcp_frame(40000 + flow, 80, syn, ack, fin, rst);
                    l.w.process(&mut f, 0, now);
                }
                Step::Reply { flow, kind } => {
                    for i in REALS / 2..REALS {
                        let mut f = reply(i, 40000 + flow, kind);
                        l.w.process(&mut f, 1, now);
                    }
                }
                Step::Wait(ms) => {
                    now = now.wrapping_add(ms);
                    l.w.housekeeping(now, 1 << 20);
                }
                Step::Reweight(w) => l.reconfigure(&w),
            }
            prop_assert_eq!(l.w.least.pick(0), Ok(l.scan()));
        }
    }
}
