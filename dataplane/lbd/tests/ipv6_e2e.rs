//! End-to-end tests over IPv6: the real `lbd` on `net_af_packet` in a
//! dual-stack lab (`scripts/lab up --ipv6`: 2001:db8::/64, real servers
//! with the IPv6 VIP on `lo`, HTTP and UDP echo on IPv6). See
//! `common/mod.rs` for the harness and the root requirement.
//!
//! Every wait is for a condition (a neighbour resolved, a VRRP state, a
//! counter), bounded in time; none sleeps as a synchronisation.

mod common;

use common::*;
use std::time::{Duration, Instant};

const VIP6: &str = "2001:db8::100";
const RS1_6: &str = "2001:db8::11";
const RS2_6: &str = "2001:db8::12";

/// The director's port with its IPv6 address (and IPv4 one, unused or for
/// dual-stack services).
const PORTS6: &str = r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
    address: "198.18.0.2/24", address6: Some("2001:db8::2/64"))],"#;

/// A DR service on [VIP6]:80 with scheduler `sched` and real servers of
/// weights `w1`, `w2`.
fn dr_service(sched: &str, w1: u32, w2: u32) -> String {
    format!(
        r#"(vip: "{VIP6}", port: 80, scheduler: {sched}, real_servers: [
            (address: "{RS1_6}", weight: {w1}), (address: "{RS2_6}", weight: {w2})])"#
    )
}

/// The URL of the IPv6 VIP (bracketed; curl is told not to glob).
fn url6() -> String {
    format!("http://[{VIP6}]/")
}

/// One HTTP GET to the IPv6 VIP from the client: the body (the real
/// server's name).
fn get6(lab: &Lab) -> String {
    let (ok, out, err) = lab.curl_args(&["-g", "-6"], &url6());
    assert!(ok, "curl {} failed: {err}", url6());
    out.trim().to_string()
}

/// Start lbd in the IPv6 lab with `services` and extra `sections`, and wait
/// until both IPv6 real servers are resolved (by Neighbour Solicitation).
fn start6(lab: &Lab, services: &str, sections: &str) -> Lbd {
    let lbd = lab.start_lbd_with(services, &format!("{PORTS6}\n{sections}"));
    lbd.wait_resolved(&[RS1_6, RS2_6]);
    lbd
}

#[test]
fn ipv6_dr_rr_alternates_and_reports() {
    if !may_run("ipv6_dr_rr_alternates_and_reports") {
        return;
    }
    let lab = Lab::up_with("v6rr", 2, &["--ipv6"]);
    let lbd = start6(&lab, &dr_service("Rr", 1, 1), "");
    let answers: Vec<String> = (0..10).map(|_| get6(&lab)).collect();
    eprintln!("answers: {answers:?}");
    for pair in answers.windows(2) {
        assert_ne!(pair[0], pair[1], "round robin must alternate: {answers:?}");
    }
    assert!(
        answers.iter().all(|a| a == "rs1" || a == "rs2"),
        "{answers:?}"
    );
    // lbctl lists the service and its real servers with brackets.
    let list = lab.lbctl_ok(&["list"]);
    assert!(list.contains(&format!("[{VIP6}]:80")), "{list}");
    assert!(list.contains(&format!("[{RS1_6}]:80")), "{list}");
    // The client learnt the VIP at the director's MAC, not a real server's.
    let (_, neigh, _) = lab.exec("client", &["ip", "-6", "neigh", "show", VIP6]);
    let dir_mac = &lab.env["LAB_DIR_MAC"];
    assert!(neigh.contains(dir_mac.as_str()), "{neigh}");
    let r = lbd.stop();
    assert_eq!(r.real_server(RS1_6)["conns"], "5");
    assert_eq!(r.real_server(RS2_6)["conns"], "5");
    assert_eq!(r.real_server(RS1_6)["active"], "0");
}

#[test]
fn ipv6_weighted_schedulers_follow_weights() {
    if !may_run("ipv6_weighted_schedulers_follow_weights") {
        return;
    }
    let lab = Lab::up_with("v6wt", 2, &["--ipv6"]);
    let lbd = start6(&lab, &dr_service("Wrr", 3, 1), "");
    let n = 40;
    let rs1 = (0..n).filter(|_| get6(&lab) == "rs1").count();
    eprintln!("wrr 3:1: rs1 answered {rs1} of {n}");
    // Weighted round robin is exact: 3 of every 4.
    assert_eq!(rs1, 30, "weights 3:1 over {n} connections");
    let r = lbd.stop();
    assert_eq!(r.real_server(RS1_6)["conns"], "30");
    assert_eq!(r.real_server(RS2_6)["conns"], "10");
}

