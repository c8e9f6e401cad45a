//! End-to-end test of the kernel exception path (`ports[].kernel`): the
//! director's own host talks through the port that DPDK owns, via the TAP
//! interface lbd creates, while VIP traffic keeps flowing through the
//! dataplane. See `common/mod.rs` for the harness and the root requirement.

mod common;

use common::*;

const SERVICES: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
    (address: "198.18.0.11"), (address: "198.18.0.12")])"#;

const PORTS: &str = r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
    address: "198.18.0.2/24", kernel: Some((iface: "lbd-lan0")))],"#;

#[test]
fn the_directors_host_talks_through_the_kernel_interface() {
    if !may_run("the_directors_host_talks_through_the_kernel_interface") {
        return;
    }
    let lab = Lab::up("kpath", 2);
    let lbd = lab.start_lbd_with(SERVICES, PORTS);
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);

    // The TAP carries the port's address and MAC.
    let (ok, out, err) = lab.exec("dir", &["ip", "-br", "link", "show", "lbd-lan0"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&lab.env["LAB_DIR_MAC"]),
        "the TAP has the port's MAC {}: {out}",
        lab.env["LAB_DIR_MAC"]
    );
    let (ok, out, err) = lab.exec("dir", &["ip", "-br", "addr", "show", "lbd-lan0"]);
    assert!(ok && out.contains("198.18.0.2/24"), "{out}{err}");

    // Outbound from the director's host: ping and HTTP to real servers (what
    // health checks need), the kernel resolving their MACs by ARP itself.
    let (ok, out, err) = lab.exec("dir", &["ping", "-c", "2", "-W", "3", "198.18.0.11"]);
    assert!(ok, "ping from the director: {out}{err}");
    let (ok, out, err) = lab.exec(
        "dir",
        &["curl", "-sS", "--max-time", "10", "http://198.18.0.12/"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "rs2");

    // Inbound to the director's host: a service of its own on the port's
    // address.
    let mut server = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.ns("dir"), "timeout", "60"])
        .args([
            "python3",
            "-m",
            "http.server",
            "8000",
            "--bind",
            "198.18.0.2",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 http.server");
    let (ok, out, err) = lab.exec(
        "client",
        &[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "--retry",
            "10",
            "--retry-connrefused",
            "--retry-delay",
            "1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://198.18.0.2:8000/",
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "200");

    // The dataplane still answers pings itself and serves the VIP.
    let (ok, out, err) = lab.exec("client", &["ping", "-c", "1", "-W", "3", "198.18.0.2"]);
    assert!(ok, "{out}{err}");
    let a = lab.curl(&format!("http://{VIP}/"));
    let b = lab.curl(&format!("http://{VIP}/"));
    assert_ne!(a, b, "round robin over the dataplane");

    let r = lbd.stop();
    assert!(r.get("to_kernel") > 0, "{:?}", r.lines);
    assert!(r.get("from_kernel") > 0, "{:?}", r.lines);
    assert_eq!(r.get("drop_kernel_rate"), 0);
    assert_eq!(r.get("drop_kernel_queue_full"), 0);
    assert!(r.get("icmp_echo_replied") >= 1);
    // The TAP goes away with lbd.
    let (ok, _, _) = lab.exec("dir", &["ip", "link", "show", "lbd-lan0"]);
    assert!(!ok, "lbd-lan0 still exists after lbd stopped");
}
