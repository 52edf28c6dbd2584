//! A native client's socket: Node's fd duplicated (CLOEXEC) into a
//! non-blocking stream Rust owns, and the socket options `req.socket`'s
//! stand-in sets on it.

#[cfg(unix)]
use crate::codes::{coded, Code};
use napi::{Env, Error, Result, Status};

/// Duplicates a socket fd owned by Node into a non-blocking std stream.
/// Fails (and leaves Node's socket untouched) if `fd` is not a connected
/// TCP socket, with [`Code::NoFd`] when no fd is left to duplicate into.
#[cfg(unix)]
pub(crate) fn dup_tcp_stream(env: &Env, fd: i32) -> Result<std::net::TcpStream> {
    use std::os::fd::BorrowedFd;
    if fd < 0 {
        return Err(Error::new(Status::InvalidArg, "ssehub: invalid fd"));
    }
    // SAFETY: JS passes the fd of a live socket it still owns; it is only
    // borrowed for the duration of the F_DUPFD_CLOEXEC call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned = borrowed.try_clone_to_owned().map_err(|e| {
        coded(
            env,
            Code::NoFd,
            &format!("ssehub: cannot duplicate the socket: {e}"),
        )
    })?;
    let stream = std::net::TcpStream::from(owned);
    let not_connected = |e: std::io::Error| {
        coded(
            env,
            Code::NotConnected,
            &format!("ssehub: socket not connected: {e}"),
        )
    };
    stream.peer_addr().map_err(not_connected)?;
    stream.set_nonblocking(true).map_err(not_connected)?;
    stream.set_nodelay(true).map_err(not_connected)?;
    Ok(stream)
}

#[cfg(not(unix))]
pub(crate) fn dup_tcp_stream(_env: &Env, _fd: i32) -> Result<std::net::TcpStream> {
    Err(Error::new(
        Status::GenericFailure,
        "ssehub: fd adoption needs a Unix platform",
    ))
}

#[cfg(unix)]
pub(crate) fn raw_fd(stream: &std::net::TcpStream) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(stream)
}

#[cfg(not(unix))]
pub(crate) fn raw_fd(_stream: &std::net::TcpStream) -> i32 {
    -1
}

#[cfg(unix)]
pub(crate) fn set_option(fd: i32, level: i32, name: i32, value: i32) -> bool {
    // SAFETY: `fd` is a live socket (see `NativeHub::sockets`); the value
    // is a plain int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// TCP_NODELAY on or off.
#[cfg(unix)]
pub(crate) fn set_nodelay(fd: i32, on: bool) -> bool {
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on.into())
}

/// SO_KEEPALIVE on or off.
#[cfg(unix)]
pub(crate) fn set_keepalive(fd: i32, on: bool) -> bool {
    set_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, on.into())
}

// Windows has no native clients (JS's fallback transport writes every
// stream: lib/transports/native.js never adopts there), so no socket to set.
#[cfg(not(unix))]
pub(crate) fn set_nodelay(_fd: i32, _on: bool) -> bool {
    false
}

#[cfg(not(unix))]
pub(crate) fn set_keepalive(_fd: i32, _on: bool) -> bool {
    false
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn set_keepalive_idle(fd: i32, secs: i32) -> bool {
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
pub(crate) fn set_keepalive_idle(fd: i32, secs: i32) -> bool {
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPALIVE, secs)
}

#[cfg(not(unix))]
pub(crate) fn set_keepalive_idle(_fd: i32, _secs: i32) -> bool {
    false
}
