//! A run's trace: its frames in the order they are sent, and how a frame
//! that is sent again gets back what the worker rewrote.
//!
//! Two kinds of frame buffer: [`FrameBuf`] (one cache line, handed to the
//! worker as a plain slice: DR and NAT rewrite in place) and
//! [`HeadroomBuf`] (two cache lines, so that tunnel encapsulation can grow
//! the frame at the front). The restore functions run once per burst,
//! outside the timed region; they are never inlined, so callgrind shows
//! their cost on its own line (`callgrind_annotate`).

use lbcore::pipeline::{PacketBuf, SliceBuf};

use crate::frames::{FrameBuf, TCP_FLAGS_AT};
use crate::headroom::HeadroomBuf;

/// A frame of a trace, as the timed loop hands it to the worker.
pub trait TraceFrame {
    /// The buffer the worker rewrites (and may grow).
    type Buf<'a>: PacketBuf
    where
        Self: 'a;
    /// The frame as it is now (before processing: as received).
    fn frame(&self) -> &[u8];
    fn buf(&mut self) -> Self::Buf<'_>;
    /// The TCP flags the frame was built with, even after processing.
    fn sent_flags(&self) -> u8;
}

impl TraceFrame for FrameBuf {
    type Buf<'a> = SliceBuf<'a>;

    #[inline]
    fn frame(&self) -> &[u8] {
        FrameBuf::frame(self)
    }
    #[inline]
    fn buf(&mut self) -> SliceBuf<'_> {
        SliceBuf(self.frame_mut())
    }
    fn sent_flags(&self) -> u8 {
        self.0[TCP_FLAGS_AT]
    }
}

impl TraceFrame for HeadroomBuf {
    type Buf<'a> = &'a mut HeadroomBuf;

    #[inline]
    fn frame(&self) -> &[u8] {
        self.data()
    }
    #[inline]
    fn buf(&mut self) -> &mut HeadroomBuf {
        self
    }
    fn sent_flags(&self) -> u8 {
        self.loaded_byte(TCP_FLAGS_AT)
    }
}

/// Puts back what the worker rewrote in a burst's frames (`frames`), given
/// their pristine copies (`pristine`: as long as `frames`, or empty when
/// the trace keeps none).
pub type Restore<T> = fn(frames: &mut [T], pristine: &[T]);

pub struct Trace<T> {
    pub frames: Vec<T>,
    /// Pristine copies of `frames`, when `restore` copies them back.
    pub pristine: Vec<T>,
    /// `None`: each frame is sent once.
    pub restore: Option<Restore<T>>,
}

impl<T: Copy> Trace<T> {
    /// A trace sent once.
    pub fn once(frames: Vec<T>) -> Trace<T> {
        Trace {
            frames,
            pristine: Vec::new(),
            restore: None,
        }
    }

    /// A trace replayed, `restore` undoing the rewrites between passes.
    pub fn replayed(frames: Vec<T>, restore: Restore<T>) -> Trace<T> {
        Trace {
            frames,
            pristine: Vec::new(),
            restore: Some(restore),
        }
    }

    /// A trace replayed, each frame copied back from a pristine copy kept
    /// alongside (NAT rewrites addresses, ports, TTL and checksums).
    pub fn replayed_by_copy(frames: Vec<T>) -> Trace<T> {
        Trace {
            pristine: frames.clone(),
            frames,
            restore: Some(restore_by_copy::<T>),
        }
    }
}

impl<T> Trace<T> {
    pub fn is_replayed(&self) -> bool {
        self.restore.is_some()
    }
}

/// DR: the client's MAC addresses back.
#[inline(never)]
pub fn restore_macs(frames: &mut [FrameBuf], _: &[FrameBuf]) {
    for f in frames {
        f.restore_macs();
    }
}

/// NAT: copy every frame back from its pristine copy (one cache line each).
#[inline(never)]
pub fn restore_by_copy<T: Copy>(frames: &mut [T], pristine: &[T]) {
    frames.copy_from_slice(pristine);
}

/// Tunnel: the client's Ethernet header, offset and length back.
#[inline(never)]
pub fn restore_encap(frames: &mut [HeadroomBuf], _: &[HeadroomBuf]) {
    let eth = crate::frames::client_eth_header();
    for f in frames {
        f.undo_encap(&eth);
    }
}
