//! End-to-end tests of IPv6 service groups and the IPv6 SYN-flood defence,
//! in the dual-stack lab (`scripts/lab up --ipv6`). See `common/mod.rs`
//! for the harness and the root requirement.
//!
//! * An IPv6 service group (mark 3: ports 80 and 443 of the IPv6 VIP,
//!   persistent per /64): a client's connections to both ports go to one
//!   real server, and alternate once persistence is turned off
//!   (`ipvsadm -E -f 3 -6 -s rr`); `ipvsadm -Ln` lists it as
//!   `FWM  3 IPv6`, `ipvsadm-save` writes `-f 3 -6`.
//! * A flood of spoofed IPv6 SYNs (`scripts/syn-flood.py`, four times the
//!   table's capacity) does not lock an IPv6 client out: its requests are
//!   answered while the flood runs and after it, with the table full of
//!   the flood's half-open entries; with the defence off (the control)
//!   the same flood does lock it out.
//!
//! Every wait is for a state, bounded; the flood is bounded in count and
//! time; no assertion is on a duration or a rate.

mod common;

use std::process::{Child, Command, Stdio};

use common::*;

const VIP6: &str = "2001:db8::100";
const RS1_6: &str = "2001:db8::11";
const RS2_6: &str = "2001:db8::12";

/// The director's port with its IPv6 address.
const PORTS6: &str = r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
    address: "198.18.0.2/24", address6: Some("2001:db8::2/64"))],"#;

/// Start lbd in the IPv6 lab with `services` and extra `sections`, and wait
/// until both IPv6 real servers are resolved.
fn start6(lab: &Lab, services: &str, sections: &str) -> Lbd {
    let lbd = lab.start_lbd_with(services, &format!("{PORTS6}\n{sections}"));
    lbd.wait_resolved(&[RS1_6, RS2_6]);
    lbd
}

/// One HTTP GET from the client to `[VIP6]:port`: the body (the real
/// server's name), or None if curl failed within `max_time` seconds.
fn try_get6(lab: &Lab, port: u16, max_time: u32) -> Option<String> {
    let url = format!("http://[{VIP6}]:{port}/");
    let (ok, out, _) = lab.exec(
        "client",
        &[
            "curl",
            "-sS",
            "-g",
            "-6",
            "--max-time",
            &max_time.to_string(),
            &url,
        ],
    );
    ok.then(|| out.trim().to_string())
}

fn get6(lab: &Lab, port: u16) -> String {
    try_get6(lab, port, 10).unwrap_or_else(|| panic!("curl -6 [{VIP6}]:{port} failed"))
}

/// Start a second HTTP server on IPv6 port `port` of real server `rs`
/// (answering "rsN"), and wait until it listens. The lab takes it down
/// with its namespace.
fn serve_port6(lab: &Lab, rs: usize, port: u16) {
    let status = Command::new("setsid")
        .args(["-f", "ip", "netns", "exec", &lab.ns(&format!("rs{rs}"))])
        .arg("python3")
        .arg(repo().join("scripts/lab-httpd.py"))
        .args(["--name", &format!("rs{rs}"), "--port", &port.to_string()])
        .args(["--bind", "::"])
        .arg("--pid-file")
        .arg(lab.state_dir().join(format!("rs{rs}.{port}.v6.pid")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    wait(&format!("rs{rs} listening on [::]:{port}"), || {
        lab.exec(
            &format!("rs{rs}"),
            &[
                "sh",
                "-c",
                &format!("ss -Hltn6 'sport = :{port}' | grep -q ."),
            ],
        )
        .0
    });
}

/// One connection to each port in turn, `rounds` times: who answered.
fn across_ports(lab: &Lab, rounds: usize) -> Vec<String> {
    (0..rounds)
        .flat_map(|_| [80, 443])
        .map(|port| get6(lab, port))
        .collect()
}

/// A persistent (per /64) rr group for mark 3...
const GROUP6: &str = r#"(fwmark: Some(3), scheduler: Rr,
    persistence: Some((timeout: 300, prefix: Some(64))),
    real_servers: [(address: "2001:db8::11"), (address: "2001:db8::12")])"#;

/// ... which ports 80 and 443 of the IPv6 VIP carry.
const MARK3: &str = r#"fwmarks: [(mark: 3, match: [
    (vip: "2001:db8::100", ports: 80), (vip: "2001:db8::100", ports: 443)])],"#;

