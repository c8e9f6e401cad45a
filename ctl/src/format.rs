//! Text output: pure functions from lbd's answers to the tables an
//! ipvsadm user expects. Lines carry no trailing blanks.

use std::fmt::Write as _;

use lb_api::addr::{Bracketed, SockAddr};
use lb_api::config::{Protocol, Timeouts};
use lb_api::protocol::{ConnInfo, ConnList, RealInfo, ServiceInfo, StatusInfo};

/// Which columns `list` shows (ipvsadm `-Ln`, `-Ln --stats`, `-Ln --rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMode {
    /// Forward, Weight, ActiveConn, InActConn.
    Plain,
    /// Conns, InPkts, OutPkts, InBytes, OutBytes (totals since start or zero).
    Stats,
    /// CPS, InPPS, OutPPS, InBPS, OutBPS (per second, recent average).
    Rate,
}

fn proto_upper(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

/// Pushes `line` without trailing blanks, then a newline.
fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A counter in an 8-character column: exact when it fits (or `exact`),
/// otherwise scaled with a K/M/G/T/P suffix (powers of 1000), like ipvsadm.
pub fn large(n: u64, exact: bool) -> String {
    let plain = n.to_string();
    if exact || plain.len() <= 8 {
        return plain;
    }
    let mut v = n;
    for suffix in ["K", "M", "G", "T", "P", "E"] {
        v /= 1000;
        if v < 10_000_000 {
            return format!("{v}{suffix}");
        }
    }
    plain
}

fn rate(x: f64, exact: bool) -> String {
    let n = if x.is_finite() && x > 0.0 {
        x.round() as u64
    } else {
        0
    };
    large(n, exact)
}

/// The first line of `list`: who answers, and the configuration generation.
pub fn director_line(status: &StatusInfo) -> String {
    format!(
        "lbd director {} (generation {})",
        status.version, status.generation
    )
}

/// The `list` table. `status`, when known, gives the first line.
pub fn services(
    status: Option<&StatusInfo>,
    services: &[ServiceInfo],
    mode: ListMode,
    exact: bool,
) -> String {
    let mut out = String::new();
    if let Some(st) = status {
        push_line(&mut out, &director_line(st));
    }
    match mode {
        ListMode::Plain => {
            push_line(&mut out, "Prot LocalAddress:Port Scheduler Flags");
            push_line(
                &mut out,
                &format!(
                    "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                    "RemoteAddress:Port", "Forward", "Weight", "ActiveConn", "InActConn"
                ),
            );
        }
        ListMode::Stats | ListMode::Rate => {
            let cols: [&str; 5] = if mode == ListMode::Stats {
                ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]
            } else {
                ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]
            };
            push_line(
                &mut out,
                &format!(
                    "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    "Prot LocalAddress:Port", cols[0], cols[1], cols[2], cols[3], cols[4]
                ),
            );
            push_line(&mut out, "  -> RemoteAddress:Port");
        }
    }
    for s in services {
        // A service group as ipvsadm shows a fwmark service, with its
        // members after it (lbd's own: ipvsadm has no such line).
        let name = match s.key.fwmark {
            Some(m) => format!("FWM  {m}"),
            None => format!(
                "{}  {}",
                proto_upper(s.key.protocol),
                SockAddr(s.key.vip, s.key.port)
            ),
        };
        match mode {
            ListMode::Plain => {
                push_line(
                    &mut out,
                    &format!("{name} {}{}", s.scheduler.name(), flags(s)),
                );
            }
            ListMode::Stats => {
                let c = &s.counters;
                let v = [
                    c.conns,
                    c.packets_in,
                    c.packets_out,
                    c.bytes_in,
                    c.bytes_out,
                ];
                push_line(&mut out, &format!("{name:<33}{}", numbers(&v, exact)));
            }
            ListMode::Rate => {
                let r = &s.rates;
                let v = [
                    r.conns,
                    r.packets_in,
                    r.packets_out,
                    r.bytes_in,
                    r.bytes_out,
                ];
                push_line(&mut out, &format!("{name:<33}{}", rates(&v, exact)));
            }
        }
        if !s.members.is_empty() {
            push_line(&mut out, &format!("  match {}", members(&s.members)));
        }
        for r in &s.reals {
            push_line(&mut out, &real_line(r, mode, exact));
        }
    }
    out
}

