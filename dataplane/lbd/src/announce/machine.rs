//! Which VIPs to announce: a sans-IO state machine. It is told the
//! director's conditions and each VIP's live-server view, and answers with
//! the route changes to make; the IO layer (`routes.rs`) applies them and
//! says whether each worked, so that a failed change is retried at the
//! next evaluation and the machine never believes in a route that is not
//! there.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The director as a whole, at one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conditions {
    /// The workers run and, with VRRP, this director is master: its
    /// dataplane takes VIP traffic.
    pub forwarding: bool,
    /// `lbctl director drain` (until `resume`).
    pub drained: bool,
    /// lbd is stopping (withdraw, linger, then stop the workers).
    pub stopping: bool,
    /// `bgp.announce_without_servers`.
    pub without_servers: bool,
}

/// One VIP: whether any of its services has a real server that takes new
/// connections (health view applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipInput {
    pub vip: IpAddr,
    pub live_servers: bool,
}

/// Why a VIP is, or is not, announced. The first reason that applies, in
/// this order: stopping beats drained beats not forwarding beats no server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Announced,
    Stopping,
    Drained,
    NotForwarding,
    NoLiveServer,
}

impl Why {
    pub fn wants_route(self) -> bool {
        self == Why::Announced
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Why::Announced => "announced",
            Why::Stopping => "stopping",
            Why::Drained => "drained",
            Why::NotForwarding => "not forwarding",
            Why::NoLiveServer => "no live real server",
        }
    }
}

/// A route change for the IO layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Announce(IpAddr),
    Withdraw(IpAddr),
}

/// The decision for one VIP.
pub fn decide(c: &Conditions, v: &VipInput) -> Why {
    if c.stopping {
        Why::Stopping
    } else if c.drained {
        Why::Drained
    } else if !c.forwarding {
        Why::NotForwarding
    } else if !v.live_servers && !c.without_servers {
        Why::NoLiveServer
    } else {
        Why::Announced
    }
}

/// What the machine knows: the routes it believes installed, and the last
/// decision per configured VIP.
#[derive(Debug, Default)]
pub struct Announcer {
    installed: BTreeMap<IpAddr, ()>,
    decided: BTreeMap<IpAddr, Why>,
    /// The last failed change per VIP, until one works.
    errors: BTreeMap<IpAddr, String>,
}

impl Announcer {
    /// Decide every VIP of `vips` (the configured ones; a VIP that is no
    /// longer among them is withdrawn) and return the changes to make.
    pub fn evaluate(&mut self, c: &Conditions, vips: &[VipInput]) -> Vec<Action> {
        self.decided.clear();
        for v in vips {
            self.decided.insert(v.vip, decide(c, v));
        }
        let mut out = Vec::new();
        for (vip, why) in &self.decided {
            let has = self.installed.contains_key(vip);
            if why.wants_route() && !has {
                out.push(Action::Announce(*vip));
            } else if !why.wants_route() && has {
                out.push(Action::Withdraw(*vip));
            }
        }
        for vip in self.installed.keys() {
            if !self.decided.contains_key(vip) {
                out.push(Action::Withdraw(*vip));
            }
        }
        self.errors.retain(|vip, _| self.decided.contains_key(vip));
        out
    }

    /// The IO layer's outcome of `a`: `Err` leaves the belief as it was,
    /// so the change is asked for again next time.
    pub fn applied(&mut self, a: Action, outcome: Result<(), String>) {
        let vip = match a {
            Action::Announce(v) | Action::Withdraw(v) => v,
        };
        match outcome {
            Ok(()) => {
                self.errors.remove(&vip);
                match a {
                    Action::Announce(v) => self.installed.insert(v, ()),
                    Action::Withdraw(v) => self.installed.remove(&v),
                };
            }
            Err(e) => {
                self.errors.insert(vip, e);
            }
        }
    }

    /// No route is installed (all withdrawn).
    pub fn nothing_announced(&self) -> bool {
        self.installed.is_empty()
    }

