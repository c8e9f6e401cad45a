//! The connection table: fixed memory, open addressing, no allocation and no
//! locks after start-up.
//!
//! The table is generic over its key type ([`TableKey`]): one instance per
//! address family, monomorphised, so the IPv4 table's code is what it would
//! be written for IPv4 alone (see `key.rs`).
//!
//! Geometry: with IPv4 keys entries are 32 bytes and two make one 64-byte
//! bucket (one cache line); IPv6 entries are 64 bytes (buckets of two
//! lines). A key hashes to a home bucket and may live anywhere in a window
//! of [`PROBE_BUCKETS`] consecutive buckets (8 entries, 256 contiguous bytes
//! for IPv4 that the hardware prefetcher streams). Lookups compare the
//! packed key's words per entry (two for IPv4; the last word's low bit
//! doubles as "occupied").
//!
//! Expiry never stops the world: an expired entry met by a lookup is evicted
//! on the spot, and [`ConnTable::sweep`] walks a bounded number of buckets per
//! call from a cursor, so the worker spreads the scan over its idle polls.
//! Every eviction is handed back to the caller, which owns the accounting
//! (ActiveConn/InActConn per real server).
//!
//! When the window of a new key holds only live entries, or the configured
//! capacity is reached, the insert is refused ([`Probe::Full`]): the new flow
//! is dropped and counted; established flows are never evicted to make room.

/// Milliseconds on the worker's clock (wrapping `u32`).
pub type Tick = u32;

/// Buckets probed for one key.
pub const PROBE_BUCKETS: usize = 4;
/// Buckets searched beyond a key's windows for a half-open entry to evict
/// (SYN-flood defence; bounded, off the hit path).
pub const EVICT_SCAN_BUCKETS: usize = 64;
const SLOTS_PER_BUCKET: usize = 2;

pub use super::key::{ConnKey, ConnKey6, KeyWords, TableKey};
use super::keyhash::HashKeys;

/// One tracked connection: 32 bytes with an IPv4 key, 64 with an IPv6
/// key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct Conn<K: TableKey = ConnKey> {
    /// The key's words; all zero when the slot is free.
    k: K::Words,
    /// Real server id (see `pipeline::snapshot`).
    pub rs: u32,
    /// Tick at which the entry expires unless refreshed.
    pub expires: Tick,
    /// [`super::state::ConnState`] as `u8`.
    pub state: u8,
    /// Whether it is currently counted in ActiveConn (vs InActConn).
    pub active: bool,
    _pad: u16,
    /// Tick at which the entry was created.
    pub created: Tick,
}

const _: () = assert!(core::mem::size_of::<Conn<ConnKey>>() == 32);
const _: () = assert!(core::mem::size_of::<Conn<ConnKey6>>() == 64);

impl<K: TableKey> Default for Conn<K> {
    fn default() -> Self {
        Conn {
            k: K::Words::EMPTY,
            rs: 0,
            expires: 0,
            state: 0,
            active: false,
            _pad: 0,
            created: 0,
        }
    }
}

impl<K: TableKey> Conn<K> {
    pub fn new(key: &K, rs: u32, state: u8, now: Tick, expires: Tick) -> Conn<K> {
        Conn {
            k: key.words(),
            rs,
            expires,
            state,
            active: false,
            _pad: 0,
            created: now,
        }
    }

    #[inline]
    pub fn is_occupied(&self) -> bool {
        self.k.is_occupied()
    }

    pub fn key(&self) -> K {
        K::from_words(&self.k)
    }

    /// Whether the entry has expired at `now` (wrap-safe for timeouts below
    /// 2^31 ms ≈ 24.8 days).
    #[inline]
    pub fn is_expired(&self, now: Tick) -> bool {
        tick_reached(now, self.expires)
    }
}

