//! The HTTP server behind `/metrics`: a minimal HTTP/1.1 server for `GET`
//! and `HEAD`, on one thread, with every resource bounded.
//!
//! Why not a library: tiny_http (used before) hands every connection to a
//! pool that starts a new thread whenever all are busy, with no upper bound
//! and no read timeout, so idle connections pile up threads and memory
//! (4 000 idle connections made 4 018 threads). What a scrape endpoint needs
//! is small enough to own outright:
//!
//! * **One thread**, multiplexing every connection with `poll(2)`; sockets
//!   are non-blocking, so no client can stall another.
//! * **At most [`Limits::max_connections`] connections.** At the limit, a
//!   newcomer takes the place of the connection that has waited longest
//!   without sending a whole request (idle or slow), so idle connections can
//!   never keep a real scrape out; if every connection is being answered,
//!   the newcomer gets `503` and is closed.
//! * **A deadline per connection** ([`Limits::timeout`]) for sending the
//!   whole request head, and again for taking the whole answer: idle and
//!   slow clients are closed (`408` for a request that never completed).
//! * **A bounded request head** ([`Limits::max_head`]): longer gets `431`.
//! * Every answer says `Connection: close` and the connection ends after it:
//!   Prometheus scrapes every few seconds, so keep-alive buys nothing and
//!   would keep connections open between scrapes.
//!
//! Each of these outcomes is counted in [`Stats`] and exported with the
//! other metrics.
//!
//! Routes: `GET /metrics`, `GET /` (a pointer to `/metrics`), 404 for other
//! paths, 405 for other methods.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use tracing::warn;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The bounds the server keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to send the whole request head after connecting, and again to
    /// take the whole answer.
    pub timeout: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_head: usize,
}

/// lbd's limits: a handful of Prometheus servers and humans with curl need
/// far fewer than 64 connections; a scrape's request arrives in one packet,
/// far within 5 s; 8 KiB is the usual header limit of web servers.
pub const LIMITS: Limits = Limits {
    max_connections: 64,
    timeout: Duration::from_secs(5),
    max_head: 8 << 10,
};

/// How often the server thread looks at the stop flag while idle.
pub const STOP_POLL: Duration = Duration::from_millis(250);

/// At most this many connections are accepted per turn of the loop, so a
/// flood of connections cannot starve the ones already open.
const ACCEPT_BATCH: usize = 256;

/// How long the listener rests after a failed accept.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// After its answer, a connection's leftover input (a request body nobody
/// asked for) is read and dropped up to this much, so that closing does not
/// reset the connection before the client read the answer.
const DRAIN_MAX: usize = 64 << 10;

/// What the server did with connections, since it started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted (all of them, whatever happened next).
    pub accepted: AtomicU64,
    /// Requests answered (any status, including 404 and 405).
    pub answered: AtomicU64,
    /// Closed before a whole request arrived, to make room for a newcomer.
    pub evicted: AtomicU64,
    /// Refused with 503: at the limit, and every connection was busy.
    pub over_limit: AtomicU64,
    /// Closed at their deadline: the request or the answer was too slow.
    pub timed_out: AtomicU64,
    /// Answered 431: request head over the limit.
    pub head_too_large: AtomicU64,
    /// Answered 400: not an HTTP/1.x request.
    pub bad_request: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

impl Stats {
    /// The counters in the Prometheus text format, to append to a scrape.
    pub fn render(&self) -> String {
        self.try_render().unwrap_or_else(|e| {
            warn!("metrics: cannot render the HTTP server's counters: {e}");
            String::new()
        })
    }

