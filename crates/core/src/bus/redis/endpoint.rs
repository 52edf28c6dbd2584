//! Where the bus connects, asked afresh for every connection it makes:
//! - a Redis by its URL: `redis://`, `rediss://` (TLS, checked against
//!   the system's roots or the CA given), `redis+unix://`;
//! - the primary that Redis Sentinel names now: `redis+sentinel://` (and
//!   `rediss+sentinel://`, TLS to the primary and the sentinels), so the
//!   connection made after a failover goes to the new primary.
//!
//! The Sentinel URL, as no standard fixes one:
//! `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]`
//! (port 26379 by default); the credentials are the primary's, and
//! `?sentinel_username=...&sentinel_password=...` those of the sentinels.

use super::link::classify;
use super::redact;
use crate::bus::Failure;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsCertificates, TlsMode};

/// Sentinel's port when the URL names none.
const SENTINEL_PORT: u16 = 26379;

pub(super) enum Endpoint {
    Direct(redis::Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl Endpoint {
    /// Checks `url` and makes the endpoint; `ca` (PEM) replaces the
    /// system's roots for TLS. Nothing is connected yet.
    pub(super) fn open(url: &str, ca: Option<&[u8]>) -> Result<Endpoint, String> {
        let invalid =
            |e: &dyn std::fmt::Display| format!("invalid Redis URL '{}': {e}", redact(url));
        install_crypto();
        if let Some(sentinel) = SentinelUrl::parse(url).map_err(|e| invalid(&e))? {
            return sentinel
                .client(ca)
                .map(|c| Endpoint::Sentinel(tokio::sync::Mutex::new(c)))
                .map_err(|e| invalid(&e));
        }
        let client = match ca {
            Some(ca) => redis::Client::build_with_tls(url, certificates(ca)),
            None => redis::Client::open(url),
        };
        client.map(Endpoint::Direct).map_err(|e| invalid(&e))
    }

    /// A client for the Redis to talk to now.
    pub(super) async fn client(&self) -> Result<redis::Client, Failure> {
        match self {
            Endpoint::Direct(client) => Ok(client.clone()),
            Endpoint::Sentinel(sentinel) => {
                sentinel.lock().await.async_get_client().await.map_err(|e| {
                    let failure = classify(&e);
                    Failure::new(
                        failure.class,
                        format!("Redis Sentinel named no primary: {failure}"),
                    )
                })
            }
        }
    }
}

/// rustls picks its cryptography from the process-wide default; ring is
/// the one built in (set once; a host that set one already keeps it).
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn certificates(ca: &[u8]) -> TlsCertificates {
    TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.to_vec()),
    }
}

/// A `redis+sentinel://` URL, taken apart.
#[derive(Debug, PartialEq, Eq)]
struct SentinelUrl {
    tls: bool,
    sentinels: Vec<(String, u16)>,
    service: String,
    db: i64,
    username: Option<String>,
    password: Option<String>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
}

