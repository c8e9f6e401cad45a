//! NAT66 (`ipvsadm -m` with an IPv6 VIP and real server): the director
//! rewrites the client's packets to the real server's address and port,
//! and the real server's replies back to the VIP's — IPv4 NAT's design
//! (`pipeline::nat`) over IPv6 keys.
//!
//! A NAT66 connection lives in the IPv6 table shared by all workers
//! ([`SharedConnTable<ConnKey6>`], one per director, next to the IPv4 one)
//! under two keys, as in IPv4:
//! * the **request key** (protocol, client, client port, VIP, VIP port):
//!   its value is the real server id, its state the connection's TCP
//!   state, flag [`EntryFlags::ACTIVE`] marks ActiveConn;
//! * the **reply key** ([`EntryKind::Reply`]: real server, real server
//!   port, client, client port): its value is the service id (which gives
//!   the VIP and port to restore), flag [`EntryFlags::REPLY`].
//!
//! Requests and replies usually land on different workers; each finds the
//! connection with the same lock-free lookup. Both directions drive the TCP
//! state through IPVS's full table ([`tcp_nat`]); UDP has its timeout.
//! Deadlines are rewritten only when they would move by more than
//! [`REFRESH_SLACK_MS`], and each worker sweeps its slice of the table when
//! idle (expired request entries leave ActiveConn/InActConn).
//!
//! Per packet: the destination (request) or source (reply) address and port
//! are rewritten, the TCP/UDP checksum patched incrementally (RFC 1624: the
//! pseudo-header holds the addresses; IPv6 has no header checksum), and the
//! hop limit decremented as a router does — a packet arriving with a hop
//! limit of 1 or less is dropped (`drop_ipv6_hop_limit_expired`; no Time
//! Exceeded is sent, as IPv4 NAT does for the TTL). Requests go out of the
//! real server's port to its neighbour (resolved by NDP); replies go back
//! to the MAC and port the client's packets came from
//! ([`ClientMacs6`], learned when the
//! connection was made).
//!
//! Connection sync follows IPv4 NAT's (`pipeline::sync6`): a record on
//! creation and on each TCP state change; the backup stores both entries
//! in its own NAT66 table (flagged [`EntryFlags::SYNCED`], not counted).
//!
//! Not done for NAT66 (documented in `v6`): the SYN-flood
//! defence's eviction of half-open connections (a full table drops the new
//! connection), and static routes towards clients. ICMPv6 errors are in
//! `nat_icmp.rs`.

use std::sync::Arc;

use crate::conntrack::keyspace::{EntryFlags, EntryKind};
use crate::conntrack::shared::{Entry, SharedConnTable};
use crate::conntrack::{tcp_nat, ConnKey6, ConnState, Dir, Tick};
use crate::counters::{bump, Counter};
use crate::wire::checksum::fold;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::TcpFlags;

use super::super::conn_counts::ConnCounts;
use super::super::nat::{rs_port, REFRESH_SLACK_MS};
use super::super::nat_state::sweep_slice;
use super::super::{Action, Verdict, Worker, ETH};
use super::clients::ClientMacs6;
use super::entry::Packet6;

/// Offsets in the IPv6 header.
const HOP_LIMIT_AT: usize = 7;
const SRC_AT: usize = 8;
const DST_AT: usize = 24;

/// What a worker holds for NAT66: the shared table, the clients' return
/// paths, and its share of the table to sweep.
pub struct Nat6State {
    pub table: Arc<SharedConnTable<ConnKey6>>,
    pub clients: Arc<ClientMacs6>,
    sweep_lo: usize,
    sweep_hi: usize,
    cursor: usize,
}

impl Nat6State {
    /// Worker `index` of `workers` sweeps its own slice of the table.
    pub fn new(
        table: Arc<SharedConnTable<ConnKey6>>,
        clients: Arc<ClientMacs6>,
        index: usize,
        workers: usize,
    ) -> Nat6State {
        let (lo, hi) = sweep_slice(table.bucket_count(), index, workers);
        Nat6State {
            table,
            clients,
            sweep_lo: lo,
            sweep_hi: hi,
            cursor: lo,
        }
    }
}

