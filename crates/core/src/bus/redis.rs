//! The Redis bus: nodes share channels and history through one Redis.
//!
//! Per node, two connections whatever the number of clients: a command
//! connection (publishes, pipelined; replay reads) and a subscriber
//! connection, subscribed once per channel that has local members
//! (reference-counted by the hub's channel hook) plus the broadcast one.
//!
//! Keys, under the prefix (default `ssehub:`):
//! - `seq`: the counter that numbers every event, whatever its channels,
//!   so one `Last-Event-ID` orders a client's events across channels;
//! - `start`: the counter's first value. A Redis that lost its data starts
//!   the counter again from the clock, above any id handed out before,
//!   and `start` tells nodes and resuming clients that history was lost;
//! - `ch:<name>` (and `all`, for broadcasts): the channel's stream of
//!   recent events (`XADD ... MAXLEN ~ history`, stream id `<seq>-0`), and
//!   the Pub/Sub channel of the same name (another namespace).
//!
//! A publish is one script (number, append, PUBLISH), so live delivery
//! and replay see the same order. A subscriber sees messages in that
//! order too, which makes duplicates (an event of two channels arrives
//! twice) a comparison with the last number delivered.

use super::wire::{self, Numbered};
use super::{Body, Bus, BusError, BusStats, Message, Published, Receipt};
use crate::hub::{gap_frame, ClientId, Hub, Origin, Target, WeakHub};
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::{RedisResult, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// Numbers, appends and publishes one event.
/// KEYS: seq, start, then each target (stream and Pub/Sub channel).
/// ARGV: history length (0: no stream), the encoded event.
/// Every check comes before the first write: a script that fails has
/// changed nothing.
const PUBLISH_LUA: &str = r#"
local history = tonumber(ARGV[1])
if history > 0 then
  for i = 3, #KEYS do
    local t = redis.call('TYPE', KEYS[i])['ok']
    if t ~= 'none' and t ~= 'stream' then
      return redis.error_reply('WRONGTYPE ssehub: ' .. KEYS[i] .. ' is a ' .. t .. ', not a stream')
    end
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis.call('TIME')
  local start = string.format('%.0f', tonumber(now[1]) * 1000000)
  redis.call('SET', KEYS[1], start)
  redis.call('SET', KEYS[2], start)
end
local id = string.format('%.0f', redis.call('INCR', KEYS[1]))
local msg = id .. '\n' .. ARGV[2]
for i = 3, #KEYS do
  if history > 0 then
    redis.call('XADD', KEYS[i], 'MAXLEN', '~', history, id .. '-0', 'm', msg)
  end
  redis.call('PUBLISH', KEYS[i], msg)
end
return id
"#;

/// Reads what streams hold after given ids.
/// KEYS: seq, start, then streams. ARGV: count, then the first id wanted
/// of each stream. Returns seq, start, then per stream: the newest id that
/// was trimmed from it ("0" if none) and its entries.
const READ_LUA: &str = r#"
local out = { redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]) }
for i = 3, #KEYS do
  local trimmed = '0'
  local entries = {}
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[i])
    local found = false
    for j = 1, #info, 2 do
      if info[j] == 'max-deleted-entry-id' then
        trimmed = string.match(info[j + 1], '^(%d+)')
        found = true
      end
    end
    if not found then
      -- Redis 6 does not say what it trimmed: a full stream may have.
      local first = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', 1)[1]
      if first and redis.call('XLEN', KEYS[i]) >= (tonumber(ARGV[1]) - 100) / 2 then
        trimmed = string.format('%.0f', tonumber(string.match(first[1], '^(%d+)')) - 1)
      end
    end
    entries = redis.call('XRANGE', KEYS[i], ARGV[i - 1] .. '-0', '+', 'COUNT', ARGV[1])
  end
  out[#out + 1] = trimmed
  out[#out + 1] = entries
end
return out
"#;

/// Publishes sent to Redis in one pipeline, at most.
const MAX_PIPELINE: usize = 512;
/// Channel names in one SUBSCRIBE or UNSUBSCRIBE.
const MAX_SUBSCRIBE: usize = 1000;
/// How long one Redis exchange may take before it counts as failed.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often an idle subscriber connection is checked with a PING.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Reconnect delays: doubling from the first, capped, each jittered.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where the bus finds Redis. Its `Debug` masks the URL's password.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// Prepended to every key and channel (default `ssehub:`).
    pub prefix: String,
    /// Events kept per channel stream (0: none, no ids, no resume).
    pub history: usize,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("history", &self.history)
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

/// `password=` and `pass=` query values (any case) as `***`.
fn mask_query_secrets(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find(['?', '&', ';']) {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let lower = rest.get(..9).unwrap_or(rest).to_ascii_lowercase();
        let Some(name) = ["password=", "pass="]
            .iter()
            .find(|n| lower.starts_with(*n))
        else {
            continue;
        };
        out.push_str(&rest[..name.len()]);
        out.push_str("***");
        rest = &rest[rest.find(['&', ';', '#']).unwrap_or(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// The names of one prefix's keys.
#[derive(Clone)]
struct Keys {
    seq: String,
    start: String,
    all: String,
    channel: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        Keys {
            seq: format!("{prefix}seq"),
            start: format!("{prefix}start"),
            all: format!("{prefix}all"),
            channel: format!("{prefix}ch:"),
        }
    }

    fn of(&self, channel: &str) -> String {
        format!("{}{channel}", self.channel)
    }
}

#[derive(Default)]
struct Shared {
    connected: AtomicBool,
    closed: AtomicBool,
    reconnects: AtomicU64,
    publishes_failed: AtomicU64,
    caught_up: AtomicU64,
    gaps: AtomicU64,
    subscriptions: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
    shutdown: Notify,
}

struct Publish {
    keys: Vec<String>,
    event: Bytes,
    done: oneshot::Sender<Result<Published, BusError>>,
}

/// What the hub and the resuming transports tell the subscriber task.
enum Control {
    Watch(String),
    Unwatch(String),
    Resume(ClientId, String),
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
    /// background (and again whenever the connection is lost).
    pub fn start(hub: &Hub, config: RedisConfig) -> Result<RedisBus, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("invalid Redis URL '{}': {e}", redact(&config.url)))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(EXCHANGE_TIMEOUT))
            .set_response_timeout(Some(EXCHANGE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(BACKOFF_FIRST)
            .set_max_delay(BACKOFF_MAX);
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| format!("Redis at {}: {e}", redact(&config.url)))?;
        let keys = Keys::new(&config.prefix);
        let shared = Arc::new(Shared::default());
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
        tokio::spawn(publisher(
            commands.clone(),
            publish_rx,
            shared.clone(),
            config.history,
        ));
        let follower = Follower {
            hub: hub.downgrade(),
            client,
            commands,
            keys: keys.clone(),
            history: config.history,
            shared: shared.clone(),
            watched: HashSet::new(),
            since: HashMap::new(),
            last: 0,
            floor: None,
            start: None,
            resumes: Vec::new(),
        };
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

    fn targets(&self, message: &Message) -> Vec<String> {
        let mut keys = vec![self.keys.seq.clone(), self.keys.start.clone()];
        match &message.channels {
            None => keys.push(self.keys.all.clone()),
            Some(channels) => {
                let mut seen = HashSet::new();
                for c in channels.iter().filter(|c| seen.insert(c.as_str())) {
                    keys.push(self.keys.of(c));
                }
            }
        }
        keys
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
        let (done, answer) = oneshot::channel();
        let publish = Publish {
            keys: self.targets(&message),
            event: wire::encode(&message, self.history > 0),
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

/// Sends publishes in order, as many as are waiting in one pipeline.
async fn publisher(
    mut conn: ConnectionManager,
    mut queue: mpsc::UnboundedReceiver<Publish>,
    shared: Arc<Shared>,
    history: usize,
) {
    let script = redis::Script::new(PUBLISH_LUA);
    loop {
        let first = tokio::select! {
            p = queue.recv() => p,
            _ = shared.shutdown.notified() => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_PIPELINE {
            match queue.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let answers = send_batch(&mut conn, &script, &batch, history).await;
        for (publish, answer) in batch.into_iter().zip(answers) {
            if answer.is_err() {
                shared.publishes_failed.fetch_add(1, Relaxed);
            }
            let _ = publish.done.send(answer);
        }
        if shared.closed.load(Relaxed) {
            break;
        }
    }
    // Whatever is still queued was never sent.
    queue.close();
    while let Some(p) = queue.recv().await {
        let _ = p.done.send(Err(BusError::Closed));
    }
}

/// One pipeline: SCRIPT LOAD, then the publishes. Loading first means a
/// Redis that restarted (and forgot its scripts) never answers NOSCRIPT,
/// so nothing is ever retried out of order.
async fn send_batch(
    conn: &mut ConnectionManager,
    script: &redis::Script,
    batch: &[Publish],
    history: usize,
) -> Vec<Result<Published, BusError>> {
    let mut pipe = redis::pipe();
    pipe.cmd("SCRIPT").arg("LOAD").arg(PUBLISH_LUA);
    for p in batch {
        pipe.cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(p.keys.len())
            .arg(&p.keys)
            .arg(history)
            .arg(&p.event[..]);
    }
    let sent = tokio::time::timeout(
        EXCHANGE_TIMEOUT,
        pipe.ignore_errors()
            .query_async::<Vec<RedisResult<Value>>>(conn),
    )
    .await;
    let answers = match sent {
        Ok(Ok(answers)) => answers,
        Ok(Err(e)) => return failed_all(batch.len(), &e.to_string()),
        Err(_) => return failed_all(batch.len(), "timed out"),
    };
    answers
        .into_iter()
        .skip(1)
        .map(|answer| match answer {
            Ok(value) => id_of(&value)
                .map(|id| Published {
                    id: Some(id),
                    reached: None,
                })
                .ok_or_else(|| BusError::Unavailable(format!("unexpected answer {value:?}"))),
            Err(e) => Err(BusError::Unavailable(e.to_string())),
        })
        .collect()
}

fn failed_all(n: usize, why: &str) -> Vec<Result<Published, BusError>> {
    (0..n)
        .map(|_| Err(BusError::Unavailable(why.to_string())))
        .collect()
}

fn id_of(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// How one connection of the subscriber ended.
enum Ended {
    Lost(String),
    Closed,
}

/// The subscriber task: follows the channels of local clients, delivers
/// what arrives, catches up after a reconnect, resumes clients.
struct Follower {
    hub: WeakHub,
    client: redis::Client,
    commands: ConnectionManager,
    keys: Keys,
    history: usize,
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
    /// Redis's `start`, as first seen: when it changes, history was lost.
    start: Option<u64>,
    /// Clients waiting for their replay.
    resumes: Vec<(ClientId, String)>,
}

impl Follower {
    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
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
            if let Ok(mut last) = self.shared.last_error.lock() {
                *last = Some(why);
            }
            let pause = backoff(failures);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shared.shutdown.notified() => return,
            }
        }
    }

    /// One subscriber connection, from connect to loss.
    async fn follow(&mut self, control: &mut mpsc::UnboundedReceiver<Control>) -> Ended {
        let pubsub =
            match tokio::time::timeout(EXCHANGE_TIMEOUT, self.client.get_async_pubsub()).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => return Ended::Lost(e.to_string()),
                Err(_) => return Ended::Lost("connect timed out".into()),
            };
        let (mut sink, stream) = pubsub.split();
        let mut stream = Box::pin(stream);
        // Joins and leaves while we were away: the set to subscribe now.
        while let Ok(c) = control.try_recv() {
            self.apply(c);
        }
        let mut names = vec![self.keys.all.clone()];
        names.extend(self.watched.iter().map(|c| self.keys.of(c)));
        if let Err(e) = subscribe(&mut sink, &names, true).await {
            return Ended::Lost(e);
        }
        let rejoined = self.floor.is_some();
        if let Err(e) = self.caught_up_after(rejoined).await {
            return Ended::Lost(e);
        }
        self.shared
            .subscriptions
            .store(self.watched.len() as u64, Relaxed);
        self.shared.connected.store(true, Relaxed);
        if rejoined {
            self.shared.reconnects.fetch_add(1, Relaxed);
        }
        let mut subscribed: HashSet<String> = self.watched.clone();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            if let Err(e) = self.resume_waiting().await {
                return Ended::Lost(e);
            }
            tokio::select! {
                msg = std::future::poll_fn(|cx| futures_core::Stream::poll_next(stream.as_mut(), cx)) => {
                    let Some(msg) = msg else { return Ended::Lost("connection closed".into()) };
                    self.on_message(msg.get_payload_bytes());
                }
                c = control.recv() => {
                    let Some(c) = c else { return Ended::Closed };
                    self.apply(c);
                    while let Ok(c) = control.try_recv() {
                        self.apply(c);
                    }
                    if let Err(e) = self.resubscribe(&mut sink, &mut subscribed).await {
                        return Ended::Lost(e);
                    }
                }
                _ = ping.tick() => {
                    // Subscribed, Redis answers ["pong", ""], not +PONG.
                    let pong = tokio::time::timeout(EXCHANGE_TIMEOUT, sink.ping::<Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        return Ended::Lost("no answer to PING".into());
                    }
                }
                _ = self.shared.shutdown.notified() => return Ended::Closed,
            }
        }
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
        sink: &mut PubSubSink,
        subscribed: &mut HashSet<String>,
    ) -> Result<(), String> {
        let added: Vec<String> = self.watched.difference(subscribed).cloned().collect();
        let removed: Vec<String> = subscribed.difference(&self.watched).cloned().collect();
        if !removed.is_empty() {
            let names: Vec<String> = removed.iter().map(|c| self.keys.of(c)).collect();
            subscribe(sink, &names, false).await?;
            removed.iter().for_each(|c| {
                subscribed.remove(c);
            });
        }
        if !added.is_empty() {
            let names: Vec<String> = added.iter().map(|c| self.keys.of(c)).collect();
            subscribe(sink, &names, true).await?;
            let now = self.counter().await?;
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

    async fn counter(&mut self) -> Result<u64, String> {
        let mut get = redis::cmd("GET");
        get.arg(&self.keys.seq);
        let value = exchange(get.query_async::<Option<String>>(&mut self.commands)).await?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// A live event: delivered unless this node has it already.
    fn on_message(&mut self, payload: &[u8]) {
        let Some(event) = wire::decode(payload) else {
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

    /// Right after (re)subscribing. The first time, only notes where
    /// Redis is; after a loss, delivers from the streams what arrived
    /// meanwhile, or tells every client of a gap when Redis lost history.
    async fn caught_up_after(&mut self, rejoined: bool) -> Result<(), String> {
        let streams: Vec<(String, u64)> = std::iter::once((self.keys.all.clone(), None))
            .chain(
                self.watched
                    .iter()
                    .map(|c| (self.keys.of(c), self.since.get(c).copied())),
            )
            .map(|(key, since)| {
                let from = self
                    .last
                    .max(self.floor.unwrap_or(0))
                    .max(since.unwrap_or(0));
                (key, from + 1)
            })
            .collect();
        let read = if rejoined && self.history > 0 {
            read(&mut self.commands, &self.keys, &streams, self.history).await?
        } else {
            read(&mut self.commands, &self.keys, &[], 1).await?
        };
        let lost = self.start.is_some_and(|s| read.start != Some(s)) || read.seq < self.last;
        if self.floor.is_none() {
            self.floor = Some(read.seq);
        }
        if read.start.is_some() || lost {
            self.start = read.start;
        }
        let Some(hub) = self.hub.upgrade() else {
            return Ok(());
        };
        if lost {
            // Numbers start again elsewhere: nothing before is comparable.
            let gap = self.last.to_string();
            self.last = read.seq;
            self.floor = Some(read.seq);
            self.since.values_mut().for_each(|s| *s = read.seq);
            if let Ok(frame) = gap_frame(&gap) {
                let reached = hub.fan_out(Target::All, frame, Origin::Notice);
                self.shared.gaps.fetch_add(reached as u64, Relaxed);
            }
            return Ok(());
        }
        for (key, trimmed) in streams.iter().zip(&read.trimmed) {
            if *trimmed >= key.1 {
                let channel = key.0.strip_prefix(&self.keys.channel);
                if let Ok(frame) = gap_frame(&self.last.to_string()) {
                    let only = channel.map(|c| [c]);
                    let target = only.as_ref().map_or(Target::All, |c| Target::Channels(c));
                    let reached = hub.fan_out(target, frame, Origin::Notice);
                    self.shared.gaps.fetch_add(reached as u64, Relaxed);
                }
            }
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

    /// Replays what the waiting clients missed, in one pipeline.
    async fn resume_waiting(&mut self) -> Result<(), String> {
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
            let after = last_id.parse::<u64>().ok();
            let mut streams = vec![(self.keys.all.clone(), after.unwrap_or(0) + 1)];
            for c in hub.channels_of(*client) {
                streams.push((self.keys.of(&c), after.unwrap_or(0) + 1));
            }
            asks.push(streams);
        }
        let reads = match read_many(&mut self.commands, &self.keys, &asks, self.history).await {
            Ok(reads) => reads,
            Err(e) => {
                self.resumes = waiting;
                return Err(e);
            }
        };
        for (((client, last_id), streams), read) in waiting.iter().zip(&asks).zip(reads) {
            self.release(&hub, *client, last_id, streams, read);
        }
        Ok(())
    }

    fn release(
        &self,
        hub: &Hub,
        client: ClientId,
        last_id: &str,
        streams: &[(String, u64)],
        read: Read,
    ) {
        let after = last_id.parse::<u64>().ok();
        // An id from the future: Redis went back (restored from an older
        // snapshot); nothing it holds is comparable with it.
        let future = after.is_some_and(|n| n > read.seq);
        // No id of ours, or one from before Redis last lost its data: all
        // the streams hold is new to the client, and some was lost.
        let before = after.is_none_or(|n| read.start.is_some_and(|s| n < s));
        let trimmed = streams.iter().zip(&read.trimmed).any(|(s, t)| *t >= s.1);
        let gap = (future || before || trimmed).then_some(last_id);
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
    super::fan_out(hub, event.message.channels.as_deref(), frame, origin);
}

/// What one read found.
#[derive(Default)]
struct Read {
    seq: u64,
    start: Option<u64>,
    /// Per stream asked, the newest id trimmed from it.
    trimmed: Vec<u64>,
    /// The events of every stream asked, once each, in order.
    events: BTreeMap<u64, Numbered>,
}

async fn read(
    conn: &mut ConnectionManager,
    keys: &Keys,
    streams: &[(String, u64)],
    history: usize,
) -> Result<Read, String> {
    let mut reads = read_many(conn, keys, &[streams.to_vec()], history).await?;
    Ok(reads.pop().unwrap_or_default())
}

/// One READ script per entry of `asks`, pipelined.
async fn read_many(
    conn: &mut ConnectionManager,
    keys: &Keys,
    asks: &[Vec<(String, u64)>],
    history: usize,
) -> Result<Vec<Read>, String> {
    let script = redis::Script::new(READ_LUA);
    let mut pipe = redis::pipe();
    pipe.cmd("SCRIPT").arg("LOAD").arg(READ_LUA).ignore();
    // Streams are trimmed approximately: read a little past the length.
    let count = history.max(1) * 2 + 100;
    for streams in asks {
        let cmd = pipe
            .cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(streams.len() + 2)
            .arg(&keys.seq)
            .arg(&keys.start);
        for (key, _) in streams {
            cmd.arg(key);
        }
        cmd.arg(count);
        for (_, from) in streams {
            cmd.arg(from.to_string());
        }
    }
    let values = exchange(pipe.query_async::<Vec<Value>>(conn)).await?;
    Ok(values.iter().map(parse_read).collect())
}

fn parse_read(value: &Value) -> Read {
    let Value::Array(items) = value else {
        return Read::default();
    };
    let number = |v: Option<&Value>| match v {
        Some(Value::BulkString(b)) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()),
        Some(Value::Int(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    let mut read = Read {
        seq: number(items.first()).unwrap_or(0),
        start: number(items.get(1)),
        ..Read::default()
    };
    for pair in items[2.min(items.len())..].chunks(2) {
        read.trimmed.push(number(pair.first()).unwrap_or(0));
        let Some(Value::Array(entries)) = pair.get(1) else {
            continue;
        };
        for entry in entries {
            if let Some(event) = entry_event(entry) {
                read.events.entry(event.seq).or_insert(event);
            }
        }
    }
    read
}

/// `[id, [field, value, ...]]` of one stream entry, as an event.
fn entry_event(entry: &Value) -> Option<Numbered> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let Some(Value::Array(fields)) = parts.get(1) else {
        return None;
    };
    fields.chunks(2).find_map(|kv| match kv {
        [Value::BulkString(k), Value::BulkString(v)] if k == b"m" => wire::decode(v),
        _ => None,
    })
}

async fn exchange<T>(f: impl std::future::Future<Output = RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(EXCHANGE_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

async fn subscribe(sink: &mut PubSubSink, names: &[String], on: bool) -> Result<(), String> {
    for chunk in names.chunks(MAX_SUBSCRIBE) {
        if on {
            exchange(sink.subscribe(chunk)).await?;
        } else {
            exchange(sink.unsubscribe(chunk)).await?;
        }
    }
    Ok(())
}

/// The pause before reconnect attempt `failures` + 1: doubling, capped,
/// and jittered over its whole range, so nodes that lost the same Redis
/// do not all come back in the same millisecond.
fn backoff(failures: u32) -> Duration {
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

    fn config(url: &str) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            prefix: "ssehub:".into(),
            history: 0,
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
    fn backoff_grows_to_its_cap_and_varies() {
        assert!(backoff(0) <= BACKOFF_FIRST);
        assert!(backoff(20) <= BACKOFF_MAX);
        assert!(backoff(20) >= BACKOFF_MAX / 2);
        let spread: HashSet<Duration> = (0..20).map(|_| backoff(5)).collect();
        assert!(spread.len() > 1, "no jitter");
    }

    #[test]
    fn a_read_merges_streams_once_each_in_order() {
        let entry = |seq: u64, channel: &str| {
            let message = Message {
                channels: Some(vec![channel.into()]),
                body: Body::Raw(Bytes::from_static(b"x")),
            };
            let mut m = format!("{seq}\n").into_bytes();
            m.extend_from_slice(&wire::encode(&message, true));
            Value::Array(vec![
                Value::BulkString(format!("{seq}-0").into_bytes()),
                Value::Array(vec![Value::BulkString(b"m".to_vec()), Value::BulkString(m)]),
            ])
        };
        let value = Value::Array(vec![
            Value::BulkString(b"9".to_vec()),
            Value::BulkString(b"1".to_vec()),
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![entry(3, "a"), entry(7, "a")]),
            Value::BulkString(b"2".to_vec()),
            Value::Array(vec![entry(3, "a"), entry(5, "b")]),
        ]);
        let read = parse_read(&value);
        assert_eq!((read.seq, read.start), (9, Some(1)));
        assert_eq!(read.trimmed, [0, 2]);
        assert_eq!(read.events.keys().copied().collect::<Vec<_>>(), [3, 5, 7]);
    }
}
