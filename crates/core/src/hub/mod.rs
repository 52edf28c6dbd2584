//! The hub: every connected client, the channels they joined, the fan-out
//! of framed events to their queues, heartbeats and the replay ring.
//!
//! The hub never touches a socket. A transport registers a client, gets a
//! [`Subscription`] (the consumer end of that client's queue) and writes
//! whatever it yields; dropping the subscription unregisters the client and
//! reports the close. Both the Node binding and every daemon mode use it.
//!
//! Module map:
//! - this file: the hub's state, registering and closing clients, stats.
//! - `fan_out`: the one fan-out ([`Hub::fan_out`] with a [`Target`] and an
//!   [`Origin`]) and the single-client send.
//! - `channels`: joining and leaving channels, the channel index.
//! - `history`: recording events for replay and replaying them.
//! - `holds`: clients a bus is resuming (their live events wait).
//! - `wakes`: when the writers of queued frames are woken.
//! - `heartbeat`: `:` comments on idle streams.
//! - `subscription`: the consumer end of one client.

mod channels;
mod fan_out;
mod heartbeat;
mod history;
mod holds;
mod subscription;
mod wakes;

#[cfg(test)]
mod tests;

pub use fan_out::{Origin, Target};
pub use history::gap_frame;
pub use subscription::Subscription;

use crate::queue::{CloseReason, Queue};
use crate::replay::ReplayRing;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
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

/// Tunables of a hub. Their defaults are ssehub's defaults, for the addon
/// and every daemon mode alike (see [`defaults`]).
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
    /// Pushes made from a thread outside the runtime (Node's) leave their
    /// writers' wake-ups for one runtime task, made at [`Hub::flush_wakes`]:
    /// waking a tokio task from a foreign thread costs a queue lock and
    /// often a futex call, 10,000 times per broadcast.
    pub batch_foreign_wakes: bool,
}

/// ssehub's defaults, written once: the addon reads them from here (the
/// binding exports them) and every daemon mode starts from them.
pub mod defaults {
    use std::time::Duration;

    /// Between heartbeats on an idle stream.
    pub const HEARTBEAT: Duration = Duration::from_secs(15);
    /// Bytes a client may have queued before it is closed as slow.
    pub const MAX_QUEUE_BYTES: usize = 1 << 20;
    /// Frame bytes the replay history may hold.
    pub const HISTORY_BYTES: usize = 16 << 20;
    /// How long a write may stall before the client is closed.
    pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
    /// The reconnect delay a refused client is told (`retry:`, Retry-After).
    pub const RETRY: Duration = Duration::from_secs(5);
    /// The prefix of every Redis key and channel.
    pub const REDIS_PREFIX: &str = "ssehub:";
}

impl HubConfig {
    /// Keeps the last `events` for replay, or none when a bus that numbers
    /// events (Redis) keeps the history instead: then resumes read it there.
    pub fn keeping(self, events: usize, bus_keeps_history: bool) -> HubConfig {
        HubConfig {
            history: if bus_keeps_history { 0 } else { events },
            ..self
        }
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_queue_bytes: defaults::MAX_QUEUE_BYTES,
            history: 0,
            history_bytes: defaults::HISTORY_BYTES,
            heartbeat: Some(defaults::HEARTBEAT),
            max_clients: 0,
            batch_foreign_wakes: false,
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

/// One registered client, as the hub sees it.
struct Client {
    queue: Queue,
    channels: Mutex<channels::Joined>,
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
    holds: Mutex<HashMap<ClientId, holds::Hold>>,
    /// `holds.len()`, read without the lock on every numbered fan-out.
    held: AtomicUsize,
    /// The runtime to hand batched wake-ups to (none outside a runtime:
    /// then every wake-up is made at once).
    runtime: Option<Handle>,
    /// Wake-ups left for the next [`Hub::flush_wakes`] (see
    /// [`HubConfig::batch_foreign_wakes`]).
    pending_wakes: Mutex<Vec<Waker>>,
    /// Clients registered and not closing.
    open: Arc<AtomicUsize>,
}

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
                pending_wakes: Mutex::new(Vec::new()),
                open: Arc::default(),
            }),
        };
        if let Some(every) = hub.inner.config.heartbeat {
            tokio::spawn(heartbeat::run(Arc::downgrade(&hub.inner), every));
        }
        hub
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
        Ok(Subscription::new(self.clone(), id, client))
    }

    fn client(&self, id: ClientId) -> Option<Arc<Client>> {
        read(&self.inner.clients).get(&id).cloned()
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

    pub fn client_count(&self) -> usize {
        read(&self.inner.clients).len()
    }

    /// Clients registered and not closing: whom a fan-out to everyone
    /// made now would reach.
    pub fn open_clients(&self) -> usize {
        self.inner.open.load(Relaxed)
    }

    pub fn queued_bytes(&self, id: ClientId) -> Option<usize> {
        self.client(id).map(|c| c.queue.queued_bytes())
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

    /// Called by a [`Subscription`] as it is dropped.
    fn unregister(&self, id: ClientId, client: &Client) {
        let reason = client.queue.closing().unwrap_or(CloseReason::Client);
        client.queue.close(reason);
        write(&self.inner.clients).remove(&id);
        self.unhold(id);
        self.leave_all(id, client);
        if let Some(hook) = &*read(&self.inner.on_close) {
            hook(id, reason);
        }
    }
}

/// A frame to queue (kept here so every part names the same type).
type Frame = Bytes;
