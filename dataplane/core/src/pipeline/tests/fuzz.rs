//! The bigger harness is `tests/fuzz_pipeline.rs`; these check the
//! same accounting on the lab of `pipeline/tests.rs`.

use super::accounting::{check_balance, check_frame, Counts, Tally};
use super::*;
use proptest::prelude::*;

/// Process one frame and check that it was accounted: one outcome or
/// drop reason for it, and `rx_frames` still balances.
fn process_accounted(
    w: &mut Worker,
    f: &mut [u8],
    port: u16,
    now: Tick,
    tally: &mut Tally,
) -> Result<Verdict, String> {
    let before = Counts::of(w.stats());
    let v = w.process(f, port, now);
    check_frame(&before, &Counts::of(w.stats()), v, true)?;
    tally.add(v);
    check_balance(&[w.stats()], tally)?;
    Ok(v)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn random_bytes_never_panic_and_are_accounted(mut data in proptest::collection::vec(any::<u8>(), 0..300), port in 0u16..3) {
        let mut l = lab("Wlc", (1, 1), true);
        let mut tally = Tally::default();
        let r = process_accounted(&mut l.w, &mut data, port, 0, &mut tally);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn mutated_valid_frames_never_panic_and_are_accounted(pos in 0usize..80, byte in any::<u8>(), cut in 0usize..80) {
        let mut l = lab("Rr", (1, 1), true);
        let mut tally = Tally::default();
        let mut f = syn(40000);
        if pos < f.len() { f[pos] = byte; }
        let keep = f.len().saturating_sub(cut);
        f.truncate(keep);
        let r = process_accounted(&mut l.w, &mut f, 0, 0, &mut tally);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        let mut a = ack(40000);
        let r = process_accounted(&mut l.w, &mut a, 0, 1, &mut tally);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}
