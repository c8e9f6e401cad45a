//! The handles the workers need, shared with the threads that feed them:
//! the snapshot in force, the neighbour and NAT tables, the mailboxes
//! between threads and the packet pool. Nothing here knows about the
//! control plane; the control side's state is in `shared.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use lbcore::conntrack::shared::SharedConnTable;
use lbcore::conntrack::ConnKey6;
use lbcore::neigh::{ClientMacs, NeighTable};
use lbcore::pipeline::{ClientMacs6, Snapshot};

use crate::clock::Clock;
use crate::kernel::path::KernelPath;
use crate::snapshot_cell::SnapshotCell;

/// A small frame built by the control thread (ARP requests and Neighbour
/// Solicitations, gratuitous ARP and unsolicited Neighbour Advertisements)
/// for a worker to transmit on its port.
#[derive(Clone, Copy)]
pub struct CtlFrame {
    pub len: u16,
    pub bytes: [u8; CTL_FRAME_LEN],
}

/// Room in a [`CtlFrame`]: a Neighbour Discovery frame (86 bytes) with a
/// VLAN tag.
pub const CTL_FRAME_LEN: usize = 96;

/// Frames the control thread queues per port; the worker on queue 0 of that
/// port drains it between bursts.
pub const CTL_QUEUE_DEPTH: usize = 256;

/// A frame one worker passes to another ([`lbcore::pipeline::Verdict::Handoff`]):
/// an ICMP error about a DR/tunnel connection that may be in the other
/// worker's table.
pub struct Handoff {
    pub mbuf: dpdk::Mbuf,
    /// The port it arrived on.
    pub port: u16,
    /// Workers that have already looked it up.
    pub hops: u8,
}

/// Depth of each worker's hand-over mailbox. ICMP errors are rare; a flood
/// beyond this is dropped and counted (`drop_handoff_full`).
pub const HANDOFF_QUEUE_DEPTH: usize = 256;

pub struct Dataplane {
    /// Set to stop all workers.
    pub stop: AtomicBool,
    pub snapshots: Arc<SnapshotCell>,
    pub neigh: Arc<NeighTable>,
    pub clock: Clock,
    /// Per port: frames to send.
    pub ctl_tx: Vec<ArrayQueue<CtlFrame>>,
    /// Per worker: frames other workers handed over. Declared before `pool`
    /// so that leftover mbufs are freed while their pool still exists.
    pub handoff: Vec<ArrayQueue<Handoff>>,
    /// Per port: its kernel exception path, if configured (`kernel/`).
    /// Before `pool`, like `handoff`.
    pub kernel: Vec<Option<KernelPath>>,
    /// Packet buffers, for frames the workers build (control frames).
    pub pool: dpdk::Mempool,
    /// Where NAT clients' packets come from (for replies), shared by all
    /// workers; connection sync fills it for connections it takes over.
    pub nat_clients: Arc<ClientMacs>,
    /// NAT connections, shared by all workers (two entries each).
    pub nat: Arc<SharedConnTable>,
    /// NAT66 connections, shared by all workers (two entries each), and
    /// where their clients' packets come from.
    pub nat6: Arc<SharedConnTable<ConnKey6>>,
    pub nat6_clients: Arc<ClientMacs6>,
    /// VRRP backup or fault: the workers leave the VIPs alone (vrrp/).
    pub standby: AtomicBool,
}

impl Dataplane {
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshots.current()
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
