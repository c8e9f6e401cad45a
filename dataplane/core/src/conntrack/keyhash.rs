//! The connection tables' keyed hash: the key's two words, each xor'd with
//! a secret word of the table, multiplied 64×64→128 bits and folded to 64
//! (the product's halves xor'd); that folded again with a third secret word.
//!
//! **Why this is enough.** A table places a key by its hash's low bits (the
//! home bucket, in both tables) and by bits 32 and up (the worker table's
//! second window, `ConnTable::homes`); nothing else is taken from the hash
//! (no tag or fingerprint bits). An IPv4 key is (client,
//! VIP), (client port, VIP port, protocol): what varies between a
//! service's flows sits in bits 32..64 of the first word and 32..48 of the
//! second. The first product carries those bits into every bit from 32 up
//! of the 128-bit result, so the folded word differs for different keys;
//! but its bits still follow the keys' structure (consecutive clients step
//! its low bits like a Weyl sequence, and its bits 32.. spread over only
//! half the buckets when the secret factor is even). The second multiply
//! by a secret word spreads every bit of the first result over all bits of
//! the second, low and high alike: the tests below hold both windows, for
//! clients in a /16, consecutive ports, a /24 × 256 ports and strided
//! clients over several services, to a bound of uniform (a single multiply
//! fails them, at up to 13.5 times the uniform chi-square). That is all a
//! table needs. The previous hash, a full 64-bit finalizer per word
//! (`mix64` twice: 26 instructions), is now two multiplies and a few xors.
//!
//! **Keyed.** Every factor carries a secret word derived from the table's
//! seed ([`HashKeys::new`]), so a client cannot compute which keys share a
//! bucket: the products' bits depend on all of both factors. The one weak
//! key of a multiply — a factor of zero, which would put every key with the
//! same other word in one bucket — needs a key word equal to its secret
//! word. The parts of a word a client does not choose (the VIP; the VIP
//! port, protocol and the zero bits above the client port) must match the
//! secret first, which holds for one table in 2^32 (the addresses word)
//! or 2^48 (the ports word); only then does one client address in 2^32
//! (one client port in 2^16) hit it, with no way to tell it did short of
//! timing a full table.
//!
//! IPv6 keys (five words) take two such products of two words each, a
//! third that combines them with the ports word, and the same final
//! multiply.

/// The secret words of one table's hash, derived from its seed when the
/// table is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKeys([u64; 6]);

impl HashKeys {
    /// Keys derived from `seed` through a full finalizer each, so that
    /// close seeds (consecutive workers', a timestamp's) give unrelated
    /// keys, and no key is zero.
    pub fn new(seed: u64) -> HashKeys {
        HashKeys(core::array::from_fn(|i| {
            let k = mix64(seed.wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            if k == 0 {
                0x6a09_e667_f3bc_c909
            } else {
                k
            }
        }))
    }

    /// The IPv4 key's hash ([`super::ConnKey`]'s two words).
    #[inline(always)]
    pub fn hash2(&self, w: &[u64; 2]) -> u64 {
        folded_mul(folded_mul(w[0] ^ self.0[0], w[1] ^ self.0[1]), self.0[2])
    }

    /// The IPv6 key's hash ([`super::ConnKey6`]'s five words: client
    /// high, low; VIP high, low; ports).
    #[inline(always)]
    pub fn hash5(&self, w: &[u64; 5]) -> u64 {
        let client = folded_mul(w[0] ^ self.0[0], w[1] ^ self.0[1]);
        let vip = folded_mul(w[2] ^ self.0[2], w[3] ^ self.0[3]);
        folded_mul(folded_mul(client ^ w[4], vip ^ self.0[4]), self.0[5])
    }
}

/// A 64-bit finalizer (xor-shift-multiply rounds): every input bit affects
/// every output bit. Derives the secret words (not per packet).
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The 128-bit product of `a` and `b`, its halves xor'd.
#[inline(always)]
fn folded_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buckets of 2^12 (a table of 32 768 slots), as the tables take them:
    /// the home bucket from the low bits, the second window's from bits
    /// 32.. times the golden ratio (`ConnTable::homes`).
    const BITS: u32 = 12;

    fn homes(h: u64) -> [usize; 2] {
        let mask = (1usize << BITS) - 1;
        [
            h as usize & mask,
            ((h >> 32) as usize).wrapping_mul(0x9E37_79B9) & mask,
        ]
    }

    /// Pearson's chi-square of the bucket counts against a uniform spread.
    fn chi_square(counts: &[u32], n: usize) -> f64 {
        let e = n as f64 / counts.len() as f64;
        counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
    }

    /// Both windows' buckets of `keys`, each within a bound of uniform: the
    /// chi-square statistic of 4 096 buckets has mean 4 095 and standard
    /// deviation ≈ 90.5; 8 deviations above the mean is far outside what a
    /// uniform spread gives, and far below what a clustered one does (a
    /// hash that used half the buckets would score ≈ n).
    fn assert_spread(keys: impl Iterator<Item = u64>, what: &str) {
        let mut counts = [vec![0u32; 1 << BITS], vec![0u32; 1 << BITS]];
        let mut n = 0;
        for h in keys {
            for (w, b) in homes(h).into_iter().enumerate() {
                counts[w][b] += 1;
            }
            n += 1;
        }
        let m = (1u64 << BITS) as f64;
        let bound = m + 8.0 * (2.0 * m).sqrt();
        for (w, c) in counts.iter().enumerate() {
            let x = chi_square(c, n);
            assert!(
                x < bound,
                "{what}: window {w}: chi-square {x:.0} ≥ {bound:.0}"
            );
        }
    }

