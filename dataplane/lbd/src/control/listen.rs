//! Binding the control socket: what may be at its path, and putting a
//! socket there with its final mode and group from the first instant.

use std::fmt;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// What is at the socket path before binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupant {
    Nothing,
    /// A socket nobody listens on, left by an lbd that died: replaced.
    StaleSocket,
    /// A socket somebody listens on (another lbd, or another program).
    LiveSocket,
    RegularFile,
    Directory,
    SymbolicLink,
    /// A FIFO or a device file.
    Special,
}

impl Occupant {
    fn describe(self) -> &'static str {
        match self {
            Occupant::Nothing => "nothing",
            Occupant::StaleSocket => "a stale socket",
            Occupant::LiveSocket => "a socket in use",
            Occupant::RegularFile => "a regular file",
            Occupant::Directory => "a directory",
            Occupant::SymbolicLink => "a symbolic link",
            Occupant::Special => "a FIFO or device file",
        }
    }
}

/// Why the control socket could not be bound.
#[derive(Debug)]
pub enum BindError {
    /// Something lbd must not remove is at the path.
    Occupied { path: PathBuf, what: Occupant },
    /// A system call failed.
    Io {
        path: PathBuf,
        doing: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Occupied {
                path,
                what: Occupant::LiveSocket,
            } => write!(
                f,
                "another process (another lbd?) is listening on {}; stop it or set another control.socket",
                path.display()
            ),
            BindError::Occupied { path, what } => write!(
                f,
                "{} is {}, not a socket; lbd only replaces a stale socket there and leaves \
                 anything else alone (move it away or set another control.socket)",
                path.display(),
                what.describe()
            ),
            BindError::Io {
                path,
                doing,
                source,
            } => write!(f, "cannot {doing} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BindError::Io { source, .. } => Some(source),
            BindError::Occupied { .. } => None,
        }
    }
}

/// Looks at what is at `path` without following a symbolic link. A socket
/// counts as stale only when connecting to it is refused: any other failure
/// (permission denied, ...) means we cannot tell, and it is left alone.
fn occupant(path: &Path) -> io::Result<Occupant> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Occupant::Nothing),
        Err(e) => return Err(e),
    };
    let t = meta.file_type();
    Ok(if t.is_socket() {
        match UnixStream::connect(path) {
            Ok(_) => Occupant::LiveSocket,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Occupant::StaleSocket,
            Err(e) => return Err(e),
        }
    } else if t.is_symlink() {
        Occupant::SymbolicLink
    } else if t.is_dir() {
        Occupant::Directory
    } else if t.is_file() {
        Occupant::RegularFile
    } else {
        Occupant::Special
    })
}

/// Bind the socket with the right permissions. Replaces only a stale socket
/// (see [`occupant`]); refuses to steal the socket of another running lbd
/// or to remove anything that is not a socket.
///
/// The socket must never be reachable with a wider mode or another group
/// than its final ones, not even for an instant, and the process-wide umask
/// must not be touched for that (other threads may be creating files). So
/// the socket is bound inside a private directory next to `path` (mode
/// 0700: only root can reach what is in it, whatever mode the umask gave
/// the socket), given its mode and group there, and only then published at
/// `path` by a hard link — the same inode, so connections to `path` reach
/// the listener. Unlike a rename, `link` fails if anything appeared at
/// `path` since [`occupant`] looked, so nothing is ever replaced by
/// surprise. The private directory's name adds 4 bytes to the path's
/// length (`.NAME~/s` for `NAME`), which the configuration's limit of 100
/// leaves room for within the 107 bytes a unix socket path may have.
pub fn bind(path: &Path, group: Option<u32>) -> Result<UnixListener, BindError> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(failed("create the directory", dir))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
                .map_err(failed("set the mode of", dir))?;
            if let Some(g) = group {
                std::os::unix::fs::chown(dir, Some(0), Some(g))
                    .map_err(failed("set the group of", dir))?;
            }
        }
    }
    match occupant(path).map_err(failed("find out what is at", path))? {
        Occupant::Nothing => {}
        Occupant::StaleSocket => {
            std::fs::remove_file(path).map_err(failed("remove the stale socket", path))?;
        }
        what => {
            return Err(BindError::Occupied {
                path: path.to_path_buf(),
                what,
            })
        }
    }
    let staging = Staging::create(path)?;
    let l = UnixListener::bind(&staging.socket).map_err(failed("bind a socket at", path))?;
    std::fs::set_permissions(&staging.socket, std::fs::Permissions::from_mode(0o660))
        .map_err(failed("set the mode of", path))?;
    if let Some(g) = group {
        std::os::unix::fs::chown(&staging.socket, Some(0), Some(g))
            .map_err(failed("set the group of", path))?;
    }
    std::fs::hard_link(&staging.socket, path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            // Someone put something there since we looked; say what.
            match occupant(path) {
                Ok(what) if what != Occupant::Nothing => BindError::Occupied {
                    path: path.to_path_buf(),
                    what,
                },
                _ => failed("bind a socket at", path)(e),
            }
        } else {
            failed("bind a socket at", path)(e)
        }
    })?;
    Ok(l)
}

/// A [`BindError::Io`] maker for `map_err`: what was being done, to which path.
fn failed(doing: &'static str, at: &Path) -> impl FnOnce(io::Error) -> BindError {
    let path = at.to_path_buf();
    move |source| BindError::Io {
        path,
        doing,
        source,
    }
}

