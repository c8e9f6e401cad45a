//! The configuration as the user writes it in RON.
//!
//! These types are the file format: field names here are what users type.
//! Defaults make the small lab files short; `validate` checks the meaning.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::mac::MacAddr;

/// The whole `lbd` configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How DPDK's EAL is started (cores, memory, file prefix).
    #[serde(default)]
    pub eal: EalConfig,
    /// The DPDK ports the director owns.
    pub ports: Vec<PortConfig>,
    /// Worker layout: queues per port (one pinned worker per queue), burst size.
    #[serde(default)]
    pub workers: WorkersConfig,
    /// Connection table sizing.
    #[serde(default)]
    pub conn_table: ConnTableConfig,
    /// Connection timeouts in seconds, IPVS's defaults.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Defence against SYN floods that would fill the connection table
    /// (applied live by a reload).
    #[serde(default)]
    pub syn_flood: SynFloodConfig,
    /// Neighbour (ARP) resolution timers.
    #[serde(default)]
    pub neighbours: NeighbourConfig,
    /// The control socket `lbctl` talks to, and config reloading.
    #[serde(default)]
    pub control: ControlConfig,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// IPIP tunnel forwarding (`Forward::Tunnel`): the outer source address.
    #[serde(default)]
    pub tunnel: TunnelConfig,
    /// High availability: a VRRPv3 instance that owns the IPv4 VIPs (built
    /// in, instead of keepalived). `None`: this director always serves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<VrrpConfig>,
    /// The IPv6 VIPs' VRRPv3 instance (RFC 5798 over IPv6: advertisements
    /// to ff02::12 from the port's link-local address), separate from the
    /// IPv4 one as in keepalived. With both, the two act as one group
    /// (keepalived's sync group): this director serves the VIPs while both
    /// are master. Version 3 only; its `addresses` are IPv6. Default: None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp6: Option<VrrpConfig>,
    /// Connection-state sync with the peer director (IPVS's sync daemon):
    /// while VRRP master (or always, without VRRP) this director sends its
    /// new and changed DR/tunnel connections and persistence templates to
    /// the peer; it accepts the peer's at any time, so that after a
    /// failover established connections keep their real servers. Default:
    /// None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncConfig>,
    /// Scale-out: announce the VIPs to the routers by BGP through a
    /// speaker on this host (BIRD), see [`super::bgp::BgpConfig`]. Default:
    /// None (nothing announced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<super::bgp::BgpConfig>,
    /// The two-box setup (LVS's two directors that are also real servers):
    /// the MAC addresses of the other director's ports. A frame for a VIP
    /// from one of them was scheduled by that director to this box as a
    /// real server, so it goes to this box's own stack (the port's kernel
    /// interface), never scheduled again — even as VRRP backup. Default: [].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_directors: Vec<MacAddr>,
    /// Virtual services (VIP:port) and their real servers.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    /// Firewall marks without a firewall: which (VIP, protocol, ports)
    /// carry each mark, where IPVS has iptables rules. A service group
    /// (`services[].fwmark`) serves its mark's. Like iptables rules, they
    /// are not services: `ipvsadm -C` leaves them, so a group cleared and
    /// restored serves the same ports again. Default: [].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fwmarks: Vec<FwmarkConfig>,
    /// Static routes: networks reached through a gateway on one of the
    /// director's subnets (a port's or a VLAN's). Tunnel real servers and
    /// NAT clients may sit behind them; the gateway's MAC is resolved by
    /// ARP like a neighbour's. The longest matching prefix wins, and a
    /// directly connected subnet wins over a route of the same length.
    /// Default: [].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
}

/// One static route: `prefix` is reached through gateway `via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The destination network, e.g. "198.19.5.0/24" (host bits zero).
    pub prefix: Ipv4Cidr,
    /// The gateway: an address on a port's or a VLAN's subnet.
    pub via: Ipv4Addr,
}

/// An 802.1Q VLAN sub-interface of a port: frames tagged with `id` are
/// handled as if they had arrived on an interface of their own, with this
/// address and subnet; what goes out on it is tagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanConfig {
    /// The VLAN id, 1 to 4094.
    pub id: u16,
    /// The director's address on the VLAN, with its prefix.
    pub address: Ipv4Cidr,
}

/// The (VIP, protocol, ports) that carry one mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FwmarkConfig {
    pub mark: u32,
    #[serde(rename = "match")]
    pub matches: Vec<GroupMatch>,
}

