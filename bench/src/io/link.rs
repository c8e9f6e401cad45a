//! The generator's side of the link: EAL in this process, a packet pool, and
//! the memif server port with `--queues` RX and TX queues (memif ring pairs;
//! the DUT, the client, configures as many).
//!
//! The server end listens on the socket for the whole `bench io` run; each
//! DUT connects as the client when it starts and disconnects when it stops,
//! so every DUT sees the same port, rings and buffer sizes.

use std::time::{Duration, Instant};

use dpdk::{Eal, Mempool, Port, PortSetup, RxQueue, TxQueue, DEFAULT_DATA_ROOM, SOCKET_ID_ANY};

use super::cmdline::{Layout, GEN_MBUFS};

/// The generator's DPDK resources. Fields drop in order: queues first, then
/// the pool, then EAL (which closes the port).
pub struct Link {
    /// One per queue; queue `i` of each direction is memif ring pair `i`.
    pub rx: Vec<RxQueue>,
    pub tx: Vec<TxQueue>,
    pub pool: Mempool,
    pub port: Port,
    pub hz: u64,
    _eal: Eal,
}

impl Link {
    /// Initialise EAL with the layout's generator arguments and start the
    /// memif server port.
    pub fn open(layout: &Layout) -> Result<Link, String> {
        let args = layout.gen_eal_args();
        let eal = Eal::init(&args).map_err(|e| {
            format!(
                "DPDK EAL initialisation failed ({e}); arguments: {}. bench io needs DPDK \
                 22.11 with the memif driver, and usually root",
                args[1..].join(" ")
            )
        })?;
        // Enough for a TX burst, an RX burst and the driver's refills; memif
        // copies into its shared rings, so no mbuf stays in flight.
        let pool = Mempool::new("gen_pkts", GEN_MBUFS, 256, DEFAULT_DATA_ROOM, SOCKET_ID_ANY)
            .map_err(|e| format!("generator mbuf pool: {e}"))?;
        let port = Port::by_name("net_memif0").map_err(|e| format!("memif port: {e}"))?;
        let setup = PortSetup {
            rx_queues: layout.queues,
            tx_queues: layout.queues,
            ..PortSetup::default()
        };
        let (rx, tx) = port
            .configure(&setup, &pool)
            .map_err(|e| format!("memif port configure ({} queues): {e}", layout.queues))?;
        port.start().map_err(|e| format!("memif port start: {e}"))?;
        Ok(Link {
            rx,
            tx,
            pool,
            port,
            hz: eal.tsc_hz(),
            _eal: eal,
        })
    }

    /// Whether a DUT is connected.
    pub fn up(&self) -> bool {
        self.port.link().map(|l| l.up).unwrap_or(false)
    }

    /// Wait (bounded) until the link is down, so the next DUT's "up" is its
    /// own and not the previous one's.
    pub fn wait_down(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if !self.up() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}
