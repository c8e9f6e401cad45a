//! A bounded walk over IPv6 extension headers (RFC 8200 §4), from the fixed
//! header to the upper-layer protocol.
//!
//! # Policy
//!
//! The director reads ports, so it needs the upper-layer header; it is not
//! the packet's final destination (real servers are), so it does not act on
//! options. The walk:
//!
//! * passes **hop-by-hop options** (0) only right after the fixed header
//!   (RFC 8200 §4.1; anywhere else: [`Ipv6ExtError::HopByHopNotFirst`]),
//!   and **destination options** (60) anywhere, without interpreting the
//!   options inside (router alert, jumbo payload and unknown options are
//!   all passed untouched);
//! * passes a **routing header** (43) whose segments-left is 0 (it has
//!   reached its last hop); with segments left the packet is meant to go
//!   on to another node: [`Ipv6ExtError::RoutingSegmentsLeft`];
//! * stops at a **fragment header** (44): [`Ipv6ExtError::Fragment`]. As
//!   for IPv4 fragments, the policy is to drop them and count them (only
//!   the first fragment would carry ports, and the director does not
//!   reassemble);
//! * stops at **ESP** (50) and **AH** (51): [`Ipv6ExtError::Unsupported`]
//!   (ESP hides the ports; AH is not walked);
//! * ends at **no next header** (59) like at an upper layer: the result
//!   names protocol 59, for which no service exists;
//! * takes any other next-header value as the upper layer (TCP, UDP,
//!   ICMPv6, and protocols the director has no service for);
//! * gives up after [`MAX_HEADERS`] extension headers or when the headers
//!   take more than [`MAX_CHAIN_LEN`] bytes: [`Ipv6ExtError::TooMany`].
//!   Every header moves the walk forward by at least 8 bytes, so the walk
//!   ends in at most `MAX_HEADERS` steps whatever the bytes: a chain that
//!   "loops" (the same header type again and again) is just a long chain;
//! * reports a header that does not fit in the payload as
//!   [`Ipv6ExtError::Truncated`].

use super::ipv6::{
    Ipv6Packet, NEXT_HEADER_AH, NEXT_HEADER_DEST_OPTS, NEXT_HEADER_ESP, NEXT_HEADER_FRAGMENT,
    NEXT_HEADER_HOP_BY_HOP, NEXT_HEADER_ROUTING,
};

/// Most extension headers the walk passes before giving up. RFC 8200 §4.1
/// recommends at most one of each kind (destination options twice): seven
/// headers cover every order it allows, and one more leaves room for
/// unusual but harmless chains.
pub const MAX_HEADERS: usize = 8;
/// Most bytes of extension headers the walk accepts before the upper layer
/// (RFC 7112 asks that the whole chain fit in the first fragment; a chain
/// this long is not seen in legitimate traffic to a load balancer).
pub const MAX_CHAIN_LEN: usize = 512;

/// Where the upper layer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// Upper-layer protocol (the next header that is not an extension
    /// header the walk passes): TCP, UDP, ICMPv6, 59 (nothing), ...
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 payload
    /// (the byte after the fixed header); 0 without extension headers.
    pub offset: usize,
}

/// Why the walk did not reach an upper layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Ipv6ExtError {
    /// An extension header does not fit in the payload.
    #[error("IPv6 extension header truncated")]
    Truncated,
    /// More than [`MAX_HEADERS`] headers or [`MAX_CHAIN_LEN`] bytes.
    #[error("IPv6 extension header chain too long")]
    TooMany,
    /// A fragment header: dropped and counted by policy.
    #[error("IPv6 fragment")]
    Fragment,
    /// A hop-by-hop header after another extension header.
    #[error("IPv6 hop-by-hop options not right after the fixed header")]
    HopByHopNotFirst,
    /// A routing header with segments left: not for us.
    #[error("IPv6 routing header with segments left")]
    RoutingSegmentsLeft,
    /// ESP or AH (the protocol number).
    #[error("unsupported IPv6 extension header {0}")]
    Unsupported(u8),
}

impl Ipv6ExtError {
    /// Number of distinct reasons (for counter arrays).
    pub const COUNT: usize = 6;

