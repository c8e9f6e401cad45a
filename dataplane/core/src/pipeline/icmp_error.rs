//! ICMP errors about tracked connections: destination unreachable (type 3,
//! including code 4, "fragmentation needed", which path-MTU discovery
//! depends on) and time exceeded (type 11).
//!
//! An ICMP error quotes the IP header and at least the first 8 bytes of the
//! packet that caused it (RFC 792), enough for the ports. The director finds
//! the connection from that quoted packet and relays the error, as IPVS does:
//!
//! - **DR and tunnel.** A real server's replies leave from the VIP straight
//!   to the client, so a router on that path sends its errors to the VIP,
//!   and they reach the director. The quoted packet is the reply
//!   (VIP:vport → client:cport); its connection is (protocol, client, cport,
//!   VIP, vport) in the worker's table. The error is sent to that
//!   connection's real server exactly like the connection's own packets: a
//!   MAC rewrite (DR) or IPIP encapsulation (tunnel), everything else
//!   untouched; the real server's stack matches it to its socket (it holds
//!   the VIP) and lowers its path MTU. Counted `icmp_error_forwarded`. An
//!   error too large to tunnel is dropped (`drop_tunnel_too_big`): no ICMP
//!   is ever sent about an ICMP error.
//! - **NAT, error about a reply** (to the VIP, on the client side): the
//!   quoted packet is the reply as the director translated it
//!   (VIP:vport → client:cport). The NAT connection is found in the shared
//!   table by its request key; the error is translated back to what the real
//!   server sent (quoted source rs:rport) and sent to the real server (outer
//!   destination rs), like a request. Counted `icmp_error_nat_forwarded`.
//! - **NAT, error about a request** (from the real servers' side, addressed
//!   to the client, e.g. a real server's "port unreachable" for UDP): the
//!   quoted packet is the client's request as translated
//!   (client:cport → rs:rport). It is found by the reply key, translated to
//!   what the client sent (quoted destination VIP:vport), given the VIP as
//!   outer source (as IPVS does, whoever sent it), and sent to the client's
//!   MAC and port (learned when the connection was made), like a reply.
//!   Counted `icmp_error_nat_reply`.
//!
//! NAT translations decrement the outer TTL (like a router; dropped at 1),
//! patch the outer header checksum incrementally, recompute the quoted IP
//! header's checksum and the ICMP checksum over the whole message, and
//! update the quoted TCP/UDP checksum incrementally when its field is among
//! the quoted bytes (always for UDP; for TCP when 18 or more bytes of it are
//! quoted), as Linux's netfilter NAT does, so the quoted packet is again
//! the one the receiver sent. A quoted UDP checksum of zero (none) stays
//! zero. The quoted L4 checksum is never verified: it covers bytes that are
//! not quoted.
//!
//! An error is accepted only if its outer checksum is valid, its quoted
//! packet is IPv4 with a sane header and at least 8 bytes after it, the
//! quoted protocol is TCP or UDP and not a non-first fragment, and the
//! quoted source is the error's destination (an error goes back to the
//! sender of the offending packet). Otherwise it is a counted drop:
//! `drop_icmp_malformed` (outer message), `drop_icmp_error_malformed`
//! (quoted packet), `drop_icmp_error_no_conn` (nothing tracked matches).
//! The connection's state and timers are not touched by errors.
//!
//! **RSS and per-worker DR tables.** DR and tunnel connections live in the
//! table of the worker whose queue received the client's packets. The NIC
//! spreads frames over queues by a hash of the outer addresses (and ports),
//! so an error from a router (router → VIP) usually lands on another queue
//! than the client's packets. A worker that misses returns
//! [`Verdict::Handoff`]: the I/O loop passes the untouched frame to the next
//! worker's mailbox (a bounded queue, polled between bursts), which looks in
//! its own table, and so on around the ring of workers; only when every
//! worker has missed is the error dropped as `drop_icmp_error_no_conn`.
//! Errors are rare, so this costs nothing on the fast path: no shared table
//! for DR and no lock. Hand-overs are counted `icmp_error_handed_off`; a
//! full mailbox drops the error as `drop_handoff_full`. NAT connections are
//! in the table shared by all workers and are found from any queue.

