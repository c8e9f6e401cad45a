//! The worker's tunnel plans: per real server reached by IPIP, the 34
//! bytes every encapsulation to it starts from (the Ethernet header and
//! the outer IPv4 header's fixed fields), so that an established tunnelled
//! flow's packet is encapsulated without looking up its route, its
//! neighbour, its port's MAC and address, and without deciding its
//! [`Encap`] field by field.
//!
//! A hit writes the template, then the fields that are the packet's own:
//! the outer total length, the ident (the worker's counter, as the full
//! path), DSCP/ECN and DF copied from the inner header; the outer checksum
//! is the template's precomputed partial sum plus those fields, folded
//! once, or left to the NIC when the egress port offloads it. The bytes are
//! exactly [`tunnel::encap_frame`](super::tunnel::encap_frame)'s (property-tested below).
//!
//! **What a plan depends on, and when it is dropped.** A plan is made by
//! the full path ([`Worker::forward_tunnel`](super::Worker)) from the
//! snapshot's route of the real server (egress port, neighbour slot,
//! address), the port's MAC, address and MTU (the snapshot's), the
//! neighbour's MAC (the shared [`NeighTable`](crate::neigh::NeighTable))
//! and the port's TX checksum offloads (`Worker::set_tx_checksums`). All
//! plans are dropped together ([`TunnelPlans::invalidate`]: one epoch
//! bump, no walk) exactly when the DR plans are (`fwd_cache`: a snapshot
//! switch, a neighbour-generation change), and when the TX offloads are
//! set. A snapshot with a tunnel source pool (`tunnel.source_pool`: the
//! outer source is per flow) gets no plans: its packets take the full
//! path.
//!
//! A hit keeps every check of the full path: an inner packet too big for
//! the port's MTU (or shorter than an IPv4 header) is left to the full
//! path, which answers "fragmentation needed" or drops it; padding is
//! removed and a buffer without headroom is a counted drop, as in
//! [`tunnel::encap_frame`](super::tunnel::encap_frame).

use super::buf::{PacketBuf, TxChecksums};
use super::encap::{write_outer_headers, Encap, OVERHEAD};
use super::plan_epoch::{PlanEpoch, NEVER};
use super::snapshot::MAX_REAL_SERVERS;
use crate::counters::Counter;
use crate::wire::{ethernet, ipv4};

const ETH: usize = ethernet::HEADER_LEN;

/// One real server's plan: one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Plan {
    /// The Ethernet header and the outer IPv4 header, with DSCP/ECN, total
    /// length, ident, flags and checksum zero.
    hdr: [u8; ETH + OVERHEAD],
    /// Egress port index.
    port: u16,
    /// The sum of the template header's 16-bit words (not folded): the
    /// outer checksum is this plus the packet's own fields.
    sum: u32,
    /// The largest inner packet the egress port's MTU takes, less an IPv4
    /// header: a hit takes inner lengths 20 ..= 20 + `span`.
    span: u16,
    /// Whether the egress port's NIC computes the outer checksum.
    nic_ipv4: bool,
    /// Valid while equal to the plans' epoch.
    epoch: u16,
}

impl Plan {
    /// Mark the plan never made.
    fn unmake(&mut self) {
        self.epoch = NEVER;
    }
}

/// [`fold`](crate::wire::checksum::fold) of a sum under 2^32 in four instructions: the high half of
/// `sum` plus `sum` turned by 16 bits is the sum of its halves with the
/// end-around carry of their low halves' sum (what `fold`'s two steps
/// compute), modulo 2^16.
#[inline(always)]
fn fold_small(sum: u32) -> u16 {
    (sum.wrapping_add(sum.rotate_left(16)) >> 16) as u16
}

/// The reason `c` of a refused encapsulation, out of the way: the error
/// codes are not set up on the common path (measured with callgrind).
#[cold]
#[inline(never)]
fn refused(c: Counter) -> Counter {
    c
}

/// The total length of the IPv4 packet in `frame` (0 if the frame is
/// too short to say).
#[inline(always)]
pub(crate) fn inner_len(frame: &[u8]) -> u16 {
    match frame.get(ETH + 2..ETH + 4) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// What a tunnel hit found out before the buffer is at hand: carried by
/// the worker from the decision to the encapsulation. Made only by
/// [`TunnelPlans::hit`]: its real server is one with a plan.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TunnelHit {
    /// The real server (its plan, its counters): below
    /// [`MAX_REAL_SERVERS`].
    rs: u32,
    /// The service's index in the snapshot (its tally; as wide as the
    /// index the path holds: one register spill, not two, measured with
    /// callgrind on the DR path).
    svc_idx: usize,
    /// The inner packet's total length.
    inner_len: u16,
}

