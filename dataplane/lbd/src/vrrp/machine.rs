//! The VRRPv3 state machine of RFC 5798 §6.4, without I/O: events in
//! (start, an advertisement, a timer, the link), actions out (send an
//! advertisement, change state). Times are `Instant`s passed in. The same
//! machine runs an IPv4 or an IPv6 virtual router: addresses are `IpAddr`
//! (for IPv6, the routers' link-local addresses, compared as numbers in
//! ties, RFC 5798 §6.4.3).

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The RFC's states, plus Fault (the link is down: keepalived's FAULT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// What the machine asks its owner to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (0: giving up mastership).
    Advertise(u8),
    /// The state changed to this one.
    Enter(State),
    /// Announce our addresses again (gratuitous ARPs, unsolicited NAs):
    /// another router believed it was master and may have announced them.
    Reassert,
}

/// One virtual router.
#[derive(Debug, Clone)]
pub struct Machine {
    pub priority: u8,
    pub preempt: bool,
    /// Our advertisement interval.
    pub adver_int: Duration,
    /// Our primary address (ties between equal priorities go to the
    /// higher address).
    pub my_ip: IpAddr,
    state: State,
    /// The master's advertisement interval, learned as backup.
    master_adver_int: Duration,
    /// When the next timer fires: the advertisement timer as master, the
    /// master-down timer as backup; None otherwise.
    deadline: Option<Instant>,
    /// The current master's address, when known.
    pub master_ip: Option<IpAddr>,
    /// When we last answered a lower master's advertisement (as master).
    reasserted: Option<Instant>,
}

impl Machine {
    pub fn new(priority: u8, preempt: bool, adver_int: Duration, my_ip: IpAddr) -> Machine {
        Machine {
            priority,
            preempt,
            adver_int,
            my_ip,
            state: State::Init,
            master_adver_int: adver_int,
            deadline: None,
            master_ip: None,
            reasserted: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Skew_Time: lower priorities wait a little longer.
    fn skew(&self) -> Duration {
        self.master_adver_int * (256 - self.priority as u32) / 256
    }

    /// Master_Down_Interval.
    fn master_down(&self) -> Duration {
        self.master_adver_int * 3 + self.skew()
    }

    fn become_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.state = State::Master;
        self.master_ip = Some(self.my_ip);
        self.deadline = Some(now + self.adver_int);
        out.push(Action::Advertise(self.priority));
        out.push(Action::Enter(State::Master));
    }

    fn become_backup(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.state = State::Backup;
        self.deadline = Some(now + self.master_down());
        out.push(Action::Enter(State::Backup));
    }

    /// Startup (RFC: priority 255 becomes master at once; others backup).
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.master_adver_int = self.adver_int;
        if self.priority == 255 {
            self.become_master(now, &mut out);
        } else {
            self.become_backup(now, &mut out);
        }
        out
    }

