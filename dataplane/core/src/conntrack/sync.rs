//! Connection-state sync between two directors (like IPVS's sync daemon):
//! the record a master sends for each new or changed connection and each
//! persistence template, and the datagram format that carries them.
//!
//! Real servers are named by address and port, not by id: ids are local to
//! each director. A datagram (UDP payload) is:
//!
//! ```text
//! "LBSY" | version (1) | reserved (1) | count (2, big endian) | count × record
//! record (36 bytes): kind(1) proto(1) state(1) client_via_port(1)
//!                    client_ip(4) client_port(2) vport(2) vip(4)
//!                    rs_ip(4) rs_port(2) reserved(2) timeout_ms(4)
//!                    client_mac(6) reserved(2)
//! ```
//!
//! IPv6 connections and persistence templates travel in datagrams of
//! their own, version 2 ([`VERSION6`]): the same header and fields, in the
//! same order, with 16-byte addresses (a 72-byte record, [`RECORD6_LEN`]);
//! the kind byte tells a template from a connection. The version says
//! the family, so IPv4 datagrams stay byte for byte what they were, and a
//! director that knows only version 1 refuses an IPv6 datagram whole
//! (`Version(2)`) instead of misreading it:
//!
//! ```text
//! record (72 bytes): kind(1) proto(1) state(1) client_via_port(1)
//!                    client_ip(16) client_port(2) vport(2) vip(16)
//!                    rs_ip(16) rs_port(2) reserved(2) timeout_ms(4)
//!                    client_mac(6) reserved(2)
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

/// Magic at the start of every sync datagram.
pub const MAGIC: [u8; 4] = *b"LBSY";
/// The format's version.
pub const VERSION: u8 = 1;
/// Bytes before the records.
pub const HEADER_LEN: usize = 8;
/// Bytes per record.
pub const RECORD_LEN: usize = 36;
/// Records per datagram: keeps datagrams under a 1500-byte MTU.
pub const MAX_RECORDS: usize = 38;
/// The version of datagrams carrying IPv6 connections.
pub const VERSION6: u8 = 2;
/// Bytes per IPv6 record.
pub const RECORD6_LEN: usize = 72;
/// IPv6 records per datagram (under a 1500-byte MTU with IPv6 and UDP
/// headers).
pub const MAX_RECORDS6: usize = 19;

/// What a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// A DR or tunnel connection (protocol, client, VIP) → real server.
    Conn = 1,
    /// A persistence template: `client_ip` is the masked client address,
    /// `client_port` 0, `vport` the service port.
    Template = 2,
    /// A NAT connection; `client_mac` and `client_via_port` say where its
    /// replies go (the directors' ports must be in the same order).
    NatConn = 3,
}

/// One connection or template, as synced, with addresses of family `A`
/// ([`SyncRecord`] for IPv4, [`SyncRecord6`] for IPv6: the two families'
/// records have the same fields in the same order, so one type and one
/// codec serve both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRecordOf<A> {
    pub kind: SyncKind,
    /// TCP or UDP (without any key marker).
    pub proto: u8,
    /// The connection's state (`ConnState` as u8); 0 for templates.
    pub state: u8,
    pub client_ip: A,
    pub client_port: u16,
    pub vip: A,
    pub vport: u16,
    pub rs_ip: A,
    pub rs_port: u16,
    /// How long the entry lives on the receiver without news.
    pub timeout_ms: u32,
    /// NAT: the MAC the client's packets come from (the client, or the
    /// router in front of it), and the port index they arrive on.
    pub client_mac: [u8; 6],
    pub client_via_port: u8,
}

/// An IPv4 connection or template, as synced (version 1 datagrams).
pub type SyncRecord = SyncRecordOf<Ipv4Addr>;
/// An IPv6 connection or template, as synced (version 2 datagrams).
pub type SyncRecord6 = SyncRecordOf<Ipv6Addr>;

/// An address family's part of the format: its version, its address
/// length and how many records fit in a datagram.
pub trait SyncAddr: Copy {
    /// The version of datagrams carrying this family's records.
    const VERSION: u8;
    /// Bytes per address.
    const LEN: usize;
    /// Records per datagram.
    const MAX_RECORDS: usize;
    fn put(&self, out: &mut Vec<u8>);
    /// The address at the start of `b` (at least [`LEN`](Self::LEN) bytes).
    fn at(b: &[u8]) -> Self;
}

