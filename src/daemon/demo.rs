//! `ssehub demo`: the test stream server, a drop-in for mpetazzoni's
//! sse-server. `/stream` sends a hello event, then one numbered message a
//! second whose random string is the original's for that number;
//! `Last-Event-ID: message-N` resumes at N, `count` bounds the stream.
//! `/status` lists the streams; `/metrics` is ours.

use super::gorand::random_string;
use super::http::{
    date, go_duration, go_error, go_reply, is_http10, reply, rfc3339_nano, scan_int, Form,
    ReplyBody,
};
use super::log::{Logger, Sink, Stamp};
use super::server::{self, Conn, Handler, Listener, NoHooks, Shutdown};
use super::{body::HubBody, metrics};
use crate::frame::Event;
use crate::hub::{ClientId, Hub, HubConfig};
use crate::queue::CloseReason;
use crate::runtime::RUNTIME;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const HELP: &str = "\
usage: ssehub demo [--help]

A Server-Sent Events test stream (drop-in for mpetazzoni/sse-server).
Configured by the environment:
  PORT             port to listen on, every interface (default 8080)
  AUTH_TOKEN       require 'Authorization: Bearer <token>'
  AUTH_TOKEN_FILE  read the token from this file (trimmed); wins over AUTH_TOKEN
  MAX_CLIENTS      streams at once; past it, 503 (default 10000, 0 = no limit)
  METRICS_PUBLIC   1: serve /metrics to every peer (default: loopback peers
                   only, unless AUTH_TOKEN guards it)
Endpoints:
  /stream   hello event, then one message a second; ?count=N ends after N,
            Last-Event-ID: message-N resumes at N
  /status   JSON of the open streams
  /metrics  Prometheus counters";

/// The letters in each message's random string.
const RANDOM_LEN: usize = 16;
/// Largest form body read for `count`.
const FORM_LIMIT: usize = 64 * 1024;

/// One open stream, for `/status`.
struct Stream {
    connected_at: SystemTime,
    /// The next message number (the original's `lastEventId`).
    next: Arc<AtomicI64>,
}

/// The demo server's shared state.
struct Demo {
    hub: Hub,
    /// The bearer token clients must send, if any.
    token: Option<String>,
    /// Time between messages (1 s; a hidden variable shortens it for tests).
    interval: Duration,
    /// Open streams by remote address (the original's unsynchronised map).
    streams: Mutex<BTreeMap<String, Stream>>,
    /// Lines on stdout, as the original prints them.
    log: Logger,
    /// `/metrics` (ours, not the original's) for every peer.
    metrics_public: bool,
}

/// Runs the demo mode; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" || arg == "-help" {
            println!("{HELP}");
            return 0;
        }
        eprintln!("ssehub demo: unexpected argument '{arg}' (configure with PORT, AUTH_TOKEN, AUTH_TOKEN_FILE; see --help)");
        return 64;
    }
    let port = std::env::var("PORT").ok().filter(|p| !p.is_empty());
    let port = port.unwrap_or_else(|| "8080".into());
    let Some(port) = server::parse_port(&port) else {
        eprintln!("ssehub demo: PORT '{port}' is not a port number or service name");
        return 64;
    };
    let interval = std::env::var("SSEHUB_DEMO_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis);
    let max_clients = match std::env::var("MAX_CLIENTS").ok().filter(|v| !v.is_empty()) {
        None => server::DEFAULT_MAX_CLIENTS,
        Some(v) => match server::parse_max_clients(&v) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("ssehub demo: MAX_CLIENTS: {e}");
                return 64;
            }
        },
    };
    let settings = Settings {
        port,
        token: auth_token(),
        interval,
        max_clients,
    };
    RUNTIME.block_on(serve(settings))
}

