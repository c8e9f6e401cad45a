//! ECMP mode (`services[].ecmp`): what a service needs so that every
//! director behind the same routers makes the same choice for a flow.

use super::error::Problem;
use super::types::{Config, Scheduler};

/// A service in ECMP mode must schedule with `mh`: Maglev's table depends
/// only on the set of real servers (their addresses, ports and weights),
/// not on the order they were added in or on connection counts, so every
/// director with the same real servers sends a client to the same one.
pub(super) fn check_ecmp(cfg: &Config, v: &mut Vec<Problem>) {
    for (i, svc) in cfg.services.iter().enumerate() {
        if svc.ecmp && svc.scheduler != Scheduler::Mh {
            v.push(Problem::new(
                format!("services[{i}].ecmp"),
                format!(
                    "ECMP mode needs scheduler `Mh` (Maglev), not `{}`: mh is the only \
                     scheduler whose choice is the same on every director with the same real \
                     servers, whatever order they were added in; other schedulers would send \
                     a flow the routers move to another director to a different real server",
                    svc.scheduler.name()
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn config(sched: &str, ecmp: bool) -> String {
        format!(
            r#"(
    ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
    services: [
        (vip: "198.18.0.100", port: 80, scheduler: {sched}, ecmp: {ecmp},
         real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")]),
    ],
)"#
        )
    }

    #[test]
    fn ecmp_with_mh_is_accepted() {
        let cfg = parse(&config("Mh", true), "t.ron").unwrap();
        assert!(cfg.services[0].ecmp);
        let cfg = parse(&config("Wlc", false), "t.ron").unwrap();
        assert!(!cfg.services[0].ecmp, "off by default");
    }

    #[test]
    fn ecmp_needs_mh_and_says_where() {
        for sched in ["Wlc", "Rr", "Sh"] {
            let err = parse(&config(sched, true), "t.ron")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("t.ron:4:")
                    && err.contains("services[0].ecmp")
                    && err.contains("needs scheduler `Mh`"),
                "{err}"
            );
        }
    }

    #[test]
    fn ecmp_round_trips_and_is_left_out_when_off() {
        let cfg = parse(&config("Mh", true), "t.ron").unwrap();
        let text = crate::config::to_ron_string(&cfg);
        assert!(text.contains("ecmp: true"), "{text}");
        assert_eq!(parse(&text, "again").unwrap(), cfg);
        let off = parse(&config("Mh", false), "t.ron").unwrap();
        assert!(!crate::config::to_ron_string(&off).contains("ecmp"));
    }
}
