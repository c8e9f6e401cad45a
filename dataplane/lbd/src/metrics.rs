//! The Prometheus `/metrics` endpoint.
//!
//! A scrape builds a fresh `prometheus::Registry` from what the workers and
//! the control plane already keep — per-worker counters summed here, port
//! statistics read from the devices, the current snapshot, the neighbour
//! table, the workers' latency histograms — and renders it in the text
//! exposition format. Nothing is registered or updated on the packet path:
//! scrapes are rare (every few seconds) and pay the whole cost.
//!
//! [`render`] only gathers plain data from [`Shared`] into [`MetricInputs`];
//! [`render_parts`] turns that into text and is what the tests exercise
//! (a `Shared` needs DPDK ports and a mempool).
//!
//! The HTTP side ([`spawn`]) is a tiny_http server on its own thread: `GET
//! /metrics`, `GET /` (a pointer to `/metrics`), 404 for other paths, 405 for
//! other methods. It polls the stop flag between requests and exits once the
//! daemon is stopping.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use lbcore::config::Protocol;
use lbcore::counters::{Counter, WorkerStats};
use lbcore::neigh::NeighEntry;
use lbcore::pipeline::Snapshot;
use prometheus::core::{Collector, Desc};
use prometheus::proto;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};
use tracing::{info, warn};

use crate::shared::{ChangeStatus, Shared};

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the burst-latency histogram buckets: 1-2-5
/// steps from 100 ns (a burst of one frame) to 100 ms (a descheduled core);
/// longer bursts land in `+Inf`.
pub const LATENCY_BUCKETS_SECONDS: [f64; 19] = [
    1e-7, 2e-7, 5e-7, 1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2,
    2e-2, 5e-2, 1e-1,
];

/// How often the server thread looks at the stop flag while idle.
const STOP_POLL: Duration = Duration::from_millis(250);

/// One port's device readings; `None` when the device could not be read
/// (e.g. during shutdown), in which case its metrics are left out.
#[derive(Debug, Clone)]
pub struct PortSample {
    pub name: String,
    pub stats: Option<dpdk::PortStats>,
    pub link_up: Option<bool>,
}

/// Everything a scrape reports, as plain data.
pub struct MetricInputs {
    pub ports: Vec<PortSample>,
    /// Per worker, in worker-index order.
    pub workers: Vec<Arc<WorkerStats>>,
    /// Per worker (same order): cumulative burst latency in TSC cycles.
    pub latency: Vec<Histogram<u64>>,
    /// TSC frequency; 0 (unknown) leaves the latency histogram out.
    pub tsc_hz: u64,
    pub snapshot: Arc<Snapshot>,
    pub neighbours: Vec<NeighEntry>,
    pub generation: u64,
    pub last_change: ChangeStatus,
    pub conn_capacity: u64,
    pub uptime_s: f64,
}

