//! The subscriber connection, on one Redis (SUBSCRIBE, RESP2 Pub/Sub) or
//! on a Redis Cluster (sharded Pub/Sub: SSUBSCRIBE on the master of the
//! bus's slot, over RESP3), and what the follower hears on it.
//!
//! On a cluster the connection outlives a node: when the slot's master
//! goes away or the slot moves, Redis or the client says so (a
//! `sunsubscribe` we did not ask for, a disconnection) and the follower
//! is told [`Heard::Interrupted`]: it subscribes again, which the client
//! sends where the cluster now says, then catches up from the streams,
//! as after any reconnect.

use super::cluster::to_master_of;
use super::endpoint::Endpoint;
use super::link::{classify, timed_out};
use super::EXCHANGE_TIMEOUT;
use crate::bus::{Failure, FailureClass};
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use std::collections::HashSet;
use std::future::Future;
use tokio::sync::mpsc;

/// Channel names in one SUBSCRIBE or UNSUBSCRIBE.
const MAX_SUBSCRIBE: usize = 1000;

/// What the subscriber connection brought.
pub(super) enum Heard {
    /// A message's payload.
    Message(Vec<u8>),
    /// Messages may have been missed (the slot moved, or its master
    /// went): subscribe again, then catch up.
    Interrupted,
    /// The cluster client lost a node's connection: if it was the
    /// connection to the slot's master ([`Subscriber::home_changed`]),
    /// messages may have been missed.
    NodeLost,
    /// The connection is gone.
    Lost(Failure),
}

pub(super) enum Subscriber {
    Single {
        sink: PubSubSink,
        stream: PubSubStream,
    },
    Cluster {
        conn: ClusterConnection,
        /// The slot of the bus's keys and channels.
        slot: u16,
        pushes: mpsc::UnboundedReceiver<PushInfo>,
        /// Channels we unsubscribed from whose confirmation is due.
        leaving: HashSet<Vec<u8>>,
        /// The id the slot's master gave our connection (`CLIENT ID`): a
        /// new one means the connection was made again.
        home: Option<i64>,
    },
}

impl Subscriber {
    pub(super) async fn connect(endpoint: &Endpoint) -> Result<Subscriber, Failure> {
        let (tx, pushes) = mpsc::unbounded_channel();
        if let Some((conn, slot)) = endpoint.cluster_subscriber(tx).await? {
            let mut sub = Subscriber::Cluster {
                conn,
                slot,
                pushes,
                leaving: HashSet::new(),
                home: None,
            };
            sub.home_changed().await?;
            return Ok(sub);
        }
        let client = endpoint.client().await?;
        let pubsub = client.get_async_pubsub().await.map_err(|e| classify(&e))?;
        let (sink, stream) = pubsub.split();
        Ok(Subscriber::Single { sink, stream })
    }

    /// Subscribes to (`on`) or unsubscribes from `names`, in batches.
    pub(super) async fn subscribe(&mut self, names: &[String], on: bool) -> Result<(), Failure> {
        for chunk in names.chunks(MAX_SUBSCRIBE) {
            match self {
                Subscriber::Single { sink, .. } if on => bounded(sink.subscribe(chunk)).await?,
                Subscriber::Single { sink, .. } => bounded(sink.unsubscribe(chunk)).await?,
                Subscriber::Cluster { conn, .. } if on => bounded(conn.ssubscribe(chunk)).await?,
                Subscriber::Cluster { conn, leaving, .. } => {
                    leaving.extend(chunk.iter().map(|c| c.as_bytes().to_vec()));
                    bounded(conn.sunsubscribe(chunk)).await?
                }
            }
        }
        Ok(())
    }

    /// Proves the connection is up: all sent on it so far came.
    pub(super) async fn ping(&mut self) -> Result<(), Failure> {
        let pong = match self {
            // Subscribed, Redis answers ["pong", ""], not +PONG.
            Subscriber::Single { sink, .. } => bounded(sink.ping::<Value>()).await.map(drop),
            // The slot's master: the node our messages come from.
            Subscriber::Cluster { conn, slot, .. } => {
                bounded(conn.route_command(redis::cmd("PING"), to_master_of(*slot)))
                    .await
                    .map(drop)
            }
        };
        pong.map_err(|_| Failure::new(FailureClass::Unavailable, "no answer to PING"))
    }

