//! Zero-copy typed views over packet bytes.
//!
//! Every protocol the director touches gets a thin wrapper around a byte
//! buffer (`T: AsRef<[u8]>`, and `T: AsMut<[u8]>` for the setters), in the
//! style of smoltcp's `wire` module:
//!
//! | view                 | layer                          |
//! |----------------------|--------------------------------|
//! | [`EthernetFrame`]    | Ethernet II                    |
//! | [`VlanFrame`]        | IEEE 802.1Q VLAN tag           |
//! | [`ArpPacket`]        | ARP for Ethernet / IPv4        |
//! | [`Ipv4Packet`]       | IPv4                           |
//! | [`TcpSegment`]       | TCP                            |
//! | [`UdpDatagram`]      | UDP                            |
//! | [`Icmpv4Packet`]     | ICMPv4                         |
//! | [`Ipv6Packet`]       | IPv6 fixed header              |
//! | [`ipv6_ext::walk`]   | IPv6 extension-header chain    |
//! | [`Icmpv6Packet`]     | ICMPv6                         |
//! | [`NeighborSolicit`], [`NeighborAdvert`] | IPv6 Neighbour Discovery |
//!
//! and [`checksum`] holds the Internet checksum (RFC 1071), its incremental
//! update (RFC 1624) and the IPv4 and IPv6 pseudo-header sums.
//!
//! The IPv6 views are groundwork: the packet pipeline does not use them
//! yet. [`ipv6_ext`] documents the extension-header policy (fragments,
//! routing headers with segments left, ESP/AH and over-long chains are
//! typed outcomes, never a hang).
//!
//! # Contract
//!
//! * Views never copy and never allocate; accessors read the bytes in network
//!   byte order each time they are called.
//! * `new_checked` validates everything the accessors rely on, and reports the
//!   first problem as a [`WireError`], whose variants are meant to be used
//!   directly as drop-reason counters ([`WireError::as_str`]).
//! * On a view that passed `new_checked`, **no accessor panics**, whatever the
//!   bytes. Accessors that compute a range from header fields (payloads,
//!   options, checksums) additionally clamp it to the buffer, so they stay
//!   panic-free even after a setter has written a nonsensical length.
//! * `new_unchecked` skips validation; fixed-offset accessors on such a view
//!   panic if the buffer is shorter than the fixed header.
//! * Views over a transport header (`TcpSegment`, `UdpDatagram`,
//!   `Icmpv4Packet`, `Icmpv6Packet`, the NDP views) must be given exactly the
//!   IP payload ([`Ipv4Packet::payload`]; for IPv6 the upper-layer part of
//!   [`Ipv6Packet::payload`], from the offset [`ipv6_ext::walk`] returns),
//!   not the rest of the Ethernet frame, because the checksums cover
//!   "everything in the buffer" (TCP, ICMP).
//!
//! # Example
//!
//! ```
//! use lbcore::wire::{EthernetFrame, Ipv4Packet, TcpSegment, ETHERTYPE_IPV4, PROTO_TCP};
//!
//! fn dst_port(frame: &[u8]) -> Option<u16> {
//!     let eth = EthernetFrame::new_checked(frame).ok()?;
//!     if eth.ethertype() != ETHERTYPE_IPV4 {
//!         return None;
//!     }
//!     let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
//!     if ip.protocol() != PROTO_TCP || ip.is_fragment() {
//!         return None;
//!     }
//!     let tcp = TcpSegment::new_checked(ip.payload()).ok()?;
//!     Some(tcp.dst_port())
//! }
//! # assert_eq!(dst_port(&[0u8; 10]), None);
//! ```

pub mod arp;
mod bytes;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6_ext;
pub mod ndp;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vrrp;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ipv6;

pub use arp::{build_arp, ArpPacket, ARP_FRAME_LEN, ARP_REPLY, ARP_REQUEST};
pub use bytes::mac_at;
pub use error::WireError;
pub use ethernet::{
    EthernetFrame, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, MIN_FRAME_LEN,
};
pub use icmp::{
    Icmpv4Packet, ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED,
};
pub use icmpv6::{
    Icmpv6Error, Icmpv6Packet, ICMPV6_DEST_UNREACH, ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST,
    ICMPV6_NEIGHBOR_ADVERT, ICMPV6_NEIGHBOR_SOLICIT, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED,
};
pub use ipv4::{emit_header, Ipv4Packet, PROTO_ICMP, PROTO_IPIP, PROTO_TCP, PROTO_UDP};
pub use ipv6::{multicast_mac, solicited_node, Ipv6Packet, ALL_NODES, PROTO_ICMPV6};
pub use ipv6_ext::{Ipv6ExtError, UpperLayer};
/// MAC addresses are part of the configuration schema (`lb-api`); the
/// packet views use the same type.
pub use lb_api::mac::MacAddr;
pub use ndp::{NdpError, Neighbor, NeighborAdvert, NeighborSolicit};
pub use tcp::{TcpFlags, TcpSegment};
pub use udp::UdpDatagram;
pub use vlan::VlanFrame;
