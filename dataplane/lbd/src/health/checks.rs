//! The checkers: one blocking check each, bounded by its timeout. They run
//! on the health threads' pool, never on the workers. They use the host's
//! sockets, so they reach real servers through a port's kernel interface
//! (`ports[].kernel`) or any other route the host has.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lbcore::config::CheckKind;

/// Most of an HTTP answer read (status line, headers and the start of the
/// body are what the check looks at).
const HTTP_READ_LIMIT: usize = 64 * 1024;

/// What a check is run against.
#[derive(Debug, Clone)]
pub struct Probe {
    pub kind: CheckKind,
    pub addr: IpAddr,
    /// The port checked (the check's own port, or the real server's).
    pub port: u16,
    pub timeout: Duration,
    /// For `Exec`: the service and real server, in the environment.
    pub env: Vec<(String, String)>,
}

/// Run one check: Ok with a short description of the success, or Err with
/// the reason it failed.
pub fn run(p: &Probe) -> Result<String, String> {
    let deadline = Instant::now() + p.timeout;
    match &p.kind {
        CheckKind::Tcp => tcp(p).map(|_| "TCP connect ok".to_string()),
        CheckKind::Http {
            path,
            status,
            expect,
            host,
        } => http(
            p,
            deadline,
            path,
            *status,
            expect.as_deref(),
            host.as_deref(),
        ),
        CheckKind::Udp { send, expect } => udp(p, send, expect.as_deref()),
        CheckKind::Exec { command, args } => exec(p, deadline, command, args),
    }
}

fn tcp(p: &Probe) -> Result<TcpStream, String> {
    let sa = SocketAddr::from((p.addr, p.port));
    TcpStream::connect_timeout(&sa, p.timeout).map_err(|e| format!("connect: {}", io_reason(&e)))
}

/// A short reason for an I/O error ("refused", "timed out", ...).
fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "refused".into(),
        TimedOut | WouldBlock => "timed out".into(),
        ConnectionReset => "reset".into(),
        _ => e.to_string(),
    }
}

/// Time left before `deadline` (at least 1 ms: a zero socket timeout
/// means "none").
fn left(deadline: Instant) -> Result<Duration, String> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err("timed out".into())
    } else {
        Ok(d.max(Duration::from_millis(1)))
    }
}

fn http(
    p: &Probe,
    deadline: Instant,
    path: &str,
    want_status: u16,
    expect: Option<&str>,
    host: Option<&str>,
) -> Result<String, String> {
    let mut s = tcp(p)?;
    s.set_write_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    // An IPv6 literal in Host is bracketed (RFC 7230's IP-literal).
    let host = host.map_or_else(
        || lbcore::addr::Bracketed(p.addr).to_string(),
        str::to_string,
    );
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: lbd-health-check\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send: {}", io_reason(&e)))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        s.set_read_timeout(Some(left(deadline)?))
            .map_err(|e| e.to_string())?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() >= HTTP_READ_LIMIT {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("receive: {}", io_reason(&e))),
        }
    }
    judge_http(&buf, want_status, expect)
}

/// Judge an HTTP answer: its status, and the expected string in its body.
pub fn judge_http(answer: &[u8], want_status: u16, expect: Option<&str>) -> Result<String, String> {
    let text = String::from_utf8_lossy(answer);
    let status_line = text.lines().next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let status: Option<u16> = parts.next().and_then(|c| c.parse().ok());
    let Some(status) = status.filter(|_| version.starts_with("HTTP/")) else {
        return Err(if answer.is_empty() {
            "HTTP: empty answer".into()
        } else {
            "HTTP: not an HTTP answer".into()
        });
    };
    if status != want_status {
        return Err(format!("HTTP {status}, expected {want_status}"));
    }
    if let Some(want) = expect {
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        if !body.contains(want) {
            return Err(format!("HTTP {status}, body lacks \"{want}\""));
        }
    }
    Ok(format!("HTTP {status}"))
}