use super::nat::{reply_key, rs_port};
use super::{Action, BufOp, Verdict, Worker, ETH};
use crate::config::Forward;
use crate::conntrack::{ConnKey, TableKey, Tick};
use crate::counters::Counter;
use crate::wire::checksum::{incremental_update16, incremental_update32};
use crate::wire::ethernet::EthernetFrame;
pub use crate::wire::icmp::is_error;
use crate::wire::icmp::{self, Icmpv4Packet};
use crate::wire::ipv4::{self, Ipv4Packet};

/// Bytes of the quoted packet's payload an ICMP error must carry (RFC 792):
/// enough for the TCP/UDP ports.
pub const MIN_QUOTED_L4: usize = 8;

/// The packet quoted by an ICMP error: the fields that find its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// TCP or UDP.
    pub proto: u8,
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    /// Length of the quoted IP header (options included).
    pub hlen: usize,
}

/// Parse the packet quoted by the ICMP error message `msg` (the whole
/// message: 8-byte ICMP header, then the quoted IP header and payload).
///
/// # Errors
/// [`Counter::DropIcmpErrorMalformed`] when the quoted packet is cut short
/// or not IPv4; [`Counter::DropIcmpErrorNoConn`] when it cannot belong to a
/// connection (not TCP/UDP, or a non-first fragment without ports).
pub fn parse_quoted(msg: &[u8]) -> Result<Quoted, Counter> {
    let q = msg.get(icmp::HEADER_LEN..).unwrap_or(&[]);
    if q.len() < ipv4::HEADER_LEN {
        return Err(Counter::DropIcmpErrorMalformed);
    }
    let ip = Ipv4Packet::new_unchecked(q);
    let hlen = ip.header_len();
    if ip.version() != 4 || hlen < ipv4::HEADER_LEN || q.len() < hlen + MIN_QUOTED_L4 {
        return Err(Counter::DropIcmpErrorMalformed);
    }
    let proto = ip.protocol();
    if (proto != ipv4::PROTO_TCP && proto != ipv4::PROTO_UDP) || ip.frag_offset() != 0 {
        return Err(Counter::DropIcmpErrorNoConn);
    }
    let l4 = &q[hlen..];
    Ok(Quoted {
        proto,
        src: ip.src_u32(),
        dst: ip.dst_u32(),
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        hlen,
    })
}

