//! NAT through two workers (external and internal port) over one shared
//! table: a request and its reply on different workers, UDP, synced NAT
//! connections, random frames.

use super::*;
use etherparse::TransportSlice;

#[test]
fn a_synced_nat_connection_continues_on_the_backup() {
    let (ext, int) = nat_workers();
    let q = Arc::new(crossbeam::queue::ArrayQueue::new(16));
    let mut ext = ext.with_sync(q.clone());
    let mut int = int.with_sync(q.clone());
    let mut f = client_tcp("S");
    assert_eq!(ext.process(&mut f, 0, 0), Verdict::Tx(1));
    let mut r = server_tcp("SA");
    assert_eq!(int.process(&mut r, 1, 1), Verdict::Tx(0));
    let mut a = client_tcp("A");
    assert_eq!(ext.process(&mut a, 0, 2), Verdict::Tx(1));
    let recs: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    assert!(
        recs.len() >= 2
            && recs
                .iter()
                .all(|r| r.kind == crate::conntrack::sync::SyncKind::NatConn),
        "{recs:?}"
    );
    assert_eq!(recs[0].client_mac, CLIENT_MAC.0);
    assert_eq!(recs[0].rs_port, 8080);

    // The backup: its own table and client MACs, filled by sync only.
    let mut lab2 = two_armed_nat();
    let (table2, clients2) = (lab2.table.clone(), lab2.clients.clone());
    let mut int2 = lab2.workers.pop().unwrap();
    let mut ext2 = lab2.workers.pop().unwrap();
    for r in &recs {
        crate::pipeline::sync::apply(&table2, &clients2, ext2.snapshot(), r, 10).unwrap();
    }
    // Both directions of the established connection go on.
    let mut a2 = client_tcp("A");
    assert_eq!(ext2.process(&mut a2, 0, 20), Verdict::Tx(1));
    assert_eq!(check(&a2).2, RS);
    let mut r2 = server_tcp("A");
    assert_eq!(int2.process(&mut r2, 1, 21), Verdict::Tx(0));
    assert_eq!(
        dst_mac(&r2),
        CLIENT_MAC,
        "the client's MAC came with the record"
    );
    assert_eq!(check(&r2).0, VIP);
    assert_eq!(
        ext2.stats().get(Counter::ConnCreated),
        0,
        "not scheduled again"
    );
    // Not counted as this director's: ActiveConn sums stay at zero.
    let rs = ext2.snapshot().services[0].reals[0].id as usize;
    let act = ext2.stats().rs[rs].active() + int2.stats().rs[rs].active();
    assert_eq!(act, 0);
}

fn client_tcp(flags: &str) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(CLIENT_MAC.0, EXT_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .tcp(40000, 80, 1000, 65535);
    for c in flags.chars() {
        b = match c {
            'S' => b.syn(),
            'A' => b.ack(1),
            'F' => b.fin(),
            _ => b,
        };
    }
    let mut f = Vec::new();
    b.write(&mut f, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    f
}

fn server_tcp(flags: &str) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(RS_MAC.0, INT_MAC.0)
        .ipv4(RS, CLIENT, 64)
        .tcp(8080, 40000, 5000, 65535);
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

/// Addresses, ports, and checksum validity of a TCP frame.
fn check(f: &[u8]) -> ([u8; 4], u16, [u8; 4], u16, u8) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(h.calc_header_checksum(), h.header_checksum);
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!()
    };
    assert_eq!(
        t.checksum(),
        t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap()
    );
    (
        h.source,
        t.source_port(),
        h.destination,
        t.destination_port(),
        h.time_to_live,
    )
}

