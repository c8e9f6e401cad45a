//! Per-worker counters: outcomes, drop reasons, per-service and per-real-server
//! statistics.
//!
//! Each worker writes only its own [`WorkerStats`]; other threads (the control
//! thread, `/metrics` scrapes, the shutdown report) read them and sum over
//! workers. A counter is an `AtomicU64` updated with a relaxed load and store
//! by its single writer: on x86 that compiles to a plain add, with no locked
//! instruction and no cache line shared with another writer.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident = $text:literal, )*) => {
        /// Every outcome a packet can have, and the other events a worker counts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Counter { $( $(#[$doc])* $name, )* }

        impl Counter {
            pub const ALL: &'static [Counter] = &[ $( Counter::$name, )* ];
            pub const COUNT: usize = Counter::ALL.len();
            /// Stable snake_case name used in reports and metrics.
            pub fn name(self) -> &'static str {
                match self { $( Counter::$name => $text, )* }
            }
        }
    };
}

counters! {
    // --- outcomes (not drops) ---
    /// Frames received by the worker.
    RxFrames = "rx_frames",
    /// Forwarded to a real server by DR.
    FwdDr = "forwarded_dr",
    /// Forwarded to a real server inside an IPIP tunnel (outer IPv4 header added).
    FwdTunnel = "forwarded_tunnel",
    /// ICMP "fragmentation needed" sent to a client whose packet (DF set)
    /// would exceed the egress MTU once tunnelled.
    IcmpFragNeededSent = "icmp_frag_needed_sent",
    /// ARP requests for our addresses answered.
    ArpReplied = "arp_replied",
    /// ARP packets from which a neighbour's MAC was learned/confirmed.
    ArpLearned = "arp_learned",
    /// ICMP echo requests answered.
    IcmpEchoReplied = "icmp_echo_replied",
    /// New connections created.
    ConnCreated = "conn_created",
    /// Connections expired (by lookup or sweep).
    ConnExpired = "conn_expired",
    /// Persistence templates created (a client's first connection to a
    /// persistent service, or its first after its template expired).
    PersistTemplateCreated = "persist_template_created",
    /// New connections sent to the real server of their client's
    /// persistence template.
    PersistTemplateUsed = "persist_template_used",
    /// IPv4 packets carrying options (forwarded untouched by DR).
    Ipv4WithOptions = "ipv4_with_options",
    /// Forwarded to a real server by NAT (client → server, rewritten).
    FwdNat = "forwarded_nat",
    /// NAT replies rewritten back to come from the VIP (server → client).
    FwdNatReply = "forwarded_nat_reply",
    /// ICMP errors (destination unreachable, time exceeded) quoting a DR or
    /// tunnel connection's reply, forwarded to its real server like the
    /// connection's packets (MAC rewrite or IPIP).
    IcmpErrorForwarded = "icmp_error_forwarded",
    /// ICMP errors quoting a NAT connection's translated reply, translated
    /// back (outer destination, quoted source) and sent to the real server.
    IcmpErrorNatForwarded = "icmp_error_nat_forwarded",
    /// ICMP errors from the real servers' side quoting a NAT request,
    /// translated back (outer source, quoted destination: the VIP) and sent
    /// to the client.
    IcmpErrorNatReply = "icmp_error_nat_reply",
    /// ICMP errors about a DR or tunnel connection this worker does not
    /// hold, passed to the next worker's mailbox (RSS put the error on
    /// another queue than the connection's packets).
    IcmpErrorHandedOff = "icmp_error_handed_off",
    /// Frames for the director's own host queued for the port's kernel
    /// interface (exception path): traffic to the port's address other than
    /// pings, and ARP replies to the kernel's requests.
    ToKernel = "to_kernel",
    /// VIP traffic scheduled to this director's own host (a local real
    /// server), queued for its kernel interface.
    FwdLocal = "forwarded_local",
    /// VIP traffic the peer director of a two-box setup scheduled to this
    /// box, queued for its own stack (never scheduled again).
    LocalFromPeer = "local_from_peer",
    /// Frames the kernel sent through a port's kernel interface,
    /// transmitted on the port.
    FromKernel = "from_kernel",
    /// Connection-sync records this worker could not queue (the sync
    /// thread is behind its bandwidth limit).
    SyncQueueFull = "sync_queue_full",
    /// Connections adopted from the peer director's sync after a failover.
    SyncAdopted = "sync_adopted",
    /// SYN-flood defence: times this worker's defence engaged (see
    /// `syn_flood` in the configuration; the gauge
    /// `lbd_flood_defence_active` shows whether it is engaged now).
    FloodEngaged = "flood_defence_engaged",
    /// SYN-flood defence: half-open (SYN_RECV, never ACKed) connections
    /// evicted to make room for a new one (also counted in `conn_expired`).
    ConnEmbryonicEvicted = "conn_embryonic_evicted",
    /// Packets of services with a consistent-hash scheduler (sh, mh)
    /// forwarded by the hash without a table entry: the SYN-flood defence
    /// when the table had no room, and ECMP mode's mid-flow RSTs. Also
    /// counted in `forwarded_dr` or `forwarded_tunnel`.
    FwdStateless = "forwarded_stateless",
    /// Segments of unknown TCP connections adopted by a `sloppy_tcp`
    /// service (scheduled as new connections instead of dropped).
    SloppyAdopted = "sloppy_adopted",
    /// ECMP mode: TCP segments (not SYN, not RST) of connections this
    /// director did not know — moved here by the routers from another
    /// director — forwarded by the consistent hash and their connection
    /// created (also counted in `conn_created`).
    ConnAdoptedMidflow = "conn_adopted_midflow",
    /// Frames handed to TX that the NIC refused (dropped after retry).
    TxFailed = "tx_failed",
    // --- drops, by reason ---
    /// Shorter than an Ethernet header.
    DropEthTruncated = "drop_eth_truncated",
    /// A frame received in several chained mbufs (larger than one mbuf's
    /// data room, e.g. a jumbo frame from a PMD that chains buffers): the
    /// pipeline reads one contiguous buffer, so it is dropped rather than
    /// parsed from its first segment.
    DropMultiSegment = "drop_multi_segment",
    /// Unicast to another host's MAC (seen in promiscuous mode).
    DropNotOurMac = "drop_not_our_mac",
    /// A frame we sent ourselves, looped back.
    DropOwnFrame = "drop_own_frame",
    /// Source MAC (Ethernet, or ARP sender) that no other station can have:
    /// multicast, broadcast, all zeros, or one of the director's own ports'
    /// MACs (spoofed). Never answered, learned or forwarded.
    DropEthBadSource = "drop_eth_bad_source",
    /// Ethertype we do not handle (IPv6, LLDP, ...).
    DropUnknownEthertype = "drop_unknown_ethertype",
    /// 802.1Q tagged frames with a VLAN id their port does not carry
    /// (`ports[].vlans`), or a tag inside a VLAN's tag; and frames for a
    /// VLAN that could not be tagged (no headroom).
    DropVlan = "drop_vlan",
    /// ARP packet shorter than 28 bytes.
    DropArpTruncated = "drop_arp_truncated",
    /// ARP for something other than Ethernet/IPv4.
    DropArpUnsupported = "drop_arp_unsupported",
    /// ARP not asking for one of our addresses and not from a neighbour.
    DropArpNotForUs = "drop_arp_not_for_us",
    /// IPv4 header cut short.
    DropIpv4Truncated = "drop_ipv4_truncated",
    /// Version field not 4.
    DropIpv4BadVersion = "drop_ipv4_bad_version",
    /// IHL < 5 or beyond the frame.
    DropIpv4BadHeaderLen = "drop_ipv4_bad_header_len",
    /// Total length smaller than the header or beyond the frame.
    DropIpv4BadTotalLen = "drop_ipv4_bad_total_len",
    /// Header checksum wrong.
    DropIpv4BadChecksum = "drop_ipv4_bad_checksum",
    /// TTL 0 on arrival.
    DropIpv4TtlExpired = "drop_ipv4_ttl_expired",
    /// Fragments (policy: not reassembled, dropped).
    DropIpv4Fragment = "drop_ipv4_fragment",
    /// Source address that no client can have (0/8, 127/8, multicast, broadcast, ours).
    DropIpv4BadSource = "drop_ipv4_bad_source",
    /// A "land" packet: the source is the destination or another VIP
    /// (spoofed; a real server would answer itself).
    DropIpv4Land = "drop_ipv4_land",
    /// IPv4 options that are malformed: an option length below 2 or
    /// running past the header (as Linux's ip_options_compile refuses).
    DropIpv4BadOptions = "drop_ipv4_bad_options",
    /// Destination is neither a VIP nor one of our addresses.
    DropIpv4NotLocal = "drop_ipv4_not_local",
    /// A protocol we do not serve on this address.
    DropIpv4UnknownProtocol = "drop_ipv4_unknown_protocol",
    /// TCP header cut short or data offset invalid.
    DropTcpMalformed = "drop_tcp_malformed",
    /// TCP flag combination no stack sends (SYN with RST or FIN, no flags,
    /// FIN or URG without ACK: netfilter's `tcp_valid_flags`).
    DropTcpBadFlags = "drop_tcp_bad_flags",
    /// UDP header cut short or length field invalid.
    DropUdpMalformed = "drop_udp_malformed",
    /// ICMP cut short or bad checksum.
    DropIcmpMalformed = "drop_icmp_malformed",
    /// ICMP other than echo requests to our addresses and the errors
    /// (destination unreachable, time exceeded) about tracked connections.
    DropIcmpUnsupported = "drop_icmp_unsupported",
    /// ICMP error whose quoted packet is cut short or not IPv4 (fewer than
    /// 20 bytes of header or 8 bytes after it, bad version or IHL).
    DropIcmpErrorMalformed = "drop_icmp_error_malformed",
    /// ICMP error quoting no connection the director tracks: unknown or
    /// expired flow, not TCP/UDP (e.g. about a tunnel's outer header), a
    /// non-first fragment, a quoted source other than the error's
    /// destination; for DR/tunnel, no worker's table holds it (the error
    /// visited every worker's mailbox).
    DropIcmpErrorNoConn = "drop_icmp_error_no_conn",
    /// ICMP error to hand to another worker whose mailbox was full.
    DropHandoffFull = "drop_handoff_full",
    /// Frame for the kernel interface whose queue was full.
    DropKernelQueueFull = "drop_kernel_queue_full",
    /// Frame for the kernel interface beyond `ports[].kernel.rate_pps`.
    DropKernelRate = "drop_kernel_rate",
    /// VIP exists but no service on this port/protocol.
    DropNoService = "drop_no_service",
    /// TCP segment without SYN for a flow we do not track.
    DropTcpNoConn = "drop_tcp_no_conn",
    /// Every real server of the service is quiesced or none exist.
    DropNoRealServer = "drop_no_real_server",
    /// A packet of a connection whose real server failed its health check
    /// with `expire_connections`: dropped, and the connection ended (the
    /// client's next SYN is scheduled to a live server).
    DropRealServerDown = "drop_real_server_down",
    /// Traffic for a VIP while this director is VRRP backup (or in fault):
    /// the master serves the VIPs.
    DropVrrpBackup = "drop_vrrp_backup",
    /// Connection table full: new flow refused.
    DropConnTableFull = "drop_conn_table_full",
    /// Real server's MAC not resolved yet.
    DropNeighUnresolved = "drop_neigh_unresolved",
    /// NAT reply for which no connection exists (traffic the director does
    /// not own, or a connection already expired).
    DropNatNoConn = "drop_nat_no_conn",
    /// NAT reply whose client MAC is not known (the client never sent to us).
    DropNatNoClientMac = "drop_nat_no_client_mac",
    /// New NAT flow whose reply key is already taken by another connection.
    DropNatConflict = "drop_nat_conflict",
    /// NAT traffic but this worker has no NAT table (not configured).
    DropNatDisabled = "drop_nat_disabled",
    /// Connection's real server was removed from the configuration.
    DropRealServerGone = "drop_real_server_gone",
    /// A packet without DF too large for the egress MTU once tunnelled
    /// (policy: not fragmented; clients with DF get ICMP instead).
    DropTunnelTooBig = "drop_tunnel_too_big",
    /// No room for the 20-byte outer header in front of the frame (a fixed
    /// buffer, or an mbuf without headroom).
    DropTunnelNoHeadroom = "drop_tunnel_no_headroom",
    // --- IPv6 (pipeline/v6) ---
    /// Neighbour Solicitations for a VIP or an own IPv6 address answered
    /// with a Neighbour Advertisement.
    NdpAdvertised = "ndp_advertised",
    /// Neighbour Discovery messages (advertisements, or solicitations with
    /// a source link-layer address) from which a neighbour's MAC was
    /// learned or confirmed.
    NdpLearned = "ndp_learned",
    /// ICMPv6 echo requests answered.
    Icmpv6EchoReplied = "icmpv6_echo_replied",
    /// ICMPv6 Packet Too Big sent to a client whose packet would exceed
    /// the egress MTU once tunnelled in IPv6 (40 bytes more).
    Icmpv6PtbSent = "icmpv6_ptb_sent",
    /// IPv6 header cut short (fewer than 40 bytes after Ethernet).
    DropIpv6Truncated = "drop_ipv6_truncated",
    /// Version field not 6.
    DropIpv6BadVersion = "drop_ipv6_bad_version",
    /// Payload length beyond the frame.
    DropIpv6BadPayloadLen = "drop_ipv6_bad_payload_len",
    /// Source address no client can have (unspecified, multicast,
    /// loopback, IPv4-mapped, ours).
    DropIpv6BadSource = "drop_ipv6_bad_source",
    /// A "land" packet: the source is the destination or a VIP.
    DropIpv6Land = "drop_ipv6_land",
    /// Fragments (policy: not reassembled, dropped).
    DropIpv6Fragment = "drop_ipv6_fragment",
    /// An extension header that does not fit in the payload.
    DropIpv6ExtTruncated = "drop_ipv6_ext_truncated",
    /// An extension-header chain longer than the walk allows (more than 8
    /// headers or 512 bytes): what a chain that loops becomes.
    DropIpv6ExtTooMany = "drop_ipv6_ext_too_many",
    /// Extension headers the director does not pass: hop-by-hop options
    /// not first, a routing header with segments left, ESP, AH.
    DropIpv6ExtUnsupported = "drop_ipv6_ext_unsupported",
    /// Destination is neither a VIP nor one of our IPv6 addresses.
    DropIpv6NotLocal = "drop_ipv6_not_local",
    /// A NAT66 packet (or ICMPv6 error) arriving with a hop limit of 1 or
    /// less: the director routes NAT66 and would send it out with 0.
    DropIpv6HopLimitExpired = "drop_ipv6_hop_limit_expired",
    /// To a multicast address: only Neighbour Solicitations for our
    /// addresses are taken (router and multicast-listener messages, pings
    /// to all-nodes, ... are not for a director).
    DropIpv6Multicast = "drop_ipv6_multicast",
    /// An upper-layer protocol we do not serve on this address.
    DropIpv6UnknownProtocol = "drop_ipv6_unknown_protocol",
    /// ICMPv6 message shorter than its 8-byte header.
    DropIcmpv6Malformed = "drop_icmpv6_malformed",
    /// ICMPv6 checksum wrong (over the pseudo-header).
    DropIcmpv6BadChecksum = "drop_icmpv6_bad_checksum",
    /// ICMPv6 other than echo requests to our addresses, Neighbour
    /// Discovery and the errors about tracked connections.
    DropIcmpv6Unsupported = "drop_icmpv6_unsupported",
    /// Neighbour Discovery failing RFC 4861's checks (hop limit not 255,
    /// code not 0, cut short, multicast target, bad option, ...).
    DropNdpInvalid = "drop_ndp_invalid",
    /// A Neighbour Solicitation for an address that is not ours (no VIP,
    /// no own address), or an advertisement from no neighbour we track.
    DropNdpNotForUs = "drop_ndp_not_for_us",
}

