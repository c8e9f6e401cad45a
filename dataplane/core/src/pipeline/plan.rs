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
    /// other bounds check.
    pub(super) frames: Box<[Planned; MAX_BURST]>,
    /// Bit i: `frames[i]` holds frame i's flow, not yet processed.
    pub(super) valid: u64,
    /// Bit i (a subset of `valid`): that flow is a candidate NAT reply
    /// (`flow::Kind::NatReply`), not a service packet.
    pub(super) reply: u64,
    pub(super) rx_port: u16,
}

impl Plan {
    pub fn new() -> Plan {
        let empty = Planned {
            flow: Flow::EMPTY,
            len: 0,
        };
        Plan {
            frames: Box::new([empty; MAX_BURST]),
            valid: 0,
            reply: 0,
            rx_port: 0,
        }
    }
}
