//! The kernel exception path (`ports[].kernel`): own-address traffic to
//! the kernel, standby, the two-box setup, ARP replies for the kernel.

use super::*;
use crate::config::KernelPathConfig;

fn kernel_lab(on: bool) -> Lab {
    let mut cfg = config("Rr", (1, 1));
    if on {
        cfg.ports[0].kernel = Some(KernelPathConfig {
            iface: "lbd-lan0".into(),
            rate_pps: 100,
        });
    }
    lab_from(cfg, true)
}

fn to_dir(proto: &str) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(RS1_MAC.0, DIR_MAC.0).ipv4([198, 18, 0, 11], DIR, 64);
    let mut f = Vec::new();
    match proto {
        "tcp" => b.tcp(80, 50000, 1, 1000).syn().ack(1).write(&mut f, &[]),
        "udp" => b.udp(53, 50000).write(&mut f, b"x"),
        "echo-reply" => b.icmpv4_echo_reply(1, 1).write(&mut f, b"ping"),
        "echo-request" => b.icmpv4_echo_request(1, 1).write(&mut f, b"ping"),
        _ => unreachable!(),
    }
    .unwrap();
    f
}

#[test]
fn own_address_traffic_goes_to_the_kernel_untouched() {
    let mut l = kernel_lab(true);
    for p in ["tcp", "udp", "echo-reply"] {
        let orig = to_dir(p);
        let mut f = orig.clone();
        assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Kernel, "{p}");
        assert_eq!(f, orig, "{p}: untouched");
    }
    // Pings are still answered by the dataplane.
    let mut f = to_dir("echo-request");
    assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
    assert_eq!(l.w.stats().get(Counter::IcmpEchoReplied), 1);
    // VIP traffic never goes to the kernel.
    let mut s = syn(40000);
    assert_eq!(l.w.process(&mut s, 0, 0), Verdict::Tx(0));
    // Nor traffic for addresses that are not ours.
    let mut other = Vec::new();
    PacketBuilder::ethernet2(RS1_MAC.0, DIR_MAC.0)
        .ipv4([198, 18, 0, 11], [198, 18, 0, 77], 64)
        .udp(1, 2)
        .write(&mut other, b"x")
        .unwrap();
    assert_eq!(
        l.w.process(&mut other, 0, 0),
        Verdict::Drop(Counter::DropIpv4NotLocal)
    );
}

#[test]
fn a_standby_director_leaves_the_vips_alone() {
    let mut l = kernel_lab(true);
    l.w.set_standby(true);
    let mut s = syn(40000);
    assert_eq!(
        l.w.process(&mut s, 0, 0),
        Verdict::Drop(Counter::DropVrrpBackup)
    );
    let mut q = vec![0u8; 60];
    crate::wire::arp::build_arp(
        &mut q,
        arp::ARP_REQUEST,
        CLIENT_MAC,
        MacAddr::BROADCAST,
        CLIENT_MAC,
        Ipv4Addr::from(CLIENT),
        MacAddr::ZERO,
        Ipv4Addr::from(VIP),
    );
    let mut q2 = q.clone();
    assert_eq!(
        l.w.process(&mut q, 0, 1),
        Verdict::Drop(Counter::DropArpNotForUs)
    );
    // Its own address still works, and VRRP adverts reach the kernel.
    let mut p = to_dir("tcp");
    assert_eq!(l.w.process(&mut p, 0, 2), Verdict::Kernel);
    let mut adv = Vec::new();
    PacketBuilder::ethernet2(RS1_MAC.0, crate::wire::vrrp::GROUP_MAC)
        .ipv4([198, 18, 0, 3], [224, 0, 0, 18], 255)
        .write(
            &mut adv,
            etherparse::IpNumber(112),
            &[0x31, 1, 100, 0, 0, 100, 0, 0],
        )
        .unwrap();
    assert_eq!(l.w.process(&mut adv, 0, 3), Verdict::Kernel);
    // And VRRPv3 over IPv6 (to ff02::12), for the vrrp6 instance.
    let mut adv6 = Vec::new();
    let ll3: [u8; 16] = "fe80::3".parse::<std::net::Ipv6Addr>().unwrap().octets();
    PacketBuilder::ethernet2(RS1_MAC.0, crate::wire::vrrp::GROUP6_MAC)
        .ipv6(ll3, crate::wire::vrrp::GROUP6.octets(), 255)
        .write(
            &mut adv6,
            etherparse::IpNumber(112),
            &[0x31, 1, 100, 0, 0, 100, 0, 0],
        )
        .unwrap();
    assert_eq!(l.w.process(&mut adv6, 0, 3), Verdict::Kernel);
    // Master again: the VIP is answered.
    l.w.set_standby(false);
    assert_eq!(l.w.process(&mut q2, 0, 4), Verdict::Tx(0));
}

