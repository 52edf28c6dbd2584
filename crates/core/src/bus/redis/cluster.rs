//! On a Redis Cluster: where the bus's keys live, and how a connection
//! to the cluster is made and kept.
//!
//! - Home: every key of the bus shares one hash tag (the prefix, see
//!   `Keys`), so one slot; its master is where keyless commands that must
//!   reach the keys' node go (the clock, the scripts, a PING proving the
//!   subscriber's node is up), not every node or a random one.
//! - Seeds: a cluster client is seeded with the URL's node and every node
//!   the cluster was last seen with, so the loss of the URL's node does
//!   not cut the bus off once it knows the cluster.

use super::endpoint::certificates;
use super::link::classify;
use crate::bus::Failure;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ConnectionAddr, ConnectionInfo, Value};
use std::sync::Mutex;
use std::time::Duration;

/// Slots in a Redis Cluster.
const SLOTS: u16 = 16384;
/// How long the cluster client may take to reach a node; a node that
/// does not answer in this time is skipped, not waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long it may wait for an answer by itself; our own deadlines (3 s)
/// are shorter and decide.
const RESPONSE_PATIENCE: Duration = Duration::from_secs(60);

/// The slot of keys whose hash tag is `tag` (CRC16/XMODEM, as Redis).
pub(super) fn slot_of(tag: &str) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(tag.as_bytes()) % SLOTS
}

/// Routes a command to the master of `slot`.
pub(super) fn to_master_of(slot: u16) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
        slot,
        SlotAddr::Master,
    )))
}

/// The cluster as last seen: its nodes' addresses.
#[derive(Default)]
pub(super) struct Map {
    nodes: Mutex<Option<Vec<(String, u16)>>>,
}

impl Map {
    /// Whether a cluster was seen at this endpoint.
    pub(super) fn known(&self) -> bool {
        self.nodes.lock().map(|n| n.is_some()).unwrap_or(false)
    }

    /// A cluster client seeded with `url_node` and every known node.
    pub(super) fn builder(
        &self,
        url_node: &ConnectionInfo,
        ca: Option<&[u8]>,
    ) -> ClusterClientBuilder {
        let known = self
            .nodes
            .lock()
            .ok()
            .and_then(|n| n.clone())
            .unwrap_or_default();
        let seeds = std::iter::once(url_node.clone()).chain(
            known
                .into_iter()
                .map(|(host, port)| at(url_node, host, port)),
        );
        let mut builder = ClusterClientBuilder::new(seeds.collect::<Vec<_>>())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_PATIENCE);
        if let Some(ca) = ca {
            builder = builder.certs(certificates(ca));
        }
        builder
    }

    /// Reads the cluster's nodes (`CLUSTER SLOTS`, at the home slot's
    /// master) as seeds for the next connection. A failure only leaves
    /// the map as it was.
    pub(super) async fn learn(
        &self,
        conn: &mut ClusterConnection,
        slot: u16,
    ) -> Result<(), Failure> {
        let answer = conn
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                to_master_of(slot),
            )
            .await
            .map_err(|e| classify(&e))?;
        let nodes = nodes_in(&answer);
        if let Ok(mut known) = self.nodes.lock() {
            *known = Some(nodes);
        }
        Ok(())
    }
}

/// `url_node`'s settings (credentials, TLS) at another address.
fn at(url_node: &ConnectionInfo, host: String, port: u16) -> ConnectionInfo {
    let addr = match url_node.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host, port),
    };
    url_node.clone().set_addr(addr)
}

/// The nodes of a `CLUSTER SLOTS` answer: per range, `[start, end,
/// [host, port, ...], [host, port, ...]...]`, each address once.
fn nodes_in(answer: &Value) -> Vec<(String, u16)> {
    let Value::Array(ranges) = answer else {
        return Vec::new();
    };
    let mut nodes = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        for node in parts.iter().skip(2) {
            let Value::Array(fields) = node else { continue };
            let host = match fields.first() {
                Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
                _ => continue,
            };
            let Some(Value::Int(port)) = fields.get(1) else {
                continue;
            };
            let Ok(port) = u16::try_from(*port) else {
                continue;
            };
            if !host.is_empty() && !nodes.contains(&(host.clone(), port)) {
                nodes.push((host, port));
            }
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_own() {
        // `CLUSTER KEYSLOT` answers, from a Redis 7.
        assert_eq!(slot_of("ssehub:"), 14508);
        assert_eq!(slot_of("foo"), 12182);
        assert_eq!(slot_of(""), 0);
    }

    #[test]
    fn the_nodes_of_a_cluster_slots_answer() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let answer = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.4", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("10.0.0.2", 7001),
            ]),
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(16383),
                node("10.0.0.1", 7000),
            ]),
        ]);
        assert_eq!(
            nodes_in(&answer),
            [
                ("10.0.0.1".to_string(), 7000),
                ("10.0.0.4".to_string(), 7003),
                ("10.0.0.2".to_string(), 7001)
            ]
        );
        assert!(nodes_in(&Value::Nil).is_empty());
    }
}
