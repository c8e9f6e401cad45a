//! What the director answers itself: ARP for VIPs and its own addresses
//! (and learning real servers' MACs from replies), pings to a VIP.

use super::*;

#[test]
fn answers_arp_for_vip_and_own_address_only() {
    let mut l = lab("Rr", (1, 1), true);
    for (target, answered) in [
        (VIP, true),
        (DIR, true),
        ([198, 18, 0, 11], false),
        ([198, 18, 0, 99], false),
    ] {
        let mut f = vec![0u8; 60];
        arp::build_arp(
            &mut f,
            arp::ARP_REQUEST,
            CLIENT_MAC,
            MacAddr::BROADCAST,
            CLIENT_MAC,
            Ipv4Addr::from(CLIENT),
            MacAddr::ZERO,
            Ipv4Addr::from(target),
        );
        let v = l.w.process(&mut f, 0, 0);
        if answered {
            assert_eq!(v, Verdict::Tx(0));
            assert_eq!(dst_mac(&f), CLIENT_MAC);
            let a = ArpPacket::new_checked(&f[ETH..]).unwrap();
            assert_eq!(a.operation(), arp::ARP_REPLY);
            assert_eq!(a.sender_mac(), DIR_MAC);
            assert_eq!(a.sender_ip(), Ipv4Addr::from(target));
            assert_eq!(a.target_mac(), CLIENT_MAC);
            assert_eq!(a.target_ip(), Ipv4Addr::from(CLIENT));
        } else {
            assert_eq!(v, Verdict::Drop(Counter::DropArpNotForUs), "{target:?}");
        }
    }
}

#[test]
fn learns_real_server_mac_from_arp_reply() {
    let mut l = lab("Rr", (1, 1), false);
    let rs1 = Ipv4Addr::new(198, 18, 0, 11);
    let mut f = arp_reply_to_dir(RS1_MAC, rs1);
    assert_eq!(l.w.process(&mut f, 0, 5), Verdict::Consumed);
    let slot = l
        .neigh
        .entries()
        .into_iter()
        .find(|e| e.ip == rs1)
        .unwrap()
        .slot;
    assert_eq!(l.neigh.mac(slot), Some(RS1_MAC));
}

#[test]
fn ping_to_vip_is_answered_with_valid_checksums() {
    let mut l = lab("Rr", (1, 1), true);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(7, 9)
        .write(&mut f, b"abcdefgh")
        .unwrap();
    assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
    let p = SlicedPacket::from_ethernet(&f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
        panic!()
    };
    assert_eq!(ip.header().source(), VIP);
    assert_eq!(ip.header().destination(), CLIENT);
    let ipb = Ipv4Packet::new_checked(&f[ETH..]).unwrap();
    assert!(ipb.verify_checksum());
    let icmp = Icmpv4Packet::new_checked(ipb.payload()).unwrap();
    assert_eq!(icmp.msg_type(), icmp::ICMP_ECHO_REPLY);
    assert!(icmp.verify_checksum());
    assert_eq!(dst_mac(&f), CLIENT_MAC);
}
