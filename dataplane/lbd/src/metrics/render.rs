//! Rendering: [`MetricInputs`] to the Prometheus text exposition format.
//! Pure (no I/O, no locks but the inputs' atomics), so the tests feed it
//! synthetic inputs and check the text with a strict parser of their own
//! and with the reference parser (python3-prometheus-client) when present.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

use hdrhistogram::Histogram;
use lbcore::addr::SockAddr;
use lbcore::config::Protocol;
use lbcore::counters::Counter;
use prometheus::core::{Collector, Desc};
use prometheus::proto;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};
use tracing::warn;

use super::inputs::MetricInputs;

/// Upper bounds (seconds) of the burst-latency histogram buckets: 1-2-5
/// steps from 100 ns (a burst of one frame) to 100 ms (a descheduled core);
/// longer bursts land in `+Inf`.
pub const LATENCY_BUCKETS_SECONDS: [f64; 19] = [
    1e-7, 2e-7, 5e-7, 1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2,
    2e-2, 5e-2, 1e-1,
];

/// Render `m` in the Prometheus text format. Cannot fail in practice (names
/// and labels are fixed); if it ever did, the text is a single comment
/// saying why, which Prometheus accepts as an empty scrape.
pub fn render(m: &MetricInputs) -> String {
    try_render(m).unwrap_or_else(|e| {
        warn!("metrics: cannot render: {e}");
        format!("# lbd: cannot render metrics: {e}\n")
    })
}

fn try_render(m: &MetricInputs) -> prometheus::Result<String> {
    let reg = Registry::new();
    let b = Builder { reg: &reg };
    ports(&b, m)?;
    kernel_paths(&b, m)?;
    health(&b, m)?;
    vrrp(&b, m)?;
    announce(&b, m)?;
    if !m.sync.is_empty() {
        let c = b.counter(
            "lbd_sync_records_total",
            "Connection sync: records sent to and received from the peer director, received records refused (unknown service or real server), bad datagrams and send errors.",
            &["event"],
        )?;
        for (e, v) in &m.sync {
            c.with_label_values(&[e]).inc_by(*v);
        }
    }
    counters(&b, m)?;
    services(&b, m)?;
    workers(&b, m)?;
    latency(&b, m)?;
    state(&b, m)?;
    let mut out = String::new();
    TextEncoder::new().encode_utf8(&reg.gather(), &mut out)?;
    Ok(out)
}

/// Registers metric families on a scrape's registry.
struct Builder<'a> {
    reg: &'a Registry,
}

impl Builder<'_> {
    fn counter(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntCounterVec> {
        let c = IntCounterVec::new(Opts::new(name, help), labels)?;
        self.reg.register(Box::new(c.clone()))?;
        Ok(c)
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
        let g = GaugeVec::new(Opts::new(name, help), labels)?;
        self.reg.register(Box::new(g.clone()))?;
        Ok(g)
    }
}

fn ports(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    let packets = b.counter(
        "lbd_port_packets_total",
        "Packets received (rx) or sent (tx) by the port, as counted by the device.",
        &["port", "direction"],
    )?;
    let bytes = b.counter(
        "lbd_port_bytes_total",
        "Bytes received (rx) or sent (tx) by the port, as counted by the device.",
        &["port", "direction"],
    )?;
    let missed = b.counter(
        "lbd_port_missed_total",
        "Packets the device dropped because its RX queues were full (workers too slow).",
        &["port"],
    )?;
    let errors = b.counter(
        "lbd_port_errors_total",
        "Erroneous received packets (rx) or failed transmissions (tx), as counted by the device.",
        &["port", "direction"],
    )?;
    let nombuf = b.counter(
        "lbd_port_nombuf_total",
        "Receive buffer (mbuf) allocation failures of the port.",
        &["port"],
    )?;
    let link = b.gauge(
        "lbd_port_link_up",
        "Whether the port's link is up (1) or down (0).",
        &["port"],
    )?;
    let link_changes = b.counter(
        "lbd_port_link_changes_total",
        "Link state changes (up to down or back) of the port since lbd started.",
        &["port"],
    )?;
    let xstats = b.counter(
        "lbd_port_xstats_total",
        "The port driver's extended statistics (rte_eth_xstats), by the driver's own name; the set depends on the driver.",
        &["port", "stat"],
    )?;
    for p in &m.ports {
        let n = p.name.as_str();
        link_changes.with_label_values(&[n]).inc_by(p.link_changes);
        for (stat, v) in &p.xstats {
            xstats.with_label_values(&[n, stat]).inc_by(*v);
        }
        if let Some(s) = &p.stats {
            packets.with_label_values(&[n, "rx"]).inc_by(s.ipackets);
            packets.with_label_values(&[n, "tx"]).inc_by(s.opackets);
            bytes.with_label_values(&[n, "rx"]).inc_by(s.ibytes);
            bytes.with_label_values(&[n, "tx"]).inc_by(s.obytes);
            missed.with_label_values(&[n]).inc_by(s.imissed);
            errors.with_label_values(&[n, "rx"]).inc_by(s.ierrors);
            errors.with_label_values(&[n, "tx"]).inc_by(s.oerrors);
            nombuf.with_label_values(&[n]).inc_by(s.rx_nombuf);
        }
        if let Some(up) = p.link_up {
            link.with_label_values(&[n]).set(if up { 1.0 } else { 0.0 });
        }
    }
    Ok(())
}

/// Each VRRP instance's series, told apart by `vrrp_instance` (`vrrp`,
/// `vrrp6`: both may use one vrid). Not `instance`: Prometheus gives that
/// label to the scrape target.
fn vrrp(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    if m.vrrp.is_empty() {
        return Ok(());
    }
    let state = b.gauge(
        "lbd_vrrp_state",
        "Each VRRP instance's state: 1 for the current one (INIT, BACKUP, MASTER, FAULT), 0 for the others.",
        &["vrrp_instance", "vrid", "state"],
    )?;
    let flips = b.counter(
        "lbd_vrrp_transitions_total",
        "Changes of each VRRP instance's state since lbd started.",
        &["vrrp_instance", "vrid"],
    )?;
    for v in &m.vrrp {
        let (name, vrid) = (v.instance.as_str(), v.vrid.to_string());
        for s in ["INIT", "BACKUP", "MASTER", "FAULT"] {
            state
                .with_label_values(&[name, vrid.as_str(), s])
                .set(if v.state == s { 1.0 } else { 0.0 });
        }
        flips
            .with_label_values(&[name, vrid.as_str()])
            .inc_by(v.transitions);
    }
    Ok(())
}

