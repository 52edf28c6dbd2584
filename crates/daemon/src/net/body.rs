//! A hub subscription as a hyper response body: each batch of queued frames
//! becomes body frames by the one batching policy ([`ssehub_core::batch`]); the body ends when the client
//! is closed, so a graceful close ends the chunked stream properly. A close
//! that drops the queue (slow, peer gone) aborts the connection at once,
//! since hyper stops polling a body while its write to a stalled peer is
//! blocked.

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
/// the connection ends) unregisters the client.
pub struct HubBody {
    sub: Arc<Subscription>,
    /// Bytes to send before anything queued (e.g. a hello event).
    first: Option<Bytes>,
    batch: VecDeque<Bytes>,
    ended: Option<CloseReason>,
    /// Dropped with the body: stops the abort watcher.
    _watching: oneshot::Sender<()>,
}

impl HubBody {
    /// The body of `conn`'s stream. Must be called inside the runtime.
    pub fn new(sub: Subscription, first: Option<Bytes>, conn: &Conn) -> Self {
        let sub = Arc::new(sub);
        let (watching, body_dropped) = oneshot::channel();
        let (watched, conn) = (sub.clone(), conn.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = watched.aborted() => conn.abort(),
                _ = body_dropped => {}
            }
        });
        HubBody {
            sub,
            first: first.filter(|b| !b.is_empty()),
            batch: VecDeque::new(),
            ended: None,
            _watching: watching,
        }
    }

    /// Why the stream ended, once it has.
    pub fn ended(&self) -> Option<CloseReason> {
        self.ended
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
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if !this.batch.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(next_write(&mut this.batch)))));
        }
        if this.ended.is_some() {
            return Poll::Ready(None);
        }
        match this.sub.poll_batch(cx, &mut this.batch) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(reason)) => {
                this.ended = Some(reason);
                Poll::Ready(None)
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
