//! How each process of a run is started: the generator's EAL arguments, the
//! lbd config, the dpdk-testpmd command line.
//!
//! Placement (2 CPUs): the generator's only lcore on `gen_cpu`; the DUT's
//! forwarding lcore alone on `dut_cpu`; the DUT's main lcore shares
//! `gen_cpu` with the generator (lbd's control loop wakes every 100 ms,
//! testpmd's main lcore sleeps in `read(stdin)`), so both DUTs get the same
//! forwarding CPU and the same neighbour. Every process has its own
//! `--file-prefix`.
//!
//! Memory (`MemoryKind`): ordinary memory (`--no-huge -m 512`), or real
//! 2 MiB hugepages from this run's private hugetlbfs (`--huge-dir DIR -m M`
//! with M sized for the process's mbuf pool, see `huge::eal_mb`). The
//! generator's kind is fixed for a run (EAL initialises once per process);
//! the DUT's is chosen per DUT run.
//!
//! With `--queues N > 1` the DUT gets N forwarding lcores (lbd: N workers,
//! `workers.queues_per_port: N`; testpmd: `--nb-cores=N --rxq=N --txq=N`),
//! all on `dut_cpu` (`0@gen_cpu,(1-N)@dut_cpu`): the generator keeps its
//! CPU to itself, and on 2 CPUs there is no other. The N lcores then take
//! turns on one CPU, so such a run shows that the queues and workers work,
//! not that they scale.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::frame::addr;
use super::huge;

/// Mbufs of the generator's pool (`link`).
pub const GEN_MBUFS: u32 = 8191;

/// What an EAL runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryKind {
    /// `--no-huge`: ordinary 4 KiB pages.
    NoHuge,
    /// Real 2 MiB hugepages (`--huge-dir`).
    Huge,
}

