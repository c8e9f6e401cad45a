//! The packet path of one worker: parse → classify → connection lookup →
//! schedule → rewrite → verdict, with `now` passed in and no I/O.
//!
//! [`Worker::process`] takes one Ethernet frame (the mbuf's data, rewritten
//! in place) and the index of the port it arrived on, and returns a
//! [`Verdict`]: send the frame out of a port, or drop it. Every outcome is
//! counted in the worker's [`WorkerStats`]; every drop has a reason.
//!
//! Policies (see also docs/ARCHITECTURE.md):
//! - IPv4 header checksum, version, IHL, total length and TTL (> 0) are
//!   checked on every packet; TCP/UDP checksums are not (DR does not touch
//!   L4 and the real server checks them).
//! - Fragments are dropped (counted): the director does not reassemble, and
//!   non-first fragments carry no ports to find their connection.
//! - IP options are allowed and forwarded untouched (counted).
//! - TCP segments without SYN for unknown flows are dropped, as IPVS does.
//! - A SYN on a flow whose connection is closing starts a new connection and
//!   is scheduled again (the client reused its port).
//! - Tunnel (IPIP) forwarding, its outer source and path-MTU policies: see
//!   [`tunnel`].

pub mod buf;
mod burst;
mod conn_counts;
mod encap;
mod fabric;
mod flood;
mod flow;
mod fwd_cache;
mod nat_state;
mod parsed;
mod plan;
mod plan_epoch;
mod tally;
use parsed::{Flow, NewPacket};
pub mod icmp_error;
pub mod nat;
pub mod persist;
mod prefetch;
pub mod snapshot;
pub mod sync;
pub mod sync6;
mod sync_store;
pub mod tunnel;
mod tunnel_plan;
mod v6;
pub use v6::{ClientMacs6, Nat6State};

use std::sync::Arc;

use crate::config::{Forward, Protocol};
use crate::conntrack::{
    tcp_input_only, tcp_input_only_u8, Conn, ConnKey, ConnState, ConnTable, FloodGuard, Probe,
    TableKey, Tick, TimeoutsMs,
};
use crate::counters::{Counter, WorkerStats};
use crate::neigh::NeighTable;
use crate::sched::least::LeastIndex;
use crate::sched::{Candidate, SchedState};
use crate::wire::arp::{self, ArpPacket};
use crate::wire::ethernet::{self, EthernetFrame};
use crate::wire::icmp::{self, Icmpv4Packet};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::tcp::TcpSegment;
use crate::wire::udp::UdpDatagram;
use crate::wire::{MacAddr, TcpFlags, WireError};

pub use buf::{PacketBuf, SliceBuf, TxChecksums};
pub use plan::MAX_BURST;
pub use snapshot::{Registry, Snapshot, MAX_REAL_SERVERS, MAX_SERVICES};

/// What to do with a frame after processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame on this port index.
    Tx(u16),
    /// Drop it; the reason has been counted.
    Drop(Counter),
    /// Fully handled (e.g. an ARP reply we learned from); free it.
    Consumed,
    /// Not decidable here: an ICMP error about a DR or tunnel connection
    /// that this worker's table does not hold, which another worker's may
    /// (see [`icmp_error`]). The frame is untouched; the I/O loop passes it
    /// to the next worker ([`Worker::process_handed_off`]). Returned only
    /// when [`Worker::set_workers`] said there are other workers.
    Handoff,
    /// For the director's own host: the frame goes, untouched, to the
    /// kernel interface of the port it arrived on (the exception path,
    /// `ports[].kernel`). The I/O loop counts `to_kernel` when it queues
    /// the frame, or the reason it could not.
    Kernel,
    /// VIP traffic for this box's own stack, untouched, through the kernel
    /// interface of port `port` (not rate-limited like [`Verdict::Kernel`]):
    /// scheduled to a local real server, or (`peer`) already scheduled to
    /// this box by the other director of a two-box setup. The I/O loop
    /// counts `forwarded_local` or `local_from_peer` when it queues it.
    Local { port: u16, peer: bool },
}

/// What the packet path decided about a frame. Most decisions are final
/// ([`Verdict`]); the others need the buffer itself (to grow or shrink the
/// frame) and are carried out by [`Worker::process_buf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Done(Verdict),
    /// Encapsulate in IPIP as [`Worker::encap`] says, and send (20 bytes of
    /// headroom needed). The encapsulation waits in the worker rather than
    /// in the variant: an `Action` small enough for two registers is
    /// returned and matched without a trip through memory on every path
    /// (measured with callgrind: the DR and tunnel paths both gain).
    Tunnel,
    /// A small decision that needs the buffer ([`BufOp`]). (One variant
    /// for both: a fourth variant made every `Action` costlier to match,
    /// measured with callgrind on the DR path.)
    Buf(BufOp),
}

/// The small decisions of [`Action::Buf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BufOp {
    /// Encapsulate in IPIP by the real server's tunnel plan, as
    /// [`Worker::tun_hit`] says (see [`tunnel_plan`]). (First: the tunnel
    /// path's match tests the fewest tags.)
    TunnelPlanned,
    /// Answer the client with ICMP "fragmentation needed" announcing this
    /// next-hop MTU (the frame shrinks to the ICMP message).
    FragNeeded(u16),
    /// Send on this port, the NIC computing the IPv4 header checksum
    /// ([`PacketBuf::offload_checksums`]).
    TxIpv4Offload(u16),
}

/// Where a newly scheduled connection lives.
enum NewConn {
    /// In this worker's table (DR, tunnel); the real server id.
    Local(u32),
    /// In the shared NAT table, not yet inserted; the real server id.
    Nat(u32),
}

impl From<Verdict> for Action {
    #[inline]
    fn from(v: Verdict) -> Action {
        Action::Done(v)
    }
}

