//! End-to-end test of device bring-up on a second PMD with real hugepages:
//! lbd's port is `net_virtio_user` (2 queue pairs) against `dpdk-testpmd`'s
//! `net_vhost`, both in user space and both on hugepages (vhost-user maps
//! the other process's memory, which `--no-huge` cannot share).
//!
//! testpmd plays the network: first in `icmpecho` mode, where it answers
//! ARP requests (so lbd resolves its real server to testpmd's MAC), then in
//! `txonly` mode sending client → VIP UDP datagrams (198.18.0.0/15 only)
//! from many source ports on both of its TX queues, which vhost delivers to
//! lbd's two RX queues. lbd forwards them by DR back to testpmd's MAC. The
//! test checks: hugepages in use, the negotiated offloads and per-worker RX
//! spread in `lbctl status`, DR forwarding on both workers, and that a
//! frame larger than an mbuf (virtio chains it over mergeable buffers) is
//! dropped and counted as `drop_multi_segment`, never parsed. Last,
//! testpmd quits: virtio-user reports the link down by its link-state
//! change interrupt, which is how lbd watches this port (never polled).
//!
//! The NIC checksum path is not exercised here: virtio-net offers TCP/UDP
//! checksum offload but not the IPv4 header's, and lbd leaves only IPv4
//! header checksums to the NIC (NAT's TCP/UDP ones stay incremental: see
//! `pipeline/nat.rs`). `tunnel_e2e` runs it on `net_tap`, which offers it.
//!
//! Needs root (hugepages, hugetlbfs mount); see `common/mod.rs`. If
//! hugepages cannot be reserved the test fails and says so: nothing is
//! skipped.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// The lab prefix of this test (file prefixes, directory).
const PREFIX: &str = "vio";
/// 2 MiB pages both DPDK processes need together (lbd 128 MiB, testpmd
/// 128 MiB, with room for EAL's own allocations).
const PAGES: u64 = 256;
/// lbd's port MAC (given to virtio_user: it cannot change it later).
const LBD_MAC: &str = "02:00:00:00:76:01";

fn meminfo(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/meminfo"))
}

/// Hugepages reserved and a hugetlbfs of our own mounted for the test;
/// restored (the previous `nr_hugepages`) and unmounted on drop.
struct Hugepages {
    previous: u64,
    changed: bool,
    mount: PathBuf,
}

impl Hugepages {
    fn reserve(mount: &Path) -> Hugepages {
        let nr = Path::new("/proc/sys/vm/nr_hugepages");
        let previous: u64 = std::fs::read_to_string(nr).unwrap().trim().parse().unwrap();
        // Pages others hold stay theirs: ask for ours on top of them.
        let in_use = meminfo("HugePages_Total") - meminfo("HugePages_Free");
        let want = previous.max(in_use + PAGES);
        let mut guard = Hugepages {
            previous,
            changed: false,
            mount: mount.to_path_buf(),
        };
        if want != previous {
            std::fs::write(nr, want.to_string())
                .unwrap_or_else(|e| panic!("cannot reserve hugepages ({nr:?}): {e}"));
            guard.changed = true;
        }
        let free = meminfo("HugePages_Free");
        assert!(
            free >= PAGES,
            "the kernel reserved only {free} free 2 MiB hugepages of the {PAGES} this test needs \
             (nr_hugepages was {previous}, asked {want}); free memory, or reserve them at boot"
        );
        std::fs::create_dir_all(mount).unwrap();
        let (ok, out, err) =
            run(Command::new("mount").args(["-t", "hugetlbfs", "nodev", mount.to_str().unwrap()]));
        assert!(ok, "cannot mount hugetlbfs on {mount:?}: {out}{err}");
        guard
    }
}

impl Drop for Hugepages {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = std::fs::remove_dir(&self.mount);
        if self.changed {
            let _ = std::fs::write("/proc/sys/vm/nr_hugepages", self.previous.to_string());
        }
    }
}

/// dpdk-testpmd in interactive mode, driven through its stdin; killed on
/// drop.
struct Testpmd {
    child: Child,
    stdin: ChildStdin,
    out: Arc<Mutex<Vec<String>>>,
}

impl Testpmd {
    fn start(args: &[String]) -> Testpmd {
        let mut child = Command::new("dpdk-testpmd")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run dpdk-testpmd (apt-get install dpdk)");
        let out = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let stdin = child.stdin.take().unwrap();
        Testpmd { child, stdin, out }
    }

