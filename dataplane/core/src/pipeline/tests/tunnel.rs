//! IPIP tunnel forwarding: mixed with DR, path MTU (fragmentation needed),
//! slices, the per-flow source pool; mutated tunnel frames never panic.

use super::*;
use proptest::prelude::*;

/// A TCP segment client → VIP:80 with `payload` bytes and DF as given.
fn tcp_sized(sport: u16, syn: bool, payload: usize, df: bool) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .tcp(sport, 80, 1000, 65535);
    b = if syn { b.syn() } else { b.ack(1) };
    let mut out = Vec::new();
    b.write(&mut out, &vec![b'x'; payload]).unwrap();
    let mut ip = Ipv4Packet::new_unchecked(&mut out[ETH..]);
    ip.set_dont_frag(df);
    ip.fill_checksum();
    out
}

#[test]
fn tunnel_and_dr_mixed_in_one_service() {
    let mut l = tunnel_lab(("Tunnel", "Dr"), 1500, "");
    for i in 0..6u16 {
        let orig = syn(40000 + 2 * i);
        let mut f = orig.clone();
        assert_eq!(l.w.process_buf(&mut f, 0, 0), Verdict::Tx(0));
        assert_eq!(&f[6..12], &DIR_MAC.0);
        if i % 2 == 0 {
            // rs1 by tunnel: outer header from the port's address.
            assert_eq!(dst_mac(&f), RS1_MAC);
            assert_eq!(f.len(), orig.len() + 20);
            let outer = outer_of(&f, &orig);
            assert_eq!(outer.source(), DIR);
            assert_eq!(outer.destination(), [198, 18, 0, 11]);
            assert_eq!(outer.ttl(), 64);
            assert_eq!(
                outer.dont_fragment(),
                Ipv4Packet::new_unchecked(&orig[ETH..]).dont_frag()
            );
        } else {
            // rs2 by DR: only the MACs change.
            assert_eq!(dst_mac(&f), RS2_MAC);
            assert_eq!(&f[12..], &orig[12..]);
        }
    }
    assert_eq!(l.w.stats().get(Counter::FwdTunnel), 3);
    assert_eq!(l.w.stats().get(Counter::FwdDr), 3);
    // The flow stays in the tunnel; each header gets a fresh ident.
    let orig = ack(40000);
    let mut a = orig.clone();
    let mut b = orig.clone();
    assert_eq!(l.w.process_buf(&mut a, 0, 1), Verdict::Tx(0));
    assert_eq!(l.w.process_buf(&mut b, 0, 2), Verdict::Tx(0));
    let (oa, ob) = (outer_of(&a, &orig), outer_of(&b, &orig));
    assert_ne!(oa.identification(), ob.identification());
    let rs1 = l.w.snapshot().services[0].reals[0].id as usize;
    let st = &l.w.stats().rs[rs1];
    assert_eq!(st.packets.load(std::sync::atomic::Ordering::Relaxed), 5);
}

#[test]
fn tunnel_too_big_with_df_answers_frag_needed() {
    let mut l = tunnel_lab(("Tunnel", "Tunnel"), 1000, "");
    assert_eq!(l.w.process_buf(&mut syn(40000), 0, 0), Verdict::Tx(0));
    // 981 bytes of IP + 20 > 1000; 980 + 20 fits.
    let fits = tcp_sized(40000, false, 980 - 40, true);
    let mut f = fits.clone();
    assert_eq!(l.w.process_buf(&mut f, 0, 1), Verdict::Tx(0));
    outer_of(&f, &fits);
    let orig = tcp_sized(40000, false, 981 - 40, true);
    let mut f = orig.clone();
    assert_eq!(
        l.w.process_buf(&mut f, 0, 2),
        Verdict::Tx(0),
        "back out of the receiving port"
    );
    assert_eq!(dst_mac(&f), CLIENT_MAC);
    assert_eq!(&f[6..12], &DIR_MAC.0);
    let p = SlicedPacket::from_ethernet(&f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header();
    assert_eq!(h.source(), VIP, "from the VIP the client talked to");
    assert_eq!(h.destination(), CLIENT);
    assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
    let Some(etherparse::TransportSlice::Icmpv4(m)) = &p.transport else {
        panic!("not ICMP")
    };
    assert_eq!(
        m.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 980 }
        )
    );
    let sum = etherparse::Icmpv4Header::with_checksum(m.icmp_type(), m.payload()).checksum;
    assert_eq!(m.checksum(), sum);
    // The quoted datagram: the original IP header and 8 bytes (the ports).
    assert_eq!(m.payload(), &orig[ETH..ETH + 28]);
    assert_eq!(f.len(), ETH + 20 + 8 + 28);
    assert_eq!(l.w.stats().get(Counter::IcmpFragNeededSent), 1);
    assert_eq!(l.w.stats().get(Counter::FwdTunnel), 2);
}

