//! Round robin: each non-quiesced server in turn.

use super::inputs::Candidate;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RrState {
    /// Index to try first next time.
    next: usize,
}

impl RrState {
    #[inline]
    pub fn pick(&mut self, cands: &[Candidate]) -> Option<usize> {
        let n = cands.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if cands[i].weight > 0 {
                self.next = (i + 1) % n;
                return Some(i);
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
    fn alternates() {
        let mut st = RrState::default();
        let c = cands(&[1, 1]);
        let seq: Vec<_> = (0..6).map(|_| st.pick(&c).unwrap()).collect();
        assert_eq!(seq, [0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn survives_shrinking_list() {
        let mut st = RrState::default();
        let c = cands(&[1, 1, 1]);
        st.pick(&c);
        st.pick(&c);
        st.pick(&c); // next wraps to 0
        let c2 = cands(&[1]);
        assert_eq!(st.pick(&c2), Some(0));
    }
}
