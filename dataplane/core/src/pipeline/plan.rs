//! The burst in progress, as stage 1 (`burst.rs`) leaves it for stage 2.

use super::parsed::Flow;

/// The most frames one burst may hold (lbd's `workers.burst` is at most
/// 64); `Worker::process_burst` splits longer slices.
pub const MAX_BURST: usize = 64;

/// Stage 1's result for one frame: its flow, and the frame length it was
/// parsed from (stage 2 takes the full path if the frame it is given is
/// not that long: a caller mixing up frames gets a correct, slower answer,
/// never a wrong rewrite).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Planned {
    pub(super) flow: Flow,
    pub(super) len: u16,
}

/// The burst in progress: stage 1's result per frame. Which entries hold a
/// flow is a bit mask, so that stage 1 writes only the flows it found and
/// stage 2 reads them in place.
pub(crate) struct Plan {
    /// A fixed-size array: an index checked against `MAX_BURST` needs no
    /// other bounds check. Stage 2 takes it out of the worker while it
    /// reads it (`Plan::take_frames`): the flows are then read in place,
    /// not copied out first to keep them from the worker's `&mut self`.
    /// `None` only while taken.
    frames: Option<Box<[Planned; MAX_BURST]>>,
    /// Bit i: `frames[i]` holds frame i's flow, not yet processed.
    pub(super) valid: u64,
    /// Bit i (a subset of `valid`): that flow is a candidate NAT reply
    /// (`flow::Kind::NatReply`), not a service packet.
    pub(super) reply: u64,
    pub(super) rx_port: u16,
}

/// No frame planned: what stage 2 reads if the frames were not given back
/// (a panic in an earlier stage 2; `valid` is then cleared too).
static NO_FRAMES: [Planned; MAX_BURST] = [Planned::EMPTY; MAX_BURST];

impl Planned {
    const EMPTY: Planned = Planned {
        flow: Flow::EMPTY,
        len: 0,
    };
}

impl Plan {
    pub fn new() -> Plan {
        Plan {
            frames: Some(Box::new([Planned::EMPTY; MAX_BURST])),
            valid: 0,
            reply: 0,
            rx_port: 0,
        }
    }
}

impl Plan {
    /// Stage 1's storage for the burst's flows (None: lost to a panic, and
    /// nothing is planned), and the `reply` mask, cleared, for stage 1 to
    /// set a candidate NAT reply's bit in place: that rare bit then costs
    /// the common frame's loop no register (measured with callgrind).
    #[inline(always)]
    pub(super) fn frames_and_reply(&mut self) -> (Option<&mut [Planned; MAX_BURST]>, &mut u64) {
        self.reply = 0;
        (self.frames.as_deref_mut(), &mut self.reply)
    }

    /// Take the burst's flows out for stage 2 (give them back with
    /// [`give_back`](Self::give_back)).
    #[inline(always)]
    pub(super) fn take_frames(&mut self) -> Option<Box<[Planned; MAX_BURST]>> {
        let f = self.frames.take();
        if f.is_none() {
            self.valid = 0;
        }
        f
    }

    #[inline(always)]
    pub(super) fn give_back(&mut self, frames: Option<Box<[Planned; MAX_BURST]>>) {
        self.frames = frames;
    }
}

/// The planned frames (`valid`) split into service packets and candidate
/// NAT replies (`reply`'s bits outside `valid` are stale: frames already
/// processed one by one).
#[inline(always)]
pub(super) fn split(valid: u64, reply: u64) -> (u64, u64) {
    (valid & !reply, valid & reply)
}

/// The frames `taken` holds, or none.
#[inline(always)]
pub(super) fn frames_of(taken: &Option<Box<[Planned; MAX_BURST]>>) -> &[Planned; MAX_BURST] {
    taken.as_deref().unwrap_or(&NO_FRAMES)
}
