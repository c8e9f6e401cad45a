//! Unit tests that need no EAL: burst bookkeeping and packet accessors run on
//! fake mbufs built in Rust memory (the inline DPDK helpers the shim wraps
//! only touch the header fields), never freed through DPDK.

use super::*;
use dpdk_sys as sys;

const BUF_LEN: u16 = 512;

/// A zeroed mbuf header plus a data buffer, both leaked until `destroy`.
fn fake(tag: u8, data_len: u16) -> *mut sys::rte_mbuf {
    let buf: &'static mut [u8] = vec![tag; BUF_LEN as usize].leak();
    // SAFETY: rte_mbuf is plain data (integers, raw pointers, a union of
    // integers): all-zero is a valid value.
    let mut m: Box<sys::rte_mbuf> = Box::new(unsafe { std::mem::zeroed() });
    m.buf_addr = buf.as_mut_ptr().cast();
    m.buf_len = BUF_LEN;
    m.data_off = HEADROOM;
    m.data_len = data_len;
    m.pkt_len = u32::from(data_len);
    m.nb_segs = 1;
    m.refcnt = 1;
    m.port = u16::from(tag);
    Box::into_raw(m)
}

fn destroy(m: *mut sys::rte_mbuf) {
    // SAFETY: `m` came from `fake` and is no longer referenced.
    unsafe {
        let m = Box::from_raw(m);
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            m.buf_addr.cast::<u8>(),
            BUF_LEN as usize,
        )));
    }
}

fn fake_mbuf(tag: u8, data_len: u16) -> Mbuf {
    // SAFETY: a fresh fake mbuf, owned by nobody else. It must leave through
    // `into_raw` + `destroy`, never through Drop (which would call DPDK).
    unsafe { Mbuf::from_raw(fake(tag, data_len)) }
}

/// Empty the burst without DPDK, destroying the fakes; returns their tags.
fn drain(b: &mut MbufBurst) -> Vec<u8> {
    let mut tags = Vec::new();
    while let Some(m) = b.take(0) {
        tags.push(m.port() as u8);
        destroy(m.into_raw());
    }
    tags
}

#[test]
fn burst_push_take_order() {
    let mut b = MbufBurst::new();
    assert!(b.is_empty());
    assert_eq!(b.capacity(), BURST_SIZE);
    for t in 0..5u8 {
        b.push(fake_mbuf(t, 10))
            .map_err(|m| destroy(m.into_raw()))
            .unwrap();
    }
    assert_eq!(b.len(), 5);
    assert_eq!(b.remaining(), BURST_SIZE - 5);
    // take keeps order
    let m = b.take(1).unwrap();
    assert_eq!(m.port(), 1);
    destroy(m.into_raw());
    assert!(b.take(4).is_none());
    // swap_remove moves the last into place
    let m = b.swap_remove(0).unwrap();
    assert_eq!(m.port(), 0);
    destroy(m.into_raw());
    let m = b.pop().unwrap();
    assert_eq!(m.port(), 3);
    destroy(m.into_raw());
    assert_eq!(drain(&mut b), vec![4, 2]);
}

#[test]
fn burst_full_and_front_removal() {
    let mut b = MbufBurst::new();
    for t in 0..BURST_SIZE as u8 {
        assert!(b.push(fake_mbuf(t, 1)).is_ok());
    }
    assert!(b.is_full());
    let extra = fake_mbuf(200, 1);
    let back = b.push(extra).expect_err("a full burst gives the mbuf back");
    assert_eq!(back.port(), 200);
    destroy(back.into_raw());

    // What tx_burst does after sending 10: the first 10 leave the burst.
    let sent: Vec<_> = b.as_raw()[..10].to_vec();
    b.remove_front(10);
    sent.into_iter().for_each(destroy);
    assert_eq!(b.len(), BURST_SIZE - 10);
    assert_eq!(b.get(0).unwrap().port(), 10);

    let mut other = MbufBurst::new();
    for t in 100..120u8 {
        assert!(other.push(fake_mbuf(t, 1)).is_ok());
    }
    let moved = b.extend_from(&mut other);
    assert_eq!(moved, 10);
    assert!(b.is_full());
    assert_eq!(other.len(), 10);
    assert_eq!(other.get(0).unwrap().port(), 110);
    assert_eq!(b.get(BURST_SIZE - 1).unwrap().port(), 109);
    let tags = drain(&mut b);
    assert_eq!(tags.len(), BURST_SIZE);
    assert_eq!(tags[0], 10);
    drain(&mut other);
}

