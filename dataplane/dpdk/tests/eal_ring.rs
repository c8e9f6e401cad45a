//! End-to-end test of the wrapper on real DPDK, with two `net_ring` virtual
//! ports and no NIC or hugepages. EAL initialises once per process, so this
//! is one binary with `harness = false` that runs its checks in sequence and
//! ends with an "N passed, M failed" line (exit code 1 on any failure).
//!
//! A `net_ring` port created by `--vdev=net_ringN` uses the same rings for RX
//! and TX: what is sent on queue q comes back on RX queue q of the same port.

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk::{
    lcore, tsc, DpdkError, Eal, Mbuf, MbufBurst, Mempool, Port, PortSetup, BURST_SIZE,
    DEFAULT_DATA_ROOM, SOCKET_ID_ANY,
};

type TestResult = Result<(), Box<dyn Error>>;

struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            self.passed += 1;
            println!("ok      {what}");
        } else {
            self.failed += 1;
            println!("FAILED  {what}");
        }
    }
}

/// A recognisable Ethernet-ish frame: dst/src MAC, ethertype 0x88b5 (local
/// experimental), then `seq` and a pattern.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    f
}

fn fill(pool: &Mempool, seqs: std::ops::Range<u32>) -> Result<(MbufBurst, u64), Box<dyn Error>> {
    let mut burst = MbufBurst::new();
    let mut bytes = 0u64;
    for seq in seqs {
        let len = 60 + (seq as usize * 7) % 1400;
        let mut m: Mbuf = pool.alloc().ok_or("pool empty")?;
        m.append(len as u16).ok_or("no tailroom")?;
        m.data_mut().copy_from_slice(&frame(seq, len));
        bytes += len as u64;
        burst.push(m).map_err(|_| "burst full")?;
    }
    Ok((burst, bytes))
}