/// `now` is at or after `deadline`, on a wrapping millisecond clock.
#[inline]
pub fn tick_reached(now: Tick, deadline: Tick) -> bool {
    (now.wrapping_sub(deadline) as i32) >= 0
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket<K: TableKey> {
    slots: [Conn<K>; SLOTS_PER_BUCKET],
}

/// Result of looking a key up.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe<K: TableKey = ConnKey> {
    /// A live entry for the key, at this slot index.
    Hit(usize),
    /// No live entry; a free slot for it. If an expired entry was evicted to
    /// make the slot (the key's own stale entry, or another), it is returned
    /// for accounting.
    Vacant {
        slot: usize,
        evicted: Option<Conn<K>>,
    },
    /// No live entry and no room (window full of live entries, or capacity).
    Full,
}

/// A fixed-capacity connection table owned by one worker, for keys of one
/// address family (`ConnTable` alone is the IPv4 table).
pub struct ConnTable<K: TableKey = ConnKey> {
    buckets: Box<[Bucket<K>]>,
    mask: usize,
    /// The hash's secret words, from the seed given to `new`.
    keys: HashKeys,
    len: usize,
    capacity: usize,
    sweep_cursor: usize,
}

impl<K: TableKey> ConnTable<K> {
    /// A table able to hold `capacity` connections. All memory is reserved
    /// (and zeroed) here, never later.
    pub fn new(capacity: usize, seed: u64) -> ConnTable<K> {
        let capacity = capacity.max(16);
        // 25% headroom keeps probe windows from filling before `capacity`.
        let slots = (capacity + capacity / 4).next_power_of_two();
        let n_buckets = (slots / SLOTS_PER_BUCKET).max(PROBE_BUCKETS);
        let buckets = vec![
            Bucket {
                slots: [Conn::<K>::default(); SLOTS_PER_BUCKET]
            };
            n_buckets
        ]
        .into_boxed_slice();
        ConnTable {
            buckets,
            mask: n_buckets - 1,
            keys: HashKeys::new(seed),
            len: 0,
            capacity,
            sweep_cursor: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes reserved for entries.
    pub fn memory_bytes(&self) -> usize {
        self.buckets.len() * core::mem::size_of::<Bucket<K>>()
    }

    #[inline(always)]
    pub fn hash(&self, key: &K) -> u64 {
        key.keyed_hash(&self.keys)
    }

    /// [`hash`](Self::hash) of a key already packed into its words.
    #[inline(always)]
    pub fn hash_words(&self, words: &K::Words) -> u64 {
        K::hash_words(words, &self.keys)
    }

    /// This table's hash and home-bucket address, for the burst's first
    /// stage ([`HomeHint`](super::home::HomeHint)).
    #[inline(always)]
    pub fn home_hint(&self) -> super::home::HomeHint<'_, K> {
        super::home::HomeHint::new(
            self.keys,
            self.mask,
            &self.buckets,
            core::mem::size_of::<Bucket<K>>(),
        )
    }

    /// Hint the CPU to load the key's home bucket (call a few packets ahead).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        crate::cache::prefetch_at(&self.buckets, (hash as usize) & self.mask);
    }

    /// The key's two home buckets: its entry lives in the window of the
    /// first, or — only when that window was full — of the second.
    #[inline]
    fn homes(&self, hash: u64) -> [usize; 2] {
        let a = (hash as usize) & self.mask;
        let b = ((hash >> 32) as usize).wrapping_mul(0x9E37_79B9) & self.mask;
        [a, b]
    }

    /// Look `key` up (with its precomputed `hash`) at time `now`.
    ///
    /// A hit in the first window (the common case: new entries go there
    /// whenever it has room) reads one 256-byte window; a miss reads both.
    /// A second window squares the odds of refusing a flow because one
    /// window filled up while the table still has room: with a single
    /// window of 8 entries, refusals started at about 11% load at 10 M
    /// entries (bench/RESULTS.md).
    #[inline(always)]
    pub fn probe(&mut self, key: &K, hash: u64, now: Tick) -> Probe<K> {
        self.probe_words(key.words(), hash, now)
    }

