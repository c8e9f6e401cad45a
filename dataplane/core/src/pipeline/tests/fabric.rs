//! The director in an L3 fabric: a trunk port carrying two VLANs (client
//! side and real-server side), and static routes to a tunnel real server
//! and to NAT clients behind gateways.

use super::*;
use crate::wire::vlan::{self, VlanFrame};

const GW_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xfe]);
const GW2_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xfd]);
const RS_V20_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x20]);
/// Interfaces of the VLAN lab: lan0, lan0.10, lan0.20.
const V10: u16 = 1;
const V20: u16 = 2;

/// One port, untagged 198.18.0.2/24, VLAN 10 (clients) 198.18.10.2/24,
/// VLAN 20 (real servers) 198.18.20.2/24; DR service on the VIP with a
/// real server on VLAN 20; routes as given; every neighbour resolved to
/// a MAC by its address.
fn fabric_lab(routes: &str, reals: &str) -> Worker {
    let cfg: Config = ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24",
                     vlans: [(id: 10, address: "198.18.10.2/24"),
                             (id: 20, address: "198.18.20.2/24")])],
            routes: [{routes}],
            services: [(vip: "198.18.0.100", port: 80, scheduler: Mh,
                        real_servers: [{reals}])],
        )"#
    ))
    .unwrap();
    let errors = crate::config::validate(&cfg);
    assert!(errors.is_empty(), "{errors:?}");
    let neigh = Arc::new(NeighTable::new(64));
    let mut reg = Registry::default();
    let snap = Arc::new(Snapshot::build(&cfg, &[DIR_MAC], &mut reg, &neigh, 1).unwrap());
    for e in neigh.entries() {
        let mac = match super::v4(e.ip).octets() {
            [198, 18, 20, 11] => RS_V20_MAC,
            [198, 18, 0, 254] => GW_MAC,
            [198, 18, 10, 254] => GW2_MAC,
            _ => RS1_MAC,
        };
        neigh.learn(e.slot, e.ip, mac, 0);
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    Worker::new(snap, ConnTable::new(1024, 5), stats, neigh)
}

fn vlan_lab() -> Worker {
    fabric_lab("", r#"(address: "198.18.20.11")"#)
}

/// `frame` with an 802.1Q tag `vid` inserted after the MACs.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = vec![0; vlan::TAG_LEN];
    f.extend_from_slice(frame);
    assert!(vlan::push_tag(&mut f, vid));
    f
}

fn arp_request_for(target: [u8; 4], sender: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    crate::wire::build_arp(
        &mut f,
        crate::wire::ARP_REQUEST,
        CLIENT_MAC,
        MacAddr::BROADCAST,
        CLIENT_MAC,
        Ipv4Addr::from(sender),
        MacAddr::ZERO,
        Ipv4Addr::from(target),
    );
    f
}

/// Send the pipeline's `Tx(iface)` frame out as the I/O loop does: the
/// port, and the VLAN it carries (0: untagged).
fn egress(w: &Worker, f: &mut Vec<u8>, v: Verdict) -> (u16, u16) {
    let Verdict::Tx(iface) = v else {
        panic!("not sent: {v:?}")
    };
    if usize::from(iface) < w.snapshot().phys_ports {
        return (iface, 0);
    }
    let port = w.vlan_egress(f, iface).expect("tagged");
    let tag = VlanFrame::new_checked(&f[..]).unwrap();
    assert_eq!(&f[12..14], &[0x81, 0x00]);
    (port, tag.vid())
}

#[test]
fn arp_on_a_vlan_is_answered_there_and_tagged() {
    let mut w = vlan_lab();
    let mut f = tagged(&arp_request_for([198, 18, 10, 2], [198, 18, 10, 1]), 10);
    let v = w.process_buf(&mut f, 0, 0);
    assert_eq!(v, Verdict::Tx(V10), "processed on lan0.10");
    assert_eq!(egress(&w, &mut f, v), (0, 10), "back on port 0, tag 10");
    let a = ArpPacket::new_checked(&f[vlan::HEADER_LEN..]).unwrap();
    assert_eq!(a.operation(), arp::ARP_REPLY);
    assert_eq!(a.sender_ip(), Ipv4Addr::new(198, 18, 10, 2));
    assert_eq!(a.sender_mac(), DIR_MAC, "VLANs share their port's MAC");
    // The VIP answers on any interface.
    let mut f = tagged(&arp_request_for(VIP, [198, 18, 10, 1]), 10);
    let v = w.process_buf(&mut f, 0, 0);
    assert_eq!(egress(&w, &mut f, v), (0, 10));
    // VLAN 10's address is not VLAN 20's, nor the untagged port's.
    let mut f = tagged(&arp_request_for([198, 18, 10, 2], [198, 18, 20, 1]), 20);
    assert_eq!(
        w.process_buf(&mut f, 0, 0),
        Verdict::Drop(Counter::DropArpNotForUs)
    );
    let mut f = arp_request_for([198, 18, 10, 2], [198, 18, 0, 1]);
    assert_eq!(
        w.process_buf(&mut f, 0, 0),
        Verdict::Drop(Counter::DropArpNotForUs)
    );
    assert_eq!(w.stats().get(Counter::ArpReplied), 2);
}

