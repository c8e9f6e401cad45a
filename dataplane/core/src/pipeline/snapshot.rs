//! The snapshot: the configuration compiled into the form workers read.
//!
//! A snapshot is immutable. The control plane builds a new one for every
//! change and publishes it; a worker checks for a new one once per burst and
//! switches at that boundary, so no packet ever sees half a change and the
//! hot path takes no lock.
//!
//! Real servers and services get *stable ids* from the [`Registry`]: the same
//! (service, real server) keeps its id across snapshots, so per-worker
//! counters and the connections that point at it survive a reload.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{routing, Config, Forward, Persistence, Protocol, RealServerConfig, Scheduler};
use crate::conntrack::{FloodPolicy, TimeoutsMs};
use crate::neigh::NeighTable;
use crate::wire::MacAddr;

/// Most real servers (over all services) one director tracks.
pub const MAX_REAL_SERVERS: usize = 4096;
/// Most services one director serves.
pub const MAX_SERVICES: usize = 1024;
/// Neighbour slots (real servers plus room for churn).
pub const MAX_NEIGHBOURS: usize = MAX_REAL_SERVERS;

/// A director interface as the pipeline sees it: a port, or an 802.1Q
/// VLAN on a port (`ports[].vlans`). Frames are processed as arriving on
/// an interface and leave by one; the I/O loop tags what leaves by a VLAN
/// ([`Worker::vlan_egress`](super::Worker::vlan_egress)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The port's name, or `PORT.ID` for a VLAN.
    pub name: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub mac: MacAddr,
    /// IP MTU of the link (tunnelled packets must fit it with their outer header).
    pub mtu: u16,
    /// The port has a kernel exception path (`ports[].kernel`): traffic to
    /// its address that the dataplane does not answer goes to the kernel.
    pub kernel: bool,
    /// The (physical) port index that carries it: its own for a port.
    pub phys: u16,
    /// Its VLAN id; 0 for a port itself (untagged).
    pub vlan: u16,
    /// Its IPv6 address and subnet (`ports[].address6`; VLANs have none).
    pub addr6: Option<Ipv6Addr>,
    pub prefix6: u8,
    /// Its IPv6 link-local address, fe80::/64 with the modified EUI-64
    /// interface identifier of its MAC (RFC 4291 §2.5.1, appendix A): every
    /// IPv6 interface has one, and Neighbour Discovery on the link may use
    /// it. Answered by NDP and ping like `addr6`.
    pub link_local: Ipv6Addr,
}

/// The link-local address of an interface with MAC `mac`: fe80::/64 and
/// the modified EUI-64 identifier (the MAC with ff:fe in its middle and the
/// universal/local bit flipped).
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

impl PortInfo {
    pub fn subnet_contains(&self, ip: Ipv4Addr) -> bool {
        let m = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix as u32)
        };
        (u32::from(ip) & m) == (u32::from(self.addr) & m)
    }

    /// Whether `ip` is on the interface's IPv6 subnet (`address6`).
    pub fn subnet6_contains(&self, ip: Ipv6Addr) -> bool {
        self.addr6.is_some_and(|a| {
            let m = crate::wire::ipv6::prefix_mask(self.prefix6);
            (u128::from(ip) & m) == (u128::from(a) & m)
        })
    }

    /// Whether `ip` is one of the interface's own IPv6 addresses (its
    /// `address6` or its link-local address).
    pub fn owns6(&self, ip: Ipv6Addr) -> bool {
        ip == self.link_local || self.addr6 == Some(ip)
    }
}

/// A real server inside a compiled service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// Stable id (index into per-worker real-server stats).
    pub id: u32,
    /// Its address (either family; how it is reached is its [`RsRoute`]).
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub forward: Forward,
    /// In service by its health check (or not checked). A server that is
    /// not keeps no persistent clients (their templates are ignored).
    pub up: bool,
    /// The service's fallback ("sorry") server: scheduled only while every
    /// real server is down (see [`Snapshot::apply_health`]).
    pub fallback: bool,
}

/// The health of a real server, as the control plane's checkers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsHealth {
    /// In service (or not checked).
    Up,
    /// Failed its check. `quiesce`: weight 0 only (existing connections and
    /// persistent clients stay); otherwise out of scheduling altogether.
    /// `expire`: its existing connections end at their next packet.
    Down { quiesce: bool, expire: bool },
}

/// How to reach a real server: looked up by id for every forwarded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsRoute {
    /// Egress port index.
    pub port: u16,
    /// Neighbour slot holding its MAC.
    pub neigh: u32,
    /// How packets reach it (DR: MACs rewritten; Tunnel: IPIP to `addr`).
    pub forward: Forward,
    /// Its address (the outer destination of tunnelled packets); 0.0.0.0
    /// for an IPv6 real server (reached by DR: its MAC is all it needs).
    pub addr: Ipv4Addr,
    /// Its port (NAT rewrites the destination port to it).
    pub rport: u16,
    /// Down with `expire_connections`: packets of its existing DR/tunnel
    /// connections are dropped (`drop_real_server_down`) and the entries
    /// removed, so that the client's next SYN is scheduled afresh.
    pub dead: bool,
    /// Out of service by its health check (removed, not quiesced): a SYN
    /// that finds one of its half-open connections (a client's
    /// retransmission or port reuse) is scheduled afresh instead of
    /// refreshing the entry, as IPVS's `expire_nodest_conn` does for a
    /// destination that is no longer available.
    pub down: bool,
    /// The director's own host (a real server whose address is a port's):
    /// frames go, untouched, to that port's kernel interface.
    pub local: bool,
}

/// A static route (`routes`), compiled: the network, and the gateway's
/// interface and neighbour slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    /// Network and mask, host order.
    pub net: u32,
    pub mask: u32,
    /// Interface (index into `ports`) the gateway is on.
    pub port: u16,
    /// Neighbour slot holding the gateway's MAC.
    pub neigh: u32,
}

/// The outer source addresses of tunnelled packets (`tunnel.source_pool`):
/// the addresses `base | (x & mask)` (host order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePool {
    pub base: u32,
    pub mask: u32,
}

/// A compiled virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Stable id (index into per-worker service stats).
    pub id: u32,
    /// 0.0.0.0 in a service group (its members are in the lookup map).
    pub vip: IpAddr,
    /// `vip` as the IPv4 paths use it (host order; 0 for an IPv6 VIP):
    /// NAT and ICMP translation restore it on every reply without a
    /// family test.
    pub vip_v4: u32,
    /// 0 in a service group.
    pub port: u16,
    pub protocol: Protocol,
    /// A service group's mark: its persistence templates are keyed by the
    /// mark, not by VIP and port, so that all its members share them.
    pub fwmark: Option<u32>,
    pub scheduler: Scheduler,
    pub reals: Vec<RealServer>,
    /// The scheduler's lookup tables (sh, mh), indexed like `reals`.
    pub tables: crate::sched::Tables,
    /// Client affinity across connections (see `pipeline::persist`).
    pub persistence: Option<Persistence>,
    /// The prefix length persistence applies to a client address of the
    /// VIP's family (0..=32 for IPv4, 0..=128 for IPv6: `-M` as IPVS
    /// takes it); meaningless without `persistence`.
    pub persist_prefix: u8,
    /// Adopt mid-flow TCP segments of unknown connections (`sloppy_tcp`).
    pub sloppy_tcp: bool,
    /// ECMP mode (`services[].ecmp`, validated to schedule by mh): adopt
    /// mid-flow TCP segments of unknown connections by the consistent hash.
    pub ecmp: bool,
    /// The scheduler maps a client to a real server by a hash (sh, mh), so
    /// a packet can be forwarded right without state (the SYN-flood
    /// defence's stateless fallback).
    pub consistent_hash: bool,
}

/// (protocol, VIP, port, mark): what identifies a service (a group: its
/// mark, the rest 0).
type ServiceKey = (u8, IpAddr, u16, u32);
/// (service, real server address, real server port).
type RealKey = (ServiceKey, IpAddr, u16);

/// Stable ids for services, real servers and neighbours, owned by the
/// control plane and carried from one snapshot build to the next.
///
/// A build works on the registry without touching anything shared; the
/// neighbour slots it assigns or frees take effect only at [`Registry::commit`]
/// (after the change has been persisted). To roll a change back, build on a
/// clone and drop it.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    services: HashMap<ServiceKey, u32>,
    reals: HashMap<RealKey, u32>,
    neighbours: HashMap<IpAddr, u32>,
    /// Where the next id search starts: ids are handed out round robin so a
    /// removed real server's id (and any stale state keyed by it) is not
    /// reused until all others have been.
    next_real: u32,
    pending_assign: Vec<(u32, IpAddr)>,
    pending_release: Vec<u32>,
}

