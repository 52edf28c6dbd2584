//! A listener's idle budget. A connection is idle while no event stream is
//! open on it: a TLS handshake under way, a head not sent yet, an HTTP/2
//! connection without a stream, a kept-alive connection between one-shot
//! requests. A listener keeps at most [`IdleBudget`]'s `max` idle
//! connections: accepting one more evicts the oldest, which then closes
//! (after the request it has under way, if any; see [`Standing::evicted`]).
//!
//! Why eviction rather than a second cap to wait on: a new connection is
//! idle too until its head arrives, so a cap that made it wait would keep
//! a streaming client out for exactly as long as idle sockets hold the
//! cap. With eviction, idle sockets, however many, only push each other
//! out, and the listener's connection cap (the client limit plus a headroom
//! no smaller than this budget, see `app::idle_budget`) always has room
//! for the connections that carry streams. Idle connections are also timed
//! out (the head budget, HTTP/2's idle close in [`super::h2`]); eviction
//! only matters when they come faster than that.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::Notify;

/// The idle connections of one listener, oldest first (connection numbers
/// only grow).
pub struct IdleBudget {
    max: usize,
    members: Mutex<BTreeMap<u64, Weak<Standing>>>,
}

impl IdleBudget {
    /// A budget of `max` idle connections (at least one).
    pub fn new(max: usize) -> Arc<IdleBudget> {
        Arc::new(IdleBudget {
            max: max.max(1),
            members: Mutex::new(BTreeMap::new()),
        })
    }

    fn members(&self) -> MutexGuard<'_, BTreeMap<u64, Weak<Standing>>> {
        // Every update is one map operation: a panic cannot tear it.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `standing` as idle; `evict`: then tells the oldest idle
    /// connections past the budget to close. Only a newly accepted
    /// connection evicts: one whose stream just ended rejoins quietly (it
    /// may be about to close anyway), and the next accept makes room.
    fn join(&self, standing: &Arc<Standing>, evict: bool) {
        let mut members = self.members();
        members.insert(standing.id, Arc::downgrade(standing));
        while evict && members.len() > self.max {
            let Some((_, oldest)) = members.pop_first() else {
                break;
            };
            if let Some(oldest) = oldest.upgrade() {
                oldest.evict.notify_one();
            }
        }
    }

    fn leave(&self, id: u64) {
        self.members().remove(&id);
    }

    /// Idle connections counted now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.members().len()
    }
}

/// One connection's place in its listener's idle budget.
pub struct Standing {
    id: u64,
    budget: Arc<IdleBudget>,
    evict: Notify,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Event streams open on the connection.
    streams: usize,
    /// The connection is over: it never rejoins.
    ended: bool,
}

impl Standing {
    /// A connection just accepted: idle, possibly evicting the oldest.
    pub fn admitted(id: u64, budget: &Arc<IdleBudget>) -> Arc<Standing> {
        let standing = Arc::new(Standing {
            id,
            budget: budget.clone(),
            evict: Notify::new(),
            state: Mutex::new(State::default()),
        });
        budget.join(&standing, true);
        standing
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An event stream opened: the connection is not idle while the guard
    /// lives.
    pub fn stream_opened(self: &Arc<Self>) -> Streaming {
        let mut state = self.state();
        state.streams += 1;
        if state.streams == 1 {
            self.budget.leave(self.id);
        }
        Streaming(self.clone())
    }

    fn stream_closed(self: &Arc<Self>) {
        let mut state = self.state();
        state.streams -= 1;
        if state.streams == 0 && !state.ended {
            self.budget.join(self, false);
        }
    }

    /// Completes once the connection was evicted as the oldest idle one
    /// (at once if that happened while nobody was waiting).
    pub async fn evicted(&self) {
        self.evict.notified().await
    }

    /// Held by the connection's task: the connection leaves the budget for
    /// good when it is dropped.
    pub fn tenure(self: &Arc<Self>) -> Tenure {
        Tenure(self.clone())
    }
}

/// An open event stream (see [`Standing::stream_opened`]).
pub struct Streaming(Arc<Standing>);

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.stream_closed();
    }
}

/// A connection's time in its budget (see [`Standing::tenure`]).
pub struct Tenure(Arc<Standing>);

impl Drop for Tenure {
    fn drop(&mut self) {
        let standing = &self.0;
        standing.state().ended = true;
        standing.budget.leave(standing.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn was_evicted(s: &Standing) -> bool {
        tokio::time::timeout(Duration::from_millis(10), s.evicted())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn one_more_idle_connection_evicts_the_oldest() {
        let budget = IdleBudget::new(2);
        let a = Standing::admitted(1, &budget);
        let b = Standing::admitted(2, &budget);
        assert!(!was_evicted(&a).await);
        let c = Standing::admitted(3, &budget);
        assert!(was_evicted(&a).await, "the oldest goes");
        assert!(!was_evicted(&b).await && !was_evicted(&c).await);
        assert_eq!(budget.len(), 2);
    }

    #[tokio::test]
    async fn a_connection_with_a_stream_is_not_idle_until_it_ends() {
        let budget = IdleBudget::new(1);
        let streaming = Standing::admitted(1, &budget);
        let stream = streaming.stream_opened();
        assert_eq!(budget.len(), 0);
        let idle = Standing::admitted(2, &budget);
        let _newer = Standing::admitted(3, &budget);
        assert!(was_evicted(&idle).await, "idle ones push each other out");
        assert!(!was_evicted(&streaming).await, "never one with a stream");
        drop(stream);
        assert_eq!(budget.len(), 2, "it rejoins, without evicting");
        let _tenure = streaming.tenure();
        drop(_tenure);
        assert_eq!(budget.len(), 1, "a closed connection leaves");
        drop(streaming.stream_opened());
        assert_eq!(budget.len(), 1, "and never rejoins");
    }
}