#[test]
fn unknown_tags_and_double_tags_are_dropped_and_counted() {
    let mut w = vlan_lab();
    let mut f = tagged(&arp_request_for([198, 18, 10, 2], [198, 18, 10, 1]), 30);
    assert_eq!(
        w.process_buf(&mut f, 0, 0),
        Verdict::Drop(Counter::DropVlan)
    );
    let mut f = tagged(
        &tagged(&arp_request_for([198, 18, 10, 2], [198, 18, 10, 1]), 10),
        10,
    );
    assert_eq!(
        w.process_buf(&mut f, 0, 0),
        Verdict::Drop(Counter::DropVlan)
    );
    let mut f = tagged(&syn(40000), 10)[..17].to_vec();
    assert_eq!(
        w.process_buf(&mut f, 0, 0),
        Verdict::Drop(Counter::DropEthTruncated)
    );
    assert_eq!(w.stats().get(Counter::DropVlan), 2);
    // Without VLANs configured, every tagged frame is such a drop.
    let mut plain = lab("Rr", (1, 1), true);
    let mut f = tagged(&syn(40000), 10);
    assert_eq!(
        plain.w.process_buf(&mut f, 0, 0),
        Verdict::Drop(Counter::DropVlan)
    );
}

#[test]
fn a_priority_tag_belongs_to_the_port_itself() {
    let mut w = vlan_lab();
    let mut f = tagged(&arp_request_for([198, 18, 0, 2], [198, 18, 0, 1]), 0);
    let v = w.process_buf(&mut f, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(egress(&w, &mut f, v), (0, 0));
    assert_eq!(&f[12..14], &[0x08, 0x06], "answered untagged");
}

#[test]
fn a_client_on_one_vlan_reaches_a_real_server_on_the_other() {
    let mut w = vlan_lab();
    let orig = syn(40000);
    let mut f = tagged(&orig, 10);
    let v = w.process_buf(&mut f, 0, 0);
    assert_eq!(v, Verdict::Tx(V20), "the real server's interface");
    assert_eq!(egress(&w, &mut f, v), (0, 20));
    assert_eq!(&f[0..6], &RS_V20_MAC.0);
    assert_eq!(&f[6..12], &DIR_MAC.0);
    assert_eq!(&f[vlan::HEADER_LEN..], &orig[ETH..], "IP packet untouched");
    // The connection's next segment, untagged this time, takes the same way.
    let mut a = ack(40000);
    let v = w.process_buf(&mut a, 0, 1);
    assert_eq!(v, Verdict::Tx(V20));
    assert_eq!(w.stats().get(Counter::FwdDr), 2);
    // Ping the VLAN's own address.
    let mut p = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4([198, 18, 10, 1], [198, 18, 10, 2], 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut p, b"ping")
        .unwrap();
    let mut p = tagged(&p, 10);
    let v = w.process_buf(&mut p, 0, 2);
    assert_eq!(egress(&w, &mut p, v), (0, 10));
    assert_eq!(w.stats().get(Counter::IcmpEchoReplied), 1);
}

#[test]
fn arp_requests_for_vlan_neighbours_name_the_vlan() {
    // What the control thread needs to send them: the interface's port
    // and VLAN.
    let w = vlan_lab();
    let s = w.snapshot();
    let i = s
        .ports
        .iter()
        .position(|p| p.subnet_contains(Ipv4Addr::new(198, 18, 20, 11)))
        .unwrap();
    assert_eq!((s.ports[i].phys, s.ports[i].vlan), (0, 20));
    assert_eq!(s.ports[i].name, "lan0.20");
    assert_eq!(s.phys_ports, 1);
}

#[test]
fn a_tunnel_real_server_behind_a_gateway_gets_the_gateways_mac() {
    let mut w = fabric_lab(
        r#"(prefix: "198.19.5.0/24", via: "198.18.0.254")"#,
        r#"(address: "198.19.5.10", forward: Tunnel)"#,
    );
    let orig = syn(40000);
    let mut f = orig.clone();
    assert_eq!(w.process_buf(&mut f, 0, 0), Verdict::Tx(0));
    assert_eq!(dst_mac(&f), GW_MAC, "to the gateway");
    let outer = outer_of(&f, &orig);
    assert_eq!(
        outer.destination(),
        [198, 19, 5, 10],
        "addressed to the server"
    );
    assert_eq!(outer.source(), DIR);
    // The gateway is a neighbour like a real server: resolved and learned.
    let neigh = w
        .snapshot()
        .neighbours
        .get(&u32::from(Ipv4Addr::new(198, 18, 0, 254)));
    assert!(neigh.is_some());
    // A gateway on a VLAN: tunnelled out tagged.
    let mut w = fabric_lab(
        r#"(prefix: "198.19.5.0/24", via: "198.18.10.254")"#,
        r#"(address: "198.19.5.10", forward: Tunnel)"#,
    );
    let mut f = orig.clone();
    let v = w.process_buf(&mut f, 0, 0);
    assert_eq!(v, Verdict::Tx(V10));
    assert_eq!(egress(&w, &mut f, v), (0, 10));
    assert_eq!(&f[0..6], &GW2_MAC.0);
}

#[test]
fn nat_replies_to_a_client_behind_a_route_go_to_its_gateway() {
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "ext", device: "net_null0", address: "198.18.0.2/24"),
                    (name: "int", device: "net_null1", address: "198.19.0.1/24")],
            eal: (cores: "0-2"),
            routes: [(prefix: "198.18.128.0/17", via: "198.18.0.254")],
            services: [
                (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                    (address: "198.19.0.11", port: Some(8080), forward: Nat)]),
            ],
        )"#,
    )
    .unwrap();
    let mut l = nat_lab_from(&cfg, &[EXT_MAC, INT_MAC], RS_MAC, 2);
    let mut int = l.workers.pop().unwrap();
    let mut ext = l.workers.pop().unwrap();
    let request = |client: [u8; 4], src_mac: MacAddr| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(src_mac.0, EXT_MAC.0)
            .ipv4(client, VIP, 64)
            .tcp(40000, 80, 1000, 65535)
            .syn()
            .write(&mut f, &[])
            .unwrap();
        f
    };
    let reply = |client: [u8; 4]| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(RS_MAC.0, INT_MAC.0)
            .ipv4(RS, client, 64)
            .tcp(8080, 40000, 1, 65535)
            .syn()
            .ack(1001)
            .write(&mut f, &[])
            .unwrap();
        f
    };
    // A routed client whose request came through another router (MAC
    // 02:..:77): the reply follows the route, to the route's gateway (the
    // test lab resolved every neighbour to RS_MAC).
    let far = [198, 18, 200, 7];
    let mut f = request(far, MacAddr([2, 0, 0, 0, 0, 0x77]));
    assert_eq!(ext.process(&mut f, 0, 0), Verdict::Tx(1));
    let mut r = reply(far);
    assert_eq!(int.process(&mut r, 1, 1), Verdict::Tx(0));
    assert_eq!(dst_mac(&r), RS_MAC, "the gateway's MAC, not 02:..:77");
    // An on-link client: the MAC its request came from, as before.
    let near = [198, 18, 0, 7];
    let mut f = request(near, CLIENT_MAC);
    assert_eq!(ext.process(&mut f, 0, 2), Verdict::Tx(1));
    let mut r = reply(near);
    assert_eq!(int.process(&mut r, 1, 3), Verdict::Tx(0));
    assert_eq!(dst_mac(&r), CLIENT_MAC);
    // The gateway unresolved: dropped, counted, and asked for.
    let snap = l.snap.clone();
    let slot = snap.static_routes[0].neigh as usize;
    int.neigh.assign(slot, Ipv4Addr::new(198, 18, 0, 254));
    let mut r = reply(far);
    assert_eq!(
        int.process(&mut r, 1, 4),
        Verdict::Drop(Counter::DropNeighUnresolved)
    );
}