/// A service group's members: `198.18.0.100:80/tcp, 198.18.0.100:8000-8099/udp`.
fn members(m: &[lb_api::config::GroupMatch]) -> String {
    m.iter()
        .map(|m| {
            let p = match m.protocol {
                lb_api::config::Protocol::Tcp => "tcp",
                lb_api::config::Protocol::Udp => "udp",
            };
            format!("{}:{}/{p}", Bracketed(m.vip), m.ports)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Flags column, as ipvsadm prints it: ` persistent 300`, and
/// ` mask 255.255.255.0` when clients are grouped by a netmask.
fn flags(s: &ServiceInfo) -> String {
    let Some(p) = s.persistence else {
        return String::new();
    };
    let mut f = format!(" persistent {}", p.timeout);
    let family = crate::ipvsadm::rules::info_family(s);
    if let Some(m) = crate::ipvsadm::rules::mask_text(&p, family) {
        let _ = write!(f, " mask {m}");
    }
    f
}

fn numbers(v: &[u64], exact: bool) -> String {
    v.iter()
        .map(|n| format!(" {:>8}", large(*n, exact)))
        .collect()
}

fn rates(v: &[f64], exact: bool) -> String {
    v.iter()
        .map(|x| format!(" {:>8}", rate(*x, exact)))
        .collect()
}

fn real_line(r: &RealInfo, mode: ListMode, exact: bool) -> String {
    let addr = SockAddr(r.address, r.port).to_string();
    let mut line = match mode {
        ListMode::Plain => format!(
            "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
            addr,
            r.forward.ipvs_name(),
            r.weight,
            r.active,
            r.inactive
        ),
        ListMode::Stats => {
            let c = &r.counters;
            let v = [
                c.conns,
                c.packets_in,
                c.packets_out,
                c.bytes_in,
                c.bytes_out,
            ];
            format!("  -> {addr:<28}{}", numbers(&v, exact))
        }
        ListMode::Rate => {
            let q = &r.rates;
            let v = [
                q.conns,
                q.packets_in,
                q.packets_out,
                q.bytes_in,
                q.bytes_out,
            ];
            format!("  -> {addr:<28}{}", rates(&v, exact))
        }
    };
    if r.draining {
        line.push_str(" draining");
    }
    // Health, after the ipvsadm columns: only for checked servers that are
    // down, and for the fallback server.
    if r.fallback {
        line.push_str(" fallback");
    }
    if let Some(h) = r.health.as_ref().filter(|h| !h.up) {
        let _ = write!(line, " DOWN ({})", h.last);
    }
    line
}

/// Seconds as ipvsadm's `mm:ss` expiry column (minutes may exceed 99).
pub fn mmss(ms: u32) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// The `conns` table, like `ipvsadm -Lnc`.
pub fn conns(list: &ConnList) -> String {
    let mut out = String::new();
    push_line(&mut out, "lbd connection entries");
    push_line(
        &mut out,
        "pro expire state       source             virtual            destination",
    );
    for c in &list.conns {
        push_line(&mut out, &conn_line(c));
    }
    out
}

fn conn_line(c: &ConnInfo) -> String {
    let dest = match c.real {
        Some(ip) => SockAddr(ip, c.real_port).to_string(),
        None => "-".to_string(),
    };
    format!(
        "{:<3} {}  {:<11} {:<18} {:<18} {}",
        proto_upper(c.protocol),
        mmss(c.expires_ms),
        c.state,
        SockAddr(c.client, c.client_port),
        SockAddr(c.vip, c.vport),
        dest
    )
}

/// The note printed (on stderr) when the listing was cut at `--limit`.
pub fn conns_note(list: &ConnList) -> Option<String> {
    list.truncated.then(|| {
        format!(
            "({} of {} connections shown; use --limit)",
            list.conns.len(),
            list.total
        )
    })
}

/// `timeouts`: ipvsadm's line, then every timeout lbd keeps.
pub fn timeouts(t: &Timeouts) -> String {
    let mut out = String::new();
    push_line(
        &mut out,
        &format!(
            "Timeout (tcp tcpfin udp): {} {} {}",
            t.tcp_established, t.tcp_fin_wait, t.udp
        ),
    );
    for (name, v) in [
        ("tcp_established", t.tcp_established),
        ("tcp_syn_recv", t.tcp_syn_recv),
        ("tcp_fin_wait", t.tcp_fin_wait),
        ("tcp_time_wait", t.tcp_time_wait),
        ("tcp_close", t.tcp_close),
        ("udp", t.udp),
    ] {
        push_line(&mut out, &format!("  {name:<16} {v}s"));
    }
    out
}

/// Uptime as `3d 04:05:06` (or `04:05:06` under a day).
pub fn uptime(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs as u64
    } else {
        0
    };
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// `busy / (busy + idle)` as a percentage, `-` before any poll.
pub fn busy_ratio(busy: u64, idle: u64) -> String {
    let total = busy as f64 + idle as f64;
    if total == 0.0 {
        "-".into()
    } else {
        format!("{:.1}%", busy as f64 * 100.0 / total)
    }
}

/// Left-aligned columns separated by two blanks, indented by two; columns
/// whose index is in `right` are right-aligned (numbers).
fn table(rows: &[Vec<String>], right: &[usize]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::from(" ");
        for (i, cell) in r.iter().enumerate() {
            line.push(' ');
            if right.contains(&i) {
                let _ = write!(line, "{cell:>w$}", w = widths[i]);
            } else {
                let _ = write!(line, "{cell:<w$}", w = widths[i]);
            }
            line.push(' ');
        }
        push_line(&mut out, &line);
    }
    out
}

/// One port's negotiated device setup, e.g. `lan0: net_virtio_user,
/// socket 0, 2 RX / 2 TX queues of 256/256, mtu 1500, rss none (key none),
/// offloads tx-tcp-csum tx-udp-csum, 0 link changes`.
fn device_line(name: &str, d: &lb_api::protocol::PortDeviceStatus) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(" ")
        }
    };
    format!(
        "  {name}: {}, socket {}, {} RX / {} TX queues of {}/{}, mtu {}, rss {} (key {}), \
         offloads {}, {} link changes",
        d.driver,
        d.socket,
        d.rx_queues,
        d.tx_queues,
        d.rx_desc,
        d.tx_desc,
        d.mtu,
        list(&d.rss),
        d.rss_key,
        list(&d.offloads),
        d.link_changes
    )
}

