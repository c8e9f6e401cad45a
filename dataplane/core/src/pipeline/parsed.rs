//! What the classifiers hand on about a service packet: its [`Flow`] (key,
//! hash, service, L4 offsets, TCP flags), and what creating a connection
//! needs besides ([`NewPacket`]). Plain data: the stages that fill and read
//! them live in `flow.rs`, `burst.rs`, `mod.rs` and `flood.rs`.
//!
//! **Built once, passed on.** A frame's `Flow` is written once, by
//! `flow::parse_into` (the burst's stage 1) or by the full classifier, and
//! every later stage takes it by reference: the connection lookup, the TCP
//! state, persistence, scheduling, NAT and tunnel rewrites read its key,
//! hash, service and offsets instead of parsing the frame again. (The
//! rewrites do write through unchecked header views at the offsets the
//! classifier validated; they repeat no check.)
//!
//! **IPv6 (not parsed yet): how a flow will look.** The key is what differs
//! by family — [`ConnKey`] is 16 bytes, `ConnKey6` 40 — and a key lives in
//! its family's table (`conntrack::key`). So an IPv6 service packet will get
//! a `Flow6`: the same fields around a `ConnKey6` (64 bytes), kept in a
//! parallel per-burst array of the plan and marked by its own bit mask
//! (beside `Plan::valid`), so an IPv4 flow stays 32 bytes and stage 2 learns
//! the family from a bit test it makes anyway. The stages after the lookup
//! become generic over the key type, monomorphised per family like the
//! tables: the IPv4 path gets no family branch. `l4` already means "where
//! the upper-layer header starts", which for IPv6 is after the extension
//! headers the parser walked; the L3 header's start is a constant today
//! (right after Ethernet) and becomes a field only if a frame can carry
//! more in front (a VLAN tag).

use crate::conntrack::{ConnKey, TableKey};
use crate::wire::ipv4;
use crate::wire::TcpFlags;

/// A service packet, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
pub(crate) struct Flow {
    /// The client→VIP 5-tuple, packed as the connection table stores it
    /// ([`ConnKey`]'s words): built once from the frame, compared as it is
    /// by the table's probe and the service lookup; [`Flow::key`] unpacks
    /// it for the paths that need the fields (new connections, NAT).
    pub words: [u64; 2],
    /// `key`'s hash in the table its connection is looked up in first: the
    /// shared NAT table on a director with NAT (`Snapshot::has_nat` and a
    /// NAT table: `Worker::nat_table`), this worker's table otherwise. A
    /// NAT director's stage 1 then hashes each packet once for the table a
    /// NAT connection lives in; its DR and tunnel flows hash again for the
    /// worker's table after the NAT lookup misses.
    pub hash: u64,
    /// The service's index in the snapshot (< `MAX_SERVICES`).
    pub svc_idx: u16,
    /// Offsets of the L4 header and of the end of the IP payload in the
    /// frame (frames are shorter than 64 KiB). Small fields keep a flow
    /// at 32 bytes: a burst's flows are written once and read once.
    pub l4: u16,
    pub l4_end: u16,
    /// TCP flags (empty for UDP).
    pub flags: TcpFlags,
}

const _: () = assert!(core::mem::size_of::<Flow>() == 32);
const _: () = assert!(super::snapshot::MAX_SERVICES <= u16::MAX as usize);

impl Flow {
    /// A placeholder (storage for flows not yet parsed).
    pub const EMPTY: Flow = Flow {
        words: [0; 2],
        hash: 0,
        svc_idx: 0,
        l4: 0,
        l4_end: 0,
        flags: TcpFlags(0),
    };

    #[inline(always)]
    pub fn is_tcp(&self) -> bool {
        ConnKey::proto_of_words(&self.words) == ipv4::PROTO_TCP
    }

    /// The flow key's fields.
    #[inline(always)]
    pub fn key(&self) -> ConnKey {
        ConnKey::from_words(&self.words)
    }
}

/// What creating a connection needs to know of the packet besides its key.
pub(crate) struct NewPacket {
    pub l4: usize,
    pub l4_end: usize,
    pub flags: TcpFlags,
    pub rx_port: u16,
}

impl NewPacket {
    /// A parsed flow's, received on `rx_port`.
    #[inline(always)]
    pub fn of(flow: &Flow, rx_port: u16) -> NewPacket {
        NewPacket {
            l4: flow.l4 as usize,
            l4_end: flow.l4_end as usize,
            flags: flow.flags,
            rx_port,
        }
    }
}
