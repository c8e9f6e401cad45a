//! Pipeline tests: frames built by etherparse (an independent implementation)
//! go through a worker; verdicts, rewrites and counters are checked.

use super::*;
use crate::config::{Config, Scheduler};
use crate::counters::Counter;
use etherparse::{PacketBuilder, SlicedPacket};
use std::net::Ipv4Addr;

/// Per-frame accounting checks, shared with the fuzz harness.
#[path = "../../tests/support/accounting.rs"]
mod accounting;
mod burst;
mod down_server;
mod flood;
mod hostile;
mod least_index;

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
    lab_from(config(sched, weights), resolve)
}

fn lab_from(cfg: Config, resolve: bool) -> Lab {
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
    for s in Scheduler::ALL {
        // IPVS's name round-trips, in any case.
        assert_eq!(Scheduler::from_name(s.name()), Some(s));
        assert_eq!(Scheduler::from_name(&s.name().to_uppercase()), Some(s));
        // The configuration's spelling (the variant) parses to it, and a
        // service with it schedules a new connection.
        let mut l = lab(&format!("{s:?}"), (1, 1), true);
        assert_eq!(l.w.snapshot().services[0].scheduler, s);
        assert_eq!(l.w.process(&mut syn(40000), 0, 0), Verdict::Tx(0), "{s:?}");
    }
    assert_eq!(Scheduler::from_name("dh"), None);
    // ALL has every variant: a new one must be listed (this match fails to
    // compile without its arm, and the arm's index check fails without it).
    for s in Scheduler::ALL {
        let i = match s {
            Scheduler::Rr => 0,
            Scheduler::Wrr => 1,
            Scheduler::Lc => 2,
            Scheduler::Wlc => 3,
            Scheduler::Sh => 4,
            Scheduler::Mh => 5,
            Scheduler::Sed => 6,
            Scheduler::Nq => 7,
            Scheduler::Fo => 8,
        };
        assert_eq!(Scheduler::ALL[i], s);
    }
}

mod fuzz {
    //! The bigger harness is `tests/fuzz_pipeline.rs`; these check the
    //! same accounting on the lab of this file.
    use super::accounting::{check_balance, check_frame, Counts, Tally};
    use super::*;
    use proptest::prelude::*;

    /// Process one frame and check that it was accounted: one outcome or
    /// drop reason for it, and `rx_frames` still balances.
    fn process_accounted(
        w: &mut Worker,
        f: &mut [u8],
        port: u16,
        now: Tick,
        tally: &mut Tally,
    ) -> Result<Verdict, String> {
        let before = Counts::of(w.stats());
        let v = w.process(f, port, now);
        check_frame(&before, &Counts::of(w.stats()), v, true)?;
        tally.add(v);
        check_balance(&[w.stats()], tally)?;
        Ok(v)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_bytes_never_panic_and_are_accounted(mut data in proptest::collection::vec(any::<u8>(), 0..300), port in 0u16..3) {
            let mut l = lab("Wlc", (1, 1), true);
            let mut tally = Tally::default();
            let r = process_accounted(&mut l.w, &mut data, port, 0, &mut tally);
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }

        #[test]
        fn mutated_valid_frames_never_panic_and_are_accounted(pos in 0usize..80, byte in any::<u8>(), cut in 0usize..80) {
            let mut l = lab("Rr", (1, 1), true);
            let mut tally = Tally::default();
            let mut f = syn(40000);
            if pos < f.len() { f[pos] = byte; }
            let keep = f.len().saturating_sub(cut);
            f.truncate(keep);
            let r = process_accounted(&mut l.w, &mut f, 0, 0, &mut tally);
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            let mut a = ack(40000);
            let r = process_accounted(&mut l.w, &mut a, 0, 1, &mut tally);
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }
}

/// A SYN to VIP:80 from another client address.
fn syn_from(client: [u8; 4], sport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(client, VIP, 64)
        .tcp(sport, 80, 1000, 65535)
        .syn();
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

#[test]
fn hashing_schedulers_keep_a_client_on_one_real_server() {
    for sched in ["Sh", "Mh"] {
        let mut l = lab(sched, (1, 1), true);
        let mut per_rs = [0usize; 2];
        for c in 0..40u8 {
            let client = [10, 1, 7, 1 + c];
            let mut first = None;
            for port in 0..4u16 {
                let mut f = syn_from(client, 40000 + port);
                assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0), "{sched}");
                let mac = dst_mac(&f);
                assert_eq!(*first.get_or_insert(mac), mac, "{sched}: {client:?}");
            }
            per_rs[usize::from(first.unwrap() == RS2_MAC)] += 1;
        }
        // Different clients spread over both real servers.
        assert!(per_rs[0] >= 8 && per_rs[1] >= 8, "{sched}: {per_rs:?}");
        assert_eq!(l.w.stats().get(Counter::ConnCreated), 40 * 4);
        // The tables are built with the snapshot.
        assert!(!l.w.snapshot().services[0].tables.is_empty());
        assert!(l.w.snapshot().services[1].tables.is_empty());
    }
}

