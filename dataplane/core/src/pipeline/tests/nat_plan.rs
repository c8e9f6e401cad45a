//! A NAT request's MACs and egress port come from its real server's
//! forward plan (`fwd_cache`), as a DR packet's do: the plan is made from
//! the first frame the route sends and is never used stale — a
//! neighbour's MAC changing, a new snapshot (the port's MAC, the server
//! switched to tunnel) drop it; a frame whose TTL runs out is dropped
//! untouched; a tunnel server never gets a plan from a NAT connection.

use super::*;
use etherparse::TransportSlice;
use std::sync::atomic::Ordering::Relaxed;

const EXT_PORT: &str = r#"(name: "ext", device: "net_null0", address: "198.18.0.2/24")"#;
const INT_PORT: &str = r#"(name: "int", device: "net_null1", address: "198.19.0.1/24")"#;
const NEW_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x31]);

/// The external-port worker of a two-armed NAT director whose TCP
/// VIP:80 goes to RS:8080 by `forward`, and UDP VIP:53 to another real
/// server by NAT (the snapshot keeps a NAT service whatever `forward`
/// is), with what rebuilding its snapshot takes.
struct PlanLab {
    w: Worker,
    neigh: Arc<NeighTable>,
    reg: Registry,
}

fn config(forward: &str) -> Config {
    ron::from_str(&format!(
        r#"(
            ports: [{EXT_PORT}, {INT_PORT}],
            eal: (cores: "0-2"),
            tunnel: (),
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.19.0.11", port: Some(8080), forward: {forward})]),
                (vip: "198.18.0.100", port: 53, protocol: Udp, real_servers: [
                    (address: "198.19.0.12", forward: Nat)]),
            ],
        )"#
    ))
    .unwrap()
}

fn snapshot(l: &mut PlanLab, forward: &str, int_mac: MacAddr, generation: u64) -> Arc<Snapshot> {
    let snap = Snapshot::build(
        &config(forward),
        &[EXT_MAC, int_mac],
        &mut l.reg,
        &l.neigh,
        generation,
    )
    .unwrap();
    Arc::new(snap)
}

/// The lab with an established NAT connection from port 40000 (its plan
/// made by the ACK).
fn established() -> PlanLab {
    let cfg = config("Nat");
    assert!(crate::config::validate(&cfg).is_empty());
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Snapshot::build(&cfg, &[EXT_MAC, INT_MAC], &mut reg, &neigh, 1).unwrap();
    for e in neigh.entries() {
        neigh.learn(e.slot, e.ip, RS_MAC, 0);
    }
    let w = Worker::new(
        Arc::new(snap),
        ConnTable::new(1024, 5),
        Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
        neigh.clone(),
    )
    .with_nat(NatState::new(
        Arc::new(SharedConnTable::new(1024, 3)),
        Arc::new(ClientMacs::new(256)),
        0,
        1,
    ));
    let mut l = PlanLab { w, neigh, reg };
    assert_eq!(
        l.w.process(&mut client(40000, "S", 64), 0, 0),
        Verdict::Tx(1)
    );
    assert_eq!(burst(&mut l.w, client(40000, "A", 64), 1).0, Verdict::Tx(1));
    l
}

/// A client's TCP segment to VIP:80 from `sport`.
fn client(sport: u16, flags: &str, ttl: u8) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(CLIENT_MAC.0, EXT_MAC.0)
        .ipv4(CLIENT, VIP, ttl)
        .tcp(sport, 80, 1000, 65535);
    for c in flags.chars() {
        b = match c {
            'S' => b.syn(),
            'A' => b.ack(1),
            _ => b,
        };
    }
    let mut f = Vec::new();
    b.write(&mut f, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    f
}

/// One frame through the burst path: its verdict and the frame.
fn burst(w: &mut Worker, f: Vec<u8>, now: Tick) -> (Verdict, Vec<u8>) {
    let mut frames = vec![f];
    let mut v = [Verdict::Consumed];
    w.process_burst(&mut frames, 0, now, &mut v);
    (v[0], frames.pop().unwrap())
}

/// The destination address and port of a rewritten TCP frame, its
/// checksums checked.
fn nat_dst(f: &[u8]) -> ([u8; 4], u16) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.calc_header_checksum(), h.header_checksum);
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("not TCP")
    };
    let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
    assert_eq!(t.checksum(), want);
    (h.destination, t.destination_port())
}

fn rs1_slot(l: &PlanLab) -> usize {
    l.neigh
        .entries()
        .iter()
        .find(|e| e.ip == std::net::IpAddr::from(RS))
        .unwrap()
        .slot
}

#[test]
fn a_nat_plan_sends_like_the_route_it_was_made_from() {
    let mut l = established();
    for t in 2..6 {
        let (v, f) = burst(&mut l.w, client(40000, "A", 64), t);
        assert_eq!(v, Verdict::Tx(1));
        assert_eq!(dst_mac(&f), RS_MAC);
        assert_eq!(&f[6..12], &INT_MAC.0);
        assert_eq!(nat_dst(&f), (RS, 8080));
        assert_eq!(f[ETH + 8], 63, "TTL decremented");
    }
    assert_eq!(l.w.stats().get(Counter::FwdNat), 6);
    let rs = l.w.snapshot().services[0].reals[0].id as usize;
    assert_eq!(l.w.stats().rs[rs].packets.load(Relaxed), 6);
}

#[test]
fn a_new_neighbour_mac_drops_the_nat_plan() {
    let mut l = established();
    let slot = rs1_slot(&l);
    l.neigh.learn(slot, Ipv4Addr::from(RS), NEW_MAC, 2);
    let (v, f) = burst(&mut l.w, client(40000, "A", 64), 2);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(dst_mac(&f), NEW_MAC);
    // Released: not sent to, and asked for.
    l.neigh.release(slot);
    let (v, _) = burst(&mut l.w, client(40000, "A", 64), 3);
    assert_eq!(v, Verdict::Drop(Counter::DropNeighUnresolved));
}

#[test]
fn a_new_snapshot_with_another_port_mac_drops_the_nat_plan() {
    let mut l = established();
    let other = MacAddr([0x02, 0, 0, 0, 0, 0x03]);
    let snap = snapshot(&mut l, "Nat", other, 2);
    l.w.set_snapshot(snap);
    let (v, f) = burst(&mut l.w, client(40000, "A", 64), 2);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(dst_mac(&f), RS_MAC);
    assert_eq!(&f[6..12], &other.0);
}

#[test]
fn a_frame_whose_ttl_runs_out_is_dropped_untouched_with_a_plan() {
    let mut l = established();
    let orig = client(40000, "A", 1);
    let (v, f) = burst(&mut l.w, orig.clone(), 2);
    assert_eq!(v, Verdict::Drop(Counter::DropIpv4TtlExpired));
    assert_eq!(f, orig);
}

/// A NAT connection left from before a reload that switched its server
/// to tunnel still goes out by NAT, and leaves no plan behind: the
/// server's new connections are tunnelled, not sent by a DR plan.
#[test]
fn a_nat_connection_to_a_tunnel_server_makes_no_plan() {
    let mut l = established();
    let snap = snapshot(&mut l, "Tunnel", INT_MAC, 2);
    l.w.set_snapshot(snap);
    let (v, f) = burst(&mut l.w, client(40000, "A", 64), 2);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(nat_dst(&f), (RS, 8080));
    let syn = client(40001, "S", 64);
    let (v, out) = burst(&mut l.w, syn.clone(), 3);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(out.len(), syn.len() + 20, "IPIP: an outer header");
    assert_eq!(out[ETH + 9], 4, "outer protocol IPIP");
}
