//! Small facts about addresses, protocols and ports that several checks
//! state in their messages (validate.rs for services and ports, groups.rs
//! for service groups): one home, so neither check module imports the other.

use std::net::IpAddr;

use super::types::{PortConfig, Protocol};

/// The protocol as messages spell it.
pub(super) fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// Why `ip` cannot be used as a unicast address, if it cannot.
pub(super) fn special_address(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if matches!(ip, IpAddr::V4(a) if a.is_broadcast()) {
        Some("the broadcast address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else {
        None
    }
}

/// A port whose own address (IPv4, or IPv6 `address6`) is `ip`.
pub(super) fn port_owning(ports: &[PortConfig], ip: IpAddr) -> Option<&PortConfig> {
    ports.iter().find(|p| match ip {
        IpAddr::V4(a) => p.address.addr == a,
        IpAddr::V6(a) => p.address6.is_some_and(|c| c.addr == a),
    })
}
