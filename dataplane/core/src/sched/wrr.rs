//! Weighted round robin, interleaved as in IPVS: with weights 3:1 the order
//! is A A A B; servers of greater weight get their turns earlier in a cycle.

use super::inputs::Candidate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrrState {
    /// Index of the last pick (-1: none yet).
    i: isize,
    /// Current weight threshold.
    cw: u32,
}

impl Default for WrrState {
    fn default() -> Self {
        WrrState { i: -1, cw: 0 }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl WrrState {
    pub fn pick(&mut self, cands: &[Candidate]) -> Option<usize> {
        let n = cands.len();
        let max = cands.iter().map(|c| c.weight).max().unwrap_or(0);
        if max == 0 {
            return None;
        }
        let step = cands
            .iter()
            .map(|c| c.weight)
            .filter(|w| *w > 0)
            .fold(0, gcd);
        if self.i >= n as isize || self.cw > max {
            // The list changed under us: restart the cycle.
            *self = WrrState::default();
        }
        // At most one full cycle of thresholds: max/step rounds of n.
        let bound = n * (max / step) as usize + n;
        for _ in 0..bound {
            self.i = (self.i + 1) % n as isize;
            if self.i == 0 {
                self.cw = self.cw.saturating_sub(step);
                if self.cw == 0 {
                    self.cw = max;
                }
            }
            let c = &cands[self.i as usize];
            if c.weight > 0 && c.weight >= self.cw {
                return Some(self.i as usize);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cands;
    use super::*;

    #[test]
    fn interleaves_like_ipvs() {
        let mut st = WrrState::default();
        let c = cands(&[3, 1]);
        let seq: Vec<_> = (0..8).map(|_| st.pick(&c).unwrap()).collect();
        assert_eq!(seq, [0, 0, 0, 1, 0, 0, 0, 1]);
        let mut st = WrrState::default();
        let c = cands(&[4, 3, 2]);
        let seq: Vec<_> = (0..9).map(|_| st.pick(&c).unwrap()).collect();
        assert_eq!(seq, [0, 0, 1, 0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn equal_weights_are_round_robin() {
        let mut st = WrrState::default();
        let c = cands(&[2, 2, 2]);
        let seq: Vec<_> = (0..6).map(|_| st.pick(&c).unwrap()).collect();
        assert_eq!(seq, [0, 1, 2, 0, 1, 2]);
    }
}
