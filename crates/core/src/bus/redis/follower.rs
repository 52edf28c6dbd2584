//! The subscriber task: follows the channels of local clients, delivers
//! what arrives, catches up after a reconnect, resumes clients, and
//! watches Redis's epoch.
//!
//! The gap rules. A client gets `ssehub-gap` whenever it may have missed
//! an event, and only then:
//! - after a reconnect, the members of a channel whose stream no longer
//!   holds every event after the last one delivered (trimmed; without
//!   history: any event published to it meanwhile);
//! - every client, after a reconnect that finds a new epoch this node did
//!   not see begin while connected (Redis lost its data while we were
//!   away), or a counter behind the last id delivered (Redis went back),
//!   or a cut longer than the streams' TTL (they may have expired);
//! - a resuming client, when its id is from before the epoch or after the
//!   counter, older than the TTL, or trimmed from one of its streams.
//!
//! What Redis still holds is always delivered, gap or not.

use super::endpoint::Endpoint;
use super::link::Link;
use super::read::{read, read_many, Ask, Read};
use super::subscriber::{Heard, Subscriber};
use super::{Keys, Shared, EXCHANGE_TIMEOUT};
use crate::bus::wire::Numbered;
use crate::bus::Failure;
use crate::hub::{gap_frame, ClientId, Hub, Origin, Target, WeakHub};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often an idle subscriber connection is checked with a PING.
const PING_EVERY: Duration = Duration::from_secs(5);
/// How often the epoch is read: a Redis that lost its data while this
/// node is connected is seen within this time, so a cut after it needs
/// no gap.
const EPOCH_EVERY: Duration = Duration::from_secs(1);
/// Reconnect delays: doubling from the first, capped, each jittered.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the hub and the resuming transports tell the subscriber task.
pub(super) enum Control {
    Watch(String),
    Unwatch(String),
    Resume(ClientId, String),
}

/// How one connection of the subscriber ended.
enum Ended {
    Lost(Failure),
    Closed,
}

/// One target of a catch-up: its channel (None: the broadcasts), key and
/// the first id wanted.
struct Watched {
    channel: Option<String>,
    ask: Ask,
}

pub(super) struct Follower {
    hub: WeakHub,
    endpoint: Arc<Endpoint>,
    link: Arc<Link>,
    keys: Keys,
    history: usize,
    ttl: Duration,
    shared: Arc<Shared>,
    /// Channels with local members (the hub's names).
    watched: HashSet<String>,
    /// Per watched channel, the counter when it was first subscribed:
    /// catching up never goes back before it.
    since: HashMap<String, u64>,
    /// The newest event number delivered.
    last: u64,
    /// The counter when this node first subscribed: catching up never
    /// goes back before it either.
    floor: Option<u64>,
    /// Redis's epoch as last seen while connected.
    start: Option<u64>,
    /// When the subscriber connection was last known to be up (a
    /// message, a PING answered): a cut began after it.
    alive: Option<Instant>,
    /// Clients waiting for their replay.
    resumes: Vec<(ClientId, String)>,
}

