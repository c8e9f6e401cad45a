//! Ethernet II frames.
//!
//! ```text
//!  0                   6                  12        14
//! +-------------------+-------------------+---------+---------
//! |  destination MAC  |     source MAC    |ethertype| payload
//! +-------------------+-------------------+---------+---------
//! ```
//!
//! The payload is everything after the header, including any padding the
//! sender added to reach the 60-byte minimum; the IPv4 view trims it.

use super::bytes::{get_mac, get_u16, set_u16};
use super::error::WireError;
use lb_api::mac::MacAddr;

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Minimum Ethernet frame length without the FCS; shorter frames must be
/// zero-padded before transmission.
pub const MIN_FRAME_LEN: usize = 60;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType (TPID) of an IEEE 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of the Ethernet II header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps `buffer` without validation.
    ///
    /// Accessors panic if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer`, checking that it holds a full header.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the buffer is shorter than 14 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(EthernetFrame { buffer })
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

    /// Destination MAC address.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::DST.start)
    }

    /// Source MAC address.
    #[inline]
    pub fn src(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::SRC.start)
    }

    /// EtherType (or the VLAN TPID, [`ETHERTYPE_VLAN`], for tagged frames).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Everything after the 14-byte header (including any trailing padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// Like [`payload`](EthernetFrame::payload), with the buffer's lifetime.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<'a> EthernetFrame<&'a mut [u8]> {
    /// Like [`payload_mut`](EthernetFrame::payload_mut), with the buffer's
    /// lifetime.
    #[inline]
    pub fn into_payload_mut(self) -> &'a mut [u8] {
        &mut self.buffer[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype);
    }

    /// Everything after the 14-byte header, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// The whole underlying buffer, mutably.
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 18] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, // dst
        0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, // src
        0x08, 0x00, // ethertype
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    #[test]
    fn parse() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), MacAddr([1, 2, 3, 4, 5, 6]));
        assert_eq!(f.src(), MacAddr([0xa, 0xb, 0xc, 0xd, 0xe, 0xf]));
        assert_eq!(f.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(f.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(f.into_payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(EthernetFrame::<&[u8]>::HEADER_LEN, 14);
    }

    #[test]
    fn header_only_and_short() {
        let f = EthernetFrame::new_checked(&FRAME[..14]).unwrap();
        assert!(f.payload().is_empty());
        assert_eq!(
            EthernetFrame::new_checked(&FRAME[..13]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            EthernetFrame::new_checked(&[][..]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn set_fields() {
        let mut buf = FRAME;
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst(MacAddr::BROADCAST);
        f.set_src(MacAddr([0x02, 0, 0, 0, 0, 0x42]));
        f.set_ethertype(ETHERTYPE_ARP);
        f.payload_mut()[0] = 0x11;
        assert!(f.dst().is_broadcast());
        assert_eq!(f.src(), MacAddr([0x02, 0, 0, 0, 0, 0x42]));
        assert_eq!(f.ethertype(), 0x0806);
        let p = f.into_payload_mut();
        p[1] = 0x22;
        assert_eq!(&buf[12..16], &[0x08, 0x06, 0x11, 0x22]);
        assert_eq!(&buf[..6], &[0xff; 6]);
    }

    #[test]
    fn mac_predicates() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::ZERO.is_multicast());
        assert!(MacAddr::ZERO.is_zero());
        assert!(MacAddr::ZERO.is_unicast());
        assert!(MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]).is_broadcast());
        assert!(!MacAddr([0x02, 0, 0, 0, 0, 1]).is_multicast());
    }
}
