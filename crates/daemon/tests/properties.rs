//! Property tests over ssehub's wire encoding and its input parsers.
//!
//! - Any event framed by ssehub (directly or through a hub's fan-out),
//!   with heartbeats and comments in between, parsed back by a parser
//!   that follows the WHATWG rules (the way eventsource-parser does),
//!   gives the same events, ids and retry.
//! - The control-line splitter and parser, the query, path and form
//!   parsers, the Last-Event-ID parser and the token checker never panic,
//!   and round-trip what they are meant to.

use bytes::Bytes;
use proptest::prelude::*;
use ssehub_core::frame::{self, Event, FrameError};
use ssehub_core::hub::{Hub, HubConfig, Origin, Target};
use ssehub_daemon::fuzz::control::{self, Input, Line, Pair, Splitter};
use ssehub_daemon::fuzz::{demo, http, jwt, token};
use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

// ---------------------------------------------------------------------
// A spec-conformant event-stream parser (WHATWG HTML, "Interpreting an
// event stream"), written from the spec, not from ssehub's encoder.

/// One event as an EventSource would dispatch it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dispatched {
    event: String,
    data: String,
    last_event_id: String,
}

/// What a client knows after reading a stream.
#[derive(Debug, Default, PartialEq, Eq)]
struct ClientView {
    events: Vec<Dispatched>,
    last_event_id: String,
    retry: Option<u64>,
}

#[derive(Default)]
struct SpecParser {
    data: String,
    event_type: String,
    id_buffer: String,
    view: ClientView,
}

impl SpecParser {
    /// Parses a whole stream: UTF-8 decoded with replacement, one leading
    /// BOM dropped, lines ended by CRLF, LF or CR; an unterminated last
    /// line is not processed.
    fn parse(bytes: &[u8]) -> ClientView {
        let text = String::from_utf8_lossy(bytes);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut parser = SpecParser::default();
        let mut line = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => {
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    parser.line(&std::mem::take(&mut line));
                }
                '\n' => parser.line(&std::mem::take(&mut line)),
                c => line.push(c),
            }
        }
        parser.view
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event_type = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.id_buffer = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.view.retry = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        self.view.last_event_id = self.id_buffer.clone();
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the last LF
        let event = std::mem::take(&mut self.event_type);
        self.view.events.push(Dispatched {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
            last_event_id: self.view.last_event_id.clone(),
        });
    }
}

// ---------------------------------------------------------------------
// The model: what a client must see for the events ssehub was given.

#[derive(Debug, Clone)]
struct OwnedEvent {
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
}

impl OwnedEvent {
    fn borrow(&self) -> Event<'_> {
        Event {
            event: self.event.as_deref(),
            data: self.data.as_deref(),
            id: self.id.as_deref(),
            retry: self.retry,
        }
    }
}

fn expected_view(events: &[OwnedEvent]) -> ClientView {
    let mut view = ClientView::default();
    for e in events {
        // An empty id is not written (no way to reset the id): kept as is.
        if let Some(id) = e.id.as_deref().filter(|i| !i.is_empty()) {
            view.last_event_id = id.to_string();
        }
        if e.retry.is_some() {
            view.retry = e.retry;
        }
        if let Some(data) = &e.data {
            view.events.push(Dispatched {
                event: e
                    .event
                    .clone()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "message".into()),
                data: frame::split_lines(data).collect::<Vec<_>>().join("\n"),
                last_event_id: view.last_event_id.clone(),
            });
        }
    }
    view
}

// ---------------------------------------------------------------------
// Strategies.

/// Text with many line breaks of every kind, and any other character.
fn multiline() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<String>(),
        1 => "[ :a-z]{0,4}".prop_map(String::from),
    ];
    let brk = prop_oneof![Just("\n"), Just("\r"), Just("\r\n"), Just("")];
    prop::collection::vec((piece, brk), 0..5)
        .prop_map(|parts| parts.into_iter().map(|(p, b)| p + b).collect())
}

/// A single-line field value: anything but CR, LF and NUL.
fn single_line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|s| s.replace(['\r', '\n', '\0'], "")),
        "[ :a-z0-9]{0,6}".prop_map(String::from),
    ]
}

fn event() -> impl Strategy<Value = OwnedEvent> {
    (
        prop::option::of(single_line()),
        prop::option::of(multiline()),
        prop::option::of(single_line()),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(event, data, id, retry)| OwnedEvent {
            event,
            data,
            id,
            retry,
        })
}

/// What a stream may carry between events: nothing, a heartbeat, or a
/// comment (the addon's `:ok`, or any text).
fn filler() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        Just(Bytes::from_static(frame::HEARTBEAT)),
        Just(Bytes::from_static(b":ok\n\n")),
        multiline().prop_map(|t| frame::comment(&t)),
    ]
}

/// Every byte as `%XX`.
fn percent_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn drain(sub: &ssehub_core::hub::Subscription) -> Vec<u8> {
    let mut batch = VecDeque::new();
    let mut cx = Context::from_waker(Waker::noop());
    match sub.poll_batch(&mut cx, &mut batch) {
        Poll::Ready(Ok(())) => batch.iter().flat_map(|b| b.iter().copied()).collect(),
        _ => Vec::new(),
    }
}

