//! Cross-view tests for the IPv6 views: robustness on arbitrary bytes,
//! etherparse 0.16 as an independent oracle for IPv6 headers, ICMPv6
//! checksums and extension-header chains, and a model of the
//! extension-header policy built from the chain's own description.

use std::net::Ipv6Addr;

use etherparse::{
    icmpv6::{DestUnreachableCode, TimeExceededCode},
    Ethernet2HeaderSlice, Icmpv6Slice, Icmpv6Type, IpNumber, Ipv6ExtensionsSlice, Ipv6FlowLabel,
    Ipv6Header, Ipv6HeaderSlice, PacketBuilder,
};
use proptest::prelude::*;

use super::icmpv6::{echo_request_to_reply, emit_error};
use super::ipv6::{self as v6, is_solicited_node};
use super::ipv6_ext::{self, walk, MAX_CHAIN_LEN, MAX_HEADERS};
use super::ndp::{self, FRAME_LEN};
use super::*;

// ---------------------------------------------------------------------------
// Robustness: new_checked never panics, and accessors never panic on Ok.
// ---------------------------------------------------------------------------

fn exercise_v6(bytes: &[u8]) {
    let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let b = v6::solicited_node(a);

    if let Ok(p) = Ipv6Packet::new_checked(bytes) {
        let _ = (
            p.version(),
            p.traffic_class(),
            p.dscp(),
            p.ecn(),
            p.flow_label(),
            p.payload_len(),
            p.next_header(),
            p.hop_limit(),
            p.src(),
            p.dst(),
            p.header().len(),
            p.payload().len(),
        );
        if let Ok(u) = ipv6_ext::upper_layer(&p) {
            assert!(u.offset <= p.payload().len());
            let upper = &p.payload()[u.offset..];
            exercise_v6_upper(upper, p.src(), p.dst(), p.hop_limit());
        }
        let mut v = bytes.to_vec();
        let mut q = Ipv6Packet::new_checked(&mut v[..]).unwrap();
        q.set_payload_len(u16::MAX);
        let _ = (q.payload().len(), q.payload_mut().len());
        q.set_flow_label(u32::MAX);
        q.set_traffic_class(0xff);
        assert_eq!(q.version(), 6);
    }
    for nh in [0u8, 6, 43, 60] {
        let _ = walk(nh, bytes);
    }
    exercise_v6_upper(bytes, a, b, 255);
}

