//! Reading what Redis holds after given ids (the read script), for a
//! node catching up after a reconnect and for resuming clients, and what
//! it says about events that can no longer be had.

use super::link::Link;
use super::publisher::number;
use super::scripts::Lua;
use crate::bus::wire::{self, Numbered};
use crate::bus::Failure;
use redis::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Targets in one script call, at most (more are read in several).
const MAX_TARGETS: usize = 512;

/// One target to read: its storage key and the first id wanted.
#[derive(Clone, Debug)]
pub(super) struct Ask {
    pub(super) key: String,
    pub(super) from: u64,
}

/// What one read found.
#[derive(Default, Debug)]
pub(super) struct Read {
    /// Redis's clock, µs.
    pub(super) now_us: u64,
    /// The newest id handed out.
    pub(super) seq: u64,
    /// The epoch (see `scripts`).
    pub(super) start: u64,
    /// Per target asked: whether it had events from the id wanted on
    /// that the read does not return (trimmed, or beyond the read's
    /// count; without history, any event at all).
    pub(super) missed: Vec<bool>,
    /// The events of every target asked, once each, in order.
    pub(super) events: BTreeMap<u64, Numbered>,
}

/// Reads each entry of `asks` (a list of targets), in as few script calls
/// as the bounds allow.
pub(super) async fn read_many(
    link: &Link,
    epoch: [&str; 2],
    history: usize,
    asks: &[Vec<Ask>],
    timeout: Duration,
) -> Result<Vec<Read>, Failure> {
    let until = Instant::now() + timeout;
    let mut reads = Vec::with_capacity(asks.len());
    let mut chunk: Vec<&Vec<Ask>> = Vec::new();
    let mut size = 0;
    for ask in asks {
        if size + ask.len() > MAX_TARGETS && !chunk.is_empty() {
            reads.extend(read_chunk(link, epoch, history, &chunk, until).await?);
            chunk.clear();
            size = 0;
        }
        size += ask.len();
        chunk.push(ask);
    }
    if !chunk.is_empty() {
        reads.extend(read_chunk(link, epoch, history, &chunk, until).await?);
    }
    Ok(reads)
}

/// Reads one list of targets (none: only the epoch and the counter).
pub(super) async fn read(
    link: &Link,
    epoch: [&str; 2],
    history: usize,
    asks: &[Ask],
    timeout: Duration,
) -> Result<Read, Failure> {
    let mut reads = read_many(link, epoch, history, &[asks.to_vec()], timeout).await?;
    Ok(reads.pop().unwrap_or_default())
}

/// One script call for several lists, split back into one read each.
async fn read_chunk(
    link: &Link,
    epoch: [&str; 2],
    history: usize,
    chunk: &[&Vec<Ask>],
    until: Instant,
) -> Result<Vec<Read>, Failure> {
    let all: Vec<&Ask> = chunk.iter().flat_map(|a| a.iter()).collect();
    // Streams are trimmed approximately: read a little past the length.
    let count = history.max(1) * 2 + 100;
    let fill = |cmd: &mut redis::Cmd| {
        cmd.arg(all.len() + 2).arg(epoch[0]).arg(epoch[1]);
        for ask in &all {
            cmd.arg(&ask.key);
        }
        cmd.arg(history).arg(count);
        for ask in &all {
            cmd.arg(ask.from.to_string());
        }
    };
    let value = link.eval(Lua::Read, &fill, until).await?;
    let Value::Array(items) = value else {
        return Ok(chunk.iter().map(|_| Read::default()).collect());
    };
    let head = [
        number(items.first()),
        number(items.get(1)),
        number(items.get(2)),
        number(items.get(3)),
    ];
    let [secs, micros, seq, start] = head.map(Option::unwrap_or_default);
    link.anchor(Instant::now(), (secs, micros));
    let mut answers = items.get(4..).unwrap_or_default().iter();
    let mut reads = Vec::with_capacity(chunk.len());
    for asks in chunk {
        let mut read = Read {
            now_us: secs * 1_000_000 + micros,
            seq,
            start,
            ..Read::default()
        };
        for ask in asks.iter() {
            let answer = answers.next().unwrap_or(&Value::Nil);
            read.missed
                .push(take(&mut read.events, answer, ask.from, history));
        }
        reads.push(read);
    }
    Ok(reads)
}

