//! Per-frame accounting of a worker's counters: every frame the packet path
//! receives ends in exactly one place, and the counters say which.
//!
//! Shared by the fuzz harness (`tests/fuzz_pipeline.rs`) and the pipeline's
//! unit tests (`src/pipeline/tests.rs` includes this file by path), so the
//! includer must have `Counter`, `Verdict` and `WorkerStats` in scope.
#![allow(dead_code)]

use super::{Counter, Verdict, WorkerStats};

/// What a counter means for the accounting of received frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Frames received (`rx_frames`).
    Received,
    /// A frame the pipeline sent (its verdict is `Tx`): one of these moves
    /// per transmitted frame.
    Sent,
    /// A frame the pipeline dropped (its verdict is `Drop` of this counter).
    Drop,
    /// Counted by lbd's I/O loop, never by the pipeline (kernel path,
    /// hand-over mailboxes, TX failures): must not move here.
    IoLoop,
    /// Events beside the frame's fate (connections made or expired, ARP
    /// learned, options seen, sync): any number may move.
    Info,
}

/// The role of every counter. No wildcard arm: a new counter does not
/// compile until it is classified here.
pub fn role(c: Counter) -> Role {
    use Counter::*;
    match c {
        RxFrames => Role::Received,
        FwdDr
        | FwdTunnel
        | IcmpFragNeededSent
        | ArpReplied
        | IcmpEchoReplied
        | FwdNat
        | FwdNatReply
        | IcmpErrorForwarded
        | IcmpErrorNatForwarded
        | IcmpErrorNatReply
        | NdpAdvertised
        | Icmpv6EchoReplied
        | Icmpv6PtbSent => Role::Sent,
        ArpLearned
        | ConnCreated
        | ConnExpired
        | PersistTemplateCreated
        | PersistTemplateUsed
        | Ipv4WithOptions
        | SyncQueueFull
        | SyncAdopted
        | FloodEngaged
        | ConnEmbryonicEvicted
        // Also counted as forwarded_dr or forwarded_tunnel.
        | FwdStateless
        | SloppyAdopted
        // ECMP mode: also counted as conn_created and forwarded_*.
        | ConnAdoptedMidflow
        // A learning-only NDP frame is Consumed, like ARP.
        | NdpLearned => Role::Info,
        IcmpErrorHandedOff | ToKernel | FwdLocal | LocalFromPeer | FromKernel | TxFailed
        | DropHandoffFull | DropKernelQueueFull | DropKernelRate | DropMultiSegment => {
            Role::IoLoop
        }
        DropEthTruncated
        | DropNotOurMac
        | DropOwnFrame
        | DropEthBadSource
        | DropUnknownEthertype
        | DropVlan
        | DropArpTruncated
        | DropArpUnsupported
        | DropArpNotForUs
        | DropIpv4Truncated
        | DropIpv4BadVersion
        | DropIpv4BadHeaderLen
        | DropIpv4BadTotalLen
        | DropIpv4BadChecksum
        | DropIpv4TtlExpired
        | DropIpv4Fragment
        | DropIpv4BadSource
        | DropIpv4Land
        | DropIpv4BadOptions
        | DropIpv4NotLocal
        | DropIpv4UnknownProtocol
        | DropTcpMalformed
        | DropTcpBadFlags
        | DropUdpMalformed
        | DropIcmpMalformed
        | DropIcmpUnsupported
        | DropIcmpErrorMalformed
        | DropIcmpErrorNoConn
        | DropNoService
        | DropTcpNoConn
        | DropNoRealServer
        | DropRealServerDown
        | DropVrrpBackup
        | DropConnTableFull
        | DropNeighUnresolved
        | DropNatNoConn
        | DropNatNoClientMac
        | DropNatConflict
        | DropNatDisabled
        | DropRealServerGone
        | DropTunnelTooBig
        | DropTunnelNoHeadroom
        | DropIpv6Truncated
        | DropIpv6BadVersion
        | DropIpv6BadPayloadLen
        | DropIpv6BadSource
        | DropIpv6Land
        | DropIpv6Fragment
        | DropIpv6ExtTruncated
        | DropIpv6ExtTooMany
        | DropIpv6ExtUnsupported
        | DropIpv6NotLocal
        | DropIpv6HopLimitExpired
        | DropIpv6Multicast
        | DropIpv6UnknownProtocol
        | DropIcmpv6Malformed
        | DropIcmpv6BadChecksum
        | DropIcmpv6Unsupported
        | DropNdpInvalid
        | DropNdpNotForUs => Role::Drop,
    }
}

/// A copy of every counter of one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts(pub Vec<u64>);

