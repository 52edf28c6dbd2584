//! How a browser page reaches the jwt hub. `EventSource` cannot send an
//! `Authorization` header, so a token may also come from a query parameter
//! (RFC 6750's `access_token`) or a cookie (`ssehub_token`); both names can
//! be changed. Both are less private than the header: a query ends up in
//! access logs and browser history, a cookie goes with every request to the
//! host. The header is looked at first and works exactly as in the
//! original. Pages on other origins need CORS: only origins listed with
//! `-cors-origins` get `Access-Control-Allow-*` headers (and credentials,
//! so that the cookie is sent); `*` lets any origin in without credentials.

use crate::net::form::go_parse_query;
use crate::net::head::RequestInfo;
use crate::net::reply::{date, reply, ReplyBody};
use hyper::{Response, StatusCode};

/// The browser-facing settings of the client listener.
#[derive(Debug, Clone)]
pub struct Access {
    /// The query parameter a token may come in.
    pub param: String,
    /// The cookie a token may come in.
    pub cookie: String,
    /// Origins allowed by CORS (`*`: any, without credentials).
    pub origins: Vec<String>,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            param: "access_token".into(),
            cookie: "ssehub_token".into(),
            origins: Vec::new(),
        }
    }
}

/// A `-cors-origins` value: a comma-separated list of origins or `*`.
pub fn parse_origins(value: &str) -> Result<Vec<String>, String> {
    let origins: Vec<String> = value
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    for o in &origins {
        if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
            return Err(format!(
                "-cors-origins takes origins like https://app.example (or *), not '{o}'"
            ));
        }
    }
    Ok(origins)
}

impl Access {
    /// The token of a request: the `Authorization` header as the original
    /// cuts it, else the query parameter, else the cookie.
    pub fn token(&self, req: &dyn RequestInfo) -> Option<String> {
        if let Some(token) = req.header("authorization").and_then(super::bearer) {
            return Some(token.to_string());
        }
        let query = go_parse_query(req.query().unwrap_or(""));
        if let Some((_, v)) = query.into_iter().find(|(k, _)| *k == self.param) {
            return Some(v);
        }
        let cookies = req.header_values("cookie");
        cookies
            .iter()
            .flat_map(|v| v.split(|&b| b == b';'))
            .find_map(|pair| {
                let pair = String::from_utf8_lossy(pair);
                let (name, value) = pair.trim().split_once('=')?;
                (name == self.cookie).then(|| value.to_string())
            })
    }

    /// The CORS headers for a request from `Origin`, if it is allowed.
    pub fn cors_headers(&self, req: &dyn RequestInfo) -> Vec<(&'static str, String)> {
        let Some(origin) = req.header("origin") else {
            return Vec::new();
        };
        let origin = String::from_utf8_lossy(origin).into_owned();
        if self.origins.contains(&origin) {
            return vec![
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Credentials", "true".into()),
                ("Vary", "Origin".into()),
            ];
        }
        if self.origins.iter().any(|o| o == "*") {
            return vec![("Access-Control-Allow-Origin", "*".into())];
        }
        Vec::new()
    }

    /// The answer to a CORS preflight (`OPTIONS` with an `Origin`), when
    /// CORS is configured; `None` leaves `OPTIONS` as the original has it.
    pub fn preflight(&self, req: &dyn RequestInfo) -> Option<Response<ReplyBody>> {
        if req.method() != "OPTIONS" || self.origins.is_empty() {
            return None;
        }
        let mut headers = self.cors_headers(req);
        if headers.is_empty() {
            return Some(reply(
                StatusCode::FORBIDDEN,
                &[("Date", &date()), ("Content-Length", "0")],
                ReplyBody::empty(),
            ));
        }
        headers.extend([
            ("Access-Control-Allow-Methods", "GET".to_string()),
            (
                "Access-Control-Allow-Headers",
                "Authorization, Last-Event-ID, Cache-Control".to_string(),
            ),
            ("Access-Control-Max-Age", "600".to_string()),
            ("Date", date()),
        ]);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        Some(reply(StatusCode::NO_CONTENT, &headers, ReplyBody::empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str, headers: &[(&str, &str)]) -> hyper::Request<()> {
        let mut b = hyper::Request::get(target);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn the_header_first_then_the_query_then_the_cookie() {
        let a = Access::default();
        let both = req(
            "/events/?access_token=q",
            &[("authorization", "Bearer h"), ("cookie", "ssehub_token=c")],
        );
        assert_eq!(a.token(&both).as_deref(), Some("h"));
        let query = req(
            "/events/?x=1&access_token=q",
            &[("cookie", "ssehub_token=c")],
        );
        assert_eq!(a.token(&query).as_deref(), Some("q"));
        let cookie = req("/events/", &[("cookie", "a=1; ssehub_token=c; b=2")]);
        assert_eq!(a.token(&cookie).as_deref(), Some("c"));
        assert_eq!(a.token(&req("/events/", &[])), None);
        let renamed = Access {
            param: "t".into(),
            cookie: "sess".into(),
            ..Access::default()
        };
        assert_eq!(
            renamed.token(&req("/events/?t=x", &[])).as_deref(),
            Some("x")
        );
        assert_eq!(renamed.token(&req("/events/?access_token=x", &[])), None);
    }

    #[test]
    fn only_listed_origins_get_cors_and_credentials() {
        let a = Access {
            origins: parse_origins("https://app.example, http://localhost:3000/").unwrap(),
            ..Access::default()
        };
        let listed = req("/events/", &[("origin", "http://localhost:3000")]);
        let h = a.cors_headers(&listed);
        assert!(h.contains(&(
            "Access-Control-Allow-Origin",
            "http://localhost:3000".into()
        )));
        assert!(h.contains(&("Access-Control-Allow-Credentials", "true".into())));
        assert!(a
            .cors_headers(&req("/events/", &[("origin", "https://evil.example")]))
            .is_empty());
        assert!(parse_origins("app.example").is_err());
        let any = Access {
            origins: vec!["*".into()],
            ..Access::default()
        };
        let h = any.cors_headers(&req("/events/", &[("origin", "https://x.example")]));
        assert_eq!(h, [("Access-Control-Allow-Origin", "*".to_string())]);
    }
}
