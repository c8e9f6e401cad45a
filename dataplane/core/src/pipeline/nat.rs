//! NAT (masquerading, `ipvsadm -m`): the director rewrites the client's
//! packets to the real server's address and port, and the real server's
//! replies back to the VIP's.
//!
//! A NAT connection lives in the table shared by all workers
//! ([`SharedConnTable`]), under two keys:
//! * the **request key** (protocol, client, client port, VIP, VIP port) —
//!   what client packets carry; its value is the real server id, its state
//!   is the connection's TCP state, flag [`EntryFlags::ACTIVE`] marks
//!   ActiveConn;
//! * the **reply key** ([`EntryKind::Reply`]: real server, real server port,
//!   client, client port) — what the real server's replies carry; its value
//!   is the service id (which gives the VIP and port to restore), its flag
//!   [`EntryFlags::REPLY`].
//!
//! Requests arrive on the client-facing port and replies on the real-server
//! facing one, usually on different workers: each finds the connection with
//! the same lock-free lookup. Both directions drive the state through IPVS's
//! full table ([`tcp_nat`]). Deadlines are refreshed only when they would
//! move by more than [`REFRESH_SLACK_MS`], so a busy flow writes its entries
//! about once a second instead of once a packet.
//!
//! Replies go back where the client's packets came from: the MAC and port
//! recorded when the connection was made ([`ClientMacs`](crate::neigh::ClientMacs)). The TTL is
//! decremented, as a router does.
//!
//! Checksums, measured per packet with callgrind (`examples/csum_cost.rs`,
//! docs/DEPLOYMENT.md): the **IPv4 header checksum** is left to the NIC
//! when the egress port negotiated IPv4 checksum offload (zeroing the field
//! and writing the mbuf's flags: ≈ 8 instructions plus the call handing the
//! request over, against ≈ 34 for the two incremental updates), and updated
//! incrementally (RFC 1624) otherwise;
//! the header was verified on arrival, so nothing is lost by recomputing
//! it. The **TCP/UDP checksum** is always updated incrementally, even when
//! the NIC offers TCP/UDP offload: that is cheaper (≈ 34 instructions
//! against ≈ 46 for the pseudo-header sum the offload needs in the field)
//! and keeps the checksum end to end — the director never verifies it, and
//! a NIC recomputing it from scratch would give a segment damaged on the
//! way in a valid checksum.

use crate::config::Forward;
use crate::conntrack::keyspace::{EntryFlags, EntryKind};
use crate::conntrack::shared::{Entry, SharedConnTable, PROBE_BUCKETS};
use crate::conntrack::{tcp_nat, ConnKey, ConnState, Dir, TableKey, Tick};
use crate::counters::{bump, Counter};
use crate::wire::checksum::fold;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::ipv4;
use crate::wire::TcpFlags;

pub use super::nat_state::NatState;
use super::snapshot::RsRoute;
use super::{Action, BufOp, TxChecksums, Verdict, Worker, ETH};

/// Buckets searched for a half-open connection to evict when the window
/// of a new one has none (SYN-flood defence; bounded, off the hit path).
const EVICT_SCAN_BUCKETS: usize = 64;
/// Deadlines closer than this to their new value are not rewritten.
pub const REFRESH_SLACK_MS: u32 = 1000;

pub(crate) fn reply_key(
    proto: u8,
    rs_ip: u32,
    rs_port: u16,
    client_ip: u32,
    client_port: u16,
) -> ConnKey {
    EntryKind::Reply.mark(ConnKey {
        proto,
        client_ip: rs_ip,
        client_port: rs_port,
        vip: client_ip,
        vport: client_port,
    })
}

/// The real server's port for a packet to `vport`: its own, or for the real
/// servers of a service on all ports (port 0) the packet's.
#[inline]
pub(crate) fn rs_port(rport: u16, vport: u16) -> u16 {
    if rport == 0 {
        vport
    } else {
        rport
    }
}