/// A limit of the fixed-size tables was exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("too many services (at most {MAX_SERVICES})")]
    TooManyServices,
    #[error("too many real servers (at most {MAX_REAL_SERVERS} over all services)")]
    TooManyRealServers,
    #[error("real server {0} is not on any port's subnet")]
    NoPortFor(IpAddr),
    /// A NAT real server of the other address family than its VIP (NAT
    /// translates within a family: NAT44 or NAT66); validation refuses it,
    /// so this is a caller that skipped it.
    #[error(
        "NAT real server {0} is not of its VIP's address family (no NAT between IPv4 and IPv6)"
    )]
    NatFamily(IpAddr),
}

/// The id already given to `key`, or the first free one from `*next`
/// (wrapping below `max`).
fn alloc_id<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, u32>,
    key: K,
    max: usize,
    next: &mut u32,
) -> Option<u32> {
    if let Some(&id) = map.get(&key) {
        return Some(id);
    }
    let used: std::collections::HashSet<u32> = map.values().copied().collect();
    let start = *next;
    let id = (0..max as u32)
        .map(|i| (start + i) % max as u32)
        .find(|i| !used.contains(i))?;
    *next = (id + 1) % max as u32;
    map.insert(key, id);
    Some(id)
}

impl Registry {
    /// Forget ids of things absent from a build; neighbour slots to free
    /// are remembered until [`Registry::commit`].
    fn retain(&mut self, services: &[ServiceKey], reals: &[RealKey], neigh: &[IpAddr]) {
        self.services.retain(|k, _| services.contains(k));
        self.reals.retain(|k, _| reals.contains(k));
        let mut gone = Vec::new();
        self.neighbours.retain(|ip, slot| {
            let keep = neigh.contains(ip);
            if !keep {
                gone.push(*slot);
            }
            keep
        });
        self.pending_release.extend(gone);
    }

    /// Make the neighbour slots of the last build take effect: bind the new
    /// ones (the control thread will resolve them) and free the unused ones.
    pub fn commit(&mut self, table: &NeighTable) {
        for slot in self.pending_release.drain(..) {
            table.release(slot as usize);
        }
        for (slot, ip) in self.pending_assign.drain(..) {
            table.assign(slot as usize, ip);
        }
    }
}

/// The neighbour slot of `ip`: the one it has in `registry`, or a free one
/// (bound in `neigh` at [`Registry::commit`]).
fn neighbour_slot(
    registry: &mut Registry,
    neigh: &NeighTable,
    ip: IpAddr,
) -> Result<u32, SnapshotError> {
    if let Some(&slot) = registry.neighbours.get(&ip) {
        return Ok(slot);
    }
    let used: std::collections::HashSet<u32> = registry.neighbours.values().copied().collect();
    let slot = (0..neigh.capacity() as u32)
        .find(|i| !used.contains(i))
        .ok_or(SnapshotError::TooManyRealServers)?;
    registry.neighbours.insert(ip, slot);
    registry.pending_assign.push((slot, ip));
    Ok(slot)
}

/// The immutable, compiled configuration.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Increases with every published change.
    pub generation: u64,
    /// The interfaces: the ports (their index is the DPDK port's), then
    /// their VLANs.
    pub ports: Vec<PortInfo>,
    /// How many of `ports` are ports (the rest are VLANs).
    pub phys_ports: usize,
    /// (port, VLAN id) → interface index, for tagged frames received.
    vlans: Vec<(u16, u16, u16)>,
    /// Static routes, longest prefix first (NAT replies to clients behind
    /// a router).
    pub static_routes: Vec<StaticRoute>,
    /// The other director's MACs in a two-box setup (`peer_directors`).
    pub peer_directors: Vec<MacAddr>,
    /// Connection sync is configured: misses look for synced entries.
    pub sync_enabled: bool,
    /// VRRP's extra addresses (`vrrp.addresses`, host order) and the port
    /// each is on: answered by ARP while master.
    pub vrrp_addresses: Vec<(u32, u16)>,
    /// The IPv6 instance's extra addresses (`vrrp6.addresses`) and the
    /// interface each is on: answered by NDP and ping while master.
    pub vrrp_addresses6: Vec<(u128, u16)>,
    /// Some route is dead (set by [`Snapshot::apply_health`]): only then
    /// does a hit look at its route's `dead` flag.
    pub any_dead: bool,
    /// Some service has persistence: only then does a hit look at its
    /// service's (`Worker::persist_touch`).
    pub any_persistence: bool,
    pub services: Vec<Service>,
    pub timeouts: TimeoutsMs,
    /// The SYN-flood defence's settings.
    pub flood: FloodPolicy,
    /// Indexed by real-server id; `None` for unused ids.
    pub routes: Vec<Option<RsRoute>>,
    /// Neighbour slot by address (for learning from ARP).
    pub neighbours: HashMap<u32, u32>,
    /// Neighbour slot by IPv6 address (for learning from NDP).
    pub neighbours6: HashMap<u128, u32>,
    /// IPv6 VIPs (sorted), for NDP and ICMPv6 echo.
    vips6: Vec<u128>,
    /// Some IPv6 service or port address is configured: the worker keeps
    /// an IPv6 connection table.
    pub has_ipv6: bool,
    /// IPv6 real servers' addresses by real-server id (0: none; empty
    /// without IPv6 real servers): a tunnel's outer destination.
    rs_addr6: Vec<u128>,
    /// Service index by (protocol, IPv4 VIP, port), as a small
    /// open-addressed map.
    service_map: FlatMap,
    /// Service index by (IPv6 VIP, port, protocol): the IPv6 services'
    /// map, kept apart so the IPv4 lookup stays one `u64` probe (empty
    /// until IPv6 services are configured; not read by the packet path
    /// yet).
    service_map6: FlatMap6,
    /// VIPs (sorted, host order) for ARP and ICMP echo.
    vips: Vec<u32>,
    /// The lowest VIP and the distance to the highest (one compare
    /// tests a range so kept); (0, 0), holding 0.0.0.0 only, when there
    /// are none (no VIP, so `is_vip` says no for it).
    vip_range: (u32, u32),
    /// Port addresses (host order), by port index.
    own: Vec<u32>,
    /// The lowest and highest port address ((1, 0): none): a packet's
    /// address is almost never ours, and two compares say so before the
    /// scan of `own` (the test runs on every service packet and NAT reply).
    own_range: (u32, u32),
    /// The smallest range holding every VIP and port address, as (lowest,
    /// highest − lowest): a client's address lies outside it, and one
    /// compare says so before the VIP and own-address tests (stage 1's
    /// source test). (0, 0), holding 0.0.0.0 only, when there are neither.
    vip_own_hull: (u32, u32),
    /// By an IPv4 address's first octet: whether an address with that
    /// octet may be a bad source (0/8, 127/8, 224/3), a VIP or one of our
    /// addresses ([`Snapshot::is_suspect_source`]). A client's octet is
    /// almost never one: one byte read answers for it.
    suspect_octet: [bool; 256],
    /// Outer source addresses for tunnelled flows; `None`: the egress port's.
    pub tunnel_pool: Option<SourcePool>,
    /// Some IPv4 real server forwards by NAT: replies must be looked for.
    pub has_nat: bool,
    /// Some IPv6 real server forwards by NAT (NAT66): IPv6 replies must be
    /// looked for.
    pub has_nat6: bool,
    /// Service index by stable service id (`u16::MAX`: none).
    service_by_id: Vec<u16>,
}

impl Snapshot {
    /// Compile `cfg` (already validated) with port MACs discovered at start,
    /// and bind its neighbours in `neigh` at once (start-up and tests).
    pub fn build(
        cfg: &Config,
        port_macs: &[MacAddr],
        registry: &mut Registry,
        neigh: &NeighTable,
        generation: u64,
    ) -> Result<Snapshot, SnapshotError> {
        let s = Snapshot::prepare(cfg, port_macs, registry, neigh, generation)?;
        registry.commit(neigh);
        Ok(s)
    }

