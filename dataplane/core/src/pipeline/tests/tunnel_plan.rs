//! The tunnel plans (`tunnel_plan`): an established tunnelled flow's
//! packets leave exactly as the full path builds them, and never by a
//! stale plan: a neighbour's MAC changing (learned, from ARP in the same
//! burst too; expired), a new snapshot (the port's MAC or MTU, the server
//! no longer tunnelled) and new TX checksum offloads all drop the plans.

use super::*;
use crate::pipeline::buf::NicBuf;
use proptest::prelude::*;
use std::sync::atomic::Ordering::Relaxed;

/// A TCP segment client → VIP:80 from `sport`: an ACK with `payload`
/// bytes, DSCP/ECN `tos`, DF as given, `pad` bytes of Ethernet padding.
fn segment(sport: u16, payload: usize, tos: u8, df: bool, pad: usize) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .tcp(sport, 80, 1000, 65535)
        .ack(1)
        .write(&mut out, &vec![b'x'; payload])
        .unwrap();
    let mut ip = Ipv4Packet::new_unchecked(&mut out[ETH..]);
    ip.set_dont_frag(df);
    ip.set_dscp_ecn(tos);
    ip.fill_checksum();
    out.resize(out.len() + pad, 0);
    out
}

/// A lab tunnelling to rs1 and rs2 with an established connection from
/// port 40000 to rs1 (its plan made by the SYN).
fn established(mtu: u16) -> Lab {
    let mut l = tunnel_lab(("Tunnel", "Tunnel"), mtu, "");
    assert_eq!(l.w.process_buf(&mut syn(40000), 0, 0), Verdict::Tx(0));
    l
}

/// A frame of the established flow through the burst path: its verdict
/// and frame.
fn burst_one(w: &mut Worker, f: Vec<u8>, now: Tick) -> (Verdict, Vec<u8>) {
    let mut frames = vec![f];
    let mut v = [Verdict::Consumed];
    w.process_burst(&mut frames, 0, now, &mut v);
    (v[0], frames.pop().unwrap())
}

/// A snapshot of `cfg` for `l`'s worker, with port MAC `mac`.
fn snapshot_of(l: &mut Lab, cfg: &str, mac: MacAddr, generation: u64) -> Arc<Snapshot> {
    let cfg: Config = ron::from_str(cfg).unwrap();
    assert!(crate::config::validate(&cfg).is_empty());
    Arc::new(Snapshot::build(&cfg, &[mac], &mut l.reg, &l.neigh, generation).unwrap())
}

fn config_text(mtu: u16, forward: &str) -> String {
    format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24", mtu: {mtu})],
            tunnel: (),
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.18.0.11", forward: {forward}), (address: "198.18.0.12", forward: Tunnel),
                ]),
            ],
        )"#
    )
}

#[test]
fn a_plan_sends_like_the_route_it_was_made_from() {
    let mut l = established(1500);
    for t in 1..5 {
        let orig = ack(40000);
        let (v, f) = burst_ack(&mut l.w, t);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(dst_mac(&f), RS1_MAC);
        assert_eq!(&f[6..12], &DIR_MAC.0);
        let outer = outer_of(&f, &orig);
        assert_eq!(outer.source(), DIR);
        assert_eq!(outer.destination(), RS1.octets());
        assert_eq!(&f[ETH + 20..], &orig[ETH..]);
    }
    assert_eq!(l.w.stats().get(Counter::FwdTunnel), 5);
    let rs1 = l.w.snapshot().services[0].reals[0].id as usize;
    assert_eq!(l.w.stats().rs[rs1].packets.load(Relaxed), 5);
    let svc = l.w.snapshot().services[0].id as usize;
    assert_eq!(l.w.stats().services[svc].packets.load(Relaxed), 5);
}

#[test]
fn a_new_neighbour_mac_drops_the_plan() {
    a_new_neighbour_mac_drops_the_plan_of(established(1500), |w, f, now| w.process_buf(f, 0, now));
}

#[test]
fn an_arp_reply_in_the_same_burst_drops_the_plan_for_the_next_frame() {
    an_arp_reply_in_the_same_burst_drops_the_plan_of(established(1500));
}

#[test]
fn an_expired_neighbour_is_not_sent_to() {
    let mut l = established(1500);
    l.neigh.tick(200_000, 1000, 30_000, 90_000, &mut Vec::new());
    assert_eq!(l.neigh.mac(rs1_slot(&l)), None);
    let (v, f) = burst_ack(&mut l.w, 3);
    assert_eq!(v, Verdict::Drop(Counter::DropNeighUnresolved));
    assert_eq!(f, ack(40000), "a dropped frame is left as it came");
}

#[test]
fn a_new_snapshot_with_another_port_mac_drops_the_plan() {
    let mut l = established(1500);
    let other = MacAddr([0x02, 0, 0, 0, 0, 0x03]);
    let snap = snapshot_of(&mut l, &config_text(1500, "Tunnel"), other, 2);
    l.w.set_snapshot(snap);
    let mut f = ack(40000);
    f[0..6].copy_from_slice(&other.0);
    let (v, f) = burst_one(&mut l.w, f, 2);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS1_MAC);
    assert_eq!(&f[6..12], &other.0);
}

