//! Synthetic TCP frames (client→VIP, and for NAT the real servers'
//! replies), built by hand once before timing.
//!
//! Every frame is Ethernet + IPv4 (no options) + TCP (no options, no
//! payload), padded to 60 bytes: the minimum Ethernet frame without FCS, as
//! a NIC hands it over. The IPv4 header checksum is valid (the pipeline
//! checks it); the TCP checksum is valid too, though DR never checks it.

use std::net::Ipv4Addr;

/// Bytes on the wire (without FCS).
pub const FRAME_LEN: usize = 60;

pub const DIR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The director's port address (the port is 10.0.0.2/16).
pub const DIR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
pub const VPORT: u16 = 80;

pub const TCP_SYN: u8 = 0x02;
/// Offset of the TCP flags byte in a frame from [`build_tcp`].
pub const TCP_FLAGS_AT: usize = 14 + 20 + 13;
pub const TCP_ACK: u8 = 0x10;
/// Offset of the IPv4 destination address in a frame.
pub const IP_DST_AT: usize = 14 + 16;

/// One frame buffer: a cache line of its own, as an mbuf's data would be.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct FrameBuf(pub [u8; 64]);

impl FrameBuf {
    pub const ZERO: FrameBuf = FrameBuf([0; 64]);

    /// The frame as the NIC would hand it over (60 bytes).
    #[inline]
    pub fn frame(&self) -> &[u8] {
        &self.0[..FRAME_LEN]
    }

    /// [`frame`](Self::frame), to be rewritten in place.
    #[inline]
    pub fn frame_mut(&mut self) -> &mut [u8] {
        &mut self.0[..FRAME_LEN]
    }

    /// Put back the MAC addresses a client sends with (the DR rewrite
    /// changed them), so the buffer can be processed again.
    #[inline]
    pub fn restore_macs(&mut self) {
        self.0[0..6].copy_from_slice(&DIR_MAC);
        self.0[6..12].copy_from_slice(&CLIENT_MAC);
    }
}

/// The client address and port of flow number `i` (distinct for every
/// `i < 2^32`): 60 000 ports per address from 100.64.0.0 upwards, so no
/// client address is one the pipeline refuses as a source.
#[inline]
pub fn client_of(i: u64) -> (u32, u16) {
    let ip = u32::from(Ipv4Addr::new(100, 64, 0, 0)) + (i / 60_000) as u32;
    let port = 1024 + (i % 60_000) as u16;
    (ip, port)
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        acc += w as u32;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// One TCP segment without options or payload, as [`build_segment`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    pub flags: u8,
}

impl Segment {
    /// A client's segment to the VIP's port, as the director receives it.
    pub fn to_vip(src: u32, sport: u16, flags: u8) -> Segment {
        Segment {
            dst_mac: DIR_MAC,
            src_mac: CLIENT_MAC,
            src,
            dst: u32::from(VIP),
            sport,
            dport: VPORT,
            flags,
        }
    }
}

/// Write a client→VIP:80 TCP segment with `flags` from `src:sport` into `buf`.
pub fn build_tcp(buf: &mut FrameBuf, src: u32, sport: u16, flags: u8) {
    build_segment(buf, &Segment::to_vip(src, sport, flags));
}

/// Write `s` into `buf`: Ethernet, IPv4 (TTL 64, DF, valid checksum), TCP
/// (valid checksum), padded with zeros to [`FRAME_LEN`].
pub fn build_segment(buf: &mut FrameBuf, s: &Segment) {
    let b = &mut buf.0;
    *b = [0; 64];
    b[0..6].copy_from_slice(&s.dst_mac);
    b[6..12].copy_from_slice(&s.src_mac);
    b[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    // IPv4 header.
    let ip = &mut b[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes()); // total length
    ip[4..6].copy_from_slice(&(s.sport ^ 0x5a5a).to_be_bytes()); // id
    ip[6] = 0x40; // DF
    ip[8] = 64; // TTL
    ip[9] = 6; // TCP
    ip[12..16].copy_from_slice(&s.src.to_be_bytes());
    ip[16..20].copy_from_slice(&s.dst.to_be_bytes());
    let c = fold(sum16(ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    // TCP header.
    let tcp = &mut b[34..54];
    tcp[0..2].copy_from_slice(&s.sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&s.dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes()); // seq
    if s.flags & TCP_ACK != 0 {
        tcp[8..12].copy_from_slice(&0x2000_0001u32.to_be_bytes());
    }
    tcp[12] = 5 << 4;
    tcp[13] = s.flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&s.src.to_be_bytes());
    pseudo[4..8].copy_from_slice(&s.dst.to_be_bytes());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
    let c = fold(sum16(tcp, sum16(&pseudo, 0)));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

/// A contiguous, cache-line aligned array of `n` zeroed frame buffers.
pub fn alloc(n: usize) -> Vec<FrameBuf> {
    vec![FrameBuf::ZERO; n]
}

/// The Ethernet header of every client frame (director's MAC, client's MAC,
/// IPv4).
pub fn client_eth_header() -> [u8; 14] {
    let mut h = [0u8; 14];
    h[0..6].copy_from_slice(&DIR_MAC);
    h[6..12].copy_from_slice(&CLIENT_MAC);
    h[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    h
}
