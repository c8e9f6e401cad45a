//! A real server added live is resolved before it is scheduled: clients
//! that arrive meanwhile go to the servers that can take them, so none of
//! their SYNs is dropped as `drop_neigh_unresolved` (which cost each such
//! client a 1 s SYN retransmission).

mod common;

use common::*;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SVC: &str = "198.18.0.100:80";

/// New connections back to back, as fast as one client can (bounded: COUNT
/// requests or 60 s); one line per answer ("ERR ..." on failure).
const CLIENT_PY: &str = r#"
import http.client, sys, time
count, t0 = int(sys.argv[2]), time.monotonic()
for i in range(count):
    if time.monotonic() - t0 > 60:
        break
    try:
        c = http.client.HTTPConnection(sys.argv[1], 80, timeout=10)
        c.request("GET", "/")
        print(c.getresponse().read().decode().strip(), flush=True)
        c.close()
    except Exception as e:
        print("ERR", e, flush=True)
"#;

#[test]
fn a_live_added_server_loses_no_syn() {
    if !may_run("a_live_added_server_loses_no_syn") {
        return;
    }
    let lab = Lab::up("ladd", 2);
    let lbd = lab.start_lbd(
        r#"(vip: "198.18.0.100", port: 80, scheduler: Rr, real_servers: [
            (address: "198.18.0.11")])"#,
    );
    lbd.wait_resolved(&["198.18.0.11"]);
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.ns("client"), "/usr/bin/python3", "-c"])
        .arg(CLIENT_PY)
        .args([VIP, "1500"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 client");
    let answers = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
    let reader = {
        let answers = answers.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                answers.lock().unwrap().push((Instant::now(), line));
            }
        })
    };
    let count = || answers.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count() < 50 {
        assert!(Instant::now() < deadline, "no traffic: {} answers", count());
        std::thread::sleep(Duration::from_millis(10));
    }
    lab.lbctl_ok(&["real", "add", SVC, "198.18.0.12"]);
    let added = Instant::now();
    let held = "real server 198.18.0.12 held out of scheduling until its MAC is resolved";
    lbd.wait_for(|_, e| e.iter().any(|l| l.contains(held)), held);
    let resolved = "real server 198.18.0.12 resolved: in service";
    lbd.wait_for(|_, e| e.iter().any(|l| l.contains(resolved)), resolved);
    let _ = child.wait();
    reader.join().unwrap();
    let all = answers.lock().unwrap().clone();
    let after: Vec<&String> = all
        .iter()
        .filter(|(t, _)| *t > added)
        .map(|(_, a)| a)
        .collect();
    eprintln!(
        "{} requests, {} after the add, {} of them answered by rs2",
        all.len(),
        after.len(),
        after.iter().filter(|a| **a == "rs2").count()
    );
    assert!(
        all.iter().all(|(_, a)| a == "rs1" || a == "rs2"),
        "every request answered: {:?}",
        all.iter()
            .filter(|(_, a)| a != "rs1" && a != "rs2")
            .collect::<Vec<_>>()
    );
    assert!(
        after.iter().filter(|a| **a == "rs2").count() >= 10,
        "the new server serves once resolved"
    );
    let r = lbd.stop();
    assert_eq!(
        r.get("drop_neigh_unresolved"),
        0,
        "no SYN went to the new server before its MAC was known"
    );
}