    fn try_render(&self) -> prometheus::Result<String> {
        let reg = Registry::new();
        let conns = IntCounterVec::new(
            Opts::new(
                "lbd_metrics_http_connections_total",
                "Connections to the /metrics endpoint: accepted, and answered with a response.",
            ),
            &["event"],
        )?;
        reg.register(Box::new(conns.clone()))?;
        conns
            .with_label_values(&["accepted"])
            .inc_by(self.accepted.load(Relaxed));
        conns
            .with_label_values(&["answered"])
            .inc_by(self.answered.load(Relaxed));
        let rejected = IntCounterVec::new(
            Opts::new(
                "lbd_metrics_http_rejected_total",
                "Connections to the /metrics endpoint closed without a normal answer: \
                 evicted (idle, to make room), over_limit (503, all busy), timeout (too slow), \
                 header_too_large (431), bad_request (400).",
            ),
            &["reason"],
        )?;
        reg.register(Box::new(rejected.clone()))?;
        for (reason, v) in [
            ("evicted", &self.evicted),
            ("over_limit", &self.over_limit),
            ("timeout", &self.timed_out),
            ("header_too_large", &self.head_too_large),
            ("bad_request", &self.bad_request),
        ] {
            rejected
                .with_label_values(&[reason])
                .inc_by(v.load(Relaxed));
        }
        let open = IntGaugeVec::new(
            Opts::new(
                "lbd_metrics_http_open_connections",
                "Connections to the /metrics endpoint open now (this scrape's included).",
            ),
            &[],
        )?;
        reg.register(Box::new(open.clone()))?;
        open.with_label_values(&[] as &[&str])
            .set(self.open.load(Relaxed) as i64);
        let mut out = String::new();
        TextEncoder::new().encode_utf8(&reg.gather(), &mut out)?;
        Ok(out)
    }
}

/// A bound listening socket, not yet serving.
pub struct Server {
    listener: TcpListener,
    limits: Limits,
    stats: Arc<Stats>,
}

/// Binds `listen` (e.g. `"127.0.0.1:9300"`); the error names the address.
pub fn bind(listen: &str, limits: Limits) -> io::Result<Server> {
    let listener = TcpListener::bind(listen)
        .map_err(|e| io::Error::new(e.kind(), format!("metrics endpoint on {listen}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| io::Error::new(e.kind(), format!("metrics endpoint on {listen}: {e}")))?;
    Ok(Server {
        listener,
        limits,
        stats: Arc::default(),
    })
}

impl Server {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The counters, to read while [`Server::serve`] runs.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Serve until `stopping()` says so (checked at least every
    /// [`STOP_POLL`]). `render` makes the body of `/metrics`.
    pub fn serve(self, stopping: &dyn Fn() -> bool, render: &dyn Fn() -> String) {
        let mut conns: Vec<Conn> = Vec::new();
        let mut fds: Vec<libc::pollfd> = Vec::new();
        // After a failed accept (e.g. no file descriptor left) the listener
        // stays readable; it is left out of the poll for a while rather than
        // spinning on it.
        let mut accept_after = Instant::now();
        while !stopping() {
            let now = Instant::now();
            let wait = conns
                .iter()
                .map(|c| c.deadline)
                .chain((accept_after > now).then_some(accept_after))
                .map(|t| t.saturating_duration_since(now))
                .min()
                .unwrap_or(STOP_POLL)
                .min(STOP_POLL);
            fds.clear();
            let listen_for = if now >= accept_after { libc::POLLIN } else { 0 };
            fds.push(pollfd(&self.listener, listen_for));
            fds.extend(conns.iter().map(|c| {
                let events = match c.phase {
                    Phase::Writing => libc::POLLOUT,
                    _ => libc::POLLIN,
                };
                pollfd(&c.stream, events)
            }));
            // Round up, so a deadline a fraction of a millisecond away is
            // not polled for again and again with a zero timeout.
            let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd entries,
            // and every descriptor in it stays open during the call.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!("metrics: poll failed: {e}");
                    std::thread::sleep(STOP_POLL);
                }
                continue;
            }
            for (c, fd) in conns.iter_mut().zip(&fds[1..]) {
                if fd.revents != 0 {
                    c.advance(&self.limits, &self.stats, render);
                }
            }
            let now = Instant::now();
            for c in &mut conns {
                if c.phase != Phase::Done && now >= c.deadline {
                    c.expire(&self.stats);
                }
            }
            conns.retain(|c| c.phase != Phase::Done);
            if fds[0].revents != 0 && !self.accept(&mut conns, now) {
                accept_after = now + ACCEPT_PAUSE;
            }
            self.stats.open.store(conns.len() as u64, Relaxed);
        }
    }

    /// Take the waiting connections (a bounded batch), making room or
    /// refusing when at the limit. False if accepting failed.
    fn accept(&self, conns: &mut Vec<Conn>, now: Instant) -> bool {
        for _ in 0..ACCEPT_BATCH {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // E.g. out of file descriptors: the connection stays in
                    // the backlog until a later try.
                    warn!("metrics: accept failed: {e}");
                    return false;
                }
            };
            self.stats.accepted.fetch_add(1, Relaxed);
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if conns.len() >= self.limits.max_connections && !make_room(conns, &self.stats) {
                self.stats.over_limit.fetch_add(1, Relaxed);
                let mut s = stream;
                // Best effort: a fresh socket takes this at once, and a
                // client that is not reading loses only this courtesy.
                let _ = s.write_all(&response(
                    Status::Unavailable,
                    "text/plain; charset=utf-8",
                    "too many connections; try again\n",
                    false,
                    &[("Retry-After", "1")],
                ));
                continue;
            }
            conns.push(Conn {
                stream,
                phase: Phase::Reading,
                head: Vec::new(),
                out: Vec::new(),
                sent: 0,
                drained: 0,
                deadline: now + self.limits.timeout,
                since: now,
                seq: self.stats.accepted.load(Relaxed),
            });
        }
        true
    }
}