/// One worker's sans-IO packet processor and its private state.
pub struct Worker {
    snap: Arc<Snapshot>,
    table: ConnTable,
    stats: Arc<WorkerStats>,
    neigh: Arc<NeighTable>,
    /// Scheduler state by stable service id.
    sched: Box<[SchedState]>,
    /// Scratch for scheduling (capacity reserved up front: no allocation).
    cands: Vec<Candidate>,
    /// lc/wlc/sed/nq services' real servers ordered by load: rebuilt with
    /// each snapshot, kept right by [`Worker::conn_counts`].
    least: LeastIndex,
    /// IPv4 identification of the next header this worker builds (tunnel
    /// outer headers, ICMP errors).
    ident: u16,
    /// The shared NAT table and this worker's share of its upkeep (None:
    /// NAT traffic is dropped and counted).
    nat: Option<nat_state::NatState>,
    /// Whether a DR/tunnel ICMP error that misses this worker's table may be
    /// handed to another worker ([`Verdict::Handoff`]) rather than dropped.
    handoff_on_miss: bool,
    /// Workers sharing the traffic (this one included).
    workers: usize,
    /// VRRP backup (or fault): the VIPs belong to another director, so no
    /// ARP answers for them and no forwarding of their traffic.
    standby: bool,
    /// Where this worker's connection-sync records go (see [`sync`]).
    sync_out: Option<crate::conntrack::sync::SyncQueue>,
    /// IPv6 connection sync (`sync6.rs`), when configured.
    sync6: Option<Box<sync6::Sync6>>,
    /// The SYN-flood defence's state (see [`flood`]).
    flood: FloodGuard,
    /// The timeouts in force: the snapshot's, with a short SYN_RECV
    /// timeout while the SYN-flood defence is engaged.
    timeouts: TimeoutsMs,
    /// The burst being processed: each frame's parsed flow, if it has one
    /// (see [`burst`]).
    plan: plan::Plan,
    /// Per port index: the checksums its NIC computes on transmit (none
    /// unless [`Worker::set_tx_checksums`] said so; see [`buf`]).
    tx_csum: Box<[TxChecksums]>,
    /// IPv6's tables, made with the first snapshot that configures IPv6
    /// (see [`v6`]).
    v6: Option<Box<v6::V6State>>,
    /// The shared NAT66 table and this worker's share of its upkeep (see
    /// `v6::nat`; None: NAT66 traffic is dropped and counted).
    nat6: Option<Box<v6::Nat6State>>,
    /// The encapsulation an [`Action::Tunnel`] asks for (written by
    /// `forward_tunnel` or `send_to_real6` just before it returns that
    /// action).
    encap: encap::Encap,
    /// The burst's per-service counts, added to `stats` when it ends (see
    /// [`tally`]).
    tally: tally::Tally,
    /// Per real server reached by DR: the header its packets get and their
    /// egress port (see [`fwd_cache`]).
    fwd: fwd_cache::FwdCache,
    /// Per real server reached by IPIP: its encapsulation's fixed part
    /// (see [`tunnel_plan`]), and what a planned packet carries from its
    /// decision to its encapsulation.
    tun: tunnel_plan::TunnelPlans,
    tun_hit: tunnel_plan::TunnelHit,
    /// `ConnState::Established` when the snapshot has no server whose
    /// connections expire with it (`any_dead`) and no service with
    /// persistence (`any_persistence`): an established connection's plain
    /// segment then needs neither test (see `service_flow_dr`). Otherwise
    /// a value no entry's state has (the state is a byte, whatever a sync
    /// peer sent), so that the one compare of an entry's state with it
    /// tells both (measured with callgrind).
    plain_state: u16,
}

const ETH: usize = ethernet::HEADER_LEN;

/// The TCP flags that can move an ESTABLISHED connection's state.
const TRANSITIONS: TcpFlags = TcpFlags(TcpFlags::FIN.0 | TcpFlags::SYN.0 | TcpFlags::RST.0);

impl Worker {
    pub fn new(
        snap: Arc<Snapshot>,
        table: ConnTable,
        stats: Arc<WorkerStats>,
        neigh: Arc<NeighTable>,
    ) -> Worker {
        let timeouts = snap.timeouts;
        let mut least = LeastIndex::new(MAX_REAL_SERVERS, MAX_SERVICES);
        let fwd = fwd_cache::FwdCache::new(neigh.generation());
        let tun = tunnel_plan::TunnelPlans::new(neigh.generation());
        conn_counts::build_index(&mut least, &snap, &stats);
        let mut w = Worker {
            snap,
            table,
            stats,
            neigh,
            sched: vec![SchedState::default(); MAX_SERVICES].into_boxed_slice(),
            cands: Vec::with_capacity(MAX_REAL_SERVERS),
            least,
            ident: 0,
            nat: None,
            handoff_on_miss: false,
            workers: 1,
            standby: false,
            sync_out: None,
            sync6: None,
            flood: FloodGuard::default(),
            timeouts,
            plan: plan::Plan::new(),
            tx_csum: Box::default(),
            v6: None,
            nat6: None,
            encap: encap::Encap::NONE,
            tally: tally::Tally::new(),
            fwd,
            tun,
            tun_hit: tunnel_plan::TunnelHit::default(),
            plain_state: NO_PLAIN_STATE,
        };
        w.plain_state = plain_state(&w.snap);
        w.make_v6_tables();
        w
    }

    /// Make the IPv6 tables when the snapshot first configures IPv6: the
    /// same number of connections as the IPv4 table, a seed derived from
    /// its secret one. Between bursts (never per packet); kept afterwards.
    fn make_v6_tables(&mut self) {
        if self.snap.has_ipv6 && self.v6.is_none() {
            let key = ConnKey {
                proto: 0,
                client_ip: 0,
                client_port: 0,
                vip: 0,
                vport: 0x6666,
            };
            let seed = self.table.hash(&key);
            self.v6 = Some(v6::V6State::new(self.table.capacity(), seed));
        }
    }

    /// The IPv6 connection table, once IPv6 is configured (listings).
    pub fn table6(&self) -> Option<&ConnTable<crate::conntrack::ConnKey6>> {
        self.v6.as_ref().map(|v| &v.table)
    }

    /// Tell the worker which checksums each port's NIC computes on
    /// transmit (index = port index; missing ports: none). Rewrites that
    /// recompute a checksum in full leave it to the NIC of their egress
    /// port (see [`buf`]).
    pub fn set_tx_checksums(&mut self, per_port: &[TxChecksums]) {
        self.tx_csum = per_port.into();
        // The tunnel plans hold whether their port offloads the checksum.
        self.tun.invalidate();
    }

    /// The checksums port `port`'s NIC computes on transmit.
    #[inline(always)]
    fn nic_checksums(&self, port: u16) -> TxChecksums {
        self.tx_csum
            .get(usize::from(port))
            .copied()
            .unwrap_or_default()
    }

    /// Enter (true) or leave VRRP standby (call between bursts).
    pub fn set_standby(&mut self, standby: bool) {
        self.standby = standby;
    }

    /// Tell the worker how many workers share the traffic. With more than
    /// one, an ICMP error about a DR/tunnel connection missing from this
    /// worker's table becomes [`Verdict::Handoff`] instead of a drop.
    pub fn set_workers(&mut self, n: usize) {
        self.workers = n.max(1);
        self.handoff_on_miss = self.workers > 1;
    }

