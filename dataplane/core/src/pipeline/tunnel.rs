//! IPIP tunnel forwarding (`ipvsadm -i`, IPVS's "Tunnel" method) and its
//! path-MTU handling.
//!
//! The client's IP packet is sent unchanged inside an outer IPv4 header:
//!
//! ```text
//! Ethernet(dst = real server's MAC, src = egress port's MAC)
//!   IPv4(src = outer source, dst = real server, protocol 4, TTL 64,
//!        DSCP/ECN and DF copied from the inner header, fresh ident)
//!     the client's IP packet, byte for byte (Ethernet padding removed)
//! ```
//!
//! The real server decapsulates (an `ipip` interface), accepts the inner
//! packet because it holds the VIP on `lo`, and answers the client directly.
//!
//! Policies:
//! - **Outer source.** The egress port's address, or, with
//!   `tunnel.source_pool`, an address of the pool chosen by a fixed hash of
//!   the flow (protocol, client address and port, VIP and port): every packet
//!   of a flow has the same outer source, and different flows differ, so a
//!   real server's RSS (which sees only the outer header) spreads tunnelled
//!   flows over its queues.
//! - **Too big, DF set.** When the inner packet's total length plus the
//!   20-byte outer header exceeds the egress port's `mtu`, the client gets
//!   ICMP destination unreachable / fragmentation needed (type 3 code 4) with
//!   next-hop MTU = port MTU − 20, as IPVS does. Its source is the VIP the
//!   client talked to: IPVS answers through `icmp_send`, which uses the
//!   packet's destination as source when it is a local address (the VIP is
//!   local on an IPVS director). It quotes the original IP header and the
//!   first 8 bytes of its payload (RFC 792), and leaves through the port the
//!   packet came in on, to the client's MAC (the frame's source). The ICMP
//!   message is smaller than the packet that caused it: no amplification.
//! - **Too big, DF clear.** Dropped and counted (`drop_tunnel_too_big`). Linux
//!   IPVS lets the kernel fragment the outer packet instead; lbd produces one
//!   frame per frame received, and fragments would need reassembly on the
//!   real server. Clients rarely send large packets without DF (Linux and
//!   other systems use path-MTU discovery for TCP by default).
//! - **Checksums.** The outer header is new, so its checksum is computed in
//!   full: by the NIC when the egress port negotiated IPv4 header checksum
//!   offload ([`PacketBuf::offload_checksums`]), in software otherwise. So
//!   is the IPv4 header of "fragmentation needed" (its ICMP checksum is
//!   always computed here: no NIC offloads ICMP). The inner packet is never
//!   touched.
//! - **No headroom.** The outer header is written into the buffer's headroom
//!   ([`PacketBuf::prepend`]); a buffer that cannot grow (a plain slice, or
//!   an mbuf without headroom) drops the packet (`drop_tunnel_no_headroom`).

use std::net::Ipv4Addr;

use super::encap::write_outer_headers;
pub use super::encap::{Encap, OVERHEAD, TTL};
use super::snapshot::{RsRoute, SourcePool};
use super::tunnel_plan;
use super::{Action, BufOp, PacketBuf, TxChecksums, Verdict, Worker, ETH};
use crate::conntrack::{ConnKey, TableKey};
use crate::counters::Counter;
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_IPV4};
use crate::wire::icmp::{self, Icmpv4Packet};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::MacAddr;

/// DSCP/ECN byte of ICMP errors: precedence "internetwork control", as
/// Linux's.
const ICMP_ERROR_TOS: u8 = 0xc0;

/// A fixed (unseeded) hash of a flow: the same on every worker and across
/// restarts, so a flow keeps its outer source address.
#[inline]
pub fn flow_hash(key: &ConnKey) -> u32 {
    let a = (u64::from(key.client_ip) << 32) | u64::from(key.vip);
    let b = (u64::from(key.client_port) << 32) | (u64::from(key.vport) << 8) | u64::from(key.proto);
    let mut h = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    (h >> 32) as u32 ^ h as u32
}

/// The outer source of a flow: from the pool by [`flow_hash`], or the
/// egress port's address without a pool.
#[inline]
pub fn outer_source(pool: Option<SourcePool>, port_addr: Ipv4Addr, key: &ConnKey) -> Ipv4Addr {
    match pool {
        None => port_addr,
        Some(p) => Ipv4Addr::from(p.base | (flow_hash(key) & p.mask)),
    }
}

