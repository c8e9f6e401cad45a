//! ICMPv6 errors (destination unreachable, packet too big, time exceeded)
//! about NAT66 connections, translated as IPv4 NAT translates ICMP errors
//! (`pipeline::icmp_error`):
//!
//! - **Error about a reply** (to the VIP, from the client's side, e.g. a
//!   router's Packet Too Big): the quoted packet is the reply as the
//!   director translated it (VIP:vport → client:cport). The connection is
//!   found by its request key; the quoted source becomes the real server's
//!   address and port, the outer destination the real server, and the error
//!   goes to the real server like a request (`icmp_error_nat_forwarded`).
//! - **Error about a request** (from the real servers' side, to a client,
//!   e.g. a real server's "port unreachable" for UDP or a Packet Too Big
//!   from its network): the quoted packet is the request as translated
//!   (client:cport → rs:rport). It is found by the reply key; the quoted
//!   destination becomes VIP:vport, the outer source the VIP (whoever sent
//!   it, as IPVS does), and the error goes to the client's MAC and port like
//!   a reply (`icmp_error_nat_reply`).
//!
//! Both rewrite the addresses in the outer header AND the quoted packet,
//! decrement the outer hop limit (dropped at 1, `drop_ipv6_hop_limit_expired`),
//! patch the quoted TCP/UDP checksum incrementally when its field was
//! quoted, and recompute the ICMPv6 checksum over the whole message (its
//! pseudo-header holds the new outer addresses). The connection's state and
//! timers are not touched. An error that matches no NAT66 connection is
//! `drop_icmp_error_no_conn` (to a client) or goes on to the DR/tunnel
//! lookup (to a VIP).

use crate::conntrack::{ConnKey6, Tick};
use crate::counters::Counter;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::icmpv6::{self, Icmpv6Packet};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::ipv6_ext;

use super::super::nat::rs_port;
use super::super::{Action, Verdict, Worker, ETH};
use super::entry::{is_relayed_error, Packet6};
use super::nat::{addr_at, change128, change16, patch_l4, reply_key6};

/// The packet an ICMPv6 error quotes, with offsets in the message.
#[derive(Debug, Clone, Copy)]
struct Quoted6 {
    proto: u8,
    src: u128,
    dst: u128,
    sport: u16,
    dport: u16,
    /// Where its TCP/UDP header starts in the message.
    l4: usize,
}

/// Where the quoted IPv6 header starts in an ICMPv6 error message.
const QUOTED_AT: usize = icmpv6::HEADER_LEN;

/// Parse the quoted packet of the error message `msg`: IPv6, TCP or UDP,
/// with its ports quoted. `None` otherwise.
fn parse_quoted6(msg: &[u8]) -> Option<Quoted6> {
    let quoted = msg.get(QUOTED_AT..)?;
    if quoted.len() < ipv6::HEADER_LEN || quoted[0] >> 4 != 6 {
        return None;
    }
    let ip = Ipv6Packet::new_unchecked(&quoted[..ipv6::HEADER_LEN]);
    let upper = ipv6_ext::walk(ip.next_header(), &quoted[ipv6::HEADER_LEN..]).ok()?;
    if upper.protocol != PROTO_TCP && upper.protocol != PROTO_UDP {
        return None;
    }
    let l4 = QUOTED_AT + ipv6::HEADER_LEN + upper.offset;
    let ports = msg.get(l4..)?.get(..4)?;
    Some(Quoted6 {
        proto: upper.protocol,
        src: u128::from(ip.src()),
        dst: u128::from(ip.dst()),
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
        l4,
    })
}

