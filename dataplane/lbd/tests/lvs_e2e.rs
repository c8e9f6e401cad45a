//! End-to-end tests of "coming from LVS": the reference setups' own
//! commands and files (ctl/tests/data/seeds/, cut verbatim from the user's
//! documents) against lbd in the lab, with only their addresses rewritten
//! to the lab's (VIP 198.18.0.100, real servers 198.18.0.11/12, directors
//! 198.18.0.2/3) and, where the documents use slow timers, faster ones.
//!
//! * the ipvsadm lines of seeds 001, 002 and 004, run by a shell through
//!   lbctl installed as `ipvsadm`, `ipvsadm-save` and `ipvsadm-restore`;
//!   the listing as the documents show it; ipvsadm-save's rules round-trip;
//! * seed 003's keepalived.conf imported for two directors: VRRP elects
//!   one, rr alternates, a stopped real server is taken out, the backup
//!   takes over; its first scheme's `virtual_server fwmark 3` imported as a
//!   service group on the assumed member, serving it;
//! * seed 004's ldirectord.cf imported: rr alternates as the document's
//!   curl loop shows, a stopped server is taken out, and the fallback (the
//!   director's own web server, `fallback=127.0.0.1:80`) answers while all
//!   are down.
//!
//! See `common/mod.rs` for the harness and the root requirement. Every
//! wait is for a state, bounded.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

fn seed(file: &str) -> String {
    std::fs::read_to_string(repo().join("ctl/tests/data/seeds").join(file)).unwrap()
}

/// The fields of each line, as a script reading the listing (awk, `read`)
/// sees them: the rewritten addresses are shorter than the document's, so
/// the padding differs.
fn fields(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// A listing without its connection counters (which connections coming
/// and going change): each line's first four fields.
fn shape(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect()
}

/// `n` answers from the VIP, one connection each.
fn answers(lab: &Lab, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| lab.curl(&format!("http://{VIP}/")))
        .collect()
}

/// Whether consecutive answers always differ and both servers answered.
fn alternates(a: &[String]) -> bool {
    a.windows(2).all(|w| w[0] != w[1]) && a.iter().any(|x| *x != a[0])
}

