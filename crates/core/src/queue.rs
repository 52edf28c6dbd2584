//! One client's bounded outgoing queue: the hand-off between the hub, which
//! pushes frames from any thread, and the client's writer task, which takes
//! everything queued in one batch and writes it with one vectored write.
//!
//! The bound is in bytes. A push past it closes the client as `Slow` and
//! drops what it had queued, so one stalled reader costs at most the limit
//! (plus one frame, when a single frame is bigger than the limit) and never
//! delays anyone else.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Why a client's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the connection or it failed.
    Client,
    /// The application closed this client.
    Server,
    /// The client read too slowly and its queue passed the limit.
    Slow,
    /// A write made no progress within the write timeout.
    Timeout,
    /// The whole hub was shut down.
    Shutdown,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Server => "server",
            CloseReason::Slow => "slow",
            CloseReason::Timeout => "timeout",
            CloseReason::Shutdown => "shutdown",
        }
    }

    /// Whether frames still queued are written before the stream ends.
    /// A graceful close loses nothing; a slow or dead peer gets nothing more
    /// (its transport is aborted, not ended cleanly).
    pub fn flushes(self) -> bool {
        matches!(self, CloseReason::Server | CloseReason::Shutdown)
    }
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The client is closing or closed; nothing was queued.
    Closed,
    /// This push passed the limit: the client is now closing as `Slow`.
    TooSlow,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    queued_bytes: usize,
    /// The biggest frame queued since the writer last took a batch.
    biggest: usize,
    closing: Option<CloseReason>,
    /// Set by every push, cleared by every heartbeat tick: an idle stream
    /// is one that saw no push for a whole tick.
    active: bool,
    /// The writer waiting for frames.
    waker: Option<Waker>,
    /// The writer blocked in a write, waiting to hear of an abort.
    abort_waker: Option<Waker>,
}

/// A batch deque grown past this many slots by a burst is dropped when the
/// client goes idle, so an idle client does not keep a burst's worth of
/// slots (while the burst lasts, both deques are reused: no allocation).
const KEEP_SLOTS: usize = 64;

/// The queue shared by the hub (producer) and one writer (consumer).
pub struct Queue {
    limit: usize,
    state: Mutex<State>,
    /// Decremented once, when the queue starts closing (see `counted`).
    open: Option<Arc<AtomicUsize>>,
}

impl Queue {
    pub fn new(limit: usize) -> Self {
        Queue {
            limit,
            state: Mutex::new(State::default()),
            open: None,
        }
    }

