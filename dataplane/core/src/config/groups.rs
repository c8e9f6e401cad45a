//! Checks of service groups (`fwmark` services): their marks, their
//! `match` lists, and the ports they take from the lookup map.
//!
//! Every (VIP, port, protocol) a group matches is one entry of the map each
//! packet is looked up in, so the ports of all groups together are bounded
//! ([`MAX_GROUP_PORTS`]), and a port belongs to one service only.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::error::Problem;
use super::types::{
    CheckKind, Config, Forward, Protocol, RealServerConfig, ServiceConfig, MAX_GROUP_PORTS,
};
use super::validate::{port_owning, proto_name, special_address};

/// Check every group, and enter the ports they match in `seen` (by service
/// index) for the ordinary services' duplicate check that follows.
pub(super) fn check_groups(
    cfg: &Config,
    seen: &mut HashMap<(Ipv4Addr, u16, Protocol), usize>,
    v: &mut Vec<Problem>,
) {
    let mut marks: HashMap<u32, usize> = HashMap::new();
    let mut total = 0usize;
    for (i, svc) in cfg.services.iter().enumerate() {
        let at = |f: &str| format!("services[{i}].{f}");
        let Some(mark) = svc.fwmark else {
            if !svc.matches.is_empty() {
                v.push(Problem::new(
                    at("match"),
                    "`match` lists a service group's members: give the service a \
                     `fwmark: Some(N)` and leave out its vip and port",
                ));
            }
            continue;
        };
        if mark == 0 {
            v.push(Problem::new(
                at("fwmark"),
                "fwmark 0 is no mark (IPVS's marks start at 1)",
            ));
        }
        if let Some(j) = marks.insert(mark, i) {
            v.push(Problem::new(
                at("fwmark"),
                format!("duplicate service group fwmark {mark}, also at services[{j}]"),
            ));
        }
        if !svc.vip.is_unspecified() {
            v.push(Problem::new(
                at("vip"),
                format!(
                    "a service group (fwmark {mark}) takes its addresses from `match`: leave \
                     out vip {} (or put it in `match`)",
                    svc.vip
                ),
            ));
        }
        if svc.port != 0 {
            v.push(Problem::new(
                at("port"),
                format!(
                    "a service group (fwmark {mark}) takes its ports from `match`: leave out \
                     port {}",
                    svc.port
                ),
            ));
        }
        if svc.protocol != Protocol::Tcp {
            v.push(Problem::new(
                at("protocol"),
                format!(
                    "a service group (fwmark {mark}) takes its protocols from `match` (each \
                     member has its own): leave out the service's protocol"
                ),
            ));
        }
        for (k, m) in svc.matches.iter().enumerate() {
            let mat = |f: &str| format!("services[{i}].match[{k}].{f}");
            if let Some(why) = special_address(m.vip) {
                v.push(Problem::new(mat("vip"), format!("VIP {} is {why}", m.vip)));
            } else if let Some(p) = port_owning(&cfg.ports, m.vip) {
                v.push(Problem::new(
                    mat("vip"),
                    format!(
                        "VIP {} is the director's own address on port {}; use a separate \
                         address for the service",
                        m.vip, p.name
                    ),
                ));
            }
            let r = m.ports;
            if r.first == 0 {
                v.push(Problem::new(
                    mat("ports"),
                    format!(
                        "ports {r}: port 0 is not a port (a member names the ports it takes, \
                         1 to 65535)"
                    ),
                ));
                continue;
            }
            if r.is_empty() {
                v.push(Problem::new(
                    mat("ports"),
                    format!("ports {r}: the range ends before it starts"),
                ));
                continue;
            }
            total += r.len();
            if total > MAX_GROUP_PORTS {
                v.push(Problem::new(
                    mat("ports"),
                    format!(
                        "ports {r}: service groups would match {total} ports in all, more \
                         than {MAX_GROUP_PORTS} (each is an entry of the lookup map every \
                         packet consults); use a service on all ports (port 0) for wide ranges"
                    ),
                ));
                // Stop counting: the bound is what keeps this loop short.
                return;
            }
            for port in r.ports() {
                let key = (m.vip, port, m.protocol);
                if let Some(&j) = seen.get(&key) {
                    v.push(Problem::new(
                        mat("ports"),
                        format!(
                            "{}:{port}/{} is also matched by services[{j}] ({}); a port \
                             belongs to one service",
                            m.vip,
                            proto_name(m.protocol),
                            cfg.services[j].name()
                        ),
                    ));
                    // One message per member is enough.
                    break;
                }
                seen.insert(key, i);
            }
        }
    }
}

