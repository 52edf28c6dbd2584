//! An opened event stream, ready to be served by either path: the native
//! writer ([`ssehub_core::writer`], one small task per client, a few KiB) for a
//! plain-TCP first request, or hyper (TLS, kept-alive connections). A mode
//! builds one [`StreamReply`] in one place, so both paths send the same
//! status line, headers (in the same order) and bytes by construction.

use super::body::HubBody;
use super::peer::Conn;
use super::reply::{reply, ReplyBody};
use bytes::Bytes;
use hyper::{Response, StatusCode};
use ssehub_core::hub::{defaults, Subscription};
use ssehub_core::writer::head::Head;

/// What a stream path came to: the stream opened, or a refusal (a full
/// hub, no authorization, a bad parameter).
pub enum Opening {
    Stream(StreamReply),
    Refused(Response<ReplyBody>),
}

/// A 200 event stream a mode opened for a request.
pub struct StreamReply {
    pub sub: Subscription,
    /// Response headers in the order they are sent.
    pub headers: Vec<(&'static str, String)>,
    /// Body bytes before anything queued (a hello event).
    pub first: Option<Bytes>,
    /// An HTTP/1.0 request: no chunked body; the stream ends with the
    /// connection.
    pub http10: bool,
    /// Run once when the stream is over, however it ended.
    pub on_end: Option<Box<dyn FnOnce() + Send>>,
}

impl StreamReply {
    /// The status line and headers as hyper writes them for this reply
    /// (the names are given title-cased, as `title_case_headers` sends).
    pub fn native_head(&self) -> Bytes {
        let mut head = Head::new(self.http10, "200 OK");
        for (name, value) in &self.headers {
            head.header(name, value.as_bytes());
        }
        let mut bytes = head.finish();
        if let Some(first) = self.first.as_ref().filter(|f| !f.is_empty()) {
            if self.http10 {
                bytes.extend_from_slice(first);
            } else {
                bytes.extend_from_slice(&ssehub_core::writer::chunk(first));
            }
        }
        Bytes::from(bytes)
    }

    /// The same stream as a hyper response on `conn`.
    pub fn into_hyper(mut self, conn: &Conn) -> Response<ReplyBody> {
        if self.http10 {
            conn.close_after_reply();
        }
        let on_end = self.on_end.take();
        let headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let body = ReplyBody::stream(HubBody::new(self.sub, self.first, conn)).on_end(move |_| {
            if let Some(f) = on_end {
                f();
            }
        });
        reply(StatusCode::OK, &headers, body)
    }
}

/// How a stream that cannot be opened (the client limit, the drain) is
/// refused. `EventSource` gives up for good on a non-200 answer; a 200
/// that only says `retry:` and ends makes a browser come back by itself.
/// The cost: a client that was refused cannot tell it from a stream that
/// ended, and keeps retrying every [`defaults::RETRY`] (the addon's
/// `retryAfter` default, lib/request.js's `refusal`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Refuse {
    /// The original's status code (503).
    #[default]
    Status,
    /// 200, a `retry:` hint, the end.
    Retry,
}

impl Refuse {
    /// A `--refuse` value.
    pub fn parse(value: &str) -> Result<Refuse, String> {
        match value {
            "503" | "status" => Ok(Refuse::Status),
            "retry" => Ok(Refuse::Retry),
            _ => Err(format!("refuse takes 503 or retry, not '{value}'")),
        }
    }

    /// The answer: `status()` (the mode's own bytes), or the retry hint.
    pub fn answer(self, status: impl FnOnce() -> Response<ReplyBody>) -> Response<ReplyBody> {
        match self {
            Refuse::Status => status(),
            Refuse::Retry => {
                let ms = defaults::RETRY.as_millis();
                let body = format!(": no room now; come back later\nretry: {ms}\n\n");
                reply(
                    StatusCode::OK,
                    &[
                        ("Content-Type", "text/event-stream"),
                        ("Cache-Control", "no-cache"),
                        ("Content-Length", &body.len().to_string()),
                    ],
                    ReplyBody::full(body),
                )
            }
        }
    }
}
