//! The loopback-host rule every mode applies to its operator pages.

use crate::go::http::go_error;
use crate::net::head::RequestInfo;
use crate::net::peer::Conn;
use crate::net::reply::ReplyBody;
use hyper::{Response, StatusCode};

/// For a connection to a loopback address: whether the request names a
/// loopback host (`localhost`, `127.0.0.1`, `[::1]`, with any port) and no
/// other. A page in a local browser can reach a loopback port by CSRF or,
/// after DNS rebinding, read it; the host it names is then the attacker's
/// domain. Every name a request carries must pass: its `Host` (one only:
/// with two, a proxy and this server could each take another), and the
/// target's authority (HTTP/2's `:authority`, which replaces `Host`, or an
/// HTTP/1 absolute-form target, which overrides it). A request naming no
/// host at all is refused. A connection to another address reached a
/// listener made public on purpose and is not checked.
pub fn loopback_host(req: &dyn RequestInfo, conn: &Conn) -> bool {
    if !conn.local.ip().is_loopback() {
        return true;
    }
    let hosts = req.header_values("host");
    if hosts.len() > 1 {
        return false;
    }
    let authority = req.authority().map(|a| {
        // The host of `user@host:port` is after the user part.
        a.rsplit_once('@').map_or(a, |(_, host)| host).as_bytes()
    });
    let mut names = hosts.into_iter().chain(authority).peekable();
    names.peek().is_some() && names.all(loopback_name)
}

/// `localhost` or a loopback address, with or without a port.
fn loopback_name(host: &[u8]) -> bool {
    let host = String::from_utf8_lossy(host);
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(&*host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The answer to a request for a loopback listener under another name.
pub fn forbidden_host() -> Response<ReplyBody> {
    go_error(
        StatusCode::FORBIDDEN,
        "Forbidden: this listener answers only requests for a loopback host (localhost, 127.0.0.1, [::1])",
    )
}
