//! Raw FFI to the parts of DPDK 22.11 that lbd uses.
//!
//! Everything here is hand-written (no bindgen) and deliberately small:
//!
//! * functions that DPDK exports are declared directly (`rte_*`);
//! * DPDK's static-inline fast-path functions and macros are reached through
//!   the C shim in `src/shim.c` (`lbd_shim_*`);
//! * large or bit-field structs (`rte_eth_conf`, `rte_eth_dev_info`,
//!   `rte_eth_link`, `rte_eth_stats`) are never mirrored: the shim fills them
//!   in C and hands back the few fields we need in flat `lbd_*` structs;
//! * `struct rte_mbuf` *is* mirrored, because the fast path reads its fields
//!   directly. Its layout is checked at compile time both here
//!   (`offset_of!`) and in the shim (`_Static_assert`), so a mismatch fails
//!   the build on either side.
//!
//! The build links DPDK's shared libraries, so EAL loads its PMD plugins
//! (net_ring, net_af_packet, net_memif, ...) by itself.
//!
//! The safe wrapper lives in the `dpdk` crate.

#![no_std]
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, c_uint, c_void};
use core::mem::{offset_of, size_of};

/// `RTE_MAX_ETHPORTS` of the Debian build (checked in the shim).
pub const RTE_MAX_ETHPORTS: usize = 32;
/// `RTE_MAX_LCORE` of the Debian build (checked in the shim).
pub const RTE_MAX_LCORE: u32 = 128;
/// `RTE_ETH_NAME_MAX_LEN` (checked in the shim).
pub const RTE_ETH_NAME_MAX_LEN: usize = 64;
/// `RTE_PKTMBUF_HEADROOM` (checked in the shim).
pub const RTE_PKTMBUF_HEADROOM: u16 = 128;
/// `RTE_MBUF_DEFAULT_BUF_SIZE`: 2048 bytes of data room plus the headroom.
pub const RTE_MBUF_DEFAULT_BUF_SIZE: u16 = 2048 + RTE_PKTMBUF_HEADROOM;
/// `LCORE_ID_ANY`: what `rte_lcore_id()` returns on unregistered threads.
pub const LCORE_ID_ANY: c_uint = u32::MAX;
/// `SOCKET_ID_ANY`.
pub const SOCKET_ID_ANY: c_int = -1;
/// `RTE_MAX_ERRNO`: DPDK-specific error codes start above this.
pub const RTE_MAX_ERRNO: c_int = 1000;

/// `RTE_ETH_RSS_IPV4`.
pub const RTE_ETH_RSS_IPV4: u64 = 1 << 2;
/// `RTE_ETH_RSS_NONFRAG_IPV4_TCP`.
pub const RTE_ETH_RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
/// `RTE_ETH_RSS_NONFRAG_IPV4_UDP`.
pub const RTE_ETH_RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;

/// `RTE_ETH_RSS_IPV6`.
pub const RTE_ETH_RSS_IPV6: u64 = 1 << 8;
/// `RTE_ETH_RSS_NONFRAG_IPV6_TCP`.
pub const RTE_ETH_RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
/// `RTE_ETH_RSS_NONFRAG_IPV6_UDP`.
pub const RTE_ETH_RSS_NONFRAG_IPV6_UDP: u64 = 1 << 11;

