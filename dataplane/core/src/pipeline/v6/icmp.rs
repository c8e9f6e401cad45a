//! ICMPv6 in the packet path: echo replies for VIPs and own addresses, and
//! errors about forwarded connections relayed to their real server.
//!
//! An error (destination unreachable, packet too big, time exceeded) about
//! a DR connection quotes what the real server sent: from the VIP to the
//! client. Its outer destination is therefore the VIP, and the quoted
//! packet, read backwards, is the connection's key. The error goes to the
//! connection's real server like the connection's packets (MAC rewrite),
//! so that, for one, a Packet Too Big reaches the host whose path-MTU
//! cache needs it. As for IPv4, RSS hashes the error's outer addresses: a
//! worker that does not hold the connection hands the frame on
//! (`icmp_error_handed_off`) until one does or all have missed
//! (`drop_icmp_error_no_conn`).

use crate::conntrack::{ConnKey6, Tick};
use crate::counters::Counter;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::icmpv6::{self, Icmpv6Packet, ICMPV6_ECHO_REQUEST};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::ipv6_ext;

use super::super::{Action, Verdict, Worker};
use super::entry::{is_relayed_error, Packet6};

/// Hop limit of the replies the director builds.
const HOP_LIMIT: u8 = 64;

impl Worker {
    /// An ICMPv6 message to a VIP or an own address (NDP was handled).
    pub(super) fn icmp6(
        &mut self,
        frame: &mut [u8],
        p: &Packet6,
        rx_port: u16,
        now: Tick,
    ) -> Action {
        let msg = &frame[p.l4..p.l4_end];
        let (msg_type, code) = match Icmpv6Packet::new_checked(msg) {
            Ok(m) if !m.verify_checksum(p.src, p.dst) => {
                return Verdict::Drop(Counter::DropIcmpv6BadChecksum).into()
            }
            Ok(m) => (m.msg_type(), m.code()),
            Err(_) => return Verdict::Drop(Counter::DropIcmpv6Malformed).into(),
        };
        if msg_type == ICMPV6_ECHO_REQUEST && code == 0 {
            return self.echo6(frame, p, rx_port).into();
        }
        if is_relayed_error(msg_type) {
            return self.icmp6_error(frame, p, rx_port, now);
        }
        Verdict::Drop(Counter::DropIcmpv6Unsupported).into()
    }

    /// Turn an echo request into its reply, in place.
    fn echo6(&mut self, frame: &mut [u8], p: &Packet6, rx_port: u16) -> Verdict {
        let my_mac = self.snap.ports[rx_port as usize].mac;
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        let peer = eth.src();
        eth.set_dst(peer);
        eth.set_src(my_mac);
        let mut ip = Ipv6Packet::new_unchecked(&mut frame[super::super::ETH..]);
        ip.set_src(p.dst);
        ip.set_dst(p.src);
        ip.set_hop_limit(HOP_LIMIT);
        icmpv6::echo_request_to_reply(&mut frame[p.l4..p.l4_end], p.dst, p.src);
        self.stats.count(Counter::Icmpv6EchoReplied);
        Verdict::Tx(rx_port)
    }

    /// An ICMPv6 error to a VIP: relay it to the real server of the
    /// connection it quotes (see the module notes).
    fn icmp6_error(&mut self, frame: &mut [u8], p: &Packet6, rx_port: u16, now: Tick) -> Action {
        let Some(key) = quoted_key(&frame[p.l4..p.l4_end]) else {
            return Verdict::Drop(Counter::DropIcmpErrorMalformed).into();
        };
        if u128::from(p.dst) != key.vip {
            // The quoted packet did not come from the VIP the error was
            // sent to: no connection of ours.
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        }
        let Some(svc_idx) = self.snap.service6(key.proto, key.vip, key.vport) else {
            return Verdict::Drop(Counter::DropIcmpErrorNoConn).into();
        };
        if self.snap.has_nat6 {
            if let Some(a) = self.nat6_icmp_error_to_rs(frame, p, &key, svc_idx, now) {
                return a;
            }
        }
        let rs = self.v6.as_ref().and_then(|v6| {
            let t = &v6.table;
            t.lookup(&key, t.hash(&key), now).map(|c| c.rs)
        });
        match rs {
            Some(rs) => {
                self.send_to_real6(frame, p, rs, svc_idx, rx_port, Counter::IcmpErrorForwarded)
            }
            None if self.handoff_on_miss => Verdict::Handoff.into(),
            None => Verdict::Drop(Counter::DropIcmpErrorNoConn).into(),
        }
    }
}

/// The connection an ICMPv6 error message `msg` quotes: the quoted packet
/// went from the VIP (source) to the client (destination), so its ports
/// read backwards. `None`: too little of it quoted (the fixed header, the
/// extension headers and 4 bytes of ports), not IPv6, or not TCP/UDP.
fn quoted_key(msg: &[u8]) -> Option<ConnKey6> {
    let quoted = msg.get(icmpv6::HEADER_LEN..)?;
    if quoted.len() < ipv6::HEADER_LEN || quoted[0] >> 4 != 6 {
        return None;
    }
    let ip = Ipv6Packet::new_unchecked(&quoted[..ipv6::HEADER_LEN]);
    let (src, dst, next) = (ip.src(), ip.dst(), ip.next_header());
    // The quote is cut short (at most 1280 bytes in all): walk what is
    // there; a chain that runs past it is malformed here.
    let upper = ipv6_ext::walk(next, &quoted[ipv6::HEADER_LEN..]).ok()?;
    if upper.protocol != PROTO_TCP && upper.protocol != PROTO_UDP {
        return None;
    }
    let ports = quoted.get(ipv6::HEADER_LEN + upper.offset..)?.get(..4)?;
    let sport = u16::from_be_bytes([ports[0], ports[1]]);
    let dport = u16::from_be_bytes([ports[2], ports[3]]);
    Some(ConnKey6 {
        proto: upper.protocol,
        client_ip: u128::from(dst),
        client_port: dport,
        vip: u128::from(src),
        vport: sport,
    })
}
