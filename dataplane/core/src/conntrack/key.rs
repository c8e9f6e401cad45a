//! Connection-table keys, one type per address family.
//!
//! The tables ([`super::table::ConnTable`], [`super::shared::SharedConnTable`])
//! are generic over a [`TableKey`] and monomorphised: an IPv4 table and an
//! IPv6 table are two instances, as Katran and VPP keep one table per
//! family. That keeps the IPv4 key at two words — one compare of 16 bytes per
//! slot on the hit path, 32-byte entries, two per cache line — instead of
//! paying for 128-bit addresses (or a family branch) on every IPv4 packet.
//!
//! A key is stored in its slot as a fixed array of `u64` words
//! ([`KeyWords`]). The last word holds the ports and the protocol, and its
//! bit 0 is always set in a stored key: it doubles as the slot's "occupied"
//! mark (an all-zero slot is free).

use core::fmt::Debug;
use core::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::keyhash::HashKeys;

/// Bit 0 of a key's last word: set in every stored key.
pub(crate) const OCCUPIED: u64 = 1;

/// The packed form of a key: a fixed number of `u64` words.
pub trait KeyWords: Copy + Eq + Debug + Send + Sync + 'static {
    /// The same words as atomics (a slot of the shared table).
    type Atomic: Send + Sync;
    /// A free slot's words.
    const EMPTY: Self;
    /// Whether these are a stored key's words (bit 0 of the last word).
    fn is_occupied(&self) -> bool;
    /// Word-by-word equality that stops at the first difference: a slot
    /// holding another key (the common case while probing) costs one
    /// compare, where a whole-array compare would read every word.
    fn same(&self, other: &Self) -> bool;
    /// Atomic words, all zero.
    fn new_atomic() -> Self::Atomic;
    /// Every word, relaxed (the shared table's seqlock orders them).
    fn load(a: &Self::Atomic) -> Self;
    /// Store every word, relaxed.
    fn store(a: &Self::Atomic, w: Self);
    /// Whether atomic words hold `w`, loading (relaxed) word by word and
    /// stopping at the first difference: the shared table's cheap filter
    /// before a consistent read.
    fn holds(a: &Self::Atomic, w: &Self) -> bool;
}

impl<const N: usize> KeyWords for [u64; N] {
    type Atomic = [AtomicU64; N];
    const EMPTY: Self = [0; N];

    #[inline(always)]
    fn is_occupied(&self) -> bool {
        self[N - 1] & OCCUPIED != 0
    }

