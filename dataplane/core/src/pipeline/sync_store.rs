//! Storing a peer's sync records in a shared table, for either address
//! family: what `sync.rs` (IPv4) and `sync6.rs` (IPv6) do alike once they
//! have turned a record into table keys. The two differ in how a record
//! becomes keys (service lookup, template key, reply key) and where a
//! client's MAC is remembered; the storing is one code.
//!
//! The sync thread is not a worker: it never ends an entry a worker counts
//! in ActiveConn/InActConn (`Entry::is_counted`), expired or not, since
//! only the worker that counts an entry can undo its accounting.

use super::nat::REFRESH_SLACK_MS;
use super::sync::ApplyError;
use crate::conntrack::keyspace::EntryFlags;
use crate::conntrack::shared::{Entry, SharedConnTable, PROBE_BUCKETS};
use crate::conntrack::{ConnState, TableKey, Tick};

/// Store `key` → `rs` for `timeout_ms` with `state` and `flags`, replacing
/// a live entry for the same key.
pub(super) fn replace<K: TableKey>(
    table: &SharedConnTable<K>,
    key: &K,
    rs: u32,
    timeout_ms: u32,
    state: u8,
    flags: EntryFlags,
    now: Tick,
) -> Result<(), ApplyError> {
    let hash = table.hash(key);
    if let Some(old) = table.lookup(key, hash, now) {
        table.remove(&old);
    }
    table
        .insert_keeping(
            key,
            hash,
            rs,
            now.wrapping_add(timeout_ms),
            state,
            flags,
            now,
            Entry::is_counted,
            |_| {},
        )
        .map(|_| ())
        .map_err(|_| ApplyError::Full)
}

/// A NAT connection as the receiver stores it: the request key (client →
/// VIP) and the reply key (real server → client).
pub(super) struct NatPair<K> {
    pub request: K,
    pub reply: K,
    /// The real server (the request entry's value).
    pub rs: u32,
    /// The service's id (the reply entry's value).
    pub svc_id: u32,
    pub state: u8,
    pub timeout_ms: u32,
}

/// Whether this director holds its own entry for the NAT connection `key`
/// (one its workers count in ActiveConn/InActConn), live or expired but
/// not yet swept. The peer's record of it is then not stored: only a
/// worker may end an entry it counts, and a second entry for the key would
/// hide or duplicate it.
fn own_nat_entry<K: TableKey>(table: &SharedConnTable<K>, key: &K) -> bool {
    table
        .entries_near(table.hash(key), PROBE_BUCKETS)
        .any(|e| e.key == *key && e.is_counted())
}

/// Store a synced NAT connection under both its keys, flagged
/// [`EntryFlags::SYNCED`] (not counted here), replacing older copies.
/// Returns false, storing nothing, when the connection is this director's
/// own ([`own_nat_entry`]: after a failover and back, it keeps its
/// accounting).
pub(super) fn store_nat_pair<K: TableKey>(
    table: &SharedConnTable<K>,
    p: &NatPair<K>,
    now: Tick,
) -> Result<bool, ApplyError> {
    if own_nat_entry(table, &p.request) {
        return Ok(false);
    }
    for k in [&p.request, &p.reply] {
        let h = table.hash(k);
        if let Some(old) = table.lookup(k, h, now) {
            table.remove(&old);
        }
    }
    let active = EntryFlags::active_if(ConnState::from_u8(p.state).is_active());
    let expires = now.wrapping_add(p.timeout_ms);
    // Expired entries our workers count stay for their sweep to end.
    table
        .insert_keeping(
            &p.request,
            table.hash(&p.request),
            p.rs,
            expires,
            p.state,
            EntryFlags::SYNCED | active,
            now,
            Entry::is_counted,
            |_| {},
        )
        .map_err(|_| ApplyError::Full)?;
    // The reply entry outlives the request entry by the slack the workers
    // give it (nat.rs), so a late reply still finds its connection.
    table
        .insert_keeping(
            &p.reply,
            table.hash(&p.reply),
            p.svc_id,
            expires.wrapping_add(REFRESH_SLACK_MS * 2),
            0,
            EntryFlags::REPLY | EntryFlags::SYNCED,
            now,
            Entry::is_counted,
            |_| {},
        )
        .map_err(|_| ApplyError::Full)?;
    Ok(true)
}
