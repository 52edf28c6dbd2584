//! The accept loop every listener runs on (a cap on open connections,
//! back-off on accept errors, a graceful drain), and the one request path
//! of an HTTP listener:
//!
//! 1. the first request head of each connection is read by the gate
//!    ([`super::head`]), TLS or not; a head it refuses is answered there;
//! 2. the mode's [`Service::route`], its one routing decision, takes that
//!    head: an event stream (opened), a refusal, or an [`Answer`] to make
//!    from the whole request. On plain TCP an opened stream is served by
//!    the native writer ([`ssehub_core::writer`]: a few KiB per idle client
//!    instead of hyper's buffers);
//! 3. everything else goes to hyper, the gate's bytes first, and the
//!    gate's decision with them: hyper's first request is that head, so
//!    its answer is the one already decided ([`Decided`]). Every later
//!    request hyper parses is routed by the same [`Service::route`], once.
//!    The same [`Limits`] bound hyper's parser, and [`head::check`] runs
//!    on its requests too.
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
use super::head::{self, Opened, Reject, RequestInfo};
use super::idle::{IdleBudget, Tenure};
use super::limits::{Limits, GRACE, REFUSAL_WRITE, WRITE_TIMEOUT};
use super::peer::Conn;
use super::reply::{self, ReplyBody};
use super::rewind::Rewind;
use super::shutdown::Shutdown;
use super::stream::{Opening, StreamReply};
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
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// A future returned by a request handler.
pub type Reply = Pin<Box<dyn Future<Output = Response<ReplyBody>> + Send>>;

/// A reply that is ready now.
pub fn ready(res: Response<ReplyBody>) -> Reply {
    Box::pin(async move { res })
}

/// How a mode answers a request that is not an event stream, once hyper
/// has the whole request (its body, if any, still to read).
pub type Answer = Box<dyn FnOnce(Request<Incoming>, Conn) -> Reply + Send>;

/// What a mode's routing decided for one request, from its head alone:
/// the one decision, whichever path (the native writer or hyper, HTTP/1
/// or HTTP/2) then serves the request.
pub enum Routed {
    /// An event stream, opened.
    Stream(StreamReply),
    /// An event stream refused (a full hub, no authorization).
    Refused(Response<ReplyBody>),
    /// Anything else, answered from the whole request.
    Answer(Answer),
}

impl Routed {
    /// An answer made at once from the request (no body read, nothing
    /// awaited).
    pub fn now(
        answer: impl FnOnce(Request<Incoming>, &Conn) -> Response<ReplyBody> + Send + 'static,
    ) -> Routed {
        Routed::Answer(Box::new(move |req, conn| ready(answer(req, &conn))))
    }

