//! The status page for a person (`/ui/`), its style and its script, and
//! the headers they are sent with.

use crate::net::reply::ReplyBody;
use hyper::{Response, StatusCode};

/// The status page, its style and its script: three files, so that the
/// page's policy can refuse every inline script and style.
pub(super) const UI: &str = include_str!("ui/index.html");
pub(super) const UI_CSS: &str = include_str!("ui/app.css");
pub(super) const UI_JS: &str = include_str!("ui/app.js");

/// What the status page and the files it loads are sent with: only this
/// origin's scripts, styles and `fetch`es (no inline script or style, so an
/// injected one does not run), no framing (clickjacking), no type sniffing,
/// no `Referer` to anywhere.
pub(super) const UI_HEADERS: [(&str, &str); 3] = [
    (
        "Content-Security-Policy",
        "default-src 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

/// A file of the status page (or its JSON) with [`UI_HEADERS`].
pub(super) fn ui_reply(content_type: &str, body: String) -> Response<ReplyBody> {
    let length = body.len().to_string();
    let date = crate::net::reply::date();
    let mut headers = vec![("Content-Type", content_type)];
    headers.extend(UI_HEADERS);
    headers.extend([("Date", date.as_str()), ("Content-Length", &length)]);
    crate::net::reply::reply(StatusCode::OK, &headers, ReplyBody::full(body))
}