#[test]
fn ipv6_ping_and_neighbour_discovery_for_the_vip() {
    if !may_run("ipv6_ping_and_neighbour_discovery_for_the_vip") {
        return;
    }
    let lab = Lab::up_with("v6png", 2, &["--ipv6"]);
    // Without a director the real servers stay silent for the VIP (the VIP
    // on lo is not answered by Neighbour Discovery on eth0).
    let (ok, _, _) = lab.exec("client", &["ping", "-6", "-c", "1", "-W", "1", VIP6]);
    assert!(!ok, "nobody may answer for the VIP without the director");
    let lbd = start6(&lab, &dr_service("Rr", 1, 1), "");
    let (ok, out, err) = lab.exec("client", &["ping", "-6", "-c", "3", "-W", "2", VIP6]);
    assert!(ok, "ping {VIP6} failed:\n{out}\n{err}");
    let (_, neigh, _) = lab.exec("client", &["ip", "-6", "neigh", "show", VIP6]);
    let dir_mac = &lab.env["LAB_DIR_MAC"];
    assert!(neigh.contains(dir_mac.as_str()), "{neigh}");
    for rs_mac in lab.env["LAB_RS_MACS"].split_whitespace() {
        assert!(
            !neigh.contains(rs_mac),
            "a real server answered for the VIP: {neigh}"
        );
    }
    // The director's own IPv6 address answers too.
    let (ok, _, err) = lab.exec(
        "client",
        &["ping", "-6", "-c", "1", "-W", "2", "2001:db8::2"],
    );
    assert!(ok, "ping 2001:db8::2: {err}");
    let _ = lbd.stop();
}

/// One UDP datagram from the client to `[addr]:port`; the answer.
fn udp6(lab: &Lab, addr: &str, port: u16, payload: &str) -> String {
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
         s.settimeout(5)\n\
         s.sendto(b'{payload}', ('{addr}', {port}))\n\
         d, a = s.recvfrom(2048)\n\
         print(d.decode(), a[0])\n"
    );
    let (ok, out, err) = lab.exec("client", &["python3", "-c", &script]);
    assert!(ok, "UDP to [{addr}]:{port}: {err}");
    out.trim().to_string()
}

#[test]
fn ipv6_udp_service_answers_from_the_vip() {
    if !may_run("ipv6_udp_service_answers_from_the_vip") {
        return;
    }
    let lab = Lab::up_with("v6udp", 2, &["--ipv6"]);
    let svc = format!(
        r#"(vip: "{VIP6}", port: 5353, protocol: Udp, scheduler: Rr, real_servers: [
            (address: "{RS1_6}"), (address: "{RS2_6}")])"#
    );
    let lbd = start6(&lab, &svc, "");
    let mut seen = Vec::new();
    for i in 0..4 {
        let a = udp6(&lab, VIP6, 5353, &format!("ping{i}"));
        eprintln!("udp: {a}");
        // "rsN:pingI VIP": answered by a real server, from the VIP.
        let (body, from) = a.split_once(' ').expect("answer and source");
        assert!(body.ends_with(&format!(":ping{i}")), "{a}");
        assert_eq!(from, VIP6, "the answer comes from the VIP");
        seen.push(body.split(':').next().unwrap().to_string());
    }
    // Each datagram from a new socket is a new flow: rr alternates.
    assert_eq!(seen, ["rs1", "rs2", "rs1", "rs2"], "{seen:?}");
    let r = lbd.stop();
    assert_eq!(r.real_server(RS1_6)["conns"], "2");
}

#[test]
fn ipv4_and_ipv6_services_side_by_side() {
    if !may_run("ipv4_and_ipv6_services_side_by_side") {
        return;
    }
    let lab = Lab::up_with("v6ds", 2, &["--ipv6"]);
    let svc4 = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
        (address: "198.18.0.11"), (address: "198.18.0.12")])"#;
    let lbd = start6(&lab, &format!("{svc4}, {}", dr_service("Rr", 1, 1)), "");
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for _ in 0..4 {
        v4.push(lab.curl(&format!("http://{VIP}/")));
        v6.push(get6(&lab));
    }
    eprintln!("IPv4: {v4:?} IPv6: {v6:?}");
    // Two services, each with its own round robin.
    assert_eq!(v4, ["rs1", "rs2", "rs1", "rs2"]);
    assert_eq!(v6, ["rs1", "rs2", "rs1", "rs2"]);
    let list = lab.lbctl_ok(&["list"]);
    assert!(
        list.contains("198.18.0.100:80") && list.contains(&format!("[{VIP6}]:80")),
        "{list}"
    );
    let r = lbd.stop();
    assert_eq!(r.real_server("198.18.0.11")["conns"], "2");
    assert_eq!(r.real_server(RS1_6)["conns"], "2");
}

// ---- VRRPv3 over IPv6 ------------------------------------------------------

/// The MAC address the client's neighbour table holds for `ip`.
fn client_mac_for(lab: &Lab, ip: &str) -> String {
    let (_, out, _) = lab.exec("client", &["ip", "neigh", "show", ip, "dev", "eth0"]);
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or("")
        .to_string()
}

/// A director's sections: port addresses `addr4`/`addr6` with a kernel
/// interface, the IPv6 VRRP instance (and the IPv4 one with `dual`), both
/// with priority `prio` and 200 ms advertisements.
fn vrrp_sections(addr4: &str, addr6: &str, prio: u8, dual: bool) -> String {
    let v4 = if dual {
        format!(
            r#"vrrp: Some((port: "lan0", vrid: 51, priority: {prio}, advert_interval_ms: 200)),"#
        )
    } else {
        String::new()
    };
    format!(
        r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
                    address: "{addr4}/24", address6: Some("{addr6}/64"),
                    kernel: Some((iface: "lbd-lan0")))],
           vrrp6: Some((port: "lan0", vrid: 51, priority: {prio}, advert_interval_ms: 200)),
           {v4}"#
    )
}