fn split_lines_of(chunks: &[&[u8]]) -> Vec<Input> {
    let mut splitter = Splitter::default();
    let mut out = Vec::new();
    for chunk in chunks {
        splitter.feed(chunk, &mut |input| out.push(input));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Framed events, heartbeats and comments read back by a spec parser
    /// give exactly the events, last id and retry that were sent.
    #[test]
    fn framed_events_parse_back_identically(
        items in prop::collection::vec((filler(), event()), 0..8),
        tail in filler(),
    ) {
        let mut stream = Vec::new();
        for (fill, e) in &items {
            stream.extend_from_slice(fill);
            stream.extend_from_slice(&e.borrow().encode().expect("single-line fields frame"));
        }
        stream.extend_from_slice(&tail);
        let events: Vec<OwnedEvent> = items.into_iter().map(|(_, e)| e).collect();
        prop_assert_eq!(SpecParser::parse(&stream), expected_view(&events));
    }

    /// The same through a hub: broadcast and published events come out of
    /// a subscriber's queue in order and parse back identically.
    #[test]
    fn hub_fan_out_preserves_every_event(events in prop::collection::vec(event(), 0..8)) {
        let hub = Hub::new(HubConfig { heartbeat: None, ..HubConfig::default() });
        let sub = hub.register().unwrap();
        prop_assert!(hub.join(sub.id(), "room"));
        for (i, e) in events.iter().enumerate() {
            if i % 2 == 0 {
                let e = e.borrow();
                hub.fan_out(Target::All, e.encode().unwrap(), Origin::Published(e.id));
            } else {
                let e = e.borrow();
                let frame = e.encode().unwrap();
                hub.fan_out(Target::Channels(&["room", "elsewhere"]), frame, Origin::Published(e.id));
            }
        }
        prop_assert_eq!(SpecParser::parse(&drain(&sub)), expected_view(&events));
    }

    /// A line break or NUL in `event` or `id` is refused, never written.
    #[test]
    fn line_breaks_in_single_line_fields_are_refused(
        before in single_line(),
        bad in prop_oneof![Just('\r'), Just('\n'), Just('\0')],
        after in single_line(),
        in_id in any::<bool>(),
    ) {
        let value = format!("{before}{bad}{after}");
        let e = if in_id {
            Event { id: Some(&value), ..Event::data("x") }
        } else {
            Event { event: Some(&value), ..Event::data("x") }
        };
        let field = if in_id { "id" } else { "event" };
        prop_assert_eq!(e.encode(), Err(FrameError::LineBreak(field)));
    }

    /// Any bytes, cut into reads anywhere: the same lines, none lost.
    #[test]
    fn control_lines_do_not_depend_on_read_boundaries(
        stream in prop::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(0u8), Just(b'='), any::<u8>()], 0..400),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for to in at {
            chunks.push(&stream[from..to]);
            from = to;
        }
        chunks.push(&stream[from..]);
        let whole = split_lines_of(&[&stream]);
        prop_assert_eq!(&split_lines_of(&chunks), &whole);
        let newlines = stream.iter().filter(|&&b| b == b'\n').count();
        prop_assert_eq!(whole.len(), newlines);
        for input in whole {
            if let Input::Line { text, .. } = input {
                let _ = control::parse(&text);
            }
        }
    }

    /// `channel/type = data` lines, with blanks anywhere the protocol
    /// trims them, parse back to their parts.
    #[test]
    fn control_publish_lines_round_trip(
        channel in "[^/=\r\n \t]{1,8}",
        event in prop::option::of("[^=\r\n \t]{1,8}"),
        data in "[^\r\n]{0,12}",
        pad in "[ \t]{0,3}",
        crlf in any::<bool>(),
    ) {
        let data = data.trim_matches([' ', '\t']);
        let target = match &event {
            Some(e) => format!("{channel}/{e}"),
            None => channel.clone(),
        };
        let line = format!("{pad}{target}{pad}={pad}{data}{pad}{}", if crlf { "\r" } else { "" });
        prop_assert_eq!(
            control::parse(&line),
            Line::Publish {
                target: &target,
                channel: &channel,
                event: event.as_deref().unwrap_or("message"),
                data,
            }
        );
    }

    /// The control parser takes any text without panicking.
    #[test]
    fn control_parse_never_panics(line in any::<String>()) {
        let _ = control::parse(&line);
    }

    /// Queries: one pair per piece; fully escaped names and values decode
    /// back exactly (SSE-Server's rules and Go's).
    #[test]
    fn query_pairs_round_trip(pairs in prop::collection::vec((any::<String>(), any::<String>()), 1..5)) {
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_all(k), percent_all(v)))
            .collect();
        let query = query.join("&");
        let expected: Vec<Pair> = pairs.iter().map(|(k, v)| Pair::Event(k.clone(), v.clone())).collect();
        prop_assert_eq!(control::query_pairs(&query), expected);
        // Go's rules agree here: no piece is empty or holds ';'.
        let go_expected: Vec<(String, String)> = pairs;
        prop_assert_eq!(http::go_parse_query(&query), go_expected);
    }

    /// Paths, queries, form bodies and numbers: no input panics.
    #[test]
    fn http_parsers_never_panic(text in any::<String>(), raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = control::query_pairs(&text);
        let channels = control::path_channels(&text).unwrap_or_default();
        prop_assert!(channels.iter().all(|c| !c.is_empty()));
        let _ = control::strip_prefix(&text, "/my/sse");
        let _ = http::go_parse_query(&text);
        let _ = http::go_unescape(&text);
        let _ = http::scan_int(&text);
        let _ = http::body_pairs("application/x-www-form-urlencoded", &raw);
        let _ = http::body_pairs(&format!("multipart/form-data; boundary={text}"), &raw);
        let _ = http::body_pairs("multipart/form-data; boundary=XX", text.as_bytes());
    }

    /// The demo's Last-Event-ID: `message-N` resumes at N for every i64;
    /// anything else never panics and frames a valid first message.
    #[test]
    fn last_event_id_parses_and_never_panics(n in any::<i64>(), junk in any::<String>(), count in any::<String>()) {
        prop_assert_eq!(demo::resume_from(Some(&format!("message-{n}"))), n);
        if !junk.starts_with(|c: char| c.is_ascii_digit() || c == '_') {
            // sscanf ignores what follows the number.
            prop_assert_eq!(demo::resume_from(Some(&format!("message-{n}{junk}"))), n);
        }
        let start = demo::resume_from(Some(&junk));
        let limit = demo::limit(start, http::scan_int(&count));
        if http::scan_int(&count).is_some_and(|c| c >= 0) {
            prop_assert!(limit >= start);
        }
        let (id, data) = demo::message_parts(start, 0);
        let first = Event { id: Some(&id), data: Some(&data), ..Event::default() };
        prop_assert!(first.encode().is_ok());
    }

    /// Tokens: any header or token is refused or accepted without a
    /// panic; an issued token names its user and channel; another key,
    /// expiry and tampering are refused.
    #[test]
    fn tokens_round_trip_and_refuse_tampering(
        user in any::<String>(),
        channel in any::<String>(),
        junk in any::<String>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let secret = b"property-test-secret-0123";
        let _ = token::verify(secret, &junk, 0);
        if let Some(t) = jwt::bearer(junk.as_bytes()) {
            let _ = token::verify(secret, t, 0);
        }
        let issued = token::issue(secret, &user, &channel, 2_000_000_000);
        let s = token::verify(secret, &issued, 1_000_000_000).unwrap();
        prop_assert_eq!((s.user_id.as_str(), s.channel.as_str()), (user.as_str(), channel.as_str()));
        prop_assert!(token::verify(b"another-secret-012345678", &issued, 0).is_err());
        prop_assert_eq!(token::verify(secret, &issued, 2_000_000_001), Err(token::Invalid::Expired));
        // Change one character of the signed part: never accepted.
        let signed_len = issued.rfind('.').unwrap();
        let at = flip.index(signed_len);
        let mut bytes = issued.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(token::verify(secret, &changed, 1_000_000_000).is_err());
    }
}

