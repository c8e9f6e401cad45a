//! How each process of a run is started: the generator's EAL arguments, the
//! lbd config, the dpdk-testpmd command line.
//!
//! Placement (2 CPUs): the generator's only lcore on `gen_cpu`; the DUT's
//! forwarding lcore alone on `dut_cpu`; the DUT's main lcore shares
//! `gen_cpu` with the generator (lbd's control loop wakes every 100 ms,
//! testpmd's main lcore sleeps in `read(stdin)`), so both DUTs get the same
//! forwarding CPU and the same neighbour. Every process has its own
//! `--file-prefix` and runs on ordinary memory (`--no-huge -m 512`).
//!
//! With `--queues N > 1` the DUT gets N forwarding lcores (lbd: N workers,
//! `workers.queues_per_port: N`; testpmd: `--nb-cores=N --rxq=N --txq=N`),
//! all on `dut_cpu` (`0@gen_cpu,(1-N)@dut_cpu`): the generator keeps its
//! CPU to itself, and on 2 CPUs there is no other. The N lcores then take
//! turns on one CPU, so such a run shows that the queues and workers work,
//! not that they scale.

use std::path::{Path, PathBuf};

use super::frame::addr;

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
        }
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
            .map(|p| base.join(format!("{}-{p}", self.prefix)))
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
    /// generator knows where to send before it hears from the DUT.
    pub fn dut_device(&self) -> String {
        format!(
            "net_memif0,role=client,socket={},socket-abstract=no,mac={}",
            self.socket,
            mac(addr::DUT_MAC)
        )
    }

    /// EAL arguments of the generator (this process).
    pub fn gen_eal_args(&self) -> Vec<String> {
        vec![
            "bench".into(),
            "--lcores".into(),
            format!("0@{}", self.gen_cpu),
            "--no-huge".into(),
            "-m".into(),
            "512".into(),
            "--no-pci".into(),
            "--file-prefix".into(),
            format!("{}-gen", self.prefix),
            format!("--vdev={}", self.gen_device()),
        ]
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
    /// connections, the control socket in `dir`, no metrics endpoint.
    pub fn lbd_config(&self, reals: usize, scheduler: &str, capacity: u64, dir: &Path) -> String {
        let rs: Vec<String> = (0..reals)
            .map(|i| {
                format!(
                    "(address: \"{}\", weight: 1, forward: Dr)",
                    addr::real_server(i)
                )
            })
            .collect();
        format!(
            r#"// Written by `bench io`: lbd as the device under test.
(
    eal: (lcores: Some("{lcores}"), no_huge: true, memory_mb: Some(512), no_pci: true,
          file_prefix: Some("{prefix}-lbd")),
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
            // 8191 for one queue as before; more RX rings hold more mbufs.
            mbufs = 8192 * usize::from(self.queues) - 1,
            prefix = self.prefix,
            device = self.dut_device(),
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
    pub fn testpmd_args(&self, mode: &str) -> Vec<String> {
        vec![
            "--lcores".into(),
            self.dut_lcores(),
            "--no-huge".into(),
            "-m".into(),
            "512".into(),
            "--no-pci".into(),
            "--file-prefix".into(),
            format!("{}-testpmd", self.prefix),
            format!("--vdev={}", self.dut_device()),
            "--".into(),
            format!("--forward-mode={mode}"),
            "--port-topology=loop".into(),
            format!("--nb-cores={}", self.queues),
            format!("--rxq={}", self.queues),
            format!("--txq={}", self.queues),
            "--rxd=1024".into(),
            "--txd=1024".into(),
            "--burst=32".into(),
            format!("--total-num-mbufs={}", 16384 * usize::from(self.queues)),
            "--auto-start".into(),
            // One TSC read per burst: reports its own cycles per packet.
            "--record-core-cycles".into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbd_config_parses_and_validates() {
        let dir = std::env::temp_dir();
        let l = Layout::new(0, 1, 1, &dir);
        let text = l.lbd_config(4, "Wlc", 65_536, &dir);
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
        let text = l.lbd_config(4, "Wlc", 65_536, &dir);
        let cfg =
            lbcore::config::parse(&text, "bench io").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(cfg.workers.queues_per_port, 3);
        assert_eq!(cfg.eal.lcores.as_deref(), Some("0@0,(1-3)@1"));
        let t = l.testpmd_args("io");
        for a in ["--nb-cores=3", "--rxq=3", "--txq=3", "0@0,(1-3)@1"] {
            assert!(t.iter().any(|x| x == a), "{a} missing from {t:?}");
        }
    }
}
