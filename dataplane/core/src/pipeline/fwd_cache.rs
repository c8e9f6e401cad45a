//! The worker's forward plans: per real server reached by DR, the 12 bytes
//! a DR rewrite writes (the server's MAC, then our egress port's) and the
//! egress port, so that an established DR flow's packet writes them and is
//! sent without looking up its route, its neighbour and its port's MAC.
//!
//! **What a plan depends on, and when it is dropped.** A plan is made from
//! the snapshot's route of the real server (egress port, neighbour slot,
//! method, local or not), the port's MAC (the snapshot's too) and the
//! neighbour's MAC (the shared [`NeighTable`](crate::neigh::NeighTable)).
//! All plans are dropped together ([`FwdCache::invalidate`]: one epoch
//! bump, no walk) when
//!
//! - the worker switches snapshots (`Worker::set_snapshot`), and
//! - the neighbour table's generation moved: every change of a slot's MAC
//!   (learned, expired, assigned, released) bumps it. The worker compares
//!   it at each entry point that processes frames, and right after it
//!   learns a MAC itself from ARP or NDP (in the middle of a burst too:
//!   the plans are dropped before the next frame). A change made by another thread (the control thread's expiry,
//!   another worker's learn) is seen from the worker's next burst on: what
//!   the burst's frames would have seen had the change come a few
//!   microseconds later, as the per-packet read never promised more.
//!
//! Only resolved neighbours get a plan: an unresolved one takes the full
//! path, which asks for it (`NeighTable::want`) and drops the packet.

use super::plan_epoch::{PlanEpoch, NEVER};
use super::snapshot::MAX_REAL_SERVERS;

/// One real server's plan: 16 bytes, so that a lookup is one shift.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Plan {
    /// Destination MAC (the real server's), then source MAC (our port's).
    hdr: [u8; 12],
    /// Egress port index.
    port: u16,
    /// Valid while equal to the cache's epoch.
    epoch: u16,
}

impl Plan {
    /// Mark the plan never made.
    fn unmake(&mut self) {
        self.epoch = NEVER;
    }
}

/// The forward plans of one worker, by real server id.
pub(crate) struct FwdCache {
    plans: Box<[Plan; MAX_REAL_SERVERS]>,
    /// The plans made since the last invalidation carry it.
    epoch: PlanEpoch,
}

impl FwdCache {
    pub fn new(neigh_gen: u64) -> FwdCache {
        let empty = Plan {
            hdr: [0; 12],
            port: 0,
            epoch: NEVER,
        };
        FwdCache {
            plans: Box::new([empty; MAX_REAL_SERVERS]),
            epoch: PlanEpoch::new(neigh_gen),
        }
    }

    /// Drop every plan.
    pub fn invalidate(&mut self) {
        self.epoch.advance(&mut self.plans[..], Plan::unmake);
    }

    /// Drop every plan if the neighbour table's generation is no longer
    /// `gen`'s.
    pub fn check_neigh(&mut self, gen: u64) {
        self.epoch
            .check_neigh(gen, &mut self.plans[..], Plan::unmake);
    }

    /// Real server `rs`'s plan, if one is valid: writes its 12 bytes at
    /// the start of `frame` (at least an Ethernet header: every frame
    /// forwarded passed the classifier's check) and returns the egress
    /// port.
    #[inline(always)]
    pub fn apply(&self, rs: u32, frame: &mut [u8]) -> Option<u16> {
        let p = self.plans.get(rs as usize)?;
        if p.epoch != self.epoch.current() {
            return None;
        }
        if let Some(h) = frame.first_chunk_mut::<12>() {
            *h = p.hdr;
        }
        Some(p.port)
    }

    /// Record real server `rs`'s plan: `hdr` to write, sent on `port`.
    #[inline]
    pub fn record(&mut self, rs: u32, hdr: [u8; 12], port: u16) {
        if let Some(p) = self.plans.get_mut(rs as usize) {
            *p = Plan {
                hdr,
                port,
                epoch: self.epoch.current(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: [u8; 12] = [2, 0, 0, 0, 0, 0x11, 2, 0, 0, 0, 0, 1];

    fn applied(c: &FwdCache, rs: u32) -> Option<(u16, [u8; 12])> {
        let mut f = [0u8; 14];
        let port = c.apply(rs, &mut f)?;
        Some((port, f[..12].try_into().unwrap()))
    }

    #[test]
    fn a_recorded_plan_applies_until_invalidated() {
        let mut c = FwdCache::new(7);
        assert_eq!(applied(&c, 3), None);
        c.record(3, HDR, 1);
        assert_eq!(applied(&c, 3), Some((1, HDR)));
        assert_eq!(applied(&c, 4), None);
        c.invalidate();
        assert_eq!(applied(&c, 3), None);
    }

    #[test]
    fn a_neighbour_generation_change_drops_the_plans() {
        let mut c = FwdCache::new(7);
        c.record(3, HDR, 1);
        c.check_neigh(7);
        assert_eq!(applied(&c, 3), Some((1, HDR)));
        c.check_neigh(8);
        assert_eq!(applied(&c, 3), None);
        c.record(3, HDR, 2);
        c.check_neigh(8);
        assert_eq!(applied(&c, 3), Some((2, HDR)));
    }

    #[test]
    fn out_of_range_servers_have_no_plan() {
        let mut c = FwdCache::new(0);
        c.record(MAX_REAL_SERVERS as u32, HDR, 1);
        assert_eq!(applied(&c, MAX_REAL_SERVERS as u32), None);
    }

    #[test]
    fn the_epoch_wrapping_round_never_revives_a_plan() {
        let mut c = FwdCache::new(0);
        c.record(3, HDR, 1);
        // A plan made in the first epoch must stay dead when the epoch
        // counter comes round to the same value.
        for _ in 0..u16::MAX as usize + 2 {
            c.invalidate();
            assert_eq!(applied(&c, 3), None);
        }
        c.record(5, HDR, 1);
        assert_eq!(applied(&c, 5), Some((1, HDR)));
    }

    #[test]
    fn a_short_frame_is_left_alone() {
        let mut c = FwdCache::new(0);
        c.record(3, HDR, 1);
        let mut f = [9u8; 6];
        assert_eq!(c.apply(3, &mut f), Some(1));
        assert_eq!(f, [9u8; 6]);
    }
}
