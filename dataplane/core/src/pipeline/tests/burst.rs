//! The burst pipeline against one-frame processing: random mixed bursts
//! (DR, tunnel and NAT services, persistence, ARP, ICMP, malformed and
//! mutated frames) give exactly the same verdicts, rewrites, counters and
//! connection tables through `process_burst` (stage 2 over the whole
//! burst, `process_planned`) and through `begin_burst` + `process_in_burst`
//! frame by frame as through `process_buf` frame by frame; bursts of a few
//! flows mixing SYN, ACK, FIN and RST on the same flow too. And the fast
//! classifier takes the frames it is for.

use super::*;
use crate::conntrack::shared::SharedConnTable;
use crate::neigh::ClientMacs;
use crate::pipeline::nat::NatState;
use crate::pipeline::MAX_BURST;
use proptest::prelude::*;

const INT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xe1]);
const NAT_RS: [u8; 4] = [198, 19, 0, 11];

/// A director with an external and an internal port and every forwarding
/// method: DR (rr, with persistence on 443), tunnel, NAT (TCP and UDP), a
/// DR UDP service.
fn mixed_worker() -> Worker {
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "ext", device: "net_null0", address: "198.18.0.2/24"),
                    (name: "int", device: "net_null1", address: "198.19.0.1/24")],
            eal: (cores: "0-2"),
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.18.0.11"), (address: "198.18.0.12", forward: Tunnel)]),
                (vip: "198.18.0.100", port: 443, scheduler: Wlc, persistence: Some((timeout: 300)),
                 real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")]),
                (vip: "198.18.0.101", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.19.0.11", port: Some(8080), forward: Nat)]),
                (vip: "198.18.0.101", port: 53, protocol: Udp, real_servers: [
                    (address: "198.19.0.11", forward: Nat)]),
                (vip: "198.18.0.100", port: 53, protocol: Udp, real_servers: [
                    (address: "198.18.0.11")]),
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
    let snap = Arc::new(Snapshot::build(&cfg, &[DIR_MAC, INT_MAC], &mut reg, &neigh, 1).unwrap());
    // One real server left unresolved: its packets are dropped and asked for.
    for e in neigh.entries() {
        if e.ip != Ipv4Addr::new(198, 18, 0, 12) {
            neigh.learn(e.slot, e.ip, RS1_MAC, 0);
        }
    }
    let table = Arc::new(SharedConnTable::new(64, 3));
    let clients = Arc::new(ClientMacs::new(64));
    Worker::new(
        snap,
        ConnTable::new(64, 5),
        Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
        neigh,
    )
    .with_nat(NatState::new(table, clients, 0, 1))
}

/// What a frame is made from before mutation.
#[derive(Debug, Clone)]
enum Seed {
    /// Client → VIP TCP: client port, VIP (0: .100, 1: .101), port, flags.
    Tcp(u16, u8, u16, u8),
    /// Client → VIP UDP.
    Udp(u16, u8, u16),
    /// The NAT real server's reply to client port `sport` (TCP, flags).
    NatReply(u16, u8),
    /// ARP request for an address (0: VIP, 1: own, 2: foreign), or a reply
    /// from the unresolved real server.
    Arp(u8),
    /// Ping to the VIP.
    Ping,
}

fn seed_frame(s: &Seed) -> (Vec<u8>, u16) {
    let vip = |v: u8| if v == 0 { VIP } else { [198, 18, 0, 101] };
    let mut out = Vec::new();
    match *s {
        Seed::Tcp(sport, v, dport, flags) => {
            let b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
                .ipv4(CLIENT, vip(v), 64)
                .tcp(sport, dport, 1000, 65535);
            b.write(&mut out, b"data").unwrap();
            out[ETH + 20 + 13] = flags;
            fix_tcp_checksum(&mut out);
            (out, 0)
        }
        Seed::Udp(sport, v, dport) => {
            PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
                .ipv4(CLIENT, vip(v), 64)
                .udp(sport, dport)
                .write(&mut out, b"query")
                .unwrap();
            (out, 0)
        }
        Seed::NatReply(sport, flags) => {
            let b = PacketBuilder::ethernet2(RS1_MAC.0, INT_MAC.0)
                .ipv4(NAT_RS, CLIENT, 64)
                .tcp(8080, sport, 5000, 65535);
            b.write(&mut out, b"reply").unwrap();
            out[ETH + 20 + 13] = flags;
            fix_tcp_checksum(&mut out);
            (out, 1)
        }
        Seed::Arp(which) => {
            let mut f = vec![0u8; 60];
            let (op, sha, spa, tpa) = match which {
                0 => (arp::ARP_REQUEST, CLIENT_MAC, CLIENT, VIP),
                1 => (arp::ARP_REQUEST, CLIENT_MAC, CLIENT, DIR),
                2 => (arp::ARP_REQUEST, CLIENT_MAC, CLIENT, [198, 18, 0, 77]),
                _ => (arp::ARP_REPLY, RS2_MAC, [198, 18, 0, 12], DIR),
            };
            let dst = if op == arp::ARP_REQUEST {
                MacAddr::BROADCAST
            } else {
                DIR_MAC
            };
            let n = arp::build_arp(
                &mut f,
                op,
                sha,
                dst,
                sha,
                Ipv4Addr::from(spa),
                if op == arp::ARP_REQUEST {
                    MacAddr::ZERO
                } else {
                    DIR_MAC
                },
                Ipv4Addr::from(tpa),
            );
            f.truncate(n.max(42));
            (f, 0)
        }
        Seed::Ping => {
            PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
                .ipv4(CLIENT, VIP, 64)
                .icmpv4_echo_request(1, 1)
                .write(&mut out, b"ping")
                .unwrap();
            (out, 0)
        }
    }
}

fn fix_tcp_checksum(f: &mut [u8]) {
    let ip = Ipv4Packet::new_unchecked(&f[ETH..]);
    let (src, dst, hl, tl) = (ip.src(), ip.dst(), ip.header_len(), ip.total_len() as usize);
    let mut seg = crate::wire::tcp::TcpSegment::new_unchecked(&mut f[ETH + hl..ETH + tl]);
    seg.fill_checksum(src, dst);
}

fn seed() -> impl Strategy<Value = Seed> {
    // Few flows, so that bursts revisit them: state changes, port reuse,
    // persistence templates and NAT replies all happen within a burst.
    let flags = prop_oneof![
        Just(0x02u8),
        Just(0x10),
        Just(0x18),
        Just(0x11),
        Just(0x04),
        Just(0x14),
        Just(0x12),
        any::<u8>(),
    ];
    prop_oneof![
        6 => (1000u16..1006, 0u8..2, prop_oneof![Just(80u16), Just(443), Just(81)], flags.clone())
            .prop_map(|(s, v, p, f)| Seed::Tcp(s, v, p, f)),
        2 => (1000u16..1004, 0u8..2, prop_oneof![Just(53u16), Just(54)])
            .prop_map(|(s, v, p)| Seed::Udp(s, v, p)),
        2 => (1000u16..1006, flags).prop_map(|(s, f)| Seed::NatReply(s, f)),
        1 => (0u8..4).prop_map(Seed::Arp),
        1 => Just(Seed::Ping),
    ]
}

/// A frame: a seed, maybe with one byte changed and maybe cut short.
fn frame() -> impl Strategy<Value = (Vec<u8>, u16)> {
    (
        seed(),
        proptest::option::weighted(0.25, (0usize..80, any::<u8>())),
        proptest::option::weighted(0.05, 0usize..80),
        0u16..10,
    )
        .prop_map(|(s, flip, cut, port)| {
            let (mut f, mut p) = seed_frame(&s);
            if let Some((at, b)) = flip {
                if at < f.len() {
                    f[at] = b;
                }
            }
            if let Some(n) = cut {
                f.truncate(n);
            }
            if port == 0 {
                // Now and then on the wrong port (or one that does not exist).
                p = (p + 1) % 3;
            }
            (f, p)
        })
}

/// A burst of a few flows (one to three client ports of the DR/tunnel
/// service on port 80, the persistent one on 443 and the NAT one), each
/// frame a SYN, ACK, FIN+ACK, RST, PSH+ACK or SYN+ACK: the same flow is
/// created, found, moved through its states and reused within a burst.
fn few_flows_frame() -> impl Strategy<Value = (Vec<u8>, u16)> {
    let flags = prop_oneof![
        Just(0x02u8),
        Just(0x10),
        Just(0x11),
        Just(0x04),
        Just(0x18),
        Just(0x12),
    ];
    (
        1000u16..1003,
        prop_oneof![Just((0u8, 80u16)), Just((0, 443)), Just((1, 80))],
        flags,
    )
        .prop_map(|(sport, (v, dport), f)| seed_frame(&Seed::Tcp(sport, v, dport, f)))
}

fn counters(w: &Worker) -> Vec<u64> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = w.stats();
    let mut v: Vec<u64> = Counter::ALL.iter().map(|&c| s.get(c)).collect();
    for rs in 0..8 {
        let r = &s.rs[rs];
        v.extend([
            r.active() as u64,
            r.inactive() as u64,
            r.conns.load(Relaxed),
            r.packets.load(Relaxed),
            r.bytes.load(Relaxed),
            r.packets_out.load(Relaxed),
            r.bytes_out.load(Relaxed),
        ]);
    }
    for svc in 0..8 {
        let c = &s.services[svc];
        v.extend([
            c.conns.load(Relaxed),
            c.packets.load(Relaxed),
            c.bytes.load(Relaxed),
            c.packets_out.load(Relaxed),
            c.bytes_out.load(Relaxed),
        ]);
    }
    v
}