impl TunnelHit {
    pub fn rs(&self) -> u32 {
        self.rs
    }

    pub fn svc_idx(&self) -> usize {
        self.svc_idx
    }
}

/// The tunnel plans of one worker, by real server id.
pub(crate) struct TunnelPlans {
    plans: Box<[Plan; MAX_REAL_SERVERS]>,
    /// The plans made since the last invalidation carry it.
    epoch: PlanEpoch,
}

impl TunnelPlans {
    pub fn new(neigh_gen: u64) -> TunnelPlans {
        let empty = Plan {
            hdr: [0; ETH + OVERHEAD],
            port: 0,
            sum: 0,
            span: 0,
            nic_ipv4: false,
            epoch: NEVER,
        };
        // Made on the heap (256 KiB: not through the stack).
        let plans = vec![empty; MAX_REAL_SERVERS].into_boxed_slice();
        TunnelPlans {
            plans: plans
                .try_into()
                .unwrap_or_else(|_| unreachable!("MAX_REAL_SERVERS plans")),
            epoch: PlanEpoch::new(neigh_gen),
        }
    }

    /// Drop every plan.
    pub fn invalidate(&mut self) {
        self.epoch.advance(&mut self.plans[..], Plan::unmake);
    }

    /// Drop every plan if the neighbour table's generation is no longer
    /// `gen`'s.
    pub fn check_neigh(&mut self, gen: u64) {
        self.epoch
            .check_neigh(gen, &mut self.plans[..], Plan::unmake);
    }

    /// Whether the neighbour table's generation `gen` is not the plans'.
    #[inline(always)]
    pub fn is_stale(&self, gen: u64) -> bool {
        self.epoch.is_stale(gen)
    }

    /// Real server `rs`'s hit for a packet of service `svc_idx` whose
    /// inner packet is `inner_len` bytes long, if `rs` has a valid plan
    /// and the plan takes that length (an IPv4 header at least, within the
    /// port's MTU): a packet it does not take goes the full path.
    #[inline(always)]
    pub fn hit(&self, rs: u32, svc_idx: usize, inner_len: u16) -> Option<TunnelHit> {
        let p = self.plans.get(rs as usize)?;
        let takes = p.epoch == self.epoch.current()
            && inner_len.wrapping_sub(ipv4::HEADER_LEN as u16) <= p.span;
        takes.then_some(TunnelHit {
            rs,
            svc_idx,
            inner_len,
        })
    }

