//! IPv6 fixed headers (RFC 8200 §3) and the address helpers Neighbour
//! Discovery needs (RFC 4291 §2.7.1, RFC 2464 §7).
//!
//! ```text
//!  0       4               12                                      32
//! +-------+---------------+---------------------------------------+
//! |version| traffic class |               flow label              |
//! +-------+-------+-------+---------------+-----------------------+
//! |        payload length         |  next header  |   hop limit   |
//! +-------------------------------+---------------+---------------+
//! |                   source address (16 bytes)                   |
//! +---------------------------------------------------------------+
//! |                 destination address (16 bytes)                |
//! +---------------------------------------------------------------+
//! |     extension headers and upper-layer payload (payload len)   |
//! ```
//!
//! The payload starts right after the 40-byte fixed header and includes any
//! extension headers; walk them with [`super::ipv6_ext`]. A payload length
//! of zero is taken literally (an empty payload): jumbograms (RFC 2675) are
//! not supported, so a jumbogram's walk reports a truncated chain.

use std::net::Ipv6Addr;

use super::bytes::{clamp_range, get_ipv6, get_u16, get_u32, set_u16, set_u32};
use super::error::WireError;
use lb_api::mac::MacAddr;

/// Length of the IPv6 fixed header.
pub const HEADER_LEN: usize = 40;
/// The IPv6 minimum link MTU (RFC 8200 §5): ICMPv6 errors are cut to fit it.
pub const MIN_MTU: usize = 1280;

/// Next header: hop-by-hop options.
pub const NEXT_HEADER_HOP_BY_HOP: u8 = 0;
/// Next header: routing header.
pub const NEXT_HEADER_ROUTING: u8 = 43;
/// Next header: fragment header.
pub const NEXT_HEADER_FRAGMENT: u8 = 44;
/// Next header: Encapsulating Security Payload.
pub const NEXT_HEADER_ESP: u8 = 50;
/// Next header: Authentication Header.
pub const NEXT_HEADER_AH: u8 = 51;
/// Next header: ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;
/// Next header: nothing follows.
pub const NEXT_HEADER_NONE: u8 = 59;
/// Next header: destination options.
pub const NEXT_HEADER_DEST_OPTS: u8 = 60;

/// All-nodes link-local multicast address, ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1):
/// ff02::1:ff00:0 with the low 24 bits of `addr`. Neighbour Solicitations
/// for `addr` are sent there.
#[inline]
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// Whether `addr` is a solicited-node multicast address (ff02::1:ffXX:XXXX).
#[inline]
pub fn is_solicited_node(addr: Ipv6Addr) -> bool {
    let o = addr.octets();
    o[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]
}

/// The Ethernet multicast MAC of an IPv6 multicast address (RFC 2464 §7):
/// 33:33 followed by the address's last four bytes.
#[inline]
pub fn multicast_mac(addr: Ipv6Addr) -> MacAddr {
    let o = addr.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// A view of an IPv6 packet (the Ethernet payload, possibly followed by
/// Ethernet padding, which [`payload`](Ipv6Packet::payload) excludes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Length of the IPv6 fixed header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps `buffer` without validation.
    ///
    /// Fixed-offset accessors panic if the buffer is shorter than
    /// [`HEADER_LEN`] (40); the payload accessors never panic.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer`, validating the fixed header. Bytes past the payload
    /// length (Ethernet padding) are allowed.
    ///
    /// # Errors
    /// In order of checking:
    /// - [`WireError::Truncated`]: buffer shorter than 40 bytes;
    /// - [`WireError::BadVersion`]: version is not 6;
    /// - [`WireError::PayloadTruncated`]: 40 + payload length exceeds the
    ///   buffer.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Ipv6Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.version() != 6 {
            return Err(WireError::BadVersion);
        }
        if HEADER_LEN + usize::from(p.payload_len()) > len {
            return Err(WireError::PayloadTruncated);
        }
        Ok(p)
    }

    /// Unwraps the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole underlying buffer (including any bytes past the payload).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline]
    fn ver_tc_flow(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VER_TC_FLOW)
    }

    /// Version field (6 on a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// Traffic class (DSCP and ECN, as IPv4's TOS byte).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    /// Differentiated services code point (upper 6 bits of the traffic class).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    /// Explicit congestion notification (lower 2 bits of the traffic class).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// Payload length: bytes after the fixed header, extension headers
    /// included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Next header: the first extension header or the upper-layer protocol.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::DST)
    }

    /// The 40-byte fixed header (clamped to the buffer).
    #[inline]
    pub fn header(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamp_range(0, HEADER_LEN, data.len())]
    }

    /// The payload (extension headers and upper layer): payload-length
    /// bytes after the fixed header, not any Ethernet padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[self.payload_range(data.len())]
    }

    #[inline]
    fn payload_range(&self, len: usize) -> std::ops::Range<usize> {
        let end = HEADER_LEN + usize::from(self.payload_len());
        clamp_range(HEADER_LEN, end, len)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// Like [`payload`](Ipv6Packet::payload), with the buffer's lifetime.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let range = self.payload_range(self.buffer.as_ref().len());
        &self.buffer.as_ref()[range]
    }
}