/// Fill the checksum of the 20-byte IPv4 header at [`ETH`]: left to the NIC
/// when `nic` (the egress port's offloads) has it, computed here otherwise.
/// A full checksum over 20 bytes costs more than the offload request.
#[inline]
fn finish_ipv4_header<B: PacketBuf + ?Sized>(pkt: &mut B, nic: TxChecksums) {
    if nic.contains(TxChecksums::IPV4) {
        pkt.offload_checksums(ETH, ipv4::HEADER_LEN, TxChecksums::IPV4);
    } else {
        Ipv4Packet::new_unchecked(&mut pkt.data_mut()[ETH..ETH + ipv4::HEADER_LEN]).fill_checksum();
    }
}

/// Wrap the frame's IP packet in an outer IPv4 header as `e` says; its
/// checksum is left to the NIC if `nic` (the egress port's TX checksum
/// offloads) has IPv4's. The frame's IPv4 header must have been validated
/// (total length within the frame). On error the frame may have lost its
/// Ethernet padding, nothing else.
pub fn encap_frame<B: PacketBuf + ?Sized>(
    pkt: &mut B,
    e: &Encap,
    ident: u16,
    nic: TxChecksums,
) -> Result<(), Counter> {
    let inner = usize::from(e.inner_len);
    if pkt.data().len() < ETH + inner.max(ipv4::HEADER_LEN) {
        return Err(Counter::DropIpv4BadTotalLen);
    }
    let (tos, df) = {
        let ip = Ipv4Packet::new_unchecked(&pkt.data()[ETH..]);
        (ip.dscp_ecn(), ip.dont_frag())
    };
    // The outer total length covers exactly the inner packet: drop padding.
    if !pkt.truncate(ETH + inner) {
        return Err(Counter::DropIpv4BadTotalLen);
    }
    if !pkt.prepend(OVERHEAD) {
        return Err(Counter::DropTunnelNoHeadroom);
    }
    // [20 new][14 old Ethernet][inner] becomes [14 Ethernet][20 outer][inner]:
    // both headers written in place, from words built in registers.
    let nic_ipv4 = nic.contains(TxChecksums::IPV4);
    let h = pkt.data_mut().first_chunk_mut().expect("prepended");
    write_outer_headers(h, e, tos, df, ident, !nic_ipv4);
    if nic_ipv4 {
        pkt.offload_checksums(ETH, ipv4::HEADER_LEN, TxChecksums::IPV4);
    }
    Ok(())
}

/// [`write_outer_headers`] into an array of its own: what the tests
/// compare with the field-by-field header.
#[cfg(test)]
fn outer_headers(e: &Encap, tos: u8, df: bool, ident: u16, summed: bool) -> [u8; ETH + OVERHEAD] {
    let mut h = [0u8; ETH + OVERHEAD];
    write_outer_headers(&mut h, e, tos, df, ident, summed);
    h
}

/// Turn the frame (a validated IPv4 packet from a client) into ICMP
/// "fragmentation needed" back to that client, announcing `mtu`: from the
/// packet's destination (the VIP), to its source, Ethernet to the frame's
/// source MAC from `port_mac`. The frame shrinks to the message. The IPv4
/// header checksum is left to the NIC if `nic` (the port's TX checksum
/// offloads) has it.
pub fn frag_needed_frame<B: PacketBuf + ?Sized>(
    pkt: &mut B,
    port_mac: MacAddr,
    mtu: u16,
    ident: u16,
    nic: TxChecksums,
) -> Result<(), Counter> {
    const ICMP_AT: usize = ETH + ipv4::HEADER_LEN;
    const QUOTE_AT: usize = ICMP_AT + icmp::HEADER_LEN;
    let f = pkt.data_mut();
    if f.len() < ETH + ipv4::HEADER_LEN {
        return Err(Counter::DropIpv4Truncated);
    }
    let (client_mac, client, vip, hlen, total) = {
        let ip = Ipv4Packet::new_unchecked(&f[ETH..]);
        (
            EthernetFrame::new_unchecked(&f[..]).src(),
            ip.src(),
            ip.dst(),
            ip.header_len(),
            usize::from(ip.total_len()),
        )
    };
    // The original header and the first 8 bytes of its payload (RFC 792).
    let quote = (hlen + 8).min(total);
    let len = QUOTE_AT + quote;
    if f.len() < len.max(ETH + quote) {
        // Only a packet shorter than any MTU could be: never too big.
        return Err(Counter::DropTunnelTooBig);
    }
    f.copy_within(ETH..ETH + quote, QUOTE_AT);
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst(client_mac);
    eth.set_src(port_mac);
    eth.set_ethertype(ETHERTYPE_IPV4);
    let msg_len = (icmp::HEADER_LEN + quote) as u16;
    ipv4::emit_header_unsummed(
        &mut f[ETH..],
        vip,
        client,
        ipv4::PROTO_ICMP,
        TTL,
        msg_len,
        ident,
        false,
    );
    Ipv4Packet::new_unchecked(&mut f[ETH..ICMP_AT]).set_dscp_ecn(ICMP_ERROR_TOS);
    let mut m = Icmpv4Packet::new_unchecked(&mut f[ICMP_AT..len]);
    m.set_msg_type(icmp::ICMP_DEST_UNREACH);
    m.set_code(icmp::CODE_FRAG_NEEDED);
    m.set_rest_of_header(0);
    m.set_next_hop_mtu(mtu);
    m.fill_checksum();
    if !pkt.truncate(len) {
        return Err(Counter::DropTunnelTooBig);
    }
    finish_ipv4_header(pkt, nic);
    Ok(())
}

