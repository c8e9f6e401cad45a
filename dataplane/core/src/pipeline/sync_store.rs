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
use crate::conntrack::keyspace::EntryFlags;
use crate::conntrack::shared::{Entry, SharedConnTable, PROBE_BUCKETS};
use crate::conntrack::sync::SyncRecordOf;
use crate::conntrack::{ConnState, TableKey, Tick};
use crate::wire::MacAddr;

/// Why a received record was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("no such service here")]
    NoService,
    #[error("no such real server in the service here")]
    NoRealServer,
    #[error("shared table full")]
    Full,
    /// A NAT record for a real server this director forwards to by DR or
    /// tunnel, or the reverse (the two directors' configurations differ):
    /// storing it would translate traffic that must not be, or not
    /// translate traffic that must.
    #[error("the record's kind does not match the real server's forwarding method here")]
    KindMismatch,
}

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

/// Store the synced NAT connection `r` under both its keys — `request`
/// (client → VIP, value: real server `rs`) and `reply` (real server →
/// client, value: service `svc_id`) — flagged [`EntryFlags::SYNCED`] (not
/// counted here), replacing older copies. Returns the client's MAC for the
/// caller to remember as the replies' way back, if the record's can be
/// trusted (unicast, not null).
///
/// Nothing is stored when the connection is this director's own
/// ([`own_nat_entry`]: after a failover and back, it keeps its
/// accounting).
pub(super) fn store_nat<K: TableKey, A>(
    table: &SharedConnTable<K>,
    request: &K,
    reply: &K,
    rs: u32,
    svc_id: u32,
    r: &SyncRecordOf<A>,
    now: Tick,
) -> Result<Option<MacAddr>, ApplyError> {
    if own_nat_entry(table, request) {
        return Ok(None);
    }
    for k in [request, reply] {
        let h = table.hash(k);
        if let Some(old) = table.lookup(k, h, now) {
            table.remove(&old);
        }
    }
    let active = EntryFlags::active_if(ConnState::from_u8(r.state).is_active());
    let expires = now.wrapping_add(r.timeout_ms);
    // Expired entries our workers count stay for their sweep to end.
    table
        .insert_keeping(
            request,
            table.hash(request),
            rs,
            expires,
            r.state,
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
            reply,
            table.hash(reply),
            svc_id,
            expires.wrapping_add(REFRESH_SLACK_MS * 2),
            0,
            EntryFlags::REPLY | EntryFlags::SYNCED,
            now,
            Entry::is_counted,
            |_| {},
        )
        .map_err(|_| ApplyError::Full)?;
    // A record naming a group or null MAC is not trusted for replies.
    let mac = MacAddr(r.client_mac);
    Ok((mac.is_unicast() && r.client_mac != [0; 6]).then_some(mac))
}
