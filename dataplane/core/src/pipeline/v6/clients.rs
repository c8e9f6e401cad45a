//! Where NAT66 replies go: each client's MAC and port as its packets came
//! in, shared by all workers (a reply usually lands on another worker than
//! its request). The IPv6 counterpart of [`ClientMacs`](crate::neigh::ClientMacs),
//! with the same design: a fixed array of slots indexed by a hash of the
//! address, each guarded by a sequence number (a seqlock) so that a reader
//! never takes a torn entry for a client's, and no lock. Written when a
//! NAT66 connection is made (and only if what it holds changed), read per
//! reply: loads only.
//!
//! A slot holds one client: two clients whose addresses hash alike take
//! turns, and the one displaced has its replies dropped
//! (`drop_nat_no_client_mac`) until its next new connection. Size it for
//! the client population (lbd gives it as many slots as IPv4's).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{fence, AtomicU32, AtomicU64};

use crate::wire::MacAddr;

/// The clients' return paths (see the module notes).
pub struct ClientMacs6 {
    slots: Box<[Slot]>,
    mask: usize,
}

#[derive(Default)]
struct Slot {
    /// Odd while a writer is filling the slot.
    version: AtomicU32,
    hi: AtomicU64,
    lo: AtomicU64,
    /// MAC in bits 0..48, port in bits 48..63, bit 63 set when filled.
    hop: AtomicU64,
}

const FILLED: u64 = 1 << 63;

fn pack(mac: MacAddr, port: u16) -> u64 {
    let m = mac.0;
    let mac = u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]);
    FILLED | u64::from(port & 0x7fff) << 48 | mac
}

fn unpack(hop: u64) -> (MacAddr, u16) {
    let b = hop.to_be_bytes();
    (
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]]),
        ((hop >> 48) & 0x7fff) as u16,
    )
}

impl ClientMacs6 {
    /// Room for about `slots` clients (rounded up to a power of two).
    pub fn new(slots: usize) -> ClientMacs6 {
        let n = slots.next_power_of_two().max(16);
        ClientMacs6 {
            slots: (0..n).map(|_| Slot::default()).collect(),
            mask: n - 1,
        }
    }

    #[inline]
    fn slot(&self, ip: u128) -> &Slot {
        let folded = (ip as u64) ^ ((ip >> 64) as u64).rotate_left(29);
        let h = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        &self.slots[h as usize & self.mask]
    }

    /// The (MAC, port) replies to `ip` should use.
    #[inline]
    pub fn get(&self, ip: u128) -> Option<(MacAddr, u16)> {
        let s = self.slot(ip);
        let v1 = s.version.load(Acquire);
        if v1 & 1 == 1 {
            return None;
        }
        let (hi, lo, hop) = (s.hi.load(Relaxed), s.lo.load(Relaxed), s.hop.load(Relaxed));
        fence(Acquire);
        let v2 = s.version.load(Relaxed);
        let same = hi == (ip >> 64) as u64 && lo == ip as u64;
        (v1 == v2 && same && hop & FILLED != 0).then(|| unpack(hop))
    }

    /// Remember that `ip`'s packets arrive from `mac` on `port`.
    pub fn learn(&self, ip: u128, mac: MacAddr, port: u16) {
        if self.get(ip) == Some((mac, port & 0x7fff)) {
            return;
        }
        let s = self.slot(ip);
        let v = s.version.load(Relaxed);
        if v & 1 == 1
            || s.version
                .compare_exchange(v, v.wrapping_add(1), Acquire, Relaxed)
                .is_err()
        {
            return; // another writer has the slot; the next connection retries
        }
        fence(Release);
        s.hi.store((ip >> 64) as u64, Relaxed);
        s.lo.store(ip as u64, Relaxed);
        s.hop.store(pack(mac, port), Relaxed);
        s.version.store(v.wrapping_add(2), Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_updates_and_answers_only_for_its_own_address() {
        let c = ClientMacs6::new(16);
        let a = MacAddr([2, 0, 0, 0, 0, 1]);
        let b = MacAddr([2, 0, 0, 0, 0, 2]);
        let ip = 0x2001_0db8_0001_0000_0000_0000_0000_0001u128;
        assert_eq!(c.get(ip), None);
        c.learn(ip, a, 0);
        assert_eq!(c.get(ip), Some((a, 0)));
        c.learn(ip, b, 3);
        assert_eq!(c.get(ip), Some((b, 3)));
        // Addresses differing only in the high half are told apart.
        assert_eq!(c.get(ip ^ (1 << 100)), None);
        for i in 0..1000u128 {
            c.learn(ip + (i << 64), a, (i % 3) as u16);
            assert_eq!(c.get(ip + (i << 64)), Some((a, (i % 3) as u16)));
        }
        let hits = (0..1000u128)
            .filter(|i| c.get(ip + (i << 64)).is_some())
            .count();
        assert!(hits <= 16);
    }

    #[test]
    fn concurrent_learners_never_give_a_wrong_answer() {
        let c = std::sync::Arc::new(ClientMacs6::new(64));
        let hs: Vec<_> = (0..4u32)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        let n = (i * 7 + t) % 500;
                        let ip = (u128::from(n) << 80) | u128::from(n);
                        let mac = MacAddr([2, 0, 0, 0, (n >> 8) as u8, n as u8]);
                        c.learn(ip, mac, (n % 5) as u16);
                        if let Some(got) = c.get(ip) {
                            assert_eq!(got, (mac, (n % 5) as u16));
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
}