    /// Compile `cfg` without touching anything shared: neighbour slots for
    /// new real servers are chosen in `registry` and bound in `neigh` only
    /// by `registry.commit(neigh)`. A failed change drops the registry clone
    /// it was prepared on, and nothing happened.
    pub fn prepare(
        cfg: &Config,
        port_macs: &[MacAddr],
        registry: &mut Registry,
        neigh: &NeighTable,
        generation: u64,
    ) -> Result<Snapshot, SnapshotError> {
        let interfaces = cfg.interfaces();
        let phys_ports = cfg.ports.len().min(port_macs.len());
        let ports: Vec<PortInfo> = interfaces
            .iter()
            .filter(|i| i.port < phys_ports)
            .map(|i| {
                let p = &cfg.ports[i.port];
                PortInfo {
                    name: i.name.clone(),
                    addr: i.address.addr,
                    prefix: i.address.prefix,
                    mac: p.mac.unwrap_or(port_macs[i.port]),
                    mtu: p.mtu,
                    // The kernel path carries the port's untagged traffic.
                    kernel: p.kernel.is_some() && i.vlan.is_none(),
                    phys: i.port as u16,
                    vlan: i.vlan.unwrap_or(0),
                    addr6: p.address6.filter(|_| i.vlan.is_none()).map(|c| c.addr),
                    prefix6: p.address6.map_or(0, |c| c.prefix),
                    link_local: link_local(p.mac.unwrap_or(port_macs[i.port])),
                }
            })
            .collect();
        // Interface index in `cfg.interfaces()` → in `ports` (the same
        // unless fewer MACs than ports were given: those ports are left out).
        let mut kept = 0;
        let index_of: Vec<Option<usize>> = interfaces
            .iter()
            .map(|i| {
                (i.port < phys_ports).then(|| {
                    kept += 1;
                    kept - 1
                })
            })
            .collect();
        let vlans = ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.vlan != 0)
            .map(|(i, p)| (p.phys, p.vlan, i as u16))
            .collect();
        if cfg.services.len() > MAX_SERVICES {
            return Err(SnapshotError::TooManyServices);
        }
        let mut services = Vec::with_capacity(cfg.services.len());
        let mut routes = vec![None; MAX_REAL_SERVERS];
        let mut neighbours = HashMap::new();
        let mut neighbours6 = HashMap::new();
        let mut rs_addr6: Vec<u128> = Vec::new();
        let mut svc_keys = Vec::new();
        let mut rs_keys = Vec::new();
        let mut neigh_ips = Vec::new();
        for s in &cfg.services {
            let vip = s.vip;
            let skey = (s.protocol.ip_proto(), vip, s.port, s.fwmark.unwrap_or(0));
            svc_keys.push(skey);
            let id = alloc_id(&mut registry.services, skey, MAX_SERVICES, &mut 0)
                .ok_or(SnapshotError::TooManyServices)?;
            let mut reals = Vec::with_capacity(s.real_servers.len() + 1);
            // The fallback server is a member like the others, at weight 0
            // and not up until apply_health finds every real server down.
            let fallback = s.fallback.map(|f| RealServerConfig {
                address: f.address,
                port: f.port,
                weight: 0,
                forward: f.forward,
                health_check: None,
            });
            let members = s
                .real_servers
                .iter()
                .map(|r| (r, false))
                .chain(fallback.iter().map(|r| (r, true)));
            for (r, is_fallback) in members {
                let port = r.port.unwrap_or(s.port);
                let rkey = (skey, r.address, port);
                rs_keys.push(rkey);
                let rid = alloc_id(
                    &mut registry.reals,
                    rkey,
                    MAX_REAL_SERVERS,
                    &mut registry.next_real,
                )
                .ok_or(SnapshotError::TooManyRealServers)?;
                if r.forward == Forward::Nat && r.address.is_ipv6() != vip.is_ipv6() {
                    return Err(SnapshotError::NatFamily(r.address));
                }
                let (egress, via, address, local) = match r.address {
                    IpAddr::V4(address) => {
                        // DR and NAT real servers are on a subnet of ours;
                        // tunnel ones may be behind a gateway (`routes`),
                        // whose MAC the packets then go to.
                        let hop = match r.forward {
                            Forward::Tunnel => routing::next_hop(cfg, &interfaces, address),
                            Forward::Dr | Forward::Nat => routing::connected(&interfaces, address)
                                .map(|interface| routing::NextHop {
                                    interface,
                                    via: None,
                                }),
                        }
                        .and_then(|h| Some((index_of[h.interface]?, h.via)))
                        .ok_or(SnapshotError::NoPortFor(r.address))?;
                        let local = ports.iter().any(|p| p.addr == address);
                        (hop.0, hop.1.map(IpAddr::V4), address, local)
                    }
                    IpAddr::V6(a6) => {
                        // IPv6 real servers are reached by DR, tunnel or
                        // NAT on a port's IPv6 subnet (`address6`).
                        rs_addr6.resize(MAX_REAL_SERVERS, 0);
                        rs_addr6[rid as usize] = u128::from(a6);
                        let egress = ports
                            .iter()
                            .position(|p| p.subnet6_contains(a6))
                            .ok_or(SnapshotError::NoPortFor(r.address))?;
                        let local = ports.iter().any(|p| p.owns6(a6));
                        (egress, None, Ipv4Addr::UNSPECIFIED, local)
                    }
                };
                let slot = if local {
                    // Our own host needs no MAC resolution.
                    u32::MAX
                } else {
                    let ip = via.unwrap_or(r.address);
                    let slot = neighbour_slot(registry, neigh, ip)?;
                    neigh_ips.push(ip);
                    match ip {
                        IpAddr::V4(a) => neighbours.insert(u32::from(a), slot),
                        IpAddr::V6(a) => neighbours6.insert(u128::from(a), slot),
                    };
                    slot
                };
                routes[rid as usize] = Some(RsRoute {
                    port: egress as u16,
                    neigh: slot,
                    forward: r.forward,
                    addr: address,
                    rport: port,
                    dead: false,
                    down: false,
                    local,
                });
                reals.push(RealServer {
                    id: rid,
                    addr: r.address,
                    port,
                    weight: r.weight,
                    forward: r.forward,
                    up: !is_fallback,
                    fallback: is_fallback,
                });
            }
            services.push(Service {
                id,
                vip,
                vip_v4: match vip {
                    IpAddr::V4(a) => u32::from(a),
                    IpAddr::V6(_) => 0,
                },
                port: s.port,
                protocol: s.protocol,
                fwmark: s.fwmark,
                scheduler: s.scheduler,
                tables: tables_for(s.scheduler, &reals),
                reals,
                persistence: s.persistence,
                // A group's clients are of its VIPs' family (one per mark).
                persist_prefix: s.persistence.map_or(0, |p| {
                    p.client_prefix(cfg.service_vips(s).first().copied().unwrap_or(vip))
                }),
                // A group's UDP members have no mid-flow segments to adopt.
                sloppy_tcp: s.sloppy_tcp && (s.is_group() || s.protocol == Protocol::Tcp),
                ecmp: s.ecmp && s.scheduler == Scheduler::Mh,
                consistent_hash: matches!(s.scheduler, Scheduler::Sh | Scheduler::Mh),
            });
        }
        // Gateways of `routes`: resolved like neighbours (NAT replies to
        // clients behind them; tunnel real servers' gateways are above).
        let mut static_routes = Vec::with_capacity(cfg.routes.len());
        for r in &cfg.routes {
            let Some(port) = routing::connected(&interfaces, r.via).and_then(|i| index_of[i])
            else {
                continue;
            };
            let slot = neighbour_slot(registry, neigh, r.via.into())?;
            neigh_ips.push(r.via.into());
            neighbours.insert(u32::from(r.via), slot);
            static_routes.push((
                r.prefix.prefix,
                StaticRoute {
                    net: u32::from(r.prefix.addr) & r.prefix.netmask(),
                    mask: r.prefix.netmask(),
                    port: port as u16,
                    neigh: slot,
                },
            ));
        }
        static_routes.sort_by_key(|r| std::cmp::Reverse(r.0));
        let static_routes = static_routes.into_iter().map(|(_, r)| r).collect();
        registry.retain(&svc_keys, &rs_keys, &neigh_ips);
        // One entry per (protocol, VIP, port) a service takes: a group's
        // port ranges are spelled out (validation bounds them by
        // MAX_GROUP_PORTS), so the lookup stays one probe sequence.
        // IPv4 keys go to the u64 map the fast path reads; IPv6 keys to
        // their own map (which the packet path does not read yet).
        let mut keys: Vec<(u64, u32, u32)> = Vec::new();
        let mut keys6: Vec<(u128, u16, u8, u32)> = Vec::new();
        for (i, s) in cfg.services.iter().enumerate() {
            for (p, vip, port) in cfg.lookup_keys(s) {
                match vip {
                    IpAddr::V4(a) => {
                        let vip = u32::from(a);
                        keys.push((service_key(p.ip_proto(), vip, port), i as u32, vip));
                    }
                    IpAddr::V6(a) => keys6.push((u128::from(a), port, p.ip_proto(), i as u32)),
                }
            }
        }
        let mut service_map = FlatMap::with_capacity(keys.len());
        for &(k, i, _) in &keys {
            service_map.insert(k, i);
        }
        let mut service_map6 = FlatMap6::with_capacity(keys6.len());
        for &(vip, port, proto, i) in &keys6 {
            service_map6.insert((vip, port, proto), i);
        }
        // Every address the service map answers for is a VIP (by
        // construction: the burst pipeline's fast classifier relies on a
        // found service meaning a VIP, and skips the separate VIP test).
        let mut vips: Vec<u32> = cfg
            .services
            .iter()
            .flat_map(|s| cfg.service_vips(s))
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(u32::from(a)),
                IpAddr::V6(_) => None,
            })
            .chain(keys.iter().map(|&(_, _, vip)| vip))
            .collect();
        vips.sort_unstable();
        vips.dedup();
        let mut vips6: Vec<u128> = cfg
            .services
            .iter()
            .flat_map(|s| cfg.service_vips(s))
            .filter_map(|a| match a {
                IpAddr::V6(a) => Some(u128::from(a)),
                IpAddr::V4(_) => None,
            })
            .chain(keys6.iter().map(|&(vip, ..)| vip))
            .collect();
        vips6.sort_unstable();
        vips6.dedup();
        let has_ipv6 = !vips6.is_empty() || ports.iter().any(|p| p.addr6.is_some());
        let own: Vec<u32> = ports.iter().map(|p| u32::from(p.addr)).collect();
        let nat_of = |v6: bool| {
            services.iter().any(|s| {
                s.reals
                    .iter()
                    .any(|r| r.forward == Forward::Nat && r.addr.is_ipv6() == v6)
            })
        };
        let (has_nat, has_nat6) = (nat_of(false), nat_of(true));
        let mut service_by_id = vec![u16::MAX; MAX_SERVICES];
        for (i, s) in services.iter().enumerate() {
            service_by_id[s.id as usize] = i as u16;
        }
        let vrrp_addresses = cfg
            .vrrp
            .iter()
            .flat_map(|v| v.addresses.iter())
            .filter_map(|a| {
                let IpAddr::V4(a) = *a else { return None };
                let p = ports.iter().position(|p| p.subnet_contains(a))?;
                Some((u32::from(a), p as u16))
            })
            .collect();
        // As IPv4's: on the first interface whose subnet holds it.
        let vrrp_addresses6 = cfg
            .vrrp6
            .iter()
            .flat_map(|v| v.addresses.iter())
            .filter_map(|a| {
                let IpAddr::V6(a) = *a else { return None };
                let p = ports.iter().position(|p| p.subnet6_contains(a))?;
                Some((u128::from(a), p as u16))
            })
            .collect();
        Ok(Snapshot {
            generation,
            ports,
            phys_ports,
            vlans,
            static_routes,
            peer_directors: cfg.peer_directors.clone(),
            sync_enabled: cfg.sync.is_some(),
            vrrp_addresses,
            vrrp_addresses6,
            any_dead: false,
            any_persistence: services.iter().any(|s| s.persistence.is_some()),
            services,
            timeouts: TimeoutsMs::from_config(&cfg.timeouts),
            flood: FloodPolicy::from_config(&cfg.syn_flood),
            routes,
            neighbours,
            neighbours6,
            vips6,
            has_ipv6,
            rs_addr6,
            service_map,
            service_map6,
            vip_range: hull(vips.iter().copied()),
            vip_own_hull: hull(vips.iter().chain(&own).copied()),
            suspect_octet: suspect_octets(vips.iter().chain(&own).copied()),
            vips,
            own_range: range_of(own.iter().copied()),
            own,
            tunnel_pool: cfg.tunnel.source_pool.map(|c| SourcePool {
                base: u32::from(c.addr) & c.netmask(),
                mask: !c.netmask(),
            }),
            has_nat,
            has_nat6,
            service_by_id,
        })
    }

    /// [`service`](Self::service) for a flow key packed as the IPv4
    /// connection table's words (`ConnKey::words`): no repacking.
    #[inline(always)]
    pub fn service_of_words(&self, w: &[u64; 2]) -> Option<usize> {
        // Spelled out: `or_else` was left as a call on the hit path.
        if let Some(i) = self.service_map.get(service_key_of_words(w, false)) {
            return Some(i as usize);
        }
        self.service_map
            .get(service_key_of_words(w, true))
            .map(|i| i as usize)
    }

    /// [`service_of_words`](Self::service_of_words) through a one-entry
    /// memo of the last answer (`last`, see [`LastService`]): a repeat of
    /// the last (protocol, VIP, port) costs one compare, not a map probe.
    #[inline(always)]
    pub(crate) fn service_of_words_memo(&self, w: &[u64; 2], last: &LastService) -> Option<usize> {
        // The VIP and (VIP port, protocol, occupied bit) as they are in
        // the words: two 32-bit compares, no key built.
        let (vip, tail) = (w[0] as u32, w[1] as u32);
        let (v, t, i) = last.0.get();
        if v == vip && t == tail {
            return Some(i as usize);
        }
        let i = self.service_of_words(w)?;
        last.0.set((vip, tail, i as u16));
        Some(i)
    }

    /// The service index for a packet's (protocol, destination, port): the
    /// service (or service group) on that port, or else the VIP's service
    /// on all ports (port 0).
    #[inline(always)]
    pub fn service(&self, proto: u8, vip: u32, port: u16) -> Option<usize> {
        self.service_map
            .get(service_key(proto, vip, port))
            .or_else(|| self.service_map.get(service_key(proto, vip, 0)))
            .map(|i| i as usize)
    }

    /// [`service`](Self::service) for an IPv6 destination (a number: the
    /// address's octets big-endian).
    #[inline]
    pub fn service6(&self, proto: u8, vip: u128, port: u16) -> Option<usize> {
        self.service_map6
            .get((vip, port, proto))
            .or_else(|| self.service_map6.get((vip, 0, proto)))
            .map(|i| i as usize)
    }

    /// The address of IPv6 real server `rs`.
    #[inline]
    pub fn rs_addr6(&self, rs: u32) -> Option<Ipv6Addr> {
        match self.rs_addr6.get(rs as usize) {
            Some(&a) if a != 0 => Some(Ipv6Addr::from(a)),
            _ => None,
        }
    }

    /// Whether `ip` (an IPv6 address as a number) is a VIP.
    #[inline]
    pub fn is_vip6(&self, ip: u128) -> bool {
        self.vips6.binary_search(&ip).is_ok()
    }

    /// The interface whose own IPv6 address (`address6` or link-local) is
    /// `ip`.
    #[inline]
    pub fn own_port6(&self, ip: Ipv6Addr) -> Option<usize> {
        self.ports.iter().position(|p| p.owns6(ip))
    }

    /// Whether `ip` is one of `vrrp6.addresses` held on interface `port`.
    #[inline]
    pub fn is_vrrp_address6(&self, ip: Ipv6Addr, port: u16) -> bool {
        let ip = u128::from(ip);
        self.vrrp_addresses6
            .iter()
            .any(|&(a, p)| a == ip && p == port)
    }

    /// Every address a service (or a member of a group) is on.
    pub fn vip_addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.vips.iter().map(|&a| Ipv4Addr::from(a))
    }

    /// [`is_vip`](Self::is_vip) for a packet's source: almost never a VIP,
    /// so a range test answers first.
    #[inline]
    pub fn is_vip_source(&self, ip: u32) -> bool {
        self.in_vip_range(ip) && self.is_vip(ip)
    }

    /// Whether `ip` lies between the lowest and the highest VIP (a
    /// necessary condition of being one, in one compare; with no VIP, only
    /// 0.0.0.0 does).
    #[inline(always)]
    pub fn in_vip_range(&self, ip: u32) -> bool {
        let (lo, span) = self.vip_range;
        ip.wrapping_sub(lo) <= span
    }

    #[inline(always)]
    pub fn is_vip(&self, ip: u32) -> bool {
        // Few VIPs: a linear scan of a sorted small vector beats hashing.
        if self.vips.len() <= 16 {
            self.vips.contains(&ip)
        } else {
            self.vips.binary_search(&ip).is_ok()
        }
    }

    /// `is_vip_source(ip) || is_own(ip)`: one compare for an address
    /// outside the range of both lists (a client's), the lists' own tests
    /// inside it.
    #[inline(always)]
    pub fn is_vip_or_own(&self, ip: u32) -> bool {
        let (lo, span) = self.vip_own_hull;
        ip.wrapping_sub(lo) <= span && (self.is_vip_source(ip) || self.is_own(ip))
    }

    /// Whether `ip` cannot be a service packet's source: a bad source
    /// (0/8, 127/8, 224/3), a VIP or one of our addresses. For a client's
    /// address, one table byte by its first octet says no; the three tests
    /// answer for the addresses that share a first octet with one of those.
    #[inline(always)]
    pub fn is_suspect_source(&self, ip: u32) -> bool {
        self.suspect_octet[(ip >> 24) as usize] && (super::bad_source(ip) || self.is_vip_or_own(ip))
    }

    /// The table of [`is_suspect_source`](Self::is_suspect_source)'s
    /// first test, by first octet.
    #[inline(always)]
    pub(crate) fn suspect_octets(&self) -> &[bool; 256] {
        &self.suspect_octet
    }

    /// Index of the port that owns address `ip`, if any.
    #[inline]
    pub fn own_port(&self, ip: u32) -> Option<usize> {
        self.own.iter().position(|&a| a == ip)
    }

    /// Whether `ip` is one of our ports' addresses: [`own_port`](Self::own_port)`.is_some()`,
    /// with a range test first (the hit path's question).
    #[inline(always)]
    pub fn is_own(&self, ip: u32) -> bool {
        listed_in_range(&self.own, self.own_range, ip)
    }

    /// The service with stable id `id`, as an index into `services`.
    #[inline]
    pub fn service_index(&self, id: u32) -> Option<usize> {
        match self.service_by_id.get(id as usize) {
            Some(&i) if i != u16::MAX => Some(i as usize),
            _ => None,
        }
    }

    #[inline]
    pub fn route(&self, rs: u32) -> Option<RsRoute> {
        self.route_ref(rs).copied()
    }

    /// [`route`](Self::route), borrowed (the hit path copies nothing).
    #[inline(always)]
    pub fn route_ref(&self, rs: u32) -> Option<&RsRoute> {
        self.routes.get(rs as usize).and_then(Option::as_ref)
    }

    /// Whether `mac` is one of our ports' other than `rx_port` (a frame
    /// claiming it is spoofed or looped between our ports). One test when
    /// there is a single port.
    #[inline]
    pub fn is_other_port_mac(&self, mac: MacAddr, rx_port: u16) -> bool {
        // VLANs share their port's MAC: only ports are compared.
        self.phys_ports > 1
            && self.ports[..self.phys_ports]
                .iter()
                .enumerate()
                .any(|(i, p)| i != rx_port as usize && p.mac == mac)
    }

    /// The interface of VLAN `vid` on port `port`, if it has one.
    #[inline]
    pub fn vlan_interface(&self, port: u16, vid: u16) -> Option<u16> {
        self.vlans
            .iter()
            .find(|&&(p, v, _)| p == port && v == vid)
            .map(|&(_, _, i)| i)
    }

    /// The static route to `ip` (host order), longest prefix first; None
    /// when no route covers it or there are none (one test).
    #[inline]
    pub fn static_route(&self, ip: u32) -> Option<&StaticRoute> {
        self.static_routes.iter().find(|r| ip & r.mask == r.net)
    }

    /// Whether a frame from `mac` on port `rx_port` comes from the other
    /// director of a two-box setup (and this port can hand it to the host).
    #[cold]
    pub fn from_peer(&self, rx_port: u16, mac: MacAddr) -> bool {
        self.ports.get(rx_port as usize).is_some_and(|p| p.kernel)
            && self.peer_directors.contains(&mac)
    }

    /// Whether real server `rs` takes no new connections at all: removed
    /// from the configuration, or out of service by its health check. (A
    /// quiesced server, weight 0, still keeps its half-open connections.)
    #[cold]
    pub fn unavailable(&self, rs: u32) -> bool {
        self.route(rs).is_none_or(|r| r.down)
    }

    /// Whether real server `rs`'s connections are to end now (down, with
    /// `expire_connections`).
    #[inline]
    pub fn is_dead(&self, rs: u32) -> bool {
        self.routes
            .get(rs as usize)
            .is_some_and(|r| r.is_some_and(|r| r.dead))
    }

    /// Apply the checkers' view of the real servers (call on a freshly
    /// built snapshot, before publishing it). A down server gets weight 0;
    /// removed (not quiesced) it also stops being `up`; with `expire` its
    /// route is marked dead. A service's fallback server gets weight 1 and
    /// is up exactly when none of its real servers is up. Scheduler tables
    /// are rebuilt for the services that changed.
    pub fn apply_health(&mut self, health: impl Fn(&Service, &RealServer) -> RsHealth) {
        for svc_idx in 0..self.services.len() {
            let svc = &self.services[svc_idx];
            let states: Vec<RsHealth> = svc
                .reals
                .iter()
                .map(|r| {
                    if r.fallback {
                        RsHealth::Up
                    } else {
                        health(svc, r)
                    }
                })
                .collect();
            let any_up = svc
                .reals
                .iter()
                .zip(&states)
                .any(|(r, h)| !r.fallback && *h == RsHealth::Up);
            let mut changed = false;
            let svc = &mut self.services[svc_idx];
            for (r, h) in svc.reals.iter_mut().zip(&states) {
                if r.fallback {
                    if !any_up {
                        r.weight = 1;
                        r.up = true;
                        changed = true;
                    }
                    continue;
                }
                if let RsHealth::Down { quiesce, expire } = *h {
                    r.weight = 0;
                    r.up = quiesce;
                    changed = true;
                    if let Some(Some(route)) = self.routes.get_mut(r.id as usize) {
                        route.down = !quiesce;
                        if expire {
                            route.dead = true;
                            self.any_dead = true;
                        }
                    }
                }
            }
            if changed {
                svc.tables = tables_for(svc.scheduler, &svc.reals);
            }
        }
    }
}