/// What tunnelling reads of a real server's route: three fields, passed in
/// registers, where a copy of the whole [`RsRoute`] cost ≈ 19 instructions
/// per tunnelled packet.
#[derive(Debug, Clone, Copy)]
pub(super) struct TunnelHop {
    port: u16,
    neigh: u32,
    addr: Ipv4Addr,
}

impl From<&RsRoute> for TunnelHop {
    #[inline(always)]
    fn from(r: &RsRoute) -> TunnelHop {
        TunnelHop {
            port: r.port,
            neigh: r.neigh,
            addr: r.addr,
        }
    }
}

impl Worker {
    /// Decide how to tunnel a packet of a flow to real server `rs`: the
    /// path-MTU check, the neighbour, the outer addresses. With
    /// `make_plan` (a service packet to a server the snapshot tunnels to,
    /// not a local one), the encapsulation decided becomes `rs`'s plan
    /// (see [`tunnel_plan`]).
    #[inline(always)]
    pub(super) fn forward_tunnel(
        &mut self,
        frame: &[u8],
        rs: u32,
        route: TunnelHop,
        svc_idx: usize,
        words: &[u64; 2],
        make_plan: bool,
    ) -> Action {
        let snap = &*self.snap;
        let out = &snap.ports[route.port as usize];
        let (inner_len, df) = {
            let ip = Ipv4Packet::new_unchecked(&frame[ETH..]);
            (ip.total_len(), ip.dont_frag())
        };
        if usize::from(inner_len) + OVERHEAD > usize::from(out.mtu) {
            return if df {
                Action::Buf(BufOp::FragNeeded(out.mtu.saturating_sub(OVERHEAD as u16)))
            } else {
                Verdict::Drop(Counter::DropTunnelTooBig).into()
            };
        }
        let Some(mac) = self.neigh.mac(route.neigh as usize) else {
            self.neigh.want(route.neigh as usize);
            return Verdict::Drop(Counter::DropNeighUnresolved).into();
        };
        let (plan, mtu) = (make_plan && snap.tunnel_pool.is_none(), out.mtu);
        self.encap = Encap {
            port: route.port,
            dst_mac: mac,
            src_mac: out.mac,
            // The key's fields only for a pool (the hash of the flow).
            src: match snap.tunnel_pool {
                None => out.addr,
                pool => outer_source(pool, out.addr, &ConnKey::from_words(words)),
            },
            dst: route.addr,
            inner_len,
            rs,
            svc: snap.services[svc_idx].id,
            outcome: Counter::FwdTunnel,
        };
        if plan {
            // Without a source pool, every packet to `rs` gets this
            // encapsulation but for its own fields: the server's plan.
            self.record_tunnel_plan(mtu);
        }
        Action::Tunnel
    }

    /// Record the plan of the encapsulation just decided (out of line: the
    /// full path runs once per server and plan).
    #[inline(never)]
    fn record_tunnel_plan(&mut self, mtu: u16) {
        let nic = self.nic_checksums(self.encap.port);
        self.tun.record(&self.encap, mtu, nic);
    }

