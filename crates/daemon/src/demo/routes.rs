//! What a demo request is ([`route`], decided once by [`Web`]'s
//! [`Service::route`] whichever path serves it), and every answer but the
//! stream itself: the home page, the original's `/status`, the operator
//! pages, the refusals.

use super::{lock, Demo};
use crate::go::http::{go_reply, not_found};
use crate::go::text::{go_duration, rfc3339_nano, scan_int};
use crate::net::form::{go_parse_query, Form};
use crate::net::head::RequestInfo;
use crate::net::limits::DEMO_FORM;
use crate::net::peer::Conn;
use crate::net::reply::{date, reply, ReplyBody};
use crate::net::server::{Routed, Service};
use crate::net::stream::Opening;
use crate::ops::{forbidden_host, loopback_host};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

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
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `/stream`, opened from its head (or from its form, when a body
    /// may hold its `count`).
    Stream,
    /// Any other page.
    Page(Page),
}

/// A page: what is not a stream.
#[derive(Debug, PartialEq, Eq)]
enum Page {
    /// Ours: `/`, a page linking the others.
    Home,
    /// The original's `/status`.
    Status,
    /// Ours: `/metrics`, `/healthz`, `/readyz`, `/ui/` and its files
    /// (private peers).
    Ops,
    NotFound,
}

fn route(req: &dyn RequestInfo) -> Route {
    Route::Page(match req.path() {
        "/stream" => return Route::Stream,
        "/" => Page::Home,
        "/status" => Page::Status,
        "/metrics" | "/healthz" | "/readyz" | "/ui" | "/ui/" | "/ui/status" | "/ui/app.css"
        | "/ui/app.js" => Page::Ops,
        _ => Page::NotFound,
    })
}

/// The demo's one listener.
pub(super) struct Web(pub(super) Arc<Demo>);

impl Service for Web {
    fn route(&self, req: &dyn RequestInfo, conn: &Conn) -> Routed {
        let page = match route(req) {
            Route::Stream => return self.stream(req, conn),
            Route::Page(page) => page,
        };
        let demo = self.0.clone();
        Routed::later(move |req, conn| answer_page(demo, page, req, conn))
    }
}

impl Web {
    /// A `/stream`: its `count` is in the query, or in a form when a body
    /// comes (read first).
    fn stream(&self, req: &dyn RequestInfo, conn: &Conn) -> Routed {
        if !self.0.authorized(req) {
            return Routed::Refused(unauthorized());
        }
        if req.has_body() {
            let demo = self.0.clone();
            return Routed::later(move |req, conn| stream_with_form(demo, req, conn));
        }
        let query = go_parse_query(req.query().unwrap_or(""));
        let count = query
            .iter()
            .find(|(k, _)| k == "count")
            .map_or("", |(_, v)| v);
        self.0
            .open(req, conn, scan_int(count), Instant::now())
            .into()
    }
}

/// A `/stream` with a body: `count` from its form (query and body).
async fn stream_with_form(
    demo: Arc<Demo>,
    req: Request<Incoming>,
    conn: Conn,
) -> Response<ReplyBody> {
    let started = Instant::now();
    let line = request_line(&req, conn.peer);
    let (parts, body) = req.into_parts();
    let head = Request::from_parts(parts, ());
    let form = match Form::of(&head, body, DEMO_FORM).await {
        Ok(form) => form,
        Err(e) => {
            demo.log_request(&line, e.status().as_u16(), started);
            return empty_reply(e.status());
        }
    };
    match demo.open(&head, &conn, scan_int(form.value("count")), started) {
        Opening::Stream(stream) => stream.into_hyper(&conn),
        Opening::Refused(refused) => refused,
    }
}

/// Every page but `/stream`.
async fn answer_page(
    demo: Arc<Demo>,
    page: Page,
    req: Request<Incoming>,
    conn: Conn,
) -> Response<ReplyBody> {
    if page == Page::NotFound {
        return not_found();
    }
    // A rebound page (a foreign Host through loopback) must not read the
    // operator pages: they are refused, and `/status`, public in the
    // original, shows it the public view, without the peers' addresses.
    let host_ok = loopback_host(&req, &conn);
    if page == Page::Ops && !host_ok {
        return forbidden_host();
    }
    if !demo.authorized(&req) {
        return unauthorized();
    }
    let private = host_ok && metrics_allowed(conn.peer, demo.token.is_some(), demo.metrics_public);
    if page == Page::Ops && !private {
        return not_found();
    }
    let started = Instant::now();
    let line = request_line(&req, conn.peer);
    match page {
        Page::Status => {
            let res = demo.status(private);
            demo.log_request(&line, 200, started);
            res
        }
        Page::Home => {
            demo.log_request(&line, 200, started);
            home()
        }
        Page::Ops | Page::NotFound => {
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
pub(super) fn request_line(req: &dyn RequestInfo, peer: std::net::SocketAddr) -> String {
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

    pub(super) fn log_request(&self, line: &str, status: u16, started: Instant) {
        self.log.line(format_args!(
            "{line} {status} ({})",
            go_duration(started.elapsed())
        ));
    }

    /// `/status`: the open streams as the original's JSON. Their addresses
    /// are the private detail: shown to the peers `/metrics` is served to,
    /// numbered instead for the others.
    pub(super) fn status(&self, private: bool) -> Response<ReplyBody> {
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

/// Whether `/metrics` is served to `peer`: our addition shares the public
/// port, so it stays private (loopback) unless a token guards the port or
/// `METRICS_PUBLIC=1` opens it deliberately.
pub(super) fn metrics_allowed(peer: std::net::SocketAddr, token_set: bool, public: bool) -> bool {
    public || token_set || peer.ip().is_loopback()
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

pub(super) fn unavailable() -> Response<ReplyBody> {
    empty_reply(StatusCode::SERVICE_UNAVAILABLE)
}

/// A status with an empty body, as Go writes `w.WriteHeader(code)`.
pub(super) fn empty_reply(status: StatusCode) -> Response<ReplyBody> {
    reply(
        status,
        &[("Date", &date()), ("Content-Length", "0")],
        ReplyBody::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> hyper::Request<()> {
        hyper::Request::get(target).body(()).unwrap()
    }

    #[test]
    fn the_stream_and_every_page_by_path() {
        assert_eq!(route(&get("/stream")), Route::Stream);
        assert_eq!(route(&get("/stream?count=3")), Route::Stream);
        assert_eq!(route(&get("/")), Route::Page(Page::Home));
        assert_eq!(route(&get("/status")), Route::Page(Page::Status));
        for path in [
            "/metrics",
            "/healthz",
            "/readyz",
            "/ui",
            "/ui/",
            "/ui/status",
            "/ui/app.css",
            "/ui/app.js",
        ] {
            assert_eq!(route(&get(path)), Route::Page(Page::Ops), "{path}");
        }
        for path in ["/streams", "/stream/", "/ui/x", "/status/"] {
            assert_eq!(route(&get(path)), Route::Page(Page::NotFound), "{path}");
        }
    }
}
