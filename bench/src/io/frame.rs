//! The generator's frames: client→VIP TCP segments carrying a TSC stamp in
//! their payload, ARP replies for the real servers, and reading a returned
//! frame back.
//!
//! Layout of a generated frame (`size` bytes, no FCS, `size >= MIN_SIZE`):
//! Ethernet (14) + IPv4 without options (20) + TCP without options (20) +
//! payload. The payload starts with a 2-byte tag (which phase sent it) and
//! the 8-byte TSC at send time; the rest is zero. The device under test
//! forwards the frame back unchanged above Ethernet (DR rewrites only the
//! MACs; testpmd `io` nothing, `macswap` the MACs), so the stamp and the
//! client address/port come back and name the packet.
//!
//! Every frame has valid IPv4 and TCP checksums (lbd checks the IPv4 one).
//! Building one per packet must be cheap, so a [`Template`] holds the frame
//! with every per-packet field zero and the one's-complement sums of the
//! constant parts; [`Template::write`] copies it and adds the varying words.

use std::net::Ipv4Addr;

/// Smallest frame: headers (54 bytes) + tag (2) + TSC (8).
pub const MIN_SIZE: usize = 64;
/// Largest frame: a 1500-byte IP packet in Ethernet, no VLAN.
pub const MAX_SIZE: usize = 1514;

pub const ETH: usize = 14;
pub const IP: usize = ETH;
pub const TCP: usize = IP + 20;
pub const PAYLOAD: usize = TCP + 20;
const TAG_AT: usize = PAYLOAD;
const TSC_AT: usize = PAYLOAD + 2;

pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;
const ACK_NUMBER: u32 = 0x2000_0001;
const SEQ_NUMBER: u32 = 0x1000_0000;

/// Tags of the two phases of a run (payload bytes 0–1), so a late frame of
/// the warm-up is never counted in the measurement.
pub const TAG_WARMUP: u16 = 0x1bd1;
pub const TAG_MEASURE: u16 = 0x1bd2;

/// Addresses of the benchmark link, all in 198.18.0.0/15 (RFC 2544's
/// benchmarking range): nothing here is routable, and nothing leaves the
/// memif link anyway.
pub mod addr {
    use std::net::Ipv4Addr;

    /// The DUT's port address; its subnet holds the real servers.
    pub const DUT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    pub const DUT_PREFIX: u8 = 16;
    pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    pub const VPORT: u16 = 80;
    /// MAC of the DUT's memif port (set with the `mac=` device argument).
    pub const DUT_MAC: [u8; 6] = [0x02, 0, 0xc6, 0x12, 0, 0x02];
    /// MAC of the generator's memif port: the clients' "router".
    pub const GEN_MAC: [u8; 6] = [0x02, 0, 0xc6, 0x12, 0, 0x01];
    /// Clients: 198.19.0.0 upwards (outside the DUT's /16).
    pub const CLIENT_BASE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
    /// Source ports per client address.
    pub const PORTS_PER_CLIENT: u64 = 60_000;
    pub const FIRST_PORT: u16 = 1024;

    /// Real server `i` (0-based): 198.18.1.1, 198.18.1.2, …
    pub fn real_server(i: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 1, 1)) + i as u32)
    }

    /// Index of real server `ip` if it is one of the first `n`.
    pub fn real_server_index(ip: Ipv4Addr, n: usize) -> Option<usize> {
        let i = u32::from(ip).wrapping_sub(u32::from(real_server(0))) as usize;
        (i < n).then_some(i)
    }

    /// The MAC the generator answers for real server `i` (distinct per
    /// server, so a test can see the DUT spread the flows).
    pub fn real_server_mac(i: usize) -> [u8; 6] {
        [0x02, 0, 0xc6, 0x12, (i >> 8) as u8 | 0x80, i as u8]
    }

    /// Client address and port of flow number `flow`.
    #[inline]
    pub fn client_of(flow: u64) -> (u32, u16) {
        let ip = u32::from(CLIENT_BASE) + (flow / PORTS_PER_CLIENT) as u32;
        let port = FIRST_PORT + (flow % PORTS_PER_CLIENT) as u16;
        (ip, port)
    }

    /// Inverse of [`client_of`] (`None` for an address/port it never makes).
    #[inline]
    pub fn flow_of(ip: u32, port: u16) -> Option<u64> {
        let hi = u64::from(ip.checked_sub(u32::from(CLIENT_BASE))?);
        let lo = u64::from(port.checked_sub(FIRST_PORT)?);
        (lo < PORTS_PER_CLIENT).then_some(hi * PORTS_PER_CLIENT + lo)
    }
}

/// Sum of big-endian 16-bit words (odd tail padded with zero), unfolded.
fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// The 16-bit words of a 32-bit value, summed.
#[inline(always)]
fn sum32(v: u32) -> u32 {
    (v >> 16) + (v & 0xffff)
}

