//! The parsed-packet context of a service packet, and the fast classifier
//! that builds it.
//!
//! [`Flow`] is what every later stage needs to know about a TCP/UDP packet
//! to a VIP — the flow key and its hash, the service, where the L4 header
//! is, the TCP flags — computed once and passed by reference, so no stage
//! re-derives a view or repeats a bounds check.
//!
//! [`parse_into`] is the first stage of the burst pipeline. It reads
//! the frame without changing anything (no counter, no table, no neighbour
//! learning): that is what lets a burst be classified and prefetched as a
//! whole before any frame is processed, with exactly the outcome of
//! processing the frames one by one. It accepts only the common case — a
//! well-formed, option-free, unfragmented IPv4 TCP/UDP packet from a
//! plausible client to a service, on a director that is not in VRRP standby
//! or a two-box pair — after the very checks the full classifier makes (the
//! list is in [`parse_into`]). Everything else, including every frame
//! that will be dropped, returns `None` and goes through the full classifier
//! ([`Worker::process_buf`]'s path), which decides and counts it. Both paths
//! end in the same [`Worker::service_flow`].
//!
//! It also recognises the other common frame of a NAT director, a real
//! server's reply (TCP or UDP to an address outside the VIP range, after
//! the same Ethernet and IPv4 checks): [`Kind::NatReply`], which stage 2
//! hands straight to the NAT reply path with the arguments the full
//! classifier would give it.

use crate::conntrack::ConnKey;
use crate::wire::checksum;
use crate::wire::ethernet;
use crate::wire::ipv4;
use crate::wire::{mac_at, MacAddr, TcpFlags};

use super::parsed::Flow;
use super::snapshot::LastService;
use super::{Snapshot, Worker};
use crate::conntrack::home::HomeHint;
use crate::conntrack::keyspace::EntryKind;
use crate::conntrack::shared::SharedConnTable;
use crate::conntrack::ConnTable;

const ETH: usize = ethernet::HEADER_LEN;
/// Ethernet + an option-free IPv4 header + the 8 bytes of L4 header every
/// accepted packet has (UDP's whole header, TCP's ports and sequence): the
/// part of the frame the fast classifier reads, every field at a constant
/// offset behind this one length check (TCP's data offset and flags behind
/// one more).
const MIN_FAST: usize = ETH + ipv4::HEADER_LEN + 8;
/// Up to TCP's flags (the data offset and flags bytes, 12 and 13).
const TCP_FLAGS_END: usize = ETH + ipv4::HEADER_LEN + 14;

impl Worker {
    /// [`parse_into`] on this worker's state (for tests).
    #[cfg(test)]
    pub(crate) fn fast_flow(&self, frame: &[u8], rx_port: u16) -> Option<Flow> {
        self.fast_kind(frame, rx_port)
            .and_then(|(k, f)| (k == Kind::Service).then_some(f))
    }

    /// [`parse_into`] on this worker's state, with the kind (for tests).
    #[cfg(test)]
    pub(crate) fn fast_kind(&self, frame: &[u8], rx_port: u16) -> Option<(Kind, Flow)> {
        let mut flow = Flow::EMPTY;
        let ctx = BurstCtx::new(
            &self.snap,
            &self.table,
            self.nat_table(),
            self.standby,
            rx_port,
        )?;
        let k = parse_into(&self.snap, &ctx, frame, &mut flow)?;
        Some((k, flow))
    }
}

/// What stage 1's checks read of the snapshot and the worker that is the
/// same for every frame of a burst: read once per burst, not per frame.
#[derive(Debug, Clone)]
pub(crate) struct BurstCtx<'a> {
    /// The receiving port's MAC, as [`mac_at`] reads one.
    mine: u64,
    rx_port: u16,
    /// The other physical ports' MACs (as [`mac_at`] reads one) when there
    /// are at most two: a source MAC equal to one is spoofed or looped.
    /// Unused entries hold `mine`, which the checks refuse before.
    others: [u64; 2],
    /// More than two other ports: [`Snapshot::is_other_port_mac`] scans.
    scan_others: bool,
    /// More than one physical port (else `others` is unused).
    multi_port: bool,
    /// Service packets may take the fast path: the director is neither in
    /// VRRP standby nor one of a two-box pair.
    services: bool,
    /// The snapshot's suspect first octets of a source
    /// ([`Snapshot::is_suspect_source`]); every octet when `services` is
    /// false, so that the one table read stands for that test too.
    suspect: &'a [bool; 256],
    /// The burst's last service lookup (made for this burst's snapshot).
    last_service: LastService,
    /// The table a service packet's connection is looked up in first: on
    /// a NAT director the shared one (`Flow::hash`), else the worker's.
    home: HomeHint<'a, ConnKey>,
    /// A NAT director: the shared table is `home`, and a candidate reply's
    /// key is hashed and prefetched in it too.
    nat: bool,
}

