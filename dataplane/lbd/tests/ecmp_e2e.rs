//! End-to-end test of scale-out: three lbd directors behind a router
//! (`scripts/lab up --ecmp 3`), each announcing the VIP by BGP through BIRD
//! (lbd's announce table, BIRD's kernel and BGP protocols), the router
//! spreading flows over them by ECMP (L4 hash), the service in `ecmp` mode
//! (Maglev, mid-flow segments forwarded by the hash) so that a flow the
//! router moves keeps its real server. One scenario, in phases, each
//! counted and printed:
//!
//! 1. spread: new connections from many clients reach all three directors;
//! 2. graceful drain (`lbctl director drain`) of one director under 240
//!    open keep-alive connections, while new connections keep coming: the
//!    drain waits until they stop reaching it, the open connections keep
//!    their real servers, and the drained director gets no new flows; then
//!    `resume`;
//! 3. kill -9 of a director: the router drops it (BFD), measured; the open
//!    connections keep their real servers;
//! 4. the director comes back: announced again, spread again, connections
//!    survive again;
//! 5. a director whose health checks take every real server out withdraws
//!    the VIP, and announces it again when they pass again;
//! 6. the same with both real servers quiesced by hand (weight 0).
//!
//! Every wait is for a condition (BGP Established, next hops in the
//! router's FIB, a drain's report), bounded.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PREFIX: &str = "ecmp";
const DIRECTORS: usize = 3;
const ECMP_VIP: &str = "198.18.100.1";
const KEEPALIVE_CONNS: usize = 240;
const NEW_CONNS: usize = 300;

/// The service on director `k`: an exec health check that fails while the
/// file `down-dirK` exists in the lab's directory (so one director's checks
/// can fail while the real servers keep serving the others).
fn services(lab: &Lab, k: usize) -> String {
    format!(
        r#"(vip: "198.18.100.1", port: 80, scheduler: Mh, ecmp: true,
    health_check: Some((check: Exec(command: "/bin/sh",
                                    args: ["-c", "test ! -e {down}"]),
                        interval_ms: 200, timeout_ms: 2000, rise: 1, fall: 1)),
    real_servers: [(address: "198.18.0.11"), (address: "198.18.0.12")])"#,
        down = down_file(lab, k).display()
    )
}

fn down_file(lab: &Lab, k: usize) -> std::path::PathBuf {
    lab.dir().join(format!("down-dir{k}"))
}

fn role(k: usize) -> String {
    format!("dir{k}")
}

/// Director `k`'s sections: its port with a kernel interface (where BIRD
/// peers), the announce table BIRD learns, idle workers that sleep (three
/// lbd share two CPUs).
fn sections(lab: &Lab, k: usize) -> String {
    format!(
        r#"ports: [(name: "lan0", device: "net_af_packet0,iface=eth0",
                    address: "{addr}/24", kernel: Some((iface: "lbd-lan0")))],
           workers: (idle_sleep_us: Some(200)),
           metrics: (listen: None),
           bgp: Some((port: "lan0", table: {table}, linger_ms: 500, drain_quiet_ms: 1000,
                      birdc: Some("{ctl}"))),"#,
        addr = lab.env[&format!("LAB_DIR{k}_IP")],
        table = lab.env["LAB_BGP_TABLE"],
        ctl = lab.env[&format!("LAB_DIR{k}_BIRD_CTL")],
    )
}

fn start(lab: &Lab, k: usize) -> Lbd {
    // A failed earlier run may have left its mark behind.
    let _ = std::fs::remove_file(down_file(lab, k));
    let lbd = lab.start_lbd_in(&role(k), &services(lab, k), &sections(lab, k));
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    lbd
}

