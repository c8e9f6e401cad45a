//! The packet buffer the pipeline works on.
//!
//! Most rewrites are in place (DR changes MAC addresses; NAT changes
//! addresses, ports and checksums). Encapsulation (IPIP) must grow the frame
//! at the front, which an mbuf does in its headroom: [`PacketBuf`] is that
//! much of an mbuf, so the pipeline stays free of DPDK.
//!
//! Checksums that a rewrite must recompute in full (the tunnel's outer IPv4
//! header, the IPv4 header of an ICMP error the director builds) can be left
//! to the NIC: the pipeline asks [`PacketBuf::offload_checksums`] for the
//! ports whose device negotiated the offload ([`TxChecksums`], given to the
//! worker at start-up). An mbuf turns the request into TX offload flags; any
//! other buffer computes the checksums at once ([`fill_checksums`]), so the
//! bytes on the wire are the same either way.

use crate::wire::checksum::{fold, pseudo_header_sum};
use crate::wire::ipv4::{Ipv4Packet, PROTO_TCP, PROTO_UDP};
use crate::wire::tcp::TcpSegment;
use crate::wire::udp::UdpDatagram;

/// A set of checksums of an outgoing IPv4 frame: what a port's NIC computes
/// on transmit (its negotiated TX checksum offloads), or what a rewrite
/// asks it to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxChecksums(u8);

impl TxChecksums {
    pub const NONE: TxChecksums = TxChecksums(0);
    /// The IPv4 header checksum.
    pub const IPV4: TxChecksums = TxChecksums(1);
    /// The TCP checksum (over the IPv4 pseudo-header and the segment).
    pub const TCP: TxChecksums = TxChecksums(2);
    /// The UDP checksum (over the IPv4 pseudo-header and the datagram).
    pub const UDP: TxChecksums = TxChecksums(4);

    /// Whether every checksum of `other` is in `self`.
    #[inline]
    pub const fn contains(self, other: TxChecksums) -> bool {
        self.0 & other.0 == other.0
    }

    #[inline]
    pub const fn union(self, other: TxChecksums) -> TxChecksums {
        TxChecksums(self.0 | other.0)
    }

    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A frame that can be rewritten in place and grown at the front.
pub trait PacketBuf {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Grow the frame by `n` bytes at the front (new bytes unspecified).
    /// Returns false, changing nothing, when there is no room.
    fn prepend(&mut self, n: usize) -> bool;
    /// Remove `n` bytes from the front. Returns false when the frame is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Shorten the frame to `len` bytes (drop bytes at the end). Returns
    /// false, changing nothing, when the frame is shorter than `len`.
    fn truncate(&mut self, len: usize) -> bool;
    /// Have the checksums `what` of the IPv4 packet at `l2_len` (header of
    /// `l3_len` bytes, TCP or UDP after it) right when the frame leaves.
    /// The frame is otherwise final. The pipeline asks this only for
    /// checksums the egress port's NIC computes; an mbuf leaves them to the
    /// NIC, and this default computes them now ([`fill_checksums`]).
    #[inline]
    fn offload_checksums(&mut self, l2_len: usize, l3_len: usize, what: TxChecksums) {
        fill_checksums(self.data_mut(), l2_len, l3_len, what);
    }
}

/// The IPv4 packet at `l2` with a header of `l3` bytes and its L4 part
/// (up to the total length), or None when the frame is shorter.
fn l3_l4(frame: &mut [u8], l2: usize, l3: usize) -> Option<(&mut [u8], &mut [u8])> {
    let ip = frame.get_mut(l2..)?;
    if l3 < 20 || ip.len() < l3 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).clamp(l3, ip.len());
    let (hdr, rest) = ip[..total].split_at_mut(l3);
    Some((hdr, rest))
}

/// Compute the checksums `what` of the IPv4 packet at `l2_len` (header of
/// `l3_len` bytes) in software: what the NIC would write.
pub fn fill_checksums(frame: &mut [u8], l2_len: usize, l3_len: usize, what: TxChecksums) {
    let Some((hdr, l4)) = l3_l4(frame, l2_len, l3_len) else {
        return;
    };
    if what.contains(TxChecksums::IPV4) {
        Ipv4Packet::new_unchecked(&mut *hdr).fill_checksum();
    }
    let ip = Ipv4Packet::new_unchecked(&*hdr);
    let (src, dst) = (ip.src(), ip.dst());
    if what.contains(TxChecksums::TCP) && l4.len() >= 20 {
        TcpSegment::new_unchecked(l4).fill_checksum(src, dst);
    } else if what.contains(TxChecksums::UDP) && l4.len() >= 8 {
        UdpDatagram::new_unchecked(l4).fill_checksum(src, dst);
    }
}

