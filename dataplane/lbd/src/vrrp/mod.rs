//! Built-in VRRPv3 (RFC 5798) for the services' VIPs: what keepalived does
//! next to IPVS, in lbd.
//!
//! The speaker runs on its own thread. It sends and receives
//! advertisements with a raw IP socket (protocol 112) bound to the port's
//! kernel interface (`ports[].kernel`): the workers pass frames for the
//! VRRP group's MAC to that interface, and what the kernel sends there goes
//! out of the port. The state machine is in [`machine`]. As master the
//! director answers ARP for the VIPs and forwards their traffic (after a
//! burst of gratuitous ARPs); as backup or in fault it does neither
//! (`Dataplane::standby`, read by every worker once per loop). Notify commands
//! run on every change of state.

pub mod machine;

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbcore::api::VrrpInfo;
use lbcore::config::VrrpConfig;
use lbcore::wire::arp;
use lbcore::wire::ipv4::Ipv4Packet;
use lbcore::wire::vrrp::{self, Advert};
use lbcore::wire::MacAddr;
use tracing::{debug, info, warn};

use self::machine::{Action, Machine, State};
use crate::dataplane::CtlFrame;
use crate::shared::Shared;

/// How often the link is looked at (a down link is a fault).
const LINK_POLL: Duration = Duration::from_millis(500);
/// The longest the speaker sleeps (to notice lbd stopping).
const MAX_WAIT: Duration = Duration::from_millis(100);
/// Gratuitous ARP rounds on becoming master: now and this much later.
const GARP_REPEAT_AFTER: Duration = Duration::from_secs(1);
/// Gratuitous ARPs that may wait for room in the control queues (a round
/// for 100 addresses at the largest `garp_count`).
const MAX_PENDING_GARPS: usize = 100 * 100;

/// A raw VRRP socket on the kernel interface `iface` (address `my_ip`).
fn open_socket(iface: &str, my_ip: Ipv4Addr) -> std::io::Result<OwnedFd> {
    let err = std::io::Error::last_os_error;
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            vrrp::PROTO_VRRP as i32,
        )
    };
    if fd < 0 {
        return Err(err());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = std::ffi::CString::new(iface).map_err(std::io::Error::other)?;
    // SAFETY: if_nametoindex reads the NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(err());
    }
    let set = |level: i32, opt: i32, val: *const libc::c_void, len: usize| -> std::io::Result<()> {
        // SAFETY: val points to `len` readable bytes for the call.
        let r = unsafe { libc::setsockopt(fd, level, opt, val, len as libc::socklen_t) };
        if r < 0 {
            Err(err())
        } else {
            Ok(())
        }
    };
    let bytes = iface.as_bytes();
    set(
        libc::SOL_SOCKET,
        libc::SO_BINDTODEVICE,
        bytes.as_ptr().cast(),
        bytes.len(),
    )?;
    let mreq = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from(vrrp::GROUP).to_be(),
        },
        imr_address: libc::in_addr {
            s_addr: u32::from(my_ip).to_be(),
        },
        imr_ifindex: ifindex as i32,
    };
    let p = (&mreq as *const libc::ip_mreqn).cast();
    let n = std::mem::size_of::<libc::ip_mreqn>();
    set(libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, p, n)?;
    set(libc::IPPROTO_IP, libc::IP_MULTICAST_IF, p, n)?;
    let ttl: libc::c_int = 255;
    let pi = (&ttl as *const libc::c_int).cast();
    let ni = std::mem::size_of::<libc::c_int>();
    // RFC 5798: TTL 255 on every advertisement, multicast or unicast.
    set(libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, pi, ni)?;
    set(libc::IPPROTO_IP, libc::IP_TTL, pi, ni)?;
    let off: libc::c_int = 0;
    set(
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_LOOP,
        (&off as *const libc::c_int).cast(),
        ni,
    )?;
    Ok(sock)
}

