//! Request heads: the one gate every HTTP/1 request passes before a mode
//! sees it, and the one set of rules it enforces. The first request of a
//! connection is read here, whichever path then serves it (the native
//! stream writer or hyper); later requests on a kept-alive connection are
//! parsed by hyper with the same [`Limits`], and [`check`] runs on both.
//!
//! The rules are Node's (`http.createServer` with its defaults), so that
//! a request Node refuses is refused here with the same status (the
//! numbers are in [`super::limits`]):
//! - the whole head within [`Limits::max_head`] bytes (16 KiB), else 431;
//!   a request line alone longer than that, 414;
//! - at most [`Limits::max_headers`] header lines, else 431;
//! - obs-fold, NUL and other bytes httparse refuses, HTTP/0.9: 400;
//! - `Content-Length` with `Transfer-Encoding`, two different or malformed
//!   `Content-Length`s, a `Transfer-Encoding` not ending in `chunked`: 400;
//! - an HTTP/2 connection preface (prior knowledge, h2c) is no error: it is
//!   [`Opened::Http2`], and the server hands the connection to HTTP/2;
//! - the head complete within [`Limits::head_timeout`] of the accept, a
//!   total that trickled bytes do not extend, else 408 (or a silent close
//!   when nothing came).

use super::limits::{Limits, MAX_HEADERS};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Why a request was refused before any mode saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Malformed: bad bytes, obs-fold, HTTP/0.9, framing headers at odds.
    BadRequest,
    /// The head is longer than the limit, or has too many headers.
    HeadTooLarge,
    /// The request line alone is longer than the head limit.
    UriTooLong,
    /// The head did not arrive in time.
    Timeout,
    /// The peer left (or sent nothing) before a head: nothing to answer.
    Gone,
}

impl Reject {
    /// The whole answer, as Node writes it (then the connection closes).
    pub fn answer(self) -> Option<&'static [u8]> {
        Some(match self {
            Reject::BadRequest => b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n",
            Reject::HeadTooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n"
            }
            Reject::UriTooLong => b"HTTP/1.1 414 URI Too Long\r\nConnection: close\r\n\r\n",
            Reject::Timeout => b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n",
            Reject::Gone => return None,
        })
    }

    /// The status of the answer.
    pub fn status(self) -> u16 {
        match self {
            Reject::BadRequest => 400,
            Reject::HeadTooLarge => 431,
            Reject::UriTooLong => 414,
            Reject::Timeout => 408,
            Reject::Gone => 0,
        }
    }
}

/// What a mode may ask of a request head, whichever parser read it.
pub trait RequestInfo {
    fn method(&self) -> &str;
    /// The path of the target, undecoded.
    fn path(&self) -> &str;
    /// The query of the target, if it has a `?`.
    fn query(&self) -> Option<&str>;
    /// HTTP/1.0 (no chunked body, no keep-alive by default).
    fn http10(&self) -> bool;
    /// The authority the target names, if it names one: HTTP/2's
    /// `:authority`, an HTTP/1 absolute-form target's (`GET http://h/p`)
    /// or a `CONNECT`'s. It is the request's host where it is given (a
    /// server must then ignore `Host`), so a check of the host checks it.
    fn authority(&self) -> Option<&str>;
    /// Every value of a header, by case-insensitive name, in order.
    fn header_values<'a>(&'a self, name: &str) -> Vec<&'a [u8]>;

    /// The first value of a header.
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.header_values(name).into_iter().next()
    }

    /// The `Last-Event-ID` a reconnecting client sends, as text (bytes
    /// that are not UTF-8 replaced): the one reader every mode uses.
    fn last_event_id(&self) -> Option<String> {
        self.header("last-event-id")
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Whether a body follows the head.
    fn has_body(&self) -> bool {
        self.header("transfer-encoding").is_some()
            || self.header("content-length").is_some_and(|v| v != b"0")
    }
}

impl<B> RequestInfo for hyper::Request<B> {
    fn method(&self) -> &str {
        self.method().as_str()
    }
    fn path(&self) -> &str {
        self.uri().path()
    }
    fn query(&self) -> Option<&str> {
        self.uri().query()
    }
    fn http10(&self) -> bool {
        self.version() <= hyper::Version::HTTP_10
    }
    fn authority(&self) -> Option<&str> {
        self.uri().authority().map(|a| a.as_str())
    }
    fn header_values<'a>(&'a self, name: &str) -> Vec<&'a [u8]> {
        self.headers()
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect()
    }
}

