//! A Sentinel URL, as no standard fixes one:
//! `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]`
//! (port 26379 by default; `rediss+sentinel://` for TLS to the sentinels
//! and the primary); the credentials are the primary's, and
//! `?sentinel_username=...&sentinel_password=...` those of the sentinels.
//! Errors name the part that is wrong, never its text (it may be a
//! password).

use super::endpoint::certificates;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsMode};

/// Sentinel's port when the URL names none.
const SENTINEL_PORT: u16 = 26379;

/// A `redis+sentinel://` URL, taken apart.
#[derive(PartialEq, Eq)]
pub(super) struct SentinelUrl {
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
    pub(super) fn parse(url: &str) -> Result<Option<SentinelUrl>, String> {
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
                .map_err(|_| "the database after the service is not a number".to_string())?,
            None => 0,
        };
        let sentinels = hosts
            .split(',')
            .map(host_port)
            .collect::<Result<Vec<_>, _>>()?;
        let (username, password) = userinfo.map(credentials).transpose()?.unwrap_or_default();
        let mut parsed = SentinelUrl {
            tls,
            sentinels,
            service: decode(service, "the service name")?,
            db,
            username,
            password,
            sentinel_username: None,
            sentinel_password: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = Some(decode(value, "a query parameter's value")?);
            match key {
                "sentinel_username" => parsed.sentinel_username = value,
                "sentinel_password" => parsed.sentinel_password = value,
                _ => {
                    return Err(
                        "an unknown parameter (known: sentinel_username, sentinel_password)".into(),
                    )
                }
            }
        }
        Ok(Some(parsed))
    }

    pub(super) fn client(self, ca: Option<&[u8]>) -> Result<SentinelClient, redis::RedisError> {
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
        Some(p) => p
            .parse()
            .map_err(|_| "a sentinel's port is not a number".to_string())?,
        None => SENTINEL_PORT,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

/// `user:password`, `:password` or `password` (as Redis URLs have it).
fn credentials(userinfo: &str) -> Result<(Option<String>, Option<String>), String> {
    Ok(match userinfo.split_once(':') {
        Some((user, password)) => (
            Some(decode(user, "the user")?).filter(|u| !u.is_empty()),
            Some(decode(password, "the password")?),
        ),
        None => (None, Some(decode(userinfo, "the password")?)),
    })
}

/// Percent-decoding, as URLs carry reserved characters; an error names
/// `what` was bad, not its text.
fn decode(text: &str, what: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| format!("a bad percent-escape in {what}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{what} is not UTF-8 once decoded"))
}

/// Passwords masked: a parsed URL may be printed by a test or a log.
impl std::fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |p: &Option<String>| p.as_ref().map(|_| "***");
        f.debug_struct("SentinelUrl")
            .field("tls", &self.tls)
            .field("sentinels", &self.sentinels)
            .field("service", &self.service)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &masked(&self.password))
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &masked(&self.sentinel_password))
            .finish()
    }
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
            ("redis+sentinel://h:port/m", "port is not a number"),
            ("redis+sentinel://,h/m", "at least one host"),
            (
                "redis+sentinel://h/m/x",
                "database after the service is not a number",
            ),
            ("redis+sentinel://h/m?master=1", "unknown parameter"),
        ] {
            let e = SentinelUrl::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn errors_and_debug_never_show_a_password() {
        for url in [
            "redis+sentinel://h/m?sentinel_password=50%",
            "redis+sentinel://h/m?sentinel_password=%ff",
            "redis+sentinel://u:p?x@h:1/m",
            "redis+sentinel://u:secret%zz@h/m",
        ] {
            if let Err(e) = SentinelUrl::parse(url) {
                assert!(
                    !e.contains("50%")
                        && !e.contains("%ff")
                        && !e.contains("p?x")
                        && !e.contains("secret"),
                    "{url}: {e}"
                );
            }
        }
        let parsed = SentinelUrl::parse("redis+sentinel://u:hunter2@h/m?sentinel_password=hunter3")
            .unwrap()
            .unwrap();
        let shown = format!("{parsed:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
    }
}
