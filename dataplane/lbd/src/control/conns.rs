//! Listing connections (`lbctl conns`) without stopping a worker.
//!
//! Each worker owns its table, so only the worker may read it. The control
//! side posts a [`DumpJob`] in the worker's [`DumpSlot`]; the worker, once
//! per poll, scans a slice of its table ([`SLICE_BUCKETS`] buckets) into the
//! job, and marks it done at the end. A table of millions of entries is thus
//! listed in many small steps between bursts, never in one long stall.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use lbcore::conntrack::keyspace::{EntryFlags, EntryKind};
use lbcore::conntrack::{Conn, ConnState, ConnTable, Tick};

/// Buckets scanned per worker poll while a listing is in progress.
pub const SLICE_BUCKETS: usize = 2048;

/// What to match, already compiled to the table's representation.
#[derive(Debug, Clone, Default)]
pub struct RawFilter {
    pub proto: Option<u8>,
    pub client: Option<u32>,
    pub vip: Option<u32>,
    pub vport: Option<u16>,
    /// Real-server ids to match (a `real` filter may name a server that sits
    /// in several services).
    pub rs: Option<Vec<u32>>,
    pub state: Option<ConnState>,
}

impl RawFilter {
    fn matches(&self, c: &Conn) -> bool {
        let k = c.key();
        self.proto.is_none_or(|p| p == k.proto)
            && self.client.is_none_or(|a| a == k.client_ip)
            && self.vip.is_none_or(|a| a == k.vip)
            && self.vport.is_none_or(|p| p == k.vport)
            && self.rs.as_ref().is_none_or(|ids| ids.contains(&c.rs))
            && self.state.is_none_or(|s| s as u8 == c.state)
    }
}

/// One listing request for one worker.
#[derive(Debug)]
pub struct DumpJob {
    pub filter: RawFilter,
    pub limit: usize,
    /// Matching entries, with their remaining lifetime in ms.
    pub found: Vec<(Conn, u32)>,
    /// All matches, including those beyond `limit`.
    pub matched: u64,
    cursor: usize,
    pub done: bool,
}

impl DumpJob {
    pub fn new(filter: RawFilter, limit: usize) -> DumpJob {
        DumpJob {
            filter,
            limit,
            found: Vec::new(),
            matched: 0,
            cursor: 0,
            done: false,
        }
    }

    /// Scan the next slice of `table`.
    pub fn step(&mut self, table: &ConnTable, now: Tick) {
        let next = table.scan_buckets(self.cursor, SLICE_BUCKETS, |c| {
            if c.is_expired(now) || !self.filter.matches(c) {
                return;
            }
            self.matched += 1;
            if self.found.len() < self.limit {
                self.found.push((*c, c.expires.wrapping_sub(now)));
            }
        });
        match next {
            Some(n) => self.cursor = n,
            None => self.done = true,
        }
    }
}

/// A worker's mailbox for listing jobs.
#[derive(Debug, Default)]
pub struct DumpSlot {
    /// Set while a job waits or runs: the worker's only per-poll check is
    /// this one relaxed load.
    pub pending: AtomicBool,
    pub job: Mutex<Option<DumpJob>>,
}

impl DumpSlot {
    /// Worker side: advance the job one slice, if there is one.
    #[inline]
    pub fn serve(&self, table: &ConnTable, now: Tick) {
        if !self.pending.load(Ordering::Relaxed) {
            return;
        }
        // Never block the worker: the control side holds the lock only to
        // post or collect a job.
        let Ok(mut g) = self.job.try_lock() else {
            return;
        };
        if let Some(job) = g.as_mut() {
            if !job.done {
                job.step(table, now);
            }
            if job.done {
                self.pending.store(false, Ordering::Release);
            }
        }
    }

    /// Control side: post a job.
    pub fn post(&self, job: DumpJob) {
        *self.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
        self.pending.store(true, Ordering::Release);
    }

    /// Control side: take the finished job, if it is finished.
    pub fn take_done(&self) -> Option<DumpJob> {
        let mut g = self.job.lock().unwrap_or_else(|e| e.into_inner());
        if g.as_ref().is_some_and(|j| j.done) {
            g.take()
        } else {
            None
        }
    }

