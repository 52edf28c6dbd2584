//! Every limit a request, a connection or a listener of the daemon is held
//! to, in one place, each with why it is what it is. The head limits a
//! mode may change are [`Limits`] (one value per mode, given to each of
//! its listeners); the rest are fixed.

use ssehub_core::hub::defaults;
use std::time::Duration;

/// The request-head limits of every listener of a mode.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes of a request head (request line and headers).
    pub max_head: usize,
    /// Most header lines in a request.
    pub max_headers: usize,
    /// Time from accept (TLS handshake included) to a complete head.
    pub head_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: DEFAULT_MAX_HEAD,
            max_headers: MAX_HEADERS,
            head_timeout: head_timeout(),
        }
    }
}

// Request heads (`head.rs`, and hyper's parser on kept-alive connections).

/// Node's `--max-http-header-size` default: the head limit unless a mode
/// is given another (`--max-header-size`, `MAX_HEADER_SIZE`).
pub const DEFAULT_MAX_HEAD: usize = 16 * 1024;
/// The smallest head limit a mode may be given: room for a request line
/// and the headers every client sends.
pub const MIN_MAX_HEAD: usize = 1024;
/// The most header lines any request may have (the parse array lives on
/// the stack: no allocation per request for it).
pub const MAX_HEADERS: usize = 100;
/// From accept to a complete head, and for a body to arrive;
/// `SSEHUB_HEADER_TIMEOUT_MS` changes it for tests.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// [`HEAD_TIMEOUT`], or `SSEHUB_HEADER_TIMEOUT_MS` when set.
pub fn head_timeout() -> Duration {
    std::env::var("SSEHUB_HEADER_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(HEAD_TIMEOUT, Duration::from_millis)
}

/// A `max-header-size` value: whole bytes, at least [`MIN_MAX_HEAD`].
pub fn parse_max_head(value: &str) -> Result<usize, String> {
    value
        .parse()
        .ok()
        .filter(|n| *n >= MIN_MAX_HEAD)
        .ok_or_else(|| format!("max-header-size takes a byte count of 1024 or more, not '{value}'"))
}

// Request bodies and lines.

/// The largest form body on jwt's control listener (`/token/`, `/emit/`):
/// an emitted payload is in it.
pub const JWT_FORM: usize = 1 << 20;
/// The largest form body the demo reads for a `/stream`'s `count`.
pub const DEMO_FORM: usize = 64 * 1024;
/// The longest line on channels' control port and FIFO (bytes, without the
/// newline): an event's data is in it.
pub const CONTROL_LINE: usize = 64 * 1024;
/// Windows: instances of the channels FIFO (a named pipe) waiting for
/// writers, so as many are read at once; one more finds the pipe busy
/// until an instance is free.
#[cfg(windows)]
pub const FIFO_WRITERS: usize = 64;
/// The most channels one channels stream may name in its path (a 16 KiB
/// path has room for thousands; none of them is needed and each costs a
/// hub entry).
pub const PATH_CHANNELS: usize = 256;

// Connections.

/// HTTP/2 streams open at once on one connection (each is a client, so the
/// hub's client limit still bounds them all).
pub const H2_MAX_STREAMS: u32 = 1000;
/// A stream whose writes stall this long is dropped (the hub's default, as
/// the addon's).
pub const WRITE_TIMEOUT: Duration = defaults::WRITE_TIMEOUT;
/// The most time a refusal of the gate (400, 408, 414, 431) may take to
/// write before the connection closes.
pub const REFUSAL_WRITE: Duration = Duration::from_secs(5);
/// How long open connections get to finish after the shutdown signal.
pub const GRACE: Duration = Duration::from_secs(5);
/// A channels controller that sends nothing for this long is closed (a
/// script that publishes now and then keeps its connection; a forgotten
/// one does not hold a descriptor forever).
pub const CONTROLLER_IDLE: Duration = Duration::from_secs(600);

// The descriptor budget (`app.rs`'s `Budget`).

/// Descriptors kept out of the web port's reach: the control port and
/// metrics connections below, the FIFO, the log, listeners, the runtime's
/// own. At the limit the web port waits; these keep working.
pub const PRIVATE_RESERVE: usize = 128;
/// Control and metrics connections served at once (further ones wait).
pub const PRIVATE_CONNECTIONS: usize = 64;
/// Web connections kept beyond the client limit for one-shot requests
/// (publishing, tokens, status, the 503 itself), so a full hub still
/// answers instead of leaving new connections unaccepted.
pub const ONE_SHOT_HEADROOM: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_limit_takes_whole_bytes_from_1_kib() {
        assert_eq!(parse_max_head("1024"), Ok(1024));
        assert_eq!(parse_max_head("65536"), Ok(65536));
        for bad in ["1023", "-1", "x", ""] {
            let e = parse_max_head(bad).unwrap_err();
            assert!(e.starts_with("max-header-size takes"), "{e}");
        }
        assert_eq!(Limits::default().max_head, DEFAULT_MAX_HEAD);
    }
}
