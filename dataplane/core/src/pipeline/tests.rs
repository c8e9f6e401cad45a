//! Pipeline tests: frames built by etherparse (an independent implementation)
//! go through a worker; verdicts, rewrites and counters are checked.

use super::*;
use crate::config::{Config, Scheduler};
use crate::conntrack::shared::SharedConnTable;
use crate::counters::Counter;
use crate::neigh::ClientMacs;
use crate::pipeline::nat::NatState;
use etherparse::{PacketBuilder, SlicedPacket};
use std::net::Ipv4Addr;

/// Per-frame accounting checks, shared with the fuzz harness.
#[path = "../../tests/support/accounting.rs"]
mod accounting;
mod arp_ping;
mod burst;
mod down_server;
mod dr;
mod ecmp;
mod fabric;
mod flood;
mod frames6;
mod fuzz;
mod fwd_plan;
mod health;
mod hostile;
mod icmp_error;
mod ipv6;
mod ipv6_groups;
mod kernel_path;
mod least_index;
mod nat;
mod nat66;
mod nat_plan;
mod sched;
mod sync;
mod tunnel;
mod tunnel_plan;

const DIR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const RS1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const RS2_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x12]);
const CLIENT: [u8; 4] = [198, 18, 0, 1];
const VIP: [u8; 4] = [198, 18, 0, 100];
const DIR: [u8; 4] = [198, 18, 0, 2];

fn config(sched: &str, weights: (u32, u32)) -> Config {
    ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: {sched}, real_servers: [
                    (address: "198.18.0.11", weight: {}), (address: "198.18.0.12", weight: {}),
                ]),
                (vip: "198.18.0.100", port: 53, protocol: Udp, real_servers: [
                    (address: "198.18.0.11"),
                ]),
            ],
        )"#,
        weights.0, weights.1
    ))
    .unwrap()
}

struct Lab {
    w: Worker,
    neigh: Arc<NeighTable>,
    reg: Registry,
}

fn lab(sched: &str, weights: (u32, u32), resolve: bool) -> Lab {
    lab_from(config(sched, weights), resolve)
}

fn lab_from(cfg: Config, resolve: bool) -> Lab {
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[DIR_MAC], &mut reg, &neigh, 1).unwrap());
    if resolve {
        for e in neigh.entries() {
            let mac = if e.ip == Ipv4Addr::new(198, 18, 0, 11) {
                RS1_MAC
            } else {
                RS2_MAC
            };
            neigh.learn(e.slot, e.ip, mac, 0);
        }
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let w = Worker::new(snap, ConnTable::new(1024, 5), stats, neigh.clone());
    Lab { w, neigh, reg }
}

fn tcp_frame(sport: u16, dport: u16, syn: bool, ack: bool, fin: bool, rst: bool) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .tcp(sport, dport, 1000, 65535);
    if syn {
        b = b.syn();
    }
    if ack {
        b = b.ack(1);
    }
    if fin {
        b = b.fin();
    }
    if rst {
        b = b.rst();
    }
    let payload = b"GET / HTTP/1.0\r\n\r\n";
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn syn(sport: u16) -> Vec<u8> {
    tcp_frame(sport, 80, true, false, false, false)
}

fn ack(sport: u16) -> Vec<u8> {
    tcp_frame(sport, 80, false, true, false, false)
}

fn dst_mac(f: &[u8]) -> MacAddr {
    MacAddr(f[0..6].try_into().unwrap())
}

/// An ARP reply to the director: `ip` is at `mac`.
fn arp_reply_to_dir(mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    arp::build_arp(
        &mut f,
        arp::ARP_REPLY,
        mac,
        DIR_MAC,
        mac,
        ip,
        DIR_MAC,
        Ipv4Addr::from(DIR),
    );
    f
}

/// rs1 of [`lab`] and [`tunnel_lab`], and a MAC it moves to in the plan
/// tests (`fwd_plan`, `tunnel_plan`).
const RS1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
const NEW_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x31]);

