//! Device bring-up: from what each port's driver offers (`rte_eth_dev_info`)
//! to configured, started ports, their packet pools, and the lcore of every
//! worker.
//!
//! The decisions are a pure function, [`plan`], over a plain [`DevCaps`]
//! (unit-tested below with synthetic devices: no checksum offload, no RSS,
//! one queue); [`bring_up`] reads the real capabilities, applies the plan
//! and logs what was negotiated. Per port:
//!
//! * **Queues and descriptors.** The configured RX queues (an error if the
//!   device has fewer), one TX queue per worker when the device has that
//!   many (fewer are shared, see `worker::TxPath`), 1024 descriptors each
//!   within the device's limits.
//! * **RSS** over IPv4 and IPv6 TCP/UDP (and the 2-tuple for other IP),
//!   whatever of that the device hashes, with the configured key
//!   (`workers.rss_key`): the driver's, a symmetric one (0x6d5a repeated, so
//!   both directions of a connection hash alike), or a custom one of the
//!   device's key length. A device without RSS and several queues still
//!   works (virtio's queues are chosen by the peer), with a warning.
//! * **Offloads** that the device offers and lbd can use: IPv4/TCP/UDP
//!   checksums on TX, the RSS hash in the mbuf, and mbuf fast free when
//!   every mbuf comes from one pool (one NUMA socket). The TX checksums in
//!   force are given to every worker ([`Plan::tx_checksums`]): rewrites
//!   that recompute a checksum in full leave it to the egress port's NIC
//!   (`lbcore::pipeline::buf`; which ones, and why NAT's TCP/UDP checksums
//!   stay incremental: `pipeline/nat.rs` and docs/DEPLOYMENT.md).
//! * **MTU** from the port's `mtu`, within the device's range. Each pool's
//!   buffers hold the largest frame of its ports in one segment, so RX
//!   scatter is never asked for; a frame a driver chains anyway is dropped
//!   and counted by the worker (`drop_multi_segment`), never parsed from
//!   its first segment.
//! * **NUMA.** One pool per socket that has ports; each worker runs on an
//!   lcore of its port's socket when EAL has one, and a warning names each
//!   worker that polls a port on another socket.
//!
//! * **Link state.** A device that raises link-state change interrupts
//!   (`RTE_ETH_DEV_INTR_LSC` in its `dev_flags`) gets them turned on
//!   (`intr_conf.lsc`); its callback only flags the port and wakes the link
//!   watcher. Other devices are polled every 250 ms, and so are those whose
//!   driver sets the flag but never calls back ([`LSC_NOT_DELIVERED`]).
//!
//! At run time a thread watches the links (logged and counted on change);
//! `/metrics` reads the drivers' extended stats.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use lbcore::config::{Config, RssKey};
use lbcore::pipeline::TxChecksums;
use lbcore::wire::MacAddr;
use tracing::{info, warn};

use dpdk::sys;

/// Descriptors per RX and TX queue we ask for (within the device's limits).
pub const WANT_DESC: u16 = 1024;

/// RSS hash functions lbd wants: IPv4 and IPv6, TCP and UDP by the 4-tuple,
/// other IP by addresses.
pub const RSS_WANTED: u64 = sys::RTE_ETH_RSS_IPV4
    | sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP
    | sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP
    | sys::RTE_ETH_RSS_IPV6
    | sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP
    | sys::RTE_ETH_RSS_NONFRAG_IPV6_UDP;

/// TX checksum offloads lbd asks for when offered (NAT and tunnel rewrites).
pub const TX_CSUM: u64 = sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM
    | sys::RTE_ETH_TX_OFFLOAD_TCP_CKSUM
    | sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM;

/// Drivers that set `RTE_ETH_DEV_INTR_LSC` but never call the
/// application's link-state callbacks: DPDK 22.11's `net_tap` only updates
/// its own link status on the interrupt. Polled like drivers without LSC.
pub const LSC_NOT_DELIVERED: &[&str] = &["net_tap"];

/// Drivers that refuse a configuration with more TX than RX queues: DPDK
/// 22.11's `net_tap` pairs each TX queue with an RX queue. Workers share
/// their TX queues there, as on a device with few TX queues.
pub const TX_PAIRED_WITH_RX: &[&str] = &["net_tap"];

/// Key length used for a symmetric key when the driver does not say (the
/// Toeplitz key of most NICs).
pub const DEFAULT_KEY_LEN: usize = 40;

/// Ethernet header plus 4 bytes (a VLAN tag, or the CRC in ethdev's own
/// frame-size check): a frame is at most MTU + this.
pub const L2_OVERHEAD: u32 = 18;

/// What a port's driver offers, as a plain struct (a subset of
/// `rte_eth_dev_info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevCaps {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    /// Descriptor limits; a maximum of 0 means "not said".
    pub rx_desc_min: u16,
    pub rx_desc_max: u16,
    pub tx_desc_min: u16,
    pub tx_desc_max: u16,
    pub rx_offload_capa: u64,
    pub tx_offload_capa: u64,
    /// RSS hash functions the device offers.
    pub rss_offloads: u64,
    /// RSS key length in bytes (0: not said).
    pub hash_key_size: u8,
    /// MTU range (a maximum of 0 means "not said").
    pub min_mtu: u16,
    pub max_mtu: u16,
    /// Largest frame the device receives (0: not said).
    pub max_rx_pktlen: u32,
    /// The device raises link-state change interrupts.
    pub lsc_interrupt: bool,
}

