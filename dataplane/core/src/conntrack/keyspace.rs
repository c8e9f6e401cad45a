//! The key space of the shared table ([`super::shared::SharedConnTable`]):
//! what kinds of entry it holds and what their flags mean, in one place.
//!
//! NAT, persistence and connection sync all keep entries in the one shared
//! table. Their keys must never meet, so each kind marks the key's protocol
//! byte with its own high bit (TCP and UDP use only the low five bits); and
//! each entry carries flags that say how it is counted. The users name kinds
//! and flags through the types below and never spell a bit themselves, so no
//! module depends on another's encoding.
//!
//! The marking works on either family's key ([`TableKey::with_proto`]), so
//! an IPv6 shared table will use the same key space.

use super::key::TableKey;
#[cfg(test)]
use super::key::{ConnKey, ConnKey6};

/// What a shared-table key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A connection as its client's packets carry it (protocol, client,
    /// client port, VIP, VIP port): NAT's request direction.
    Request,
    /// A NAT connection as the real server's replies carry it (protocol,
    /// real server, real server port, client, client port).
    Reply,
    /// A persistence template (protocol, masked client, port 0, VIP,
    /// service port).
    Template,
    /// A DR or tunnel connection received from the sync peer, waiting to
    /// be adopted by a worker (the connection's own key).
    Synced,
}

/// The protocol byte's bits that carry the kind; TCP (6) and UDP (17) fit
/// below them.
const KIND_BITS: u8 = 0xe0;

impl EntryKind {
    /// The marker this kind sets in a key's protocol byte.
    #[inline]
    const fn marker(self) -> u8 {
        match self {
            EntryKind::Request => 0,
            EntryKind::Reply => 0x80,
            EntryKind::Template => 0x40,
            EntryKind::Synced => 0x20,
        }
    }

    /// `key` (whose protocol is a plain IP protocol) as a key of this
    /// kind; either family's key.
    #[inline]
    pub fn mark<K: TableKey>(self, key: K) -> K {
        let proto = key.proto() | self.marker();
        key.with_proto(proto)
    }

    /// IPv4 key words (`ConnKey::words`, a plain IP protocol) as the
    /// words of this kind's key: the marker set in the protocol byte
    /// without unpacking the key (what [`mark`](Self::mark) then
    /// `words` gives).
    #[inline(always)]
    pub fn mark_words(self, w: [u64; 2]) -> [u64; 2] {
        [w[0], w[1] | (self.marker() as u64) << 8]
    }

    /// The kind of a shared-table key.
    #[inline]
    pub fn of<K: TableKey>(key: &K) -> EntryKind {
        match key.proto() & KIND_BITS {
            0x80 => EntryKind::Reply,
            0x40 => EntryKind::Template,
            0x20 => EntryKind::Synced,
            _ => EntryKind::Request,
        }
    }

    /// The IP protocol of a shared-table key, without its kind's marker.
    #[inline]
    pub fn protocol<K: TableKey>(key: &K) -> u8 {
        key.proto() & !KIND_BITS
    }
}

/// The flags of a shared-table entry (kept in the entry's `meta` word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryFlags(u8);

impl EntryFlags {
    /// No flag: a connection's request entry in InActConn.
    pub const NONE: EntryFlags = EntryFlags(0);
    /// Counted in ActiveConn (a request entry whose state is active).
    pub const ACTIVE: EntryFlags = EntryFlags(1);
    /// A NAT reply-direction entry (an [`EntryKind::Reply`] key).
    pub const REPLY: EntryFlags = EntryFlags(2);
    /// A persistence template, not a connection.
    pub const TEMPLATE: EntryFlags = EntryFlags(4);
    /// Received from the sync peer: not counted in ActiveConn/InActConn.
    pub const SYNCED: EntryFlags = EntryFlags(8);

    /// The flags as stored in the table.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Flags read back from the table.
    #[inline]
    pub const fn from_bits(bits: u8) -> EntryFlags {
        EntryFlags(bits)
    }

