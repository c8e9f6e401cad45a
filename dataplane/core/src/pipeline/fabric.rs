//! The director in an L3 fabric: 802.1Q VLAN sub-interfaces and static
//! routes, as the packet path sees them.
//!
//! * **Tagged frames** (`ports[].vlans`): a frame with a VLAN tag that the
//!   port carries loses its tag ([`crate::wire::vlan::strip_tag`]: the MAC
//!   addresses move 4 bytes, the frame starts 4 bytes later) and is
//!   processed as if it had arrived on the VLAN's interface (its index in
//!   `Snapshot::ports`: own address and subnet for ARP, pings and
//!   neighbours; VIPs are reachable on every interface). An unknown tag,
//!   or a second tag inside the first, is dropped (`drop_vlan`); VID 0 (a
//!   priority tag) means the port itself. Untagged frames never come here:
//!   one test of the ethertype on the full path, none on the burst fast
//!   path (whose classifier takes plain IPv4 only).
//! * **Tagging** ([`Worker::vlan_egress`]): a verdict `Tx(i)` names an
//!   interface; for a VLAN the I/O loop asks for the tag to be pushed into
//!   the frame's headroom and gets the port to send on. Ports' own
//!   interfaces have the port's index, so untagged traffic pays one
//!   compare the I/O loop already made (`i < ports`).
//! * **Static routes** (`routes`): tunnel real servers behind a gateway
//!   are compiled into their route (egress interface, the gateway's
//!   neighbour slot), so forwarding to them costs nothing more. NAT
//!   replies to a client covered by a route go to the route's gateway
//!   ([`Worker::client_hop`]); without routes, one test.

use super::{Action, PacketBuf, Verdict, Worker};
use crate::conntrack::Tick;
use crate::counters::Counter;
use crate::neigh::ClientMacs;
use crate::wire::vlan::{self, VlanFrame};
use crate::wire::{ethernet, MacAddr};

/// Whether the frame carries an 802.1Q tag (TPID 0x8100 as its ethertype).
#[inline(always)]
pub(super) fn is_tagged(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&ethernet::ETHERTYPE_VLAN.to_be_bytes()[..])
}

impl Worker {
    /// A tagged frame that arrived on port `rx_port`: untag it and process
    /// it on its VLAN's interface.
    #[cold]
    #[inline(never)]
    pub(super) fn run_tagged<B: PacketBuf>(
        &mut self,
        pkt: &mut B,
        rx_port: u16,
        now: Tick,
    ) -> Verdict {
        let iface = match self.tagged_interface(pkt.data(), rx_port) {
            Ok(i) => i,
            Err(c) => return self.complete(pkt, Verdict::Drop(c).into(), rx_port),
        };
        if !vlan::strip_tag(pkt.data_mut()) || !pkt.adj(vlan::TAG_LEN) {
            return self.complete(
                pkt,
                Verdict::Drop(Counter::DropEthTruncated).into(),
                rx_port,
            );
        }
        let action: Action = self.classify(pkt.data_mut(), iface, now);
        self.complete(pkt, action, iface)
    }

    /// The interface a tagged frame on `rx_port` belongs to, or why it is
    /// dropped.
    fn tagged_interface(&self, frame: &[u8], rx_port: u16) -> Result<u16, Counter> {
        let Ok(tag) = VlanFrame::new_checked(frame) else {
            return Err(Counter::DropEthTruncated);
        };
        if usize::from(rx_port) >= self.snap.phys_ports {
            // A tag inside a VLAN's tag (QinQ): not carried.
            return Err(Counter::DropVlan);
        }
        match tag.vid() {
            vlan::VID_NONE => Ok(rx_port),
            vid => self
                .snap
                .vlan_interface(rx_port, vid)
                .ok_or(Counter::DropVlan),
        }
    }

    /// A frame the pipeline sent to interface `iface` (a [`Verdict::Tx`]):
    /// the port to transmit it on, after pushing the VLAN tag into its
    /// headroom if the interface is a VLAN. None: it cannot be sent (no
    /// such interface, or no headroom; counted `drop_vlan`). The I/O loop
    /// calls this only for interfaces beyond the ports.
    #[cold]
    #[inline(never)]
    pub fn vlan_egress<B: PacketBuf>(&self, pkt: &mut B, iface: u16) -> Option<u16> {
        let Some(p) = self.snap.ports.get(usize::from(iface)) else {
            self.stats.count(Counter::DropVlan);
            return None;
        };
        if p.vlan == 0 {
            return Some(p.phys);
        }
        if !pkt.prepend(vlan::TAG_LEN) || !vlan::push_tag(pkt.data_mut(), p.vlan) {
            self.stats.count(Counter::DropVlan);
            return None;
        }
        Some(p.phys)
    }

    /// Where a packet to client `client` (host order) goes: the gateway of
    /// the static route that covers it, or else the MAC and interface the
    /// client's packets came from. Err: the reason to drop it.
    #[inline(always)]
    pub(super) fn client_hop(
        &self,
        clients: &ClientMacs,
        client: u32,
    ) -> Result<(MacAddr, u16), Counter> {
        if !self.snap.static_routes.is_empty() {
            if let Some(hop) = self.routed_hop(client) {
                return hop;
            }
        }
        clients.get(client).ok_or(Counter::DropNatNoClientMac)
    }

    /// [`client_hop`](Self::client_hop) through a static route, if one
    /// covers `client`.
    #[cold]
    #[inline(never)]
    fn routed_hop(&self, client: u32) -> Option<Result<(MacAddr, u16), Counter>> {
        let r = self.snap.static_route(client)?;
        Some(match self.neigh.mac(r.neigh as usize) {
            Some(mac) => Ok((mac, r.port)),
            None => {
                self.neigh.want(r.neigh as usize);
                Err(Counter::DropNeighUnresolved)
            }
        })
    }
}
