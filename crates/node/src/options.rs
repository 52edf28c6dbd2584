//! The options JS passes to `new NativeHub`, as lib/options.js validated
//! them, into the hub's configuration.

use napi_derive::napi;
use ssehub_core::hub::{defaults, HubConfig};
use std::time::Duration;

/// Options of one hub, as validated by index.js.
#[napi(object)]
pub struct HubOptions {
    /// Milliseconds between heartbeats on idle streams; 0 turns them off.
    pub heartbeat_ms: Option<u32>,
    /// Recent events kept for Last-Event-ID replay.
    pub history: Option<u32>,
    /// Frame bytes the replay history may hold.
    pub history_bytes: Option<f64>,
    /// Bytes a client may have queued before it is closed as slow.
    pub max_queue_bytes: Option<f64>,
    /// Clients allowed at once; 0 means no limit.
    pub max_clients: Option<u32>,
    /// Milliseconds a write may stall before the client is closed.
    pub write_timeout_ms: Option<u32>,
    /// Response headers, in order, as `[name, value]` pairs.
    pub headers: Vec<Vec<String>>,
    /// Body bytes every stream starts with (`:ok` and an optional retry).
    pub preamble: String,
    /// Share channels and history with other nodes through this Redis.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel (default `ssehub:`).
    pub redis_prefix: Option<String>,
    /// Seconds a channel's Redis keys outlive its last publish (default
    /// a day).
    pub redis_ttl_s: Option<f64>,
    /// CA certificates (PEM) for a `rediss://` Redis, in place of the
    /// system's roots.
    pub redis_ca: Option<String>,
}

/// ssehub's defaults, as lib/options.js reads them: written once, in
/// [`defaults`].
#[napi(object)]
pub struct Defaults {
    pub heartbeat_ms: u32,
    pub history_bytes: f64,
    pub max_queue_bytes: f64,
    pub write_timeout_ms: u32,
    pub retry_after_ms: u32,
    pub redis_prefix: String,
}

/// The defaults of every option that has one in Rust.
#[napi(catch_unwind)]
pub fn defaults() -> Defaults {
    Defaults {
        heartbeat_ms: defaults::HEARTBEAT.as_millis() as u32,
        history_bytes: defaults::HISTORY_BYTES as f64,
        max_queue_bytes: defaults::MAX_QUEUE_BYTES as f64,
        write_timeout_ms: defaults::WRITE_TIMEOUT.as_millis() as u32,
        retry_after_ms: defaults::RETRY.as_millis() as u32,
        redis_prefix: defaults::REDIS_PREFIX.to_string(),
    }
}

impl HubOptions {
    /// The hub's configuration. With Redis, history lives in its streams,
    /// not in this process.
    pub(crate) fn hub_config(&self) -> HubConfig {
        HubConfig {
            max_queue_bytes: self
                .max_queue_bytes
                .map_or(defaults::MAX_QUEUE_BYTES, |b| b as usize),
            history_bytes: self
                .history_bytes
                .map_or(defaults::HISTORY_BYTES, |b| b as usize),
            heartbeat: match self.heartbeat_ms {
                None => Some(defaults::HEARTBEAT),
                Some(0) => None,
                Some(ms) => Some(Duration::from_millis(ms.into())),
            },
            max_clients: self.max_clients.unwrap_or(0) as usize,
            // Node's thread queues; a runtime thread wakes the writers.
            batch_foreign_wakes: true,
            history: 0,
        }
        .keeping(self.history.unwrap_or(0) as usize, self.redis_url.is_some())
    }

    /// How long a write may stall: none when 0.
    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        match self.write_timeout_ms {
            None => Some(defaults::WRITE_TIMEOUT),
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms.into())),
        }
    }
}

/// `[name, value]` arrays from JS into pairs; a value with a line break is
/// dropped (index.js refuses those before they get here).
pub(crate) fn header_pairs(list: Vec<Vec<String>>) -> Vec<(String, String)> {
    list.into_iter()
        .filter_map(|pair| <[String; 2]>::try_from(pair).ok())
        .filter(|[name, value]| !format!("{name}{value}").contains(['\r', '\n']))
        .map(|[name, value]| (name, value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> HubOptions {
        HubOptions {
            heartbeat_ms: None,
            history: None,
            history_bytes: None,
            max_queue_bytes: None,
            max_clients: None,
            write_timeout_ms: None,
            headers: Vec::new(),
            preamble: String::new(),
            redis_url: None,
            redis_prefix: None,
            redis_ttl_s: None,
            redis_ca: None,
        }
    }

    #[test]
    fn unset_options_take_the_core_defaults() {
        let config = options().hub_config();
        assert_eq!(config.heartbeat, Some(defaults::HEARTBEAT));
        assert_eq!(config.max_queue_bytes, defaults::MAX_QUEUE_BYTES);
        assert_eq!(config.history_bytes, defaults::HISTORY_BYTES);
        assert_eq!(options().write_timeout(), Some(defaults::WRITE_TIMEOUT));
        assert!(config.batch_foreign_wakes);
    }

    #[test]
    fn zero_turns_heartbeats_and_write_timeouts_off_and_redis_keeps_the_history() {
        let mut o = options();
        o.heartbeat_ms = Some(0);
        o.write_timeout_ms = Some(0);
        o.history = Some(50);
        assert_eq!(o.hub_config().heartbeat, None);
        assert_eq!(o.write_timeout(), None);
        assert_eq!(o.hub_config().history, 50);
        o.redis_url = Some("redis://127.0.0.1".into());
        assert_eq!(o.hub_config().history, 0);
    }

    #[test]
    fn header_pairs_drop_malformed_pairs_and_line_breaks() {
        let list = vec![
            vec!["A".to_string(), "1".to_string()],
            vec!["B".to_string()],
            vec!["C".to_string(), "x\r\nD: 2".to_string()],
        ];
        assert_eq!(header_pairs(list), [("A".to_string(), "1".to_string())]);
    }
}
