//! The worker side of a listing: a [`DumpJob`] posted in the worker's
//! [`DumpSlot`], scanned a slice at a time between bursts.
//!
//! Each worker owns its tables, so only the worker may read them. The
//! control side posts a job; the worker, once per poll, scans a slice
//! ([`SLICE_BUCKETS`] buckets) of one of its tables into the job, table
//! after table ([`Phase`]), and marks it done at the end. A table of
//! millions of entries is thus listed in many small steps, never in one
//! long stall.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use lbcore::conntrack::{ConnKey6, ConnTable, Tick};
use lbcore::pipeline::Worker;

use super::filter::{Found, ListKey, Listed, RawFilter};

/// Buckets scanned per worker poll while a listing is in progress.
pub const SLICE_BUCKETS: usize = 2048;

/// The tables a worker lists, in the order they are listed.
#[derive(Clone, Copy)]
pub struct WorkerTables<'a> {
    /// IPv4 connections.
    pub conns: &'a ConnTable,
    /// IPv6 connections and persistence templates, once IPv6 is
    /// configured.
    pub conns6: Option<&'a ConnTable<ConnKey6>>,
    pub templates6: Option<&'a ConnTable<ConnKey6>>,
}

impl<'a> WorkerTables<'a> {
    pub fn of(w: &'a Worker) -> WorkerTables<'a> {
        WorkerTables {
            conns: w.table(),
            conns6: w.table6(),
            templates6: w.templates6(),
        }
    }
}

/// Which table a job is scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Conns,
    Conns6,
    Templates6,
    Done,
}

impl Phase {
    fn after(self) -> Phase {
        match self {
            Phase::Conns => Phase::Conns6,
            Phase::Conns6 => Phase::Templates6,
            Phase::Templates6 | Phase::Done => Phase::Done,
        }
    }
}

impl WorkerTables<'_> {
    /// Whether the worker has the table of `phase`.
    fn has(&self, phase: Phase) -> bool {
        match phase {
            Phase::Conns | Phase::Done => true,
            Phase::Conns6 => self.conns6.is_some(),
            Phase::Templates6 => self.templates6.is_some(),
        }
    }
}

/// One listing request for one worker.
#[derive(Debug)]
pub struct DumpJob {
    pub filter: RawFilter,
    /// What matched (with the worker's index in each entry).
    pub found: Found,
    worker: u16,
    phase: Phase,
    cursor: usize,
    pub done: bool,
}

impl DumpJob {
    /// A job for worker `worker`, keeping at most `limit` entries.
    pub fn new(filter: RawFilter, limit: usize, worker: u16) -> DumpJob {
        DumpJob {
            filter,
            found: Found::new(limit),
            worker,
            phase: Phase::Conns,
            cursor: 0,
            done: false,
        }
    }

    /// Scan the next slice of the table being listed (tables the worker
    /// does not have are skipped, taking no step).
    pub fn step(&mut self, t: WorkerTables<'_>, now: Tick) {
        self.skip_absent(t);
        let next = match self.phase {
            Phase::Conns => self.scan(t.conns, now, false),
            Phase::Conns6 => t.conns6.and_then(|c| self.scan(c, now, false)),
            Phase::Templates6 => t.templates6.and_then(|c| self.scan(c, now, true)),
            Phase::Done => None,
        };
        match next {
            Some(n) => self.cursor = n,
            None => {
                self.cursor = 0;
                self.phase = self.phase.after();
                self.skip_absent(t);
            }
        }
        self.done = self.phase == Phase::Done;
    }

    fn skip_absent(&mut self, t: WorkerTables<'_>) {
        while !t.has(self.phase) {
            self.phase = self.phase.after();
        }
    }

