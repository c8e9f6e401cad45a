//! Connection states and the transitions the director applies.
//!
//! In DR (and, later, tunnel) mode the director sees only the client→server
//! half of a TCP conversation, so it cannot know the server's side of the
//! handshake. IPVS solves this with its "input-only" transition table; we
//! follow the same semantics so that `lbctl conns` reads like `ipvsadm -Lnc`
//! and ActiveConn/InActConn mean what LVS operators expect:
//!
//! | state        | SYN       | FIN       | ACK         | RST      |
//! |--------------|-----------|-----------|-------------|----------|
//! | NONE         | SYN_RECV  | CLOSE     | CLOSE       | CLOSE    |
//! | SYN_RECV     | SYN_RECV  | TIME_WAIT | ESTABLISHED | SYN_RECV |
//! | ESTABLISHED  | ESTAB.    | FIN_WAIT  | ESTABLISHED | CLOSE    |
//! | FIN_WAIT     | SYN_RECV  | FIN_WAIT  | FIN_WAIT    | CLOSE    |
//! | TIME_WAIT    | SYN_RECV  | TIME_WAIT | TIME_WAIT   | CLOSE    |
//! | CLOSE        | SYN_RECV  | CLOSE     | CLOSE       | CLOSE    |
//!
//! The event of a segment is chosen by priority RST > SYN > FIN > ACK; a
//! segment with none of these flags leaves the state alone. A connection is
//! *active* exactly while ESTABLISHED; every other state counts as inactive.

use crate::config::Timeouts;
use crate::wire::TcpFlags;

/// State of a tracked connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnState {
    /// Created, no segment seen yet (transient).
    None = 0,
    SynRecv = 1,
    Established = 2,
    FinWait = 3,
    TimeWait = 4,
    Close = 5,
    /// A UDP flow (no handshake; one timeout).
    Udp = 6,
}

impl ConnState {
    pub const ALL: [ConnState; 7] = [
        ConnState::None,
        ConnState::SynRecv,
        ConnState::Established,
        ConnState::FinWait,
        ConnState::TimeWait,
        ConnState::Close,
        ConnState::Udp,
    ];

    #[inline]
    pub fn from_u8(v: u8) -> ConnState {
        match v {
            1 => ConnState::SynRecv,
            2 => ConnState::Established,
            3 => ConnState::FinWait,
            4 => ConnState::TimeWait,
            5 => ConnState::Close,
            6 => ConnState::Udp,
            _ => ConnState::None,
        }
    }

    /// The name `ipvsadm -Lnc` prints.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::None => "NONE",
            ConnState::SynRecv => "SYN_RECV",
            ConnState::Established => "ESTABLISHED",
            ConnState::FinWait => "FIN_WAIT",
            ConnState::TimeWait => "TIME_WAIT",
            ConnState::Close => "CLOSE",
            ConnState::Udp => "UDP",
        }
    }

    /// Counted in ActiveConn (true) or InActConn (false).
    #[inline]
    pub fn is_active(self) -> bool {
        self == ConnState::Established
    }

    /// Whether a new SYN on this flow should start a fresh connection (and be
    /// scheduled again) instead of following the old one: the old one is
    /// closing, so the client is reusing its port (IPVS `conn_reuse_mode`).
    #[inline]
    pub fn reusable_by_syn(self) -> bool {
        matches!(
            self,
            ConnState::FinWait | ConnState::TimeWait | ConnState::Close
        )
    }

    /// Timeout of this state in milliseconds.
    #[inline]
    pub fn timeout_ms(self, t: &TimeoutsMs) -> u32 {
        t.by_state[self as usize]
    }
}

/// Timeouts per state in milliseconds, precomputed from the config so the
/// hot path does a single indexed load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutsMs {
    pub by_state: [u32; 7],
}

impl TimeoutsMs {
    pub fn from_config(t: &Timeouts) -> TimeoutsMs {
        let ms = |s: u32| s.saturating_mul(1000);
        TimeoutsMs {
            by_state: [
                2_000, // NONE, as IPVS: a transient state
                ms(t.tcp_syn_recv),
                ms(t.tcp_established),
                ms(t.tcp_fin_wait),
                ms(t.tcp_time_wait),
                ms(t.tcp_close),
                ms(t.udp),
            ],
        }
    }
}

