//! Checks made before DPDK starts, so that what would otherwise fail inside
//! EAL (a page of usage text, an error code of 0, a message about the wrong
//! thing) or half-way through start-up (after a worker already polls a
//! port another lbd uses) stops lbd at once with one line naming the field.
//!
//! Two kinds: what the configuration asks of this machine (its CPUs, its
//! interfaces), which `--check` reports too; and whether another DPDK
//! process already runs with the same EAL file prefix, which only start-up
//! checks (`--check` must work next to a running lbd). The control socket,
//! the other thing two lbds can collide on, is bound before EAL starts
//! (main.rs), which checks it.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use lbcore::config::{self, Config, Problem};

/// The CPUs this machine has online (`/sys/devices/system/cpu/online`),
/// ascending; else, when that cannot be read, the CPUs this process may run
/// on (its affinity mask); `None` when the kernel says neither. Online, not
/// the affinity mask: a process started under `taskset` may still place
/// its EAL threads on the machine's other CPUs (the I/O benchmark does).
pub fn machine_cpus() -> Option<Vec<u32>> {
    if let Some(cpus) = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|t| config::parse_lcore_list(t.trim()).ok())
        .filter(|c| !c.is_empty())
    {
        let mut cpus = cpus;
        cpus.sort_unstable();
        cpus.dedup();
        return Some(cpus);
    }
    affinity_cpus()
}

/// The CPUs this process may run on (its affinity mask), ascending.
fn affinity_cpus() -> Option<Vec<u32>> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size given; pid 0 is this thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    let cpus: Vec<u32> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE, the capacity of `set`.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .map(|i| i as u32)
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

/// Whether a network interface of this name exists in this process's
/// network namespace (`if_nametoindex`, which asks the kernel, so it is
/// right in a namespace whose /sys was not remounted too).
pub fn interface_exists(name: &str) -> bool {
    let Ok(c) = CString::new(name) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// Device-argument keys that name an existing kernel interface, for the
/// drivers that attach to one. (net_tap's `iface=` creates its interface.)
fn interface_keys(driver: &str) -> &'static [&'static str] {
    let d = driver.trim_start_matches("net_").trim_start_matches("eth_");
    if d.starts_with("af_packet") || d.starts_with("af_xdp") {
        &["iface"]
    } else if d.starts_with("pcap") {
        &["iface", "rx_iface", "rx_iface_in", "tx_iface"]
    } else {
        &[]
    }
}

/// Ports whose device attaches to a kernel interface that does not exist
/// (by `exists`). DPDK would only say "no DPDK port named net_af_packet0",
/// with the real cause in its log.
pub fn missing_interfaces(cfg: &Config, exists: impl Fn(&str) -> bool) -> Vec<Problem> {
    let mut v = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let mut parts = p.device.split(',');
        let keys = interface_keys(parts.next().unwrap_or(""));
        for arg in parts {
            let Some((key, name)) = arg.split_once('=') else {
                continue;
            };
            if keys.contains(&key.trim()) && !exists(name.trim()) {
                v.push(Problem::new(
                    format!("ports[{i}].device"),
                    format!(
                        "interface {} does not exist (No such device) in this network namespace; \
                         {key}= must name an existing interface (see `ip link`)",
                        name.trim()
                    ),
                ));
            }
        }
    }
    v
}

/// What the configuration asks of this machine that it does not have: CPUs
/// for the EAL cores, interfaces for the ports. Located in `text` (the
/// configuration file's content).
pub fn machine_problems(cfg: &Config, text: &str) -> Vec<Problem> {
    let mut v = match machine_cpus() {
        Some(cpus) => config::check_cpus(cfg, &cpus),
        None => Vec::new(),
    };
    v.extend(missing_interfaces(cfg, interface_exists));
    config::locate_problems(text, &mut v);
    v
}

/// The EAL file prefix `args` give DPDK, or `None` when they keep no shared
/// runtime files (`--no-shconf`, `--in-memory`), so no other process can
/// collide with them.
pub fn file_prefix(args: &[String]) -> Option<String> {
    let mut prefix = "rte".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--no-shconf" || a == "--in-memory" {
            return None;
        } else if a == "--file-prefix" {
            prefix = it.next()?.clone();
        } else if let Some(p) = a.strip_prefix("--file-prefix=") {
            prefix = p.to_string();
        }
    }
    Some(prefix)
}

/// The shared configuration file a DPDK primary process with file prefix
/// `prefix` keeps locked while it runs: `<runtime dir>/dpdk/<prefix>/config`
/// where the runtime dir is /var/run for root and $XDG_RUNTIME_DIR (or
/// /tmp) for others, as EAL chooses it.
pub fn eal_config_path(prefix: &str, root: bool, xdg_runtime_dir: Option<&str>) -> PathBuf {
    let base = if root {
        "/var/run"
    } else {
        xdg_runtime_dir.unwrap_or("/tmp")
    };
    Path::new(base).join("dpdk").join(prefix).join("config")
}

/// The process holding a write-conflicting lock on `path`, if any: a
/// running DPDK primary holds one on its config file for its whole life
/// (and the kernel drops it when the process dies, so a stale file from a
/// crash does not count). Asking with F_GETLK takes no lock.
pub fn lock_holder(path: &Path) -> Option<i32> {
    let f = std::fs::File::open(path).ok()?;
    // SAFETY: flock is plain data; all-zero is a valid start.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0; // the whole file
                  // SAFETY: `f` is an open descriptor and `fl` a valid flock for F_GETLK.
    let rc = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) };
    (rc == 0 && fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid)
}

