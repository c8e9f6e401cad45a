//! An IPv6 frame's first steps: the fixed header, the extension headers,
//! the checks every packet passes, and the dispatch by upper layer (see the
//! policies in [`super`]).

use std::net::Ipv6Addr;

use crate::conntrack::Tick;
use crate::counters::Counter;
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_IPV6};
use crate::wire::icmpv6::{self, ICMPV6_ECHO_REQUEST};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::ipv6::{self, Ipv6Packet, PROTO_ICMPV6};
use crate::wire::ipv6_ext::{self, Ipv6ExtError};
use crate::wire::ndp;
use crate::wire::{MacAddr, WireError};

use super::super::{Action, Verdict, Worker, ETH};

/// What the entry learned of a packet, for the stages after it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Packet6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    /// The upper-layer protocol and where its header starts and the IPv6
    /// payload ends, as frame offsets.
    pub proto: u8,
    pub l4: usize,
    pub l4_end: usize,
}

/// The drop reason of a fixed header `Ipv6Packet::new_checked` refused.
fn header_error(e: WireError) -> Counter {
    match e {
        WireError::BadVersion => Counter::DropIpv6BadVersion,
        WireError::PayloadTruncated => Counter::DropIpv6BadPayloadLen,
        _ => Counter::DropIpv6Truncated,
    }
}

/// The drop reason of an extension-header walk that reached no upper layer.
fn ext_error(e: Ipv6ExtError) -> Counter {
    match e {
        Ipv6ExtError::Fragment => Counter::DropIpv6Fragment,
        Ipv6ExtError::TooMany => Counter::DropIpv6ExtTooMany,
        Ipv6ExtError::Truncated => Counter::DropIpv6ExtTruncated,
        Ipv6ExtError::HopByHopNotFirst
        | Ipv6ExtError::RoutingSegmentsLeft
        | Ipv6ExtError::Unsupported(_) => Counter::DropIpv6ExtUnsupported,
    }
}

/// Source addresses no client (or neighbour) can send from. The
/// unspecified address is allowed only for duplicate address detection
/// (a solicitation), which the caller lets through before asking.
fn bad_source(ip: Ipv6Addr) -> bool {
    ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() || ip.to_ipv4_mapped().is_some()
}

impl Worker {
    /// A frame to our MAC whose ethertype is neither IPv4, ARP nor 802.1Q:
    /// IPv6 when IPv6 is configured, else a counted drop (as every such
    /// frame was before). Out of line, as the IPv6 path is, and given only
    /// what the caller holds anyway (the Ethernet fields are read again
    /// here): the full classifier's IPv4 code stays as it was (callgrind).
    #[cold]
    #[inline(never)]
    pub(in crate::pipeline) fn other_ethertype(
        &mut self,
        frame: &mut [u8],
        rx_port: u16,
        now: Tick,
    ) -> Action {
        let eth = EthernetFrame::new_unchecked(&frame[..]);
        let (ethertype, src_mac) = (eth.ethertype(), eth.src());
        if ethertype == ETHERTYPE_IPV6 && self.snap.has_ipv6 {
            return self.ipv6(frame, rx_port, src_mac, now);
        }
        Verdict::Drop(Counter::DropUnknownEthertype).into()
    }

    /// An IPv6 frame to a MAC other than ours: a VRRP advertisement (to
    /// ff02::12's MAC) goes to the port's kernel interface, where lbd's
    /// `vrrp6` speaker listens (as IPv4's 224.0.0.18 does, whether IPv6
    /// services are configured or not); otherwise taken when IPv6 is
    /// configured and it is an IPv6 multicast MAC (33:33:xx:xx:xx:xx, RFC
    /// 2464 §7), else dropped as any frame for another MAC.
    #[cold]
    #[inline(never)]
    pub(in crate::pipeline) fn ipv6_multicast_mac(
        &mut self,
        frame: &mut [u8],
        rx_port: u16,
        now: Tick,
    ) -> Verdict {
        let eth = EthernetFrame::new_unchecked(&frame[..]);
        let (dst_mac, src_mac) = (eth.dst(), eth.src());
        if dst_mac.0 == crate::wire::vrrp::GROUP6_MAC
            && self
                .snap
                .ports
                .get(rx_port as usize)
                .is_some_and(|p| p.kernel)
        {
            return Verdict::Kernel;
        }
        if dst_mac.0[..2] == [0x33, 0x33] && self.snap.has_ipv6 {
            // What comes to a group is answered or dropped, never
            // forwarded (no tunnel): a verdict.
            return match self.ipv6(frame, rx_port, src_mac, now) {
                Action::Done(v) => v,
                _ => Verdict::Drop(Counter::DropIpv6Multicast),
            };
        }
        Verdict::Drop(Counter::DropNotOurMac)
    }

