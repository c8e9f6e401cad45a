//! `--ipv6`: the pipeline over IPv6 (DR, or NAT66 with `--forward nat` /
//! `nat-reply`), measured like IPv4.
//!
//! Set-up: the port gets `address6` 2001:db8::2/64, the service is
//! [2001:db8::100]:80 under wlc with the real servers 2001:db8::1:1… (DR,
//! weights 1, 2, 3 in turn), every neighbour resolved. NAT66: a second
//! port (`address6` 2001:db8:1::1/64) with the real servers
//! 2001:db8:1::1:1… on port 8080 (`forward: Nat`), the shared NAT66 table
//! sized for twice the flows; `nat` times the clients' requests (in on port 0,
//! out on port 1), `nat-reply` the real servers' replies (in on 1, out
//! on 0). Clients are
//! 2001:db8:64::/64 + n, 60 000 ports each (flow `i` as for IPv4). A frame
//! is Ethernet + IPv6 (no extension headers) + TCP without options or
//! payload: 74 bytes, in a buffer of two cache lines. IPv6 takes the full
//! classifier (the burst's fast classifier is IPv4's), so these figures
//! are that path's.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbcore::config::Config;
use lbcore::conntrack::shared::SharedConnTable;
use lbcore::conntrack::{ConnTable, Tick};
use lbcore::counters::{Counter, WorkerStats};
use lbcore::neigh::NeighTable;
use lbcore::pipeline::{
    ClientMacs6, Nat6State, PacketBuf, Registry, SliceBuf, Snapshot, Verdict, Worker,
    MAX_REAL_SERVERS, MAX_SERVICES,
};
use lbcore::wire::MacAddr;

use crate::frames::{CLIENT_MAC, DIR_MAC, TCP_ACK, TCP_SYN};
use crate::trace::{Trace, TraceFrame};
use crate::{clock, permutation, Forward, Frames, Params, Prepared, Rng, Workload};

/// Bytes of a frame: 14 + 40 + 20.
pub const FRAME_LEN: usize = 74;
/// Offset of the TCP flags byte.
const TCP_FLAGS_AT: usize = 14 + 40 + 13;

const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const VPORT: u16 = 80;
/// NAT66: the real servers' port, and the internal port's MAC.
const RS_PORT: u16 = 8080;
const INT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];

/// One frame buffer: two cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Frame6(pub [u8; 128]);

/// The worker's view of a [`Frame6`]: a fixed buffer like `SliceBuf`, but
/// its own type, so that the worker's code is instantiated for it apart
/// from the IPv4 runs' (sharing one instance, the IPv4 loop lost the
/// inlining of the burst stage: +34 instructions per packet in callgrind,
/// an artefact of the benchmark, not of the packet path).
pub struct Buf6<'a>(SliceBuf<'a>);

impl PacketBuf for Buf6<'_> {
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.0.prepend(n)
    }
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n)
    }
    fn truncate(&mut self, len: usize) -> bool {
        self.0.truncate(len)
    }
}

impl TraceFrame for Frame6 {
    type Buf<'a> = Buf6<'a>;

    #[inline]
    fn frame(&self) -> &[u8] {
        &self.0[..FRAME_LEN]
    }
    #[inline]
    fn buf(&mut self) -> Buf6<'_> {
        Buf6(SliceBuf(&mut self.0[..FRAME_LEN]))
    }
    fn sent_flags(&self) -> u8 {
        self.0[TCP_FLAGS_AT]
    }
}

/// DR: the client's MAC addresses back.
#[inline(never)]
fn restore_macs(frames: &mut [Frame6], _: &[Frame6]) {
    for f in frames {
        f.0[0..6].copy_from_slice(&DIR_MAC);
        f.0[6..12].copy_from_slice(&CLIENT_MAC);
    }
}

/// The client address and port of flow `i`.
fn client_of(i: u64) -> (Ipv6Addr, u16) {
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0));
    (
        Ipv6Addr::from(base + 1 + (i / 60_000) as u128),
        1024 + (i % 60_000) as u16,
    )
}

/// The address of real server `i` (NAT66: on the internal subnet).
fn real_server(i: usize, nat: bool) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, u16::from(nat), 0, 0, 0, 1, 1 + i as u16)
}