#[test]
fn tunnel_too_big_without_df_is_dropped() {
    let mut l = tunnel_lab(("Tunnel", "Tunnel"), 1000, "");
    assert_eq!(l.w.process_buf(&mut syn(40000), 0, 0), Verdict::Tx(0));
    let mut f = tcp_sized(40000, false, 1200, false);
    assert_eq!(
        l.w.process_buf(&mut f, 0, 1),
        Verdict::Drop(Counter::DropTunnelTooBig)
    );
    assert_eq!(l.w.stats().get(Counter::DropTunnelTooBig), 1);
    assert_eq!(l.w.stats().get(Counter::IcmpFragNeededSent), 0);
}

#[test]
fn tunnel_through_a_slice_is_a_counted_drop() {
    let mut l = tunnel_lab(("Tunnel", "Dr"), 1500, "");
    let mut f = syn(40000);
    assert_eq!(
        l.w.process(&mut f, 0, 0),
        Verdict::Drop(Counter::DropTunnelNoHeadroom)
    );
    assert_eq!(l.w.stats().get(Counter::DropTunnelNoHeadroom), 1);
    assert_eq!(l.w.stats().get(Counter::FwdTunnel), 0);
    // DR traffic still goes through a slice.
    assert_eq!(l.w.process(&mut syn(40002), 0, 0), Verdict::Tx(0));
    assert_eq!(l.w.stats().get(Counter::FwdDr), 1);
}

#[test]
fn tunnel_source_pool_is_per_flow_and_spreads() {
    let mut l = tunnel_lab(
        ("Tunnel", "Tunnel"),
        1500,
        r#"source_pool: Some("198.18.0.192/28")"#,
    );
    let mut sources = std::collections::HashSet::new();
    for i in 0..200u16 {
        let sport = 20000 + 2 * i;
        let mut s = syn(sport);
        let mut a = ack(sport);
        assert_eq!(l.w.process_buf(&mut s, 0, 0), Verdict::Tx(0));
        assert_eq!(l.w.process_buf(&mut a, 0, 1), Verdict::Tx(0));
        let src_s = etherparse::Ipv4HeaderSlice::from_slice(&s[ETH..])
            .unwrap()
            .source();
        let src_a = etherparse::Ipv4HeaderSlice::from_slice(&a[ETH..])
            .unwrap()
            .source();
        assert_eq!(src_s, src_a, "one source per flow");
        assert_eq!(&src_s[..3], &[198, 18, 0]);
        assert!((192..208).contains(&src_s[3]), "{src_s:?}");
        sources.insert(src_s);
    }
    assert!(
        sources.len() >= 12,
        "200 flows used {} addresses",
        sources.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn mutated_tunnel_frames_never_panic(pos in 0usize..80, byte in any::<u8>(), cut in 0usize..80, big in 0usize..1400) {
        let mut l = tunnel_lab(("Tunnel", "Dr"), 576, "");
        let mut s = syn(40000);
        let _ = l.w.process_buf(&mut s, 0, 0);
        let mut f = tcp_sized(40000, false, big, byte & 1 == 0);
        if pos < f.len() { f[pos] = byte; }
        let keep = f.len().saturating_sub(cut);
        f.truncate(keep);
        let _ = l.w.process_buf(&mut f, 0, 1);
    }
}