/// Adds one target's events to `events`; whether it missed any.
fn take(events: &mut BTreeMap<u64, Numbered>, answer: &Value, from: u64, history: usize) -> bool {
    if history == 0 {
        // The newest id published to it: anything from `from` on is missed.
        return number(Some(answer)).is_some_and(|newest| newest >= from);
    }
    let Value::Array(entries) = answer else {
        return false;
    };
    // Newest first: the last is the oldest returned.
    let oldest = entries.last().and_then(entry);
    for e in entries.iter().filter_map(entry) {
        if let Some(event) = e.event {
            events.entry(event.seq).or_insert(event);
        }
    }
    oldest.is_some_and(|o| o.before >= from)
}

/// One stream entry: its event and the id of the entry before it.
struct Entry {
    event: Option<Numbered>,
    before: u64,
}

/// `[id, [field, value, ...]]`. An entry written before entries named
/// their predecessor (`p`) is taken to have had one just before it.
fn entry(value: &Value) -> Option<Entry> {
    let Value::Array(parts) = value else {
        return None;
    };
    let id: u64 = match parts.first()? {
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()?
            .split('-')
            .next()?
            .parse()
            .ok()?,
        _ => return None,
    };
    let Some(Value::Array(fields)) = parts.get(1) else {
        return None;
    };
    let (mut event, mut before) = (None, id.saturating_sub(1));
    for kv in fields.chunks(2) {
        match kv {
            [Value::BulkString(k), Value::BulkString(v)] if k == b"m" => event = wire::decode(v),
            [Value::BulkString(k), v] if k == b"p" => before = number(Some(v)).unwrap_or(before),
            _ => {}
        }
    }
    Some(Entry { event, before })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Body, Message};
    use bytes::Bytes;

    fn entry_value(seq: u64, before: Option<u64>, channel: &str) -> Value {
        let message = Message {
            channels: Some(vec![channel.into()]),
            body: Body::Raw(Bytes::from_static(b"x")),
        };
        let mut m = format!("{seq}\n").into_bytes();
        m.extend_from_slice(&wire::encode(&message, true));
        let mut fields = vec![Value::BulkString(b"m".to_vec()), Value::BulkString(m)];
        if let Some(p) = before {
            fields.push(Value::BulkString(b"p".to_vec()));
            fields.push(Value::BulkString(p.to_string().into_bytes()));
        }
        Value::Array(vec![
            Value::BulkString(format!("{seq}-0").into_bytes()),
            Value::Array(fields),
        ])
    }

    #[test]
    fn a_stream_missed_events_when_its_oldest_entry_follows_one_wanted() {
        let stream = |entries: Vec<Value>| Value::Array(entries);
        let mut events = BTreeMap::new();
        // 7 follows 5, which was trimmed: wanted from 4, missed; from 6, not.
        let newest_first = stream(vec![
            entry_value(9, Some(7), "a"),
            entry_value(7, Some(5), "a"),
        ]);
        assert!(take(&mut events, &newest_first, 4, 10));
        assert!(take(&mut events, &newest_first, 5, 10));
        assert!(!take(&mut events, &newest_first, 6, 10));
        // The stream began at its oldest entry: nothing before it existed.
        assert!(!take(
            &mut events,
            &stream(vec![entry_value(7, Some(0), "a")]),
            1,
            10
        ));
        // Nothing from the id wanted on: nothing missed in this stream.
        assert!(!take(&mut events, &stream(vec![]), 1, 10));
        // An entry of an older ssehub (no `p`): one just before it is assumed.
        assert!(take(
            &mut events,
            &stream(vec![entry_value(7, None, "a")]),
            6,
            10
        ));
        assert!(!take(
            &mut events,
            &stream(vec![entry_value(7, None, "a")]),
            7,
            10
        ));
        assert_eq!(events.keys().copied().collect::<Vec<_>>(), [7, 9]);
    }

    #[test]
    fn without_history_any_newer_event_is_missed() {
        let mut events = BTreeMap::new();
        let newest = Value::BulkString(b"12".to_vec());
        assert!(take(&mut events, &newest, 12, 0));
        assert!(!take(&mut events, &newest, 13, 0));
        assert!(!take(&mut events, &Value::Nil, 1, 0));
    }
}