impl From<&dpdk::PortInfo> for DevCaps {
    fn from(i: &dpdk::PortInfo) -> DevCaps {
        DevCaps {
            driver: i.driver.clone(),
            max_rx_queues: i.max_rx_queues,
            max_tx_queues: i.max_tx_queues,
            rx_desc_min: i.rx_desc_min,
            rx_desc_max: i.rx_desc_max,
            tx_desc_min: i.tx_desc_min,
            tx_desc_max: i.tx_desc_max,
            rx_offload_capa: i.rx_offload_capa,
            tx_offload_capa: i.tx_offload_capa,
            rss_offloads: i.rss_offloads,
            hash_key_size: i.hash_key_size,
            min_mtu: i.min_mtu,
            max_mtu: i.max_mtu,
            max_rx_pktlen: i.max_rx_pktlen,
            lsc_interrupt: i.lsc_interrupt,
        }
    }
}

/// What lbd wants of one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// RX queues (= workers polling this port).
    pub rx_queues: u16,
    /// Workers in all (each would like its own TX queue on every port).
    pub workers: u16,
    /// The port's IP MTU (`ports[].mtu`).
    pub mtu: u16,
    pub rss_key: RssKey,
    /// Every mbuf this port transmits comes from one pool (a single NUMA
    /// socket): the condition for mbuf fast free.
    pub single_pool: bool,
}

/// Which RSS key a port uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// No RSS (one queue, or the device cannot hash).
    None,
    Default,
    Symmetric,
    Custom,
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::None => "none",
            KeyKind::Default => "default",
            KeyKind::Symmetric => "symmetric",
            KeyKind::Custom => "custom",
        }
    }
}

/// How to configure one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub rss_hf: u64,
    /// `None`: the driver's default key.
    pub rss_key: Option<Vec<u8>>,
    pub key_kind: KeyKind,
    pub rx_offloads: u64,
    pub tx_offloads: u64,
    pub mtu: u16,
    /// Largest frame (IP MTU + [`L2_OVERHEAD`]): the pool's
    /// buffers hold this much in one segment.
    pub max_frame: u32,
    /// Link-state changes by interrupt (else the link is polled).
    pub lsc: bool,
    /// Things the operator should know (logged as warnings).
    pub warnings: Vec<String>,
}

impl Plan {
    /// The checksums this port's NIC computes on transmit, for the workers.
    pub fn tx_checksums(&self) -> TxChecksums {
        [
            (sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, TxChecksums::IPV4),
            (sys::RTE_ETH_TX_OFFLOAD_TCP_CKSUM, TxChecksums::TCP),
            (sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM, TxChecksums::UDP),
        ]
        .into_iter()
        .filter(|(bit, _)| self.tx_offloads & bit != 0)
        .fold(TxChecksums::NONE, |acc, (_, c)| acc.union(c))
    }
}

/// A port that cannot be set up as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    TooManyQueues { wanted: u16, max: u16 },
    MtuOutOfRange { mtu: u16, min: u16, max: u16 },
    FrameTooLong { frame: u32, max: u32 },
    KeyLength { given: usize, device: u8 },
    BadKey,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::TooManyQueues { wanted, max } => write!(
                f,
                "the device has {max} RX queue(s), workers.queues_per_port asks for {wanted}; \
                 lower queues_per_port"
            ),
            PlanError::MtuOutOfRange { mtu, min, max } => write!(
                f,
                "mtu {mtu} is outside what the device takes ({min} to {max})"
            ),
            PlanError::FrameTooLong { frame, max } => write!(
                f,
                "mtu gives {frame}-byte frames, the device receives at most {max}; lower mtu"
            ),
            PlanError::KeyLength { given, device } => write!(
                f,
                "workers.rss_key is {given} bytes, the device's RSS key is {device} bytes"
            ),
            PlanError::BadKey => f.write_str("workers.rss_key is not valid hex"),
        }
    }
}

/// The symmetric Toeplitz key of `len` bytes: 0x6d5a repeated. With a key
/// whose 16-bit halves repeat, swapping source and destination (addresses
/// and ports, each 16-bit aligned) leaves the hash unchanged.
pub fn symmetric_key(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| if i % 2 == 0 { 0x6d } else { 0x5a })
        .collect()
}

fn clamp_desc(want: u16, min: u16, max: u16) -> u16 {
    let max = if max == 0 { u16::MAX } else { max };
    want.clamp(min.min(max), max)
}

