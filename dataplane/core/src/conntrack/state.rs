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
    /// NAT only (the director sees both directions): the server sent SYN.
    SynSent = 7,
    /// NAT only: the client closed first and the server has not yet.
    CloseWait = 8,
    /// NAT only: the server's FIN answered the client's, last ACK pending.
    LastAck = 9,
}

impl ConnState {
    pub const ALL: [ConnState; 10] = [
        ConnState::None,
        ConnState::SynRecv,
        ConnState::Established,
        ConnState::FinWait,
        ConnState::TimeWait,
        ConnState::Close,
        ConnState::Udp,
        ConnState::SynSent,
        ConnState::CloseWait,
        ConnState::LastAck,
    ];

    #[inline]
    pub const fn from_u8(v: u8) -> ConnState {
        match v {
            1 => ConnState::SynRecv,
            2 => ConnState::Established,
            3 => ConnState::FinWait,
            4 => ConnState::TimeWait,
            5 => ConnState::Close,
            6 => ConnState::Udp,
            7 => ConnState::SynSent,
            8 => ConnState::CloseWait,
            9 => ConnState::LastAck,
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
            ConnState::SynSent => "SYN_SENT",
            ConnState::CloseWait => "CLOSE_WAIT",
            ConnState::LastAck => "LAST_ACK",
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
            ConnState::FinWait
                | ConnState::TimeWait
                | ConnState::Close
                | ConnState::CloseWait
                | ConnState::LastAck
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
    pub by_state: [u32; 10],
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
                120_000, // SYN_SENT, IPVS's default
                60_000,  // CLOSE_WAIT
                30_000,  // LAST_ACK
            ],
        }
    }
}

/// The transition for one client→server TCP segment (input-only table).
/// One load from a table precomputed from [`input_only_rule`] (the hit
/// path runs this for every segment).
#[inline(always)]
pub fn tcp_input_only(state: ConnState, flags: TcpFlags) -> ConnState {
    ConnState::from_u8(tcp_input_only_u8(state as u8, flags))
}

/// [`tcp_input_only`] on the state as stored in a table entry (`u8`).
#[inline(always)]
pub fn tcp_input_only_u8(state: u8, flags: TcpFlags) -> u8 {
    INPUT_ONLY[event_index(flags)][state as usize & 15]
}

/// The flag bits the transitions look at, FIN, SYN, RST (bits 0–2) and ACK
/// (bit 4), packed into 4 bits.
#[inline(always)]
const fn event_index(flags: TcpFlags) -> usize {
    ((flags.0 & 0x07) | ((flags.0 & 0x10) >> 1)) as usize
}

/// [`input_only_rule`] for every event index and state (states beyond
/// LAST_ACK never occur; they map to NONE's row, harmlessly).
static INPUT_ONLY: [[u8; 16]; 16] = {
    let mut t = [[0u8; 16]; 16];
    let mut ev = 0;
    while ev < 16 {
        let flags = TcpFlags((ev as u8 & 0x07) | ((ev as u8 & 0x08) << 1));
        let mut st = 0;
        while st < 16 {
            t[ev][st] = input_only_rule(ConnState::from_u8(st as u8), flags) as u8;
            st += 1;
        }
        ev += 1;
    }
    t
};

/// The input-only transition rule itself, as IPVS's table states it (what
/// [`tcp_input_only`] looks up).
pub const fn input_only_rule(state: ConnState, flags: TcpFlags) -> ConnState {
    use ConnState::*;
    if flags.rst() {
        return match state {
            SynRecv => SynRecv,
            LastAck => LastAck,
            Udp => Udp,
            _ => Close,
        };
    }
    if flags.syn() {
        return match state {
            Established | SynSent => Established,
            Udp => Udp,
            _ => SynRecv,
        };
    }
    if flags.fin() {
        return match state {
            None | Close => Close,
            SynRecv | TimeWait => TimeWait,
            Established | FinWait => FinWait,
            SynSent => SynSent,
            CloseWait => CloseWait,
            LastAck => LastAck,
            Udp => Udp,
        };
    }
    if flags.ack() {
        return match state {
            None | Close | LastAck => Close,
            SynRecv | Established => Established,
            FinWait => FinWait,
            TimeWait => TimeWait,
            SynSent => SynSent,
            CloseWait => CloseWait,
            Udp => Udp,
        };
    }
    state
}

/// Which way a NAT packet goes: client → server (`Input`) or server →
/// client (`Output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Input,
    Output,
}

