//! Helpers for tests of the engine and of the crates built on it (feature
//! `testing`, which only their dev-dependencies turn on): a hub made off
//! any runtime, and what a client's queue holds as text.

use crate::frame::Event;
use crate::hub::{Hub, HubConfig, Subscription};
use bytes::Bytes;
use std::collections::VecDeque;
use std::task::{Context, Waker};

/// A hub with `history` events of replay and no heartbeat, made inside a
/// throwaway runtime (a hub's heartbeat task needs one; without it none).
pub fn hub(history: usize) -> Hub {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let _guard = rt.enter();
    Hub::new(HubConfig {
        history,
        heartbeat: None,
        ..HubConfig::default()
    })
}

/// Takes everything queued for `sub` now, each frame as text.
pub fn drain(sub: &Subscription) -> Vec<String> {
    let mut batch = VecDeque::new();
    let mut cx = Context::from_waker(Waker::noop());
    let _ = sub.poll_batch(&mut cx, &mut batch);
    batch
        .into_iter()
        .map(|b| String::from_utf8(b.to_vec()).expect("frames are text"))
        .collect()
}

/// The frame of a `data:` event.
pub fn frame(data: &str) -> Bytes {
    Event::data(data).encode().expect("a data event frames")
}