/// Prepare the frame for a NIC that computes the checksums `what` on
/// transmit, as DPDK requires: the IPv4 header checksum field zeroed, and
/// the TCP/UDP checksum field holding the pseudo-header sum (folded, not
/// complemented: `rte_ipv4_phdr_cksum`), from which the NIC sums on over
/// the segment. For mbuf implementations of [`PacketBuf`].
pub fn prepare_for_nic(frame: &mut [u8], l2_len: usize, l3_len: usize, what: TxChecksums) {
    let Some((hdr, l4)) = l3_l4(frame, l2_len, l3_len) else {
        return;
    };
    if what.contains(TxChecksums::IPV4) {
        hdr[10..12].fill(0);
    }
    let (field, proto) = if what.contains(TxChecksums::TCP) {
        (16, PROTO_TCP)
    } else if what.contains(TxChecksums::UDP) {
        (6, PROTO_UDP)
    } else {
        return;
    };
    if l4.len() < field + 2 {
        return;
    }
    let ip = Ipv4Packet::new_unchecked(&*hdr);
    let phdr = fold(pseudo_header_sum(
        ip.src(),
        ip.dst(),
        proto,
        l4.len() as u16,
    ));
    l4[field..field + 2].copy_from_slice(&phdr.to_be_bytes());
}

/// A buffer borrowed: what a burst's iterator of `&mut` buffers hands to
/// `Worker::process_planned`.
impl<B: PacketBuf + ?Sized> PacketBuf for &mut B {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        (**self).data()
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        (**self).data_mut()
    }
    #[inline(always)]
    fn prepend(&mut self, n: usize) -> bool {
        (**self).prepend(n)
    }
    #[inline(always)]
    fn adj(&mut self, n: usize) -> bool {
        (**self).adj(n)
    }
    #[inline(always)]
    fn truncate(&mut self, len: usize) -> bool {
        (**self).truncate(len)
    }
    #[inline(always)]
    fn offload_checksums(&mut self, l2_len: usize, l3_len: usize, what: TxChecksums) {
        (**self).offload_checksums(l2_len, l3_len, what)
    }
}

/// A plain slice: rewrites in place only, cannot grow.
pub struct SliceBuf<'a>(pub &'a mut [u8]);

impl PacketBuf for SliceBuf<'_> {
    fn data(&self) -> &[u8] {
        self.0
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0
    }
    fn prepend(&mut self, _n: usize) -> bool {
        false
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.0.len() {
            return false;
        }
        let s = std::mem::take(&mut self.0);
        self.0 = &mut s[n..];
        true
    }
    fn truncate(&mut self, len: usize) -> bool {
        if len > self.0.len() {
            return false;
        }
        let s = std::mem::take(&mut self.0);
        self.0 = &mut s[..len];
        true
    }
}

/// A growable buffer for tests and tools.
impl PacketBuf for Vec<u8> {
    fn data(&self) -> &[u8] {
        self
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.splice(0..0, std::iter::repeat_n(0u8, n));
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.drain(..n);
        true
    }
    fn truncate(&mut self, len: usize) -> bool {
        if len > self.len() {
            return false;
        }
        Vec::truncate(self, len);
        true
    }
}

/// A buffer that behaves like an mbuf on a NIC with checksum offload: it
/// prepares the frame as DPDK requires and records the request; `transmit`
/// then does what the NIC would.
#[cfg(test)]
pub(crate) struct NicBuf {
    pub frame: Vec<u8>,
    /// (l2_len, l3_len, what) of every request.
    pub requests: Vec<(usize, usize, TxChecksums)>,
}

#[cfg(test)]
impl NicBuf {
    pub fn new(frame: Vec<u8>) -> NicBuf {
        NicBuf {
            frame,
            requests: Vec::new(),
        }
    }

    /// The frame as it leaves the NIC.
    pub fn transmit(mut self) -> Vec<u8> {
        for &(l2, l3, what) in &self.requests {
            tests::nic_transmit(&mut self.frame, l2, l3, what);
        }
        self.frame
    }
}

