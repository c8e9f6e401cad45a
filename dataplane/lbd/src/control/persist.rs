//! Writing the configuration file atomically: a temporary file in the same
//! directory, fsync, rename over the old file, fsync the directory. A reader
//! (or a crash) sees either the old file or the new one, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "configuration path has no file name",
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mode =
            fs::metadata(path).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.unwrap_or(0o640) & 0o7777)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("lbd-persist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.ron");
        fs::write(&p, "old").unwrap();
        write_atomic(&p, "new text").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new text");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_keeps_the_old_file() {
        let p = Path::new("/nonexistent-dir-for-lbd-test/c.ron");
        assert!(write_atomic(p, "x").is_err());
    }
}
