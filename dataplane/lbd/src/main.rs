//! `lbd`: the load-balancer director daemon.
//!
//! Start-up: read and validate the RON config, check what it asks of this
//! machine (CPUs, interfaces: `preflight.rs`), make sure no other lbd runs
//! with the same EAL file prefix and bind the control socket (so a second
//! lbd stops before EAL and never polls the first one's ports), start
//! DPDK's EAL, configure and start the ports (`device.rs`), compile the
//! config into a snapshot, launch one pinned poll-mode worker per (port, RX
//! queue), then run the control loop on the main lcore until
//! SIGINT/SIGTERM. Shutdown: stop the workers, stop and close the ports,
//! print the final counters (on stderr when stdout is closed).
//!
//! Where things are: the packet path is `lbcore::pipeline`, the connection
//! table `lbcore::conntrack`, the schedulers `lbcore::sched`; this crate only
//! wires them to DPDK (`worker.rs`), runs the control loop (`control/`), the
//! health checks (`health/`), VRRP (`vrrp/`) and the kernel path (`kernel/`).

mod announce;
mod clock;
mod control;
mod dataplane;
mod device;
mod eal_args;
mod health;
mod idle;
mod kernel;
mod latency;
mod metrics;
mod notify;
mod preflight;
mod report;
mod shared;
mod snapshot_cell;
mod sync;
mod vrrp;
mod worker;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use clap::Parser;
use crossbeam::queue::ArrayQueue;
use lbcore::config::{self, Config};
use lbcore::conntrack::shared::SharedConnTable;
use lbcore::conntrack::ConnTable;
use lbcore::counters::WorkerStats;
use lbcore::neigh::NeighTable;
use lbcore::pipeline::nat::NatState;
use lbcore::pipeline::{Registry, Snapshot, Worker, MAX_REAL_SERVERS, MAX_SERVICES};
use tracing::{error, info};

use crate::control::change::{unix_now, ChangeLog, ChangeStatus};
use crate::dataplane::{Dataplane, CTL_QUEUE_DEPTH, HANDOFF_QUEUE_DEPTH};
use crate::latency::LatencyCell;
use crate::shared::{PortHandle, Shared, WorkerHandle};
use crate::snapshot_cell::SnapshotCell;

