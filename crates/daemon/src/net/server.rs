//! The accept loop every listener runs on (a cap on open connections,
//! back-off on accept errors, a graceful drain), and the one request path
//! of an HTTP listener:
//!
//! 1. the first request head of each connection is read by the gate
//!    ([`super::head`]), TLS or not; a head it refuses is answered there;
//! 2. the mode's [`Service::open_stream`] decides from that head whether it
//!    opens an event stream. On plain TCP an opened stream is served by the
//!    native writer ([`ssehub_core::writer`]: a few KiB per idle client instead of
//!    hyper's buffers);
//! 3. everything else goes to hyper, the gate's bytes first: hyper asks
//!    `open_stream` the same question for every request it parses, then
//!    [`Service::handle`]. The same [`Limits`] bound hyper's parser, and
//!    [`head::check`] runs on its requests too.
//!
//! HTTP/2 (an h2c preface on a plain port, or `h2` chosen by ALPN under
//! TLS) is served by hyper's HTTP/2 side through the same [`answer`]: every
//! stream of the connection is one request, one decision, one hub client.
//! Its limits (idle connections, slow streams reset alone) are in
//! [`super::h2`].
//!
//! Connections without an event stream are held to the listener's idle
//! budget ([`super::idle`], [`Listener::max_idle`]): one more evicts the
//! oldest, so idle sockets cannot keep streaming clients out.

use super::h2;
use super::head::{self, Limits, Opened, Reject, RequestInfo};
use super::idle::{IdleBudget, Tenure};
use super::peer::Conn;
use super::reply::{self, ReplyBody};
use super::rewind::Rewind;
use super::shutdown::Shutdown;
use super::stream::StreamReply;
use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// How long open connections get to finish after the shutdown signal.
const GRACE: Duration = Duration::from_secs(5);
/// A native stream whose writes stall this long is dropped.
const WRITE_TIMEOUT: Duration = ssehub_core::hub::defaults::WRITE_TIMEOUT;

/// A future returned by a request handler.
pub type Reply = Pin<Box<dyn Future<Output = Response<ReplyBody>> + Send>>;

/// What a mode's head-only decision found.
pub enum Opening {
    /// Not an event stream (or one that needs its body read first).
    NotAStream,
    /// An event stream, opened.
    Stream(StreamReply),
    /// An event stream refused (a full hub, no authorization).
    Refused(Response<ReplyBody>),
}

/// A mode's HTTP side.
pub trait Service: Send + Sync + 'static {
    /// Opens an event stream if the head asks for one: the one decision,
    /// taken from the head alone, whichever path serves the request.
    fn open_stream(&self, req: &dyn RequestInfo, conn: &Conn) -> Opening;
    /// Every request `open_stream` did not take.
    fn handle(self: Arc<Self>, req: Request<Incoming>, conn: Conn) -> Reply;
    fn opened(&self, _conn: &Conn) {}
    fn closed(&self, _conn: &Conn) {}
    fn tls_failed(&self, _conn: &Conn, _err: &io::Error) {}
}

/// A bound listener and how to serve it.
pub struct Listener {
    pub tcp: TcpListener,
    /// TLS on every connection when set.
    pub tls: Option<TlsAcceptor>,
    /// Connections served at once; further accepts wait.
    pub max_connections: usize,
    /// Connections without an event stream kept at once; one more evicts
    /// the oldest ([`super::idle`]). At most `max_connections` minus the
    /// streaming clients, so that streams always fit.
    pub max_idle: usize,
    /// The counter connection numbers are drawn from.
    pub ids: Arc<AtomicU64>,
    pub limits: Limits,
}

/// Held by each connection's task while it runs: its place under the cap
/// and in the idle budget, and the sender whose drop tells the drain that
/// it is over.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _tenure: Tenure,
    _running: mpsc::Sender<()>,
}

/// Accepts on `listener` until `shutdown`, spawning the task `serve` makes
/// for each connection (the task keeps the [`Slot`] until it ends); then
/// waits (at most [`GRACE`]) for them to finish.
pub async fn accept_loop<F, Fut>(listener: Listener, shutdown: Shutdown, serve: F)
where
    F: Fn(TcpStream, Conn, Option<TlsAcceptor>, Limits, Slot) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(listener.max_connections.max(1)));
    let idle = IdleBudget::new(listener.max_idle);
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
        let local = stream.local_addr().unwrap_or(peer);
        let id = listener.ids.fetch_add(1, Ordering::Relaxed);
        let conn = Conn::admitted(id, peer, local, &idle);
        let slot = Slot {
            _permit: permit,
            _tenure: conn.standing().tenure(),
            _running: done_tx.clone(),
        };
        // Spawned as it is: wrapping it in another async block would store
        // the whole connection future twice in the task (measured: 4.1 KiB
        // instead of 2 per idle stream).
        tokio::spawn(serve(
            stream,
            conn,
            listener.tls.clone(),
            listener.limits,
            slot,
        ));
    }
    drop(done_tx);
    let _ = tokio::time::timeout(GRACE, done_rx.recv()).await;
}