/// The `status` report.
pub fn status(st: &StatusInfo) -> String {
    let mut out = String::new();
    push_line(
        &mut out,
        &format!("lbd {}, up {}", st.version, uptime(st.uptime_s)),
    );
    push_line(
        &mut out,
        &format!("config: {} (generation {})", st.config_path, st.generation),
    );
    let last = if st.last_change_message.is_empty() {
        if st.last_change_ok { "ok" } else { "FAILED" }.to_string()
    } else if st.last_change_ok {
        format!("ok: {}", st.last_change_message)
    } else {
        format!("FAILED: {}", st.last_change_message)
    };
    push_line(&mut out, &format!("last change: {last}"));

    push_line(&mut out, &format!("ports: {}", st.ports.len()));
    if !st.ports.is_empty() {
        let mut rows = vec![["NAME", "DEVICE", "ADDRESS", "MAC", "LINK", "SPEED"]
            .map(String::from)
            .to_vec()];
        for p in &st.ports {
            rows.push(vec![
                p.name.clone(),
                p.device.clone(),
                p.address.clone(),
                p.mac.clone(),
                if p.link_up { "up" } else { "DOWN" }.into(),
                if p.link_up && p.speed_mbps > 0 {
                    format!("{} Mb/s", p.speed_mbps)
                } else {
                    "-".into()
                },
            ]);
        }
        out.push_str(&table(&rows, &[]));
        for p in &st.ports {
            if let Some(d) = &p.device_info {
                push_line(&mut out, &device_line(&p.name, d));
            }
        }
    }

    push_line(&mut out, &format!("workers: {}", st.workers.len()));
    if !st.workers.is_empty() {
        let mut rows = vec![[
            "#",
            "PORT",
            "QUEUE",
            "LCORE",
            "RX",
            "SHARE",
            "BUSY",
            "CONNS",
            "SYN-FLOOD",
        ]
        .map(String::from)
        .to_vec()];
        for w in &st.workers {
            // The worker's part of its port's frames: how evenly RSS (or
            // the device) spreads the port's traffic over its queues.
            let port_rx: u64 = st
                .workers
                .iter()
                .filter(|o| o.port == w.port)
                .map(|o| o.rx_frames)
                .sum();
            rows.push(vec![
                w.index.to_string(),
                w.port.clone(),
                w.queue.to_string(),
                w.lcore.to_string(),
                w.rx_frames.to_string(),
                if port_rx == 0 {
                    "-".to_string()
                } else {
                    format!("{:.1}%", w.rx_frames as f64 * 100.0 / port_rx as f64)
                },
                busy_ratio(w.busy_polls, w.idle_polls),
                w.conns.to_string(),
                if w.flood_defence {
                    "DEFENDING".to_string()
                } else {
                    "-".to_string()
                },
            ]);
        }
        out.push_str(&table(&rows, &[0, 2, 3, 4, 5, 6, 7]));
    }

    let occupancy = if st.conn_capacity == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", st.conns as f64 * 100.0 / st.conn_capacity as f64)
    };
    push_line(
        &mut out,
        &format!(
            "connections: {} of {} ({occupancy} full)",
            st.conns, st.conn_capacity
        ),
    );
    // One line per VRRP instance, named as in the configuration (an older
    // lbd reports one, unnamed).
    let old = st.vrrp.iter().filter(|_| st.vrrp_instances.is_empty());
    for v in st.vrrp_instances.iter().chain(old) {
        let name = if v.instance.is_empty() {
            "vrrp"
        } else {
            v.instance.as_str()
        };
        let master = match v.master {
            Some(ip) => format!(", master {ip}"),
            None => String::new(),
        };
        push_line(
            &mut out,
            &format!(
                "{name}: {} (vrid {}, priority {}{master}, {} transitions)",
                v.state, v.vrid, v.priority, v.transitions
            ),
        );
    }
    if let Some(a) = &st.announce {
        announce(&mut out, a);
    }
    if !st.counters.is_empty() {
        // Events first, then drops: the drop reasons are what an operator
        // looks for when traffic goes missing.
        push_line(&mut out, "counters (since start, non-zero):");
        let (drops, events): (Vec<_>, Vec<_>) = st
            .counters
            .iter()
            .partition(|(k, _)| k.starts_with("drop_"));
        for (k, v) in events.into_iter().chain(drops) {
            push_line(&mut out, &format!("  {k:<32} {v}"));
        }
    }
    out
}

