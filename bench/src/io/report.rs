//! What `bench io` reports: every run, the median and spread per DUT, and
//! lbd's rate as a ratio of testpmd's, as a markdown table or one JSON
//! object.
//!
//! The ratio is taken per repeat (lbd's run against the testpmd run of the
//! same repeat, back to back on the same CPUs), then its median and spread
//! over the repeats: pairing cancels some of the slow drift of a shared
//! machine. The ratio of the best runs is given too: other work on the
//! machine only ever slows a run down, so each DUT's fastest run is its
//! least disturbed one.

use std::fmt::Write as _;

use serde::Serialize;

use super::cmdline::Layout;
use super::dut::{DutKind, DutReport};
use super::gen::{Measured, Warmed};
use super::IoArgs;
use crate::stat::Stat;

/// Forwarding CPUs of every DUT here: one lcore polls the one queue, or
/// with `--queues N` the N forwarding lcores share that one CPU.
pub const FORWARDING_CORES: u32 = 1;

/// One DUT run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub dut: DutKind,
    pub repeat: usize,
    /// Frames received in the window ÷ the window ÷ forwarding cores.
    pub mpps_per_core: f64,
    /// Frames the port accepted ÷ the window.
    pub mpps_sent: f64,
    /// Lost ÷ sent, %.
    pub loss_percent: f64,
    /// Share of the window the generator waited on a full memif ring, %:
    /// near 100 means the DUT was the bottleneck; well below 100 at full
    /// speed means the generator (or a stall of it) limited the rate too.
    pub ring_full_percent: f64,
    pub warmup: Warmed,
    pub measured: Measured,
    pub arp_replies: u64,
    pub other_frames: u64,
    pub dut_report: DutReport,
}

impl RunResult {
    pub fn new(
        dut: DutKind,
        repeat: usize,
        warmup: Warmed,
        measured: Measured,
        arp_replies: u64,
        other_frames: u64,
        dut_report: DutReport,
    ) -> RunResult {
        let m = &measured;
        let secs = m.seconds.max(1e-9);
        RunResult {
            dut,
            repeat,
            mpps_per_core: m.received as f64 / secs / 1e6 / f64::from(FORWARDING_CORES),
            mpps_sent: m.sent as f64 / secs / 1e6,
            loss_percent: if m.sent > 0 {
                m.lost as f64 * 100.0 / m.sent as f64
            } else {
                0.0
            },
            ring_full_percent: (m.ring_full_seconds * 100.0 / secs).min(100.0),
            warmup,
            measured,
            arp_replies,
            other_frames,
            dut_report,
        }
    }
}

/// Median and spread of one DUT's runs.
#[derive(Debug, Clone, Serialize)]
pub struct DutSummary {
    pub dut: DutKind,
    pub runs: usize,
    pub mpps_per_core: Stat,
    pub loss_percent: Stat,
    pub ring_full_percent: Stat,
    pub rtt_p50_ns: Stat,
    pub rtt_p99_ns: Stat,
    pub rtt_p999_ns: Stat,
    /// testpmd only: its own CPU cycles per packet.
    pub cycles_per_packet: Option<Stat>,
}

/// lbd ÷ a testpmd mode.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub dut: DutKind,
    pub against: DutKind,
    /// Per repeat, then median (min–max).
    pub ratio: Stat,
    pub per_repeat: Vec<f64>,
    /// lbd's best run ÷ the testpmd mode's best run: on a shared machine
    /// the fastest run of each is the least disturbed one.
    pub ratio_of_best: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IoReport {
    pub params: IoArgs,
    pub gen_cpu: usize,
    pub dut_cpu: usize,
    /// Queues of the link; the DUT's forwarding lcores (all on `dut_cpu`).
    pub queues: u16,
    pub forwarding_cores: u32,
    pub tsc_hz: u64,
    pub capacity: u64,
    pub summary: Vec<DutSummary>,
    pub ratios: Vec<Ratio>,
    pub runs: Vec<RunResult>,
}

