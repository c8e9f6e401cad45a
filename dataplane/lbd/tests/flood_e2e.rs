//! The SYN-flood defence end to end: a flood of spoofed SYNs at
//! 10 × capacity / 60 per second (ten times what the table can hold over
//! IPVS's 60 s SYN_RECV timeout) against a director with a small table,
//! while a legitimate client keeps making requests and an established
//! keep-alive connection stays open. With the defence (the default, Auto)
//! at least 99 % of the client's requests succeed; with it forced off (the
//! control run: lbd as it was) the flood locks the client out.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CAPACITY: u32 = 2048;
const FLOOD_SECONDS: u32 = 30;

const SERVICE: &str = r#"(vip: "198.18.0.100", port: 80, scheduler: Wlc, real_servers: [
    (address: "198.18.0.11"), (address: "198.18.0.12")])"#;

fn flood(lab: &Lab) -> Child {
    let rate = 10.0 * CAPACITY as f64 / 60.0;
    Command::new("ip")
        .args(["netns", "exec", &lab.ns("client"), "/usr/bin/python3"])
        .arg(repo().join("scripts/syn-flood.py"))
        .args(["--iface", "eth0", "--dst-mac", &lab.env["LAB_DIR_MAC"]])
        .args(["--vip", VIP, "--rate", &format!("{rate}")])
        .args(["--seconds", &FLOOD_SECONDS.to_string()])
        .args([
            "--count",
            &((rate * FLOOD_SECONDS as f64) as u64 + 1).to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("syn-flood.py")
}

struct Outcome {
    ok: usize,
    total: usize,
    flood_sent: String,
    saw_defending: bool,
    keepalive_after: String,
}

/// Run the flood against lbd started with `mode`, with the client asking
/// all along; stop lbd and return what happened and its report.
fn run(lab: &Lab, mode: &str) -> (Outcome, Report) {
    let lbd = lab.start_lbd_with(
        SERVICE,
        &format!("conn_table: (capacity: {CAPACITY}), syn_flood: (mode: {mode}),"),
    );
    lbd.wait_resolved(&["198.18.0.11", "198.18.0.12"]);
    let mut ka = KeepAlive::open(lab);
    let first = ka.ask();
    assert!(first == "rs1" || first == "rs2", "keep-alive: {first:?}");
    let mut f = flood(lab);
    let start = Instant::now();
    let (mut ok, mut total, mut saw_defending) = (0, 0, false);
    // The client asks until the flood ends (bounded: at most 1 000
    // requests, and the flood itself stops after FLOOD_SECONDS).
    while f.try_wait().unwrap().is_none() && total < 1000 {
        let (good, out, _) = lab.exec(
            "client",
            &["curl", "-sS", "--max-time", "2", &format!("http://{VIP}/")],
        );
        total += 1;
        if good && (out.trim() == "rs1" || out.trim() == "rs2") {
            ok += 1;
        }
        if total % 10 == 0 {
            let st = lab.lbctl_ok(&["--json", "status"]);
            let v: serde_json::Value = serde_json::from_str(&st).unwrap();
            saw_defending |= v["workers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["flood_defence"] == true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = f.wait_with_output().unwrap();
    let flood_sent = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let keepalive_after = ka.ask();
    eprintln!(
        "mode {mode}: {ok} of {total} requests succeeded during {:.1} s of flood ({flood_sent}); \
         keep-alive before {first:?}, after {keepalive_after:?}",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(
        keepalive_after, first,
        "the established connection kept working on its real server"
    );
    let r = lbd.stop();
    (
        Outcome {
            ok,
            total,
            flood_sent,
            saw_defending,
            keepalive_after,
        },
        r,
    )
}

#[test]
fn syn_flood_does_not_lock_clients_out() {
    if !may_run("syn_flood_does_not_lock_clients_out") {
        return;
    }
    let lab = Lab::up("flood", 2);
    let (with, r) = run(&lab, "Auto");
    let pct = with.ok as f64 * 100.0 / with.total as f64;
    println!(
        "SYN flood at 10 x capacity/60 ({} SYN/s, capacity {CAPACITY}) with the defence: \
         {} of {} client requests succeeded ({pct:.1} %); flood {}; conn_embryonic_evicted {}, \
         flood_defence_engaged {}, drop_conn_table_full {}",
        10 * CAPACITY / 60,
        with.ok,
        with.total,
        with.flood_sent,
        r.get("conn_embryonic_evicted"),
        r.get("flood_defence_engaged"),
        r.get("drop_conn_table_full"),
    );
    assert!(
        with.total >= 50,
        "the client made too few requests to judge"
    );
    assert!(
        with.ok * 100 >= with.total * 99,
        "with the defence, >= 99 % of requests succeed: {} of {}",
        with.ok,
        with.total
    );
    assert!(
        with.saw_defending,
        "lbctl status showed the defence engaged"
    );
    assert!(r.get("flood_defence_engaged") >= 1);
    assert!(
        r.get("conn_embryonic_evicted") > 0,
        "the flood's half-open entries made room"
    );
    assert!(!with.keepalive_after.is_empty());

    // Control: the same flood with the defence off locks the client out,
    // which shows the flood is strong enough for the figure above to mean
    // something.
    let (without, r) = run(&lab, "Off");
    println!(
        "the same flood without the defence: {} of {} requests succeeded; drop_conn_table_full {}",
        without.ok,
        without.total,
        r.get("drop_conn_table_full"),
    );
    assert!(!without.saw_defending);
    assert_eq!(r.get("conn_embryonic_evicted"), 0);
    assert!(r.get("drop_conn_table_full") > 0);
    // Requests fail once the table is full (about 6 s in); each failure
    // costs the client its 2 s timeout, so there are a handful.
    assert!(
        without.total - without.ok >= 3,
        "without the defence the flood should lock the client out: {} of {} succeeded",
        without.ok,
        without.total
    );
}
