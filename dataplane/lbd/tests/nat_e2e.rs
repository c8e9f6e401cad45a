//! End-to-end tests of NAT forwarding (masquerading, `ipvsadm -m`): the real
//! `lbd` with two `net_af_packet` ports in a two-armed namespace lab
//! (`scripts/lab up --nat`):
//!
//! ```text
//!  client 198.18.0.1 ──br0── eth0 "ext" 198.18.0.2 [lbd] "int" 198.19.0.1 eth1 ──br1── rsI 198.19.0.(10+I)
//!                                VIP 198.18.0.100                                     default via 198.19.0.1
//! ```
//!
//! The real servers are plain servers (no VIP, no ARP sysctls) whose default
//! gateway is the director: requests are rewritten to the real server's
//! address (and port), replies back to come from the VIP.
//!
//! EAL runs three lcores on the machine's two CPUs (`(0-2)@(0-1)`): the main
//! lcore and one worker per port. The external port's worker receives every
//! request and creates the connections; the internal port's worker receives
//! every reply, so each reply is found by another worker than the one that
//! created its connection, through the shared connection table. Every test
//! checks that in the final report (both workers busy, `forwarded_nat` and
//! `forwarded_nat_reply` both counted, both ports receiving and sending).
//!
//! See `common/mod.rs` for the harness and the root requirement.

mod common;

use common::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

const CLIENT: &str = "198.18.0.1";
const RS1: &str = "198.19.0.11";
const RS2: &str = "198.19.0.12";

/// Port 80 round robin over both real servers; port 8000 mapped to rs1's
/// port 8080; UDP 5353 round robin over both.
const NAT_SERVICES: &str = r#"
  (vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
     (address: "198.19.0.11", forward: Nat), (address: "198.19.0.12", forward: Nat)]),
  (vip: "198.18.0.100", port: 8000, scheduler: Rr, real_servers: [
     (address: "198.19.0.11", port: Some(8080), forward: Nat)]),
  (vip: "198.18.0.100", port: 5353, protocol: Udp, scheduler: Rr, real_servers: [
     (address: "198.19.0.11", forward: Nat), (address: "198.19.0.12", forward: Nat)]),
"#;

/// The director's two DPDK devices (external on eth0, internal on eth1).
///
/// `net_af_packet`, as in the other labs, unless `LBD_E2E_NAT_PMD=pcap`:
/// then `net_pcap` with one RX queue that captures incoming frames only and
/// two TX queues. lbd gives every port one TX queue per worker (here two),
/// and `net_af_packet` offers one unless `qpairs=2`; but each of its queue
/// pairs is a socket in one PACKET_FANOUT group, so with `qpairs=2` the
/// frames hashed to the second socket are never read (lbd polls one RX
/// queue per port): ARP replies get lost there and nothing works.
fn nat_devices() -> [String; 2] {
    let pcap = std::env::var("LBD_E2E_NAT_PMD").as_deref() == Ok("pcap");
    ["eth0", "eth1"]
        .iter()
        .enumerate()
        .map(|(i, ifc)| {
            if pcap {
                format!("net_pcap{i},rx_iface_in={ifc},tx_iface={ifc},tx_iface={ifc},phy_mac=1")
            } else {
                format!("net_af_packet{i},iface={ifc}")
            }
        })
        .collect::<Vec<_>>()
        .try_into()
        .unwrap()
}

/// The NAT lab's EAL (a worker per port on two CPUs) and its two ports.
fn nat_sections(lab: &Lab) -> String {
    let [ext, int] = nat_devices();
    format!(
        r#"eal: (lcores: Some("(0-2)@(0-1)"), no_huge: true, memory_mb: Some(512), no_pci: true, file_prefix: Some("lbd-e2e-{}")),
    ports: [
      (name: "ext", device: "{ext}", address: "198.18.0.2/24"),
      (name: "int", device: "{int}", address: "198.19.0.1/24"),
    ],"#,
        lab.prefix
    )
}

/// Start lbd with the NAT services and wait until both real servers'
/// MACs are resolved (on the internal port).
fn start_nat(lab: &Lab) -> Lbd {
    let lbd = lab.start_lbd_with(NAT_SERVICES, &nat_sections(lab));
    lbd.wait_resolved(&[RS1, RS2]);
    lbd
}