/// Close one connection that is not being answered to make room: one that
/// was answered and lingers, else the one that has waited longest for its
/// request. False if every connection is being answered.
fn make_room(conns: &mut Vec<Conn>, stats: &Stats) -> bool {
    let victim = conns
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.phase, Phase::Reading | Phase::Closing))
        .min_by_key(|(_, c)| (c.phase == Phase::Reading, c.since, c.seq))
        .map(|(i, _)| i);
    match victim {
        Some(i) => {
            if conns[i].phase == Phase::Reading {
                stats.evicted.fetch_add(1, Relaxed);
            }
            conns.swap_remove(i);
            true
        }
        None => false,
    }
}

fn pollfd(fd: &impl AsRawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the whole request head.
    Reading,
    /// Sending the answer.
    Writing,
    /// Answer sent and our side shut: waiting for the client to close.
    Closing,
    /// To be dropped.
    Done,
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    /// The request head so far (at most `max_head + 1` bytes).
    head: Vec<u8>,
    /// The answer, and how much of it is sent.
    out: Vec<u8>,
    sent: usize,
    /// Bytes read and dropped while closing.
    drained: usize,
    /// When the current phase must be over.
    deadline: Instant,
    /// When the current phase began (eviction order).
    since: Instant,
    /// Order of arrival: ties of `since` (a batch accepted at once) go to
    /// the connection that came first.
    seq: u64,
}

impl Conn {
    /// Do what can be done without blocking.
    fn advance(&mut self, limits: &Limits, stats: &Stats, render: &dyn Fn() -> String) {
        loop {
            let before = self.phase;
            match self.phase {
                Phase::Reading => self.read_head(limits, stats, render),
                Phase::Writing => self.write_answer(limits),
                Phase::Closing => self.drain(),
                Phase::Done => return,
            }
            if self.phase == before {
                return; // would block
            }
        }
    }

