//! The control socket: a unix stream socket speaking `lbcore::api` frames.
//!
//! Security: the socket is mode 0660, owned by root and by the configured
//! group (if any), in a directory of mode 0750. On top of the file mode, every
//! request that changes something is checked against the peer's credentials
//! (SO_PEERCRED): only root or members of the configured group may write.
//!
//! Binding (`listen.rs`) never destroys a file: only a stale socket (one
//! nobody listens on) is replaced; a regular file, a directory, a symbolic
//! link or a live socket at the path is refused with an error saying what
//! is there.
//!
//! Robustness: frames above the limit, garbage and truncated frames get an
//! error reply or a closed connection. Each client has its own thread, and
//! at most [`Limits::max_clients`] are connected at once. A client must send
//! each whole request within [`Limits::idle_timeout`] of connecting or of its
//! last answer (a deadline per request, not per read, so trickling bytes
//! does not keep a connection alive), and take each whole answer within the
//! same time. When the limit is reached a newcomer is
//! still served: the client idle longest is disconnected to make room, so
//! idle connections can never lock lbctl out; only when every client is in
//! the middle of a request is the newcomer told "too many clients".

use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lbcore::api::*;
use tracing::{debug, info, warn};

use super::plane::ControlPlane;
use crate::dataplane::Dataplane;

/// How many clients may be connected at once, and how long one may stay
/// silent.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Clients connected at once. At the limit, the client idle longest
    /// makes room for a newcomer; if all are busy, the newcomer is refused.
    pub max_clients: usize,
    /// Time a client has to send a whole request, from connecting or from
    /// its previous answer; also the time it has to take a whole answer.
    pub idle_timeout: Duration,
}

/// lbd's limits. lbctl connects for one command and leaves, so 16 covers
/// scripts running in parallel; 10 s is far more than lbctl needs to send
/// a request.
pub const LIMITS: Limits = Limits {
    max_clients: 16,
    idle_timeout: Duration::from_secs(10),
};

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
        Request::DirectorDrain => "director drain",
        Request::DirectorResume => "director resume",
        Request::DrainStatus => "director drain status",
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

/// Answers one request: in lbd the control plane, in tests a stand-in.
type Handler = dyn Fn(Request) -> Result<Response, ApiError> + Send + Sync;

/// Serve the socket until the process stops (runs on its own thread).
pub fn serve(
    listener: UnixListener,
    plane: Arc<Mutex<ControlPlane>>,
    dataplane: Arc<Dataplane>,
    group: Option<u32>,
    path: PathBuf,
) {
    info!("control socket listening on {}", path.display());
    let handler: Arc<Handler> = Arc::new(move |request| {
        plane
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .handle(request)
    });
    run(
        listener,
        handler,
        group,
        LIMITS,
        Arc::new(Clients::default()),
        &|| dataplane.stopping(),
    );
    // Remove our socket, but never whatever someone may have put in its
    // place meanwhile.
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(&path);
    }
}

/// The connected clients, shared by the accepting thread (which admits and,
/// to make room, disconnects) and the client threads (which say when they
/// are busy and when they leave).
#[derive(Default)]
struct Clients {
    list: Mutex<Vec<Entry>>,
    next_id: AtomicU64,
    /// Connections accepted so far, whatever became of them.
    accepted: AtomicU64,
}

struct Entry {
    id: u64,
    peer: Peer,
    /// Between a complete request and the end of its answer: must not be
    /// disconnected.
    busy: bool,
    /// When it connected or last got an answer.
    idle_since: Instant,
    /// Another handle on the connection, to shut it down from outside.
    stream: UnixStream,
}