#[test]
fn request_and_reply_on_different_workers() {
    let (mut ext, mut int) = nat_workers();
    // Client SYN on the external worker: to the real server's address and port.
    let mut f = client_tcp("S");
    assert_eq!(ext.process(&mut f, 0, 0), Verdict::Tx(1));
    assert_eq!(check(&f), (CLIENT, 40000, RS, 8080, 63));
    assert_eq!(dst_mac(&f), RS_MAC);
    assert_eq!(&f[6..12], &INT_MAC.0);
    // Server SYN-ACK on the internal worker: back from the VIP to the client's MAC.
    let mut f = server_tcp("SA");
    assert_eq!(int.process(&mut f, 1, 1), Verdict::Tx(0));
    assert_eq!(check(&f), (VIP, 80, CLIENT, 40000, 63));
    assert_eq!(dst_mac(&f), CLIENT_MAC);
    assert_eq!(&f[6..12], &EXT_MAC.0);
    // Client ACK: ESTABLISHED, counted active (by the external worker).
    let mut f = client_tcp("A");
    assert_eq!(ext.process(&mut f, 0, 2), Verdict::Tx(1));
    let rs = ext.snapshot().services[0].reals[0].id as usize;
    let active = |a: &Worker, b: &Worker| a.stats().rs[rs].active() + b.stats().rs[rs].active();
    let inactive =
        |a: &Worker, b: &Worker| a.stats().rs[rs].inactive() + b.stats().rs[rs].inactive();
    assert_eq!((active(&ext, &int), inactive(&ext, &int)), (1, 0));
    // The server closes first (seen by the internal worker): inactive.
    let mut f = server_tcp("FA");
    assert_eq!(int.process(&mut f, 1, 3), Verdict::Tx(0));
    assert_eq!((active(&ext, &int), inactive(&ext, &int)), (0, 1));
    assert_eq!(
        int.stats().rs[rs].active(),
        -1,
        "counted out by the other worker"
    );
    // Replies for unknown connections are counted drops.
    let mut f = server_tcp("A");
    f[37] ^= 1; // another client port
    assert_eq!(
        int.process(&mut f, 1, 4),
        Verdict::Drop(Counter::DropNatNoConn)
    );
    assert_eq!(ext.stats().get(Counter::FwdNat), 2);
    assert_eq!(int.stats().get(Counter::FwdNatReply), 2);
    // Expiry by the sweepers (each owns a slice) forgets the connection.
    ext.housekeeping(10_000_000, 1 << 20);
    int.housekeeping(10_000_000, 1 << 20);
    assert_eq!((active(&ext, &int), inactive(&ext, &int)), (0, 0));
}

#[test]
fn udp_nat_round_trip() {
    let (mut ext, mut int) = nat_workers();
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, EXT_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .udp(5353, 53)
        .write(&mut f, b"query")
        .unwrap();
    assert_eq!(ext.process(&mut f, 0, 0), Verdict::Tx(1));
    let mut r = Vec::new();
    PacketBuilder::ethernet2(RS_MAC.0, INT_MAC.0)
        .ipv4(RS, CLIENT, 64)
        .udp(53, 5353)
        .write(&mut r, b"answer")
        .unwrap();
    assert_eq!(int.process(&mut r, 1, 1), Verdict::Tx(0));
    let p = SlicedPacket::from_ethernet(&r).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(h.source, VIP);
    let Some(TransportSlice::Udp(u)) = p.transport else {
        panic!()
    };
    assert_eq!(u.source_port(), 53);
    assert_eq!(
        u.checksum(),
        u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap()
    );
}

#[test]
fn nat_frames_from_random_bytes_never_panic() {
    let (_, mut int) = nat_workers();
    let mut x = 12345u64;
    for _ in 0..20_000 {
        let mut f = server_tcp("A");
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % f.len() as u64) as usize;
        f[i] = (x >> 32) as u8;
        let cut = (x >> 40) as usize % 20;
        f.truncate(f.len() - cut);
        let _ = int.process(&mut f, 1, 0);
    }
}

