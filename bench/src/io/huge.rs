//! Real 2 MiB hugepages for `bench io --memory huge`: reserve them, mount a
//! private hugetlbfs for this run's EALs, watch that they are used, and put
//! everything back afterwards.
//!
//! The guard ([`Hugepages`]) undoes what it did when it is dropped, on
//! success and on every error path (`bench io` turns Ctrl-C and SIGTERM
//! into an error, see `interrupt`, so those unwind through it too):
//! the hugepage files of our processes are deleted (DPDK leaves them behind
//! when a process exits, and a file keeps its pages), the mount is
//! detached, and `nr_hugepages` goes down by what we added. It goes down
//! by that amount rather than back to the value read at the start so that
//! someone else's reservation made meanwhile survives us.
//!
//! Only `release` builds abort on panic (the workspace profile), so a
//! panic there skips the guard; every expected failure here is an error
//! value, not a panic.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Size of one hugepage this module deals in.
pub const PAGE_MB: u64 = 2;

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// A field of /proc/meminfo (`HugePages_Free: 12` → 12).
pub fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_field(&text, field)
}

fn meminfo_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Hugetlb memory a process maps, KiB (`HugetlbPages:` of
/// /proc/PID/status); `None` if the process is gone.
pub fn process_hugetlb_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(meminfo_field(&text, "HugetlbPages").unwrap_or(0))
}

/// Transparent huge pages backing a process's anonymous memory, KiB
/// (`AnonHugePages:` of /proc/PID/smaps_rollup).
pub fn process_thp_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some(meminfo_field(&text, "AnonHugePages").unwrap_or(0))
}

/// The system's hugepage counters at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PoolState {
    pub total: u64,
    pub free: u64,
}

impl PoolState {
    pub fn now() -> PoolState {
        PoolState {
            total: meminfo("HugePages_Total").unwrap_or(0),
            free: meminfo("HugePages_Free").unwrap_or(0),
        }
    }
}

/// What a run reserved (the JSON's `hugepages`).
#[derive(Debug, Clone, Serialize)]
pub struct HugeSetup {
    /// 2 MiB pages added to `nr_hugepages` for the run.
    pub pages: u64,
    /// The private hugetlbfs (`--huge-dir`), unmounted at the end.
    pub mount: String,
    /// `-m` of the generator (0: on `--no-huge`) and of the biggest DUT.
    pub gen_mb: u64,
    pub dut_mb: u64,
    /// The system's pool before the reservation, after it, and after the
    /// run gave the pages back.
    pub pool_before: PoolState,
    pub pool_reserved: PoolState,
    pub pool_after: Option<PoolState>,
}

/// Hugepages in use during one DUT run, read at the end of its
/// measurement while the DUT still runs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct HugeUse {
    /// `HugetlbPages` of the DUT's process, KiB (0 on `--no-huge`).
    pub dut_kib: u64,
    /// Its transparent huge pages (`AnonHugePages`), KiB: lbd-thp's
    /// connection table, if the kernel found the pages.
    pub dut_thp_kib: u64,
    /// The same for the generator (this process), read once after its
    /// EAL started.
    pub gen_kib: u64,
    /// The system's pool at that moment: `free` below the reservation's
    /// shows the pages taken.
    pub pool: PoolState,
}

impl HugeUse {
    /// Now, for the DUT process `pid`.
    pub fn of(pid: Option<u32>) -> HugeUse {
        HugeUse {
            dut_kib: pid.and_then(process_hugetlb_kib).unwrap_or(0),
            dut_thp_kib: pid.and_then(process_thp_kib).unwrap_or(0),
            gen_kib: 0,
            pool: PoolState::now(),
        }
    }

