//! `ssehub demo`: the test stream server, a drop-in for mpetazzoni's
//! sse-server. `/stream` sends a hello event, then one numbered message a
//! second whose random string is the original's for that number;
//! `Last-Event-ID: message-N` resumes at N, `count` bounds the stream.
//! `/status` lists the streams; `/metrics` and the status page are ours,
//! and so is `/`, a short page linking them (the original answered 404).
//! Reached through a loopback address, every page but `/stream` answers
//! only requests for a loopback host, by the rule channels and jwt apply
//! to their operator listeners ([`loopback_host`]).

use super::app::{self, App, Budget};
use super::exit::{self, Fail};
use super::go::rand::random_string;
use super::go::text::{go_duration, rfc3339_nano, scan_int};
use super::log::{Logger, Sink, Stamp};
use super::metrics::{forbidden_host, loopback_host, Ops};
use super::net::addr;
use super::net::form::{go_parse_query, Form};
use super::net::head::{self, Limits, RequestInfo};
use super::net::peer::Conn;
use super::net::reply::{date, go_error, go_reply, reply, ReplyBody};
use super::net::server::{Opening, Reply, Service};
use super::net::stream::{Refuse, StreamReply};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use ssehub_core::frame::Event;
use ssehub_core::hub::{ClientId, Hub, HubConfig};
use ssehub_core::queue::CloseReason;
use ssehub_core::runtime::RUNTIME;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const HELP: &str = "\
usage: ssehub demo [--help]

A Server-Sent Events test stream (drop-in for mpetazzoni/sse-server).
Configured by the environment:
  PORT             port to listen on (default 8080)
  HOST             address to listen on (default: every interface;
                   127.0.0.1 for loopback only)
  AUTH_TOKEN       require 'Authorization: Bearer <token>'
  AUTH_TOKEN_FILE  read the token from this file (trimmed); wins over AUTH_TOKEN
  TLS_CERT         TLS (and HTTP/2 by ALPN) with this PEM certificate chain
  TLS_KEY          and this PEM private key
  MAX_HEADER_SIZE  longest request head accepted, in bytes (default 16384)
  REFUSE           retry: past MAX_CLIENTS or while stopping, answer 200 with
                   a retry: hint (browsers come back) instead of a 503
  MAX_CLIENTS      streams at once; past it, 503 (default: the open-file
                   limit less a reserve; 0 = no limit)
  METRICS_PUBLIC   1: serve /metrics to every peer (default: loopback peers
                   only, unless AUTH_TOKEN guards it)
Endpoints:
  /         a short page linking the others
  /stream   hello event, then one message a second; ?count=N ends after N,
            Last-Event-ID: message-N resumes at N
  /status   JSON of the open streams
  /ui/      the status page (from this machine)
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
    log: Arc<Logger>,
    /// `/metrics` (ours, not the original's) for every peer.
    metrics_public: bool,
    ops: Ops,
    /// How a stream is refused at the client limit or in the drain.
    refuse: Refuse,
}

/// Runs the demo mode; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" || arg == "-help" {
            println!("{HELP}");
            return exit::OK;
        }
        eprintln!("ssehub demo: unexpected argument '{arg}' (configure with PORT, HOST, AUTH_TOKEN, AUTH_TOKEN_FILE; see --help)");
        return exit::USAGE;
    }
    match settings().and_then(|s| RUNTIME.block_on(serve(s))) {
        Ok(code) => code,
        Err(f) => f.report("demo"),
    }
}

/// The settings from the environment, as the original reads it.
fn settings() -> Result<Settings, Fail> {
    let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let port = env("PORT").unwrap_or_else(|| "8080".into());
    let Some(port) = addr::parse_port(&port) else {
        return Err(exit::fail(
            exit::USAGE,
            format!("PORT '{port}' is not a port number or service name"),
        ));
    };
    let interval = env("SSEHUB_DEMO_INTERVAL_MS")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis);
    let max_clients = match env("MAX_CLIENTS") {
        None => None,
        Some(v) => Some(
            app::parse_max_clients(&v)
                .map_err(|e| exit::fail(exit::USAGE, format!("MAX_CLIENTS: {e}")))?,
        ),
    };
    let tls = match (env("TLS_CERT"), env("TLS_KEY")) {
        (Some(c), Some(k)) => {
            Some(super::net::tls::acceptor(&c, &k).map_err(|e| exit::fail(exit::UNAVAILABLE, e))?)
        }
        (None, None) => None,
        _ => return Err(exit::fail(exit::USAGE, "TLS_CERT and TLS_KEY go together")),
    };
    let mut limits = Limits::default();
    if let Some(v) = env("MAX_HEADER_SIZE") {
        limits.max_head = head::parse_max_head(&v)
            .map_err(|e| exit::fail(exit::USAGE, format!("MAX_HEADER_SIZE: {e}")))?;
    }
    let refuse = match env("REFUSE") {
        None => Refuse::default(),
        Some(v) => {
            Refuse::parse(&v).map_err(|e| exit::fail(exit::USAGE, format!("REFUSE: {e}")))?
        }
    };
    Ok(Settings {
        tls,
        refuse,
        limits,
        host: env("HOST").unwrap_or_default(),
        port,
        token: auth_token(),
        interval,
        max_clients,
    })
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
    host: String,
    port: u16,
    token: Option<String>,
    interval: Duration,
    max_clients: Option<usize>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    refuse: Refuse,
    limits: Limits,
}

