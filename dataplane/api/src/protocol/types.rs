//! Requests, responses and the data they carry.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

use crate::config::{
    Forward, GroupMatch, Persistence, Protocol, RealServerConfig, Scheduler, ServiceConfig,
    Timeouts,
};

/// What identifies a service: protocol, VIP and port (`-t VIP:PORT`), or
/// a service group's mark (`-f MARK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    pub protocol: Protocol,
    pub vip: IpAddr,
    pub port: u16,
    /// A service group's mark; then the other fields are TCP, 0.0.0.0
    /// (IPv4's unspecified address, whatever the members' family) and 0 (see [`ServiceKey::group`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
}

impl ServiceKey {
    /// The service on `vip`:`port`/`protocol`.
    pub fn addr(protocol: Protocol, vip: IpAddr, port: u16) -> ServiceKey {
        ServiceKey {
            protocol,
            vip,
            port,
            fwmark: None,
        }
    }

    /// The service group with mark `mark`.
    pub fn group(mark: u32) -> ServiceKey {
        ServiceKey {
            protocol: Protocol::Tcp,
            vip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            fwmark: Some(mark),
        }
    }

    /// The key of a configured service (its mark, for a group).
    pub fn of(s: &ServiceConfig) -> ServiceKey {
        match s.fwmark {
            Some(m) => ServiceKey::group(m),
            None => ServiceKey::addr(s.protocol, s.vip, s.port),
        }
    }

    /// Whether `s` is the service this key names.
    pub fn names(&self, s: &ServiceConfig) -> bool {
        *self == ServiceKey::of(s)
    }
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(m) = self.fwmark {
            return write!(f, "fwmark {m}");
        }
        let p = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{}/{}", crate::addr::SockAddr(self.vip, self.port), p)
    }
}

/// Changes to a service (`ipvsadm -E`); `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEdit {
    pub scheduler: Option<Scheduler>,
    /// Turn persistence on (or change it), or off (`ipvsadm -E` with or
    /// without `-p`); `None` leaves it as it is.
    #[serde(default)]
    pub persistence: Option<PersistenceChange>,
}

/// A change of a service's persistence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersistenceChange {
    /// No persistence: every connection is scheduled on its own.
    Off,
    /// Persistence with this timeout and netmask.
    Set(Persistence),
}

/// Changes to a real server (`ipvsadm -e`); `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealEdit {
    pub weight: Option<u32>,
    pub forward: Option<Forward>,
}

/// How to take a real server out of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoveMode {
    /// Remove now; its connections are dropped (counted `drop_real_server_gone`).
    Immediate,
    /// Set its weight to 0 (no new connections) and remove it once its last
    /// connection has ended.
    Drain,
}

/// Filter for the connection listing; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnFilter {
    pub protocol: Option<Protocol>,
    pub client: Option<IpAddr>,
    pub vip: Option<IpAddr>,
    pub vport: Option<u16>,
    pub real: Option<IpAddr>,
    /// State name as listed (`ESTABLISHED`, `SYN_RECV`, ...), case-insensitive.
    pub state: Option<String>,
}

/// Timeout changes (`ipvsadm --set tcp tcpfin udp`); `None` keeps a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutEdit {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

/// A request from lbctl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Version, uptime, ports, workers, config generation.
    Status,
    /// Services and real servers (`ipvsadm -Ln`), with counters and rates.
    List,
    /// The connection table (`ipvsadm -Lnc`), filtered, at most `limit` entries.
    Conns {
        filter: ConnFilter,
        limit: u32,
    },
    AddService(ServiceConfig),
    EditService {
        key: ServiceKey,
        edit: ServiceEdit,
    },
    DeleteService(ServiceKey),
    AddReal {
        service: ServiceKey,
        real: RealServerConfig,
    },
    EditReal {
        service: ServiceKey,
        address: IpAddr,
        edit: RealEdit,
    },
    DeleteReal {
        service: ServiceKey,
        address: IpAddr,
        mode: RemoveMode,
    },
    /// Remove every service (`ipvsadm -C`).
    Clear,
    /// Zero the counters (`ipvsadm -Z`).
    Zero,
    GetTimeouts,
    SetTimeouts(TimeoutEdit),
    /// The running configuration as RON text.
    Save,
    /// Replace the running configuration with this RON text, atomically.
    Restore {
        ron: String,
    },
    /// Check RON text as lbd would, without applying it.
    Validate {
        ron: String,
    },
    /// Re-read the configuration file from disk and apply it.
    Reload,
    /// Scale-out: withdraw every VIP's BGP announcement and keep them
    /// withdrawn (`lbctl director drain`); connections keep being
    /// forwarded. Answered at once with [`Response::Drain`]; the waiting
    /// for the routers is `DrainStatus`'s.
    DirectorDrain,
    /// Announce again what should be (`lbctl director resume`).
    DirectorResume,
    /// How a drain is going ([`Response::Drain`]).
    DrainStatus,
}

