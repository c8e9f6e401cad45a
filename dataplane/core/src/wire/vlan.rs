//! IEEE 802.1Q VLAN tags.
//!
//! ```text
//!  0                   6                  12     14     16        18
//! +-------------------+-------------------+------+------+---------+--------
//! |  destination MAC  |     source MAC    | TPID | TCI  |ethertype| payload
//! +-------------------+-------------------+------+------+---------+--------
//!                                          0x8100  PCP(3) DEI(1) VID(12)
//! ```
//!
//! [`VlanFrame`] reads a tagged frame in place; [`strip_tag`] and
//! [`push_tag`] remove and insert the 4-byte tag by moving the 12 MAC bytes,
//! so the rest of the frame never moves: the pipeline processes the
//! untagged frame that starts 4 bytes later, and grows a frame into its
//! headroom to tag it.

use super::bytes::{get_u16, set_u16};
use super::error::WireError;
use super::ethernet::ETHERTYPE_VLAN;

/// Length of the tag (TPID and TCI).
pub const TAG_LEN: usize = 4;
/// Length of a tagged Ethernet header: MACs, tag, inner ethertype.
pub const HEADER_LEN: usize = 18;
/// VID 0: a priority tag, no VLAN (the frame belongs to the port itself).
pub const VID_NONE: u16 = 0;

mod field {
    pub const TPID: usize = 12;
    pub const TCI: usize = 14;
    pub const INNER_ETHERTYPE: usize = 16;
}

/// A view of an 802.1Q-tagged Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanFrame<T> {
    /// Wraps `buffer`, checking that it holds a whole tagged header. The
    /// caller has seen TPID 0x8100 in the Ethernet header's ethertype.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the buffer is shorter than 18 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(VlanFrame { buffer })
    }

    /// The tag protocol identifier (0x8100 for 802.1Q).
    #[inline]
    pub fn tpid(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TPID)
    }

    /// The VLAN id (12 bits).
    #[inline]
    pub fn vid(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TCI) & 0x0fff
    }

    /// The priority code point (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.buffer.as_ref()[field::TCI] >> 5) & 0x07
    }

    /// The ethertype of what the tag carries.
    #[inline]
    pub fn inner_ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::INNER_ETHERTYPE)
    }
}

/// Remove the tag of the tagged frame in `frame` in place: the MAC
/// addresses move 4 bytes forward, and the untagged frame is
/// `frame[TAG_LEN..]`. False (nothing changed) if `frame` is shorter than
/// a tagged header.
#[inline]
pub fn strip_tag(frame: &mut [u8]) -> bool {
    if frame.len() < HEADER_LEN {
        return false;
    }
    frame.copy_within(0..12, TAG_LEN);
    true
}

/// Tag the untagged frame held in `buf[TAG_LEN..]` with VLAN `vid`
/// (priority 0) in place: the MAC addresses move 4 bytes back into
/// `buf[..TAG_LEN]`, and the tagged frame is all of `buf`. False (nothing
/// changed) if `buf` cannot hold a tagged header.
#[inline]
pub fn push_tag(buf: &mut [u8], vid: u16) -> bool {
    if buf.len() < HEADER_LEN {
        return false;
    }
    buf.copy_within(TAG_LEN..TAG_LEN + 12, 0);
    set_u16(buf, field::TPID, ETHERTYPE_VLAN);
    set_u16(buf, field::TCI, vid & 0x0fff);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EthernetFrame, ETHERTYPE_ARP, ETHERTYPE_IPV4};

    /// dst 02:..:01, src 02:..:02, then `rest`.
    fn frame(rest: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn reads_the_tag() {
        // PCP 5, DEI 1, VID 0xabc; inner ARP.
        let f = frame(&[0x81, 0x00, 0xba, 0xbc, 0x08, 0x06, 0xee]);
        let v = VlanFrame::new_checked(&f[..]).unwrap();
        assert_eq!(v.tpid(), ETHERTYPE_VLAN);
        assert_eq!(v.vid(), 0xabc);
        assert_eq!(v.pcp(), 5);
        assert_eq!(v.inner_ethertype(), ETHERTYPE_ARP);
        assert_eq!(
            VlanFrame::new_checked(&f[..17]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn strip_then_push_restores_the_frame() {
        let tagged = frame(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x00, 0x45, 0x00]);
        let mut f = tagged.clone();
        assert!(strip_tag(&mut f));
        let untagged = &f[TAG_LEN..];
        let eth = EthernetFrame::new_checked(untagged).unwrap();
        assert_eq!(eth.dst().0, [2, 0, 0, 0, 0, 1]);
        assert_eq!(eth.src().0, [2, 0, 0, 0, 0, 2]);
        assert_eq!(eth.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(&untagged[14..], &[0x45, 0x00]);
        assert!(push_tag(&mut f, 10));
        assert_eq!(f, tagged);
    }

    #[test]
    fn push_writes_priority_zero_and_twelve_bits() {
        let mut buf = vec![0xff; TAG_LEN];
        buf.extend(frame(&[0x08, 0x06, 1, 2]));
        assert!(push_tag(&mut buf, 0xf123));
        let v = VlanFrame::new_checked(&buf[..]).unwrap();
        assert_eq!((v.vid(), v.pcp()), (0x123, 0));
        assert_eq!(v.inner_ethertype(), ETHERTYPE_ARP);
        assert_eq!(&buf[..12], &frame(&[])[..]);
    }

    #[test]
    fn short_buffers_are_left_alone() {
        let mut f = vec![7u8; HEADER_LEN - 1];
        assert!(!strip_tag(&mut f));
        assert!(!push_tag(&mut f, 1));
        assert_eq!(f, vec![7u8; HEADER_LEN - 1]);
    }
}