impl Config {
    /// What carries mark `mark` (every `fwmarks` entry of it).
    pub fn marked(&self, mark: u32) -> impl Iterator<Item = &GroupMatch> + '_ {
        self.fwmarks
            .iter()
            .filter(move |f| f.mark == mark)
            .flat_map(|f| f.matches.iter())
    }

    /// The addresses service `s` is on: its VIP, or its mark's VIPs (each
    /// once).
    pub fn service_vips(&self, s: &ServiceConfig) -> Vec<IpAddr> {
        let Some(mark) = s.fwmark else {
            return vec![s.vip];
        };
        let mut v: Vec<IpAddr> = Vec::new();
        for m in self.marked(mark) {
            if !v.contains(&m.vip) {
                v.push(m.vip);
            }
        }
        v
    }

    /// Every (protocol, VIP, port) whose packets service `s` takes (port 0:
    /// every port of the VIP not taken by another service).
    pub fn lookup_keys<'a>(
        &'a self,
        s: &'a ServiceConfig,
    ) -> impl Iterator<Item = (Protocol, IpAddr, u16)> + 'a {
        let own = (!s.is_group()).then_some((s.protocol, s.vip, s.port));
        let members = s
            .fwmark
            .into_iter()
            .flat_map(move |mark| self.marked(mark))
            .flat_map(|m| m.ports.ports().map(move |p| (m.protocol, m.vip, p)));
        own.into_iter().chain(members)
    }
}

/// A VRRPv3 instance (RFC 5798) for the services' VIPs. Its
/// advertisements go out of, and come in through, the port's kernel
/// interface, which the port must have (`ports[].kernel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpConfig {
    /// The port (by name) facing the clients and the peer director.
    pub port: String,
    /// Virtual router id, 1 to 255; the same on both directors.
    pub vrid: u8,
    /// 1 to 254; the higher wins (255 is reserved for an address owner).
    pub priority: u8,
    /// VRRP version: 3 (RFC 5798) or 2 (RFC 3768, keepalived's default).
    /// Default: 3.
    #[serde(default = "default_vrrp_version")]
    pub version: u8,
    /// Version 2 only: the simple-text password of keepalived's
    /// `authentication { auth_type PASS; auth_pass ... }` (at most 8
    /// characters). Advertisements without it are ignored. Default: None.
    #[serde(default)]
    pub auth_pass: Option<String>,
    /// Between advertisements, 10 ms to 40950 ms, a multiple of 10.
    /// Default: 1000.
    #[serde(default = "default_advert_interval")]
    pub advert_interval_ms: u32,
    /// Take mastership from a lower-priority master. Default: true.
    #[serde(default = "default_true")]
    pub preempt: bool,
    /// More addresses the master holds besides the services' VIPs, each on
    /// the port whose subnet contains it: typically the real servers'
    /// default gateway in NAT mode (keepalived's virtual_ipaddress on the
    /// internal side). Addresses of the instance's family: IPv4 in `vrrp`
    /// (answered by ARP, announced by gratuitous ARP), IPv6 in `vrrp6`
    /// (answered by NDP and ping, announced by unsolicited Neighbour
    /// Advertisements). Default: [].
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// Send advertisements to these peers instead of the multicast group
    /// (addresses of the instance's family). Default: [] (multicast to
    /// 224.0.0.18, or ff02::12 for `vrrp6`).
    #[serde(default)]
    pub unicast_peers: Vec<IpAddr>,
    /// Gratuitous ARPs per VIP on becoming master. Default: 5.
    #[serde(default = "default_garp_count")]
    pub garp_count: u32,
    /// While master, repeat the gratuitous ARPs this often (seconds; 0:
    /// never). Default: 0.
    #[serde(default)]
    pub garp_refresh_s: u32,
    /// Shell commands run on becoming master, backup or faulty
    /// (keepalived's notify_master, ...), with `LBD_VRRP_STATE` and
    /// `LBD_VRRP_INSTANCE` (`vrrp` or `vrrp6`) set.
    /// Track the health checks: while every checked real server is down
    /// (this director could serve nothing), go to FAULT and leave the VIPs
    /// to the peer (keepalived's track_script). Default: false.
    #[serde(default)]
    pub track_health: bool,
    #[serde(default)]
    pub notify_master: Option<String>,
    #[serde(default)]
    pub notify_backup: Option<String>,
    #[serde(default)]
    pub notify_fault: Option<String>,
}

/// Connection-state sync (see [`Config::sync`]). Datagrams go through the
/// kernel interface of the port whose subnet holds `peer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The peer director's port address.
    pub peer: std::net::Ipv4Addr,
    /// The UDP port both directors use. Default: 8848.
    #[serde(default = "default_sync_port")]
    pub port: u16,
    /// Bandwidth the sync may use, kilobits per second (records beyond it
    /// wait, then are dropped and counted). Default: 10000.
    #[serde(default = "default_sync_kbps")]
    pub max_kbps: u32,
    /// How long records are gathered before they are sent. Default: 50.
    #[serde(default = "default_sync_batch")]
    pub batch_ms: u32,
}