impl<'a> BurstCtx<'a> {
    /// The context of a burst received on `rx_port`; None when the port
    /// does not exist (the full classifier drops its frames).
    #[inline(always)]
    pub(crate) fn new(
        snap: &'a Snapshot,
        table: &'a ConnTable,
        nat: Option<&'a SharedConnTable>,
        standby: bool,
        rx_port: u16,
    ) -> Option<BurstCtx<'a>> {
        let port = snap.ports.get(rx_port as usize)?;
        let mine = port.mac.to_u64();
        let (mut others, mut n) = ([mine; 2], 0);
        // VLANs share their port's MAC: only ports are compared.
        for (i, p) in snap.ports[..snap.phys_ports].iter().enumerate() {
            if i != rx_port as usize {
                if let Some(o) = others.get_mut(n) {
                    *o = p.mac.to_u64();
                }
                n += 1;
            }
        }
        let services = !standby && snap.peer_directors.is_empty();
        Some(BurstCtx {
            mine,
            rx_port,
            others,
            scan_others: n > others.len(),
            multi_port: snap.phys_ports > 1,
            services,
            suspect: if services {
                snap.suspect_octets()
            } else {
                &[true; 256]
            },
            last_service: LastService::new(),
            home: match nat {
                Some(t) => t.home_hint(),
                None => table.home_hint(),
            },
            nat: nat.is_some(),
        })
    }

    /// [`Snapshot::is_other_port_mac`] for a frame's source MAC `src` (as
    /// [`mac_at`] reads it): two compares with up to three ports, not a
    /// scan of the snapshot's ports per frame.
    #[inline(always)]
    fn is_other_port_mac(&self, snap: &Snapshot, frame: &[u8], src: u64) -> bool {
        // One predictable test on a single-port director.
        self.multi_port
            && (src == self.others[0]
                || src == self.others[1]
                || (self.scan_others
                    && snap.is_other_port_mac(MacAddr(src_bytes(frame)), self.rx_port)))
    }
}

/// Classify a frame that arrived on `ctx.rx_port` without side effects
/// (only the bucket of the table it is looked up in first, `ctx`'s, is
/// prefetched): write
/// its [`Flow`] into `out` (a burst's slot, so nothing is copied) and return
/// [`Kind::Service`] if it is a plain service packet, [`Kind::NatReply`]
/// for a plain packet that the full classifier would hand to the NAT reply
/// path; `None` for anything else, which the full classifier must look at
/// (see the module documentation).
///
/// The checks, in the full classifier's terms: the port exists; the source
/// MAC is not ours, a group or zero address, or another port's; the
/// destination is this port's MAC; EtherType IPv4; version 4, no options,
/// total length within the frame, header checksum, TTL > 0; the destination
/// is a VIP (implied by the service found last) and the director is not in standby or a two-box
/// pair (`BurstCtx`); the source is not a bad (0/8, 127/8, class D/E), own, VIP or land
/// address; not a fragment; TCP with a sane data offset and a valid flag
/// combination, or UDP with a sane length; a service for (protocol, VIP,
/// port).
#[inline(always)]
pub(crate) fn parse_into(
    snap: &Snapshot,
    ctx: &BurstCtx,
    frame: &[u8],
    out: &mut Flow,
) -> Option<Kind> {
    parse(snap, ctx, frame, out)
}

/// What stage 1 found a frame to be (when not "the full classifier
/// decides").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A service packet: its [`Flow`] is complete.
    Service,
    /// A candidate NAT reply (see [`reply`]): only the flow's `words` (the
    /// packet's own addresses and ports, as they are), `hash` (the reply
    /// key's in the shared NAT table, whose bucket is being prefetched),
    /// `l4` and `l4_end` are set.
    NatReply,
}

