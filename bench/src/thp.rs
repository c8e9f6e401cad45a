//! Experiment: back large allocations with transparent huge pages.
//!
//! `lbcore` allocates the connection table with the ordinary allocator, so
//! on a kernel whose THP mode is `madvise` (the common default) the table
//! sits on 4 KiB pages and every random lookup in a large table also misses
//! the TLB. With [`enable`] called first, the benchmark's global allocator
//! asks for huge pages (`madvise(MADV_HUGEPAGE)`) on every allocation of
//! 2 MiB or more before it is first touched — what `lbd` could do by
//! putting the table in DPDK hugepage memory or by madvising it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

static ON: AtomicBool = AtomicBool::new(false);
const HUGE: usize = 2 << 20;

/// Ask for huge pages on large allocations from now on.
pub fn enable() {
    ON.store(true, Relaxed);
}

pub fn enabled() -> bool {
    ON.load(Relaxed)
}

pub struct Alloc;

fn advise(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    {
        let start = (p as usize).next_multiple_of(HUGE);
        let end = (p as usize + size) & !(HUGE - 1);
        if end > start {
            // SAFETY: [start, end) lies inside the allocation just made;
            // MADV_HUGEPAGE changes only how its pages are backed.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, size);
}

// SAFETY: every call is forwarded to `System` unchanged; the only addition
// is an advisory madvise on memory the allocation owns.
unsafe impl GlobalAlloc for Alloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() && layout.size() >= HUGE && enabled() {
            advise(p, layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() && layout.size() >= HUGE && enabled() {
            advise(p, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout)
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        System.realloc(p, layout, new_size)
    }
}
