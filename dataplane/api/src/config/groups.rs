//! Checks of service groups (`fwmark` services) and of the `fwmarks`
//! section that says which (VIP, protocol, ports) carry each mark.
//!
//! Every (VIP, port, protocol) of a mark a service serves is one entry of
//! the map each packet is looked up in, so the ports of all marks together
//! are bounded ([`MAX_GROUP_PORTS`]), and a port belongs to one service only.

use std::collections::HashMap;
use std::net::IpAddr;

use super::error::Problem;
use super::facts::{port_owning, proto_name, special_address};
use super::types::{
    CheckKind, Config, Forward, Protocol, RealServerConfig, ServiceConfig, MAX_GROUP_PORTS,
};

/// Check the groups and the marks, and enter the ports the groups take in
/// `seen` (by service index) for the ordinary services' duplicate check
/// that follows.
pub(super) fn check_groups(
    cfg: &Config,
    seen: &mut HashMap<(IpAddr, u16, Protocol), usize>,
    v: &mut Vec<Problem>,
) {
    // Which service serves each mark.
    let mut marks: HashMap<u32, usize> = HashMap::new();
    for (i, svc) in cfg.services.iter().enumerate() {
        let at = |f: &str| format!("services[{i}].{f}");
        let Some(mark) = svc.fwmark else {
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
                    "a service group (fwmark {mark}) takes its addresses from the `fwmarks` \
                     section: leave out vip {} (or put it in `fwmarks`)",
                    svc.vip
                ),
            ));
        }
        if svc.port != 0 {
            v.push(Problem::new(
                at("port"),
                format!(
                    "a service group (fwmark {mark}) takes its ports from the `fwmarks` \
                     section: leave out port {}",
                    svc.port
                ),
            ));
        }
        if svc.protocol != Protocol::Tcp {
            v.push(Problem::new(
                at("protocol"),
                format!(
                    "a service group (fwmark {mark}) takes its protocols from the `fwmarks` \
                     section (each entry has its own): leave out the service's protocol"
                ),
            ));
        }
    }
    let mut total = 0usize;
    // The family of each mark: its first VIP's (a group is one family, as
    // an IPVS firewall-mark service is: `-f N` IPv4, `-f N -6` IPv6).
    let mut family: HashMap<u32, IpAddr> = HashMap::new();
    for (k, f) in cfg.fwmarks.iter().enumerate() {
        if f.mark == 0 {
            v.push(Problem::new(
                format!("fwmarks[{k}].mark"),
                "mark 0 is no mark (IPVS's marks start at 1)",
            ));
        }
        // Only a mark a service serves takes packets from other services.
        let owner = marks.get(&f.mark).copied();
        for (m, g) in f.matches.iter().enumerate() {
            let mat = |x: &str| format!("fwmarks[{k}].match[{m}].{x}");
            let first = *family.entry(f.mark).or_insert(g.vip);
            if first.is_ipv6() != g.vip.is_ipv6() {
                v.push(Problem::new(
                    mat("vip"),
                    format!(
                        "mark {} mixes IPv4 and IPv6 VIPs ({} and {}); a service group is one \
                         address family, as an IPVS firewall-mark service is (ipvsadm -f N \
                         for IPv4, -f N -6 for IPv6): give the other family its own mark",
                        f.mark, first, g.vip
                    ),
                ));
            } else if let Some(why) = special_address(g.vip) {
                v.push(Problem::new(mat("vip"), format!("VIP {} is {why}", g.vip)));
            } else if let Some(p) = port_owning(&cfg.ports, g.vip) {
                v.push(Problem::new(
                    mat("vip"),
                    format!(
                        "VIP {} is the director's own address on port {}; use a separate \
                         address for the service",
                        g.vip, p.name
                    ),
                ));
            }
            let r = g.ports;
            if r.first == 0 {
                v.push(Problem::new(
                    mat("ports"),
                    format!(
                        "ports {r}: port 0 is not a port (a mark names the ports it takes, 1 \
                         to 65535)"
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
                        "ports {r}: the marks would take {total} ports in all, more than \
                         {MAX_GROUP_PORTS} (each is an entry of the lookup map every packet \
                         consults); use a service on all ports (port 0) for wide ranges"
                    ),
                ));
                // Stop counting: the bound is what keeps this loop short.
                return;
            }
            let Some(i) = owner else {
                continue;
            };
            for port in r.ports() {
                let key = (g.vip, port, g.protocol);
                if let Some(&j) = seen.get(&key) {
                    v.push(Problem::new(
                        mat("ports"),
                        format!(
                            "{}/{} is also matched by services[{j}] ({}); a port belongs to \
                             one service",
                            crate::addr::SockAddr(g.vip, port),
                            proto_name(g.protocol),
                            cfg.services[j].name()
                        ),
                    ));
                    // One message per entry is enough.
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
    cfg: &Config,
    svc: &ServiceConfig,
    rs: &RealServerConfig,
    here: &str,
    v: &mut Vec<Problem>,
) {
    // DR and tunnel keep the client's packet: the real server is reached
    // in the family of the group's VIPs.
    if let Some(vip) = cfg.service_vips(svc).first() {
        if vip.is_ipv6() != rs.address.is_ipv6() {
            v.push(Problem::new(
                format!("{here}.address"),
                format!(
                    "real server {} is not of the address family of {}'s VIPs ({vip}); DR \
                     and tunnel forward the client's packet as it is",
                    rs.address,
                    svc.name()
                ),
            ));
        }
    }
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

    /// A configuration with `services` and the `fwmarks` entries `marks`.
    fn text(services: &str, marks: &str) -> String {
        format!(
            r#"(
    ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
    services: [{services}],
    fwmarks: [{marks}],
)"#
        )
    }

    const WEB: &str = r#"(
        fwmark: Some(3),
        scheduler: Rr,
        persistence: Some((timeout: 300)),
        real_servers: [(address: "198.18.0.21"), (address: "198.18.0.22", port: Some(80))],
    )"#;

    const MARK3: &str = r#"(mark: 3, match: [
        (vip: "198.18.0.10", ports: 80),
        (vip: "198.18.0.10", protocol: Tcp, ports: "443"),
        (vip: "198.18.0.11", protocol: Udp, ports: "8000-8009"),
    ])"#;

    /// The problems of `services` and `marks`, as "origin:line:col: path:
    /// message" lines ("" if none).
    fn problems(services: &str, marks: &str) -> String {
        match parse(&text(services, marks), "t.ron") {
            Ok(_) => String::new(),
            Err(e @ ConfigError::Invalid { .. }) => e.to_string(),
            Err(e) => panic!("not a validation error: {e}"),
        }
    }

    #[test]
    fn group_parses_and_round_trips() {
        let cfg = parse(&text(WEB, MARK3), "t.ron").unwrap();
        let g = &cfg.services[0];
        assert_eq!(g.fwmark, Some(3));
        assert!(g.vip.is_unspecified());
        let m: Vec<_> = cfg.marked(3).collect();
        assert_eq!(m.len(), 3);
        assert_eq!(m[2].protocol, Protocol::Udp);
        assert_eq!(
            m[2].ports,
            PortRange {
                first: 8000,
                last: 8009
            }
        );
        assert_eq!(
            cfg.service_vips(g),
            vec![Ipv4Addr::new(198, 18, 0, 10), Ipv4Addr::new(198, 18, 0, 11)]
        );
        assert_eq!(cfg.lookup_keys(g).count(), 12);
        assert_eq!(g.name(), "fwmark 3");
        // Written back: no vip or port, ranges as text, single ports as numbers.
        let out = to_ron_string(&cfg);
        assert!(!out.contains("vip: \"0.0.0.0\""), "{out}");
        assert!(out.contains("fwmarks: ["), "{out}");
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
        let bad = parse(
            &text(WEB, &MARK3.replace("ports: 80", "ports: 70000")),
            "t.ron",
        );
        assert!(
            matches!(&bad, Err(ConfigError::Syntax { message, .. }) if message.contains("70000")),
            "{bad:?}"
        );
    }

    #[test]
    fn group_with_vip_port_or_udp_protocol_is_refused() {
        let p = problems(
            &WEB.replace(
                "fwmark: Some(3),",
                "fwmark: Some(3), vip: \"198.18.0.10\", port: 80, protocol: Udp,",
            ),
            MARK3,
        );
        assert!(p.contains("services[0].vip: a service group (fwmark 3) takes its addresses from the `fwmarks` section"), "{p}");
        assert!(
            p.contains("services[0].port: a service group (fwmark 3) takes its ports"),
            "{p}"
        );
        assert!(p.contains("services[0].protocol: a service group"), "{p}");
    }

    #[test]
    fn marks_zero_are_refused_and_unused_marks_are_allowed() {
        let p = problems(
            &WEB.replace("Some(3)", "Some(0)"),
            &MARK3.replace("mark: 3", "mark: 0"),
        );
        assert!(p.contains("services[0].fwmark: fwmark 0 is no mark"), "{p}");
        assert!(p.contains("fwmarks[0].mark: mark 0 is no mark"), "{p}");
        // A mark no service serves takes nothing: it may cover an ordinary
        // service's port (as an iptables rule may mark packets IPVS then
        // finds no fwmark service for).
        let plain = r#"(vip: "198.18.0.10", port: 443, real_servers: [(address: "198.18.0.21")])"#;
        assert_eq!(problems(plain, MARK3), "");
    }

    #[test]
    fn bad_ranges_are_refused_with_their_line() {
        let p = problems(WEB, &MARK3.replace("\"8000-8009\"", "\"8009-8000\""));
        assert!(p.contains("t.ron:12:45: fwmarks[0].match[2].ports: ports 8009-8000: the range ends before it starts"), "{p}");
        let p = problems(WEB, &MARK3.replace("ports: 80)", "ports: \"0-10\")"));
        assert!(
            p.contains("fwmarks[0].match[0].ports: ports 0-10: port 0 is not a port"),
            "{p}"
        );
        let p = problems(WEB, &MARK3.replace("\"8000-8009\"", "\"1-65535\""));
        assert!(p.contains("fwmarks[0].match[2].ports: ports 1-65535: the marks would take 65537 ports in all, more than 8192"), "{p}");
        let p = problems(WEB, &MARK3.replace("\"198.18.0.11\"", "\"198.18.0.2\""));
        assert!(
            p.contains("fwmarks[0].match[2].vip: VIP 198.18.0.2 is the director's own address"),
            "{p}"
        );
    }

    #[test]
    fn overlaps_between_services_are_refused() {
        let plain = r#"(vip: "198.18.0.10", port: 443, real_servers: [(address: "198.18.0.21")])"#;
        // A group's port that an ordinary service has (either order).
        let p = problems(&format!("{plain}, {WEB}"), MARK3);
        assert!(p.contains("services[0]: service 198.18.0.10:443/tcp is also a member of services[1] (fwmark 3)"), "{p}");
        let p = problems(&format!("{WEB}, {plain}"), MARK3);
        assert!(p.contains("services[1]: service 198.18.0.10:443/tcp is also a member of services[0] (fwmark 3)"), "{p}");
        // Two groups sharing a port, and a range overlapping within a mark.
        let other = WEB.replace("Some(3)", "Some(4)");
        let mark4 =
            r#"(mark: 4, match: [(vip: "198.18.0.11", protocol: Udp, ports: "8005-8020")])"#;
        let p = problems(&format!("{WEB}, {other}"), &format!("{MARK3}, {mark4}"));
        assert!(p.contains("fwmarks[1].match[0].ports: 198.18.0.11:8005/udp is also matched by services[0] (fwmark 3)"), "{p}");
        let p = problems(WEB, &MARK3.replace("\"443\"", "\"79-81\""));
        assert!(p.contains("fwmarks[0].match[1].ports: 198.18.0.10:80/tcp is also matched by services[0] (fwmark 3)"), "{p}");
        // The same mark served twice.
        let p = problems(&format!("{WEB}, {WEB}"), MARK3);
        assert!(
            p.contains("services[1].fwmark: duplicate service group fwmark 3, also at services[0]"),
            "{p}"
        );
        // The same port under another protocol is another key.
        let udp443 = r#"(vip: "198.18.0.10", port: 443, protocol: Udp, real_servers: [(address: "198.18.0.21")])"#;
        assert_eq!(problems(&format!("{WEB}, {udp443}"), MARK3), "");
    }

    #[test]
    fn group_real_servers_are_dr_or_tunnel_with_a_port_to_check() {
        let p = problems(
            &WEB.replace(
                "(address: \"198.18.0.21\")",
                "(address: \"198.18.0.21\", port: Some(8080), forward: Nat)",
            ),
            MARK3,
        );
        assert!(p.contains("services[0].real_servers[0].forward: a service group (fwmark 3) forwards by DR or tunnel"), "{p}");
        // DR real servers may name a port (for their checks) that is none of the members'.
        assert_eq!(
            problems(&WEB.replace("port: Some(80)", "port: Some(8443)"), MARK3),
            ""
        );
        let checked = WEB.replace(
            "scheduler: Rr,",
            "scheduler: Rr, health_check: Some((check: Tcp)),",
        );
        let p = problems(&checked, MARK3);
        assert!(p.contains("services[0].real_servers[0].port: a service group (fwmark 3) has no single port to check 198.18.0.21"), "{p}");
        assert!(!p.contains("real_servers[1]"), "{p}");
        assert_eq!(
            problems(
                &checked.replace("(check: Tcp)", "(check: Tcp, port: Some(80))"),
                MARK3
            ),
            ""
        );
        let p = problems(
            &WEB.replace("(address: \"198.18.0.21\")", "(address: \"198.18.0.10\")"),
            MARK3,
        );
        assert!(
            p.contains("real server 198.18.0.10 is the service's own VIP"),
            "{p}"
        );
    }

    #[test]
    fn group_without_marks_is_allowed_and_a_service_needs_vip_and_port() {
        // What `ipvsadm -A -f 3` makes: a group that takes nothing yet.
        assert_eq!(
            problems("(fwmark: Some(3), persistence: Some((timeout: 300)))", ""),
            ""
        );
        for (svc, field) in [
            (r#"(port: 80)"#, "vip"),
            (r#"(vip: "198.18.0.10")"#, "port"),
        ] {
            let e = parse(&text(svc, ""), "t.ron").unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "missing field named `{field}` (only a service group"
                )),
                "{e}"
            );
        }
    }
}