fn announce(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    let Some(a) = &m.announce else {
        return Ok(());
    };
    let vip = b.gauge(
        "lbd_bgp_vip_announced",
        "Each VIP: 1 while its route is in the announce table (the BGP speaker exports it), 0 withdrawn.",
        &["vip"],
    )?;
    for v in &a.vips {
        vip.with_label_values(&[&v.vip.to_string()])
            .set(if v.announced { 1.0 } else { 0.0 });
    }
    let drained = b.gauge(
        "lbd_bgp_drained",
        "1 while the director is drained (lbctl director drain), 0 otherwise.",
        &[],
    )?;
    drained
        .with_label_values(&[] as &[&str])
        .set(if a.drained { 1.0 } else { 0.0 });
    let errors = b.counter(
        "lbd_bgp_route_errors_total",
        "Changes of the announce table (ip route) that failed since start; each is retried.",
        &[],
    )?;
    errors
        .with_label_values(&[] as &[&str])
        .inc_by(a.route_errors);
    let speaker = b.gauge(
        "lbd_bgp_speaker_reachable",
        "1 when the BGP speaker's control socket (bgp.birdc) answered the last query, 0 otherwise.",
        &[],
    )?;
    speaker
        .with_label_values(&[] as &[&str])
        .set(if a.speaker.state == "ok" { 1.0 } else { 0.0 });
    let session = b.gauge(
        "lbd_bgp_session_established",
        "Each BGP session of the speaker: 1 when Established, 0 otherwise (its state and detail as labels).",
        &["session", "state", "info"],
    )?;
    for s in &a.speaker.sessions {
        session
            .with_label_values(&[&s.name, &s.state, &s.info])
            .set(if s.info.starts_with("Established") {
                1.0
            } else {
                0.0
            });
    }
    Ok(())
}

fn health(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    if m.health.is_empty() {
        return Ok(());
    }
    let up = b.gauge(
        "lbd_real_server_up",
        "Health-checked real servers: 1 in service, 0 down by its check (only checked servers are listed).",
        &["service", "real"],
    )?;
    let flips = b.counter(
        "lbd_real_server_health_transitions_total",
        "Changes of a health-checked real server's state (up/down) since lbd started.",
        &["service", "real"],
    )?;
    for h in &m.health {
        let l = [h.service.as_str(), h.real_server.as_str()];
        up.with_label_values(&l).set(if h.up { 1.0 } else { 0.0 });
        flips.with_label_values(&l).inc_by(h.transitions);
    }
    Ok(())
}

fn kernel_paths(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    if m.kernel.is_empty() {
        return Ok(());
    }
    let frames = b.counter(
        "lbd_kernel_path_frames_total",
        "Kernel exception path, per port: frames written to the kernel interface (delivered) or refused by it (refused), frames the kernel sent (sent_by_kernel) and those dropped because the workers' queue was full (dropped_queue_full).",
        &["port", "iface", "event"],
    )?;
    let rate = b.gauge(
        "lbd_kernel_path_rate_limit_pps",
        "Frames per second the kernel exception path accepts per port (ports[].kernel.rate_pps).",
        &["port", "iface"],
    )?;
    for k in &m.kernel {
        let (p, i) = (k.port.as_str(), k.iface.as_str());
        for (event, v) in [
            ("delivered", k.delivered),
            ("refused", k.tap_refused),
            ("sent_by_kernel", k.sent_by_kernel),
            ("dropped_queue_full", k.from_kernel_full),
        ] {
            frames.with_label_values(&[p, i, event]).inc_by(v);
        }
        rate.with_label_values(&[p, i]).set(k.rate_pps as f64);
    }
    Ok(())
}

