//! Schedulers through a worker: every configured name schedules, and the
//! hashing schedulers keep a client on one real server.

use super::*;

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
