//! Writing the configuration file atomically: a temporary file in the same
//! directory, fsync, rename over the old file, fsync the directory. A reader
//! (or a crash) sees either the old file or the new one, never half of one.
//!
//! Three operator situations shape the details:
//! * The configuration path may be a symbolic link (e.g. into a directory
//!   managed by a deployment tool). Renaming over the link would replace the
//!   link with a regular file and leave the real file stale, so the link is
//!   resolved first and the *target* is replaced; the link stays.
//! * A crashed lbd may leave a temporary file behind. Every attempt picks a
//!   fresh name (pid and a counter) and creates it exclusively, skipping
//!   names that are taken, so a leftover never blocks a save.
//! * On failure only the temporary file this attempt created is removed;
//!   a file lbd did not create is never deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of successive saves of this process.
static ATTEMPT: AtomicU64 = AtomicU64::new(0);

/// How many taken temporary names a save skips before giving up. Names
/// are only taken by leftovers of earlier processes with the same pid, so
/// meeting more than a few means something else is wrong.
const NAME_TRIES: usize = 64;

/// Mode of a configuration file that did not exist before.
const NEW_FILE_MODE: u32 = 0o640;

/// Replaces the file at `path` with `text`, atomically. If `path` is a
/// symbolic link, the file it points to is replaced and the link is kept.
/// The file keeps its permission bits.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    write_atomic_with(path, text, &ATTEMPT)
}

/// [`write_atomic`] drawing temporary names from `attempt`, so tests can
/// predict them.
fn write_atomic_with(path: &Path, text: &str, attempt: &AtomicU64) -> io::Result<()> {
    let target = resolve(path)?;
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("configuration path {} has no file name", path.display()),
        )
    })?;
    let mode = match fs::metadata(&target) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => NEW_FILE_MODE,
        Err(e) => return Err(e),
    };
    let (tmp, f) = create_temporary(dir, &name.to_string_lossy(), mode, attempt)?;
    // From here on `tmp` is ours until the rename moves it over the target.
    let written = (|| {
        let mut f = f;
        // The mode given at creation is cut by the umask; set it exactly so
        // the file keeps the permissions it had.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })()
    .and_then(|()| fs::rename(&tmp, &target));
    if let Err(e) = written {
        // Only our own temporary file: the rename did not happen, so the
        // name still holds what this attempt created.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is done; make it durable. A failure here leaves the new
    // file in place and no temporary behind.
    File::open(dir)?.sync_all()
}

/// The file a save must replace: `path` itself, or the final target when
/// `path` is (or passes through) a symbolic link. A path that does not exist
/// yet is created as given.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    match fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                // A dangling link: writing "through" it would mean guessing
                // where the operator wanted the file; say so instead.
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "configuration path {} is a symbolic link to a file that does not exist",
                        path.display()
                    ),
                ))
            } else {
                Ok(path.to_path_buf())
            }
        }
        Err(e) => Err(e),
    }
}

/// Creates a fresh temporary file next to the target; names already taken
/// (leftovers of a crashed lbd) are skipped, never reused or removed.
fn create_temporary(
    dir: &Path,
    name: &str,
    mode: u32,
    attempt: &AtomicU64,
) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    for _ in 0..NAME_TRIES {
        let n = attempt.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(temporary_name(name, pid, n));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "no free temporary file name for {name} in {} after {NAME_TRIES} tries; \
             remove the old .{name}.tmp.* files there",
            dir.display()
        ),
    ))
}