// --- IPIP tunnel forwarding ---

/// A lab whose HTTP service has rs1 and rs2 with the given forwarding
/// methods, a port MTU, and a `tunnel` section.
fn tunnel_lab(forwards: (&str, &str), mtu: u16, tunnel: &str) -> Lab {
    let cfg: Config = ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24", mtu: {mtu})],
            tunnel: ({tunnel}),
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.18.0.11", forward: {}), (address: "198.18.0.12", forward: {}),
                ]),
            ],
        )"#,
        forwards.0, forwards.1
    ))
    .unwrap();
    assert!(crate::config::validate(&cfg).is_empty());
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[DIR_MAC], &mut reg, &neigh, 1).unwrap());
    for e in neigh.entries() {
        let mac = if e.ip == Ipv4Addr::new(198, 18, 0, 11) {
            RS1_MAC
        } else {
            RS2_MAC
        };
        neigh.learn(e.slot, e.ip, mac, 0);
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let w = Worker::new(snap, ConnTable::new(1024, 5), stats, neigh.clone());
    Lab { w, neigh, reg }
}

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

/// The outer header of a tunnelled frame, checked to be IPIP with a valid
/// checksum; the inner packet must be `orig`'s IP packet byte for byte.
fn outer_of<'a>(f: &'a [u8], orig: &[u8]) -> etherparse::Ipv4HeaderSlice<'a> {
    let outer = etherparse::Ipv4HeaderSlice::from_slice(&f[ETH..]).unwrap();
    assert_eq!(outer.protocol(), etherparse::IpNumber::IPV4);
    assert_eq!(
        outer.header_checksum(),
        outer.to_header().calc_header_checksum()
    );
    assert_eq!(outer.total_len() as usize, f.len() - ETH);
    assert_eq!(&f[ETH + 20..], &orig[ETH..], "inner packet untouched");
    outer
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

mod tunnel_fuzz {
    use super::*;
    use proptest::prelude::*;

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
}

mod nat_two_workers {
    use super::*;
    use crate::conntrack::shared::SharedConnTable;
    use crate::neigh::ClientMacs;
    use crate::pipeline::nat::NatState;
    use etherparse::TransportSlice;

