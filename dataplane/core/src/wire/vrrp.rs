//! VRRP advertisements: for IPv4, version 3 (RFC 5798 §5) and version 2
//! (RFC 3768 §5, keepalived's default, with its simple-text "PASS"
//! authentication); for IPv6, version 3 ([`parse6`], [`build6`]).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v3: |(rsvd) |  Max Adver Int (cs) |          Checksum             |
//! v2: |   Auth Type   | Adver Int (s) |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        IPv4 address(es)                       |
//! v2 only: authentication data (8 bytes)
//! ```
//!
//! The v3 checksum covers the message and an IPv4 pseudo header (as for
//! UDP); the v2 checksum covers the message only. The IP header must carry
//! TTL 255 and protocol 112; advertisements go to 224.0.0.18 (or to
//! unicast peers).
//!
//! Over IPv6 (RFC 5798 §5.1.2, §5.2.8) the message is the same with 16-byte
//! addresses; the checksum covers an IPv6 pseudo header (next header 112);
//! the IPv6 header carries hop limit 255, the sender's link-local address
//! as source, and ff02::12 (or a unicast peer) as destination. Version 2
//! has no IPv6 form. IPv4 and IPv6 virtual routers are separate, even with
//! the same id (their virtual MACs differ: 00-00-5E-00-01-id and
//! 00-00-5E-00-02-id), so an IPv6 advertisement is its own type here.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;

/// The IP protocol number of VRRP.
pub const PROTO_VRRP: u8 = 112;
/// The multicast group advertisements are sent to.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The Ethernet address of [`GROUP`].
pub const GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// The IPv6 multicast group advertisements are sent to (all VRRP routers,
/// link-local scope).
pub const GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The Ethernet address of [`GROUP6`] (33:33 and its last 32 bits).
pub const GROUP6_MAC: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x12];
/// The header before the addresses.
pub const HEADER_LEN: usize = 8;
/// Version 3, type 1 (advertisement).
const VERSION_TYPE: u8 = 0x31;
/// The largest interval the 12-bit field holds, in centiseconds.
pub const MAX_INTERVAL_CS: u16 = 0x0fff;

/// A VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// 2 or 3.
    pub version: u8,
    pub vrid: u8,
    /// 0: the master is giving up; 255: the address owner.
    pub priority: u8,
    /// The advertisement interval, centiseconds (v3: at most
    /// [`MAX_INTERVAL_CS`]; v2 carries whole seconds).
    pub interval_cs: u16,
    pub addrs: Vec<Ipv4Addr>,
    /// v2 simple-text authentication (auth type 1), the password padded
    /// with zeros; None: auth type 0.
    pub auth: Option<[u8; AUTH_LEN]>,
}

/// Length of v2 authentication data.
pub const AUTH_LEN: usize = 8;
/// v2 auth type: simple text password.
const AUTH_SIMPLE: u8 = 1;

/// Why a VRRP message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VrrpError {
    #[error("shorter than its header or its addresses")]
    Truncated,
    #[error("version {0} (VRRP versions 2 and 3 are spoken)")]
    Version(u8),
    #[error("type {0} is not an advertisement")]
    Type(u8),
    #[error("bad checksum")]
    Checksum,
    #[error("authentication type {0} is not supported")]
    AuthType(u8),
    /// An advertisement interval of 0: never valid (RFC 3768/5798), and a
    /// backup that believed it would declare the master down at once.
    #[error("advertisement interval 0")]
    ZeroInterval,
}

/// A v2 password as sent: its first 8 bytes, zero padded.
pub fn auth_data(pass: &str) -> [u8; AUTH_LEN] {
    let mut a = [0u8; AUTH_LEN];
    for (d, s) in a.iter_mut().zip(pass.bytes()) {
        *d = s;
    }
    a
}