#[test]
fn burst_retain_keeping_all_and_index_access() {
    let mut b = MbufBurst::new();
    for t in 0..4u8 {
        assert!(b.push(fake_mbuf(t, 8)).is_ok());
    }
    // Dropped packets would be freed through DPDK, so keep all here and
    // check the callback sees every packet, in order, writable.
    let mut seen = Vec::new();
    b.retain(|p| {
        seen.push(p.port());
        p.data_mut()[0] = 0xAA;
        true
    });
    assert_eq!(seen, vec![0, 1, 2, 3]);
    assert_eq!(b.len(), 4);
    for i in 0..4 {
        assert_eq!(b.data(i).unwrap()[0], 0xAA);
        assert_eq!(b.data(i).unwrap()[1], i as u8);
    }
    b.data_mut(2).unwrap()[1] = 0x55;
    assert_eq!(b.get(2).unwrap().data()[1], 0x55);
    assert!(b.data(4).is_none());
    for p in b.iter_mut() {
        p.data_mut()[7] = 7;
    }
    assert!(b.iter().all(|p| p.data()[7] == 7 && p.len() == 8));
    drain(&mut b);
}

#[test]
fn packet_grow_and_shrink() {
    let mut m = fake_mbuf(1, 100);
    assert_eq!(m.len(), 100);
    assert_eq!(m.headroom(), HEADROOM);
    assert_eq!(m.tailroom(), BUF_LEN - HEADROOM - 100);
    assert_eq!(m.rss_hash(), None);

    // prepend 20 (e.g. an outer IPv4 header)
    m.prepend(20).unwrap().fill(0x45);
    assert_eq!(m.len(), 120);
    assert_eq!(m.pkt_len(), 120);
    assert_eq!(m.headroom(), HEADROOM - 20);
    assert_eq!(&m.data()[..20], &[0x45; 20]);
    assert_eq!(m.data()[20], 1);
    assert!(m.prepend(HEADROOM).is_none(), "beyond the headroom");
    assert_eq!(m.len(), 120, "a failed prepend changes nothing");

    m.adj(20).unwrap();
    assert_eq!(m.len(), 100);
    assert_eq!(m.headroom(), HEADROOM);
    assert!(m.adj(101).is_none());

    let tail = m.append(4).unwrap();
    assert_eq!(tail.len(), 4);
    tail.copy_from_slice(&[9, 9, 9, 9]);
    assert_eq!(m.len(), 104);
    assert_eq!(&m.data()[100..], &[9, 9, 9, 9]);
    assert!(m.append(BUF_LEN).is_none());

    m.trim(4).unwrap();
    assert_eq!(m.len(), 100);
    assert!(m.trim(101).is_none());

    m.set_data(&[1, 2, 3]).unwrap();
    assert_eq!(m.data(), &[1, 2, 3]);
    m.set_data(&[5; 300]).unwrap();
    assert_eq!(m.len(), 300);
    assert!(m.set_data(&[0; 1000]).is_none());

    // RSS hash is reported only when the flag says it is valid.
    let raw = m.into_raw();
    // SAFETY: the fake mbuf is ours.
    unsafe {
        (*raw).hash.rss = 0xdead_beef;
        (*raw).ol_flags |= sys::RTE_MBUF_F_RX_RSS_HASH;
        let m = Mbuf::from_raw(raw);
        assert_eq!(m.rss_hash(), Some(0xdead_beef));
        destroy(m.into_raw());
    }
}

#[test]
fn errors_and_state_before_init() {
    assert!(!is_initialized());
    assert_eq!(Port::count(), 0);
    assert!(Port::all().is_empty());
    assert_eq!(Port::by_name("net_ring0"), Err(DpdkError::NotInitialized));
    assert!(matches!(
        Mempool::new("p", 63, 0, DEFAULT_DATA_ROOM, SOCKET_ID_ANY),
        Err(DpdkError::NotInitialized)
    ));
    assert!(lcore::launch(1, || 0).is_err());
    assert_eq!(lcore::current(), None);
    assert_eq!(tsc::hz(), 0);
    let a = tsc::now();
    let b = tsc::now();
    assert!(b >= a);

    let e = DpdkError::Call {
        op: "rte_eth_dev_start",
        errno: 22,
    };
    assert_eq!(e.errno(), Some(22));
    let s = e.to_string();
    assert!(
        s.contains("rte_eth_dev_start") && s.contains("Invalid argument"),
        "{s}"
    );
    // DPDK-specific code (E_RTE_NO_CONFIG = RTE_MAX_ERRNO + 2).
    assert!(strerror(1002).contains("config"), "{}", strerror(1002));
    assert!(DpdkError::TooManyQueues {
        port: 0,
        direction: "rx",
        requested: 4,
        max: 1
    }
    .to_string()
    .contains("at most 1"));
}

