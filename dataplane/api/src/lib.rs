//! `lb_api`: what `lbctl` and `lbd` share, without the packet path.
//!
//! - [`protocol`]: the lbctl ⇄ lbd control protocol (requests, responses,
//!   framing); `lbcore` re-exports it as `lbcore::api`;
//! - [`config`]: the RON configuration schema — the document the control
//!   socket carries and the file holds — with its validation and error
//!   locations; `lbcore` re-exports it as `lbcore::config`;
//! - [`addr`]: addresses with ports as ipvsadm writes and reads them
//!   (`[2001:db8::100]:80`);
//! - [`mac`]: the MAC address type the schema uses (`lbcore::wire` uses it
//!   too).
//!
//! `lbctl` depends on this crate alone, so building it does not build the
//! packet core.

#![forbid(unsafe_code)]

pub mod addr;
pub mod config;
pub mod mac;
pub mod protocol;
