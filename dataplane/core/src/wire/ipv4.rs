//! IPv4 packets (RFC 791).
//!
//! ```text
//!  0       4       8              16    19                       32
//! +-------+-------+---------------+------------------------------+
//! |version|  IHL  |   DSCP/ECN    |         total length         |
//! +-------+-------+---------------+-----+------------------------+
//! |        identification         |flags|    fragment offset     |
//! +---------------+---------------+-----+------------------------+
//! |      TTL      |   protocol    |        header checksum       |
//! +---------------+---------------+------------------------------+
//! |                        source address                        |
//! +--------------------------------------------------------------+
//! |                      destination address                     |
//! +--------------------------------------------------------------+
//! |                     options (IHL > 5) ...                    |
//! ```

use std::net::Ipv4Addr;

use super::bytes::{clamp_range, get_ipv4, get_u16, get_u32, set_u16};
use super::checksum;
use super::error::WireError;

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Largest IPv4 header (IHL = 15).
pub const MAX_HEADER_LEN: usize = 60;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of IP-in-IP encapsulation.
pub const PROTO_IPIP: u8 = 4;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// Don't-fragment flag, in the 16-bit flags/fragment-offset word.
pub const FLAG_DF: u16 = 0x4000;
/// More-fragments flag, in the 16-bit flags/fragment-offset word.
const FLAG_MF: u16 = 0x2000;
/// Fragment offset mask (8-byte units), in the flags/fragment-offset word.
const FRAG_OFFSET_MASK: u16 = 0x1fff;

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// A view of an IPv4 packet (the Ethernet payload, possibly followed by
/// Ethernet padding, which [`payload`](Ipv4Packet::payload) excludes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Length of an IPv4 header without options.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps `buffer` without validation.
    ///
    /// Fixed-offset accessors panic if the buffer is shorter than
    /// [`HEADER_LEN`] (20); range accessors (payload, options, checksum)
    /// never panic.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer`, validating the header. Bytes past the total length
    /// (Ethernet padding) are allowed. The checksum is not verified (see
    /// [`verify_checksum`](Self::verify_checksum)).
    ///
    /// # Errors
    /// In order of checking:
    /// - [`WireError::Truncated`]: buffer shorter than 20 bytes;
    /// - [`WireError::BadVersion`]: version is not 4;
    /// - [`WireError::BadHeaderLen`]: IHL < 5;
    /// - [`WireError::HeaderTruncated`]: header length (with options) larger
    ///   than the buffer;
    /// - [`WireError::BadTotalLen`]: total length smaller than the header
    ///   length;
    /// - [`WireError::PayloadTruncated`]: total length larger than the buffer.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Ipv4Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.version() != 4 {
            return Err(WireError::BadVersion);
        }
        let hl = p.header_len();
        if hl < HEADER_LEN {
            return Err(WireError::BadHeaderLen);
        }
        if hl > len {
            return Err(WireError::HeaderTruncated);
        }
        let tl = usize::from(p.total_len());
        if tl < hl {
            return Err(WireError::BadTotalLen);
        }
        if tl > len {
            return Err(WireError::PayloadTruncated);
        }
        Ok(p)
    }

    /// Unwraps the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole underlying buffer (including any bytes past total length).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version field (4 on a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4, so 20..=60 on a checked packet).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The DSCP/ECN byte (formerly TOS).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Differentiated services code point (upper 6 bits of the TOS byte).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.dscp_ecn() >> 2
    }

    /// Explicit congestion notification (lower 2 bits of the TOS byte).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.dscp_ecn() & 0x03
    }

    /// Total length (header + payload) in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    fn flags_frag(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLAGS_FRAG)
    }

    /// Don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// More-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset **in bytes** (the wire field, in 8-byte units,
    /// multiplied by 8; at most 65528).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) << 3
    }

    /// Whether this is a fragment (MF set or non-zero offset): only the first
    /// fragment carries the transport header, so the director cannot look up
    /// ports in most of them.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Whether the header carries options (IHL > 5).
    #[inline]
    pub fn has_options(&self) -> bool {
        self.header_len() > HEADER_LEN
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload ([`PROTO_TCP`], [`PROTO_UDP`], ...).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::DST)
    }

    /// Source address as a host-order `u32` (for hashing).
    #[inline]
    pub fn src_u32(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address as a host-order `u32` (for hashing).
    #[inline]
    pub fn dst_u32(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::DST)
    }

    /// The header bytes, options included (clamped to the buffer).
    #[inline]
    pub fn header(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamp_range(0, self.header_len(), data.len())]
    }

    /// The option bytes (empty without options).
    #[inline]
    pub fn options(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamp_range(HEADER_LEN, self.header_len(), data.len())]
    }

    /// Whether the options are well formed, as Linux's `ip_options_compile`
    /// requires: END and NOP are one byte; every other option has a length
    /// byte of at least 2 that keeps it inside the header. (A header
    /// without options is trivially well formed.)
    pub fn options_well_formed(&self) -> bool {
        let opts = self.options();
        let mut i = 0;
        while i < opts.len() {
            match opts[i] {
                0 => return true, // end of options list: the rest is padding
                1 => i += 1,      // no operation
                _ => {
                    let Some(&len) = opts.get(i + 1) else {
                        return false;
                    };
                    let len = len as usize;
                    if len < 2 || i + len > opts.len() {
                        return false;
                    }
                    i += len;
                }
            }
        }
        true
    }

    /// Whether the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.header(), 0)) == 0xffff
    }

    /// The payload: bytes from the header length up to the total length
    /// (not any Ethernet padding beyond it).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamp_range(self.header_len(), usize::from(self.total_len()), data.len())]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// Like [`payload`](Ipv4Packet::payload), with the buffer's lifetime.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let range = {
            let data = self.buffer.as_ref();
            clamp_range(self.header_len(), usize::from(self.total_len()), data.len())
        };
        &self.buffer.as_ref()[range]
    }
}