#[test]
fn seed_ipvsadm_lines_run_verbatim_and_save_round_trips() {
    if !may_run("seed_ipvsadm_lines_run_verbatim_and_save_round_trips") {
        return;
    }
    let lab = Lab::up("lvadm", 2);
    let lbd = lab.start_lbd("");
    let header = "IP Virtual Server version 1.2.1 (size=65536)\n\
                  Prot LocalAddress:Port Scheduler Flags\n  \
                  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

    // Seed 001, word for word (`ipvsadm –C` with its en dash), wlc.
    let s001 = seed("001-ipvsadm.sh")
        .replace("192.168.11.200", VIP)
        .replace("192.168.11.21", "198.18.0.11")
        .replace("192.168.11.22", "198.18.0.12");
    let lines: Vec<&str> = s001.lines().collect();
    assert_eq!(lines[0], "ipvsadm \u{2013}C");
    for line in &lines[..4] {
        lab.ipvsadm_ok(line);
    }
    assert_eq!(lines[4], "ipvsadm -Ln");
    let listing = lab.ipvsadm_ok(lines[4]);
    assert_eq!(
        listing,
        format!(
            "{header}TCP  {VIP}:80 wlc\n  \
             -> 198.18.0.11:80               Route   1      0          0         \n  \
             -> 198.18.0.12:80               Route   1      0          0         \n"
        )
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    // "refreshing, sometimes RS1's page, sometimes RS2's".
    let a = answers(&lab, 6);
    assert!(
        a.contains(&"rs1".to_string()) && a.contains(&"rs2".to_string()),
        "{a:?}"
    );

    // Seed 002: save first (as the document does), clear, rr, ports given.
    let saved = lab.dir().join("sysconfig-ipvsadm");
    let s002 = seed("002-ipvsadm.sh")
        .replace("/etc/sysconfig/ipvsadm", saved.to_str().unwrap())
        .replace("192.168.200.188", VIP)
        .replace("192.168.200.60", "198.18.0.11")
        .replace("192.168.200.70", "198.18.0.12");
    for line in s002.lines().filter(|l| !l.contains("-ln")) {
        lab.ipvsadm_ok(line);
    }
    // What `ipvsadm-save > /etc/sysconfig/ipvsadm` wrote: seed 001's table.
    assert_eq!(
        std::fs::read_to_string(&saved).unwrap(),
        format!(
            "-A -t {VIP}:80 -s wlc\n\
             -a -t {VIP}:80 -r 198.18.0.11:80 -g -w 1\n\
             -a -t {VIP}:80 -r 198.18.0.12:80 -g -w 1\n"
        )
    );
    let listing = lab.ipvsadm_ok("ipvsadm -ln");
    assert!(
        listing.starts_with(&format!("{header}TCP  {VIP}:80 rr\n")),
        "{listing}"
    );
    let a = answers(&lab, 6);
    assert!(alternates(&a), "rr alternates: {a:?}");

    // ipvsadm-save's rules round-trip: save, clear, restore, save again.
    let f1 = lab.dir().join("rules.1");
    let f2 = lab.dir().join("rules.2");
    lab.ipvsadm_ok(&format!(
        "ipvsadm -E -t {VIP}:80 -s rr -p 600 -M 255.255.255.0"
    ));
    lab.ipvsadm_ok(&format!("ipvsadm -e -t {VIP}:80 -r 198.18.0.12 -w 3"));
    lab.ipvsadm_ok("ipvsadm -A -u 198.18.0.100:53 -s sh");
    lab.ipvsadm_ok("ipvsadm -a -u 198.18.0.100:53 -r 198.18.0.11 -w 0");
    lab.ipvsadm_ok(&format!("ipvsadm-save -n > {}", f1.display()));
    let before = lab.ipvsadm_ok("ipvsadm -Ln");
    lab.ipvsadm_ok("ipvsadm -C");
    assert_eq!(lab.ipvsadm_ok("ipvsadm -Ln"), header);
    lab.ipvsadm_ok(&format!("ipvsadm-restore < {}", f1.display()));
    lab.ipvsadm_ok(&format!("ipvsadm --save > {}", f2.display()));
    let (r1, r2) = (
        std::fs::read_to_string(&f1).unwrap(),
        std::fs::read_to_string(&f2).unwrap(),
    );
    assert_eq!(
        r1,
        format!(
            "-A -t {VIP}:80 -s rr -p 600 -M 255.255.255.0\n\
             -a -t {VIP}:80 -r 198.18.0.11:80 -g -w 1\n\
             -a -t {VIP}:80 -r 198.18.0.12:80 -g -w 3\n\
             -A -u {VIP}:53 -s sh\n\
             -a -u {VIP}:53 -r 198.18.0.11:53 -g -w 0\n"
        )
    );
    assert_eq!(r1, r2, "save, restore, save: the same rules");
    assert_eq!(shape(&lab.ipvsadm_ok("ipvsadm -Ln")), shape(&before));
    // A restore that fails on a line changes nothing.
    let (code, _, err) = lab.ipvsadm_shell(&format!("ipvsadm -R < {}", f1.display()));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("line 1: service"), "{err}");
    assert_eq!(shape(&lab.ipvsadm_ok("ipvsadm -Ln")), shape(&before));
    // What lbd has not: refused, by name, nothing changed.
    let (code, _, err) = lab.ipvsadm_shell(&format!("ipvsadm -A -u {VIP}:5353 -o"));
    assert_eq!(code, 64);
    assert!(err.contains("`-o` is not supported"), "{err}");
    assert_eq!(shape(&lab.ipvsadm_ok("ipvsadm -Ln")), shape(&before));

    // Seed 004 on a cleared table: the listing the document prints.
    lab.ipvsadm_ok("ipvsadm -C");
    let rewrite = |t: &str| {
        t.replace("192.168.214.140", VIP)
            .replace("192.168.214.143", "198.18.0.11")
            .replace("192.168.214.145", "198.18.0.12")
    };
    let s004 = rewrite(&seed("004-ipvsadm.sh"));
    let lines: Vec<&str> = s004.lines().collect();
    for line in &lines[..3] {
        lab.ipvsadm_ok(line);
    }
    let listing = lab.ipvsadm_ok(lines[3]);
    let want = rewrite(&seed("004-ipvsadm-Ln.txt")).replace("size=4096", "size=65536");
    assert_eq!(fields(&listing), fields(&want));
    let a = answers(&lab, 10);
    assert!(alternates(&a), "the document's curl loop alternates: {a:?}");
    // The connection and timeout listings read as ipvsadm's: an open
    // keep-alive connection is listed ESTABLISHED.
    let mut client = KeepAlive::open(&lab);
    let first = client.ask();
    assert!(first == "rs1" || first == "rs2", "{first}");
    let conns = lab.ipvsadm_ok("ipvsadm -Lnc");
    assert!(
        conns.starts_with("IPVS connection entries\npro expire state"),
        "{conns}"
    );
    let established: Vec<&str> = conns
        .lines()
        .filter(|l| l.contains(" ESTABLISHED ") && l.contains(&format!(" {VIP}:80 ")))
        .collect();
    assert_eq!(established.len(), 1, "{conns}");
    assert_eq!(established[0].split_whitespace().count(), 6, "{conns}");
    drop(client);
    assert_eq!(
        lab.ipvsadm_ok("ipvsadm -L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    // --stats: the service's Conns column counts the curls (the counters
    // are gathered from the workers, so wait for them).
    wait("11 connections counted", || {
        let stats = lab.ipvsadm_ok("ipvsadm -Ln --stats");
        stats
            .lines()
            .find(|l| l.starts_with("TCP  "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|c| c.parse::<u64>().ok())
            .is_some_and(|c| c >= 11)
    });
    lbd.stop();
}

/// The lab's base configuration for a director at 198.18.0.`n` in
/// namespace `role`: its port with a kernel interface (health checks,
/// VRRP), its socket, its own EAL prefix.
fn base(lab: &Lab, role: &str, n: u8) -> PathBuf {
    let path = lab.dir().join(format!("base-{role}.ron"));
    std::fs::write(
        &path,
        format!(
            r#"(
    eal: (cores: "0-1", no_huge: true, memory_mb: Some(512), no_pci: true,
          file_prefix: Some("lbd-e2e-{prefix}-{role}")),
    ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
             address: "198.18.0.{n}/24", kernel: Some((iface: "lbd-lan0")))],
    conn_table: (capacity: 65536),
    control: (socket: "{socket}"),
)
"#,
            prefix = lab.prefix,
            socket = lab.socket_of(role).display()
        ),
    )
    .unwrap();
    path
}

