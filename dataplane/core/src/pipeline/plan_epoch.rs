//! The epoch of a worker's per-real-server plans (`fwd_cache.rs`,
//! `tunnel_plan.rs`): a plan is valid while it carries its cache's epoch,
//! so dropping every plan is one increment, not a walk; and the neighbour
//! table's generation the plans were made under, since every plan holds a
//! neighbour's MAC.

/// Never a cache's epoch: the mark of a plan never made.
pub(crate) const NEVER: u16 = 0;

/// One cache's epoch and the neighbour generation its plans were made
/// under.
pub(crate) struct PlanEpoch {
    current: u16,
    neigh_gen: u64,
}

impl PlanEpoch {
    pub fn new(neigh_gen: u64) -> PlanEpoch {
        PlanEpoch {
            current: NEVER + 1,
            neigh_gen,
        }
    }

    /// The epoch a plan made now carries.
    #[inline(always)]
    pub fn current(&self) -> u16 {
        self.current
    }

    /// Move to a new epoch: every plan made before is dropped. Once every
    /// 65 535 calls the counter comes round, and then every plan of
    /// `plans` is marked never made by `unmake`, or the plans of the epoch
    /// about to come round again would come back to life.
    pub fn advance<P>(&mut self, plans: &mut [P], unmake: fn(&mut P)) {
        self.current = self.current.wrapping_add(1);
        if self.current == NEVER {
            plans.iter_mut().for_each(unmake);
            self.current = NEVER + 1;
        }
    }

    /// [`advance`](Self::advance) if the neighbour table's generation is
    /// no longer `gen`'s (between frames, never per packet on the planned
    /// path).
    pub fn check_neigh<P>(&mut self, gen: u64, plans: &mut [P], unmake: fn(&mut P)) {
        if self.is_stale(gen) {
            self.neigh_gen = gen;
            self.advance(plans, unmake);
        }
    }

    /// Whether the neighbour table's generation `gen` is not the plans'.
    #[inline(always)]
    pub fn is_stale(&self, gen: u64) -> bool {
        gen != self.neigh_gen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_comes_round_once_every_65535_epochs_never_at_never() {
        let mut e = PlanEpoch::new(0);
        let first = e.current();
        let mut plans = [first];
        for i in 1..=u16::MAX as usize {
            e.advance(&mut plans, |p| *p = NEVER);
            assert_ne!(e.current(), NEVER);
            // Marked never made exactly when the counter came round.
            assert_eq!(plans[0] == NEVER, i == u16::MAX as usize, "after {i}");
        }
        assert_eq!(e.current(), first);
    }

    #[test]
    fn a_generation_moved_drops_the_plans_once() {
        let mut e = PlanEpoch::new(7);
        let first = e.current();
        assert!(!e.is_stale(7));
        e.check_neigh(7, &mut [0u8; 0], |_| {});
        assert_eq!(e.current(), first);
        assert!(e.is_stale(8));
        e.check_neigh(8, &mut [0u8; 0], |_| {});
        assert_eq!(e.current(), first + 1);
        assert!(!e.is_stale(8));
        e.check_neigh(8, &mut [0u8; 0], |_| {});
        assert_eq!(e.current(), first + 1);
    }
}
