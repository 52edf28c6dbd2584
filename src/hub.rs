//! The hub: every connected client, the channels they joined, the fan-out
//! of framed events to their queues, heartbeats and the replay ring.
//!
//! The hub never touches a socket. A transport registers a client, gets a
//! [`Subscription`] (the consumer end of that client's [`Queue`]) and writes
//! whatever it yields; dropping the subscription unregisters the client and
//! reports the close. Both the Node binding and every daemon mode use it.

use crate::frame::{self, Event, FrameError};
use crate::queue::{CloseReason, Pushed, Queue};
use crate::replay::{Recorded, ReplayRing, Resume};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::Waker;
use std::time::Duration;
use tokio::runtime::Handle;

/// A client's number, unique within its hub.
pub type ClientId = u32;

/// The event sent to a client whose `Last-Event-ID` is not in the history:
/// its data is the id the client asked to resume from.
pub const GAP_EVENT: &str = "ssehub-gap";

/// Tunables of a hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Bytes a client may have queued before it is closed as `Slow`.
    pub max_queue_bytes: usize,
    /// Number of recent broadcast/published events kept for replay.
    pub history: usize,
    /// Frame bytes the replay history may hold; 0 means no byte bound.
    pub history_bytes: usize,
    /// Interval of `:` comments on idle streams; `None` turns them off.
    pub heartbeat: Option<Duration>,
    /// Clients allowed at once; 0 means no limit.
    pub max_clients: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_queue_bytes: 1 << 20,
            history: 0,
            history_bytes: 16 << 20,
            heartbeat: Some(Duration::from_secs(15)),
            max_clients: 0,
        }
    }
}

/// Counters for `stats()` and the daemon's metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub clients: u64,
    pub connected_total: u64,
    pub events_published: u64,
    pub events_delivered: u64,
    pub dropped_slow: u64,
    pub channels: u64,
}

/// Why a client could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// `max_clients` are connected already.
    Full,
    /// The hub was shut down.
    Closed,
}

type CloseHook = Box<dyn Fn(ClientId, CloseReason) + Send + Sync>;

/// Told when a channel gets its first member (`true`) or loses its last
/// (`false`); called under the channel index lock, so the calls for one
/// channel arrive in order. It must not block (the Redis bus queues).
type ChannelHook = Box<dyn Fn(&str, bool) + Send + Sync>;

/// A client being resumed from a bus (see [`Hub::hold`]): live events
/// numbered up to `after` are ones it has (or is being replayed), and
/// while `pending` is set, newer ones wait there for the replay to go first.
struct Hold {
    after: u64,
    pending: Option<Vec<(u64, Bytes)>>,
}

/// One registered client, as the hub sees it.
struct Client {
    queue: Queue,
    channels: Mutex<Joined>,
}

/// The channels of one client. `gone` is set, under the same lock, when
/// the client unregisters: a `join` racing with that sees it and does not
/// leave a dangling id in the channel index.
#[derive(Default)]
struct Joined {
    names: Vec<Arc<str>>,
    gone: bool,
}

#[derive(Default)]
struct Counters {
    connected_total: AtomicU64,
    events_published: AtomicU64,
    events_delivered: AtomicU64,
    dropped_slow: AtomicU64,
}

struct Inner {
    config: HubConfig,
    clients: RwLock<HashMap<ClientId, Arc<Client>>>,
    channels: RwLock<HashMap<Arc<str>, HashSet<ClientId>>>,
    history: Mutex<ReplayRing>,
    next_id: AtomicU32,
    closed: AtomicBool,
    counters: Counters,
    on_close: RwLock<Option<CloseHook>>,
    on_channel: RwLock<Option<ChannelHook>>,
    holds: Mutex<HashMap<ClientId, Hold>>,
    /// `holds.len()`, read without the lock on every numbered fan-out.
    held: AtomicUsize,
    /// The runtime to hand batched wake-ups to (none outside a runtime:
    /// then every wake-up is made at once).
    runtime: Option<Handle>,
    /// When set, pushes from outside the runtime leave their wakers in
    /// `pending_wakes` for one runtime task to wake. Waking a tokio task
    /// from a foreign thread costs a queue lock and often a futex call;
    /// done 10,000 times per broadcast on Node's thread, that was most of
    /// the JS thread's time. Batched, it costs one task spawn.
    defer_wakes: AtomicBool,
    pending_wakes: Mutex<Vec<Waker>>,
    /// A fan-out left to a runtime thread: see [`Hub::offload`].
    offloaded: Mutex<Option<Offloaded>>,
    /// Set while `offloaded` holds one, read without its lock by `settle`.
    has_offloaded: AtomicBool,
    /// Clients registered and not closing: what an offloaded broadcast
    /// reports as reached before its pushes are made.
    open: Arc<AtomicUsize>,
}

