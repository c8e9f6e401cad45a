//! Neighbour Discovery (RFC 4861): Neighbour Solicitation and
//! Advertisement, the IPv6 counterparts of ARP requests and replies.
//!
//! ```text
//!  0       8      16              32
//! +-------+-------+---------------+
//! | type  | code  |   checksum    |   type 135 (NS) or 136 (NA)
//! +-------+-------+---------------+
//! |R|S|O|       reserved          |   flags: NA only (NS: all reserved)
//! +-------------------------------+
//! |     target address (16)       |
//! +-------------------------------+
//! | options: type, length (in 8-  |   source (1) / target (2)
//! | byte units, never 0), data    |   link-layer address, ...
//! ```
//!
//! Views cover exactly the ICMPv6 message. [`parse`] adds the validity
//! checks of RFC 4861 §7.1, which need the IPv6 header's fields too. The
//! builders write whole Ethernet frames, ready to send.

use std::net::Ipv6Addr;

use super::bytes::{get_ipv6, get_mac};
use super::ethernet::{self, EthernetFrame, ETHERTYPE_IPV6};
use super::icmpv6::{self, Icmpv6Packet, ICMPV6_NEIGHBOR_ADVERT, ICMPV6_NEIGHBOR_SOLICIT};
use super::ipv6::{
    self, is_solicited_node, multicast_mac, solicited_node, ALL_NODES, PROTO_ICMPV6,
};
use lb_api::mac::MacAddr;

/// Length of an NS or NA message without options.
pub const MSG_LEN: usize = 24;
/// Option type: source link-layer address.
pub const OPT_SOURCE_LLA: u8 = 1;
/// Option type: target link-layer address.
pub const OPT_TARGET_LLA: u8 = 2;
/// Length of a link-layer address option for Ethernet (RFC 2464 §6): one
/// 8-byte unit (type, length, 6-byte MAC).
pub const LLA_OPT_LEN: usize = 8;
/// Hop limit of every Neighbour Discovery message: 255 proves it was not
/// forwarded by a router (RFC 4861 §7.1).
pub const HOP_LIMIT: u8 = 255;
/// Length of the frames the builders write: Ethernet (14) + IPv6 (40) +
/// message (24) + one link-layer address option (8).
pub const FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + MSG_LEN + LLA_OPT_LEN;

/// NA flag: the sender is a router.
pub const FLAG_ROUTER: u8 = 0x80;
/// NA flag: sent in response to a solicitation.
pub const FLAG_SOLICITED: u8 = 0x40;
/// NA flag: override an existing cache entry.
pub const FLAG_OVERRIDE: u8 = 0x20;

mod field {
    pub const FLAGS: usize = 4;
    pub const TARGET: usize = 8;
    pub const OPTIONS: usize = 24;
}

/// Why a Neighbour Discovery message is invalid (RFC 4861 §7.1.1, §7.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum NdpError {
    /// The message is neither an NS (135) nor an NA (136) (or, for a view's
    /// `new_checked`, not the view's type).
    #[error("not a neighbour solicitation or advertisement")]
    NotNeighbor,
    /// Shorter than 24 bytes.
    #[error("neighbour discovery message shorter than 24 bytes")]
    Truncated,
    /// The IPv6 hop limit is not 255 (the message crossed a router).
    #[error("neighbour discovery hop limit is not 255")]
    BadHopLimit,
    /// The ICMPv6 code is not 0.
    #[error("neighbour discovery code is not 0")]
    BadCode,
    /// The ICMPv6 checksum is wrong.
    #[error("bad ICMPv6 checksum")]
    BadChecksum,
    /// The target address is a multicast address.
    #[error("neighbour discovery target is multicast")]
    MulticastTarget,
    /// An option has length 0 or runs past the message.
    #[error("malformed neighbour discovery option")]
    BadOption,
    /// An NS from the unspecified address carries a source link-layer
    /// address option.
    #[error("solicitation from :: with a source link-layer address")]
    SourceLlaFromUnspecified,
    /// An NS from the unspecified address is not sent to a solicited-node
    /// multicast address.
    #[error("solicitation from :: not to a solicited-node address")]
    UnspecifiedNotToSolicitedNode,
    /// An NA to a multicast address has the solicited flag set.
    #[error("solicited advertisement to a multicast address")]
    SolicitedToMulticast,
}

