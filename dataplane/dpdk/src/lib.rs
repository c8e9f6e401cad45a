//! A small, safe wrapper over DPDK 22.11 for the lbd dataplane.
//!
//! * [`Eal`]: initialise DPDK once per process; worker lcores, TSC.
//! * [`Mempool`], [`Mbuf`], [`Packet`], [`MbufBurst`]: packet buffers. A burst
//!   is a fixed array of 64 mbuf pointers: no allocation on the fast path.
//! * [`Port`], [`RxQueue`], [`TxQueue`]: ports and their queues. Queue handles
//!   are `Send` (move them to the lcore that polls them) and neither `Sync`
//!   nor `Clone` (one owner per queue).
//! * [`lcore`]: launch closures on worker lcores, register other threads.
//! * [`tsc`]: time-stamp counter.
//!
//! All `unsafe` code is in this crate, each block with a `SAFETY` comment.
//! Typical use:
//!
//! ```no_run
//! use dpdk::{Eal, Mempool, MbufBurst, Port, PortSetup, DEFAULT_DATA_ROOM, SOCKET_ID_ANY};
//! # fn main() -> Result<(), dpdk::DpdkError> {
//! let args: Vec<String> = ["lbd", "-l", "0", "--no-huge", "-m", "256", "--no-pci",
//!     "--no-shconf", "--vdev=net_ring0"].iter().map(|s| s.to_string()).collect();
//! let _eal = Eal::init(&args)?;
//! let pool = Mempool::new("pkts", 4095, 256, DEFAULT_DATA_ROOM, SOCKET_ID_ANY)?;
//! let port = Port::by_name("net_ring0")?;
//! let (mut rxq, mut txq) = port.configure(&PortSetup::default(), &pool)?;
//! port.start()?;
//! let mut burst = MbufBurst::new();
//! rxq[0].rx_burst(&mut burst);
//! txq[0].tx_burst_or_free(&mut burst);
//! # Ok(()) }
//! ```

mod eal;
mod error;
pub mod lcore;
mod mbuf;
mod mempool;
mod port;
pub mod tsc;

pub use dpdk_sys as sys;
pub use eal::{is_initialized, Eal};
pub use error::{strerror, DpdkError, Result};
pub use lcore::register_thread;
pub use mbuf::{Mbuf, MbufBurst, Packet, BURST_SIZE};
pub use mempool::{Mempool, DEFAULT_DATA_ROOM, HEADROOM, SOCKET_ID_ANY};
pub use port::{
    LinkChangeCallback, LinkStatus, Port, PortConf, PortInfo, PortSetup, PortStats, RxQueue,
    TxQueue,
};

#[cfg(test)]
mod tests;
