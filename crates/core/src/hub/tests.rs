//! The hub's unit tests: fan-out, channels, replay, holds, races.

use super::*;
use crate::frame::Event;
use crate::testing::{drain, frame, hub};

#[test]
fn broadcast_reaches_every_client_once() {
    let hub = hub(0);
    let subs: Vec<_> = (0..300).map(|_| hub.register().unwrap()).collect();
    for n in 0..5 {
        let data = n.to_string();
        assert_eq!(
            hub.fan_out(Target::All, frame(&data), Origin::Published(None)),
            300
        );
    }
    for sub in &subs {
        let want: Vec<String> = (0..5).map(|n| format!("data: {n}\n\n")).collect();
        assert_eq!(drain(sub), want);
    }
    assert_eq!(hub.stats().events_delivered, 1500);
}

#[test]
fn a_member_of_two_channels_gets_a_publish_once() {
    let hub = hub(0);
    let a = hub.register().unwrap();
    let b = hub.register().unwrap();
    let outsider = hub.register().unwrap();
    hub.join(a.id(), "x");
    hub.join(a.id(), "y");
    hub.join(b.id(), "y");
    assert_eq!(
        hub.fan_out(
            Target::Channels(&["x", "y"]),
            frame("hi"),
            Origin::Published(None)
        ),
        2
    );
    assert_eq!(drain(&a), ["data: hi\n\n"]);
    assert_eq!(drain(&b), ["data: hi\n\n"]);
    assert!(drain(&outsider).is_empty());
    assert!(hub.leave(a.id(), "x"));
    assert!(!hub.leave(a.id(), "x"));
    assert_eq!(hub.channel_size("x"), 0);
}