#[test]
fn a_new_snapshot_with_a_smaller_mtu_drops_the_plan() {
    let mut l = established(1500);
    // 1 200 bytes of IP fit 1 500 in the tunnel, not 1 000.
    let big = segment(40000, 1200 - 40, 0, true, 0);
    assert_eq!(burst_one(&mut l.w, big.clone(), 1).0, Verdict::Tx(0));
    let snap = snapshot_of(&mut l, &config_text(1000, "Tunnel"), DIR_MAC, 2);
    l.w.set_snapshot(snap);
    let (v, f) = burst_one(&mut l.w, big, 2);
    assert_eq!(v, Verdict::Tx(0), "back to the client");
    assert_eq!(dst_mac(&f), CLIENT_MAC);
    assert_eq!(l.w.stats().get(Counter::IcmpFragNeededSent), 1);
}

#[test]
fn a_new_snapshot_reaching_the_server_by_dr_drops_the_plan() {
    let mut l = established(1500);
    let snap = snapshot_of(&mut l, &config_text(1500, "Dr"), DIR_MAC, 2);
    l.w.set_snapshot(snap);
    let (v, f) = burst_ack(&mut l.w, 2);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(f.len(), ack(40000).len(), "DR: not encapsulated");
    assert_eq!(dst_mac(&f), RS1_MAC);
}

#[test]
fn new_tx_offloads_drop_the_plan() {
    let mut l = established(1500);
    let mut f = NicBuf::new(ack(40000));
    assert_eq!(l.w.process_buf(&mut f, 0, 1), Verdict::Tx(0));
    assert!(f.requests.is_empty(), "no offload: computed here");
    l.w.set_tx_checksums(&[TxChecksums::IPV4]);
    let mut frames = vec![NicBuf::new(ack(40000))];
    let mut v = [Verdict::Consumed];
    l.w.process_burst(&mut frames, 0, 2, &mut v);
    assert_eq!(v[0], Verdict::Tx(0));
    assert_eq!(frames[0].requests, [(ETH, 20, TxChecksums::IPV4)]);
    assert_eq!(&frames[0].frame[ETH + 10..ETH + 12], &[0, 0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Packets sent by a plan leave byte for byte, verdict for verdict and
    /// counter for counter as the full path sends them (a worker whose
    /// plans are dropped before every packet), whatever their length
    /// (too big for the MTU too), DSCP/ECN, DF, padding and the NIC's
    /// offloads.
    #[test]
    fn planned_packets_are_the_full_paths(
        pkts in proptest::collection::vec((0usize..1500, any::<u8>(), any::<bool>(), 0usize..8), 1..12),
        offload: bool,
    ) {
        let mut planned = established(1200);
        let mut full = established(1200);
        let nic = if offload { TxChecksums::IPV4 } else { TxChecksums::NONE };
        planned.w.set_tx_checksums(&[nic]);
        full.w.set_tx_checksums(&[nic]);
        for (i, &(payload, tos, df, pad)) in pkts.iter().enumerate() {
            let f = segment(40000, payload, tos, df, pad);
            let now = 1 + i as Tick;
            let mut a = vec![NicBuf::new(f.clone())];
            let mut va = [Verdict::Consumed];
            planned.w.process_burst(&mut a, 0, now, &mut va);
            let snap = full.w.snapshot().clone();
            full.w.set_snapshot(snap);
            let mut b = vec![NicBuf::new(f)];
            let mut vb = [Verdict::Consumed];
            full.w.process_burst(&mut b, 0, now, &mut vb);
            prop_assert_eq!(va, vb);
            let (a, b) = (a.pop().unwrap(), b.pop().unwrap());
            prop_assert_eq!(&a.requests, &b.requests);
            prop_assert_eq!(a.transmit(), b.transmit());
        }
        for c in [
            Counter::FwdTunnel,
            Counter::DropTunnelTooBig,
            Counter::IcmpFragNeededSent,
            Counter::DropIpv4BadTotalLen,
        ] {
            prop_assert_eq!(planned.w.stats().get(c), full.w.stats().get(c));
        }
        let rs1 = planned.w.snapshot().services[0].reals[0].id as usize;
        let svc = planned.w.snapshot().services[0].id as usize;
        let (p, f) = (planned.w.stats(), full.w.stats());
        prop_assert_eq!(p.rs[rs1].packets.load(Relaxed), f.rs[rs1].packets.load(Relaxed));
        prop_assert_eq!(p.rs[rs1].bytes.load(Relaxed), f.rs[rs1].bytes.load(Relaxed));
        prop_assert_eq!(p.services[svc].packets.load(Relaxed), f.services[svc].packets.load(Relaxed));
        prop_assert_eq!(p.services[svc].bytes.load(Relaxed), f.services[svc].bytes.load(Relaxed));
    }
}
