//! The Redis bus: nodes share channels and history through one Redis (or
//! a Redis Sentinel's primary, or a Redis Cluster: see `endpoint`).
//!
//! Per node, two connections whatever the number of clients: a command
//! connection (`link`: publishes, in batches; reads) and a subscriber
//! connection (`follower`), subscribed once per channel that has local
//! members (reference-counted by the hub's channel hook) plus the
//! broadcast one.
//!
//! Keys, under the prefix as a hash tag (default `{ssehub:}`, so that on a
//! cluster they all share one slot):
//! - `seq`: the newest id handed out. Ids number every event, whatever
//!   its channels, so one `Last-Event-ID` orders a client's events across
//!   channels; each is above the one before and at least Redis's clock
//!   in µs, so ids read as a time and are never handed out twice;
//! - `start`: the epoch, set from the clock when a script finds it
//!   missing (a new Redis, or one that lost its data): ids from before it
//!   were lost with that data;
//! - `ch:<name>` (and `all`, for broadcasts): with history, the channel's
//!   stream of recent events (`MAXLEN ~ history`, entry id `<id>-0`); it
//!   is also the Pub/Sub channel's name (another namespace);
//! - `last:ch:<name>` (and `last:all`): without history, the newest id
//!   published to the channel, so a node that was away knows whether its
//!   clients missed anything.
//!
//! A channel's keys expire once it has had no publish for the TTL
//! (default a day); `seq` and `start` stay.
//!
//! A batch of publishes is one script (`scripts`): number, append,
//! PUBLISH, so live delivery and replay see the same order. A subscriber
//! sees messages in that order too, which makes duplicates (an event of
//! two channels arrives twice) a comparison with the last id delivered.
//!
//! Modules: `endpoint` (where to connect: a URL, TLS, Sentinel, a
//! cluster), `sentinel` (its URL), `cluster` (the bus's slot, the seeds),
//! `scripts` (the Lua), `link` (the command connection, error
//! classes), `publisher` (batches and deadlines), `follower` (subscriber,
//! catch-up, resume and the gap rules), `subscriber` (its connection:
//! Pub/Sub on one Redis, sharded Pub/Sub on a cluster), `read` (the read
//! script's answers).

mod cluster;
mod endpoint;
mod follower;
mod link;
mod publisher;
mod read;
mod scripts;
mod sentinel;
mod subscriber;

use super::{wire, Body, Bus, BusError, BusStats, ErrorCounts, Failure, Message, Receipt};
use crate::hub::{ClientId, Hub, WeakHub};
use endpoint::Endpoint;
use follower::{Control, Follower};
use link::Link;
use publisher::{Publish, Settings, PUBLISH_TIMEOUT};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// How long one Redis exchange of the subscriber side may take before it
/// counts as failed.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a channel's keys outlive its last publish, by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Where the bus finds Redis. Its `Debug` masks the URL's password.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// Prepended to every key and channel (default `ssehub:`).
    pub prefix: String,
    /// Events kept per channel stream (0: none, no ids, no resume).
    pub history: usize,
    /// How long a channel's keys outlive its last publish ([`DEFAULT_TTL`]).
    pub ttl: Duration,
    /// For TLS (`rediss://`): the CA certificates (PEM) to check Redis's
    /// certificate with, in place of the system's.
    pub ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("history", &self.history)
            .field("ttl", &self.ttl)
            .field("ca", &self.ca.as_ref().map(|_| "(PEM)"))
            .finish()
    }
}

/// A URL fit to print (logs, errors, `Debug`): its password masked,
/// `redis://user:***@host`, `?password=***`, `&pass=***`. Everything
/// between the scheme and the last `@` is the user part, so a password
/// with an unencoded `/`, `?` or `#` is masked whole (at worst a bit more
/// is masked than needed). lib/options.js applies the same rule.
pub fn redact(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let out = match url.rfind('@').filter(|at| *at >= start) {
        Some(at) => {
            let userinfo = &url[start..at];
            let user = userinfo.find(':').map_or("", |c| &userinfo[..=c]);
            format!("{}{user}***{}", &url[..start], &url[at..])
        }
        None => url.to_string(),
    };
    mask_query_secrets(&out)
}

