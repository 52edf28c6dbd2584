//! When the writers of queued frames are woken: at once, or, for pushes
//! made outside the runtime with [`HubConfig::batch_foreign_wakes`], by one
//! runtime task (see that field for why).
//!
//! [`HubConfig::batch_foreign_wakes`]: super::HubConfig::batch_foreign_wakes

use super::{lock, Hub};
use std::task::Waker;
use tokio::runtime::Handle;

/// Pending wakers past this many are handed off at once, so a long
/// synchronous loop of single sends still gets written while it runs.
const MAX_PENDING_WAKES: usize = 1024;

impl Hub {
    /// Wakes the writers of every frame queued since the last flush.
    pub fn flush_wakes(&self) {
        let wakers = std::mem::take(&mut *lock(&self.inner.pending_wakes));
        self.wake_now(wakers);
    }

    fn batches_here(&self) -> Option<&Handle> {
        let rt = self.inner.runtime.as_ref()?;
        (self.inner.config.batch_foreign_wakes && Handle::try_current().is_err()).then_some(rt)
    }

    /// Wakes at once, from a runtime thread when batching.
    pub(super) fn wake_now(&self, wakers: Vec<Waker>) {
        if wakers.is_empty() {
            return;
        }
        match self.batches_here() {
            Some(rt) => {
                rt.spawn(async move { wakers.into_iter().for_each(Waker::wake) });
            }
            None => wakers.into_iter().for_each(Waker::wake),
        }
    }

    /// Wakes at once, or when batching, at the next flush (or once enough
    /// are pending).
    pub(super) fn wake_later(&self, waker: Waker) {
        if self.batches_here().is_none() {
            return waker.wake();
        }
        let mut pending = lock(&self.inner.pending_wakes);
        pending.push(waker);
        if pending.len() >= MAX_PENDING_WAKES {
            let batch = std::mem::take(&mut *pending);
            drop(pending);
            self.wake_now(batch);
        }
    }
}
