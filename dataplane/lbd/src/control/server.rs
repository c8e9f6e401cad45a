//! The control socket: a unix stream socket speaking `lbcore::api` frames.
//!
//! Security: the socket is mode 0660, owned by root and by the configured
//! group (if any), in a directory of mode 0750. On top of the file mode, every
//! request that changes something is checked against the peer's credentials
//! (SO_PEERCRED): only root or members of the configured group may write.
//! Robustness: frames above the limit, garbage and truncated frames get an
//! error reply or a closed connection; each client has its own thread with a
//! read timeout, and the number of clients at once is bounded.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lbcore::api::*;
use tracing::{debug, info, warn};

use super::plane::ControlPlane;
use crate::shared::Shared;

/// Clients served at once; more are answered with an error and closed.
const MAX_CLIENTS: usize = 16;
/// A client silent this long is disconnected.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is on the other end of the socket.
#[derive(Debug, Clone, Copy)]
struct Peer {
    pid: i32,
    uid: u32,
    gid: u32,
}

fn peer_of(s: &UnixStream) -> io::Result<Peer> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a ucred.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Peer {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Supplementary groups of a process, from /proc.
fn groups_of(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Groups:")).map(|l| {
                l[7..]
                    .split_whitespace()
                    .filter_map(|g| g.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The gid of a group name (from the system's group database).
pub fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam returns a pointer to static storage or null; we copy
    // the gid out at once. Called only at start-up, before other threads
    // use the group database.
    let g = unsafe { libc::getgrnam(c.as_ptr()) };
    if g.is_null() {
        None
    } else {
        // SAFETY: non-null result of getgrnam.
        Some(unsafe { (*g).gr_gid })
    }
}

/// What a request asks for, in lbctl's words, for the log.
fn request_name(r: &Request) -> &'static str {
    // Exhaustive on purpose: a new request needs a name here.
    match r {
        Request::Status => "status",
        Request::List => "list",
        Request::Conns { .. } => "conns",
        Request::AddService(_) => "service add",
        Request::EditService { .. } => "service edit",
        Request::DeleteService(_) => "service del",
        Request::AddReal { .. } => "real add",
        Request::EditReal { .. } => "real edit",
        Request::DeleteReal { .. } => "real del",
        Request::Clear => "clear",
        Request::Zero => "zero",
        Request::GetTimeouts => "timeouts",
        Request::SetTimeouts(_) => "timeouts set",
        Request::Save => "save",
        Request::Restore { .. } => "restore",
        Request::Validate { .. } => "validate",
        Request::Reload => "reload",
    }
}

/// The log line for a write refused to `p`: which request, from whom, and
/// what would have allowed it.
fn refusal(r: &Request, p: &Peer, group: Option<u32>) -> String {
    let rule = match group {
        Some(g) => format!(
            "uid {} is not root and neither its group {} nor its supplementary groups are the \
             control group (gid {g}, control.group)",
            p.uid, p.gid
        ),
        None => format!(
            "uid {} is not root, and without control.group only root may change lbd",
            p.uid
        ),
    };
    format!(
        "control socket: refused `{}` from pid {}: permission denied: {rule}",
        request_name(r),
        p.pid
    )
}

fn may_write(p: &Peer, group: Option<u32>) -> bool {
    p.uid == 0 || group.is_some_and(|g| p.gid == g || groups_of(p.pid).contains(&g))
}

/// Bind the socket with the right permissions. Refuses to steal the socket
/// of another running lbd.
pub fn bind(path: &Path, group: Option<u32>) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
            if let Some(g) = group {
                std::os::unix::fs::chown(dir, Some(0), Some(g))?;
            }
        }
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another lbd is already listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // SAFETY: umask only changes this process's file-creation mask; set it
    // so the socket is never world-accessible, even for an instant.
    let old = unsafe { libc::umask(0o117) };
    let l = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let l = l?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(g) = group {
        std::os::unix::fs::chown(path, Some(0), Some(g))?;
    }
    Ok(l)
}