    /// [`probe`](Self::probe) for a key already packed into its words (the
    /// burst pipeline's flows carry them, so a hit packs nothing).
    #[inline(always)]
    pub fn probe_words(&mut self, k: K::Words, hash: u64, now: Tick) -> Probe<K> {
        // The hit path: find a live entry for the key with two compares per
        // entry and nothing else, in the home window (new entries go there
        // while it has room).
        // (Only the home window here: a miss — every new flow — would
        // otherwise read both windows twice; an entry in the second window
        // is found by `probe_slow`.)
        if let Some(idx) = self.find_live((hash as usize) & self.mask, k, now) {
            return Probe::Hit(idx);
        }
        self.probe_slow(k, hash, now)
    }

    /// [`probe_words`](Self::probe_words) for a caller that updates the
    /// entry it finds: a live entry of the home window comes as its slot
    /// and the entry itself (`Ok`), found without a second bounds check
    /// and address computation (`get_mut`, measured with callgrind);
    /// anything else as `probe_words` says it (a `Hit` then is in the
    /// second window).
    #[inline(always)]
    pub fn probe_words_mut(
        &mut self,
        k: &K::Words,
        hash: u64,
        now: Tick,
    ) -> Result<(usize, &mut Conn<K>), Probe<K>> {
        let home = (hash as usize) & self.mask;
        match self.find_live_at(home, k, now) {
            Some((b, s)) => {
                let idx = b * SLOTS_PER_BUCKET + s;
                Ok((idx, &mut self.buckets[b].slots[s]))
            }
            None => Err(self.probe_slow(*k, hash, now)),
        }
    }

    /// The slot of a live entry with key words `k` in the window of bucket
    /// `home`.
    #[inline(always)]
    fn find_live(&self, home: usize, k: K::Words, now: Tick) -> Option<usize> {
        self.find_live_at(home, &k, now)
            .map(|(b, s)| b * SLOTS_PER_BUCKET + s)
    }

    /// [`find_live`](Self::find_live)'s entry as bucket and slot in it.
    #[inline(always)]
    fn find_live_at(&self, home: usize, k: &K::Words, now: Tick) -> Option<(usize, usize)> {
        for i in 0..PROBE_BUCKETS {
            let b = (home + i) & self.mask;
            let bucket = &self.buckets[b];
            for s in 0..SLOTS_PER_BUCKET {
                let c = &bucket.slots[s];
                if c.k.same(k) && !c.is_expired(now) {
                    return Some((b, s));
                }
            }
        }
        None
    }

    /// [`probe`](Self::probe) when the home window holds no live entry for
    /// the key: look at both windows, keeping track of room.
    #[inline(never)]
    fn probe_slow(&mut self, k: K::Words, hash: u64, now: Tick) -> Probe<K> {
        if self.len == 0 {
            return self.probe_empty(hash);
        }
        // Per window: first free entry, first expired entry, free count.
        let mut place = [(None::<usize>, None::<usize>, 0usize); 2];
        // The second window first: the home window holds no live entry for
        // the key (`find_live`), so a hit here is in the second, found
        // without scanning the home window again. A key has one entry at
        // most, so the order changes nothing else.
        // (`place` is by scan order: the home window's is `place[1]`.)
        let [home0, home1] = self.homes(hash);
        for (w, home) in [home1, home0].into_iter().enumerate() {
            for i in 0..PROBE_BUCKETS {
                let b = (home + i) & self.mask;
                for s in 0..SLOTS_PER_BUCKET {
                    let c = &self.buckets[b].slots[s];
                    let idx = b * SLOTS_PER_BUCKET + s;
                    if c.k.same(&k) {
                        if !c.is_expired(now) {
                            return Probe::Hit(idx);
                        }
                        let old = self.take(idx);
                        return Probe::Vacant {
                            slot: idx,
                            evicted: Some(old),
                        };
                    }
                    let p = &mut place[w];
                    if !c.is_occupied() {
                        p.0.get_or_insert(idx);
                        p.2 += 1;
                    } else if c.is_expired(now) {
                        p.1.get_or_insert(idx);
                        p.2 += 1;
                    }
                }
            }
        }
        // The home window while it has slack (hits then read one window);
        // otherwise the emptier of the two, which keeps windows from
        // overflowing while the table still has room.
        let w = if place[1].2 >= 3 || place[1].2 >= place[0].2 {
            1
        } else {
            0
        };
        let (free, stale, _) = place[w];
        if let Some(idx) = stale {
            // Recycling an expired entry keeps windows short.
            let old = self.take(idx);
            return Probe::Vacant {
                slot: idx,
                evicted: Some(old),
            };
        }
        match free {
            Some(idx) if self.len < self.capacity => Probe::Vacant {
                slot: idx,
                evicted: None,
            },
            _ => Probe::Full,
        }
    }