    /// An answer that waits (for a body, a publish).
    pub fn later<F>(answer: impl FnOnce(Request<Incoming>, Conn) -> F + Send + 'static) -> Routed
    where
        F: Future<Output = Response<ReplyBody>> + Send + 'static,
    {
        Routed::Answer(Box::new(move |req, conn| Box::pin(answer(req, conn))))
    }
}

impl From<Opening> for Routed {
    fn from(opening: Opening) -> Routed {
        match opening {
            Opening::Stream(stream) => Routed::Stream(stream),
            Opening::Refused(refused) => Routed::Refused(refused),
        }
    }
}

/// A mode's HTTP side.
pub trait Service: Send + Sync + 'static {
    /// Routes a request by its head: the one decision for it, taken once,
    /// whichever path serves the request. Opening a stream registers its
    /// hub client here; an [`Answer`] acts only when it is called.
    fn route(&self, req: &dyn RequestInfo, conn: &Conn) -> Routed;
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
            Next::Hyper(prefix, decided) => {
                Box::pin(self.drive(Rewind::new(prefix, stream), decided)).await
            }
            Next::H2(seen) => Box::pin(self.drive_h2(Rewind::new(seen, stream), deadline)).await,
            Next::Done => {}
        }
    }

    /// The gate and the routing decision for a plain connection's first
    /// request (answering it here when the gate or the mode refuses it).
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
            // Not for the native writer: hyper reads the body and routes.
            return Next::Hyper(join(read.raw, read.rest), None);
        }
        match self.service.route(&read.head, &self.conn) {
            Routed::Stream(reply) => Next::Native(reply),
            Routed::Answer(answer) => {
                let decided = Decided::new(&read.head, answer);
                Next::Hyper(join(read.raw, read.rest), decided)
            }
            Routed::Refused(res) => {
                let http10 = read.head.http10();
                if write_full(stream, res, http10).await.is_err() || http10 {
                    return Next::Done;
                }
                Next::Hyper(read.rest, None)
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
                self.drive(Rewind::new(prefix, tls), None).await
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

    /// Hands the connection to hyper, every request through [`answer`]:
    /// the first with the gate's decision, if it made one.
    async fn drive<S>(&self, stream: S, decided: Option<Decided>)
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
        let service = self.hyper_service(self.conn.clone(), decided);
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
        let service = self.hyper_service(self.conn.for_http2(), None);
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

    /// Every request hyper parses on `conn`, through [`answer`]; the
    /// first one with `decided`.
    fn hyper_service(
        &self,
        conn: Conn,
        decided: Option<Decided>,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<ReplyBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
           + Send
           + 'static {
        let service = self.service.clone();
        let decided = decided.map(|d| Arc::new(Mutex::new(Some(d))));
        service_fn(move |req| {
            let first = decided
                .as_ref()
                .and_then(|d| d.lock().unwrap_or_else(|e| e.into_inner()).take());
            let reply = answer(service.clone(), req, conn.clone(), first);
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

/// One request hyper parsed: the same rules as the gate's, then the
/// mode's decision for it (the gate's, when it is the request the gate
/// read), served.
fn answer(
    service: Arc<dyn Service>,
    req: Request<Incoming>,
    conn: Conn,
    decided: Option<Decided>,
) -> Reply {
    if let Err(reject) = head::check(&req) {
        conn.close_after_reply();
        return ready(reply::rejected(reject));
    }
    let routed = match decided {
        Some(decided) if decided.is_for(&req) => Routed::Answer(decided.answer),
        _ => service.route(&req, &conn),
    };
    match routed {
        Routed::Stream(reply) => ready(reply.into_hyper(&conn)),
        Routed::Refused(res) => ready(res),
        Routed::Answer(answer) => answer(req, conn),
    }
}

/// The gate's decision for a connection's first request, handed to hyper
/// with the bytes of that request so that it is not routed again.
struct Decided {
    /// The head's method and origin-form target, to know the request again.
    method: String,
    target: String,
    answer: Answer,
}

impl Decided {
    /// The decision for `head`, if hyper's parse of it will route alike:
    /// an origin-form target (`/path?query`). Another form is routed by
    /// the path hyper gives it (`GET http://h/p` has the path `/p`).
    fn new(head: &head::Head, answer: Answer) -> Option<Decided> {
        let target = head.target();
        target.starts_with('/').then(|| Decided {
            method: head.method().to_string(),
            target: target.to_string(),
            answer,
        })
    }

    /// Whether hyper's `req` is the request decided: the same method and
    /// target, byte for byte (hyper drops a `#fragment`, for one).
    fn is_for<B>(&self, req: &Request<B>) -> bool {
        req.method().as_str() == self.method
            && req.uri().path_and_query().map(|pq| pq.as_str()) == Some(self.target.as_str())
    }
}

/// Where a plain connection goes after its first head.
enum Next {
    /// An event stream for the native writer.
    Native(StreamReply),
    /// hyper, with these bytes first, and the decision for the first
    /// request if the gate made one.
    Hyper(Bytes, Option<Decided>),
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
        let _ = tokio::time::timeout(REFUSAL_WRITE, stream.write_all(answer)).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The gate's head of `raw`.
    async fn head_of(raw: &str) -> head::Head {
        let mut io = raw.as_bytes();
        let deadline = Instant::now() + Duration::from_secs(5);
        match head::read(&mut io, &Limits::default(), deadline).await {
            Ok(Opened::Http1(read)) => read.head,
            _ => panic!("not an HTTP/1 head: {raw}"),
        }
    }

    fn decided(head: &head::Head) -> Option<Decided> {
        Decided::new(
            head,
            Box::new(|_, _| ready(reply::rejected(Reject::BadRequest))),
        )
    }

    #[tokio::test]
    async fn the_gates_decision_serves_only_the_request_it_was_made_for() {
        let head = head_of("GET /sse/a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n").await;
        let d = decided(&head).expect("an origin-form target is carried");
        let req = |m: &str, t: &str| Request::builder().method(m).uri(t).body(()).unwrap();
        assert!(d.is_for(&req("GET", "/sse/a?x=1")));
        assert!(!d.is_for(&req("GET", "/sse/a?x=2")));
        assert!(!d.is_for(&req("POST", "/sse/a?x=1")));
        // hyper reads the path of an absolute-form target, the gate the
        // whole target: such a head is routed again by hyper.
        let absolute = head_of("GET http://h/sse/a HTTP/1.1\r\n\r\n").await;
        assert!(decided(&absolute).is_none());
        // hyper drops a fragment: the targets differ, so hyper routes.
        let fragment = head_of("GET /stream#x HTTP/1.1\r\n\r\n").await;
        let d = decided(&fragment).expect("origin-form");
        assert!(!d.is_for(&req("GET", "/stream#x")));
    }
}
