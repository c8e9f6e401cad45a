//! The kernel exception path (`ports[].kernel`): a TAP interface per port,
//! holding the port's MAC and address, so the director's own host can talk
//! through a port that DPDK owns (SSH, health checks, ping, a local
//! service).
//!
//! Wire → kernel: a worker whose pipeline says [`Verdict::Kernel`] (traffic
//! to the port's address that the dataplane does not answer itself) passes
//! the mbuf through a per-worker token bucket (`rate_pps`, split over the
//! port's queues: per-core state, no shared counter) into the port's bounded
//! `to_kernel` queue. Kernel → wire: what the kernel sends on the TAP goes
//! into the port's `from_kernel` queue, which the port's queue-0 worker
//! drains between bursts and transmits on its own TX queue. One thread
//! ([`run`]) moves frames between the queues and the TAP devices; it sleeps
//! when there is nothing to move. VIP traffic never takes this path.
//!
//! [`Verdict::Kernel`]: lbcore::pipeline::Verdict::Kernel

pub mod path;

use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use dpdk::{MbufBurst, RxQueue, TxQueue};
use lbcore::config::{KernelPathConfig, PortConfig};
use lbcore::wire::MacAddr;
use tracing::{info, warn};

use crate::dataplane::Dataplane;
use path::{vdev_arg, vdev_name};

/// Frames moved per queue per round of the exception thread.
const ROUND: usize = 32;
/// How long the exception thread sleeps when nothing moved. The kernel path
/// carries management traffic: a fraction of a millisecond is fine, and
/// the thread must not spin on a core the workers may need.
const IDLE_SLEEP: Duration = Duration::from_micros(200);

/// A TAP device opened for one port, owned by the exception thread.
pub struct Tap {
    /// Index of the director port it belongs to.
    pub port: usize,
    pub dev: dpdk::Port,
    pub rx: RxQueue,
    pub tx: TxQueue,
}

/// Create port `index`'s TAP (EAL made the device from [`vdev_arg`]): one
/// queue each way, the port's MAC, then the port's address and MTU on the
/// kernel side, IPv6 off (the director speaks IPv4; IPv6 router
/// solicitations would only add noise on the wire).
pub fn open(
    index: usize,
    pc: &PortConfig,
    k: &KernelPathConfig,
    mac: MacAddr,
    pool: &dpdk::Mempool,
) -> Result<Tap, String> {
    let name = vdev_name(index);
    let dev = dpdk::Port::by_name(&name).map_err(|e| {
        format!(
            "port {}: kernel interface {} (device {name}): {e}; with --eal-args, add \"{}\"",
            pc.name,
            k.iface,
            vdev_arg(index, k)
        )
    })?;
    let setup = dpdk::PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 512,
        tx_desc: 512,
        rss: false,
    };
    let (mut rx, mut tx) = dev
        .configure(&setup, pool)
        .map_err(|e| format!("kernel interface {}: {e}", k.iface))?;
    dev.set_mac_addr(mac.0)
        .map_err(|e| format!("kernel interface {}: setting MAC {mac}: {e}", k.iface))?;
    dev.start()
        .map_err(|e| format!("kernel interface {}: {e}", k.iface))?;
    // IPv6 only with the port's `address6` (health checks to IPv6 real
    // servers go from it); no duplicate address detection: the dataplane
    // answers Neighbour Discovery for the port's addresses.
    let v6 = pc.address6.is_some();
    let conf = |key: &str, val: &str| {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{}/{key}", k.iface), val);
    };
    if v6 {
        conf("accept_dad", "0");
        conf("accept_ra", "0");
    }
    conf("disable_ipv6", if v6 { "0" } else { "1" });
    // The host's ARP requests must come from the port's address, never a
    // VIP it holds on lo (a local real server): the dataplane hands the
    // kernel only ARP replies addressed to the port's address.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv4/conf/{}/arp_announce", k.iface),
        "2",
    );
    ip(&["addr", "replace", &pc.address.to_string(), "dev", &k.iface])?;
    if let Some(a6) = pc.address6 {
        ip(&[
            "-6",
            "addr",
            "replace",
            &a6.to_string(),
            "dev",
            &k.iface,
            "nodad",
        ])?;
    }
    ip(&[
        "link",
        "set",
        "dev",
        &k.iface,
        "mtu",
        &pc.mtu.to_string(),
        "up",
    ])?;
    info!(
        "port {}: kernel interface {} ({}, {mac}), at most {} frames/s to the kernel",
        pc.name, k.iface, pc.address, k.rate_pps
    );
    Ok(Tap {
        port: index,
        dev,
        rx: rx.remove(0),
        tx: tx.remove(0),
    })
}

/// Run `ip ARGS`, for the TAP's address and link settings.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip {}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The exception thread: move frames between the ports' queues and their
/// TAP devices until lbd stops, then stop and close the TAPs (which removes
/// the kernel interfaces).
pub fn run(dataplane: Arc<Dataplane>, mut taps: Vec<Tap>) {
    if let Err(e) = dpdk::lcore::register_thread() {
        warn!("kernel path thread: {e}; continuing without a per-lcore mempool cache");
    }
    let mut burst = MbufBurst::new();
    while !dataplane.stopping() {
        let mut moved = 0;
        for tap in &mut taps {
            let Some(k) = dataplane.kernel[tap.port].as_ref() else {
                continue;
            };
            // Kernel → wire.
            let n = tap.rx.rx_burst_upto(&mut burst, ROUND);
            moved += n;
            k.sent_by_kernel.fetch_add(n as u64, Relaxed);
            burst.drain(|m| {
                if k.from_kernel.push(m).is_err() {
                    // The mbuf came back in the error and is freed here.
                    k.from_kernel_full.fetch_add(1, Relaxed);
                }
            });
            // Wire → kernel.
            while burst.len() < ROUND {
                let Some(m) = k.to_kernel.pop() else { break };
                let _ = burst.push(m);
            }
            let queued = burst.len();
            if queued > 0 {
                moved += queued;
                let sent = tap.tx.tx_burst(&mut burst);
                k.delivered.fetch_add(sent as u64, Relaxed);
                k.tap_refused.fetch_add(burst.len() as u64, Relaxed);
                burst.free_all();
            }
        }
        if moved == 0 {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
    for tap in taps {
        let _ = tap.dev.stop();
        let _ = tap.dev.close();
    }
    dpdk::lcore::unregister_thread();
}
