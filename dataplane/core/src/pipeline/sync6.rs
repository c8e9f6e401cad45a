//! Connection sync for IPv6 connections (see [`super::sync`] for IPv4's,
//! whose design this follows, and `conntrack::sync` for the records).
//!
//! * **Sender** (the master): a worker queues a [`SyncRecord6`] for every
//!   IPv6 DR or tunnel connection it creates and every change of its TCP
//!   state, into
//!   its own bounded IPv6 queue (tunnel connections too: the table does
//!   not tell the methods apart; no lock; a full queue is counted
//!   `sync_queue_full`).
//! * **Receiver** (the backup): the sync thread stores each record in a
//!   shared IPv6 table ([`SharedConnTable<ConnKey6>`], its own: the NAT
//!   table is IPv4's) under a sync key ([`EntryKind::Synced`]). After a
//!   failover, a worker that misses an IPv6 flow with a packet that cannot
//!   start a connection (TCP without SYN; any UDP) adopts the synced entry
//!   into its IPv6 table: the connection keeps its real server
//!   (`sync_adopted`).
//!
//! * **Persistence templates**: a worker queues a record (kind
//!   `Template`: the masked client, the service's port) when it creates a
//!   template in its own IPv6 template table. The receiver stores it in
//!   the same shared table under a template key ([`EntryKind::Template`],
//!   flag [`EntryFlags::TEMPLATE`]). A backup worker that has no template
//!   for a new connection's client network looks there before scheduling:
//!   it copies the peer's template into its own table and sends the client
//!   where the master did (`persist_template_used`). Like IPv4's, a
//!   template is synced when created, not when refreshed.
//!
//! * **NAT66 connections** (kind `NatConn`) follow IPv4 NAT's: the master
//!   queues a record when a worker creates one and on each change of its
//!   TCP state, with the client's MAC and the port its packets came in
//!   on. The receiver stores the connection directly in its own shared
//!   NAT66 table under both keys (request and reply, flagged
//!   [`EntryFlags::SYNCED`]: not counted in ActiveConn/InActConn) and
//!   remembers the client's MAC in [`ClientMacs6`]. After a failover the
//!   new master's workers find it from either direction (a client's
//!   request or a real server's reply) as one of their own; nothing is
//!   adopted into a worker's table. A record for a real server not in the
//!   service here is refused (`NoRealServer`), as is one whose forwarding
//!   method differs (`KindMismatch`).

use std::sync::Arc;

use super::nat::rs_port;
use super::snapshot::Snapshot;
use super::sync_store;
use super::sync_store::ApplyError;
use super::v6::{reply_key6, ClientMacs6};
use super::Worker;
use crate::config::Forward;
use crate::conntrack::keyspace::{EntryFlags, EntryKind};
use crate::conntrack::shared::SharedConnTable;
use crate::conntrack::sync::{SyncKind, SyncQueue6, SyncRecord6};
use crate::conntrack::{Conn, ConnKey6, ConnState, Tick};
use crate::counters::Counter;
use crate::wire::MacAddr;

/// Where a backup stores the peer's NAT66 connections: the director's
/// shared NAT66 table and its clients' return paths.
#[derive(Clone, Copy)]
pub struct Nat6Sink<'a> {
    pub table: &'a SharedConnTable<ConnKey6>,
    pub clients: &'a ClientMacs6,
}

/// A worker's IPv6 sync: where its records go, and where the peer's wait.
pub(crate) struct Sync6 {
    out: SyncQueue6,
    synced: Arc<SharedConnTable<ConnKey6>>,
}

/// The shared-table key of a synced IPv6 connection.
#[inline]
pub fn sync_key6(key: &ConnKey6) -> ConnKey6 {
    EntryKind::Synced.mark(*key)
}

/// The shared-table key of a synced IPv6 persistence template: the
/// template's own key (masked client, port 0, VIP, service port), marked.
#[inline]
pub fn synced_template_key6(template: &ConnKey6) -> ConnKey6 {
    EntryKind::Template.mark(*template)
}