impl Counter {
    /// Whether this counter counts dropped frames.
    pub fn is_drop(self) -> bool {
        self.name().starts_with("drop_")
    }
}

/// The Prometheus metric family a counter is exported in (lbd's
/// `/metrics`): declared here, next to the counters, so that a new counter
/// gets its family in the same change. Plain data; lbd renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricFamily {
    pub name: &'static str,
    pub help: &'static str,
    /// (label name, label value), for families with one label.
    pub label: Option<(&'static str, &'static str)>,
}

const PACKETS_HELP: &str =
    "Frames the workers sent on: forwarded to a real server (DR, tunnel, NAT) or answered (ARP, NDP, ICMP and ICMPv6 echo, ICMP fragmentation needed), ICMP errors about connections relayed, or frames for the director's own host queued for its kernel interface (to_kernel).";

impl Counter {
    /// Drops all go to `lbd_drops_total{reason}`. Frames that were forwarded or
    /// answered share `lbd_packets_total{outcome}`, so that the frames received
    /// (`lbd_rx_frames_total`) are the sum of `lbd_packets_total`, plus the sum
    /// of `lbd_drops_total`, plus the ARP frames consumed only to learn a MAC.
    /// The other counters are events of other kinds (connections, ARP learning,
    /// TX failures) and get metrics of their own, so that no sum over a metric's
    /// labels mixes kinds. A counter added to lbcore later and not listed here
    /// still shows up, as `lbd_events_total{event}`.
    pub fn metric(self) -> MetricFamily {
        let c = self;
        let single = |name, help| MetricFamily {
            name,
            help,
            label: None,
        };
        let packets = |outcome| MetricFamily {
            name: "lbd_packets_total",
            help: PACKETS_HELP,
            label: Some(("outcome", outcome)),
        };
        if c.is_drop() {
            return MetricFamily {
                name: "lbd_drops_total",
                help:
                    "Frames the workers dropped, by reason (see lbcore::counters for each reason).",
                label: Some(("reason", c.name().strip_prefix("drop_").unwrap_or(c.name()))),
            };
        }
        match c {
            Counter::RxFrames => single("lbd_rx_frames_total", "Frames received by the workers."),
            Counter::FwdDr => packets("forwarded_dr"),
            Counter::FwdTunnel => packets("forwarded_tunnel"),
            Counter::FwdNat => packets("forwarded_nat"),
            Counter::FwdNatReply => packets("forwarded_nat_reply"),
            Counter::IcmpFragNeededSent => packets("icmp_frag_needed_sent"),
            Counter::ArpReplied => packets("arp_replied"),
            Counter::IcmpEchoReplied => packets("icmp_echo_replied"),
            Counter::NdpAdvertised => packets("ndp_advertised"),
            Counter::Icmpv6EchoReplied => packets("icmpv6_echo_replied"),
            Counter::Icmpv6PtbSent => packets("icmpv6_ptb_sent"),
            Counter::IcmpErrorForwarded => packets("icmp_error_forwarded"),
            Counter::IcmpErrorNatForwarded => packets("icmp_error_nat_forwarded"),
            Counter::IcmpErrorNatReply => packets("icmp_error_nat_reply"),
            Counter::ToKernel => packets("to_kernel"),
            Counter::FwdLocal => packets("forwarded_local"),
            Counter::LocalFromPeer => packets("local_from_peer"),
            Counter::FromKernel => single(
                "lbd_kernel_frames_sent_total",
                "Frames the director's host sent through the ports' kernel interfaces, transmitted by the workers.",
            ),
            Counter::ArpLearned => single(
                "lbd_arp_learned_total",
                "ARP packets from which a real server's MAC address was learned or confirmed.",
            ),
            Counter::NdpLearned => single(
                "lbd_ndp_learned_total",
                "Neighbour Discovery messages from which a real server's MAC address was learned or confirmed.",
            ),
            Counter::ConnCreated => single(
                "lbd_connections_created_total",
                "Connections created (new flows scheduled to a real server).",
            ),
            Counter::ConnExpired => single(
                "lbd_connections_expired_total",
                "Connections removed from the tables (timed out or closed).",
            ),
            Counter::Ipv4WithOptions => single(
                "lbd_ipv4_options_total",
                "IPv4 packets carrying options (forwarded untouched).",
            ),
            Counter::TxFailed => single(
                "lbd_tx_failed_total",
                "Frames the NIC refused to transmit after retries (dropped).",
            ),
            _ => MetricFamily {
                name: "lbd_events_total",
                help: "Other worker events without a dedicated metric, by counter name.",
                label: Some(("event", c.name())),
            },
        }
    }
}