/// Wait until lbd logged that its IPv6 instance entered `state` (its last
/// state-change line, "vrrp6: vrid 51 priority N: STATE"; other lines about
/// the instance do not count).
fn wait_vrrp6(lbd: &Lbd, state: &str) {
    let needle = format!(": {state}");
    lbd.wait_for(
        |_, e| {
            e.iter()
                .rev()
                .find(|l| l.contains("vrrp6: vrid 51 priority"))
                .is_some_and(|l| l.contains(&needle))
        },
        &format!("vrrp6 {state}"),
    );
}

const DUAL_SERVICES: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
    (address: "198.18.0.11"), (address: "198.18.0.12")]),
    (vip: "2001:db8::100", port: 80, scheduler: Rr, real_servers: [
    (address: "2001:db8::11"), (address: "2001:db8::12")])"#;

/// Two lbd directors with both instances (IPv4 and IPv6 VIPs): the master
/// serves both families; when it dies the backup takes both over and
/// announces them (gratuitous ARP, unsolicited Neighbour Advertisement);
/// the higher priority takes them back.
#[test]
fn vrrp6_dual_stack_failover_between_two_lbd() {
    if !may_run("vrrp6_dual_stack_failover_between_two_lbd") {
        return;
    }
    let lab = Lab::up_with("v6vr", 2, &["--ipv6", "--dir2"]);
    let (mac_a, mac_b) = (
        lab.env["LAB_DIR_MAC"].clone(),
        lab.env["LAB_DIR2_MAC"].clone(),
    );
    let notes_b = lab.dir().join("notes-b");
    let _ = std::fs::remove_file(&notes_b);
    let start = |role: &str, prio: u8| {
        let (a4, a6) = if role == "dir" {
            ("198.18.0.2", "2001:db8::2")
        } else {
            ("198.18.0.3", "2001:db8::3")
        };
        // Each instance's notify_master says which instance it is.
        let sections = vrrp_sections(a4, a6, prio, true).replace(
            "advert_interval_ms: 200)",
            &format!(
                r#"advert_interval_ms: 200, notify_master: Some("echo $LBD_VRRP_INSTANCE >> {}"))"#,
                notes_b.display()
            ),
        );
        let sections = if role == "dir" {
            sections.replace("notes-b", "notes-a")
        } else {
            sections
        };
        lab.start_lbd_in(role, DUAL_SERVICES, &sections)
    };
    let a = start("dir", 150);
    let b = start("dir2", 100);
    for d in [&a, &b] {
        d.wait_resolved(&[RS1_6, RS2_6, "198.18.0.11", "198.18.0.12"]);
    }
    wait_vrrp6(&a, "MASTER");
    wait_vrrp6(&b, "BACKUP");
    wait("A master, B backup", || {
        lab.vrrp_state("dir") == "MASTER" && lab.vrrp_state("dir2") == "BACKUP"
    });
    let r = get6(&lab);
    assert!(r == "rs1" || r == "rs2", "{r}");
    let r = lab.curl(&format!("http://{VIP}/"));
    assert!(r == "rs1" || r == "rs2", "{r}");
    assert_eq!(
        client_mac_for(&lab, VIP6),
        mac_a,
        "the master answers NS for the VIP"
    );
    assert_eq!(client_mac_for(&lab, VIP), mac_a);

    // The master dies without a goodbye: B takes both instances over and
    // announces the VIPs; the client's entries move without it asking.
    drop(a);
    wait_vrrp6(&b, "MASTER");
    wait("B master", || lab.vrrp_state("dir2") == "MASTER");
    wait("the client's IPv6 neighbour entry moved to B", || {
        client_mac_for(&lab, VIP6) == mac_b
    });
    wait("the client's IPv4 neighbour entry moved to B", || {
        client_mac_for(&lab, VIP) == mac_b
    });
    for _ in 0..3 {
        let r = get6(&lab);
        assert!(r == "rs1" || r == "rs2", "{r}");
    }
    wait("both notify_master commands ran on B", || {
        std::fs::read_to_string(&notes_b).is_ok_and(|s| {
            let l: Vec<&str> = s.lines().collect();
            l.contains(&"vrrp") && l.contains(&"vrrp6")
        })
    });

    // A returns with the higher priority and preempts both.
    let a = start("dir", 150);
    wait_vrrp6(&a, "MASTER");
    wait("A master again, B backup", || {
        lab.vrrp_state("dir") == "MASTER" && lab.vrrp_state("dir2") == "BACKUP"
    });
    wait_vrrp6(&b, "BACKUP");
    wait("the client's IPv6 neighbour entry back to A", || {
        client_mac_for(&lab, VIP6) == mac_a
    });
    let r = get6(&lab);
    assert!(r == "rs1" || r == "rs2", "{r}");
    let rb = b.stop();
    assert!(rb.get("forwarded_dr") > 0, "B served the VIPs while master");
    a.stop();
}

