//! IPv6: the packet path for frames of ethertype 0x86dd.
//!
//! IPv6 enters through the full classifier's ethertype match (never the
//! burst's fast classifier, which is IPv4's), so an IPv4 packet pays
//! nothing for it. The pieces, one job each:
//!
//! - `entry.rs`: the fixed header, the extension-header walk and the checks
//!   every packet passes, then the dispatch by upper layer;
//! - `forward.rs`: service packets — the worker's IPv6 connection table,
//!   scheduling (every scheduler; sh and mh hash the full 128-bit client
//!   address), persistence, TCP state tracking;
//! - `flood.rs`: the SYN-flood defence over the IPv6 table (eviction of
//!   half-open entries, stateless forwarding by consistent hash);
//! - `tunnel.rs`: to the real server by DR or IPv6-in-IPv6, and Packet Too
//!   Big for what would not fit the tunnel;
//! - `ndp.rs`: Neighbour Discovery — answering solicitations for VIPs and
//!   own addresses, learning real servers' MACs, and the frame builders the
//!   control side sends (solicitations, unsolicited advertisements);
//! - `icmp.rs`: ICMPv6 — echo replies, and errors about forwarded
//!   connections relayed to their real server;
//! - `nat.rs`, `nat_icmp.rs`, `clients.rs`: NAT66 — the shared NAT66
//!   table, the request and reply rewrites, ICMPv6 errors about NAT66
//!   connections translated both ways, and where replies go back to.
//!
//! # Policies
//!
//! - **Checks.** Fixed header: length, version 6, payload length within the
//!   frame (Ethernet padding after it is ignored). Sources no client can
//!   have (unspecified, multicast, loopback, IPv4-mapped, our own) and
//!   "land" packets (source = destination or a VIP) are dropped. The hop
//!   limit is not checked: DR forwards without routing (as IPv4's DR keeps
//!   the TTL), and the real server is the packet's destination.
//! - **Extension headers** follow `wire::ipv6_ext`'s walk: hop-by-hop (first
//!   only), destination options and routing headers with no segments left
//!   are passed untouched to reach the upper layer; fragments are dropped
//!   and counted (`drop_ipv6_fragment`: no reassembly, as for IPv4); chains
//!   longer than 8 headers or 512 bytes — a "loop" of headers is one — are
//!   `drop_ipv6_ext_too_many`; a header cut short `drop_ipv6_ext_truncated`;
//!   hop-by-hop not first, routing with segments left, ESP and AH
//!   `drop_ipv6_ext_unsupported`. DR forwards the packet as it came,
//!   extension headers included.
//! - **Multicast destinations**: only Neighbour Solicitations (to a
//!   solicited-node group of ours) and advertisements are taken; frames to
//!   33:33:xx:xx:xx:xx MACs enter here for them. Everything else sent to a
//!   group is `drop_ipv6_multicast`.
//! - **Own addresses** are a port's `address6` and its link-local address
//!   (fe80::/64 + the modified EUI-64 of its MAC, see
//!   [`snapshot::link_local`](super::snapshot::link_local)): answered by
//!   NDP and ping; other traffic to them goes to the port's kernel
//!   interface if it has one, else `drop_ipv6_not_local`.
//! - **Floating addresses** (`vrrp6.addresses`, e.g. the NAT66 real
//!   servers' gateway) are held on the first interface whose `address6`
//!   subnet holds them, by the VRRP master only: NDP and ping answered
//!   there while master; other traffic to them, and everything on the
//!   backup, is `drop_ipv6_not_local` (NDP: `drop_ndp_not_for_us`). The
//!   control side announces them by unsolicited advertisements on
//!   takeover, with the VIPs.
//! - **Forwarding**: DR (the MAC rewrite to the real server's neighbour
//!   slot), tunnel (IPv6-in-IPv6 with Packet Too Big, `tunnel.rs`) and
//!   NAT66 (`nat.rs`); the real servers are on a port's `address6` subnet
//!   (no IPv6 routes). Mixed families (an IPv4 real server for an IPv6 VIP,
//!   NAT64/NAT46) are refused by validation.
//! - **NAT66** follows IPv4 NAT: a connection is in the IPv6 table shared
//!   by all workers under a request and a reply key (a reply finds it on
//!   any worker), TCP state by IPVS's NAT table from both directions,
//!   incremental TCP/UDP checksums, the hop limit decremented (a packet
//!   arriving with 1 or less is `drop_ipv6_hop_limit_expired`: no Time
//!   Exceeded, as IPv4 NAT does with the TTL). While NAT66 is configured, a
//!   TCP/UDP packet to an address that is neither a VIP nor ours is looked
//!   up as a reply (`drop_nat_no_conn` if none, as IPv4 does), and an
//!   ICMPv6 error to such an address as an error about a NAT66 request;
//!   other packets to it stay `drop_ipv6_not_local`.
//! - **Persistence** templates live in the worker's own table (not the
//!   shared NAT table the IPv4 templates use): exact with one worker per
//!   port; with several RX queues a client's connections keep their real
//!   server as long as RSS puts them on one worker (RSS on addresses only
//!   does; on ports it may not).
//! - **Service groups** (`fwmarks` entries with IPv6 VIPs; a mark is one
//!   family, checked by validation): the snapshot's IPv6 service map holds
//!   each member (VIP, port, protocol) like an IPv4 group's, and a
//!   client's template is keyed by the mark (protocol 0, the mark as the
//!   VIP, port 0), so its connections to every member share a real
//!   server. A group's templates are not synced (its connections are).
//! - **Connection sync** (`pipeline::sync6`): DR and tunnel connections
//!   (records queued in `forward.rs` on creation and TCP state changes,
//!   adopted there on a miss) and persistence templates (a record when a
//!   worker creates one; a backup worker without a template for a client
//!   network takes the peer's before scheduling, into its own table).
//!   NAT66 connections: records queued in `nat.rs` on creation and TCP
//!   state changes; the backup stores both entries in its own NAT66
//!   table (flagged synced, uncounted), found from either direction after
//!   a failover, as IPv4 NAT does. Service groups' templates are not
//!   synced (the receiver finds a record's service by its VIP and port).
//! - **Listings** (`lbctl conns`): each worker lists its IPv6 connections
//!   and templates with its IPv4 connections (`Worker::table6`,
//!   `Worker::templates6`); the control side lists the shared NAT66 table.
//! - **A full table** (`flood.rs`): IPv4's SYN-flood defence, driven by the
//!   worker's one guard (which watches the fuller of its IPv4 and IPv6
//!   tables): engaged, a SYN that finds no room evicts the oldest half-open
//!   entry of its probe windows, and sh/mh services forward what still
//!   finds no room (and unknown mid-flow segments) by the hash without an
//!   entry; otherwise `drop_conn_table_full`. The shared NAT66 table
//!   refuses new connections when full, which engages the defence (short
//!   half-open timeouts; the guard watches its fill too); evicting its
//!   half-open entries is IPv4 NAT's only so far.