/// Decide how to configure a port with capabilities `caps` for `want`.
pub fn plan(caps: &DevCaps, want: &Want) -> Result<Plan, PlanError> {
    let mut warnings = Vec::new();
    if want.rx_queues > caps.max_rx_queues {
        return Err(PlanError::TooManyQueues {
            wanted: want.rx_queues,
            max: caps.max_rx_queues,
        });
    }
    let max_tx = if TX_PAIRED_WITH_RX.contains(&caps.driver.as_str()) {
        caps.max_tx_queues.min(want.rx_queues)
    } else {
        caps.max_tx_queues
    };
    let tx_queues = want.workers.min(max_tx).max(1);
    if tx_queues < want.workers {
        warnings.push(format!(
            "the device takes {max_tx} TX queue(s) for {} workers: workers share them (a lock \
             per burst)",
            want.workers
        ));
    }

    // RSS only spreads something with several queues.
    let mut rss_hf = 0;
    let mut rss_key = None;
    let mut key_kind = KeyKind::None;
    if want.rx_queues > 1 {
        rss_hf = RSS_WANTED & caps.rss_offloads;
        if rss_hf == 0 {
            warnings.push(format!(
                "{} RX queues but the device offers no RSS over IP: the device (or its peer) \
                 decides which queue a frame reaches",
                want.rx_queues
            ));
        } else {
            if rss_hf & sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP == 0 {
                warnings.push(
                    "the device cannot hash IPv4 TCP ports: flows spread by address only".into(),
                );
            }
            let device_len = caps.hash_key_size as usize;
            match &want.rss_key {
                RssKey::Default => key_kind = KeyKind::Default,
                RssKey::Symmetric => {
                    let len = if device_len == 0 {
                        DEFAULT_KEY_LEN
                    } else {
                        device_len
                    };
                    rss_key = Some(symmetric_key(len));
                    key_kind = KeyKind::Symmetric;
                }
                RssKey::Custom(text) => {
                    let key = RssKey::custom_bytes(text).ok_or(PlanError::BadKey)?;
                    if device_len != 0 && key.len() != device_len {
                        return Err(PlanError::KeyLength {
                            given: key.len(),
                            device: caps.hash_key_size,
                        });
                    }
                    rss_key = Some(key);
                    key_kind = KeyKind::Custom;
                }
            }
        }
    }
    if key_kind == KeyKind::None && want.rss_key != RssKey::Default {
        warnings.push("workers.rss_key is set but this port does not use RSS".into());
    }

    let mut rx_offloads = 0;
    if rss_hf != 0 {
        rx_offloads |= caps.rx_offload_capa & sys::RTE_ETH_RX_OFFLOAD_RSS_HASH;
    }
    let mut tx_offloads = caps.tx_offload_capa & TX_CSUM;
    // Fast free returns TX'd mbufs straight to their pool, skipping the
    // refcount and pool lookups: valid only when every mbuf sent on the
    // queue comes from one pool with refcnt 1 (lbd never shares mbufs).
    if want.single_pool {
        tx_offloads |= caps.tx_offload_capa & sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
    }
    if caps.tx_offload_capa & TX_CSUM != TX_CSUM {
        warnings.push(
            "the device does not offer every TX checksum offload (IPv4, TCP, UDP): lbd \
             computes those checksums in software"
                .into(),
        );
    }

    let max_mtu = if caps.max_mtu == 0 {
        u16::MAX
    } else {
        caps.max_mtu
    };
    if want.mtu < caps.min_mtu || want.mtu > max_mtu {
        return Err(PlanError::MtuOutOfRange {
            mtu: want.mtu,
            min: caps.min_mtu,
            max: max_mtu,
        });
    }
    let max_frame = u32::from(want.mtu) + L2_OVERHEAD;
    // ethdev's own check at configure (Ethernet header + CRC over the MTU).
    if caps.max_rx_pktlen != 0 && max_frame > caps.max_rx_pktlen {
        return Err(PlanError::FrameTooLong {
            frame: max_frame,
            max: caps.max_rx_pktlen,
        });
    }

    Ok(Plan {
        rx_queues: want.rx_queues,
        tx_queues,
        rx_desc: clamp_desc(WANT_DESC, caps.rx_desc_min, caps.rx_desc_max),
        tx_desc: clamp_desc(WANT_DESC, caps.tx_desc_min, caps.tx_desc_max),
        rss_hf,
        rss_key,
        key_kind,
        rx_offloads,
        tx_offloads,
        mtu: want.mtu,
        max_frame,
        lsc: caps.lsc_interrupt && !LSC_NOT_DELIVERED.contains(&caps.driver.as_str()),
        warnings,
    })
}

/// Data room (headroom included) of a pool whose largest frame is
/// `max_frame` bytes: at least DPDK's default 2048 + headroom, rounded up
/// to 64 bytes.
pub fn data_room_for(max_frame: u32) -> u16 {
    let need = max_frame.max(2048).div_ceil(64) * 64 + u32::from(dpdk::HEADROOM);
    u16::try_from(need).unwrap_or(u16::MAX)
}

/// Names of the RSS hash functions in `hf`.
pub fn rss_names(hf: u64) -> Vec<&'static str> {
    [
        (sys::RTE_ETH_RSS_IPV4, "ipv4"),
        (sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP, "ipv4-tcp"),
        (sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP, "ipv4-udp"),
        (sys::RTE_ETH_RSS_IPV6, "ipv6"),
        (sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP, "ipv6-tcp"),
        (sys::RTE_ETH_RSS_NONFRAG_IPV6_UDP, "ipv6-udp"),
    ]
    .into_iter()
    .filter(|(bit, _)| hf & bit != 0)
    .map(|(_, n)| n)
    .collect()
}

/// Names of the offloads in use (`rx_` / `tx_` prefixed).
pub fn offload_names(rx: u64, tx: u64) -> Vec<&'static str> {
    let rx_names = [(sys::RTE_ETH_RX_OFFLOAD_RSS_HASH, "rx-rss-hash")];
    let tx_names = [
        (sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, "tx-ipv4-csum"),
        (sys::RTE_ETH_TX_OFFLOAD_TCP_CKSUM, "tx-tcp-csum"),
        (sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM, "tx-udp-csum"),
        (sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE, "tx-fast-free"),
    ];
    rx_names
        .into_iter()
        .filter(|(b, _)| rx & b != 0)
        .chain(tx_names.into_iter().filter(|(b, _)| tx & b != 0))
        .map(|(_, n)| n)
        .collect()
}

/// Pick an lcore for every worker: `worker_sockets[w]` is the NUMA socket
/// of worker `w`'s port (-1: unknown), `lcores` the worker lcores with
/// their sockets, in EAL order. Each worker takes the first free lcore of
/// its port's socket, or else the first free one. Returns the lcore of each
/// worker and the workers placed on another socket than their port's.
/// `lcores` must hold at least one lcore per worker.
pub fn assign_lcores(worker_sockets: &[i32], lcores: &[(u32, u32)]) -> (Vec<u32>, Vec<usize>) {
    let mut used = vec![false; lcores.len()];
    let mut out = Vec::with_capacity(worker_sockets.len());
    let mut remote = Vec::new();
    for (w, &sock) in worker_sockets.iter().enumerate() {
        let local = lcores
            .iter()
            .enumerate()
            .position(|(i, &(_, s))| !used[i] && (sock < 0 || s as i32 == sock));
        let i = match local {
            Some(i) => i,
            None => {
                remote.push(w);
                used.iter().position(|u| !u).expect("an lcore per worker")
            }
        };
        used[i] = true;
        out.push(lcores[i].0);
    }
    (out, remote)
}