    /// IPv4 key words as the table stores them.
    fn v4(client: u32, cport: u16, vip: u32, vport: u16, proto: u8) -> [u64; 2] {
        [
            ((client as u64) << 32) | vip as u64,
            ((cport as u64) << 32) | ((vport as u64) << 16) | ((proto as u64) << 8) | 1,
        ]
    }

    const SEEDS: [u64; 4] = [0, 1, 0x5eed_0000_1234_5678, u64::MAX];

    #[test]
    fn structured_ipv4_keys_fill_the_buckets_evenly() {
        let vip = 0xC612_0064; // 198.18.0.100
        for seed in SEEDS {
            let k = HashKeys::new(seed);
            // Every client of a /16, one source port.
            assert_spread(
                (0..65_536u32).map(|i| k.hash2(&v4(0xC613_0000 | i, 40_000, vip, 80, 6))),
                "clients in a /16",
            );
            // One client, consecutive source ports.
            assert_spread(
                (0..65_536u32).map(|p| k.hash2(&v4(0xC613_0101, p as u16, vip, 443, 6))),
                "consecutive ports",
            );
            // 256 clients of a /24 × 256 consecutive ports each.
            assert_spread(
                (0..65_536u32).map(|i| {
                    k.hash2(&v4(
                        0xC613_0200 | (i >> 8),
                        32_768 + (i & 255) as u16,
                        vip,
                        80,
                        17,
                    ))
                }),
                "a /24 × 256 ports",
            );
            // Clients 256 apart (a /8 sampled on one octet), VIP ports
            // 80..84 and both protocols.
            assert_spread(
                (0..65_536u32).map(|i| {
                    let proto = if i & 1 == 0 { 6 } else { 17 };
                    k.hash2(&v4(
                        0xC600_0001 | ((i >> 3) << 8),
                        1024,
                        vip,
                        80 + (i >> 1 & 3) as u16,
                        proto,
                    ))
                }),
                "strided clients, several services",
            );
        }
    }

    #[test]
    fn structured_ipv6_keys_fill_the_buckets_evenly() {
        let vip = 0x2001_0db8_0000_0000_0000_0000_0000_0100u128;
        let w = |client: u128, cport: u16| {
            [
                (client >> 64) as u64,
                client as u64,
                (vip >> 64) as u64,
                vip as u64,
                ((cport as u64) << 32) | (443 << 16) | (6 << 8) | 1,
            ]
        };
        for seed in SEEDS {
            let k = HashKeys::new(seed);
            let net = 0x2001_0db8_0001_0000_0000_0000_0000_0000u128;
            assert_spread(
                (0..65_536u128).map(|i| k.hash5(&w(net | i, 40_000))),
                "v6 clients in a /112",
            );
            // Clients differing in the high word only (one per /64).
            assert_spread(
                (0..65_536u128).map(|i| k.hash5(&w(net | (i << 64) | 1, 40_000))),
                "v6 clients, one per /64",
            );
            assert_spread(
                (0..65_536u32).map(|p| k.hash5(&w(net | 7, p as u16))),
                "v6 consecutive ports",
            );
        }
    }

    #[test]
    fn every_key_bit_changes_the_hash() {
        let k = HashKeys::new(0x1234);
        let base2 = v4(0xC613_0101, 40_000, 0xC612_0064, 80, 6);
        for word in 0..2 {
            for bit in 0..64 {
                let mut w = base2;
                w[word] ^= 1 << bit;
                assert_ne!(k.hash2(&w), k.hash2(&base2), "v4 word {word} bit {bit}");
            }
        }
        let base5 = [1u64, 2, 3, 4, 5];
        for word in 0..5 {
            for bit in 0..64 {
                let mut w = base5;
                w[word] ^= 1 << bit;
                assert_ne!(k.hash5(&w), k.hash5(&base5), "v6 word {word} bit {bit}");
            }
        }
    }

    #[test]
    fn every_key_bit_moves_the_home_bucket_of_most_keys() {
        // Avalanche into the bucket bits: flipping any one input bit moves
        // the home bucket of nearly every key (a bit that never reached the
        // low bits would move none).
        let k = HashKeys::new(99);
        for word in 0..2 {
            for bit in 0..64 {
                let moved = (0..512u32)
                    .filter(|&i| {
                        let a = v4(0xC613_0000 | i, 1024 + i as u16, 0xC612_0064, 80, 6);
                        let mut b = a;
                        b[word] ^= 1 << bit;
                        homes(k.hash2(&a))[0] != homes(k.hash2(&b))[0]
                    })
                    .count();
                assert!(
                    moved > 480,
                    "v4 word {word} bit {bit}: {moved} of 512 moved"
                );
            }
        }
    }

    #[test]
    fn different_seeds_place_keys_differently() {
        let keys: Vec<[u64; 2]> = (0..4096u32)
            .map(|i| v4(0xC613_0000 | i, 40_000, 0xC612_0064, 80, 6))
            .collect();
        for (a, b) in [(0u64, 1u64), (1, 2), (7, 0x5eed_0000_0000_0007)] {
            let (ka, kb) = (HashKeys::new(a), HashKeys::new(b));
            assert_ne!(ka, kb);
            let same = keys
                .iter()
                .filter(|w| homes(ka.hash2(w))[0] == homes(kb.hash2(w))[0])
                .count();
            // Independent placements agree on 1 key in 4 096 on average.
            assert!(
                same < 16,
                "seeds {a} and {b}: {same} of 4096 keys in the same bucket"
            );
        }
    }

    #[test]
    fn no_secret_word_is_zero() {
        for seed in (0..10_000u64).chain(SEEDS) {
            assert!(HashKeys::new(seed).0.iter().all(|&w| w != 0));
        }
    }
}