/// Add to a single-writer counter without a locked instruction.
#[inline(always)]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Per-real-server statistics of one worker.
#[derive(Debug, Default)]
pub struct RsStats {
    /// Connections currently ESTABLISHED (ipvsadm ActiveConn).
    pub active: AtomicU32,
    /// Connections in any other state (ipvsadm InActConn).
    pub inactive: AtomicU32,
    /// Connections scheduled to it since start.
    pub conns: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Replies through the director (NAT only; DR/tunnel replies bypass it).
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl RsStats {
    /// This worker's contribution to ActiveConn. It can be negative: a NAT
    /// connection may be counted in by one worker and out by another (the
    /// one that saw its close); only the sum over workers is meaningful.
    #[inline(always)]
    pub fn active(&self) -> i32 {
        self.active.load(Relaxed) as i32
    }
    /// This worker's contribution to InActConn (may be negative, see above).
    #[inline(always)]
    pub fn inactive(&self) -> i32 {
        self.inactive.load(Relaxed) as i32
    }
    #[inline(always)]
    pub fn add_active(&self, d: i32) {
        let v = self.active.load(Relaxed);
        self.active.store(v.wrapping_add_signed(d), Relaxed);
    }
    #[inline(always)]
    pub fn add_inactive(&self, d: i32) {
        let v = self.inactive.load(Relaxed);
        self.inactive.store(v.wrapping_add_signed(d), Relaxed);
    }
}

/// Per-service statistics of one worker.
#[derive(Debug, Default)]
pub struct ServiceStats {
    pub conns: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Replies through the director (NAT only).
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// Everything one worker counts. Cache-line aligned so two workers' stats
/// never share a line.
#[repr(align(64))]
pub struct WorkerStats {
    counters: [AtomicU64; Counter::COUNT],
    /// Indexed by stable real-server id.
    pub rs: Box<[RsStats]>,
    /// Indexed by stable service id.
    pub services: Box<[ServiceStats]>,
    /// Polls that returned packets / returned none (busy ratio).
    pub busy_polls: AtomicU64,
    pub idle_polls: AtomicU64,
    /// Sleeps between idle polls (`workers.idle_sleep_us`).
    pub idle_sleeps: AtomicU64,
    /// Connections currently in this worker's table.
    pub conns_live: AtomicU64,
    /// 1 while this worker's SYN-flood defence is engaged, else 0.
    pub flood_engaged: AtomicU64,
}

impl WorkerStats {
    pub fn new(max_real_servers: usize, max_services: usize) -> WorkerStats {
        WorkerStats {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            rs: (0..max_real_servers).map(|_| RsStats::default()).collect(),
            services: (0..max_services).map(|_| ServiceStats::default()).collect(),
            busy_polls: AtomicU64::new(0),
            idle_polls: AtomicU64::new(0),
            idle_sleeps: AtomicU64::new(0),
            conns_live: AtomicU64::new(0),
            flood_engaged: AtomicU64::new(0),
        }
    }