    /// The timer fired (call when `now >= deadline`).
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return out,
        }
        match self.state {
            State::Backup => self.become_master(now, &mut out),
            State::Master => {
                out.push(Action::Advertise(self.priority));
                self.deadline = Some(now + self.adver_int);
            }
            State::Init | State::Fault => self.deadline = None,
        }
        out
    }

    /// An advertisement for our virtual router, from `src`.
    pub fn on_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        priority: u8,
        interval: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Backup => {
                if priority == 0 {
                    // The master resigns: take over after the skew only.
                    self.deadline = Some(now + self.skew());
                } else if !self.preempt || priority >= self.priority {
                    self.master_adver_int = interval;
                    self.master_ip = Some(src);
                    self.deadline = Some(now + self.master_down());
                }
                // Otherwise (preempt, lower priority): let the timer make us
                // master.
            }
            State::Master => {
                if priority == 0 {
                    out.push(Action::Advertise(self.priority));
                    self.deadline = Some(now + self.adver_int);
                } else if priority > self.priority
                    || (priority == self.priority && src > self.my_ip)
                {
                    self.master_adver_int = interval;
                    self.master_ip = Some(src);
                    self.become_backup(now, &mut out);
                } else if self.reasserted.is_none_or(|t| now >= t + self.adver_int) {
                    // A lower router believes it is master: it did not hear
                    // us (both started at once on a busy box, or a healed
                    // partition) and has announced our addresses as its
                    // own. The RFC discards this advert; keepalived (by
                    // default) answers it at once, so the other yields
                    // without waiting for our next interval, and announces
                    // its addresses again so that neighbours' entries come
                    // back. We do both, at most once per interval, so a
                    // peer that keeps sending lower adverts cannot make us
                    // flood the segment.
                    self.reasserted = Some(now);
                    self.deadline = Some(now + self.adver_int);
                    out.push(Action::Advertise(self.priority));
                    out.push(Action::Reassert);
                }
            }
            State::Init | State::Fault => {}
        }
        out
    }

    /// The port's link went down, or a tracked condition failed (Fault:
    /// give up mastership), or all is well again (start over as backup).
    pub fn on_link(&mut self, up: bool, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match (up, self.state) {
            (false, State::Fault) | (true, State::Backup | State::Master) => {}
            (false, s) => {
                if s == State::Master {
                    out.push(Action::Advertise(0));
                }
                self.state = State::Fault;
                self.deadline = None;
                self.master_ip = None;
                out.push(Action::Enter(State::Fault));
            }
            (true, State::Fault | State::Init) => out = self.start(now),
        }
        out
    }

    /// Shutting down: a master sends priority 0 so the backup takes over
    /// at once.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let out = if self.state == State::Master {
            vec![Action::Advertise(0)]
        } else {
            Vec::new()
        };
        self.state = State::Init;
        self.deadline = None;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::{Ipv4Addr, Ipv6Addr};

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3));
    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_backup_takes_over_when_the_master_falls_silent() {
        let t0 = Instant::now();
        let mut m = Machine::new(100, true, SEC, ME);
        assert_eq!(m.start(t0), vec![Action::Enter(State::Backup)]);
        // Master_Down_Interval = 3 s + (256-100)/256 s.
        let down = t0 + SEC * 3 + SEC * 156 / 256;
        assert_eq!(m.deadline(), Some(down));
        // A higher master's advertisement resets the timer.
        let t1 = t0 + SEC;
        assert!(m.on_advert(t1, PEER, 150, SEC).is_empty());
        assert_eq!(m.master_ip, Some(PEER));
        assert_eq!(m.deadline(), Some(t1 + SEC * 3 + SEC * 156 / 256));
        // Silence: master.
        let t2 = m.deadline().unwrap();
        assert!(m.on_timer(t2 - Duration::from_millis(1)).is_empty());
        assert_eq!(
            m.on_timer(t2),
            vec![Action::Advertise(100), Action::Enter(State::Master)]
        );
        // Then an advertisement every interval.
        assert_eq!(m.on_timer(t2 + SEC), vec![Action::Advertise(100)]);
    }

    #[test]
    fn priority_preemption_and_ties() {
        let t0 = Instant::now();
        let mut m = Machine::new(150, true, SEC, ME);
        m.start(t0);
        let t = m.deadline().unwrap();
        m.on_timer(t);
        assert_eq!(m.state(), State::Master);
        // A lower master does not take over: we answer it with an advert
        // and announce our addresses again, at most once per interval; a
        // higher one takes over.
        assert_eq!(
            m.on_advert(t, PEER, 100, SEC),
            vec![Action::Advertise(150), Action::Reassert]
        );
        assert_eq!(m.deadline(), Some(t + SEC));
        assert!(m.on_advert(t + SEC / 2, PEER, 100, SEC).is_empty());
        assert_eq!(
            m.on_advert(t + SEC, PEER, 100, SEC),
            vec![Action::Advertise(150), Action::Reassert]
        );
        assert_eq!(
            m.on_advert(t, PEER, 200, SEC),
            vec![Action::Enter(State::Backup)]
        );
        // As backup with preempt, a lower master's adverts do not hold us
        // back: the timer makes us master.
        let d = m.deadline().unwrap();
        assert!(m.on_advert(t, PEER, 100, SEC).is_empty());
        assert_eq!(m.deadline(), Some(d));
        // Equal priority: the higher address wins.
        let mut a = Machine::new(100, true, SEC, ME);
        a.start(t0);
        a.on_timer(a.deadline().unwrap());
        assert_eq!(
            a.on_advert(t0, PEER, 100, SEC),
            vec![Action::Enter(State::Backup)],
            ".3 beats .2"
        );
        let mut b = Machine::new(100, true, SEC, PEER);
        b.start(t0);
        b.on_timer(b.deadline().unwrap());
        assert_eq!(
            b.on_advert(t0, ME, 100, SEC),
            vec![Action::Advertise(100), Action::Reassert],
            ".2 yields to .3: .3 stays master and answers"
        );
        assert_eq!(b.state(), State::Master);
        // IPv6: the higher link-local address wins the tie.
        let lo6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xc6ff, 0xfe12, 2));
        let hi6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xc6ff, 0xfe12, 3));
        let mut c = Machine::new(100, true, SEC, lo6);
        c.start(t0);
        c.on_timer(c.deadline().unwrap());
        assert_eq!(
            c.on_advert(t0, hi6, 100, SEC),
            vec![Action::Enter(State::Backup)],
            "fe80::c6ff:fe12:3 beats fe80::c6ff:fe12:2"
        );
        assert_eq!(c.master_ip, Some(hi6));
    }

    #[test]
    fn without_preempt_a_lower_master_keeps_its_place() {
        let t0 = Instant::now();
        let mut m = Machine::new(200, false, SEC, ME);
        m.start(t0);
        let d0 = m.deadline().unwrap();
        m.on_advert(t0 + SEC, PEER, 100, SEC);
        assert!(
            m.deadline().unwrap() > d0,
            "the lower master's advert resets the timer"
        );
    }

    #[test]
    fn resignation_fault_and_shutdown() {
        let t0 = Instant::now();
        let mut m = Machine::new(100, true, SEC, ME);
        m.start(t0);
        m.on_advert(t0, PEER, 150, SEC);
        // The master resigns: we take over after Skew_Time only.
        m.on_advert(t0, PEER, 0, SEC);
        assert_eq!(m.deadline(), Some(t0 + SEC * 156 / 256));
        m.on_timer(m.deadline().unwrap());
        assert_eq!(m.state(), State::Master);
        // A master that loses its link resigns and goes to Fault.
        assert_eq!(
            m.on_link(false, t0),
            vec![Action::Advertise(0), Action::Enter(State::Fault)]
        );
        assert_eq!(m.deadline(), None);
        // Link back: backup again.
        assert_eq!(m.on_link(true, t0), vec![Action::Enter(State::Backup)]);
        m.on_timer(m.deadline().unwrap());
        assert_eq!(m.shutdown(), vec![Action::Advertise(0)]);
    }
}