#[test]
fn interfaces_of_ports_without_a_mac_are_left_out_consistently() {
    // Two ports, a VLAN on the first, and MACs for the first port only
    // (as some tests build snapshots): the VLAN is interface 1, and its
    // real server's route says so.
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "a", device: "net_null0", address: "198.18.0.2/24",
                     vlans: [(id: 20, address: "198.18.20.2/24")]),
                    (name: "b", device: "net_null1", address: "198.19.0.1/24")],
            eal: (cores: "0-2"),
            services: [(vip: "198.18.0.100", port: 80, scheduler: Mh,
                        real_servers: [(address: "198.18.20.11")])],
        )"#,
    )
    .unwrap();
    assert!(crate::config::validate(&cfg).is_empty());
    let neigh = NeighTable::new(64);
    let s = Snapshot::build(&cfg, &[DIR_MAC], &mut Registry::default(), &neigh, 1).unwrap();
    let names: Vec<&str> = s.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "a.20"]);
    let rs = s.services[0].reals[0].id;
    assert_eq!(s.route(rs).unwrap().port, 1);
    let both = Snapshot::build(
        &cfg,
        &[DIR_MAC, RS1_MAC],
        &mut Registry::default(),
        &neigh,
        1,
    )
    .unwrap();
    let names: Vec<&str> = both.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "a.20"]);
    assert_eq!(both.route(both.services[0].reals[0].id).unwrap().port, 2);
    assert_eq!(both.phys_ports, 2);
}
