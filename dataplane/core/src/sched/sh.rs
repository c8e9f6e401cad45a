//! Source hashing (IPVS `sh`): a static table of buckets, each owned by one
//! server, indexed by a hash of the client address. Each non-quiesced server
//! owns a share of the buckets proportional to its weight; quiesced servers
//! own none. The same client address always lands on the same server while
//! the list and weights stay the same.

use std::net::IpAddr;

use super::hashing::{addr_word, apportion, mix64};

/// Fewest buckets (IPVS's default table size).
const MIN_BUCKETS: usize = 256;
/// Most buckets (indices are u16 and MAX_REAL_SERVERS is 4096).
const MAX_BUCKETS: usize = 1 << 16;
/// Buckets per live server, at least: keeps shares close to the weights.
const BUCKETS_PER_SERVER: usize = 16;
/// Odd multiplier spreading consecutive buckets of one server over the
/// table (any odd number permutes the indices of a power-of-two table).
const SPREAD: usize = 0x9E37_79B1;
/// Seed of the client-address hash.
const SEED: u64 = 0x5348_5f53_4545_4431;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct ShTable {
    /// Server index (into the service's list) by bucket; empty when no
    /// server has a weight.
    buckets: Box<[u16]>,
}

impl ShTable {
    pub fn build(weights: &[u32]) -> ShTable {
        let live = weights.iter().filter(|&&w| w > 0).count();
        if live == 0 || weights.len() > u16::MAX as usize {
            return ShTable::default();
        }
        let size = (live.next_power_of_two() * BUCKETS_PER_SERVER).clamp(MIN_BUCKETS, MAX_BUCKETS);
        let shares = apportion(weights, size);
        let mut buckets = vec![0u16; size];
        let mut j = 0usize;
        for (server, &n) in shares.iter().enumerate() {
            for _ in 0..n {
                buckets[j.wrapping_mul(SPREAD) & (size - 1)] = server as u16;
                j += 1;
            }
        }
        debug_assert_eq!(j, size);
        ShTable {
            buckets: buckets.into_boxed_slice(),
        }
    }

    /// Number of buckets (0: no server can be picked).
    pub fn len(&self) -> usize {
        self.buckets.len()
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
        if self.buckets.is_empty() {
            return None;
        }
        let h = mix64(word ^ SEED);
        let i = (h >> 32) as usize & (self.buckets.len() - 1);
        Some(self.buckets[i] as usize)
    }

    #[cfg(test)]
    pub(crate) fn buckets(&self) -> &[u16] {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_weights_and_skip_quiesced() {
        let t = ShTable::build(&[3, 0, 1]);
        assert_eq!(t.len(), 256);
        let count = |s: u16| t.buckets().iter().filter(|&&b| b == s).count();
        assert_eq!((count(0), count(1), count(2)), (192, 0, 64));
        // Buckets of one server are spread, not in one run.
        assert_ne!(t.buckets()[..4], [0, 0, 0, 0]);
        let t = ShTable::build(&[5, 3, 2]);
        let count = |s: u16| t.buckets().iter().filter(|&&b| b == s).count();
        assert_eq!(count(0) + count(1) + count(2), 256);
        assert!((count(0) as i64 - 128).abs() <= 1);
        assert!((count(1) as i64 - 77).abs() <= 1);
        assert_eq!(ShTable::build(&[0, 0]).lookup(1), None);
        assert_eq!(ShTable::build(&[]).lookup(1), None);
    }

    #[test]
    fn big_lists_get_bigger_tables() {
        let w = vec![1; 1000];
        let t = ShTable::build(&w);
        assert_eq!(t.len(), 16384);
        let mut per = vec![0; 1000];
        for &b in t.buckets() {
            per[b as usize] += 1;
        }
        assert!(per.iter().all(|&n| n == 16 || n == 17), "{per:?}");
        assert_eq!(ShTable::build(&vec![1; 4096]).len(), MAX_BUCKETS);
    }

    #[test]
    fn same_client_same_server() {
        let t = ShTable::build(&[1, 1, 1]);
        for ip in [0x0a00_0001u32, 0xc612_0001, 0xdead_beef] {
            let first = t.lookup(ip);
            assert!(first.is_some());
            for _ in 0..10 {
                assert_eq!(t.lookup(ip), first);
            }
            assert_eq!(ShTable::build(&[1, 1, 1]).lookup(ip), first);
        }
    }
}
