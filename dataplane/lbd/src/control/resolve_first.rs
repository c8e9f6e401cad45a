//! A real server added while lbd runs is held out of scheduling until its
//! MAC address is resolved.
//!
//! Without this, the first SYNs scheduled to a new server were dropped
//! (`drop_neigh_unresolved`) for the ~100 ms its ARP exchange takes, and
//! each of those clients stalled for a 1 s SYN retransmission. Holding the
//! server (weight 0, out of scheduling, like a failed health check) while
//! its neighbour resolves sends those clients to the servers that can take
//! them. The hold ends when the MAC is known, or after [`HOLD_MAX`] (a
//! server that never answers ARP is then scheduled as configured: its
//! drops are counted and it stays visible), and it applies only while the
//! service has another server in service — a service's only server is
//! never held.
//!
//! Pure bookkeeping (no I/O): the control plane asks it which servers to
//! hold when it builds a snapshot, and on every tick whether a held server's
//! state changed so that a new snapshot is due.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lbcore::pipeline::snapshot::{RealServer, Service};
use lbcore::pipeline::Snapshot;

/// The longest a new real server is held waiting for its MAC.
pub const HOLD_MAX: Duration = Duration::from_secs(5);

/// What happened to a held server, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldEvent {
    Held(IpAddr),
    Resolved(IpAddr),
    TimedOut(IpAddr),
}

#[derive(Debug, Default)]
pub struct ResolveFirst {
    /// Real servers (by id) added live and not yet resolved: since when.
    pending: HashMap<u32, (IpAddr, Instant)>,
    /// The ones the last plan held.
    held: HashSet<u32>,
}

impl ResolveFirst {
    /// Decide which real servers of `next` (about to replace `prev`) are
    /// held: those that `prev` did not have, whose MAC is not `resolved`,
    /// for at most [`HOLD_MAX`], while their service has another server
    /// that is `in_service`. Returns the held ids and what changed.
    pub fn plan(
        &mut self,
        prev: &Snapshot,
        next: &Snapshot,
        resolved: impl Fn(IpAddr) -> bool,
        in_service: impl Fn(&Service, &RealServer) -> bool,
        now: Instant,
    ) -> (HashSet<u32>, Vec<HoldEvent>) {
        let mut events = Vec::new();
        self.pending.retain(|id, _| next.route(*id).is_some());
        for svc in &next.services {
            for r in &svc.reals {
                // The address whose MAC is awaited: its route's (an IPv6
                // server's route holds no IPv4 address: its own).
                if let (false, None, Some(route)) = (r.fallback, prev.route(r.id), next.route(r.id))
                {
                    let addr = match r.addr {
                        IpAddr::V4(_) => IpAddr::V4(route.addr),
                        IpAddr::V6(_) => r.addr,
                    };
                    self.pending.entry(r.id).or_insert((addr, now));
                }
            }
        }
        let mut held = HashSet::new();
        let mut done = Vec::new();
        for (&id, &(addr, since)) in &self.pending {
            if resolved(addr) {
                done.push(id);
                if self.held.contains(&id) {
                    events.push(HoldEvent::Resolved(addr));
                }
            } else if now.duration_since(since) >= HOLD_MAX {
                done.push(id);
                if self.held.contains(&id) {
                    events.push(HoldEvent::TimedOut(addr));
                }
            } else {
                held.insert(id);
            }
        }
        for id in done {
            self.pending.remove(&id);
        }
        // A service's only servers are never held: better a dropped first
        // SYN than no server at all.
        for svc in &next.services {
            let others_serve = |id: u32| {
                svc.reals
                    .iter()
                    .any(|o| o.id != id && !held.contains(&o.id) && in_service(svc, o))
            };
            let unhold: Vec<u32> = svc
                .reals
                .iter()
                .filter(|r| held.contains(&r.id) && !others_serve(r.id))
                .map(|r| r.id)
                .collect();
            for id in unhold {
                held.remove(&id);
            }
        }
        for svc in &next.services {
            for r in &svc.reals {
                if held.contains(&r.id) && !self.held.contains(&r.id) {
                    if let Some(&(addr, _)) = self.pending.get(&r.id) {
                        events.push(HoldEvent::Held(addr));
                    }
                }
            }
        }
        self.held = held.clone();
        (held, events)
    }

