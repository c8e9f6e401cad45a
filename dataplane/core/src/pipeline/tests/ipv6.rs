//! IPv6: DR forwarding, scheduling and persistence over 128-bit clients,
//! Neighbour Discovery, ICMPv6, and malformed frames each dropped and
//! counted by reason. Frames are built by etherparse (an independent
//! implementation) or by the wire builders, and checked by etherparse.

use super::accounting::{check_frame, Counts};
use super::frames6::*;
use super::*;
use crate::wire::ipv6::solicited_node;
use crate::wire::ndp;
use etherparse::{Icmpv6Type, NetSlice, TransportSlice};
use std::net::Ipv6Addr;

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const DIR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const RS1_6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);
const RS2_6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x12);

/// A dual-stack lab: the IPv4 services of [`config`] and IPv6 services on
/// VIP6 (TCP 80 by `sched`, UDP 53, TCP 8443 persistent per /64, all
/// ports of VIP6 + 1 ... by DR to RS1_6/RS2_6).
fn config6(sched: &str, extra: &str) -> Config {
    let cfg: Config = ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24",
                     address6: Some("2001:db8::2/64"))],
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.18.0.11"), (address: "198.18.0.12")]),
                (vip: "2001:db8::100", port: 80, scheduler: {sched}, real_servers: [
                    (address: "2001:db8::11"), (address: "2001:db8::12")]),
                (vip: "2001:db8::100", port: 53, protocol: Udp, real_servers: [
                    (address: "2001:db8::11")]),
                (vip: "2001:db8::100", port: 8443, scheduler: Rr,
                 persistence: Some((timeout: 60, prefix: Some(64))), real_servers: [
                    (address: "2001:db8::11"), (address: "2001:db8::12")]),
                (vip: "2001:db8::101", port: 0, scheduler: Rr,
                 persistence: Some((timeout: 300)), real_servers: [
                    (address: "2001:db8::11"), (address: "2001:db8::12")]),
                {extra}
            ],
        )"#
    ))
    .unwrap();
    let errors = crate::config::validate(&cfg);
    assert!(errors.is_empty(), "{errors:?}");
    cfg
}

fn rs_mac6(ip: std::net::IpAddr) -> MacAddr {
    match ip {
        std::net::IpAddr::V6(a) if a == RS1_6 => RS1_MAC,
        std::net::IpAddr::V6(_) => RS2_MAC,
        std::net::IpAddr::V4(a) if a == Ipv4Addr::new(198, 18, 0, 11) => RS1_MAC,
        std::net::IpAddr::V4(_) => RS2_MAC,
    }
}

/// A worker over [`config6`], its neighbours resolved if `resolve`.
fn lab6(sched: &str, resolve: bool) -> Lab {
    let cfg = config6(sched, "");
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[DIR_MAC], &mut reg, &neigh, 1).unwrap());
    if resolve {
        for e in neigh.entries() {
            neigh.learn(e.slot, e.ip, rs_mac6(e.ip), 0);
        }
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let w = Worker::new(snap, ConnTable::new(1024, 5), stats, neigh.clone());
    Lab { w, neigh, reg }
}

fn echo6(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv6(src.octets(), dst.octets(), 64)
        .icmpv6_echo_request(0x1234, 7);
    let mut out = Vec::new();
    b.write(&mut out, b"ping6 payload").unwrap();
    out
}

/// Process `frame` and check its accounting (exactly one outcome).
fn run(w: &mut Worker, frame: &mut Vec<u8>, now: Tick) -> Verdict {
    let before = Counts::of(w.stats());
    let v = w.process_buf(frame, 0, now);
    let after = Counts::of(w.stats());
    check_frame(&before, &after, v, true).unwrap();
    v
}

fn count(w: &Worker, c: Counter) -> u64 {
    w.stats().get(c)
}

/// A Neighbour Solicitation for `target` from `src` (with `src_mac` as its
/// source link-layer address), to the target's solicited-node group.
fn ns(src: Ipv6Addr, src_mac: MacAddr, target: Ipv6Addr) -> Vec<u8> {
    let mut f = vec![0; ndp::FRAME_LEN];
    ndp::build_ns(&mut f, src_mac, src, target);
    f
}

#[test]
fn ipv6_dr_alternates_and_keeps_connections() {
    let mut l = lab6("Rr", true);
    let mut seen = Vec::new();
    for sport in [40000, 40001, 40002, 40003] {
        let orig = tcp6(CLIENT6, VIP6, sport, 80, true);
        let mut f = orig.clone();
        assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0));
        assert_eq!(&f[6..12], &DIR_MAC.0, "our MAC as source");
        assert_eq!(&f[12..], &orig[12..], "IPv6 packet untouched");
        seen.push(dst_mac(&f));
        // The connection's next segment goes to the same server.
        let mut a = tcp6(CLIENT6, VIP6, sport, 80, false);
        assert_eq!(run(&mut l.w, &mut a, 2), Verdict::Tx(0));
        assert_eq!(dst_mac(&a), dst_mac(&f));
    }
    assert_eq!(seen, [RS1_MAC, RS2_MAC, RS1_MAC, RS2_MAC]);
    assert_eq!(count(&l.w, Counter::ConnCreated), 4);
    assert_eq!(count(&l.w, Counter::FwdDr), 8);
    assert_eq!(l.w.table6().unwrap().len(), 4);
    // IPv4 goes on beside it, in its own table.
    let mut f4 = syn(1234);
    assert_eq!(run(&mut l.w, &mut f4, 3), Verdict::Tx(0));
    assert_eq!(l.w.table().len(), 1);
}

#[test]
fn ipv6_unknown_segments_udp_and_port_zero() {
    let mut l = lab6("Rr", true);
    let mut f = tcp6(CLIENT6, VIP6, 40000, 80, false);
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropTcpNoConn)
    );
    let mut f = tcp6(CLIENT6, VIP6, 40000, 81, true);
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropNoService)
    );
    let mut u = udp6(CLIENT6, VIP6, 5353, 53);
    assert_eq!(run(&mut l.w, &mut u, 1), Verdict::Tx(0));
    assert_eq!(dst_mac(&u), RS1_MAC);
    // A service on all ports of 2001:db8::101 takes any port, each flow
    // its own connection.
    let vip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x101);
    for (sport, dport) in [(1000, 22), (1001, 8080)] {
        let mut f = tcp6(CLIENT6, vip, sport, dport, true);
        assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0));
    }
    assert_eq!(l.w.table6().unwrap().len(), 3);
}