    /// Whether every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: EntryFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    #[inline]
    pub const fn intersects(self, other: EntryFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// These flags and `other`'s.
    #[inline]
    pub const fn union(self, other: EntryFlags) -> EntryFlags {
        EntryFlags(self.0 | other.0)
    }

    /// These flags with `other`'s set (`on`) or cleared.
    #[inline]
    pub const fn with(self, other: EntryFlags, on: bool) -> EntryFlags {
        if on {
            EntryFlags(self.0 | other.0)
        } else {
            EntryFlags(self.0 & !other.0)
        }
    }

    /// [`ACTIVE`](Self::ACTIVE) if `active`, else none.
    #[inline]
    pub const fn active_if(active: bool) -> EntryFlags {
        EntryFlags::NONE.with(EntryFlags::ACTIVE, active)
    }

    /// Whether the entry is a connection's request entry, counted in
    /// ActiveConn/InActConn: not a reply entry, a template, or a synced
    /// entry.
    #[inline]
    pub const fn is_counted(self) -> bool {
        !self.intersects(
            EntryFlags::REPLY
                .union(EntryFlags::TEMPLATE)
                .union(EntryFlags::SYNCED),
        )
    }
}

impl std::ops::BitOr for EntryFlags {
    type Output = EntryFlags;
    #[inline]
    fn bitor(self, rhs: EntryFlags) -> EntryFlags {
        self.union(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [EntryKind; 4] = [
        EntryKind::Request,
        EntryKind::Reply,
        EntryKind::Template,
        EntryKind::Synced,
    ];

    fn key(proto: u8) -> ConnKey {
        ConnKey {
            proto,
            client_ip: 0xc612_0001,
            client_port: 40000,
            vip: 0xc612_0064,
            vport: 80,
        }
    }

    fn key6(proto: u8) -> ConnKey6 {
        ConnKey6 {
            proto,
            client_ip: 0x2001_0db8_0000_0000_0000_0000_0000_0001,
            client_port: 40000,
            vip: 0x2001_0db8_0000_0000_0000_0000_0000_0100,
            vport: 80,
        }
    }

    #[test]
    fn kinds_round_trip_and_never_meet() {
        for proto in [6u8, 17] {
            let keys = KINDS.map(|k| k.mark(key(proto)));
            for (kind, k) in KINDS.iter().zip(keys) {
                assert_eq!(EntryKind::of(&k), *kind);
                assert_eq!(EntryKind::protocol(&k), proto);
                assert_eq!((k.client_ip, k.vport), (0xc612_0001, 80));
            }
            // The IPv6 key space is marked the same way.
            let keys6 = KINDS.map(|k| k.mark(key6(proto)));
            for (kind, k) in KINDS.iter().zip(keys6) {
                assert_eq!(EntryKind::of(&k), *kind);
                assert_eq!(EntryKind::protocol(&k), proto);
                assert_eq!(
                    k,
                    ConnKey6 {
                        proto: k.proto,
                        ..key6(proto)
                    }
                );
            }
            for i in 0..keys6.len() {
                for j in i + 1..keys6.len() {
                    assert_ne!(keys6[i], keys6[j]);
                }
            }
            for i in 0..keys.len() {
                for j in i + 1..keys.len() {
                    assert_ne!(keys[i], keys[j], "{:?} and {:?}", KINDS[i], KINDS[j]);
                }
            }
        }
    }

    #[test]
    fn only_plain_request_entries_are_counted() {
        assert!(EntryFlags::NONE.is_counted());
        assert!(EntryFlags::ACTIVE.is_counted());
        for f in [EntryFlags::REPLY, EntryFlags::TEMPLATE, EntryFlags::SYNCED] {
            assert!(!f.is_counted(), "{f:?}");
            assert!(!(f | EntryFlags::ACTIVE).is_counted(), "{f:?}");
        }
    }

    #[test]
    fn with_sets_and_clears_one_flag() {
        let f = EntryFlags::SYNCED.with(EntryFlags::ACTIVE, true);
        assert!(f.contains(EntryFlags::ACTIVE) && f.contains(EntryFlags::SYNCED));
        let g = f.with(EntryFlags::ACTIVE, false);
        assert_eq!(g, EntryFlags::SYNCED);
        assert_eq!(EntryFlags::active_if(true), EntryFlags::ACTIVE);
        assert_eq!(EntryFlags::active_if(false), EntryFlags::NONE);
        assert_eq!(EntryFlags::from_bits(f.bits()), f);
    }
}
