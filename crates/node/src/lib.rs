//! The napi binding: a `NativeHub` class that converts JS values and
//! forwards to the hub through its ordered front. Two transports feed it:
//!
//! - native: JS hands over the fd of an accepted plain-TCP socket; Rust
//!   duplicates it (CLOEXEC), writes the response head and owns the stream
//!   from then on (the core's `writer::Writer`);
//! - external (the JS fallback for TLS, HTTP/2, Unix sockets...): the
//!   client's frames are handed back to JS in batches, to write on `res`.
//!
//! Everything Rust tells JS goes through one weak threadsafe function,
//! `onEvent(id, reason, data)`, so data and the close of one client stay
//! in order and an idle hub never keeps Node's event loop alive.
//!
//! Module map:
//! - [`front`]: the only way to the hub and the bus; keeps every effect in
//!   the order JS asked for it (a fan-out may be pushed by a runtime thread).
//! - [`options`]: `new NativeHub(options)` into the hub's configuration.
//! - [`codes`]: the `code` of each error JS tells apart; every entry point
//!   catches panics, so none can cross into Node.
//! - [`socket`]: Node's fd duplicated into a stream Rust owns; socket options.
//! - [`forward`]: the fallback transport's batches to JS.

mod codes;
mod forward;
mod front;
mod options;
mod receipts;
mod socket;

pub use codes::error_codes;
pub use options::{defaults, Defaults};

use bytes::{Bytes, BytesMut};
use codes::{coded, frame_error, parse_reason, register_error, Code};
use forward::Forward;
use front::Front;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use options::{header_pairs, HubOptions};
use receipts::{Receipts, TicketReceipt};
use socket::{dup_tcp_stream, raw_fd, set_keepalive_idle};
use ssehub_core::bus::redis::{redact, RedisBus, RedisConfig, DEFAULT_TTL};
use ssehub_core::bus::{open_client, Body, Bus, FailureClass, Local, Message};
use ssehub_core::frame::Event;
use ssehub_core::hub::{defaults, ClientId, Hub, Origin, Subscription, Target};
use ssehub_core::queue::CloseReason;
use ssehub_core::runtime::RUNTIME;
use ssehub_core::writer::{self, StreamSettings};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

type EventArgs = FnArgs<(u32, Option<String>, Option<Buffer>)>;
type EventFn = ThreadsafeFunction<EventArgs, (), EventArgs, Status, false, true>;

/// What a publish through Redis came to: its id, or why it was refused
/// (lib/sse.js turns that into a rejected Promise with a `code`).
pub(crate) struct BusReceipt {
    pub id: Option<String>,
    pub error: Option<String>,
    pub code: Option<String>,
}

/// Redis errors met, by class (`stats().bus.errors`).
#[napi(object)]
pub struct BusErrorsJs {
    pub unavailable: f64,
    pub oom: f64,
    pub auth: f64,
    pub cluster: f64,
    pub other: f64,
}

/// The bus part of `stats()`, with Redis on.
#[napi(object)]
pub struct BusStatsJs {
    pub connected: bool,
    pub reconnects: f64,
    pub publishes_failed: f64,
    pub errors: BusErrorsJs,
    pub caught_up: f64,
    pub gaps: f64,
    pub subscriptions: f64,
    pub last_error: Option<String>,
}

/// Counters returned by `stats()`.
#[napi(object)]
pub struct HubStats {
    pub clients: f64,
    pub connected_total: f64,
    pub events_published: f64,
    pub events_delivered: f64,
    pub dropped_slow: f64,
    pub channels: f64,
}

#[napi]
pub struct NativeHub {
    /// The hub and the bus, reached only in order (see [`front`]).
    front: Front,
    headers: Arc<Vec<(String, String)>>,
    preamble: Bytes,
    write_timeout: Option<Duration>,
    on_event: Arc<EventFn>,
    /// The fd of each native client's socket, for socket options. A writer
    /// task removes its entry (under the lock) before the fd is closed, so
    /// an fd number is never used after it could be reused.
    sockets: Arc<Mutex<HashMap<ClientId, i32>>>,
    /// Per fallback client: JS is ready for its next batch.
    acks: Arc<Mutex<HashMap<ClientId, Arc<Notify>>>>,
    /// The frame of the last `send`, for `sendLast`: code written for `sse`
    /// sends the same event to each client in a loop; framed once, it is
    /// shared by all of them like a broadcast's.
    last_frame: Mutex<Bytes>,
    /// Where the outcomes of publishes through Redis go (`onReceipts`).
    receipts: OnceLock<Arc<Receipts>>,
}

