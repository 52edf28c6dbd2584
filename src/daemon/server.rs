//! The accept loop every mode runs its listeners on: hyper HTTP/1 per
//! connection (optionally behind TLS), a cap on open connections, and a
//! graceful shutdown: on the signal, stop accepting, let every response
//! finish (streams end when their hub is closed) and wait for the
//! connections to go, within a grace period.

use super::http::ReplyBody;
use crate::hub::Subscription;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio_rustls::TlsAcceptor;

/// How long open connections get to finish after the shutdown signal.
const GRACE: Duration = Duration::from_secs(5);

/// How long a client may take to send its request head or TLS handshake
/// (slowloris defence): 30 s, or `SSEHUB_HEADER_TIMEOUT_MS` (for tests).
pub fn head_timeout() -> Duration {
    static TIMEOUT: LazyLock<Duration> = LazyLock::new(|| {
        std::env::var("SSEHUB_HEADER_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(30), Duration::from_millis)
    });
    *TIMEOUT
}

/// Streaming clients a mode admits by default; past the limit, 503.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// Connections kept beyond the client limit for one-shot requests
/// (publishing, tokens, status, the 503 itself), so a full hub still
/// answers instead of leaving new connections unaccepted.
const CONNECTION_HEADROOM: usize = 1_000;

/// The cap on open connections for a client limit (0 = no limit).
pub fn connection_cap(max_clients: usize) -> usize {
    if max_clients == 0 {
        Semaphore::MAX_PERMITS
    } else {
        max_clients.saturating_add(CONNECTION_HEADROOM)
    }
}

/// A `max-clients` value: a whole number, 0 for no limit.
pub fn parse_max_clients(value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("max-clients takes a whole number (0 = no limit), not '{value}'"))
}

/// A future returned by a request handler.
pub type Reply = Pin<Box<dyn Future<Output = Response<ReplyBody>> + Send>>;
/// A mode's request handler.
pub type Handler = Arc<dyn Fn(Request<Incoming>, Conn) -> Reply + Send + Sync>;

/// One accepted connection, as handlers and hooks see it.
#[derive(Clone)]
pub struct Conn {
    /// Its number (shared counter of the mode, for log lines).
    pub id: u64,
    /// The peer, IPv4-mapped addresses shown as IPv4.
    pub peer: SocketAddr,
    /// Notified by a handler that wants the connection closed after its
    /// reply (SSE-Server closes after every one-shot answer).
    close: Arc<Notify>,
    /// Notified to drop the connection at once, even mid-write: a client
    /// closed as slow is let go although hyper is blocked writing to it.
    abort: Arc<Notify>,
}

impl Conn {
    /// Closes the connection once the current response is written.
    pub fn close_after_reply(&self) {
        self.close.notify_one();
    }

    /// Drops the connection now, whatever it is doing.
    pub fn abort(&self) {
        self.abort.notify_one();
    }
}

/// Connection events a mode may log, and the streams it takes from hyper.
pub trait Hooks: Send + Sync {
    fn opened(&self, _conn: &Conn) {}
    fn closed(&self, _conn: &Conn) {}
    fn tls_failed(&self, _conn: &Conn, _err: &io::Error) {}
    /// Offered every plain-TCP request whose head arrived whole: a mode
    /// returns a [`NativeStream`] for a request that opens an event stream,
    /// to serve it with the hub's own writer instead of hyper.
    fn take_stream(&self, _head: &RequestHead<'_>, _conn: &Conn) -> Option<NativeStream> {
        None
    }
}

/// A request head, parsed before hyper sees the connection.
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// The request target as sent (path and query).
    pub target: &'a str,
    pub http10: bool,
    pub headers: &'a [httparse::Header<'a>],
}

impl RequestHead<'_> {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Whether the request carries a body (then hyper serves it).
    fn has_body(&self) -> bool {
        self.header("transfer-encoding").is_some()
            || self.header("content-length").is_some_and(|v| v != b"0")
    }
}

/// An event stream served by the native writer ([`crate::conn`]): one small
/// task per client instead of hyper's per-connection buffers (8 KiB or more
/// each), which is what keeps idle connections to a few KiB.
pub struct NativeStream {
    pub sub: Subscription,
    /// The status line, headers and first body bytes, exactly as sent.
    pub head: Bytes,
    /// HTTP/1.1 chunked body (off for HTTP/1.0).
    pub chunked: bool,
    /// Run when the stream is over.
    pub on_end: Option<Box<dyn FnOnce() + Send>>,
}

