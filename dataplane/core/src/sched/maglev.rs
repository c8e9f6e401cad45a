//! Maglev consistent hashing with weights (IPVS `mh`).
//!
//! Each non-quiesced server has a preference list over the table's entries:
//! a permutation given by an offset and a skip, both hashes of the server's
//! identity (address and port, so the table does not depend on the order of
//! the list). Servers take turns claiming their next preferred free entry;
//! a server takes turns in proportion to its weight and stops at its quota
//! (the table size shared by weight), so the table reflects the weights to
//! within one entry. The table size is a prime, at least 100 times the
//! number of servers, so that each server's list is a full permutation and
//! a change of servers moves few entries beyond those of the server that
//! came or went.
//!
//! Lookup hashes the client address into the table: one multiply-shift and
//! one load.

use std::net::IpAddr;

use super::hashing::{addr_word, apportion, mix64};
use super::inputs::Member;

/// Entries per server, at least (Maglev's rule of thumb is M >> 100 N).
const ENTRIES_PER_SERVER: usize = 100;
/// Smallest table: the first prime above 2^16.
const MIN_BITS: u32 = 16;
/// Most turns a server takes in one round (weights are scaled down to it).
const MAX_TURNS: u64 = 64;
const SEED_OFFSET: u64 = 0x4d41_474c_4556_4f46;
const SEED_SKIP: u64 = 0x4d41_474c_4556_534b;
const SEED_CLIENT: u64 = 0x4d41_474c_4556_434c;
const EMPTY: u16 = u16::MAX;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct MaglevTable {
    /// By entry, the server's rank in the canonical order (by address and
    /// port) of the servers with a weight; empty when no server has one.
    /// Ranks, not list indices: the same set of servers gives the same
    /// bytes whatever order the list has, so two directors' tables can be
    /// compared byte for byte.
    entries: Box<[u16]>,
    /// The service's list index of each rank.
    index: Box<[u16]>,
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    // Trial division (at most ~725 steps); `rem` keeps this 1.82-compatible
    // (no `is_multiple_of`).
    let mut d = 2;
    while d * d <= n {
        let rem = n % d;
        if rem == 0 {
            return false;
        }
        d += 1;
    }
    true
}