/// Serve the socket until the process stops (runs on its own thread).
pub fn serve(
    listener: UnixListener,
    plane: Arc<Mutex<ControlPlane>>,
    shared: Arc<Shared>,
    group: Option<u32>,
    path: PathBuf,
) {
    let clients = Arc::new(AtomicUsize::new(0));
    // Non-blocking accept with a short sleep lets the thread notice shutdown.
    if let Err(e) = listener.set_nonblocking(true) {
        warn!("control socket: {e}");
        return;
    }
    info!("control socket listening on {}", path.display());
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                if clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    let mut s = stream;
                    let _ = reply(
                        &mut s,
                        Err(ApiError::new(
                            ErrorKind::Internal,
                            "too many lbctl clients at once; try again",
                        )),
                    );
                    continue;
                }
                clients.fetch_add(1, Ordering::Relaxed);
                let (plane, clients) = (plane.clone(), clients.clone());
                std::thread::spawn(move || {
                    client(stream, &plane, group);
                    clients.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                warn!("control socket accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

fn reply(s: &mut UnixStream, response: Result<Response, ApiError>) -> Result<(), FrameError> {
    write_frame(
        s,
        &ResponseFrame {
            version: PROTOCOL_VERSION,
            response,
        },
    )
}

/// One client: requests in turn until it closes, errs or idles out.
fn client(mut s: UnixStream, plane: &Mutex<ControlPlane>, group: Option<u32>) {
    let _ = s.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = s.set_write_timeout(Some(IDLE_TIMEOUT));
    let peer = match peer_of(&s) {
        Ok(p) => p,
        Err(e) => {
            warn!("control socket: cannot read peer credentials: {e}");
            return;
        }
    };
    loop {
        let body = match read_frame(&mut s) {
            Ok(b) => b,
            Err(FrameError::Closed) => return,
            Err(e @ FrameError::TooLarge(_)) => {
                let _ = reply(
                    &mut s,
                    Err(ApiError::new(ErrorKind::TooLarge, e.to_string())),
                );
                return;
            }
            Err(e) => {
                debug!("control socket: client pid {}: {e}", peer.pid);
                return;
            }
        };
        let frame: RequestFrame = match decode(&body) {
            Ok(f) => f,
            Err(e) => {
                // Tell a newer or older lbctl about the version before
                // complaining about the body it could not parse.
                let version = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("version").and_then(|v| v.as_u64()));
                let err = match version {
                    Some(v) if v != PROTOCOL_VERSION as u64 => ApiError::new(
                        ErrorKind::VersionMismatch,
                        format!("lbctl speaks protocol {v}, lbd speaks {PROTOCOL_VERSION}; use the lbctl of this lbd"),
                    ),
                    _ => ApiError::new(ErrorKind::BadRequest, format!("malformed request: {e}")),
                };
                let _ = reply(&mut s, Err(err));
                return;
            }
        };
        let response = if frame.version != PROTOCOL_VERSION {
            Err(ApiError::new(
                ErrorKind::VersionMismatch,
                format!(
                    "lbctl speaks protocol {}, lbd speaks {PROTOCOL_VERSION}; use the lbctl of this lbd",
                    frame.version
                ),
            ))
        } else if frame.request.is_write() && !may_write(&peer, group) {
            warn!("{}", refusal(&frame.request, &peer, group));
            Err(ApiError::new(
                ErrorKind::PermissionDenied,
                "only root or members of the control group may change lbd's configuration",
            ))
        } else {
            plane
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .handle(frame.request)
        };
        if reply(&mut s, response).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;

    #[test]
    fn refused_writes_are_logged_in_words() {
        let p = Peer {
            pid: 4242,
            uid: 65534,
            gid: 65534,
        };
        assert_eq!(
            refusal(&Request::Zero, &p, None),
            "control socket: refused `zero` from pid 4242: permission denied: uid 65534 is not \
             root, and without control.group only root may change lbd"
        );
        assert_eq!(
            refusal(&Request::Restore { ron: "()".into() }, &p, Some(998)),
            "control socket: refused `restore` from pid 4242: permission denied: uid 65534 is \
             not root and neither its group 65534 nor its supplementary groups are the control \
             group (gid 998, control.group)"
        );
        assert_eq!(request_name(&Request::Reload), "reload");
        assert_eq!(request_name(&Request::Clear), "clear");
    }
}