#[test]
fn thread_safety_markers() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Mempool>();
    send::<Mbuf>();
    send::<MbufBurst>();
    send::<RxQueue>();
    send::<TxQueue>();
    assert_eq!(std::mem::size_of::<Mbuf>(), 8);
    assert_eq!(std::mem::size_of::<Option<Mbuf>>(), 8);
    assert_eq!(
        std::mem::size_of::<MbufBurst>(),
        8 + BURST_SIZE * std::mem::size_of::<usize>()
    );
}

#[test]
fn eal_argv_gets_a_program_name_only_when_missing() {
    let v = |a: &[&str]| -> Vec<String> { a.iter().map(|s| s.to_string()).collect() };
    let names = |a: &[&str]| -> Vec<String> {
        crate::eal::build_argv(&v(a))
            .unwrap()
            .into_iter()
            .map(|c| c.into_string().unwrap())
            .collect()
    };
    assert_eq!(names(&["lbd", "-l", "0"]), v(&["lbd", "-l", "0"]));
    assert_eq!(names(&["-l", "0"]), v(&["lbd", "-l", "0"]));
    assert_eq!(names(&[]), v(&["lbd"]));
    assert!(matches!(
        crate::eal::build_argv(&v(&["x", "bad\0arg"])),
        Err(DpdkError::InvalidArgument { .. })
    ));
}

#[test]
fn burst_drain_hands_out_in_order() {
    let mut b = MbufBurst::new();
    for t in 0..6u8 {
        assert!(b.push(fake_mbuf(t, 2)).is_ok());
    }
    let mut tags = Vec::new();
    b.drain(|m| {
        tags.push(m.port() as u8);
        destroy(m.into_raw());
    });
    assert!(b.is_empty());
    assert_eq!(tags, vec![0, 1, 2, 3, 4, 5]);
}

/// A TX checksum request sets exactly the TX checksum flags and the header
/// lengths, keeps RX flags, and replaces an earlier request.
#[test]
fn tx_checksum_request_sets_flags_and_lengths() {
    let mut m = fake_mbuf(1, 64);
    // SAFETY: the fake header is ours; RX flags as a driver would set them.
    unsafe { (*m.as_ptr()).ol_flags = sys::RTE_MBUF_F_RX_RSS_HASH };
    m.request_tx_checksums(
        14,
        20,
        sys::RTE_MBUF_F_TX_IPV4 | sys::RTE_MBUF_F_TX_IP_CKSUM | sys::RTE_MBUF_F_TX_UDP_CKSUM,
    );
    assert_eq!(
        m.ol_flags(),
        sys::RTE_MBUF_F_RX_RSS_HASH
            | sys::RTE_MBUF_F_TX_IPV4
            | sys::RTE_MBUF_F_TX_IP_CKSUM
            | sys::RTE_MBUF_F_TX_UDP_CKSUM
    );
    // SAFETY: a pure function (packs the C bit-fields).
    assert_eq!(m.tx_offload(), unsafe { sys::lbd_shim_tx_offload(14, 20) });
    // A second request (TCP only, IPv4 header with options) replaces it.
    m.request_tx_checksums(
        18,
        60,
        sys::RTE_MBUF_F_TX_IPV4 | sys::RTE_MBUF_F_TX_TCP_CKSUM,
    );
    assert_eq!(
        m.ol_flags(),
        sys::RTE_MBUF_F_RX_RSS_HASH | sys::RTE_MBUF_F_TX_IPV4 | sys::RTE_MBUF_F_TX_TCP_CKSUM
    );
    // SAFETY: the shim only packs two integers into DPDK's bit-field
    // layout; it touches no memory.
    let packed = unsafe { sys::lbd_shim_tx_offload(18, 60) };
    assert_eq!(m.tx_offload(), packed);
    destroy(m.into_raw());
}