impl Counts {
    pub fn of(s: &WorkerStats) -> Counts {
        Counts(Counter::ALL.iter().map(|&c| s.get(c)).collect())
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.0[c as usize]
    }

    /// The counters that moved from `self` to `after`, with how much.
    pub fn moved(&self, after: &Counts) -> Vec<(Counter, u64)> {
        Counter::ALL
            .iter()
            .filter_map(|&c| {
                let d = after.get(c).wrapping_sub(self.get(c));
                (d != 0).then_some((c, d))
            })
            .collect()
    }
}

/// Check what one pass of a frame through the packet path did to a
/// worker's counters (`before` → `after`) against its verdict. `received`:
/// the frame came from the port (`process`/`process_buf`: `rx_frames`
/// counts it) rather than from another worker's hand-over.
///
/// * `Tx`: exactly one `Sent` counter moved, by one, and no drop;
/// * `Drop(c)`: `c` is a drop reason and moved by one, nothing else did;
/// * `Consumed`: an ARP or NDP frame learned from (`arp_learned`,
///   `ndp_learned`), nothing sent
///   or dropped;
/// * `Kernel`, `Local`, `Handoff`: nothing sent or dropped (lbd's I/O loop
///   counts these);
/// * never an I/O-loop counter.
pub fn check_frame(
    before: &Counts,
    after: &Counts,
    verdict: Verdict,
    received: bool,
) -> Result<(), String> {
    let moved = before.moved(after);
    let of = |r: Role| -> Vec<(Counter, u64)> {
        moved
            .iter()
            .copied()
            .filter(|&(c, _)| role(c) == r)
            .collect()
    };
    let (sent, drops, io) = (of(Role::Sent), of(Role::Drop), of(Role::IoLoop));
    let rx = after
        .get(Counter::RxFrames)
        .wrapping_sub(before.get(Counter::RxFrames));
    let why = |m: &str| format!("{m}: verdict {verdict:?}, counters moved {moved:?}");
    if rx != u64::from(received) {
        return Err(why("rx_frames did not count the frame exactly once"));
    }
    if !io.is_empty() {
        return Err(why("the pipeline moved a counter of the I/O loop"));
    }
    match verdict {
        Verdict::Tx(_) => {
            if sent.len() != 1 || sent[0].1 != 1 || !drops.is_empty() {
                return Err(why("a sent frame must move exactly one outcome"));
            }
        }
        Verdict::Drop(c) => {
            if role(c) != Role::Drop {
                return Err(why("dropped with a counter that is no drop reason"));
            }
            if drops != [(c, 1)] || !sent.is_empty() {
                return Err(why("a drop must move its own reason, once, alone"));
            }
        }
        Verdict::Consumed => {
            if !sent.is_empty() || !drops.is_empty() {
                return Err(why("a consumed frame was also sent or dropped"));
            }
            if !moved
                .iter()
                .any(|&(c, _)| c == Counter::ArpLearned || c == Counter::NdpLearned)
            {
                return Err(why("a consumed frame taught nothing"));
            }
        }
        Verdict::Kernel | Verdict::Local { .. } | Verdict::Handoff => {
            if !sent.is_empty() || !drops.is_empty() {
                return Err(why("a frame passed on was also sent or dropped"));
            }
        }
    }
    Ok(())
}

/// Final verdicts that lbd's I/O loop counts (the pipeline does not), as a
/// harness tallies them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub consumed: u64,
    pub kernel: u64,
    pub local: u64,
}

impl Tally {
    /// Count a final verdict (after any hand-overs).
    pub fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Consumed => self.consumed += 1,
            Verdict::Kernel => self.kernel += 1,
            Verdict::Local { .. } => self.local += 1,
            Verdict::Tx(_) | Verdict::Drop(_) | Verdict::Handoff => {}
        }
    }
}

/// The whole balance over a set of workers that handed frames only to each
/// other, once every hand-over reached its final verdict:
/// `rx_frames = sent + drops + consumed + kernel + local`.
pub fn check_balance(workers: &[&WorkerStats], tally: &Tally) -> Result<(), String> {
    let sum = |r: Role| -> u64 {
        workers
            .iter()
            .flat_map(|w| Counter::ALL.iter().map(move |&c| (w, c)))
            .filter(|&(_, c)| role(c) == r)
            .map(|(w, c)| w.get(c))
            .sum()
    };
    let rx = sum(Role::Received);
    let (sent, drops) = (sum(Role::Sent), sum(Role::Drop));
    let out = sent + drops + tally.consumed + tally.kernel + tally.local;
    if rx != out {
        return Err(format!(
            "rx_frames {rx} != sent {sent} + drops {drops} + consumed {} + kernel {} + local {}",
            tally.consumed, tally.kernel, tally.local
        ));
    }
    Ok(())
}
