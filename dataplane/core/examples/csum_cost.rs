//! What a checksum costs done in software against left to the NIC, per
//! packet, for the rewrites lbd does (NAT, the tunnel's outer header).
//! Run under callgrind twice with different counts and take the difference
//! (docs/DEPLOYMENT.md, "TX checksum offload"):
//!
//! ```sh
//! cargo build --release -p lb-core --example csum_cost
//! for n in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.$n \
//!     target/release/examples/csum_cost nat-ip-soft $n
//! done
//! ```
//!
//! Cases: `baseline` (the loop alone: subtract it), `nat-ip-soft`,
//! `nat-ip-nic`, `nat-l4-soft`, `nat-l4-nic`, `outer-soft`, `outer-nic`.
//! "nic" cases do what lbd's mbuf buffer does: prepare the frame as DPDK
//! requires and write the mbuf's offload flags and header lengths (here
//! into a struct laid out like those two mbuf words).

use std::hint::black_box;

use lbcore::pipeline::buf::{prepare_for_nic, TxChecksums};
use lbcore::wire::checksum::{incremental_update16, incremental_update32};
use lbcore::wire::ipv4::Ipv4Packet;

/// The two mbuf words an offload request writes.
#[derive(Default)]
struct OffloadWords {
    ol_flags: u64,
    tx_offload: u64,
}

const TX_L4_MASK: u64 = 3 << 52;
const TX_IP_CKSUM: u64 = 1 << 54;
const TX_IPV4: u64 = 1 << 55;
const TX_TCP_CKSUM: u64 = 1 << 52;

#[inline]
fn request(m: &mut OffloadWords, l2: u64, l3: u64, flags: u64) {
    m.ol_flags = (m.ol_flags & !(TX_L4_MASK | TX_IP_CKSUM | TX_IPV4)) | flags;
    m.tx_offload = l2 | (l3 << 7);
}

fn frame() -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4([198, 18, 0, 1], [198, 18, 0, 100], 64)
        .tcp(40000, 80, 1, 1000)
        .write(&mut f, &[0x5a; 64])
        .unwrap();
    f
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    const CASES: [&str; 7] = [
        "baseline",
        "nat-ip-soft",
        "nat-ip-nic",
        "nat-l4-soft",
        "nat-l4-nic",
        "outer-soft",
        "outer-nic",
    ];
    let name = args.get(1).map(String::as_str).unwrap_or("baseline");
    // An index, not the name, in the loop: comparing strings per packet
    // would cost each case differently.
    let case = CASES
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("unknown case {name}; one of {CASES:?}"));
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut f = frame();
    let mut m = OffloadWords::default();
    let (old, new) = (0xc612_0064u32, 0xc613_000bu32);
    for i in 0..n {
        let f = black_box(&mut f[..]);
        let i = black_box(i as u32);
        match black_box(case) {
            // The loop alone.
            0 => {}
            // NAT's IPv4 header: address and TTL changed, checksum patched.
            1 => {
                let c = u16::from_be_bytes([f[24], f[25]]);
                let c = incremental_update32(c, old, new ^ i);
                let c = incremental_update16(c, 0x4006, 0x3f06);
                f[24..26].copy_from_slice(&c.to_be_bytes());
            }
            2 => {
                prepare_for_nic(f, 14, 20, TxChecksums::IPV4);
                request(&mut m, 14, 20, TX_IPV4 | TX_IP_CKSUM);
            }
            // NAT's TCP checksum: address and port changed.
            3 => {
                let c = u16::from_be_bytes([f[50], f[51]]);
                let c = incremental_update32(c, old, new ^ i);
                let c = incremental_update16(c, 80, 8080);
                f[50..52].copy_from_slice(&c.to_be_bytes());
            }
            4 => {
                prepare_for_nic(f, 14, 20, TxChecksums::TCP);
                request(&mut m, 14, 20, TX_IPV4 | TX_TCP_CKSUM);
            }
            // A new 20-byte header (the tunnel's outer one, an ICMP error's).
            5 => {
                f[17] = i as u8;
                Ipv4Packet::new_unchecked(&mut f[14..34]).fill_checksum();
            }
            6 => {
                f[17] = i as u8;
                prepare_for_nic(f, 14, 20, TxChecksums::IPV4);
                request(&mut m, 14, 20, TX_IPV4 | TX_IP_CKSUM);
            }
            _ => unreachable!(),
        }
    }
    black_box((&f, &m));
}