    /// An error if the DUT's memory is not what it was started on.
    pub fn check(&self, dut: &str, memory: super::cmdline::MemoryKind) -> Result<(), String> {
        use super::cmdline::MemoryKind;
        match memory {
            MemoryKind::Huge if self.dut_kib == 0 => Err(format!(
                "{dut} was started on hugepages but maps none (HugetlbPages 0)"
            )),
            MemoryKind::NoHuge if self.dut_kib > 0 => Err(format!(
                "{dut} was started with --no-huge but maps {} KiB of hugepages",
                self.dut_kib
            )),
            _ => Ok(()),
        }
    }
}

/// Why hugepages could not be set up.
#[derive(Debug)]
pub enum HugeError {
    NotRoot,
    NoPageSize(Option<u64>),
    Reserve(std::io::Error),
    TooFew { wanted: u64, got: u64, free: u64 },
    Mount(PathBuf, std::io::Error),
}

impl std::fmt::Display for HugeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HugeError::NotRoot => write!(
                f,
                "--memory huge needs root (it reserves hugepages and mounts hugetlbfs)"
            ),
            HugeError::NoPageSize(kib) => write!(
                f,
                "the default hugepage size is {} here; --memory huge uses 2 MiB pages",
                kib.map_or("unknown".to_string(), |k| format!("{k} KiB"))
            ),
            HugeError::Reserve(e) => write!(f, "cannot raise {NR_HUGEPAGES}: {e}"),
            HugeError::TooFew { wanted, got, free } => write!(
                f,
                "the kernel reserved {got} of the {wanted} 2 MiB hugepages this run needs \
                 (HugePages_Free is now {free}): memory is too fragmented or too small; free \
                 some, reserve them at boot (hugepages=N), or run with --memory no-huge"
            ),
            HugeError::Mount(p, e) => write!(f, "cannot mount hugetlbfs on {}: {e}", p.display()),
        }
    }
}

/// Hugepages reserved and a private hugetlbfs mounted, for one run.
pub struct Hugepages {
    /// Pages we added to `nr_hugepages` (0 if enough were free already).
    added: u64,
    mount: PathBuf,
    mounted: bool,
    /// The pool before and right after the reservation.
    pub before: PoolState,
    pub reserved: PoolState,
}

impl Hugepages {
    /// Add `pages` 2 MiB pages to `nr_hugepages`, check that
    /// `HugePages_Free` rose by as many, and mount a hugetlbfs on `mount`.
    pub fn reserve(pages: u64, mount: &Path) -> Result<Hugepages, HugeError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(HugeError::NotRoot);
        }
        let size = meminfo("Hugepagesize");
        if size != Some(PAGE_MB * 1024) {
            return Err(HugeError::NoPageSize(size));
        }
        let before = PoolState::now();
        let mut guard = Hugepages {
            added: 0,
            mount: mount.to_path_buf(),
            mounted: false,
            before,
            reserved: before,
        };
        // Ours on top of whatever others reserved: their free pages are theirs.
        let nr = read_nr().map_err(HugeError::Reserve)?;
        std::fs::write(NR_HUGEPAGES, (nr + pages).to_string()).map_err(HugeError::Reserve)?;
        // What the kernel actually added: it gives fewer when it cannot find
        // enough contiguous 2 MiB blocks.
        // If it cannot be read back, assume all: the guard then takes back
        // what we asked for rather than leaving it reserved.
        guard.added = read_nr().map_or(pages, |now| now.saturating_sub(nr));
        let now = PoolState::now();
        if guard.added < pages || now.free < before.free + pages {
            return Err(HugeError::TooFew {
                wanted: pages,
                got: guard.added,
                free: now.free,
            });
        }
        guard.reserved = now;
        std::fs::create_dir_all(mount).map_err(|e| HugeError::Mount(mount.into(), e))?;
        mount_hugetlbfs(mount).map_err(|e| HugeError::Mount(mount.into(), e))?;
        guard.mounted = true;
        Ok(guard)
    }

    /// The hugetlbfs mount point (`--huge-dir`).
    pub fn dir(&self) -> &Path {
        &self.mount
    }

    /// Delete the hugepage files of EAL file prefix `prefix` (DPDK names
    /// them `<prefix>map_<n>`), which free their pages once no process maps
    /// them. Returns how many were deleted.
    pub fn remove_files(&self, prefix: &str) -> usize {
        remove_matching(&self.mount, |name| name.starts_with(prefix))
    }
}