    #[inline(always)]
    pub fn count(&self, c: Counter) {
        bump(&self.counters[c as usize], 1);
    }

    #[inline(always)]
    pub fn add(&self, c: Counter, n: u64) {
        bump(&self.counters[c as usize], n);
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize].load(Relaxed)
    }
}

/// Sum of a counter over several workers.
pub fn total(workers: &[std::sync::Arc<WorkerStats>], c: Counter) -> u64 {
    workers.iter().map(|w| w.get(c)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_own_series_in_a_counter_family() {
        let mut seen = std::collections::HashSet::new();
        for &c in Counter::ALL {
            let m = c.metric();
            assert!(
                m.name.starts_with("lbd_") && m.name.ends_with("_total"),
                "{c:?}: {}",
                m.name
            );
            assert!(!m.help.is_empty(), "{c:?}");
            assert!(seen.insert((m.name, m.label)), "{c:?} shares a series");
            // One family, one help text and one label name.
            for &d in Counter::ALL {
                let n = d.metric();
                if n.name == m.name {
                    assert_eq!(n.help, m.help);
                    assert_eq!(n.label.map(|l| l.0), m.label.map(|l| l.0));
                }
            }
        }
        assert_eq!(Counter::DropVlan.metric().label, Some(("reason", "vlan")));
    }

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in Counter::ALL {
            let n = c.name();
            assert!(seen.insert(n), "duplicate {n}");
            assert!(n
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'));
        }
        assert!(Counter::DropIpv4BadChecksum.is_drop());
        assert!(!Counter::FwdDr.is_drop());
    }

    #[test]
    fn counts_and_sums() {
        let a = std::sync::Arc::new(WorkerStats::new(4, 2));
        let b = std::sync::Arc::new(WorkerStats::new(4, 2));
        a.count(Counter::FwdDr);
        a.add(Counter::FwdDr, 2);
        b.count(Counter::FwdDr);
        assert_eq!(total(&[a.clone(), b], Counter::FwdDr), 4);
        a.rs[1].add_inactive(1);
        a.rs[1].add_inactive(-1);
        a.rs[1].add_active(1);
        assert_eq!((a.rs[1].active(), a.rs[1].inactive()), (1, 0));
    }
}
