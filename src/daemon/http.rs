//! HTTP pieces every mode shares: the response body type, responses with an
//! exact header order (the captures pin it), request bodies read with a
//! limit, and form decoding the way Go's `net/http` does it.

use super::body::HubBody;
use crate::queue::CloseReason;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Version};
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

/// A full reply in Go `net/http`'s header order: `Content-Type`, `Date`,
/// `Content-Length` (the jwt and demo originals are Go servers).
pub fn go_reply(status: StatusCode, content_type: &str, body: String) -> Response<ReplyBody> {
    reply(
        status,
        &[
            ("Content-Type", content_type),
            ("Date", &date()),
            ("Content-Length", &body.len().to_string()),
        ],
        ReplyBody::full(body),
    )
}

/// Go's `http.Error`: the message and a newline, as plain text.
pub fn go_error(status: StatusCode, msg: &str) -> Response<ReplyBody> {
    let body = format!("{msg}\n");
    reply(
        status,
        &[
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Content-Type-Options", "nosniff"),
            ("Date", &date()),
            ("Content-Length", &body.len().to_string()),
        ],
        ReplyBody::full(body),
    )
}

/// The current time as an HTTP `Date` value.
pub fn date() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

/// True for an HTTP/1.0 request: no chunked encoding, the body ends when
/// the connection closes, so keep-alive headers must not be sent.
pub fn is_http10<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_10 || req.version() == Version::HTTP_09
}

