//! The consumer end of one client: what its transport writes. Dropping it
//! unregisters the client and reports the close.

use super::{Client, ClientId, Frame, Hub};
use crate::queue::CloseReason;
use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The consumer end of one client. Dropping it unregisters the client.
pub struct Subscription {
    hub: Hub,
    id: ClientId,
    client: Arc<Client>,
}

impl Subscription {
    pub(super) fn new(hub: Hub, id: ClientId, client: Arc<Client>) -> Subscription {
        Subscription { hub, id, client }
    }

    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Waits for the next batch of frames; `Err` once the client is closed
    /// and everything it should still receive has been taken.
    pub async fn next_batch(&self, batch: &mut VecDeque<Frame>) -> Result<(), CloseReason> {
        self.client.queue.next_batch(batch).await
    }

    /// Poll form of [`Subscription::next_batch`], for `Body` impls.
    pub fn poll_batch(
        &self,
        cx: &mut Context<'_>,
        batch: &mut VecDeque<Frame>,
    ) -> Poll<Result<(), CloseReason>> {
        self.client.queue.poll_batch(cx, batch)
    }

    /// Resolves once the client is closed for a reason that drops its
    /// queue (slow, timeout, peer gone). See [`crate::queue::Queue::poll_aborted`].
    pub async fn aborted(&self) -> CloseReason {
        std::future::poll_fn(|cx| self.poll_aborted(cx)).await
    }

    /// Poll form of [`Subscription::aborted`].
    pub fn poll_aborted(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        self.client.queue.poll_aborted(cx)
    }

    /// Starts closing this client (a no-op if it already is).
    pub fn close(&self, reason: CloseReason) {
        self.client.queue.close(reason);
    }

    /// The reason this client is closing, if it is.
    pub fn closing(&self) -> Option<CloseReason> {
        self.client.queue.closing()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unregister(self.id, &self.client);
    }
}
