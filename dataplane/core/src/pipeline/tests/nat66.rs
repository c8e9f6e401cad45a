//! NAT66 through two workers (external and internal port) over one shared
//! IPv6 table: request and reply rewrites with checksums recomputed by
//! etherparse, port mapping, UDP, TCP states and ActiveConn/InActConn,
//! expiry, ICMPv6 errors translated both ways, and what is dropped.

use super::accounting::{check_frame, Counts};
use super::frames6::*;
use super::*;
use crate::conntrack::{ConnKey6, ConnState};
use crate::pipeline::nat::REFRESH_SLACK_MS;
use crate::pipeline::{ClientMacs6, Nat6State};
use etherparse::{Icmpv6Type, NetSlice, TransportSlice};
use std::net::Ipv6Addr;

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const VIP6_ALL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x101);
const RS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x11);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);

/// The NAT66 director: an external-port worker and an internal-port one,
/// sharing the table and the clients' MACs as lbd's workers do.
struct Lab66 {
    ext: Worker,
    int: Worker,
    table: Arc<SharedConnTable<ConnKey6>>,
    clients: Arc<ClientMacs6>,
}

/// TCP [VIP6]:80 → [RS6]:8080, UDP [VIP6]:53 → [RS6]:53, and [VIP6_ALL]
/// on all TCP ports → RS6 (keeping the port), all by NAT.
fn lab66() -> Lab66 {
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "ext", device: "net_null0", address: "198.18.0.2/24",
                     address6: Some("2001:db8::2/64")),
                    (name: "int", device: "net_null1", address: "198.19.0.1/24",
                     address6: Some("2001:db8:10::1/64"))],
            eal: (cores: "0-2"),
            services: [
                (vip: "2001:db8::100", port: 80, scheduler: Rr, real_servers: [
                    (address: "2001:db8:10::11", port: Some(8080), forward: Nat)]),
                (vip: "2001:db8::100", port: 53, protocol: Udp, real_servers: [
                    (address: "2001:db8:10::11", forward: Nat)]),
                (vip: "2001:db8::101", port: 0, persistence: Some((timeout: 300)), real_servers: [
                    (address: "2001:db8:10::11", forward: Nat)]),
            ],
        )"#,
    )
    .unwrap();
    let errors = crate::config::validate(&cfg);
    assert!(errors.is_empty(), "{errors:?}");
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[EXT_MAC, INT_MAC], &mut reg, &neigh, 1).unwrap());
    assert!(snap.has_nat6 && !snap.has_nat);
    for e in neigh.entries() {
        neigh.learn(e.slot, e.ip, RS_MAC, 0);
    }
    let table = Arc::new(SharedConnTable::new(1024, 7));
    let clients = Arc::new(ClientMacs6::new(256));
    let mut ws = (0..2)
        .map(|i| {
            Worker::new(
                snap.clone(),
                ConnTable::new(1024, 5 + i as u64),
                Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
                neigh.clone(),
            )
            .with_nat6(Nat6State::new(table.clone(), clients.clone(), i, 2))
        })
        .collect::<Vec<_>>();
    let int = ws.pop().unwrap();
    let ext = ws.pop().unwrap();
    Lab66 {
        ext,
        int,
        table,
        clients,
    }
}

/// A client's TCP segment to `vip`:`dport` with `flags` (S, A, F, R).
fn client_tcp6(vip: Ipv6Addr, dport: u16, flags: &str, hop: u8) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(CLIENT_MAC.0, EXT_MAC.0)
        .ipv6(CLIENT6.octets(), vip.octets(), hop)
        .tcp(40000, dport, 1000, 65535);
    for c in flags.chars() {
        b = match c {
            'S' => b.syn(),
            'A' => b.ack(1),
            'F' => b.fin(),
            'R' => b.rst(),
            _ => b,
        };
    }
    let mut f = Vec::new();
    b.write(&mut f, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    f
}

