//! `ssehub jwt`: the JWT hub, a drop-in for chabberwock/sse. Clients
//! stream `/events/` with `Authorization: Bearer <JWT>`; the control
//! listener issues tokens (`/token/`) and emits raw payloads (`/emit/`) to
//! one user of a channel or, with userId `*`, to the whole channel. Ours
//! adds `/status` and `/metrics` on the control listener.

use super::args::{go_flags, Flag};
use super::http::{date, go_error, is_http10, reply, Form, ReplyBody};
use super::log::{Logger, Sink, Stamp};
use super::server::{self, Conn, Handler, Listener, NoHooks, Shutdown};
use super::token::{self, Session};
use super::{body::HubBody, metrics};
use crate::hub::{Hub, HubConfig};
use crate::queue::CloseReason;
use crate::runtime::RUNTIME;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const HELP: &str = "\
usage: ssehub jwt [-bind ADDR] [-bindctl ADDR] (-secret KEY | -secret-file FILE | -generate-secret)

The JWT hub (drop-in for chabberwock/sse).
  -bind ADDR         client listener, /events/ (default :8000, every interface)
  -bindctl ADDR      control listener: /token/, /emit/, /status, /metrics
                     (default 127.0.0.1:8001; keep it private)
  -secret KEY        HMAC key that signs and checks tokens (required)
  -secret-file FILE  read the key from FILE (trailing newline removed)
  -generate-secret   make a random key and print it to stderr
  -heartbeat SECS    comment line on idle streams every SECS (default 15, 0 = off)
  -max-clients N     streaming clients at once; past it, 503 (default 10000, 0 = no limit)";

/// Largest form body accepted on the control listener.
const FORM_LIMIT: usize = 1 << 20;

const FLAGS: &[Flag] = &[
    Flag {
        name: "bind",
        boolean: false,
    },
    Flag {
        name: "bindctl",
        boolean: false,
    },
    Flag {
        name: "secret",
        boolean: false,
    },
    Flag {
        name: "secret-file",
        boolean: false,
    },
    Flag {
        name: "generate-secret",
        boolean: true,
    },
    Flag {
        name: "heartbeat",
        boolean: false,
    },
    Flag {
        name: "max-clients",
        boolean: false,
    },
    Flag {
        name: "h",
        boolean: true,
    },
    Flag {
        name: "help",
        boolean: true,
    },
];

/// The mode's settings, from its flags.
struct Config {
    bind: String,
    bindctl: String,
    secret: Vec<u8>,
    heartbeat: Option<Duration>,
    max_clients: usize,
}

/// Shared state of one jwt hub.
struct Jwt {
    hub: Hub,
    secret: Vec<u8>,
    /// Go `log`-style lines on stderr.
    log: Logger,
    started: Instant,
}

/// Runs the jwt mode; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let config = match parse(args) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{HELP}");
            return 0;
        }
        Err(msg) => {
            eprintln!("ssehub jwt: {msg}");
            return 64;
        }
    };
    RUNTIME.block_on(serve(config))
}

/// Reads the flags; `Ok(None)` for `-h`.
fn parse(args: &[String]) -> Result<Option<Config>, String> {
    let flags = go_flags(args, FLAGS).map_err(|e| format!("{e} (see ssehub jwt -help)"))?;
    let mut config = Config {
        bind: ":8000".into(),
        bindctl: "127.0.0.1:8001".into(),
        secret: Vec::new(),
        heartbeat: Some(Duration::from_secs(15)),
        max_clients: server::DEFAULT_MAX_CLIENTS,
    };
    let (mut secret, mut generate) = (None, false);
    for (name, value) in flags {
        match name {
            "h" | "help" => return Ok(None),
            "bind" => config.bind = value,
            "bindctl" => config.bindctl = value,
            "secret" => secret = Some(value),
            "secret-file" => secret = Some(read_secret_file(&value)?),
            "generate-secret" => generate = value == "true" || value == "1",
            "heartbeat" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| format!("-heartbeat takes whole seconds, not '{value}'"))?;
                config.heartbeat = (secs > 0).then(|| Duration::from_secs(secs));
            }
            "max-clients" => {
                config.max_clients =
                    server::parse_max_clients(&value).map_err(|e| format!("-{e}"))?;
            }
            _ => {}
        }
    }
    config.secret = choose_secret(secret, generate)?.into_bytes();
    Ok(Some(config))
}

fn read_secret_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {path}: {e}"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// The key to use: given, or generated on request; never a guessable one.
fn choose_secret(given: Option<String>, generate: bool) -> Result<String, String> {
    match given {
        Some(s) if s.is_empty() => Err("the secret is empty; pass -secret KEY, or -generate-secret".into()),
        Some(s) if s == "secret" => Err(
            "refusing the original's default key 'secret' (anyone could forge tokens); pass a real -secret KEY, or -generate-secret".into(),
        ),
        Some(s) => {
            if s.len() < 16 {
                eprintln!("ssehub jwt: warning: the secret is shorter than 16 bytes; tokens are easier to forge");
            }
            Ok(s)
        }
        None if generate => {
            let s = token::generate_secret().map_err(|e| format!("cannot generate a secret: {e}"))?;
            eprintln!("ssehub jwt: generated secret (sign and check tokens with it): {s}");
            Ok(s)
        }
        None => Err("no -secret given; pass -secret KEY (or -secret-file FILE), or -generate-secret to create a random one".into()),
    }
}

