//! Real-server schedulers: which real server gets a new connection.
//!
//! Each worker schedules with its own state and its own connection counts
//! (DPVS does the same per lcore): no shared cache lines on the hot path.
//! With RSS spreading clients evenly, the sum over workers follows the
//! weights; with one worker it is exactly IPVS's behaviour.
//!
//! The hashing schedulers (sh, mh) need no counts: their lookup tables are
//! built with the snapshot ([`Tables::build`]) and shared read-only by all
//! workers, so every worker sends a client address to the same server.
//!
//! Weight 0 means quiesced: such a server gets no new connections from any
//! scheduler, while its existing connections continue.

mod fo;
#[cfg(test)]
mod golden;
mod hashing;
mod inputs;
pub mod lc;
pub mod least;
mod maglev;
mod rr;
pub mod sed;
mod sh;
mod wrr;

pub use inputs::{Candidate, Member};

use crate::config::Scheduler;

/// Per-service mutable scheduler state, owned by one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedState {
    rr: rr::RrState,
    wrr: wrr::WrrState,
}

/// A service's precomputed lookup tables (sh and mh only), built when the
/// snapshot is compiled; indices refer to the service's real-server list.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Tables {
    /// The scheduler needs no table.
    #[default]
    None,
    /// Source hashing: buckets shared by weight.
    Sh(sh::ShTable),
    /// Maglev consistent hashing.
    Mh(maglev::MaglevTable),
}

impl Tables {
    /// The tables `sched` needs for these servers (in the service's order).
    pub fn build(sched: Scheduler, members: &[Member]) -> Tables {
        match sched {
            Scheduler::Sh => {
                let w: Vec<u32> = members.iter().map(|m| m.weight).collect();
                Tables::Sh(sh::ShTable::build(&w))
            }
            Scheduler::Mh => Tables::Mh(maglev::MaglevTable::build(members)),
            _ => Tables::None,
        }
    }