#[test]
fn ipv6_unresolved_real_server_is_asked_for() {
    let mut l = lab6("Rr", false);
    let mut f = tcp6(CLIENT6, VIP6, 40000, 80, true);
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropNeighUnresolved)
    );
    // The control side solicits it: an NS from the port's address6.
    let mut out = Vec::new();
    l.neigh.tick(10, 1000, 30_000, 90_000, &mut out);
    assert!(out.iter().any(|r| r.ip == std::net::IpAddr::V6(RS1_6)));
    let mut buf = [0u8; 96];
    let n = ndp_solicit(&mut buf, DIR_MAC, DIR6, RS1_6);
    let p = SlicedPacket::from_ethernet(&buf[..n]).unwrap();
    let Some(NetSlice::Ipv6(ip)) = p.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.header().destination_addr(), solicited_node(RS1_6));
    // Its advertisement teaches the worker its MAC.
    let mut na = vec![0; ndp::FRAME_LEN];
    ndp::build_solicited_na(&mut na, RS1_MAC, RS1_6, DIR_MAC, DIR6);
    assert_eq!(run(&mut l.w, &mut na, 20), Verdict::Consumed);
    assert_eq!(count(&l.w, Counter::NdpLearned), 1);
    let slot = l.w.snapshot().neighbours6[&u128::from(RS1_6)];
    assert_eq!(l.neigh.mac(slot as usize), Some(RS1_MAC));
    // So does a solicitation from it carrying its link-layer address.
    let mut s = ns(RS2_6, RS2_MAC, DIR6);
    assert_eq!(run(&mut l.w, &mut s, 21), Verdict::Tx(0));
    let slot2 = l.w.snapshot().neighbours6[&u128::from(RS2_6)];
    assert_eq!(l.neigh.mac(slot2 as usize), Some(RS2_MAC));
}

#[test]
fn ipv6_sh_and_mh_hash_the_whole_client_address() {
    for sched in ["Sh", "Mh"] {
        let mut l = lab6(sched, true);
        let mut by_client = std::collections::HashMap::new();
        let mut servers = std::collections::HashSet::new();
        // Clients differing only in the high 64 bits, and only in the low.
        for i in 0..32u16 {
            let hi = Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 1);
            let lo = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i + 2);
            for (k, c) in [hi, lo].into_iter().enumerate() {
                for sport in [1000, 2000] {
                    let mut f = tcp6(c, VIP6, sport + k as u16 * 7 + i, 80, true);
                    assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0));
                    let m = dst_mac(&f);
                    servers.insert((k, m));
                    // One client, one server, whatever its port.
                    assert_eq!(*by_client.entry(c).or_insert(m), m, "{sched} {c}");
                }
            }
        }
        // Both halves of the address move clients between servers.
        for k in 0..2 {
            assert!(
                servers.contains(&(k, RS1_MAC)) && servers.contains(&(k, RS2_MAC)),
                "{sched}: half {k} of the address does not spread clients: {servers:?}"
            );
        }
    }
}

#[test]
fn ipv6_persistence_groups_a_client_prefix() {
    let mut l = lab6("Rr", true);
    // Two clients of one /64 (rr would alternate): one server.
    let a = Ipv6Addr::new(0x2001, 0xdb8, 7, 7, 0, 0, 0, 1);
    let b = Ipv6Addr::new(0x2001, 0xdb8, 7, 7, 0xffff, 0, 0, 2);
    let mut macs = Vec::new();
    for (c, sport) in [(a, 1000), (b, 1001), (a, 1002), (b, 1003)] {
        let mut f = tcp6(c, VIP6, sport, 8443, true);
        assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0));
        macs.push(dst_mac(&f));
    }
    assert!(macs.iter().all(|&m| m == macs[0]), "{macs:?}");
    assert_eq!(count(&l.w, Counter::PersistTemplateCreated), 1);
    assert_eq!(count(&l.w, Counter::PersistTemplateUsed), 3);
    // Another /64 gets the next server by rr.
    let other = Ipv6Addr::new(0x2001, 0xdb8, 7, 8, 0, 0, 0, 1);
    let mut f = tcp6(other, VIP6, 1004, 8443, true);
    assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0));
    assert_ne!(dst_mac(&f), macs[0]);
}

