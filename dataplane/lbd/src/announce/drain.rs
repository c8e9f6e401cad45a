//! Has a drained director's traffic moved? Sans-IO: fed the total of new
//! connections the workers created, at times the caller chooses; the
//! traffic counts as moved once that total has not grown for `quiet`.

use std::time::{Duration, Instant};

use lbcore::api::DrainReport;

/// One drain, from `lbctl director drain` on.
#[derive(Debug, Clone, Copy)]
pub struct DrainWatch {
    began: Instant,
    conns_at_start: u64,
    last_total: u64,
    last_new_at: Instant,
}

impl DrainWatch {
    /// A drain beginning at `now`, with `conns_total` connections created
    /// so far.
    pub fn begin(now: Instant, conns_total: u64) -> DrainWatch {
        DrainWatch {
            began: now,
            conns_at_start: conns_total,
            last_total: conns_total,
            last_new_at: now,
        }
    }

    /// A sample of the total at `now`.
    pub fn observe(&mut self, now: Instant, conns_total: u64) {
        if conns_total != self.last_total {
            self.last_total = conns_total;
            self.last_new_at = now;
        }
    }

    /// The report at `now`, traffic moved after `quiet` without a new
    /// connection; `open_conns` as the tables say.
    pub fn report(&self, now: Instant, quiet: Duration, open_conns: u64) -> DrainReport {
        let quiet_for = now.saturating_duration_since(self.last_new_at);
        DrainReport {
            drained: true,
            since_ms: now.saturating_duration_since(self.began).as_millis() as u64,
            quiet_ms: quiet_for.as_millis() as u64,
            moved: quiet_for >= quiet,
            new_conns: self.last_total.saturating_sub(self.conns_at_start),
            open_conns,
        }
    }
}

/// What `DrainStatus` answers on a director that is not drained.
pub fn not_drained(open_conns: u64) -> DrainReport {
    DrainReport {
        drained: false,
        since_ms: 0,
        quiet_ms: 0,
        moved: false,
        new_conns: 0,
        open_conns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Duration = Duration::from_millis(1000);

    #[test]
    fn moved_only_after_a_quiet_period() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut w = DrainWatch::begin(t0, 500);
        w.observe(ms(300), 520); // routers still sending new flows
        w.observe(ms(800), 530);
        let r = w.report(ms(1500), Q, 40);
        assert!(!r.moved);
        assert_eq!(
            (r.since_ms, r.quiet_ms, r.new_conns, r.open_conns),
            (1500, 700, 30, 40)
        );
        w.observe(ms(1700), 530); // no change: the quiet period goes on
        let r = w.report(ms(1800), Q, 40);
        assert!(r.moved);
        assert_eq!(r.quiet_ms, 1000);
    }

    #[test]
    fn a_director_without_traffic_is_moved_after_the_quiet_period() {
        let t0 = Instant::now();
        let w = DrainWatch::begin(t0, 7);
        assert!(!w.report(t0 + Duration::from_millis(999), Q, 0).moved);
        let r = w.report(t0 + Q, Q, 0);
        assert!(r.moved && r.drained && r.new_conns == 0);
    }
}
