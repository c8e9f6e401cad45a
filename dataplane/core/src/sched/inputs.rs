//! What the schedulers are given: a candidate's weight and connection
//! counts, and a real server as the table builders (sh, mh) see it.

/// What a scheduler needs to know about one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub weight: u32,
    /// Established connections (ipvsadm's ActiveConn).
    pub active: u32,
    /// Other connections (ipvsadm's InActConn).
    pub inactive: u32,
}

impl Candidate {
    /// IPVS's load estimate for lc/wlc: active connections weigh 256 times
    /// more than inactive ones (a SYN_RECV or FIN_WAIT entry costs little).
    #[inline]
    pub fn overhead(&self) -> u64 {
        ((self.active as u64) << 8) + self.inactive as u64
    }
}

/// A real server as the table builders see it: its identity (which the
/// Maglev permutation hashes, so that the list's order does not matter) and
/// its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its address, either family (a service may mix them).
    pub addr: std::net::IpAddr,
    pub port: u16,
    pub weight: u32,
}
