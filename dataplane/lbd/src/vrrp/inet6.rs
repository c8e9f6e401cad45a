//! VRRPv3 over IPv6 (RFC 5798): a raw socket for next header 112 on the
//! port's kernel interface, bound to the interface's link-local address
//! (advertisements must come from it, and the checksum's pseudo header
//! names it), joined to ff02::12, hop limit 255. A raw IPv6 socket does
//! not deliver the IPv6 header, so the hop limit and the destination of
//! each advertisement come as ancillary data (IPV6_HOPLIMIT,
//! IPV6_PKTINFO).
//!
//! The kernel interface is lbd's TAP, created with IPv6 off; the IPv6
//! instance turns it on there without duplicate address detection (the
//! link-local address derives from the port's own MAC), router
//! solicitations or router advertisements, so the address is usable at
//! once.

use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use lbcore::config::VrrpConfig;
use lbcore::wire::vrrp::{self, Advert6};
use tracing::debug;

use super::sock;

/// How long start-up waits for the kernel interface's link-local address.
const LINK_LOCAL_WAIT: Duration = Duration::from_secs(5);

/// Is `a` a unicast link-local address (fe80::/10)?
pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Turn IPv6 on for `iface` without DAD, router solicitations or router
/// advertisements (each sysctl before the next, DAD first so the
/// link-local address is never tentative).
pub fn enable_ipv6(iface: &str) -> std::io::Result<()> {
    for (key, val) in [
        ("accept_dad", "0"),
        ("router_solicitations", "0"),
        ("accept_ra", "0"),
        ("disable_ipv6", "0"),
    ] {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{iface}/{key}"), val).map_err(|e| {
            std::io::Error::new(e.kind(), format!("net.ipv6.conf.{iface}.{key}: {e}"))
        })?;
    }
    Ok(())
}

/// The link-local address of `iface`, if it has one now.
pub fn link_local(iface: &str) -> Option<Ipv6Addr> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return None;
    }
    let mut found = None;
    let mut p = head;
    while !p.is_null() {
        // SAFETY: p is a node of the list getifaddrs returned.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string, ifa_addr a sockaddr.
        let (name, family) = unsafe {
            (
                std::ffi::CStr::from_ptr(ifa.ifa_name),
                (*ifa.ifa_addr).sa_family,
            )
        };
        if name.to_bytes() != iface.as_bytes() || family as i32 != libc::AF_INET6 {
            continue;
        }
        // SAFETY: an AF_INET6 address is a sockaddr_in6.
        let sa = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
        let a = Ipv6Addr::from(sa.sin6_addr.s6_addr);
        if is_link_local(a) {
            found = Some(a);
            break;
        }
    }
    // SAFETY: head came from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    found
}

