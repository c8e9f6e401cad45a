//! `bench scale`: N independent pipeline workers on N threads at once, each
//! pinned to its own CPU, with its own `Worker`, `ConnTable` and share of
//! the flows (flow numbers `k, k + N, k + 2N, …` for worker `k`, as RSS
//! spreads flows over queues), timed over one common wall-clock window.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{prepare, Params, Report, Workload};

/// What one `scale` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    pub threads: usize,
    /// CPU each thread was pinned to (`None`: not pinned).
    pub cpus: Vec<Option<usize>>,
    /// Flows over all threads.
    pub flows: u64,
    /// The common window: the longest timed loop of any thread (every
    /// thread stops when the first one does).
    pub window_seconds: f64,
    /// Packets over all threads.
    pub packets: u64,
    /// Packets over all threads ÷ window.
    pub aggregate_mpps: f64,
    /// Connections created over all threads ÷ window.
    pub aggregate_new_conns_per_sec: f64,
    /// One report per thread, in thread order.
    pub per_thread: Vec<Report>,
}

impl ScaleReport {
    /// The per-thread timed ns/packet (sum of bursts ÷ packets).
    pub fn ns_per_packet(&self) -> Vec<f64> {
        self.per_thread.iter().map(|r| r.ns_per_packet).collect()
    }
}

/// The CPUs this process may run on (`sched_getaffinity`), ascending.
#[cfg(target_os = "linux")]
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
pub fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Default CPUs for `n` threads: the allowed CPUs, leaving out CPU 0 (where
/// the OS and most interrupts run) when there are more than `n`.
pub fn default_cpus(n: usize) -> Result<Vec<usize>, String> {
    let mut all = allowed_cpus();
    if all.len() > n {
        all.retain(|&c| c != 0);
    }
    if all.len() < n {
        return Err(format!(
            "{n} threads need {n} CPUs; this process may use {:?}",
            allowed_cpus()
        ));
    }
    all.truncate(n);
    Ok(all)
}

/// Parse a CPU list such as `1,3,5-7`.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>, String> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad CPU list {s:?}"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("bad CPU range {part:?}"));
                }
                v.extend(a..=b);
            }
            None => v.push(num(part)?),
        }
    }
    if v.is_empty() {
        return Err("empty CPU list".into());
    }
    Ok(v)
}

/// Pin the calling thread to `cpu`.
#[cfg(target_os = "linux")]
pub fn pin(cpu: usize) -> Result<(), String> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(format!("CPU {cpu} out of range"));
    }
    // SAFETY: cpu_set_t is plain data; pid 0 is the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(format!(
            "sched_setaffinity to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn pin(cpu: usize) -> Result<(), String> {
    Err(format!("pinning to CPU {cpu} is only implemented on Linux"))
}

/// Run `cpus.len()` workers at once, worker `k` pinned to `cpus[k]` (or
/// not pinned if `None`). `p.flows` is the total over all workers (split
/// as evenly as possible); `p.packets` caps each worker; timing ends for
/// all when the first worker ends (its packets or its trace ran out) or
/// after `seconds`, whichever is first.
pub fn scale(p: &Params, cpus: &[Option<usize>], seconds: f64) -> Result<ScaleReport, String> {
    let n = cpus.len();
    if n == 0 {
        return Err("at least one thread".into());
    }
    if p.workload == Workload::Mixed {
        return Err("scale runs established or new".into());
    }
    if p.flows < n as u64 {
        return Err("flows must be at least the number of threads".into());
    }
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err("seconds must be > 0".into());
    }
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(n + 1);
    let results: Vec<Result<Report, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = cpus
            .iter()
            .enumerate()
            .map(|(k, &cpu)| {
                let mut q = p.clone();
                q.shard = (k as u32, n as u32);
                q.flows = p.flows / n as u64 + u64::from((k as u64) < p.flows % n as u64);
                q.seconds = None;
                if q.workload == Workload::New {
                    q.packets = q.flows;
                }
                let (stop, barrier) = (&stop, &barrier);
                std::thread::Builder::new()
                    .name(format!("bench-{k}"))
                    .spawn_scoped(s, move || {
                        // Pin first, so the table and trace are allocated
                        // and first touched on this CPU's memory node.
                        let ready = cpu.map_or(Ok(()), pin).and_then(|()| prepare(&q));
                        barrier.wait();
                        match ready {
                            Ok(prep) => prep.time(Some(stop)),
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                Err(format!("thread {k}: {e}"))
                            }
                        }
                    })
                    .expect("spawn a bench thread")
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        let limit = Duration::from_secs_f64(seconds);
        while !stop.load(Ordering::Relaxed) {
            let left = limit.saturating_sub(t0.elapsed());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .collect()
    });
    let per_thread = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let window = per_thread
        .iter()
        .map(|r| r.wall_seconds)
        .fold(0.0, f64::max);
    let packets: u64 = per_thread.iter().map(|r| r.packets).sum();
    let created: u64 = per_thread.iter().map(|r| r.conns_created).sum();
    Ok(ScaleReport {
        threads: n,
        cpus: cpus.to_vec(),
        flows: p.flows,
        window_seconds: window,
        packets,
        aggregate_mpps: packets as f64 / window / 1e6,
        aggregate_new_conns_per_sec: created as f64 / window,
        per_thread,
    })
}
