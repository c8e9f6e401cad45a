//! A SYN that finds a half-open connection of a real server that is out of
//! service (health check with `on_failure: Remove`, or removed from the
//! configuration) is scheduled afresh; established connections and
//! quiesced servers keep today's behaviour.

use super::*;
use crate::conntrack::shared::SharedConnTable;
use crate::neigh::ClientMacs;
use crate::pipeline::nat::NatState;
use crate::pipeline::snapshot::RsHealth;

const RS1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);

/// Rebuild the lab's snapshot from `cfg` with RS1 in `health`.
fn rs1_health(l: &mut Lab, cfg: &Config, health: RsHealth, generation: u64) {
    let mut snap = Snapshot::build(cfg, &[DIR_MAC], &mut l.reg, &l.neigh, generation).unwrap();
    snap.apply_health(|_, r| if r.addr == RS1 { health } else { RsHealth::Up });
    l.w.set_snapshot(Arc::new(snap));
}

const REMOVED: RsHealth = RsHealth::Down {
    quiesce: false,
    expire: false,
};

#[test]
fn syn_retransmit_to_a_removed_server_is_rescheduled() {
    let cfg = config("Rr", (1, 1));
    let mut l = lab_from(cfg.clone(), true);
    let mut f = syn(40000);
    assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS1_MAC, "rr starts with rs1");
    // An established connection to rs1 too.
    let mut f = syn(40002);
    l.w.process(&mut f, 0, 0);
    let mut f = syn(40004);
    l.w.process(&mut f, 0, 0);
    assert_eq!(dst_mac(&f), RS1_MAC);
    l.w.process(&mut ack(40004), 0, 1);

    rs1_health(&mut l, &cfg, REMOVED, 2);
    // The client's SYN retransmission (same port): not to the dead server.
    let mut f = syn(40000);
    assert_eq!(l.w.process(&mut f, 0, 1000), Verdict::Tx(0));
    assert_eq!(
        dst_mac(&f),
        RS2_MAC,
        "rescheduled away from the down server"
    );
    let mut f = ack(40000);
    assert_eq!(l.w.process(&mut f, 0, 1001), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS2_MAC, "the new entry is kept");
    // The established connection keeps its server (documented behaviour
    // without `expire_connections`).
    let mut f = ack(40004);
    assert_eq!(l.w.process(&mut f, 0, 1002), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS1_MAC);
    let rs1 = l.w.snapshot().services[0].reals[0].id as usize;
    assert_eq!(
        (l.w.stats().rs[rs1].active(), l.w.stats().rs[rs1].inactive()),
        (1, 0),
        "the half-open entry left rs1's InActConn"
    );
}

#[test]
fn a_quiesced_server_keeps_its_half_open_connections() {
    let cfg = config("Rr", (1, 1));
    let mut l = lab_from(cfg.clone(), true);
    let mut f = syn(40000);
    l.w.process(&mut f, 0, 0);
    assert_eq!(dst_mac(&f), RS1_MAC);
    let quiesced = RsHealth::Down {
        quiesce: true,
        expire: false,
    };
    rs1_health(&mut l, &cfg, quiesced, 2);
    let mut f = syn(40000);
    assert_eq!(l.w.process(&mut f, 0, 1000), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS1_MAC, "weight 0: as IPVS, the entry stays");
    assert_eq!(l.w.stats().get(Counter::ConnCreated), 1);
}

#[test]
fn syn_for_a_server_removed_from_the_config_is_rescheduled() {
    let cfg = config("Rr", (1, 1));
    let mut l = lab_from(cfg.clone(), true);
    let mut f = syn(40000);
    l.w.process(&mut f, 0, 0);
    assert_eq!(dst_mac(&f), RS1_MAC);
    let mut without = cfg.clone();
    without.services[0].real_servers.remove(0);
    let snap = Snapshot::build(&without, &[DIR_MAC], &mut l.reg, &l.neigh, 2).unwrap();
    l.w.set_snapshot(Arc::new(snap));
    let mut f = syn(40000);
    assert_eq!(l.w.process(&mut f, 0, 1000), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS2_MAC);
}

#[test]
fn nat_syn_retransmit_to_a_removed_server_is_rescheduled() {
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.18.0.11", forward: Nat),
                    (address: "198.18.0.12", forward: Nat)]),
            ],
        )"#,
    )
    .unwrap();
    let mut l = lab_from(cfg.clone(), true);
    let table = Arc::new(SharedConnTable::new(1024, 3));
    let clients = Arc::new(ClientMacs::new(64));
    let snap = l.w.snapshot().clone();
    let w = std::mem::replace(
        &mut l.w,
        Worker::new(
            snap,
            ConnTable::new(16, 1),
            Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
            l.neigh.clone(),
        ),
    );
    l.w = w.with_nat(NatState::new(table, clients, 0, 1));
    let nat_dst = |f: &[u8]| Ipv4Addr::from(<[u8; 4]>::try_from(&f[ETH + 16..ETH + 20]).unwrap());
    let mut f = syn(40000);
    assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
    assert_eq!(nat_dst(&f), RS1);
    rs1_health(&mut l, &cfg, REMOVED, 2);
    let mut f = syn(40000);
    assert_eq!(l.w.process(&mut f, 0, 1000), Verdict::Tx(0));
    assert_eq!(
        nat_dst(&f),
        Ipv4Addr::new(198, 18, 0, 12),
        "NAT: rescheduled away from the down server"
    );
}