    const EXT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xe0]);
    const INT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xe1]);
    const RS_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x21]);
    const RS: [u8; 4] = [198, 19, 0, 11];

    /// Two workers (external and internal port) over one shared NAT table.
    fn nat_lab() -> (Worker, Worker) {
        let (a, b, _, _) = nat_lab_parts();
        (a, b)
    }

    /// [`nat_lab`], with its shared table and client MACs.
    fn nat_lab_parts() -> (Worker, Worker, Arc<SharedConnTable>, Arc<ClientMacs>) {
        let cfg: Config = ron::from_str(
            r#"(
                ports: [(name: "ext", device: "net_null0", address: "198.18.0.2/24"),
                        (name: "int", device: "net_null1", address: "198.19.0.1/24")],
                eal: (cores: "0-2"),
                services: [
                    (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                        (address: "198.19.0.11", port: Some(8080), forward: Nat)]),
                    (vip: "198.18.0.100", port: 53, protocol: Udp, real_servers: [
                        (address: "198.19.0.11", forward: Nat)]),
                ],
            )"#,
        )
        .unwrap();
        assert!(
            crate::config::validate(&cfg).is_empty(),
            "{:?}",
            crate::config::validate(&cfg)
        );
        let neigh = Arc::new(NeighTable::new(64));
        let mut reg = Registry::default();
        let snap =
            Arc::new(Snapshot::build(&cfg, &[EXT_MAC, INT_MAC], &mut reg, &neigh, 1).unwrap());
        for e in neigh.entries() {
            neigh.learn(e.slot, e.ip, RS_MAC, 0);
        }
        let table = Arc::new(SharedConnTable::new(1024, 3));
        let clients = Arc::new(ClientMacs::new(256));
        let mk = |i| {
            Worker::new(
                snap.clone(),
                ConnTable::new(1024, 5 + i as u64),
                Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
                neigh.clone(),
            )
            .with_nat(NatState::new(table.clone(), clients.clone(), i, 2))
        };
        (mk(0), mk(1), table, clients)
    }

    #[test]
    fn a_synced_nat_connection_continues_on_the_backup() {
        let (ext, int, _, _) = nat_lab_parts();
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
        let (mut ext2, mut int2, table2, clients2) = nat_lab_parts();
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

    /// Ports whose NIC computes IPv4 header checksums: both directions ask
    /// for it (and nothing else), and what leaves the NIC is byte for byte
    /// what the software path sends.
    #[test]
    fn nat_leaves_the_ipv4_checksum_to_a_nic_that_offers_it() {
        use crate::pipeline::buf::NicBuf;
        let all = TxChecksums::IPV4
            .union(TxChecksums::TCP)
            .union(TxChecksums::UDP);
        let (mut ext_sw, mut int_sw) = nat_lab();
        let (mut ext, mut int) = nat_lab();
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
        let (mut ext, mut int) = nat_lab();
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
        let (mut ext, mut int) = nat_lab();
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
        let (_, mut int) = nat_lab();
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
}

// --- ICMP errors about tracked connections (icmp_error.rs) ---

mod icmp_errors {
    use super::*;
    use crate::conntrack::shared::SharedConnTable;
    use crate::neigh::ClientMacs;
    use crate::pipeline::nat::NatState;
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

    const EXT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xe0]);
    const INT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xe1]);
    const RS_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x21]);
    const RS: [u8; 4] = [198, 19, 0, 11];
    /// A router between the director and the real servers.
    const INNER_ROUTER: [u8; 4] = [198, 19, 0, 254];

    /// An external-port worker and an internal-port worker sharing one NAT
    /// table: TCP VIP:80 → RS:8080 and UDP VIP:53 → RS:53.
    fn nat_workers() -> (Worker, Worker) {
        let cfg: Config = ron::from_str(
            r#"(
                ports: [(name: "ext", device: "net_null0", address: "198.18.0.2/24"),
                        (name: "int", device: "net_null1", address: "198.19.0.1/24")],
                eal: (cores: "0-2"),
                services: [
                    (vip: "198.18.0.100", port: 80, real_servers: [
                        (address: "198.19.0.11", port: Some(8080), forward: Nat)]),
                    (vip: "198.18.0.100", port: 53, protocol: Udp, real_servers: [
                        (address: "198.19.0.11", forward: Nat)]),
                ],
            )"#,
        )
        .unwrap();
        assert!(crate::config::validate(&cfg).is_empty());
        let neigh = Arc::new(NeighTable::new(64));
        let mut reg = Registry::default();
        let snap =
            Arc::new(Snapshot::build(&cfg, &[EXT_MAC, INT_MAC], &mut reg, &neigh, 1).unwrap());
        for e in neigh.entries() {
            neigh.learn(e.slot, e.ip, RS_MAC, 0);
        }
        let table = Arc::new(SharedConnTable::new(1024, 11));
        let clients = Arc::new(ClientMacs::new(256));
        let worker = |i: usize| {
            Worker::new(
                snap.clone(),
                ConnTable::new(1024, 20 + i as u64),
                Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
                neigh.clone(),
            )
            .with_nat(NatState::new(table.clone(), clients.clone(), i, 2))
        };
        (worker(0), worker(1))
    }

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
}

/// A worker over the lab configuration (for tests elsewhere in the crate).
pub(crate) fn any_worker() -> Worker {
    lab("Rr", (1, 1), true).w
}

// --- the kernel exception path (ports[].kernel) ---

mod kernel_path {
    use super::*;
    use crate::config::KernelPathConfig;

    fn kernel_lab(on: bool) -> Lab {
        let mut cfg = config("Rr", (1, 1));
        if on {
            cfg.ports[0].kernel = Some(KernelPathConfig {
                iface: "lbd-lan0".into(),
                rate_pps: 100,
            });
        }
        lab_from(cfg, true)
    }