#[inline(always)]
fn parse(snap: &Snapshot, ctx: &BurstCtx, frame: &[u8], out: &mut Flow) -> Option<Kind> {
    if frame.len() > u16::MAX as usize {
        return None;
    }
    // The one length check: every read below is at a constant offset.
    let head: &[u8; MIN_FAST] = frame.get(..MIN_FAST)?.try_into().ok()?;
    // The Ethernet header's tests, then the source against the other
    // ports' MACs. (Any frame failing one goes to the full classifier, so
    // the order is only the compiler's concern.)
    if ethernet_refused(head, ctx.mine) || ctx.is_other_port_mac(snap, frame, mac_at(head, 6)) {
        return None;
    }
    let ip: &[u8; ipv4::HEADER_LEN] = head[ETH..ETH + ipv4::HEADER_LEN].try_into().ok()?;
    // The header as the checksum reads it (bytes 0..8 and 8..16 as
    // little-endian words, 16..20), so that fixed fields are tested in
    // those words by masked compares.
    let (w0, w1) = (le_u64(ip, 0), le_u64(ip, 8));
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    // The header checksum; version 4 with a 20-byte header (options: the
    // full path) and neither MF nor a fragment offset (DF may be set), one
    // masked compare of `w0`; a total length covering the header and L4
    // ports, inside the frame (one compare: the frame holds `MIN_FAST`
    // bytes, and a total below the least wraps to a huge number); TTL > 0
    // (`w1`'s low byte).
    if !checksum::ipv4_header_words_ok(w0, w1, le_u32(ip, 16))
        || !version_ihl_unfragmented(w0)
        || total.wrapping_sub(ipv4::HEADER_LEN + 8) > frame.len() - MIN_FAST
        || w1 as u8 == 0
    {
        return None;
    }
    // (source, destination) in one load: the flow key's first word.
    let addrs = u64::from_be_bytes([
        ip[12], ip[13], ip[14], ip[15], ip[16], ip[17], ip[18], ip[19],
    ]);
    let (src_ip, dst_ip) = ((addrs >> 32) as u32, addrs as u32);
    // The destination being a VIP is tested in full by the service
    // lookup below, which answers only for VIPs (the snapshot builds its
    // VIP list from the same keys); the range test here only sends
    // everything else (NAT replies, traffic to our own addresses) to
    // the full classifier early.
    if !snap.in_vip_range(dst_ip) {
        // Not a VIP: perhaps a real server's reply to a NAT connection.
        return reply(snap, ctx, head, addrs, total, out);
    }
    // (`!ctx.services` and `snap.is_suspect_source(src_ip)`, with the
    // first octet's table read first for both.)
    if src_ip == dst_ip
        || (ctx.suspect[(src_ip >> 24) as usize]
            && (!ctx.services || snap.is_suspect_source(src_ip)))
    {
        return None;
    }
    let l4 = ETH + ipv4::HEADER_LEN;
    // The flow's fields are written as soon as they are known, not kept
    // for the end: the slot's stores take the place of the compiler's
    // spills in this large loop body (measured). A frame that fails a test
    // below leaves them in a slot stage 2 does not read (nor does
    // anyone read `out` when the answer is None).
    out.words[0] = addrs;
    out.l4 = l4 as u16;
    out.l4_end = (ETH + total) as u16;
    let proto = ip[9];
    let seg: &[u8; 8] = head[l4..].try_into().ok()?;
    // The L4 header's bytes in the frame (at least 8: `total` above).
    let seg_len = total - ipv4::HEADER_LEN;
    let flags = match proto {
        ipv4::PROTO_TCP => {
            // A data offset of 5 words or more, within the segment; a
            // valid flag combination. (A frame too short for the flags
            // has too short a segment: the full path refuses it.)
            let tcp: &[u8; 14] = frame.get(l4..TCP_FLAGS_END)?.try_into().ok()?;
            let hl = ((tcp[12] >> 4) as usize) * 4;
            let flags = TcpFlags(tcp[13]);
            if hl < 20 || hl > seg_len || !flags.is_valid_combination() {
                return None;
            }
            flags
        }
        ipv4::PROTO_UDP => {
            let len = u16::from_be_bytes([seg[4], seg[5]]) as usize;
            if len < 8 || len > seg_len {
                return None;
            }
            TcpFlags(0)
        }
        _ => return None,
    };
    out.flags = flags;
    // (source port, destination port) in one load; the key is packed
    // here once, as the table stores it.
    let ports = u32::from_be_bytes([seg[0], seg[1], seg[2], seg[3]]);
    let words = ConnKey::words_of_wire(addrs, ports, proto);
    let svc_idx = snap.service_of_words_memo(&words, &ctx.last_service)?;
    // The table the connection is looked up in first: on a NAT
    // director the shared one (`Flow::hash`), chosen for the burst.
    out.hash = ctx.home.hash_and_prefetch(&words);
    out.words[1] = words[1];
    out.svc_idx = svc_idx as u16;
    Some(Kind::Service)
}

