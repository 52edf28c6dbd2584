//! The one fan-out: a frame to a [`Target`], counted and recorded as its
//! [`Origin`] says. Every broadcast, publish, bus delivery and notice of
//! the addon and the daemon goes through [`Hub::fan_out`]; a single
//! client's send through [`Hub::send`].

use super::{holds, lock, read, Client, ClientId, Frame, Hub};
use crate::queue::Pushed;
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Waker;

/// Whom a fan-out is for.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Every client.
    All,
    /// The members of any of these channels, once each.
    Channels(&'a [&'a str]),
    /// Each of these clients still connected, in order, once per mention.
    Clients(&'a [ClientId]),
}

/// What a fan-out carries, which decides how it is counted and kept.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// An event published on this hub: counted, and (to everyone or to
    /// channels) kept in the replay history under its id.
    Published(Option<&'a str>),
    /// An event a bus numbered (its history is the bus's): counted; a
    /// client the bus is resuming gets it once, after its replay.
    Numbered(u64),
    /// Not an event (a gap notice): neither counted nor kept.
    Notice,
}

/// What one fan-out did, for the shared counters.
#[derive(Default)]
pub(super) struct Tally {
    delivered: u64,
    slow: u64,
}

impl Tally {
    /// Counts one push; true if it was queued.
    pub(super) fn count(&mut self, pushed: Pushed) -> bool {
        match pushed {
            Pushed::Queued => self.delivered += 1,
            Pushed::TooSlow => self.slow += 1,
            Pushed::Closed => {}
        }
        pushed == Pushed::Queued
    }
}

impl Hub {
    /// Queues `frame` to `target`. Returns how many clients it was queued
    /// to (held clients that will get it after their replay not counted).
    pub fn fan_out(&self, target: Target<'_>, frame: Frame, origin: Origin<'_>) -> usize {
        if frame.is_empty() {
            return 0;
        }
        let seq = match origin {
            Origin::Published(id) => {
                let events = match target {
                    Target::Clients(ids) => ids.len() as u64,
                    Target::All | Target::Channels(_) => 1,
                };
                self.inner
                    .counters
                    .events_published
                    .fetch_add(events, Relaxed);
                match target {
                    Target::All => self.record(&frame, id, None),
                    Target::Channels(channels) => self.record(&frame, id, Some(channels)),
                    Target::Clients(_) => {}
                }
                None
            }
            Origin::Numbered(seq) => {
                self.inner.counters.events_published.fetch_add(1, Relaxed);
                Some(seq)
            }
            Origin::Notice => None,
        };
        match target {
            Target::All => {
                let clients = read(&self.inner.clients);
                let all = clients.iter().map(|(id, c)| (*id, c));
                self.push_each(all, clients.len(), frame, seq)
            }
            Target::Channels(channels) => self.push_listed(&self.members_of(channels), frame, seq),
            Target::Clients(ids) => self.push_listed(ids, frame, seq),
        }
    }

    /// Queues an event already framed to one client, counted as published
    /// (an empty frame is nothing to send, and succeeds). False if the
    /// client is gone or closing.
    pub fn send(&self, id: ClientId, frame: Frame) -> bool {
        self.inner.counters.events_published.fetch_add(1, Relaxed);
        frame.is_empty() || self.send_raw(id, frame)
    }

    /// Queues bytes as they are to one client (a raw `res.write`): not an
    /// event, not counted as one.
    pub fn send_raw(&self, id: ClientId, bytes: Frame) -> bool {
        let Some(client) = self.client(id) else {
            return false;
        };
        let (pushed, waker) = client.queue.push_deferred(bytes);
        let mut tally = Tally::default();
        let queued = tally.count(pushed);
        self.commit(tally);
        if let Some(waker) = waker {
            self.wake_later(waker);
        }
        queued
    }

    /// To each of `ids` still connected, in order, once per mention.
    fn push_listed(&self, ids: &[ClientId], frame: Frame, seq: Option<u64>) -> usize {
        let clients = read(&self.inner.clients);
        let found = ids
            .iter()
            .filter_map(|id| clients.get(id).map(|c| (*id, c)));
        self.push_each(found, ids.len(), frame, seq)
    }

    fn push_each<'a>(
        &self,
        targets: impl Iterator<Item = (ClientId, &'a Arc<Client>)>,
        size: usize,
        frame: Frame,
        seq: Option<u64>,
    ) -> usize {
        let mut holds = match seq {
            Some(_) if self.inner.held.load(Relaxed) > 0 => Some(lock(&self.inner.holds)),
            _ => None,
        };
        let mut wakers = Vec::with_capacity(size);
        let mut tally = Tally::default();
        let mut reached = 0;
        for (id, client) in targets {
            if let (Some(holds), Some(seq)) = (holds.as_mut(), seq) {
                if !holds::passes(holds, id, seq, &frame) {
                    continue;
                }
            }
            let (pushed, waker) = client.queue.push_deferred(frame.clone());
            wakers.extend(waker);
            reached += usize::from(tally.count(pushed));
        }
        drop(holds);
        self.commit(tally);
        self.wake_now(wakers);
        reached
    }

    /// Queues one frame to one client found already, its waker into
    /// `wakers` (for replays, which wake once at the end).
    pub(super) fn push_one(&self, client: &Client, frame: Frame, wakers: &mut Vec<Waker>) -> bool {
        let (pushed, waker) = client.queue.push_deferred(frame);
        wakers.extend(waker);
        let mut tally = Tally::default();
        let queued = tally.count(pushed);
        self.commit(tally);
        queued
    }

    fn commit(&self, tally: Tally) {
        let c = &self.inner.counters;
        if tally.delivered > 0 {
            c.events_delivered.fetch_add(tally.delivered, Relaxed);
        }
        if tally.slow > 0 {
            c.dropped_slow.fetch_add(tally.slow, Relaxed);
        }
    }

    fn members_of(&self, channels: &[&str]) -> Vec<ClientId> {
        let index = read(&self.inner.channels);
        let mut sets = channels.iter().filter_map(|c| index.get(*c));
        match (sets.next(), channels.len()) {
            (None, _) => Vec::new(),
            (Some(only), 1) => only.iter().copied().collect(),
            (Some(first), _) => {
                let mut all: HashSet<ClientId> = first.clone();
                sets.for_each(|s| all.extend(s));
                all.into_iter().collect()
            }
        }
    }
}
