//! What the IPv4 and IPv6 VRRP sockets share: socket options, waiting,
//! the interface index.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// A fresh raw socket of `domain` for `proto`, owned.
pub fn raw_socket(domain: i32, proto: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(last_err());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// setsockopt(2) with a value of any plain type.
pub fn set<T>(sock: &OwnedFd, level: i32, opt: i32, val: &T) -> std::io::Result<()> {
    // SAFETY: val points to size_of::<T>() readable bytes for the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(last_err())
    } else {
        Ok(())
    }
}

/// Bind `sock` to interface `iface` (SO_BINDTODEVICE).
pub fn bind_to_device(sock: &OwnedFd, iface: &str) -> std::io::Result<()> {
    let bytes = iface.as_bytes();
    // SAFETY: bytes is valid for its length during the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            bytes.as_ptr().cast(),
            bytes.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(last_err())
    } else {
        Ok(())
    }
}

/// The index of interface `iface`.
pub fn ifindex(iface: &str) -> std::io::Result<u32> {
    let name = std::ffi::CString::new(iface).map_err(std::io::Error::other)?;
    // SAFETY: if_nametoindex reads the NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if i == 0 {
        Err(last_err())
    } else {
        Ok(i)
    }
}

/// Wait up to `wait` for the socket to be readable.
pub fn readable(sock: &OwnedFd, wait: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// sendto(2) with a socket address of any plain type.
pub fn send_to<A>(sock: &OwnedFd, msg: &[u8], sa: &A) -> std::io::Result<()> {
    // SAFETY: msg and sa are valid for the call.
    let r = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (sa as *const A).cast(),
            std::mem::size_of::<A>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(last_err())
    } else {
        Ok(())
    }
}
