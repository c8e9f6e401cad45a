//! Persistence (`ipvsadm -p TIMEOUT -M NETMASK`): a client sticks to the
//! real server it was first scheduled to, across connections.
//!
//! A **template** per (service, client address masked by `netmask`) holds
//! the real server. It lives in the table shared by all workers
//! ([`SharedConnTable`], the NAT table), because RSS may put one client's
//! connections on different queues. Its key is
//! [`EntryKind::Template`] (masked client, port 0, VIP, service port) — the
//! key space keeps it apart from connections and NAT replies —
//! its value is the real-server id, its flag [`EntryFlags::TEMPLATE`] (no ActiveConn
//! or InActConn accounting; listings show it like `ipvsadm -Lnc`: state
//! NONE, client port 0). A service on all ports (port 0) has one template
//! per client for all ports, as IPVS's port-0 services do.
//!
//! * **A new connection** first looks for a live template. Found, and its
//!   real server still in the service, the connection goes there and the
//!   template's deadline is pushed to now + timeout. Servers at weight 0
//!   are still used: like IPVS (whose `expire_quiescent_template` is off by
//!   default), quiescing a server stops new *clients*, not the ones that
//!   already stick to it; removing it from the service (or draining it
//!   away) ends their affinity. A template whose real server is gone is
//!   removed and the client is scheduled afresh. Without a template the
//!   scheduler picks, and a template is created.
//! * **Every packet of an existing connection** pushes its template's
//!   deadline to now + timeout: the affinity ends `timeout` seconds after
//!   the client's last packet. (IPVS also keeps a template while
//!   connections refer to it; here a connection idle for longer than the
//!   timeout keeps going to its server — its own entry holds it — but the
//!   client's next connection is scheduled afresh.) The deadline is written
//!   only when it would move later by more than [`REFRESH_SLACK_MS`]: a
//!   busy client writes its template about once a second, and costs one
//!   lock-free lookup per packet otherwise.
//! * **Expiry** is the NAT table's sweep (each worker its slice); templates
//!   carry no connection counts, so nothing else changes.
//!
//! *Races.* The shared table assumes one inserter per key. Templates come
//! close: a client's first connections may arrive on two queues at once.
//! Each worker looks the template up right before inserting, so a
//! duplicate needs two first packets within that window of a few hundred
//! nanoseconds. Then both entries exist; every lookup scans the key's
//! window in the same order and returns the first live one, so all workers
//! agree from then on (the connection placed by the other template keeps
//! its server — its own entry holds it). The loser is never found, so
//! never refreshed, and expires after `timeout`: harmless.
//!
//! Without a shared table (a worker built without [`Worker::with_nat`], as
//! in some tests) persistence is off: every connection is scheduled. lbd
//! gives every worker the table; templates count against
//! `conn_table.nat_capacity`. When the table is full the connection is
//! still scheduled and forwarded, just without a template.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{Persistence, Scheduler};
use crate::conntrack::keyspace::{EntryFlags, EntryKind};
use crate::conntrack::shared::{Entry, SharedConnTable};
use crate::conntrack::{ConnKey, ConnState, TableKey, Tick};
use crate::counters::Counter;
use crate::sched::{self, Candidate};

use super::nat::REFRESH_SLACK_MS;
use super::snapshot::Service;
use super::Worker;
use crate::wire::{ipv4, ipv6};

/// A client's affinity network: its address masked to `prefix`, a prefix
/// length of the address's family (persistence's unit: clients of one
/// network share a real server).
pub fn client_network(client: IpAddr, prefix: u8) -> IpAddr {
    match client {
        IpAddr::V4(a) => Ipv4Addr::from(u32::from(a) & ipv4::prefix_mask(prefix)).into(),
        IpAddr::V6(a) => Ipv6Addr::from(u128::from(a) & ipv6::prefix_mask(prefix)).into(),
    }
}

/// The template key of a client of a service, the client's address masked
/// to `prefix`.
#[inline]
pub fn template_key(proto: u8, client_ip: u32, prefix: u8, vip: u32, vport: u16) -> ConnKey {
    EntryKind::Template.mark(ConnKey {
        proto,
        client_ip: client_ip & ipv4::prefix_mask(prefix),
        client_port: 0,
        vip,
        vport,
    })
}