/// lbd's IPv6 instance and keepalived's (VRRPv3 over IPv6, in P-dir2 on its
/// kernel interface) elect one master, both ways.
#[test]
fn vrrp6_lbd_and_keepalived_elect_one_master() {
    if !may_run("vrrp6_lbd_and_keepalived_elect_one_master") {
        return;
    }
    let lab = Lab::up_with("v6ka", 2, &["--ipv6", "--dir2"]);
    let svc = dr_service("Rr", 1, 1);
    // dir2 becomes a plain Linux host (IPv6 on eth0, link-local from its
    // MAC, no DAD) running keepalived.
    for args in [
        &["nft", "delete", "table", "netdev", "lbd_lab_eth0"][..],
        &["sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=0"][..],
        &[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8::3/64",
            "dev",
            "eth0",
            "nodad",
        ][..],
    ] {
        let (ok, _, err) = lab.exec("dir2", args);
        assert!(ok, "{args:?}: {err}");
    }
    let ka_ll = "fe80::c6ff:fe12:3"; // EUI-64 of 02:00:c6:12:00:03
    wait("dir2's link-local address", || {
        lab.exec("dir2", &["ip", "-6", "-br", "addr", "show", "dev", "eth0"])
            .1
            .contains(ka_ll)
    });
    let ka_conf = format!(
        "global_defs {{\n  vrrp_version 3\n  router_id lab_ka6\n}}\n\
         vrrp_instance VI_6 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority 100\n  advert_int 1\n  virtual_ipaddress {{\n    \
         {VIP6}/128 dev eth0\n  }}\n}}\n"
    );
    let ka_has_vip = || {
        lab.exec("dir2", &["ip", "-6", "-br", "addr", "show", "dev", "eth0"])
            .1
            .contains(VIP6)
    };
    let lbd_sections = |prio: u8| {
        format!(
            r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
                        address: "198.18.0.2/24", address6: Some("2001:db8::2/64"),
                        kernel: Some((iface: "lbd-lan0")))],
               vrrp6: Some((port: "lan0", vrid: 51, priority: {prio})),"#
        )
    };
    let _ka = Keepalived::start(&lab, "dir2", "keepalived6", &ka_conf);
    let lbd = lab.start_lbd_with(&svc, &lbd_sections(150));
    lbd.wait_resolved(&[RS1_6, RS2_6]);
    // lbd (150) wins; keepalived stays (or goes back to) backup.
    wait("lbd master, keepalived without the VIP", || {
        lab.vrrp_state("dir") == "MASTER" && !ka_has_vip()
    });
    let r = get6(&lab);
    assert!(r == "rs1" || r == "rs2", "{r}");

    // lbd stops (resigning): keepalived takes the VIP and answers for it.
    lbd.stop();
    wait("keepalived master (holds the VIP)", ka_has_vip);
    let (ok, out, err) = lab.exec("client", &["ping", "-6", "-c", "1", "-W", "3", VIP6]);
    assert!(ok, "the VIP answers through keepalived's host: {out}{err}");

    // lbd with a lower priority hears keepalived's advertisements (from
    // its link-local address): it stays backup and knows the master.
    let low = lab.start_lbd_with(&svc, &lbd_sections(50));
    wait("lbd backup of keepalived", || {
        lab.vrrp_status("dir") == ("BACKUP".to_string(), ka_ll.to_string())
    });
    assert!(ka_has_vip());
    let r = low.stop();
    assert_eq!(r.get("forwarded_dr"), 0, "a backup forwards nothing");

    // lbd returns with the higher priority and preempts keepalived; its
    // unsolicited Neighbour Advertisement moves the client's entry.
    let lbd = lab.start_lbd_with(&svc, &lbd_sections(150));
    wait("lbd master again, keepalived backup", || {
        lab.vrrp_state("dir") == "MASTER" && !ka_has_vip()
    });
    wait("the client's neighbour entry points at lbd", || {
        client_mac_for(&lab, VIP6) == lab.env["LAB_DIR_MAC"]
    });
    let r = get6(&lab);
    assert!(r == "rs1" || r == "rs2", "{r}");
    lbd.stop();
}

