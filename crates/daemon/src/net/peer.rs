//! One accepted connection as handlers see it: its number, its peer, and
//! the two ways a handler ends it.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Notify;

/// One accepted connection, as handlers and hooks see it.
#[derive(Clone)]
pub struct Conn {
    /// Its number (shared counter of the mode, for log lines).
    pub id: u64,
    /// The peer, IPv4-mapped addresses shown as IPv4.
    pub peer: SocketAddr,
    /// The address it was accepted on.
    pub local: SocketAddr,
    /// Notified by a handler that wants the connection closed after its
    /// reply (SSE-Server closes after every one-shot answer).
    close: Arc<Notify>,
    /// Notified to drop the connection at once, even mid-write: a client
    /// closed as slow is let go although hyper is blocked writing to it.
    abort: Arc<Notify>,
}

impl Conn {
    pub fn new(id: u64, peer: SocketAddr, local: SocketAddr) -> Conn {
        Conn {
            id,
            peer: super::addr::canonical(peer),
            local: super::addr::canonical(local),
            close: Arc::new(Notify::new()),
            abort: Arc::new(Notify::new()),
        }
    }

    /// Closes the connection once the current response is written.
    pub fn close_after_reply(&self) {
        self.close.notify_one();
    }

    /// Drops the connection now, whatever it is doing.
    pub fn abort(&self) {
        self.abort.notify_one();
    }

    /// Completes once [`Conn::close_after_reply`] was asked for.
    pub async fn close_asked(&self) {
        self.close.notified().await
    }

    /// Completes once [`Conn::abort`] was asked for.
    pub async fn abort_asked(&self) {
        self.abort.notified().await
    }
}
