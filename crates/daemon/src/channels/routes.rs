//! The web port: what a request is ([`route`]), the one decision every
//! path serves ([`Web`]'s [`Service::route`]: the native writer's and
//! hyper's, HTTP/1 and HTTP/2), and SSE-Server's answers to each kind.

use super::control::{path_channels, strip_prefix};
use super::table::Role;
use super::{Channels, ALL};
use crate::net::head::RequestInfo;
use crate::net::peer::Conn;
use crate::net::reply::{reply, ReplyBody};
use crate::net::server::{ready, Routed, Service};
use crate::net::stream::{Opening, StreamReply};
use hyper::{Response, StatusCode};
use ssehub_core::bus::{open_client, BusError, Receipt};
use std::sync::Arc;

/// What a web request asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// A stream of these channels (none: all channels).
    Stream(Vec<String>),
    /// Publishing (and commands) by query, to these channels.
    Query {
        channels: Vec<String>,
        query: String,
    },
    /// `HEAD` of a path under the prefix.
    Head,
    /// A path outside the prefix.
    NotFound,
    /// A method other than `GET` and `HEAD` (case-sensitive, as HTTP).
    BadMethod,
    /// More channels than one stream may name.
    TooManyChannels,
}

/// Routes a request by SSE-Server's rules: method, then the prefix by
/// whole segments, then the query.
pub(super) fn route(req: &dyn RequestInfo, prefix: &str) -> Route {
    let method = req.method();
    if method != "GET" && method != "HEAD" {
        return Route::BadMethod;
    }
    let Some(rest) = strip_prefix(req.path(), prefix) else {
        return Route::NotFound;
    };
    if method == "HEAD" {
        return Route::Head;
    }
    let Some(channels) = path_channels(rest) else {
        return Route::TooManyChannels;
    };
    match req.query() {
        Some(query) => Route::Query {
            channels,
            query: query.to_string(),
        },
        None => Route::Stream(channels),
    }
}

/// The web port's [`Service`].
pub(super) struct Web(pub(super) Arc<Channels>);

impl Service for Web {
    fn route(&self, req: &dyn RequestInfo, conn: &Conn) -> Routed {
        match route(req, &self.0.prefix) {
            Route::Stream(channels) => open(&self.0, req, conn, channels).into(),
            Route::Query { channels, query } => {
                let ch = self.0.clone();
                Routed::Answer(Box::new(move |_, conn: Conn| {
                    ch.table.set_role(conn.id, Role::Controller("HTTP"));
                    let pending = ch.run_query(&conn, &channels, &query);
                    conn.close_after_reply();
                    if pending.is_empty() {
                        return ready(ok_text());
                    }
                    Box::pin(confirmed(ch, pending))
                }))
            }
            Route::Head => Routed::now(|_, conn| {
                conn.close_after_reply();
                ok_text()
            }),
            Route::NotFound => Routed::now(|_, conn| {
                conn.close_after_reply();
                plain(StatusCode::NOT_FOUND, "Not found\n")
            }),
            Route::BadMethod => Routed::now(|_, conn| {
                conn.close_after_reply();
                plain(StatusCode::METHOD_NOT_ALLOWED, "Bad request\n")
            }),
            Route::TooManyChannels => Routed::now(|_, conn| {
                conn.close_after_reply();
                plain(StatusCode::BAD_REQUEST, "Bad request\n")
            }),
        }
    }

    fn opened(&self, conn: &Conn) {
        let host = conn.peer.ip().to_string();
        self.0.log.line(format_args!(
            "Got new web connection {} from {host}",
            conn.id
        ));
        self.0.table.insert(conn.id, host, Role::Waiting);
    }

    fn closed(&self, conn: &Conn) {
        self.0.table.remove(conn.id);
        self.0.log.line(format_args!(
            "Closing connection {} ({})",
            conn.id,
            conn.peer.ip()
        ));
    }

