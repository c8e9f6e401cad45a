//! The neighbour table: real servers' (and gateways') MAC addresses, for
//! both address families.
//!
//! The director resolves real servers itself. Workers read a neighbour's MAC
//! on every forwarded packet and learn MACs from ARP (IPv4) and Neighbour
//! Discovery (IPv6) they receive; the control thread decides when to ask
//! (an ARP request or a Neighbour Solicitation: unresolved, asked for by a
//! worker, or due for refresh) and when to forget a silent neighbour.
//!
//! A slot holds a MAC whatever the family: its address is kept as 128 bits,
//! an IPv4 address in its IPv4-mapped form (`::ffff:a.b.c.d`, which no IPv6
//! neighbour can have), so one table, one slot numbering and one expiry
//! serve both families.
//!
//! Every slot field is a single atomic word, so readers never see a torn MAC
//! and nobody takes a lock: a worker's read is one relaxed load. Slots are
//! assigned by the control plane (see `pipeline::snapshot::Registry`) and
//! never move, so a snapshot can name them by index.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

use crate::conntrack::{tick_reached, Tick};
use crate::wire::MacAddr;

const VALID: u64 = 1 << 63;

struct Slot {
    /// MAC in the low 48 bits, `VALID` when resolved.
    mac: AtomicU64,
    /// Tick of the last ARP or NDP heard from this neighbour.
    confirmed: AtomicU32,
    /// Tick of the last ARP request or solicitation sent for it.
    requested: AtomicU32,
    /// A worker had a packet for it while unresolved: resolve now.
    wanted: AtomicBool,
}

/// Fixed-size table of neighbours shared by workers and the control thread.
pub struct NeighTable {
    slots: Box<[Slot]>,
    /// Each slot's address as 128 bits (high, low words; see
    /// [`addr_bits`]); 0 = slot unused. Apart from the slots, which the
    /// hot path reads: a slot stays 24 bytes, as it was with IPv4
    /// addresses only.
    addrs: Box<[[AtomicU64; 2]]>,
    /// Bumped after every change of a slot's MAC (learned, expired,
    /// assigned, released): workers keep per-server forward plans made
    /// from the MACs and drop them when it moves (`pipeline::fwd_cache`).
    generation: AtomicU64,
}

/// What the control thread should do for one neighbour at a tick: ask for
/// its MAC, by an ARP request (IPv4) or a Neighbour Solicitation (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRequest {
    pub slot: usize,
    pub ip: IpAddr,
}

/// Snapshot of one entry, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighEntry {
    pub slot: usize,
    pub ip: IpAddr,
    pub mac: Option<MacAddr>,
    pub confirmed: Tick,
}