    /// Process a frame another worker handed over ([`Verdict::Handoff`])
    /// after it had visited `hops` workers (1 for the first hand-over). The
    /// frame was counted as received by the first worker. When every
    /// worker has now seen it, a miss is final: dropped and counted
    /// `drop_icmp_error_no_conn`.
    pub fn process_handed_off<B: PacketBuf>(
        &mut self,
        pkt: &mut B,
        rx_port: u16,
        hops: usize,
        now: Tick,
    ) -> Verdict {
        let keep = self.handoff_on_miss;
        self.handoff_on_miss = keep && hops + 1 < self.workers;
        self.check_neigh();
        let v = self.run(pkt, rx_port, now);
        self.handoff_on_miss = keep;
        self.flush_tally();
        v
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    /// Switch to a new snapshot (call between bursts).
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) {
        // The tally's service indices are the old snapshot's.
        self.flush_tally();
        self.snap = snap;
        // The forward plans were made from the old snapshot's routes.
        self.fwd.invalidate();
        self.tun.invalidate();
        self.plain_state = plain_state(&self.snap);
        // A burst planned under the old snapshot (its service indices, and
        // which table its hashes are for) is not continued: any frame of
        // it still to come takes the full path.
        self.plan.valid = 0;
        conn_counts::build_index(&mut self.least, &self.snap, &self.stats);
        self.make_v6_tables();
        self.timeouts = self
            .snap
            .flood
            .timeouts(&self.snap.timeouts, self.flood.engaged());
    }

    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    pub fn table(&self) -> &ConnTable {
        &self.table
    }