/// The transition for one client→server TCP segment (input-only table).
#[inline]
pub fn tcp_input_only(state: ConnState, flags: TcpFlags) -> ConnState {
    use ConnState::*;
    if flags.rst() {
        return match state {
            SynRecv => SynRecv,
            Udp => Udp,
            _ => Close,
        };
    }
    if flags.syn() {
        return match state {
            Established => Established,
            Udp => Udp,
            _ => SynRecv,
        };
    }
    if flags.fin() {
        return match state {
            None | Close => Close,
            SynRecv | TimeWait => TimeWait,
            Established | FinWait => FinWait,
            Udp => Udp,
        };
    }
    if flags.ack() {
        return match state {
            None | Close => Close,
            SynRecv | Established => Established,
            FinWait => FinWait,
            TimeWait => TimeWait,
            Udp => Udp,
        };
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnState::*;

    fn f(syn: bool, fin: bool, ack: bool, rst: bool) -> TcpFlags {
        let mut v = 0u8;
        if fin {
            v |= TcpFlags::FIN.0;
        }
        if syn {
            v |= TcpFlags::SYN.0;
        }
        if rst {
            v |= TcpFlags::RST.0;
        }
        if ack {
            v |= TcpFlags::ACK.0;
        }
        TcpFlags(v)
    }

    #[test]
    fn full_table() {
        let syn = f(true, false, false, false);
        let fin = f(false, true, true, false);
        let ack = f(false, false, true, false);
        let rst = f(false, false, false, true);
        // (state, after SYN, after FIN, after ACK, after RST)
        let table = [
            (None, SynRecv, Close, Close, Close),
            (SynRecv, SynRecv, TimeWait, Established, SynRecv),
            (Established, Established, FinWait, Established, Close),
            (FinWait, SynRecv, FinWait, FinWait, Close),
            (TimeWait, SynRecv, TimeWait, TimeWait, Close),
            (Close, SynRecv, Close, Close, Close),
        ];
        for (s, a, b, c, d) in table {
            assert_eq!(tcp_input_only(s, syn), a, "{s:?} SYN");
            assert_eq!(tcp_input_only(s, fin), b, "{s:?} FIN");
            assert_eq!(tcp_input_only(s, ack), c, "{s:?} ACK");
            assert_eq!(tcp_input_only(s, rst), d, "{s:?} RST");
        }
    }

    #[test]
    fn flag_priority_and_no_flags() {
        // RST wins over SYN; SYN over FIN; no flags: unchanged.
        assert_eq!(
            tcp_input_only(Established, f(true, false, false, true)),
            Close
        );
        assert_eq!(tcp_input_only(None, f(true, true, false, false)), SynRecv);
        assert_eq!(tcp_input_only(Established, TcpFlags(0)), Established);
    }

    #[test]
    fn typical_connection_lifecycle() {
        let mut s = None;
        for (flags, want) in [
            (f(true, false, false, false), SynRecv),
            (f(false, false, true, false), Established),
            (f(false, false, true, false), Established),
            (f(false, true, true, false), FinWait),
            (f(false, false, true, false), FinWait),
        ] {
            s = tcp_input_only(s, flags);
            assert_eq!(s, want);
        }
        assert!(!s.is_active());
        assert!(s.reusable_by_syn());
    }

    #[test]
    fn default_timeouts_are_ipvs() {
        let t = TimeoutsMs::from_config(&Timeouts::default());
        assert_eq!(Established.timeout_ms(&t), 900_000);
        assert_eq!(SynRecv.timeout_ms(&t), 60_000);
        assert_eq!(FinWait.timeout_ms(&t), 120_000);
        assert_eq!(Close.timeout_ms(&t), 10_000);
        assert_eq!(Udp.timeout_ms(&t), 300_000);
        for s in ConnState::ALL {
            assert_eq!(ConnState::from_u8(s as u8), s);
        }
    }
}