#[cfg(test)]
impl PacketBuf for NicBuf {
    fn data(&self) -> &[u8] {
        &self.frame
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.frame
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.frame.prepend(n)
    }
    fn adj(&mut self, n: usize) -> bool {
        self.frame.adj(n)
    }
    fn truncate(&mut self, len: usize) -> bool {
        PacketBuf::truncate(&mut self.frame, len)
    }
    fn offload_checksums(&mut self, l2_len: usize, l3_len: usize, what: TxChecksums) {
        prepare_for_nic(&mut self.frame, l2_len, l3_len, what);
        self.requests.push((l2_len, l3_len, what));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::checksum::{checksum, sum};
    use etherparse::PacketBuilder;

    /// What a NIC does with a frame prepared by [`prepare_for_nic`]: sums
    /// the IPv4 header (its field zeroed) and the L4 part (its field
    /// holding the pseudo-header sum) and writes the complements.
    pub(crate) fn nic_transmit(frame: &mut [u8], l2: usize, l3: usize, what: TxChecksums) {
        let (hdr, l4) = l3_l4(frame, l2, l3).unwrap();
        if what.contains(TxChecksums::IPV4) {
            let c = checksum(hdr);
            hdr[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let field = if what.contains(TxChecksums::TCP) {
            16
        } else if what.contains(TxChecksums::UDP) {
            6
        } else {
            return;
        };
        let mut c = !fold(sum(l4, 0));
        if field == 6 && c == 0 {
            c = 0xffff; // UDP: zero means none
        }
        l4[field..field + 2].copy_from_slice(&c.to_be_bytes());
    }

    fn frame(tcp: bool, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4([198, 18, 0, 1], [198, 19, 0, 9], 9);
        let mut f = Vec::new();
        if tcp {
            b.tcp(40000, 80, 1, 100).write(&mut f, payload).unwrap();
        } else {
            b.udp(40000, 53).write(&mut f, payload).unwrap();
        }
        f
    }

    /// Software and NIC agree byte for byte, whatever the fields held.
    #[test]
    fn nic_and_software_checksums_agree() {
        for tcp in [true, false] {
            for len in [0usize, 1, 7, 60, 333] {
                let payload: Vec<u8> = (0..len).map(|i| (i * 37 + 5) as u8).collect();
                let good = frame(tcp, &payload);
                let l4 = if tcp {
                    TxChecksums::TCP
                } else {
                    TxChecksums::UDP
                };
                for what in [TxChecksums::IPV4, l4, TxChecksums::IPV4.union(l4)] {
                    let mut bad = good.clone();
                    bad[14 + 10] ^= 0x5a; // IPv4 checksum field
                    let at = 14 + 20 + if tcp { 16 } else { 6 };
                    bad[at] ^= 0xa5; // L4 checksum field
                    let mut soft = bad.clone();
                    fill_checksums(&mut soft, 14, 20, what);
                    let mut nic = bad.clone();
                    prepare_for_nic(&mut nic, 14, 20, what);
                    nic_transmit(&mut nic, 14, 20, what);
                    assert_eq!(soft, nic, "tcp {tcp} len {len} {what:?}");
                    // What was asked is now right, the rest untouched.
                    let fixed_ip = what.contains(TxChecksums::IPV4);
                    assert_eq!(soft[14 + 10..14 + 12] == good[14 + 10..14 + 12], fixed_ip);
                    assert_eq!(soft[at..at + 2] == good[at..at + 2], what.contains(l4));
                }
            }
        }
    }

    #[test]
    fn short_frames_are_left_alone() {
        let mut f = frame(true, b"x");
        let orig = f.clone();
        let all = TxChecksums::IPV4.union(TxChecksums::TCP);
        fill_checksums(&mut f[..30], 14, 20, all);
        prepare_for_nic(&mut f[..30], 14, 20, all);
        fill_checksums(&mut f, 14, 8, all);
        assert_eq!(f, orig);
    }

    #[test]
    fn a_plain_buffer_computes_in_software() {
        let good = frame(false, b"hello");
        let mut v = good.clone();
        v[14 + 10] = 0;
        v[14 + 11] = 0;
        v.offload_checksums(14, 20, TxChecksums::IPV4);
        assert_eq!(v, good);
    }

    #[test]
    fn slice_cannot_grow_vec_can() {
        let mut a = [1u8, 2, 3];
        let mut s = SliceBuf(&mut a);
        assert!(!s.prepend(2));
        assert!(s.adj(1));
        assert_eq!(s.data(), &[2, 3]);
        assert!(!s.adj(5));
        let mut v = vec![1u8, 2];
        assert!(v.prepend(2));
        assert_eq!(v.len(), 4);
        v.data_mut()[0] = 9;
        assert!(v.adj(1));
        assert_eq!(v.data(), &[0, 1, 2]);
    }

    #[test]
    fn truncate_shrinks_only() {
        let mut a = [1u8, 2, 3, 4];
        let mut s = SliceBuf(&mut a);
        assert!(!s.truncate(5));
        assert!(s.truncate(2));
        assert_eq!(s.data(), &[1, 2]);
        assert!(s.truncate(2));
        assert!(s.truncate(0));
        assert!(s.data().is_empty());
        let mut v = vec![1u8, 2, 3];
        assert!(!PacketBuf::truncate(&mut v, 4));
        assert!(PacketBuf::truncate(&mut v, 1));
        assert_eq!(v, [1]);
    }
}
