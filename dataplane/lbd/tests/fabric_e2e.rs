//! End-to-end tests of the director in an L3 fabric: one trunk port
//! carrying two 802.1Q VLANs (clients on VLAN 10, NAT real servers on
//! VLAN 20) and its untagged native VLAN, and a tunnel real server behind a
//! router reached through a static route. See `common/mod.rs` for the
//! harness and the root requirement.
//!
//! The lab kernel has no VLAN devices and no VLAN-filtering bridge, so the
//! switch is scripts/vlan-switch.py (a user-space 802.1Q switch) and the
//! tunnel real server decapsulates with scripts/ipip-decap.py.
//!
//! ```text
//!                      fab-sw: vlan-switch.py
//!  fab-dir eth0 ══trunk══ [ c10=10  r20=20  c0=0  rt0=0 ]
//!  (lbd lan0 198.18.0.2,      │       │       │      │
//!   lan0.10 198.18.10.2,  client   rs1      client  fab-rt eth0 198.18.0.254
//!   lan0.20 198.18.20.2)  eth0     eth0     eth1    fab-rt eth1 198.19.5.1
//!                         .10.1    .20.11   .0.1       │
//!                                  (NAT)            fab-rs2 198.19.5.10 (tunnel)
//! ```
//!
//! and on the native VLAN too: a second director fab-dirB (198.18.0.3, its
//! own lbd) and DR real servers fab-rs3, fab-rs4 (198.18.0.13, .14) of an
//! ECMP-mode service on 198.18.0.102, served by both directors.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const P: &str = "fab";
const NAT_VIP: &str = "198.18.0.100";
const TUN_VIP: &str = "198.18.0.101";
const ECMP_VIP: &str = "198.18.0.102";
const DIR_A_MAC: &str = "02:00:c6:12:00:02";
const DIR_B_MAC: &str = "02:00:c6:12:00:03";
/// The ECMP-mode service, the same on both directors.
const ECMP_SERVICE: &str = r#"(vip: "198.18.0.102", port: 80, scheduler: Mh, ecmp: true,
         real_servers: [(address: "198.18.0.13"), (address: "198.18.0.14")])"#;

/// `ip` with arguments; panics with the output on failure.
fn ip(args: &[&str]) {
    let (ok, out, err) = run(Command::new("ip").args(args));
    assert!(ok, "ip {}: {out}{err}", args.join(" "));
}

/// A command in namespace `ns` (`fab-NS`); panics on failure.
fn nsx(ns: &str, args: &[&str]) -> String {
    let name = format!("{P}-{ns}");
    let (ok, out, err) = run(Command::new("ip").args(["netns", "exec", &name]).args(args));
    assert!(ok, "in {name}: {}: {out}{err}", args.join(" "));
    out
}

/// The lab: namespaces fab-*, removed (with every process in them) on drop.
struct FabricLab {
    state: PathBuf,
    _serial: std::sync::MutexGuard<'static, ()>,
}

const NAMESPACES: [&str; 9] = [
    "sw", "client", "dir", "dirB", "rt", "rs1", "rs2", "rs3", "rs4",
];

