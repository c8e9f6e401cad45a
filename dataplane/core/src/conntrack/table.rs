//! The connection table: fixed memory, open addressing, no allocation and no
//! locks after start-up.
//!
//! Geometry: entries are 32 bytes; two entries make one 64-byte bucket (one
//! cache line). A key hashes to a home bucket and may live anywhere in a
//! window of [`PROBE_BUCKETS`] consecutive buckets (8 entries, 256 contiguous
//! bytes that the hardware prefetcher streams). Lookups compare two `u64`
//! words per entry (the packed key, whose low bit doubles as "occupied").
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
const OCCUPIED: u64 = 1;

/// The flow key the director tracks: the client→VIP 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub proto: u8,
    pub client_ip: u32,
    pub client_port: u16,
    pub vip: u32,
    pub vport: u16,
}

impl ConnKey {
    #[inline]
    fn words(&self) -> (u64, u64) {
        let k0 = ((self.client_ip as u64) << 32) | self.vip as u64;
        let k1 = ((self.client_port as u64) << 32)
            | ((self.vport as u64) << 16)
            | ((self.proto as u64) << 8)
            | OCCUPIED;
        (k0, k1)
    }

    /// Hash of the key under a per-table seed (keeps adversarial clients from
    /// aiming at one bucket window). Both key words go through a full 64-bit
    /// finalizer: a plain multiply would leave the low bits (the bucket
    /// index) depending only on the VIP and port, which barely vary.
    #[inline(always)]
    pub fn hash(&self, seed: u64) -> u64 {
        let (k0, k1) = self.words();
        mix64(mix64(k0 ^ seed) ^ k1)
    }
}

