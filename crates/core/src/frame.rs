//! The SSE wire encoding: one event in, one immutable `Bytes` frame out.
//!
//! Framing happens once per event, however many clients receive it; the
//! fan-out then only clones a reference-counted `Bytes`.
//!
//! Field order follows the npm package `sse` 0.0.8 byte for byte:
//! `event:`, `retry:`, `id:`, then one `data:` line per line of data, and a
//! blank line. Unlike `sse`, a line break inside `event` or `id` is refused
//! (it would inject fields), never written.

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// One Server-Sent Event, borrowed from its caller.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event type; `None` (or empty) means the default `message`.
    pub event: Option<&'a str>,
    /// The payload; `\r\n`, `\r` and `\n` each start a new `data:` line.
    /// `None` writes no `data:` line at all.
    pub data: Option<&'a str>,
    /// The event id a client echoes back as `Last-Event-ID`.
    pub id: Option<&'a str>,
    /// The reconnection delay in milliseconds.
    pub retry: Option<u64>,
}

/// Why an event cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// `event` or `id` holds a CR, LF (or, for `id`, NUL) that would inject
    /// fields or be ignored by browsers.
    LineBreak(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LineBreak(field) => write!(
                f,
                "SSE field '{field}' must not contain a line break (\\r or \\n) or NUL"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// The comment a heartbeat writes on an idle stream.
pub const HEARTBEAT: &[u8] = b":\n\n";

/// Checks one single-line field.
fn check_field(name: &'static str, value: &str) -> Result<(), FrameError> {
    if value.bytes().any(|b| b == b'\n' || b == b'\r' || b == 0) {
        return Err(FrameError::LineBreak(name));
    }
    Ok(())
}

impl<'a> Event<'a> {
    /// An event with only data.
    pub fn data(data: &'a str) -> Self {
        Event {
            data: Some(data),
            ..Event::default()
        }
    }

    /// True when framing would write nothing at all.
    pub fn is_empty(&self) -> bool {
        self.event.is_none_or(str::is_empty)
            && self.data.is_none()
            && self.id.is_none_or(str::is_empty)
            && self.retry.is_none()
    }

    /// Validates the single-line fields without framing.
    pub fn validate(&self) -> Result<(), FrameError> {
        if let Some(event) = self.event {
            check_field("event", event)?;
        }
        if let Some(id) = self.id {
            check_field("id", id)?;
        }
        Ok(())
    }

    /// Encodes the event into one frame; an empty event gives empty bytes.
    pub fn encode(&self) -> Result<Bytes, FrameError> {
        self.validate()?;
        if self.is_empty() {
            return Ok(Bytes::new());
        }
        let mut out = BytesMut::with_capacity(self.encoded_len_hint());
        if let Some(event) = self.event.filter(|e| !e.is_empty()) {
            put_field(&mut out, b"event: ", event.as_bytes());
        }
        if let Some(retry) = self.retry {
            put_field(&mut out, b"retry: ", retry.to_string().as_bytes());
        }
        if let Some(id) = self.id.filter(|i| !i.is_empty()) {
            put_field(&mut out, b"id: ", id.as_bytes());
        }
        if let Some(data) = self.data {
            for line in split_lines(data) {
                put_field(&mut out, b"data: ", line.as_bytes());
            }
        }
        out.put_u8(b'\n');
        Ok(out.freeze())
    }

    fn encoded_len_hint(&self) -> usize {
        let data = self.data.map_or(0, |d| d.len() + 8);
        let event = self.event.map_or(0, |e| e.len() + 8);
        let id = self.id.map_or(0, |i| i.len() + 5);
        data + event + id + 24
    }
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(value);
    out.put_u8(b'\n');
}

/// Splits at `\r\n`, `\r` or `\n`, as the SSE spec and `sse` 0.0.8 do. A
/// trailing line break yields a trailing empty line.
pub fn split_lines(data: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(text)
            }
            Some(at) => {
                let skip = if text[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&text[at + skip..]);
                Some(&text[..at])
            }
        }
    })
}

/// A comment frame (`: text`), one line per line of text.
pub fn comment(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 4);
    for line in split_lines(text) {
        put_field(&mut out, b": ", line.as_bytes());
    }
    out.put_u8(b'\n');
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(e: Event) -> String {
        String::from_utf8(e.encode().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn data_lines_split_on_every_line_break() {
        assert_eq!(frame(Event::data("foo\rbar")), "data: foo\ndata: bar\n\n");
        assert_eq!(
            frame(Event::data("a\r\nb\nc\r")),
            "data: a\ndata: b\ndata: c\ndata: \n\n"
        );
        assert_eq!(frame(Event::data("")), "data: \n\n");
    }

    #[test]
    fn field_order_matches_sse_package() {
        let e = Event {
            event: Some("bar"),
            data: Some("foo"),
            id: Some("1"),
            retry: Some(6000),
        };
        assert_eq!(frame(e), "event: bar\nretry: 6000\nid: 1\ndata: foo\n\n");
    }

    #[test]
    fn fields_without_data_still_end_the_frame() {
        let e = Event {
            event: Some("onlyevent"),
            id: Some("i1"),
            ..Event::default()
        };
        assert_eq!(frame(e), "event: onlyevent\nid: i1\n\n");
        assert!(Event::default().encode().unwrap().is_empty());
    }

    #[test]
    fn line_breaks_in_single_line_fields_are_refused() {
        for bad in ["a\nb", "a\rb", "x\r\n"] {
            let e = Event {
                event: Some(bad),
                ..Event::data("x")
            };
            assert_eq!(e.encode(), Err(FrameError::LineBreak("event")));
            let e = Event {
                id: Some(bad),
                ..Event::data("x")
            };
            assert_eq!(e.encode(), Err(FrameError::LineBreak("id")));
        }
    }

    #[test]
    fn comments_are_prefixed_per_line() {
        assert_eq!(&comment("ok")[..], b": ok\n\n");
        assert_eq!(&comment("a\nb")[..], b": a\n: b\n\n");
    }
}