    /// Idle-time work: expire up to `buckets` buckets of the table.
    pub fn housekeeping(&mut self, now: Tick, buckets: usize) {
        self.flush_tally();
        self.flood_observe(now);
        self.nat_housekeeping(now, buckets);
        self.nat6_housekeeping(now, buckets);
        let stats = &self.stats;
        let counts = conn_counts::ConnCounts {
            stats,
            least: &self.least,
        };
        self.table.sweep(now, buckets, |c| forget(counts, c));
        let live6 = if self.v6.is_some() {
            self.housekeeping6(now, buckets)
        } else {
            0
        };
        // The live-connection gauge, once per poll rather than per new
        // connection (entries also end on the hit path, by probe).
        self.stats.conns_live.store(
            (self.table.len() + live6) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Process one frame held in a buffer that may grow at the front (an
    /// mbuf): the entry point for the worker loop. The frame is rewritten in
    /// place, grown (tunnel encapsulation) or shrunk (ICMP errors).
    #[inline]
    pub fn process_buf<B: PacketBuf>(&mut self, pkt: &mut B, rx_port: u16, now: Tick) -> Verdict {
        self.stats.count(Counter::RxFrames);
        self.check_neigh();
        let v = self.run(pkt, rx_port, now);
        self.flush_tally();
        v
    }

    /// Add the tally of the frames processed since the last flush to the
    /// shared counters: every entry point that processes frames calls it
    /// before it returns (see [`tally`]).
    #[inline(always)]
    fn flush_tally(&self) {
        if !self.tally.is_empty() {
            self.tally.flush(&self.stats, &self.snap);
        }
    }

    /// Drop the forward plans if a neighbour's MAC changed since they were
    /// made: at each entry point that processes frames (and where this
    /// worker learns a MAC: `arp`, `ndp`).
    #[inline(always)]
    fn check_neigh(&mut self) {
        let gen = self.neigh.generation();
        // Both kinds of plan take every generation together (here, and
        // where this worker learns a MAC): one compare tells both
        // (measured with callgrind: a second cost DR per burst).
        if self.tun.is_stale(gen) {
            self.neigh_changed(gen);
        }
    }

    /// A neighbour's MAC changed: drop the plans made before.
    #[cold]
    #[inline(never)]
    fn neigh_changed(&mut self, gen: u64) {
        self.fwd.check_neigh(gen);
        self.tun.check_neigh(gen);
    }

    /// The packet path proper, for [`process_buf`](Self::process_buf) and
    /// [`process_handed_off`](Self::process_handed_off).
    #[inline(always)]
    fn run<B: PacketBuf>(&mut self, pkt: &mut B, rx_port: u16, now: Tick) -> Verdict {
        if fabric::is_tagged(pkt.data()) {
            return self.run_tagged(pkt, rx_port, now);
        }
        let action = self.classify(pkt.data_mut(), rx_port, now);
        self.complete(pkt, action, rx_port)
    }

    /// Carry out `action` on the frame in `pkt` and count a drop's reason.
    #[inline(always)]
    fn complete<B: PacketBuf>(&mut self, pkt: &mut B, action: Action, rx_port: u16) -> Verdict {
        let v = match action {
            Action::Done(v) => v,
            Action::Tunnel => self.encapsulate(pkt),
            Action::Buf(BufOp::FragNeeded(mtu)) => self.frag_needed(pkt, mtu, rx_port),
            Action::Buf(BufOp::TxIpv4Offload(port)) => offload_ipv4(pkt, port),
            Action::Buf(BufOp::TunnelPlanned) => match self.encapsulate_planned(pkt) {
                Ok(port) => Verdict::Tx(port),
                Err(c) => Verdict::Drop(c),
            },
        };
        if let Verdict::Drop(c) = v {
            self.stats.count(c);
        }
        v
    }

    /// [`complete`](Self::complete) into `out`, in one match: a tunnel
    /// plan's verdict is written as it is, not merged with the other
    /// arms' (measured with callgrind).
    #[inline(always)]
    fn complete_into<B: PacketBuf>(
        &mut self,
        pkt: &mut B,
        action: Action,
        rx_port: u16,
        out: &mut Verdict,
    ) {
        let v = match action {
            Action::Buf(BufOp::TunnelPlanned) => match self.encapsulate_planned(pkt) {
                Ok(port) => {
                    *out = Verdict::Tx(port);
                    return;
                }
                Err(c) => Verdict::Drop(c),
            },
            Action::Done(v) => v,
            Action::Tunnel => self.encapsulate(pkt),
            Action::Buf(BufOp::FragNeeded(mtu)) => self.frag_needed(pkt, mtu, rx_port),
            Action::Buf(BufOp::TxIpv4Offload(port)) => offload_ipv4(pkt, port),
        };
        if let Verdict::Drop(c) = v {
            self.stats.count(c);
        }
        *out = v;
    }

    /// Process one frame that arrived on port index `rx_port`, in place. The
    /// frame cannot grow: tunnelled traffic is dropped
    /// (`drop_tunnel_no_headroom`); use [`process_buf`](Self::process_buf).
    #[inline]
    pub fn process(&mut self, frame: &mut [u8], rx_port: u16, now: Tick) -> Verdict {
        self.process_buf(&mut SliceBuf(frame), rx_port, now)
    }

    #[inline(always)]
    fn classify(&mut self, frame: &mut [u8], rx_port: u16, now: Tick) -> Action {
        let Some(port) = self.snap.ports.get(rx_port as usize) else {
            return Verdict::Drop(Counter::DropNotOurMac).into();
        };
        let (dst, src, ethertype) = match EthernetFrame::new_checked(&frame[..]) {
            Ok(eth) => (eth.dst(), eth.src(), eth.ethertype()),
            Err(_) => return Verdict::Drop(Counter::DropEthTruncated).into(),
        };
        if src == port.mac {
            return Verdict::Drop(Counter::DropOwnFrame).into();
        }
        if src.is_group_or_zero() || self.snap.is_other_port_mac(src, rx_port) {
            // No station sends from a group or null address, or from our
            // other port's: answering or learning it would make us talk to
            // a whole segment, or to ourselves.
            return Verdict::Drop(Counter::DropEthBadSource).into();
        }
        if dst != port.mac && !dst.is_broadcast() {
            if dst.0 == crate::wire::vrrp::GROUP_MAC
                && ethertype == ethernet::ETHERTYPE_IPV4
                && port.kernel
            {
                // VRRP advertisements: lbd's VRRP speaker listens on the
                // port's kernel interface.
                return Verdict::Kernel.into();
            }
            if ethertype == ethernet::ETHERTYPE_IPV6 {
                // Maybe IPv6 multicast: Neighbour Solicitations for our
                // addresses come to solicited-node groups, VRRP
                // advertisements to ff02::12 (v6).
                return self.ipv6_multicast_mac(frame, rx_port, now).into();
            }
            return Verdict::Drop(Counter::DropNotOurMac).into();
        }
        match ethertype {
            ethernet::ETHERTYPE_IPV4 if dst == port.mac => self.ipv4(frame, rx_port, src, now),
            ethernet::ETHERTYPE_IPV4 => Verdict::Drop(Counter::DropNotOurMac).into(),
            ethernet::ETHERTYPE_ARP => self.arp(frame, rx_port, now).into(),
            ethernet::ETHERTYPE_VLAN => Verdict::Drop(Counter::DropVlan).into(),
            // IPv6 (out of line, see v6), and the other ethertypes.
            _ => self.other_ethertype(frame, rx_port, now),
        }
    }

    /// Answer ARP requests for our VIPs and our own address on this port;
    /// learn real servers' MACs from any ARP they send.
    fn arp(&mut self, frame: &mut [u8], rx_port: u16, now: Tick) -> Verdict {
        let snap = &*self.snap;
        let (op, sha, spa, tpa) = match ArpPacket::new_checked(&frame[ETH..]) {
            Ok(a) => (a.operation(), a.sender_mac(), a.sender_ip(), a.target_ip()),
            Err(WireError::Truncated) => return Verdict::Drop(Counter::DropArpTruncated),
            Err(_) => return Verdict::Drop(Counter::DropArpUnsupported),
        };
        if sha.is_group_or_zero() || snap.ports.iter().any(|p| p.mac == sha) {
            // A sender hardware address no other station has: neither
            // learned nor answered (the reply would go to a group, nowhere,
            // or back to us).
            return Verdict::Drop(Counter::DropEthBadSource);
        }
        let mut learned = false;
        if let Some(&slot) = snap.neighbours.get(&u32::from(spa)) {
            self.neigh.learn(slot as usize, spa, sha, now);
            // A new MAC drops the forward plans before the next frame (of
            // this burst too).
            let gen = self.neigh.generation();
            self.fwd.check_neigh(gen);
            self.tun.check_neigh(gen);
            self.stats.count(Counter::ArpLearned);
            learned = true;
        }
        let target = u32::from(tpa);
        let virtual_addr = snap.is_vip(target)
            || snap
                .vrrp_addresses
                .iter()
                .any(|&(a, p)| a == target && p == rx_port);
        let ours =
            (virtual_addr && !self.standby) || snap.own_port(target) == Some(rx_port as usize);
        if op == arp::ARP_REQUEST && ours && spa != tpa {
            let my_mac = snap.ports[rx_port as usize].mac;
            let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
            eth.set_dst(sha);
            eth.set_src(my_mac);
            let mut a = ArpPacket::new_unchecked(&mut frame[ETH..]);
            a.set_operation(arp::ARP_REPLY);
            a.set_target_mac(sha);
            a.set_target_ip(spa);
            a.set_sender_mac(my_mac);
            a.set_sender_ip(tpa);
            self.stats.count(Counter::ArpReplied);
            return Verdict::Tx(rx_port);
        }
        let port = &snap.ports[rx_port as usize];
        if op == arp::ARP_REPLY && port.kernel && tpa == port.addr {
            // The answer to the kernel's own ARP request (the dataplane has
            // learned from it too).
            return Verdict::Kernel;
        }
        if learned {
            Verdict::Consumed
        } else {
            Verdict::Drop(Counter::DropArpNotForUs)
        }
    }

    fn ipv4(&mut self, frame: &mut [u8], rx_port: u16, src_mac: MacAddr, now: Tick) -> Action {
        let snap = &*self.snap;
        let (hlen, proto, src, dst, frame_len, to_vip) = {
            let ip = match Ipv4Packet::new_checked(&frame[ETH..]) {
                Ok(ip) => ip,
                Err(e) => return Verdict::Drop(ipv4_error(e)).into(),
            };
            if !ip.verify_checksum() {
                return Verdict::Drop(Counter::DropIpv4BadChecksum).into();
            }
            if ip.ttl() == 0 {
                return Verdict::Drop(Counter::DropIpv4TtlExpired).into();
            }
            if ip.has_options() {
                // Rare: options are checked only when present.
                if !ip.options_well_formed() {
                    return Verdict::Drop(Counter::DropIpv4BadOptions).into();
                }
                self.stats.count(Counter::Ipv4WithOptions);
            }
            let (src, dst) = (ip.src_u32(), ip.dst_u32());
            let to_vip = snap.is_vip(dst);
            // One test on the common path: VRRP standby or a two-box peer.
            if to_vip && (self.standby || !snap.peer_directors.is_empty()) {
                if snap.from_peer(rx_port, src_mac) {
                    // The peer director scheduled this to us: our own stack
                    // serves it (two-box setup), whatever our VRRP state.
                    return Verdict::Local {
                        port: rx_port,
                        peer: true,
                    }
                    .into();
                }
                if self.standby {
                    return Verdict::Drop(Counter::DropVrrpBackup).into();
                }
            }
            if !to_vip && !snap.is_own(dst) {
                let p = ip.protocol();
                if snap.has_nat
                    && (p == ipv4::PROTO_TCP || p == ipv4::PROTO_UDP || p == ipv4::PROTO_ICMP)
                    && !ip.is_fragment()
                    && !bad_source(src)
                {
                    // Possibly a real server's reply to a NAT connection, or
                    // an ICMP error about one (see icmp_error.rs).
                    let (hl, tl) = (ip.header_len(), ip.total_len() as usize);
                    if p == ipv4::PROTO_ICMP {
                        return self.nat_icmp_error_to_client(frame, dst, ETH + hl, ETH + tl, now);
                    }
                    return self.nat_reply(frame, p, src, dst, ETH + hl, ETH + tl, now);
                }
                return Verdict::Drop(Counter::DropIpv4NotLocal).into();
            }
            if bad_source(src) || snap.is_own(src) {
                return Verdict::Drop(Counter::DropIpv4BadSource).into();
            }
            if src == dst || snap.is_vip_source(src) {
                // "Land": spoofed from the VIP itself (or another VIP); a
                // DR real server holding the VIP would answer itself.
                return Verdict::Drop(Counter::DropIpv4Land).into();
            }
            if ip.is_fragment() {
                let port = &snap.ports[rx_port as usize];
                if !to_vip && port.kernel && u32::from(port.addr) == dst {
                    // The kernel reassembles its own traffic.
                    return Verdict::Kernel.into();
                }
                return Verdict::Drop(Counter::DropIpv4Fragment).into();
            }
            (
                ip.header_len(),
                ip.protocol(),
                src,
                dst,
                ip.total_len() as usize,
                to_vip,
            )
        };
        let l4 = ETH + hlen;
        let l4_end = ETH + frame_len;
        let port = &self.snap.ports[rx_port as usize];
        if !to_vip && port.kernel && u32::from(port.addr) == dst {
            // The director's own host: the dataplane answers pings, the
            // kernel gets everything else (SSH, health-check replies, ...).
            let echo = proto == ipv4::PROTO_ICMP && frame.get(l4) == Some(&icmp::ICMP_ECHO_REQUEST);
            if !echo {
                return Verdict::Kernel.into();
            }
        }
        match proto {
            ipv4::PROTO_ICMP if icmp::is_error(&frame[l4..l4_end]) => {
                self.icmp_error(frame, l4, l4_end, now)
            }
            ipv4::PROTO_ICMP => self.icmp(frame, l4, l4_end, rx_port).into(),
            ipv4::PROTO_TCP | ipv4::PROTO_UDP if to_vip => {
                self.service_packet(frame, proto, src, dst, l4, l4_end, rx_port, now)
            }
            _ => Verdict::Drop(Counter::DropIpv4UnknownProtocol).into(),
        }
    }

    /// Echo replies for VIPs and own addresses, built in place.
    fn icmp(&mut self, frame: &mut [u8], l4: usize, l4_end: usize, rx_port: u16) -> Verdict {
        match Icmpv4Packet::new_checked(&frame[l4..l4_end]) {
            Ok(p) if !p.verify_checksum() => return Verdict::Drop(Counter::DropIcmpMalformed),
            Ok(p) if p.msg_type() == icmp::ICMP_ECHO_REQUEST && p.code() == 0 => {}
            Ok(_) => return Verdict::Drop(Counter::DropIcmpUnsupported),
            Err(_) => return Verdict::Drop(Counter::DropIcmpMalformed),
        }
        let my_mac = self.snap.ports[rx_port as usize].mac;
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        let peer = eth.src();
        eth.set_dst(peer);
        eth.set_src(my_mac);
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[ETH..l4_end]);
        let (s, d) = (ip.src(), ip.dst());
        ip.set_src(d);
        ip.set_dst(s);
        ip.set_ttl(64);
        ip.fill_checksum();
        let mut p = Icmpv4Packet::new_unchecked(&mut frame[l4..l4_end]);
        p.set_msg_type(icmp::ICMP_ECHO_REPLY);
        p.fill_checksum();
        self.stats.count(Counter::IcmpEchoReplied);
        Verdict::Tx(rx_port)
    }

    /// TCP/UDP to a VIP: parse the L4 header, find the service, and go on
    /// as [`service_flow`](Self::service_flow).
    #[allow(clippy::too_many_arguments)]
    fn service_packet(
        &mut self,
        frame: &mut [u8],
        proto: u8,
        src: u32,
        dst: u32,
        l4: usize,
        l4_end: usize,
        rx_port: u16,
        now: Tick,
    ) -> Action {
        let (sport, dport, flags) = if proto == ipv4::PROTO_TCP {
            match TcpSegment::new_checked(&frame[l4..l4_end]) {
                Ok(t) if !t.flags().is_valid_combination() => {
                    // Never creates or refreshes a connection (SYN+RST,
                    // SYN+FIN, all flags would each take a SYN_RECV slot).
                    return Verdict::Drop(Counter::DropTcpBadFlags).into();
                }
                Ok(t) => (t.src_port(), t.dst_port(), t.flags()),
                Err(_) => return Verdict::Drop(Counter::DropTcpMalformed).into(),
            }
        } else {
            match UdpDatagram::new_checked(&frame[l4..l4_end]) {
                Ok(u) => (u.src_port(), u.dst_port(), TcpFlags(0)),
                Err(_) => return Verdict::Drop(Counter::DropUdpMalformed).into(),
            }
        };
        let Some(svc_idx) = self.snap.service(proto, dst, dport) else {
            return Verdict::Drop(Counter::DropNoService).into();
        };
        let words = ConnKey {
            proto,
            client_ip: src,
            client_port: sport,
            vip: dst,
            vport: dport,
        }
        .words();
        let hash = match self.nat_table() {
            Some(t) => t.hash_words(&words),
            None => self.table.hash_words(&words),
        };
        let flow = Flow {
            words,
            hash,
            svc_idx: svc_idx as u16,
            l4: l4 as u16,
            l4_end: l4_end as u16,
            flags,
        };
        self.service_flow(frame, &flow, rx_port, now)
    }

    /// A parsed service packet ([`Flow`]): find or create its connection
    /// and forward it by its real server's method.
    #[inline(always)]
    fn service_flow(&mut self, frame: &mut [u8], flow: &Flow, rx_port: u16, now: Tick) -> Action {
        match self.service_flow_dr::<true>(frame, flow, rx_port, now) {
            Ok(port) => Verdict::Tx(port).into(),
            Err(a) => a,
        }
    }

    /// [`service_flow`](Self::service_flow), telling apart the packet sent
    /// by its server's DR plan (`Ok`: the egress port, counted): stage 2
    /// returns that verdict as it is, rather than through an [`Action`]
    /// merged with every other path's (measured with callgrind).
    #[inline(always)]
    fn service_flow_dr<const MAY_NAT: bool>(
        &mut self,
        frame: &mut [u8],
        flow: &Flow,
        rx_port: u16,
        now: Tick,
    ) -> Result<u16, Action> {
        // The key's fields (`flow.key()`) are unpacked only where a path
        // needs them: the hit path reads the packed words alone.
        // The key's words are read in place (in the burst's plan), not
        // copied (measured with callgrind).
        let Flow { hash, flags, .. } = *flow;
        let words = &flow.words;
        // The L4 offsets are read where a path needs them (not loaded and
        // kept for the whole function: the hit path does not).
        let svc_idx = flow.svc_idx as usize;
        let mut hash = hash;
        // `MAY_NAT` false: the caller knows there is no NAT table.
        if MAY_NAT && self.nat_table().is_some() {
            // `hash` is the shared table's (`Flow::hash`).
            if let Some(sent) = self.nat_request(
                frame,
                &flow.key(),
                words,
                hash,
                svc_idx,
                flow.l4 as usize,
                flow.l4_end as usize,
                flags,
                now,
            ) {
                return sent;
            }
            hash = self.table.hash_words(words);
        }
        let probe = match self.table.probe_words_mut(words, hash, now) {
            // The common packet, in one predictable branch: an ESTABLISHED
            // connection's segment with none of FIN, SYN, RST, under a
            // snapshot where no server's connections expire with it and no
            // service has persistence. Of what `hit_other` does, only the
            // deadline moves for it (no transition, no reuse by SYN, no
            // dead server, no template to touch).
            Ok((_, c))
                if !flow.flags.intersects(TRANSITIONS)
                    && u16::from(c.state) == self.plain_state =>
            {
                c.expires =
                    now.wrapping_add(self.timeouts.by_state[ConnState::Established as usize]);
                Err(c.rs)
            }
            Ok((slot, _)) => Ok(Probe::Hit(slot)),
            Err(probe) => Ok(probe),
        };
        // `Err`: the server of a plain segment (above), already updated;
        // `Ok`: the probe's answer, for the general paths below.
        let rs = match probe {
            Err(rs) => rs,
            Ok(Probe::Hit(slot)) => self.hit_other(frame, flow, slot, rx_port, now)?,
            Ok(Probe::Vacant { slot, evicted }) => {
                let is_tcp = flow.is_tcp();
                if let Some(old) = evicted {
                    forget(self.counts(), &old);
                }
                // After a failover: a connection the peer director synced.
                let adopted = if self.snap.sync_enabled && !(is_tcp && flags.syn()) {
                    self.adopt_synced(&flow.key(), svc_idx, slot, now)
                } else {
                    None
                };
                if let Some(rs) = adopted {
                    self.update_conn(slot, is_tcp, flags, now);
                    return Err(self.forward(frame, rs, svc_idx, words));
                }
                let pkt = NewPacket::of(flow, rx_port);
                if is_tcp && !flags.syn() {
                    return Err(self.untracked_segment(
                        frame,
                        &flow.key(),
                        svc_idx,
                        Some(slot),
                        &pkt,
                        now,
                    ));
                }
                return Err(self.create_and_forward(frame, &flow.key(), svc_idx, slot, &pkt, now));
            }
            Ok(Probe::Full) => {
                let pkt = NewPacket::of(flow, rx_port);
                return Err(self.no_room(frame, &flow.key(), hash, svc_idx, &pkt, now));
            }
        };
        // `forward`, spelled out for the `Ok`.
        if let Some(port) = self.fwd.apply(rs, frame) {
            self.dr_sent(frame.len(), rs, flow.svc_idx as usize, port, Counter::FwdDr);
            return Ok(port);
        }
        Err(self.forward_unplanned(frame, rs, svc_idx, words))
    }

    /// A live entry at `slot` for `flow`, other than an established
    /// connection's plain segment ([`service_flow`](Self::service_flow)'s
    /// fast case): the server to forward to, or what became of the packet
    /// (a closing flow reused, a dead server's entry ended).
    #[inline(never)]
    fn hit_other(
        &mut self,
        frame: &mut [u8],
        flow: &Flow,
        slot: usize,
        rx_port: u16,
        now: Tick,
    ) -> Result<u32, Action> {
        let Flow { words, flags, .. } = *flow;
        let svc_idx = flow.svc_idx as usize;
        let is_tcp = flow.is_tcp();
        let c = *self.table.get(slot);
        let state = ConnState::from_u8(c.state);
        let syn = is_tcp && flags.syn() && !flags.ack();
        // One flag load unless some server's connections expire.
        let dead = self.snap.any_dead && self.snap.is_dead(c.rs);
        if dead || (syn && (state.reusable_by_syn() || self.snap.unavailable(c.rs))) {
            // The client reuses a closing flow's port, the real
            // server died with `expire_connections`, or a SYN
            // (retransmitted, or a reused port) finds an entry of a
            // server that is out of service: the entry ends, and a
            // SYN (or UDP) makes a new connection.
            let old = self.table.take(slot);
            forget(self.counts(), &old);
            if dead && is_tcp && !syn {
                return Err(Verdict::Drop(Counter::DropRealServerDown).into());
            }
            let pkt = NewPacket::of(flow, rx_port);
            return Err(self.create_and_forward(frame, &flow.key(), svc_idx, slot, &pkt, now));
        }
        self.update_conn(slot, is_tcp, flags, now);
        self.persist_touch(&words, svc_idx, now);
        Ok(c.rs)
    }

    /// Schedule a real server for a new flow and insert its entry at `slot`.
    fn new_conn(
        &mut self,
        key: &ConnKey,
        svc_idx: usize,
        slot: usize,
        is_tcp: bool,
        flags: TcpFlags,
        now: Tick,
    ) -> Result<NewConn, Verdict> {
        // The client's persistence template, or the scheduler (persist.rs).
        let Some(i) = self.pick_real(key, svc_idx, now) else {
            return Err(Verdict::Drop(Counter::DropNoRealServer));
        };
        let svc = &self.snap.services[svc_idx];
        let rs = svc.reals[i].id;
        if svc.reals[i].forward == Forward::Nat {
            // NAT connections live in the shared table (see nat.rs).
            return Ok(NewConn::Nat(rs));
        }
        let state = if !is_tcp {
            ConnState::Udp
        } else if flags.syn() {
            tcp_input_only(ConnState::None, flags)
        } else {
            // A mid-flow segment adopted by a sloppy_tcp service: the
            // connection was established before we saw it.
            tcp_input_only(ConnState::Established, flags)
        };
        let expires = now.wrapping_add(state.timeout_ms(&self.timeouts));
        let mut conn = Conn::new(key, rs, state as u8, now, expires);
        conn.active = state.is_active();
        if conn.active {
            self.conn_counts(rs, 1, 0);
        } else {
            self.conn_counts(rs, 0, 1);
        }
        crate::counters::bump(&self.stats.rs[rs as usize].conns, 1);
        crate::counters::bump(&self.stats.services[svc.id as usize].conns, 1);
        self.table.insert_at(slot, conn);
        self.sync_conn(key, rs, state);
        self.stats.count(Counter::ConnCreated);
        Ok(NewConn::Local(rs))
    }

    /// Advance an existing connection's state and refresh its timeout.
    #[inline(always)]
    fn update_conn(&mut self, slot: usize, is_tcp: bool, flags: TcpFlags, now: Tick) {
        let c = self.table.get_mut(slot);
        let old = c.state;
        if is_tcp && old == ConnState::Established as u8 && !flags.intersects(TRANSITIONS) {
            // The common segment: ESTABLISHED sees none of FIN, SYN, RST,
            // which is no transition in IPVS's table (test
            // `established_stays_without_fin_syn_rst`); only the deadline
            // moves.
            c.expires = now.wrapping_add(self.timeouts.by_state[ConnState::Established as usize]);
            return;
        }
        let new = if is_tcp {
            tcp_input_only_u8(old, flags)
        } else {
            old
        };
        let new = ConnState::from_u8(new);
        c.expires = now.wrapping_add(new.timeout_ms(&self.timeouts));
        if new as u8 != old {
            self.conn_state_changed(slot, new);
        }
    }

    /// The state of the connection at `slot` becomes `new`: move it between
    /// ActiveConn and InActConn, and tell the sync peer. A few times per
    /// connection, not per packet: out of line.
    #[inline(never)]
    fn conn_state_changed(&mut self, slot: usize, new: ConnState) {
        let c = self.table.get_mut(slot);
        c.state = new as u8;
        let active = new.is_active();
        if active != c.active {
            let d = if active { 1 } else { -1 };
            let counts = conn_counts::ConnCounts {
                stats: &self.stats,
                least: &self.least,
            };
            counts.change(c.rs, d, -d);
            c.active = active;
        }
        if self.sync_out.is_some() {
            self.sync_slot(slot, new);
        }
    }

    /// Queue a sync record of the connection at `slot` (out of line: only
    /// state changes of a syncing director get here).
    #[cold]
    #[inline(never)]
    fn sync_slot(&self, slot: usize, state: ConnState) {
        let c = self.table.get(slot);
        self.sync_conn(&c.key(), c.rs, state);
    }

    /// Send to real server `rs` by its forwarding method.
    #[inline(always)]
    fn forward(&mut self, frame: &mut [u8], rs: u32, svc_idx: usize, words: &[u64; 2]) -> Action {
        // A DR server's plan: its header written, no route or neighbour
        // looked up (see `fwd_cache`).
        if let Some(port) = self.fwd.apply(rs, frame) {
            return self
                .dr_sent(frame.len(), rs, svc_idx, port, Counter::FwdDr)
                .into();
        }
        self.forward_unplanned(frame, rs, svc_idx, words)
    }

    /// [`forward`](Self::forward) to a server without a valid plan: by its
    /// route, making a plan if it is reached by DR. (Inlined: out of line,
    /// the tunnel path paid the call, +15 per packet.)
    #[inline(always)]
    fn forward_unplanned(
        &mut self,
        frame: &mut [u8],
        rs: u32,
        svc_idx: usize,
        words: &[u64; 2],
    ) -> Action {
        // An IPIP server's plan (see `tunnel_plan`).
        if let Some(a) = self.tunnel_planned(frame, rs, svc_idx) {
            return a;
        }
        let Some(route) = self.snap.route_ref(rs) else {
            return Verdict::Drop(Counter::DropRealServerGone).into();
        };
        if route.forward == Forward::Dr && !route.local {
            let v = self.dr_to(frame, route, rs, svc_idx, Counter::FwdDr);
            if let (Verdict::Tx(port), Some(h)) = (v, frame.first_chunk::<12>()) {
                // The header just written is the plan.
                self.fwd.record(rs, *h, port);
            }
            return v.into();
        }
        if route.local {
            let port = route.port;
            self.forward_local(frame.len(), rs, svc_idx, port)
        } else if route.forward == Forward::Tunnel {
            let hop = tunnel::TunnelHop::from(route);
            self.forward_tunnel(frame, rs, hop, svc_idx, words, true)
        } else {
            self.dr_to(frame, route, rs, svc_idx, Counter::FwdDr).into()
        }
    }

    /// To this director's own host (a local real server): counted like a
    /// forwarded packet, delivered through the kernel interface. Out of
    /// line, to keep [`forward`](Self::forward) small.
    #[cold]
    #[inline(never)]
    fn forward_local(&mut self, len: usize, rs: u32, svc_idx: usize, port: u16) -> Action {
        self.count_in(rs, self.snap.services[svc_idx].id, len);
        Verdict::Local { port, peer: false }.into()
    }

    /// [`dr_to`](Self::dr_to) real server `rs`, counting `outcome` when
    /// sent.
    #[inline]
    fn forward_dr_as(
        &self,
        frame: &mut [u8],
        rs: u32,
        svc_idx: usize,
        outcome: Counter,
    ) -> Verdict {
        match self.snap.route_ref(rs) {
            Some(route) => self.dr_to(frame, route, rs, svc_idx, outcome),
            None => Verdict::Drop(Counter::DropRealServerGone),
        }
    }

    /// DR: the real server's MAC as destination, our port's as source; IP and
    /// L4 untouched. Counts `outcome` when sent.
    #[inline(always)]
    fn dr_to(
        &self,
        frame: &mut [u8],
        route: &snapshot::RsRoute,
        rs: u32,
        svc_idx: usize,
        outcome: Counter,
    ) -> Verdict {
        let snap = &*self.snap;
        let Some(mac) = self.neigh.mac(route.neigh as usize) else {
            self.neigh.want(route.neigh as usize);
            return Verdict::Drop(Counter::DropNeighUnresolved);
        };
        let out_mac = &snap.ports[route.port as usize].mac;
        // Both MACs through one bounds check (every frame here passed the
        // classifier's Ethernet check); the port's copied from the
        // snapshot straight into the frame.
        if let Some(h) = frame.first_chunk_mut::<12>() {
            h[..6].copy_from_slice(&mac.0);
            h[6..].copy_from_slice(&out_mac.0);
        }
        self.dr_sent(frame.len(), rs, svc_idx, route.port, outcome)
    }

    /// A DR frame of `len` bytes to real server `rs` goes out of `port`:
    /// counted, with `outcome`.
    #[inline(always)]
    fn dr_sent(&self, len: usize, rs: u32, svc_idx: usize, port: u16, outcome: Counter) -> Verdict {
        self.count_rs_in(rs, len);
        self.tally.service_in(&self.stats, &self.snap, svc_idx, len);
        self.stats.count(outcome);
        Verdict::Tx(port)
    }
}

impl Worker {
    /// Count a frame of `len` bytes sent towards real server `rs` of the
    /// service with id `svc_id` (ipvsadm's "in" direction).
    #[inline(always)]
    fn count_in(&self, rs: u32, svc_id: u32, len: usize) {
        self.count_rs_in(rs, len);
        let ss = &self.stats.services[svc_id as usize];
        crate::counters::bump(&ss.packets, 1);
        crate::counters::bump(&ss.bytes, len as u64);
    }

    /// The real server's half of [`count_in`](Self::count_in) (the
    /// service's goes to the burst's tally on the forwarding paths).
    #[inline(always)]
    fn count_rs_in(&self, rs: u32, len: usize) {
        let st = &self.stats.rs[rs as usize];
        crate::counters::bump(&st.packets, 1);
        crate::counters::bump(&st.bytes, len as u64);
    }

    /// Count a reply of `len` bytes from real server `rs` to a client
    /// (ipvsadm's "out" direction).
    #[inline(always)]
    fn count_out(&self, rs: u32, svc_id: u32, len: usize) {
        let st = &self.stats.rs[rs as usize];
        crate::counters::bump(&st.packets_out, 1);
        crate::counters::bump(&st.bytes_out, len as u64);
        self.tally.service_out(&self.stats, svc_id, len);
    }
}

/// Send on `port` with the IPv4 header checksum left to the NIC. Out of
/// line: inlined, a plain buffer's software checksum made `run` large
/// enough to cost the DR path instructions (callgrind).
#[inline(never)]
fn offload_ipv4<B: PacketBuf>(pkt: &mut B, port: u16) -> Verdict {
    // A validated IPv4 packet: its IHL gives the header length.
    let l3_len = pkt.data().get(ETH).map_or(0, |b| usize::from(b & 0x0f) * 4);
    pkt.offload_checksums(ETH, l3_len, TxChecksums::IPV4);
    Verdict::Tx(port)
}

/// Undo a connection's contribution to ActiveConn/InActConn (either
/// family's).
fn forget<K: crate::conntrack::TableKey>(counts: conn_counts::ConnCounts, c: &Conn<K>) {
    if c.active {
        counts.change(c.rs, -1, 0);
    } else {
        counts.change(c.rs, 0, -1);
    }
    counts.stats.count(Counter::ConnExpired);
}

fn ipv4_error(e: WireError) -> Counter {
    match e {
        WireError::BadVersion => Counter::DropIpv4BadVersion,
        WireError::BadHeaderLen | WireError::HeaderTruncated => Counter::DropIpv4BadHeaderLen,
        WireError::BadTotalLen | WireError::PayloadTruncated => Counter::DropIpv4BadTotalLen,
        _ => Counter::DropIpv4Truncated,
    }
}

/// A `Worker::plain_state` no connection's state (a byte) equals.
const NO_PLAIN_STATE: u16 = 0x100;

/// `Worker::plain_state` under `snap`: ESTABLISHED if `snap` spares an
/// established connection's plain segment the dead-server and persistence
/// tests, otherwise a state no entry has.
fn plain_state(snap: &Snapshot) -> u16 {
    if !snap.any_dead && !snap.any_persistence {
        ConnState::Established as u16
    } else {
        NO_PLAIN_STATE
    }
}

/// Source addresses no client can legitimately have.
#[inline]
fn bad_source(ip: u32) -> bool {
    let first = (ip >> 24) as u8;
    // 0/8 and 224/3 in one compare (0 wraps to 255), then 127/8.
    first.wrapping_sub(1) >= 223 || first == 127
}

/// Which protocol a service number means (for listings).
pub fn protocol_of(proto: u8) -> Option<Protocol> {
    match proto {
        ipv4::PROTO_TCP => Some(Protocol::Tcp),
        ipv4::PROTO_UDP => Some(Protocol::Udp),
        _ => None,
    }
}

/// Build a broadcast ARP request from `port` asking for `target` into `buf`
/// (at least 60 bytes); returns the frame length.
pub fn arp_request(
    buf: &mut [u8],
    port_mac: MacAddr,
    port_ip: std::net::Ipv4Addr,
    target: std::net::Ipv4Addr,
) -> usize {
    arp::build_arp(
        buf,
        arp::ARP_REQUEST,
        port_mac,
        MacAddr::BROADCAST,
        port_mac,
        port_ip,
        MacAddr::ZERO,
        target,
    )
}

/// Build a Neighbour Solicitation from `port` asking for `target`'s MAC
/// into `buf` (at least [`ndp::FRAME_LEN`](crate::wire::ndp::FRAME_LEN),
/// 86 bytes): the IPv6 counterpart of [`arp_request`], sent to the
/// target's solicited-node group from `port_ip` (the port's `address6`, or
/// its link-local address). Returns the frame length.
pub fn ndp_solicit(
    buf: &mut [u8],
    port_mac: MacAddr,
    port_ip: std::net::Ipv6Addr,
    target: std::net::Ipv6Addr,
) -> usize {
    crate::wire::ndp::build_ns(buf, port_mac, port_ip, target)
}

/// Build an unsolicited Neighbour Advertisement for `target` (a VIP this
/// director takes over) from `port_mac` to all-nodes into `buf` (at least
/// 86 bytes): the IPv6 counterpart of a gratuitous ARP. Returns the frame
/// length.
pub fn unsolicited_na(buf: &mut [u8], port_mac: MacAddr, target: std::net::Ipv6Addr) -> usize {
    crate::wire::ndp::build_unsolicited_na(buf, port_mac, target)
}

#[cfg(test)]
mod tests;