impl MemoryKind {
    pub fn parse(s: &str) -> Result<MemoryKind, String> {
        match s.trim() {
            "no-huge" | "nohuge" => Ok(MemoryKind::NoHuge),
            "huge" | "hugepages" => Ok(MemoryKind::Huge),
            o => Err(format!("unknown memory kind {o:?}: use huge or no-huge")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MemoryKind::NoHuge => "no-huge",
            MemoryKind::Huge => "huge",
        }
    }
}

/// Where things run and what the link looks like.
#[derive(Debug, Clone)]
pub struct Layout {
    pub gen_cpu: usize,
    pub dut_cpu: usize,
    /// Queues of the memif link (each side), = DUT forwarding lcores.
    pub queues: u16,
    /// The memif control socket (a file in the run's temp directory).
    pub socket: String,
    /// Unique per `bench io` process, so parallel runs do not collide.
    pub prefix: String,
    /// The generator's memory.
    pub gen_memory: MemoryKind,
    /// The private hugetlbfs mount, when any process runs on hugepages.
    pub huge_dir: Option<String>,
    /// DUTs on hugepages open their memif client in zero-copy mode
    /// (`zero-copy=yes`, which needs `--single-file-segments`).
    pub zero_copy: bool,
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Layout {
    pub fn new(gen_cpu: usize, dut_cpu: usize, queues: u16, dir: &Path) -> Layout {
        Layout {
            gen_cpu,
            dut_cpu,
            queues: queues.max(1),
            socket: dir.join("memif.sock").display().to_string(),
            prefix: format!("lb-bench-io-{}", std::process::id()),
            gen_memory: MemoryKind::NoHuge,
            huge_dir: None,
            zero_copy: false,
        }
    }

    /// The same layout with the generator on `gen_memory` and hugepages
    /// (if any process uses them) from `huge_dir`.
    pub fn with_memory(
        mut self,
        gen_memory: MemoryKind,
        huge_dir: Option<&Path>,
        zero_copy: bool,
    ) -> Layout {
        self.gen_memory = gen_memory;
        self.huge_dir = huge_dir.map(|d| d.display().to_string());
        self.zero_copy = zero_copy;
        self
    }

    /// The EAL file prefix of process `who` (`gen`, `lbd`, `testpmd`).
    pub fn file_prefix(&self, who: &str) -> String {
        format!("{}-{who}", self.prefix)
    }

    /// mbufs of the lbd config's pool (`workers.mbufs`): 8191 for one
    /// queue as before; more RX rings hold more mbufs.
    pub fn lbd_mbufs(&self) -> u32 {
        8192 * u32::from(self.queues) - 1
    }

    /// testpmd's `--total-num-mbufs`.
    pub fn testpmd_mbufs(&self) -> u32 {
        16384 * u32::from(self.queues)
    }

    /// Whether a DUT on `kind` uses memif zero-copy (only on hugepages:
    /// on `--no-huge` it passed no traffic, see RESULTS.md).
    fn zero_copy_on(&self, kind: MemoryKind) -> bool {
        self.zero_copy && kind == MemoryKind::Huge
    }

    /// `-m` of a process on `kind` whose pool has `mbufs` mbufs: 512 on
    /// `--no-huge` as always; on hugepages sized for the pool.
    pub fn memory_mb(kind: MemoryKind, mbufs: u32) -> u64 {
        match kind {
            MemoryKind::NoHuge => 512,
            MemoryKind::Huge => huge::eal_mb(u64::from(mbufs)),
        }
    }

    /// The EAL memory arguments besides `-m`: `--no-huge`, or this run's
    /// hugetlbfs and, where memif zero-copy needs it (it shares the
    /// process's memory segments with the peer by fd),
    /// `--single-file-segments`.
    pub fn memory_flags(&self, kind: MemoryKind, zero_copy: bool) -> Vec<String> {
        match kind {
            MemoryKind::NoHuge => vec!["--no-huge".into()],
            MemoryKind::Huge => {
                let mut a = vec![
                    "--huge-dir".into(),
                    self.huge_dir.clone().unwrap_or_default(),
                ];
                if zero_copy {
                    a.push("--single-file-segments".into());
                }
                a
            }
        }
    }

    /// All EAL memory arguments of a process on `kind` with `mbufs` mbufs.
    pub fn memory_args(&self, kind: MemoryKind, mbufs: u32, zero_copy: bool) -> Vec<String> {
        let mut a = self.memory_flags(kind, zero_copy);
        a.extend(["-m".into(), Layout::memory_mb(kind, mbufs).to_string()]);
        a
    }

    /// Megabytes of hugepage memory (`-m`) the generator and the biggest
    /// DUT ask for on hugepages (0 for a process on `--no-huge`).
    pub fn huge_mb(&self, dut_memories: &[MemoryKind]) -> (u64, u64) {
        let gen = match self.gen_memory {
            MemoryKind::Huge => Layout::memory_mb(MemoryKind::Huge, GEN_MBUFS),
            MemoryKind::NoHuge => 0,
        };
        let dut = if dut_memories.contains(&MemoryKind::Huge) {
            let mbufs = self.lbd_mbufs().max(self.testpmd_mbufs());
            Layout::memory_mb(MemoryKind::Huge, mbufs)
        } else {
            0
        };
        (gen, dut)
    }

    /// DPDK's runtime directories of this run's processes (EAL leaves them
    /// behind; our prefixes carry our pid, so they would pile up). EAL puts
    /// them under /var/run/dpdk for root, else under $XDG_RUNTIME_DIR/dpdk
    /// or /tmp/dpdk.
    pub fn runtime_dirs(&self) -> Vec<PathBuf> {
        // SAFETY: geteuid has no preconditions.
        let base = if unsafe { libc::geteuid() } == 0 {
            PathBuf::from("/var/run/dpdk")
        } else {
            std::env::var_os("XDG_RUNTIME_DIR")
                .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
                .join("dpdk")
        };
        ["gen", "lbd", "testpmd"]
            .iter()
            .map(|p| base.join(self.file_prefix(p)))
            .collect()
    }

    /// The generator's memif device: the server end, which listens on the
    /// socket and so outlives the DUTs that connect to it one after another.
    pub fn gen_device(&self) -> String {
        format!(
            "net_memif0,role=server,socket={},socket-abstract=no,mac={}",
            self.socket,
            mac(addr::GEN_MAC)
        )
    }

    /// The DUT's memif device: the client end, with a fixed MAC so the
    /// generator knows where to send before it hears from the DUT; in
    /// zero-copy mode on hugepages with `--zero-copy`.
    pub fn dut_device(&self, memory: MemoryKind) -> String {
        format!(
            "net_memif0,role=client,socket={},socket-abstract=no,mac={}{}",
            self.socket,
            mac(addr::DUT_MAC),
            if self.zero_copy_on(memory) {
                ",zero-copy=yes"
            } else {
                ""
            }
        )
    }

    /// EAL arguments of the generator (this process).
    pub fn gen_eal_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "bench".into(),
            "--lcores".into(),
            format!("0@{}", self.gen_cpu),
        ];
        a.extend(self.memory_args(self.gen_memory, GEN_MBUFS, false));
        a.extend([
            "--no-pci".into(),
            "--file-prefix".into(),
            self.file_prefix("gen"),
            format!("--vdev={}", self.gen_device()),
        ]);
        a
    }