fn eal_args(two_lcores: bool) -> Vec<String> {
    let lcores = if two_lcores { "0-1" } else { "0" };
    [
        "eal_ring",
        "-l",
        lcores,
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--log-level=lib.eal:warning",
        "--vdev=net_ring0",
        "--vdev=net_ring1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(t: &mut Tally) -> TestResult {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut eal = Eal::init(&eal_args(cpus >= 2))?;
    t.check(dpdk::is_initialized(), "EAL initialised");
    t.check(
        matches!(
            Eal::init(&eal_args(false)),
            Err(DpdkError::AlreadyInitialized)
        ),
        "second Eal::init is refused",
    );
    t.check(eal.main_lcore() == 0, "main lcore is 0");
    let workers = eal.worker_lcores();
    t.check(
        workers.len() == usize::from(cpus >= 2),
        &format!("worker lcores {workers:?}"),
    );
    t.check(eal.tsc_hz() > 0, &format!("tsc hz {}", eal.tsc_hz()));
    t.check(lcore::current() == Some(0), "main thread is lcore 0");
    let _ = eal.socket_id();

    // ---- ports ----
    t.check(Port::count() == 2, &format!("{} ports", Port::count()));
    let p0 = Port::by_name("net_ring0")?;
    let p1 = Port::by_name("net_ring1")?;
    t.check(p0 != p1, "distinct port ids");
    t.check(Port::by_id(p1.id())? == p1, "by_id finds the port");
    t.check(
        matches!(Port::by_name("net_nope9"), Err(DpdkError::PortNotFound(_))),
        "unknown port name",
    );
    t.check(
        matches!(Port::by_id(31), Err(DpdkError::InvalidPort(31))),
        "unknown port id",
    );
    t.check(p0.name()? == "net_ring0", "port name");
    let info = p0.info()?;
    t.check(
        info.driver == "net_ring",
        &format!("driver {:?}", info.driver),
    );

    let pool = Mempool::new("eal_ring_test", 4095, 64, DEFAULT_DATA_ROOM, SOCKET_ID_ANY)?;
    t.check(pool.available() == 4095, "pool full at start");
    t.check(
        Mempool::new("eal_ring_test", 63, 0, DEFAULT_DATA_ROOM, SOCKET_ID_ANY).is_err(),
        "duplicate pool name refused",
    );

    let too_many = PortSetup {
        rx_queues: info.max_rx_queues + 1,
        ..PortSetup::default()
    };
    let err = p0.configure(&too_many, &pool).err();
    t.check(
        matches!(
            err,
            Some(DpdkError::TooManyQueues {
                direction: "rx",
                ..
            })
        ),
        &format!(
            "too many queues: {}",
            err.map_or("no error".into(), |e| e.to_string())
        ),
    );

    let setup = PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 512,
        tx_desc: 512,
        rss: true,
    };
    let (mut rx0, mut tx0) = p0.configure(&setup, &pool)?;
    let (mut rx1, mut tx1) = p1.configure(&setup, &pool)?;
    t.check(rx0.len() == 1 && tx0.len() == 1, "one queue each way");
    t.check(!p0.rss_enabled(), "net_ring has no RSS, so it stays off");
    t.check(
        matches!(p0.configure(&setup, &pool), Err(DpdkError::InUse { .. })),
        "reconfigure refused while queue handles live",
    );

    let mac = p0.mac_addr()?;
    println!("        net_ring0 MAC {mac:02x?}");
    let new_mac = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];
    match p0.set_mac_addr(new_mac) {
        Ok(()) => t.check(p0.mac_addr()? == new_mac, "MAC address set"),
        Err(e) => t.check(
            e.errno().is_some(),
            &format!("set MAC reports an errno: {e}"),
        ),
    }
    p0.start()?;
    p1.start()?;
    match p0.set_promiscuous(true) {
        Ok(()) => t.check(p0.promiscuous()?, "promiscuous on"),
        Err(e) => t.check(
            e.errno().is_some(),
            &format!("promiscuous reports an errno: {e}"),
        ),
    }
    let link = p0.link()?;
    t.check(link.up, &format!("link {link:?}"));
    p0.reset_stats()?;

    // ---- loopback: tx on ring0 comes back on ring0's rx ----
    let (mut burst, bytes) = fill(&pool, 0..40)?;
    t.check(burst.len() == 40, "40 frames built");
    let sent = tx0[0].tx_burst(&mut burst);
    t.check(
        sent == 40 && burst.is_empty(),
        &format!("tx_burst sent {sent}/40"),
    );
    let mut got = MbufBurst::new();
    let mut empty = MbufBurst::new();
    t.check(rx1[0].rx_burst(&mut empty) == 0, "nothing on ring1");
    let n = rx0[0].rx_burst(&mut got);
    t.check(n == 40 && got.len() == 40, &format!("rx_burst got {n}/40"));
    let mut same = true;
    let mut got_bytes = 0u64;
    for (i, p) in got.iter().enumerate() {
        got_bytes += p.len() as u64;
        let want = frame(i as u32, 60 + (i * 7) % 1400);
        same &= p.data() == &want[..];
    }
    t.check(same, "received bytes equal sent bytes, in order");
    t.check(got_bytes == bytes, "received byte count");
    got.retain(|p| p.len() > 500);
    t.check(
        got.iter().all(|p| p.len() > 500),
        "retain keeps the long frames",
    );
    got.free_all();
    t.check(
        pool.in_use() == 0,
        &format!("all mbufs back ({} in use)", pool.in_use()),
    );

    let st = p0.stats()?;
    println!("        net_ring0 stats {st:?}");
    t.check(
        st.opackets == 40 && st.ipackets == 40,
        "stats count 40 packets each way",
    );
    t.check(
        (st.obytes == 0 || st.obytes == bytes) && (st.ibytes == 0 || st.ibytes == bytes),
        "byte counters are either unsupported or exact",
    );

    // ---- a full TX ring leaves the unsent packets in the burst ----
    let mut total_sent = 0usize;
    let mut seq = 0u32;
    let mut leftover = 0usize;
    for _ in 0..64 {
        let (mut b, _) = fill(&pool, seq..seq + BURST_SIZE as u32)?;
        seq += BURST_SIZE as u32;
        let s = tx0[0].tx_burst(&mut b);
        total_sent += s;
        if s < BURST_SIZE {
            leftover = b.len();
            // The unsent ones are still at the front, in order.
            let first = u32::from_be_bytes(b.data(0).ok_or("empty")?[14..18].try_into()?);
            t.check(
                leftover == BURST_SIZE - s && first == seq - BURST_SIZE as u32 + s as u32,
                &format!("partial tx keeps {leftover} unsent, first seq {first}"),
            );
            let (s2, dropped) = tx0[0].tx_burst_or_free(&mut b);
            t.check(
                s2 == 0 && dropped == leftover && b.is_empty(),
                "tx_burst_or_free frees the rest",
            );
            break;
        }
    }
    t.check(
        leftover > 0,
        &format!("TX ring filled after {total_sent} packets"),
    );
    let mut drained = 0usize;
    loop {
        let mut b = MbufBurst::new();
        let n = rx0[0].rx_burst(&mut b);
        if n == 0 {
            break;
        }
        drained += n;
    }
    t.check(
        drained == total_sent,
        &format!("drained {drained} of {total_sent}"),
    );
    t.check(pool.in_use() == 0, "pool whole again");

    // ---- a closure on a worker lcore, owning port 1's queues ----
    if let Some(&w) = workers.first() {
        let ran = Arc::new(AtomicBool::new(false));
        let ran2 = Arc::clone(&ran);
        let wpool = pool.clone();
        let mut rxq = rx1.pop().ok_or("no rx1")?;
        let mut txq = tx1.pop().ok_or("no tx1")?;
        lcore::launch(w, move || {
            ran2.store(true, Ordering::SeqCst);
            let me = lcore::current().map_or(-1, |id| id as i32);
            let mut b = MbufBurst::new();
            if !wpool.alloc_bulk(&mut b, 16) {
                return -2;
            }
            for p in b.iter_mut() {
                p.set_data(&frame(7, 64));
            }
            if txq.tx_burst(&mut b) != 16 {
                return -3;
            }
            let mut r = MbufBurst::new();
            let n = rxq.rx_burst(&mut r);
            let ok = n == 16 && r.iter().all(|p| p.data() == &frame(7, 64)[..]);
            // queues and bursts drop here, on the worker
            if ok {
                me
            } else {
                -4
            }
        })?;
        t.check(
            lcore::launch(eal.main_lcore(), || 0).is_err(),
            "launch on the main lcore is refused",
        );
        let ret = lcore::wait(w)?;
        t.check(ran.load(Ordering::SeqCst), "worker closure ran");
        t.check(
            ret == w as i32,
            &format!("worker returned {ret} (its lcore id)"),
        );
        lcore::wait_all();
        let st1 = p1.stats()?;
        t.check(
            st1.opackets == 16 && st1.ipackets == 16,
            "port 1 stats after worker",
        );
    } else {
        println!("        (one lcore only: worker launch skipped)");
    }

    // ---- a non-EAL thread registers itself ----
    let (before, after) = std::thread::spawn(|| {
        let before = lcore::current();
        let after = lcore::register_thread();
        lcore::unregister_thread();
        (before, after)
    })
    .join()
    .map_err(|_| "thread panicked")?;
    t.check(
        before.is_none() && matches!(after, Ok(id) if id != 0),
        &format!("register_thread: {before:?} -> {after:?}"),
    );

    // ---- teardown ----
    t.check(
        matches!(p0.stop(), Err(DpdkError::InUse { .. })),
        "stop refused while queue handles live",
    );
    drop((rx0, tx0, rx1, tx1));
    let t0 = tsc::now();
    p0.stop()?;
    p0.close()?;
    p1.stop()?;
    p1.close()?;
    t.check(tsc::now() >= t0, "tsc advances");
    t.check(Port::count() == 0, "ports closed");
    t.check(
        matches!(eal.cleanup(), Err(DpdkError::InUse { .. })),
        "cleanup refused while a mempool lives",
    );
    t.check(pool.in_use() == 0, "no mbuf leaked");
    drop(pool);
    eal.cleanup()?;
    t.check(!dpdk::is_initialized(), "EAL cleaned up");
    t.check(
        matches!(
            Mempool::new("late", 63, 0, DEFAULT_DATA_ROOM, SOCKET_ID_ANY),
            Err(DpdkError::NotInitialized)
        ),
        "no DPDK objects after cleanup",
    );
    t.check(
        matches!(
            Eal::init(&eal_args(false)),
            Err(DpdkError::AlreadyInitialized)
        ),
        "no second init after cleanup",
    );
    Ok(())
}

fn main() {
    let mut t = Tally {
        passed: 0,
        failed: 0,
    };
    if let Err(e) = run(&mut t) {
        t.check(false, &format!("aborted: {e}"));
    }
    println!("{} passed, {} failed", t.passed, t.failed);
    if t.failed > 0 {
        std::process::exit(1);
    }
}
