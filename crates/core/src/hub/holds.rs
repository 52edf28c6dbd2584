//! Clients a bus is resuming: [`Hub::hold`] before they join channels,
//! [`Hub::release`] once their replay is read. Numbered live events that
//! arrive meanwhile wait, and the ones the replay covered are dropped, so
//! the seam between replay and live has no gap and no duplicate.

use super::{gap_frame, lock, ClientId, Frame, Hub};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

/// One client being resumed: live events numbered up to `after` are ones
/// it has (or is being replayed), and while `pending` is set, newer ones
/// wait there for the replay to go first.
pub(super) struct Hold {
    after: u64,
    pending: Option<Vec<(u64, Frame)>>,
}

/// Whether a numbered event goes to client `id` now; if it is held, the
/// event waits in its hold (or is dropped as one it has).
pub(super) fn passes(
    holds: &mut HashMap<ClientId, Hold>,
    id: ClientId,
    seq: u64,
    frame: &Frame,
) -> bool {
    let Some(hold) = holds.get_mut(&id) else {
        return true;
    };
    if seq <= hold.after {
        return false;
    }
    match &mut hold.pending {
        Some(pending) => {
            pending.push((seq, frame.clone()));
            false
        }
        None => true,
    }
}

impl Hub {
    /// Holds a client's numbered live events back until
    /// [`Hub::release`]: a bus resuming it reads what it missed meanwhile.
    /// Call it before the client joins its channels.
    pub fn hold(&self, id: ClientId) {
        let mut holds = lock(&self.inner.holds);
        holds.insert(
            id,
            Hold {
                after: 0,
                pending: Some(Vec::new()),
            },
        );
        self.inner.held.store(holds.len(), Relaxed);
    }

    /// Ends a hold: queues `gap` (the id the client asked for, when events
    /// were lost), then `replay` (numbered, in order), then the live events
    /// held meanwhile that are newer than both `after` and the replay.
    /// Live events up to that point that are still on their way are
    /// dropped as the duplicates they are, until [`Hub::prune_holds`].
    pub fn release(&self, id: ClientId, after: u64, gap: Option<&str>, replay: Vec<(u64, Frame)>) {
        // The client first: the clients lock is never taken under `holds`.
        let client = self.client(id);
        let mut holds = lock(&self.inner.holds);
        let Some(hold) = holds.get_mut(&id) else {
            return;
        };
        let Some(client) = client else {
            holds.remove(&id);
            self.inner.held.store(holds.len(), Relaxed);
            return;
        };
        let mut wakers = Vec::new();
        if let Some(frame) = gap.and_then(|g| gap_frame(g).ok()) {
            self.push_one(&client, frame, &mut wakers);
        }
        let mut seen = after.max(hold.after);
        for (seq, frame) in replay
            .into_iter()
            .chain(hold.pending.take().unwrap_or_default())
        {
            if seq > seen {
                seen = seq;
                self.push_one(&client, frame, &mut wakers);
            }
        }
        hold.after = seen;
        drop(holds);
        self.wake_now(wakers);
    }

    /// Forgets the released holds whose events are all older than `seq`,
    /// the newest a bus delivered: nothing still coming can be a duplicate.
    pub fn prune_holds(&self, seq: u64) {
        if self.inner.held.load(Relaxed) == 0 {
            return;
        }
        let mut holds = lock(&self.inner.holds);
        holds.retain(|_, h| h.pending.is_some() || h.after >= seq);
        self.inner.held.store(holds.len(), Relaxed);
    }

    pub(super) fn unhold(&self, id: ClientId) {
        if self.inner.held.load(Relaxed) == 0 {
            return;
        }
        let mut holds = lock(&self.inner.holds);
        holds.remove(&id);
        self.inner.held.store(holds.len(), Relaxed);
    }
}