/// The full classifier's NAT-reply case, for a frame that passed the
/// Ethernet and IPv4 header checks above and whose destination is outside
/// the VIP range: TCP or UDP, not to one of our addresses, from a source a
/// host can have, on a director with NAT services. Such a frame goes to
/// [`Worker::nat_reply`](super::Worker) with exactly the arguments the full
/// classifier would give it (`out.words` holds the raw (source,
/// destination) and ports; `l4`, `l4_end`). ICMP errors and everything
/// else: the full path.
#[inline(always)]
fn reply(
    snap: &Snapshot,
    ctx: &BurstCtx,
    head: &[u8; MIN_FAST],
    addrs: u64,
    total: usize,
    out: &mut Flow,
) -> Option<Kind> {
    let (src_ip, dst_ip) = ((addrs >> 32) as u32, addrs as u32);
    let proto = head[ETH + 9];
    if !snap.has_nat
        || (proto != ipv4::PROTO_TCP && proto != ipv4::PROTO_UDP)
        || super::bad_source(src_ip)
        || snap.is_own(dst_ip)
    {
        return None;
    }
    let l4 = ETH + ipv4::HEADER_LEN;
    let ports = u32::from_be_bytes([head[l4], head[l4 + 1], head[l4 + 2], head[l4 + 3]]);
    let words = ConnKey::words_of_wire(addrs, ports, proto);
    // The reply key (the packet's 5-tuple, marked) hashed and its bucket
    // prefetched here, so stage 2's lookup finds it in cache. Without a
    // NAT table stage 2 drops the frame before any lookup.
    if ctx.nat {
        out.hash = ctx
            .home
            .hash_and_prefetch(&EntryKind::Reply.mark_words(words));
    }
    out.words = words;
    out.l4 = l4 as u16;
    out.l4_end = (ETH + total) as u16;
    Some(Kind::NatReply)
}

/// Whether the Ethernet header of a frame beginning with `head` fails a
/// test: the EtherType is IPv4; the destination is `mine` (this port's
/// MAC, as [`mac_at`] reads one); the source is not ours, not a group (bit
/// 0 of its first byte) or zero address. Both MACs by one 8-byte load each
/// (`d`: the destination and two bytes of the source; `s`: the source and
/// the EtherType), each compared shifted left by 16 bits, which drops what
/// is not its MAC: no mask to keep in a register.
#[inline(always)]
fn ethernet_refused(head: &[u8; MIN_FAST], mine: u64) -> bool {
    let (d, s) = (le_u64(head, 0), le_u64(head, 6));
    let (dst, src, mine) = (d << 16, s << 16, mine << 16);
    // 0x0800 read little-endian.
    s >> 48 != u64::from(ethernet::ETHERTYPE_IPV4.swap_bytes())
        || dst != mine
        || src == mine
        || s & 1 != 0 // group bit
        || src == 0
}

/// Bytes 0..8 of an IPv4 header (a little-endian word, as the checksum
/// reads it): version 4 with a 20-byte header (byte 0 is 0x45), and
/// neither MF nor a fragment offset (bits 0x3fff of bytes 6..8; DF and the
/// reserved bit may be set). One masked compare for what is, field by
/// field, `h[0] == 0x45 && u16::from_be_bytes([h[6], h[7]]) & 0x3fff == 0`.
#[inline(always)]
fn version_ihl_unfragmented(w0: u64) -> bool {
    // Byte 0 whole; byte 6 (the flags and the offset's high bits) but for
    // DF and the reserved bit; byte 7 (the offset's low bits) whole.
    const MASK: u64 = 0xff3f_0000_0000_00ff;
    w0 & MASK == 0x45
}

