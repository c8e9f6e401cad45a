//! Idle backoff for poll-mode workers (`workers.idle_sleep_us`).
//!
//! A poll-mode worker spins on its RX queue: 100 % of a core even when no
//! packet comes. With `idle_sleep_us` set, a worker that has found its
//! queue empty [`EMPTY_POLLS_BEFORE_SLEEP`] times in a row sleeps that
//! long before each further poll, until a poll returns packets again; the
//! first non-empty poll puts it back to spinning at once. The idea of
//! DPDK's l3fwd-power, without interrupts: a quiet director gives its
//! cores back, at the price of up to one sleep (plus the kernel's timer
//! slack, 50 µs by default) of latency for the first packet after a quiet
//! spell — packets that arrive meanwhile wait in the NIC's RX ring, which
//! must hold what arrives during one sleep.

use std::time::Duration;

/// Empty polls in a row after which a worker starts sleeping. Long enough
/// that the gaps between packets of a loaded director (a few µs of empty
/// polls) never reach it, short enough that an idle worker sleeps within
/// a fraction of a millisecond: an empty poll takes well under a
/// microsecond on a NIC queue.
pub const EMPTY_POLLS_BEFORE_SLEEP: u32 = 1024;

/// One worker's count of empty polls and what it does about them.
#[derive(Debug, Clone)]
pub struct IdleBackoff {
    /// The sleep between polls once idle; None: always busy-poll.
    sleep: Option<Duration>,
    /// Empty polls since the last one that returned packets.
    empty_run: u32,
}

impl IdleBackoff {
    /// `idle_sleep_us` from the configuration (None or 0: never sleep).
    pub fn new(idle_sleep_us: Option<u32>) -> IdleBackoff {
        IdleBackoff {
            sleep: idle_sleep_us
                .filter(|&us| us > 0)
                .map(|us| Duration::from_micros(u64::from(us))),
            empty_run: 0,
        }
    }

    /// A poll returned `received` packets: how long to sleep before the
    /// next one (None: poll again at once).
    #[inline]
    pub fn after_poll(&mut self, received: usize) -> Option<Duration> {
        if received > 0 {
            self.empty_run = 0;
            return None;
        }
        let sleep = self.sleep?;
        self.empty_run = self.empty_run.saturating_add(1);
        (self.empty_run > EMPTY_POLLS_BEFORE_SLEEP).then_some(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(50);

    /// Sleeps asked for over `polls` (packets per poll).
    fn sleeps(b: &mut IdleBackoff, polls: impl IntoIterator<Item = usize>) -> Vec<bool> {
        polls
            .into_iter()
            .map(|n| b.after_poll(n).is_some())
            .collect()
    }

    #[test]
    fn without_a_sleep_it_always_busy_polls() {
        for cfg in [None, Some(0)] {
            let mut b = IdleBackoff::new(cfg);
            let n = EMPTY_POLLS_BEFORE_SLEEP as usize * 3;
            assert!(sleeps(&mut b, vec![0; n]).iter().all(|s| !s), "{cfg:?}");
        }
    }

    #[test]
    fn sleeps_after_the_threshold_of_empty_polls() {
        let mut b = IdleBackoff::new(Some(50));
        let t = EMPTY_POLLS_BEFORE_SLEEP as usize;
        let s = sleeps(&mut b, vec![0; t]);
        assert!(s.iter().all(|s| !s), "no sleep within the threshold");
        assert_eq!(b.after_poll(0), Some(US));
        assert_eq!(b.after_poll(0), Some(US), "and at every empty poll after");
    }

    #[test]
    fn traffic_resets_the_count() {
        let mut b = IdleBackoff::new(Some(50));
        let t = EMPTY_POLLS_BEFORE_SLEEP as usize;
        sleeps(&mut b, vec![0; t + 5]);
        assert_eq!(b.after_poll(3), None, "packets: no sleep");
        // A full threshold of empty polls again before the next sleep.
        assert!(sleeps(&mut b, vec![0; t]).iter().all(|s| !s));
        assert_eq!(b.after_poll(0), Some(US));
        // Sparse traffic (one packet now and then) never sleeps.
        let mut b = IdleBackoff::new(Some(50));
        for _ in 0..10 {
            assert!(sleeps(&mut b, vec![0; t - 1]).iter().all(|s| !s));
            assert_eq!(b.after_poll(1), None);
        }
    }

    #[test]
    fn a_long_idle_spell_does_not_overflow() {
        let mut b = IdleBackoff::new(Some(1));
        b.empty_run = u32::MAX - 1;
        assert!(b.after_poll(0).is_some());
        assert!(b.after_poll(0).is_some());
        assert_eq!(b.after_poll(7), None);
    }
}
