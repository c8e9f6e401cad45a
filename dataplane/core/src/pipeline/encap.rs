//! An IPIP encapsulation as the packet path decides it (carried out by
//! `tunnel.rs`).

use std::net::Ipv4Addr;

use crate::counters::Counter;
use crate::wire::MacAddr;

/// An encapsulation decided by the packet path, carried out on the buffer by
/// `tunnel::encap_frame`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encap {
    /// Egress port index.
    pub port: u16,
    /// The real server's MAC.
    pub dst_mac: MacAddr,
    /// The egress port's MAC.
    pub src_mac: MacAddr,
    /// Outer source address.
    pub src: Ipv4Addr,
    /// Outer destination: the real server.
    pub dst: Ipv4Addr,
    /// Total length of the inner IP packet (the frame may carry Ethernet
    /// padding after it).
    pub inner_len: u16,
    /// Real-server id, for its counters.
    pub rs: u32,
    /// Stable service id, for its counters.
    pub svc: u32,
    /// The outcome counted once sent: `forwarded_tunnel`, or
    /// `icmp_error_forwarded` for an ICMP error relayed to the real server.
    pub outcome: Counter,
}

impl Encap {
    /// A placeholder (the worker's slot before any encapsulation).
    pub const NONE: Encap = Encap {
        port: 0,
        dst_mac: MacAddr::ZERO,
        src_mac: MacAddr::ZERO,
        src: Ipv4Addr::UNSPECIFIED,
        dst: Ipv4Addr::UNSPECIFIED,
        inner_len: 0,
        rs: 0,
        svc: 0,
        outcome: Counter::FwdTunnel,
    };
}