/// The token from `AUTH_TOKEN_FILE` (trimmed) or else `AUTH_TOKEN`.
fn auth_token() -> Option<String> {
    let env = std::env::var("AUTH_TOKEN").ok().filter(|t| !t.is_empty());
    let Some(path) = std::env::var("AUTH_TOKEN_FILE")
        .ok()
        .filter(|p| !p.is_empty())
    else {
        return env;
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let token = String::from_utf8_lossy(&bytes).trim().to_string();
            if token.is_empty() {
                eprintln!("Token file '{path}' is empty; ignoring.");
                return env;
            }
            Some(token)
        }
        Err(e) => {
            eprintln!(
                "Error reading token from '{path}': open {path}: {}; ignoring.",
                os_error(&e)
            );
            env
        }
    }
}

/// An OS error in Go's words (`no such file or directory`).
fn os_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The demo's settings, from its environment.
struct Settings {
    port: u16,
    token: Option<String>,
    interval: Duration,
    max_clients: usize,
}

async fn serve(settings: Settings) -> i32 {
    let Settings {
        port,
        token,
        interval,
        max_clients,
    } = settings;
    let tcp = match server::bind(&format!(":{port}"), "").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ssehub demo: cannot listen on :{port}: {e}");
            return 73;
        }
    };
    let bound = tcp.local_addr().map_or(port, |a| a.port());
    let demo = Arc::new(Demo {
        hub: Hub::new(HubConfig {
            max_clients,
            ..HubConfig::default()
        }),
        token,
        interval,
        streams: Mutex::new(BTreeMap::new()),
        log: Logger::new(Sink::Stdout, Stamp::Bare),
        metrics_public: std::env::var("METRICS_PUBLIC").is_ok_and(|v| v == "1"),
    });
    demo.log
        .line(format_args!("Starting sse-server at :{bound} ..."));
    let shutdown = Shutdown::default();
    let said = demo.clone();
    if let Err(e) = server::on_signals(shutdown.clone(), move |sig| {
        said.log.line(format_args!("Received {sig}, stopping."));
    }) {
        eprintln!("ssehub demo: cannot watch signals: {e}");
        return 71;
    }
    let app = demo.clone();
    let handler: Handler = Arc::new(move |req, conn| Box::pin(handle(app.clone(), req, conn)));
    let listener = Listener {
        tcp,
        tls: None,
        max_connections: server::connection_cap(max_clients),
        ids: Arc::new(AtomicU64::new(1)),
    };
    let served = tokio::spawn(server::serve(
        listener,
        handler,
        Arc::new(NoHooks),
        shutdown.clone(),
    ));
    shutdown.wait().await;
    demo.hub.close_all(CloseReason::Shutdown);
    let _ = served.await;
    0
}

async fn handle(demo: Arc<Demo>, req: Request<Incoming>, conn: Conn) -> Response<ReplyBody> {
    let path = req.uri().path();
    if !matches!(path, "/stream" | "/status" | "/metrics") {
        return not_found();
    }
    if !demo.authorized(&req) {
        return unauthorized();
    }
    if path == "/metrics" && !metrics_allowed(conn.peer, demo.token.is_some(), demo.metrics_public)
    {
        return not_found();
    }
    let started = Instant::now();
    let addr = conn.peer.to_string();
    let line = format!("<- {addr}: {} {}", req.method(), req.uri());
    match path {
        "/stream" => stream(demo, req, &conn, addr, line, started).await,
        "/status" => {
            let res = demo.status();
            demo.log_request(&line, 200, started);
            res
        }
        _ => {
            let res = metrics::metrics_reply("demo", &demo.hub.stats());
            demo.log_request(&line, 200, started);
            res
        }
    }
}

