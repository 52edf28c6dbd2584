//! The hub's counters as Prometheus text (`/metrics`) and as a JSON status
//! object, for every mode's control side.

use super::http::{go_reply, ReplyBody};
use crate::hub::Stats;
use hyper::{Response, StatusCode};
use std::fmt::Write;
use std::time::Instant;

/// One metric: name, type, help, value.
type Metric = (&'static str, &'static str, &'static str, u64);

fn metrics(stats: &Stats) -> [Metric; 6] {
    [
        (
            "ssehub_connected_clients",
            "gauge",
            "Streams open now.",
            stats.clients,
        ),
        (
            "ssehub_connections_total",
            "counter",
            "Streams opened since start.",
            stats.connected_total,
        ),
        (
            "ssehub_events_published_total",
            "counter",
            "Events published.",
            stats.events_published,
        ),
        (
            "ssehub_events_delivered_total",
            "counter",
            "Events queued to a client.",
            stats.events_delivered,
        ),
        (
            "ssehub_clients_dropped_slow_total",
            "counter",
            "Clients closed for reading too slowly.",
            stats.dropped_slow,
        ),
        (
            "ssehub_channels",
            "gauge",
            "Channels with at least one member.",
            stats.channels,
        ),
    ]
}

/// Prometheus text exposition (version 0.0.4), labelled with the mode.
pub fn prometheus(mode: &str, stats: &Stats) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in metrics(stats) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{{mode=\"{mode}\"}} {value}");
    }
    out
}

/// A JSON object with the mode, uptime and the same counters.
pub fn status_json(mode: &str, stats: &Stats, started: Instant) -> String {
    let mut out = format!(
        "{{\"mode\":\"{mode}\",\"uptimeSeconds\":{}",
        started.elapsed().as_secs()
    );
    for (name, _, _, value) in metrics(stats) {
        let key = name.trim_start_matches("ssehub_");
        let _ = write!(out, ",\"{key}\":{value}");
    }
    out.push('}');
    out
}

/// The `/metrics` response.
pub fn metrics_reply(mode: &str, stats: &Stats) -> Response<ReplyBody> {
    let body = prometheus(mode, stats);
    go_reply(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        body,
    )
}

/// The JSON status response.
pub fn status_reply(mode: &str, stats: &Stats, started: Instant) -> Response<ReplyBody> {
    let body = status_json(mode, stats, started);
    go_reply(StatusCode::OK, "application/json", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_counter() {
        let stats = Stats {
            clients: 2,
            connected_total: 5,
            events_published: 7,
            events_delivered: 11,
            dropped_slow: 1,
            channels: 3,
        };
        let text = prometheus("demo", &stats);
        assert!(text.contains("ssehub_connected_clients{mode=\"demo\"} 2\n"));
        assert!(text.contains("ssehub_events_delivered_total{mode=\"demo\"} 11\n"));
        assert!(text.contains("# TYPE ssehub_clients_dropped_slow_total counter\n"));
        let json: serde_json::Value =
            serde_json::from_str(&status_json("demo", &stats, Instant::now())).unwrap();
        assert_eq!(json["events_published_total"], 7);
        assert_eq!(json["mode"], "demo");
    }
}