/// The most of a request head looked at before handing over to hyper.
const PEEK_LIMIT: usize = 4096;
/// A native stream whose writes stall this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Hooks that do nothing.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// The process-wide stop signal: set once, seen by every task.
#[derive(Clone)]
pub struct Shutdown {
    /// `true` once a stop was asked for.
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the stop was asked for.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Triggers `shutdown` on SIGTERM or SIGINT; `said` is told which one.
pub fn on_signals(shutdown: Shutdown, said: impl Fn(&str) + Send + 'static) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Node installs its own SIGTERM/SIGINT handlers (they reset the tty and
    // re-raise, killing the process); tokio's handler would chain to them.
    // Restore the defaults first so that only tokio's handler runs.
    // SAFETY: setting a disposition to SIG_DFL has no memory effects.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        said(name);
        shutdown.trigger();
    });
    Ok(())
}

/// A bound listener and how to serve it.
pub struct Listener {
    pub tcp: TcpListener,
    /// TLS on every connection when set.
    pub tls: Option<TlsAcceptor>,
    /// Connections served at once; further accepts wait.
    pub max_connections: usize,
    /// The counter connection numbers are drawn from.
    pub ids: Arc<AtomicU64>,
}

/// Serves `listener` until `shutdown`, then waits (at most [`GRACE`]) for
/// its connections to finish.
pub async fn serve(
    listener: Listener,
    handler: Handler,
    hooks: Arc<dyn Hooks>,
    shutdown: Shutdown,
) {
    let limit = Arc::new(Semaphore::new(listener.max_connections.max(1)));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p,
            _ = shutdown.wait() => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            r = listener.tcp.accept() => r,
            _ = shutdown.wait() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(_) => {
                // Out of descriptors or a reset during accept: back off.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = Conn {
            id: listener.ids.fetch_add(1, Ordering::Relaxed),
            peer: canonical(peer),
            close: Arc::new(Notify::new()),
            abort: Arc::new(Notify::new()),
        };
        let task = ConnTask {
            conn,
            handler: handler.clone(),
            hooks: hooks.clone(),
            shutdown: shutdown.clone(),
            _done: done_tx.clone(),
        };
        let tls = listener.tls.clone();
        tokio::spawn(async move {
            task.run(stream, tls).await;
            drop(permit);
        });
    }
    drop(done_tx);
    let _ = tokio::time::timeout(GRACE, done_rx.recv()).await;
}

/// Everything one connection's task needs.
struct ConnTask {
    conn: Conn,
    handler: Handler,
    hooks: Arc<dyn Hooks>,
    shutdown: Shutdown,
    /// Dropped when the task ends; `serve` waits for all of them.
    _done: mpsc::Sender<()>,
}

