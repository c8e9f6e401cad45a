//! ICMPv6 messages (RFC 4443).
//!
//! ```text
//!  0       8      16              32
//! +-------+-------+---------------+
//! | type  | code  |   checksum    |
//! +-------+-------+---------------+
//! |  message body: ident / seq,   |
//! |  MTU, pointer, unused, ...    |
//! +-------------------------------+
//! |          payload ...          |
//! ```
//!
//! The view must cover exactly the message (the upper-layer part of the
//! IPv6 payload, after any extension headers): the checksum covers the
//! whole buffer and the IPv6 pseudo-header (RFC 4443 §2.3), so computing
//! and checking it need the packet's source and destination addresses.

use std::net::Ipv6Addr;

use super::bytes::{get_u16, get_u32, set_u16, set_u32};
use super::checksum;
use super::error::WireError;
use super::ipv6::{self, PROTO_ICMPV6};

/// Length of the ICMPv6 header (type, code, checksum, four body bytes).
pub const HEADER_LEN: usize = 8;

/// Destination unreachable.
pub const ICMPV6_DEST_UNREACH: u8 = 1;
/// Packet too big (the body carries the MTU).
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
/// Time exceeded.
pub const ICMPV6_TIME_EXCEEDED: u8 = 3;
/// Parameter problem (the body carries a pointer).
pub const ICMPV6_PARAM_PROBLEM: u8 = 4;
/// Echo request.
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
/// Echo reply.
pub const ICMPV6_ECHO_REPLY: u8 = 129;
/// Router solicitation (RFC 4861).
pub const ICMPV6_ROUTER_SOLICIT: u8 = 133;
/// Router advertisement (RFC 4861).
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;
/// Neighbour solicitation (RFC 4861).
pub const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
/// Neighbour advertisement (RFC 4861).
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// Redirect (RFC 4861).
pub const ICMPV6_REDIRECT: u8 = 137;

/// Destination unreachable code: no route to destination.
pub const CODE_NO_ROUTE: u8 = 0;
/// Destination unreachable code: administratively prohibited.
pub const CODE_ADMIN_PROHIBITED: u8 = 1;
/// Destination unreachable code: address unreachable.
pub const CODE_ADDR_UNREACHABLE: u8 = 3;
/// Destination unreachable code: port unreachable.
pub const CODE_PORT_UNREACHABLE: u8 = 4;
/// Time exceeded code: hop limit exceeded in transit.
pub const CODE_HOP_LIMIT_EXCEEDED: u8 = 0;
/// Time exceeded code: fragment reassembly time exceeded.
pub const CODE_REASSEMBLY_TIMEOUT: u8 = 1;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const BODY: usize = 4;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
}

/// Whether `msg_type` is an error message (types 0..=127, RFC 4443 §2.1).
#[inline]
pub const fn is_error(msg_type: u8) -> bool {
    msg_type < 128
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Length of the ICMPv6 header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps `buffer` without validation.
    ///
    /// Accessors panic if the buffer is shorter than [`HEADER_LEN`] (8).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps `buffer` (exactly the message). The checksum is not verified.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the buffer is shorter than 8 bytes (every
    /// message type RFC 4443 and RFC 4861 define has at least 8).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv6Packet { buffer })
    }

    /// Unwraps the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole message.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Message type ([`ICMPV6_ECHO_REQUEST`], ...).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The first four body bytes as a `u32` (unused, MTU, pointer, echo
    /// ident + seq, NA flags, ...).
    #[inline]
    pub fn body_word(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::BODY)
    }

    /// Echo identifier (echo request / reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number (echo request / reply).
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SEQ)
    }

    /// MTU of a packet-too-big message.
    #[inline]
    pub fn mtu(&self) -> u32 {
        self.body_word()
    }

    /// Pointer of a parameter-problem message.
    #[inline]
    pub fn pointer(&self) -> u32 {
        self.body_word()
    }

    /// The message body: everything after type, code and checksum.
    #[inline]
    pub fn body(&self) -> &[u8] {
        self.buffer.as_ref().get(field::BODY..).unwrap_or(&[])
    }

    /// Everything after the 8-byte header (echo data, or the invoking
    /// packet of an error message).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Whether the checksum over the pseudo-header (`src`, `dst`, the
    /// message length, next header 58) and the whole buffer is correct.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        checksum::fold(checksum::sum(data, pseudo(src, dst, data.len()))) == 0xffff
    }
}

