//! The client side of lbd's control socket, and lbctl's errors with the exit
//! status each one gives.

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use lb_api::protocol::{
    decode, read_frame, write_frame, ApiError, ErrorKind, FrameError, Request, RequestFrame,
    Response, ResponseFrame, PROTOCOL_VERSION,
};

/// Exit statuses (also listed in `lbctl --help`). Some come only from
/// [`ErrorKind::exit_code`]; they are named here to document them.
#[allow(dead_code)]
pub mod exit {
    pub const OK: u8 = 0;
    /// Internal error in lbd, persisting failed, or a local file problem.
    pub const INTERNAL: u8 = 1;
    /// Invalid configuration or change.
    pub const INVALID: u8 = 2;
    /// Protocol error, bad request, version mismatch, no answer in time.
    pub const PROTOCOL: u8 = 3;
    pub const PERMISSION: u8 = 4;
    pub const NOT_FOUND: u8 = 5;
    pub const EXISTS: u8 = 6;
    /// lbd is not reachable at the socket path.
    pub const CONNECT: u8 = 7;
    /// `director drain`: the traffic had not moved when the wait ended
    /// (the director stays drained).
    pub const NOT_MOVED: u8 = 8;
    /// Bad command line (sysexits' EX_USAGE).
    pub const USAGE: u8 = 64;
}

