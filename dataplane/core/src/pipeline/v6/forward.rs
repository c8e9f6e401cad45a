//! IPv6 service packets: the worker's IPv6 connection table, scheduling,
//! persistence, TCP state tracking, and DR.
//!
//! The steps are IPv4's (`Worker::service_flow`) over a `ConnKey6` table:
//! a hit advances the TCP state and refreshes the entry; a miss with a SYN
//! (or any UDP datagram) schedules a real server and creates the entry; a
//! TCP segment without SYN for an unknown flow is dropped
//! (`drop_tcp_no_conn`) unless the service is `sloppy_tcp` or in ECMP mode
//! (adopted as established). A SYN on a closing entry, or on one whose
//! real server is out of service, starts a new connection; an entry whose
//! server died with `expire_connections` ends at its next packet.

use crate::config::Forward;
use crate::conntrack::{
    tcp_input_only, tcp_input_only_u8, tcp_nat, Conn, ConnKey6, ConnState, Dir, Probe, Tick,
};
use crate::counters::Counter;
use crate::sched::{self, Candidate};
use crate::wire::ipv4::PROTO_TCP;
use crate::wire::tcp::TcpSegment;
use crate::wire::udp::UdpDatagram;
use crate::wire::TcpFlags;

use super::super::snapshot::Service;
use super::super::{forget, Action, Verdict, Worker};
use super::entry::Packet6;
use super::flood::Room6;

impl Worker {
    /// TCP/UDP to an IPv6 VIP: parse the ports, find the service and the
    /// connection, forward by DR.
    pub(super) fn service_packet6(
        &mut self,
        frame: &mut [u8],
        p: &Packet6,
        rx_port: u16,
        now: Tick,
    ) -> Action {
        let l4 = &frame[p.l4..p.l4_end];
        let (sport, dport, flags) = if p.proto == PROTO_TCP {
            match TcpSegment::new_checked(l4) {
                Ok(t) if !t.flags().is_valid_combination() => {
                    return Verdict::Drop(Counter::DropTcpBadFlags).into()
                }
                Ok(t) => (t.src_port(), t.dst_port(), t.flags()),
                Err(_) => return Verdict::Drop(Counter::DropTcpMalformed).into(),
            }
        } else {
            match UdpDatagram::new_checked(l4) {
                Ok(u) => (u.src_port(), u.dst_port(), TcpFlags(0)),
                Err(_) => return Verdict::Drop(Counter::DropUdpMalformed).into(),
            }
        };
        let vip = u128::from(p.dst);
        let Some(svc_idx) = self.snap.service6(p.proto, vip, dport) else {
            return Verdict::Drop(Counter::DropNoService).into();
        };
        let key = ConnKey6 {
            proto: p.proto,
            client_ip: u128::from(p.src),
            client_port: sport,
            vip,
            vport: dport,
        };
        if self.snap.has_nat6 {
            // NAT66 connections live in the shared table (`nat.rs`).
            if let Some(a) = self.nat6_request(frame, p, &key, svc_idx, flags, now) {
                return a;
            }
        }
        match self.conn6(&key, svc_idx, flags, now) {
            Ok(Conn6::Known(rs)) => {
                self.send_to_real6(frame, p, rs, svc_idx, rx_port, Counter::FwdDr)
            }
            Ok(Conn6::Stateless(rs)) => {
                let a = self.send_to_real6(frame, p, rs, svc_idx, rx_port, Counter::FwdDr);
                if !matches!(a, Action::Done(Verdict::Drop(_))) {
                    self.stats.count(Counter::FwdStateless);
                }
                a
            }
            Ok(Conn6::NewNat(rs, state)) => {
                let a = self.nat6_create(frame, p, &key, svc_idx, rs, state, rx_port, now);
                if a == Action::Done(Verdict::Drop(Counter::DropConnTableFull)) {
                    // The shared NAT66 table is full: short half-open
                    // timeouts from now on (as IPv4 NAT does).
                    self.flood_pressure(now);
                }
                a
            }
            Err(c) => Verdict::Drop(c).into(),
        }
    }

