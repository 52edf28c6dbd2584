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

use super::cluster::{self, to_master_of};
use super::link::classify;
use super::redact;
use super::sentinel::SentinelUrl;
use crate::bus::Failure;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::SentinelClient;
use redis::{
    AsyncConnectionConfig, Cmd, Pipeline, PushInfo, RedisFuture, RedisResult, TlsCertificates,
    Value,
};
use tokio::sync::mpsc;

pub(super) struct Endpoint {
    kind: Kind,
    ca: Option<Vec<u8>>,
    /// The hash slot of the bus's keys (their tag), on a cluster.
    slot: u16,
    /// The cluster, once one was seen here.
    map: cluster::Map,
}

enum Kind {
    Direct(redis::Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// A command connection: to one Redis, or to a Redis Cluster (and the
/// slot of the bus's keys there).
#[derive(Clone)]
pub(super) enum Commands {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection, u16),
}

impl Commands {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Commands::Cluster(..))
    }

    /// A keyless command where the bus's keys live: on a cluster, the
    /// master of their slot (not a random node, nor every node).
    pub(super) async fn at_home(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Commands::Single(c) => cmd.query_async(c).await,
            Commands::Cluster(c, slot) => c.route_command(cmd.clone(), to_master_of(*slot)).await,
        }
    }
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Commands::Single(c) => c.req_packed_command(cmd),
            Commands::Cluster(c, _) => c.req_packed_command(cmd),
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
            Commands::Cluster(c, _) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Commands::Single(c) => c.get_db(),
            Commands::Cluster(c, _) => c.get_db(),
        }
    }
}

impl Endpoint {
    /// Checks `url` and makes the endpoint; `ca` (PEM) replaces the
    /// system's roots for TLS; `tag` is the hash tag of the bus's keys.
    /// Nothing is connected yet.
    pub(super) fn open(url: &str, ca: Option<&[u8]>, tag: &str) -> Result<Endpoint, String> {
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
            slot: cluster::slot_of(tag),
            map: cluster::Map::default(),
        })
    }

    /// A command connection to the Redis there: a cluster connection
    /// when it is a Redis Cluster. It never retries a command by itself
    /// (a script it ran once must not run twice); a redirection fails the
    /// command, and the next one goes where the cluster now says.
    pub(super) async fn commands(&self) -> Result<Commands, Failure> {
        let client = self.client().await?;
        if let Some(conn) = self.single(&client).await? {
            return Ok(Commands::Single(conn));
        }
        let builder = self
            .map
            .builder(client.get_connection_info(), self.ca.as_deref());
        let conn = self.cluster_connection(builder.retries(0)).await?;
        Ok(Commands::Cluster(conn, self.slot))
    }

    /// A connection for sharded Pub/Sub on a Redis Cluster, its pushes
    /// (messages, confirmations, disconnections) sent to `pushes`, and the
    /// slot of the bus's keys; `None` when the Redis there is not a
    /// cluster.
    pub(super) async fn cluster_subscriber(
        &self,
        pushes: mpsc::UnboundedSender<PushInfo>,
    ) -> Result<Option<(ClusterConnection, u16)>, Failure> {
        let client = self.client().await?;
        if self.single(&client).await?.is_some() {
            return Ok(None);
        }
        let builder = self
            .map
            .builder(client.get_connection_info(), self.ca.as_deref())
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes);
        let conn = self.cluster_connection(builder).await?;
        Ok(Some((conn, self.slot)))
    }

    /// A connection to the Redis `client` reaches, unless it is a cluster
    /// (or one was seen here before): then `None`.
    async fn single(
        &self,
        client: &redis::Client,
    ) -> Result<Option<MultiplexedConnection>, Failure> {
        if self.map.known() {
            return Ok(None);
        }
        // Every wait is ours (the callers' deadlines): none of the library's.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| classify(&e))?;
        Ok((!is_cluster(&mut conn).await?).then_some(conn))
    }

    /// Connects to the cluster as `builder` says, then notes its nodes as
    /// the seeds of the next connection.
    async fn cluster_connection(
        &self,
        builder: ClusterClientBuilder,
    ) -> Result<ClusterConnection, Failure> {
        let mut conn = builder
            .build()
            .map_err(|e| classify(&e))?
            .get_async_connection()
            .await
            .map_err(|e| classify(&e))?;
        self.map.learn(&mut conn, self.slot).await?;
        Ok(conn)
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

pub(super) fn certificates(ca: &[u8]) -> TlsCertificates {
    TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_error_masks_the_password() {
        let Err(e) = Endpoint::open("redis+sentinel://u:hunter2@h:x/m", None, "t") else {
            panic!("taken")
        };
        assert!(
            !e.contains("hunter2") && e.contains("port is not a number"),
            "{e}"
        );
    }
}