    /// Whether a held server resolved or ran out of time since the last
    /// plan (a new snapshot is due).
    pub fn due(&self, resolved: impl Fn(IpAddr) -> bool, now: Instant) -> bool {
        self.held.iter().any(|id| {
            self.pending.get(id).is_none_or(|&(addr, since)| {
                resolved(addr) || now.duration_since(since) >= HOLD_MAX
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbcore::config::Config;
    use lbcore::neigh::NeighTable;
    use lbcore::pipeline::Registry;
    use lbcore::wire::MacAddr;

    fn cfg(reals: &[&str]) -> Config {
        let rs: Vec<String> = reals
            .iter()
            .map(|a| format!("(address: \"{a}\")"))
            .collect();
        ron::from_str(&format!(
            r#"(ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
                services: [(vip: "198.18.0.100", port: 80, scheduler: Rr,
                            real_servers: [{}])])"#,
            rs.join(",")
        ))
        .unwrap()
    }

    struct World {
        reg: Registry,
        neigh: NeighTable,
        generation: u64,
    }

    impl World {
        fn snap(&mut self, reals: &[&str]) -> Snapshot {
            self.generation += 1;
            Snapshot::build(
                &cfg(reals),
                &[MacAddr([2, 0, 0, 0, 0, 2])],
                &mut self.reg,
                &self.neigh,
                self.generation,
            )
            .unwrap()
        }
    }

    const A: &str = "198.18.0.11";
    const B: &str = "198.18.0.12";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_new_server_is_held_until_resolved() {
        let mut w = World {
            reg: Registry::default(),
            neigh: NeighTable::new(16),
            generation: 0,
        };
        let t0 = Instant::now();
        let prev = w.snap(&[A]);
        let next = w.snap(&[A, B]);
        let mut rf = ResolveFirst::default();
        let b_id = next.services[0].reals[1].id;
        let resolved_a = |x: IpAddr| x == ip(A);
        let (held, ev) = rf.plan(&prev, &next, resolved_a, |_, _| true, t0);
        assert_eq!(held, HashSet::from([b_id]));
        assert_eq!(ev, vec![HoldEvent::Held(ip(B))]);
        assert!(!rf.due(resolved_a, t0 + Duration::from_millis(100)));
        // B answers ARP: due, and the next plan releases it.
        let both = |_: IpAddr| true;
        assert!(rf.due(both, t0 + Duration::from_millis(200)));
        let (held, ev) = rf.plan(&next, &next, both, |_, _| true, t0);
        assert!(held.is_empty());
        assert_eq!(ev, vec![HoldEvent::Resolved(ip(B))]);
        assert!(!rf.due(both, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn a_server_that_never_resolves_is_released_after_hold_max() {
        let mut w = World {
            reg: Registry::default(),
            neigh: NeighTable::new(16),
            generation: 0,
        };
        let t0 = Instant::now();
        let prev = w.snap(&[A]);
        let next = w.snap(&[A, B]);
        let mut rf = ResolveFirst::default();
        let only_a = |x: IpAddr| x == ip(A);
        let (held, _) = rf.plan(&prev, &next, only_a, |_, _| true, t0);
        assert_eq!(held.len(), 1);
        let late = t0 + HOLD_MAX;
        assert!(rf.due(only_a, late));
        let (held, ev) = rf.plan(&next, &next, only_a, |_, _| true, late);
        assert!(held.is_empty());
        assert_eq!(ev, vec![HoldEvent::TimedOut(ip(B))]);
    }

    #[test]
    fn never_holds_a_services_only_server() {
        let mut w = World {
            reg: Registry::default(),
            neigh: NeighTable::new(16),
            generation: 0,
        };
        let t0 = Instant::now();
        let prev = w.snap(&[]);
        let next = w.snap(&[A, B]);
        let mut rf = ResolveFirst::default();
        // Both new and unresolved: each is the other's only alternative,
        // and that one is held too, so neither is held.
        let (held, _) = rf.plan(&prev, &next, |_| false, |_, _| true, t0);
        assert!(held.is_empty(), "{held:?}");
        // A present but out of service (health check): B is not held.
        let prev = w.snap(&[A]);
        let next = w.snap(&[A, B]);
        let a_id = next.services[0].reals[0].id;
        let mut rf = ResolveFirst::default();
        let (held, _) = rf.plan(&prev, &next, |_| false, |_, r| r.id != a_id, t0);
        assert!(held.is_empty());
    }

    #[test]
    fn servers_present_before_are_never_held() {
        let mut w = World {
            reg: Registry::default(),
            neigh: NeighTable::new(16),
            generation: 0,
        };
        let prev = w.snap(&[A, B]);
        let next = w.snap(&[A, B]);
        let mut rf = ResolveFirst::default();
        let (held, ev) = rf.plan(&prev, &next, |_| false, |_, _| true, Instant::now());
        assert!(held.is_empty() && ev.is_empty());
    }
}
