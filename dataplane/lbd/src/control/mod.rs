//! Control work, all off the workers: the periodic loop (neighbours, rates,
//! drains, reloads), the control plane that applies changes, the control
//! socket, and connection listings.

pub mod change;
pub mod conns;
pub mod deps;
pub mod listen;
pub mod live;
pub mod periodic;
pub mod persist;
pub mod plane;
pub mod resolve_first;
pub mod server;
pub mod store;
