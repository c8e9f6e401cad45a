//! To a real server over IPv6: DR, or a tunnel (IPv6-in-IPv6, next header
//! 41, RFC 2473), and the Packet Too Big that path-MTU discovery needs.
//!
//! A tunnelled packet gets an outer IPv6 header from the egress port's
//! `address6` to the real server (hop limit 64, the inner traffic class),
//! and the frame grows by 40 bytes. A client packet that would not fit the
//! egress port's MTU once tunnelled is answered with Packet Too Big
//! (`icmpv6_ptb_sent`) announcing the MTU less 40, but never below 1280
//! (IPv6's minimum link MTU, RFC 8200 §5): on a port whose MTU is below
//! 1320 a 1280-byte packet cannot be tunnelled, and such packets are
//! dropped (`drop_tunnel_too_big`). Only IPv6 real servers are tunnelled
//! to over IPv6 (IPv4-in-IPv6 and IPv6-in-IPv4 are not built).
//!
//! The buffer work (growing the frame) is done by the IPIP tunnel's
//! `Action::Tunnel`: the encapsulation is decided here with the outer
//! addresses left unspecified, which tells `Worker::encapsulate` to hand
//! it to [`Worker::encapsulate6`] — so the IPv4 paths' actions and their
//! completion are unchanged.

use std::net::Ipv4Addr;

use crate::config::Forward;
use crate::counters::Counter;
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_IPV6};
use crate::wire::icmpv6::{self, Icmpv6Error};
use crate::wire::ipv6::{self, Ipv6Packet, MIN_MTU};

use super::super::encap::Encap;
use super::super::{Action, PacketBuf, Verdict, Worker, ETH};
use super::entry::Packet6;

/// The outer header's length.
pub const OVERHEAD: usize = ipv6::HEADER_LEN;
/// Hop limit of the outer header and of Packet Too Big.
const HOP_LIMIT: u8 = 64;
/// Next header of an IPv6-in-IPv6 packet.
const NEXT_HEADER_IPV6: u8 = 41;

impl Worker {
    /// Send the packet `p` to real server `rs` by its method, counting
    /// `outcome` when sent: DR, the director's own host, or a tunnel.
    pub(super) fn send_to_real6(
        &mut self,
        frame: &mut [u8],
        p: &Packet6,
        rs: u32,
        svc_idx: usize,
        rx_port: u16,
        outcome: Counter,
    ) -> Action {
        let Some(route) = self.snap.route_ref(rs) else {
            return Verdict::Drop(Counter::DropRealServerGone).into();
        };
        let svc_id = self.snap.services[svc_idx].id;
        if route.local {
            // The director's own host (as `Worker::forward_local`).
            let port = route.port;
            self.count_in(rs, svc_id, frame.len());
            return Verdict::Local { port, peer: false }.into();
        }
        if route.forward != Forward::Tunnel {
            return self.dr_to(frame, route, rs, svc_idx, outcome).into();
        }
        let route = *route;
        let out = &self.snap.ports[route.port as usize];
        let inner_len = p.l4_end - ETH;
        if inner_len + OVERHEAD > usize::from(out.mtu) {
            let mtu = usize::from(out.mtu).saturating_sub(OVERHEAD).max(MIN_MTU);
            if inner_len <= mtu || outcome != Counter::FwdDr {
                // The port cannot carry IPv6's minimum once tunnelled, or
                // an ICMPv6 error (never answered with another).
                return Verdict::Drop(Counter::DropTunnelTooBig).into();
            }
            let client_mac = EthernetFrame::new_unchecked(&frame[..]).src();
            self.encap = Encap {
                port: rx_port,
                dst_mac: client_mac,
                src_mac: self.snap.ports[rx_port as usize].mac,
                src: Ipv4Addr::UNSPECIFIED,
                dst: Ipv4Addr::UNSPECIFIED,
                inner_len: mtu as u16,
                rs,
                svc: svc_id,
                outcome: Counter::Icmpv6PtbSent,
            };
            return Action::Tunnel;
        }
        let Some(mac) = self.neigh.mac(route.neigh as usize) else {
            self.neigh.want(route.neigh as usize);
            return Verdict::Drop(Counter::DropNeighUnresolved).into();
        };
        let outcome = if outcome == Counter::FwdDr {
            Counter::FwdTunnel
        } else {
            outcome
        };
        self.encap = Encap {
            port: route.port,
            dst_mac: mac,
            src_mac: out.mac,
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            inner_len: inner_len as u16,
            rs,
            svc: svc_id,
            outcome,
        };
        Action::Tunnel
    }

