//! The control protocol between `lbctl` and `lbd`, shared by both.
//!
//! A unix stream socket carries frames: a 4-byte big-endian length, then that
//! many bytes of JSON. The client sends a [`RequestFrame`]; the server answers
//! with exactly one [`ResponseFrame`]; a connection may carry several
//! requests in turn. Every frame names the protocol version; a peer that
//! speaks another version gets an [`ErrorKind::VersionMismatch`] error.
//! Frames above [`MAX_FRAME`] are refused without reading them.

pub mod frame;
pub mod types;

pub use frame::{decode, encode, read_frame, write_frame, FrameError, MAX_FRAME};
pub use types::*;

/// Version of the request/response types below. Bump on incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Where lbd listens unless configured otherwise.
pub const DEFAULT_SOCKET: &str = "/run/lbd/lbd.sock";