/// The private directory a socket is bound in before it is published
/// (see [`bind`]); removed with whatever is left in it when dropped.
struct Staging {
    dir: PathBuf,
    socket: PathBuf,
}

impl Staging {
    /// `.NAME~` next to `path`, mode 0700. A leftover of an lbd that died
    /// while binding holds at most a stale socket and is cleared; one
    /// holding a live socket means another lbd is binding the same path.
    fn create(path: &Path) -> Result<Staging, BindError> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let dir = path.with_file_name(format!(".{name}~"));
        let socket = dir.join("s");
        if std::fs::symlink_metadata(&dir).is_ok() {
            match occupant(&socket).map_err(failed("find out what is at", &socket))? {
                Occupant::Nothing | Occupant::StaleSocket => {
                    let _ = std::fs::remove_file(&socket);
                    std::fs::remove_dir(&dir)
                        .map_err(failed("remove the leftover directory", &dir))?;
                }
                what => return Err(BindError::Occupied { path: socket, what }),
            }
        }
        // The umask can only narrow 0700; root reaches the directory anyway.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(failed("create the private directory", &dir))?;
        Ok(Staging { dir, socket })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // The listener keeps working without this name: `path` links to it.
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fresh directory per test (tests run in parallel).
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbd-listen-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn nothing_there_binds() {
        let dir = scratch("bind-missing");
        let p = dir.join("lbd.sock");
        assert_eq!(occupant(&p).unwrap(), Occupant::Nothing);
        let _l = bind(&p, None).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert_eq!(occupant(&p).unwrap(), Occupant::LiveSocket);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stale_socket_is_replaced() {
        let dir = scratch("bind-stale");
        let p = dir.join("lbd.sock");
        // A listener that went away leaves its socket file behind.
        drop(UnixListener::bind(&p).unwrap());
        assert_eq!(occupant(&p).unwrap(), Occupant::StaleSocket);
        let l = bind(&p, None).unwrap();
        let _c = UnixStream::connect(&p).unwrap();
        assert!(l.accept().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_live_socket_is_refused() {
        let dir = scratch("bind-live");
        let p = dir.join("lbd.sock");
        let other = UnixListener::bind(&p).unwrap();
        let e = bind(&p, None).unwrap_err();
        assert!(
            matches!(
                e,
                BindError::Occupied {
                    what: Occupant::LiveSocket,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert!(msg.contains("listening"), "{msg}");
        // The other listener still owns its socket.
        let _c = UnixStream::connect(&p).unwrap();
        assert!(other.accept().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_regular_file_is_refused_and_kept() {
        let dir = scratch("bind-file");
        // E.g. control.socket set to the configuration file by mistake.
        let p = dir.join("lbd.ron");
        std::fs::write(&p, "(ports: [])").unwrap();
        let e = bind(&p, None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{} is a regular file, not a socket", p.display())),
            "{msg}"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "(ports: [])");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_is_refused_and_kept() {
        let dir = scratch("bind-dir");
        let p = dir.join("lbd.sock");
        std::fs::create_dir(&p).unwrap();
        let e = bind(&p, None).unwrap_err();
        assert!(
            e.to_string().contains("is a directory, not a socket"),
            "{e}"
        );
        assert!(p.is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symbolic_link_is_refused_and_kept() {
        let dir = scratch("bind-link");
        let target = dir.join("important");
        std::fs::write(&target, "keep me").unwrap();
        let p = dir.join("lbd.sock");
        symlink(&target, &p).unwrap();
        let e = bind(&p, None).unwrap_err();
        assert!(
            e.to_string().contains("is a symbolic link, not a socket"),
            "{e}"
        );
        assert!(std::fs::symlink_metadata(&p)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        // Even a link to a stale socket: lbd does not follow links here.
        let sock = dir.join("real.sock");
        drop(UnixListener::bind(&sock).unwrap());
        let p2 = dir.join("lbd2.sock");
        symlink(&sock, &p2).unwrap();
        assert_eq!(occupant(&p2).unwrap(), Occupant::SymbolicLink);
        assert!(bind(&p2, None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_private_directory_is_gone_after_binding() {
        let dir = scratch("bind-staging");
        let p = dir.join("lbd.sock");
        let _l = bind(&p, None).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("lbd.sock")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_leftover_private_directory_is_cleared() {
        let dir = scratch("bind-leftover");
        let p = dir.join("lbd.sock");
        // An lbd that died between binding and publishing its socket.
        let left = dir.join(".lbd.sock~");
        std::fs::create_dir(&left).unwrap();
        drop(UnixListener::bind(left.join("s")).unwrap());
        let l = bind(&p, None).unwrap();
        let _c = UnixStream::connect(&p).unwrap();
        assert!(l.accept().is_ok());
        assert!(std::fs::symlink_metadata(&left).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_path_at_the_length_limit_binds() {
        // validate.rs allows 100 bytes; the private directory adds 4.
        let dir = scratch("bind-long");
        let Some(name_len) = 100usize.checked_sub(dir.as_os_str().len() + 1) else {
            eprintln!("skipped: the temporary directory's path is too long to test this");
            return;
        };
        let p = dir.join("s".repeat(name_len));
        assert_eq!(p.as_os_str().len(), 100);
        let _l = bind(&p, None).unwrap();
        let _c = UnixStream::connect(&p).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
