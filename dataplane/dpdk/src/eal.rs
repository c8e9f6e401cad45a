//! EAL initialisation and teardown.

use std::ffi::{c_char, c_int, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use dpdk_sys as sys;

use crate::error::{DpdkError, Result};

const UNINIT: u8 = 0;
const INITIALIZING: u8 = 1;
const READY: u8 = 2;
const CLEANED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);

/// Mempools created and not yet freed (a pool with mbufs still out is leaked
/// and stays counted). `rte_eal_cleanup` is refused while this is non-zero.
pub(crate) static LIVE_POOLS: AtomicUsize = AtomicUsize::new(0);

/// `Ok` if EAL is initialised and not cleaned up.
#[inline]
pub(crate) fn ensure_ready() -> Result<()> {
    if STATE.load(Ordering::Acquire) == READY {
        Ok(())
    } else {
        Err(DpdkError::NotInitialized)
    }
}

/// Whether [`Eal::init`] has succeeded in this process and [`Eal::cleanup`]
/// has not run yet.
pub fn is_initialized() -> bool {
    STATE.load(Ordering::Acquire) == READY
}

/// `args` as C strings, with a program name in front if it lacks one.
pub(crate) fn build_argv(args: &[String]) -> Result<Vec<CString>> {
    let mut c_args = Vec::with_capacity(args.len() + 1);
    let has_name = matches!(args.first(), Some(a) if !a.starts_with('-'));
    if !has_name {
        c_args.push(CString::new("lbd").expect("static string has no NUL"));
    }
    for a in args {
        c_args.push(
            CString::new(a.as_str()).map_err(|_| DpdkError::InvalidArgument {
                op: "rte_eal_init",
                reason: format!("argument {a:?} contains a NUL byte"),
            })?,
        );
    }
    Ok(c_args)
}

/// The initialised Environment Abstraction Layer.
///
/// There is at most one per process. Dropping it runs [`Eal::cleanup`] on a
/// best-effort basis (nothing happens if resources are still in use). It is
/// neither `Send` nor `Sync`: keep it on the main thread (the main lcore).
#[derive(Debug)]
pub struct Eal {
    cleaned: bool,
    _main_thread_only: PhantomData<*const ()>,
}

impl Eal {
    /// Initialise EAL with `args`, laid out like C's `argv`: the program name
    /// first, then the EAL arguments (e.g. `["lbd", "-l", "0-1", "--no-huge",
    /// "-m", "256", "--vdev=net_ring0"]`). If `args` is empty or its first
    /// element starts with `-`, the program name `"lbd"` is put in front.
    ///
    /// Once per process: a second call returns [`DpdkError::AlreadyInitialized`]
    /// (also after a cleanup, which DPDK cannot undo). If DPDK rejects the
    /// arguments, the error carries `rte_errno`; DPDK may also print usage or,
    /// for `--help`/`--version`, exit the process itself.
    pub fn init(args: &[String]) -> Result<Eal> {
        let c_args = build_argv(args)?;
        let argc = c_int::try_from(c_args.len()).map_err(|_| DpdkError::InvalidArgument {
            op: "rte_eal_init",
            reason: "too many arguments".into(),
        })?;

        if STATE
            .compare_exchange(UNINIT, INITIALIZING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(DpdkError::AlreadyInitialized);
        }

        // EAL permutes argv (getopt) and may keep pointers to the strings, so
        // both the array and the strings are leaked: a few bytes, once.
        let mut argv: Vec<*mut c_char> = c_args.into_iter().map(CString::into_raw).collect();
        argv.push(std::ptr::null_mut());
        let argv: &'static mut [*mut c_char] = argv.leak();

        // SAFETY: argv holds argc valid NUL-terminated strings followed by a
        // null pointer, all living forever; the state machine above makes this
        // the only rte_eal_init call in flight in this process.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let err = DpdkError::from_rte_errno("rte_eal_init");
            // DPDK resets its own once-guard on most argument errors, so allow
            // another attempt; it answers EALREADY itself if it cannot.
            STATE.store(UNINIT, Ordering::Release);
            return Err(err);
        }
        STATE.store(READY, Ordering::Release);
        Ok(Eal {
            cleaned: false,
            _main_thread_only: PhantomData,
        })
    }

    /// The main lcore (the thread that called `init`).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: reads a field of EAL's static configuration, which stays
        // valid (if stale) even after cleanup.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// The enabled worker lcores (every lcore in `-l` except the main one).
    pub fn worker_lcores(&self) -> Vec<u32> {
        crate::lcore::workers()
    }

    /// Number of enabled lcores, main included.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: reads a field of EAL's static configuration.
        unsafe { sys::rte_lcore_count() }
    }

    /// TSC frequency in Hz.
    pub fn tsc_hz(&self) -> u64 {
        crate::tsc::hz()
    }

    /// NUMA socket of the calling thread.
    pub fn socket_id(&self) -> u32 {
        // SAFETY: reads a thread-local value set up by EAL.
        unsafe { sys::rte_socket_id() }
    }

    /// Release EAL's resources (`rte_eal_cleanup`). Idempotent.
    ///
    /// Refused with [`DpdkError::InUse`] while a worker lcore is still running
    /// a launched function, while queue handles are alive, or while a
    /// [`Mempool`](crate::Mempool) (or an mbuf from one) is alive. Ports that
    /// were configured through [`Port::configure`](crate::Port::configure) are
    /// stopped and closed first. After cleanup no DPDK call can be made again
    /// in this process.
    pub fn cleanup(&mut self) -> Result<()> {
        if self.cleaned {
            return Ok(());
        }
        let running = crate::lcore::running_workers();
        if !running.is_empty() {
            return Err(DpdkError::InUse {
                op: "rte_eal_cleanup",
                reason: format!("lcores {running:?} are still running launched functions"),
            });
        }
        // SAFETY: every worker is in the WAIT state; this only collects them.
        unsafe { sys::rte_eal_mp_wait_lcore() };
        crate::port::close_all_configured()?;
        let pools = LIVE_POOLS.load(Ordering::Acquire);
        if pools != 0 {
            return Err(DpdkError::InUse {
                op: "rte_eal_cleanup",
                reason: format!("{pools} mempool(s) alive or with mbufs outstanding"),
            });
        }
        if STATE
            .compare_exchange(READY, CLEANED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(DpdkError::NotInitialized);
        }
        self.cleaned = true;
        // SAFETY: no wrapper object that refers to EAL memory is left (checked
        // above), no lcore runs our code, and STATE now refuses new objects.
        let ret = unsafe { sys::rte_eal_cleanup() };
        crate::error::check("rte_eal_cleanup", ret).map(|_| ())
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // Best effort: if something is still in use, leave it to process exit.
        let _ = self.cleanup();
    }
}
