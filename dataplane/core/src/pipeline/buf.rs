//! The packet buffer the pipeline works on.
//!
//! Most rewrites are in place (DR changes MAC addresses; NAT changes
//! addresses, ports and checksums). Encapsulation (IPIP) must grow the frame
//! at the front, which an mbuf does in its headroom: [`PacketBuf`] is that
//! much of an mbuf, so the pipeline stays free of DPDK.

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

#[cfg(test)]
mod tests {
    use super::*;

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
