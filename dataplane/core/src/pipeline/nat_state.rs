//! What a worker holds for NAT: the shared table, the clients' return
//! paths, and its share of the table to sweep (the NAT logic is in
//! `nat.rs`).

use std::sync::Arc;

use crate::conntrack::shared::SharedConnTable;
use crate::neigh::ClientMacs;

/// What a worker needs for NAT: the shared table, the clients' return
/// paths, and its share of the table to sweep.
pub struct NatState {
    pub table: Arc<SharedConnTable>,
    pub clients: Arc<ClientMacs>,
    pub(super) sweep_lo: usize,
    pub(super) sweep_hi: usize,
    pub(super) cursor: usize,
}

impl NatState {
    /// Worker `index` of `workers` sweeps its own slice of the table.
    pub fn new(
        table: Arc<SharedConnTable>,
        clients: Arc<ClientMacs>,
        index: usize,
        workers: usize,
    ) -> NatState {
        let (lo, hi) = sweep_slice(table.bucket_count(), index, workers);
        NatState {
            table,
            clients,
            sweep_lo: lo,
            sweep_hi: hi,
            cursor: lo,
        }
    }
}

/// The buckets `lo..hi` of a shared table of `buckets` that worker `index`
/// of `workers` sweeps: the workers split the table in even slices, each
/// at least one bucket (so a worker past the end sweeps the last one).
pub(crate) fn sweep_slice(buckets: usize, index: usize, workers: usize) -> (usize, usize) {
    let w = workers.max(1);
    let lo = buckets * index / w;
    let hi = buckets * (index + 1) / w;
    (lo, hi.max(lo + 1).min(buckets))
}

#[cfg(test)]
mod tests {
    use super::sweep_slice;

    #[test]
    fn workers_sweep_every_bucket_once() {
        for buckets in [1usize, 2, 7, 64, 1000] {
            for workers in 1..=9 {
                let slices: Vec<_> = (0..workers)
                    .map(|i| sweep_slice(buckets, i, workers))
                    .collect();
                if buckets >= workers {
                    // Even slices, in order, covering the table exactly.
                    assert_eq!(slices[0].0, 0);
                    assert_eq!(slices[workers - 1].1, buckets);
                    for w in slices.windows(2) {
                        assert_eq!(w[0].1, w[1].0, "{buckets} {workers}");
                    }
                }
                for (lo, hi) in slices {
                    assert!(lo < hi && hi <= buckets, "{buckets} {workers}: {lo}..{hi}");
                }
            }
        }
    }
}