    /// One slice of `table`; where to continue, `None` at its end.
    fn scan<K: ListKey>(
        &mut self,
        table: &ConnTable<K>,
        now: Tick,
        templates: bool,
    ) -> Option<usize> {
        let (filter, found, worker) = (&self.filter, &mut self.found, self.worker);
        table.scan_buckets(self.cursor, SLICE_BUCKETS, |c| {
            if c.is_expired(now) {
                return;
            }
            if templates {
                found.templates += 1;
            }
            if !filter.matches(&c.key(), c.rs, c.state) {
                return;
            }
            let e = Listed::of(&c.key(), c.rs, c.state, c.expires.wrapping_sub(now), worker);
            found.push(if templates { e.template() } else { e });
        })
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
    pub fn serve(&self, w: &Worker, now: Tick) {
        if self.pending.load(Ordering::Relaxed) {
            self.serve_tables(WorkerTables::of(w), now);
        }
    }

    /// [`serve`](Self::serve) over tables given one by one.
    pub fn serve_tables(&self, t: WorkerTables<'_>, now: Tick) {
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
                job.step(t, now);
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

#[cfg(test)]
mod tests {
    use super::*;
    use lbcore::conntrack::{Conn, ConnKey, ConnState, Probe, TableKey};
    use std::net::{IpAddr, Ipv6Addr};

    fn insert<K: TableKey>(t: &mut ConnTable<K>, k: K, rs: u32, state: ConnState, expires: Tick) {
        let h = t.hash(&k);
        match t.probe(&k, h, 0) {
            Probe::Vacant { slot, .. } => {
                t.insert_at(slot, Conn::new(&k, rs, state as u8, 0, expires))
            }
            _ => panic!("no room for {k:?}"),
        }
    }

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
            let state = if i % 2 == 0 {
                ConnState::Established
            } else {
                ConnState::SynRecv
            };
            insert(&mut t, k, i % 3, state, 10_000);
        }
        t
    }

    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    fn key6(client: &str, port: u16) -> ConnKey6 {
        ConnKey6 {
            proto: 6,
            client_ip: v6(client),
            client_port: port,
            vip: v6("2001:db8::100"),
            vport: 443,
        }
    }

    /// Run a job on one worker's tables to its end.
    fn run(t: WorkerTables<'_>, filter: RawFilter, limit: usize) -> (DumpJob, usize) {
        let slot = DumpSlot::default();
        slot.post(DumpJob::new(filter, limit, 3));
        let mut polls = 0;
        loop {
            slot.serve_tables(t, 5);
            polls += 1;
            if let Some(j) = slot.take_done() {
                assert!(!slot.pending.load(Ordering::Relaxed));
                return (j, polls);
            }
            assert!(polls < 10_000);
        }
    }

    fn v4_only(t: &ConnTable) -> WorkerTables<'_> {
        WorkerTables {
            conns: t,
            conns6: None,
            templates6: None,
        }
    }

    #[test]
    fn lists_in_slices_with_filter_and_limit() {
        let t = table_with(5000);
        let filter = RawFilter {
            state: Some(ConnState::Established),
            ..Default::default()
        };
        let (job, polls) = run(v4_only(&t), filter, 100);
        assert!(polls > 1, "a big table is listed in several slices");
        assert_eq!(job.found.matched, 2500);
        assert_eq!(job.found.entries.len(), 100);
        assert!(job
            .found
            .entries
            .iter()
            .all(|e| e.state == ConnState::Established as u8
                && e.left_ms == 9_995
                && e.worker == 3
                && !e.template));
    }

    #[test]
    fn filter_by_real_server_and_port() {
        let t = table_with(300);
        let filter = RawFilter {
            rs: Some(vec![1]),
            vport: Some(80),
            ..Default::default()
        };
        let (job, _) = run(v4_only(&t), filter, 1000);
        assert_eq!(job.found.matched, 100);
        assert!(job.found.entries.iter().all(|e| e.rs == 1));
    }

