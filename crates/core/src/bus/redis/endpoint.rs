//! Where the bus connects, asked afresh for every connection it makes:
//! - a Redis by its URL: `redis://`, `rediss://` (TLS, checked against
//!   the system's roots or the CA given), `redis+unix://`;
//! - the primary that Redis Sentinel names now: `redis+sentinel://` (and
//!   `rediss+sentinel://`, TLS to the primary and the sentinels), so the
//!   connection made after a failover goes to the new primary.
//!
//! The Redis found there may be a Redis Cluster (`cluster_enabled:1`):
//! then commands go through a cluster connection, routed by key (all the
//! bus's keys share one hash slot, see `Keys`), and the subscriber uses
//! sharded Pub/Sub on the slot's master (see `subscriber`).
//!
//! The Sentinel URL, as no standard fixes one:
//! `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]`
//! (port 26379 by default); the credentials are the primary's, and
//! `?sentinel_username=...&sentinel_password=...` those of the sentinels.

use super::link::classify;
use super::redact;
use crate::bus::Failure;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, PushInfo, RedisFuture, TlsCertificates,
    TlsMode, Value,
};
use std::time::Duration;
use tokio::sync::mpsc;

/// Sentinel's port when the URL names none.
const SENTINEL_PORT: u16 = 26379;

pub(super) struct Endpoint {
    kind: Kind,
    ca: Option<Vec<u8>>,
}

enum Kind {
    Direct(redis::Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// A command connection: to one Redis, or to a Redis Cluster.
#[derive(Clone)]
pub(super) enum Commands {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Commands {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Commands::Cluster(_))
    }
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Commands::Single(c) => c.req_packed_command(cmd),
            Commands::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Commands::Single(c) => c.req_packed_commands(cmd, offset, count),
            Commands::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Commands::Single(c) => c.get_db(),
            Commands::Cluster(c) => c.get_db(),
        }
    }
}

/// What a cluster connection may take on its own; past it, our deadlines
/// (which are shorter) decide.
const CLUSTER_PATIENCE: Duration = Duration::from_secs(60);

impl Endpoint {
    /// Checks `url` and makes the endpoint; `ca` (PEM) replaces the
    /// system's roots for TLS. Nothing is connected yet.
    pub(super) fn open(url: &str, ca: Option<&[u8]>) -> Result<Endpoint, String> {
        let invalid =
            |e: &dyn std::fmt::Display| format!("invalid Redis URL '{}': {e}", redact(url));
        install_crypto();
        let kind = match SentinelUrl::parse(url).map_err(|e| invalid(&e))? {
            Some(sentinel) => sentinel
                .client(ca)
                .map(|c| Kind::Sentinel(tokio::sync::Mutex::new(c))),
            None => match ca {
                Some(ca) => redis::Client::build_with_tls(url, certificates(ca)),
                None => redis::Client::open(url),
            }
            .map(Kind::Direct),
        };
        Ok(Endpoint {
            kind: kind.map_err(|e| invalid(&e))?,
            ca: ca.map(<[u8]>::to_vec),
        })
    }

    /// A command connection to the Redis there: a cluster connection
    /// when it is a Redis Cluster. It never retries a command by itself
    /// (a script it ran once must not run twice); a redirection fails the
    /// command, and the next one goes where the cluster now says.
    pub(super) async fn commands(&self) -> Result<Commands, Failure> {
        let client = self.client().await?;
        // Every wait is ours (the callers' deadlines): none of the library's.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| classify(&e))?;
        if !is_cluster(&mut conn).await? {
            return Ok(Commands::Single(conn));
        }
        let cluster = self
            .cluster(&client)
            .retries(0)
            .build()
            .map_err(|e| classify(&e))?;
        let conn = cluster
            .get_async_connection()
            .await
            .map_err(|e| classify(&e))?;
        Ok(Commands::Cluster(conn))
    }

    /// A connection for sharded Pub/Sub on a Redis Cluster, its pushes
    /// (messages, confirmations, disconnections) sent to `pushes`; `None`
    /// when the Redis there is not a cluster.
    pub(super) async fn cluster_subscriber(
        &self,
        pushes: mpsc::UnboundedSender<PushInfo>,
    ) -> Result<Option<ClusterConnection>, Failure> {
        let client = self.client().await?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| classify(&e))?;
        if !is_cluster(&mut conn).await? {
            return Ok(None);
        }
        let cluster = self
            .cluster(&client)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes)
            .build()
            .map_err(|e| classify(&e))?;
        let conn = cluster
            .get_async_connection()
            .await
            .map_err(|e| classify(&e))?;
        Ok(Some(conn))
    }

    /// A cluster client seeded with the node `client` reaches.
    fn cluster(&self, client: &redis::Client) -> ClusterClientBuilder {
        let mut builder = ClusterClientBuilder::new(vec![client.get_connection_info().clone()])
            .connection_timeout(CLUSTER_PATIENCE)
            .response_timeout(CLUSTER_PATIENCE);
        if let Some(ca) = &self.ca {
            builder = builder.certs(certificates(ca));
        }
        builder
    }

    /// A client for the Redis to talk to now.
    pub(super) async fn client(&self) -> Result<redis::Client, Failure> {
        match &self.kind {
            Kind::Direct(client) => Ok(client.clone()),
            Kind::Sentinel(sentinel) => {
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

/// Whether the Redis on `conn` is a Redis Cluster.
async fn is_cluster(conn: &mut MultiplexedConnection) -> Result<bool, Failure> {
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(conn)
        .await
        .map_err(|e| classify(&e))?;
    Ok(info.contains("cluster_enabled:1"))
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