/// Rewrite the quoted packet of the ICMP error message `msg` (parsed as `q`)
/// to carry `ip:port` as its source (`dst = false`) or destination: the
/// quoted IP header's checksum is recomputed, the quoted TCP/UDP checksum
/// updated incrementally when quoted, and the ICMP checksum recomputed over
/// the whole message.
pub fn rewrite_quoted(msg: &mut [u8], q: &Quoted, dst: bool, ip: u32, port: u16) {
    let at = icmp::HEADER_LEN;
    let old_ip = {
        let mut h = Ipv4Packet::new_unchecked(&mut msg[at..at + q.hlen]);
        let old = if dst { h.dst_u32() } else { h.src_u32() };
        if dst {
            h.set_dst(ip.into());
        } else {
            h.set_src(ip.into());
        }
        h.fill_checksum();
        old
    };
    let l4 = at + q.hlen;
    let port_at = l4 + if dst { 2 } else { 0 };
    let old_port = u16::from_be_bytes([msg[port_at], msg[port_at + 1]]);
    msg[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
    let csum_at = l4 + if q.proto == ipv4::PROTO_TCP { 16 } else { 6 };
    if let Some(field) = msg.get_mut(csum_at..csum_at + 2) {
        let old = u16::from_be_bytes([field[0], field[1]]);
        // A zero UDP checksum means "none" and stays so.
        if !(q.proto == ipv4::PROTO_UDP && old == 0) {
            let mut c = incremental_update32(old, old_ip, ip);
            c = incremental_update16(c, old_port, port);
            if q.proto == ipv4::PROTO_UDP && c == 0 {
                c = 0xffff;
            }
            field.copy_from_slice(&c.to_be_bytes());
        }
    }
    Icmpv4Packet::new_unchecked(msg).fill_checksum();
}

/// Set the outer (frame's) IPv4 destination (`dst = true`) or source to
/// `ip`, decrement the TTL (which must be above 1), and patch the header
/// checksum incrementally.
fn rewrite_outer(frame: &mut [u8], dst: bool, ip: u32) {
    let mut p = Ipv4Packet::new_unchecked(&mut frame[ETH..]);
    let old = if dst { p.dst_u32() } else { p.src_u32() };
    let (ttl, proto) = (p.ttl(), p.protocol());
    p.set_ttl(ttl - 1);
    if dst {
        p.set_dst(ip.into());
    } else {
        p.set_src(ip.into());
    }
    let mut c = incremental_update32(p.checksum(), old, ip);
    c = incremental_update16(
        c,
        u16::from_be_bytes([ttl, proto]),
        u16::from_be_bytes([ttl - 1, proto]),
    );
    p.set_checksum(c);
}

/// Check the ICMP message `frame[l4..l4_end]` and parse its quoted packet.
fn check_error(frame: &[u8], l4: usize, l4_end: usize) -> Result<Quoted, Counter> {
    let msg = &frame[l4..l4_end];
    match Icmpv4Packet::new_checked(msg) {
        Ok(p) if p.verify_checksum() => parse_quoted(msg),
        _ => Err(Counter::DropIcmpMalformed),
    }
}

impl Worker {
    /// An ICMP error addressed to a VIP or an own address (outer IPv4
    /// header validated, [`is_error`] true): relay it to the real server of
    /// the connection it quotes.
    pub(super) fn icmp_error(
        &mut self,
        frame: &mut [u8],
        l4: usize,
        l4_end: usize,
        now: Tick,
    ) -> Action {
        let q = match check_error(frame, l4, l4_end) {
            Ok(q) => q,
            Err(c) => return Verdict::Drop(c).into(),
        };
        let outer_dst = Ipv4Packet::new_unchecked(&frame[ETH..]).dst_u32();
        if q.src != outer_dst {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        }
        // The quoted packet is a reply: VIP:vport → client:cport.
        let Some(svc_idx) = self.snap.service(q.proto, q.src, q.sport) else {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        };
        let key = ConnKey {
            proto: q.proto,
            client_ip: q.dst,
            client_port: q.dport,
            vip: q.src,
            vport: q.sport,
        };
        if self.snap.has_nat {
            if let Some(a) = self.nat_icmp_error_to_rs(frame, l4, l4_end, &key, svc_idx, &q, now) {
                return a;
            }
        }
        let Some(rs) = self
            .table
            .lookup(&key, self.table.hash(&key), now)
            .map(|c| c.rs)
        else {
            // Perhaps another worker's: RSS hashes the error's outer
            // addresses, not the connection's.
            if self.handoff_on_miss {
                return Verdict::Handoff.into();
            }
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        };
        match self.snap.route(rs) {
            Some(route) if route.forward == Forward::Tunnel => {
                let hop = super::tunnel::TunnelHop::from(&route);
                // No plan made here: this path does not tell local servers.
                match self.forward_tunnel(frame, rs, hop, svc_idx, &key.words(), false) {
                    Action::Tunnel => {
                        self.encap.outcome = Counter::IcmpErrorForwarded;
                        Action::Tunnel
                    }
                    // Never an ICMP error about an ICMP error.
                    Action::Buf(BufOp::FragNeeded(_)) => {
                        Verdict::Drop(Counter::DropTunnelTooBig).into()
                    }
                    a => a,
                }
            }
            _ => self
                .forward_dr_as(frame, rs, svc_idx, Counter::IcmpErrorForwarded)
                .into(),
        }
    }

    /// Case "NAT, error about a reply": None when `key` is no NAT
    /// connection.
    #[allow(clippy::too_many_arguments)]
    fn nat_icmp_error_to_rs(
        &mut self,
        frame: &mut [u8],
        l4: usize,
        l4_end: usize,
        key: &ConnKey,
        svc_idx: usize,
        q: &Quoted,
        now: Tick,
    ) -> Option<Action> {
        let nat = self.nat.as_ref()?;
        let e = nat.table.lookup(key, nat.table.hash(key), now)?;
        let Some(route) = self.snap.route(e.rs) else {
            return Some(Verdict::Drop(Counter::DropRealServerGone).into());
        };
        let Some(mac) = self.neigh.mac(route.neigh as usize) else {
            self.neigh.want(route.neigh as usize);
            return Some(Verdict::Drop(Counter::DropNeighUnresolved).into());
        };
        if frame[ETH + 8] <= 1 {
            return Some(Verdict::Drop(Counter::DropIpv4TtlExpired).into());
        }
        let rs_ip = u32::from(route.addr);
        // Port-0 services keep the packet's port (nat::rs_port).
        rewrite_quoted(
            &mut frame[l4..l4_end],
            q,
            false,
            rs_ip,
            rs_port(route.rport, q.sport),
        );
        rewrite_outer(frame, true, rs_ip);
        let out_mac = self.snap.ports[route.port as usize].mac;
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_dst(mac);
        eth.set_src(out_mac);
        self.count_in(e.rs, self.snap.services[svc_idx].id, frame.len());
        self.stats.count(Counter::IcmpErrorNatForwarded);
        Some(Verdict::Tx(route.port).into())
    }

    /// Case "NAT, error about a request": an ICMP message addressed to
    /// `outer_dst`, neither a VIP nor ours (outer IPv4 header validated).
    pub(super) fn nat_icmp_error_to_client(
        &mut self,
        frame: &mut [u8],
        outer_dst: u32,
        l4: usize,
        l4_end: usize,
        now: Tick,
    ) -> Action {
        if !is_error(&frame[l4..l4_end]) {
            return Verdict::Drop(Counter::DropIpv4NotLocal).into();
        }
        let Some(nat) = self.nat.as_ref() else {
            return Verdict::Drop(Counter::DropIpv4NotLocal).into();
        };
        let q = match check_error(frame, l4, l4_end) {
            Ok(q) => q,
            Err(c) => return Verdict::Drop(c).into(),
        };
        if q.src != outer_dst {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        }
        // The quoted packet is a translated request: client:cport → rs:rport.
        let rk = reply_key(q.proto, q.dst, q.dport, q.src, q.sport);
        let Some(re) = nat.table.lookup(&rk, nat.table.hash(&rk), now) else {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        };
        let Some(svc_idx) = self.snap.service_index(re.rs) else {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        };
        let (vip, vport) = {
            let s = &self.snap.services[svc_idx];
            // A port-0 service keeps the packet's port on both sides.
            (s.vip_v4, rs_port(s.port, q.dport))
        };
        let key = ConnKey {
            proto: q.proto,
            client_ip: q.src,
            client_port: q.sport,
            vip,
            vport,
        };
        let Some(e) = nat.table.lookup(&key, nat.table.hash(&key), now) else {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        };
        let (mac, port) = match self.client_hop(&nat.clients, outer_dst) {
            Ok(hop) => hop,
            Err(c) => return Verdict::Drop(c).into(),
        };
        let Some(out_port) = self.snap.ports.get(port as usize) else {
            return Verdict::Drop(Counter::DropNatNoClientMac).into();
        };
        if frame[ETH + 8] <= 1 {
            return Verdict::Drop(Counter::DropIpv4TtlExpired).into();
        }
        let out_mac = out_port.mac;
        rewrite_quoted(&mut frame[l4..l4_end], &q, true, vip, vport);
        rewrite_outer(frame, false, vip);
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_dst(mac);
        eth.set_src(out_mac);
        self.count_out(e.rs, self.snap.services[svc_idx].id, frame.len());
        self.stats.count(Counter::IcmpErrorNatReply);
        Verdict::Tx(port).into()
    }
}
