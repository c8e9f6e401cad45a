//! Checks that a parsed configuration makes sense.
//!
//! Parsing (serde) already guarantees the shape: known fields, known names,
//! numbers that fit their types. [`validate`] checks the meaning: ranges,
//! uniqueness, addresses that can work, and what direct routing needs. Each
//! problem names the field by path (`services[1].real_servers[0].weight`) and
//! says what is wrong with the values involved; `parse` then finds the path's
//! line and column in the text.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::error::Problem;
use super::facts::{port_owning, special_address};
use super::types::{
    CheckKind, Config, Forward, HealthCheck, Ipv4Cidr, KernelPathConfig, Protocol,
    RealServerConfig, RssKey,
};

/// Smallest connection table.
pub const MIN_CONN_CAPACITY: u32 = 1024;
/// Largest connection table (64 Mi entries).
pub const MAX_CONN_CAPACITY: u32 = 67_108_864;
/// Longest timeout accepted, in seconds (24 days): deadlines live on a
/// wrapping millisecond clock whose comparisons are exact below 2^31 ms.
pub const MAX_TIMEOUT_SECS: u32 = 24 * 24 * 3600;
/// Most RX/TX queue pairs per port.
pub const MAX_QUEUES_PER_PORT: u16 = 16;
/// Largest receive burst.
pub const MAX_BURST: u16 = 64;
/// Longest sleep between idle polls (100 ms): beyond it, the first packet
/// after a quiet spell waits longer than any RX ring could hold traffic.
pub const MAX_IDLE_SLEEP_US: u32 = 100_000;
/// Smallest mbuf pool.
pub const MIN_MBUFS: u32 = 1023;
/// Lcore numbers accepted in `eal.cores` are below this.
pub const MAX_LCORE: u32 = 1024;
/// Smallest port MTU (the IPv4 minimum every host must accept).
pub const MIN_MTU: u16 = 576;
/// Largest port MTU (jumbo frames).
pub const MAX_MTU: u16 = 9000;

/// Parses a DPDK lcore list such as `"0-3"`, `"0,2,4"` or `"1-2,5"` into the
/// core numbers in the order written. Rejects empty items, reversed ranges,
/// duplicates and numbers of [`MAX_LCORE`] or more.
pub fn parse_lcore_list(s: &str) -> Result<Vec<u32>, String> {
    if s.trim().is_empty() {
        return Err("no cores given; write a DPDK core list such as \"0-1\" or \"0,2,4\"".into());
    }
    let num = |t: &str| -> Result<u32, String> {
        let t = t.trim();
        let n: u32 = t
            .parse()
            .map_err(|_| format!("`{t}` is not a core number (in core list \"{s}\")"))?;
        if n >= MAX_LCORE {
            return Err(format!(
                "core {n} is too large (at most {}) in core list \"{s}\"",
                MAX_LCORE - 1
            ));
        }
        Ok(n)
    };
    let mut cores = Vec::new();
    for item in s.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(item)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!(
                "range {lo}-{hi} goes backwards in core list \"{s}\" (write {hi}-{lo})"
            ));
        }
        for c in lo..=hi {
            if cores.contains(&c) {
                return Err(format!("core {c} appears twice in core list \"{s}\""));
            }
            cores.push(c);
        }
    }
    Ok(cores)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn network(c: Ipv4Cidr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(c.addr) & c.netmask())
}

fn subnet_broadcast(c: Ipv4Cidr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(c.addr) | !c.netmask())
}

/// Checks that need to know where the configuration file is (called by
/// [`crate::config::load`]): `control.socket` must not name the file itself,
/// however it is spelled (another path, a symbolic link, a hard link).
/// lbd would otherwise have to replace its own configuration with a socket;
/// it refuses to, but the mistake deserves a message before start-up, and
/// `lbctl validate` finds it offline.
pub fn check_config_location(cfg: &Config, config_path: &std::path::Path) -> Vec<Problem> {
    let sock = std::path::Path::new(&cfg.control.socket);
    if !same_file(sock, config_path) {
        return Vec::new();
    }
    vec![Problem::new(
        "control.socket",
        format!(
            "socket path `{}` is this configuration file ({}); the control socket needs a \
             path of its own (e.g. /run/lbd/lbd.sock)",
            cfg.control.socket,
            config_path.display()
        ),
    )]
}

/// Whether two paths name the same file: spelled alike, resolving to the
/// same place, or (both existing) the same inode.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if a == b {
        return true;
    }
    if let (Some(x), Some(y)) = (resolved(a), resolved(b)) {
        if x == y {
            return true;
        }
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// `p` with symbolic links and `..` resolved; for a path that does not
/// exist yet, its directory resolved and its name appended.
fn resolved(p: &std::path::Path) -> Option<std::path::PathBuf> {
    if let Ok(c) = std::fs::canonicalize(p) {
        return Some(c);
    }
    let name = p.file_name()?;
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    Some(std::fs::canonicalize(dir).ok()?.join(name))
}

/// Checks the meaning of a parsed configuration. Returns every problem found
/// (empty when the configuration is fine), with positions not filled in.
pub fn validate(cfg: &Config) -> Vec<Problem> {
    let mut v = Vec::new();
    check_eal(cfg, &mut v);
    check_ports(cfg, &mut v);
    check_workers(cfg, &mut v);
    check_tables(cfg, &mut v);
    check_services(cfg, &mut v);
    super::ecmp::check_ecmp(cfg, &mut v);
    super::routing::check_vlans(cfg, &mut v);
    super::routing::check_routes(cfg, &mut v);
    check_tunnel(cfg, &mut v);
    check_vrrp(cfg, &mut v);
    check_vrrp6(cfg, &mut v);
    check_sync(cfg, &mut v);
    super::bgp::check_bgp(cfg, &mut v);
    check_control(cfg, &mut v);
    v
}

fn check_control(cfg: &Config, v: &mut Vec<Problem>) {
    let sock = &cfg.control.socket;
    if !sock.starts_with('/') {
        v.push(Problem::new(
            "control.socket",
            format!("socket path `{sock}` must be absolute (e.g. /run/lbd/lbd.sock)"),
        ));
    } else if sock.len() > 100 {
        v.push(Problem::new(
            "control.socket",
            format!(
                "socket path is {} bytes long; unix sockets allow at most 100",
                sock.len()
            ),
        ));
    }
    if let Some(g) = &cfg.control.group {
        if g.is_empty() || g.contains(|c: char| c.is_whitespace() || c == ':') {
            v.push(Problem::new(
                "control.group",
                format!("`{g}` is not a group name"),
            ));
        }
    }
    if let Some(l) = &cfg.metrics.listen {
        if l.parse::<std::net::SocketAddr>().is_err() {
            v.push(Problem::new(
                "metrics.listen",
                format!("`{l}` is not ADDRESS:PORT (e.g. 127.0.0.1:9300)"),
            ));
        }
    }
}

/// The elements of a DPDK `--lcores` mapping: split at commas outside
/// parentheses ("0,(1,2)@1" gives "0" and "(1,2)@1").
fn lcores_elements(s: &str) -> Result<Vec<&str>, String> {
    let mut elements = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                elements.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(format!("unbalanced parentheses in lcores mapping `{s}`"));
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parentheses in lcores mapping `{s}`"));
    }
    elements.push(&s[start..]);
    Ok(elements)
}

/// A core list, with or without the parentheses of a mapping's group.
fn lcores_group(group: &str, s: &str) -> Result<Vec<u32>, String> {
    let list = group.trim().trim_start_matches('(').trim_end_matches(')');
    parse_lcore_list(list).map_err(|e| format!("in lcores mapping `{s}`: {e}"))
}

/// The lcore ids named by a DPDK `--lcores` mapping such as
/// "(0-2)@(0-1)" or "0@0,1@1,2@1": the part of each element before `@`.
pub fn parse_lcores_mapping(s: &str) -> Result<Vec<u32>, String> {
    let mut all = Vec::new();
    for e in lcores_elements(s)? {
        for l in lcores_group(e.split('@').next().unwrap_or(""), s)? {
            if all.contains(&l) {
                return Err(format!("lcore {l} appears twice in lcores mapping `{s}`"));
            }
            all.push(l);
        }
    }
    Ok(all)
}

/// The CPUs a DPDK `--lcores` mapping runs its lcores on, ascending: the
/// part after `@` of each element, or for an element without `@` its lcore
/// ids themselves (DPDK runs lcore N on CPU N then).
pub fn lcores_mapping_cpus(s: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for e in lcores_elements(s)? {
        let group = match e.split_once('@') {
            Some((_, cpus)) => cpus,
            None => e,
        };
        cpus.extend(lcores_group(group, s)?);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// A DPDK core list for `cpus` (ascending), runs collapsed: `[0, 1, 2, 5]`
/// gives "0-2,5".
pub fn format_core_list(cpus: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if j > i {
            format!("{}-{}", cpus[i], cpus[j])
        } else {
            cpus[i].to_string()
        });
        i = j + 1;
    }
    out.join(",")
}

/// Checks the EAL cores against the CPUs this process may run on (`cpus`,
/// e.g. from `sched_getaffinity`). Kept out of [`validate`], which must
/// give the same answer on every machine (`lbctl validate`, CI): lbd calls
/// this at start-up and for `--check`, with the machine's CPUs, so that a
/// core list the machine cannot honour is refused in one line instead of
/// DPDK's usage text. Nothing is reported for a list `validate` already
/// refuses.
pub fn check_cpus(cfg: &Config, cpus: &[u32]) -> Vec<Problem> {
    let mut v = Vec::new();
    if cpus.is_empty() {
        // Not known: nothing to check against (and a process always runs
        // somewhere, so this is never the machine's real answer).
        return v;
    }
    let here = format!(
        "lbd may run on CPU{} {} here",
        if cpus.len() == 1 { "" } else { "s" },
        format_core_list(cpus)
    );
    let missing = |wanted: &[u32]| -> Vec<u32> {
        let mut m: Vec<u32> = wanted
            .iter()
            .copied()
            .filter(|c| !cpus.contains(c))
            .collect();
        m.sort_unstable();
        m
    };
    let cpu_words = |m: &[u32]| {
        format!(
            "CPU{} {}",
            if m.len() == 1 { "" } else { "s" },
            format_core_list(m)
        )
    };
    match &cfg.eal.lcores {
        None => {
            let Ok(lcores) = parse_lcore_list(&cfg.eal.cores) else {
                return v;
            };
            let m = missing(&lcores);
            if !m.is_empty() {
                // `-l` runs lcore N on CPU N: more lcores than CPUs needs
                // a mapping that shares CPUs.
                let mut sorted = lcores.clone();
                sorted.sort_unstable();
                v.push(Problem::new(
                    "eal.cores",
                    format!(
                        "core list \"{}\" names {}, which this machine does not have ({here}); \
                         name CPUs it has, or run {} lcores on fewer CPUs with eal.lcores instead \
                         of eal.cores, e.g. lcores: Some(\"({})@({})\")",
                        cfg.eal.cores,
                        cpu_words(&m),
                        lcores.len(),
                        format_core_list(&sorted),
                        format_core_list(cpus),
                    ),
                ));
            }
        }
        Some(mapping) => {
            let (Ok(lcores), Ok(wanted)) =
                (parse_lcores_mapping(mapping), lcores_mapping_cpus(mapping))
            else {
                return v;
            };
            let m = missing(&wanted);
            if !m.is_empty() {
                let mut sorted = lcores.clone();
                sorted.sort_unstable();
                v.push(Problem::new(
                    "eal.lcores",
                    format!(
                        "lcores mapping \"{mapping}\" runs lcores on {}, which this machine does \
                         not have ({here}); map them onto CPUs it has, e.g. \"({})@({})\"",
                        cpu_words(&m),
                        format_core_list(&sorted),
                        format_core_list(cpus),
                    ),
                ));
            }
        }
    }
    v
}

fn check_eal(cfg: &Config, v: &mut Vec<Problem>) {
    let eal = &cfg.eal;
    let (field, list) = match &eal.lcores {
        Some(m) => ("eal.lcores", parse_lcores_mapping(m)),
        None => ("eal.cores", parse_lcore_list(&eal.cores)),
    };
    match list {
        Err(e) => v.push(Problem::new(field, e)),
        Ok(cores) => {
            let q = cfg.workers.queues_per_port as usize;
            let needed = 1 + cfg.ports.len() * q;
            if cores.len() < needed {
                v.push(Problem::new(
                    field,
                    format!(
                        "core list \"{}\" has {} but {needed} are needed: 1 main lcore plus one \
                         worker per port queue ({} x {})",
                        eal.lcores.as_deref().unwrap_or(&eal.cores),
                        plural(cores.len(), "core", "cores"),
                        plural(cfg.ports.len(), "port", "ports"),
                        plural(q, "queue", "queues"),
                    ),
                ));
            }
        }
    }
    if eal.memory_mb == Some(0) {
        v.push(Problem::new(
            "eal.memory_mb",
            "memory_mb must be at least 1 (MiB)",
        ));
    }
    if let Some(prefix) = &eal.file_prefix {
        if prefix.trim().is_empty() {
            v.push(Problem::new(
                "eal.file_prefix",
                "file_prefix is empty; remove it or give a name such as \"lbd\"",
            ));
        }
    }
}