/// What a group asks of each of its real servers (and its fallback), on
/// top of the ordinary checks.
pub(super) fn check_group_real(
    svc: &ServiceConfig,
    rs: &RealServerConfig,
    here: &str,
    v: &mut Vec<Problem>,
) {
    if rs.forward == Forward::Nat {
        v.push(Problem::new(
            format!("{here}.forward"),
            format!(
                "a service group ({}) forwards by DR or tunnel: NAT rewrites replies to come \
                 from the one VIP and port they were sent to, which a group does not have (not \
                 supported)",
                svc.name()
            ),
        ));
    }
    let check = rs.health_check.as_ref().or(svc.health_check.as_ref());
    if let Some(hc) = check {
        let exec = matches!(hc.check, CheckKind::Exec { .. });
        if hc.port.is_none() && rs.port.is_none() && !exec {
            v.push(Problem::new(
                format!("{here}.port"),
                format!(
                    "a service group ({}) has no single port to check {}: give the real server \
                     a port (its checks use it; DR and tunnel keep each packet's port) or the \
                     check a `port: Some(N)`",
                    svc.name(),
                    rs.address
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, to_ron_string, ConfigError, PortRange, Protocol};
    use std::net::Ipv4Addr;

    /// A configuration whose services are `services`.
    fn text(services: &str) -> String {
        format!(
            r#"(
    ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
    services: [{services}],
)"#
        )
    }

    const WEB: &str = r#"(
        fwmark: Some(3),
        match: [
            (vip: "198.18.0.10", ports: 80),
            (vip: "198.18.0.10", protocol: Tcp, ports: "443"),
            (vip: "198.18.0.11", protocol: Udp, ports: "8000-8009"),
        ],
        scheduler: Rr,
        persistence: Some((timeout: 300)),
        real_servers: [(address: "198.18.0.21"), (address: "198.18.0.22", port: Some(80))],
    )"#;

    /// The problems `services` has, as "path: message" lines with the
    /// line:column each was located at.
    fn text_of(services: &str) -> String {
        text(services)
    }

    fn problems(services: &str) -> String {
        match parse(&text(services), "t.ron") {
            Ok(_) => String::new(),
            Err(e @ ConfigError::Invalid { .. }) => e.to_string(),
            Err(e) => panic!("not a validation error: {e}"),
        }
    }

    #[test]
    fn group_parses_and_round_trips() {
        let cfg = parse(&text(WEB), "t.ron").unwrap();
        let g = &cfg.services[0];
        assert_eq!(g.fwmark, Some(3));
        assert!(g.vip.is_unspecified());
        assert_eq!(g.matches.len(), 3);
        assert_eq!(g.matches[2].protocol, Protocol::Udp);
        assert_eq!(
            g.matches[2].ports,
            PortRange {
                first: 8000,
                last: 8009
            }
        );
        assert_eq!(
            g.vips(),
            vec![Ipv4Addr::new(198, 18, 0, 10), Ipv4Addr::new(198, 18, 0, 11)]
        );
        assert_eq!(g.lookup_keys().count(), 12);
        assert_eq!(g.name(), "fwmark 3");
        // Written back: no vip or port, ranges as text, single ports as numbers.
        let out = to_ron_string(&cfg);
        assert!(!out.contains("vip: \"0.0.0.0\""), "{out}");
        assert!(out.contains("match: ["), "{out}");
        assert!(out.contains("ports: \"8000-8009\""), "{out}");
        assert!(out.contains("ports: 80"), "{out}");
        assert_eq!(parse(&out, "out.ron").unwrap(), cfg);
    }

    #[test]
    fn port_ranges_parse_in_both_spellings() {
        assert_eq!(
            "8000:8099".parse(),
            Ok(PortRange {
                first: 8000,
                last: 8099
            })
        );
        assert_eq!("443".parse(), Ok(PortRange::one(443)));
        assert!("80-x".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
        let bad = parse(&text(&WEB.replace("ports: 80", "ports: 70000")), "t.ron");
        assert!(
            matches!(&bad, Err(ConfigError::Syntax { message, .. }) if message.contains("70000")),
            "{bad:?}"
        );
    }

    #[test]
    fn group_with_vip_port_or_udp_protocol_is_refused() {
        let p = problems(&WEB.replace(
            "fwmark: Some(3),",
            "fwmark: Some(3), vip: \"198.18.0.10\", port: 80, protocol: Udp,",
        ));
        assert!(
            p.contains(
                "services[0].vip: a service group (fwmark 3) takes its addresses from `match`"
            ),
            "{p}"
        );
        assert!(
            p.contains("services[0].port: a service group (fwmark 3) takes its ports"),
            "{p}"
        );
        assert!(p.contains("services[0].protocol: a service group"), "{p}");
    }

    #[test]
    fn match_without_fwmark_and_mark_zero_are_refused() {
        let p = problems(&WEB.replace("fwmark: Some(3),", ""));
        assert!(
            p.contains("services[0].match: `match` lists a service group's members"),
            "{p}"
        );
        let p = problems(&WEB.replace("Some(3)", "Some(0)"));
        assert!(p.contains("services[0].fwmark: fwmark 0 is no mark"), "{p}");
    }

    #[test]
    fn bad_ranges_are_refused_with_their_line() {
        let p = problems(&WEB.replace("\"8000-8009\"", "\"8009-8000\""));
        assert!(p.contains("t.ron:8:49: services[0].match[2].ports"), "{p}");
        assert!(
            p.contains(
                "services[0].match[2].ports: ports 8009-8000: the range ends before it starts"
            ),
            "{p}"
        );
        let p = problems(&WEB.replace("ports: 80)", "ports: \"0-10\")"));
        assert!(
            p.contains("services[0].match[0].ports: ports 0-10: port 0 is not a port"),
            "{p}"
        );
        let p = problems(&WEB.replace("\"8000-8009\"", "\"1-65535\""));
        assert!(p.contains("services[0].match[2].ports: ports 1-65535: service groups would match 65537 ports in all, more than 8192"), "{p}");
    }

    #[test]
    fn overlaps_between_services_are_refused() {
        let plain = r#"(vip: "198.18.0.10", port: 443, real_servers: [(address: "198.18.0.21")])"#;
        // A group member over an ordinary service (either order).
        let p = problems(&format!("{plain}, {WEB}"));
        assert!(p.contains("services[0]: service 198.18.0.10:443/tcp is also a member of services[1] (fwmark 3)"), "{p}");
        let p = problems(&format!("{WEB}, {plain}"));
        assert!(p.contains("services[1]: service 198.18.0.10:443/tcp is also a member of services[0] (fwmark 3)"), "{p}");
        // Two groups sharing a port, and a range overlapping within a group.
        let other = WEB
            .replace("Some(3)", "Some(4)")
            .replace("\"443\"", "\"444\"")
            .replace("ports: 80", "ports: 81")
            .replace("\"8000-8009\"", "\"8005-8020\"");
        let p = problems(&format!("{WEB}, {other}"));
        assert!(p.contains("services[1].match[2].ports: 198.18.0.11:8005/udp is also matched by services[0] (fwmark 3)"), "{p}");
        let p = problems(&WEB.replace("\"443\"", "\"79-81\""));
        assert!(p.contains("services[0].match[1].ports: 198.18.0.10:80/tcp is also matched by services[0] (fwmark 3)"), "{p}");
        // The same mark twice.
        let twin = WEB.replace("198.18.0.1", "198.18.0.3");
        let p = problems(&format!("{WEB}, {twin}"));
        assert!(
            p.contains("services[1].fwmark: duplicate service group fwmark 3, also at services[0]"),
            "{p}"
        );
        // The same port under another protocol is another key.
        let udp443 = r#"(vip: "198.18.0.10", port: 443, protocol: Udp, real_servers: [(address: "198.18.0.21")])"#;
        assert_eq!(problems(&format!("{WEB}, {udp443}")), "");
    }

    #[test]
    fn group_real_servers_are_dr_or_tunnel_with_a_port_to_check() {
        let p = problems(&WEB.replace(
            "(address: \"198.18.0.21\")",
            "(address: \"198.18.0.21\", port: Some(8080), forward: Nat)",
        ));
        assert!(p.contains("services[0].real_servers[0].forward: a service group (fwmark 3) forwards by DR or tunnel"), "{p}");
        // DR real servers may name a port (for their checks) that is none of the members'.
        assert_eq!(
            problems(&WEB.replace("port: Some(80)", "port: Some(8443)")),
            ""
        );
        let checked = WEB.replace(
            "scheduler: Rr,",
            "scheduler: Rr, health_check: Some((check: Tcp)),",
        );
        let p = problems(&checked);
        assert!(p.contains("services[0].real_servers[0].port: a service group (fwmark 3) has no single port to check 198.18.0.21"), "{p}");
        assert!(!p.contains("real_servers[1]"), "{p}");
        assert_eq!(
            problems(&checked.replace("(check: Tcp)", "(check: Tcp, port: Some(80))")),
            ""
        );
        let p = problems(&WEB.replace("(address: \"198.18.0.21\")", "(address: \"198.18.0.10\")"));
        assert!(
            p.contains("real server 198.18.0.10 is the service's own VIP"),
            "{p}"
        );
        let p = problems(&WEB.replace("\"198.18.0.11\"", "\"198.18.0.2\""));
        assert!(
            p.contains("services[0].match[2].vip: VIP 198.18.0.2 is the director's own address"),
            "{p}"
        );
    }

    #[test]
    fn empty_group_is_allowed_and_service_without_vip_is_refused() {
        // What `ipvsadm -A -f 3` makes: a group that matches nothing yet.
        assert_eq!(
            problems("(fwmark: Some(3), persistence: Some((timeout: 300)))"),
            ""
        );
        for (text, field) in [
            (r#"(port: 80)"#, "vip"),
            (r#"(vip: "198.18.0.10")"#, "port"),
        ] {
            let e = parse(&text_of(text), "t.ron").unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "missing field named `{field}` (only a service group"
                )),
                "{e}"
            );
        }
    }
}