impl Follower {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        hub: WeakHub,
        endpoint: Arc<Endpoint>,
        link: Arc<Link>,
        keys: Keys,
        history: usize,
        ttl: Duration,
        shared: Arc<Shared>,
    ) -> Follower {
        Follower {
            hub,
            endpoint,
            link,
            keys,
            history,
            ttl,
            shared,
            watched: HashSet::new(),
            since: HashMap::new(),
            last: 0,
            floor: None,
            start: None,
            alive: None,
            resumes: Vec::new(),
        }
    }

    pub(super) async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut failures = 0u32;
        loop {
            if self.shared.closed.load(Relaxed) {
                return;
            }
            let ended = self.follow(&mut control).await;
            let was_connected = self.shared.connected.swap(false, Relaxed);
            let Ended::Lost(why) = ended else { return };
            failures = if was_connected {
                0
            } else {
                failures.saturating_add(1)
            };
            self.shared.note_failure(&why);
            let pause = backoff(failures);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shared.shutdown.notified() => return,
            }
        }
    }

    /// One subscriber connection, from connect to loss.
    async fn follow(&mut self, control: &mut mpsc::UnboundedReceiver<Control>) -> Ended {
        let mut sub =
            match tokio::time::timeout(EXCHANGE_TIMEOUT, Subscriber::connect(&self.endpoint)).await
            {
                Ok(Ok(sub)) => sub,
                Ok(Err(failure)) => return Ended::Lost(failure),
                Err(_) => return Ended::Lost(super::link::timed_out("connecting")),
            };
        // Joins and leaves while we were away: the set to subscribe now.
        while let Ok(c) = control.try_recv() {
            self.apply(c);
        }
        let mut names = vec![self.keys.all.clone()];
        names.extend(self.watched.iter().map(|c| self.keys.of(c)));
        if let Err(e) = sub.subscribe(&names, true).await {
            return Ended::Lost(e);
        }
        let rejoined = self.floor.is_some();
        if let Err(e) = self.caught_up_after(rejoined).await {
            return Ended::Lost(e);
        }
        self.alive = Some(Instant::now());
        self.shared
            .subscriptions
            .store(self.watched.len() as u64, Relaxed);
        self.shared.connected.store(true, Relaxed);
        self.shared.note_up();
        if rejoined {
            self.shared.reconnects.fetch_add(1, Relaxed);
        }
        let mut subscribed: HashSet<String> = self.watched.clone();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut epoch = tokio::time::interval(EPOCH_EVERY);
        epoch.tick().await;
        loop {
            if let Err(e) = self.resume_waiting().await {
                return Ended::Lost(e);
            }
            tokio::select! {
                heard = sub.next() => match heard {
                    Heard::Message(payload) => {
                        self.alive = Some(Instant::now());
                        self.on_message(&payload);
                    }
                    Heard::Interrupted => {
                        if let Err(e) = self.recover(&mut sub, &subscribed).await {
                            return Ended::Lost(e);
                        }
                    }
                    Heard::NodeLost => {
                        let recovered = match sub.home_changed().await {
                            Ok(false) => Ok(()),
                            Ok(true) => self.recover(&mut sub, &subscribed).await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = recovered {
                            return Ended::Lost(e);
                        }
                    }
                    Heard::Lost(e) => return Ended::Lost(e),
                },
                c = control.recv() => {
                    let Some(c) = c else { return Ended::Closed };
                    self.apply(c);
                    while let Ok(c) = control.try_recv() {
                        self.apply(c);
                    }
                    if let Err(e) = self.resubscribe(&mut sub, &mut subscribed).await {
                        return Ended::Lost(e);
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = self.ping(&mut sub).await {
                        return Ended::Lost(e);
                    }
                }
                _ = epoch.tick() => {
                    if let Err(e) = self.check_epoch(&mut sub).await {
                        return Ended::Lost(e);
                    }
                }
                _ = self.shared.shutdown.notified() => return Ended::Closed,
            }
        }
    }

    /// Proves the subscriber connection is up: all sent on it so far came.
    async fn ping(&mut self, sub: &mut Subscriber) -> Result<(), Failure> {
        sub.ping().await?;
        self.alive = Some(Instant::now());
        Ok(())
    }

    /// After the cluster said messages may have been missed (the bus's
    /// slot moved, or its master went): subscribes again, which the
    /// cluster connection sends to the slot's master now, then catches up
    /// from the streams as after a reconnect.
    ///
    /// A slot's move interrupts every channel at once (one `sunsubscribe`
    /// each): what waits is taken first, so one recovery covers them all,
    /// and the messages that waited are delivered after the catch-up
    /// (delivered before, they would move the last id past what it reads).
    async fn recover(
        &mut self,
        sub: &mut Subscriber,
        subscribed: &HashSet<String>,
    ) -> Result<(), Failure> {
        let waiting = sub.take_waiting();
        let mut names = vec![self.keys.all.clone()];
        names.extend(subscribed.iter().map(|c| self.keys.of(c)));
        sub.subscribe(&names, true).await?;
        self.caught_up_after(true).await?;
        for payload in waiting {
            self.on_message(&payload);
        }
        self.alive = Some(Instant::now());
        self.shared.reconnects.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Reads the epoch (making it if Redis has none). A new one seen while
    /// this connection is still up (proved by a PING) began while we were
    /// here: every event since reached us, so nothing is lost for our
    /// clients, and a later cut compares with the new epoch.
    async fn check_epoch(&mut self, sub: &mut Subscriber) -> Result<(), Failure> {
        let read = self.read(&[]).await?;
        if self.start == Some(read.start) {
            return Ok(());
        }
        self.ping(sub).await?;
        let went_back = self.start.is_some_and(|s| read.start < s);
        if went_back && read.start <= self.last {
            // A new epoch numbered from below what we delivered (Redis's
            // clock went back): its events would pass for ones delivered.
            self.gap_all();
            self.restart_numbers(read.start);
        }
        self.start = Some(read.start);
        Ok(())
    }

    fn apply(&mut self, control: Control) {
        match control {
            Control::Watch(c) => {
                self.watched.insert(c);
            }
            Control::Unwatch(c) => {
                self.since.remove(&c);
                self.watched.remove(&c);
            }
            Control::Resume(client, last_id) => self.resumes.push((client, last_id)),
        }
    }

    /// Makes the subscriptions match the watched channels, in batches;
    /// a channel new to this node starts from the counter as it is now.
    async fn resubscribe(
        &mut self,
        sub: &mut Subscriber,
        subscribed: &mut HashSet<String>,
    ) -> Result<(), Failure> {
        let added: Vec<String> = self.watched.difference(subscribed).cloned().collect();
        let removed: Vec<String> = subscribed.difference(&self.watched).cloned().collect();
        if !removed.is_empty() {
            let names: Vec<String> = removed.iter().map(|c| self.keys.of(c)).collect();
            sub.subscribe(&names, false).await?;
            removed.iter().for_each(|c| {
                subscribed.remove(c);
            });
        }
        if !added.is_empty() {
            let names: Vec<String> = added.iter().map(|c| self.keys.of(c)).collect();
            sub.subscribe(&names, true).await?;
            let now = self.read(&[]).await?.seq;
            for c in added {
                self.since.insert(c.clone(), now);
                subscribed.insert(c);
            }
        }
        self.shared
            .subscriptions
            .store(subscribed.len() as u64, Relaxed);
        Ok(())
    }

    async fn read(&self, asks: &[Ask]) -> Result<Read, Failure> {
        read(
            &self.link,
            self.keys.epoch(),
            self.history,
            asks,
            EXCHANGE_TIMEOUT,
        )
        .await
    }

    /// A live event: delivered unless this node has it already.
    fn on_message(&mut self, payload: &[u8]) {
        let Some(event) = crate::bus::wire::decode(payload) else {
            return;
        };
        if event.seq <= self.last {
            return;
        }
        self.last = event.seq;
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        deliver(&hub, &event);
        hub.prune_holds(event.seq);
    }

    /// What a catch-up reads: every watched channel and the broadcasts,
    /// each from the newest of the last id delivered, the counter when
    /// this node first subscribed and when it subscribed to the channel.
    fn watched_targets(&self) -> Vec<Watched> {
        let from = |since: Option<u64>| {
            self.last
                .max(self.floor.unwrap_or(0))
                .max(since.unwrap_or(0))
                + 1
        };
        std::iter::once(None)
            .chain(self.watched.iter().map(Some))
            .map(|channel| Watched {
                ask: Ask {
                    key: self.keys.storage(channel.map(String::as_str), self.history),
                    from: from(channel.and_then(|c| self.since.get(c).copied())),
                },
                channel: channel.cloned(),
            })
            .collect()
    }

    /// Right after (re)subscribing. The first time, only notes where
    /// Redis is; after a loss, delivers from the streams what arrived
    /// meanwhile, and tells the clients concerned of what it cannot (see
    /// the gap rules above).
    async fn caught_up_after(&mut self, rejoined: bool) -> Result<(), Failure> {
        let targets = if rejoined {
            self.watched_targets()
        } else {
            Vec::new()
        };
        let asks: Vec<Ask> = targets.iter().map(|t| t.ask.clone()).collect();
        let read = self.read(&asks).await?;
        if self.floor.is_none() {
            self.floor = Some(read.seq);
            self.start = Some(read.start);
            return Ok(());
        }
        let Some(hub) = self.hub.upgrade() else {
            return Ok(());
        };
        if read.seq < self.last {
            // Redis went back (an older snapshot): numbers will be handed
            // out again, and nothing it holds is comparable with ours.
            self.gap_all();
            self.restart_numbers(read.seq);
            self.start = Some(read.start);
            return Ok(());
        }
        let new_epoch = self.start != Some(read.start);
        // Events of the new epoch delivered live: it began while we were
        // connected (its ids are above the old ones).
        let seen_begin = self.start.is_some_and(|s| read.start > s) && self.last > read.start;
        let cut_too_long = self.alive.is_some_and(|a| a.elapsed() >= self.ttl);
        self.start = Some(read.start);
        if (new_epoch && !seen_begin) || cut_too_long {
            self.gap_all();
        } else {
            self.gap_where_missed(&hub, &targets, &read.missed);
        }
        if new_epoch && !seen_begin && read.start < self.last {
            // Numbered from below what we delivered (Redis's clock went
            // back): start from the epoch, or its events would be skipped.
            self.restart_numbers(read.start);
        }
        for event in read.events.values() {
            if event.seq > self.last {
                self.last = event.seq;
                deliver(&hub, event);
                self.shared.caught_up.fetch_add(1, Relaxed);
            }
        }
        Ok(())
    }

    /// Numbers start again at `at`: the last delivered and the catch-up
    /// bounds go back with them.
    fn restart_numbers(&mut self, at: u64) {
        self.last = at;
        self.floor = Some(at);
        self.since.values_mut().for_each(|s| *s = at);
    }

    /// `ssehub-gap` to the members of each target that missed events.
    fn gap_where_missed(&self, hub: &Hub, targets: &[Watched], missed: &[bool]) {
        for (target, _) in targets.iter().zip(missed).filter(|(_, m)| **m) {
            let only = target.channel.as_deref().map(|c| [c]);
            let to = only.as_ref().map_or(Target::All, |c| Target::Channels(c));
            self.gap(hub, to);
        }
    }

    fn gap_all(&self) {
        if let Some(hub) = self.hub.upgrade() {
            self.gap(&hub, Target::All);
        }
    }

    /// The gap names the last id delivered (with history; without it the
    /// clients have no ids, and it names none).
    fn gap(&self, hub: &Hub, to: Target<'_>) {
        let last = if self.history > 0 {
            self.last.to_string()
        } else {
            String::new()
        };
        if let Ok(frame) = gap_frame(&last) {
            let reached = hub.fan_out(to, frame, Origin::Notice);
            self.shared.gaps.fetch_add(reached as u64, Relaxed);
        }
    }

    /// Replays what the waiting clients missed.
    async fn resume_waiting(&mut self) -> Result<(), Failure> {
        if self.resumes.is_empty() {
            return Ok(());
        }
        let Some(hub) = self.hub.upgrade() else {
            self.resumes.clear();
            return Ok(());
        };
        let waiting = std::mem::take(&mut self.resumes);
        let mut asks = Vec::with_capacity(waiting.len());
        for (client, last_id) in &waiting {
            let from = last_id.parse::<u64>().map_or(0, |n| n.saturating_add(1));
            let channels =
                std::iter::once(None).chain(hub.channels_of(*client).into_iter().map(Some));
            let targets = channels.map(|c| Ask {
                key: self.keys.storage(c.as_deref(), self.history),
                from,
            });
            asks.push(targets.collect::<Vec<_>>());
        }
        let epoch = self.keys.epoch();
        let reads = match read_many(&self.link, epoch, self.history, &asks, EXCHANGE_TIMEOUT).await
        {
            Ok(reads) => reads,
            Err(e) => {
                self.resumes = waiting;
                return Err(e);
            }
        };
        for ((client, last_id), read) in waiting.iter().zip(reads) {
            self.release(&hub, *client, last_id, read);
        }
        Ok(())
    }

    fn release(&self, hub: &Hub, client: ClientId, last_id: &str, read: Read) {
        let after = last_id.parse::<u64>().ok();
        // An id from the future: Redis went back (restored from an older
        // snapshot); nothing it holds is comparable with it.
        let future = after.is_some_and(|n| n > read.seq);
        // No id of ours, or one from before Redis last lost its data: all
        // the streams hold is new to the client, and some was lost.
        let before = after.is_none_or(|n| n < read.start);
        // Ids read as the time they were handed out: past the TTL, a
        // stream of the client's may have expired with events for it.
        let ttl_us = self.ttl.as_micros() as u64;
        let aged = after.is_some_and(|n| read.now_us.saturating_sub(n) >= ttl_us);
        let trimmed = read.missed.iter().any(|m| *m);
        let gap = (future || before || aged || trimmed).then_some(last_id);
        if gap.is_some() {
            self.shared.gaps.fetch_add(1, Relaxed);
        }
        let replay: Vec<(u64, Bytes)> = if future {
            Vec::new()
        } else {
            read.events
                .values()
                .filter_map(|e| frame_of(e).map(|f| (e.seq, f)))
                .collect()
        };
        let after = if future || before {
            0
        } else {
            after.unwrap_or(0)
        };
        hub.release(client, after, gap, replay);
    }
}

fn frame_of(event: &Numbered) -> Option<Bytes> {
    event
        .message
        .frame(event.numbered.then_some(event.seq))
        .ok()
}

fn deliver(hub: &Hub, event: &Numbered) {
    let Some(frame) = frame_of(event) else { return };
    let origin = Origin::Numbered(event.seq);
    crate::bus::fan_out(hub, event.message.channels.as_deref(), frame, origin);
}

/// The pause before reconnect attempt `failures` + 1: doubling, capped,
/// and jittered over its whole range, so nodes that lost the same Redis
/// do not all come back in the same millisecond.
pub(super) fn backoff(failures: u32) -> Duration {
    let ceiling = BACKOFF_FIRST
        .saturating_mul(1u32 << failures.min(10))
        .min(BACKOFF_MAX);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let nanos = ceiling.as_nanos() as u64;
    Duration::from_nanos(nanos / 2 + random % (nanos / 2).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_varies() {
        assert!(backoff(0) <= BACKOFF_FIRST);
        assert!(backoff(20) <= BACKOFF_MAX);
        assert!(backoff(20) >= BACKOFF_MAX / 2);
        let spread: HashSet<Duration> = (0..20).map(|_| backoff(5)).collect();
        assert!(spread.len() > 1, "no jitter");
    }
}