fn default_sync_port() -> u16 {
    8848
}
fn default_sync_kbps() -> u32 {
    10_000
}
fn default_sync_batch() -> u32 {
    50
}

fn default_vrrp_version() -> u8 {
    3
}
fn default_advert_interval() -> u32 {
    1000
}
fn default_true() -> bool {
    true
}
fn default_garp_count() -> u32 {
    5
}

/// The control socket and configuration reloading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Path of the unix socket lbctl connects to. Its directory is created
    /// (mode 0750) if missing; the socket is mode 0660 (owner root).
    pub socket: String,
    /// A group whose members may change the configuration through the socket
    /// (and which owns the socket). `None`: only root may change it; anyone
    /// who can open the socket may read.
    pub group: Option<String>,
    /// Watch the configuration file and apply it when it changes (like
    /// ldirectord's `autoreload`). An invalid file is refused and logged.
    pub autoreload: bool,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: "/run/lbd/lbd.sock".into(),
            group: None,
            autoreload: false,
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address to serve `/metrics` on (`None`: no endpoint). Loopback by
    /// default: put it on another address only behind a firewall.
    pub listen: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: Some("127.0.0.1:9300".into()),
        }
    }
}

/// EAL start-up parameters. `lbd` turns them into EAL arguments; the command
/// line `--eal-args` replaces them entirely when given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EalConfig {
    /// Cores for EAL (`-l`), e.g. "0-1". The first is the main (control)
    /// lcore; the others run workers, one per (port, queue).
    pub cores: String,
    /// DPDK's `--lcores` mapping instead of `cores`, to run more lcores than
    /// CPUs, e.g. "(0-2)@(0-1)": lcores 0, 1 and 2 on CPUs 0 and 1. For labs
    /// and tests on small machines; on a real director give each worker its
    /// own CPU with `cores`.
    pub lcores: Option<String>,
    /// Run without hugepages (`--no-huge`), for labs and CI.
    pub no_huge: bool,
    /// Memory in MiB (`-m`), needed with `no_huge`.
    pub memory_mb: Option<u32>,
    /// `--file-prefix`, so several DPDK processes can share a machine.
    pub file_prefix: Option<String>,
    /// Skip PCI probing (`--no-pci`); set when only virtual devices are used.
    pub no_pci: bool,
    /// Extra EAL arguments appended verbatim (log levels, ...).
    pub extra_args: Vec<String>,
}

impl Default for EalConfig {
    fn default() -> Self {
        EalConfig {
            cores: "0-1".into(),
            lcores: None,
            no_huge: false,
            memory_mb: None,
            file_prefix: None,
            no_pci: false,
            extra_args: Vec::new(),
        }
    }
}

/// One DPDK port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// A name used in logs, counters and `lbctl` (e.g. "lan0").
    pub name: String,
    /// The DPDK device: a virtual device spec such as
    /// `"net_af_packet0,iface=veth0"` or a PCI address such as `"0000:3b:00.0"`.
    pub device: String,
    /// The director's own address on this port, with the subnet prefix
    /// (e.g. "198.18.0.2/24"). Real servers for DR must be inside a port's subnet.
    pub address: Ipv4Cidr,
    /// The director's own IPv6 address on this port, with its prefix (e.g.
    /// "2001:db8::2/64"), next to `address`: IPv6 DR real servers must be
    /// inside it; the director answers Neighbour Discovery and ping for it
    /// (and for the port's link-local address, derived from its MAC) and
    /// solicits real servers' MACs from it. Default: None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Cidr>,
    /// Override the port's MAC address (default: the device's own).
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// The IP MTU of the port's link (576 to 9000, default 1500). Tunnel
    /// forwarding adds a 20-byte header: a packet whose total length plus 20
    /// exceeds the egress port's MTU is answered with ICMP "fragmentation
    /// needed" (DF set) or dropped (DF clear). lbd sets the NIC's MTU to
    /// this at start, and its packet buffers hold such a frame in one
    /// segment.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// The kernel exception path: a TAP interface of this name, created by
    /// lbd, carries the port's MAC and `address`, so the director's own
    /// host can talk through a port that DPDK owns (SSH, health checks,
    /// pings, a local service). Frames to the port's address that the
    /// dataplane does not answer itself (it answers ARP and ping) go to the
    /// kernel, rate-limited; what the kernel sends there goes out of the
    /// port. Default: None (no kernel path; such frames are dropped).
    #[serde(default)]
    pub kernel: Option<KernelPathConfig>,
    /// 802.1Q VLANs carried tagged on this port (a trunk), each a
    /// sub-interface with its own address: `[(id: 10, address:
    /// "198.18.10.2/24")]`. Untagged frames belong to the port itself;
    /// frames with another tag are dropped (`drop_vlan`). Default: [].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vlans: Vec<VlanConfig>,
}