/// `RTE_ETH_RX_OFFLOAD_SCATTER`: frames larger than one mbuf arrive chained.
pub const RTE_ETH_RX_OFFLOAD_SCATTER: u64 = 1 << 13;
/// `RTE_ETH_RX_OFFLOAD_RSS_HASH`: the device stores the RSS hash in the mbuf.
pub const RTE_ETH_RX_OFFLOAD_RSS_HASH: u64 = 1 << 19;
/// `RTE_ETH_TX_OFFLOAD_IPV4_CKSUM`.
pub const RTE_ETH_TX_OFFLOAD_IPV4_CKSUM: u64 = 1 << 1;
/// `RTE_ETH_TX_OFFLOAD_UDP_CKSUM`.
pub const RTE_ETH_TX_OFFLOAD_UDP_CKSUM: u64 = 1 << 2;
/// `RTE_ETH_TX_OFFLOAD_TCP_CKSUM`.
pub const RTE_ETH_TX_OFFLOAD_TCP_CKSUM: u64 = 1 << 3;
/// `RTE_ETH_TX_OFFLOAD_MULTI_SEGS`.
pub const RTE_ETH_TX_OFFLOAD_MULTI_SEGS: u64 = 1 << 15;
/// `RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE`.
pub const RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE: u64 = 1 << 16;
/// `RTE_ETH_XSTATS_NAME_SIZE` (checked in the shim).
pub const RTE_ETH_XSTATS_NAME_SIZE: usize = 64;

/// `RTE_MBUF_F_RX_RSS_HASH`: `hash.rss` is valid.
pub const RTE_MBUF_F_RX_RSS_HASH: u64 = 1 << 1;
/// `RTE_MBUF_F_TX_TCP_CKSUM`: the NIC computes the TCP checksum (a value of
/// the 2-bit L4 field [`RTE_MBUF_F_TX_L4_MASK`]).
pub const RTE_MBUF_F_TX_TCP_CKSUM: u64 = 1 << 52;
/// `RTE_MBUF_F_TX_UDP_CKSUM` (a value of the L4 field).
pub const RTE_MBUF_F_TX_UDP_CKSUM: u64 = 3 << 52;
/// `RTE_MBUF_F_TX_L4_MASK`: the L4 checksum request field.
pub const RTE_MBUF_F_TX_L4_MASK: u64 = 3 << 52;
/// `RTE_MBUF_F_TX_IP_CKSUM`: the NIC computes the IPv4 header checksum.
pub const RTE_MBUF_F_TX_IP_CKSUM: u64 = 1 << 54;
/// `RTE_MBUF_F_TX_IPV4`: the packet is IPv4 (needed by both requests).
pub const RTE_MBUF_F_TX_IPV4: u64 = 1 << 55;

/// `RTE_ETH_DEV_INTR_LSC` of `dev_flags`: the device raises link-state
/// change interrupts.
pub const RTE_ETH_DEV_INTR_LSC: u32 = 1 << 1;
/// `RTE_ETH_EVENT_INTR_LSC` of `enum rte_eth_event_type`.
pub const RTE_ETH_EVENT_INTR_LSC: c_int = 1;

/// `rte_eth_dev_cb_fn`: `int (*)(uint16_t port_id, enum rte_eth_event_type
/// event, void *cb_arg, void *ret_param)`, called on EAL's interrupt thread.
pub type rte_eth_dev_cb_fn = unsafe extern "C" fn(
    port_id: u16,
    event: c_int,
    cb_arg: *mut c_void,
    ret_param: *mut c_void,
) -> c_int;

/// Opaque `struct rte_mempool`.
#[repr(C)]
pub struct rte_mempool {
    _private: [u8; 0],
    _pin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

/// `union { uint32_t rss; struct fdir; ... } hash` of `struct rte_mbuf` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub union rte_mbuf_hash {
    /// RSS hash (valid when `ol_flags & RTE_MBUF_F_RX_RSS_HASH`).
    pub rss: u32,
    /// The whole union as two words (fdir / sched / txadapter / usr views).
    pub raw: [u32; 2],
}