#[napi]
impl NativeHub {
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: HubOptions, on_event: Function<EventArgs, ()>) -> Result<Self> {
        let on_event: EventFn = on_event
            .build_threadsafe_function()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        let on_event = Arc::new(on_event);
        let history = options.history.unwrap_or(0) as usize;
        let _rt = RUNTIME.enter();
        let hub = Hub::new(options.hub_config());
        let bus: Box<dyn Bus> = match options.redis_url {
            None => Box::new(Local::new(hub.clone(), false)),
            Some(ref url) => Box::new(
                RedisBus::start(
                    &hub,
                    RedisConfig {
                        url: url.clone(),
                        prefix: options
                            .redis_prefix
                            .clone()
                            .unwrap_or_else(|| defaults::REDIS_PREFIX.into()),
                        history,
                        ttl: options
                            .redis_ttl_s
                            .map_or(DEFAULT_TTL, Duration::from_secs_f64),
                        ca: options.redis_ca.clone().map(String::into_bytes),
                    },
                )
                .inspect(|bus| report_fatal_start(bus, url, on_event.clone()))
                .map_err(|e| coded(&env, Code::InvalidOption, &format!("ssehub: {e}")))?,
            ),
        };
        // A worker's env torn down (terminate()) would leave its streams open
        // for good: close them. The hook must not keep the hub alive; it
        // stays registered until the env goes (a few bytes per hub made):
        // removing it from a finalizer could race the env's own teardown.
        let weak = hub.downgrade();
        env.add_env_cleanup_hook(weak, |weak| {
            if let Some(hub) = weak.upgrade() {
                hub.close_all(CloseReason::Shutdown);
            }
        })?;
        let reporter = on_event.clone();
        hub.on_close(move |id, reason| {
            let args = (id, Some(reason.as_str().to_string()), None).into();
            reporter.call(args, ThreadsafeFunctionCallMode::NonBlocking);
        });
        let write_timeout = options.write_timeout();
        Ok(NativeHub {
            front: Front::new(hub, bus, options.redis_url.is_some()),
            headers: Arc::new(header_pairs(options.headers)),
            preamble: Bytes::from(options.preamble.into_bytes()),
            write_timeout,
            on_event,
            sockets: Arc::default(),
            acks: Arc::default(),
            last_frame: Mutex::default(),
            receipts: OnceLock::new(),
        })
    }

    /// Where `busPublish` outcomes are delivered, in batches of
    /// `{ ticket, id, error, code }` (set once, by lib/engine.js).
    #[napi(catch_unwind)]
    pub fn on_receipts(&self, env: &Env, callback: Function<Vec<TicketReceipt>, ()>) -> Result<()> {
        // A second callback would leave the first one's Promises waiting.
        if self.receipts.get().is_some() {
            return Err(coded(
                env,
                Code::InvalidOption,
                "ssehub: receipts go to one callback",
            ));
        }
        let _ = self.receipts.set(Arc::new(Receipts::new(callback)?));
        Ok(())
    }

    /// Takes over an accepted TCP socket: duplicates `fd`, writes the
    /// response head and serves the stream. JS must then stop reading and
    /// destroy its own copy. Returns the client's id.
    /// `extra_headers` are headers the app set on the response beforehand.
    #[napi(catch_unwind)]
    pub fn adopt(
        &self,
        env: Env,
        fd: i32,
        http11: bool,
        extra_headers: Option<Vec<Vec<String>>>,
    ) -> Result<u32> {
        let stream = dup_tcp_stream(&env, fd)?;
        let sub = self.register(&env)?;
        let id = sub.id();
        let settings = StreamSettings {
            head: self.head(http11, extra_headers.map(header_pairs)),
            chunked: http11,
            write_timeout: self.write_timeout,
        };
        let sockets = self.sockets.clone();
        lock(&sockets).insert(id, raw_fd(&stream));
        // Made a tokio stream here, registered with the runtime's reactor.
        let stream = {
            let _rt = RUNTIME.enter();
            tokio::net::TcpStream::from_std(stream)
        };
        let mut writer = match stream {
            Ok(stream) => writer::Writer::new(stream, sub, settings),
            Err(e) => {
                lock(&sockets).remove(&id);
                return Err(coded(
                    &env,
                    Code::NoFd,
                    &format!("ssehub: cannot register the socket: {e}"),
                ));
            }
        };
        RUNTIME.spawn(async move {
            // By reference: the task holds the writer once.
            (&mut writer).await;
            lock(&sockets).remove(&id);
        });
        Ok(id)
    }

    /// `socket.setNoDelay` on a native client's socket. False if it is gone.
    #[napi(catch_unwind)]
    pub fn set_no_delay(&self, client: u32, on: bool) -> bool {
        self.with_socket(client, |fd| socket::set_nodelay(fd, on))
    }

    /// `socket.setKeepAlive` on a native client's socket: on or off, and
    /// the idle time before the first probe (0 keeps the system's).
    #[napi(catch_unwind)]
    pub fn set_keep_alive(&self, client: u32, on: bool, initial_delay_ms: u32) -> bool {
        self.with_socket(client, |fd| {
            let mut ok = socket::set_keepalive(fd, on);
            if on && initial_delay_ms > 0 {
                let secs = (initial_delay_ms / 1000).max(1) as i32;
                ok &= set_keepalive_idle(fd, secs);
            }
            ok
        })
    }

    fn with_socket(&self, client: u32, apply: impl FnOnce(i32) -> bool) -> bool {
        let sockets = lock(&self.sockets);
        sockets.get(&client).is_some_and(|&fd| apply(fd))
    }

    /// Registers a client whose bytes JS writes itself (the fallback
    /// transport). Its batches arrive through `onEvent(id, null, data)`,
    /// starting with the preamble.
    /// JS wrote the last batch and may take another ([`NativeHub::ack`]).
    #[napi(catch_unwind)]
    pub fn attach(&self, env: Env) -> Result<u32> {
        let sub = self.register(&env)?;
        let id = sub.id();
        let ready = Arc::new(Notify::new());
        lock(&self.acks).insert(id, ready.clone());
        let forward = Forward {
            on_event: self.on_event.clone(),
            ready,
            acks: self.acks.clone(),
        };
        RUNTIME.spawn(forward.run(sub, self.preamble.clone()));
        Ok(id)
    }

    /// A fallback client's last batch is written (or buffered within
    /// bounds): its next one may come.
    #[napi(catch_unwind)]
    pub fn ack(&self, client: u32) {
        if let Some(ready) = lock(&self.acks).get(&client) {
            ready.notify_one();
        }
    }

    /// Queues bytes as they are (`res.write` on a native client), in order
    /// with its events. False if the client is gone.
    #[napi(catch_unwind)]
    pub fn write_raw(&self, client: u32, bytes: Buffer) -> bool {
        let bytes = Bytes::copy_from_slice(&bytes);
        bytes.is_empty() || self.front.hub().send_raw(client, bytes)
    }

    /// A new client of the hub; past `maxClients` or once closed, a coded
    /// error JS answers with a refusal.
    fn register(&self, env: &Env) -> Result<Subscription> {
        self.front
            .hub()
            .register()
            .map_err(|e| register_error(env, e))
    }

    fn head(&self, http11: bool, extra: Option<Vec<(String, String)>>) -> Bytes {
        let head = match extra {
            None => writer::response_head("200 OK", &self.headers, http11),
            Some(extra) => {
                let all: Vec<_> = self.headers.iter().cloned().chain(extra).collect();
                writer::response_head("200 OK", &all, http11)
            }
        };
        let mut out = BytesMut::from(&head[..]);
        if http11 {
            out.extend_from_slice(&writer::chunk(&self.preamble));
        } else {
            out.extend_from_slice(&self.preamble);
        }
        out.freeze()
    }

    /// Frames an event and queues it to one client. False if it is gone.
    #[napi(catch_unwind)]
    pub fn send(
        &self,
        env: Env,
        client: u32,
        event: Option<String>,
        data: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Result<bool> {
        let frame = encode(&env, &event, &data, &id, retry)?;
        *lock(&self.last_frame) = frame.clone();
        Ok(self.front.hub().send(client, frame))
    }

    /// Sends the frame of the last `send` again, to `client`: JS calls it
    /// when a send's fields equal the last one's (same bytes on the wire,
    /// no framing, no copy, one number across napi).
    #[napi(catch_unwind)]
    pub fn send_last(&self, client: u32) -> bool {
        let frame = lock(&self.last_frame).clone();
        self.front.hub().send(client, frame)
    }

    /// Sends the frame of the last `send` to each of `clients`, in order:
    /// the drop-in loop of `client.send(sameArgs)` gathered by
    /// lib/engine.js into one crossing; a runtime thread makes the pushes
    /// (see [`front`]).
    #[napi(catch_unwind)]
    pub fn send_last_many(&self, clients: Uint32Array) {
        let frame = lock(&self.last_frame).clone();
        self.front.send_to_many(&clients, frame);
    }

    /// Frames an event once and queues it to every client.
    #[napi(catch_unwind)]
    pub fn broadcast(
        &self,
        env: Env,
        event: Option<String>,
        data: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Result<u32> {
        let frame = encode(&env, &event, &data, &id, retry)?;
        Ok(self.front.broadcast(frame, id) as u32)
    }

    /// Frames an event once and queues it to the members of the channels.
    #[napi(catch_unwind)]
    pub fn publish(
        &self,
        env: Env,
        channels: Vec<String>,
        event: Option<String>,
        data: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Result<u32> {
        let frame = encode(&env, &event, &data, &id, retry)?;
        let names: Vec<&str> = channels.iter().map(String::as_str).collect();
        let origin = Origin::Published(id.as_deref());
        let reached = self
            .front
            .hub()
            .fan_out(Target::Channels(&names), frame, origin);
        Ok(reached as u32)
    }

    /// Publishes through Redis to `channels` (none: every client of every
    /// node). Returns a ticket; its receipt comes to the `onReceipts`
    /// callback once Redis took the event or refused it.
    #[napi(catch_unwind)]
    pub fn bus_publish(
        &self,
        env: &Env,
        channels: Option<Vec<String>>,
        event: Option<String>,
        data: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Result<u32> {
        let Some(bus) = self.front.shared_bus() else {
            return Err(coded(env, Code::InvalidOption, "ssehub: no redis option"));
        };
        let Some(receipts) = self.receipts.get().cloned() else {
            return Err(coded(
                env,
                Code::InvalidOption,
                "ssehub: no receipts callback",
            ));
        };
        let message = Message {
            channels,
            body: Body::Event {
                event,
                data,
                id,
                retry: retry.map(|r| r as u64),
            },
        };
        let receipt = bus.publish(message);
        let ticket = receipts.ticket();
        RUNTIME.spawn(async move { receipts.settle(ticket, receipt.await) });
        Ok(ticket)
    }

    /// Opens a client as the daemon's routes do (`bus::open_client`):
    /// held when it resumes, then `emit` (the 'connection' handlers, which
    /// join its channels), then what it missed since `last_id` (from Redis
    /// with the redis option, else from this hub's history).
    #[napi(catch_unwind)]
    pub fn welcome(
        &self,
        client: u32,
        last_id: Option<String>,
        emit: Function<(), ()>,
    ) -> Result<()> {
        let mut emitted = Ok(());
        open_client(self.front.bus(), client, last_id.as_deref(), || {
            emitted = emit.call(());
        });
        emitted
    }

    /// The Redis bus's state; null without the redis option.
    #[napi(catch_unwind)]
    pub fn bus_stats(&self) -> Option<BusStatsJs> {
        let s = self.front.shared_bus()?.stats();
        Some(BusStatsJs {
            connected: s.connected,
            reconnects: s.reconnects as f64,
            publishes_failed: s.publishes_failed as f64,
            errors: BusErrorsJs {
                unavailable: s.errors.get(FailureClass::Unavailable) as f64,
                oom: s.errors.get(FailureClass::Oom) as f64,
                auth: s.errors.get(FailureClass::Auth) as f64,
                cluster: s.errors.get(FailureClass::Cluster) as f64,
                other: s.errors.get(FailureClass::Other) as f64,
            },
            caught_up: s.caught_up as f64,
            gaps: s.gaps as f64,
            subscriptions: s.subscriptions as f64,
            last_error: s.last_error,
        })
    }

    #[napi(catch_unwind)]
    pub fn join(&self, client: u32, channel: String) -> bool {
        self.front.hub().join(client, &channel)
    }

    #[napi(catch_unwind)]
    pub fn leave(&self, client: u32, channel: String) -> bool {
        self.front.hub().leave(client, &channel)
    }

    #[napi(catch_unwind)]
    pub fn channels_of(&self, client: u32) -> Vec<String> {
        self.front.hub().channels_of(client)
    }

    /// Wakes the writers of what single sends queued: index.js calls it
    /// once per tick (from a microtask) rather than once per send.
    #[napi(catch_unwind)]
    pub fn flush(&self) {
        self.front.hub().flush_wakes();
    }

    /// Starts closing one client; its close is reported through onEvent.
    #[napi(catch_unwind)]
    pub fn close_client(&self, client: u32, reason: String) -> bool {
        self.front.hub().close_client(client, parse_reason(&reason))
    }

    /// Closes every client gracefully and refuses new ones.
    #[napi(catch_unwind)]
    pub fn close_all(&self) {
        self.front.hub().close_all(CloseReason::Shutdown);
        self.front.bus().shutdown();
    }

    #[napi(catch_unwind)]
    pub fn queued_bytes(&self, client: u32) -> Option<f64> {
        self.front.hub().queued_bytes(client).map(|b| b as f64)
    }

    #[napi(getter, catch_unwind)]
    pub fn client_count(&self) -> u32 {
        self.front.hub().client_count() as u32
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> HubStats {
        let s = self.front.hub().stats();
        HubStats {
            clients: s.clients as f64,
            connected_total: s.connected_total as f64,
            events_published: s.events_published as f64,
            events_delivered: s.events_delivered as f64,
            dropped_slow: s.dropped_slow as f64,
            channels: s.channels as f64,
        }
    }
}

/// A Redis that refuses this node for good (a wrong password or ACL user,
/// a Redis Cluster) is reported to JS as soon as the first connection
/// says so, as client id 0 (never a client's) with reason `bus-error`:
/// lib/sse.js emits it as an 'error'. The bus keeps trying meanwhile, and
/// publishes reject with the same error.
fn report_fatal_start(bus: &RedisBus, url: &str, on_event: Arc<EventFn>) {
    let ready = bus.ready();
    let url = redact(url);
    RUNTIME.spawn(async move {
        let Err(failure) = ready.await else { return };
        if failure.class.is_fatal() {
            let message = format!("ssehub: Redis at {url}: {failure}");
            let args = (
                0,
                Some("bus-error".to_string()),
                Some(message.into_bytes().into()),
            );
            on_event.call(args.into(), ThreadsafeFunctionCallMode::NonBlocking);
        }
    });
}

/// An event's fields from JS, framed once; a field that cannot be framed
/// throws a TypeError-coded error (`ERR_SSEHUB_INVALID_FIELD`).
fn encode(
    env: &Env,
    event: &Option<String>,
    data: &Option<String>,
    id: &Option<String>,
    retry: Option<f64>,
) -> Result<Bytes> {
    let event = Event {
        event: event.as_deref(),
        data: data.as_deref(),
        id: id.as_deref(),
        retry: retry.map(|r| r as u64),
    };
    event.encode().map_err(|e| frame_error(env, e))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