impl Request {
    /// Whether the request changes state (and so needs a privileged peer).
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Request::Status
                | Request::List
                | Request::Conns { .. }
                | Request::GetTimeouts
                | Request::Save
                | Request::Validate { .. }
                | Request::DrainStatus
        )
    }
}

/// Traffic counters of a service or real server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub conns: u64,
    pub packets_in: u64,
    pub bytes_in: u64,
    /// Replies through the director (always 0 in DR: replies bypass it).
    pub packets_out: u64,
    pub bytes_out: u64,
}

/// Per-second rates, averaged over the last few seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub conns: f64,
    pub packets_in: f64,
    pub bytes_in: f64,
    pub packets_out: f64,
    pub bytes_out: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealInfo {
    pub address: IpAddr,
    pub port: u16,
    pub forward: Forward,
    pub weight: u32,
    /// ipvsadm's ActiveConn.
    pub active: u64,
    /// ipvsadm's InActConn.
    pub inactive: u64,
    /// Being drained: removed once its connections end.
    pub draining: bool,
    pub counters: Counters,
    pub rates: Rates,
    /// Its health check's view; `None` when it is not checked.
    #[serde(default)]
    pub health: Option<RealHealth>,
    /// The service's fallback ("sorry") server, not a real server: in
    /// service only while every real server is down.
    #[serde(default)]
    pub fallback: bool,
}

/// A checked real server's health (`lbctl list`, `--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealHealth {
    /// In service by its check. Before its first check ends it counts as up.
    pub up: bool,
    /// At least one check has ended.
    pub checked: bool,
    /// The last check's outcome, e.g. "HTTP 200" or "connect: refused".
    pub last: String,
    /// Seconds since its last change of state (or since checks began).
    pub since_s: f64,
    /// Changes of state since checks began.
    pub transitions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub key: ServiceKey,
    /// A service group's members (its `match`); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<GroupMatch>,
    pub scheduler: Scheduler,
    /// `ipvsadm -p TIMEOUT -M NETMASK`; `None`: not persistent.
    #[serde(default)]
    pub persistence: Option<Persistence>,
    pub counters: Counters,
    pub rates: Rates,
    pub reals: Vec<RealInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnInfo {
    pub protocol: Protocol,
    pub client: IpAddr,
    pub client_port: u16,
    pub vip: IpAddr,
    pub vport: u16,
    /// `None` when its real server has been removed.
    pub real: Option<IpAddr>,
    pub real_port: u16,
    pub state: String,
    /// Milliseconds until it expires unless refreshed.
    pub expires_ms: u32,
    pub worker: u16,
    /// A persistence template (`ipvsadm -Lnc` shows them with state NONE
    /// and client port 0), not a connection: `client` is the masked client
    /// address, `vport` the service's port, `real` the server the client
    /// sticks to.
    #[serde(default)]
    pub template: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnList {
    pub conns: Vec<ConnInfo>,
    /// Live connections in all tables (whatever the filter and limit).
    pub total: u64,
    /// More entries matched than `limit`.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortStatus {
    pub name: String,
    pub device: String,
    pub address: String,
    pub mac: String,
    pub link_up: bool,
    pub speed_mbps: u32,
    /// What device bring-up negotiated (empty from an older lbd).
    #[serde(default)]
    pub device_info: Option<PortDeviceStatus>,
}

/// A port's device as brought up: driver, queues and what was negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PortDeviceStatus {
    /// DPDK driver, e.g. `net_virtio_user`.
    pub driver: String,
    /// NUMA socket of the device (-1: unknown).
    pub socket: i32,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mtu: u16,
    /// RSS hash functions in use (`ipv4-tcp`, ...); empty: no RSS.
    pub rss: Vec<String>,
    /// `default`, `symmetric`, `custom` or `none`.
    pub rss_key: String,
    /// Offloads in use (`tx-tcp-csum`, `rx-rss-hash`, ...).
    pub offloads: Vec<String>,
    /// Link state changes since start.
    pub link_changes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub index: u16,
    pub port: String,
    pub queue: u16,
    pub lcore: u32,
    pub busy_polls: u64,
    pub idle_polls: u64,
    pub conns: u64,
    /// Whether the worker's SYN-flood defence is engaged.
    #[serde(default)]
    pub flood_defence: bool,
    /// Frames this worker received (its RX queue's share of the port's
    /// traffic: the RSS spread).
    #[serde(default)]
    pub rx_frames: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusInfo {
    pub version: String,
    pub uptime_s: f64,
    pub config_path: String,
    pub generation: u64,
    /// Outcome of the last reload or change, if any.
    pub last_change_ok: bool,
    pub last_change_message: String,
    pub ports: Vec<PortStatus>,
    pub workers: Vec<WorkerStatus>,
    pub conn_capacity: u64,
    pub conns: u64,
    /// The workers' event and drop counters that are not zero, summed over
    /// workers, by name (`forwarded_dr`, `drop_tcp_no_conn`, ...; see
    /// `lbcore::counters::Counter`). Since start; `zero` does not reset them.
    #[serde(default)]
    pub counters: std::collections::BTreeMap<String, u64>,
    /// The first VRRP instance, when configured: `vrrp` (the IPv4 VIPs'),
    /// or `vrrp6` when it is the only one. Kept for scripts that read one
    /// state; `vrrp_instances` has them all.
    #[serde(default)]
    pub vrrp: Option<VrrpInfo>,
    /// Every VRRP instance that runs, in order: `vrrp`, then `vrrp6`.
    #[serde(default)]
    pub vrrp_instances: Vec<VrrpInfo>,
    /// BGP announcement of the VIPs, when `bgp` is configured (boxed: a
    /// response stays small).
    #[serde(default)]
    pub announce: Option<Box<AnnounceInfo>>,
}

/// What the director announces by BGP, and the speaker's sessions
/// (`lbctl status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnounceInfo {
    /// Drained by `lbctl director drain` (until `resume`).
    pub drained: bool,
    pub vips: Vec<VipAnnouncement>,
    pub speaker: SpeakerInfo,
    /// Route changes (`ip route`) that failed since start; each is retried.
    #[serde(default)]
    pub route_errors: u64,
}