    /// The DUT's lcore map: main lcore 0 next to the generator, forwarding
    /// lcore 1 alone (with N queues: lcores 1..=N, sharing `dut_cpu`).
    fn dut_lcores(&self) -> String {
        if self.queues <= 1 {
            format!("0@{},1@{}", self.gen_cpu, self.dut_cpu)
        } else {
            format!("0@{},(1-{})@{}", self.gen_cpu, self.queues, self.dut_cpu)
        }
    }

    /// The lbd config: one port (the memif client), one DR service with
    /// `reals` real servers under `scheduler`, a table for `capacity`
    /// connections, the control socket in `dir`, no metrics endpoint; EAL
    /// on `memory`.
    pub fn lbd_config(
        &self,
        reals: usize,
        scheduler: &str,
        capacity: u64,
        dir: &Path,
        memory: MemoryKind,
    ) -> String {
        let rs: Vec<String> = (0..reals)
            .map(|i| {
                format!(
                    "(address: \"{}\", weight: 1, forward: Dr)",
                    addr::real_server(i)
                )
            })
            .collect();
        // The config has fields for -m and --no-huge; the rest of the
        // memory arguments go to extra_args.
        let extra: Vec<String> = self
            .memory_flags(memory, self.zero_copy_on(memory))
            .into_iter()
            .filter(|a| a != "--no-huge")
            .map(|a| format!("{a:?}"))
            .collect();
        format!(
            r#"// Written by `bench io`: lbd as the device under test.
(
    eal: (lcores: Some("{lcores}"), no_huge: {no_huge}, memory_mb: Some({memory_mb}), no_pci: true,
          file_prefix: Some("{prefix}"), extra_args: [{extra}]),
    ports: [(name: "bench0", device: "{device}", address: "{ip}/{plen}")],
    workers: (queues_per_port: {queues}, burst: 32, mbufs: {mbufs}),
    conn_table: (capacity: {capacity}),
    control: (socket: "{sock}"),
    metrics: (listen: None),
    services: [(vip: "{vip}", port: {vport}, protocol: Tcp, scheduler: {scheduler},
                real_servers: [{rs}])],
)
"#,
            lcores = self.dut_lcores(),
            queues = self.queues,
            mbufs = self.lbd_mbufs(),
            no_huge = memory == MemoryKind::NoHuge,
            memory_mb = Layout::memory_mb(memory, self.lbd_mbufs()),
            extra = extra.join(", "),
            prefix = self.file_prefix("lbd"),
            device = self.dut_device(memory),
            ip = addr::DUT_IP,
            plen = addr::DUT_PREFIX,
            sock = dir.join("lbd.sock").display(),
            vip = addr::VIP,
            vport = addr::VPORT,
            rs = rs.join(", "),
        )
    }