#[test]
fn ipv6_templates_sync_and_the_backup_keeps_the_affinity() {
    use crate::conntrack::shared::SharedConnTable;
    use crate::conntrack::sync::{decode_any, encode6, Records, SyncKind};
    use crate::pipeline::sync6::apply6;
    use crossbeam::queue::ArrayQueue;
    let vip101 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x101);
    // The master: a client of 2001:db8:7:7::/64 on the /64-persistent
    // service, another on the all-ports one (per address).
    let q = Arc::new(ArrayQueue::new(64));
    let mut master = lab6("Rr", true)
        .w
        .with_sync6(q.clone(), Arc::new(SharedConnTable::new(64, 3)));
    let a = Ipv6Addr::new(0x2001, 0xdb8, 7, 7, 0, 0, 0, 1);
    let mut f = tcp6(a, VIP6, 1000, 8443, true);
    assert_eq!(run(&mut master, &mut f, 1), Verdict::Tx(0));
    let first = dst_mac(&f);
    let mut g = tcp6(a, vip101, 1001, 22, true);
    assert_eq!(run(&mut master, &mut g, 1), Verdict::Tx(0));
    let first101 = dst_mac(&g);
    let recs: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    let t: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == SyncKind::Template)
        .copied()
        .collect();
    assert_eq!(t.len(), 2, "{recs:?}");
    assert_eq!(
        t[0].client_ip,
        Ipv6Addr::new(0x2001, 0xdb8, 7, 7, 0, 0, 0, 0),
        "masked /64"
    );
    assert_eq!((t[0].vip, t[0].vport, t[0].client_port), (VIP6, 8443, 0));
    assert_eq!(t[0].timeout_ms, 60_000, "the persistence timeout");
    assert_eq!((t[1].client_ip, t[1].vip, t[1].vport), (a, vip101, 0));
    assert_eq!(t[1].timeout_ms, 300_000);
    // A connection of the same client network reuses the template: no new
    // record.
    let mut f = tcp6(a, VIP6, 1002, 8443, true);
    run(&mut master, &mut f, 2);
    assert!(std::iter::from_fn(|| q.pop()).all(|r| r.kind == SyncKind::Conn));
    // The backup, its rr moved on by a client of another network (both
    // directors' rr start at the same server: without the template the
    // backup would send the next client elsewhere).
    let table = Arc::new(SharedConnTable::new(1024, 4));
    let bq = Arc::new(ArrayQueue::new(64));
    let mut backup = lab6("Rr", true).w.with_sync6(bq.clone(), table.clone());
    let elsewhere = Ipv6Addr::new(0x2001, 0xdb8, 9, 9, 0, 0, 0, 1);
    let mut f = tcp6(elsewhere, VIP6, 1000, 8443, true);
    run(&mut backup, &mut f, 1);
    assert_eq!(dst_mac(&f), first);
    let mut f = tcp6(elsewhere, vip101, 1000, 22, true);
    run(&mut backup, &mut f, 1);
    assert_eq!(dst_mac(&f), first101);
    let Records::V6(back) = decode_any(&encode6(&t)[0]).unwrap() else {
        panic!("IPv6 records read as IPv4");
    };
    for r in &back {
        apply6(&table, no_nat6(), backup.snapshot(), r, 10).unwrap();
    }
    let made = count(&backup, Counter::PersistTemplateCreated);
    // Another address of the client's /64, and the client on another port
    // of the all-ports service: where the master sent them.
    let b = Ipv6Addr::new(0x2001, 0xdb8, 7, 7, 0xffff, 0, 0, 2);
    let mut f = tcp6(b, VIP6, 2000, 8443, true);
    assert_eq!(run(&mut backup, &mut f, 11), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), first);
    let mut g = tcp6(a, vip101, 2001, 8080, true);
    assert_eq!(run(&mut backup, &mut g, 11), Verdict::Tx(0));
    assert_eq!(dst_mac(&g), first101);
    assert_eq!(count(&backup, Counter::PersistTemplateUsed), 2);
    assert_eq!(count(&backup, Counter::PersistTemplateCreated), made);
    // Adopted into the worker's own table (listed, refreshed there), and
    // not sent back to the peer as new.
    assert_eq!(backup.templates6().unwrap().len(), 4);
    let again: Vec<_> = std::iter::from_fn(|| bq.pop()).collect();
    let sent: Vec<_> = again
        .iter()
        .filter(|r| r.kind == SyncKind::Template)
        .collect();
    assert_eq!(sent.len(), 2, "only the backup's own two: {sent:?}");
    assert!(sent
        .iter()
        .all(|r| r.client_ip != t[0].client_ip && r.client_ip != a));
    let mut f = tcp6(b, VIP6, 2002, 8443, true);
    run(&mut backup, &mut f, 12);
    assert_eq!(dst_mac(&f), first);
    assert_eq!(count(&backup, Counter::PersistTemplateUsed), 3);
}

#[test]
fn a_synced_ipv6_template_to_a_server_out_of_service_is_not_used() {
    use crate::conntrack::shared::SharedConnTable;
    use crate::conntrack::sync::{SyncKind, SyncRecord6};
    use crate::pipeline::sync::ApplyError;
    use crate::pipeline::sync6::apply6;
    use crossbeam::queue::ArrayQueue;
    let table = Arc::new(SharedConnTable::new(1024, 4));
    let mut backup = lab6("Rr", true)
        .w
        .with_sync6(Arc::new(ArrayQueue::new(64)), table.clone());
    let net = Ipv6Addr::new(0x2001, 0xdb8, 7, 7, 0, 0, 0, 0);
    let rec = SyncRecord6 {
        kind: SyncKind::Template,
        proto: 6,
        state: 0,
        client_ip: net,
        client_port: 0,
        vip: VIP6,
        vport: 8443,
        rs_ip: RS2_6,
        rs_port: 8443,
        timeout_ms: 60_000,
        client_mac: [0; 6],
        client_via_port: 0,
    };
    let snap = backup.snapshot().clone();
    // A real server or service this director does not have: refused.
    let gone = SyncRecord6 {
        rs_ip: "2001:db8::99".parse().unwrap(),
        ..rec
    };
    assert_eq!(
        apply6(&table, no_nat6(), &snap, &gone, 1),
        Err(ApplyError::NoRealServer)
    );
    let nat = SyncRecord6 {
        kind: SyncKind::NatConn,
        ..rec
    };
    assert_eq!(
        apply6(&table, no_nat6(), &snap, &nat, 1),
        Err(ApplyError::KindMismatch)
    );
    apply6(&table, no_nat6(), &snap, &rec, 1).unwrap();
    // RS2 is down here: the client is scheduled (rr's first, RS1) and
    // gets a template of its own.
    use crate::pipeline::snapshot::RsHealth;
    let mut down = (*snap).clone();
    down.apply_health(|_, r| {
        if r.addr == std::net::IpAddr::V6(RS2_6) {
            RsHealth::Down {
                quiesce: false,
                expire: false,
            }
        } else {
            RsHealth::Up
        }
    });
    backup.set_snapshot(Arc::new(down));
    let mut f = tcp6(
        Ipv6Addr::new(0x2001, 0xdb8, 7, 7, 0, 0, 0, 5),
        VIP6,
        1000,
        8443,
        true,
    );
    assert_eq!(run(&mut backup, &mut f, 2), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS1_MAC);
    assert_eq!(count(&backup, Counter::PersistTemplateUsed), 0);
    assert_eq!(count(&backup, Counter::PersistTemplateCreated), 1);
}

#[test]
fn ipv6_connections_expire_and_counts_return_to_zero() {
    let mut l = lab6("Wlc", true);
    for sport in 0..10 {
        let mut f = tcp6(CLIENT6, VIP6, 1000 + sport, 80, true);
        assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0));
    }
    let rs: Vec<u32> = l.w.snapshot().services[1]
        .reals
        .iter()
        .map(|r| r.id)
        .collect();
    let inactive: i32 = rs
        .iter()
        .map(|&r| l.w.stats().rs[r as usize].inactive())
        .sum();
    assert_eq!(inactive, 10);
    // Long after every timeout, a full sweep empties the table.
    l.w.housekeeping(10_000_000, 1 << 20);
    assert_eq!(l.w.table6().unwrap().len(), 0);
    for &r in &rs {
        let st = &l.w.stats().rs[r as usize];
        assert_eq!((st.active(), st.inactive()), (0, 0));
    }
    assert_eq!(count(&l.w, Counter::ConnExpired), 10);
}