/// The lines of a lab server's log in the lab's state dir, waiting (up to
/// 5 s) until it has at least `n` lines: the UDP echo server writes its line
/// after answering, so the client may be faster than the log.
fn log_lines(lab: &Lab, file: &str, n: usize) -> Vec<String> {
    let path = lab.state_dir().join(file);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = read_lines(&path);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Field `i` (whitespace-separated) of each line.
fn field(lines: &[String], i: usize) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.split_whitespace().nth(i).unwrap_or("").to_string())
        .collect()
}

/// The real server line `  -> ADDR:PORT ...` of the report (ADDR:PORT
/// exactly: one address serves several services here).
fn rs_line(r: &Report, addr_port: &str) -> HashMap<String, String> {
    let prefix = format!("-> {addr_port} ");
    let line = r
        .lines
        .iter()
        .find(|l| l.trim_start().starts_with(&prefix))
        .unwrap_or_else(|| {
            panic!(
                "no real server {addr_port} in report:\n{}",
                r.lines.join("\n")
            )
        });
    line.split_whitespace()
        .filter_map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Drop counters that are not zero, for failure messages.
fn nonzero_drops(r: &Report) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = r
        .counters
        .iter()
        .filter(|(k, &n)| k.starts_with("drop_") && k.as_str() != "drop_total" && n > 0)
        .map(|(k, &n)| (k.clone(), n))
        .collect();
    v.sort();
    v
}

/// The multi-queue proof and the NAT counters, common to every test:
/// requests created connections on the external port's worker, replies were
/// found and rewritten by the internal port's worker.
fn assert_nat_report(r: &Report, min_requests: u64, min_replies: u64) {
    let all = r.lines.join("\n");
    for l in r
        .lines
        .iter()
        .filter(|l| l.starts_with("worker ") || l.starts_with("port "))
    {
        eprintln!("report: {l}");
    }
    let workers = r.workers();
    assert_eq!(
        workers.len(),
        2,
        "one worker per port (ext, int) expected:\n{all}"
    );
    for (i, w) in workers.iter().enumerate() {
        let busy = w.get("busy_polls").copied().unwrap_or(0);
        assert!(busy > 0, "worker {i} processed no packets:\n{all}");
    }
    // Both ports received and sent: requests in on ext and out on int,
    // replies in on int and out on ext.
    for name in ["ext", "int"] {
        let p = r.port(name);
        assert!(p["rx_packets"] > 0, "port {name} received nothing:\n{all}");
        assert!(p["tx_packets"] > 0, "port {name} sent nothing:\n{all}");
    }
    let (fwd, rep) = (r.get("forwarded_nat"), r.get("forwarded_nat_reply"));
    eprintln!("forwarded_nat={fwd} forwarded_nat_reply={rep}");
    assert!(
        fwd >= min_requests,
        "forwarded_nat {fwd} < {min_requests}:\n{all}"
    );
    assert!(
        rep >= min_replies,
        "forwarded_nat_reply {rep} < {min_replies}:\n{all}"
    );
    assert_eq!(r.get("forwarded_dr"), 0, "{all}");
    assert_eq!(r.get("forwarded_tunnel"), 0, "{all}");
    // No drops but lab background noise the director is right to refuse:
    // ARP requests for addresses that are not its own, and unicast frames
    // for other MACs that a bridge floods to its promiscuous ports before it
    // has learnt where they go.
    let drops = nonzero_drops(r);
    eprintln!("nonzero drops: {drops:?}");
    let explained = r.get("drop_arp_not_for_us") + r.get("drop_not_our_mac");
    assert_eq!(
        r.get("drop_total") - explained,
        0,
        "unexplained drops {drops:?}:\n{all}"
    );
}