/// A status counter of the lbd in `role` (0 when absent).
fn counter(lab: &Lab, role: &str, name: &str) -> u64 {
    let (_, out, _) = lab.lbctl_in(role, &["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v["counters"][name].as_u64().unwrap_or(0)
}

/// A keep-alive IPv6 connection through master A keeps its real server
/// when A dies and the backup B, which A synced the connection to, takes
/// over.
#[test]
fn synced_ipv6_connections_survive_a_failover() {
    if !may_run("synced_ipv6_connections_survive_a_failover") {
        return;
    }
    let lab = Lab::up_with("v6sync", 2, &["--ipv6", "--dir2"]);
    let svc = dr_service("Rr", 1, 1);
    let with_sync = |addr4: &str, addr6: &str, prio: u8, peer: &str| {
        format!(
            "{}\n sync: Some((peer: \"{peer}\", batch_ms: 20)),",
            vrrp_sections(addr4, addr6, prio, false)
        )
    };
    let a = lab.start_lbd_in(
        "dir",
        &svc,
        &with_sync("198.18.0.2", "2001:db8::2", 150, "198.18.0.3"),
    );
    let b = lab.start_lbd_in(
        "dir2",
        &svc,
        &with_sync("198.18.0.3", "2001:db8::3", 100, "198.18.0.2"),
    );
    a.wait_resolved(&[RS1_6, RS2_6]);
    b.wait_resolved(&[RS1_6, RS2_6]);
    wait("A master, B backup", || {
        lab.vrrp_state("dir") == "MASTER" && lab.vrrp_state("dir2") == "BACKUP"
    });
    let mut client = KeepAlive::open_to(&lab, VIP6);
    let first = client.ask();
    assert!(first == "rs1" || first == "rs2", "{first:?}");
    assert_eq!(client.ask(), first);
    wait("B holds A's connection", || {
        counter(&lab, "dir2", "sync_received") >= 2
    });
    // A dies. The next request on the same connection is answered, by the
    // same real server, once B has taken over.
    let t0 = Instant::now();
    drop(a);
    let answer = client.ask();
    eprintln!(
        "IPv6 failover gap seen by an established connection: {:?}",
        t0.elapsed()
    );
    assert_eq!(answer, first, "the connection kept its real server");
    for _ in 0..3 {
        assert_eq!(client.ask(), first);
    }
    assert!(counter(&lab, "dir2", "sync_adopted") >= 1);
    assert_eq!(lab.vrrp_state("dir2"), "MASTER");
    let r = b.stop();
    assert_eq!(r.get("drop_tcp_no_conn"), 0, "no segment of it was refused");
}

// ---- IPv6-in-IPv6 tunnel ------------------------------------------------------

/// Real server `i`'s decapsulator counts (`scripts/lab up --decap`).
fn decap_counts(lab: &Lab, i: usize) -> serde_json::Value {
    let path = lab.state_dir().join(format!("rs{i}.decap.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}: {text}"))
}

fn tunnel_service() -> String {
    format!(
        r#"(vip: "{VIP6}", port: 80, scheduler: Rr, real_servers: [
            (address: "{RS1_6}", forward: Tunnel), (address: "{RS2_6}", forward: Tunnel)])"#
    )
}

/// IPv6-in-IPv6 (next header 41) from the port's address6 to each real
/// server, which decapsulates (the lab's user-space decapsulator: the lab
/// kernel has no ip6_tunnel) and answers from the VIP.
#[test]
fn ipv6_tunnel_rr_and_real_servers_decapsulate() {
    if !may_run("ipv6_tunnel_rr_and_real_servers_decapsulate") {
        return;
    }
    let lab = Lab::up_with("v6tn", 2, &["--ipv6", "--decap"]);
    let lbd = start6(&lab, &tunnel_service(), "");
    let answers: Vec<String> = (0..6).map(|_| get6(&lab)).collect();
    eprintln!("answers: {answers:?}");
    assert_eq!(answers, ["rs1", "rs2", "rs1", "rs2", "rs1", "rs2"]);
    // Each real server decapsulated its three connections' packets (at
    // least SYN, ACK, request, FIN, ACK each), all from the director's
    // address6 to its own.
    for (i, rs) in [(1, RS1_6), (2, RS2_6)] {
        let pair = format!("2001:db8::2>{rs}");
        wait(&format!("rs{i} decapsulated 9 packets"), || {
            decap_counts(&lab, i)["outer"][&pair].as_u64().unwrap_or(0) >= 9
        });
        let c = decap_counts(&lab, i);
        eprintln!("rs{i} decapsulator: {c}");
        assert_eq!(
            c["outer"].as_object().unwrap().len(),
            1,
            "one outer pair: {c}"
        );
        assert_eq!(c["ignored"].as_u64(), Some(0), "{c}");
    }
    let r = lbd.stop();
    assert!(r.get("forwarded_tunnel") >= 18, "SYN, ACK, request, ...");
    assert_eq!(r.get("forwarded_dr"), 0);
    assert_eq!(r.real_server(RS1_6)["conns"], "3");
}