/// Hidden, and telling what it belongs to.
fn temporary_name(name: &str, pid: u32, n: u64) -> String {
    format!(".{name}.tmp.{pid}.{n}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fresh directory per test (tests run in parallel).
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbd-persist-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_content_and_leaves_no_temporary() {
        let dir = scratch("replace");
        let p = dir.join("c.ron");
        fs::write(&p, "old").unwrap();
        write_atomic(&p, "new text").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new text");
        assert_eq!(names(&dir), ["c.ron"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_keeps_the_old_file() {
        let p = Path::new("/nonexistent-dir-for-lbd-test/c.ron");
        assert!(write_atomic(p, "x").is_err());
    }

    #[test]
    fn keeps_the_permission_bits() {
        let dir = scratch("mode");
        let p = dir.join("c.ron");
        fs::write(&p, "old").unwrap();
        // 0o664 has group-write, which a usual umask (022) would strip from
        // a freshly created file.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o664)).unwrap();
        write_atomic(&p, "new").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o664, "{mode:o}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&p, "newer").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "{mode:o}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn saving_through_a_symlink_writes_the_target_and_keeps_the_link() {
        let dir = scratch("symlink");
        // The real file lives elsewhere (another directory), as with a
        // deployment tool's release directory.
        let real_dir = dir.join("releases");
        fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("lbd.ron");
        fs::write(&real, "old").unwrap();
        let link = dir.join("lbd.ron");
        symlink("releases/lbd.ron", &link).unwrap();

        write_atomic(&link, "new").unwrap();

        let meta = fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_symlink(), "the link was replaced");
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("releases/lbd.ron"));
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        // No temporary left in either directory.
        assert_eq!(names(&dir), ["lbd.ron", "releases"]);
        assert_eq!(names(&real_dir), ["lbd.ron"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dangling_symlink_is_refused_and_left_alone() {
        let dir = scratch("dangling");
        let link = dir.join("lbd.ron");
        symlink("missing.ron", &link).unwrap();
        let e = write_atomic(&link, "new").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(names(&dir), ["lbd.ron"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temporaries_of_a_crashed_lbd_do_not_block_a_save() {
        let dir = scratch("stale");
        let p = dir.join("c.ron");
        fs::write(&p, "old").unwrap();
        let pid = std::process::id();
        // What a crashed lbd with our pid may have left: the names this
        // save tries first, and the name earlier versions used.
        let stale = [
            temporary_name("c.ron", pid, 0),
            temporary_name("c.ron", pid, 1),
            format!(".c.ron.tmp.{pid}"),
        ];
        for s in &stale {
            fs::write(dir.join(s), "left by a crash").unwrap();
        }
        let attempt = AtomicU64::new(0);
        write_atomic_with(&p, "new", &attempt).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        // Nothing of ours left behind, nothing of theirs removed.
        for s in &stale {
            assert_eq!(
                fs::read_to_string(dir.join(s)).unwrap(),
                "left by a crash",
                "{s}"
            );
        }
        assert_eq!(names(&dir).len(), 1 + stale.len(), "{:?}", names(&dir));
        // The public entry point as well.
        write_atomic(&p, "newer").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "newer");
        assert_eq!(names(&dir).len(), 1 + stale.len(), "{:?}", names(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_save_removes_only_its_own_temporary() {
        let dir = scratch("failed");
        // The "file" is a non-empty directory: the temporary is written,
        // then the rename over it fails.
        let p = dir.join("c.ron");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("inside"), "x").unwrap();
        let pid = std::process::id();
        let foreign = format!(".c.ron.tmp.{pid}");
        fs::write(dir.join(&foreign), "not lbd's").unwrap();
        let before = names(&dir);

        assert!(write_atomic(&p, "new").is_err());

        assert_eq!(
            names(&dir),
            before,
            "a temporary was left or a file removed"
        );
        assert_eq!(fs::read_to_string(dir.join(&foreign)).unwrap(), "not lbd's");
        assert_eq!(names(&p), ["inside"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn taken_names_are_skipped_up_to_a_bound() {
        let dir = scratch("exhausted");
        let p = dir.join("c.ron");
        fs::write(&p, "old").unwrap();
        let pid = std::process::id();
        for n in 0..NAME_TRIES as u64 {
            fs::write(dir.join(temporary_name("c.ron", pid, n)), "x").unwrap();
        }
        let e = write_atomic_with(&p, "new", &AtomicU64::new(0)).unwrap_err();
        assert!(e.to_string().contains("no free temporary file name"), "{e}");
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(names(&dir).len(), 1 + NAME_TRIES);
        fs::remove_dir_all(&dir).unwrap();
    }
}