/// Mirror of DPDK 22.11's `struct rte_mbuf` (128 bytes, cache aligned).
///
/// Only the first fields are named; the rest is opaque. Offsets are checked
/// at compile time below and in `shim.c`.
#[repr(C, align(64))]
pub struct rte_mbuf {
    /// Virtual address of the segment buffer.
    pub buf_addr: *mut c_void,
    /// IOVA (physical address) of the buffer (`RTE_IOVA_AS_PA`).
    pub buf_iova: u64,
    /// Offset of the data from `buf_addr`.
    pub data_off: u16,
    /// Reference count (atomic in C; only read/written by DPDK here).
    pub refcnt: u16,
    /// Number of segments (first segment only).
    pub nb_segs: u16,
    /// Input port.
    pub port: u16,
    /// Offload flags (`RTE_MBUF_F_*`).
    pub ol_flags: u64,
    /// Packet type (`RTE_PTYPE_*`).
    pub packet_type: u32,
    /// Total length of all segments.
    pub pkt_len: u32,
    /// Length of this segment's data.
    pub data_len: u16,
    /// VLAN TCI (if stripped).
    pub vlan_tci: u16,
    /// Hash union (RSS hash, flow director, ...).
    pub hash: rte_mbuf_hash,
    /// Outer VLAN TCI.
    pub vlan_tci_outer: u16,
    /// Length of the segment buffer.
    pub buf_len: u16,
    /// Pool the mbuf came from.
    pub pool: *mut rte_mempool,
    /// Next segment, or null.
    pub next: *mut rte_mbuf,
    /// The `tx_offload` bit-field word: `l2_len` in bits 0-6, `l3_len` in
    /// bits 7-15, then l4_len, tso_segsz and the outer lengths (packed by
    /// the shim's `lbd_shim_tx_offload` in tests, to check the layout).
    pub tx_offload: u64,
    /// shinfo, priv_size, timesync and the dynamic fields.
    pub _rest: [u8; 48],
}

// Compile-time layout checks: the same numbers are asserted in shim.c.
const _: () = assert!(offset_of!(rte_mbuf, buf_addr) == 0);
const _: () = assert!(offset_of!(rte_mbuf, buf_iova) == 8);
const _: () = assert!(offset_of!(rte_mbuf, data_off) == 16);
const _: () = assert!(offset_of!(rte_mbuf, refcnt) == 18);
const _: () = assert!(offset_of!(rte_mbuf, nb_segs) == 20);
const _: () = assert!(offset_of!(rte_mbuf, port) == 22);
const _: () = assert!(offset_of!(rte_mbuf, ol_flags) == 24);
const _: () = assert!(offset_of!(rte_mbuf, packet_type) == 32);
const _: () = assert!(offset_of!(rte_mbuf, pkt_len) == 36);
const _: () = assert!(offset_of!(rte_mbuf, data_len) == 40);
const _: () = assert!(offset_of!(rte_mbuf, vlan_tci) == 42);
const _: () = assert!(offset_of!(rte_mbuf, hash) == 44);
const _: () = assert!(size_of::<rte_mbuf_hash>() == 8);
const _: () = assert!(offset_of!(rte_mbuf, vlan_tci_outer) == 52);
const _: () = assert!(offset_of!(rte_mbuf, buf_len) == 54);
const _: () = assert!(offset_of!(rte_mbuf, pool) == 56);
const _: () = assert!(offset_of!(rte_mbuf, next) == 64);
const _: () = assert!(offset_of!(rte_mbuf, tx_offload) == 72);
const _: () = assert!(size_of::<rte_mbuf>() == 128);
const _: () = assert!(core::mem::align_of::<rte_mbuf>() == 64);

/// `struct rte_ether_addr` (6 bytes, 2-byte aligned).
#[repr(C, align(2))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct rte_ether_addr {
    /// Address bytes in transmission order.
    pub addr_bytes: [u8; 6],
}
const _: () = assert!(size_of::<rte_ether_addr>() == 6);