#[test]
fn nat_http_round_robin_and_client_address_preserved() {
    if !may_run("nat_http_round_robin_and_client_address_preserved") {
        return;
    }
    let lab = Lab::up_nat("n2rr", 2);
    let lbd = start_nat(&lab);
    // curl connects to the VIP: an answer at all means the replies came
    // back from VIP:80 (the client has no route to 198.19.0.0/24).
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
    // Each real server saw its five requests coming from the client's own
    // address: NAT rewrites the destination only.
    for rs in ["rs1", "rs2"] {
        let lines = log_lines(&lab, &format!("{rs}.access.log"), 5);
        eprintln!("{rs} access log: {lines:?}");
        assert_eq!(lines.len(), 5, "{rs}: {lines:?}");
        assert!(
            field(&lines, 0).iter().all(|p| p == CLIENT),
            "{rs} must see the client {CLIENT} as its peer: {lines:?}"
        );
        let alt = log_lines(&lab, &format!("{rs}.8080.access.log"), 0);
        assert!(alt.is_empty(), "{rs}:8080 got requests: {alt:?}");
    }
    let list = lab.lbctl_ok(&["list"]);
    assert!(
        list.contains("Masq"),
        "lbctl list shows the method:\n{list}"
    );
    // The replies went through the director: ipvsadm --stats counts them
    // as OutPkts/OutBytes, per real server and per service.
    let stats: serde_json::Value =
        serde_json::from_str(&lab.lbctl_ok(&["--json", "list", "--stats"])).unwrap();
    let svc = &stats[0];
    assert!(
        svc["counters"]["packets_out"].as_u64().unwrap_or(0) >= 30
            && svc["counters"]["bytes_out"].as_u64().unwrap_or(0) > 0,
        "service OutPkts/OutBytes count NAT replies: {svc}"
    );
    for r in svc["reals"].as_array().unwrap() {
        assert!(
            r["counters"]["packets_out"].as_u64().unwrap_or(0) >= 15,
            "real server OutPkts counts its replies: {r}"
        );
    }
    let r = lbd.stop();
    assert_eq!(r.get("conn_created"), 10, "{}", r.lines.join("\n"));
    assert_eq!(rs_line(&r, &format!("{RS1}:80"))["conns"], "5");
    assert_eq!(rs_line(&r, &format!("{RS2}:80"))["conns"], "5");
    // SYN, ACK, request, FIN, ACK ... per connection, and at least
    // SYN-ACK, response, FIN back.
    assert_nat_report(&r, 30, 30);
}

#[test]
fn nat_port_mapping() {
    if !may_run("nat_port_mapping") {
        return;
    }
    let lab = Lab::up_nat("n2pm", 2);
    let lbd = start_nat(&lab);
    for _ in 0..3 {
        assert_eq!(lab.curl(&format!("http://{VIP}:8000/")), "rs1");
    }
    // Served by rs1's port 8080 server, never by its port 80 one.
    let lines = log_lines(&lab, "rs1.8080.access.log", 3);
    eprintln!("rs1:8080 access log: {lines:?}");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        field(&lines, 0).iter().all(|p| p == CLIENT),
        "rs1:8080 must see the client {CLIENT} as its peer: {lines:?}"
    );
    for file in ["rs1.access.log", "rs2.access.log", "rs2.8080.access.log"] {
        let other = log_lines(&lab, file, 0);
        assert!(other.is_empty(), "{file}: {other:?}");
    }
    let r = lbd.stop();
    assert_eq!(r.get("conn_created"), 3, "{}", r.lines.join("\n"));
    assert_eq!(rs_line(&r, &format!("{RS1}:8080"))["conns"], "3");
    assert_nat_report(&r, 9, 9);
}

/// A small UDP client run in the client namespace: one datagram per source
/// port (40001.., so every request is a new flow), `ping-N` as payload, a
/// 3 s timeout each; prints `SPORT FROM_IP:FROM_PORT REPLY` or
/// `SPORT timeout`.
const UDP_CLIENT: &str = r#"
import socket, sys
vip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    sport = 40001 + i
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", sport))
    s.settimeout(3.0)
    s.sendto(("ping-%d" % i).encode(), (vip, port))
    try:
        data, peer = s.recvfrom(2048)
        print("%d %s:%d %s" % (sport, peer[0], peer[1], data.decode(errors="replace")))
    except socket.timeout:
        print("%d timeout" % sport)
    s.close()
"#;