/// A request head read by [`read`]: owned, so the read buffer can go.
#[derive(Debug)]
pub struct Head {
    method: String,
    /// The request target as sent.
    target: String,
    http10: bool,
    headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// The request target as sent (origin-form `/path?query`, or another).
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl RequestInfo for Head {
    fn method(&self) -> &str {
        &self.method
    }
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
    fn http10(&self) -> bool {
        self.http10
    }
    fn authority(&self) -> Option<&str> {
        if self.method.eq_ignore_ascii_case("CONNECT") {
            return Some(&self.target);
        }
        let (_, rest) = self.target.split_once("://")?;
        Some(rest.split(['/', '?', '#']).next().unwrap_or(""))
    }
    fn header_values<'a>(&'a self, name: &str) -> Vec<&'a [u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// What the gate found at the start of a connection.
pub enum Opened {
    /// An HTTP/1 request head.
    Http1(Read),
    /// An HTTP/2 connection preface (prior knowledge): every byte read so
    /// far, for the HTTP/2 side to read again.
    Http2(Bytes),
}

/// A head and the bytes read after it (a body, or pipelined requests).
pub struct Read {
    pub head: Head,
    /// The bytes of the head itself, for a parser that reads it again.
    pub raw: Bytes,
    pub rest: Bytes,
}

/// How much a head read asks for at a time: most heads fit in one read.
const FIRST_READ: usize = 1024;

/// Reads one request head (or an HTTP/2 preface) from `io` by `deadline`,
/// within `limits`.
pub async fn read<R>(io: &mut R, limits: &Limits, deadline: Instant) -> Result<Opened, Reject>
where
    R: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(FIRST_READ);
    loop {
        if buf.len() >= limits.max_head {
            return Err(too_large(&buf));
        }
        let room = (limits.max_head - buf.len()).min(FIRST_READ.max(buf.len()));
        buf.reserve(room);
        let mut limited = (&mut *io).take(room as u64);
        let n = match tokio::time::timeout_at(deadline, limited.read_buf(&mut buf)).await {
            Err(_) if buf.is_empty() => return Err(Reject::Gone),
            Err(_) => return Err(Reject::Timeout),
            Ok(Err(_) | Ok(0)) => return Err(Reject::Gone),
            Ok(Ok(n)) => n,
        };
        debug_assert!(n > 0);
        if buf.starts_with(&H2_PREFACE[..buf.len().min(H2_PREFACE.len())]) {
            if buf.len() >= H2_PREFACE.len() {
                return Ok(Opened::Http2(buf.freeze()));
            }
            continue;
        }
        if let Some(head_len) = parse(&buf, limits)? {
            let rest = buf.split_off(head_len).freeze();
            let raw = buf.freeze();
            let head = owned(&raw, limits)?;
            check(&head)?;
            return Ok(Opened::Http1(Read { head, raw, rest }));
        }
    }
}

/// The first line an HTTP/2 client with prior knowledge sends.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// 414 while the request line is unfinished, 431 after it.
fn too_large(buf: &[u8]) -> Reject {
    if buf.contains(&b'\n') {
        Reject::HeadTooLarge
    } else {
        Reject::UriTooLong
    }
}

/// The head's length once it is complete; `None` while it is not.
fn parse(buf: &[u8], limits: &Limits) -> Result<Option<usize>, Reject> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers[..limits.max_headers.min(MAX_HEADERS)]);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Reject::HeadTooLarge),
        Err(_) => Err(Reject::BadRequest),
    }
}

/// The complete head in `raw` as an owned [`Head`].
fn owned(raw: &[u8], limits: &Limits) -> Result<Head, Reject> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers[..limits.max_headers.min(MAX_HEADERS)]);
    req.parse(raw).map_err(|_| Reject::BadRequest)?;
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Reject::BadRequest);
    };
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        http10: version == 0,
        headers: req
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect(),
    })
}

