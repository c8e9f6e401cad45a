//! Connection-state sync (pipeline/sync.rs): records from the master,
//! connections continuing on the backup, refused records.

use super::*;
use crate::config::SyncConfig;
use crate::conntrack::shared::SharedConnTable;
use crate::conntrack::sync::{decode, encode, SyncKind};
use crate::neigh::ClientMacs;
use crate::pipeline::nat::NatState;
use crate::pipeline::sync::{apply, ApplyError};
use crossbeam::queue::ArrayQueue;

fn sync_config() -> Config {
    let mut cfg = config("Rr", (1, 1));
    cfg.sync = Some(SyncConfig {
        peer: Ipv4Addr::new(198, 18, 0, 3),
        port: 8848,
        max_kbps: 10_000,
        batch_ms: 50,
    });
    cfg
}

/// A director: a worker with a shared table and a sync queue.
fn director() -> (
    Lab,
    Arc<SharedConnTable>,
    Arc<ArrayQueue<crate::conntrack::sync::SyncRecord>>,
) {
    let mut l = lab_from(sync_config(), true);
    let table = Arc::new(SharedConnTable::new(1024, 3));
    let q = Arc::new(ArrayQueue::new(64));
    let placeholder = Worker::new(
        l.w.snapshot().clone(),
        ConnTable::new(16, 1),
        Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
        l.neigh.clone(),
    );
    let w = std::mem::replace(&mut l.w, placeholder);
    l.w = w
        .with_nat(NatState::new(
            table.clone(),
            Arc::new(ClientMacs::new(16)),
            0,
            1,
        ))
        .with_sync(q.clone());
    (l, table, q)
}

#[test]
fn a_synced_connection_continues_on_the_backup() {
    let (mut master, _, q) = director();
    let mut s = syn(40000);
    assert_eq!(master.w.process(&mut s, 0, 0), Verdict::Tx(0));
    let rs_mac = dst_mac(&s);
    let mut a = ack(40000);
    assert_eq!(master.w.process(&mut a, 0, 1), Verdict::Tx(0));
    // SYN_RECV then ESTABLISHED: two records, through the wire format.
    let recs: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert!(recs
        .iter()
        .all(|r| r.kind == SyncKind::Conn && r.client_port == 40000));
    let wire = encode(&recs);
    let recs: Vec<_> = wire.iter().flat_map(|d| decode(d).unwrap()).collect();

    // The backup stores them; nothing is counted as a connection yet.
    let (mut backup, table, bq) = director();
    backup.w.set_standby(true);
    for r in &recs {
        apply(&table, &ClientMacs::new(16), backup.w.snapshot(), r, 10).unwrap();
    }
    // Standby: no records of its own.
    let mut s2 = syn(40100);
    assert_eq!(
        backup.w.process(&mut s2, 0, 11),
        Verdict::Drop(Counter::DropVrrpBackup)
    );
    assert!(bq.is_empty());
    // Failover: the backup is master; the client's next segment of the
    // established connection goes to the same real server.
    backup.w.set_standby(false);
    let mut a2 = ack(40000);
    assert_eq!(backup.w.process(&mut a2, 0, 20), Verdict::Tx(0));
    assert_eq!(dst_mac(&a2), rs_mac);
    assert_eq!(backup.w.stats().get(Counter::SyncAdopted), 1);
    assert_eq!(backup.w.stats().get(Counter::DropTcpNoConn), 0);
    // Adopted once: now in the worker's own table.
    let mut a3 = ack(40000);
    assert_eq!(backup.w.process(&mut a3, 0, 21), Verdict::Tx(0));
    assert_eq!(backup.w.stats().get(Counter::SyncAdopted), 1);
    // An unknown flow is still refused.
    let mut other = ack(40002);
    assert_eq!(
        backup.w.process(&mut other, 0, 22),
        Verdict::Drop(Counter::DropTcpNoConn)
    );
}

#[test]
fn records_for_unknown_services_or_servers_are_refused() {
    let (l, table, _) = director();
    let mut r = crate::conntrack::sync::SyncRecord {
        kind: SyncKind::Conn,
        proto: 6,
        state: 3,
        client_ip: Ipv4Addr::from(CLIENT),
        client_port: 1,
        vip: Ipv4Addr::from(VIP),
        vport: 8080,
        rs_ip: Ipv4Addr::new(198, 18, 0, 11),
        rs_port: 80,
        timeout_ms: 1000,
        client_mac: [0; 6],
        client_via_port: 0,
    };
    let clients = ClientMacs::new(16);
    assert_eq!(
        apply(&table, &clients, l.w.snapshot(), &r, 0),
        Err(ApplyError::NoService)
    );
    r.vport = 80;
    r.rs_ip = Ipv4Addr::new(198, 18, 0, 99);
    assert_eq!(
        apply(&table, &clients, l.w.snapshot(), &r, 0),
        Err(ApplyError::NoRealServer)
    );
}