/// A burst: its frames, each with the port it arrives on, and the ticks
/// before it.
type Burst = (Vec<(Vec<u8>, u16)>, u32);

/// Run `bursts` (frames with their port, and the ticks before each burst)
/// through three workers: whole bursts (`process_burst`, i.e.
/// `process_planned`), bursts frame by frame (`process_in_burst`), and
/// frames alone (`process_buf`); verdicts, frames, counters and tables
/// must agree after every burst.
fn three_ways(bursts: Vec<Burst>) -> Result<(), TestCaseError> {
    let mut a = mixed_worker();
    let mut b = mixed_worker();
    let mut c = mixed_worker();
    let mut now: Tick = 1;
    for (frames, wait) in bursts {
        now += wait;
        // A burst arrives on one port: split the frames by port, in order.
        for port in 0..3u16 {
            let mut pa: Vec<Vec<u8>> = frames
                .iter()
                .filter(|f| f.1 == port)
                .map(|f| f.0.clone())
                .collect();
            if pa.is_empty() {
                continue;
            }
            let (mut pb, mut pc) = (pa.clone(), pa.clone());
            let mut va = vec![Verdict::Consumed; pa.len()];
            a.process_burst(&mut pa, port, now, &mut va);
            let vb: Vec<Verdict> = pb.iter_mut().map(|f| b.process_buf(f, port, now)).collect();
            let mut vc = Vec::new();
            for chunk in pc.chunks_mut(MAX_BURST) {
                c.begin_burst(chunk.iter().map(|f| f.as_slice()), port);
                for (i, f) in chunk.iter_mut().enumerate() {
                    vc.push(c.process_in_burst(i, f, now));
                }
            }
            prop_assert_eq!(&va, &vb);
            prop_assert_eq!(&vc, &vb);
            prop_assert_eq!(&pa, &pb);
            prop_assert_eq!(&pc, &pb);
        }
        prop_assert_eq!(counters(&a), counters(&b));
        prop_assert_eq!(counters(&c), counters(&b));
        prop_assert_eq!(table_of(&a), table_of(&b));
        prop_assert_eq!(table_of(&c), table_of(&b));
        a.housekeeping(now, 8);
        b.housekeeping(now, 8);
        c.housekeeping(now, 8);
    }
    Ok(())
}