fn udp(p: &Probe, send: &str, expect: Option<&str>) -> Result<String, String> {
    let any: IpAddr = match p.addr {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let sock = UdpSocket::bind((any, 0)).map_err(|e| e.to_string())?;
    sock.connect((p.addr, p.port))
        .map_err(|e| format!("connect: {}", io_reason(&e)))?;
    sock.set_read_timeout(Some(p.timeout))
        .map_err(|e| e.to_string())?;
    sock.send(send.as_bytes())
        .map_err(|e| format!("send: {}", io_reason(&e)))?;
    let mut buf = [0u8; 2048];
    // An ICMP port unreachable shows up as "refused" here.
    let n = sock
        .recv(&mut buf)
        .map_err(|e| format!("receive: {}", io_reason(&e)))?;
    let got = String::from_utf8_lossy(&buf[..n]);
    match expect {
        Some(want) if !got.contains(want) => Err(format!("UDP answer lacks \"{want}\"")),
        _ => Ok(format!("UDP answer of {n} bytes")),
    }
}

fn exec(p: &Probe, deadline: Instant, command: &str, args: &[String]) -> Result<String, String> {
    let mut child = Command::new(command)
        .args(args)
        .envs(p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {command}: {e}"))?;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok("command exited 0".into()),
            Ok(Some(st)) => return Err(format!("command failed ({st})")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("command timed out (killed)".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for {command}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn probe(kind: CheckKind, port: u16) -> Probe {
        Probe {
            kind,
            addr: Ipv4Addr::LOCALHOST.into(),
            port,
            timeout: Duration::from_secs(5),
            env: vec![("LBD_RS_ADDRESS".into(), "127.0.0.1".into())],
        }
    }

    #[test]
    fn http_answers_are_judged() {
        let ok = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nall good\n";
        assert_eq!(judge_http(ok, 200, None), Ok("HTTP 200".into()));
        assert_eq!(judge_http(ok, 200, Some("good")), Ok("HTTP 200".into()));
        assert_eq!(
            judge_http(ok, 200, Some("bad")),
            Err("HTTP 200, body lacks \"bad\"".into())
        );
        // The expected string must be in the body, not the headers.
        assert!(judge_http(ok, 200, Some("Server")).is_err());
        assert_eq!(
            judge_http(b"HTTP/1.1 503 Busy\r\n\r\n", 200, None),
            Err("HTTP 503, expected 200".into())
        );
        assert_eq!(judge_http(b"", 200, None), Err("HTTP: empty answer".into()));
        assert!(judge_http(b"SSH-2.0-OpenSSH\r\n", 200, None).is_err());
        assert!(judge_http(b"HTTP/1.0 abc\r\n", 200, None).is_err());
    }

    #[test]
    fn tcp_and_http_against_a_local_server() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            // One plain connect (TCP check), one HTTP exchange.
            for i in 0..2 {
                let (mut c, _) = l.accept().unwrap();
                if i == 1 {
                    let mut req = [0u8; 1024];
                    let n = c.read(&mut req).unwrap();
                    assert!(String::from_utf8_lossy(&req[..n]).starts_with("GET /health HTTP/1.0"));
                    c.write_all(b"HTTP/1.0 200 OK\r\n\r\nI am rs1\n").unwrap();
                }
            }
        });
        assert_eq!(
            run(&probe(CheckKind::Tcp, port)),
            Ok("TCP connect ok".into())
        );
        let http = CheckKind::Http {
            path: "/health".into(),
            status: 200,
            expect: Some("rs1".into()),
            host: None,
        };
        assert_eq!(run(&probe(http, port)), Ok("HTTP 200".into()));
        server.join().unwrap();
        // Nothing listens there any more.
        let e = run(&probe(CheckKind::Tcp, port)).unwrap_err();
        assert_eq!(e, "connect: refused");
    }

    #[test]
    fn udp_check() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        let echo = std::thread::spawn(move || {
            let mut b = [0u8; 64];
            let (n, from) = s.recv_from(&mut b).unwrap();
            s.send_to(&b[..n], from).unwrap();
        });
        let kind = |expect: &str| CheckKind::Udp {
            send: "ping".into(),
            expect: Some(expect.into()),
        };
        assert!(run(&probe(kind("ping"), port)).is_ok());
        echo.join().unwrap();
        // The socket is closed: the kernel answers "port unreachable".
        assert_eq!(
            run(&probe(kind("ping"), port)).unwrap_err(),
            "receive: refused"
        );
    }

    #[test]
    fn exec_check() {
        let sh = |script: &str| CheckKind::Exec {
            command: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
        };
        assert!(run(&probe(sh("test \"$LBD_RS_ADDRESS\" = 127.0.0.1"), 0)).is_ok());
        assert!(run(&probe(sh("exit 3"), 0))
            .unwrap_err()
            .starts_with("command failed"));
        let mut p = probe(sh("sleep 5"), 0);
        p.timeout = Duration::from_millis(100);
        assert_eq!(run(&p).unwrap_err(), "command timed out (killed)");
        assert!(run(&probe(
            CheckKind::Exec {
                command: "/nonexistent/check".into(),
                args: vec![]
            },
            0
        ))
        .unwrap_err()
        .starts_with("cannot run"));
    }
}
