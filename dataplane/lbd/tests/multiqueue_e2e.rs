//! End-to-end test of multi-queue operation: one port with two RX/TX queue
//! pairs (`net_af_packet` `qpairs=2`: the kernel spreads flows over two
//! sockets by hash, as RSS spreads them over NIC queues), one pinned worker
//! per queue. See `common/mod.rs` for the harness and the root requirement.

mod common;

use common::*;

#[test]
fn two_queues_two_workers_serve_every_request() {
    if !may_run("two_queues_two_workers_serve_every_request") {
        return;
    }
    let lab = Lab::up("mq2", 2);
    let lbd = lab.start_lbd_with(
        r#"(vip: "198.18.0.100", port: 80, scheduler: Wlc, real_servers: [
            (address: "198.18.0.11"), (address: "198.18.0.12")])"#,
        &format!(
            r#"eal: (lcores: Some("(0-2)@(0-1)"), no_huge: true, memory_mb: Some(512), no_pci: true,
                     file_prefix: Some("lbd-e2e-{}")),
               ports: [(name: "lan0", device: "net_af_packet0,iface=eth0,qpairs=2", address: "198.18.0.2/24")],
               workers: (queues_per_port: 2),"#,
            lab.prefix
        ),
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    // Many connections (different client ports, so different flow hashes).
    let n = 40;
    let first_port = 41000;
    let mut answers = std::collections::HashMap::new();
    for i in 0..n {
        let port = (first_port + i).to_string();
        let (ok, out, err) = lab.curl_args(&["--local-port", &port], "http://198.18.0.100/");
        assert!(ok, "curl failed: {err}");
        *answers.entry(out.trim().to_string()).or_insert(0) += 1;
    }
    assert_eq!(
        answers.values().sum::<i32>(),
        n,
        "every request answered: {answers:?}"
    );
    assert!(answers.len() == 2, "both real servers used: {answers:?}");
    // While connections are still tracked, both workers hold some.
    let v: serde_json::Value = serde_json::from_str(&lab.lbctl_ok(&["--json", "status"])).unwrap();
    let workers = v["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{v}");
    // A router's "fragmentation needed" about each connection's replies.
    // The kernel's fanout hash (like RSS) sees only the errors' outer
    // addresses, all the same, so they all land on one queue while the
    // connections are spread over both: the worker without the connection
    // must hand the error to the other.
    let (ok, out, err) = lab.exec(
        "client",
        &[
            "/usr/bin/python3",
            "-c",
            FRAG_NEEDED_MANY_PY,
            "eth0",
            &lab.env["LAB_DIR_MAC"],
            &lab.env["LAB_CLIENT_IP"],
            "198.18.0.100",
            &first_port.to_string(),
            &n.to_string(),
        ],
    );
    assert!(ok, "scapy failed:\n{out}\n{err}");
    lbd.wait_for(
        |_, _| {
            let (_, out, _) = lab.lbctl(&["--json", "status"]);
            serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| v["counters"]["icmp_error_forwarded"].as_u64())
                .is_some_and(|c| c >= n as u64)
        },
        "every ICMP error relayed",
    );
    let r = lbd.stop();
    let lines: Vec<&String> = r
        .lines
        .iter()
        .filter(|l| l.starts_with("worker "))
        .collect();
    assert_eq!(lines.len(), 2, "{:?}", r.lines);
    for l in &lines {
        let busy: u64 = l
            .split_whitespace()
            .find_map(|w| w.strip_prefix("busy_polls="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(busy > 0, "each queue's worker received traffic: {l}");
    }
    let conns: u64 = lines
        .iter()
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("conns="))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        conns, n as u64,
        "each connection tracked by exactly one worker"
    );
    assert_eq!(r.get("conn_created"), n as u64);
    assert_eq!(r.get("drop_tcp_no_conn"), 0, "no flow split across workers");
    assert_eq!(r.get("icmp_error_forwarded"), n as u64);
    assert_eq!(r.get("drop_icmp_error_no_conn"), 0);
    assert!(
        r.get("icmp_error_handed_off") > 0,
        "some errors reached a worker without the connection: {:?}",
        r.lines
    );
}

/// Sends one ICMP "fragmentation needed" to the VIP per connection, quoting
/// a reply VIP:80 → client:PORT for PORT in FIRST..FIRST+N. Arguments:
/// iface, director MAC, client IP, VIP, FIRST, N.
const FRAG_NEEDED_MANY_PY: &str = r#"
import sys
from scapy.all import Ether, IP, ICMP, TCP, sendp
iface, dmac, client, vip, first, n = sys.argv[1:7]
frames = []
for port in range(int(first), int(first) + int(n)):
    quoted = IP(src=vip, dst=client, flags="DF", ttl=63) / TCP(sport=80, dport=port, flags="A")
    frames.append(Ether(dst=dmac) / IP(src=client, dst=vip) / ICMP(type=3, code=4, nexthopmtu=1400) / quoted)
sendp(frames, iface=iface, verbose=False)
"#;