async fn serve(settings: Settings) -> Result<i32, Fail> {
    let Settings {
        host,
        port,
        token,
        interval,
        max_clients,
        tls,
        refuse,
        limits,
    } = settings;
    let log = Arc::new(Logger::new(Sink::Stdout, Stamp::Bare));
    let said = log.clone();
    let mut app = App::new(limits, 1, move |sig| {
        said.line(format_args!("Received {sig}, stopping."));
    })?;
    let spec = if host.is_empty() {
        format!(":{port}")
    } else {
        format!("{host}:{port}")
    };
    let tcp = app::bind(&spec, "").await?;
    let bound = tcp.local_addr().map_or(port, |a| a.port());
    let budget = Budget::new(max_clients);
    let demo = Arc::new(Demo {
        hub: Hub::new(HubConfig {
            max_clients: budget.max_clients,
            ..HubConfig::default()
        }),
        token,
        interval,
        streams: Mutex::new(BTreeMap::new()),
        log,
        metrics_public: std::env::var("METRICS_PUBLIC").is_ok_and(|v| v == "1"),
        ops: Ops::new("demo", app.shutdown.clone()),
        refuse,
    });
    demo.log
        .line(format_args!("Starting sse-server at :{bound} ..."));
    // Ours, after the original's line: where to point a browser or curl.
    let base = base_url(&host, bound, tls.is_some());
    demo.log.line(format_args!("  stream:      {base}/stream"));
    demo.log
        .line(format_args!("  status page: {base}/ui/ (from this machine)"));
    app.serve(
        tcp,
        tls,
        budget.web_connections,
        Arc::new(Web(demo.clone())),
    );
    let code = app.run(&demo.hub).await;
    demo.log.flush();
    Ok(code)
}

/// The URL a browser on this machine reaches the demo at: the listening
/// host, or loopback when it listens on every interface.
fn base_url(host: &str, port: u16, tls: bool) -> String {
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        "::" | "[::]" => "[::1]".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}:{port}")
}

/// What `/` answers: a page that links the stream and the status pages.
const HOME: &str = "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>ssehub demo</title></head>
<body>
<h1>ssehub demo</h1>
<p>A Server-Sent Events test stream (a drop-in for mpetazzoni/sse-server).</p>
<ul>
<li><a href=\"stream\">/stream</a>: a hello event, then one message a second
(<a href=\"stream?count=5\">/stream?count=5</a> ends after 5;
<code>Last-Event-ID: message-N</code> resumes at N)</li>
<li><a href=\"ui/\">/ui/</a>: the status page (from this machine)</li>
<li><a href=\"status\">/status</a>: the open streams, as JSON</li>
</ul>
<p>In a page: <code>new EventSource('/stream').onmessage = (e) =&gt; console.log(e.data)</code></p>
</body>
</html>
";

/// The home page: static, no script, not to be framed.
fn home() -> Response<ReplyBody> {
    reply(
        StatusCode::OK,
        &[
            ("Content-Type", "text/html; charset=utf-8"),
            (
                "Content-Security-Policy",
                "default-src 'none'; frame-ancestors 'none'",
            ),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Date", &date()),
            ("Content-Length", &HOME.len().to_string()),
        ],
        ReplyBody::full(HOME),
    )
}

/// What a request asks for.
enum Route {
    /// Ours: `/`, a page linking the others.
    Home,
    Stream,
    /// The original's `/status`.
    Status,
    /// Ours: `/metrics`, `/healthz`, `/readyz`, `/ui/` and its files
    /// (private peers).
    Ops,
    NotFound,
}

