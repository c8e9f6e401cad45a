//! Connection tracking: the per-worker connection table and the state machine.
//!
//! The tables are generic over the key type (`key.rs`): [`ConnKey`] for
//! IPv4, [`ConnKey6`] for IPv6, one table per family. Only IPv4 tables are
//! in use so far.
//!
//! Each worker owns one [`ConnTable`]: RSS sends every packet of a flow in
//! the client→VIP direction to the same queue, so in DR mode no other core
//! ever needs the entry, and the table needs neither locks nor atomics. How
//! NAT replies arriving on another queue will find their connection is
//! described in `docs/ARCHITECTURE.md`.

pub mod flood;
pub mod home;
pub mod key;
pub mod keyhash;
pub mod keyspace;
pub mod shared;
pub mod state;
pub mod sync;
pub mod table;

pub use flood::{FloodChange, FloodGuard, FloodPolicy};
pub use key::{ConnKey, ConnKey6, TableKey};
pub use state::{tcp_input_only, tcp_input_only_u8, tcp_nat, ConnState, Dir, TimeoutsMs};
pub use table::{tick_reached, Conn, ConnTable, Probe, Tick};
