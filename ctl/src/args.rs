//! Parsers for command-line values: `VIP:PORT`, `RIP[:PORT]`, scheduler
//! names and durations. Each returns a message clap shows after
//! "invalid value '...' for '<ARG>':", so the messages say what was expected.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lb_api::addr::{split_endpoint, EndpointError};
use lb_api::config::{Persistence, Scheduler};

/// A service address as written on the command line: `VIP:PORT`, or
/// `[VIP6]:PORT` for IPv6 (ipvsadm's bracket syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAddr {
    pub vip: IpAddr,
    pub port: u16,
}

/// A real server address: `RIP`, `RIP:PORT`, `[RIP6]` or `[RIP6]:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealAddr {
    pub address: IpAddr,
    pub port: Option<u16>,
}

/// `ADDRESS[:PORT]` split, with messages that name what was expected.
fn split<'a>(s: &'a str, what: &str, example: &str) -> Result<(IpAddr, Option<&'a str>), String> {
    split_endpoint(s).map_err(|e| match e {
        EndpointError::MissingAddress => format!("the {what} address is missing"),
        EndpointError::NotAnAddress(a) => format!(
            "`{a}` is not an IP address (expected e.g. {example}, or [2001:db8::100] for IPv6)"
        ),
        other => other.to_string(),
    })
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("port 0 is not allowed (use 1 to 65535)".into()),
        Ok(p) if p <= 65535 => Ok(p as u16),
        Ok(p) => Err(format!("port {p} is out of range (1 to 65535)")),
        Err(_) if s.is_empty() => Err("the port is missing after `:`".into()),
        Err(_) => Err(format!("`{s}` is not a port number (1 to 65535)")),
    }
}

/// Parses `VIP:PORT`, e.g. `198.18.0.100:80` or `[2001:db8::100]:80`. The
/// port is required, as in `ipvsadm -t VIP:PORT`; port 0 is a service on
/// all ports (which needs persistence, `-p`).
pub fn parse_service_addr(s: &str) -> Result<ServiceAddr, String> {
    let s = s.trim();
    let (vip, port) = split(s, "virtual", "198.18.0.100:80")?;
    if port.is_none() && vip.is_ipv6() && !s.starts_with('[') {
        return Err(format!(
            "`{s}`: write an IPv6 VIP and its port with brackets, e.g. [2001:db8::100]:80"
        ));
    }
    let Some(port) = port else {
        return Err(format!(
            "`{s}` has no port: write VIP:PORT, e.g. 198.18.0.100:80 or [2001:db8::100]:80 \
             (VIP:0 for all ports)"
        ));
    };
    Ok(ServiceAddr {
        vip,
        port: if port.trim() == "0" {
            0
        } else {
            parse_port(port)?
        },
    })
}

/// Parses a persistence netmask (`-M`): a prefix length (`24`) or a dotted
/// mask as ipvsadm takes it (`255.255.255.0`); returns the prefix length.
pub fn parse_netmask(s: &str) -> Result<u8, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u32>() {
        return if n <= 32 {
            Ok(n as u8)
        } else {
            Err(format!("prefix length {n} is out of range (0 to 32)"))
        };
    }
    let ip: Ipv4Addr = s.parse().map_err(|_| {
        format!("`{s}` is not a netmask: give a prefix length (24) or a mask (255.255.255.0)")
    })?;
    let m = u32::from(ip);
    if m.leading_ones() + m.trailing_zeros() != 32 {
        return Err(format!(
            "`{s}` is not a netmask: its one bits must come first (e.g. 255.255.255.0)"
        ));
    }
    Ok(m.leading_ones() as u8)
}

/// Parses an IPv6 persistence prefix length (0 to 128).
pub fn parse_prefix6(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(n) if n <= 128 => Ok(n),
        _ => Err(format!(
            "`{s}` is not an IPv6 prefix length (0 to 128; an IPv6 service's -M is a prefix \
             length, as in ipvsadm)"
        )),
    }
}

/// Persistence for a service on `vip` (`-p TIMEOUT [-M MASK]`): for IPv4,
/// `MASK` is a prefix length or a dotted mask (default 32); for IPv6 a
/// prefix length (default 128), as ipvsadm's `-M` is for IPv6 services.
pub fn persistence(timeout: u32, vip: IpAddr, mask: Option<&str>) -> Result<Persistence, String> {
    Ok(match vip {
        IpAddr::V4(_) => {
            Persistence::v4(timeout, mask.map(parse_netmask).transpose()?.unwrap_or(32))
        }
        IpAddr::V6(_) => Persistence {
            timeout,
            netmask: 32,
            prefix: mask.map(parse_prefix6).transpose()?,
        },
    })
}

/// Parses `RIP` or `RIP:PORT` (`[RIP6]:PORT` for IPv6). Without a port the
/// real server uses the service's port (which direct routing requires
/// anyway).
pub fn parse_real_addr(s: &str) -> Result<RealAddr, String> {
    let (address, port) = split(s.trim(), "real server", "198.18.0.11")?;
    Ok(RealAddr {
        address,
        port: port.map(parse_port).transpose()?,
    })
}

/// Parses a bare address, IPv4 or IPv6, brackets allowed (filters).
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    match split(s.trim(), "IP", "198.18.0.100")? {
        (ip, None) => Ok(ip),
        (_, Some(_)) => Err(format!("`{}` has a port: give the address alone", s.trim())),
    }
}

/// A real server given to `real edit`/`real del`: the address, optionally
/// with a port, which must then be checked against the service's port by
/// lbd. The protocol identifies real servers by address alone.
pub fn parse_real_ip(s: &str) -> Result<IpAddr, String> {
    parse_real_addr(s).map(|r| r.address)
}