/// The real server's TCP segment from `sport` to the client's port 40000.
fn server_tcp6(sport: u16, flags: &str, hop: u8) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(RS_MAC.0, INT_MAC.0)
        .ipv6(RS6.octets(), CLIENT6.octets(), hop)
        .tcp(sport, 40000, 5000, 65535);
    for c in flags.chars() {
        b = match c {
            'S' => b.syn(),
            'A' => b.ack(1001),
            'F' => b.fin(),
            _ => b,
        };
    }
    let mut f = Vec::new();
    b.write(&mut f, b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
    f
}

fn client_udp6(sport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC.0, EXT_MAC.0)
        .ipv6(CLIENT6.octets(), VIP6.octets(), 64)
        .udp(sport, 53);
    let mut f = Vec::new();
    b.write(&mut f, b"query").unwrap();
    f
}

fn server_udp6(dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(RS_MAC.0, INT_MAC.0)
        .ipv6(RS6.octets(), CLIENT6.octets(), 64)
        .udp(53, dport);
    let mut f = Vec::new();
    b.write(&mut f, b"answer").unwrap();
    f
}

/// Process `f` on `w` (arriving on `port`) with the per-frame accounting
/// checked.
fn go(w: &mut Worker, f: &mut Vec<u8>, port: u16, now: Tick) -> Verdict {
    let before = Counts::of(w.stats());
    let v = w.process_buf(f, port, now);
    let after = Counts::of(w.stats());
    check_frame(&before, &after, v, true).unwrap();
    v
}

/// The frame's (source, destination, source port, destination port, hop
/// limit), with its TCP/UDP checksum checked against etherparse's.
fn check6(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u16, u16, u8) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("not IPv6")
    };
    let h = ip.header().to_header();
    let (sp, dp) = match p.transport.unwrap() {
        TransportSlice::Tcp(t) => {
            let want = t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap();
            assert_eq!(t.checksum(), want, "TCP checksum");
            (t.source_port(), t.destination_port())
        }
        TransportSlice::Udp(u) => {
            let want = u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap();
            assert_eq!(u.checksum(), want, "UDP checksum");
            (u.source_port(), u.destination_port())
        }
        _ => panic!("not TCP/UDP"),
    };
    (h.source.into(), h.destination.into(), sp, dp, h.hop_limit)
}

/// ActiveConn and InActConn of the real server, summed over both workers.
fn conns(l: &Lab66) -> (i64, i64) {
    let rs = l.ext.snapshot().services[0].reals[0].id as usize;
    let (e, i) = (&l.ext.stats().rs[rs], &l.int.stats().rs[rs]);
    (
        (e.active() + i.active()) as i64,
        (e.inactive() + i.inactive()) as i64,
    )
}