fn default_mtu() -> u16 {
    1500
}

impl PortConfig {
    /// Whether `ip` is on one of this port's subnets (`address`, or
    /// `address6` for an IPv6 address).
    pub fn on_subnet(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.address.contains(a),
            IpAddr::V6(a) => self.address6.is_some_and(|c| c.contains(a)),
        }
    }
}

/// A port's kernel exception path (see [`PortConfig::kernel`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelPathConfig {
    /// Name of the TAP interface (1 to 15 characters: letters, digits,
    /// `-`, `_`, `.`), e.g. "lbd-lan0".
    pub iface: String,
    /// Frames per second handed to the kernel, at most (a flood to the
    /// director's address is dropped and counted beyond this). Default: 20000.
    #[serde(default = "default_kernel_rate")]
    pub rate_pps: u32,
}

fn default_kernel_rate() -> u32 {
    20_000
}

/// IPIP tunnel settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TunnelConfig {
    /// Outer source addresses for tunnelled packets, chosen per flow by a
    /// hash of the connection, so that real servers' RSS spreads tunnelled
    /// flows over their queues (the outer header is all their NIC sees).
    /// Written as a network, e.g. "198.18.0.192/27"; it must lie inside the
    /// subnet of the port that reaches the tunnel real servers, and its
    /// addresses must be reserved for the director. `None`: the egress
    /// port's own address.
    pub source_pool: Option<Ipv4Cidr>,
}

/// Worker layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// RX/TX queue pairs per port; one pinned worker lcore polls each RX queue.
    pub queues_per_port: u16,
    /// Packets pulled per `rx_burst` (at most 64).
    pub burst: u16,
    /// Mbufs in each packet pool (one pool per NUMA socket that has ports).
    pub mbufs: u32,
    /// The RSS hash key of every port with more than one queue (see
    /// [`RssKey`]). Default: the driver's own key.
    pub rss_key: RssKey,
    /// Idle backoff: after a run of empty polls (1024 in a row), a worker
    /// sleeps this many microseconds (1 to 100000) before each further
    /// poll, until packets come again. Saves the cores of a quiet
    /// director at the price of latency for the first packets after a
    /// quiet spell. None: busy-poll always (DPDK's usual way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_sleep_us: Option<u32>,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            queues_per_port: 1,
            burst: 32,
            mbufs: 8191,
            rss_key: RssKey::Default,
            idle_sleep_us: None,
        }
    }
}

/// Which key the NICs' RSS (Toeplitz) hash uses to spread flows over the
/// RX queues.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RssKey {
    /// The driver's default key. A connection's two directions (client →
    /// VIP, and for NAT real server → client) usually hash to different
    /// queues.
    #[default]
    Default,
    /// The 16-bit pattern 0x6d5a repeated: the hash of (src, dst) equals
    /// that of (dst, src), so both directions of an unrewritten flow land
    /// on the same queue number. A NAT reply is not the request's tuple
    /// swapped (it comes from the real server, not the VIP), so this does
    /// not keep NAT connections on one worker (measured:
    /// bench/RESULTS.md); the shared NAT table serves them either way.
    Symmetric,
    /// A key of your own, in hex (e.g. 80 digits for a 40-byte key); its
    /// length must be what the NIC uses (checked at start).
    Custom(String),
}

impl RssKey {
    /// The bytes of a `Custom` key, if its text is valid hex of 1 to 255
    /// bytes (separators `:` and spaces are allowed).
    pub fn custom_bytes(text: &str) -> Option<Vec<u8>> {
        let digits: Vec<u8> = text.bytes().filter(|b| *b != b':' && *b != b' ').collect();
        if digits.is_empty() || digits.len() & 1 == 1 || digits.len() > 510 {
            return None;
        }
        digits
            .chunks(2)
            .map(|p| {
                let hex = std::str::from_utf8(p).ok()?;
                u8::from_str_radix(hex, 16).ok()
            })
            .collect()
    }
}

/// Connection table sizing. Memory is reserved once at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnTableConfig {
    /// Maximum connections tracked at once (rounded up to the table's geometry).
    pub capacity: u32,
    /// Maximum NAT connections. They live in a separate table shared by all
    /// workers (replies arrive on another port or queue than requests); each
    /// takes two entries (request and reply direction).
    pub nat_capacity: u32,
}