/// The values of query parameters named `pass` or ending in `password`
/// (any case: `password=`, `sentinel_password=`) as `***`.
fn mask_query_secrets(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find(['?', '&', ';']) {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let end = rest.find(['&', ';', '#']).unwrap_or(rest.len());
        let Some((name, _)) = rest[..end].split_once('=') else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if lower == "pass" || lower.ends_with("password") {
            out.push_str(name);
            out.push_str("=***");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// The names of one prefix's keys. Each starts with the prefix as a hash
/// tag (`{ssehub:}ch:room`), so on a Redis Cluster every key and channel
/// of the bus is in one hash slot: one script touches one slot, and one
/// counter still orders every event (see the README on Redis Cluster).
#[derive(Clone)]
struct Keys {
    prefix: String,
    seq: String,
    start: String,
    all: String,
    channel: String,
    last: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        let prefix = format!("{{{prefix}}}");
        Keys {
            seq: format!("{prefix}seq"),
            start: format!("{prefix}start"),
            all: format!("{prefix}all"),
            channel: format!("{prefix}ch:"),
            last: format!("{prefix}last:"),
            prefix,
        }
    }

    /// A channel's stream key, which is also its Pub/Sub channel.
    fn of(&self, channel: &str) -> String {
        format!("{}{channel}", self.channel)
    }

    /// The Pub/Sub channel of a target (None: the broadcasts).
    fn pubsub(&self, channel: Option<&str>) -> String {
        channel.map_or_else(|| self.all.clone(), |c| self.of(c))
    }

    /// Where a target's events are kept: its stream with history, else
    /// the key that keeps its newest id (`last:` + the stream's name).
    fn storage(&self, channel: Option<&str>, history: usize) -> String {
        let stream = self.pubsub(channel);
        if history > 0 {
            return stream;
        }
        let name = stream.strip_prefix(&self.prefix).unwrap_or(&stream);
        format!("{}{name}", self.last)
    }

    fn epoch(&self) -> [&str; 2] {
        [&self.seq, &self.start]
    }
}

/// Whether the bus has connected yet (see [`RedisBus::ready`]).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Readiness {
    Waiting,
    Up,
    Failed(Failure),
}

/// What the tasks share with the bus and its stats.
struct Shared {
    connected: AtomicBool,
    closed: AtomicBool,
    reconnects: AtomicU64,
    publishes_failed: AtomicU64,
    caught_up: AtomicU64,
    gaps: AtomicU64,
    subscriptions: AtomicU64,
    errors: Mutex<ErrorCounts>,
    last_error: Mutex<Option<String>>,
    readiness: watch::Sender<Readiness>,
    shutdown: Notify,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            publishes_failed: AtomicU64::new(0),
            caught_up: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            errors: Mutex::default(),
            last_error: Mutex::default(),
            readiness: watch::channel(Readiness::Waiting).0,
            shutdown: Notify::new(),
        }
    }

    /// A Redis error met: counted by class, kept as the last error, and
    /// the outcome of the first connection if there was none yet.
    fn note_failure(&self, failure: &Failure) {
        if let Ok(mut errors) = self.errors.lock() {
            errors.add(failure.class);
        }
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(failure.to_string());
        }
        self.readiness.send_if_modified(|r| {
            let first = *r == Readiness::Waiting;
            if first {
                *r = Readiness::Failed(failure.clone());
            }
            first
        });
    }

    fn failed_publish(&self, failure: &Failure) {
        self.publishes_failed.fetch_add(1, Relaxed);
        self.note_failure(failure);
    }

    fn note_up(&self) {
        self.readiness.send_if_modified(|r| {
            let changed = *r != Readiness::Up;
            *r = Readiness::Up;
            changed
        });
    }
}

/// A bus through Redis. Make it inside a tokio runtime: it spawns its two
/// tasks there.
pub struct RedisBus {
    hub: WeakHub,
    keys: Keys,
    history: usize,
    publishes: mpsc::UnboundedSender<Publish>,
    control: mpsc::UnboundedSender<Control>,
    shared: Arc<Shared>,
}