async fn serve(config: Config) -> i32 {
    let clients = match server::bind(&config.bind, "").await {
        Ok(l) => l,
        Err(e) => return bind_failed(&config.bind, &e),
    };
    let control_tcp = match server::bind(&config.bindctl, "127.0.0.1").await {
        Ok(l) => l,
        Err(e) => return bind_failed(&config.bindctl, &e),
    };
    let jwt = Arc::new(Jwt {
        hub: Hub::new(HubConfig {
            heartbeat: config.heartbeat,
            max_clients: config.max_clients,
            ..HubConfig::default()
        }),
        secret: config.secret,
        log: Logger::new(Sink::Stderr, Stamp::GoLog),
        started: Instant::now(),
    });
    let shown = |l: &tokio::net::TcpListener| l.local_addr().map_or("?".into(), |a| a.to_string());
    jwt.log.line(format_args!(
        "Listening for clients on {}, control on {}",
        shown(&clients),
        shown(&control_tcp)
    ));
    let shutdown = Shutdown::default();
    let said = jwt.clone();
    if let Err(e) = server::on_signals(shutdown.clone(), move |sig| {
        said.log.line(format_args!("Received {sig}, stopping."));
    }) {
        eprintln!("ssehub jwt: cannot watch signals: {e}");
        return 71;
    }
    let ids = Arc::new(AtomicU64::new(1));
    let app = jwt.clone();
    let on_client: Handler = Arc::new(move |req, conn| Box::pin(client(app.clone(), req, conn)));
    let app = jwt.clone();
    let on_control: Handler = Arc::new(move |req, _| Box::pin(control(app.clone(), req)));
    let listen = |tcp| Listener {
        tcp,
        tls: None,
        max_connections: server::connection_cap(config.max_clients),
        ids: ids.clone(),
    };
    let a = tokio::spawn(server::serve(
        listen(clients),
        on_client,
        Arc::new(NoHooks),
        shutdown.clone(),
    ));
    let b = tokio::spawn(server::serve(
        listen(control_tcp),
        on_control,
        Arc::new(NoHooks),
        shutdown.clone(),
    ));
    shutdown.wait().await;
    jwt.hub.close_all(CloseReason::Shutdown);
    let _ = tokio::join!(a, b);
    0
}

fn bind_failed(addr: &str, e: &std::io::Error) -> i32 {
    eprintln!("ssehub jwt: cannot listen on {addr}: {e}");
    73
}

/// The hub channel of every session of `channel`.
fn channel_key(channel: &str) -> String {
    format!("c{channel}")
}

/// The hub channel of one user's sessions in `channel` (length-prefixed,
/// so no channel/user pair can collide with another).
fn user_key(channel: &str, user: &str) -> String {
    format!("u{}:{channel}{user}", channel.len())
}