fn exercise_v6_upper(bytes: &[u8], src: Ipv6Addr, dst: Ipv6Addr, hop: u8) {
    if let Ok(p) = Icmpv6Packet::new_checked(bytes) {
        let _ = (
            p.msg_type(),
            p.code(),
            p.checksum(),
            p.body_word(),
            p.echo_ident(),
            p.echo_seq(),
            p.mtu(),
            p.pointer(),
            p.body().len(),
            p.payload().len(),
            p.verify_checksum(src, dst),
        );
        let mut v = bytes.to_vec();
        let mut q = Icmpv6Packet::new_checked(&mut v[..]).unwrap();
        q.fill_checksum(src, dst);
        assert!(q.verify_checksum(src, dst));
    }
    if let Ok(ns) = NeighborSolicit::new_checked(bytes) {
        let _ = (ns.target(), ns.source_lla(), ns.options().count());
    }
    if let Ok(na) = NeighborAdvert::new_checked(bytes) {
        let _ = (
            na.target(),
            na.flags(),
            na.target_lla(),
            na.options().count(),
        );
    }
    match ndp::parse(src, dst, hop, bytes) {
        Ok(Neighbor::Solicit(ns)) => {
            assert!(!ns.target().is_multicast());
            let _ = (ns.source_lla(), ns.options().count());
        }
        Ok(Neighbor::Advert(na)) => {
            assert!(!na.target().is_multicast());
            let _ = (na.target_lla(), na.options().count());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Bytes nudged towards an IPv6 header whose payload length fits, and an
/// NDP message after it, so the later checks are reached.
fn plausible_v6() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 40..200),
        any::<u16>(),
        proptest::sample::select(vec![0u8, 6, 17, 43, 44, 58, 59, 60]),
        any::<bool>(),
    )
        .prop_map(|(mut v, pl, nh, ndp_like)| {
            v[0] = 0x60 | (v[0] & 0x0f);
            let room = (v.len() - 40) as u16;
            v[4..6].copy_from_slice(&(pl % (room + 1)).to_be_bytes());
            v[6] = nh;
            if ndp_like && v.len() >= 41 {
                v[6] = 58;
                v[7] = 255;
                v[40] = 135 + (v[40] & 1);
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn v6_views_never_panic_on_random_bytes(v in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise_v6(&v);
    }

    #[test]
    fn v6_views_never_panic_on_plausible_bytes(v in plausible_v6()) {
        exercise_v6(&v);
    }
}

// ---------------------------------------------------------------------------
// IPv6 fixed header against etherparse.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn ipv6_header_matches_etherparse(
        tc in any::<u8>(),
        flow in 0u32..(1 << 20),
        nh in any::<u8>(),
        hop in any::<u8>(),
        src in any::<[u8; 16]>(),
        dst in any::<[u8; 16]>(),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        pad in 0usize..20,
    ) {
        // etherparse writes, we read.
        let h = Ipv6Header {
            traffic_class: tc,
            flow_label: Ipv6FlowLabel::try_new(flow).unwrap(),
            payload_length: payload.len() as u16,
            next_header: IpNumber(nh),
            hop_limit: hop,
            source: src,
            destination: dst,
        };
        let mut buf = Vec::new();
        h.write(&mut buf).unwrap();
        buf.extend_from_slice(&payload);
        buf.resize(buf.len() + pad, 0);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(p.version(), 6);
        prop_assert_eq!(p.traffic_class(), tc);
        prop_assert_eq!(p.flow_label(), flow);
        prop_assert_eq!(p.next_header(), nh);
        prop_assert_eq!(p.hop_limit(), hop);
        prop_assert_eq!(p.src(), Ipv6Addr::from(src));
        prop_assert_eq!(p.dst(), Ipv6Addr::from(dst));
        prop_assert_eq!(p.payload(), &payload[..]);

        // We write, etherparse reads.
        let mut ours = vec![0u8; 40 + payload.len()];
        v6::emit_header(&mut ours, Ipv6Addr::from(src), Ipv6Addr::from(dst), nh, hop,
                        payload.len() as u16);
        let mut q = Ipv6Packet::new_unchecked(&mut ours[..]);
        q.set_traffic_class(tc);
        q.set_flow_label(flow);
        q.payload_mut().copy_from_slice(&payload);
        prop_assert_eq!(&ours[..], &buf[..40 + payload.len()]);
        let e = Ipv6HeaderSlice::from_slice(&ours).unwrap();
        prop_assert_eq!(e.traffic_class(), tc);
        prop_assert_eq!(e.flow_label().value(), flow);
        prop_assert_eq!(e.payload_length() as usize, payload.len());
    }

    #[test]
    fn icmpv6_echo_matches_etherparse(
        macs in any::<([u8; 6], [u8; 6])>(),
        src in any::<[u8; 16]>(),
        dst in any::<[u8; 16]>(),
        id in any::<u16>(),
        seq in any::<u16>(),
        data in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let builder = PacketBuilder::ethernet2(macs.0, macs.1)
            .ipv6(src, dst, 64)
            .icmpv6_echo_request(id, seq);
        let mut frame = Vec::with_capacity(builder.size(data.len()));
        builder.write(&mut frame, &data).unwrap();
        let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));

        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        prop_assert_eq!(eth.ethertype(), ETHERTYPE_IPV6);
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        prop_assert_eq!(ipv6_ext::upper_layer(&ip), Ok(UpperLayer { protocol: PROTO_ICMPV6, offset: 0 }));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        prop_assert_eq!(icmp.msg_type(), ICMPV6_ECHO_REQUEST);
        prop_assert_eq!((icmp.echo_ident(), icmp.echo_seq()), (id, seq));
        prop_assert_eq!(icmp.payload(), &data[..]);
        prop_assert!(icmp.verify_checksum(s, d));
        let theirs = icmp.checksum();

        // Our fill gives etherparse's checksum; our reply is one etherparse
        // accepts.
        let mut msg = ip.payload().to_vec();
        Icmpv6Packet::new_unchecked(&mut msg[..]).fill_checksum(s, d);
        prop_assert_eq!(Icmpv6Packet::new_unchecked(&msg[..]).checksum(), theirs);
        echo_request_to_reply(&mut msg, d, s);
        let e = Icmpv6Slice::from_slice(&msg).unwrap();
        prop_assert!(e.is_checksum_valid(dst, src));
        prop_assert_eq!(e.icmp_type(), Icmpv6Type::EchoReply(etherparse::IcmpEchoHeader { id, seq }));
        prop_assert_eq!(e.payload(), &data[..]);
        // A flipped bit anywhere in the message breaks the checksum.
        let mut bad = msg.clone();
        let i = usize::from(id) % bad.len();
        bad[i] ^= 1 << (seq % 8);
        prop_assert!(!Icmpv6Packet::new_unchecked(&bad[..]).verify_checksum(d, s));
    }

    #[test]
    fn icmpv6_errors_match_etherparse(
        src in any::<[u8; 16]>(),
        dst in any::<[u8; 16]>(),
        kind in 0u8..3,
        code in 0u8..7,
        mtu in any::<u32>(),
        invoking_len in 0usize..1600,
        buf_len in 48usize..1600,
    ) {
        let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
        let invoking: Vec<u8> = (0..invoking_len).map(|i| (i * 7) as u8).collect();
        let err = match kind {
            0 => Icmpv6Error::packet_too_big(mtu),
            1 => Icmpv6Error::dest_unreachable(code),
            _ => Icmpv6Error::hop_limit_exceeded(),
        };
        let mut buf = vec![0u8; buf_len];
        let n = emit_error(&mut buf, s, d, 64, err, &invoking);
        let quoted = invoking_len.min(v6::MIN_MTU - 48).min(buf_len - 48);
        prop_assert_eq!(n, 48 + quoted);
        let h = Ipv6HeaderSlice::from_slice(&buf[..n]).unwrap();
        prop_assert_eq!(h.next_header(), IpNumber(58));
        prop_assert_eq!(usize::from(h.payload_length()), 8 + quoted);
        let e = Icmpv6Slice::from_slice(&buf[40..n]).unwrap();
        prop_assert!(e.is_checksum_valid(src, dst));
        let want = match kind {
            0 => Icmpv6Type::PacketTooBig { mtu },
            1 => Icmpv6Type::DestinationUnreachable(DestUnreachableCode::from_u8(code).unwrap()),
            _ => Icmpv6Type::TimeExceeded(TimeExceededCode::HopLimitExceeded),
        };
        prop_assert_eq!(e.icmp_type(), want);
        prop_assert_eq!(e.payload(), &invoking[..quoted]);
    }

    #[test]
    fn ndp_frames_are_what_etherparse_reads_and_parse_back(
        our_mac in any::<[u8; 6]>(),
        peer_mac in any::<[u8; 6]>(),
        ours in any::<u128>(),
        peer in any::<u128>(),
        which in 0u8..3,
    ) {
        // Unicast addresses (a multicast target is refused by design).
        let ours = Ipv6Addr::from(ours & !(0xff << 120));
        let peer = Ipv6Addr::from(peer & !(0xff << 120));
        let (our_mac, peer_mac) = (MacAddr(our_mac), MacAddr(peer_mac));
        let mut buf = [0u8; FRAME_LEN];
        let n = match which {
            0 => ndp::build_ns(&mut buf, our_mac, ours, peer),
            1 => ndp::build_solicited_na(&mut buf, our_mac, ours, peer_mac, peer),
            _ => ndp::build_unsolicited_na(&mut buf, our_mac, ours),
        };
        prop_assert_eq!(n, FRAME_LEN);
        let eth = Ethernet2HeaderSlice::from_slice(&buf).unwrap();
        prop_assert_eq!(eth.ether_type().0, ETHERTYPE_IPV6);
        prop_assert_eq!(eth.source(), our_mac.0);
        let ip = Ipv6HeaderSlice::from_slice(&buf[14..]).unwrap();
        prop_assert_eq!(ip.hop_limit(), 255);
        prop_assert_eq!(ip.next_header(), IpNumber(58));
        prop_assert_eq!(usize::from(ip.payload_length()), FRAME_LEN - 54);
        let (s, d) = (ip.source_addr(), ip.destination_addr());
        // The Ethernet destination is the IPv6 destination's: its
        // multicast MAC, or the asker's.
        if d.is_multicast() {
            prop_assert_eq!(MacAddr(eth.destination()), v6::multicast_mac(d));
        } else {
            prop_assert_eq!(MacAddr(eth.destination()), peer_mac);
        }
        let e = Icmpv6Slice::from_slice(&buf[54..]).unwrap();
        prop_assert!(e.is_checksum_valid(ip.source(), ip.destination()));

        match ndp::parse(s, d, 255, &buf[54..]) {
            Ok(Neighbor::Solicit(ns)) => {
                prop_assert_eq!(which, 0);
                prop_assert_eq!((s, ns.target()), (ours, peer));
                prop_assert!(is_solicited_node(d));
                prop_assert_eq!(d, v6::solicited_node(peer));
                prop_assert_eq!(ns.source_lla(), Some(our_mac));
            }
            Ok(Neighbor::Advert(na)) => {
                prop_assert_eq!((s, na.target()), (ours, ours));
                prop_assert_eq!(na.target_lla(), Some(our_mac));
                prop_assert!(na.override_flag() && !na.router());
                let solicited = which == 1 && !peer.is_unspecified();
                prop_assert_eq!(na.solicited(), solicited);
                prop_assert_eq!(d, if solicited { peer } else { ALL_NODES });
            }
            Err(e) => prop_assert!(false, "built frame refused: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Extension-header chains: a model from the chain's description, and
// etherparse's walk where the policy lets the packet through.
// ---------------------------------------------------------------------------

/// One header of a generated chain.
#[derive(Debug, Clone, Copy)]
struct Ext {
    /// 0, 43, 44, 50, 51 or 60.
    kind: u8,
    /// Hdr Ext Len (the header is (len + 1) × 8 bytes; 8 for a fragment).
    len: u8,
    /// Routing: segments left.
    segments_left: u8,
}

fn ext() -> impl Strategy<Value = Ext> {
    (
        proptest::sample::select(vec![0u8, 43, 43, 44, 50, 51, 60, 60, 60]),
        prop_oneof![4 => 0u8..3, 1 => any::<u8>()],
        prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
    )
        .prop_map(|(kind, len, segments_left)| Ext {
            kind,
            len,
            segments_left,
        })
}

impl Ext {
    fn size(&self) -> usize {
        match self.kind {
            44 | 50 | 51 => 8,
            _ => (usize::from(self.len) + 1) * 8,
        }
    }
}

/// The bytes of `chain` followed by an upper layer of `upper`.
fn encode(chain: &[Ext], upper: u8) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, e) in chain.iter().enumerate() {
        let next = chain.get(i + 1).map_or(upper, |n| n.kind);
        let start = v.len();
        v.resize(start + e.size(), 0xa5);
        v[start] = next;
        v[start + 1] = if e.kind == 44 { 0 } else { e.len };
        if e.kind == 43 {
            v[start + 3] = e.segments_left;
        }
    }
    v.extend_from_slice(&[0x5a; 20]);
    v
}

/// What the policy in `ipv6_ext` says about `chain` cut to `cut` bytes.
fn model(chain: &[Ext], upper: u8, cut: usize) -> Result<UpperLayer, Ipv6ExtError> {
    let mut offset = 0;
    for (i, e) in chain.iter().enumerate() {
        match e.kind {
            0 if i > 0 => return Err(Ipv6ExtError::HopByHopNotFirst),
            44 => return Err(Ipv6ExtError::Fragment),
            50 | 51 => return Err(Ipv6ExtError::Unsupported(e.kind)),
            _ => {}
        }
        if offset + e.size() > cut {
            return Err(Ipv6ExtError::Truncated);
        }
        if e.kind == 43 && e.segments_left != 0 {
            return Err(Ipv6ExtError::RoutingSegmentsLeft);
        }
        if i == MAX_HEADERS || offset + e.size() > MAX_CHAIN_LEN {
            return Err(Ipv6ExtError::TooMany);
        }
        offset += e.size();
    }
    Ok(UpperLayer {
        protocol: upper,
        offset,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn extension_walk_follows_the_policy(
        chain in proptest::collection::vec(ext(), 0..12),
        upper in proptest::sample::select(vec![6u8, 17, 58, 59, 132]),
        cut in any::<prop::sample::Index>(),
        whole in any::<bool>(),
    ) {
        let bytes = encode(&chain, upper);
        let cut = if whole { bytes.len() } else { cut.index(bytes.len() + 1) };
        let first = chain.first().map_or(upper, |e| e.kind);
        let got = walk(first, &bytes[..cut]);
        prop_assert_eq!(got, model(&chain, upper, cut));

        // Where the policy passes the chain, etherparse finds the same
        // upper layer at the same offset.
        if let Ok(u) = got {
            let (exts, next, rest) = Ipv6ExtensionsSlice::from_slice(IpNumber(first), &bytes[..cut])
                .expect("etherparse refuses a chain we pass");
            prop_assert_eq!(next, IpNumber(u.protocol));
            prop_assert_eq!(exts.slice().len(), u.offset);
            prop_assert_eq!(rest.len(), cut - u.offset);
        }
    }
}

/// The model can fail: it disagrees with a walk that ignored the policy.
#[test]
fn extension_model_catches_a_wrong_walk() {
    let routed = [Ext {
        kind: 43,
        len: 0,
        segments_left: 2,
    }];
    let bytes = encode(&routed, 6);
    assert_eq!(
        model(&routed, 6, bytes.len()),
        Err(Ipv6ExtError::RoutingSegmentsLeft)
    );
    // etherparse alone would have passed it.
    let (_, next, _) = Ipv6ExtensionsSlice::from_slice(IpNumber(43), &bytes).unwrap();
    assert_eq!(next, IpNumber(6));
    assert_eq!(walk(43, &bytes), Err(Ipv6ExtError::RoutingSegmentsLeft));
}