#[test]
fn dropping_a_subscription_unregisters_and_reports() {
    let hub = hub(0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    hub.on_close(move |id, why| lock(&log).push((id, why)));
    let sub = hub.register().unwrap();
    let id = sub.id();
    hub.join(id, "room");
    hub.close_client(id, CloseReason::Server);
    drop(sub);
    assert_eq!(hub.client_count(), 0);
    assert_eq!(hub.channel_size("room"), 0);
    assert_eq!(*lock(&seen), [(id, CloseReason::Server)]);
    assert!(!hub.send_raw(id, Bytes::from_static(b"x")));
}

#[test]
fn replay_sends_missed_events_of_joined_channels() {
    let hub = hub(10);
    for n in 1..=4 {
        let id = n.to_string();
        let e = Event {
            id: Some(&id),
            ..Event::data("b")
        };
        hub.fan_out(Target::All, e.encode().unwrap(), Origin::Published(e.id));
        let e = Event {
            id: None,
            ..Event::data("secret")
        };
        let other = e.encode().unwrap();
        hub.fan_out(Target::Channels(&["other"]), other, Origin::Published(None));
    }
    let sub = hub.register().unwrap();
    assert_eq!(hub.replay(sub.id(), "2"), 2);
    assert_eq!(drain(&sub), ["id: 3\ndata: b\n\n", "id: 4\ndata: b\n\n"]);
    assert_eq!(hub.replay(sub.id(), "unknown"), 4);
    let got = drain(&sub);
    assert_eq!(got[0], "event: ssehub-gap\ndata: unknown\n\n");
    assert_eq!(got.len(), 5);
}

#[test]
fn a_held_client_gets_its_replay_then_live_events_once_each() {
    let hub = hub(0);
    let sub = hub.register().unwrap();
    let other = hub.register().unwrap();
    hub.hold(sub.id());
    hub.join(sub.id(), "c");
    hub.join(other.id(), "c");
    let frame = |n: u64| Bytes::from(format!("id: {n}\n\n"));
    for n in [5, 6] {
        hub.fan_out(Target::Channels(&["c"]), frame(n), Origin::Numbered(n));
    }
    assert!(
        drain(&sub).is_empty(),
        "a held client got live events before its replay"
    );
    assert_eq!(drain(&other), ["id: 5\n\n", "id: 6\n\n"]);
    hub.release(sub.id(), 3, Some("3"), vec![(4, frame(4)), (5, frame(5))]);
    // Live events still on their way that the replay covered: dropped.
    hub.fan_out(Target::Channels(&["c"]), frame(6), Origin::Numbered(6));
    hub.fan_out(Target::All, frame(7), Origin::Numbered(7));
    assert_eq!(
        drain(&sub),
        [
            "event: ssehub-gap\ndata: 3\n\n",
            "id: 4\n\n",
            "id: 5\n\n",
            "id: 6\n\n",
            "id: 7\n\n"
        ]
    );
    hub.prune_holds(7);
    assert_eq!(hub.inner.held.load(Relaxed), 0, "a released hold was kept");
}

#[test]
fn a_frame_sent_to_many_reaches_each_listed_client_once() {
    let hub = hub(0);
    let a = hub.register().unwrap();
    let b = hub.register().unwrap();
    let gone = hub.register().unwrap();
    let gone_id = gone.id();
    drop(gone);
    let frame = Bytes::from_static(b"data: x\n\n");
    let listed = [a.id(), gone_id, b.id(), a.id()];
    assert_eq!(
        hub.fan_out(Target::Clients(&listed), frame, Origin::Published(None)),
        3
    );
    assert_eq!(drain(&a), ["data: x\n\n", "data: x\n\n"]);
    assert_eq!(drain(&b), ["data: x\n\n"]);
    assert_eq!(hub.stats().events_published, 4);
    assert_eq!(hub.stats().events_delivered, 3);
}

#[test]
fn the_channel_hook_hears_first_joins_and_last_leaves_in_order() {
    let hub = hub(0);
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    hub.on_channel(move |c, on| lock(&log).push((c.to_string(), on)));
    let a = hub.register().unwrap();
    let b = hub.register().unwrap();
    hub.join(a.id(), "x");
    hub.join(b.id(), "x");
    hub.leave(a.id(), "x");
    drop(b);
    hub.join(a.id(), "x");
    assert_eq!(
        *lock(&heard),
        [("x".into(), true), ("x".into(), false), ("x".into(), true)]
    );
}

#[test]
fn close_all_racing_register_leaves_no_open_client() {
    use std::sync::atomic::AtomicUsize;
    for _ in 0..500 {
        let hub = hub(0);
        let started = Arc::new(AtomicUsize::new(0));
        let registering: Vec<_> = (0..3)
            .map(|_| {
                let (hub, started) = (hub.clone(), started.clone());
                std::thread::spawn(move || {
                    let mut subs = Vec::new();
                    while let Ok(sub) = hub.register() {
                        subs.push(sub);
                        started.fetch_add(1, Relaxed);
                    }
                    subs
                })
            })
            .collect();
        while started.load(Relaxed) < 3 {
            std::hint::spin_loop();
        }
        hub.close_all(CloseReason::Shutdown);
        for thread in registering {
            for sub in thread.join().unwrap() {
                assert_eq!(sub.closing(), Some(CloseReason::Shutdown), "left open");
            }
        }
    }
}

#[test]
fn join_racing_unregister_leaves_no_dangling_member() {
    use std::sync::atomic::AtomicBool;
    for _ in 0..300 {
        let hub = hub(0);
        let sub = hub.register().unwrap();
        let id = sub.id();
        let started = Arc::new(AtomicBool::new(false));
        let joining = {
            let (hub, started) = (hub.clone(), started.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while hub.join(id, &format!("c{}", n % 4)) {
                    n += 1;
                    started.store(true, Relaxed);
                }
            })
        };
        while !started.load(Relaxed) {
            std::hint::spin_loop();
        }
        drop(sub);
        joining.join().unwrap();
        assert_eq!(hub.stats().channels, 0, "a channel kept the gone client");
    }
}

#[test]
fn max_clients_refuses_past_the_limit() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let hub = Hub::new(HubConfig {
        max_clients: 2,
        heartbeat: None,
        ..HubConfig::default()
    });
    let _a = hub.register().unwrap();
    let b = hub.register().unwrap();
    assert_eq!(hub.register().err(), Some(RegisterError::Full));
    drop(b);
    assert!(hub.register().is_ok());
    hub.close_all(CloseReason::Shutdown);
    assert_eq!(hub.register().err(), Some(RegisterError::Closed));
}

#[test]
fn the_open_count_follows_every_way_a_client_ends() {
    let hub = hub(0);
    let mut subs: Vec<_> = (0..4).map(|_| hub.register().unwrap()).collect();
    assert_eq!(hub.open_clients(), 4);
    hub.close_client(subs[0].id(), CloseReason::Server);
    hub.close_client(subs[0].id(), CloseReason::Slow); // once only
    drop(subs.pop()); // unregistered without a close
    assert_eq!(hub.open_clients(), 2);
    drop(subs.remove(0)); // closed, then unregistered
    assert_eq!(hub.open_clients(), 2);
    hub.close_all(CloseReason::Shutdown);
    assert_eq!(hub.open_clients(), 0);
    assert_eq!(
        hub.fan_out(Target::All, frame("late"), Origin::Published(None)),
        0
    );
}
