//! The Debian package, end to end: build it (packaging/build-deb, with the
//! debug binaries the tests use), install it with `dpkg -i`, check that
//! every file is where docs/DEPLOYMENT.md's file table says (and that the
//! table lists every file the package holds), that the unit passes
//! `systemd-analyze verify`, that the installed lbd accepts the installed
//! default configuration (`lbd --check`), then `dpkg -r` (configuration
//! kept) and `dpkg -P` (configuration, group and all gone).
//!
//! Changes this machine's package database: it refuses to run where an lbd
//! package or an `lbd` group already exists, and purges the package on the
//! way out even when an assertion fails (`Installed`'s drop). Needs root.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// The files table of the deployment guide: every absolute path written in
/// backquotes between its `<!-- package-files -->` markers.
fn guide_files() -> Vec<String> {
    let guide = std::fs::read_to_string(repo().join("docs/DEPLOYMENT.md")).unwrap();
    let start = guide
        .find("<!-- package-files -->")
        .expect("DEPLOYMENT.md has a <!-- package-files --> table");
    let end = guide[start..]
        .find("<!-- /package-files -->")
        .expect("the table ends with <!-- /package-files -->")
        + start;
    guide[start..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// `dpkg -s lbd`'s Status line, or None when dpkg knows no such package.
fn status() -> Option<String> {
    let (ok, out, _) = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "lbd"]));
    (ok && !out.trim().is_empty()).then(|| out.trim().to_string())
}

fn group_exists() -> bool {
    run(Command::new("getent").args(["group", "lbd"])).0
}

/// The package is installed: purged when dropped, whatever happened.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["-P", "lbd"]).output();
    }
}

fn dpkg(args: &[&str]) {
    let (ok, out, err) = run(Command::new("dpkg").args(args));
    assert!(ok, "dpkg {args:?} failed:\n{out}\n{err}");
}

#[test]
fn package_installs_verifies_checks_and_purges() {
    if !may_run("package_installs_verifies_checks_and_purges") {
        return;
    }
    // Never touch a real installation.
    assert!(
        status().is_none_or(|s| s.contains("not-installed")),
        "an lbd package is installed on this machine ({:?}); this test installs and purges \
         its own, so it does not run here",
        status()
    );
    assert!(
        !group_exists(),
        "a group lbd exists already; purging the test package would remove it"
    );

    let (ok, out, err) = run(Command::new(repo().join("packaging/build-deb"))
        .args(["--profile", "dev"])
        .current_dir(repo()));
    assert!(ok, "packaging/build-deb failed:\n{out}\n{err}");
    let deb = out
        .lines()
        .last()
        .expect("build-deb prints the .deb")
        .trim();
    assert!(deb.ends_with(".deb") && Path::new(deb).exists(), "{deb}");

    let installed = Installed;
    // Minimal images (Debian's container images) tell dpkg to skip man
    // pages and docs (path-exclude in /etc/dpkg/dpkg.cfg.d); the guide's
    // files are checked all the same, so include ours explicitly.
    dpkg(&[
        "--path-include=/usr/share/man/man8/lb*",
        "--path-include=/usr/share/doc/lbd/*",
        "-i",
        deb,
    ]);
    assert_eq!(status().as_deref(), Some("install ok installed"));

    // Every file where the guide says, and the guide lists every file.
    let files = guide_files();
    assert!(files.len() >= 10, "the guide's table lists {files:?}");
    for f in &files {
        assert!(
            Path::new(f).exists(),
            "{f} (in DEPLOYMENT.md) is not installed"
        );
    }
    let (_, listed, _) = run(Command::new("dpkg").args(["-L", "lbd"]));
    for f in listed.lines().filter(|f| Path::new(f).is_file()) {
        if f.starts_with("/usr/share/doc/lbd/") && !f.ends_with("DEPLOYMENT.md") {
            continue; // README, copyright, examples: under the doc directory the table names
        }
        assert!(
            files.iter().any(|g| g == f),
            "the package installs {f}, which DEPLOYMENT.md's file table does not list"
        );
    }
    assert!(group_exists(), "the package creates the lbd group");

    let unit = "/lib/systemd/system/lbd.service";
    let (ok, out, err) = run(Command::new("systemd-analyze").args(["verify", unit]));
    assert!(
        ok && !err.contains("lbd.service"),
        "systemd-analyze verify {unit}:\n{out}\n{err}"
    );

    let (ok, out, err) =
        run(Command::new("/usr/sbin/lbd").args(["--check", "--config", "/etc/lbd/lbd.ron"]));
    assert!(
        ok && out.contains("configuration OK"),
        "lbd --check on the installed default configuration:\n{out}\n{err}"
    );
    let (ok, out, _) = run(Command::new("/usr/bin/lbctl").args(["validate", "/etc/lbd/lbd.ron"]));
    assert!(ok, "lbctl validate the default configuration:\n{out}");
    let (ok, out, err) = run(Command::new("/usr/sbin/lbd-setup").args(["cores", "0-1"]));
    assert!(
        ok && out.contains("isolcpus=1"),
        "lbd-setup cores:\n{out}\n{err}"
    );
    let (ok, out, _) = run(Command::new("man").args(["-w", "lbctl"]));
    assert!(ok && out.contains("lbctl.8"), "man -w lbctl: {out}");

    // Remove: programs gone, configuration kept.
    dpkg(&["-r", "lbd"]);
    assert!(!Path::new("/usr/sbin/lbd").exists());
    assert!(!Path::new(unit).exists());
    assert!(
        Path::new("/etc/lbd/lbd.ron").exists(),
        "dpkg -r keeps the configuration"
    );
    assert_eq!(status().as_deref(), Some("deinstall ok config-files"));

    // Purge: configuration and group gone too.
    dpkg(&["-P", "lbd"]);
    assert!(!Path::new("/etc/lbd").exists(), "dpkg -P removes /etc/lbd");
    assert!(!group_exists(), "dpkg -P removes the (empty) lbd group");
    assert!(status().is_none_or(|s| s.contains("not-installed")));
    drop(installed);
}
