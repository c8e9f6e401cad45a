//! The control plane driven in memory: every verb, and each way a change
//! can fail without changing anything. No DPDK, no root: the plane's
//! interfaces (`deps.rs`) are stand-ins here.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use lbcore::api::*;
use lbcore::config::{self, Config, Scheduler};
use lbcore::counters::{bump, Counter, WorkerStats};
use lbcore::neigh::NeighTable;
use lbcore::pipeline::snapshot::{RealServer, RsHealth, Service, MAX_NEIGHBOURS};
use lbcore::pipeline::{Registry, Snapshot, MAX_REAL_SERVERS, MAX_SERVICES};
use lbcore::wire::MacAddr;

use super::{ControlPlane, PlaneDeps};
use crate::announce::Announce;
use crate::control::change::{ChangeLog, ChangeStatus};
use crate::control::deps::{
    ConfigStore, Director, DirectorStatus, HealthView, Stamp, WorkerCounters,
};
use crate::health::TargetKey;
use crate::snapshot_cell::SnapshotCell;

const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const RS1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);
const RS3: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 13);

const CONFIG: &str = r#"(
    ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
    services: [
        (vip: "198.18.0.100", port: 80, scheduler: Wrr, real_servers: [
            (address: "198.18.0.11", weight: 3), (address: "198.18.0.12", weight: 1),
        ]),
    ],
)"#;

fn web() -> ServiceKey {
    ServiceKey::addr(lbcore::config::Protocol::Tcp, VIP.into(), 80)
}

// --- stand-ins for the plane's interfaces -----------------------------------

/// The configuration "file": its text, whether writes fail, and a stamp
/// that moves with each write (as a file's modified time would).
#[derive(Default)]
struct File {
    text: String,
    fail_writes: bool,
    writes: u32,
    version: u64,
}

#[derive(Clone, Default)]
struct MemStore(Arc<Mutex<File>>);

impl MemStore {
    fn file(&self) -> std::sync::MutexGuard<'_, File> {
        self.0.lock().unwrap()
    }

    /// Someone edits the file by hand.
    fn edit_by_hand(&self, text: &str) {
        let mut f = self.file();
        f.text = text.to_owned();
        f.version += 1;
    }
}

impl ConfigStore for MemStore {
    fn describe(&self) -> String {
        "/etc/lbd/test.ron".into()
    }

    fn load(&self) -> Result<Config, String> {
        config::parse(&self.file().text, "/etc/lbd/test.ron").map_err(|e| e.to_string())
    }

    fn save(&mut self, text: &str) -> std::io::Result<()> {
        let mut f = self.file();
        if f.fail_writes {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device",
            ));
        }
        f.text = text.to_owned();
        f.writes += 1;
        f.version += 1;
        Ok(())
    }

    fn stamp(&self) -> Option<Stamp> {
        let f = self.file();
        Some((SystemTime::UNIX_EPOCH, f.version))
    }
}

/// Health verdicts set by the test.
#[derive(Default)]
struct FakeHealth {
    down: Mutex<HashSet<Ipv4Addr>>,
    dirty: Mutex<bool>,
    synced: Mutex<u32>,
}

impl FakeHealth {
    fn set_down(&self, ip: Ipv4Addr, down: bool) {
        let mut d = self.down.lock().unwrap();
        if down {
            d.insert(ip);
        } else {
            d.remove(&ip);
        }
        *self.dirty.lock().unwrap() = true;
    }
}

impl HealthView for FakeHealth {
    fn sync(&self, _: &Config, _: Instant) {
        *self.synced.lock().unwrap() += 1;
    }

    fn health_of(&self, _: &Service, r: &RealServer) -> RsHealth {
        if self.down.lock().unwrap().iter().any(|d| r.addr == *d) {
            RsHealth::Down {
                quiesce: false,
                expire: false,
            }
        } else {
            RsHealth::Up
        }
    }

    fn info(&self, _: &TargetKey, _: Instant) -> Option<RealHealth> {
        None
    }

    fn take_dirty(&self) -> bool {
        std::mem::take(&mut *self.dirty.lock().unwrap())
    }
}

