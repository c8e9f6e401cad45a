//! An IPIP encapsulation as the packet path decides it (carried out by
//! `tunnel.rs`), and the bytes of its outer headers (written by
//! `tunnel.rs` and by the tunnel plans of `tunnel_plan.rs`).

use std::net::Ipv4Addr;

use crate::counters::Counter;
use crate::wire::checksum::fold;
use crate::wire::ethernet::{self, ETHERTYPE_IPV4};
use crate::wire::ipv4;
use crate::wire::MacAddr;

const ETH: usize = ethernet::HEADER_LEN;

/// Bytes the outer header adds to a tunnelled packet.
pub const OVERHEAD: usize = ipv4::HEADER_LEN;
/// TTL of the outer header and of ICMP errors.
pub const TTL: u8 = 64;

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

/// The Ethernet header and the outer IPv4 header of encapsulation `e`,
/// written straight into the frame's first bytes `h` (every byte of them,
/// not built aside and copied): the outer header is `ipv4::emit_header_unsummed`'s (TTL
/// [`TTL`], protocol IPIP) with the inner DSCP/ECN byte `tos`. Its checksum
/// (`summed`; 0 for the NIC to fill) is summed from the header's words as
/// they are built, not read back from the buffer: the one's-complement sum
/// of the same words, so the same checksum as summing the written bytes
/// (never 0: the first word is at least 0x4500).
///
/// Built as three big-endian words (bytes 12..20, 20..28, 28..34 less the
/// last two) rather than field by field: the fields are all 16-bit aligned
/// in those words, and so is their sum. The 16-bit words are summed as
/// pairs in one 64-bit add each (a pair's sum is the same modulo 0xffff as
/// its halves' sum), then folded once.
#[inline(always)]
pub(super) fn write_outer_headers(
    h: &mut [u8; ETH + OVERHEAD],
    e: &Encap,
    tos: u8,
    df: bool,
    ident: u16,
    summed: bool,
) {
    let total = (ipv4::HEADER_LEN as u16).saturating_add(e.inner_len);
    let frag = if df { ipv4::FLAG_DF } else { 0 };
    let (src, dst) = (u32::from(e.src), u32::from(e.dst));
    let ver_tos = u16::from_be_bytes([0x45, tos]);
    let ttl_proto = u16::from_be_bytes([TTL, ipv4::PROTO_IPIP]);
    // (version/IHL, DSCP/ECN, total length), (ident, flags/fragment),
    // (TTL, protocol, checksum 0): the header's first three 32-bit words.
    let w0 = (u32::from(ver_tos) << 16) | u32::from(total);
    let w1 = (u32::from(ident) << 16) | u32::from(frag);
    let w2 = u32::from(ttl_proto) << 16;
    let csum = if summed {
        let sum = u64::from(w0) + u64::from(w1) + u64::from(w2) + u64::from(src) + u64::from(dst);
        // At most 5 × (2^32 − 1), under 2^35: the first fold leaves at
        // most 2^32 + 3, the second under 2^17 (`fold`'s u32 input). Each
        // keeps the sum modulo 0xffff, and none turns a non-zero sum to 0.
        let s = (sum & 0xffff_ffff) + (sum >> 32);
        !fold(((s & 0xffff) + (s >> 16)) as u32)
    } else {
        0
    };
    h[0..6].copy_from_slice(&e.dst_mac.0);
    h[6..12].copy_from_slice(&e.src_mac.0);
    let a = (u64::from(ETHERTYPE_IPV4) << 48) | (u64::from(w0) << 16) | u64::from(ident);
    let b =
        (u64::from(frag) << 48) | (u64::from(w2 | u32::from(csum)) << 16) | u64::from(src >> 16);
    h[12..20].copy_from_slice(&a.to_be_bytes());
    h[20..28].copy_from_slice(&b.to_be_bytes());
    h[28..30].copy_from_slice(&(src as u16).to_be_bytes());
    h[30..34].copy_from_slice(&dst.to_be_bytes());
}