/// rs1's neighbour slot.
fn rs1_slot(l: &Lab) -> usize {
    l.neigh
        .entries()
        .iter()
        .find(|e| e.ip == std::net::IpAddr::from(RS1))
        .unwrap()
        .slot
}

/// An ACK of the flow from port 40000 through the burst path: its verdict
/// and frame.
fn burst_ack(w: &mut Worker, now: Tick) -> (Verdict, Vec<u8>) {
    let mut frames = vec![ack(40000)];
    let mut v = [Verdict::Consumed];
    w.process_burst(&mut frames, 0, now, &mut v);
    (v[0], frames.pop().unwrap())
}

/// The one-frame entry point a plan test checks alongside the burst path.
type OneFrame = fn(&mut Worker, &mut Vec<u8>, Tick) -> Verdict;

/// A plan test's case, for either kind of plan: `l` has an established
/// flow from port 40000 to rs1 with its plan made. rs1's MAC changing
/// drops the plan, in the burst path and in `one_frame`.
fn a_new_neighbour_mac_drops_the_plan_of(mut l: Lab, one_frame: OneFrame) {
    let slot = rs1_slot(&l);
    l.neigh.learn(slot, RS1, NEW_MAC, 2);
    let (v, f) = burst_ack(&mut l.w, 2);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(dst_mac(&f), NEW_MAC);
    // The one-frame path too.
    l.neigh.learn(slot, RS1, RS1_MAC, 3);
    let mut f = ack(40000);
    assert_eq!(one_frame(&mut l.w, &mut f, 3), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), RS1_MAC);
}

/// The same, rs1's new MAC learned from an ARP reply between two frames
/// of one burst: the plan is dropped for the next frame.
fn an_arp_reply_in_the_same_burst_drops_the_plan_of(mut l: Lab) {
    let mut frames = vec![ack(40000), arp_reply_to_dir(NEW_MAC, RS1), ack(40000)];
    let mut v = [Verdict::Consumed; 3];
    l.w.process_burst(&mut frames, 0, 2, &mut v);
    assert_eq!(v, [Verdict::Tx(0), Verdict::Consumed, Verdict::Tx(0)]);
    assert_eq!(dst_mac(&frames[0]), RS1_MAC);
    assert_eq!(dst_mac(&frames[2]), NEW_MAC);
}

/// A SYN to VIP:80 from another client address.
fn syn_from(client: [u8; 4], sport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(client, VIP, 64)
        .tcp(sport, 80, 1000, 65535)
        .syn();
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

// --- NAT: shared by the NAT, ICMP-error and hostile-frame tests ---

/// The two-armed NAT lab's external and internal port MACs, its real
/// server's MAC and address.
const EXT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xe0]);
const INT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xe1]);
const RS_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x21]);
const RS: [u8; 4] = [198, 19, 0, 11];

/// A NAT director: workers over one snapshot, sharing one NAT table and
/// client-MAC cache (as lbd's workers do).
struct NatLab {
    workers: Vec<Worker>,
    table: Arc<SharedConnTable>,
    clients: Arc<ClientMacs>,
    snap: Arc<Snapshot>,
}

/// `n` NAT workers over `cfg`, whose ports have the MACs `port_macs`;
/// every real server resolves to `rs_mac`.
fn nat_lab_from(cfg: &Config, port_macs: &[MacAddr], rs_mac: MacAddr, n: usize) -> NatLab {
    let errors = crate::config::validate(cfg);
    assert!(errors.is_empty(), "{errors:?}");
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(cfg, port_macs, &mut reg, &neigh, 1).unwrap());
    for e in neigh.entries() {
        neigh.learn(e.slot, e.ip, rs_mac, 0);
    }
    let table = Arc::new(SharedConnTable::new(1024, 3));
    let clients = Arc::new(ClientMacs::new(256));
    let workers = (0..n)
        .map(|i| {
            Worker::new(
                snap.clone(),
                ConnTable::new(1024, 5 + i as u64),
                Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
                neigh.clone(),
            )
            .with_nat(NatState::new(table.clone(), clients.clone(), i, n))
        })
        .collect();
    NatLab {
        workers,
        table,
        clients,
        snap,
    }
}