/// The transition for one TCP segment of a NAT connection. The director
/// sees both halves, so this is IPVS's full table (its INPUT and OUTPUT
/// rows), which follows the server's side of the handshake too:
///
/// | state       | in SYN | in FIN | in ACK | in RST | out SYN | out FIN | out ACK | out RST |
/// |-------------|--------|--------|--------|--------|---------|---------|---------|---------|
/// | NONE        | SR     | CL     | CL     | CL     | SS      | TW      | ES      | CL      |
/// | ESTABLISHED | ES     | CW     | ES     | CL     | ES      | FW      | ES      | CL      |
/// | SYN_SENT    | ES     | SS     | SS     | CL     | SS      | SS      | SS      | SS      |
/// | SYN_RECV    | SR     | TW     | ES     | SR     | SR      | TW      | ES      | CL      |
/// | FIN_WAIT    | SR     | TW     | FW     | CL     | SS      | FW      | FW      | CL      |
/// | TIME_WAIT   | SR     | TW     | TW     | CL     | SS      | TW      | TW      | TW      |
/// | CLOSE       | SR     | CL     | CL     | CL     | SS      | CL      | CL      | CL      |
/// | CLOSE_WAIT  | SR     | CW     | CW     | CL     | SS      | TW      | CW      | CL      |
/// | LAST_ACK    | SR     | LA     | CL     | LA     | SS      | LA      | LA      | CL      |
#[inline]
pub fn tcp_nat(state: ConnState, dir: Dir, flags: TcpFlags) -> ConnState {
    use ConnState::*;
    // Event priority as IPVS: RST, then SYN, then FIN, then ACK.
    let ev = if flags.rst() {
        3
    } else if flags.syn() {
        0
    } else if flags.fin() {
        1
    } else if flags.ack() {
        2
    } else {
        return state;
    };
    if state == Udp {
        return Udp;
    }
    let row: [ConnState; 4] = match (dir, state) {
        // [SYN, FIN, ACK, RST]
        (Dir::Input, None) => [SynRecv, Close, Close, Close],
        (Dir::Input, Established) => [Established, CloseWait, Established, Close],
        (Dir::Input, SynSent) => [Established, SynSent, SynSent, Close],
        (Dir::Input, SynRecv) => [SynRecv, TimeWait, Established, SynRecv],
        (Dir::Input, FinWait) => [SynRecv, TimeWait, FinWait, Close],
        (Dir::Input, TimeWait) => [SynRecv, TimeWait, TimeWait, Close],
        (Dir::Input, Close) => [SynRecv, Close, Close, Close],
        (Dir::Input, CloseWait) => [SynRecv, CloseWait, CloseWait, Close],
        (Dir::Input, LastAck) => [SynRecv, LastAck, Close, LastAck],
        (Dir::Output, None) => [SynSent, TimeWait, Established, Close],
        (Dir::Output, Established) => [Established, FinWait, Established, Close],
        (Dir::Output, SynSent) => [SynSent, SynSent, SynSent, SynSent],
        (Dir::Output, SynRecv) => [SynRecv, TimeWait, Established, Close],
        (Dir::Output, FinWait) => [SynSent, FinWait, FinWait, Close],
        (Dir::Output, TimeWait) => [SynSent, TimeWait, TimeWait, TimeWait],
        (Dir::Output, Close) => [SynSent, Close, Close, Close],
        (Dir::Output, CloseWait) => [SynSent, TimeWait, CloseWait, Close],
        (Dir::Output, LastAck) => [SynSent, LastAck, LastAck, Close],
        (_, Udp) => unreachable!("handled above"),
    };
    row[ev]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hit path's shortcut (`Worker::update_conn`): a segment with
    /// none of FIN, SYN, RST leaves ESTABLISHED as it is, whatever else
    /// it carries.
    #[test]
    fn established_stays_without_fin_syn_rst() {
        for f in (0..=255u8).filter(|f| f & 0x07 == 0) {
            let st = ConnState::Established;
            assert_eq!(tcp_input_only(st, TcpFlags(f)), st, "flags {f:#x}");
            assert_eq!(tcp_input_only_u8(st as u8, TcpFlags(f)), st as u8);
        }
        // FIN and RST do move it (SYN does not, but the shortcut leaves
        // any of the three to the table).
        for f in [0x11u8, 0x14] {
            let st = ConnState::Established;
            assert_ne!(tcp_input_only(st, TcpFlags(f)), st, "flags {f:#x}");
        }
    }

    #[test]
    fn input_only_table_is_the_rule_for_every_flag_byte() {
        for st in 0..10u8 {
            let state = ConnState::from_u8(st);
            for f in 0..=255u8 {
                let flags = TcpFlags(f);
                assert_eq!(
                    tcp_input_only(state, flags),
                    input_only_rule(state, flags),
                    "{state:?} flags {f:#04x}"
                );
            }
        }
    }
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
    fn nat_handshake_and_close_follow_both_sides() {
        use super::Dir::{Input, Output};
        let syn = f(true, false, false, false);
        let synack = f(true, false, true, false);
        let ack = f(false, false, true, false);
        let fin = f(false, true, true, false);
        let mut s = None;
        for (dir, fl, want) in [
            (Input, syn, SynRecv),
            (Output, synack, SynRecv),
            (Input, ack, Established),
            (Output, ack, Established),
            (Input, fin, CloseWait), // client closes first
            (Output, ack, CloseWait),
            (Output, fin, TimeWait), // server closes too
            (Input, ack, TimeWait),
        ] {
            s = tcp_nat(s, dir, fl);
            assert_eq!(s, want, "{dir:?} {fl:?}");
        }
        // Server closes first.
        let mut s = Established;
        s = tcp_nat(s, Output, fin);
        assert_eq!(s, FinWait);
        s = tcp_nat(s, Input, fin);
        assert_eq!(s, TimeWait);
        // RST from either side closes an established connection.
        assert_eq!(
            tcp_nat(Established, Input, f(false, false, false, true)),
            Close
        );
        assert_eq!(
            tcp_nat(Established, Output, f(false, false, false, true)),
            Close
        );
        // Every state has a row in both directions (no panic).
        for st in ConnState::ALL {
            for d in [Input, Output] {
                for fl in [
                    syn,
                    fin,
                    ack,
                    synack,
                    f(false, false, false, true),
                    TcpFlags(0),
                ] {
                    let _ = tcp_nat(st, d, fl);
                }
            }
        }
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