/// The reply key of a NAT66 connection: what the real server's replies
/// carry (real server, its port, client, client port).
pub(in crate::pipeline) fn reply_key6(
    proto: u8,
    rs_ip: u128,
    rs_port: u16,
    client_ip: u128,
    client_port: u16,
) -> ConnKey6 {
    EntryKind::Reply.mark(ConnKey6 {
        proto,
        client_ip: rs_ip,
        client_port: rs_port,
        vip: client_ip,
        vport: client_port,
    })
}

/// RFC 1624's update of `checksum` for the changes summed in `changes`
/// (terms of [`change16`]; nine words at most here, far from overflowing).
#[inline]
pub(super) fn patch(checksum: u16, changes: u32) -> u16 {
    !fold(u32::from(!checksum) + changes)
}

/// A 16-bit word going from `old` to `new`, as a term for [`patch`].
#[inline]
pub(super) fn change16(old: u16, new: u16) -> u32 {
    u32::from(!old) + u32::from(new)
}

/// An IPv6 address going from `old` to `new`, as a term for [`patch`].
#[inline]
pub(super) fn change128(old: u128, new: u128) -> u32 {
    let (o, n) = (old.to_be_bytes(), new.to_be_bytes());
    (0..8)
        .map(|i| {
            change16(
                u16::from_be_bytes([o[2 * i], o[2 * i + 1]]),
                u16::from_be_bytes([n[2 * i], n[2 * i + 1]]),
            )
        })
        .sum()
}

/// Patch the TCP or UDP checksum at `seg[csum_at..]` for an address and a
/// port change; a UDP checksum of zero (none, which IPv6 forbids but some
/// send) is left alone, and a computed zero is sent as 0xffff.
pub(super) fn patch_l4(field: &mut [u8], proto: u8, addr_change: u32, port_change: u32) {
    let old = u16::from_be_bytes([field[0], field[1]]);
    if proto == PROTO_UDP && old == 0 {
        return;
    }
    let mut c = patch(old, addr_change + port_change);
    if proto == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    field[..2].copy_from_slice(&c.to_be_bytes());
}

/// Read the 128-bit address at `frame[at..at + 16]`.
#[inline]
pub(super) fn addr_at(frame: &[u8], at: usize) -> u128 {
    let mut b = [0; 16];
    b.copy_from_slice(&frame[at..at + 16]);
    u128::from_be_bytes(b)
}