/// The MAC the benchmark gives a real server (by its last two bytes).
fn rs_mac(ip: std::net::IpAddr) -> MacAddr {
    let o = match ip {
        std::net::IpAddr::V6(a) => a.octets(),
        std::net::IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    };
    MacAddr([0x02, 0, 0x66, 0, o[14], o[15]])
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    acc
}

/// Write a client→VIP:80 TCP segment with `flags` from `src:sport`.
fn build(buf: &mut Frame6, src: Ipv6Addr, sport: u16, flags: u8) {
    build_segment(
        buf,
        (CLIENT_MAC, DIR_MAC),
        (src, sport),
        (VIP, VPORT),
        flags,
    );
}

/// Write a TCP segment with `flags` between the (address, port) pairs,
/// from and to the MACs `macs` (source, destination).
fn build_segment(
    buf: &mut Frame6,
    macs: ([u8; 6], [u8; 6]),
    (src, sport): (Ipv6Addr, u16),
    (dst, dport): (Ipv6Addr, u16),
    flags: u8,
) {
    let b = &mut buf.0;
    *b = [0; 128];
    b[0..6].copy_from_slice(&macs.1);
    b[6..12].copy_from_slice(&macs.0);
    b[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let ip = &mut b[14..54];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&20u16.to_be_bytes());
    ip[6] = 6;
    ip[7] = 64;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
    let mut pseudo = [0u8; 40];
    pseudo[0..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    pseudo[34..36].copy_from_slice(&20u16.to_be_bytes());
    pseudo[39] = 6;
    let tcp = &mut b[54..74];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
    if flags & TCP_ACK != 0 {
        tcp[8..12].copy_from_slice(&0x2000_0001u32.to_be_bytes());
    }
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let c = fold(sum16(tcp, sum16(&pseudo, 0)));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

/// The IPv6 configuration: one wlc service, `n` DR real servers (or NAT66
/// ones on a second port).
pub fn config(n: usize, nat: bool) -> Config {
    let method = if nat {
        format!("port: Some({RS_PORT}), forward: Nat, ")
    } else {
        String::new()
    };
    let reals: String = (0..n)
        .map(|i| {
            format!(
                "(address: \"{}\", {method}weight: {}),",
                real_server(i, nat),
                i % 3 + 1
            )
        })
        .collect();
    let int_port = if nat {
        r#"(name: "int", device: "net_null1", address: "10.1.0.1/16",
            address6: Some("2001:db8:1::1/64")),"#
    } else {
        ""
    };
    ron::from_str(&format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "10.0.0.2/16",
                     address6: Some("2001:db8::2/64")), {int_port}],
            services: [(vip: "{VIP}", port: {VPORT}, scheduler: Wlc, real_servers: [{reals}])],
        )"#
    ))
    .expect("benchmark configuration parses")
}

/// A worker with room for `capacity` IPv6 connections (its table is sized
/// like the IPv4 one; NAT66: the shared NAT66 table, two entries each) and
/// every real server resolved.
fn director(capacity: usize, seed: u64, reals: usize, nat: bool) -> Worker {
    let cfg = config(reals, nat);
    let neigh = Arc::new(NeighTable::new(MAX_REAL_SERVERS));
    let mut reg = Registry::default();
    let macs: &[MacAddr] = if nat {
        &[MacAddr(DIR_MAC), MacAddr(INT_MAC)]
    } else {
        &[MacAddr(DIR_MAC)]
    };
    let snap = Snapshot::build(&cfg, macs, &mut reg, &neigh, 1).expect("benchmark snapshot builds");
    for e in neigh.entries() {
        neigh.learn(e.slot, e.ip, rs_mac(e.ip), 0);
    }
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let w = Worker::new(Arc::new(snap), ConnTable::new(capacity, seed), stats, neigh);
    if !nat {
        return w;
    }
    // Two entries per connection, and room to spare: a window of 64-byte
    // IPv6 slots fills sooner than IPv4's (every new flow must fit).
    let table = Arc::new(SharedConnTable::new(capacity.saturating_mul(4), seed));
    w.with_nat6(Nat6State::new(
        table,
        Arc::new(ClientMacs6::new(1 << 16)),
        0,
        1,
    ))
}

