//! UDP datagrams (RFC 768).
//!
//! ```text
//!  0               16              32
//! +---------------+---------------+
//! |  source port  |   dest port   |
//! +---------------+---------------+
//! |    length     |   checksum    |
//! +---------------+---------------+
//! |          payload ...          |
//! ```
//!
//! The length field (header + payload) bounds the payload and the checksum;
//! bytes after it in the buffer are ignored.

use std::net::Ipv4Addr;

use super::bytes::{clamp_range, get_u16, set_u16};
use super::checksum;
use super::error::WireError;
use super::ipv4::PROTO_UDP;

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    /// Length of the UDP header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps `buffer` without validation.
    ///
    /// Fixed-offset accessors panic if the buffer is shorter than
    /// [`HEADER_LEN`] (8); range accessors never panic.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpDatagram { buffer }
    }

    /// Wraps `buffer`, validating the header. The checksum is not verified.
    ///
    /// # Errors
    /// In order of checking: [`WireError::Truncated`] (shorter than 8 bytes),
    /// [`WireError::BadLength`] (length field < 8),
    /// [`WireError::PayloadTruncated`] (length field larger than the buffer).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let d = UdpDatagram { buffer };
        let len = d.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let l = usize::from(d.len());
        if l < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if l > len {
            return Err(WireError::PayloadTruncated);
        }
        Ok(d)
    }

    /// Unwraps the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole underlying buffer.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header + payload, in bytes.
    #[allow(clippy::len_without_is_empty)]
    #[inline]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Checksum field (0: no checksum).
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The datagram as delimited by the length field (clamped to the buffer).
    #[inline]
    fn datagram(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamp_range(0, usize::from(self.len()), data.len())]
    }

    /// The payload: after the header, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamp_range(HEADER_LEN, usize::from(self.len()), data.len())]
    }

    /// Whether the checksum is correct for a datagram carried from `src` to
    /// `dst`; a zero checksum field means "not computed" and is accepted.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let s = checksum::sum(
            self.datagram(),
            checksum::pseudo_header_sum(src, dst, PROTO_UDP, self.len()),
        );
        checksum::fold(s) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpDatagram<&'a T> {
    /// Like [`payload`](UdpDatagram::payload), with the buffer's lifetime.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let range = {
            let data = self.buffer.as_ref();
            clamp_range(HEADER_LEN, usize::from(self.len()), data.len())
        };
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    /// Sets the source port (the checksum is not updated).
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port (the checksum is not updated).
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, len: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Recomputes and writes the checksum for a datagram carried from `src`
    /// to `dst` (over the length field's extent). A computed zero is sent as
    /// 0xffff, since zero means "no checksum".
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let s = checksum::sum(
            self.datagram(),
            checksum::pseudo_header_sum(src, dst, PROTO_UDP, self.len()),
        );
        let c = !checksum::fold(s);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// The payload (up to the length field), mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = clamp_range(
            HEADER_LEN,
            usize::from(self.len()),
            self.buffer.as_ref().len(),
        );
        &mut self.buffer.as_mut()[range]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

    /// DNS-ish query: 5353 -> 53, 5 payload bytes, plus 3 trailing bytes
    /// outside the length field.
    fn sample() -> Vec<u8> {
        vec![
            0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0x00, 0x00, 1, 2, 3, 4, 5, 0xee, 0xee, 0xee,
        ]
    }

    #[test]
    fn parse() {
        let buf = sample();
        let d = UdpDatagram::new_checked(&buf[..]).unwrap();
        assert_eq!(d.src_port(), 5353);
        assert_eq!(d.dst_port(), 53);
        assert_eq!(d.len(), 13);
        assert_eq!(d.checksum(), 0);
        assert_eq!(d.payload(), &[1, 2, 3, 4, 5]);
        assert_eq!(d.into_payload(), &[1, 2, 3, 4, 5]);
        // Zero checksum: "none", accepted.
        assert!(d.verify_checksum(SRC, DST));
    }

    #[test]
    fn checksum_roundtrip() {
        let mut buf = sample();
        let mut d = UdpDatagram::new_checked(&mut buf[..]).unwrap();
        d.fill_checksum(SRC, DST);
        assert_ne!(d.checksum(), 0);
        assert!(d.verify_checksum(SRC, DST));
        assert!(!d.verify_checksum(SRC, Ipv4Addr::new(198, 51, 100, 21)));
        let mut pseudo = vec![192, 0, 2, 10, 198, 51, 100, 20, 0, 17, 0, 13];
        pseudo.extend_from_slice(&d.as_bytes()[..13]);
        assert_eq!(checksum::checksum(&pseudo), 0);
        d.set_src_port(1);
        assert!(!d.verify_checksum(SRC, DST));
        d.fill_checksum(SRC, DST);
        assert!(d.verify_checksum(SRC, DST));
        // Trailing bytes beyond the length field do not matter.
        buf[14] = 0;
        assert!(UdpDatagram::new_checked(&buf[..])
            .unwrap()
            .verify_checksum(SRC, DST));
    }

    #[test]
    fn zero_sum_is_sent_as_ffff() {
        // Find a payload word making the checksum compute to 0, then check
        // fill_checksum writes 0xffff and that it verifies.
        let mut buf = vec![0u8, 1, 0, 2, 0, 10, 0, 0, 0, 0];
        let pseudo = checksum::pseudo_header_sum(SRC, DST, PROTO_UDP, 10);
        let partial = checksum::fold(checksum::sum(&buf, pseudo));
        // Word w such that partial + w ≡ 0xffff (mod 0xffff).
        let w = 0xffff - partial;
        buf[8..10].copy_from_slice(&w.to_be_bytes());
        let mut d = UdpDatagram::new_checked(&mut buf[..]).unwrap();
        d.fill_checksum(SRC, DST);
        assert_eq!(d.checksum(), 0xffff);
        assert!(d.verify_checksum(SRC, DST));
    }

    #[test]
    fn rejects() {
        let buf = sample();
        let check = |b: &[u8]| UdpDatagram::new_checked(b).map(|_| ());
        assert_eq!(check(&buf[..7]), Err(WireError::Truncated));
        assert_eq!(check(&buf[..12]), Err(WireError::PayloadTruncated));
        assert!(check(&buf[..13]).is_ok());
        let mut b = buf.clone();
        b[5] = 7;
        assert_eq!(check(&b), Err(WireError::BadLength));
        b[5] = 8;
        let d = UdpDatagram::new_checked(&b[..]).unwrap();
        assert!(d.payload().is_empty());
    }

    #[test]
    fn setters() {
        let mut buf = sample();
        let mut d = UdpDatagram::new_checked(&mut buf[..]).unwrap();
        d.set_src_port(1000);
        d.set_dst_port(2000);
        d.set_checksum(0x1234);
        assert_eq!(
            (d.src_port(), d.dst_port(), d.checksum()),
            (1000, 2000, 0x1234)
        );
        d.payload_mut()[4] = 9;
        assert_eq!(d.payload(), &[1, 2, 3, 4, 9]);
        d.set_len(0xffff); // nonsense after the check: ranges clamp
        assert_eq!(d.payload().len(), 8);
        let _ = d.verify_checksum(SRC, DST);
        d.fill_checksum(SRC, DST);
        d.set_len(2);
        assert!(d.payload().is_empty());
        assert!(d.payload_mut().is_empty());
        let _ = d.verify_checksum(SRC, DST);
    }
}
