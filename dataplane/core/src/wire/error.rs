//! Why a view rejected a buffer.

/// Why a buffer was rejected by a view's `new_checked`.
///
/// The variants are precise enough to serve as drop-reason counters; see
/// [`WireError::as_str`] and [`WireError::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the protocol's fixed header.
    #[error("buffer shorter than the fixed header")]
    Truncated,
    /// The header's own length field (IPv4 IHL, TCP data offset) points past
    /// the end of the buffer.
    #[error("header length exceeds the buffer")]
    HeaderTruncated,
    /// A length field covering the payload (IPv4 total length, IPv6 payload
    /// length, UDP length) claims more bytes than the buffer holds.
    #[error("length field exceeds the buffer")]
    PayloadTruncated,
    /// The IP version nibble is not the view's (4 for IPv4, 6 for IPv6).
    #[error("IP version is not the expected one")]
    BadVersion,
    /// IPv4: IHL < 5.
    #[error("IPv4 header length below 20 bytes")]
    BadHeaderLen,
    /// IPv4: total length smaller than the header length.
    #[error("IPv4 total length smaller than the header")]
    BadTotalLen,
    /// TCP: data offset < 5.
    #[error("TCP data offset below 20 bytes")]
    BadDataOffset,
    /// UDP: length field < 8.
    #[error("UDP length below 8 bytes")]
    BadLength,
    /// ARP: hardware type is not Ethernet (1).
    #[error("ARP hardware type is not Ethernet")]
    BadHardwareType,
    /// ARP: protocol type is not IPv4 (0x0800).
    #[error("ARP protocol type is not IPv4")]
    BadProtocolType,
    /// ARP: hardware address length is not 6.
    #[error("ARP hardware address length is not 6")]
    BadHardwareLen,
    /// ARP: protocol address length is not 4.
    #[error("ARP protocol address length is not 4")]
    BadProtocolLen,
}

impl WireError {
    /// Every variant, in declaration order (for sizing counter arrays;
    /// `ALL[e.index()] == e`).
    pub const ALL: [WireError; 12] = [
        WireError::Truncated,
        WireError::HeaderTruncated,
        WireError::PayloadTruncated,
        WireError::BadVersion,
        WireError::BadHeaderLen,
        WireError::BadTotalLen,
        WireError::BadDataOffset,
        WireError::BadLength,
        WireError::BadHardwareType,
        WireError::BadProtocolType,
        WireError::BadHardwareLen,
        WireError::BadProtocolLen,
    ];

    /// A stable snake_case name, suitable as a counter / metric label.
    #[inline]
    pub const fn as_str(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::HeaderTruncated => "header_truncated",
            WireError::PayloadTruncated => "payload_truncated",
            WireError::BadVersion => "bad_version",
            WireError::BadHeaderLen => "bad_header_len",
            WireError::BadTotalLen => "bad_total_len",
            WireError::BadDataOffset => "bad_data_offset",
            WireError::BadLength => "bad_length",
            WireError::BadHardwareType => "bad_hardware_type",
            WireError::BadProtocolType => "bad_protocol_type",
            WireError::BadHardwareLen => "bad_hardware_len",
            WireError::BadProtocolLen => "bad_protocol_len",
        }
    }

    /// Position of the variant in [`WireError::ALL`] (a dense index for
    /// counter arrays).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}