impl SyncAddr for Ipv4Addr {
    const VERSION: u8 = VERSION;
    const LEN: usize = 4;
    const MAX_RECORDS: usize = MAX_RECORDS;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.octets());
    }
    fn at(b: &[u8]) -> Self {
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
}

impl SyncAddr for Ipv6Addr {
    const VERSION: u8 = VERSION6;
    const LEN: usize = 16;
    const MAX_RECORDS: usize = MAX_RECORDS6;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.octets());
    }
    fn at(b: &[u8]) -> Self {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[..16]);
        Ipv6Addr::from(o)
    }
}

/// What one datagram carried: records of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    V4(Vec<SyncRecord>),
    V6(Vec<SyncRecord6>),
}

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("not a sync datagram (bad magic)")]
    Magic,
    #[error("sync format version {0} (this lbd speaks {VERSION} and {VERSION6})")]
    Version(u8),
    #[error("cut short: {0} records announced")]
    Truncated(u16),
    #[error("record {0}: unknown kind")]
    Kind(usize),
}

impl<A: SyncAddr> SyncRecordOf<A> {
    /// Bytes per record: three addresses and 24 bytes of other fields.
    pub const LEN: usize = 24 + 3 * A::LEN;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            self.kind as u8,
            self.proto,
            self.state,
            self.client_via_port,
        ]);
        self.client_ip.put(out);
        out.extend_from_slice(&self.client_port.to_be_bytes());
        out.extend_from_slice(&self.vport.to_be_bytes());
        self.vip.put(out);
        self.rs_ip.put(out);
        out.extend_from_slice(&self.rs_port.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.timeout_ms.to_be_bytes());
        out.extend_from_slice(&self.client_mac);
        out.extend_from_slice(&[0, 0]);
    }

    /// A record from its [`LEN`](Self::LEN) bytes; None for an unknown
    /// kind.
    fn read(b: &[u8]) -> Option<Self> {
        let l = A::LEN;
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let m = 16 + 3 * l;
        Some(SyncRecordOf {
            kind: kind_of(b[0])?,
            proto: b[1],
            state: b[2],
            client_via_port: b[3],
            client_ip: A::at(&b[4..]),
            client_port: u16_at(4 + l),
            vport: u16_at(6 + l),
            vip: A::at(&b[8 + l..]),
            rs_ip: A::at(&b[8 + 2 * l..]),
            rs_port: u16_at(8 + 3 * l),
            timeout_ms: u32::from_be_bytes([
                b[12 + 3 * l],
                b[13 + 3 * l],
                b[14 + 3 * l],
                b[15 + 3 * l],
            ]),
            client_mac: [b[m], b[m + 1], b[m + 2], b[m + 3], b[m + 4], b[m + 5]],
        })
    }
}

const _: () = assert!(SyncRecord::LEN == RECORD_LEN && SyncRecord6::LEN == RECORD6_LEN);

fn kind_of(b: u8) -> Option<SyncKind> {
    match b {
        1 => Some(SyncKind::Conn),
        2 => Some(SyncKind::Template),
        3 => Some(SyncKind::NatConn),
        _ => None,
    }
}

/// Encode `records` into datagrams of their family's version, at most
/// `A::MAX_RECORDS` each.
fn encode_of<A: SyncAddr>(records: &[SyncRecordOf<A>]) -> Vec<Vec<u8>> {
    records
        .chunks(A::MAX_RECORDS)
        .map(|chunk| {
            let mut d = Vec::with_capacity(HEADER_LEN + chunk.len() * SyncRecordOf::<A>::LEN);
            d.extend_from_slice(&MAGIC);
            d.push(A::VERSION);
            d.push(0);
            d.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            for r in chunk {
                r.write(&mut d);
            }
            d
        })
        .collect()
}

