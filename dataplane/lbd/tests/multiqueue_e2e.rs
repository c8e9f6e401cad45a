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
    let mut answers = std::collections::HashMap::new();
    for _ in 0..n {
        *answers.entry(lab.curl("http://198.18.0.100/")).or_insert(0) += 1;
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
}
