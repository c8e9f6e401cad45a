//! A fake lbd for running the built lbctl without root: a unix socket in a
//! temporary directory that answers one connection's requests with canned
//! frames and returns the requests it got.
#![allow(dead_code)] // each test binary uses a part

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lb_api::protocol::{
    decode, read_frame, write_frame, ApiError, ErrorKind, FrameError, Request, RequestFrame,
    Response, ResponseFrame, PROTOCOL_VERSION,
};

/// A temporary directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "lbctl-lvs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the fake lbd sends for each request, in turn.
// Test scaffolding: a few answers per test, size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    Frame(ResponseFrame),
    /// Raw JSON body (for answers the real types cannot express).
    Raw(&'static str),
    /// Close the connection without answering.
    Hangup,
}

pub fn ok(r: Response) -> Answer {
    Answer::Frame(ResponseFrame {
        version: PROTOCOL_VERSION,
        response: Ok(r),
    })
}

pub fn err(kind: ErrorKind, msg: &str) -> Answer {
    Answer::Frame(ResponseFrame {
        version: PROTOCOL_VERSION,
        response: Err(ApiError::new(kind, msg)),
    })
}

pub struct Fake {
    pub dir: TempDir,
    pub socket: PathBuf,
    thread: JoinHandle<Vec<Request>>,
}

impl Fake {
    /// Answers one connection's requests with `answers`, in order (then
    /// hangs up). Gives up after 20 s without a client.
    pub fn start(answers: Vec<Answer>) -> Fake {
        let dir = TempDir::new();
        let socket = dir.0.join("lbd.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("no client came: {e}"),
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut got = Vec::new();
            let mut answers = answers.into_iter();
            loop {
                let body = match read_frame(&mut stream) {
                    Ok(b) => b,
                    Err(FrameError::Closed) => break,
                    Err(e) => panic!("fake lbd: {e}"),
                };
                let f: RequestFrame = decode(&body).expect("lbctl sent a valid frame");
                assert_eq!(f.version, PROTOCOL_VERSION);
                got.push(f.request);
                match answers.next() {
                    Some(Answer::Frame(r)) => write_frame(&mut stream, &r).unwrap(),
                    Some(Answer::Raw(json)) => {
                        let mut b = (json.len() as u32).to_be_bytes().to_vec();
                        b.extend_from_slice(json.as_bytes());
                        stream.write_all(&b).unwrap();
                    }
                    Some(Answer::Hangup) | None => break,
                }
            }
            got
        });
        Fake {
            dir,
            socket,
            thread,
        }
    }

    /// The requests the fake received (after lbctl exited).
    pub fn requests(self) -> Vec<Request> {
        self.thread.join().expect("fake lbd failed")
    }

    /// Runs lbctl (no input) against this server; returns its output and
    /// the requests the server received.
    pub fn run(self, args: &[&str]) -> (Output, Vec<Request>) {
        let out = lbctl(&self.socket, args, "");
        (out, self.requests())
    }
}

/// Runs `program` with `args`, `stdin` as its input, `env` added.
pub fn run_with(program: &Path, args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(program);
    c.args(args)
        .env_remove("LBCTL_SOCKET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn lbctl_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lbctl"))
}

/// lbctl with `--socket SOCKET` and `args`.
pub fn lbctl(socket: &Path, args: &[&str], stdin: &str) -> Output {
    let mut all = vec!["--socket", socket.to_str().unwrap()];
    all.extend_from_slice(args);
    run_with(&lbctl_path(), &all, stdin, &[])
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("lbctl exited normally")
}

/// The repository's ctl/tests/data directory.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// A DR real server at `ip`:80, weight 1, no connections, as lbd lists it.
pub fn real_dr(ip: &str) -> lb_api::protocol::RealInfo {
    lb_api::protocol::RealInfo {
        address: ip.parse().unwrap(),
        port: 80,
        forward: lb_api::config::Forward::Dr,
        weight: 1,
        active: 0,
        inactive: 0,
        draining: false,
        counters: Default::default(),
        rates: Default::default(),
        health: None,
        fallback: false,
    }
}
