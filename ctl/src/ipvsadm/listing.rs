//! ipvsadm's listings, column for column, so that scripts written against
//! `ipvsadm -Ln` (awk on fields, fixed columns, the three header lines)
//! read lbd's the same way. Unlike lbctl's own tables these keep ipvsadm's
//! padding, trailing blanks included.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use lb_api::addr::SockAddr;

use lb_api::config::{Protocol, SyncConfig, Timeouts};
use lb_api::protocol::{ConnList, RealInfo, ServiceInfo, ServiceKey};

use super::rules::{info_family, mask_text, service_order};
use super::{Columns, ListSpec};

/// The version ipvsadm's first line names (the IPVS of every current
/// kernel); scripts match on it.
pub const IPVS_VERSION: &str = "1.2.1";

/// ipvsadm's first line; `size` is lbd's connection-table capacity (IPVS's
/// is its connection hash size).
pub fn version_line(size: u64) -> String {
    format!("IP Virtual Server version {IPVS_VERSION} (size={size})\n")
}

/// A counter as ipvsadm prints it in a 9-character column: exact below 100
/// million, then K (thousands) below 1e9, M below 1e11, G below 1e14, T;
/// with `exact` every digit, one blank before.
pub fn largenum(n: u64, exact: bool) -> String {
    if exact {
        let digits = n.to_string();
        let w = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        return format!("{n:>w$}");
    }
    if n < 100_000_000 {
        format!("{n:>9}")
    } else if n < 1_000_000_000 {
        format!("{:>8}K", n / 1_000)
    } else if n < 100_000_000_000 {
        format!("{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        format!("{:>8}G", n / 1_000_000_000)
    } else {
        format!("{:>8}T", n / 1_000_000_000_000)
    }
}

fn per_second(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.round() as u64
    } else {
        0
    }
}

