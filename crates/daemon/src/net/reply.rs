//! Responses every mode writes: the body type (a fixed buffer or a hub
//! stream) and replies with an exact header order (the captures pin it;
//! Go `net/http`'s are in `go/http.rs`).

use super::body::HubBody;
use super::head::Reject;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use ssehub_core::queue::CloseReason;
use ssehub_core::writer::head::Head;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Called once when a response body is dropped, with the reason a stream
/// ended (`None` for a plain body or a peer that went away mid-stream).
pub type OnEnd = Box<dyn FnOnce(Option<CloseReason>) + Send>;

/// The body of every response: a fixed buffer or a hub stream.
pub struct ReplyBody {
    /// What is sent.
    kind: Kind,
    /// Run when hyper drops the body (the response is over).
    on_end: Option<OnEnd>,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(Box<HubBody>),
}

impl ReplyBody {
    pub fn full(bytes: impl Into<Bytes>) -> ReplyBody {
        let bytes = bytes.into();
        ReplyBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
            on_end: None,
        }
    }

    pub fn empty() -> ReplyBody {
        ReplyBody::full(Bytes::new())
    }

    pub fn stream(body: HubBody) -> ReplyBody {
        ReplyBody {
            kind: Kind::Stream(Box::new(body)),
            on_end: None,
        }
    }

    /// Sets the function run when the response is over.
    pub fn on_end(mut self, f: impl FnOnce(Option<CloseReason>) + Send + 'static) -> Self {
        self.on_end = Some(Box::new(f));
        self
    }
}

impl Drop for ReplyBody {
    fn drop(&mut self) {
        let reason = match &self.kind {
            Kind::Stream(s) => s.ended(),
            Kind::Full(_) => None,
        };
        if let Some(f) = self.on_end.take() {
            f(reason);
        }
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(s) => Pin::new(&mut **s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(s) => s.size_hint(),
        }
    }
}

/// A response with headers in exactly the given order. Values that are
/// not valid header bytes are skipped (they never come from clients).
pub fn reply(status: StatusCode, headers: &[(&str, &str)], body: ReplyBody) -> Response<ReplyBody> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let map = res.headers_mut();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(n, v);
        }
    }
    res
}

/// The current time as an HTTP `Date` value.
pub fn date() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

/// The answer to a request the head rules refuse, on hyper's path.
pub fn rejected(reject: Reject) -> Response<ReplyBody> {
    let status = StatusCode::from_u16(reject.status()).unwrap_or(StatusCode::BAD_REQUEST);
    reply(status, &[("Connection", "close")], ReplyBody::empty())
}

/// A full response as hyper writes it (title-cased names in order, a
/// `Content-Length` when none is set), for the gate's path. A stream body
/// is not full: only its head is written.
pub fn encode_full(res: Response<ReplyBody>, http10: bool) -> Bytes {
    let (parts, body) = res.into_parts();
    let reason = parts.status.canonical_reason().unwrap_or("");
    let mut head = Head::new(http10, &format!("{} {reason}", parts.status.as_u16()));
    for (name, value) in &parts.headers {
        head.header(&title_case(name.as_str()), value.as_bytes());
    }
    let bytes = match &body.kind {
        Kind::Full(b) => b.clone().unwrap_or_default(),
        Kind::Stream(_) => Bytes::new(),
    };
    if !parts.headers.contains_key(hyper::header::CONTENT_LENGTH) {
        head.header("Content-Length", bytes.len().to_string().as_bytes());
    }
    let mut out = head.finish();
    out.extend_from_slice(&bytes);
    Bytes::from(out)
}

/// `content-type` as hyper's `title_case_headers` writes it.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}
