//! Counters as `lbctl list` shows them: since the last `zero`, and rates
//! estimated like IPVS's estimator.

use std::collections::HashMap;
use std::time::Instant;

use lbcore::api::{Counters, Rates};
use lbcore::pipeline::Snapshot;

use crate::control::deps::WorkerCounters;

/// (is a service, id): whose counters a baseline or a rate is.
pub type CounterKey = (bool, u32);

pub fn minus(a: Counters, b: Counters) -> Counters {
    Counters {
        conns: a.conns.saturating_sub(b.conns),
        packets_in: a.packets_in.saturating_sub(b.packets_in),
        bytes_in: a.bytes_in.saturating_sub(b.bytes_in),
        packets_out: a.packets_out.saturating_sub(b.packets_out),
        bytes_out: a.bytes_out.saturating_sub(b.bytes_out),
    }
}

/// Rate estimation like IPVS's estimator: sample every 2 s, smooth.
#[derive(Default)]
struct RateState {
    last: HashMap<CounterKey, (Counters, Instant)>,
    rates: HashMap<CounterKey, Rates>,
}

impl RateState {
    fn sample(&mut self, id: CounterKey, now_c: Counters, now: Instant) {
        if let Some((prev, at)) = self.last.get(&id) {
            let dt = now.duration_since(*at).as_secs_f64();
            if dt > 0.0 {
                let d = minus(now_c, *prev);
                let inst = Rates {
                    conns: d.conns as f64 / dt,
                    packets_in: d.packets_in as f64 / dt,
                    bytes_in: d.bytes_in as f64 / dt,
                    packets_out: d.packets_out as f64 / dt,
                    bytes_out: d.bytes_out as f64 / dt,
                };
                let r = self.rates.entry(id).or_default();
                // Weight 1/2 on the newest 2-second sample: quick to follow,
                // still smooth.
                let mix = |old: f64, new: f64| old + (new - old) / 2.0;
                r.conns = mix(r.conns, inst.conns);
                r.packets_in = mix(r.packets_in, inst.packets_in);
                r.bytes_in = mix(r.bytes_in, inst.bytes_in);
                r.packets_out = mix(r.packets_out, inst.packets_out);
                r.bytes_out = mix(r.bytes_out, inst.bytes_out);
            }
        }
        self.last.insert(id, (now_c, now));
    }
}

/// The baselines of `zero` and the rates, per service and real server.
#[derive(Default)]
pub struct Tally {
    /// Counter values at the last `zero`.
    baseline: HashMap<CounterKey, Counters>,
    rates: RateState,
}

fn totals(counters: &WorkerCounters, id: CounterKey) -> Counters {
    match id {
        (true, s) => counters.totals(Some(s), None),
        (false, r) => counters.totals(None, Some(r)),
    }
}

/// Every service's and real server's key in `snap`.
fn keys(snap: &Snapshot) -> impl Iterator<Item = CounterKey> + '_ {
    snap.services
        .iter()
        .flat_map(|s| std::iter::once((true, s.id)).chain(s.reals.iter().map(|r| (false, r.id))))
}

impl Tally {
    /// Counters since the last `zero`.
    pub fn since_zero(&self, counters: &WorkerCounters, id: CounterKey) -> Counters {
        minus(
            totals(counters, id),
            self.baseline.get(&id).copied().unwrap_or_default(),
        )
    }

    pub fn rate(&self, id: CounterKey) -> Rates {
        self.rates.rates.get(&id).copied().unwrap_or_default()
    }

    /// Take the counters' current values as the zero of `lbctl list`.
    pub fn zero(&mut self, snap: &Snapshot, counters: &WorkerCounters) {
        for id in keys(snap) {
            self.baseline.insert(id, totals(counters, id));
        }
    }

    /// Sample the rates (every 2 s).
    pub fn sample(&mut self, snap: &Snapshot, counters: &WorkerCounters, now: Instant) {
        for id in keys(snap) {
            self.rates.sample(id, totals(counters, id), now);
        }
    }
}
