//! IPv6 service groups (a mark's IPv6 VIPs and ports with one scheduler
//! and one persistence template per client network) and the SYN-flood
//! defence over the IPv6 table (eviction of half-open entries, stateless
//! forwarding by consistent hash, refusal with the defence off).

use super::accounting::{check_frame, Counts};
use super::frames6::*;
use super::*;
use crate::config::FloodMode;
use std::net::Ipv6Addr;

const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const VIP6B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x101);
const RS1_6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);

/// IPv6 group mark 3 (TCP VIP6:80, VIP6:443, VIP6B:8000-8001, UDP VIP6:53;
/// rr, persistence per /64) and the IPv6 service VIP6:9000 by `sched`,
/// both by DR to 2001:db8::11 and ::12; the SYN-flood defence in `mode`.
fn config_groups6(sched: &str, mode: FloodMode) -> Config {
    let mut cfg: Config = ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24",
                     address6: Some("2001:db8::2/64"))],
            fwmarks: [(mark: 3, match: [
                (vip: "2001:db8::100", ports: 80), (vip: "2001:db8::100", ports: 443),
                (vip: "2001:db8::101", ports: "8000-8001"),
                (vip: "2001:db8::100", ports: 53, protocol: Udp)])],
            services: [
                (fwmark: Some(3), scheduler: Rr,
                 persistence: Some((timeout: 300, prefix: Some(64))), real_servers: [
                    (address: "2001:db8::11", port: Some(80)),
                    (address: "2001:db8::12", port: Some(80))]),
                (vip: "2001:db8::100", port: 9000, scheduler: {sched}, real_servers: [
                    (address: "2001:db8::11"), (address: "2001:db8::12")]),
            ],
        )"#
    ))
    .unwrap();
    cfg.syn_flood.mode = mode;
    let errors = crate::config::validate(&cfg);
    assert!(errors.is_empty(), "{errors:?}");
    cfg
}

/// A worker over `cfg` whose tables hold at most `capacity` connections,
/// its real servers' MACs known (::11 → RS1_MAC, ::12 → RS2_MAC).
fn lab(cfg: Config, capacity: usize) -> Lab {
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[DIR_MAC], &mut reg, &neigh, 1).unwrap());
    for e in neigh.entries() {
        let mac = if e.ip == std::net::IpAddr::V6(RS1_6) {
            RS1_MAC
        } else {
            RS2_MAC
        };
        neigh.learn(e.slot, e.ip, mac, 0);
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let w = Worker::new(snap, ConnTable::new(capacity, 5), stats, neigh.clone());
    Lab { w, neigh, reg }
}

/// Process `frame` and check its accounting (exactly one outcome).
fn run(w: &mut Worker, frame: &mut Vec<u8>, now: Tick) -> Verdict {
    let before = Counts::of(w.stats());
    let v = w.process_buf(frame, 0, now);
    check_frame(&before, &Counts::of(w.stats()), v, true).unwrap();
    v
}

/// Flood source `i`: 2001:db8:ff::/48, a network no legitimate client of
/// these tests uses.
fn flood_src(i: u32) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, (i >> 16) as u16, i as u16)
}

fn client(net: u16, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x10, net, 0, 0, 0, host)
}

#[test]
fn ipv6_group_ports_with_persistence_stick_to_one_real_server() {
    let mut l = lab(config_groups6("Rr", FloodMode::Auto), 1024);
    let g = l.w.snapshot().services.iter().find(|s| s.fwmark == Some(3));
    assert_eq!(g.unwrap().persist_prefix, 64, "IPv6 prefix, not netmask");
    // One client network, every member of the group: one real server
    // (rr alone would alternate).
    let (a, b) = (client(1, 1), client(1, 2));
    let mut macs = Vec::new();
    for (c, vip, port, sport) in [
        (a, VIP6, 80, 1000),
        (a, VIP6, 443, 1001),
        (b, VIP6B, 8001, 1002),
        (b, VIP6, 443, 1003),
        (a, VIP6B, 8000, 1004),
    ] {
        let mut f = tcp6(c, vip, sport, port, true);
        assert_eq!(
            run(&mut l.w, &mut f, 1),
            Verdict::Tx(0),
            "{c} → {vip}:{port}"
        );
        macs.push(dst_mac(&f));
    }
    let mut u = udp6(a, VIP6, 5353, 53);
    assert_eq!(run(&mut l.w, &mut u, 1), Verdict::Tx(0));
    macs.push(dst_mac(&u));
    assert!(macs.iter().all(|&m| m == macs[0]), "{macs:?}");
    let st = l.w.stats();
    assert_eq!(st.get(Counter::PersistTemplateCreated), 1);
    assert_eq!(st.get(Counter::PersistTemplateUsed), 5);
    assert_eq!(
        l.w.templates6().unwrap().len(),
        1,
        "one template per network"
    );
    // Another /64 is scheduled anew: rr gives it the other server, and it
    // keeps it across the group's ports too.
    let other = client(2, 1);
    let mut others = Vec::new();
    for (vip, port, sport) in [(VIP6, 443, 2000), (VIP6B, 8000, 2001), (VIP6, 80, 2002)] {
        let mut f = tcp6(other, vip, sport, port, true);
        assert_eq!(run(&mut l.w, &mut f, 2), Verdict::Tx(0));
        others.push(dst_mac(&f));
    }
    assert!(others.iter().all(|&m| m == others[0]), "{others:?}");
    assert_ne!(others[0], macs[0]);
    // A port outside the group is no service.
    let mut f = tcp6(a, VIP6B, 3000, 8002, true);
    assert_eq!(
        run(&mut l.w, &mut f, 3),
        Verdict::Drop(Counter::DropNoService)
    );
}

