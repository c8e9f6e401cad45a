//! Pipeline tests: frames built by etherparse (an independent implementation)
//! go through a worker; verdicts, rewrites and counters are checked.

use super::*;
use crate::config::{Config, Scheduler};
use crate::counters::Counter;
use etherparse::{PacketBuilder, SlicedPacket};
use std::net::Ipv4Addr;

const DIR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const RS1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const RS2_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x12]);
const CLIENT: [u8; 4] = [198, 18, 0, 1];
const VIP: [u8; 4] = [198, 18, 0, 100];
const DIR: [u8; 4] = [198, 18, 0, 2];

fn config(sched: &str, weights: (u32, u32)) -> Config {
    ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: {sched}, real_servers: [
                    (address: "198.18.0.11", weight: {}), (address: "198.18.0.12", weight: {}),
                ]),
                (vip: "198.18.0.100", port: 53, protocol: Udp, real_servers: [
                    (address: "198.18.0.11"),
                ]),
            ],
        )"#,
        weights.0, weights.1
    ))
    .unwrap()
}

struct Lab {
    w: Worker,
    neigh: Arc<NeighTable>,
    reg: Registry,
}

fn lab(sched: &str, weights: (u32, u32), resolve: bool) -> Lab {
    let cfg = config(sched, weights);
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[DIR_MAC], &mut reg, &neigh, 1).unwrap());
    if resolve {
        for e in neigh.entries() {
            let mac = if e.ip == Ipv4Addr::new(198, 18, 0, 11) {
                RS1_MAC
            } else {
                RS2_MAC
            };
            neigh.learn(e.slot, e.ip, mac, 0);
        }
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let w = Worker::new(snap, ConnTable::new(1024, 5), stats, neigh.clone());
    Lab { w, neigh, reg }
}

fn tcp_frame(sport: u16, dport: u16, syn: bool, ack: bool, fin: bool, rst: bool) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .tcp(sport, dport, 1000, 65535);
    if syn {
        b = b.syn();
    }
    if ack {
        b = b.ack(1);
    }
    if fin {
        b = b.fin();
    }
    if rst {
        b = b.rst();
    }
    let payload = b"GET / HTTP/1.0\r\n\r\n";
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn syn(sport: u16) -> Vec<u8> {
    tcp_frame(sport, 80, true, false, false, false)
}

fn ack(sport: u16) -> Vec<u8> {
    tcp_frame(sport, 80, false, true, false, false)
}

fn dst_mac(f: &[u8]) -> MacAddr {
    MacAddr(f[0..6].try_into().unwrap())
}

#[test]
fn dr_rewrites_only_macs_and_round_robins() {
    let mut l = lab("Rr", (1, 1), true);
    let mut seen = Vec::new();
    for i in 0..10u16 {
        let orig = syn(40000 + 2 * i);
        let mut f = orig.clone();
        assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
        seen.push(dst_mac(&f));
        assert_eq!(&f[6..12], &DIR_MAC.0);
        // Everything after the Ethernet addresses is untouched.
        assert_eq!(&f[12..], &orig[12..]);
        let parsed = SlicedPacket::from_ethernet(&f).unwrap();
        assert!(parsed.net.is_some());
    }
    let want: Vec<_> = (0..10)
        .map(|i| if i % 2 == 0 { RS1_MAC } else { RS2_MAC })
        .collect();
    assert_eq!(seen, want);
    assert_eq!(l.w.stats().get(Counter::FwdDr), 10);
    assert_eq!(l.w.stats().get(Counter::ConnCreated), 10);
}

#[test]
fn flow_sticks_to_its_real_server() {
    let mut l = lab("Rr", (1, 1), true);
    let mut f = syn(40000);
    l.w.process(&mut f, 0, 0);
    let first = dst_mac(&f);
    for t in 1..20 {
        let mut f = ack(40000);
        assert_eq!(l.w.process(&mut f, 0, t), Verdict::Tx(0));
        assert_eq!(dst_mac(&f), first);
    }
    assert_eq!(l.w.stats().get(Counter::ConnCreated), 1);
}

#[test]
fn active_inactive_accounting_follows_tcp_state() {
    let mut l = lab("Rr", (1, 0), true); // only rs1 gets connections
    let rs1 = l.w.snapshot().services[0].reals[0].id as usize;
    let st = |l: &Lab| (l.w.stats().rs[rs1].active(), l.w.stats().rs[rs1].inactive());
    l.w.process(&mut syn(40000), 0, 0);
    assert_eq!(st(&l), (0, 1)); // SYN_RECV: inactive
    l.w.process(&mut ack(40000), 0, 1);
    assert_eq!(st(&l), (1, 0)); // ESTABLISHED: active
    l.w.process(&mut tcp_frame(40000, 80, false, true, true, false), 0, 2);
    assert_eq!(st(&l), (0, 1)); // FIN_WAIT: inactive
                                // Expiry by sweep removes it from the counts.
    let fin_wait_ms = 120_000;
    l.w.housekeeping(3 + fin_wait_ms, 1 << 20);
    assert_eq!(st(&l), (0, 0));
    assert_eq!(l.w.table().len(), 0);
}