/// Rewrite the quoted packet's source (`dst = false`) or destination to
/// `ip`:`port`, patching its TCP/UDP checksum when quoted.
fn rewrite_quoted6(msg: &mut [u8], q: &Quoted6, dst: bool, ip: u128, port: u16) {
    let at = QUOTED_AT + if dst { 24 } else { 8 };
    let old_ip = addr_at(msg, at);
    msg[at..at + 16].copy_from_slice(&ip.to_be_bytes());
    let port_at = q.l4 + if dst { 2 } else { 0 };
    let old_port = u16::from_be_bytes([msg[port_at], msg[port_at + 1]]);
    msg[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
    let csum_at = q.l4 + if q.proto == PROTO_TCP { 16 } else { 6 };
    if let Some(field) = msg.get_mut(csum_at..csum_at + 2) {
        patch_l4(
            field,
            q.proto,
            change128(old_ip, ip),
            change16(old_port, port),
        );
    }
}

/// Set the outer destination (`dst = true`) or source to `ip`, decrement
/// the hop limit (above 1: checked) and recompute the ICMPv6 checksum of
/// the message at `frame[l4..l4_end]`.
fn rewrite_outer6(frame: &mut [u8], l4: usize, l4_end: usize, dst: bool, ip: u128) {
    let mut h = Ipv6Packet::new_unchecked(&mut frame[ETH..]);
    if dst {
        h.set_dst(ip.into());
    } else {
        h.set_src(ip.into());
    }
    let hop = h.hop_limit();
    h.set_hop_limit(hop - 1);
    let (src, dst) = (h.src(), h.dst());
    Icmpv6Packet::new_unchecked(&mut frame[l4..l4_end]).fill_checksum(src, dst);
}

impl Worker {
    /// An ICMPv6 error to a VIP (checksum verified) quoting `key`: if `key`
    /// is a NAT66 connection, translate the error for its real server and
    /// send it there. None: no NAT66 connection (the DR lookup follows).
    pub(super) fn nat6_icmp_error_to_rs(
        &mut self,
        frame: &mut [u8],
        p: &Packet6,
        key: &ConnKey6,
        svc_idx: usize,
        now: Tick,
    ) -> Option<Action> {
        let nat = self.nat6.as_ref()?;
        let e = nat.table.lookup(key, nat.table.hash(key), now)?;
        let q = parse_quoted6(&frame[p.l4..p.l4_end])?;
        let Some((rs_ip, port)) = self.nat6_target(e.rs, key.vport) else {
            return Some(Verdict::Drop(Counter::DropRealServerGone).into());
        };
        let Some(route) = self.snap.route(e.rs) else {
            return Some(Verdict::Drop(Counter::DropRealServerGone).into());
        };
        let Some(mac) = self.neigh.mac(route.neigh as usize) else {
            self.neigh.want(route.neigh as usize);
            return Some(Verdict::Drop(Counter::DropNeighUnresolved).into());
        };
        if p.hop_limit <= 1 {
            return Some(Verdict::Drop(Counter::DropIpv6HopLimitExpired).into());
        }
        rewrite_quoted6(&mut frame[p.l4..p.l4_end], &q, false, rs_ip, port);
        rewrite_outer6(frame, p.l4, p.l4_end, true, rs_ip);
        let out_mac = self.snap.ports[route.port as usize].mac;
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_dst(mac);
        eth.set_src(out_mac);
        self.count_in(e.rs, self.snap.services[svc_idx].id, frame.len());
        self.stats.count(Counter::IcmpErrorNatForwarded);
        Some(Verdict::Tx(route.port).into())
    }

    /// An ICMPv6 message to neither a VIP nor us: an error about a NAT66
    /// request, from the real servers' side to a client? Anything else is
    /// not ours to forward (`drop_ipv6_not_local`).
    pub(super) fn nat6_icmp_error_to_client(
        &mut self,
        frame: &mut [u8],
        p: &Packet6,
        now: Tick,
    ) -> Action {
        let msg = &frame[p.l4..p.l4_end];
        let is_error = msg.first().is_some_and(|&t| is_relayed_error(t));
        let Some(nat) = self.nat6.as_ref().filter(|_| is_error) else {
            return Verdict::Drop(Counter::DropIpv6NotLocal).into();
        };
        match Icmpv6Packet::new_checked(msg) {
            Ok(m) if !m.verify_checksum(p.src, p.dst) => {
                return Verdict::Drop(Counter::DropIcmpv6BadChecksum).into()
            }
            Ok(_) => {}
            Err(_) => return Verdict::Drop(Counter::DropIcmpv6Malformed).into(),
        }
        let Some(q) = parse_quoted6(msg) else {
            return Verdict::Drop(Counter::DropIcmpErrorMalformed).into();
        };
        let client = u128::from(p.dst);
        if q.src != client {
            // An error goes back to the sender of the offending packet.
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        }
        let table = &*nat.table;
        let rk = reply_key6(q.proto, q.dst, q.dport, q.src, q.sport);
        let Some(re) = table.lookup(&rk, table.hash(&rk), now) else {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        };
        let Some(svc_idx) = self.snap.service_index(re.rs) else {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        };
        let (vip, vport) = {
            let s = &self.snap.services[svc_idx];
            let std::net::IpAddr::V6(vip) = s.vip else {
                return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
            };
            (u128::from(vip), rs_port(s.port, q.dport))
        };
        let key = ConnKey6 {
            proto: q.proto,
            client_ip: q.src,
            client_port: q.sport,
            vip,
            vport,
        };
        let Some(e) = table.lookup(&key, table.hash(&key), now) else {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        };
        let Some((mac, port)) = nat.clients.get(client) else {
            return Verdict::Drop(Counter::DropNatNoClientMac).into();
        };
        let Some(out_mac) = self.snap.ports.get(usize::from(port)).map(|o| o.mac) else {
            return Verdict::Drop(Counter::DropNatNoClientMac).into();
        };
        if p.hop_limit <= 1 {
            return Verdict::Drop(Counter::DropIpv6HopLimitExpired).into();
        }
        rewrite_quoted6(&mut frame[p.l4..p.l4_end], &q, true, vip, vport);
        rewrite_outer6(frame, p.l4, p.l4_end, false, vip);
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_dst(mac);
        eth.set_src(out_mac);
        self.count_out(e.rs, self.snap.services[svc_idx].id, frame.len());
        self.stats.count(Counter::IcmpErrorNatReply);
        Verdict::Tx(port).into()
    }
}