#[test]
fn ndp_answers_for_vips_and_own_addresses() {
    let mut l = lab6("Rr", true);
    let dir_ll = l.w.snapshot().ports[0].link_local;
    for target in [VIP6, DIR6, dir_ll] {
        let mut f = ns(CLIENT6, CLIENT_MAC, target);
        // To the solicited-node group's MAC (33:33:ff:..), not ours.
        assert_eq!(&f[..3], &[0x33, 0x33, 0xff]);
        assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0), "{target}");
        assert_eq!(dst_mac(&f), CLIENT_MAC);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else {
            panic!("not IPv6")
        };
        assert_eq!(ip.header().source_addr(), target);
        assert_eq!(ip.header().destination_addr(), CLIENT6);
        assert_eq!(ip.header().hop_limit(), 255);
        let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
            panic!("not ICMPv6")
        };
        let checksum = icmp
            .icmp_type()
            .calc_checksum(target.octets(), CLIENT6.octets(), icmp.payload())
            .unwrap();
        assert_eq!(icmp.checksum(), checksum);
        let msg = &f[ETH + 40..];
        match ndp::parse(target, CLIENT6, 255, msg).unwrap() {
            ndp::Neighbor::Advert(na) => {
                assert_eq!(na.target(), target);
                assert!(na.solicited() && na.override_flag());
                assert_eq!(na.target_lla(), Some(DIR_MAC));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(count(&l.w, Counter::NdpAdvertised), 3);
    // Unicast (a reachability check) too.
    let mut f = ns(CLIENT6, CLIENT_MAC, VIP6);
    f[..6].copy_from_slice(&DIR_MAC.0);
    let mut fixed = f.clone();
    // Readdress the IPv6 destination to the VIP and fix the checksum.
    fixed[ETH + 24..ETH + 40].copy_from_slice(&VIP6.octets());
    crate::wire::icmpv6::Icmpv6Packet::new_unchecked(&mut fixed[ETH + 40..])
        .fill_checksum(CLIENT6, VIP6);
    assert_eq!(run(&mut l.w, &mut fixed, 1), Verdict::Tx(0));
}

#[test]
fn ndp_dad_is_answered_to_all_nodes() {
    let mut l = lab6("Rr", true);
    // A duplicate address detection probe: from ::, with a nonce option
    // (as Linux sends it) or bare (78 bytes).
    for bare in [false, true] {
        let mut f = ns(Ipv6Addr::UNSPECIFIED, CLIENT_MAC, VIP6);
        let group = solicited_node(VIP6);
        if bare {
            f.truncate(ETH + 40 + 24);
            f[ETH + 4..ETH + 6].copy_from_slice(&24u16.to_be_bytes());
        } else {
            // The option slot becomes a nonce (type 14).
            f[ETH + 40 + 24] = 14;
        }
        crate::wire::icmpv6::Icmpv6Packet::new_unchecked(&mut f[ETH + 40..])
            .fill_checksum(Ipv6Addr::UNSPECIFIED, group);
        let len = f.len();
        assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0), "bare: {bare}");
        assert_eq!(f.len(), len);
        assert_eq!(
            dst_mac(&f),
            crate::wire::ipv6::multicast_mac(crate::wire::ipv6::ALL_NODES)
        );
        let plen = usize::from(u16::from_be_bytes([f[ETH + 4], f[ETH + 5]]));
        let msg = &f[ETH + 40..ETH + 40 + plen];
        match ndp::parse(VIP6, crate::wire::ipv6::ALL_NODES, 255, msg).unwrap() {
            ndp::Neighbor::Advert(na) => {
                assert_eq!(na.target(), VIP6);
                assert!(!na.solicited() && na.override_flag());
                let lla = if bare { None } else { Some(DIR_MAC) };
                assert_eq!(na.target_lla(), lla);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn ndp_foreign_targets_and_invalid_messages_are_dropped_by_reason() {
    let mut l = lab6("Rr", true);
    let foreign = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x77);
    let mut f = ns(CLIENT6, CLIENT_MAC, foreign);
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropNdpNotForUs)
    );
    // A bad checksum.
    let mut f = ns(CLIENT6, CLIENT_MAC, VIP6);
    f[ETH + 42] ^= 0x55;
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropIcmpv6BadChecksum)
    );
    // A hop limit other than 255 (the message crossed a router).
    let mut f = ns(CLIENT6, CLIENT_MAC, VIP6);
    f[ETH + 7] = 254;
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropNdpInvalid)
    );
    // For our target, but sent to another target's group.
    let mut f = ns(CLIENT6, CLIENT_MAC, VIP6);
    let other_group = solicited_node(foreign);
    f[ETH + 24..ETH + 40].copy_from_slice(&other_group.octets());
    crate::wire::icmpv6::Icmpv6Packet::new_unchecked(&mut f[ETH + 40..])
        .fill_checksum(CLIENT6, other_group);
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropNdpNotForUs)
    );
    // While VRRP backup, the VIP is not ours to answer for; our own
    // address still is.
    l.w.set_standby(true);
    let mut f = ns(CLIENT6, CLIENT_MAC, VIP6);
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropNdpNotForUs)
    );
    let mut f = ns(CLIENT6, CLIENT_MAC, DIR6);
    assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0));
    let mut f = tcp6(CLIENT6, VIP6, 1000, 80, true);
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropVrrpBackup)
    );
    // Other multicast (a router solicitation to all-routers) is dropped.
    let b = PacketBuilder::ethernet2(CLIENT_MAC.0, [0x33, 0x33, 0, 0, 0, 2])
        .ipv6(
            CLIENT6.octets(),
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            255,
        )
        .icmpv6(Icmpv6Type::Unknown {
            type_u8: 133,
            code_u8: 0,
            bytes5to8: [0; 4],
        });
    let mut rs = Vec::new();
    b.write(&mut rs, &[]).unwrap();
    assert_eq!(
        run(&mut l.w, &mut rs, 1),
        Verdict::Drop(Counter::DropIpv6Multicast)
    );
}

