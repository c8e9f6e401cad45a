//! systemd's notification protocol (`sd_notify(3)`): READY=1 once lbd
//! serves, WATCHDOG=1 while its workers are alive, STOPPING=1 on shutdown.
//!
//! The protocol is one datagram of `KEY=VALUE` lines to the unix socket
//! named by `$NOTIFY_SOCKET` (a path, or an abstract name written with a
//! leading '@'). Without that variable (lbd not started by systemd with
//! `Type=notify`) every call here does nothing, so the daemon behaves the
//! same from a shell, a test or a unit. A failed send is logged once and
//! otherwise ignored: notification is advice to the service manager, never
//! a reason to stop forwarding packets.
//!
//! The watchdog is fed by the control loop, and only while every worker
//! has polled its queue since the previous feed (`Liveness`). A worker
//! that is stuck (a deadlock, a livelock in a driver, a thread stopped by a
//! debugger) stops its poll counters; systemd then sees no WATCHDOG=1
//! within `WatchdogSec` and restarts the service (`Restart=on-failure`),
//! which a control loop that kept feeding on its own behalf would hide.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use tracing::warn;

/// Where notifications go, if anywhere.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// A send failed already (logged once, not per feed).
    failed: bool,
}

/// Why `$NOTIFY_SOCKET` cannot be used.
#[derive(Debug)]
pub enum NotifyError {
    /// Neither an absolute path nor '@' followed by an abstract name.
    BadAddress(String),
    Io(io::Error),
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyError::BadAddress(a) => write!(
                f,
                "NOTIFY_SOCKET={a:?} is neither an absolute path nor an abstract name (@NAME)"
            ),
            NotifyError::Io(e) => write!(f, "notify socket: {e}"),
        }
    }
}

impl Notifier {
    /// No notifications (not started by systemd).
    pub fn none() -> Notifier {
        Notifier {
            target: None,
            failed: false,
        }
    }

    /// From `$NOTIFY_SOCKET`. A value that cannot be used is logged and
    /// treated as absent: lbd still runs (systemd will then time out the
    /// start and say so in the journal).
    pub fn from_env() -> Notifier {
        match std::env::var_os("NOTIFY_SOCKET") {
            None => Notifier::none(),
            Some(v) => match Notifier::to(&v.to_string_lossy()) {
                Ok(n) => n,
                Err(e) => {
                    warn!("{e}; not notifying systemd");
                    Notifier::none()
                }
            },
        }
    }

    /// Notifications to the socket `addr` (as `$NOTIFY_SOCKET` writes it).
    pub fn to(addr: &str) -> Result<Notifier, NotifyError> {
        let sa = if let Some(name) = addr.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt as _;
            SocketAddr::from_abstract_name(name.as_bytes()).map_err(NotifyError::Io)?
        } else if addr.starts_with('/') {
            SocketAddr::from_pathname(addr).map_err(NotifyError::Io)?
        } else {
            return Err(NotifyError::BadAddress(addr.to_string()));
        };
        let sock = UnixDatagram::unbound().map_err(NotifyError::Io)?;
        Ok(Notifier {
            target: Some((sock, sa)),
            failed: false,
        })
    }

    /// Whether notifications go anywhere.
    pub fn active(&self) -> bool {
        self.target.is_some()
    }

    /// Send `state` (newline-separated `KEY=VALUE` lines).
    pub fn send(&mut self, state: &str) {
        let Some((sock, addr)) = &self.target else {
            return;
        };
        if let Err(e) = sock.send_to_addr(state.as_bytes(), addr) {
            if !self.failed {
                warn!("cannot notify systemd ({state:?}): {e}");
                self.failed = true;
            }
        } else {
            self.failed = false;
        }
    }
}

/// The watchdog interval systemd asks for, from `$WATCHDOG_USEC` (and
/// `$WATCHDOG_PID`, which must be this process when set), as `sd_watchdog_enabled(3)`.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    watchdog_from(&usec)
}

/// `WATCHDOG_USEC`'s value as a duration (None: unset, zero or not a number).
fn watchdog_from(usec: &str) -> Option<Duration> {
    match usec.trim().parse::<u64>() {
        Ok(0) | Err(_) => None,
        Ok(u) => Some(Duration::from_micros(u)),
    }
}

/// Whether every worker made progress between two looks: the decision the
/// watchdog feed rests on, free of clocks and sockets.
#[derive(Debug, Default)]
pub struct Liveness {
    /// Each worker's poll count at the previous look.
    last: Vec<u64>,
}

impl Liveness {
    /// Start from the workers' current poll counts.
    pub fn new(polls: &[u64]) -> Liveness {
        Liveness {
            last: polls.to_vec(),
        }
    }