    fn cmd(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("testpmd stdin");
        self.stdin.flush().unwrap();
    }

    fn wait_output(&self, what: &str, cond: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if cond(&self.out.lock().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "testpmd: timed out waiting for {what}; its output:\n{}",
            self.out.lock().unwrap().join("\n")
        );
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status(socket: &Path) -> serde_json::Value {
    let out = Command::new(lbctl_bin())
        .arg("--socket")
        .arg(socket)
        .args(["--json", "status"])
        .output()
        .expect("run lbctl");
    assert!(out.status.success(), "lbctl status failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

fn worker_rx(st: &serde_json::Value) -> Vec<u64> {
    st["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["rx_frames"].as_u64().unwrap_or(0))
        .collect()
}

/// Wait until `cond` holds for lbd's status, at most 30 s.
fn wait_status(socket: &Path, what: &str, cond: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = status(socket);
        if cond(&st) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {st}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn virtio_user_with_hugepages_forwards_dr_on_both_queues() {
    if !may_run("virtio_user_with_hugepages_forwards_dr_on_both_queues") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("lbd-e2e-{PREFIX}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let huge_dir = dir.join("huge");
    let huge = Hugepages::reserve(&huge_dir);
    let free_before = meminfo("HugePages_Free");
    let vhost_sock = dir.join("vhost.sock");
    let ctl_sock = dir.join("lbd.sock");

    // The network: testpmd's vhost port (the vhost-user server).
    let huge_arg = huge_dir.display().to_string();
    let mut tp = Testpmd::start(&[
        "-l".into(),
        "0-1".into(),
        "--file-prefix".into(),
        format!("lbd-e2e-{PREFIX}-tp"),
        "--huge-dir".into(),
        huge_arg.clone(),
        "-m".into(),
        "128".into(),
        "--no-pci".into(),
        format!("--vdev=net_vhost0,iface={},queues=2", vhost_sock.display()),
        "--".into(),
        "-i".into(),
        "--rxq=2".into(),
        "--txq=2".into(),
        "--total-num-mbufs=8192".into(),
        format!("--eth-peer=0,{LBD_MAC}"),
        // Client 198.18.0.1 → VIP 198.18.0.100, UDP to port 9; with
        // --txonly-multi-flow the source port varies per packet.
        "--tx-ip=198.18.0.1,198.18.0.100".into(),
        "--tx-udp=1024,9".into(),
        "--txonly-multi-flow".into(),
    ]);
    tp.wait_output("testpmd's prompt", |o| {
        o.iter()
            .any(|l| l.contains("testpmd>") || l.contains("Port 0:"))
    });
    // Answer lbd's ARP requests (icmpecho replies to any ARP request
    // with the port's own MAC).
    tp.cmd("set fwd icmpecho");
    tp.cmd("start");

    let cfg = format!(
        r#"(
    eal: (lcores: Some("(0-2)@(0-1)"), memory_mb: Some(128), no_pci: true,
          file_prefix: Some("lbd-e2e-{PREFIX}"),
          extra_args: ["--huge-dir", "{huge_arg}", "--single-file-segments"]),
    ports: [(name: "lan0", device: "net_virtio_user0,path={sock},queues=2,mac={LBD_MAC}",
             address: "198.18.0.2/24")],
    workers: (queues_per_port: 2),
    conn_table: (capacity: 65536),
    control: (socket: "{ctl}"),
    metrics: (listen: None),
    services: [(vip: "198.18.0.100", port: 9, protocol: Udp,
                real_servers: [(address: "198.18.0.11")])],
)"#,
        sock = vhost_sock.display(),
        ctl = ctl_sock.display(),
    );
    let cfg_path = dir.join("lbd.ron");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lbd"));
    cmd.arg("--config").arg(&cfg_path);
    let lbd = spawn_lbd_command(cmd);
    lbd.wait_resolved(&["198.18.0.11"]);

    // lbd runs on hugepages: its EAL arguments have no --no-huge, and the
    // two processes took pages from our mount.
    lbd.wait_for(
        |_, e| {
            e.iter()
                .any(|l| l.contains("EAL arguments:") && !l.contains("--no-huge"))
        },
        "EAL arguments without --no-huge",
    );
    assert!(
        meminfo("HugePages_Free") < free_before,
        "no hugepages in use (free before {free_before}, now {})",
        meminfo("HugePages_Free")
    );

    // virtio-user raises link-state change interrupts: lbd takes the link
    // state from them (checked at the end, when the vhost side goes away).
    lbd.wait_for(
        |o, e| {
            o.iter().chain(e).any(|l| {
                l.contains("port lan0 (net_virtio_user0") && l.contains("link state by interrupt")
            })
        },
        "the port's link state by interrupt",
    );
    // What bring-up negotiated, in lbctl status.
    let st = status(&ctl_sock);
    let d = &st["ports"][0]["device_info"];
    assert_eq!(d["driver"], "net_virtio_user", "{st}");
    assert_eq!(d["rx_queues"], 2, "{st}");
    assert_eq!(d["tx_queues"], 2, "{st}");
    let offloads: Vec<&str> = d["offloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // virtio-net offers TCP/UDP checksum offload on TX (not IPv4's).
    assert!(offloads.contains(&"tx-tcp-csum"), "{st}");
    assert!(offloads.contains(&"tx-udp-csum"), "{st}");
    // virtio_user against vhost has no RSS: the peer picks the queue.
    assert_eq!(d["rss_key"], "none", "{st}");

    // Traffic: testpmd sends on both of its TX queues, which vhost puts on
    // lbd's two RX queues. Bounded by time: stopped as soon as both
    // workers forwarded, at most 30 s.
    tp.cmd("stop");
    tp.cmd("set fwd txonly");
    tp.cmd("start");
    wait_status(&ctl_sock, "DR forwarding on both workers", |st| {
        worker_rx(st).iter().all(|&n| n >= 100)
            && st["counters"]["forwarded_dr"].as_u64().unwrap_or(0) >= 200
    });
    tp.cmd("stop");

    // Frames larger than an mbuf: 2 × 1500-byte segments (a 3000-byte
    // frame) arrive in lbd chained over virtio's mergeable buffers; they
    // must be dropped as multi-segment, not parsed from the first segment.
    tp.cmd("set txpkts 1500,1500");
    tp.cmd("start");
    wait_status(&ctl_sock, "multi-segment frames dropped", |st| {
        st["counters"]["drop_multi_segment"].as_u64().unwrap_or(0) >= 10
    });
    tp.cmd("stop");

    let (code, text, err) = {
        let out = Command::new(lbctl_bin())
            .arg("--socket")
            .arg(&ctl_sock)
            .arg("status")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("lan0: net_virtio_user, socket")
            && text.contains("2 RX / 2 TX queues")
            && text.contains("offloads tx-tcp-csum tx-udp-csum"),
        "{text}"
    );
    assert!(text.contains("SHARE"), "{text}");
    println!("{text}");

    let st = status(&ctl_sock);
    let dropped_before_stop = st["counters"]["drop_multi_segment"].as_u64().unwrap();
    assert_eq!(st["ports"][0]["device_info"]["link_changes"], 0, "{st}");

    // testpmd quits: the vhost-user connection closes and virtio-user
    // reports the link down by interrupt (this port is never polled), which
    // lbd logs and counts.
    drop(tp);
    lbd.wait_for(
        |o, e| {
            o.iter()
                .chain(e)
                .any(|l| l.contains("port lan0: link down"))
        },
        "link down logged after the vhost side quit",
    );
    wait_status(&ctl_sock, "the link change counted", |st| {
        st["ports"][0]["device_info"]["link_changes"] == 1
    });
    assert!(
        !lbd.err
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("link-state interrupt not available")),
        "the callback was registered (else the port would be polled)"
    );
    let r = lbd.stop();
    assert!(r.get("forwarded_dr") >= 200);
    assert!(r.get("drop_multi_segment") >= dropped_before_stop);
    assert_eq!(r.get("drop_total"), r.get("drop_multi_segment"));
    // A jumbo frame read as its first segment would be a bad IPv4 length:
    // there must be none.
    for (name, v) in &r.counters {
        if name.starts_with("drop_") && name != "drop_multi_segment" && name != "drop_total" {
            assert!(
                *v == 0 || name == "drop_neigh_unresolved",
                "unexpected drops {name}={v}:\n{}",
                r.lines.join("\n")
            );
        }
    }
    assert!(r.port("lan0")["tx_packets"] > 0);
    drop(huge);
}