    /// An established packet to real server `rs` of service `svc_idx`
    /// that `rs`'s tunnel plan takes (see [`tunnel_plan`]): what
    /// [`encapsulate_planned`](Self::encapsulate_planned) needs, kept in
    /// the worker, and the action that calls it; None when there is no
    /// valid plan or the packet's length is not one it takes.
    #[inline(always)]
    pub(super) fn tunnel_planned(
        &mut self,
        frame: &[u8],
        rs: u32,
        svc_idx: usize,
    ) -> Option<Action> {
        self.tun_hit = self.tun.hit(rs, svc_idx, tunnel_plan::inner_len(frame))?;
        Some(Action::Buf(BufOp::TunnelPlanned))
    }

    /// Carry out the planned encapsulation [`tunnel_planned`](Self::tunnel_planned)
    /// decided and count it, as [`encapsulate`](Self::encapsulate) does:
    /// the egress port, or the reason of a drop (for the caller to count).
    #[inline(always)]
    pub(super) fn encapsulate_planned<B: PacketBuf + ?Sized>(
        &mut self,
        pkt: &mut B,
    ) -> Result<u16, Counter> {
        let hit = self.tun_hit;
        let ident = self.next_ident();
        let port = self.tun.encap(pkt, hit, ident)?;
        let len = pkt.data().len();
        self.count_rs_in(hit.rs(), len);
        self.tally
            .service_in(&self.stats, &self.snap, hit.svc_idx(), len);
        self.stats.count(Counter::FwdTunnel);
        Ok(port)
    }

    /// Carry out the encapsulation [`Action::Tunnel`] asked for (in
    /// `self.encap`, read in place) on the buffer and count it.
    pub(super) fn encapsulate<B: PacketBuf + ?Sized>(&mut self, pkt: &mut B) -> Verdict {
        if self.encap.dst.is_unspecified() {
            // An IPv6 tunnel or Packet Too Big (pipeline/v6/tunnel.rs).
            let e = self.encap;
            return self.encapsulate6(pkt, &e);
        }
        let ident = self.next_ident();
        let e = &self.encap;
        if let Err(c) = encap_frame(pkt, e, ident, self.nic_checksums(e.port)) {
            return Verdict::Drop(c);
        }
        self.count_in(e.rs, e.svc, pkt.data().len());
        self.stats.count(e.outcome);
        Verdict::Tx(e.port)
    }

    /// Answer the client with ICMP "fragmentation needed", out of the port
    /// the packet came in on.
    pub(super) fn frag_needed<B: PacketBuf + ?Sized>(
        &mut self,
        pkt: &mut B,
        mtu: u16,
        rx_port: u16,
    ) -> Verdict {
        let mac = self.snap.ports[rx_port as usize].mac;
        let ident = self.next_ident();
        match frag_needed_frame(pkt, mac, mtu, ident, self.nic_checksums(rx_port)) {
            Ok(()) => {
                self.stats.count(Counter::IcmpFragNeededSent);
                Verdict::Tx(rx_port)
            }
            Err(c) => Verdict::Drop(c),
        }
    }

    #[inline]
    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::SliceBuf;
    use etherparse::{Icmpv4Type, IpNumber, Ipv4HeaderSlice, PacketBuilder};

