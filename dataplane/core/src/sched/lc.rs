//! Least connection and weighted least connection (IPVS semantics).
//!
//! Ties go to the earliest server in the service's list, so the outcome is
//! deterministic for a given table state.

use super::inputs::Candidate;

/// Lowest overhead among non-quiesced servers.
#[inline]
pub fn least_connection(cands: &[Candidate]) -> Option<usize> {
    least_connection_of(cands.iter().copied())
}

/// [`least_connection`] over candidates produced on the fly (the packet
/// path reads each server's counters as it goes: no list is built).
#[inline]
pub fn least_connection_of(cands: impl IntoIterator<Item = Candidate>) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, c) in cands.into_iter().enumerate() {
        if c.weight == 0 {
            continue;
        }
        let oh = c.overhead();
        if best.is_none_or(|(_, b)| oh < b) {
            best = Some((i, oh));
        }
    }
    best.map(|(i, _)| i)
}

/// Lowest overhead/weight among non-quiesced servers, compared by cross
/// multiplication (no division, exact).
#[inline]
pub fn weighted_least_connection(cands: &[Candidate]) -> Option<usize> {
    weighted_least_connection_of(cands.iter().copied())
}

/// [`weighted_least_connection`] over candidates produced on the fly.
#[inline]
pub fn weighted_least_connection_of(cands: impl IntoIterator<Item = Candidate>) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for (i, c) in cands.into_iter().enumerate() {
        if c.weight == 0 {
            continue;
        }
        let (oh, w) = (c.overhead(), c.weight as u64);
        match best {
            // oh/w < boh/bw  <=>  oh*bw < boh*w  (all fit in u128 easily; u64
            // suffices: overhead < 2^40, weight < 2^16).
            Some((_, boh, bw)) if oh * bw >= boh * w => {}
            _ => best = Some((i, oh, w)),
        }
    }
    best.map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(weight: u32, active: u32, inactive: u32) -> Candidate {
        Candidate {
            weight,
            active,
            inactive,
        }
    }

    #[test]
    fn lc_prefers_fewest_and_counts_active_256x() {
        assert_eq!(least_connection(&[c(1, 2, 0), c(1, 1, 0)]), Some(1));
        // 1 active (256) outweighs 255 inactive.
        assert_eq!(least_connection(&[c(1, 1, 0), c(1, 0, 255)]), Some(1));
        // Tie: first wins.
        assert_eq!(least_connection(&[c(1, 1, 0), c(5, 1, 0)]), Some(0));
    }

    #[test]
    fn wlc_divides_by_weight() {
        // 3 conns at weight 3 (=1 each) vs 2 conns at weight 1 (=2).
        assert_eq!(
            weighted_least_connection(&[c(3, 3, 0), c(1, 2, 0)]),
            Some(0)
        );
        assert_eq!(
            weighted_least_connection(&[c(3, 6, 0), c(1, 1, 0)]),
            Some(1)
        );
        // Tie (2/2 == 1/1): first wins.
        assert_eq!(
            weighted_least_connection(&[c(2, 2, 0), c(1, 1, 0)]),
            Some(0)
        );
        assert_eq!(
            weighted_least_connection(&[c(0, 0, 0), c(1, 9, 0)]),
            Some(1)
        );
    }
}
