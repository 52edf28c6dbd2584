#![no_main]
//! Last-Event-ID handling: the demo mode's `sscanf("message-%d")` resume
//! (with `count` and the message it then frames), and the hub's replay
//! ring (the addon's `history`), resumed from any id.

use libfuzzer_sys::fuzz_target;
use ssehub_daemon::fuzz::{demo, http};
use ssehub_core::frame::Event;
use ssehub_core::hub::{Hub, HubConfig, Origin, Target};
use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (last_id, rest) = text.split_once('\0').unwrap_or((&text, ""));
    demo_resume(last_id, rest);
    hub_replay(last_id, rest);
});

fn demo_resume(last_id: &str, count: &str) {
    let start = demo::resume_from(Some(last_id));
    let count = http::scan_int(count);
    let limit = demo::limit(start, count);
    if let Some(c) = count.filter(|c| *c >= 0) {
        assert!(
            limit >= start,
            "a non-negative count must end at or after the start"
        );
        assert!(limit - start <= c);
    }
    let (id, data) = demo::message_parts(start, 0);
    let frame = Event {
        id: Some(&id),
        data: Some(&data),
        ..Event::default()
    }
    .encode()
    .expect("every message frames");
    assert!(frame.ends_with(b"\n\n"));
}

/// Records the comma-separated ids of `history` (at most 16, ring of 8),
/// then resumes a client from `last_id` and checks what it receives
/// against a model of the ring.
fn hub_replay(last_id: &str, history: &str) {
    let hub = Hub::new(HubConfig {
        history: 8,
        heartbeat: None,
        ..HubConfig::default()
    });
    let mut ring: VecDeque<String> = VecDeque::new();
    for id in history.split(',').take(16) {
        let event = Event {
            id: Some(id),
            data: Some(id),
            ..Event::default()
        };
        if let Ok(frame) = event.encode() {
            hub.fan_out(Target::All, frame, Origin::Published(event.id));
            if ring.len() == 8 {
                ring.pop_front();
            }
            ring.push_back(id.to_string());
        }
    }
    let sub = hub.register().expect("an open hub takes a client");
    let replayed = hub.replay(sub.id(), last_id);
    let expected = match ring.iter().rposition(|id| !id.is_empty() && id == last_id) {
        Some(at) => ring.len() - at - 1,
        None => ring.len(),
    };
    assert_eq!(replayed, expected);
    let mut batch = VecDeque::new();
    let mut cx = Context::from_waker(Waker::noop());
    let queued = match sub.poll_batch(&mut cx, &mut batch) {
        Poll::Ready(Ok(())) => batch.len(),
        _ => 0,
    };
    let gap = usize::from(
        ring.iter()
            .rposition(|id| !id.is_empty() && id == last_id)
            .is_none(),
    );
    assert_eq!(queued, replayed + gap);
}