#[test]
fn two_box_local_real_server_and_peer_frames() {
    const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x03]);
    let mut cfg = config("Rr", (1, 1));
    cfg.ports[0].kernel = Some(KernelPathConfig {
        iface: "lbd-lan0".into(),
        rate_pps: 100,
    });
    // The second real server is this director itself (localnode).
    cfg.services[0].real_servers[1].address = Ipv4Addr::from(DIR).into();
    cfg.peer_directors = vec![PEER_MAC];
    assert_eq!(crate::config::validate(&cfg), vec![]);
    let mut l = lab_from(cfg, true);
    assert!(
        l.neigh
            .entries()
            .iter()
            .all(|e| e.ip != Ipv4Addr::from(DIR)),
        "no ARP for our own address"
    );
    let mut verdicts = Vec::new();
    for i in 0..4u16 {
        let orig = syn(40000 + 2 * i);
        let mut f = orig.clone();
        let v = l.w.process(&mut f, 0, 0);
        if v == (Verdict::Local {
            port: 0,
            peer: false,
        }) {
            assert_eq!(f, orig, "delivered locally untouched");
        }
        verdicts.push(v);
    }
    assert_eq!(
        verdicts,
        vec![
            Verdict::Tx(0),
            Verdict::Local {
                port: 0,
                peer: false
            },
            Verdict::Tx(0),
            Verdict::Local {
                port: 0,
                peer: false
            }
        ]
    );
    // The local connection keeps going to the local host.
    let mut a = ack(40002);
    assert_eq!(
        l.w.process(&mut a, 0, 1),
        Verdict::Local {
            port: 0,
            peer: false
        }
    );
    // A frame the peer director scheduled to us: local, not scheduled,
    // even in standby.
    l.w.set_standby(true);
    let mut p = tcp_frame(50000, 80, true, false, false, false);
    p[6..12].copy_from_slice(&PEER_MAC.0);
    let orig = p.clone();
    assert_eq!(
        l.w.process(&mut p, 0, 2),
        Verdict::Local {
            port: 0,
            peer: true
        }
    );
    assert_eq!(p, orig);
    assert_eq!(l.w.stats().get(Counter::ConnCreated), 4, "not scheduled");
}

#[test]
fn without_a_kernel_path_own_address_traffic_is_dropped() {
    let mut l = kernel_lab(false);
    let mut f = to_dir("tcp");
    assert_eq!(
        l.w.process(&mut f, 0, 0),
        Verdict::Drop(Counter::DropIpv4UnknownProtocol)
    );
    let mut f = to_dir("echo-reply");
    assert_eq!(
        l.w.process(&mut f, 0, 0),
        Verdict::Drop(Counter::DropIcmpUnsupported)
    );
}

#[test]
fn arp_replies_to_the_kernel_are_learned_and_passed_on() {
    let mut l = kernel_lab(true);
    let mut f = vec![0u8; 60];
    let n = crate::wire::arp::build_arp(
        &mut f,
        arp::ARP_REPLY,
        RS1_MAC,
        DIR_MAC,
        RS1_MAC,
        Ipv4Addr::new(198, 18, 0, 11),
        DIR_MAC,
        Ipv4Addr::from(DIR),
    );
    f.truncate(n.max(60));
    assert_eq!(l.w.process(&mut f, 0, 7), Verdict::Kernel);
    assert_eq!(l.w.stats().get(Counter::ArpLearned), 1);
    // Requests for our address are answered by the dataplane.
    let mut q = vec![0u8; 60];
    crate::wire::arp::build_arp(
        &mut q,
        arp::ARP_REQUEST,
        RS1_MAC,
        MacAddr::BROADCAST,
        RS1_MAC,
        Ipv4Addr::new(198, 18, 0, 11),
        MacAddr::ZERO,
        Ipv4Addr::from(DIR),
    );
    assert_eq!(l.w.process(&mut q, 0, 8), Verdict::Tx(0));
}
