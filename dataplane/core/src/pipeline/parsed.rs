//! What the classifiers hand on about a service packet: its [`Flow`] (key,
//! hash, service, L4 offsets, TCP flags), and what creating a connection
//! needs besides ([`NewPacket`]). Plain data: the stages that fill and read
//! them live in `flow.rs`, `burst.rs`, `mod.rs` and `flood.rs`.

use crate::conntrack::ConnKey;
use crate::wire::ipv4;
use crate::wire::TcpFlags;

/// A service packet, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
pub(crate) struct Flow {
    /// The client→VIP 5-tuple.
    pub key: ConnKey,
    /// `key`'s hash in this worker's connection table.
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
        key: ConnKey {
            proto: 0,
            client_ip: 0,
            client_port: 0,
            vip: 0,
            vport: 0,
        },
        hash: 0,
        svc_idx: 0,
        l4: 0,
        l4_end: 0,
        flags: TcpFlags(0),
    };

    #[inline(always)]
    pub fn is_tcp(&self) -> bool {
        self.key.proto == ipv4::PROTO_TCP
    }
}

/// What creating a connection needs to know of the packet besides its key.
pub(crate) struct NewPacket {
    pub l4: usize,
    pub l4_end: usize,
    pub flags: TcpFlags,
    pub rx_port: u16,
}