fn table_of(w: &Worker) -> Vec<(ConnKey, u32, u8)> {
    let mut v = Vec::new();
    let mut at = Some(0);
    while let Some(start) = at {
        at = w
            .table()
            .scan_buckets(start, 16, |c| v.push((c.key(), c.rs, c.state)));
    }
    v.sort_by_key(|e| (e.0.client_port, e.0.vport, e.0.proto, e.0.vip));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn bursts_do_exactly_what_frames_one_by_one_do(
        bursts in proptest::collection::vec(
            (proptest::collection::vec(frame(), 1..=MAX_BURST + 4), 0u32..3000),
            1..8,
        )
    ) {
        three_ways(bursts)?;
    }

    #[test]
    fn bursts_of_a_few_flows_do_what_frames_one_by_one_do(
        bursts in proptest::collection::vec(
            (proptest::collection::vec(few_flows_frame(), 1..=MAX_BURST), 0u32..3000),
            1..6,
        )
    ) {
        three_ways(bursts)?;
    }
}

#[test]
fn the_fast_classifier_takes_plain_service_packets_and_nat_replies_only() {
    let w = mixed_worker();
    let take = |s: Seed, port: u16| {
        let (f, _) = seed_frame(&s);
        w.fast_flow(&f, port)
    };
    // Service packets: parsed, with their service and ports.
    let f = take(Seed::Tcp(1000, 0, 80, 0x10), 0).expect("plain ACK");
    assert_eq!((f.key().client_port, f.key().vport, f.l4), (1000, 80, 34));
    assert!(take(Seed::Tcp(1000, 1, 80, 0x02), 0).is_some(), "NAT SYN");
    assert!(take(Seed::Udp(1000, 0, 53), 0).is_some(), "UDP");
    // Everything else is for the full classifier.
    for (s, port) in [
        (Seed::Tcp(1000, 0, 81, 0x10), 0), // no such service
        (Seed::Tcp(1000, 0, 80, 0x03), 0), // SYN+FIN
        (Seed::Tcp(1000, 0, 80, 0x10), 1), // wrong port
        (Seed::NatReply(1000, 0x10), 1),   // not to a VIP
        (Seed::Arp(0), 0),
        (Seed::Ping, 0),
    ] {
        assert_eq!(take(s.clone(), port), None, "{s:?} on {port}");
    }
    // A NAT real server's reply: planned as one (the NAT reply path gets it
    // without the full classifier), with its own addresses and ports.
    let kind = |s: Seed, port: u16| w.fast_kind(&seed_frame(&s).0, port);
    let (k, f) = kind(Seed::NatReply(1000, 0x10), 1).expect("a NAT reply");
    assert_eq!(k, crate::pipeline::flow::Kind::NatReply);
    assert_eq!((f.key().client_port, f.key().vport, f.l4), (8080, 1000, 34));
    assert_eq!(f.key().client_ip, u32::from_be_bytes(NAT_RS));
    for (s, port) in [(Seed::Arp(0), 1), (Seed::Ping, 1)] {
        assert_eq!(kind(s.clone(), port), None, "{s:?} on {port}");
    }
    // Options, fragments, a bad checksum, TTL 0: the full path decides.
    let (plain, _) = seed_frame(&Seed::Tcp(1000, 0, 80, 0x10));
    // From the other port's MAC (spoofed or looped), on either port: the
    // full path decides (and drops it).
    let mut f = plain.clone();
    f[6..12].copy_from_slice(&INT_MAC.0);
    assert_eq!(w.fast_flow(&f, 0), None, "source: the other port's MAC");
    let (mut f, _) = seed_frame(&Seed::NatReply(1000, 0x10));
    assert!(w.fast_kind(&f, 1).is_some());
    f[6..12].copy_from_slice(&DIR_MAC.0);
    assert_eq!(w.fast_kind(&f, 1), None, "reply from the other port's MAC");
    for (at, val) in [(ETH, 0x46u8), (ETH + 6, 0x20), (ETH + 10, 0), (ETH + 8, 0)] {
        let mut f = plain.clone();
        f[at] = val;
        if at != ETH + 10 {
            Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
        }
        assert_eq!(w.fast_flow(&f, 0), None, "byte {at} = {val:#x}");
    }
}