/// lbd — a DPDK layer-4 load-balancer director (LVS/IPVS style).
///
/// Reads FILE (RON), takes over the DPDK ports it names, answers ARP and ping
/// for its VIPs and own addresses, and forwards connections to real servers
/// by direct routing, IPIP tunnel or NAT. It health-checks real servers
/// (with a fallback server), shares the VIPs with a peer director by VRRP
/// or announces them by BGP through BIRD (`bgp`: active-active directors
/// behind ECMP), and gives the host a kernel interface on each port that
/// asks for one.
/// lbctl changes it live over the control socket; SIGHUP re-reads FILE;
/// /metrics serves Prometheus. Stop it with SIGINT or SIGTERM (with `bgp`,
/// it first withdraws the VIPs and forwards `bgp.linger_ms` more); it
/// prints its final counters on the way out (on stderr if stdout is closed).
///
/// Exit status: 0 after a clean stop (or a passing --check), 1 when lbd
/// could not start, 2 when the configuration is invalid or asks for what
/// this machine does not have (CPUs, interfaces).
#[derive(Parser, Debug)]
#[command(
    name = "lbd",
    version,
    override_usage = "lbd [OPTIONS] --config <FILE>"
)]
struct Cli {
    /// The configuration file (RON). See configs/ for commented examples.
    #[arg(
        short,
        long,
        value_name = "FILE",
        required = false,
        required_unless_present = "generate"
    )]
    config: PathBuf,

    /// Replace the EAL arguments derived from the config's `eal` section and
    /// ports, e.g. "-l 0-1 --no-huge -m 512 --no-pci --vdev=net_null0".
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    eal_args: Option<String>,

    /// Validate the configuration, also against this machine (CPUs for the
    /// EAL cores, interfaces for the ports), print the EAL arguments, and
    /// exit: 0 if it is valid (even when nothing reads the output), 2 if not.
    #[arg(long)]
    check: bool,

    /// Stop by itself after this many seconds (for benchmarks and scripts).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,

    /// Print lbd's man page (man) or a shell completion script (bash, zsh,
    /// fish, elvish, powershell), made from these definitions, and exit.
    /// For packaging (packaging/build-deb); hidden from --help.
    #[arg(long, value_name = "WHAT", hide = true, exclusive = true)]
    generate: Option<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LBD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // --generate needs no --config: look at it before building a Cli.
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    if let Some(what) = matches.get_one::<String>("generate") {
        return generate(what);
    }
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let origin = cli.config.display().to_string();
    // Read once: the text also locates problems found against the machine.
    let text = match std::fs::read_to_string(&cli.config) {
        Ok(t) => t,
        Err(source) => {
            say_err(&config::ConfigError::Io {
                path: origin,
                source,
            });
            return ExitCode::from(2);
        }
    };
    let cfg = match config::parse_file_text(&text, &cli.config) {
        Ok(c) => c,
        Err(e) => {
            say_err(&e);
            return ExitCode::from(2);
        }
    };
    let eal_args = match &cli.eal_args {
        Some(s) => eal_args::from_override(s),
        None => eal_args::from_config(&cfg),
    };
    // What EAL would otherwise refuse with a page of usage text or a wrong
    // reason. An --eal-args override replaces the cores and devices, so the
    // configuration's are not checked then.
    if cli.eal_args.is_none() {
        let problems = preflight::machine_problems(&cfg, &text);
        if !problems.is_empty() {
            say_err(&config::ConfigError::Invalid { origin, problems });
            return ExitCode::from(2);
        }
    }
    if cli.check {
        let out = format!(
            "configuration OK: {origin}\nEAL arguments: {}\n",
            eal_args[1..].join(" ")
        );
        // `lbd --check FILE | true`: nobody reads the output, and the exit
        // status still says the configuration is fine. Other write errors
        // are worth a line on stderr, but do not change the answer either.
        if let Err(e) = write_stdout(&out) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                say_err(&format_args!("cannot write to stdout: {e}"));
            }
        }
        return ExitCode::SUCCESS;
    }
    match run(&cli, cfg, eal_args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            say_err(&e);
            ExitCode::from(1)
        }
    }
}

/// `lbd --generate WHAT`: the man page or a completion script on stdout.
fn generate(what: &str) -> ExitCode {
    use clap::CommandFactory as _;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let done = if what == "man" {
        // NAME is "lbd - ABOUT": the about line without its leading "lbd —".
        let cmd = cmd.about("a DPDK layer-4 load-balancer director (LVS/IPVS style)");
        clap_mangen::Man::new(cmd).section("8").render(&mut out)
    } else if let Ok(shell) = what.parse::<clap_complete::Shell>() {
        clap_complete::generate(shell, &mut cmd, "lbd", &mut out);
        Ok(())
    } else {
        say_err(&format_args!(
            "--generate: {what:?} is not man, bash, zsh, fish, elvish or powershell"
        ));
        return ExitCode::from(2);
    };
    match done.and_then(|()| write_stdout(&String::from_utf8_lossy(&out))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say_err(&format_args!("--generate {what}: {e}"));
            ExitCode::from(1)
        }
    }
}

/// `lbd: MESSAGE` on stderr. Unlike `eprintln!`, never panics: with stderr
/// gone there is nowhere left to say anything.
fn say_err(msg: &dyn std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "lbd: {msg}");
}

/// `text` to stdout, flushed. `println!` would panic on a closed stdout
/// (`lbd | head`): Rust ignores SIGPIPE, so the write fails with EPIPE.
fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// `text` to stdout or, when stdout cannot take it (closed, full disk), to
/// stderr after a line saying why: the final report's counters must reach
/// someone.
fn emit(text: &str) {
    if let Err(e) = write_stdout(text) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "lbd: cannot write to stdout ({e}); writing to stderr instead"
        );
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }
}

/// The control socket's file, removed if start-up fails after binding it;
/// once the server thread runs, it removes the file itself when it stops.
struct SocketFile(Option<PathBuf>);