/// The two-armed NAT lab: an external-port worker and an internal-port
/// worker; TCP VIP:80 → RS:8080 and UDP VIP:53 → RS:53.
fn two_armed_nat() -> NatLab {
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "ext", device: "net_null0", address: "198.18.0.2/24"),
                    (name: "int", device: "net_null1", address: "198.19.0.1/24")],
            eal: (cores: "0-2"),
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.19.0.11", port: Some(8080), forward: Nat)]),
                (vip: "198.18.0.100", port: 53, protocol: Udp, real_servers: [
                    (address: "198.19.0.11", forward: Nat)]),
            ],
        )"#,
    )
    .unwrap();
    nat_lab_from(&cfg, &[EXT_MAC, INT_MAC], RS_MAC, 2)
}

/// [`two_armed_nat`]'s workers: (external, internal).
fn nat_workers() -> (Worker, Worker) {
    let mut l = two_armed_nat();
    let int = l.workers.pop().unwrap();
    (l.workers.pop().unwrap(), int)
}

// --- shared by the tunnel and ICMP-error tests ---

/// A lab whose HTTP service has rs1 and rs2 with the given forwarding
/// methods, a port MTU, and a `tunnel` section.
fn tunnel_lab(forwards: (&str, &str), mtu: u16, tunnel: &str) -> Lab {
    let cfg: Config = ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24", mtu: {mtu})],
            tunnel: ({tunnel}),
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.18.0.11", forward: {}), (address: "198.18.0.12", forward: {}),
                ]),
            ],
        )"#,
        forwards.0, forwards.1
    ))
    .unwrap();
    assert!(crate::config::validate(&cfg).is_empty());
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[DIR_MAC], &mut reg, &neigh, 1).unwrap());
    for e in neigh.entries() {
        let mac = if e.ip == Ipv4Addr::new(198, 18, 0, 11) {
            RS1_MAC
        } else {
            RS2_MAC
        };
        neigh.learn(e.slot, e.ip, mac, 0);
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let w = Worker::new(snap, ConnTable::new(1024, 5), stats, neigh.clone());
    Lab { w, neigh, reg }
}

/// The outer header of a tunnelled frame, checked to be IPIP with a valid
/// checksum; the inner packet must be `orig`'s IP packet byte for byte.
fn outer_of<'a>(f: &'a [u8], orig: &[u8]) -> etherparse::Ipv4HeaderSlice<'a> {
    let outer = etherparse::Ipv4HeaderSlice::from_slice(&f[ETH..]).unwrap();
    assert_eq!(outer.protocol(), etherparse::IpNumber::IPV4);
    assert_eq!(
        outer.header_checksum(),
        outer.to_header().calc_header_checksum()
    );
    assert_eq!(outer.total_len() as usize, f.len() - ETH);
    assert_eq!(&f[ETH + 20..], &orig[ETH..], "inner packet untouched");
    outer
}

/// A neighbour's IPv4 address (the IPv4 labs have no other).
fn v4(ip: std::net::IpAddr) -> Ipv4Addr {
    match ip {
        std::net::IpAddr::V4(a) => a,
        std::net::IpAddr::V6(a) => panic!("an IPv6 neighbour {a} in an IPv4 lab"),
    }
}

/// A worker over the lab configuration (for tests elsewhere in the crate).
pub(crate) fn any_worker() -> Worker {
    lab("Rr", (1, 1), true).w
}

/// `bad_source`'s two compares are the three tests it stands for: 0/8,
/// 127/8, 224/3 (classes D and E), for every first octet.
#[test]
fn bad_source_is_0_127_and_224_up() {
    for first in 0..=255u32 {
        let want = first == 0 || first == 127 || first >= 224;
        assert_eq!(bad_source(first << 24 | 0x0001_0203), want, "{first}");
    }
}