#[test]
fn nat66_tcp_maps_the_port_both_ways_across_workers() {
    let mut l = lab66();
    let mut s = client_tcp6(VIP6, 80, "S", 64);
    assert_eq!(go(&mut l.ext, &mut s, 0, 1), Verdict::Tx(1));
    assert_eq!(check6(&s), (CLIENT6, RS6, 40000, 8080, 63));
    assert_eq!(
        (dst_mac(&s), MacAddr(s[6..12].try_into().unwrap())),
        (RS_MAC, INT_MAC)
    );
    assert_eq!(l.table.len(), 2, "a request and a reply entry");
    assert_eq!(conns(&l), (0, 1), "SYN_RECV is inactive");

    // The reply lands on the other worker.
    let mut sa = server_tcp6(8080, "SA", 64);
    assert_eq!(go(&mut l.int, &mut sa, 1, 2), Verdict::Tx(0));
    assert_eq!(check6(&sa), (VIP6, CLIENT6, 80, 40000, 63));
    assert_eq!(
        (dst_mac(&sa), MacAddr(sa[6..12].try_into().unwrap())),
        (CLIENT_MAC, EXT_MAC)
    );
    let mut a = client_tcp6(VIP6, 80, "A", 64);
    assert_eq!(go(&mut l.ext, &mut a, 0, 3), Verdict::Tx(1));
    assert_eq!(conns(&l), (1, 0), "established is active");
    assert_eq!(l.ext.stats().get(Counter::FwdNat), 2);
    assert_eq!(l.int.stats().get(Counter::FwdNatReply), 1);
    assert_eq!(l.ext.stats().get(Counter::ConnCreated), 1);

    // The client closes; the server's FIN and the last ACK end it.
    let mut fin = client_tcp6(VIP6, 80, "FA", 64);
    assert_eq!(go(&mut l.ext, &mut fin, 0, 4), Verdict::Tx(1));
    assert_eq!(conns(&l), (0, 1), "FIN_WAIT is inactive");
    let mut sfin = server_tcp6(8080, "FA", 64);
    assert_eq!(go(&mut l.int, &mut sfin, 1, 5), Verdict::Tx(0));
    let mut last = client_tcp6(VIP6, 80, "A", 64);
    assert_eq!(go(&mut l.ext, &mut last, 0, 6), Verdict::Tx(1));
    assert_eq!(conns(&l), (0, 1));

    // Both entries expire and are swept; the counts go back to zero.
    let later = 10 * 60 * 1000;
    for w in [&mut l.ext, &mut l.int] {
        w.housekeeping(later, 1 << 20);
    }
    assert_eq!(l.table.len(), 0);
    assert_eq!(conns(&l), (0, 0));
    let mut late = server_tcp6(8080, "A", 64);
    assert_eq!(
        go(&mut l.int, &mut late, 1, later),
        Verdict::Drop(Counter::DropNatNoConn)
    );
}

#[test]
fn nat66_udp_and_port_zero_services() {
    let mut l = lab66();
    let mut q = client_udp6(5353);
    assert_eq!(go(&mut l.ext, &mut q, 0, 1), Verdict::Tx(1));
    assert_eq!(check6(&q), (CLIENT6, RS6, 5353, 53, 63));
    let mut r = server_udp6(5353);
    assert_eq!(go(&mut l.int, &mut r, 1, 2), Verdict::Tx(0));
    assert_eq!(check6(&r), (VIP6, CLIENT6, 53, 5353, 63));
    assert_eq!(dst_mac(&r), CLIENT_MAC);
    // The next datagram keeps the connection (no new one).
    let mut q2 = client_udp6(5353);
    assert_eq!(go(&mut l.ext, &mut q2, 0, 3), Verdict::Tx(1));
    assert_eq!(l.ext.stats().get(Counter::ConnCreated), 1);
    // UDP's timeout ends it.
    let udp_ms = l.ext.snapshot().timeouts.by_state[ConnState::Udp as usize];
    let later = 3 + udp_ms + REFRESH_SLACK_MS * 3;
    for w in [&mut l.ext, &mut l.int] {
        w.housekeeping(later, 1 << 20);
    }
    assert_eq!(l.table.len(), 0);
    assert_eq!(l.ext.stats().get(Counter::ConnExpired), 1);

    // A service on all ports keeps the packet's port both ways.
    let mut s = client_tcp6(VIP6_ALL, 2222, "S", 64);
    assert_eq!(go(&mut l.ext, &mut s, 0, later), Verdict::Tx(1));
    assert_eq!(check6(&s), (CLIENT6, RS6, 40000, 2222, 63));
    let mut sa = server_tcp6(2222, "SA", 64);
    assert_eq!(go(&mut l.int, &mut sa, 1, later), Verdict::Tx(0));
    assert_eq!(check6(&sa), (VIP6_ALL, CLIENT6, 2222, 40000, 63));
}