/// Everything that can go wrong in lbctl after the command line parsed.
#[derive(Debug)]
pub enum CtlError {
    /// The socket could not be opened.
    Connect { path: PathBuf, source: io::Error },
    /// Connecting took longer than the timeout.
    ConnectTimeout { path: PathBuf, timeout: Duration },
    /// Sending or receiving failed after connecting.
    Transport { what: String, timeout: Duration },
    /// lbd speaks another protocol version.
    Version { ours: u32, theirs: u32 },
    /// lbd answered something that does not fit the request.
    Unexpected { request: &'static str, got: String },
    /// lbd refused the request.
    Api(ApiError),
    /// A local file could not be read.
    File { path: PathBuf, source: io::Error },
    /// A command line refused after clap parsed it (ipvsadm's syntax,
    /// something lbd does not support); exit 64 like clap's refusals.
    Usage(String),
    /// A file to import, or a configuration lbctl was to change, is not
    /// valid (nothing was changed); exit 2.
    Input(String),
}

impl CtlError {
    /// The exit status scripts see.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Connect { source, .. }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                exit::PERMISSION
            }
            CtlError::Connect { .. } | CtlError::ConnectTimeout { .. } => exit::CONNECT,
            CtlError::Transport { .. } | CtlError::Version { .. } | CtlError::Unexpected { .. } => {
                exit::PROTOCOL
            }
            CtlError::Api(e) => e.kind.exit_code(),
            CtlError::File { .. } => exit::INTERNAL,
            CtlError::Usage(_) => exit::USAGE,
            CtlError::Input(_) => exit::INVALID,
        }
    }

    /// What to do about it, printed after the message.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CtlError::Connect { source, .. }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                Some("run lbctl as root or as a member of lbd's control group")
            }
            CtlError::Connect { .. } | CtlError::ConnectTimeout { .. } => {
                Some("is lbd running? is the socket path right (--socket)?")
            }
            CtlError::Transport { .. } => {
                Some("check lbd's log; it may have stopped or be overloaded (see --timeout)")
            }
            CtlError::Version { .. } => Some("use the lbctl that comes with the running lbd"),
            CtlError::Unexpected { .. } => Some("lbctl and lbd may not match; check versions"),
            CtlError::File { .. } | CtlError::Usage(_) | CtlError::Input(_) => None,
            CtlError::Api(e) => match e.kind {
                ErrorKind::PermissionDenied => Some(
                    "changes need root or membership of lbd's control group; reading needs neither",
                ),
                ErrorKind::NotFound => Some("see `lbctl list` for what exists"),
                ErrorKind::AlreadyExists => Some("use `edit` to change it, or `del` it first"),
                ErrorKind::Invalid => {
                    Some("nothing was changed; `lbctl validate FILE` checks files offline")
                }
                ErrorKind::VersionMismatch => Some("use the lbctl that comes with the running lbd"),
                ErrorKind::PersistFailed => Some(
                    "the change was rolled back; check that lbd can write its configuration file",
                ),
                ErrorKind::TooLarge => Some("the request is over lbd's frame limit"),
                ErrorKind::BadRequest | ErrorKind::Internal => Some("check lbd's log"),
            },
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Connect { path, source } => {
                let why = match source.kind() {
                    io::ErrorKind::NotFound => "no such socket".to_string(),
                    io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                    _ => source.to_string(),
                };
                write!(f, "cannot connect to lbd at {}: {why}", path.display())
            }
            CtlError::ConnectTimeout { path, timeout } => write!(
                f,
                "cannot connect to lbd at {}: no answer within {}",
                path.display(),
                secs(*timeout)
            ),
            CtlError::Transport { what, .. } => write!(f, "{what}"),
            CtlError::Version { ours, theirs } => write!(
                f,
                "protocol version mismatch: lbd speaks version {theirs}, lbctl speaks {ours}"
            ),
            CtlError::Unexpected { request, got } => {
                write!(f, "unexpected answer to {request}: {got}")
            }
            CtlError::Api(e) => match e.kind {
                ErrorKind::PermissionDenied if e.message.is_empty() => {
                    write!(f, "permission denied")
                }
                _ => write!(f, "{}", e.message),
            },
            CtlError::File { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            CtlError::Usage(m) | CtlError::Input(m) => write!(f, "{m}"),
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// One connection to lbd. Several requests may be sent in turn.
pub struct Client {
    stream: UnixStream,
    timeout: Duration,
}

impl Client {
    /// Connects to lbd's socket at `path`; `timeout` bounds the connect and
    /// every later read and write.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, CtlError> {
        // A unix connect blocks only when lbd's backlog is full; do it on a
        // helper thread so even that is bounded by the timeout.
        let (tx, rx) = mpsc::channel();
        let p = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(UnixStream::connect(&p));
        });
        let stream = match rx.recv_timeout(timeout) {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(CtlError::Connect {
                    path: path.to_path_buf(),
                    source,
                })
            }
            Err(_) => {
                return Err(CtlError::ConnectTimeout {
                    path: path.to_path_buf(),
                    timeout,
                })
            }
        };
        let set = stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)));
        if let Err(source) = set {
            return Err(CtlError::Connect {
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(Client { stream, timeout })
    }

    /// Sends `request` and waits for its answer. lbd's refusals come back as
    /// [`CtlError::Api`]; an answer in another protocol version as
    /// [`CtlError::Version`].
    pub fn call(&mut self, request: Request) -> Result<Response, CtlError> {
        let frame = RequestFrame {
            version: PROTOCOL_VERSION,
            request,
        };
        if let Err(e) = write_frame(&mut self.stream, &frame) {
            // lbd may have answered and closed before reading the request
            // (it does so when too many clients are busy): the answer it
            // left says why, which beats "closed the connection".
            if let FrameError::Io(io) = &e {
                if matches!(
                    io.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) {
                    if let Ok(body) = read_frame(&mut self.stream) {
                        return decode_response(&body, self.timeout);
                    }
                }
            }
            return Err(self.transport("sending", e));
        }
        let body = read_frame(&mut self.stream).map_err(|e| self.transport("reading", e))?;
        decode_response(&body, self.timeout)
    }

    fn transport(&self, doing: &str, e: FrameError) -> CtlError {
        let what = match e {
            FrameError::Closed | FrameError::Truncated => {
                format!("lbd closed the connection while lbctl was {doing} (no answer)")
            }
            FrameError::Io(ref io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                format!("lbd did not answer within {}", secs(self.timeout))
            }
            FrameError::Io(ref io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                format!("lbd closed the connection while lbctl was {doing}")
            }
            other => format!("protocol error while {doing}: {other}"),
        };
        CtlError::Transport {
            what,
            timeout: self.timeout,
        }
    }
}

/// Checks the version first (a peer of another version may not even share
/// the frame's shape), then decodes the answer.
pub fn decode_response(body: &[u8], timeout: Duration) -> Result<Response, CtlError> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let v: VersionOnly = decode(body).map_err(|e| CtlError::Transport {
        what: format!("lbd sent an answer lbctl cannot read: {e}"),
        timeout,
    })?;
    if v.version != PROTOCOL_VERSION {
        return Err(CtlError::Version {
            ours: PROTOCOL_VERSION,
            theirs: v.version,
        });
    }
    let frame: ResponseFrame = decode(body).map_err(|e| CtlError::Transport {
        what: format!("lbd sent an answer lbctl cannot read: {e}"),
        timeout,
    })?;
    frame.response.map_err(CtlError::Api)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::protocol::encode;

    fn body(frame: &ResponseFrame) -> Vec<u8> {
        encode(frame).unwrap()[4..].to_vec()
    }

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn decodes_answers_and_errors() {
        let ok = ResponseFrame {
            version: PROTOCOL_VERSION,
            response: Ok(Response::Applied { generation: 7 }),
        };
        assert_eq!(
            decode_response(&body(&ok), T).unwrap(),
            Response::Applied { generation: 7 }
        );
        let err = ResponseFrame {
            version: PROTOCOL_VERSION,
            response: Err(ApiError::new(ErrorKind::NotFound, "no service")),
        };
        let e = decode_response(&body(&err), T).unwrap_err();
        assert_eq!(e.exit_code(), exit::NOT_FOUND);
        assert_eq!(e.to_string(), "no service");
    }

    #[test]
    fn version_is_checked_before_the_shape() {
        let e = decode_response(br#"{"version":9,"response":{"Something":"new"}}"#, T).unwrap_err();
        assert!(matches!(e, CtlError::Version { theirs: 9, .. }));
        assert_eq!(e.exit_code(), exit::PROTOCOL);
        let e = decode_response(b"not json", T).unwrap_err();
        assert_eq!(e.exit_code(), exit::PROTOCOL);
    }

    #[test]
    fn exit_codes_follow_error_kinds() {
        for (kind, code) in [
            (ErrorKind::Invalid, 2),
            (ErrorKind::BadRequest, 3),
            (ErrorKind::VersionMismatch, 3),
            (ErrorKind::PermissionDenied, 4),
            (ErrorKind::NotFound, 5),
            (ErrorKind::AlreadyExists, 6),
            (ErrorKind::PersistFailed, 1),
            (ErrorKind::Internal, 1),
        ] {
            let e = CtlError::Api(ApiError::new(kind, "x"));
            assert_eq!(e.exit_code(), code, "{kind:?}");
            assert!(e.hint().is_some());
        }
        let missing = CtlError::Connect {
            path: "/nonexistent".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(missing.exit_code(), exit::CONNECT);
        assert!(missing.hint().unwrap().contains("--socket"));
        let denied = CtlError::Connect {
            path: "/x".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(denied.exit_code(), exit::PERMISSION);
    }

    #[test]
    fn an_answer_left_before_lbd_closed_is_reported() {
        // lbd refuses a client when all others are busy: it answers at once
        // and closes without reading the request.
        let dir = std::env::temp_dir().join(format!("lbctl-refused-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lbd.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let lbd = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            write_frame(
                &mut s,
                &ResponseFrame {
                    version: PROTOCOL_VERSION,
                    response: Err(ApiError::new(
                        ErrorKind::Internal,
                        "too many clients (16 connected, all busy with requests); try again in a moment",
                    )),
                },
            )
            .unwrap();
        });
        let mut client = Client::connect(&path, Duration::from_secs(30)).unwrap();
        // The connection is closed on lbd's side before lbctl sends.
        lbd.join().unwrap();
        let e = client.call(Request::Status).unwrap_err();
        assert!(matches!(e, CtlError::Api(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "too many clients (16 connected, all busy with requests); try again in a moment"
        );
        assert_eq!(e.exit_code(), exit::INTERNAL);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn connecting_to_nothing_fails_with_7() {
        let e = match Client::connect(Path::new("/nonexistent/lbd.sock"), T) {
            Err(e) => e,
            Ok(_) => panic!("connected to nothing"),
        };
        assert_eq!(e.exit_code(), exit::CONNECT);
        assert!(e.to_string().contains("/nonexistent/lbd.sock"));
    }
}
