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
        let n = table.bucket_count();
        let w = workers.max(1);
        let lo = n * index / w;
        let hi = n * (index + 1) / w;
        NatState {
            table,
            clients,
            sweep_lo: lo,
            sweep_hi: hi.max(lo + 1).min(n),
            cursor: lo,
        }
    }
}
