//! Ctrl-C and SIGTERM as an error: the first one sets a flag that the
//! generator's loops check, so `bench io` returns through its guards
//! (DUT killed, EAL cleaned up, hugepages given back, temp files removed)
//! instead of dying with them in place. A second signal kills at once (the
//! handler is installed with `SA_RESETHAND`).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    INTERRUPTED.store(true, Relaxed);
}

/// Catch SIGINT and SIGTERM from now on.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores an
        // atomic; sigaction copies the struct.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Whether a signal asked us to stop.
#[inline]
pub fn interrupted() -> bool {
    INTERRUPTED.load(Relaxed)
}

/// `Err` once a signal asked us to stop.
pub fn check() -> Result<(), String> {
    if interrupted() {
        Err("interrupted (SIGINT/SIGTERM); cleaned up".into())
    } else {
        Ok(())
    }
}
