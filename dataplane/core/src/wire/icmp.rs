//! ICMPv4 messages (RFC 792).
//!
//! ```text
//!  0       8      16              32
//! +-------+-------+---------------+
//! | type  | code  |   checksum    |
//! +-------+-------+---------------+
//! |  rest of header (ident / seq, |
//! |  unused / next-hop MTU, ...)  |
//! +-------------------------------+
//! |          payload ...          |
//! ```
//!
//! The view must cover exactly the message (the IPv4 payload): the checksum
//! covers the whole buffer.

use super::bytes::{get_u16, get_u32, set_u16, set_u32};
use super::checksum;
use super::error::WireError;

/// Length of the ICMP header (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = 8;

/// Echo reply.
pub const ICMP_ECHO_REPLY: u8 = 0;
/// Destination unreachable.
pub const ICMP_DEST_UNREACH: u8 = 3;
/// Echo request.
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// Time exceeded.
pub const ICMP_TIME_EXCEEDED: u8 = 11;

/// Destination unreachable code: fragmentation needed and DF set (the
/// rest-of-header then carries the next-hop MTU in its low 16 bits).
pub const CODE_FRAG_NEEDED: u8 = 4;
/// Time exceeded code: TTL exceeded in transit.
pub const CODE_TTL_EXCEEDED: u8 = 0;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
}

/// A view of an ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Length of the ICMP header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps `buffer` without validation.
    ///
    /// Accessors panic if the buffer is shorter than [`HEADER_LEN`] (8).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps `buffer` (exactly the message). The checksum is not verified.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the buffer is shorter than 8 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv4Packet { buffer })
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

    /// Message type ([`ICMP_ECHO_REQUEST`], ...).
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

    /// The four "rest of header" bytes as a `u32`.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::REST)
    }

    /// Echo identifier (meaningful for echo request / reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number (meaningful for echo request / reply).
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SEQ)
    }

    /// Next-hop MTU of a "fragmentation needed" message (low 16 bits of the
    /// rest of header).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SEQ)
    }

    /// Everything after the 8-byte header (echo data, or the quoted IP
    /// header + 8 bytes for error messages).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        data.get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Whether the checksum over the whole buffer is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref(), 0)) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv4Packet<&'a T> {
    /// Like [`payload`](Icmpv4Packet::payload), with the buffer's lifetime.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
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

    /// Sets the four "rest of header" bytes.
    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::REST, v);
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

    /// Sets the next-hop MTU (low 16 bits of the rest of header).
    #[inline]
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::SEQ, v);
    }

    /// Recomputes and writes the checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
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

/// Whether the ICMP message `msg` (the IPv4 payload) is an error the director
/// handles: destination unreachable or time exceeded (any code).
#[inline]
pub fn is_error(msg: &[u8]) -> bool {
    matches!(msg.first(), Some(&(ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ping` echo request, id 0x1234 seq 1, payload "abcdefgh", checksum
    /// computed independently.
    fn sample() -> Vec<u8> {
        let mut v = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01];
        v.extend_from_slice(b"abcdefgh");
        v
    }

    #[test]
    fn parse_and_checksum() {
        let mut buf = sample();
        // Independent sum: 0x0800 + 0x1234 + 0x0001 + "ab" "cd" "ef" "gh".
        let words: u32 = 0x0800 + 0x1234 + 0x0001 + 0x6162 + 0x6364 + 0x6566 + 0x6768;
        let folded = (words & 0xffff) + (words >> 16);
        let expected = !(folded as u16);
        buf[2..4].copy_from_slice(&expected.to_be_bytes());

        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.msg_type(), ICMP_ECHO_REQUEST);
        assert_eq!(p.code(), 0);
        assert_eq!(p.checksum(), expected);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq(), 1);
        assert_eq!(p.rest_of_header(), 0x1234_0001);
        assert_eq!(p.payload(), b"abcdefgh");
        assert_eq!(p.into_payload(), b"abcdefgh");
        assert!(p.verify_checksum());
    }

    #[test]
    fn turn_into_reply() {
        let mut buf = sample();
        let mut p = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.set_msg_type(ICMP_ECHO_REPLY);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.msg_type(), 0);
        // Incremental update of the type/code word gives the same result.
        let mut buf2 = sample();
        let mut q = Icmpv4Packet::new_checked(&mut buf2[..]).unwrap();
        q.fill_checksum();
        let old = q.checksum();
        q.set_msg_type(ICMP_ECHO_REPLY);
        q.set_checksum(checksum::incremental_update16(old, 0x0800, 0x0000));
        assert_eq!(q.checksum(), p.checksum());
    }

    #[test]
    fn odd_length_payload() {
        let mut buf = sample();
        buf.push(b'i');
        let mut p = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.payload_mut()[8] = b'j';
        assert!(!p.verify_checksum());
    }

    #[test]
    fn setters_and_short() {
        assert_eq!(
            Icmpv4Packet::new_checked(&[0u8; 7][..]),
            Err(WireError::Truncated)
        );
        let mut buf = [0u8; 8];
        let mut p = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        assert!(p.payload().is_empty());
        assert!(p.payload_mut().is_empty());
        p.set_msg_type(ICMP_DEST_UNREACH);
        p.set_code(CODE_FRAG_NEEDED);
        p.set_rest_of_header(0);
        p.set_next_hop_mtu(1400);
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.rest_of_header(), 1400);
        p.set_echo_ident(7);
        p.set_echo_seq(9);
        assert_eq!((p.echo_ident(), p.echo_seq()), (7, 9));
        p.set_msg_type(ICMP_TIME_EXCEEDED);
        p.set_code(CODE_TTL_EXCEEDED);
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.as_bytes()[0], 11);
    }
}
