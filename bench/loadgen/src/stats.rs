//! Counters shared by every connection task, and the JSON reports made
//! from them. Tasks touch them once per socket read, not per event.

use crate::histogram::{Histogram, Summary};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock microseconds since the Unix epoch: the clock the servers
/// use for the timestamps they embed, so both sides compare directly.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Why connections failed, by kind, with the first message of each.
#[derive(Default)]
pub struct Failures {
    by_kind: BTreeMap<&'static str, (u64, String)>,
}

#[derive(Default)]
pub struct Stats {
    /// Connections whose response head arrived and that are still open.
    pub live: AtomicU64,
    /// Connections whose response head arrived, ever.
    pub established: AtomicU64,
    /// Connections that could not be opened or got no 200 response.
    pub failed: AtomicU64,
    /// Established connections that closed afterwards.
    pub closed: AtomicU64,
    /// When the last connection got its response head.
    pub last_established_us: AtomicU64,
    failures: Mutex<Failures>,

    /// Bumped when a measurement phase starts; tasks restart their count.
    pub generation: AtomicU64,
    /// Events each connection must receive for the phase to be complete.
    pub expected: AtomicU64,
    /// Connections that received the expected events in this phase.
    pub completed: AtomicU64,
    /// Events received in this phase, by all connections.
    pub events: AtomicU64,
    /// Earliest send timestamp embedded in an event of this phase.
    pub first_sent_us: AtomicU64,
    pub first_recv_us: AtomicU64,
    pub last_recv_us: AtomicU64,
    pub latency: Histogram,
}

impl Stats {
    pub fn record_failure(&self, kind: &'static str, message: String) {
        self.failed.fetch_add(1, Relaxed);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.by_kind.entry(kind).or_insert((0, message)).0 += 1;
    }

    /// Starts a phase in which every connection should get `expected`
    /// events; returns its generation.
    pub fn start_phase(&self, expected: u64) -> u64 {
        self.expected.store(expected, Relaxed);
        self.completed.store(0, Relaxed);
        self.events.store(0, Relaxed);
        self.first_sent_us.store(u64::MAX, Relaxed);
        self.first_recv_us.store(u64::MAX, Relaxed);
        self.last_recv_us.store(0, Relaxed);
        self.latency.reset();
        self.generation.fetch_add(1, Relaxed) + 1
    }

    /// Records the events one socket read delivered.
    pub fn record_read(&self, events: u64, first_sent_us: u64, recv_us: u64) {
        self.events.fetch_add(events, Relaxed);
        self.first_sent_us.fetch_min(first_sent_us, Relaxed);
        self.first_recv_us.fetch_min(recv_us, Relaxed);
        self.last_recv_us.fetch_max(recv_us, Relaxed);
    }

    pub fn connect_report(&self, requested: u64, started_us: u64, nofile: u64) -> String {
        let established = self.established.load(Relaxed);
        let last = self.last_established_us.load(Relaxed).max(started_us);
        let seconds = (last - started_us) as f64 / 1e6;
        let rate = if seconds > 0.0 {
            established as f64 / seconds
        } else {
            0.0
        };
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let errors: Vec<String> = failures
            .by_kind
            .iter()
            .map(|(kind, (n, msg))| {
                format!(
                    "{}:{{\"count\":{n},\"first\":{}}}",
                    json_str(kind),
                    json_str(msg)
                )
            })
            .collect();
        format!(
            "{{\"phase\":\"connect\",\"requested\":{requested},\"established\":{established},\
             \"failed\":{},\"live\":{},\"connect_ms\":{:.1},\"accepts_per_s\":{rate:.0},\
             \"nofile_limit\":{nofile},\"errors\":{{{}}}}}",
            self.failed.load(Relaxed),
            self.live.load(Relaxed),
            seconds * 1e3,
            errors.join(","),
        )
    }

    pub fn phase_report(&self, name: &str, armed_us: u64, timed_out: bool) -> String {
        let events = self.events.load(Relaxed);
        let first_sent = self.first_sent_us.load(Relaxed);
        let first_recv = self.first_recv_us.load(Relaxed);
        let last_recv = self.last_recv_us.load(Relaxed);
        // The phase starts when the server stamped its first event; without
        // stamps, when this client was armed.
        let start = if first_sent == u64::MAX {
            armed_us
        } else {
            first_sent
        };
        let span_s = last_recv.saturating_sub(start) as f64 / 1e6;
        let rate = if span_s > 0.0 {
            events as f64 / span_s
        } else {
            0.0
        };
        let live = self.live.load(Relaxed);
        let completed = self.completed.load(Relaxed);
        format!(
            "{{\"phase\":{},\"expected_per_conn\":{},\"live\":{live},\"completed\":{completed},\
             \"incomplete\":{},\"closed_total\":{},\"timed_out\":{timed_out},\"events\":{events},\
             \"span_ms\":{:.1},\"deliveries_per_s\":{rate:.0},\"first_sent_us\":{},\
             \"first_recv_us\":{},\"last_recv_us\":{last_recv},\"latency_us\":{}}}",
            json_str(name),
            self.expected.load(Relaxed),
            live.saturating_sub(completed),
            self.closed.load(Relaxed),
            span_s * 1e3,
            if first_sent == u64::MAX {
                0
            } else {
                first_sent
            },
            if first_recv == u64::MAX {
                0
            } else {
                first_recv
            },
            summary_json(&self.latency.summary()),
        )
    }
}

fn summary_json(s: &Summary) -> String {
    format!(
        "{{\"count\":{},\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{}}}",
        s.count, s.p50, s.p90, s.p99, s.p999, s.max
    )
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