impl<'a> Ipv4Packet<&'a mut [u8]> {
    /// Like [`payload_mut`](Ipv4Packet::payload_mut), with the buffer's
    /// lifetime.
    #[inline]
    pub fn into_payload_mut(self) -> &'a mut [u8] {
        let range = clamp_range(
            self.header_len(),
            usize::from(self.total_len()),
            self.buffer.len(),
        );
        &mut self.buffer[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the header length, in bytes (rounded down to a multiple of 4;
    /// values above 60 are truncated to the 4-bit field).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP/ECN byte.
    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::TOTAL_LEN, v);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    #[inline]
    fn set_flags_frag(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::FLAGS_FRAG, v);
    }

    /// Sets or clears the don't-fragment flag.
    #[inline]
    pub fn set_dont_frag(&mut self, df: bool) {
        let w = self.flags_frag() & !FLAG_DF;
        self.set_flags_frag(if df { w | FLAG_DF } else { w });
    }

    /// Sets or clears the more-fragments flag.
    #[inline]
    pub fn set_more_frags(&mut self, mf: bool) {
        let w = self.flags_frag() & !FLAG_MF;
        self.set_flags_frag(if mf { w | FLAG_MF } else { w });
    }

    /// Sets the fragment offset, **in bytes** (divided by 8 on the wire; the
    /// low 3 bits are dropped).
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let w = self.flags_frag() & !FRAG_OFFSET_MASK;
        self.set_flags_frag(w | (bytes >> 3));
    }

    /// Sets the TTL (the checksum is not updated).
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, proto: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = proto;
    }

    /// Sets the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the source address (the checksum is not updated).
    #[inline]
    pub fn set_src(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&ip.octets());
    }

    /// Sets the destination address (the checksum is not updated).
    #[inline]
    pub fn set_dst(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&ip.octets());
    }

    /// Recomputes and writes the header checksum (over the header length,
    /// options included).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// The option bytes, mutably.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let range = clamp_range(HEADER_LEN, self.header_len(), self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[range]
    }

    /// The payload (header length up to total length), mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = clamp_range(
            self.header_len(),
            usize::from(self.total_len()),
            self.buffer.as_ref().len(),
        );
        &mut self.buffer.as_mut()[range]
    }
}

/// Writes a 20-byte IPv4 header without options at the start of `buf` and
/// returns its length ([`HEADER_LEN`]): version 4, IHL 5, DSCP/ECN 0, total
/// length `20 + payload_len` (saturating at 65535; keep `payload_len` ≤
/// 65515), the given identification, DF as given, MF clear, offset 0, and a
/// correct header checksum. The payload itself is not touched.
///
/// # Panics
/// If `buf.len() < 20`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn emit_header(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ttl: u8,
    payload_len: u16,
    ident: u16,
    df: bool,
) -> usize {
    let n = emit_header_unsummed(buf, src, dst, proto, ttl, payload_len, ident, df);
    Ipv4Packet::new_unchecked(&mut buf[..HEADER_LEN]).fill_checksum();
    n
}

/// [`emit_header`] with the checksum field left zero: for a header whose
/// checksum the NIC computes on transmit (TX checksum offload), or that
/// the caller changes further before summing it once.
///
/// # Panics
/// If `buf.len() < 20`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn emit_header_unsummed(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ttl: u8,
    payload_len: u16,
    ident: u16,
    df: bool,
) -> usize {
    assert!(
        buf.len() >= HEADER_LEN,
        "emit_header: buffer shorter than 20 bytes"
    );
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..HEADER_LEN]);
    p.buffer[field::VER_IHL] = 0x45;
    p.set_dscp_ecn(0);
    p.set_total_len((HEADER_LEN as u16).saturating_add(payload_len));
    p.set_ident(ident);
    p.set_flags_frag(if df { FLAG_DF } else { 0 });
    p.set_ttl(ttl);
    p.set_protocol(proto);
    p.set_src(src);
    p.set_dst(dst);
    p.set_checksum(0);
    HEADER_LEN
}

