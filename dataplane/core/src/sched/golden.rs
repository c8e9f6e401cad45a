//! Golden values of the hashing schedulers (sh, mh) for IPv4, recorded
//! before the schedulers hashed addresses as octets: an IPv4 deployment
//! must keep its client → real-server mapping across that change (and any
//! later one). If one of these fails, existing clients would move.

use std::net::Ipv4Addr;

use super::{pick, Candidate, Member, PickCtx, SchedState, Tables};
use crate::config::Scheduler;

/// Real servers 198.18.0.11–.16 on port 80 with unequal weights, one
/// quiesced, plus 198.18.1.7:8080.
fn members() -> Vec<Member> {
    let mut m: Vec<Member> = [(11, 1), (12, 2), (13, 1), (14, 0), (15, 3), (16, 1)]
        .iter()
        .map(|&(d, w)| member(Ipv4Addr::new(198, 18, 0, d), 80, w))
        .collect();
    m.push(member(Ipv4Addr::new(198, 18, 1, 7), 8080, 2));
    m
}

fn member(addr: Ipv4Addr, port: u16, weight: u32) -> Member {
    Member {
        addr: addr.into(),
        port,
        weight,
    }
}

/// Fixed client addresses: a run of neighbours and some spread ones.
fn clients() -> Vec<Ipv4Addr> {
    let mut c: Vec<Ipv4Addr> = (1..=24).map(|d| Ipv4Addr::new(198, 18, 200, d)).collect();
    let mut x = 0x9E37_79B9u32;
    for _ in 0..24 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c.push(Ipv4Addr::from(x));
    }
    c
}

fn choose(s: Scheduler, t: &Tables, ms: &[Member], client: Ipv4Addr) -> Option<usize> {
    let cands: Vec<Candidate> = ms
        .iter()
        .map(|m| Candidate {
            weight: m.weight,
            active: 0,
            inactive: 0,
        })
        .collect();
    let ctx = PickCtx {
        client: client.into(),
        tables: t,
    };
    pick(s, &cands, &mut SchedState::default(), &ctx)
}

/// FNV-1a over the table's entries (little-endian u16s).
fn fnv(entries: &[u16]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for e in entries {
        for b in e.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn choices(s: Scheduler) -> Vec<usize> {
    let ms = members();
    let t = Tables::build(s, &ms);
    clients()
        .into_iter()
        .map(|c| choose(s, &t, &ms, c).expect("a live server"))
        .collect()
}

#[test]
fn mh_table_bytes_are_unchanged() {
    let Tables::Mh(t) = Tables::build(Scheduler::Mh, &members()) else {
        panic!("mh builds a Maglev table");
    };
    assert_eq!(t.len(), 65537);
    // By entry, the server (its index in the list): the table itself holds
    // ranks since the directors of an ECMP group compare tables.
    let servers = t.servers();
    assert_eq!(
        fnv(&servers),
        6209052723000293590,
        "mh table for the golden servers"
    );
    assert_eq!(
        &servers[..16],
        &[2, 4, 5, 6, 1, 4, 1, 0, 1, 5, 2, 1, 6, 1, 6, 6]
    );
}

#[test]
fn mh_choices_are_unchanged() {
    assert_eq!(
        choices(Scheduler::Mh),
        [
            6, 4, 1, 6, 4, 0, 4, 0, 0, 4, 2, 2, 5, 4, 4, 4, 1, 1, 6, 6, 1, 6, 0, 4, 6, 6, 1, 6, 1,
            4, 1, 6, 5, 4, 1, 5, 1, 0, 4, 4, 2, 6, 4, 1, 4, 6, 0, 5
        ]
    );
}

#[test]
fn sh_table_and_choices_are_unchanged() {
    let Tables::Sh(t) = Tables::build(Scheduler::Sh, &members()) else {
        panic!("sh builds a bucket table");
    };
    assert_eq!(
        fnv(t.buckets()),
        7408004956705876978,
        "sh table for the golden servers"
    );
    assert_eq!(
        choices(Scheduler::Sh),
        [
            4, 1, 4, 4, 0, 4, 0, 0, 1, 6, 6, 1, 5, 0, 0, 6, 6, 5, 4, 2, 5, 6, 6, 2, 4, 6, 1, 6, 6,
            6, 5, 2, 4, 2, 5, 1, 1, 1, 5, 2, 6, 4, 6, 4, 0, 0, 4, 2
        ]
    );
}
