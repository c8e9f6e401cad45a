//! `scale` still works: two workers on two threads, each with its own table
//! and share of the flows, every packet with the verdict it should get. No
//! timing is asserted.

use lbbench::scale::{default_cpus, parse_cpus, scale};
use lbbench::{Params, Workload};

/// Two pinned CPUs if this process may use two, else unpinned.
fn two_cpus() -> Vec<Option<usize>> {
    match default_cpus(2) {
        Ok(v) => v.into_iter().map(Some).collect(),
        Err(_) => vec![None, None],
    }
}

#[test]
fn scale_established_two_threads() {
    let mut p = Params::new(Workload::Established, 2_001, 20_000);
    p.prefetch = true;
    let r = scale(&p, &two_cpus(), 30.0).expect("scale runs");
    assert_eq!(r.threads, 2);
    assert_eq!(r.per_thread.len(), 2);
    // The flows are split as evenly as possible.
    let lens: Vec<usize> = r.per_thread.iter().map(|t| t.table_len).collect();
    assert_eq!(lens, [1_001, 1_000]);
    let mut total = 0;
    for t in &r.per_thread {
        assert!(t.packets > 0 && t.packets <= 20_000);
        assert_eq!(t.tx, t.packets, "every ACK forwarded");
        assert_eq!(t.conns_created, 0);
        assert_eq!(t.refused, 0);
        total += t.packets;
    }
    assert_eq!(r.packets, total);
    // Timing ends for both when the first reaches its cap.
    assert!(r.per_thread.iter().any(|t| t.packets == 20_000));
    assert!(r.aggregate_mpps > 0.0);
}

#[test]
fn scale_new_two_threads() {
    let p = Params::new(Workload::New, 4_000, 0);
    let r = scale(&p, &two_cpus(), 30.0).expect("scale runs");
    let mut created = 0;
    for t in &r.per_thread {
        assert!(t.packets <= 2_000);
        assert_eq!(t.tx + t.refused, t.packets, "every SYN Tx or refused");
        assert_eq!(t.conns_created, t.tx);
        assert_eq!(t.table_len as u64, t.conns_created);
        created += t.conns_created;
    }
    assert!(r.per_thread.iter().any(|t| t.packets == 2_000));
    assert!(created > 0);
}

#[test]
fn shards_take_every_nth_flow_number() {
    // The same flow numbers split over two shards give the same flows as one
    // worker would: shard k holds flow numbers k, k + 2, …
    let mut a = Params::new(Workload::Established, 10, 0);
    a.shard = (1, 2);
    assert_eq!(
        (0..4).map(|j| a.flow_no(j)).collect::<Vec<_>>(),
        [1, 3, 5, 7]
    );
    a.shard = (2, 2);
    assert!(lbbench::prepare(&a).is_err());
}

#[test]
fn cpu_lists_parse() {
    assert_eq!(parse_cpus("1,3,5-7").unwrap(), [1, 3, 5, 6, 7]);
    assert!(parse_cpus("3-1").is_err());
    assert!(parse_cpus("").is_err());
}
