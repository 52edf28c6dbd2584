//! Go `net/http`'s replies, byte for byte as the jwt and demo originals
//! (Go servers) write them: its header order for full replies,
//! `http.Error`, `http.NotFound`, `ServeMux`'s redirect and the status
//! texts of a body that could not be read.

use crate::net::form::BodyError;
use crate::net::head::RequestInfo;
use crate::net::reply::{date, reply, ReplyBody};
use hyper::{Response, StatusCode};

/// A full reply in Go `net/http`'s header order: `Content-Type`, `Date`,
/// `Content-Length`.
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

/// Go's `http.NotFound`.
pub fn not_found() -> Response<ReplyBody> {
    go_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// Go's `http.StatusText` for a body that could not be read.
pub fn body_error_text(e: BodyError) -> &'static str {
    match e {
        BodyError::TooLarge => "Request Entity Too Large",
        BodyError::Timeout => "Request Timeout",
        BodyError::Failed => "Bad Request",
    }
}

/// Go's `ServeMux` redirect to the slash-terminated path `to` (the query
/// kept): a short HTML body for `GET` and `HEAD`, none for the rest.
pub fn redirect(req: &dyn RequestInfo, to: &str) -> Response<ReplyBody> {
    let location = match req.query() {
        Some(q) => format!("{to}?{q}"),
        None => to.to_string(),
    };
    if matches!(req.method(), "GET" | "HEAD") {
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

    /// The reply as sent, without its `Date` line, LF for CRLF.
    fn text(res: Response<ReplyBody>) -> String {
        let bytes = crate::net::reply::encode_full(res, false);
        let text = String::from_utf8(bytes.to_vec())
            .unwrap()
            .replace("\r\n", "\n");
        text.split('\n')
            .filter(|l| !l.starts_with("Date: "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn replies_in_go_order() {
        assert_eq!(
            text(not_found()),
            "HTTP/1.1 404 Not Found\nContent-Type: text/plain; charset=utf-8\nX-Content-Type-Options: nosniff\nContent-Length: 19\n\n404 page not found\n"
        );
        let get = hyper::Request::get("/events?a=b&c=d").body(()).unwrap();
        assert_eq!(
            text(redirect(&get, "/events/")),
            "HTTP/1.1 301 Moved Permanently\nContent-Type: text/html; charset=utf-8\nLocation: /events/?a=b&c=d\nContent-Length: 55\n\n<a href=\"/events/?a=b&amp;c=d\">Moved Permanently</a>.\n\n"
        );
        let post = hyper::Request::post("/emit").body(()).unwrap();
        assert_eq!(
            text(redirect(&post, "/emit/")),
            "HTTP/1.1 301 Moved Permanently\nLocation: /emit/\nContent-Length: 0\n\n"
        );
    }
}
