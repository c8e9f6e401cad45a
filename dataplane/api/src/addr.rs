//! Addresses with ports as ipvsadm writes and reads them: `198.18.0.100:80`
//! for IPv4, `[2001:db8::100]:80` for IPv6 (the brackets keep the port
//! apart from the address's own colons).

use std::fmt;
use std::net::IpAddr;

/// An address and a port, displayed as ipvsadm lists them:
/// `198.18.0.100:80`, `[2001:db8::100]:80`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockAddr(pub IpAddr, pub u16);

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Through a String, so that width and alignment (`{:<23}`) apply
        // to the whole text as ipvsadm's columns do.
        let text = match self.0 {
            IpAddr::V4(a) => format!("{a}:{}", self.1),
            IpAddr::V6(a) => format!("[{a}]:{}", self.1),
        };
        f.pad(&text)
    }
}

/// An address alone, bracketed if IPv6 (`[2001:db8::100]`), as ipvsadm
/// writes an address that a `:` and more may follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bracketed(pub IpAddr);

impl fmt::Display for Bracketed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0 {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        f.pad(&text)
    }
}

/// What is wrong with an `ADDRESS[:PORT]` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointError {
    /// Nothing before the port.
    MissingAddress,
    /// `[` without its `]`, or something other than `:PORT` after it.
    BadBrackets(String),
    /// Not an IPv4 or IPv6 address.
    NotAnAddress(String),
    /// An IPv6 address followed by what looks like a port, unbracketed.
    Ipv6NeedsBrackets(String),
    /// The text after `:` is not a port number.
    BadPort(String),
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::MissingAddress => write!(f, "the address is missing"),
            EndpointError::BadBrackets(s) => write!(
                f,
                "`{s}` is not [IPV6]:PORT (e.g. [2001:db8::100]:80): a `[` needs its `]`, \
                 then `:` and the port"
            ),
            EndpointError::NotAnAddress(s) => write!(
                f,
                "`{s}` is not an IP address (expected e.g. 198.18.0.100 or [2001:db8::100])"
            ),
            EndpointError::Ipv6NeedsBrackets(s) => write!(
                f,
                "`{s}` is not an address: write an IPv6 address with a port in brackets, \
                 e.g. [2001:db8::100]:80"
            ),
            EndpointError::BadPort(p) if p.is_empty() => write!(f, "the port is missing after `:`"),
            EndpointError::BadPort(p) => write!(f, "`{p}` is not a port number (0 to 65535)"),
        }
    }
}

impl std::error::Error for EndpointError {}

/// Splits `ADDRESS[:PORT]` into the address and the port text (if any):
/// `198.18.0.100:80`, `198.18.0.100`, `[2001:db8::100]:80`,
/// `[2001:db8::100]`, or a bare `2001:db8::100` (an IPv6 address without
/// brackets has no port: its colons are its own).
pub fn split_endpoint(s: &str) -> Result<(IpAddr, Option<&str>), EndpointError> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| EndpointError::BadBrackets(s.to_string()))?;
        let ip = inside
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| EndpointError::NotAnAddress(inside.to_string()))?;
        return match after {
            "" => Ok((IpAddr::V6(ip), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((IpAddr::V6(ip), Some(port))),
                None => Err(EndpointError::BadBrackets(s.to_string())),
            },
        };
    }
    if s.matches(':').count() > 1 {
        // Several colons: a bare IPv6 address, or one with a port that
        // lacks its brackets (which cannot be told apart in general).
        return s
            .parse::<std::net::Ipv6Addr>()
            .map(|ip| (IpAddr::V6(ip), None))
            .map_err(|_| EndpointError::Ipv6NeedsBrackets(s.to_string()));
    }
    let (ip, port) = match s.split_once(':') {
        Some((ip, port)) => (ip, Some(port)),
        None => (s, None),
    };
    if ip.is_empty() {
        return Err(EndpointError::MissingAddress);
    }
    let ip = ip
        .parse::<std::net::Ipv4Addr>()
        .map_err(|_| EndpointError::NotAnAddress(ip.to_string()))?;
    Ok((IpAddr::V4(ip), port))
}

/// Parses `ADDRESS[:PORT]` ([`split_endpoint`]) with a port of 0 to 65535.
pub fn parse_endpoint(s: &str) -> Result<(IpAddr, Option<u16>), EndpointError> {
    let (ip, port) = split_endpoint(s)?;
    let port = port
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| EndpointError::BadPort(p.to_string()))
        })
        .transpose()?;
    Ok((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn displays_like_ipvsadm() {
        assert_eq!(
            SockAddr(ip("198.18.0.100"), 80).to_string(),
            "198.18.0.100:80"
        );
        assert_eq!(
            SockAddr(ip("2001:db8::100"), 80).to_string(),
            "[2001:db8::100]:80"
        );
        assert_eq!(
            format!("{:<22}|", SockAddr(ip("2001:db8::1"), 80)),
            "[2001:db8::1]:80      |"
        );
        assert_eq!(Bracketed(ip("2001:db8::1")).to_string(), "[2001:db8::1]");
        assert_eq!(Bracketed(ip("198.18.0.1")).to_string(), "198.18.0.1");
    }

    #[test]
    fn parses_both_families() {
        assert_eq!(
            parse_endpoint("198.18.0.100:80"),
            Ok((ip("198.18.0.100"), Some(80)))
        );
        assert_eq!(
            parse_endpoint(" 198.18.0.100 "),
            Ok((ip("198.18.0.100"), None))
        );
        assert_eq!(
            parse_endpoint("[2001:db8::100]:80"),
            Ok((ip("2001:db8::100"), Some(80)))
        );
        assert_eq!(
            parse_endpoint("[2001:db8::100]"),
            Ok((ip("2001:db8::100"), None))
        );
        assert_eq!(
            parse_endpoint("2001:db8::10"),
            Ok((ip("2001:db8::10"), None))
        );
        assert_eq!(parse_endpoint("[::1]:0"), Ok((ip("::1"), Some(0))));
    }

    #[test]
    fn says_what_is_wrong() {
        for (bad, says) in [
            ("[2001:db8::100:80", "needs its `]`"),
            ("[2001:db8::100]80", "needs its `]`"),
            ("[198.18.0.1]:80", "not an IP address"),
            ("2001:db8::100:80:x", "in brackets"),
            ("198.18.0.300:80", "not an IP address"),
            (":80", "address is missing"),
            ("198.18.0.1:", "port is missing"),
            ("198.18.0.1:65536", "not a port number"),
            ("[2001:db8::1]:http", "not a port number"),
        ] {
            let e = parse_endpoint(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