/// The devices and workers: fixed answers, and the listings asked for.
#[derive(Default)]
struct FakeDirector {
    listings: Mutex<Vec<(ConnFilter, u32)>>,
}

impl Director for FakeDirector {
    fn status(&self, _: &Snapshot) -> DirectorStatus {
        DirectorStatus {
            uptime_s: 42.0,
            ports: Vec::new(),
            workers: Vec::new(),
            conn_capacity: 1 << 20,
            other_counters: vec![("sync_sent".into(), 5), ("sync_received".into(), 0)],
            vrrp: Vec::new(),
            announce: None,
        }
    }

    fn conns(&self, filter: &ConnFilter, limit: u32) -> Result<ConnList, ApiError> {
        self.listings.lock().unwrap().push((filter.clone(), limit));
        Ok(ConnList {
            truncated: false,
            total: 0,
            conns: Vec::new(),
        })
    }
}

/// A plane on [`CONFIG`] with two workers, and handles on everything it
/// works against.
struct Rig {
    plane: ControlPlane,
    snapshots: Arc<SnapshotCell>,
    neigh: Arc<NeighTable>,
    workers: Vec<Arc<WorkerStats>>,
    health: Arc<FakeHealth>,
    store: MemStore,
    changes: Arc<ChangeLog>,
    director: Arc<FakeDirector>,
    announce: Arc<Announce>,
}

fn rig() -> Rig {
    rig_on(CONFIG)
}

/// A rig on another configuration text.
fn rig_on(text: &str) -> Rig {
    let cfg = config::parse(text, "test").unwrap();
    let neigh = Arc::new(NeighTable::new(MAX_NEIGHBOURS));
    let mut registry = Registry::default();
    let snap = Snapshot::build(&cfg, &[PORT_MAC], &mut registry, &neigh, 1).unwrap();
    let snapshots = Arc::new(SnapshotCell::new(Arc::new(snap)));
    let workers: Vec<_> = (0..2)
        .map(|_| Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)))
        .collect();
    let health = Arc::new(FakeHealth::default());
    let store = MemStore::default();
    store.edit_by_hand(text);
    let announce = Arc::new(Announce::new(&cfg));
    let changes = Arc::new(ChangeLog::new(ChangeStatus {
        ok: true,
        message: "started".into(),
        at_unix: 0,
    }));
    let director = Arc::new(FakeDirector::default());
    let plane = ControlPlane::new(
        PlaneDeps {
            snapshots: snapshots.clone(),
            neigh: neigh.clone(),
            counters: WorkerCounters(workers.clone()),
            health: health.clone(),
            store: Box::new(store.clone()),
            changes: changes.clone(),
            director: director.clone(),
            announce: announce.clone(),
        },
        cfg,
        registry,
        vec![PORT_MAC],
    );
    Rig {
        plane,
        snapshots,
        neigh,
        workers,
        health,
        store,
        changes,
        director,
        announce,
    }
}

impl Rig {
    fn ask(&mut self, req: Request) -> Result<Response, ApiError> {
        self.plane.handle(req)
    }

    fn generation(&self) -> u64 {
        self.snapshots.generation()
    }

    /// The file as persisted, parsed.
    fn persisted(&self) -> Config {
        config::parse(&self.store.file().text, "persisted").unwrap()
    }

    fn services(&mut self) -> Vec<ServiceInfo> {
        match self.ask(Request::List).unwrap() {
            Response::Services(s) => s,
            r => panic!("{r:?}"),
        }
    }

    fn real(&mut self, addr: Ipv4Addr) -> Option<RealInfo> {
        self.services()
            .into_iter()
            .flat_map(|s| s.reals)
            .find(|r| r.address == addr)
    }

    /// The real server `addr` of the snapshot in force.
    fn snap_real(&self, addr: Ipv4Addr) -> Option<RealServer> {
        let snap = self.snapshots.current();
        let r = snap
            .services
            .iter()
            .flat_map(|s| &s.reals)
            .find(|r| r.addr == addr)
            .cloned();
        r
    }

    /// The MAC of `ip` answers ARP (as a worker would learn it).
    fn resolve(&self, ip: Ipv4Addr) {
        let slot = self.snapshots.current().neighbours[&u32::from(ip)];
        self.neigh.learn(
            slot as usize,
            ip,
            MacAddr([2, 0, 0, 0, 0, ip.octets()[3]]),
            1,
        );
    }

