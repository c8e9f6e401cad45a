//! A worker's ActiveConn/InActConn per real server, and the scheduler index
//! that follows them.
//!
//! lc, wlc, sed and nq choose by these counts. Rather than read every real
//! server's counters for each new connection, the worker keeps them ordered
//! in a [`LeastIndex`]; so every change of a count goes through
//! [`ConnCounts::change`], which updates the counter and the index together.
//! Nothing else may write `active`/`inactive` of the worker's stats, or the
//! index would disagree with the counters (debug builds compare the two on
//! every pick, see `Worker::schedule`).

use crate::counters::WorkerStats;
use crate::sched::least::{LeastIndex, Member};

use super::{Snapshot, Worker};

/// The worker's counters and its index, borrowed together (a copyable view:
/// table sweeps and NAT-table callbacks take it while the worker is
/// otherwise borrowed).
#[derive(Clone, Copy)]
pub(super) struct ConnCounts<'a> {
    pub stats: &'a WorkerStats,
    pub least: &'a LeastIndex,
}

impl ConnCounts<'_> {
    /// Real server `rs` gained `d_active` active and `d_inactive` inactive
    /// connections (negative: lost). The counters may go below zero (a
    /// NAT connection counted in by another worker); schedulers read them
    /// clamped at zero.
    #[inline(always)]
    pub fn change(self, rs: u32, d_active: i32, d_inactive: i32) {
        let st = &self.stats.rs[rs as usize];
        if d_active != 0 {
            st.add_active(d_active);
        }
        if d_inactive != 0 {
            st.add_inactive(d_inactive);
        }
        self.least.set(rs, st.active(), st.inactive());
    }
}

/// (Re)build `least` for `snap`'s services from the counters in `stats`
/// (they survive snapshot changes: real-server ids are stable).
pub(super) fn build_index(least: &mut LeastIndex, snap: &Snapshot, stats: &WorkerStats) {
    least.clear();
    for svc in &snap.services {
        least.add_service(
            svc.scheduler,
            svc.reals.iter().map(|r| {
                let st = stats.rs.get(r.id as usize);
                Member {
                    rs: r.id,
                    weight: r.weight,
                    active: st.map_or(0, |s| s.active()),
                    inactive: st.map_or(0, |s| s.inactive()),
                }
            }),
        );
    }
}

impl Worker {
    /// The counters and index, for code that changes connection counts.
    #[inline(always)]
    pub(super) fn counts(&self) -> ConnCounts<'_> {
        ConnCounts {
            stats: &self.stats,
            least: &self.least,
        }
    }

    /// Real server `rs` gained (or lost, negative) connections: the one
    /// place a worker's ActiveConn/InActConn change (see the module notes).
    #[inline(always)]
    pub(super) fn conn_counts(&self, rs: u32, d_active: i32, d_inactive: i32) {
        self.counts().change(rs, d_active, d_inactive);
    }
}