/// A fan-out whose pushes a runtime thread makes (see [`Hub::offload`]).
enum Offloaded {
    /// To every client.
    Everyone(Bytes),
    /// To each of these clients, in order, once per mention.
    These(Vec<ClientId>, Bytes),
}

/// What one fan-out did, for the shared counters.
#[derive(Default)]
struct Tally {
    delivered: u64,
    slow: u64,
}

impl Tally {
    /// Counts one push; true if it was queued.
    fn count(&mut self, pushed: Pushed) -> bool {
        match pushed {
            Pushed::Queued => self.delivered += 1,
            Pushed::TooSlow => self.slow += 1,
            Pushed::Closed => {}
        }
        pushed == Pushed::Queued
    }
}

/// Pending wakers past this many are handed off at once, so a long
/// synchronous loop of single sends still gets written while it runs.
const MAX_PENDING_WAKES: usize = 1024;

/// A cheap, cloneable handle to one hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// A handle that does not keep its hub alive (see [`Hub::downgrade`]).
#[derive(Clone)]
pub struct WeakHub {
    inner: Weak<Inner>,
}

impl WeakHub {
    /// The hub, if anything else still holds it.
    pub fn upgrade(&self) -> Option<Hub> {
        self.inner.upgrade().map(|inner| Hub { inner })
    }
}