/// `lbctl import FORMAT INPUT --base BASE`, written next to the input.
fn import(format: &str, input: &Path, base: &Path) -> PathBuf {
    let out = Command::new(lbctl_bin())
        .args(["import", format])
        .arg(input)
        .arg("--base")
        .arg(base)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "import failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = input.with_extension("ron");
    std::fs::write(&path, text).unwrap();
    path
}

/// (address, up by its check and applied, weight, fallback) per member of
/// the first service, from lbd in `role`.
fn members(lab: &Lab, role: &str) -> Vec<(String, Option<bool>, u64, bool)> {
    let (_, out, _) = lab.lbctl_in(role, &["--json", "list"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v[0]["reals"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let h = &r["health"];
                    let w = r["weight"].as_u64().unwrap_or(0);
                    let up = h["up"].as_bool();
                    // Checked, and the published weight agrees with it.
                    let applied = (h["checked"] == true && up == Some(w > 0))
                        .then_some(up)
                        .flatten();
                    (
                        r["address"].as_str().unwrap_or("").to_string(),
                        applied,
                        w,
                        r["fallback"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn up(m: &[(String, Option<bool>, u64, bool)], ip: &str) -> Option<bool> {
    m.iter().find(|r| r.0 == ip && !r.3).and_then(|r| r.1)
}

/// Stop real server `rs`'s HTTP server and wait until nothing listens.
fn stop_httpd(lab: &Lab, rs: usize) {
    let pid = std::fs::read_to_string(lab.state_dir().join(format!("rs{rs}.pid"))).unwrap();
    let ok = Command::new("kill")
        .arg(pid.trim())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill rs{rs} httpd");
    wait(&format!("rs{rs} httpd stopped"), || {
        !lab.exec(
            &format!("rs{rs}"),
            &["sh", "-c", "ss -Hltn 'sport = :80' | grep -q ."],
        )
        .0
    });
}

/// Start real server `rs`'s HTTP server answering `name`, and wait until it
/// listens.
fn start_httpd(lab: &Lab, rs: usize, name: &str) {
    let status = Command::new("setsid")
        .args(["-f", "ip", "netns", "exec", &lab.ns(&format!("rs{rs}"))])
        .arg("python3")
        .arg(repo().join("scripts/lab-httpd.py"))
        .args(["--name", name, "--port", "80", "--pid-file"])
        .arg(lab.state_dir().join(format!("rs{rs}.pid")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    wait(&format!("rs{rs} httpd listening"), || {
        lab.exec(
            &format!("rs{rs}"),
            &["sh", "-c", "ss -Hltn 'sport = :80' | grep -q ."],
        )
        .0
    });
}

#[test]
fn keepalived_seed_imported_for_two_directors() {
    if !may_run("keepalived_seed_imported_for_two_directors") {
        return;
    }
    let lab = Lab::up_with("lvka", 2, &["--dir2"]);
    // Device A as the document gives it; device B "the same, except":
    // state BACKUP, priority 50. Addresses rewritten; delay_loop 30 -> 1
    // so that a stopped server is found in seconds.
    let a_conf = seed("003-keepalived-bypass.conf")
        .replace("172.16.0.30", VIP)
        .replace("172.16.0.31", "198.18.0.11")
        .replace("172.16.0.32", "198.18.0.12")
        .replace("delay_loop 30", "delay_loop 1");
    let b_conf = a_conf
        .replace("state MASTER", "state BACKUP")
        .replace("priority 100", "priority 50");
    let (a_in, b_in) = (lab.dir().join("a.conf"), lab.dir().join("b.conf"));
    std::fs::write(&a_in, &a_conf).unwrap();
    std::fs::write(&b_in, &b_conf).unwrap();
    let a_ron = import("keepalived", &a_in, &base(&lab, "dir", 2));
    let b_ron = import("keepalived", &b_in, &base(&lab, "dir2", 3));
    let text = std::fs::read_to_string(&a_ron).unwrap();
    assert!(
        text.contains("`state MASTER`"),
        "the notes head the file:\n{text}"
    );

    let a = lab.start_lbd_from("dir", a_ron.to_str().unwrap(), &[]);
    let b = lab.start_lbd_from("dir2", b_ron.to_str().unwrap(), &[]);
    wait("A master, B backup", || {
        lab.vrrp_state("dir") == "MASTER" && lab.vrrp_state("dir2") == "BACKUP"
    });
    wait("A sees both servers up", || {
        let m = members(&lab, "dir");
        up(&m, "198.18.0.11") == Some(true) && up(&m, "198.18.0.12") == Some(true)
    });
    let r = answers(&lab, 6);
    assert!(alternates(&r), "lb_algo rr: {r:?}");

    // A stopped real server is taken out (TCP_CHECK): everything to rs2.
    stop_httpd(&lab, 1);
    wait("A takes rs1 out", || {
        up(&members(&lab, "dir"), "198.18.0.11") == Some(false)
    });
    assert_eq!(answers(&lab, 4), ["rs2"; 4]);

    // The master dies: the backup takes the VIP and serves it.
    drop(a);
    wait("B master", || lab.vrrp_state("dir2") == "MASTER");
    wait("B takes rs1 out", || {
        up(&members(&lab, "dir2"), "198.18.0.11") == Some(false)
    });
    assert_eq!(answers(&lab, 3), ["rs2"; 3]);
    let rb = b.stop();
    assert!(rb.get("forwarded_dr") > 0, "B served the VIP as master");
}

#[test]
fn ldirectord_seed_imported_with_its_fallback() {
    if !may_run("ldirectord_seed_imported_with_its_fallback") {
        return;
    }
    let lab = Lab::up("lvld", 2);
    // The document's web servers answer "RS 1 SERVER" / "RS 2 SERVER";
    // its negotiate check looks for "RS" in /index.html.
    for rs in [1, 2] {
        stop_httpd(&lab, rs);
        start_httpd(&lab, rs, &format!("RS {rs} SERVER"));
    }
    // fallback=127.0.0.1:80: the director's own web server, holding the
    // VIP on lo like a real server.
    let (ok, _, err) = lab.exec(
        "dir",
        &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"],
    );
    assert!(ok, "{err}");
    let mut fallback_web = Command::new("ip")
        .args(["netns", "exec", &lab.ns("dir"), "timeout", "300", "python3"])
        .arg(repo().join("scripts/lab-httpd.py"))
        .args(["--name", "sorry, all servers are down", "--port", "80"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cf = lab.dir().join("ldirectord.cf");
    std::fs::write(
        &cf,
        seed("004-ldirectord.cf")
            .replace("192.168.214.140", VIP)
            .replace("192.168.214.143", "198.18.0.11")
            .replace("192.168.214.145", "198.18.0.12"),
    )
    .unwrap();
    let ron = import("ldirectord", &cf, &base(&lab, "dir", 2));
    let lbd = lab.start_lbd_from("dir", ron.to_str().unwrap(), &[]);
    wait("both servers checked up", || {
        let m = members(&lab, "dir");
        up(&m, "198.18.0.11") == Some(true) && up(&m, "198.18.0.12") == Some(true)
    });
    // `for i in {1..10};do curl 192.168.214.140;done`: RS 1, RS 2, ...
    let a = answers(&lab, 10);
    assert!(alternates(&a), "{a:?}");
    assert!(
        a.iter().all(|x| x == "RS 1 SERVER" || x == "RS 2 SERVER"),
        "{a:?}"
    );

    // quiescent=no: a failed server is removed; the other serves alone.
    stop_httpd(&lab, 1);
    wait("rs1 out", || {
        up(&members(&lab, "dir"), "198.18.0.11") == Some(false)
    });
    assert_eq!(answers(&lab, 3), ["RS 2 SERVER"; 3]);

    // All down: the fallback answers, and ipvsadm's listing shows it.
    stop_httpd(&lab, 2);
    wait("both out, the fallback in service", || {
        let m = members(&lab, "dir");
        up(&m, "198.18.0.12") == Some(false)
            && m.iter().any(|r| r.3 && r.0 == "198.18.0.2" && r.2 > 0)
    });
    assert_eq!(answers(&lab, 2), ["sorry, all servers are down"; 2]);
    let listing = lab.lbctl_ok(&["ipvsadm", "-Ln"]);
    assert!(
        listing.contains("  -> 198.18.0.2:80                Route   1 "),
        "{listing}"
    );

    // A server comes back: the fallback leaves.
    start_httpd(&lab, 2, "RS 2 SERVER");
    wait("rs2 back, the fallback out", || {
        let m = members(&lab, "dir");
        up(&m, "198.18.0.12") == Some(true) && m.iter().any(|r| r.3 && r.2 == 0)
    });
    assert_eq!(answers(&lab, 2), ["RS 2 SERVER"; 2]);
    let listing = lab.lbctl_ok(&["ipvsadm", "-Ln"]);
    assert!(!listing.contains("198.18.0.2:80"), "{listing}");
    lbd.stop();
    let _ = fallback_web.kill();
    let _ = fallback_web.wait();
}

#[test]
fn keepalived_fwmark_seed_imports_to_a_service_group() {
    if !may_run("keepalived_fwmark_seed_imports_to_a_service_group") {
        return;
    }
    let lab = Lab::up("lvfw", 2);
    // Seed 003's first scheme: `virtual_server fwmark 3`, the marks set by
    // iptables rules that keepalived.conf does not hold. Addresses
    // rewritten; delay_loop 30 -> 1.
    let conf = seed("003-keepalived-fwmark.conf")
        .replace("172.16.0.30", VIP)
        .replace("172.16.0.31", "198.18.0.11")
        .replace("172.16.0.32", "198.18.0.12")
        .replace("delay_loop 30", "delay_loop 1");
    let input = lab.dir().join("fwmark.conf");
    std::fs::write(&input, &conf).unwrap();
    let ron = import("keepalived", &input, &base(&lab, "dir", 2));
    let text = std::fs::read_to_string(&ron).unwrap();
    assert!(
        text.contains("its members are ASSUMED to be 198.18.0.100:80/tcp"),
        "the assumed members are said at the top:\n{text}"
    );
    let lbd = lab.start_lbd_from("dir", ron.to_str().unwrap(), &[]);
    wait("master", || lab.vrrp_state("dir") == "MASTER");
    wait("both servers up", || {
        let m = members(&lab, "dir");
        up(&m, "198.18.0.11") == Some(true) && up(&m, "198.18.0.12") == Some(true)
    });
    // The group serves the assumed member: rr (persistence_timeout 0).
    let r = answers(&lab, 6);
    assert!(alternates(&r), "lb_algo rr: {r:?}");
    let listing = lab.ipvsadm_ok("ipvsadm -Ln");
    assert!(listing.contains("\nFWM  3 rr\n"), "{listing}");
    let r = lbd.stop();
    assert_eq!(r.get("conn_created"), 6);
}