    /// [`probe_slow`](Self::probe_slow) on an empty table: nothing to find
    /// and nothing expired, so the scan would choose the home window's
    /// first slot (or refuse, with no capacity). A NAT director's workers
    /// keep their connections in the shared table, so every new NAT
    /// connection gets here with this table empty. Out of line, so that the
    /// scan's callers pay one test.
    #[cold]
    #[inline(never)]
    fn probe_empty(&self, hash: u64) -> Probe<K> {
        if self.capacity == 0 {
            return Probe::Full;
        }
        Probe::Vacant {
            slot: ((hash as usize) & self.mask) * SLOTS_PER_BUCKET,
            evicted: None,
        }
    }

    /// Make room for a new connection whose key hashes to `hash` by evicting
    /// the oldest half-open entry (SYN_RECV: a SYN seen, never an ACK) in
    /// the key's two windows, the ones a new entry may use. Returns its slot
    /// (now free) and the evicted entry, for accounting; `None` if the
    /// windows hold no half-open entry. Established (and every other)
    /// connection is never evicted: under a SYN flood, the attack's own
    /// entries make room for newcomers.
    ///
    /// When the windows hold none but the table is at its capacity (free
    /// slots in the windows, none left in the budget), the oldest half-open
    /// entry of the next [`EVICT_SCAN_BUCKETS`] buckets goes instead: the
    /// caller then probes again and finds the window's free slot.
    pub fn evict_embryonic(&mut self, hash: u64, now: Tick) -> Option<(usize, Conn<K>)> {
        let mut oldest: Option<(usize, u32)> = None;
        for home in self.homes(hash) {
            self.oldest_embryonic(home, PROBE_BUCKETS, now, &mut oldest);
        }
        if oldest.is_none() && self.len >= self.capacity {
            let after = self.homes(hash)[0] + PROBE_BUCKETS;
            self.oldest_embryonic(after, EVICT_SCAN_BUCKETS, now, &mut oldest);
        }
        let (slot, _) = oldest?;
        Some((slot, self.take(slot)))
    }

    /// The oldest half-open entry of `count` buckets from `first` (wrapping),
    /// if older than `oldest`: (slot, age).
    fn oldest_embryonic(
        &self,
        first: usize,
        count: usize,
        now: Tick,
        oldest: &mut Option<(usize, u32)>,
    ) {
        let syn_recv = super::state::ConnState::SynRecv as u8;
        for i in 0..count.min(self.buckets.len()) {
            let b = (first + i) & self.mask;
            for s in 0..SLOTS_PER_BUCKET {
                let c = &self.buckets[b].slots[s];
                if c.is_occupied() && c.state == syn_recv {
                    let age = now.wrapping_sub(c.created);
                    if oldest.is_none_or(|(_, a)| age > a) {
                        *oldest = Some((b * SLOTS_PER_BUCKET + s, age));
                    }
                }
            }
        }
    }

    /// Look `key` up without changing the table (an expired entry is left
    /// for [`probe`](Self::probe) or the sweep to remove): its live entry,
    /// if any.
    #[inline]
    pub fn lookup(&self, key: &K, hash: u64, now: Tick) -> Option<&Conn<K>> {
        let k = key.words();
        for home in self.homes(hash) {
            for i in 0..PROBE_BUCKETS {
                let b = (home + i) & self.mask;
                for c in &self.buckets[b].slots {
                    if c.k.same(&k) {
                        return (!c.is_expired(now)).then_some(c);
                    }
                }
            }
        }
        None
    }