    fn read_head(&mut self, limits: &Limits, stats: &Stats, render: &dyn Fn() -> String) {
        let mut buf = [0u8; 4096];
        loop {
            // Never hold more than one byte over the limit: enough to know
            // the head is too long.
            let room = (limits.max_head + 1).saturating_sub(self.head.len());
            let n = match self.stream.read(&mut buf[..room.min(4096)]) {
                Ok(0) => {
                    // The client gave up (or sent nothing and closed).
                    self.phase = Phase::Done;
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.phase = Phase::Done;
                    return;
                }
            };
            // Look for the end from a little before the new bytes, in case
            // the blank line straddles two reads.
            let from = self.head.len().saturating_sub(3);
            self.head.extend_from_slice(&buf[..n]);
            let end = head_end(&self.head[from..]).map(|e| from + e);
            let out = match end {
                Some(len) if len <= limits.max_head => {
                    let (out, counted) = answer(&self.head[..len], render);
                    match counted {
                        Outcome::Answered => {}
                        Outcome::Bad => {
                            stats.bad_request.fetch_add(1, Relaxed);
                        }
                    }
                    out
                }
                _ if self.head.len() > limits.max_head => {
                    stats.head_too_large.fetch_add(1, Relaxed);
                    response(
                        Status::HeadTooLarge,
                        "text/plain; charset=utf-8",
                        "request header too large\n",
                        false,
                        &[],
                    )
                }
                _ => continue,
            };
            stats.answered.fetch_add(1, Relaxed);
            self.start_writing(out, limits);
            return;
        }
    }

    fn start_writing(&mut self, out: Vec<u8>, limits: &Limits) {
        self.head = Vec::new();
        self.out = out;
        self.sent = 0;
        self.phase = Phase::Writing;
        let now = Instant::now();
        self.since = now;
        self.deadline = now + limits.timeout;
    }

    fn write_answer(&mut self, limits: &Limits) {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => {
                    self.phase = Phase::Done;
                    return;
                }
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.phase = Phase::Done;
                    return;
                }
            }
        }
        self.out = Vec::new();
        // Our FIN tells the client the answer is complete; we wait for its
        // close rather than closing with unread input, which would reset
        // the connection and could destroy the answer in flight.
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.phase = Phase::Closing;
        let now = Instant::now();
        self.since = now;
        self.deadline = now + limits.timeout;
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(n) if n > 0 && self.drained + n <= DRAIN_MAX => self.drained += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // End of input, an error, or more than anyone should send.
                _ => {
                    self.phase = Phase::Done;
                    return;
                }
            }
        }
    }

    /// The deadline passed.
    fn expire(&mut self, stats: &Stats) {
        match self.phase {
            Phase::Reading => {
                stats.timed_out.fetch_add(1, Relaxed);
                // Best effort, for a human wondering what happened.
                let _ = self.stream.write_all(&response(
                    Status::Timeout,
                    "text/plain; charset=utf-8",
                    "request not received in time\n",
                    false,
                    &[],
                ));
            }
            Phase::Writing => {
                stats.timed_out.fetch_add(1, Relaxed);
            }
            // Answered already; the client just did not close.
            Phase::Closing | Phase::Done => {}
        }
        self.phase = Phase::Done;
    }
}

/// Length of the request head in `buf` (up to and including the blank line
/// ending it), if it is all there. Accepts bare LF line ends too.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Timeout,
    HeadTooLarge,
    Unavailable,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::Timeout => "408 Request Timeout",
            Status::HeadTooLarge => "431 Request Header Fields Too Large",
            Status::Unavailable => "503 Service Unavailable",
        }
    }
}

/// A whole answer: status line, headers, and the body unless `head_only`
/// (HEAD: the same headers, including the length the body would have).
fn response(
    status: Status,
    content_type: &str,
    body: &str,
    head_only: bool,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        status.line(),
        body.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// What a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Metrics,
    Index,
    NotFound,
    MethodNotAllowed,
}

fn route(method: &str, target: &str) -> Route {
    if !matches!(method, "GET" | "HEAD") {
        return Route::MethodNotAllowed;
    }
    match target.split(['?', '#']).next().unwrap_or("") {
        "/metrics" => Route::Metrics,
        "/" => Route::Index,
        _ => Route::NotFound,
    }
}

const INDEX_HTML: &str = "<!DOCTYPE html>\n<html><head><title>lbd</title></head><body>\n\
<h1>lbd</h1>\n<p>Load-balancer director. Prometheus metrics: <a href=\"/metrics\">/metrics</a></p>\n\
</body></html>\n";

/// How a request counts.
enum Outcome {
    Answered,
    Bad,
}