#[test]
fn icmpv6_echo_is_answered_for_vips_and_own_addresses() {
    let mut l = lab6("Rr", true);
    for dst in [VIP6, DIR6, l.w.snapshot().ports[0].link_local] {
        let mut f = echo6(CLIENT6, dst);
        assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0), "{dst}");
        assert_eq!(dst_mac(&f), CLIENT_MAC);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else {
            panic!("not IPv6")
        };
        assert_eq!(ip.header().source_addr(), dst);
        assert_eq!(ip.header().destination_addr(), CLIENT6);
        let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
            panic!("not ICMPv6")
        };
        let Icmpv6Type::EchoReply(h) = icmp.icmp_type() else {
            panic!("not an echo reply: {:?}", icmp.icmp_type())
        };
        assert_eq!((h.id, h.seq), (0x1234, 7));
        assert_eq!(icmp.payload(), b"ping6 payload");
        let checksum = icmp
            .icmp_type()
            .calc_checksum(dst.octets(), CLIENT6.octets(), icmp.payload())
            .unwrap();
        assert_eq!(icmp.checksum(), checksum);
    }
    assert_eq!(count(&l.w, Counter::Icmpv6EchoReplied), 3);
    let mut f = echo6(CLIENT6, VIP6);
    let n = f.len();
    f[n - 1] ^= 1;
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropIcmpv6BadChecksum)
    );
    // To an address that is none of ours.
    let mut f = echo6(CLIENT6, Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99));
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropIpv6NotLocal)
    );
}

/// An ICMPv6 error from a router to the VIP quoting `quoted` (an IPv6
/// packet the real server sent from the VIP).
fn icmp6_error(router: Ipv6Addr, ty: Icmpv6Type, quoted: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv6(router.octets(), VIP6.octets(), 64)
        .icmpv6(ty);
    let mut out = Vec::new();
    b.write(&mut out, quoted).unwrap();
    out
}

#[test]
fn icmpv6_errors_about_a_connection_go_to_its_real_server() {
    let mut l = lab6("Rr", true);
    let router = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);
    let mut s1 = tcp6(CLIENT6, VIP6, 40000, 80, true);
    run(&mut l.w, &mut s1, 1);
    let mut s2 = tcp6(CLIENT6, VIP6, 40001, 80, true);
    run(&mut l.w, &mut s2, 1);
    // What RS2 sent back, from the VIP to the client's port 40001.
    let reply = ip6_tcp(VIP6, CLIENT6, 80, 40001, 1400);
    let mut f = icmp6_error(
        router,
        Icmpv6Type::PacketTooBig { mtu: 1280 },
        &reply[..1232],
    );
    let orig = f.clone();
    assert_eq!(run(&mut l.w, &mut f, 2), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), dst_mac(&s2));
    assert_eq!(&f[12..], &orig[12..], "relayed untouched");
    assert_eq!(count(&l.w, Counter::IcmpErrorForwarded), 1);
    // About no connection of ours.
    let mut other = reply.clone();
    other[40 + 2..40 + 4].copy_from_slice(&40999u16.to_be_bytes());
    let mut f = icmp6_error(
        router,
        Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Port),
        &other[..200],
    );
    assert_eq!(
        run(&mut l.w, &mut f, 2),
        Verdict::Drop(Counter::DropIcmpErrorNoConn)
    );
    // Quoting too little to find it.
    let mut f = icmp6_error(router, Icmpv6Type::PacketTooBig { mtu: 1280 }, &reply[..42]);
    assert_eq!(
        run(&mut l.w, &mut f, 2),
        Verdict::Drop(Counter::DropIcmpErrorMalformed)
    );
    // With more workers, a miss is handed on.
    l.w.set_workers(2);
    let mut f = icmp6_error(
        router,
        Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Port),
        &other[..200],
    );
    assert_eq!(l.w.process_buf(&mut f, 0, 2), Verdict::Handoff);
}

/// An IPv6 packet to the VIP with raw extension headers `ext` (starting
/// with next header `first`) before a TCP SYN.
fn with_ext(first: u8, ext: &[u8]) -> Vec<u8> {
    let tcp = tcp6(CLIENT6, VIP6, 40000, 80, true);
    let l4 = &tcp[ETH + 40..];
    let mut f = tcp[..ETH + 40].to_vec();
    f[ETH + 6] = first;
    let plen = (ext.len() + l4.len()) as u16;
    f[ETH + 4..ETH + 6].copy_from_slice(&plen.to_be_bytes());
    f.extend_from_slice(ext);
    f.extend_from_slice(l4);
    f
}

/// A destination-options header (8 bytes of padding) naming `next`.
fn dest_opts(next: u8) -> [u8; 8] {
    [next, 0, 1, 4, 0, 0, 0, 0]
}