#[test]
fn in_standby_the_fast_classifier_leaves_service_packets_to_the_full_path() {
    let mut w = mixed_worker();
    let (plain, _) = seed_frame(&Seed::Tcp(1000, 0, 80, 0x10));
    assert!(w.fast_flow(&plain, 0).is_some());
    w.set_standby(true);
    assert_eq!(
        w.fast_flow(&plain, 0),
        None,
        "standby: the full path decides"
    );
    // A NAT real server's reply is not a service packet: still planned.
    let (reply, _) = seed_frame(&Seed::NatReply(1000, 0x10));
    assert!(w.fast_kind(&reply, 1).is_some());
    w.set_standby(false);
    assert!(w.fast_flow(&plain, 0).is_some());
}

#[test]
fn a_burst_counts_its_frames_once_and_forwards_like_frames() {
    let mut w = mixed_worker();
    let mut frames: Vec<Vec<u8>> = (0..MAX_BURST as u16 + 3)
        .map(|i| seed_frame(&Seed::Tcp(2000 + i, 0, 443, 0x02)).0)
        .collect();
    let mut v = vec![Verdict::Consumed; frames.len()];
    w.process_burst(&mut frames, 0, 1, &mut v);
    assert!(v.iter().all(|&v| v == Verdict::Tx(0)), "{v:?}");
    assert_eq!(w.stats().get(Counter::RxFrames), frames.len() as u64);
    assert_eq!(w.stats().get(Counter::ConnCreated), frames.len() as u64);
    // Persistence: one client, one real server for all its connections.
    assert!(frames.iter().all(|f| dst_mac(f) == RS1_MAC));
}

/// A snapshot published between the stages ends the planned burst: the
/// frames still to come take the full path (the plan's service indices and
/// table hashes were the old snapshot's), with the same outcome.
#[test]
fn a_new_snapshot_mid_burst_sends_the_rest_through_the_full_path() {
    let mut w = mixed_worker();
    let mut frames: Vec<Vec<u8>> = (0..4u16)
        .map(|i| seed_frame(&Seed::Tcp(3000 + i, 0, 443, 0x02)).0)
        .collect();
    w.begin_burst(frames.iter().map(|f| f.as_slice()), 0);
    assert_eq!(w.plan.valid, 0b1111);
    let first = w.process_in_burst(0, &mut SliceBuf(&mut frames[0]), 1);
    w.set_snapshot(w.snap.clone());
    assert_eq!(w.plan.valid, 0, "the plan is dropped");
    let rest: Vec<Verdict> = frames[1..]
        .iter_mut()
        .enumerate()
        .map(|(i, f)| w.process_in_burst(i + 1, &mut SliceBuf(f), 1))
        .collect();
    assert_eq!(first, Verdict::Tx(0));
    assert!(rest.iter().all(|&v| v == Verdict::Tx(0)), "{rest:?}");
    assert_eq!(w.stats().get(Counter::ConnCreated), 4);
}