/// Worker counters, each in the family `Counter::metric` declares for it.
fn counters(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    let mut families: Vec<(&'static str, IntCounterVec)> = Vec::new();
    for &c in Counter::ALL {
        let v: u64 = m.workers.iter().map(|w| w.get(c)).sum();
        let d = c.metric();
        let i = match families.iter().position(|(n, _)| *n == d.name) {
            Some(i) => i,
            None => {
                let names: Vec<&str> = d.label.iter().map(|l| l.0).collect();
                families.push((d.name, b.counter(d.name, d.help, &names)?));
                families.len() - 1
            }
        };
        let values: Vec<&str> = d.label.iter().map(|l| l.1).collect();
        families[i].1.with_label_values(&values).inc_by(v);
    }
    Ok(())
}

/// `tcp/198.18.0.100:80`, or `fwmark/3` for a service group. Labels hold
/// an address with its port, so an IPv6 address is bracketed as in a URL
/// and in Prometheus's own `instance` label: `tcp/[2001:db8::100]:80`
/// (bare, its last colon could not be told from the port's).
pub(super) fn service_label(svc: &lbcore::api::ServiceKey) -> String {
    if let Some(m) = svc.fwmark {
        return format!("fwmark/{m}");
    }
    let p = match svc.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    format!("{p}/{}", SockAddr(svc.vip, svc.port))
}

/// `198.18.0.11:80`, `[2001:db8::11]:80`: a real server's label (see
/// [`service_label`]).
pub(super) fn real_server_label(addr: IpAddr, port: u16) -> String {
    SockAddr(addr, port).to_string()
}

fn services(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    let s_conns = b.counter(
        "lbd_service_connections_total",
        "Connections scheduled for the virtual service since start.",
        &["service"],
    )?;
    let s_packets = b.counter(
        "lbd_service_packets_total",
        "Packets forwarded for the virtual service.",
        &["service"],
    )?;
    let s_bytes = b.counter(
        "lbd_service_bytes_total",
        "Bytes (Ethernet frames) forwarded for the virtual service.",
        &["service"],
    )?;
    let s_packets_out = b.counter(
        "lbd_service_packets_out_total",
        "Replies through the director for the virtual service (NAT only: DR and tunnel replies bypass it).",
        &["service"],
    )?;
    let s_bytes_out = b.counter(
        "lbd_service_bytes_out_total",
        "Bytes (Ethernet frames) of replies through the director for the virtual service (NAT only).",
        &["service"],
    )?;
    let r_conns = b.counter(
        "lbd_real_server_connections_total",
        "Connections scheduled to the real server since start.",
        &["service", "real"],
    )?;
    let r_packets = b.counter(
        "lbd_real_server_packets_total",
        "Packets forwarded to the real server.",
        &["service", "real"],
    )?;
    let r_bytes = b.counter(
        "lbd_real_server_bytes_total",
        "Bytes (Ethernet frames) forwarded to the real server.",
        &["service", "real"],
    )?;
    let r_packets_out = b.counter(
        "lbd_real_server_packets_out_total",
        "Replies from the real server through the director (NAT only).",
        &["service", "real"],
    )?;
    let r_bytes_out = b.counter(
        "lbd_real_server_bytes_out_total",
        "Bytes (Ethernet frames) of replies from the real server through the director (NAT only).",
        &["service", "real"],
    )?;
    let r_active = b.gauge(
        "lbd_real_server_active_connections",
        "Connections to the real server in ESTABLISHED state (ipvsadm ActiveConn).",
        &["service", "real"],
    )?;
    let r_inactive = b.gauge(
        "lbd_real_server_inactive_connections",
        "Connections to the real server in any other state (ipvsadm InActConn).",
        &["service", "real"],
    )?;
    let r_weight = b.gauge(
        "lbd_real_server_weight",
        "Configured scheduling weight of the real server (0: quiesced).",
        &["service", "real"],
    )?;
    let ws = &m.workers;
    for svc in &m.snapshot.services {
        let sl = service_label(&svc.key());
        let id = svc.id as usize;
        let sum = |f: fn(&lbcore::counters::ServiceStats) -> u64| {
            ws.iter()
                .filter_map(|w| w.services.get(id))
                .map(f)
                .sum::<u64>()
        };
        s_conns
            .with_label_values(&[&sl])
            .inc_by(sum(|s| s.conns.load(Relaxed)));
        s_packets
            .with_label_values(&[&sl])
            .inc_by(sum(|s| s.packets.load(Relaxed)));
        s_bytes
            .with_label_values(&[&sl])
            .inc_by(sum(|s| s.bytes.load(Relaxed)));
        s_packets_out
            .with_label_values(&[&sl])
            .inc_by(sum(|s| s.packets_out.load(Relaxed)));
        s_bytes_out
            .with_label_values(&[&sl])
            .inc_by(sum(|s| s.bytes_out.load(Relaxed)));
        for r in &svc.reals {
            let rl = real_server_label(r.addr, r.port);
            let labels = [sl.as_str(), rl.as_str()];
            let rid = r.id as usize;
            let rs = || ws.iter().filter_map(|w| w.rs.get(rid));
            r_conns
                .with_label_values(&labels)
                .inc_by(rs().map(|s| s.conns.load(Relaxed)).sum());
            r_packets
                .with_label_values(&labels)
                .inc_by(rs().map(|s| s.packets.load(Relaxed)).sum());
            r_bytes
                .with_label_values(&labels)
                .inc_by(rs().map(|s| s.bytes.load(Relaxed)).sum());
            r_packets_out
                .with_label_values(&labels)
                .inc_by(rs().map(|s| s.packets_out.load(Relaxed)).sum());
            r_bytes_out
                .with_label_values(&labels)
                .inc_by(rs().map(|s| s.bytes_out.load(Relaxed)).sum());
            // Each worker's count is signed: a NAT connection may be counted
            // in by one worker and out by another; the sum is exact.
            let active: i64 = rs().map(|s| s.active() as i64).sum();
            let inactive: i64 = rs().map(|s| s.inactive() as i64).sum();
            r_active
                .with_label_values(&labels)
                .set(active.max(0) as f64);
            r_inactive
                .with_label_values(&labels)
                .set(inactive.max(0) as f64);
            r_weight.with_label_values(&labels).set(r.weight as f64);
        }
    }
    Ok(())
}

fn workers(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    let conns = b.gauge(
        "lbd_connections",
        "Connections currently in the worker's connection table.",
        &["worker"],
    )?;
    let polls = b.counter(
        "lbd_worker_polls_total",
        "Receive polls of the worker that returned packets (busy) or none (idle).",
        &["worker", "result"],
    )?;
    let ratio = b.gauge(
        "lbd_worker_busy_ratio",
        "Share of the worker's polls since start that returned packets (0..1); for a recent \
         value use rate(lbd_worker_polls_total).",
        &["worker"],
    )?;
    let flood = b.gauge(
        "lbd_flood_defence_active",
        "1 while the worker's SYN-flood defence is engaged (short half-open timeouts, eviction \
         of half-open entries, stateless forwarding for sh/mh services), else 0.",
        &["worker"],
    )?;
    for (i, w) in m.workers.iter().enumerate() {
        let wl = i.to_string();
        flood
            .with_label_values(&[&wl])
            .set(w.flood_engaged.load(Relaxed) as f64);
        let busy = w.busy_polls.load(Relaxed);
        let idle = w.idle_polls.load(Relaxed);
        conns
            .with_label_values(&[&wl])
            .set(w.conns_live.load(Relaxed) as f64);
        polls.with_label_values(&[&wl, "busy"]).inc_by(busy);
        polls.with_label_values(&[&wl, "idle"]).inc_by(idle);
        let total = busy.saturating_add(idle);
        let r = if total == 0 {
            0.0
        } else {
            busy as f64 / total as f64
        };
        ratio.with_label_values(&[&wl]).set(r);
    }
    Ok(())
}

/// A metric family built by hand (the prometheus crate has no histogram
/// that can be set from existing counts), registered like any collector.
struct Prebuilt {
    desc: Desc,
    family: proto::MetricFamily,
}

impl Collector for Prebuilt {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }
    fn collect(&self) -> Vec<proto::MetricFamily> {
        vec![self.family.clone()]
    }
}

fn label(name: &str, value: &str) -> proto::LabelPair {
    let mut l = proto::LabelPair::default();
    l.set_name(name.to_owned());
    l.set_value(value.to_owned());
    l
}

/// Fixed-bucket view of an hdr histogram of cycles: (cumulative count per
/// bound of `bounds_s`, total count, sum in seconds). An hdr bucket spans at
/// most 1% of its values; it is placed by its lowest value (so a sample
/// exactly on a bound counts as `le` that bound, as Prometheus means it) and
/// summed at its median.
fn to_buckets(h: &Histogram<u64>, tsc_hz: u64, bounds_s: &[f64]) -> (Vec<u64>, u64, f64) {
    let hz = tsc_hz as f64;
    let mut per_bucket = vec![0u64; bounds_s.len()];
    let mut count = 0u64;
    let mut sum = 0.0;
    for v in h.iter_recorded() {
        let n = v.count_at_value();
        let at = v.value_iterated_to();
        let low = h.lowest_equivalent(at) as f64 / hz;
        count += n;
        sum += h.median_equivalent(at) as f64 / hz * n as f64;
        if let Some(i) = bounds_s.iter().position(|&b| low <= b) {
            per_bucket[i] += n;
        }
    }
    let mut acc = 0;
    let cumulative = per_bucket
        .into_iter()
        .map(|n| {
            acc += n;
            acc
        })
        .collect();
    (cumulative, count, sum)
}