fn proto_upper(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

/// At most `n` characters of `s` (ipvsadm cuts its IPv4 address
/// columns); an IPv6 one (`ipv6`) is left whole and widens its column, as
/// ipvsadm does.
fn cut(s: &str, n: usize, ipv6: bool) -> String {
    if ipv6 {
        return s.to_string();
    }
    s.chars().take(n).collect()
}

fn title(columns: Columns) -> String {
    let head = "Prot LocalAddress:Port";
    match columns {
        Columns::Stats => format!(
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ),
        Columns::Rate => format!(
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ),
        Columns::Thresholds => format!(
            "{head:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        ),
        Columns::Plain => "Prot LocalAddress:Port Scheduler Flags\n  \
             -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            .to_string(),
    }
}

/// The real servers ipvsadm would show: IPVS holds a keepalived or
/// ldirectord fallback ("sorry") server only while it is in service.
fn shown_reals(s: &ServiceInfo, sort: bool) -> Vec<&RealInfo> {
    let mut reals: Vec<&RealInfo> = s
        .reals
        .iter()
        .filter(|r| !(r.fallback && r.weight == 0))
        .collect();
    if sort {
        reals.sort_by_key(|r| (r.address, r.port));
    }
    reals
}

/// Real servers' configured weights, by service and address.
pub type Weights = HashMap<(ServiceKey, IpAddr), u32>;

/// The weight ipvsadm shows: 0 while the health check has the server
/// out (as IPVS shows a quiesced one), otherwise the configured weight —
/// not the moments lbd holds a server back (a new server whose MAC is not
/// resolved yet), which IPVS does not have. The fallback server, listed
/// only while in service, shows lbd's weight for it.
fn shown_weight(s: &ServiceInfo, r: &RealInfo, configured: Option<&Weights>) -> u32 {
    if r.fallback || r.health.as_ref().is_some_and(|h| !h.up) {
        return r.weight;
    }
    configured
        .and_then(|w| w.get(&(s.key, r.address)).copied())
        .unwrap_or(r.weight)
}

fn service_block(out: &mut String, s: &ServiceInfo, spec: &ListSpec, configured: Option<&Weights>) {
    let name = match s.key.fwmark {
        // ipvsadm marks an IPv6 firewall-mark service so.
        Some(m) if info_family(s).is_ipv6() => format!("FWM  {m} IPv6"),
        Some(m) => format!("FWM  {m}"),
        None => cut(
            &format!(
                "{}  {}",
                proto_upper(s.key.protocol),
                SockAddr(s.key.vip, s.key.port)
            ),
            33,
            s.key.vip.is_ipv6(),
        ),
    };
    let exact = spec.exact;
    match spec.columns {
        Columns::Stats => {
            let c = &s.counters;
            let _ = write!(out, "{name:<33}");
            for n in [
                c.conns,
                c.packets_in,
                c.packets_out,
                c.bytes_in,
                c.bytes_out,
            ] {
                out.push_str(&largenum(n, exact));
            }
        }
        Columns::Rate => {
            let r = &s.rates;
            let _ = write!(out, "{name:<33}");
            for x in [
                r.conns,
                r.packets_in,
                r.packets_out,
                r.bytes_in,
                r.bytes_out,
            ] {
                out.push_str(&largenum(per_second(x), exact));
            }
        }
        Columns::Plain | Columns::Thresholds => {
            let _ = write!(out, "{name} {}", s.scheduler.name());
            if let Some(p) = s.persistence {
                let _ = write!(out, " persistent {}", p.timeout);
                if let Some(m) = mask_text(&p, info_family(s)) {
                    let _ = write!(out, " mask {m}");
                }
            }
        }
    }
    out.push('\n');
    for r in shown_reals(s, !spec.nosort) {
        let d = cut(
            &SockAddr(r.address, r.port).to_string(),
            28,
            r.address.is_ipv6(),
        );
        match spec.columns {
            Columns::Plain => {
                let _ = writeln!(
                    out,
                    "  -> {d:<28} {:<7} {:<6} {:<10} {:<10}",
                    r.forward.ipvs_name(),
                    shown_weight(s, r, configured),
                    r.active,
                    r.inactive
                );
            }
            Columns::Stats => {
                let c = &r.counters;
                let _ = write!(out, "  -> {d:<28}");
                for n in [
                    c.conns,
                    c.packets_in,
                    c.packets_out,
                    c.bytes_in,
                    c.bytes_out,
                ] {
                    out.push_str(&largenum(n, exact));
                }
                out.push('\n');
            }
            Columns::Rate => {
                let q = &r.rates;
                let _ = write!(
                    out,
                    "  -> {d:<28} {:>8} {:>8} {:>8}",
                    per_second(q.conns),
                    per_second(q.packets_in),
                    per_second(q.packets_out)
                );
                for x in [q.bytes_in, q.bytes_out] {
                    out.push_str(&largenum(per_second(x), exact));
                }
                out.push('\n');
            }
            Columns::Thresholds => {
                // lbd has no thresholds: IPVS shows 0 for unset ones.
                let _ = writeln!(
                    out,
                    "  -> {d:<28} {:<10} {:<10} {:<10} {:<10}",
                    0, 0, r.active, r.inactive
                );
            }
        }
    }
}

/// `-L`: the whole table, headed by the version line (`size` known), or one
/// service (`spec.service`), headed by the titles only, as ipvsadm does.
/// `configured`: the configured weights (see [`shown_weight`]).
pub fn table(
    size: Option<u64>,
    services: &[ServiceInfo],
    spec: &ListSpec,
    configured: Option<&Weights>,
) -> String {
    let mut out = String::new();
    if spec.service.is_none() {
        if let Some(n) = size {
            out.push_str(&version_line(n));
        }
    }
    out.push_str(&title(spec.columns));
    let mut order: Vec<&ServiceInfo> = services.iter().collect();
    if !spec.nosort {
        order.sort_by(|a, b| service_order(&a.key, &b.key));
    }
    for s in order {
        service_block(&mut out, s, spec, configured);
    }
    out
}

/// `-L -c`: ipvsadm's connection listing.
pub fn connections(list: &ConnList) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let _ = writeln!(
        out,
        "pro expire {:<11} {:<18} {:<18} destination",
        "state", "source", "virtual"
    );
    for c in &list.conns {
        let secs = c.expires_ms / 1000;
        let dest = match c.real {
            Some(ip) => SockAddr(ip, c.real_port).to_string(),
            None => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {dest}",
            proto_upper(c.protocol),
            format!("{:02}:{:02}", secs / 60, secs % 60),
            c.state,
            SockAddr(c.client, c.client_port),
            SockAddr(c.vip, c.vport),
        );
    }
    out
}

/// `-L --timeout`.
pub fn timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp_established, t.tcp_fin_wait, t.udp
    )
}