/// Fill the IPv6 table (capacity `n`) with half-open flood entries to the
/// service on port 9000.
fn flood(l: &mut Lab, n: u32, t: &mut Tick) {
    for i in 0..n {
        *t += 1;
        let mut f = tcp6(flood_src(i), VIP6, 1024 + i as u16, 9000, true);
        l.w.process_buf(&mut f, 0, *t);
    }
}

#[test]
fn ipv6_half_open_entries_make_room_for_newcomers_under_a_flood() {
    let mut l = lab(config_groups6("Rr", FloodMode::Auto), 64);
    let mut t = 0;
    flood(&mut l, 64, &mut t);
    assert_eq!(l.w.table6().unwrap().len(), 64, "full of half-open entries");
    assert!(!l.w.flood_engaged());
    // Legitimate clients get in: each SYN evicts a half-open entry and
    // the handshake completes.
    for p in 0..10u16 {
        t += 1;
        let mut s = tcp6(client(1, 1), VIP6, 50000 + p, 9000, true);
        assert_eq!(run(&mut l.w, &mut s, t), Verdict::Tx(0), "SYN {p}");
        let mut a = tcp6(client(1, 1), VIP6, 50000 + p, 9000, false);
        assert_eq!(run(&mut l.w, &mut a, t), Verdict::Tx(0), "ACK {p}");
    }
    let st = l.w.stats();
    assert_eq!(st.get(Counter::ConnEmbryonicEvicted), 10);
    assert_eq!(st.get(Counter::DropConnTableFull), 0);
    assert_eq!(st.get(Counter::FloodEngaged), 1);
    assert!(l.w.flood_engaged());
    // The flood goes on; the established connections are never evicted.
    for i in 64..1064 {
        t += 1;
        let mut f = tcp6(flood_src(i), VIP6, 1024 + (i % 60000) as u16, 9000, true);
        l.w.process_buf(&mut f, 0, t);
    }
    for p in 0..10u16 {
        let mut a = tcp6(client(1, 1), VIP6, 50000 + p, 9000, false);
        assert_eq!(run(&mut l.w, &mut a, t), Verdict::Tx(0), "ACK {p}");
    }
    assert_eq!(
        l.w.stats().get(Counter::DropTcpNoConn),
        0,
        "no established connection was lost"
    );
    // Housekeeping sees the full IPv6 table and keeps the defence engaged.
    l.w.housekeeping(t, 1);
    assert!(l.w.flood_engaged());
}

