//! A connection table shared by all workers, for flows whose packets arrive
//! on more than one queue (NAT replies come back on the internal port, or on
//! another RSS queue).
//!
//! Same geometry as [`super::table::ConnTable`] (32-byte entries with IPv4
//! keys, two per cache line, a window of 4 buckets per key; generic over the
//! key type in the same way, one table per address family), but every word
//! of an entry is an atomic and the entry carries a version in its `meta`
//! word, seqlock style:
//!
//! * **Lookups write nothing and take no lock**: load `meta` (acquire), the
//!   key words and the value, then `meta` again; if it changed, read again.
//!   An odd version means the entry is being written and is skipped.
//! * **Insert** claims a free entry with one compare-and-swap on `meta`
//!   (even → odd), writes key and value, and publishes with a release store
//!   (odd → even, occupied). **Remove** is the same in reverse. Whoever wins
//!   the CAS owns the change; a loser retries elsewhere.
//! * **Updates** of a live entry never touch the key: the value word
//!   (real server and deadline) is one atomic store; the state lives in
//!   `meta` and changes by CAS, so two workers updating the same connection
//!   (request and reply direction) never lose each other's transition.
//!
//! Invariant the callers keep: a given key is inserted by one worker only
//! (the one whose RSS queue receives that flow's first packet), so two
//! threads never race to insert the same key. Lookups and updates may come
//! from anyone.

use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering::*};

use super::key::{ConnKey, KeyWords, TableKey};
use super::keyhash::HashKeys;
use super::keyspace::EntryFlags;
use super::table::{tick_reached, Tick};

const SLOTS_PER_BUCKET: usize = 2;
/// Buckets of one key's window.
pub const PROBE_BUCKETS: usize = 4;
/// How many times a reader re-reads an entry that changed under it.
const READ_RETRIES: usize = 16;

// meta word layout: version in bits 0..32 (odd = being written),
// occupied flag in bit 32, flags in bits 33..41, and in bits 41..64 the
// entry's "aux" field: its state in the low byte (bits 41..49), or for an
// entry inserted with a link ([`SharedConnTable::insert_linked`]: a NAT
// reply entry, which has no state of its own) the linked entry's slot.
const VERSION_MASK: u64 = 0xffff_ffff;
const OCCUPIED: u64 = 1 << 32;
const FLAGS_SHIFT: u32 = 33;
const AUX_SHIFT: u32 = 41;
/// Bits of the aux field.
const AUX_BITS: u32 = 64 - AUX_SHIFT;
/// The aux field's bits above the state byte: kept by a state change.
const AUX_HIGH: u64 = !0 << (AUX_SHIFT + 8);

#[inline]
fn is_writing(meta: u64) -> bool {
    meta & 1 == 1
}

#[inline]
fn state_of(meta: u64) -> u8 {
    (meta >> AUX_SHIFT) as u8
}

#[inline]
fn flags_of(meta: u64) -> EntryFlags {
    EntryFlags::from_bits((meta >> FLAGS_SHIFT) as u8)
}

#[inline]
fn with_state(meta: u64, state: u8, flags: EntryFlags) -> u64 {
    (meta & (VERSION_MASK | OCCUPIED | AUX_HIGH))
        | (state as u64) << AUX_SHIFT
        | (flags.bits() as u64) << FLAGS_SHIFT
}

/// The aux field of a linked entry: the slot `index` plus one (0: no
/// link), or 0 when the slot does not fit (tables of more than 2^23 - 1
/// slots link only their lower slots; the others are found by lookup).
#[inline]
fn link_aux(index: usize) -> u64 {
    let l = index as u64 + 1;
    if l >> AUX_BITS == 0 {
        l
    } else {
        0
    }
}

#[repr(C, align(32))]
struct Slot<K: TableKey> {
    meta: AtomicU64,
    /// The key's words (`key.rs`), written only between the claim and the
    /// publication of the entry.
    key: <K::Words as KeyWords>::Atomic,
    /// Tag (low 16 bits of the entry's version) in bits 48..64, real-server
    /// id in bits 32..48, deadline tick in bits 0..32. The tag lets an
    /// updater holding a stale copy of a removed entry see that the slot now
    /// holds another one, so its update fails instead of corrupting it.
    val: AtomicU64,
}

#[inline]
fn pack_val(version: u64, rs: u32, expires: Tick) -> u64 {
    ((version & 0xffff) << 48) | ((rs as u64 & 0xffff) << 32) | expires as u64
}