#[test]
fn nat_udp_service() {
    if !may_run("nat_udp_service") {
        return;
    }
    let lab = Lab::up_nat("n2udp", 2);
    let lbd = start_nat(&lab);
    let n = 6;
    let (ok, out, err) = lab.exec(
        "client",
        &["python3", "-c", UDP_CLIENT, VIP, "5353", &n.to_string()],
    );
    assert!(ok, "UDP client failed:\n{out}\n{err}");
    eprintln!("UDP answers:\n{out}");
    let mut servers = Vec::new();
    for (i, line) in out.lines().enumerate() {
        let parts: Vec<&str> = line.splitn(3, ' ').collect();
        assert_eq!(parts.len(), 3, "no answer: {line}\n{out}");
        assert_eq!(
            parts[1],
            format!("{VIP}:5353"),
            "the answer must come from the VIP: {line}"
        );
        let (name, payload) = parts[2]
            .split_once(':')
            .unwrap_or_else(|| panic!("bad answer {line}"));
        assert_eq!(payload, format!("ping-{i}"), "{line}");
        assert!(name == "rs1" || name == "rs2", "{line}");
        servers.push(name.to_string());
    }
    assert_eq!(servers.len(), n, "{out}");
    for pair in servers.windows(2) {
        assert_ne!(pair[0], pair[1], "round robin must alternate: {servers:?}");
    }
    // Each echo server saw the client's address and port, on its own
    // address (the destination was rewritten from the VIP).
    for (rs, ip) in [("rs1", RS1), ("rs2", RS2)] {
        let lines = log_lines(&lab, &format!("{rs}.udp-peers.log"), n / 2);
        eprintln!("{rs} UDP peers: {lines:?}");
        assert_eq!(lines.len(), n / 2, "{rs}: {lines:?}");
        assert!(field(&lines, 0).iter().all(|p| p == CLIENT), "{lines:?}");
        assert!(field(&lines, 2).iter().all(|a| a == ip), "{lines:?}");
        assert!(
            field(&lines, 1).iter().all(|p| p
                .parse::<u16>()
                .is_ok_and(|p| (40001..40001 + n as u16).contains(&p))),
            "the client's source ports are kept: {lines:?}"
        );
    }
    // The flows are listed as UDP connections to VIP:5353.
    let v: serde_json::Value =
        serde_json::from_str(&lab.lbctl_ok(&["--json", "conns", "--udp"])).unwrap();
    let conns = v["conns"].as_array().unwrap();
    for i in 0..n {
        let sport = 40001 + i as u64;
        assert!(
            conns.iter().any(|c| c["client"] == CLIENT
                && c["client_port"].as_u64() == Some(sport)
                && c["vip"] == VIP
                && c["vport"].as_u64() == Some(5353)
                && c["real_port"].as_u64() == Some(5353)
                && (c["real"] == RS1 || c["real"] == RS2)),
            "no UDP connection from {CLIENT}:{sport}: {v}"
        );
    }
    assert!(
        conns.iter().all(|c| c["vport"].as_u64() == Some(5353)),
        "--udp lists UDP flows only: {v}"
    );
    let text = lab.lbctl_ok(&["conns", "--udp"]);
    eprintln!("{text}");
    assert!(text.contains(&format!("{VIP}:5353")), "{text}");
    let r = lbd.stop();
    assert_eq!(r.get("conn_created"), n as u64, "{}", r.lines.join("\n"));
    assert_eq!(rs_line(&r, &format!("{RS1}:5353"))["conns"], "3");
    assert_eq!(rs_line(&r, &format!("{RS2}:5353"))["conns"], "3");
    assert_nat_report(&r, n as u64, n as u64);
}

