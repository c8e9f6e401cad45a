//! The forwarding method a run measures, and the director set up for it.
//!
//! * **dr** and **tunnel**: one port (10.0.0.2/16), the service's real
//!   servers 10.0.1.1… on that port's network, `forward: Dr` or `Tunnel`.
//! * **nat** and **nat-reply**: two ports, the external one as above and an
//!   internal one (10.1.0.1/16) with the real servers 10.1.1.1… behind it,
//!   `forward: Nat` with port 8080; the worker gets a shared NAT table and
//!   the clients' return paths, as lbd gives each worker. `nat` times the
//!   clients' requests (in on port 0, out on port 1), `nat-reply` the real
//!   servers' replies (in on port 1, out on port 0).
//!
//! The frames are only ever in memory; the addresses follow the rest of the
//! benchmark's (see [`crate::frames`]).

use std::net::Ipv4Addr;
use std::sync::Arc;

use lbcore::config::Config;
use lbcore::conntrack::shared::SharedConnTable;
use lbcore::conntrack::ConnTable;
use lbcore::counters::{Counter, WorkerStats};
use lbcore::neigh::{ClientMacs, NeighTable};
use lbcore::pipeline::nat::NatState;
use lbcore::pipeline::{Registry, Snapshot, Worker, MAX_REAL_SERVERS, MAX_SERVICES};
use lbcore::wire::MacAddr;
use serde::Serialize;

use crate::frames::{self, Segment, DIR_MAC};

/// The internal port's MAC (NAT only).
pub const INT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];
/// The internal port's address (NAT only; the port is 10.1.0.1/16).
pub const INT_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
/// The real servers' port in NAT mode.
pub const NAT_RS_PORT: u16 = 8080;
/// Slots of the clients' return-path table, as lbd sizes it.
const CLIENT_MAC_SLOTS: usize = 1 << 16;

/// How the service's real servers are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Forward {
    /// Direct routing: MAC rewrite.
    Dr,
    /// IPIP: the frame grows by an outer IPv4 header.
    Tunnel,
    /// NAT, the clients' requests: destination address and port rewritten.
    Nat,
    /// NAT, the real servers' replies: source rewritten back to the VIP.
    NatReply,
}

impl Forward {
    /// The method as the configuration names it.
    fn config_name(self) -> &'static str {
        match self {
            Forward::Dr => "Dr",
            Forward::Tunnel => "Tunnel",
            Forward::Nat | Forward::NatReply => "Nat",
        }
    }

    pub fn is_nat(self) -> bool {
        matches!(self, Forward::Nat | Forward::NatReply)
    }

    /// The port a client's request arrives on, and the one it leaves by.
    pub fn request_ports(self) -> (u16, u16) {
        if self.is_nat() {
            (0, 1)
        } else {
            (0, 0)
        }
    }

    /// The port the timed frames arrive on, and the one they must leave by.
    pub fn timed_ports(self) -> (u16, u16) {
        match self {
            Forward::NatReply => (1, 0),
            f => f.request_ports(),
        }
    }

    /// The counter of a timed frame forwarded.
    pub fn counter(self) -> Counter {
        match self {
            Forward::Dr => Counter::FwdDr,
            Forward::Tunnel => Counter::FwdTunnel,
            Forward::Nat => Counter::FwdNat,
            Forward::NatReply => Counter::FwdNatReply,
        }
    }

    /// The address of real server `i` (250 per /24).
    pub fn real_server(self, i: usize) -> Ipv4Addr {
        let net = if self.is_nat() { 1 } else { 0 };
        Ipv4Addr::new(10, net, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
    }
}

/// The MAC the benchmark gives the real server at `ip`.
pub fn rs_mac(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0, 0x11, o[1], o[2], o[3]]
}

/// The real server `rs`'s reply (from its NAT port) to the client `client`
/// on `cport`, as the director receives it on the internal port.
pub fn reply_segment(rs: u32, client: u32, cport: u16, flags: u8) -> Segment {
    Segment {
        dst_mac: INT_MAC,
        src_mac: rs_mac(rs.into()),
        src: rs,
        dst: client,
        sport: NAT_RS_PORT,
        dport: cport,
        flags,
    }
}

