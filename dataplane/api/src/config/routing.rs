//! The director in an L3 fabric: its interfaces (ports and their 802.1Q
//! VLANs), static routes through gateways, and where a packet for an
//! address leaves (the longest matching prefix). The checks of `routes`
//! and `ports[].vlans` live here too; the snapshot compiles the same
//! lookups, so validation and forwarding agree.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::error::Problem;
use super::facts::special_address;
use super::types::{Config, Forward, Ipv4Cidr};

/// Most static routes: a packet to a client behind a router may look
/// through all of them (NAT replies), so they stay few.
pub const MAX_ROUTES: usize = 256;
/// Most VLANs over all ports.
pub const MAX_VLANS: usize = 64;

/// One of the director's interfaces: a port, or a VLAN on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The port's name, or `PORT.ID` for a VLAN ("lan0.10").
    pub name: String,
    /// Index of the port (in `ports`) that carries it.
    pub port: usize,
    /// The VLAN id; None for the port itself (untagged).
    pub vlan: Option<u16>,
    pub address: Ipv4Cidr,
    /// Where it is written: `ports[0]` or `ports[0].vlans[1]`.
    pub field: String,
}

impl Config {
    /// Every interface: the ports in order, then each port's VLANs (by
    /// port, in the order written). This order is the interfaces' index
    /// in the snapshot: ports keep their own index, VLANs follow.
    pub fn interfaces(&self) -> Vec<Interface> {
        let ports = self.ports.iter().enumerate().map(|(i, p)| Interface {
            name: p.name.clone(),
            port: i,
            vlan: None,
            address: p.address,
            field: format!("ports[{i}]"),
        });
        let vlans = self.ports.iter().enumerate().flat_map(|(i, p)| {
            p.vlans.iter().enumerate().map(move |(j, v)| Interface {
                name: format!("{}.{}", p.name, v.id),
                port: i,
                vlan: Some(v.id),
                address: v.address,
                field: format!("ports[{i}].vlans[{j}]"),
            })
        });
        ports.chain(vlans).collect()
    }
}

/// Where a packet for some address leaves: the interface (index into
/// [`Config::interfaces`]) and the gateway, if it is not on that
/// interface's subnet itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub interface: usize,
    pub via: Option<Ipv4Addr>,
}

/// The interface whose subnet holds `ip` (subnets do not overlap).
pub fn connected(interfaces: &[Interface], ip: Ipv4Addr) -> Option<usize> {
    interfaces.iter().position(|i| i.address.contains(ip))
}

/// The route to `ip`: the longest prefix among the interfaces' subnets and
/// `cfg.routes`; a connected subnet wins a tie. None: unreachable (or the
/// winning route's gateway is on no subnet, which validation refuses).
pub fn next_hop(cfg: &Config, interfaces: &[Interface], ip: Ipv4Addr) -> Option<NextHop> {
    let direct = connected(interfaces, ip).map(|i| (interfaces[i].address.prefix, i));
    let routed = cfg
        .routes
        .iter()
        .filter(|r| r.prefix.contains(ip))
        .max_by_key(|r| r.prefix.prefix);
    match (direct, routed) {
        (Some((len, i)), Some(r)) if len >= r.prefix.prefix => Some(NextHop {
            interface: i,
            via: None,
        }),
        (_, Some(r)) => Some(NextHop {
            interface: connected(interfaces, r.via)?,
            via: Some(r.via),
        }),
        (Some((_, i)), None) => Some(NextHop {
            interface: i,
            via: None,
        }),
        (None, None) => None,
    }
}

/// Whether a real server at `ip` forwarded by `forward` can be reached:
/// DR and NAT real servers on an interface's subnet (DR rewrites only
/// MACs; NAT servers use the director as their gateway), tunnel ones also
/// through a route.
pub fn real_server_reachable(
    cfg: &Config,
    interfaces: &[Interface],
    ip: Ipv4Addr,
    forward: Forward,
) -> bool {
    match forward {
        Forward::Tunnel => next_hop(cfg, interfaces, ip).is_some(),
        Forward::Dr | Forward::Nat => connected(interfaces, ip).is_some(),
    }
}

fn network(c: Ipv4Cidr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(c.addr) & c.netmask())
}

fn broadcast(c: Ipv4Cidr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(c.addr) | !c.netmask())
}