    /// Control side: give up on a job (the worker is stuck or stopping).
    pub fn cancel(&self) {
        self.pending.store(false, Ordering::Release);
        *self.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The port a connection reaches its real server on: the server's own, or
/// for a service on all ports (real-server port 0) the connection's.
fn real_port(real: Option<(std::net::Ipv4Addr, u16)>, vport: u16) -> u16 {
    real.map(|r| r.1).filter(|&p| p != 0).unwrap_or(vport)
}

/// Most entries one listing returns (keeps a response well inside the
/// protocol's frame limit).
pub const MAX_LIST: u32 = 20_000;

/// One listing at a time: jobs share the workers' mailboxes.
static LISTING: Mutex<()> = Mutex::new(());

/// Control side: list connections from every worker's table, through the
/// workers' mailboxes `dumps` (in worker order); `conns_live` is the
/// workers' own connection count, for the total.
pub fn list(
    dataplane: &crate::dataplane::Dataplane,
    dumps: &[&DumpSlot],
    conns_live: u64,
    filter: &lbcore::api::ConnFilter,
    limit: u32,
) -> Result<lbcore::api::ConnList, lbcore::api::ApiError> {
    use lbcore::api::{ApiError, ConnInfo, ConnList, ErrorKind};
    use std::time::{Duration, Instant};

    let _one = LISTING.lock().unwrap_or_else(|e| e.into_inner());
    let snap = dataplane.current();
    let state = match &filter.state {
        None => None,
        Some(name) => Some(
            ConnState::ALL
                .into_iter()
                .find(|s| s.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let names: Vec<_> = ConnState::ALL.iter().map(|s| s.name()).collect();
                    ApiError::new(
                        ErrorKind::BadRequest,
                        format!("unknown state `{name}`; states are {}", names.join(", ")),
                    )
                })?,
        ),
    };
    // Real-server id → (address, port), and the ids a `real` filter selects.
    let mut reals = std::collections::HashMap::new();
    for s in &snap.services {
        for r in &s.reals {
            reals.insert(r.id, (r.addr, r.port));
        }
    }
    let mut rs_ids = filter.real.map(|ip| {
        reals
            .iter()
            .filter(|(_, (a, _))| IpAddr::V4(*a) == ip)
            .map(|(id, _)| *id)
            .collect::<Vec<u32>>()
    });
    // The tables hold IPv4 connections only: an IPv6 client or VIP in the
    // filter matches none (no real server is selected).
    let v4 = |a: Option<IpAddr>| match a {
        Some(IpAddr::V4(a)) => Some(u32::from(a)),
        _ => None,
    };
    if [filter.client, filter.vip]
        .iter()
        .any(|a| a.is_some_and(|a| a.is_ipv6()))
    {
        rs_ids = Some(Vec::new());
    }
    let raw = RawFilter {
        proto: filter.protocol.map(|p| p.ip_proto()),
        client: v4(filter.client),
        vip: v4(filter.vip),
        vport: filter.vport,
        rs: rs_ids,
        state,
    };
    let limit = limit.min(MAX_LIST) as usize;
    for d in dumps {
        d.post(DumpJob::new(raw.clone(), limit));
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
    let mut out = Vec::new();
    let mut matched = 0u64;
    // NAT connections and persistence templates: the shared table can be
    // read from here directly. Templates are listed like `ipvsadm -Lnc`
    // does (state NONE, client port 0), marked `template`.
    let now = dataplane.clock.now();
    let mut templates = 0u64;
    let mut at = Some(0);
    while let Some(start) = at {
        at = dataplane.nat.scan(start, 4096, |e| {
            // Reply entries duplicate their request; synced entries are the
            // peer director's, waiting to be adopted after a failover.
            if e.flags.intersects(EntryFlags::REPLY | EntryFlags::SYNCED) || e.is_expired(now) {
                return;
            }
            let template = e.flags.contains(EntryFlags::TEMPLATE);
            if template {
                templates += 1;
            }
            let k = &e.key;
            let proto = EntryKind::protocol(k);
            let ok = raw.proto.is_none_or(|p| p == proto)
                && raw.client.is_none_or(|a| a == k.client_ip)
                && raw.vip.is_none_or(|a| a == k.vip)
                && raw.vport.is_none_or(|p| p == k.vport)
                && raw.rs.as_ref().is_none_or(|ids| ids.contains(&e.rs))
                && raw.state.is_none_or(|s| s as u8 == e.state);
            if !ok {
                return;
            }
            matched += 1;
            if out.len() < limit {
                let real = reals.get(&e.rs).copied();
                out.push(ConnInfo {
                    protocol: if proto == 17 {
                        lbcore::config::Protocol::Udp
                    } else {
                        lbcore::config::Protocol::Tcp
                    },
                    client: Ipv4Addr::from(k.client_ip).into(),
                    client_port: k.client_port,
                    vip: Ipv4Addr::from(k.vip).into(),
                    vport: k.vport,
                    real: real.map(|r| r.0.into()),
                    real_port: real_port(real, k.vport),
                    state: ConnState::from_u8(e.state).name().to_string(),
                    expires_ms: e.expires.wrapping_sub(now),
                    worker: u16::MAX,
                    template,
                });
            }
        });
    }
    for (wi, job) in jobs.into_iter().flatten().enumerate() {
        matched += job.matched;
        for (c, left) in job.found {
            if out.len() >= limit {
                break;
            }
            let k = c.key();
            let real = reals.get(&c.rs).copied();
            out.push(ConnInfo {
                protocol: if k.proto == 17 {
                    lbcore::config::Protocol::Udp
                } else {
                    lbcore::config::Protocol::Tcp
                },
                client: Ipv4Addr::from(k.client_ip).into(),
                client_port: k.client_port,
                vip: Ipv4Addr::from(k.vip).into(),
                vport: k.vport,
                real: real.map(|r| r.0.into()),
                real_port: real_port(real, k.vport),
                state: ConnState::from_u8(c.state).name().to_string(),
                expires_ms: left,
                worker: wi as u16,
                template: false,
            });
        }
    }
    let total = conns_live
        // Two entries per NAT connection, one per template.
        + (dataplane.nat.len() as u64).saturating_sub(templates) / 2
        + templates;
    Ok(ConnList {
        truncated: matched > out.len() as u64,
        conns: out,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbcore::conntrack::{ConnKey, Probe};

    fn table_with(n: u32) -> ConnTable {
        let mut t = ConnTable::new(8192, 1);
        for i in 0..n {
            let k = ConnKey {
                proto: 6,
                client_ip: 0xC612_0001,
                client_port: 1000 + i as u16,
                vip: 0xC612_0064,
                vport: 80,
            };
            let h = t.hash(&k);
            if let Probe::Vacant { slot, .. } = t.probe(&k, h, 0) {
                let state = if i % 2 == 0 {
                    ConnState::Established
                } else {
                    ConnState::SynRecv
                };
                t.insert_at(slot, Conn::new(&k, i % 3, state as u8, 0, 10_000));
            }
        }
        t
    }

    #[test]
    fn lists_in_slices_with_filter_and_limit() {
        let t = table_with(5000);
        let slot = DumpSlot::default();
        let filter = RawFilter {
            state: Some(ConnState::Established),
            ..Default::default()
        };
        slot.post(DumpJob::new(filter, 100));
        let mut polls = 0;
        let job = loop {
            slot.serve(&t, 5);
            polls += 1;
            if let Some(j) = slot.take_done() {
                break j;
            }
            assert!(polls < 10_000);
        };
        assert!(polls > 1, "a big table is listed in several slices");
        assert_eq!(job.matched, 2500);
        assert_eq!(job.found.len(), 100);
        assert!(job
            .found
            .iter()
            .all(|(c, left)| c.state == ConnState::Established as u8 && *left == 9_995));
        assert!(!slot.pending.load(Ordering::Relaxed));
    }

    #[test]
    fn filter_by_real_server_and_port() {
        let t = table_with(300);
        let slot = DumpSlot::default();
        let filter = RawFilter {
            rs: Some(vec![1]),
            vport: Some(80),
            ..Default::default()
        };
        slot.post(DumpJob::new(filter, 1000));
        while slot.pending.load(Ordering::Relaxed) {
            slot.serve(&t, 0);
        }
        let job = slot.take_done().unwrap();
        assert_eq!(job.matched, 100);
        assert!(job.found.iter().all(|(c, _)| c.rs == 1));
    }
}