/// Path MTU discovery through the tunnel: a client packet that would not
/// fit the port's MTU with the 40-byte outer header is answered with
/// Packet Too Big (MTU - 40); the client's kernel learns it and the
/// request goes through in segments that fit.
#[test]
fn ipv6_tunnel_packet_too_big() {
    if !may_run("ipv6_tunnel_packet_too_big") {
        return;
    }
    let lab = Lab::up_with("v6tm", 2, &["--ipv6", "--decap"]);
    let ports = PORTS6.replace(
        r#"address6: Some("2001:db8::2/64"))"#,
        r#"address6: Some("2001:db8::2/64"), mtu: 1400)"#,
    );
    assert!(ports.contains("mtu: 1400"));
    let lbd = lab.start_lbd_with(&tunnel_service(), &ports);
    lbd.wait_resolved(&[RS1_6, RS2_6]);
    let route = |lab: &Lab| {
        let (ok, out, err) = lab.exec("client", &["ip", "-6", "route", "get", VIP6]);
        assert!(ok, "ip -6 route get: {err}");
        out
    };
    assert!(!route(&lab).contains("mtu"), "{}", route(&lab));
    // A 3000-byte POST body: the client's full-size segments (1500-byte
    // packets) are too big for the tunnel; whatever the server makes of a
    // POST, the client's kernel learns the path MTU.
    let body = "b".repeat(3000);
    let url = url6();
    let (ok, out, err) = lab.curl_args(
        &[
            "-g",
            "-6",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-d",
            &body,
        ],
        &url,
    );
    eprintln!("POST: ok={ok} code={out} {err}");
    let learnt = route(&lab);
    eprintln!("client: ip -6 route get {VIP6}: {learnt}");
    assert!(
        learnt.contains("mtu 1360"),
        "the client learnt the path MTU 1400 - 40: {learnt}"
    );
    // A large request now goes through in segments that fit the tunnel.
    let pad = format!("X-Pad: {}", "p".repeat(2000));
    let (ok, out, err) = lab.curl_args(&["-g", "-6", "-H", &pad], &url);
    assert!(ok, "large GET through the tunnel failed: {err}");
    let who = out.trim();
    assert!(who == "rs1" || who == "rs2", "{out}");
    let r = lbd.stop();
    assert!(
        r.get("icmpv6_ptb_sent") > 0,
        "the director sent Packet Too Big"
    );
    assert_eq!(r.get("drop_tunnel_too_big"), 0);
    assert!(r.get("forwarded_tunnel") > 0);
}

// --- NAT66 -----------------------------------------------------------------

/// The NAT66 real server (the two-armed lab's internal segment,
/// `scripts/lab up --nat --ipv6`: 2001:db8:1::/64, its default route via
/// the director's internal address6 2001:db8:1::1).
const NAT_RS6: &str = "2001:db8:1::11";
/// The lab client's IPv6 address.
const CLIENT6: &str = "2001:db8::1";

/// TCP [VIP6]:80 mapped to the real server's port 8080, UDP [VIP6]:53
/// mapped to its UDP echo on 5353, and UDP [VIP6]:54 mapped to a port
/// where nothing listens (5354), all by NAT.
fn nat66_services() -> String {
    format!(
        r#"(vip: "{VIP6}", port: 80, scheduler: Rr, real_servers: [
            (address: "{NAT_RS6}", port: Some(8080), forward: Nat)]),
        (vip: "{VIP6}", port: 53, protocol: Udp, real_servers: [
            (address: "{NAT_RS6}", port: Some(5353), forward: Nat)]),
        (vip: "{VIP6}", port: 54, protocol: Udp, real_servers: [
            (address: "{NAT_RS6}", port: Some(5354), forward: Nat)])"#
    )
}

/// One datagram from the client to [VIP6]:`port` on a connected socket:
/// "refused" when an ICMPv6 port unreachable came back for it (the
/// client's kernel matched the error's quoted packet to the socket), else
/// the answer.
fn udp6_connected(lab: &Lab, port: u16) -> String {
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
         s.settimeout(5)\n\
         s.connect(('{VIP6}', {port}))\n\
         s.send(b'anyone')\n\
         try:\n\
         \x20   print(s.recv(2048).decode())\n\
         except ConnectionRefusedError:\n\
         \x20   print('refused')\n"
    );
    let (ok, out, err) = lab.exec("client", &["python3", "-c", &script]);
    assert!(ok, "UDP to [{VIP6}]:{port}: {err}");
    out.trim().to_string()
}

/// The two-armed lab's ports, each with an IPv6 address, and a worker per
/// port (as the IPv4 NAT tests: replies are found by the other worker).
fn nat66_sections(lab: &Lab) -> String {
    format!(
        r#"eal: (lcores: Some("(0-2)@(0-1)"), no_huge: true, memory_mb: Some(512), no_pci: true, file_prefix: Some("lbd-e2e-{}")),
    ports: [
      (name: "ext", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24",
       address6: Some("2001:db8::2/64")),
      (name: "int", device: "net_af_packet1,iface=eth1", address: "198.19.0.1/24",
       address6: Some("2001:db8:1::1/64")),
    ],"#,
        lab.prefix
    )
}

