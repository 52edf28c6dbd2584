//! Request forms the way Go's `net/http` reads them: bodies read with a
//! limit, urlencoded and multipart fields, `url.ParseQuery` rules.

use super::limits;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;

/// Why a request body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than the limit (413).
    TooLarge,
    /// Not all there in time: a body trickled forever would otherwise
    /// hold the connection (408).
    Timeout,
    /// The connection failed mid-body (400).
    Failed,
}

impl BodyError {
    pub fn status(self) -> hyper::StatusCode {
        match self {
            BodyError::TooLarge => hyper::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout => hyper::StatusCode::REQUEST_TIMEOUT,
            BodyError::Failed => hyper::StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads a request body of at most `limit` bytes within the time a head
/// may take ([`limits::head_timeout`]).
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    let limited = http_body_util::Limited::new(body, limit);
    let timeout = limits::head_timeout();
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Failed),
    }
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
    /// Reads the form of a request (the body up to `limit` bytes). An
    /// error when the body is longer or could not be read: the caller
    /// answers it rather than act on an empty form (which would, say, emit
    /// an empty payload to the empty channel).
    pub async fn read(req: Request<Incoming>, limit: usize) -> Result<Form, BodyError> {
        let (parts, body) = req.into_parts();
        Form::of(&Request::from_parts(parts, ()), body, limit).await
    }

    /// The form of a request whose head and body were split.
    pub async fn of(head: &Request<()>, body: Incoming, limit: usize) -> Result<Form, BodyError> {
        let mut pairs = Vec::new();
        if matches!(head.method().as_str(), "POST" | "PUT" | "PATCH") {
            let ctype = head
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let bytes = read_body(body, limit).await?;
            pairs = body_pairs(ctype, &bytes);
        }
        pairs.extend(go_parse_query(head.uri().query().unwrap_or("")));
        Ok(Form { pairs })
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