/// One VIP's announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipAnnouncement {
    pub vip: IpAddr,
    /// Its route is in the announce table (the speaker exports it).
    pub announced: bool,
    /// Why: `announced`, `drained`, `stopping`, `not forwarding`,
    /// `no live real server`, or an error applying the route.
    pub reason: String,
}

/// The BGP speaker as its control socket reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SpeakerInfo {
    /// `ok`, `not configured` (no `bgp.birdc`), `unknown` (not asked yet)
    /// or why it could not be asked (`unreachable: ...`).
    pub state: String,
    pub sessions: Vec<BgpSession>,
}

/// One BGP session of the speaker (`birdc show protocols`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpSession {
    /// The speaker's name for it (BIRD's protocol name).
    pub name: String,
    /// `up`, `down`, `start`, ... (BIRD's protocol state).
    pub state: String,
    /// BGP's state and detail: `Established`, `Active  Socket: ...`.
    pub info: String,
}

/// How a director drain is going (`lbctl director drain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainReport {
    /// The director is drained (its VIPs withdrawn).
    pub drained: bool,
    /// Milliseconds since the drain began (0 when not drained).
    pub since_ms: u64,
    /// Milliseconds since the last new connection (or since the drain
    /// began, if none arrived since).
    pub quiet_ms: u64,
    /// The routers have moved the traffic: no new connection for
    /// `bgp.drain_quiet_ms`.
    pub moved: bool,
    /// New connections that arrived since the drain began.
    pub new_conns: u64,
    /// Connections still in the tables.
    pub open_conns: u64,
}

/// The VRRP instance's state (`lbctl status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpInfo {
    /// Which instance: `vrrp` (IPv4 VIPs) or `vrrp6` (IPv6 VIPs), as in
    /// the configuration ("" from an lbd that did not say).
    #[serde(default)]
    pub instance: String,
    /// INIT, BACKUP, MASTER or FAULT.
    pub state: String,
    pub vrid: u8,
    pub priority: u8,
    /// The current master's address, when known.
    pub master: Option<std::net::IpAddr>,
    /// Changes of state since start.
    pub transitions: u64,
}

/// A successful answer.
// One answer per request on the control socket, never on the packet path:
// a large Status variant costs nothing worth boxing it for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// A change was applied and persisted; the new config generation.
    Applied {
        generation: u64,
    },
    /// The request needed nothing done (e.g. zero).
    Done,
    Status(StatusInfo),
    Services(Vec<ServiceInfo>),
    Conns(ConnList),
    Timeouts(Timeouts),
    /// RON text of the running configuration.
    Config(String),
    /// The text is a valid configuration.
    Valid,
    /// A director drain's progress.
    Drain(DrainReport),
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The frame or request could not be understood.
    BadRequest,
    VersionMismatch,
    /// Peer may read but not change (not root, not in the control group).
    PermissionDenied,
    NotFound,
    AlreadyExists,
    /// The change would make the configuration invalid.
    Invalid,
    /// Applying worked in memory but writing the file failed; rolled back.
    PersistFailed,
    TooLarge,
    Internal,
}

impl ErrorKind {
    /// lbctl's exit status for this error (scripts rely on these).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::BadRequest | ErrorKind::VersionMismatch | ErrorKind::TooLarge => 3,
            ErrorKind::PermissionDenied => 4,
            ErrorKind::NotFound => 5,
            ErrorKind::AlreadyExists => 6,
            ErrorKind::Invalid => 2,
            ErrorKind::PersistFailed | ErrorKind::Internal => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFrame {
    pub version: u32,
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFrame {
    pub version: u32,
    pub response: Result<Response, ApiError>,
}
