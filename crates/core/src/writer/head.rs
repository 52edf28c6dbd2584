//! HTTP/1.x response heads, encoded in one place: the status line, then
//! the headers in the order given, names as given, each `name: value`.
//! The addon's native streams ([`response_head`]), a daemon stream's
//! native head and a daemon reply written by the gate all use [`Head`].

/// A response head being written.
pub struct Head {
    out: Vec<u8>,
}

impl Head {
    /// Starts a head: `HTTP/1.0` or `HTTP/1.1`, then `status` ("200 OK").
    pub fn new(http10: bool, status: &str) -> Head {
        let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(version.as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"\r\n");
        Head { out }
    }

    /// Adds one header line.
    pub fn header(&mut self, name: &str, value: &[u8]) -> &mut Head {
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Ends the head (the blank line) and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(b"\r\n");
        self.out
    }
}

/// The head of a native event stream: `headers` in order, a `Date`, and
/// `Transfer-Encoding: chunked` when the body is chunked (HTTP/1.1).
pub fn response_head(status: &str, headers: &[(String, String)], chunked: bool) -> Vec<u8> {
    let mut head = Head::new(false, status);
    for (name, value) in headers {
        head.header(name, value.as_bytes());
    }
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    head.header("Date", date.as_bytes());
    if chunked {
        head.header("Transfer-Encoding", b"chunked");
    }
    head.finish()
}

/// Wraps body bytes in one HTTP chunk.
pub fn chunk(body: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_end_with_date_and_encoding() {
        let head = response_head("200 OK", &[("A".into(), "b".into())], true);
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\nA: b\r\nDate: "));
        assert!(head.ends_with("GMT\r\nTransfer-Encoding: chunked\r\n\r\n"));
        assert_eq!(chunk(b":ok\n\n"), b"5\r\n:ok\n\n\r\n");
    }

    #[test]
    fn a_head_keeps_the_order_and_the_version() {
        let mut head = Head::new(true, "503 Service Unavailable");
        head.header("B", b"2").header("A", b"1");
        assert_eq!(
            head.finish(),
            b"HTTP/1.0 503 Service Unavailable\r\nB: 2\r\nA: 1\r\n\r\n"
        );
    }
}
