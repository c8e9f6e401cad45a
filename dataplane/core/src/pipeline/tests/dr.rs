//! Direct routing through one worker: MAC-only rewrite, scheduling and
//! weights, connection state and ActiveConn/InActConn, quiescing,
//! unresolved neighbours, UDP.

use super::*;

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