/// The network mask of an IPv4 prefix length (`-M`): 0 → 0.0.0.0,
/// 24 → 255.255.255.0, 32 or more → every bit.
#[inline]
pub fn prefix_mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        n if n >= 32 => u32::MAX,
        n => u32::MAX << (32 - n as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 192.168.0.1 -> 192.168.0.199, UDP, total length 0x1c (8 payload bytes),
    /// checksum filled in by hand; followed by 4 bytes of Ethernet padding.
    fn sample() -> Vec<u8> {
        let mut v = vec![
            0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let c = checksum::checksum(&v);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        v.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        v.extend_from_slice(&[0, 0, 0, 0]);
        v
    }

    #[test]
    fn parse() {
        let buf = sample();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert!(!p.has_options());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), PROTO_UDP);
        assert_eq!(p.src(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(p.src_u32(), 0xc0a8_0001);
        assert_eq!(p.dst_u32(), 0xc0a8_00c7);
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(p.options().is_empty());
        assert_eq!(p.into_payload().len(), 8);
    }

    #[test]
    fn known_checksum_vector() {
        // Wikipedia's example header: checksum b861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let mut buf = hdr.to_vec();
        buf.resize(0x73, 0);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.checksum(), 0xb861);
        assert!(p.verify_checksum());
        let mut buf2 = buf.clone();
        let mut q = Ipv4Packet::new_checked(&mut buf2[..]).unwrap();
        q.set_checksum(0xdead);
        assert!(!q.verify_checksum());
        q.fill_checksum();
        assert_eq!(q.checksum(), 0xb861);
    }

    #[test]
    fn rejects() {
        let buf = sample();
        let check = |b: &[u8]| Ipv4Packet::new_checked(b).map(|_| ());
        assert_eq!(check(&buf[..19]), Err(WireError::Truncated));
        let mut b = buf.clone();
        b[0] = 0x65;
        assert_eq!(check(&b), Err(WireError::BadVersion));
        b[0] = 0x44;
        assert_eq!(check(&b), Err(WireError::BadHeaderLen));
        b[0] = 0x4f; // 60-byte header, buffer has 32 bytes
        assert_eq!(check(&b), Err(WireError::HeaderTruncated));
        let mut b = buf.clone();
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(check(&b), Err(WireError::BadTotalLen));
        b[2..4].copy_from_slice(&33u16.to_be_bytes());
        assert_eq!(check(&b), Err(WireError::PayloadTruncated));
        b[2..4].copy_from_slice(&32u16.to_be_bytes());
        assert!(check(&b).is_ok());
        b[2..4].copy_from_slice(&20u16.to_be_bytes());
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn options_and_fragments() {
        let mut buf = [0u8; 40];
        buf[0] = 0x46; // IHL 6: 4 bytes of options
        buf[2..4].copy_from_slice(&30u16.to_be_bytes());
        buf[6..8].copy_from_slice(&(0x2000u16 | 185).to_be_bytes()); // MF, offset 1480
        buf[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // router alert
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert!(p.has_options());
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload().len(), 6);
        assert!(p.more_frags());
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(checksum::checksum(&p.as_bytes()[..24]), 0);

        p.set_more_frags(false);
        assert!(p.is_fragment()); // offset still non-zero
        p.set_frag_offset(0);
        assert!(!p.is_fragment());
        p.set_more_frags(true);
        assert!(p.is_fragment());
        p.set_more_frags(false);
        p.set_dont_frag(true);
        assert!(p.dont_frag() && !p.is_fragment());
        p.set_frag_offset(65528);
        assert_eq!(p.frag_offset(), 65528);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
    }

    #[test]
    fn setters() {
        let mut buf = sample();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_ttl(3);
        p.set_src(Ipv4Addr::new(10, 1, 2, 3));
        p.set_dst(Ipv4Addr::new(10, 4, 5, 6));
        p.set_ident(0xbeef);
        p.set_dscp_ecn(0xb8);
        p.set_protocol(PROTO_TCP);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.ttl(), 3);
        assert_eq!(p.src(), Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 4, 5, 6));
        assert_eq!(p.ident(), 0xbeef);
        assert_eq!(p.dscp(), 46);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.protocol(), PROTO_TCP);
        p.payload_mut()[0] = 0xaa;
        assert_eq!(p.payload()[0], 0xaa);

        // Nonsense lengths written after the check must not make range
        // accessors panic.
        let len = buf.len();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_total_len(0xffff);
        assert_eq!(p.payload().len(), len - 20);
        p.set_header_len(60);
        p.set_total_len(4);
        assert!(p.payload().is_empty());
        assert_eq!(p.header().len(), len);
        let _ = p.verify_checksum();
        p.fill_checksum();
        assert!(p.payload_mut().is_empty());
        assert_eq!(p.options_mut().len(), len - 20);
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]),
            Err(WireError::HeaderTruncated)
        );
    }

    #[test]
    fn emit() {
        let mut buf = [0xffu8; 48];
        let n = emit_header(
            &mut buf,
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(203, 0, 113, 9),
            PROTO_ICMP,
            64,
            28,
            7,
            true,
        );
        assert_eq!(n, 20);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.total_len(), 48);
        assert_eq!(p.ident(), 7);
        assert!(p.dont_frag() && !p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), PROTO_ICMP);
        assert_eq!(p.src(), Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(203, 0, 113, 9));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0xff; 28]);
    }
}
