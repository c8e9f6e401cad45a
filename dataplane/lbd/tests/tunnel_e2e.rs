//! End-to-end tests of IPIP tunnel forwarding: the real `lbd` on
//! `net_af_packet` in a namespace lab whose real servers run the user-space
//! decapsulator (`scripts/lab up --decap`, scripts/ipip-decap.py: the lab
//! kernel has no ipip module). See `common/mod.rs` for the harness and the
//! root requirement.

mod common;

use common::*;
use std::time::{Duration, Instant};

const TUNNEL_RR: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
    (address: "198.18.0.11", forward: Tunnel), (address: "198.18.0.12", forward: Tunnel)])"#;

/// Real server `i`'s decapsulator counts (rewritten every 0.2 s).
fn decap_counts(lab: &Lab, i: usize) -> serde_json::Value {
    let path = format!("/run/lbd-lab/{}/rs{i}.decap.json", lab.prefix);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

/// Wait until real server `i`'s decapsulator has counted at least `n`
/// packets; its counts.
fn wait_decap(lab: &Lab, i: usize, n: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = decap_counts(lab, i);
        if c["packets"].as_u64().unwrap_or(0) >= n || Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tunnel_rr_alternates_and_real_servers_decapsulate() {
    if !may_run("tunnel_rr_alternates_and_real_servers_decapsulate") {
        return;
    }
    let lab = Lab::up_with("e2tn", 2, &["--decap"]);
    let lbd = lab.start_lbd(TUNNEL_RR);
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    let answers: Vec<String> = (0..10)
        .map(|_| lab.curl(&format!("http://{VIP}/")))
        .collect();
    eprintln!("answers: {answers:?}");
    for pair in answers.windows(2) {
        assert_ne!(pair[0], pair[1], "round robin must alternate: {answers:?}");
    }
    assert!(
        answers.iter().all(|a| a == "rs1" || a == "rs2"),
        "{answers:?}"
    );
    // Each real server decapsulated its five connections' packets (at
    // least SYN, ACK, request, FIN, ACK each), all from the director's
    // address to its own.
    for (i, rs) in [(1, "198.18.0.11"), (2, "198.18.0.12")] {
        let c = wait_decap(&lab, i, 15);
        eprintln!("rs{i} decapsulator: {c}");
        assert!(c["packets"].as_u64().unwrap() >= 15, "rs{i}: {c}");
        let outer = c["outer"].as_object().unwrap();
        assert_eq!(outer.len(), 1, "rs{i}: one outer pair only: {c}");
        let pair = format!("198.18.0.2>{rs}");
        assert_eq!(
            outer.get(&pair).and_then(|v| v.as_u64()),
            c["packets"].as_u64(),
            "rs{i}: {c}"
        );
        assert_eq!(c["ignored"].as_u64(), Some(0), "rs{i}: {c}");
    }
    let (_, list, _) = lab.lbctl(&["list"]);
    assert!(
        list.contains("Tunnel"),
        "lbctl list shows the method:\n{list}"
    );
    let r = lbd.stop();
    assert_eq!(r.get("conn_created"), 10);
    assert!(r.get("forwarded_tunnel") >= 30, "SYN, ACK, request, ...");
    assert_eq!(r.get("forwarded_dr"), 0);
    assert_eq!(r.get("drop_tunnel_no_headroom"), 0);
    assert_eq!(r.real_server("198.18.0.11")["conns"], "5");
    assert_eq!(r.real_server("198.18.0.12")["conns"], "5");
}

#[test]
fn tunnel_path_mtu_discovery() {
    if !may_run("tunnel_path_mtu_discovery") {
        return;
    }
    let lab = Lab::up_with("e2tm", 2, &["--decap"]);
    let lbd = lab.start_lbd_with(
        TUNNEL_RR,
        r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24", mtu: 1000)],"#,
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    let route = |lab: &Lab| {
        let (ok, out, err) = lab.exec("client", &["ip", "route", "get", VIP]);
        assert!(ok, "ip route get: {err}");
        out
    };
    assert!(!route(&lab).contains("mtu"), "{}", route(&lab));

    // A request larger than the port MTU: a 3000-byte POST body. The
    // client's TCP sends full-size segments with DF; the director answers
    // the first one with "fragmentation needed". Whatever the server makes
    // of a POST (the lab server does not implement it), the client's kernel
    // has learnt the path MTU.
    let body = "b".repeat(3000);
    let (ok, out, err) = lab.exec(
        "client",
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-d",
            &body,
            &format!("http://{VIP}/"),
        ],
    );
    eprintln!("POST: ok={ok} code={out} {err}");
    let learnt = route(&lab);
    eprintln!("client: ip route get {VIP}: {learnt}");
    assert!(
        learnt.contains("mtu 980"),
        "the client learnt the path MTU 1000 - 20: {learnt}"
    );

    // A large request now goes through in segments that fit the tunnel: a
    // GET with a 1500-byte header (the lab server answers GET).
    let pad = format!("X-Pad: {}", "p".repeat(1500));
    let (ok, out, err) = lab.exec(
        "client",
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-H",
            &pad,
            &format!("http://{VIP}/"),
        ],
    );
    assert!(ok, "large GET through the tunnel failed: {err}");
    let who = out.trim();
    assert!(who == "rs1" || who == "rs2", "{out}");

    let r = lbd.stop();
    assert!(
        r.get("icmp_frag_needed_sent") > 0,
        "the director sent fragmentation needed"
    );
    assert_eq!(r.get("drop_tunnel_too_big"), 0, "TCP sets DF");
    assert!(r.get("forwarded_tunnel") > 0);
}

/// Wait until `lbctl status --json` of the lab's lbd satisfies `cond` (at
/// most 20 s); the status.
fn wait_status(
    lab: &Lab,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st: serde_json::Value =
            serde_json::from_str(&lab.lbctl_ok(&["--json", "status"])).expect("status JSON");
        if cond(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The tunnel through a port whose "NIC" computes checksums on transmit:
/// DPDK's `net_tap` offers IPv4/TCP/UDP checksum offload and computes what
/// the mbuf's flags ask (in its PMD). The tap interface is bridged to the
/// director's veth in its namespace, so the lab sees lbd as before. A wrong
/// outer header checksum (offload flags, header lengths or the zeroed
/// field) would make the real servers' kernels drop every tunnelled packet:
/// curl through the tunnel proves the offload path right. Then the tap's
/// link goes down and up: logged and counted (by polling: net_tap sets the
/// LSC flag but never calls back).
#[test]
fn tunnel_outer_checksum_by_the_nic() {
    if !may_run("tunnel_outer_checksum_by_the_nic") {
        return;
    }
    let lab = Lab::up_with("e2to", 2, &["--decap"]);
    let lbd = lab.start_lbd_with(
        TUNNEL_RR,
        r#"ports: [(name: "lan0", device: "net_tap0,iface=lbdtap0,mac=02:00:c6:12:00:22", address: "198.18.0.2/24")],"#,
    );
    // lbd's tap and the lab's veth on one bridge in the director namespace:
    // the lab's ingress drop on eth0 (which keeps the namespace's kernel
    // out of af_packet's way) goes, bridge netfilter is off (it would judge
    // the frames, not forward them), and the tap's kernel side gets a MAC
    // of its own (with lbd's, the bridge would keep lbd's frames for itself).
    for cmd in [
        "nft delete table netdev lbd_lab_eth0",
        "sysctl -qw net.bridge.bridge-nf-call-iptables=0",
        "ip link set lbdtap0 address 02:00:c6:12:00:23",
        "ip link add tapbr type bridge",
        "ip link set eth0 master tapbr",
        "ip link set lbdtap0 master tapbr",
        "ip link set tapbr up",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        let (ok, _, err) = lab.exec("dir", &args);
        // br_netfilter may not be loaded: then there is no such sysctl.
        assert!(ok || cmd.starts_with("sysctl"), "{cmd}: {err}");
    }
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    lbd.wait_for(
        |o, e| {
            o.iter()
                .chain(e)
                .any(|l| l.contains("port lan0 (net_tap0") && l.contains("link state by polling"))
        },
        "the tap port's link state by polling",
    );
    let st = wait_status(&lab, "status", |_| true);
    let offloads = st["ports"][0]["device_info"]["offloads"].to_string();
    assert!(offloads.contains("tx-ipv4-csum"), "{st}");

    let answers: Vec<String> = (0..6)
        .map(|_| lab.curl(&format!("http://{VIP}/")))
        .collect();
    assert!(
        answers.iter().all(|a| a == "rs1" || a == "rs2") && answers[0] != answers[1],
        "{answers:?}"
    );
    for i in [1, 2] {
        let c = wait_decap(&lab, i, 9);
        assert!(c["packets"].as_u64().unwrap() >= 9, "rs{i}: {c}");
    }

    // Link down and up: each change logged and counted.
    let changes = |st: &serde_json::Value| {
        st["ports"][0]["device_info"]["link_changes"]
            .as_u64()
            .unwrap_or(0)
    };
    assert_eq!(changes(&st), 0, "{st}");
    let (ok, _, err) = lab.exec("dir", &["ip", "link", "set", "lbdtap0", "down"]);
    assert!(ok, "{err}");
    wait_status(&lab, "a link change", |st| changes(st) >= 1);
    lbd.wait_for(
        |o, e| {
            o.iter()
                .chain(e)
                .any(|l| l.contains("port lan0: link down"))
        },
        "link down logged",
    );
    let (ok, _, err) = lab.exec("dir", &["ip", "link", "set", "lbdtap0", "up"]);
    assert!(ok, "{err}");
    wait_status(&lab, "the second link change", |st| changes(st) >= 2);
    lbd.wait_for(
        |o, e| o.iter().chain(e).any(|l| l.contains("port lan0: link up")),
        "link up logged",
    );

    let r = lbd.stop();
    assert!(r.get("forwarded_tunnel") >= 18, "SYN, ACK, request, ...");
    assert_eq!(r.get("conn_created"), 6);
}