/// The `bgp:` block of `lbctl status`: each VIP's announcement and the
/// speaker's BGP sessions.
fn announce(out: &mut String, a: &lb_api::protocol::AnnounceInfo) {
    let drained = if a.drained { " (director drained)" } else { "" };
    let errors = match a.route_errors {
        0 => String::new(),
        n => format!(", {n} failed route changes (see the log)"),
    };
    push_line(
        out,
        &format!("bgp: speaker {}{drained}{errors}", a.speaker.state),
    );
    for s in &a.speaker.sessions {
        push_line(
            out,
            &format!("  session {:<12} {:<6} {}", s.name, s.state, s.info),
        );
    }
    for v in &a.vips {
        let state = if v.announced {
            "ANNOUNCED"
        } else {
            "withdrawn"
        };
        push_line(out, &format!("  vip {:<15} {state:<9} {}", v.vip, v.reason));
    }
}

/// What `lbctl director drain` says at the end. `waited`: it waited for
/// the traffic to move (not `--no-wait`).
pub fn drain(d: &lb_api::protocol::DrainReport, waited: bool) -> String {
    let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    let head = if !d.drained {
        "not drained (resumed meanwhile?)".to_string()
    } else if !waited {
        "drained: VIPs withdrawn".to_string()
    } else if d.moved {
        format!(
            "drained: traffic moved; no new connection for {} ({} since the withdrawal)",
            secs(d.quiet_ms),
            secs(d.since_ms)
        )
    } else {
        format!(
            "drained, but traffic NOT moved after {}: last new connection {} ago",
            secs(d.since_ms),
            secs(d.quiet_ms)
        )
    };
    format!(
        "{head}\nnew connections since the withdrawal: {}\nconnections still open: {}\n",
        d.new_conns, d.open_conns
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::config::{Forward, Persistence, Scheduler};
    use lb_api::protocol::{Counters, PortStatus, Rates, ServiceKey, WorkerStatus};

    fn real(ip: &str, weight: u32, active: u64, inactive: u64) -> RealInfo {
        RealInfo {
            address: ip.parse().unwrap(),
            port: 80,
            forward: Forward::Dr,
            weight,
            active,
            inactive,
            draining: false,
            counters: Counters::default(),
            rates: Rates::default(),
            health: None,
            fallback: false,
        }
    }

    fn sample_services() -> Vec<ServiceInfo> {
        let mut r2 = real("198.18.0.12", 0, 3, 12);
        r2.draining = true;
        r2.counters = Counters {
            conns: 1234,
            packets_in: 99_999_999,
            bytes_in: 123_456_789_012,
            packets_out: 0,
            bytes_out: 0,
        };
        r2.rates = Rates {
            conns: 2.4,
            packets_in: 10.5,
            bytes_in: 1_500_000_000.0,
            packets_out: 0.0,
            bytes_out: 0.0,
        };
        vec![
            ServiceInfo {
                members: Vec::new(),
                key: ServiceKey::addr(Protocol::Tcp, "198.18.0.100".parse().unwrap(), 80),
                scheduler: Scheduler::Rr,
                persistence: Some(Persistence::v4(300, 24)),
                counters: Counters {
                    conns: 1240,
                    packets_in: 100_000_000,
                    bytes_in: 123_456_789_999,
                    packets_out: 0,
                    bytes_out: 0,
                },
                rates: Rates::default(),
                reals: vec![real("198.18.0.11", 1, 140, 2), r2],
            },
            ServiceInfo {
                members: Vec::new(),
                key: ServiceKey::addr(Protocol::Udp, "198.18.0.101".parse().unwrap(), 53),
                scheduler: Scheduler::Wlc,
                persistence: Some(Persistence::v4(60, 32)),
                counters: Counters::default(),
                rates: Rates::default(),
                reals: vec![],
            },
        ]
    }

    fn sample_status() -> StatusInfo {
        StatusInfo {
            version: "0.1.0".into(),
            uptime_s: 93_784.6,
            config_path: "/etc/lbd/lbd.ron".into(),
            generation: 3,
            last_change_ok: true,
            last_change_message: "added 198.18.0.100:80/tcp".into(),
            ports: vec![PortStatus {
                name: "lan0".into(),
                device: "net_af_packet0,iface=veth0".into(),
                address: "198.18.0.2/24".into(),
                mac: "02:00:00:00:00:02".into(),
                link_up: true,
                speed_mbps: 10000,
                device_info: Some(lb_api::protocol::PortDeviceStatus {
                    driver: "net_ixgbe".into(),
                    socket: 0,
                    rx_queues: 2,
                    tx_queues: 2,
                    rx_desc: 1024,
                    tx_desc: 1024,
                    mtu: 1500,
                    rss: vec!["ipv4-tcp".into(), "ipv4-udp".into()],
                    rss_key: "symmetric".into(),
                    offloads: vec!["tx-tcp-csum".into()],
                    link_changes: 1,
                }),
            }],
            workers: vec![
                WorkerStatus {
                    index: 0,
                    port: "lan0".into(),
                    queue: 0,
                    lcore: 1,
                    busy_polls: 1,
                    idle_polls: 3,
                    conns: 120,
                    flood_defence: true,
                    rx_frames: 300,
                },
                WorkerStatus {
                    index: 1,
                    port: "lan0".into(),
                    queue: 1,
                    lcore: 12,
                    busy_polls: 0,
                    idle_polls: 0,
                    conns: 25,
                    flood_defence: false,
                    rx_frames: 100,
                },
            ],
            conn_capacity: 1_048_576,
            conns: 145,
            counters: [("forwarded_dr", 9), ("drop_tcp_no_conn", 2)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            vrrp: Some(lb_api::protocol::VrrpInfo {
                instance: "vrrp".into(),
                state: "MASTER".into(),
                vrid: 51,
                priority: 150,
                master: Some("198.18.0.2".parse().unwrap()),
                transitions: 1,
            }),
            vrrp_instances: Vec::new(),
            announce: None,
        }
    }

    #[test]
    fn status_shows_both_vrrp_instances() {
        let mut st = sample_status();
        let v4 = st.vrrp.clone().unwrap();
        let v6 = lb_api::protocol::VrrpInfo {
            instance: "vrrp6".into(),
            state: "BACKUP".into(),
            vrid: 51,
            priority: 100,
            master: Some("fe80::2".parse().unwrap()),
            transitions: 2,
        };
        st.vrrp_instances = vec![v4, v6.clone()];
        let text = status(&st);
        assert!(
            text.contains(
                "vrrp: MASTER (vrid 51, priority 150, master 198.18.0.2, 1 transitions)\n\
                 vrrp6: BACKUP (vrid 51, priority 100, master fe80::2, 2 transitions)\n"
            ),
            "{text}"
        );
        // Only the IPv6 instance: its line alone, under its name.
        st.vrrp = Some(v6.clone());
        st.vrrp_instances = vec![v6];
        let text = status(&st);
        assert!(!text.contains("vrrp: "), "{text}");
        assert!(text.contains("vrrp6: BACKUP"), "{text}");
        // JSON: `vrrp` is the first instance as before, `vrrp_instances`
        // all; an answer from an older lbd (neither `vrrp_instances` nor
        // `instance`) still reads, and prints as before.
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["vrrp"]["state"], "BACKUP");
        assert_eq!(json["vrrp_instances"][0]["instance"], "vrrp6");
        let mut old = serde_json::to_value(sample_status()).unwrap();
        let o = old.as_object_mut().unwrap();
        o.remove("vrrp_instances");
        o["vrrp"].as_object_mut().unwrap().remove("instance");
        let back: StatusInfo = serde_json::from_value(old).unwrap();
        assert!(back.vrrp_instances.is_empty());
        assert!(status(&back).contains("vrrp: MASTER (vrid 51"));
    }

    #[test]
    fn status_shows_announcements_and_sessions() {
        use lb_api::protocol::{AnnounceInfo, BgpSession, SpeakerInfo, VipAnnouncement};
        let mut st = sample_status();
        st.announce = Some(Box::new(AnnounceInfo {
            drained: true,
            vips: vec![VipAnnouncement {
                vip: "198.18.100.1".parse().unwrap(),
                announced: false,
                reason: "drained".into(),
            }],
            speaker: SpeakerInfo {
                state: "ok".into(),
                sessions: vec![BgpSession {
                    name: "router".into(),
                    state: "up".into(),
                    info: "Established".into(),
                }],
            },
            route_errors: 0,
        }));
        let text = status(&st);
        assert!(
            text.contains(
                "bgp: speaker ok (director drained)\n  session router       up     Established\n  \
                 vip 198.18.100.1    withdrawn drained\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn drain_reports() {
        let d = lb_api::protocol::DrainReport {
            drained: true,
            since_ms: 3200,
            quiet_ms: 1000,
            moved: true,
            new_conns: 4,
            open_conns: 120,
        };
        assert_eq!(
            drain(&d, true),
            "drained: traffic moved; no new connection for 1.0 s (3.2 s since the withdrawal)\n\
             new connections since the withdrawal: 4\nconnections still open: 120\n"
        );
        let late = lb_api::protocol::DrainReport {
            moved: false,
            quiet_ms: 200,
            ..d
        };
        assert!(drain(&late, true).starts_with("drained, but traffic NOT moved after 3.2 s"));
        assert!(drain(&late, false).starts_with("drained: VIPs withdrawn\n"));
    }

    #[test]
    fn health_and_fallback_follow_the_ipvsadm_columns() {
        let mut svcs = sample_services();
        let r = &mut svcs[0].reals[0];
        r.health = Some(lb_api::protocol::RealHealth {
            up: false,
            checked: true,
            last: "connect: refused".into(),
            since_s: 3.0,
            transitions: 1,
        });
        let mut fb = real("198.18.0.50", 1, 0, 0);
        fb.fallback = true;
        svcs[0].reals.push(fb);
        let text = services(None, &svcs, ListMode::Plain, false);
        assert!(
            text.contains("  -> 198.18.0.11:80               Route   1      ")
                && text.contains(" DOWN (connect: refused)\n"),
            "{text}"
        );
        assert!(
            text.contains("198.18.0.50:80") && text.contains(" fallback\n"),
            "{text}"
        );
        // An up server shows nothing extra.
        svcs[0].reals[0].health.as_mut().unwrap().up = true;
        let text = services(None, &svcs, ListMode::Plain, false);
        assert!(!text.contains("DOWN"), "{text}");
    }

    #[test]
    fn plain_list_matches_ipvsadm() {
        let text = services(
            Some(&sample_status()),
            &sample_services(),
            ListMode::Plain,
            false,
        );
        let want = "\
lbd director 0.1.0 (generation 3)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 rr persistent 300 mask 255.255.255.0
  -> 198.18.0.11:80               Route   1      140        2
  -> 198.18.0.12:80               Route   0      3          12         draining
UDP  198.18.0.101:53 wlc persistent 60
";
        assert_eq!(text, want);
    }

    #[test]
    fn stats_list_scales_big_numbers() {
        let text = services(None, &sample_services(), ListMode::Stats, false);
        let want = "\
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  198.18.0.100:80                  1240  100000K        0  123456M        0
  -> 198.18.0.11:80                      0        0        0        0        0
  -> 198.18.0.12:80                   1234 99999999        0  123456M        0 draining
UDP  198.18.0.101:53                     0        0        0        0        0
";
        assert_eq!(text, want);
        let exact = services(None, &sample_services(), ListMode::Stats, true);
        assert!(exact.contains(" 123456789999 "), "{exact}");
    }

    #[test]
    fn rate_list() {
        let text = services(None, &sample_services(), ListMode::Rate, false);
        let want = "\
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  198.18.0.100:80                     0        0        0        0        0
  -> 198.18.0.11:80                      0        0        0        0        0
  -> 198.18.0.12:80                      2       11        0 1500000K        0 draining
UDP  198.18.0.101:53                     0        0        0        0        0
";
        assert_eq!(text, want);
    }

    #[test]
    fn empty_list_has_only_headers() {
        let text = services(None, &[], ListMode::Plain, false);
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn large_numbers() {
        assert_eq!(large(0, false), "0");
        assert_eq!(large(99_999_999, false), "99999999");
        assert_eq!(large(100_000_000, false), "100000K");
        assert_eq!(large(9_999_999_999, false), "9999999K");
        assert_eq!(large(10_000_000_000, false), "10000M");
        assert_eq!(large(u64::MAX, false), "18446P");
        assert_eq!(large(u64::MAX, true), u64::MAX.to_string());
    }

    fn conn(state: &str, expires_ms: u32, real: Option<&str>) -> ConnInfo {
        ConnInfo {
            protocol: Protocol::Tcp,
            client: "198.18.0.1".parse().unwrap(),
            client_port: 51234,
            vip: "198.18.0.100".parse().unwrap(),
            vport: 80,
            real: real.map(|r| r.parse().unwrap()),
            real_port: 80,
            state: state.into(),
            expires_ms,
            worker: 0,
            template: false,
        }
    }

    #[test]
    fn conns_match_ipvsadm() {
        let mut udp = conn("UDP", 299_400, Some("198.18.0.12"));
        udp.protocol = Protocol::Udp;
        udp.vport = 53;
        udp.real_port = 53;
        let mut template = conn("NONE", 299_000, Some("198.18.0.11"));
        template.client = "198.18.0.0".parse().unwrap();
        template.client_port = 0;
        template.template = true;
        let list = ConnList {
            conns: vec![
                conn("ESTABLISHED", 899_999, Some("198.18.0.11")),
                conn("FIN_WAIT", 5_000, None),
                udp,
                template,
            ],
            total: 4,
            truncated: false,
        };
        let want = "\
lbd connection entries
pro expire state       source             virtual            destination
TCP 14:59  ESTABLISHED 198.18.0.1:51234   198.18.0.100:80    198.18.0.11:80
TCP 00:05  FIN_WAIT    198.18.0.1:51234   198.18.0.100:80    -
UDP 04:59  UDP         198.18.0.1:51234   198.18.0.100:53    198.18.0.12:53
TCP 04:59  NONE        198.18.0.0:0       198.18.0.100:80    198.18.0.11:80
";
        assert_eq!(conns(&list), want);
        assert_eq!(conns_note(&list), None);
        let cut = ConnList {
            conns: vec![conn("ESTABLISHED", 1, None)],
            total: 52_000,
            truncated: true,
        };
        assert_eq!(
            conns_note(&cut).unwrap(),
            "(1 of 52000 connections shown; use --limit)"
        );
        assert_eq!(mmss(6_000_000), "100:00");
    }

    #[test]
    fn ipv6_is_bracketed_in_lists_and_conns() {
        let v6 = ServiceInfo {
            members: Vec::new(),
            key: ServiceKey::addr(Protocol::Tcp, "2001:db8::100".parse().unwrap(), 80),
            scheduler: Scheduler::Rr,
            persistence: Some(Persistence {
                timeout: 300,
                netmask: 32,
                prefix: Some(64),
            }),
            counters: Counters::default(),
            rates: Rates::default(),
            reals: vec![real("2001:db8::10", 1, 0, 0)],
        };
        let text = services(None, &[v6], ListMode::Plain, false);
        assert!(
            text.contains("TCP  [2001:db8::100]:80 rr persistent 300 mask 64\n"),
            "{text}"
        );
        assert!(
            text.contains("  -> [2001:db8::10]:80            Route   1"),
            "{text}"
        );
        let mut c = conn("ESTABLISHED", 899_999, Some("2001:db8::10"));
        c.client = "2001:db8::1".parse().unwrap();
        c.vip = "2001:db8::100".parse().unwrap();
        let list = ConnList {
            conns: vec![c],
            total: 1,
            truncated: false,
        };
        assert!(
            conns(&list).ends_with(
                "TCP 14:59  ESTABLISHED [2001:db8::1]:51234 [2001:db8::100]:80 [2001:db8::10]:80\n"
            ),
            "{}",
            conns(&list)
        );
    }

    #[test]
    fn timeouts_show_ipvsadm_order() {
        let text = timeouts(&Timeouts::default());
        assert!(text.starts_with("Timeout (tcp tcpfin udp): 900 120 300\n"));
        assert!(text.contains("  tcp_syn_recv     60s\n"));
    }

    #[test]
    fn status_report() {
        let want = "\
lbd 0.1.0, up 1d 02:03:04
config: /etc/lbd/lbd.ron (generation 3)
last change: ok: added 198.18.0.100:80/tcp
ports: 1
  NAME  DEVICE                      ADDRESS        MAC                LINK  SPEED
  lan0  net_af_packet0,iface=veth0  198.18.0.2/24  02:00:00:00:00:02  up    10000 Mb/s
  lan0: net_ixgbe, socket 0, 2 RX / 2 TX queues of 1024/1024, mtu 1500, rss ipv4-tcp ipv4-udp (key symmetric), offloads tx-tcp-csum, 1 link changes
workers: 2
  #  PORT  QUEUE  LCORE   RX  SHARE   BUSY  CONNS  SYN-FLOOD
  0  lan0      0      1  300  75.0%  25.0%    120  DEFENDING
  1  lan0      1     12  100  25.0%      -     25  -
connections: 145 of 1048576 (0.0% full)
vrrp: MASTER (vrid 51, priority 150, master 198.18.0.2, 1 transitions)
counters (since start, non-zero):
  forwarded_dr                     9
  drop_tcp_no_conn                 2
";
        assert_eq!(status(&sample_status()), want);
        let mut bad = sample_status();
        bad.last_change_ok = false;
        bad.last_change_message = "reload: services[0].port: port 0".into();
        bad.ports[0].link_up = false;
        let text = status(&bad);
        assert!(text.contains("last change: FAILED: reload: services[0].port"));
        assert!(text.contains("  DOWN  -"), "{text}");
    }

    #[test]
    fn uptimes_and_ratios() {
        assert_eq!(uptime(0.0), "00:00:00");
        assert_eq!(uptime(59.9), "00:00:59");
        assert_eq!(uptime(86_400.0), "1d 00:00:00");
        assert_eq!(uptime(f64::NAN), "00:00:00");
        assert_eq!(busy_ratio(0, 0), "-");
        assert_eq!(busy_ratio(1, 0), "100.0%");
        assert_eq!(busy_ratio(1, 2), "33.3%");
    }
}