    /// Record the plan of the encapsulation `e` (of the packet a full path
    /// just decided) for its real server: sent on `e.port`, whose MTU is
    /// `mtu` and whose NIC computes the checksums `nic`.
    pub fn record(&mut self, e: &Encap, mtu: u16, nic: TxChecksums) {
        let Some(p) = self.plans.get_mut(e.rs as usize) else {
            return;
        };
        if usize::from(mtu) < OVERHEAD + ipv4::HEADER_LEN {
            // Not even an empty packet fits: the full path for all.
            return;
        }
        let mut hdr = [0u8; ETH + OVERHEAD];
        let blank = Encap { inner_len: 0, ..*e };
        write_outer_headers(&mut hdr, &blank, 0, false, 0, false);
        // The total length too is the packet's own (the header's alone
        // here): zero, so that the template's words' sum is that of the
        // fixed ones (version/IHL, TTL/protocol, addresses).
        hdr[ETH + 2..ETH + 4].fill(0);
        let sum = hdr[ETH..]
            .chunks_exact(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        *p = Plan {
            hdr,
            port: e.port,
            sum,
            span: mtu - (OVERHEAD + ipv4::HEADER_LEN) as u16,
            nic_ipv4: nic.contains(TxChecksums::IPV4),
            epoch: self.epoch.current(),
        };
    }

    /// Encapsulate the frame in `pkt` as the plan of `hit`'s real server
    /// says, with outer ident `ident`: the
    /// egress port, or the reason of a drop. On error the frame may have
    /// lost its Ethernet padding, nothing else.
    #[inline(always)]
    pub fn encap<B: PacketBuf + ?Sized>(
        &self,
        pkt: &mut B,
        hit: TunnelHit,
        ident: u16,
    ) -> Result<u16, Counter> {
        // In range (`hit`'s maker checked): no second bounds check.
        let p = &self.plans[hit.rs as usize % MAX_REAL_SERVERS];
        let inner = usize::from(hit.inner_len);
        // The outer total length covers exactly the inner packet: drop
        // padding (and refuse a frame shorter than its IPv4 header said).
        if !pkt.truncate(ETH + inner) {
            return Err(refused(Counter::DropIpv4BadTotalLen));
        }
        if !pkt.prepend(OVERHEAD) {
            return Err(refused(Counter::DropTunnelNoHeadroom));
        }
        // [20 new][14 old Ethernet][inner]: the inner header's DSCP/ECN
        // byte and flags are at their place in the final frame.
        let Some(f) = pkt.data_mut().first_chunk_mut::<{ ETH + OVERHEAD + 8 }>() else {
            return Err(refused(Counter::DropIpv4BadTotalLen));
        };
        let tos = f[ETH + OVERHEAD + 1];
        // The inner header's flags byte, DF alone kept: the outer one's.
        let flags = f[ETH + OVERHEAD + 6] & (ipv4::FLAG_DF >> 8) as u8;
        let total = hit.inner_len + OVERHEAD as u16;
        let h = f.first_chunk_mut::<{ ETH + OVERHEAD }>().expect("within");
        *h = p.hdr;
        // The packet's own fields over the template's zeros: DSCP/ECN,
        // total length, ident, flags; then the checksum.
        h[ETH + 1] = tos;
        h[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        h[ETH + 4..ETH + 6].copy_from_slice(&ident.to_be_bytes());
        h[ETH + 6] = flags;
        if !p.nic_ipv4 {
            let own =
                u32::from(tos) + u32::from(total) + u32::from(ident) + (u32::from(flags) << 8);
            h[ETH + 10..ETH + 12].copy_from_slice(&(!fold_small(p.sum + own)).to_be_bytes());
        }
        if p.nic_ipv4 {
            pkt.offload_checksums(ETH, ipv4::HEADER_LEN, TxChecksums::IPV4);
        }
        Ok(p.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::buf::NicBuf;
    use crate::pipeline::tunnel;
    use crate::wire::ipv4::Ipv4Packet;
    use crate::wire::MacAddr;
    use std::net::Ipv4Addr;

    fn encap(rs: u32, inner_len: u16) -> Encap {
        Encap {
            port: 1,
            dst_mac: MacAddr([2, 0, 0, 0, 0, 0x11]),
            src_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src: Ipv4Addr::new(198, 18, 0, 2),
            dst: Ipv4Addr::new(198, 18, 0, 11),
            inner_len,
            rs,
            svc: 0,
            outcome: Counter::FwdTunnel,
        }
    }

    impl TunnelPlans {
        fn takes(&self, rs: u32, inner_len: u16) -> bool {
            self.hit(rs, 0, inner_len).is_some()
        }
    }

    /// A client frame: Ethernet, an IPv4 packet of `inner_len` bytes with
    /// `tos` and DF as given, then `pad` bytes of Ethernet padding.
    fn frame(inner_len: u16, tos: u8, df: bool, pad: usize, fill: u8) -> Vec<u8> {
        let mut f = vec![fill; ETH + usize::from(inner_len) + pad];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len(inner_len);
        ip.set_dscp_ecn(tos);
        ip.set_dont_frag(df);
        ip.set_ttl(61);
        ip.fill_checksum();
        f
    }

    #[test]
    fn a_recorded_plan_takes_packets_until_invalidated() {
        let mut c = TunnelPlans::new(7);
        assert!(!c.takes(3, 100));
        c.record(&encap(3, 100), 1500, TxChecksums::NONE);
        assert!(c.takes(3, 100));
        assert!(!c.takes(4, 100));
        c.invalidate();
        assert!(!c.takes(3, 100));
    }

    #[test]
    fn a_neighbour_generation_change_drops_the_plans() {
        let mut c = TunnelPlans::new(7);
        c.record(&encap(3, 100), 1500, TxChecksums::NONE);
        c.check_neigh(7);
        assert!(c.takes(3, 100));
        c.check_neigh(8);
        assert!(!c.takes(3, 100));
        c.record(&encap(3, 100), 1500, TxChecksums::NONE);
        c.check_neigh(8);
        assert!(c.takes(3, 100));
    }

    #[test]
    fn only_lengths_the_mtu_takes_are_planned() {
        let mut c = TunnelPlans::new(0);
        c.record(&encap(3, 100), 1000, TxChecksums::NONE);
        assert!(c.takes(3, 980));
        assert!(!c.takes(3, 981), "too big: the full path decides");
        assert!(c.takes(3, 20));
        assert!(!c.takes(3, 19), "shorter than a header");
        assert!(!c.takes(3, 0));
        // A port MTU of exactly two headers takes a bare header; below
        // that, nothing is planned.
        c.record(&encap(3, 100), 40, TxChecksums::NONE);
        assert!(c.takes(3, 20));
        assert!(!c.takes(3, 21));
        c.record(&encap(4, 100), 39, TxChecksums::NONE);
        assert!(!c.takes(4, 20));
    }

    #[test]
    fn out_of_range_servers_have_no_plan() {
        let mut c = TunnelPlans::new(0);
        c.record(
            &encap(MAX_REAL_SERVERS as u32, 100),
            1500,
            TxChecksums::NONE,
        );
        assert!(!c.takes(MAX_REAL_SERVERS as u32, 100));
    }

    #[test]
    fn the_epoch_wrapping_round_never_revives_a_plan() {
        let mut c = TunnelPlans::new(0);
        c.record(&encap(3, 100), 1500, TxChecksums::NONE);
        // The epoch comes round to the first plan's after 65 535
        // invalidations: the wrap must clear it.
        for _ in 0..u16::MAX as usize + 2 {
            c.invalidate();
            assert!(!c.takes(3, 100), "a plan of the epoch come round");
        }
        c.record(&encap(5, 100), 1500, TxChecksums::NONE);
        assert!(c.takes(5, 100));
    }

    #[test]
    fn a_slice_cannot_take_the_outer_header() {
        let mut c = TunnelPlans::new(0);
        c.record(&encap(3, 100), 1500, TxChecksums::NONE);
        let mut f = frame(100, 0, true, 0, 0);
        let mut s = crate::pipeline::SliceBuf(&mut f);
        assert_eq!(
            c.encap(&mut s, c.hit(3, 0, 100).unwrap(), 1),
            Err(Counter::DropTunnelNoHeadroom)
        );
    }

    proptest::proptest! {
        /// `fold_small` is `fold` for every sum it is given (under 2^32).
        #[test]
        fn fold_small_is_fold(sum: u32) {
            proptest::prop_assert_eq!(fold_small(sum), crate::wire::checksum::fold(sum));
        }

        /// A planned encapsulation leaves exactly the frame (and checksum
        /// requests) the full path's `encap_frame` does, whatever the
        /// inner packet, its DSCP/ECN, DF, length and padding, the ident,
        /// the addresses and the NIC's offloads.
        #[test]
        fn the_planned_frame_is_the_unplanned_one(
            inner_len in 20u16..=1480, tos: u8, df: bool, pad in 0usize..40, fill: u8,
            ident: u16, src: u32, dst: u32, macs: [u8; 12], nic in 0u8..8, port: u16,
        ) {
            let nic = [TxChecksums::IPV4, TxChecksums::TCP, TxChecksums::UDP]
                .into_iter()
                .enumerate()
                .filter(|(i, _)| nic & (1 << i) != 0)
                .fold(TxChecksums::NONE, |a, (_, c)| a.union(c));
            let e = Encap {
                port,
                dst_mac: MacAddr(macs[..6].try_into().unwrap()),
                src_mac: MacAddr(macs[6..].try_into().unwrap()),
                src: Ipv4Addr::from(src),
                dst: Ipv4Addr::from(dst),
                inner_len,
                rs: 9,
                svc: 0,
                outcome: Counter::FwdTunnel,
            };
            let orig = frame(inner_len, tos, df, pad, fill);
            let mut want = NicBuf::new(orig.clone());
            tunnel::encap_frame(&mut want, &e, ident, nic).unwrap();
            let mut c = TunnelPlans::new(0);
            c.record(&e, 1500, nic);
            let hit = c.hit(9, 0, inner_len);
            proptest::prop_assert!(hit.is_some());
            let mut got = NicBuf::new(orig);
            proptest::prop_assert_eq!(c.encap(&mut got, hit.unwrap(), ident), Ok(port));
            proptest::prop_assert_eq!(&got.requests, &want.requests);
            proptest::prop_assert_eq!(&got.frame, &want.frame);
            proptest::prop_assert_eq!(got.transmit(), want.transmit());
        }
    }
}
