//! Shortest expected delay and never queue (IPVS semantics).
//!
//! Both look at active connections only (IPVS ignores InActConn here): the
//! expected delay of a server is `(active + 1) / weight`, compared by cross
//! multiplication. Ties go to the earliest server in the list.

use super::inputs::Candidate;

/// Least `(active + 1) / weight` among non-quiesced servers.
#[inline]
pub fn shortest_expected_delay(cands: &[Candidate]) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for (i, c) in cands.iter().enumerate() {
        if c.weight == 0 {
            continue;
        }
        let (d, w) = (c.active as u64 + 1, c.weight as u64);
        match best {
            // d/w < bd/bw  <=>  d*bw < bd*w, exactly (u128: no overflow
            // whatever the weights).
            Some((_, bd, bw)) if (d as u128) * (bw as u128) >= (bd as u128) * (w as u128) => {}
            _ => best = Some((i, d, w)),
        }
    }
    best.map(|(i, _, _)| i)
}

/// The first non-quiesced server with no active connection; otherwise as
/// [`shortest_expected_delay`].
#[inline]
pub fn never_queue(cands: &[Candidate]) -> Option<usize> {
    cands
        .iter()
        .position(|c| c.weight > 0 && c.active == 0)
        .or_else(|| shortest_expected_delay(cands))
}

#[cfg(test)]
mod tests {
    use super::super::lc::weighted_least_connection;
    use super::*;

    fn c(weight: u32, active: u32, inactive: u32) -> Candidate {
        Candidate {
            weight,
            active,
            inactive,
        }
    }

    #[test]
    fn sed_differs_from_wlc() {
        // Both idle, weights 1 and 2: wlc sees 0/1 == 0/2 and takes the
        // first; sed sees 1/1 > 1/2 and takes the stronger one.
        let cs = [c(1, 0, 0), c(2, 0, 0)];
        assert_eq!(weighted_least_connection(&cs), Some(0));
        assert_eq!(shortest_expected_delay(&cs), Some(1));
        // 1 active at weight 1 vs 4 active at weight 3: sed compares
        // (1+1)/1 = 2 with (4+1)/3 = 1.67 and picks the second; wlc compares
        // 256/1 with 1024/3 = 341 and picks the first.
        let cs = [c(1, 1, 0), c(3, 4, 0)];
        assert_eq!(shortest_expected_delay(&cs), Some(1));
        assert_eq!(weighted_least_connection(&cs), Some(0));
    }

    #[test]
    fn sed_ignores_inactive_and_breaks_ties_first() {
        assert_eq!(
            shortest_expected_delay(&[c(1, 1, 0), c(1, 1, 1000)]),
            Some(0)
        );
        assert_eq!(
            shortest_expected_delay(&[c(1, 1, 1000), c(1, 1, 0)]),
            Some(0)
        );
        // 2/2 == 1/1: first wins.
        assert_eq!(shortest_expected_delay(&[c(2, 1, 0), c(1, 0, 0)]), Some(0));
        assert_eq!(shortest_expected_delay(&[c(0, 0, 0), c(1, 9, 0)]), Some(1));
        assert_eq!(shortest_expected_delay(&[c(0, 0, 0)]), None);
    }

    #[test]
    fn nq_picks_an_idle_server() {
        // sed would pick the weight-10 server (2/10 < 1/1); nq takes the
        // idle one even though it is weak.
        let cs = [c(10, 1, 0), c(1, 0, 0), c(1, 0, 0)];
        assert_eq!(shortest_expected_delay(&cs), Some(0));
        assert_eq!(never_queue(&cs), Some(1));
        // Inactive connections do not make a server busy.
        assert_eq!(never_queue(&[c(10, 1, 0), c(1, 0, 50)]), Some(1));
        // A quiesced idle server is not picked.
        assert_eq!(never_queue(&[c(0, 0, 0), c(1, 3, 0), c(2, 3, 0)]), Some(2));
        // Nobody idle: as sed.
        let cs = [c(1, 1, 0), c(3, 4, 0)];
        assert_eq!(never_queue(&cs), shortest_expected_delay(&cs));
        assert_eq!(never_queue(&[c(0, 0, 0), c(0, 0, 0)]), None);
    }
}
