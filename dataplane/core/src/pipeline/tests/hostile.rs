//! Hostile frames that a lax director would still forward: impossible TCP
//! flag combinations, "land" packets, malformed IPv4 options, group or null
//! source MACs. Each is dropped, counted by its reason, and creates no
//! connection.

use super::*;

/// `frame` (an IPv4 TCP frame) with `opts` inserted as IPv4 options (a
/// multiple of 4 bytes): IHL, total length and checksum fixed up.
fn with_options(frame: &[u8], opts: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let mut f = frame[..ETH + 20].to_vec();
    f.extend_from_slice(opts);
    f.extend_from_slice(&frame[ETH + 20..]);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
    ip.set_header_len(20 + opts.len());
    let total = ip.total_len() + opts.len() as u16;
    ip.set_total_len(total);
    ip.fill_checksum();
    f
}

fn flags_frame(sport: u16, flags: u8) -> Vec<u8> {
    let mut f = syn(sport);
    f[ETH + 20 + 13] = flags;
    f
}

#[test]
fn impossible_tcp_flags_create_nothing() {
    let mut l = lab("Rr", (1, 1), true);
    for (i, flags) in [
        0x06u8, // SYN+RST
        0x03,   // SYN+FIN
        0x3f,   // every flag ("Christmas tree")
        0xff,   // every flag, ECN bits too
        0x00,   // no flag at all
        0x01,   // FIN without ACK
        0x29,   // FIN+PSH+URG ("Xmas" scan)
    ]
    .into_iter()
    .enumerate()
    {
        let mut f = flags_frame(41000 + i as u16, flags);
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(Counter::DropTcpBadFlags),
            "flags {flags:#04x}"
        );
    }
    assert_eq!(l.w.stats().get(Counter::DropTcpBadFlags), 7);
    assert_eq!(l.w.stats().get(Counter::ConnCreated), 0);
    assert_eq!(l.w.table().len(), 0, "no SYN_RECV slot taken");
    // The valid combinations still pass (PSH, ECE and CWR are ignored).
    let mut f = flags_frame(42000, 0x02 | 0x40 | 0x80); // SYN with ECE+CWR
    assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
    let mut f = flags_frame(42000, 0x18); // PSH+ACK
    assert_eq!(l.w.process(&mut f, 0, 1), Verdict::Tx(0));
    let mut f = flags_frame(42000, 0x11); // FIN+ACK
    assert_eq!(l.w.process(&mut f, 0, 2), Verdict::Tx(0));
}

#[test]
fn flag_table_matches_the_rule() {
    // Independent statement of the rule: RST alone or with ACK; SYN alone
    // or with ACK; FIN only with ACK; URG only with ACK or SYN; something
    // must be set; SYN excludes RST and FIN.
    for bits in 0u8..=255 {
        let (fin, syn, rst, ack, urg) = (
            bits & 1 != 0,
            bits & 2 != 0,
            bits & 4 != 0,
            bits & 0x10 != 0,
            bits & 0x20 != 0,
        );
        let want = if syn {
            // SYN, SYN+ACK, SYN+URG; never with RST or FIN.
            !(rst || fin || (urg && ack))
        } else if rst {
            !(fin || urg)
        } else {
            // FIN, URG or nothing at all need ACK.
            ack
        };
        assert_eq!(
            TcpFlags(bits).is_valid_combination(),
            want,
            "flags {bits:#04x}"
        );
    }
}

#[test]
fn land_packets_are_dropped() {
    let mut l = lab("Rr", (1, 1), true);
    // From the VIP to the VIP.
    let mut f = syn(40000);
    f[ETH + 12..ETH + 16].copy_from_slice(&VIP);
    Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    assert_eq!(
        l.w.process(&mut f, 0, 0),
        Verdict::Drop(Counter::DropIpv4Land)
    );
    // A ping "from" the VIP is not answered either.
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
        .ipv4(VIP, VIP, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut f, b"x")
        .unwrap();
    assert_eq!(
        l.w.process(&mut f, 0, 0),
        Verdict::Drop(Counter::DropIpv4Land)
    );
    assert_eq!(l.w.table().len(), 0);
}