/// What became of a new connection.
#[derive(Debug)]
enum Admission {
    /// There was room.
    Admitted { id: u64 },
    /// `closed`, idle for `idle_for`, was disconnected to make room; there
    /// were `connected` clients.
    MadeRoom {
        id: u64,
        closed: Peer,
        idle_for: Duration,
        connected: usize,
    },
    /// All `connected` clients are in the middle of a request.
    Full { connected: usize },
}

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection (`stream` is a second handle on it),
    /// disconnecting the client idle longest if the list is full.
    fn admit(&self, stream: UnixStream, peer: Peer, max: usize, now: Instant) -> Admission {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let mut list = self.lock();
        let connected = list.len();
        let mut made_room = None;
        if connected >= max {
            let oldest = list
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.busy)
                .min_by_key(|(_, e)| e.idle_since)
                .map(|(i, _)| i);
            let Some(i) = oldest else {
                return Admission::Full { connected };
            };
            let old = list.swap_remove(i);
            // Its thread's read returns at once and the thread ends; being
            // out of the list, it will not start a request it may have
            // just received.
            let _ = old.stream.shutdown(std::net::Shutdown::Both);
            made_room = Some((old.peer, now.saturating_duration_since(old.idle_since)));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        list.push(Entry {
            id,
            peer,
            busy: false,
            idle_since: now,
            stream,
        });
        match made_room {
            None => Admission::Admitted { id },
            Some((closed, idle_for)) => Admission::MadeRoom {
                id,
                closed,
                idle_for,
                connected,
            },
        }
    }

    /// A whole request arrived: the client is busy until [`Clients::done`].
    /// False if it was disconnected to make room in the meantime.
    fn begin(&self, id: u64) -> bool {
        match self.lock().iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.busy = true;
                true
            }
            None => false,
        }
    }

    /// The answer is written: the client is idle again.
    fn done(&self, id: u64) {
        if let Some(e) = self.lock().iter_mut().find(|e| e.id == id) {
            e.busy = false;
            e.idle_since = Instant::now();
        }
    }

    fn leave(&self, id: u64) {
        self.lock().retain(|e| e.id != id);
    }

    #[cfg(test)]
    fn connected(&self) -> usize {
        self.lock().len()
    }
}

/// Accept clients until `stopping()`.
fn run(
    listener: UnixListener,
    handler: Arc<Handler>,
    group: Option<u32>,
    limits: Limits,
    clients: Arc<Clients>,
    stopping: &dyn Fn() -> bool,
) {
    // Non-blocking accept with a short sleep lets the thread notice shutdown.
    if let Err(e) = listener.set_nonblocking(true) {
        warn!("control socket: {e}");
        return;
    }
    while !stopping() {
        match listener.accept() {
            Ok((stream, _)) => admit(stream, &handler, group, limits, &clients),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                warn!("control socket accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Admit one new connection and start its thread, or tell it why not.
fn admit(
    stream: UnixStream,
    handler: &Arc<Handler>,
    group: Option<u32>,
    limits: Limits,
    clients: &Arc<Clients>,
) {
    let peer = match peer_of(&stream) {
        Ok(p) => p,
        Err(e) => {
            warn!("control socket: cannot read peer credentials: {e}");
            return;
        }
    };
    let handle = match stream.try_clone() {
        Ok(h) => h,
        Err(e) => {
            warn!("control socket: refused pid {}: {e}", peer.pid);
            return;
        }
    };
    let id = match clients.admit(handle, peer, limits.max_clients, Instant::now()) {
        Admission::Admitted { id } => id,
        Admission::MadeRoom {
            id,
            closed,
            idle_for,
            connected,
        } => {
            info!(
                "control socket: {connected} clients connected (the limit); disconnected pid {} \
                 (uid {}), idle for {:.1} s, to make room for pid {} (uid {})",
                closed.pid,
                closed.uid,
                idle_for.as_secs_f64(),
                peer.pid,
                peer.uid
            );
            id
        }
        Admission::Full { connected } => {
            warn!(
                "control socket: refused pid {} (uid {}): too many clients ({connected} connected, \
                 all in the middle of a request)",
                peer.pid, peer.uid
            );
            // Non-blocking: a fresh socket's buffer takes this small frame
            // at once, and a misbehaving peer cannot stall the accept loop.
            let _ = stream.set_nonblocking(true);
            let mut s = stream;
            let _ = reply(
                &mut s,
                Err(ApiError::new(
                    ErrorKind::Internal,
                    format!(
                        "too many clients ({connected} connected, all busy with requests); \
                         try again in a moment"
                    ),
                )),
            );
            return;
        }
    };
    let (handler, clients2) = (handler.clone(), clients.clone());
    let spawned = std::thread::Builder::new()
        .name("lbd-ctl-client".to_owned())
        .spawn(move || client(stream, id, peer, &*handler, group, limits, &clients2));
    if let Err(e) = spawned {
        warn!("control socket: no thread for pid {}: {e}", peer.pid);
        clients.leave(id);
    }
}

fn reply(s: &mut impl io::Write, response: Result<Response, ApiError>) -> Result<(), FrameError> {
    write_frame(
        s,
        &ResponseFrame {
            version: PROTOCOL_VERSION,
            response,
        },
    )
}

/// Reads from or writes to a stream until a fixed point in time, however
/// slowly the other side goes: each call waits at most for what is left.
struct Deadline<'a> {
    stream: &'a UnixStream,
    until: Instant,
}

impl Deadline<'_> {
    fn left(&self) -> io::Result<Duration> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        (&mut &*self.stream).read(buf)
    }
}

impl io::Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        // The kernel applies the send timeout to each piece of a write, not
        // to the whole call: one large write to a client reading slowly but
        // steadily would never time out. Small writes let the deadline be
        // looked at again between them.
        let n = buf.len().min(WRITE_CHUNK);
        (&mut &*self.stream).write(&buf[..n])
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Largest single write of an answer (see [`Deadline`]'s `write`).
const WRITE_CHUNK: usize = 64 << 10;

/// Takes a client out of the list however its thread ends.
struct Leave<'a> {
    clients: &'a Clients,
    id: u64,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.clients.leave(self.id);
    }
}

