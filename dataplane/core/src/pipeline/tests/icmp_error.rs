//! ICMP errors about tracked connections (pipeline/icmp_error.rs): handed
//! to the owning worker, relayed to DR real servers, encapsulated for
//! tunnels, translated for NAT; mutated errors never panic.

use super::*;
use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
use etherparse::{Icmpv4Type, Ipv4HeaderSlice, TcpHeaderSlice, TransportSlice, UdpHeaderSlice};

/// A router on the path between the real servers and the clients.
const ROUTER: [u8; 4] = [198, 18, 0, 254];
const ROUTER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xfe]);

fn frag_needed(mtu: u16) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
        next_hop_mtu: mtu,
    })
}

fn ttl_exceeded() -> Icmpv4Type {
    Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit)
}

/// The IP packet a real server sends in reply (VIP:80 → client:cport),
/// as a router would quote it: its first `keep` bytes.
fn reply_packet(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, udp: bool) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src, dst, 63);
    let mut p = Vec::new();
    if udp {
        b.udp(sport, dport).write(&mut p, b"some answer").unwrap();
    } else {
        b.tcp(sport, dport, 5000, 65535)
            .ack(1001)
            .write(&mut p, b"HTTP/1.0 200 OK\r\n\r\n")
            .unwrap();
    }
    let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
    ip.set_dont_frag(true);
    ip.fill_checksum();
    p
}

/// An ICMP error frame quoting `quote`.
fn error_frame(
    eth: (MacAddr, MacAddr),
    src: [u8; 4],
    dst: [u8; 4],
    t: Icmpv4Type,
    quote: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(eth.0 .0, eth.1 .0)
        .ipv4(src, dst, 64)
        .icmpv4(t)
        .write(&mut f, quote)
        .unwrap();
    f
}

/// Outer IPv4 header and ICMP message of a frame, with both checksums
/// checked.
fn parts(f: &[u8]) -> (etherparse::Ipv4Header, Icmpv4Type, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(
        h.calc_header_checksum(),
        h.header_checksum,
        "outer IP checksum"
    );
    let Some(TransportSlice::Icmpv4(m)) = &p.transport else {
        panic!("not ICMP")
    };
    let want = etherparse::Icmpv4Header::with_checksum(m.icmp_type(), m.payload()).checksum;
    assert_eq!(m.checksum(), want, "ICMP checksum");
    (h, m.icmp_type(), m.payload().to_vec())
}

/// The quoted IP header (checksum checked) and the quoted L4 bytes.
fn quoted(q: &[u8]) -> (etherparse::Ipv4Header, Vec<u8>) {
    let ih = Ipv4HeaderSlice::from_slice(q).unwrap();
    let h = ih.to_header();
    assert_eq!(
        h.calc_header_checksum(),
        h.header_checksum,
        "quoted IP checksum"
    );
    (h, q[ih.slice().len()..].to_vec())
}

fn ports(l4: &[u8]) -> (u16, u16) {
    (
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
    )
}

/// Each frame counted once: the frames received are the outcomes plus
/// the drops (no ARP in these tests).
fn assert_accounted(w: &Worker) {
    let s = w.stats();
    let outcomes: u64 = [
        Counter::FwdDr,
        Counter::FwdTunnel,
        Counter::FwdNat,
        Counter::FwdNatReply,
        Counter::IcmpFragNeededSent,
        Counter::ArpReplied,
        Counter::IcmpEchoReplied,
        Counter::IcmpErrorForwarded,
        Counter::IcmpErrorNatForwarded,
        Counter::IcmpErrorNatReply,
    ]
    .iter()
    .map(|&c| s.get(c))
    .sum();
    let drops: u64 = Counter::ALL
        .iter()
        .filter(|c| c.is_drop())
        .map(|&c| s.get(c))
        .sum();
    assert_eq!(s.get(Counter::RxFrames), outcomes + drops);
}

