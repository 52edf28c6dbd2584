//! The replay ring: the last N broadcast or published events, kept so that
//! a client reconnecting with `Last-Event-ID` receives what it missed.

use bytes::Bytes;
use std::collections::VecDeque;
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
    events: VecDeque<Arc<Recorded>>,
}

impl ReplayRing {
    pub fn new(capacity: usize) -> Self {
        ReplayRing {
            capacity,
            events: VecDeque::with_capacity(capacity.min(4096)),
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

    pub fn record(&mut self, event: Recorded) {
        if self.capacity == 0 {
            return;
        }
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(Arc::new(event));
    }

    /// The events after `last_id` (the newest event carrying that id).
    pub fn since(&self, last_id: &str) -> Resume<'_> {
        let found = self
            .events
            .iter()
            .rposition(|e| e.id.as_deref() == Some(last_id));
        match found {
            Some(at) => Resume::After(self.events.range(at + 1..).map(|e| &**e).collect()),
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
