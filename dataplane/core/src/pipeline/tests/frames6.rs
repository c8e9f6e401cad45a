//! IPv6 frames and packets the pipeline's IPv6 tests share: a client's
//! TCP and UDP frames to a VIP, and bare IPv6 packets (no Ethernet) of the
//! kind an ICMPv6 error quotes.

use super::*;
use std::net::Ipv6Addr;

/// A client's TCP frame to `dst`: a SYN, or an ACK carrying a request.
pub(super) fn tcp6(client: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv6(client.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1000, 65535);
    b = if syn { b.syn() } else { b.ack(1) };
    let mut out = Vec::new();
    b.write(&mut out, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    out
}

/// A client's UDP frame to `dst`.
pub(super) fn udp6(client: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv6(client.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::new();
    b.write(&mut out, b"query").unwrap();
    out
}

/// The IPv6 header of a bare packet from `src` to `dst`.
fn bare(src: Ipv6Addr, dst: Ipv6Addr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ip(etherparse::IpHeaders::Ipv6(
        etherparse::Ipv6Header {
            source: src.octets(),
            destination: dst.octets(),
            hop_limit: 64,
            ..Default::default()
        },
        Default::default(),
    ))
}

/// An IPv6 TCP ACK (no Ethernet) from `src`:`sport` to `dst`:`dport`
/// carrying `payload` zero bytes, with a valid checksum.
pub(super) fn ip6_tcp(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    bare(src, dst)
        .tcp(sport, dport, 5000, 65535)
        .ack(1)
        .write(&mut out, &vec![0u8; payload])
        .unwrap();
    out
}

/// An IPv6 UDP packet (no Ethernet) from `src`:`sport` to `dst`:`dport`,
/// with a valid checksum.
pub(super) fn ip6_udp(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    bare(src, dst)
        .udp(sport, dport)
        .write(&mut out, b"query")
        .unwrap();
    out
}
