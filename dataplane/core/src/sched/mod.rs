//! Real-server schedulers: which real server gets a new connection.
//!
//! Each worker schedules with its own state and its own connection counts
//! (DPVS does the same per lcore): no shared cache lines on the hot path.
//! With RSS spreading clients evenly, the sum over workers follows the
//! weights; with one worker it is exactly IPVS's behaviour.
//!
//! Weight 0 means quiesced: such a server gets no new connections from any
//! scheduler, while its existing connections continue.

mod lc;
mod rr;
mod wrr;

use crate::config::Scheduler;

/// What a scheduler needs to know about one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub weight: u32,
    /// Established connections (ipvsadm's ActiveConn).
    pub active: u32,
    /// Other connections (ipvsadm's InActConn).
    pub inactive: u32,
}

impl Candidate {
    /// IPVS's load estimate for lc/wlc: active connections weigh 256 times
    /// more than inactive ones (a SYN_RECV or FIN_WAIT entry costs little).
    #[inline]
    pub fn overhead(&self) -> u64 {
        ((self.active as u64) << 8) + self.inactive as u64
    }
}

/// Per-service mutable scheduler state, owned by one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedState {
    rr: rr::RrState,
    wrr: wrr::WrrState,
}

/// Pick a candidate index for a new connection, or `None` when every
/// candidate is quiesced (weight 0) or there are none.
#[inline]
pub fn pick(sched: Scheduler, cands: &[Candidate], st: &mut SchedState) -> Option<usize> {
    match sched {
        Scheduler::Rr => st.rr.pick(cands),
        Scheduler::Wrr => st.wrr.pick(cands),
        Scheduler::Lc => lc::least_connection(cands),
        Scheduler::Wlc => lc::weighted_least_connection(cands),
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn empty_and_all_quiesced_give_none() {
        for s in [Scheduler::Rr, Scheduler::Wrr, Scheduler::Lc, Scheduler::Wlc] {
            let mut st = SchedState::default();
            assert_eq!(pick(s, &[], &mut st), None, "{s:?}");
            assert_eq!(pick(s, &cands(&[0, 0]), &mut st), None, "{s:?}");
        }
    }

    #[test]
    fn quiesced_server_never_picked() {
        for s in [Scheduler::Rr, Scheduler::Wrr, Scheduler::Lc, Scheduler::Wlc] {
            let mut st = SchedState::default();
            let mut c = cands(&[1, 0, 1]);
            for _ in 0..100 {
                let i = pick(s, &c, &mut st).unwrap();
                assert_ne!(i, 1, "{s:?}");
                c[i].active += 1;
            }
        }
    }

    /// Simulate connections that each live `life` picks, under a scheduler,
    /// and return how many each candidate received.
    fn simulate(s: Scheduler, weights: &[u32], picks: usize, life: usize) -> Vec<usize> {
        let mut c = cands(weights);
        let mut st = SchedState::default();
        let mut got = vec![0; weights.len()];
        let mut live: std::collections::VecDeque<usize> = Default::default();
        for _ in 0..picks {
            if live.len() == life {
                let old = live.pop_front().unwrap();
                c[old].active -= 1;
            }
            let i = pick(s, &c, &mut st).unwrap();
            got[i] += 1;
            c[i].active += 1;
            live.push_back(i);
        }
        got
    }

    #[test]
    fn weighted_schedulers_follow_weights() {
        for s in [Scheduler::Wrr, Scheduler::Wlc] {
            let got = simulate(s, &[3, 1], 4000, 40);
            let share = got[0] as f64 / 4000.0;
            assert!((share - 0.75).abs() < 0.02, "{s:?}: {got:?}");
            let got = simulate(s, &[5, 3, 2], 10_000, 100);
            for (g, w) in got.iter().zip([5.0, 3.0, 2.0]) {
                let share = *g as f64 / 10_000.0;
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
}