/// A port as brought up, for status, metrics and the link watcher.
#[derive(Debug)]
pub struct DeviceInfo {
    pub driver: String,
    pub socket: i32,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mtu: u16,
    /// RSS hash functions in use (names), empty without RSS.
    pub rss: Vec<&'static str>,
    pub rss_key: KeyKind,
    /// Offloads in use (names).
    pub offloads: Vec<&'static str>,
    /// The checksums the NIC computes on transmit (given to the workers).
    pub tx_checksums: TxChecksums,
    /// Link-state changes come by interrupt (else the link is polled).
    pub lsc: bool,
    /// Set by the link-state change interrupt, cleared by the watcher.
    link_event: AtomicBool,
    /// Link state changes seen since start.
    pub link_changes: AtomicU64,
    /// Last link state seen: 0 down, 1 up, 2 unknown.
    link_state: AtomicU8,
}

/// `info` for `lbctl status`.
pub fn status_of(info: &DeviceInfo) -> lbcore::api::PortDeviceStatus {
    lbcore::api::PortDeviceStatus {
        driver: info.driver.clone(),
        socket: info.socket,
        rx_queues: info.rx_queues,
        tx_queues: info.tx_queues,
        rx_desc: info.rx_desc,
        tx_desc: info.tx_desc,
        mtu: info.mtu,
        rss: info.rss.iter().map(|s| s.to_string()).collect(),
        rss_key: info.rss_key.name().to_string(),
        offloads: info.offloads.iter().map(|s| s.to_string()).collect(),
        link_changes: info.link_changes.load(Relaxed),
    }
}

/// A device bring-up failure, with the port it concerns.
#[derive(Debug)]
pub enum DeviceError {
    /// DPDK refused an operation on port `port`.
    Dpdk {
        port: String,
        source: dpdk::DpdkError,
    },
    /// The port cannot be set up as configured.
    Plan { port: String, source: PlanError },
    /// A packet pool could not be created.
    Pool {
        socket: i32,
        source: dpdk::DpdkError,
    },
    /// The device of a configured port does not exist.
    NotFound {
        index: usize,
        name: String,
        device: String,
        from_config: bool,
        source: dpdk::DpdkError,
    },
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::Dpdk { port, source } => write!(f, "port {port}: {source}"),
            DeviceError::Plan { port, source } => write!(f, "port {port}: {source}"),
            DeviceError::Pool { socket, source } => {
                write!(f, "packet pool for NUMA socket {socket}: {source}")
            }
            // The device was given to EAL (from the config), so EAL tried
            // to create it and failed; only its log says why (a missing
            // interface is caught before EAL starts).
            DeviceError::NotFound {
                index,
                device,
                from_config: true,
                ..
            } => write!(
                f,
                "ports[{index}].device: DPDK could not create device {device} (its EAL log lines \
                 above say why)"
            ),
            DeviceError::NotFound {
                name,
                device,
                source,
                ..
            } => write!(
                f,
                "port {name} (device {device}): {source}; is the device spec right?"
            ),
        }
    }
}

impl std::error::Error for DeviceError {}

/// The ports, configured and started.
pub struct Devices {
    pub ports: Vec<dpdk::Port>,
    pub macs: Vec<MacAddr>,
    pub rx: Vec<Vec<dpdk::RxQueue>>,
    pub tx: Vec<Vec<dpdk::TxQueue>>,
    /// Per port: the pool of its socket (its RX buffers, its kernel path).
    pub port_pools: Vec<dpdk::Mempool>,
    /// Pool for frames the control side builds (the first port's).
    pub main_pool: dpdk::Mempool,
    pub info: Vec<Arc<DeviceInfo>>,
    /// Per worker (port-major, then queue): its lcore.
    pub worker_lcores: Vec<u32>,
}