/// The template key of a client of `svc`. A service group's is keyed by
/// its mark — protocol 0, the mark in the VIP field, port 0, as IPVS keys
/// its firewall-mark templates — so one client's connections to every
/// member (80 and 443, TCP and UDP) share one real server. `prefix`: the
/// service's ([`Service::persist_prefix`]), or 32 for an address masked
/// already.
#[inline]
pub fn service_template_key(svc: &Service, proto: u8, client_ip: u32, prefix: u8) -> ConnKey {
    match svc.fwmark {
        Some(mark) => template_key(0, client_ip, prefix, mark, 0),
        None => template_key(proto, client_ip, prefix, svc.vip_v4, svc.port),
    }
}

/// The live template at `tk` and the index of its real server in `svc`.
/// A template whose real server left the service is removed.
#[inline]
fn live_template(
    table: &SharedConnTable,
    svc: &Service,
    tk: &ConnKey,
    hash: u64,
    now: Tick,
) -> Option<(usize, Entry)> {
    let e = table.lookup(tk, hash, now)?;
    // A server removed by its health check keeps no clients; a quiesced
    // one does (see the module notes).
    match svc.reals.iter().position(|r| r.id == e.rs && r.up) {
        Some(i) => Some((i, e)),
        None => {
            table.remove(&e);
            None
        }
    }
}

/// Push `e`'s deadline to `target` if that moves it later by more than
/// the slack.
#[inline]
fn refresh(table: &SharedConnTable, e: &Entry, target: Tick) {
    let moves = target.wrapping_sub(e.expires) as i32;
    if moves > REFRESH_SLACK_MS as i32 {
        table.set_expires(e, target);
    }
}

#[inline]
fn timeout_ms(p: Persistence) -> u32 {
    p.timeout.saturating_mul(1000)
}

impl Worker {
    /// The real server (an index into the service's `reals`) for a new
    /// connection `key`: its client's template if there is one, else the
    /// scheduler's choice (and a new template). `None`: no server available.
    pub(super) fn pick_real(&mut self, key: &ConnKey, svc_idx: usize, now: Tick) -> Option<usize> {
        let svc = &self.snap.services[svc_idx];
        let (Some(p), Some(nat)) = (svc.persistence, self.nat.as_ref()) else {
            return self.schedule(key, svc_idx);
        };
        let tk = service_template_key(svc, key.proto, key.client_ip, svc.persist_prefix);
        let hash = nat.table.hash(&tk);
        let deadline = now.wrapping_add(timeout_ms(p));
        if let Some((i, e)) = live_template(&nat.table, svc, &tk, hash, now) {
            refresh(&nat.table, &e, deadline);
            self.stats.count(Counter::PersistTemplateUsed);
            return Some(i);
        }
        let i = self.schedule(key, svc_idx)?;
        let svc = &self.snap.services[svc_idx];
        let Some(nat) = self.nat.as_ref() else {
            return Some(i);
        };
        // Another worker may have made the template since we looked: follow
        // it rather than insert a second one (see "Races" above).
        if let Some((j, e)) = live_template(&nat.table, svc, &tk, hash, now) {
            refresh(&nat.table, &e, deadline);
            self.stats.count(Counter::PersistTemplateUsed);
            return Some(j);
        }
        let counts = self.counts();
        let state = ConnState::None as u8;
        let made = nat.table.insert(
            &tk,
            hash,
            svc.reals[i].id,
            deadline,
            state,
            EntryFlags::TEMPLATE,
            now,
            |old| {
                // Expired entries reclaimed on the way: connections among
                // them leave the counts as the sweep would do it.
                if old.is_counted() {
                    if old.flags.contains(EntryFlags::ACTIVE) {
                        counts.change(old.rs, -1, 0);
                    } else {
                        counts.change(old.rs, 0, -1);
                    }
                    counts.stats.count(Counter::ConnExpired);
                }
            },
        );
        if made.is_ok() {
            self.stats.count(Counter::PersistTemplateCreated);
            if let Some(route) = self.snap.route(svc.reals[i].id) {
                // The peer finds the service by the record's address: a
                // group's is the member this connection came to.
                let (vip, vport) = match svc.fwmark {
                    Some(_) => (Ipv4Addr::from(key.vip), key.vport),
                    None => (Ipv4Addr::from(svc.vip_v4), svc.port),
                };
                self.sync_record(crate::conntrack::sync::SyncRecord {
                    kind: crate::conntrack::sync::SyncKind::Template,
                    proto: key.proto,
                    state: 0,
                    client_ip: tk.client_ip.into(),
                    client_port: 0,
                    vip,
                    vport,
                    rs_ip: route.addr,
                    rs_port: route.rport,
                    timeout_ms: timeout_ms(p),
                    client_mac: [0; 6],
                    client_via_port: 0,
                });
            }
        }
        Some(i)
    }