#[test]
fn syn_on_closing_flow_is_rescheduled() {
    let mut l = lab("Rr", (1, 1), true);
    let mut f = syn(40000);
    l.w.process(&mut f, 0, 0);
    let a = dst_mac(&f);
    l.w.process(&mut tcp_frame(40000, 80, false, true, true, false), 0, 1);
    let mut f = syn(40000);
    l.w.process(&mut f, 0, 2);
    assert_ne!(dst_mac(&f), a, "a reused port gets a fresh schedule");
    assert_eq!(l.w.stats().get(Counter::ConnCreated), 2);
    assert_eq!(l.w.table().len(), 1);
}

#[test]
fn wlc_follows_weights() {
    let mut l = lab("Wlc", (3, 1), true);
    let mut to_rs1 = 0;
    // Established, long-lived connections: wlc keeps them 3:1.
    for i in 0..400u16 {
        let mut f = syn(10000 + i);
        l.w.process(&mut f, 0, 0);
        l.w.process(&mut ack(10000 + i), 0, 0);
        if dst_mac(&f) == RS1_MAC {
            to_rs1 += 1;
        }
    }
    assert!((to_rs1 - 300i32).abs() <= 2, "rs1 got {to_rs1} of 400");
}

#[test]
fn quiesced_gets_nothing_new_but_keeps_flows() {
    let mut l = lab("Wlc", (1, 1), true);
    let mut f = syn(40000);
    l.w.process(&mut f, 0, 0);
    let first = dst_mac(&f);
    // Quiesce that server in a new snapshot; its flow continues.
    let mut cfg = config("Wlc", (1, 1));
    let idx = if first == RS1_MAC { 0 } else { 1 };
    cfg.services[0].real_servers[idx].weight = 0;
    let snap = Snapshot::build(&cfg, &[DIR_MAC], &mut l.reg, &l.neigh, 2).unwrap();
    l.w.set_snapshot(Arc::new(snap));
    let mut f = ack(40000);
    l.w.process(&mut f, 0, 1);
    assert_eq!(dst_mac(&f), first);
    for i in 0..10 {
        let mut f = syn(50000 + i);
        l.w.process(&mut f, 0, 1);
        assert_ne!(dst_mac(&f), first);
    }
}

#[test]
fn non_syn_without_connection_is_dropped() {
    let mut l = lab("Rr", (1, 1), true);
    assert_eq!(
        l.w.process(&mut ack(40000), 0, 0),
        Verdict::Drop(Counter::DropTcpNoConn)
    );
}

#[test]
fn unresolved_neighbour_drops_and_asks() {
    let mut l = lab("Rr", (1, 1), false);
    let mut out = Vec::new();
    l.neigh.tick(0, 1000, 30_000, 90_000, &mut out); // initial requests sent
    out.clear();
    assert_eq!(
        l.w.process(&mut syn(40000), 0, 0),
        Verdict::Drop(Counter::DropNeighUnresolved)
    );
    l.neigh.tick(2000, 1000, 30_000, 90_000, &mut out);
    assert!(!out.is_empty());
}

#[test]
fn udp_service_forwards_and_tracks() {
    let mut l = lab("Rr", (1, 1), true);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .udp(5353, 53)
        .write(&mut f, b"query")
        .unwrap();
    assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS1_MAC);
    let c = l.w.table().iter().next().unwrap();
    assert_eq!(ConnState::from_u8(c.state), ConnState::Udp);
    assert_eq!(c.expires, 300_000);
}

#[test]
fn answers_arp_for_vip_and_own_address_only() {
    let mut l = lab("Rr", (1, 1), true);
    for (target, answered) in [
        (VIP, true),
        (DIR, true),
        ([198, 18, 0, 11], false),
        ([198, 18, 0, 99], false),
    ] {
        let mut f = vec![0u8; 60];
        arp::build_arp(
            &mut f,
            arp::ARP_REQUEST,
            CLIENT_MAC,
            MacAddr::BROADCAST,
            CLIENT_MAC,
            Ipv4Addr::from(CLIENT),
            MacAddr::ZERO,
            Ipv4Addr::from(target),
        );
        let v = l.w.process(&mut f, 0, 0);
        if answered {
            assert_eq!(v, Verdict::Tx(0));
            assert_eq!(dst_mac(&f), CLIENT_MAC);
            let a = ArpPacket::new_checked(&f[ETH..]).unwrap();
            assert_eq!(a.operation(), arp::ARP_REPLY);
            assert_eq!(a.sender_mac(), DIR_MAC);
            assert_eq!(a.sender_ip(), Ipv4Addr::from(target));
            assert_eq!(a.target_mac(), CLIENT_MAC);
            assert_eq!(a.target_ip(), Ipv4Addr::from(CLIENT));
        } else {
            assert_eq!(v, Verdict::Drop(Counter::DropArpNotForUs), "{target:?}");
        }
    }
}