/// Why EAL cannot start with `args` because another process runs with the
/// same file prefix, as one line naming the field, or `None`.
pub fn file_prefix_in_use(args: &[String], from_config: bool) -> Option<String> {
    let prefix = file_prefix(args)?;
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    let xdg = std::env::var("XDG_RUNTIME_DIR").ok();
    let path = eal_config_path(&prefix, root, xdg.as_deref());
    let pid = lock_holder(&path)?;
    let field = if from_config {
        "eal.file_prefix"
    } else {
        "--file-prefix in --eal-args"
    };
    Some(format!(
        "{field}: another DPDK process (pid {pid}{}) is running with file prefix \"{prefix}\" \
         (it holds {}); stop it, or give this lbd its own {field}",
        process_name(pid)
            .map(|n| format!(", {n}"))
            .unwrap_or_default(),
        path.display()
    ))
}

/// The command name of process `pid`, if it can be read.
fn process_name(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(devices: &[&str]) -> Config {
        let ports: Vec<String> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| format!(r#"(name: "p{i}", device: "{d}", address: "198.18.{i}.2/24")"#))
            .collect();
        ron::from_str(&format!("(ports: [{}])", ports.join(", "))).unwrap()
    }

    #[test]
    fn missing_interfaces_named_by_device_args() {
        let exists = |n: &str| n == "eth0" || n == "eth1";
        let c = cfg(&[
            "net_af_packet0,iface=eth0",
            "net_af_packet1,iface=nope0,qpairs=1",
            "net_null0",
            "0000:3b:00.0",
            "net_tap0,iface=newtap",
            "eth_af_xdp0,iface=gone",
            "net_pcap0,rx_iface=eth1,tx_iface=gone2",
        ]);
        let p = missing_interfaces(&c, exists);
        let got: Vec<(String, String)> = p
            .iter()
            .map(|p| (p.field.clone(), p.message.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "ports[1].device".to_string(),
                    "interface nope0 does not exist (No such device) in this network namespace; \
                     iface= must name an existing interface (see `ip link`)"
                        .to_string()
                ),
                (
                    "ports[5].device".to_string(),
                    "interface gone does not exist (No such device) in this network namespace; \
                     iface= must name an existing interface (see `ip link`)"
                        .to_string()
                ),
                (
                    "ports[6].device".to_string(),
                    "interface gone2 does not exist (No such device) in this network namespace; \
                     tx_iface= must name an existing interface (see `ip link`)"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn interfaces_of_this_namespace() {
        // Every network namespace has a loopback interface.
        assert!(interface_exists("lo"));
        assert!(!interface_exists("lbd-no-such-if"));
        assert!(!interface_exists("bad\0name"));
    }

    #[test]
    fn machine_cpus_include_the_current_one() {
        let cpus = machine_cpus().expect("Linux lists its online CPUs");
        // SAFETY: sched_getcpu has no preconditions.
        let now = unsafe { libc::sched_getcpu() };
        assert!(
            now >= 0 && cpus.contains(&(now as u32)),
            "{now} in {cpus:?}"
        );
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn file_prefix_from_eal_args() {
        let a = |s: &str| -> Vec<String> { s.split_whitespace().map(String::from).collect() };
        assert_eq!(file_prefix(&a("lbd -l 0-1")), Some("rte".into()));
        assert_eq!(
            file_prefix(&a("lbd -l 0-1 --file-prefix lab --no-pci")),
            Some("lab".into())
        );
        assert_eq!(file_prefix(&a("lbd --file-prefix=x")), Some("x".into()));
        assert_eq!(file_prefix(&a("lbd --file-prefix lab --no-shconf")), None);
        assert_eq!(file_prefix(&a("lbd --in-memory")), None);
        assert_eq!(
            eal_config_path("lab", true, Some("/run/user/1000")),
            PathBuf::from("/var/run/dpdk/lab/config")
        );
        assert_eq!(
            eal_config_path("lab", false, Some("/run/user/1000")),
            PathBuf::from("/run/user/1000/dpdk/lab/config")
        );
        assert_eq!(
            eal_config_path("rte", false, None),
            PathBuf::from("/tmp/dpdk/rte/config")
        );
    }

    #[test]
    fn lock_holder_is_the_process_holding_the_lock() {
        let dir = std::env::temp_dir().join(format!("lbd-preflight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(&path, [0u8; 64]).unwrap();
        assert_eq!(lock_holder(&path), None, "nobody holds it yet");
        assert_eq!(lock_holder(&dir.join("absent")), None);
        // Another process takes a write lock as DPDK does (fcntl F_SETLK on
        // the first bytes) and says so; our F_GETLK must name it.
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import fcntl,sys; f=open(sys.argv[1],'r+'); \
                 fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB, 16); \
                 print('locked', flush=True); sys.stdin.read()",
            )
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        assert_eq!(lock_holder(&path), Some(child.id() as i32));
        drop(child.stdin.take()); // EOF: the child exits and its lock goes
        child.wait().unwrap();
        assert_eq!(lock_holder(&path), None, "the lock died with its process");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