/// Store a received IPv6 record (the receiver's side): DR and tunnel
/// connections (kind `Conn`) and persistence templates in `table`, NAT66
/// connections (kind `NatConn`) in `nat`'s table.
pub fn apply6(
    table: &SharedConnTable<ConnKey6>,
    nat: Nat6Sink<'_>,
    snap: &Snapshot,
    r: &SyncRecord6,
    now: Tick,
) -> Result<(), ApplyError> {
    let vip = u128::from(r.vip);
    let svc_idx = snap
        .service6(r.proto, vip, r.vport)
        .ok_or(ApplyError::NoService)?;
    let svc = &snap.services[svc_idx];
    let real = svc
        .reals
        .iter()
        .find(|x| x.addr == std::net::IpAddr::V6(r.rs_ip) && x.port == r.rs_port)
        .ok_or(ApplyError::NoRealServer)?;
    let (key, flags) = match r.kind {
        SyncKind::Conn if real.forward != Forward::Nat => (
            sync_key6(&ConnKey6 {
                proto: r.proto,
                client_ip: u128::from(r.client_ip),
                client_port: r.client_port,
                vip,
                vport: r.vport,
            }),
            EntryFlags::SYNCED,
        ),
        // The record carries the masked client; the key is the service's
        // (its port: 0 for a service on all ports), as `forward.rs` keys
        // its templates.
        SyncKind::Template => (
            synced_template_key6(&ConnKey6 {
                proto: r.proto,
                client_ip: u128::from(r.client_ip),
                client_port: 0,
                vip,
                vport: svc.port,
            }),
            EntryFlags::TEMPLATE,
        ),
        SyncKind::NatConn if real.forward == Forward::Nat => {
            return apply_nat6(nat, svc.id, real.id, r, now)
        }
        SyncKind::Conn | SyncKind::NatConn => return Err(ApplyError::KindMismatch),
    };
    sync_store::replace(table, &key, real.id, r.timeout_ms, r.state, flags, now)
}

/// Store a synced NAT66 connection: its request entry (real server `rs`)
/// and its reply entry (service `svc_id`), replacing older copies, and
/// its client's return path.
fn apply_nat6(
    nat: Nat6Sink<'_>,
    svc_id: u32,
    rs: u32,
    r: &SyncRecord6,
    now: Tick,
) -> Result<(), ApplyError> {
    let key = ConnKey6 {
        proto: r.proto,
        client_ip: u128::from(r.client_ip),
        client_port: r.client_port,
        vip: u128::from(r.vip),
        vport: r.vport,
    };
    let rk = reply_key6(
        r.proto,
        u128::from(r.rs_ip),
        rs_port(r.rs_port, r.vport),
        key.client_ip,
        key.client_port,
    );
    if let Some(mac) = sync_store::store_nat(nat.table, &key, &rk, rs, svc_id, r, now)? {
        nat.clients
            .learn(key.client_ip, mac, u16::from(r.client_via_port));
    }
    Ok(())
}

impl Worker {
    /// Sync IPv6 connections: send this worker's records to `out` (while
    /// not in VRRP standby), adopt the peer's from `synced`.
    pub fn with_sync6(mut self, out: SyncQueue6, synced: Arc<SharedConnTable<ConnKey6>>) -> Worker {
        self.sync6 = Some(Box::new(Sync6 { out, synced }));
        self
    }

    /// Queue a record of the IPv6 connection `key` → real server `rs` of
    /// service `svc_idx`, if syncing and master.
    #[cold]
    pub(super) fn sync_conn6(&self, key: &ConnKey6, rs: u32, state: ConnState, svc_idx: usize) {
        let Some(s) = self.sync6.as_ref() else {
            return;
        };
        if self.standby {
            return;
        }
        let Some(real) = self.snap.services[svc_idx]
            .reals
            .iter()
            .find(|r| r.id == rs)
        else {
            return;
        };
        let std::net::IpAddr::V6(rs_ip) = real.addr else {
            return;
        };
        let r = SyncRecord6 {
            kind: SyncKind::Conn,
            proto: key.proto,
            state: state as u8,
            client_ip: key.client_ip.into(),
            client_port: key.client_port,
            vip: key.vip.into(),
            vport: key.vport,
            rs_ip,
            rs_port: real.port,
            timeout_ms: state.timeout_ms(&self.snap.timeouts),
            client_mac: [0; 6],
            client_via_port: 0,
        };
        if s.out.push(r).is_err() {
            self.stats.count(Counter::SyncQueueFull);
        }
    }