#[test]
fn ipv6_persistent_group_sends_a_clients_80_and_443_to_one_real_server() {
    if !may_run("ipv6_persistent_group_sends_a_clients_80_and_443_to_one_real_server") {
        return;
    }
    let lab = Lab::up_with("v6grp", 2, &["--ipv6"]);
    for rs in [1, 2] {
        serve_port6(&lab, rs, 443);
    }
    let lbd = start6(&lab, GROUP6, MARK3);
    let sticky = across_ports(&lab, 4);
    eprintln!("persistent: {sticky:?}");
    assert!(
        sticky.iter().all(|a| *a == sticky[0]) && ["rs1", "rs2"].contains(&sticky[0].as_str()),
        "one client, one real server on both ports: {sticky:?}"
    );
    let listing = lab.ipvsadm_ok("ipvsadm -Ln");
    assert!(
        listing.contains("\nFWM  3 IPv6 rr persistent 300 mask 64\n  -> [2001:db8::11]:0 "),
        "{listing}"
    );
    // One persistence template for the client, whichever port.
    let conns = lab.ipvsadm_ok("ipvsadm -Lnc");
    let templates: Vec<&str> = conns.lines().filter(|l| l.contains(" NONE ")).collect();
    assert_eq!(templates.len(), 1, "{conns}");
    let saved = lab.ipvsadm_ok("ipvsadm-save -n");
    assert!(saved.contains("-A -f 3 -6 -s rr -p 300 -M 64\n"), "{saved}");
    assert!(
        saved.contains("-a -f 3 -6 -r [2001:db8::11]:0 -g -w 1\n"),
        "{saved}"
    );
    // Without persistence the same client alternates: the sameness above
    // was persistence's.
    lab.ipvsadm_ok("ipvsadm -E -f 3 -6 -s rr");
    let free = across_ports(&lab, 3);
    eprintln!("not persistent: {free:?}");
    assert!(
        free.iter().any(|a| a == "rs1") && free.iter().any(|a| a == "rs2"),
        "{free:?}"
    );
    let r = lbd.stop();
    assert_eq!(r.get("persist_template_created"), 1);
    assert_eq!(r.get("persist_template_used"), 7);
}

/// The connection table's capacity in the flood test (the smallest lbd
/// takes; the IPv6 table has the same).
const CAPACITY: u32 = 1024;

const SERVICE6: &str = r#"(vip: "2001:db8::100", port: 80, scheduler: Wlc, real_servers: [
    (address: "2001:db8::11"), (address: "2001:db8::12")])"#;

/// Four times the table's capacity of spoofed IPv6 SYNs (from
/// 2001:db8:ff::/48) at 2 000 a second, bounded to 60 s.
fn flood6(lab: &Lab) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &lab.ns("client"), "/usr/bin/python3"])
        .arg(repo().join("scripts/syn-flood.py"))
        .args(["--iface", "eth0", "--dst-mac", &lab.env["LAB_DIR_MAC"]])
        .args(["--vip", VIP6, "--rate", "2000", "--seconds", "60"])
        .args(["--count", &(4 * CAPACITY).to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("syn-flood.py")
}

/// Whether `lbctl status` shows a worker's SYN-flood defence engaged.
fn defending(lab: &Lab) -> bool {
    let st = lab.lbctl_ok(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["flood_defence"] == true)
}

#[test]
fn ipv6_syn_flood_does_not_lock_an_ipv6_client_out() {
    if !may_run("ipv6_syn_flood_does_not_lock_an_ipv6_client_out") {
        return;
    }
    let lab = Lab::up_with("v6fld", 2, &["--ipv6"]);
    let table = format!("conn_table: (capacity: {CAPACITY}),");
    let lbd = start6(&lab, SERVICE6, &format!("{table} syn_flood: (mode: Auto),"));
    let mut ka = KeepAlive::open_to(&lab, VIP6);
    let first = ka.ask();
    assert!(first == "rs1" || first == "rs2", "keep-alive: {first:?}");
    // The client asks while the flood runs (at most 200 requests; the
    // flood stops by itself), and every request is answered.
    let mut f = flood6(&lab);
    let mut during = 0;
    while f.try_wait().unwrap().is_none() && during < 200 {
        let a = get6(&lab, 80);
        assert!(a == "rs1" || a == "rs2", "{a:?}");
        during += 1;
    }
    let out = f.wait_with_output().unwrap();
    assert!(out.status.success(), "syn-flood.py failed");
    let sent = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // The table is full of the flood's half-open entries: the defence is
    // engaged, and newcomers still get in by evicting them.
    wait("the SYN-flood defence engaged", || defending(&lab));
    let after: Vec<String> = (0..10).map(|_| get6(&lab, 80)).collect();
    let keepalive_after = ka.ask();
    eprintln!(
        "flood {sent}: {during} requests answered during it; after it {after:?}; keep-alive \
         {first:?} then {keepalive_after:?}"
    );
    assert_eq!(
        keepalive_after, first,
        "the established connection kept its real server"
    );
    drop(ka);
    let r = lbd.stop();
    assert!(r.get("flood_defence_engaged") >= 1);
    assert!(
        r.get("conn_embryonic_evicted") >= 10,
        "the newcomers after the flood made room by eviction: {}",
        r.get("conn_embryonic_evicted")
    );

    // Control: the same flood with the defence off locks the client out
    // (the table stays full of half-open entries for their 60 s), which
    // shows the flood fills the table.
    let lbd = start6(&lab, SERVICE6, &format!("{table} syn_flood: (mode: Off),"));
    let f = flood6(&lab);
    let out = f.wait_with_output().unwrap();
    assert!(out.status.success(), "syn-flood.py failed");
    wait("the client locked out", || try_get6(&lab, 80, 2).is_none());
    assert_eq!(try_get6(&lab, 80, 3), None, "the client stays locked out");
    let r = lbd.stop();
    assert!(r.get("drop_conn_table_full") > 0);
    assert_eq!(r.get("conn_embryonic_evicted"), 0);
    assert_eq!(r.get("flood_defence_engaged"), 0);
}