fn check_ports(cfg: &Config, v: &mut Vec<Problem>) {
    if cfg.ports.is_empty() {
        v.push(Problem::new(
            "ports",
            "no ports: at least one port is needed to receive and forward traffic",
        ));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut devices: HashMap<&str, usize> = HashMap::new();
    for (i, port) in cfg.ports.iter().enumerate() {
        let at = |f: &str| format!("ports[{i}].{f}");
        if port.name.trim().is_empty() {
            v.push(Problem::new(
                at("name"),
                "port name is empty; give it a name such as \"lan0\"",
            ));
        } else if let Some(&j) = names.get(port.name.as_str()) {
            v.push(Problem::new(
                at("name"),
                format!(
                    "duplicate port name \"{}\", also used by ports[{j}]",
                    port.name
                ),
            ));
        } else {
            names.insert(&port.name, i);
        }
        if port.device.trim().is_empty() {
            v.push(Problem::new(
                at("device"),
                "device is empty; give a DPDK device such as \"net_af_packet0,iface=eth0\" or \
                 \"0000:3b:00.0\"",
            ));
        } else if let Some(&j) = devices.get(port.device.as_str()) {
            v.push(Problem::new(
                at("device"),
                format!("device \"{}\" is also used by ports[{j}]", port.device),
            ));
        } else {
            devices.insert(&port.device, i);
        }

        if let Some(a6) = port.address6 {
            if let Some(why) = special_address(a6.addr.into()) {
                v.push(Problem::new(
                    at("address6"),
                    format!("address6 {a6} is {why}; the port needs a unicast address"),
                ));
            } else if a6.addr.segments()[0] & 0xffc0 == 0xfe80 {
                v.push(Problem::new(
                    at("address6"),
                    format!(
                        "address6 {a6} is link-local; give a global address (the port's \
                         link-local address is derived from its MAC)"
                    ),
                ));
            }
        }
        let a = port.address;
        if let Some(why) = special_address(a.addr.into()) {
            v.push(Problem::new(
                at("address"),
                format!("address {a} is {why}; the port needs a unicast address"),
            ));
        } else if !(8..=30).contains(&a.prefix) {
            v.push(Problem::new(
                at("address"),
                format!("prefix /{} of {a} is out of range (8 to 30)", a.prefix),
            ));
        } else if a.addr == network(a) {
            v.push(Problem::new(
                at("address"),
                format!("address {a} is the network address of its subnet; use a host address"),
            ));
        } else if a.addr == subnet_broadcast(a) {
            v.push(Problem::new(
                at("address"),
                format!("address {a} is the broadcast address of its subnet; use a host address"),
            ));
        } else {
            // Only compare with earlier ports whose address was fine.
            for (j, other) in cfg.ports[..i].iter().enumerate() {
                let b = other.address;
                if special_address(b.addr.into()).is_some() || !(8..=30).contains(&b.prefix) {
                    continue;
                }
                if a.contains(b.addr) || b.contains(a.addr) {
                    v.push(Problem::new(
                        at("address"),
                        format!(
                            "subnet {}/{} of {a} overlaps subnet {}/{} of ports[{j}] ({} {b})",
                            network(a),
                            a.prefix,
                            network(b),
                            b.prefix,
                            other.name
                        ),
                    ));
                    break;
                }
            }
        }

        if let Some(mac) = port.mac {
            if mac.0 == [0; 6] {
                v.push(Problem::new(at("mac"), format!("mac {mac} is all zeros")));
            } else if mac.0[0] & 1 != 0 {
                v.push(Problem::new(
                    at("mac"),
                    format!("mac {mac} is a multicast address (lowest bit of the first byte set)"),
                ));
            }
        }
        if !(MIN_MTU..=MAX_MTU).contains(&port.mtu) {
            v.push(Problem::new(
                at("mtu"),
                format!("mtu {} is out of range ({MIN_MTU} to {MAX_MTU})", port.mtu),
            ));
        }
        if let Some(k) = &port.kernel {
            check_kernel_path(cfg, i, k, v);
        }
    }
}

/// A port's kernel exception path: a usable, unique interface name and a
/// positive rate.
fn check_kernel_path(cfg: &Config, i: usize, k: &KernelPathConfig, v: &mut Vec<Problem>) {
    let at = |f: &str| format!("ports[{i}].kernel.{f}");
    let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if k.iface.is_empty() || k.iface.len() > 15 || !k.iface.chars().all(name_ok) {
        v.push(Problem::new(
            at("iface"),
            format!(
                "interface name \"{}\" is not usable: 1 to 15 characters, letters, digits, \
                 '-', '_' or '.'",
                k.iface
            ),
        ));
    } else if let Some(j) = cfg.ports[..i]
        .iter()
        .position(|p| p.kernel.as_ref().is_some_and(|o| o.iface == k.iface))
    {
        v.push(Problem::new(
            at("iface"),
            format!("interface \"{}\" is also used by ports[{j}]", k.iface),
        ));
    }
    if k.rate_pps == 0 {
        v.push(Problem::new(
            at("rate_pps"),
            "rate_pps is 0: nothing would reach the kernel; remove `kernel` instead",
        ));
    }
}

fn check_workers(cfg: &Config, v: &mut Vec<Problem>) {
    let w = &cfg.workers;
    if !(1..=MAX_QUEUES_PER_PORT).contains(&w.queues_per_port) {
        v.push(Problem::new(
            "workers.queues_per_port",
            format!(
                "queues_per_port {} is out of range (1 to {MAX_QUEUES_PER_PORT})",
                w.queues_per_port
            ),
        ));
    }
    if !(1..=MAX_BURST).contains(&w.burst) {
        v.push(Problem::new(
            "workers.burst",
            format!("burst {} is out of range (1 to {MAX_BURST})", w.burst),
        ));
    }
    if w.mbufs < MIN_MBUFS {
        v.push(Problem::new(
            "workers.mbufs",
            format!("mbufs {} is too small (at least {MIN_MBUFS})", w.mbufs),
        ));
    }
    if let Some(us) = w.idle_sleep_us {
        if !(1..=MAX_IDLE_SLEEP_US).contains(&us) {
            v.push(Problem::new(
                "workers.idle_sleep_us",
                format!(
                    "idle_sleep_us {us} is out of range (1 to {MAX_IDLE_SLEEP_US} µs; None \
                     busy-polls always)"
                ),
            ));
        }
    }
    if let RssKey::Custom(text) = &w.rss_key {
        if RssKey::custom_bytes(text).is_none() {
            v.push(Problem::new(
                "workers.rss_key",
                "rss_key Custom(...) must be hex digits, two per byte, 1 to 255 bytes \
                 (e.g. 80 digits for a 40-byte key)",
            ));
        }
    }
}

fn check_tables(cfg: &Config, v: &mut Vec<Problem>) {
    let cap = cfg.conn_table.capacity;
    if !(MIN_CONN_CAPACITY..=MAX_CONN_CAPACITY).contains(&cap) {
        v.push(Problem::new(
            "conn_table.capacity",
            format!("capacity {cap} is out of range ({MIN_CONN_CAPACITY} to {MAX_CONN_CAPACITY})"),
        ));
    }
    let nat = cfg.conn_table.nat_capacity;
    if !(MIN_CONN_CAPACITY..=MAX_CONN_CAPACITY).contains(&nat) {
        v.push(Problem::new(
            "conn_table.nat_capacity",
            format!(
                "nat_capacity {nat} is out of range ({MIN_CONN_CAPACITY} to {MAX_CONN_CAPACITY})"
            ),
        ));
    }
    let t = &cfg.timeouts;
    for (name, secs) in [
        ("tcp_established", t.tcp_established),
        ("tcp_syn_recv", t.tcp_syn_recv),
        ("tcp_fin_wait", t.tcp_fin_wait),
        ("tcp_time_wait", t.tcp_time_wait),
        ("tcp_close", t.tcp_close),
        ("udp", t.udp),
    ] {
        if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
            v.push(Problem::new(
                format!("timeouts.{name}"),
                format!(
                    "timeout {secs} s is out of range (1 to {MAX_TIMEOUT_SECS} s, which is 24 days)"
                ),
            ));
        }
    }
    let f = &cfg.syn_flood;
    // (Longer than timeouts.tcp_syn_recv has no effect: the shorter wins.)
    if !(1..=MAX_TIMEOUT_SECS).contains(&f.syn_recv_timeout) {
        v.push(Problem::new(
            "syn_flood.syn_recv_timeout",
            format!(
                "syn_recv_timeout {} s is out of range (1 to {MAX_TIMEOUT_SECS} s)",
                f.syn_recv_timeout
            ),
        ));
    }
    if !(1..=100).contains(&f.engage_percent) {
        v.push(Problem::new(
            "syn_flood.engage_percent",
            format!(
                "engage_percent {} is out of range (1 to 100)",
                f.engage_percent
            ),
        ));
    }
    if f.release_percent >= f.engage_percent {
        v.push(Problem::new(
            "syn_flood.release_percent",
            format!(
                "release_percent {} must be below engage_percent {}, or the defence would \
                 flap",
                f.release_percent, f.engage_percent
            ),
        ));
    }
    if f.hold > MAX_TIMEOUT_SECS {
        v.push(Problem::new(
            "syn_flood.hold",
            format!(
                "hold {} s is out of range (0 to {MAX_TIMEOUT_SECS} s)",
                f.hold
            ),
        ));
    }
    let n = &cfg.neighbours;
    if n.refresh == 0 {
        v.push(Problem::new(
            "neighbours.refresh",
            "refresh 0 is too small (at least 1 second)",
        ));
    }
    if n.expire <= n.refresh {
        v.push(Problem::new(
            "neighbours.expire",
            format!(
                "expire {} must be longer than refresh {}, so a neighbour is re-confirmed \
                 before it is forgotten",
                n.expire, n.refresh
            ),
        ));
    }
}