/// A 64-bit finalizer (xor-shift-multiply rounds): every input bit affects
/// every output bit.
#[inline(always)]
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// One tracked connection (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, align(32))]
pub struct Conn {
    k0: u64,
    k1: u64,
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

const _: () = assert!(core::mem::size_of::<Conn>() == 32);

impl Conn {
    pub fn new(key: &ConnKey, rs: u32, state: u8, now: Tick, expires: Tick) -> Conn {
        let (k0, k1) = key.words();
        Conn {
            k0,
            k1,
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
        self.k1 & OCCUPIED != 0
    }

    pub fn key(&self) -> ConnKey {
        ConnKey {
            proto: (self.k1 >> 8) as u8,
            client_ip: (self.k0 >> 32) as u32,
            client_port: (self.k1 >> 32) as u16,
            vip: self.k0 as u32,
            vport: (self.k1 >> 16) as u16,
        }
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
struct Bucket {
    slots: [Conn; SLOTS_PER_BUCKET],
}

/// Result of looking a key up.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// A live entry for the key, at this slot index.
    Hit(usize),
    /// No live entry; a free slot for it. If an expired entry was evicted to
    /// make the slot (the key's own stale entry, or another), it is returned
    /// for accounting.
    Vacant { slot: usize, evicted: Option<Conn> },
    /// No live entry and no room (window full of live entries, or capacity).
    Full,
}

/// A fixed-capacity connection table owned by one worker.
pub struct ConnTable {
    buckets: Box<[Bucket]>,
    mask: usize,
    seed: u64,
    len: usize,
    capacity: usize,
    sweep_cursor: usize,
}

impl ConnTable {
    /// A table able to hold `capacity` connections. All memory is reserved
    /// (and zeroed) here, never later.
    pub fn new(capacity: usize, seed: u64) -> ConnTable {
        let capacity = capacity.max(16);
        // 25% headroom keeps probe windows from filling before `capacity`.
        let slots = (capacity + capacity / 4).next_power_of_two();
        let n_buckets = (slots / SLOTS_PER_BUCKET).max(PROBE_BUCKETS);
        let buckets = vec![
            Bucket {
                slots: [Conn::default(); SLOTS_PER_BUCKET]
            };
            n_buckets
        ]
        .into_boxed_slice();
        ConnTable {
            buckets,
            mask: n_buckets - 1,
            seed,
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
        self.buckets.len() * core::mem::size_of::<Bucket>()
    }

    #[inline(always)]
    pub fn hash(&self, key: &ConnKey) -> u64 {
        key.hash(self.seed)
    }

    /// Hint the CPU to load the key's home bucket (call a few packets ahead).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        crate::cache::prefetch(&self.buckets[(hash as usize) & self.mask]);
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
    pub fn probe(&mut self, key: &ConnKey, hash: u64, now: Tick) -> Probe {
        let (k0, k1) = key.words();
        // The hit path: find a live entry for the key with two compares per
        // entry and nothing else, in the home window (new entries go there
        // while it has room).
        // (Only the home window here: a miss — every new flow — would
        // otherwise read both windows twice; an entry in the second window
        // is found by `probe_slow`.)
        if let Some(idx) = self.find_live((hash as usize) & self.mask, k0, k1, now) {
            return Probe::Hit(idx);
        }
        self.probe_slow(k0, k1, hash, now)
    }

    /// The slot of a live entry with key words `(k0, k1)` in the window of
    /// bucket `home`.
    #[inline(always)]
    fn find_live(&self, home: usize, k0: u64, k1: u64, now: Tick) -> Option<usize> {
        for i in 0..PROBE_BUCKETS {
            let b = (home + i) & self.mask;
            let bucket = &self.buckets[b];
            for s in 0..SLOTS_PER_BUCKET {
                let c = &bucket.slots[s];
                if c.k0 == k0 && c.k1 == k1 && !c.is_expired(now) {
                    return Some(b * SLOTS_PER_BUCKET + s);
                }
            }
        }
        None
    }

    /// [`probe`](Self::probe) when the home window holds no live entry for
    /// the key: look at both windows, keeping track of room.
    #[inline(never)]
    fn probe_slow(&mut self, k0: u64, k1: u64, hash: u64, now: Tick) -> Probe {
        // Per window: first free entry, first expired entry, free count.
        let mut place = [(None::<usize>, None::<usize>, 0usize); 2];
        for (w, home) in self.homes(hash).into_iter().enumerate() {
            for i in 0..PROBE_BUCKETS {
                let b = (home + i) & self.mask;
                for s in 0..SLOTS_PER_BUCKET {
                    let c = &self.buckets[b].slots[s];
                    let idx = b * SLOTS_PER_BUCKET + s;
                    if c.k0 == k0 && c.k1 == k1 {
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
        let w = if place[0].2 >= 3 || place[0].2 >= place[1].2 {
            0
        } else {
            1
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
    pub fn evict_embryonic(&mut self, hash: u64, now: Tick) -> Option<(usize, Conn)> {
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
    pub fn lookup(&self, key: &ConnKey, hash: u64, now: Tick) -> Option<&Conn> {
        let (k0, k1) = key.words();
        for home in self.homes(hash) {
            for i in 0..PROBE_BUCKETS {
                let b = (home + i) & self.mask;
                for c in &self.buckets[b].slots {
                    if c.k0 == k0 && c.k1 == k1 {
                        return (!c.is_expired(now)).then_some(c);
                    }
                }
            }
        }
        None
    }

    #[inline]
    pub fn get(&self, slot: usize) -> &Conn {
        &self.buckets[slot / SLOTS_PER_BUCKET].slots[slot % SLOTS_PER_BUCKET]
    }

    #[inline]
    pub fn get_mut(&mut self, slot: usize) -> &mut Conn {
        &mut self.buckets[slot / SLOTS_PER_BUCKET].slots[slot % SLOTS_PER_BUCKET]
    }

    /// Store `conn` in a slot returned by [`Probe::Vacant`].
    #[inline]
    pub fn insert_at(&mut self, slot: usize, conn: Conn) {
        debug_assert!(!self.get(slot).is_occupied());
        *self.get_mut(slot) = conn;
        self.len += 1;
    }

    /// Remove and return the entry at `slot`.
    #[inline]
    pub fn take(&mut self, slot: usize) -> Conn {
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
        mut on_expire: impl FnMut(&Conn),
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
        mut f: impl FnMut(&Conn),
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
    pub fn iter(&self) -> impl Iterator<Item = &Conn> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.slots.iter())
            .filter(|c| c.is_occupied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn key(i: u32) -> ConnKey {
        ConnKey {
            proto: 6,
            client_ip: 0xC612_0000 | (i >> 16),
            client_port: i as u16,
            vip: 0xC612_0064,
            vport: 80,
        }
    }

    fn insert(t: &mut ConnTable, k: &ConnKey, rs: u32, now: Tick, ttl: u32) -> bool {
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
        assert_eq!(core::mem::size_of::<Bucket>(), 64);
        assert_eq!(core::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn key_round_trips_through_entry() {
        let k = key(123_456);
        let c = Conn::new(&k, 7, 2, 5, 10);
        assert_eq!(c.key(), k);
        assert!(c.is_occupied());
        assert!(!Conn::default().is_occupied());
    }

    #[test]
    fn read_only_lookup_sees_live_entries_only() {
        let mut t = ConnTable::new(1024, 42);
        let k = key(9);
        assert!(t.lookup(&k, t.hash(&k), 0).is_none());
        assert!(insert(&mut t, &k, 4, 0, 100));
        assert_eq!(t.lookup(&k, t.hash(&k), 99).map(|c| c.rs), Some(4));
        assert!(t.lookup(&key(10), t.hash(&key(10)), 99).is_none());
        assert!(t.lookup(&k, t.hash(&k), 100).is_none(), "expired");
        assert_eq!(t.len(), 1, "left in place");
    }

    #[test]
    fn insert_then_hit_then_expire_on_lookup() {
        let mut t = ConnTable::new(1024, 42);
        let k = key(1);
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

    #[test]
    fn fills_to_capacity_and_refuses_beyond() {
        let cap = 10_000;
        let mut t = ConnTable::new(cap, 7);
        let mut ok = 0;
        for i in 0..cap as u32 {
            if insert(&mut t, &key(i), i, 0, 1000) {
                ok += 1;
            }
        }
        // Nearly all fit (windows of 8 with 25%+ headroom); none beyond capacity.
        assert!(ok >= cap * 99 / 100, "only {ok} of {cap} inserted");
        assert_eq!(t.len(), ok);
        for i in cap as u32..cap as u32 + 100 {
            assert!(!insert(&mut t, &key(i), 0, 0, 1000) || t.len() <= cap);
        }
        assert!(t.len() <= cap);
        // Every inserted key is found with its value.
        let mut found = 0;
        for i in 0..cap as u32 + 100 {
            let k = key(i);
            let h = t.hash(&k);
            if let Probe::Hit(s) = t.probe(&k, h, 1) {
                assert_eq!(t.get(s).rs, if i < cap as u32 { i } else { 0 });
                found += 1;
            }
        }
        assert_eq!(found, t.len());
    }

    #[test]
    fn a_million_connections_fit_without_refusals() {
        let cap = 1 << 20;
        let mut t = ConnTable::new(cap, 12345);
        let mut refused = 0;
        for i in 0..cap as u32 {
            let k = ConnKey {
                proto: 6,
                client_ip: 0x0A00_0000 ^ i.wrapping_mul(2654435761),
                client_port: (i >> 3) as u16,
                vip: 0xC612_0064,
                vport: 80,
            };
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

    #[test]
    fn full_table_recycles_expired_entries() {
        let mut t = ConnTable::new(64, 1);
        let mut n = 0;
        for i in 0..64 {
            if insert(&mut t, &key(i), i, 0, 10) {
                n += 1;
            }
        }
        assert!(n > 0);
        // After expiry, new keys get in by evicting old ones.
        let mut evicted = 0;
        for i in 100..164 {
            let k = key(i);
            let h = t.hash(&k);
            if let Probe::Vacant { slot, evicted: e } = t.probe(&k, h, 20) {
                evicted += e.is_some() as usize;
                t.insert_at(slot, Conn::new(&k, i, 1, 20, 30));
            }
        }
        assert!(evicted > 0);
        assert!(t.len() <= 64);
    }

    #[test]
    fn sweep_expires_incrementally_and_completely() {
        let mut t = ConnTable::new(4096, 9);
        let mut live = 0;
        for i in 0..3000 {
            let ttl = if i % 2 == 0 { 10 } else { 1_000 };
            if insert(&mut t, &key(i), i, 0, ttl) && ttl == 1_000 {
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

    #[test]
    fn scan_in_slices_sees_every_entry_once() {
        let mut t = ConnTable::new(4096, 11);
        for i in 0..3000 {
            insert(&mut t, &key(i), i, 0, 1000);
        }
        let mut seen = std::collections::HashSet::new();
        let mut at = Some(0);
        while let Some(s) = at {
            at = t.scan_buckets(s, 100, |c| assert!(seen.insert(c.rs)));
        }
        assert_eq!(seen.len(), t.len());
    }

    #[test]
    fn wrapping_clock() {
        let c = Conn::new(&key(1), 0, 0, u32::MAX - 5, 4); // deadline after wrap
        assert!(!c.is_expired(u32::MAX - 1));
        assert!(!c.is_expired(3));
        assert!(c.is_expired(4));
        assert!(c.is_expired(1000));
    }

    #[test]
    fn model_check_against_hashmap() {
        // Random operations; the table must agree with a simple model.
        let mut t = ConnTable::new(2048, 3);
        let mut model: HashMap<ConnKey, (u32, Tick)> = HashMap::new();
        let mut x: u64 = 0x1234_5678;
        let mut now: Tick = 0;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            now = now.wrapping_add((x % 3) as u32);
            let k = key((x >> 20) as u32 % 3000);
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
