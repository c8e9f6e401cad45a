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

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use dpdk::{MbufBurst, RxQueue, TxQueue};
use lbcore::config::{KernelPathConfig, PortConfig};
use lbcore::conntrack::Tick;
use lbcore::wire::MacAddr;
use tracing::{info, warn};

use crate::shared::Shared;

/// Depth of each direction's queue, per port.
pub const KERNEL_QUEUE_DEPTH: usize = 1024;
/// Frames moved per queue per round of the exception thread.
const ROUND: usize = 32;
/// How long the exception thread sleeps when nothing moved. The kernel path
/// carries management traffic: a fraction of a millisecond is fine, and
/// the thread must not spin on a core the workers may need.
const IDLE_SLEEP: Duration = Duration::from_micros(200);

/// The DPDK device name lbd gives port `index`'s TAP (matched by the
/// `net_tap` driver by its prefix).
pub fn vdev_name(index: usize) -> String {
    format!("net_tap_lbd{index}")
}

/// The `--vdev` argument creating port `index`'s TAP interface.
pub fn vdev_arg(index: usize, k: &KernelPathConfig) -> String {
    format!("--vdev={},iface={}", vdev_name(index), k.iface)
}

/// One port's exception path, as the workers and the control side see it.
pub struct KernelPath {
    /// The TAP interface's name.
    pub iface: String,
    pub rate_pps: u32,
    /// Frames from the wire for the kernel (filled by workers).
    pub to_kernel: ArrayQueue<dpdk::Mbuf>,
    /// Frames the kernel sent, to transmit (drained by the queue-0 worker).
    pub from_kernel: ArrayQueue<dpdk::Mbuf>,
    /// Frames written to the TAP device.
    pub delivered: AtomicU64,
    /// Frames the TAP device refused (kernel's queue full).
    pub tap_refused: AtomicU64,
    /// Frames read from the TAP device.
    pub sent_by_kernel: AtomicU64,
    /// Frames from the kernel dropped because `from_kernel` was full.
    pub from_kernel_full: AtomicU64,
}

impl KernelPath {
    pub fn new(k: &KernelPathConfig) -> KernelPath {
        KernelPath {
            iface: k.iface.clone(),
            rate_pps: k.rate_pps,
            to_kernel: ArrayQueue::new(KERNEL_QUEUE_DEPTH),
            from_kernel: ArrayQueue::new(KERNEL_QUEUE_DEPTH),
            delivered: AtomicU64::new(0),
            tap_refused: AtomicU64::new(0),
            sent_by_kernel: AtomicU64::new(0),
            from_kernel_full: AtomicU64::new(0),
        }
    }
}

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
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", k.iface),
        "1",
    );
    // The host's ARP requests must come from the port's address, never a
    // VIP it holds on lo (a local real server): the dataplane hands the
    // kernel only ARP replies addressed to the port's address.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv4/conf/{}/arp_announce", k.iface),
        "2",
    );
    ip(&["addr", "replace", &pc.address.to_string(), "dev", &k.iface])?;
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
pub fn run(shared: Arc<Shared>, mut taps: Vec<Tap>) {
    if let Err(e) = dpdk::lcore::register_thread() {
        warn!("kernel path thread: {e}; continuing without a per-lcore mempool cache");
    }
    let mut burst = MbufBurst::new();
    while !shared.stopping() {
        let mut moved = 0;
        for tap in &mut taps {
            let Some(k) = shared.kernel[tap.port].as_ref() else {
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

/// A worker's allowance of frames to one port's kernel: a token bucket
/// refilled from the worker's millisecond clock (per-core state: no shared
/// counter on any path).
#[derive(Debug, Clone)]
pub struct KernelBudget {
    /// Thousandths of a frame available.
    milli_tokens: u64,
    /// Frames per second for this worker.
    rate: u64,
    /// At most this many thousandths (a tenth of a second's worth, at least
    /// a burst).
    cap: u64,
    last: Tick,
}

impl KernelBudget {
    /// A bucket for `rate_pps` shared by `workers` workers (each gets an
    /// equal part, at least 1 frame/s).
    pub fn new(rate_pps: u32, workers: usize) -> KernelBudget {
        let rate = (rate_pps as u64 / workers.max(1) as u64).max(1);
        let cap = (rate / 10).max(32) * 1000;
        KernelBudget {
            milli_tokens: cap,
            rate,
            cap,
            last: 0,
        }
    }

    /// Take one frame's worth at time `now` (ms); false when over budget.
    #[inline]
    pub fn take(&mut self, now: Tick) -> bool {
        let elapsed = now.wrapping_sub(self.last) as u64;
        if elapsed > 0 {
            // 1 frame/s is 1 thousandth of a frame per millisecond.
            self.milli_tokens = (self.milli_tokens + elapsed * self.rate).min(self.cap);
            self.last = now;
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_allows_a_burst_then_the_rate() {
        // 1000 frames/s over 2 workers: 500/s each, a burst of 50.
        let mut b = KernelBudget::new(1000, 2);
        let burst = (0..1000).take_while(|_| b.take(0)).count();
        assert_eq!(burst, 50);
        assert!(!b.take(0));
        // 10 ms later: 5 more frames.
        let more = (0..1000).take_while(|_| b.take(10)).count();
        assert_eq!(more, 5);
        // A long pause refills only up to the cap.
        let after_pause = (0..1000).take_while(|_| b.take(100_000)).count();
        assert_eq!(after_pause, 50);
    }

    #[test]
    fn budget_is_never_zero() {
        let mut b = KernelBudget::new(1, 8);
        assert!(b.take(0), "the initial burst");
        let n = (0..100).take_while(|_| b.take(0)).count();
        assert_eq!(n, 31, "a burst of 32 in all");
        assert!(b.take(1000), "1 frame per second still passes");
    }

    #[test]
    fn vdev_arguments() {
        let k = KernelPathConfig {
            iface: "lbd-lan0".into(),
            rate_pps: 10,
        };
        assert_eq!(vdev_arg(1, &k), "--vdev=net_tap_lbd1,iface=lbd-lan0");
    }
}
