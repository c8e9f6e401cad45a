//! Errors returned by the wrapper.

use core::ffi::{c_int, CStr};
use std::fmt;

use dpdk_sys as sys;

/// Convenience alias.
pub type Result<T, E = DpdkError> = std::result::Result<T, E>;

/// Something DPDK (or this wrapper, on DPDK's behalf) refused to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpdkError {
    /// [`Eal::init`](crate::Eal::init) was called a second time in this process
    /// (EAL can be initialised once per process, even after cleanup).
    AlreadyInitialized,
    /// An operation needs EAL, which is not (or no longer) initialised.
    NotInitialized,
    /// A DPDK call failed; `errno` is the positive `rte_errno` / `-ret` value.
    Call {
        /// The DPDK function or wrapper operation that failed.
        op: &'static str,
        /// Positive errno value (may be a DPDK-specific code above 1000).
        errno: i32,
    },
    /// An argument was rejected before reaching DPDK.
    InvalidArgument {
        /// Operation name.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// No ethdev port has this device name.
    PortNotFound(String),
    /// The port id does not name an attached ethdev port.
    InvalidPort(u16),
    /// More queues were requested than the device supports.
    TooManyQueues {
        /// Port id.
        port: u16,
        /// `"rx"` or `"tx"`.
        direction: &'static str,
        /// Requested count.
        requested: u16,
        /// Device maximum.
        max: u16,
    },
    /// The operation would pull resources from under live handles
    /// (queue handles, mempools, running lcores).
    InUse {
        /// Operation name.
        op: &'static str,
        /// What is still in use.
        reason: String,
    },
}

impl DpdkError {
    /// The errno value behind the error, if DPDK returned one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DpdkError::Call { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// Error from a DPDK return code (`ret < 0` means `-errno`).
    pub(crate) fn from_ret(op: &'static str, ret: c_int) -> Self {
        DpdkError::Call {
            op,
            errno: ret.checked_neg().unwrap_or(i32::MAX),
        }
    }

    /// Error from the calling thread's `rte_errno`.
    pub(crate) fn from_rte_errno(op: &'static str) -> Self {
        // SAFETY: reads a thread-local integer; valid on any thread.
        let errno = unsafe { sys::lbd_shim_errno() };
        DpdkError::Call { op, errno }
    }
}

/// Map a DPDK return code: negative is an error, anything else is returned.
pub(crate) fn check(op: &'static str, ret: c_int) -> Result<c_int> {
    if ret < 0 {
        Err(DpdkError::from_ret(op, ret))
    } else {
        Ok(ret)
    }
}

/// `rte_strerror` as an owned string.
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns either a static string or a pointer to a
    // per-thread buffer holding a NUL-terminated string; we copy it at once,
    // before anything else on this thread can overwrite the buffer. It needs no
    // EAL initialisation.
    unsafe {
        let p = sys::rte_strerror(errno);
        if p.is_null() {
            return format!("error {errno}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkError::AlreadyInitialized => {
                f.write_str("DPDK EAL is already initialised in this process (it can only be initialised once)")
            }
            DpdkError::NotInitialized => f.write_str("DPDK EAL is not initialised"),
            // Some failures (rte_eal_init finding its runtime files locked
            // by another process, for one) leave rte_errno at 0, which
            // strerror calls "Success": say that there is no code instead.
            DpdkError::Call { op, errno: 0 } => write!(
                f,
                "{op} failed without an error code (the EAL log lines above say why)"
            ),
            DpdkError::Call { op, errno } => {
                write!(f, "{op} failed: {} (errno {errno})", strerror(*errno))
            }
            DpdkError::InvalidArgument { op, reason } => write!(f, "{op}: invalid argument: {reason}"),
            DpdkError::PortNotFound(name) => write!(
                f,
                "no DPDK port named {name:?} (is the device given to EAL, e.g. --vdev={name}?)"
            ),
            DpdkError::InvalidPort(id) => write!(f, "DPDK port {id} does not exist"),
            DpdkError::TooManyQueues {
                port,
                direction,
                requested,
                max,
            } => write!(
                f,
                "port {port}: {requested} {direction} queues requested, the device supports at most {max}"
            ),
            DpdkError::InUse { op, reason } => write!(f, "{op}: still in use: {reason}"),
        }
    }
}

impl std::error::Error for DpdkError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_errors_name_the_cause_or_its_absence() {
        let e = DpdkError::Call {
            op: "rte_eal_init",
            errno: 22,
        };
        assert_eq!(
            e.to_string(),
            "rte_eal_init failed: Invalid argument (errno 22)"
        );
        // rte_errno 0 is no error code, not "Success".
        let e = DpdkError::Call {
            op: "rte_eal_init",
            errno: 0,
        };
        assert_eq!(
            e.to_string(),
            "rte_eal_init failed without an error code (the EAL log lines above say why)"
        );
    }
}