    /// Each configured VIP: installed, and why (or the error that keeps
    /// its route from being what was decided).
    pub fn states(&self) -> Vec<(IpAddr, bool, String)> {
        self.decided
            .iter()
            .map(|(vip, why)| {
                let reason = match self.errors.get(vip) {
                    Some(e) => format!("{} (route change failed: {e})", why.as_str()),
                    None => why.as_str().to_string(),
                };
                (*vip, self.installed.contains_key(vip), reason)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 100, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 100, 2));

    fn up() -> Conditions {
        Conditions {
            forwarding: true,
            drained: false,
            stopping: false,
            without_servers: false,
        }
    }

    fn live(vip: IpAddr, live_servers: bool) -> VipInput {
        VipInput { vip, live_servers }
    }

    /// Evaluate and apply every action successfully.
    fn step(m: &mut Announcer, c: &Conditions, vips: &[VipInput]) -> Vec<Action> {
        let acts = m.evaluate(c, vips);
        for a in &acts {
            m.applied(*a, Ok(()));
        }
        acts
    }

    #[test]
    fn announces_only_vips_with_live_servers_while_forwarding() {
        let mut m = Announcer::default();
        let acts = step(&mut m, &up(), &[live(A, true), live(B, false)]);
        assert_eq!(acts, vec![Action::Announce(A)]);
        // Nothing changes: nothing to do.
        assert_eq!(
            step(&mut m, &up(), &[live(A, true), live(B, false)]),
            vec![]
        );
        // B's server comes up, A's all go down.
        let acts = step(&mut m, &up(), &[live(A, false), live(B, true)]);
        assert_eq!(acts, vec![Action::Withdraw(A), Action::Announce(B)]);
        let s = m.states();
        assert_eq!(s[0], (A, false, "no live real server".into()));
        assert_eq!(s[1], (B, true, "announced".into()));
    }

    #[test]
    fn without_servers_announces_anyway() {
        let mut m = Announcer::default();
        let c = Conditions {
            without_servers: true,
            ..up()
        };
        assert_eq!(
            step(&mut m, &c, &[live(A, false)]),
            vec![Action::Announce(A)]
        );
    }

    #[test]
    fn drain_stop_and_backup_withdraw_everything() {
        for c in [
            Conditions {
                drained: true,
                ..up()
            },
            Conditions {
                stopping: true,
                ..up()
            },
            Conditions {
                forwarding: false,
                ..up()
            },
        ] {
            let mut m = Announcer::default();
            step(&mut m, &up(), &[live(A, true), live(B, true)]);
            let acts = step(&mut m, &c, &[live(A, true), live(B, true)]);
            assert_eq!(
                acts,
                vec![Action::Withdraw(A), Action::Withdraw(B)],
                "{c:?}"
            );
            assert!(m.nothing_announced());
        }
    }

    #[test]
    fn stopping_is_the_reason_shown_over_drained() {
        let c = Conditions {
            drained: true,
            stopping: true,
            forwarding: false,
            without_servers: false,
        };
        assert_eq!(decide(&c, &live(A, false)), Why::Stopping);
        let c = Conditions {
            stopping: false,
            ..c
        };
        assert_eq!(decide(&c, &live(A, false)), Why::Drained);
    }

    #[test]
    fn resume_announces_again() {
        let mut m = Announcer::default();
        step(&mut m, &up(), &[live(A, true)]);
        step(
            &mut m,
            &Conditions {
                drained: true,
                ..up()
            },
            &[live(A, true)],
        );
        assert_eq!(
            step(&mut m, &up(), &[live(A, true)]),
            vec![Action::Announce(A)]
        );
    }

    #[test]
    fn a_vip_removed_from_the_configuration_is_withdrawn() {
        let mut m = Announcer::default();
        step(&mut m, &up(), &[live(A, true), live(B, true)]);
        assert_eq!(
            step(&mut m, &up(), &[live(A, true)]),
            vec![Action::Withdraw(B)]
        );
        assert_eq!(m.states().len(), 1);
    }

    #[test]
    fn failed_changes_are_retried_and_shown() {
        let mut m = Announcer::default();
        let acts = m.evaluate(&up(), &[live(A, true)]);
        m.applied(acts[0], Err("ip: exit status 2".into()));
        assert_eq!(
            m.states()[0],
            (
                A,
                false,
                "announced (route change failed: ip: exit status 2)".into()
            )
        );
        // Asked again; works this time.
        assert_eq!(
            step(&mut m, &up(), &[live(A, true)]),
            vec![Action::Announce(A)]
        );
        assert_eq!(m.states()[0], (A, true, "announced".into()));
        // A failed withdrawal keeps the route believed installed: retried.
        let stop = Conditions {
            stopping: true,
            ..up()
        };
        let acts = m.evaluate(&stop, &[live(A, true)]);
        m.applied(acts[0], Err("busy".into()));
        assert!(!m.nothing_announced());
        assert_eq!(
            step(&mut m, &stop, &[live(A, true)]),
            vec![Action::Withdraw(A)]
        );
        assert!(m.nothing_announced());
    }
}