/// Ports whose NIC computes IPv4 header checksums: both directions ask for
/// it (and nothing else), and what leaves the NIC is byte for byte what the
/// software path sends.
#[test]
fn nat_leaves_the_ipv4_checksum_to_a_nic_that_offers_it() {
    use crate::pipeline::buf::NicBuf;
    let all = TxChecksums::IPV4
        .union(TxChecksums::TCP)
        .union(TxChecksums::UDP);
    let (mut ext_sw, mut int_sw) = nat_workers();
    let (mut ext, mut int) = nat_workers();
    ext.set_tx_checksums(&[all, all]);
    int.set_tx_checksums(&[all, all]);
    for (i, (frame, to_int)) in [
        (client_tcp("S"), true),
        (server_tcp("SA"), false),
        (client_tcp("A"), true),
    ]
    .into_iter()
    .enumerate()
    {
        let (sw, hw, port) = if to_int {
            (&mut ext_sw, &mut ext, 0)
        } else {
            (&mut int_sw, &mut int, 1)
        };
        let mut soft = frame.clone();
        let v = sw.process_buf(&mut soft, port, i as u32);
        let mut nic = NicBuf::new(frame);
        assert_eq!(hw.process_buf(&mut nic, port, i as u32), v, "frame {i}");
        assert_eq!(nic.requests, [(ETH, 20, TxChecksums::IPV4)], "frame {i}");
        assert_eq!(nic.transmit(), soft, "frame {i}");
        check(&soft);
    }
}

/// A reply reads its request entry from the slot its reply entry links
/// to; when that slot holds another entry (the request entry was removed
/// and made again elsewhere), the link is detected as stale and the reply
/// finds the request entry by its key, and drives its state as before.
#[test]
fn a_reply_finds_its_request_entry_moved_to_another_slot() {
    use crate::conntrack::keyspace::EntryFlags;
    let mut lab = two_armed_nat();
    let table = lab.table.clone();
    let mut int = lab.workers.pop().unwrap();
    let mut ext = lab.workers.pop().unwrap();
    for (f, on_ext, now) in [("S", true, 0), ("SA", false, 1), ("A", true, 2)] {
        let (mut fr, w, port) = if on_ext {
            (client_tcp(f), &mut ext, 0)
        } else {
            (server_tcp(f), &mut int, 1)
        };
        assert_ne!(
            w.process(&mut fr, port, now),
            Verdict::Drop(Counter::DropNatNoConn)
        );
    }
    let key = ConnKey {
        proto: 6,
        client_ip: u32::from_be_bytes(CLIENT),
        client_port: 40000,
        vip: u32::from_be_bytes(VIP),
        vport: 80,
    };
    let rk = crate::pipeline::nat::reply_key(6, u32::from_be_bytes(RS), 8080, key.client_ip, 40000);
    let h = table.hash(&key);
    let e = table.lookup(&key, h, 3).expect("the request entry");
    let re = table
        .lookup(&rk, table.hash(&rk), 3)
        .expect("the reply entry");
    assert_eq!(re.link(), Some(e.index), "linked at creation");
    assert_eq!(
        table.linked(&re, &key, &key.words(), 3).map(|l| l.index),
        Some(e.index)
    );
    // Move the request entry: free its slot, fill it with another key of
    // the same window, and insert the request entry again (elsewhere).
    assert!(table.remove(&e));
    let mut fillers = Vec::new();
    for port in 1..=8u16 {
        let k = ConnKey {
            client_port: port,
            ..key
        };
        let i = table
            .insert(&k, h, 0, 1_000_000, 2, EntryFlags::NONE, 3, |_| {})
            .expect("room in the window");
        fillers.push((k, i));
        if i == e.index {
            break;
        }
    }
    for (k, i) in &fillers {
        if *i != e.index {
            let f = table.lookup(k, h, 3).unwrap();
            assert!(table.remove(&f));
        }
    }
    let moved = table
        .insert(&key, h, e.rs, e.expires, e.state, e.flags, 3, |_| {})
        .expect("room in the window");
    assert_ne!(moved, e.index);
    assert!(
        table.linked(&re, &key, &key.words(), 3).is_none(),
        "the stale link is detected"
    );
    // The reply still goes back from the VIP, and its FIN moves the moved
    // entry's state (ESTABLISHED, server closes: FIN_WAIT).
    let mut f = server_tcp("FA");
    assert_eq!(int.process(&mut f, 1, 4), Verdict::Tx(0));
    assert_eq!(check(&f), (VIP, 80, CLIENT, 40000, 63));
    let now = table.lookup(&key, h, 4).unwrap();
    assert_eq!(now.index, moved);
    assert_eq!(ConnState::from_u8(now.state), ConnState::FinWait);
    assert_eq!(int.stats().get(Counter::FwdNatReply), 2);
}