    fn to_dir(proto: &str) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(RS1_MAC.0, DIR_MAC.0).ipv4([198, 18, 0, 11], DIR, 64);
        let mut f = Vec::new();
        match proto {
            "tcp" => b.tcp(80, 50000, 1, 1000).syn().ack(1).write(&mut f, &[]),
            "udp" => b.udp(53, 50000).write(&mut f, b"x"),
            "echo-reply" => b.icmpv4_echo_reply(1, 1).write(&mut f, b"ping"),
            "echo-request" => b.icmpv4_echo_request(1, 1).write(&mut f, b"ping"),
            _ => unreachable!(),
        }
        .unwrap();
        f
    }

    #[test]
    fn own_address_traffic_goes_to_the_kernel_untouched() {
        let mut l = kernel_lab(true);
        for p in ["tcp", "udp", "echo-reply"] {
            let orig = to_dir(p);
            let mut f = orig.clone();
            assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Kernel, "{p}");
            assert_eq!(f, orig, "{p}: untouched");
        }
        // Pings are still answered by the dataplane.
        let mut f = to_dir("echo-request");
        assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
        assert_eq!(l.w.stats().get(Counter::IcmpEchoReplied), 1);
        // VIP traffic never goes to the kernel.
        let mut s = syn(40000);
        assert_eq!(l.w.process(&mut s, 0, 0), Verdict::Tx(0));
        // Nor traffic for addresses that are not ours.
        let mut other = Vec::new();
        PacketBuilder::ethernet2(RS1_MAC.0, DIR_MAC.0)
            .ipv4([198, 18, 0, 11], [198, 18, 0, 77], 64)
            .udp(1, 2)
            .write(&mut other, b"x")
            .unwrap();
        assert_eq!(
            l.w.process(&mut other, 0, 0),
            Verdict::Drop(Counter::DropIpv4NotLocal)
        );
    }

    #[test]
    fn a_standby_director_leaves_the_vips_alone() {
        let mut l = kernel_lab(true);
        l.w.set_standby(true);
        let mut s = syn(40000);
        assert_eq!(
            l.w.process(&mut s, 0, 0),
            Verdict::Drop(Counter::DropVrrpBackup)
        );
        let mut q = vec![0u8; 60];
        crate::wire::arp::build_arp(
            &mut q,
            arp::ARP_REQUEST,
            CLIENT_MAC,
            MacAddr::BROADCAST,
            CLIENT_MAC,
            Ipv4Addr::from(CLIENT),
            MacAddr::ZERO,
            Ipv4Addr::from(VIP),
        );
        let mut q2 = q.clone();
        assert_eq!(
            l.w.process(&mut q, 0, 1),
            Verdict::Drop(Counter::DropArpNotForUs)
        );
        // Its own address still works, and VRRP adverts reach the kernel.
        let mut p = to_dir("tcp");
        assert_eq!(l.w.process(&mut p, 0, 2), Verdict::Kernel);
        let mut adv = Vec::new();
        PacketBuilder::ethernet2(RS1_MAC.0, crate::wire::vrrp::GROUP_MAC)
            .ipv4([198, 18, 0, 3], [224, 0, 0, 18], 255)
            .write(
                &mut adv,
                etherparse::IpNumber(112),
                &[0x31, 1, 100, 0, 0, 100, 0, 0],
            )
            .unwrap();
        assert_eq!(l.w.process(&mut adv, 0, 3), Verdict::Kernel);
        // Master again: the VIP is answered.
        l.w.set_standby(false);
        assert_eq!(l.w.process(&mut q2, 0, 4), Verdict::Tx(0));
    }

    #[test]
    fn two_box_local_real_server_and_peer_frames() {
        const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x03]);
        let mut cfg = config("Rr", (1, 1));
        cfg.ports[0].kernel = Some(KernelPathConfig {
            iface: "lbd-lan0".into(),
            rate_pps: 100,
        });
        // The second real server is this director itself (localnode).
        cfg.services[0].real_servers[1].address = Ipv4Addr::from(DIR);
        cfg.peer_directors = vec![PEER_MAC];
        assert_eq!(crate::config::validate(&cfg), vec![]);
        let mut l = lab_from(cfg, true);
        assert!(
            l.neigh
                .entries()
                .iter()
                .all(|e| e.ip != Ipv4Addr::from(DIR)),
            "no ARP for our own address"
        );
        let mut verdicts = Vec::new();
        for i in 0..4u16 {
            let orig = syn(40000 + 2 * i);
            let mut f = orig.clone();
            let v = l.w.process(&mut f, 0, 0);
            if v == (Verdict::Local {
                port: 0,
                peer: false,
            }) {
                assert_eq!(f, orig, "delivered locally untouched");
            }
            verdicts.push(v);
        }
        assert_eq!(
            verdicts,
            vec![
                Verdict::Tx(0),
                Verdict::Local {
                    port: 0,
                    peer: false
                },
                Verdict::Tx(0),
                Verdict::Local {
                    port: 0,
                    peer: false
                }
            ]
        );
        // The local connection keeps going to the local host.
        let mut a = ack(40002);
        assert_eq!(
            l.w.process(&mut a, 0, 1),
            Verdict::Local {
                port: 0,
                peer: false
            }
        );
        // A frame the peer director scheduled to us: local, not scheduled,
        // even in standby.
        l.w.set_standby(true);
        let mut p = tcp_frame(50000, 80, true, false, false, false);
        p[6..12].copy_from_slice(&PEER_MAC.0);
        let orig = p.clone();
        assert_eq!(
            l.w.process(&mut p, 0, 2),
            Verdict::Local {
                port: 0,
                peer: true
            }
        );
        assert_eq!(p, orig);
        assert_eq!(l.w.stats().get(Counter::ConnCreated), 4, "not scheduled");
    }

    #[test]
    fn without_a_kernel_path_own_address_traffic_is_dropped() {
        let mut l = kernel_lab(false);
        let mut f = to_dir("tcp");
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(Counter::DropIpv4UnknownProtocol)
        );
        let mut f = to_dir("echo-reply");
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(Counter::DropIcmpUnsupported)
        );
    }

    #[test]
    fn arp_replies_to_the_kernel_are_learned_and_passed_on() {
        let mut l = kernel_lab(true);
        let mut f = vec![0u8; 60];
        let n = crate::wire::arp::build_arp(
            &mut f,
            arp::ARP_REPLY,
            RS1_MAC,
            DIR_MAC,
            RS1_MAC,
            Ipv4Addr::new(198, 18, 0, 11),
            DIR_MAC,
            Ipv4Addr::from(DIR),
        );
        f.truncate(n.max(60));
        assert_eq!(l.w.process(&mut f, 0, 7), Verdict::Kernel);
        assert_eq!(l.w.stats().get(Counter::ArpLearned), 1);
        // Requests for our address are answered by the dataplane.
        let mut q = vec![0u8; 60];
        crate::wire::arp::build_arp(
            &mut q,
            arp::ARP_REQUEST,
            RS1_MAC,
            MacAddr::BROADCAST,
            RS1_MAC,
            Ipv4Addr::new(198, 18, 0, 11),
            MacAddr::ZERO,
            Ipv4Addr::from(DIR),
        );
        assert_eq!(l.w.process(&mut q, 0, 8), Verdict::Tx(0));
    }
}

