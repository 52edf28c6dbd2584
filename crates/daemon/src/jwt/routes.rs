//! The jwt mode's two listeners: clients streaming `/events/` with a
//! token, and the control listener (tokens, emits, the operator side).
//! Each routes a request once ([`route`], [`control_route`]), by its
//! head, whichever path then serves it.

use super::token::{self, Session};
use super::Jwt;
use crate::go::http::{body_error_text, go_error, not_found, redirect};
use crate::net::form::Form;
use crate::net::head::RequestInfo;
use crate::net::limits::JWT_FORM;
use crate::net::peer::Conn;
use crate::net::reply::{date, reply, ReplyBody};
use crate::net::server::{Routed, Service};
use crate::net::stream::{Opening, StreamReply};
use crate::ops::{forbidden_host, loopback_host};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use ssehub_core::bus::{open_client, Body, Message};
use std::sync::Arc;
use std::time::SystemTime;

/// What a client-listener request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `/events` without the slash: Go's `ServeMux` redirect.
    Redirect,
    /// A stream under `/events/`.
    Stream,
    NotFound,
}

fn route(req: &dyn RequestInfo) -> Route {
    match req.path() {
        "/events" => Route::Redirect,
        p if p.starts_with("/events/") => Route::Stream,
        _ => Route::NotFound,
    }
}

/// The client listener's [`Service`].
pub(super) struct Clients(pub(super) Arc<Jwt>);

impl Service for Clients {
    fn route(&self, req: &dyn RequestInfo, _conn: &Conn) -> Routed {
        if let Some(res) = self.0.access.preflight(req) {
            return Routed::now(move |_, _| res);
        }
        match route(req) {
            Route::Stream => open(&self.0, req).into(),
            Route::Redirect => Routed::now(|req, _| redirect(&req, "/events/")),
            Route::NotFound => Routed::now(|_, _| not_found()),
        }
    }
}

/// The session a request's token admits, if any.
fn session(jwt: &Jwt, req: &dyn RequestInfo) -> Option<Session> {
    let token = jwt.access.token(req)?;
    token::verify(&jwt.secret, &token, now()).ok()
}

/// Opens the stream of a request with a valid token, as the original:
/// 401 without one, 503 when the hub is full.
fn open(jwt: &Arc<Jwt>, req: &dyn RequestInfo) -> Opening {
    let cors = jwt.access.cors_headers(req);
    let Some(session) = session(jwt, req) else {
        let mut res = go_error(StatusCode::UNAUTHORIZED, "Unauthorized");
        for (name, value) in &cors {
            if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
                res.headers_mut().append(*name, v);
            }
        }
        return Opening::Refused(res);
    };
    let Ok(sub) = jwt.hub.register() else {
        return Opening::Refused(
            jwt.refuse
                .answer(|| go_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")),
        );
    };
    open_client(&*jwt.bus, sub.id(), req.last_event_id().as_deref(), || {
        jwt.hub.join(sub.id(), &channel_key(&session.channel));
        jwt.hub
            .join(sub.id(), &user_key(&session.channel, &session.user_id));
    });
    jwt.log.line("Added new client");
    let (ending, path) = (jwt.clone(), req.path().to_string());
    let http10 = req.http10();
    let mut headers = vec![("Cache-Control", "no-cache".to_string())];
    if !http10 {
        headers.push(("Connection", "keep-alive".into()));
    }
    headers.extend([
        ("Content-Type", "text/event-stream".into()),
        ("X-Accel-Buffering", "no".into()),
        ("Date", date()),
    ]);
    headers.extend(cors);
    if !http10 {
        headers.push(("Transfer-Encoding", "chunked".into()));
    }
    Opening::Stream(StreamReply {
        sub,
        headers,
        first: None,
        http10,
        on_end: Some(Box::new(move || {
            ending.log.line("HTTP connection just closed.");
            ending.log.line("Removed client");
            ending
                .log
                .line(format_args!("Finished HTTP request at  {path}"));
        })),
    })
}

/// What a control-listener request asks for.
#[derive(Debug, PartialEq, Eq)]
enum ControlRoute {
    /// `/token/...`: a token, from a form.
    Token,
    /// `/emit/...`: a publish, from a form.
    Emit,
    /// `/token` or `/emit` without the slash: Go's `ServeMux` redirect.
    Redirect,
    /// Anything else: an operator page (`/metrics`, `/status`, ...), or
    /// 404 when it is none.
    Operator,
}