/// The lines of a file in the lab's state dir once it has `n` of them
/// (a server writes its log line after answering), waiting at most 5 s.
fn state_lines(lab: &Lab, file: &str, n: usize) -> Vec<String> {
    let path = lab.state_dir().join(file);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nat66_with_port_mapping_and_udp() {
    if !may_run("nat66_with_port_mapping_and_udp") {
        return;
    }
    let lab = Lab::up_with("v6nat", 1, &["--nat", "--ipv6"]);
    let lbd = lab.start_lbd_with(&nat66_services(), &nat66_sections(&lab));
    lbd.wait_resolved(&[NAT_RS6]);

    // HTTP: the real server's port 8080 server answers (port mapping), and
    // sees the client's own address (no source NAT).
    for _ in 0..3 {
        assert_eq!(get6(&lab), "rs1");
    }
    let lines = state_lines(&lab, "rs1.v6.8080.access.log", 3);
    eprintln!("rs1 [::]:8080 access log: {lines:?}");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.split_whitespace().next() == Some(CLIENT6)),
        "the real server must see the client {CLIENT6}: {lines:?}"
    );
    let port80 = state_lines(&lab, "rs1.v6.access.log", 0);
    assert!(port80.is_empty(), "nothing for port 80: {port80:?}");

    // UDP: answered through the director, from the VIP's port 53.
    let answer = udp6(&lab, VIP6, 53, "hello-nat66");
    eprintln!("UDP answer: {answer}");
    assert_eq!(answer, format!("rs1:hello-nat66 {VIP6}"));
    let peers = state_lines(&lab, "rs1.v6.udp-peers.log", 1);
    eprintln!("rs1 UDP peers: {peers:?}");
    assert_eq!(peers.len(), 1, "{peers:?}");
    let f: Vec<&str> = peers[0].split_whitespace().collect();
    assert_eq!((f[0], f[2]), (CLIENT6, NAT_RS6), "{peers:?}");

    // Nothing listens on the real server's 5354: its port unreachable is
    // translated back (from the VIP, quoting what the client sent), and
    // the client's kernel takes it for its socket's.
    assert_eq!(udp6_connected(&lab, 54), "refused");

    // The listing shows the NAT66 service and its mapped real server.
    let list = lab.lbctl_ok(&["list", "-n"]);
    eprintln!("{list}");
    assert!(list.contains(&format!("[{VIP6}]:80")), "{list}");
    assert!(list.contains(&format!("[{NAT_RS6}]:8080")), "{list}");
    assert!(list.contains(&format!("[{NAT_RS6}]:5353")), "{list}");
    // The three HTTP connections went through TCP's states both ways:
    // closed (TIME_WAIT), so inactive, none active any more.
    let rs_tcp: Vec<&str> = list
        .lines()
        .find(|l| l.contains(&format!("[{NAT_RS6}]:8080")))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(rs_tcp[2..], ["Masq", "1", "0", "3"], "{list}");

    // `lbctl conns` (-Lnc) lists the NAT66 connections from the shared
    // table: the 3 HTTP ones mapped 80 → 8080, the 2 UDP ones.
    let v: serde_json::Value =
        serde_json::from_str(&lab.lbctl_ok(&["--json", "conns", "--real", NAT_RS6])).unwrap();
    let conns = v["conns"].as_array().unwrap();
    assert_eq!(conns.len(), 5, "3 TCP, 2 UDP: {v}");
    assert!(
        conns
            .iter()
            .all(|c| c["client"] == CLIENT6 && c["vip"] == VIP6 && c["real"] == NAT_RS6),
        "{v}"
    );
    let http = conns
        .iter()
        .filter(|c| c["vport"] == 80 && c["real_port"] == 8080)
        .count();
    assert_eq!(http, 3, "{v}");
    let text = lab.lbctl_ok(&["conns"]);
    eprintln!("{text}");
    assert!(text.contains(&format!("[{VIP6}]:80")), "{text}");
    assert!(text.contains(&format!("[{NAT_RS6}]:8080")), "{text}");

    let r = lbd.stop();
    let all = r.lines.join("\n");
    assert_eq!(r.get("conn_created"), 5, "3 TCP, 2 UDP:\n{all}");
    assert_eq!(r.get("icmp_error_nat_reply"), 1, "{all}");
    // SYN, ACK, request, ACKs and FIN each way: at least 3 per TCP
    // connection, and the datagram: 10 each way.
    let least = 3 * 3 + 1;
    assert!(r.get("forwarded_nat") >= least, "{all}");
    assert!(r.get("forwarded_nat_reply") >= least, "{all}");
    assert_eq!(r.get("forwarded_dr"), 0, "{all}");
    let rs = r.real_server(NAT_RS6);
    eprintln!("real server: {rs:?}");
    // Both workers did work: requests in on ext, replies in on int.
    let workers = r.workers();
    assert_eq!(workers.len(), 2, "{all}");
    for (i, w) in workers.iter().enumerate() {
        assert!(
            w.get("busy_polls").copied().unwrap_or(0) > 0,
            "worker {i}:\n{all}"
        );
    }
    // No NAT66 drops: no reply without its connection or client, no hop
    // limit spent.
    for c in [
        "drop_nat_no_conn",
        "drop_nat_no_client_mac",
        "drop_ipv6_hop_limit_expired",
        "drop_neigh_unresolved",
        "drop_conn_table_full",
    ] {
        assert_eq!(r.get(c), 0, "{c}:\n{all}");
    }
}

// --- NAT66 under HA ----------------------------------------------------------

/// The NAT66 real servers' gateway (`scripts/lab up --nat --ipv6`: their
/// default route): a floating address of the directors' `vrrp6` instance.
const NAT_GW6: &str = "2001:db8:1::1";

/// The MAC address of `iface` in the namespace of `role`.
fn mac_of(lab: &Lab, role: &str, iface: &str) -> String {
    let (ok, out, err) = lab.exec(role, &["ip", "-br", "link", "show", iface]);
    assert!(ok, "ip link show {iface} in {role}: {err}");
    out.split_whitespace().nth(2).unwrap_or("").to_string()
}