    /// Record `polls` (each worker's busy + idle polls, in worker order) and
    /// return the workers whose count did not move since the previous look:
    /// empty when all are alive. A worker that was not there before (none
    /// are added at run time) counts as alive.
    pub fn stalled(&mut self, polls: &[u64]) -> Vec<usize> {
        let stuck = polls
            .iter()
            .enumerate()
            .filter(|(i, p)| self.last.get(*i) == Some(p))
            .map(|(i, _)| i)
            .collect();
        self.last = polls.to_vec();
        stuck
    }
}

/// Feeds systemd's watchdog from the control loop: every half interval (as
/// `sd_watchdog_enabled(3)` advises), WATCHDOG=1 if every worker polled
/// since the previous feed time; otherwise nothing, and a warning naming
/// the stuck workers.
pub struct Watchdog {
    notifier: Notifier,
    every: Duration,
    next: Instant,
    live: Liveness,
}

impl Watchdog {
    /// From the environment systemd gives a `WatchdogSec=` service; None
    /// when there is no watchdog or nowhere to send to.
    pub fn from_env(polls: &[u64], now: Instant) -> Option<Watchdog> {
        let interval = watchdog_interval()?;
        let notifier = Notifier::from_env();
        notifier
            .active()
            .then(|| Watchdog::new(notifier, interval, polls, now))
    }

    pub fn new(notifier: Notifier, interval: Duration, polls: &[u64], now: Instant) -> Watchdog {
        let every = interval / 2;
        Watchdog {
            notifier,
            every,
            next: now + every,
            live: Liveness::new(polls),
        }
    }

    /// Called on every control-loop pass with the workers' poll counts.
    pub fn tick(&mut self, now: Instant, polls: &[u64]) {
        if now < self.next {
            return;
        }
        self.next = now + self.every;
        let stuck = self.live.stalled(polls);
        if stuck.is_empty() {
            self.notifier.send("WATCHDOG=1");
        } else {
            warn!(
                "worker(s) {stuck:?} have not polled for {:?}; the systemd watchdog is not fed \
                 (systemd restarts lbd when it stays unfed for WatchdogSec)",
                self.every
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_needs_every_worker_to_advance() {
        let mut l = Liveness::new(&[10, 20, 30]);
        assert!(l.stalled(&[11, 25, 31]).is_empty());
        // Worker 1 stuck at 25.
        assert_eq!(l.stalled(&[12, 25, 40]), vec![1]);
        // All stuck.
        assert_eq!(l.stalled(&[12, 25, 40]), vec![0, 1, 2]);
        // Recovered.
        assert!(l.stalled(&[13, 26, 41]).is_empty());
    }

    #[test]
    fn watchdog_usec_parsing() {
        assert_eq!(watchdog_from("3000000"), Some(Duration::from_secs(3)));
        assert_eq!(watchdog_from("0"), None);
        assert_eq!(watchdog_from("soon"), None);
    }

    #[test]
    fn bad_notify_address_is_refused() {
        assert!(matches!(
            Notifier::to("relative/path"),
            Err(NotifyError::BadAddress(_))
        ));
    }

    fn recv(sock: &UnixDatagram) -> String {
        // A bound on the wait, not a timing condition: the datagram was
        // sent before recv is called.
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("lbd-notify-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        let mut n = Notifier::to(path.to_str().unwrap()).unwrap();
        n.send("READY=1");
        assert_eq!(recv(&sock), "READY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("lbd-notify-unit-{}", std::process::id());
        let sock =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let mut n = Notifier::to(&format!("@{name}")).unwrap();
        n.send("STOPPING=1");
        assert_eq!(recv(&sock), "STOPPING=1");
    }

    #[test]
    fn watchdog_feeds_only_while_workers_poll() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("lbd-watchdog-unit-{}", std::process::id());
        let sock =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        sock.set_nonblocking(true).unwrap();
        let n = Notifier::to(&format!("@{name}")).unwrap();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        // WatchdogSec=2: a look every second (of the caller's clock).
        let mut w = Watchdog::new(n, 2 * s, &[0, 0], t0);
        let mut buf = [0u8; 64];
        let mut feeds = |w: &mut Watchdog, t: Instant, polls: &[u64]| {
            w.tick(t, polls);
            let mut n = 0;
            while let Ok(len) = sock.recv(&mut buf) {
                assert_eq!(&buf[..len], b"WATCHDOG=1");
                n += 1;
            }
            n
        };
        // Not due yet.
        assert_eq!(feeds(&mut w, t0, &[5, 5]), 0);
        assert_eq!(feeds(&mut w, t0 + s, &[5, 5]), 1);
        // Worker 1 stuck: no feed, however often the loop comes by.
        assert_eq!(feeds(&mut w, t0 + 2 * s, &[9, 5]), 0);
        assert_eq!(feeds(&mut w, t0 + 3 * s, &[12, 5]), 0);
        // Both moving again.
        assert_eq!(feeds(&mut w, t0 + 4 * s, &[13, 6]), 1);
    }
}