    /// Asserts that nothing changed since `before` (a refused change).
    fn assert_unchanged(&self, before: &Unchanged, kind: ErrorKind, e: ApiError) {
        assert_eq!(e.kind, kind, "{}", e.message);
        assert_eq!(self.generation(), before.generation, "generation moved");
        assert_eq!(
            config::to_ron_string(self.plane.running()),
            before.running,
            "running configuration changed"
        );
        assert_eq!(self.store.file().writes, before.writes, "file written");
        let last = self.changes.last();
        assert!(!last.ok, "{}", last.message);
    }

    fn snapshot_state(&self) -> Unchanged {
        Unchanged {
            generation: self.generation(),
            running: config::to_ron_string(self.plane.running()),
            writes: self.store.file().writes,
        }
    }
}

struct Unchanged {
    generation: u64,
    running: String,
    writes: u32,
}

fn applied(r: Result<Response, ApiError>) -> u64 {
    match r {
        Ok(Response::Applied { generation }) => generation,
        other => panic!("not applied: {other:?}"),
    }
}

fn real_config(addr: Ipv4Addr, weight: u32) -> lbcore::config::RealServerConfig {
    ron::from_str(&format!("(address: \"{addr}\", weight: {weight})")).unwrap()
}

// --- reading -------------------------------------------------------------------

#[test]
fn status_reports_generation_counters_and_the_last_change() {
    let mut r = rig();
    r.workers[0].add(Counter::RxFrames, 7);
    r.workers[1].add(Counter::RxFrames, 3);
    bump(&r.workers[1].conns_live, 4);
    let Ok(Response::Status(s)) = r.ask(Request::Status) else {
        panic!()
    };
    assert_eq!(s.generation, 1);
    assert_eq!(s.config_path, "/etc/lbd/test.ron");
    assert_eq!(s.uptime_s, 42.0);
    assert_eq!(s.conns, 4);
    assert_eq!(s.conn_capacity, 1 << 20);
    assert_eq!(s.counters.get("rx_frames"), Some(&10));
    assert_eq!(s.counters.get("sync_sent"), Some(&5));
    // Zero counters are left out.
    assert_eq!(s.counters.get("sync_received"), None);
    assert_eq!(s.counters.get("drop_vlan"), None);
    assert!(s.last_change_ok);
    assert_eq!(s.last_change_message, "started");
}

#[test]
fn list_shows_services_real_servers_and_their_counters() {
    let mut r = rig();
    let rs1 = r.snap_real(RS1).unwrap().id as usize;
    bump(&r.workers[0].rs[rs1].conns, 2);
    bump(&r.workers[1].rs[rs1].conns, 3);
    r.workers[0].rs[rs1].add_active(2);
    // A decrement counted on another worker: the sum is what counts.
    r.workers[1].rs[rs1].add_active(-1);
    r.workers[1].rs[rs1].add_inactive(4);
    let s = r.services();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].key, web());
    assert_eq!(s[0].scheduler, Scheduler::Wrr);
    let rs1 = s[0].reals.iter().find(|x| x.address == RS1).unwrap();
    assert_eq!((rs1.weight, rs1.active, rs1.inactive), (3, 1, 4));
    assert_eq!(rs1.counters.conns, 5);
    assert!(!rs1.draining);
}

#[test]
fn conns_are_listed_by_the_director() {
    let mut r = rig();
    let filter = ConnFilter {
        vip: Some(VIP.into()),
        ..Default::default()
    };
    let res = r.ask(Request::Conns {
        filter: filter.clone(),
        limit: 10,
    });
    assert!(matches!(res, Ok(Response::Conns(_))), "{res:?}");
    assert_eq!(*r.director.listings.lock().unwrap(), vec![(filter, 10)]);
}

#[test]
fn save_returns_the_running_configuration() {
    let mut r = rig();
    let Ok(Response::Config(text)) = r.ask(Request::Save) else {
        panic!()
    };
    assert_eq!(config::parse(&text, "saved").unwrap(), *r.plane.running());
}