impl Demo {
    /// Exactly `Authorization: Bearer <token>`, compared in constant time.
    fn authorized<B>(&self, req: &Request<B>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let want = format!("Bearer {token}");
        let got = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map_or(&[][..], |v| v.as_bytes());
        got.len() == want.len()
            && got
                .iter()
                .zip(want.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn log_request(&self, line: &str, status: u16, started: Instant) {
        self.log.line(format_args!(
            "{line} {status} ({})",
            go_duration(started.elapsed())
        ));
    }

    /// `/status`: the open streams as the original's JSON.
    fn status(&self) -> Response<ReplyBody> {
        let mut body = String::from("{");
        for (i, (addr, s)) in lock(&self.streams).iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let key = serde_json::to_string(addr).unwrap_or_default();
            body.push_str(&format!(
                "{key}:{{\"remote\":{key},\"connectedAt\":\"{}\",\"lastEventId\":{}}}",
                rfc3339_nano(s.connected_at),
                s.next.load(Ordering::Relaxed)
            ));
        }
        body.push('}');
        go_reply(StatusCode::OK, "application/json", body)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `/metrics` is served to `peer`: our addition shares the public
/// port, so it stays private (loopback) unless a token guards the port or
/// `METRICS_PUBLIC=1` opens it deliberately.
fn metrics_allowed(peer: std::net::SocketAddr, token_set: bool, public: bool) -> bool {
    public || token_set || peer.ip().is_loopback()
}

/// The message number a `Last-Event-ID` resumes at: `sscanf("message-%d")`,
/// 1 when it does not match.
pub fn resume_from(last_event_id: Option<&str>) -> i64 {
    last_event_id
        .and_then(|v| v.strip_prefix("message-"))
        .and_then(scan_int)
        .unwrap_or(1)
}

/// The number after the last message to send: `start + count`, saturated
/// (the original overflowed here and never ended a negative resume).
pub fn limit(start: i64, count: Option<i64>) -> i64 {
    count.map_or(i64::MAX, |c| start.saturating_add(c))
}

/// One message's id and data.
pub fn message_parts(n: i64, unix_time: u64) -> (String, String) {
    let data = format!(
        "{{\n  \"time\": {unix_time},\n  \"random\": \"{}\"\n}}",
        random_string(n, RANDOM_LEN)
    );
    (format!("message-{n}"), data)
}

async fn stream(
    demo: Arc<Demo>,
    req: Request<Incoming>,
    conn: &Conn,
    addr: String,
    line: String,
    started: Instant,
) -> Response<ReplyBody> {
    let http10 = is_http10(&req);
    let last_id = req
        .headers()
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let start = resume_from(last_id.as_deref());
    let Some(form) = Form::read(req, FORM_LIMIT).await else {
        demo.log_request(&line, 413, started);
        return empty_reply(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let count = scan_int(form.value("count"));
    if count.is_some_and(|c| c < 0) {
        demo.log_request(&line, 400, started);
        return empty_reply(StatusCode::BAD_REQUEST);
    }
    let limit = limit(start, count);
    let sub = match demo.hub.register() {
        Ok(sub) => sub,
        Err(_) => return unavailable(),
    };
    demo.log.line(format_args!(
        "Starting stream for {addr}, {start} -> {limit} ..."
    ));
    let next = Arc::new(AtomicI64::new(start));
    lock(&demo.streams).insert(
        addr.clone(),
        Stream {
            connected_at: SystemTime::now(),
            next: next.clone(),
        },
    );
    let hello_data = format!("Hello, {addr}!");
    let hello = Event {
        id: Some("hello"),
        data: Some(&hello_data),
        ..Event::default()
    }
    .encode()
    .ok();
    tokio::spawn(tick(demo.clone(), sub.id(), start, limit, next));
    let ending = demo.clone();
    let body = ReplyBody::stream(HubBody::new(sub, hello, conn)).on_end(move |_| {
        lock(&ending.streams).remove(&addr);
        ending
            .log
            .line(format_args!("Client {addr} closed connection."));
        ending.log_request(&line, 200, started);
    });
    let expected = count.map(|c| c.to_string());
    let now = date();
    let mut headers = vec![
        ("Access-Control-Allow-Headers", "*"),
        ("Access-Control-Allow-Methods", "GET"),
        ("Access-Control-Allow-Origin", "*"),
        ("Cache-Control", "no-cache"),
    ];
    if !http10 {
        headers.push(("Connection", "keep-alive"));
    }
    headers.push(("Content-Type", "text/event-stream"));
    headers.push(("X-Accel-Buffering", "no"));
    if let Some(n) = &expected {
        headers.push(("X-Expected-Events", n));
    }
    headers.push(("Date", &now));
    if !http10 {
        headers.push(("Transfer-Encoding", "chunked"));
    }
    reply(StatusCode::OK, &headers, body)
}

/// Sends messages `start..limit`, one per interval, then ends the stream.
async fn tick(demo: Arc<Demo>, id: ClientId, start: i64, limit: i64, next: Arc<AtomicI64>) {
    let mut timer =
        tokio::time::interval_at(tokio::time::Instant::now() + demo.interval, demo.interval);
    let mut n = start;
    while n < limit {
        timer.tick().await;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (event_id, data) = message_parts(n, now);
        let event = Event {
            id: Some(&event_id),
            data: Some(&data),
            ..Event::default()
        };
        if !matches!(demo.hub.send_event(id, &event), Ok(true)) {
            return;
        }
        n += 1;
        next.store(n, Ordering::Relaxed);
    }
    demo.hub.close_client(id, CloseReason::Server);
}

fn not_found() -> Response<ReplyBody> {
    go_error(StatusCode::NOT_FOUND, "404 page not found")
}

fn unauthorized() -> Response<ReplyBody> {
    reply(
        StatusCode::UNAUTHORIZED,
        &[
            ("Access-Control-Allow-Headers", "*"),
            ("Access-Control-Allow-Methods", "GET"),
            ("Access-Control-Allow-Origin", "*"),
            ("Date", &date()),
            ("Content-Length", "0"),
        ],
        ReplyBody::empty(),
    )
}

fn unavailable() -> Response<ReplyBody> {
    empty_reply(StatusCode::SERVICE_UNAVAILABLE)
}

/// A status with an empty body, as Go writes `w.WriteHeader(code)`.
fn empty_reply(status: StatusCode) -> Response<ReplyBody> {
    reply(
        status,
        &[("Date", &date()), ("Content-Length", "0")],
        ReplyBody::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_is_parsed_like_sscanf() {
        assert_eq!(resume_from(Some("message-4")), 4);
        assert_eq!(resume_from(Some("message--3")), -3);
        assert_eq!(resume_from(Some("message-7xyz")), 7);
        assert_eq!(resume_from(Some("message- 9")), 9);
        assert_eq!(resume_from(Some("message-0")), 0);
        assert_eq!(resume_from(Some("garbage")), 1);
        assert_eq!(resume_from(Some("message-")), 1);
        assert_eq!(resume_from(None), 1);
    }

    #[test]
    fn metrics_are_private_unless_guarded_or_opened() {
        let remote: std::net::SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let local: std::net::SocketAddr = "[::1]:5000".parse().unwrap();
        assert!(!metrics_allowed(remote, false, false));
        assert!(metrics_allowed(local, false, false));
        assert!(metrics_allowed(remote, true, false));
        assert!(metrics_allowed(remote, false, true));
    }

    #[test]
    fn a_negative_resume_still_ends() {
        assert_eq!(limit(-3, Some(2)), -1);
        assert_eq!(limit(1, Some(3)), 4);
        assert_eq!(limit(1, None), i64::MAX);
        assert_eq!(limit(i64::MAX - 1, Some(5)), i64::MAX);
    }

    #[test]
    fn message_frame_matches_the_capture() {
        let (id, data) = message_parts(1, 1795312920);
        let frame = Event {
            id: Some(&id),
            data: Some(&data),
            ..Event::default()
        }
        .encode()
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&frame).unwrap(),
            "id: message-1\ndata: {\ndata:   \"time\": 1795312920,\ndata:   \"random\": \"spheIGLpzXpFGMIH\"\ndata: }\n\n"
        );
    }

    #[test]
    fn go_os_error_words() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error(&e), "no such file or directory");
    }
}
