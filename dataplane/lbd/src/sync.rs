//! The connection-sync thread (`sync` in the config; the records and the
//! packet-path side are in `lbcore::conntrack::sync` and
//! `lbcore::pipeline::sync`).
//!
//! Every `batch_ms` it sends what the workers queued (while master, within
//! `max_kbps`; the rest waits in the workers' bounded queues) to the peer
//! over UDP, and stores what the peer sent in the shared table for the
//! workers to adopt after a failover. The UDP socket is an ordinary host
//! socket on the port's address: it talks through the kernel interface.
//! IPv6 connections go in datagrams of their own (format version 2), on
//! the same socket; the peer's wait in a shared IPv6 table.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use lbcore::config::SyncConfig;
use lbcore::conntrack::shared::SharedConnTable;
use lbcore::conntrack::sync::{
    decode_any, encode, encode6, Records, SyncQueue6, SyncRecord, SyncRecord6, RECORD_LEN,
};
use lbcore::conntrack::ConnKey6;
use lbcore::pipeline::sync::{apply, SyncQueue};
use lbcore::pipeline::sync6::{apply6, Nat6Sink};
use tracing::{debug, info, warn};

use crate::dataplane::Dataplane;

/// Records each worker may have waiting.
pub const QUEUE_DEPTH: usize = 16 * 1024;

/// The sync thread's counters.
#[derive(Debug, Default)]
pub struct SyncStats {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Received records naming a service or real server this director
    /// does not have, or refused by a full table.
    pub rejected: AtomicU64,
    /// Datagrams that were not sync datagrams, or not from the peer.
    pub bad_datagrams: AtomicU64,
    pub send_errors: AtomicU64,
}

/// IPv6 sync: the workers' queues and the table of the peer's records.
pub struct Sync6 {
    pub queues: Vec<SyncQueue6>,
    pub synced: Arc<SharedConnTable<ConnKey6>>,
}

/// Bind the sync socket on `local` (at start-up, so errors stop lbd).
pub fn bind(local: Ipv4Addr, cfg: &SyncConfig) -> Result<UdpSocket, String> {
    let sock = UdpSocket::bind(SocketAddrV4::new(local, cfg.port))
        .map_err(|e| format!("sync: cannot bind {local}:{}: {e}", cfg.port))?;
    sock.set_nonblocking(true)
        .map_err(|e| format!("sync: {e}"))?;
    Ok(sock)
}

/// Run until lbd stops.
pub fn run(
    dataplane: Arc<Dataplane>,
    stats: Arc<SyncStats>,
    cfg: SyncConfig,
    sock: UdpSocket,
    queues: Vec<SyncQueue>,
    sync6: Sync6,
) {
    let peer = SocketAddrV4::new(cfg.peer, cfg.port);
    let batch = Duration::from_millis(cfg.batch_ms as u64);
    // Bytes per batch the bandwidth allows, as whole records (at least one).
    let per_batch = ((cfg.max_kbps as u64 * cfg.batch_ms as u64 / 8) as usize / RECORD_LEN).max(1);
    info!(
        "sync: with {} every {} ms, at most {} records per batch",
        peer, cfg.batch_ms, per_batch
    );
    let mut out: Vec<SyncRecord> = Vec::with_capacity(per_batch);
    let mut out6: Vec<SyncRecord6> = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !dataplane.stopping() {
        std::thread::sleep(batch);
        // Receive: store the peer's records.
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if from.ip() != std::net::IpAddr::V4(cfg.peer) {
                        stats.bad_datagrams.fetch_add(1, Relaxed);
                        continue;
                    }
                    let recs = match decode_any(&buf[..n]) {
                        Ok(r) => r,
                        Err(e) => {
                            debug!("sync: bad datagram from {from}: {e}");
                            stats.bad_datagrams.fetch_add(1, Relaxed);
                            continue;
                        }
                    };
                    let snap = dataplane.current();
                    let now = dataplane.clock.now();
                    let results: Vec<bool> = match &recs {
                        Records::V4(recs) => recs
                            .iter()
                            .map(|r| {
                                apply(&dataplane.nat, &dataplane.nat_clients, &snap, r, now).is_ok()
                            })
                            .collect(),
                        Records::V6(recs) => recs
                            .iter()
                            .map(|r| {
                                let nat = Nat6Sink {
                                    table: &dataplane.nat6,
                                    clients: &dataplane.nat6_clients,
                                };
                                apply6(&sync6.synced, nat, &snap, r, now).is_ok()
                            })
                            .collect(),
                    };
                    for ok in results {
                        if ok {
                            stats.received.fetch_add(1, Relaxed);
                        } else {
                            stats.rejected.fetch_add(1, Relaxed);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    debug!("sync: receive: {e}");
                    break;
                }
            }
        }
        // Send: only the master's workers queue records.
        // Each worker's share of the batch, then whatever room is left.
        out.clear();
        let share = per_batch.div_ceil(queues.len().max(1));
        for limit in [share, per_batch] {
            for q in &queues {
                let stop = (out.len() + limit).min(per_batch);
                while out.len() < stop {
                    let Some(r) = q.pop() else { break };
                    out.push(r);
                }
            }
        }
        // IPv6 records (twice an IPv4 record's size) in what room is left.
        out6.clear();
        let room6 = ((per_batch - out.len()) / 2).max(usize::from(out.is_empty()));
        for q in &sync6.queues {
            while out6.len() < room6 {
                let Some(r) = q.pop() else { break };
                out6.push(r);
            }
        }
        if out.is_empty() && out6.is_empty() {
            continue;
        }
        for d in encode(&out).into_iter().chain(encode6(&out6)) {
            if let Err(e) = sock.send_to(&d, peer) {
                if stats.send_errors.fetch_add(1, Relaxed) == 0 {
                    warn!("sync: cannot send to {peer}: {e}");
                }
            }
        }
        stats
            .sent
            .fetch_add((out.len() + out6.len()) as u64, Relaxed);
    }
}