#[test]
fn nat66_drops_what_it_cannot_translate_by_reason() {
    let mut l = lab66();
    // Hop limit 1: a router would send it out with 0.
    let mut s = client_tcp6(VIP6, 80, "S", 1);
    assert_eq!(
        go(&mut l.ext, &mut s, 0, 1),
        Verdict::Drop(Counter::DropIpv6HopLimitExpired)
    );
    let mut s = client_tcp6(VIP6, 80, "S", 64);
    assert_eq!(go(&mut l.ext, &mut s, 0, 1), Verdict::Tx(1));
    let mut r = server_tcp6(8080, "SA", 1);
    assert_eq!(
        go(&mut l.int, &mut r, 1, 2),
        Verdict::Drop(Counter::DropIpv6HopLimitExpired)
    );
    // From a port no connection uses, or to another client port.
    let mut r = server_tcp6(8081, "SA", 64);
    assert_eq!(
        go(&mut l.int, &mut r, 1, 2),
        Verdict::Drop(Counter::DropNatNoConn)
    );
    let mut r = server_udp6(999);
    assert_eq!(
        go(&mut l.int, &mut r, 1, 2),
        Verdict::Drop(Counter::DropNatNoConn)
    );
    // A TCP header cut short (the payload length says so).
    let mut r = server_tcp6(8080, "SA", 64);
    let cut = ETH + 40 + 12;
    r.truncate(cut);
    r[ETH + 4..ETH + 6].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(
        go(&mut l.int, &mut r, 1, 2),
        Verdict::Drop(Counter::DropTcpMalformed)
    );
    // Bad flags.
    let mut r = server_tcp6(8080, "SF", 64);
    assert_eq!(
        go(&mut l.int, &mut r, 1, 2),
        Verdict::Drop(Counter::DropTcpBadFlags)
    );
    // A TCP segment without SYN for no connection.
    let mut a = client_tcp6(VIP6, 80, "A", 64);
    a[ETH + 40..ETH + 42].copy_from_slice(&41000u16.to_be_bytes());
    assert_eq!(
        go(&mut l.ext, &mut a, 0, 2),
        Verdict::Drop(Counter::DropTcpNoConn)
    );
    // Anything else to a foreign address is still not ours.
    let e = PacketBuilder::ethernet2(RS_MAC.0, INT_MAC.0)
        .ipv6(RS6.octets(), CLIENT6.octets(), 64)
        .icmpv6_echo_request(1, 1);
    let mut f = Vec::new();
    e.write(&mut f, b"x").unwrap();
    assert_eq!(
        go(&mut l.int, &mut f, 1, 2),
        Verdict::Drop(Counter::DropIpv6NotLocal)
    );
    // Nothing in the table moved but the one connection.
    assert_eq!(l.table.len(), 2);
}

#[test]
fn nat66_syn_on_a_closed_connection_starts_a_new_one() {
    let mut l = lab66();
    let mut s = client_tcp6(VIP6, 80, "S", 64);
    assert_eq!(go(&mut l.ext, &mut s, 0, 1), Verdict::Tx(1));
    let mut sa = server_tcp6(8080, "SA", 64);
    assert_eq!(go(&mut l.int, &mut sa, 1, 1), Verdict::Tx(0));
    let mut a = client_tcp6(VIP6, 80, "A", 64);
    assert_eq!(go(&mut l.ext, &mut a, 0, 1), Verdict::Tx(1));
    assert_eq!(conns(&l), (1, 0));
    // The client resets it (CLOSE, inactive).
    let mut r = client_tcp6(VIP6, 80, "R", 64);
    assert_eq!(go(&mut l.ext, &mut r, 0, 2), Verdict::Tx(1));
    assert_eq!(conns(&l), (0, 1));
    // The client reuses its port: a new connection, counted once.
    let mut s = client_tcp6(VIP6, 80, "S", 64);
    assert_eq!(go(&mut l.ext, &mut s, 0, 3), Verdict::Tx(1));
    assert_eq!(l.ext.stats().get(Counter::ConnCreated), 2);
    assert_eq!(conns(&l), (0, 1));
    assert_eq!(l.table.len(), 2);
}

/// An ICMPv6 error from `src` to `dst` (on the given side) quoting `quoted`.
fn icmp6_err(
    from_rs_side: bool,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: Icmpv6Type,
    quoted: &[u8],
) -> Vec<u8> {
    let (smac, dmac) = if from_rs_side {
        (RS_MAC, INT_MAC)
    } else {
        (CLIENT_MAC, EXT_MAC)
    };
    let b = PacketBuilder::ethernet2(smac.0, dmac.0)
        .ipv6(src.octets(), dst.octets(), 64)
        .icmpv6(ty);
    let mut out = Vec::new();
    b.write(&mut out, quoted).unwrap();
    out
}