/// Parse an advertisement (the IP payload), received from `src` for `dst`.
pub fn parse(msg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<Advert, VrrpError> {
    if msg.len() < HEADER_LEN {
        return Err(VrrpError::Truncated);
    }
    let version = msg[0] >> 4;
    if version != 2 && version != 3 {
        return Err(VrrpError::Version(version));
    }
    if msg[0] & 0x0f != 1 {
        return Err(VrrpError::Type(msg[0] & 0x0f));
    }
    let count = msg[3] as usize;
    let addrs_end = HEADER_LEN + 4 * count;
    let len = if version == 2 {
        addrs_end + AUTH_LEN
    } else {
        addrs_end
    };
    if msg.len() < len {
        return Err(VrrpError::Truncated);
    }
    let initial = if version == 3 {
        checksum::pseudo_header_sum(src, dst, PROTO_VRRP, len as u16)
    } else {
        0
    };
    if !checksum::fold(checksum::sum(&msg[..len], initial)) != 0 {
        return Err(VrrpError::Checksum);
    }
    let (interval_cs, auth) = if version == 3 {
        (u16::from_be_bytes([msg[4], msg[5]]) & MAX_INTERVAL_CS, None)
    } else {
        let auth = match msg[4] {
            0 => None,
            AUTH_SIMPLE => {
                let mut a = [0u8; AUTH_LEN];
                a.copy_from_slice(&msg[addrs_end..len]);
                Some(a)
            }
            t => return Err(VrrpError::AuthType(t)),
        };
        (msg[5] as u16 * 100, auth)
    };
    if interval_cs == 0 {
        return Err(VrrpError::ZeroInterval);
    }
    Ok(Advert {
        version,
        vrid: msg[1],
        priority: msg[2],
        interval_cs,
        addrs: msg[HEADER_LEN..addrs_end]
            .chunks_exact(4)
            .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
            .collect(),
        auth,
    })
}

/// A VRRPv3 advertisement for an IPv6 virtual router (there is no v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert6 {
    pub vrid: u8,
    /// 0: the master is giving up; 255: the address owner.
    pub priority: u8,
    /// The advertisement interval, centiseconds (at most
    /// [`MAX_INTERVAL_CS`]).
    pub interval_cs: u16,
    pub addrs: Vec<Ipv6Addr>,
}

