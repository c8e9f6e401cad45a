//! Neighbour Discovery in the packet path: solicitations for our addresses
//! answered, real servers' MACs learned, like `Worker::arp` for IPv4.
//!
//! - A Neighbour Solicitation for a VIP or a `vrrp6.addresses` address of
//!   the port it arrived on (unless VRRP standby), or for an own
//!   address of the port it arrived on (`address6`, link-local), sent to
//!   that target's solicited-node group or to the target itself, is
//!   answered with a solicited advertisement (override set, our MAC as
//!   target link-layer address); one from `::` (duplicate address
//!   detection) is answered to all-nodes, as RFC 4861 §7.2.4 says.
//! - A solicitation or advertisement from a tracked neighbour (a real
//!   server, a gateway) carrying its link-layer address refreshes its slot
//!   (`ndp_learned`). An advertisement answering the kernel's own
//!   solicitation (to the port's own address, on a port with a kernel
//!   interface) goes to the kernel too.
//! - Solicitations for other targets, and advertisements from no tracked
//!   neighbour, are `drop_ndp_not_for_us`; messages failing RFC 4861's
//!   checks `drop_ndp_invalid`, or `drop_icmpv6_bad_checksum`.

use std::net::Ipv6Addr;

use crate::conntrack::Tick;
use crate::counters::Counter;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::icmpv6::Icmpv6Packet;
use crate::wire::ipv6::{self, solicited_node, Ipv6Packet};
use crate::wire::ndp::{self, NdpError, Neighbor, FRAME_LEN};
use crate::wire::MacAddr;

use super::super::{Verdict, Worker, ETH};
use super::entry::Packet6;

impl Worker {
    /// A Neighbour Solicitation or Advertisement (see the module notes).
    pub(super) fn ndp(
        &mut self,
        frame: &mut [u8],
        p: &Packet6,
        rx_port: u16,
        now: Tick,
    ) -> Verdict {
        let eth_src = EthernetFrame::new_unchecked(&frame[..]).src();
        let (solicit, target, lla) =
            match ndp::parse(p.src, p.dst, p.hop_limit, &frame[p.l4..p.l4_end]) {
                Ok(Neighbor::Solicit(ns)) => (true, ns.target(), ns.source_lla()),
                Ok(Neighbor::Advert(na)) => (false, na.target(), na.target_lla()),
                Err(NdpError::BadChecksum) => return Verdict::Drop(Counter::DropIcmpv6BadChecksum),
                Err(_) => return Verdict::Drop(Counter::DropNdpInvalid),
            };
        if let Some(mac) = lla {
            if mac.is_group_or_zero() || self.snap.ports.iter().any(|p| p.mac == mac) {
                // As for ARP: an address no other station has is neither
                // learned nor answered.
                return Verdict::Drop(Counter::DropEthBadSource);
            }
        }
        // Who the message speaks for: a solicitation's sender, an
        // advertisement's target.
        let about = if solicit { p.src } else { target };
        let learned = match (
            lla.or((!solicit).then_some(eth_src)),
            self.snap.neighbours6.get(&u128::from(about)),
        ) {
            (Some(mac), Some(&slot)) if !about.is_unspecified() => {
                self.neigh.learn(slot as usize, about, mac, now);
                // A new MAC drops the forward plans before the next frame.
                self.check_neigh();
                self.stats.count(Counter::NdpLearned);
                true
            }
            _ => false,
        };
        if solicit {
            let for_target = !p.dst.is_multicast() || p.dst == solicited_node(target);
            if for_target && self.answers_for(target, rx_port) {
                let asker_mac = lla.unwrap_or(eth_src);
                return self.advertise(frame, rx_port, target, asker_mac, p.src);
            }
        } else {
            let port = &self.snap.ports[rx_port as usize];
            if port.kernel && port.owns6(p.dst) {
                // The answer to the kernel's own solicitation.
                return Verdict::Kernel;
            }
        }
        if learned {
            Verdict::Consumed
        } else {
            Verdict::Drop(Counter::DropNdpNotForUs)
        }
    }

    /// Whether the director answers solicitations for `target` on `rx_port`:
    /// a VIP or one of `vrrp6.addresses` held on this port (not while VRRP
    /// standby), or one of the port's own addresses.
    fn answers_for(&self, target: Ipv6Addr, rx_port: u16) -> bool {
        let floating =
            self.snap.is_vip6(u128::from(target)) || self.snap.is_vrrp_address6(target, rx_port);
        (floating && !self.standby) || self.snap.ports[rx_port as usize].owns6(target)
    }

    /// Answer a solicitation for `target` from `asker_ip`/`asker_mac`, in
    /// place. A solicitation carries at least the 24-byte message; with an
    /// option (a source link-layer address, or duplicate address
    /// detection's nonce) the frame holds the advertisement and its target
    /// link-layer address option. A bare one (only duplicate address
    /// detection sends none) is answered with the bare advertisement,
    /// which is what tells the prober the address is taken: growing the
    /// frame for the option would cost the IPv4 path (a buffer operation
    /// in every frame's completion, measured with callgrind).
    fn advertise(
        &mut self,
        frame: &mut [u8],
        rx_port: u16,
        target: Ipv6Addr,
        asker_mac: MacAddr,
        asker_ip: Ipv6Addr,
    ) -> Verdict {
        let my_mac = self.snap.ports[rx_port as usize].mac;
        if frame.len() >= FRAME_LEN {
            ndp::build_solicited_na(frame, my_mac, target, asker_mac, asker_ip);
            // What follows is Ethernet padding now.
            frame[FRAME_LEN..].fill(0);
        } else {
            let mut na = [0u8; FRAME_LEN];
            ndp::build_solicited_na(&mut na, my_mac, target, asker_mac, asker_ip);
            let bare = FRAME_LEN - ndp::LLA_OPT_LEN;
            let Some(out) = frame.get_mut(..bare) else {
                return Verdict::Drop(Counter::DropNdpInvalid);
            };
            out.copy_from_slice(&na[..bare]);
            let mut ip = Ipv6Packet::new_unchecked(&mut out[ETH..]);
            ip.set_payload_len(ndp::MSG_LEN as u16);
            let (src, dst) = (ip.src(), ip.dst());
            Icmpv6Packet::new_unchecked(&mut out[ETH + ipv6::HEADER_LEN..]).fill_checksum(src, dst);
        }
        self.stats.count(Counter::NdpAdvertised);
        Verdict::Tx(rx_port)
    }
}