    /// The scheduler's choice for a new connection, as an index into the
    /// service's `reals`.
    fn schedule(&mut self, key: &ConnKey, svc_idx: usize) -> Option<usize> {
        // lc, wlc, sed, nq: the worker's index holds the choice (O(1) here,
        // O(log n) per count change). Debug builds check it against the
        // scan, which stays the reference.
        if let Ok(choice) = self.least.pick(svc_idx) {
            debug_assert_eq!(
                choice,
                self.scan(key, svc_idx),
                "scheduler index disagrees with the scan"
            );
            return choice;
        }
        self.scan(key, svc_idx)
    }

    /// The scheduler's choice by looking at every real server (services the
    /// index does not cover, and the index's reference).
    fn scan(&mut self, key: &ConnKey, svc_idx: usize) -> Option<usize> {
        let svc = &self.snap.services[svc_idx];
        // The common schedulers read what they need straight from the
        // service and the counters: no candidate list is built per SYN.
        match svc.scheduler {
            Scheduler::Lc | Scheduler::Wlc => {
                let stats = &self.stats.rs;
                let cands = svc.reals.iter().map(|r| {
                    let st = &stats[r.id as usize];
                    Candidate {
                        weight: r.weight,
                        active: st.active().max(0) as u32,
                        inactive: st.inactive().max(0) as u32,
                    }
                });
                return if svc.scheduler == Scheduler::Lc {
                    sched::lc::least_connection_of(cands)
                } else {
                    sched::lc::weighted_least_connection_of(cands)
                };
            }
            Scheduler::Sh | Scheduler::Mh => {
                let i = match &svc.tables {
                    sched::Tables::Sh(t) => t.lookup(key.client_ip),
                    sched::Tables::Mh(t) => t.lookup(key.client_ip),
                    sched::Tables::None => None,
                }?;
                // Never trust a table entry for a quiesced server.
                return svc.reals.get(i).filter(|r| r.weight > 0).map(|_| i);
            }
            _ => {}
        }
        self.cands.clear();
        for r in &svc.reals {
            let st = &self.stats.rs[r.id as usize];
            self.cands.push(Candidate {
                weight: r.weight,
                // This worker's view: its own connections (never negative
                // for scheduling purposes).
                active: st.active().max(0) as u32,
                inactive: st.inactive().max(0) as u32,
            });
        }
        let ctx = sched::PickCtx {
            client: std::net::Ipv4Addr::from(key.client_ip).into(),
            tables: &svc.tables,
        };
        let st = &mut self.sched[svc.id as usize];
        sched::pick(svc.scheduler, &self.cands, st, &ctx)
    }

    /// A packet of an existing connection `key`: keep its client's template
    /// alive for `timeout` more.
    #[inline(always)]
    pub(super) fn persist_touch(&self, words: &[u64; 2], svc_idx: usize, now: Tick) {
        // One flag load on the hit path unless some service has
        // persistence; the refresh itself out of line.
        if self.snap.any_persistence && self.snap.services[svc_idx].persistence.is_some() {
            self.persist_refresh(words, svc_idx, now);
        }
    }