impl Service {
    /// How the API names it.
    pub fn key(&self) -> crate::api::ServiceKey {
        match self.fwmark {
            Some(m) => crate::api::ServiceKey::group(m),
            None => crate::api::ServiceKey::addr(self.protocol, self.vip, self.port),
        }
    }

    /// How listings and metrics name it: `198.18.0.100:80/tcp`, `fwmark 3`.
    pub fn name(&self) -> String {
        self.key().to_string()
    }
}

/// The scheduler's lookup tables (sh, mh) for `reals`.
fn tables_for(scheduler: Scheduler, reals: &[RealServer]) -> crate::sched::Tables {
    crate::sched::Tables::build(
        scheduler,
        &reals
            .iter()
            .map(|r| crate::sched::Member {
                addr: r.addr,
                port: r.port,
                weight: r.weight,
            })
            .collect::<Vec<_>>(),
    )
}

/// Whether `ip` is in `list`, whose lowest and highest addresses are
/// `range` ([`range_of`]): two compares answer for most addresses.
#[inline(always)]
fn listed_in_range(list: &[u32], range: (u32, u32), ip: u32) -> bool {
    ip >= range.0 && ip <= range.1 && list.contains(&ip)
}

/// `Snapshot::suspect_octet`: the first octets of bad sources and of
/// `addrs` (the VIPs and our addresses).
fn suspect_octets(addrs: impl Iterator<Item = u32>) -> [bool; 256] {
    let mut t: [bool; 256] = core::array::from_fn(|o| super::bad_source((o as u32) << 24));
    for a in addrs {
        t[(a >> 24) as usize] = true;
    }
    t
}

