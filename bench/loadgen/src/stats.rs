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

/// CPU time this process has used (all threads), in microseconds.
pub fn cpu_us() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0;
        }
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// Why connections failed, by kind, with the first message of each.
#[derive(Default)]
pub struct Failures {
    by_kind: BTreeMap<&'static str, (u64, String)>,
}

/// Where the counters stood when a batch of connects began.
pub struct Batch {
    pub started_us: u64,
    cpu_us: u64,
    established: u64,
    failed: u64,
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

    /// The counters a connect batch starts from.
    pub fn batch_start(&self) -> Batch {
        Batch {
            started_us: now_us(),
            cpu_us: cpu_us(),
            established: self.established.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }

    /// Connections of the batch that are established or failed so far.
    pub fn settled_since(&self, batch: &Batch) -> u64 {
        self.established.load(Relaxed) + self.failed.load(Relaxed)
            - batch.established
            - batch.failed
    }

    pub fn connect_report(&self, requested: u64, batch: &Batch, nofile: u64) -> String {
        let total = self.established.load(Relaxed);
        let established = total - batch.established;
        let last = self.last_established_us.load(Relaxed).max(batch.started_us);
        let seconds = (last - batch.started_us) as f64 / 1e6;
        let rate = if seconds > 0.0 {
            established as f64 / seconds
        } else {
            0.0
        };
        format!(
            "{{\"phase\":\"connect\",\"requested\":{requested},\"established\":{established},\
             \"failed\":{},\"established_total\":{total},\"live\":{},\"connect_ms\":{:.1},\
             \"accepts_per_s\":{rate:.0},\"client_cpu_ms\":{:.1},\"nofile_limit\":{nofile},\
             \"errors\":{{{}}}}}",
            self.failed.load(Relaxed) - batch.failed,
            self.live.load(Relaxed),
            seconds * 1e3,
            cpu_us().saturating_sub(batch.cpu_us) as f64 / 1e3,
            self.failures_json(),
        )
    }

    /// Failures so far, by kind: `"kind":{"count":n,"first":"message"}`.
    fn failures_json(&self) -> String {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entries: Vec<String> = failures
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
        entries.join(",")
    }

    /// `cpu_us` is this client's own CPU time over the phase: close to
    /// the phase's wall time means the client, not the server, was busy.
    pub fn phase_report(&self, name: &str, armed_us: u64, timed_out: bool, cpu_us: u64) -> String {
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
        let unset_as_zero = |v: u64| if v == u64::MAX { 0 } else { v };
        format!(
            "{{\"phase\":{},\"expected_per_conn\":{},\"live\":{live},\"completed\":{completed},\
             \"incomplete\":{},\"closed_total\":{},\"timed_out\":{timed_out},\"events\":{events},\
             \"span_ms\":{:.1},\"deliveries_per_s\":{rate:.0},\"first_sent_us\":{},\
             \"first_recv_us\":{},\"last_recv_us\":{last_recv},\"client_cpu_ms\":{:.1},\
             \"latency_us\":{}}}",
            json_str(name),
            self.expected.load(Relaxed),
            live.saturating_sub(completed),
            self.closed.load(Relaxed),
            span_s * 1e3,
            unset_as_zero(first_sent),
            unset_as_zero(first_recv),
            cpu_us as f64 / 1e3,
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
