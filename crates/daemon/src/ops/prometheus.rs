//! The counters of a mode as Prometheus text (`/metrics`): the hub's, the
//! log's, and with Redis the bus's, each error class apart.

use ssehub_core::bus::{BusStats, FailureClass};
use ssehub_core::hub::Stats;
use std::fmt::Write;

/// One metric: name, type, help, value.
type Metric = (&'static str, &'static str, &'static str, u64);

pub(super) fn metrics(stats: &Stats, log_dropped: u64) -> [Metric; 7] {
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
        (
            "ssehub_log_lines_dropped_total",
            "counter",
            "Log lines dropped because the log sink could not keep up.",
            log_dropped,
        ),
    ]
}

/// The bus's gauges and counters (Redis only: the local bus has none).
pub(super) fn bus_metrics(bus: &BusStats) -> [(&'static str, &'static str, &'static str, u64); 6] {
    [
        (
            "ssehub_bus_connected",
            "gauge",
            "Whether the subscriber connection to Redis is up.",
            u64::from(bus.connected),
        ),
        (
            "ssehub_bus_reconnects_total",
            "counter",
            "Times the node connected to Redis again after losing it.",
            bus.reconnects,
        ),
        (
            "ssehub_bus_publishes_failed_total",
            "counter",
            "Publishes Redis did not take.",
            bus.publishes_failed,
        ),
        (
            "ssehub_bus_caught_up_total",
            "counter",
            "Events delivered from the streams after a reconnect.",
            bus.caught_up,
        ),
        (
            "ssehub_bus_gaps_total",
            "counter",
            "ssehub-gap events sent because history was lost or trimmed.",
            bus.gaps,
        ),
        (
            "ssehub_bus_subscriptions",
            "gauge",
            "Channels this node is subscribed to in Redis.",
            bus.subscriptions,
        ),
    ]
}

/// `ssehub_bus_errors_total`, one line per error class.
pub(super) fn bus_errors(out: &mut String, mode: &str, bus: &BusStats) {
    let name = "ssehub_bus_errors_total";
    let _ = writeln!(
        out,
        "# HELP {name} Redis errors met, by class: publishes refused and connection attempts that failed.\n# TYPE {name} counter"
    );
    for class in FailureClass::ALL {
        let (label, value) = (class.name(), bus.errors.get(class));
        let _ = writeln!(out, "{name}{{mode=\"{mode}\",class=\"{label}\"}} {value}");
    }
}

/// Prometheus text exposition (version 0.0.4), labelled with the mode.
pub(super) fn prometheus(mode: &str, stats: &Stats, log_dropped: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP ssehub_build_info The ssehub version that serves."
    );
    let _ = writeln!(out, "# TYPE ssehub_build_info gauge");
    let _ = writeln!(
        out,
        "ssehub_build_info{{mode=\"{mode}\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    for (name, kind, help, value) in metrics(stats, log_dropped) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{{mode=\"{mode}\"}} {value}");
    }
    out
}