    /// A stable snake_case name, suitable as a counter / metric label.
    #[inline]
    pub const fn as_str(self) -> &'static str {
        match self {
            Ipv6ExtError::Truncated => "ext_truncated",
            Ipv6ExtError::TooMany => "ext_too_many",
            Ipv6ExtError::Fragment => "fragment",
            Ipv6ExtError::HopByHopNotFirst => "hop_by_hop_not_first",
            Ipv6ExtError::RoutingSegmentsLeft => "routing_segments_left",
            Ipv6ExtError::Unsupported(_) => "ext_unsupported",
        }
    }

    /// A dense index below [`COUNT`](Self::COUNT) (the protocol of
    /// `Unsupported` is not part of it).
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            Ipv6ExtError::Truncated => 0,
            Ipv6ExtError::TooMany => 1,
            Ipv6ExtError::Fragment => 2,
            Ipv6ExtError::HopByHopNotFirst => 3,
            Ipv6ExtError::RoutingSegmentsLeft => 4,
            Ipv6ExtError::Unsupported(_) => 5,
        }
    }
}

/// Walks the extension headers of `ip` (whose payload starts with the
/// header named by its next-header field) to the upper layer.
///
/// # Errors
/// See [`walk`].
#[inline]
pub fn upper_layer<T: AsRef<[u8]>>(ip: &Ipv6Packet<T>) -> Result<UpperLayer, Ipv6ExtError> {
    walk(ip.next_header(), ip.payload())
}

/// Walks the extension headers in `payload` (the IPv6 payload: the bytes
/// after the fixed header, up to the payload length), the first being
/// `next_header` (the fixed header's next-header field), following the
/// module's policy.
///
/// # Errors
/// [`Ipv6ExtError`], as the module documentation describes.
pub fn walk(mut next_header: u8, payload: &[u8]) -> Result<UpperLayer, Ipv6ExtError> {
    let mut offset = 0usize;
    // Bounded: at most MAX_HEADERS passes, each of which returns or moves
    // `offset` forward by at least 8 bytes.
    for n in 0..=MAX_HEADERS {
        let len = match next_header {
            NEXT_HEADER_HOP_BY_HOP if n > 0 => return Err(Ipv6ExtError::HopByHopNotFirst),
            NEXT_HEADER_HOP_BY_HOP | NEXT_HEADER_DEST_OPTS => options_len(payload, offset)?,
            NEXT_HEADER_ROUTING => {
                let len = options_len(payload, offset)?;
                // Bytes 2 and 3: routing type, segments left.
                if payload[offset + 3] != 0 {
                    return Err(Ipv6ExtError::RoutingSegmentsLeft);
                }
                len
            }
            NEXT_HEADER_FRAGMENT => return Err(Ipv6ExtError::Fragment),
            NEXT_HEADER_ESP | NEXT_HEADER_AH => return Err(Ipv6ExtError::Unsupported(next_header)),
            protocol => return Ok(UpperLayer { protocol, offset }),
        };
        if n == MAX_HEADERS || offset + len > MAX_CHAIN_LEN {
            return Err(Ipv6ExtError::TooMany);
        }
        next_header = payload[offset];
        offset += len;
    }
    // Not reached: pass MAX_HEADERS returns above whatever it finds.
    Err(Ipv6ExtError::TooMany)
}