/// Wait (at most `secs`) for `cond`.
fn wait(what: &str, secs: u64, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `lbctl --json status` of director `k` (Null when it does not answer).
fn status(lab: &Lab, k: usize) -> serde_json::Value {
    let (code, out, _) = lab.lbctl_in(&role(k), &["--json", "status"]);
    if code != 0 {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&out).unwrap_or_default()
}

/// Director `k`'s BGP session, as BIRD reports it through lbd, is up.
fn established(lab: &Lab, k: usize) -> bool {
    let st = status(lab, k);
    st["announce"]["speaker"]["sessions"]
        .as_array()
        .is_some_and(|s| {
            s.iter()
                .any(|s| s["info"].as_str().unwrap_or("").starts_with("Established"))
        })
}

/// Director `k` has its VIP route announced.
fn announced(lab: &Lab, k: usize) -> bool {
    status(lab, k)["announce"]["vips"]
        .as_array()
        .is_some_and(|v| v.iter().any(|v| v["announced"] == true))
}

/// New flows director `k` took (new connections, mid-flow adoptions).
fn flows(lab: &Lab, k: usize) -> u64 {
    let st = status(lab, k);
    let c = |n: &str| st["counters"][n].as_u64().unwrap_or(0);
    c("conn_created") + c("conn_adopted_midflow")
}

fn conns_created(lab: &Lab, k: usize) -> u64 {
    status(lab, k)["counters"]["conn_created"]
        .as_u64()
        .unwrap_or(0)
}

/// The next hops of the router's route to the VIP (its FIB).
fn next_hops(lab: &Lab) -> Vec<String> {
    let (_, out, _) = lab.exec("rtr", &["ip", "route", "show", ECMP_VIP]);
    out.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect()
}

/// The many-clients driver (scripts/lab-conns.py) in the client namespace.
struct Clients {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
}

impl Clients {
    fn start(lab: &Lab) -> Clients {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("client"), "python3"])
            .arg(repo().join("scripts/lab-conns.py"))
            .args([
                "--vip",
                ECMP_VIP,
                "--sources",
                &lab.env["LAB_CLIENT_SOURCES"],
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 scripts/lab-conns.py");
        let to = child.stdin.take().unwrap();
        let from = BufReader::new(child.stdout.take().unwrap());
        Clients { child, to, from }
    }

    /// One command; the real server that answered each request (None: no
    /// answer).
    fn cmd(&mut self, c: &str) -> Vec<Option<String>> {
        self.send(c);
        self.answers()
    }

    /// Send a command without waiting for its answers.
    fn send(&mut self, c: &str) {
        writeln!(self.to, "{c}").unwrap();
        self.to.flush().unwrap();
    }

    /// The answers to the command sent last.
    fn answers(&mut self) -> Vec<Option<String>> {
        let mut line = String::new();
        self.from.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("lab-conns.py said {line:?}: {e}"));
        v["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `NEW_CONNS` new connections; each director's share, printed and checked
/// (33 % ± 15 %), and every request answered.
fn spread(lab: &Lab, clients: &mut Clients, what: &str) {
    let before: Vec<u64> = (1..=DIRECTORS).map(|k| conns_created(lab, k)).collect();
    let answers = clients.cmd(&format!("new {NEW_CONNS}"));
    let answered = answers.iter().filter(|a| a.is_some()).count();
    let after: Vec<u64> = (1..=DIRECTORS).map(|k| conns_created(lab, k)).collect();
    let got: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let total: u64 = got.iter().sum();
    let shares: Vec<f64> = got
        .iter()
        .map(|&g| g as f64 / total.max(1) as f64)
        .collect();
    println!(
        "{what}: {NEW_CONNS} new connections, {answered} answered; per director {got:?} \
         = {:?} %",
        shares
            .iter()
            .map(|s| (s * 1000.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    assert_eq!(answered, NEW_CONNS, "{what}: every request answered");
    assert_eq!(total, NEW_CONNS as u64, "{what}: each connection seen once");
    for (k, s) in shares.iter().enumerate() {
        assert!(
            (0.18..=0.48).contains(s),
            "{what}: director {} took {:.1} % of new connections (33 % ± 15 %)",
            k + 1,
            s * 100.0
        );
    }
}

/// Ask on every open connection; how many answered from the real server
/// they had at first (printed, and checked: at least 99 %).
fn still_same(clients: &mut Clients, first: &[Option<String>], what: &str) {
    let now = clients.cmd("ask");
    same_servers(&now, first, what);
}

/// `now`'s answers against `first`'s: printed, and at least 99 % the same.
fn same_servers(now: &[Option<String>], first: &[Option<String>], what: &str) {
    let same = now
        .iter()
        .zip(first)
        .filter(|(a, b)| a.is_some() && a == b)
        .count();
    let lost = now.iter().filter(|a| a.is_none()).count();
    println!(
        "{what}: {same} of {} keep-alive connections answered by the same real server \
         ({:.1} %), {lost} without an answer",
        first.len(),
        same as f64 * 100.0 / first.len() as f64
    );
    assert!(
        same * 100 >= first.len() * 99,
        "{what}: only {same} of {} kept their real server",
        first.len()
    );
}

#[test]
fn three_directors_spread_drain_die_and_return() {
    if !may_run("three_directors_spread_drain_die_and_return") {
        return;
    }
    let lab = Lab::up_with(PREFIX, 2, &["--ecmp", &DIRECTORS.to_string()]);
    let mut lbds: Vec<Option<Lbd>> = (1..=DIRECTORS).map(|k| Some(start(&lab, k))).collect();
    wait("BGP Established on every director", 60, || {
        (1..=DIRECTORS).all(|k| established(&lab, k))
    });
    wait("three next hops in the router's FIB", 60, || {
        next_hops(&lab).len() == DIRECTORS
    });
    let text = lab.lbctl_in(&role(1), &["status"]).1;
    assert!(text.contains("bgp: speaker ok"), "{text}");
    assert!(text.contains("ANNOUNCED announced"), "{text}");

    // 1. Spread.
    let mut clients = Clients::start(&lab);
    spread(&lab, &mut clients, "spread");

    // 2. Graceful drain of director 1 under open keep-alive connections.
    let first = clients.cmd(&format!("open {KEEPALIVE_CONNS}"));
    let opened = first.iter().filter(|a| a.is_some()).count();
    println!("drain: {opened} of {KEEPALIVE_CONNS} keep-alive connections open");
    assert_eq!(
        opened, KEEPALIVE_CONNS,
        "every keep-alive connection opened"
    );
    // The drain runs while new connections keep coming.
    clients.send(&format!("new {NEW_CONNS}"));
    let t0 = Instant::now();
    let (code, out, err) = lab.lbctl_in(&role(1), &["director", "drain", "--wait", "30"]);
    println!(
        "drain: lbctl director drain ({:.1} s):\n{out}",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(code, 0, "drain: the traffic moved\n{out}\n{err}");
    assert!(out.contains("drained: traffic moved"), "{out}");
    let during = clients.answers();
    let answered = during.iter().filter(|a| a.is_some()).count();
    println!("drain: {answered} of {NEW_CONNS} new connections made during the drain answered");
    assert_eq!(
        answered, NEW_CONNS,
        "drain: new connections during the drain answered"
    );
    let on_dir1 = flows(&lab, 1);
    wait("director 1 out of the router's FIB", 30, || {
        !next_hops(&lab).contains(&lab.env["LAB_DIR1_IP"])
    });
    let text = lab.lbctl_in(&role(1), &["status"]).1;
    assert!(text.contains("withdrawn drained"), "{text}");
    still_same(&mut clients, &first, "drain");
    let fresh = clients.cmd("new 150");
    assert!(
        fresh.iter().all(|a| a.is_some()),
        "drain: new connections answered"
    );
    let dir1_new = flows(&lab, 1) - on_dir1;
    println!(
        "drain: the drained director took {dir1_new} new flows (150 new connections, 240 asked)"
    );
    assert_eq!(dir1_new, 0, "the drained director carries no new flows");
    let (code, out, err) = lab.lbctl_in(&role(1), &["director", "resume"]);
    assert_eq!(code, 0, "resume: {out}{err}");
    wait("director 1 back in the router's FIB", 30, || {
        next_hops(&lab).len() == DIRECTORS
    });
    still_same(&mut clients, &first, "resume");

    // 3. kill -9 of director 2 while every connection sends a request:
    //    those through director 2 are lost until the router (BFD) moves
    //    them, then TCP retransmits them to another director.
    let victim = lbds[1].take().unwrap();
    let (ok, _, err) = run(Command::new("kill").args(["-KILL", &victim.pid().to_string()]));
    let t0 = Instant::now();
    assert!(ok, "kill -9: {err}");
    clients.send("ask");
    wait("director 2 out of the router's FIB", 30, || {
        !next_hops(&lab).contains(&lab.env["LAB_DIR2_IP"])
    });
    let moved = t0.elapsed();
    drop(victim);
    println!(
        "kill -9: the router dropped director 2 after {:.0} ms (BFD, 3 x 100 ms)",
        moved.as_secs_f64() * 1000.0
    );
    let during = clients.answers();
    same_servers(&during, &first, "kill -9 (requests in flight)");
    still_same(&mut clients, &first, "kill -9 (after)");

    // 4. Director 2 comes back.
    let t0 = Instant::now();
    lbds[1] = Some(start(&lab, 2));
    wait("director 2 announced again", 60, || {
        established(&lab, 2) && announced(&lab, 2) && next_hops(&lab).len() == DIRECTORS
    });
    println!(
        "return: director 2 announced and in the router's FIB {:.1} s after its start",
        t0.elapsed().as_secs_f64()
    );
    spread(&lab, &mut clients, "return");
    still_same(&mut clients, &first, "return");

    // 5. Director 3's health checks fail for both real servers: it
    //    withdraws; when they pass again, it announces again.
    std::fs::write(down_file(&lab, 3), "").unwrap();
    wait("director 3 out of the router's FIB (health)", 30, || {
        !next_hops(&lab).contains(&lab.env["LAB_DIR3_IP"])
    });
    let text = lab.lbctl_in(&role(3), &["status"]).1;
    assert!(text.contains("withdrawn no live real server"), "{text}");
    println!("health checks down: director 3 withdrew the VIP");
    std::fs::remove_file(down_file(&lab, 3)).unwrap();
    wait("director 3 back in the router's FIB (health)", 30, || {
        next_hops(&lab).len() == DIRECTORS
    });
    println!("health checks up again: director 3 announced the VIP again");
    still_same(&mut clients, &first, "health checks back on director 3");

    // 6. No live real server on director 3 (both quiesced there): it
    //    withdraws; with its servers back, it announces again.
    let weights = |w: &str| {
        for rs in ["198.18.0.11", "198.18.0.12"] {
            let (code, out, err) = lab.lbctl_in(
                &role(3),
                &["real", "edit", &format!("{ECMP_VIP}:80"), rs, "--weight", w],
            );
            assert_eq!(code, 0, "real edit: {out}{err}");
        }
    };
    weights("0");
    wait("director 3 out of the router's FIB", 30, || {
        !next_hops(&lab).contains(&lab.env["LAB_DIR3_IP"])
    });
    let text = lab.lbctl_in(&role(3), &["status"]).1;
    assert!(text.contains("withdrawn no live real server"), "{text}");
    println!("no live real server: director 3 withdrew the VIP");
    weights("1");
    wait("director 3 back in the router's FIB", 30, || {
        next_hops(&lab).len() == DIRECTORS
    });
    still_same(&mut clients, &first, "servers back on director 3");

    // Stop: each withdraws first, lingers, then stops cleanly.
    drop(clients);
    for lbd in lbds.into_iter().flatten() {
        let report = lbd.stop();
        assert!(report.get("conn_created") > 0);
    }
    wait("every route withdrawn", 30, || next_hops(&lab).is_empty());
}
