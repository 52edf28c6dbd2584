//! The napi binding: a `NativeHub` class that converts JS values and
//! forwards to [`Hub`]. Two transports feed it:
//!
//! - native: JS hands over the fd of an accepted plain-TCP socket; Rust
//!   duplicates it (CLOEXEC), writes the response head and owns the stream
//!   from then on ([`conn::Writer`]);
//! - external (the JS fallback for TLS, HTTP/2, Unix sockets...): the
//!   client's frames are handed back to JS in batches, to write on `res`.
//!
//! Everything Rust tells JS goes through one weak threadsafe function,
//! `onEvent(id, reason, data)`, so data and the close of one client stay
//! in order and an idle hub never keeps Node's event loop alive.
//!
//! Errors JS must tell apart carry a stable `code` (see [`Code`]); every
//! entry point catches panics, so none can cross into Node.

use crate::bus::redis::{RedisBus, RedisConfig};
use crate::bus::{Body, Bus, BusError, Message};
use crate::conn::{self, StreamSettings};
use crate::frame::{Event, FrameError};
use crate::hub::{ClientId, Hub, HubConfig, RegisterError, Subscription};
use crate::queue::CloseReason;
use crate::runtime::RUNTIME;
use bytes::{Bytes, BytesMut};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

type EventArgs = FnArgs<(u32, Option<String>, Option<Buffer>)>;
type EventFn = ThreadsafeFunction<EventArgs, (), EventArgs, Status, false, true>;

/// Options of one hub, as validated by index.js.
#[napi(object)]
pub struct HubOptions {
    /// Milliseconds between heartbeats on idle streams; 0 turns them off.
    pub heartbeat_ms: Option<u32>,
    /// Recent events kept for Last-Event-ID replay.
    pub history: Option<u32>,
    /// Frame bytes the replay history may hold.
    pub history_bytes: Option<f64>,
    /// Bytes a client may have queued before it is closed as slow.
    pub max_queue_bytes: Option<f64>,
    /// Clients allowed at once; 0 means no limit.
    pub max_clients: Option<u32>,
    /// Milliseconds a write may stall before the client is closed.
    pub write_timeout_ms: Option<u32>,
    /// Response headers, in order, as `[name, value]` pairs.
    pub headers: Vec<Vec<String>>,
    /// Body bytes every stream starts with (`:ok` and an optional retry).
    pub preamble: String,
    /// Share channels and history with other nodes through this Redis.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel (default `ssehub:`).
    pub redis_prefix: Option<String>,
}

/// What a publish through Redis came to: its id, or why it was refused
/// (index.js turns that into a rejected Promise with a `code`).
#[napi(object)]
pub struct BusReceipt {
    pub id: Option<String>,
    pub error: Option<String>,
    pub code: Option<String>,
}

/// The bus part of `stats()`, with Redis on.
#[napi(object)]
pub struct BusStatsJs {
    pub connected: bool,
    pub reconnects: f64,
    pub publishes_failed: f64,
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
    hub: Hub,
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
    /// Redis, when the hub shares channels with other nodes.
    bus: Option<RedisBus>,
}

impl NativeHub {
    /// The hub, once an offloaded fan-out is done: every call JS makes
    /// takes effect after the ones it made before (see `Hub::settle`).
    fn hub(&self) -> &Hub {
        self.hub.settle();
        &self.hub
    }
}

/// The `code` of each error JS must tell apart.
#[derive(Debug, Clone, Copy)]
enum Code {
    /// `maxClients` are connected.
    ClientLimit,
    /// The hub was closed (`sse.close()`).
    Closed,
    /// A field that cannot be framed (a line break in event or id).
    InvalidField,
    /// The fd could not be duplicated (`EMFILE`...): Node still owns it.
    NoFd,
    /// The socket is not connected any more (the peer reset it).
    NotConnected,
    /// An option that cannot work (a Redis URL that does not parse).
    InvalidOption,
    /// Redis did not take a publish.
    Bus,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::ClientLimit => "ERR_SSEHUB_CLIENT_LIMIT",
            Code::Closed => "ERR_SSEHUB_CLOSED",
            Code::InvalidField => "ERR_SSEHUB_INVALID_FIELD",
            Code::NoFd => "ERR_SSEHUB_NO_FD",
            Code::NotConnected => "ERR_SSEHUB_NOT_CONNECTED",
            Code::InvalidOption => "ERR_SSEHUB_INVALID_OPTION",
            Code::Bus => "ERR_SSEHUB_BUS",
        }
    }
}

/// Throws a JS Error whose `code` is `code`; the returned error only tells
/// napi-rs that an exception is pending.
fn coded(env: &Env, code: Code, message: &str) -> Error {
    match env.throw_error(message, Some(code.as_str())) {
        Ok(()) => Error::new(Status::PendingException, message.to_string()),
        Err(e) => e,
    }
}

