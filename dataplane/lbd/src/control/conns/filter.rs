//! What a listing matches, for keys of either address family.
//!
//! The tables hold keys in their own representation (`ConnKey`'s `u32`
//! addresses, `ConnKey6`'s `u128`). [`ListKey`] gives both the same
//! face — addresses as `IpAddr` — so one filter and one listing record
//! serve the IPv4 tables, the IPv6 tables, and any shared table of either
//! family. An IPv4 address in a filter simply matches no IPv6 entry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbcore::conntrack::keyspace::EntryKind;
use lbcore::conntrack::{ConnKey, ConnKey6, ConnState, TableKey};

/// A table key as a listing sees it.
pub trait ListKey: TableKey {
    fn client(&self) -> IpAddr;
    fn client_port(&self) -> u16;
    fn vip(&self) -> IpAddr;
    fn vport(&self) -> u16;
}

impl ListKey for ConnKey {
    fn client(&self) -> IpAddr {
        Ipv4Addr::from(self.client_ip).into()
    }
    fn client_port(&self) -> u16 {
        self.client_port
    }
    fn vip(&self) -> IpAddr {
        Ipv4Addr::from(self.vip).into()
    }
    fn vport(&self) -> u16 {
        self.vport
    }
}

impl ListKey for ConnKey6 {
    fn client(&self) -> IpAddr {
        Ipv6Addr::from(self.client_ip).into()
    }
    fn client_port(&self) -> u16 {
        self.client_port
    }
    fn vip(&self) -> IpAddr {
        Ipv6Addr::from(self.vip).into()
    }
    fn vport(&self) -> u16 {
        self.vport
    }
}

/// What to match, with real servers already resolved to their ids.
#[derive(Debug, Clone, Default)]
pub struct RawFilter {
    pub proto: Option<u8>,
    pub client: Option<IpAddr>,
    pub vip: Option<IpAddr>,
    pub vport: Option<u16>,
    /// Real-server ids to match (a `real` filter may name a server that sits
    /// in several services).
    pub rs: Option<Vec<u32>>,
    pub state: Option<ConnState>,
}

impl RawFilter {
    /// Whether the entry `key` (of a worker's table, or a shared table's
    /// key with its kind marker: the protocol is read without it) with
    /// real server `rs` and state `state` matches.
    pub fn matches<K: ListKey>(&self, key: &K, rs: u32, state: u8) -> bool {
        self.proto.is_none_or(|p| p == EntryKind::protocol(key))
            && self.vport.is_none_or(|p| p == key.vport())
            && self.state.is_none_or(|s| s as u8 == state)
            && self.rs.as_ref().is_none_or(|ids| ids.contains(&rs))
            && self.client.is_none_or(|a| a == key.client())
            && self.vip.is_none_or(|a| a == key.vip())
    }
}

/// One entry found by a listing, whatever its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub proto: u8,
    pub client: IpAddr,
    pub client_port: u16,
    pub vip: IpAddr,
    pub vport: u16,
    /// Real-server id.
    pub rs: u32,
    pub state: u8,
    /// Milliseconds until it expires unless refreshed.
    pub left_ms: u32,
    /// The worker whose table holds it (`u16::MAX`: a shared table).
    pub worker: u16,
    /// A persistence template, not a connection.
    pub template: bool,
}

impl Listed {
    pub fn of<K: ListKey>(key: &K, rs: u32, state: u8, left_ms: u32, worker: u16) -> Listed {
        Listed {
            proto: EntryKind::protocol(key),
            client: key.client(),
            client_port: key.client_port(),
            vip: key.vip(),
            vport: key.vport(),
            rs,
            state,
            left_ms,
            worker,
            template: false,
        }
    }

    pub fn template(self) -> Listed {
        Listed {
            template: true,
            ..self
        }
    }
}

/// Entries found so far, up to a limit, and how many matched in all.
#[derive(Debug, Default)]
pub struct Found {
    pub limit: usize,
    pub entries: Vec<Listed>,
    /// All matches, including those beyond `limit`.
    pub matched: u64,
    /// Live persistence templates seen, matching or not (they count in
    /// the listing's total).
    pub templates: u64,
}

impl Found {
    pub fn new(limit: usize) -> Found {
        Found {
            limit,
            ..Found::default()
        }
    }

    /// Count a match, and keep it if there is room.
    pub fn push(&mut self, e: Listed) {
        self.matched += 1;
        if self.entries.len() < self.limit {
            self.entries.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k4() -> ConnKey {
        ConnKey {
            proto: 6,
            client_ip: 0xc612_0001,
            client_port: 40000,
            vip: 0xc612_0064,
            vport: 80,
        }
    }

    fn k6() -> ConnKey6 {
        ConnKey6 {
            proto: 17,
            client_ip: u128::from("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
            client_port: 40000,
            vip: u128::from("2001:db8::100".parse::<Ipv6Addr>().unwrap()),
            vport: 53,
        }
    }

    #[test]
    fn addresses_match_only_their_own_family() {
        let by_client = |a: &str| RawFilter {
            client: Some(a.parse().unwrap()),
            ..Default::default()
        };
        assert!(by_client("198.18.0.1").matches(&k4(), 0, 0));
        assert!(!by_client("198.18.0.1").matches(&k6(), 0, 0));
        assert!(by_client("2001:db8::1").matches(&k6(), 0, 0));
        assert!(!by_client("2001:db8::2").matches(&k6(), 0, 0));
        assert!(!by_client("2001:db8::1").matches(&k4(), 0, 0));
        let by_vip = RawFilter {
            vip: Some("2001:db8::100".parse().unwrap()),
            vport: Some(53),
            proto: Some(17),
            ..Default::default()
        };
        assert!(by_vip.matches(&k6(), 0, 0));
        assert!(!by_vip.matches(&k4(), 0, 0));
        let wrong_port = RawFilter {
            vport: Some(80),
            ..by_vip
        };
        assert!(!wrong_port.matches(&k6(), 0, 0));
    }

    #[test]
    fn a_marked_shared_key_matches_by_its_protocol() {
        let t = EntryKind::Template.mark(k6());
        let f = RawFilter {
            proto: Some(17),
            rs: Some(vec![3]),
            state: Some(ConnState::None),
            ..Default::default()
        };
        assert!(f.matches(&t, 3, ConnState::None as u8));
        assert!(!f.matches(&t, 4, ConnState::None as u8));
        let l = Listed::of(&t, 3, 0, 10, u16::MAX).template();
        assert_eq!(
            (l.proto, l.client, l.vip, l.template),
            (17, k6().client(), k6().vip(), true)
        );
    }

    #[test]
    fn found_counts_beyond_its_limit() {
        let mut f = Found::new(2);
        for i in 0..5 {
            f.push(Listed::of(&k4(), i, 0, 0, 0));
        }
        assert_eq!((f.matched, f.entries.len()), (5, 2));
        assert_eq!(f.entries[1].rs, 1);
    }
}
