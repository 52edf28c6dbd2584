//! The JSON status object (`/status`, `/ui/status`): counters, uptime and
//! the biggest channels.

use super::prometheus::metrics;
use ssehub_core::hub::Hub;
use std::fmt::Write;
use std::time::Instant;

/// Channels listed in the status object, the biggest first.
const STATUS_CHANNELS: usize = 20;

/// A JSON object with the mode, version, uptime, the same counters and
/// the biggest channels; every key in snake_case.
pub(super) fn status_json(mode: &str, hub: &Hub, log_dropped: u64, started: Instant) -> String {
    let mut out = format!(
        "{{\"mode\":\"{mode}\",\"version\":\"{}\",\"uptime_seconds\":{}",
        env!("CARGO_PKG_VERSION"),
        started.elapsed().as_secs()
    );
    for (name, _, _, value) in metrics(&hub.stats(), log_dropped) {
        let key = name.trim_start_matches("ssehub_");
        let _ = write!(out, ",\"{key}\":{value}");
    }
    let channels: Vec<serde_json::Value> = hub
        .largest_channels(STATUS_CHANNELS)
        .into_iter()
        .map(|(channel, clients)| serde_json::json!({ "channel": channel, "clients": clients }))
        .collect();
    let _ = write!(
        out,
        ",\"largest_channels\":{}",
        serde_json::Value::Array(channels)
    );
    out.push('}');
    out
}