/// The MAC address real server `rs` (e.g. "rs1") holds for `ip` ("" if
/// none, or while the entry is unresolved).
fn rs_mac_for(lab: &Lab, rs: &str, ip: &str) -> String {
    let (_, out, _) = lab.exec(rs, &["ip", "-6", "neigh", "show", ip, "dev", "eth0"]);
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or("")
        .to_string()
}

/// Two NAT66 directors, A (master) and B, share the real servers' gateway
/// 2001:db8:1::1 as a `vrrp6` floating address, and A syncs its NAT66
/// connections to B. A keep-alive connection made through A is answered,
/// after A dies, by the same real server through B: B had the connection
/// (both its entries and the client's MAC) from the sync, and the real
/// server's replies reach B because B announced the gateway address by
/// unsolicited Neighbour Advertisements on taking over.
#[test]
fn nat66_connections_survive_a_failover() {
    if !may_run("nat66_connections_survive_a_failover") {
        return;
    }
    let lab = Lab::up_with("v6nha", 2, &["--nat", "--ipv6", "--dir2"]);
    let director = |role: &str, n: u8, prio: u8, peer: u8| {
        format!(
            r#"eal: (lcores: Some("(0-2)@(0-1)"), no_huge: true, memory_mb: Some(512), no_pci: true,
                     file_prefix: Some("lbd-e2e-v6nha-{role}")),
               ports: [
                 (name: "ext", device: "net_af_packet0,iface=eth0", address: "198.18.0.{n}/24",
                  address6: Some("2001:db8::{n}/64"), kernel: Some((iface: "lbd-ext"))),
                 (name: "int", device: "net_af_packet1,iface=eth1", address: "198.19.0.{n}/24",
                  address6: Some("2001:db8:1::{n}/64")),
               ],
               vrrp6: Some((port: "ext", vrid: 51, priority: {prio}, advert_interval_ms: 200,
                            addresses: ["{NAT_GW6}"])),
               sync: Some((peer: "198.18.0.{peer}", batch_ms: 20)),"#
        )
    };
    let (rs1, rs2) = ("2001:db8:1::11", "2001:db8:1::12");
    let services = format!(
        r#"(vip: "{VIP6}", port: 80, scheduler: Rr, real_servers: [
            (address: "{rs1}", forward: Nat), (address: "{rs2}", forward: Nat)])"#
    );
    let a = lab.start_lbd_in("dir", &services, &director("a", 2, 150, 3));
    let b = lab.start_lbd_in("dir2", &services, &director("b", 3, 100, 2));
    a.wait_resolved(&[rs1, rs2]);
    b.wait_resolved(&[rs1, rs2]);
    wait("A master, B backup", || {
        lab.vrrp_state("dir") == "MASTER" && lab.vrrp_state("dir2") == "BACKUP"
    });
    let (a_int, b_int) = (mac_of(&lab, "dir", "eth1"), mac_of(&lab, "dir2", "eth1"));
    assert!(!a_int.is_empty() && a_int != b_int, "{a_int} {b_int}");

    let mut client = KeepAlive::open_to(&lab, VIP6);
    let first = client.ask();
    assert!(first == "rs1" || first == "rs2", "{first:?}");
    assert_eq!(client.ask(), first);
    // The real server reaches its gateway at A (B, backup, does not answer
    // for it). Waited for rather than read once: if B, starting on a busy
    // machine, missed A's adverts and was master for a moment, it
    // announced the gateway; A answers B's lower advert by announcing it
    // again.
    wait("the real server's gateway is A", || {
        rs_mac_for(&lab, &first, NAT_GW6) == a_int
    });
    wait("B holds A's NAT66 connection", || {
        counter(&lab, "dir2", "sync_received") >= 2
    });

    // A dies. The next request on the same connection is answered, by the
    // same real server, once B has taken over.
    let t0 = Instant::now();
    drop(a);
    let answer = client.ask();
    eprintln!(
        "NAT66 failover gap seen by an established connection: {:?}",
        t0.elapsed()
    );
    assert_eq!(answer, first, "the NAT66 connection kept its real server");
    for _ in 0..3 {
        assert_eq!(client.ask(), first);
    }
    assert_eq!(lab.vrrp_state("dir2"), "MASTER");
    // B announced the gateway: the real server's entry for it is B's.
    wait("the real server's gateway is B", || {
        rs_mac_for(&lab, &first, NAT_GW6) == b_int
    });
    drop(client);
    // New connections work through B too.
    assert!(["rs1", "rs2"].contains(&get6(&lab).as_str()));
    let r = b.stop();
    let all = r.lines.join("\n");
    assert!(
        r.get("forwarded_nat_reply") >= 4,
        "B translated replies:\n{all}"
    );
    assert_eq!(r.get("conn_created"), 1, "only the new connection:\n{all}");
    for c in [
        "drop_nat_no_conn",
        "drop_nat_no_client_mac",
        "drop_tcp_no_conn",
    ] {
        assert_eq!(r.get(c), 0, "{c}:\n{all}");
    }
}
