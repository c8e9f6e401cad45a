//! The benchmark still works: every workload runs briefly and every packet
//! gets the verdict it should. No timing is asserted.

use lbbench::frames::{self, build_tcp, client_of, FrameBuf, TCP_SYN};
use lbbench::{run, Params, Workload};

#[test]
fn frames_are_valid_tcp_by_an_independent_parser() {
    let mut f = FrameBuf::ZERO;
    let (ip, port) = client_of(123_456);
    build_tcp(&mut f, ip, port, TCP_SYN);
    let p = etherparse::SlicedPacket::from_ethernet(f.frame_mut()).unwrap();
    let Some(etherparse::NetSlice::Ipv4(v4)) = &p.net else {
        panic!("not IPv4")
    };
    let h = v4.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(h.source, ip.to_be_bytes());
    assert_eq!(h.destination, frames::VIP.octets());
    let Some(etherparse::TransportSlice::Tcp(tcp)) = &p.transport else {
        panic!("not TCP")
    };
    assert!(tcp.syn() && !tcp.ack());
    assert_eq!(tcp.source_port(), port);
    assert_eq!(tcp.destination_port(), frames::VPORT);
    let sum = tcp
        .to_header()
        .calc_checksum_ipv4(&h, tcp.payload())
        .unwrap();
    assert_eq!(sum, tcp.checksum());
    assert_eq!(f.frame_mut().len(), 60);
}

#[test]
fn client_tuples_are_distinct() {
    let mut seen = std::collections::HashSet::new();
    for i in (0..2_000_000u64).step_by(7) {
        assert!(seen.insert(client_of(i)));
    }
}

#[test]
fn established_forwards_every_ack() {
    for flows in [64, 1000] {
        let mut p = Params::new(Workload::Established, flows, 1000);
        p.burst = 32;
        let r = run(&p).unwrap();
        assert_eq!(r.packets, 1000);
        assert_eq!(r.tx, 1000);
        assert_eq!(r.refused, 0);
        assert_eq!(r.conns_created, 0);
        assert_eq!(r.table_len as u64, flows);
        assert_eq!(r.bursts, 1000u64.div_ceil(32));
    }
}

#[test]
fn established_reuses_the_trace_many_times() {
    // 100 flows, 1000 packets: ten passes over the trace, wrapping inside
    // bursts; the MAC restore must make every pass forward again.
    let r = run(&Params::new(Workload::Established, 100, 1000)).unwrap();
    assert_eq!(r.tx, 1000);
}

#[test]
fn new_creates_a_connection_per_syn() {
    let r = run(&Params::new(Workload::New, 1000, 1000)).unwrap();
    assert_eq!(r.packets, 1000);
    assert_eq!(r.tx + r.refused, 1000);
    assert_eq!(r.conns_created, r.tx);
    assert_eq!(r.table_len as u64, r.conns_created);
    // A small table fills without refusals (checked: 0 of 1000).
    assert_eq!(r.refused, 0);
}

#[test]
fn mixed_sends_acks_and_syns() {
    let mut p = Params::new(Workload::Mixed, 500, 1000);
    p.syn_percent = 10;
    let r = run(&p).unwrap();
    assert_eq!(r.packets, 1000);
    assert_eq!(r.tx + r.refused, 1000);
    assert!(r.conns_created > 50 && r.conns_created < 150, "{r:?}");
    assert_eq!(r.table_len as u64, 500 + r.conns_created);
}

#[test]
fn prefetch_and_odd_bursts_change_nothing_but_speed() {
    let mut p = Params::new(Workload::Established, 1000, 1000);
    p.prefetch = true;
    p.burst = 7;
    let r = run(&p).unwrap();
    assert_eq!(r.tx, 1000);
    assert_eq!(r.bursts, 1000u64.div_ceil(7));
}

#[test]
fn too_few_flows_for_a_burst_is_refused() {
    // Fewer flows than a burst would process the same frame twice in a
    // burst; refused up front.
    assert!(run(&Params::new(Workload::Established, 8, 100)).is_err());
}

#[test]
fn fill_reports_refusals() {
    let f = lbbench::fill(1000, 1000, 1);
    assert_eq!(f.final_len as u64 + f.refused, 1000);
}

#[test]
fn any_number_of_real_servers_works() {
    for n in [1, 7, 300] {
        let mut p = Params::new(Workload::New, 500, 500);
        p.real_servers = n;
        let r = run(&p).unwrap();
        assert_eq!(r.tx, 500, "{n} real servers");
    }
    let mut p = Params::new(Workload::New, 500, 500);
    p.real_servers = 0;
    assert!(run(&p).is_err());
}
