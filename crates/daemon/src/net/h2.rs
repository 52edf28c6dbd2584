//! HTTP/2 connections (an h2c preface on a plain port, `h2` chosen by ALPN
//! under TLS): hyper's HTTP/2 server, with the limits HTTP/1 gets from the
//! gate and from hyper's HTTP/1 side, on every mode.
//!
//! - Idle: a connection with no stream open (no preface yet, no request
//!   yet, or none since its last stream ended) is closed after the head
//!   budget ([`Limits::head_timeout`]: counted from the accept at first,
//!   TLS handshake included, then from the end of the last stream). First
//!   GOAWAY, then the close once no stream has been open for
//!   [`GOAWAY_GRACE`] more. The close is ours: before its handshake is done
//!   hyper only notes the GOAWAY, and a peer that reads nothing never sees
//!   it, so the grace is what closes a silent TLS socket that chose `h2`.
//! - Evicted from the idle budget ([`super::idle`]): GOAWAY, then the close
//!   as soon as no request is under way.
//! - A stream whose hub client is closed for a reason that drops its queue
//!   (slow: its window stayed shut while events came) is reset alone,
//!   RST_STREAM(CANCEL), its siblings and the connection untouched. hyper
//!   spawns each stream as a task on [`StreamExec`], which races the task
//!   against its client's abort and drops it on abort; h2 answers a stream
//!   dropped before its end with RST_STREAM. Ending the body is not enough:
//!   while a chunk waits for window, hyper does not poll the body at all.
//! - A peer that answers no PING for [`PING_TIMEOUT`] (checked every
//!   [`PING_INTERVAL`]) is closed by hyper's keep-alive.

use super::limits::{Limits, H2_MAX_STREAMS};
use super::peer::Conn;
use super::shutdown::Shutdown;
use hyper::server::conn::http2;
use hyper_util::rt::TokioTimer;
use ssehub_core::hub::Subscription;
use std::cell::OnceCell;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// After GOAWAY: how long a connection with no stream open has left (a
/// round trip for GOAWAY's PING, so a peer that answers it gets the final
/// GOAWAY before the close).
pub const GOAWAY_GRACE: Duration = Duration::from_secs(2);
/// How often a connection is PINGed.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// How long a PING may go unanswered before the connection is closed.
pub const PING_TIMEOUT: Duration = Duration::from_secs(20);

tokio::task_local! {
    /// The hub client of the stream this task serves, once its body has
    /// registered it ([`watch_aborts`]).
    static STREAM_CLIENT: OnceCell<Arc<Subscription>>;
}

/// Ties `sub` to the HTTP/2 stream task polling this body: the stream is
/// reset when `sub` is aborted. Called by a stream body on its first poll,
/// which runs in that task. False outside an HTTP/2 stream task.
pub fn watch_aborts(sub: &Arc<Subscription>) -> bool {
    STREAM_CLIENT
        .try_with(|cell| {
            let _ = cell.set(sub.clone());
        })
        .is_ok()
}

/// Completes once the client registered with this task is aborted.
async fn aborted() {
    poll_fn(|cx| {
        STREAM_CLIENT.with(|cell| match cell.get() {
            Some(sub) => sub.poll_aborted(cx).map(drop),
            None => Poll::Pending,
        })
    })
    .await
}

/// The executor hyper spawns each stream of a connection on: counts the
/// open streams (the idle clock) and resets a stream whose client is
/// aborted (see the module docs).
#[derive(Clone)]
pub struct StreamExec {
    open: Arc<watch::Sender<usize>>,
}

impl<F> hyper::rt::Executor<F> for StreamExec
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        let open = Open::new(self.open.clone());
        tokio::spawn(STREAM_CLIENT.scope(OnceCell::new(), async move {
            let _open = open;
            // The stream first: its body registers the client on its first
            // poll, and `aborted` then registers for the abort in the same
            // wake-up. Dropping the stream on abort is the reset.
            tokio::select! {
                biased;
                () = stream => {}
                () = aborted() => {}
            }
        }));
    }
}

/// One open stream in the connection's count.
struct Open(Arc<watch::Sender<usize>>);

impl Open {
    fn new(open: Arc<watch::Sender<usize>>) -> Open {
        open.send_modify(|n| *n += 1);
        Open(open)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// A connection's open streams and its idle budget.
pub struct Streams {
    open: watch::Receiver<usize>,
    /// The end of the first idle period (the accept's head deadline).
    first: Instant,
    /// Every later idle period.
    budget: Duration,
}

/// hyper's HTTP/2 side with these limits, and the stream count its
/// executor keeps. `deadline`: the head deadline of the connection.
pub fn builder(limits: &Limits, deadline: Instant) -> (http2::Builder<StreamExec>, Streams) {
    let (tx, open) = watch::channel(0);
    let mut builder = http2::Builder::new(StreamExec { open: Arc::new(tx) });
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_head).unwrap_or(u32::MAX))
        .max_concurrent_streams(H2_MAX_STREAMS)
        .keep_alive_interval(PING_INTERVAL)
        .keep_alive_timeout(PING_TIMEOUT);
    let streams = Streams {
        open,
        first: deadline,
        budget: limits.head_timeout,
    };
    (builder, streams)
}

/// Completes once no stream has been open until `first`, or for `budget`
/// since the last one ended.
async fn quiet(mut open: watch::Receiver<usize>, first: Instant, budget: Duration) {
    let mut until = first;
    loop {
        let counted = tokio::select! {
            biased;
            opened = open.wait_for(|n| *n > 0) => opened.is_ok(),
            () = tokio::time::sleep_until(until) => return,
        };
        let counted = counted && open.wait_for(|n| *n == 0).await.is_ok();
        if !counted {
            // The connection is gone: nothing left to time.
            return std::future::pending().await;
        }
        until = Instant::now() + budget;
    }
}

/// Runs a hyper HTTP/2 connection until it ends: GOAWAY (`graceful`) when
/// it is idle past its budget, evicted, or at the stop signal; then the
/// close once no stream is open (see the module docs).
pub async fn run<C: Future>(
    served: C,
    graceful: fn(Pin<&mut C>),
    streams: Streams,
    conn: &Conn,
    shutdown: &Shutdown,
) {
    let mut served = pin!(served);
    let open = streams.open.clone();
    let mut idle = pin!(quiet(streams.open, streams.first, streams.budget));
    let mut closing = false;
    loop {
        // After GOAWAY, `idle` times the close: `served` first, so that
        // the GOAWAY is written before a close without grace.
        let grace = tokio::select! {
            biased;
            _ = served.as_mut() => return,
            () = idle.as_mut() => {
                if closing {
                    return;
                }
                GOAWAY_GRACE
            }
            () = shutdown.wait(), if !closing => GOAWAY_GRACE,
            () = conn.evicted(), if !closing => Duration::ZERO,
        };
        graceful(served.as_mut());
        closing = true;
        idle.set(quiet(open.clone(), Instant::now() + grace, grace));
    }
}