    /// Carry out an IPv6 tunnel or Packet Too Big decided by
    /// [`send_to_real6`](Self::send_to_real6) (see the module notes).
    #[cold]
    #[inline(never)]
    pub(in crate::pipeline) fn encapsulate6<B: PacketBuf + ?Sized>(
        &mut self,
        pkt: &mut B,
        e: &Encap,
    ) -> Verdict {
        if e.outcome == Counter::Icmpv6PtbSent {
            let v = packet_too_big(pkt, e);
            if let Verdict::Tx(_) = v {
                self.stats.count(Counter::Icmpv6PtbSent);
            }
            return v;
        }
        let (Some(src), Some(dst)) = (
            self.snap.ports[e.port as usize].addr6,
            self.snap.rs_addr6(e.rs),
        ) else {
            return Verdict::Drop(Counter::DropRealServerGone);
        };
        let inner = usize::from(e.inner_len);
        let tc = Ipv6Packet::new_unchecked(&pkt.data()[ETH..]).traffic_class();
        // The outer payload length covers exactly the inner packet: drop
        // Ethernet padding.
        if !pkt.truncate(ETH + inner) {
            return Verdict::Drop(Counter::DropIpv6BadPayloadLen);
        }
        if !pkt.prepend(OVERHEAD) {
            return Verdict::Drop(Counter::DropTunnelNoHeadroom);
        }
        // [40 new][14 old Ethernet][inner] becomes [14 Ethernet][40 outer][inner].
        let f = pkt.data_mut();
        let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
        eth.set_dst(e.dst_mac);
        eth.set_src(e.src_mac);
        eth.set_ethertype(ETHERTYPE_IPV6);
        let outer = &mut f[ETH..ETH + OVERHEAD];
        ipv6::emit_header(outer, src, dst, NEXT_HEADER_IPV6, HOP_LIMIT, e.inner_len);
        Ipv6Packet::new_unchecked(outer).set_traffic_class(tc);
        self.count_in(e.rs, e.svc, pkt.data().len());
        self.stats.count(e.outcome);
        Verdict::Tx(e.port)
    }
}

/// Turn the frame (a client's IPv6 packet to a VIP) into Packet Too Big
/// back to the client, from the VIP, announcing `e.inner_len` as the MTU,
/// quoting as much of the packet as fits in 1280 bytes.
fn packet_too_big<B: PacketBuf + ?Sized>(pkt: &mut B, e: &Encap) -> Verdict {
    const FIXED: usize = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;
    let mut quote = [0u8; MIN_MTU - FIXED];
    let (client, vip, n) = {
        let f = pkt.data();
        let ip = Ipv6Packet::new_unchecked(&f[ETH..]);
        let total = ipv6::HEADER_LEN + usize::from(ip.payload_len());
        let n = total.min(quote.len()).min(f.len() - ETH);
        quote[..n].copy_from_slice(&f[ETH..ETH + n]);
        (ip.src(), ip.dst(), n)
    };
    let len = ETH + FIXED + n;
    let have = pkt.data().len();
    let sized = if have < len {
        pkt.prepend(len - have)
    } else {
        pkt.truncate(len)
    };
    if !sized {
        return Verdict::Drop(Counter::DropTunnelNoHeadroom);
    }
    let f = pkt.data_mut();
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst(e.dst_mac);
    eth.set_src(e.src_mac);
    eth.set_ethertype(ETHERTYPE_IPV6);
    let err = Icmpv6Error::packet_too_big(u32::from(e.inner_len));
    icmpv6::emit_error(&mut f[ETH..], vip, client, HOP_LIMIT, err, &quote[..n]);
    Verdict::Tx(e.port)
}