impl Drop for Hugepages {
    fn drop(&mut self) {
        if self.mounted {
            // Everything on this mount is ours.
            remove_matching(&self.mount, |_| true);
            let Ok(c) = std::ffi::CString::new(self.mount.as_os_str().as_encoded_bytes()) else {
                return;
            };
            // SAFETY: a NUL-terminated path; MNT_DETACH also succeeds if a
            // process we could not stop still maps a page (the kernel
            // frees it when that process exits).
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir(&self.mount);
        if self.added > 0 {
            if let Ok(nr) = read_nr() {
                let _ = std::fs::write(NR_HUGEPAGES, nr.saturating_sub(self.added).to_string());
            }
        }
    }
}

fn read_nr() -> std::io::Result<u64> {
    std::fs::read_to_string(NR_HUGEPAGES)?
        .trim()
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn mount_hugetlbfs(at: &Path) -> std::io::Result<()> {
    let cstr = |s: &[u8]| std::ffi::CString::new(s).map_err(std::io::Error::other);
    let target = cstr(at.as_os_str().as_encoded_bytes())?;
    let fstype = cstr(b"hugetlbfs")?;
    let source = cstr(b"nodev")?;
    let opts = cstr(b"pagesize=2M")?;
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            opts.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn remove_matching(dir: &Path, keep_if: impl Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&keep_if))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Megabytes of EAL memory (`-m`) for a process whose pools hold `mbufs`
/// mbufs: each mbuf is 2 304 bytes (128 of struct, 128 of headroom, 2 048
/// of data) plus the mempool's object header, counted as 2 560 with room
/// to spare, plus 32 MB for EAL's and the driver's own allocations;
/// rounded up to whole 2 MiB pages.
pub fn eal_mb(mbufs: u64) -> u64 {
    let pool = (mbufs * 2560).div_ceil(1 << 20);
    (pool + 32).next_multiple_of(PAGE_MB)
}

/// Pages a run needs: the generator's and the biggest DUT's (DUTs run one
/// after another, and each one's files are deleted when it stops), and
/// 16 pages for what EAL allocates beyond `-m` at run time.
pub fn pages_for(gen_mb: u64, dut_mb: u64) -> u64 {
    (gen_mb + dut_mb) / PAGE_MB + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meminfo_fields() {
        let t = "MemTotal:  100 kB\nHugePages_Total:      40\nHugePages_Free:       12\n\
                 Hugepagesize:       2048 kB\n";
        assert_eq!(meminfo_field(t, "HugePages_Free"), Some(12));
        assert_eq!(meminfo_field(t, "HugePages_Total"), Some(40));
        assert_eq!(meminfo_field(t, "Hugepagesize"), Some(2048));
        assert_eq!(meminfo_field(t, "HugePages"), None);
        assert_eq!(
            meminfo_field("Name: x\nHugetlbPages:\t  6144 kB\n", "HugetlbPages"),
            Some(6144)
        );
    }

    #[test]
    fn memory_is_sized_for_the_pool_in_whole_pages() {
        // 8191 mbufs of 2560 B = 20 MB, + 32.
        assert_eq!(eal_mb(8191), 52);
        assert_eq!(eal_mb(16384), 72);
        assert_eq!(eal_mb(0), 32);
        for m in [1, 8191, 16384, 65536] {
            let mb = eal_mb(m);
            assert_eq!(mb % PAGE_MB, 0);
            assert!(mb * (1 << 20) >= m * 2304 + (32 << 20));
        }
        assert_eq!(pages_for(52, 72), 62 + 16);
    }
}
