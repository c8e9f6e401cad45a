//! ARP (RFC 826) for Ethernet hardware and IPv4 protocol addresses.
//!
//! ```text
//!  0        2        4    5    6        8
//! +--------+--------+----+----+--------+
//! | htype  | ptype  |hlen|plen|  oper  |
//! +--------+--------+----+----+--------+-------+-----------------+-------+
//! | sender hardware address (6)  | sender IP (4) | target hw address (6) |
//! +------------------------------+---------------+-----------------------+
//! | target IP (4) |                                                   28
//! +---------------+
//! ```
//!
//! Only the Ethernet/IPv4 flavour is accepted by [`ArpPacket::new_checked`]:
//! that is the only one the director answers.

use std::net::Ipv4Addr;

use super::bytes::{get_ipv4, get_mac, get_u16, set_u16};
use super::error::WireError;
use super::ethernet::{self, EthernetFrame, ETHERTYPE_ARP, ETHERTYPE_IPV4};
use lb_api::mac::MacAddr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Length of the frame written by [`build_arp`]: a full Ethernet + ARP frame
/// padded to the Ethernet minimum (60 bytes, without FCS).
pub const ARP_FRAME_LEN: usize = ethernet::MIN_FRAME_LEN;

/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;
/// Hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

/// A view of an Ethernet/IPv4 ARP packet (the Ethernet payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const PACKET_LEN: usize = PACKET_LEN;

    /// Wraps `buffer` without validation.
    ///
    /// Accessors panic if the buffer is shorter than [`PACKET_LEN`] (28).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps `buffer`, checking it is an Ethernet/IPv4 ARP packet. Trailing
    /// bytes (Ethernet padding) are allowed.
    ///
    /// # Errors
    /// In order of checking: [`WireError::Truncated`] (shorter than 28 bytes),
    /// [`WireError::BadHardwareType`] (htype != 1),
    /// [`WireError::BadProtocolType`] (ptype != 0x0800),
    /// [`WireError::BadHardwareLen`] (hlen != 6),
    /// [`WireError::BadProtocolLen`] (plen != 4).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = ArpPacket { buffer };
        if p.buffer.as_ref().len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        if p.hardware_type() != HTYPE_ETHERNET {
            return Err(WireError::BadHardwareType);
        }
        if p.protocol_type() != ETHERTYPE_IPV4 {
            return Err(WireError::BadProtocolType);
        }
        if p.hardware_len() != 6 {
            return Err(WireError::BadHardwareLen);
        }
        if p.protocol_len() != 4 {
            return Err(WireError::BadProtocolLen);
        }
        Ok(p)
    }

    /// Unwraps the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 = Ethernet).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (0x0800 = IPv4).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PTYPE)
    }

    /// Hardware address length (6).
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length (4).
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation ([`ARP_REQUEST`] or [`ARP_REPLY`]; other values possible).
    #[inline]
    pub fn operation(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::OPER)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::SHA)
    }

    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::SPA)
    }

    /// Target hardware address (zero in most requests).
    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::THA)
    }

    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::TPA)
    }

    /// Whether this is a gratuitous ARP (sender IP == target IP).
    #[inline]
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip() == self.target_ip()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::HTYPE, v);
    }

    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::PTYPE, v);
    }

    /// Sets the hardware address length.
    #[inline]
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    /// Sets the protocol address length.
    #[inline]
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    /// Writes the fixed Ethernet/IPv4 prologue: htype 1, ptype 0x0800,
    /// hlen 6, plen 4.
    #[inline]
    pub fn set_ethernet_ipv4(&mut self) {
        self.set_hardware_type(HTYPE_ETHERNET);
        self.set_protocol_type(ETHERTYPE_IPV4);
        self.set_hardware_len(6);
        self.set_protocol_len(4);
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        set_u16(self.buffer.as_mut(), field::OPER, op);
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA..field::SHA + 6].copy_from_slice(&mac.0);
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA..field::SPA + 4].copy_from_slice(&ip.octets());
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA..field::THA + 6].copy_from_slice(&mac.0);
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA..field::TPA + 4].copy_from_slice(&ip.octets());
    }
}