impl RedisBus {
    /// Checks the URL and starts the bus; connecting happens in the
    /// background (and again whenever the connection is lost). See
    /// [`RedisBus::ready`] for the first connection's outcome.
    pub fn start(hub: &Hub, config: RedisConfig) -> Result<RedisBus, String> {
        if config.prefix.contains(['{', '}']) {
            return Err(format!(
                "the Redis key prefix '{}' holds a brace: it is the keys' hash tag ({{prefix}}), so it may not",
                config.prefix
            ));
        }
        let endpoint = Arc::new(Endpoint::open(
            &config.url,
            config.ca.as_deref(),
            &config.prefix,
        )?);
        let keys = Keys::new(&config.prefix);
        let shared = Arc::new(Shared::new());
        let link = Arc::new(Link::new(endpoint.clone()));
        let (publishes, publish_rx) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        let watcher = control.clone();
        hub.on_channel(move |channel, has_members| {
            let _ = watcher.send(if has_members {
                Control::Watch(channel.to_string())
            } else {
                Control::Unwatch(channel.to_string())
            });
        });
        let settings = Settings {
            seq: keys.seq.clone(),
            start: keys.start.clone(),
            history: config.history,
            ttl: config.ttl,
        };
        tokio::spawn(publisher::run(
            link.clone(),
            publish_rx,
            shared.clone(),
            settings,
        ));
        let follower = Follower::new(
            hub.downgrade(),
            endpoint,
            link,
            keys.clone(),
            config.history,
            config.ttl,
            shared.clone(),
        );
        tokio::spawn(follower.run(control_rx));
        Ok(RedisBus {
            hub: hub.downgrade(),
            keys,
            history: config.history,
            publishes,
            control,
            shared,
        })
    }

    /// The outcome of the first connection: `Ok` once connected, or the
    /// first failure (the bus keeps trying either way). A failure whose
    /// class [`is_fatal`](super::FailureClass::is_fatal) (a wrong password,
    /// a Redis Cluster) will not mend by itself: a daemon stops on it and
    /// the addon reports it at once.
    pub fn ready(&self) -> impl std::future::Future<Output = Result<(), Failure>> + Send + 'static {
        let mut readiness = self.shared.readiness.subscribe();
        async move {
            let state = readiness
                .wait_for(|r| *r != Readiness::Waiting)
                .await
                .map(|r| r.clone());
            match state {
                Ok(Readiness::Failed(f)) => Err(f),
                _ => Ok(()),
            }
        }
    }

    /// The publish's targets: (storage key, Pub/Sub channel), each once.
    fn targets(&self, message: &Message) -> Vec<(String, String)> {
        let target = |c: Option<&str>| (self.keys.storage(c, self.history), self.keys.pubsub(c));
        match &message.channels {
            None => vec![target(None)],
            Some(channels) => {
                let mut seen = HashSet::new();
                channels
                    .iter()
                    .filter(|c| seen.insert(c.as_str()))
                    .map(|c| target(Some(c)))
                    .collect()
            }
        }
    }

    fn check(&self, message: &Message) -> Result<(), BusError> {
        if self.shared.closed.load(Relaxed) {
            return Err(BusError::Closed);
        }
        if let Body::Event {
            event, id, data, ..
        } = &message.body
        {
            if self.history > 0 && id.is_some() {
                return Err(BusError::Invalid(super::ID_OF_ITS_OWN.into()));
            }
            crate::frame::Event {
                event: event.as_deref(),
                id: id.as_deref(),
                data: data.as_deref(),
                retry: None,
            }
            .validate()
            .map_err(BusError::Frame)?;
        }
        if matches!(&message.channels, Some(c) if c.is_empty()) {
            return Err(BusError::Invalid("a publish needs a channel".into()));
        }
        Ok(())
    }
}

impl Bus for RedisBus {
    fn publish(&self, message: Message) -> Receipt {
        if let Err(e) = self.check(&message) {
            return Box::pin(std::future::ready(Err(e)));
        }
        let (done, answer) = tokio::sync::oneshot::channel();
        let publish = Publish {
            targets: self.targets(&message),
            event: wire::encode(&message, self.history > 0),
            deadline: Instant::now() + PUBLISH_TIMEOUT,
            done,
        };
        if self.publishes.send(publish).is_err() {
            return Box::pin(std::future::ready(Err(BusError::Closed)));
        }
        Box::pin(async move { answer.await.unwrap_or(Err(BusError::Closed)) })
    }

