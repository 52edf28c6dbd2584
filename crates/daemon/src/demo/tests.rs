//! The demo's unit tests.

use super::routes::metrics_allowed;
use super::*;
use ssehub_core::frame::Event;
use ssehub_core::hub::HubConfig;

#[test]
fn last_event_id_is_parsed_like_sscanf() {
    assert_eq!(resume_from(Some("message-4")), 4);
    assert_eq!(resume_from(Some("message--3")), -3);
    assert_eq!(resume_from(Some("message-7xyz")), 7);
    assert_eq!(resume_from(Some("message- 9")), 9);
    assert_eq!(resume_from(Some("message-0")), 0);
    assert_eq!(resume_from(Some("garbage")), 1);
    assert_eq!(resume_from(Some("message-")), 1);
    assert_eq!(resume_from(None), 1);
}

#[test]
fn metrics_are_private_unless_guarded_or_opened() {
    let remote: std::net::SocketAddr = "192.0.2.7:5000".parse().unwrap();
    let local: std::net::SocketAddr = "[::1]:5000".parse().unwrap();
    assert!(!metrics_allowed(remote, false, false));
    assert!(metrics_allowed(local, false, false));
    assert!(metrics_allowed(remote, true, false));
    assert!(metrics_allowed(remote, false, true));
}

#[test]
fn a_negative_resume_still_ends() {
    assert_eq!(limit(-3, Some(2)), -1);
    assert_eq!(limit(1, Some(3)), 4);
    assert_eq!(limit(1, None), i64::MAX);
    assert_eq!(limit(i64::MAX - 1, Some(5)), i64::MAX);
}

#[test]
fn message_frame_matches_the_capture() {
    let (id, data) = message_parts(1, 1795312920);
    let frame = Event {
        id: Some(&id),
        data: Some(&data),
        ..Event::default()
    }
    .encode()
    .unwrap();
    assert_eq!(
        std::str::from_utf8(&frame).unwrap(),
        "id: message-1\ndata: {\ndata:   \"time\": 1795312920,\ndata:   \"random\": \"spheIGLpzXpFGMIH\"\ndata: }\n\n"
    );
}

#[test]
fn the_printed_url_is_one_a_browser_here_reaches() {
    assert_eq!(base_url("", 8080, false), "http://127.0.0.1:8080");
    assert_eq!(base_url("0.0.0.0", 1, false), "http://127.0.0.1:1");
    assert_eq!(base_url("[::]", 2, true), "https://[::1]:2");
    assert_eq!(base_url("[::1]", 3, false), "http://[::1]:3");
    assert_eq!(base_url("localhost", 4, false), "http://localhost:4");
    assert_eq!(base_url("127.0.0.1", 5, true), "https://127.0.0.1:5");
}

#[test]
fn public_status_numbers_the_streams_instead_of_naming_their_peers() {
    let demo = Demo {
        hub: Hub::new(HubConfig {
            heartbeat: None,
            ..HubConfig::default()
        }),
        token: None,
        interval: Duration::from_secs(1),
        streams: Mutex::new(BTreeMap::new()),
        log: Arc::new(Logger::new(Sink::Off, Stamp::Bare)),
        metrics_public: false,
        ops: Ops::new("demo", crate::net::shutdown::Shutdown::default()),
        refuse: Refuse::default(),
    };
    let stream = Stream {
        connected_at: SystemTime::UNIX_EPOCH,
        next: Arc::new(AtomicI64::new(3)),
    };
    lock(&demo.streams).insert("198.51.100.7:40001".into(), stream);
    let body = |private| {
        let res = demo.status(private);
        String::from_utf8(crate::net::reply::encode_full(res, false).to_vec()).unwrap()
    };
    let private = body(true);
    assert!(
        private.contains("\"198.51.100.7:40001\":{\"remote\":\"198.51.100.7:40001\""),
        "{private}"
    );
    let public = body(false);
    assert!(!public.contains("198.51.100.7"), "{public}");
    assert!(public.contains("\"stream-1\":{\"remote\":\"stream-1\",\"connectedAt\":\"1970-01-01T00:00:00Z\",\"lastEventId\":3}"), "{public}");
}