impl NdpError {
    /// Every variant, in declaration order (`ALL[e.index()] == e`).
    pub const ALL: [NdpError; 10] = [
        NdpError::NotNeighbor,
        NdpError::Truncated,
        NdpError::BadHopLimit,
        NdpError::BadCode,
        NdpError::BadChecksum,
        NdpError::MulticastTarget,
        NdpError::BadOption,
        NdpError::SourceLlaFromUnspecified,
        NdpError::UnspecifiedNotToSolicitedNode,
        NdpError::SolicitedToMulticast,
    ];

    /// A stable snake_case name, suitable as a counter / metric label.
    #[inline]
    pub const fn as_str(self) -> &'static str {
        match self {
            NdpError::NotNeighbor => "not_neighbor",
            NdpError::Truncated => "truncated",
            NdpError::BadHopLimit => "bad_hop_limit",
            NdpError::BadCode => "bad_code",
            NdpError::BadChecksum => "bad_checksum",
            NdpError::MulticastTarget => "multicast_target",
            NdpError::BadOption => "bad_option",
            NdpError::SourceLlaFromUnspecified => "source_lla_from_unspecified",
            NdpError::UnspecifiedNotToSolicitedNode => "unspecified_not_to_solicited_node",
            NdpError::SolicitedToMulticast => "solicited_to_multicast",
        }
    }

    /// Position of the variant in [`NdpError::ALL`].
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// An option of a Neighbour Discovery message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdpOption<'a> {
    /// Option type ([`OPT_SOURCE_LLA`], [`OPT_TARGET_LLA`], ...).
    pub kind: u8,
    /// The whole option, type and length bytes included (a multiple of 8
    /// bytes on a well-formed message).
    pub bytes: &'a [u8],
}

impl NdpOption<'_> {
    /// The Ethernet address of a link-layer address option of length 1
    /// (either kind); `None` for other options and lengths.
    #[inline]
    pub fn mac(&self) -> Option<MacAddr> {
        (self.bytes.len() == LLA_OPT_LEN && matches!(self.kind, OPT_SOURCE_LLA | OPT_TARGET_LLA))
            .then(|| get_mac(self.bytes, 2))
    }
}

/// The options of a message, in order. Stops at the first malformed one
/// (length 0 or past the end), which a checked view never has.
#[derive(Debug, Clone)]
pub struct NdpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = NdpOption<'a>;

    #[inline]
    fn next(&mut self) -> Option<NdpOption<'a>> {
        let len = usize::from(*self.rest.get(1)?) * 8;
        if len == 0 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(NdpOption {
            kind: bytes[0],
            bytes,
        })
    }
}

/// Whether the options in `opts` are well formed: each has a length byte,
/// a length of at least one unit, and fits in `opts`.
fn options_well_formed(mut opts: &[u8]) -> bool {
    // Bounded: each pass consumes at least 8 bytes.
    while !opts.is_empty() {
        let Some(&units) = opts.get(1) else {
            return false;
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > opts.len() {
            return false;
        }
        opts = &opts[len..];
    }
    true
}

/// The first link-layer address option of `kind` with an Ethernet address.
#[inline]
fn find_lla(msg: &[u8], kind: u8) -> Option<MacAddr> {
    options_of(msg)
        .find(|o| o.kind == kind)
        .and_then(|o| o.mac())
}

#[inline]
fn options_of(msg: &[u8]) -> NdpOptions<'_> {
    NdpOptions {
        rest: msg.get(field::OPTIONS..).unwrap_or(&[]),
    }
}