    #[inline]
    pub fn get(&self, slot: usize) -> &Conn<K> {
        &self.buckets[slot / SLOTS_PER_BUCKET].slots[slot % SLOTS_PER_BUCKET]
    }

    #[inline]
    pub fn get_mut(&mut self, slot: usize) -> &mut Conn<K> {
        &mut self.buckets[slot / SLOTS_PER_BUCKET].slots[slot % SLOTS_PER_BUCKET]
    }

    /// Store `conn` in a slot returned by [`Probe::Vacant`].
    #[inline]
    pub fn insert_at(&mut self, slot: usize, conn: Conn<K>) {
        debug_assert!(!self.get(slot).is_occupied());
        *self.get_mut(slot) = conn;
        self.len += 1;
    }

    /// Remove and return the entry at `slot`.
    #[inline]
    pub fn take(&mut self, slot: usize) -> Conn<K> {
        let c = core::mem::take(self.get_mut(slot));
        debug_assert!(c.is_occupied());
        self.len -= 1;
        c
    }

    /// Expire up to `max_buckets` buckets from the sweep cursor, handing each
    /// expired entry to `on_expire`. Returns how many were expired.
    pub fn sweep(
        &mut self,
        now: Tick,
        max_buckets: usize,
        mut on_expire: impl FnMut(&Conn<K>),
    ) -> usize {
        let mut n = 0;
        for _ in 0..max_buckets.min(self.buckets.len()) {
            let b = self.sweep_cursor;
            self.sweep_cursor = (b + 1) & self.mask;
            for s in 0..SLOTS_PER_BUCKET {
                let c = self.buckets[b].slots[s];
                if c.is_occupied() && c.is_expired(now) {
                    self.take(b * SLOTS_PER_BUCKET + s);
                    on_expire(&c);
                    n += 1;
                }
            }
        }
        n
    }

    /// Visit the live entries of `count` buckets from `start` (for listings
    /// done a slice at a time, so a huge table never stalls its worker).
    /// Returns the bucket to continue from, or `None` after the last bucket.
    pub fn scan_buckets(
        &self,
        start: usize,
        count: usize,
        mut f: impl FnMut(&Conn<K>),
    ) -> Option<usize> {
        let end = start.saturating_add(count).min(self.buckets.len());
        for b in &self.buckets[start.min(end)..end] {
            for c in &b.slots {
                if c.is_occupied() {
                    f(c);
                }
            }
        }
        (end < self.buckets.len()).then_some(end)
    }

    /// Buckets in the table (a full sweep takes this many bucket visits).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Every live entry (for listings and shutdown reports; not hot path).
    pub fn iter(&self) -> impl Iterator<Item = &Conn<K>> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.slots.iter())
            .filter(|c| c.is_occupied())
    }
}

#[cfg(test)]
mod tests {
    //! Every behaviour test runs over both key types (`both!` below): the
    //! IPv4 and the IPv6 table are one generic implementation.
    use super::*;
    use std::collections::HashMap;

    /// Keys for the tests: the i-th distinct flow, and a widely spread one.
    trait Sample: TableKey {
        fn nth(i: u32) -> Self;
        fn spread(i: u32) -> Self;
    }

    impl Sample for ConnKey {
        fn nth(i: u32) -> ConnKey {
            ConnKey {
                proto: 6,
                client_ip: 0xC612_0000 | (i >> 16),
                client_port: i as u16,
                vip: 0xC612_0064,
                vport: 80,
            }
        }
        fn spread(i: u32) -> ConnKey {
            ConnKey {
                proto: 6,
                client_ip: 0x0A00_0000 ^ i.wrapping_mul(2654435761),
                client_port: (i >> 3) as u16,
                vip: 0xC612_0064,
                vport: 80,
            }
        }
    }

