//! Byte helpers shared by the packet views (callers guarantee the
//! bounds).

use lb_api::mac::MacAddr;

#[inline(always)]
pub(super) fn get_u16(data: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([data[off], data[off + 1]])
}

#[inline(always)]
pub(super) fn get_u32(data: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
}

#[inline(always)]
pub(super) fn set_u16(data: &mut [u8], off: usize, v: u16) {
    data[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(super) fn set_u32(data: &mut [u8], off: usize, v: u32) {
    data[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(super) fn get_mac(data: &[u8], off: usize) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&data[off..off + 6]);
    MacAddr(m)
}

#[inline(always)]
pub(super) fn get_ipv4(data: &[u8], off: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(get_u32(data, off))
}

/// `start..end` clamped to `0..len` (and `start <= end`), so slicing with it
/// never panics.
#[inline(always)]
pub(super) fn clamp_range(start: usize, end: usize, len: usize) -> std::ops::Range<usize> {
    let end = end.min(len);
    start.min(end)..end
}

/// The MAC address at `data[at..at + 6]` as [`MacAddr::to_u64`] packs it,
/// read with one 8-byte load (`data` must hold 8 bytes from `at`).
#[inline(always)]
pub fn mac_at(data: &[u8], at: usize) -> u64 {
    let w: [u8; 8] = data[at..at + 8].try_into().expect("8 bytes");
    u64::from_le_bytes(w) & 0xffff_ffff_ffff
}

#[inline(always)]
pub(super) fn get_ipv6(data: &[u8], off: usize) -> std::net::Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&data[off..off + 16]);
    std::net::Ipv6Addr::from(a)
}
