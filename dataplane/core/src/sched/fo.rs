//! Weighted failover (IPVS `fo`): every new connection goes to the
//! non-quiesced server with the highest weight; ties go to the earliest in
//! the list. Quiescing that server (weight 0) fails over to the next.

use super::inputs::Candidate;

#[inline]
pub fn weighted_failover(cands: &[Candidate]) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, c) in cands.iter().enumerate() {
        if c.weight > best.map_or(0, |(_, w)| w) {
            best = Some((i, c.weight));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::tests::cands;
    use super::*;

    #[test]
    fn highest_weight_first_and_fails_over() {
        assert_eq!(weighted_failover(&cands(&[1, 5, 3])), Some(1));
        // Ties: the first.
        assert_eq!(weighted_failover(&cands(&[2, 5, 5])), Some(1));
        // Primary quiesced: the next highest takes over.
        assert_eq!(weighted_failover(&cands(&[1, 0, 3])), Some(2));
        assert_eq!(weighted_failover(&cands(&[1, 0, 0])), Some(0));
        assert_eq!(weighted_failover(&cands(&[0, 0])), None);
        assert_eq!(weighted_failover(&[]), None);
    }

    #[test]
    fn load_does_not_matter() {
        let mut c = cands(&[1, 5]);
        c[1].active = 1_000_000;
        assert_eq!(weighted_failover(&c), Some(1));
    }
}
