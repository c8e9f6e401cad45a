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

use super::cmdline::{Layout, MemoryKind};
use super::cpu::CpuUse;
use super::dut::{DutKind, DutReport};
use super::gen::{Measured, Warmed};
use super::huge::{HugeSetup, HugeUse};
use super::IoArgs;
use crate::stat::Stat;

/// Forwarding CPUs of every DUT here: one lcore polls the one queue, or
/// with `--queues N` the N forwarding lcores share that one CPU.
pub const FORWARDING_CORES: u32 = 1;

/// One DUT run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub dut: DutKind,
    /// What the DUT's EAL ran on.
    pub memory: MemoryKind,
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
    /// Hugepages in use while the DUT ran (zeros on `--no-huge`).
    pub hugepages: HugeUse,
    /// CPU time the DUT's forwarding thread and the generator got in the
    /// window.
    pub cpu: CpuUse,
    /// Frames received ÷ the DUT forwarding thread's on-CPU seconds
    /// (÷ 1e6): the rate its own preemption does not lower.
    pub mpps_per_dut_cpu_second: f64,
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
            memory: MemoryKind::NoHuge,
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
            hugepages: HugeUse::default(),
            cpu: CpuUse::default(),
            mpps_per_dut_cpu_second: 0.0,
        }
    }

    /// The same run, with the CPU time of its window.
    pub fn with_cpu(mut self, cpu: CpuUse) -> RunResult {
        self.cpu = cpu;
        self.mpps_per_dut_cpu_second = if cpu.dut_seconds > 0.0 {
            self.measured.received as f64 / cpu.dut_seconds / 1e6
        } else {
            0.0
        };
        self
    }

    /// The same run, on `memory`, with what it used of hugepages.
    pub fn on(mut self, memory: MemoryKind, hugepages: HugeUse) -> RunResult {
        self.memory = memory;
        self.hugepages = hugepages;
        self
    }
}

/// Median and spread of one DUT's runs on one memory kind.
#[derive(Debug, Clone, Serialize)]
pub struct DutSummary {
    pub dut: DutKind,
    pub memory: MemoryKind,
    pub runs: usize,
    pub mpps_per_core: Stat,
    /// Frames ÷ the DUT's on-CPU seconds, and the CPU shares, %.
    pub mpps_per_dut_cpu_second: Stat,
    pub dut_cpu_percent: Stat,
    pub gen_cpu_percent: Stat,
    pub loss_percent: Stat,
    pub ring_full_percent: Stat,
    pub rtt_p50_ns: Stat,
    pub rtt_p99_ns: Stat,
    pub rtt_p999_ns: Stat,
    /// testpmd only: its own CPU cycles per packet.
    pub cycles_per_packet: Option<Stat>,
    /// Hugepages the DUT mapped, MiB (0 on `--no-huge`).
    pub dut_hugepages_mib: Stat,
    /// Transparent huge pages of the DUT's heap, MiB (lbd-thp).
    pub dut_thp_mib: Stat,
}

/// lbd ÷ a testpmd mode, both on `memory`.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub dut: DutKind,
    pub against: DutKind,
    pub memory: MemoryKind,
    #[serde(flatten)]
    pub pair: PairedRatio,
}

/// One DUT on hugepages ÷ the same DUT on `--no-huge`.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryRatio {
    pub dut: DutKind,
    #[serde(flatten)]
    pub pair: PairedRatio,
}

/// Ratios of one pairing of runs (`num ÷ den`) over the repeats.
#[derive(Debug, Clone, Serialize)]
pub struct PairedRatio {
    /// Per repeat (the two runs of the same repeat), then median (min–max).
    pub ratio: Stat,
    pub per_repeat: Vec<f64>,
    /// The best `num` run ÷ the best `den` run: on a shared machine the
    /// fastest run of each is the least disturbed one.
    pub ratio_of_best: f64,
    /// Per repeat on frames per DUT on-CPU second, median (min–max).
    pub ratio_per_dut_cpu_second: Stat,
    /// Per repeat over the pairs in which all four threads (two runs × DUT
    /// and generator) had ≥ 95 % of a CPU, and how many such pairs.
    pub ratio_undisturbed: Option<Stat>,
    pub undisturbed_pairs: usize,
}