fn frame_error(env: &Env, e: FrameError) -> Error {
    coded(env, Code::InvalidField, &e.to_string())
}

fn register_error(env: &Env, e: RegisterError) -> Error {
    match e {
        RegisterError::Full => coded(env, Code::ClientLimit, "ssehub: client limit reached"),
        RegisterError::Closed => coded(env, Code::Closed, "ssehub: hub is closed"),
    }
}

fn parse_reason(reason: &str) -> CloseReason {
    match reason {
        "client" => CloseReason::Client,
        "slow" => CloseReason::Slow,
        "timeout" => CloseReason::Timeout,
        "shutdown" => CloseReason::Shutdown,
        _ => CloseReason::Server,
    }
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
        let config = HubConfig {
            max_queue_bytes: options.max_queue_bytes.map_or(1 << 20, |b| b as usize),
            // With Redis, history lives in its streams, not in this process.
            history: if options.redis_url.is_some() {
                0
            } else {
                history
            },
            history_bytes: options
                .history_bytes
                .map_or(HubConfig::default().history_bytes, |b| b as usize),
            heartbeat: match options.heartbeat_ms.unwrap_or(15_000) {
                0 => None,
                ms => Some(Duration::from_millis(ms.into())),
            },
            max_clients: options.max_clients.unwrap_or(0) as usize,
        };
        let _rt = RUNTIME.enter();
        let hub = Hub::new(config);
        let bus = match options.redis_url {
            None => None,
            Some(url) => Some(
                RedisBus::start(
                    &hub,
                    RedisConfig {
                        url,
                        prefix: options.redis_prefix.unwrap_or_else(|| "ssehub:".into()),
                        history,
                    },
                )
                .map_err(|e| coded(&env, Code::InvalidOption, &format!("ssehub: {e}")))?,
            ),
        };
        // Node's thread queues; a runtime thread wakes the writers.
        hub.defer_wakes(true);
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
        let headers = header_pairs(options.headers);
        Ok(NativeHub {
            hub,
            headers: Arc::new(headers),
            preamble: Bytes::from(options.preamble.into_bytes()),
            write_timeout: options
                .write_timeout_ms
                .filter(|&ms| ms > 0)
                .map(|ms| Duration::from_millis(ms.into())),
            on_event,
            sockets: Arc::default(),
            acks: Arc::default(),
            last_frame: Mutex::default(),
            bus,
        })
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
        let sub = self.hub().register().map_err(|e| register_error(&env, e))?;
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
            Ok(stream) => conn::Writer::new(stream, sub, settings),
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
        self.with_socket(client, |fd| {
            set_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on.into())
        })
    }

    /// `socket.setKeepAlive` on a native client's socket: on or off, and
    /// the idle time before the first probe (0 keeps the system's).
    #[napi(catch_unwind)]
    pub fn set_keep_alive(&self, client: u32, on: bool, initial_delay_ms: u32) -> bool {
        self.with_socket(client, |fd| {
            let mut ok = set_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, on.into());
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
        let sub = self.hub().register().map_err(|e| register_error(&env, e))?;
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
        bytes.is_empty() || self.hub().send_to(client, bytes)
    }

    fn head(&self, http11: bool, extra: Option<Vec<(String, String)>>) -> Bytes {
        let head = match extra {
            None => conn::response_head("200 OK", &self.headers, http11),
            Some(extra) => {
                let all: Vec<_> = self.headers.iter().cloned().chain(extra).collect();
                conn::response_head("200 OK", &all, http11)
            }
        };
        let mut out = BytesMut::from(head.as_bytes());
        if http11 {
            out.extend_from_slice(&conn::chunk(&self.preamble));
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
        let e = event_of(&event, &data, &id, retry);
        let frame = e.encode().map_err(|e| frame_error(&env, e))?;
        *lock(&self.last_frame) = frame.clone();
        Ok(self.hub().send_framed(client, frame))
    }

    /// Sends the frame of the last `send` again, to `client`: JS calls it
    /// when a send's fields equal the last one's (same bytes on the wire,
    /// no framing, no copy, one number across napi).
    #[napi(catch_unwind)]
    pub fn send_last(&self, client: u32) -> bool {
        let frame = lock(&self.last_frame).clone();
        self.hub().send_framed(client, frame)
    }

    /// Sends the frame of the last `send` to each of `clients`, in order:
    /// the drop-in loop of `client.send(sameArgs)` gathered by lib/hub.js
    /// into one crossing; a runtime thread makes the pushes (see
    /// `Hub::broadcast_offloaded`).
    #[napi(catch_unwind)]
    pub fn send_last_many(&self, clients: Uint32Array) {
        let frame = lock(&self.last_frame).clone();
        self.hub().send_framed_to_many(&clients, frame);
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
        let e = event_of(&event, &data, &id, retry);
        let frame = e.encode().map_err(|e| frame_error(&env, e))?;
        Ok(self.hub().broadcast_offloaded(frame, e.id) as u32)
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
        let e = event_of(&event, &data, &id, retry);
        let names: Vec<&str> = channels.iter().map(String::as_str).collect();
        let reached = self
            .hub
            .publish(&names, &e)
            .map_err(|e| frame_error(&env, e))?;
        Ok(reached as u32)
    }

    /// Publishes through Redis to `channels` (none: every client of every
    /// node). Resolves with a receipt once Redis took it or refused it.
    #[napi(catch_unwind)]
    pub fn bus_publish<'env>(
        &self,
        env: &'env Env,
        channels: Option<Vec<String>>,
        event: Option<String>,
        data: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Result<Object<'env>> {
        self.hub.settle();
        let Some(bus) = &self.bus else {
            return Err(coded(env, Code::InvalidOption, "ssehub: no redis option"));
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
        let (deferred, promise) = env.create_deferred()?;
        RUNTIME.spawn(async move {
            let answer = receipt.await;
            deferred.resolve(move |_| Ok(receipt_of(answer)));
        });
        Ok(promise)
    }

    /// Holds a client's live events from Redis until its replay is queued:
    /// call before it joins channels, then `resume`.
    #[napi(catch_unwind)]
    pub fn hold(&self, client: u32) {
        self.hub.settle();
        if let Some(bus) = &self.bus {
            bus.hold(client);
        }
    }

    /// Replays what a client missed since `last_id` (from Redis's streams
    /// with the redis option, else from this hub's history).
    #[napi(catch_unwind)]
    pub fn resume(&self, client: u32, last_id: String) {
        self.hub.settle();
        match &self.bus {
            Some(bus) => bus.resume(client, &last_id),
            None => {
                self.hub().replay(client, &last_id);
            }
        }
    }

    /// The Redis bus's state; null without the redis option.
    #[napi(catch_unwind)]
    pub fn bus_stats(&self) -> Option<BusStatsJs> {
        let s = self.bus.as_ref()?.stats();
        Some(BusStatsJs {
            connected: s.connected,
            reconnects: s.reconnects as f64,
            publishes_failed: s.publishes_failed as f64,
            caught_up: s.caught_up as f64,
            gaps: s.gaps as f64,
            subscriptions: s.subscriptions as f64,
            last_error: s.last_error,
        })
    }

    #[napi(catch_unwind)]
    pub fn join(&self, client: u32, channel: String) -> bool {
        self.hub().join(client, &channel)
    }

    #[napi(catch_unwind)]
    pub fn leave(&self, client: u32, channel: String) -> bool {
        self.hub().leave(client, &channel)
    }

    #[napi(catch_unwind)]
    pub fn channels_of(&self, client: u32) -> Vec<String> {
        self.hub().channels_of(client)
    }

    /// Wakes the writers of what single sends queued: index.js calls it
    /// once per tick (from a microtask) rather than once per send.
    #[napi(catch_unwind)]
    pub fn flush(&self) {
        self.hub().flush_wakes();
    }

    /// Starts closing one client; its close is reported through onEvent.
    #[napi(catch_unwind)]
    pub fn close_client(&self, client: u32, reason: String) -> bool {
        self.hub().close_client(client, parse_reason(&reason))
    }

    /// Closes every client gracefully and refuses new ones.
    #[napi(catch_unwind)]
    pub fn close_all(&self) {
        self.hub().close_all(CloseReason::Shutdown);
        if let Some(bus) = &self.bus {
            bus.shutdown();
        }
    }

    #[napi(catch_unwind)]
    pub fn queued_bytes(&self, client: u32) -> Option<f64> {
        self.hub().queued_bytes(client).map(|b| b as f64)
    }

    #[napi(getter, catch_unwind)]
    pub fn client_count(&self) -> u32 {
        self.hub().client_count() as u32
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> HubStats {
        let s = self.hub().stats();
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

fn receipt_of(answer: std::result::Result<crate::bus::Published, BusError>) -> BusReceipt {
    match answer {
        Ok(published) => BusReceipt {
            id: published.id.map(|n| n.to_string()),
            error: None,
            code: None,
        },
        Err(e) => {
            let code = match e {
                BusError::Frame(_) => Code::InvalidField,
                BusError::Closed => Code::Closed,
                BusError::Invalid(_) | BusError::Unavailable(_) => Code::Bus,
            };
            BusReceipt {
                id: None,
                error: Some(format!("ssehub: {e}")),
                code: Some(code.as_str().into()),
            }
        }
    }
}

/// `[name, value]` arrays from JS into pairs; a value with a line break is
/// dropped (index.js refuses those before they get here).
fn header_pairs(list: Vec<Vec<String>>) -> Vec<(String, String)> {
    list.into_iter()
        .filter_map(|pair| <[String; 2]>::try_from(pair).ok())
        .filter(|[name, value]| !format!("{name}{value}").contains(['\r', '\n']))
        .map(|[name, value]| (name, value))
        .collect()
}

fn event_of<'a>(
    event: &'a Option<String>,
    data: &'a Option<String>,
    id: &'a Option<String>,
    retry: Option<f64>,
) -> Event<'a> {
    Event {
        event: event.as_deref(),
        data: data.as_deref(),
        id: id.as_deref(),
        retry: retry.map(|r| r as u64),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Duplicates a socket fd owned by Node into a non-blocking std stream.
/// Fails (and leaves Node's socket untouched) if `fd` is not a connected
/// TCP socket, with [`Code::NoFd`] when no fd is left to duplicate into.
#[cfg(unix)]
fn dup_tcp_stream(env: &Env, fd: i32) -> Result<std::net::TcpStream> {
    use std::os::fd::BorrowedFd;
    if fd < 0 {
        return Err(Error::new(Status::InvalidArg, "ssehub: invalid fd"));
    }
    // SAFETY: JS passes the fd of a live socket it still owns; it is only
    // borrowed for the duration of the F_DUPFD_CLOEXEC call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned = borrowed.try_clone_to_owned().map_err(|e| {
        coded(
            env,
            Code::NoFd,
            &format!("ssehub: cannot duplicate the socket: {e}"),
        )
    })?;
    let stream = std::net::TcpStream::from(owned);
    let not_connected = |e: std::io::Error| {
        coded(
            env,
            Code::NotConnected,
            &format!("ssehub: socket not connected: {e}"),
        )
    };
    stream.peer_addr().map_err(not_connected)?;
    stream.set_nonblocking(true).map_err(not_connected)?;
    stream.set_nodelay(true).map_err(not_connected)?;
    Ok(stream)
}

#[cfg(not(unix))]
fn dup_tcp_stream(_env: &Env, _fd: i32) -> Result<std::net::TcpStream> {
    Err(Error::new(
        Status::GenericFailure,
        "ssehub: fd adoption needs a Unix platform",
    ))
}

#[cfg(unix)]
fn raw_fd(stream: &std::net::TcpStream) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(stream)
}

#[cfg(not(unix))]
fn raw_fd(_stream: &std::net::TcpStream) -> i32 {
    -1
}

#[cfg(unix)]
fn set_option(fd: i32, level: i32, name: i32, value: i32) -> bool {
    // SAFETY: `fd` is a live socket (see `NativeHub::sockets`); the value
    // is a plain int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(not(unix))]
fn set_option(_fd: i32, _level: i32, _name: i32, _value: i32) -> bool {
    false
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_keepalive_idle(fd: i32, secs: i32) -> bool {
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn set_keepalive_idle(fd: i32, secs: i32) -> bool {
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPALIVE, secs)
}

#[cfg(not(unix))]
fn set_keepalive_idle(_fd: i32, _secs: i32) -> bool {
    false
}

/// The writer task of an external client: passes what is queued to JS in
/// writes made by [`crate::batch`], and hands the next only once JS has
/// written the last (`ack`).
/// So what waits for a slow reader waits in the client's bounded queue,
/// where `maxQueueBytes` applies, never as copies queued toward JS.
struct Forward {
    on_event: Arc<EventFn>,
    ready: Arc<Notify>,
    acks: Arc<Mutex<HashMap<ClientId, Arc<Notify>>>>,
}

impl Forward {
    async fn run(self, sub: Subscription, preamble: Bytes) {
        let id: ClientId = sub.id();
        let mut batch = VecDeque::from([preamble]);
        loop {
            if batch.is_empty() && sub.next_batch(&mut batch).await.is_err() {
                break;
            }
            // The one batching policy: writes of at most 64 KiB, or one
            // big frame as it is (no copy of a whole backlog per batch).
            let write = crate::batch::next_write(&mut batch);
            let args = (id, None, Some(Buffer::from(Vec::from(write)))).into();
            if self
                .on_event
                .call(args, ThreadsafeFunctionCallMode::NonBlocking)
                != Status::Ok
            {
                sub.close(CloseReason::Client); // JS is gone (env torn down)
                break;
            }
            let acked = tokio::select! {
                () = self.ready.notified() => true,
                _ = sub.aborted() => false,
            };
            if !acked {
                break;
            }
        }
        lock(&self.acks).remove(&id);
    }
}