#[inline]
fn pseudo(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> u32 {
    checksum::pseudo_header_sum_v6(src, dst, PROTO_ICMPV6, len as u32)
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv6Packet<&'a T> {
    /// Like [`payload`](Icmpv6Packet::payload), with the buffer's lifetime.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the message code.
    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the first four body bytes.
    #[inline]
    pub fn set_body_word(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::BODY, v);
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::SEQ, v);
    }

    /// Sets the MTU of a packet-too-big message.
    #[inline]
    pub fn set_mtu(&mut self, v: u32) {
        self.set_body_word(v);
    }

    /// Recomputes and writes the checksum over the pseudo-header and the
    /// whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let c = !checksum::fold(checksum::sum(data, pseudo(src, dst, data.len())));
        self.set_checksum(c);
    }

    /// Everything after the 8-byte header, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or(&mut [])
    }
}

/// What an error message says besides the invoking packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Error {
    /// [`ICMPV6_DEST_UNREACH`], [`ICMPV6_PACKET_TOO_BIG`],
    /// [`ICMPV6_TIME_EXCEEDED`] or [`ICMPV6_PARAM_PROBLEM`].
    pub msg_type: u8,
    /// Code.
    pub code: u8,
    /// The four body bytes: the MTU of a packet-too-big, the pointer of a
    /// parameter problem, 0 otherwise.
    pub body: u32,
}

impl Icmpv6Error {
    /// Packet too big, advertising `mtu`.
    pub const fn packet_too_big(mtu: u32) -> Self {
        Icmpv6Error {
            msg_type: ICMPV6_PACKET_TOO_BIG,
            code: 0,
            body: mtu,
        }
    }

    /// Destination unreachable with `code`.
    pub const fn dest_unreachable(code: u8) -> Self {
        Icmpv6Error {
            msg_type: ICMPV6_DEST_UNREACH,
            code,
            body: 0,
        }
    }

    /// Hop limit exceeded in transit.
    pub const fn hop_limit_exceeded() -> Self {
        Icmpv6Error {
            msg_type: ICMPV6_TIME_EXCEEDED,
            code: CODE_HOP_LIMIT_EXCEEDED,
            body: 0,
        }
    }
}

/// Writes an IPv6 packet carrying the ICMPv6 error `err` about `invoking`
/// (the offending IPv6 packet, from its fixed header) into `buf`, and
/// returns its length: a fixed header (`src` → `dst`, hop limit
/// `hop_limit`, next header 58), the 8-byte ICMPv6 header with a correct
/// checksum, and as much of `invoking` as fits in the IPv6 minimum MTU
/// (1280 bytes in all, RFC 4443 §2.4 (c)) and in `buf`.
///
/// # Panics
/// If `buf` is shorter than 48 bytes (fixed header + ICMPv6 header).
#[inline]
pub fn emit_error(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    err: Icmpv6Error,
    invoking: &[u8],
) -> usize {
    const FIXED: usize = ipv6::HEADER_LEN + HEADER_LEN;
    assert!(
        buf.len() >= FIXED,
        "icmpv6::emit_error: buffer shorter than 48 bytes"
    );
    let quoted = invoking
        .len()
        .min(ipv6::MIN_MTU - FIXED)
        .min(buf.len() - FIXED);
    let msg_len = HEADER_LEN + quoted;
    // msg_len <= 1240, so it fits the 16-bit payload length.
    ipv6::emit_header(buf, src, dst, PROTO_ICMPV6, hop_limit, msg_len as u16);
    let msg = &mut buf[ipv6::HEADER_LEN..ipv6::HEADER_LEN + msg_len];
    msg[HEADER_LEN..].copy_from_slice(&invoking[..quoted]);
    let mut icmp = Icmpv6Packet::new_unchecked(msg);
    icmp.set_msg_type(err.msg_type);
    icmp.set_code(err.code);
    icmp.set_body_word(err.body);
    icmp.fill_checksum(src, dst);
    ipv6::HEADER_LEN + msg_len
}