    #[inline(never)]
    fn persist_refresh(&self, words: &[u64; 2], svc_idx: usize, now: Tick) {
        let key = &ConnKey::from_words(words);
        let svc = &self.snap.services[svc_idx];
        let (Some(p), Some(nat)) = (svc.persistence, self.nat.as_ref()) else {
            return;
        };
        let tk = service_template_key(svc, key.proto, key.client_ip, svc.persist_prefix);
        if let Some(e) = nat.table.lookup(&tk, nat.table.hash(&tk), now) {
            refresh(&nat.table, &e, now.wrapping_add(timeout_ms(p)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::conntrack::ConnTable;
    use crate::counters::WorkerStats;
    use crate::neigh::{ClientMacs, NeighTable};
    use crate::pipeline::nat::NatState;
    use crate::pipeline::{Registry, Snapshot, Verdict, MAX_REAL_SERVERS, MAX_SERVICES};
    use crate::wire::MacAddr;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    const DIR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const INT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xe1]);
    const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const VIP: [u8; 4] = [198, 18, 0, 100];

    /// The MAC given to real server 198.18.0.N / 198.19.0.N: 02:..:N.
    fn rs_mac(ip: impl Into<IpAddr>) -> MacAddr {
        let last = match ip.into() {
            IpAddr::V4(a) => a.octets()[3],
            IpAddr::V6(a) => a.octets()[15],
        };
        MacAddr([0x02, 0, 0, 0, 0, last])
    }

    fn config(services: &str) -> Config {
        config_with(services, "")
    }

    /// With more top-level `sections` (`fwmarks: [...]`).
    fn config_with(services: &str, sections: &str) -> Config {
        let cfg: Config = ron::from_str(&format!(
            r#"(
                ports: [(name: "ext", device: "net_null0", address: "198.18.0.2/24"),
                        (name: "int", device: "net_null1", address: "198.19.0.1/24")],
                eal: (cores: "0-2"),
                services: [{services}],
                {sections}
            )"#
        ))
        .unwrap();
        let problems = crate::config::validate(&cfg);
        assert!(problems.is_empty(), "{problems:?}");
        cfg
    }

    struct Lab {
        workers: Vec<Worker>,
        neigh: Arc<NeighTable>,
        reg: Registry,
        table: Arc<SharedConnTable>,
    }

    impl Lab {
        /// `n` workers sharing one table (as lbd's workers do).
        fn new(services: &str, n: usize) -> Lab {
            Lab::with(services, "", n)
        }

        /// With more top-level configuration `sections`.
        fn with(services: &str, sections: &str, n: usize) -> Lab {
            let cfg = config_with(services, sections);
            let neigh = Arc::new(NeighTable::new(64));
            let mut reg = Registry::default();
            let snap =
                Arc::new(Snapshot::build(&cfg, &[DIR_MAC, INT_MAC], &mut reg, &neigh, 1).unwrap());
            for e in neigh.entries() {
                neigh.learn(e.slot, e.ip, rs_mac(e.ip), 0);
            }
            let table = Arc::new(SharedConnTable::new(4096, 11));
            let clients = Arc::new(ClientMacs::new(256));
            let workers = (0..n)
                .map(|i| {
                    Worker::new(
                        snap.clone(),
                        ConnTable::new(4096, 3 + i as u64),
                        Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
                        neigh.clone(),
                    )
                    .with_nat(NatState::new(
                        table.clone(),
                        clients.clone(),
                        i,
                        n,
                    ))
                })
                .collect();
            Lab {
                workers,
                neigh,
                reg,
                table,
            }
        }

        /// Publish a new configuration to every worker.
        fn reconfigure(&mut self, services: &str) {
            let cfg = config(services);
            let snap = Arc::new(
                Snapshot::build(&cfg, &[DIR_MAC, INT_MAC], &mut self.reg, &self.neigh, 2).unwrap(),
            );
            for e in self.neigh.entries() {
                self.neigh.learn(e.slot, e.ip, rs_mac(e.ip), 0);
            }
            for w in &mut self.workers {
                w.set_snapshot(snap.clone());
            }
        }

        /// Send a client TCP segment through worker `w`; the last byte of
        /// the real server's MAC it went to.
        fn send(
            &mut self,
            w: usize,
            client: [u8; 4],
            sport: u16,
            dport: u16,
            syn: bool,
            now: Tick,
        ) -> u8 {
            let mut f = tcp(client, sport, dport, syn);
            let v = self.workers[w].process(&mut f, 0, now);
            assert!(
                matches!(v, Verdict::Tx(_)),
                "{client:?}:{sport} → {dport}: {v:?}"
            );
            f[5]
        }

        fn syn(&mut self, w: usize, client: [u8; 4], sport: u16, now: Tick) -> u8 {
            self.send(w, client, sport, 80, true, now)
        }

        fn templates(&self, now: Tick) -> Vec<Entry> {
            let mut out = Vec::new();
            let mut at = Some(0);
            while let Some(s) = at {
                at = self.table.scan(s, 1024, |e| {
                    if e.flags.contains(EntryFlags::TEMPLATE) && !e.is_expired(now) {
                        out.push(*e);
                    }
                });
            }
            out
        }

        fn count(&self, c: Counter) -> u64 {
            self.workers.iter().map(|w| w.stats().get(c)).sum()
        }
    }

    fn tcp(client: [u8; 4], sport: u16, dport: u16, syn: bool) -> Vec<u8> {
        let mut b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
            .ipv4(client, VIP, 64)
            .tcp(sport, dport, 1000, 65535);
        b = if syn { b.syn() } else { b.ack(1) };
        let mut f = Vec::new();
        b.write(&mut f, b"x").unwrap();
        f
    }

    const RR_PERSIST: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr,
        persistence: Some((timeout: 10, netmask: NETMASK)),
        real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])"#;

    fn rr(netmask: u8) -> String {
        RR_PERSIST.replace("NETMASK", &netmask.to_string())
    }

    /// Prefix lengths as masks: IPv4 exactly as the `-M` netmask always
    /// masked (the config's `Persistence::mask`), IPv6 over 128 bits.
    #[test]
    fn prefix_lengths_mask_either_family() {
        for n in 0..=40u8 {
            let netmask = crate::config::Persistence::v4(300, n).mask();
            assert_eq!(ipv4::prefix_mask(n), netmask, "/{n}");
        }
        assert_eq!(ipv4::prefix_mask(24), 0xffff_ff00);
        assert_eq!(ipv6::prefix_mask(0), 0);
        assert_eq!(ipv6::prefix_mask(64), !0u128 << 64);
        assert_eq!(ipv6::prefix_mask(128), u128::MAX);
        assert_eq!(ipv6::prefix_mask(200), u128::MAX);
        let c4: IpAddr = "198.18.7.200".parse().unwrap();
        assert_eq!(
            client_network(c4, 24),
            "198.18.7.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_network(c4, 32), c4);
        let c6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            client_network(c6, 64),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_network(c6, 48),
            "2001:db8:1::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_network(c6, 128), c6);
    }

    #[test]
    fn a_client_keeps_its_real_server_across_connections() {
        let mut l = Lab::new(&rr(32), 1);
        let first = l.syn(0, [10, 1, 7, 1], 40000, 0);
        for i in 1..10u16 {
            assert_eq!(l.syn(0, [10, 1, 7, 1], 40000 + i, i as u32), first);
        }
        assert_eq!(l.count(Counter::ConnCreated), 10);
        assert_eq!(l.count(Counter::PersistTemplateCreated), 1);
        assert_eq!(l.count(Counter::PersistTemplateUsed), 9);
        let t = l.templates(10);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].key.client_port, 0);
        assert_eq!(EntryKind::of(&t[0].key), EntryKind::Template);
        assert_eq!(EntryKind::protocol(&t[0].key), 6);
        assert_eq!(t[0].key.client_ip, u32::from_be_bytes([10, 1, 7, 1]));
        assert!(!t[0].is_counted());
        // Templates carry no connection counts.
        let rs = l.workers[0].snapshot().services[0].reals[0].id as usize;
        let st = &l.workers[0].stats().rs[rs];
        assert_eq!(
            st.active() + st.inactive(),
            if first == 11 { 10 } else { 0 }
        );
    }

    #[test]
    fn templates_are_synced_and_honoured_by_the_peer() {
        let q = Arc::new(crossbeam::queue::ArrayQueue::new(64));
        let mut master = Lab::new(&rr(24), 1);
        let w = master.workers.remove(0).with_sync(q.clone());
        master.workers.push(w);
        let first = master.syn(0, [10, 1, 7, 1], 40000, 0);
        let recs: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        let t: Vec<_> = recs
            .iter()
            .filter(|r| r.kind == crate::conntrack::sync::SyncKind::Template)
            .collect();
        assert_eq!(t.len(), 1, "{recs:?}");
        assert_eq!(t[0].client_ip, Ipv4Addr::new(10, 1, 7, 0), "masked /24");
        assert_eq!(t[0].timeout_ms, 10_000, "the persistence timeout");
        // The peer stores it; its scheduler is not asked: the client of the
        // same /24 goes where the master sent it, whatever rr would do.
        let mut backup = Lab::new(&rr(24), 1);
        let clients = ClientMacs::new(16);
        let snap = backup.workers[0].snapshot().clone();
        crate::pipeline::sync::apply(&backup.table, &clients, &snap, t[0], 1).unwrap();
        for i in 0..4u16 {
            assert_eq!(backup.syn(0, [10, 1, 7, 9], 41000 + i, 2 + i as u32), first);
        }
        assert_eq!(backup.count(Counter::PersistTemplateUsed), 4);
        assert_eq!(backup.count(Counter::PersistTemplateCreated), 0);
    }

    /// Ports 80 and 443 of the VIP as one service group, persistent.
    const GROUP: &str = r#"(fwmark: Some(3), scheduler: Rr,
        persistence: Some((timeout: 10)),
        real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])"#;
    const MARK_80_443: &str = r#"fwmarks: [(mark: 3, match: [(vip: "198.18.0.100", ports: 80), (vip: "198.18.0.100", ports: 443)])]"#;

    #[test]
    fn a_group_shares_one_template_across_its_ports_and_workers() {
        let mut l = Lab::with(GROUP, MARK_80_443, 2);
        let mut seen = [0usize; 256];
        for c in 1..=8u8 {
            let client = [10, 1, 7, c];
            let web = l.send(0, client, 40000, 80, true, c as u32);
            seen[web as usize] += 1;
            // Its HTTPS connection, even on the other worker, follows.
            assert_eq!(l.send(1, client, 40001, 443, true, c as u32), web);
            assert_eq!(l.send(0, client, 40002, 443, true, c as u32), web);
        }
        assert_eq!((seen[11], seen[12]), (4, 4), "rr over new clients");
        // One template per client, keyed by the mark (protocol 0, the mark
        // where the VIP goes, port 0), not by a member's VIP and port.
        let t = l.templates(20);
        assert_eq!(t.len(), 8);
        assert!(t
            .iter()
            .all(|e| EntryKind::of(&e.key) == EntryKind::Template
                && EntryKind::protocol(&e.key) == 0
                && e.key.vip == 3
                && e.key.vport == 0));
        assert_eq!(l.count(Counter::PersistTemplateCreated), 8);
        assert_eq!(l.count(Counter::PersistTemplateUsed), 16);
    }

    #[test]
    fn a_group_template_is_synced_by_member_and_honoured_on_every_port() {
        let q = Arc::new(crossbeam::queue::ArrayQueue::new(64));
        let mut master = Lab::with(GROUP, MARK_80_443, 1);
        let w = master.workers.remove(0).with_sync(q.clone());
        master.workers.push(w);
        let first = master.send(0, [10, 1, 7, 1], 40000, 443, true, 0);
        let recs: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        let t: Vec<_> = recs
            .iter()
            .filter(|r| r.kind == crate::conntrack::sync::SyncKind::Template)
            .collect();
        assert_eq!(t.len(), 1, "{recs:?}");
        // The record names the member the connection came to: the peer
        // finds the group by it.
        assert_eq!(
            (t[0].vip, t[0].vport),
            (Ipv4Addr::new(198, 18, 0, 100), 443)
        );
        let mut backup = Lab::with(GROUP, MARK_80_443, 1);
        // Move the backup's rr on: both started at the same server, so the
        // backup's own next choice would be the other one.
        assert_eq!(backup.send(0, [10, 9, 9, 9], 40000, 80, true, 0), first);
        let clients = ClientMacs::new(16);
        let snap = backup.workers[0].snapshot().clone();
        crate::pipeline::sync::apply(&backup.table, &clients, &snap, t[0], 1).unwrap();
        assert_eq!(backup.send(0, [10, 1, 7, 1], 41000, 80, true, 2), first);
        assert_eq!(backup.send(0, [10, 1, 7, 1], 41001, 443, true, 2), first);
    }

    #[test]
    fn different_clients_spread_and_a_netmask_groups_them() {
        let mut l = Lab::new(&rr(32), 1);
        let mut seen = [0usize; 256];
        for c in 1..=20u8 {
            let mac = l.syn(0, [10, 1, 7, c], 40000, 0);
            seen[mac as usize] += 1;
            // The same client again: the same server.
            assert_eq!(l.syn(0, [10, 1, 7, c], 40001, 1), mac);
        }
        assert_eq!((seen[11], seen[12]), (10, 10), "rr over new clients");

        let mut l = Lab::new(&rr(24), 1);
        let a = l.syn(0, [10, 1, 7, 1], 40000, 0);
        for c in 2..=20u8 {
            assert_eq!(l.syn(0, [10, 1, 7, c], 40000, 0), a, "same /24");
        }
        let b = l.syn(0, [10, 1, 8, 1], 40000, 0);
        assert_ne!(a, b, "another /24 is scheduled (rr: the other server)");
        assert_eq!(l.syn(0, [10, 1, 8, 200], 50000, 0), b);
        let t = l.templates(0);
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|e| e.key.client_ip & 0xff == 0));
    }

    #[test]
    fn the_template_expires_after_the_timeout() {
        let mut l = Lab::new(&rr(32), 1);
        let c = [10, 1, 7, 1];
        let a = l.syn(0, c, 40000, 0);
        // Within the timeout: kept, and refreshed by the new connection.
        assert_eq!(l.syn(0, c, 40001, 9_000), a);
        assert_eq!(l.syn(0, c, 40002, 18_000), a);
        // Idle for longer than the timeout (10 s; the SYN_RECV entries have
        // their own 60 s): scheduled afresh, rr gives the other server.
        let later = 18_000 + 10_001;
        assert!(l.templates(later).is_empty());
        let b = l.syn(0, c, 40003, later);
        assert_ne!(a, b);
        assert_eq!(l.syn(0, c, 40004, later + 1), b);
        assert_eq!(l.count(Counter::PersistTemplateCreated), 2);
        // The sweep removes expired templates without counting them as
        // connections.
        let expired_before = l.count(Counter::ConnExpired);
        l.workers[0].housekeeping(later + 20_000, 1 << 20);
        assert!(l.templates(later + 20_000).is_empty());
        assert_eq!(l.count(Counter::ConnExpired), expired_before);
        assert_eq!(l.table.len(), 0);
    }

    #[test]
    fn packets_of_a_connection_keep_the_template_alive() {
        let mut l = Lab::new(&rr(32), 1);
        let c = [10, 1, 7, 1];
        let a = l.syn(0, c, 40000, 0);
        // An established connection, with a packet every 8 s for 40 s.
        for t in (1..=5).map(|i| i * 8_000) {
            assert_eq!(l.send(0, c, 40000, 80, false, t), a);
        }
        // 40 s after the first packet, 4 times the timeout: still there,
        // for the timeout after the last packet.
        let t = l.templates(40_000);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].expires, 50_000);
        // Packets less than a second apart do not rewrite it.
        l.send(0, c, 40000, 80, false, 40_900);
        assert_eq!(l.templates(40_900)[0].expires, 50_000);
        assert_eq!(l.syn(0, c, 40001, 49_000), a);
        // An idle connection does not hold it: after the timeout the
        // client's next connection is scheduled afresh (rr: the other one),
        // while the old connection keeps its server.
        let b = l.syn(0, c, 40002, 59_001);
        assert_ne!(a, b);
        assert_eq!(l.send(0, c, 40000, 80, false, 59_002), a);
    }

    #[test]
    fn a_quiesced_server_keeps_its_clients_a_removed_one_loses_them() {
        let mut l = Lab::new(&rr(32), 1);
        let c = [10, 1, 7, 1];
        let a = l.syn(0, c, 40000, 0);
        let (qa, qb) = if a == 11 { ("0", "1") } else { ("1", "0") };
        // Weight 0: no new clients, but this one stays (IPVS's default).
        let quiesced = rr(32)
            .replace(
                r#"(address: "198.18.0.11")"#,
                &format!(r#"(address: "198.18.0.11", weight: {qa})"#),
            )
            .replace(
                r#"(address: "198.18.0.12")"#,
                &format!(r#"(address: "198.18.0.12", weight: {qb})"#),
            );
        l.reconfigure(&quiesced);
        assert_eq!(l.syn(0, c, 40001, 1), a);
        assert_ne!(l.syn(0, [10, 1, 7, 2], 40000, 1), a, "new clients avoid it");
        // Removed from the service: the client is scheduled afresh and
        // sticks to its new server.
        let gone = if a == 11 {
            "198.18.0.11"
        } else {
            "198.18.0.12"
        };
        let removed = rr(32)
            .replace(&format!(r#"(address: "{gone}"), "#), "")
            .replace(
                &format!(r#", (address: "{gone}")"#),
                r#", (address: "198.18.0.13")"#,
            );
        l.reconfigure(&removed);
        let b = l.syn(0, c, 40002, 2);
        assert_ne!(b, a);
        assert_eq!(l.syn(0, c, 40003, 3), b);
        assert_eq!(l.templates(3).len(), 2, "this client's and 10.1.7.2's");
    }

    #[test]
    fn workers_share_templates() {
        let mut l = Lab::new(&rr(32), 2);
        let (x, y) = ([10, 1, 7, 1], [10, 1, 7, 2]);
        // Worker 0 places x then y: rr gives them different servers.
        let ax = l.syn(0, x, 40000, 0);
        let ay = l.syn(0, y, 40000, 0);
        assert_ne!(ax, ay);
        // Worker 1's rr would start with x's server; the templates win.
        assert_eq!(l.syn(1, y, 40001, 1), ay);
        assert_eq!(l.syn(1, x, 40001, 1), ax);
        assert_eq!(
            l.syn(1, [10, 1, 7, 3], 40001, 1),
            ax,
            "worker 1's rr starts at the first"
        );
        assert_eq!(l.templates(1).len(), 3);
        assert_eq!(l.count(Counter::PersistTemplateUsed), 2);
    }

    #[test]
    fn a_duplicate_template_is_harmless() {
        // Two workers raced: two templates for one client. Lookups agree on
        // one; the other is never refreshed and expires.
        let mut l = Lab::new(&rr(32), 2);
        let c = [10, 1, 7, 1];
        let a = l.syn(0, c, 40000, 0);
        let snap = l.workers[0].snapshot().clone();
        let svc = &snap.services[0];
        let other = svc
            .reals
            .iter()
            .find(|r| rs_mac(r.addr).0[5] != a)
            .unwrap()
            .id;
        let tk = template_key(6, u32::from_be_bytes(c), svc.persist_prefix, svc.vip_v4, 80);
        l.table
            .insert(
                &tk,
                l.table.hash(&tk),
                other,
                10_000,
                0,
                EntryFlags::TEMPLATE,
                0,
                |_| {},
            )
            .unwrap();
        assert_eq!(l.templates(0).len(), 2);
        let first = l.table.lookup(&tk, l.table.hash(&tk), 0).unwrap().rs;
        let want = rs_mac(svc.reals.iter().find(|r| r.id == first).unwrap().addr).0[5];
        for (i, t) in (1..6).map(|i| (i, i as u32 * 5_000)) {
            assert_eq!(l.syn(i as usize % 2, c, 40000 + i as u16, t), want);
        }
        assert_eq!(l.templates(25_000).len(), 1, "the loser expired");
    }

    const ALL_PORTS: &str = r#"
        (vip: "198.18.0.100", port: 0, scheduler: Rr, persistence: Some(()),
         real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")]),
        (vip: "198.18.0.100", port: 443, real_servers: [(address: "198.18.0.13", port: Some(443))])"#;

    #[test]
    fn a_service_on_all_ports_catches_every_port_a_specific_one_wins() {
        let mut l = Lab::new(ALL_PORTS, 1);
        let c = [10, 1, 7, 1];
        let a = l.send(0, c, 40000, 8080, true, 0);
        assert!(a == 11 || a == 12);
        // Other ports of the same client: the same server (one template for
        // all ports, as IPVS's port-0 services).
        assert_eq!(l.send(0, c, 40001, 22, true, 1), a);
        assert_eq!(l.send(0, c, 40001, 80, true, 1), a);
        // The specific service wins over the one on all ports.
        assert_eq!(l.send(0, c, 40002, 443, true, 2), 13);
        // Connections keep their actual destination port.
        let mut ports: Vec<u16> = l.workers[0].table().iter().map(|c| c.key().vport).collect();
        ports.sort_unstable();
        assert_eq!(ports, vec![22, 80, 443, 8080]);
        let t = l.templates(2);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].key.vport, 0);
        // UDP has no service here.
        let mut u = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
            .ipv4(c, VIP, 64)
            .udp(5353, 53)
            .write(&mut u, b"q")
            .unwrap();
        assert_eq!(
            l.workers[0].process(&mut u, 0, 3),
            Verdict::Drop(Counter::DropNoService)
        );
    }

    #[test]
    fn nat_on_all_ports_keeps_the_port_both_ways() {
        let mut l = Lab::new(
            r#"(vip: "198.18.0.100", port: 0, persistence: Some((timeout: 60)),
                real_servers: [(address: "198.19.0.11", forward: Nat)])"#,
            2,
        );
        let c = [198, 18, 0, 1];
        for (i, port) in [8080u16, 25].into_iter().enumerate() {
            let sport = 40000 + i as u16;
            let mut f = tcp(c, sport, port, true);
            assert_eq!(l.workers[0].process(&mut f, 0, 0), Verdict::Tx(1));
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
                panic!()
            };
            assert_eq!(ip.header().destination(), [198, 19, 0, 11]);
            let Some(TransportSlice::Tcp(t)) = &p.transport else {
                panic!()
            };
            assert_eq!(t.destination_port(), port, "the port is kept");
            // The server's reply, on the other worker: from the VIP and the
            // same port.
            let mut r = Vec::new();
            PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 11], INT_MAC.0)
                .ipv4([198, 19, 0, 11], c, 64)
                .tcp(port, sport, 5000, 65535)
                .syn()
                .ack(1001)
                .write(&mut r, b"")
                .unwrap();
            assert_eq!(l.workers[1].process(&mut r, 1, 1), Verdict::Tx(0));
            let p = SlicedPacket::from_ethernet(&r).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
                panic!()
            };
            assert_eq!(ip.header().source(), VIP);
            let h = ip.header().to_header();
            let Some(TransportSlice::Tcp(t)) = &p.transport else {
                panic!()
            };
            assert_eq!((t.source_port(), t.destination_port()), (port, sport));
            assert_eq!(
                t.checksum(),
                t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap()
            );
        }
        assert_eq!(l.templates(1).len(), 1);
        assert_eq!(l.count(Counter::FwdNatReply), 2);
    }
}