/// The framing rules (run on every request, whichever parser read it):
/// a body is framed one way only, and unambiguously.
pub fn check(req: &dyn RequestInfo) -> Result<(), Reject> {
    let lengths = req.header_values("content-length");
    let encodings = req.header_values("transfer-encoding");
    if !lengths.is_empty() && !encodings.is_empty() {
        return Err(Reject::BadRequest);
    }
    let mut length = None;
    for value in lengths {
        for part in value.split(|&b| b == b',') {
            let n = content_length(part).ok_or(Reject::BadRequest)?;
            if length.is_some_and(|l| l != n) {
                return Err(Reject::BadRequest);
            }
            length = Some(n);
        }
    }
    if let Some(last) = encodings.last() {
        let last = last.rsplit(|&b| b == b',').next().unwrap_or(b"");
        if req.http10() || !trim(last).eq_ignore_ascii_case(b"chunked") {
            return Err(Reject::BadRequest);
        }
    }
    Ok(())
}

/// A `Content-Length` value: decimal digits only.
fn content_length(value: &[u8]) -> Option<u64> {
    let value = trim(value);
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn opened(input: &[u8]) -> Result<Opened, Reject> {
        let mut io = input;
        let deadline = Instant::now() + Duration::from_secs(5);
        read(&mut io, &Limits::default(), deadline).await
    }

    async fn read_all(input: &[u8]) -> Result<Read, Reject> {
        match opened(input).await? {
            Opened::Http1(read) => Ok(read),
            Opened::Http2(_) => panic!("not an HTTP/1 head"),
        }
    }

    /// 200 for a head the gate lets through, 2 for HTTP/2.
    async fn status(input: &[u8]) -> u16 {
        match opened(input).await {
            Ok(Opened::Http1(_)) => 200,
            Ok(Opened::Http2(_)) => 2,
            Err(r) => r.status(),
        }
    }

    #[tokio::test]
    async fn a_head_and_what_follows_it() {
        let r = read_all(b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nA: 1\r\nA: 2\r\n\r\nnext")
            .await
            .unwrap();
        assert_eq!(r.head.method(), "GET");
        assert_eq!(r.head.path(), "/a/b");
        assert_eq!(r.head.query(), Some("x=1"));
        assert_eq!(r.head.header_values("a"), [b"1", b"2"]);
        assert_eq!(&r.rest[..], b"next");
        assert!(r.raw.ends_with(b"\r\n\r\n"));
        assert_eq!(r.head.authority(), None);
    }

    #[tokio::test]
    async fn the_authority_of_a_target_as_hyper_gives_it() {
        for (line, want) in [
            ("GET /status", None),
            ("GET http://evil.example:1/status?x", Some("evil.example:1")),
            ("GET http://u@127.0.0.1", Some("u@127.0.0.1")),
            ("CONNECT 127.0.0.1:443", Some("127.0.0.1:443")),
        ] {
            let raw = format!("{line} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            let head = read_all(raw.as_bytes()).await.unwrap().head;
            assert_eq!(head.authority(), want, "{line}");
            let target = line.split(' ').nth(1).unwrap();
            let parsed = hyper::Request::get(target).body(()).unwrap();
            assert_eq!(RequestInfo::authority(&parsed), want, "hyper: {line}");
        }
    }

    #[tokio::test]
    async fn node_refuses_these_and_so_do_we() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
        let many: String = (0..150).map(|i| format!("H{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        let cases: [(&[u8], u16); 12] = [
            (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 200),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (b"GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", 200),
            (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nA: x\0y\r\n\r\n", 400),
            (b"GET /\r\n\r\n", 400),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 2),
            (big.as_bytes(), 431),
            (long_line.as_bytes(), 414),
        ];
        for (input, want) in cases {
            let got = status(input).await;
            assert_eq!(
                got,
                want,
                "{}",
                String::from_utf8_lossy(&input[..input.len().min(80)])
            );
        }
        assert_eq!(status(many.as_bytes()).await, 431);
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_is_a_total() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let deadline = Instant::now() + Duration::from_secs(30);
        let trickle = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if client.write_all(b"X").await.is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let got = read(&mut server, &Limits::default(), deadline).await;
        assert_eq!(got.err(), Some(Reject::Timeout));
        let h2 = opened(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04").await;
        let Ok(Opened::Http2(bytes)) = h2 else {
            panic!("h2 preface")
        };
        assert_eq!(bytes.len(), 28, "nothing read is lost");
        assert_eq!(started.elapsed().as_secs(), 30);
        trickle.abort();
    }
}
