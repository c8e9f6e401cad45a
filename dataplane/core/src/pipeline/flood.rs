//! New flows that find no room, and TCP segments of flows the director does
//! not know: the SYN-flood defence ([`crate::conntrack::flood`] decides
//! when it is engaged) and `sloppy_tcp`.
//!
//! Everything here is off the established hit path: it runs for new flows,
//! and then only when the table is under pressure or a segment misses.
//!
//! While the defence is engaged a worker:
//! 1. gives new half-open connections the short `syn_flood.syn_recv_timeout`
//!    (its timeouts are recomputed when the state changes);
//! 2. lets a SYN that finds no room evict the oldest half-open entry of its
//!    two probe windows (`conn_embryonic_evicted`): the flood's own entries
//!    make room for newcomers, established connections are never touched;
//! 3. for services whose scheduler is a consistent hash (sh, mh), forwards
//!    what still finds no room — and mid-flow segments that miss — by the
//!    hash without an entry (`forwarded_stateless`), as Katran does when its
//!    LRU is full: every packet of a client reaches the same real server.
//!
//! A service in ECMP mode (`services[].ecmp`, scheduler mh) adopts a TCP
//! segment that misses the table and is not a SYN by the consistent hash,
//! as Katran does on a miss: see [`Worker::ecmp_segment`].

use super::parsed::NewPacket;
use super::{forget, Action, NewConn, Verdict, Worker};
use crate::config::Forward;
use crate::conntrack::{ConnKey, FloodChange, Probe, TableKey, Tick};
use crate::counters::Counter;

impl Worker {
    /// Schedule a new connection for `key` into the free `slot` of this
    /// worker's table (or the shared table, for NAT) and forward the packet.
    pub(super) fn create_and_forward(
        &mut self,
        frame: &mut [u8],
        key: &ConnKey,
        svc_idx: usize,
        slot: usize,
        pkt: &NewPacket,
        now: Tick,
    ) -> Action {
        let is_tcp = key.proto == crate::wire::PROTO_TCP;
        match self.new_conn(key, svc_idx, slot, is_tcp, pkt.flags, now) {
            Ok(NewConn::Local(rs)) => self.forward(frame, rs, svc_idx, &key.words()),
            Ok(NewConn::Nat(rs)) => {
                let a = self.nat_create(
                    frame,
                    key,
                    svc_idx,
                    rs,
                    pkt.l4,
                    pkt.l4_end,
                    pkt.flags,
                    pkt.rx_port,
                    now,
                );
                if a == Action::Done(Verdict::Drop(Counter::DropConnTableFull)) {
                    // The shared NAT table is full: short half-open
                    // timeouts from now on.
                    self.flood_pressure(now);
                }
                a
            }
            Err(v) => v.into(),
        }
    }

    /// A TCP segment without SYN for a flow this worker does not track
    /// (`slot`: where its entry would go, if there is room).
    #[cold]
    #[inline(never)]
    pub(super) fn untracked_segment(
        &mut self,
        frame: &mut [u8],
        key: &ConnKey,
        svc_idx: usize,
        slot: Option<usize>,
        pkt: &NewPacket,
        now: Tick,
    ) -> Action {
        let svc = &self.snap.services[svc_idx];
        let (sloppy, hashed) = (svc.sloppy_tcp, svc.consistent_hash);
        if svc.ecmp {
            return self.ecmp_segment(frame, key, svc_idx, slot, pkt, now);
        }
        if let (true, Some(slot)) = (sloppy && !pkt.flags.rst(), slot) {
            // IPVS's sloppy_tcp: after a restart, established clients go
            // on (with sh/mh to the same real server).
            self.stats.count(Counter::SloppyAdopted);
            return self.create_and_forward(frame, key, svc_idx, slot, pkt, now);
        }
        if hashed && self.flood.engaged() {
            return self.forward_stateless(frame, key, svc_idx, now);
        }
        Verdict::Drop(Counter::DropTcpNoConn).into()
    }

    /// ECMP mode: a mid-flow segment of a connection this director does
    /// not know, most likely one the routers moved here from another
    /// director. The service schedules by mh, so the hash gives the real
    /// server the connection's SYN got wherever it arrived (unless the set
    /// of real servers changed since). The connection is created
    /// (ESTABLISHED, or FIN_WAIT for a FIN: IPVS's input-only state from
    /// ESTABLISHED) so its next segments hit the table. A RST is forwarded
    /// by the hash without an entry: it ends the connection, and an entry
    /// would only linger in CLOSE. With no room in the table, the segment
    /// is forwarded by the hash without an entry too.
    fn ecmp_segment(
        &mut self,
        frame: &mut [u8],
        key: &ConnKey,
        svc_idx: usize,
        slot: Option<usize>,
        pkt: &NewPacket,
        now: Tick,
    ) -> Action {
        match slot {
            Some(slot) if !pkt.flags.rst() => {
                self.stats.count(Counter::ConnAdoptedMidflow);
                self.create_and_forward(frame, key, svc_idx, slot, pkt, now)
            }
            _ => self.forward_stateless(frame, key, svc_idx, now),
        }
    }

