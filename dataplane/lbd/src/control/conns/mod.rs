//! Listing connections (`lbctl conns`, `-Lnc`) without stopping a worker.
//!
//! Both address families, every table:
//!
//! - each worker's own tables — IPv4 connections, IPv6 connections, IPv6
//!   persistence templates — scanned by the worker itself a slice at a time
//!   (`dump.rs`);
//! - the tables the workers share — the NAT table with its NAT
//!   connections and IPv4 templates, and the NAT66 table — read here
//!   directly (`shared.rs`, generic over the key).
//!
//! Filters and listed entries are family-neutral (`filter.rs`): an IPv6
//! client, VIP or real server in a filter selects IPv6 entries the way an
//! IPv4 one selects IPv4 entries.

mod dump;
mod filter;
mod shared;

use std::net::IpAddr;
use std::sync::Mutex;

use lbcore::api::{ApiError, ConnFilter, ConnInfo, ConnList, ErrorKind};
use lbcore::config::Protocol;
use lbcore::conntrack::ConnState;

pub use dump::{DumpJob, DumpSlot};
pub use filter::{Found, ListKey, Listed, RawFilter};
pub use shared::list_shared;

/// The port a connection reaches its real server on: the server's own, or
/// for a service on all ports (real-server port 0) the connection's.
fn real_port(real: Option<(IpAddr, u16)>, vport: u16) -> u16 {
    real.map(|r| r.1).filter(|&p| p != 0).unwrap_or(vport)
}

/// Most entries one listing returns (keeps a response well inside the
/// protocol's frame limit).
pub const MAX_LIST: u32 = 20_000;

/// One listing at a time: jobs share the workers' mailboxes.
static LISTING: Mutex<()> = Mutex::new(());

/// A state named in a filter (case-insensitive).
fn state_named(name: &str) -> Result<ConnState, ApiError> {
    ConnState::ALL
        .into_iter()
        .find(|s| s.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<_> = ConnState::ALL.iter().map(|s| s.name()).collect();
            ApiError::new(
                ErrorKind::BadRequest,
                format!("unknown state `{name}`; states are {}", names.join(", ")),
            )
        })
}

/// Real-server id → (address, port), from every service.
pub type Reals = std::collections::HashMap<u32, (IpAddr, u16)>;

/// `filter` compiled against the real servers `reals`.
pub fn compile(filter: &ConnFilter, reals: &Reals) -> Result<RawFilter, ApiError> {
    Ok(RawFilter {
        proto: filter.protocol.map(|p| p.ip_proto()),
        client: filter.client,
        vip: filter.vip,
        vport: filter.vport,
        // The ids of the servers at that address (one may sit in several
        // services), of either family.
        rs: filter.real.map(|ip| {
            reals
                .iter()
                .filter(|(_, (a, _))| *a == ip)
                .map(|(id, _)| *id)
                .collect()
        }),
        state: filter.state.as_deref().map(state_named).transpose()?,
    })
}

/// A listed entry as the API answers it.
pub fn conn_info(e: &Listed, reals: &Reals) -> ConnInfo {
    let real = reals.get(&e.rs).copied();
    ConnInfo {
        protocol: if e.proto == 17 {
            Protocol::Udp
        } else {
            Protocol::Tcp
        },
        client: e.client,
        client_port: e.client_port,
        vip: e.vip,
        vport: e.vport,
        real: real.map(|r| r.0),
        real_port: real_port(real, e.vport),
        state: ConnState::from_u8(e.state).name().to_string(),
        expires_ms: e.left_ms,
        worker: e.worker,
        template: e.template,
    }
}

/// The answer: the shared tables' entries first, then each worker's in
/// worker order, at most `limit`; `total` is the live entries of all
/// tables, whatever the filter.
pub fn assemble(
    shared: Found,
    workers: Vec<Found>,
    reals: &Reals,
    limit: usize,
    total: u64,
) -> ConnList {
    let mut matched = 0u64;
    let mut conns: Vec<ConnInfo> = Vec::new();
    for f in std::iter::once(shared).chain(workers) {
        matched += f.matched;
        let room = limit.saturating_sub(conns.len());
        conns.extend(f.entries.iter().take(room).map(|e| conn_info(e, reals)));
    }
    ConnList {
        truncated: matched > conns.len() as u64,
        conns,
        total,
    }
}