#[test]
fn nat_keepalive_many_requests_one_connection() {
    if !may_run("nat_keepalive_many_requests_one_connection") {
        return;
    }
    let lab = Lab::up_nat("n2ka", 2);
    let lbd = start_nat(&lab);
    let names = lab.keepalive_requests(20);
    // The server saw 20 requests on one connection: one client address and
    // port (NAT keeps the client's port).
    let rs = &names[0];
    let lines = log_lines(&lab, &format!("{rs}.access.log"), 20);
    assert_eq!(lines.len(), 20, "{rs}: {lines:?}");
    assert!(field(&lines, 0).iter().all(|p| p == CLIENT), "{lines:?}");
    let ports = field(&lines, 1);
    assert!(
        ports.iter().all(|p| *p == ports[0]),
        "one client port: {lines:?}"
    );
    let r = lbd.stop();
    assert_eq!(r.get("conn_created"), 1, "{}", r.lines.join("\n"));
    // 20 requests and 20 responses at least.
    assert_nat_report(&r, 20, 20);
}

/// Both NAT directions with the IPv4 header checksum computed by the "NIC":
/// lbd's ports are DPDK `net_tap` devices, which offer IPv4/TCP/UDP
/// checksum offload and compute what the mbuf's flags ask (in the PMD),
/// each tap bridged to the director's veth of its segment in the director
/// namespace. lbd leaves the rewritten IPv4 header's checksum to the NIC
/// (TCP's stays incremental): a wrong offload request would make the client
/// and the real servers drop every rewritten packet, so answered requests
/// prove it right.
#[test]
fn nat_ipv4_checksum_by_the_nic() {
    if !may_run("nat_ipv4_checksum_by_the_nic") {
        return;
    }
    let lab = Lab::up_nat("n2ck", 2);
    let sections = format!(
        r#"eal: (lcores: Some("(0-2)@(0-1)"), no_huge: true, memory_mb: Some(512), no_pci: true, file_prefix: Some("lbd-e2e-{}")),
    ports: [
      (name: "ext", device: "net_tap0,iface=lbdtap0,mac=02:00:c6:12:00:22", address: "198.18.0.2/24"),
      (name: "int", device: "net_tap1,iface=lbdtap1,mac=02:00:c6:13:00:22", address: "198.19.0.1/24"),
    ],"#,
        lab.prefix
    );
    let lbd = lab.start_lbd_with(NAT_SERVICES, &sections);
    // Each tap on a bridge with its segment's veth: the lab's ingress drop
    // on the veth (it keeps the namespace's kernel out of af_packet's way)
    // goes, bridge netfilter is off (it would judge the frames, not forward
    // them), and the tap's kernel side gets a MAC of its own (with lbd's,
    // the bridge would keep lbd's frames for itself).
    for (veth, tap, kernel_mac) in [
        ("eth0", "lbdtap0", "02:00:c6:12:00:23"),
        ("eth1", "lbdtap1", "02:00:c6:13:00:23"),
    ] {
        let br = format!("br{tap}");
        let table = format!("lbd_lab_{veth}");
        for cmd in [
            vec!["nft", "delete", "table", "netdev", &table],
            vec!["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"],
            vec!["ip", "link", "set", tap, "address", kernel_mac],
            vec!["ip", "link", "add", &br, "type", "bridge"],
            vec!["ip", "link", "set", veth, "master", &br],
            vec!["ip", "link", "set", tap, "master", &br],
            vec!["ip", "link", "set", &br, "up"],
        ] {
            let (ok, _, err) = lab.exec("dir", &cmd);
            // br_netfilter may not be loaded: then there is no such sysctl.
            assert!(ok || cmd[0] == "sysctl", "{cmd:?}: {err}");
        }
    }
    lbd.wait_resolved(&[RS1, RS2]);
    let st: serde_json::Value = serde_json::from_str(&lab.lbctl_ok(&["--json", "status"])).unwrap();
    for p in 0..2 {
        let offloads = st["ports"][p]["device_info"]["offloads"].to_string();
        assert!(offloads.contains("tx-ipv4-csum"), "{st}");
    }
    let answers: Vec<String> = (0..6)
        .map(|_| lab.curl(&format!("http://{VIP}/")))
        .collect();
    assert!(
        answers.iter().all(|a| a == "rs1" || a == "rs2") && answers[0] != answers[1],
        "{answers:?}"
    );
    let r = lbd.stop();
    assert!(r.get("forwarded_nat") >= 18, "{}", r.lines.join("\n"));
    assert!(r.get("forwarded_nat_reply") >= 18, "{}", r.lines.join("\n"));
    assert_eq!(r.get("conn_created"), 6);
}