impl SocketFile {
    /// The server owns the file from now on.
    fn hand_over(&mut self) {
        self.0 = None;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A start-up failure, with a message that says what to do.
#[derive(Debug)]
struct StartError(String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<device::DeviceError> for StartError {
    fn from(e: device::DeviceError) -> Self {
        StartError(e.to_string())
    }
}

impl From<dpdk::DpdkError> for StartError {
    fn from(e: dpdk::DpdkError) -> Self {
        StartError(e.to_string())
    }
}

fn run(cli: &Cli, cfg: Config, eal_args: Vec<String>) -> Result<(), StartError> {
    // Everything that can tell another lbd is running comes before EAL:
    // once EAL is up, this lbd's workers would poll (and send on) ports the
    // other one owns. DPDK itself would say only "rte_eal_init failed" for
    // a taken file prefix, so that is looked at first.
    if let Some(msg) = preflight::file_prefix_in_use(&eal_args, cli.eal_args.is_none()) {
        return Err(StartError(msg));
    }
    let group = match &cfg.control.group {
        Some(name) => Some(control::server::group_id(name).ok_or_else(|| {
            StartError(format!(
                "control.group: no group named `{name}` on this system"
            ))
        })?),
        None => None,
    };
    let socket_path = PathBuf::from(&cfg.control.socket);
    let listener = control::listen::bind(&socket_path, group).map_err(|e| match e {
        control::listen::BindError::Occupied {
            what: control::listen::Occupant::LiveSocket,
            ..
        } => StartError(format!(
            "control.socket: another lbd is already listening on {}; stop that lbd, or give \
             this one its own control.socket and eal.file_prefix",
            socket_path.display()
        )),
        // The other errors name the path and what is there.
        e => StartError(format!("control.socket: {e}")),
    })?;
    let mut socket_file = SocketFile(Some(socket_path.clone()));

    info!("EAL arguments: {}", eal_args[1..].join(" "));
    let eal = dpdk::Eal::init(&eal_args)
        .map_err(|e| StartError(format!("DPDK's EAL did not start: {e}")))?;
    let queues = cfg.workers.queues_per_port;
    let n_workers = cfg.ports.len() * queues as usize;
    let lcores = eal.worker_lcores();
    if lcores.len() < n_workers {
        return Err(StartError(format!(
            "{} ports x {} queues need {} worker lcores plus the main one, but EAL has {} worker lcores; \
             widen eal.cores (e.g. \"0-{}\")",
            cfg.ports.len(),
            queues,
            n_workers,
            lcores.len(),
            n_workers
        )));
    }
    // Ports, pools and the workers' lcores (device.rs).
    let dev = device::bring_up(&cfg, &lcores, cli.eal_args.is_none())?;
    let ports = dev.ports.clone();
    let port_macs = dev.macs.clone();
    let (rxqs, txqs) = (dev.rx, dev.tx);
    let pool = dev.main_pool.clone();

    // Kernel exception paths: one TAP per port that asks for it.
    let mut taps = Vec::new();
    for (i, pc) in cfg.ports.iter().enumerate() {
        if let Some(k) = &pc.kernel {
            taps.push(
                kernel::open(i, pc, k, port_macs[i], &dev.port_pools[i]).map_err(StartError)?,
            );
        }
    }

    let neigh = Arc::new(NeighTable::new(lbcore::pipeline::snapshot::MAX_NEIGHBOURS));
    let mut registry = Registry::default();
    let snap = Arc::new(
        Snapshot::build(&cfg, &port_macs, &mut registry, &neigh, 1)
            .map_err(|e| StartError(e.to_string()))?,
    );
    // Each worker's table holds an equal share of the configured capacity.
    let per_worker = (cfg.conn_table.capacity as usize).div_ceil(n_workers);
    let mut handles = Vec::new();
    let mut plans = Vec::new();
    let mut tx_by_worker: Vec<Vec<worker::TxPath>> = (0..n_workers).map(|_| Vec::new()).collect();
    for (p, port_tx) in txqs.into_iter().enumerate() {
        if port_tx.len() >= n_workers {
            for (w, q) in port_tx.into_iter().enumerate() {
                tx_by_worker[w].push(worker::TxPath::Own(q));
            }
        } else {
            tracing::warn!(
                "port {}: the device has {} TX queue(s) for {n_workers} workers; workers share them \
                 (a lock per TX burst). Real NICs have enough queues; this is for labs.",
                cfg.ports[p].name,
                port_tx.len()
            );
            let shared: Vec<_> = port_tx
                .into_iter()
                .map(|q| Arc::new(Mutex::new(q)))
                .collect();
            for (w, per_worker) in tx_by_worker.iter_mut().enumerate() {
                per_worker.push(worker::TxPath::Shared(shared[w % shared.len()].clone()));
            }
        }
    }
    let mut tx_iter = tx_by_worker.into_iter();
    for (p, port_rx) in rxqs.into_iter().enumerate() {
        for (q, rx) in port_rx.into_iter().enumerate() {
            let w = handles.len();
            handles.push(WorkerHandle {
                index: w as u16,
                port: p as u16,
                queue: q as u16,
                lcore: dev.worker_lcores[w],
                stats: Arc::new(WorkerStats::new(MAX_REAL_SERVERS, MAX_SERVICES)),
                latency: Arc::new(LatencyCell::new()),
                dump: Arc::new(control::conns::DumpSlot::default()),
            });
            plans.push((rx, tx_iter.next().expect("one TX set per worker")));
        }
    }
    let port_handles = cfg
        .ports
        .iter()
        .zip(&ports)
        .zip(&dev.info)
        .map(|((pc, port), info)| PortHandle {
            name: pc.name.clone(),
            device: pc.device.clone(),
            address: pc.address.to_string(),
            port: *port,
            dev: info.clone(),
        })
        .collect();
    // NAT: one table shared by all workers (two entries per connection),
    // and where each client's packets come from (for the replies).
    let nat_clients = Arc::new(lbcore::neigh::ClientMacs::new(1 << 16));
    let dataplane = Arc::new(Dataplane {
        stop: AtomicBool::new(false),
        snapshots: Arc::new(SnapshotCell::new(snap.clone())),
        neigh: neigh.clone(),
        clock: clock::Clock::new(eal.tsc_hz()),
        ctl_tx: (0..cfg.ports.len())
            .map(|_| ArrayQueue::new(CTL_QUEUE_DEPTH))
            .collect(),
        handoff: (0..n_workers)
            .map(|_| ArrayQueue::new(HANDOFF_QUEUE_DEPTH))
            .collect(),
        kernel: cfg
            .ports
            .iter()
            .map(|p| p.kernel.as_ref().map(kernel::path::KernelPath::new))
            .collect(),
        pool,
        nat_clients: nat_clients.clone(),
        nat: Arc::new(SharedConnTable::new(
            cfg.conn_table.nat_capacity as usize * 2,
            dpdk::tsc::now() ^ 0x4e41_5400,
        )),
        // NAT66 real servers are on a port's `address6` subnet: without
        // one (ports are not changed by a reload) the table stays tiny.
        nat6: Arc::new(SharedConnTable::new(
            if cfg.ports.iter().any(|p| p.address6.is_some()) {
                cfg.conn_table.nat_capacity as usize * 2
            } else {
                64
            },
            dpdk::tsc::now() ^ 0x4e41_5436,
        )),
        nat6_clients: Arc::new(lbcore::pipeline::ClientMacs6::new(
            if cfg.ports.iter().any(|p| p.address6.is_some()) {
                1 << 16
            } else {
                16
            },
        )),
        standby: AtomicBool::new(cfg.vrrp.is_some() || cfg.vrrp6.is_some()),
    });
    let shared = Arc::new(Shared {
        dataplane: dataplane.clone(),
        ports: port_handles,
        workers: handles,
        conn_capacity: (per_worker * n_workers) as u64,
        resigning: AtomicBool::new(false),
        resigned: AtomicBool::new(false),
        vrrp: Mutex::new(None),
        vrrp6: Mutex::new(None),
        sync_configured: cfg.sync.is_some(),
        sync_stats: Default::default(),
        health: Arc::new(Mutex::new({
            let mut b = health::HealthBook::default();
            b.sync(&cfg, std::time::Instant::now());
            b
        })),
        changes: Arc::new(ChangeLog::new(ChangeStatus {
            ok: true,
            message: format!("started with {}", cli.config.display()),
            at_unix: unix_now(),
        })),
        announce: Arc::new(announce::Announce::new(&cfg)),
    });
    // Connection sync: one record queue per worker, and the socket (bound
    // now, so that a failure stops lbd with a clear message).
    let sync_queues: Vec<lbcore::pipeline::sync::SyncQueue> = match &cfg.sync {
        Some(_) => (0..n_workers)
            .map(|_| Arc::new(ArrayQueue::new(sync::QUEUE_DEPTH)))
            .collect(),
        None => Vec::new(),
    };
    // IPv6 connections: their own queues, and a shared table where the
    // peer's records wait for adoption (the NAT table is IPv4's).
    let sync6 = sync::Sync6 {
        queues: match &cfg.sync {
            Some(_) => (0..n_workers)
                .map(|_| Arc::new(ArrayQueue::new(sync::QUEUE_DEPTH)))
                .collect(),
            None => Vec::new(),
        },
        synced: Arc::new(SharedConnTable::new(
            if cfg.sync.is_some() {
                cfg.conn_table.capacity as usize
            } else {
                64
            },
            dpdk::tsc::now() ^ 0x5359_4e36,
        )),
    };
    let sync_socket = match &cfg.sync {
        Some(sc) => {
            let local = cfg
                .ports
                .iter()
                .find(|p| p.address.contains(sc.peer))
                .map(|p| p.address.addr)
                .ok_or_else(|| StartError("sync.peer: not on any port's subnet".into()))?;
            Some(sync::bind(local, sc).map_err(StartError)?)
        }
        None => None,
    };
    let tx_checksums: Vec<_> = dev.info.iter().map(|i| i.tx_checksums).collect();
    for (w, (rx, tx)) in plans.into_iter().enumerate() {
        let h = &shared.workers[w];
        let seed = 0x5eed_0000_0000_0000 ^ dpdk::tsc::now().rotate_left(17) ^ w as u64;
        let mut pipeline = Worker::new(
            snap.clone(),
            ConnTable::new(per_worker, seed),
            h.stats.clone(),
            neigh.clone(),
        )
        .with_nat(NatState::new(
            dataplane.nat.clone(),
            nat_clients.clone(),
            w,
            n_workers,
        ))
        .with_nat6(lbcore::pipeline::Nat6State::new(
            dataplane.nat6.clone(),
            dataplane.nat6_clients.clone(),
            w,
            n_workers,
        ));
        pipeline.set_workers(n_workers);
        // What each port's NIC checksums on transmit (from the device plan).
        pipeline.set_tx_checksums(&tx_checksums);
        if let Some(q) = sync_queues.get(w) {
            pipeline = pipeline.with_sync(q.clone());
        }
        if let Some(q) = sync6.queues.get(w) {
            pipeline = pipeline.with_sync6(q.clone(), sync6.synced.clone());
        }
        let ctx = worker::WorkerCtx {
            index: w,
            port: h.port,
            queue: h.queue,
            rx,
            tx,
            worker: pipeline,
            latency: h.latency.clone(),
            dump: h.dump.clone(),
            dataplane: dataplane.clone(),
            burst: cfg.workers.burst as usize,
            idle: idle::IdleBackoff::new(cfg.workers.idle_sleep_us),
            kernel_budget: cfg
                .ports
                .iter()
                .map(|p| {
                    p.kernel
                        .as_ref()
                        .map(|k| kernel::path::KernelBudget::new(k.rate_pps, queues as usize))
                })
                .collect(),
        };
        info!(
            "worker {w}: port {} queue {} on lcore {}",
            cfg.ports[h.port as usize].name, h.queue, h.lcore
        );
        dpdk::lcore::launch(h.lcore, move || worker::run(ctx))?;
    }

    let link_thread = {
        let watched = shared
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.port, p.dev.clone()))
            .collect();
        let dataplane = dataplane.clone();
        device::watch_links(watched, move || dataplane.stopping())
            .map_err(|e| StartError(format!("cannot start the link watcher thread: {e}")))?
    };
    let health_thread = {
        let (book, dataplane) = (shared.health.clone(), dataplane.clone());
        std::thread::Builder::new()
            .name("lbd-health".into())
            .spawn(move || health::run(&book, &|| dataplane.stopping()))
            .map_err(|e| StartError(format!("cannot start the health-check thread: {e}")))?
    };
    // VRRP: the speaker's socket is opened now, so that a failure stops lbd
    // with a clear message.
    let mut vrrp_specs = Vec::new();
    for (name, six, v) in [("vrrp", false, &cfg.vrrp), ("vrrp6", true, &cfg.vrrp6)] {
        let Some(v) = v else { continue };
        let p = cfg
            .ports
            .iter()
            .position(|p| p.name == v.port)
            .ok_or_else(|| StartError(format!("{name}.port: no port {}", v.port)))?;
        let iface = cfg.ports[p]
            .kernel
            .as_ref()
            .map(|k| k.iface.clone())
            .ok_or_else(|| StartError(format!("{name}.port: the port has no kernel interface")))?;
        vrrp_specs.push(vrrp::InstanceSpec {
            cfg: v.clone(),
            six,
            port: p,
            iface,
            my_ip: cfg.ports[p].address.addr,
            mac: snap.ports[p].mac,
        });
    }
    let mut vrrp_threads = Vec::new();
    for (name, speaker) in vrrp::prepare(shared.clone(), vrrp_specs).map_err(StartError)? {
        vrrp_threads.push(
            std::thread::Builder::new()
                .name(format!("lbd-{name}"))
                .spawn(speaker)
                .map_err(|e| StartError(format!("cannot start the VRRP thread: {e}")))?,
        );
    }
    let sync_thread = match (&cfg.sync, sync_socket) {
        (Some(sc), Some(sock)) => {
            let (dataplane, stats, sc) = (dataplane.clone(), shared.sync_stats.clone(), sc.clone());
            Some(
                std::thread::Builder::new()
                    .name("lbd-sync".into())
                    .spawn(move || sync::run(dataplane, stats, sc, sock, sync_queues, sync6))
                    .map_err(|e| StartError(format!("cannot start the sync thread: {e}")))?,
            )
        }
        _ => None,
    };
    // BGP announcement: the routes for the speaker, and the speaker's view.
    let announce_threads = match &cfg.bgp {
        Some(b) => {
            let dev = cfg
                .ports
                .iter()
                .find(|p| p.name == b.port)
                .and_then(|p| p.kernel.as_ref())
                .map(|k| k.iface.clone())
                .ok_or_else(|| StartError("bgp.port: the port has no kernel interface".into()))?;
            let (s1, s2, b) = (shared.clone(), shared.clone(), b.clone());
            let routes = std::thread::Builder::new()
                .name("lbd-announce".into())
                .spawn(move || {
                    let dp = &s1.dataplane;
                    announce::run(
                        &s1.announce,
                        &b,
                        dev,
                        &|| dp.current(),
                        // VRRP backup: the peer forwards (standby is set
                        // until the first election with vrrp configured).
                        &|| !dp.standby.load(Ordering::Relaxed),
                        &|| dp.stopping(),
                    )
                })
                .map_err(|e| StartError(format!("cannot start the announce thread: {e}")))?;
            let speaker = std::thread::Builder::new()
                .name("lbd-birdc".into())
                .spawn(move || announce::poll_speaker(&s2.announce, &|| s2.dataplane.stopping()))
                .map_err(|e| StartError(format!("cannot start the birdc thread: {e}")))?;
            vec![routes, speaker]
        }
        None => Vec::new(),
    };
    let kernel_thread = if taps.is_empty() {
        None
    } else {
        let dataplane = dataplane.clone();
        Some(std::thread::spawn(move || kernel::run(dataplane, taps)))
    };

    // SIGINT/SIGTERM stop, SIGHUP reloads. (signal-hook rather than ctrlc:
    // ctrlc's SIGTERM support also turns SIGHUP into a stop.)
    let terminate = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, terminate.clone())
            .map_err(|e| StartError(format!("cannot install signal handler: {e}")))?;
    }
    if let Some(d) = cli.duration {
        let dataplane = dataplane.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs_f64(d));
            dataplane.stop.store(true, Ordering::Relaxed);
        });
    }
    // The control plane, on the socket bound before EAL started.
    let plane = Arc::new(Mutex::new(control::plane::ControlPlane::new(
        control::plane::PlaneDeps {
            snapshots: dataplane.snapshots.clone(),
            neigh: neigh.clone(),
            counters: control::deps::WorkerCounters(shared.worker_stats()),
            health: shared.health.clone(),
            store: Box::new(control::store::FileStore {
                path: cli.config.clone(),
            }),
            changes: shared.changes.clone(),
            director: Arc::new(control::live::LiveDirector(shared.clone())),
            announce: shared.announce.clone(),
        },
        cfg.clone(),
        registry,
        port_macs.clone(),
    )));
    let server = {
        let (plane, dataplane) = (plane.clone(), dataplane.clone());
        let path = socket_path.clone();
        std::thread::spawn(move || control::server::serve(listener, plane, dataplane, group, path))
    };
    socket_file.hand_over();
    let metrics_thread = match &cfg.metrics.listen {
        Some(addr) => Some(
            metrics::spawn(addr, shared.clone())
                .map_err(|e| StartError(format!("metrics endpoint {addr}: {e}")))?,
        ),
        None => None,
    };
    let sighup = Arc::new(AtomicBool::new(false));
    {
        // Propagate a termination signal to the workers and control loop.
        // With BGP, the VIPs are withdrawn first and the workers go on
        // forwarding `linger_ms` while the routers move the traffic. A
        // VRRP master then resigns (priority 0, so that the backup takes
        // over at once) while the workers can still send it out.
        let shared = shared.clone();
        let has_vrrp = cfg.vrrp.is_some() || cfg.vrrp6.is_some();
        std::thread::spawn(move || {
            while !shared.stopping() {
                if terminate.load(Ordering::Relaxed) {
                    // Read now: `linger_ms` may have changed by a reload.
                    let bgp = shared.announce.running().bgp.clone();
                    if let Some(b) = bgp {
                        info!(
                            "stopping: withdrawing the VIPs, then forwarding {} ms more",
                            b.linger_ms
                        );
                        let done = announce::withdraw_and_linger(&shared.announce, b.linger_ms);
                        info!("stopping: {done}");
                    }
                    if has_vrrp {
                        shared.resigning.store(true, Ordering::Relaxed);
                        for _ in 0..10 {
                            if shared.resigned.load(Ordering::Relaxed) {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(50));
                        }
                        // Let the kernel path and the workers carry it out.
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    shared.dataplane.stop.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, sighup.clone())
        .map_err(|e| StartError(format!("cannot install SIGHUP handler: {e}")))?;

    emit(&format!(
        "lbd: ready ({} ports, {} workers, {} services)\n",
        ports.len(),
        n_workers,
        snap.services.len()
    ));
    // systemd (Type=notify): ports are up and the workers run.
    let mut notifier = notify::Notifier::from_env();
    notifier.send("READY=1");

    control::periodic::run(&shared, &plane, &sighup);
    notifier.send("STOPPING=1");
    let _ = server.join();
    if let Some(h) = metrics_thread {
        let _ = h.join();
    }

    info!("stopping workers");
    dpdk::lcore::wait_all();
    if let Some(h) = kernel_thread {
        let _ = h.join();
    }
    let _ = health_thread.join();
    let _ = link_thread.join();
    for h in vrrp_threads {
        let _ = h.join();
    }
    if let Some(h) = sync_thread {
        let _ = h.join();
    }
    for h in announce_threads {
        let _ = h.join();
    }
    let stats = shared.worker_stats();
    let mut port_reports = Vec::new();
    for (port, pc) in ports.iter().zip(&cfg.ports) {
        port_reports.push(report::PortReport {
            name: pc.name.clone(),
            stats: port.stats().unwrap_or_default(),
        });
        let _ = port.stop();
        let _ = port.close();
    }
    emit(&report::render(
        &dataplane.current(),
        &port_reports,
        &stats,
        dataplane.clock.seconds(),
    ));
    Ok(())
}