    /// The real server of `key`'s connection: found, or created (a NAT
    /// real server's connection is left to `nat6_create`).
    fn conn6(
        &mut self,
        key: &ConnKey6,
        svc_idx: usize,
        flags: TcpFlags,
        now: Tick,
    ) -> Result<Conn6, Counter> {
        let is_tcp = key.proto == PROTO_TCP;
        let syn = is_tcp && flags.syn() && !flags.ack();
        let Some(v6) = self.v6.as_mut() else {
            return Err(Counter::DropIpv6NotLocal);
        };
        let hash = v6.table.hash(key);
        let mut missed = false;
        let slot = match v6.table.probe(key, hash, now) {
            Probe::Hit(slot) => {
                let c = *v6.table.get(slot);
                let state = ConnState::from_u8(c.state);
                let dead = self.snap.any_dead && self.snap.is_dead(c.rs);
                if !(dead || (syn && (state.reusable_by_syn() || self.snap.unavailable(c.rs)))) {
                    self.update_conn6(slot, is_tcp, flags, now);
                    self.persist_touch6(key, svc_idx, now);
                    if self.sync6.is_some() {
                        self.sync_changed6(key, slot, c.state, svc_idx);
                    }
                    return Ok(Conn6::Known(c.rs));
                }
                // A closing flow's port reused, a dead server's entry, or a
                // SYN to a server out of service: the entry ends.
                let old = self.v6_table_take(slot);
                forget(self.counts(), &old);
                if dead && is_tcp && !syn {
                    return Err(Counter::DropRealServerDown);
                }
                slot
            }
            Probe::Vacant { slot, evicted } => {
                if let Some(old) = evicted {
                    forget(self.counts(), &old);
                }
                missed = true;
                slot
            }
            // The SYN-flood defence (`flood.rs`).
            Probe::Full => match self.no_room6(key, hash, svc_idx, flags, now)? {
                Room6::Slot(slot) => {
                    missed = true;
                    slot
                }
                Room6::Stateless(rs) => return Ok(Conn6::Stateless(rs)),
            },
        };
        if missed && !syn && self.sync6.is_some() {
            // After a failover: a connection the peer director synced.
            if let Some(rs) = self.adopt_synced6(key, svc_idx, slot, now) {
                self.update_conn6(slot, is_tcp, flags, now);
                return Ok(Conn6::Known(rs));
            }
        }
        let state = if !is_tcp {
            ConnState::Udp
        } else if flags.syn() {
            tcp_input_only(ConnState::None, flags)
        } else {
            let svc = &self.snap.services[svc_idx];
            if flags.rst() || !(svc.sloppy_tcp || svc.ecmp) {
                if self.stateless_untracked6(svc_idx) {
                    return self.stateless6(key, svc_idx, now).map(Conn6::Stateless);
                }
                return Err(Counter::DropTcpNoConn);
            }
            // sloppy_tcp, or ECMP mode's flow moved here by the routers:
            // adopted as established (mh gives it the server its SYN got).
            self.stats.count(if svc.ecmp {
                Counter::ConnAdoptedMidflow
            } else {
                Counter::SloppyAdopted
            });
            tcp_input_only(ConnState::Established, flags)
        };
        let i = self
            .pick_real6(key, svc_idx, now)
            .ok_or(Counter::DropNoRealServer)?;
        let svc = &self.snap.services[svc_idx];
        let rs = svc.reals[i].id;
        if svc.reals[i].forward == Forward::Nat {
            return Ok(Conn6::NewNat(rs, nat_state(flags, is_tcp)));
        }
        let expires = now.wrapping_add(state.timeout_ms(&self.timeouts));
        let mut conn = Conn::new(key, rs, state as u8, now, expires);
        conn.active = state.is_active();
        if conn.active {
            self.conn_counts(rs, 1, 0);
        } else {
            self.conn_counts(rs, 0, 1);
        }
        crate::counters::bump(&self.stats.rs[rs as usize].conns, 1);
        crate::counters::bump(&self.stats.services[svc.id as usize].conns, 1);
        if let Some(v6) = self.v6.as_mut() {
            v6.table.insert_at(slot, conn);
        }
        self.stats.count(Counter::ConnCreated);
        if self.sync6.is_some() {
            self.sync_conn6(key, rs, state, svc_idx);
        }
        Ok(Conn6::Known(rs))
    }