/// Table size for a list of `n` servers: the smallest prime at or above the
/// smallest power of two (from 2^16) that exceeds 100 × n. Sizes come in
/// steps so that adding or quiescing a server rarely changes the size (a
/// new size reshuffles everything); 65537 up to 655 servers.
pub fn table_size(n: usize) -> usize {
    let want = (n * ENTRIES_PER_SERVER) as u64;
    let mut bits = MIN_BITS;
    while (1u64 << bits) <= want {
        bits += 1;
    }
    let mut m = 1u64 << bits;
    while !is_prime(m) {
        m += 1;
    }
    m as usize
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// What a server's permutation hashes: its address and port. For IPv4
/// `address << 16 | port`, as before IPv6 (the same servers give the same
/// table); an IPv6 address enters by its [`addr_word`].
#[inline]
fn member_id(m: &Member) -> u64 {
    (addr_word(&m.addr) << 16) | m.port as u64
}

impl MaglevTable {
    pub fn build(members: &[Member]) -> MaglevTable {
        if members.len() >= EMPTY as usize {
            return MaglevTable::default();
        }
        // Canonical order (by identity), so the list's order does not matter.
        let mut live: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].weight > 0)
            .collect();
        if live.is_empty() {
            return MaglevTable::default();
        }
        live.sort_by_key(|&i| (members[i].addr, members[i].port, i));
        let m = table_size(members.len());
        let m64 = m as u64;
        let weights: Vec<u32> = live.iter().map(|&i| members[i].weight).collect();
        let quota = apportion(&weights, m);
        let g = weights.iter().fold(0u64, |g, &w| gcd(w as u64, g));
        let max = weights.iter().map(|&w| w as u64 / g).max().unwrap_or(1);
        let turns: Vec<u64> = weights
            .iter()
            .map(|&w| {
                let t = w as u64 / g;
                if max <= MAX_TURNS {
                    t
                } else {
                    (t * MAX_TURNS / max).max(1)
                }
            })
            .collect();
        // Position in each server's permutation, and the step to the next.
        let mut pos = Vec::with_capacity(live.len());
        let mut skip = Vec::with_capacity(live.len());
        for &i in &live {
            let id = member_id(&members[i]);
            pos.push(mix64(id ^ SEED_OFFSET) % m64);
            skip.push(mix64(id ^ SEED_SKIP) % (m64 - 1) + 1);
        }
        let mut entries = vec![EMPTY; m];
        let mut owned = vec![0usize; live.len()];
        let mut filled = 0;
        while filled < m {
            for j in 0..live.len() {
                for _ in 0..turns[j] {
                    if owned[j] == quota[j] {
                        break;
                    }
                    // A free entry exists (owned < quota and quotas sum to
                    // m), and the permutation visits every entry.
                    loop {
                        let e = pos[j] as usize;
                        pos[j] = (pos[j] + skip[j]) % m64;
                        if entries[e] == EMPTY {
                            entries[e] = j as u16;
                            break;
                        }
                    }
                    owned[j] += 1;
                    filled += 1;
                }
            }
        }
        MaglevTable {
            entries: entries.into_boxed_slice(),
            index: live.iter().map(|&i| i as u16).collect(),
        }
    }

    /// Number of entries (0: no server can be picked).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The server index for an IPv4 client address (host order).
    #[inline]
    pub fn lookup(&self, client_ip: u32) -> Option<usize> {
        self.lookup_word(client_ip as u64)
    }

    /// The server index for a client address of either family.
    #[inline]
    pub fn lookup_addr(&self, client: &IpAddr) -> Option<usize> {
        self.lookup_word(addr_word(client))
    }

    /// The server index for a client's [`addr_word`].
    #[inline(always)]
    fn lookup_word(&self, word: u64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let h = mix64(word ^ SEED_CLIENT) >> 32;
        let i = (h * self.entries.len() as u64) >> 32;
        let rank = self.entries[i as usize];
        Some(self.index[rank as usize] as usize)
    }

    /// The table itself: by entry, the rank of its server among those with
    /// a weight, ordered by address and port (the same on every director
    /// with the same servers).
    pub fn entries(&self) -> &[u16] {
        &self.entries
    }

    /// By entry, the server's index in the service's list (what the table
    /// held before it held ranks): the mapping itself, for tests that pin it.
    #[cfg(test)]
    pub(crate) fn servers(&self) -> Vec<u16> {
        self.entries
            .iter()
            .map(|&r| self.index[r as usize])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: u32, weight: u32) -> Member {
        Member {
            addr: std::net::Ipv4Addr::from(0x0a00_0100 + i).into(),
            port: 80,
            weight,
        }
    }

    fn members(weights: &[u32]) -> Vec<Member> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| member(i as u32 + 1, w))
            .collect()
    }

    /// Pseudo-random client addresses (splitmix64), the same every run.
    fn clients(n: usize) -> Vec<u32> {
        let mut s = 0x1234_5678_9abc_def0u64;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                (mix64(s) >> 16) as u32
            })
            .collect()
    }

    /// The identity (address) each client maps to.
    fn assign(t: &MaglevTable, ms: &[Member], cs: &[u32]) -> Vec<IpAddr> {
        cs.iter().map(|&c| ms[t.lookup(c).unwrap()].addr).collect()
    }

    fn moved(a: &[IpAddr], b: &[IpAddr]) -> f64 {
        a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
    }

    #[test]
    fn sizes() {
        assert_eq!(table_size(0), 65537);
        assert_eq!(table_size(10), 65537);
        assert_eq!(table_size(655), 65537);
        let m = table_size(656);
        assert!(m > 65600 && is_prime(m as u64), "{m}");
        let m = table_size(4096);
        assert!(m > 409_600 && is_prime(m as u64), "{m}");
        assert!(!is_prime(65536) && is_prime(65537) && !is_prime(1));
    }

    #[test]
    fn fill_follows_weights() {
        for ws in [&[1u32, 1, 1][..], &[3, 1], &[5, 3, 2], &[100, 1, 7, 0, 50]] {
            let t = MaglevTable::build(&members(ws));
            let m = t.len();
            assert_eq!(m, 65537);
            let total: u32 = ws.iter().sum();
            let mut per = vec![0usize; ws.len()];
            for &e in t.entries() {
                per[t.index[e as usize] as usize] += 1;
            }
            for (i, &w) in ws.iter().enumerate() {
                let share = per[i] as f64 / m as f64;
                let want = w as f64 / total as f64;
                assert!((share - want).abs() < 0.02, "{ws:?}: {per:?}");
                if w == 0 {
                    assert_eq!(per[i], 0);
                }
            }
            // Clients follow the fill too.
            let cs = clients(100_000);
            let mut got = vec![0usize; ws.len()];
            for &c in &cs {
                got[t.lookup(c).unwrap()] += 1;
            }
            for (i, &w) in ws.iter().enumerate() {
                let share = got[i] as f64 / cs.len() as f64;
                assert!(
                    (share - w as f64 / total as f64).abs() < 0.02,
                    "{ws:?}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn many_servers_get_a_bigger_prime_table() {
        let ms = members(&[1; 700]);
        let t = MaglevTable::build(&ms);
        assert_eq!(t.len(), table_size(700));
        assert!(t.len() > 70_000);
        let mut per = vec![0usize; ms.len()];
        for &e in t.entries() {
            per[t.index[e as usize] as usize] += 1;
        }
        let fair = t.len() / ms.len();
        assert!(per.iter().all(|&n| n == fair || n == fair + 1), "{per:?}");
    }

    #[test]
    fn huge_weights_still_proportional() {
        let t = MaglevTable::build(&members(&[65535, 65534, 1]));
        let mut per = [0usize; 3];
        for &e in t.entries() {
            per[t.index[e as usize] as usize] += 1;
        }
        assert!(per[2] >= 1 && per[2] <= 2, "{per:?}");
        assert!(per[0].abs_diff(per[1]) <= 2, "{per:?}");
    }

    #[test]
    fn stable_across_rebuilds_and_reorderings() {
        let ms = members(&[1, 2, 3, 1, 1]);
        let a = MaglevTable::build(&ms);
        assert!(a == MaglevTable::build(&ms));
        let mut rev = ms.clone();
        rev.reverse();
        let b = MaglevTable::build(&rev);
        let cs = clients(10_000);
        assert_eq!(assign(&a, &ms, &cs), assign(&b, &rev, &cs));
        // A quiesced server is as if absent.
        let mut q = ms.clone();
        q.push(member(99, 0));
        let c = MaglevTable::build(&q);
        assert_eq!(assign(&a, &ms, &cs), assign(&c, &q, &cs));
        assert_eq!(MaglevTable::build(&members(&[0, 0])).lookup(1), None);
        assert_eq!(MaglevTable::build(&[]).lookup(1), None);
    }

    /// Distinct servers (address, port) with weights 0 to 5, some quiesced,
    /// and the same servers in a shuffled order.
    fn server_set_twice() -> impl proptest::strategy::Strategy<Value = (Vec<Member>, Vec<Member>)> {
        use proptest::prelude::*;
        proptest::collection::btree_map((any::<u32>(), 1u16..4), 0u32..6, 1..24)
            .prop_map(|m| {
                m.into_iter()
                    .map(|((addr, port), weight)| Member {
                        addr: std::net::Ipv4Addr::from(addr).into(),
                        port,
                        weight,
                    })
                    .collect::<Vec<Member>>()
            })
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// The same set of servers, listed in any order, gives a
        /// byte-for-byte identical table (what several directors behind
        /// ECMP rely on), and every client the same server.
        #[test]
        fn same_set_same_table_in_any_order(sets in server_set_twice()) {
            let (set, shuffled) = sets;
            let a = MaglevTable::build(&set);
            let b = MaglevTable::build(&shuffled);
            proptest::prop_assert_eq!(a.entries(), b.entries());
            for c in clients(200) {
                let who = |t: &MaglevTable, ms: &[Member]| {
                    t.lookup(c).map(|i| (ms[i].addr, ms[i].port))
                };
                proptest::prop_assert_eq!(who(&a, &set), who(&b, &shuffled));
            }
        }
    }

    /// Fractions moved when server `gone` leaves 10 equal servers: (all,
    /// among clients that were not on `gone`).
    fn removal_disruption(gone: usize) -> (f64, f64) {
        let ms = members(&[1; 10]);
        let cs = clients(100_000);
        let before = assign(&MaglevTable::build(&ms), &ms, &cs);
        let mut less = ms.clone();
        let gone_addr = less.remove(gone).addr;
        let after = assign(&MaglevTable::build(&less), &less, &cs);
        let all = moved(&before, &after);
        let (b2, a2): (Vec<IpAddr>, Vec<IpAddr>) = before
            .iter()
            .zip(&after)
            .filter(|(b, _)| **b != gone_addr)
            .map(|(b, a)| (*b, *a))
            .unzip();
        (all, moved(&b2, &a2))
    }

    #[test]
    fn removing_a_server_moves_little_else() {
        for gone in [0, 4, 9] {
            let (all, others) = removal_disruption(gone);
            assert!(all <= 0.1 + 0.03, "removed {gone}: moved {all}");
            assert!(others <= 0.03, "removed {gone}: others moved {others}");
        }
    }

    /// Fractions moved when an 11th server joins 10 equal ones: (all, to
    /// the new server).
    fn addition_disruption() -> (f64, f64) {
        let ms = members(&[1; 10]);
        let cs = clients(100_000);
        let before = assign(&MaglevTable::build(&ms), &ms, &cs);
        let mut more = ms.clone();
        more.insert(3, member(11, 1));
        let after = assign(&MaglevTable::build(&more), &more, &cs);
        let to_new = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b != a && **a == member(11, 1).addr)
            .count() as f64
            / cs.len() as f64;
        (moved(&before, &after), to_new)
    }

    #[test]
    fn adding_a_server_moves_about_its_share() {
        let (all, to_new) = addition_disruption();
        assert!(all <= 1.0 / 11.0 + 0.03, "moved {all}");
        // Nearly all moves go to the new server.
        assert!(to_new >= 1.0 / 11.0 - 0.02, "{to_new}");
    }
}