#[test]
fn malformed_ipv4_options_are_dropped_valid_ones_forwarded() {
    let mut l = lab("Rr", (1, 1), true);
    let good = syn(40000);
    for (opts, why) in [
        (&[0x83u8, 0x00, 0x00, 0x00][..], "zero option length"),
        (&[0x83, 0x01, 0x00, 0x00][..], "option length 1"),
        (&[0x83, 0x09, 0x04, 0x00][..], "option runs past the header"),
        (&[0x01, 0x01, 0x01, 0x07][..], "length byte missing"),
    ] {
        let mut f = with_options(&good, opts);
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(Counter::DropIpv4BadOptions),
            "{why}"
        );
    }
    assert_eq!(l.w.table().len(), 0);
    // NOPs, a well-formed record-route option and END are fine.
    let rr = [0x01, 0x07, 0x07, 0x04, 0, 0, 0, 0, 0x00, 0, 0, 0];
    let orig = with_options(&good, &rr);
    let mut f = orig.clone();
    assert_eq!(l.w.process(&mut f, 0, 0), Verdict::Tx(0));
    assert_eq!(&f[12..], &orig[12..], "forwarded untouched");
    assert_eq!(l.w.stats().get(Counter::Ipv4WithOptions), 1);
}

#[test]
fn group_or_null_source_macs_are_never_answered() {
    let mut l = lab("Rr", (1, 1), true);
    for bad in [
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
        MacAddr::BROADCAST,
        MacAddr::ZERO,
    ] {
        // An ARP request for the VIP whose sender is a group address.
        let mut f = vec![0u8; 60];
        arp::build_arp(
            &mut f,
            arp::ARP_REQUEST,
            CLIENT_MAC,
            MacAddr::BROADCAST,
            bad,
            Ipv4Addr::from(CLIENT),
            MacAddr::ZERO,
            Ipv4Addr::from(VIP),
        );
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(Counter::DropEthBadSource),
            "ARP sender {bad}"
        );
        // The same from an Ethernet source that is a group address.
        let mut f = vec![0u8; 60];
        arp::build_arp(
            &mut f,
            arp::ARP_REQUEST,
            bad,
            MacAddr::BROADCAST,
            CLIENT_MAC,
            Ipv4Addr::from(CLIENT),
            MacAddr::ZERO,
            Ipv4Addr::from(VIP),
        );
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(Counter::DropEthBadSource),
            "Ethernet source {bad}"
        );
        // A ping to the VIP: the reply would go to the group.
        let mut f = Vec::new();
        PacketBuilder::ethernet2(bad.0, DIR_MAC.0)
            .ipv4(CLIENT, VIP, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut f, b"x")
            .unwrap();
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(Counter::DropEthBadSource)
        );
        // A SYN: no connection (NAT would learn the MAC as the client's).
        let mut f = syn(40000);
        f[6..12].copy_from_slice(&bad.0);
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(Counter::DropEthBadSource)
        );
    }
    assert_eq!(l.w.stats().get(Counter::ArpReplied), 0);
    assert_eq!(l.w.stats().get(Counter::IcmpEchoReplied), 0);
    assert_eq!(l.w.table().len(), 0);
}