    fn tls_failed(&self, conn: &Conn, err: &std::io::Error) {
        self.0
            .log
            .line(format_args!("Cannot set up SSL to {}: {err}", conn.id));
    }
}

/// The answer to a query whose publishes went to Redis: `OK` once Redis
/// took them all, else a 503 that names what went wrong (and the failure
/// logged).
async fn confirmed(ch: Arc<Channels>, pending: Vec<(String, Receipt)>) -> Response<ReplyBody> {
    let mut failed = None;
    for (event, receipt) in pending {
        if let Err(e) = receipt.await {
            ch.not_published(&event, &e);
            failed = failed.or(Some(e));
        }
    }
    match failed {
        None => ok_text(),
        Some(BusError::Redis(f)) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Not published: {} ({})\n",
                f.class.summary(),
                f.class.name()
            ),
        ),
        Some(e) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Not published: {e}\n"),
        ),
    }
}

/// Registers a stream client of `channels` (none: all), logs it as
/// SSE-Server does and records its role; a 503 when the hub is full.
fn open(ch: &Arc<Channels>, req: &dyn RequestInfo, conn: &Conn, channels: Vec<String>) -> Opening {
    let http10 = req.http10();
    let Ok(sub) = ch.hub.register() else {
        conn.close_after_reply();
        return Opening::Refused(
            ch.refuse
                .answer(|| plain(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable\n")),
        );
    };
    open_client(&*ch.bus, sub.id(), req.last_event_id().as_deref(), || {
        if channels.is_empty() {
            ch.hub.join(sub.id(), ALL);
        }
        for c in &channels {
            ch.hub.join(sub.id(), c);
        }
    });
    let id = conn.id;
    ch.log.line(match channels.as_slice() {
        [] => format!("Client {id} requests all channels"),
        [a] => format!("Client {id} requests channel \"{a}\""),
        [a, b] => format!("Client {id} requests channels \"{a}\" and \"{b}\""),
        [a, b, ..] => format!("Client {id} requests channels \"{a}\", \"{b}\" and more"),
    });
    ch.table.set_role(id, Role::Client(channels));
    let ending = ch.clone();
    Opening::Stream(StreamReply {
        sub,
        headers: stream_headers(http10),
        first: None,
        http10,
        on_end: Some(Box::new(move || ending.table.set_role(id, Role::Waiting))),
    })
}

/// SSE-Server's stream headers, in its order, plus `X-Accel-Buffering`.
fn stream_headers(http10: bool) -> Vec<(&'static str, String)> {
    let mut headers = cors(vec![("Server", "SSE-Server/0.1")]);
    if !http10 {
        headers.push(("Transfer-Encoding", "chunked"));
    }
    headers.extend([
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
    ]);
    if !http10 {
        headers.extend([
            ("Keep-Alive", "timeout=600, max=100"),
            ("Connection", "Keep-Alive"),
        ]);
    }
    headers.push(("X-Accel-Buffering", "no"));
    headers
        .into_iter()
        .map(|(n, v)| (n, v.to_string()))
        .collect()
}

fn cors(mut headers: Vec<(&'static str, &'static str)>) -> Vec<(&'static str, &'static str)> {
    headers.extend([
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "GET"),
        (
            "Access-Control-Allow-Headers",
            "Cache-Control,Last-Event-Id,X-Requested-With",
        ),
    ]);
    headers
}

/// The `OK` answer to a publishing query (and to HEAD).
fn ok_text() -> Response<ReplyBody> {
    let mut headers = cors(vec![("Server", "SSE-Server/0.1")]);
    headers.extend([
        ("Content-Type", "text/plain"),
        ("Content-Length", "4"),
        ("Cache-Control", "no-cache"),
    ]);
    reply(StatusCode::OK, &headers, ReplyBody::full("OK\r\n"))
}

/// 404, 405 and 503 in SSE-Server's header order.
fn plain(status: StatusCode, body: impl Into<String>) -> Response<ReplyBody> {
    let body = body.into();
    let len = body.len().to_string();
    let headers: [(&str, &str); 3] = if status == StatusCode::NOT_FOUND {
        [
            ("Server", "SSE-Server/0.1"),
            ("Content-Length", &len),
            ("Content-Type", "text/plain"),
        ]
    } else {
        [
            ("Server", "SSE-Server/0.1"),
            ("Content-Type", "text/plain"),
            ("Content-Length", &len),
        ]
    };
    reply(status, &headers, ReplyBody::full(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Logger, Sink, Stamp};
    use crate::net::shutdown::Shutdown;
    use crate::net::stream::Refuse;
    use crate::ops::Ops;
    use ssehub_core::bus::{Bus, Local};
    use ssehub_core::hub::{Hub, HubConfig};

    /// A channels daemon under `/sse` whose hub takes `max_clients`.
    fn channels(max_clients: usize) -> Arc<Channels> {
        let hub = Hub::new(HubConfig {
            heartbeat: None,
            max_clients,
            ..HubConfig::default()
        });
        let bus: Arc<dyn Bus> = Arc::new(Local::new(hub.clone(), false));
        let shutdown = Shutdown::default();
        Arc::new(Channels {
            hub,
            log: Arc::new(Logger::new(Sink::Off, Stamp::Iso)),
            prefix: "/sse".into(),
            allow_commands: false,
            log_summary: false,
            shutdown: shutdown.clone(),
            table: super::super::table::Table::default(),
            log_slot: None,
            ops: Ops::new("channels", shutdown),
            refuse: Refuse::default(),
            bus,
        })
    }

    #[tokio::test]
    async fn the_web_port_decides_each_request_once() {
        let web = Web(channels(1));
        let conn = Conn::new(
            4,
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:8080".parse().unwrap(),
        );
        let Routed::Stream(stream) = web.route(&get("/sse/a"), &conn) else {
            panic!("a stream path opens a stream");
        };
        assert!(stream
            .native_head()
            .starts_with(b"HTTP/1.1 200 OK\r\nServer: SSE-Server/0.1\r\n"));
        for answered in ["/sse/a?a=b", "/sse?x", "/other", "/sse"] {
            let req = if answered == "/sse" {
                hyper::Request::head(answered).body(()).unwrap()
            } else {
                get(answered)
            };
            assert!(
                matches!(web.route(&req, &conn), Routed::Answer(_)),
                "{answered}"
            );
        }
        let Routed::Refused(full) = web.route(&get("/sse/b"), &conn) else {
            panic!("a full hub refuses the next stream");
        };
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(stream);
    }

    fn get(target: &str) -> hyper::Request<()> {
        hyper::Request::get(target).body(()).unwrap()
    }

    #[test]
    fn routes_by_method_prefix_and_query() {
        let p = "/my/sse";
        assert_eq!(
            route(&get("/my/sse/a/b"), p),
            Route::Stream(vec!["a".into(), "b".into()])
        );
        assert_eq!(route(&get("/my/sse"), p), Route::Stream(vec![]));
        assert_eq!(route(&get("/my/ssefoo"), p), Route::NotFound);
        assert_eq!(
            route(&get("/my/sse/a?x=1"), p),
            Route::Query {
                channels: vec!["a".into()],
                query: "x=1".into()
            }
        );
        let post = hyper::Request::post("/my/sse/a").body(()).unwrap();
        assert_eq!(route(&post, p), Route::BadMethod);
        let head = hyper::Request::head("/my/sse/a").body(()).unwrap();
        assert_eq!(route(&head, p), Route::Head);
        let many: String = (0..300).map(|i| format!("/c{i}")).collect();
        assert_eq!(
            route(&get(&format!("/my/sse{many}")), p),
            Route::TooManyChannels
        );
    }
}
