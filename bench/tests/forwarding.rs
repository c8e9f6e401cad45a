//! `--forward dr|tunnel|nat|nat-reply`: every method runs a small workload
//! with every packet forwarded by that method and counted as such; the
//! frames the worker sends are what the method should make of them, and
//! the harness's restore gives the next pass the frame as received. No
//! timing is asserted.

use etherparse::{IpNumber, NetSlice, SlicedPacket, TransportSlice};
use lbbench::forward::{self, Forward, INT_MAC, NAT_RS_PORT};
use lbbench::frames::{self, build_segment, client_of, FrameBuf, Segment, TCP_ACK};
use lbbench::headroom::HeadroomBuf;
use lbbench::{precreate_mapped, run, trace, Params, Report, Workload};
use lbcore::conntrack::keyspace::EntryKind;
use lbcore::conntrack::{ConnKey, ConnState};
use lbcore::pipeline::{PacketBuf, Verdict};

const METHODS: [Forward; 4] = [
    Forward::Dr,
    Forward::Tunnel,
    Forward::Nat,
    Forward::NatReply,
];

fn established(f: Forward, flows: u64, packets: u64) -> Report {
    let mut p = Params::new(Workload::Established, flows, packets);
    p.forward = f;
    run(&p).unwrap_or_else(|e| panic!("{f:?}: {e}"))
}

/// The counter a method's forwarded packets are counted in.
fn counter_name(f: Forward) -> &'static str {
    match f {
        Forward::Dr => "forwarded_dr",
        Forward::Tunnel => "forwarded_tunnel",
        Forward::Nat => "forwarded_nat",
        Forward::NatReply => "forwarded_nat_reply",
    }
}

#[test]
fn established_forwards_every_packet_by_its_method() {
    for f in METHODS {
        // 100 flows, 1000 packets: ten passes over the trace, wrapping
        // inside bursts, so every restore must give a frame that forwards.
        let r = established(f, 100, 1000);
        assert_eq!((r.packets, r.tx, r.refused), (1000, 1000, 0), "{f:?}");
        assert_eq!(r.conns_created, 0, "{f:?}");
        assert_eq!(r.forward, f);
        // Nothing but forwarding counted. A table at its capacity (DR and
        // tunnel hold exactly `flows`) engages the SYN-flood defence at the
        // first housekeeping, which changes no verdict here.
        let got: Vec<(&str, u64)> = r
            .counters
            .iter()
            .map(|(k, v)| (*k, *v))
            .filter(|(k, _)| *k != "flood_defence_engaged")
            .collect();
        let mut want = vec![(counter_name(f), 1000), ("rx_frames", 1000)];
        want.sort();
        assert_eq!(got, want, "{f:?}");
        // Requests count towards the real servers ("in"), replies from them.
        let (rs_in, rs_out) = if f == Forward::NatReply {
            (0, 1000)
        } else {
            (1000, 0)
        };
        assert_eq!(
            (r.rs_packets_in, r.rs_packets_out),
            (rs_in, rs_out),
            "{f:?}"
        );
        // NAT: two entries (request, reply) per connection in the shared table.
        let entries = if f.is_nat() { 200 } else { 100 };
        assert_eq!(r.table_len, entries, "{f:?}");
    }
}

#[test]
fn one_frame_path_forwards_by_every_method_too() {
    for f in METHODS {
        let mut p = Params::new(Workload::Established, 64, 500);
        p.forward = f;
        p.one_frame = true;
        p.burst = 7;
        let r = run(&p).unwrap_or_else(|e| panic!("{f:?}: {e}"));
        assert_eq!(r.tx, 500, "{f:?}");
        assert_eq!(r.counters.get(counter_name(f)), Some(&500), "{f:?}");
    }
}

#[test]
fn new_and_mixed_create_connections_by_every_request_method() {
    for f in [Forward::Dr, Forward::Tunnel, Forward::Nat] {
        let mut p = Params::new(Workload::New, 1000, 1000);
        p.forward = f;
        let r = run(&p).unwrap_or_else(|e| panic!("{f:?}: {e}"));
        assert_eq!(r.tx + r.refused, 1000, "{f:?}");
        assert_eq!(r.conns_created, r.tx, "{f:?}");
        assert_eq!(r.counters.get(counter_name(f)), Some(&r.tx), "{f:?}");
        assert_eq!(r.counters.get("conn_created"), Some(&r.tx), "{f:?}");
        let count = |c: &str| r.counters.get(c).copied().unwrap_or(0);
        assert_eq!(count("drop_conn_table_full"), r.refused, "{f:?}");
        // A NAT table filled with half-open connections (two entries each)
        // may evict some when the SYN-flood defence engages; each one
        // evicted leaves with both its entries.
        let live = r.conns_created - count("conn_embryonic_evicted");
        let per_conn = if f.is_nat() { 2 } else { 1 };
        assert_eq!(r.table_len as u64, per_conn * live, "{f:?}");
        let drops: Vec<_> = r
            .counters
            .keys()
            .filter(|k| k.starts_with("drop_") && **k != "drop_conn_table_full")
            .collect();
        assert!(drops.is_empty(), "{f:?}: {drops:?}");

        let mut p = Params::new(Workload::Mixed, 500, 1000);
        p.forward = f;
        let r = run(&p).unwrap_or_else(|e| panic!("{f:?}: {e}"));
        assert_eq!(r.tx + r.refused, 1000, "{f:?}");
        assert!(
            r.conns_created > 50 && r.conns_created < 150,
            "{f:?}: {r:?}"
        );
        assert_eq!(r.counters.get(counter_name(f)), Some(&r.tx), "{f:?}");
    }
}