impl Default for ConnTableConfig {
    fn default() -> Self {
        ConnTableConfig {
            capacity: 1 << 20,
            nat_capacity: 1 << 18,
        }
    }
}

/// Per-state timeouts in seconds (defaults are IPVS's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub tcp_established: u32,
    pub tcp_syn_recv: u32,
    pub tcp_fin_wait: u32,
    pub tcp_time_wait: u32,
    pub tcp_close: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established: 900,
            tcp_syn_recv: 60,
            tcp_fin_wait: 120,
            tcp_time_wait: 120,
            tcp_close: 10,
            udp: 300,
        }
    }
}

/// When the SYN-flood defence is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FloodMode {
    /// Engages by itself when a worker's table fills past
    /// `engage_percent` or refuses a new flow; releases when the table is
    /// back under `release_percent` and nothing was refused for
    /// `hold` seconds.
    #[default]
    Auto,
    /// Always engaged (an operator who knows an attack is on).
    On,
    /// Never: a full table refuses new flows (lbd before the defence).
    Off,
}

/// The SYN-flood defence (IPVS's `drop_entry` and `secure_tcp`, Katran's
/// stateless fallback). While engaged, on each worker:
/// * new half-open (SYN_RECV, never ACKed) connections get the short
///   `syn_recv_timeout` instead of `timeouts.tcp_syn_recv`;
/// * a new SYN that finds no room evicts the oldest half-open entry near
///   its slot — established connections are never evicted for it;
/// * services with a consistent-hash scheduler (sh, mh) forward what still
///   finds no room (and mid-flow segments of untracked flows) statelessly,
///   by the hash: every packet of a client goes to the same real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynFloodConfig {
    pub mode: FloodMode,
    /// Seconds a half-open connection lives while the defence is engaged.
    pub syn_recv_timeout: u32,
    /// Table fill (percent of a worker's capacity) that engages it (Auto).
    pub engage_percent: u8,
    /// Table fill under which it may release (Auto).
    pub release_percent: u8,
    /// Seconds without a refused or evicting insert before it releases.
    pub hold: u32,
}

impl Default for SynFloodConfig {
    fn default() -> Self {
        SynFloodConfig {
            mode: FloodMode::Auto,
            syn_recv_timeout: 5,
            engage_percent: 85,
            release_percent: 50,
            hold: 10,
        }
    }
}

/// Neighbour resolution timers, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeighbourConfig {
    /// Re-confirm a resolved neighbour after this long.
    pub refresh: u32,
    /// Forget a neighbour that has not answered for this long.
    pub expire: u32,
}

impl Default for NeighbourConfig {
    fn default() -> Self {
        NeighbourConfig {
            refresh: 30,
            expire: 90,
        }
    }
}

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn ip_proto(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// Scheduling algorithm (IPVS names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (the default, as in IPVS).
    #[default]
    Wlc,
    /// Source hashing: a client address always maps to the same server
    /// (a static table, buckets shared by weight).
    Sh,
    /// Maglev consistent hashing of the client address, with weights: a
    /// change of servers moves few clients.
    Mh,
    /// Shortest expected delay: least (active + 1) / weight.
    Sed,
    /// Never queue: an idle server if there is one, otherwise as sed.
    Nq,
    /// Weighted failover: the server with the highest weight.
    Fo,
}

impl Scheduler {
    /// Every scheduler, in IPVS's usual order.
    pub const ALL: [Scheduler; 9] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Sh,
        Scheduler::Mh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
    ];

    /// The scheduler IPVS calls `name` (case-insensitive), if lbd has it.
    pub fn from_name(name: &str) -> Option<Scheduler> {
        Scheduler::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Sh => "sh",
            Scheduler::Mh => "mh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
        }
    }
}

/// Forwarding method (`ipvsadm -g/-i/-m`). DR and IPIP tunnel so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Forward {
    /// Direct routing: rewrite MAC addresses only.
    #[default]
    Dr,
    /// IPIP tunnel (`ipvsadm -i`): the client's packet is sent unchanged
    /// inside an outer IPv4 header (protocol 4) addressed to the real server.
    Tunnel,
    /// Masquerading (`ipvsadm -m`): the destination address and port are
    /// rewritten to the real server's; the real server's default gateway is
    /// the director, whose replies are rewritten back to come from the VIP.
    Nat,
}

impl Forward {
    /// The word `ipvsadm -Ln` prints.
    pub fn ipvs_name(self) -> &'static str {
        match self {
            Forward::Dr => "Route",
            Forward::Tunnel => "Tunnel",
            Forward::Nat => "Masq",
        }
    }
}

