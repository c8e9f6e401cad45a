//! Ethernet ports and their queues.
//!
//! All control operations on ports go through one process-wide lock: DPDK's
//! ethdev control path is not thread-safe. Queue handles are counted per port;
//! `configure`, `stop` and `close` are refused while any handle of the port is
//! alive, so no lcore can be inside `rx_burst`/`tx_burst` on a queue that is
//! being torn down. The fast path (`rx_burst`/`tx_burst`) takes no lock.

use std::cell::Cell;
use std::ffi::{c_char, CStr, CString};
use std::marker::PhantomData;
use std::sync::{Mutex, MutexGuard};

use dpdk_sys as sys;

use crate::eal::ensure_ready;
use crate::error::{check, DpdkError, Result};
use crate::mbuf::MbufBurst;
use crate::mempool::Mempool;

struct PortSlot {
    /// Pools handed to the driver for this port's RX queues; kept alive until
    /// the port is closed (a driver may refill from them at any time).
    pools: Vec<Mempool>,
    /// Live RxQueue + TxQueue handles.
    live_queues: u32,
    /// RSS hash functions in use (0: none).
    rss_hf: u64,
    /// The RSS key handed to the driver: ethdev keeps a pointer to it and
    /// drivers read it at start, so it lives until the port is closed.
    rss_key: Vec<u8>,
    /// Configured through this crate (closed by `Eal::cleanup`).
    configured: bool,
    /// Started through this crate and not stopped since.
    started: bool,
}

impl PortSlot {
    const EMPTY: PortSlot = PortSlot {
        pools: Vec::new(),
        live_queues: 0,
        rss_hf: 0,
        rss_key: Vec::new(),
        configured: false,
        started: false,
    };
}

static PORTS: Mutex<[PortSlot; sys::RTE_MAX_ETHPORTS]> =
    Mutex::new([PortSlot::EMPTY; sys::RTE_MAX_ETHPORTS]);

fn ports() -> MutexGuard<'static, [PortSlot; sys::RTE_MAX_ETHPORTS]> {
    // A panic while holding the lock leaves the counters consistent (they are
    // only changed after the DPDK call they describe), so ignore poisoning.
    PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn release_queue_handle(port: u16) {
    let mut ports = ports();
    let slot = &mut ports[port as usize];
    slot.live_queues = slot.live_queues.saturating_sub(1);
}

/// Stop and close every port configured through this crate (for
/// `Eal::cleanup`). Fails if queue handles are alive.
pub(crate) fn close_all_configured() -> Result<()> {
    let mut ports = ports();
    if let Some(id) = ports.iter().position(|s| s.live_queues > 0) {
        return Err(DpdkError::InUse {
            op: "rte_eal_cleanup",
            reason: format!(
                "port {id} still has {} queue handle(s)",
                ports[id].live_queues
            ),
        });
    }
    for (id, slot) in ports.iter_mut().enumerate() {
        if slot.configured {
            let id = id as u16;
            // SAFETY: no queue handle of the port exists (checked above), we
            // hold the control-path lock, and EAL is still initialised.
            unsafe {
                if slot.started {
                    sys::rte_eth_dev_stop(id);
                }
                sys::rte_eth_dev_close(id);
            }
            *slot = PortSlot::EMPTY;
        }
    }
    Ok(())
}

/// How to set a port up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSetup {
    /// RX queues (at least 1, at most the device's maximum).
    pub rx_queues: u16,
    /// TX queues (at least 1, at most the device's maximum).
    pub tx_queues: u16,
    /// RX descriptors per queue (0: driver default); adjusted to the
    /// device's limits.
    pub rx_desc: u16,
    /// TX descriptors per queue (0: driver default); adjusted to the
    /// device's limits.
    pub tx_desc: u16,
    /// Spread flows over the RX queues by RSS on the IPv4 TCP/UDP 5-tuple
    /// (IPv4 2-tuple for other IPv4), if the device supports it.
    pub rss: bool,
}

impl Default for PortSetup {
    fn default() -> Self {
        PortSetup {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss: false,
        }
    }
}

