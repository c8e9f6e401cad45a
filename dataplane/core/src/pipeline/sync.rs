//! Connection-state sync in the packet path (see `conntrack::sync` for the
//! records and their format).
//!
//! * **Sender** (the master): a worker queues a record for every DR/tunnel
//!   connection it creates, every change of a connection's TCP state, and
//!   every persistence template it creates, into its own bounded queue
//!   (no lock, no shared counter; a full queue is counted
//!   `sync_queue_full`). The sync thread batches and sends them.
//! * **Receiver** (the backup): the sync thread stores each connection in
//!   the shared table under a sync key ([`EntryKind::Synced`]) with flag
//!   [`EntryFlags::SYNCED`], and each template as a template. After a failover, a
//!   worker that misses a flow in its own table with a packet that cannot
//!   start a connection (TCP without SYN; any UDP) looks for a synced
//!   entry and adopts it: the connection continues to the same real
//!   server (`sync_adopted`). Templates are used as the master's were.
//!
//! * **NAT connections** already live in the shared table: the receiver
//!   stores them there directly (request and reply entries, flagged
//!   [`EntryFlags::SYNCED`] so that they are not counted in ActiveConn/InActConn), with
//!   their client's MAC, and the new master's workers find them as their
//!   own. Records go out on creation and on each TCP state change.
//!
//! Only misses pay: the hit path is unchanged.

use super::nat::{reply_key, rs_port};
use super::persist::service_template_key;
use super::snapshot::Snapshot;
use super::sync_store;
pub use super::sync_store::ApplyError;
use super::Worker;
use crate::conntrack::keyspace::{EntryFlags, EntryKind};
use crate::conntrack::shared::SharedConnTable;
pub use crate::conntrack::sync::SyncQueue;
use crate::conntrack::sync::{SyncKind, SyncRecord};
use crate::conntrack::{Conn, ConnKey, ConnState, Tick};
use crate::counters::Counter;
use crate::neigh::ClientMacs;
use crate::wire::MacAddr;

/// The shared-table key of a synced connection.
#[inline]
pub fn sync_key(key: &ConnKey) -> ConnKey {
    EntryKind::Synced.mark(*key)
}

/// Store a received record in the shared table (the receiver's side).
/// NAT connections are stored as live NAT connections (request and reply
/// entries, flagged [`EntryFlags::SYNCED`]: not counted in ActiveConn/InActConn), and
/// their client's MAC is remembered in `clients`.
pub fn apply(
    table: &SharedConnTable,
    clients: &ClientMacs,
    snap: &Snapshot,
    r: &SyncRecord,
    now: Tick,
) -> Result<(), ApplyError> {
    let vip = u32::from(r.vip);
    let svc_idx = snap
        .service(r.proto, vip, r.vport)
        .ok_or(ApplyError::NoService)?;
    let svc = &snap.services[svc_idx];
    let real = svc
        .reals
        .iter()
        .find(|x| x.addr == r.rs_ip && x.port == r.rs_port)
        .ok_or(ApplyError::NoRealServer)?;
    let nat_here = real.forward == crate::config::Forward::Nat;
    match r.kind {
        SyncKind::NatConn if !nat_here => return Err(ApplyError::KindMismatch),
        SyncKind::Conn if nat_here => return Err(ApplyError::KindMismatch),
        _ => {}
    }
    let rs = real.id;
    if r.kind == SyncKind::NatConn {
        return apply_nat(table, clients, svc.id, rs, r, now);
    }
    let (key, flags) = match r.kind {
        SyncKind::NatConn => unreachable!("handled above"),
        SyncKind::Conn => (
            sync_key(&ConnKey {
                proto: r.proto,
                client_ip: u32::from(r.client_ip),
                client_port: r.client_port,
                vip,
                vport: r.vport,
            }),
            EntryFlags::SYNCED,
        ),
        SyncKind::Template => (
            // The record carries the masked client already; the key is the
            // service's (a group's by its mark).
            service_template_key(svc, r.proto, u32::from(r.client_ip), 32),
            EntryFlags::TEMPLATE,
        ),
    };
    sync_store::replace(table, &key, rs, r.timeout_ms, r.state, flags, now)
}