/// Reads a request body of at most `limit` bytes; `None` if it is longer
/// or the connection failed.
pub async fn read_body(body: Incoming, limit: usize) -> Option<Bytes> {
    let limited = http_body_util::Limited::new(body, limit);
    limited.collect().await.ok().map(|c| c.to_bytes())
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; a bad escape
/// makes the whole value invalid.
pub fn go_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.ParseQuery`, keeping the pairs it accepts in order: `&`
/// separates pairs, a pair holding `;` or a bad escape is dropped.
pub fn go_parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((go_unescape(k)?, go_unescape(v)?))
        })
        .collect()
}

/// The form of a request as Go's `Request.FormValue` sees it: body values
/// (urlencoded or multipart, for POST/PUT/PATCH) before query values.
pub struct Form {
    /// Pairs in lookup order: body first, then the URL query.
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Reads the form of a request (the body up to `limit` bytes). `None`
    /// when the body is longer or could not be read: the caller answers
    /// 413 rather than act on an empty form (which would, say, emit an
    /// empty payload to the empty channel).
    pub async fn read(req: Request<Incoming>, limit: usize) -> Option<Form> {
        let (parts, body) = req.into_parts();
        let mut pairs = Vec::new();
        let method = parts.method.as_str();
        if matches!(method, "POST" | "PUT" | "PATCH") {
            let ctype = parts
                .headers
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let bytes = read_body(body, limit).await?;
            pairs = body_pairs(&ctype, &bytes);
        }
        pairs.extend(go_parse_query(parts.uri.query().unwrap_or("")));
        Some(Form { pairs })
    }

    /// The first value of `key`, or `""` (Go's `FormValue`).
    pub fn value(&self, key: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The pairs of a request body by its content type (urlencoded or
/// multipart; anything else has none). Public for the fuzz targets.
pub fn body_pairs(ctype: &str, body: &[u8]) -> Vec<(String, String)> {
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return go_parse_query(&String::from_utf8_lossy(body));
    }
    if mime.eq_ignore_ascii_case("multipart/form-data") {
        if let Some(boundary) = param(ctype, "boundary") {
            return multipart_pairs(body, &boundary);
        }
    }
    Vec::new()
}

/// A `name=value` parameter of a header value (quotes removed).
fn param(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The non-file fields of a `multipart/form-data` body.
fn multipart_pairs(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delim = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut pairs = Vec::new();
    for part in text.split(delim.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"));
        let Some(disposition) = disposition else {
            continue;
        };
        if param(disposition, "filename").is_some() {
            continue;
        }
        if let Some(name) = param(disposition, "name") {
            let value = value.strip_suffix("\r\n").unwrap_or(value);
            pairs.push((name, value.to_string()));
        }
    }
    pairs
}

/// C `sscanf("%d")` as Go's `fmt.Sscanf` does it: leading blanks skipped,
/// an optional sign, decimal digits; anything after them ignored. `None`
/// when there is no number or it overflows 64 bits.
pub fn scan_int(s: &str) -> Option<i64> {
    let s = s.trim_start_matches([' ', '\t', '\r', '\x0b', '\x0c']);
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+' | b'-') => s.split_at(1),
        _ => ("", s),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(rest.len());
    let digits = &rest[..end];
    if digits.is_empty() || digits.contains('_') {
        return None;
    }
    format!("{sign}{digits}").parse().ok()
}

/// A duration the way Go's `time.Duration.String` prints it.
pub fn go_duration(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_fraction(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_fraction(ns, 1_000_000));
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let sec = trim_fraction(s * 1_000_000_000 + frac, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, m) => format!("{m}m{sec}s"),
        (h, m) => format!("{h}h{m}m{sec}s"),
    }
}

/// `n / unit` with its decimal fraction, trailing zeros removed.
fn trim_fraction(n: u128, unit: u128) -> String {
    let whole = n / unit;
    let frac = n % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A JSON string the way Go's `encoding/json` writes it (HTML-safe: `<`,
/// `>`, `&`, U+2028 and U+2029 escaped), so tokens match byte for byte.
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A UTC time as Go's RFC 3339 with nanoseconds (trailing zeros trimmed).
pub fn rfc3339_nano(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, da) = civil_from_days(days);
    let base = format!(
        "{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn scan_int_is_sscanf_percent_d() {
        assert_eq!(scan_int("3"), Some(3));
        assert_eq!(scan_int("2x"), Some(2));
        assert_eq!(scan_int("+2"), Some(2));
        assert_eq!(scan_int("-1"), Some(-1));
        assert_eq!(scan_int(" 9"), Some(9));
        assert_eq!(scan_int("abc"), None);
        assert_eq!(scan_int(""), None);
        assert_eq!(scan_int("-"), None);
        assert_eq!(scan_int("1_000"), None);
        assert_eq!(scan_int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(scan_int("9223372036854775808"), None);
    }

    #[test]
    fn go_query_rules() {
        let q = go_parse_query("a=1&b=x+y%21&bad=%zz&semi=1;2&c&=e");
        assert_eq!(
            q,
            [
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), "".into()),
                ("".into(), "e".into())
            ]
        );
    }

    #[test]
    fn multipart_fields() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"userId\"\r\n\r\nm\r\n--XX\r\nContent-Disposition: form-data; name=\"exp\"\r\n\r\n60\r\n--XX--\r\n";
        let pairs = body_pairs("multipart/form-data; boundary=XX", body.as_bytes());
        assert_eq!(
            pairs,
            [("userId".into(), "m".into()), ("exp".into(), "60".into())]
        );
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(
            go_duration(Duration::from_nanos(3_001_790_446)),
            "3.001790446s"
        );
        assert_eq!(go_duration(Duration::from_nanos(154_240)), "154.24µs");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(2)), "2ms");
        assert_eq!(go_duration(Duration::from_secs(125)), "2m5s");
    }

    #[test]
    fn json_strings_are_html_safe_like_go() {
        assert_eq!(
            go_json_string("a<b>&\"\\\n"),
            r#""a\u003cb\u003e\u0026\"\\\n""#
        );
        assert_eq!(go_json_string("é\u{1}"), "\"é\\u0001\"");
    }

    #[test]
    fn rfc3339_trims_trailing_zeros() {
        let t = UNIX_EPOCH + Duration::new(1_795_312_939, 297_429_730);
        assert_eq!(rfc3339_nano(t), "2026-11-22T02:02:19.29742973Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