/// A virtual service: VIP, port, protocol, scheduler and real servers —
/// or, with `fwmark`, a service group: several (VIP, protocol, ports) in
/// one service (IPVS's firewall-mark services).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ServiceText", into = "ServiceText")]
pub struct ServiceConfig {
    /// The VIP, IPv4 or IPv6 (an IPv6 service's real servers are IPv6 and
    /// forwarded by DR; service groups are IPv4). Left out in a service group,
    /// whose addresses are in `match`.
    pub vip: IpAddr,
    /// The port; 0 (or left out): every port of the VIP (needs
    /// persistence). Left out in a service group.
    pub port: u16,
    /// A service group's mark (`ipvsadm -f MARK`, keepalived's
    /// `virtual_server fwmark MARK`): the group serves every (VIP,
    /// protocol, port) that [`Config::fwmarks`] gives this mark, with one
    /// scheduler and, with persistence, one affinity per client across all
    /// of them. `None`: an ordinary service on `vip`:`port`.
    pub fwmark: Option<u32>,
    /// TCP or UDP. A service group's protocols are its members'.
    pub protocol: Protocol,
    pub scheduler: Scheduler,
    pub real_servers: Vec<RealServerConfig>,
    /// Persistence (`ipvsadm -p TIMEOUT -M NETMASK`): a client keeps going
    /// to the real server it was first given, across connections, until
    /// `timeout` seconds pass without any of its packets. `None`: every
    /// connection is scheduled on its own. Required for port 0 (a service
    /// on all ports), as in IPVS.
    pub persistence: Option<Persistence>,
    /// How lbd checks this service's real servers (each real server may
    /// override it). `None`: not checked; real servers are always in
    /// service (as with plain ipvsadm).
    pub health_check: Option<HealthCheck>,
    /// The "sorry" server: scheduled only while every real server of the
    /// service is down by its health check (ldirectord's `fallback`).
    pub fallback: Option<Fallback>,
    /// IPVS's `sloppy_tcp`: a TCP segment of a connection the director
    /// does not know (not a SYN, not a RST) is adopted and scheduled instead
    /// of dropped — after a restart of lbd, established clients continue
    /// (with `sh` or `mh`, on the same real server; with other schedulers,
    /// possibly on another one, which then resets the connection). Off by
    /// default: it lets mid-flow probes create connections.
    pub sloppy_tcp: bool,
    /// ECMP mode, for several directors behind routers that spread flows
    /// over them: a TCP segment that misses the connection table and is
    /// not a SYN is forwarded by the consistent hash (the real server its
    /// SYN would have got) instead of dropped, and its connection is
    /// created (ESTABLISHED; FIN_WAIT for a FIN), so a flow the routers
    /// move from another director keeps its real server. A mid-flow RST is
    /// forwarded by the hash without an entry. Needs scheduler `mh`, the
    /// one whose choice is the same on every director with the same real
    /// servers. Default: false.
    pub ecmp: bool,
}

/// A service as the file spells it: `vip` and `port` are required of an
/// ordinary service and left out of a service group.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceText {
    #[serde(default, with = "bare_option", skip_serializing_if = "Option::is_none")]
    vip: Option<IpAddr>,
    #[serde(default, with = "bare_option", skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fwmark: Option<u32>,
    #[serde(default = "default_protocol")]
    protocol: Protocol,
    #[serde(default)]
    scheduler: Scheduler,
    #[serde(default)]
    real_servers: Vec<RealServerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    persistence: Option<Persistence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    health_check: Option<HealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fallback: Option<Fallback>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    sloppy_tcp: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ecmp: bool,
}

/// An optional field written as its bare value (`vip: "198.18.0.10"`, not
/// `Some(...)`): absent is `None`.
mod bare_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => v.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }
}

impl TryFrom<ServiceText> for ServiceConfig {
    type Error = String;
    fn try_from(t: ServiceText) -> Result<ServiceConfig, String> {
        // A group's stray vip or port is kept for validation to point at.
        let group = t.fwmark.is_some();
        let missing = |f: &str| {
            format!(
                "missing field named `{f}` (only a service group, with `fwmark`, leaves it \
                 out)"
            )
        };
        Ok(ServiceConfig {
            vip: match t.vip {
                Some(a) => a,
                None if group => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                None => return Err(missing("vip")),
            },
            port: match t.port {
                Some(p) => p,
                None if group => 0,
                None => return Err(missing("port")),
            },
            fwmark: t.fwmark,
            protocol: t.protocol,
            scheduler: t.scheduler,
            real_servers: t.real_servers,
            persistence: t.persistence,
            health_check: t.health_check,
            fallback: t.fallback,
            sloppy_tcp: t.sloppy_tcp,
            ecmp: t.ecmp,
        })
    }
}