/// The interfaces' subnets, for messages: "lan0 198.18.0.2/24, lan0.10 ...".
fn subnets(interfaces: &[Interface]) -> String {
    interfaces
        .iter()
        .map(|i| format!("{} {}", i.name, i.address))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `routes`: networks written as networks, each once, through a gateway
/// that is a neighbour on one of the director's subnets.
pub(super) fn check_routes(cfg: &Config, v: &mut Vec<Problem>) {
    let interfaces = cfg.interfaces();
    if cfg.routes.len() > MAX_ROUTES {
        v.push(Problem::new(
            "routes",
            format!(
                "{} routes; at most {MAX_ROUTES} (a NAT reply may look through all of them)",
                cfg.routes.len()
            ),
        ));
    }
    let mut seen: HashMap<(Ipv4Addr, u8), usize> = HashMap::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let at = |f: &str| format!("routes[{i}].{f}");
        let p = r.prefix;
        if p.addr != network(p) {
            v.push(Problem::new(
                at("prefix"),
                format!(
                    "prefix {p} has host bits set; write the network, {}/{}",
                    network(p),
                    p.prefix
                ),
            ));
        } else if let Some(&j) = seen.get(&(p.addr, p.prefix)) {
            v.push(Problem::new(
                at("prefix"),
                format!("prefix {p} is also routed by routes[{j}]; a prefix has one gateway"),
            ));
        } else {
            seen.insert((p.addr, p.prefix), i);
        }
        let via = r.via;
        if let Some(why) = special_address(via.into()) {
            v.push(Problem::new(at("via"), format!("gateway {via} is {why}")));
        } else if let Some(own) = interfaces.iter().find(|i| i.address.addr == via) {
            v.push(Problem::new(
                at("via"),
                format!(
                    "gateway {via} is the director's own address on {}; the gateway is \
                     another router on that subnet",
                    own.name
                ),
            ));
        } else {
            match connected(&interfaces, via) {
                None => v.push(Problem::new(
                    at("via"),
                    format!(
                        "gateway {via} is not on any port's or VLAN's subnet ({}); a gateway \
                         must be a directly connected neighbour",
                        subnets(&interfaces)
                    ),
                )),
                Some(k) => {
                    let a = interfaces[k].address;
                    if via == network(a) || via == broadcast(a) {
                        v.push(Problem::new(
                            at("via"),
                            format!(
                                "gateway {via} is the network or broadcast address of {}'s \
                                 subnet {a}",
                                interfaces[k].name
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// `ports[].vlans`: ids 1 to 4094, once per port; addresses usable, their
/// subnets apart from every other interface's; not a VIP or real server.
pub(super) fn check_vlans(cfg: &Config, v: &mut Vec<Problem>) {
    let interfaces = cfg.interfaces();
    let count = interfaces.iter().filter(|i| i.vlan.is_some()).count();
    if count > MAX_VLANS {
        v.push(Problem::new(
            "ports",
            format!("{count} VLANs; at most {MAX_VLANS} over all ports"),
        ));
    }
    for (k, itf) in interfaces.iter().enumerate() {
        let Some(id) = itf.vlan else { continue };
        let at = |f: &str| format!("{}.{f}", itf.field);
        if !(1..=4094).contains(&id) {
            v.push(Problem::new(
                at("id"),
                format!("VLAN id {id} is out of range (1 to 4094)"),
            ));
        } else if let Some(other) = interfaces[..k]
            .iter()
            .find(|o| o.port == itf.port && o.vlan == Some(id))
        {
            v.push(Problem::new(
                at("id"),
                format!("VLAN {id} is also defined at {} on this port", other.field),
            ));
        }
        let a = itf.address;
        if let Some(why) = special_address(a.addr.into()) {
            v.push(Problem::new(
                at("address"),
                format!("address {a} is {why}; the VLAN needs a unicast address"),
            ));
            continue;
        }
        if !(8..=30).contains(&a.prefix) {
            v.push(Problem::new(
                at("address"),
                format!("prefix /{} of {a} is out of range (8 to 30)", a.prefix),
            ));
            continue;
        }
        if a.addr == network(a) || a.addr == broadcast(a) {
            v.push(Problem::new(
                at("address"),
                format!("address {a} is the network or broadcast address of its subnet"),
            ));
            continue;
        }
        // Ports were compared among themselves (validate.rs); a VLAN with
        // every interface before it.
        if let Some(o) = interfaces[..k]
            .iter()
            .find(|o| o.address.contains(a.addr) || a.contains(o.address.addr))
        {
            v.push(Problem::new(
                at("address"),
                format!(
                    "subnet {}/{} of {a} overlaps subnet {}/{} of {} ({})",
                    network(a),
                    a.prefix,
                    network(o.address),
                    o.address.prefix,
                    o.field,
                    o.name
                ),
            ));
        }
        for (i, s) in cfg.services.iter().enumerate() {
            if cfg.service_vips(s).contains(&a.addr.into()) {
                v.push(Problem::new(
                    at("address"),
                    format!(
                        "address {} of VLAN {} is the VIP of services[{i}]; use a separate \
                         address for the service",
                        a.addr, itf.name
                    ),
                ));
            }
            if s.real_servers.iter().any(|r| r.address == a.addr) {
                v.push(Problem::new(
                    at("address"),
                    format!(
                        "address {} of VLAN {} is a real server of services[{i}]; a local \
                         real server must be a port's own address",
                        a.addr, itf.name
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, ConfigError};

    /// A port 198.18.0.2/24 with VLANs 10 and 20 on it, `routes` and a
    /// service whose real servers are `reals`.
    fn config(vlans: &str, routes: &str, reals: &str) -> String {
        format!(
            r#"(
    ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24",
             vlans: [{vlans}])],
    routes: [{routes}],
    services: [(vip: "198.18.0.100", port: 80, scheduler: Mh, real_servers: [{reals}])],
)"#
        )
    }

    const VLANS: &str =
        r#"(id: 10, address: "198.18.10.2/24"), (id: 20, address: "198.18.20.2/24")"#;

    fn problems(text: &str) -> Vec<String> {
        match parse(text, "t.ron") {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, origin }) => problems
                .iter()
                .map(|p| p.display_in(&origin).to_string())
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn interfaces_are_ports_then_vlans() {
        let cfg = parse(&config(VLANS, "", r#"(address: "198.18.0.11")"#), "t").unwrap();
        let names: Vec<(String, Option<u16>)> = cfg
            .interfaces()
            .into_iter()
            .map(|i| (i.name, i.vlan))
            .collect();
        assert_eq!(
            names,
            [
                ("lan0".into(), None),
                ("lan0.10".into(), Some(10)),
                ("lan0.20".into(), Some(20))
            ]
        );
    }

    #[test]
    fn longest_prefix_wins_and_connected_wins_a_tie() {
        let routes = r#"(prefix: "198.19.0.0/16", via: "198.18.0.254"),
                        (prefix: "198.19.5.0/24", via: "198.18.10.254"),
                        (prefix: "0.0.0.0/0", via: "198.18.20.1"),
                        (prefix: "198.18.20.0/24", via: "198.18.0.253")"#;
        let cfg = parse(&config(VLANS, routes, r#"(address: "198.18.0.11")"#), "t").unwrap();
        let itf = cfg.interfaces();
        let hop = |ip: [u8; 4]| next_hop(&cfg, &itf, Ipv4Addr::from(ip));
        let via = |i: usize, g: [u8; 4]| {
            Some(NextHop {
                interface: i,
                via: Some(Ipv4Addr::from(g)),
            })
        };
        let direct = |i| {
            Some(NextHop {
                interface: i,
                via: None,
            })
        };
        assert_eq!(hop([198, 19, 5, 9]), via(1, [198, 18, 10, 254]));
        assert_eq!(hop([198, 19, 6, 9]), via(0, [198, 18, 0, 254]));
        assert_eq!(hop([198, 51, 100, 1]), via(2, [198, 18, 20, 1]));
        assert_eq!(hop([198, 18, 0, 11]), direct(0));
        assert_eq!(hop([198, 18, 10, 11]), direct(1));
        // A route of the same length as a connected subnet: connected wins.
        assert_eq!(hop([198, 18, 20, 7]), direct(2));
        let none = parse(&config("", "", r#"(address: "198.18.0.11")"#), "t").unwrap();
        assert_eq!(
            next_hop(&none, &none.interfaces(), Ipv4Addr::new(198, 19, 0, 1)),
            None
        );
    }

    #[test]
    fn tunnel_real_servers_may_be_behind_a_gateway_dr_ones_not() {
        let route = r#"(prefix: "198.19.5.0/24", via: "198.18.0.254")"#;
        let tun = r#"(address: "198.19.5.10", forward: Tunnel)"#;
        assert_eq!(problems(&config("", route, tun)), Vec::<String>::new());
        let p = problems(&config("", "", tun));
        assert!(p[0].contains("behind a gateway (`routes`)"), "{p:?}");
        let dr = r#"(address: "198.19.5.10")"#;
        let p = problems(&config("", route, dr));
        assert!(
            p.len() == 1 && p[0].contains("DR needs real servers on a directly connected"),
            "{p:?}"
        );
        // A DR real server on a VLAN's subnet is directly connected.
        let dr = r#"(address: "198.18.20.11")"#;
        assert_eq!(problems(&config(VLANS, "", dr)), Vec::<String>::new());
    }

    #[test]
    fn route_problems_name_the_line() {
        let rs = r#"(address: "198.18.0.11")"#;
        let cases = [
            (
                r#"(prefix: "198.19.5.1/24", via: "198.18.0.254")"#,
                "t.ron:4:15: routes[0].prefix: prefix 198.19.5.1/24 has host bits set; write the network, 198.19.5.0/24",
            ),
            (
                r#"(prefix: "198.19.5.0/24", via: "198.20.0.1")"#,
                "t.ron:4:40: routes[0].via: gateway 198.20.0.1 is not on any port's or VLAN's subnet (lan0 198.18.0.2/24, lan0.10 198.18.10.2/24, lan0.20 198.18.20.2/24); a gateway must be a directly connected neighbour",
            ),
            (
                r#"(prefix: "198.19.5.0/24", via: "198.18.10.2")"#,
                "t.ron:4:40: routes[0].via: gateway 198.18.10.2 is the director's own address on lan0.10; the gateway is another router on that subnet",
            ),
            (
                r#"(prefix: "198.19.5.0/24", via: "198.18.0.255")"#,
                "t.ron:4:40: routes[0].via: gateway 198.18.0.255 is the network or broadcast address of lan0's subnet 198.18.0.2/24",
            ),
            (
                r#"(prefix: "198.19.5.0/24", via: "224.0.0.1")"#,
                "t.ron:4:40: routes[0].via: gateway 224.0.0.1 is a multicast address",
            ),
        ];
        for (route, want) in cases {
            assert_eq!(problems(&config(VLANS, route, rs)), vec![want.to_string()]);
        }
        let twice = r#"(prefix: "198.19.5.0/24", via: "198.18.0.254"),
                       (prefix: "198.19.5.0/24", via: "198.18.0.253")"#;
        let p = problems(&config("", twice, rs));
        assert!(
            p.len() == 1
                && p[0]
                    .contains("routes[1].prefix: prefix 198.19.5.0/24 is also routed by routes[0]"),
            "{p:?}"
        );
    }

    #[test]
    fn vlan_problems() {
        let rs = r#"(address: "198.18.0.11")"#;
        let cases = [
            (
                r#"(id: 0, address: "198.18.10.2/24")"#,
                "ports[0].vlans[0].id: VLAN id 0 is out of range (1 to 4094)",
            ),
            (
                r#"(id: 4095, address: "198.18.10.2/24")"#,
                "ports[0].vlans[0].id: VLAN id 4095 is out of range (1 to 4094)",
            ),
            (
                r#"(id: 10, address: "198.18.10.2/24"), (id: 10, address: "198.18.11.2/24")"#,
                "ports[0].vlans[1].id: VLAN 10 is also defined at ports[0].vlans[0] on this port",
            ),
            (
                r#"(id: 10, address: "198.18.0.5/25")"#,
                "ports[0].vlans[0].address: subnet 198.18.0.0/25 of 198.18.0.5/25 overlaps subnet 198.18.0.0/24 of ports[0] (lan0)",
            ),
            (
                r#"(id: 10, address: "198.18.0.100/32")"#,
                "ports[0].vlans[0].address: prefix /32 of 198.18.0.100/32 is out of range (8 to 30)",
            ),
            (
                r#"(id: 10, address: "198.18.10.0/24")"#,
                "ports[0].vlans[0].address: address 198.18.10.0/24 is the network or broadcast address of its subnet",
            ),
        ];
        for (vlans, want) in cases {
            let p = problems(&config(vlans, "", rs));
            assert!(
                p.len() == 1 && p[0].ends_with(want) && p[0].starts_with("t.ron:3:"),
                "{vlans}: {p:?}"
            );
        }
        // A VLAN address that is a real server.
        let p = problems(&config(VLANS, "", r#"(address: "198.18.10.2")"#));
        assert!(
            p.iter()
                .any(|p| p.contains("address 198.18.10.2 of VLAN lan0.10 is a real server")),
            "{p:?}"
        );
    }

    #[test]
    fn routes_and_vlans_round_trip() {
        let cfg = parse(
            &config(
                VLANS,
                r#"(prefix: "198.19.5.0/24", via: "198.18.0.254")"#,
                r#"(address: "198.18.0.11")"#,
            ),
            "t",
        )
        .unwrap();
        let text = crate::config::to_ron_string(&cfg);
        assert_eq!(parse(&text, "again").unwrap(), cfg);
        let plain = parse(&config("", "", r#"(address: "198.18.0.11")"#), "t").unwrap();
        let text = crate::config::to_ron_string(&plain);
        assert!(
            !text.contains("vlans") && !text.contains("routes"),
            "{text}"
        );
    }
}