/// The lowest of `addrs` and the distance to the highest, (0, 0) when
/// there are none (see `Snapshot::vip_own_hull`).
fn hull(addrs: impl Iterator<Item = u32>) -> (u32, u32) {
    match range_of(addrs) {
        (lo, hi) if lo <= hi => (lo, hi - lo),
        _ => (0, 0),
    }
}

/// The lowest and highest of `addrs`; (1, 0), which contains nothing, when
/// there are none.
fn range_of(addrs: impl Iterator<Item = u32>) -> (u32, u32) {
    addrs.fold((1, 0), |(lo, hi), a| {
        if lo > hi {
            (a, a)
        } else {
            (lo.min(a), hi.max(a))
        }
    })
}

/// The last service [`Snapshot::service_of_words_memo`] found, by the
/// words' VIP and low 32 bits of the second word (the packet's port,
/// before any fall-back to port 0, the protocol and the occupied bit; the
/// service key is a function of them):
/// the frames of a burst mostly go to one service. Only answers found are
/// kept (a miss goes to the full classifier anyway). It must not outlive
/// the snapshot it was filled from: stage 1 keeps one per burst
/// (`flow::BurstCtx`, made from the snapshot the burst is classified
/// against), and snapshots are swapped only between bursts.
#[derive(Debug, Clone)]
pub(crate) struct LastService(Cell<(u32, u32, u16)>);