    fn numbers_events(&self) -> bool {
        self.history > 0
    }

    fn hold(&self, client: ClientId) {
        if let Some(hub) = self.hub.upgrade() {
            hub.hold(client);
        }
    }

    fn resume(&self, client: ClientId, last_id: &str) {
        let _ = self
            .control
            .send(Control::Resume(client, last_id.to_string()));
    }

    fn stats(&self) -> BusStats {
        let s = &self.shared;
        BusStats {
            kind: "redis",
            connected: s.connected.load(Relaxed),
            reconnects: s.reconnects.load(Relaxed),
            publishes_failed: s.publishes_failed.load(Relaxed),
            errors: s
                .errors
                .lock()
                .map_or_else(|_| ErrorCounts::default(), |e| *e),
            caught_up: s.caught_up.load(Relaxed),
            gaps: s.gaps.load(Relaxed),
            subscriptions: s.subscriptions.load(Relaxed),
            last_error: s.last_error.lock().map_or(None, |e| e.clone()),
        }
    }

    fn shutdown(&self) {
        self.shared.closed.store(true, Relaxed);
        self.shared.shutdown.notify_waiters();
        self.shared.shutdown.notify_one();
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            prefix: "ssehub:".into(),
            history: 0,
            ttl: DEFAULT_TTL,
            ca: None,
        }
    }

    #[test]
    fn a_refused_url_is_named_without_its_password() {
        let hub = Hub::new(crate::hub::HubConfig {
            heartbeat: None,
            ..crate::hub::HubConfig::default()
        });
        for (url, shown) in [
            (
                "redis://app:hunter2@db.example:notaport/0",
                "'redis://app:***@db.example:notaport/0'",
            ),
            (
                "redis://db.example:notaport/0?password=hunter2",
                "'redis://db.example:notaport/0?password=***'",
            ),
        ] {
            let Err(e) = RedisBus::start(&hub, config(url)) else {
                panic!("{url} was taken");
            };
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains(shown), "{e}");
        }
    }

    #[test]
    fn redact_masks_passwords_and_nothing_else() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("redis://app:hunter2@h:1/0", "redis://app:***@h:1/0"),
            ("redis://:hunter2@h", "redis://:***@h"),
            ("redis://hunter2@h", "redis://***@h"),
            ("redis://app:hun/ter?2#x@h/0", "redis://app:***@h/0"),
            ("app:hunter2@h:1", "app:***@h:1"),
            (
                "redis+unix:///run/r.sock?db=1&pass=hunter2",
                "redis+unix:///run/r.sock?db=1&pass=***",
            ),
            (
                "redis://h/0?PASSWORD=hunter2&db=2",
                "redis://h/0?PASSWORD=***&db=2",
            ),
            ("redis://h/0?password=", "redis://h/0?password=***"),
            (
                "redis+sentinel://s/m?sentinel_password=hunter2&x=1",
                "redis+sentinel://s/m?sentinel_password=***&x=1",
            ),
            (
                "redis://h/0?bypass=1&passwordless=1",
                "redis://h/0?bypass=1&passwordless=1",
            ),
            ("", ""),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn debug_masks_the_password() {
        let shown = format!("{:?}", config("rediss://app:hunter2@db.example:6380/2"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("rediss://app:***@db.example:6380/2"),
            "{shown}"
        );
        assert!(shown.contains("ssehub:"), "{shown}");
    }

    #[test]
    fn keys_of_targets_never_collide() {
        let keys = Keys::new("p:");
        assert_eq!(keys.storage(Some("a"), 10), "{p:}ch:a");
        assert_eq!(keys.storage(None, 10), "{p:}all");
        assert_eq!(keys.storage(Some("a"), 0), "{p:}last:ch:a");
        assert_eq!(keys.storage(None, 0), "{p:}last:all");
        assert_eq!(keys.pubsub(Some("a")), "{p:}ch:a");
        // A channel named like another key stays under ch:.
        assert_eq!(keys.storage(Some("last:all"), 0), "{p:}last:ch:last:all");
        // Braces in a channel's name do not move it out of the slot.
        assert_eq!(keys.of("{x}"), "{p:}ch:{x}");
    }
}