/// Open `n` flows (SYN, ACK), skipping the ones the table refuses; their
/// flow numbers and (NAT66) the real server each went to.
fn precreate(w: &mut Worker, p: &Params, now: Tick) -> Result<Vec<(u64, Ipv6Addr)>, String> {
    let mut f = Frame6([0; 128]);
    let out = p.forward.request_ports().1;
    let mut flows = Vec::with_capacity(p.flows as usize);
    let mut i = 0u64;
    while (flows.len() as u64) < p.flows {
        if i >= p.flows.saturating_mul(2) + 1000 {
            return Err(format!("could not open {} flows in {i} attempts", p.flows));
        }
        let no = p.flow_no(i);
        i += 1;
        let (ip, port) = client_of(no);
        build(&mut f, ip, port, TCP_SYN);
        match w.process_buf(&mut f.buf(), 0, now) {
            Verdict::Tx(p) if p == out => {}
            Verdict::Drop(Counter::DropConnTableFull) => continue,
            v => return Err(format!("pre-create SYN: expected Tx({out}), got {v:?}")),
        }
        // NAT66: the SYN went out to its real server's address.
        let rs = Ipv6Addr::from(<[u8; 16]>::try_from(&f.0[14 + 24..14 + 40]).unwrap());
        build(&mut f, ip, port, TCP_ACK);
        match w.process_buf(&mut f.buf(), 0, now) {
            Verdict::Tx(p) if p == out => flows.push((no, rs)),
            v => return Err(format!("pre-create ACK: expected Tx({out}), got {v:?}")),
        }
    }
    Ok(flows)
}

/// [`crate::prepare`] for an IPv6 run (DR or NAT66; established or new).
pub(crate) fn prepare(p: &Params, setup: Instant, rng: &mut Rng) -> Result<Prepared, String> {
    if p.forward == Forward::Tunnel {
        return Err("--ipv6 measures DR and NAT66 (not the IPv6 tunnel)".into());
    }
    let nat = p.forward.is_nat();
    let (w, trace, packets) = match p.workload {
        Workload::Established => {
            let mut w = director(p.flows as usize, p.seed, p.real_servers, nat);
            let live = precreate(&mut w, p, 0)?;
            let perm = permutation(p.flows as usize, rng);
            let mut frames = vec![Frame6([0; 128]); p.flows as usize];
            for (fb, &j) in frames.iter_mut().zip(&perm) {
                let (no, rs) = live[j as usize];
                let (ip, port) = client_of(no);
                if p.forward == Forward::NatReply {
                    let macs = (rs_mac(rs.into()).0, INT_MAC);
                    build_segment(fb, macs, (rs, RS_PORT), (ip, port), TCP_ACK);
                } else {
                    build(fb, ip, port, TCP_ACK);
                }
            }
            let trace = if nat {
                // NAT66 rewrites addresses, ports, hop limit and checksum.
                Trace::replayed_by_copy(frames)
            } else {
                Trace::replayed(frames, restore_macs)
            };
            (w, trace, p.packets)
        }
        Workload::New => {
            let w = director(p.flows as usize, p.seed, p.real_servers, nat);
            let mut frames = vec![Frame6([0; 128]); p.flows as usize];
            for (i, fb) in frames.iter_mut().enumerate() {
                let (ip, port) = client_of(p.flow_no(i as u64));
                build(fb, ip, port, TCP_SYN);
            }
            (w, Trace::once(frames), p.flows)
        }
        Workload::Mixed => return Err("--ipv6: established or new".into()),
    };
    Ok(Prepared {
        p: p.clone(),
        w,
        nat: None,
        trace: Frames::V6(trace),
        packets,
        setup,
        tpns: clock::calibrate(Duration::from_millis(50)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_runs_forward_every_packet() {
        for forward in [Forward::Dr, Forward::Nat, Forward::NatReply] {
            for workload in [Workload::Established, Workload::New] {
                if forward == Forward::NatReply && workload == Workload::New {
                    continue;
                }
                let mut p = Params::new(workload, 2000, 10_000);
                p.ipv6 = true;
                p.forward = forward;
                let r = crate::run(&p).unwrap();
                if workload == Workload::New {
                    // NAT66's shared table has a window of 8 slots and no
                    // second one: at this fill a random placement refuses
                    // a connection (its SYN dropped) in about one run of
                    // five; whether the test's seed gives one depends on
                    // the hash. Every other SYN is forwarded and creates
                    // its connection.
                    let refused = r.packets - r.tx;
                    assert!(refused <= 3, "{forward:?}: {refused} refused");
                    assert_eq!(r.conns_created, r.tx, "{forward:?}");
                } else {
                    assert_eq!(r.tx, r.packets, "{forward:?} {workload:?}");
                }
            }
        }
    }
}