#[test]
fn learns_real_server_mac_from_arp_reply() {
    let mut l = lab("Rr", (1, 1), false);
    let rs1 = Ipv4Addr::new(198, 18, 0, 11);
    let mut f = vec![0u8; 60];
    arp::build_arp(
        &mut f,
        arp::ARP_REPLY,
        RS1_MAC,
        DIR_MAC,
        RS1_MAC,
        rs1,
        DIR_MAC,
        Ipv4Addr::from(DIR),
    );
    assert_eq!(l.w.process(&mut f, 0, 5), Verdict::Consumed);
    let slot = l
        .neigh
        .entries()
        .into_iter()
        .find(|e| e.ip == rs1)
        .unwrap()
        .slot;
    assert_eq!(l.neigh.mac(slot), Some(RS1_MAC));
}

#[test]
fn ping_to_vip_is_answered_with_valid_checksums() {
    let mut l = lab("Rr", (1, 1), true);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(7, 9)
        .write(&mut f, b"abcdefgh")
        .unwrap();
    assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
    let p = SlicedPacket::from_ethernet(&f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
        panic!()
    };
    assert_eq!(ip.header().source(), VIP);
    assert_eq!(ip.header().destination(), CLIENT);
    let ipb = Ipv4Packet::new_checked(&f[ETH..]).unwrap();
    assert!(ipb.verify_checksum());
    let icmp = Icmpv4Packet::new_checked(ipb.payload()).unwrap();
    assert_eq!(icmp.msg_type(), icmp::ICMP_ECHO_REPLY);
    assert!(icmp.verify_checksum());
    assert_eq!(dst_mac(&f), CLIENT_MAC);
}

#[test]
fn hostile_frames_are_dropped_by_reason() {
    let mut l = lab("Rr", (1, 1), true);
    let good = syn(40000);
    let mut cases: Vec<(Vec<u8>, Counter)> = Vec::new();
    cases.push((good[..10].to_vec(), Counter::DropEthTruncated));
    cases.push((good[..14 + 12].to_vec(), Counter::DropIpv4Truncated));
    let mut f = good.clone();
    f[14] = 0x65; // version 6
    cases.push((f, Counter::DropIpv4BadVersion));
    let mut f = good.clone();
    f[14] = 0x44; // IHL 4
    cases.push((f, Counter::DropIpv4BadHeaderLen));
    let mut f = good.clone();
    f[16] = 0x0f; // total length 4000+
    cases.push((f, Counter::DropIpv4BadTotalLen));
    let mut f = good.clone();
    f[24] ^= 0xff; // checksum
    cases.push((f, Counter::DropIpv4BadChecksum));
    let mut f = good.clone();
    f[20] = 0x20; // MF
    Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    cases.push((f, Counter::DropIpv4Fragment));
    let mut f = good.clone();
    f[22] = 0; // TTL 0
    Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    cases.push((f, Counter::DropIpv4TtlExpired));
    let mut f = good.clone();
    f[30..34].copy_from_slice(&[198, 18, 0, 99]); // not a VIP
    Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    cases.push((f, Counter::DropIpv4NotLocal));
    let mut f = good.clone();
    f[26..30].copy_from_slice(&[127, 0, 0, 1]);
    Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    cases.push((f, Counter::DropIpv4BadSource));
    let mut f = good.clone();
    f[0..6].copy_from_slice(&RS1_MAC.0);
    cases.push((f, Counter::DropNotOurMac));
    let mut f = good.clone();
    f[6..12].copy_from_slice(&DIR_MAC.0);
    cases.push((f, Counter::DropOwnFrame));
    let mut f = good.clone();
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    cases.push((f, Counter::DropUnknownEthertype));
    let mut f = good.clone();
    f[46] = 0x20; // TCP data offset 2
    cases.push((f, Counter::DropTcpMalformed));
    cases.push((
        tcp_frame(40000, 81, true, false, false, false),
        Counter::DropNoService,
    ));
    for (mut f, want) in cases {
        let before = l.w.stats().get(want);
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(want),
            "{}",
            want.name()
        );
        assert_eq!(l.w.stats().get(want), before + 1);
    }
    assert_eq!(l.w.stats().get(Counter::FwdDr), 0);
}

#[test]
fn scheduler_names_cover_config() {
    assert_eq!(Scheduler::Wlc.name(), "wlc");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..300), port in 0u16..3) {
            let mut l = lab("Wlc", (1, 1), true);
            let _ = l.w.process(&mut data, port, 0);
        }

        #[test]
        fn mutated_valid_frames_never_panic(pos in 0usize..80, byte in any::<u8>(), cut in 0usize..80) {
            let mut l = lab("Rr", (1, 1), true);
            let mut f = syn(40000);
            if pos < f.len() { f[pos] = byte; }
            let keep = f.len().saturating_sub(cut);
            f.truncate(keep);
            let _ = l.w.process(&mut f, 0, 0);
            let mut a = ack(40000);
            let _ = l.w.process(&mut a, 0, 1);
        }
    }
}
