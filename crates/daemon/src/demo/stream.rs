//! A `/stream`: the hello event, then one numbered message per interval
//! from the number a `Last-Event-ID` resumes at, until `count`.

use super::routes::{empty_reply, request_line, unavailable};
use super::{lock, Demo, Stream, RANDOM_LEN};
use crate::go::rand::random_string;
use crate::go::text::scan_int;
use crate::net::head::RequestInfo;
use crate::net::peer::Conn;
use crate::net::reply::date;
use crate::net::stream::{Opening, StreamReply};
use hyper::StatusCode;
use ssehub_core::frame::Event;
use ssehub_core::hub::ClientId;
use ssehub_core::queue::CloseReason;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

impl Demo {
    /// Opens a `/stream` (`count` from the query or the form): the hello
    /// event, then one message per interval from the resumed number. 400
    /// for a negative count, 503 when the hub is full.
    pub(super) fn open(
        self: &Arc<Self>,
        req: &dyn RequestInfo,
        conn: &Conn,
        count: Option<i64>,
        started: Instant,
    ) -> Opening {
        let line = request_line(req, conn.peer);
        let addr = conn.peer.to_string();
        let last_id = req.last_event_id();
        let start = resume_from(last_id.as_deref());
        if count.is_some_and(|c| c < 0) {
            self.log_request(&line, 400, started);
            return Opening::Refused(empty_reply(StatusCode::BAD_REQUEST));
        }
        let limit = limit(start, count);
        let Ok(sub) = self.hub.register() else {
            return Opening::Refused(self.refuse.answer(unavailable));
        };
        self.log.line(format_args!(
            "Starting stream for {addr}, {start} -> {limit} ..."
        ));
        let next = Arc::new(AtomicI64::new(start));
        let stream = Stream {
            connected_at: SystemTime::now(),
            next: next.clone(),
        };
        lock(&self.streams).insert(addr.clone(), stream);
        let hello_data = format!("Hello, {addr}!");
        let hello = Event {
            id: Some("hello"),
            data: Some(&hello_data),
            ..Event::default()
        }
        .encode()
        .ok();
        tokio::spawn(tick(self.clone(), sub.id(), start, limit, next));
        let ending = self.clone();
        let on_end = move || {
            lock(&ending.streams).remove(&addr);
            ending
                .log
                .line(format_args!("Client {addr} closed connection."));
            ending.log_request(&line, 200, started);
        };
        Opening::Stream(StreamReply {
            sub,
            headers: stream_headers(req.http10(), count),
            first: hello,
            http10: req.http10(),
            on_end: Some(Box::new(on_end)),
        })
    }
}

/// The message number a `Last-Event-ID` resumes at: `sscanf("message-%d")`,
/// 1 when it does not match.
pub fn resume_from(last_event_id: Option<&str>) -> i64 {
    last_event_id
        .and_then(|v| v.strip_prefix("message-"))
        .and_then(scan_int)
        .unwrap_or(1)
}

/// The number after the last message to send: `start + count`, saturated
/// (the original overflowed here and never ended a negative resume).
pub fn limit(start: i64, count: Option<i64>) -> i64 {
    count.map_or(i64::MAX, |c| start.saturating_add(c))
}

/// One message's id and data.
pub fn message_parts(n: i64, unix_time: u64) -> (String, String) {
    let data = format!(
        "{{\n  \"time\": {unix_time},\n  \"random\": \"{}\"\n}}",
        random_string(n, RANDOM_LEN)
    );
    (format!("message-{n}"), data)
}

/// The original's stream headers, in its order.
fn stream_headers(http10: bool, count: Option<i64>) -> Vec<(&'static str, String)> {
    let mut headers: Vec<(&'static str, String)> = vec![
        ("Access-Control-Allow-Headers", "*".into()),
        ("Access-Control-Allow-Methods", "GET".into()),
        ("Access-Control-Allow-Origin", "*".into()),
        ("Cache-Control", "no-cache".into()),
    ];
    if !http10 {
        headers.push(("Connection", "keep-alive".into()));
    }
    headers.push(("Content-Type", "text/event-stream".into()));
    headers.push(("X-Accel-Buffering", "no".into()));
    if let Some(n) = count {
        headers.push(("X-Expected-Events", n.to_string()));
    }
    headers.push(("Date", date()));
    if !http10 {
        headers.push(("Transfer-Encoding", "chunked".into()));
    }
    headers
}

/// Sends messages `start..limit`, one per interval, then ends the stream.
async fn tick(demo: Arc<Demo>, id: ClientId, start: i64, limit: i64, next: Arc<AtomicI64>) {
    let mut timer =
        tokio::time::interval_at(tokio::time::Instant::now() + demo.interval, demo.interval);
    let mut n = start;
    while n < limit {
        timer.tick().await;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (event_id, data) = message_parts(n, now);
        let event = Event {
            id: Some(&event_id),
            data: Some(&data),
            ..Event::default()
        };
        if !event.encode().is_ok_and(|frame| demo.hub.send(id, frame)) {
            return;
        }
        n += 1;
        next.store(n, Ordering::Relaxed);
    }
    demo.hub.close_client(id, CloseReason::Server);
}
