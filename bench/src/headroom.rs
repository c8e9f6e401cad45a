//! A frame buffer with headroom, for the tunnel workloads: IPIP grows the
//! frame by 20 bytes at the front, which lbd does in the mbuf's headroom and
//! a plain slice cannot do (`drop_tunnel_no_headroom`).
//!
//! Fixed capacity, no allocation: two cache lines. The first holds the
//! offset and length and the headroom; the frame starts at the second, as
//! an mbuf's data starts on a cache line after its headroom. Encapsulation
//! writes its new Ethernet and outer IPv4 headers into the end of the first
//! line and the start of the second.

use lbcore::pipeline::PacketBuf;

use crate::frames::{FrameBuf, FRAME_LEN};

/// Bytes of the buffer after the two bookkeeping bytes.
const CAPACITY: usize = 126;
/// Where a frame as received starts in `bytes`: offset 64 in the struct.
pub const FRAME_AT: usize = 62;

/// A frame of at most `CAPACITY - FRAME_AT` bytes as received, with
/// [`FRAME_AT`] bytes of headroom in front of it.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct HeadroomBuf {
    start: u8,
    len: u8,
    bytes: [u8; CAPACITY],
}

const _: () = assert!(std::mem::size_of::<HeadroomBuf>() == 128);
const _: () = assert!(FRAME_AT + FRAME_LEN <= CAPACITY);

impl HeadroomBuf {
    pub const ZERO: HeadroomBuf = HeadroomBuf {
        start: FRAME_AT as u8,
        len: FRAME_LEN as u8,
        bytes: [0; CAPACITY],
    };

    /// The frame of `f`, with full headroom.
    pub fn from_frame(f: &FrameBuf) -> HeadroomBuf {
        let mut b = HeadroomBuf::ZERO;
        b.load(f);
        b
    }

    /// Replace the content by the frame of `f`, with full headroom.
    pub fn load(&mut self, f: &FrameBuf) {
        self.start = FRAME_AT as u8;
        self.len = FRAME_LEN as u8;
        self.bytes[FRAME_AT..FRAME_AT + FRAME_LEN].copy_from_slice(f.frame());
    }

    /// The byte at `at` of the frame as it was loaded, wherever the frame
    /// starts now (encapsulation leaves the inner packet where it was).
    #[inline]
    pub fn loaded_byte(&self, at: usize) -> u8 {
        self.bytes[FRAME_AT + at]
    }

    /// Undo an IPIP encapsulation of a frame loaded from a client frame:
    /// the inner packet and its Ethernet padding were not moved or changed,
    /// only its Ethernet header was overwritten (by the outer IPv4 header).
    /// Puts back `eth` (the client frame's first 14 bytes), the offset and
    /// the length.
    #[inline]
    pub fn undo_encap(&mut self, eth: &[u8; 14]) {
        self.bytes[FRAME_AT..FRAME_AT + 14].copy_from_slice(eth);
        self.start = FRAME_AT as u8;
        self.len = FRAME_LEN as u8;
    }

    #[inline]
    fn range(&self) -> std::ops::Range<usize> {
        let s = self.start as usize;
        s..s + self.len as usize
    }
}

impl PacketBuf for HeadroomBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.bytes[self.range()]
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let r = self.range();
        &mut self.bytes[r]
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start as usize {
            return false;
        }
        // Both fit in u8: start shrinks, start + len stays within CAPACITY.
        self.start -= n as u8;
        self.len += n as u8;
        true
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.start += n as u8;
        self.len -= n as u8;
        true
    }

    #[inline]
    fn truncate(&mut self, len: usize) -> bool {
        if len > self.len as usize {
            return false;
        }
        self.len = len as u8;
        true
    }
}

// The timed loop hands the worker a `&mut HeadroomBuf`: lbcore's
// `PacketBuf` for `&mut B` forwards to the impl above.

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{build_tcp, client_of, TCP_ACK};

    fn loaded() -> (FrameBuf, HeadroomBuf) {
        let mut f = FrameBuf::ZERO;
        let (ip, port) = client_of(7);
        build_tcp(&mut f, ip, port, TCP_ACK);
        (f, HeadroomBuf::from_frame(&f))
    }

    #[test]
    fn frame_starts_on_the_second_cache_line() {
        let (_, b) = loaded();
        let base = &b as *const HeadroomBuf as usize;
        assert_eq!(b.data().as_ptr() as usize - base, 64);
        assert_eq!(base % 64, 0);
    }

    #[test]
    fn grows_into_the_headroom_and_no_further() {
        let (f, mut b) = loaded();
        assert_eq!(b.data(), f.frame());
        assert!(b.prepend(20));
        assert_eq!(b.data().len(), FRAME_LEN + 20);
        assert_eq!(&b.data()[20..], f.frame());
        assert!(
            !b.prepend(FRAME_AT - 20 + 1),
            "only the rest of the headroom"
        );
        assert!(b.prepend(FRAME_AT - 20));
        assert!(!b.prepend(1));
        assert!(b.adj(FRAME_AT));
        assert_eq!(b.data(), f.frame());
        assert!(!b.truncate(FRAME_LEN + 1));
        assert!(b.truncate(54));
        assert_eq!(b.data(), &f.frame()[..54]);
        assert!(!b.adj(55));
    }

    #[test]
    fn undo_encap_restores_the_frame_as_loaded() {
        let (f, mut b) = loaded();
        // What encapsulation does: drop the padding, prepend 20 bytes and
        // write 34 bytes of new headers at the front.
        assert!(b.truncate(54));
        assert!(b.prepend(20));
        b.data_mut()[..34].fill(0xee);
        let eth: [u8; 14] = f.frame()[..14].try_into().unwrap();
        b.undo_encap(&eth);
        assert_eq!(b.data(), f.frame());
        assert_eq!(b.loaded_byte(47), f.0[47]);
    }
}
