//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The checksum is the ones' complement of the ones' complement sum of the
//! data taken as big-endian 16-bit words (an odd trailing byte is padded with
//! a zero byte). Because 2^16 ≡ 1 (mod 0xffff), wider words can be summed
//! with end-around carry and folded at the end, which is what [`sum`] does
//! (eight bytes at a time).
//!
//! Typical use:
//!
//! ```
//! use lbcore::wire::checksum::{checksum, fold, sum};
//!
//! let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
//! assert_eq!(checksum(&data), !0xddf2);
//! // Chained: a header and a payload summed separately.
//! assert_eq!(!fold(sum(&data[4..], sum(&data[..4], 0))), checksum(&data));
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to the running ones' complement sum `initial`.
///
/// The result is *not* folded to 16 bits; it is only meaningful modulo 0xffff
/// (pass it to [`fold`]). Sums can be chained (`sum(b, sum(a, 0))`) as long
/// as every piece but the last has an even length — an odd-length piece is
/// padded with a zero byte as if it ended the data.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut acc: u64 = u64::from(initial);

    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = acc.overflowing_add(w);
        // End-around carry: 2^64 ≡ 1 (mod 0xffff).
        acc = s + u64::from(carry);
    }

    let mut rest = chunks.remainder();
    let mut tail: u64 = 0;
    if rest.len() >= 4 {
        tail += u64::from(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        tail += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        tail += u64::from(b) << 8;
    }
    let (s, carry) = acc.overflowing_add(tail);
    acc = s + u64::from(carry);

    // Fold 64 -> 32 bits, preserving the value modulo 0xffff.
    let mut folded = (acc & 0xffff_ffff) + (acc >> 32);
    folded = (folded & 0xffff_ffff) + (folded >> 32);
    folded as u32
}

/// Folds a running sum to 16 bits with end-around carry.
///
/// The result is zero only if `sum` is zero.
#[inline]
pub fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The Internet checksum of `data`: `!fold(sum(data, 0))`.
///
/// To verify a header that contains its own checksum field, check that this
/// returns 0 (equivalently `fold(sum(..)) == 0xffff`).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Whether an option-free IPv4 header's checksum verifies:
/// `fold(sum(header, 0)) == 0xffff`, in fewer instructions (the fast
/// classifier's check on every packet).
///
/// Why it is the same test: let `T` be the plain sum of the header's
/// big-endian 16-bit words; folding gives 0xffff exactly when `T` is a
/// non-zero multiple of 0xffff. Here the header is summed as two
/// little-endian `u64` words and a `u32` with end-around carry (no byte
/// swaps, no fold): that sum `S` is `256·T` modulo 0xffff (2^64 and 2^16
/// are ≡ 1, and a little-endian 16-bit word is its big-endian value times
/// 256), and 256 is prime to 0xffff, so `S` is a multiple of 0xffff
/// exactly when `T` is; `S` is zero exactly when every byte is (an
/// end-around carry never leaves zero), as is `T`. "A non-zero multiple of
/// the odd 0xffff" is one multiply by its inverse modulo 2^64 and one
/// compare: the multiples are exactly the `x` with `x·inverse` at most
/// `u64::MAX / 0xffff`, and zero is the one with product zero.
#[inline(always)]
pub fn ipv4_header_ok(h: &[u8; 20]) -> bool {
    let a = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let b = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    let c = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
    ipv4_header_words_ok(a, b, c)
}

/// [`ipv4_header_ok`] of the header read as its bytes 0..8 and 8..16
/// (little-endian `u64`s) and 16..20 (a little-endian `u32`): for a caller
/// that tests other fields in the same words.
#[inline(always)]
pub fn ipv4_header_words_ok(a: u64, b: u64, c: u32) -> bool {
    const INVERSE: u64 = 0xfffe_fffe_fffe_ffff; // 0xffff × INVERSE ≡ 1 (mod 2^64)
    const _: () = assert!(0xffffu64.wrapping_mul(INVERSE) == 1);
    let c = u64::from(c);
    let (s, carry) = a.overflowing_add(b);
    let (s, carry2) = (s + u64::from(carry)).overflowing_add(c);
    let s = s + u64::from(carry2);
    s.wrapping_mul(INVERSE).wrapping_sub(1) < u64::MAX / 0xffff
}

