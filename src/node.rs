//! The napi binding: a `NativeHub` class that converts JS values and
//! forwards to [`Hub`]. Two transports feed it:
//!
//! - native: JS hands over the fd of an accepted plain-TCP socket; Rust
//!   duplicates it (CLOEXEC), writes the response head and owns the stream
//!   from then on ([`conn::serve`]);
//! - external (the JS fallback for TLS, HTTP/2, Unix sockets...): the
//!   client's frames are handed back to JS in batches, to write on `res`.
//!
//! Everything Rust tells JS goes through one weak threadsafe function,
//! `onEvent(id, reason, data)`, so data and the close of one client stay
//! in order and an idle hub never keeps Node's event loop alive.

use crate::conn::{self, StreamSettings};
use crate::frame::{Event, FrameError};
use crate::hub::{ClientId, Hub, HubConfig, RegisterError, Subscription};
use crate::queue::CloseReason;
use crate::runtime::RUNTIME;
use bytes::{Bytes, BytesMut};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

type EventArgs = FnArgs<(u32, Option<String>, Option<Buffer>)>;
type EventFn = ThreadsafeFunction<EventArgs, (), EventArgs, Status, false, true>;

/// Options of one hub, as validated by index.js.
#[napi(object)]
pub struct HubOptions {
    /// Milliseconds between heartbeats on idle streams; 0 turns them off.
    pub heartbeat_ms: Option<u32>,
    /// Recent events kept for Last-Event-ID replay.
    pub history: Option<u32>,
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
}

fn type_error(e: FrameError) -> Error {
    Error::new(Status::InvalidArg, e.to_string())
}

