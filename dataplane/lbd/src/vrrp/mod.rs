//! Built-in VRRPv3 (RFC 5798) for the services' VIPs: what keepalived does
//! next to IPVS, in lbd.
//!
//! Each instance (`vrrp` for the IPv4 VIPs, `vrrp6` for the IPv6 ones, as
//! keepalived keeps the families apart) runs on its own thread. It sends
//! and receives advertisements with a raw socket (IPv4 protocol 112, or
//! IPv6 next header 112 from the port's link-local address: `inet4`,
//! `inet6`) bound to the port's kernel interface (`ports[].kernel`): the
//! workers pass frames for the VRRP groups' MACs to that interface, and
//! what the kernel sends there goes out of the port. The state machine is
//! in [`machine`]. As master the director answers ARP (and NDP) for the
//! VIPs and forwards their traffic (after a burst of gratuitous ARPs, or
//! unsolicited Neighbour Advertisements for IPv6, both sent by the
//! workers from the control queues); as backup or in fault
//! it does neither (`Dataplane::standby`, read by every worker once per
//! loop). With both instances, they act as one group (keepalived's sync
//! group): the director serves the VIPs while both are master. Notify
//! commands run on every change of state.

pub mod machine;

mod inet4;
mod inet6;
mod sock;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lbcore::api::VrrpInfo;
use lbcore::config::VrrpConfig;
use lbcore::wire::arp;
use lbcore::wire::vrrp::{self, Advert, Advert6};
use lbcore::wire::MacAddr;
use tracing::{info, warn};

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

/// One instance to run: its configuration and where it speaks.
pub struct InstanceSpec {
    pub cfg: VrrpConfig,
    /// The IPv6 instance (`vrrp6`).
    pub six: bool,
    /// The port's index, kernel interface, IPv4 address and MAC.
    pub port: usize,
    pub iface: String,
    pub my_ip: Ipv4Addr,
    pub mac: MacAddr,
}

/// The instances of one director, as one group: it serves the VIPs while
/// every instance is master (keepalived's sync group), and has resigned
/// when every instance has.
struct Group {
    masters: Mutex<Vec<bool>>,
    resigned: AtomicUsize,
}

impl Group {
    fn new(n: usize) -> Group {
        Group {
            masters: Mutex::new(vec![false; n]),
            resigned: AtomicUsize::new(0),
        }
    }

    /// Instance `i` is (or is no longer) master: whether the whole group
    /// is now.
    fn set_master(&self, i: usize, master: bool) -> bool {
        let mut m = self.masters.lock().unwrap_or_else(|e| e.into_inner());
        m[i] = master;
        m.iter().all(|&x| x)
    }

    /// Instance `i` resigned: whether all have.
    fn resign(&self, i: usize) -> bool {
        self.set_master(i, false);
        let n = self.masters.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.resigned.fetch_add(1, Relaxed) + 1 == n
    }
}

/// Where an instance speaks: its socket and its own address.
enum Inet {
    V4 {
        sock: OwnedFd,
        my_ip: Ipv4Addr,
    },
    V6 {
        sock: OwnedFd,
        /// The kernel interface's link-local address: the source of our
        /// advertisements, our address in elections.
        my_ll: Ipv6Addr,
        ifindex: u32,
    },
}

impl Inet {
    fn my_ip(&self) -> IpAddr {
        match self {
            Inet::V4 { my_ip, .. } => IpAddr::V4(*my_ip),
            Inet::V6 { my_ll, .. } => IpAddr::V6(*my_ll),
        }
    }

    fn sock(&self) -> &OwnedFd {
        match self {
            Inet::V4 { sock, .. } | Inet::V6 { sock, .. } => sock,
        }
    }
}

/// The speaker's view of the world, and what it does with the machine's
/// actions.
struct Speaker {
    shared: Arc<Shared>,
    cfg: VrrpConfig,
    port: usize,
    mac: MacAddr,
    inet: Inet,
    /// Its place in the group, and the group.
    index: usize,
    group: Arc<Group>,
    /// `vrrp` or `vrrp6`, for the logs.
    name: &'static str,
    transitions: u64,
    /// Pending gratuitous ARP rounds.
    garp_at: Vec<Instant>,
    next_refresh: Option<Instant>,
    /// Gratuitous ARPs waiting for room in a control queue (port, frame).
    garp_pending: std::collections::VecDeque<(usize, CtlFrame)>,
}