mod clients;
mod entry;
mod flood;
mod forward;
mod icmp;
mod nat;
mod nat_icmp;
mod ndp;
mod tunnel;

pub use clients::ClientMacs6;
pub(super) use nat::reply_key6;
pub use nat::Nat6State;

use crate::conntrack::{ConnKey6, ConnTable};

/// What a worker keeps for IPv6: its connection table and its persistence
/// templates.
pub(crate) struct V6State {
    pub table: ConnTable<ConnKey6>,
    /// Persistence templates: key (protocol, client network, 0, VIP,
    /// service port), the real server id, and the template's deadline.
    pub templates: ConnTable<ConnKey6>,
}

impl V6State {
    /// Tables of `capacity` connections (the IPv4 table's size) and a
    /// templates table of a quarter of that (a template stands for all of
    /// a client network's connections).
    pub fn new(capacity: usize, seed: u64) -> Box<V6State> {
        Box::new(V6State {
            table: ConnTable::new(capacity, seed ^ 0x6666_0000_6666),
            templates: ConnTable::new((capacity / 4).max(64), seed ^ 0x7e6d),
        })
    }
}

impl super::Worker {
    /// The IPv6 persistence templates, once IPv6 is configured (listings).
    pub fn templates6(&self) -> Option<&ConnTable<ConnKey6>> {
        self.v6.as_ref().map(|v| &v.templates)
    }
}
