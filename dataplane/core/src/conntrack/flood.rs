//! The SYN-flood defence of one worker: when it is engaged, and what it
//! changes. A sans-IO state machine driven by the worker (table fill on
//! every housekeeping call, "no room" events as they happen) with `now`
//! passed in; the worker carries out what it decides (see
//! `pipeline::flood`).
//!
//! Why a mode and not always-on: the defence trades fidelity for
//! availability (half-open connections live seconds instead of IPVS's 60,
//! the oldest of them are evicted, consistent-hash services may forward
//! without state). That is right under attack and wrong otherwise, so in
//! `Auto` it engages only under table pressure, with hysteresis so it does
//! not flap at the threshold.

use super::state::{ConnState, TimeoutsMs};
use super::table::{tick_reached, Tick};
use crate::config::{FloodMode, SynFloodConfig};

/// The defence's settings, in the units the worker uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodPolicy {
    pub mode: FloodMode,
    /// SYN_RECV timeout while engaged, in milliseconds.
    pub syn_recv_ms: u32,
    pub engage_percent: u8,
    pub release_percent: u8,
    /// Quiet time (no refused or evicting insert) before releasing.
    pub hold_ms: u32,
}

impl FloodPolicy {
    pub fn from_config(c: &SynFloodConfig) -> FloodPolicy {
        FloodPolicy {
            mode: c.mode,
            syn_recv_ms: c.syn_recv_timeout.saturating_mul(1000),
            engage_percent: c.engage_percent,
            release_percent: c.release_percent,
            hold_ms: c.hold.saturating_mul(1000),
        }
    }

    /// The timeouts in force: `normal`, with the short SYN_RECV timeout
    /// while `engaged`.
    pub fn timeouts(&self, normal: &TimeoutsMs, engaged: bool) -> TimeoutsMs {
        let mut t = *normal;
        if engaged {
            let s = &mut t.by_state[ConnState::SynRecv as usize];
            *s = (*s).min(self.syn_recv_ms);
        }
        t
    }
}

impl Default for FloodPolicy {
    fn default() -> Self {
        FloodPolicy::from_config(&SynFloodConfig::default())
    }
}

/// A change of the defence's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodChange {
    Engaged,
    Released,
}

/// One worker's defence state.
#[derive(Debug, Default, Clone)]
pub struct FloodGuard {
    engaged: bool,
    /// When a new flow last found no room (refused, or made room by
    /// evicting a half-open entry).
    last_pressure: Option<Tick>,
}

impl FloodGuard {
    #[inline]
    pub fn engaged(&self) -> bool {
        self.engaged
    }

    /// A new flow found no room in the table at `now`.
    pub fn pressure(&mut self, p: &FloodPolicy, now: Tick) -> Option<FloodChange> {
        self.last_pressure = Some(now);
        let want = p.mode != FloodMode::Off;
        self.set(want)
    }

    /// Re-evaluate with the table holding `len` of `capacity` entries.
    pub fn observe(
        &mut self,
        p: &FloodPolicy,
        len: usize,
        capacity: usize,
        now: Tick,
    ) -> Option<FloodChange> {
        let fill = len.saturating_mul(100);
        let cap = capacity.max(1);
        let want = match p.mode {
            FloodMode::On => true,
            FloodMode::Off => false,
            FloodMode::Auto if self.engaged => {
                let quiet = self
                    .last_pressure
                    .is_none_or(|t| tick_reached(now, t.wrapping_add(p.hold_ms)));
                !(fill < cap * p.release_percent as usize && quiet)
            }
            FloodMode::Auto => fill >= cap * p.engage_percent as usize,
        };
        if !want {
            // Forget old pressure once released, so the next engagement's
            // hold counts from its own events.
            self.last_pressure = None;
        }
        self.set(want)
    }

    fn set(&mut self, want: bool) -> Option<FloodChange> {
        if want == self.engaged {
            return None;
        }
        self.engaged = want;
        Some(if want {
            FloodChange::Engaged
        } else {
            FloodChange::Released
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: FloodMode) -> FloodPolicy {
        FloodPolicy {
            mode,
            ..FloodPolicy::default()
        }
    }

    #[test]
    fn auto_engages_at_the_threshold_and_releases_with_hysteresis() {
        let p = policy(FloodMode::Auto);
        let mut g = FloodGuard::default();
        assert_eq!(g.observe(&p, 84, 100, 0), None);
        assert_eq!(g.observe(&p, 85, 100, 1), Some(FloodChange::Engaged));
        // Between release and engage: stays engaged.
        assert_eq!(g.observe(&p, 60, 100, 2), None);
        assert!(g.engaged());
        assert_eq!(g.observe(&p, 49, 100, 3), Some(FloodChange::Released));
        assert!(!g.engaged());
    }

    #[test]
    fn pressure_engages_at_once_and_holds() {
        let p = policy(FloodMode::Auto);
        let mut g = FloodGuard::default();
        assert_eq!(g.pressure(&p, 1000), Some(FloodChange::Engaged));
        // The table is nearly empty, but a refusal was seen 9.999 s ago.
        assert_eq!(g.observe(&p, 0, 100, 1000 + p.hold_ms - 1), None);
        assert!(g.engaged());
        assert_eq!(
            g.observe(&p, 0, 100, 1000 + p.hold_ms),
            Some(FloodChange::Released)
        );
    }

    #[test]
    fn forced_modes() {
        let mut g = FloodGuard::default();
        assert_eq!(
            g.observe(&policy(FloodMode::On), 0, 100, 0),
            Some(FloodChange::Engaged)
        );
        assert_eq!(g.observe(&policy(FloodMode::On), 0, 100, 99_999), None);
        assert_eq!(
            g.observe(&policy(FloodMode::Off), 100, 100, 0),
            Some(FloodChange::Released)
        );
        assert_eq!(g.pressure(&policy(FloodMode::Off), 1), None);
        assert!(!g.engaged(), "Off never engages, even when full");
    }

    #[test]
    fn short_syn_recv_timeout_only_while_engaged() {
        let p = policy(FloodMode::Auto);
        let normal = TimeoutsMs::from_config(&crate::config::Timeouts::default());
        assert_eq!(p.timeouts(&normal, false), normal);
        let t = p.timeouts(&normal, true);
        assert_eq!(ConnState::SynRecv.timeout_ms(&t), 5_000);
        assert_eq!(ConnState::Established.timeout_ms(&t), 900_000);
    }
}
