//! Cross-view tests: robustness on arbitrary bytes, and etherparse 0.16 as an
//! independent oracle for building and checking packets.

use std::net::Ipv4Addr;

use etherparse::{
    IpFragOffset, IpHeaders, IpNumber, Ipv4Dscp, Ipv4Ecn, Ipv4Header, Ipv4Options, LinkSlice,
    NetSlice, PacketBuilder, SlicedPacket, TransportSlice,
};
use proptest::prelude::*;

use super::checksum::{incremental_update16, incremental_update32};
use super::*;

// ---------------------------------------------------------------------------
// Robustness: new_checked never panics, and accessors never panic on Ok.
// ---------------------------------------------------------------------------

fn exercise_all(bytes: &[u8]) {
    let a = Ipv4Addr::new(10, 0, 0, 1);
    let b = Ipv4Addr::new(10, 0, 0, 2);

    if let Ok(f) = EthernetFrame::new_checked(bytes) {
        let _ = (
            f.dst(),
            f.src(),
            f.ethertype(),
            f.payload().len(),
            f.as_bytes().len(),
        );
        let mut v = bytes.to_vec();
        let mut f = EthernetFrame::new_checked(&mut v[..]).unwrap();
        f.set_dst(MacAddr::BROADCAST);
        f.set_src(MacAddr::ZERO);
        f.set_ethertype(ETHERTYPE_VLAN);
        let _ = f.payload_mut().len();
    }

    if let Ok(p) = ArpPacket::new_checked(bytes) {
        let _ = (
            p.hardware_type(),
            p.protocol_type(),
            p.hardware_len(),
            p.protocol_len(),
            p.operation(),
            p.sender_mac(),
            p.sender_ip(),
            p.target_mac(),
            p.target_ip(),
            p.is_gratuitous(),
        );
    }

    if let Ok(p) = Ipv4Packet::new_checked(bytes) {
        let _ = (
            p.version(),
            p.header_len(),
            p.dscp_ecn(),
            p.dscp(),
            p.ecn(),
            p.total_len(),
            p.ident(),
            p.dont_frag(),
            p.more_frags(),
            p.frag_offset(),
            p.is_fragment(),
            p.has_options(),
            p.ttl(),
            p.protocol(),
            p.checksum(),
            p.src(),
            p.dst(),
            p.src_u32(),
            p.dst_u32(),
            p.verify_checksum(),
        );
        assert_eq!(
            p.payload().len(),
            usize::from(p.total_len()) - p.header_len()
        );
        assert_eq!(p.options().len(), p.header_len() - 20);
        assert_eq!(p.header().len(), p.header_len());
        let mut v = bytes.to_vec();
        let mut q = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        q.fill_checksum();
        assert!(q.verify_checksum());
        let _ = (q.payload_mut().len(), q.options_mut().len());
        q.set_ttl(1);
        q.set_src(a);
        q.set_dst(b);
        q.set_ident(1);
        q.set_dont_frag(true);
        q.set_more_frags(true);
        q.set_frag_offset(8);
        q.set_dscp_ecn(1);
        q.set_protocol(PROTO_UDP);
        q.set_checksum(0);
    }

    if let Ok(s) = TcpSegment::new_checked(bytes) {
        let f = s.flags();
        let _ = (
            s.src_port(),
            s.dst_port(),
            s.seq(),
            s.ack(),
            s.header_len(),
            f.fin(),
            f.syn(),
            f.rst(),
            f.psh(),
            f.ack(),
            f.urg(),
            f.to_string(),
            s.window(),
            s.checksum(),
            s.urgent(),
            s.options().len(),
            s.payload().len(),
            s.verify_checksum(a, b),
        );
        assert_eq!(s.options().len() + s.payload().len() + 20, bytes.len());
        let mut v = bytes.to_vec();
        let mut t = TcpSegment::new_checked(&mut v[..]).unwrap();
        t.fill_checksum(a, b);
        assert!(t.verify_checksum(a, b));
        t.set_src_port(1);
        t.set_dst_port(2);
        t.set_flags(TcpFlags::SYN);
        let _ = (t.payload_mut().len(), t.options_mut().len());
    }

    if let Ok(d) = UdpDatagram::new_checked(bytes) {
        let _ = (
            d.src_port(),
            d.dst_port(),
            d.len(),
            d.checksum(),
            d.verify_checksum(a, b),
        );
        assert_eq!(d.payload().len() + 8, usize::from(d.len()));
        let mut v = bytes.to_vec();
        let mut u = UdpDatagram::new_checked(&mut v[..]).unwrap();
        u.fill_checksum(a, b);
        assert!(u.verify_checksum(a, b));
        assert_ne!(u.checksum(), 0);
        let _ = u.payload_mut().len();
    }

    if let Ok(p) = Icmpv4Packet::new_checked(bytes) {
        let _ = (
            p.msg_type(),
            p.code(),
            p.checksum(),
            p.echo_ident(),
            p.echo_seq(),
            p.rest_of_header(),
            p.next_hop_mtu(),
            p.payload().len(),
            p.verify_checksum(),
        );
        let mut v = bytes.to_vec();
        let mut q = Icmpv4Packet::new_checked(&mut v[..]).unwrap();
        q.fill_checksum();
        assert!(q.verify_checksum());
    }

    // Layered parsing the way the pipeline does it.
    if let Ok(eth) = EthernetFrame::new_checked(bytes) {
        if let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) {
            let _ = TcpSegment::new_checked(ip.payload()).map(|s| s.dst_port());
            let _ = UdpDatagram::new_checked(ip.payload()).map(|s| s.dst_port());
            let _ = Icmpv4Packet::new_checked(ip.payload()).map(|s| s.msg_type());
        }
        let _ = ArpPacket::new_checked(eth.payload()).map(|p| p.target_ip());
    }
}