/// The benchmark's configuration: one TCP service 10.0.0.100:80 under wlc
/// with `n` real servers (weights 1, 2, 3 in turn) forwarded by `f`.
pub fn config(f: Forward, n: usize) -> Config {
    let rs_port = if f.is_nat() {
        format!("port: Some({NAT_RS_PORT}), ")
    } else {
        String::new()
    };
    let mut reals = String::new();
    for i in 0..n {
        reals.push_str(&format!(
            "(address: \"{}\", {rs_port}weight: {}, forward: {}),",
            f.real_server(i),
            i % 3 + 1,
            f.config_name()
        ));
    }
    // NAT: the internal port, and a core for its worker (so that the
    // configuration is one lbd would accept).
    let (int_port, eal) = if f.is_nat() {
        (
            format!(r#"(name: "int0", device: "net_null1", address: "{INT_IP}/16"),"#),
            r#"eal: (cores: "0-2"),"#,
        )
    } else {
        (String::new(), "")
    };
    let text = format!(
        r#"(
            ports: [(name: "lan0", device: "net_null0", address: "{}/16"), {int_port}],
            {eal}
            services: [(vip: "{}", port: {}, scheduler: Wlc, real_servers: [{reals}])],
        )"#,
        frames::DIR_IP,
        frames::VIP,
        frames::VPORT
    );
    ron::from_str(&text).expect("benchmark configuration parses")
}

/// A worker set up for `f`, and the NAT table it shares (NAT only).
pub struct Director {
    pub worker: Worker,
    pub nat: Option<Arc<SharedConnTable>>,
}

/// A worker for `f` with room for `capacity` connections, `reals` real
/// servers and every real server's MAC learned. NAT connections live in
/// the shared table (two entries each); the worker's own table is then
/// left small, as it holds none of them.
pub fn director(f: Forward, capacity: usize, seed: u64, reals: usize) -> Director {
    let cfg = config(f, reals);
    let neigh = Arc::new(NeighTable::new(MAX_REAL_SERVERS));
    let mut reg = Registry::default();
    let macs: &[MacAddr] = if f.is_nat() {
        &[MacAddr(DIR_MAC), MacAddr(INT_MAC)]
    } else {
        &[MacAddr(DIR_MAC)]
    };
    let snap = Snapshot::build(&cfg, macs, &mut reg, &neigh, 1).expect("benchmark snapshot builds");
    for e in neigh.entries() {
        let std::net::IpAddr::V4(ip) = e.ip else {
            unreachable!("the IPv4 benchmark has IPv4 neighbours only")
        };
        neigh.learn(e.slot, ip, MacAddr(rs_mac(ip)), 0);
    }
    assert!(
        neigh.entries().iter().all(|e| e.mac.is_some()),
        "every neighbour resolved"
    );
    let stats = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
    let local = if f.is_nat() { 16 } else { capacity };
    let w = Worker::new(Arc::new(snap), ConnTable::new(local, seed), stats, neigh);
    if !f.is_nat() {
        return Director {
            worker: w,
            nat: None,
        };
    }
    let table = Arc::new(SharedConnTable::new(capacity.saturating_mul(2), seed));
    let clients = Arc::new(ClientMacs::new(CLIENT_MAC_SLOTS));
    Director {
        worker: w.with_nat(NatState::new(table.clone(), clients, 0, 1)),
        nat: Some(table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_builds_a_director() {
        for f in [
            Forward::Dr,
            Forward::Tunnel,
            Forward::Nat,
            Forward::NatReply,
        ] {
            let cfg = config(f, 7);
            assert!(
                lbcore::config::validate(&cfg).is_empty(),
                "{f:?}: {:?}",
                lbcore::config::validate(&cfg)
            );
            let d = director(f, 100, 1, 7);
            assert_eq!(d.nat.is_some(), f.is_nat());
            assert_eq!(d.worker.snapshot().ports.len(), 1 + f.is_nat() as usize);
        }
    }
}