/// Structural checks shared by both views.
fn check_structure(msg: &[u8], msg_type: u8) -> Result<(), NdpError> {
    if msg.first() != Some(&msg_type) {
        return Err(if msg.is_empty() {
            NdpError::Truncated
        } else {
            NdpError::NotNeighbor
        });
    }
    if msg.len() < MSG_LEN {
        return Err(NdpError::Truncated);
    }
    if !options_well_formed(&msg[field::OPTIONS..]) {
        return Err(NdpError::BadOption);
    }
    Ok(())
}

macro_rules! common_accessors {
    ($view:ident) => {
        impl<T: AsRef<[u8]>> $view<T> {
            /// Wraps `buffer` (exactly the ICMPv6 message) without
            /// validation. Accessors panic if it is shorter than 24 bytes.
            #[inline]
            pub const fn new_unchecked(buffer: T) -> Self {
                $view { buffer }
            }

            /// Unwraps the underlying buffer.
            #[inline]
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The whole message.
            #[inline]
            pub fn as_bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }

            /// The message as an ICMPv6 view (type, code, checksum).
            #[inline]
            pub fn icmp(&self) -> Icmpv6Packet<&[u8]> {
                Icmpv6Packet::new_unchecked(self.buffer.as_ref())
            }

            /// Target address.
            #[inline]
            pub fn target(&self) -> Ipv6Addr {
                get_ipv6(self.buffer.as_ref(), field::TARGET)
            }

            /// The options, in order.
            #[inline]
            pub fn options(&self) -> NdpOptions<'_> {
                options_of(self.buffer.as_ref())
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            /// Sets the target address.
            #[inline]
            pub fn set_target(&mut self, ip: Ipv6Addr) {
                self.buffer.as_mut()[field::TARGET..field::TARGET + 16]
                    .copy_from_slice(&ip.octets());
            }
        }
    };
}

/// A view of a Neighbour Solicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborSolicit<T: AsRef<[u8]>> {
    buffer: T,
}

common_accessors!(NeighborSolicit);

impl<T: AsRef<[u8]>> NeighborSolicit<T> {
    /// Wraps `buffer` (exactly the ICMPv6 message), checking its structure
    /// only: see [`parse`] for the RFC 4861 validity checks.
    ///
    /// # Errors
    /// [`NdpError::NotNeighbor`] if the type is not 135,
    /// [`NdpError::Truncated`] if shorter than 24 bytes,
    /// [`NdpError::BadOption`] if an option is malformed.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, NdpError> {
        check_structure(buffer.as_ref(), ICMPV6_NEIGHBOR_SOLICIT)?;
        Ok(NeighborSolicit { buffer })
    }

    /// The sender's link-layer address (source LLA option), if given.
    #[inline]
    pub fn source_lla(&self) -> Option<MacAddr> {
        find_lla(self.buffer.as_ref(), OPT_SOURCE_LLA)
    }
}

/// A view of a Neighbour Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborAdvert<T: AsRef<[u8]>> {
    buffer: T,
}

common_accessors!(NeighborAdvert);