    /// Number of entries in the table (0 for none).
    pub fn len(&self) -> usize {
        match self {
            Tables::None => 0,
            Tables::Sh(t) => t.len(),
            Tables::Mh(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Tables {
    // The tables are large: show their kind and size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tables::None => f.write_str("None"),
            Tables::Sh(t) => write!(f, "Sh({} buckets)", t.len()),
            Tables::Mh(t) => write!(f, "Mh({} entries)", t.len()),
        }
    }
}

/// What a scheduler may look at besides the candidates.
#[derive(Debug, Clone, Copy)]
pub struct PickCtx<'a> {
    /// The client's address: what sh and mh hash (its octets, so an IPv6
    /// client's full 128 bits count).
    pub client: std::net::IpAddr,
    /// The service's tables.
    pub tables: &'a Tables,
}

/// Pick a candidate index for a new connection, or `None` when every
/// candidate is quiesced (weight 0) or there are none.
#[inline]
pub fn pick(
    sched: Scheduler,
    cands: &[Candidate],
    st: &mut SchedState,
    ctx: &PickCtx,
) -> Option<usize> {
    match sched {
        Scheduler::Rr => st.rr.pick(cands),
        Scheduler::Wrr => st.wrr.pick(cands),
        Scheduler::Lc => lc::least_connection(cands),
        Scheduler::Wlc => lc::weighted_least_connection(cands),
        Scheduler::Sed => sed::shortest_expected_delay(cands),
        Scheduler::Nq => sed::never_queue(cands),
        Scheduler::Fo => fo::weighted_failover(cands),
        Scheduler::Sh | Scheduler::Mh => {
            let i = match ctx.tables {
                Tables::Sh(t) => t.lookup_addr(&ctx.client),
                Tables::Mh(t) => t.lookup_addr(&ctx.client),
                Tables::None => None,
            }?;
            // Tables and candidates come from the same snapshot; a quiesced
            // server owns no entry, but never trust a stale table.
            cands.get(i).filter(|c| c.weight > 0).map(|_| i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hashing::{apportion, mix64};
    use super::*;

    pub(crate) fn cands(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .map(|&w| Candidate {
                weight: w,
                active: 0,
                inactive: 0,
            })
            .collect()
    }

    const ALL: [Scheduler; 9] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Sh,
        Scheduler::Mh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
    ];

    /// Tables for candidates with these weights (addresses 10.0.1.1, …).
    fn tables(s: Scheduler, c: &[Candidate]) -> Tables {
        let members: Vec<Member> = c
            .iter()
            .enumerate()
            .map(|(i, c)| Member {
                addr: std::net::Ipv4Addr::from(0x0a00_0101 + i as u32).into(),
                port: 80,
                weight: c.weight,
            })
            .collect();
        Tables::build(s, &members)
    }

    /// A pseudo-random client address for the n-th pick.
    fn client(n: usize) -> u32 {
        mix64(n as u64 ^ 0x00c1_1e47) as u32
    }

    fn pick_for(
        s: Scheduler,
        c: &[Candidate],
        st: &mut SchedState,
        t: &Tables,
        client_ip: u32,
    ) -> Option<usize> {
        pick(
            s,
            c,
            st,
            &PickCtx {
                client: std::net::Ipv4Addr::from(client_ip).into(),
                tables: t,
            },
        )
    }

    #[test]
    fn empty_and_all_quiesced_give_none() {
        for s in ALL {
            let mut st = SchedState::default();
            let none = Tables::None;
            assert_eq!(pick_for(s, &[], &mut st, &none, 1), None, "{s:?}");
            let c = cands(&[0, 0]);
            let t = tables(s, &c);
            for ip in 0..50 {
                assert_eq!(pick_for(s, &c, &mut st, &t, client(ip)), None, "{s:?}");
            }
        }
    }

    #[test]
    fn quiesced_server_never_picked() {
        for s in ALL {
            let mut st = SchedState::default();
            let mut c = cands(&[1, 0, 1]);
            let t = tables(s, &c);
            for n in 0..1000 {
                let i = pick_for(s, &c, &mut st, &t, client(n)).unwrap();
                assert_ne!(i, 1, "{s:?}");
                c[i].active += 1;
            }
        }
    }

    #[test]
    fn hashing_schedulers_need_their_table() {
        let c = cands(&[1, 1]);
        let mut st = SchedState::default();
        for s in [Scheduler::Sh, Scheduler::Mh] {
            assert_eq!(pick_for(s, &c, &mut st, &Tables::None, 7), None);
            // A table built for a longer list never indexes past the end.
            let t = tables(s, &cands(&[1; 8]));
            for n in 0..200 {
                if let Some(i) = pick_for(s, &c, &mut st, &t, client(n)) {
                    assert!(i < 2);
                }
            }
        }
        assert_eq!(
            format!("{:?}", tables(Scheduler::Sh, &c)),
            "Sh(256 buckets)"
        );
        assert_eq!(
            format!("{:?}", tables(Scheduler::Mh, &c)),
            "Mh(65537 entries)"
        );
        assert!(tables(Scheduler::Wlc, &c).is_empty());
    }

    #[test]
    fn hashing_schedulers_ignore_load_and_stick() {
        for s in [Scheduler::Sh, Scheduler::Mh] {
            let mut c = cands(&[1, 1, 1]);
            let t = tables(s, &c);
            let mut st = SchedState::default();
            for n in 0..100 {
                let ip = client(n);
                let first = pick_for(s, &c, &mut st, &t, ip).unwrap();
                c[first].active += 1000;
                assert_eq!(pick_for(s, &c, &mut st, &t, ip), Some(first), "{s:?}");
            }
        }
    }

    #[test]
    fn apportion_is_exact_and_gives_every_live_server_one() {
        assert_eq!(apportion(&[3, 0, 1], 256), [192, 0, 64]);
        assert_eq!(apportion(&[1, 1, 1], 10), [4, 3, 3]);
        assert_eq!(apportion(&[65535, 1], 4), [3, 1]);
        assert_eq!(apportion(&[0, 0], 4), [0, 0]);
        assert_eq!(apportion(&[], 4), Vec::<usize>::new());
        let w = [7, 13, 1, 0, 400];
        assert_eq!(apportion(&w, 65537).iter().sum::<usize>(), 65537);
    }

    /// Simulate connections that each live `life` picks, under a scheduler,
    /// and return how many each candidate received. Every pick comes from a
    /// new client address.
    fn simulate(s: Scheduler, weights: &[u32], picks: usize, life: usize) -> Vec<usize> {
        let mut c = cands(weights);
        let t = tables(s, &c);
        let mut st = SchedState::default();
        let mut got = vec![0; weights.len()];
        let mut live: std::collections::VecDeque<usize> = Default::default();
        for n in 0..picks {
            if live.len() == life {
                let old = live.pop_front().unwrap();
                c[old].active -= 1;
            }
            let i = pick_for(s, &c, &mut st, &t, client(n)).unwrap();
            got[i] += 1;
            c[i].active += 1;
            live.push_back(i);
        }
        got
    }

    #[test]
    fn weighted_schedulers_follow_weights() {
        for s in [
            Scheduler::Wrr,
            Scheduler::Wlc,
            Scheduler::Sed,
            Scheduler::Nq,
            Scheduler::Sh,
            Scheduler::Mh,
        ] {
            // Hashing schedulers follow the weights statistically: more
            // clients keep the noise well inside the tolerance.
            let picks = if matches!(s, Scheduler::Sh | Scheduler::Mh) {
                10
            } else {
                1
            };
            let got = simulate(s, &[3, 1], 4000 * picks, 40);
            let share = got[0] as f64 / (4000 * picks) as f64;
            assert!((share - 0.75).abs() < 0.02, "{s:?}: {got:?}");
            let got = simulate(s, &[5, 3, 2], 10_000 * picks, 100);
            for (g, w) in got.iter().zip([5.0, 3.0, 2.0]) {
                let share = *g as f64 / (10_000 * picks) as f64;
                assert!((share - w / 10.0).abs() < 0.02, "{s:?}: {got:?}");
            }
        }
    }

    #[test]
    fn unweighted_schedulers_spread_evenly() {
        for s in [Scheduler::Rr, Scheduler::Lc] {
            let got = simulate(s, &[3, 1, 7], 3000, 30);
            for g in &got {
                assert!((*g as i64 - 1000).abs() <= 15, "{s:?}: {got:?}");
            }
        }
    }

    /// IPv6 clients spread over the servers whether they differ in the
    /// network half of the address, the interface half, or only in bits a
    /// truncation to 32 or 64 bits would drop; IPv4 clients give what the
    /// IPv4 lookup gives.
    #[test]
    fn hashing_schedulers_hash_the_whole_ipv6_address() {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let members: Vec<Member> = (0..4u128)
            .map(|i| Member {
                addr: IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (0x10 + i))),
                port: 80,
                weight: 1,
            })
            .collect();
        let base = 0x2001_0db8u128 << 96;
        type Vary = (&'static str, fn(u128) -> u128);
        let varying: [Vary; 3] = [
            ("network half", |i| i << 64),
            ("interface half", |i| i),
            ("bits 64..80 only", |i| (i & 0xffff) << 64),
        ];
        for s in [Scheduler::Sh, Scheduler::Mh] {
            let t = Tables::build(s, &members);
            for (what, f) in varying {
                let mut per = [0usize; 4];
                for i in 1..=4000u128 {
                    let c = IpAddr::V6(Ipv6Addr::from(base | f(i)));
                    let i = match &t {
                        Tables::Sh(t) => t.lookup_addr(&c),
                        Tables::Mh(t) => t.lookup_addr(&c),
                        Tables::None => None,
                    };
                    per[i.unwrap()] += 1;
                }
                for n in per {
                    assert!((800..=1200).contains(&n), "{s:?}, {what}: {per:?}");
                }
            }
            for n in 0..200 {
                let ip = client(n);
                let (a, b) = match &t {
                    Tables::Sh(t) => (t.lookup(ip), t.lookup_addr(&Ipv4Addr::from(ip).into())),
                    Tables::Mh(t) => (t.lookup(ip), t.lookup_addr(&Ipv4Addr::from(ip).into())),
                    Tables::None => unreachable!(),
                };
                assert_eq!(a, b, "{s:?}");
            }
        }
        assert_eq!(
            super::hashing::addr_word(&Ipv4Addr::new(198, 18, 0, 1).into()),
            0xC612_0001
        );
    }

    #[test]
    fn failover_takes_everything() {
        let got = simulate(Scheduler::Fo, &[3, 5, 1], 1000, 10);
        assert_eq!(got, [0, 1000, 0]);
    }
}