fn control_route(path: &str) -> ControlRoute {
    match path {
        "/token" | "/emit" => ControlRoute::Redirect,
        p if p.starts_with("/token/") => ControlRoute::Token,
        p if p.starts_with("/emit/") => ControlRoute::Emit,
        _ => ControlRoute::Operator,
    }
}

/// The control listener's [`Service`].
pub(super) struct Control(pub(super) Arc<Jwt>);

impl Service for Control {
    fn route(&self, req: &dyn RequestInfo, _conn: &Conn) -> Routed {
        let (jwt, route) = (self.0.clone(), control_route(req.path()));
        Routed::later(move |req, conn| control(jwt, route, req, conn))
    }
}

/// A control request, for a loopback host only (see [`loopback_host`]).
async fn control(
    jwt: Arc<Jwt>,
    route: ControlRoute,
    req: Request<Incoming>,
    conn: Conn,
) -> Response<ReplyBody> {
    if !loopback_host(&req, &conn) {
        return forbidden_host();
    }
    let is_emit = match route {
        ControlRoute::Operator => {
            return jwt
                .ops
                .reply(req.uri().path(), &jwt.hub, &jwt.log)
                .unwrap_or_else(not_found)
        }
        ControlRoute::Redirect => {
            let to = format!("{}/", req.uri().path());
            return redirect(&req, &to);
        }
        ControlRoute::Token => false,
        ControlRoute::Emit => true,
    };
    let form = match Form::read(req, JWT_FORM).await {
        Ok(form) => form,
        Err(e) => return go_error(e.status(), body_error_text(e)),
    };
    if is_emit {
        emit(&jwt, &form).await
    } else {
        issue(&jwt, &form)
    }
}

/// The hub channel of every session of `channel`.
pub(super) fn channel_key(channel: &str) -> String {
    format!("c{channel}")
}

/// The hub channel of one user's sessions in `channel` (length-prefixed,
/// so no channel/user pair can collide with another).
pub(super) fn user_key(channel: &str, user: &str) -> String {
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

/// `/emit/`: the payload, plus a newline, to the addressed sessions (of
/// every node, through Redis: then `OK` once Redis took it, else 503).
async fn emit(jwt: &Jwt, form: &Form) -> Response<ReplyBody> {
    let (user, channel) = (form.value("userId"), form.value("channel"));
    let mut frame = form.value("payload").as_bytes().to_vec();
    frame.push(b'\n');
    let key = if user == "*" {
        channel_key(channel)
    } else {
        user_key(channel, user)
    };
    let message = Message {
        channels: Some(vec![key]),
        body: Body::Raw(Bytes::from(frame)),
    };
    if let Err(e) = jwt.bus.publish(message).await {
        jwt.log
            .line(format_args!("Message to {user} not sent: {e}"));
        return go_error(StatusCode::SERVICE_UNAVAILABLE, &format!("Not sent: {e}"));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> hyper::Request<()> {
        hyper::Request::get(target).body(()).unwrap()
    }

    #[test]
    fn each_listener_routes_a_request_once_by_its_path() {
        assert_eq!(route(&get("/events/")), Route::Stream);
        assert_eq!(route(&get("/events/x?access_token=t")), Route::Stream);
        assert_eq!(route(&get("/events")), Route::Redirect);
        assert_eq!(route(&get("/eventsx")), Route::NotFound);
        assert_eq!(route(&get("/")), Route::NotFound);
        assert_eq!(control_route("/emit/"), ControlRoute::Emit);
        assert_eq!(control_route("/emit/more"), ControlRoute::Emit);
        assert_eq!(control_route("/token/"), ControlRoute::Token);
        assert_eq!(control_route("/emit"), ControlRoute::Redirect);
        assert_eq!(control_route("/token"), ControlRoute::Redirect);
        for path in [
            "/metrics", "/status", "/healthz", "/readyz", "/ui/", "/", "/emitx",
        ] {
            assert_eq!(control_route(path), ControlRoute::Operator, "{path}");
        }
    }
}