/// Flat view of `struct rte_eth_dev_info` filled by [`lbd_shim_dev_info`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lbd_dev_info {
    /// Driver name (static string owned by the driver), may be null.
    pub driver_name: *const c_char,
    /// Kernel interface index, 0 if none.
    pub if_index: u32,
    /// Largest frame the device accepts.
    pub max_rx_pktlen: u32,
    /// Maximum RX queues.
    pub max_rx_queues: u16,
    /// Maximum TX queues.
    pub max_tx_queues: u16,
    /// `rx_desc_lim.nb_max`.
    pub rx_desc_max: u16,
    /// `rx_desc_lim.nb_min`.
    pub rx_desc_min: u16,
    /// `tx_desc_lim.nb_max`.
    pub tx_desc_max: u16,
    /// `tx_desc_lim.nb_min`.
    pub tx_desc_min: u16,
    /// RSS hash functions the device supports (`RTE_ETH_RSS_*`).
    pub flow_type_rss_offloads: u64,
    /// RX offload capabilities.
    pub rx_offload_capa: u64,
    /// TX offload capabilities.
    pub tx_offload_capa: u64,
    /// Smallest MTU the device accepts.
    pub min_mtu: u16,
    /// Largest MTU the device accepts.
    pub max_mtu: u16,
    /// RSS redirection table entries (0: unknown).
    pub reta_size: u16,
    /// RSS hash key length in bytes (0: the driver did not say).
    pub hash_key_size: u8,
    /// Padding.
    pub _pad: u8,
    /// Smallest RX buffer the device accepts.
    pub min_rx_bufsize: u32,
    /// Device flags (`RTE_ETH_DEV_*`, e.g. [`RTE_ETH_DEV_INTR_LSC`]).
    pub dev_flags: u32,
}

const _: () = assert!(offset_of!(lbd_dev_info, tx_offload_capa) == 48);
const _: () = assert!(offset_of!(lbd_dev_info, min_mtu) == 56);
const _: () = assert!(offset_of!(lbd_dev_info, hash_key_size) == 62);
const _: () = assert!(offset_of!(lbd_dev_info, min_rx_bufsize) == 64);
const _: () = assert!(offset_of!(lbd_dev_info, dev_flags) == 68);
const _: () = assert!(size_of::<lbd_dev_info>() == 72);

impl Default for lbd_dev_info {
    fn default() -> Self {
        Self {
            driver_name: core::ptr::null(),
            if_index: 0,
            max_rx_pktlen: 0,
            max_rx_queues: 0,
            max_tx_queues: 0,
            rx_desc_max: 0,
            rx_desc_min: 0,
            tx_desc_max: 0,
            tx_desc_min: 0,
            flow_type_rss_offloads: 0,
            rx_offload_capa: 0,
            tx_offload_capa: 0,
            min_mtu: 0,
            max_mtu: 0,
            reta_size: 0,
            hash_key_size: 0,
            _pad: 0,
            min_rx_bufsize: 0,
            dev_flags: 0,
        }
    }
}

/// What [`lbd_shim_port_configure_conf`] sets up, beyond the queue counts.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lbd_port_conf {
    /// RSS hash functions (`RTE_ETH_RSS_*`); 0: no RSS.
    pub rss_hf: u64,
    /// RX offloads to enable (`RTE_ETH_RX_OFFLOAD_*`).
    pub rx_offloads: u64,
    /// TX offloads to enable (`RTE_ETH_TX_OFFLOAD_*`).
    pub tx_offloads: u64,
    /// RSS key, or null for the driver's default key.
    pub rss_key: *const u8,
    /// Length of `rss_key` in bytes.
    pub rss_key_len: u8,
    /// 1: link-state change interrupts on (`intr_conf.lsc`).
    pub lsc: u8,
    /// Padding.
    pub _pad: [u8; 2],
    /// MTU to configure (0: DPDK's default, 1500).
    pub mtu: u32,
}
const _: () = assert!(offset_of!(lbd_port_conf, rss_key) == 24);
const _: () = assert!(offset_of!(lbd_port_conf, rss_key_len) == 32);
const _: () = assert!(offset_of!(lbd_port_conf, lsc) == 33);
const _: () = assert!(offset_of!(lbd_port_conf, mtu) == 36);
const _: () = assert!(size_of::<lbd_port_conf>() == 40);