/// Decode one datagram of family `A`'s version.
fn decode_of<A: SyncAddr>(d: &[u8]) -> Result<Vec<SyncRecordOf<A>>, SyncError> {
    if d.len() < HEADER_LEN || d[..4] != MAGIC {
        return Err(SyncError::Magic);
    }
    if d[4] != A::VERSION {
        return Err(SyncError::Version(d[4]));
    }
    let count = u16::from_be_bytes([d[6], d[7]]);
    let body = &d[HEADER_LEN..];
    let len = SyncRecordOf::<A>::LEN;
    if body.len() < count as usize * len {
        return Err(SyncError::Truncated(count));
    }
    body.chunks_exact(len)
        .take(count as usize)
        .enumerate()
        .map(|(i, b)| SyncRecordOf::read(b).ok_or(SyncError::Kind(i)))
        .collect()
}

/// Encode IPv6 `records` into version-2 datagrams of at most
/// [`MAX_RECORDS6`] each.
pub fn encode6(records: &[SyncRecord6]) -> Vec<Vec<u8>> {
    encode_of(records)
}

/// Decode one datagram of either version.
pub fn decode_any(d: &[u8]) -> Result<Records, SyncError> {
    match d.get(4) {
        Some(&VERSION6) if d[..4] == MAGIC => decode_of(d).map(Records::V6),
        _ => decode(d).map(Records::V4),
    }
}

/// Encode `records` into datagrams of at most [`MAX_RECORDS`] each.
pub fn encode(records: &[SyncRecord]) -> Vec<Vec<u8>> {
    encode_of(records)
}

/// Decode one IPv4 (version 1) datagram.
pub fn decode(d: &[u8]) -> Result<Vec<SyncRecord>, SyncError> {
    decode_of(d)
}

