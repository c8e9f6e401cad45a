//! Helpers of the table-building schedulers (sh, mh): a mixing function,
//! an address's octets as one word, and sharing slots by weight.

use std::net::IpAddr;

/// A 64-bit mixing function (the finaliser of MurmurHash3): every input bit
/// affects every output bit.
#[inline]
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// The word sh and mh hash for an address, from its octets. IPv4: the four
/// octets as a big-endian number — exactly the host-order `u32` these
/// schedulers hashed before they took IPv6, so an IPv4 client keeps its
/// real server. IPv6: all sixteen octets, the high half mixed before the
/// low half is folded in, so clients that differ only in their network
/// prefix (or only in their interface id) still spread.
#[inline(always)]
pub(crate) fn addr_word(addr: &IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => u32::from_be_bytes(a.octets()) as u64,
        IpAddr::V6(a) => {
            let o = a.octets();
            let hi = u64::from_be_bytes([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]]);
            let lo = u64::from_be_bytes([o[8], o[9], o[10], o[11], o[12], o[13], o[14], o[15]]);
            mix64(hi ^ V6_SEED) ^ lo
        }
    }
}

/// Seed of an IPv6 address's high half (keeps `addr_word` of `::x` from
/// being a plain function of the low half).
const V6_SEED: u64 = 0x4950_7636_4849_4748;

/// Share `total` slots among servers by weight: each server of weight > 0
/// gets one slot, and the rest go in proportion to the weights (largest
/// remainders first, ties to the earlier server). Servers of weight 0 get
/// none. Requires `total` >= the number of non-zero weights.
pub(crate) fn apportion(weights: &[u32], total: usize) -> Vec<usize> {
    let live = weights.iter().filter(|&&w| w > 0).count();
    let sum: u64 = weights.iter().map(|&w| w as u64).sum();
    if live == 0 {
        return vec![0; weights.len()];
    }
    assert!(total >= live, "apportion: {total} slots for {live} servers");
    let rest = (total - live) as u64;
    let mut out = Vec::with_capacity(weights.len());
    let mut rems = Vec::with_capacity(live);
    let mut given = live as u64;
    for (i, &w) in weights.iter().enumerate() {
        if w == 0 {
            out.push(0);
            continue;
        }
        let p = rest * w as u64;
        out.push(1 + (p / sum) as usize);
        given += p / sum;
        rems.push((p % sum, i));
    }
    // Largest remainder first; equal remainders: earlier server first.
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in rems.iter().take((total as u64 - given) as usize) {
        out[i] += 1;
    }
    out
}
