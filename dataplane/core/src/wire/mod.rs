//! Zero-copy typed views over packet bytes.
//!
//! Every protocol the director touches gets a thin wrapper around a byte
//! buffer (`T: AsRef<[u8]>`, and `T: AsMut<[u8]>` for the setters), in the
//! style of smoltcp's `wire` module:
//!
//! | view                 | layer                          |
//! |----------------------|--------------------------------|
//! | [`EthernetFrame`]    | Ethernet II                    |
//! | [`ArpPacket`]        | ARP for Ethernet / IPv4        |
//! | [`Ipv4Packet`]       | IPv4                           |
//! | [`TcpSegment`]       | TCP                            |
//! | [`UdpDatagram`]      | UDP                            |
//! | [`Icmpv4Packet`]     | ICMPv4                         |
//!
//! and [`checksum`] holds the Internet checksum (RFC 1071) and its incremental
//! update (RFC 1624).
//!
//! # Contract
//!
//! * Views never copy and never allocate; accessors read the bytes in network
//!   byte order each time they are called.
//! * `new_checked` validates everything the accessors rely on, and reports the
//!   first problem as a [`WireError`], whose variants are meant to be used
//!   directly as drop-reason counters ([`WireError::as_str`]).
//! * On a view that passed `new_checked`, **no accessor panics**, whatever the
//!   bytes. Accessors that compute a range from header fields (payloads,
//!   options, checksums) additionally clamp it to the buffer, so they stay
//!   panic-free even after a setter has written a nonsensical length.
//! * `new_unchecked` skips validation; fixed-offset accessors on such a view
//!   panic if the buffer is shorter than the fixed header.
//! * Views over a transport header (`TcpSegment`, `UdpDatagram`,
//!   `Icmpv4Packet`) must be given exactly the IP payload
//!   ([`Ipv4Packet::payload`]), not the rest of the Ethernet frame, because
//!   the checksums cover "everything in the buffer" (TCP, ICMP).
//!
//! # Example
//!
//! ```
//! use lbcore::wire::{EthernetFrame, Ipv4Packet, TcpSegment, ETHERTYPE_IPV4, PROTO_TCP};
//!
//! fn dst_port(frame: &[u8]) -> Option<u16> {
//!     let eth = EthernetFrame::new_checked(frame).ok()?;
//!     if eth.ethertype() != ETHERTYPE_IPV4 {
//!         return None;
//!     }
//!     let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
//!     if ip.protocol() != PROTO_TCP || ip.is_fragment() {
//!         return None;
//!     }
//!     let tcp = TcpSegment::new_checked(ip.payload()).ok()?;
//!     Some(tcp.dst_port())
//! }
//! # assert_eq!(dst_port(&[0u8; 10]), None);
//! ```

use std::fmt;
use std::str::FromStr;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod tcp;
pub mod udp;
pub mod vrrp;

#[cfg(test)]
mod tests;

pub use arp::{build_arp, ArpPacket, ARP_FRAME_LEN, ARP_REPLY, ARP_REQUEST};
pub use ethernet::{EthernetFrame, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_VLAN, MIN_FRAME_LEN};
pub use icmp::{
    Icmpv4Packet, ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED,
};
pub use ipv4::{emit_header, Ipv4Packet, PROTO_ICMP, PROTO_IPIP, PROTO_TCP, PROTO_UDP};
pub use tcp::{TcpFlags, TcpSegment};
pub use udp::UdpDatagram;

/// Why a buffer was rejected by a view's `new_checked`.
///
/// The variants are precise enough to serve as drop-reason counters; see
/// [`WireError::as_str`] and [`WireError::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the protocol's fixed header.
    #[error("buffer shorter than the fixed header")]
    Truncated,
    /// The header's own length field (IPv4 IHL, TCP data offset) points past
    /// the end of the buffer.
    #[error("header length exceeds the buffer")]
    HeaderTruncated,
    /// A length field covering the payload (IPv4 total length, UDP length)
    /// claims more bytes than the buffer holds.
    #[error("length field exceeds the buffer")]
    PayloadTruncated,
    /// IPv4: the version nibble is not 4.
    #[error("IP version is not 4")]
    BadVersion,
    /// IPv4: IHL < 5.
    #[error("IPv4 header length below 20 bytes")]
    BadHeaderLen,
    /// IPv4: total length smaller than the header length.
    #[error("IPv4 total length smaller than the header")]
    BadTotalLen,
    /// TCP: data offset < 5.
    #[error("TCP data offset below 20 bytes")]
    BadDataOffset,
    /// UDP: length field < 8.
    #[error("UDP length below 8 bytes")]
    BadLength,
    /// ARP: hardware type is not Ethernet (1).
    #[error("ARP hardware type is not Ethernet")]
    BadHardwareType,
    /// ARP: protocol type is not IPv4 (0x0800).
    #[error("ARP protocol type is not IPv4")]
    BadProtocolType,
    /// ARP: hardware address length is not 6.
    #[error("ARP hardware address length is not 6")]
    BadHardwareLen,
    /// ARP: protocol address length is not 4.
    #[error("ARP protocol address length is not 4")]
    BadProtocolLen,
}

