//! VRRP version 3 advertisements for IPv4 (RFC 5798 §5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        IPv4 address(es)                       |
//! ```
//!
//! The checksum covers the VRRP message and, in version 3, an IPv4 pseudo
//! header (as for UDP). The interval is in centiseconds (12 bits). The
//! IP header must carry TTL 255 and protocol 112; advertisements go to
//! 224.0.0.18 (or to unicast peers).

use std::net::Ipv4Addr;

use super::checksum;

/// The IP protocol number of VRRP.
pub const PROTO_VRRP: u8 = 112;
/// The multicast group advertisements are sent to.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The Ethernet address of [`GROUP`].
pub const GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// The header before the addresses.
pub const HEADER_LEN: usize = 8;
/// Version 3, type 1 (advertisement).
const VERSION_TYPE: u8 = 0x31;
/// The largest interval the 12-bit field holds, in centiseconds.
pub const MAX_INTERVAL_CS: u16 = 0x0fff;

/// A VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    pub vrid: u8,
    /// 0: the master is giving up; 255: the address owner.
    pub priority: u8,
    /// Max Adver Int, centiseconds (at most [`MAX_INTERVAL_CS`]).
    pub interval_cs: u16,
    pub addrs: Vec<Ipv4Addr>,
}

/// Why a VRRP message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VrrpError {
    #[error("shorter than its header or its addresses")]
    Truncated,
    #[error("version {0} (only VRRPv3 is spoken)")]
    Version(u8),
    #[error("type {0} is not an advertisement")]
    Type(u8),
    #[error("bad checksum")]
    Checksum,
}

/// Parse an advertisement (the IP payload), received from `src` for `dst`.
pub fn parse(msg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<Advert, VrrpError> {
    if msg.len() < HEADER_LEN {
        return Err(VrrpError::Truncated);
    }
    if msg[0] >> 4 != 3 {
        return Err(VrrpError::Version(msg[0] >> 4));
    }
    if msg[0] & 0x0f != 1 {
        return Err(VrrpError::Type(msg[0] & 0x0f));
    }
    let count = msg[3] as usize;
    let len = HEADER_LEN + 4 * count;
    if msg.len() < len {
        return Err(VrrpError::Truncated);
    }
    let pseudo = checksum::pseudo_header_sum(src, dst, PROTO_VRRP, len as u16);
    if !checksum::fold(checksum::sum(&msg[..len], pseudo)) != 0 {
        return Err(VrrpError::Checksum);
    }
    Ok(Advert {
        vrid: msg[1],
        priority: msg[2],
        interval_cs: u16::from_be_bytes([msg[4], msg[5]]) & MAX_INTERVAL_CS,
        addrs: msg[HEADER_LEN..len]
            .chunks_exact(4)
            .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
            .collect(),
    })
}

/// Build `adv` as sent from `src` to `dst` (the checksum depends on both).
/// At most 255 addresses are sent.
pub fn build(adv: &Advert, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let addrs = &adv.addrs[..adv.addrs.len().min(255)];
    let mut m = Vec::with_capacity(HEADER_LEN + 4 * addrs.len());
    m.push(VERSION_TYPE);
    m.push(adv.vrid);
    m.push(adv.priority);
    m.push(addrs.len() as u8);
    m.extend_from_slice(&(adv.interval_cs & MAX_INTERVAL_CS).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    for a in addrs {
        m.extend_from_slice(&a.octets());
    }
    let pseudo = checksum::pseudo_header_sum(src, dst, PROTO_VRRP, m.len() as u16);
    let c = !checksum::fold(checksum::sum(&m, pseudo));
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
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            addrs: vec![Ipv4Addr::new(198, 18, 0, 100)],
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
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            addrs: vec![
                Ipv4Addr::new(198, 18, 0, 100),
                Ipv4Addr::new(198, 18, 0, 101),
            ],
        };
        let m = build(&adv, SRC, GROUP);
        assert_eq!(parse(&m[..7], SRC, GROUP), Err(VrrpError::Truncated));
        assert_eq!(parse(&m[..12], SRC, GROUP), Err(VrrpError::Truncated));
        let mut v2 = m.clone();
        v2[0] = 0x21;
        assert_eq!(parse(&v2, SRC, GROUP), Err(VrrpError::Version(2)));
        let mut t = m.clone();
        t[0] = 0x32;
        assert_eq!(parse(&t, SRC, GROUP), Err(VrrpError::Type(2)));
        let mut bad = m;
        bad[2] ^= 1;
        assert_eq!(parse(&bad, SRC, GROUP), Err(VrrpError::Checksum));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse(&bytes, SRC, GROUP);
        }
    }
}