/// The (unfolded) sum of the IPv4 pseudo-header used by TCP and UDP:
/// source, destination, zero byte + protocol, and the transport length
/// (header + payload, in bytes).
#[inline]
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(proto) + u32::from(len)
}

/// The (unfolded) sum of the IPv6 pseudo-header (RFC 8200 §8.1) used by
/// ICMPv6, TCP and UDP over IPv6: source, destination, the upper-layer
/// length as 32 bits (header + payload of the upper layer, not of any
/// extension header) and three zero bytes + next header (the upper-layer
/// protocol, not the first extension header).
///
/// Chain it like [`sum`]: `fold(sum(msg, pseudo_header_sum_v6(..)))`.
#[inline]
pub fn pseudo_header_sum_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, upper_len: u32) -> u32 {
    let l = upper_len.to_be_bytes();
    let tail = [l[0], l[1], l[2], l[3], 0, 0, 0, next_header];
    sum(&tail, sum(&dst.octets(), sum(&src.octets(), 0)))
}

/// Incrementally updates a checksum after one 16-bit word of the covered data
/// changed from `old` to `new` (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`).
///
/// The word must sit at an even offset of the checksummed data (as every
/// IPv4/TCP/UDP header field of 16 bits or more does).
#[inline]
pub fn incremental_update16(old_checksum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!old_checksum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// [`incremental_update16`] for a 32-bit value (e.g. an IPv4 address) that
/// sits at an even offset of the checksummed data.
#[inline]
pub fn incremental_update32(old_checksum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!old_checksum)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Straightforward reference: 16-bit words, u32 accumulator, fold at end.
    fn naive(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map(u64::from).unwrap_or(0);
            acc += hi | lo;
        }
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these bytes is ddf2, checksum 220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    #[test]
    fn ipv4_header_known_vector() {
        // Classic example header (wikipedia), checksum field zeroed: b861.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0xb861);
        hdr[10] = 0xb8;
        hdr[11] = 0x61;
        assert_eq!(checksum(&hdr), 0);
        assert_eq!(fold(sum(&hdr, 0)), 0xffff);
    }

    #[test]
    fn odd_lengths_and_edges() {
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(checksum(&[0x12]), !0x1200);
        assert_eq!(checksum(&[0x12, 0x34, 0x56]), !(0x1234 + 0x5600));
        assert_eq!(checksum(&[0xff; 3]), naive(&[0xff; 3]));
        for n in 0..40 {
            let v: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(checksum(&v), naive(&v), "len {n}");
            let ff = vec![0xffu8; n];
            assert_eq!(checksum(&ff), naive(&ff), "ff len {n}");
        }
    }

    #[test]
    fn fold_end_around() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0xffff_ffff), 0xffff);
        assert_eq!(fold(0x0001_fffe), 0xffff);
    }

    #[test]
    fn pseudo_header_known() {
        let s = pseudo_header_sum(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
            17,
            0x5f,
        );
        assert_eq!(s, 0xc0a8 + 0x0001 + 0xc0a8 + 0x00c7 + 17 + 0x5f);
    }

    #[test]
    fn pseudo_header_v6_known() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        let words: u32 = 0x2001 + 0x0db8 + 0x0001 + 0xff02 + 0x0001 + 0xff00 + 0x0002 + 32 + 58;
        assert_eq!(fold(pseudo_header_sum_v6(src, dst, 58, 32)), fold(words));
        // Lengths above 16 bits (jumbo-sized) are carried as two words.
        let big = pseudo_header_sum_v6(src, dst, 6, 0x0001_0002);
        assert_eq!(fold(big), fold(words - 32 - 58 + 1 + 2 + 6));
    }

    #[test]
    fn incremental_rfc1624_example() {
        // RFC 1624 section 4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285,
        // expected HC' = 0x0000.
        assert_eq!(incremental_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    /// A header with its checksum filled in, then `flip` xor'd into byte
    /// `at` (0: none).
    fn header(bytes: [u8; 20], at: usize, flip: u8) -> [u8; 20] {
        let mut h = bytes;
        h[10] = 0;
        h[11] = 0;
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h[at] ^= flip;
        h
    }

    #[test]
    fn ipv4_header_ok_edges() {
        let ok = |h: &[u8; 20]| fold(sum(h, 0)) == 0xffff;
        // All zero: the sum is zero, not 0xffff.
        assert!(!ipv4_header_ok(&[0; 20]) && !ok(&[0; 20]));
        // All 0xff: ten words of 0xffff.
        assert!(ipv4_header_ok(&[0xff; 20]) && ok(&[0xff; 20]));
        // A checksum of 0x0000 against one of 0xffff (both verify when the
        // rest sums to 0xffff).
        let mut h = [0u8; 20];
        h[0] = 0xff;
        h[1] = 0xff;
        assert_eq!(ipv4_header_ok(&h), ok(&h));
        h[10] = 0xff;
        h[11] = 0xff;
        assert_eq!(ipv4_header_ok(&h), ok(&h));
        let known = header(
            [
                0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0,
                0xc7,
            ],
            0,
            0,
        );
        assert!(ipv4_header_ok(&known));
        for at in 0..20 {
            for bit in 0..8 {
                let bad = header(known, at, 1 << bit);
                assert_eq!(ipv4_header_ok(&bad), ok(&bad), "byte {at} bit {bit}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// The same verdict as the folded sum on any header: random ones
        /// (almost all fail), valid ones, and valid ones with a byte
        /// changed.
        #[test]
        fn ipv4_header_ok_is_the_folded_sum(
            bytes in proptest::array::uniform20(any::<u8>()),
            at in 0usize..20,
            flip in any::<u8>(),
        ) {
            let ok = |h: &[u8; 20]| fold(sum(h, 0)) == 0xffff;
            prop_assert_eq!(ipv4_header_ok(&bytes), ok(&bytes));
            let valid = header(bytes, 0, 0);
            prop_assert!(ipv4_header_ok(&valid));
            let changed = header(bytes, at, flip);
            prop_assert_eq!(ipv4_header_ok(&changed), ok(&changed));
        }
    }

    proptest! {
        #[test]
        fn sum_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(checksum(&data), naive(&data));
        }

        #[test]
        fn chained_sum_matches(data in proptest::collection::vec(any::<u8>(), 0..300),
                               split in 0usize..150) {
            let split = (split * 2).min(data.len() & !1);
            let chained = !fold(sum(&data[split..], sum(&data[..split], 0)));
            prop_assert_eq!(chained, checksum(&data));
        }

        #[test]
        fn incremental16_equals_recompute(
            mut words in proptest::collection::vec(any::<u16>(), 1..40),
            idx in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            // A fixed non-zero word keeps the data from summing to zero, the
            // single case where ~fold() has two representations (0 / 0xffff).
            words.push(0x0001);
            let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
            let i = idx.index(words.len() - 1);
            let before = checksum(&bytes(&words));
            let old = words[i];
            words[i] = new;
            let after = checksum(&bytes(&words));
            prop_assert_eq!(incremental_update16(before, old, new), after);
        }

        #[test]
        fn incremental32_equals_recompute(
            mut words in proptest::collection::vec(any::<u32>(), 1..20),
            idx in any::<prop::sample::Index>(),
            new in any::<u32>(),
        ) {
            words.push(0x0000_0001);
            let bytes = |w: &[u32]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
            let i = idx.index(words.len() - 1);
            let before = checksum(&bytes(&words));
            let old = words[i];
            words[i] = new;
            let after = checksum(&bytes(&words));
            prop_assert_eq!(incremental_update32(before, old, new), after);
        }
    }
}