    /// An IPv6 frame (ethertype 0x86dd) to our MAC or to an IPv6 multicast
    /// MAC.
    fn ipv6(&mut self, frame: &mut [u8], rx_port: u16, src_mac: MacAddr, now: Tick) -> Action {
        let p = match self.parse6(frame) {
            Ok(p) => p,
            Err(c) => return Verdict::Drop(c).into(),
        };
        if p.dst.is_multicast() {
            // Neighbour Discovery is the only multicast a director takes.
            return self.multicast6(frame, &p, rx_port, now).into();
        }
        if p.proto == PROTO_ICMPV6 && self.is_ndp(frame, &p) {
            // Unicast solicitations (reachability checks) and
            // advertisements: from link-local or unspecified sources too,
            // so before the source checks.
            return self.ndp(frame, &p, rx_port, now).into();
        }
        if bad_source(p.src) || self.snap.own_port6(p.src).is_some() {
            return Verdict::Drop(Counter::DropIpv6BadSource).into();
        }
        let dst = u128::from(p.dst);
        let snap = &*self.snap;
        let to_vip = snap.is_vip6(dst);
        if to_vip && (self.standby || !snap.peer_directors.is_empty()) {
            if snap.from_peer(rx_port, src_mac) {
                // The peer director scheduled this to us (two-box setup).
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
        if p.src == p.dst || snap.is_vip6(u128::from(p.src)) {
            return Verdict::Drop(Counter::DropIpv6Land).into();
        }
        if !to_vip {
            let port = &snap.ports[rx_port as usize];
            if !port.owns6(p.dst) {
                if !snap.vrrp_addresses6.is_empty() && snap.is_vrrp_address6(p.dst, rx_port) {
                    return self.vrrp_address6(frame, &p, rx_port, now);
                }
                if snap.has_nat6 && snap.own_port6(p.dst).is_none() {
                    // From a NAT66 real server to a client, perhaps.
                    return self.nat6_inbound(frame, &p, now);
                }
                return Verdict::Drop(Counter::DropIpv6NotLocal).into();
            }
            let echo = p.proto == PROTO_ICMPV6 && frame.get(p.l4) == Some(&ICMPV6_ECHO_REQUEST);
            if !echo {
                // The director's own host: the dataplane answers pings
                // and Neighbour Discovery, the kernel gets the rest.
                return if port.kernel {
                    Verdict::Kernel.into()
                } else {
                    Verdict::Drop(Counter::DropIpv6NotLocal).into()
                };
            }
        }
        match p.proto {
            PROTO_ICMPV6 => self.icmp6(frame, &p, rx_port, now),
            PROTO_TCP | PROTO_UDP => self.service_packet6(frame, &p, rx_port, now),
            _ => Verdict::Drop(Counter::DropIpv6UnknownProtocol).into(),
        }
    }

    /// A packet to one of `vrrp6.addresses` (the real servers' floating
    /// gateway, typically): the master answers pings to it; nothing else
    /// is for the director (the kernel does not hold the address), and the
    /// backup takes nothing for it.
    #[cold]
    fn vrrp_address6(&mut self, frame: &mut [u8], p: &Packet6, rx_port: u16, now: Tick) -> Action {
        let echo = p.proto == PROTO_ICMPV6 && frame.get(p.l4) == Some(&ICMPV6_ECHO_REQUEST);
        if echo && !self.standby {
            return self.icmp6(frame, p, rx_port, now);
        }
        Verdict::Drop(Counter::DropIpv6NotLocal).into()
    }

    /// A packet to an address neither a VIP nor ours while NAT66 is
    /// configured: a real server's reply, or an ICMPv6 error about a
    /// request, on its way to a client (`nat.rs`, `nat_icmp.rs`).
    #[cold]
    fn nat6_inbound(&mut self, frame: &mut [u8], p: &Packet6, now: Tick) -> Action {
        match p.proto {
            PROTO_TCP | PROTO_UDP => self.nat6_reply(frame, p, now),
            PROTO_ICMPV6 => self.nat6_icmp_error_to_client(frame, p, now),
            _ => Verdict::Drop(Counter::DropIpv6NotLocal).into(),
        }
    }

    /// Validate the fixed header and walk the extension headers.
    fn parse6(&self, frame: &[u8]) -> Result<Packet6, Counter> {
        let ip = Ipv6Packet::new_checked(&frame[ETH..]).map_err(header_error)?;
        let upper = ipv6_ext::upper_layer(&ip).map_err(ext_error)?;
        let l4 = ETH + ipv6::HEADER_LEN + upper.offset;
        Ok(Packet6 {
            src: ip.src(),
            dst: ip.dst(),
            hop_limit: ip.hop_limit(),
            proto: upper.protocol,
            l4,
            l4_end: ETH + ipv6::HEADER_LEN + usize::from(ip.payload_len()),
        })
    }

    /// Whether the upper layer is a Neighbour Solicitation or Advertisement.
    fn is_ndp(&self, frame: &[u8], p: &Packet6) -> bool {
        frame.get(p.l4).is_some_and(|&t| ndp::is_neighbor_type(t))
    }

    /// A packet to a multicast group: Neighbour Discovery, or a drop.
    fn multicast6(&mut self, frame: &mut [u8], p: &Packet6, rx_port: u16, now: Tick) -> Verdict {
        if p.proto == PROTO_ICMPV6 && self.is_ndp(frame, p) {
            return self.ndp(frame, p, rx_port, now);
        }
        Verdict::Drop(Counter::DropIpv6Multicast)
    }
}

/// Whether an ICMPv6 message type is an error this path relays.
#[inline]
pub(super) fn is_relayed_error(msg_type: u8) -> bool {
    matches!(
        msg_type,
        icmpv6::ICMPV6_DEST_UNREACH | icmpv6::ICMPV6_PACKET_TOO_BIG | icmpv6::ICMPV6_TIME_EXCEEDED
    )
}