fn send_to(sock: &OwnedFd, msg: &[u8], dst: Ipv4Addr) -> std::io::Result<()> {
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(dst).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: msg and sa are valid for the call.
    let r = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Wait up to `wait` for the socket to be readable.
fn readable(sock: &OwnedFd, wait: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// One received datagram (IP header included), without blocking.
fn recv(sock: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).ok()
}

/// The speaker's view of the world, and what it does with the machine's
/// actions.
struct Speaker {
    shared: Arc<Shared>,
    cfg: VrrpConfig,
    port: usize,
    my_ip: Ipv4Addr,
    mac: MacAddr,
    sock: OwnedFd,
    transitions: u64,
    /// Pending gratuitous ARP rounds.
    garp_at: Vec<Instant>,
    next_refresh: Option<Instant>,
    /// Gratuitous ARPs waiting for room in a control queue (port, frame).
    garp_pending: std::collections::VecDeque<(usize, CtlFrame)>,
}

impl Speaker {
    /// The addresses the instance covers: every service's VIP and the
    /// extra addresses, in order, each with the port it is announced on.
    fn addresses(&self) -> Vec<(Ipv4Addr, usize)> {
        let snap = self.shared.dataplane.current();
        let mut v: Vec<(Ipv4Addr, usize)> = snap
            .vip_addresses()
            .map(|a| (a, self.port))
            .chain(
                snap.vrrp_addresses
                    .iter()
                    .map(|&(a, p)| (Ipv4Addr::from(a), p as usize)),
            )
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The addresses, as advertised.
    fn vips(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self.addresses().into_iter().map(|(a, _)| a).collect();
        v.dedup();
        v
    }

    fn advertise(&self, priority: u8) {
        let adv = Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            interval_cs: (self.cfg.advert_interval_ms / 10) as u16,
            addrs: self.vips(),
            auth: self.cfg.auth_pass.as_deref().map(vrrp::auth_data),
        };
        let peers: Vec<Ipv4Addr> = if self.cfg.unicast_peers.is_empty() {
            vec![vrrp::GROUP]
        } else {
            self.cfg.unicast_peers.clone()
        };
        for dst in peers {
            let msg = vrrp::build(&adv, self.my_ip, dst);
            if let Err(e) = send_to(&self.sock, &msg, dst) {
                warn!("vrrp: cannot send an advertisement to {dst}: {e}");
            }
        }
    }

    /// Queue `garp_count` gratuitous ARPs per address (for the ports'
    /// queue-0 workers to send). What does not fit in a port's control
    /// queue now waits in `garp_pending` and goes as room frees up.
    fn garp(&mut self) {
        let snap = self.shared.dataplane.current();
        for (vip, port) in self.addresses() {
            let mac = snap.ports.get(port).map_or(self.mac, |p| p.mac);
            for _ in 0..self.cfg.garp_count {
                let mut f = CtlFrame {
                    len: 0,
                    bytes: [0; crate::dataplane::CTL_FRAME_LEN],
                };
                f.len = arp::build_arp(
                    &mut f.bytes,
                    arp::ARP_REQUEST,
                    mac,
                    MacAddr::BROADCAST,
                    mac,
                    vip,
                    MacAddr::ZERO,
                    vip,
                ) as u16;
                if self.garp_pending.len() < MAX_PENDING_GARPS {
                    self.garp_pending.push_back((port, f));
                } else {
                    warn!("vrrp: too many gratuitous ARPs pending; one for {vip} dropped");
                }
            }
        }
        self.flush_garps();
    }

    /// Hand pending gratuitous ARPs to the control queues, in order, as far
    /// as they have room.
    fn flush_garps(&mut self) {
        while let Some(&(port, f)) = self.garp_pending.front() {
            if self.shared.dataplane.ctl_tx[port].push(f).is_err() {
                break;
            }
            self.garp_pending.pop_front();
        }
    }

    fn apply(&mut self, m: &Machine, actions: Vec<Action>, now: Instant) {
        for a in actions {
            match a {
                Action::Advertise(p) => self.advertise(p),
                Action::Enter(s) => self.enter(m, s, now),
            }
        }
    }

    fn enter(&mut self, m: &Machine, s: State, now: Instant) {
        self.transitions += 1;
        let master = s == State::Master;
        self.shared.dataplane.standby.store(!master, Relaxed);
        if master {
            self.garp();
            self.garp_at = vec![now + GARP_REPEAT_AFTER];
            self.next_refresh = (self.cfg.garp_refresh_s > 0)
                .then(|| now + Duration::from_secs(self.cfg.garp_refresh_s as u64));
        } else {
            // No longer the owner: announce nothing more.
            self.garp_pending.clear();
            self.garp_at.clear();
            self.next_refresh = None;
        }
        info!(
            "vrrp: vrid {} priority {}: {}{}",
            self.cfg.vrid,
            self.cfg.priority,
            s.name(),
            match (s, m.master_ip) {
                (State::Backup, Some(ip)) => format!(" (master {ip})"),
                _ => String::new(),
            }
        );
        self.publish(m, s);
        let cmd = match s {
            State::Master => &self.cfg.notify_master,
            State::Backup => &self.cfg.notify_backup,
            State::Fault => &self.cfg.notify_fault,
            State::Init => &None,
        };
        if let Some(cmd) = cmd {
            notify(cmd, s);
        }
    }

    fn publish(&self, m: &Machine, s: State) {
        *self.shared.vrrp.lock().unwrap_or_else(|e| e.into_inner()) = Some(VrrpInfo {
            state: s.name().to_string(),
            vrid: self.cfg.vrid,
            priority: self.cfg.priority,
            master: m.master_ip,
            transitions: self.transitions,
        });
    }

    /// Repeated and refreshed gratuitous ARPs that are due, and the
    /// pending ones.
    fn garp_timers(&mut self, now: Instant) {
        self.flush_garps();
        if self.garp_at.iter().any(|t| *t <= now) {
            self.garp_at.retain(|t| *t > now);
            self.garp();
        }
        if let Some(t) = self.next_refresh.filter(|t| *t <= now) {
            self.garp();
            self.next_refresh = Some(t + Duration::from_secs(self.cfg.garp_refresh_s as u64));
        }
    }
}

/// Run a notify command without waiting for it (a thread reaps it).
fn notify(cmd: &str, s: State) {
    let child = std::process::Command::new("/bin/sh")
        .args(["-c", cmd])
        .env("LBD_VRRP_STATE", s.name())
        .stdin(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(mut c) => {
            std::thread::spawn(move || {
                let _ = c.wait();
            });
        }
        Err(e) => warn!("vrrp: notify command `{cmd}` failed to start: {e}"),
    }
}

/// Open the speaker's socket (at start-up, so that errors stop lbd with a
/// clear message).
pub fn prepare(
    shared: Arc<Shared>,
    cfg: VrrpConfig,
    port: usize,
    iface: &str,
    my_ip: Ipv4Addr,
    mac: MacAddr,
) -> Result<impl FnOnce() + Send, String> {
    let sock = open_socket(iface, my_ip)
        .map_err(|e| format!("vrrp: cannot open a VRRP socket on {iface}: {e}"))?;
    let sp = Speaker {
        shared,
        cfg,
        port,
        my_ip,
        mac,
        sock,
        transitions: 0,
        garp_at: Vec::new(),
        next_refresh: None,
        garp_pending: std::collections::VecDeque::new(),
    };
    Ok(move || run(sp))
}

fn run(mut sp: Speaker) {
    let mut m = Machine::new(
        sp.cfg.priority,
        sp.cfg.preempt,
        Duration::from_millis(sp.cfg.advert_interval_ms as u64),
        sp.my_ip,
    );
    let now = Instant::now();
    let a = m.start(now);
    sp.apply(&m, a, now);
    let mut next_link = now + LINK_POLL;
    let mut buf = [0u8; 2048];
    while !sp.shared.stopping() && !sp.shared.resigning.load(Relaxed) {
        let now = Instant::now();
        let wait = m
            .deadline()
            .map_or(MAX_WAIT, |d| d.saturating_duration_since(now))
            .min(MAX_WAIT);
        if readable(&sp.sock, wait) {
            while let Some(n) = recv(&sp.sock, &mut buf) {
                if let Some((src, adv)) = accept(&buf[..n], sp.my_ip, &sp.cfg) {
                    let now = Instant::now();
                    let interval = Duration::from_millis(adv.interval_cs as u64 * 10);
                    let a = m.on_advert(now, src, adv.priority, interval);
                    sp.apply(&m, a, now);
                    if m.state() == State::Backup && m.master_ip == Some(src) {
                        sp.publish(&m, State::Backup);
                    }
                }
            }
        }
        let now = Instant::now();
        let a = m.on_timer(now);
        sp.apply(&m, a, now);
        sp.garp_timers(now);
        if now >= next_link {
            next_link = now + LINK_POLL;
            let link_up = sp.shared.ports[sp.port]
                .port
                .link()
                .map(|l| l.up)
                .unwrap_or(true);
            // With track_health, a director whose real servers are all down
            // is faulty too.
            let healthy = !sp.cfg.track_health
                || !sp
                    .shared
                    .health
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .all_down();
            let a = m.on_link(link_up && healthy, now);
            sp.apply(&m, a, now);
        }
    }
    // Resign: a master sends priority 0 (the backup takes over after its
    // skew time instead of three intervals), and stops serving the VIPs.
    let a = m.shutdown();
    sp.apply(&m, a, Instant::now());
    sp.shared.dataplane.standby.store(true, Relaxed);
    sp.shared.resigned.store(true, Relaxed);
}

/// A received datagram (IP header first) that is a valid advertisement
/// for our virtual router (id, version and, for v2, password) from someone
/// else: its source and contents.
fn accept(dgram: &[u8], my_ip: Ipv4Addr, cfg: &VrrpConfig) -> Option<(Ipv4Addr, Advert)> {
    let ip = Ipv4Packet::new_checked(dgram).ok()?;
    let src = ip.src();
    if src == my_ip {
        return None;
    }
    if ip.ttl() != 255 || ip.protocol() != vrrp::PROTO_VRRP {
        debug!(
            "vrrp: ignored a packet from {src} (TTL {} not 255)",
            ip.ttl()
        );
        return None;
    }
    let payload = &dgram[ip.header_len()..ip.total_len() as usize];
    match vrrp::parse(payload, src, ip.dst()) {
        Ok(a) if a.vrid != cfg.vrid => None,
        Ok(a) if a.version != cfg.version => {
            debug!(
                "vrrp: ignored a version {} advertisement from {src}",
                a.version
            );
            None
        }
        Ok(a) if a.auth != cfg.auth_pass.as_deref().map(vrrp::auth_data) => {
            warn!("vrrp: ignored an advertisement from {src}: authentication mismatch");
            None
        }
        Ok(a) => Some((src, a)),
        Err(e) => {
            debug!("vrrp: ignored a bad advertisement from {src}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_valid_adverts_for_our_router_from_others() {
        let me = Ipv4Addr::new(198, 18, 0, 2);
        let peer = Ipv4Addr::new(198, 18, 0, 3);
        let adv = Advert {
            version: 3,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            addrs: vec![Ipv4Addr::new(198, 18, 0, 100)],
            auth: None,
        };
        let cfg = |vrid: u8, version: u8, pass: Option<&str>| VrrpConfig {
            port: "lan0".into(),
            vrid,
            priority: 100,
            version,
            auth_pass: pass.map(str::to_string),
            advert_interval_ms: 1000,
            preempt: true,
            unicast_peers: vec![],
            garp_count: 5,
            garp_refresh_s: 0,
            addresses: vec![],
            track_health: false,
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
        };
        let datagram = |src: Ipv4Addr, ttl: u8, adv: &Advert| {
            let msg = vrrp::build(adv, src, vrrp::GROUP);
            let mut d = vec![0u8; 20];
            {
                let mut ip = Ipv4Packet::new_unchecked(&mut d[..]);
                ip.set_version(4);
                ip.set_header_len(20);
                ip.set_total_len((20 + msg.len()) as u16);
                ip.set_ttl(ttl);
                ip.set_protocol(vrrp::PROTO_VRRP);
                ip.set_src(src);
                ip.set_dst(vrrp::GROUP);
                ip.fill_checksum();
            }
            d.extend_from_slice(&msg);
            d
        };
        let c51 = cfg(51, 3, None);
        assert_eq!(
            accept(&datagram(peer, 255, &adv), me, &c51),
            Some((peer, adv.clone()))
        );
        assert_eq!(accept(&datagram(peer, 64, &adv), me, &c51), None, "TTL");
        assert_eq!(accept(&datagram(me, 255, &adv), me, &c51), None, "our own");
        assert_eq!(
            accept(&datagram(peer, 255, &adv), me, &cfg(52, 3, None)),
            None,
            "vrid"
        );
        assert_eq!(accept(&[0x45, 0, 0], me, &c51), None);
        // Version 2: the version and the password must match.
        let v2 = Advert {
            version: 2,
            auth: Some(vrrp::auth_data("1111")),
            ..adv
        };
        let c2 = cfg(51, 2, Some("1111"));
        assert!(accept(&datagram(peer, 255, &v2), me, &c2).is_some());
        assert_eq!(accept(&datagram(peer, 255, &v2), me, &c51), None, "version");
        assert_eq!(
            accept(&datagram(peer, 255, &v2), me, &cfg(51, 2, Some("2222"))),
            None,
            "password"
        );
        assert_eq!(
            accept(&datagram(peer, 255, &v2), me, &cfg(51, 2, None)),
            None
        );
    }
}
