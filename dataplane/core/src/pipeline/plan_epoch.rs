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

    /// Move to a new epoch (every plan made before is dropped). True once
    /// every 65 535 calls, when the counter comes round: the caller must
    /// then mark every plan [`NEVER`], or the plans of the epoch about to
    /// come round again would come back to life.
    #[must_use]
    pub fn advance(&mut self) -> bool {
        self.current = self.current.wrapping_add(1);
        if self.current == NEVER {
            self.current = NEVER + 1;
            return true;
        }
        false
    }

    /// Whether the neighbour table's generation `gen` is not the plans'.
    #[inline(always)]
    pub fn is_stale(&self, gen: u64) -> bool {
        gen != self.neigh_gen
    }

    /// Take the neighbour table's generation `gen`: true when it moved
    /// since the plans were made (the caller then drops them).
    #[must_use]
    pub fn take_neigh_gen(&mut self, gen: u64) -> bool {
        let moved = self.is_stale(gen);
        self.neigh_gen = gen;
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_comes_round_once_every_65535_epochs_never_at_never() {
        let mut e = PlanEpoch::new(0);
        let first = e.current();
        let mut rounds = 0;
        for _ in 0..u16::MAX as usize {
            rounds += usize::from(e.advance());
            assert_ne!(e.current(), NEVER);
        }
        assert_eq!(rounds, 1);
        assert_eq!(e.current(), first);
    }

    #[test]
    fn a_generation_moved_is_told_once() {
        let mut e = PlanEpoch::new(7);
        assert!(!e.is_stale(7));
        assert!(!e.take_neigh_gen(7));
        assert!(e.is_stale(8));
        assert!(e.take_neigh_gen(8));
        assert!(!e.take_neigh_gen(8));
    }
}