impl IoReport {
    pub fn new(params: IoArgs, layout: &Layout, tsc_hz: u64, runs: Vec<RunResult>) -> IoReport {
        let mut kinds: Vec<DutKind> = Vec::new();
        for r in &runs {
            if !kinds.contains(&r.dut) {
                kinds.push(r.dut);
            }
        }
        let summary = kinds
            .iter()
            .map(|&k| {
                let rs: Vec<&RunResult> = runs.iter().filter(|r| r.dut == k).collect();
                let st = |f: &dyn Fn(&RunResult) -> f64| Stat::of(rs.iter().map(|r| f(r)));
                DutSummary {
                    dut: k,
                    runs: rs.len(),
                    mpps_per_core: st(&|r| r.mpps_per_core),
                    loss_percent: st(&|r| r.loss_percent),
                    ring_full_percent: st(&|r| r.ring_full_percent),
                    rtt_p50_ns: st(&|r| r.measured.rtt_p50_ns),
                    rtt_p99_ns: st(&|r| r.measured.rtt_p99_ns),
                    rtt_p999_ns: st(&|r| r.measured.rtt_p999_ns),
                    cycles_per_packet: {
                        let v: Vec<f64> = rs
                            .iter()
                            .filter_map(|r| r.dut_report.cycles_per_packet)
                            .collect();
                        (!v.is_empty()).then(|| Stat::of(v.into_iter()))
                    },
                }
            })
            .collect();
        let mut ratios = Vec::new();
        if kinds.contains(&DutKind::Lbd) {
            for &base in kinds.iter().filter(|k| k.is_testpmd()) {
                let per_repeat: Vec<f64> = runs
                    .iter()
                    .filter(|r| r.dut == DutKind::Lbd)
                    .filter_map(|l| {
                        let b = runs
                            .iter()
                            .find(|r| r.dut == base && r.repeat == l.repeat)?;
                        (b.mpps_per_core > 0.0).then(|| l.mpps_per_core / b.mpps_per_core)
                    })
                    .collect();
                let best = |k: DutKind| {
                    runs.iter()
                        .filter(|r| r.dut == k)
                        .map(|r| r.mpps_per_core)
                        .fold(0.0, f64::max)
                };
                if !per_repeat.is_empty() {
                    ratios.push(Ratio {
                        dut: DutKind::Lbd,
                        against: base,
                        ratio: Stat::of(per_repeat.iter().copied()),
                        per_repeat,
                        ratio_of_best: best(DutKind::Lbd) / best(base),
                    });
                }
            }
        }
        IoReport {
            capacity: params.capacity(),
            params,
            gen_cpu: layout.gen_cpu,
            dut_cpu: layout.dut_cpu,
            queues: layout.queues,
            forwarding_cores: FORWARDING_CORES,
            tsc_hz,
            summary,
            ratios,
            runs,
        }
    }

    /// Markdown tables: one row per DUT, then the ratios.
    pub fn table(&self) -> String {
        let p = &self.params;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "bench io: {} flows, {} B frames, {}% SYN, {}, {} s per run, {} run(s) per DUT; \
             generator on CPU {}, DUT forwarding lcore(s) on CPU {}; {} queue(s)",
            p.flows,
            p.size,
            p.syn_percent,
            p.rate
                .map_or("full speed".to_string(), |r| format!("{r} Mpps offered")),
            p.seconds,
            p.repeat.max(1),
            self.gen_cpu,
            self.dut_cpu,
            self.queues
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| DUT | Mpps per forwarding core | loss % | ring full % | RTT p50 µs | RTT p99 µs | RTT p99.9 µs | DUT cycles/packet |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for d in &self.summary {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                d.dut.name(),
                d.mpps_per_core.show(1.0, 2),
                d.loss_percent.show(1.0, 3),
                d.ring_full_percent.show(1.0, 1),
                d.rtt_p50_ns.show(1e-3, 1),
                d.rtt_p99_ns.show(1e-3, 1),
                d.rtt_p999_ns.show(1e-3, 1),
                d.cycles_per_packet
                    .map_or("–".to_string(), |c| c.show(1.0, 1)),
            );
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "| ratio | per repeat: median (min–max) | best run ÷ best run | target |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|");
            for r in &self.ratios {
                let _ = writeln!(
                    s,
                    "| {} / {} | {} | {:.3} | ≥ 0.80 |",
                    r.dut.name(),
                    r.against.name(),
                    r.ratio.show(1.0, 3),
                    r.ratio_of_best
                );
            }
        }
        s
    }
}

/// One line per run on stderr while the benchmark runs.
pub fn progress_line(r: &RunResult, repeats: usize) -> String {
    let m = &r.measured;
    format!(
        "run {}/{} {}: sent {} received {} (+{} late) lost {} in {:.2} s: {:.2} Mpps; \
         ring full {:.1}%; RTT p50 {:.1} µs p99 {:.1} µs; warm-up {}/{} SYNs back; DUT dropped {} tx_failed {} rx/busy poll {}",
        r.repeat + 1,
        repeats,
        r.dut.name(),
        m.sent,
        m.received,
        m.late,
        m.lost,
        m.seconds,
        r.mpps_per_core,
        r.ring_full_percent,
        m.rtt_p50_ns / 1e3,
        m.rtt_p99_ns / 1e3,
        r.warmup.received,
        r.warmup.sent,
        r.dut_report
            .dropped
            .map_or("?".to_string(), |d| d.to_string()),
        r.dut_report
            .tx_failed
            .map_or("-".to_string(), |d| d.to_string()),
        r.dut_report
            .avg_rx_burst
            .map_or("-".to_string(), |b| format!("{b:.1}")),
    ) + &per_queue(r)
}

/// With several queues: what went out and came back on each, and what each
/// lbd worker did ("" with one queue).
pub fn per_queue(r: &RunResult) -> String {
    let m = &r.measured;
    if m.sent_by_queue.len() <= 1 {
        return String::new();
    }
    let mut s = String::from("; per queue sent/received");
    for (q, (t, x)) in m.sent_by_queue.iter().zip(&m.received_by_queue).enumerate() {
        let _ = write!(s, " q{q} {t}/{x}");
    }
    if !r.dut_report.workers.is_empty() {
        s.push_str("; lbd workers busy_polls/conns");
        for w in &r.dut_report.workers {
            let _ = write!(s, " w{} {}/{}", w.worker, w.busy_polls, w.conns);
        }
    }
    s
}
