//! The fallback transport's writer: a client whose bytes JS writes itself
//! (TLS, HTTP/2, Unix sockets, Bun, Deno) gets its frames handed to JS in
//! batches, one at a time.

use crate::{lock, EventFn};
use bytes::Bytes;
use napi::bindgen_prelude::Buffer;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Status;
use ssehub_core::hub::{ClientId, Subscription};
use ssehub_core::queue::CloseReason;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The writer task of an external client: passes what is queued to JS in
/// writes made by [`ssehub_core::batch`], and hands the next only once JS has
/// written the last (`ack`).
/// So what waits for a slow reader waits in the client's bounded queue,
/// where `maxQueueBytes` applies, never as copies queued toward JS.
pub(crate) struct Forward {
    pub(crate) on_event: Arc<EventFn>,
    pub(crate) ready: Arc<Notify>,
    pub(crate) acks: Arc<Mutex<HashMap<ClientId, Arc<Notify>>>>,
}

impl Forward {
    pub(crate) async fn run(self, sub: Subscription, preamble: Bytes) {
        let id: ClientId = sub.id();
        let mut batch = VecDeque::from([preamble]);
        loop {
            if batch.is_empty() && sub.next_batch(&mut batch).await.is_err() {
                break;
            }
            // The one batching policy: writes of at most 64 KiB, or one
            // big frame as it is (no copy of a whole backlog per batch).
            let write = ssehub_core::batch::next_write(&mut batch);
            let args = (id, None, Some(Buffer::from(Vec::from(write)))).into();
            if self
                .on_event
                .call(args, ThreadsafeFunctionCallMode::NonBlocking)
                != Status::Ok
            {
                sub.close(CloseReason::Client); // JS is gone (env torn down)
                break;
            }
            let acked = tokio::select! {
                () = self.ready.notified() => true,
                _ = sub.aborted() => false,
            };
            if !acked {
                break;
            }
        }
        lock(&self.acks).remove(&id);
    }
}