fn route(req: &dyn RequestInfo) -> Route {
    match req.path() {
        "/" => Route::Home,
        "/stream" => Route::Stream,
        "/status" => Route::Status,
        "/metrics" | "/healthz" | "/readyz" | "/ui" | "/ui/" | "/ui/status" | "/ui/app.css"
        | "/ui/app.js" => Route::Ops,
        _ => Route::NotFound,
    }
}

/// The demo's one listener.
struct Web(Arc<Demo>);

impl Service for Web {
    /// A `/stream` without a body: its `count` is in the query.
    fn open_stream(&self, req: &dyn RequestInfo, conn: &Conn) -> Opening {
        if !matches!(route(req), Route::Stream) {
            return Opening::NotAStream;
        }
        if !self.0.authorized(req) {
            return Opening::Refused(unauthorized());
        }
        let query = go_parse_query(req.query().unwrap_or(""));
        let count = query
            .iter()
            .find(|(k, _)| k == "count")
            .map_or("", |(_, v)| v);
        self.0.open(req, conn, scan_int(count), Instant::now())
    }

    fn handle(self: Arc<Self>, req: Request<Incoming>, conn: Conn) -> Reply {
        Box::pin(handle(self.0.clone(), req, conn))
    }
}

async fn handle(demo: Arc<Demo>, req: Request<Incoming>, conn: Conn) -> Response<ReplyBody> {
    let route = route(&req);
    if matches!(route, Route::NotFound) {
        return not_found();
    }
    // A rebound page (a foreign Host through loopback) must not read the
    // operator pages: they are refused, and `/status`, public in the
    // original, shows it the public view, without the peers' addresses.
    let host_ok = loopback_host(&req, &conn);
    if matches!(route, Route::Ops) && !host_ok {
        return forbidden_host();
    }
    if !demo.authorized(&req) {
        return unauthorized();
    }
    let private = host_ok && metrics_allowed(conn.peer, demo.token.is_some(), demo.metrics_public);
    if matches!(route, Route::Ops) && !private {
        return not_found();
    }
    let started = Instant::now();
    let line = request_line(&req, conn.peer);
    match route {
        Route::Stream => {
            let (parts, body) = req.into_parts();
            let head = Request::from_parts(parts, ());
            let form = match Form::of(&head, body, FORM_LIMIT).await {
                Ok(form) => form,
                Err(e) => {
                    demo.log_request(&line, e.status().as_u16(), started);
                    return empty_reply(e.status());
                }
            };
            match demo.open(&head, &conn, scan_int(form.value("count")), started) {
                Opening::Stream(stream) => stream.into_hyper(&conn),
                Opening::Refused(res) => res,
                Opening::NotAStream => unreachable!("a stream route opens or refuses"),
            }
        }
        Route::Status => {
            let res = demo.status(private);
            demo.log_request(&line, 200, started);
            res
        }
        Route::Home => {
            demo.log_request(&line, 200, started);
            home()
        }
        _ => {
            let res = demo
                .ops
                .reply(req.uri().path(), &demo.hub, &demo.log)
                .unwrap_or_else(not_found);
            demo.log_request(&line, res.status().as_u16(), started);
            res
        }
    }
}

/// The original's log of a request: `<- 127.0.0.1:5000: GET /stream?count=3`.
fn request_line(req: &dyn RequestInfo, peer: std::net::SocketAddr) -> String {
    let target = match req.query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_string(),
    };
    format!("<- {peer}: {} {target}", req.method())
}

impl Demo {
    /// Exactly `Authorization: Bearer <token>`, compared in constant time.
    fn authorized(&self, req: &dyn RequestInfo) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let want = format!("Bearer {token}");
        let got = req.header("authorization").unwrap_or(b"");
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

