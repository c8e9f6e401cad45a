//! End-to-end test of service groups (keepalived's `virtual_server fwmark`,
//! `ipvsadm -f`): ports 80 and 443 of the VIP as one persistent service, in
//! the lab, with both real servers serving HTTP on both ports.
//!
//! * a client's connections to 80 and to 443 go to the same real server
//!   while persistence holds, and alternate between the servers once it is
//!   turned off (`ipvsadm -E -f 3 -s rr`): the sameness was persistence's;
//! * `ipvsadm -Ln` lists the group as ipvsadm lists a fwmark service;
//! * `ipvsadm-save`, `ipvsadm -C`, `ipvsadm-restore` give back the same
//!   rules and a group that still serves both ports (the `fwmarks` section,
//!   lbd's stand-in for iptables' marks, is not a rule: -C leaves it).
//!
//! See `common/mod.rs` for the harness and the root requirement. Every
//! wait is for a state, bounded.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// Start a second HTTP server, on `port`, on real server `rs` (answering
/// with the same name, "rsN"), and wait until it listens. The lab takes
/// it down with its namespace.
fn serve_port(lab: &Lab, rs: usize, port: u16) {
    let status = Command::new("setsid")
        .args(["-f", "ip", "netns", "exec", &lab.ns(&format!("rs{rs}"))])
        .arg("python3")
        .arg(repo().join("scripts/lab-httpd.py"))
        .args(["--name", &format!("rs{rs}"), "--port", &port.to_string()])
        .arg("--pid-file")
        .arg(lab.state_dir().join(format!("rs{rs}.{port}.pid")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    wait(&format!("rs{rs} listening on {port}"), || {
        lab.exec(
            &format!("rs{rs}"),
            &[
                "sh",
                "-c",
                &format!("ss -Hltn 'sport = :{port}' | grep -q ."),
            ],
        )
        .0
    });
}

/// One connection to the VIP on each port in turn, `rounds` times: the
/// real servers that answered, in order.
fn across_ports(lab: &Lab, rounds: usize) -> Vec<String> {
    (0..rounds)
        .flat_map(|_| [80, 443])
        .map(|port| lab.curl(&format!("http://{VIP}:{port}/")))
        .collect()
}

/// One persistent rr service for mark 3...
const GROUP: &str = r#"(fwmark: Some(3), scheduler: Rr,
    persistence: Some((timeout: 300)),
    real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])"#;

/// ... which ports 80 and 443 of the VIP carry. (The harness's default
/// `ports` section is written out: a section naming `ports:` replaces it.)
const MARK3: &str = r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24")],
    fwmarks: [(mark: 3, match: [
        (vip: "198.18.0.100", ports: 80), (vip: "198.18.0.100", ports: 443)])],"#;

#[test]
fn a_persistent_group_sends_a_clients_80_and_443_to_one_real_server() {
    if !may_run("a_persistent_group_sends_a_clients_80_and_443_to_one_real_server") {
        return;
    }
    let lab = Lab::up("lbgrp", 2);
    for rs in [1, 2] {
        serve_port(&lab, rs, 443);
    }
    let lbd = lab.start_lbd_with(GROUP, MARK3);
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);

    let sticky = across_ports(&lab, 4);
    eprintln!("persistent: {sticky:?}");
    assert!(
        sticky.iter().all(|a| *a == sticky[0]) && ["rs1", "rs2"].contains(&sticky[0].as_str()),
        "one client, one real server on both ports: {sticky:?}"
    );
    // The group as ipvsadm lists a fwmark service: one persistence
    // template for the client, whichever port.
    let listing = lab.ipvsadm_ok("ipvsadm -Ln");
    assert!(
        listing.contains("\nFWM  3 rr persistent 300\n  -> 198.18.0.11:0 "),
        "{listing}"
    );
    let conns = lab.ipvsadm_ok("ipvsadm -Lnc");
    let templates: Vec<&str> = conns.lines().filter(|l| l.contains(" NONE ")).collect();
    assert_eq!(templates.len(), 1, "{conns}");

    // Saved, cleared and restored: the same rules, and a group that still
    // takes both ports (what carries its mark is not a rule: -C leaves it).
    let saved = lab.ipvsadm_ok("ipvsadm-save -n");
    assert_eq!(
        saved,
        "-A -f 3 -s rr -p 300\n\
         -a -f 3 -r 198.18.0.11:0 -g -w 1\n\
         -a -f 3 -r 198.18.0.12:0 -g -w 1\n"
    );
    lab.ipvsadm_ok("ipvsadm-save -n > rules && ipvsadm -C && ipvsadm-restore < rules");
    assert_eq!(lab.ipvsadm_ok("ipvsadm-save -n"), saved);

    // Without persistence the group's rr alternates over the client's
    // connections, whichever port they go to.
    lab.ipvsadm_ok("ipvsadm -E -f 3 -s rr");
    let scheduled = across_ports(&lab, 3);
    eprintln!("not persistent: {scheduled:?}");
    assert!(
        scheduled.windows(2).all(|w| w[0] != w[1]),
        "rr alternates across the ports: {scheduled:?}"
    );

    let r = lbd.stop();
    assert_eq!(r.get("conn_created"), 14);
    assert_eq!(r.get("persist_template_created"), 1);
    assert_eq!(r.get("persist_template_used"), 7);
}