impl LastService {
    /// Empty: a second word of 0 matches nothing (every key's words have
    /// the occupied bit set).
    pub(crate) const fn new() -> LastService {
        LastService(Cell::new((0, 0, 0)))
    }
}

/// The service map's key: (VIP, port, protocol) laid out as in an IPv4
/// connection key's words (`conntrack::key`), so that
/// [`Snapshot::service_of_words`] takes it from a packed flow key with a
/// shift and a mask. Bit 0 is always set (0 marks a free slot).
#[inline(always)]
fn service_key(proto: u8, vip: u32, port: u16) -> u64 {
    ((vip as u64) << 32) | ((port as u64) << 16) | ((proto as u64) << 8) | 1
}

/// [`service_key`] of packed IPv4 connection-key words: the VIP from the
/// low half of the first word, (VIP port, protocol, occupied bit) from the
/// second; `any_port` clears the port.
#[inline(always)]
fn service_key_of_words(w: &[u64; 2], any_port: bool) -> u64 {
    let keep = if any_port { 0xff01 } else { 0xffff_ff01 };
    (w[0] << 32) | (w[1] & keep)
}

/// A tiny open-addressed u64→u32 map, built once, read on the hot path.
/// Each key sits beside its value (one bounds check and one line per
/// probe step).
#[derive(Debug, Clone)]
struct FlatMap {
    slots: Vec<(u64, u32)>,
    mask: usize,
}

impl FlatMap {
    fn with_capacity(n: usize) -> FlatMap {
        let size = (n * 2).next_power_of_two().max(8);
        FlatMap {
            slots: vec![(0, 0); size],
            mask: size - 1,
        }
    }