/// Two workers with the same snapshot, each with its own table.
fn two_workers() -> (Lab, Worker) {
    let mut a = lab("Rr", (1, 1), true);
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let mut b = Worker::new(
        a.w.snapshot().clone(),
        ConnTable::new(1024, 9),
        stats,
        a.neigh.clone(),
    );
    a.w.set_workers(2);
    b.set_workers(2);
    (a, b)
}

#[test]
fn dr_error_on_the_wrong_worker_is_handed_to_the_owner() {
    let (mut a, mut b) = two_workers();
    let mut s = syn(40000);
    assert_eq!(a.w.process(&mut s, 0, 0), Verdict::Tx(0));
    let rs_mac = dst_mac(&s);
    let reply = reply_packet(VIP, 80, CLIENT, 40000, false);
    let orig = error_frame(
        (ROUTER_MAC, DIR_MAC),
        ROUTER,
        VIP,
        frag_needed(1400),
        &reply[..28],
    );
    // RSS put the error on worker b, which does not hold the connection.
    let mut f = orig.clone();
    assert_eq!(b.process(&mut f, 0, 1), Verdict::Handoff);
    assert_eq!(f, orig, "a handed-off frame is untouched");
    assert_eq!(b.stats().get(Counter::DropIcmpErrorNoConn), 0);
    // Worker a, the owner, relays it.
    assert_eq!(a.w.process_handed_off(&mut f, 0, 1, 1), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), rs_mac);
    assert_eq!(&f[12..], &orig[12..]);
    assert_eq!(a.w.stats().get(Counter::IcmpErrorForwarded), 1);
    assert_eq!(
        a.w.stats().get(Counter::RxFrames),
        1,
        "received once, by the first worker"
    );
    // Nobody holds this one: after visiting both workers it is dropped.
    let unknown = reply_packet(VIP, 80, CLIENT, 40002, false);
    let mut g = error_frame(
        (ROUTER_MAC, DIR_MAC),
        ROUTER,
        VIP,
        frag_needed(1400),
        &unknown[..28],
    );
    assert_eq!(a.w.process(&mut g, 0, 2), Verdict::Handoff);
    assert_eq!(
        b.process_handed_off(&mut g, 0, 1, 2),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    assert_eq!(b.stats().get(Counter::DropIcmpErrorNoConn), 1);
    // A single worker never hands off.
    let mut solo = lab("Rr", (1, 1), true);
    let mut h = orig.clone();
    assert_eq!(
        solo.w.process(&mut h, 0, 1),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    // Back on the first worker: handing off again still works (the
    // temporary "final" setting did not stick).
    let mut k = orig.clone();
    assert_eq!(b.process(&mut k, 0, 3), Verdict::Handoff);
}

#[test]
fn dr_errors_go_to_the_real_server_unchanged() {
    let mut l = lab("Rr", (1, 1), true);
    let mut s = syn(40000);
    assert_eq!(l.w.process(&mut s, 0, 0), Verdict::Tx(0));
    let rs_mac = dst_mac(&s);
    let mut u = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .udp(5353, 53)
        .write(&mut u, b"query")
        .unwrap();
    assert_eq!(l.w.process(&mut u, 0, 0), Verdict::Tx(0));
    let reply = reply_packet(VIP, 80, CLIENT, 40000, false);
    let udp_reply = reply_packet(VIP, 53, CLIENT, 5353, true);
    let cases = [
        (frag_needed(1400), &reply[..28], rs_mac),
        (ttl_exceeded(), &reply[..], rs_mac),
        (frag_needed(1280), &udp_reply[..28], RS1_MAC),
    ];
    for (i, (t, quote, want_mac)) in cases.into_iter().enumerate() {
        let orig = error_frame((ROUTER_MAC, DIR_MAC), ROUTER, VIP, t, quote);
        let mut f = orig.clone();
        assert_eq!(l.w.process(&mut f, 0, 1), Verdict::Tx(0), "case {i}");
        assert_eq!(dst_mac(&f), want_mac);
        assert_eq!(&f[6..12], &DIR_MAC.0);
        assert_eq!(&f[12..], &orig[12..], "IP and ICMP untouched");
    }
    assert_eq!(l.w.stats().get(Counter::IcmpErrorForwarded), 3);
    assert_eq!(l.w.stats().get(Counter::FwdDr), 2, "only the data packets");
    assert_eq!(l.w.stats().get(Counter::ConnCreated), 2, "no state change");
    // The real server's counters include the errors relayed to it.
    let rs1 = l.w.snapshot().services[1].reals[0].id as usize;
    let st = &l.w.stats().rs[rs1];
    assert!(st.packets.load(std::sync::atomic::Ordering::Relaxed) >= 2);

    // Errors about flows the director does not track.
    let drop = |l: &mut Lab, t, quote: &[u8], dst: [u8; 4]| {
        let mut f = error_frame((ROUTER_MAC, DIR_MAC), ROUTER, dst, t, quote);
        l.w.process(&mut f, 0, 2)
    };
    let other_port = reply_packet(VIP, 80, CLIENT, 40001, false);
    let other_client = reply_packet(VIP, 80, [198, 18, 0, 9], 40000, false);
    let no_service = reply_packet(VIP, 8080, CLIENT, 40000, false);
    let from_elsewhere = reply_packet([198, 18, 0, 50], 80, CLIENT, 40000, false);
    for q in [&other_port, &other_client, &no_service, &from_elsewhere] {
        assert_eq!(
            drop(&mut l, frag_needed(1400), &q[..28], VIP),
            Verdict::Drop(Counter::DropIcmpErrorNoConn)
        );
    }
    // To our own address, quoting the VIP: not for the address it quotes.
    assert_eq!(
        drop(&mut l, ttl_exceeded(), &reply[..28], DIR),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    // Quoting an ICMP packet (e.g. an echo reply): no connection.
    let mut echo = Vec::new();
    PacketBuilder::ipv4(VIP, CLIENT, 63)
        .icmpv4_echo_reply(1, 1)
        .write(&mut echo, b"ping")
        .unwrap();
    assert_eq!(
        drop(&mut l, ttl_exceeded(), &echo, VIP),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    // Cut short, or not IPv4.
    for q in [&reply[..27], &reply[..20], &reply[..3], &[][..]] {
        assert_eq!(
            drop(&mut l, frag_needed(1400), q, VIP),
            Verdict::Drop(Counter::DropIcmpErrorMalformed)
        );
    }
    let mut v6 = reply[..28].to_vec();
    v6[0] = 0x65;
    assert_eq!(
        drop(&mut l, frag_needed(1400), &v6, VIP),
        Verdict::Drop(Counter::DropIcmpErrorMalformed)
    );
    let mut bad_ihl = reply[..28].to_vec();
    bad_ihl[0] = 0x44;
    assert_eq!(
        drop(&mut l, frag_needed(1400), &bad_ihl, VIP),
        Verdict::Drop(Counter::DropIcmpErrorMalformed)
    );
    // A non-first fragment carries no ports.
    let mut frag = reply[..28].to_vec();
    frag[6] = 0x00;
    frag[7] = 0x10;
    assert_eq!(
        drop(&mut l, frag_needed(1400), &frag, VIP),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    // A bad ICMP checksum.
    let mut f = error_frame(
        (ROUTER_MAC, DIR_MAC),
        ROUTER,
        VIP,
        frag_needed(1400),
        &reply[..28],
    );
    f[ETH + 20 + 2] ^= 0x40;
    assert_eq!(
        l.w.process(&mut f, 0, 2),
        Verdict::Drop(Counter::DropIcmpMalformed)
    );
    // Other ICMP types are still unsupported; echo still answered.
    for (ty, code) in [(5u8, 1u8), (12, 0), (4, 0), (13, 0)] {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(ROUTER_MAC.0, DIR_MAC.0)
            .ipv4(ROUTER, VIP, 64)
            .icmpv4_raw(ty, code, [0; 4])
            .write(&mut f, &reply[..28])
            .unwrap();
        assert_eq!(
            l.w.process(&mut f, 0, 2),
            Verdict::Drop(Counter::DropIcmpUnsupported),
            "type {ty}"
        );
    }
    let mut ping = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut ping, b"abc")
        .unwrap();
    assert_eq!(l.w.process(&mut ping, 0, 2), Verdict::Tx(0));
    assert_eq!(l.w.stats().get(Counter::IcmpEchoReplied), 1);
    assert_eq!(l.w.stats().get(Counter::IcmpErrorForwarded), 3);
    assert_accounted(&l.w);
}

#[test]
fn dr_error_for_an_expired_connection_is_dropped() {
    let mut l = lab("Rr", (1, 1), true);
    assert_eq!(l.w.process(&mut syn(40000), 0, 0), Verdict::Tx(0));
    let reply = reply_packet(VIP, 80, CLIENT, 40000, false);
    let mut f = error_frame(
        (ROUTER_MAC, DIR_MAC),
        ROUTER,
        VIP,
        frag_needed(1400),
        &reply[..28],
    );
    // SYN_RECV times out after 60 s.
    assert_eq!(
        l.w.process(&mut f, 0, 61_000),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
}

#[test]
fn tunnel_errors_are_encapsulated() {
    let mut l = tunnel_lab(("Tunnel", "Dr"), 1500, "");
    let mut s = syn(40000);
    assert_eq!(l.w.process_buf(&mut s, 0, 0), Verdict::Tx(0));
    assert_eq!(dst_mac(&s), RS1_MAC);
    let reply = reply_packet(VIP, 80, CLIENT, 40000, false);
    let orig = error_frame(
        (ROUTER_MAC, DIR_MAC),
        ROUTER,
        VIP,
        frag_needed(1400),
        &reply[..28],
    );
    let mut f = orig.clone();
    assert_eq!(l.w.process_buf(&mut f, 0, 1), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS1_MAC);
    let outer = outer_of(&f, &orig);
    assert_eq!(outer.destination(), [198, 18, 0, 11]);
    assert_eq!(outer.source(), DIR);
    assert_eq!(l.w.stats().get(Counter::IcmpErrorForwarded), 1);
    assert_eq!(l.w.stats().get(Counter::FwdTunnel), 1, "only the SYN");
    // Through a slice (no headroom): a counted drop, as for data.
    let mut f = orig.clone();
    assert_eq!(
        l.w.process(&mut f, 0, 1),
        Verdict::Drop(Counter::DropTunnelNoHeadroom)
    );
    // The other flow goes by DR: the error too.
    let mut s = syn(40002);
    assert_eq!(l.w.process_buf(&mut s, 0, 0), Verdict::Tx(0));
    assert_eq!(dst_mac(&s), RS2_MAC);
    let reply = reply_packet(VIP, 80, CLIENT, 40002, false);
    let orig = error_frame((ROUTER_MAC, DIR_MAC), ROUTER, VIP, ttl_exceeded(), &reply);
    let mut f = orig.clone();
    assert_eq!(l.w.process_buf(&mut f, 0, 1), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS2_MAC);
    assert_eq!(&f[12..], &orig[12..]);
    assert_eq!(l.w.stats().get(Counter::IcmpErrorForwarded), 2);
    assert_accounted(&l.w);
}

#[test]
fn tunnel_error_too_big_is_dropped_without_an_answer() {
    let mut l = tunnel_lab(("Tunnel", "Tunnel"), 576, "");
    assert_eq!(l.w.process_buf(&mut syn(40000), 0, 0), Verdict::Tx(0));
    let mut reply = reply_packet(VIP, 80, CLIENT, 40000, false);
    reply.resize(560, 0);
    let mut f = error_frame(
        (ROUTER_MAC, DIR_MAC),
        ROUTER,
        VIP,
        frag_needed(1400),
        &reply,
    );
    let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
    ip.set_dont_frag(true);
    ip.fill_checksum();
    assert_eq!(
        l.w.process_buf(&mut f, 0, 1),
        Verdict::Drop(Counter::DropTunnelTooBig)
    );
    assert_eq!(l.w.stats().get(Counter::IcmpFragNeededSent), 0);
}

// --- NAT ---

/// A router between the director and the real servers.
const INNER_ROUTER: [u8; 4] = [198, 19, 0, 254];

/// Open a TCP connection client:40000 → VIP:80 and a UDP flow
/// client:5353 → VIP:53; returns the TCP SYN-ACK as the client got it
/// (translated), the server's original SYN-ACK, and the UDP query as the
/// real server got it.
fn nat_flows(ext: &mut Worker, int: &mut Worker) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, EXT_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .tcp(40000, 80, 1000, 65535)
        .syn()
        .write(&mut f, &[])
        .unwrap();
    assert_eq!(ext.process(&mut f, 0, 0), Verdict::Tx(1));
    let mut server = Vec::new();
    PacketBuilder::ethernet2(RS_MAC.0, INT_MAC.0)
        .ipv4(RS, CLIENT, 64)
        .tcp(8080, 40000, 5000, 65535)
        .syn()
        .ack(1001)
        .write(&mut server, b"early data for the quote")
        .unwrap();
    let mut translated = server.clone();
    assert_eq!(int.process(&mut translated, 1, 0), Verdict::Tx(0));
    let mut q = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, EXT_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .udp(5353, 53)
        .write(&mut q, b"query")
        .unwrap();
    assert_eq!(ext.process(&mut q, 0, 0), Verdict::Tx(1));
    (translated, server, q)
}

#[test]
fn nat_error_about_a_reply_is_translated_to_the_real_server() {
    let (mut ext, mut int) = nat_workers();
    let (translated, server, _) = nat_flows(&mut ext, &mut int);
    let reply = &translated[ETH..];
    let orig_l4 = &server[ETH + 20..];
    for (n, keep) in [28usize, 40, reply.len()].into_iter().enumerate() {
        let t = if n == 1 {
            ttl_exceeded()
        } else {
            frag_needed(1400 - n as u16)
        };
        let mut f = error_frame(
            (ROUTER_MAC, EXT_MAC),
            ROUTER,
            VIP,
            t.clone(),
            &reply[..keep],
        );
        // Any worker finds it: the NAT table is shared.
        let w = if n == 0 { &mut int } else { &mut ext };
        assert_eq!(w.process(&mut f, 0, 1), Verdict::Tx(1), "quote {keep}");
        assert_eq!(dst_mac(&f), RS_MAC);
        assert_eq!(&f[6..12], &INT_MAC.0);
        let (outer, ty, msg) = parts(&f);
        assert_eq!(ty, t);
        assert_eq!(outer.source, ROUTER);
        assert_eq!(outer.destination, RS);
        assert_eq!(outer.time_to_live, 63);
        let (inner, l4) = quoted(&msg);
        assert_eq!((inner.source, inner.destination), (RS, CLIENT));
        assert_eq!(ports(&l4), (8080, 40000));
        // The quoted TCP checksum, when quoted, is again the server's.
        if l4.len() >= 18 {
            assert_eq!(&l4[16..18], &orig_l4[16..18]);
        }
        if keep == reply.len() {
            let t = TcpHeaderSlice::from_slice(&l4).unwrap();
            let ih = Ipv4HeaderSlice::from_slice(&msg).unwrap();
            let want = t.calc_checksum_ipv4(&ih, &l4[t.slice().len()..]).unwrap();
            assert_eq!(t.checksum(), want);
        }
    }
    let total = |c| ext.stats().get(c) + int.stats().get(c);
    assert_eq!(total(Counter::IcmpErrorNatForwarded), 3);
    assert_eq!(total(Counter::IcmpErrorForwarded), 0);
    // Not a NAT connection: the other client port.
    let other = reply_packet(VIP, 80, CLIENT, 40001, false);
    let mut f = error_frame(
        (ROUTER_MAC, EXT_MAC),
        ROUTER,
        VIP,
        frag_needed(1400),
        &other[..28],
    );
    assert_eq!(
        ext.process(&mut f, 0, 1),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    // TTL 1: not relayed.
    let mut f = error_frame(
        (ROUTER_MAC, EXT_MAC),
        ROUTER,
        VIP,
        frag_needed(1400),
        &reply[..28],
    );
    let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
    ip.set_ttl(1);
    ip.fill_checksum();
    assert_eq!(
        ext.process(&mut f, 0, 1),
        Verdict::Drop(Counter::DropIpv4TtlExpired)
    );
    assert_accounted(&ext);
    assert_accounted(&int);
}

#[test]
fn nat_error_about_a_request_is_translated_to_the_client() {
    let (mut ext, mut int) = nat_workers();
    let (_, _, query) = nat_flows(&mut ext, &mut int);
    // The real server has nothing on port 53: port unreachable, quoting
    // the query as it arrived (client:5353 → RS:53), all of it.
    let t = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
    let mut f = error_frame((RS_MAC, INT_MAC), RS, CLIENT, t.clone(), &query[ETH..]);
    assert_eq!(int.process(&mut f, 1, 1), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), CLIENT_MAC);
    assert_eq!(&f[6..12], &EXT_MAC.0);
    let (outer, ty, msg) = parts(&f);
    assert_eq!(ty, t);
    assert_eq!((outer.source, outer.destination), (VIP, CLIENT));
    assert_eq!(outer.time_to_live, 63);
    let (inner, l4) = quoted(&msg);
    assert_eq!((inner.source, inner.destination), (CLIENT, VIP));
    assert_eq!(ports(&l4), (5353, 53));
    let u = UdpHeaderSlice::from_slice(&l4).unwrap();
    let want = u.to_header().calc_checksum_ipv4(&inner, &l4[8..]).unwrap();
    assert_eq!(u.checksum(), want, "quoted UDP checksum consistent");
    // A router between director and real server: time exceeded about
    // the TCP SYN, the classic 28-byte quote.
    let mut syn_to_rs = Vec::new();
    PacketBuilder::ipv4(CLIENT, RS, 1)
        .tcp(40000, 8080, 1000, 65535)
        .syn()
        .write(&mut syn_to_rs, &[])
        .unwrap();
    let mut f = error_frame(
        (RS_MAC, INT_MAC),
        INNER_ROUTER,
        CLIENT,
        ttl_exceeded(),
        &syn_to_rs[..28],
    );
    assert_eq!(ext.process(&mut f, 1, 2), Verdict::Tx(0), "any worker");
    let (outer, _, msg) = parts(&f);
    assert_eq!((outer.source, outer.destination), (VIP, CLIENT));
    let (inner, l4) = quoted(&msg);
    assert_eq!((inner.source, inner.destination), (CLIENT, VIP));
    assert_eq!(ports(&l4), (40000, 80));
    let total = |c| ext.stats().get(c) + int.stats().get(c);
    assert_eq!(total(Counter::IcmpErrorNatReply), 2);
    // Unknown flows, and errors not addressed to the quoted source.
    let drop = |w: &mut Worker, src: [u8; 4], dst: [u8; 4], q: &[u8]| {
        let mut f = error_frame((RS_MAC, INT_MAC), src, dst, ttl_exceeded(), q);
        w.process(&mut f, 1, 3)
    };
    let mut other = syn_to_rs.clone();
    other[20] ^= 1; // another client port
    assert_eq!(
        drop(&mut int, INNER_ROUTER, CLIENT, &other[..28]),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    assert_eq!(
        drop(&mut int, INNER_ROUTER, [198, 18, 0, 9], &syn_to_rs[..28]),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    assert_eq!(
        drop(&mut int, INNER_ROUTER, CLIENT, &syn_to_rs[..24]),
        Verdict::Drop(Counter::DropIcmpErrorMalformed)
    );
    // Non-error ICMP to a non-local address: as before.
    let mut f = Vec::new();
    PacketBuilder::ethernet2(RS_MAC.0, INT_MAC.0)
        .ipv4(RS, CLIENT, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut f, b"x")
        .unwrap();
    assert_eq!(
        int.process(&mut f, 1, 3),
        Verdict::Drop(Counter::DropIpv4NotLocal)
    );
    assert_accounted(&ext);
    assert_accounted(&int);
}

/// xorshift64: reproducible pseudo-random numbers.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Mutate 1–3 bytes (mostly in the headers) and cut some off the end.
fn mutate(f: &mut Vec<u8>, x: &mut u64) {
    for _ in 0..=(next(x) % 3) {
        let r = next(x);
        let span = if r & 1 == 0 {
            f.len().min(ETH + 60)
        } else {
            f.len()
        };
        let i = (r >> 8) as usize % span;
        f[i] = (r >> 32) as u8;
    }
    if next(x).is_multiple_of(4) {
        let cut = next(x) as usize % f.len();
        f.truncate(f.len() - cut);
    }
}

#[test]
fn mutated_icmp_errors_never_panic() {
    let mut x = 0x1cbb_5eed_u64;
    // DR and tunnel.
    let mut l = tunnel_lab(("Tunnel", "Dr"), 576, "");
    let _ = l.w.process_buf(&mut syn(40000), 0, 0);
    let _ = l.w.process_buf(&mut syn(40002), 0, 0);
    let r0 = reply_packet(VIP, 80, CLIENT, 40000, false);
    let r1 = reply_packet(VIP, 80, CLIENT, 40002, false);
    for i in 0..20_000 {
        let r = if i % 2 == 0 { &r0 } else { &r1 };
        let keep = 20 + next(&mut x) as usize % (r.len() - 19);
        let t = if i % 3 == 0 {
            ttl_exceeded()
        } else {
            frag_needed(1200)
        };
        let mut f = error_frame((ROUTER_MAC, DIR_MAC), ROUTER, VIP, t, &r[..keep]);
        mutate(&mut f, &mut x);
        let _ = l.w.process_buf(&mut f, 0, 1);
    }
    assert!(l.w.stats().get(Counter::IcmpErrorForwarded) > 0);
    assert_accounted(&l.w);
    // NAT, both directions.
    let (mut ext, mut int) = nat_workers();
    let (translated, _, query) = nat_flows(&mut ext, &mut int);
    for i in 0..20_000 {
        let mut f = if i % 2 == 0 {
            let q = &translated[ETH..];
            let keep = 20 + next(&mut x) as usize % (q.len() - 19);
            error_frame(
                (ROUTER_MAC, EXT_MAC),
                ROUTER,
                VIP,
                frag_needed(1400),
                &q[..keep],
            )
        } else {
            let q = &query[ETH..];
            let keep = 20 + next(&mut x) as usize % (q.len() - 19);
            error_frame((RS_MAC, INT_MAC), RS, CLIENT, ttl_exceeded(), &q[..keep])
        };
        mutate(&mut f, &mut x);
        let port = (i % 2) as u16;
        let w = if next(&mut x) & 1 == 0 {
            &mut ext
        } else {
            &mut int
        };
        let _ = w.process(&mut f, port, 1);
    }
    let total = |c| ext.stats().get(c) + int.stats().get(c);
    assert!(total(Counter::IcmpErrorNatForwarded) > 0);
    assert!(total(Counter::IcmpErrorNatReply) > 0);
    assert_accounted(&ext);
    assert_accounted(&int);
}
