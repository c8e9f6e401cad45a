//! The outcome of the last configuration change, for `lbctl status` and
//! `/metrics`.

use std::sync::Mutex;

/// Outcome of the last configuration change (reload, lbctl edit, restore).
#[derive(Debug, Clone)]
pub struct ChangeStatus {
    pub ok: bool,
    pub message: String,
    /// Unix time (seconds) of the change.
    pub at_unix: u64,
}

/// Where the control plane records each change's outcome.
pub struct ChangeLog(Mutex<ChangeStatus>);

impl ChangeLog {
    pub fn new(first: ChangeStatus) -> ChangeLog {
        ChangeLog(Mutex::new(first))
    }

    pub fn last(&self) -> ChangeStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn record(&self, status: ChangeStatus) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
