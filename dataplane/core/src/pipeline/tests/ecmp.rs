//! ECMP mode (`services[].ecmp`): several directors behind routers that
//! spread flows over them. A director that sees a connection's first
//! mid-flow segment (the routers moved the flow from another director)
//! forwards it to the real server the SYN got on the other director, by
//! Maglev, and tracks it from then on. And the Maglev tables themselves:
//! the same real servers give the same bytes on every director.

use super::*;
use crate::sched::Tables;
use proptest::prelude::*;

/// Real servers 198.18.0.11 .. 198.18.0.(10 + n), each with the MAC
/// 02:00:00:00:01:(10 + i).
const SERVERS: u8 = 5;

fn rs_mac(last: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 1, last])
}

/// An mh service on 198.18.0.100:80 (ECMP mode or not) whose real servers
/// are listed in the order `order` gives (indices into 11..).
fn ecmp_config(ecmp: bool, order: &[u8]) -> Config {
    let reals: String = order
        .iter()
        .map(|i| format!("(address: \"198.18.0.{}\"),", 11 + i))
        .collect();
    ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Mh, ecmp: {ecmp},
                 real_servers: [{reals}]),
            ],
        )"#
    ))
    .unwrap()
}

/// One director: its own registry, neighbour table and worker, as a
/// separate process would have.
fn director(cfg: &Config) -> Worker {
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(cfg, &[DIR_MAC], &mut reg, &neigh, 1).unwrap());
    for e in neigh.entries() {
        neigh.learn(e.slot, e.ip, rs_mac(super::v4(e.ip).octets()[3]), 0);
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    Worker::new(snap, ConnTable::new(1024, 5), stats, neigh)
}

fn in_order() -> Vec<u8> {
    (0..SERVERS).collect()
}

/// A TCP segment from `client`:`sport` to the VIP's port 80 with `flags`.
fn segment(client: [u8; 4], sport: u16, flags: u8) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(client, VIP, 64)
        .tcp(sport, 80, 1000, 65535)
        .write(&mut out, b"data")
        .unwrap();
    out[ETH + 20 + 13] = flags;
    out
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;
const RST: u8 = 0x04;