    /// dpdk-testpmd's arguments for forwarding mode `mode` (`io`,
    /// `macswap`): one port looped to itself, one forwarding core per queue
    /// (queue i in, queue i out), bursts
    /// of 32 and 1024 descriptors as lbd uses; non-interactive (it starts
    /// forwarding at once and stops on a newline on stdin).
    pub fn testpmd_args(&self, mode: &str, memory: MemoryKind) -> Vec<String> {
        let mut a: Vec<String> = vec!["--lcores".into(), self.dut_lcores()];
        a.extend(self.memory_args(memory, self.testpmd_mbufs(), self.zero_copy_on(memory)));
        a.extend([
            "--no-pci".into(),
            "--file-prefix".into(),
            self.file_prefix("testpmd"),
            format!("--vdev={}", self.dut_device(memory)),
            "--".into(),
            format!("--forward-mode={mode}"),
            "--port-topology=loop".into(),
            format!("--nb-cores={}", self.queues),
            format!("--rxq={}", self.queues),
            format!("--txq={}", self.queues),
            "--rxd=1024".into(),
            "--txd=1024".into(),
            "--burst=32".into(),
            format!("--total-num-mbufs={}", self.testpmd_mbufs()),
            "--auto-start".into(),
            // One TSC read per burst: reports its own cycles per packet.
            "--record-core-cycles".into(),
        ]);
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbd_config_parses_and_validates() {
        let dir = std::env::temp_dir();
        let l = Layout::new(0, 1, 1, &dir);
        let text = l.lbd_config(4, "Wlc", 65_536, &dir, MemoryKind::NoHuge);
        let cfg =
            lbcore::config::parse(&text, "bench io").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(cfg.services[0].real_servers.len(), 4);
        assert!(cfg.ports[0].device.contains("role=client"));
        assert_eq!(cfg.eal.lcores.as_deref(), Some("0@0,1@1"));
        assert_eq!(cfg.workers.queues_per_port, 1);
    }

    #[test]
    fn multi_queue_config_has_a_worker_per_queue() {
        let dir = std::env::temp_dir();
        let l = Layout::new(0, 1, 3, &dir);
        let text = l.lbd_config(4, "Wlc", 65_536, &dir, MemoryKind::NoHuge);
        let cfg =
            lbcore::config::parse(&text, "bench io").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(cfg.workers.queues_per_port, 3);
        assert_eq!(cfg.eal.lcores.as_deref(), Some("0@0,(1-3)@1"));
        let t = l.testpmd_args("io", MemoryKind::NoHuge);
        for a in ["--nb-cores=3", "--rxq=3", "--txq=3", "0@0,(1-3)@1"] {
            assert!(t.iter().any(|x| x == a), "{a} missing from {t:?}");
        }
    }

    /// The value after flag `f` in `args`.
    fn after<'a>(args: &'a [String], f: &str) -> Option<&'a str> {
        let i = args.iter().position(|a| a == f)?;
        args.get(i + 1).map(String::as_str)
    }

    fn huge_layout(zero_copy: bool) -> Layout {
        let dir = std::path::PathBuf::from("/tmp/lb-bench-io-test");
        Layout::new(0, 1, 1, &dir).with_memory(MemoryKind::Huge, Some(&dir.join("huge")), zero_copy)
    }

    #[test]
    fn no_huge_processes_keep_the_old_arguments() {
        let l = Layout::new(0, 1, 1, &std::env::temp_dir());
        let g = l.gen_eal_args();
        assert!(g.iter().any(|a| a == "--no-huge"), "{g:?}");
        assert_eq!(after(&g, "-m"), Some("512"));
        assert!(!g.iter().any(|a| a.starts_with("--huge-dir")), "{g:?}");
        let t = l.testpmd_args("io", MemoryKind::NoHuge);
        assert!(t.iter().any(|a| a == "--no-huge"), "{t:?}");
        assert_eq!(after(&t, "-m"), Some("512"));
        assert!(!t.iter().any(|a| a.contains("zero-copy")), "{t:?}");
        assert_eq!(l.huge_mb(&[MemoryKind::NoHuge]), (0, 0));
    }

    #[test]
    fn hugepage_processes_get_the_mount_and_memory_for_their_pool() {
        let l = huge_layout(false);
        let g = l.gen_eal_args();
        assert!(!g.iter().any(|a| a == "--no-huge"), "{g:?}");
        assert_eq!(after(&g, "--huge-dir"), Some("/tmp/lb-bench-io-test/huge"));
        assert_eq!(after(&g, "-m"), Some("52"), "8191 mbufs: {g:?}");
        assert_eq!(
            after(&g, "--file-prefix"),
            Some(l.file_prefix("gen").as_str())
        );
        // testpmd before its "--": EAL arguments; its pool is 16384 mbufs.
        let t = l.testpmd_args("io", MemoryKind::Huge);
        let eal = &t[..t.iter().position(|a| a == "--").unwrap()];
        assert!(!eal.iter().any(|a| a == "--no-huge"), "{t:?}");
        assert_eq!(after(eal, "--huge-dir"), Some("/tmp/lb-bench-io-test/huge"));
        assert_eq!(after(eal, "-m"), Some("72"));
        assert!(!eal.iter().any(|a| a == "--single-file-segments"), "{t:?}");
        assert!(!t.iter().any(|a| a.contains("zero-copy")), "{t:?}");
        assert!(t.iter().any(|a| a == "--total-num-mbufs=16384"), "{t:?}");
        // One DUT runs at a time: the generator's memory and the bigger one.
        assert_eq!(l.huge_mb(&[MemoryKind::Huge, MemoryKind::NoHuge]), (52, 72));
        assert_eq!(l.huge_mb(&[MemoryKind::NoHuge]), (52, 0));
    }

    #[test]
    fn lbd_config_on_hugepages_parses_and_gives_lbd_the_same_arguments() {
        let l = huge_layout(false);
        let dir = std::env::temp_dir();
        let text = l.lbd_config(4, "Wlc", 65_536, &dir, MemoryKind::Huge);
        let cfg =
            lbcore::config::parse(&text, "bench io").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(!cfg.eal.no_huge);
        assert_eq!(cfg.eal.memory_mb, Some(52));
        assert_eq!(
            cfg.eal.extra_args,
            ["--huge-dir", "/tmp/lb-bench-io-test/huge"]
        );
        assert!(!cfg.ports[0].device.contains("zero-copy"));
        // And on --no-huge in the same run: as before.
        let text = l.lbd_config(4, "Wlc", 65_536, &dir, MemoryKind::NoHuge);
        let cfg =
            lbcore::config::parse(&text, "bench io").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(cfg.eal.no_huge);
        assert_eq!(cfg.eal.memory_mb, Some(512));
        assert!(cfg.eal.extra_args.is_empty());
    }

    #[test]
    fn zero_copy_only_for_duts_on_hugepages() {
        let l = huge_layout(true);
        let t = l.testpmd_args("io", MemoryKind::Huge);
        assert!(t.iter().any(|a| a == "--single-file-segments"), "{t:?}");
        assert!(
            t.iter()
                .any(|a| a.contains("role=client") && a.ends_with(",zero-copy=yes")),
            "{t:?}"
        );
        let dir = std::env::temp_dir();
        let text = l.lbd_config(4, "Wlc", 65_536, &dir, MemoryKind::Huge);
        let cfg =
            lbcore::config::parse(&text, "bench io").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(cfg
            .eal
            .extra_args
            .iter()
            .any(|a| a == "--single-file-segments"));
        assert!(cfg.ports[0].device.ends_with(",zero-copy=yes"));
        // Never on --no-huge, and never for the generator (the server).
        let t = l.testpmd_args("io", MemoryKind::NoHuge);
        assert!(!t
            .iter()
            .any(|a| a.contains("zero-copy") || a == "--single-file-segments"));
        let g = l.gen_eal_args();
        assert!(!g
            .iter()
            .any(|a| a.contains("zero-copy") || a == "--single-file-segments"));
    }

    #[test]
    fn memory_kinds_parse() {
        assert_eq!(MemoryKind::parse("huge"), Ok(MemoryKind::Huge));
        assert_eq!(MemoryKind::parse(" no-huge"), Ok(MemoryKind::NoHuge));
        assert!(MemoryKind::parse("2M").is_err());
    }
}