fn latency(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    const NAME: &str = "lbd_burst_latency_seconds";
    const HELP: &str = "Time a worker spent processing one received burst (parse, decide, \
                        rewrite, transmit); cumulative since start, published by each worker \
                        about once a second.";
    if m.tsc_hz == 0 {
        return Ok(());
    }
    let mut metrics = Vec::with_capacity(m.latency.len());
    for (i, h) in m.latency.iter().enumerate() {
        let (cumulative, count, sum) = to_buckets(h, m.tsc_hz, &LATENCY_BUCKETS_SECONDS);
        let buckets = LATENCY_BUCKETS_SECONDS
            .iter()
            .zip(cumulative)
            .map(|(&le, n)| {
                let mut b = proto::Bucket::default();
                b.set_upper_bound(le);
                b.set_cumulative_count(n);
                b
            })
            .collect();
        let mut hist = proto::Histogram::default();
        hist.set_bucket(buckets);
        hist.set_sample_count(count);
        hist.set_sample_sum(sum);
        let mut metric = proto::Metric::from_label(vec![label("worker", &i.to_string())]);
        metric.set_histogram(hist);
        metrics.push(metric);
    }
    let mut family = proto::MetricFamily::default();
    family.set_name(NAME.to_owned());
    family.set_help(HELP.to_owned());
    family.set_field_type(proto::MetricType::HISTOGRAM);
    family.set_metric(metrics);
    let desc = Desc::new(
        NAME.to_owned(),
        HELP.to_owned(),
        vec!["worker".to_owned()],
        Default::default(),
    )?;
    b.reg.register(Box::new(Prebuilt { desc, family }))
}