/// Rewrite the destination (`dst = true`) or source address and port of the
/// IPv4 packet at `frame[ETH..]` whose L4 header starts at `l4`, decrement
/// the TTL, and patch the checksums incrementally — the IPv4 header's only
/// when the NIC does not compute it (`nic_ipv4` false).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn rewrite(
    frame: &mut [u8],
    l4: usize,
    l4_end: usize,
    proto: u8,
    dst: bool,
    ip: u32,
    port: u16,
    nic_ipv4: bool,
) {
    // Every field and checksum is read and written in the machine's byte
    // order ("raw"), not swapped to numbers: the one's-complement sum does
    // not depend on byte order (RFC 1071 §2(B)), so patching the raw words
    // gives the raw checksum, with no byte swap per field.
    let ip_raw = u32::from_ne_bytes(ip.to_be_bytes());
    let ip_change = {
        // The fixed header as an array: every field below at a constant
        // offset, behind this one bounds check.
        let h: &mut [u8; ipv4::HEADER_LEN] = (&mut frame[ETH..ETH + ipv4::HEADER_LEN])
            .try_into()
            .expect("20 bytes");
        let at = if dst { 16 } else { 12 };
        let old = u32::from_ne_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        h[8] -= 1;
        h[at..at + 4].copy_from_slice(&ip_raw.to_ne_bytes());
        // One term for both checksums (the address is in the L4
        // pseudo-header too).
        let ip_change = change32(old, ip_raw);
        if !nic_ipv4 {
            let c = patch(
                u16::from_ne_bytes([h[10], h[11]]),
                ip_change + TTL_DECREMENT,
            );
            h[10..12].copy_from_slice(&c.to_ne_bytes());
        }
        ip_change
    };
    let seg = &mut frame[l4..l4_end];
    let port_at = if dst { 2 } else { 0 };
    let port_raw = u16::from_ne_bytes(port.to_be_bytes());
    // The L4 header up to its checksum as an array (TCP's 18 bytes, UDP's
    // 8): the fields at constant offsets behind one length check.
    if proto == ipv4::PROTO_TCP {
        let h = seg.first_chunk_mut::<18>().expect("a validated TCP header");
        patch_l4(h, port_at, 16, false, ip_change, port_raw);
    } else {
        let h = seg.first_chunk_mut::<8>().expect("a validated UDP header");
        patch_l4(h, port_at, 6, true, ip_change, port_raw);
    }
}

/// Write `port` at `port_at` of the L4 header `h` and update its checksum
/// at `csum_at` for that change and the address change `ip_change` (a
/// [`change32`] term); a UDP checksum (`udp`) that is absent (0) stays
/// absent, and one that comes out 0 is sent as 0xffff. `port`, the
/// checksum and `ip_change` are all in the machine's byte order, as
/// `rewrite` reads them (0 and 0xffff are the same in either order).
#[inline(always)]
fn patch_l4<const N: usize>(
    h: &mut [u8; N],
    port_at: usize,
    csum_at: usize,
    udp: bool,
    ip_change: u32,
    port: u16,
) {
    let old_port = u16::from_ne_bytes([h[port_at], h[port_at + 1]]);
    h[port_at..port_at + 2].copy_from_slice(&port.to_ne_bytes());
    let old_csum = u16::from_ne_bytes([h[csum_at], h[csum_at + 1]]);
    if udp && old_csum == 0 {
        return; // no UDP checksum: stays absent
    }
    let mut c = patch(old_csum, ip_change + change16(old_port, port));
    if udp && c == 0 {
        c = 0xffff;
    }
    h[csum_at..csum_at + 2].copy_from_slice(&c.to_ne_bytes());
}

/// The [`change16`] term of the (TTL, protocol) word when the TTL (at
/// least 1: the callers drop packets whose TTL would expire) goes down by
/// one: the word read raw goes from `w` to `w - d`, where `d` is the TTL
/// byte's weight in the machine's order, so the term `!w + (w - d)` is
/// `0xffff - d` whatever the TTL and protocol (tested against the words).
const TTL_DECREMENT: u32 = 0xffff - u16::from_ne_bytes([1, 0]) as u32;

/// RFC 1624's incremental update (`checksum::incremental_update16`) for
/// several changed words at once: `changes` is the sum of their
/// [`change16`]/[`change32`] terms (at most six words: no overflow), and
/// one fold serves them all. The result is exactly that of updating word
/// by word: both are the one representative of the same sum modulo 0xffff
/// in 1..=0xffff (or 0 when every term is 0), so `rewrite` folds once per
/// checksum instead of twice (tested against the word-by-word updates).
#[inline(always)]
fn patch(checksum: u16, changes: u32) -> u16 {
    !fold(u32::from(!checksum) + changes)
}

/// A 16-bit word going from `old` to `new`, as a term for [`patch`].
#[inline(always)]
fn change16(old: u16, new: u16) -> u32 {
    u32::from(!old) + u32::from(new)
}

/// A 32-bit value at an even offset going from `old` to `new`, as a term
/// for [`patch`].
#[inline(always)]
fn change32(old: u32, new: u32) -> u32 {
    change16((old >> 16) as u16, (new >> 16) as u16) + change16(old as u16, new as u16)
}

impl Worker {
    /// The shared NAT table, when this director has NAT services (and the
    /// worker a table): where a service packet's connection is looked up
    /// first, and which table [`Flow::hash`](super::parsed::Flow) is for.
    #[inline(always)]
    pub(super) fn nat_table(&self) -> Option<&SharedConnTable> {
        match &self.nat {
            Some(n) if self.snap.has_nat => Some(&n.table),
            _ => None,
        }
    }

    /// Give this worker the NAT table (lbd does for every worker).
    pub fn with_nat(mut self, nat: NatState) -> Worker {
        self.nat = Some(nat);
        self
    }