    /// Whether the connection to the slot's master was made again since
    /// last asked (or is gone): messages may have been missed meanwhile.
    /// Always true on one Redis, where this is not asked.
    pub(super) async fn home_changed(&mut self) -> Result<bool, Failure> {
        let Subscriber::Cluster {
            conn, slot, home, ..
        } = self
        else {
            return Ok(true);
        };
        let id = bounded(
            conn.route_command(redis::cmd("CLIENT").arg("ID").clone(), to_master_of(*slot)),
        )
        .await?;
        let Value::Int(id) = id else {
            return Err(Failure::new(
                FailureClass::Other,
                format!("CLIENT ID answered {id:?}"),
            ));
        };
        Ok(home.replace(id) != Some(id))
    }

    /// The messages already received and waiting, in order; what else
    /// waited (interruptions) is dropped: the caller is about to subscribe
    /// again and catch up, which covers them.
    pub(super) fn take_waiting(&mut self) -> Vec<Vec<u8>> {
        let Subscriber::Cluster {
            pushes, leaving, ..
        } = self
        else {
            return Vec::new();
        };
        let mut messages = Vec::new();
        while let Ok(push) = pushes.try_recv() {
            if let Some(Heard::Message(m)) = heard_from_cluster(push, leaving) {
                messages.push(m);
            }
        }
        messages
    }

    /// The next thing heard that matters. Cancel-safe: nothing is taken
    /// from the connection but at its await.
    pub(super) async fn next(&mut self) -> Heard {
        match self {
            Subscriber::Single { stream, .. } => {
                let msg = std::future::poll_fn(|cx| {
                    futures_core::Stream::poll_next(std::pin::Pin::new(&mut *stream), cx)
                })
                .await;
                match msg {
                    Some(msg) => Heard::Message(msg.get_payload_bytes().to_vec()),
                    None => Heard::Lost(Failure::new(
                        FailureClass::Unavailable,
                        "the subscriber connection closed",
                    )),
                }
            }
            Subscriber::Cluster {
                pushes, leaving, ..
            } => loop {
                let Some(push) = pushes.recv().await else {
                    return Heard::Lost(Failure::new(
                        FailureClass::Unavailable,
                        "the cluster subscriber connection closed",
                    ));
                };
                if let Some(heard) = heard_from_cluster(push, leaving) {
                    return heard;
                }
            },
        }
    }
}

/// What one push of the cluster connection means; `None` if nothing.
fn heard_from_cluster(push: PushInfo, leaving: &mut HashSet<Vec<u8>>) -> Option<Heard> {
    let bytes = |v: Option<&Value>| match v {
        Some(Value::BulkString(b)) => Some(b.clone()),
        _ => None,
    };
    match push.kind {
        PushKind::SMessage | PushKind::Message => bytes(push.data.get(1)).map(Heard::Message),
        // The client lost a node's connection; it reconnects by itself.
        PushKind::Disconnection => Some(Heard::NodeLost),
        PushKind::SUnsubscribe => {
            let channel = bytes(push.data.first()).unwrap_or_default();
            // Ours, confirmed; else the slot moved (or its master went).
            (!leaving.remove(&channel)).then_some(Heard::Interrupted)
        }
        _ => None,
    }
}

/// An exchange on the subscriber connection, bounded in time.
async fn bounded<T>(exchange: impl Future<Output = redis::RedisResult<T>>) -> Result<T, Failure> {
    match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(timed_out("on the subscriber connection")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(kind: PushKind, data: &[&[u8]]) -> PushInfo {
        PushInfo {
            kind,
            data: data.iter().map(|d| Value::BulkString(d.to_vec())).collect(),
        }
    }

    #[test]
    fn a_cluster_push_is_a_message_an_interruption_or_nothing() {
        let mut leaving = HashSet::from([b"{s:}ch:gone".to_vec()]);
        let heard = heard_from_cluster(
            push(PushKind::SMessage, &[b"{s:}ch:a", b"1\nx"]),
            &mut leaving,
        );
        assert!(matches!(heard, Some(Heard::Message(m)) if m == b"1\nx"));
        // Our own unsubscribe, confirmed: nothing; the slot moving: interrupted.
        assert!(heard_from_cluster(
            push(PushKind::SUnsubscribe, &[b"{s:}ch:gone"]),
            &mut leaving
        )
        .is_none());
        assert!(leaving.is_empty());
        assert!(matches!(
            heard_from_cluster(push(PushKind::SUnsubscribe, &[b"{s:}ch:a"]), &mut leaving),
            Some(Heard::Interrupted)
        ));
        assert!(matches!(
            heard_from_cluster(
                PushInfo {
                    kind: PushKind::Disconnection,
                    data: vec![]
                },
                &mut leaving
            ),
            Some(Heard::NodeLost)
        ));
        assert!(
            heard_from_cluster(push(PushKind::SSubscribe, &[b"{s:}ch:a"]), &mut leaving).is_none()
        );
    }
}