/// The outer addresses of an ICMPv6 error frame and its quoted packet,
/// with the ICMPv6 checksum checked against etherparse's.
fn icmp6_parts(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!()
    };
    let h = ip.header().to_header();
    let Some(TransportSlice::Icmpv6(m)) = p.transport else {
        panic!("not ICMPv6")
    };
    let want = m
        .header()
        .icmp_type
        .calc_checksum(h.source, h.destination, m.payload())
        .unwrap();
    assert_eq!(m.checksum(), want, "ICMPv6 checksum");
    (
        h.source.into(),
        h.destination.into(),
        h.hop_limit,
        m.payload().to_vec(),
    )
}

#[test]
fn nat66_icmpv6_errors_are_translated_both_ways() {
    let mut l = lab66();
    let mut s = client_tcp6(VIP6, 80, "S", 64);
    assert_eq!(go(&mut l.ext, &mut s, 0, 1), Verdict::Tx(1));
    let mut q = client_udp6(5353);
    assert_eq!(go(&mut l.ext, &mut q, 0, 1), Verdict::Tx(1));

    // A router on the client's side: the translated reply (VIP:80 →
    // client) was too big. The error goes to the real server, about what
    // it sent (RS:8080 → client).
    let reply = ip6_tcp(VIP6, CLIENT6, 80, 40000, 1300);
    let mut f = icmp6_err(
        false,
        ROUTER6,
        VIP6,
        Icmpv6Type::PacketTooBig { mtu: 1280 },
        &reply[..1232],
    );
    assert_eq!(go(&mut l.ext, &mut f, 0, 2), Verdict::Tx(1));
    assert_eq!(dst_mac(&f), RS_MAC);
    let (src, dst, hop, quoted) = icmp6_parts(&f);
    assert_eq!((src, dst, hop), (ROUTER6, RS6, 63));
    let sent = ip6_tcp(RS6, CLIENT6, 8080, 40000, 1300);
    assert_eq!(&quoted[..], &sent[..1232], "the quote is what the RS sent");
    assert_eq!(l.ext.stats().get(Counter::IcmpErrorNatForwarded), 1);

    // The real server's "port unreachable" for the client's datagram: to
    // the client, from the VIP, about what the client sent (→ VIP:53).
    let translated = ip6_udp(CLIENT6, RS6, 5353, 53);
    let mut f = icmp6_err(
        true,
        RS6,
        CLIENT6,
        Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Port),
        &translated,
    );
    assert_eq!(go(&mut l.int, &mut f, 1, 2), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), CLIENT_MAC);
    let (src, dst, hop, quoted) = icmp6_parts(&f);
    assert_eq!((src, dst, hop), (VIP6, CLIENT6, 63));
    let original = ip6_udp(CLIENT6, VIP6, 5353, 53);
    assert_eq!(quoted, original, "the quote is what the client sent");
    assert_eq!(l.int.stats().get(Counter::IcmpErrorNatReply), 1);

    // About no connection, with a bad checksum, or quoting too little.
    let other = ip6_udp(CLIENT6, RS6, 5354, 53);
    let unreach =
        || Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Port);
    let mut f = icmp6_err(true, RS6, CLIENT6, unreach(), &other);
    assert_eq!(
        go(&mut l.int, &mut f, 1, 3),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    let mut f = icmp6_err(true, RS6, CLIENT6, unreach(), &translated);
    let last = f.len() - 1;
    f[last] ^= 0x40;
    assert_eq!(
        go(&mut l.int, &mut f, 1, 3),
        Verdict::Drop(Counter::DropIcmpv6BadChecksum)
    );
    let mut f = icmp6_err(true, RS6, CLIENT6, unreach(), &translated[..42]);
    assert_eq!(
        go(&mut l.int, &mut f, 1, 3),
        Verdict::Drop(Counter::DropIcmpErrorMalformed)
    );
    // Quoting a packet another client sent: not this client's error.
    let stranger = ip6_udp(ROUTER6, RS6, 5353, 53);
    let mut f = icmp6_err(true, RS6, CLIENT6, unreach(), &stranger);
    assert_eq!(
        go(&mut l.int, &mut f, 1, 3),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
}

#[test]
fn nat66_one_client_port_to_one_real_server_port_through_two_vips_conflicts() {
    let mut l = lab66();
    // [VIP6]:80 → RS6:8080, then [VIP6_ALL]:8080 → RS6:8080 from the same
    // client port: the real server's replies could not be told apart.
    let mut s = client_tcp6(VIP6, 80, "S", 64);
    assert_eq!(go(&mut l.ext, &mut s, 0, 1), Verdict::Tx(1));
    let mut s2 = client_tcp6(VIP6_ALL, 8080, "S", 64);
    assert_eq!(
        go(&mut l.ext, &mut s2, 0, 2),
        Verdict::Drop(Counter::DropNatConflict)
    );
    assert_eq!(l.table.len(), 2, "nothing of the second left behind");
    assert_eq!(conns(&l), (0, 1));
    // Another client port is fine.
    let mut s3 = client_tcp6(VIP6_ALL, 8080, "S", 64);
    s3[ETH + 40..ETH + 42].copy_from_slice(&40002u16.to_be_bytes());
    assert_eq!(go(&mut l.ext, &mut s3, 0, 3), Verdict::Tx(1));
    assert_eq!(l.table.len(), 4);
}

/// The backup's side of NAT66 sync: where `apply6` stores the peer's
/// NAT66 connections (the lab's table) and its own clients' return paths.
fn sink(l: &Lab66) -> (Arc<SharedConnTable<ConnKey6>>, Arc<ClientMacs6>) {
    (l.table.clone(), l.clients.clone())
}

#[test]
fn nat66_connections_sync_and_the_backup_carries_them_both_ways() {
    use crate::conntrack::sync::{decode_any, encode6, Records, SyncKind};
    use crate::pipeline::sync6::{apply6, Nat6Sink};
    use crossbeam::queue::ArrayQueue;
    // The master: both workers queue records (a state change may come from
    // either direction).
    let q = Arc::new(ArrayQueue::new(64));
    let synced = Arc::new(SharedConnTable::new(64, 3));
    let mut m = lab66();
    m.ext = m.ext.with_sync6(q.clone(), synced.clone());
    m.int = m.int.with_sync6(q.clone(), synced.clone());
    let mut s = client_tcp6(VIP6, 80, "S", 64);
    assert_eq!(go(&mut m.ext, &mut s, 0, 1), Verdict::Tx(1));
    let mut sa = server_tcp6(8080, "SA", 64);
    assert_eq!(go(&mut m.int, &mut sa, 1, 2), Verdict::Tx(0));
    let mut a = client_tcp6(VIP6, 80, "A", 64);
    assert_eq!(go(&mut m.ext, &mut a, 0, 3), Verdict::Tx(1));
    let recs: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    assert!(recs.iter().all(|r| r.kind == SyncKind::NatConn), "{recs:?}");
    let first = recs.first().expect("a record on creation");
    assert_eq!(
        (first.client_ip, first.client_port, first.vip, first.vport),
        (CLIENT6, 40000, VIP6, 80)
    );
    assert_eq!((first.rs_ip, first.rs_port), (RS6, 8080));
    assert_eq!(first.state, ConnState::SynRecv as u8);
    assert_eq!((first.client_mac, first.client_via_port), (CLIENT_MAC.0, 0));
    let last = recs.last().unwrap();
    assert_eq!(last.state, ConnState::Established as u8, "{recs:?}");

    // On the wire and back (a version-2 datagram).
    let Records::V6(back) = decode_any(&encode6(&recs)[0]).unwrap() else {
        panic!("IPv6 records read as IPv4");
    };
    assert_eq!(back, recs);

    // Two backups: one sees the real server's packet first after the
    // failover, the other the client's; each carries the connection on
    // from either direction, to the same real server and port.
    for reply_first in [true, false] {
        let mut b = lab66();
        let (table, clients) = sink(&b);
        let nat = Nat6Sink {
            table: &table,
            clients: &clients,
        };
        let own = SharedConnTable::new(64, 9);
        let snap = b.ext.snapshot().clone();
        for r in &back {
            apply6(&own, nat, &snap, r, 10).unwrap();
        }
        assert_eq!(table.len(), 2, "the request and the reply entry");
        assert_eq!(own.len(), 0, "nothing under a sync key");
        let reply = |b: &mut Lab66| {
            let mut d = server_tcp6(8080, "A", 64);
            assert_eq!(go(&mut b.int, &mut d, 1, 11), Verdict::Tx(0));
            assert_eq!(check6(&d), (VIP6, CLIENT6, 80, 40000, 63));
            // The client's MAC came with the record.
            assert_eq!(dst_mac(&d), CLIENT_MAC);
        };
        let request = |b: &mut Lab66| {
            let mut d = client_tcp6(VIP6, 80, "A", 64);
            assert_eq!(go(&mut b.ext, &mut d, 0, 12), Verdict::Tx(1));
            assert_eq!(check6(&d), (CLIENT6, RS6, 40000, 8080, 63));
        };
        if reply_first {
            reply(&mut b);
            request(&mut b);
        } else {
            request(&mut b);
            reply(&mut b);
        }
        assert_eq!(b.ext.stats().get(Counter::ConnCreated), 0, "not a new one");
        // The peer's connection is not counted here (as IPv4 NAT's).
        assert_eq!(conns(&b), (0, 0));
        // The client closes through the new master: the state moves on and
        // the counts stay right.
        let mut fin = client_tcp6(VIP6, 80, "FA", 64);
        assert_eq!(go(&mut b.ext, &mut fin, 0, 13), Verdict::Tx(1));
        assert_eq!(conns(&b), (0, 0));
        let later = 10 * 60 * 1000;
        for w in [&mut b.ext, &mut b.int] {
            w.housekeeping(later, 1 << 20);
        }
        assert_eq!(table.len(), 0, "expired and swept");
        assert_eq!(conns(&b), (0, 0));
    }
}

#[test]
fn a_synced_nat66_connection_to_a_server_not_here_is_refused() {
    use crate::conntrack::sync::{SyncKind, SyncRecord6};
    use crate::pipeline::sync::ApplyError;
    use crate::pipeline::sync6::{apply6, Nat6Sink};
    let b = lab66();
    let (table, clients) = sink(&b);
    let nat = Nat6Sink {
        table: &table,
        clients: &clients,
    };
    let own = SharedConnTable::new(64, 9);
    let snap = b.ext.snapshot().clone();
    let rec = SyncRecord6 {
        kind: SyncKind::NatConn,
        proto: 6,
        state: ConnState::Established as u8,
        client_ip: CLIENT6,
        client_port: 40000,
        vip: VIP6,
        vport: 80,
        rs_ip: "2001:db8:10::99".parse().unwrap(),
        rs_port: 8080,
        timeout_ms: 900_000,
        client_mac: CLIENT_MAC.0,
        client_via_port: 0,
    };
    assert_eq!(
        apply6(&own, nat, &snap, &rec, 1),
        Err(ApplyError::NoRealServer)
    );
    // A DR record for a real server forwarded by NAT here: refused too.
    let dr = SyncRecord6 {
        kind: SyncKind::Conn,
        rs_ip: RS6,
        ..rec
    };
    assert_eq!(
        apply6(&own, nat, &snap, &dr, 1),
        Err(ApplyError::KindMismatch)
    );
    assert_eq!((table.len(), own.len()), (0, 0));
    // Nothing stored: the client's next segment (no SYN) finds nothing.
    let mut b = b;
    let mut a = client_tcp6(VIP6, 80, "A", 64);
    assert!(matches!(go(&mut b.ext, &mut a, 0, 2), Verdict::Drop(_)));
}