/// Rewrite the destination (`dst = true`) or source address and port of the
/// IPv6 packet at `frame[ETH..]` whose TCP/UDP header is `frame[l4..l4_end]`,
/// decrement the hop limit (the caller checked it is above 1) and patch the
/// TCP/UDP checksum.
pub(super) fn rewrite6(
    frame: &mut [u8],
    l4: usize,
    l4_end: usize,
    proto: u8,
    dst: bool,
    ip: u128,
    port: u16,
) {
    let at = ETH + if dst { DST_AT } else { SRC_AT };
    let old_ip = addr_at(frame, at);
    frame[at..at + 16].copy_from_slice(&ip.to_be_bytes());
    frame[ETH + HOP_LIMIT_AT] -= 1;
    let seg = &mut frame[l4..l4_end];
    let port_at = if dst { 2 } else { 0 };
    let old_port = u16::from_be_bytes([seg[port_at], seg[port_at + 1]]);
    seg[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
    let csum_at = if proto == PROTO_TCP { 16 } else { 6 };
    patch_l4(
        &mut seg[csum_at..],
        proto,
        change128(old_ip, ip),
        change16(old_port, port),
    );
}

/// Undo a removed NAT66 entry's contribution to ActiveConn/InActConn
/// (request entries only).
pub(super) fn forget_entry6(counts: ConnCounts, e: &Entry<ConnKey6>) {
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

impl Worker {
    /// Give this worker the NAT66 table (lbd does for every worker).
    pub fn with_nat6(mut self, nat: Nat6State) -> Worker {
        self.nat6 = Some(Box::new(nat));
        self
    }

    /// Idle-time work on this worker's slice of the NAT66 table.
    pub(in crate::pipeline) fn nat6_housekeeping(&mut self, now: Tick, buckets: usize) {
        let counts = ConnCounts {
            stats: &self.stats,
            least: &self.least,
        };
        let Some(n) = self.nat6.as_mut() else { return };
        let count = buckets.min(n.sweep_hi - n.sweep_lo);
        let next = n
            .table
            .sweep(n.cursor, count, now, |e| forget_entry6(counts, e));
        n.cursor = if next >= n.sweep_hi || next < n.sweep_lo {
            n.sweep_lo
        } else {
            next
        };
    }

    /// The address and port a NAT66 real server is reached at for a packet
    /// to `vport`.
    pub(super) fn nat6_target(&self, rs: u32, vport: u16) -> Option<(u128, u16)> {
        let route = self.snap.route_ref(rs)?;
        let ip = self.snap.rs_addr6(rs)?;
        Some((u128::from(ip), rs_port(route.rport, vport)))
    }

    /// A client packet of a live NAT66 connection: forward it. None when
    /// `key` has no live NAT66 connection (or the old one was closing and
    /// this SYN starts a new one).
    pub(super) fn nat6_request(
        &mut self,
        frame: &mut [u8],
        p: &Packet6,
        key: &ConnKey6,
        svc_idx: usize,
        flags: TcpFlags,
        now: Tick,
    ) -> Option<Action> {
        let nat = self.nat6.as_ref()?;
        let table = &*nat.table;
        let e = table.lookup(key, table.hash(key), now)?;
        let is_tcp = key.proto == PROTO_TCP;
        let target = self.nat6_target(e.rs, key.vport);
        if is_tcp
            && flags.syn()
            && !flags.ack()
            && (ConnState::from_u8(e.state).reusable_by_syn() || self.snap.unavailable(e.rs))
        {
            // A client reusing its port, or a SYN for a real server out of
            // service: the old connection ends here.
            if table.remove(&e) {
                forget_entry6(self.counts(), &e);
            }
            if let Some((ip, port)) = target {
                let rk = reply_key6(key.proto, ip, port, key.client_ip, key.client_port);
                if let Some(re) = table.lookup(&rk, table.hash(&rk), now) {
                    table.remove(&re);
                }
            }
            return None;
        }
        let Some((rs_ip, port)) = target else {
            return Some(Verdict::Drop(Counter::DropRealServerGone).into());
        };
        let rk = reply_key6(key.proto, rs_ip, port, key.client_ip, key.client_port);
        self.nat6_advance(&e, &rk, Dir::Input, is_tcp, flags, now);
        Some(self.nat6_forward_request(frame, p, e.rs, svc_idx, rs_ip, port))
    }

    /// Create a NAT66 connection to real server `rs` (scheduled) in `state`
    /// for `key`, remember where the client is, and forward the packet.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nat6_create(
        &mut self,
        frame: &mut [u8],
        p: &Packet6,
        key: &ConnKey6,
        svc_idx: usize,
        rs: u32,
        state: ConnState,
        rx_port: u16,
        now: Tick,
    ) -> Action {
        let Some(nat) = self.nat6.as_ref() else {
            return Verdict::Drop(Counter::DropNatDisabled).into();
        };
        let table = &*nat.table;
        let Some((rs_ip, port)) = self.nat6_target(rs, key.vport) else {
            return Verdict::Drop(Counter::DropRealServerGone).into();
        };
        if p.hop_limit <= 1 {
            // Not forwarded: no connection for it either.
            return Verdict::Drop(Counter::DropIpv6HopLimitExpired).into();
        }
        let expires = now.wrapping_add(state.timeout_ms(&self.timeouts));
        let rk = reply_key6(key.proto, rs_ip, port, key.client_ip, key.client_port);
        let rh = table.hash(&rk);
        if table.lookup(&rk, rh, now).is_some() {
            // The same client port already talks to this real server
            // through another VIP: replies could not be told apart.
            return Verdict::Drop(Counter::DropNatConflict).into();
        }
        let svc_id = self.snap.services[svc_idx].id;
        let counts = self.counts();
        let active = EntryFlags::active_if(state.is_active());
        let kh = table.hash(key);
        let Ok(fwd) = table.insert(key, kh, rs, expires, state as u8, active, now, |e| {
            forget_entry6(counts, e)
        }) else {
            return Verdict::Drop(Counter::DropConnTableFull).into();
        };
        // The reply entry outlives the request entry by a little, so a late
        // reply still finds its way while the connection closes.
        let reply_expires = expires.wrapping_add(REFRESH_SLACK_MS * 2);
        let reply = table.insert(
            &rk,
            rh,
            svc_id,
            reply_expires,
            0,
            EntryFlags::REPLY,
            now,
            |e| forget_entry6(counts, e),
        );
        if reply.is_err() {
            if let Some(e) = table.lookup(key, kh, now).filter(|e| e.index == fwd) {
                table.remove(&e);
            }
            return Verdict::Drop(Counter::DropConnTableFull).into();
        }
        let client_mac = EthernetFrame::new_unchecked(&frame[..]).src();
        nat.clients.learn(key.client_ip, client_mac, rx_port);
        if active.contains(EntryFlags::ACTIVE) {
            self.conn_counts(rs, 1, 0);
        } else {
            self.conn_counts(rs, 0, 1);
        }
        bump(&self.stats.rs[rs as usize].conns, 1);
        bump(&self.stats.services[svc_id as usize].conns, 1);
        self.stats.count(Counter::ConnCreated);
        self.sync_nat6(key, rs, state);
        self.nat6_forward_request(frame, p, rs, svc_idx, rs_ip, port)
    }

    /// A TCP/UDP packet to neither a VIP nor us: a NAT66 reply from a real
    /// server to a client?
    pub(super) fn nat6_reply(&mut self, frame: &mut [u8], p: &Packet6, now: Tick) -> Action {
        let Some(nat) = self.nat6.as_ref() else {
            return Verdict::Drop(Counter::DropIpv6NotLocal).into();
        };
        let table = &*nat.table;
        let seg = &frame[p.l4..p.l4_end];
        let is_tcp = p.proto == PROTO_TCP;
        if seg.len() < if is_tcp { 20 } else { 8 } {
            return Verdict::Drop(if is_tcp {
                Counter::DropTcpMalformed
            } else {
                Counter::DropUdpMalformed
            })
            .into();
        }
        let sport = u16::from_be_bytes([seg[0], seg[1]]);
        let dport = u16::from_be_bytes([seg[2], seg[3]]);
        let flags = TcpFlags(if is_tcp { seg[13] } else { 0 });
        if is_tcp && !flags.is_valid_combination() {
            return Verdict::Drop(Counter::DropTcpBadFlags).into();
        }
        let (src, dst) = (u128::from(p.src), u128::from(p.dst));
        let rk = reply_key6(p.proto, src, sport, dst, dport);
        let Some(re) = table.lookup(&rk, table.hash(&rk), now) else {
            return Verdict::Drop(Counter::DropNatNoConn).into();
        };
        let Some(svc_idx) = self.snap.service_index(re.rs) else {
            return Verdict::Drop(Counter::DropNatNoConn).into();
        };
        let (vip, vport) = {
            let s = &self.snap.services[svc_idx];
            let std::net::IpAddr::V6(vip) = s.vip else {
                return Verdict::Drop(Counter::DropNatNoConn).into();
            };
            // A service on all ports: the real server kept the port.
            (u128::from(vip), rs_port(s.port, sport))
        };
        let key = ConnKey6 {
            proto: p.proto,
            client_ip: dst,
            client_port: dport,
            vip,
            vport,
        };
        let Some(e) = table.lookup(&key, table.hash(&key), now) else {
            return Verdict::Drop(Counter::DropNatNoConn).into();
        };
        let Some((mac, port)) = nat.clients.get(dst) else {
            return Verdict::Drop(Counter::DropNatNoClientMac).into();
        };
        let Some(out_mac) = self.snap.ports.get(usize::from(port)).map(|o| o.mac) else {
            return Verdict::Drop(Counter::DropNatNoClientMac).into();
        };
        if p.hop_limit <= 1 {
            return Verdict::Drop(Counter::DropIpv6HopLimitExpired).into();
        }
        self.nat6_advance(&e, &rk, Dir::Output, is_tcp, flags, now);
        rewrite6(frame, p.l4, p.l4_end, p.proto, false, vip, vport);
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_dst(mac);
        eth.set_src(out_mac);
        self.count_out(e.rs, self.snap.services[svc_idx].id, frame.len());
        self.stats.count(Counter::FwdNatReply);
        Verdict::Tx(port).into()
    }

    /// Move the connection's state for one packet in `dir`, keep ActiveConn
    /// right, and push the deadlines of both entries when they would move.
    fn nat6_advance(
        &self,
        e: &Entry<ConnKey6>,
        rk: &ConnKey6,
        dir: Dir,
        is_tcp: bool,
        flags: TcpFlags,
        now: Tick,
    ) {
        let Some(nat) = self.nat6.as_ref() else {
            return;
        };
        let table = &*nat.table;
        let mut new_state = ConnState::from_u8(e.state);
        // As NAT's (`nat::Worker::nat_advance`): a segment of an
        // established, counted-active connection without SYN, FIN or RST
        // moves nothing in either direction, so it writes nothing.
        let moves_nothing = e.state == ConnState::Established as u8
            && flags.0 & (TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::RST.0) == 0
            && e.flags.contains(EntryFlags::ACTIVE);
        if is_tcp && !moves_nothing {
            if let Some(((_, old_flags), (st, new_flags))) = table.update_state(e, |st, fl| {
                let ns = tcp_nat(ConnState::from_u8(st), dir, flags);
                (ns as u8, fl.with(EntryFlags::ACTIVE, ns.is_active()))
            }) {
                new_state = ConnState::from_u8(st);
                if st != e.state {
                    self.sync_nat6(&e.key, e.rs, new_state);
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
        }
        let target = now.wrapping_add(new_state.timeout_ms(&self.timeouts));
        let moves = target.wrapping_sub(e.expires) as i32;
        // Later by more than the slack, or earlier at all (a closing state
        // has a shorter timeout).
        if moves > REFRESH_SLACK_MS as i32 || moves < 0 {
            table.set_expires(e, target);
            if let Some(re) = table.lookup(rk, table.hash(rk), now) {
                table.set_expires(&re, target.wrapping_add(REFRESH_SLACK_MS * 2));
            }
        }
    }

    /// Rewrite a client packet to the real server `rs_ip`:`port` and send
    /// it to the real server's neighbour.
    fn nat6_forward_request(
        &mut self,
        frame: &mut [u8],
        p: &Packet6,
        rs: u32,
        svc_idx: usize,
        rs_ip: u128,
        port: u16,
    ) -> Action {
        let Some(route) = self.snap.route(rs) else {
            return Verdict::Drop(Counter::DropRealServerGone).into();
        };
        let Some(mac) = self.neigh.mac(route.neigh as usize) else {
            self.neigh.want(route.neigh as usize);
            return Verdict::Drop(Counter::DropNeighUnresolved).into();
        };
        if p.hop_limit <= 1 {
            return Verdict::Drop(Counter::DropIpv6HopLimitExpired).into();
        }
        rewrite6(frame, p.l4, p.l4_end, p.proto, true, rs_ip, port);
        let out_mac = self.snap.ports[route.port as usize].mac;
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_dst(mac);
        eth.set_src(out_mac);
        self.count_in(rs, self.snap.services[svc_idx].id, frame.len());
        self.stats.count(Counter::FwdNat);
        Verdict::Tx(route.port).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn frame(proto: u8) -> Vec<u8> {
        let client = [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let vip = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv6(client, vip, 64);
        let mut f = Vec::new();
        if proto == PROTO_TCP {
            b.tcp(40000, 80, 7, 1000).write(&mut f, b"hello").unwrap();
        } else {
            b.udp(40000, 53).write(&mut f, b"hello").unwrap();
        }
        f
    }

    proptest::proptest! {
        /// Whatever the addresses and ports, both rewrites leave checksums
        /// equal to the ones computed from scratch.
        #[test]
        fn rewrite6_keeps_checksums_valid(rs: u128, src: u128, p1: u16, p2: u16, tcp: bool) {
            let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
            let mut f = frame(proto);
            let (l4, end) = (ETH + 40, f.len());
            rewrite6(&mut f, l4, end, proto, true, rs, p1);
            rewrite6(&mut f, l4, end, proto, false, src, p2);
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else { panic!() };
            let h = ip.header().to_header();
            proptest::prop_assert_eq!(h.destination, rs.to_be_bytes());
            proptest::prop_assert_eq!(h.source, src.to_be_bytes());
            proptest::prop_assert_eq!(h.hop_limit, 62);
            match p.transport.unwrap() {
                TransportSlice::Tcp(t) => {
                    proptest::prop_assert_eq!((t.source_port(), t.destination_port()), (p2, p1));
                    let want = t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap();
                    proptest::prop_assert_eq!(t.checksum(), want);
                }
                TransportSlice::Udp(u) => {
                    proptest::prop_assert_eq!((u.source_port(), u.destination_port()), (p2, p1));
                    let want = u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap();
                    proptest::prop_assert_eq!(u.checksum(), want);
                }
                _ => panic!(),
            }
        }
    }
}