/// Writes a complete Ethernet + ARP frame into `buf` and returns its length,
/// always [`ARP_FRAME_LEN`] (60): the 14-byte Ethernet header (`dst_mac`,
/// `src_mac`, EtherType ARP), the 28-byte ARP packet, and 18 zero bytes of
/// padding up to the Ethernet minimum. Bytes of `buf` past 60 are untouched.
///
/// For a reply to a request `req` received on interface MAC `me`:
/// `build_arp(buf, ARP_REPLY, me, req.sender_mac(), me, req.target_ip(),
/// req.sender_mac(), req.sender_ip())`.
///
/// # Panics
/// If `buf.len() < 60` (a caller bug: mbufs are much larger).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn build_arp(
    buf: &mut [u8],
    op: u16,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> usize {
    assert!(
        buf.len() >= ARP_FRAME_LEN,
        "build_arp: buffer shorter than 60 bytes"
    );
    let frame = &mut buf[..ARP_FRAME_LEN];

    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    eth.set_dst(dst_mac);
    eth.set_src(src_mac);
    eth.set_ethertype(ETHERTYPE_ARP);

    let mut arp = ArpPacket::new_unchecked(&mut frame[ethernet::HEADER_LEN..]);
    arp.set_ethernet_ipv4();
    arp.set_operation(op);
    arp.set_sender_mac(sender_mac);
    arp.set_sender_ip(sender_ip);
    arp.set_target_mac(target_mac);
    arp.set_target_ip(target_ip);

    frame[ethernet::HEADER_LEN + PACKET_LEN..].fill(0);
    ARP_FRAME_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    // A who-has 10.0.0.1 tell 10.0.0.2 request, from a capture.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // prologue, op
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // sha
        10, 0, 0, 2, // spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // tha
        10, 0, 0, 1, // tpa
    ];

    #[test]
    fn parse_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!(p.hardware_len(), 6);
        assert_eq!(p.protocol_len(), 4);
        assert_eq!(p.operation(), ARP_REQUEST);
        assert_eq!(p.sender_mac(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(p.sender_ip(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.target_mac(), MacAddr::ZERO);
        assert_eq!(p.target_ip(), Ipv4Addr::new(10, 0, 0, 1));
        assert!(!p.is_gratuitous());
    }

    #[test]
    fn padding_allowed() {
        let mut buf = [0u8; 46];
        buf[..28].copy_from_slice(&REQUEST);
        assert!(ArpPacket::new_checked(&buf[..]).is_ok());
    }

    #[test]
    fn rejects() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]),
            Err(WireError::Truncated)
        );
        let bad = |i: usize, v: u8| {
            let mut b = REQUEST;
            b[i] = v;
            ArpPacket::new_checked(b).map(|_| ())
        };
        assert_eq!(bad(1, 6), Err(WireError::BadHardwareType));
        assert_eq!(bad(0, 1), Err(WireError::BadHardwareType));
        assert_eq!(bad(2, 0x86), Err(WireError::BadProtocolType));
        assert_eq!(bad(3, 0xdd), Err(WireError::BadProtocolType));
        assert_eq!(bad(4, 8), Err(WireError::BadHardwareLen));
        assert_eq!(bad(5, 16), Err(WireError::BadProtocolLen));
    }

    #[test]
    fn setters_roundtrip() {
        let mut b = [0u8; 28];
        let mut p = ArpPacket::new_unchecked(&mut b[..]);
        p.set_ethernet_ipv4();
        p.set_operation(ARP_REPLY);
        p.set_sender_mac(MacAddr([1, 2, 3, 4, 5, 6]));
        p.set_sender_ip(Ipv4Addr::new(192, 0, 2, 1));
        p.set_target_mac(MacAddr([7, 8, 9, 10, 11, 12]));
        p.set_target_ip(Ipv4Addr::new(192, 0, 2, 1));
        let p = ArpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.operation(), ARP_REPLY);
        assert_eq!(p.sender_mac(), MacAddr([1, 2, 3, 4, 5, 6]));
        assert_eq!(p.sender_ip(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.target_mac(), MacAddr([7, 8, 9, 10, 11, 12]));
        assert_eq!(p.target_ip(), Ipv4Addr::new(192, 0, 2, 1));
        assert!(p.is_gratuitous());
    }

    #[test]
    fn build_reply_frame() {
        let me = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
        let req = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        let mut buf = [0xeeu8; 64];
        let n = build_arp(
            &mut buf,
            ARP_REPLY,
            me,
            req.sender_mac(),
            me,
            req.target_ip(),
            req.sender_mac(),
            req.sender_ip(),
        );
        assert_eq!(n, 60);
        assert_eq!(&buf[42..60], &[0u8; 18]);
        assert_eq!(&buf[60..], &[0xee; 4]);
        let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!(eth.dst(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(eth.src(), me);
        assert_eq!(eth.ethertype(), ETHERTYPE_ARP);
        let arp = ArpPacket::new_checked(eth.payload()).unwrap();
        assert_eq!(arp.operation(), ARP_REPLY);
        assert_eq!(arp.sender_mac(), me);
        assert_eq!(arp.sender_ip(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(arp.target_mac(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(arp.target_ip(), Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    #[should_panic]
    fn build_arp_short_buffer_panics() {
        let mut buf = [0u8; 59];
        build_arp(
            &mut buf,
            ARP_REQUEST,
            MacAddr::ZERO,
            MacAddr::BROADCAST,
            MacAddr::ZERO,
            Ipv4Addr::UNSPECIFIED,
            MacAddr::ZERO,
            Ipv4Addr::UNSPECIFIED,
        );
    }
}