/// Parses a timeout in seconds (fractions allowed), greater than zero.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!(
            "timeout {s} is out of range (more than 0, at most 86400 seconds)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--scheduler NAME`: the configuration's schedulers, by the names
/// ipvsadm spells them (`-s rr`); clap lists them in `--help`.
pub fn scheduler_parser() -> impl clap::builder::TypedValueParser<Value = Scheduler> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Scheduler::ALL.map(Scheduler::name))
        .map(|name: String| Scheduler::from_name(&name).expect("a listed scheduler name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_addresses() {
        assert_eq!(
            parse_service_addr("198.18.0.100:80").unwrap(),
            ServiceAddr {
                vip: "198.18.0.100".parse().unwrap(),
                port: 80
            }
        );
        assert_eq!(parse_service_addr(" 10.0.0.1:65535 ").unwrap().port, 65535);
        // Port 0: a service on all ports.
        assert_eq!(parse_service_addr("198.18.0.100:0").unwrap().port, 0);
        for (bad, says) in [
            ("198.18.0.100", "has no port"),
            ("198.18.0.100:", "port is missing"),
            ("198.18.0.100:65536", "out of range"),
            ("198.18.0.100:http", "not a port number"),
            ("198.18.0.300:80", "not an IP address"),
            (":80", "address is missing"),
            ("vip:80", "not an IP address"),
            ("[2001:db8::100]", "has no port"),
            ("[2001:db8::100:80", "needs its `]`"),
            ("2001:db8::100:80", "with brackets"),
            ("[2001:db8::100]:0x50", "not a port number"),
        ] {
            let e = parse_service_addr(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn ipv6_in_brackets_as_ipvsadm_takes_it() {
        assert_eq!(
            parse_service_addr("[2001:db8::100]:80").unwrap(),
            ServiceAddr {
                vip: "2001:db8::100".parse().unwrap(),
                port: 80
            }
        );
        let r = parse_real_addr("[2001:db8::10]:8080").unwrap();
        assert_eq!(
            (r.address, r.port),
            ("2001:db8::10".parse().unwrap(), Some(8080))
        );
        // Without a port, brackets are optional.
        assert_eq!(parse_real_addr("2001:db8::10").unwrap().port, None);
        assert_eq!(parse_real_addr("[2001:db8::10]").unwrap().port, None);
        assert_eq!(
            parse_ip("[2001:db8::1]").unwrap(),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_ip("198.18.0.1:80")
            .unwrap_err()
            .contains("has a port"));
        assert_eq!(parse_prefix6("64"), Ok(64));
        assert!(parse_prefix6("129").is_err());
        let v6: IpAddr = "2001:db8::100".parse().unwrap();
        let v4: IpAddr = "198.18.0.100".parse().unwrap();
        assert_eq!(persistence(60, v6, Some("64")).unwrap().prefix, Some(64));
        assert_eq!(persistence(60, v6, None).unwrap().prefix, None);
        assert!(persistence(60, v6, Some("255.255.255.0")).is_err());
        assert_eq!(
            persistence(60, v4, Some("255.255.255.0")).unwrap(),
            Persistence::v4(60, 24)
        );
        assert!(persistence(60, v4, Some("64"))
            .unwrap_err()
            .contains("out of range"));
    }

    #[test]
    fn real_addresses() {
        let r = parse_real_addr("198.18.0.11").unwrap();
        assert_eq!(r.port, None);
        assert_eq!(r.address, "198.18.0.11".parse::<IpAddr>().unwrap());
        assert_eq!(
            parse_real_addr("198.18.0.11:8080").unwrap().port,
            Some(8080)
        );
        assert!(parse_real_addr("198.18.0.11:x").is_err());
        assert!(parse_real_addr("rs1").is_err());
        assert!(parse_real_addr("").is_err());
        assert_eq!(
            parse_real_ip("198.18.0.11:80").unwrap(),
            "198.18.0.11".parse::<IpAddr>().unwrap()
        );
        assert!(parse_ip("1.2.3").is_err());
    }

    #[test]
    fn netmasks() {
        assert_eq!(parse_netmask("24"), Ok(24));
        assert_eq!(parse_netmask("0"), Ok(0));
        assert_eq!(parse_netmask("32"), Ok(32));
        assert_eq!(parse_netmask("255.255.255.0"), Ok(24));
        assert_eq!(parse_netmask("255.255.255.255"), Ok(32));
        assert_eq!(parse_netmask("0.0.0.0"), Ok(0));
        assert_eq!(parse_netmask("255.255.240.0"), Ok(20));
        assert!(parse_netmask("33").unwrap_err().contains("out of range"));
        assert!(parse_netmask("255.0.255.0")
            .unwrap_err()
            .contains("one bits must come first"));
        assert!(parse_netmask("mask").unwrap_err().contains("not a netmask"));
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_timeout("0.25").unwrap(), Duration::from_millis(250));
        for bad in ["0", "-1", "NaN", "inf", "soon", "100000"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedulers_map_to_config() {
        use clap::builder::TypedValueParser;
        let cmd = clap::Command::new("t");
        // As lbctl's --scheduler is declared: any case.
        let arg = clap::Arg::new("scheduler").ignore_case(true);
        let parse =
            |name: &str| scheduler_parser().parse_ref(&cmd, Some(&arg), std::ffi::OsStr::new(name));
        // Every scheduler of the configuration, by IPVS's name, any case.
        for s in Scheduler::ALL {
            assert_eq!(parse(s.name()).unwrap(), s);
            assert_eq!(parse(&s.name().to_uppercase()).unwrap(), s);
        }
        assert!(parse("dh").is_err());
    }
}
