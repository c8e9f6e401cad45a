//! `bgp`: announcing the VIPs to the upstream routers through a BGP speaker
//! on the director's host (BIRD 2). lbd speaks no BGP itself: it keeps one
//! route per VIP it wants announced (`VIP/32 dev IFACE`) in a dedicated
//! kernel routing table, which BIRD's `kernel` protocol learns and its `bgp`
//! protocol exports. Withdrawing a VIP is deleting its route.

use serde::{Deserialize, Serialize};

use super::error::Problem;
use super::types::Config;

/// See the module comment; `Config::bgp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpConfig {
    /// The port (by name) facing the routers. Its kernel interface
    /// (`ports[].kernel`) is where the speaker peers, and the device of
    /// the VIP routes lbd keeps.
    pub port: String,
    /// The kernel routing table lbd keeps the announced VIP routes in (the
    /// speaker's `kernel table N; learn;`), 1 to 252 or 256 and above (not
    /// 253-255: default, main, local).
    pub table: u32,
    /// On stop: how long lbd keeps forwarding after withdrawing, while the
    /// routers move the traffic elsewhere. Default: 2000.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u32,
    /// `lbctl director drain`: the traffic counts as moved once no new
    /// connection arrived for this long. Default: 1000.
    #[serde(default = "default_drain_quiet_ms")]
    pub drain_quiet_ms: u32,
    /// BIRD's control socket (`birdc -s PATH`), to show the BGP sessions'
    /// state in `lbctl status` and `/metrics`. `None`: not shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birdc: Option<String>,
    /// Announce a VIP even when none of its services has a live real
    /// server. Default: false (withdraw: another director may have some).
    #[serde(default)]
    pub announce_without_servers: bool,
}

fn default_linger_ms() -> u32 {
    2000
}

fn default_drain_quiet_ms() -> u32 {
    1000
}

/// The longest `linger_ms` and `drain_quiet_ms` (10 minutes).
const MAX_WAIT_MS: u32 = 600_000;

/// Checks `cfg.bgp`: the port exists and has a kernel interface, a usable
/// table, bounded times, an absolute socket path.
pub(super) fn check_bgp(cfg: &Config, v: &mut Vec<Problem>) {
    let Some(x) = &cfg.bgp else {
        return;
    };
    match cfg.ports.iter().find(|p| p.name == x.port) {
        None => v.push(Problem::new(
            "bgp.port",
            format!("no port named \"{}\"", x.port),
        )),
        Some(p) if p.kernel.is_none() => v.push(Problem::new(
            "bgp.port",
            format!(
                "port {} has no kernel interface: the BGP speaker peers through it; add \
                 `kernel: Some((iface: \"lbd-{}\"))` to the port",
                p.name, p.name
            ),
        )),
        Some(_) => {}
    }
    if x.table == 0 || (253..=255).contains(&x.table) {
        v.push(Problem::new(
            "bgp.table",
            format!(
                "table {} is reserved (0 unspec, 253 default, 254 main, 255 local); use 1 to 252 \
                 or 256 and above",
                x.table
            ),
        ));
    }
    if x.linger_ms > MAX_WAIT_MS {
        v.push(Problem::new(
            "bgp.linger_ms",
            format!(
                "linger_ms {} is out of range (0 to {MAX_WAIT_MS})",
                x.linger_ms
            ),
        ));
    }
    if !(100..=MAX_WAIT_MS).contains(&x.drain_quiet_ms) {
        v.push(Problem::new(
            "bgp.drain_quiet_ms",
            format!(
                "drain_quiet_ms {} is out of range (100 to {MAX_WAIT_MS})",
                x.drain_quiet_ms
            ),
        ));
    }
    if let Some(s) = &x.birdc {
        if !s.starts_with('/') {
            v.push(Problem::new(
                "bgp.birdc",
                format!("birdc socket {s:?} must be an absolute path"),
            ));
        }
    }
}