/// Length of the hop-by-hop / destination-options / routing header at
/// `offset`: (Hdr Ext Len + 1) × 8 bytes, checked to fit in `payload`.
#[inline]
fn options_len(payload: &[u8], offset: usize) -> Result<usize, Ipv6ExtError> {
    if payload.len() < offset + 8 {
        return Err(Ipv6ExtError::Truncated);
    }
    let len = (usize::from(payload[offset + 1]) + 1) * 8;
    if payload.len() < offset + len {
        return Err(Ipv6ExtError::Truncated);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::NEXT_HEADER_NONE;
    use crate::wire::PROTO_TCP;

    /// An options-style header: next header, hdr ext len, then filler up to
    /// (len + 1) × 8 bytes (`third` and `fourth` are bytes 2 and 3).
    fn ext(next: u8, hdr_ext_len: u8, third: u8, fourth: u8) -> Vec<u8> {
        let mut v = vec![next, hdr_ext_len, third, fourth];
        v.resize((usize::from(hdr_ext_len) + 1) * 8, 0);
        v
    }

    #[test]
    fn no_extension_headers() {
        assert_eq!(
            walk(PROTO_TCP, &[0; 20]),
            Ok(UpperLayer {
                protocol: PROTO_TCP,
                offset: 0
            })
        );
        // The upper layer is not checked here: an empty payload is fine.
        assert_eq!(walk(17, &[]).map(|u| u.offset), Ok(0));
        assert_eq!(walk(NEXT_HEADER_NONE, &[]).map(|u| u.protocol), Ok(59));
    }

    #[test]
    fn passes_hop_by_hop_dest_opts_and_finished_routing() {
        let mut p = ext(NEXT_HEADER_DEST_OPTS, 0, 5, 2); // router alert
        p.extend(ext(NEXT_HEADER_ROUTING, 1, 1, 0));
        p.extend(ext(NEXT_HEADER_DEST_OPTS, 0, 0, 0));
        p.extend(ext(PROTO_TCP, 0, 0, 0));
        p.extend([0xaa; 20]);
        assert_eq!(
            walk(NEXT_HEADER_HOP_BY_HOP, &p),
            Ok(UpperLayer {
                protocol: PROTO_TCP,
                offset: 8 + 16 + 8 + 8
            })
        );
    }

    #[test]
    fn outcomes() {
        let hbh_twice = [ext(0, 0, 0, 0), ext(6, 0, 0, 0)].concat();
        assert_eq!(walk(0, &hbh_twice), Err(Ipv6ExtError::HopByHopNotFirst));
        let routing = ext(6, 0, 4, 1);
        assert_eq!(walk(43, &routing), Err(Ipv6ExtError::RoutingSegmentsLeft));
        let frag = [ext(44, 0, 0, 0), vec![6, 0, 0, 1, 0, 0, 0, 1]].concat();
        assert_eq!(walk(60, &frag), Err(Ipv6ExtError::Fragment));
        assert_eq!(walk(44, &frag[8..]), Err(Ipv6ExtError::Fragment));
        assert_eq!(walk(50, &[0; 64]), Err(Ipv6ExtError::Unsupported(50)));
        assert_eq!(walk(51, &[0; 64]), Err(Ipv6ExtError::Unsupported(51)));
    }

    #[test]
    fn truncations() {
        let h = ext(6, 1, 0, 0);
        for cut in 0..h.len() {
            assert_eq!(walk(60, &h[..cut]), Err(Ipv6ExtError::Truncated), "{cut}");
        }
        assert!(walk(60, &h).is_ok());
    }

    #[test]
    fn loops_and_long_chains_end() {
        // A "loop": each destination-options header names another one.
        let looped = ext(60, 0, 0, 0).repeat(100);
        assert_eq!(walk(60, &looped), Err(Ipv6ExtError::TooMany));
        // Exactly MAX_HEADERS headers pass, one more does not.
        let mut chain = ext(60, 0, 0, 0).repeat(MAX_HEADERS - 1);
        chain.extend(ext(6, 0, 0, 0));
        assert_eq!(walk(60, &chain).map(|u| u.offset), Ok(MAX_HEADERS * 8));
        let mut longer = ext(60, 0, 0, 0).repeat(MAX_HEADERS);
        longer.extend(ext(6, 0, 0, 0));
        assert_eq!(walk(60, &longer), Err(Ipv6ExtError::TooMany));
        // Long in bytes: two 2048-byte headers exceed MAX_CHAIN_LEN.
        let fat = [ext(60, 255, 0, 0), ext(6, 255, 0, 0)].concat();
        assert_eq!(walk(60, &fat), Err(Ipv6ExtError::TooMany));
        let ok = [ext(60, 31, 0, 0), ext(6, 31, 0, 0)].concat();
        assert_eq!(walk(60, &ok).map(|u| u.offset), Ok(MAX_CHAIN_LEN));
    }

    #[test]
    fn error_names_and_indices_are_dense() {
        let all = [
            Ipv6ExtError::Truncated,
            Ipv6ExtError::TooMany,
            Ipv6ExtError::Fragment,
            Ipv6ExtError::HopByHopNotFirst,
            Ipv6ExtError::RoutingSegmentsLeft,
            Ipv6ExtError::Unsupported(50),
        ];
        let mut names: Vec<_> = all.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Ipv6ExtError::COUNT);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(!e.to_string().is_empty());
        }
    }
}