fn register_error(e: RegisterError) -> Error {
    let msg = match e {
        RegisterError::Full => "ssehub: client limit reached",
        RegisterError::Closed => "ssehub: hub is closed",
    };
    Error::new(Status::GenericFailure, msg)
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
    #[napi(constructor)]
    pub fn new(options: HubOptions, on_event: Function<EventArgs, ()>) -> Result<Self> {
        let on_event: EventFn = on_event
            .build_threadsafe_function()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        let on_event = Arc::new(on_event);
        let config = HubConfig {
            max_queue_bytes: options.max_queue_bytes.map_or(1 << 20, |b| b as usize),
            history: options.history.unwrap_or(0) as usize,
            heartbeat: match options.heartbeat_ms.unwrap_or(15_000) {
                0 => None,
                ms => Some(Duration::from_millis(ms.into())),
            },
            max_clients: options.max_clients.unwrap_or(0) as usize,
        };
        let hub = {
            let _rt = RUNTIME.enter();
            Hub::new(config)
        };
        // Node's thread queues; a runtime thread wakes the writers.
        hub.defer_wakes(true);
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
        })
    }

    /// Takes over an accepted TCP socket: duplicates `fd`, writes the
    /// response head and serves the stream. JS must then stop reading and
    /// destroy its own copy. Returns the client's id.
    /// `extra_headers` are headers the app set on the response beforehand.
    #[napi]
    pub fn adopt(
        &self,
        fd: i32,
        http11: bool,
        extra_headers: Option<Vec<Vec<String>>>,
    ) -> Result<u32> {
        let stream = dup_tcp_stream(fd)?;
        let sub = self.hub.register().map_err(register_error)?;
        let id = sub.id();
        let settings = StreamSettings {
            head: self.head(http11, extra_headers.map(header_pairs)),
            chunked: http11,
            write_timeout: self.write_timeout,
        };
        RUNTIME.spawn(async move {
            match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => conn::serve_tcp(stream, sub, settings).await,
                Err(_) => sub.close(CloseReason::Client),
            }
        });
        Ok(id)
    }

    /// Registers a client whose bytes JS writes itself (the fallback
    /// transport). Its batches arrive through `onEvent(id, null, data)`,
    /// starting with the preamble.
    #[napi]
    pub fn attach(&self) -> Result<u32> {
        let sub = self.hub.register().map_err(register_error)?;
        let id = sub.id();
        let on_event = self.on_event.clone();
        let preamble = self.preamble.clone();
        RUNTIME.spawn(forward_to_js(sub, preamble, on_event));
        Ok(id)
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
    #[napi]
    pub fn send(
        &self,
        client: u32,
        event: Option<String>,
        data: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Result<bool> {
        let e = event_of(&event, &data, &id, retry);
        self.hub.send_event(client, &e).map_err(type_error)
    }

    /// Frames an event once and queues it to every client.
    #[napi]
    pub fn broadcast(
        &self,
        event: Option<String>,
        data: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Result<u32> {
        let e = event_of(&event, &data, &id, retry);
        let reached = self.hub.broadcast(&e).map_err(type_error)?;
        Ok(reached as u32)
    }

    /// Frames an event once and queues it to the members of the channels.
    #[napi]
    pub fn publish(
        &self,
        channels: Vec<String>,
        event: Option<String>,
        data: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Result<u32> {
        let e = event_of(&event, &data, &id, retry);
        let names: Vec<&str> = channels.iter().map(String::as_str).collect();
        let reached = self.hub.publish(&names, &e).map_err(type_error)?;
        Ok(reached as u32)
    }

    #[napi]
    pub fn join(&self, client: u32, channel: String) -> bool {
        self.hub.join(client, &channel)
    }

    #[napi]
    pub fn leave(&self, client: u32, channel: String) -> bool {
        self.hub.leave(client, &channel)
    }

    #[napi]
    pub fn channels_of(&self, client: u32) -> Vec<String> {
        self.hub.channels_of(client)
    }

    /// Queues the events a client missed since `last_id`.
    #[napi]
    pub fn replay(&self, client: u32, last_id: String) -> u32 {
        self.hub.replay(client, &last_id) as u32
    }

    /// Wakes the writers of what single sends queued: index.js calls it
    /// once per tick (from a microtask) rather than once per send.
    #[napi]
    pub fn flush(&self) {
        self.hub.flush_wakes();
    }

    /// Starts closing one client; its close is reported through onEvent.
    #[napi]
    pub fn close_client(&self, client: u32, reason: String) -> bool {
        self.hub.close_client(client, parse_reason(&reason))
    }

    /// Closes every client gracefully and refuses new ones.
    #[napi]
    pub fn close_all(&self) {
        self.hub.close_all(CloseReason::Shutdown);
    }

    #[napi]
    pub fn queued_bytes(&self, client: u32) -> Option<f64> {
        self.hub.queued_bytes(client).map(|b| b as f64)
    }

    #[napi(getter)]
    pub fn client_count(&self) -> u32 {
        self.hub.client_count() as u32
    }

    #[napi]
    pub fn stats(&self) -> HubStats {
        let s = self.hub.stats();
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

/// Duplicates a socket fd owned by Node into a non-blocking std stream.
/// Fails (and leaves Node's socket untouched) if `fd` is not a TCP socket.
#[cfg(unix)]
fn dup_tcp_stream(fd: i32) -> Result<std::net::TcpStream> {
    use std::os::fd::BorrowedFd;
    if fd < 0 {
        return Err(Error::new(Status::InvalidArg, "ssehub: invalid fd"));
    }
    // SAFETY: JS passes the fd of a live socket it still owns; it is only
    // borrowed for the duration of the F_DUPFD_CLOEXEC call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned = borrowed.try_clone_to_owned()?;
    let stream = std::net::TcpStream::from(owned);
    stream.peer_addr()?; // not a connected TCP socket: refuse
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(not(unix))]
fn dup_tcp_stream(_fd: i32) -> Result<std::net::TcpStream> {
    Err(Error::new(
        Status::GenericFailure,
        "ssehub: fd adoption needs a Unix platform",
    ))
}

/// The writer task of an external client: passes each batch to JS as one
/// buffer. Ends, and unregisters, when the client closes.
async fn forward_to_js(sub: Subscription, preamble: Bytes, on_event: Arc<EventFn>) {
    let id: ClientId = sub.id();
    let send = |bytes: Vec<u8>| {
        let args = (id, None, Some(Buffer::from(bytes))).into();
        on_event.call(args, ThreadsafeFunctionCallMode::NonBlocking);
    };
    send(preamble.to_vec());
    let mut batch = VecDeque::new();
    while sub.next_batch(&mut batch).await.is_ok() {
        let mut joined = Vec::with_capacity(batch.iter().map(Bytes::len).sum());
        batch.drain(..).for_each(|b| joined.extend_from_slice(&b));
        send(joined);
    }
}