#[test]
fn timeouts_are_read_and_set() {
    let mut r = rig();
    let Ok(Response::Timeouts(before)) = r.ask(Request::GetTimeouts) else {
        panic!()
    };
    let g = applied(r.ask(Request::SetTimeouts(TimeoutEdit {
        tcp: Some(900),
        tcpfin: None,
        udp: Some(60),
    })));
    assert_eq!(g, 2);
    let Ok(Response::Timeouts(after)) = r.ask(Request::GetTimeouts) else {
        panic!()
    };
    assert_eq!(after.tcp_established, 900);
    assert_eq!(after.udp, 60);
    assert_eq!(after.tcp_fin_wait, before.tcp_fin_wait);
    assert_eq!(r.persisted().timeouts, after);
}

// --- services ------------------------------------------------------------------

#[test]
fn a_service_is_added_persisted_and_published() {
    let mut r = rig();
    let svc: lbcore::config::ServiceConfig = ron::from_str(
        r#"(vip: "198.18.0.100", port: 443, real_servers: [(address: "198.18.0.11")])"#,
    )
    .unwrap();
    let g = applied(r.ask(Request::AddService(svc)));
    assert_eq!(g, 2);
    assert_eq!(r.generation(), 2);
    assert!(r.snapshots.current().services.iter().any(|s| s.port == 443));
    assert!(r.persisted().services.iter().any(|s| s.port == 443));
    assert_eq!(r.store.file().writes, 1);
    assert_eq!(*r.health.synced.lock().unwrap(), 1);
    let last = r.changes.last();
    assert!(last.ok);
    assert_eq!(
        last.message,
        "add service 198.18.0.100:443/tcp: applied (generation 2)"
    );
}

#[test]
fn a_service_that_exists_is_not_added_again() {
    let mut r = rig();
    let before = r.snapshot_state();
    let svc = r.plane.running().services[0].clone();
    let e = r.ask(Request::AddService(svc)).unwrap_err();
    assert_eq!(e.message, "service 198.18.0.100:80/tcp already exists");
    // Refused before commit: the last change is still the start.
    assert_eq!(e.kind, ErrorKind::AlreadyExists);
    assert_eq!(r.generation(), before.generation);
    assert_eq!(r.store.file().writes, 0);
}

#[test]
fn a_service_is_edited() {
    let mut r = rig();
    applied(r.ask(Request::EditService {
        key: web(),
        edit: ServiceEdit {
            scheduler: Some(Scheduler::Rr),
            persistence: None,
        },
    }));
    assert_eq!(r.services()[0].scheduler, Scheduler::Rr);
    assert_eq!(r.persisted().services[0].scheduler, Scheduler::Rr);
}

#[test]
fn unknown_services_are_not_found() {
    let mut r = rig();
    let other = ServiceKey { port: 81, ..web() };
    for req in [
        Request::EditService {
            key: other,
            edit: ServiceEdit::default(),
        },
        Request::DeleteService(other),
        Request::AddReal {
            service: other,
            real: real_config(RS3, 1),
        },
    ] {
        let e = r.ask(req).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            e.message,
            "no service 198.18.0.100:81/tcp; `lbctl list` shows the services"
        );
    }
    assert_eq!(r.generation(), 1);
}

#[test]
fn a_service_is_deleted_and_all_are_cleared() {
    let mut r = rig();
    applied(r.ask(Request::DeleteService(web())));
    assert!(r.services().is_empty());
    assert!(r.persisted().services.is_empty());
    let g = applied(r.ask(Request::Clear));
    assert_eq!(g, 3);
    assert!(r.snapshots.current().services.is_empty());
}

// --- real servers ----------------------------------------------------------------

#[test]
fn a_real_server_added_live_is_held_until_its_mac_is_known() {
    let mut r = rig();
    // The service's other servers are in service and resolved.
    r.resolve(RS1);
    r.resolve(RS2);
    applied(r.ask(Request::AddReal {
        service: web(),
        real: real_config(RS3, 2),
    }));
    assert!(r.persisted().services[0]
        .real_servers
        .iter()
        .any(|x| x.address == RS3));
    let held = r.snap_real(RS3).unwrap();
    assert!(!held.up, "scheduled before its MAC is known");
    let g = r.generation();
    r.plane.tick();
    assert_eq!(r.generation(), g, "nothing to do yet");
    r.resolve(RS3);
    r.plane.tick();
    assert_eq!(r.generation(), g + 1);
    assert!(r.snap_real(RS3).unwrap().up);
    // Not persisted again: only the add wrote the file.
    assert_eq!(r.store.file().writes, 1);
}

