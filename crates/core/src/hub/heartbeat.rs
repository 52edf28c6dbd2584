//! Heartbeats: a `:` comment to every client idle for a whole interval, so
//! proxies and browsers keep an idle stream open.

use super::{read, Client, Inner};
use crate::frame;
use bytes::Bytes;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Queues a heartbeat to every client that was idle for a whole interval.
/// Ends when the hub is dropped.
pub(super) async fn run(hub: Weak<Inner>, every: Duration) {
    let beat = Bytes::from_static(frame::HEARTBEAT);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = hub.upgrade() else { return };
        let clients: Vec<Arc<Client>> = read(&inner.clients).values().cloned().collect();
        for client in clients {
            client.queue.heartbeat_if_idle(&beat);
        }
    }
}