/// Parse an IPv6 advertisement (the payload after the IPv6 header and any
/// extension headers), received from `src` for `dst`. Only version 3
/// exists over IPv6: a version 2 message is refused as
/// [`VrrpError::Version`].
pub fn parse6(msg: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<Advert6, VrrpError> {
    if msg.len() < HEADER_LEN {
        return Err(VrrpError::Truncated);
    }
    let version = msg[0] >> 4;
    if version != 3 {
        return Err(VrrpError::Version(version));
    }
    if msg[0] & 0x0f != 1 {
        return Err(VrrpError::Type(msg[0] & 0x0f));
    }
    let len = HEADER_LEN + 16 * msg[3] as usize;
    if msg.len() < len {
        return Err(VrrpError::Truncated);
    }
    let initial = checksum::pseudo_header_sum_v6(src, dst, PROTO_VRRP, len as u32);
    if !checksum::fold(checksum::sum(&msg[..len], initial)) != 0 {
        return Err(VrrpError::Checksum);
    }
    let interval_cs = u16::from_be_bytes([msg[4], msg[5]]) & MAX_INTERVAL_CS;
    if interval_cs == 0 {
        return Err(VrrpError::ZeroInterval);
    }
    Ok(Advert6 {
        vrid: msg[1],
        priority: msg[2],
        interval_cs,
        addrs: msg[HEADER_LEN..len]
            .chunks_exact(16)
            .map(|a| {
                let mut o = [0u8; 16];
                o.copy_from_slice(a);
                Ipv6Addr::from(o)
            })
            .collect(),
    })
}

/// Build the IPv6 advertisement `adv` as sent from `src` (the sender's
/// link-local address) to `dst` (the checksum depends on both). At most
/// 255 addresses are sent.
pub fn build6(adv: &Advert6, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let addrs = &adv.addrs[..adv.addrs.len().min(255)];
    let mut m = Vec::with_capacity(HEADER_LEN + 16 * addrs.len());
    m.extend_from_slice(&[VERSION_TYPE, adv.vrid, adv.priority, addrs.len() as u8]);
    m.extend_from_slice(&(adv.interval_cs & MAX_INTERVAL_CS).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    for a in addrs {
        m.extend_from_slice(&a.octets());
    }
    let initial = checksum::pseudo_header_sum_v6(src, dst, PROTO_VRRP, m.len() as u32);
    let c = !checksum::fold(checksum::sum(&m, initial));
    m[6..8].copy_from_slice(&c.to_be_bytes());
    m
}

/// Build `adv` as sent from `src` to `dst` (the v3 checksum depends on
/// both). At most 255 addresses are sent.
pub fn build(adv: &Advert, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let addrs = &adv.addrs[..adv.addrs.len().min(255)];
    let mut m = Vec::with_capacity(HEADER_LEN + 4 * addrs.len() + AUTH_LEN);
    let v2 = adv.version == 2;
    m.push(if v2 { 0x21 } else { VERSION_TYPE });
    m.push(adv.vrid);
    m.push(adv.priority);
    m.push(addrs.len() as u8);
    if v2 {
        m.push(if adv.auth.is_some() { AUTH_SIMPLE } else { 0 });
        m.push((adv.interval_cs / 100).clamp(1, 255) as u8);
    } else {
        m.extend_from_slice(&(adv.interval_cs & MAX_INTERVAL_CS).to_be_bytes());
    }
    m.extend_from_slice(&[0, 0]);
    for a in addrs {
        m.extend_from_slice(&a.octets());
    }
    if v2 {
        m.extend_from_slice(&adv.auth.unwrap_or([0; AUTH_LEN]));
    }
    let initial = if v2 {
        0
    } else {
        checksum::pseudo_header_sum(src, dst, PROTO_VRRP, m.len() as u16)
    };
    let c = !checksum::fold(checksum::sum(&m, initial));
    m[6..8].copy_from_slice(&c.to_be_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    #[test]
    fn round_trip_and_known_bytes() {
        let adv = Advert {
            version: 3,
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            addrs: vec![Ipv4Addr::new(198, 18, 0, 100)],
            auth: None,
        };
        let m = build(&adv, SRC, GROUP);
        assert_eq!(&m[..6], &[0x31, 51, 150, 1, 0, 100]);
        assert_eq!(&m[8..], &[198, 18, 0, 100]);
        assert_eq!(parse(&m, SRC, GROUP), Ok(adv));
        // The checksum covers the pseudo header: another source fails.
        assert_eq!(
            parse(&m, Ipv4Addr::new(198, 18, 0, 3), GROUP),
            Err(VrrpError::Checksum)
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        let adv = Advert {
            version: 3,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            addrs: vec![
                Ipv4Addr::new(198, 18, 0, 100),
                Ipv4Addr::new(198, 18, 0, 101),
            ],
            auth: None,
        };
        let m = build(&adv, SRC, GROUP);
        assert_eq!(parse(&m[..7], SRC, GROUP), Err(VrrpError::Truncated));
        assert_eq!(parse(&m[..12], SRC, GROUP), Err(VrrpError::Truncated));
        let mut v4 = m.clone();
        v4[0] = 0x41;
        assert_eq!(parse(&v4, SRC, GROUP), Err(VrrpError::Version(4)));
        let mut t = m.clone();
        t[0] = 0x32;
        assert_eq!(parse(&t, SRC, GROUP), Err(VrrpError::Type(2)));
        let mut bad = m;
        bad[2] ^= 1;
        assert_eq!(parse(&bad, SRC, GROUP), Err(VrrpError::Checksum));
    }

    #[test]
    fn version_2_with_a_password() {
        let adv = Advert {
            version: 2,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            addrs: vec![Ipv4Addr::new(172, 16, 0, 30)],
            auth: Some(auth_data("1111")),
        };
        let m = build(&adv, SRC, GROUP);
        // As keepalived sends it: auth type 1, 1 s, the password last.
        assert_eq!(&m[..6], &[0x21, 51, 100, 1, 1, 1]);
        assert_eq!(&m[12..], b"1111\0\0\0\0");
        assert_eq!(m.len(), 20);
        // The v2 checksum does not involve the IP addresses.
        assert_eq!(parse(&m, Ipv4Addr::new(1, 2, 3, 4), GROUP), Ok(adv.clone()));
        let open = Advert { auth: None, ..adv };
        let m = build(&open, SRC, GROUP);
        assert_eq!(m[4], 0);
        assert_eq!(parse(&m, SRC, GROUP), Ok(open));
        let mut ah = m.clone();
        ah[4] = 2;
        assert_eq!(parse(&ah, SRC, GROUP), Err(VrrpError::Checksum));
        assert_eq!(parse(&m[..19], SRC, GROUP), Err(VrrpError::Truncated));
        assert_eq!(auth_data("a-very-long-pass"), *b"a-very-l");
    }

    const SRC6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xc6ff, 0xfe12, 2);

    #[test]
    fn ipv6_round_trip_and_known_bytes() {
        let adv = Advert6 {
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            addrs: vec![
                "2001:db8::100".parse().unwrap(),
                "2001:db8::101".parse().unwrap(),
            ],
        };
        let m = build6(&adv, SRC6, GROUP6);
        assert_eq!(m.len(), 8 + 32);
        assert_eq!(&m[..6], &[0x31, 51, 150, 2, 0, 100]);
        assert_eq!(&m[8..24], &adv.addrs[0].octets());
        assert_eq!(parse6(&m, SRC6, GROUP6), Ok(adv.clone()));
        // The checksum covers the IPv6 pseudo header: another source or
        // destination fails, and so does the IPv4 reading of the message.
        let other: Ipv6Addr = "fe80::3".parse().unwrap();
        assert_eq!(parse6(&m, other, GROUP6), Err(VrrpError::Checksum));
        assert_eq!(parse6(&m, SRC6, other), Err(VrrpError::Checksum));
        // An independent checksum: the one's complement sum of the pseudo
        // header (src, dst, length, next header) and the message is 0xffff.
        let mut words = Vec::new();
        words.extend_from_slice(&SRC6.octets());
        words.extend_from_slice(&GROUP6.octets());
        words.extend_from_slice(&(m.len() as u32).to_be_bytes());
        words.extend_from_slice(&[0, 0, 0, PROTO_VRRP]);
        words.extend_from_slice(&m);
        let mut acc: u32 = words
            .chunks(2)
            .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
            .sum();
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        assert_eq!(acc, 0xffff);
        assert_eq!(GROUP6.to_string(), "ff02::12");
        assert_eq!(&GROUP6_MAC[2..], &GROUP6.octets()[12..]);
    }

    #[test]
    fn ipv6_malformed_messages_are_refused() {
        let adv = Advert6 {
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            addrs: vec!["2001:db8::100".parse().unwrap()],
        };
        let m = build6(&adv, SRC6, GROUP6);
        assert_eq!(parse6(&m[..7], SRC6, GROUP6), Err(VrrpError::Truncated));
        assert_eq!(parse6(&m[..23], SRC6, GROUP6), Err(VrrpError::Truncated));
        let mut v2 = m.clone();
        v2[0] = 0x21;
        assert_eq!(parse6(&v2, SRC6, GROUP6), Err(VrrpError::Version(2)));
        let mut t = m.clone();
        t[0] = 0x32;
        assert_eq!(parse6(&t, SRC6, GROUP6), Err(VrrpError::Type(2)));
        let mut bad = m.clone();
        bad[2] ^= 1;
        assert_eq!(parse6(&bad, SRC6, GROUP6), Err(VrrpError::Checksum));
        let zero = Advert6 {
            interval_cs: 0,
            ..adv
        };
        let z = build6(&zero, SRC6, GROUP6);
        assert_eq!(parse6(&z, SRC6, GROUP6), Err(VrrpError::ZeroInterval));
        // Trailing bytes beyond the counted addresses are not part of it.
        let mut long = m;
        long.extend_from_slice(&[0; 4]);
        assert!(parse6(&long, SRC6, GROUP6).is_ok());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse(&bytes, SRC, GROUP);
            let _ = parse6(&bytes, SRC6, GROUP6);
        }

        #[test]
        fn ipv6_adverts_round_trip(
            vrid in any::<u8>(),
            priority in any::<u8>(),
            interval_cs in 1u16..=MAX_INTERVAL_CS,
            addrs in proptest::collection::vec(any::<u128>(), 0..20),
        ) {
            let adv = Advert6 {
                vrid,
                priority,
                interval_cs,
                addrs: addrs.into_iter().map(Ipv6Addr::from).collect(),
            };
            prop_assert_eq!(parse6(&build6(&adv, SRC6, GROUP6), SRC6, GROUP6), Ok(adv));
        }
    }
}