impl PairedRatio {
    /// The table cells every ratio table shares: per repeat, best ÷ best,
    /// per DUT CPU-second, undisturbed pairs.
    fn cells(&self) -> String {
        let undisturbed = match &self.ratio_undisturbed {
            Some(s) => format!("{}: {}", self.undisturbed_pairs, s.show(1.0, 3)),
            None => "0".into(),
        };
        format!(
            "{} | {:.3} | {} | {}",
            self.ratio.show(1.0, 3),
            self.ratio_of_best,
            self.ratio_per_dut_cpu_second.show(1.0, 3),
            undisturbed
        )
    }
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
    /// The generator's memory (fixed for the run).
    pub gen_memory: MemoryKind,
    /// What was reserved, when any EAL ran on hugepages.
    pub hugepages: Option<HugeSetup>,
    pub summary: Vec<DutSummary>,
    pub ratios: Vec<Ratio>,
    /// With `--memory huge,no-huge`: each DUT's hugepages ÷ no-huge.
    pub memory_ratios: Vec<MemoryRatio>,
    pub runs: Vec<RunResult>,
}

/// A run in which both the DUT's forwarding thread and the generator were
/// on a CPU at least this share of the window, %: nothing else on this
/// machine took CPU from either side.
pub const UNDISTURBED_CPU_PERCENT: f64 = 95.0;

impl RunResult {
    pub fn undisturbed(&self) -> bool {
        self.cpu.dut_percent >= UNDISTURBED_CPU_PERCENT
            && self.cpu.gen_percent >= UNDISTURBED_CPU_PERCENT
    }
}

/// Paired ratios `num ÷ den` over the repeats: per repeat, the first run of
/// each matching `num` and `den` in that repeat.
fn paired(
    runs: &[RunResult],
    num: impl Fn(&RunResult) -> bool,
    den: impl Fn(&RunResult) -> bool,
) -> Option<PairedRatio> {
    let pairs: Vec<(&RunResult, &RunResult)> = runs
        .iter()
        .filter(|r| num(r))
        .filter_map(|n| Some((n, runs.iter().find(|r| den(r) && r.repeat == n.repeat)?)))
        .collect();
    let ratio = |f: fn(&RunResult) -> f64| -> Vec<f64> {
        pairs
            .iter()
            .filter(|(_, d)| f(d) > 0.0)
            .map(|(n, d)| f(n) / f(d))
            .collect()
    };
    let per_repeat = ratio(|r| r.mpps_per_core);
    if per_repeat.is_empty() {
        return None;
    }
    let per_cpu = ratio(|r| r.mpps_per_dut_cpu_second);
    let clean: Vec<f64> = pairs
        .iter()
        .filter(|(n, d)| n.undisturbed() && d.undisturbed() && d.mpps_per_core > 0.0)
        .map(|(n, d)| n.mpps_per_core / d.mpps_per_core)
        .collect();
    let best = |f: &dyn Fn(&RunResult) -> bool| {
        runs.iter()
            .filter(|r| f(r))
            .map(|r| r.mpps_per_core)
            .fold(0.0, f64::max)
    };
    Some(PairedRatio {
        ratio: Stat::of(per_repeat.iter().copied()),
        ratio_of_best: best(&num) / best(&den),
        per_repeat,
        ratio_per_dut_cpu_second: Stat::of(per_cpu.into_iter()),
        undisturbed_pairs: clean.len(),
        ratio_undisturbed: (!clean.is_empty()).then(|| Stat::of(clean.into_iter())),
    })
}