#[inline]
fn val_tag(v: u64) -> u64 {
    v >> 48
}

impl<K: TableKey> Default for Slot<K> {
    fn default() -> Self {
        Slot {
            meta: AtomicU64::new(0),
            key: K::Words::new_atomic(),
            val: AtomicU64::new(0),
        }
    }
}

const _: () = assert!(core::mem::size_of::<Slot<ConnKey>>() == 32);
const _: () = assert!(core::mem::size_of::<Slot<super::key::ConnKey6>>() == 64);

/// A consistent copy of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<K: TableKey = ConnKey> {
    pub index: usize,
    pub key: K,
    pub rs: u32,
    pub expires: Tick,
    pub state: u8,
    pub flags: EntryFlags,
    /// The `meta` word read: pass it back to [`SharedConnTable::update_state`]
    /// and [`SharedConnTable::remove`] so they act only on what was seen.
    pub meta: u64,
}

impl<K: TableKey> Entry<K> {
    pub fn is_expired(&self, now: Tick) -> bool {
        tick_reached(now, self.expires)
    }

    /// The slot this entry links to ([`SharedConnTable::insert_linked`]),
    /// if it was inserted with one. Only a hint: the slot may since hold
    /// another entry, which [`SharedConnTable::linked`] detects.
    #[inline]
    pub fn link(&self) -> Option<usize> {
        ((self.meta >> AUX_SHIFT) as usize).checked_sub(1)
    }

    /// Whether this is a connection's request entry, counted in
    /// ActiveConn/InActConn ([`EntryFlags::is_counted`]).
    #[inline]
    pub fn is_counted(&self) -> bool {
        self.flags.is_counted()
    }
}

/// Why an insert failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// No free entry in the key's window, or the table holds its capacity.
    Full,
}

/// The table shared by all workers, for keys of one address family
/// (`SharedConnTable` alone is the IPv4 table).
pub struct SharedConnTable<K: TableKey = ConnKey> {
    slots: Box<[Slot<K>]>,
    bucket_mask: usize,
    /// The hash's secret words, from the seed given to `new`.
    keys: HashKeys,
    len: AtomicUsize,
    capacity: usize,
}

