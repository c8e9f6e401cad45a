//! The SYN-flood defence for IPv6 DR and tunnel connections: IPv4's
//! (`pipeline::flood`, engaged by the same [`FloodGuard`]) over the
//! worker's IPv6 table. The guard watches the fuller of the IPv4 and IPv6
//! tables (`Worker::flood_observe`), so a flood of either family engages it
//! for both: the short SYN_RECV timeout applies to every new half-open
//! connection of the worker.
//!
//! When a new IPv6 flow finds no room, while the defence is engaged:
//! 1. a SYN evicts the oldest half-open entry of its probe windows
//!    (`conn_embryonic_evicted`), never an established one;
//! 2. what still finds no room — and, on a service with a consistent-hash
//!    scheduler (sh, mh), a mid-flow segment that misses — is forwarded by
//!    the hash without an entry (`forwarded_stateless`): every packet of a
//!    client reaches the same real server.
//!
//! NAT66 connections live in the shared NAT66 table (`nat.rs`), which
//! refuses new ones when full (`drop_conn_table_full`; NAT cannot forward
//! without an entry). A refusal engages the defence (`forward.rs`), so new
//! half-open connections get the short timeout; evicting the table's
//! half-open entries is not done yet.
//!
//! [`FloodGuard`]: crate::conntrack::FloodGuard

use crate::config::Forward;
use crate::conntrack::{ConnKey6, Probe, Tick};
use crate::counters::Counter;
use crate::wire::ipv4::PROTO_TCP;
use crate::wire::TcpFlags;

use super::super::{forget, Worker};

/// Where a new IPv6 flow goes when its probe windows were full.
pub(super) enum Room6 {
    /// A slot of the table, freed by evicting a half-open entry.
    Slot(usize),
    /// No entry: forward to real server `.0` by the consistent hash.
    Stateless(u32),
}

impl Worker {
    /// A new IPv6 flow (or a segment of an unknown one) found no room in
    /// the worker's IPv6 table.
    #[cold]
    #[inline(never)]
    pub(super) fn no_room6(
        &mut self,
        key: &ConnKey6,
        hash: u64,
        svc_idx: usize,
        flags: TcpFlags,
        now: Tick,
    ) -> Result<Room6, Counter> {
        self.flood_pressure(now);
        let is_tcp = key.proto == PROTO_TCP;
        let refused = if is_tcp && !flags.syn() {
            Counter::DropTcpNoConn
        } else {
            Counter::DropConnTableFull
        };
        if !self.flood.engaged() {
            // `syn_flood.mode: Off`: refuse, as before the defence.
            return Err(refused);
        }
        if is_tcp && flags.syn() {
            if let Some(slot) = self.evict_embryonic6(key, hash, now) {
                return Ok(Room6::Slot(slot));
            }
        }
        if self.snap.services[svc_idx].consistent_hash {
            return self.stateless6(key, svc_idx, now).map(Room6::Stateless);
        }
        Err(refused)
    }

    /// Whether a TCP segment without SYN that misses the IPv6 table (and
    /// is not adopted by `sloppy_tcp` or ECMP mode) is forwarded without an
    /// entry: on a consistent-hash service while the defence is engaged,
    /// as IPv4 does.
    #[inline]
    pub(super) fn stateless_untracked6(&self, svc_idx: usize) -> bool {
        self.snap.services[svc_idx].consistent_hash && self.flood.engaged()
    }

    /// The real server for a packet forwarded without an entry: the
    /// scheduler's (consistent-hash) choice, or the client's template.
    pub(super) fn stateless6(
        &mut self,
        key: &ConnKey6,
        svc_idx: usize,
        now: Tick,
    ) -> Result<u32, Counter> {
        let i = self
            .pick_real6(key, svc_idx, now)
            .ok_or(Counter::DropNoRealServer)?;
        let r = &self.snap.services[svc_idx].reals[i];
        if r.forward == Forward::Nat {
            // NAT rewrites replies: it cannot work without an entry.
            return Err(Counter::DropConnTableFull);
        }
        Ok(r.id)
    }

    /// Evict the oldest half-open entry of `key`'s probe windows and
    /// return the slot `key` now has, if any.
    fn evict_embryonic6(&mut self, key: &ConnKey6, hash: u64, now: Tick) -> Option<usize> {
        let v6 = self.v6.as_mut()?;
        let (_, old) = v6.table.evict_embryonic(hash, now)?;
        let probe = v6.table.probe(key, hash, now);
        forget(self.counts(), &old);
        self.stats.count(Counter::ConnEmbryonicEvicted);
        match probe {
            Probe::Vacant { slot, evicted } => {
                if let Some(o) = evicted {
                    forget(self.counts(), &o);
                }
                Some(slot)
            }
            Probe::Hit(_) | Probe::Full => None,
        }
    }
}