impl IoReport {
    pub fn new(params: IoArgs, layout: &Layout, tsc_hz: u64, runs: Vec<RunResult>) -> IoReport {
        let mut groups: Vec<(DutKind, MemoryKind)> = Vec::new();
        for r in &runs {
            if !groups.contains(&(r.dut, r.memory)) {
                groups.push((r.dut, r.memory));
            }
        }
        let summary = groups
            .iter()
            .map(|&(k, mem)| {
                let rs: Vec<&RunResult> = runs
                    .iter()
                    .filter(|r| r.dut == k && r.memory == mem)
                    .collect();
                let st = |f: &dyn Fn(&RunResult) -> f64| Stat::of(rs.iter().map(|r| f(r)));
                DutSummary {
                    dut: k,
                    memory: mem,
                    runs: rs.len(),
                    mpps_per_core: st(&|r| r.mpps_per_core),
                    mpps_per_dut_cpu_second: st(&|r| r.mpps_per_dut_cpu_second),
                    dut_cpu_percent: st(&|r| r.cpu.dut_percent),
                    gen_cpu_percent: st(&|r| r.cpu.gen_percent),
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
                    dut_hugepages_mib: st(&|r| r.hugepages.dut_kib as f64 / 1024.0),
                    dut_thp_mib: st(&|r| r.hugepages.dut_thp_kib as f64 / 1024.0),
                }
            })
            .collect();
        let mut memories: Vec<MemoryKind> = Vec::new();
        let mut kinds: Vec<DutKind> = Vec::new();
        for &(k, m) in &groups {
            if !memories.contains(&m) {
                memories.push(m);
            }
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        let mut ratios = Vec::new();
        for &mem in &memories {
            for &dut in kinds.iter().filter(|k| k.is_lbd()) {
                for &base in kinds.iter().filter(|k| k.is_testpmd()) {
                    let on = |k: DutKind| move |r: &RunResult| r.dut == k && r.memory == mem;
                    if let Some(pair) = paired(&runs, on(dut), on(base)) {
                        ratios.push(Ratio {
                            dut,
                            against: base,
                            memory: mem,
                            pair,
                        });
                    }
                }
            }
        }
        let mut memory_ratios = Vec::new();
        for &k in &kinds {
            let on = |m: MemoryKind| move |r: &RunResult| r.dut == k && r.memory == m;
            if let Some(pair) = paired(&runs, on(MemoryKind::Huge), on(MemoryKind::NoHuge)) {
                memory_ratios.push(MemoryRatio { dut: k, pair });
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
            gen_memory: layout.gen_memory,
            hugepages: None,
            summary,
            ratios,
            memory_ratios,
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
             generator on CPU {}, DUT forwarding lcore(s) on CPU {}; {} queue(s); \
             generator memory {}",
            p.flows,
            p.size,
            p.syn_percent,
            p.rate
                .map_or("full speed".to_string(), |r| format!("{r} Mpps offered")),
            p.seconds,
            p.repeat.max(1),
            self.gen_cpu,
            self.dut_cpu,
            self.queues,
            self.gen_memory.name()
        );
        if let Some(h) = &self.hugepages {
            let _ = writeln!(
                s,
                "hugepages: {} pages of 2 MiB reserved (free {} → {}; after the run {}), \
                 -m {} MB generator, {} MB DUT",
                h.pages,
                h.pool_before.free,
                h.pool_reserved.free,
                h.pool_after.map_or("?".to_string(), |p| format!(
                    "{} free of {}",
                    p.free, p.total
                )),
                h.gen_mb,
                h.dut_mb
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| DUT | memory | Mpps per forwarding core | Mpps per DUT CPU-second | DUT / gen CPU % | loss % | ring full % | RTT p50 µs | RTT p99 µs | RTT p99.9 µs | DUT cycles/packet | DUT hugepages / THP MiB |"
        );
        let _ = writeln!(
            s,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for d in &self.summary {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} / {} |",
                d.dut.name(),
                d.memory.name(),
                d.mpps_per_core.show(1.0, 2),
                d.mpps_per_dut_cpu_second.show(1.0, 2),
                d.dut_cpu_percent.show(1.0, 0),
                d.gen_cpu_percent.show(1.0, 0),
                d.loss_percent.show(1.0, 3),
                d.ring_full_percent.show(1.0, 1),
                d.rtt_p50_ns.show(1e-3, 1),
                d.rtt_p99_ns.show(1e-3, 1),
                d.rtt_p999_ns.show(1e-3, 1),
                d.cycles_per_packet
                    .map_or("–".to_string(), |c| c.show(1.0, 1)),
                d.dut_hugepages_mib.show(1.0, 0),
                d.dut_thp_mib.show(1.0, 0),
            );
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "| ratio | memory | per repeat: median (min–max) | best run ÷ best run | per DUT CPU-second, per repeat | undisturbed pairs: n, median (min–max) | target |"
            );
            let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
            for r in &self.ratios {
                let _ = writeln!(
                    s,
                    "| {} / {} | {} | {} | ≥ 0.80 |",
                    r.dut.name(),
                    r.against.name(),
                    r.memory.name(),
                    r.pair.cells(),
                );
            }
        }
        if !self.memory_ratios.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "| DUT | huge ÷ no-huge per repeat: median (min–max) | best run ÷ best run | per DUT CPU-second, per repeat | undisturbed pairs: n, median (min–max) |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---:|");
            for r in &self.memory_ratios {
                let _ = writeln!(s, "| {} | {} |", r.dut.name(), r.pair.cells());
            }
        }
        s
    }
}