/// Configure and start every port of `cfg`, with one pool per NUMA socket,
/// and place the workers. `from_config`: the devices came from the
/// configuration (not `--eal-args`), for the error message.
pub fn bring_up(cfg: &Config, lcores: &[u32], from_config: bool) -> Result<Devices, DeviceError> {
    let queues = cfg.workers.queues_per_port;
    let n_workers = cfg.ports.len() * queues as usize;
    let mut ports = Vec::new();
    for (i, pc) in cfg.ports.iter().enumerate() {
        let name = crate::eal_args::port_name(&pc.device);
        let port = dpdk::Port::by_name(name).map_err(|source| DeviceError::NotFound {
            index: i,
            name: pc.name.clone(),
            device: pc.device.clone(),
            from_config: from_config && matches!(source, dpdk::DpdkError::PortNotFound(_)),
            source,
        })?;
        ports.push(port);
    }

    // One pool per socket that has ports, its buffers as large as the
    // largest frame of those ports.
    let sockets: Vec<i32> = ports.iter().map(|p| p.socket_id()).collect();
    let mut distinct: Vec<i32> = sockets.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let single_pool = distinct.len() == 1;
    let mut pools: Vec<(i32, dpdk::Mempool)> = Vec::new();
    for &s in &distinct {
        let max_frame = cfg
            .ports
            .iter()
            .zip(&sockets)
            .filter(|(_, &ps)| ps == s)
            .map(|(pc, _)| u32::from(pc.mtu) + L2_OVERHEAD)
            .max()
            .unwrap_or(1500 + L2_OVERHEAD);
        let room = data_room_for(max_frame);
        let name = if s < 0 {
            "lbd_pkts_any".to_string()
        } else {
            format!("lbd_pkts_s{s}")
        };
        let pool = match dpdk::Mempool::new(&name, cfg.workers.mbufs, 256, room, s) {
            Ok(p) => p,
            // No memory on that socket (a hugepage shortage there): any
            // socket's memory works, only slower.
            Err(e) if s >= 0 => {
                warn!("packet pool on NUMA socket {s}: {e}; using memory of any socket");
                dpdk::Mempool::new(&name, cfg.workers.mbufs, 256, room, dpdk::SOCKET_ID_ANY)
                    .map_err(|source| DeviceError::Pool { socket: s, source })?
            }
            Err(source) => return Err(DeviceError::Pool { socket: s, source }),
        };
        info!(
            "packet pool {name}: {} mbufs of {room} bytes (NUMA socket {s})",
            cfg.workers.mbufs
        );
        pools.push((s, pool));
    }
    let pool_of = |s: i32| {
        pools
            .iter()
            .find(|(ps, _)| *ps == s)
            .map(|(_, p)| p.clone())
            .expect("a pool per socket")
    };

    let mut out = Devices {
        ports: Vec::new(),
        macs: Vec::new(),
        rx: Vec::new(),
        tx: Vec::new(),
        port_pools: Vec::new(),
        main_pool: pool_of(sockets[0]),
        info: Vec::new(),
        worker_lcores: Vec::new(),
    };
    for ((pc, port), &socket) in cfg.ports.iter().zip(ports).zip(&sockets) {
        let dpdk_err = |source| DeviceError::Dpdk {
            port: pc.name.clone(),
            source,
        };
        let caps = DevCaps::from(&port.info().map_err(dpdk_err)?);
        let want = Want {
            rx_queues: queues,
            workers: n_workers as u16,
            mtu: pc.mtu,
            rss_key: cfg.workers.rss_key.clone(),
            single_pool,
        };
        let p = plan(&caps, &want).map_err(|source| DeviceError::Plan {
            port: pc.name.clone(),
            source,
        })?;
        for w in &p.warnings {
            warn!("port {}: {w}", pc.name);
        }
        let pool = pool_of(socket);
        let setup = dpdk::PortSetup {
            rx_queues: p.rx_queues,
            tx_queues: p.tx_queues,
            rx_desc: p.rx_desc,
            tx_desc: p.tx_desc,
            rss: p.rss_hf != 0,
        };
        let conf = dpdk::PortConf {
            rss_hf: p.rss_hf,
            rss_key: p.rss_key.clone(),
            rx_offloads: p.rx_offloads,
            tx_offloads: p.tx_offloads,
            mtu: p.mtu,
            lsc: p.lsc,
        };
        let (rx, tx) = port
            .configure_with(&setup, &conf, &pool)
            .map_err(dpdk_err)?;
        if let Some(mac) = pc.mac {
            port.set_mac_addr(mac.0).map_err(dpdk_err)?;
            port.set_promiscuous(true).map_err(dpdk_err)?;
        }
        port.start().map_err(dpdk_err)?;
        let mac = MacAddr(port.mac_addr().map_err(dpdk_err)?);
        let link = port.link().map_err(dpdk_err)?;
        let info = DeviceInfo {
            driver: caps.driver.clone(),
            socket,
            rx_queues: p.rx_queues,
            tx_queues: p.tx_queues,
            rx_desc: p.rx_desc,
            tx_desc: p.tx_desc,
            mtu: p.mtu,
            rss: rss_names(p.rss_hf),
            rss_key: p.key_kind,
            offloads: offload_names(p.rx_offloads, p.tx_offloads),
            tx_checksums: p.tx_checksums(),
            lsc: p.lsc,
            link_event: AtomicBool::new(false),
            link_changes: AtomicU64::new(0),
            link_state: AtomicU8::new(u8::from(link.up)),
        };
        info!(
            "port {} ({}) {} mac {} link {} {} Mbit/s; driver {}, socket {}, {} RX / {} TX \
             queues of {}/{} descriptors, mtu {}, rss [{}] key {}, offloads [{}], link state \
             by {}",
            pc.name,
            pc.device,
            pc.address,
            mac,
            if link.up { "up" } else { "down" },
            link.speed_mbps,
            info.driver,
            socket,
            info.rx_queues,
            info.tx_queues,
            info.rx_desc,
            info.tx_desc,
            info.mtu,
            info.rss.join(" "),
            info.rss_key.name(),
            info.offloads.join(" "),
            if info.lsc { "interrupt" } else { "polling" }
        );
        out.ports.push(port);
        out.macs.push(mac);
        out.rx.push(rx);
        out.tx.push(tx);
        out.port_pools.push(pool);
        out.info.push(Arc::new(info));
    }

    // Workers, port-major: each on an lcore of its port's socket if any.
    let worker_sockets: Vec<i32> = sockets
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, queues as usize))
        .collect();
    let with_sockets: Vec<(u32, u32)> = lcores
        .iter()
        .map(|&l| (l, dpdk::lcore::socket_of(l).unwrap_or(0)))
        .collect();
    let (assigned, remote) = assign_lcores(&worker_sockets, &with_sockets);
    for w in remote {
        let p = w / queues as usize;
        warn!(
            "worker {w} (port {}, NUMA socket {}) runs on lcore {} of another socket: every \
             packet crosses the interconnect; give EAL cores of the port's socket",
            cfg.ports[p].name, worker_sockets[w], assigned[w]
        );
    }
    out.worker_lcores = assigned;
    Ok(out)
}

/// How often the link watcher polls the links of devices without the
/// link-state change interrupt (and looks at `stop`).
const LINK_POLL: Duration = Duration::from_millis(250);