/// Serves HTTP on `listener` for `service` until `shutdown`.
pub async fn serve(listener: Listener, service: Arc<dyn Service>, shutdown: Shutdown) {
    let stop = shutdown.clone();
    accept_loop(listener, stop, move |stream, conn, tls, limits, slot| {
        let task = HttpConn {
            conn,
            service: service.clone(),
            shutdown: shutdown.clone(),
            limits,
            _slot: slot,
        };
        task.run(stream, tls)
    })
    .await
}

/// Everything one HTTP connection's task needs.
struct HttpConn {
    conn: Conn,
    service: Arc<dyn Service>,
    shutdown: Shutdown,
    limits: Limits,
    _slot: Slot,
}

impl HttpConn {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let _ = stream.set_nodelay(true);
        self.service.opened(&self.conn);
        let deadline = Instant::now() + self.limits.head_timeout;
        match tls {
            None => self.serve_plain(stream, deadline).await,
            // Boxed: only TLS connections pay for the TLS state.
            Some(acceptor) => Box::pin(self.serve_tls(stream, acceptor, deadline)).await,
        }
        self.service.closed(&self.conn);
    }

    async fn serve_plain(&self, mut stream: TcpStream, deadline: Instant) {
        // The gate's buffers and the parsed head are gone before a stream
        // starts: what an idle stream keeps is only the writer's state.
        // Boxed: the gate's state is needed only until the first head.
        let first = Box::pin(self.first_request(&mut stream, deadline));
        let next = tokio::select! {
            next = first => next,
            () = self.conn.evicted() => Next::Done,
        };
        match next {
            Next::Native(reply) => self.serve_native(stream, reply).await,
            // Boxed: hyper's connection state is large, and a task's size
            // is that of its largest state, native streams included.
            Next::Hyper(prefix) => Box::pin(self.drive(Rewind::new(prefix, stream))).await,
            Next::H2(seen) => Box::pin(self.drive_h2(Rewind::new(seen, stream), deadline)).await,
            Next::Done => {}
        }
    }

    /// The gate and the stream decision for a plain connection's first
    /// request (answering it here when the gate refuses it).
    async fn first_request(&self, stream: &mut TcpStream, deadline: Instant) -> Next {
        let read = match head::read(stream, &self.limits, deadline).await {
            Ok(Opened::Http1(read)) => read,
            Ok(Opened::Http2(seen)) => return Next::H2(seen),
            Err(reject) => {
                refuse(stream, reject).await;
                return Next::Done;
            }
        };
        if read.head.has_body() {
            return Next::Hyper(join(read.raw, read.rest));
        }
        match self.service.open_stream(&read.head, &self.conn) {
            Opening::Stream(reply) => Next::Native(reply),
            Opening::NotAStream => Next::Hyper(join(read.raw, read.rest)),
            Opening::Refused(res) => {
                let http10 = read.head.http10();
                if write_full(stream, res, http10).await.is_err() || http10 {
                    return Next::Done;
                }
                Next::Hyper(read.rest)
            }
        }
    }

    async fn serve_tls(&self, stream: TcpStream, acceptor: TlsAcceptor, deadline: Instant) {
        let handshake = tokio::time::timeout_at(deadline, acceptor.accept(stream));
        let accepted = tokio::select! {
            accepted = handshake => accepted,
            () = self.conn.evicted() => return,
        };
        let mut tls = match accepted {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return self.service.tls_failed(&self.conn, &e),
            Err(_) => {
                let e = io::Error::new(io::ErrorKind::TimedOut, "handshake timed out");
                return self.service.tls_failed(&self.conn, &e);
            }
        };
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            return self.drive_h2(tls, deadline).await;
        }
        let read = tokio::select! {
            read = head::read(&mut tls, &self.limits, deadline) => read,
            () = self.conn.evicted() => return,
        };
        match read {
            Ok(Opened::Http1(read)) => {
                let prefix = join(read.raw, read.rest);
                self.drive(Rewind::new(prefix, tls)).await
            }
            Ok(Opened::Http2(seen)) => self.drive_h2(Rewind::new(seen, tls), deadline).await,
            Err(reject) => refuse(&mut tls, reject).await,
        }
    }

    async fn serve_native(&self, stream: TcpStream, reply: StreamReply) {
        let settings = ssehub_core::writer::StreamSettings {
            head: reply.native_head(),
            chunked: !reply.http10,
            write_timeout: Some(WRITE_TIMEOUT),
        };
        // Only the subscription and the end hook live on with the stream.
        let StreamReply {
            sub,
            on_end,
            headers,
            first,
            ..
        } = reply;
        drop((headers, first));
        let _streaming = self.conn.stream_opened();
        ssehub_core::writer::Writer::new(stream, sub, settings).await;
        if let Some(on_end) = on_end {
            on_end();
        }
    }

    /// Hands the connection to hyper, every request through [`answer`].
    async fn drive<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = http1::Builder::new();
        builder
            .title_case_headers(true)
            .auto_date_header(false)
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.head_timeout)
            .max_headers(self.limits.max_headers)
            // hyper's floor is 8 KiB; the head limit itself is the gate's.
            .max_buf_size(self.limits.max_head.max(8192));
        let service = self.hyper_service(self.conn.clone());
        let served = builder.serve_connection(TokioIo::new(stream), service);
        self.until_done(served, |c| c.graceful_shutdown()).await
    }

    /// Hands an HTTP/2 connection to hyper; `answer` serves each stream.
    /// `deadline`: the connection's head deadline, its first idle budget.
    async fn drive_h2<S>(&self, stream: S, deadline: Instant)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (builder, streams) = h2::builder(&self.limits, deadline);
        let service = self.hyper_service(self.conn.for_http2());
        let served = builder.serve_connection(TokioIo::new(stream), service);
        // `close_after_reply` and `abort` are HTTP/1's: on HTTP/2 a reply
        // or a slow client ends its stream, never the connection.
        h2::run(
            served,
            |c| c.graceful_shutdown(),
            streams,
            &self.conn,
            &self.shutdown,
        )
        .await
    }

    /// Every request hyper parses on `conn`, through [`answer`].
    fn hyper_service(
        &self,
        conn: Conn,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<ReplyBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
           + Send
           + 'static {
        let service = self.service.clone();
        service_fn(move |req| {
            let reply = answer(service.clone(), req, conn.clone());
            async move { Ok::<_, Infallible>(reply.await) }
        })
    }

    /// Runs a hyper HTTP/1 connection until it ends or is aborted; the
    /// stop signal, a handler's `close_after_reply` and an eviction from
    /// the idle budget end it gracefully, after the reply under way.
    async fn until_done<C: Future>(&self, served: C, graceful: fn(Pin<&mut C>)) {
        tokio::pin!(served);
        let mut closing = false;
        loop {
            tokio::select! {
                _ = served.as_mut() => break,
                _ = self.conn.abort_asked() => break,
                _ = self.shutdown.wait(), if !closing => {
                    graceful(served.as_mut());
                    closing = true;
                }
                _ = self.conn.close_asked(), if !closing => {
                    graceful(served.as_mut());
                    closing = true;
                }
                _ = self.conn.evicted(), if !closing => {
                    graceful(served.as_mut());
                    closing = true;
                }
            }
        }
    }
}