#[test]
fn ipv6_malformed_frames_are_dropped_by_reason() {
    let mut l = lab6("Rr", true);
    let good = tcp6(CLIENT6, VIP6, 40000, 80, true);
    let cases: Vec<(&str, Vec<u8>, Counter)> = vec![
        (
            "truncated header",
            good[..ETH + 39].to_vec(),
            Counter::DropIpv6Truncated,
        ),
        (
            "bad version",
            {
                let mut f = good.clone();
                f[ETH] = 0x45;
                f
            },
            Counter::DropIpv6BadVersion,
        ),
        (
            "payload length beyond the frame",
            {
                let mut f = good.clone();
                let n = (f.len() - ETH - 40 + 1) as u16;
                f[ETH + 4..ETH + 6].copy_from_slice(&n.to_be_bytes());
                f
            },
            Counter::DropIpv6BadPayloadLen,
        ),
        (
            "extension-header loop",
            with_ext(60, &[dest_opts(60); 9].concat()),
            Counter::DropIpv6ExtTooMany,
        ),
        (
            "fragment",
            with_ext(44, &[6, 0, 0, 1, 0, 0, 0, 1]),
            Counter::DropIpv6Fragment,
        ),
        (
            "extension header cut short",
            {
                let mut f = with_ext(60, &dest_opts(6));
                // A length of 2 (24 bytes) where 8 + the TCP header remain.
                f[ETH + 41] = 40;
                f
            },
            Counter::DropIpv6ExtTruncated,
        ),
        (
            "hop-by-hop after another header",
            with_ext(60, &[dest_opts(0), dest_opts(6)].concat()),
            Counter::DropIpv6ExtUnsupported,
        ),
        (
            "truncated TCP",
            {
                let mut f = good[..ETH + 50].to_vec();
                f[ETH + 4..ETH + 6].copy_from_slice(&10u16.to_be_bytes());
                f
            },
            Counter::DropTcpMalformed,
        ),
        (
            "source multicast",
            {
                let mut f = good.clone();
                f[ETH + 8] = 0xff;
                f
            },
            Counter::DropIpv6BadSource,
        ),
        (
            "land",
            tcp6(VIP6, VIP6, 80, 80, true),
            Counter::DropIpv6Land,
        ),
        (
            "not ours",
            tcp6(CLIENT6, RS1_6, 1, 80, true),
            Counter::DropIpv6NotLocal,
        ),
        (
            "unknown protocol",
            {
                let mut f = good.clone();
                f[ETH + 6] = 132;
                f
            },
            Counter::DropIpv6UnknownProtocol,
        ),
        (
            "ICMPv6 cut short",
            {
                let mut f = echo6(CLIENT6, VIP6)[..ETH + 44].to_vec();
                f[ETH + 4..ETH + 6].copy_from_slice(&4u16.to_be_bytes());
                f
            },
            Counter::DropIcmpv6Malformed,
        ),
    ];
    for (what, mut f, reason) in cases {
        assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Drop(reason), "{what}");
    }
    // Destination options that end at TCP are passed, and the packet
    // forwarded as it came.
    let orig = with_ext(60, &dest_opts(6));
    let mut f = orig.clone();
    assert_eq!(run(&mut l.w, &mut f, 1), Verdict::Tx(0));
    assert_eq!(&f[12..], &orig[12..]);
}

#[test]
fn control_frames_solicit_and_announce() {
    // What the control side sends: a solicitation for a real server (the
    // counterpart of `arp_request`), an unsolicited advertisement for a
    // VIP taken over (the counterpart of a gratuitous ARP). Both fit a
    // 96-byte control frame and pass RFC 4861's checks.
    let mut buf = [0u8; 96];
    let n = ndp_solicit(&mut buf, DIR_MAC, DIR6, RS1_6);
    assert_eq!(n, ndp::FRAME_LEN);
    let group = solicited_node(RS1_6);
    assert_eq!(&buf[..6], &crate::wire::ipv6::multicast_mac(group).0);
    match ndp::parse(DIR6, group, 255, &buf[ETH + 40..n]).unwrap() {
        ndp::Neighbor::Solicit(ns) => {
            assert_eq!(ns.target(), RS1_6);
            assert_eq!(ns.source_lla(), Some(DIR_MAC));
        }
        other => panic!("{other:?}"),
    }
    let mut buf = [0u8; 96];
    let n = unsolicited_na(&mut buf, DIR_MAC, VIP6);
    let all = crate::wire::ipv6::ALL_NODES;
    assert_eq!(&buf[..6], &crate::wire::ipv6::multicast_mac(all).0);
    assert_eq!(&buf[6..12], &DIR_MAC.0);
    match ndp::parse(VIP6, all, 255, &buf[ETH + 40..n]).unwrap() {
        ndp::Neighbor::Advert(na) => {
            assert_eq!(na.target(), VIP6);
            assert!(na.override_flag() && !na.solicited());
            assert_eq!(na.target_lla(), Some(DIR_MAC));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ipv4_only_configurations_drop_ipv6_as_before() {
    let mut l = lab("Rr", (1, 1), true);
    assert!(l.w.table6().is_none());
    let mut f = tcp6(CLIENT6, VIP6, 40000, 80, true);
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropUnknownEthertype)
    );
    let mut f = ns(CLIENT6, CLIENT_MAC, VIP6);
    assert_eq!(
        run(&mut l.w, &mut f, 1),
        Verdict::Drop(Counter::DropNotOurMac)
    );
}

/// A worker whose IPv6 service [2001:db8::100]:443 tunnels to RS1_6 and
/// RS2_6, on a port of MTU `mtu`.
fn tunnel6_lab(mtu: u16) -> Worker {
    let cfg: Config = ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24",
                     address6: Some("2001:db8::2/64"), mtu: {mtu})],
            services: [
                (vip: "2001:db8::100", port: 443, scheduler: Rr, real_servers: [
                    (address: "2001:db8::11", forward: Tunnel),
                    (address: "2001:db8::12", forward: Tunnel)]),
            ],
        )"#
    ))
    .unwrap();
    let errors = crate::config::validate(&cfg);
    assert!(errors.is_empty(), "{errors:?}");
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[DIR_MAC], &mut reg, &neigh, 1).unwrap());
    for e in neigh.entries() {
        neigh.learn(e.slot, e.ip, rs_mac6(e.ip), 0);
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    Worker::new(snap, ConnTable::new(1024, 5), stats, neigh)
}

/// A TCP segment to [VIP6]:443 with `payload` bytes of data.
fn tcp6_sized(sport: u16, syn: bool, payload: usize) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv6(CLIENT6.octets(), VIP6.octets(), 64)
        .tcp(sport, 443, 1000, 65535);
    b = if syn { b.syn() } else { b.ack(1) };
    let mut out = Vec::new();
    b.write(&mut out, &vec![b'x'; payload]).unwrap();
    out
}

/// Process a frame in a growable buffer (an mbuf's headroom), checking
/// its accounting.
fn run_buf(w: &mut Worker, frame: &mut Vec<u8>) -> Verdict {
    let before = Counts::of(w.stats());
    let v = w.process_buf(frame, 0, 1);
    check_frame(&before, &Counts::of(w.stats()), v, true).unwrap();
    v
}

