//! The bus: how a published event reaches the clients of every node.
//!
//! - [`Local`]: this process is the only node; a publish is a fan-out
//!   into the hub, and history is the hub's replay ring.
//! - [`redis::RedisBus`]: nodes share channels and history through Redis.
//!   A publish is one script (number, append to the channel's stream,
//!   PUBLISH); every node subscribed to the channel frames it once and
//!   fans it out; a resuming client is replayed from the streams.
//! - `wire`: the one encoding of an event on Redis, and its frame.
//!
//! Nothing in the hub knows which bus feeds it: a bus only calls the
//! hub's fan-out, hold/release and channel hook.

use crate::frame::{Event, FrameError};
use crate::hub::{ClientId, Hub, Origin, Target};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

mod open;
#[cfg(feature = "redis")]
pub mod redis;

pub use open::open_client;
#[cfg(feature = "redis")]
mod wire;

/// What is published: an SSE event by its fields, or a frame a daemon
/// mode writes as it is (the jwt hub's raw payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Event {
        event: Option<String>,
        data: Option<String>,
        /// An id the publisher chose (only where the bus numbers nothing).
        id: Option<String>,
        retry: Option<u64>,
    },
    Raw(Bytes),
}

/// One event on its way to the clients of every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The channels it goes to (a client in several gets it once);
    /// `None` sends it to every client.
    pub channels: Option<Vec<String>>,
    pub body: Body,
}

impl Message {
    /// The frame clients receive; `seq` is written as its `id:` when the
    /// bus numbers events.
    pub fn frame(&self, seq: Option<u64>) -> Result<Bytes, FrameError> {
        let numbered = seq.map(|n| n.to_string());
        match &self.body {
            Body::Event {
                event,
                data,
                id,
                retry,
            } => Event {
                event: event.as_deref(),
                data: data.as_deref(),
                id: numbered.as_deref().or(id.as_deref()),
                retry: *retry,
            }
            .encode(),
            Body::Raw(raw) => Ok(match numbered {
                None => raw.clone(),
                Some(n) => {
                    let mut out = BytesMut::with_capacity(raw.len() + n.len() + 5);
                    out.put_slice(b"id: ");
                    out.put_slice(n.as_bytes());
                    out.put_u8(b'\n');
                    out.put_slice(raw);
                    out.freeze()
                }
            }),
        }
    }
}

/// A publish the bus took: the event's id, when the bus numbers events,
/// and the local clients reached, when it delivered here and now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Published {
    pub id: Option<u64>,
    pub reached: Option<usize>,
}

/// Why a publish was not taken. Nothing of it reached any client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusError {
    /// The event cannot be framed (a line break in `event` or `id`).
    Frame(FrameError),
    /// The event was refused before it was sent (say, an id of its own
    /// where the bus numbers events).
    Invalid(String),
    /// Redis did not take it: down, unreachable, too slow, or it answered
    /// an error; the class says which. The Redis bus never applies a
    /// publish it reported so (see `redis` on deadlines), unless Redis's
    /// answer was lost on its way back after it ran the publish.
    Redis(Failure),
    /// The bus was shut down.
    Closed,
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Frame(e) => e.fmt(f),
            BusError::Invalid(why) => f.write_str(why),
            BusError::Redis(failure) => write!(f, "Redis did not take the event: {failure}"),
            BusError::Closed => f.write_str("the bus is closed"),
        }
    }
}

impl std::error::Error for BusError {}

/// What went wrong with Redis, sorted by what an operator does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// Down, unreachable, too slow, loading, read-only: wait or fix the
    /// network; the bus reconnects by itself.
    Unavailable,
    /// `OOM`: `maxmemory` reached; writes are refused until memory is
    /// freed or the limit raised.
    Oom,
    /// The password or ACL user was refused (`WRONGPASS`, `NOAUTH`,
    /// `NOPERM`): the configuration must change.
    Auth,
    /// A Redis Cluster redirecting or down (`MOVED`, `ASK`, `TRYAGAIN`,
    /// `CLUSTERDOWN`, `CROSSSLOT`): the bus's slot is moving or has no
    /// master for now; the next publish goes where the cluster says.
    Cluster,
    /// Any other error answer (a key of ours holding another type, say).
    Other,
}