impl ConnTask {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let _ = stream.set_nodelay(true);
        self.hooks.opened(&self.conn);
        match tls {
            None => match self.native_stream(&stream).await {
                Some(Ok(native)) => self.serve_native(stream, native).await,
                Some(Err(())) => {} // no head in time, or the peer left
                // Boxed: hyper's connection state is large, and a task's
                // size is that of its largest state, native streams included.
                None => Box::pin(self.drive(stream)).await,
            },
            // Boxed, like hyper's state: only TLS connections pay for it.
            Some(acceptor) => Box::pin(self.serve_tls(stream, acceptor)).await,
        }
        self.hooks.closed(&self.conn);
    }

    async fn serve_tls(&self, stream: TcpStream, acceptor: TlsAcceptor) {
        match tokio::time::timeout(head_timeout(), acceptor.accept(stream)).await {
            Ok(Ok(tls_stream)) => self.drive(tls_stream).await,
            Ok(Err(e)) => self.hooks.tls_failed(&self.conn, &e),
            Err(_) => {
                let e = io::Error::new(io::ErrorKind::TimedOut, "handshake timed out");
                self.hooks.tls_failed(&self.conn, &e);
            }
        }
    }

    /// Looks at the request head without consuming it: if the mode takes
    /// it as a native stream, consumes the head and returns the stream;
    /// `None` leaves everything to hyper (including malformed or partial
    /// heads, which hyper answers properly).
    async fn native_stream(&self, stream: &TcpStream) -> Option<Result<NativeStream, ()>> {
        let mut buf = vec![0u8; PEEK_LIMIT];
        let seen = match tokio::time::timeout(head_timeout(), stream.peek(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Some(Err(())),
            Ok(Ok(n)) => n,
        };
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head_len)) = req.parse(&buf[..seen]) else {
            return None;
        };
        let head = RequestHead {
            method: req.method?,
            target: req.path?,
            http10: req.version? == 0,
            headers: req.headers,
        };
        if head.has_body() {
            return None;
        }
        let native = self.hooks.take_stream(&head, &self.conn)?;
        // The head was only peeked: take it off the socket now.
        let mut taken = 0;
        while taken < head_len {
            match stream.try_read(&mut buf[taken..head_len]) {
                Ok(0) | Err(_) => return Some(Err(())),
                Ok(n) => taken += n,
            }
        }
        Some(Ok(native))
    }

    async fn serve_native(&self, stream: TcpStream, native: NativeStream) {
        let settings = crate::conn::StreamSettings {
            head: native.head,
            chunked: native.chunked,
            write_timeout: Some(WRITE_TIMEOUT),
        };
        crate::conn::serve_tcp(stream, native.sub, settings).await;
        if let Some(on_end) = native.on_end {
            on_end();
        }
    }

    async fn drive<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handler = self.handler.clone();
        let conn = self.conn.clone();
        let service = service_fn(move |req| {
            let reply = handler(req, conn.clone());
            async move { Ok::<_, Infallible>(reply.await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .title_case_headers(true)
            .auto_date_header(false)
            .timer(TokioTimer::new())
            .header_read_timeout(head_timeout());
        let served = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(served);
        let mut closing = false;
        loop {
            tokio::select! {
                _ = served.as_mut() => break,
                _ = self.conn.abort.notified() => break,
                _ = self.shutdown.wait(), if !closing => {
                    served.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = self.conn.close.notified(), if !closing => {
                    served.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Shows an IPv4-mapped IPv6 peer as the IPv4 address it is.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// A port number or a TCP service name (`http-alt`), like getaddrinfo.
pub fn parse_port(s: &str) -> Option<u16> {
    if let Ok(n) = s.parse::<u16>() {
        return Some(n);
    }
    if s.is_empty()
        || s.bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return None;
    }
    let name = std::ffi::CString::new(s).ok()?;
    // SAFETY: getservbyname reads two NUL-terminated strings and returns
    // a pointer to static storage (or NULL), read at once.
    let port = unsafe {
        let ent = libc::getservbyname(name.as_ptr(), c"tcp".as_ptr());
        if ent.is_null() {
            return None;
        }
        (*ent).s_port
    };
    Some(u16::from_be(port as u16))
}

/// Splits `[host:]port` (`:8000`, `127.0.0.1:8001`, `[::1]:80`, `8080`);
/// a bare port gets `default_host`, an empty host means every interface.
pub fn split_addr<'a>(spec: &'a str, default_host: &'a str) -> Option<(&'a str, u16)> {
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || (h.starts_with('[') && h.ends_with(']')) => (h, p),
        Some(_) => return None,
        None => (default_host, spec),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, parse_port(port)?))
}

/// Binds `[host:]port`; an empty host listens on every interface (IPv6
/// and IPv4 when the system has IPv6).
pub async fn bind(spec: &str, default_host: &str) -> io::Result<TcpListener> {
    let Some((host, port)) = split_addr(spec, default_host) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a port or host:port: '{spec}'"),
        ));
    };
    if host.is_empty() {
        return match TcpListener::bind(("::", port)).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
        };
    }
    TcpListener::bind((host, port)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_like_the_originals() {
        assert_eq!(split_addr(":8000", "127.0.0.1"), Some(("", 8000)));
        assert_eq!(split_addr("8085", "127.0.0.1"), Some(("127.0.0.1", 8085)));
        assert_eq!(split_addr("0.0.0.0:1", "x"), Some(("0.0.0.0", 1)));
        assert_eq!(split_addr("[::1]:80", "x"), Some(("::1", 80)));
        assert_eq!(split_addr("host:notaport", "x"), None);
        assert_eq!(split_addr("::1:80", "x"), None);
    }

    #[test]
    fn ports_by_number_or_service_name() {
        assert_eq!(parse_port("8080"), Some(8080));
        assert_eq!(parse_port("nonsense-service-name"), None);
        assert_eq!(parse_port("70000"), None);
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(parse_port("http"), Some(80));
        }
    }

    #[test]
    fn mapped_peers_show_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5".parse().unwrap();
        assert_eq!(canonical(mapped).to_string(), "127.0.0.1:5");
        let v6: SocketAddr = "[::1]:5".parse().unwrap();
        assert_eq!(canonical(v6).to_string(), "[::1]:5");
    }
}

#[cfg(test)]
mod shutdown_tests {
    use super::*;

    #[test]
    fn a_trigger_from_another_task_wakes_block_on() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = Shutdown::default();
            let s2 = s.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                s2.trigger();
            });
            tokio::time::timeout(Duration::from_secs(2), s.wait())
                .await
                .expect("woken");
        });
    }
}