    /// `/status`: the open streams as the original's JSON. Their addresses
    /// are the private detail: shown to the peers `/metrics` is served to,
    /// numbered instead for the others.
    fn status(&self, private: bool) -> Response<ReplyBody> {
        let mut body = String::from("{");
        for (i, (addr, s)) in lock(&self.streams).iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let shown = if private {
                addr.clone()
            } else {
                format!("stream-{}", i + 1)
            };
            let key = serde_json::to_string(&shown).unwrap_or_default();
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

impl Demo {
    /// Opens a `/stream` (`count` from the query or the form): the hello
    /// event, then one message per interval from the resumed number. 400
    /// for a negative count, 503 when the hub is full.
    fn open(
        self: &Arc<Self>,
        req: &dyn RequestInfo,
        conn: &Conn,
        count: Option<i64>,
        started: Instant,
    ) -> Opening {
        let line = request_line(req, conn.peer);
        let addr = conn.peer.to_string();
        let last_id = req.last_event_id();
        let start = resume_from(last_id.as_deref());
        if count.is_some_and(|c| c < 0) {
            self.log_request(&line, 400, started);
            return Opening::Refused(empty_reply(StatusCode::BAD_REQUEST));
        }
        let limit = limit(start, count);
        let Ok(sub) = self.hub.register() else {
            return Opening::Refused(self.refuse.answer(unavailable));
        };
        self.log.line(format_args!(
            "Starting stream for {addr}, {start} -> {limit} ..."
        ));
        let next = Arc::new(AtomicI64::new(start));
        let stream = Stream {
            connected_at: SystemTime::now(),
            next: next.clone(),
        };
        lock(&self.streams).insert(addr.clone(), stream);
        let hello_data = format!("Hello, {addr}!");
        let hello = Event {
            id: Some("hello"),
            data: Some(&hello_data),
            ..Event::default()
        }
        .encode()
        .ok();
        tokio::spawn(tick(self.clone(), sub.id(), start, limit, next));
        let ending = self.clone();
        let on_end = move || {
            lock(&ending.streams).remove(&addr);
            ending
                .log
                .line(format_args!("Client {addr} closed connection."));
            ending.log_request(&line, 200, started);
        };
        Opening::Stream(StreamReply {
            sub,
            headers: stream_headers(req.http10(), count),
            first: hello,
            http10: req.http10(),
            on_end: Some(Box::new(on_end)),
        })
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

/// The original's stream headers, in its order.
fn stream_headers(http10: bool, count: Option<i64>) -> Vec<(&'static str, String)> {
    let mut headers: Vec<(&'static str, String)> = vec![
        ("Access-Control-Allow-Headers", "*".into()),
        ("Access-Control-Allow-Methods", "GET".into()),
        ("Access-Control-Allow-Origin", "*".into()),
        ("Cache-Control", "no-cache".into()),
    ];
    if !http10 {
        headers.push(("Connection", "keep-alive".into()));
    }
    headers.push(("Content-Type", "text/event-stream".into()));
    headers.push(("X-Accel-Buffering", "no".into()));
    if let Some(n) = count {
        headers.push(("X-Expected-Events", n.to_string()));
    }
    headers.push(("Date", date()));
    if !http10 {
        headers.push(("Transfer-Encoding", "chunked".into()));
    }
    headers
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
        if !event.encode().is_ok_and(|frame| demo.hub.send(id, frame)) {
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
    fn the_printed_url_is_one_a_browser_here_reaches() {
        assert_eq!(base_url("", 8080, false), "http://127.0.0.1:8080");
        assert_eq!(base_url("0.0.0.0", 1, false), "http://127.0.0.1:1");
        assert_eq!(base_url("[::]", 2, true), "https://[::1]:2");
        assert_eq!(base_url("[::1]", 3, false), "http://[::1]:3");
        assert_eq!(base_url("localhost", 4, false), "http://localhost:4");
        assert_eq!(base_url("127.0.0.1", 5, true), "https://127.0.0.1:5");
    }

    #[test]
    fn public_status_numbers_the_streams_instead_of_naming_their_peers() {
        let demo = Demo {
            hub: Hub::new(HubConfig {
                heartbeat: None,
                ..HubConfig::default()
            }),
            token: None,
            interval: Duration::from_secs(1),
            streams: Mutex::new(BTreeMap::new()),
            log: Arc::new(Logger::new(Sink::Off, Stamp::Bare)),
            metrics_public: false,
            ops: Ops::new("demo", crate::net::shutdown::Shutdown::default()),
            refuse: Refuse::default(),
        };
        let stream = Stream {
            connected_at: SystemTime::UNIX_EPOCH,
            next: Arc::new(AtomicI64::new(3)),
        };
        lock(&demo.streams).insert("198.51.100.7:40001".into(), stream);
        let body = |private| {
            let res = demo.status(private);
            String::from_utf8(crate::net::reply::encode_full(res, false).to_vec()).unwrap()
        };
        let private = body(true);
        assert!(
            private.contains("\"198.51.100.7:40001\":{\"remote\":\"198.51.100.7:40001\""),
            "{private}"
        );
        let public = body(false);
        assert!(!public.contains("198.51.100.7"), "{public}");
        assert!(public.contains("\"stream-1\":{\"remote\":\"stream-1\",\"connectedAt\":\"1970-01-01T00:00:00Z\",\"lastEventId\":3}"), "{public}");
    }

    #[test]
    fn go_os_error_words() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error(&e), "no such file or directory");
    }
}