#[test]
fn a_nat_reply_without_a_known_client_mac_is_dropped_not_guessed() {
    use crate::conntrack::sync::{SyncKind, SyncRecord};
    let cfg: Config = ron::from_str(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
            services: [(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                (address: "198.18.0.11", forward: Nat)])],
        )"#,
    )
    .unwrap();
    let mut lab = nat_lab_from(&cfg, &[DIR_MAC], RS1_MAC, 1);
    let mut w = lab.workers.pop().unwrap();
    // The peer's record carries no usable client MAC (zero, or a group
    // address, which is not trusted either).
    for mac in [[0u8; 6], [0x01, 0, 0x5e, 0, 0, 1]] {
        let rec = SyncRecord {
            kind: SyncKind::NatConn,
            proto: 6,
            state: ConnState::Established as u8,
            client_ip: Ipv4Addr::from(CLIENT),
            client_port: 40000,
            vip: Ipv4Addr::from(VIP),
            vport: 80,
            rs_ip: Ipv4Addr::new(198, 18, 0, 11),
            rs_port: 80,
            timeout_ms: 60_000,
            client_mac: mac,
            client_via_port: 0,
        };
        crate::pipeline::sync::apply(&lab.table, &lab.clients, &lab.snap, &rec, 0).unwrap();
        let mut reply = Vec::new();
        PacketBuilder::ethernet2(RS1_MAC.0, DIR_MAC.0)
            .ipv4([198, 18, 0, 11], CLIENT, 64)
            .tcp(80, 40000, 1, 65535)
            .ack(1)
            .write(&mut reply, b"x")
            .unwrap();
        assert_eq!(
            w.process(&mut reply, 0, 1),
            Verdict::Drop(Counter::DropNatNoClientMac),
            "client MAC {mac:02x?}"
        );
    }
}

#[test]
fn hostile_frames_are_dropped_by_reason() {
    let mut l = lab("Rr", (1, 1), true);
    let good = syn(40000);
    let mut cases: Vec<(Vec<u8>, Counter)> = Vec::new();
    cases.push((good[..10].to_vec(), Counter::DropEthTruncated));
    cases.push((good[..14 + 12].to_vec(), Counter::DropIpv4Truncated));
    let mut f = good.clone();
    f[14] = 0x65; // version 6
    cases.push((f, Counter::DropIpv4BadVersion));
    let mut f = good.clone();
    f[14] = 0x44; // IHL 4
    cases.push((f, Counter::DropIpv4BadHeaderLen));
    let mut f = good.clone();
    f[16] = 0x0f; // total length 4000+
    cases.push((f, Counter::DropIpv4BadTotalLen));
    let mut f = good.clone();
    f[24] ^= 0xff; // checksum
    cases.push((f, Counter::DropIpv4BadChecksum));
    let mut f = good.clone();
    f[20] = 0x20; // MF
    Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    cases.push((f, Counter::DropIpv4Fragment));
    let mut f = good.clone();
    f[22] = 0; // TTL 0
    Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    cases.push((f, Counter::DropIpv4TtlExpired));
    let mut f = good.clone();
    f[30..34].copy_from_slice(&[198, 18, 0, 99]); // not a VIP
    Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    cases.push((f, Counter::DropIpv4NotLocal));
    let mut f = good.clone();
    f[26..30].copy_from_slice(&[127, 0, 0, 1]);
    Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    cases.push((f, Counter::DropIpv4BadSource));
    let mut f = good.clone();
    f[0..6].copy_from_slice(&RS1_MAC.0);
    cases.push((f, Counter::DropNotOurMac));
    let mut f = good.clone();
    f[6..12].copy_from_slice(&DIR_MAC.0);
    cases.push((f, Counter::DropOwnFrame));
    let mut f = good.clone();
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    cases.push((f, Counter::DropUnknownEthertype));
    let mut f = good.clone();
    f[46] = 0x20; // TCP data offset 2
    cases.push((f, Counter::DropTcpMalformed));
    cases.push((
        tcp_frame(40000, 81, true, false, false, false),
        Counter::DropNoService,
    ));
    for (mut f, want) in cases {
        let before = l.w.stats().get(want);
        assert_eq!(
            l.w.process(&mut f, 0, 0),
            Verdict::Drop(want),
            "{}",
            want.name()
        );
        assert_eq!(l.w.stats().get(want), before + 1);
    }
    assert_eq!(l.w.stats().get(Counter::FwdDr), 0);
}