#[test]
fn nat_reply_is_refused_for_new_connections() {
    for w in [Workload::New, Workload::Mixed] {
        let mut p = Params::new(w, 100, 100);
        p.forward = Forward::NatReply;
        assert!(run(&p).is_err(), "{w:?}");
    }
}

/// One established flow of method `f`: the worker, and the client's ACK
/// (or for nat-reply, the real server's) as a frame.
fn one_flow(f: Forward) -> (lbbench::forward::Director, FrameBuf, u32) {
    let mut d = forward::director(f, 16, 1, 3);
    let live = precreate_mapped(&mut d.worker, f, d.nat.as_deref(), 1, 0, |j| j).unwrap();
    let (ip, port) = client_of(live.flows[0] as u64);
    let mut fb = FrameBuf::ZERO;
    let s = if f == Forward::NatReply {
        forward::reply_segment(live.rs[0], ip, port, TCP_ACK)
    } else {
        Segment::to_vip(ip, port, TCP_ACK)
    };
    build_segment(&mut fb, &s);
    (d, fb, live.rs.first().copied().unwrap_or(0))
}

/// IPv4 header and TCP checksums of `frame`, checked by etherparse.
fn checked(frame: &[u8]) -> (etherparse::Ipv4Header, etherparse::TcpHeader) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        panic!("not TCP")
    };
    let t = tcp.to_header();
    assert_eq!(t.checksum, t.calc_checksum_ipv4(&h, tcp.payload()).unwrap());
    (h, t)
}

#[test]
fn precreated_nat_connections_are_established_both_ways() {
    let mut d = forward::director(Forward::Nat, 64, 1, 3);
    let table = d.nat.clone().unwrap();
    let live = precreate_mapped(&mut d.worker, Forward::Nat, Some(&table), 40, 0, |j| j).unwrap();
    assert_eq!(table.len(), 80, "a request and a reply entry each");
    for (&no, &rs) in live.flows.iter().zip(&live.rs) {
        let (ip, port) = client_of(no as u64);
        let request = ConnKey {
            proto: 6,
            client_ip: ip,
            client_port: port,
            vip: u32::from(frames::VIP),
            vport: frames::VPORT,
        };
        let e = table.lookup(&request, table.hash(&request), 0).unwrap();
        assert_eq!(e.state, ConnState::Established as u8, "flow {no}");
        let route = d.worker.snapshot().route(e.rs).unwrap();
        assert_eq!(
            u32::from(route.addr),
            rs,
            "the SYN-ACK came from its real server"
        );
        let reply = EntryKind::Reply.mark(ConnKey {
            proto: 6,
            client_ip: rs,
            client_port: NAT_RS_PORT,
            vip: ip,
            vport: port,
        });
        assert!(table.lookup(&reply, table.hash(&reply), 0).is_some());
    }
}

#[test]
fn tunnel_frames_grow_and_are_restored() {
    let (mut d, fb, _) = one_flow(Forward::Tunnel);
    let mut bufs = [HeadroomBuf::from_frame(&fb)];
    for pass in 0..3 {
        assert_eq!(d.worker.process_buf(&mut bufs[0], 0, 1), Verdict::Tx(0));
        let out = bufs[0].data();
        // Ethernet + outer IPv4 (IPIP) + the client's packet unchanged.
        assert_eq!(out.len(), 14 + 20 + 40, "pass {pass}");
        let outer = etherparse::Ipv4HeaderSlice::from_slice(&out[14..]).unwrap();
        assert_eq!(outer.protocol(), IpNumber::IPV4);
        assert_eq!(outer.source(), frames::DIR_IP.octets());
        assert_eq!(&out[34..], &fb.frame()[14..54]);
        trace::restore_encap(&mut bufs, &[]);
        assert_eq!(bufs[0].data(), fb.frame(), "pass {pass}");
    }
}

#[test]
fn nat_request_is_rewritten_to_the_real_server_and_restored() {
    let (mut d, fb, rs) = one_flow(Forward::Nat);
    let mut frames = [fb];
    let pristine = [fb];
    for pass in 0..3 {
        let v = d.worker.process(frames[0].frame_mut(), 0, 1);
        assert_eq!(v, Verdict::Tx(1), "pass {pass}");
        let (ip, tcp) = checked(frames[0].frame());
        assert_eq!(ip.destination, rs.to_be_bytes());
        assert_eq!(tcp.destination_port, NAT_RS_PORT);
        assert_eq!(ip.time_to_live, 63);
        assert_eq!(&frames[0].0[6..12], &INT_MAC, "out of the internal port");
        trace::restore_by_copy(&mut frames, &pristine);
        assert_eq!(frames[0].0, fb.0);
    }
}

#[test]
fn nat_reply_is_rewritten_to_come_from_the_vip() {
    let (mut d, fb, _) = one_flow(Forward::NatReply);
    let mut f = fb;
    assert_eq!(d.worker.process(f.frame_mut(), 1, 1), Verdict::Tx(0));
    let (ip, tcp) = checked(f.frame());
    assert_eq!(ip.source, frames::VIP.octets());
    assert_eq!(tcp.source_port, frames::VPORT);
    assert_eq!(&f.0[0..6], &frames::CLIENT_MAC, "back to the client");
    assert_eq!(&f.0[6..12], &frames::DIR_MAC);
}

#[test]
fn dr_frames_get_their_macs_back() {
    let (mut d, fb, _) = one_flow(Forward::Dr);
    let mut frames = [fb];
    assert_eq!(
        d.worker.process(frames[0].frame_mut(), 0, 1),
        Verdict::Tx(0)
    );
    assert_ne!(frames[0].0, fb.0);
    trace::restore_macs(&mut frames, &[]);
    assert_eq!(frames[0].0, fb.0);
}