/// The consumer end of one client. Dropping it unregisters the client.
pub struct Subscription {
    hub: Hub,
    id: ClientId,
    client: Arc<Client>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Creates a hub. With a heartbeat configured this spawns its ticker on
    /// the current tokio runtime, so call it inside one; without, anywhere.
    pub fn new(config: HubConfig) -> Hub {
        let hub = Hub {
            inner: Arc::new(Inner {
                history: Mutex::new(ReplayRing::bounded(config.history, config.history_bytes)),
                config,
                clients: RwLock::default(),
                channels: RwLock::default(),
                next_id: AtomicU32::new(1),
                closed: AtomicBool::new(false),
                counters: Counters::default(),
                on_close: RwLock::new(None),
                on_channel: RwLock::new(None),
                holds: Mutex::default(),
                held: AtomicUsize::new(0),
                runtime: Handle::try_current().ok(),
                defer_wakes: AtomicBool::new(false),
                pending_wakes: Mutex::new(Vec::new()),
                offloaded: Mutex::new(None),
                has_offloaded: AtomicBool::new(false),
                open: Arc::default(),
            }),
        };
        if let Some(every) = hub.inner.config.heartbeat {
            tokio::spawn(heartbeats(Arc::downgrade(&hub.inner), every));
        }
        hub
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// A handle for hooks that must not keep the hub alive.
    pub fn downgrade(&self) -> WeakHub {
        WeakHub {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Sets the function told of every client that leaves, and why.
    pub fn on_close(&self, hook: impl Fn(ClientId, CloseReason) + Send + Sync + 'static) {
        *write(&self.inner.on_close) = Some(Box::new(hook));
    }

    /// Sets the function told when a channel gains its first member or
    /// loses its last (a bus subscribes and unsubscribes with it).
    pub fn on_channel(&self, hook: impl Fn(&str, bool) + Send + Sync + 'static) {
        *write(&self.inner.on_channel) = Some(Box::new(hook));
    }

    fn channel_changed(&self, channel: &str, has_members: bool) {
        if let Some(hook) = &*read(&self.inner.on_channel) {
            hook(channel, has_members);
        }
    }

    /// Adds a client.
    pub fn register(&self) -> Result<Subscription, RegisterError> {
        let client = Arc::new(Client {
            queue: Queue::counted(self.inner.config.max_queue_bytes, self.inner.open.clone()),
            channels: Mutex::default(),
        });
        let mut clients = write(&self.inner.clients);
        // Checked under the lock `close_all` reads the clients with: a client
        // is either refused here or seen (and closed) by `close_all`.
        if self.inner.closed.load(Relaxed) {
            return Err(RegisterError::Closed);
        }
        let max = self.inner.config.max_clients;
        if max > 0 && clients.len() >= max {
            return Err(RegisterError::Full);
        }
        let id = loop {
            let id = self.inner.next_id.fetch_add(1, Relaxed);
            if id != 0 && !clients.contains_key(&id) {
                break id;
            }
        };
        clients.insert(id, client.clone());
        // Under the lock, so `close_all` (which closes it) comes after.
        self.inner.open.fetch_add(1, Relaxed);
        drop(clients);
        self.inner.counters.connected_total.fetch_add(1, Relaxed);
        Ok(Subscription {
            hub: self.clone(),
            id,
            client,
        })
    }

    fn client(&self, id: ClientId) -> Option<Arc<Client>> {
        read(&self.inner.clients).get(&id).cloned()
    }

    /// Queues a frame to one client; false if it is gone or closing.
    pub fn send_to(&self, id: ClientId, frame: Bytes) -> bool {
        let Some(client) = self.client(id) else {
            return false;
        };
        let (queued, waker) = self.deliver(&client, frame);
        if let Some(waker) = waker {
            self.wake_later(waker);
        }
        queued
    }

    /// Frames and queues an event to one client.
    pub fn send_event(&self, id: ClientId, event: &Event) -> Result<bool, FrameError> {
        Ok(self.send_framed(id, event.encode()?))
    }

    /// Queues an event already framed to one client, counted as one
    /// published event (an empty frame is nothing to send, and succeeds).
    pub fn send_framed(&self, id: ClientId, frame: Bytes) -> bool {
        self.inner.counters.events_published.fetch_add(1, Relaxed);
        frame.is_empty() || self.send_to(id, frame)
    }

    /// Queues a frame; returns whether it was queued and the writer's
    /// waker, for the caller to wake (or batch).
    fn deliver(&self, client: &Client, frame: Bytes) -> (bool, Option<Waker>) {
        let (pushed, waker) = client.queue.push_deferred(frame);
        let mut tally = Tally::default();
        let queued = tally.count(pushed);
        self.commit(tally);
        (queued, waker)
    }

    /// [`Hub::deliver`] for fan-outs: the waker goes into `wakers`.
    fn deliver_into(&self, client: &Client, frame: Bytes, wakers: &mut Vec<Waker>) -> bool {
        let (queued, waker) = self.deliver(client, frame);
        wakers.extend(waker);
        queued
    }

    /// [`Hub::deliver_into`] for the big fan-outs: counted in `tally`, and
    /// the shared counters are added to once per fan-out, not per client.
    fn deliver_tallied(
        &self,
        client: &Client,
        frame: Bytes,
        wakers: &mut Vec<Waker>,
        tally: &mut Tally,
    ) -> bool {
        let (pushed, waker) = client.queue.push_deferred(frame);
        wakers.extend(waker);
        tally.count(pushed)
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

    /// Frames an event once and queues it to every client. Returns how
    /// many clients it was queued to.
    pub fn broadcast(&self, event: &Event) -> Result<usize, FrameError> {
        let frame = event.encode()?;
        Ok(self.broadcast_frame(frame, event.id))
    }

    /// Queues a ready frame to every client and records it for replay.
    pub fn broadcast_frame(&self, frame: Bytes, id: Option<&str>) -> usize {
        if frame.is_empty() {
            return 0;
        }
        self.record(&frame, id, None);
        self.fan_out_all(frame, None)
    }

    /// Frames an event once and queues it to every member of any of the
    /// channels, once per client.
    pub fn publish(&self, channels: &[&str], event: &Event) -> Result<usize, FrameError> {
        let frame = event.encode()?;
        Ok(self.publish_frame(channels, frame, event.id))
    }

    /// Queues a ready frame to the members of `channels`, once each.
    pub fn publish_frame(&self, channels: &[&str], frame: Bytes, id: Option<&str>) -> usize {
        if frame.is_empty() || channels.is_empty() {
            return 0;
        }
        self.record(&frame, id, Some(channels));
        self.fan_out(channels, frame, None)
    }

    /// Delivers an event a bus numbered `seq` (its history is the bus's,
    /// not this hub's): to every client when `channels` is `None`. Held
    /// clients get it after their replay, or not at all if they have it.
    pub fn deliver_numbered(&self, channels: Option<&[&str]>, frame: Bytes, seq: u64) -> usize {
        if frame.is_empty() {
            return 0;
        }
        self.inner.counters.events_published.fetch_add(1, Relaxed);
        match channels {
            None => self.fan_out_all(frame, Some(seq)),
            Some([]) => 0,
            Some(channels) => self.fan_out(channels, frame, Some(seq)),
        }
    }

    fn fan_out_all(&self, frame: Bytes, seq: Option<u64>) -> usize {
        let clients = read(&self.inner.clients);
        self.fan_out_to(
            clients.iter().map(|(id, c)| (*id, c)),
            clients.len(),
            frame,
            seq,
        )
    }

    fn fan_out(&self, channels: &[&str], frame: Bytes, seq: Option<u64>) -> usize {
        self.fan_out_listed(&self.members_of(channels), frame, seq)
    }

    /// To each of `ids` still connected, in order, once per mention.
    fn fan_out_listed(&self, ids: &[ClientId], frame: Bytes, seq: Option<u64>) -> usize {
        let clients = read(&self.inner.clients);
        let found = ids
            .iter()
            .filter_map(|id| clients.get(id).map(|c| (*id, c)));
        self.fan_out_to(found, ids.len(), frame, seq)
    }

    fn fan_out_to<'a>(
        &self,
        targets: impl Iterator<Item = (ClientId, &'a Arc<Client>)>,
        size: usize,
        frame: Bytes,
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
                if let Some(hold) = holds.get_mut(&id) {
                    if seq <= hold.after {
                        continue;
                    }
                    if let Some(pending) = &mut hold.pending {
                        pending.push((seq, frame.clone()));
                        continue;
                    }
                }
            }
            reached +=
                usize::from(self.deliver_tallied(client, frame.clone(), &mut wakers, &mut tally));
        }
        drop(holds);
        self.commit(tally);
        self.wake_now(wakers);
        reached
    }

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
    pub fn release(&self, id: ClientId, after: u64, gap: Option<&str>, replay: Vec<(u64, Bytes)>) {
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
            self.deliver_into(&client, frame, &mut wakers);
        }
        let mut seen = after.max(hold.after);
        for (seq, frame) in replay
            .into_iter()
            .chain(hold.pending.take().unwrap_or_default())
        {
            if seq > seen {
                seen = seq;
                self.deliver_into(&client, frame, &mut wakers);
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

    fn unhold(&self, id: ClientId) {
        if self.inner.held.load(Relaxed) == 0 {
            return;
        }
        let mut holds = lock(&self.inner.holds);
        holds.remove(&id);
        self.inner.held.store(holds.len(), Relaxed);
    }

    /// Sends `frame` (a gap event, say) to the members of `channels`, or
    /// to every client; not recorded, not counted as published.
    pub fn notify(&self, channels: Option<&[&str]>, frame: Bytes) -> usize {
        match channels {
            None => self.fan_out_all(frame, None),
            Some(channels) => self.fan_out(channels, frame, None),
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

    fn record(&self, frame: &Bytes, id: Option<&str>, channels: Option<&[&str]>) {
        self.inner.counters.events_published.fetch_add(1, Relaxed);
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

    /// Adds a client to a channel. False if the client is gone.
    pub fn join(&self, id: ClientId, channel: &str) -> bool {
        let Some(client) = self.client(id) else {
            return false;
        };
        let mut joined = lock(&client.channels);
        if joined.gone {
            return false;
        }
        if joined.names.iter().any(|c| &**c == channel) {
            return true;
        }
        let mut index = write(&self.inner.channels);
        let name = match index.get_key_value(channel) {
            Some((name, _)) => name.clone(),
            None => {
                self.channel_changed(channel, true);
                Arc::from(channel)
            }
        };
        index.entry(name.clone()).or_default().insert(id);
        joined.names.push(name);
        true
    }

    /// Removes a client from a channel. False if it was not a member.
    pub fn leave(&self, id: ClientId, channel: &str) -> bool {
        let Some(client) = self.client(id) else {
            return false;
        };
        let mut joined = lock(&client.channels);
        let Some(at) = joined.names.iter().position(|c| &**c == channel) else {
            return false;
        };
        joined.names.swap_remove(at);
        self.unindex(id, channel);
        true
    }

    fn unindex(&self, id: ClientId, channel: &str) {
        let mut index = write(&self.inner.channels);
        if let Some(members) = index.get_mut(channel) {
            members.remove(&id);
            if members.is_empty() {
                index.remove(channel);
                self.channel_changed(channel, false);
            }
        }
    }

    /// The channels a client has joined.
    pub fn channels_of(&self, id: ClientId) -> Vec<String> {
        self.client(id)
            .map(|c| {
                lock(&c.channels)
                    .names
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of members of a channel.
    pub fn channel_size(&self, channel: &str) -> usize {
        read(&self.inner.channels)
            .get(channel)
            .map_or(0, |s| s.len())
    }

    /// The `n` channels with the most members, biggest first (for a status
    /// page): one pass over the index, no copy of the member sets.
    pub fn largest_channels(&self, n: usize) -> Vec<(String, usize)> {
        let index = read(&self.inner.channels);
        let mut sizes: Vec<(&str, usize)> = index.iter().map(|(c, m)| (&**c, m.len())).collect();
        sizes.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        sizes
            .into_iter()
            .take(n)
            .map(|(c, len)| (c.to_string(), len))
            .collect()
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
                    self.deliver_into(&client, frame, &mut wakers);
                }
                events
            }
        };
        let mut replayed = 0;
        for event in missed.into_iter().filter(|e| e.reaches(&joined)) {
            replayed += usize::from(self.deliver_into(&client, event.frame.clone(), &mut wakers));
        }
        drop(history);
        self.wake_now(wakers);
        replayed
    }

    /// Batches writer wake-ups made from outside the runtime (the Node
    /// thread): see `Inner::defer_wakes`. Call [`Hub::flush_wakes`] when a
    /// burst of sends is over.
    pub fn defer_wakes(&self, on: bool) {
        self.inner.defer_wakes.store(on, Relaxed);
    }

    /// Wakes the writers of every frame queued since the last flush.
    pub fn flush_wakes(&self) {
        let wakers = std::mem::take(&mut *lock(&self.inner.pending_wakes));
        self.wake_now(wakers);
    }

    /// Wakes at once, from a runtime thread when deferring.
    fn wake_now(&self, wakers: Vec<Waker>) {
        if wakers.is_empty() {
            return;
        }
        match &self.inner.runtime {
            Some(rt) if self.inner.defer_wakes.load(Relaxed) && Handle::try_current().is_err() => {
                rt.spawn(async move { wakers.into_iter().for_each(Waker::wake) });
            }
            _ => wakers.into_iter().for_each(Waker::wake),
        }
    }

    /// Wakes at once, or when deferring, at the next flush (or once
    /// enough are pending).
    fn wake_later(&self, waker: Waker) {
        if !self.inner.defer_wakes.load(Relaxed) {
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

    /// [`Hub::broadcast_frame`] whose pushes a runtime thread makes. For
    /// the Node binding: paced, the 10,000 pushes of a broadcast touch
    /// 10,000 queues last touched by the writer thread, and were most of
    /// Node's thread's time. Returns the open clients it is for (one found
    /// too slow as it is pushed is counted; it is closed as `Slow`).
    ///
    /// Its caller must call [`Hub::settle`] before anything else it asks
    /// of the hub, so every effect stays in the order it was asked for.
    pub fn broadcast_offloaded(&self, frame: Bytes, id: Option<&str>) -> usize {
        if frame.is_empty() {
            return 0;
        }
        self.record(&frame, id, None);
        self.offload(Offloaded::Everyone(frame));
        self.inner.open.load(Relaxed)
    }

    /// [`Hub::send_framed`] to many clients, in order, once per mention;
    /// a runtime thread makes the pushes (see [`Hub::broadcast_offloaded`]).
    pub fn send_framed_to_many(&self, ids: &[ClientId], frame: Bytes) {
        self.inner
            .counters
            .events_published
            .fetch_add(ids.len() as u64, Relaxed);
        if !frame.is_empty() && !ids.is_empty() {
            self.offload(Offloaded::These(ids.to_vec(), frame));
        }
    }

    /// Leaves a fan-out for a runtime task. At most one waits: an earlier
    /// one the runtime has not started yet is run here first (in a burst,
    /// the writers keep the runtime busy and the caller's thread does the
    /// pushes, as without offloading).
    fn offload(&self, fan_out: Offloaded) {
        let Some(rt) = &self.inner.runtime else {
            return self.run(fan_out);
        };
        let mut slot = lock(&self.inner.offloaded);
        if let Some(earlier) = slot.replace(fan_out) {
            self.run(earlier);
        }
        self.inner.has_offloaded.store(true, Relaxed);
        drop(slot);
        let hub = self.downgrade();
        rt.spawn(async move {
            if let Some(hub) = hub.upgrade() {
                hub.settle();
            }
        });
    }

    /// Makes the pushes of an offloaded fan-out now, if the runtime has not
    /// (and waits for it, if it is making them).
    pub fn settle(&self) {
        // Acquire: pushes the runtime made are seen once it says none wait.
        if !self.inner.has_offloaded.load(Acquire) {
            return;
        }
        // Held while the pushes are made: a caller waits for them.
        let mut slot = lock(&self.inner.offloaded);
        if let Some(fan_out) = slot.take() {
            self.run(fan_out);
        }
        self.inner.has_offloaded.store(false, Release);
    }

    fn run(&self, fan_out: Offloaded) {
        match fan_out {
            Offloaded::Everyone(frame) => {
                self.fan_out_all(frame, None);
            }
            Offloaded::These(ids, frame) => {
                self.fan_out_listed(&ids, frame, None);
            }
        }
    }

    /// Starts closing one client (it flushes what is queued first).
    pub fn close_client(&self, id: ClientId, reason: CloseReason) -> bool {
        let closed = self.client(id).is_some_and(|c| c.queue.close(reason));
        if closed && reason == CloseReason::Slow {
            self.inner.counters.dropped_slow.fetch_add(1, Relaxed);
        }
        closed
    }

    /// Closes every client with `reason` and refuses new ones.
    pub fn close_all(&self, reason: CloseReason) {
        let clients = read(&self.inner.clients);
        // Set under the lock: see `register`.
        self.inner.closed.store(true, Relaxed);
        for client in clients.values() {
            client.queue.close(reason);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Relaxed)
    }

    pub fn client_count(&self) -> usize {
        read(&self.inner.clients).len()
    }

    pub fn queued_bytes(&self, id: ClientId) -> Option<usize> {
        self.client(id).map(|c| c.queue.queued_bytes())
    }

    pub fn history_len(&self) -> usize {
        lock(&self.inner.history).len()
    }

    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            clients: self.client_count() as u64,
            connected_total: c.connected_total.load(Relaxed),
            events_published: c.events_published.load(Relaxed),
            events_delivered: c.events_delivered.load(Relaxed),
            dropped_slow: c.dropped_slow.load(Relaxed),
            channels: read(&self.inner.channels).len() as u64,
        }
    }

    fn unregister(&self, id: ClientId, client: &Client) {
        let reason = client.queue.closing().unwrap_or(CloseReason::Client);
        client.queue.close(reason);
        write(&self.inner.clients).remove(&id);
        self.unhold(id);
        let joined = {
            let mut joined = lock(&client.channels);
            joined.gone = true;
            std::mem::take(&mut joined.names)
        };
        for channel in joined {
            self.unindex(id, &channel);
        }
        if let Some(hook) = &*read(&self.inner.on_close) {
            hook(id, reason);
        }
    }
}

impl Subscription {
    pub fn id(&self) -> ClientId {
        self.id
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Waits for the next batch of frames; `Err` once the client is closed
    /// and everything it should still receive has been taken.
    pub async fn next_batch(
        &self,
        batch: &mut std::collections::VecDeque<Bytes>,
    ) -> Result<(), CloseReason> {
        self.client.queue.next_batch(batch).await
    }

    /// Poll form of [`Subscription::next_batch`], for `Body` impls.
    pub fn poll_batch(
        &self,
        cx: &mut std::task::Context<'_>,
        batch: &mut std::collections::VecDeque<Bytes>,
    ) -> std::task::Poll<Result<(), CloseReason>> {
        self.client.queue.poll_batch(cx, batch)
    }

    /// Resolves once the client is closed for a reason that drops its
    /// queue (slow, timeout, peer gone). See [`Queue::poll_aborted`].
    pub async fn aborted(&self) -> CloseReason {
        std::future::poll_fn(|cx| self.poll_aborted(cx)).await
    }

    /// Poll form of [`Subscription::aborted`].
    pub fn poll_aborted(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<CloseReason> {
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

/// The [`GAP_EVENT`] for a client that asked to resume from `last_id`.
pub fn gap_frame(last_id: &str) -> Result<Bytes, FrameError> {
    Event {
        event: Some(GAP_EVENT),
        data: Some(last_id),
        ..Event::default()
    }
    .encode()
}

/// Queues a heartbeat to every client that was idle for a whole interval.
/// Ends when the hub is dropped.
async fn heartbeats(hub: Weak<Inner>, every: Duration) {
    let beat = Bytes::from_static(frame::HEARTBEAT);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = hub.upgrade() else { return };
        let clients: Vec<Arc<Client>> = read(&inner.clients).values().cloned().collect();
        for client in clients {
            client.queue.heartbeat_if_idle(&beat);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn hub(history: usize) -> Hub {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        Hub::new(HubConfig {
            history,
            heartbeat: None,
            ..HubConfig::default()
        })
    }

    fn drain(sub: &Subscription) -> Vec<String> {
        let mut batch = VecDeque::new();
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let _ = sub.poll_batch(&mut cx, &mut batch);
        batch
            .into_iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn broadcast_reaches_every_client_once() {
        let hub = hub(0);
        let subs: Vec<_> = (0..300).map(|_| hub.register().unwrap()).collect();
        for n in 0..5 {
            let data = n.to_string();
            assert_eq!(hub.broadcast(&Event::data(&data)).unwrap(), 300);
        }
        for sub in &subs {
            let want: Vec<String> = (0..5).map(|n| format!("data: {n}\n\n")).collect();
            assert_eq!(drain(sub), want);
        }
        assert_eq!(hub.stats().events_delivered, 1500);
    }

    #[test]
    fn a_member_of_two_channels_gets_a_publish_once() {
        let hub = hub(0);
        let a = hub.register().unwrap();
        let b = hub.register().unwrap();
        let outsider = hub.register().unwrap();
        hub.join(a.id(), "x");
        hub.join(a.id(), "y");
        hub.join(b.id(), "y");
        assert_eq!(hub.publish(&["x", "y"], &Event::data("hi")).unwrap(), 2);
        assert_eq!(drain(&a), ["data: hi\n\n"]);
        assert_eq!(drain(&b), ["data: hi\n\n"]);
        assert!(drain(&outsider).is_empty());
        assert!(hub.leave(a.id(), "x"));
        assert!(!hub.leave(a.id(), "x"));
        assert_eq!(hub.channel_size("x"), 0);
    }

    #[test]
    fn dropping_a_subscription_unregisters_and_reports() {
        let hub = hub(0);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        hub.on_close(move |id, why| lock(&log).push((id, why)));
        let sub = hub.register().unwrap();
        let id = sub.id();
        hub.join(id, "room");
        hub.close_client(id, CloseReason::Server);
        drop(sub);
        assert_eq!(hub.client_count(), 0);
        assert_eq!(hub.channel_size("room"), 0);
        assert_eq!(*lock(&seen), [(id, CloseReason::Server)]);
        assert!(!hub.send_to(id, Bytes::from_static(b"x")));
    }

    #[test]
    fn replay_sends_missed_events_of_joined_channels() {
        let hub = hub(10);
        for n in 1..=4 {
            let id = n.to_string();
            let e = Event {
                id: Some(&id),
                ..Event::data("b")
            };
            hub.broadcast(&e).unwrap();
            let e = Event {
                id: None,
                ..Event::data("secret")
            };
            hub.publish(&["other"], &e).unwrap();
        }
        let sub = hub.register().unwrap();
        assert_eq!(hub.replay(sub.id(), "2"), 2);
        assert_eq!(drain(&sub), ["id: 3\ndata: b\n\n", "id: 4\ndata: b\n\n"]);
        assert_eq!(hub.replay(sub.id(), "unknown"), 4);
        let got = drain(&sub);
        assert_eq!(got[0], "event: ssehub-gap\ndata: unknown\n\n");
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn a_held_client_gets_its_replay_then_live_events_once_each() {
        let hub = hub(0);
        let sub = hub.register().unwrap();
        let other = hub.register().unwrap();
        hub.hold(sub.id());
        hub.join(sub.id(), "c");
        hub.join(other.id(), "c");
        let frame = |n: u64| Bytes::from(format!("id: {n}\n\n"));
        for n in [5, 6] {
            hub.deliver_numbered(Some(&["c"]), frame(n), n);
        }
        assert!(
            drain(&sub).is_empty(),
            "a held client got live events before its replay"
        );
        assert_eq!(drain(&other), ["id: 5\n\n", "id: 6\n\n"]);
        hub.release(sub.id(), 3, Some("3"), vec![(4, frame(4)), (5, frame(5))]);
        // Live events still on their way that the replay covered: dropped.
        hub.deliver_numbered(Some(&["c"]), frame(6), 6);
        hub.deliver_numbered(None, frame(7), 7);
        assert_eq!(
            drain(&sub),
            [
                "event: ssehub-gap\ndata: 3\n\n",
                "id: 4\n\n",
                "id: 5\n\n",
                "id: 6\n\n",
                "id: 7\n\n"
            ]
        );
        hub.prune_holds(7);
        assert_eq!(hub.inner.held.load(Relaxed), 0, "a released hold was kept");
    }

    #[test]
    fn a_frame_sent_to_many_reaches_each_listed_client_once() {
        let hub = hub(0);
        let a = hub.register().unwrap();
        let b = hub.register().unwrap();
        let gone = hub.register().unwrap();
        let gone_id = gone.id();
        drop(gone);
        let frame = Bytes::from_static(b"data: x\n\n");
        hub.send_framed_to_many(&[a.id(), gone_id, b.id(), a.id()], frame);
        hub.settle();
        assert_eq!(drain(&a), ["data: x\n\n", "data: x\n\n"]);
        assert_eq!(drain(&b), ["data: x\n\n"]);
        assert_eq!(hub.stats().events_published, 4);
        assert_eq!(hub.stats().events_delivered, 3);
    }

    #[test]
    fn the_channel_hook_hears_first_joins_and_last_leaves_in_order() {
        let hub = hub(0);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = heard.clone();
        hub.on_channel(move |c, on| lock(&log).push((c.to_string(), on)));
        let a = hub.register().unwrap();
        let b = hub.register().unwrap();
        hub.join(a.id(), "x");
        hub.join(b.id(), "x");
        hub.leave(a.id(), "x");
        drop(b);
        hub.join(a.id(), "x");
        assert_eq!(
            *lock(&heard),
            [("x".into(), true), ("x".into(), false), ("x".into(), true)]
        );
    }

    #[test]
    fn close_all_racing_register_leaves_no_open_client() {
        use std::sync::atomic::AtomicUsize;
        for _ in 0..500 {
            let hub = hub(0);
            let started = Arc::new(AtomicUsize::new(0));
            let registering: Vec<_> = (0..3)
                .map(|_| {
                    let (hub, started) = (hub.clone(), started.clone());
                    std::thread::spawn(move || {
                        let mut subs = Vec::new();
                        while let Ok(sub) = hub.register() {
                            subs.push(sub);
                            started.fetch_add(1, Relaxed);
                        }
                        subs
                    })
                })
                .collect();
            while started.load(Relaxed) < 3 {
                std::hint::spin_loop();
            }
            hub.close_all(CloseReason::Shutdown);
            for thread in registering {
                for sub in thread.join().unwrap() {
                    assert_eq!(sub.closing(), Some(CloseReason::Shutdown), "left open");
                }
            }
        }
    }

    #[test]
    fn join_racing_unregister_leaves_no_dangling_member() {
        use std::sync::atomic::AtomicBool;
        for _ in 0..300 {
            let hub = hub(0);
            let sub = hub.register().unwrap();
            let id = sub.id();
            let started = Arc::new(AtomicBool::new(false));
            let joining = {
                let (hub, started) = (hub.clone(), started.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    while hub.join(id, &format!("c{}", n % 4)) {
                        n += 1;
                        started.store(true, Relaxed);
                    }
                })
            };
            while !started.load(Relaxed) {
                std::hint::spin_loop();
            }
            drop(sub);
            joining.join().unwrap();
            assert_eq!(hub.stats().channels, 0, "a channel kept the gone client");
        }
    }

    #[test]
    fn max_clients_refuses_past_the_limit() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let hub = Hub::new(HubConfig {
            max_clients: 2,
            heartbeat: None,
            ..HubConfig::default()
        });
        let _a = hub.register().unwrap();
        let b = hub.register().unwrap();
        assert_eq!(hub.register().err(), Some(RegisterError::Full));
        drop(b);
        assert!(hub.register().is_ok());
        hub.close_all(CloseReason::Shutdown);
        assert_eq!(hub.register().err(), Some(RegisterError::Closed));
    }

    /// A hub on a live runtime with one worker, as the Node binding's is.
    fn hub_on(rt: &tokio::runtime::Runtime) -> Hub {
        let _guard = rt.enter();
        let hub = Hub::new(HubConfig {
            heartbeat: None,
            ..HubConfig::default()
        });
        hub.defer_wakes(true);
        hub
    }

    fn one_worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    fn frame(data: &str) -> Bytes {
        Event::data(data).encode().unwrap()
    }

    #[test]
    fn an_offloaded_broadcast_reports_the_open_clients_and_the_runtime_pushes_it() {
        let rt = one_worker();
        let hub = hub_on(&rt);
        let subs: Vec<_> = (0..3).map(|_| hub.register().unwrap()).collect();
        assert!(hub.close_client(subs[2].id(), CloseReason::Server));
        assert_eq!(hub.broadcast_offloaded(frame("a"), None), 2);
        // Nobody settles: the runtime's task makes the pushes.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while hub.inner.has_offloaded.load(Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the runtime never ran it"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(drain(&subs[0]), ["data: a\n\n"]);
        assert_eq!(drain(&subs[1]), ["data: a\n\n"]);
        assert!(drain(&subs[2]).is_empty());
        assert_eq!(hub.stats().events_delivered, 2);
    }

    #[test]
    fn whatever_is_asked_after_an_offloaded_fan_out_comes_after_it() {
        let rt = one_worker();
        let hub = hub_on(&rt);
        let first = hub.register().unwrap();
        // Back to back, each one's pushes made by the runtime or by the next.
        for n in 0..200 {
            hub.broadcast_offloaded(frame(&n.to_string()), None);
            hub.send_framed_to_many(&[first.id(), first.id()], frame("twice"));
        }
        hub.settle();
        assert!(hub.send_to(first.id(), frame("after")));
        let mut want = Vec::new();
        for n in 0..200 {
            want.push(format!("data: {n}\n\n"));
            want.extend(["data: twice\n\n".to_string(), "data: twice\n\n".to_string()]);
        }
        want.push("data: after\n\n".into());
        assert_eq!(drain(&first), want);
        // A client registered after `settle` gets nothing sent before it.
        hub.broadcast_offloaded(frame("before"), None);
        hub.settle();
        let late = hub.register().unwrap();
        assert!(drain(&late).is_empty());
        assert_eq!(hub.broadcast_offloaded(frame("both"), None), 2);
        hub.settle();
        assert_eq!(drain(&late), ["data: both\n\n"]);
    }

    #[test]
    fn the_open_count_follows_every_way_a_client_ends() {
        let rt = one_worker();
        let hub = hub_on(&rt);
        let mut subs: Vec<_> = (0..4).map(|_| hub.register().unwrap()).collect();
        assert_eq!(hub.inner.open.load(Relaxed), 4);
        hub.close_client(subs[0].id(), CloseReason::Server);
        hub.close_client(subs[0].id(), CloseReason::Slow); // once only
        drop(subs.pop()); // unregistered without a close
        assert_eq!(hub.inner.open.load(Relaxed), 2);
        drop(subs.remove(0)); // closed, then unregistered
        assert_eq!(hub.inner.open.load(Relaxed), 2);
        hub.close_all(CloseReason::Shutdown);
        assert_eq!(hub.inner.open.load(Relaxed), 0);
        assert_eq!(hub.broadcast_offloaded(frame("late"), None), 0);
    }
}