#[inline(always)]
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// A frame of one size with every per-packet field zero, and the partial
/// checksums of what does not change.
pub struct Template {
    bytes: Vec<u8>,
    /// Sum of the IPv4 header with source address and checksum zero.
    ip_sum: u32,
    /// Sum of the pseudo-header (without source) and the TCP segment with
    /// source port, flags, ACK number, tag, stamp and checksum zero.
    tcp_sum: u32,
}

impl Template {
    /// A template for frames of `size` bytes from `src_mac` to `dst_mac`.
    pub fn new(size: usize, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Result<Template, String> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            return Err(format!(
                "packet size {size} out of range: {MIN_SIZE}..={MAX_SIZE} bytes (without FCS)"
            ));
        }
        let mut b = vec![0u8; size];
        b[0..6].copy_from_slice(&dst_mac);
        b[6..12].copy_from_slice(&src_mac);
        b[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip_len = (size - ETH) as u16;
        {
            let ip = &mut b[IP..TCP];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
            ip[6] = 0x40; // DF
            ip[8] = 64; // TTL
            ip[9] = 6; // TCP
            ip[16..20].copy_from_slice(&addr::VIP.octets());
        }
        {
            let tcp = &mut b[TCP..PAYLOAD];
            tcp[2..4].copy_from_slice(&addr::VPORT.to_be_bytes());
            tcp[4..8].copy_from_slice(&SEQ_NUMBER.to_be_bytes());
            tcp[12] = 5 << 4;
            tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
        }
        let ip_sum = sum16(&b[IP..TCP]);
        // Pseudo-header: destination, protocol, TCP length (source added per
        // packet).
        let tcp_len = (size - TCP) as u32;
        let pseudo = sum32(u32::from(addr::VIP)) + 6 + tcp_len;
        let tcp_sum = pseudo + sum16(&b[TCP..]);
        Ok(Template {
            bytes: b,
            ip_sum,
            tcp_sum,
        })
    }

    /// Frame length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a template holds at least [`MIN_SIZE`] bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Write the frame of `flow` with TCP `flags` (SYN or ACK), phase `tag`
    /// and send time `tsc` into `out` (exactly [`Template::len`] bytes).
    #[inline]
    pub fn write(&self, out: &mut [u8], flow: u64, flags: u8, tag: u16, tsc: u64) {
        out.copy_from_slice(&self.bytes);
        let (src, sport) = addr::client_of(flow);
        out[IP + 12..IP + 16].copy_from_slice(&src.to_be_bytes());
        let ip_c = fold(u64::from(self.ip_sum + sum32(src)));
        out[IP + 10..IP + 12].copy_from_slice(&ip_c.to_be_bytes());

        out[TCP..TCP + 2].copy_from_slice(&sport.to_be_bytes());
        let ack = if flags & TCP_ACK != 0 { ACK_NUMBER } else { 0 };
        out[TCP + 8..TCP + 12].copy_from_slice(&ack.to_be_bytes());
        out[TCP + 13] = flags;
        out[TAG_AT..TAG_AT + 2].copy_from_slice(&tag.to_be_bytes());
        out[TSC_AT..TSC_AT + 8].copy_from_slice(&tsc.to_be_bytes());
        // The flags byte is the low half of the word holding the data offset
        // (already in the template sum); the stamp is four 16-bit words.
        let sum = u64::from(self.tcp_sum)
            + u64::from(sum32(src))
            + u64::from(sport)
            + u64::from(sum32(ack))
            + u64::from(flags)
            + u64::from(tag)
            + u64::from(sum32((tsc >> 32) as u32))
            + u64::from(sum32(tsc as u32));
        out[TCP + 16..TCP + 18].copy_from_slice(&fold(sum).to_be_bytes());
    }
}

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// One of ours: phase tag, send TSC, flow number, whether it was a SYN.
    Stamped {
        tag: u16,
        tsc: u64,
        flow: u64,
        syn: bool,
    },
    /// An ARP request from the DUT: who asks (MAC, IP) and for which IP.
    ArpRequest {
        sha: [u8; 6],
        spa: Ipv4Addr,
        tpa: Ipv4Addr,
    },
    /// Anything else.
    Other,
}

