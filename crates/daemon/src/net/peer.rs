//! One accepted connection as handlers see it: its number, its peer, the
//! two ways a handler ends it, and its place in the listener's idle budget
//! ([`super::idle`]).

use super::idle::{IdleBudget, Standing, Streaming};
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
    /// HTTP/1 only: on HTTP/2 a slow stream is reset alone (see
    /// [`super::h2`]).
    abort: Arc<Notify>,
    /// Served by HTTP/2 (many streams, each ended on its own).
    http2: bool,
    standing: Arc<Standing>,
}

impl Conn {
    /// A connection of its own (for tests).
    #[cfg(test)]
    pub fn new(id: u64, peer: SocketAddr, local: SocketAddr) -> Conn {
        Conn::admitted(id, peer, local, &IdleBudget::new(1))
    }

    /// A connection just accepted, idle in `budget` until a stream opens.
    pub fn admitted(
        id: u64,
        peer: SocketAddr,
        local: SocketAddr,
        budget: &Arc<IdleBudget>,
    ) -> Conn {
        Conn {
            id,
            peer: super::addr::canonical(peer),
            local: super::addr::canonical(local),
            close: Arc::new(Notify::new()),
            abort: Arc::new(Notify::new()),
            http2: false,
            standing: Standing::admitted(id, budget),
        }
    }

    /// The same connection, served by HTTP/2.
    pub fn for_http2(&self) -> Conn {
        Conn {
            http2: true,
            ..self.clone()
        }
    }

    /// Served by HTTP/2: a stream ends alone, never the connection.
    pub fn is_http2(&self) -> bool {
        self.http2
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

    /// An event stream opened on this connection: it is not idle while the
    /// guard lives.
    pub fn stream_opened(&self) -> Streaming {
        self.standing.stream_opened()
    }

    /// Completes once the idle budget evicted this connection.
    pub async fn evicted(&self) {
        self.standing.evicted().await
    }

    pub(super) fn standing(&self) -> &Arc<Standing> {
        &self.standing
    }
}