impl<'a> Ipv6Packet<&'a mut [u8]> {
    /// Like [`payload_mut`](Ipv6Packet::payload_mut), with the buffer's
    /// lifetime.
    #[inline]
    pub fn into_payload_mut(self) -> &'a mut [u8] {
        let range = self.payload_range(self.buffer.len());
        &mut self.buffer[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    #[inline]
    fn set_ver_tc_flow(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::VER_TC_FLOW, v);
    }

    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let w = self.ver_tc_flow() & 0x0fff_ffff;
        self.set_ver_tc_flow(w | (u32::from(v & 0x0f) << 28));
    }

    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = self.ver_tc_flow() & 0xf00f_ffff;
        self.set_ver_tc_flow(w | (u32::from(tc) << 20));
    }

    /// Sets the flow label (the upper 12 bits of `label` are ignored).
    #[inline]
    pub fn set_flow_label(&mut self, label: u32) {
        let w = self.ver_tc_flow() & 0xfff0_0000;
        self.set_ver_tc_flow(w | (label & 0x000f_ffff));
    }

    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src(&mut self, ip: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(&ip.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, ip: Ipv6Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 16].copy_from_slice(&ip.octets());
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.payload_range(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[range]
    }
}

/// Writes a 40-byte IPv6 fixed header at the start of `buf` and returns its
/// length ([`HEADER_LEN`]): version 6, traffic class 0, flow label 0, and
/// the given fields. The payload itself is not touched (IPv6 has no header
/// checksum).
///
/// # Panics
/// If `buf.len() < 40`.
#[inline]
pub fn emit_header(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload_len: u16,
) -> usize {
    assert!(
        buf.len() >= HEADER_LEN,
        "ipv6::emit_header: buffer shorter than 40 bytes"
    );
    let mut p = Ipv6Packet::new_unchecked(&mut buf[..HEADER_LEN]);
    p.set_ver_tc_flow(6 << 28);
    p.set_payload_len(payload_len);
    p.set_next_header(next_header);
    p.set_hop_limit(hop_limit);
    p.set_src(src);
    p.set_dst(dst);
    HEADER_LEN
}

/// The network mask of an IPv6 prefix length (0..=128; more is 128).
#[inline]
pub fn prefix_mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        n if n >= 128 => u128::MAX,
        n => u128::MAX << (128 - n as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xab, 0xcdef);

    /// Version 6, traffic class 0xb8 (EF), flow label 0x12345, payload 4
    /// bytes of UDP-ish junk, next header 17, hop limit 64, then 2 bytes of
    /// Ethernet padding.
    fn sample() -> Vec<u8> {
        let mut v = vec![0x6b, 0x81, 0x23, 0x45, 0x00, 0x04, 17, 64];
        v.extend_from_slice(&SRC.octets());
        v.extend_from_slice(&DST.octets());
        v.extend_from_slice(&[1, 2, 3, 4, 0xee, 0xee]);
        v
    }

    #[test]
    fn parse() {
        let b = sample();
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.dscp(), 46);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 4);
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), SRC);
        assert_eq!(p.dst(), DST);
        assert_eq!(p.header().len(), 40);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert_eq!(p.into_payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn rejects() {
        let b = sample();
        assert_eq!(Ipv6Packet::new_checked(&b[..39]), Err(WireError::Truncated));
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert_eq!(Ipv6Packet::new_checked(&v4[..]), Err(WireError::BadVersion));
        assert_eq!(
            Ipv6Packet::new_checked(&b[..43]),
            Err(WireError::PayloadTruncated)
        );
        assert!(Ipv6Packet::new_checked(&b[..44]).is_ok());
        let mut big = b.clone();
        big[4] = 0xff;
        assert_eq!(
            Ipv6Packet::new_checked(&big[..]),
            Err(WireError::PayloadTruncated)
        );
    }

    #[test]
    fn setters_and_emit() {
        let mut b = [0xaau8; 48];
        assert_eq!(emit_header(&mut b, SRC, DST, PROTO_ICMPV6, 255, 8), 40);
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!((p.traffic_class(), p.flow_label()), (0, 0));
        assert_eq!(p.next_header(), PROTO_ICMPV6);
        assert_eq!(p.hop_limit(), 255);
        assert_eq!(p.payload(), &[0xaa; 8]);
        p.set_traffic_class(0xff);
        p.set_flow_label(0xfff_ffff);
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xff);
        assert_eq!(p.flow_label(), 0xf_ffff);
        p.set_flow_label(1);
        p.set_traffic_class(0);
        assert_eq!(p.as_bytes()[..4], [0x60, 0, 0, 1]);
        p.set_version(4);
        assert_eq!(p.version(), 4);
        assert_eq!(p.flow_label(), 1);
        p.set_version(6);
        p.set_src(DST);
        p.set_dst(SRC);
        p.set_hop_limit(1);
        p.set_next_header(6);
        p.set_payload_len(2);
        p.payload_mut().fill(0);
        assert_eq!((p.src(), p.dst(), p.hop_limit()), (DST, SRC, 1));
        assert_eq!(p.into_payload_mut().len(), 2);
        assert_eq!(&b[40..], &[0, 0, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
        // A nonsensical payload length set afterwards clamps, never panics.
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_payload_len(u16::MAX);
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    #[should_panic]
    fn emit_short_buffer_panics() {
        emit_header(&mut [0u8; 39], SRC, DST, 6, 64, 0);
    }

    #[test]
    fn solicited_node_and_mac() {
        // RFC 4291 §2.7.1: 4037::01:800:200e:8c6c -> ff02::1:ff0e:8c6c.
        let a: Ipv6Addr = "4037::01:800:200e:8c6c".parse().unwrap();
        let s = solicited_node(a);
        assert_eq!(s, "ff02::1:ff0e:8c6c".parse::<Ipv6Addr>().unwrap());
        assert!(is_solicited_node(s));
        assert!(!is_solicited_node(a));
        assert!(!is_solicited_node(ALL_NODES));
        // RFC 2464 §7: FF02::1:FF0E:8C6C -> 33:33:FF:0E:8C:6C.
        assert_eq!(
            multicast_mac(s),
            MacAddr([0x33, 0x33, 0xff, 0x0e, 0x8c, 0x6c])
        );
        assert_eq!(multicast_mac(ALL_NODES), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    }
}
