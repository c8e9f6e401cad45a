//! Build script for `dpdk-sys`.
//!
//! 1. Finds DPDK 22.11 through pkg-config (`libdpdk`).
//! 2. Compiles `src/shim.c` (wrappers for DPDK's static-inline functions and
//!    layout assertions) with DPDK's own cflags.
//! 3. Links the shim, then DPDK's shared libraries, in that order, so that
//!    `--as-needed` keeps every library the shim refers to. Shared linkage lets
//!    EAL load its PMD plugins (net_ring, net_af_packet, ...) by itself.

use std::env;
use std::process::Command;

const MISSING: &str = "DPDK 22.11 development files not found (pkg-config libdpdk). \
Run scripts/setup to install them (apt-get install libdpdk-dev dpdk pkg-config).";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    for var in [
        "PKG_CONFIG",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
        "PKG_CONFIG_ALL_STATIC",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let lib = match pkg_config::Config::new()
        .range_version("22.11".."23")
        .cargo_metadata(false)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            // The actionable message first, pkg-config's own reason after it,
            // and the message again last where it is easiest to see.
            eprintln!("error: {MISSING}");
            eprintln!("pkg-config said: {e}");
            eprintln!("error: {MISSING}");
            std::process::exit(1);
        }
    };

    // The pkg-config crate does not expose raw cflags such as
    // `-include rte_config.h -march=corei7`, which DPDK's headers need, so ask
    // pkg-config itself for them.
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| panic!("{MISSING} (running {pkg_config}: {e})"));
    if !out.status.success() {
        panic!(
            "{MISSING} (pkg-config --cflags libdpdk failed: {})",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cflags = String::from_utf8(out.stdout).expect("pkg-config output is not UTF-8");

    let mut build = cc::Build::new();
    build.file("src/shim.c");
    for flag in cflags.split_whitespace() {
        build.flag(flag);
    }
    build
        .flag_if_supported("-Wall")
        .flag_if_supported("-Wextra")
        .flag_if_supported("-Wno-unused-parameter")
        .opt_level(2);
    // Emits `rustc-link-lib=static=lbd_dpdk_shim` first ...
    build.compile("lbd_dpdk_shim");

    // ... then the DPDK shared libraries, which the shim depends on.
    for path in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", path.display());
    }
    for name in &lib.libs {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
    println!("cargo:version={}", lib.version);
}
