//! The replay ring: the last N broadcast or published events, kept so that
//! a client reconnecting with `Last-Event-ID` receives what it missed.
//!
//! The ring is bounded twice, in events and in bytes, so one burst of big
//! events cannot pin unbounded memory. An index from id to position makes
//! every lookup O(1): an unknown or forged id costs what a known one does.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// One remembered event.
#[derive(Debug)]
pub struct Recorded {
    /// The event's id, when it had one; only these can be resumed from.
    pub id: Option<Box<str>>,
    /// The channels it was published to; `None` for a broadcast.
    pub channels: Option<Box<[Arc<str>]>>,
    /// The frame exactly as it went out.
    pub frame: Bytes,
}

impl Recorded {
    /// Whether a client in `joined` channels received this event live.
    pub fn reaches(&self, joined: &[Arc<str>]) -> bool {
        match &self.channels {
            None => true,
            Some(chs) => chs.iter().any(|c| joined.contains(c)),
        }
    }
}

/// What a replay lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume<'a> {
    /// The id is in the ring: these events came after it.
    After(Vec<&'a Recorded>),
    /// The id is unknown (older than the ring, or never sent): events may
    /// have been lost; these are all the ring still holds.
    Gap(Vec<&'a Recorded>),
}

impl PartialEq for Recorded {
    fn eq(&self, other: &Self) -> bool {
        self.frame == other.frame
    }
}
impl Eq for Recorded {}

/// A bounded ring of recent events.
#[derive(Debug, Default)]
pub struct ReplayRing {
    capacity: usize,
    /// Frame bytes the ring may hold; 0 means no byte bound.
    max_bytes: usize,
    bytes: usize,
    events: VecDeque<Arc<Recorded>>,
    /// The sequence number of `events[0]`; each event's is its position
    /// plus this, so an index entry stays valid as the front is dropped.
    first_seq: u64,
    /// The newest sequence number of each id still in the ring.
    by_id: HashMap<Box<str>, u64>,
}

impl ReplayRing {
    /// A ring of at most `capacity` events (and no byte bound).
    pub fn new(capacity: usize) -> Self {
        Self::bounded(capacity, 0)
    }

    /// A ring of at most `capacity` events and `max_bytes` frame bytes (0:
    /// no byte bound). An event bigger than `max_bytes` is not kept.
    pub fn bounded(capacity: usize, max_bytes: usize) -> Self {
        ReplayRing {
            capacity,
            max_bytes,
            events: VecDeque::with_capacity(capacity.min(4096)),
            ..ReplayRing::default()
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Frame bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn record(&mut self, event: Recorded) {
        if self.capacity == 0 || (self.max_bytes > 0 && event.frame.len() > self.max_bytes) {
            return;
        }
        while self.events.len() >= self.capacity
            || (self.max_bytes > 0 && self.bytes + event.frame.len() > self.max_bytes)
        {
            self.pop_front();
        }
        let seq = self.first_seq + self.events.len() as u64;
        if let Some(id) = &event.id {
            self.by_id.insert(id.clone(), seq);
        }
        self.bytes += event.frame.len();
        self.events.push_back(Arc::new(event));
    }

    fn pop_front(&mut self) {
        let Some(old) = self.events.pop_front() else {
            return;
        };
        self.bytes -= old.frame.len();
        if let Some(id) = &old.id {
            if self.by_id.get(id) == Some(&self.first_seq) {
                self.by_id.remove(id);
            }
        }
        self.first_seq += 1;
    }

    /// The events after `last_id` (the newest event carrying that id).
    pub fn since(&self, last_id: &str) -> Resume<'_> {
        match self.by_id.get(last_id) {
            Some(&seq) => {
                let at = (seq - self.first_seq) as usize;
                Resume::After(self.events.range(at + 1..).map(|e| &**e).collect())
            }
            None => Resume::Gap(self.events.iter().map(|e| &**e).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str) -> Recorded {
        Recorded {
            id: Some(id.into()),
            channels: None,
            frame: Bytes::copy_from_slice(id.as_bytes()),
        }
    }

    fn frames(rs: &[&Recorded]) -> Vec<String> {
        rs.iter()
            .map(|r| String::from_utf8(r.frame.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn resumes_after_the_given_id_in_order() {
        let mut ring = ReplayRing::new(3);
        for id in ["1", "2", "3", "4"] {
            ring.record(ev(id));
        }
        assert_eq!(ring.len(), 3);
        match ring.since("2") {
            Resume::After(rs) => assert_eq!(frames(&rs), ["3", "4"]),
            other => panic!("{other:?}"),
        }
        match ring.since("4") {
            Resume::After(rs) => assert!(rs.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_id_older_than_the_ring_is_a_gap() {
        let mut ring = ReplayRing::new(2);
        for id in ["1", "2", "3"] {
            ring.record(ev(id));
        }
        match ring.since("1") {
            Resume::Gap(rs) => assert_eq!(frames(&rs), ["2", "3"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_ring_is_bounded_in_bytes_and_forgets_evicted_ids() {
        let mut ring = ReplayRing::bounded(100, 4);
        for id in ["a1", "b2", "c3"] {
            ring.record(ev(id));
        }
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.bytes(), 4);
        assert!(matches!(ring.since("a1"), Resume::Gap(_)));
        match ring.since("b2") {
            Resume::After(rs) => assert_eq!(frames(&rs), ["c3"]),
            other => panic!("{other:?}"),
        }
        ring.record(ev("too-big"));
        assert_eq!(ring.len(), 2, "an event over the byte bound is not kept");
    }

    #[test]
    fn a_repeated_id_resumes_after_its_newest_use() {
        let mut ring = ReplayRing::new(3);
        for id in ["x", "y", "x", "z"] {
            ring.record(ev(id));
        }
        match ring.since("x") {
            Resume::After(rs) => assert_eq!(frames(&rs), ["z"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn channel_events_reach_only_members() {
        let news: Arc<str> = "news".into();
        let rec = Recorded {
            id: None,
            channels: Some(vec![news.clone()].into()),
            frame: Bytes::new(),
        };
        assert!(rec.reaches(&[news]));
        assert!(!rec.reaches(&["sport".into()]));
        assert!(!rec.reaches(&[]));
    }
}