    /// 2001:db8::/32 clients and VIP; the varying bits sit in both halves
    /// of the client address.
    impl Sample for ConnKey6 {
        fn nth(i: u32) -> ConnKey6 {
            ConnKey6 {
                proto: 6,
                client_ip: (0x2001_0db8u128 << 96) | ((i >> 16) as u128) << 64 | 1,
                client_port: i as u16,
                vip: (0x2001_0db8u128 << 96) | 0x100,
                vport: 80,
            }
        }
        fn spread(i: u32) -> ConnKey6 {
            ConnKey6 {
                proto: 6,
                client_ip: (0x2001_0db8u128 << 96) | (i.wrapping_mul(2654435761) as u128),
                client_port: (i >> 3) as u16,
                vip: (0x2001_0db8u128 << 96) | 0x100,
                vport: 80,
            }
        }
    }

    /// Stage 1's hint hashes as the table does and prefetches the home
    /// bucket the table looks the key up in first.
    fn the_home_hint_is_the_tables_hash_and_home_bucket<K: Sample>() {
        let t = ConnTable::<K>::new(4096, 11);
        let hint = t.home_hint();
        for i in 0..2000 {
            let w = K::spread(i).words();
            let h = hint.hash_and_prefetch(&w);
            assert_eq!(h, t.hash_words(&w));
            let home: *const Bucket<K> = &t.buckets[t.homes(h)[0]];
            assert_eq!(hint.home_addr(h), home.cast::<u8>());
        }
    }

