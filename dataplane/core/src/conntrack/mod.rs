//! Connection tracking: the per-worker connection table and the state machine.
//!
//! Each worker owns one [`ConnTable`]: RSS sends every packet of a flow in
//! the client→VIP direction to the same queue, so in DR mode no other core
//! ever needs the entry, and the table needs neither locks nor atomics. How
//! NAT replies arriving on another queue will find their connection is
//! described in `docs/ARCHITECTURE.md`.

pub mod flood;
pub mod shared;
pub mod state;
pub mod sync;
pub mod table;

pub use flood::{FloodChange, FloodGuard, FloodPolicy};
pub use state::{tcp_input_only, tcp_input_only_u8, tcp_nat, ConnState, Dir, TimeoutsMs};
pub use table::{tick_reached, Conn, ConnKey, ConnTable, Probe};

/// Milliseconds on the worker's clock (wrapping `u32`).
pub type Tick = u32;
