//! A hub subscription as a hyper response body: each batch of queued frames
//! becomes body frames by the one batching policy ([`ssehub_core::batch`]);
//! the body ends when the client is closed gracefully, so a graceful close
//! ends the stream properly (the chunked terminator, HTTP/2's END_STREAM).
//!
//! A close that drops the queue (slow, peer gone) is no clean end: the body
//! stays pending and the transport is aborted instead, since hyper stops
//! polling a body while its write to a stalled peer is blocked. On HTTP/1
//! the connection is dropped at once (a watcher task, [`Conn::abort`]); on
//! HTTP/2 only the stream is reset: the body hands its client to the
//! stream's task on its first poll ([`super::h2::watch_aborts`]).

use super::idle::Streaming;
use super::peer::Conn;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use ssehub_core::batch::next_write;
use ssehub_core::hub::Subscription;
use ssehub_core::queue::CloseReason;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// The streaming body of one SSE response. Dropping it (hyper does when
/// the stream or the connection ends) unregisters the client.
pub struct HubBody {
    sub: Arc<Subscription>,
    /// Bytes to send before anything queued (e.g. a hello event).
    first: Option<Bytes>,
    batch: VecDeque<Bytes>,
    ended: Option<CloseReason>,
    /// HTTP/2: the stream's task has yet to be told of `sub`.
    unwatched: bool,
    /// HTTP/1: dropped with the body, stops the abort watcher.
    _watching: Option<oneshot::Sender<()>>,
    /// The connection is not idle while the stream is open.
    _streaming: Streaming,
}

impl HubBody {
    /// The body of `conn`'s stream. Must be called inside the runtime.
    pub fn new(sub: Subscription, first: Option<Bytes>, conn: &Conn) -> Self {
        let sub = Arc::new(sub);
        let http2 = conn.is_http2();
        HubBody {
            first: first.filter(|b| !b.is_empty()),
            batch: VecDeque::new(),
            ended: None,
            unwatched: http2,
            _watching: (!http2).then(|| watch_for_abort(&sub, conn)),
            _streaming: conn.stream_opened(),
            sub,
        }
    }

    /// Why the stream ended, once it has.
    pub fn ended(&self) -> Option<CloseReason> {
        self.ended
    }
}

/// Drops `conn` once `sub` is aborted (HTTP/1: hyper may be blocked in a
/// write and not polling the body), unless the body goes first.
fn watch_for_abort(sub: &Arc<Subscription>, conn: &Conn) -> oneshot::Sender<()> {
    let (watching, body_dropped) = oneshot::channel();
    let (watched, conn) = (sub.clone(), conn.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = watched.aborted() => conn.abort(),
            _ = body_dropped => {}
        }
    });
    watching
}

/// The end of a stream closed for `reason`: a graceful close ends the body;
/// an abort leaves it pending, and the same close wakes what aborts the
/// transport (HTTP/1's watcher, HTTP/2's stream task), which drops it.
fn end(reason: CloseReason) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
    if reason.flushes() {
        Poll::Ready(None)
    } else {
        Poll::Pending
    }
}

impl Body for HubBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if std::mem::take(&mut this.unwatched) {
            super::h2::watch_aborts(&this.sub);
        }
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if !this.batch.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(next_write(&mut this.batch)))));
        }
        if let Some(reason) = this.ended {
            return end(reason);
        }
        match this.sub.poll_batch(cx, &mut this.batch) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(reason)) => {
                this.ended = Some(reason);
                end(reason)
            }
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(Frame::data(next_write(&mut this.batch))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