/// How [`Port::configure_with`] sets the device up beyond queue counts:
/// exactly these RSS functions, key, offloads and MTU (the caller decides
/// from [`PortInfo`]; DPDK refuses what the device does not offer).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortConf {
    /// RSS hash functions (`RTE_ETH_RSS_*` bits); 0: no RSS.
    pub rss_hf: u64,
    /// RSS key (`None`: the driver's default key).
    pub rss_key: Option<Vec<u8>>,
    /// RX offloads (`RTE_ETH_RX_OFFLOAD_*` bits).
    pub rx_offloads: u64,
    /// TX offloads (`RTE_ETH_TX_OFFLOAD_*` bits).
    pub tx_offloads: u64,
    /// MTU (0: DPDK's default of 1500).
    pub mtu: u16,
    /// Link-state change interrupts (`intr_conf.lsc`): only for a device
    /// whose [`PortInfo::lsc_interrupt`] is set.
    pub lsc: bool,
}

/// Link state (`rte_eth_link_get_nowait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStatus {
    /// Link is up.
    pub up: bool,
    /// Speed in Mb/s (0 if unknown or down).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Port counters (`rte_eth_stats_get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the device because RX queues were full.
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// What the device can do (a few fields of `rte_eth_dev_info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortInfo {
    /// Driver name, e.g. `"net_ring"`.
    pub driver: String,
    /// Kernel interface index, 0 if none.
    pub if_index: u32,
    /// Largest frame accepted.
    pub max_rx_pktlen: u32,
    /// Maximum RX queues.
    pub max_rx_queues: u16,
    /// Maximum TX queues.
    pub max_tx_queues: u16,
    /// RSS hash functions supported (`RTE_ETH_RSS_*` bits).
    pub rss_offloads: u64,
    /// Whether RSS over IPv4 (TCP/UDP) is supported.
    pub supports_ipv4_rss: bool,
    /// RX descriptors per queue: smallest and largest the device takes.
    pub rx_desc_min: u16,
    pub rx_desc_max: u16,
    /// TX descriptors per queue: smallest and largest the device takes.
    pub tx_desc_min: u16,
    pub tx_desc_max: u16,
    /// RX offloads offered (`RTE_ETH_RX_OFFLOAD_*` bits).
    pub rx_offload_capa: u64,
    /// TX offloads offered (`RTE_ETH_TX_OFFLOAD_*` bits).
    pub tx_offload_capa: u64,
    /// MTU range.
    pub min_mtu: u16,
    pub max_mtu: u16,
    /// RSS redirection table entries (0: unknown).
    pub reta_size: u16,
    /// RSS key length in bytes (0: the driver did not say).
    pub hash_key_size: u8,
    /// Smallest RX buffer the device takes.
    pub min_rx_bufsize: u32,
    /// The device raises link-state change interrupts
    /// (`RTE_ETH_DEV_INTR_LSC` in its `dev_flags`).
    pub lsc_interrupt: bool,
}

/// An Ethernet port (`port_id`). Cheap to copy; all operations serialise on a
/// process-wide lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    id: u16,
}