/// ActiveConn and InActConn summed over the service's real servers.
fn conns(w: &Worker) -> (i32, i32) {
    w.snapshot().services[0]
        .reals
        .iter()
        .fold((0, 0), |(a, i), r| {
            let s = &w.stats().rs[r.id as usize];
            (a + s.active(), i + s.inactive())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Director A sees the SYN; the routers move the flow and director B
    /// (same real servers, listed in another order, no sync) sees the next
    /// segment first: B sends it to the real server A chose, and tracks it.
    #[test]
    fn a_moved_flow_keeps_its_real_server(
        client in (1u8..=254, 1u8..=254),
        sport in 1024u16..,
        order in Just(in_order()).prop_shuffle(),
    ) {
        let client = [198, 19, client.0, client.1];
        let mut a = director(&ecmp_config(true, &in_order()));
        let mut b = director(&ecmp_config(true, &order));
        let mut s = segment(client, sport, SYN);
        prop_assert_eq!(a.process(&mut s, 0, 0), Verdict::Tx(0));
        let chosen = dst_mac(&s);
        let mut m = segment(client, sport, PSH_ACK);
        prop_assert_eq!(b.process(&mut m, 0, 10), Verdict::Tx(0));
        prop_assert_eq!(dst_mac(&m), chosen);
        prop_assert_eq!(b.stats().get(Counter::ConnAdoptedMidflow), 1);
        prop_assert_eq!(b.stats().get(Counter::ConnCreated), 1);
        prop_assert_eq!(conns(&b), (1, 0), "adopted as ESTABLISHED");
        // From then on B's table holds it: a hit, not a second adoption.
        let mut m = segment(client, sport, ACK);
        prop_assert_eq!(b.process(&mut m, 0, 20), Verdict::Tx(0));
        prop_assert_eq!(dst_mac(&m), chosen);
        prop_assert_eq!(b.stats().get(Counter::ConnAdoptedMidflow), 1);
        prop_assert_eq!(b.table().len(), 1);
        // The SYN's own director never adopts anything.
        prop_assert_eq!(a.stats().get(Counter::ConnAdoptedMidflow), 0);
    }
}

#[test]
fn without_ecmp_mode_a_mid_flow_segment_is_dropped() {
    let mut w = director(&ecmp_config(false, &in_order()));
    let mut m = segment([198, 19, 0, 1], 40000, PSH_ACK);
    assert_eq!(
        w.process(&mut m, 0, 0),
        Verdict::Drop(Counter::DropTcpNoConn)
    );
    assert_eq!(w.stats().get(Counter::DropTcpNoConn), 1);
    assert_eq!(w.stats().get(Counter::ConnAdoptedMidflow), 0);
    assert_eq!(w.table().len(), 0);
}

#[test]
fn a_mid_flow_rst_is_forwarded_without_an_entry() {
    let client = [198, 19, 0, 7];
    let mut a = director(&ecmp_config(true, &in_order()));
    let mut s = segment(client, 40000, SYN);
    a.process(&mut s, 0, 0);
    let mut b = director(&ecmp_config(true, &in_order()));
    let mut r = segment(client, 40000, RST);
    assert_eq!(b.process(&mut r, 0, 0), Verdict::Tx(0));
    assert_eq!(dst_mac(&r), dst_mac(&s), "the real server must see the RST");
    assert_eq!(b.stats().get(Counter::FwdStateless), 1);
    assert_eq!(b.stats().get(Counter::ConnAdoptedMidflow), 0);
    assert_eq!(b.stats().get(Counter::ConnCreated), 0);
    assert_eq!(b.table().len(), 0);
}

#[test]
fn a_mid_flow_fin_makes_a_closing_entry() {
    let client = [198, 19, 0, 8];
    let mut b = director(&ecmp_config(true, &in_order()));
    let mut f = segment(client, 40000, FIN_ACK);
    assert_eq!(b.process(&mut f, 0, 0), Verdict::Tx(0));
    assert_eq!(b.stats().get(Counter::ConnAdoptedMidflow), 1);
    assert_eq!(conns(&b), (0, 1), "FIN_WAIT counts as InActConn");
    // The last ACK hits the closing entry.
    let mut l = segment(client, 40000, ACK);
    assert_eq!(b.process(&mut l, 0, 1), Verdict::Tx(0));
    assert_eq!(dst_mac(&l), dst_mac(&f));
    assert_eq!(b.stats().get(Counter::ConnAdoptedMidflow), 1);
}

#[test]
fn a_syn_in_ecmp_mode_is_scheduled_as_usual() {
    let mut w = director(&ecmp_config(true, &in_order()));
    let mut s = segment([198, 19, 0, 9], 40000, SYN);
    assert_eq!(w.process(&mut s, 0, 0), Verdict::Tx(0));
    assert_eq!(w.stats().get(Counter::ConnCreated), 1);
    assert_eq!(w.stats().get(Counter::ConnAdoptedMidflow), 0);
    assert_eq!(conns(&w), (0, 1), "SYN_RECV");
}

/// The bytes of service 0's Maglev table.
fn mh_entries(snap: &Snapshot) -> Vec<u16> {
    match &snap.services[0].tables {
        Tables::Mh(t) => t.entries().to_vec(),
        other => panic!("not mh: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Two directors compile the same real servers, listed in different
    /// orders and with a different history (B's registry saw other
    /// servers first, so its ids differ): identical tables, byte for byte.
    #[test]
    fn two_directors_build_identical_maglev_tables(
        order in Just(in_order()).prop_shuffle(),
        weights in proptest::collection::vec(0u32..4, SERVERS as usize),
    ) {
        let weighted = |order: &[u8]| {
            let mut cfg = ecmp_config(true, order);
            for (r, &i) in cfg.services[0].real_servers.iter_mut().zip(order) {
                r.weight = weights[i as usize];
            }
            cfg
        };
        let neigh = NeighTable::new(64);
        let mut reg_a = Registry::default();
        let a = Snapshot::build(&weighted(&in_order()), &[DIR_MAC], &mut reg_a, &neigh, 1)
            .unwrap();
        let neigh = NeighTable::new(64);
        let mut reg_b = Registry::default();
        let mut earlier = ecmp_config(true, &[4, 3]);
        earlier.services[0].real_servers[0].address = Ipv4Addr::new(198, 18, 0, 99).into();
        Snapshot::build(&earlier, &[DIR_MAC], &mut reg_b, &neigh, 1).unwrap();
        let b = Snapshot::build(&weighted(&order), &[DIR_MAC], &mut reg_b, &neigh, 2).unwrap();
        prop_assert_eq!(mh_entries(&a), mh_entries(&b));
    }
}