fn check_services(cfg: &Config, v: &mut Vec<Problem>) {
    let mut seen: HashMap<(IpAddr, u16, Protocol), usize> = HashMap::new();
    super::groups::check_groups(cfg, &mut seen, v);
    let interfaces = cfg.interfaces();
    let subnets = interfaces
        .iter()
        .map(|p| format!("{} {}", p.name, p.address))
        .chain(
            cfg.ports
                .iter()
                .filter_map(|p| p.address6.map(|a| format!("{} {a}", p.name))),
        )
        .collect::<Vec<_>>()
        .join(", ");
    for (i, svc) in cfg.services.iter().enumerate() {
        let at = |f: &str| format!("services[{i}].{f}");
        let key = (svc.vip, svc.port, svc.protocol);
        let name = svc.name();
        let group = svc.is_group();
        match seen.get(&key) {
            _ if group => {}
            Some(&j) if cfg.services[j].is_group() => v.push(Problem::new(
                format!("services[{i}]"),
                format!(
                    "service {name} is also a member of services[{j}] ({}); a port belongs \
                     to one service",
                    cfg.services[j].name()
                ),
            )),
            Some(&j) => v.push(Problem::new(
                format!("services[{i}]"),
                format!("duplicate service {name}, also defined at services[{j}]"),
            )),
            None => {
                seen.insert(key, i);
            }
        }
        if svc.port == 0 && svc.persistence.is_none() && !group {
            v.push(Problem::new(
                at("port"),
                "port 0 (a service on all ports) needs persistence, as in IPVS: add \
                 `persistence: Some((timeout: 300))`, or give the service's port number",
            ));
        }
        if let Some(p) = svc.persistence {
            if !(1..=MAX_TIMEOUT_SECS).contains(&p.timeout) {
                v.push(Problem::new(
                    at("persistence.timeout"),
                    format!(
                        "persistence timeout {} s is out of range (1 to {MAX_TIMEOUT_SECS} s, \
                         which is 24 days)",
                        p.timeout
                    ),
                ));
            }
            if p.netmask > 32 {
                v.push(Problem::new(
                    at("persistence.netmask"),
                    format!(
                        "persistence netmask /{} is out of range (a prefix length, 0 to 32)",
                        p.netmask
                    ),
                ));
            }
            match p.prefix {
                Some(n) if n > 128 => v.push(Problem::new(
                    at("persistence.prefix"),
                    format!("persistence prefix /{n} is out of range (0 to 128)"),
                )),
                Some(n) if cfg.service_vips(svc).iter().any(|a| a.is_ipv4()) => {
                    v.push(Problem::new(
                        at("persistence.prefix"),
                        format!(
                            "persistence prefix /{n} is for IPv6 clients; an IPv4 service \
                             groups its clients by `netmask` (e.g. netmask: {})",
                            n.min(32)
                        ),
                    ))
                }
                _ => {}
            }
        }
        if group {
            // Its addresses were checked with its members (groups.rs).
        } else if let Some(why) = special_address(svc.vip) {
            v.push(Problem::new(at("vip"), format!("VIP {} is {why}", svc.vip)));
        } else if let Some(p) = port_owning(&cfg.ports, svc.vip) {
            v.push(Problem::new(
                at("vip"),
                format!(
                    "VIP {} is the director's own address on port {}; use a separate address \
                     for the service",
                    svc.vip, p.name
                ),
            ));
        }

        let port_less = |hc: &HealthCheck| {
            svc.port == 0
                && !group
                && hc.port.is_none()
                && !matches!(hc.check, CheckKind::Exec { .. })
        };
        if let Some(hc) = &svc.health_check {
            check_health(hc, &at("health_check"), v);
            if port_less(hc) {
                v.push(Problem::new(
                    at("health_check.port"),
                    "a service on all ports (port 0) has no port to check: give the check a \
                     `port: Some(N)`",
                ));
            }
        }
        // The fallback server must be reachable like a real server, and not
        // be one of them.
        let fallback = svc.fallback.map(|f| RealServerConfig {
            address: f.address,
            port: f.port,
            weight: 1,
            forward: f.forward,
            health_check: None,
        });
        let members = svc
            .real_servers
            .iter()
            .enumerate()
            .map(|(k, r)| (format!("services[{i}].real_servers[{k}]"), r))
            .chain(
                fallback
                    .iter()
                    .map(|r| (format!("services[{i}].fallback"), r)),
            );
        let mut addrs: HashMap<IpAddr, String> = HashMap::new();
        for (here, rs) in members {
            let rat = |f: &str| format!("{here}.{f}");
            let ip = rs.address;
            if let Some(j) = addrs.get(&ip) {
                v.push(Problem::new(
                    rat("address"),
                    format!("duplicate real server {ip} in service {name}, also at {j}"),
                ));
            } else {
                addrs.insert(ip, here.clone());
            }
            if let Some(hc) = &rs.health_check {
                check_health(hc, &rat("health_check"), v);
                if port_less(hc) {
                    v.push(Problem::new(
                        rat("health_check.port"),
                        "a service on all ports (port 0) has no port to check: give the check \
                         a `port: Some(N)`",
                    ));
                }
            }
            if group {
                super::groups::check_group_real(cfg, svc, rs, &here, v);
            }
            if rs.weight > 65535 {
                v.push(Problem::new(
                    rat("weight"),
                    format!("weight {} is out of range (0 to 65535)", rs.weight),
                ));
            }
            let method = match rs.forward {
                Forward::Dr => "DR",
                Forward::Tunnel => "tunnel mode",
                Forward::Nat => "NAT",
            };
            match rs.forward {
                Forward::Dr | Forward::Tunnel | Forward::Nat => {
                    if !group && ip.is_ipv6() != svc.vip.is_ipv6() && rs.forward == Forward::Nat {
                        // NAT rewrites addresses and ports, not the IP
                        // version (no NAT64/NAT46).
                        v.push(Problem::new(
                            rat("address"),
                            format!(
                                "real server {ip} is not of the VIP's address family ({}); NAT \
                                 translates addresses within one family (NAT44 or NAT66), not \
                                 between IPv4 and IPv6",
                                svc.vip
                            ),
                        ));
                    } else if !group && ip.is_ipv6() != svc.vip.is_ipv6() {
                        // DR keeps the packet as it came: its family is
                        // the VIP's, and the real server must be reached
                        // in it.
                        v.push(Problem::new(
                            rat("address"),
                            format!(
                                "real server {ip} is not of the VIP's address family ({}); DR \
                                 forwards the client's packet as it is",
                                svc.vip
                            ),
                        ));
                    } else if let Some(why) = special_address(ip) {
                        v.push(Problem::new(
                            rat("address"),
                            format!("real server {ip} is {why}"),
                        ));
                    } else if ip == svc.vip || (group && cfg.service_vips(svc).contains(&ip)) {
                        v.push(Problem::new(
                            rat("address"),
                            format!("real server {ip} is the service's own VIP"),
                        ));
                    } else if let Some(p) = port_owning(&cfg.ports, ip) {
                        // The director's own host as a real server (LVS's
                        // localnode): delivered through the kernel
                        // interface, untouched, as DR.
                        if p.kernel.is_none() || rs.forward != Forward::Dr {
                            v.push(Problem::new(
                                rat("address"),
                                format!(
                                    "real server {ip} is the director's own address on port {}; \
                                     as a local real server it needs forward: Dr and a kernel \
                                     interface on the port (ports[].kernel)",
                                    p.name
                                ),
                            ));
                        }
                    } else if let Some(p) = cfg.ports.iter().find(|p| {
                        p.on_subnet(ip)
                            && (ip == IpAddr::V4(network(p.address))
                                || ip == IpAddr::V4(subnet_broadcast(p.address)))
                    }) {
                        v.push(Problem::new(
                            rat("address"),
                            format!(
                                "real server {ip} is the network or broadcast address of port \
                                 {}'s subnet {}",
                                p.name, p.address
                            ),
                        ));
                    } else if !cfg.ports.is_empty()
                        && !match ip {
                            IpAddr::V4(v4) => super::routing::real_server_reachable(
                                cfg,
                                &interfaces,
                                v4,
                                rs.forward,
                            ),
                            // IPv6: DR, tunnel or NAT, on a port's
                            // `address6` subnet (no IPv6 routes).
                            IpAddr::V6(_) => cfg.ports.iter().any(|p| p.on_subnet(ip)),
                        }
                    {
                        let why = if rs.forward == Forward::Tunnel {
                            "tunnel real servers must be on a directly connected segment or \
                             behind a gateway (`routes`)"
                        } else if rs.forward == Forward::Nat {
                            "NAT real servers must be on a segment of one of the director's \
                             ports, with the director as their default gateway"
                        } else {
                            "DR needs real servers on a directly connected segment"
                        };
                        v.push(Problem::new(
                            rat("address"),
                            format!(
                                "real server {ip} is not on any port's subnet ({subnets}); {why}"
                            ),
                        ));
                    }
                    if group {
                        // DR and tunnel keep each packet's port; a real
                        // server's port in a group is for its health check.
                    } else if svc.port == 0 && rs.port.is_some_and(|p| p != 0) {
                        v.push(Problem::new(
                            rat("port"),
                            format!(
                                "a service on all ports (port 0) keeps each packet's port: \
                                 real server port {} must be left out (None)",
                                rs.port.unwrap_or(0)
                            ),
                        ));
                    } else if svc.port != 0 && rs.port == Some(0) && rs.forward == Forward::Nat {
                        v.push(Problem::new(
                            rat("port"),
                            format!(
                                "real server port 0 is only for services on all ports; give a \
                                 port or leave it out (the service port {})",
                                svc.port
                            ),
                        ));
                    } else if let Some(p) = rs.port.filter(|_| rs.forward != Forward::Nat) {
                        if p != svc.port {
                            v.push(Problem::new(
                                rat("port"),
                                format!(
                                    "{method} cannot change ports: real server port {p} differs \
                                     from service port {}",
                                    svc.port
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// Connection sync: a peer reachable through a port's kernel interface.
fn check_sync(cfg: &Config, v: &mut Vec<Problem>) {
    let Some(x) = &cfg.sync else {
        return;
    };
    match cfg.ports.iter().find(|p| p.address.contains(x.peer)) {
        None => v.push(Problem::new(
            "sync.peer",
            format!("peer {} is not on any port's subnet", x.peer),
        )),
        Some(p) if p.kernel.is_none() => v.push(Problem::new(
            "sync.peer",
            format!(
                "port {} (facing peer {}) has no kernel interface: the sync speaks through it",
                p.name, x.peer
            ),
        )),
        Some(p) if p.address.addr == x.peer => v.push(Problem::new(
            "sync.peer",
            format!("peer {} is this director's own address", x.peer),
        )),
        Some(_) => {}
    }
    if x.port == 0 {
        v.push(Problem::new("sync.port", "port 0 is not a port"));
    }
    if x.max_kbps < 64 {
        v.push(Problem::new(
            "sync.max_kbps",
            format!("max_kbps {} is below 64", x.max_kbps),
        ));
    }
    if !(10..=1000).contains(&x.batch_ms) {
        v.push(Problem::new(
            "sync.batch_ms",
            format!("batch_ms {} is out of range (10 to 1000)", x.batch_ms),
        ));
    }
}

/// The IPv4 VRRP instance: a port with a kernel interface, sane numbers,
/// IPv4 peers.
fn check_vrrp(cfg: &Config, v: &mut Vec<Problem>) {
    let Some(x) = &cfg.vrrp else {
        return;
    };
    check_vrrp_instance(cfg, x, "vrrp", v);
    for (i, a) in x.unicast_peers.iter().enumerate() {
        if a.is_ipv6() {
            v.push(Problem::new(
                format!("vrrp.unicast_peers[{i}]"),
                format!("{a} is an IPv6 address: IPv6 peers belong to the vrrp6 instance"),
            ));
        }
    }
    if cfg.vrrp6.is_none()
        && cfg
            .services
            .iter()
            .any(|s| cfg.service_vips(s).iter().any(IpAddr::is_ipv6))
    {
        v.push(Problem::new(
            "vrrp",
            "the IPv6 VIPs need their own VRRP instance: add `vrrp6` (as keepalived, \
             lbd keeps IPv4 and IPv6 addresses in separate instances)",
        ));
    }
}

/// The IPv6 VRRP instance (VRRPv3 over IPv6): as the IPv4 one, version 3
/// only, IPv6 peers and extra addresses; and the IPv4 VIPs, if any, in a
/// `vrrp` instance of their own.
fn check_vrrp6(cfg: &Config, v: &mut Vec<Problem>) {
    let Some(x) = &cfg.vrrp6 else {
        return;
    };
    check_vrrp_instance(cfg, x, "vrrp6", v);
    if x.version != 3 {
        v.push(Problem::new(
            "vrrp6.version",
            format!("version {}: VRRP over IPv6 is version 3 only", x.version),
        ));
    }
    for (i, a) in x.unicast_peers.iter().enumerate() {
        if a.is_ipv4() {
            v.push(Problem::new(
                format!("vrrp6.unicast_peers[{i}]"),
                format!("{a} is an IPv4 address: the vrrp6 instance speaks IPv6"),
            ));
        }
    }
    if cfg.vrrp.is_none()
        && cfg
            .services
            .iter()
            .any(|s| cfg.service_vips(s).iter().any(IpAddr::is_ipv4))
    {
        v.push(Problem::new(
            "vrrp6",
            "the IPv4 VIPs need their own VRRP instance: add `vrrp` (as keepalived, \
             lbd keeps IPv4 and IPv6 addresses in separate instances)",
        ));
    }
}

/// What the two instances share: a port with a kernel interface, sane
/// numbers. `name` is the instance's field (`vrrp`, `vrrp6`).
fn check_vrrp_instance(
    cfg: &Config,
    x: &super::types::VrrpConfig,
    name: &str,
    v: &mut Vec<Problem>,
) {
    let at = |f: &str| format!("{name}.{f}");
    match cfg.ports.iter().find(|p| p.name == x.port) {
        None => v.push(Problem::new(
            at("port"),
            format!("no port named \"{}\"", x.port),
        )),
        Some(p) if p.kernel.is_none() => v.push(Problem::new(
            at("port"),
            format!(
                "port {} has no kernel interface: VRRP speaks through it; add \
                 `kernel: Some((iface: \"lbd-{}\"))` to the port",
                p.name, p.name
            ),
        )),
        Some(_) => {}
    }
    if x.vrid == 0 {
        v.push(Problem::new(
            at("vrid"),
            "vrid 0 is out of range (1 to 255)",
        ));
    }
    // Each instance holds addresses of its own family (`vrrp6` is IPv6).
    let v6 = name == "vrrp6";
    for (i, a) in x.addresses.iter().enumerate() {
        let at = format!("{name}.addresses[{i}]");
        if a.is_ipv6() != v6 {
            let (family, other) = if v6 {
                ("an IPv4", "vrrp.addresses")
            } else {
                ("an IPv6", "vrrp6.addresses")
            };
            v.push(Problem::new(
                at,
                format!("{a} is {family} address: it belongs in `{other}`"),
            ));
        } else if let Some(why) = special_address(*a) {
            v.push(Problem::new(at, format!("address {a} is {why}")));
        } else if matches!(a, IpAddr::V6(b) if b.is_unicast_link_local()) {
            v.push(Problem::new(
                at,
                format!("address {a} is link-local: each port has its own"),
            ));
        } else if let Some(p) = port_owning(&cfg.ports, *a) {
            v.push(Problem::new(
                at,
                format!(
                    "address {a} is the director's own address on port {}",
                    p.name
                ),
            ));
        } else if !cfg.ports.iter().any(|p| p.on_subnet(*a)) {
            let which = if v6 { "address6 " } else { "" };
            v.push(Problem::new(
                at,
                format!("address {a} is not on any port's {which}subnet"),
            ));
        }
    }
    if !(1..=254).contains(&x.priority) {
        v.push(Problem::new(
            at("priority"),
            format!(
                "priority {} is out of range (1 to 254; 255 is for the owner of the addresses)",
                x.priority
            ),
        ));
    }
    if x.version != 2 && x.version != 3 {
        v.push(Problem::new(
            at("version"),
            format!("version {} is not spoken (2 or 3)", x.version),
        ));
    }
    if let Some(p) = &x.auth_pass {
        if x.version != 2 {
            v.push(Problem::new(
                at("auth_pass"),
                "VRRPv3 has no authentication; auth_pass needs version: 2",
            ));
        } else if p.is_empty() || p.len() > 8 || !p.is_ascii() {
            v.push(Problem::new(
                at("auth_pass"),
                "auth_pass must be 1 to 8 ASCII characters (keepalived sends 8)",
            ));
        }
    }
    if x.version == 2 {
        if !(1000..=255_000).contains(&x.advert_interval_ms)
            || !x.advert_interval_ms.is_multiple_of(1000)
        {
            v.push(Problem::new(
                at("advert_interval_ms"),
                format!(
                    "advert_interval_ms {}: VRRPv2 counts whole seconds (1000 to 255000)",
                    x.advert_interval_ms
                ),
            ));
        }
    } else if !(10..=40_950).contains(&x.advert_interval_ms)
        || !x.advert_interval_ms.is_multiple_of(10)
    {
        v.push(Problem::new(
            at("advert_interval_ms"),
            format!(
                "advert_interval_ms {} must be a multiple of 10 from 10 to 40950",
                x.advert_interval_ms
            ),
        ));
    }
    if x.garp_count > 100 {
        v.push(Problem::new(
            at("garp_count"),
            format!("garp_count {} is out of range (0 to 100)", x.garp_count),
        ));
    }
}

/// A health check's timings, counts and parameters.
fn check_health(hc: &HealthCheck, at: &str, v: &mut Vec<Problem>) {
    let f = |x: &str| format!("{at}.{x}");
    if !(100..=3_600_000).contains(&hc.interval_ms) {
        v.push(Problem::new(
            f("interval_ms"),
            format!(
                "interval_ms {} is out of range (100 ms to 1 hour)",
                hc.interval_ms
            ),
        ));
    }
    if !(10..=600_000).contains(&hc.timeout_ms) {
        v.push(Problem::new(
            f("timeout_ms"),
            format!(
                "timeout_ms {} is out of range (10 ms to 10 minutes)",
                hc.timeout_ms
            ),
        ));
    }
    for (name, n) in [("rise", hc.rise), ("fall", hc.fall)] {
        if !(1..=100).contains(&n) {
            v.push(Problem::new(
                f(name),
                format!("{name} {n} is out of range (1 to 100 consecutive checks)"),
            ));
        }
    }
    if hc.port == Some(0) {
        v.push(Problem::new(f("port"), "check port 0 is not a port"));
    }
    match &hc.check {
        CheckKind::Tcp => {}
        CheckKind::Http {
            path, status, host, ..
        } => {
            if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
                v.push(Problem::new(
                    f("check.path"),
                    format!("HTTP path \"{path}\" must start with / and hold no spaces"),
                ));
            }
            if !(100..=599).contains(status) {
                v.push(Problem::new(
                    f("check.status"),
                    format!("HTTP status {status} is out of range (100 to 599)"),
                ));
            }
            if host.as_ref().is_some_and(|h| {
                h.is_empty() || h.chars().any(|c| c.is_whitespace() || c.is_control())
            }) {
                v.push(Problem::new(
                    f("check.host"),
                    "Host header is empty or holds spaces",
                ));
            }
        }
        CheckKind::Udp { send, .. } => {
            if send.is_empty() {
                v.push(Problem::new(
                    f("check.send"),
                    "the UDP check needs a non-empty datagram to send",
                ));
            }
        }
        CheckKind::Exec { command, .. } => {
            if command.trim().is_empty() {
                v.push(Problem::new(f("check.command"), "the command is empty"));
            }
        }
    }
}

/// The tunnel source pool: a network inside the subnet of the port that
/// reaches the tunnel real servers, holding none of the special addresses
/// of that subnet, no VIP and no real server.
fn check_tunnel(cfg: &Config, v: &mut Vec<Problem>) {
    let Some(pool) = cfg.tunnel.source_pool else {
        return;
    };
    let at = "tunnel.source_pool";
    let net = network(pool);
    if pool.addr != net {
        v.push(Problem::new(
            at,
            format!(
                "source pool {pool} is not a network address; write {net}/{}",
                pool.prefix
            ),
        ));
        return;
    }
    let Some(port) = cfg
        .ports
        .iter()
        .find(|p| p.address.prefix <= pool.prefix && p.address.contains(net))
    else {
        let subnets = cfg
            .ports
            .iter()
            .map(|p| format!("{} {}", p.name, p.address))
            .collect::<Vec<_>>()
            .join(", ");
        v.push(Problem::new(
            at,
            format!(
                "source pool {pool} is not inside any port's subnet ({subnets}); outer source \
                 addresses must be on the real servers' segment, so that their reverse-path \
                 filter accepts the tunnelled packets on the interface they arrive on"
            ),
        ));
        return;
    };
    let inside = |ip: IpAddr| matches!(ip, IpAddr::V4(a) if pool.contains(a));
    let pa = port.address;
    if inside(network(pa).into()) || inside(subnet_broadcast(pa).into()) {
        v.push(Problem::new(
            at,
            format!(
                "source pool {pool} contains the network or broadcast address of port {}'s \
                 subnet {pa}",
                port.name
            ),
        ));
    }
    for svc in &cfg.services {
        for vip in cfg.service_vips(svc).into_iter().filter(|a| inside(*a)) {
            v.push(Problem::new(
                at,
                format!(
                    "source pool {pool} contains VIP {vip}: real servers hold the VIP \
                     themselves and would drop packets from it"
                ),
            ));
        }
        for rs in &svc.real_servers {
            if inside(rs.address) {
                v.push(Problem::new(
                    at,
                    format!(
                        "source pool {pool} contains real server {}: a server drops packets \
                         that claim to come from its own address",
                        rs.address
                    ),
                ));
            }
            let egress = cfg.ports.iter().find(|p| p.on_subnet(rs.address));
            if rs.forward == Forward::Tunnel && egress.is_some_and(|p| p.name != port.name) {
                v.push(Problem::new(
                    at,
                    format!(
                        "source pool {pool} is on port {}'s subnet, but tunnel real server {} \
                         is reached through port {}; the pool must be on the egress port's \
                         subnet",
                        port.name,
                        rs.address,
                        egress.map(|p| p.name.as_str()).unwrap_or("?")
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lcore_lists() {
        assert_eq!(parse_lcore_list("0-3"), Ok(vec![0, 1, 2, 3]));
        assert_eq!(parse_lcore_list("0,2,4"), Ok(vec![0, 2, 4]));
        assert_eq!(parse_lcore_list("1-2,5"), Ok(vec![1, 2, 5]));
        assert_eq!(parse_lcore_list(" 7 "), Ok(vec![7]));
        assert!(parse_lcore_list("").is_err());
        assert!(parse_lcore_list("0,").is_err());
        assert!(parse_lcore_list("3-1").unwrap_err().contains("backwards"));
        assert!(parse_lcore_list("0-2,1").unwrap_err().contains("twice"));
        assert!(parse_lcore_list("a")
            .unwrap_err()
            .contains("`a` is not a core number"));
        assert!(parse_lcore_list("0-4000000000")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_lcore_list("0--1").is_err());
    }

    use crate::config::{parse, ConfigError};

    const BASE: &str = r#"(
    eal: (cores: "0-1"),
    ports: [
        (name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24"),
    ],
    services: [
        (
            vip: "198.18.0.100",
            port: 80,
            scheduler: Rr,
            real_servers: [
                (address: "198.18.0.11", weight: 1),
                (address: "198.18.0.12"),
            ],
        ),
    ],
)
"#;

    #[test]
    fn config_idle_sleep_range() {
        let text = |v: &str| {
            with(
                "eal: (cores: \"0-1\"),",
                &format!("eal: (cores: \"0-1\"), workers: (idle_sleep_us: {v}),"),
            )
        };
        assert!(problems(&text("None")).is_empty());
        assert!(problems(&text("Some(50)")).is_empty());
        for bad in ["Some(0)", "Some(100001)"] {
            let p = problems(&text(bad));
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert_eq!(p[0].field, "workers.idle_sleep_us");
            assert_eq!(p[0].line, Some(2), "{p:?}");
        }
    }

    /// `BASE` with one replacement, which must apply.
    fn with(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "BASE does not contain {from:?}");
        BASE.replacen(from, to, 1)
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text, "t.ron") {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, origin }) => {
                assert_eq!(origin, "t.ron");
                problems
            }
            Err(e) => panic!("expected validation problems, got: {e}"),
        }
    }

    #[test]
    fn config_control_socket_must_not_be_the_config_file() {
        use crate::config::load;
        let dir = std::env::temp_dir().join(format!("lbcore-socket-path-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let file = dir.join("lbd.ron");
        let with_socket = |sock: &std::path::Path| {
            let text = with(
                "    services:",
                &format!(
                    "    control: (socket: \"{}\"),\n    services:",
                    sock.display()
                ),
            );
            std::fs::write(&file, &text).unwrap();
            (text, load(&file))
        };
        let link = dir.join("link.sock");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let hard = dir.join("hard.sock");
        for sock in [
            file.clone(),
            dir.join("sub/../lbd.ron"),
            dir.join("./lbd.ron"),
            link.clone(),
            hard.clone(),
        ] {
            if sock == hard {
                let _ = std::fs::remove_file(&hard);
                std::fs::write(&file, "").unwrap();
                std::fs::hard_link(&file, &hard).unwrap();
            }
            let (text, got) = with_socket(&sock);
            let Err(e) = got else {
                panic!("socket {} accepted", sock.display())
            };
            let p = e.problems();
            assert_eq!(p.len(), 1, "{e}");
            assert_eq!(p[0].field, "control.socket");
            assert!(
                p[0].message.starts_with(&format!(
                    "socket path `{}` is this configuration file ({})",
                    sock.display(),
                    file.display()
                )),
                "{}",
                p[0].message
            );
            let (line, column) = pos_of(&text, "socket:");
            assert_eq!((p[0].line, p[0].column), (Some(line), Some(column)));
            assert!(
                e.to_string().starts_with(&format!("{}:", file.display())),
                "{e}"
            );
        }
        // A path of its own is fine, existing directory or not; parse alone
        // (no file) cannot know and does not complain.
        let _ = std::fs::remove_file(&hard);
        assert!(with_socket(&dir.join("lbd.sock")).1.is_ok());
        assert!(with_socket(std::path::Path::new("/run/lbd-none/lbd.sock"))
            .1
            .is_ok());
        let (text, _) = with_socket(&file);
        assert!(parse(&text, "t.ron").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// 1-based line and column of the first occurrence of `needle`.
    fn pos_of(text: &str, needle: &str) -> (usize, usize) {
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in text"));
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap().chars().count() + 1;
        (line, column)
    }

    /// Asserts that `text` has exactly one problem, at `field`, with a
    /// message containing `msg`, positioned where `at` first occurs.
    #[track_caller]
    fn one(text: &str, field: &str, msg: &str, at: &str) {
        let ps = problems(text);
        assert_eq!(ps.len(), 1, "expected one problem, got {ps:#?}");
        check(&ps[0], text, field, msg, at);
    }

    /// Asserts that `text` has a problem at `field` (among others).
    #[track_caller]
    fn has(text: &str, field: &str, msg: &str, at: &str) {
        let ps = problems(text);
        let p = ps
            .iter()
            .find(|p| p.field == field)
            .unwrap_or_else(|| panic!("no problem at {field}: {ps:#?}"));
        check(p, text, field, msg, at);
    }

    #[track_caller]
    fn check(p: &Problem, text: &str, field: &str, msg: &str, at: &str) {
        assert_eq!(p.field, field);
        assert!(
            p.message.contains(msg),
            "message {:?} does not contain {msg:?}",
            p.message
        );
        let (line, column) = pos_of(text, at);
        assert_eq!(
            (p.line, p.column),
            (Some(line), Some(column)),
            "position of {field} should be that of {at:?}"
        );
    }

    #[test]
    fn config_base_is_valid() {
        assert_eq!(problems(BASE), vec![]);
        assert!(validate(&parse(BASE, "t.ron").unwrap()).is_empty());
    }

    #[test]
    fn config_service_without_real_servers_is_allowed() {
        let text = BASE.replace(
            r#"real_servers: [
                (address: "198.18.0.11", weight: 1),
                (address: "198.18.0.12"),
            ],"#,
            "",
        );
        assert_eq!(problems(&text), vec![]);
    }

    #[test]
    fn config_needs_a_port() {
        let text = with(
            r#"(name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24"),"#,
            "",
        );
        one(&text, "ports", "at least one port", "ports:");
    }

    #[test]
    fn config_port_names_and_devices() {
        one(
            &with(r#"name: "lan0""#, r#"name: " ""#),
            "ports[0].name",
            "empty",
            "name:",
        );
        one(
            &with(r#"device: "net_af_packet0,iface=eth0""#, r#"device: """#),
            "ports[0].device",
            "device is empty",
            "device:",
        );

        let two = |second: &str| {
            with(
                r#"address: "198.18.0.2/24"),"#,
                &format!("address: \"198.18.0.2/24\"),\n        {second},"),
            )
            .replace(r#"cores: "0-1""#, r#"cores: "0-2""#)
        };
        let ok =
            two(r#"(name: "lan1", device: "net_af_packet1,iface=eth1", address: "198.19.0.2/24")"#);
        assert_eq!(problems(&ok), vec![]);

        let t =
            two(r#"(name: "lan0", device: "net_af_packet1,iface=eth1", address: "198.19.0.2/24")"#);
        one(
            &t,
            "ports[1].name",
            "duplicate port name \"lan0\", also used by ports[0]",
            r#"name: "lan0", device: "net_af_packet1"#,
        );

        let t =
            two(r#"(name: "lan1", device: "net_af_packet0,iface=eth0", address: "198.19.0.2/24")"#);
        one(
            &t,
            "ports[1].device",
            "device \"net_af_packet0,iface=eth0\" is also used by ports[0]",
            r#"device: "net_af_packet0,iface=eth0", address: "198.19"#,
        );

        let t =
            two(r#"(name: "lan1", device: "net_af_packet1,iface=eth1", address: "198.18.7.9/16")"#);
        one(
            &t,
            "ports[1].address",
            "subnet 198.18.0.0/16 of 198.18.7.9/16 overlaps subnet 198.18.0.0/24 of ports[0] (lan0 198.18.0.2/24)",
            r#"address: "198.18.7.9/16""#,
        );
    }

    #[test]
    fn config_port_addresses() {
        let no_services = |addr: &str| {
            let t = with(
                r#"address: "198.18.0.2/24""#,
                &format!("address: \"{addr}\""),
            );
            let start = t.find("    services").unwrap();
            let end = t.rfind(")").unwrap();
            format!("{}{}", &t[..start], &t[end..])
        };
        for (addr, msg) in [
            ("0.0.0.0/24", "the unspecified address"),
            ("224.0.0.5/24", "a multicast address"),
            ("255.255.255.255/24", "the broadcast address"),
            ("127.0.0.2/8", "a loopback address"),
            (
                "198.18.0.2/31",
                "prefix /31 of 198.18.0.2/31 is out of range (8 to 30)",
            ),
            (
                "198.18.0.2/7",
                "prefix /7 of 198.18.0.2/7 is out of range (8 to 30)",
            ),
            ("198.18.0.0/24", "198.18.0.0/24 is the network address"),
            (
                "198.18.0.255/24",
                "198.18.0.255/24 is the broadcast address of its subnet",
            ),
        ] {
            one(&no_services(addr), "ports[0].address", msg, "address:");
        }
        assert_eq!(problems(&no_services("198.18.0.2/30")), vec![]);
        assert_eq!(problems(&no_services("10.0.0.1/8")), vec![]);
    }

    #[test]
    fn config_port_mac() {
        let t = |mac: &str| {
            with(
                r#""198.18.0.2/24")"#,
                &format!("\"198.18.0.2/24\", mac: Some(\"{mac}\"))"),
            )
        };
        one(
            &t("00:00:00:00:00:00"),
            "ports[0].mac",
            "mac 00:00:00:00:00:00 is all zeros",
            "mac:",
        );
        one(&t("01:00:5e:00:00:01"), "ports[0].mac", "multicast", "mac:");
        one(&t("ff:ff:ff:ff:ff:ff"), "ports[0].mac", "multicast", "mac:");
        assert_eq!(problems(&t("02:00:00:00:00:01")), vec![]);
    }

    #[test]
    fn config_workers() {
        let t = |w: &str| with("    ports:", &format!("    workers: ({w}),\n    ports:"));
        one(
            &t("queues_per_port: 0"),
            "workers.queues_per_port",
            "queues_per_port 0 is out of range (1 to 16)",
            "queues_per_port",
        );
        let t17 = t("queues_per_port: 17").replace("\"0-1\"", "\"0-17\"");
        one(
            &t17,
            "workers.queues_per_port",
            "queues_per_port 17 is out of range (1 to 16)",
            "queues_per_port",
        );
        one(
            &t("burst: 0"),
            "workers.burst",
            "burst 0 is out of range (1 to 64)",
            "burst",
        );
        one(
            &t("burst: 65"),
            "workers.burst",
            "burst 65 is out of range (1 to 64)",
            "burst",
        );
        one(
            &t("mbufs: 1022"),
            "workers.mbufs",
            "mbufs 1022 is too small (at least 1023)",
            "mbufs",
        );
        assert_eq!(
            problems(
                &t("queues_per_port: 16, burst: 64, mbufs: 1023").replace("\"0-1\"", "\"0-16\"")
            ),
            vec![]
        );
        one(
            &t("rss_key: Custom(\"6d5g\")"),
            "workers.rss_key",
            "must be hex digits",
            "rss_key",
        );
        one(
            &t("rss_key: Custom(\"6d5\")"),
            "workers.rss_key",
            "must be hex digits",
            "rss_key",
        );
        assert_eq!(problems(&t("rss_key: Symmetric")), vec![]);
        assert_eq!(problems(&t("rss_key: Custom(\"6d:5a:6d:5a\")")), vec![]);
        assert_eq!(
            RssKey::custom_bytes("6d:5a 01ff"),
            Some(vec![0x6d, 0x5a, 0x01, 0xff])
        );
    }

    #[test]
    fn lcores_mapping_cpus_and_core_list_format() {
        assert_eq!(lcores_mapping_cpus("(0-2)@(0-1)").unwrap(), vec![0, 1]);
        assert_eq!(lcores_mapping_cpus("0@0,1@1,2@1").unwrap(), vec![0, 1]);
        // Without `@`, lcore N runs on CPU N.
        assert_eq!(lcores_mapping_cpus("0,(1,2)@5").unwrap(), vec![0, 5]);
        assert_eq!(lcores_mapping_cpus("0-2").unwrap(), vec![0, 1, 2]);
        assert_eq!(lcores_mapping_cpus("1@(3,7)").unwrap(), vec![3, 7]);
        assert!(lcores_mapping_cpus("(0-2@1").is_err());
        assert!(lcores_mapping_cpus("0@(x)").is_err());
        assert_eq!(format_core_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_core_list(&[3]), "3");
        assert_eq!(format_core_list(&[]), "");
    }

    /// The one problem `check_cpus` finds in BASE with `eal` replaced by
    /// `eal` and `queues_per_port` queues, on a machine with `cpus`.
    fn cpu_problems(eal: &str, queues: u16, cpus: &[u32]) -> Vec<Problem> {
        let text = BASE.replace(r#"eal: (cores: "0-1"),"#, eal).replace(
            "services: [",
            &format!("workers: (queues_per_port: {queues}),\n    services: ["),
        );
        let cfg = parse(&text, "t.ron").unwrap_or_else(|e| panic!("{e}"));
        let mut problems = check_cpus(&cfg, cpus);
        crate::config::locate_problems(&text, &mut problems);
        problems
    }

    #[test]
    fn config_cores_against_the_machine() {
        // Two CPUs, three lcores by `-l`: refused, with a mapping that fits.
        let p = cpu_problems(r#"eal: (cores: "0-2"),"#, 2, &[0, 1]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "eal.cores");
        assert_eq!((p[0].line, p[0].column), (Some(2), Some(11)));
        assert_eq!(
            p[0].message,
            "core list \"0-2\" names CPU 2, which this machine does not have (lbd may run on \
             CPUs 0-1 here); name CPUs it has, or run 3 lcores on fewer CPUs with eal.lcores \
             instead of eal.cores, e.g. lcores: Some(\"(0-2)@(0-1)\")"
        );
        // Several missing, in a sparse CPU set.
        let p = cpu_problems(r#"eal: (cores: "0-3"),"#, 1, &[0, 1, 4, 5]);
        assert!(p[0].message.contains("names CPUs 2-3,"), "{p:?}");
        assert!(
            p[0].message.contains("(lbd may run on CPUs 0-1,4-5 here)"),
            "{p:?}"
        );
        // CPUs the machine has are fine, wherever they are.
        assert_eq!(cpu_problems(r#"eal: (cores: "0-1"),"#, 1, &[0, 1]), vec![]);
        assert_eq!(
            cpu_problems(r#"eal: (cores: "4,5"),"#, 1, &[0, 4, 5]),
            vec![]
        );
        // The suggested mapping is accepted on that machine.
        assert_eq!(
            cpu_problems(r#"eal: (lcores: Some("(0-2)@(0-1)")),"#, 2, &[0, 1]),
            vec![]
        );
        // A mapping onto CPUs that do not exist.
        let p = cpu_problems(r#"eal: (lcores: Some("(0-2)@(0-3)")),"#, 2, &[0, 1]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "eal.lcores");
        assert_eq!(
            p[0].message,
            "lcores mapping \"(0-2)@(0-3)\" runs lcores on CPUs 2-3, which this machine does not \
             have (lbd may run on CPUs 0-1 here); map them onto CPUs it has, e.g. \"(0-2)@(0-1)\""
        );
        // Without `@` a mapping's lcores are its CPUs.
        let p = cpu_problems(r#"eal: (lcores: Some("0,1,2")),"#, 2, &[0, 1]);
        assert!(p[0].message.contains("runs lcores on CPU 2,"), "{p:?}");
        // A single CPU.
        let p = cpu_problems(r#"eal: (lcores: Some("0,1@1")),"#, 1, &[0]);
        assert!(
            p[0].message.contains("(lbd may run on CPU 0 here)"),
            "{p:?}"
        );
        // Unknown CPUs: nothing to say.
        assert_eq!(cpu_problems(r#"eal: (cores: "0-7"),"#, 1, &[]), vec![]);
    }

    #[test]
    fn lcores_mapping_names_its_lcores() {
        assert_eq!(parse_lcores_mapping("(0-2)@(0-1)").unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_lcores_mapping("0@0,1@1,2@1").unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_lcores_mapping("0,(1,2)@1").unwrap(), vec![0, 1, 2]);
        assert!(parse_lcores_mapping("(0-2@1").is_err());
        assert!(parse_lcores_mapping("0@0,0@1").is_err());
    }

    #[test]
    fn config_eal_cores() {
        one(
            &with(r#""0-1""#, r#""""#),
            "eal.cores",
            "no cores given",
            "cores",
        );
        one(
            &with(r#""0-1""#, r#""0-x""#),
            "eal.cores",
            "`x` is not a core number",
            "cores",
        );
        one(&with(r#""0-1""#, r#""0""#), "eal.cores", "core list \"0\" has 1 core but 2 are needed: 1 main lcore plus one worker per port queue (1 port x 1 queue)", "cores");
        // The default "0-1" is too few for two queues: the problem points at
        // `eal`, as `cores` is not written.
        let t = with(
            r#"eal: (cores: "0-1"),"#,
            "eal: (),\n    workers: (queues_per_port: 2),",
        );
        one(
            &t,
            "eal.cores",
            "core list \"0-1\" has 2 cores but 3 are needed",
            "eal:",
        );
        // No `eal` at all: nothing on the path is written, so no position.
        let t = with(r#"eal: (cores: "0-1"),"#, "workers: (queues_per_port: 2),");
        let ps = problems(&t);
        assert_eq!(ps.len(), 1);
        assert_eq!(
            (ps[0].field.as_str(), ps[0].line, ps[0].column),
            ("eal.cores", None, None)
        );
        assert_eq!(problems(&with(r#""0-1""#, r#""3,5""#)), vec![]);
    }

    #[test]
    fn config_eal_memory_and_prefix() {
        one(
            &with("(cores: \"0-1\")", "(cores: \"0-1\", memory_mb: Some(0))"),
            "eal.memory_mb",
            "at least 1",
            "memory_mb",
        );
        one(
            &with(
                "(cores: \"0-1\")",
                "(cores: \"0-1\", file_prefix: Some(\"\"))",
            ),
            "eal.file_prefix",
            "file_prefix is empty",
            "file_prefix",
        );
    }

    #[test]
    fn config_conn_table_capacity() {
        let t = |c: u32| {
            with(
                "    ports:",
                &format!("    conn_table: (capacity: {c}),\n    ports:"),
            )
        };
        one(
            &t(1023),
            "conn_table.capacity",
            "capacity 1023 is out of range (1024 to 67108864)",
            "capacity",
        );
        one(
            &t(67_108_865),
            "conn_table.capacity",
            "capacity 67108865 is out of range",
            "capacity",
        );
        assert_eq!(problems(&t(1024)), vec![]);
        assert_eq!(problems(&t(67_108_864)), vec![]);
    }

    #[test]
    fn config_timeouts() {
        for name in [
            "tcp_established",
            "tcp_syn_recv",
            "tcp_fin_wait",
            "tcp_time_wait",
            "tcp_close",
            "udp",
        ] {
            let t = |v: u32| {
                with(
                    "    ports:",
                    &format!("    timeouts: ({name}: {v}),\n    ports:"),
                )
            };
            one(
                &t(0),
                &format!("timeouts.{name}"),
                "timeout 0 s is out of range (1 to 2073600 s, which is 24 days)",
                name,
            );
            one(
                &t(2_073_601),
                &format!("timeouts.{name}"),
                "timeout 2073601 s is out of range",
                name,
            );
            assert_eq!(problems(&t(2_073_600)), vec![]);
            assert_eq!(problems(&t(1)), vec![]);
        }
    }

    #[test]
    fn config_syn_flood() {
        let t = |n: &str| with("    ports:", &format!("    syn_flood: ({n}),\n    ports:"));
        assert_eq!(problems(&t("mode: On, syn_recv_timeout: 3")), vec![]);
        one(
            &t("syn_recv_timeout: 0"),
            "syn_flood.syn_recv_timeout",
            "syn_recv_timeout 0 s is out of range",
            "syn_recv_timeout",
        );
        one(
            &t("engage_percent: 101"),
            "syn_flood.engage_percent",
            "engage_percent 101 is out of range",
            "engage_percent",
        );
        one(
            &t("engage_percent: 60, release_percent: 60"),
            "syn_flood.release_percent",
            "release_percent 60 must be below engage_percent 60",
            "release_percent",
        );
    }

    #[test]
    fn config_neighbours() {
        let t = |n: &str| with("    ports:", &format!("    neighbours: ({n}),\n    ports:"));
        one(
            &t("refresh: 0, expire: 5"),
            "neighbours.refresh",
            "refresh 0 is too small",
            "refresh",
        );
        one(
            &t("refresh: 5, expire: 5"),
            "neighbours.expire",
            "expire 5 must be longer than refresh 5",
            "expire",
        );
        // `expire` left at its default 90: the problem points at `neighbours`.
        one(
            &t("refresh: 100"),
            "neighbours.expire",
            "expire 90 must be longer than refresh 100",
            "neighbours",
        );
        assert_eq!(problems(&t("refresh: 1, expire: 2")), vec![]);
    }

    const TWO_SERVICES: &str = r#"(
    ports: [(name: "lan0", device: "d0", address: "198.18.0.2/24")],
    services: [
        (vip: "198.18.0.100", port: 80, real_servers: [(address: "198.18.0.11")]),
        (vip: "198.18.0.100", port: 80, protocol: PROTO),
    ],
)"#;

    #[test]
    fn config_duplicate_services() {
        let t = TWO_SERVICES.replace("PROTO", "Tcp");
        one(
            &t,
            "services[1]",
            "duplicate service 198.18.0.100:80/tcp, also defined at services[0]",
            "(vip: \"198.18.0.100\", port: 80, protocol",
        );
        assert_eq!(problems(&TWO_SERVICES.replace("PROTO", "Udp")), vec![]);
    }

    #[test]
    fn config_service_port_and_vip() {
        one(
            &with("port: 80", "port: 0"),
            "services[0].port",
            "port 0 (a service on all ports) needs persistence, as in IPVS",
            "port: 0",
        );
        for (vip, msg) in [
            ("0.0.0.0", "VIP 0.0.0.0 is the unspecified address"),
            ("239.1.2.3", "VIP 239.1.2.3 is a multicast address"),
            (
                "255.255.255.255",
                "VIP 255.255.255.255 is the broadcast address",
            ),
            (
                "198.18.0.2",
                "VIP 198.18.0.2 is the director's own address on port lan0",
            ),
        ] {
            one(
                &with("\"198.18.0.100\"", &format!("\"{vip}\"")),
                "services[0].vip",
                msg,
                "vip:",
            );
        }
    }

    #[test]
    fn config_real_servers() {
        one(
            &with(
                r#"(address: "198.18.0.11", weight: 1)"#,
                r#"(address: "198.18.0.11", weight: 70000)"#,
            ),
            "services[0].real_servers[0].weight",
            "weight 70000 is out of range (0 to 65535)",
            "weight",
        );
        assert_eq!(problems(&with("weight: 1", "weight: 65535")), vec![]);
        assert_eq!(problems(&with("weight: 1", "weight: 0")), vec![]);
        one(
            &with(r#"(address: "198.18.0.12")"#, r#"(address: "198.18.0.11")"#),
            "services[0].real_servers[1].address",
            "duplicate real server 198.18.0.11 in service 198.18.0.100:80/tcp, also at services[0].real_servers[0]",
            r#"address: "198.18.0.11")"#,
        );
        one(
            &with(r#"(address: "198.18.0.12")"#, r#"(address: "10.1.1.1")"#),
            "services[0].real_servers[1].address",
            "real server 10.1.1.1 is not on any port's subnet (lan0 198.18.0.2/24); DR needs real servers on a directly connected segment",
            r#"address: "10.1.1.1""#,
        );
        one(
            &with(
                r#"(address: "198.18.0.12")"#,
                r#"(address: "198.18.0.12", port: Some(8080))"#,
            ),
            "services[0].real_servers[1].port",
            "DR cannot change ports: real server port 8080 differs from service port 80",
            "port: Some",
        );
        assert_eq!(
            problems(&with(
                r#"(address: "198.18.0.12")"#,
                r#"(address: "198.18.0.12", port: Some(80))"#
            )),
            vec![]
        );
        for (addr, msg) in [
            ("198.18.0.100", "real server 198.18.0.100 is the service's own VIP"),
            (
                "198.18.0.2",
                "real server 198.18.0.2 is the director's own address on port lan0; as a local \
                 real server it needs forward: Dr and a kernel interface",
            ),
            ("198.18.0.0", "real server 198.18.0.0 is the network or broadcast address of port lan0's subnet 198.18.0.2/24"),
            ("198.18.0.255", "network or broadcast address"),
            ("224.0.0.1", "real server 224.0.0.1 is a multicast address"),
        ] {
            one(
                &with(r#"(address: "198.18.0.12")"#, &format!("(address: \"{addr}\")")),
                "services[0].real_servers[1].address",
                msg,
                &format!("address: \"{addr}\""),
            );
        }
    }

    #[test]
    fn config_several_problems_each_on_its_line() {
        let text = with("weight: 1", "weight: 70000").replace("port: 80", "port: 0");
        let err = parse(&text, "configs/lab.ron").unwrap_err();
        let (wl, wc) = pos_of(&text, "weight");
        let (pl, pc) = pos_of(&text, "port: 0");
        assert_eq!(
            err.to_string(),
            format!(
                "configs/lab.ron:{pl}:{pc}: services[0].port: port 0 (a service on all ports) needs persistence, as in IPVS: add `persistence: Some((timeout: 300))`, or give the service's port number\n\
                 configs/lab.ron:{wl}:{wc}: services[0].real_servers[0].weight: weight 70000 is out of range (0 to 65535)"
            )
        );
        has(&text, "services[0].port", "port 0", "port: 0");
    }

    #[test]
    fn config_persistence() {
        let p = |body: &str| {
            with(
                "scheduler: Rr,",
                &format!("scheduler: Rr, persistence: {body},"),
            )
        };
        assert_eq!(problems(&p("Some(())")), vec![]);
        assert_eq!(problems(&p("Some((timeout: 1, netmask: 0))")), vec![]);
        assert_eq!(
            problems(&p("Some((timeout: 2073600, netmask: 32))")),
            vec![]
        );
        assert_eq!(problems(&p("None")), vec![]);
        let cfg = parse(&p("Some((timeout: 60))"), "t.ron").unwrap();
        let got = cfg.services[0].persistence.unwrap();
        assert_eq!((got.timeout, got.netmask), (60, 32));
        assert_eq!(got.mask(), u32::MAX);
        let dflt = crate::config::Persistence::default();
        assert_eq!((dflt.timeout, dflt.netmask), (300, 32));
        one(
            &p("Some((timeout: 0))"),
            "services[0].persistence.timeout",
            "persistence timeout 0 s is out of range (1 to 2073600 s",
            "timeout: 0",
        );
        one(
            &p("Some((timeout: 2073601))"),
            "services[0].persistence.timeout",
            "out of range",
            "timeout: 2073601",
        );
        one(
            &p("Some((netmask: 33))"),
            "services[0].persistence.netmask",
            "persistence netmask /33 is out of range (a prefix length, 0 to 32)",
            "netmask: 33",
        );
    }

    #[test]
    fn config_service_on_all_ports() {
        let all = with("port: 80,", "port: 0, persistence: Some((netmask: 24)),");
        assert_eq!(problems(&all), vec![]);
        one(
            &all.replace(
                r#"(address: "198.18.0.12")"#,
                r#"(address: "198.18.0.12", port: Some(80))"#,
            ),
            "services[0].real_servers[1].port",
            "a service on all ports (port 0) keeps each packet's port: real server port 80 must \
             be left out (None)",
            "port: Some",
        );
        assert_eq!(
            problems(&all.replace(
                r#"(address: "198.18.0.12")"#,
                r#"(address: "198.18.0.12", port: Some(0), forward: Nat)"#,
            )),
            vec![]
        );
        one(
            &with(
                r#"(address: "198.18.0.12")"#,
                r#"(address: "198.18.0.12", port: Some(0), forward: Nat)"#,
            ),
            "services[0].real_servers[1].port",
            "real server port 0 is only for services on all ports",
            "port: Some",
        );
    }

    #[test]
    fn config_health_checks_and_fallback() {
        let t = |hc: &str| {
            with(
                "scheduler: Rr,",
                &format!("scheduler: Rr, health_check: Some({hc}),"),
            )
        };
        let good = t(r#"(check: Http(path: "/health", expect: Some("OK")), interval_ms: 500)"#);
        assert_eq!(problems(&good), vec![]);
        let cfg = parse(&good, "t.ron").unwrap();
        let hc = cfg.services[0].health_check.as_ref().unwrap();
        assert_eq!((hc.timeout_ms, hc.rise, hc.fall), (3000, 2, 3));
        assert_eq!(hc.on_failure, crate::config::OnFailure::Remove);
        assert!(matches!(&hc.check, CheckKind::Http { status: 200, .. }));
        one(
            &t("(check: Tcp, interval_ms: 50)"),
            "services[0].health_check.interval_ms",
            "interval_ms 50 is out of range",
            "interval_ms:",
        );
        one(
            &t("(check: Tcp, fall: 0)"),
            "services[0].health_check.fall",
            "fall 0 is out of range",
            "fall:",
        );
        one(
            &t(r#"(check: Http(path: "health"))"#),
            "services[0].health_check.check.path",
            "must start with /",
            "path:",
        );
        one(
            &t(r#"(check: Udp(send: ""))"#),
            "services[0].health_check.check.send",
            "non-empty datagram",
            "send:",
        );
        one(
            &t(r#"(check: Exec(command: " "))"#),
            "services[0].health_check.check.command",
            "the command is empty",
            "command:",
        );
        // A real server's own check is validated too.
        one(
            &with(
                r#"(address: "198.18.0.12")"#,
                r#"(address: "198.18.0.12", health_check: Some((check: Tcp, rise: 101)))"#,
            ),
            "services[0].real_servers[1].health_check.rise",
            "rise 101 is out of range",
            "rise:",
        );
        // A service on all ports: the check needs its own port.
        let all = with("port: 80,", "port: 0, persistence: Some(()),");
        let all = all.replacen(
            "scheduler: Rr,",
            "scheduler: Rr, health_check: Some((check: Tcp)),",
            1,
        );
        one(
            &all,
            "services[0].health_check.port",
            "a service on all ports (port 0) has no port to check",
            "health_check:",
        );
        assert_eq!(
            problems(&all.replace("(check: Tcp)", "(check: Tcp, port: Some(80))")),
            vec![]
        );
        // The fallback server: reachable, and not one of the real servers.
        let fb = |f: &str| {
            with(
                "scheduler: Rr,",
                &format!("scheduler: Rr, fallback: Some({f}),"),
            )
        };
        assert_eq!(problems(&fb(r#"(address: "198.18.0.50")"#)), vec![]);
        one(
            &fb(r#"(address: "198.18.0.11")"#),
            "services[0].fallback.address",
            "duplicate real server 198.18.0.11 in service 198.18.0.100:80/tcp, also at \
             services[0].real_servers[0]",
            "address: \"198.18.0.11\")),",
        );
        one(
            &fb(r#"(address: "198.19.0.50")"#),
            "services[0].fallback.address",
            "real server 198.19.0.50 is not on any port's subnet",
            "address: \"198.19",
        );
    }

    #[test]
    fn config_vrrp() {
        let k = with(
            r#""198.18.0.2/24")"#,
            r#""198.18.0.2/24", kernel: Some((iface: "lbd-lan0")))"#,
        );
        let t = |base: &str, x: &str| {
            base.replacen("services:", &format!("vrrp: Some({x}), services:"), 1)
        };
        assert_eq!(
            problems(&t(&k, r#"(port: "lan0", vrid: 51, priority: 150)"#)),
            vec![]
        );
        let c = parse(
            &t(&k, r#"(port: "lan0", vrid: 51, priority: 150)"#),
            "t.ron",
        )
        .unwrap();
        let x = c.vrrp.unwrap();
        assert_eq!(
            (x.advert_interval_ms, x.preempt, x.garp_count),
            (1000, true, 5)
        );
        one(
            &t(BASE, r#"(port: "lan0", vrid: 51, priority: 150)"#),
            "vrrp.port",
            "port lan0 has no kernel interface",
            "port: \"lan0\", vrid",
        );
        one(
            &t(&k, r#"(port: "wan9", vrid: 51, priority: 150)"#),
            "vrrp.port",
            "no port named \"wan9\"",
            "port: \"wan9\"",
        );
        one(
            &t(&k, r#"(port: "lan0", vrid: 0, priority: 150)"#),
            "vrrp.vrid",
            "vrid 0 is out of range",
            "vrid:",
        );
        one(
            &t(&k, r#"(port: "lan0", vrid: 1, priority: 255)"#),
            "vrrp.priority",
            "priority 255 is out of range",
            "priority:",
        );
        one(
            &t(
                &k,
                r#"(port: "lan0", vrid: 1, priority: 9, advert_interval_ms: 15)"#,
            ),
            "vrrp.advert_interval_ms",
            "must be a multiple of 10",
            "advert_interval_ms:",
        );
    }

    #[test]
    fn config_vrrp6_is_the_ipv6_instance() {
        let k = with(
            r#""198.18.0.2/24")"#,
            r#""198.18.0.2/24", kernel: Some((iface: "lbd-lan0")))"#,
        );
        let t = |base: &str, x: &str| base.replacen("services:", &format!("{x}, services:"), 1);
        let v4 = r#"vrrp: Some((port: "lan0", vrid: 51, priority: 150))"#;
        let v6 = r#"vrrp6: Some((port: "lan0", vrid: 51, priority: 150, unicast_peers: ["2001:db8::3"]))"#;
        // Both instances, each with its family's peers.
        let both = t(&k, &format!("{v4}, {v6}"));
        assert_eq!(problems(&both), vec![]);
        let c = parse(&both, "t.ron").unwrap();
        let x = c.vrrp6.unwrap();
        assert_eq!((x.vrid, x.version, x.advert_interval_ms), (51, 3, 1000));
        assert_eq!(
            x.unicast_peers,
            vec!["2001:db8::3".parse::<IpAddr>().unwrap()]
        );
        // The IPv4 VIPs are not the IPv6 instance's.
        one(
            &t(&k, v6),
            "vrrp6",
            "the IPv4 VIPs need their own VRRP instance",
            "vrrp6:",
        );
        // Version 3 only; IPv6 floating addresses and peers only.
        one(
            &t(
                &k,
                &format!(
                    r#"{v4}, vrrp6: Some((port: "lan0", vrid: 51, priority: 150, version: 2))"#
                ),
            ),
            "vrrp6.version",
            "VRRP over IPv6 is version 3 only",
            "version: 2",
        );
        one(
            &t(
                &k,
                &format!(
                    r#"{v4}, vrrp6: Some((port: "lan0", vrid: 51, priority: 150, addresses: ["198.18.0.1"]))"#
                ),
            ),
            "vrrp6.addresses[0]",
            "198.18.0.1 is an IPv4 address: it belongs in `vrrp.addresses`",
            "\"198.18.0.1\"",
        );
        // Floating IPv6 addresses: on a port's address6 subnet, not the
        // port's own, not link-local; IPv6 ones not in the IPv4 instance.
        let k6 = k.replacen(
            "kernel: Some",
            r#"address6: Some("2001:db8::2/64"), kernel: Some"#,
            1,
        );
        let gw = |a: &str| {
            t(
                &k6,
                &format!(
                    r#"{v4}, vrrp6: Some((port: "lan0", vrid: 51, priority: 150, addresses: ["{a}"]))"#
                ),
            )
        };
        let ok = gw("2001:db8::254");
        assert_eq!(problems(&ok), vec![]);
        assert_eq!(
            parse(&ok, "t.ron").unwrap().vrrp6.unwrap().addresses,
            vec!["2001:db8::254".parse::<IpAddr>().unwrap()]
        );
        one(
            &gw("2001:db8:9::1"),
            "vrrp6.addresses[0]",
            "address 2001:db8:9::1 is not on any port's address6 subnet",
            "\"2001:db8:9::1\"",
        );
        one(
            &gw("2001:db8::2"),
            "vrrp6.addresses[0]",
            "the director's own address on port lan0",
            "\"2001:db8::2\"",
        );
        one(
            &gw("fe80::1"),
            "vrrp6.addresses[0]",
            "address fe80::1 is link-local",
            "\"fe80::1\"",
        );
        one(
            &gw("ff02::1"),
            "vrrp6.addresses[0]",
            "is a multicast address",
            "\"ff02::1\"",
        );
        one(
            &t(
                &k6,
                r#"vrrp: Some((port: "lan0", vrid: 51, priority: 150, addresses: ["2001:db8::254"]))"#,
            ),
            "vrrp.addresses[0]",
            "2001:db8::254 is an IPv6 address: it belongs in `vrrp6.addresses`",
            "\"2001:db8::254\"",
        );
        one(
            &t(
                &k,
                &format!(
                    r#"{v4}, vrrp6: Some((port: "lan0", vrid: 51, priority: 150, unicast_peers: ["198.18.0.3"]))"#
                ),
            ),
            "vrrp6.unicast_peers[0]",
            "198.18.0.3 is an IPv4 address",
            "\"198.18.0.3\"",
        );
        one(
            &t(
                &k,
                r#"vrrp: Some((port: "lan0", vrid: 51, priority: 150, unicast_peers: ["2001:db8::3"]))"#,
            ),
            "vrrp.unicast_peers[0]",
            "2001:db8::3 is an IPv6 address",
            "\"2001:db8::3\"",
        );
        // The shared checks name the instance's field.
        one(
            &t(
                &k,
                &format!(r#"{v4}, vrrp6: Some((port: "lan9", vrid: 0, priority: 150))"#),
            )
            .replace("vrid: 0", "vrid: 7"),
            "vrrp6.port",
            "no port named \"lan9\"",
            "port: \"lan9\"",
        );
        one(
            &t(
                &k,
                &format!(r#"{v4}, vrrp6: Some((port: "lan0", vrid: 7, priority: 255))"#),
            ),
            "vrrp6.priority",
            "priority 255 is out of range",
            "priority: 255",
        );
        // An IPv6 service with only the IPv4 instance: its VIP needs vrrp6
        // (among the other problems IPv6 services may still have).
        let svc6 = t(&k, v4).replace(r#"vip: "198.18.0.100","#, r#"vip: "2001:db8::100","#);
        has(
            &svc6,
            "vrrp",
            "the IPv6 VIPs need their own VRRP instance",
            "vrrp:",
        );
    }

    #[test]
    fn config_bgp() {
        let k = with(
            r#""198.18.0.2/24")"#,
            r#""198.18.0.2/24", kernel: Some((iface: "lbd-lan0")))"#,
        );
        let t = |base: &str, x: &str| {
            base.replacen("services:", &format!("bgp: Some({x}), services:"), 1)
        };
        let good = t(
            &k,
            r#"(port: "lan0", table: 100, birdc: Some("/run/bird/bird.ctl"))"#,
        );
        assert_eq!(problems(&good), vec![]);
        let x = parse(&good, "t.ron").unwrap().bgp.unwrap();
        assert_eq!(
            (x.linger_ms, x.drain_quiet_ms, x.announce_without_servers),
            (2000, 1000, false)
        );
        one(
            &t(BASE, r#"(port: "lan0", table: 100)"#),
            "bgp.port",
            "port lan0 has no kernel interface",
            "port: \"lan0\", table",
        );
        one(
            &t(&k, r#"(port: "wan9", table: 100)"#),
            "bgp.port",
            "no port named \"wan9\"",
            "port: \"wan9\"",
        );
        one(
            &t(&k, r#"(port: "lan0", table: 254)"#),
            "bgp.table",
            "table 254 is reserved",
            "table:",
        );
        one(
            &t(&k, r#"(port: "lan0", table: 7, drain_quiet_ms: 5)"#),
            "bgp.drain_quiet_ms",
            "drain_quiet_ms 5 is out of range",
            "drain_quiet_ms:",
        );
        one(
            &t(&k, r#"(port: "lan0", table: 7, linger_ms: 700000)"#),
            "bgp.linger_ms",
            "linger_ms 700000 is out of range",
            "linger_ms:",
        );
        one(
            &t(&k, r#"(port: "lan0", table: 7, birdc: Some("bird.ctl"))"#),
            "bgp.birdc",
            "must be an absolute path",
            "birdc:",
        );
    }

    #[test]
    fn config_port_kernel_path() {
        let t = |k: &str| {
            with(
                r#""198.18.0.2/24")"#,
                &format!("\"198.18.0.2/24\", kernel: Some({k}))"),
            )
        };
        assert_eq!(problems(&t(r#"(iface: "lbd-lan0")"#)), vec![]);
        assert_eq!(
            parse(&t(r#"(iface: "lbd-lan0")"#), "t.ron").unwrap().ports[0]
                .kernel
                .as_ref()
                .unwrap()
                .rate_pps,
            20_000
        );
        one(
            &t(r#"(iface: "a-name-far-too-long")"#),
            "ports[0].kernel.iface",
            "interface name \"a-name-far-too-long\" is not usable",
            "iface:",
        );
        one(
            &t(r#"(iface: "bad/name")"#),
            "ports[0].kernel.iface",
            "is not usable",
            "iface:",
        );
        one(
            &t(r#"(iface: "k0", rate_pps: 0)"#),
            "ports[0].kernel.rate_pps",
            "rate_pps is 0",
            "rate_pps:",
        );
    }

    #[test]
    fn config_port_mtu() {
        let t = |mtu: u32| {
            with(
                r#""198.18.0.2/24")"#,
                &format!("\"198.18.0.2/24\", mtu: {mtu})"),
            )
        };
        one(
            &t(575),
            "ports[0].mtu",
            "mtu 575 is out of range (576 to 9000)",
            "mtu:",
        );
        one(&t(9001), "ports[0].mtu", "mtu 9001 is out of range", "mtu:");
        assert_eq!(problems(&t(576)), vec![]);
        assert_eq!(problems(&t(9000)), vec![]);
        assert_eq!(parse(BASE, "t.ron").unwrap().ports[0].mtu, 1500);
    }

    #[test]
    fn config_tunnel_real_servers() {
        let tun = |rs: &str| with(r#"(address: "198.18.0.12")"#, rs);
        assert_eq!(
            problems(&tun(r#"(address: "198.18.0.12", forward: Tunnel)"#)),
            vec![]
        );
        one(
            &tun(r#"(address: "10.1.1.1", forward: Tunnel)"#),
            "services[0].real_servers[1].address",
            "real server 10.1.1.1 is not on any port's subnet (lan0 198.18.0.2/24); tunnel real \
             servers must be on a directly connected segment or behind a gateway (`routes`)",
            r#"address: "10.1.1.1""#,
        );
        one(
            &tun(r#"(address: "198.18.0.12", port: Some(8080), forward: Tunnel)"#),
            "services[0].real_servers[1].port",
            "tunnel mode cannot change ports: real server port 8080 differs from service port 80",
            "port: Some",
        );
        one(
            &tun(r#"(address: "198.18.0.100", forward: Tunnel)"#),
            "services[0].real_servers[1].address",
            "real server 198.18.0.100 is the service's own VIP",
            r#"address: "198.18.0.100""#,
        );
    }

    #[test]
    fn config_tunnel_source_pool() {
        let t = |pool: &str| {
            with(
                "    services:",
                &format!("    tunnel: (source_pool: Some(\"{pool}\")),\n    services:"),
            )
        };
        assert_eq!(problems(&t("198.18.0.192/27")), vec![]);
        assert_eq!(problems(&t("198.18.0.2/32")), vec![]);
        assert_eq!(
            parse(&t("198.18.0.192/27"), "t.ron")
                .unwrap()
                .tunnel
                .source_pool,
            Some("198.18.0.192/27".parse().unwrap())
        );
        for (pool, msg) in [
            (
                "198.18.0.193/27",
                "source pool 198.18.0.193/27 is not a network address; write 198.18.0.192/27",
            ),
            (
                "10.0.0.0/28",
                "source pool 10.0.0.0/28 is not inside any port's subnet (lan0 198.18.0.2/24); \
                 outer source addresses must be on the real servers' segment",
            ),
            (
                "198.18.0.0/23",
                "source pool 198.18.0.0/23 is not inside any port's subnet",
            ),
            (
                "198.18.0.240/28",
                "source pool 198.18.0.240/28 contains the network or broadcast address of port \
                 lan0's subnet 198.18.0.2/24",
            ),
            (
                "198.18.0.96/28",
                "source pool 198.18.0.96/28 contains VIP 198.18.0.100",
            ),
            (
                "198.18.0.8/30",
                "source pool 198.18.0.8/30 contains real server 198.18.0.11",
            ),
        ] {
            one(&t(pool), "tunnel.source_pool", msg, "source_pool");
        }
    }

    /// The file format takes IPv6 wherever an address goes; validation
    /// takes what the dataplane forwards over IPv6 (services, DR real
    /// servers, port addresses) and refuses the rest at its field.
    mod ipv6 {
        use super::*;
        use std::net::IpAddr;

        /// BASE with an IPv6 address on the port and the service over
        /// IPv6, its real servers on that subnet (DR).
        fn v6_base() -> String {
            with(
                r#"address: "198.18.0.2/24")"#,
                r#"address: "198.18.0.2/24", address6: Some("2001:db8::2/64"))"#,
            )
            .replacen(r#"vip: "198.18.0.100""#, r#"vip: "2001:db8::100""#, 1)
            .replacen(r#""198.18.0.11""#, r#""2001:db8::11""#, 1)
            .replacen(r#""198.18.0.12""#, r#""2001:db8::12""#, 1)
        }

        #[test]
        fn config_ipv6_dr_service_is_valid() {
            let text = v6_base();
            assert_eq!(problems(&text), vec![]);
            let cfg: Config = ron::from_str(&text).unwrap();
            assert_eq!(
                cfg.services[0].vip,
                "2001:db8::100".parse::<IpAddr>().unwrap()
            );
            assert_eq!(cfg.services[0].name(), "[2001:db8::100]:80/tcp");
        }

        #[test]
        fn config_ipv6_real_server_must_be_on_an_ipv6_subnet() {
            one(
                &v6_base().replacen(r#""2001:db8::12""#, r#""2001:db9::12""#, 1),
                "services[0].real_servers[1].address",
                "real server 2001:db9::12 is not on any port's subnet (lan0 198.18.0.2/24, \
                 lan0 2001:db8::2/64)",
                r#"address: "2001:db9::12""#,
            );
        }

        #[test]
        fn config_ipv6_tunnel_and_nat_real_servers_are_valid() {
            let with_method = |method: &str| {
                v6_base().replacen(
                    r#"(address: "2001:db8::12")"#,
                    &format!(r#"(address: "2001:db8::12", forward: {method})"#),
                    1,
                )
            };
            assert_eq!(problems(&with_method("Tunnel")), vec![]);
            assert_eq!(problems(&with_method("Nat")), vec![]);
            // NAT66 with port mapping, as NAT44.
            let mapped = v6_base().replacen(
                r#"(address: "2001:db8::12")"#,
                r#"(address: "2001:db8::12", port: Some(8080), forward: Nat)"#,
                1,
            );
            assert_eq!(problems(&mapped), vec![]);
        }

        #[test]
        fn config_nat_real_servers_keep_the_vip_family() {
            // An IPv6 VIP with an IPv4 NAT real server: no NAT46/NAT64.
            one(
                &v6_base().replacen(
                    r#"(address: "2001:db8::12")"#,
                    r#"(address: "198.18.0.12", forward: Nat)"#,
                    1,
                ),
                "services[0].real_servers[1].address",
                "real server 198.18.0.12 is not of the VIP's address family (2001:db8::100); NAT \
                 translates addresses within one family (NAT44 or NAT66), not between IPv4 and \
                 IPv6",
                r#"address: "198.18.0.12""#,
            );
        }

        #[test]
        fn config_real_servers_keep_the_vip_family() {
            // IPv6 VIP, IPv4 real server; and the other way round.
            one(
                &with(r#"vip: "198.18.0.100""#, r#"vip: "2001:db8::100""#)
                    .replacen(
                        r#"address: "198.18.0.2/24")"#,
                        r#"address: "198.18.0.2/24", address6: Some("2001:db8::2/64"))"#,
                        1,
                    )
                    .replacen(r#""198.18.0.11""#, r#""2001:db8::11""#, 1),
                "services[0].real_servers[1].address",
                "is not of the VIP's address family",
                r#"address: "198.18.0.12""#,
            );
            one(
                &with(
                    r#"address: "198.18.0.2/24")"#,
                    r#"address: "198.18.0.2/24", address6: Some("2001:db8::2/64"))"#,
                )
                .replacen(r#""198.18.0.12""#, r#""2001:db8::12""#, 1),
                "services[0].real_servers[1].address",
                "is not of the VIP's address family",
                r#"address: "2001:db8::12""#,
            );
            // The fallback server too.
            one(
                &v6_base().replacen(
                    "            real_servers: [",
                    "            fallback: Some((address: \"198.18.0.50\")),\n            real_servers: [",
                    1,
                ),
                "services[0].fallback.address",
                "is not of the VIP's address family",
                r#"address: "198.18.0.50""#,
            );
        }

        #[test]
        fn config_ipv6_port_address_is_checked() {
            let text = with(
                r#"address: "198.18.0.2/24")"#,
                r#"address: "198.18.0.2/24", address6: Some("2001:db8::2/64"))"#,
            );
            assert_eq!(problems(&text), vec![]);
            for (bad, why) in [
                ("ff02::2/64", "is a multicast address"),
                ("fe80::2/64", "is link-local"),
                ("::/64", "is the unspecified address"),
            ] {
                one(
                    &text.replace("2001:db8::2/64", bad),
                    "ports[0].address6",
                    why,
                    "address6:",
                );
            }
            let bad = with(
                r#"address: "198.18.0.2/24")"#,
                r#"address: "198.18.0.2/24", address6: Some("2001:db8::2/129"))"#,
            );
            assert!(parse(&bad, "t.ron")
                .unwrap_err()
                .to_string()
                .contains("prefix `129` is not a number from 0 to 128"));
        }

        /// `v6_base` with its service made group mark 3, whose `fwmarks`
        /// entries are `marks`.
        fn v6_group(marks: &str) -> String {
            v6_base()
                .replacen(
                    "    services: [",
                    &format!("    fwmarks: [{marks}],\n    services: ["),
                    1,
                )
                .replacen(
                    r#"vip: "2001:db8::100",
            port: 80,"#,
                    "fwmark: Some(3), persistence: Some((timeout: 300, prefix: Some(64))),",
                    1,
                )
        }

        #[test]
        fn config_ipv6_service_group_is_valid() {
            let text = v6_group(
                r#"(mark: 3, match: [(vip: "2001:db8::100", ports: 80), (vip: "2001:db8::101", ports: 443)])"#,
            );
            assert_eq!(problems(&text), vec![]);
            let cfg: Config = ron::from_str(&text).unwrap();
            let vips = cfg.service_vips(&cfg.services[0]);
            assert_eq!(vips.len(), 2);
            assert!(vips.iter().all(IpAddr::is_ipv6));
        }

        #[test]
        fn config_fwmark_mixing_families_is_refused() {
            let text = v6_group(
                r#"(mark: 3, match: [(vip: "2001:db8::100", ports: 80), (vip: "198.18.0.100", ports: 443)])"#,
            );
            has(
                &text,
                "fwmarks[0].match[1].vip",
                "mark 3 mixes IPv4 and IPv6 VIPs (2001:db8::100 and 198.18.0.100); a service \
                 group is one address family",
                r#"vip: "198.18.0.100""#,
            );
        }

        #[test]
        fn config_ipv6_group_real_server_keeps_the_family() {
            let text = v6_group(r#"(mark: 3, match: [(vip: "2001:db8::100", ports: 80)])"#)
                .replacen(r#""2001:db8::12""#, r#""198.18.0.12""#, 1);
            one(
                &text,
                "services[0].real_servers[1].address",
                "real server 198.18.0.12 is not of the address family of fwmark 3's VIPs \
                 (2001:db8::100)",
                r#"address: "198.18.0.12""#,
            );
        }

        #[test]
        fn config_persistence_prefix_is_for_ipv6_services() {
            // An IPv4 service keeps `netmask`; `prefix` is refused there.
            let text = with(
                "scheduler: Rr,",
                "scheduler: Rr, persistence: Some((timeout: 60, prefix: Some(64))),",
            );
            one(
                &text,
                "services[0].persistence.prefix",
                "is for IPv6 clients",
                "prefix:",
            );
            let text = with(
                "scheduler: Rr,",
                "scheduler: Rr, persistence: Some((timeout: 60, netmask: 24)),",
            );
            assert_eq!(problems(&text), vec![]);
            // On an IPv6 service the prefix parses; out of range is
            // refused.
            let v6 = v6_base().replacen(
                "scheduler: Rr,",
                "scheduler: Rr, persistence: Some((timeout: 60, prefix: Some(129))),",
                1,
            );
            has(
                &v6,
                "services[0].persistence.prefix",
                "out of range (0 to 128)",
                "prefix:",
            );
            let cfg: Config = ron::from_str(&v6.replace("129", "64")).unwrap();
            let p = cfg.services[0].persistence.unwrap();
            assert_eq!(p.client_prefix(cfg.services[0].vip), 64);
            assert_eq!(p.client_prefix("198.18.0.100".parse().unwrap()), 32);
        }

        #[test]
        fn config_ipv4_files_write_no_ipv6_fields() {
            let text = with(
                "scheduler: Rr,",
                "scheduler: Rr, persistence: Some((timeout: 60, netmask: 24)),",
            );
            let cfg = parse(&text, "t.ron").unwrap();
            let out = crate::config::to_ron_string(&cfg);
            assert!(out.contains("netmask: 24"), "{out}");
            assert!(!out.contains("address6"), "{out}");
            assert!(
                !out.lines().any(|l| l.trim_start().starts_with("prefix:")),
                "{out}"
            );
        }
    }
}