/// One client: requests in turn until it closes, errs, idles out or is
/// disconnected to make room.
fn client(
    s: UnixStream,
    id: u64,
    peer: Peer,
    handler: &Handler,
    group: Option<u32>,
    limits: Limits,
    clients: &Clients,
) {
    let _leave = Leave { clients, id };
    loop {
        let mut from = Deadline {
            stream: &s,
            until: Instant::now() + limits.idle_timeout,
        };
        let body = match read_frame(&mut from) {
            Ok(b) => b,
            Err(FrameError::Closed) => return,
            Err(e @ FrameError::TooLarge(_)) => {
                let mut to = Deadline {
                    stream: &s,
                    until: Instant::now() + limits.idle_timeout,
                };
                let _ = reply(
                    &mut to,
                    Err(ApiError::new(ErrorKind::TooLarge, e.to_string())),
                );
                return;
            }
            Err(FrameError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                debug!(
                    "control socket: pid {}: no whole request within {} s; disconnected",
                    peer.pid,
                    limits.idle_timeout.as_secs_f64()
                );
                return;
            }
            Err(e) => {
                debug!("control socket: client pid {}: {e}", peer.pid);
                return;
            }
        };
        if !clients.begin(id) {
            // Disconnected to make room just as this request arrived.
            return;
        }
        let (response, go_on) = respond(&body, &peer, handler, group);
        // The whole answer must be taken within the timeout too, so a
        // client that stops reading cannot stay "busy" for long.
        let mut to = Deadline {
            stream: &s,
            until: Instant::now() + limits.idle_timeout,
        };
        let sent = reply(&mut to, response);
        clients.done(id);
        if sent.is_err() || !go_on {
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

    #[test]
    fn writes_from_outside_root_and_the_group_never_reach_the_handler() {
        use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let handler = move |_: Request| {
            counted.fetch_add(1, Relaxed);
            Ok(Response::Done)
        };
        let body = |request| {
            serde_json::to_vec(&RequestFrame {
                version: PROTOCOL_VERSION,
                request,
            })
            .unwrap()
        };
        // pid 0: no /proc entry, so no supplementary groups either.
        let nobody = Peer {
            pid: 0,
            uid: 65534,
            gid: 65534,
        };
        let (r, go_on) = respond(&body(Request::Zero), &nobody, &handler, Some(998));
        assert_eq!(r.unwrap_err().kind, ErrorKind::PermissionDenied);
        assert!(go_on, "a refused request does not close the connection");
        assert_eq!(calls.load(Relaxed), 0);
        // Reading is allowed to anyone who can open the socket.
        let (r, _) = respond(&body(Request::Status), &nobody, &handler, Some(998));
        assert_eq!(r.unwrap(), Response::Done);
        // A member of the control group, and root, may write.
        let member = Peer { gid: 998, ..nobody };
        assert!(respond(&body(Request::Zero), &member, &handler, Some(998))
            .0
            .is_ok());
        let root = Peer { uid: 0, ..nobody };
        assert!(respond(&body(Request::Zero), &root, &handler, None)
            .0
            .is_ok());
        assert_eq!(calls.load(Relaxed), 3);
    }
}

/// The answer to one request body, and whether to read another request
/// afterwards (not after one that could not be parsed).
fn respond(
    body: &[u8],
    peer: &Peer,
    handler: &Handler,
    group: Option<u32>,
) -> (Result<Response, ApiError>, bool) {
    let frame: RequestFrame = match decode(body) {
        Ok(f) => f,
        Err(e) => {
            // Tell a newer or older lbctl about the version before
            // complaining about the body it could not parse.
            let version = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("version").and_then(|v| v.as_u64()));
            let err = match version {
                Some(v) if v != PROTOCOL_VERSION as u64 => ApiError::new(
                    ErrorKind::VersionMismatch,
                    format!("lbctl speaks protocol {v}, lbd speaks {PROTOCOL_VERSION}; use the lbctl of this lbd"),
                ),
                _ => ApiError::new(ErrorKind::BadRequest, format!("malformed request: {e}")),
            };
            return (Err(err), false);
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
    } else if frame.request.is_write() && !may_write(peer, group) {
        warn!("{}", refusal(&frame.request, peer, group));
        Err(ApiError::new(
            ErrorKind::PermissionDenied,
            "only root or members of the control group may change lbd's configuration",
        ))
    } else {
        handler(frame.request)
    };
    (response, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::AtomicBool;
    use std::sync::Condvar;

    /// A fresh directory per test (tests run in parallel).
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbd-ctl-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Waits for a condition the code under test brings about on another
    /// thread; the bound only keeps a broken build from hanging.
    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < give_up, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    // --- serving -------------------------------------------------------------

    /// A server on a scratch socket with a stand-in handler.
    struct Server {
        dir: PathBuf,
        path: PathBuf,
        clients: Arc<Clients>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Server {
        fn start(test: &str, limits: Limits, handler: Arc<Handler>) -> Server {
            let dir = scratch(test);
            let path = dir.join("lbd.sock");
            let listener = super::super::listen::bind(&path, None).unwrap();
            let clients = Arc::new(Clients::default());
            let stop = Arc::new(AtomicBool::new(false));
            let (c, st) = (clients.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                run(listener, handler, None, limits, c, &|| {
                    st.load(Ordering::Relaxed)
                })
            });
            Server {
                dir,
                path,
                clients,
                stop,
                thread: Some(thread),
            }
        }

        fn connect(&self) -> UnixStream {
            let s = UnixStream::connect(&self.path).unwrap();
            // Only keeps a broken server from hanging the test.
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s
        }

        fn accepted(&self) -> u64 {
            self.clients.accepted.load(Ordering::Relaxed)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn ask(s: &mut UnixStream) -> Result<Response, ApiError> {
        write_frame(
            s,
            &RequestFrame {
                version: PROTOCOL_VERSION,
                request: Request::Status,
            },
        )
        .unwrap();
        read_answer(s)
    }

    fn read_answer(s: &mut UnixStream) -> Result<Response, ApiError> {
        let body = read_frame(s).unwrap();
        decode::<ResponseFrame>(&body).unwrap().response
    }

    /// True once the server has closed `s` (a read sees the end).
    fn closed(s: &UnixStream) -> bool {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let r = (&mut &*s).read(&mut b);
        s.set_nonblocking(false).unwrap();
        matches!(r, Ok(0))
    }

    fn answers_done() -> Arc<Handler> {
        Arc::new(|_| Ok(Response::Done))
    }

    #[test]
    fn idle_clients_do_not_lock_out_a_new_one() {
        let limits = Limits {
            // Long enough that no idle client times out during the test:
            // room must come from disconnecting the idle ones.
            idle_timeout: Duration::from_secs(600),
            ..LIMITS
        };
        let server = Server::start("lockout", limits, answers_done());
        let n = limits.max_clients + 4;
        let mut idle: Vec<UnixStream> = Vec::new();
        for _ in 0..n {
            idle.push(server.connect());
            // One at a time, so their order of arrival is known.
            let k = idle.len() as u64;
            wait_until("the server to accept", || server.accepted() == k);
        }
        assert_eq!(server.clients.connected(), limits.max_clients);
        // A real client still gets its answer, at once.
        let mut lbctl = server.connect();
        assert_eq!(ask(&mut lbctl), Ok(Response::Done));
        assert_eq!(ask(&mut lbctl), Ok(Response::Done), "and stays connected");
        // Room was made by disconnecting the oldest idle clients (the 4
        // over the limit, and one more for lbctl), and only those.
        let evicted = n - limits.max_clients + 1;
        for (i, s) in idle.iter().enumerate() {
            if i < evicted {
                wait_until("an idle client to be disconnected", || closed(s));
            } else {
                assert!(!closed(s), "client {i} was disconnected");
            }
        }
        assert_eq!(server.clients.connected(), limits.max_clients);
    }

    #[test]
    fn busy_clients_make_a_newcomer_wait_with_a_clear_error() {
        // A handler that holds every request until released.
        let gate = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
        let g = gate.clone();
        let handler: Arc<Handler> = Arc::new(move |_| {
            let (m, cv) = &*g;
            let mut st = m.lock().unwrap();
            st.0 += 1;
            cv.notify_all();
            while !st.1 {
                st = cv.wait(st).unwrap();
            }
            Ok(Response::Done)
        });
        let limits = Limits {
            max_clients: 2,
            idle_timeout: Duration::from_secs(600),
        };
        let server = Server::start("busy", limits, handler);
        let mut busy: Vec<UnixStream> = (0..2).map(|_| server.connect()).collect();
        for s in &mut busy {
            write_frame(
                s,
                &RequestFrame {
                    version: PROTOCOL_VERSION,
                    request: Request::Status,
                },
            )
            .unwrap();
        }
        {
            let (m, cv) = &*gate;
            let mut st = m.lock().unwrap();
            while st.0 < 2 {
                st = cv.wait(st).unwrap();
            }
        }
        // Both are in the middle of a request: none can be disconnected.
        let mut late = server.connect();
        let e = read_answer(&mut late).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(
            e.message.starts_with("too many clients (2 connected"),
            "{}",
            e.message
        );
        {
            let (m, cv) = &*gate;
            m.lock().unwrap().1 = true;
            cv.notify_all();
        }
        for s in &mut busy {
            assert_eq!(read_answer(s), Ok(Response::Done));
        }
        // Idle again: a newcomer now gets in by disconnecting one.
        let mut next = server.connect();
        assert_eq!(ask(&mut next), Ok(Response::Done));
    }

    #[test]
    fn a_silent_client_is_disconnected() {
        let limits = Limits {
            max_clients: 4,
            idle_timeout: Duration::from_millis(200),
        };
        let server = Server::start("silent", limits, answers_done());
        let mut s = server.connect();
        assert_eq!(ask(&mut s), Ok(Response::Done));
        // Then nothing: the server closes the connection.
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).unwrap(), 0);
        wait_until("the client to leave the list", || {
            server.clients.connected() == 0
        });
    }

    #[test]
    fn a_trickling_client_is_disconnected_at_its_deadline() {
        let limits = Limits {
            max_clients: 4,
            idle_timeout: Duration::from_millis(300),
        };
        let server = Server::start("trickle", limits, answers_done());
        let mut s = server.connect();
        // Announce a large frame, then send it a byte at a time, each well
        // within the timeout: only a deadline for the whole request ends it.
        s.write_all(&100_000u32.to_be_bytes()).unwrap();
        let mut sent = 0;
        let ended = loop {
            if s.write_all(b"x").is_err() {
                break true;
            }
            sent += 1;
            if sent == 2000 {
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(ended, "still connected after {sent} bytes");
    }

    #[test]
    fn a_client_reading_its_answer_too_slowly_is_disconnected() {
        let limits = Limits {
            max_clients: 4,
            idle_timeout: Duration::from_millis(300),
        };
        // An answer far larger than the socket's buffers.
        let big = "x".repeat(4 << 20);
        let server = Server::start(
            "slow-reader",
            limits,
            Arc::new(move |_| Ok(Response::Config(big.clone()))),
        );
        let mut s = server.connect();
        write_frame(
            &mut s,
            &RequestFrame {
                version: PROTOCOL_VERSION,
                request: Request::Status,
            },
        )
        .unwrap();
        // Keep reading, slowly: the answer would take minutes at this pace.
        let mut buf = [0u8; 1024];
        let mut got = 0;
        let ended = loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break true,
                Ok(n) => got += n,
            }
            if got >= 4 << 20 {
                break false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(ended, "the whole answer arrived");
        wait_until("the client to leave the list", || {
            server.clients.connected() == 0
        });
    }

    #[test]
    fn requests_are_answered_in_turn_and_garbage_closes() {
        let server = Server::start("turns", LIMITS, answers_done());
        let mut s = server.connect();
        for _ in 0..3 {
            assert_eq!(ask(&mut s), Ok(Response::Done));
        }
        s.write_all(&[0, 0, 0, 3, b'x', b'y', b'z']).unwrap();
        let e = read_answer(&mut s).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).unwrap(), 0);
    }
}