/// `struct rte_eth_xstat` (mirrored: two plain words).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct rte_eth_xstat {
    /// Index into the names array.
    pub id: u64,
    /// The counter's value.
    pub value: u64,
}
const _: () = assert!(size_of::<rte_eth_xstat>() == 16);

/// `struct rte_eth_xstat_name` (mirrored: a fixed C string).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rte_eth_xstat_name {
    /// NUL-terminated name.
    pub name: [c_char; RTE_ETH_XSTATS_NAME_SIZE],
}
const _: () = assert!(size_of::<rte_eth_xstat_name>() == 64);

impl Default for rte_eth_xstat_name {
    fn default() -> Self {
        Self {
            name: [0; RTE_ETH_XSTATS_NAME_SIZE],
        }
    }
}

/// Flat view of `struct rte_eth_link` filled by [`lbd_shim_link_get_nowait`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct lbd_link {
    /// Speed in Mb/s (`RTE_ETH_SPEED_NUM_*`; `u32::MAX` = unknown).
    pub speed_mbps: u32,
    /// 1 if the link is up.
    pub up: u8,
    /// 1 if full duplex.
    pub full_duplex: u8,
    /// 1 if autonegotiated.
    pub autoneg: u8,
    /// Padding.
    pub _pad: u8,
}

/// Scalar fields of `struct rte_eth_stats` filled by [`lbd_shim_stats_get`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct lbd_stats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// RX packets dropped by the hardware (RX queues full).
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// `enum rte_lcore_state_t` value `WAIT`.
pub const RTE_LCORE_WAIT: c_int = 0;
/// `enum rte_lcore_state_t` value `RUNNING`.
pub const RTE_LCORE_RUNNING: c_int = 1;

/// `lcore_function_t`: `int (*)(void *)`.
pub type lcore_function_t = unsafe extern "C" fn(arg: *mut c_void) -> c_int;

