//! The operator side of every mode: hub counters as Prometheus text
//! (`/metrics`) and as a JSON status object (`/status`), on the listener
//! each mode keeps for it (channels: `--metrics`; jwt: the control
//! listener; demo: its port, to loopback peers).

use super::log::Logger;
use super::net::head::RequestInfo;
use super::net::peer::Conn;
use super::net::reply::{go_error, go_reply, ReplyBody};
use super::net::server::{Opening, Reply, Service};
use crate::hub::{Hub, Stats};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

/// One metric: name, type, help, value.
type Metric = (&'static str, &'static str, &'static str, u64);

fn metrics(stats: &Stats, log_dropped: u64) -> [Metric; 7] {
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

/// Prometheus text exposition (version 0.0.4), labelled with the mode.
pub fn prometheus(mode: &str, stats: &Stats, log_dropped: u64) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in metrics(stats, log_dropped) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{{mode=\"{mode}\"}} {value}");
    }
    out
}

/// A JSON object with the mode, uptime and the same counters.
pub fn status_json(mode: &str, stats: &Stats, log_dropped: u64, started: Instant) -> String {
    let mut out = format!(
        "{{\"mode\":\"{mode}\",\"uptimeSeconds\":{}",
        started.elapsed().as_secs()
    );
    for (name, _, _, value) in metrics(stats, log_dropped) {
        let key = name.trim_start_matches("ssehub_");
        let _ = write!(out, ",\"{key}\":{value}");
    }
    out.push('}');
    out
}

/// A mode's operator endpoints.
pub struct Ops {
    mode: &'static str,
    started: Instant,
}

impl Ops {
    pub fn new(mode: &'static str) -> Ops {
        Ops {
            mode,
            started: Instant::now(),
        }
    }

    /// The answer for an operator path (`/metrics`, `/status`), if it is one.
    pub fn reply(&self, path: &str, hub: &Hub, log: &Logger) -> Option<Response<ReplyBody>> {
        let stats = hub.stats();
        let dropped = log.dropped();
        Some(match path {
            "/metrics" => go_reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                prometheus(self.mode, &stats, dropped),
            ),
            "/status" => go_reply(
                StatusCode::OK,
                "application/json",
                status_json(self.mode, &stats, dropped, self.started),
            ),
            _ => return None,
        })
    }

    /// A listener that serves only these endpoints (channels' `--metrics`),
    /// to requests that name a loopback host (see [`loopback_host`]).
    pub fn service(&self, hub: Hub, log: Arc<Logger>) -> Arc<dyn Service> {
        Arc::new(OpsService {
            ops: Ops::new(self.mode),
            hub,
            log,
        })
    }
}

struct OpsService {
    ops: Ops,
    hub: Hub,
    log: Arc<Logger>,
}

impl Service for OpsService {
    fn open_stream(&self, _req: &dyn RequestInfo, _conn: &Conn) -> Opening {
        Opening::NotAStream
    }

    fn handle(self: Arc<Self>, req: Request<Incoming>, conn: Conn) -> Reply {
        let res = if !loopback_host(&req, &conn) {
            forbidden_host()
        } else {
            self.ops
                .reply(req.uri().path(), &self.hub, &self.log)
                .unwrap_or_else(|| go_error(StatusCode::NOT_FOUND, "404 page not found"))
        };
        Box::pin(async move { res })
    }
}

/// For a listener on a loopback address: whether the request names a
/// loopback host (`localhost`, `127.0.0.1`, `[::1]`, with any port). A page
/// in a local browser can reach a loopback port by CSRF or, after DNS
/// rebinding, read it; its `Host` then names the attacker's domain. A
/// listener bound elsewhere was made public on purpose and is not checked.
pub fn loopback_host(req: &dyn RequestInfo, conn: &Conn) -> bool {
    if !conn.local.ip().is_loopback() {
        return true;
    }
    let Some(host) = req.header("host") else {
        return false;
    };
    let host = String::from_utf8_lossy(host);
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(&*host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The answer to a request for a loopback listener under another name.
pub fn forbidden_host() -> Response<ReplyBody> {
    go_error(
        StatusCode::FORBIDDEN,
        "Forbidden: this listener answers only requests for a loopback host (localhost, 127.0.0.1, [::1])",
    )
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
        let text = prometheus("demo", &stats, 4);
        assert!(text.contains("ssehub_connected_clients{mode=\"demo\"} 2\n"));
        assert!(text.contains("ssehub_events_delivered_total{mode=\"demo\"} 11\n"));
        assert!(text.contains("ssehub_log_lines_dropped_total{mode=\"demo\"} 4\n"));
        assert!(text.contains("# TYPE ssehub_clients_dropped_slow_total counter\n"));
        let json: serde_json::Value =
            serde_json::from_str(&status_json("demo", &stats, 0, Instant::now())).unwrap();
        assert_eq!(json["events_published_total"], 7);
        assert_eq!(json["mode"], "demo");
    }

    fn conn_on(local: &str) -> Conn {
        Conn::new(1, "127.0.0.1:5000".parse().unwrap(), local.parse().unwrap())
    }

    fn with_host(host: &str) -> hyper::Request<()> {
        hyper::Request::get("/")
            .header("host", host)
            .body(())
            .unwrap()
    }

    #[test]
    fn loopback_listeners_want_a_loopback_host() {
        let local = conn_on("127.0.0.1:8001");
        for ok in [
            "localhost",
            "localhost:8001",
            "127.0.0.1:8001",
            "[::1]:8001",
            "LOCALHOST",
        ] {
            assert!(loopback_host(&with_host(ok), &local), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8001",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!loopback_host(&with_host(bad), &local), "{bad}");
        }
        let no_host = hyper::Request::get("/").body(()).unwrap();
        assert!(!loopback_host(&no_host, &local));
        let public = conn_on("0.0.0.0:8001");
        assert!(loopback_host(&with_host("attacker.example"), &public));
    }
}
