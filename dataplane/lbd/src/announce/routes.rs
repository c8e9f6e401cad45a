//! The announce table: one kernel route per announced VIP
//! (`VIP/32`, or `VIP/128` for IPv6, `dev IFACE proto static`) in routing table `bgp.table` of the
//! director's network namespace, which the speaker's kernel protocol learns
//! and exports by BGP. Changed with iproute2's `ip` (a system component,
//! like the speaker): robust, and its errors are words an operator knows.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use super::machine::Action;

/// Where the routes go.
#[derive(Debug, Clone)]
pub struct RouteTable {
    pub table: u32,
    /// The kernel interface of the port facing the routers.
    pub dev: String,
}

impl RouteTable {
    /// Make the change. Withdrawing a route that is not there is not an
    /// error: it is what was asked for.
    pub fn apply(&self, a: Action) -> Result<(), String> {
        let table = self.table.to_string();
        match a {
            Action::Announce(vip) => ip(&[
                "route",
                "replace",
                &prefix(vip),
                "dev",
                &self.dev,
                "table",
                &table,
                "proto",
                "static",
            ]),
            Action::Withdraw(vip) => match ip(&["route", "del", &prefix(vip), "table", &table]) {
                Err(e) if e.contains("No such process") || e.contains("Cannot find") => Ok(()),
                other => other,
            },
        }
    }

    /// Remove every route of the table: at start (what an lbd that died
    /// left behind) and at the end.
    pub fn flush(&self) -> Result<(), String> {
        // `ip route flush` alone flushes IPv4 only.
        let table = self.table.to_string();
        for family in ["-4", "-6"] {
            match ip(&[family, "route", "flush", "table", &table]) {
                // A table the kernel has not made yet holds no route.
                Err(e) if e.contains("does not exist") => {}
                other => other?,
            }
        }
        Ok(())
    }
}

fn prefix(vip: IpAddr) -> String {
    match vip {
        IpAddr::V4(v) => format!("{v}/32"),
        IpAddr::V6(v) => format!("{v}/128"),
    }
}

/// Run `ip ARGS`; the error is its first line on stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "ip {}: {}",
        args.join(" "),
        err.trim().lines().next().unwrap_or("failed")
    ))
}
