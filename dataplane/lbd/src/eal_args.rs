//! Turning the config's `eal` section and ports into EAL arguments.

use lbcore::config::Config;

/// Whether a port's device string names a virtual device (`net_*`), which
/// EAL creates from `--vdev`, rather than a PCI address to allow with `-a`.
pub fn is_vdev(device: &str) -> bool {
    device.starts_with("net_") || device.starts_with("eth_")
}

/// The DPDK port name of a device string: the part before the first comma
/// (`net_af_packet0,iface=eth0` → `net_af_packet0`).
pub fn port_name(device: &str) -> &str {
    device.split(',').next().unwrap_or(device)
}

/// EAL arguments for `cfg` (argv[0] included).
pub fn from_config(cfg: &Config) -> Vec<String> {
    let e = &cfg.eal;
    let mut a = match &e.lcores {
        Some(m) => vec!["lbd".to_string(), "--lcores".into(), m.clone()],
        None => vec!["lbd".to_string(), "-l".into(), e.cores.clone()],
    };
    if e.no_huge {
        a.push("--no-huge".into());
    }
    if let Some(m) = e.memory_mb {
        a.push("-m".into());
        a.push(m.to_string());
    }
    if let Some(p) = &e.file_prefix {
        a.push("--file-prefix".into());
        a.push(p.clone());
    }
    if e.no_pci {
        a.push("--no-pci".into());
    }
    for p in &cfg.ports {
        if is_vdev(&p.device) {
            a.push(format!("--vdev={}", p.device));
        } else {
            a.push("-a".into());
            a.push(p.device.clone());
        }
    }
    // The kernel exception paths' TAP devices (kernel/path.rs).
    for (i, p) in cfg.ports.iter().enumerate() {
        if let Some(k) = &p.kernel {
            a.push(crate::kernel::path::vdev_arg(i, k));
        }
    }
    a.extend(e.extra_args.iter().cloned());
    a
}

/// Split a command-line override (`--eal-args "-l 0-1 --no-huge ..."`) into
/// arguments; quotes are not interpreted (EAL arguments never need spaces).
pub fn from_override(s: &str) -> Vec<String> {
    std::iter::once("lbd".to_string())
        .chain(s.split_whitespace().map(String::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_config_args() {
        let cfg: Config = ron::from_str(
            r#"(eal: (cores: "0-1", no_huge: true, memory_mb: Some(512), file_prefix: Some("t"), no_pci: true),
                ports: [(name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24"),
                        (name: "lan1", device: "0000:3b:00.0", address: "198.19.0.2/24",
                         kernel: Some((iface: "lbd-lan1")))])"#,
        )
        .unwrap();
        assert_eq!(
            from_config(&cfg).join(" "),
            "lbd -l 0-1 --no-huge -m 512 --file-prefix t --no-pci \
             --vdev=net_af_packet0,iface=eth0 -a 0000:3b:00.0 \
             --vdev=net_tap_lbd1,iface=lbd-lan1"
        );
        assert_eq!(port_name("net_af_packet0,iface=eth0"), "net_af_packet0");
        assert!(!is_vdev("0000:3b:00.0"));
        assert_eq!(
            from_override(" -l 0  --no-huge"),
            ["lbd", "-l", "0", "--no-huge"]
        );
    }
}