#[test]
fn ipv6_tunnel_adds_an_outer_ipv6_header() {
    let mut w = tunnel6_lab(1500);
    let mut rs_seen = Vec::new();
    for sport in [1000, 1001] {
        let orig = tcp6_sized(sport, true, 0);
        let mut f = orig.clone();
        assert_eq!(run_buf(&mut w, &mut f), Verdict::Tx(0));
        assert_eq!(f.len(), orig.len() + 40);
        assert_eq!(&f[6..12], &DIR_MAC.0);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let outer = etherparse::Ipv6HeaderSlice::from_slice(&f[ETH..]).unwrap();
        assert_eq!(outer.next_header(), etherparse::IpNumber::IPV6);
        assert_eq!(outer.source_addr(), DIR6);
        assert_eq!(outer.hop_limit(), 64);
        assert_eq!(usize::from(outer.payload_length()), orig.len() - ETH);
        assert_eq!(&f[ETH + 40..], &orig[ETH..], "inner packet untouched");
        let rs = outer.destination_addr();
        assert_eq!(dst_mac(&f), rs_mac6(rs.into()));
        rs_seen.push(rs);
    }
    assert_eq!(rs_seen, [RS1_6, RS2_6]);
    assert_eq!(count(&w, Counter::FwdTunnel), 2);
    // An ICMPv6 error about the first connection is tunnelled to its
    // real server too.
    let reply = ip6_tcp(VIP6, CLIENT6, 443, 1000, 100);
    let router = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);
    let orig = icmp6_error(router, Icmpv6Type::PacketTooBig { mtu: 1280 }, &reply);
    let mut f = orig.clone();
    assert_eq!(run_buf(&mut w, &mut f), Verdict::Tx(0));
    let outer = etherparse::Ipv6HeaderSlice::from_slice(&f[ETH..]).unwrap();
    assert_eq!(outer.destination_addr(), RS1_6);
    assert_eq!(&f[ETH + 40..], &orig[ETH..]);
    assert_eq!(count(&w, Counter::IcmpErrorForwarded), 1);
}

#[test]
fn ipv6_tunnel_answers_too_big_packets_with_packet_too_big() {
    let mut w = tunnel6_lab(1400);
    let mut s = tcp6_sized(1000, true, 0);
    run_buf(&mut w, &mut s);
    // 40 + 20 + 1301 = 1361 bytes of IPv6: 1401 once tunnelled.
    let orig = tcp6_sized(1000, false, 1301);
    let mut f = orig.clone();
    assert_eq!(run_buf(&mut w, &mut f), Verdict::Tx(0));
    assert_eq!(count(&w, Counter::Icmpv6PtbSent), 1);
    assert_eq!(dst_mac(&f), CLIENT_MAC);
    let p = SlicedPacket::from_ethernet(&f).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.header().source_addr(), VIP6);
    assert_eq!(ip.header().destination_addr(), CLIENT6);
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
        panic!("not ICMPv6")
    };
    assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1360 });
    let sum = icmp
        .icmp_type()
        .calc_checksum(VIP6.octets(), CLIENT6.octets(), icmp.payload())
        .unwrap();
    assert_eq!(icmp.checksum(), sum);
    // As much of the packet as fits in 1280 bytes.
    assert!(icmp.payload() == &orig[ETH..ETH + 1232], "quote");
    // One that fits goes through.
    let mut f = tcp6_sized(1000, false, 1300);
    assert_eq!(run_buf(&mut w, &mut f), Verdict::Tx(0));
    assert_eq!(count(&w, Counter::FwdTunnel), 2);
}

#[test]
fn ipv6_tunnel_respects_the_minimum_mtu() {
    // A port of MTU 1300 cannot carry 1280-byte packets in a tunnel.
    let mut w = tunnel6_lab(1300);
    let mut s = tcp6_sized(1000, true, 0);
    run_buf(&mut w, &mut s);
    // 1280 bytes of IPv6: never announced below 1280, so dropped.
    let mut f = tcp6_sized(1000, false, 1280 - 60);
    assert_eq!(
        run_buf(&mut w, &mut f),
        Verdict::Drop(Counter::DropTunnelTooBig)
    );
    // Above 1280: Packet Too Big announcing 1280, quoting 1232 bytes.
    let orig = tcp6_sized(1000, false, 1400);
    let mut f = orig.clone();
    assert_eq!(run_buf(&mut w, &mut f), Verdict::Tx(0));
    assert_eq!(f.len(), ETH + 1280);
    let p = SlicedPacket::from_ethernet(&f).unwrap();
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
        panic!("not ICMPv6")
    };
    assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1280 });
    assert!(icmp.payload() == &orig[ETH..ETH + 1232], "quote");
}

#[test]
fn ipv6_connections_sync_and_continue_on_the_backup() {
    use crate::conntrack::shared::SharedConnTable;
    use crate::conntrack::sync::{decode_any, encode6, Records, SyncKind};
    use crate::pipeline::sync::ApplyError;
    use crate::pipeline::sync6::apply6;
    use crossbeam::queue::ArrayQueue;
    // The master: its records of a connection (SYN_RECV, then
    // ESTABLISHED) go to its IPv6 queue.
    let q = Arc::new(ArrayQueue::new(64));
    let mut master = lab6("Rr", true)
        .w
        .with_sync6(q.clone(), Arc::new(SharedConnTable::new(64, 3)));
    let mut s = tcp6(CLIENT6, VIP6, 40000, 80, true);
    assert_eq!(run(&mut master, &mut s, 1), Verdict::Tx(0));
    let rs_mac = dst_mac(&s);
    let mut a = tcp6(CLIENT6, VIP6, 40000, 80, false);
    assert_eq!(run(&mut master, &mut a, 2), Verdict::Tx(0));
    let recs: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(
        (recs[1].client_ip, recs[1].vip, recs[1].rs_ip),
        (CLIENT6, VIP6, RS1_6)
    );
    assert_eq!(recs[1].state, ConnState::Established as u8);
    // A standby master queues nothing.
    master.set_standby(true);
    let mut a = tcp6(CLIENT6, VIP6, 40000, 80, false);
    run(&mut master, &mut a, 3);
    assert!(q.is_empty());
    // Through the wire format to the backup, which stores them.
    let Records::V6(back) = decode_any(&encode6(&recs)[0]).unwrap() else {
        panic!("IPv6 records read as IPv4");
    };
    let table = Arc::new(SharedConnTable::new(1024, 4));
    let mut backup = lab6("Rr", true)
        .w
        .with_sync6(Arc::new(ArrayQueue::new(64)), table.clone());
    for r in &back {
        apply6(&table, no_nat6(), backup.snapshot(), r, 10).unwrap();
    }
    // After a failover the connection's next segment is adopted and goes
    // to the same real server; a flow nobody synced is refused.
    let mut next = tcp6(CLIENT6, VIP6, 40000, 80, false);
    assert_eq!(run(&mut backup, &mut next, 11), Verdict::Tx(0));
    assert_eq!(dst_mac(&next), rs_mac);
    assert_eq!(count(&backup, Counter::SyncAdopted), 1);
    assert_eq!(backup.table6().unwrap().len(), 1);
    let mut other = tcp6(CLIENT6, VIP6, 40001, 80, false);
    assert_eq!(
        run(&mut backup, &mut other, 12),
        Verdict::Drop(Counter::DropTcpNoConn)
    );
    // Records the backup cannot place are refused.
    let snap = backup.snapshot().clone();
    let mut r = back[1];
    r.vport = 81;
    assert_eq!(
        apply6(&table, no_nat6(), &snap, &r, 13),
        Err(ApplyError::NoService)
    );
    let mut r = back[1];
    r.rs_ip = "2001:db8::99".parse().unwrap();
    assert_eq!(
        apply6(&table, no_nat6(), &snap, &r, 13),
        Err(ApplyError::NoRealServer)
    );
    let mut r = back[1];
    r.kind = SyncKind::NatConn;
    assert_eq!(
        apply6(&table, no_nat6(), &snap, &r, 13),
        Err(ApplyError::KindMismatch)
    );
}