    /// Sync the connection at `slot` if its state changed from `before`.
    #[cold]
    fn sync_changed6(&self, key: &ConnKey6, slot: usize, before: u8, svc_idx: usize) {
        let Some(v6) = self.v6.as_ref() else { return };
        let c = v6.table.get(slot);
        if c.state != before {
            self.sync_conn6(key, c.rs, ConnState::from_u8(c.state), svc_idx);
        }
    }

    fn v6_table_take(&mut self, slot: usize) -> Conn<ConnKey6> {
        match self.v6.as_mut() {
            Some(v6) => v6.table.take(slot),
            None => Conn::default(),
        }
    }

    /// Advance an IPv6 connection's TCP state and refresh its timeout.
    fn update_conn6(&mut self, slot: usize, is_tcp: bool, flags: TcpFlags, now: Tick) {
        let Some(v6) = self.v6.as_mut() else { return };
        let c = v6.table.get_mut(slot);
        let old = c.state;
        let new = ConnState::from_u8(if is_tcp {
            tcp_input_only_u8(old, flags)
        } else {
            old
        });
        c.expires = now.wrapping_add(new.timeout_ms(&self.timeouts));
        if new as u8 != old {
            c.state = new as u8;
            let active = new.is_active();
            if active != c.active {
                c.active = active;
                let (rs, d) = (c.rs, if active { 1 } else { -1 });
                self.conn_counts(rs, d, -d);
            }
        }
    }

    /// The real server (index into the service's `reals`) for a new
    /// connection: its client network's template if it has a live one,
    /// else the scheduler's choice (and a new template).
    pub(super) fn pick_real6(
        &mut self,
        key: &ConnKey6,
        svc_idx: usize,
        now: Tick,
    ) -> Option<usize> {
        let svc = &self.snap.services[svc_idx];
        let Some(p) = svc.persistence else {
            return self.schedule6(key, svc_idx);
        };
        let tk = template_key6(key, svc);
        let group = svc.fwmark.is_some();
        let deadline = now.wrapping_add(p.timeout.saturating_mul(1000));
        let v6 = self.v6.as_mut()?;
        let hash = v6.templates.hash(&tk);
        let vacant = match v6.templates.probe(&tk, hash, now) {
            Probe::Hit(slot) => {
                let rs = v6.templates.get(slot).rs;
                // A server removed by its health check keeps no clients.
                if let Some(i) = svc.reals.iter().position(|r| r.id == rs && r.up) {
                    v6.templates.get_mut(slot).expires = deadline;
                    self.stats.count(Counter::PersistTemplateUsed);
                    return Some(i);
                }
                v6.templates.take(slot);
                Some(slot)
            }
            Probe::Vacant { slot, .. } => Some(slot),
            Probe::Full => None,
        };
        // On a backup become master: the template the peer synced.
        // A group's templates are not synced (see the module notes).
        let synced = if self.sync6.is_some() && !group {
            self.synced_template6(&tk, svc_idx, now)
        } else {
            None
        };
        let (i, rs) = match synced {
            Some(found) => found,
            None => {
                let i = self.schedule6(key, svc_idx)?;
                (i, self.snap.services[svc_idx].reals[i].id)
            }
        };
        if let (Some(slot), Some(v6)) = (vacant, self.v6.as_mut()) {
            v6.templates.insert_at(
                slot,
                Conn::new(&tk, rs, ConnState::None as u8, now, deadline),
            );
        }
        if synced.is_some() {
            self.stats.count(Counter::PersistTemplateUsed);
        } else if vacant.is_some() {
            self.stats.count(Counter::PersistTemplateCreated);
            if self.sync6.is_some() && !group {
                self.sync_template6(&tk, rs, svc_idx, p.timeout.saturating_mul(1000));
            }
        }
        Some(i)
    }