/// Classify a frame the DUT sent.
#[inline]
pub fn parse(f: &[u8]) -> Returned {
    if f.len() < 14 {
        return Returned::Other;
    }
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 if f.len() >= MIN_SIZE && f[IP] == 0x45 && f[IP + 9] == 6 => {
            let tag = u16::from_be_bytes([f[TAG_AT], f[TAG_AT + 1]]);
            if tag != TAG_WARMUP && tag != TAG_MEASURE {
                return Returned::Other;
            }
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&f[TSC_AT..TSC_AT + 8]);
            let src = u32::from_be_bytes([f[IP + 12], f[IP + 13], f[IP + 14], f[IP + 15]]);
            let sport = u16::from_be_bytes([f[TCP], f[TCP + 1]]);
            match addr::flow_of(src, sport) {
                Some(flow) => Returned::Stamped {
                    tag,
                    tsc: u64::from_be_bytes(ts),
                    flow,
                    syn: f[TCP + 13] & TCP_SYN != 0,
                },
                None => Returned::Other,
            }
        }
        // Ethernet/IPv4 ARP request (htype 1, ptype 0x0800, 6/4, op 1).
        0x0806 if f.len() >= ETH + 28 && f[ETH..ETH + 8] == [0, 1, 8, 0, 6, 4, 0, 1] => {
            let a = &f[ETH..];
            let mut sha = [0u8; 6];
            sha.copy_from_slice(&a[8..14]);
            Returned::ArpRequest {
                sha,
                spa: Ipv4Addr::new(a[14], a[15], a[16], a[17]),
                tpa: Ipv4Addr::new(a[24], a[25], a[26], a[27]),
            }
        }
        _ => Returned::Other,
    }
}

/// An ARP reply (60 bytes, padded) telling `to` (`to_mac`, `to_ip`) that
/// `ip` is at `mac`.
pub fn arp_reply(mac: [u8; 6], ip: Ipv4Addr, to_mac: [u8; 6], to_ip: Ipv4Addr) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].copy_from_slice(&to_mac);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let a = &mut f[ETH..ETH + 28];
    a[0..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    a[8..14].copy_from_slice(&mac);
    a[14..18].copy_from_slice(&ip.octets());
    a[18..24].copy_from_slice(&to_mac);
    a[24..28].copy_from_slice(&to_ip.octets());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(size: usize, flow: u64, flags: u8, tsc: u64) -> Vec<u8> {
        let t = Template::new(size, addr::GEN_MAC, addr::DUT_MAC).unwrap();
        let mut v = vec![0xaa; size];
        t.write(&mut v, flow, flags, TAG_MEASURE, tsc);
        v
    }

    #[test]
    fn flows_round_trip() {
        for f in [0, 1, 59_999, 60_000, 123_456_789] {
            let (ip, port) = addr::client_of(f);
            assert_eq!(addr::flow_of(ip, port), Some(f));
        }
        assert_eq!(addr::flow_of(0, 1024), None);
        assert_eq!(addr::real_server_index(addr::real_server(3), 4), Some(3));
        assert_eq!(addr::real_server_index(addr::real_server(4), 4), None);
        assert_eq!(addr::real_server_index(addr::DUT_IP, 4), None);
    }

    #[test]
    fn sizes_are_checked() {
        assert!(Template::new(63, addr::GEN_MAC, addr::DUT_MAC).is_err());
        assert!(Template::new(1515, addr::GEN_MAC, addr::DUT_MAC).is_err());
    }

    #[test]
    fn parse_reads_back_what_write_wrote() {
        let f = frame(64, 777_777, TCP_SYN, 0x0123_4567_89ab_cdef);
        assert_eq!(
            parse(&f),
            Returned::Stamped {
                tag: TAG_MEASURE,
                tsc: 0x0123_4567_89ab_cdef,
                flow: 777_777,
                syn: true
            }
        );
        assert_eq!(parse(&f[..20]), Returned::Other);
    }

    #[test]
    fn checksums_are_valid_by_an_independent_parser() {
        for (size, flags, tsc) in [
            (64, TCP_SYN, 0),
            (64, TCP_ACK, u64::MAX),
            (65, TCP_ACK, 0xffff_0000_ffff_0001),
            (1514, TCP_SYN, 0x0123_4567_89ab_cdef),
        ] {
            let f = frame(size, 3_000_001, flags, tsc);
            let p = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
            let Some(etherparse::NetSlice::Ipv4(v4)) = &p.net else {
                panic!("not IPv4")
            };
            let h = v4.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "{size}");
            assert_eq!(h.destination, addr::VIP.octets());
            let Some(etherparse::TransportSlice::Tcp(tcp)) = &p.transport else {
                panic!("not TCP")
            };
            assert_eq!(tcp.syn(), flags == TCP_SYN);
            assert_eq!(tcp.ack(), flags == TCP_ACK);
            assert_eq!(tcp.destination_port(), addr::VPORT);
            assert_eq!(tcp.payload().len(), size - PAYLOAD);
            let sum = tcp
                .to_header()
                .calc_checksum_ipv4(&h, tcp.payload())
                .unwrap();
            assert_eq!(sum, tcp.checksum(), "size {size} flags {flags:#x}");
        }
    }

    #[test]
    fn arp_reply_answers_a_request() {
        let r = arp_reply(
            addr::real_server_mac(1),
            addr::real_server(1),
            addr::DUT_MAC,
            addr::DUT_IP,
        );
        // A reply is not a request.
        assert_eq!(parse(&r), Returned::Other);
        assert_eq!(&r[ETH + 6..ETH + 8], &[0, 2]);
    }
}