    const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const DIR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const RS_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);

    /// A TCP segment from the client to the VIP with `payload` bytes, DF as given.
    fn client_frame(payload: usize, df: bool, tos: u8) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
            .ipv4([198, 18, 0, 1], [198, 18, 0, 100], 61)
            .tcp(40000, 80, 7, 65535)
            .ack(1)
            .write(&mut f, &vec![0x5a; payload])
            .unwrap();
        let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
        ip.set_dont_frag(df);
        ip.set_dscp_ecn(tos);
        ip.set_ident(0x1234);
        ip.fill_checksum();
        f
    }

    fn encap(inner_len: u16) -> Encap {
        Encap {
            port: 0,
            dst_mac: RS_MAC,
            src_mac: DIR_MAC,
            src: Ipv4Addr::new(198, 18, 0, 2),
            dst: Ipv4Addr::new(198, 18, 0, 11),
            inner_len,
            rs: 0,
            svc: 0,
            outcome: Counter::FwdTunnel,
        }
    }

    fn key(client_port: u16) -> ConnKey {
        ConnKey {
            proto: 6,
            client_ip: u32::from(Ipv4Addr::new(198, 18, 0, 1)),
            client_port,
            vip: u32::from(Ipv4Addr::new(198, 18, 0, 100)),
            vport: 80,
        }
    }

    proptest::proptest! {
        /// The headers built in registers are byte for byte what writing
        /// them field by field and summing the written header gives.
        #[test]
        fn outer_headers_are_the_field_by_field_ones(
            src: u32, dst: u32, inner_len in 20u16..=65515, ident: u16, tos: u8, df: bool,
            summed: bool, macs: [u8; 12],
        ) {
            let e = Encap {
                port: 0,
                dst_mac: MacAddr(macs[..6].try_into().unwrap()),
                src_mac: MacAddr(macs[6..].try_into().unwrap()),
                src: Ipv4Addr::from(src),
                dst: Ipv4Addr::from(dst),
                inner_len,
                rs: 0,
                svc: 0,
                outcome: Counter::FwdTunnel,
            };
            let mut want = [0u8; ETH + OVERHEAD];
            let mut eth = EthernetFrame::new_unchecked(&mut want[..]);
            eth.set_dst(e.dst_mac);
            eth.set_src(e.src_mac);
            eth.set_ethertype(ETHERTYPE_IPV4);
            let outer = &mut want[ETH..];
            ipv4::emit_header_unsummed(outer, e.src, e.dst, ipv4::PROTO_IPIP, TTL, inner_len, ident, df);
            let mut p = Ipv4Packet::new_unchecked(outer);
            p.set_dscp_ecn(tos);
            if summed {
                p.fill_checksum();
            }
            proptest::prop_assert_eq!(outer_headers(&e, tos, df, ident, summed), want);
        }
    }

    #[test]
    fn encapsulated_frame_parses_with_the_inner_packet_untouched() {
        for (df, tos) in [(true, 0), (false, 0xb8)] {
            let orig = client_frame(100, df, tos);
            let mut f = orig.clone();
            let inner_len = (orig.len() - ETH) as u16;
            encap_frame(&mut f, &encap(inner_len), 77, TxChecksums::NONE).unwrap();
            assert_eq!(f.len(), orig.len() + OVERHEAD);
            assert_eq!(&f[0..6], &RS_MAC.0);
            assert_eq!(&f[6..12], &DIR_MAC.0);
            assert_eq!(&f[12..14], &[0x08, 0x00]);
            let outer = Ipv4HeaderSlice::from_slice(&f[ETH..]).unwrap();
            assert_eq!(outer.ihl(), 5);
            assert_eq!(outer.protocol(), IpNumber::IPV4);
            assert_eq!(outer.source(), [198, 18, 0, 2]);
            assert_eq!(outer.destination(), [198, 18, 0, 11]);
            assert_eq!(outer.ttl(), 64);
            assert_eq!(outer.identification(), 77);
            assert_eq!(outer.dont_fragment(), df);
            assert!(!outer.more_fragments());
            assert_eq!(
                outer.total_len() as usize,
                OVERHEAD + usize::from(inner_len)
            );
            assert_eq!(f[ETH + 1], tos, "DSCP/ECN copied");
            assert_eq!(
                outer.header_checksum(),
                outer.to_header().calc_header_checksum()
            );
            assert_eq!(
                &f[ETH + OVERHEAD..],
                &orig[ETH..],
                "inner packet byte-identical"
            );
        }
    }

    /// With the NIC computing the outer checksum, the frame that leaves is
    /// byte for byte the one software builds, and the request names the
    /// outer header.
    #[test]
    fn outer_checksum_left_to_the_nic_is_what_software_computes() {
        use crate::pipeline::buf::NicBuf;
        for (df, tos) in [(true, 0), (false, 0xb8)] {
            let orig = client_frame(100, df, tos);
            let n = (orig.len() - ETH) as u16;
            let mut soft = orig.clone();
            encap_frame(&mut soft, &encap(n), 5, TxChecksums::NONE).unwrap();
            let mut nic = NicBuf::new(orig.clone());
            // A NIC with every offload: only the IPv4 header is asked for.
            let all = TxChecksums::IPV4
                .union(TxChecksums::TCP)
                .union(TxChecksums::UDP);
            encap_frame(&mut nic, &encap(n), 5, all).unwrap();
            assert_eq!(nic.requests, [(ETH, 20, TxChecksums::IPV4)]);
            assert_eq!(
                &nic.frame[ETH + 10..ETH + 12],
                &[0, 0],
                "field zeroed for the NIC"
            );
            assert_eq!(nic.transmit(), soft);
            // Software alone: no request.
            let mut none = NicBuf::new(orig.clone());
            encap_frame(&mut none, &encap(n), 5, TxChecksums::TCP).unwrap();
            assert!(none.requests.is_empty());
            assert_eq!(none.frame, soft);
        }
    }

    #[test]
    fn frag_needed_header_checksum_left_to_the_nic() {
        use crate::pipeline::buf::NicBuf;
        let orig = client_frame(1400, true, 0);
        let mut soft = orig.clone();
        frag_needed_frame(&mut soft, DIR_MAC, 1480, 9, TxChecksums::NONE).unwrap();
        let mut nic = NicBuf::new(orig);
        frag_needed_frame(&mut nic, DIR_MAC, 1480, 9, TxChecksums::IPV4).unwrap();
        assert_eq!(nic.requests, [(ETH, 20, TxChecksums::IPV4)]);
        assert_eq!(nic.transmit(), soft);
    }

    #[test]
    fn padding_is_removed_before_encapsulation() {
        let mut orig = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC.0, DIR_MAC.0)
            .ipv4([198, 18, 0, 1], [198, 18, 0, 100], 64)
            .udp(5353, 53)
            .write(&mut orig, b"q")
            .unwrap();
        let ip_len = orig.len() - ETH;
        orig.resize(60, 0); // Ethernet minimum: padding after the IP packet
        let mut f = orig.clone();
        encap_frame(&mut f, &encap(ip_len as u16), 1, TxChecksums::NONE).unwrap();
        assert_eq!(f.len(), ETH + OVERHEAD + ip_len);
        assert_eq!(&f[ETH + OVERHEAD..], &orig[ETH..ETH + ip_len]);
    }

    #[test]
    fn a_slice_cannot_take_the_outer_header() {
        let mut orig = client_frame(10, true, 0);
        let n = (orig.len() - ETH) as u16;
        let mut s = SliceBuf(&mut orig);
        assert_eq!(
            encap_frame(&mut s, &encap(n), 1, TxChecksums::IPV4),
            Err(Counter::DropTunnelNoHeadroom)
        );
    }

    #[test]
    fn frag_needed_quotes_the_header_and_8_bytes() {
        let orig = client_frame(1400, true, 0);
        let mut f = orig.clone();
        frag_needed_frame(&mut f, DIR_MAC, 1480, 9, TxChecksums::NONE).unwrap();
        assert_eq!(f.len(), ETH + 20 + 8 + 20 + 8);
        assert_eq!(&f[0..6], &CLIENT_MAC.0);
        assert_eq!(&f[6..12], &DIR_MAC.0);
        let p = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        let h = ip.header();
        assert_eq!(h.source(), [198, 18, 0, 100]);
        assert_eq!(h.destination(), [198, 18, 0, 1]);
        assert_eq!(h.protocol(), IpNumber::ICMP);
        assert_eq!(h.identification(), 9);
        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
        let Some(etherparse::TransportSlice::Icmpv4(m)) = &p.transport else {
            panic!("not ICMP")
        };
        assert_eq!(
            m.icmp_type(),
            Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                    next_hop_mtu: 1480
                }
            )
        );
        let want = etherparse::Icmpv4Header::with_checksum(m.icmp_type(), m.payload()).checksum;
        assert_eq!(m.checksum(), want);
        assert_eq!(m.payload(), &orig[ETH..ETH + 28]);
    }

    #[test]
    fn flow_hash_is_stable_and_spreads() {
        let pool = SourcePool {
            base: u32::from(Ipv4Addr::new(198, 18, 0, 192)),
            mask: 15,
        };
        let port = Ipv4Addr::new(198, 18, 0, 2);
        assert_eq!(outer_source(None, port, &key(1)), port);
        let mut seen = std::collections::HashSet::new();
        for p in 0..256u16 {
            let a = outer_source(Some(pool), port, &key(40000 + 2 * p));
            assert_eq!(a, outer_source(Some(pool), port, &key(40000 + 2 * p)));
            assert_eq!(u32::from(a) & !15, pool.base);
            seen.insert(a);
        }
        assert_eq!(seen.len(), 16, "256 flows use all 16 addresses");
    }
}
