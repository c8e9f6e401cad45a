//! TCP segments (RFC 9293).
//!
//! ```text
//!  0               16              32
//! +---------------+---------------+
//! |  source port  |   dest port   |
//! +---------------+---------------+
//! |        sequence number        |
//! +-------------------------------+
//! |     acknowledgment number     |
//! +----+---+------+---------------+
//! |doff|rsv| flags|    window     |
//! +----+---+------+---------------+
//! |   checksum    |  urgent ptr   |
//! +---------------+---------------+
//! |   options (doff > 5) ...      |
//! ```
//!
//! The view must cover exactly the segment (the IPv4 payload): the checksum
//! and the payload extend to the end of the buffer.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::{BitAnd, BitOr, BitOrAssign};

use super::bytes::{clamp_range, get_u16, get_u32, set_u16, set_u32};
use super::checksum;
use super::error::WireError;
use super::ipv4::PROTO_TCP;

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// The eight TCP flag bits of byte 13 (the NS bit of byte 12 is not
/// included).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);
    /// No flag set.
    pub const EMPTY: TcpFlags = TcpFlags(0);

    /// Whether this combination is one a TCP stack sends, ignoring PSH, ECE
    /// and CWR (the table of netfilter's `tcp_valid_flags`): SYN, SYN+ACK,
    /// RST, RST+ACK, FIN+ACK, ACK, each optionally with URG where ACK or
    /// SYN is set. Everything else (SYN with RST or FIN, no flag, FIN
    /// without ACK, "Christmas tree" segments) is a probe or an attack.
    #[inline]
    pub const fn is_valid_combination(self) -> bool {
        // Bit i set: the combination i of FIN|SYN|RST|ACK|URG (bits 0, 1, 2,
        // 4, 5 of the flags byte) is valid.
        const fn bit(f: u8) -> u64 {
            1u64 << f
        }
        const VALID: u64 = bit(0x02) // SYN
            | bit(0x02 | 0x20) // SYN URG
            | bit(0x02 | 0x10) // SYN ACK
            | bit(0x04) // RST
            | bit(0x04 | 0x10) // RST ACK
            | bit(0x01 | 0x10) // FIN ACK
            | bit(0x01 | 0x10 | 0x20) // FIN ACK URG
            | bit(0x10) // ACK
            | bit(0x10 | 0x20); // ACK URG
        (VALID >> (self.0 & 0x37)) & 1 != 0
    }

    /// The raw bits.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// FIN set.
    #[inline]
    pub const fn fin(self) -> bool {
        self.0 & Self::FIN.0 != 0
    }

    /// SYN set.
    #[inline]
    pub const fn syn(self) -> bool {
        self.0 & Self::SYN.0 != 0
    }

    /// RST set.
    #[inline]
    pub const fn rst(self) -> bool {
        self.0 & Self::RST.0 != 0
    }

    /// PSH set.
    #[inline]
    pub const fn psh(self) -> bool {
        self.0 & Self::PSH.0 != 0
    }

    /// ACK set.
    #[inline]
    pub const fn ack(self) -> bool {
        self.0 & Self::ACK.0 != 0
    }

    /// URG set.
    #[inline]
    pub const fn urg(self) -> bool {
        self.0 & Self::URG.0 != 0
    }

    /// ECE set.
    #[inline]
    pub const fn ece(self) -> bool {
        self.0 & Self::ECE.0 != 0
    }

    /// CWR set.
    #[inline]
    pub const fn cwr(self) -> bool {
        self.0 & Self::CWR.0 != 0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

/// Formats as tcpdump does: `S`, `S.`, `F.`, `R`, `P.`, ... (`.` is ACK,
/// `U` URG, `E` ECE, `W` CWR); `none` when empty.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let names = [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
            (Self::ACK, '.'),
        ];
        for (flag, c) in names {
            if self.contains(flag) {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    /// Length of a TCP header without options.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps `buffer` without validation.
    ///
    /// Fixed-offset accessors panic if the buffer is shorter than
    /// [`HEADER_LEN`] (20); range accessors never panic.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpSegment { buffer }
    }

    /// Wraps `buffer` (exactly the segment), validating the header. The
    /// checksum is not verified.
    ///
    /// # Errors
    /// In order of checking: [`WireError::Truncated`] (shorter than 20
    /// bytes), [`WireError::BadDataOffset`] (data offset < 5),
    /// [`WireError::HeaderTruncated`] (header with options larger than the
    /// buffer).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let s = TcpSegment { buffer };
        let len = s.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = s.header_len();
        if hl < HEADER_LEN {
            return Err(WireError::BadDataOffset);
        }
        if hl > len {
            return Err(WireError::HeaderTruncated);
        }
        Ok(s)
    }

    /// Unwraps the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole segment.
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

    /// Sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset × 4, 20..=60 on a checked segment).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flag bits.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Receive window (unscaled).
    #[inline]
    pub fn window(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WINDOW)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The option bytes (empty without options).
    #[inline]
    pub fn options(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamp_range(HEADER_LEN, self.header_len(), data.len())]
    }

    /// The payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamp_range(self.header_len(), data.len(), data.len())]
    }

    /// Whether the checksum is correct for a segment carried from `src` to
    /// `dst` (pseudo-header with the buffer length as TCP length).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let data = self.buffer.as_ref();
        let s = checksum::sum(
            data,
            checksum::pseudo_header_sum(src, dst, PROTO_TCP, data.len() as u16),
        );
        checksum::fold(s) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpSegment<&'a T> {
    /// Like [`payload`](TcpSegment::payload), with the buffer's lifetime.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let range = {
            let data = self.buffer.as_ref();
            clamp_range(self.header_len(), data.len(), data.len())
        };
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::SEQ, v);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::ACK, v);
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4;
    /// truncated to the 4-bit field). The reserved/NS bits are kept.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::DATA_OFF];
        *b = (*b & 0x0f) | ((((len / 4) as u8) & 0x0f) << 4);
    }

    /// Sets the flag bits.
    #[inline]
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window.
    #[inline]
    pub fn set_window(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::WINDOW, v);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::URGENT, v);
    }

    /// Recomputes and writes the checksum for a segment carried from `src` to
    /// `dst`, over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let s = checksum::sum(
            data,
            checksum::pseudo_header_sum(src, dst, PROTO_TCP, data.len() as u16),
        );
        self.set_checksum(!checksum::fold(s));
    }

    /// The option bytes, mutably.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let range = clamp_range(HEADER_LEN, self.header_len(), self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[range]
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.buffer.as_ref().len();
        let range = clamp_range(self.header_len(), len, len);
        &mut self.buffer.as_mut()[range]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// SYN with an MSS option (data offset 6) and 3 payload bytes.
    fn sample() -> Vec<u8> {
        vec![
            0x30, 0x39, 0x00, 0x50, // 12345 -> 80
            0x01, 0x02, 0x03, 0x04, // seq
            0xa0, 0xb0, 0xc0, 0xd0, // ack
            0x60, 0x12, 0xff, 0xff, // doff 6, SYN|ACK, window
            0x00, 0x00, 0x00, 0x07, // checksum (unset), urgent
            0x02, 0x04, 0x05, 0xb4, // MSS 1460
            b'a', b'b', b'c',
        ]
    }

    #[test]
    fn parse() {
        let buf = sample();
        let s = TcpSegment::new_checked(&buf[..]).unwrap();
        assert_eq!(s.src_port(), 12345);
        assert_eq!(s.dst_port(), 80);
        assert_eq!(s.seq(), 0x0102_0304);
        assert_eq!(s.ack(), 0xa0b0_c0d0);
        assert_eq!(s.header_len(), 24);
        let f = s.flags();
        assert!(f.syn() && f.ack());
        assert!(!f.fin() && !f.rst() && !f.psh() && !f.urg() && !f.ece() && !f.cwr());
        assert_eq!(f, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(s.window(), 0xffff);
        assert_eq!(s.checksum(), 0);
        assert_eq!(s.urgent(), 7);
        assert_eq!(s.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert_eq!(s.payload(), b"abc");
        assert_eq!(s.into_payload(), b"abc");
    }

    #[test]
    fn checksum_roundtrip() {
        let mut buf = sample();
        let mut s = TcpSegment::new_checked(&mut buf[..]).unwrap();
        assert!(!s.verify_checksum(SRC, DST));
        s.fill_checksum(SRC, DST);
        assert!(s.verify_checksum(SRC, DST));
        assert!(!s.verify_checksum(SRC, Ipv4Addr::new(10, 0, 0, 3)));
        // Independent computation: pseudo-header + segment as bytes.
        let mut pseudo = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 27];
        pseudo.extend_from_slice(s.as_bytes());
        assert_eq!(checksum::checksum(&pseudo), 0);
        // Changing a port invalidates it, refilling repairs it.
        s.set_dst_port(8080);
        assert!(!s.verify_checksum(SRC, DST));
        s.fill_checksum(SRC, DST);
        assert!(s.verify_checksum(SRC, DST));
    }

    #[test]
    fn rejects() {
        let buf = sample();
        let check = |b: &[u8]| TcpSegment::new_checked(b).map(|_| ());
        assert_eq!(check(&buf[..19]), Err(WireError::Truncated));
        assert_eq!(check(&buf[..23]), Err(WireError::HeaderTruncated));
        assert!(check(&buf[..24]).is_ok());
        let mut b = buf.clone();
        b[12] = 0x40;
        assert_eq!(check(&b), Err(WireError::BadDataOffset));
        b[12] = 0x00;
        assert_eq!(check(&b), Err(WireError::BadDataOffset));
        b[12] = 0xf0;
        assert_eq!(check(&b), Err(WireError::HeaderTruncated));
    }

    #[test]
    fn setters() {
        let mut buf = sample();
        let mut s = TcpSegment::new_checked(&mut buf[..]).unwrap();
        s.set_src_port(1);
        s.set_dst_port(2);
        s.set_seq(3);
        s.set_ack(4);
        s.set_flags(TcpFlags::RST | TcpFlags::ACK);
        s.set_window(5);
        s.set_urgent(6);
        s.set_header_len(20);
        assert_eq!(s.src_port(), 1);
        assert_eq!(s.dst_port(), 2);
        assert_eq!(s.seq(), 3);
        assert_eq!(s.ack(), 4);
        assert!(s.flags().rst() && s.flags().ack() && !s.flags().syn());
        assert_eq!(s.window(), 5);
        assert_eq!(s.urgent(), 6);
        assert_eq!(s.header_len(), 20);
        assert!(s.options().is_empty());
        assert_eq!(s.payload().len(), 7);
        s.payload_mut()[0] = 0;
        s.set_header_len(60); // beyond the buffer: ranges clamp
        assert!(s.payload().is_empty());
        assert_eq!(s.options().len(), 7);
        assert_eq!(s.options_mut().len(), 7);
        let _ = s.verify_checksum(SRC, DST);
        s.fill_checksum(SRC, DST);
    }

    #[test]
    fn flags_display() {
        assert_eq!((TcpFlags::SYN | TcpFlags::ACK).to_string(), "S.");
        assert_eq!(TcpFlags::SYN.to_string(), "S");
        assert_eq!((TcpFlags::FIN | TcpFlags::ACK).to_string(), "F.");
        assert_eq!(TcpFlags::EMPTY.to_string(), "none");
        assert_eq!(format!("{:?}", TcpFlags::RST), "TcpFlags(R)");
        let mut f = TcpFlags::PSH;
        f |= TcpFlags::ACK;
        assert!(f.contains(TcpFlags::ACK) && f.intersects(TcpFlags::ACK | TcpFlags::FIN));
        assert_eq!((f & TcpFlags::ACK).bits(), 0x10);
    }
}