impl From<ServiceConfig> for ServiceText {
    fn from(s: ServiceConfig) -> ServiceText {
        let group = s.is_group();
        ServiceText {
            vip: (!group || !s.vip.is_unspecified()).then_some(s.vip),
            port: (!group || s.port != 0).then_some(s.port),
            fwmark: s.fwmark,
            protocol: s.protocol,
            scheduler: s.scheduler,
            real_servers: s.real_servers,
            persistence: s.persistence,
            health_check: s.health_check,
            fallback: s.fallback,
            sloppy_tcp: s.sloppy_tcp,
            ecmp: s.ecmp,
        }
    }
}

/// Most ports all `fwmarks` entries may hold together: each is one entry
/// of the lookup map every packet consults.
pub const MAX_GROUP_PORTS: usize = 8192;

/// One (VIP, protocol, ports) that carries a mark (a member of the service
/// group of that mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMatch {
    pub vip: IpAddr,
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
    /// A port (`80`) or an inclusive range (`"8000-8099"`).
    pub ports: PortRange,
}

/// An inclusive range of ports, written `80` or `"8000-8099"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn one(port: u16) -> PortRange {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// How many ports it holds (0 if `last` is below `first`).
    pub fn len(self) -> usize {
        (self.last as usize + 1).saturating_sub(self.first as usize)
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn ports(self) -> std::ops::RangeInclusive<u16> {
        self.first..=self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|_| format!("`{t}` is not a port number (0 to 65535)"))
        };
        // iptables writes ranges 8000:8099; accept that too.
        match s.split_once(['-', ':']) {
            Some((a, b)) => Ok(PortRange {
                first: num(a)?,
                last: num(b)?,
            }),
            None => num(s).map(PortRange::one),
        }
    }
}

impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.first == self.last {
            s.serialize_u16(self.first)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port (80) or a range of ports (\"8000-8099\")")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PortRange, E> {
                u16::try_from(n)
                    .map(PortRange::one)
                    .map_err(|_| E::custom(format!("{n} is not a port number (0 to 65535)")))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<PortRange, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("{n} is not a port number (0 to 65535)")))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PortRange, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visit)
    }
}

impl ServiceConfig {
    /// A service group (it has a `fwmark`).
    pub fn is_group(&self) -> bool {
        self.fwmark.is_some()
    }

    /// How messages and listings name it: `198.18.0.100:80/tcp`, or
    /// `fwmark 3`.
    pub fn name(&self) -> String {
        match self.fwmark {
            Some(m) => format!("fwmark {m}"),
            None => {
                let p = match self.protocol {
                    Protocol::Tcp => "tcp",
                    Protocol::Udp => "udp",
                };
                format!("{}/{p}", crate::addr::SockAddr(self.vip, self.port))
            }
        }
    }
}

/// A service's fallback server (see [`ServiceConfig::fallback`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    pub address: IpAddr,
    /// Defaults to the service port.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub forward: Forward,
}

/// A health check (keepalived's checkers, ldirectord's `checktype`).
///
/// A real server is checked every `interval_ms`; each check must succeed
/// within `timeout_ms`. Its first result decides its state at once (until
/// then it is in service); afterwards `fall` consecutive failures take it
/// out of service and `rise` consecutive successes bring it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// What a check does.
    pub check: CheckKind,
    #[serde(default = "default_check_interval")]
    pub interval_ms: u32,
    #[serde(default = "default_check_timeout")]
    pub timeout_ms: u32,
    /// Consecutive successes that bring a down server back.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures that take an up server out.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Check this port instead of the real server's (keepalived's
    /// `connect_port`).
    #[serde(default)]
    pub port: Option<u16>,
    /// What a failed server becomes.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Also end the failed server's existing connections at once (IPVS's
    /// `expire_nodest_conn`): their next packet is dropped and a new SYN (or
    /// UDP datagram) is scheduled to a live server. Default: false (they
    /// continue, in case the server still serves them).
    #[serde(default)]
    pub expire_connections: bool,
}

