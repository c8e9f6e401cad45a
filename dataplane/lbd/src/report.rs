//! The report printed at shutdown: port statistics, counters summed over
//! workers, and the service table in `ipvsadm -Ln --stats` spirit.
//!
//! Lines are `key value` pairs with stable names so scripts and the
//! end-to-end tests can parse them.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use lbcore::counters::{total, Counter, WorkerStats};
use lbcore::pipeline::Snapshot;

/// Port statistics as read from the device.
pub struct PortReport {
    pub name: String,
    pub stats: dpdk::PortStats,
}

pub fn render(
    snap: &Snapshot,
    ports: &[PortReport],
    workers: &[Arc<WorkerStats>],
    uptime_s: f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "lbd: final report after {uptime_s:.1} s");
    for p in ports {
        let st = &p.stats;
        let _ = writeln!(
            s,
            "port {} rx_packets={} rx_bytes={} tx_packets={} tx_bytes={} rx_missed={} rx_errors={} tx_errors={} rx_nombuf={}",
            p.name, st.ipackets, st.ibytes, st.opackets, st.obytes, st.imissed, st.ierrors, st.oerrors, st.rx_nombuf
        );
    }
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(
            s,
            "worker {i} busy_polls={} idle_polls={} conns={} idle_sleeps={}",
            w.busy_polls.load(Relaxed),
            w.idle_polls.load(Relaxed),
            w.conns_live.load(Relaxed),
            w.idle_sleeps.load(Relaxed)
        );
    }
    for &c in Counter::ALL {
        let _ = writeln!(s, "counter {} {}", c.name(), total(workers, c));
    }
    let drops: u64 = Counter::ALL
        .iter()
        .filter(|c| c.is_drop())
        .map(|&c| total(workers, c))
        .sum();
    let _ = writeln!(s, "counter drop_total {drops}");
    for svc in &snap.services {
        let sum = |f: &dyn Fn(&WorkerStats) -> u64| workers.iter().map(|w| f(w)).sum::<u64>();
        let id = svc.id as usize;
        let _ = writeln!(
            s,
            "service {} {} conns={} packets={} bytes={}",
            match svc.fwmark {
                Some(m) => format!("FWM {m}"),
                None => format!(
                    "{} {}:{}",
                    match svc.protocol {
                        lbcore::config::Protocol::Tcp => "TCP",
                        lbcore::config::Protocol::Udp => "UDP",
                    },
                    svc.vip,
                    svc.port
                ),
            },
            svc.scheduler.name(),
            sum(&|w| w.services[id].conns.load(Relaxed)),
            sum(&|w| w.services[id].packets.load(Relaxed)),
            sum(&|w| w.services[id].bytes.load(Relaxed)),
        );
        for r in &svc.reals {
            let id = r.id as usize;
            let _ = writeln!(
                s,
                "  -> {}:{} {} weight={} active={} inactive={} conns={} packets={} bytes={}",
                r.addr,
                r.port,
                r.forward.ipvs_name(),
                r.weight,
                workers
                    .iter()
                    .map(|w| w.rs[id].active() as i64)
                    .sum::<i64>()
                    .max(0),
                workers
                    .iter()
                    .map(|w| w.rs[id].inactive() as i64)
                    .sum::<i64>()
                    .max(0),
                sum(&|w| w.rs[id].conns.load(Relaxed)),
                sum(&|w| w.rs[id].packets.load(Relaxed)),
                sum(&|w| w.rs[id].bytes.load(Relaxed)),
            );
        }
    }
    s
}