/// Store a synced NAT connection: its request entry (real server `rs`)
/// and its reply entry (service `svc_id`), replacing older copies.
fn apply_nat(
    table: &SharedConnTable,
    clients: &ClientMacs,
    svc_id: u32,
    rs: u32,
    r: &SyncRecord,
    now: Tick,
) -> Result<(), ApplyError> {
    let key = ConnKey {
        proto: r.proto,
        client_ip: u32::from(r.client_ip),
        client_port: r.client_port,
        vip: u32::from(r.vip),
        vport: r.vport,
    };
    let rk = reply_key(
        r.proto,
        u32::from(r.rs_ip),
        rs_port(r.rs_port, r.vport),
        key.client_ip,
        key.client_port,
    );
    if let Some(mac) = sync_store::store_nat(table, &key, &rk, rs, svc_id, r, now)? {
        clients.learn(key.client_ip, mac, u16::from(r.client_via_port));
    }
    Ok(())
}

impl Worker {
    /// Send records of this worker's connections and templates to `queue`
    /// (while not in VRRP standby).
    pub fn with_sync(mut self, queue: SyncQueue) -> Worker {
        self.sync_out = Some(queue);
        self
    }

    /// Queue a record, if syncing and master.
    #[inline]
    pub(super) fn sync_record(&self, r: SyncRecord) {
        let Some(q) = self.sync_out.as_ref() else {
            return;
        };
        if self.standby {
            return;
        }
        if q.push(r).is_err() {
            self.stats.count(Counter::SyncQueueFull);
        }
    }

    /// Queue a record of the connection `key` → real server `rs`.
    #[inline]
    pub(super) fn sync_conn(&self, key: &ConnKey, rs: u32, state: ConnState) {
        if self.sync_out.is_some() && !self.standby {
            self.sync_connection(SyncKind::Conn, key, rs, state, (MacAddr::ZERO, 0));
        }
    }

    /// Queue a record of the NAT connection `key` → real server `rs`, with
    /// where its client's packets come from.
    pub(super) fn sync_nat(&self, key: &ConnKey, rs: u32, state: ConnState) {
        if self.sync_out.is_none() || self.standby {
            return;
        }
        let Some(nat) = self.nat.as_ref() else {
            return;
        };
        let client = nat.clients.get(key.client_ip).unwrap_or((MacAddr::ZERO, 0));
        self.sync_connection(SyncKind::NatConn, key, rs, state, client);
    }

    /// Queue a connection record; `client` is where the client's packets
    /// come from (MAC, port index), for NAT.
    fn sync_connection(
        &self,
        kind: SyncKind,
        key: &ConnKey,
        rs: u32,
        state: ConnState,
        client: (MacAddr, u16),
    ) {
        let Some(route) = self.snap.route(rs) else {
            return;
        };
        self.sync_record(SyncRecord {
            kind,
            proto: key.proto,
            state: state as u8,
            client_ip: key.client_ip.into(),
            client_port: key.client_port,
            vip: key.vip.into(),
            vport: key.vport,
            rs_ip: route.addr,
            // As configured (0 in a service on all ports): what identifies
            // the real server in the service.
            rs_port: route.rport,
            timeout_ms: state.timeout_ms(&self.snap.timeouts),
            client_mac: client.0 .0,
            client_via_port: client.1 as u8,
        });
    }

    /// After a miss in this worker's table: adopt the synced connection
    /// `key` into `slot`, if the peer sent one whose real server is still
    /// in the service. Returns its real server id.
    pub(super) fn adopt_synced(
        &mut self,
        key: &ConnKey,
        svc_idx: usize,
        slot: usize,
        now: Tick,
    ) -> Option<u32> {
        let nat = self.nat.as_ref()?;
        let sk = sync_key(key);
        let e = nat.table.lookup(&sk, nat.table.hash(&sk), now)?;
        nat.table.remove(&e);
        let svc = &self.snap.services[svc_idx];
        if !svc.reals.iter().any(|r| r.id == e.rs) {
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
        self.table.insert_at(slot, conn);
        self.stats.count(Counter::SyncAdopted);
        Some(e.rs)
    }
}
