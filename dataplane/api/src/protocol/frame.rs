//! Length-prefixed JSON framing.

use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Serialize};

/// Largest frame either side accepts (a `save` of a big configuration fits).
pub const MAX_FRAME: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection cleanly between frames.
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME} bytes")]
    TooLarge(usize),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Serialize `msg` into a frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parse a frame body (without its length prefix).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Read one frame body. Refuses a length above [`MAX_FRAME`] before reading
/// the body, so a hostile peer cannot make us allocate.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(FrameError::TooLarge(n));
    }
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(body)
}

/// Write `msg` as one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), FrameError> {
    let bytes = encode(msg)?;
    w.write_all(&bytes)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use crate::config::Protocol;
    use std::io::Cursor;

    fn sample_requests() -> Vec<Request> {
        let key = ServiceKey::addr(Protocol::Tcp, "198.18.0.100".parse().unwrap(), 80);
        vec![
            Request::Status,
            Request::List,
            Request::Conns {
                filter: ConnFilter {
                    state: Some("ESTABLISHED".into()),
                    ..Default::default()
                },
                limit: 100,
            },
            Request::DeleteReal {
                service: key,
                address: "198.18.0.11".parse().unwrap(),
                mode: RemoveMode::Drain,
            },
            Request::EditService {
                key,
                edit: ServiceEdit {
                    scheduler: Some(crate::config::Scheduler::Wrr),
                    persistence: Some(PersistenceChange::Set(crate::config::Persistence::v4(
                        60, 24,
                    ))),
                },
            },
            Request::SetTimeouts(TimeoutEdit {
                tcp: Some(100),
                tcpfin: None,
                udp: Some(5),
            }),
            Request::Restore {
                ron: "(ports: [])".into(),
            },
        ]
    }

    #[test]
    fn round_trip_every_sample() {
        for req in sample_requests() {
            let f = RequestFrame {
                version: PROTOCOL_VERSION,
                request: req.clone(),
            };
            let bytes = encode(&f).unwrap();
            let body = read_frame(&mut Cursor::new(&bytes)).unwrap();
            let back: RequestFrame = decode(&body).unwrap();
            assert_eq!(back, f);
        }
        let resp = ResponseFrame {
            version: PROTOCOL_VERSION,
            response: Err(ApiError::new(
                ErrorKind::NotFound,
                "no service 198.18.0.100:81/tcp",
            )),
        };
        let body = read_frame(&mut Cursor::new(encode(&resp).unwrap())).unwrap();
        assert_eq!(decode::<ResponseFrame>(&body).unwrap(), resp);
    }

    #[test]
    fn several_frames_on_one_stream() {
        let mut bytes = Vec::new();
        for r in sample_requests() {
            bytes.extend(
                encode(&RequestFrame {
                    version: 1,
                    request: r,
                })
                .unwrap(),
            );
        }
        let mut c = Cursor::new(bytes);
        let mut n = 0;
        loop {
            match read_frame(&mut c) {
                Ok(b) => {
                    decode::<RequestFrame>(&b).unwrap();
                    n += 1;
                }
                Err(FrameError::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(n, sample_requests().len());
    }

    #[test]
    fn hostile_frames_are_refused() {
        // Oversized length: refused before reading.
        let big = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut Cursor::new(big)),
            Err(FrameError::TooLarge(_))
        ));
        // Truncated length and body.
        assert!(matches!(
            read_frame(&mut Cursor::new([0u8, 0])),
            Err(FrameError::Truncated)
        ));
        let mut b = 10u32.to_be_bytes().to_vec();
        b.extend_from_slice(b"{\"ver");
        assert!(matches!(
            read_frame(&mut Cursor::new(b)),
            Err(FrameError::Truncated)
        ));
        // Garbage body.
        assert!(decode::<RequestFrame>(b"\x00\xffnot json").is_err());
        // Unknown request variant.
        assert!(decode::<RequestFrame>(br#"{"version":1,"request":"Frobnicate"}"#).is_err());
        // Empty stream.
        assert!(matches!(
            read_frame(&mut Cursor::new([])),
            Err(FrameError::Closed)
        ));
    }

    /// IPv4 addresses travel as they did when the protocol had IPv4 only
    /// (`"198.18.0.100"`): frames written by an lbctl or lbd of before
    /// `IpAddr` decode now, and frames written now decode there. The texts
    /// below are what that version wrote.
    #[test]
    fn ipv4_frames_are_unchanged_by_ip_addr() {
        let old_request = r#"{"version":1,"request":{"DeleteReal":{"service":{"protocol":"Tcp","vip":"198.18.0.100","port":80},"address":"198.18.0.11","mode":"Drain"}}}"#;
        let f: RequestFrame = decode(old_request.as_bytes()).unwrap();
        let key = ServiceKey::addr(
            Protocol::Tcp,
            std::net::Ipv4Addr::new(198, 18, 0, 100).into(),
            80,
        );
        assert_eq!(
            f.request,
            Request::DeleteReal {
                service: key,
                address: "198.18.0.11".parse().unwrap(),
                mode: RemoveMode::Drain,
            }
        );
        assert_eq!(serde_json::to_string(&f).unwrap(), old_request);

        let old_conn = r#"{"protocol":"Tcp","client":"198.18.0.1","client_port":40000,"vip":"198.18.0.100","vport":80,"real":"198.18.0.11","real_port":80,"state":"ESTABLISHED","expires_ms":900000,"worker":0,"template":false}"#;
        let c: ConnInfo = serde_json::from_str(old_conn).unwrap();
        assert_eq!(c.client, "198.18.0.1".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(c.real, Some("198.18.0.11".parse().unwrap()));
        assert_eq!(serde_json::to_string(&c).unwrap(), old_conn);

        // Persistence without an IPv6 prefix is written as before.
        let p = crate::config::Persistence::v4(60, 24);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"timeout":60,"netmask":24}"#
        );
    }

    #[test]
    fn ipv6_addresses_travel_as_text() {
        let key = ServiceKey::addr(
            Protocol::Udp,
            "2001:db8::100".parse::<std::net::IpAddr>().unwrap(),
            53,
        );
        let f = RequestFrame {
            version: PROTOCOL_VERSION,
            request: Request::EditReal {
                service: key,
                address: "2001:db8::10".parse().unwrap(),
                edit: RealEdit::default(),
            },
        };
        let text = serde_json::to_string(&f).unwrap();
        assert!(text.contains(r#""vip":"2001:db8::100""#), "{text}");
        assert!(text.contains(r#""address":"2001:db8::10""#), "{text}");
        assert_eq!(decode::<RequestFrame>(text.as_bytes()).unwrap(), f);
        assert_eq!(key.to_string(), "[2001:db8::100]:53/udp");
    }

    #[test]
    fn version_is_carried() {
        let body = br#"{"version":99,"request":"Status"}"#;
        let f: RequestFrame = decode(body).unwrap();
        assert_eq!(f.version, 99);
        assert_ne!(f.version, PROTOCOL_VERSION);
    }

    #[test]
    fn writes_are_classified() {
        assert!(!Request::List.is_write());
        assert!(!Request::Save.is_write());
        assert!(Request::Clear.is_write());
        assert!(Request::Zero.is_write());
        assert!(Request::Reload.is_write());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;
        proptest! {
            #[test]
            fn random_streams_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
                let mut c = Cursor::new(data);
                for _ in 0..4 {
                    match read_frame(&mut c) {
                        Ok(b) => { let _ = decode::<RequestFrame>(&b); }
                        Err(_) => break,
                    }
                }
            }
        }
    }
}
