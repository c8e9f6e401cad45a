//! VRRP over IPv4: a raw socket for protocol 112 on the port's kernel
//! interface, joined to 224.0.0.18, TTL 255; received datagrams carry
//! their IPv4 header.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use lbcore::config::VrrpConfig;
use lbcore::wire::ipv4::Ipv4Packet;
use lbcore::wire::vrrp::{self, Advert};
use tracing::{debug, warn};

use super::sock;

/// A raw VRRP socket on the kernel interface `iface` (address `my_ip`).
pub fn open(iface: &str, my_ip: Ipv4Addr) -> std::io::Result<OwnedFd> {
    let s = sock::raw_socket(libc::AF_INET, vrrp::PROTO_VRRP as i32)?;
    let ifindex = sock::ifindex(iface)?;
    sock::bind_to_device(&s, iface)?;
    let mreq = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from(vrrp::GROUP).to_be(),
        },
        imr_address: libc::in_addr {
            s_addr: u32::from(my_ip).to_be(),
        },
        imr_ifindex: ifindex as i32,
    };
    sock::set(&s, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
    sock::set(&s, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
    // RFC 5798: TTL 255 on every advertisement, multicast or unicast.
    let ttl: libc::c_int = 255;
    sock::set(&s, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &ttl)?;
    sock::set(&s, libc::IPPROTO_IP, libc::IP_TTL, &ttl)?;
    let off: libc::c_int = 0;
    sock::set(&s, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &off)?;
    Ok(s)
}

pub fn send_to(s: &OwnedFd, msg: &[u8], dst: Ipv4Addr) -> std::io::Result<()> {
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(dst).to_be(),
        },
        sin_zero: [0; 8],
    };
    sock::send_to(s, msg, &sa)
}

/// One received datagram (IP header included), without blocking.
pub fn recv(s: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).ok()
}

/// A received datagram (IP header first) that is a valid advertisement
/// for our virtual router (id, version and, for v2, password) from someone
/// else: its source and contents.
pub fn accept(dgram: &[u8], my_ip: Ipv4Addr, cfg: &VrrpConfig) -> Option<(Ipv4Addr, Advert)> {
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
