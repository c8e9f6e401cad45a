//! Listing a table shared by the workers (the NAT table: NAT connections
//! and IPv4 persistence templates), read directly from the control side.
//!
//! Generic over the key: a shared table of IPv6 keys (NAT66's) is listed
//! by the same call.

use lbcore::conntrack::keyspace::EntryFlags;
use lbcore::conntrack::shared::SharedConnTable;
use lbcore::conntrack::Tick;

use super::filter::{Found, ListKey, Listed};
use super::RawFilter;

/// Buckets read per step (the table is read lock-free; the step only
/// bounds the closure's stack of work).
const STEP_BUCKETS: usize = 4096;

/// Add the live NAT connections and templates of `table` that match
/// `filter` to `found`. Templates are listed like `ipvsadm -Lnc` does
/// (state NONE, client port 0), marked `template`. Returns how many live
/// connections and templates the table stands for (its listing total).
pub fn list_shared<K: ListKey>(
    table: &SharedConnTable<K>,
    filter: &RawFilter,
    now: Tick,
    found: &mut Found,
) -> u64 {
    let mut templates = 0u64;
    let mut at = Some(0);
    while let Some(start) = at {
        at = table.scan(start, STEP_BUCKETS, |e| {
            // Reply entries duplicate their request; synced entries are the
            // peer director's, waiting to be adopted after a failover.
            if e.flags.intersects(EntryFlags::REPLY | EntryFlags::SYNCED) || e.is_expired(now) {
                return;
            }
            let template = e.flags.contains(EntryFlags::TEMPLATE);
            if template {
                templates += 1;
            }
            if !filter.matches(&e.key, e.rs, e.state) {
                return;
            }
            let l = Listed::of(&e.key, e.rs, e.state, e.expires.wrapping_sub(now), u16::MAX);
            found.push(if template { l.template() } else { l });
        });
    }
    found.templates += templates;
    // Two entries per NAT connection, one per template.
    (table.len() as u64).saturating_sub(templates) / 2 + templates
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbcore::conntrack::keyspace::EntryKind;
    use lbcore::conntrack::{ConnKey6, ConnState};
    use std::net::{IpAddr, Ipv6Addr};

    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    /// A shared IPv6 table as NAT66 fills it: a connection's request and
    /// reply entries, a template, and a synced entry.
    #[test]
    fn an_ipv6_shared_table_lists_like_the_ipv4_one() {
        let t = SharedConnTable::<ConnKey6>::new(1024, 9);
        let req = ConnKey6 {
            proto: 6,
            client_ip: v6("2001:db8::1"),
            client_port: 40000,
            vip: v6("2001:db8::100"),
            vport: 80,
        };
        let reply = EntryKind::Reply.mark(ConnKey6 {
            client_ip: v6("2001:db8:2::11"),
            client_port: 80,
            vip: req.client_ip,
            vport: req.client_port,
            ..req
        });
        let tmpl = EntryKind::Template.mark(ConnKey6 {
            client_ip: v6("2001:db8::"),
            client_port: 0,
            ..req
        });
        let synced = EntryKind::Synced.mark(ConnKey6 {
            client_port: 41000,
            ..req
        });
        let est = ConnState::Established as u8;
        for (k, flags, state) in [
            (req, EntryFlags::ACTIVE, est),
            (reply, EntryFlags::REPLY, 0),
            (tmpl, EntryFlags::TEMPLATE, 0),
            (synced, EntryFlags::SYNCED, est),
        ] {
            t.insert(&k, t.hash(&k), 5, 10_000, state, flags, 0, |_| {})
                .unwrap();
        }
        let mut found = Found::new(10);
        let total = list_shared(&t, &RawFilter::default(), 1_000, &mut found);
        assert_eq!(
            total, 2,
            "one connection (two entries, synced aside) and a template"
        );
        assert_eq!(found.templates, 1);
        assert_eq!(found.matched, 2);
        let c = found.entries.iter().find(|e| !e.template).unwrap();
        assert_eq!(c.client, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (c.proto, c.client_port, c.vport, c.rs, c.state),
            (6, 40000, 80, 5, est)
        );
        assert_eq!((c.left_ms, c.worker), (9_000, u16::MAX));
        let tp = found.entries.iter().find(|e| e.template).unwrap();
        assert_eq!(tp.client, "2001:db8::".parse::<IpAddr>().unwrap());
        assert_eq!((tp.proto, tp.client_port), (6, 0));
        // Filters apply as for the workers' tables.
        let mut f = Found::new(10);
        let only = RawFilter {
            client: Some("2001:db8::1".parse().unwrap()),
            ..Default::default()
        };
        list_shared(&t, &only, 1_000, &mut f);
        assert_eq!(f.matched, 1);
        assert!(!f.entries[0].template);
    }

    /// The IPv4 NAT table and an IPv6 one listed into one answer, as
    /// `list` does with both: one limit, one total.
    #[test]
    fn both_families_share_one_limit() {
        use lbcore::conntrack::ConnKey;
        let t4 = SharedConnTable::<ConnKey>::new(1024, 1);
        let t6 = SharedConnTable::<ConnKey6>::new(1024, 2);
        for p in 0..3u16 {
            let k = ConnKey {
                proto: 17,
                client_ip: 0xc612_0001,
                client_port: 1000 + p,
                vip: 0xc612_0064,
                vport: 53,
            };
            t4.insert(&k, t4.hash(&k), 1, 5_000, 0, EntryFlags::NONE, 0, |_| {})
                .unwrap();
            let k6 = ConnKey6 {
                proto: 17,
                client_ip: v6("2001:db8::1"),
                client_port: 1000 + p,
                vip: v6("2001:db8::100"),
                vport: 53,
            };
            t6.insert(&k6, t6.hash(&k6), 2, 5_000, 0, EntryFlags::NONE, 0, |_| {})
                .unwrap();
        }
        let mut found = Found::new(4);
        let f = RawFilter::default();
        // Request entries alone stand for half a connection each here (no
        // reply entries): the totals follow the table's own count.
        let total = list_shared(&t4, &f, 0, &mut found) + list_shared(&t6, &f, 0, &mut found);
        assert_eq!(total, 2);
        assert_eq!((found.matched, found.entries.len()), (6, 4));
        assert_eq!(
            found.entries.iter().filter(|e| e.client.is_ipv6()).count(),
            1
        );
        let udp6 = RawFilter {
            vip: Some("2001:db8::100".parse().unwrap()),
            proto: Some(17),
            ..Default::default()
        };
        let mut only6 = Found::new(10);
        list_shared(&t4, &udp6, 0, &mut only6);
        list_shared(&t6, &udp6, 0, &mut only6);
        assert_eq!(only6.matched, 3);
        assert!(only6.entries.iter().all(|e| e.rs == 2 && e.vport == 53));
    }
}
