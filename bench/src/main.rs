//! `bench`: the pipeline benchmark (see README.md).
//!
//! ```text
//! bench pipeline --workload established --flows 1000000 --packets 20000000
//! bench pipeline --workload established --forward nat --flows 1000 --packets 100000
//! bench all [--repeat 3] [--json]
//! bench scale --workload established --flows 1000000 --threads 1,2
//! bench io --duts testpmd-io,lbd --flows 10000 --repeat 3
//! bench io --duts testpmd-io,lbd --memory huge,no-huge --repeat 5
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
#[global_allocator]
static ALLOC: lbbench::thp::Alloc = lbbench::thp::Alloc;

use lbbench::stat::Stat;
use lbbench::{mem_available, memory_estimate, run, Forward, Params, Report, Workload};

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Benchmarks of the lbd packet path (pipeline, all, fill, scale: no I/O) and of lbd \
             over DPDK ports against dpdk-testpmd (io)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Frames per burst (lbd's rx burst).
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// Stop timing after this many seconds even if packets remain.
    #[arg(long)]
    seconds: Option<f64>,
    /// Machine-readable output (one JSON object per run).
    #[arg(long)]
    json: bool,
    /// Mixed workload: percentage of packets that are new SYNs.
    #[arg(long, default_value_t = 10)]
    syn_percent: u32,
    /// Process frame by frame through the full classifier
    /// (`Worker::process`) instead of the burst pipeline lbd runs.
    #[arg(long)]
    one_frame: bool,
    /// With --one-frame: prefetch each frame's table bucket at the start of
    /// its burst first (the burst pipeline always does).
    #[arg(long, requires = "one_frame")]
    prefetch: bool,
    /// Experiment: back the table and trace with transparent huge pages
    /// (madvise); lbd does not today.
    #[arg(long)]
    hugepages: bool,
    /// Real servers behind the service (wlc; a new flow costs O(log n) in them).
    #[arg(long, default_value_t = 100)]
    real_servers: usize,
    /// Seed of the trace shuffle and the table hash.
    #[arg(long, default_value_t = 0x1bd_5eed)]
    seed: u64,
    /// Runs of each measurement; the median is reported with the spread.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// IPv6: clients, VIP and real servers over IPv6 (DR; established or
    /// new).
    #[arg(long)]
    ipv6: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// One measurement.
    Pipeline {
        #[arg(long, value_enum, default_value = "established")]
        workload: Workload,
        /// How the real servers are reached: dr, tunnel (IPIP), nat (the
        /// clients' requests timed) or nat-reply (the real servers'
        /// replies timed; established only).
        #[arg(long, value_enum, default_value = "dr")]
        forward: Forward,
        /// Established/mixed: live connections; new: SYNs to send.
        #[arg(long, default_value_t = 1_000_000)]
        flows: u64,
        /// Packets to time (established, mixed).
        #[arg(long, default_value_t = 20_000_000)]
        packets: u64,
        #[command(flatten)]
        common: Common,
    },
    /// How full a table gets before it refuses a new flow (diagnostic).
    Fill {
        #[arg(long, default_value_t = 1_000_000)]
        capacity: usize,
        /// SYNs to send (default: the capacity).
        #[arg(long)]
        attempts: Option<u64>,
        #[arg(long, default_value_t = 0x1bd_5eed)]
        seed: u64,
    },
    /// N workers on N pinned threads at once, each with its own table and
    /// share of the flows; aggregate Mpps over one wall-clock window.
    Scale {
        #[arg(long, value_enum, default_value = "established")]
        workload: Workload,
        /// Flows over all threads (established: live connections; new:
        /// SYNs), split evenly as RSS would.
        #[arg(long, default_value_t = 1_000_000)]
        flows: u64,
        /// Thread counts to measure, in turn (e.g. `1,2` or `1,2,4,8`).
        #[arg(long, default_value = "1,2")]
        threads: String,
        /// CPUs to pin to (e.g. `1-8` or `2,4,6`); N threads use the first
        /// N. Default: the allowed CPUs, without CPU 0 if there are more
        /// than N.
        #[arg(long)]
        cpus: Option<String>,
        /// Do not pin the threads.
        #[arg(long)]
        no_pin: bool,
        /// Cap on packets per thread (default: until --seconds).
        #[arg(long)]
        packets: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// DPDK I/O: our generator ↔ memif ↔ lbd or dpdk-testpmd (child
    /// processes), received Mpps per forwarding core and lbd/testpmd.
    /// Needs root, DPDK 22.11 and the lbd binary.
    #[cfg(target_os = "linux")]
    Io(lbbench::io::IoArgs),
    /// The standard set, as a markdown table (or JSON lines with --json).
    All {
        /// Packets per established/mixed run (default 20M / 10M).
        #[arg(long)]
        packets: Option<u64>,
        /// New connections per `new` run.
        #[arg(long, default_value_t = 5_000_000)]
        new_flows: u64,
        #[command(flatten)]
        common: Common,
    },
}

fn params(workload: Workload, flows: u64, packets: u64, c: &Common) -> Params {
    let mut p = Params::new(workload, flows, packets);
    p.burst = c.burst;
    p.seconds = c.seconds;
    p.syn_percent = c.syn_percent;
    p.one_frame = c.one_frame;
    p.ipv6 = c.ipv6;
    p.prefetch = c.prefetch;
    p.hugepages = c.hugepages;
    p.real_servers = c.real_servers;
    p.seed = c.seed;
    p
}

#[derive(serde::Serialize)]
struct Summary {
    params: Params,
    runs: Vec<Report>,
    ns_per_packet: Stat,
    mpps: Stat,
    new_conns_per_sec: Stat,
    burst_p50_ns: Stat,
    burst_p99_ns: Stat,
    burst_p999_ns: Stat,
    bytes_per_conn: f64,
}

fn measure(p: &Params, repeat: usize, json: bool) -> Result<Summary, String> {
    let mut runs = Vec::new();
    for i in 0..repeat.max(1) {
        let r = run(p)?;
        if !json {
            eprintln!(
                "  run {}/{}: {:?} flows={} packets={} {:.2} ns/pkt {:.2} Mpps p99.9 {:.0} ns",
                i + 1,
                repeat.max(1),
                r.workload,
                r.flows,
                r.packets,
                r.ns_per_packet,
                r.mpps,
                r.burst_p999_ns
            );
        }
        runs.push(r);
    }
    let st = |f: fn(&Report) -> f64| Stat::of(runs.iter().map(f));
    Ok(Summary {
        params: p.clone(),
        ns_per_packet: st(|r| r.ns_per_packet),
        mpps: st(|r| r.mpps),
        new_conns_per_sec: st(|r| r.new_conns_per_sec),
        burst_p50_ns: st(|r| r.burst_p50_ns),
        burst_p99_ns: st(|r| r.burst_p99_ns),
        burst_p999_ns: st(|r| r.burst_p999_ns),
        bytes_per_conn: runs[0].bytes_per_conn,
        runs,
    })
}

fn header() {
    println!("| workload | flows | packets | ns/packet | Mpps | new conns/s (M) | burst p50 µs | burst p99 µs | burst p99.9 µs | bytes/conn |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

fn row(s: &Summary) {
    let p = &s.params;
    let r = &s.runs[0];
    let mut name = format!("{:?}", p.workload).to_lowercase();
    if p.workload == Workload::Mixed {
        name.push_str(&format!(" ({}% SYN)", p.syn_percent));
    }
    if p.forward != Forward::Dr {
        let f = serde_json::to_value(p.forward).expect("serialises");
        name.push_str(&format!(" {}", f.as_str().unwrap_or("?")));
    }
    if p.ipv6 {
        name.push_str(" ipv6");
    }
    if p.one_frame {
        name.push_str(" +one-frame");
    }
    if p.prefetch {
        name.push_str(" +prefetch");
    }
    if p.hugepages {
        name.push_str(" +hugepages");
    }
    if p.real_servers != lbbench::REAL_SERVERS {
        name.push_str(&format!(" ({} RS)", p.real_servers));
    }
    let newc = if r.conns_created > 0 {
        s.new_conns_per_sec.show(1e-6, 2)
    } else {
        "–".into()
    };
    println!(
        "| {name} | {} | {} | {} | {} | {newc} | {} | {} | {} | {:.1} |",
        human(p.flows),
        human(r.packets),
        s.ns_per_packet.show(1.0, 1),
        s.mpps.show(1.0, 2),
        s.burst_p50_ns.show(1e-3, 2),
        s.burst_p99_ns.show(1e-3, 2),
        s.burst_p999_ns.show(1e-3, 2),
        s.bytes_per_conn,
    );
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}K", n / 1_000),
        n => n.to_string(),
    }
}

fn output(s: &Summary, json: bool) {
    if json {
        println!("{}", serde_json::to_string(s).expect("summary serialises"));
    } else {
        row(s);
    }
}

#[derive(serde::Serialize)]
struct ScaleSummary {
    threads: usize,
    cpus: Vec<Option<usize>>,
    params: Params,
    seconds: f64,
    aggregate_mpps: Stat,
    aggregate_new_conns_per_sec: Stat,
    /// Per thread: median (min–max) of its timed ns/packet over the runs.
    per_thread_ns_per_packet: Vec<Stat>,
    /// Aggregate median ÷ the 1-thread aggregate median (if measured).
    scaling: Option<f64>,
    runs: Vec<lbbench::scale::ScaleReport>,
}

#[allow(clippy::too_many_arguments)]
fn scale_cmd(
    workload: Workload,
    flows: u64,
    threads: &str,
    cpus: Option<&str>,
    no_pin: bool,
    packets: Option<u64>,
    c: &Common,
) -> Result<(), String> {
    let counts: Vec<usize> = threads
        .split(',')
        .map(|t| t.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad --threads {threads:?}"))?;
    if counts.contains(&0) {
        return Err("thread counts must be > 0".into());
    }
    let list = cpus.map(lbbench::scale::parse_cpus).transpose()?;
    let seconds = c.seconds.unwrap_or(5.0);
    let p = params(workload, flows, packets.unwrap_or(u64::MAX), c);
    if !c.json {
        println!("| threads | CPUs | workload | flows | window s | aggregate Mpps | scaling | per-thread ns/packet | new conns/s (M) |");
        println!("|---:|---|---|---:|---:|---:|---:|---|---:|");
    }
    let mut one: Option<f64> = None;
    for &n in &counts {
        let pins: Vec<Option<usize>> = if no_pin {
            vec![None; n]
        } else {
            let v = match &list {
                Some(l) if l.len() >= n => l[..n].to_vec(),
                Some(l) => return Err(format!("{n} threads but --cpus lists {}", l.len())),
                None => lbbench::scale::default_cpus(n)?,
            };
            v.into_iter().map(Some).collect()
        };
        let mut runs = Vec::new();
        for i in 0..c.repeat.max(1) {
            let r = lbbench::scale::scale(&p, &pins, seconds)?;
            if !c.json {
                let per: Vec<String> = r
                    .per_thread
                    .iter()
                    .map(|t| format!("{:.1}", t.ns_per_packet))
                    .collect();
                eprintln!(
                    "  run {}/{}: {n} threads {:?} flows={} window {:.2} s packets={} {:.2} Mpps; ns/pkt per thread {}",
                    i + 1,
                    c.repeat.max(1),
                    workload,
                    flows,
                    r.window_seconds,
                    r.packets,
                    r.aggregate_mpps,
                    per.join(", ")
                );
            }
            runs.push(r);
        }
        let agg = Stat::of(runs.iter().map(|r| r.aggregate_mpps));
        let conns = Stat::of(runs.iter().map(|r| r.aggregate_new_conns_per_sec));
        let per: Vec<Stat> = (0..n)
            .map(|k| Stat::of(runs.iter().map(|r| r.per_thread[k].ns_per_packet)))
            .collect();
        if n == 1 {
            one = Some(agg.median);
        }
        let scaling = one.map(|o| agg.median / o);
        let window = Stat::of(runs.iter().map(|r| r.window_seconds));
        let sum = ScaleSummary {
            threads: n,
            cpus: pins.clone(),
            params: p.clone(),
            seconds,
            aggregate_mpps: agg,
            aggregate_new_conns_per_sec: conns,
            per_thread_ns_per_packet: per,
            scaling,
            runs,
        };
        if c.json {
            println!(
                "{}",
                serde_json::to_string(&sum).expect("summary serialises")
            );
        } else {
            let cpus: Vec<String> = pins
                .iter()
                .map(|c| c.map_or("-".into(), |c| c.to_string()))
                .collect();
            let mut name = format!("{workload:?}").to_lowercase();
            if c.one_frame {
                name.push_str(" +one-frame");
            }
            if c.prefetch {
                name.push_str(" +prefetch");
            }
            if c.hugepages {
                name.push_str(" +hugepages");
            }
            let per: Vec<String> = sum
                .per_thread_ns_per_packet
                .iter()
                .map(|s| s.show(1.0, 1))
                .collect();
            let newc = if workload == Workload::New {
                conns.show(1e-6, 2)
            } else {
                "–".into()
            };
            println!(
                "| {n} | {} | {name} | {} | {:.2} | {} | {} | {} | {newc} |",
                cpus.join(","),
                human(flows),
                window.median,
                agg.show(1.0, 2),
                scaling.map_or("–".into(), |s| format!("{s:.2}×")),
                per.join("; "),
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Pipeline {
            workload,
            forward,
            flows,
            packets,
            common,
        } => {
            let mut p = params(workload, flows, packets, &common);
            p.forward = forward;
            measure(&p, common.repeat, common.json).map(|s| {
                if !common.json {
                    header();
                }
                output(&s, common.json);
                if !common.json {
                    let r = &s.runs[0];
                    println!();
                    println!(
                        "table: capacity {} ({} live), {} MiB, {:.1} bytes/conn; wall {:.1} ns/packet; TSC {:.3} GHz",
                        r.table_capacity,
                        r.table_len,
                        r.table_bytes >> 20,
                        r.bytes_per_conn,
                        r.wall_ns_per_packet,
                        r.tsc_ticks_per_ns
                    );
                }
            })
        }
        Cmd::Scale {
            workload,
            flows,
            threads,
            cpus,
            no_pin,
            packets,
            common,
        } => scale_cmd(
            workload,
            flows,
            &threads,
            cpus.as_deref(),
            no_pin,
            packets,
            &common,
        ),
        #[cfg(target_os = "linux")]
        Cmd::Io(args) => lbbench::io::run(&args),
        Cmd::Fill {
            capacity,
            attempts,
            seed,
        } => {
            let f = lbbench::fill(capacity, attempts.unwrap_or(capacity as u64), seed);
            println!("{}", serde_json::to_string(&f).expect("serialises"));
            Ok(())
        }
        Cmd::All {
            packets,
            new_flows,
            common,
        } => {
            let est = packets.unwrap_or(20_000_000);
            let mix = packets.unwrap_or(10_000_000);
            let set = [
                params(Workload::Established, 1_000, est, &common),
                params(Workload::Established, 1_000_000, est, &common),
                params(Workload::Established, 10_000_000, est, &common),
                params(Workload::New, new_flows, new_flows, &common),
                params(Workload::Mixed, 1_000_000, mix, &common),
            ];
            if !common.json {
                header();
            }
            let avail = mem_available();
            let mut res = Ok(());
            for p in &set {
                let need = memory_estimate(p);
                if avail.is_some_and(|a| need > a / 10 * 9) {
                    eprintln!(
                        "skipping {:?} with {} flows: needs ~{} MiB, {} MiB available",
                        p.workload,
                        p.flows,
                        need >> 20,
                        avail.unwrap_or(0) >> 20
                    );
                    continue;
                }
                match measure(p, common.repeat, common.json) {
                    Ok(s) => output(&s, common.json),
                    Err(e) => {
                        res = Err(e);
                        break;
                    }
                }
            }
            res
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