/// Turns the echo request `msg` (exactly the ICMPv6 message, received
/// from `peer` for `us`) into the echo reply from `us` to `peer`, in
/// place: type 129, the same identifier, sequence and data, and a
/// recomputed checksum. The caller swaps the IPv6 addresses.
///
/// # Panics
/// If `msg` is shorter than 8 bytes.
#[inline]
pub fn echo_request_to_reply(msg: &mut [u8], us: Ipv6Addr, peer: Ipv6Addr) {
    let mut icmp = Icmpv6Packet::new_unchecked(msg);
    icmp.set_msg_type(ICMPV6_ECHO_REPLY);
    icmp.set_code(0);
    icmp.fill_checksum(us, peer);
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// Echo request id 0x1234 seq 1, "abcdefgh", checksum zero.
    fn sample() -> Vec<u8> {
        let mut v = vec![128, 0, 0, 0, 0x12, 0x34, 0x00, 0x01];
        v.extend_from_slice(b"abcdefgh");
        v
    }

    #[test]
    fn checksum_by_hand() {
        let mut buf = sample();
        // Pseudo-header words (2001:db8::1, 2001:db8::2, length 16, nh 58)
        // plus the message's words, folded and complemented.
        let words: u32 = 0x2001
            + 0x0db8
            + 1
            + 0x2001
            + 0x0db8
            + 2
            + 16
            + 58
            + 0x8000
            + 0x1234
            + 0x0001
            + 0x6162
            + 0x6364
            + 0x6566
            + 0x6768;
        let folded = (words & 0xffff) + (words >> 16);
        let expected = !(((folded & 0xffff) + (folded >> 16)) as u16);
        let mut p = Icmpv6Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum(A, B);
        assert_eq!(p.checksum(), expected);
        assert!(p.verify_checksum(A, B));
        // The pseudo-header matters (its two addresses sum the same in
        // either order).
        assert!(p.verify_checksum(B, A));
        assert!(!p.verify_checksum(A, A));
        assert_eq!(p.msg_type(), ICMPV6_ECHO_REQUEST);
        assert_eq!((p.echo_ident(), p.echo_seq()), (0x1234, 1));
        assert_eq!(p.body_word(), 0x1234_0001);
        assert_eq!(p.body().len(), 12);
        assert_eq!(p.payload(), b"abcdefgh");
    }

    #[test]
    fn echo_reply_in_place() {
        let mut buf = sample();
        Icmpv6Packet::new_unchecked(&mut buf[..]).fill_checksum(A, B);
        echo_request_to_reply(&mut buf, B, A);
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.msg_type(), ICMPV6_ECHO_REPLY);
        assert!(p.verify_checksum(B, A));
        assert_eq!(p.into_payload(), b"abcdefgh");
    }

    #[test]
    fn short_and_setters() {
        assert_eq!(
            Icmpv6Packet::new_checked(&[0u8; 7][..]),
            Err(WireError::Truncated)
        );
        let mut b = [0u8; 8];
        let mut p = Icmpv6Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.payload().is_empty() && p.payload_mut().is_empty());
        p.set_msg_type(ICMPV6_PACKET_TOO_BIG);
        p.set_mtu(1280);
        assert_eq!(p.mtu(), 1280);
        p.set_echo_ident(7);
        p.set_echo_seq(9);
        assert_eq!(p.pointer(), 0x0007_0009);
        p.set_code(3);
        assert_eq!(p.code(), 3);
        assert!(is_error(p.msg_type()));
        assert!(!is_error(ICMPV6_ECHO_REQUEST));
        assert!(!is_error(ICMPV6_NEIGHBOR_SOLICIT));
    }

    #[test]
    fn error_quotes_up_to_the_minimum_mtu() {
        let invoking: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
        let mut buf = vec![0u8; 1500];
        let n = emit_error(
            &mut buf,
            A,
            B,
            64,
            Icmpv6Error::packet_too_big(1400),
            &invoking,
        );
        assert_eq!(n, ipv6::MIN_MTU);
        let ip = ipv6::Ipv6Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(usize::from(ip.payload_len()), 1240);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.msg_type(), ICMPV6_PACKET_TOO_BIG);
        assert_eq!(icmp.mtu(), 1400);
        assert!(icmp.verify_checksum(A, B));
        assert_eq!(icmp.payload(), &invoking[..1232]);
        // Short invoking packet: quoted whole; short buffer: cut to fit.
        let n = emit_error(
            &mut buf,
            A,
            B,
            64,
            Icmpv6Error::hop_limit_exceeded(),
            &invoking[..60],
        );
        assert_eq!(n, 108);
        let mut small = [0u8; 50];
        let n = emit_error(
            &mut small,
            A,
            B,
            64,
            Icmpv6Error::dest_unreachable(4),
            &invoking,
        );
        assert_eq!(n, 50);
        let ip = ipv6::Ipv6Packet::new_checked(&small[..]).unwrap();
        assert!(Icmpv6Packet::new_checked(ip.payload())
            .unwrap()
            .verify_checksum(A, B));
    }
}