#[test]
fn thousands_of_lines_in_one_write_are_all_handled_in_order() {
    let mut write = Vec::new();
    for i in 0..5000 {
        write.extend_from_slice(format!("news/tick = {i}\r\n").as_bytes());
    }
    let lines = split_lines_of(&[&write]);
    assert_eq!(lines.len(), 5000);
    for (i, input) in lines.iter().enumerate() {
        let Input::Line { text, lossy: false } = input else {
            panic!("line {i}: {input:?}");
        };
        let want = i.to_string();
        assert_eq!(
            control::parse(text),
            Line::Publish {
                target: "news/tick",
                channel: "news",
                event: "tick",
                data: &want
            }
        );
    }
}

#[test]
fn bad_control_lines_are_reported_not_misread() {
    let one_mib = vec![b'x'; 1 << 20];
    let cases: Vec<(&[u8], Vec<Input>)> = vec![
        (
            b"\n",
            vec![Input::Line {
                text: String::new(),
                lossy: false,
            }],
        ),
        (
            b"=\n",
            vec![Input::Line {
                text: "=".into(),
                lossy: false,
            }],
        ),
        (b"a\0b=c\n", vec![Input::Nul]),
        (
            b"c=\xc3\x28\n",
            vec![Input::Line {
                text: "c=\u{fffd}(".into(),
                lossy: true,
            }],
        ),
        (&one_mib, vec![Input::TooLong]),
    ];
    for (bytes, want) in cases {
        assert_eq!(split_lines_of(&[bytes]), want);
    }
    assert_eq!(control::parse(""), Line::Empty);
    assert_eq!(control::parse("noequals"), Line::Command("noequals"));
    assert_eq!(
        control::parse("="),
        Line::Publish {
            target: "",
            channel: "",
            event: "message",
            data: ""
        }
    );
}