fn default_check_interval() -> u32 {
    5000
}
fn default_check_timeout() -> u32 {
    3000
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

/// The kinds of health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum CheckKind {
    /// A TCP connection can be opened (keepalived's TCP_CHECK).
    Tcp,
    /// An HTTP/1.0 GET of `path` answers with `status` and, if given, a
    /// body containing `expect` (ldirectord's negotiate check with
    /// `request` and `receive`; keepalived's HTTP_GET).
    Http {
        #[serde(default = "default_http_path")]
        path: String,
        #[serde(default = "default_http_status")]
        status: u16,
        #[serde(default)]
        expect: Option<String>,
        /// The Host header (default: the real server's address).
        #[serde(default)]
        host: Option<String>,
    },
    /// A UDP datagram `send` is answered; with `expect`, by a datagram
    /// containing it.
    Udp {
        send: String,
        #[serde(default)]
        expect: Option<String>,
    },
    /// A command exits with status 0 within the timeout (keepalived's
    /// MISC_CHECK). It runs with `LBD_RS_ADDRESS`, `LBD_RS_PORT`,
    /// `LBD_VIP`, `LBD_VPORT`, `LBD_PROTOCOL` and `LBD_FWMARK` (a service
    /// group's mark, empty otherwise) in its environment.
    Exec {
        command: String,
        #[serde(default)]
        args: Vec<String>,
    },
}

fn default_http_path() -> String {
    "/".into()
}
fn default_http_status() -> u16 {
    200
}

/// What a real server that fails its health check becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OnFailure {
    /// Out of scheduling: no new connections, and persistent clients lose
    /// their affinity to it (keepalived's default).
    #[default]
    Remove,
    /// Weight 0 (ldirectord's `quiescent = yes`): no new connections;
    /// existing connections and persistent clients keep going to it.
    Quiesce,
}

/// Persistence of a service (`ipvsadm -p [TIMEOUT] [-M NETMASK]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Persistence {
    /// Seconds a client's affinity outlives its last packet (IPVS's default 300).
    pub timeout: u32,
    /// Prefix length applied to an IPv4 client address: clients in the same
    /// /`netmask` network share one affinity (32: each address its own).
    pub netmask: u8,
    /// Prefix length applied to an IPv6 client address (0 to 128; `None`:
    /// 128, each address its own), as `ipvsadm -M` takes a prefix length
    /// for IPv6 services. Only for IPv6 services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<u8>,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            timeout: 300,
            netmask: 32,
            prefix: None,
        }
    }
}

impl Persistence {
    /// IPv4 persistence with this timeout and netmask (a prefix length).
    pub fn v4(timeout: u32, netmask: u8) -> Persistence {
        Persistence {
            timeout,
            netmask,
            prefix: None,
        }
    }

    /// The prefix length applied to client addresses of a service on a
    /// VIP of `vip`'s family: `netmask` for IPv4, `prefix` (default 128)
    /// for IPv6.
    pub fn client_prefix(self, vip: IpAddr) -> u8 {
        match vip {
            IpAddr::V4(_) => self.netmask,
            IpAddr::V6(_) => self.prefix.unwrap_or(128),
        }
    }

    /// The client address mask (host order).
    pub fn mask(self) -> u32 {
        match self.netmask {
            0 => 0,
            n if n >= 32 => u32::MAX,
            n => u32::MAX << (32 - n as u32),
        }
    }
}

fn default_protocol() -> Protocol {
    Protocol::Tcp
}

/// A real server behind a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerConfig {
    pub address: IpAddr,
    /// Must equal the service port in DR and tunnel mode (the packet is not
    /// rewritten).
    /// Defaults to the service port.
    #[serde(default)]
    pub port: Option<u16>,
    /// 0..=65535; 0 quiesces the server (no new connections).
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub forward: Forward,
    /// This real server's own health check, replacing the service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

fn default_weight() -> u32 {
    1
}

/// An IPv4 address with a prefix length, written "198.18.0.2/24".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    pub fn netmask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix as u32)
        }
    }

    /// Whether `ip` is inside this subnet.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        let m = self.netmask();
        (u32::from(ip) & m) == (u32::from(self.addr) & m)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not ADDRESS/PREFIX (e.g. 198.18.0.2/24)"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("prefix `{p}` is not a number from 0 to 32"))?;
        Ok(Ipv4Cidr { addr, prefix })
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An IPv6 address with a prefix length, written "2001:db8::2/64".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Cidr {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Ipv6Cidr {
    /// Whether `ip` is inside this subnet.
    pub fn contains(self, ip: Ipv6Addr) -> bool {
        let mask = match self.prefix {
            0 => 0,
            p => u128::MAX << (128 - u32::from(p.min(128))),
        };
        (u128::from(ip) & mask) == (u128::from(self.addr) & mask)
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv6Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not ADDRESS/PREFIX (e.g. 2001:db8::2/64)"))?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv6 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| format!("prefix `{p}` is not a number from 0 to 128"))?;
        Ok(Ipv6Cidr { addr, prefix })
    }
}

impl Serialize for Ipv6Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv6Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