/// IPv6 on `iface`, and the VRRP socket bound to its link-local address
/// (index `ifindex`) once it has one that is no longer tentative (bounded
/// wait: the address appears, then duplicate address detection, even when
/// skipped, finishes a moment later).
pub fn prepare(iface: &str, ifindex: u32) -> std::io::Result<(OwnedFd, Ipv6Addr)> {
    enable_ipv6(iface)?;
    let until = Instant::now() + LINK_LOCAL_WAIT;
    loop {
        let last = match link_local(iface) {
            Some(a) => match open(iface, ifindex, a) {
                Ok(s) => return Ok((s, a)),
                Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => e,
                Err(e) => return Err(e),
            },
            None => std::io::Error::other("no IPv6 link-local address"),
        };
        if Instant::now() >= until {
            return Err(std::io::Error::other(format!(
                "{iface}: {last} after {} s",
                LINK_LOCAL_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sockaddr6(a: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: 0,
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: a.octets(),
        },
        // Link-local addresses need the interface; others ignore it.
        sin6_scope_id: if is_link_local(a) || a.is_multicast() {
            scope
        } else {
            0
        },
    }
}

/// The raw VRRP socket on `iface` (index `ifindex`), sending from `my_ll`.
pub fn open(iface: &str, ifindex: u32, my_ll: Ipv6Addr) -> std::io::Result<OwnedFd> {
    let s = sock::raw_socket(libc::AF_INET6, vrrp::PROTO_VRRP as i32)?;
    sock::bind_to_device(&s, iface)?;
    let sa = sockaddr6(my_ll, ifindex);
    // SAFETY: sa is a valid sockaddr_in6 for the call.
    let r = unsafe {
        libc::bind(
            s.as_raw_fd(),
            (&sa as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(sock::last_err());
    }
    let mreq = libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr {
            s6_addr: vrrp::GROUP6.octets(),
        },
        ipv6mr_interface: ifindex,
    };
    sock::set(&s, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)?;
    let idx = ifindex as libc::c_int;
    sock::set(&s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)?;
    // RFC 5798 §5.1.2.3: hop limit 255, multicast or unicast.
    let hops: libc::c_int = 255;
    sock::set(&s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &hops)?;
    sock::set(&s, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &hops)?;
    let off: libc::c_int = 0;
    sock::set(&s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &off)?;
    let on: libc::c_int = 1;
    sock::set(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &on)?;
    sock::set(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &on)?;
    Ok(s)
}

pub fn send_to(s: &OwnedFd, msg: &[u8], dst: Ipv6Addr, ifindex: u32) -> std::io::Result<()> {
    sock::send_to(s, msg, &sockaddr6(dst, ifindex))
}

/// One received advertisement: its length in the buffer, and what the
/// IPv6 header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
}

/// One received message (the VRRP part) and its header's fields, without
/// blocking. None when nothing is queued, or when the kernel did not say
/// the hop limit or the destination (then it cannot be checked).
pub fn recv(s: &OwnedFd, buf: &mut [u8]) -> Option<Received> {
    // SAFETY: all-zero is a valid sockaddr_in6 / msghdr.
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64s: aligned for cmsghdr.
    let mut control = [0u64; 32];
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points to live buffers for the call.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    let len = usize::try_from(n).ok()?;
    let (mut hop_limit, mut dst) = (None, None);
    // SAFETY: the CMSG_* walk stays within msg_control/msg_controllen,
    // which recvmsg set.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                hop_limit = u8::try_from(v).ok();
            } else if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_PKTINFO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in6_pktinfo);
                dst = Some(Ipv6Addr::from(v.ipi6_addr.s6_addr));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let src = Ipv6Addr::from(from.sin6_addr.s6_addr);
    match (hop_limit, dst) {
        (Some(hop_limit), Some(dst)) => Some(Received {
            len,
            src,
            dst,
            hop_limit,
        }),
        _ => {
            debug!("vrrp6: a message from {src} without its hop limit or destination");
            // A message was consumed: report it as one to ignore.
            Some(Received {
                len: 0,
                src,
                dst: Ipv6Addr::UNSPECIFIED,
                hop_limit: 0,
            })
        }
    }
}

/// A received message that is a valid IPv6 advertisement for our virtual
/// router from someone else (RFC 5798 §7.1: hop limit 255, the source a
/// link-local address, checksum, version 3, our id): its source and
/// contents.
pub fn accept(
    msg: &[u8],
    r: &Received,
    my_ll: Ipv6Addr,
    cfg: &VrrpConfig,
) -> Option<(Ipv6Addr, Advert6)> {
    let src = r.src;
    if src == my_ll {
        return None;
    }
    if r.hop_limit != 255 {
        debug!(
            "vrrp6: ignored a packet from {src} (hop limit {} not 255)",
            r.hop_limit
        );
        return None;
    }
    if !is_link_local(src) && cfg.unicast_peers.is_empty() {
        // Multicast advertisements come from link-local addresses; a
        // unicast peer may use another (as keepalived's unicast_peer).
        debug!("vrrp6: ignored an advertisement from {src}: not a link-local source");
        return None;
    }
    match vrrp::parse6(msg, src, r.dst) {
        Ok(a) if a.vrid != cfg.vrid => None,
        Ok(a) => Some((src, a)),
        Err(e) => {
            debug!("vrrp6: ignored a bad advertisement from {src}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vrid: u8, peers: Vec<std::net::IpAddr>) -> VrrpConfig {
        VrrpConfig {
            port: "lan0".into(),
            vrid,
            priority: 100,
            version: 3,
            auth_pass: None,
            advert_interval_ms: 1000,
            preempt: true,
            unicast_peers: peers,
            garp_count: 5,
            garp_refresh_s: 0,
            addresses: vec![],
            track_health: false,
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
        }
    }

    #[test]
    fn accepts_only_valid_ipv6_adverts_for_our_router_from_others() {
        let me: Ipv6Addr = "fe80::c6ff:fe12:2".parse().unwrap();
        let peer: Ipv6Addr = "fe80::c6ff:fe12:3".parse().unwrap();
        let adv = Advert6 {
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            addrs: vec!["2001:db8::100".parse().unwrap()],
        };
        let got = |src: Ipv6Addr, hop_limit: u8, adv: &Advert6, c: &VrrpConfig| {
            let msg = vrrp::build6(adv, src, vrrp::GROUP6);
            let r = Received {
                len: msg.len(),
                src,
                dst: vrrp::GROUP6,
                hop_limit,
            };
            accept(&msg, &r, me, c)
        };
        let c51 = cfg(51, vec![]);
        assert_eq!(got(peer, 255, &adv, &c51), Some((peer, adv.clone())));
        assert_eq!(got(peer, 64, &adv, &c51), None, "hop limit");
        assert_eq!(got(me, 255, &adv, &c51), None, "our own");
        assert_eq!(got(peer, 255, &adv, &cfg(52, vec![])), None, "vrid");
        // A global source: only from a unicast peer.
        let global: Ipv6Addr = "2001:db8::3".parse().unwrap();
        assert_eq!(got(global, 255, &adv, &c51), None, "not link-local");
        let uni = cfg(51, vec![global.into()]);
        assert_eq!(got(global, 255, &adv, &uni), Some((global, adv.clone())));
        // The checksum covers the destination the kernel reported.
        let msg = vrrp::build6(&adv, peer, vrrp::GROUP6);
        let r = Received {
            len: msg.len(),
            src: peer,
            dst: "ff02::1".parse().unwrap(),
            hop_limit: 255,
        };
        assert_eq!(accept(&msg, &r, me, &c51), None, "checksum");
        assert!(is_link_local(me) && !is_link_local(global));
    }
}