    /// Idle-time work on this worker's slice of the NAT table.
    pub(super) fn nat_housekeeping(&mut self, now: Tick, buckets: usize) {
        let Some(n) = self.nat.as_mut() else { return };
        let span = n.sweep_hi - n.sweep_lo;
        let count = buckets.min(span);
        let counts = super::conn_counts::ConnCounts {
            stats: &self.stats,
            least: &self.least,
        };
        let next = n
            .table
            .sweep(n.cursor, count, now, |e| forget_entry(counts, e));
        n.cursor = if next >= n.sweep_hi || next < n.sweep_lo {
            n.sweep_lo
        } else {
            next
        };
    }

    /// A packet to a VIP whose connection is a NAT one: forward it.
    /// Returns None when there is no live NAT connection for `key` (or the
    /// old one was closing and this SYN starts a new one).
    /// In line: stage 2 runs a loop of its own for a NAT director (see
    /// `process_planned`), so this does not weigh on the DR director's.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn nat_request(
        &mut self,
        frame: &mut [u8],
        key: &ConnKey,
        words: &[u64; 2],
        hash: u64,
        svc_idx: usize,
        l4: usize,
        l4_end: usize,
        flags: TcpFlags,
        now: Tick,
    ) -> Option<Result<u16, Action>> {
        let nat = self.nat.as_ref()?;
        let table = &*nat.table;
        // `words` is `key` packed (the flow's) and `hash` their hash in
        // this table: no repacking or hashing again.
        let e = table.lookup_packed(key, words, hash, now)?;
        let is_tcp = key.proto == ipv4::PROTO_TCP;
        // Borrowed: the forward below takes this route, not a second lookup.
        let route = self.snap.route_ref(e.rs);
        if is_tcp
            && flags.syn()
            && !flags.ack()
            && (ConnState::from_u8(e.state).reusable_by_syn() || self.snap.unavailable(e.rs))
        {
            // Copies, for the same reason as `nat_advance`'s.
            let (seen, k) = (e, *key);
            self.nat_end_for_syn(table, &seen, &k, now);
            return None;
        }
        let Some(route) = route else {
            return Some(Err(Verdict::Drop(Counter::DropRealServerGone).into()));
        };
        // The reply entry is looked up only if its deadline must move.
        let reply_entry = || {
            let rk = reply_key(
                key.proto,
                u32::from(route.addr),
                rs_port(route.rport, key.vport),
                key.client_ip,
                key.client_port,
            );
            table.lookup(&rk, table.hash(&rk), now)
        };
        self.nat_advance(table, &e, reply_entry, Dir::Input, is_tcp, flags, now);
        self.persist_touch(words, svc_idx, now);
        // The key is the frame's (the flow's words): its VIP port is the
        // frame's destination port, not read again.
        let (rs, proto, vport) = (e.rs, key.proto, key.vport);
        // The server's forward plan (`fwd_cache`): the MACs and the egress
        // port the full path would find. A plan exists only for a resolved
        // neighbour of a server in this snapshot, so the full path's
        // neighbour check would pass; its TTL check, which comes next,
        // runs here first (a frame about to be dropped is left untouched).
        if frame[ETH + 8] > 1 {
            if let Some(port) = self.fwd.apply(rs, frame) {
                let nic_ipv4 = self.nic_checksums(port).contains(TxChecksums::IPV4);
                let (ip, port_to) = (u32::from(route.addr), rs_port(route.rport, vport));
                rewrite(frame, l4, l4_end, proto, true, ip, port_to, nic_ipv4);
                self.nat_sent(frame.len(), rs, svc_idx);
                // A plain `Tx` as the DR plan's: stage 2 writes it as it
                // is, not through an `Action` (measured with callgrind).
                return Some(if nic_ipv4 {
                    Err(send(port, true))
                } else {
                    Ok(port)
                });
            }
        }
        Some(Err(self.nat_forward_planning(
            frame, rs, svc_idx, l4, l4_end, proto, vport,
        )))
    }

    /// [`nat_forward_request`](Self::nat_forward_request) for a server
    /// without a valid plan (the first packet after the plans were
    /// dropped): by its route, recording the plan when the frame is sent.
    /// Out of line: once per server and plan epoch.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    fn nat_forward_planning(
        &mut self,
        frame: &mut [u8],
        rs: u32,
        svc_idx: usize,
        l4: usize,
        l4_end: usize,
        proto: u8,
        vport: u16,
    ) -> Action {
        let Some(route) = self.snap.route(rs) else {
            return Verdict::Drop(Counter::DropRealServerGone).into();
        };
        let a = self.nat_forward_request(frame, rs, &route, svc_idx, l4, l4_end, proto, vport);
        let sent = matches!(
            a,
            Action::Done(Verdict::Tx(_)) | Action::Buf(BufOp::TxIpv4Offload(_))
        );
        // The header just written is the plan: the same bytes and port as
        // a DR server's (`Worker::dr_to`), which the DR path also sends a
        // NAT server's entry with. Never for a local or a tunnel server:
        // the DR path applies any plan it finds, and their frames take
        // other ways (kept for a connection made before a reload changed
        // the server's method).
        if sent && !route.local && route.forward != Forward::Tunnel {
            if let Some(h) = frame.first_chunk::<12>() {
                self.fwd.record(rs, *h, route.port);
            }
        }
        a
    }

    /// A client reusing its port, or a SYN for a real server that is out
    /// of service: end the old connection `e` (for `key`) here, both its
    /// entries. Out of line: the hit path stays small.
    #[cold]
    #[inline(never)]
    fn nat_end_for_syn(&self, table: &SharedConnTable, e: &Entry, key: &ConnKey, now: Tick) {
        if table.remove(e) {
            forget_entry(self.counts(), e);
        }
        self.remove_reply_entry(table, e.rs, key, now);
    }

    /// Remove the reply entry of the NAT connection `key` to real server
    /// `rs`, if it is still there (its request entry is being removed).
    fn remove_reply_entry(&self, table: &SharedConnTable, rs: u32, key: &ConnKey, now: Tick) {
        if let Some(r) = self.snap.route_ref(rs) {
            let rk = reply_key(
                key.proto,
                u32::from(r.addr),
                rs_port(r.rport, key.vport),
                key.client_ip,
                key.client_port,
            );
            if let Some(re) = table.lookup(&rk, table.hash(&rk), now) {
                table.remove(&re);
            }
        }
    }

    /// Create a NAT connection to real server `rs` (already scheduled) for
    /// `key`, remember where the client is, and forward the packet.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nat_create(
        &self,
        frame: &mut [u8],
        key: &ConnKey,
        svc_idx: usize,
        rs: u32,
        l4: usize,
        l4_end: usize,
        flags: TcpFlags,
        rx_port: u16,
        now: Tick,
    ) -> Action {
        let Some(nat) = self.nat.as_ref() else {
            return Verdict::Drop(Counter::DropNatDisabled).into();
        };
        let table = &*nat.table;
        let Some(route) = self.snap.route(rs) else {
            return Verdict::Drop(Counter::DropRealServerGone).into();
        };
        let is_tcp = key.proto == ipv4::PROTO_TCP;
        let state = if !is_tcp {
            ConnState::Udp
        } else if flags.syn() {
            tcp_nat(ConnState::None, Dir::Input, flags)
        } else {
            // Adopted mid-flow (sloppy_tcp): it was established before.
            tcp_nat(ConnState::Established, Dir::Input, flags)
        };
        let expires = now.wrapping_add(state.timeout_ms(&self.timeouts));
        let rk = reply_key(
            key.proto,
            u32::from(route.addr),
            rs_port(route.rport, key.vport),
            key.client_ip,
            key.client_port,
        );
        let rh = table.hash(&rk);
        if table.lookup(&rk, rh, now).is_some() {
            // The same client port already talks to this real server
            // through another VIP: replies could not be told apart.
            return Verdict::Drop(Counter::DropNatConflict).into();
        }
        let svc_id = self.snap.services[svc_idx].id;
        let forget = |e: &Entry| forget_entry(self.counts(), e);
        let active = EntryFlags::active_if(state.is_active());
        let kh = table.hash(key);
        let insert_request =
            || table.insert(key, kh, rs, expires, state as u8, active, now, forget);
        let fwd = match insert_request() {
            Ok(i) => i,
            // SYN-flood defence: a half-open connection makes room.
            Err(_) if flags.syn() && self.nat_evict_embryonic(table, kh, None, now) => {
                match insert_request() {
                    Ok(i) => i,
                    Err(_) => return Verdict::Drop(Counter::DropConnTableFull).into(),
                }
            }
            Err(_) => return Verdict::Drop(Counter::DropConnTableFull).into(),
        };
        // The reply entry outlives the request entry by a little, so a late
        // reply still finds its way while the connection closes.
        let reply_expires = expires.wrapping_add(REFRESH_SLACK_MS * 2);
        // Linked to the request entry's slot: a reply reads it directly.
        let insert_reply = || {
            table.insert_linked(
                &rk,
                rh,
                svc_id,
                reply_expires,
                fwd,
                EntryFlags::REPLY,
                now,
                forget,
            )
        };
        let reply = insert_reply().or_else(|e| {
            // Never the request entry just inserted (half-open too, and in
            // this window when both keys' windows meet): the SYN would go
            // out with a reply entry and no connection.
            if flags.syn() && self.nat_evict_embryonic(table, rh, Some(fwd), now) {
                insert_reply()
            } else {
                Err(e)
            }
        });
        if reply.is_err() {
            if let Some(e) = table
                .lookup(key, table.hash(key), now)
                .filter(|e| e.index == fwd)
            {
                table.remove(&e);
            }
            return Verdict::Drop(Counter::DropConnTableFull).into();
        }
        if let Ok(eth) = EthernetFrame::new_checked(&frame[..]) {
            nat.clients.learn(key.client_ip, eth.src(), rx_port);
        }
        if active.contains(EntryFlags::ACTIVE) {
            self.conn_counts(rs, 1, 0);
        } else {
            self.conn_counts(rs, 0, 1);
        }
        bump(&self.stats.rs[rs as usize].conns, 1);
        bump(&self.stats.services[svc_id as usize].conns, 1);
        self.stats.count(Counter::ConnCreated);
        self.sync_nat(key, rs, state);
        let vport = u16::from_be_bytes([frame[l4 + 2], frame[l4 + 3]]);
        self.nat_forward_request(frame, rs, &route, svc_idx, l4, l4_end, key.proto, vport)
    }

    /// While the SYN-flood defence is engaged: evict the half-open NAT
    /// connection (request entry in SYN_RECV: a client SYN, never ACKed)
    /// with the earliest deadline in the window of `hash`, and its reply
    /// entry. Established connections, replies' entries, persistence
    /// templates and the entry at index `keep` are never chosen. Returns
    /// whether one was evicted.
    #[cold]
    fn nat_evict_embryonic(
        &self,
        table: &SharedConnTable,
        hash: u64,
        keep: Option<usize>,
        now: Tick,
    ) -> bool {
        if !self.flood.engaged() {
            return false;
        }
        let syn_recv = ConnState::SynRecv as u8;
        let not_request = EntryFlags::REPLY | EntryFlags::TEMPLATE;
        let half_open = |e: &Entry| {
            !e.flags.intersects(not_request)
                && e.state == syn_recv
                && !e.is_expired(now)
                && Some(e.index) != keep
        };
        // Its window first (frees a slot there); else the buckets after it
        // (frees capacity, when that was what ran out).
        let oldest = |buckets| {
            table
                .entries_near(hash, buckets)
                .filter(half_open)
                .min_by_key(|e| e.expires.wrapping_sub(now))
        };
        let Some(victim) = oldest(PROBE_BUCKETS).or_else(|| oldest(EVICT_SCAN_BUCKETS)) else {
            return false;
        };
        if !table.remove(&victim) {
            return false; // another worker got there first
        }
        forget_entry(self.counts(), &victim);
        self.stats.count(Counter::ConnEmbryonicEvicted);
        self.remove_reply_entry(table, victim.rs, &victim.key, now);
        true
    }

    /// A TCP/UDP packet that is not for a VIP or us: a NAT reply?
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nat_reply(
        &self,
        frame: &mut [u8],
        proto: u8,
        src: u32,
        dst: u32,
        l4: usize,
        l4_end: usize,
        now: Tick,
    ) -> Action {
        let addrs = (u64::from(src) << 32) | u64::from(dst);
        match self.nat_reply_hashed(frame, proto, addrs, l4, l4_end, None, now) {
            Ok(port) => Verdict::Tx(port).into(),
            Err(a) => a,
        }
    }

    /// [`nat_reply`](Self::nat_reply) for the IPv4 header's (source,
    /// destination) `addrs` as one word, with the reply key's hash in the
    /// shared table when the burst's stage 1 computed it (`rk_hash`; the
    /// same value, computed without side effects).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn nat_reply_hashed(
        &self,
        frame: &mut [u8],
        proto: u8,
        addrs: u64,
        l4: usize,
        l4_end: usize,
        rk_hash: Option<u64>,
        now: Tick,
    ) -> Result<u16, Action> {
        let dst = addrs as u32;
        let Some(nat) = self.nat.as_ref() else {
            return Err(Verdict::Drop(Counter::DropIpv4NotLocal).into());
        };
        let table = &*nat.table;
        let clients = &*nat.clients;
        let seg = &frame[l4..l4_end];
        let min = if proto == ipv4::PROTO_TCP { 20 } else { 8 };
        if seg.len() < min {
            return Err(Verdict::Drop(if proto == ipv4::PROTO_TCP {
                Counter::DropTcpMalformed
            } else {
                Counter::DropUdpMalformed
            })
            .into());
        }
        let ports = u32::from_be_bytes([seg[0], seg[1], seg[2], seg[3]]);
        let (sport, dport) = ((ports >> 16) as u16, ports as u16);
        let flags = if proto == ipv4::PROTO_TCP {
            TcpFlags(seg[13])
        } else {
            TcpFlags(0)
        };
        if proto == ipv4::PROTO_TCP && !flags.is_valid_combination() {
            return Err(Verdict::Drop(Counter::DropTcpBadFlags).into());
        }
        // The reply key is the packet's own 5-tuple, marked: packed from
        // the header words as they are (`reply_key` of the fields).
        let rk = EntryKind::Reply.mark_words(ConnKey::words_of_wire(addrs, ports, proto));
        let rh = rk_hash.unwrap_or_else(|| table.hash_words(&rk));
        let Some(re) = table.lookup_words(&rk, rh, now) else {
            return Err(Verdict::Drop(Counter::DropNatNoConn).into());
        };
        let Some(svc_idx) = self.snap.service_index(re.rs) else {
            return Err(Verdict::Drop(Counter::DropNatNoConn).into());
        };
        let (vip, vport, svc_id) = {
            let s = &self.snap.services[svc_idx];
            // A service on all ports: the real server kept the port.
            (s.vip_v4, rs_port(s.port, sport), s.id)
        };
        let key = ConnKey {
            proto,
            client_ip: dst,
            client_port: dport,
            vip,
            vport,
        };
        let kw = key.words();
        // The request entry from the slot the reply entry links to; looked
        // up by its key when that slot no longer holds it (the entry was
        // removed and made again elsewhere, or the reply entry has no link:
        // made by the sync peer, or in a table too large for one).
        let e = match table.linked(&re, &key, &kw, now) {
            Some(e) => e,
            None => match table.lookup_packed(&key, &kw, table.hash_words(&kw), now) {
                Some(e) => e,
                None => return Err(Verdict::Drop(Counter::DropNatNoConn).into()),
            },
        };
        let (mac, port) = match self.client_hop(clients, dst) {
            Ok(hop) => hop,
            Err(c) => return Err(Verdict::Drop(c).into()),
        };
        if frame[ETH + 8] <= 1 {
            return Err(Verdict::Drop(Counter::DropIpv4TtlExpired).into());
        }
        // The reply entry was just read: its deadline needs no lookup.
        self.nat_advance(
            table,
            &e,
            || Some(re),
            Dir::Output,
            proto == ipv4::PROTO_TCP,
            flags,
            now,
        );
        let Some(out_port) = self.snap.ports.get(port as usize) else {
            return Err(Verdict::Drop(Counter::DropNatNoClientMac).into());
        };
        let out_mac = out_port.mac;
        let nic_ipv4 = self.nic_checksums(port).contains(TxChecksums::IPV4);
        rewrite(frame, l4, l4_end, proto, false, vip, vport, nic_ipv4);
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_dst(mac);
        eth.set_src(out_mac);
        self.count_out(e.rs, svc_id, frame.len());
        self.stats.count(Counter::FwdNatReply);
        // A plain `Tx` as a port: stage 2 writes it as it is, not through
        // an `Action` (measured with callgrind).
        if nic_ipv4 {
            Err(send(port, true))
        } else {
            Ok(port)
        }
    }

    /// Move the connection's state for one packet in `dir`, keep ActiveConn
    /// right, and push the deadlines of both entries when they would move
    /// (`reply_entry` gives the reply entry, called only then: about once a
    /// second per busy flow).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn nat_advance(
        &self,
        table: &SharedConnTable,
        e: &Entry,
        reply_entry: impl FnOnce() -> Option<Entry>,
        dir: Dir,
        is_tcp: bool,
        flags: TcpFlags,
        now: Tick,
    ) {
        // The common packet, a segment of an established (and counted
        // active) connection without SYN, FIN or RST, moves nothing in
        // either direction (`tcp_nat`'s table; tested below): it needs no
        // state machine and no write to the entry. Everything else goes
        // out of line.
        let new_state = if !is_tcp
            || (e.state == ConnState::Established as u8
                && flags.0 & (TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::RST.0) == 0
                && e.flags.contains(EntryFlags::ACTIVE))
        {
            ConnState::from_u8(e.state)
        } else {
            // A copy made here, where it is needed: `e` itself is then
            // never passed by address, so the hit path keeps its fields in
            // registers instead of writing the whole entry to the stack
            // for this rare call (measured with callgrind).
            let seen = *e;
            self.nat_transition(table, &seen, dir, flags)
        };
        let target = now.wrapping_add(new_state.timeout_ms(&self.timeouts));
        let moves = target.wrapping_sub(e.expires);
        // Refresh when the deadline would move later by more than the slack,
        // or earlier at all (a closing state has a shorter timeout).
        if (moves as i32) > REFRESH_SLACK_MS as i32 || (moves as i32) < 0 {
            table.set_expires(e, target);
            if let Some(re) = reply_entry() {
                table.set_expires(&re, target.wrapping_add(REFRESH_SLACK_MS * 2));
            }
        }
    }

    /// A TCP packet's transition of the connection whose request entry is
    /// `e`, written to the entry (state and the ACTIVE flag, by
    /// compare-and-swap against the other direction's worker), with
    /// ActiveConn/InActConn and the sync peer told of a change. Returns the
    /// state the deadline follows.
    #[inline(never)]
    fn nat_transition(
        &self,
        table: &SharedConnTable,
        e: &Entry,
        dir: Dir,
        flags: TcpFlags,
    ) -> ConnState {
        let mut new_state = ConnState::from_u8(e.state);
        if let Some(((_, old_flags), (st, new_flags))) = table.update_state(e, |st, fl| {
            let ns = tcp_nat(ConnState::from_u8(st), dir, flags);
            (ns as u8, fl.with(EntryFlags::ACTIVE, ns.is_active()))
        }) {
            new_state = ConnState::from_u8(st);
            if new_state as u8 != e.state {
                self.sync_nat(&e.key, e.rs, new_state);
            }
            // A connection synced from the peer is not counted.
            let active = new_flags.contains(EntryFlags::ACTIVE);
            if old_flags.contains(EntryFlags::ACTIVE) != active
                && !old_flags.contains(EntryFlags::SYNCED)
            {
                let d = if active { 1 } else { -1 };
                self.conn_counts(e.rs, d, -d);
            }
        }
        new_state
    }

    /// Rewrite a client packet to real server `rs` (whose route the caller
    /// has looked up: `route`) and choose its way out; `vport` is the
    /// packet's destination port.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn nat_forward_request(
        &self,
        frame: &mut [u8],
        rs: u32,
        route: &RsRoute,
        svc_idx: usize,
        l4: usize,
        l4_end: usize,
        proto: u8,
        vport: u16,
    ) -> Action {
        let Some(mac) = self.neigh.mac(route.neigh as usize) else {
            self.neigh.want(route.neigh as usize);
            return Verdict::Drop(Counter::DropNeighUnresolved).into();
        };
        if frame[ETH + 8] <= 1 {
            return Verdict::Drop(Counter::DropIpv4TtlExpired).into();
        }
        let nic_ipv4 = self.nic_checksums(route.port).contains(TxChecksums::IPV4);
        rewrite(
            frame,
            l4,
            l4_end,
            proto,
            true,
            u32::from(route.addr),
            rs_port(route.rport, vport),
            nic_ipv4,
        );
        let out_mac = self.snap.ports[route.port as usize].mac;
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_dst(mac);
        eth.set_src(out_mac);
        self.nat_sent(frame.len(), rs, svc_idx);
        send(route.port, nic_ipv4)
    }

    /// A rewritten client frame of `len` bytes to real server `rs` goes
    /// out: counted.
    #[inline(always)]
    fn nat_sent(&self, len: usize, rs: u32, svc_idx: usize) {
        self.count_rs_in(rs, len);
        self.tally.service_in(&self.stats, &self.snap, svc_idx, len);
        self.stats.count(Counter::FwdNat);
    }
}