impl Port {
    /// The port of device `name`, as given to EAL (e.g. `"net_ring0"` for
    /// `--vdev=net_ring0`, or a PCI address).
    pub fn by_name(name: &str) -> Result<Port> {
        ensure_ready()?;
        let c_name = CString::new(name).map_err(|_| DpdkError::PortNotFound(name.to_owned()))?;
        let mut id = 0u16;
        // SAFETY: c_name is a valid C string and id a valid out pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(DpdkError::PortNotFound(name.to_owned()));
        }
        Ok(Port { id })
    }

    /// The port with id `id`, if it exists.
    pub fn by_id(id: u16) -> Result<Port> {
        ensure_ready()?;
        // SAFETY: plain validity check on a port id.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::InvalidPort(id));
        }
        Ok(Port { id })
    }

    /// Number of usable ports (0 before EAL initialisation).
    pub fn count() -> u16 {
        if ensure_ready().is_err() {
            return 0;
        }
        // SAFETY: EAL is initialised; this reads the port table.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// All existing ports, by id.
    pub fn all() -> Vec<Port> {
        if ensure_ready().is_err() {
            return Vec::new();
        }
        (0..sys::RTE_MAX_ETHPORTS as u16)
            // SAFETY: plain validity check on a port id.
            .filter(|&id| unsafe { sys::rte_eth_dev_is_valid_port(id) } != 0)
            .map(|id| Port { id })
            .collect()
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name (e.g. `"net_ring0"`).
    pub fn name(&self) -> Result<String> {
        let _g = self.lock()?;
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN];
        // SAFETY: buf has the RTE_ETH_NAME_MAX_LEN bytes the function requires.
        let ret = unsafe { sys::rte_eth_dev_get_name_by_port(self.id, buf.as_mut_ptr()) };
        check("rte_eth_dev_get_name_by_port", ret)?;
        // SAFETY: DPDK wrote a NUL-terminated string into buf.
        let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
        Ok(s.to_string_lossy().into_owned())
    }

    /// NUMA socket of the device (-1 if unknown).
    pub fn socket_id(&self) -> i32 {
        // SAFETY: reads port data; returns -1 for invalid ports.
        unsafe { sys::rte_eth_dev_socket_id(self.id) }
    }

    /// Device capabilities.
    pub fn info(&self) -> Result<PortInfo> {
        let _g = self.lock()?;
        let info = self.raw_info()?;
        Ok(info)
    }

    fn raw_info(&self) -> Result<PortInfo> {
        let mut info = sys::lbd_dev_info::default();
        // SAFETY: info is a valid out pointer of the shim's struct type.
        let ret = unsafe { sys::lbd_shim_dev_info(self.id, &mut info) };
        check("rte_eth_dev_info_get", ret)?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name points to the driver's static name string.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        let ipv4 = sys::RTE_ETH_RSS_IPV4
            | sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP
            | sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP;
        Ok(PortInfo {
            driver,
            if_index: info.if_index,
            max_rx_pktlen: info.max_rx_pktlen,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
            supports_ipv4_rss: info.flow_type_rss_offloads & ipv4 != 0,
            rx_desc_min: info.rx_desc_min,
            rx_desc_max: info.rx_desc_max,
            tx_desc_min: info.tx_desc_min,
            tx_desc_max: info.tx_desc_max,
            rx_offload_capa: info.rx_offload_capa,
            tx_offload_capa: info.tx_offload_capa,
            min_mtu: info.min_mtu,
            max_mtu: info.max_mtu,
            reta_size: info.reta_size,
            hash_key_size: info.hash_key_size,
            min_rx_bufsize: info.min_rx_bufsize,
            lsc_interrupt: info.dev_flags & sys::RTE_ETH_DEV_INTR_LSC != 0,
        })
    }

    fn lock(&self) -> Result<MutexGuard<'static, [PortSlot; sys::RTE_MAX_ETHPORTS]>> {
        ensure_ready()?;
        let g = ports();
        // Re-check under the lock: cleanup holds it while closing ports.
        ensure_ready()?;
        Ok(g)
    }

    fn no_live_queues(
        &self,
        op: &'static str,
        ports: &[PortSlot; sys::RTE_MAX_ETHPORTS],
    ) -> Result<()> {
        let n = ports[self.id as usize].live_queues;
        if n > 0 {
            return Err(DpdkError::InUse {
                op,
                reason: format!(
                    "port {} has {n} live queue handle(s); drop them first",
                    self.id
                ),
            });
        }
        Ok(())
    }

    /// Configure the port (stopped) with `setup` and set up its queues, RX
    /// queues taking buffers from `pool`. Returns one handle per queue.
    ///
    /// Errors if more queues are asked for than the device has
    /// ([`DpdkError::TooManyQueues`]; see [`Port::info`]), or while handles
    /// from an earlier `configure` are alive. RSS is enabled only when
    /// `setup.rss` is set and the device supports it; see
    /// [`Port::rss_enabled`].
    pub fn configure(
        &self,
        setup: &PortSetup,
        pool: &Mempool,
    ) -> Result<(Vec<RxQueue>, Vec<TxQueue>)> {
        self.configure_inner(setup, None, pool)
    }

    /// Like [`Port::configure`], but with exactly the RSS functions, RSS
    /// key, offloads and MTU of `conf` (`setup.rss` is ignored). DPDK
    /// refuses offloads or hash functions the device does not offer.
    pub fn configure_with(
        &self,
        setup: &PortSetup,
        conf: &PortConf,
        pool: &Mempool,
    ) -> Result<(Vec<RxQueue>, Vec<TxQueue>)> {
        self.configure_inner(setup, Some(conf), pool)
    }

    fn configure_inner(
        &self,
        setup: &PortSetup,
        conf: Option<&PortConf>,
        pool: &Mempool,
    ) -> Result<(Vec<RxQueue>, Vec<TxQueue>)> {
        let mut ports = self.lock()?;
        self.no_live_queues("configure", &ports)?;
        let info = self.raw_info()?;
        for (direction, requested, max) in [
            ("rx", setup.rx_queues, info.max_rx_queues),
            ("tx", setup.tx_queues, info.max_tx_queues),
        ] {
            if requested == 0 {
                return Err(DpdkError::InvalidArgument {
                    op: "configure",
                    reason: format!("port {}: at least one {direction} queue is needed", self.id),
                });
            }
            if requested > max {
                return Err(DpdkError::TooManyQueues {
                    port: self.id,
                    direction,
                    requested,
                    max,
                });
            }
        }

        let mut rss_hf = 0u64;
        let slot = &mut ports[self.id as usize];
        let ret = match conf {
            None => {
                // SAFETY: we hold the control lock, no queue handle of this
                // port is alive, and rss_hf is a valid out pointer.
                unsafe {
                    sys::lbd_shim_port_configure(
                        self.id,
                        setup.rx_queues,
                        setup.tx_queues,
                        setup.rss as i32,
                        &mut rss_hf,
                    )
                }
            }
            Some(c) => {
                let key = c.rss_key.clone().unwrap_or_default();
                let key_len = u8::try_from(key.len()).map_err(|_| DpdkError::InvalidArgument {
                    op: "configure",
                    reason: format!("RSS key of {} bytes is too long", key.len()),
                })?;
                // The slot keeps the key (its heap buffer does not move)
                // until close: ethdev holds on to the pointer.
                slot.rss_key = key;
                let raw = sys::lbd_port_conf {
                    rss_hf: c.rss_hf,
                    rx_offloads: c.rx_offloads,
                    tx_offloads: c.tx_offloads,
                    rss_key: if slot.rss_key.is_empty() {
                        std::ptr::null()
                    } else {
                        slot.rss_key.as_ptr()
                    },
                    rss_key_len: key_len,
                    lsc: u8::from(c.lsc),
                    _pad: [0; 2],
                    mtu: u32::from(c.mtu),
                };
                rss_hf = c.rss_hf;
                // SAFETY: as above; `raw` is valid for the call and the key
                // it points to lives in the port slot until close.
                unsafe {
                    sys::lbd_shim_port_configure_conf(
                        self.id,
                        setup.rx_queues,
                        setup.tx_queues,
                        &raw,
                    )
                }
            }
        };
        check("rte_eth_dev_configure", ret)?;
        slot.configured = true;
        slot.rss_hf = rss_hf;

        let (mut rx_desc, mut tx_desc) = (setup.rx_desc, setup.tx_desc);
        if rx_desc != 0 && tx_desc != 0 {
            // SAFETY: valid out pointers; the port is configured.
            let ret = unsafe {
                sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rx_desc, &mut tx_desc)
            };
            check("rte_eth_dev_adjust_nb_rx_tx_desc", ret)?;
        }

        // The driver may take buffers from the pool from now until close.
        if !slot.pools.iter().any(|p| p.same_pool(pool)) {
            slot.pools.push(pool.clone());
        }
        let socket = self.socket_id();
        let socket = if socket < 0 {
            sys::SOCKET_ID_ANY as u32
        } else {
            socket as u32
        };
        for q in 0..setup.rx_queues {
            // SAFETY: the port is configured with this many RX queues; the
            // pool stays alive in the port slot until close; null rxconf
            // selects the driver's defaults.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check("rte_eth_rx_queue_setup", ret)?;
        }
        for q in 0..setup.tx_queues {
            // SAFETY: as above; null txconf selects the driver's defaults.
            let ret = unsafe {
                sys::rte_eth_tx_queue_setup(self.id, q, tx_desc, socket, std::ptr::null())
            };
            check("rte_eth_tx_queue_setup", ret)?;
        }

        slot.live_queues = u32::from(setup.rx_queues) + u32::from(setup.tx_queues);
        let rx = (0..setup.rx_queues)
            .map(|queue| RxQueue {
                port: self.id,
                queue,
                _not_sync: PhantomData,
            })
            .collect();
        let tx = (0..setup.tx_queues)
            .map(|queue| TxQueue {
                port: self.id,
                queue,
                _not_sync: PhantomData,
            })
            .collect();
        Ok((rx, tx))
    }

    /// Whether the last `configure` turned RSS on.
    pub fn rss_enabled(&self) -> bool {
        ports()[self.id as usize].rss_hf != 0
    }

    /// Start the port (after `configure`, or after `stop`).
    pub fn start(&self) -> Result<()> {
        let mut ports = self.lock()?;
        // SAFETY: control-path call under the lock.
        let ret = unsafe { sys::rte_eth_dev_start(self.id) };
        check("rte_eth_dev_start", ret)?;
        ports[self.id as usize].started = true;
        Ok(())
    }

    /// Stop the port. Refused while queue handles of the port are alive
    /// (stop the lcores using them and drop the handles first).
    pub fn stop(&self) -> Result<()> {
        let mut ports = self.lock()?;
        self.no_live_queues("stop", &ports)?;
        // SAFETY: no queue handle exists, so no lcore is polling the port.
        let ret = unsafe { sys::rte_eth_dev_stop(self.id) };
        check("rte_eth_dev_stop", ret)?;
        ports[self.id as usize].started = false;
        Ok(())
    }

    /// Stop (if needed) and close the port, releasing its queues and the
    /// pools it held. The port id is invalid afterwards. Refused while queue
    /// handles of the port are alive.
    pub fn close(&self) -> Result<()> {
        let mut ports = self.lock()?;
        self.no_live_queues("close", &ports)?;
        if ports[self.id as usize].started {
            // SAFETY: no queue handle exists, so no lcore is polling the port.
            let ret = unsafe { sys::rte_eth_dev_stop(self.id) };
            check("rte_eth_dev_stop", ret)?;
            ports[self.id as usize].started = false;
        }
        // SAFETY: no queue handle exists, and the port is stopped.
        let ret = unsafe { sys::rte_eth_dev_close(self.id) };
        check("rte_eth_dev_close", ret)?;
        // Drops the port's pool references (after the driver released them).
        ports[self.id as usize] = PortSlot::EMPTY;
        Ok(())
    }

    /// Turn promiscuous mode on or off.
    pub fn set_promiscuous(&self, on: bool) -> Result<()> {
        let _g = self.lock()?;
        // SAFETY: control-path calls under the lock.
        let ret = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        check(
            if on {
                "rte_eth_promiscuous_enable"
            } else {
                "rte_eth_promiscuous_disable"
            },
            ret,
        )
        .map(|_| ())
    }

    /// Whether promiscuous mode is on.
    pub fn promiscuous(&self) -> Result<bool> {
        let _g = self.lock()?;
        // SAFETY: control-path call under the lock.
        let ret = unsafe { sys::rte_eth_promiscuous_get(self.id) };
        check("rte_eth_promiscuous_get", ret).map(|r| r == 1)
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6]> {
        let _g = self.lock()?;
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: mac is a valid out pointer.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.id, &mut mac) };
        check("rte_eth_macaddr_get", ret)?;
        Ok(mac.addr_bytes)
    }

    /// Set the port's MAC address.
    pub fn set_mac_addr(&self, mac: [u8; 6]) -> Result<()> {
        let _g = self.lock()?;
        let mut addr = sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: addr is a valid pointer for the call.
        let ret = unsafe { sys::rte_eth_dev_default_mac_addr_set(self.id, &mut addr) };
        check("rte_eth_dev_default_mac_addr_set", ret).map(|_| ())
    }

    /// Link state, without waiting for negotiation.
    pub fn link(&self) -> Result<LinkStatus> {
        let _g = self.lock()?;
        let mut l = sys::lbd_link::default();
        // SAFETY: l is a valid out pointer of the shim's struct type.
        let ret = unsafe { sys::lbd_shim_link_get_nowait(self.id, &mut l) };
        check("rte_eth_link_get_nowait", ret)?;
        Ok(LinkStatus {
            up: l.up != 0,
            // RTE_ETH_SPEED_NUM_UNKNOWN is UINT32_MAX.
            speed_mbps: if l.speed_mbps == u32::MAX {
                0
            } else {
                l.speed_mbps
            },
            full_duplex: l.full_duplex != 0,
        })
    }

    /// Call `notify` (with the port id) on every link-state change
    /// interrupt of this port, until the returned handle is dropped. The
    /// port must have been configured with [`PortConf::lsc`]. `notify` runs
    /// on EAL's interrupt thread: it should only take note (set a flag,
    /// wake a thread) and return.
    pub fn on_link_change(
        &self,
        notify: impl Fn(u16) + Send + Sync + 'static,
    ) -> Result<LinkChangeCallback> {
        let _g = self.lock()?;
        let arg: *mut LinkNotify = Box::into_raw(Box::new(Box::new(notify)));
        // SAFETY: `link_change_trampoline` matches rte_eth_dev_cb_fn; `arg`
        // stays valid until the callback is unregistered (Drop of the
        // returned handle), or forever if that fails.
        let ret = unsafe {
            sys::rte_eth_dev_callback_register(
                self.id,
                sys::RTE_ETH_EVENT_INTR_LSC,
                link_change_trampoline,
                arg.cast(),
            )
        };
        if let Err(e) = check("rte_eth_dev_callback_register", ret) {
            // SAFETY: not registered: we still own the box.
            drop(unsafe { Box::from_raw(arg) });
            return Err(e);
        }
        Ok(LinkChangeCallback { port: self.id, arg })
    }

    /// Counters.
    pub fn stats(&self) -> Result<PortStats> {
        let _g = self.lock()?;
        let mut s = sys::lbd_stats::default();
        // SAFETY: s is a valid out pointer of the shim's struct type. Drivers
        // allow reading stats while lcores poll the port.
        let ret = unsafe { sys::lbd_shim_stats_get(self.id, &mut s) };
        check("rte_eth_stats_get", ret)?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Extended statistics (`rte_eth_xstats_get`): the driver's own
    /// counters by name, e.g. `rx_q0_packets`. Their set depends on the
    /// driver.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        let _g = self.lock()?;
        // SAFETY: a null array asks for the count only.
        let n = unsafe { sys::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) };
        let n = check("rte_eth_xstats_get_names", n)? as usize;
        let mut names = vec![sys::rte_eth_xstat_name::default(); n];
        let mut values = vec![sys::rte_eth_xstat::default(); n];
        // SAFETY: both arrays hold `n` elements; DPDK writes at most `n`
        // and returns how many (or the count it needs, when larger).
        let got_names =
            unsafe { sys::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), n as u32) };
        let got_names = check("rte_eth_xstats_get_names", got_names)? as usize;
        // SAFETY: as above.
        let got = unsafe { sys::rte_eth_xstats_get(self.id, values.as_mut_ptr(), n as u32) };
        let got = check("rte_eth_xstats_get", got)? as usize;
        // More than `n` means the set grew between the calls: report what
        // both calls filled.
        let filled = got.min(got_names).min(n);
        Ok(values[..filled]
            .iter()
            .filter_map(|x| {
                let name = names.get(x.id as usize)?;
                // The last byte is forced to NUL in case a driver did not.
                let mut raw = name.name;
                raw[sys::RTE_ETH_XSTATS_NAME_SIZE - 1] = 0;
                // SAFETY: `raw` is NUL-terminated within its 64 bytes.
                let s = unsafe { CStr::from_ptr(raw.as_ptr()) };
                Some((s.to_string_lossy().into_owned(), x.value))
            })
            .collect())
    }

    /// Reset the counters.
    pub fn reset_stats(&self) -> Result<()> {
        let _g = self.lock()?;
        // SAFETY: control-path call under the lock.
        check("rte_eth_stats_reset", unsafe {
            sys::rte_eth_stats_reset(self.id)
        })
        .map(|_| ())
    }
}