// --- health checks' effect on the snapshot (Snapshot::apply_health) ---

mod health {
    use super::*;
    use crate::config::{Fallback, Forward};
    use crate::pipeline::snapshot::RsHealth;

    const FB_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x50]);
    const RS1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
    const FB: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 50);

    /// A lab whose port-80 service has a fallback server (resolved).
    fn lab_with_fallback() -> Lab {
        let mut cfg = config("Rr", (1, 1));
        cfg.services[0].fallback = Some(Fallback {
            address: FB,
            port: None,
            forward: Forward::Dr,
        });
        let l = lab_from(cfg, true);
        for e in l.neigh.entries() {
            if e.ip == FB {
                l.neigh.learn(e.slot, e.ip, FB_MAC, 0);
            }
        }
        l
    }

    /// Rebuild the lab's snapshot from `cfg` with `down` (address → state)
    /// applied, and give it to the worker.
    fn apply(l: &mut Lab, down: &[(Ipv4Addr, RsHealth)], generation: u64) {
        let cfg = {
            let mut c = config("Rr", (1, 1));
            c.services[0].fallback = l.w.snapshot().services[0]
                .reals
                .iter()
                .find(|r| r.fallback)
                .map(|r| Fallback {
                    address: r.addr,
                    port: None,
                    forward: Forward::Dr,
                });
            c
        };
        let mut snap = Snapshot::build(&cfg, &[DIR_MAC], &mut l.reg, &l.neigh, generation).unwrap();
        snap.apply_health(|_, r| {
            down.iter()
                .find(|(a, _)| *a == r.addr)
                .map_or(RsHealth::Up, |(_, h)| *h)
        });
        l.w.set_snapshot(Arc::new(snap));
    }

    fn macs_of_new_conns(l: &mut Lab, first_port: u16, n: u16) -> Vec<MacAddr> {
        (0..n)
            .map(|i| {
                let mut f = syn(first_port + 2 * i);
                match l.w.process(&mut f, 0, 0) {
                    Verdict::Tx(_) => dst_mac(&f),
                    v => panic!("{v:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn the_fallback_is_used_only_while_every_real_server_is_down() {
        let mut l = lab_with_fallback();
        let macs = macs_of_new_conns(&mut l, 40000, 4);
        assert!(!macs.contains(&FB_MAC), "all up: never the fallback");
        let removed = RsHealth::Down {
            quiesce: false,
            expire: false,
        };
        let rs2 = Ipv4Addr::new(198, 18, 0, 12);
        apply(&mut l, &[(RS1, removed)], 2);
        assert_eq!(macs_of_new_conns(&mut l, 41000, 3), vec![RS2_MAC; 3]);
        apply(&mut l, &[(RS1, removed), (rs2, removed)], 3);
        assert_eq!(macs_of_new_conns(&mut l, 42000, 3), vec![FB_MAC; 3]);
        // One server back: the fallback takes no new connections, but its
        // own keep going.
        apply(&mut l, &[(RS1, removed)], 4);
        assert_eq!(macs_of_new_conns(&mut l, 43000, 2), vec![RS2_MAC; 2]);
        let mut a = ack(42000);
        assert_eq!(l.w.process(&mut a, 0, 1), Verdict::Tx(0));
        assert_eq!(dst_mac(&a), FB_MAC);
    }

    #[test]
    fn a_down_server_keeps_its_connections_unless_they_expire() {
        let mut l = lab("Rr", (1, 1), true);
        let mut s = syn(40000);
        assert_eq!(l.w.process(&mut s, 0, 0), Verdict::Tx(0));
        assert_eq!(dst_mac(&s), RS1_MAC);
        // Removed (or quiesced): no new connections, the old one continues.
        for (g, quiesce) in [(2, false), (3, true)] {
            let h = RsHealth::Down {
                quiesce,
                expire: false,
            };
            apply(&mut l, &[(RS1, h)], g);
            assert_eq!(l.w.snapshot().services[0].reals[0].up, quiesce);
            assert_eq!(l.w.snapshot().services[0].reals[0].weight, 0);
            assert_eq!(
                macs_of_new_conns(&mut l, 41000 + g as u16 * 100, 2),
                vec![RS2_MAC; 2]
            );
            let mut a = ack(40000);
            assert_eq!(l.w.process(&mut a, 0, 1), Verdict::Tx(0));
            assert_eq!(dst_mac(&a), RS1_MAC);
        }
        // With expire: the next packet ends the connection ...
        let h = RsHealth::Down {
            quiesce: false,
            expire: true,
        };
        apply(&mut l, &[(RS1, h)], 4);
        let mut a = ack(40000);
        assert_eq!(
            l.w.process(&mut a, 0, 2),
            Verdict::Drop(Counter::DropRealServerDown)
        );
        // ... and the client's new SYN on the same ports finds a live server.
        let mut s = syn(40000);
        assert_eq!(l.w.process(&mut s, 0, 3), Verdict::Tx(0));
        assert_eq!(dst_mac(&s), RS2_MAC);
        // Back up: scheduled again.
        apply(&mut l, &[], 5);
        let macs = macs_of_new_conns(&mut l, 45000, 4);
        assert!(macs.contains(&RS1_MAC), "{macs:?}");
    }
}

// --- connection-state sync (pipeline/sync.rs) ---

mod state_sync {
    use super::*;
    use crate::config::SyncConfig;
    use crate::conntrack::shared::SharedConnTable;
    use crate::conntrack::sync::{decode, encode, SyncKind};
    use crate::neigh::ClientMacs;
    use crate::pipeline::nat::NatState;
    use crate::pipeline::sync::{apply, ApplyError};
    use crossbeam::queue::ArrayQueue;

    fn sync_config() -> Config {
        let mut cfg = config("Rr", (1, 1));
        cfg.sync = Some(SyncConfig {
            peer: Ipv4Addr::new(198, 18, 0, 3),
            port: 8848,
            max_kbps: 10_000,
            batch_ms: 50,
        });
        cfg
    }

    /// A director: a worker with a shared table and a sync queue.
    fn director() -> (
        Lab,
        Arc<SharedConnTable>,
        Arc<ArrayQueue<crate::conntrack::sync::SyncRecord>>,
    ) {
        let mut l = lab_from(sync_config(), true);
        let table = Arc::new(SharedConnTable::new(1024, 3));
        let q = Arc::new(ArrayQueue::new(64));
        let placeholder = Worker::new(
            l.w.snapshot().clone(),
            ConnTable::new(16, 1),
            Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
            l.neigh.clone(),
        );
        let w = std::mem::replace(&mut l.w, placeholder);
        l.w = w
            .with_nat(NatState::new(
                table.clone(),
                Arc::new(ClientMacs::new(16)),
                0,
                1,
            ))
            .with_sync(q.clone());
        (l, table, q)
    }

    #[test]
    fn a_synced_connection_continues_on_the_backup() {
        let (mut master, _, q) = director();
        let mut s = syn(40000);
        assert_eq!(master.w.process(&mut s, 0, 0), Verdict::Tx(0));
        let rs_mac = dst_mac(&s);
        let mut a = ack(40000);
        assert_eq!(master.w.process(&mut a, 0, 1), Verdict::Tx(0));
        // SYN_RECV then ESTABLISHED: two records, through the wire format.
        let recs: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert!(recs
            .iter()
            .all(|r| r.kind == SyncKind::Conn && r.client_port == 40000));
        let wire = encode(&recs);
        let recs: Vec<_> = wire.iter().flat_map(|d| decode(d).unwrap()).collect();

        // The backup stores them; nothing is counted as a connection yet.
        let (mut backup, table, bq) = director();
        backup.w.set_standby(true);
        for r in &recs {
            apply(&table, &ClientMacs::new(16), backup.w.snapshot(), r, 10).unwrap();
        }
        // Standby: no records of its own.
        let mut s2 = syn(40100);
        assert_eq!(
            backup.w.process(&mut s2, 0, 11),
            Verdict::Drop(Counter::DropVrrpBackup)
        );
        assert!(bq.is_empty());
        // Failover: the backup is master; the client's next segment of the
        // established connection goes to the same real server.
        backup.w.set_standby(false);
        let mut a2 = ack(40000);
        assert_eq!(backup.w.process(&mut a2, 0, 20), Verdict::Tx(0));
        assert_eq!(dst_mac(&a2), rs_mac);
        assert_eq!(backup.w.stats().get(Counter::SyncAdopted), 1);
        assert_eq!(backup.w.stats().get(Counter::DropTcpNoConn), 0);
        // Adopted once: now in the worker's own table.
        let mut a3 = ack(40000);
        assert_eq!(backup.w.process(&mut a3, 0, 21), Verdict::Tx(0));
        assert_eq!(backup.w.stats().get(Counter::SyncAdopted), 1);
        // An unknown flow is still refused.
        let mut other = ack(40002);
        assert_eq!(
            backup.w.process(&mut other, 0, 22),
            Verdict::Drop(Counter::DropTcpNoConn)
        );
    }

    #[test]
    fn records_for_unknown_services_or_servers_are_refused() {
        let (l, table, _) = director();
        let mut r = crate::conntrack::sync::SyncRecord {
            kind: SyncKind::Conn,
            proto: 6,
            state: 3,
            client_ip: Ipv4Addr::from(CLIENT),
            client_port: 1,
            vip: Ipv4Addr::from(VIP),
            vport: 8080,
            rs_ip: Ipv4Addr::new(198, 18, 0, 11),
            rs_port: 80,
            timeout_ms: 1000,
            client_mac: [0; 6],
            client_via_port: 0,
        };
        let clients = ClientMacs::new(16);
        assert_eq!(
            apply(&table, &clients, l.w.snapshot(), &r, 0),
            Err(ApplyError::NoService)
        );
        r.vport = 80;
        r.rs_ip = Ipv4Addr::new(198, 18, 0, 99);
        assert_eq!(
            apply(&table, &clients, l.w.snapshot(), &r, 0),
            Err(ApplyError::NoRealServer)
        );
    }
}