/// A NAT66 table and clients for `apply6` in tests of DR records.
fn no_nat6() -> crate::pipeline::sync6::Nat6Sink<'static> {
    crate::pipeline::sync6::Nat6Sink {
        table: Box::leak(Box::new(crate::conntrack::shared::SharedConnTable::new(
            64, 1,
        ))),
        clients: Box::leak(Box::new(crate::pipeline::ClientMacs6::new(16))),
    }
}

/// A NAT66 director whose internal port holds a floating gateway
/// (`vrrp6.addresses`) for its real servers.
fn floating6_lab() -> Worker {
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "ext", device: "net_null0", address: "198.18.0.2/24",
                     address6: Some("2001:db8::2/64"), kernel: Some((iface: "lbd-ext"))),
                    (name: "int", device: "net_null1", address: "198.19.0.1/24",
                     address6: Some("2001:db8:1::1/64"))],
            eal: (cores: "0-2"),
            services: [
                (vip: "2001:db8::100", port: 80, real_servers: [
                    (address: "2001:db8:1::11", forward: Nat)]),
            ],
            vrrp6: Some((port: "ext", vrid: 51, priority: 150,
                         addresses: ["2001:db8:1::254"])),
        )"#,
    )
    .unwrap();
    let errors = crate::config::validate(&cfg);
    assert!(errors.is_empty(), "{errors:?}");
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[EXT_MAC, INT_MAC], &mut reg, &neigh, 1).unwrap());
    assert_eq!(snap.vrrp_addresses6, vec![(u128::from(GW6), 1)]);
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    Worker::new(snap, ConnTable::new(1024, 5), stats, neigh)
}

const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x254);
const RS_INT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11);

/// Process `frame` arriving on `port`, with the accounting checked.
fn run_on(w: &mut Worker, frame: &mut Vec<u8>, port: u16) -> Verdict {
    let before = Counts::of(w.stats());
    let v = w.process_buf(frame, port, 1);
    let after = Counts::of(w.stats());
    check_frame(&before, &after, v, true).unwrap();
    v
}

#[test]
fn vrrp6_floating_addresses_are_answered_on_their_port_while_master() {
    let mut w = floating6_lab();
    // NDP: answered on the internal port, with that port's MAC.
    let mut f = ns(RS_INT6, RS1_MAC, GW6);
    assert_eq!(run_on(&mut w, &mut f, 1), Verdict::Tx(1));
    assert_eq!(dst_mac(&f), RS1_MAC);
    match ndp::parse(GW6, RS_INT6, 255, &f[ETH + 40..]).unwrap() {
        ndp::Neighbor::Advert(na) => {
            assert_eq!(na.target(), GW6);
            assert!(na.solicited() && na.override_flag());
            assert_eq!(na.target_lla(), Some(INT_MAC));
        }
        other => panic!("{other:?}"),
    }
    // Not on another port: the address is held where its subnet is.
    let mut f = ns(CLIENT6, CLIENT_MAC, GW6);
    assert_eq!(
        run_on(&mut w, &mut f, 0),
        Verdict::Drop(Counter::DropNdpNotForUs)
    );
    // ping6 to it: answered by the master; other traffic is not ours.
    let mut f = to_int(echo6(RS_INT6, GW6));
    assert_eq!(run_on(&mut w, &mut f, 1), Verdict::Tx(1));
    let p = SlicedPacket::from_ethernet(&f).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.header().source_addr(), GW6);
    let mut f = to_int(tcp6(RS_INT6, GW6, 1000, 22, true));
    assert_eq!(
        run_on(&mut w, &mut f, 1),
        Verdict::Drop(Counter::DropIpv6NotLocal)
    );
    // The backup holds nothing of it.
    w.set_standby(true);
    let mut f = ns(RS_INT6, RS1_MAC, GW6);
    // The asker is a real server: its MAC is learned, nothing is answered.
    assert_eq!(run_on(&mut w, &mut f, 1), Verdict::Consumed);
    let mut f = ns(
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x77),
        RS2_MAC,
        GW6,
    );
    assert_eq!(
        run_on(&mut w, &mut f, 1),
        Verdict::Drop(Counter::DropNdpNotForUs)
    );
    let mut f = to_int(echo6(RS_INT6, GW6));
    assert_eq!(
        run_on(&mut w, &mut f, 1),
        Verdict::Drop(Counter::DropIpv6NotLocal)
    );
    // Its own address stays answered.
    let mut f = ns(
        RS_INT6,
        RS1_MAC,
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1),
    );
    assert_eq!(run_on(&mut w, &mut f, 1), Verdict::Tx(1));
    w.set_standby(false);
    let mut f = ns(RS_INT6, RS1_MAC, GW6);
    assert_eq!(run_on(&mut w, &mut f, 1), Verdict::Tx(1));
}

/// `f` sent to the internal port's MAC.
fn to_int(mut f: Vec<u8>) -> Vec<u8> {
    f[..6].copy_from_slice(&INT_MAC.0);
    f
}