/// Bytes nudged towards passing the header checks, so the accessor paths get
/// exercised, not just the rejections.
fn plausible() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..200),
        0u8..16,
        any::<u16>(),
        any::<u8>(),
    )
        .prop_map(|(mut v, ihl, tl, k)| {
            let n = v.len() as u16;
            if v.len() >= 4 {
                v[0] = 0x40 | ihl; // IPv4 with some IHL; also a TCP/UDP src port
                let l = if n == 0 { 0 } else { tl % (n + 4) };
                v[2..4].copy_from_slice(&l.to_be_bytes()); // total len / dst port
            }
            if v.len() >= 13 {
                v[4..6].copy_from_slice(&(u16::from(k) % (n + 4)).to_be_bytes()); // UDP len
                v[12] = (k & 0xf0) | (v[12] & 0x0f); // TCP data offset
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn views_never_panic_on_random_bytes(v in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise_all(&v);
    }

    #[test]
    fn views_never_panic_on_plausible_bytes(v in plausible()) {
        exercise_all(&v);
        if v.len() >= 14 {
            // Also as the payload of an Ethernet header.
            let mut f = vec![0u8; 14];
            f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            f.extend_from_slice(&v);
            exercise_all(&f);
        }
    }

    #[test]
    fn arp_never_panics_when_prologue_valid(mut v in proptest::collection::vec(any::<u8>(), 0..64)) {
        if v.len() >= 6 {
            v[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
        }
        let r = ArpPacket::new_checked(&v[..]);
        prop_assert_eq!(r.is_ok(), v.len() >= 28);
        exercise_all(&v);
    }
}

// ---------------------------------------------------------------------------
// etherparse as an oracle.
// ---------------------------------------------------------------------------

fn ip(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

fn flags_of(bits: u8) -> TcpFlags {
    // etherparse's builder supports FIN SYN RST PSH ACK URG; ECE/CWR via header.
    TcpFlags(bits & 0x3f)
}

#[derive(Debug, Clone)]
struct Ipv4Params {
    dscp: u8,
    ecn: u8,
    ident: u16,
    df: bool,
    ttl: u8,
    options: Vec<u8>,
}

fn ipv4_params() -> impl Strategy<Value = Ipv4Params> {
    (
        0u8..64,
        0u8..4,
        any::<u16>(),
        any::<bool>(),
        any::<u8>(),
        0usize..=10,
        any::<[u8; 40]>(),
    )
        .prop_map(|(dscp, ecn, ident, df, ttl, words, opt)| Ipv4Params {
            dscp,
            ecn,
            ident,
            df,
            ttl,
            options: opt[..words * 4].to_vec(),
        })
}

fn ipv4_header(p: &Ipv4Params, src: [u8; 4], dst: [u8; 4]) -> Ipv4Header {
    let mut h = Ipv4Header::new(0, p.ttl, IpNumber(0), src, dst).unwrap();
    h.dscp = Ipv4Dscp::try_new(p.dscp).unwrap();
    h.ecn = Ipv4Ecn::try_new(p.ecn).unwrap();
    h.identification = p.ident;
    h.dont_fragment = p.df;
    h.options = Ipv4Options::try_from(&p.options[..]).unwrap();
    h
}

/// Checks the IPv4 layer of `frame` (built by etherparse from `p`) and
/// returns the parsed view's payload range within the frame.
fn check_ipv4_fields(
    frame: &[u8],
    p: &Ipv4Params,
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    l4_len: usize,
) -> Result<(), TestCaseError> {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    prop_assert_eq!(eth.ethertype(), ETHERTYPE_IPV4);
    let ipv = Ipv4Packet::new_checked(eth.payload()).unwrap();
    prop_assert_eq!(ipv.version(), 4);
    prop_assert_eq!(ipv.header_len(), 20 + p.options.len());
    prop_assert_eq!(ipv.has_options(), !p.options.is_empty());
    prop_assert_eq!(ipv.options(), &p.options[..]);
    prop_assert_eq!(ipv.dscp(), p.dscp);
    prop_assert_eq!(ipv.ecn(), p.ecn);
    prop_assert_eq!(ipv.dscp_ecn(), (p.dscp << 2) | p.ecn);
    prop_assert_eq!(usize::from(ipv.total_len()), 20 + p.options.len() + l4_len);
    prop_assert_eq!(ipv.ident(), p.ident);
    prop_assert_eq!(ipv.dont_frag(), p.df);
    prop_assert!(!ipv.more_frags());
    prop_assert_eq!(ipv.frag_offset(), 0);
    prop_assert!(!ipv.is_fragment());
    prop_assert_eq!(ipv.ttl(), p.ttl);
    prop_assert_eq!(ipv.protocol(), proto);
    prop_assert_eq!(ipv.src(), ip(src));
    prop_assert_eq!(ipv.dst(), ip(dst));
    prop_assert_eq!(ipv.src_u32(), u32::from_be_bytes(src));
    prop_assert_eq!(ipv.dst_u32(), u32::from_be_bytes(dst));
    prop_assert!(ipv.verify_checksum());
    prop_assert_eq!(ipv.payload().len(), l4_len);
    Ok(())
}

/// Returns (ipv4 header checksum ok, transport checksum ok) according to
/// etherparse, plus etherparse's view of the ports.
fn etherparse_verdict(frame: &[u8]) -> (bool, bool, u16, u16) {
    let sp = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(NetSlice::Ipv4(ipv4)) = &sp.net else {
        panic!("not ipv4")
    };
    let h = ipv4.header();
    let ip_ok = h.to_header().calc_header_checksum() == h.header_checksum();
    let (src, dst) = (h.source(), h.destination());
    match sp.transport.as_ref().unwrap() {
        TransportSlice::Tcp(t) => {
            let c = t.calc_checksum_ipv4(src, dst).unwrap();
            (
                ip_ok,
                c == t.checksum(),
                t.source_port(),
                t.destination_port(),
            )
        }
        TransportSlice::Udp(u) => {
            let c = u
                .to_header()
                .calc_checksum_ipv4_raw(src, dst, u.payload())
                .unwrap();
            (
                ip_ok,
                c == u.checksum(),
                u.source_port(),
                u.destination_port(),
            )
        }
        _ => panic!("unexpected transport"),
    }
}

#[allow(clippy::too_many_arguments)]
fn build_tcp(
    macs: ([u8; 6], [u8; 6]),
    p: &Ipv4Params,
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    seq: u32,
    ack: u32,
    window: u16,
    flags: TcpFlags,
    urgent: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(macs.0, macs.1)
        .ip(IpHeaders::Ipv4(
            ipv4_header(p, src, dst),
            Default::default(),
        ))
        .tcp(ports.0, ports.1, seq, window);
    if flags.fin() {
        b = b.fin();
    }
    if flags.syn() {
        b = b.syn();
    }
    if flags.rst() {
        b = b.rst();
    }
    if flags.psh() {
        b = b.psh();
    }
    if flags.ack() {
        b = b.ack(ack);
    }
    if flags.urg() {
        b = b.urg(urgent);
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn tcp_matches_etherparse(
        macs in any::<([u8; 6], [u8; 6])>(),
        p in ipv4_params(),
        src in any::<[u8; 4]>(),
        dst in any::<[u8; 4]>(),
        ports in any::<(u16, u16)>(),
        seq in any::<u32>(),
        ack in any::<u32>(),
        window in any::<u16>(),
        flag_bits in any::<u8>(),
        urgent in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..120),
        pad in 0usize..20,
        new_src in any::<[u8; 4]>(),
        new_port in any::<u16>(),
        new_ttl in any::<u8>(),
    ) {
        let flags = flags_of(flag_bits);
        let mut frame = build_tcp(macs, &p, src, dst, ports, seq, ack, window, flags, urgent, &payload);
        frame.resize(frame.len() + pad, 0); // Ethernet padding
        check_ipv4_fields(&frame, &p, src, dst, PROTO_TCP, 20 + payload.len())?;

        {
            let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
            prop_assert_eq!(eth.src(), MacAddr(macs.0));
            prop_assert_eq!(eth.dst(), MacAddr(macs.1));
            let ipv = Ipv4Packet::new_checked(eth.payload()).unwrap();
            let tcp = TcpSegment::new_checked(ipv.payload()).unwrap();
            prop_assert_eq!(tcp.src_port(), ports.0);
            prop_assert_eq!(tcp.dst_port(), ports.1);
            prop_assert_eq!(tcp.seq(), seq);
            prop_assert_eq!(tcp.ack(), if flags.ack() { ack } else { 0 });
            prop_assert_eq!(tcp.header_len(), 20);
            prop_assert_eq!(tcp.flags(), flags);
            prop_assert_eq!(tcp.window(), window);
            prop_assert_eq!(tcp.urgent(), if flags.urg() { urgent } else { 0 });
            prop_assert_eq!(tcp.payload(), &payload[..]);
            prop_assert!(tcp.verify_checksum(ip(src), ip(dst)));
        }

        // NAT-style rewrite with incremental updates on one copy, full
        // recomputation on another; etherparse must accept both.
        let mut inc = frame.clone();
        {
            let mut eth = EthernetFrame::new_checked(&mut inc[..]).unwrap();
            let mut ipv = Ipv4Packet::new_checked(eth.payload_mut()).unwrap();
            let old_src = ipv.src_u32();
            let new_src_u32 = u32::from_be_bytes(new_src);
            let c = incremental_update32(ipv.checksum(), old_src, new_src_u32);
            ipv.set_src(ip(new_src));
            ipv.set_checksum(c);
            let mut tcp = TcpSegment::new_checked(ipv.payload_mut()).unwrap();
            let mut tc = incremental_update32(tcp.checksum(), old_src, new_src_u32);
            tc = incremental_update16(tc, tcp.dst_port(), new_port);
            tcp.set_dst_port(new_port);
            tcp.set_checksum(tc);
        }
        let mut full = frame.clone();
        {
            let mut eth = EthernetFrame::new_checked(&mut full[..]).unwrap();
            let mut ipv = Ipv4Packet::new_checked(eth.payload_mut()).unwrap();
            ipv.set_src(ip(new_src));
            ipv.set_ttl(new_ttl);
            ipv.fill_checksum();
            prop_assert!(ipv.verify_checksum());
            let (s, d) = (ipv.src(), ipv.dst());
            let mut tcp = TcpSegment::new_checked(ipv.payload_mut()).unwrap();
            tcp.set_dst_port(new_port);
            tcp.set_flags(TcpFlags::RST | TcpFlags::ACK);
            tcp.fill_checksum(s, d);
            prop_assert!(tcp.verify_checksum(s, d));
        }
        let (ip_ok, l4_ok, sp, dp) = etherparse_verdict(&inc);
        prop_assert!(ip_ok && l4_ok);
        prop_assert_eq!((sp, dp), (ports.0, new_port));
        let (ip_ok, l4_ok, sp, dp) = etherparse_verdict(&full);
        prop_assert!(ip_ok && l4_ok);
        prop_assert_eq!((sp, dp), (ports.0, new_port));
        let sp = SlicedPacket::from_ethernet(&full).unwrap();
        let Some(NetSlice::Ipv4(v4)) = &sp.net else { panic!() };
        prop_assert_eq!(v4.header().ttl(), new_ttl);
        prop_assert_eq!(v4.header().source(), new_src);
        let Some(TransportSlice::Tcp(t)) = &sp.transport else { panic!() };
        prop_assert!(t.rst() && t.ack() && !t.syn());
        let Some(LinkSlice::Ethernet2(e)) = &sp.link else { panic!() };
        prop_assert_eq!(e.source(), macs.0);
    }

    #[test]
    fn udp_matches_etherparse(
        macs in any::<([u8; 6], [u8; 6])>(),
        p in ipv4_params(),
        src in any::<[u8; 4]>(),
        dst in any::<[u8; 4]>(),
        ports in any::<(u16, u16)>(),
        payload in proptest::collection::vec(any::<u8>(), 0..120),
        pad in 0usize..20,
        new_dst in any::<[u8; 4]>(),
        new_port in any::<u16>(),
    ) {
        let b = PacketBuilder::ethernet2(macs.0, macs.1)
            .ip(IpHeaders::Ipv4(ipv4_header(&p, src, dst), Default::default()))
            .udp(ports.0, ports.1);
        let mut frame = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut frame, &payload).unwrap();
        frame.resize(frame.len() + pad, 0);
        check_ipv4_fields(&frame, &p, src, dst, PROTO_UDP, 8 + payload.len())?;

        {
            let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
            let ipv = Ipv4Packet::new_checked(eth.payload()).unwrap();
            let udp = UdpDatagram::new_checked(ipv.payload()).unwrap();
            prop_assert_eq!(udp.src_port(), ports.0);
            prop_assert_eq!(udp.dst_port(), ports.1);
            prop_assert_eq!(usize::from(udp.len()), 8 + payload.len());
            prop_assert_ne!(udp.checksum(), 0);
            prop_assert_eq!(udp.payload(), &payload[..]);
            prop_assert!(udp.verify_checksum(ip(src), ip(dst)));
        }

        let mut inc = frame.clone();
        {
            let mut eth = EthernetFrame::new_checked(&mut inc[..]).unwrap();
            let mut ipv = Ipv4Packet::new_checked(eth.payload_mut()).unwrap();
            let (old, new) = (ipv.dst_u32(), u32::from_be_bytes(new_dst));
            let c = incremental_update32(ipv.checksum(), old, new);
            ipv.set_dst(ip(new_dst));
            ipv.set_checksum(c);
            let mut udp = UdpDatagram::new_checked(ipv.payload_mut()).unwrap();
            let mut uc = incremental_update32(udp.checksum(), old, new);
            uc = incremental_update16(uc, udp.src_port(), new_port);
            udp.set_src_port(new_port);
            // A result of 0 must go on the wire as 0xffff (0 = no checksum).
            udp.set_checksum(if uc == 0 { 0xffff } else { uc });
        }
        let mut full = frame.clone();
        {
            let mut eth = EthernetFrame::new_checked(&mut full[..]).unwrap();
            let mut ipv = Ipv4Packet::new_checked(eth.payload_mut()).unwrap();
            ipv.set_dst(ip(new_dst));
            ipv.fill_checksum();
            let (s, d) = (ipv.src(), ipv.dst());
            let mut udp = UdpDatagram::new_checked(ipv.payload_mut()).unwrap();
            udp.set_src_port(new_port);
            udp.fill_checksum(s, d);
            prop_assert!(udp.verify_checksum(s, d));
        }
        prop_assert_eq!(etherparse_verdict(&inc), (true, true, new_port, ports.1));
        prop_assert_eq!(etherparse_verdict(&full), (true, true, new_port, ports.1));
    }

    #[test]
    fn icmp_echo_matches_etherparse(
        src in any::<[u8; 4]>(),
        dst in any::<[u8; 4]>(),
        ttl in any::<u8>(),
        id in any::<u16>(),
        seq in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let b = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(src, dst, ttl)
            .icmpv4_echo_request(id, seq);
        let mut frame = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut frame, &payload).unwrap();

        // Turn the request into a reply in place, as the director will.
        {
            let mut eth = EthernetFrame::new_checked(&mut frame[..]).unwrap();
            let mut ipv = Ipv4Packet::new_checked(eth.payload_mut()).unwrap();
            prop_assert!(ipv.verify_checksum());
            prop_assert_eq!(ipv.protocol(), PROTO_ICMP);
            let (s, d) = (ipv.src(), ipv.dst());
            ipv.set_src(d);
            ipv.set_dst(s);
            ipv.fill_checksum();
            let mut icmp = Icmpv4Packet::new_checked(ipv.payload_mut()).unwrap();
            prop_assert_eq!(icmp.msg_type(), ICMP_ECHO_REQUEST);
            prop_assert_eq!(icmp.code(), 0);
            prop_assert_eq!(icmp.echo_ident(), id);
            prop_assert_eq!(icmp.echo_seq(), seq);
            prop_assert_eq!(icmp.payload(), &payload[..]);
            prop_assert!(icmp.verify_checksum());
            icmp.set_msg_type(ICMP_ECHO_REPLY);
            icmp.fill_checksum();
        }
        let sp = SlicedPacket::from_ethernet(&frame).unwrap();
        let Some(NetSlice::Ipv4(v4)) = &sp.net else { panic!() };
        prop_assert_eq!(v4.header().source(), dst);
        prop_assert_eq!(
            v4.header().to_header().calc_header_checksum(),
            v4.header().header_checksum()
        );
        let Some(TransportSlice::Icmpv4(ic)) = &sp.transport else { panic!() };
        prop_assert_eq!(ic.type_u8(), ICMP_ECHO_REPLY);
        prop_assert_eq!(ic.header().icmp_type.calc_checksum(ic.payload()), ic.checksum());
    }

    /// Header-only oracle including fragments (which SlicedPacket would not
    /// descend into).
    #[test]
    fn ipv4_fragment_fields_match_etherparse(
        p in ipv4_params(),
        src in any::<[u8; 4]>(),
        dst in any::<[u8; 4]>(),
        mf in any::<bool>(),
        off in 0u16..=0x1fff,
        proto in any::<u8>(),
        payload_len in 0usize..64,
    ) {
        let mut h = ipv4_header(&p, src, dst);
        h.more_fragments = mf;
        h.fragment_offset = IpFragOffset::try_new(off).unwrap();
        h.protocol = IpNumber(proto);
        h.set_payload_len(payload_len).unwrap();
        let mut buf = Vec::new();
        h.write(&mut buf).unwrap();
        buf.resize(buf.len() + payload_len, 0xa5);
        let v = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(v.more_frags(), mf);
        prop_assert_eq!(v.frag_offset(), off * 8);
        prop_assert_eq!(v.is_fragment(), mf || off != 0);
        prop_assert_eq!(v.dont_frag(), p.df);
        prop_assert_eq!(v.protocol(), proto);
        prop_assert_eq!(v.header_len(), h.header_len());
        prop_assert_eq!(v.checksum(), h.calc_header_checksum());
        prop_assert!(v.verify_checksum());
        prop_assert_eq!(v.payload().len(), payload_len);

        // Setters round-trip through etherparse's parser.
        let mut b2 = buf.clone();
        let mut w = Ipv4Packet::new_checked(&mut b2[..]).unwrap();
        w.set_more_frags(!mf);
        w.set_frag_offset(8 * (0x1fff - off));
        w.set_dont_frag(!p.df);
        w.set_ident(!p.ident);
        w.set_dscp_ecn(!((p.dscp << 2) | p.ecn));
        w.set_protocol(proto.wrapping_add(1));
        w.fill_checksum();
        let e = etherparse::Ipv4HeaderSlice::from_slice(&b2).unwrap();
        prop_assert_eq!(e.more_fragments(), !mf);
        prop_assert_eq!(e.fragments_offset().value(), 0x1fff - off);
        prop_assert_eq!(e.dont_fragment(), !p.df);
        prop_assert_eq!(e.identification(), !p.ident);
        prop_assert_eq!(e.dcp().value(), !p.dscp & 0x3f);
        prop_assert_eq!(e.ecn().value(), !p.ecn & 0x3);
        prop_assert_eq!(e.protocol(), IpNumber(proto.wrapping_add(1)));
        prop_assert_eq!(e.to_header().calc_header_checksum(), e.header_checksum());
    }
}

#[test]
fn wire_error_names_are_dense_and_unique() {
    for (i, e) in WireError::ALL.iter().enumerate() {
        assert_eq!(e.index(), i);
        assert!(!e.to_string().is_empty());
    }
    let mut names: Vec<_> = WireError::ALL.iter().map(|e| e.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), WireError::ALL.len());
}

#[test]
fn arp_frame_parses_with_etherparse_ethernet() {
    let mut buf = [0u8; 64];
    let n = build_arp(
        &mut buf,
        ARP_REQUEST,
        MacAddr([2, 0, 0, 0, 0, 1]),
        MacAddr::BROADCAST,
        MacAddr([2, 0, 0, 0, 0, 1]),
        Ipv4Addr::new(10, 0, 0, 1),
        MacAddr::ZERO,
        Ipv4Addr::new(10, 0, 0, 9),
    );
    let e = etherparse::Ethernet2HeaderSlice::from_slice(&buf[..n]).unwrap();
    assert_eq!(e.ether_type(), etherparse::EtherType::ARP);
    assert_eq!(e.destination(), [0xff; 6]);
    assert_eq!(e.source(), [2, 0, 0, 0, 0, 1]);
}
