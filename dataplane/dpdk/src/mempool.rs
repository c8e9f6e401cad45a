//! Packet-buffer pools.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dpdk_sys as sys;

use crate::eal::{ensure_ready, LIVE_POOLS};
use crate::error::{DpdkError, Result};
use crate::mbuf::{Mbuf, MbufBurst};

/// Data room of a default mbuf: 2048 bytes of packet plus the 128-byte headroom.
pub const DEFAULT_DATA_ROOM: u16 = sys::RTE_MBUF_DEFAULT_BUF_SIZE;
/// Headroom reserved in front of received/allocated packet data.
pub const HEADROOM: u16 = sys::RTE_PKTMBUF_HEADROOM;
/// "Any NUMA socket".
pub const SOCKET_ID_ANY: i32 = sys::SOCKET_ID_ANY;

struct PoolInner {
    raw: NonNull<sys::rte_mempool>,
    name: String,
}

// SAFETY: a pktmbuf pool made by rte_pktmbuf_pool_create uses the default
// multi-producer/multi-consumer ring ops, so get/put are thread-safe. Per-lcore
// caches are only used by the thread registered as that lcore (EAL or
// rte_thread_register); other threads get LCORE_ID_ANY and bypass the cache.
unsafe impl Send for PoolInner {}
// SAFETY: as above; all methods take &self and are thread-safe in DPDK.
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: the pool pointer is valid until freed below.
        let in_use = unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) };
        if in_use != 0 {
            // Mbufs are still out (in a ring, a queue or a leaked Mbuf):
            // freeing the pool now would leave them dangling. Leak it instead;
            // it stays counted in LIVE_POOLS, so EAL cleanup is refused.
            return;
        }
        // SAFETY: no mbuf of this pool is in use, no Mempool handle and no
        // port (which keeps a handle while configured with it) refers to it.
        unsafe { sys::rte_mempool_free(self.raw.as_ptr()) };
        LIVE_POOLS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
///
/// Cheap to clone (reference counted), `Send` and `Sync`. The DPDK pool is
/// freed when the last clone is dropped and no mbuf of it is in use; ports
/// configured with a pool keep it alive until they are closed. If mbufs are
/// still out at that point, the pool is leaked rather than freed.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.inner.name)
            .field("available", &self.available())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl Mempool {
    /// Create a pool of `n_mbufs` mbufs with a per-lcore cache of `cache_size`
    /// (0 for none; at most 512 and at most `n_mbufs / 1.5`) and
    /// `data_room_size` bytes of buffer per mbuf, headroom included (use
    /// [`DEFAULT_DATA_ROOM`]), on NUMA `socket` ([`SOCKET_ID_ANY`] for any).
    ///
    /// `name` must be unique among pools and short (under 26 bytes).
    /// Good `n_mbufs` are `2^q - 1`.
    pub fn new(
        name: &str,
        n_mbufs: u32,
        cache_size: u32,
        data_room_size: u16,
        socket: i32,
    ) -> Result<Mempool> {
        ensure_ready()?;
        let c_name = CString::new(name).map_err(|_| DpdkError::InvalidArgument {
            op: "rte_pktmbuf_pool_create",
            reason: format!("pool name {name:?} contains a NUL byte"),
        })?;
        if data_room_size < HEADROOM {
            return Err(DpdkError::InvalidArgument {
                op: "rte_pktmbuf_pool_create",
                reason: format!(
                    "data room {data_room_size} is smaller than the {HEADROOM}-byte headroom"
                ),
            });
        }
        // SAFETY: c_name is a valid C string for the duration of the call; EAL
        // is initialised; DPDK validates the numbers and sets rte_errno.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                n_mbufs,
                cache_size,
                0,
                data_room_size,
                socket,
            )
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| DpdkError::from_rte_errno("rte_pktmbuf_pool_create"))?;
        LIVE_POOLS.fetch_add(1, Ordering::AcqRel);
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                raw,
                name: name.to_owned(),
            }),
        })
    }

    /// Allocate one mbuf (data length 0, headroom reserved), or `None` if the
    /// pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is alive (we hold a reference); allocation is
        // thread-safe; a non-null result is a fresh mbuf we now own.
        unsafe {
            let m = sys::lbd_shim_pktmbuf_alloc(self.inner.raw.as_ptr());
            Mbuf::from_raw_checked(m)
        }
    }

    /// Allocate `n` mbufs at once and append them to `burst`: all or nothing.
    /// Returns `false` (allocating nothing) if the pool has fewer than `n`
    /// free mbufs or `burst` has no room for `n` more.
    #[inline]
    pub fn alloc_bulk(&self, burst: &mut MbufBurst, n: usize) -> bool {
        if n > burst.remaining() {
            return false;
        }
        if n == 0 {
            return true;
        }
        // SAFETY: the spare slots of `burst` can hold `n` pointers; on success
        // DPDK writes `n` fresh mbufs there, which the burst then owns.
        unsafe {
            let dst = burst.spare_ptr();
            let ret = sys::lbd_shim_pktmbuf_alloc_bulk(self.inner.raw.as_ptr(), dst, n as u32);
            if ret != 0 {
                return false;
            }
            burst.add_len(n);
        }
        true
    }

    /// Free mbufs (in the pool and in the per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive; this only reads counters.
        unsafe { sys::rte_mempool_avail_count(self.inner.raw.as_ptr()) }
    }

    /// Mbufs currently allocated (in bursts, queues, rings or `Mbuf`s).
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive; this only reads counters.
        unsafe { sys::rte_mempool_in_use_count(self.inner.raw.as_ptr()) }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The raw pool pointer, for FFI that this crate does not cover. It stays
    /// valid while this handle lives.
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.raw.as_ptr()
    }

    pub(crate) fn same_pool(&self, other: &Mempool) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