    /// A new flow (or a segment of an unknown one) whose probe windows hold
    /// only live entries, or the table is at its capacity.
    #[cold]
    #[inline(never)]
    pub(super) fn no_room(
        &mut self,
        frame: &mut [u8],
        key: &ConnKey,
        hash: u64,
        svc_idx: usize,
        pkt: &NewPacket,
        now: Tick,
    ) -> Action {
        self.flood_pressure(now);
        let is_tcp = key.proto == crate::wire::PROTO_TCP;
        if !self.flood.engaged() {
            // `syn_flood.mode: Off`: refuse, as before the defence.
            return Verdict::Drop(if is_tcp && !pkt.flags.syn() {
                Counter::DropTcpNoConn
            } else {
                Counter::DropConnTableFull
            })
            .into();
        }
        if is_tcp && pkt.flags.syn() {
            if let Some((_, old)) = self.table.evict_embryonic(hash, now) {
                forget(self.counts(), &old);
                self.stats.count(Counter::ConnEmbryonicEvicted);
                // The freed slot, or (capacity was the limit) a free one of
                // the key's windows.
                if let Probe::Vacant { slot, evicted } = self.table.probe(key, hash, now) {
                    if let Some(old) = evicted {
                        forget(self.counts(), &old);
                    }
                    return self.create_and_forward(frame, key, svc_idx, slot, pkt, now);
                }
            }
        }
        if is_tcp && !pkt.flags.syn() {
            return self.untracked_segment(frame, key, svc_idx, None, pkt, now);
        }
        if self.snap.services[svc_idx].consistent_hash {
            return self.forward_stateless(frame, key, svc_idx, now);
        }
        Verdict::Drop(Counter::DropConnTableFull).into()
    }

    /// Forward by the service's consistent hash, without a table entry.
    fn forward_stateless(
        &mut self,
        frame: &mut [u8],
        key: &ConnKey,
        svc_idx: usize,
        now: Tick,
    ) -> Action {
        let Some(i) = self.pick_real(key, svc_idx, now) else {
            return Verdict::Drop(Counter::DropNoRealServer).into();
        };
        let r = &self.snap.services[svc_idx].reals[i];
        if r.forward == Forward::Nat {
            // NAT rewrites replies: it cannot work without an entry.
            return Verdict::Drop(Counter::DropConnTableFull).into();
        }
        let rs = r.id;
        let a = self.forward(frame, rs, svc_idx, &key.words());
        if !matches!(a, Action::Done(Verdict::Drop(_))) {
            self.stats.count(Counter::FwdStateless);
        }
        a
    }

    /// Re-evaluate the defence against the table's fill (housekeeping).
    #[inline]
    pub(super) fn flood_observe(&mut self, now: Tick) {
        // The fullest of this worker's table, its IPv6 table and the
        // shared NAT and NAT66 tables.
        let (mut len, mut cap) = (self.table.len(), self.table.capacity());
        let nat = self
            .nat
            .as_ref()
            .map(|n| (n.table.len(), n.table.capacity()));
        let nat6 = self
            .nat6
            .as_ref()
            .map(|n| (n.table.len(), n.table.capacity()));
        let v6 = self
            .v6
            .as_ref()
            .map(|v| (v.table.len(), v.table.capacity()));
        for (l, c) in nat.into_iter().chain(nat6).chain(v6) {
            if l.saturating_mul(cap) > len.saturating_mul(c) {
                (len, cap) = (l, c);
            }
        }
        if let Some(c) = self.flood.observe(&self.snap.flood, len, cap, now) {
            self.flood_changed(c);
        }
    }

    /// A new flow found no room.
    pub(super) fn flood_pressure(&mut self, now: Tick) {
        if let Some(c) = self.flood.pressure(&self.snap.flood, now) {
            self.flood_changed(c);
        }
    }

    #[cold]
    fn flood_changed(&mut self, c: FloodChange) {
        let engaged = c == FloodChange::Engaged;
        self.timeouts = self.snap.flood.timeouts(&self.snap.timeouts, engaged);
        self.stats
            .flood_engaged
            .store(engaged as u64, std::sync::atomic::Ordering::Relaxed);
        if engaged {
            self.stats.count(Counter::FloodEngaged);
        }
    }

    /// Whether this worker's SYN-flood defence is engaged.
    pub fn flood_engaged(&self) -> bool {
        self.flood.engaged()
    }
}
