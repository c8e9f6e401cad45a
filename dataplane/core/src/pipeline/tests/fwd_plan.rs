//! The DR forward plans (`fwd_cache`): an established flow's packets are
//! sent with the header and port the plan holds, and never with a stale
//! one: a neighbour's MAC changing (learned, from ARP in the same burst
//! too; expired; released), a new snapshot (the port's MAC, the server's
//! port, the server removed or no longer DR) all drop the plans.

use super::*;
use std::sync::atomic::Ordering::Relaxed;

/// A lab whose HTTP service has rs1 alone, with an established
/// connection from port 40000 (its plan made by the ACK).
fn established() -> Lab {
    let mut l = lab("Rr", (1, 0), true);
    assert_eq!(l.w.process(&mut syn(40000), 0, 0), Verdict::Tx(0));
    assert_eq!(l.w.process(&mut ack(40000), 0, 1), Verdict::Tx(0));
    l
}

#[test]
fn a_plan_sends_like_the_route_it_was_made_from() {
    let mut l = established();
    for t in 2..6 {
        let orig = ack(40000);
        let (v, f) = burst_ack(&mut l.w, t);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(dst_mac(&f), RS1_MAC);
        assert_eq!(&f[6..12], &DIR_MAC.0);
        assert_eq!(&f[12..], &orig[12..]);
    }
    assert_eq!(l.w.stats().get(Counter::FwdDr), 6);
    let rs1 = l.w.snapshot().services[0].reals[0].id as usize;
    assert_eq!(l.w.stats().rs[rs1].packets.load(Relaxed), 6);
}

#[test]
fn a_new_neighbour_mac_drops_the_plan() {
    a_new_neighbour_mac_drops_the_plan_of(established(), |w, f, now| w.process(f, 0, now));
}

#[test]
fn an_arp_reply_in_the_same_burst_drops_the_plan_for_the_next_frame() {
    an_arp_reply_in_the_same_burst_drops_the_plan_of(established());
}

#[test]
fn an_expired_or_released_neighbour_is_not_sent_to() {
    let mut l = established();
    let slot = rs1_slot(&l);
    // Silent past expiry: forgotten.
    l.neigh.tick(200_000, 1000, 30_000, 90_000, &mut Vec::new());
    assert_eq!(l.neigh.mac(slot), None);
    let (v, _) = burst_ack(&mut l.w, 3);
    assert_eq!(v, Verdict::Drop(Counter::DropNeighUnresolved));
    l.neigh.learn(slot, RS1, RS1_MAC, 4);
    assert_eq!(burst_ack(&mut l.w, 4).0, Verdict::Tx(0));
    l.neigh.release(slot);
    assert_eq!(
        burst_ack(&mut l.w, 5).0,
        Verdict::Drop(Counter::DropNeighUnresolved)
    );
}

#[test]
fn a_new_snapshot_with_another_port_mac_drops_the_plan() {
    let mut l = established();
    let other = MacAddr([0x02, 0, 0, 0, 0, 0x03]);
    let cfg = config("Rr", (1, 0));
    let snap = Snapshot::build(&cfg, &[other], &mut l.reg, &l.neigh, 2).unwrap();
    l.w.set_snapshot(Arc::new(snap));
    let mut f = ack(40000);
    f[0..6].copy_from_slice(&other.0);
    let mut frames = vec![f];
    let mut v = [Verdict::Consumed];
    l.w.process_burst(&mut frames, 0, 2, &mut v);
    assert_eq!(v[0], Verdict::Tx(0));
    assert_eq!(dst_mac(&frames[0]), RS1_MAC);
    assert_eq!(&frames[0][6..12], &other.0);
}

#[test]
fn a_new_snapshot_moving_the_server_to_another_port_drops_the_plan() {
    let two_ports = |first: &str, second: &str| -> Config {
        ron::from_str(&format!(
            r#"(
                ports: [{first}, {second}],
                services: [
                    (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                        (address: "198.18.0.11"),
                    ]),
                ],
            )"#
        ))
        .unwrap()
    };
    let lan0 = r#"(name: "lan0", device: "net_null0", address: "198.18.0.2/24")"#;
    let lan1 = r#"(name: "lan1", device: "net_null1", address: "198.19.0.1/24")"#;
    let macs = [DIR_MAC, MacAddr([0x02, 0, 0, 0, 0, 0x04])];
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Snapshot::build(&two_ports(lan0, lan1), &macs, &mut reg, &neigh, 1).unwrap();
    for e in neigh.entries() {
        neigh.learn(e.slot, e.ip, RS1_MAC, 0);
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let mut w = Worker::new(
        Arc::new(snap),
        ConnTable::new(1024, 5),
        stats,
        neigh.clone(),
    );
    assert_eq!(w.process(&mut syn(40000), 0, 0), Verdict::Tx(0));
    assert_eq!(burst_ack(&mut w, 1).0, Verdict::Tx(0));
    // The same ports listed the other way round: lan0 (the server's) is
    // port 1 now, with the second MAC.
    let snap = Snapshot::build(&two_ports(lan1, lan0), &macs, &mut reg, &neigh, 2).unwrap();
    w.set_snapshot(Arc::new(snap));
    let mut f = ack(40000);
    f[0..6].copy_from_slice(&macs[1].0);
    let mut frames = vec![f];
    let mut v = [Verdict::Consumed];
    w.process_burst(&mut frames, 1, 2, &mut v);
    assert_eq!(v[0], Verdict::Tx(1));
    assert_eq!(dst_mac(&frames[0]), RS1_MAC);
    assert_eq!(&frames[0][6..12], &macs[1].0);
}

#[test]
fn a_new_snapshot_without_the_server_drops_the_plan() {
    let mut l = established();
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.18.0.12"),
                ]),
            ],
        )"#,
    )
    .unwrap();
    let snap = Snapshot::build(&cfg, &[DIR_MAC], &mut l.reg, &l.neigh, 2).unwrap();
    l.w.set_snapshot(Arc::new(snap));
    let (v, f) = burst_ack(&mut l.w, 2);
    assert_eq!(v, Verdict::Drop(Counter::DropRealServerGone));
    assert_eq!(f, ack(40000), "a dropped frame is left as it came");
}

#[test]
fn a_new_snapshot_tunnelling_to_the_server_drops_the_plan() {
    let mut l = established();
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
            tunnel: (),
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.18.0.11", forward: Tunnel), (address: "198.18.0.12", weight: 0),
                ]),
            ],
        )"#,
    )
    .unwrap();
    let snap = Snapshot::build(&cfg, &[DIR_MAC], &mut l.reg, &l.neigh, 2).unwrap();
    l.w.set_snapshot(Arc::new(snap));
    let (v, f) = burst_ack(&mut l.w, 2);
    assert_eq!(v, Verdict::Tx(0));
    // IPIP: the frame grew by the outer header.
    assert_eq!(f.len(), ack(40000).len() + 20);
    assert_eq!(f[ETH + 9], 4, "outer protocol IPIP");
}