/// The token of an `Authorization` value, as the original cuts it: the
/// first six bytes are `bearer` in any case, the token starts at byte 7.
pub fn bearer(auth: &[u8]) -> Option<&str> {
    if auth.len() <= 6 || !auth[..6].eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    std::str::from_utf8(&auth[7..]).ok()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The client listener: `/events/...` streams, `/events` redirects.
async fn client(jwt: Arc<Jwt>, req: Request<Incoming>, conn: Conn) -> Response<ReplyBody> {
    let path = req.uri().path().to_string();
    if path == "/events" {
        return redirect(&req, "/events/");
    }
    if !path.starts_with("/events/") {
        return not_found();
    }
    let auth = req.headers().get(hyper::header::AUTHORIZATION);
    let session = auth
        .and_then(|v| bearer(v.as_bytes()))
        .and_then(|t| token::verify(&jwt.secret, t, now()).ok());
    let Some(session) = session else {
        return go_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    stream(jwt, &req, &conn, session, path)
}

fn stream<B>(
    jwt: Arc<Jwt>,
    req: &Request<B>,
    conn: &Conn,
    session: Session,
    path: String,
) -> Response<ReplyBody> {
    let Ok(sub) = jwt.hub.register() else {
        return go_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    jwt.hub.join(sub.id(), &channel_key(&session.channel));
    jwt.hub
        .join(sub.id(), &user_key(&session.channel, &session.user_id));
    jwt.log.line("Added new client");
    let ending = jwt.clone();
    let body = ReplyBody::stream(HubBody::new(sub, None, conn)).on_end(move |_| {
        ending.log.line("HTTP connection just closed.");
        ending.log.line("Removed client");
        ending
            .log
            .line(format_args!("Finished HTTP request at  {path}"));
    });
    let http10 = is_http10(req);
    let now = date();
    let mut headers = vec![("Cache-Control", "no-cache")];
    if !http10 {
        headers.push(("Connection", "keep-alive"));
    }
    headers.extend([
        ("Content-Type", "text/event-stream"),
        ("X-Accel-Buffering", "no"),
        ("Date", &now),
    ]);
    if !http10 {
        headers.push(("Transfer-Encoding", "chunked"));
    }
    reply(StatusCode::OK, &headers, body)
}

/// The control listener.
async fn control(jwt: Arc<Jwt>, req: Request<Incoming>) -> Response<ReplyBody> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/token" | "/emit" => return redirect(&req, &format!("{path}/")),
        "/status" => return metrics::status_reply("jwt", &jwt.hub.stats(), jwt.started),
        "/metrics" => return metrics::metrics_reply("jwt", &jwt.hub.stats()),
        _ => {}
    }
    let act = if path.starts_with("/token/") {
        issue
    } else if path.starts_with("/emit/") {
        emit
    } else {
        return not_found();
    };
    match Form::read(req, FORM_LIMIT).await {
        Some(form) => act(&jwt, &form),
        None => go_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    }
}

/// `/token/`: a token for `userId` on `channel`, valid `exp` seconds.
fn issue(jwt: &Jwt, form: &Form) -> Response<ReplyBody> {
    let Some(expires) = token::parse_go_int(form.value("exp")) else {
        return go_error(StatusCode::INTERNAL_SERVER_ERROR, "Incorrect expires");
    };
    let exp = now().wrapping_add(expires);
    let token = token::issue(
        &jwt.secret,
        form.value("userId"),
        form.value("channel"),
        exp,
    );
    text_ok(token)
}

/// `/emit/`: the payload, plus a newline, to the addressed sessions.
fn emit(jwt: &Jwt, form: &Form) -> Response<ReplyBody> {
    let (user, channel) = (form.value("userId"), form.value("channel"));
    let mut frame = form.value("payload").as_bytes().to_vec();
    frame.push(b'\n');
    let key = if user == "*" {
        channel_key(channel)
    } else {
        user_key(channel, user)
    };
    jwt.hub.publish_frame(&[&key], Bytes::from(frame), None);
    jwt.log.line(format_args!("Sent message to {user}"));
    text_ok("OK".into())
}

/// A 200 `text/plain` reply with Go's header order for sniffed bodies.
fn text_ok(body: String) -> Response<ReplyBody> {
    reply(
        StatusCode::OK,
        &[
            ("Date", &date()),
            ("Content-Length", &body.len().to_string()),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        ReplyBody::full(body),
    )
}

fn not_found() -> Response<ReplyBody> {
    go_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// Go's `ServeMux` redirect to the slash-terminated path (query kept).
fn redirect<B>(req: &Request<B>, to: &str) -> Response<ReplyBody> {
    let location = match req.uri().query() {
        Some(q) => format!("{to}?{q}"),
        None => to.to_string(),
    };
    if matches!(req.method().as_str(), "GET" | "HEAD") {
        let body = format!(
            "<a href=\"{}\">Moved Permanently</a>.\n\n",
            html_escape(&location)
        );
        return reply(
            StatusCode::MOVED_PERMANENTLY,
            &[
                ("Content-Type", "text/html; charset=utf-8"),
                ("Location", &location),
                ("Date", &date()),
                ("Content-Length", &body.len().to_string()),
            ],
            ReplyBody::full(body),
        );
    }
    reply(
        StatusCode::MOVED_PERMANENTLY,
        &[
            ("Location", &location),
            ("Date", &date()),
            ("Content-Length", "0"),
        ],
        ReplyBody::empty(),
    )
}

/// Go's `htmlEscape` for the redirect body.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn bearer_is_cut_like_the_original() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer(b"BEARER abc"), Some("abc"));
        assert_eq!(bearer(b"bearerXabc"), Some("abc"));
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearer "), Some(""));
        assert_eq!(bearer(b"Basic abcdef"), None);
    }

    #[test]
    fn keys_never_collide() {
        assert_ne!(user_key("ab", "c"), user_key("a", "bc"));
        assert_ne!(channel_key("u1:ab"), user_key("a", "b"));
    }

    #[test]
    fn a_secret_is_required_and_never_the_default() {
        let err = parse(&words("-bind :1")).err().unwrap();
        assert!(err.contains("-generate-secret"), "{err}");
        assert!(parse(&words("-secret secret")).is_err());
        assert!(parse(&words("-secret")).is_err());
        let c = parse(&words("-secret MySuperPassword42 -bindctl 127.0.0.1:0"))
            .unwrap()
            .unwrap();
        assert_eq!(c.secret, b"MySuperPassword42");
        assert_eq!(c.bind, ":8000");
        assert_eq!(c.bindctl, "127.0.0.1:0");
        let g = parse(&words("-generate-secret")).unwrap().unwrap();
        assert!(g.secret.len() >= 40);
        assert!(parse(&words("-help")).unwrap().is_none());
        assert!(parse(&words("-heartbeat x -secret abcdefghijklmnopq")).is_err());
    }
}
