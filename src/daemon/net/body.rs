//! A hub subscription as a hyper response body: each batch of queued frames
//! becomes one body frame (one HTTP chunk); the body ends when the client
//! is closed, so a graceful close ends the chunked stream properly. A close
//! that drops the queue (slow, peer gone) aborts the connection at once,
//! since hyper stops polling a body while its write to a stalled peer is
//! blocked.

use super::peer::Conn;
use crate::hub::Subscription;
use crate::queue::CloseReason;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
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
            return Poll::Ready(Some(Ok(Frame::data(next_chunk(&mut this.batch)))));
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
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(Frame::data(next_chunk(&mut this.batch))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Most bytes copied into one chunk. Small frames are joined (fewer HTTP
/// chunks); a bigger frame goes out as it is, shared with every other
/// client. Joining whole batches copied up to the queue limit per client,
/// so 1,000 stalled clients held a private megabyte each.
const COALESCE_MAX: usize = 64 * 1024;

/// Takes the next chunk off the front of a batch: one frame, or several
/// small ones joined up to [`COALESCE_MAX`].
fn next_chunk(batch: &mut VecDeque<Bytes>) -> Bytes {
    let first = batch.pop_front().unwrap_or_default();
    let fits =
        |len: usize, next: Option<&Bytes>| next.is_some_and(|b| len + b.len() <= COALESCE_MAX);
    if !fits(first.len(), batch.front()) {
        return first;
    }
    let mut joined = BytesMut::with_capacity(COALESCE_MAX);
    joined.extend_from_slice(&first);
    while fits(joined.len(), batch.front()) {
        if let Some(frame) = batch.pop_front() {
            joined.extend_from_slice(&frame);
        }
    }
    joined.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(sizes: &[usize]) -> VecDeque<Bytes> {
        sizes.iter().map(|n| Bytes::from(vec![b'x'; *n])).collect()
    }

    #[test]
    fn small_frames_are_joined_big_ones_pass_as_they_are() {
        let mut batch = frames(&[10, 20, COALESCE_MAX, 5, COALESCE_MAX - 10, 11]);
        let big = batch[2].clone();
        let sizes: Vec<usize> =
            std::iter::from_fn(|| (!batch.is_empty()).then(|| next_chunk(&mut batch).len()))
                .collect();
        assert_eq!(sizes, [30, COALESCE_MAX, COALESCE_MAX - 5, 11]);
        let mut one = VecDeque::from([big.clone()]);
        let out = next_chunk(&mut one);
        assert_eq!(out.as_ptr(), big.as_ptr(), "a big frame is not copied");
    }
}