    /// Instantiate each generic test for the IPv4 and the IPv6 key.
    macro_rules! both {
        ($($name:ident),* $(,)?) => {
            mod v4 {
                $(#[test] fn $name() { super::$name::<super::ConnKey>() })*
            }
            mod v6 {
                $(#[test] fn $name() { super::$name::<super::ConnKey6>() })*
            }
        };
    }

    both!(
        the_home_hint_is_the_tables_hash_and_home_bucket,
        an_empty_table_answers_as_the_scan_would,
        key_round_trips_through_entry,
        read_only_lookup_sees_live_entries_only,
        insert_then_hit_then_expire_on_lookup,
        fills_to_capacity_and_refuses_beyond,
        a_million_connections_fit_without_refusals,
        full_table_recycles_expired_entries,
        sweep_expires_incrementally_and_completely,
        scan_in_slices_sees_every_entry_once,
        wrapping_clock,
        model_check_against_hashmap,
    );

    fn insert<K: TableKey>(t: &mut ConnTable<K>, k: &K, rs: u32, now: Tick, ttl: u32) -> bool {
        let h = t.hash(k);
        match t.probe(k, h, now) {
            Probe::Vacant { slot, .. } => {
                t.insert_at(slot, Conn::new(k, rs, 1, now, now.wrapping_add(ttl)));
                true
            }
            Probe::Hit(_) => panic!("unexpected hit"),
            Probe::Full => false,
        }
    }

    #[test]
    fn layout() {
        assert_eq!(core::mem::size_of::<Bucket<ConnKey>>(), 64);
        assert_eq!(core::mem::align_of::<Bucket<ConnKey>>(), 64);
        assert_eq!(core::mem::size_of::<Bucket<ConnKey6>>(), 128);
        assert_eq!(core::mem::align_of::<Bucket<ConnKey6>>(), 64);
    }

    fn an_empty_table_answers_as_the_scan_would<K: Sample>() {
        // The empty table's shortcut gives the slot the full scan gives
        // when the table holds something elsewhere (but nothing in the
        // key's windows).
        let mut empty = ConnTable::<K>::new(1024, 42);
        for i in 0..200 {
            let k = K::spread(i);
            let h = empty.hash(&k);
            let mut other = ConnTable::<K>::new(1024, 42);
            let far = (0..).map(K::spread).find(|f| {
                let fh = other.hash(f);
                let d = ((fh as usize) & other.mask).wrapping_sub((h as usize) & other.mask)
                    & other.mask;
                d > PROBE_BUCKETS
                    && d < other.mask + 1 - PROBE_BUCKETS
                    && other.homes(fh)[1].abs_diff(other.homes(h)[0]) > PROBE_BUCKETS
                    && other.homes(fh)[1].abs_diff(other.homes(h)[1]) > PROBE_BUCKETS
                    && other.homes(h)[1].abs_diff(other.homes(fh)[0]) > PROBE_BUCKETS
            });
            let far = far.unwrap();
            assert!(insert(&mut other, &far, 1, 0, 100));
            assert_eq!(empty.probe(&k, h, 5), other.probe(&k, h, 5), "key {i}");
        }
    }

    fn key_round_trips_through_entry<K: Sample>() {
        let k = K::nth(123_456);
        let c = Conn::new(&k, 7, 2, 5, 10);
        assert_eq!(c.key(), k);
        assert!(c.is_occupied());
        assert!(!Conn::<K>::default().is_occupied());
    }

    fn read_only_lookup_sees_live_entries_only<K: Sample>() {
        let mut t = ConnTable::<K>::new(1024, 42);
        let k = K::nth(9);
        assert!(t.lookup(&k, t.hash(&k), 0).is_none());
        assert!(insert(&mut t, &k, 4, 0, 100));
        assert_eq!(t.lookup(&k, t.hash(&k), 99).map(|c| c.rs), Some(4));
        assert!(t.lookup(&K::nth(10), t.hash(&K::nth(10)), 99).is_none());
        assert!(t.lookup(&k, t.hash(&k), 100).is_none(), "expired");
        assert_eq!(t.len(), 1, "left in place");
    }

    fn insert_then_hit_then_expire_on_lookup<K: Sample>() {
        let mut t = ConnTable::<K>::new(1024, 42);
        let k = K::nth(1);
        assert!(insert(&mut t, &k, 3, 0, 100));
        let h = t.hash(&k);
        match t.probe(&k, h, 50) {
            Probe::Hit(s) => assert_eq!(t.get(s).rs, 3),
            p => panic!("{p:?}"),
        }
        // Past its deadline the entry is evicted and handed back.
        match t.probe(&k, h, 100) {
            Probe::Vacant {
                evicted: Some(c), ..
            } => assert_eq!(c.rs, 3),
            p => panic!("{p:?}"),
        }
        assert_eq!(t.len(), 0);
    }

    fn fills_to_capacity_and_refuses_beyond<K: Sample>() {
        let cap = 10_000;
        let mut t = ConnTable::<K>::new(cap, 7);
        let mut ok = 0;
        for i in 0..cap as u32 {
            if insert(&mut t, &K::nth(i), i, 0, 1000) {
                ok += 1;
            }
        }
        // Nearly all fit (windows of 8 with 25%+ headroom); none beyond capacity.
        assert!(ok >= cap * 99 / 100, "only {ok} of {cap} inserted");
        assert_eq!(t.len(), ok);
        for i in cap as u32..cap as u32 + 100 {
            assert!(!insert(&mut t, &K::nth(i), 0, 0, 1000) || t.len() <= cap);
        }
        assert!(t.len() <= cap);
        // Every inserted key is found with its value.
        let mut found = 0;
        for i in 0..cap as u32 + 100 {
            let k = K::nth(i);
            let h = t.hash(&k);
            if let Probe::Hit(s) = t.probe(&k, h, 1) {
                assert_eq!(t.get(s).rs, if i < cap as u32 { i } else { 0 });
                found += 1;
            }
        }
        assert_eq!(found, t.len());
    }

    fn a_million_connections_fit_without_refusals<K: Sample>() {
        let cap = 1 << 20;
        let mut t = ConnTable::<K>::new(cap, 12345);
        let mut refused = 0;
        for i in 0..cap as u32 {
            let k = K::spread(i);
            let h = t.hash(&k);
            match t.probe(&k, h, 0) {
                Probe::Vacant { slot, .. } => t.insert_at(slot, Conn::new(&k, 0, 1, 0, 1000)),
                Probe::Full => refused += 1,
                Probe::Hit(_) => {}
            }
        }
        // Two windows: (nearly) every flow up to the capacity finds a place.
        assert!(refused * 10_000 <= cap, "{refused} of {cap} refused");
    }

    fn full_table_recycles_expired_entries<K: Sample>() {
        let mut t = ConnTable::<K>::new(64, 1);
        let mut n = 0;
        for i in 0..64 {
            if insert(&mut t, &K::nth(i), i, 0, 10) {
                n += 1;
            }
        }
        assert!(n > 0);
        // After expiry, new keys get in by evicting old ones.
        let mut evicted = 0;
        for i in 100..164 {
            let k = K::nth(i);
            let h = t.hash(&k);
            if let Probe::Vacant { slot, evicted: e } = t.probe(&k, h, 20) {
                evicted += e.is_some() as usize;
                t.insert_at(slot, Conn::new(&k, i, 1, 20, 30));
            }
        }
        assert!(evicted > 0);
        assert!(t.len() <= 64);
    }

    fn sweep_expires_incrementally_and_completely<K: Sample>() {
        let mut t = ConnTable::<K>::new(4096, 9);
        let mut live = 0;
        for i in 0..3000 {
            let ttl = if i % 2 == 0 { 10 } else { 1_000 };
            if insert(&mut t, &K::nth(i), i, 0, ttl) && ttl == 1_000 {
                live += 1;
            }
        }
        let mut expired = Vec::new();
        let mut visits = 0;
        while visits < t.bucket_count() {
            t.sweep(500, 16, |c| expired.push(c.rs));
            visits += 16;
        }
        assert!(expired.iter().all(|rs| rs % 2 == 0));
        assert_eq!(t.len(), live);
        assert_eq!(t.iter().count(), live);
    }

    fn scan_in_slices_sees_every_entry_once<K: Sample>() {
        let mut t = ConnTable::<K>::new(4096, 11);
        for i in 0..3000 {
            insert(&mut t, &K::nth(i), i, 0, 1000);
        }
        let mut seen = std::collections::HashSet::new();
        let mut at = Some(0);
        while let Some(s) = at {
            at = t.scan_buckets(s, 100, |c| assert!(seen.insert(c.rs)));
        }
        assert_eq!(seen.len(), t.len());
    }

    fn wrapping_clock<K: Sample>() {
        let c = Conn::new(&K::nth(1), 0, 0, u32::MAX - 5, 4); // deadline after wrap
        assert!(!c.is_expired(u32::MAX - 1));
        assert!(!c.is_expired(3));
        assert!(c.is_expired(4));
        assert!(c.is_expired(1000));
    }

    fn model_check_against_hashmap<K: Sample>() {
        // Random operations; the table must agree with a simple model.
        let mut t = ConnTable::<K>::new(2048, 3);
        let mut model: HashMap<K, (u32, Tick)> = HashMap::new();
        let mut x: u64 = 0x1234_5678;
        let mut now: Tick = 0;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            now = now.wrapping_add((x % 3) as u32);
            let k = K::nth((x >> 20) as u32 % 3000);
            let h = t.hash(&k);
            let model_live = model
                .get(&k)
                .filter(|(_, e)| !tick_reached(now, *e))
                .copied();
            match t.probe(&k, h, now) {
                Probe::Hit(s) => {
                    let (rs, _) = model_live.expect("table hit, model has no live entry");
                    assert_eq!(t.get(s).rs, rs);
                }
                Probe::Vacant { slot, evicted } => {
                    assert!(model_live.is_none());
                    if let Some(e) = evicted {
                        let removed = model.remove(&e.key());
                        assert!(removed.is_some(), "evicted an unknown entry");
                    }
                    let rs = (x >> 40) as u32;
                    let exp = now.wrapping_add(1 + (x % 200) as u32);
                    t.insert_at(slot, Conn::new(&k, rs, 1, now, exp));
                    model.insert(k, (rs, exp));
                }
                Probe::Full => assert!(model_live.is_none()),
            }
            if x.is_multiple_of(7) {
                t.sweep(now, 8, |c| {
                    assert!(model.remove(&c.key()).is_some());
                });
            }
            assert_eq!(t.len(), model.len());
        }
    }
}