    /// A packet of an existing connection: keep its client's template alive.
    fn persist_touch6(&mut self, key: &ConnKey6, svc_idx: usize, now: Tick) {
        let svc = &self.snap.services[svc_idx];
        let Some(p) = svc.persistence else { return };
        let tk = template_key6(key, svc);
        let Some(v6) = self.v6.as_mut() else { return };
        let hash = v6.templates.hash(&tk);
        if let Probe::Hit(slot) = v6.templates.probe(&tk, hash, now) {
            v6.templates.get_mut(slot).expires = now.wrapping_add(p.timeout.saturating_mul(1000));
        }
    }

    /// The scheduler's choice for a new IPv6 connection (an index into the
    /// service's `reals`): the same schedulers as IPv4, sh and mh hashing
    /// the client's full 128-bit address.
    fn schedule6(&mut self, key: &ConnKey6, svc_idx: usize) -> Option<usize> {
        if let Ok(choice) = self.least.pick(svc_idx) {
            return choice;
        }
        let svc = &self.snap.services[svc_idx];
        self.cands.clear();
        for r in &svc.reals {
            let st = &self.stats.rs[r.id as usize];
            self.cands.push(Candidate {
                weight: r.weight,
                active: st.active().max(0) as u32,
                inactive: st.inactive().max(0) as u32,
            });
        }
        let ctx = sched::PickCtx {
            client: std::net::IpAddr::V6(key.client_ip.into()),
            tables: &svc.tables,
        };
        let st = &mut self.sched[svc.id as usize];
        sched::pick(svc.scheduler, &self.cands, st, &ctx)
    }

    /// Idle-time upkeep of the IPv6 tables: expire up to `buckets` buckets
    /// of each (connections leave the counts; templates just go).
    pub(in crate::pipeline) fn housekeeping6(&mut self, now: Tick, buckets: usize) -> usize {
        let counts = super::super::conn_counts::ConnCounts {
            stats: &self.stats,
            least: &self.least,
        };
        let Some(v6) = self.v6.as_mut() else { return 0 };
        v6.table.sweep(now, buckets, |c| forget(counts, c));
        v6.templates.sweep(now, buckets, |_| {});
        v6.table.len()
    }
}

/// What [`Worker::conn6`] found for a packet.
enum Conn6 {
    /// The real server of a connection in the worker's table (DR, tunnel).
    Known(u32),
    /// A new connection scheduled to NAT real server `.0`, to be created in
    /// the shared NAT66 table in state `.1`.
    NewNat(u32, ConnState),
    /// No room in the table while the SYN-flood defence is engaged:
    /// forward to real server `.0` without an entry (`flood.rs`).
    Stateless(u32),
}

/// A new NAT66 connection's first state, by IPVS's NAT table (both
/// directions) rather than the input-only one: a SYN, or a segment adopted
/// mid-flow (sloppy_tcp, ECMP) as established.
fn nat_state(flags: TcpFlags, is_tcp: bool) -> ConnState {
    if !is_tcp {
        ConnState::Udp
    } else if flags.syn() {
        tcp_nat(ConnState::None, Dir::Input, flags)
    } else {
        tcp_nat(ConnState::Established, Dir::Input, flags)
    }
}

/// The persistence template key of a client of `svc`: its address masked
/// to the service's prefix length, client port 0, the service's port (0 for
/// a service on all ports: one template for every port, as IPVS keeps it).
/// A service group's is keyed by its mark — protocol 0, the mark in the
/// VIP field, port 0, as IPVS keys its firewall-mark templates and as the
/// IPv4 side does (`persist::service_template_key`) — so one client's
/// connections to every member (ports, VIPs, TCP and UDP) share one real
/// server.
fn template_key6(key: &ConnKey6, svc: &Service) -> ConnKey6 {
    let client_ip = key.client_ip & crate::wire::ipv6::prefix_mask(svc.persist_prefix);
    match svc.fwmark {
        Some(mark) => ConnKey6 {
            proto: 0,
            client_ip,
            client_port: 0,
            vip: u128::from(mark),
            vport: 0,
        },
        None => ConnKey6 {
            client_ip,
            client_port: 0,
            vport: svc.port,
            ..*key
        },
    }
}
