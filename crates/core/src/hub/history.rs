//! The hub's own replay history: what a fan-out published here records,
//! and what [`Hub::replay`] sends a client that resumes with a
//! `Last-Event-ID`. (With a bus that numbers events, history is the bus's
//! and the hub keeps none.)

use super::{lock, ClientId, Frame, Hub, GAP_EVENT};
use crate::frame::{Event, FrameError};
use crate::replay::{Recorded, Resume};
use std::sync::Arc;

impl Hub {
    pub(super) fn record(&self, frame: &Frame, id: Option<&str>, channels: Option<&[&str]>) {
        let mut history = lock(&self.inner.history);
        if !history.is_enabled() {
            return;
        }
        history.record(Recorded {
            id: id.filter(|i| !i.is_empty()).map(Into::into),
            channels: channels.map(|cs| cs.iter().map(|c| Arc::from(*c)).collect()),
            frame: frame.clone(),
        });
    }

    /// Queues to one client what it missed since `last_id`: the recorded
    /// events after it that reached the client's channels, in order. When
    /// the id is not in the history it first gets a [`GAP_EVENT`]. Returns
    /// the number of events replayed.
    pub fn replay(&self, id: ClientId, last_id: &str) -> usize {
        let Some(client) = self.client(id) else {
            return 0;
        };
        let joined = lock(&client.channels).names.clone();
        let mut wakers = Vec::new();
        let history = lock(&self.inner.history);
        let missed = match history.since(last_id) {
            Resume::After(events) => events,
            Resume::Gap(events) => {
                if let Ok(frame) = gap_frame(last_id) {
                    self.push_one(&client, frame, &mut wakers);
                }
                events
            }
        };
        let mut replayed = 0;
        for event in missed.into_iter().filter(|e| e.reaches(&joined)) {
            replayed += usize::from(self.push_one(&client, event.frame.clone(), &mut wakers));
        }
        drop(history);
        self.wake_now(wakers);
        replayed
    }

    /// Whether this hub keeps a replay history.
    pub fn keeps_history(&self) -> bool {
        lock(&self.inner.history).is_enabled()
    }

    /// Events in the replay history.
    #[cfg(test)]
    pub(crate) fn history_len(&self) -> usize {
        lock(&self.inner.history).len()
    }
}

/// The [`GAP_EVENT`] for a client that asked to resume from `last_id`.
pub fn gap_frame(last_id: &str) -> Result<Frame, FrameError> {
    Event {
        event: Some(GAP_EVENT),
        data: Some(last_id),
        ..Event::default()
    }
    .encode()
}
