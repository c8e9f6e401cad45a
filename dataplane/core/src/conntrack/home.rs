//! Where a key's home bucket is, for the burst's first stage: the hash and
//! the bucket prefetch of whichever table a flow is looked up in first (the
//! worker's own, or on a NAT director the shared one), chosen once per
//! burst rather than per frame.
//!
//! Both tables hash a key the same way (their own secret words,
//! [`TableKey::hash_words`]) and keep their home buckets in one array at a
//! fixed stride, so one description serves both: the keys, the bucket
//! mask, the array's address and the stride. Stage 1 then carries no test
//! of which table per frame (measured with callgrind: the test and the
//! registers it held cost the DR path).

use core::marker::PhantomData;

use super::keyhash::HashKeys;
use super::TableKey;

/// A table's hash and home-bucket address (see the module documentation),
/// valid while the table is borrowed.
#[derive(Debug, Clone, Copy)]
pub struct HomeHint<'a, K: TableKey> {
    keys: HashKeys,
    mask: usize,
    /// Bytes from one home bucket to the next.
    stride: usize,
    /// The first home bucket. Only ever prefetched (a hint, never read),
    /// so an address, not a reference.
    base: *const u8,
    table: PhantomData<&'a K>,
}

impl<'a, K: TableKey> HomeHint<'a, K> {
    /// The hint of a table whose home bucket `h & mask` is element
    /// `h & mask` of `buckets` (element: one bucket, or the first slot of
    /// one with `stride` the bucket's size).
    #[inline(always)]
    pub(crate) fn new<T>(keys: HashKeys, mask: usize, buckets: &'a [T], stride: usize) -> Self {
        HomeHint {
            keys,
            mask,
            stride,
            base: buckets.as_ptr().cast(),
            table: PhantomData,
        }
    }

    /// The table's hash of `words` (its `hash_words`), after asking the CPU
    /// for the key's home bucket.
    #[inline(always)]
    pub fn hash_and_prefetch(&self, words: &K::Words) -> u64 {
        let h = K::hash_words(words, &self.keys);
        crate::cache::prefetch_addr(self.home_addr(h));
        h
    }

    /// The address of the home bucket of hash `h` (computed, not read).
    #[inline(always)]
    pub fn home_addr(&self, h: u64) -> *const u8 {
        self.base
            .wrapping_add((h as usize & self.mask).wrapping_mul(self.stride))
    }
}