/// `-L --daemon`: lbd's sync both sends (as master) and receives, so it is
/// shown as both of IPVS's daemons; nothing when there is no sync.
pub fn daemon(sync: Option<&SyncConfig>) -> String {
    match sync {
        None => String::new(),
        Some(s) => format!(
            "master sync daemon (peer={}, port={})\nbackup sync daemon (peer={}, port={})\n",
            s.peer, s.port, s.peer, s.port
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvsadm::{ListWhat, ServiceRef};
    use lb_api::config::{Forward, Persistence, Scheduler};
    use lb_api::protocol::{ConnInfo, Counters, Rates, ServiceKey};

    fn real(ip: &str, weight: u32) -> RealInfo {
        RealInfo {
            address: ip.parse().unwrap(),
            port: 80,
            forward: Forward::Dr,
            weight,
            active: 0,
            inactive: 0,
            draining: false,
            counters: Counters::default(),
            rates: Rates::default(),
            health: None,
            fallback: false,
        }
    }

    fn svc(proto: Protocol, vip: &str, port: u16, reals: Vec<RealInfo>) -> ServiceInfo {
        ServiceInfo {
            members: Vec::new(),
            key: ServiceKey::addr(proto, vip.parse().unwrap(), port),
            scheduler: Scheduler::Rr,
            persistence: None,
            counters: Counters::default(),
            rates: Rates::default(),
            reals,
        }
    }

    fn spec(columns: Columns) -> ListSpec {
        ListSpec {
            what: ListWhat::Table,
            service: None,
            columns,
            exact: false,
            nosort: false,
        }
    }

    /// Seed 004's listing, addresses rewritten: added .145 then .143,
    /// listed sorted, with ipvsadm's padding.
    #[test]
    fn plain_table_is_ipvsadms() {
        let s = svc(
            Protocol::Tcp,
            "192.168.214.140",
            80,
            vec![real("192.168.214.145", 1), real("192.168.214.143", 1)],
        );
        let text = table(Some(4096), &[s], &spec(Columns::Plain), None);
        assert_eq!(
            text,
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n  \
             -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  192.168.214.140:80 rr\n  \
             -> 192.168.214.143:80           Route   1      0          0         \n  \
             -> 192.168.214.145:80           Route   1      0          0         \n"
        );
    }

    #[test]
    fn services_sort_like_ipvsadm_unless_nosort() {
        let mut p = svc(Protocol::Tcp, "10.0.0.2", 443, vec![]);
        p.persistence = Some(Persistence::v4(600, 24));
        let v = vec![
            svc(Protocol::Udp, "10.0.0.1", 53, vec![]),
            p,
            svc(Protocol::Tcp, "10.0.0.2", 80, vec![]),
        ];
        let text = table(None, &v, &spec(Columns::Plain), None);
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "TCP  10.0.0.2:80 rr",
                "TCP  10.0.0.2:443 rr persistent 600 mask 255.255.255.0",
                "UDP  10.0.0.1:53 rr"
            ]
        );
        let mut ns = spec(Columns::Plain);
        ns.nosort = true;
        let text = table(None, &v, &ns, None);
        assert!(text.lines().nth(2).unwrap().starts_with("UDP"), "{text}");
    }

    #[test]
    fn one_service_has_no_version_line() {
        let mut sp = spec(Columns::Plain);
        sp.service = Some(ServiceRef::Fwmark(1));
        let text = table(
            Some(1),
            &[svc(Protocol::Tcp, "10.0.0.1", 80, vec![])],
            &sp,
            None,
        );
        assert!(text.starts_with("Prot LocalAddress"), "{text}");
    }

    #[test]
    fn an_unused_fallback_is_not_listed() {
        let mut fb = real("10.0.0.9", 0);
        fb.fallback = true;
        let mut down = real("10.0.0.11", 0);
        down.health = Some(lb_api::protocol::RealHealth {
            up: false,
            checked: true,
            last: "connect: refused".into(),
            since_s: 1.0,
            transitions: 1,
        });
        let s = svc(Protocol::Tcp, "10.0.0.1", 80, vec![down, fb.clone()]);
        let text = table(None, &[s], &spec(Columns::Plain), None);
        assert!(!text.contains("10.0.0.9"), "{text}");
        assert!(
            text.contains(
                "  -> 10.0.0.11:80                 Route   0      0          0         \n"
            ),
            "{text}"
        );
        fb.weight = 1;
        let s = svc(Protocol::Tcp, "10.0.0.1", 80, vec![fb]);
        assert!(table(None, &[s], &spec(Columns::Plain), None).contains("10.0.0.9:80"));
    }

    #[test]
    fn weights_are_the_configured_ones_unless_a_check_has_the_server_out() {
        let k = ServiceKey::addr(Protocol::Tcp, "10.0.0.1".parse().unwrap(), 80);
        // lbd holds .12 back for a moment (weight 0), .13 is down by its
        // check; both are configured with weight 2.
        let held = real("10.0.0.12", 0);
        let mut down = real("10.0.0.13", 0);
        down.health = Some(lb_api::protocol::RealHealth {
            up: false,
            checked: true,
            last: "x".into(),
            since_s: 0.0,
            transitions: 1,
        });
        let s = svc(Protocol::Tcp, "10.0.0.1", 80, vec![held, down]);
        let mut w = Weights::new();
        for ip in ["10.0.0.12", "10.0.0.13"] {
            w.insert((k, ip.parse().unwrap()), 2);
        }
        let text = table(
            None,
            std::slice::from_ref(&s),
            &spec(Columns::Plain),
            Some(&w),
        );
        assert!(
            text.contains("  -> 10.0.0.12:80                 Route   2 "),
            "{text}"
        );
        assert!(
            text.contains("  -> 10.0.0.13:80                 Route   0 "),
            "{text}"
        );
        let text = table(None, &[s], &spec(Columns::Plain), None);
        assert!(
            text.contains("  -> 10.0.0.12:80                 Route   0 "),
            "{text}"
        );
    }

    #[test]
    fn stats_rate_and_thresholds_columns() {
        let mut r = real("10.0.0.11", 1);
        r.counters = Counters {
            conns: 5,
            packets_in: 123_456_789,
            bytes_in: 1_500_000_000,
            packets_out: 0,
            bytes_out: 0,
        };
        r.rates = Rates {
            conns: 2.4,
            packets_in: 10.5,
            bytes_in: 1_500_000.0,
            packets_out: 0.0,
            bytes_out: 0.0,
        };
        r.active = 3;
        r.inactive = 4;
        let s = svc(Protocol::Tcp, "10.0.0.1", 80, vec![r]);
        let stats = table(None, std::slice::from_ref(&s), &spec(Columns::Stats), None);
        assert_eq!(
            stats,
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  \
             -> RemoteAddress:Port\n\
             TCP  10.0.0.1:80                         0        0        0        0        0\n  \
             -> 10.0.0.11:80                        5  123456K        0    1500M        0\n"
        );
        let rate = table(None, std::slice::from_ref(&s), &spec(Columns::Rate), None);
        assert!(
            rate.ends_with(
                "  -> 10.0.0.11:80                        2       11        0  1500000        0\n"
            ),
            "{rate}"
        );
        let thr = table(None, &[s], &spec(Columns::Thresholds), None);
        assert!(
            thr.ends_with(
                "  -> 10.0.0.11:80                 0          0          3          4         \n"
            ),
            "{thr}"
        );
    }

    /// IPv6 as ipvsadm lists it: bracketed, never cut (the column widens),
    /// `mask` as a prefix length; IPv4 services sort before IPv6 ones.
    #[test]
    fn ipv6_is_listed_like_ipvsadm() {
        let mut r = real("2001:db8::10", 1);
        r.active = 2;
        let mut s = svc(Protocol::Tcp, "2001:db8::100", 80, vec![r]);
        s.persistence = Some(Persistence {
            timeout: 300,
            netmask: 32,
            prefix: Some(64),
        });
        let v4 = svc(Protocol::Tcp, "198.18.0.100", 80, vec![]);
        let text = table(None, &[s.clone(), v4], &spec(Columns::Plain), None);
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "TCP  198.18.0.100:80 rr",
                "TCP  [2001:db8::100]:80 rr persistent 300 mask 64",
                "  -> [2001:db8::10]:80            Route   1      2          0         ",
            ]
        );
        // A long address is not cut, as ipvsadm cuts only IPv4 names.
        let long = svc(
            Protocol::Udp,
            "2001:db8:aaaa:bbbb:cccc:dddd:eeee:100",
            53,
            vec![real("2001:db8:aaaa:bbbb:cccc:dddd:eeee:10", 1)],
        );
        let text = table(None, &[long], &spec(Columns::Stats), None);
        assert!(
            text.contains("UDP  [2001:db8:aaaa:bbbb:cccc:dddd:eeee:100]:53        0"),
            "{text}"
        );
        assert!(
            text.contains("  -> [2001:db8:aaaa:bbbb:cccc:dddd:eeee:10]:80        0"),
            "{text}"
        );
        // The default prefix (128) shows no mask.
        s.persistence = Some(Persistence::v4(300, 32));
        let text = table(None, &[s], &spec(Columns::Plain), None);
        assert!(
            text.contains("TCP  [2001:db8::100]:80 rr persistent 300\n"),
            "{text}"
        );
    }

    /// An IPv6 service group as ipvsadm lists an IPv6 firewall-mark
    /// service (`FWM  3 IPv6`), its mask a prefix length.
    #[test]
    fn ipv6_groups_are_marked_ipv6() {
        let mut g = svc(Protocol::Tcp, "0.0.0.0", 0, vec![real("2001:db8::10", 1)]);
        g.key = ServiceKey::group(3);
        g.members = vec![lb_api::config::GroupMatch {
            vip: "2001:db8::100".parse().unwrap(),
            protocol: Protocol::Tcp,
            ports: lb_api::config::PortRange {
                first: 80,
                last: 80,
            },
        }];
        g.persistence = Some(Persistence {
            timeout: 300,
            netmask: 32,
            prefix: Some(64),
        });
        let text = table(None, &[g], &spec(Columns::Plain), None);
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(lines[0], "FWM  3 IPv6 rr persistent 300 mask 64");
    }

    #[test]
    fn ipv6_connections_are_bracketed() {
        let list = ConnList {
            conns: vec![ConnInfo {
                protocol: Protocol::Tcp,
                client: "2001:db8::1".parse().unwrap(),
                client_port: 40000,
                vip: "2001:db8::100".parse().unwrap(),
                vport: 80,
                real: Some("2001:db8::10".parse().unwrap()),
                real_port: 80,
                state: "ESTABLISHED".into(),
                expires_ms: 899_500,
                worker: 0,
                template: false,
            }],
            total: 1,
            truncated: false,
        };
        assert_eq!(
            connections(&list).lines().nth(2).unwrap(),
            "TCP 14:59  ESTABLISHED [2001:db8::1]:40000 [2001:db8::100]:80 [2001:db8::10]:80"
        );
    }

    #[test]
    fn large_numbers_scale_as_ipvsadm() {
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(100_000_000, false), "  100000K");
        assert_eq!(largenum(999_999_999, false), "  999999K");
        assert_eq!(largenum(1_000_000_000, false), "    1000M");
        assert_eq!(largenum(99_999_999_999, false), "   99999M");
        assert_eq!(largenum(100_000_000_000, false), "     100G");
        assert_eq!(largenum(100_000_000_000_000, false), "     100T");
        assert_eq!(largenum(7, true), "        7");
        assert_eq!(largenum(1_234_567_890, true), " 1234567890");
    }

    #[test]
    fn connections_timeouts_and_daemon() {
        let list = ConnList {
            conns: vec![ConnInfo {
                protocol: Protocol::Tcp,
                client: "10.0.0.100".parse().unwrap(),
                client_port: 40000,
                vip: "10.0.0.1".parse().unwrap(),
                vport: 80,
                real: Some("10.0.0.11".parse().unwrap()),
                real_port: 80,
                state: "ESTABLISHED".into(),
                expires_ms: 899_500,
                worker: 0,
                template: false,
            }],
            total: 1,
            truncated: false,
        };
        assert_eq!(
            connections(&list),
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination\n\
             TCP 14:59  ESTABLISHED 10.0.0.100:40000   10.0.0.1:80        10.0.0.11:80\n"
        );
        assert_eq!(
            timeouts(&Timeouts::default()),
            "Timeout (tcp tcpfin udp): 900 120 300\n"
        );
        assert_eq!(daemon(None), "");
        let s = SyncConfig {
            peer: "10.0.0.3".parse().unwrap(),
            port: 8848,
            max_kbps: 10_000,
            batch_ms: 50,
        };
        assert!(daemon(Some(&s)).starts_with("master sync daemon (peer=10.0.0.3, port=8848)\n"));
    }
}