/// Watch every port's link until `stop()`: log and count each change.
/// Ports with the link-state change interrupt ([`DeviceInfo::lsc`]) are
/// read when their interrupt flagged them (the callback wakes this thread);
/// the others are polled every [`LINK_POLL`]. Every port is read once at
/// the start, so a change before the callback was registered is seen.
pub fn watch_links(
    ports: Vec<(String, dpdk::Port, Arc<DeviceInfo>)>,
    stop: impl Fn() -> bool + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lbd-link".into())
        .spawn(move || {
            let me = std::thread::current();
            // Held for as long as the watcher runs; unregistered on return.
            let mut callbacks = Vec::new();
            // Per port: polled (no interrupt, or its callback failed).
            let mut polled = Vec::with_capacity(ports.len());
            for (name, port, info) in &ports {
                if !info.lsc {
                    polled.push(true);
                    continue;
                }
                let (flag, waker) = (info.clone(), me.clone());
                match port.on_link_change(move |_| {
                    // EAL's interrupt thread: flag the port, wake the watcher.
                    flag.link_event.store(true, Relaxed);
                    waker.unpark();
                }) {
                    Ok(cb) => {
                        callbacks.push(cb);
                        polled.push(false);
                    }
                    Err(e) => {
                        warn!("port {name}: link-state interrupt not available ({e}): polling");
                        polled.push(true);
                    }
                }
            }
            let mut first = true;
            while !stop() {
                for ((name, port, info), &poll) in ports.iter().zip(&polled) {
                    if link_due(first, poll, &info.link_event) {
                        read_link(name, port, info);
                    }
                }
                first = false;
                std::thread::park_timeout(LINK_POLL);
            }
            drop(callbacks);
        })
}

/// Whether the watcher reads a port's link now: on its first round, every
/// round for a polled port, else when its interrupt flagged it (the flag
/// is cleared).
fn link_due(first: bool, polled: bool, event: &AtomicBool) -> bool {
    // Clear the flag before reading, so a change during the read flags it
    // again for the next round.
    let flagged = event.swap(false, Relaxed);
    first || polled || flagged
}