    /// A worker with IPv4 connections, IPv6 connections and IPv6
    /// templates.
    fn dual_stack() -> (ConnTable, ConnTable<ConnKey6>, ConnTable<ConnKey6>) {
        let v4 = table_with(10);
        let mut c6 = ConnTable::<ConnKey6>::new(4096, 2);
        for i in 0..6u16 {
            let client = if i < 4 {
                "2001:db8::1"
            } else {
                "2001:db8:1::7"
            };
            let state = if i % 2 == 0 {
                ConnState::Established
            } else {
                ConnState::FinWait
            };
            insert(
                &mut c6,
                key6(client, 40000 + i),
                7 + u32::from(i % 2),
                state,
                20_000,
            );
        }
        // An expired one: never listed.
        insert(
            &mut c6,
            key6("2001:db8::99", 1),
            7,
            ConnState::Established,
            2,
        );
        let mut t6 = ConnTable::<ConnKey6>::new(256, 3);
        for client in ["2001:db8::", "2001:db8:1::"] {
            insert(&mut t6, key6(client, 0), 7, ConnState::None, 300_000);
        }
        (v4, c6, t6)
    }

    #[test]
    fn ipv6_connections_and_templates_are_listed_after_ipv4() {
        let (v4, c6, t6) = dual_stack();
        let t = WorkerTables {
            conns: &v4,
            conns6: Some(&c6),
            templates6: Some(&t6),
        };
        let (job, _) = run(t, RawFilter::default(), 100);
        let e = &job.found.entries;
        assert_eq!(job.found.matched, 10 + 6 + 2);
        assert_eq!(job.found.templates, 2);
        assert!(e[..10].iter().all(|e| e.client.is_ipv4()));
        assert!(e[10..].iter().all(|e| e.client.is_ipv6() && e.vport == 443));
        let templates: Vec<_> = e.iter().filter(|e| e.template).collect();
        assert_eq!(templates.len(), 2);
        assert!(templates.iter().all(|t| t.client_port == 0
            && t.state == ConnState::None as u8
            && t.left_ms == 299_995));
        assert!(e[10..16].iter().all(|e| !e.template && e.left_ms == 19_995));
    }

    #[test]
    fn ipv6_filters_by_client_vip_real_server_and_state() {
        let (v4, c6, t6) = dual_stack();
        let t = WorkerTables {
            conns: &v4,
            conns6: Some(&c6),
            templates6: Some(&t6),
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let (job, _) = run(
            t,
            RawFilter {
                client: ip("2001:db8::1"),
                ..Default::default()
            },
            100,
        );
        assert_eq!(job.found.matched, 4);
        assert!(job
            .found
            .entries
            .iter()
            .all(|e| e.client == ip("2001:db8::1").unwrap()));
        let (job, _) = run(
            t,
            RawFilter {
                vip: ip("2001:db8::100"),
                ..Default::default()
            },
            100,
        );
        assert_eq!(
            job.found.matched,
            6 + 2,
            "connections and templates of the VIP"
        );
        let (job, _) = run(
            t,
            RawFilter {
                vip: ip("198.18.0.100"),
                ..Default::default()
            },
            100,
        );
        assert_eq!(job.found.matched, 10, "an IPv4 VIP: IPv4 entries only");
        let f = RawFilter {
            rs: Some(vec![8]),
            state: Some(ConnState::FinWait),
            ..Default::default()
        };
        let (job, _) = run(t, f, 100);
        assert_eq!(job.found.matched, 3);
        assert!(job
            .found
            .entries
            .iter()
            .all(|e| e.rs == 8 && e.client.is_ipv6()));
        // Limit: counted beyond it, across tables.
        let (job, _) = run(t, RawFilter::default(), 12);
        assert_eq!((job.found.matched, job.found.entries.len()), (18, 12));
    }

    #[test]
    fn a_worker_without_ipv6_tables_finishes_after_ipv4() {
        let t = table_with(3);
        let (job, polls) = run(v4_only(&t), RawFilter::default(), 10);
        assert_eq!(job.found.matched, 3);
        let slices = t.bucket_count().div_ceil(SLICE_BUCKETS);
        assert_eq!(polls, slices, "no poll spent on the missing tables");
    }
}
