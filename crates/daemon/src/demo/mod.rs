//! `ssehub demo`: the test stream server, a drop-in for mpetazzoni's
//! sse-server. `/stream` sends a hello event, then one numbered message a
//! second whose random string is the original's for that number;
//! `Last-Event-ID: message-N` resumes at N, `count` bounds the stream.
//! `/status` lists the streams; `/metrics` and the status page are ours,
//! and so is `/`, a short page linking them (the original answered 404).
//! Reached through a loopback address, every page but `/stream` answers
//! only requests for a loopback host, by the rule channels and jwt apply
//! to their operator listeners ([`loopback_host`]).
//!
//! Module map:
//! - this file: the settings (environment variables, as the original),
//!   the start-up and the shared state.
//! - `routes`: what a request is, and every answer but the stream.
//! - `stream`: a `/stream`: its head, the numbered messages, the resume.

mod routes;
mod stream;
#[cfg(test)]
mod tests;

use routes::Web;
pub use stream::{limit, message_parts, resume_from};

use crate::app::{self, App, Common};
use crate::exit::{self, Fail};
use crate::go::text::os_error;
use crate::log::{Logger, Sink, Stamp};
use crate::net::addr;
use crate::net::stream::Refuse;
use crate::ops::Ops;
use ssehub_core::hub::Hub;
use ssehub_core::runtime::RUNTIME;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

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
    let mut common = Common::default();
    // The shared options in the order the original reads its variables.
    let shared = |common: &mut Common, var: &'static str, name: &str| match env(var) {
        Some(v) => common
            .set(name, &v)
            .map(|_| ())
            .map_err(|e| exit::fail(exit::USAGE, format!("{var}: {e}"))),
        None => Ok(()),
    };
    shared(&mut common, "MAX_CLIENTS", "max-clients")?;
    common.tls = match (env("TLS_CERT"), env("TLS_KEY")) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err(exit::fail(exit::USAGE, "TLS_CERT and TLS_KEY go together")),
    };
    let tls = common.tls_acceptor()?;
    shared(&mut common, "MAX_HEADER_SIZE", "max-header-size")?;
    shared(&mut common, "REFUSE", "refuse")?;
    Ok(Settings {
        common,
        tls,
        host: env("HOST").unwrap_or_default(),
        port,
        token: auth_token(),
        interval,
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

/// The demo's settings, from its environment.
struct Settings {
    /// The options every mode shares (no heartbeat, Redis or history
    /// variable: the defaults).
    common: Common,
    tls: Option<tokio_rustls::TlsAcceptor>,
    host: String,
    port: u16,
    token: Option<String>,
    interval: Duration,
}

async fn serve(settings: Settings) -> Result<i32, Fail> {
    let Settings {
        common,
        tls,
        host,
        port,
        token,
        interval,
    } = settings;
    let log = Arc::new(Logger::new(Sink::Stdout, Stamp::Bare));
    let said = log.clone();
    let mut app = App::new(common.limits, 1, move |sig| {
        said.line(format_args!("Received {sig}, stopping."));
    })?;
    let spec = if host.is_empty() {
        format!(":{port}")
    } else {
        format!("{host}:{port}")
    };
    let tcp = app::bind(&spec, "").await?;
    let bound = tcp.local_addr().map_or(port, |a| a.port());
    let engine = app.start(&common, "demo").await?;
    let demo = Arc::new(Demo {
        hub: engine.hub.clone(),
        token,
        interval,
        streams: Mutex::new(BTreeMap::new()),
        log,
        metrics_public: std::env::var("METRICS_PUBLIC").is_ok_and(|v| v == "1"),
        ops: engine.ops.clone(),
        refuse: common.refuse,
    });
    demo.log
        .line(format_args!("Starting sse-server at :{bound} ..."));
    // Ours, after the original's line: where to point a browser or curl.
    let base = base_url(&host, bound, tls.is_some());
    demo.log.line(format_args!("  stream:      {base}/stream"));
    demo.log.line(format_args!(
        "  status page: {base}/ui/ (from this machine)"
    ));
    app.serve(
        tcp,
        tls,
        engine.budget.web_connections,
        Arc::new(Web(demo.clone())),
    );
    let code = app.run(&engine).await;
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