impl FailureClass {
    /// Every class, in the order stats and metrics list them.
    pub const ALL: [FailureClass; 5] = [
        FailureClass::Unavailable,
        FailureClass::Oom,
        FailureClass::Auth,
        FailureClass::Cluster,
        FailureClass::Other,
    ];

    /// The class's name in stats, metrics labels, logs and `503`s.
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Unavailable => "unavailable",
            FailureClass::Oom => "oom",
            FailureClass::Auth => "auth",
            FailureClass::Cluster => "cluster",
            FailureClass::Other => "other",
        }
    }

    /// What it means, in a few words.
    pub fn summary(self) -> &'static str {
        match self {
            FailureClass::Unavailable => "Redis is unavailable",
            FailureClass::Oom => "Redis is out of memory",
            FailureClass::Auth => "Redis refused the credentials or a command",
            FailureClass::Cluster => "the Redis Cluster is redirecting or down",
            FailureClass::Other => "Redis answered an error",
        }
    }

    /// A class no retry mends: the configuration must change. Met at
    /// start, it stops a daemon and is reported by the addon at once. (A
    /// cluster's redirections and outages mend as it settles.)
    pub fn is_fatal(self) -> bool {
        matches!(self, FailureClass::Auth)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A Redis failure: its class and Redis's (or the connection's) words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    pub detail: String,
}

impl Failure {
    pub fn new(class: FailureClass, detail: impl Into<String>) -> Failure {
        Failure {
            class,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (summary, name) = (self.class.summary(), self.class.name());
        write!(f, "{summary} ({name}): {}", self.detail)
    }
}

/// Redis errors met, per [`FailureClass`] (index: its place in `ALL`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts(pub [u64; 5]);

impl ErrorCounts {
    pub fn get(&self, class: FailureClass) -> u64 {
        self.0[class.index()]
    }

    pub(crate) fn add(&mut self, class: FailureClass) {
        self.0[class.index()] += 1;
    }
}

/// The bus's state, for `stats()`, `/metrics` and `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusStats {
    /// "local" or "redis".
    pub kind: &'static str,
    /// Whether the subscriber connection is up (always, for local).
    pub connected: bool,
    /// Times the subscriber connection was made again after a loss.
    pub reconnects: u64,
    /// Publishes refused (Redis down, or an error answer).
    pub publishes_failed: u64,
    /// Redis errors met, by class: each publish refused, each connection
    /// attempt that failed.
    pub errors: ErrorCounts,
    /// Events delivered from the streams after a reconnect.
    pub caught_up: u64,
    /// `ssehub-gap` events sent, to resuming clients and after a loss.
    pub gaps: u64,
    /// Channels this node is subscribed to.
    pub subscriptions: u64,
    /// Why the connection was last lost or refused, if it was.
    pub last_error: Option<String>,
}

/// The answer to a publish, once the bus has it.
pub type Receipt = Pin<Box<dyn Future<Output = Result<Published, BusError>> + Send>>;

/// A way for events to reach every node's clients.
pub trait Bus: Send + Sync {
    /// Sends `message` to the clients of every node, this one included.
    fn publish(&self, message: Message) -> Receipt;
    /// Whether this bus numbers events (ids, history, resume).
    fn numbers_events(&self) -> bool;
    /// Whether a client that comes back with a `Last-Event-ID` can be
    /// resumed: the bus numbers events, or the hub keeps their history.
    fn keeps_history(&self) -> bool {
        self.numbers_events()
    }
    /// Holds `client`'s live events back for [`Bus::resume`]; call it
    /// before the client joins its channels.
    fn hold(&self, client: ClientId);
    /// Starts resuming `client`, which must have been [`Bus::hold`]-ed
    /// before it joined its channels: it gets what it missed since
    /// `last_id` in them, then live events.
    fn resume(&self, client: ClientId, last_id: &str);
    fn stats(&self) -> BusStats;
    /// Stops the bus: its connections close, later publishes fail.
    fn shutdown(&self);
}

/// One process, no Redis: events fan out into the hub at once. With a
/// history the bus numbers events itself, so a daemon's `--history`
/// works the same way with or without Redis.
pub struct Local {
    hub: Hub,
    numbered: bool,
    next_id: AtomicU64,
}