#[test]
fn ipv6_consistent_hash_services_forward_statelessly_when_full() {
    let mut l = lab(config_groups6("Sh", FloodMode::Auto), 64);
    let mut t = 0;
    // A table full of established connections: nothing to evict.
    for i in 0..64u32 {
        t += 1;
        let c = flood_src(i);
        let mut s = tcp6(c, VIP6, 2000, 9000, true);
        l.w.process_buf(&mut s, 0, t);
        let mut a = tcp6(c, VIP6, 2000, 9000, false);
        l.w.process_buf(&mut a, 0, t);
    }
    let full = l.w.table6().unwrap().len();
    assert_eq!(full, 64);
    // A newcomer is forwarded by the hash without an entry, every packet
    // of it (SYN, then its ACK that misses the table) to one server.
    let newcomer = client(3, 3);
    let mut macs = Vec::new();
    for syn in [true, false, false] {
        t += 1;
        let mut f = tcp6(newcomer, VIP6, 4000, 9000, syn);
        assert_eq!(run(&mut l.w, &mut f, t), Verdict::Tx(0), "syn {syn}");
        macs.push(dst_mac(&f));
    }
    assert!(macs.iter().all(|&m| m == macs[0]), "{macs:?}");
    let st = l.w.stats();
    assert_eq!(st.get(Counter::FwdStateless), 3);
    assert_eq!(st.get(Counter::ConnEmbryonicEvicted), 0);
    assert!(l.w.flood_engaged());
    assert_eq!(l.w.table6().unwrap().len(), full, "no entry made");
    // The group (rr, not a consistent hash) refuses what finds no room.
    let mut f = tcp6(newcomer, VIP6, 4001, 80, true);
    assert_eq!(
        run(&mut l.w, &mut f, t),
        Verdict::Drop(Counter::DropConnTableFull)
    );
}

#[test]
fn ipv6_defence_off_refuses_new_flows_when_full() {
    let mut l = lab(config_groups6("Sh", FloodMode::Off), 64);
    let mut t = 0;
    flood(&mut l, 64, &mut t);
    assert_eq!(l.w.table6().unwrap().len(), 64);
    t += 1;
    let mut s = tcp6(client(1, 1), VIP6, 50000, 9000, true);
    assert_eq!(
        run(&mut l.w, &mut s, t),
        Verdict::Drop(Counter::DropConnTableFull)
    );
    let mut a = tcp6(client(1, 1), VIP6, 50001, 9000, false);
    assert_eq!(
        run(&mut l.w, &mut a, t),
        Verdict::Drop(Counter::DropTcpNoConn)
    );
    assert!(!l.w.flood_engaged());
    assert_eq!(l.w.stats().get(Counter::ConnEmbryonicEvicted), 0);
    assert_eq!(l.w.stats().get(Counter::FwdStateless), 0);
}

#[test]
fn ipv6_group_members_are_in_the_snapshot() {
    let l = lab(config_groups6("Rr", FloodMode::Auto), 64);
    let s = l.w.snapshot();
    let g = s.services.iter().position(|s| s.fwmark == Some(3));
    let (vip, vipb) = (u128::from(VIP6), u128::from(VIP6B));
    for (proto, v, port) in [
        (6, vip, 80),
        (6, vip, 443),
        (6, vipb, 8000),
        (6, vipb, 8001),
        (17, vip, 53),
    ] {
        assert_eq!(s.service6(proto, v, port), g, "{proto} {v:x} {port}");
    }
    assert_eq!(s.service6(17, vip, 80), None, "UDP 80 is no member");
    assert_eq!(s.service6(6, vipb, 8002), None);
    assert!(s.is_vip6(vipb), "a group's VIP is a VIP (NDP, ping)");
    assert_eq!(s.services[g.unwrap()].name(), "fwmark 3");
}

#[test]
fn a_full_nat66_table_engages_the_defence() {
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24",
                     address6: Some("2001:db8::2/64"))],
            services: [(vip: "2001:db8::100", port: 80, scheduler: Rr, real_servers: [
                (address: "2001:db8::11", port: Some(8080), forward: Nat)])],
        )"#,
    )
    .unwrap();
    assert!(crate::config::validate(&cfg).is_empty());
    let l = lab(cfg, 1024);
    let table = Arc::new(SharedConnTable::new(64, 7));
    let clients = Arc::new(crate::pipeline::ClientMacs6::new(256));
    let mut w = Worker::new(
        l.w.snapshot().clone(),
        ConnTable::new(1024, 5),
        Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
        l.neigh.clone(),
    )
    .with_nat6(crate::pipeline::Nat6State::new(table, clients, 0, 1));
    let mut t = 0;
    let mut refused = 0;
    // Bounded: four times the shared table's capacity.
    for i in 0..256u32 {
        t += 1;
        let mut f = tcp6(flood_src(i), VIP6, 1024 + i as u16, 80, true);
        if run(&mut w, &mut f, t) == Verdict::Drop(Counter::DropConnTableFull) {
            refused += 1;
        }
    }
    assert!(refused > 0, "the NAT66 table filled");
    assert!(w.flood_engaged(), "a refusal engages the defence");
    assert_eq!(w.stats().get(Counter::FloodEngaged), 1);
    // Housekeeping sees the full NAT66 table and keeps it engaged.
    w.housekeeping(t, 1);
    assert!(w.flood_engaged());
}