/// Read a port's link; log and count a change.
fn read_link(name: &str, port: &dpdk::Port, info: &DeviceInfo) {
    let Ok(l) = port.link() else { return };
    let now = u8::from(l.up);
    let before = info.link_state.swap(now, Relaxed);
    if before != now {
        info.link_changes.fetch_add(1, Relaxed);
        if l.up {
            info!("port {name}: link up, {} Mbit/s", l.speed_mbps);
        } else {
            warn!("port {name}: link down");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NIC with everything: 64 queues, RSS with a 40-byte key, every
    /// checksum offload and fast free, jumbo frames.
    fn full_nic() -> DevCaps {
        DevCaps {
            driver: "net_full".into(),
            max_rx_queues: 64,
            max_tx_queues: 64,
            rx_desc_min: 64,
            rx_desc_max: 4096,
            tx_desc_min: 64,
            tx_desc_max: 4096,
            rx_offload_capa: sys::RTE_ETH_RX_OFFLOAD_RSS_HASH | sys::RTE_ETH_RX_OFFLOAD_SCATTER,
            tx_offload_capa: TX_CSUM
                | sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE
                | sys::RTE_ETH_TX_OFFLOAD_MULTI_SEGS,
            // ... and IPv6 with extension headers (bit 15), which lbd leaves off.
            rss_offloads: RSS_WANTED | 1 << 15,
            hash_key_size: 40,
            min_mtu: 68,
            max_mtu: 9600,
            max_rx_pktlen: 9618,
            lsc_interrupt: true,
        }
    }

    fn want(queues: u16) -> Want {
        Want {
            rx_queues: queues,
            workers: queues,
            mtu: 1500,
            rss_key: RssKey::Default,
            single_pool: true,
        }
    }

    #[test]
    fn full_nic_gets_rss_offloads_and_fast_free() {
        let p = plan(&full_nic(), &want(2)).unwrap();
        assert_eq!((p.rx_queues, p.tx_queues), (2, 2));
        assert_eq!((p.rx_desc, p.tx_desc), (1024, 1024));
        // Only what lbd wants, not every hash the device offers.
        assert_eq!(p.rss_hf, RSS_WANTED);
        assert_eq!(p.key_kind, KeyKind::Default);
        assert_eq!(p.rss_key, None);
        assert_eq!(p.rx_offloads, sys::RTE_ETH_RX_OFFLOAD_RSS_HASH);
        assert_eq!(
            p.tx_offloads,
            TX_CSUM | sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(
            offload_names(p.rx_offloads, p.tx_offloads),
            [
                "rx-rss-hash",
                "tx-ipv4-csum",
                "tx-tcp-csum",
                "tx-udp-csum",
                "tx-fast-free"
            ]
        );
        assert_eq!(
            rss_names(p.rss_hf),
            ["ipv4", "ipv4-tcp", "ipv4-udp", "ipv6", "ipv6-tcp", "ipv6-udp"]
        );
    }

    /// The workers are told exactly the checksums the port negotiated.
    #[test]
    fn workers_learn_the_negotiated_tx_checksums() {
        let all = TxChecksums::IPV4
            .union(TxChecksums::TCP)
            .union(TxChecksums::UDP);
        assert_eq!(plan(&full_nic(), &want(1)).unwrap().tx_checksums(), all);
        // virtio-net: TCP and UDP, not the IPv4 header.
        let mut caps = full_nic();
        caps.tx_offload_capa =
            sys::RTE_ETH_TX_OFFLOAD_TCP_CKSUM | sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
        let p = plan(&caps, &want(1)).unwrap();
        assert_eq!(p.tx_checksums(), TxChecksums::TCP.union(TxChecksums::UDP));
        assert!(!p.tx_checksums().contains(TxChecksums::IPV4));
        // Fast free is not a checksum.
        caps.tx_offload_capa = sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
        assert_eq!(
            plan(&caps, &want(1)).unwrap().tx_checksums(),
            TxChecksums::NONE
        );
    }

    /// Link-state interrupts where the device raises them (its dev_flags),
    /// polling elsewhere.
    #[test]
    fn link_state_by_interrupt_only_where_offered() {
        assert!(plan(&full_nic(), &want(1)).unwrap().lsc);
        let mut caps = full_nic();
        caps.lsc_interrupt = false;
        let p = plan(&caps, &want(1)).unwrap();
        assert!(!p.lsc);
        assert!(
            p.warnings.is_empty(),
            "polling is no warning: {:?}",
            p.warnings
        );
        // net_tap sets the flag but does not call back: polled.
        let mut tap = full_nic();
        tap.driver = "net_tap".into();
        assert!(!plan(&tap, &want(1)).unwrap().lsc);
    }

    /// net_tap takes no more TX queues than RX queues: two ports' workers
    /// share a port's one TX queue there.
    #[test]
    fn tap_tx_queues_pair_with_rx_queues() {
        let mut tap = full_nic();
        tap.driver = "net_tap".into();
        let mut w = want(1);
        w.workers = 2;
        let p = plan(&tap, &w).unwrap();
        assert_eq!((p.rx_queues, p.tx_queues), (1, 1));
        assert!(
            p.warnings.iter().any(|w| w.contains("share")),
            "{:?}",
            p.warnings
        );
        // Any other driver: a TX queue per worker.
        assert_eq!(plan(&full_nic(), &w).unwrap().tx_queues, 2);
    }

    /// The watcher reads an interrupt port only when flagged (and once at
    /// the start), a polled one every round.
    #[test]
    fn link_reads_follow_the_interrupt_flag() {
        let ev = AtomicBool::new(false);
        assert!(link_due(true, false, &ev), "first round reads every port");
        assert!(!link_due(false, false, &ev), "no interrupt: not read");
        ev.store(true, Relaxed);
        assert!(link_due(false, false, &ev), "flagged: read");
        assert!(!ev.load(Relaxed), "flag cleared");
        assert!(!link_due(false, false, &ev), "once per interrupt");
        assert!(link_due(false, true, &ev), "polled: every round");
    }

    #[test]
    fn fast_free_needs_a_single_pool() {
        let mut w = want(2);
        w.single_pool = false;
        let p = plan(&full_nic(), &w).unwrap();
        assert_eq!(p.tx_offloads, TX_CSUM);
    }

    #[test]
    fn nic_without_checksum_offload() {
        let mut caps = full_nic();
        caps.tx_offload_capa = 0;
        let p = plan(&caps, &want(2)).unwrap();
        assert_eq!(p.tx_offloads, 0);
        assert!(
            p.warnings.iter().any(|w| w.contains("in software")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn nic_without_rss() {
        let mut caps = full_nic();
        caps.rss_offloads = 0;
        let mut w = want(2);
        w.rss_key = RssKey::Symmetric;
        let p = plan(&caps, &w).unwrap();
        assert_eq!(p.rss_hf, 0);
        assert_eq!(p.key_kind, KeyKind::None);
        assert_eq!(p.rss_key, None);
        assert_eq!(p.rx_offloads, 0, "no RSS hash without RSS");
        assert!(
            p.warnings.iter().any(|w| w.contains("no RSS")),
            "{:?}",
            p.warnings
        );
        assert!(
            p.warnings.iter().any(|w| w.contains("does not use RSS")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn nic_with_one_queue() {
        let mut caps = full_nic();
        caps.max_rx_queues = 1;
        caps.max_tx_queues = 1;
        assert_eq!(
            plan(&caps, &want(2)),
            Err(PlanError::TooManyQueues { wanted: 2, max: 1 })
        );
        // One queue asked: no RSS at all; two workers (another port's) share
        // the one TX queue.
        let mut w = want(1);
        w.workers = 2;
        let p = plan(&caps, &w).unwrap();
        assert_eq!((p.rx_queues, p.tx_queues, p.rss_hf), (1, 1, 0));
        assert!(
            p.warnings.iter().any(|w| w.contains("share")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn symmetric_and_custom_keys() {
        let mut w = want(4);
        w.rss_key = RssKey::Symmetric;
        let p = plan(&full_nic(), &w).unwrap();
        assert_eq!(p.key_kind, KeyKind::Symmetric);
        let key = p.rss_key.unwrap();
        assert_eq!(key.len(), 40);
        assert!(key.chunks(2).all(|c| c == [0x6d, 0x5a]));
        // A device with a 52-byte key gets a 52-byte symmetric key.
        let mut caps = full_nic();
        caps.hash_key_size = 52;
        assert_eq!(plan(&caps, &w).unwrap().rss_key.unwrap().len(), 52);

        w.rss_key = RssKey::Custom("ab".repeat(40));
        let p = plan(&full_nic(), &w).unwrap();
        assert_eq!(p.key_kind, KeyKind::Custom);
        assert_eq!(p.rss_key, Some(vec![0xab; 40]));
        w.rss_key = RssKey::Custom("ab".repeat(52));
        assert_eq!(
            plan(&full_nic(), &w),
            Err(PlanError::KeyLength {
                given: 52,
                device: 40
            })
        );
    }

    /// A reference Toeplitz hash (what RSS computes) of `input` under `key`.
    fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
        let mut result = 0u32;
        let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
        for (i, byte) in input.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    result ^= window;
                }
                let next = key.get(i + 4).copied().unwrap_or(0);
                window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
            }
        }
        result
    }

    /// RSS's input for IPv4 TCP/UDP: addresses, then ports.
    fn tuple(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        let mut v = Vec::with_capacity(12);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(&sp.to_be_bytes());
        v.extend_from_slice(&dp.to_be_bytes());
        v
    }

    /// The well-known default key of many NICs (Microsoft's RSS
    /// verification key).
    const MSFT_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    /// The symmetric key makes the Toeplitz hash of a 4-tuple equal to that
    /// of the swapped tuple (checked with a reference Toeplitz here), which
    /// the driver's default key does not.
    #[test]
    fn symmetric_key_hashes_both_directions_alike() {
        let fwd = tuple([198, 18, 0, 1], [198, 19, 0, 11], 40001, 80);
        let rev = tuple([198, 19, 0, 11], [198, 18, 0, 1], 80, 40001);
        let sym = symmetric_key(40);
        assert_eq!(toeplitz(&sym, &fwd), toeplitz(&sym, &rev));
        // The well-known default key of many NICs (Microsoft's RSS
        // verification key) is not symmetric.
        let msft = MSFT_KEY;
        assert_ne!(toeplitz(&msft, &fwd), toeplitz(&msft, &rev));
    }

    /// What the symmetric key does for NAT, measured: a NAT connection's
    /// request (client → VIP) and reply (real server → client) are not one
    /// tuple swapped — the VIP and the real server differ — so the
    /// symmetric key puts a reply on its request's queue no more often
    /// than the default key does (about 1 in N queues). Symmetry keeps the two
    /// halves of an unrewritten flow together (a director that sees both
    /// directions of a DR flow, a firewall); for NAT, workers meet in the
    /// shared table whichever key is used. Printed for bench/RESULTS.md:
    /// `cargo test -p lbd --bin lbd nat_replies_and_rss_keys -- --nocapture`.
    #[test]
    fn nat_replies_and_rss_keys() {
        let msft = MSFT_KEY;
        let sym = symmetric_key(40);
        // A 128-entry redirection table filled round-robin, as drivers do.
        let queue = |h: u32, queues: u32| (h & 127) % queues;
        const FLOWS: u32 = 10_000;
        for queues in [2u32, 4] {
            for (name, key) in [("default", &msft[..]), ("symmetric", &sym[..])] {
                let (mut nat_split, mut dr_split) = (0, 0);
                for i in 0..FLOWS {
                    let client = [198, 18, 1 + (i >> 8) as u8, i as u8];
                    let cport = 1024 + (i * 7919 % 60000) as u16;
                    let (vip, rs) = ([198, 18, 0, 100], [198, 19, 0, 11 + (i % 4) as u8]);
                    let request = toeplitz(key, &tuple(client, vip, cport, 80));
                    let nat_reply = toeplitz(key, &tuple(rs, client, 8080, cport));
                    // The same flow's other direction, unrewritten.
                    let swapped = toeplitz(key, &tuple(vip, client, 80, cport));
                    nat_split += u32::from(queue(request, queues) != queue(nat_reply, queues));
                    dr_split += u32::from(queue(request, queues) != queue(swapped, queues));
                }
                let pct = |n: u32| n as f64 * 100.0 / FLOWS as f64;
                println!(
                    "{queues} queues, {name} key: NAT reply on another queue than its request \
                     {:.1} %; swapped tuple on another queue {:.1} %",
                    pct(nat_split),
                    pct(dr_split)
                );
                if name == "symmetric" {
                    assert_eq!(dr_split, 0, "symmetric: both directions together");
                }
                // Either key: a NAT reply lands elsewhere about (N-1)/N of
                // the time (well over a third of flows with 2 queues).
                assert!(pct(nat_split) > 100.0 / 3.0, "{name}, {queues} queues");
            }
        }
    }

    #[test]
    fn descriptors_within_device_limits() {
        let mut caps = full_nic();
        caps.rx_desc_max = 512;
        caps.tx_desc_min = 2048;
        let p = plan(&caps, &want(1)).unwrap();
        assert_eq!((p.rx_desc, p.tx_desc), (512, 2048));
        // Limits not given: what we want.
        caps.rx_desc_max = 0;
        caps.rx_desc_min = 0;
        assert_eq!(plan(&caps, &want(1)).unwrap().rx_desc, 1024);
    }

    #[test]
    fn jumbo_mtu_sizes_the_pool_and_is_checked() {
        let mut w = want(1);
        w.mtu = 9000;
        let p = plan(&full_nic(), &w).unwrap();
        assert_eq!(p.mtu, 9000);
        assert_eq!(p.max_frame, 9018);
        // The whole frame fits in one mbuf after the headroom.
        let room = data_room_for(p.max_frame);
        assert!(u32::from(room - dpdk::HEADROOM) >= p.max_frame);
        assert_eq!(data_room_for(1518), 2048 + dpdk::HEADROOM);
        let mut caps = full_nic();
        caps.max_mtu = 1500;
        assert_eq!(
            plan(&caps, &w),
            Err(PlanError::MtuOutOfRange {
                mtu: 9000,
                min: 68,
                max: 1500
            })
        );
        let mut caps = full_nic();
        caps.max_rx_pktlen = 1518;
        assert!(matches!(
            plan(&caps, &w),
            Err(PlanError::FrameTooLong { .. })
        ));
    }

    #[test]
    fn workers_go_to_their_ports_socket() {
        // Two ports on sockets 1 and 0, two queues each; lcores 1,2 on
        // socket 0 and 3,4 on socket 1.
        let lcores = [(1, 0), (2, 0), (3, 1), (4, 1)];
        let (l, remote) = assign_lcores(&[1, 1, 0, 0], &lcores);
        assert_eq!(l, [3, 4, 1, 2]);
        assert!(remote.is_empty());
        // Only socket-0 lcores: the socket-1 port's workers are remote.
        let (l, remote) = assign_lcores(&[1, 0], &[(1, 0), (2, 0)]);
        assert_eq!(l, [1, 2]);
        assert_eq!(remote, [0]);
        // Unknown socket (-1): any lcore, no warning.
        let (l, remote) = assign_lcores(&[-1, -1], &[(5, 1), (6, 0)]);
        assert_eq!((l, remote), (vec![5, 6], vec![]));
    }
}