    /// Queue a record of the NAT66 connection `key` → real server `rs`, with
    /// where its client's packets come from, if syncing and master.
    #[cold]
    pub(super) fn sync_nat6(&self, key: &ConnKey6, rs: u32, state: ConnState) {
        let Some(s) = self.sync6.as_ref() else {
            return;
        };
        if self.standby {
            return;
        }
        let (Some(route), Some(rs_ip)) = (self.snap.route_ref(rs), self.snap.rs_addr6(rs)) else {
            return;
        };
        let (mac, via) = self
            .nat6
            .as_ref()
            .and_then(|n| n.clients.get(key.client_ip))
            .unwrap_or((MacAddr::ZERO, 0));
        let r = SyncRecord6 {
            kind: SyncKind::NatConn,
            proto: key.proto,
            state: state as u8,
            client_ip: key.client_ip.into(),
            client_port: key.client_port,
            vip: key.vip.into(),
            vport: key.vport,
            rs_ip,
            // As configured (0 in a service on all ports): what identifies
            // the real server in the service.
            rs_port: route.rport,
            timeout_ms: state.timeout_ms(&self.snap.timeouts),
            client_mac: mac.0,
            client_via_port: via as u8,
        };
        if s.out.push(r).is_err() {
            self.stats.count(Counter::SyncQueueFull);
        }
    }

    /// Queue a record of the persistence template `tk` (masked client,
    /// port 0, VIP, service port) → real server `rs`, living `timeout_ms`,
    /// if syncing and master.
    #[cold]
    pub(super) fn sync_template6(&self, tk: &ConnKey6, rs: u32, svc_idx: usize, timeout_ms: u32) {
        let Some(s) = self.sync6.as_ref() else {
            return;
        };
        if self.standby {
            return;
        }
        let Some(real) = self.snap.services[svc_idx]
            .reals
            .iter()
            .find(|r| r.id == rs)
        else {
            return;
        };
        let std::net::IpAddr::V6(rs_ip) = real.addr else {
            return;
        };
        let r = SyncRecord6 {
            kind: SyncKind::Template,
            proto: tk.proto,
            state: ConnState::None as u8,
            client_ip: tk.client_ip.into(),
            client_port: 0,
            vip: tk.vip.into(),
            vport: tk.vport,
            rs_ip,
            rs_port: real.port,
            timeout_ms,
            client_mac: [0; 6],
            client_via_port: 0,
        };
        if s.out.push(r).is_err() {
            self.stats.count(Counter::SyncQueueFull);
        }
    }

    /// With no template of its own for `tk`: the peer's synced template,
    /// if it sent one whose real server is in service here. Returns the
    /// server's index in the service's `reals` and its id. The synced
    /// entry stays for the other workers (it expires by itself).
    #[cold]
    pub(super) fn synced_template6(
        &self,
        tk: &ConnKey6,
        svc_idx: usize,
        now: Tick,
    ) -> Option<(usize, u32)> {
        let s = self.sync6.as_ref()?;
        let sk = synced_template_key6(tk);
        let e = s.synced.lookup(&sk, s.synced.hash(&sk), now)?;
        // A server removed by its health check keeps no clients (as for
        // the worker's own templates).
        let i = self.snap.services[svc_idx]
            .reals
            .iter()
            .position(|r| r.id == e.rs && r.up)?;
        Some((i, e.rs))
    }

    /// After a miss in this worker's IPv6 table: adopt the synced
    /// connection `key` into `slot`, if the peer sent one whose real
    /// server is still in the service. Returns its real server id.
    pub(super) fn adopt_synced6(
        &mut self,
        key: &ConnKey6,
        svc_idx: usize,
        slot: usize,
        now: Tick,
    ) -> Option<u32> {
        let s = self.sync6.as_ref()?;
        let sk = sync_key6(key);
        let e = s.synced.lookup(&sk, s.synced.hash(&sk), now)?;
        s.synced.remove(&e);
        if !self.snap.services[svc_idx]
            .reals
            .iter()
            .any(|r| r.id == e.rs)
        {
            return None;
        }
        let state = ConnState::from_u8(e.state);
        let expires = now.wrapping_add(state.timeout_ms(&self.snap.timeouts));
        let mut conn = Conn::new(key, e.rs, e.state, now, expires);
        conn.active = state.is_active();
        if conn.active {
            self.conn_counts(e.rs, 1, 0);
        } else {
            self.conn_counts(e.rs, 0, 1);
        }
        let v6 = self.v6.as_mut()?;
        v6.table.insert_at(slot, conn);
        self.stats.count(Counter::SyncAdopted);
        Some(e.rs)
    }
}