/// The request line, if `head` starts with a well-formed HTTP/1.x one:
/// (method, target).
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic());
    (parts.next().is_none()
        && token(method)
        && target.starts_with('/')
        && version.starts_with("HTTP/1."))
    .then_some((method, target))
}

/// The answer to a complete request head.
fn answer(head: &[u8], render: &dyn Fn() -> String) -> (Vec<u8>, Outcome) {
    let Some((method, target)) = request_line(head) else {
        let out = response(
            Status::BadRequest,
            "text/plain; charset=utf-8",
            "bad request; this is an HTTP/1.1 server for GET /metrics\n",
            false,
            &[],
        );
        return (out, Outcome::Bad);
    };
    let head_only = method == "HEAD";
    let text = "text/plain; charset=utf-8";
    let out = match route(method, target) {
        Route::Metrics => response(Status::Ok, CONTENT_TYPE, &render(), head_only, &[]),
        Route::Index => response(
            Status::Ok,
            "text/html; charset=utf-8",
            INDEX_HTML,
            head_only,
            &[],
        ),
        Route::NotFound => response(
            Status::NotFound,
            text,
            "not found; try /metrics\n",
            head_only,
            &[],
        ),
        Route::MethodNotAllowed => response(
            Status::MethodNotAllowed,
            text,
            "method not allowed; use GET\n",
            false,
            &[("Allow", "GET, HEAD")],
        ),
    };
    (out, Outcome::Answered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Waits for a condition the server brings about on its thread; the
    /// bound only keeps a broken build from hanging.
    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < give_up, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A server on a loopback port, stopped on drop.
    struct Running {
        addr: SocketAddr,
        stats: Arc<Stats>,
        scrapes: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Running {
        fn start(limits: Limits, body: String) -> Running {
            let server = bind("127.0.0.1:0", limits).unwrap();
            let addr = server.local_addr().unwrap();
            let stats = server.stats();
            let stop = Arc::new(AtomicBool::new(false));
            let scrapes = Arc::new(AtomicU64::new(0));
            let (st, sc) = (stop.clone(), scrapes.clone());
            let thread = std::thread::spawn(move || {
                server.serve(&|| st.load(Relaxed), &|| {
                    sc.fetch_add(1, Relaxed);
                    body.clone()
                })
            });
            Running {
                addr,
                stats,
                scrapes,
                stop,
                thread: Some(thread),
            }
        }

        fn connect(&self) -> TcpStream {
            let s = TcpStream::connect(self.addr).unwrap();
            // Only keeps a broken server from hanging the test.
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s
        }

        /// Sends `request` on a new connection; (status, head, body).
        fn http(&self, request: &[u8]) -> (u16, String, String) {
            let mut s = self.connect();
            s.write_all(request).unwrap();
            read_answer(&mut s)
        }

        fn get(&self, method: &str, path: &str) -> (u16, String, String) {
            self.http(format!("{method} {path} HTTP/1.1\r\nHost: lbd\r\n\r\n").as_bytes())
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop.store(true, Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn read_answer(s: &mut TcpStream) -> (u16, String, String) {
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no status in {raw:?}"))
            .parse()
            .unwrap();
        (status, head.to_owned(), body.to_owned())
    }

    const BODY: &str = "# HELP lbd_x x\n# TYPE lbd_x gauge\nlbd_x 1\n";

    fn patient() -> Limits {
        // A timeout far beyond the test's length: what is tested must not
        // depend on how fast this machine is.
        Limits {
            timeout: Duration::from_secs(600),
            ..LIMITS
        }
    }

    #[test]
    fn routes_and_stops() {
        let server = Running::start(patient(), BODY.to_owned());
        let (status, head, body) = server.get("GET", "/metrics");
        assert_eq!(status, 200);
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(head.contains("Connection: close"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}", BODY.len())));
        assert_eq!(body, BODY);
        let (status, _, _) = server.get("GET", "/metrics?name[]=x");
        assert_eq!(status, 200);
        let (status, head, body) = server.get("GET", "/");
        assert_eq!(status, 200);
        assert!(head.contains("text/html"), "{head}");
        assert!(body.contains("href=\"/metrics\""), "{body}");
        let (status, head, body) = server.get("HEAD", "/metrics");
        assert_eq!(status, 200);
        assert!(head.contains(&format!("Content-Length: {}", BODY.len())));
        assert!(body.is_empty());
        let (status, _, _) = server.get("GET", "/metric");
        assert_eq!(status, 404);
        let (status, head, _) = server.get("POST", "/metrics");
        assert_eq!(status, 405);
        assert!(head.contains("Allow: GET, HEAD"), "{head}");
        // HTTP/1.0 and bare line feeds are fine too.
        let (status, _, body) = server.http(b"GET /metrics HTTP/1.0\n\n");
        assert_eq!((status, body.as_str()), (200, BODY));
        assert_eq!(server.scrapes.load(Relaxed), 4);
        assert_eq!(server.stats.answered.load(Relaxed), 7);
        // Stops once the flag is set.
        drop(server);
    }

    #[test]
    fn bad_requests_get_400() {
        let server = Running::start(patient(), BODY.to_owned());
        for bad in [
            &b"hello\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"G\xffT /metrics HTTP/1.1\r\n\r\n",
        ] {
            let (status, _, _) = server.http(bad);
            assert_eq!(status, 400, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(server.stats.bad_request.load(Relaxed), 5);
        assert_eq!(server.scrapes.load(Relaxed), 0);
    }

    #[test]
    fn idle_connections_over_the_limit_do_not_keep_a_scrape_out() {
        let limits = Limits {
            max_connections: 8,
            ..patient()
        };
        let server = Running::start(limits, BODY.to_owned());
        let idle: Vec<TcpStream> = (0..3 * limits.max_connections)
            .map(|_| server.connect())
            .collect();
        wait_until("the server to accept every connection", || {
            server.stats.accepted.load(Relaxed) == idle.len() as u64
        });
        // A real scrape is answered at once, without waiting for any
        // timeout (there is none within the test's time).
        let (status, _, body) = server.get("GET", "/metrics");
        assert_eq!((status, body.as_str()), (200, BODY));
        // Room was made by closing the idle connections that waited longest:
        // all over the limit, plus one for the scrape.
        let evicted = idle.len() - limits.max_connections + 1;
        assert_eq!(server.stats.evicted.load(Relaxed), evicted as u64);
        assert_eq!(server.stats.over_limit.load(Relaxed), 0);
        for (i, mut s) in idle.into_iter().enumerate() {
            if i < evicted {
                let mut b = [0u8; 1];
                // Closed: end of stream, or reset (it had sent nothing).
                assert!(!matches!(s.read(&mut b), Ok(n) if n > 0));
            }
        }
        assert!(server.stats.open.load(Relaxed) <= limits.max_connections as u64);
    }

    #[test]
    fn a_newcomer_gets_503_when_every_connection_is_being_answered() {
        let limits = Limits {
            max_connections: 2,
            ..patient()
        };
        // An answer far larger than the socket buffers, to clients that do
        // not read it: both stay "being answered".
        let server = Running::start(limits, "x".repeat(16 << 20));
        let mut busy: Vec<TcpStream> = (0..2).map(|_| server.connect()).collect();
        for s in &mut busy {
            s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        }
        wait_until("both requests to be rendered", || {
            server.scrapes.load(Relaxed) == 2
        });
        let (status, head, body) = read_answer(&mut server.connect());
        assert_eq!(status, 503, "{head}");
        assert!(head.contains("Retry-After: 1"), "{head}");
        assert_eq!(body, "too many connections; try again\n");
        assert_eq!(server.stats.over_limit.load(Relaxed), 1);
        assert_eq!(server.stats.evicted.load(Relaxed), 0);
        // Once they go away there is room again.
        drop(busy);
        wait_until("the server to see them gone", || {
            server.stats.open.load(Relaxed) == 0
        });
        let (status, _, _) = server.get("GET", "/");
        assert_eq!(status, 200);
    }

    #[test]
    fn an_oversized_request_head_gets_431() {
        let server = Running::start(patient(), BODY.to_owned());
        let long = format!(
            "GET /metrics HTTP/1.1\r\nX-Filler: {}\r\n\r\n",
            "a".repeat(LIMITS.max_head)
        );
        let (status, _, _) = server.http(long.as_bytes());
        assert_eq!(status, 431);
        // Even when the blank line never comes.
        let endless = format!("GET /metrics HTTP/1.1\r\nX-Filler: {}", "a".repeat(3 << 20));
        let mut s = server.connect();
        let writer = {
            let mut s = s.try_clone().unwrap();
            // The server stops reading; this write may then fail.
            std::thread::spawn(move || {
                let _ = s.write_all(endless.as_bytes());
            })
        };
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        assert!(
            raw.starts_with(b"HTTP/1.1 431 "),
            "{}",
            String::from_utf8_lossy(&raw[..raw.len().min(100)])
        );
        drop(s);
        writer.join().unwrap();
        assert_eq!(server.stats.head_too_large.load(Relaxed), 2);
        // Just at the limit is fine.
        let prefix = "GET /metrics HTTP/1.1\r\nX-Filler: ";
        let fits = format!(
            "{prefix}{}\r\n\r\n",
            "a".repeat(LIMITS.max_head - prefix.len() - 4)
        );
        assert_eq!(fits.len(), LIMITS.max_head);
        let (status, _, body) = server.http(fits.as_bytes());
        assert_eq!((status, body.as_str()), (200, BODY));
        assert_eq!(server.scrapes.load(Relaxed), 1);
    }

    #[test]
    fn a_silent_or_trickling_client_is_timed_out() {
        let limits = Limits {
            timeout: Duration::from_millis(200),
            ..LIMITS
        };
        let server = Running::start(limits, BODY.to_owned());
        // Half a request, then silence.
        let mut s = server.connect();
        s.write_all(b"GET /metr").unwrap();
        let (status, _, _) = read_answer(&mut s);
        assert_eq!(status, 408);
        assert_eq!(server.stats.timed_out.load(Relaxed), 1);
        // A byte at a time, each far within the timeout: the deadline is
        // for the whole head, so this ends too.
        let mut s = server.connect();
        s.write_all(b"GET /metrics HTTP/1.1\r\nX: ").unwrap();
        for _ in 0..2000 {
            if server.stats.timed_out.load(Relaxed) == 2 || s.write_all(b"a").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        wait_until("the trickling client to time out", || {
            server.stats.timed_out.load(Relaxed) == 2
        });
        assert_eq!(server.scrapes.load(Relaxed), 0);
    }

    #[test]
    fn the_counters_are_exported() {
        let stats = Stats::default();
        stats.accepted.store(7, Relaxed);
        stats.timed_out.store(2, Relaxed);
        stats.open.store(1, Relaxed);
        let text = stats.render();
        for line in [
            "# TYPE lbd_metrics_http_connections_total counter",
            "lbd_metrics_http_connections_total{event=\"accepted\"} 7",
            "lbd_metrics_http_connections_total{event=\"answered\"} 0",
            "# TYPE lbd_metrics_http_rejected_total counter",
            "lbd_metrics_http_rejected_total{reason=\"timeout\"} 2",
            "lbd_metrics_http_rejected_total{reason=\"evicted\"} 0",
            "# TYPE lbd_metrics_http_open_connections gauge",
            "lbd_metrics_http_open_connections 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn bind_errors_name_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let e = bind(&addr, LIMITS).err().expect("address in use");
        assert!(e.to_string().contains(&addr), "{e}");
        assert!(bind("not an address", LIMITS).is_err());
    }

    #[test]
    fn routing() {
        assert_eq!(route("GET", "/metrics"), Route::Metrics);
        assert_eq!(route("GET", "/metrics#x"), Route::Metrics);
        assert_eq!(route("HEAD", "/"), Route::Index);
        assert_eq!(route("GET", "/metrics/"), Route::NotFound);
        assert_eq!(route("PUT", "/nope"), Route::MethodNotAllowed);
        assert_eq!(route("DELETE", "/metrics"), Route::MethodNotAllowed);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }
}