/// Bytes `at..at + 8` of `b` as a little-endian word.
#[inline(always)]
fn le_u64<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    let w: [u8; 8] = b[at..at + 8].try_into().expect("8 bytes");
    u64::from_le_bytes(w)
}

/// Bytes `at..at + 4` of `b` as a little-endian `u32`.
#[inline(always)]
fn le_u32(b: &[u8; ipv4::HEADER_LEN], at: usize) -> u32 {
    let w: [u8; 4] = b[at..at + 4].try_into().expect("4 bytes");
    u32::from_le_bytes(w)
}

/// The source MAC's octets (for the rare multi-port check).
#[inline]
fn src_bytes(frame: &[u8]) -> [u8; 6] {
    [frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// The masked compare of the first word says what the field tests
        /// say, on random headers and on ones near the accepted value.
        #[test]
        fn version_ihl_unfragmented_is_the_field_tests(
            mut h in proptest::array::uniform20(any::<u8>()),
            near in any::<bool>(),
            flags in any::<u8>(),
        ) {
            if near {
                h[0] = 0x45;
                h[6] = flags;
                h[7] = if flags & 1 == 0 { 0 } else { h[7] };
            }
            let fields = h[0] == 0x45 && u16::from_be_bytes([h[6], h[7]]) & 0x3fff == 0;
            prop_assert_eq!(version_ihl_unfragmented(le_u64(&h, 0)), fields);
            prop_assert_eq!(le_u64(&h, 8) as u8 == 0, h[8] == 0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// The shifted compares say what the field tests say, on random
        /// headers and on ones near the accepted value (the destination
        /// ours, the EtherType IPv4, the source ours, zero or a group).
        #[test]
        fn ethernet_refused_is_the_field_tests(
            bytes in proptest::collection::vec(any::<u8>(), MIN_FAST),
            mine in proptest::array::uniform6(any::<u8>()),
            near in 0u8..8,
        ) {
            let mut head: [u8; MIN_FAST] = bytes.try_into().unwrap();
            if near & 1 != 0 {
                head[..6].copy_from_slice(&mine);
            }
            if near & 2 != 0 {
                head[12..14].copy_from_slice(&ethernet::ETHERTYPE_IPV4.to_be_bytes());
            }
            match near >> 2 {
                1 => head[6..12].copy_from_slice(&mine),
                2 => head[6..12].fill(0),
                3 => head[6] |= 1,
                _ => {}
            }
            let mine = MacAddr(mine).to_u64();
            let (dst, src) = (mac_at(&head, 0), mac_at(&head, 6));
            let fields = head[12..14] == ethernet::ETHERTYPE_IPV4.to_be_bytes()
                && dst == mine
                && src != mine
                && src & 1 == 0
                && src != 0;
            prop_assert_eq!(ethernet_refused(&head, mine), !fields);
        }
    }

    #[test]
    fn version_ihl_unfragmented_edges() {
        let mut h = [0u8; 20];
        h[0] = 0x45;
        assert!(version_ihl_unfragmented(le_u64(&h, 0)));
        for (b6, b7, ok) in [
            (0x40, 0, true), // DF
            (0x80, 0, true), // the reserved bit (the full path decides)
            (0xc0, 0, true),
            (0x20, 0, false), // MF
            (0x01, 0, false), // offset, high bits
            (0, 0x01, false), // offset, low bits
            (0x1f, 0xff, false),
        ] {
            h[6] = b6;
            h[7] = b7;
            assert_eq!(version_ihl_unfragmented(le_u64(&h, 0)), ok, "{b6:x} {b7:x}");
        }
        h[6] = 0;
        h[7] = 0;
        for v in [0x44, 0x46, 0x4f, 0x55, 0x65, 0x05, 0x00] {
            h[0] = v;
            assert!(!version_ihl_unfragmented(le_u64(&h, 0)), "{v:x}");
        }
    }
}