impl<K: TableKey> SharedConnTable<K> {
    pub fn new(capacity: usize, seed: u64) -> SharedConnTable<K> {
        let capacity = capacity.max(16);
        let slots = (capacity + capacity / 4)
            .next_power_of_two()
            .max(SLOTS_PER_BUCKET * PROBE_BUCKETS);
        SharedConnTable {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            bucket_mask: slots / SLOTS_PER_BUCKET - 1,
            keys: HashKeys::new(seed),
            len: AtomicUsize::new(0),
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Live entries (approximate while others insert or remove).
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * core::mem::size_of::<Slot<K>>()
    }

    #[inline]
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
            self.bucket_mask,
            &self.slots,
            SLOTS_PER_BUCKET * core::mem::size_of::<Slot<K>>(),
        )
    }

    #[inline]
    fn window(&self, hash: u64) -> impl Iterator<Item = usize> {
        let home = hash as usize & self.bucket_mask;
        let mask = self.bucket_mask;
        // One range mapped, not nested iterators (`flat_map` compiled to
        // more work per slot).
        (0..PROBE_BUCKETS * SLOTS_PER_BUCKET).map(move |j| {
            ((home + j / SLOTS_PER_BUCKET) & mask) * SLOTS_PER_BUCKET + j % SLOTS_PER_BUCKET
        })
    }

    /// A consistent read of entry `i`, or None if it is free or being written.
    #[inline]
    fn read(&self, i: usize) -> Option<Entry<K>> {
        self.read_as(i, |w| Some(K::from_words(w)))
    }

    /// [`read`](Self::read) of entry `i` if it holds `key`, whose packed
    /// words are `k`: the consistent words are compared as they are and
    /// the entry takes the caller's key, so a lookup neither unpacks the
    /// stored key nor compares it field by field.
    #[inline(always)]
    fn read_key(&self, i: usize, key: &K, k: &K::Words) -> Option<Entry<K>> {
        self.read_as(i, |w| w.same(k).then_some(*key))
    }

    /// A consistent read of entry `i` whose key `key_of` gives from the
    /// stored words (None: not wanted).
    #[inline(always)]
    fn read_as(&self, i: usize, key_of: impl Fn(&K::Words) -> Option<K>) -> Option<Entry<K>> {
        let s = &self.slots[i];
        for _ in 0..READ_RETRIES {
            let m1 = s.meta.load(Acquire);
            if m1 & OCCUPIED == 0 || is_writing(m1) {
                return None;
            }
            let k = K::Words::load(&s.key);
            let v = s.val.load(Relaxed);
            fence(Acquire);
            let m2 = s.meta.load(Relaxed);
            if m1 & VERSION_MASK == m2 & VERSION_MASK && val_tag(v) == m1 & 0xffff {
                // Same version: key and value belong together. (The state
                // may have moved on in m2; report the newer one.)
                return Some(Entry {
                    index: i,
                    key: key_of(&k)?,
                    rs: ((v >> 32) & 0xffff) as u32,
                    expires: v as u32,
                    state: state_of(m2),
                    flags: flags_of(m2),
                    meta: m2,
                });
            }
            std::hint::spin_loop();
        }
        None
    }

    /// The entries (consistent copies) of `buckets` buckets from the home
    /// bucket of `hash`; the first `PROBE_BUCKETS` are the window where a
    /// key with that hash is looked for and inserted.
    pub fn entries_near(&self, hash: u64, buckets: usize) -> impl Iterator<Item = Entry<K>> + '_ {
        let home = hash as usize & self.bucket_mask;
        let mask = self.bucket_mask;
        (0..buckets.min(mask + 1))
            .flat_map(move |i| {
                let b = (home + i) & mask;
                (0..SLOTS_PER_BUCKET).map(move |s| b * SLOTS_PER_BUCKET + s)
            })
            .filter_map(|i| self.read(i))
    }

    /// Bring the cache line of `hash`'s home bucket in ahead of a lookup
    /// (the burst's stage 1, for NAT replies).
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        let home = hash as usize & self.bucket_mask;
        crate::cache::prefetch_at(&self.slots, home * SLOTS_PER_BUCKET);
    }

    /// [`lookup`](Self::lookup) by packed words alone (the entry's key is
    /// unpacked from them only if the caller reads it).
    #[inline(always)]
    pub fn lookup_words(&self, k: &K::Words, hash: u64, now: Tick) -> Option<Entry<K>> {
        self.lookup_packed(&K::from_words(k), k, hash, now)
    }

    /// Find the live entry for `key` (expired entries are not returned).
    #[inline]
    pub fn lookup(&self, key: &K, hash: u64, now: Tick) -> Option<Entry<K>> {
        self.lookup_packed(key, &key.words(), hash, now)
    }

    /// [`lookup`](Self::lookup) for a key whose packed words `k` the caller
    /// holds already (the burst pipeline's flows carry them).
    #[inline]
    pub fn lookup_packed(&self, key: &K, k: &K::Words, hash: u64, now: Tick) -> Option<Entry<K>> {
        let k = *k;
        // The window's slots by two plain loops (what `window` yields: the
        // iterator adapter cost more per probe on the NAT hit path).
        let home = hash as usize & self.bucket_mask;
        for b in 0..PROBE_BUCKETS {
            let first = ((home + b) & self.bucket_mask) * SLOTS_PER_BUCKET;
            for i in first..first + SLOTS_PER_BUCKET {
                let s = &self.slots[i];
                // Cheap filter before the consistent read.
                if !K::Words::holds(&s.key, &k) {
                    continue;
                }
                if let Some(e) = self.read_key(i, key, &k) {
                    return (!e.is_expired(now)).then_some(e);
                }
            }
        }
        None
    }

    /// Insert `key` (which must not be live already). Expired entries in the
    /// window are reclaimed and passed to `evicted` for accounting.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &self,
        key: &K,
        hash: u64,
        rs: u32,
        expires: Tick,
        state: u8,
        flags: EntryFlags,
        now: Tick,
        evicted: impl FnMut(&Entry<K>),
    ) -> Result<usize, InsertError> {
        self.insert_keeping(
            key,
            hash,
            rs,
            expires,
            state,
            flags,
            now,
            |_| false,
            evicted,
        )
    }

    /// [`insert`](Self::insert), leaving the expired entries for which
    /// `keep` is true where they are: for a writer that cannot do their
    /// accounting (the sync thread does not own the workers' counters; a
    /// worker's sweep reclaims them).
    #[allow(clippy::too_many_arguments)]
    pub fn insert_keeping(
        &self,
        key: &K,
        hash: u64,
        rs: u32,
        expires: Tick,
        state: u8,
        flags: EntryFlags,
        now: Tick,
        keep: impl Fn(&Entry<K>) -> bool,
        evicted: impl FnMut(&Entry<K>),
    ) -> Result<usize, InsertError> {
        let aux = u64::from(state);
        self.insert_aux(key, hash, rs, expires, aux, flags, now, keep, evicted)
    }

    /// [`insert`](Self::insert) of an entry without a state of its own (a
    /// NAT reply entry) that links to the entry in slot `link` (its
    /// request entry, just inserted): [`linked`](Self::linked) then reads
    /// that slot directly instead of looking its key up.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_linked(
        &self,
        key: &K,
        hash: u64,
        rs: u32,
        expires: Tick,
        link: usize,
        flags: EntryFlags,
        now: Tick,
        evicted: impl FnMut(&Entry<K>),
    ) -> Result<usize, InsertError> {
        let aux = link_aux(link);
        self.insert_aux(key, hash, rs, expires, aux, flags, now, |_| false, evicted)
    }

    /// The live entry for `key` (packed: `k`) in the slot `from` links
    /// to, if that slot still holds it; None if `from` has no link or the
    /// slot has since been freed or reused (the caller then looks the key
    /// up). Reads one slot: no hash, no probe.
    #[inline(always)]
    pub fn linked(&self, from: &Entry<K>, key: &K, k: &K::Words, now: Tick) -> Option<Entry<K>> {
        let i = from.link()?;
        if i >= self.slots.len() {
            return None;
        }
        self.read_key(i, key, k).filter(|e| !e.is_expired(now))
    }

    /// The insert, with the entry's aux field (its state, or a link).
    #[allow(clippy::too_many_arguments)]
    fn insert_aux(
        &self,
        key: &K,
        hash: u64,
        rs: u32,
        expires: Tick,
        aux: u64,
        flags: EntryFlags,
        now: Tick,
        keep: impl Fn(&Entry<K>) -> bool,
        mut evicted: impl FnMut(&Entry<K>),
    ) -> Result<usize, InsertError> {
        let k = key.words();
        for _attempt in 0..4 {
            // Reclaim expired entries met in the window (including a stale
            // entry for this very key).
            for i in self.window(hash) {
                if let Some(e) = self.read(i) {
                    if e.is_expired(now) && !keep(&e) && self.remove(&e) {
                        evicted(&e);
                    }
                }
            }
            if self.len.load(Relaxed) >= self.capacity {
                return Err(InsertError::Full);
            }
            for i in self.window(hash) {
                let s = &self.slots[i];
                let m = s.meta.load(Relaxed);
                if m & OCCUPIED != 0 || is_writing(m) {
                    continue;
                }
                let claimed = (m & VERSION_MASK) + 1;
                if s.meta
                    .compare_exchange(m, claimed, Acquire, Relaxed)
                    .is_err()
                {
                    continue;
                }
                // The odd version must be visible before any key or value
                // store: a reader that sees new words then sees a changed
                // version and retries (the seqlock writer's fence).
                fence(Release);
                let version = (claimed + 1) & VERSION_MASK;
                K::Words::store(&s.key, k);
                s.val.store(pack_val(version, rs, expires), Relaxed);
                let published =
                    version | OCCUPIED | aux << AUX_SHIFT | (flags.bits() as u64) << FLAGS_SHIFT;
                s.meta.store(published, Release);
                self.len.fetch_add(1, Relaxed);
                return Ok(i);
            }
        }
        Err(InsertError::Full)
    }

    /// Remove the entry `e` was read from, if it is still that entry.
    /// Returns whether this call removed it (exactly one remover wins).
    pub fn remove(&self, e: &Entry<K>) -> bool {
        let s = &self.slots[e.index];
        let mut m = s.meta.load(Relaxed);
        loop {
            if m & OCCUPIED == 0 || is_writing(m) || m & VERSION_MASK != e.meta & VERSION_MASK {
                return false;
            }
            match s.meta.compare_exchange_weak(m, m + 1, Acquire, Relaxed) {
                Ok(_) => break,
                Err(cur) => m = cur,
            }
        }
        // Free: next even version, not occupied.
        s.meta.store((m + 2) & VERSION_MASK, Release);
        self.len.fetch_sub(1, Relaxed);
        true
    }

    /// Set a live entry's deadline. Compare-and-swap on the value word, and
    /// only while it still belongs to the entry `e` was read from; returns
    /// false if the entry is gone. Callers skip the call when the deadline
    /// barely moves (see the pipeline), so a busy flow writes about once a
    /// second, not once a packet.
    #[inline]
    pub fn set_expires(&self, e: &Entry<K>, expires: Tick) -> bool {
        let slot = &self.slots[e.index];
        let mut cur = slot.val.load(Relaxed);
        loop {
            if val_tag(cur) != e.meta & 0xffff {
                return false;
            }
            let new = (cur & !0xffff_ffff) | expires as u64;
            match slot.val.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
    }

    /// Change a live entry's state and flags with `f(old_state, old_flags)`,
    /// atomically against other updaters. Returns (old, new) (state, flags),
    /// or None if the entry is no longer the one `e` was read from.
    pub fn update_state(
        &self,
        e: &Entry<K>,
        mut f: impl FnMut(u8, EntryFlags) -> (u8, EntryFlags),
    ) -> Option<((u8, EntryFlags), (u8, EntryFlags))> {
        let s = &self.slots[e.index];
        let mut m = s.meta.load(Relaxed);
        loop {
            if m & OCCUPIED == 0 || is_writing(m) || m & VERSION_MASK != e.meta & VERSION_MASK {
                return None;
            }
            let old = (state_of(m), flags_of(m));
            let new = f(old.0, old.1);
            if new == old {
                return Some((old, new));
            }
            match s
                .meta
                .compare_exchange_weak(m, with_state(m, new.0, new.1), AcqRel, Relaxed)
            {
                Ok(_) => return Some((old, new)),
                Err(cur) => m = cur,
            }
        }
    }

    /// Buckets in the table.
    pub fn bucket_count(&self) -> usize {
        self.bucket_mask + 1
    }

    /// Visit live (or expired but not yet removed) entries of `count`
    /// buckets from `start`; returns where to continue, None at the end.
    pub fn scan(&self, start: usize, count: usize, mut f: impl FnMut(&Entry<K>)) -> Option<usize> {
        let end = start.saturating_add(count).min(self.bucket_count());
        for i in start * SLOTS_PER_BUCKET..end * SLOTS_PER_BUCKET {
            if let Some(e) = self.read(i) {
                f(&e);
            }
        }
        (end < self.bucket_count()).then_some(end)
    }

    /// Remove expired entries in `count` buckets from `start`, handing each
    /// to `on_expire` (only the remover sees it). Returns where to continue.
    pub fn sweep(
        &self,
        start: usize,
        count: usize,
        now: Tick,
        mut on_expire: impl FnMut(&Entry<K>),
    ) -> usize {
        let n = self.bucket_count();
        let mut b = start % n;
        for _ in 0..count.min(n) {
            for i in b * SLOTS_PER_BUCKET..(b + 1) * SLOTS_PER_BUCKET {
                if let Some(e) = self.read(i) {
                    if e.is_expired(now) && self.remove(&e) {
                        on_expire(&e);
                    }
                }
            }
            b = (b + 1) % n;
        }
        b
    }
}