    #[inline(always)]
    fn slot(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    fn insert(&mut self, key: u64, val: u32) {
        let mut i = self.slot(key);
        while self.slots[i].0 != 0 && self.slots[i].0 != key {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = (key, val);
    }

    #[inline(always)]
    fn get(&self, key: u64) -> Option<u32> {
        let mut i = self.slot(key);
        loop {
            let (k, v) = self.slots[i];
            if k == key {
                return Some(v);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// The IPv6 services' map: (VIP, port, protocol) → service index, open
/// addressing like [`FlatMap`], built once. Port 0 with protocol 0 never
/// names a service, so it marks a free slot.
#[derive(Debug, Clone)]
struct FlatMap6 {
    keys: Vec<(u128, u16, u8)>,
    vals: Vec<u32>,
    mask: usize,
}

impl FlatMap6 {
    const FREE: (u128, u16, u8) = (0, 0, 0);

    fn with_capacity(n: usize) -> FlatMap6 {
        let size = (n * 2).next_power_of_two().max(8);
        FlatMap6 {
            keys: vec![Self::FREE; size],
            vals: vec![0; size],
            mask: size - 1,
        }
    }

    #[inline]
    fn slot(&self, (vip, port, proto): (u128, u16, u8)) -> usize {
        let folded = (vip as u64) ^ ((vip >> 64) as u64).rotate_left(29);
        let k = folded ^ ((port as u64) << 8 | proto as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
        (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    fn insert(&mut self, key: (u128, u16, u8), val: u32) {
        debug_assert!(key != Self::FREE);
        let mut i = self.slot(key);
        while self.keys[i] != Self::FREE && self.keys[i] != key {
            i = (i + 1) & self.mask;
        }
        self.keys[i] = key;
        self.vals[i] = val;
    }

    #[inline]
    fn get(&self, key: (u128, u16, u8)) -> Option<u32> {
        let mut i = self.slot(key);
        loop {
            let k = self.keys[i];
            if k == key {
                return Some(self.vals[i]);
            }
            if k == Self::FREE {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RealServerConfig, ServiceConfig};

    pub(crate) fn lab_config() -> Config {
        ron::from_str(
            r#"(
                ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
                services: [
                    (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
                        (address: "198.18.0.11"), (address: "198.18.0.12"),
                    ]),
                ],
            )"#,
        )
        .unwrap()
    }

    #[test]
    fn vip_or_own_test_is_the_two_tests() {
        let macs = [MacAddr([2, 0, 0, 0, 0, 2])];
        let neigh = NeighTable::new(16);
        let mut far = lab_config();
        far.services[0].vip = "198.19.200.7".parse().unwrap();
        let mut none = lab_config();
        none.services.clear();
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        for cfg in [lab_config(), far, none] {
            let s = Snapshot::build(&cfg, &macs, &mut Registry::default(), &neigh, 1).unwrap();
            let edges = [
                0,
                1,
                base - 1,
                u32::MAX,
                u32::from(Ipv4Addr::new(198, 19, 200, 7)),
            ];
            for ip in (0..1024).map(|i| base + i).chain(edges) {
                let two = s.is_vip_source(ip) || s.is_own(ip);
                assert_eq!(s.is_vip_or_own(ip), two, "{:?} {ip:x}", s.vips);
            }
        }
    }

    #[test]
    fn suspect_source_test_is_the_three_tests() {
        let macs = [MacAddr([2, 0, 0, 0, 0, 2])];
        let neigh = NeighTable::new(16);
        let mut far = lab_config();
        far.services[0].vip = "100.64.0.7".parse().unwrap();
        let mut none = lab_config();
        none.services.clear();
        for cfg in [lab_config(), far, none] {
            let s = Snapshot::build(&cfg, &macs, &mut Registry::default(), &neigh, 1).unwrap();
            let listed = s.vips.iter().chain(&s.own).copied();
            // Every first octet, at its edges and a few addresses inside;
            // every VIP and own address and its neighbours; random ones.
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            let random = (0..20_000).map(move |_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (rng >> 32) as u32
            });
            let ips = (0..=255u32)
                .flat_map(|o| [0, 1, 0x12_3456, 0xff_ffff].map(|low| (o << 24) | low))
                .chain(listed.flat_map(|a| [a.wrapping_sub(1), a, a.wrapping_add(1)]))
                .chain(random);
            for ip in ips {
                // The VIP range as (lowest, span): the lowest to the highest.
                let between = match (s.vips.first(), s.vips.last()) {
                    (Some(&lo), Some(&hi)) => ip >= lo && ip <= hi,
                    _ => ip == 0,
                };
                assert_eq!(s.in_vip_range(ip), between, "{:?} {ip:x}", s.vips);
                let three = super::super::bad_source(ip) || s.is_vip_source(ip) || s.is_own(ip);
                assert_eq!(s.is_suspect_source(ip), three, "{:?} {ip:x}", s.vips);
            }
        }
    }

    #[test]
    fn own_address_test_is_the_scan() {
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        for own in [
            vec![],
            vec![base + 2],
            vec![base + 900, base + 2, base + 600],
        ] {
            let range = range_of(own.iter().copied());
            for ip in (0..1024).map(|i| base + i).chain([0, 1, u32::MAX]) {
                let is_own = listed_in_range(&own, range, ip);
                assert_eq!(is_own, own.contains(&ip), "{own:?} {ip}");
            }
        }
        assert_eq!(range_of([5u32, 3, 9].into_iter()), (3, 9));
        assert_eq!(hull([5u32, 3, 9].into_iter()), (3, 6));
        assert_eq!(hull(core::iter::empty()), (0, 0));
        assert!(range_of(core::iter::empty()).0 > range_of(core::iter::empty()).1);
    }

    #[test]
    fn builds_and_looks_up() {
        let cfg = lab_config();
        let neigh = NeighTable::new(16);
        let mut reg = Registry::default();
        let s = Snapshot::build(&cfg, &[MacAddr([2, 0, 0, 0, 0, 2])], &mut reg, &neigh, 1).unwrap();
        let vip = u32::from(Ipv4Addr::new(198, 18, 0, 100));
        assert_eq!(s.service(6, vip, 80), Some(0));
        assert_eq!(s.service(17, vip, 80), None);
        assert_eq!(s.service(6, vip, 81), None);
        assert!(s.is_vip(vip));
        assert_eq!(s.own_port(u32::from(Ipv4Addr::new(198, 18, 0, 2))), Some(0));
        assert!(s.is_own(u32::from(Ipv4Addr::new(198, 18, 0, 2))));
        assert!(!s.is_own(u32::from(Ipv4Addr::new(198, 18, 0, 3))));
        let r = &s.services[0].reals;
        assert_eq!(r.len(), 2);
        assert!(s.route(r[0].id).is_some());
        assert_eq!(neigh.entries().len(), 2);
    }

    /// An IPv6 real server is reached by DR on a port's `address6` subnet:
    /// it gets a route and a neighbour slot of its own. One on no IPv6
    /// subnet, or by tunnel (which validation refuses), is an error at the
    /// build, never a panic, and leaves the registry alone.
    #[test]
    fn ipv6_real_servers_get_routes_and_neighbour_slots() {
        let neigh = NeighTable::new(16);
        let macs = [MacAddr([2, 0, 0, 0, 0, 2])];
        let v6: IpAddr = "2001:db8::11".parse().unwrap();
        let mut rs6 = lab_config();
        rs6.services[0].vip = "2001:db8::100".parse().unwrap();
        for r in &mut rs6.services[0].real_servers {
            r.address = v6;
        }
        rs6.services[0].real_servers.truncate(1);
        let mut reg = Registry::default();
        let e = Snapshot::prepare(&rs6, &macs, &mut reg, &neigh, 1).unwrap_err();
        assert_eq!(e, SnapshotError::NoPortFor(v6));
        assert!(neigh.entries().is_empty());
        rs6.ports[0].address6 = Some("2001:db8::2/64".parse().unwrap());
        let mut nat = rs6.clone();
        nat.services[0].real_servers[0].forward = Forward::Nat;
        let nat_snap = Snapshot::prepare(&nat, &macs, &mut reg.clone(), &neigh, 1).unwrap();
        assert!(nat_snap.has_nat6 && !nat_snap.has_nat);
        let mut mixed = nat.clone();
        mixed.services[0].real_servers[0].address = "198.18.0.11".parse().unwrap();
        let e = Snapshot::prepare(&mixed, &macs, &mut reg.clone(), &neigh, 1).unwrap_err();
        assert_eq!(
            e,
            SnapshotError::NatFamily(mixed.services[0].real_servers[0].address)
        );
        let snap = Snapshot::build(&rs6, &macs, &mut reg, &neigh, 1).unwrap();
        let rid = snap.services[0].reals[0].id;
        let route = snap.route(rid).unwrap();
        let slot = snap.neighbours6[&u128::from("2001:db8::11".parse::<Ipv6Addr>().unwrap())];
        assert_eq!((route.port, route.neigh, route.local), (0, slot, false));
        assert_eq!(snap.rs_addr6(rid), Some("2001:db8::11".parse().unwrap()));
        assert_eq!(snap.rs_addr6(rid + 1), None);
        assert_eq!(neigh.entries()[0].ip, v6);
        assert!(snap.has_ipv6);
        assert!(snap.is_vip6(u128::from("2001:db8::100".parse::<Ipv6Addr>().unwrap())));
        // The port's link-local address: fe80::/64 + modified EUI-64.
        assert_eq!(
            snap.ports[0].link_local,
            "fe80::ff:fe00:2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            link_local(MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])),
            "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
    }

    /// An IPv6 VIP (refused by validation for now) compiles into the IPv6
    /// service map, never into the IPv4 one or its VIP list; the service
    /// keeps its address as data (`IpAddr`), and the IPv4 services are
    /// untouched.
    #[test]
    fn ipv6_vips_go_to_their_own_map() {
        let neigh = NeighTable::new(16);
        let macs = [MacAddr([2, 0, 0, 0, 0, 2])];
        let mut cfg = lab_config();
        let mut v6 = cfg.services[0].clone();
        v6.vip = "2001:db8::100".parse().unwrap();
        v6.port = 443;
        cfg.services.push(v6);
        let mut all = cfg.services[0].clone();
        all.vip = "2001:db8::101".parse().unwrap();
        all.port = 0;
        cfg.services.push(all);
        let mut reg = Registry::default();
        let s = Snapshot::build(&cfg, &macs, &mut reg, &neigh, 1).unwrap();
        let vip6 = u128::from("2001:db8::100".parse::<std::net::Ipv6Addr>().unwrap());
        let all6 = u128::from("2001:db8::101".parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(s.service6(6, vip6, 443), Some(1));
        assert_eq!(s.service6(6, vip6, 80), None);
        assert_eq!(s.service6(17, vip6, 443), None);
        assert_eq!(s.service6(6, all6, 8080), Some(2), "port 0: every port");
        assert_eq!(
            s.services[1].vip,
            "2001:db8::100".parse::<IpAddr>().unwrap()
        );
        assert_eq!(s.services[1].vip_v4, 0);
        // The IPv4 side is as without them.
        let vip4 = u32::from(Ipv4Addr::new(198, 18, 0, 100));
        assert_eq!(s.service(6, vip4, 80), Some(0));
        assert_eq!(s.services[0].vip_v4, vip4);
        assert_eq!(
            s.vip_addresses().collect::<Vec<_>>(),
            [Ipv4Addr::new(198, 18, 0, 100)]
        );
        assert_eq!(s.service6(6, vip4 as u128, 80), None);
    }

    /// Persistence's prefix is the service family's: `-M`'s netmask for an
    /// IPv4 service.
    #[test]
    fn persistence_prefix_follows_the_vip_family() {
        let neigh = NeighTable::new(16);
        let macs = [MacAddr([2, 0, 0, 0, 0, 2])];
        let mut cfg = lab_config();
        cfg.services[0].persistence = Some(Persistence::v4(300, 24));
        let mut v6 = cfg.services[0].clone();
        v6.vip = "2001:db8::100".parse().unwrap();
        v6.persistence = Some(Persistence {
            timeout: 300,
            netmask: 24,
            prefix: Some(64),
        });
        cfg.services.push(v6);
        let mut reg = Registry::default();
        let s = Snapshot::build(&cfg, &macs, &mut reg, &neigh, 1).unwrap();
        assert_eq!(s.services[0].persist_prefix, 24);
        assert_eq!(s.services[1].persist_prefix, 64);
    }

    #[test]
    fn flat_map6_many_keys() {
        let mut m = FlatMap6::with_capacity(500);
        let base = 0x2001_0db8u128 << 96;
        for i in 0..500u32 {
            m.insert((base | i as u128, 80, 6), i);
            // Keys differing only in the high half must not collide away.
            m.insert((base | (i as u128) << 64, 443, 6), 1000 + i);
        }
        for i in 0..500u32 {
            assert_eq!(m.get((base | i as u128, 80, 6)), Some(i));
            assert_eq!(m.get((base | (i as u128) << 64, 443, 6)), Some(1000 + i));
            assert_eq!(m.get((base | i as u128, 80, 17)), None);
        }
    }

    #[test]
    fn ids_are_stable_across_builds_and_freed() {
        let mut cfg = lab_config();
        let neigh = NeighTable::new(16);
        let mut reg = Registry::default();
        let macs = [MacAddr([2, 0, 0, 0, 0, 2])];
        let a = Snapshot::build(&cfg, &macs, &mut reg, &neigh, 1).unwrap();
        // Insert a new server first: the old ones keep their ids.
        cfg.services[0].real_servers.insert(
            0,
            RealServerConfig {
                address: Ipv4Addr::new(198, 18, 0, 13).into(),
                port: None,
                weight: 1,
                forward: Forward::Dr,
                health_check: None,
            },
        );
        cfg.services.push(ServiceConfig {
            vip: Ipv4Addr::new(198, 18, 0, 101).into(),
            port: 443,
            protocol: Protocol::Tcp,
            scheduler: Scheduler::Wlc,
            real_servers: vec![],
            persistence: None,
            health_check: None,
            fallback: None,
            sloppy_tcp: false,
            ecmp: false,
            fwmark: None,
        });
        let b = Snapshot::build(&cfg, &macs, &mut reg, &neigh, 2).unwrap();
        assert_eq!(b.services[0].reals[1].id, a.services[0].reals[0].id);
        assert_eq!(b.services[0].reals[2].id, a.services[0].reals[1].id);
        assert_eq!(b.services[0].id, a.services[0].id);
        assert_eq!(neigh.entries().len(), 3);
        // Removing the new server frees its neighbour slot.
        cfg.services[0].real_servers.remove(0);
        let _c = Snapshot::build(&cfg, &macs, &mut reg, &neigh, 3).unwrap();
        assert_eq!(neigh.entries().len(), 2);
    }

    #[test]
    fn prepare_has_no_side_effects_until_commit() {
        let mut cfg = lab_config();
        let neigh = NeighTable::new(16);
        let mut reg = Registry::default();
        let macs = [MacAddr([2, 0, 0, 0, 0, 2])];
        Snapshot::build(&cfg, &macs, &mut reg, &neigh, 1).unwrap();
        cfg.services[0].real_servers[0].address = Ipv4Addr::new(198, 18, 0, 13).into();
        // A prepared change that is dropped leaves the table as it was.
        let mut trial = reg.clone();
        Snapshot::prepare(&cfg, &macs, &mut trial, &neigh, 2).unwrap();
        let ips: Vec<_> = neigh.entries().iter().map(|e| e.ip).collect();
        assert!(ips.contains(&Ipv4Addr::new(198, 18, 0, 11).into()));
        assert!(!ips.contains(&Ipv4Addr::new(198, 18, 0, 13).into()));
        // Committed, it binds the new neighbour and frees the old one.
        trial.commit(&neigh);
        let ips: Vec<_> = neigh.entries().iter().map(|e| e.ip).collect();
        assert!(!ips.contains(&Ipv4Addr::new(198, 18, 0, 11).into()));
        assert!(ips.contains(&Ipv4Addr::new(198, 18, 0, 13).into()));
    }

    #[test]
    fn removed_real_server_ids_are_not_reused_at_once() {
        let mut cfg = lab_config();
        let neigh = NeighTable::new(16);
        let mut reg = Registry::default();
        let macs = [MacAddr([2, 0, 0, 0, 0, 2])];
        let a = Snapshot::build(&cfg, &macs, &mut reg, &neigh, 1).unwrap();
        let old = a.services[0].reals[1].id;
        cfg.services[0].real_servers.remove(1);
        Snapshot::build(&cfg, &macs, &mut reg, &neigh, 2).unwrap();
        cfg.services[0].real_servers.push(RealServerConfig {
            address: Ipv4Addr::new(198, 18, 0, 14).into(),
            port: None,
            weight: 1,
            forward: Forward::Dr,
            health_check: None,
        });
        let c = Snapshot::build(&cfg, &macs, &mut reg, &neigh, 3).unwrap();
        assert_ne!(c.services[0].reals[1].id, old);
    }

    #[test]
    fn group_members_and_ranges_look_up_to_one_service() {
        let cfg: Config = ron::from_str(
            r#"(
                ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
                services: [
                    (vip: "198.18.0.100", port: 80, real_servers: [(address: "198.18.0.11")]),
                    (vip: "198.18.0.101", port: 0, persistence: Some(()),
                     real_servers: [(address: "198.18.0.11")]),
                    (fwmark: Some(3), persistence: Some(()),
                     real_servers: [(address: "198.18.0.12")]),
                ],
                fwmarks: [
                    (mark: 3, match: [
                        (vip: "198.18.0.101", ports: 80),
                        (vip: "198.18.0.101", ports: "443"),
                    ]),
                    (mark: 3, match: [(vip: "198.18.0.102", protocol: Udp, ports: "8000-8099")]),
                    // No service serves mark 5: it takes nothing.
                    (mark: 5, match: [(vip: "198.18.0.103", ports: 80)]),
                ],
            )"#,
        )
        .unwrap();
        assert!(crate::config::validate(&cfg).is_empty());
        let neigh = NeighTable::new(16);
        let mut reg = Registry::default();
        let s = Snapshot::build(&cfg, &[MacAddr([2, 0, 0, 0, 0, 2])], &mut reg, &neigh, 1).unwrap();
        let a = |d: u8| u32::from(Ipv4Addr::new(198, 18, 0, d));
        assert_eq!(s.service(6, a(100), 80), Some(0));
        // The group's ports win over the VIP's all-ports service; the rest
        // of the VIP's ports still go to it.
        assert_eq!(s.service(6, a(101), 80), Some(2));
        assert_eq!(s.service(6, a(101), 443), Some(2));
        assert_eq!(s.service(6, a(101), 444), Some(1));
        assert_eq!(s.service(17, a(101), 80), None);
        for port in [8000, 8042, 8099] {
            assert_eq!(s.service(17, a(102), port), Some(2));
        }
        assert_eq!(s.service(17, a(102), 7999), None);
        assert_eq!(s.service(17, a(102), 8100), None);
        assert_eq!(s.service(6, a(102), 8000), None);
        // Every member VIP is answered for (ARP, ping).
        assert!(s.is_vip(a(102)));
        assert_eq!(s.service(6, a(103), 80), None);
        assert!(!s.is_vip(a(103)));
        let g = &s.services[2];
        assert_eq!(
            (g.fwmark, g.vip, g.port),
            (Some(3), IpAddr::from(Ipv4Addr::UNSPECIFIED), 0)
        );
        assert_eq!(g.name(), "fwmark 3");
        assert_eq!(s.services[0].name(), "198.18.0.100:80/tcp");

        // The burst's memo answers as the map does, over a pseudo-random
        // sequence of (protocol, VIP, port) with repeats, misses, group
        // ports and the all-ports fall-back; a memo filled from this
        // snapshot is not taken to another (a fresh one per burst).
        let last = LastService::new();
        let mut x = 0x1234_5678u32;
        for _ in 0..4000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let proto = if x & 1 == 0 { 6 } else { 17 };
            let vip = a(99 + (x >> 1) as u8 % 6);
            let port = [80, 443, 444, 8000, 8099, 8100, 0][(x >> 8) as usize % 7];
            let w = crate::conntrack::ConnKey {
                proto,
                client_ip: x,
                client_port: (x >> 16) as u16,
                vip,
                vport: port,
            };
            let w = crate::conntrack::TableKey::words(&w);
            assert_eq!(
                s.service_of_words_memo(&w, &last),
                s.service_of_words(&w),
                "{proto} {vip:x} {port}"
            );
            assert_eq!(s.service_of_words(&w), s.service(proto, vip, port));
        }
    }

    #[test]
    fn groups_keep_distinct_stable_ids() {
        let two = |first: u32| -> Config {
            ron::from_str(&format!(
                r#"(
                ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
                services: [
                    (fwmark: Some({first}), real_servers: [(address: "198.18.0.11")]),
                    (fwmark: Some(9), real_servers: [(address: "198.18.0.11")]),
                ],
                fwmarks: [(mark: {first}, match: [(vip: "198.18.0.101", ports: 80)]),
                          (mark: 9, match: [(vip: "198.18.0.101", ports: 81)])],
            )"#
            ))
            .unwrap()
        };
        let neigh = NeighTable::new(16);
        let mut reg = Registry::default();
        let macs = [MacAddr([2, 0, 0, 0, 0, 2])];
        let a = Snapshot::build(&two(3), &macs, &mut reg, &neigh, 1).unwrap();
        // Groups share VIP 0.0.0.0 and port 0: their marks keep them apart.
        assert_ne!(a.services[0].id, a.services[1].id);
        assert_ne!(a.services[0].reals[0].id, a.services[1].reals[0].id);
        let b = Snapshot::build(&two(4), &macs, &mut reg, &neigh, 2).unwrap();
        assert_eq!(b.services[1].id, a.services[1].id);
        assert_eq!(b.services[1].reals[0].id, a.services[1].reals[0].id);
    }

    #[test]
    fn flat_map_many_keys() {
        let mut m = FlatMap::with_capacity(500);
        for i in 0..500u32 {
            m.insert(service_key(6, 0xC612_0000 + i, 80), i);
        }
        for i in 0..500u32 {
            assert_eq!(m.get(service_key(6, 0xC612_0000 + i, 80)), Some(i));
            assert_eq!(m.get(service_key(17, 0xC612_0000 + i, 80)), None);
        }
    }

    #[test]
    fn service_key_of_flow_key_words() {
        use crate::conntrack::{ConnKey, TableKey};
        let k = ConnKey {
            proto: 17,
            client_ip: 0xC612_C801,
            client_port: 40000,
            vip: 0xC612_0064,
            vport: 53,
        };
        let w = k.words();
        assert_eq!(
            service_key_of_words(&w, false),
            service_key(17, 0xC612_0064, 53)
        );
        assert_eq!(
            service_key_of_words(&w, true),
            service_key(17, 0xC612_0064, 0)
        );
    }
}