/// What [`Port::on_link_change`] calls.
type LinkNotify = Box<dyn Fn(u16) + Send + Sync>;

/// Called by EAL's interrupt thread for `RTE_ETH_EVENT_INTR_LSC`.
unsafe extern "C" fn link_change_trampoline(
    port_id: u16,
    _event: std::ffi::c_int,
    cb_arg: *mut std::ffi::c_void,
    _ret_param: *mut std::ffi::c_void,
) -> std::ffi::c_int {
    // SAFETY: cb_arg is the LinkNotify registered with this trampoline, alive
    // until unregistered. A panic must not unwind into C.
    let notify = unsafe { &*cb_arg.cast::<LinkNotify>() };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| notify(port_id)));
    0
}

/// A registered link-state change callback; unregistered on drop.
pub struct LinkChangeCallback {
    port: u16,
    arg: *mut LinkNotify,
}

// SAFETY: the handle only unregisters and frees a Send + Sync closure.
unsafe impl Send for LinkChangeCallback {}

impl Drop for LinkChangeCallback {
    fn drop(&mut self) {
        if !crate::eal::is_initialized() {
            return; // EAL is gone (and the callback with it): leak the box.
        }
        let _g = ports();
        // -EAGAIN while the callback runs: retry a little.
        for _ in 0..100 {
            // SAFETY: the same (port, event, fn, arg) as registered.
            let ret = unsafe {
                sys::rte_eth_dev_callback_unregister(
                    self.port,
                    sys::RTE_ETH_EVENT_INTR_LSC,
                    link_change_trampoline,
                    self.arg.cast(),
                )
            };
            if ret >= 0 {
                // SAFETY: unregistered: no one else holds the pointer.
                drop(unsafe { Box::from_raw(self.arg) });
                return;
            }
            if ret != -libc_eagain() {
                return; // not registered any more (port closed): leak it
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// EAGAIN on Linux.
const fn libc_eagain() -> i32 {
    11
}

/// Receive side of one port queue. One owner at a time: `Send` (move it to
/// the lcore that polls it), not `Sync`, not `Clone`.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<dpdk::RxQueue>();
/// ```
pub struct RxQueue {
    port: u16,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    /// Port id.
    #[inline]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queue index.
    #[inline]
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receive up to `out.remaining()` packets, appending them to `out`.
    /// Returns how many arrived.
    #[inline]
    pub fn rx_burst(&mut self, out: &mut MbufBurst) -> usize {
        self.rx_burst_upto(out, usize::MAX)
    }

    /// Receive at most `max` packets (and at most `out.remaining()`),
    /// appending them to `out`. Returns how many arrived.
    #[inline]
    pub fn rx_burst_upto(&mut self, out: &mut MbufBurst, max: usize) -> usize {
        let room = out.remaining().min(max);
        if room == 0 {
            return 0;
        }
        // SAFETY: this handle is the only one for (port, queue) and the queue
        // cannot be torn down while it lives; the spare slots of `out` hold
        // `room` pointers; DPDK writes `n <= room` owned mbufs there.
        unsafe {
            let n = sys::lbd_shim_rx_burst(self.port, self.queue, out.spare_ptr(), room as u16)
                as usize;
            out.add_len(n);
            n
        }
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        release_queue_handle(self.port);
    }
}

impl std::fmt::Debug for RxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RxQueue(port {}, queue {})", self.port, self.queue)
    }
}

/// Transmit side of one port queue. One owner at a time: `Send`, not `Sync`,
/// not `Clone`.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<dpdk::TxQueue>();
/// ```
pub struct TxQueue {
    port: u16,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl TxQueue {
    /// Port id.
    #[inline]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queue index.
    #[inline]
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Transmit packets from the front of `burst`. The sent ones leave the
    /// burst (the driver owns them now); the unsent ones stay, in order, at
    /// the front, for the caller to retry or free. Returns how many were sent.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut MbufBurst) -> usize {
        let n = burst.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: this handle is the only one for (port, queue) and the queue
        // cannot be torn down while it lives; the first `n` slots hold owned
        // mbufs; the driver takes ownership of the first `sent` of them.
        let sent = unsafe {
            sys::lbd_shim_tx_burst(self.port, self.queue, burst.as_mut_ptr(), n as u16) as usize
        };
        burst.remove_front(sent);
        sent
    }

    /// Transmit what the queue accepts and free the rest. Returns
    /// `(sent, dropped)`; the burst is empty afterwards.
    #[inline]
    pub fn tx_burst_or_free(&mut self, burst: &mut MbufBurst) -> (usize, usize) {
        let sent = self.tx_burst(burst);
        let dropped = burst.len();
        burst.free_all();
        (sent, dropped)
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        release_queue_handle(self.port);
    }
}

impl std::fmt::Debug for TxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxQueue(port {}, queue {})", self.port, self.queue)
    }
}
