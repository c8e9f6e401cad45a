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

use std::net::Ipv4Addr;

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

/// One connection or template, as synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRecord {
    pub kind: SyncKind,
    /// TCP or UDP (without any key marker).
    pub proto: u8,
    /// The connection's state (`ConnState` as u8); 0 for templates.
    pub state: u8,
    pub client_ip: Ipv4Addr,
    pub client_port: u16,
    pub vip: Ipv4Addr,
    pub vport: u16,
    pub rs_ip: Ipv4Addr,
    pub rs_port: u16,
    /// How long the entry lives on the receiver without news.
    pub timeout_ms: u32,
    /// NAT: the MAC the client's packets come from (the client, or the
    /// router in front of it), and the port index they arrive on.
    pub client_mac: [u8; 6],
    pub client_via_port: u8,
}

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("not a sync datagram (bad magic)")]
    Magic,
    #[error("sync format version {0} (this lbd speaks {VERSION})")]
    Version(u8),
    #[error("cut short: {0} records announced")]
    Truncated(u16),
    #[error("record {0}: unknown kind")]
    Kind(usize),
}

impl SyncRecord {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            self.kind as u8,
            self.proto,
            self.state,
            self.client_via_port,
        ]);
        out.extend_from_slice(&self.client_ip.octets());
        out.extend_from_slice(&self.client_port.to_be_bytes());
        out.extend_from_slice(&self.vport.to_be_bytes());
        out.extend_from_slice(&self.vip.octets());
        out.extend_from_slice(&self.rs_ip.octets());
        out.extend_from_slice(&self.rs_port.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.timeout_ms.to_be_bytes());
        out.extend_from_slice(&self.client_mac);
        out.extend_from_slice(&[0, 0]);
    }

    fn read(b: &[u8]) -> Option<SyncRecord> {
        let ip = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let kind = match b[0] {
            1 => SyncKind::Conn,
            2 => SyncKind::Template,
            3 => SyncKind::NatConn,
            _ => return None,
        };
        Some(SyncRecord {
            kind,
            proto: b[1],
            state: b[2],
            client_ip: ip(4),
            client_port: u16_at(8),
            vport: u16_at(10),
            vip: ip(12),
            rs_ip: ip(16),
            rs_port: u16_at(20),
            timeout_ms: u32::from_be_bytes([b[24], b[25], b[26], b[27]]),
            client_mac: [b[28], b[29], b[30], b[31], b[32], b[33]],
            client_via_port: b[3],
        })
    }
}

/// Encode `records` into datagrams of at most [`MAX_RECORDS`] each.
pub fn encode(records: &[SyncRecord]) -> Vec<Vec<u8>> {
    records
        .chunks(MAX_RECORDS)
        .map(|chunk| {
            let mut d = Vec::with_capacity(HEADER_LEN + chunk.len() * RECORD_LEN);
            d.extend_from_slice(&MAGIC);
            d.push(VERSION);
            d.push(0);
            d.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            for r in chunk {
                r.write(&mut d);
            }
            d
        })
        .collect()
}

/// Decode one datagram.
pub fn decode(d: &[u8]) -> Result<Vec<SyncRecord>, SyncError> {
    if d.len() < HEADER_LEN || d[..4] != MAGIC {
        return Err(SyncError::Magic);
    }
    if d[4] != VERSION {
        return Err(SyncError::Version(d[4]));
    }
    let count = u16::from_be_bytes([d[6], d[7]]);
    let body = &d[HEADER_LEN..];
    if body.len() < count as usize * RECORD_LEN {
        return Err(SyncError::Truncated(count));
    }
    body.chunks_exact(RECORD_LEN)
        .take(count as usize)
        .enumerate()
        .map(|(i, b)| SyncRecord::read(b).ok_or(SyncError::Kind(i)))
        .collect()
}

/// A worker's outgoing sync records.
pub type SyncQueue = std::sync::Arc<crossbeam::queue::ArrayQueue<SyncRecord>>;

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

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let mut d = b"LBSY\x01\x00".to_vec();
            d.extend_from_slice(&bytes);
            let _ = decode(&d);
        }
    }
}