/// An address as a slot stores it: IPv6 as its 128 bits, IPv4 mapped
/// (`::ffff:a.b.c.d`). Never 0 for an address a slot is bound to (the
/// unspecified address is no neighbour's).
#[inline]
fn addr_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address a slot's bits stand for (the inverse of [`addr_bits`]).
fn bits_addr(bits: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(bits);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn pack(mac: MacAddr) -> u64 {
    let b = mac.0;
    VALID
        | (b[0] as u64) << 40
        | (b[1] as u64) << 32
        | (b[2] as u64) << 24
        | (b[3] as u64) << 16
        | (b[4] as u64) << 8
        | b[5] as u64
}

fn unpack(v: u64) -> MacAddr {
    MacAddr([
        (v >> 40) as u8,
        (v >> 32) as u8,
        (v >> 24) as u8,
        (v >> 16) as u8,
        (v >> 8) as u8,
        v as u8,
    ])
}

impl NeighTable {
    pub fn new(capacity: usize) -> NeighTable {
        let slots = (0..capacity)
            .map(|_| Slot {
                mac: AtomicU64::new(0),
                confirmed: AtomicU32::new(0),
                requested: AtomicU32::new(0),
                wanted: AtomicBool::new(false),
            })
            .collect();
        let addrs = (0..capacity)
            .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
            .collect();
        NeighTable {
            slots,
            addrs,
            generation: AtomicU64::new(0),
        }
    }

    /// The generation of the slots' MACs: it moves after every change of
    /// one (read between bursts: a worker's forward plans are valid while
    /// it stays).
    #[inline(always)]
    pub fn generation(&self) -> u64 {
        self.generation.load(Acquire)
    }

    /// A slot's MAC changed: readers of [`generation`](Self::generation)
    /// that see the new value see the new MAC.
    fn changed(&self) {
        self.generation.fetch_add(1, Release);
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The address slot `slot` is bound to, as bits (0: unused). The two
    /// words are read separately: a slot rebound while a worker learns may
    /// give a mix of old and new, which matches no address a frame
    /// carries, so the learn is ignored (the next ARP/NA is not).
    #[inline]
    fn bound(&self, slot: usize) -> u128 {
        let a = &self.addrs[slot];
        ((a[0].load(Relaxed) as u128) << 64) | a[1].load(Relaxed) as u128
    }

    /// Control plane: bind a slot to an address of either family (clears
    /// any old state).
    pub fn assign(&self, slot: usize, ip: impl Into<IpAddr>) {
        let bits = addr_bits(ip.into());
        let s = &self.slots[slot];
        s.mac.store(0, Relaxed);
        s.wanted.store(true, Relaxed);
        self.addrs[slot][0].store((bits >> 64) as u64, Relaxed);
        self.addrs[slot][1].store(bits as u64, Relaxed);
        self.changed();
    }

    /// Control plane: free a slot.
    pub fn release(&self, slot: usize) {
        let s = &self.slots[slot];
        self.addrs[slot][0].store(0, Relaxed);
        self.addrs[slot][1].store(0, Relaxed);
        s.mac.store(0, Relaxed);
        s.wanted.store(false, Relaxed);
        self.changed();
    }

    /// Hot path: the resolved MAC of a neighbour, if any.
    #[inline(always)]
    pub fn mac(&self, slot: usize) -> Option<MacAddr> {
        let v = self.slots[slot].mac.load(Relaxed);
        (v & VALID != 0).then(|| unpack(v))
    }

    /// Hot path: ask the control thread to resolve this neighbour soon.
    #[inline]
    pub fn want(&self, slot: usize) {
        let w = &self.slots[slot].wanted;
        if !w.load(Relaxed) {
            w.store(true, Relaxed);
        }
    }

    /// A worker heard from `ip` with `mac`: ARP (reply, request or
    /// gratuitous), or a Neighbour Advertisement or Solicitation carrying a
    /// link-layer address. Ignored unless `slot` is bound to `ip`.
    #[inline]
    pub fn learn(&self, slot: usize, ip: impl Into<IpAddr>, mac: MacAddr, now: Tick) {
        let s = &self.slots[slot];
        if self.bound(slot) != addr_bits(ip.into()) || mac.is_multicast() || mac == MacAddr::ZERO {
            return;
        }
        let v = pack(mac);
        if s.mac.load(Relaxed) != v {
            s.mac.store(v, Relaxed);
            self.changed();
        }
        s.confirmed.store(now, Relaxed);
        if s.wanted.load(Relaxed) {
            s.wanted.store(false, Relaxed);
        }
    }

    /// Control plane, called periodically: expire silent neighbours and list
    /// the ARP requests to send now. A neighbour is asked again when it is
    /// unresolved or wanted (at most every `retry_ms`), or when its last
    /// confirmation is older than `refresh_ms`; it is forgotten when older
    /// than `expire_ms`.
    pub fn tick(
        &self,
        now: Tick,
        retry_ms: u32,
        refresh_ms: u32,
        expire_ms: u32,
        out: &mut Vec<ArpRequest>,
    ) {
        for (i, s) in self.slots.iter().enumerate() {
            let ip = self.bound(i);
            if ip == 0 {
                continue;
            }
            let resolved = s.mac.load(Relaxed) & VALID != 0;
            let confirmed = s.confirmed.load(Relaxed);
            if resolved && tick_reached(now, confirmed.wrapping_add(expire_ms)) {
                s.mac.store(0, Relaxed);
                self.changed();
            }
            let resolved = s.mac.load(Relaxed) & VALID != 0;
            let due = !resolved
                || s.wanted.load(Relaxed)
                || tick_reached(now, confirmed.wrapping_add(refresh_ms));
            let last = s.requested.load(Relaxed);
            let may_ask = last == 0 || tick_reached(now, last.wrapping_add(retry_ms));
            if due && may_ask {
                s.requested.store(now.max(1), Relaxed);
                out.push(ArpRequest {
                    slot: i,
                    ip: bits_addr(ip),
                });
            }
        }
    }

    /// Bound entries, for listings and metrics.
    pub fn entries(&self) -> Vec<NeighEntry> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let ip = self.bound(i);
                (ip != 0).then(|| {
                    let v = s.mac.load(Relaxed);
                    NeighEntry {
                        slot: i,
                        ip: bits_addr(ip),
                        mac: (v & VALID != 0).then(|| unpack(v)),
                        confirmed: s.confirmed.load(Relaxed),
                    }
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);

    #[test]
    fn resolve_learn_refresh_expire() {
        let t = NeighTable::new(4);
        t.assign(1, IP);
        assert_eq!(t.mac(1), None);
        let mut out = Vec::new();
        t.tick(1000, 1000, 30_000, 90_000, &mut out);
        assert_eq!(
            out,
            [ArpRequest {
                slot: 1,
                ip: IP.into()
            }]
        );
        // Retry is rate limited.
        out.clear();
        t.tick(1500, 1000, 30_000, 90_000, &mut out);
        assert!(out.is_empty());
        // A reply resolves it; nothing to ask until the refresh is due.
        t.learn(1, IP, MAC, 1600);
        assert_eq!(t.mac(1), Some(MAC));
        t.tick(20_000, 1000, 30_000, 90_000, &mut out);
        assert!(out.is_empty());
        t.tick(31_600, 1000, 30_000, 90_000, &mut out);
        assert_eq!(out.len(), 1);
        // Silent past expiry: forgotten, asked again.
        out.clear();
        t.tick(91_600, 1000, 30_000, 90_000, &mut out);
        assert_eq!(t.mac(1), None);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn the_generation_moves_with_every_mac_change_and_only_then() {
        let t = NeighTable::new(2);
        let g0 = t.generation();
        t.assign(0, IP);
        let g1 = t.generation();
        assert_ne!(g1, g0, "assigned");
        t.learn(0, IP, MAC, 1);
        let g2 = t.generation();
        assert_ne!(g2, g1, "learned");
        // The same MAC again, another address, a bad MAC: no change.
        t.learn(0, IP, MAC, 2);
        t.learn(
            0,
            Ipv4Addr::new(198, 18, 0, 12),
            MacAddr([2, 0, 0, 0, 0, 0x12]),
            2,
        );
        t.learn(0, IP, MacAddr::BROADCAST, 2);
        assert_eq!(t.generation(), g2);
        t.learn(0, IP, MacAddr([2, 0, 0, 0, 0, 0x13]), 3);
        let g3 = t.generation();
        assert_ne!(g3, g2, "a new MAC");
        // A refresh that expires nothing: no change; expiry: a change.
        t.tick(4, 1000, 30_000, 90_000, &mut Vec::new());
        assert_eq!(t.generation(), g3);
        t.tick(100_000, 1000, 30_000, 90_000, &mut Vec::new());
        let g4 = t.generation();
        assert_ne!(g4, g3, "expired");
        t.release(0);
        assert_ne!(t.generation(), g4, "released");
    }

    #[test]
    fn learn_ignores_other_addresses_and_bad_macs() {
        let t = NeighTable::new(2);
        t.assign(0, IP);
        t.learn(0, Ipv4Addr::new(198, 18, 0, 12), MAC, 1);
        assert_eq!(t.mac(0), None);
        t.learn(0, IP, MacAddr::BROADCAST, 1);
        assert_eq!(t.mac(0), None);
        t.learn(0, IP, MAC, 1);
        assert_eq!(t.mac(0), Some(MAC));
        assert_eq!(t.entries().len(), 1);
        t.release(0);
        assert_eq!(t.mac(0), None);
        assert!(t.entries().is_empty());
    }

    #[test]
    fn ipv6_neighbours_share_the_table() {
        let ip6: Ipv6Addr = "2001:db8::11".parse().unwrap();
        let t = NeighTable::new(2);
        t.assign(0, IP);
        t.assign(1, ip6);
        let mut out = Vec::new();
        t.tick(1000, 1000, 30_000, 90_000, &mut out);
        assert_eq!(
            out,
            [
                ArpRequest {
                    slot: 0,
                    ip: IP.into()
                },
                ArpRequest {
                    slot: 1,
                    ip: ip6.into()
                }
            ]
        );
        // Each slot learns from its own address only, whatever the family.
        t.learn(1, IpAddr::from(IP), MAC, 5);
        assert_eq!(t.mac(1), None);
        t.learn(1, ip6, MAC, 5);
        assert_eq!(t.mac(1), Some(MAC));
        let ips: Vec<IpAddr> = t.entries().iter().map(|e| e.ip).collect();
        assert_eq!(ips, [IpAddr::from(IP), IpAddr::from(ip6)]);
    }

    #[test]
    fn wanted_triggers_early_request() {
        let t = NeighTable::new(1);
        t.assign(0, IP);
        t.learn(0, IP, MAC, 10);
        let mut out = Vec::new();
        t.tick(2000, 1000, 30_000, 90_000, &mut out);
        assert!(out.is_empty());
        t.want(0);
        t.tick(3000, 1000, 30_000, 90_000, &mut out);
        assert_eq!(out.len(), 1);
    }
}

/// Where NAT replies go: the MAC and port each client's packets came from.
///
/// A NAT reply is addressed to the client, who may be on a directly
/// connected segment or behind a router; either way the reply belongs where
/// the request came from. Workers remember (client address → source MAC,
/// receiving port) when they create a NAT connection and look it up for
/// each reply. Direct-mapped and lock-free: each slot is a tag word (the
/// address and a version) and the (MAC, port) word; a writer claims the
/// slot by CAS on the tag, readers re-check it. Writes happen only when a
/// client's entry is missing or changed. Two clients hashing to one slot
/// evict each other; the next request refreshes it.
pub struct ClientMacs {
    slots: Box<[ClientSlot]>,
    mask: usize,
}

#[derive(Default)]
struct ClientSlot {
    /// The client's address in bits 32..64, the version in bits 0..32
    /// (odd while a writer holds the slot). One word, so that a reader
    /// checks address, version and consistency with one compare each way
    /// (a separate address word cost a load and a compare per NAT reply).
    tag: AtomicU64,
    /// MAC in bits 0..48, port in bits 48..64.
    hop: AtomicU64,
}

/// The bits of a slot's tag a reader wants equal to (client address, an
/// even version): the address and the version's writing bit.
const TAG_ADDR_AND_WRITING: u64 = 0xffff_ffff_0000_0001;

impl ClientMacs {
    pub fn new(slots: usize) -> ClientMacs {
        let n = slots.next_power_of_two().max(16);
        ClientMacs {
            slots: (0..n).map(|_| ClientSlot::default()).collect(),
            mask: n - 1,
        }
    }

    #[inline]
    fn slot(&self, ip: u32) -> &ClientSlot {
        let h = (ip as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        &self.slots[h as usize & self.mask]
    }

    /// The (MAC, port) replies to `ip` should use. Inlined: a call cost
    /// about ten instructions on every NAT reply.
    #[inline(always)]
    pub fn get(&self, ip: u32) -> Option<(MacAddr, u16)> {
        let s = self.slot(ip);
        let t1 = s.tag.load(std::sync::atomic::Ordering::Acquire);
        let h = s.hop.load(Relaxed);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let t2 = s.tag.load(Relaxed);
        // This client's address, no writer, and no write between the reads.
        let ours = (t1 ^ (u64::from(ip) << 32)) & TAG_ADDR_AND_WRITING == 0;
        (ours && t1 == t2 && h != 0).then(|| (unpack(h), (h >> 48) as u16))
    }

    /// Remember that `ip`'s packets arrive from `mac` on `port`.
    #[inline]
    pub fn learn(&self, ip: u32, mac: MacAddr, port: u16) {
        let hop = (pack(mac) & !VALID & 0xffff_ffff_ffff) | (port as u64) << 48;
        if self
            .get(ip)
            .map(|(m, p)| (pack(m) & 0xffff_ffff_ffff) | (p as u64) << 48)
            == Some(hop)
        {
            return;
        }
        let s = self.slot(ip);
        let t = s.tag.load(Relaxed);
        // An even version below 2^32 - 1: adding one never carries into
        // the address bits.
        if t & 1 == 1
            || s.tag
                .compare_exchange(t, t + 1, std::sync::atomic::Ordering::Acquire, Relaxed)
                .is_err()
        {
            return; // someone else is writing this slot; the next packet retries
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        s.hop.store(hop, Relaxed);
        let version = (t as u32).wrapping_add(2);
        s.tag.store(
            u64::from(ip) << 32 | u64::from(version),
            std::sync::atomic::Ordering::Release,
        );
    }
}

#[cfg(test)]
mod client_tests {
    use super::*;

    #[test]
    fn learns_updates_and_evicts() {
        let c = ClientMacs::new(16);
        let a = MacAddr([2, 0, 0, 0, 0, 1]);
        let b = MacAddr([2, 0, 0, 0, 0, 2]);
        assert_eq!(c.get(7), None);
        c.learn(7, a, 0);
        assert_eq!(c.get(7), Some((a, 0)));
        c.learn(7, b, 1);
        assert_eq!(c.get(7), Some((b, 1)));
        // Many clients: each lookup answers for its own address or nothing.
        for ip in 0..1000u32 {
            c.learn(ip, a, (ip % 3) as u16);
            assert_eq!(c.get(ip), Some((a, (ip % 3) as u16)));
        }
        let hits = (0..1000u32).filter(|ip| c.get(*ip).is_some()).count();
        assert!(hits <= 16);
    }

    #[test]
    fn the_tag_tells_addresses_apart_in_every_bit() {
        // The address shares its word with the version: an empty slot
        // answers for no one (address 0 included), and addresses that
        // differ only in their top or bottom bit stay apart.
        let a = MacAddr([2, 0, 0, 0, 0, 1]);
        assert_eq!(ClientMacs::new(16).get(0), None);
        for ip in [0, 1, 0x8000_0000, 0xffff_ffff, 0xffff_fffe] {
            let c = ClientMacs::new(16);
            c.learn(ip, a, 3);
            assert_eq!(c.get(ip), Some((a, 3)));
            assert_eq!(c.get(ip ^ 1), None);
            assert_eq!(c.get(ip ^ 0x8000_0000), None);
        }
    }

    #[test]
    fn a_slot_held_by_a_writer_answers_nothing() {
        let c = ClientMacs::new(16);
        let a = MacAddr([2, 0, 0, 0, 0, 1]);
        c.learn(9, a, 1);
        let s = c.slot(9);
        let t = s.tag.load(Relaxed);
        s.tag.store(t + 1, Relaxed); // a writer's claim, not yet published
        assert_eq!(c.get(9), None);
        c.learn(9, MacAddr([2, 0, 0, 0, 0, 2]), 2); // gives way to it
        s.tag.store(t, Relaxed);
        assert_eq!(c.get(9), Some((a, 1)));
    }

    #[test]
    fn concurrent_learners_never_give_a_wrong_answer() {
        let c = std::sync::Arc::new(ClientMacs::new(64));
        let hs: Vec<_> = (0..4u32)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..50_000u32 {
                        let ip = (i * 7 + t) % 500;
                        let mac = MacAddr([2, 0, 0, 0, (ip >> 8) as u8, ip as u8]);
                        c.learn(ip, mac, (ip % 5) as u16);
                        if let Some((m, p)) = c.get(ip) {
                            assert_eq!((m, p), (mac, (ip % 5) as u16));
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