#[cfg(test)]
mod tests {
    //! Every test runs over both key types (`both!`): the IPv4 and the
    //! IPv6 shared table are one generic implementation.
    use super::*;
    use crate::conntrack::key::ConnKey6;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// The i-th key of an owner (a worker inserting its own flows).
    trait Sample: TableKey {
        fn key(owner: u32, i: u32) -> Self;
    }

    impl Sample for ConnKey {
        fn key(owner: u32, i: u32) -> ConnKey {
            ConnKey {
                proto: 6,
                client_ip: 0xC612_0000 | owner << 8 | (i >> 16),
                client_port: i as u16,
                vip: 0xC612_0064,
                vport: 80,
            }
        }
    }

    impl Sample for ConnKey6 {
        fn key(owner: u32, i: u32) -> ConnKey6 {
            ConnKey6 {
                proto: 6,
                client_ip: (0x2001_0db8u128 << 96) | (owner as u128) << 64 | (i >> 16) as u128,
                client_port: i as u16,
                vip: (0x2001_0db8u128 << 96) | 0x100,
                vport: 80,
            }
        }
    }

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
        insert_lookup_update_remove,
        capacity_is_enforced,
        stress_many_threads_no_entry_lost_or_duplicated,
    );

    /// Stage 1's hint hashes as the table does and prefetches the bucket
    /// `prefetch` and the lookup's window start at.
    fn the_home_hint_is_the_tables_hash_and_home_bucket<K: Sample>() {
        let t = SharedConnTable::<K>::new(4096, 13);
        let hint = t.home_hint();
        for i in 0..2000 {
            let w = K::key(i % 7, i).words();
            let h = hint.hash_and_prefetch(&w);
            assert_eq!(h, t.hash_words(&w));
            let first = t.window(h).next().unwrap();
            let home: *const Slot<K> = &t.slots[first];
            assert_eq!(hint.home_addr(h), home.cast::<u8>());
        }
    }

    fn insert_lookup_update_remove<K: Sample>() {
        let t = SharedConnTable::<K>::new(1024, 7);
        let k = K::key(0, 1);
        let h = t.hash(&k);
        assert!(t.lookup(&k, h, 0).is_none());
        let i = t
            .insert(&k, h, 5, 100, 1, EntryFlags::NONE, 0, |_| panic!())
            .unwrap();
        let e = t.lookup(&k, h, 10).unwrap();
        assert_eq!((e.index, e.rs, e.expires, e.state), (i, 5, 100, 1));
        t.set_expires(&e, 500);
        let r = t.update_state(&e, |_, _| (2, EntryFlags::ACTIVE)).unwrap();
        assert_eq!(r, ((1, EntryFlags::NONE), (2, EntryFlags::ACTIVE)));
        let e = t.lookup(&k, h, 200).unwrap();
        assert_eq!((e.expires, e.state, e.flags), (500, 2, EntryFlags::ACTIVE));
        assert!(
            t.lookup(&k, h, 500).is_none(),
            "expired entries are not returned"
        );
        assert!(t.remove(&e));
        assert!(!t.remove(&e), "a second remove of the same entry fails");
        assert_eq!(t.len(), 0);
        // A stale entry is reclaimed by the next insert in its window.
        t.insert(&k, h, 1, 10, 1, EntryFlags::NONE, 0, |_| panic!())
            .unwrap();
        let mut ev = 0;
        t.insert(&k, h, 2, 100, 1, EntryFlags::NONE, 20, |e| {
            assert_eq!(e.rs, 1);
            ev += 1
        })
        .unwrap();
        assert_eq!(ev, 1);
        assert_eq!(t.lookup(&k, h, 30).unwrap().rs, 2);
        assert_eq!(t.len(), 1);
    }

    /// A linked entry reads its target's slot only while that slot holds
    /// the key asked for: freed or reused, the link gives None (and the
    /// caller looks the key up). A slot beyond the link's 23 bits is not
    /// linked.
    #[test]
    fn a_link_finds_its_entry_and_detects_a_reused_slot() {
        let t = SharedConnTable::<ConnKey>::new(1024, 3);
        let (a, b) = (ConnKey::key(0, 1), ConnKey::key(0, 2));
        let h = t.hash(&a);
        let ia = t
            .insert(&a, h, 5, 100, 2, EntryFlags::ACTIVE, 0, |_| {})
            .unwrap();
        let r = ConnKey::key(1, 1);
        t.insert_linked(&r, t.hash(&r), 9, 200, ia, EntryFlags::REPLY, 0, |_| {})
            .unwrap();
        let re = t.lookup(&r, t.hash(&r), 0).unwrap();
        assert_eq!((re.link(), re.rs, re.expires), (Some(ia), 9, 200));
        let got = t.linked(&re, &a, &a.words(), 0).unwrap();
        assert_eq!(got, t.lookup(&a, h, 0).unwrap(), "the entry a lookup gives");
        assert!(t.linked(&re, &a, &a.words(), 100).is_none(), "expired");
        assert!(t.linked(&re, &b, &b.words(), 0).is_none(), "another key");
        // Freed, then reused by another key: stale.
        assert!(t.remove(&got));
        assert!(t.linked(&re, &a, &a.words(), 0).is_none());
        assert_eq!(
            t.insert(&b, h, 6, 100, 2, EntryFlags::NONE, 0, |_| {}),
            Ok(ia)
        );
        assert!(t.linked(&re, &a, &a.words(), 0).is_none());
        // Unlinked entries (plain inserts with state 0, as from the sync
        // peer) and slots past the field's range have no link.
        assert_eq!(link_aux((1 << AUX_BITS) - 2), (1 << AUX_BITS) - 1);
        assert_eq!(link_aux((1 << AUX_BITS) - 1), 0);
        let u = ConnKey::key(2, 1);
        t.insert(&u, t.hash(&u), 9, 200, 0, EntryFlags::REPLY, 0, |_| {})
            .unwrap();
        assert_eq!(t.lookup(&u, t.hash(&u), 0).unwrap().link(), None);
    }

    fn capacity_is_enforced<K: Sample>() {
        let t = SharedConnTable::<K>::new(100, 1);
        let mut ok = 0;
        for i in 0..200 {
            let k = K::key(0, i);
            if t.insert(&k, t.hash(&k), 0, 1000, 1, EntryFlags::NONE, 0, |_| {})
                .is_ok()
            {
                ok += 1;
            }
        }
        assert!((95..=100).contains(&ok), "{ok}");
    }

    /// Many threads at once: owners insert, re-check and remove their own
    /// keys; other threads look up, update states and sweep everyone's.
    /// No live key may ever be missed, none may exist twice, and the final
    /// content must equal what the owners believe.
    fn stress_many_threads_no_entry_lost_or_duplicated<K: Sample>() {
        const OWNERS: u32 = 4;
        const KEYS: u32 = 20_000;
        let t = Arc::new(SharedConnTable::<K>::new((OWNERS * KEYS) as usize, 99));
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        // Updaters: change states of any key they find (like NAT replies).
        for u in 0..2u32 {
            let (t, stop) = (t.clone(), stop.clone());
            handles.push(std::thread::spawn(move || {
                let mut x = 0x9E37_79B9u32 ^ u;
                let mut updates = 0u64;
                while !stop.load(Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let k = K::key(x % OWNERS, (x >> 8) % KEYS);
                    if let Some(e) = t.lookup(&k, t.hash(&k), 1) {
                        t.update_state(&e, |s, f| (s.wrapping_add(1) | 1, f));
                        t.set_expires(&e, e.expires);
                        updates += 1;
                    }
                }
                updates
            }));
        }
        // Sweepers: remove expired entries (owners make half their keys
        // short-lived).
        for s in 0..2usize {
            let (t, stop) = (t.clone(), stop.clone());
            handles.push(std::thread::spawn(move || {
                let mut at = s * 1000;
                let mut removed = 0u64;
                while !stop.load(Relaxed) {
                    at = t.sweep(at, 64, 1_000, |_| removed += 1);
                }
                removed
            }));
        }
        // Owners.
        let owners: Vec<_> = (0..OWNERS)
            .map(|o| {
                let t = t.clone();
                std::thread::spawn(move || {
                    let mut live = HashSet::new();
                    for round in 0..3u32 {
                        for i in 0..KEYS {
                            let k = K::key(o, i);
                            let h = t.hash(&k);
                            let long = (i + round) % 2 == 0;
                            if live.contains(&i) {
                                // A long-lived key must be found, always.
                                let e = t
                                    .lookup(&k, h, 1)
                                    .unwrap_or_else(|| panic!("owner {o} lost key {i}"));
                                assert_eq!(e.rs, i, "wrong value for key {i}");
                                if !long {
                                    assert!(t.remove(&e) || t.lookup(&k, h, 1).is_none());
                                    live.remove(&i);
                                }
                            } else if t.lookup(&k, h, 1).is_none() {
                                let exp = if long { 1_000_000 } else { 500 };
                                if t.insert(&k, h, i, exp, 1, EntryFlags::NONE, 1, |_| {})
                                    .is_ok()
                                    && long
                                {
                                    live.insert(i);
                                }
                            }
                        }
                    }
                    live
                })
            })
            .collect();
        let mut expected = HashSet::new();
        for (o, h) in owners.into_iter().enumerate() {
            for i in h.join().unwrap() {
                expected.insert(K::key(o as u32, i));
            }
        }
        stop.store(true, Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        // Final scan: every expected key present once; nothing live twice.
        let mut seen = HashSet::new();
        let mut at = Some(0);
        while let Some(s) = at {
            at = t.scan(s, 1024, |e| {
                if !e.is_expired(1) {
                    assert!(seen.insert(e.key), "duplicate entry {:?}", e.key);
                }
            });
        }
        for k in &expected {
            assert!(seen.contains(k), "lost {k:?}");
        }
        assert!(
            expected.len() > 10_000,
            "the test exercised too little: {}",
            expected.len()
        );
    }
}