impl SentinelUrl {
    /// `None` for a URL of another scheme.
    fn parse(url: &str) -> Result<Option<SentinelUrl>, String> {
        let lower = url.to_ascii_lowercase();
        let (tls, rest) = if lower.starts_with("redis+sentinel://") {
            (false, &url["redis+sentinel://".len()..])
        } else if lower.starts_with("rediss+sentinel://") {
            (true, &url["rediss+sentinel://".len()..])
        } else {
            return Ok(None);
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut path = path.split('/').filter(|p| !p.is_empty());
        let service = path
            .next()
            .ok_or("a Sentinel URL names the service after the hosts: redis+sentinel://host:26379/mymaster")?;
        let db = match path.next() {
            Some(db) => db
                .parse()
                .map_err(|_| format!("'{db}' is not a database number"))?,
            None => 0,
        };
        let sentinels = hosts
            .split(',')
            .map(host_port)
            .collect::<Result<Vec<_>, _>>()?;
        let (username, password) = userinfo.map(credentials).unwrap_or_default();
        let mut parsed = SentinelUrl {
            tls,
            sentinels,
            service: decode(service)?,
            db,
            username,
            password,
            sentinel_username: None,
            sentinel_password: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = Some(decode(value)?);
            match key {
                "sentinel_username" => parsed.sentinel_username = value,
                "sentinel_password" => parsed.sentinel_password = value,
                other => return Err(format!("unknown parameter '{other}'")),
            }
        }
        Ok(Some(parsed))
    }

    fn client(self, ca: Option<&[u8]>) -> Result<SentinelClient, redis::RedisError> {
        let addrs = self
            .sentinels
            .into_iter()
            .map(|(host, port)| match self.tls {
                true => ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: false,
                    tls_params: None,
                },
                false => ConnectionAddr::Tcp(host, port),
            });
        let mut builder =
            SentinelClientBuilder::new(addrs, self.service, SentinelServerType::Master)?
                .set_client_to_redis_db(self.db);
        if let Some(user) = self.username {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = self.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(user) = self.sentinel_username {
            builder = builder.set_client_to_sentinel_username(user);
        }
        if let Some(password) = self.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if self.tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(ca) = ca {
                builder = builder
                    .set_client_to_redis_certificates(certificates(ca))
                    .set_client_to_sentinel_certificates(certificates(ca));
            }
        }
        builder.build()
    }
}

fn host_port(item: &str) -> Result<(String, u16), String> {
    if item.is_empty() {
        return Err("a Sentinel URL lists at least one host".into());
    }
    // `[::1]:26379`, `host:26379`, `host`.
    let (host, port) = match item.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (item, None),
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("'{p}' is not a port"))?,
        None => SENTINEL_PORT,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

/// `user:password`, `:password` or `password` (as Redis URLs have it).
fn credentials(userinfo: &str) -> (Option<String>, Option<String>) {
    let decoded = |s: &str| decode(s).unwrap_or_else(|_| s.to_string());
    match userinfo.split_once(':') {
        Some((user, password)) => (
            Some(decoded(user)).filter(|u| !u.is_empty()),
            Some(decoded(password)),
        ),
        None => (None, Some(decoded(userinfo))),
    }
}

/// Percent-decoding, as URLs carry reserved characters.
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| format!("a bad percent-escape in '{text}'"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{text}' is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_url_is_taken_apart() {
        let url =
            "redis+sentinel://app:p%40ss@s1:26380,s2,[::1]:5/my%20primary/3?sentinel_password=sp";
        let parsed = SentinelUrl::parse(url).unwrap().unwrap();
        assert_eq!(
            parsed,
            SentinelUrl {
                tls: false,
                sentinels: vec![
                    ("s1".into(), 26380),
                    ("s2".into(), SENTINEL_PORT),
                    ("::1".into(), 5)
                ],
                service: "my primary".into(),
                db: 3,
                username: Some("app".into()),
                password: Some("p@ss".into()),
                sentinel_username: None,
                sentinel_password: Some("sp".into()),
            }
        );
        let tls = SentinelUrl::parse("rediss+sentinel://:pw@h/m")
            .unwrap()
            .unwrap();
        assert!(tls.tls);
        assert_eq!((tls.username, tls.password), (None, Some("pw".into())));
        assert_eq!(SentinelUrl::parse("redis://h:1/0").unwrap(), None);
    }

    #[test]
    fn a_bad_sentinel_url_says_what_is_wrong() {
        for (url, says) in [
            ("redis+sentinel://h:26379", "names the service"),
            ("redis+sentinel://h:port/m", "not a port"),
            ("redis+sentinel://,h/m", "at least one host"),
            ("redis+sentinel://h/m/x", "not a database number"),
            ("redis+sentinel://h/m?master=1", "unknown parameter"),
        ] {
            let e = SentinelUrl::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn an_endpoint_error_masks_the_password() {
        let Err(e) = Endpoint::open("redis+sentinel://u:hunter2@h:x/m", None) else {
            panic!("taken")
        };
        assert!(!e.contains("hunter2") && e.contains("not a port"), "{e}");
    }
}