extern "C" {
    // ---- EAL ----
    pub fn rte_eal_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
    pub fn rte_eal_cleanup() -> c_int;
    pub fn rte_eal_remote_launch(f: lcore_function_t, arg: *mut c_void, worker_id: c_uint)
        -> c_int;
    pub fn rte_eal_wait_lcore(worker_id: c_uint) -> c_int;
    pub fn rte_eal_mp_wait_lcore();
    /// Returns `RTE_LCORE_WAIT` (0) or `RTE_LCORE_RUNNING` (1).
    pub fn rte_eal_get_lcore_state(worker_id: c_uint) -> c_int;
    pub fn rte_get_next_lcore(i: c_uint, skip_main: c_int, wrap: c_int) -> c_uint;
    pub fn rte_get_main_lcore() -> c_uint;
    pub fn rte_lcore_count() -> c_uint;
    pub fn rte_lcore_is_enabled(lcore_id: c_uint) -> c_int;
    pub fn rte_socket_id() -> c_uint;
    pub fn rte_get_tsc_hz() -> u64;
    pub fn rte_thread_register() -> c_int;
    pub fn rte_thread_unregister();
    pub fn rte_strerror(errnum: c_int) -> *const c_char;

    // ---- mempool / mbuf ----
    pub fn rte_pktmbuf_pool_create(
        name: *const c_char,
        n: c_uint,
        cache_size: c_uint,
        priv_size: u16,
        data_room_size: u16,
        socket_id: c_int,
    ) -> *mut rte_mempool;
    pub fn rte_mempool_free(mp: *mut rte_mempool);
    pub fn rte_mempool_avail_count(mp: *const rte_mempool) -> c_uint;
    pub fn rte_mempool_in_use_count(mp: *const rte_mempool) -> c_uint;
    pub fn rte_pktmbuf_free_bulk(mbufs: *mut *mut rte_mbuf, count: c_uint);

    // ---- ethdev ----
    pub fn rte_eth_dev_count_avail() -> u16;
    pub fn rte_eth_dev_is_valid_port(port_id: u16) -> c_int;
    pub fn rte_eth_dev_get_port_by_name(name: *const c_char, port_id: *mut u16) -> c_int;
    pub fn rte_eth_dev_get_name_by_port(port_id: u16, name: *mut c_char) -> c_int;
    pub fn rte_eth_dev_socket_id(port_id: u16) -> c_int;
    pub fn rte_eth_dev_adjust_nb_rx_tx_desc(
        port_id: u16,
        nb_rx_desc: *mut u16,
        nb_tx_desc: *mut u16,
    ) -> c_int;
    /// `rxconf` may be null (driver defaults); it is typed `c_void` because
    /// `struct rte_eth_rxconf` is not mirrored.
    pub fn rte_eth_rx_queue_setup(
        port_id: u16,
        rx_queue_id: u16,
        nb_rx_desc: u16,
        socket_id: c_uint,
        rx_conf: *const c_void,
        mb_pool: *mut rte_mempool,
    ) -> c_int;
    /// `txconf` may be null (driver defaults).
    pub fn rte_eth_tx_queue_setup(
        port_id: u16,
        tx_queue_id: u16,
        nb_tx_desc: u16,
        socket_id: c_uint,
        tx_conf: *const c_void,
    ) -> c_int;
    pub fn rte_eth_dev_start(port_id: u16) -> c_int;
    pub fn rte_eth_dev_stop(port_id: u16) -> c_int;
    pub fn rte_eth_dev_close(port_id: u16) -> c_int;
    pub fn rte_eth_promiscuous_enable(port_id: u16) -> c_int;
    pub fn rte_eth_promiscuous_disable(port_id: u16) -> c_int;
    pub fn rte_eth_promiscuous_get(port_id: u16) -> c_int;
    pub fn rte_eth_macaddr_get(port_id: u16, mac_addr: *mut rte_ether_addr) -> c_int;
    pub fn rte_eth_dev_default_mac_addr_set(port_id: u16, mac_addr: *mut rte_ether_addr) -> c_int;
    pub fn rte_eth_stats_reset(port_id: u16) -> c_int;
    /// With `names` null, returns the number of extended stats.
    pub fn rte_eth_xstats_get_names(
        port_id: u16,
        names: *mut rte_eth_xstat_name,
        size: c_uint,
    ) -> c_int;
    /// With `xstats` null, returns the number of extended stats.
    pub fn rte_eth_xstats_get(port_id: u16, xstats: *mut rte_eth_xstat, n: c_uint) -> c_int;
    pub fn rte_lcore_to_socket_id(lcore_id: c_uint) -> c_uint;
    /// `event` is an `enum rte_eth_event_type` (e.g. [`RTE_ETH_EVENT_INTR_LSC`]).
    pub fn rte_eth_dev_callback_register(
        port_id: u16,
        event: c_int,
        cb_fn: rte_eth_dev_cb_fn,
        cb_arg: *mut c_void,
    ) -> c_int;
    pub fn rte_eth_dev_callback_unregister(
        port_id: u16,
        event: c_int,
        cb_fn: rte_eth_dev_cb_fn,
        cb_arg: *mut c_void,
    ) -> c_int;

    // ---- shim: static-inline functions and macros ----
    pub fn lbd_shim_rx_burst(port: u16, queue: u16, pkts: *mut *mut rte_mbuf, n: u16) -> u16;
    pub fn lbd_shim_tx_burst(port: u16, queue: u16, pkts: *mut *mut rte_mbuf, n: u16) -> u16;
    pub fn lbd_shim_tx_prepare(port: u16, queue: u16, pkts: *mut *mut rte_mbuf, n: u16) -> u16;
    pub fn lbd_shim_pktmbuf_alloc(mp: *mut rte_mempool) -> *mut rte_mbuf;
    pub fn lbd_shim_pktmbuf_alloc_bulk(
        mp: *mut rte_mempool,
        mbufs: *mut *mut rte_mbuf,
        n: c_uint,
    ) -> c_int;
    pub fn lbd_shim_pktmbuf_free(m: *mut rte_mbuf);
    pub fn lbd_shim_pktmbuf_prepend(m: *mut rte_mbuf, len: u16) -> *mut c_char;
    pub fn lbd_shim_pktmbuf_append(m: *mut rte_mbuf, len: u16) -> *mut c_char;
    pub fn lbd_shim_pktmbuf_adj(m: *mut rte_mbuf, len: u16) -> *mut c_char;
    pub fn lbd_shim_pktmbuf_trim(m: *mut rte_mbuf, len: u16) -> c_int;
    pub fn lbd_shim_pktmbuf_mtod(m: *mut rte_mbuf) -> *mut c_void;
    pub fn lbd_shim_pktmbuf_headroom(m: *const rte_mbuf) -> u16;
    pub fn lbd_shim_pktmbuf_tailroom(m: *const rte_mbuf) -> u16;
    pub fn lbd_shim_lcore_id() -> c_uint;
    pub fn lbd_shim_errno() -> c_int;
    pub fn lbd_shim_set_errno(value: c_int);
    pub fn lbd_shim_rdtsc() -> u64;

    // ---- shim: flat views of large structs ----
    pub fn lbd_shim_dev_info(port: u16, out: *mut lbd_dev_info) -> c_int;
    pub fn lbd_shim_port_configure(
        port: u16,
        nb_rx: u16,
        nb_tx: u16,
        rss_enable: c_int,
        rss_hf_out: *mut u64,
    ) -> c_int;
    pub fn lbd_shim_port_configure_conf(
        port: u16,
        nb_rx: u16,
        nb_tx: u16,
        conf: *const lbd_port_conf,
    ) -> c_int;
    pub fn lbd_shim_link_get_nowait(port: u16, out: *mut lbd_link) -> c_int;
    pub fn lbd_shim_stats_get(port: u16, out: *mut lbd_stats) -> c_int;
    pub fn lbd_shim_sizeof_dev_info() -> usize;
    pub fn lbd_shim_sizeof_link() -> usize;
    pub fn lbd_shim_sizeof_stats() -> usize;
    pub fn lbd_shim_sizeof_mbuf() -> usize;
    pub fn lbd_shim_sizeof_port_conf() -> usize;
    /// `tx_offload` with `l2_len` and `l3_len` set through the C bit-fields
    /// (the rest zero): checks the packing Rust does by hand.
    pub fn lbd_shim_tx_offload(l2_len: u64, l3_len: u64) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flat structs must have the same size on both sides of the FFI.
    /// (These shim functions only return `sizeof`; no EAL is needed.)
    #[test]
    fn shim_struct_sizes_match() {
        // SAFETY: pure functions returning constants.
        unsafe {
            assert_eq!(lbd_shim_sizeof_dev_info(), size_of::<lbd_dev_info>());
            assert_eq!(lbd_shim_sizeof_link(), size_of::<lbd_link>());
            assert_eq!(lbd_shim_sizeof_stats(), size_of::<lbd_stats>());
            assert_eq!(lbd_shim_sizeof_mbuf(), size_of::<rte_mbuf>());
            assert_eq!(lbd_shim_sizeof_port_conf(), size_of::<lbd_port_conf>());
        }
    }

    /// `tx_offload`'s bit-fields where [`rte_mbuf::tx_offload`] says.
    #[test]
    fn tx_offload_bit_fields() {
        for (l2, l3) in [(14u64, 20u64), (18, 60), (127, 511)] {
            // SAFETY: a pure function of its arguments.
            assert_eq!(unsafe { lbd_shim_tx_offload(l2, l3) }, l2 | (l3 << 7));
        }
    }

    #[test]
    fn mbuf_layout() {
        assert_eq!(offset_of!(rte_mbuf, data_off), 16);
        assert_eq!(offset_of!(rte_mbuf, hash), 44);
        assert_eq!(size_of::<rte_mbuf>(), 128);
    }
}