fn state(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    let set = |name: &str, help: &str, v: f64| -> prometheus::Result<()> {
        b.gauge(name, help, &[])?
            .with_label_values(&[] as &[&str])
            .set(v);
        Ok(())
    };
    set(
        "lbd_connection_table_capacity",
        "Connection table capacity, all workers together.",
        m.conn_capacity as f64,
    )?;
    let neigh = b.gauge(
        "lbd_neighbours",
        "Real-server neighbours (ARP) whose MAC address is known (resolved) or not yet (unresolved).",
        &["state"],
    )?;
    let resolved = m.neighbours.iter().filter(|e| e.mac.is_some()).count();
    let unresolved = m.neighbours.len() - resolved;
    neigh.with_label_values(&["resolved"]).set(resolved as f64);
    neigh
        .with_label_values(&["unresolved"])
        .set(unresolved as f64);
    set(
        "lbd_config_generation",
        "Generation of the configuration in force; increases with every applied change.",
        m.generation as f64,
    )?;
    set(
        "lbd_config_last_change_success",
        "Whether the last configuration change (reload, lbctl edit) succeeded (1) or failed (0).",
        if m.last_change.ok { 1.0 } else { 0.0 },
    )?;
    set(
        "lbd_config_last_change_timestamp_seconds",
        "Unix time of the last configuration change attempt.",
        m.last_change.at_unix as f64,
    )?;
    set(
        "lbd_uptime_seconds",
        "Seconds since the daemon started.",
        m.uptime_s,
    )?;
    let build = b.gauge(
        "lbd_build_info",
        "Always 1; the version label tells the lbd build.",
        &["version"],
    )?;
    build
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::inputs::{HealthSample, KernelSample, PortSample};
    use super::*;
    use std::sync::Arc;

    use crate::control::change::ChangeStatus;
    use lbcore::counters::WorkerStats;
    use lbcore::pipeline::Snapshot;
    use std::collections::{HashMap, HashSet};
    use std::io::Write;
    use std::net::Ipv4Addr;

    use lbcore::config::Config;
    use lbcore::neigh::NeighTable;
    use lbcore::pipeline::{Registry as IdRegistry, MAX_REAL_SERVERS, MAX_SERVICES};
    use lbcore::wire::MacAddr;

    #[test]
    fn metrics_labels_bracket_ipv6_addresses_with_ports() {
        use lbcore::api::ServiceKey;
        let v4 = ServiceKey::addr(Protocol::Tcp, "198.18.0.100".parse().unwrap(), 80);
        let v6 = ServiceKey::addr(Protocol::Udp, "2001:db8::100".parse().unwrap(), 53);
        assert_eq!(service_label(&v4), "tcp/198.18.0.100:80");
        assert_eq!(service_label(&v6), "udp/[2001:db8::100]:53");
        assert_eq!(service_label(&ServiceKey::group(3)), "fwmark/3");
        assert_eq!(
            real_server_label("198.18.0.11".parse().unwrap(), 80),
            "198.18.0.11:80"
        );
        assert_eq!(
            real_server_label("2001:db8::11".parse().unwrap(), 8080),
            "[2001:db8::11]:8080"
        );
    }

    const HZ: u64 = 1_000_000_000; // 1 cycle = 1 ns: easy arithmetic

    // --- a small, strict parser of the text exposition format -------------

    #[derive(Debug, Clone)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    #[derive(Debug, Default)]
    struct Parsed {
        help: HashMap<String, String>,
        types: HashMap<String, String>,
        samples: Vec<Sample>,
    }

    fn valid_metric_name(s: &str) -> bool {
        let mut cs = s.chars();
        matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    fn valid_label_name(s: &str) -> bool {
        let mut cs = s.chars();
        matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    fn parse_value(s: &str) -> f64 {
        match s {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => s.parse().unwrap_or_else(|_| panic!("bad value {s:?}")),
        }
    }

    /// The family a sample belongs to: its own name, or for histograms and
    /// summaries the name without `_bucket`/`_sum`/`_count`.
    fn family_of<'a>(p: &Parsed, name: &'a str) -> &'a str {
        if p.types.contains_key(name) {
            return name;
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if matches!(
                    p.types.get(base).map(String::as_str),
                    Some("histogram" | "summary")
                ) {
                    return base;
                }
            }
        }
        name
    }

    fn parse(text: &str) -> Parsed {
        let mut p = Parsed::default();
        let mut seen_series = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let ctx = || format!("line {}: {line:?}", n + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", ctx()));
                assert!(valid_metric_name(name), "{}", ctx());
                assert!(!help.trim().is_empty(), "empty help: {}", ctx());
                assert!(
                    p.help.insert(name.into(), help.into()).is_none(),
                    "dup HELP {}",
                    ctx()
                );
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", ctx()));
                assert!(valid_metric_name(name), "{}", ctx());
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty),
                    "{}",
                    ctx()
                );
                assert!(
                    p.types.insert(name.into(), ty.into()).is_none(),
                    "dup TYPE {}",
                    ctx()
                );
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment {}", ctx());
            // name [{labels}] value [timestamp]
            let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("{}", ctx()));
            let name = &line[..name_end];
            assert!(valid_metric_name(name), "bad name {}", ctx());
            let mut rest = &line[name_end..];
            let mut labels = Vec::new();
            if let Some(r) = rest.strip_prefix('{') {
                let mut chars = r.char_indices().peekable();
                loop {
                    // label name
                    let start = chars
                        .peek()
                        .map(|&(i, _)| i)
                        .unwrap_or_else(|| panic!("{}", ctx()));
                    if r[start..].starts_with('}') {
                        rest = &r[start + 1..];
                        break;
                    }
                    let eq = r[start..].find('=').unwrap_or_else(|| panic!("{}", ctx())) + start;
                    let lname = &r[start..eq];
                    assert!(
                        valid_label_name(lname),
                        "bad label name {lname:?} {}",
                        ctx()
                    );
                    while chars.peek().is_some_and(|&(i, _)| i <= eq) {
                        chars.next();
                    }
                    assert_eq!(chars.next().map(|c| c.1), Some('"'), "{}", ctx());
                    let mut value = String::new();
                    loop {
                        match chars
                            .next()
                            .unwrap_or_else(|| panic!("unterminated {}", ctx()))
                            .1
                        {
                            '\\' => match chars.next().unwrap().1 {
                                'n' => value.push('\n'),
                                '\\' => value.push('\\'),
                                '"' => value.push('"'),
                                c => panic!("bad escape \\{c} {}", ctx()),
                            },
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.push((lname.to_owned(), value));
                    match chars.next().unwrap_or_else(|| panic!("{}", ctx())) {
                        (_, ',') => {}
                        (i, '}') => {
                            rest = &r[i + 1..];
                            break;
                        }
                        (_, c) => panic!("unexpected {c:?} {}", ctx()),
                    }
                }
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            assert!(
                rest.starts_with(' ') && (fields.len() == 1 || fields.len() == 2),
                "{}",
                ctx()
            );
            let value = parse_value(fields[0]);
            let names: HashSet<&str> = labels.iter().map(|l| l.0.as_str()).collect();
            assert_eq!(names.len(), labels.len(), "duplicate label {}", ctx());
            let family = family_of(&p, name);
            assert!(
                p.types.contains_key(family),
                "sample before/without TYPE {}",
                ctx()
            );
            assert!(p.help.contains_key(family), "sample without HELP {}", ctx());
            let mut key = labels.clone();
            key.sort();
            assert!(
                seen_series.insert((name.to_owned(), key)),
                "duplicate series {}",
                ctx()
            );
            p.samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
        p
    }

    impl Parsed {
        /// The value of the series `name` with exactly `labels`.
        fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
            let want: HashSet<(&str, &str)> = labels.iter().copied().collect();
            let found: Vec<&Sample> = self
                .samples
                .iter()
                .filter(|s| {
                    s.name == name
                        && s.labels.len() == want.len()
                        && s.labels
                            .iter()
                            .all(|(k, v)| want.contains(&(k.as_str(), v.as_str())))
                })
                .collect();
            assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
            found[0].value
        }

        fn series(&self, name: &str) -> Vec<&Sample> {
            self.samples.iter().filter(|s| s.name == name).collect()
        }
    }

    // --- synthetic inputs ---------------------------------------------------

    fn config() -> Config {
        ron::from_str(
            r#"(
                ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")],
                services: [
                    (vip: "198.18.0.100", port: 80, scheduler: Wrr, real_servers: [
                        (address: "198.18.0.11", weight: 3), (address: "198.18.0.12", weight: 1),
                    ]),
                    (vip: "198.18.0.100", port: 53, protocol: Udp, real_servers: [
                        (address: "198.18.0.11"),
                    ]),
                ],
            )"#,
        )
        .unwrap()
    }

    struct Lab {
        inputs: MetricInputs,
    }

    fn lab() -> Lab {
        let neigh = NeighTable::new(16);
        let snap = Snapshot::build(
            &config(),
            &[MacAddr([2, 0, 0, 0, 0, 2])],
            &mut IdRegistry::default(),
            &neigh,
            7,
        )
        .unwrap();
        // Resolve .11 only.
        for e in neigh.entries() {
            if e.ip == Ipv4Addr::new(198, 18, 0, 11) {
                neigh.learn(e.slot, e.ip, MacAddr([2, 0, 0, 0, 0, 0x11]), 1);
            }
        }
        let a = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
        let b = Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES));
        a.add(Counter::RxFrames, 100);
        b.add(Counter::RxFrames, 50);
        a.add(Counter::FwdDr, 80);
        b.add(Counter::FwdDr, 40);
        a.add(Counter::DropNoService, 3);
        b.add(Counter::DropNoService, 4);
        b.add(Counter::DropIpv4BadChecksum, 2);
        a.add(Counter::ConnCreated, 9);
        b.add(Counter::ConnCreated, 1);
        b.add(Counter::TxFailed, 5);
        let web = &snap.services[0];
        let (svc, rs1, rs2) = (
            web.id as usize,
            web.reals[0].id as usize,
            web.reals[1].id as usize,
        );
        for (w, k) in [(&a, 1u64), (&b, 10u64)] {
            bump(&w.services[svc].conns, 2 * k);
            bump(&w.services[svc].packets, 20 * k);
            bump(&w.services[svc].bytes, 2000 * k);
            bump(&w.rs[rs1].conns, k);
            bump(&w.rs[rs1].packets, 10 * k);
            bump(&w.rs[rs1].bytes, 1000 * k);
            bump(&w.services[svc].packets_out, 3 * k);
            bump(&w.services[svc].bytes_out, 300 * k);
            bump(&w.rs[rs1].packets_out, 3 * k);
            bump(&w.rs[rs1].bytes_out, 300 * k);
            bump(&w.rs[rs2].conns, k);
        }
        a.rs[rs1].add_active(2);
        b.rs[rs1].add_active(1);
        b.rs[rs1].add_inactive(4);
        // A decrement that landed on another worker's counter.
        a.rs[rs2].add_active(-1);
        b.rs[rs2].add_active(3);
        bump(&a.busy_polls, 30);
        bump(&a.idle_polls, 70);
        bump(&a.conns_live, 11);
        bump(&b.conns_live, 22);
        b.flood_engaged.store(1, Relaxed);
        let mut h0 = crate::latency::new_histogram();
        h0.record_n(1500, 990).unwrap(); // 1.5 µs
        h0.record_n(50_000, 10).unwrap(); // 50 µs
        h0.record(500_000_000).unwrap(); // 0.5 s: beyond the last bucket
        let h1 = crate::latency::new_histogram();
        let stats = dpdk::PortStats {
            ipackets: 1000,
            opackets: 900,
            ibytes: 64_000,
            obytes: 57_600,
            imissed: 7,
            ierrors: 1,
            oerrors: 2,
            rx_nombuf: 3,
        };
        Lab {
            inputs: MetricInputs {
                sync: vec![("sent", 12), ("received", 0)],
                vrrp: vec![
                    lbcore::api::VrrpInfo {
                        instance: "vrrp".into(),
                        state: "BACKUP".into(),
                        vrid: 51,
                        priority: 100,
                        master: None,
                        transitions: 2,
                    },
                    lbcore::api::VrrpInfo {
                        instance: "vrrp6".into(),
                        state: "MASTER".into(),
                        vrid: 51,
                        priority: 100,
                        master: Some("fe80::2".parse().unwrap()),
                        transitions: 1,
                    },
                ],
                announce: Some(lbcore::api::AnnounceInfo {
                    drained: false,
                    vips: vec![lbcore::api::VipAnnouncement {
                        vip: "198.18.0.100".parse().unwrap(),
                        announced: true,
                        reason: "announced".into(),
                    }],
                    speaker: lbcore::api::SpeakerInfo {
                        state: "ok".into(),
                        sessions: vec![lbcore::api::BgpSession {
                            name: "router".into(),
                            state: "up".into(),
                            info: "Established".into(),
                        }],
                    },
                    route_errors: 3,
                }),
                health: vec![HealthSample {
                    service: "tcp/198.18.0.100:80".into(),
                    real_server: "198.18.0.12:80".into(),
                    up: false,
                    transitions: 3,
                }],
                kernel: vec![KernelSample {
                    port: "lan0".into(),
                    iface: "lbd-lan0".into(),
                    rate_pps: 20_000,
                    delivered: 5,
                    tap_refused: 1,
                    sent_by_kernel: 6,
                    from_kernel_full: 0,
                }],
                ports: vec![
                    PortSample {
                        name: "lan0".into(),
                        stats: Some(stats),
                        link_up: Some(true),
                        xstats: vec![
                            ("rx_good_packets".into(), 1000),
                            ("rx_q1_packets".into(), 400),
                        ],
                        link_changes: 2,
                    },
                    PortSample {
                        name: "wan0".into(),
                        stats: None,
                        link_up: Some(false),
                        xstats: Vec::new(),
                        link_changes: 0,
                    },
                ],
                workers: vec![a, b],
                latency: vec![h0, h1],
                tsc_hz: HZ,
                snapshot: Arc::new(snap),
                neighbours: neigh.entries(),
                generation: 7,
                last_change: ChangeStatus {
                    ok: false,
                    message: "bad \"file\"".into(),
                    at_unix: 1_700_000_000,
                },
                conn_capacity: 1 << 20,
                uptime_s: 12.5,
            },
        }
    }

    fn bump(c: &std::sync::atomic::AtomicU64, n: u64) {
        lbcore::counters::bump(c, n);
    }

    // --- tests ----------------------------------------------------------------

    #[test]
    fn text_is_well_formed_and_conventional() {
        let text = render(&lab().inputs);
        let p = parse(&text);
        assert!(p.samples.len() > 50, "{text}");
        for (name, ty) in &p.types {
            assert!(name.starts_with("lbd_"), "{name}");
            assert_eq!(ty == "counter", name.ends_with("_total"), "{name}: {ty}");
            assert!(p.help.contains_key(name), "{name} has no HELP");
            assert!(!name.contains("__"), "{name}");
        }
        // Every family has samples and every sample has a family.
        for name in p.types.keys() {
            assert!(
                p.samples.iter().any(|s| family_of(&p, &s.name) == name),
                "{name} has no samples"
            );
        }
    }

    #[test]
    fn counters_are_summed_over_workers() {
        let p = parse(&render(&lab().inputs));
        assert_eq!(p.get("lbd_rx_frames_total", &[]), 150.0);
        assert_eq!(
            p.get("lbd_packets_total", &[("outcome", "forwarded_dr")]),
            120.0
        );
        assert_eq!(
            p.get("lbd_packets_total", &[("outcome", "arp_replied")]),
            0.0
        );
        assert_eq!(p.get("lbd_drops_total", &[("reason", "no_service")]), 7.0);
        assert_eq!(
            p.get("lbd_drops_total", &[("reason", "ipv4_bad_checksum")]),
            2.0
        );
        assert_eq!(p.get("lbd_connections_created_total", &[]), 10.0);
        assert_eq!(p.get("lbd_tx_failed_total", &[]), 5.0);
        // Every drop reason is present from the start (0), so rate() works
        // the first time one happens.
        let drops = Counter::ALL.iter().filter(|c| c.is_drop()).count();
        assert_eq!(p.series("lbd_drops_total").len(), drops);
        // Every counter is exported exactly once.
        let exported = p
            .samples
            .iter()
            .filter(|s| {
                s.name == "lbd_drops_total"
                    || s.name == "lbd_packets_total"
                    || s.name == "lbd_events_total"
                    || [
                        "lbd_rx_frames_total",
                        "lbd_arp_learned_total",
                        "lbd_ndp_learned_total",
                        "lbd_connections_created_total",
                        "lbd_connections_expired_total",
                        "lbd_ipv4_options_total",
                        "lbd_tx_failed_total",
                        "lbd_kernel_frames_sent_total",
                    ]
                    .contains(&s.name.as_str())
            })
            .count();
        assert_eq!(exported, Counter::COUNT);
    }

    #[test]
    fn services_and_real_servers() {
        let p = parse(&render(&lab().inputs));
        let web = [("service", "tcp/198.18.0.100:80")];
        assert_eq!(p.get("lbd_service_connections_total", &web), 22.0);
        assert_eq!(p.get("lbd_service_packets_total", &web), 220.0);
        assert_eq!(p.get("lbd_service_bytes_total", &web), 22_000.0);
        assert_eq!(
            p.get(
                "lbd_service_connections_total",
                &[("service", "udp/198.18.0.100:53")]
            ),
            0.0
        );
        let rs1 = [
            ("service", "tcp/198.18.0.100:80"),
            ("real", "198.18.0.11:80"),
        ];
        let rs2 = [
            ("service", "tcp/198.18.0.100:80"),
            ("real", "198.18.0.12:80"),
        ];
        let dns = [
            ("service", "udp/198.18.0.100:53"),
            ("real", "198.18.0.11:53"),
        ];
        assert_eq!(p.get("lbd_real_server_connections_total", &rs1), 11.0);
        assert_eq!(p.get("lbd_real_server_packets_total", &rs1), 110.0);
        // NAT replies, per real server and per service (ipvsadm's Out).
        assert_eq!(p.get("lbd_real_server_packets_out_total", &rs1), 33.0);
        assert_eq!(p.get("lbd_real_server_bytes_out_total", &rs1), 3300.0);
        assert_eq!(p.get("lbd_service_packets_out_total", &web), 33.0);
        assert_eq!(p.get("lbd_service_bytes_out_total", &web), 3300.0);
        assert_eq!(p.get("lbd_real_server_bytes_total", &rs1), 11_000.0);
        assert_eq!(p.get("lbd_real_server_connections_total", &rs2), 11.0);
        assert_eq!(p.get("lbd_real_server_active_connections", &rs1), 3.0);
        assert_eq!(p.get("lbd_real_server_inactive_connections", &rs1), 4.0);
        // -1 on one worker, +3 on the other: 2, not 2^32 + 2.
        assert_eq!(p.get("lbd_real_server_active_connections", &rs2), 2.0);
        assert_eq!(p.get("lbd_real_server_weight", &rs1), 3.0);
        assert_eq!(p.get("lbd_real_server_weight", &rs2), 1.0);
        assert_eq!(p.get("lbd_real_server_weight", &dns), 1.0);
        assert_eq!(p.series("lbd_real_server_weight").len(), 3);
    }

    #[test]
    fn ports_workers_and_state() {
        let p = parse(&render(&lab().inputs));
        let rx = [("port", "lan0"), ("direction", "rx")];
        let tx = [("port", "lan0"), ("direction", "tx")];
        assert_eq!(p.get("lbd_port_packets_total", &rx), 1000.0);
        assert_eq!(p.get("lbd_port_packets_total", &tx), 900.0);
        assert_eq!(p.get("lbd_port_bytes_total", &rx), 64_000.0);
        assert_eq!(p.get("lbd_port_bytes_total", &tx), 57_600.0);
        assert_eq!(p.get("lbd_port_missed_total", &[("port", "lan0")]), 7.0);
        assert_eq!(p.get("lbd_port_errors_total", &rx), 1.0);
        assert_eq!(p.get("lbd_port_errors_total", &tx), 2.0);
        assert_eq!(p.get("lbd_port_nombuf_total", &[("port", "lan0")]), 3.0);
        assert_eq!(p.get("lbd_port_link_up", &[("port", "lan0")]), 1.0);
        assert_eq!(
            p.get("lbd_port_link_changes_total", &[("port", "lan0")]),
            2.0
        );
        assert_eq!(
            p.get(
                "lbd_port_xstats_total",
                &[("port", "lan0"), ("stat", "rx_q1_packets")]
            ),
            400.0
        );
        assert_eq!(p.series("lbd_port_xstats_total").len(), 2);
        let rs2 = [
            ("service", "tcp/198.18.0.100:80"),
            ("real", "198.18.0.12:80"),
        ];
        assert_eq!(p.get("lbd_real_server_up", &rs2), 0.0);
        // Both instances, each under its name (same vrid).
        let st = |i, s| [("vrrp_instance", i), ("vrid", "51"), ("state", s)];
        assert_eq!(p.get("lbd_vrrp_state", &st("vrrp", "BACKUP")), 1.0);
        assert_eq!(p.get("lbd_vrrp_state", &st("vrrp", "MASTER")), 0.0);
        assert_eq!(p.get("lbd_vrrp_state", &st("vrrp6", "MASTER")), 1.0);
        assert_eq!(p.get("lbd_vrrp_state", &st("vrrp6", "BACKUP")), 0.0);
        assert_eq!(p.series("lbd_vrrp_state").len(), 8);
        let flips = |i| [("vrrp_instance", i), ("vrid", "51")];
        assert_eq!(p.get("lbd_vrrp_transitions_total", &flips("vrrp")), 2.0);
        assert_eq!(p.get("lbd_vrrp_transitions_total", &flips("vrrp6")), 1.0);
        assert_eq!(
            p.get("lbd_bgp_vip_announced", &[("vip", "198.18.0.100")]),
            1.0
        );
        assert_eq!(p.get("lbd_bgp_drained", &[]), 0.0);
        assert_eq!(p.get("lbd_bgp_route_errors_total", &[]), 3.0);
        assert_eq!(p.get("lbd_bgp_speaker_reachable", &[]), 1.0);
        assert_eq!(
            p.get(
                "lbd_bgp_session_established",
                &[
                    ("session", "router"),
                    ("state", "up"),
                    ("info", "Established")
                ]
            ),
            1.0
        );
        assert_eq!(p.get("lbd_sync_records_total", &[("event", "sent")]), 12.0);
        assert_eq!(p.get("lbd_real_server_health_transitions_total", &rs2), 3.0);
        let k = |e| [("port", "lan0"), ("iface", "lbd-lan0"), ("event", e)];
        assert_eq!(p.get("lbd_kernel_path_frames_total", &k("delivered")), 5.0);
        assert_eq!(p.get("lbd_kernel_path_frames_total", &k("refused")), 1.0);
        assert_eq!(
            p.get("lbd_kernel_path_frames_total", &k("sent_by_kernel")),
            6.0
        );
        assert_eq!(
            p.get(
                "lbd_kernel_path_rate_limit_pps",
                &[("port", "lan0"), ("iface", "lbd-lan0")]
            ),
            20_000.0
        );
        // An unreadable port: no counters, but its link state is known.
        assert_eq!(p.series("lbd_port_packets_total").len(), 2);
        assert_eq!(p.get("lbd_port_link_up", &[("port", "wan0")]), 0.0);

        assert_eq!(p.get("lbd_connections", &[("worker", "0")]), 11.0);
        assert_eq!(p.get("lbd_connections", &[("worker", "1")]), 22.0);
        assert_eq!(p.get("lbd_flood_defence_active", &[("worker", "0")]), 0.0);
        assert_eq!(p.get("lbd_flood_defence_active", &[("worker", "1")]), 1.0);
        assert_eq!(
            p.get("lbd_connection_table_capacity", &[]),
            (1 << 20) as f64
        );
        assert_eq!(
            p.get(
                "lbd_worker_polls_total",
                &[("worker", "0"), ("result", "busy")]
            ),
            30.0
        );
        assert_eq!(
            p.get(
                "lbd_worker_polls_total",
                &[("worker", "0"), ("result", "idle")]
            ),
            70.0
        );
        assert_eq!(p.get("lbd_worker_busy_ratio", &[("worker", "0")]), 0.3);
        assert_eq!(p.get("lbd_worker_busy_ratio", &[("worker", "1")]), 0.0);
        assert_eq!(p.get("lbd_neighbours", &[("state", "resolved")]), 1.0);
        assert_eq!(p.get("lbd_neighbours", &[("state", "unresolved")]), 1.0);
        assert_eq!(p.get("lbd_config_generation", &[]), 7.0);
        assert_eq!(p.get("lbd_config_last_change_success", &[]), 0.0);
        assert_eq!(
            p.get("lbd_config_last_change_timestamp_seconds", &[]),
            1.7e9
        );
        assert_eq!(p.get("lbd_uptime_seconds", &[]), 12.5);
        assert_eq!(
            p.get("lbd_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
            1.0
        );
        assert_eq!(p.types["lbd_port_link_up"], "gauge");
        assert_eq!(p.types["lbd_connections"], "gauge");
    }

    #[test]
    fn latency_histogram() {
        let p = parse(&render(&lab().inputs));
        assert_eq!(p.types["lbd_burst_latency_seconds"], "histogram");
        for worker in ["0", "1"] {
            let buckets: Vec<&Sample> = p
                .series("lbd_burst_latency_seconds_bucket")
                .into_iter()
                .filter(|s| s.labels.contains(&("worker".into(), worker.into())))
                .collect();
            assert_eq!(buckets.len(), LATENCY_BUCKETS_SECONDS.len() + 1);
            // Cumulative, ending in +Inf == _count.
            let mut last = 0.0;
            let mut les = Vec::new();
            for b in &buckets {
                assert!(b.value >= last, "not cumulative: {buckets:?}");
                last = b.value;
                let le = &b.labels.iter().find(|l| l.0 == "le").unwrap().1;
                les.push(parse_value(le));
            }
            assert!(les.windows(2).all(|w| w[0] < w[1]), "{les:?}");
            assert_eq!(*les.last().unwrap(), f64::INFINITY);
            let count = p.get("lbd_burst_latency_seconds_count", &[("worker", worker)]);
            assert_eq!(last, count);
        }
        let w0 = |le: &str| {
            p.get(
                "lbd_burst_latency_seconds_bucket",
                &[("worker", "0"), ("le", le)],
            )
        };
        assert_eq!(w0("0.000001"), 0.0);
        assert_eq!(w0("0.000002"), 990.0);
        assert_eq!(w0("0.00002"), 990.0);
        assert_eq!(w0("0.00005"), 1000.0); // exactly on the bound: included
        assert_eq!(w0("0.1"), 1000.0);
        assert_eq!(w0("+Inf"), 1001.0);
        assert_eq!(
            p.get("lbd_burst_latency_seconds_count", &[("worker", "0")]),
            1001.0
        );
        let sum = p.get("lbd_burst_latency_seconds_sum", &[("worker", "0")]);
        let exact = 990.0 * 1.5e-6 + 10.0 * 50e-6 + 0.5;
        assert!((sum - exact).abs() / exact < 0.01, "{sum} vs {exact}");
        assert_eq!(
            p.get("lbd_burst_latency_seconds_count", &[("worker", "1")]),
            0.0
        );
        assert_eq!(
            p.get("lbd_burst_latency_seconds_sum", &[("worker", "1")]),
            0.0
        );
    }

    #[test]
    fn bucket_edges_with_real_tsc_rates() {
        // 2.5 GHz: 2500 cycles = 1 µs exactly; hdr's rounding must not push
        // a value on an edge into the next bucket by more than 1%.
        let mut h = crate::latency::new_histogram();
        h.record_n(2_400, 5).unwrap(); // 0.96 µs
        h.record_n(2_600, 7).unwrap(); // 1.04 µs
        let (cum, count, sum) = to_buckets(&h, 2_500_000_000, &LATENCY_BUCKETS_SECONDS);
        assert_eq!(count, 12);
        assert_eq!(cum[3], 5, "≤ 1 µs"); // bound index 3 = 1e-6
        assert_eq!(cum[4], 12, "≤ 2 µs");
        assert!((sum - (5.0 * 0.96e-6 + 7.0 * 1.04e-6)).abs() < 1e-7);
    }

    #[test]
    fn no_latency_without_tsc_rate() {
        let mut l = lab();
        l.inputs.tsc_hz = 0;
        let p = parse(&render(&l.inputs));
        assert!(!p.types.contains_key("lbd_burst_latency_seconds"));
    }

    #[test]
    fn empty_director() {
        // No services, no workers, no ports: still valid text.
        let neigh = NeighTable::new(4);
        let mut cfg = config();
        cfg.services.clear();
        let snap = Snapshot::build(
            &cfg,
            &[MacAddr([2, 0, 0, 0, 0, 2])],
            &mut IdRegistry::default(),
            &neigh,
            1,
        )
        .unwrap();
        let m = MetricInputs {
            sync: vec![],
            vrrp: vec![],
            announce: None,
            health: vec![],
            ports: vec![],
            kernel: vec![],
            workers: vec![],
            latency: vec![],
            tsc_hz: HZ,
            snapshot: Arc::new(snap),
            neighbours: vec![],
            generation: 1,
            last_change: ChangeStatus {
                ok: true,
                message: String::new(),
                at_unix: 0,
            },
            conn_capacity: 0,
            uptime_s: 0.0,
        };
        let p = parse(&render(&m));
        assert_eq!(p.get("lbd_config_last_change_success", &[]), 1.0);
        assert_eq!(p.get("lbd_drops_total", &[("reason", "no_service")]), 0.0);
        assert!(p.series("lbd_service_connections_total").is_empty());
    }

    /// Cross-check with the reference parser (Debian: python3-prometheus-client)
    /// when it is installed; skipped otherwise.
    #[test]
    fn reference_parser_agrees() {
        const SCRIPT: &str = r#"
import sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit(3)
families = list(text_string_to_metric_families(sys.stdin.read()))
print(len(families), sum(len(f.samples) for f in families))
"#;
        let text = render(&lab().inputs);
        let ours = parse(&text);
        // The first interpreter that has the module (a pyenv or venv python3
        // first on PATH may lack Debian's package).
        let mut out = None;
        for python in ["python3", "/usr/bin/python3"] {
            let Ok(mut child) = std::process::Command::new(python)
                .args(["-c", SCRIPT])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
            else {
                continue;
            };
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let o = child.wait_with_output().unwrap();
            if o.status.code() != Some(3) {
                out = Some(o);
                break;
            }
        }
        let Some(out) = out else {
            eprintln!(
                "skipped: no python3 with prometheus_client (Debian: python3-prometheus-client)"
            );
            return;
        };
        assert!(
            out.status.success(),
            "prometheus_client rejected the text: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reply = String::from_utf8(out.stdout).unwrap();
        let nums: Vec<usize> = reply
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(nums, [ours.types.len(), ours.samples.len()], "{reply}");
    }
}