/// Control side: list connections from every worker's tables, through the
/// workers' mailboxes `dumps` (in worker order), and from the shared
/// tables; `conns_live` is the workers' own connection count (IPv4 and
/// IPv6), for the total.
pub fn list(
    dataplane: &crate::dataplane::Dataplane,
    dumps: &[&DumpSlot],
    conns_live: u64,
    filter: &ConnFilter,
    limit: u32,
) -> Result<ConnList, ApiError> {
    use std::time::{Duration, Instant};

    let _one = LISTING.lock().unwrap_or_else(|e| e.into_inner());
    let snap = dataplane.current();
    let reals: Reals = snap
        .services
        .iter()
        .flat_map(|s| s.reals.iter().map(|r| (r.id, (r.addr, r.port))))
        .collect();
    let raw = compile(filter, &reals)?;
    let limit = limit.min(MAX_LIST) as usize;
    for (i, d) in dumps.iter().enumerate() {
        d.post(DumpJob::new(raw.clone(), limit, i as u16));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut jobs: Vec<Option<DumpJob>> = (0..dumps.len()).map(|_| None).collect();
    while jobs.iter().any(|j| j.is_none()) {
        for (i, d) in dumps.iter().enumerate() {
            if jobs[i].is_none() {
                jobs[i] = d.take_done();
            }
        }
        if Instant::now() > deadline || dataplane.stopping() {
            for d in dumps {
                d.cancel();
            }
            return Err(ApiError::new(
                ErrorKind::Internal,
                "a worker did not answer the connection listing within 10 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // The shared tables, read from here: IPv4 NAT (with the IPv4
    // templates), then NAT66.
    let now = dataplane.clock.now();
    let mut shared = Found::new(limit);
    let shared_total = list_shared(&dataplane.nat, &raw, now, &mut shared)
        + list_shared(&dataplane.nat6, &raw, now, &mut shared);
    let workers: Vec<Found> = jobs.into_iter().flatten().map(|j| j.found).collect();
    // The workers' IPv6 templates are not in their connection count.
    let templates6: u64 = workers.iter().map(|f| f.templates).sum();
    let total = conns_live + shared_total + templates6;
    Ok(assemble(shared, workers, &reals, limit, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbcore::conntrack::{ConnKey, ConnKey6};

    fn reals() -> Reals {
        [
            (1, ("198.18.0.11".parse().unwrap(), 0)),
            (7, ("2001:db8::11".parse().unwrap(), 8443)),
            (8, ("2001:db8::12".parse().unwrap(), 0)),
            (9, ("2001:db8::11".parse().unwrap(), 80)),
        ]
        .into_iter()
        .collect()
    }

    fn key6(client: &str, port: u16) -> ConnKey6 {
        ConnKey6 {
            proto: 17,
            client_ip: u128::from(client.parse::<std::net::Ipv6Addr>().unwrap()),
            client_port: port,
            vip: u128::from("2001:db8::100".parse::<std::net::Ipv6Addr>().unwrap()),
            vport: 443,
        }
    }

    #[test]
    fn an_ipv6_real_server_filter_selects_its_ids_in_every_service() {
        let f = ConnFilter {
            real: Some("2001:db8::11".parse().unwrap()),
            client: Some("2001:db8::1".parse().unwrap()),
            state: Some("established".into()),
            ..Default::default()
        };
        let raw = compile(&f, &reals()).unwrap();
        let mut ids = raw.rs.clone().unwrap();
        ids.sort_unstable();
        assert_eq!(ids, vec![7, 9]);
        assert_eq!(raw.client, f.client);
        assert_eq!(raw.state, Some(ConnState::Established));
        let bad = ConnFilter {
            state: Some("SLEEPY".into()),
            ..Default::default()
        };
        let e = compile(&bad, &reals()).unwrap_err();
        assert!(e.message.contains("unknown state `SLEEPY`"), "{e:?}");
    }

    #[test]
    fn ipv6_entries_become_conn_infos_with_their_real_server() {
        let est = ConnState::Established as u8;
        let mut shared = Found::new(10);
        shared.push(Listed::of(
            &key6("2001:db8::1", 5000),
            7,
            est,
            1000,
            u16::MAX,
        ));
        let mut w0 = Found::new(10);
        let k4 = ConnKey {
            proto: 6,
            client_ip: 0xc612_0001,
            client_port: 40000,
            vip: 0xc612_0064,
            vport: 80,
        };
        w0.push(Listed::of(&k4, 1, est, 2000, 0));
        w0.push(Listed::of(&key6("2001:db8::2", 5001), 8, est, 3000, 0));
        let mut w1 = Found::new(10);
        w1.push(Listed::of(&key6("2001:db8::", 0), 8, 0, 4000, 1).template());
        let list = assemble(shared, vec![w0, w1], &reals(), 10, 99);
        assert_eq!(
            (list.total, list.truncated, list.conns.len()),
            (99, false, 4)
        );
        let c = &list.conns[0];
        assert_eq!(c.protocol, Protocol::Udp);
        assert_eq!(c.client, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(c.vip, "2001:db8::100".parse::<IpAddr>().unwrap());
        assert_eq!((c.client_port, c.vport), (5000, 443));
        assert_eq!(c.real, Some("2001:db8::11".parse().unwrap()));
        assert_eq!(
            (c.real_port, c.worker, c.state.as_str()),
            (8443, u16::MAX, "ESTABLISHED")
        );
        assert_eq!(
            list.conns[1].client,
            "198.18.0.1".parse::<IpAddr>().unwrap()
        );
        // A real server on port 0 (a service on all ports): the VIP's port.
        assert_eq!(list.conns[2].real_port, 443);
        let t = &list.conns[3];
        assert!(t.template);
        assert_eq!((t.state.as_str(), t.client_port, t.worker), ("NONE", 0, 1));
        // Cut at the limit: the first in order, and said so.
        let mut a = Found::new(10);
        for p in 0..3 {
            a.push(Listed::of(&key6("2001:db8::1", p), 7, est, 1, 0));
        }
        let cut = assemble(Found::new(10), vec![a], &reals(), 2, 3);
        assert!(cut.truncated);
        assert_eq!(
            cut.conns.iter().map(|c| c.client_port).collect::<Vec<_>>(),
            vec![0, 1]
        );
    }
}