/// One request hyper parsed: the same rules and the same stream decision
/// as the gate's, then the mode's handler.
fn answer(service: Arc<dyn Service>, req: Request<Incoming>, conn: Conn) -> Reply {
    if let Err(reject) = head::check(&req) {
        conn.close_after_reply();
        return Box::pin(async move { reply::rejected(reject) });
    }
    if !req.has_body() {
        match service.open_stream(&req, &conn) {
            Opening::Stream(reply) => return Box::pin(async move { reply.into_hyper(&conn) }),
            Opening::Refused(res) => return Box::pin(async move { res }),
            Opening::NotAStream => {}
        }
    }
    service.handle(req, conn)
}

/// Where a plain connection goes after its first head.
enum Next {
    /// An event stream for the native writer.
    Native(StreamReply),
    /// hyper, with these bytes first.
    Hyper(Bytes),
    /// HTTP/2, with the preface the gate read.
    H2(Bytes),
    /// Answered (or gone) already.
    Done,
}

/// The gate's bytes for hyper: the head, then what came after it.
fn join(raw: Bytes, rest: Bytes) -> Bytes {
    if rest.is_empty() {
        return raw;
    }
    let mut all = BytesMut::with_capacity(raw.len() + rest.len());
    all.extend_from_slice(&raw);
    all.extend_from_slice(&rest);
    all.freeze()
}

/// Answers a refused head (if there is anyone to answer) and closes.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, reject: Reject) {
    if let Some(answer) = reject.answer() {
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(answer)).await;
        let _ = stream.shutdown().await;
    }
}

/// Writes a full (non-stream) response the way hyper would.
async fn write_full<S: AsyncWrite + Unpin>(
    stream: &mut S,
    res: Response<ReplyBody>,
    http10: bool,
) -> io::Result<()> {
    let bytes = reply::encode_full(res, http10);
    tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}