    #[inline(always)]
    fn same(&self, other: &Self) -> bool {
        // Spelled out for the IPv4 key's two words (the hit path's compare,
        // as it was before the tables were generic: an iterator here was
        // left un-unrolled in the out-of-line miss path); a plain loop for
        // longer keys.
        // The last word first: it holds the ports, which tell apart flows
        // that the first word's addresses do not (a client's connections
        // share its address), so another key's slot costs one compare.
        if N == 2 {
            return self[N - 1] == other[N - 1] && self[0] == other[0];
        }
        let mut i = 0;
        while i < N {
            if self[i] != other[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    fn new_atomic() -> Self::Atomic {
        core::array::from_fn(|_| AtomicU64::new(0))
    }

    #[inline(always)]
    fn load(a: &Self::Atomic) -> Self {
        core::array::from_fn(|i| a[i].load(Relaxed))
    }

    #[inline(always)]
    fn store(a: &Self::Atomic, w: Self) {
        for (a, w) in a.iter().zip(w) {
            a.store(w, Relaxed);
        }
    }

    #[inline(always)]
    fn holds(a: &Self::Atomic, w: &Self) -> bool {
        let mut i = 0;
        while i < N {
            if a[i].load(Relaxed) != w[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

/// What a connection table needs of its key type.
pub trait TableKey: Copy + Eq + Hash + Debug + Send + Sync + 'static {
    type Words: KeyWords;
    /// The key packed into its slot words (occupied bit set).
    fn words(&self) -> Self::Words;
    /// The key back from a stored key's words.
    fn from_words(w: &Self::Words) -> Self;
    /// Hash under a table's secret keys (keeps adversarial clients from
    /// aiming at one bucket window; why the hash is what it is:
    /// `keyhash.rs`).
    #[inline(always)]
    fn keyed_hash(&self, keys: &HashKeys) -> u64 {
        Self::hash_words(&self.words(), keys)
    }
    /// [`keyed_hash`](Self::keyed_hash) of a key already packed (the
    /// burst's classifier builds the words straight from the frame and
    /// never packs a key again).
    fn hash_words(w: &Self::Words, keys: &HashKeys) -> u64;
    /// The IP protocol byte (with a shared-table kind marker, if any).
    fn proto(&self) -> u8;
    /// The same key with another protocol byte (how the shared table's
    /// key space marks a kind: `keyspace.rs`).
    fn with_proto(self, proto: u8) -> Self;
}

/// The last word of both families' keys: ports, protocol, occupied bit.
#[inline(always)]
fn tail_word(proto: u8, client_port: u16, vport: u16) -> u64 {
    ((client_port as u64) << 32) | ((vport as u64) << 16) | ((proto as u64) << 8) | OCCUPIED
}

/// (protocol, client port, VIP port) from a last word.
#[inline(always)]
fn from_tail(w: u64) -> (u8, u16, u16) {
    ((w >> 8) as u8, (w >> 32) as u16, (w >> 16) as u16)
}

/// The IPv4 flow key the director tracks: the client→VIP 5-tuple.
/// Addresses in host order. Two words: (client, VIP), (ports, protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub proto: u8,
    pub client_ip: u32,
    pub client_port: u16,
    pub vip: u32,
    pub vport: u16,
}

impl TableKey for ConnKey {
    type Words = [u64; 2];

    #[inline(always)]
    fn words(&self) -> [u64; 2] {
        [
            ((self.client_ip as u64) << 32) | self.vip as u64,
            tail_word(self.proto, self.client_port, self.vport),
        ]
    }

    #[inline]
    fn from_words(w: &[u64; 2]) -> ConnKey {
        let (proto, client_port, vport) = from_tail(w[1]);
        ConnKey {
            proto,
            client_ip: (w[0] >> 32) as u32,
            client_port,
            vip: w[0] as u32,
            vport,
        }
    }

    #[inline(always)]
    fn hash_words(w: &[u64; 2], keys: &HashKeys) -> u64 {
        keys.hash2(w)
    }

    #[inline(always)]
    fn proto(&self) -> u8 {
        self.proto
    }

    #[inline(always)]
    fn with_proto(self, proto: u8) -> Self {
        Self { proto, ..self }
    }
}

impl ConnKey {
    /// The packed words of the key of an IPv4 packet, from two loads of
    /// the frame: `addrs` is the IPv4 header's source and destination
    /// (bytes 12..20) read as one big-endian `u64` — (client, VIP), the
    /// first word as it is — and `ports` the L4 header's first four bytes
    /// read as a big-endian `u32` — (client port, VIP port).
    #[inline(always)]
    pub fn words_of_wire(addrs: u64, ports: u32, proto: u8) -> [u64; 2] {
        [
            addrs,
            ((ports as u64) << 16) | ((proto as u64) << 8) | OCCUPIED,
        ]
    }

    /// The protocol byte of packed IPv4 key words.
    #[inline(always)]
    pub fn proto_of_words(w: &[u64; 2]) -> u8 {
        (w[1] >> 8) as u8
    }
}

/// The IPv6 flow key: the client→VIP 5-tuple with 128-bit addresses (as
/// numbers: the address's octets big-endian). Five words: client (high,
/// low), VIP (high, low), (ports, protocol) — 40 bytes, so an IPv6 entry
/// is 64 bytes, one per cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey6 {
    pub proto: u8,
    pub client_ip: u128,
    pub client_port: u16,
    pub vip: u128,
    pub vport: u16,
}

impl TableKey for ConnKey6 {
    type Words = [u64; 5];

    #[inline(always)]
    fn words(&self) -> [u64; 5] {
        [
            (self.client_ip >> 64) as u64,
            self.client_ip as u64,
            (self.vip >> 64) as u64,
            self.vip as u64,
            tail_word(self.proto, self.client_port, self.vport),
        ]
    }

    #[inline]
    fn from_words(w: &[u64; 5]) -> ConnKey6 {
        let (proto, client_port, vport) = from_tail(w[4]);
        ConnKey6 {
            proto,
            client_ip: ((w[0] as u128) << 64) | w[1] as u128,
            client_port,
            vip: ((w[2] as u128) << 64) | w[3] as u128,
            vport,
        }
    }

    #[inline(always)]
    fn hash_words(w: &[u64; 5], keys: &HashKeys) -> u64 {
        keys.hash5(w)
    }

    #[inline(always)]
    fn proto(&self) -> u8 {
        self.proto
    }

    #[inline(always)]
    fn with_proto(self, proto: u8) -> Self {
        Self { proto, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_words_and_hash() {
        // The layout the IPv4 table has always used; the hash of its words.
        let k = ConnKey {
            proto: 6,
            client_ip: 0xC612_C801,
            client_port: 40000,
            vip: 0xC612_0064,
            vport: 80,
        };
        let k0 = (0xC612_C801u64 << 32) | 0xC612_0064;
        let k1 = (40000u64 << 32) | (80 << 16) | (6 << 8) | 1;
        assert_eq!(k.words(), [k0, k1]);
        let keys = HashKeys::new(7);
        assert_eq!(k.keyed_hash(&keys), keys.hash2(&[k0, k1]));
        assert_eq!(ConnKey::from_words(&k.words()), k);
        let addrs = u64::from_be_bytes([0xC6, 0x12, 0xC8, 0x01, 0xC6, 0x12, 0x00, 0x64]);
        let ports = u32::from_be_bytes([0x9c, 0x40, 0, 80]);
        assert_eq!(ConnKey::words_of_wire(addrs, ports, 6), k.words());
        assert_eq!(ConnKey::proto_of_words(&k.words()), 6);
        assert_eq!(ConnKey::hash_words(&k.words(), &keys), k.keyed_hash(&keys));
    }

    #[test]
    fn v6_words_round_trip_and_every_bit_counts() {
        let k = ConnKey6 {
            proto: 17,
            client_ip: 0x2001_0db8_0000_0000_0000_0000_0000_0001,
            client_port: 5353,
            vip: 0x2001_0db8_0000_0000_0000_0000_0000_0100,
            vport: 53,
        };
        assert!(k.words().is_occupied());
        assert_eq!(ConnKey6::from_words(&k.words()), k);
        // A change in the high or low half of either address changes the
        // hash (a 64-bit truncation would not see the high half).
        for bit in [0, 63, 64, 127] {
            let c = ConnKey6 {
                client_ip: k.client_ip ^ (1 << bit),
                ..k
            };
            let v = ConnKey6 {
                vip: k.vip ^ (1 << bit),
                ..k
            };
            let keys = HashKeys::new(1);
            assert_ne!(c.keyed_hash(&keys), k.keyed_hash(&keys), "client bit {bit}");
            assert_ne!(v.keyed_hash(&keys), k.keyed_hash(&keys), "vip bit {bit}");
        }
        assert!(!<[u64; 5]>::EMPTY.is_occupied());
    }

    #[test]
    fn atomic_words_round_trip() {
        let a = <[u64; 5]>::new_atomic();
        assert_eq!(<[u64; 5]>::load(&a), [0; 5]);
        <[u64; 5]>::store(&a, [1, 2, 3, 4, 5]);
        assert_eq!(<[u64; 5]>::load(&a), [1, 2, 3, 4, 5]);
        assert!(<[u64; 5]>::holds(&a, &[1, 2, 3, 4, 5]));
        assert!(!<[u64; 5]>::holds(&a, &[1, 2, 3, 4, 6]));
        assert!(!<[u64; 5]>::holds(&a, &[0, 2, 3, 4, 5]));
        assert!([7u64, 8].same(&[7, 8]) && ![7u64, 8].same(&[7, 9]) && ![6u64, 8].same(&[7, 8]));
        assert!(
            [1u64, 2, 3, 4, 5].same(&[1, 2, 3, 4, 5]) && ![1u64, 2, 3, 4, 5].same(&[1, 2, 3, 0, 5])
        );
    }
}
