//! Logical cores: launching work on worker lcores, registering other threads.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use dpdk_sys as sys;

use crate::eal::ensure_ready;
use crate::error::{DpdkError, Result};

/// Enabled worker lcores (all enabled lcores but the main one).
pub(crate) fn workers() -> Vec<u32> {
    let mut out = Vec::new();
    if ensure_ready().is_err() {
        return out;
    }
    // SAFETY: EAL is initialised; rte_get_next_lcore walks its lcore table
    // and returns RTE_MAX_LCORE at the end. Starting from -1 (as unsigned)
    // is DPDK's documented way to get the first one.
    let mut i = unsafe { sys::rte_get_next_lcore(u32::MAX, 1, 0) };
    while i < sys::RTE_MAX_LCORE {
        out.push(i);
        // SAFETY: as above.
        i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
    }
    out
}

/// Workers currently running a launched function.
pub(crate) fn running_workers() -> Vec<u32> {
    workers()
        .into_iter()
        // SAFETY: id is an enabled worker lcore.
        .filter(|&id| unsafe { sys::rte_eal_get_lcore_state(id) } == sys::RTE_LCORE_RUNNING)
        .collect()
}

unsafe extern "C" fn trampoline<F>(arg: *mut c_void) -> c_int
where
    F: FnOnce() -> i32 + Send + 'static,
{
    // SAFETY: `arg` is the Box<F> leaked by `launch`, handed over exactly once.
    let f = unsafe { Box::from_raw(arg.cast::<F>()) };
    // A panic must not unwind into C. Report it as -1.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(ret) => ret,
        Err(_) => {
            eprintln!("dpdk: function launched on lcore panicked");
            -1
        }
    }
}

/// Run `f` on worker lcore `lcore_id` (`rte_eal_remote_launch`). The lcore
/// must be enabled, not the main lcore, and idle. Collect the result with
/// [`wait`] or [`wait_all`]. A panic in `f` is caught and returned as -1
/// (with `panic = "abort"` it aborts the process instead).
pub fn launch<F>(lcore_id: u32, f: F) -> Result<()>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    ensure_ready()?;
    // SAFETY: plain lookups in EAL's lcore table (lcore_is_enabled checks
    // the bound).
    let (enabled, main) = unsafe {
        (
            sys::rte_lcore_is_enabled(lcore_id) != 0,
            sys::rte_get_main_lcore(),
        )
    };
    if !enabled || lcore_id == main {
        return Err(DpdkError::InvalidArgument {
            op: "rte_eal_remote_launch",
            reason: format!("lcore {lcore_id} is not an enabled worker lcore"),
        });
    }
    let arg = Box::into_raw(Box::new(f)).cast::<c_void>();
    // SAFETY: trampoline::<F> takes back exactly this Box<F>; F is Send +
    // 'static so it may run on the worker thread at any later time.
    let ret = unsafe { sys::rte_eal_remote_launch(trampoline::<F>, arg, lcore_id) };
    if ret != 0 {
        // Not launched: the closure is still ours; drop it here.
        // SAFETY: the worker never received `arg`.
        drop(unsafe { Box::from_raw(arg.cast::<F>()) });
        return Err(DpdkError::from_ret("rte_eal_remote_launch", ret));
    }
    Ok(())
}

/// Wait for worker `lcore_id` to finish and return its function's result
/// (0 if nothing was launched). Call it from the main lcore.
pub fn wait(lcore_id: u32) -> Result<i32> {
    ensure_ready()?;
    // SAFETY: bounds are checked before indexing EAL's lcore table.
    let enabled = unsafe { sys::rte_lcore_is_enabled(lcore_id) } != 0;
    if !enabled {
        return Err(DpdkError::InvalidArgument {
            op: "rte_eal_wait_lcore",
            reason: format!("lcore {lcore_id} is not enabled"),
        });
    }
    // SAFETY: lcore_id is an enabled lcore.
    Ok(unsafe { sys::rte_eal_wait_lcore(lcore_id) })
}

/// Wait for every worker lcore to finish (`rte_eal_mp_wait_lcore`). Call it
/// from the main lcore. Does nothing before EAL initialisation.
pub fn wait_all() {
    if ensure_ready().is_ok() {
        // SAFETY: EAL is initialised.
        unsafe { sys::rte_eal_mp_wait_lcore() }
    }
}

/// The NUMA socket of lcore `lcore_id` (`rte_lcore_to_socket_id`), or
/// `None` before EAL initialisation or for an id out of range.
pub fn socket_of(lcore_id: u32) -> Option<u32> {
    if ensure_ready().is_err() || lcore_id >= sys::RTE_MAX_LCORE {
        return None;
    }
    // SAFETY: EAL is initialised and the id is within the lcore table.
    Some(unsafe { sys::rte_lcore_to_socket_id(lcore_id) })
}

/// The calling thread's lcore id, or `None` on a thread that is neither an
/// EAL lcore nor registered with [`register_thread`].
#[inline]
pub fn current() -> Option<u32> {
    // SAFETY: reads a thread-local value.
    let id = unsafe { sys::lbd_shim_lcore_id() };
    if id == sys::LCORE_ID_ANY {
        None
    } else {
        Some(id)
    }
}

/// Give the calling (non-EAL) thread an lcore id (`rte_thread_register`), so
/// that it uses per-lcore mempool caches. Returns the id. Registering an
/// already registered thread returns its id.
pub fn register_thread() -> Result<u32> {
    ensure_ready()?;
    if let Some(id) = current() {
        return Ok(id);
    }
    // SAFETY: EAL is initialised; registers the calling thread only.
    let ret = unsafe { sys::rte_thread_register() };
    if ret != 0 {
        return Err(DpdkError::from_rte_errno("rte_thread_register"));
    }
    current().ok_or(DpdkError::Call {
        op: "rte_thread_register",
        errno: 0,
    })
}

/// Release the lcore id of a thread registered with [`register_thread`].
pub fn unregister_thread() {
    if ensure_ready().is_ok() && current().is_some() {
        // SAFETY: EAL is initialised; DPDK ignores EAL threads and threads
        // that were not registered.
        unsafe { sys::rte_thread_unregister() }
    }
}
