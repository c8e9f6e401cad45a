//! A burst's per-service packet and byte counts, accumulated in the worker
//! and added to its shared [`WorkerStats`] when the service changes and
//! when the burst ends.
//!
//! The shared counters are atomics other threads read (an add each, behind
//! the `Arc`, the service's id and a bounds check); the tally is plain
//! worker memory. What it holds:
//!
//! - the "in" packets and bytes of one service at a time: a burst's packets
//!   mostly go to one service, so consecutive packets of the same service
//!   (by snapshot index: no lookup of its stable id per packet) add to two
//!   plain integers, and a change of service flushes the run;
//! - the "out" packets and bytes (NAT replies) the same way, by the
//!   service's stable id (what the reply path has in hand).
//!
//! Not tallied, because the direct add is as cheap (measured with
//! callgrind): the per-real-server counters (a burst spreads over the real
//! servers, so a per-server accumulator would cost what the add costs),
//! and the outcome counters such as `forwarded_dr` (the shared add is one
//! `inc` on the counter's address; a tallied one was an add plus a bit in
//! a mask of counters to flush, and for a counter not known at compile
//! time, as on the IPv6 paths, a 128-bit shift: IPv6 DR +12 per packet).
//!
//! **Exactness.** Every entry point that processes frames
//! (`process_planned`, `process_in_burst`, `process_buf`,
//! `process_handed_off`) flushes before it returns, as do
//! `set_snapshot` (the tally's service indices are the snapshot's) and
//! `housekeeping`. Nothing reads the shared counters between those points
//! on this thread, and other threads' reads were never synchronised with a
//! packet: they see a burst's counts at its end, as lbd's scrapes always
//! could.

use std::cell::Cell;

use crate::counters::WorkerStats;

use super::snapshot::Snapshot;

/// No service run in progress.
const NO_SERVICE: usize = usize::MAX;

/// The counts of the burst in progress (cells: the forwarding paths count
/// through `&self`, as they did on the shared counters). In this order
/// (`repr(C)`): a run's packets and bytes are not adjacent, so a packet's
/// two adds stay two adds to memory, not a vector load, add and store
/// (measured with callgrind).
#[repr(C)]
pub(crate) struct Tally {
    /// The run's packets, the service (snapshot index) of the run being
    /// counted, and the run's bytes.
    svc_packets: Cell<u64>,
    svc: Cell<usize>,
    svc_bytes: Cell<u64>,
    /// The same for replies: packets, the service's stable id
    /// (`NO_SERVICE_ID`: none), bytes.
    out_packets: Cell<u64>,
    out_svc: Cell<u32>,
    out_bytes: Cell<u64>,
}

/// No reply run in progress.
const NO_SERVICE_ID: u32 = u32::MAX;

impl Tally {
    pub fn new() -> Tally {
        Tally {
            svc: Cell::new(NO_SERVICE),
            svc_packets: Cell::new(0),
            svc_bytes: Cell::new(0),
            out_svc: Cell::new(NO_SERVICE_ID),
            out_packets: Cell::new(0),
            out_bytes: Cell::new(0),
        }
    }

    /// Count a packet of `len` bytes towards service `svc_idx` (index in
    /// `snap`, which must stay the snapshot in force until the next flush).
    #[inline(always)]
    pub fn service_in(&self, stats: &WorkerStats, snap: &Snapshot, svc_idx: usize, len: usize) {
        if self.svc.get() != svc_idx {
            self.switch_service(stats, snap, svc_idx);
        }
        self.svc_packets.set(self.svc_packets.get() + 1);
        self.svc_bytes.set(self.svc_bytes.get() + len as u64);
    }

    /// A packet of another service than the run's: end the run (out of
    /// line: once per burst on the common path).
    #[inline(never)]
    fn switch_service(&self, stats: &WorkerStats, snap: &Snapshot, svc_idx: usize) {
        self.flush_service(stats, snap);
        self.svc.set(svc_idx);
    }

    /// Count a reply of `len` bytes of the service with stable id `svc_id`.
    #[inline(always)]
    pub fn service_out(&self, stats: &WorkerStats, svc_id: u32, len: usize) {
        if self.out_svc.get() != svc_id {
            self.switch_service_out(stats, svc_id);
        }
        self.out_packets.set(self.out_packets.get() + 1);
        self.out_bytes.set(self.out_bytes.get() + len as u64);
    }

    #[inline(never)]
    fn switch_service_out(&self, stats: &WorkerStats, svc_id: u32) {
        self.flush_service_out(stats);
        self.out_svc.set(svc_id);
    }

    fn flush_service_out(&self, stats: &WorkerStats) {
        let id = self.out_svc.replace(NO_SERVICE_ID);
        let (packets, bytes) = (self.out_packets.replace(0), self.out_bytes.replace(0));
        if let Some(ss) = stats.services.get(id as usize) {
            crate::counters::bump(&ss.packets_out, packets);
            crate::counters::bump(&ss.bytes_out, bytes);
        }
    }

    fn flush_service(&self, stats: &WorkerStats, snap: &Snapshot) {
        let idx = self.svc.replace(NO_SERVICE);
        let (packets, bytes) = (self.svc_packets.replace(0), self.svc_bytes.replace(0));
        if let Some(svc) = snap.services.get(idx) {
            let ss = &stats.services[svc.id as usize];
            crate::counters::bump(&ss.packets, packets);
            crate::counters::bump(&ss.bytes, bytes);
        }
    }

    /// Whether anything is waiting to be added.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.svc.get() == NO_SERVICE && self.out_svc.get() == NO_SERVICE_ID
    }

    /// Add everything counted since the last flush to `stats` (the service
    /// run by `snap`, the snapshot it was counted under).
    #[inline(never)]
    pub fn flush(&self, stats: &WorkerStats, snap: &Snapshot) {
        self.flush_service(stats, snap);
        self.flush_service_out(stats);
    }
}