    /// A queue that takes one from `open` when it starts closing: the
    /// hub's count of open clients (it adds the one when it registers).
    pub fn counted(limit: usize, open: Arc<AtomicUsize>) -> Self {
        Queue {
            open: Some(open),
            ..Queue::new(limit)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state torn
        // (every update is a few plain assignments), so poison is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame and wakes the writer.
    pub fn push(&self, frame: Bytes) -> Pushed {
        let (pushed, waker) = self.push_deferred(frame);
        wake(waker);
        pushed
    }

    /// Queues a frame and hands back the writer's waker instead of waking
    /// it, so that a caller fanning out to many clients can wake them all
    /// later, from a runtime thread (see `HubConfig::batch_foreign_wakes`).
    pub fn push_deferred(&self, frame: Bytes) -> (Pushed, Option<Waker>) {
        let mut state = self.lock();
        if state.closing.is_some() {
            return (Pushed::Closed, None);
        }
        if frame.is_empty() {
            // Nothing to write; an empty chunk would end a chunked body.
            return (Pushed::Queued, None);
        }
        // One frame bigger than the limit is not counted, only the backlog
        // beside it: such a frame is shared (not copied) across clients, and
        // counting it would drop every reader of one huge event as slow.
        let biggest = state.biggest.max(frame.len());
        let uncounted = if biggest > self.limit { biggest } else { 0 };
        if state.queued_bytes + frame.len() - uncounted > self.limit {
            drop(state);
            self.close(CloseReason::Slow);
            return (Pushed::TooSlow, None);
        }
        state.queued_bytes += frame.len();
        state.biggest = biggest;
        state.frames.push_back(frame);
        state.active = true;
        (Pushed::Queued, state.waker.take())
    }

    /// Queues a heartbeat if nothing was pushed since the last call.
    pub fn heartbeat_if_idle(&self, beat: &Bytes) {
        let idle = {
            let mut state = self.lock();
            !std::mem::replace(&mut state.active, false)
        };
        if idle {
            self.push(beat.clone());
            self.lock().active = false;
        }
    }

    /// Starts closing. Returns false when the client was already closing.
    pub fn close(&self, reason: CloseReason) -> bool {
        let mut state = self.lock();
        if state.closing.is_some() {
            return false;
        }
        Self::close_locked(&mut state, reason);
        if let Some(open) = &self.open {
            open.fetch_sub(1, Relaxed);
        }
        let waker = state.waker.take();
        let abort_waker = state.abort_waker.take();
        drop(state);
        wake(waker);
        wake(abort_waker);
        true
    }

    fn close_locked(state: &mut State, reason: CloseReason) {
        state.closing = Some(reason);
        if !reason.flushes() {
            state.frames.clear();
            state.queued_bytes = 0;
            state.biggest = 0;
        }
    }

    /// The reason the client is closing, if it is.
    pub fn closing(&self) -> Option<CloseReason> {
        self.lock().closing
    }

    pub fn queued_bytes(&self) -> usize {
        self.lock().queued_bytes
    }

    #[cfg(test)]
    fn slots(&self) -> usize {
        self.lock().frames.capacity()
    }

    /// Takes every queued frame at once into `batch` (which must be empty),
    /// or reports the close reason once the queue is drained and closing.
    pub fn poll_batch(
        &self,
        cx: &mut Context<'_>,
        batch: &mut VecDeque<Bytes>,
    ) -> Poll<Result<(), CloseReason>> {
        let mut state = self.lock();
        if !state.frames.is_empty() {
            std::mem::swap(&mut state.frames, batch);
            state.queued_bytes = 0;
            state.biggest = 0;
            return Poll::Ready(Ok(()));
        }
        if let Some(reason) = state.closing {
            return Poll::Ready(Err(reason));
        }
        // Idle: let a burst's slots go, ours and the writer's.
        if batch.capacity() > KEEP_SLOTS {
            *batch = VecDeque::new();
        }
        if state.frames.capacity() > KEEP_SLOTS {
            state.frames = VecDeque::new();
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Ready once the client is closing for a reason that drops what is
    /// queued (slow, timeout, peer gone): a writer blocked on a full socket
    /// races its write against this, so a stalled peer is let go at once.
    pub fn poll_aborted(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        let mut state = self.lock();
        match state.closing {
            Some(reason) if !reason.flushes() => Poll::Ready(reason),
            _ => {
                state.abort_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Async form of [`Queue::poll_batch`].
    pub async fn next_batch(&self, batch: &mut VecDeque<Bytes>) -> Result<(), CloseReason> {
        std::future::poll_fn(|cx| self.poll_batch(cx, batch)).await
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Poll;

    fn poll(q: &Queue, batch: &mut VecDeque<Bytes>) -> Poll<Result<(), CloseReason>> {
        let waker = std::task::Waker::noop();
        q.poll_batch(&mut Context::from_waker(waker), batch)
    }

    #[test]
    fn a_batch_takes_everything_in_order() {
        let q = Queue::new(1024);
        q.push(Bytes::from_static(b"a"));
        q.push(Bytes::from_static(b"b"));
        let mut batch = VecDeque::new();
        assert_eq!(poll(&q, &mut batch), Poll::Ready(Ok(())));
        assert_eq!(batch, [Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        assert_eq!(q.queued_bytes(), 0);
        batch.clear();
        assert_eq!(poll(&q, &mut batch), Poll::Pending);
    }

    #[test]
    fn passing_the_limit_closes_as_slow_and_frees_the_queue() {
        let q = Queue::new(4);
        assert_eq!(q.push(Bytes::from_static(b"abc")), Pushed::Queued);
        assert_eq!(q.push(Bytes::from_static(b"de")), Pushed::TooSlow);
        assert_eq!(q.queued_bytes(), 0);
        assert_eq!(q.push(Bytes::from_static(b"f")), Pushed::Closed);
        let mut batch = VecDeque::new();
        assert_eq!(poll(&q, &mut batch), Poll::Ready(Err(CloseReason::Slow)));
    }

    #[test]
    fn a_frame_over_the_limit_is_not_counted_the_backlog_beside_it_is() {
        let q = Queue::new(10);
        assert_eq!(q.push(Bytes::from(vec![b'x'; 50])), Pushed::Queued);
        assert_eq!(q.push(Bytes::from(vec![b'y'; 10])), Pushed::Queued);
        assert_eq!(q.push(Bytes::from_static(b"z")), Pushed::TooSlow);
        assert_eq!(q.closing(), Some(CloseReason::Slow));
        let q = Queue::new(10);
        q.push(Bytes::from(vec![b'x'; 50]));
        let mut batch = VecDeque::new();
        assert!(matches!(poll(&q, &mut batch), Poll::Ready(Ok(()))));
        assert_eq!(q.push(Bytes::from(vec![b'y'; 8])), Pushed::Queued);
        assert_eq!(q.push(Bytes::from(vec![b'z'; 8])), Pushed::TooSlow);
    }

    #[test]
    fn a_graceful_close_flushes_first() {
        let q = Queue::new(64);
        q.push(Bytes::from_static(b"last"));
        assert!(q.close(CloseReason::Shutdown));
        assert!(!q.close(CloseReason::Server));
        let mut batch = VecDeque::new();
        assert_eq!(poll(&q, &mut batch), Poll::Ready(Ok(())));
        batch.clear();
        assert_eq!(
            poll(&q, &mut batch),
            Poll::Ready(Err(CloseReason::Shutdown))
        );
    }

    #[test]
    fn buffers_shrink_back_after_a_burst() {
        let q = Queue::new(1 << 20);
        let mut batch = VecDeque::new();
        for _ in 0..10_000 {
            q.push(Bytes::from_static(b"x"));
        }
        assert_eq!(poll(&q, &mut batch), Poll::Ready(Ok(())));
        batch.clear();
        assert_eq!(poll(&q, &mut batch), Poll::Pending, "idle after the burst");
        assert!(
            batch.capacity() <= KEEP_SLOTS,
            "writer kept {}",
            batch.capacity()
        );
        assert!(q.slots() <= KEEP_SLOTS, "queue kept {}", q.slots());
    }

    #[test]
    fn an_empty_frame_is_not_queued() {
        let q = Queue::new(64);
        assert_eq!(q.push(Bytes::new()), Pushed::Queued);
        let mut batch = VecDeque::new();
        assert_eq!(poll(&q, &mut batch), Poll::Pending);
    }

    #[test]
    fn heartbeat_only_on_an_idle_queue() {
        let q = Queue::new(64);
        let beat = Bytes::from_static(b":\n\n");
        q.push(Bytes::from_static(b"x"));
        q.heartbeat_if_idle(&beat); // active since the last tick: no beat
        assert_eq!(q.queued_bytes(), 1);
        q.heartbeat_if_idle(&beat); // idle for a whole tick: beat
        assert_eq!(q.queued_bytes(), 4);
    }
}