impl Local {
    /// A local bus; with `numbered`, events get ids 1, 2, ... recorded in
    /// the hub's history.
    pub fn new(hub: Hub, numbered: bool) -> Local {
        Local {
            hub,
            numbered,
            next_id: AtomicU64::new(1),
        }
    }

    /// Publishes now: the same as [`Bus::publish`], without a future.
    pub fn publish_now(&self, message: &Message) -> Result<Published, BusError> {
        if self.numbered && matches!(&message.body, Body::Event { id: Some(_), .. }) {
            return Err(BusError::Invalid(ID_OF_ITS_OWN.into()));
        }
        let seq = self.numbered.then(|| self.next_id.fetch_add(1, Relaxed));
        let frame = message.frame(seq).map_err(BusError::Frame)?;
        let id = match (seq, &message.body) {
            (Some(n), _) => Some(n.to_string()),
            (None, Body::Event { id, .. }) => id.clone(),
            (None, Body::Raw(_)) => None,
        };
        let origin = Origin::Published(id.as_deref());
        let reached = fan_out(&self.hub, message.channels.as_deref(), frame, origin);
        Ok(Published {
            id: seq,
            reached: Some(reached),
        })
    }
}

/// Where a bus numbers events, a publisher's own id would break resume.
const ID_OF_ITS_OWN: &str =
    "the bus numbers events (history is on): an event cannot bring an id of its own";

impl Bus for Local {
    fn publish(&self, message: Message) -> Receipt {
        Box::pin(std::future::ready(self.publish_now(&message)))
    }

    fn numbers_events(&self) -> bool {
        self.numbered
    }

    fn keeps_history(&self) -> bool {
        self.numbered || self.hub.keeps_history()
    }

    /// Nothing to hold: the replay is queued at once, from this hub.
    fn hold(&self, _client: ClientId) {}

    fn resume(&self, client: ClientId, last_id: &str) {
        self.hub.replay(client, last_id);
    }

    fn stats(&self) -> BusStats {
        BusStats {
            kind: "local",
            connected: true,
            ..BusStats::default()
        }
    }

    fn shutdown(&self) {}
}

/// Queues `frame` to the members of `channels`, or to every client when
/// there are none (a message's channels as the hub's target).
fn fan_out(hub: &Hub, channels: Option<&[String]>, frame: Bytes, origin: Origin<'_>) -> usize {
    match channels {
        None => hub.fan_out(Target::All, frame, origin),
        Some(channels) => {
            let names: Vec<&str> = channels.iter().map(String::as_str).collect();
            hub.fan_out(Target::Channels(&names), frame, origin)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubConfig;

    fn event(data: &str) -> Body {
        Body::Event {
            event: None,
            data: Some(data.into()),
            id: None,
            retry: None,
        }
    }

    #[test]
    fn numbered_frames_carry_the_bus_id() {
        let m = Message {
            channels: None,
            body: event("x"),
        };
        assert_eq!(&m.frame(Some(7)).unwrap()[..], b"id: 7\ndata: x\n\n");
        assert_eq!(&m.frame(None).unwrap()[..], b"data: x\n\n");
        let raw = Message {
            channels: None,
            body: Body::Raw(Bytes::from_static(b"data: y\n\n")),
        };
        assert_eq!(&raw.frame(Some(3)).unwrap()[..], b"id: 3\ndata: y\n\n");
    }

    #[test]
    fn a_numbering_local_bus_refuses_an_id_of_its_own() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let hub = Hub::new(HubConfig {
            history: 10,
            heartbeat: None,
            ..HubConfig::default()
        });
        let bus = Local::new(hub.clone(), true);
        let own = Message {
            channels: None,
            body: Body::Event {
                event: None,
                data: Some("d".into()),
                id: Some("mine".into()),
                retry: None,
            },
        };
        assert!(matches!(bus.publish_now(&own), Err(BusError::Invalid(_))));
        let first = bus
            .publish_now(&Message {
                channels: Some(vec!["a".into()]),
                body: event("d"),
            })
            .unwrap();
        assert_eq!(first.id, Some(1));
        assert_eq!(hub.history_len(), 1);
    }
}
