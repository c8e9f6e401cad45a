//! `lbcore`: everything the director does to a packet, with no I/O.
//!
//! The DPDK binding (`dpdk`) moves frames in and out; this crate decides what
//! happens to them. Keeping it free of DPDK means every decision can be unit
//! tested, fuzzed and benchmarked on an ordinary thread with `now` passed in.
//!
//! Map of the crate:
//! - [`api`]: the lbctl ⇄ lbd control protocol (shared types and framing;
//!   it lives in the `lb-api` crate, which `lbctl` uses alone);
//! - [`wire`]: zero-copy typed views over Ethernet, ARP, IPv4, TCP, UDP, ICMP;
//! - [`config`]: the RON configuration, its validation and error locations
//!   (also from `lb-api`);
//! - [`conntrack`]: the connection table and the TCP state machine;
//! - [`sched`]: the real-server schedulers (rr, wrr, lc, wlc, sh, mh, sed,
//!   nq, fo);
//! - [`neigh`]: the neighbour (ARP) table shared by workers and control;
//! - [`pipeline`]: parse → classify → lookup → schedule → rewrite → verdict;
//! - [`counters`]: per-worker counters and drop reasons.

// Safe code only, but for the cache prefetch hint (`cache`).
#![deny(unsafe_code)]

/// The control protocol and the configuration schema live in `lb-api`
/// (what `lbctl` needs, without the packet path); these re-exports keep
/// their paths in this crate.
pub use lb_api::{addr, config, protocol as api};
pub mod cache;
pub mod conntrack;
pub mod counters;
pub mod neigh;
pub mod pipeline;
pub mod sched;
pub mod wire;