/// Send a rewritten packet on `port`, its IPv4 header checksum left to the
/// NIC when `nic_ipv4`.
#[inline(always)]
fn send(port: u16, nic_ipv4: bool) -> Action {
    if nic_ipv4 {
        Action::Buf(BufOp::TxIpv4Offload(port))
    } else {
        Verdict::Tx(port).into()
    }
}

/// Undo a removed shared-table entry's contribution to ActiveConn/InActConn
/// (request entries only: reply entries and persistence templates count
/// nothing).
fn forget_entry(counts: super::conn_counts::ConnCounts, e: &Entry) {
    if !e.is_counted() {
        return;
    }
    if e.flags.contains(EntryFlags::ACTIVE) {
        counts.change(e.rs, -1, 0);
    } else {
        counts.change(e.rs, 0, -1);
    }
    counts.stats.count(Counter::ConnExpired);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    /// A client's TCP (to port 80) or UDP (to port 53) frame to the VIP.
    fn client_frame(proto: u8) -> Vec<u8> {
        let b =
            PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([198, 18, 0, 1], [198, 18, 0, 100], 64);
        let mut f = Vec::new();
        if proto == ipv4::PROTO_TCP {
            b.tcp(40000, 80, 7, 1000).write(&mut f, b"hello").unwrap();
        } else {
            b.udp(40000, 53).write(&mut f, b"hello").unwrap();
        }
        f
    }

    /// The checksum, new address and new word of a patch property case:
    /// as drawn, or (by `edge`) one of the edges — no change at all, and
    /// checksums 0 and 0xffff.
    fn with_edge(
        edge: u8,
        c: u16,
        old_ip: u32,
        ip: u32,
        old_w: u16,
        new_w: u16,
    ) -> (u16, u32, u16) {
        match edge {
            0 => (c, old_ip, old_w),
            1 => (0, ip, new_w),
            2 => (0xffff, ip, new_w),
            _ => (c, ip, new_w),
        }
    }

    proptest::proptest! {
        /// One fold for all the changed words gives exactly the checksum of
        /// updating them one by one (the representation of zero included).
        #[test]
        fn one_patch_is_the_word_by_word_update(
            c: u16, old_ip: u32, ip: u32, old_w: u16, new_w: u16, edge in 0u8..4,
        ) {
            use crate::wire::checksum::{incremental_update16, incremental_update32};
            let (c, ip, new_w) = with_edge(edge, c, old_ip, ip, old_w, new_w);
            let one_by_one = incremental_update16(incremental_update32(c, old_ip, ip), old_w, new_w);
            proptest::prop_assert_eq!(patch(c, change32(old_ip, ip) + change16(old_w, new_w)), one_by_one);
        }

        /// `rewrite` patches the words as they lie in memory: on the
        /// byte-swapped words, the patch is the byte-swapped checksum.
        #[test]
        fn the_patch_of_swapped_words_is_the_swapped_patch(
            c: u16, old_ip: u32, ip: u32, old_w: u16, new_w: u16, edge in 0u8..4,
        ) {
            let (c, ip, new_w) = with_edge(edge, c, old_ip, ip, old_w, new_w);
            let be = patch(c, change32(old_ip, ip) + change16(old_w, new_w));
            // A 32-bit field read in the other byte order: all four bytes
            // reversed (each half swapped, and the halves exchanged).
            let sw = u32::swap_bytes;
            let swapped = patch(
                c.swap_bytes(),
                change32(sw(old_ip), sw(ip)) + change16(old_w.swap_bytes(), new_w.swap_bytes()),
            );
            proptest::prop_assert_eq!(swapped, be.swap_bytes());
        }
    }

    /// `nat_advance`'s shortcut: in either direction, a segment without
    /// SYN, FIN or RST leaves an established connection established (and
    /// active), whatever else it carries; each of the three may move it.
    #[test]
    fn established_stays_without_syn_fin_rst_both_ways() {
        let es = ConnState::Established;
        for dir in [Dir::Input, Dir::Output] {
            for f in (0..=255u8).filter(|f| f & 0x07 == 0) {
                assert_eq!(tcp_nat(es, dir, TcpFlags(f)), es, "{dir:?} {f:#x}");
            }
            assert_ne!(tcp_nat(es, dir, TcpFlags::FIN), es);
            assert_ne!(tcp_nat(es, dir, TcpFlags::RST), es);
        }
        assert!(es.is_active());
    }

    /// [`TTL_DECREMENT`] is the change term of every (TTL, protocol)
    /// word whose TTL goes down by one.
    #[test]
    fn the_ttl_decrement_term_is_the_words_change() {
        for ttl in 1..=255u8 {
            for protocol in 0..=255u8 {
                let old = u16::from_ne_bytes([ttl, protocol]);
                let new = u16::from_ne_bytes([ttl - 1, protocol]);
                assert_eq!(change16(old, new), TTL_DECREMENT, "{ttl} {protocol}");
            }
        }
    }

    #[test]
    fn rewrite_keeps_checksums_valid() {
        for proto in [ipv4::PROTO_TCP, ipv4::PROTO_UDP] {
            let mut f = client_frame(proto);
            let l4 = ETH + 20;
            let end = f.len();
            rewrite(
                &mut f,
                l4,
                end,
                proto,
                true,
                u32::from_be_bytes([198, 19, 0, 11]),
                8080,
                false,
            );
            rewrite(
                &mut f,
                l4,
                end,
                proto,
                false,
                u32::from_be_bytes([198, 18, 0, 77]),
                1234,
                false,
            );
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
                panic!()
            };
            assert_eq!(ip.header().destination(), [198, 19, 0, 11]);
            assert_eq!(ip.header().source(), [198, 18, 0, 77]);
            assert_eq!(ip.header().ttl(), 62);
            let h = ip.header().to_header();
            assert_eq!(h.calc_header_checksum(), h.header_checksum, "{proto}");
            match p.transport.unwrap() {
                TransportSlice::Tcp(t) => {
                    assert_eq!((t.source_port(), t.destination_port()), (1234, 8080));
                    let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
                    assert_eq!(t.checksum(), want);
                }
                TransportSlice::Udp(u) => {
                    assert_eq!((u.source_port(), u.destination_port()), (1234, 8080));
                    let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
                    assert_eq!(u.checksum(), want);
                }
                _ => panic!(),
            }
        }
    }

    /// With the IPv4 header checksum left to the NIC, the frame that leaves
    /// is byte for byte the one the incremental updates produce (also when
    /// the arriving header checksum field is anything: it was verified).
    #[test]
    fn rewrite_for_the_nic_matches_software() {
        use crate::pipeline::buf::NicBuf;
        use crate::pipeline::PacketBuf;
        for proto in [ipv4::PROTO_TCP, ipv4::PROTO_UDP] {
            let f = client_frame(proto);
            let (l4, end) = (ETH + 20, f.len());
            let rs = u32::from_be_bytes([198, 19, 0, 11]);
            let mut soft = f.clone();
            rewrite(&mut soft, l4, end, proto, true, rs, 8080, false);
            let mut nic = NicBuf::new(f);
            rewrite(&mut nic.frame, l4, end, proto, true, rs, 8080, true);
            // What `send` asks, and what `Worker::run` does with it.
            assert_eq!(send(1, true), Action::Buf(BufOp::TxIpv4Offload(1)));
            nic.offload_checksums(ETH, 20, TxChecksums::IPV4);
            assert_eq!(nic.transmit(), soft, "{proto}");
        }
    }
}