impl Speaker {
    /// The IPv6 instance's addresses: every IPv6 service VIP and the extra
    /// addresses (`vrrp6.addresses`), in order, each with the port it is
    /// announced on (as the IPv4 instance's).
    fn addresses6(&self) -> Vec<(Ipv6Addr, usize)> {
        let snap = self.shared.dataplane.current();
        let mut v: Vec<(Ipv6Addr, usize)> = snap
            .services
            .iter()
            .filter_map(|s| match s.vip {
                IpAddr::V6(a) => Some((a, self.port)),
                IpAddr::V4(_) => None,
            })
            .chain(
                snap.vrrp_addresses6
                    .iter()
                    .map(|&(a, p)| (Ipv6Addr::from(a), p as usize)),
            )
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The IPv4 instance's addresses: every IPv4 service VIP and the extra
    /// addresses, in order, each with the port it is announced on.
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
        let interval_cs = (self.cfg.advert_interval_ms / 10) as u16;
        let (sock, my_ip) = match &self.inet {
            Inet::V4 { sock, my_ip } => (sock, *my_ip),
            Inet::V6 {
                sock,
                my_ll,
                ifindex,
                ..
            } => {
                let adv = Advert6 {
                    vrid: self.cfg.vrid,
                    priority,
                    interval_cs,
                    addrs: self.addresses6().into_iter().map(|(a, _)| a).collect(),
                };
                let mut peers: Vec<Ipv6Addr> = self
                    .cfg
                    .unicast_peers
                    .iter()
                    .filter_map(|p| match p {
                        IpAddr::V6(a) => Some(*a),
                        IpAddr::V4(_) => None,
                    })
                    .collect();
                if peers.is_empty() {
                    peers.push(vrrp::GROUP6);
                }
                for dst in peers {
                    let msg = vrrp::build6(&adv, *my_ll, dst);
                    if let Err(e) = inet6::send_to(sock, &msg, dst, *ifindex) {
                        warn!("vrrp6: cannot send an advertisement to {dst}: {e}");
                    }
                }
                return;
            }
        };
        let adv = Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            interval_cs,
            addrs: self.vips(),
            auth: self.cfg.auth_pass.as_deref().map(vrrp::auth_data),
        };
        let mut peers: Vec<Ipv4Addr> = self
            .cfg
            .unicast_peers
            .iter()
            .filter_map(|p| match p {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        if peers.is_empty() {
            peers.push(vrrp::GROUP);
        }
        for dst in peers {
            let msg = vrrp::build(&adv, my_ip, dst);
            if let Err(e) = inet4::send_to(sock, &msg, dst) {
                warn!("vrrp: cannot send an advertisement to {dst}: {e}");
            }
        }
    }

    /// Queue `garp_count` gratuitous ARPs (IPv6: unsolicited Neighbour
    /// Advertisements) per address, for the ports' queue-0 workers to send.
    /// What does not fit in a port's control queue now waits in
    /// `garp_pending` and goes as room frees up.
    fn garp(&mut self) {
        let snap = self.shared.dataplane.current();
        let mut frames: Vec<(usize, IpAddr, CtlFrame)> = Vec::new();
        let blank = CtlFrame {
            len: 0,
            bytes: [0; crate::dataplane::CTL_FRAME_LEN],
        };
        if let Inet::V6 { .. } = self.inet {
            for (vip, port) in self.addresses6() {
                let mac = snap.ports.get(port).map_or(self.mac, |p| p.mac);
                let mut f = blank;
                f.len = lbcore::pipeline::unsolicited_na(&mut f.bytes, mac, vip) as u16;
                frames.push((port, vip.into(), f));
            }
        } else {
            for (vip, port) in self.addresses() {
                let mac = snap.ports.get(port).map_or(self.mac, |p| p.mac);
                let mut f = blank;
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
                frames.push((port, vip.into(), f));
            }
        }
        for (port, vip, f) in frames {
            for _ in 0..self.cfg.garp_count {
                if self.garp_pending.len() < MAX_PENDING_GARPS {
                    self.garp_pending.push_back((port, f));
                } else {
                    warn!(
                        "{}: too many announcements pending; one for {vip} dropped",
                        self.name
                    );
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
                Action::Reassert => {
                    info!(
                        "{}: vrid {}: a lower router advertised as master; announcing our addresses again",
                        self.name, self.cfg.vrid
                    );
                    self.garp();
                }
            }
        }
    }

    fn enter(&mut self, m: &Machine, s: State, now: Instant) {
        self.transitions += 1;
        let master = s == State::Master;
        let serve = self.group.set_master(self.index, master);
        self.shared.dataplane.standby.store(!serve, Relaxed);
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
            "{}: vrid {} priority {}: {}{}",
            self.name,
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
            notify(cmd, s, self.name);
        }
    }

    /// Show this instance's state in `lbctl status` and `/metrics`, each
    /// instance in its own place.
    fn publish(&self, m: &Machine, s: State) {
        let slot = match self.inet {
            Inet::V4 { .. } => &self.shared.vrrp,
            Inet::V6 { .. } => &self.shared.vrrp6,
        };
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(VrrpInfo {
            instance: self.name.to_string(),
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

/// Run a notify command of `instance` without waiting for it (a thread
/// reaps it).
fn notify(cmd: &str, s: State, instance: &str) {
    let child = std::process::Command::new("/bin/sh")
        .args(["-c", cmd])
        .env("LBD_VRRP_STATE", s.name())
        // `vrrp` or `vrrp6`: one command may serve both instances.
        .env("LBD_VRRP_INSTANCE", instance)
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

/// A speaker, ready to run on its thread.
pub type SpeakerFn = Box<dyn FnOnce() + Send>;

/// Open each instance's socket (at start-up, so that errors stop lbd with
/// a clear message); the speakers to run, one thread each, with their
/// names.
pub fn prepare(
    shared: Arc<Shared>,
    specs: Vec<InstanceSpec>,
) -> Result<Vec<(&'static str, SpeakerFn)>, String> {
    let group = Arc::new(Group::new(specs.len()));
    let mut out: Vec<(&'static str, SpeakerFn)> = Vec::new();
    for (index, spec) in specs.into_iter().enumerate() {
        let iface = &spec.iface;
        let (name, inet) = if spec.six {
            let e = |what: &str, e: std::io::Error| format!("vrrp6: cannot {what} on {iface}: {e}");
            let ifindex = sock::ifindex(iface).map_err(|x| e("find the interface", x))?;
            let (sock, my_ll) =
                inet6::prepare(iface, ifindex).map_err(|x| e("open a VRRP socket", x))?;
            info!("vrrp6: speaking from {my_ll} on {iface}");
            (
                "vrrp6",
                Inet::V6 {
                    sock,
                    my_ll,
                    ifindex,
                },
            )
        } else {
            let sock = inet4::open(iface, spec.my_ip)
                .map_err(|e| format!("vrrp: cannot open a VRRP socket on {iface}: {e}"))?;
            (
                "vrrp",
                Inet::V4 {
                    sock,
                    my_ip: spec.my_ip,
                },
            )
        };
        let sp = Speaker {
            shared: shared.clone(),
            cfg: spec.cfg,
            port: spec.port,
            mac: spec.mac,
            inet,
            index,
            group: group.clone(),
            name,
            transitions: 0,
            garp_at: Vec::new(),
            next_refresh: None,
            garp_pending: std::collections::VecDeque::new(),
        };
        out.push((name, Box::new(move || run(sp))));
    }
    Ok(out)
}

fn run(mut sp: Speaker) {
    let mut m = Machine::new(
        sp.cfg.priority,
        sp.cfg.preempt,
        Duration::from_millis(sp.cfg.advert_interval_ms as u64),
        sp.inet.my_ip(),
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
        if sock::readable(sp.inet.sock(), wait) {
            while let Some(got) = receive(&sp.inet, &sp.cfg, &mut buf) {
                let Some((src, priority, interval_cs)) = got else {
                    continue;
                };
                let now = Instant::now();
                let interval = Duration::from_millis(interval_cs as u64 * 10);
                let a = m.on_advert(now, src, priority, interval);
                sp.apply(&m, a, now);
                if m.state() == State::Backup && m.master_ip == Some(src) {
                    sp.publish(&m, State::Backup);
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
    if sp.group.resign(sp.index) {
        sp.shared.resigned.store(true, Relaxed);
    }
}

/// The next queued message: None when there is none; Some(None) for one
/// that is not an advertisement for us; else its sender, priority and
/// interval.
#[allow(clippy::option_option)]
fn receive(inet: &Inet, cfg: &VrrpConfig, buf: &mut [u8]) -> Option<Option<(IpAddr, u8, u16)>> {
    match inet {
        Inet::V4 { sock, my_ip } => {
            let n = inet4::recv(sock, buf)?;
            Some(
                inet4::accept(&buf[..n], *my_ip, cfg)
                    .map(|(src, a)| (IpAddr::V4(src), a.priority, a.interval_cs)),
            )
        }
        Inet::V6 { sock, my_ll, .. } => {
            let r = inet6::recv(sock, buf)?;
            Some(
                inet6::accept(&buf[..r.len], &r, *my_ll, cfg)
                    .map(|(src, a)| (IpAddr::V6(src), a.priority, a.interval_cs)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_serves_while_every_instance_is_master() {
        let g = Group::new(2);
        assert!(
            !g.set_master(0, true),
            "the IPv6 instance is not master yet"
        );
        assert!(g.set_master(1, true));
        assert!(!g.set_master(1, false), "one backup: the group stands by");
        assert!(g.set_master(1, true));
        // Resigning: both must have before lbd may go on stopping.
        assert!(!g.resign(0));
        assert!(!g.set_master(1, true), "a resigned instance is not master");
        assert!(g.resign(1));
        let one = Group::new(1);
        assert!(one.set_master(0, true));
        assert!(one.resign(0));
    }
}
