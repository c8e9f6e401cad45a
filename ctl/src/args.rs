//! Parsers for command-line values: `VIP:PORT`, `RIP[:PORT]`, scheduler
//! names and durations. Each returns a message clap shows after
//! "invalid value '...' for '<ARG>':", so the messages say what was expected.

use std::net::Ipv4Addr;
use std::time::Duration;

use lb_api::config::Scheduler;

/// A service address as written on the command line: `VIP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAddr {
    pub vip: Ipv4Addr,
    pub port: u16,
}

/// A real server address: `RIP` or `RIP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealAddr {
    pub address: Ipv4Addr,
    pub port: Option<u16>,
}

fn parse_ip(s: &str, what: &str) -> Result<Ipv4Addr, String> {
    if s.is_empty() {
        return Err(format!("the {what} address is missing"));
    }
    s.parse().map_err(|_| {
        if s.contains(':') || s.starts_with('[') {
            format!("`{s}` is not an IPv4 address (lbd serves IPv4 only)")
        } else {
            format!("`{s}` is not an IPv4 address (expected e.g. 198.18.0.100)")
        }
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

/// Parses `VIP:PORT`, e.g. `198.18.0.100:80`. The port is required, as in
/// `ipvsadm -t VIP:PORT`; port 0 is a service on all ports (which needs
/// persistence, `-p`).
pub fn parse_service_addr(s: &str) -> Result<ServiceAddr, String> {
    let s = s.trim();
    let Some((ip, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "`{s}` has no port: write VIP:PORT, e.g. 198.18.0.100:80 (VIP:0 for all ports)"
        ));
    };
    Ok(ServiceAddr {
        vip: parse_ip(ip, "virtual")?,
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

/// Parses `RIP` or `RIP:PORT`. Without a port the real server uses the
/// service's port (which direct routing requires anyway).
pub fn parse_real_addr(s: &str) -> Result<RealAddr, String> {
    let s = s.trim();
    match s.rsplit_once(':') {
        Some((ip, port)) => Ok(RealAddr {
            address: parse_ip(ip, "real server")?,
            port: Some(parse_port(port)?),
        }),
        None => Ok(RealAddr {
            address: parse_ip(s, "real server")?,
            port: None,
        }),
    }
}

/// Parses a bare IPv4 address (filters, `real edit`, `real del`).
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    parse_ip(s.trim(), "IPv4")
}

/// A real server given to `real edit`/`real del`: the address, optionally
/// with a port, which must then be checked against the service's port by
/// lbd. The protocol identifies real servers by address alone.
pub fn parse_real_ip(s: &str) -> Result<Ipv4Addr, String> {
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
            ("198.18.0.300:80", "not an IPv4 address"),
            (":80", "address is missing"),
            ("[::1]:80", "IPv4 only"),
            ("vip:80", "not an IPv4 address"),
        ] {
            let e = parse_service_addr(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn real_addresses() {
        let r = parse_real_addr("198.18.0.11").unwrap();
        assert_eq!(r.port, None);
        assert_eq!(r.address, "198.18.0.11".parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            parse_real_addr("198.18.0.11:8080").unwrap().port,
            Some(8080)
        );
        assert!(parse_real_addr("198.18.0.11:x").is_err());
        assert!(parse_real_addr("rs1").is_err());
        assert!(parse_real_addr("").is_err());
        assert_eq!(
            parse_real_ip("198.18.0.11:80").unwrap(),
            "198.18.0.11".parse::<Ipv4Addr>().unwrap()
        );
        assert!(parse_ipv4("1.2.3").is_err());
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