fn teardown(state: &std::path::Path) {
    for ns in NAMESPACES {
        let name = format!("{P}-{ns}");
        if !std::path::Path::new("/run/netns").join(&name).exists() {
            continue;
        }
        if let Ok(o) = Command::new("ip").args(["netns", "pids", &name]).output() {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
    }
    let _ = std::fs::remove_dir_all(state);
}

/// veth `a_if` in fab-`a` (MAC `mac`) paired with `b_if` in fab-`b`.
fn link(a: &str, a_if: &str, mac: &str, b: &str, b_if: &str) {
    let (na, nb) = (format!("{P}-{a}"), format!("{P}-{b}"));
    ip(&[
        "link", "add", a_if, "netns", &na, "address", mac, "type", "veth", "peer", "name", b_if,
        "netns", &nb,
    ]);
    // Whole, checksummed frames: the switch and the director read them raw.
    for (ns, dev) in [(a, a_if), (b, b_if)] {
        let _ = run(Command::new("ip").args([
            "netns",
            "exec",
            &format!("{P}-{ns}"),
            "ethtool",
            "-K",
            dev,
            "tx",
            "off",
            "rx",
            "off",
            "gro",
            "off",
            "gso",
            "off",
        ]));
        ip(&["-n", &format!("{P}-{ns}"), "link", "set", dev, "up"]);
    }
}

/// Start a lab program in `ns` (detached); waits for its pid file.
fn start(ns: &str, state: &std::path::Path, name: &str, args: &[&str]) {
    let pid_file = state.join(format!("{name}.pid"));
    let log = std::fs::File::create(state.join(format!("{name}.log"))).unwrap();
    Command::new("setsid")
        .args(["-f", "ip", "netns", "exec", &format!("{P}-{ns}"), "python3"])
        .args(args)
        .arg("--pid-file")
        .arg(&pid_file)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "{name} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl FabricLab {
    fn up() -> FabricLab {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let state = std::env::temp_dir().join("lbd-e2e-fab");
        teardown(&state);
        std::fs::create_dir_all(&state).unwrap();
        let lab = FabricLab {
            state,
            _serial: serial,
        };
        for ns in NAMESPACES {
            let name = format!("{P}-{ns}");
            ip(&["netns", "add", &name]);
            let _ = run(Command::new("ip").args([
                "netns",
                "exec",
                &name,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]));
            ip(&["-n", &name, "link", "set", "lo", "up"]);
        }
        // The director's trunk port: no address, the kernel silent.
        link("dir", "eth0", DIR_A_MAC, "sw", "trunk");
        // The second director, on the native VLAN.
        link("dirB", "eth0", DIR_B_MAC, "sw", "dB");
        for d in ["dir", "dirB"] {
            nsx(d, &["sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=8"]);
            ip(&[
                "-n",
                &format!("{P}-{d}"),
                "link",
                "set",
                "eth0",
                "promisc",
                "on",
            ]);
        }
        // The client: VLAN 10 on eth0, the native VLAN on eth1; the NAT
        // VIP through VLAN 10, the tunnel VIP on the native VLAN.
        link("client", "eth0", "02:00:c6:12:0a:01", "sw", "c10");
        link("client", "eth1", "02:00:c6:12:00:01", "sw", "c0");
        ip(&[
            "-n",
            "fab-client",
            "addr",
            "add",
            "198.18.10.1/24",
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n",
            "fab-client",
            "addr",
            "add",
            "198.18.0.1/24",
            "dev",
            "eth1",
        ]);
        ip(&[
            "-n",
            "fab-client",
            "route",
            "add",
            "198.18.0.100/32",
            "via",
            "198.18.10.2",
            "dev",
            "eth0",
        ]);
        // rs1: a NAT real server on VLAN 20, the director its gateway.
        link("rs1", "eth0", "02:00:c6:12:14:0b", "sw", "r20");
        ip(&[
            "-n",
            "fab-rs1",
            "addr",
            "add",
            "198.18.20.11/24",
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n",
            "fab-rs1",
            "route",
            "add",
            "default",
            "via",
            "198.18.20.2",
        ]);
        // The router on the native VLAN, and rs2 behind it: a tunnel real
        // server holding the VIP, answering clients through the router.
        link("rt", "eth0", "02:00:c6:12:00:fe", "sw", "rt0");
        link("rt", "eth1", "02:00:c6:13:05:01", "rs2", "eth0");
        ip(&[
            "-n",
            "fab-rt",
            "addr",
            "add",
            "198.18.0.254/24",
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n",
            "fab-rt",
            "addr",
            "add",
            "198.19.5.1/24",
            "dev",
            "eth1",
        ]);
        nsx("rt", &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        ip(&[
            "-n",
            "fab-rs2",
            "addr",
            "add",
            "198.19.5.10/24",
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n",
            "fab-rs2",
            "route",
            "add",
            "default",
            "via",
            "198.19.5.1",
        ]);
        ip(&[
            "-n",
            "fab-rs2",
            "addr",
            "add",
            &format!("{TUN_VIP}/32"),
            "dev",
            "lo",
        ]);
        nsx(
            "rs2",
            &[
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
            ],
        );
        // rs3, rs4: DR real servers of the ECMP service, on the native VLAN.
        for (i, mac) in [(3, "02:00:c6:12:00:0d"), (4, "02:00:c6:12:00:0e")] {
            let (ns, nsname) = (format!("rs{i}"), format!("{P}-rs{i}"));
            link(&ns, "eth0", mac, "sw", &format!("r{i}"));
            ip(&[
                "-n",
                &nsname,
                "addr",
                "add",
                &format!("198.18.0.1{i}/24"),
                "dev",
                "eth0",
            ]);
            ip(&[
                "-n",
                &nsname,
                "addr",
                "add",
                &format!("{ECMP_VIP}/32"),
                "dev",
                "lo",
            ]);
            nsx(
                &ns,
                &[
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv4.conf.all.arp_ignore=1",
                    "net.ipv4.conf.all.arp_announce=2",
                ],
            );
        }
        for iface in ["trunk", "c10", "c0", "r20", "rt0", "dB", "r3", "r4"] {
            ip(&["-n", "fab-sw", "link", "set", iface, "promisc", "on"]);
        }
        let scripts = repo().join("scripts");
        let s = |f: &str| scripts.join(f).display().to_string();
        let st = |f: &str| lab.state.join(f).display().to_string();
        start(
            "sw",
            &lab.state,
            "switch",
            &[
                &s("vlan-switch.py"),
                "--trunk",
                "trunk",
                "--access",
                "c10=10",
                "--access",
                "r20=20",
                "--access",
                "c0=0",
                "--access",
                "rt0=0",
                "--access",
                "dB=0",
                "--access",
                "r3=0",
                "--access",
                "r4=0",
                "--count-file",
                &st("switch.json"),
                "--max-seconds",
                "600",
            ],
        );
        start(
            "rs1",
            &lab.state,
            "rs1",
            &[&s("lab-httpd.py"), "--name", "rs1", "--port", "80"],
        );
        for rs in ["rs2", "rs3", "rs4"] {
            start(
                rs,
                &lab.state,
                rs,
                &[&s("lab-httpd.py"), "--name", rs, "--port", "80"],
            );
        }
        start(
            "rs2",
            &lab.state,
            "decap",
            &[
                &s("ipip-decap.py"),
                "--count-file",
                &st("decap.json"),
                "--max-seconds",
                "600",
            ],
        );
        lab
    }

    /// Start lbd in fab-dir: the trunk with its two VLANs, the route to
    /// rs2's network, a NAT service on VLAN 20 and a tunnel service behind
    /// the router; workers sleep when idle.
    fn start_lbd(&self) -> Lbd {
        let cfg = format!(
            r#"(
    eal: (cores: "0-1", no_huge: true, memory_mb: Some(512), no_pci: true,
          file_prefix: Some("lbd-e2e-{P}")),
    ports: [(name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24",
             vlans: [(id: 10, address: "198.18.10.2/24"), (id: 20, address: "198.18.20.2/24")])],
    workers: (idle_sleep_us: Some(50)),
    conn_table: (capacity: 65536),
    control: (socket: "{sock}"),
    routes: [(prefix: "198.19.5.0/24", via: "198.18.0.254")],
    services: [
        (vip: "{NAT_VIP}", port: 80, scheduler: Rr,
         real_servers: [(address: "198.18.20.11", forward: Nat)]),
        (vip: "{TUN_VIP}", port: 80, scheduler: Mh,
         real_servers: [(address: "198.19.5.10", forward: Tunnel)]),
        {ECMP_SERVICE},
    ],
)"#,
            sock = self.state.join("lbd.sock").display()
        );
        self.spawn("dir", &cfg)
    }

    /// Start the second director in fab-dirB: a plain port on the native
    /// VLAN and the ECMP service only.
    fn start_lbd_b(&self) -> Lbd {
        let cfg = format!(
            r#"(
    eal: (cores: "0-1", no_huge: true, memory_mb: Some(512), no_pci: true,
          file_prefix: Some("lbd-e2e-{P}B")),
    ports: [(name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.3/24")],
    workers: (idle_sleep_us: Some(50)),
    conn_table: (capacity: 65536),
    control: (socket: "{sock}"),
    services: [{ECMP_SERVICE}],
)"#,
            sock = self.state.join("lbd-b.sock").display()
        );
        self.spawn("dirB", &cfg)
    }

    /// Run lbd in fab-`ns` with configuration `cfg`; wait until ready.
    fn spawn(&self, ns: &str, cfg: &str) -> Lbd {
        let path = self.state.join(format!("lbd-{ns}.ron"));
        std::fs::write(&path, cfg).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &format!("{P}-{ns}")])
            .arg(env!("CARGO_BIN_EXE_lbd"))
            .arg("--config")
            .arg(&path);
        spawn_lbd_command(cmd)
    }

    /// One HTTP GET from the client; the body (the real server's name).
    fn curl(&self, vip: &str) -> String {
        let url = format!("http://{vip}/");
        nsx("client", &["curl", "-sS", "--max-time", "10", &url])
            .trim()
            .to_string()
    }

    /// A JSON count file of the lab's programs (rewritten every 0.2 s).
    fn counts(&self, file: &str) -> serde_json::Value {
        let path = self.state.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}: {text}"))
    }

    /// Wait (at most 10 s) until `ok` holds of count file `file`; its
    /// last contents.
    fn wait_counts(
        &self,
        file: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = self.counts(file);
            if ok(&c) || Instant::now() > deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for FabricLab {
    fn drop(&mut self) {
        teardown(&self.state);
    }
}

fn count(v: &serde_json::Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

#[test]
fn a_trunk_with_two_vlans_serves_clients_and_nat_servers() {
    if !may_run("a_trunk_with_two_vlans_serves_clients_and_nat_servers") {
        return;
    }
    let lab = FabricLab::up();
    let lbd = lab.start_lbd();
    lbd.wait_resolved(&["198.18.20.11"]);
    let answers: Vec<String> = (0..10).map(|_| lab.curl(NAT_VIP)).collect();
    eprintln!("answers: {answers:?}");
    assert!(answers.iter().all(|a| a == "rs1"), "{answers:?}");
    // Every frame of it crossed the trunk tagged: the client's on VLAN
    // 10, the real server's on VLAN 20, both ways.
    let sw = lab.wait_counts("switch.json", |c| {
        count(c, &["from_trunk", "10"]) >= 30 && count(c, &["from_trunk", "20"]) >= 30
    });
    eprintln!("switch: {sw}");
    for dir in ["to_trunk", "from_trunk"] {
        for vid in ["10", "20"] {
            assert!(count(&sw, &[dir, vid]) >= 30, "{dir} VLAN {vid}: {sw}");
        }
    }
    // A frame with a tag the port does not carry: dropped and counted.
    nsx(
        "sw",
        &[
            "python3",
            "-c",
            "import socket,struct;s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);\
             s.bind(('trunk',0));\
             s.send(bytes.fromhex('0200c6120002'+'02aaaaaaaa01')+struct.pack('!HH',0x8100,30)\
             +bytes.fromhex('0806')+bytes(46))",
        ],
    );
    let rep = lbd.stop();
    assert!(rep.get("forwarded_nat") >= 50, "forwarded_nat");
    assert!(rep.get("forwarded_nat_reply") >= 40, "forwarded_nat_reply");
    assert_eq!(rep.get("drop_vlan"), 1, "the VLAN 30 frame");
    let w = &rep.workers()[0];
    eprintln!("worker: {w:?}");
    assert!(
        w.get("idle_sleeps").copied().unwrap_or(0) > 0,
        "idle_sleep_us: a quiet worker sleeps"
    );
}

#[test]
fn a_tunnel_real_server_behind_a_router_serves_requests() {
    if !may_run("a_tunnel_real_server_behind_a_router_serves_requests") {
        return;
    }
    let lab = FabricLab::up();
    let lbd = lab.start_lbd();
    // The gateway is resolved like a neighbour (untagged, on lan0).
    lbd.wait_resolved(&["198.18.0.254"]);
    let answers: Vec<String> = (0..10).map(|_| lab.curl(TUN_VIP)).collect();
    eprintln!("answers: {answers:?}");
    assert!(answers.iter().all(|a| a == "rs2"), "{answers:?}");
    // rs2 decapsulated the connections' packets, sent by the director to
    // its address through the router.
    let c = lab.wait_counts("decap.json", |c| count(c, &["packets"]) >= 30);
    eprintln!("decapsulator: {c}");
    assert!(count(&c, &["packets"]) >= 30, "{c}");
    assert!(
        count(&c, &["outer", "198.18.0.2>198.19.5.10"]) >= 30,
        "outer header director → rs2: {c}"
    );
    // The running configuration holds the route and the VLANs.
    let out = Command::new(lbctl_bin())
        .arg("--socket")
        .arg(lab.state.join("lbd.sock"))
        .arg("save")
        .output()
        .expect("run lbctl");
    let saved = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "lbctl save: {saved}");
    assert!(
        saved.contains("routes:")
            && saved.contains("via: \"198.18.0.254\"")
            && saved.contains("id: 20"),
        "{saved}"
    );
    let rep = lbd.stop();
    assert!(rep.get("forwarded_tunnel") >= 30, "forwarded_tunnel");
    assert_eq!(rep.get("drop_neigh_unresolved"), 0);
}

/// A client of one keep-alive HTTP connection (a Python program in the
/// client namespace): each line written to it makes one request on the
/// connection; it prints the answering real server's name, or "ERR ...".
struct Conversation {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

const CLIENT_PY: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=10, source_address=(sys.argv[2], 0))
buf = b""
for _ in sys.stdin:
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
        while b"\r\n\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                raise OSError("closed")
            buf += d
        head, _, buf = buf.partition(b"\r\n\r\n")
        n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(buf) < n:
            d = s.recv(4096)
            if not d:
                raise OSError("closed")
            buf += d
        print(buf[:n].decode().strip(), flush=True)
        buf = buf[n:]
    except OSError as e:
        print("ERR", e, flush=True)
        break
"#;

impl Conversation {
    /// A connection to `vip` from the client's address `src`.
    fn open(vip: &str, src: &str) -> Conversation {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                "fab-client",
                "python3",
                "-c",
                CLIENT_PY,
                vip,
                src,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        Conversation { child, out }
    }

    /// One request on the connection; the answer (within 10 s: the
    /// client's socket timeout).
    fn ask(&mut self) -> String {
        use std::io::{BufRead, Write};
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        line.trim().to_string()
    }
}

impl Drop for Conversation {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client sends to the ECMP VIP through director `mac` (what the
/// routers' ECMP choice does in a real network).
fn route_vip_to(mac: &str) {
    ip(&[
        "-n",
        "fab-client",
        "neigh",
        "replace",
        ECMP_VIP,
        "lladdr",
        mac,
        "dev",
        "eth1",
        "nud",
        "permanent",
    ]);
}

#[test]
fn a_flow_moved_to_another_director_in_ecmp_mode_keeps_its_real_server() {
    if !may_run("a_flow_moved_to_another_director_in_ecmp_mode_keeps_its_real_server") {
        return;
    }
    let lab = FabricLab::up();
    let a = lab.start_lbd();
    let b = lab.start_lbd_b();
    a.wait_resolved(&["198.18.0.13", "198.18.0.14"]);
    b.wait_resolved(&["198.18.0.13", "198.18.0.14"]);
    // Connections from eight client addresses (mh hashes the address):
    // both real servers get some.
    let sources: Vec<String> = (41..49).map(|i| format!("198.18.0.{i}")).collect();
    for a in &sources {
        ip(&[
            "-n",
            "fab-client",
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            "eth1",
        ]);
    }
    route_vip_to(DIR_A_MAC);
    let mut convs: Vec<Conversation> = sources
        .iter()
        .map(|a| Conversation::open(ECMP_VIP, a))
        .collect();
    let first: Vec<String> = convs.iter_mut().map(|c| c.ask()).collect();
    eprintln!("through A: {first:?}");
    assert!(first.iter().all(|a| a == "rs3" || a == "rs4"), "{first:?}");
    assert!(
        first.iter().any(|a| a == "rs3") && first.iter().any(|a| a == "rs4"),
        "both real servers chosen: {first:?}"
    );
    // Director A dies (no connection sync); the routers move the flows
    // to B, which has never seen them.
    drop(a);
    route_vip_to(DIR_B_MAC);
    let second: Vec<String> = convs.iter_mut().map(|c| c.ask()).collect();
    eprintln!("through B: {second:?}");
    assert_eq!(
        second, first,
        "each connection answered by the same real server"
    );
    drop(convs);
    let rep = b.stop();
    assert!(
        rep.get("conn_adopted_midflow") >= 8,
        "B adopted the moved connections mid-flow"
    );
    assert_eq!(rep.get("drop_tcp_no_conn"), 0);
}