impl WireError {
    /// Every variant, in declaration order (for sizing counter arrays;
    /// `ALL[e.index()] == e`).
    pub const ALL: [WireError; 12] = [
        WireError::Truncated,
        WireError::HeaderTruncated,
        WireError::PayloadTruncated,
        WireError::BadVersion,
        WireError::BadHeaderLen,
        WireError::BadTotalLen,
        WireError::BadDataOffset,
        WireError::BadLength,
        WireError::BadHardwareType,
        WireError::BadProtocolType,
        WireError::BadHardwareLen,
        WireError::BadProtocolLen,
    ];

    /// A stable snake_case name, suitable as a counter / metric label.
    #[inline]
    pub const fn as_str(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::HeaderTruncated => "header_truncated",
            WireError::PayloadTruncated => "payload_truncated",
            WireError::BadVersion => "bad_version",
            WireError::BadHeaderLen => "bad_header_len",
            WireError::BadTotalLen => "bad_total_len",
            WireError::BadDataOffset => "bad_data_offset",
            WireError::BadLength => "bad_length",
            WireError::BadHardwareType => "bad_hardware_type",
            WireError::BadProtocolType => "bad_protocol_type",
            WireError::BadHardwareLen => "bad_hardware_len",
            WireError::BadProtocolLen => "bad_protocol_len",
        }
    }

    /// Position of the variant in [`WireError::ALL`] (a dense index for
    /// counter arrays).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

// ---- byte helpers shared by the views (callers guarantee the bounds) ----

#[inline(always)]
fn get_u16(data: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([data[off], data[off + 1]])
}

#[inline(always)]
fn get_u32(data: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
}

#[inline(always)]
fn set_u16(data: &mut [u8], off: usize, v: u16) {
    data[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
fn set_u32(data: &mut [u8], off: usize, v: u32) {
    data[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
fn get_mac(data: &[u8], off: usize) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&data[off..off + 6]);
    MacAddr(m)
}

#[inline(always)]
fn get_ipv4(data: &[u8], off: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(get_u32(data, off))
}

/// `start..end` clamped to `0..len` (and `start <= end`), so slicing with it
/// never panics.
#[inline(always)]
fn clamp_range(start: usize, end: usize, len: usize) -> std::ops::Range<usize> {
    let end = end.min(len);
    start.min(end)..end
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

/// The MAC address at `data[at..at + 6]` as [`MacAddr::to_u64`] packs it,
/// read with one 8-byte load (`data` must hold 8 bytes from `at`).
#[inline(always)]
pub fn mac_at(data: &[u8], at: usize) -> u64 {
    let w: [u8; 8] = data[at..at + 8].try_into().expect("8 bytes");
    u64::from_le_bytes(w) & 0xffff_ffff_ffff
}

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00`.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The six octets as the low 48 bits of a little-endian `u64`: what
    /// [`mac_at`] reads from a frame, for comparisons in one instruction.
    #[inline(always)]
    pub const fn to_u64(&self) -> u64 {
        let b = self.0;
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0])
    }

    /// Whether this is the broadcast address.
    #[inline]
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// Whether the group bit (least significant bit of the first octet) is
    /// set; true for broadcast too.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (non-group) address.
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether no station can send from this address: a group (multicast
    /// or broadcast) or all zeros. Two word tests, for the per-frame check.
    #[inline]
    pub const fn is_group_or_zero(&self) -> bool {
        let b = self.0;
        let head = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let tail = u16::from_ne_bytes([b[4], b[5]]) as u32;
        b[0] & 1 != 0 || (head | tail) == 0
    }

    /// Whether this is all zeros.
    #[inline]
    pub const fn is_zero(&self) -> bool {
        matches!(self.0, [0, 0, 0, 0, 0, 0])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts
                .next()
                .ok_or_else(|| format!("`{s}` is not a MAC address"))?;
            *b = u8::from_str_radix(p, 16).map_err(|_| format!("`{s}` is not a MAC address"))?;
        }
        if parts.next().is_some() {
            return Err(format!("`{s}` is not a MAC address"));
        }
        Ok(MacAddr(out))
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