/// One line per run on stderr while the benchmark runs.
pub fn progress_line(r: &RunResult, repeats: usize) -> String {
    let m = &r.measured;
    format!(
        "run {}/{} {} ({}{}): sent {} received {} (+{} late) lost {} in {:.2} s: {:.2} Mpps \
         ({:.2} per DUT CPU-second; CPU DUT {:.0}% gen {:.0}%); \
         ring full {:.1}%; RTT p50 {:.1} µs p99 {:.1} µs; warm-up {}/{} SYNs back; DUT dropped {} tx_failed {} rx/busy poll {}",
        r.repeat + 1,
        repeats,
        r.dut.name(),
        r.memory.name(),
        if r.hugepages.dut_kib > 0 {
            format!(
                ", {} MiB of hugepages, {} pages free",
                r.hugepages.dut_kib / 1024,
                r.hugepages.pool.free
            )
        } else {
            String::new()
        } + &if r.hugepages.dut_thp_kib > 0 {
            format!(", {} MiB of THP", r.hugepages.dut_thp_kib / 1024)
        } else {
            String::new()
        },
        m.sent,
        m.received,
        m.late,
        m.lost,
        m.seconds,
        r.mpps_per_core,
        r.mpps_per_dut_cpu_second,
        r.cpu.dut_percent,
        r.cpu.gen_percent,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of `dut` on `memory` in repeat `rep` that received `mpps` × 1M
    /// frames in one second.
    fn run(dut: DutKind, memory: MemoryKind, rep: usize, mpps: f64) -> RunResult {
        let m = Measured {
            sent: (mpps * 1e6) as u64,
            received: (mpps * 1e6) as u64,
            seconds: 1.0,
            ..Measured::default()
        };
        let r = RunResult::new(dut, rep, Warmed::default(), m, 0, 0, DutReport::default());
        let use_ = HugeUse {
            dut_kib: if memory == MemoryKind::Huge { 53248 } else { 0 },
            ..HugeUse::default()
        };
        // Repeat 1's lbd on --no-huge lost half its CPU.
        let share = if rep == 1 && dut == DutKind::Lbd && memory == MemoryKind::NoHuge {
            50.0
        } else {
            100.0
        };
        r.on(memory, use_)
            .with_cpu(CpuUse::new((share * 1e7) as u64, 1_000_000_000, 1.0))
    }

    #[test]
    fn ratios_pair_runs_of_the_same_repeat_and_memory() {
        use DutKind::*;
        use MemoryKind::*;
        let runs = vec![
            run(TestpmdIo, Huge, 0, 8.0),
            run(Lbd, Huge, 0, 6.0),
            run(TestpmdIo, NoHuge, 0, 8.0),
            run(Lbd, NoHuge, 0, 4.0),
            run(TestpmdIo, NoHuge, 1, 5.0),
            run(Lbd, NoHuge, 1, 4.0),
            run(TestpmdIo, Huge, 1, 10.0),
            run(Lbd, Huge, 1, 7.0),
        ];
        let args = IoArgs::parse_for_test(&[]).unwrap();
        let layout = Layout::new(0, 1, 1, &std::env::temp_dir());
        let rep = IoReport::new(args, &layout, 1, runs);
        assert_eq!(rep.summary.len(), 4);
        let huge_lbd = rep
            .summary
            .iter()
            .find(|s| s.dut == Lbd && s.memory == Huge)
            .unwrap();
        assert_eq!(huge_lbd.runs, 2);
        assert_eq!(huge_lbd.dut_hugepages_mib.median, 52.0);
        let ratio = |mem| {
            rep.ratios
                .iter()
                .find(|r| r.memory == mem)
                .map(|r| r.pair.per_repeat.clone())
                .unwrap()
        };
        assert_eq!(ratio(Huge), [0.75, 0.7]);
        assert_eq!(ratio(NoHuge), [0.5, 0.8]);
        let m: Vec<(DutKind, Vec<f64>)> = rep
            .memory_ratios
            .iter()
            .map(|r| (r.dut, r.pair.per_repeat.clone()))
            .collect();
        assert_eq!(m, [(TestpmdIo, vec![1.0, 2.0]), (Lbd, vec![1.5, 1.75])]);
        assert_eq!(rep.memory_ratios[1].pair.ratio_of_best, 7.0 / 4.0);
        // Undisturbed pairs leave out repeat 1's no-huge lbd.
        let no_huge = rep.ratios.iter().find(|r| r.memory == NoHuge).unwrap();
        assert_eq!(no_huge.pair.undisturbed_pairs, 1);
        assert_eq!(no_huge.pair.ratio_undisturbed.unwrap().median, 0.5);
        assert_eq!(rep.memory_ratios[1].pair.undisturbed_pairs, 1);
        // Per DUT CPU-second, the disturbed run counts its half second.
        assert_eq!(no_huge.pair.per_repeat[1], 0.8);
        assert_eq!(no_huge.pair.ratio_per_dut_cpu_second.max, 1.6);
        let table = rep.table();
        assert!(table.contains("| lbd / testpmd-io | huge |"), "{table}");
        assert!(table.contains("huge ÷ no-huge"), "{table}");
    }
}