#[test]
fn a_real_server_that_exists_is_not_added_again() {
    let mut r = rig();
    let e = r
        .ask(Request::AddReal {
            service: web(),
            real: real_config(RS1, 1),
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists);
    assert_eq!(
        e.message,
        "real server 198.18.0.11 is already in 198.18.0.100:80/tcp"
    );
}

#[test]
fn a_real_server_is_edited_and_deleted() {
    let mut r = rig();
    applied(r.ask(Request::EditReal {
        service: web(),
        address: RS2.into(),
        edit: RealEdit {
            weight: Some(5),
            forward: None,
        },
    }));
    assert_eq!(r.real(RS2).unwrap().weight, 5);
    applied(r.ask(Request::DeleteReal {
        service: web(),
        address: RS2.into(),
        mode: RemoveMode::Immediate,
    }));
    assert!(r.real(RS2).is_none());
    assert!(r.snap_real(RS2).is_none());
    let e = r
        .ask(Request::DeleteReal {
            service: web(),
            address: RS2.into(),
            mode: RemoveMode::Immediate,
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        e.message,
        "real server 198.18.0.12 is not in 198.18.0.100:80/tcp"
    );
}

#[test]
fn a_drained_real_server_goes_when_its_last_connection_ends() {
    let mut r = rig();
    let id = r.snap_real(RS2).unwrap().id as usize;
    r.workers[0].rs[id].add_active(1);
    r.workers[1].rs[id].add_inactive(1);
    applied(r.ask(Request::DeleteReal {
        service: web(),
        address: RS2.into(),
        mode: RemoveMode::Drain,
    }));
    let rs = r.real(RS2).unwrap();
    assert!(rs.draining);
    assert_eq!(rs.weight, 0);
    r.plane.tick();
    assert!(r.real(RS2).is_some(), "removed with connections left");
    r.workers[0].rs[id].add_active(-1);
    r.plane.tick();
    assert!(r.real(RS2).is_some(), "removed with one connection left");
    r.workers[1].rs[id].add_inactive(-1);
    r.plane.tick();
    assert!(
        r.real(RS2).is_none(),
        "still there after its last connection"
    );
    assert!(!r.persisted().services[0]
        .real_servers
        .iter()
        .any(|x| x.address == RS2));
    assert!(r
        .changes
        .last()
        .message
        .starts_with("drained real server 198.18.0.12 of 198.18.0.100:80/tcp removed: applied"));
}

#[test]
fn a_new_weight_ends_a_drain() {
    let mut r = rig();
    let id = r.snap_real(RS2).unwrap().id as usize;
    r.workers[0].rs[id].add_active(1);
    applied(r.ask(Request::DeleteReal {
        service: web(),
        address: RS2.into(),
        mode: RemoveMode::Drain,
    }));
    applied(r.ask(Request::EditReal {
        service: web(),
        address: RS2.into(),
        edit: RealEdit {
            weight: Some(2),
            forward: None,
        },
    }));
    r.workers[0].rs[id].add_active(-1);
    r.plane.tick();
    let rs = r.real(RS2).unwrap();
    assert!(!rs.draining);
    assert_eq!(rs.weight, 2);
}

// --- counters --------------------------------------------------------------------

#[test]
fn zero_restarts_the_listed_counters_but_not_status() {
    let mut r = rig();
    let svc = r.snapshots.current().services[0].id as usize;
    bump(&r.workers[0].services[svc].packets, 10);
    r.workers[0].add(Counter::RxFrames, 10);
    assert_eq!(r.ask(Request::Zero).unwrap(), Response::Done);
    assert_eq!(r.services()[0].counters.packets_in, 0);
    bump(&r.workers[1].services[svc].packets, 3);
    assert_eq!(r.services()[0].counters.packets_in, 3);
    let Ok(Response::Status(s)) = r.ask(Request::Status) else {
        panic!()
    };
    assert_eq!(s.counters.get("rx_frames"), Some(&10));
    assert_eq!(r.generation(), 1, "zero is not a configuration change");
}

// --- whole configurations ----------------------------------------------------------

#[test]
fn restore_replaces_and_persists_the_configuration() {
    let mut r = rig();
    let text = CONFIG.replace("weight: 3", "weight: 7");
    let g = applied(r.ask(Request::Restore { ron: text }));
    assert_eq!(g, 2);
    assert_eq!(r.real(RS1).unwrap().weight, 7);
    assert_eq!(r.persisted(), *r.plane.running());
    assert_eq!(r.changes.last().message, "restore: applied (generation 2)");
}

#[test]
fn restore_of_text_that_does_not_parse_changes_nothing() {
    let mut r = rig();
    let before = r.snapshot_state();
    let e = r
        .ask(Request::Restore {
            ron: "(ports: [".into(),
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(
        e.message.contains("restored configuration"),
        "{}",
        e.message
    );
    assert_eq!(r.generation(), before.generation);
    assert_eq!(r.store.file().writes, before.writes);
}

#[test]
fn validate_checks_without_applying() {
    let mut r = rig();
    let text = CONFIG.replace("weight: 3", "weight: 7");
    assert_eq!(
        r.ask(Request::Validate { ron: text }).unwrap(),
        Response::Valid
    );
    assert_eq!(r.generation(), 1);
    assert_eq!(r.real(RS1).unwrap().weight, 3);
    let moved = CONFIG.replace("198.18.0.2/24", "198.18.0.3/24");
    let e = r.ask(Request::Validate { ron: moved }).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert_eq!(
        e.message,
        "ports cannot change while lbd runs; restart lbd to apply it"
    );
}

#[test]
fn settings_that_need_a_restart_are_refused() {
    let mut r = rig();
    let before = r.snapshot_state();
    let text = CONFIG
        .replace("198.18.0.2/24", "198.18.0.3/24")
        .replace("services:", "conn_table: (capacity: 4096), services:");
    let e = r.ask(Request::Restore { ron: text }).unwrap_err();
    assert_eq!(
        e.message,
        "ports, conn_table cannot change while lbd runs; restart lbd to apply them"
    );
    r.assert_unchanged(&before, ErrorKind::Invalid, e);
}

#[test]
fn an_invalid_change_is_refused_with_the_reason_and_changes_nothing() {
    let mut r = rig();
    let before = r.snapshot_state();
    // The VIP as its own real server.
    let e = r
        .ask(Request::AddReal {
            service: web(),
            real: real_config(VIP, 1),
        })
        .unwrap_err();
    assert!(e.message.contains("198.18.0.100"), "{}", e.message);
    r.assert_unchanged(&before, ErrorKind::Invalid, e);
    let last = r.changes.last();
    assert!(
        last.message
            .starts_with("add real server 198.18.0.100 to 198.18.0.100:80/tcp: refused: "),
        "{}",
        last.message
    );
}

#[test]
fn a_change_that_cannot_be_written_is_rolled_back() {
    let mut r = rig();
    let before = r.snapshot_state();
    r.store.file().fail_writes = true;
    let e = r
        .ask(Request::EditReal {
            service: web(),
            address: RS1.into(),
            edit: RealEdit {
                weight: Some(9),
                forward: None,
            },
        })
        .unwrap_err();
    assert_eq!(
        e.message,
        "could not write /etc/lbd/test.ron: No space left on device; the change was not applied"
    );
    r.assert_unchanged(&before, ErrorKind::PersistFailed, e);
    assert_eq!(r.snap_real(RS1).unwrap().weight, 3);
    assert_eq!(r.real(RS1).unwrap().weight, 3);
    // Once the disk has room again, the same change goes through.
    r.store.file().fail_writes = false;
    assert_eq!(
        applied(r.ask(Request::EditReal {
            service: web(),
            address: RS1.into(),
            edit: RealEdit {
                weight: Some(9),
                forward: None,
            },
        })),
        2
    );
}

#[test]
fn reload_applies_the_file_without_writing_it() {
    let mut r = rig();
    r.store
        .edit_by_hand(&CONFIG.replace("scheduler: Wrr", "scheduler: Lc"));
    let g = applied(r.ask(Request::Reload));
    assert_eq!(g, 2);
    assert_eq!(r.services()[0].scheduler, Scheduler::Lc);
    assert_eq!(r.store.file().writes, 0);
    assert_eq!(
        r.changes.last().message,
        "lbctl reload: applied (generation 2)"
    );
}

#[test]
fn a_reload_of_a_broken_file_changes_nothing() {
    let mut r = rig();
    r.store.edit_by_hand("(ports: [");
    let before = r.snapshot_state();
    let e = r.ask(Request::Reload).unwrap_err();
    assert!(e.message.contains("/etc/lbd/test.ron"), "{}", e.message);
    r.assert_unchanged(&before, ErrorKind::Invalid, e);
    assert!(r
        .changes
        .last()
        .message
        .starts_with("lbctl reload: refused: "));
}

#[test]
fn autoreload_follows_the_file_and_only_then() {
    let mut r = rig();
    // Without autoreload, an edit waits for a reload.
    r.store
        .edit_by_hand(&CONFIG.replace("scheduler: Wrr", "scheduler: Lc"));
    r.plane.tick();
    assert_eq!(r.generation(), 1);
    let on = CONFIG.replace("services:", "control: (autoreload: true), services:");
    applied(r.ask(Request::Restore { ron: on.clone() }));
    let g = r.generation();
    // Its own write is not an edit.
    r.plane.tick();
    assert_eq!(r.generation(), g);
    r.store
        .edit_by_hand(&on.replace("scheduler: Wrr", "scheduler: Sh"));
    r.plane.tick();
    assert_eq!(r.generation(), g + 1);
    assert_eq!(r.services()[0].scheduler, Scheduler::Sh);
    assert!(r
        .changes
        .last()
        .message
        .starts_with("configuration file changed (autoreload): applied"));
}

// --- health --------------------------------------------------------------------

#[test]
fn a_health_verdict_rebuilds_the_snapshot_without_writing() {
    let mut r = rig();
    r.health.set_down(RS2, true);
    r.plane.tick();
    assert_eq!(r.generation(), 2);
    assert!(!r.snap_real(RS2).unwrap().up);
    assert!(r.snap_real(RS1).unwrap().up);
    r.plane.tick();
    assert_eq!(r.generation(), 2, "rebuilt without a new verdict");
    r.health.set_down(RS2, false);
    r.plane.tick();
    assert_eq!(r.generation(), 3);
    assert!(r.snap_real(RS2).unwrap().up);
    assert_eq!(r.store.file().writes, 0);
    assert_eq!(
        r.changes.last().message,
        "health check change: applied (generation 3)"
    );
}

// --- service groups ------------------------------------------------------------

#[test]
fn a_service_group_is_added_listed_with_its_marks_and_cleared_without_them() {
    let mut r = rig();
    let marks = CONFIG.replace(
        "\n)",
        r#"
    fwmarks: [(mark: 3, match: [(vip: "198.18.0.101", ports: 80), (vip: "198.18.0.101", ports: 443)])],
)"#,
    );
    applied(r.ask(Request::Restore { ron: marks }));
    // `ipvsadm -A -f 3 -p 300`, then `-a -f 3 -r 198.18.0.11:80`.
    let group: config::ServiceConfig =
        ron::from_str("(fwmark: Some(3), persistence: Some((timeout: 300)))").unwrap();
    applied(r.ask(Request::AddService(group.clone())));
    assert!(matches!(
        r.ask(Request::AddService(group)),
        Err(e) if e.kind == ErrorKind::AlreadyExists
    ));
    let mut rs = real_config(RS1, 1);
    rs.port = Some(80);
    applied(r.ask(Request::AddReal {
        service: ServiceKey::group(3),
        real: rs,
    }));
    let Ok(Response::Services(list)) = r.ask(Request::List) else {
        panic!("not a list");
    };
    let g = list.iter().find(|s| s.key == ServiceKey::group(3)).unwrap();
    assert_eq!(g.members.len(), 2);
    assert_eq!((g.reals.len(), g.reals[0].port), (1, 80));
    let snap = r.snapshots.current();
    let vip = u32::from(Ipv4Addr::new(198, 18, 0, 101));
    let i = snap.service(6, vip, 443).unwrap();
    assert_eq!(snap.services[i].fwmark, Some(3));
    // `ipvsadm -C`: the services go, the marks (iptables' part) stay.
    applied(r.ask(Request::Clear));
    assert!(r.persisted().services.is_empty());
    assert_eq!(r.persisted().fwmarks.len(), 1);
    assert_eq!(r.snapshots.current().service(6, vip, 443), None);
}

// --- director drain (BGP announcement) ---------------------------------------

/// [`CONFIG`] with a kernel interface on the port and a `bgp` section.
fn bgp_config() -> String {
    CONFIG
        .replace(
            r#"address: "198.18.0.2/24")"#,
            r#"address: "198.18.0.2/24", kernel: Some((iface: "lbd-lan0")))"#,
        )
        .replace(
            "    services:",
            "    bgp: Some((port: \"lan0\", table: 100, drain_quiet_ms: 5000)),\n    services:",
        )
}

#[test]
fn director_drain_needs_bgp() {
    let mut r = rig();
    let e = r.plane.handle(Request::DirectorDrain).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("no `bgp` section"), "{}", e.message);
    assert!(!r
        .announce
        .drained
        .load(std::sync::atomic::Ordering::Relaxed));
    // Not drained: the status says so.
    let Ok(Response::Drain(d)) = r.plane.handle(Request::DrainStatus) else {
        panic!("no drain report")
    };
    assert!(!d.drained && !d.moved);
}

#[test]
fn director_drain_withdraws_counts_new_connections_and_resumes() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut r = rig_on(&bgp_config());
    assert!(
        r.announce.info().is_some(),
        "bgp configured: announce state shown"
    );
    r.workers[0].add(Counter::ConnCreated, 10);
    let Ok(Response::Drain(d)) = r.plane.handle(Request::DirectorDrain) else {
        panic!("no drain report")
    };
    assert!(d.drained && !d.moved, "{d:?}");
    assert_eq!(d.new_conns, 0);
    assert!(r.announce.drained.load(Relaxed));
    // Connections still arriving (the routers have not moved yet).
    r.workers[1].add(Counter::ConnCreated, 3);
    bump(&r.workers[1].conns_live, 7);
    r.plane.tick();
    let Ok(Response::Drain(d)) = r.plane.handle(Request::DrainStatus) else {
        panic!("no drain report")
    };
    // 5 s of quiet are needed: far more than this test takes.
    assert!(d.drained && !d.moved, "{d:?}");
    assert_eq!((d.new_conns, d.open_conns), (3, 7));
    // A second drain goes on with the first one.
    let Ok(Response::Drain(d)) = r.plane.handle(Request::DirectorDrain) else {
        panic!("no drain report")
    };
    assert_eq!(d.new_conns, 3);
    assert_eq!(r.plane.handle(Request::DirectorResume), Ok(Response::Done));
    assert!(!r.announce.drained.load(Relaxed));
    let Ok(Response::Drain(d)) = r.plane.handle(Request::DrainStatus) else {
        panic!("no drain report")
    };
    assert!(!d.drained);
}

#[test]
fn bgp_table_cannot_change_live_but_timers_can() {
    let mut r = rig_on(&bgp_config());
    let moved = bgp_config().replace("table: 100", "table: 101");
    let e = r.plane.handle(Request::Restore { ron: moved }).unwrap_err();
    assert!(
        e.message.contains("bgp (presence, port, table)"),
        "{}",
        e.message
    );
    let slower = bgp_config().replace("drain_quiet_ms: 5000", "drain_quiet_ms: 9000");
    assert!(r.plane.handle(Request::Restore { ron: slower }).is_ok());
    // The announce thread reads the running configuration.
    assert_eq!(
        r.announce_running_quiet(),
        9000,
        "the announce state follows the running configuration"
    );
}

impl Rig {
    fn announce_running_quiet(&self) -> u32 {
        self.announce.running().bgp.as_ref().unwrap().drain_quiet_ms
    }
}