/// Read everything a scrape needs from `shared`. Takes, one at a time and
/// briefly, the snapshot mutex, each worker's latency mutex (to clone the
/// histogram: a worker that finds it busy just publishes a burst later), the
/// last-change mutex and DPDK's port control lock.
pub fn gather(shared: &Shared) -> MetricInputs {
    let ports = shared
        .ports
        .iter()
        .map(|p| PortSample {
            name: p.name.clone(),
            stats: p.port.stats().ok(),
            link_up: p.port.link().ok().map(|l| l.up),
        })
        .collect();
    let latency = shared
        .workers
        .iter()
        .map(|w| w.latency.hist.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .collect();
    MetricInputs {
        ports,
        workers: shared.worker_stats(),
        latency,
        tsc_hz: dpdk::tsc::hz(),
        snapshot: shared.current(),
        neighbours: shared.neigh.entries(),
        generation: shared.generation.load(Relaxed),
        last_change: shared.last_change(),
        conn_capacity: shared.conn_capacity,
        uptime_s: shared.clock.seconds(),
    }
}

/// The current metrics in the Prometheus text format.
pub fn render(shared: &Shared) -> String {
    render_parts(&gather(shared))
}

/// Render `m` in the Prometheus text format. Cannot fail in practice (names
/// and labels are fixed); if it ever did, the text is a single comment
/// saying why, which Prometheus accepts as an empty scrape.
pub fn render_parts(m: &MetricInputs) -> String {
    try_render_parts(m).unwrap_or_else(|e| {
        warn!("metrics: cannot render: {e}");
        format!("# lbd: cannot render metrics: {e}\n")
    })
}

fn try_render_parts(m: &MetricInputs) -> prometheus::Result<String> {
    let reg = Registry::new();
    let b = Builder { reg: &reg };
    ports(&b, m)?;
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
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
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
    for p in &m.ports {
        let n = p.name.as_str();
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

/// Where a worker counter is exported.
struct Dest {
    name: &'static str,
    help: &'static str,
    /// (label name, label value), for families with one label.
    label: Option<(&'static str, &'static str)>,
}

const PACKETS_HELP: &str =
    "Frames the workers sent on: forwarded to a real server or answered (ARP, ICMP echo).";

/// Drops all go to `lbd_drops_total{reason}`. Frames that were forwarded or
/// answered share `lbd_packets_total{outcome}`, so that
/// `lbd_rx_frames_total` = sum(`lbd_packets_total`) + sum(`lbd_drops_total`)
/// + ARP frames consumed only to learn a MAC. The other counters are events
/// of other kinds (connections, ARP learning, TX failures) and get metrics of
/// their own, so that no sum over a metric's labels mixes kinds. A counter
/// added to lbcore later and not listed here still shows up, as
/// `lbd_events_total{event}`.
fn destination(c: Counter) -> Dest {
    let single = |name, help| Dest {
        name,
        help,
        label: None,
    };
    let packets = |outcome| Dest {
        name: "lbd_packets_total",
        help: PACKETS_HELP,
        label: Some(("outcome", outcome)),
    };
    if c.is_drop() {
        return Dest {
            name: "lbd_drops_total",
            help: "Frames the workers dropped, by reason (see lbcore::counters for each reason).",
            label: Some(("reason", c.name().strip_prefix("drop_").unwrap_or(c.name()))),
        };
    }
    match c {
        Counter::RxFrames => single("lbd_rx_frames_total", "Frames received by the workers."),
        Counter::FwdDr => packets("forwarded_dr"),
        Counter::ArpReplied => packets("arp_replied"),
        Counter::IcmpEchoReplied => packets("icmp_echo_replied"),
        Counter::ArpLearned => single(
            "lbd_arp_learned_total",
            "ARP packets from which a real server's MAC address was learned or confirmed.",
        ),
        Counter::ConnCreated => single(
            "lbd_connections_created_total",
            "Connections created (new flows scheduled to a real server).",
        ),
        Counter::ConnExpired => single(
            "lbd_connections_expired_total",
            "Connections removed from the tables (timed out or closed).",
        ),
        Counter::Ipv4WithOptions => single(
            "lbd_ipv4_options_total",
            "IPv4 packets carrying options (forwarded untouched).",
        ),
        Counter::TxFailed => single(
            "lbd_tx_failed_total",
            "Frames the NIC refused to transmit after retries (dropped).",
        ),
        _ => Dest {
            name: "lbd_events_total",
            help: "Other worker events without a dedicated metric, by counter name.",
            label: Some(("event", c.name())),
        },
    }
}

fn counters(b: &Builder, m: &MetricInputs) -> prometheus::Result<()> {
    let mut families: Vec<(&'static str, IntCounterVec)> = Vec::new();
    for &c in Counter::ALL {
        let v: u64 = m.workers.iter().map(|w| w.get(c)).sum();
        let d = destination(c);
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

fn service_label(proto: Protocol, vip: std::net::Ipv4Addr, port: u16) -> String {
    let p = match proto {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    format!("{p}/{vip}:{port}")
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
        "Bytes forwarded for the virtual service.",
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
        "Bytes forwarded to the real server.",
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
        let sl = service_label(svc.protocol, svc.vip, svc.port);
        let id = svc.id as usize;
        let sum = |f: fn(&lbcore::counters::ServiceStats) -> u64| {
            ws.iter().filter_map(|w| w.services.get(id)).map(f).sum::<u64>()
        };
        s_conns.with_label_values(&[&sl]).inc_by(sum(|s| s.conns.load(Relaxed)));
        s_packets.with_label_values(&[&sl]).inc_by(sum(|s| s.packets.load(Relaxed)));
        s_bytes.with_label_values(&[&sl]).inc_by(sum(|s| s.bytes.load(Relaxed)));
        for r in &svc.reals {
            let rl = format!("{}:{}", r.addr, r.port);
            let labels = [sl.as_str(), rl.as_str()];
            let rid = r.id as usize;
            let rs = || ws.iter().filter_map(|w| w.rs.get(rid));
            r_conns.with_label_values(&labels).inc_by(rs().map(|s| s.conns.load(Relaxed)).sum());
            r_packets.with_label_values(&labels).inc_by(rs().map(|s| s.packets.load(Relaxed)).sum());
            r_bytes.with_label_values(&labels).inc_by(rs().map(|s| s.bytes.load(Relaxed)).sum());
            // Read each worker's count as signed: should a decrement ever
            // land on another worker's counter (shared tables, planned for
            // NAT), that counter wraps below zero while the sum stays exact.
            let signed = |v: u32| v as i32 as i64;
            let active: i64 = rs().map(|s| signed(s.active())).sum();
            let inactive: i64 = rs().map(|s| signed(s.inactive())).sum();
            r_active.with_label_values(&labels).set(active.max(0) as f64);
            r_inactive.with_label_values(&labels).set(inactive.max(0) as f64);
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
    for (i, w) in m.workers.iter().enumerate() {
        let wl = i.to_string();
        let busy = w.busy_polls.load(Relaxed);
        let idle = w.idle_polls.load(Relaxed);
        conns.with_label_values(&[&wl]).set(w.conns_live.load(Relaxed) as f64);
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
    let mut l = proto::LabelPair::new();
    l.set_name(name.to_owned());
    l.set_value(value.to_owned());
    l
}

/// Fixed-bucket view of an hdr histogram of cycles: (cumulative count per
/// bound of `bounds_s`, total count, sum in seconds). Each hdr bucket counts
/// at its median value, which is within 1% of every value it holds.
fn to_buckets(h: &Histogram<u64>, tsc_hz: u64, bounds_s: &[f64]) -> (Vec<u64>, u64, f64) {
    let hz = tsc_hz as f64;
    let mut per_bucket = vec![0u64; bounds_s.len()];
    let mut count = 0u64;
    let mut sum = 0.0;
    for v in h.iter_recorded() {
        let n = v.count_at_value();
        let s = h.median_equivalent(v.value_iterated_to()) as f64 / hz;
        count += n;
        sum += s * n as f64;
        if let Some(i) = bounds_s.iter().position(|&b| s <= b) {
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
                let mut b = proto::Bucket::new();
                b.set_upper_bound(le);
                b.set_cumulative_count(n);
                b
            })
            .collect();
        let mut hist = proto::Histogram::new();
        hist.set_bucket(buckets);
        hist.set_sample_count(count);
        hist.set_sample_sum(sum);
        let mut metric = proto::Metric::from_label(vec![label("worker", &i.to_string())]);
        metric.set_histogram(hist);
        metrics.push(metric);
    }
    let mut family = proto::MetricFamily::new();
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
        b.gauge(name, help, &[])?.with_label_values(&[]).set(v);
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
    neigh.with_label_values(&["unresolved"]).set(unresolved as f64);
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

// ---------------------------------------------------------------------------
// HTTP

/// What a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Metrics,
    Index,
    NotFound,
    MethodNotAllowed,
}

fn route(method: &tiny_http::Method, url: &str) -> Route {
    use tiny_http::Method;
    let path = url.split(['?', '#']).next().unwrap_or("");
    if !matches!(method, Method::Get | Method::Head) {
        return Route::MethodNotAllowed;
    }
    match path {
        "/metrics" => Route::Metrics,
        "/" => Route::Index,
        _ => Route::NotFound,
    }
}

const INDEX_HTML: &str = "<!DOCTYPE html>\n<html><head><title>lbd</title></head><body>\n\
<h1>lbd</h1>\n<p>Load-balancer director. Prometheus metrics: <a href=\"/metrics\">/metrics</a></p>\n\
</body></html>\n";

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("constant header names and values are valid")
}

fn respond(req: tiny_http::Request, render: &dyn Fn() -> String) {
    let r = route(req.method(), req.url());
    let (status, ctype, body) = match r {
        Route::Metrics => (200, CONTENT_TYPE, render()),
        Route::Index => (200, "text/html; charset=utf-8", INDEX_HTML.to_owned()),
        Route::NotFound => (404, "text/plain; charset=utf-8", "not found; try /metrics\n".to_owned()),
        Route::MethodNotAllowed => (
            405,
            "text/plain; charset=utf-8",
            "method not allowed; use GET\n".to_owned(),
        ),
    };
    let mut resp = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", ctype));
    if r == Route::MethodNotAllowed {
        resp = resp.with_header(header("Allow", "GET, HEAD"));
    }
    // A client that went away is not our problem.
    let _ = req.respond(resp);
}

/// Serve requests until `stopping()` says so (checked at least every
/// [`STOP_POLL`]).
fn serve(server: tiny_http::Server, stopping: &dyn Fn() -> bool, render: &dyn Fn() -> String) {
    while !stopping() {
        match server.recv_timeout(STOP_POLL) {
            Ok(Some(req)) => respond(req, render),
            Ok(None) => {}
            Err(e) => {
                warn!("metrics: accept failed: {e}");
                std::thread::sleep(STOP_POLL);
            }
        }
    }
}

fn bind(listen: &str) -> std::io::Result<tiny_http::Server> {
    tiny_http::Server::http(listen)
        .map_err(|e| std::io::Error::other(format!("metrics endpoint on {listen}: {e}")))
}

/// Serve `/metrics` on `listen` (e.g. `"127.0.0.1:9300"`) from a thread of
/// its own until `shared.stopping()`. Binding happens before this returns,
/// so an address in use is reported to the caller.
pub fn spawn(listen: &str, shared: Arc<Shared>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let server = bind(listen)?;
    let shown = server
        .server_addr()
        .to_ip()
        .map(|a| a.to_string())
        .unwrap_or_else(|| listen.to_owned());
    let handle = std::thread::Builder::new()
        .name("lbd-metrics".to_owned())
        .spawn(move || {
            serve(server, &|| shared.stopping(), &|| render(&shared));
        })?;
    info!("metrics: serving http://{shown}/metrics");
    Ok(handle)
}