impl<T: AsRef<[u8]>> NeighborAdvert<T> {
    /// Wraps `buffer` (exactly the ICMPv6 message), checking its structure
    /// only: see [`parse`] for the RFC 4861 validity checks.
    ///
    /// # Errors
    /// [`NdpError::NotNeighbor`] if the type is not 136,
    /// [`NdpError::Truncated`] if shorter than 24 bytes,
    /// [`NdpError::BadOption`] if an option is malformed.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, NdpError> {
        check_structure(buffer.as_ref(), ICMPV6_NEIGHBOR_ADVERT)?;
        Ok(NeighborAdvert { buffer })
    }

    /// The flags byte ([`FLAG_ROUTER`] | [`FLAG_SOLICITED`] |
    /// [`FLAG_OVERRIDE`]; the five low bits are reserved).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Router flag.
    #[inline]
    pub fn router(&self) -> bool {
        self.flags() & FLAG_ROUTER != 0
    }

    /// Solicited flag.
    #[inline]
    pub fn solicited(&self) -> bool {
        self.flags() & FLAG_SOLICITED != 0
    }

    /// Override flag.
    #[inline]
    pub fn override_flag(&self) -> bool {
        self.flags() & FLAG_OVERRIDE != 0
    }

    /// The target's link-layer address (target LLA option), if given.
    #[inline]
    pub fn target_lla(&self) -> Option<MacAddr> {
        find_lla(self.buffer.as_ref(), OPT_TARGET_LLA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NeighborAdvert<T> {
    /// Sets the flags byte (and clears the reserved bits after it).
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        let b = self.buffer.as_mut();
        b[field::FLAGS] = flags;
        b[field::FLAGS + 1..field::TARGET].fill(0);
    }
}

/// A valid Neighbour Discovery message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neighbor<'a> {
    /// A Neighbour Solicitation.
    Solicit(NeighborSolicit<&'a [u8]>),
    /// A Neighbour Advertisement.
    Advert(NeighborAdvert<&'a [u8]>),
}

/// Validates the ICMPv6 message `msg` of an IPv6 packet from `src` to `dst`
/// with hop limit `hop_limit` as an NS or NA (RFC 4861 §7.1.1 and §7.1.2).
///
/// # Errors
/// In order of checking: [`NdpError::NotNeighbor`] (type not 135 / 136;
/// an empty message is [`NdpError::Truncated`]), [`NdpError::Truncated`]
/// (< 24 bytes), [`NdpError::BadHopLimit`], [`NdpError::BadCode`],
/// [`NdpError::BadChecksum`], [`NdpError::MulticastTarget`],
/// [`NdpError::BadOption`]; then for an NS from `::`,
/// [`NdpError::UnspecifiedNotToSolicitedNode`] and
/// [`NdpError::SourceLlaFromUnspecified`]; for an NA to a multicast
/// address, [`NdpError::SolicitedToMulticast`].
pub fn parse(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    msg: &[u8],
) -> Result<Neighbor<'_>, NdpError> {
    let msg_type = *msg.first().ok_or(NdpError::Truncated)?;
    if msg_type != ICMPV6_NEIGHBOR_SOLICIT && msg_type != ICMPV6_NEIGHBOR_ADVERT {
        return Err(NdpError::NotNeighbor);
    }
    if msg.len() < MSG_LEN {
        return Err(NdpError::Truncated);
    }
    if hop_limit != HOP_LIMIT {
        return Err(NdpError::BadHopLimit);
    }
    let icmp = Icmpv6Packet::new_unchecked(msg);
    if icmp.code() != 0 {
        return Err(NdpError::BadCode);
    }
    if !icmp.verify_checksum(src, dst) {
        return Err(NdpError::BadChecksum);
    }
    if get_ipv6(msg, field::TARGET).is_multicast() {
        return Err(NdpError::MulticastTarget);
    }
    if !options_well_formed(&msg[field::OPTIONS..]) {
        return Err(NdpError::BadOption);
    }
    if msg_type == ICMPV6_NEIGHBOR_SOLICIT {
        let ns = NeighborSolicit::new_unchecked(msg);
        if src.is_unspecified() {
            if !is_solicited_node(dst) {
                return Err(NdpError::UnspecifiedNotToSolicitedNode);
            }
            if ns.options().any(|o| o.kind == OPT_SOURCE_LLA) {
                return Err(NdpError::SourceLlaFromUnspecified);
            }
        }
        Ok(Neighbor::Solicit(ns))
    } else {
        let na = NeighborAdvert::new_unchecked(msg);
        if dst.is_multicast() && na.solicited() {
            return Err(NdpError::SolicitedToMulticast);
        }
        Ok(Neighbor::Advert(na))
    }
}

/// Writes Ethernet + IPv6 + an NS/NA message with one link-layer address
/// option carrying `src_mac`; returns [`FRAME_LEN`].
#[allow(clippy::too_many_arguments)]
fn build(
    buf: &mut [u8],
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    msg_type: u8,
    flags: u8,
    target: Ipv6Addr,
) -> usize {
    assert!(
        buf.len() >= FRAME_LEN,
        "ndp: buffer shorter than {FRAME_LEN} bytes"
    );
    let frame = &mut buf[..FRAME_LEN];
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    eth.set_dst(dst_mac);
    eth.set_src(src_mac);
    eth.set_ethertype(ETHERTYPE_IPV6);
    let ip = &mut frame[ethernet::HEADER_LEN..];
    let msg_len = MSG_LEN + LLA_OPT_LEN;
    ipv6::emit_header(ip, src_ip, dst_ip, PROTO_ICMPV6, HOP_LIMIT, msg_len as u16);
    let msg = &mut ip[ipv6::HEADER_LEN..];
    msg[..4].copy_from_slice(&[msg_type, 0, 0, 0]);
    msg[field::FLAGS..field::TARGET].copy_from_slice(&[flags, 0, 0, 0]);
    msg[field::TARGET..field::OPTIONS].copy_from_slice(&target.octets());
    let opt = if msg_type == ICMPV6_NEIGHBOR_SOLICIT {
        OPT_SOURCE_LLA
    } else {
        OPT_TARGET_LLA
    };
    msg[field::OPTIONS] = opt;
    msg[field::OPTIONS + 1] = 1;
    msg[field::OPTIONS + 2..msg_len].copy_from_slice(&src_mac.0);
    Icmpv6Packet::new_unchecked(msg).fill_checksum(src_ip, dst_ip);
    FRAME_LEN
}

/// Writes a Neighbour Solicitation frame asking for `target`'s MAC into
/// `buf` and returns its length ([`FRAME_LEN`]): from `our_mac` /
/// `our_ip` to `target`'s solicited-node address (and its multicast MAC),
/// hop limit 255, with our source link-layer address option.
///
/// # Panics
/// If `buf` is shorter than [`FRAME_LEN`].
pub fn build_ns(buf: &mut [u8], our_mac: MacAddr, our_ip: Ipv6Addr, target: Ipv6Addr) -> usize {
    let group = solicited_node(target);
    let mac = multicast_mac(group);
    build(
        buf,
        our_mac,
        mac,
        our_ip,
        group,
        ICMPV6_NEIGHBOR_SOLICIT,
        0,
        target,
    )
}

/// Writes the Neighbour Advertisement answering a solicitation for our
/// address `target` (a VIP or an own address) into `buf` and returns its
/// length ([`FRAME_LEN`]). It comes from `target` and `our_mac`, with
/// override set and our target link-layer address option. To an asker at
/// `asker_ip` / `asker_mac` it is solicited (S=1); an asker at `::`
/// (duplicate address detection) is answered at all-nodes (ff02::1,
/// 33:33:00:00:00:01) with S=0 (RFC 4861 §7.2.4).
///
/// # Panics
/// If `buf` is shorter than [`FRAME_LEN`].
pub fn build_solicited_na(
    buf: &mut [u8],
    our_mac: MacAddr,
    target: Ipv6Addr,
    asker_mac: MacAddr,
    asker_ip: Ipv6Addr,
) -> usize {
    if asker_ip.is_unspecified() {
        return build_unsolicited_na(buf, our_mac, target);
    }
    let flags = FLAG_SOLICITED | FLAG_OVERRIDE;
    build(
        buf,
        our_mac,
        asker_mac,
        target,
        asker_ip,
        ICMPV6_NEIGHBOR_ADVERT,
        flags,
        target,
    )
}

/// Writes an unsolicited Neighbour Advertisement for our address `target`
/// (sent on taking over a VIP, like a gratuitous ARP) into `buf` and
/// returns its length ([`FRAME_LEN`]): from `target` / `our_mac` to
/// all-nodes (ff02::1, 33:33:00:00:00:01), S=0, O=1, with our target
/// link-layer address option.
///
/// # Panics
/// If `buf` is shorter than [`FRAME_LEN`].
pub fn build_unsolicited_na(buf: &mut [u8], our_mac: MacAddr, target: Ipv6Addr) -> usize {
    build(
        buf,
        our_mac,
        multicast_mac(ALL_NODES),
        target,
        ALL_NODES,
        ICMPV6_NEIGHBOR_ADVERT,
        FLAG_OVERRIDE,
        target,
    )
}

/// Whether the ICMPv6 message type `msg_type` is one this module handles
/// (NS or NA).
#[inline]
pub const fn is_neighbor_type(msg_type: u8) -> bool {
    matches!(
        msg_type,
        icmpv6::ICMPV6_NEIGHBOR_SOLICIT | icmpv6::ICMPV6_NEIGHBOR_ADVERT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const HOST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    /// The NS 2001:db8::1 (02:00:00:00:00:01) sends for 2001:db8::2, written
    /// out by hand from RFC 4861 §4.3 (checksum computed separately).
    const NS_FRAME: [u8; FRAME_LEN] = [
        0x33, 0x33, 0xff, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd, // ethernet
        0x60, 0, 0, 0, 0, 32, 58, 255, // ipv6: payload 32, ICMPv6, hop 255
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // src
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2, // dst
        135, 0, 0x1c, 0x27, 0, 0, 0, 0, // NS, checksum, reserved
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // target
        1, 1, 2, 0, 0, 0, 0, 1, // source LLA option
    ];

    /// The solicited NA 2001:db8::2 (02:00:00:00:00:02) answers it with.
    const NA_FRAME: [u8; FRAME_LEN] = [
        2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd, // ethernet
        0x60, 0, 0, 0, 0, 32, 58, 255, // ipv6
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // dst
        136, 0, 0x8a, 0x71, 0x60, 0, 0, 0, // NA, checksum, S|O
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // target
        2, 1, 2, 0, 0, 0, 0, 2, // target LLA option
    ];

    fn msg(frame: &[u8]) -> &[u8] {
        &frame[ethernet::HEADER_LEN + ipv6::HEADER_LEN..]
    }

    #[test]
    fn builds_the_rfc_frames() {
        let mut buf = [0xee; FRAME_LEN + 4];
        assert_eq!(build_ns(&mut buf, HOST_MAC, HOST, VIP), FRAME_LEN);
        assert_eq!(buf[..FRAME_LEN], NS_FRAME);
        assert_eq!(buf[FRAME_LEN..], [0xee; 4]);
        assert_eq!(
            build_solicited_na(&mut buf, OUR_MAC, VIP, HOST_MAC, HOST),
            FRAME_LEN
        );
        assert_eq!(buf[..FRAME_LEN], NA_FRAME);
    }

    #[test]
    fn parses_the_rfc_frames() {
        let group = solicited_node(VIP);
        let Ok(Neighbor::Solicit(ns)) = parse(HOST, group, 255, msg(&NS_FRAME)) else {
            panic!("NS not parsed");
        };
        assert_eq!(ns.target(), VIP);
        assert_eq!(ns.source_lla(), Some(HOST_MAC));
        assert_eq!(ns.icmp().msg_type(), ICMPV6_NEIGHBOR_SOLICIT);
        assert_eq!(ns.options().count(), 1);
        let Ok(Neighbor::Advert(na)) = parse(VIP, HOST, 255, msg(&NA_FRAME)) else {
            panic!("NA not parsed");
        };
        assert_eq!(na.target(), VIP);
        assert_eq!(na.target_lla(), Some(OUR_MAC));
        assert!(na.solicited() && na.override_flag() && !na.router());
        assert_eq!(na.flags(), FLAG_SOLICITED | FLAG_OVERRIDE);
        // Views: structure only.
        assert!(NeighborSolicit::new_checked(msg(&NS_FRAME)).is_ok());
        assert_eq!(
            NeighborAdvert::new_checked(msg(&NS_FRAME)),
            Err(NdpError::NotNeighbor)
        );
        assert_eq!(
            NeighborSolicit::new_checked(&msg(&NS_FRAME)[..23]),
            Err(NdpError::Truncated)
        );
        assert_eq!(
            NeighborSolicit::new_checked(&[][..]),
            Err(NdpError::Truncated)
        );
        assert_eq!(
            NeighborSolicit::new_checked(&msg(&NS_FRAME)[..25]),
            Err(NdpError::BadOption)
        );
    }

    /// Re-sums the message after an edit, so that the check under test is
    /// the one that fails.
    fn resum(m: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) {
        Icmpv6Packet::new_unchecked(m).fill_checksum(src, dst);
    }

    #[test]
    fn rfc4861_validity_checks() {
        let group = solicited_node(VIP);
        let ns = msg(&NS_FRAME).to_vec();
        let check = |src, dst, hop, m: &[u8]| parse(src, dst, hop, m).map(|_| ());
        assert_eq!(check(HOST, group, 255, &ns), Ok(()));
        assert_eq!(check(HOST, group, 64, &ns), Err(NdpError::BadHopLimit));
        assert_eq!(check(HOST, group, 255, &ns[..20]), Err(NdpError::Truncated));
        assert_eq!(check(HOST, group, 255, &[]), Err(NdpError::Truncated));
        let mut echo = ns.clone();
        echo[0] = 128;
        assert_eq!(check(HOST, group, 255, &echo), Err(NdpError::NotNeighbor));
        // Bad checksum: a flipped bit, or the wrong pseudo-header.
        let mut flipped = ns.clone();
        flipped[30] ^= 1;
        assert_eq!(
            check(HOST, group, 255, &flipped),
            Err(NdpError::BadChecksum)
        );
        assert_eq!(check(VIP, group, 255, &ns), Err(NdpError::BadChecksum));
        let mut code = ns.clone();
        code[1] = 1;
        resum(&mut code, HOST, group);
        assert_eq!(check(HOST, group, 255, &code), Err(NdpError::BadCode));
        let mut mcast = ns.clone();
        mcast[8..24].copy_from_slice(&group.octets());
        resum(&mut mcast, HOST, group);
        assert_eq!(
            check(HOST, group, 255, &mcast),
            Err(NdpError::MulticastTarget)
        );
        let mut zero_opt = ns.clone();
        zero_opt[25] = 0;
        resum(&mut zero_opt, HOST, group);
        assert_eq!(check(HOST, group, 255, &zero_opt), Err(NdpError::BadOption));
        let mut long_opt = ns.clone();
        long_opt[25] = 2;
        resum(&mut long_opt, HOST, group);
        assert_eq!(check(HOST, group, 255, &long_opt), Err(NdpError::BadOption));
        // Duplicate address detection: from ::, to the solicited-node
        // group, without a source LLA.
        let dad_src = Ipv6Addr::UNSPECIFIED;
        let mut dad = ns[..24].to_vec();
        resum(&mut dad, dad_src, group);
        assert_eq!(check(dad_src, group, 255, &dad), Ok(()));
        resum(&mut dad, dad_src, VIP);
        assert_eq!(
            check(dad_src, VIP, 255, &dad),
            Err(NdpError::UnspecifiedNotToSolicitedNode)
        );
        let mut dad_lla = ns.clone();
        resum(&mut dad_lla, dad_src, group);
        assert_eq!(
            check(dad_src, group, 255, &dad_lla),
            Err(NdpError::SourceLlaFromUnspecified)
        );
        // An NA with S=1 must not go to a multicast address.
        let mut na = msg(&NA_FRAME).to_vec();
        resum(&mut na, VIP, ALL_NODES);
        assert_eq!(
            check(VIP, ALL_NODES, 255, &na),
            Err(NdpError::SolicitedToMulticast)
        );
        na[4] = FLAG_OVERRIDE;
        resum(&mut na, VIP, ALL_NODES);
        assert_eq!(check(VIP, ALL_NODES, 255, &na), Ok(()));
    }

    #[test]
    fn unsolicited_and_dad_answers() {
        let mut buf = [0u8; FRAME_LEN];
        for n in [
            build_unsolicited_na(&mut buf, OUR_MAC, VIP),
            build_solicited_na(&mut buf, OUR_MAC, VIP, HOST_MAC, Ipv6Addr::UNSPECIFIED),
        ] {
            assert_eq!(n, FRAME_LEN);
            let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
            assert_eq!(eth.dst(), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
            assert_eq!(eth.src(), OUR_MAC);
            let ip = ipv6::Ipv6Packet::new_checked(eth.payload()).unwrap();
            assert_eq!((ip.src(), ip.dst(), ip.hop_limit()), (VIP, ALL_NODES, 255));
            let Ok(Neighbor::Advert(na)) = parse(ip.src(), ip.dst(), 255, ip.payload()) else {
                panic!("NA not parsed");
            };
            assert_eq!(na.flags(), FLAG_OVERRIDE);
            assert_eq!(na.target(), VIP);
            assert_eq!(na.target_lla(), Some(OUR_MAC));
        }
    }

    #[test]
    fn options_iterate_and_macs() {
        // An unknown option (type 14, nonce, 1 unit) then a source LLA.
        let mut m = msg(&NS_FRAME)[..24].to_vec();
        m.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6, 1, 1, 2, 0, 0, 0, 0, 9]);
        let ns = NeighborSolicit::new_checked(&m[..]).unwrap();
        let kinds: Vec<u8> = ns.options().map(|o| o.kind).collect();
        assert_eq!(kinds, [14, 1]);
        assert_eq!(ns.options().next().unwrap().mac(), None);
        assert_eq!(ns.source_lla(), Some(MacAddr([2, 0, 0, 0, 0, 9])));
        // A two-unit LLA option is not an Ethernet address.
        let mut two = msg(&NS_FRAME)[..24].to_vec();
        two.extend_from_slice(&[1, 2, 2, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]);
        let ns = NeighborSolicit::new_checked(&two[..]).unwrap();
        assert_eq!(ns.source_lla(), None);
        // On an unchecked view the iterator stops at a malformed option.
        let mut bad = msg(&NS_FRAME).to_vec();
        bad[25] = 0;
        assert_eq!(
            NeighborSolicit::new_unchecked(&bad[..]).options().count(),
            0
        );
        bad.truncate(25);
        assert_eq!(
            NeighborSolicit::new_unchecked(&bad[..]).options().count(),
            0
        );
    }

    #[test]
    fn setters() {
        let mut m = msg(&NA_FRAME).to_vec();
        let mut na = NeighborAdvert::new_checked(&mut m[..]).unwrap();
        na.set_flags(FLAG_ROUTER);
        na.set_target(HOST);
        assert!(na.router() && !na.solicited() && !na.override_flag());
        assert_eq!(na.target(), HOST);
        let mut ns = NeighborSolicit::new_unchecked(msg(&NS_FRAME).to_vec());
        ns.set_target(HOST);
        assert_eq!(ns.target(), HOST);
        assert_eq!(ns.into_inner().len(), 32);
        assert!(is_neighbor_type(135) && is_neighbor_type(136) && !is_neighbor_type(134));
    }

    #[test]
    fn error_names_are_dense_and_unique() {
        let mut names: Vec<_> = NdpError::ALL.iter().map(|e| e.as_str()).collect();
        for (i, e) in NdpError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(!e.to_string().is_empty());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NdpError::ALL.len());
    }

    #[test]
    #[should_panic]
    fn short_buffer_panics() {
        build_ns(&mut [0u8; FRAME_LEN - 1], HOST_MAC, HOST, VIP);
    }
}
