//! Health checks' effect on the snapshot (`Snapshot::apply_health`): the
//! fallback server, down servers keeping or expiring their connections.

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
        address: FB.into(),
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
                address: r.addr.into(),
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