/// A worker's outgoing sync records.
pub type SyncQueue = std::sync::Arc<crossbeam::queue::ArrayQueue<SyncRecord>>;
/// A worker's outgoing IPv6 sync records (a queue of their own: the IPv4
/// records' stays as it was).
pub type SyncQueue6 = std::sync::Arc<crossbeam::queue::ArrayQueue<SyncRecord6>>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(i: u16) -> SyncRecord {
        SyncRecord {
            kind: match i % 5 {
                0 => SyncKind::Template,
                1 => SyncKind::NatConn,
                _ => SyncKind::Conn,
            },
            proto: 6,
            state: 3,
            client_ip: Ipv4Addr::new(198, 18, 0, 1),
            client_port: 40000 + i,
            vip: Ipv4Addr::new(198, 18, 0, 100),
            vport: 80,
            rs_ip: Ipv4Addr::new(198, 18, 0, 11),
            rs_port: 80,
            timeout_ms: 900_000,
            client_mac: [2, 0, 0, 0, 0, (i % 200) as u8],
            client_via_port: (i % 2) as u8,
        }
    }

    #[test]
    fn round_trip_in_mtu_sized_datagrams() {
        let recs: Vec<_> = (0..100).map(rec).collect();
        let ds = encode(&recs);
        assert_eq!(ds.len(), 100usize.div_ceil(MAX_RECORDS));
        assert!(ds.iter().all(|d| d.len() <= 1400));
        assert_eq!(ds[0].len(), HEADER_LEN + MAX_RECORDS * RECORD_LEN);
        let back: Vec<_> = ds.iter().flat_map(|d| decode(d).unwrap()).collect();
        assert_eq!(back, recs);
    }

    #[test]
    fn bad_datagrams_are_refused() {
        let d = encode(&[rec(1)]).remove(0);
        assert_eq!(decode(&d[..3]), Err(SyncError::Magic));
        let mut v = d.clone();
        v[4] = 9;
        assert_eq!(decode(&v), Err(SyncError::Version(9)));
        assert_eq!(decode(&d[..d.len() - 1]), Err(SyncError::Truncated(1)));
        let mut k = d;
        k[HEADER_LEN] = 7;
        assert_eq!(decode(&k), Err(SyncError::Kind(0)));
    }

    #[test]
    fn ipv4_datagrams_are_byte_for_byte_version_1() {
        // The layout of before IPv6, written out by hand.
        let r = rec(2);
        let d = encode(&[r]).remove(0);
        let mut want = b"LBSY\x01\x00\x00\x01".to_vec();
        want.extend_from_slice(&[1, 6, 3, 0, 198, 18, 0, 1]);
        want.extend_from_slice(&(40002u16).to_be_bytes());
        want.extend_from_slice(&[0, 80, 198, 18, 0, 100, 198, 18, 0, 11, 0, 80, 0, 0]);
        want.extend_from_slice(&900_000u32.to_be_bytes());
        want.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0, 0]);
        assert_eq!(d, want);
        assert_eq!(decode_any(&d), Ok(Records::V4(vec![r])));
    }

    fn rec6(i: u16) -> SyncRecord6 {
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        SyncRecord6 {
            kind: match i % 3 {
                0 => SyncKind::Template,
                1 => SyncKind::NatConn,
                _ => SyncKind::Conn,
            },
            proto: 17,
            state: 9,
            client_ip: a("2001:db8::1"),
            client_port: 50000 + i,
            vip: a("2001:db8::100"),
            vport: 443,
            rs_ip: a("2001:db8::11"),
            rs_port: 8443,
            timeout_ms: 300_000,
            client_mac: [2, 0, 0, 0, 1, (i % 200) as u8],
            client_via_port: (i % 3) as u8,
        }
    }

    #[test]
    fn ipv6_records_round_trip_in_version_2_datagrams() {
        let recs: Vec<_> = (0..50).map(rec6).collect();
        let ds = encode6(&recs);
        assert_eq!(ds.len(), 50usize.div_ceil(MAX_RECORDS6));
        // With IPv6 (40) and UDP (8) headers, under a 1500-byte MTU.
        assert!(ds.iter().all(|d| d.len() + 48 <= 1500));
        assert_eq!(ds[0].len(), HEADER_LEN + MAX_RECORDS6 * RECORD6_LEN);
        assert_eq!(ds[0][4], VERSION6);
        let mut back = Vec::new();
        for d in &ds {
            match decode_any(d).unwrap() {
                Records::V6(r) => back.extend(r),
                Records::V4(_) => panic!("an IPv6 datagram read as IPv4"),
            }
            // A version-1 reader refuses it whole.
            assert_eq!(decode(d), Err(SyncError::Version(VERSION6)));
        }
        assert_eq!(back, recs);
        // Field positions: the client's address right after the first
        // four bytes, the VIP after the ports, the timeout at 60.
        let one = &encode6(&[rec6(2)])[0][HEADER_LEN..];
        assert_eq!(one.len(), RECORD6_LEN);
        assert_eq!(&one[..4], &[1, 17, 9, 2]);
        assert_eq!(&one[4..20], &rec6(2).client_ip.octets());
        assert_eq!(&one[20..24], &[0xc3, 0x52, 0x01, 0xbb]);
        assert_eq!(&one[24..40], &rec6(2).vip.octets());
        assert_eq!(&one[56..58], &8443u16.to_be_bytes());
        assert_eq!(&one[60..64], &300_000u32.to_be_bytes());
    }

    #[test]
    fn bad_ipv6_datagrams_are_refused() {
        let d = encode6(&[rec6(1)]).remove(0);
        assert_eq!(decode_any(&d[..d.len() - 1]), Err(SyncError::Truncated(1)));
        let mut k = d.clone();
        k[HEADER_LEN] = 9;
        assert_eq!(decode_any(&k), Err(SyncError::Kind(0)));
        let mut v = d;
        v[4] = 3;
        assert_eq!(decode_any(&v), Err(SyncError::Version(3)));
    }

    proptest! {
        #[test]
        fn ipv6_records_round_trip(
            kind in 1u8..=3, proto in any::<u8>(), state in any::<u8>(),
            ips in any::<[u128; 3]>(), ports in any::<[u16; 3]>(),
            timeout_ms in any::<u32>(), client_mac in any::<[u8; 6]>(),
            via in any::<u8>(),
        ) {
            let r = SyncRecord6 {
                kind: kind_of(kind).unwrap(),
                proto,
                state,
                client_ip: ips[0].into(),
                client_port: ports[0],
                vip: ips[1].into(),
                vport: ports[1],
                rs_ip: ips[2].into(),
                rs_port: ports[2],
                timeout_ms,
                client_mac,
                client_via_port: via,
            };
            prop_assert_eq!(decode_any(&encode6(&[r])[0]), Ok(Records::V6(vec![r])));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let mut d = b"LBSY\x01\x00".to_vec();
            d.extend_from_slice(&bytes);
            let _ = decode(&d);
            let _ = decode_any(&d);
            d[4] = VERSION6;
            let _ = decode_any(&d);
        }
    }
}
