//! The operator side of every mode, on the listener each mode keeps for it
//! (channels: `--metrics`; jwt: the control listener; demo: its port, to
//! loopback peers): hub and process counters as Prometheus text
//! (`/metrics`), a JSON status object (`/status`, `/ui/status`), liveness
//! and readiness (`/healthz`, `/readyz`: 503 while draining) and a status
//! page for a person (`/ui/` with its `app.css` and `app.js`, no external
//! assets, under a Content-Security-Policy that allows nothing inline).
//!
//! The one rule every mode applies to these pages on a loopback listener
//! is [`loopback_host`]: the request must name a loopback host.
//!
//! Module map:
//! - this file: [`Ops`], which answers every operator path, and the
//!   listener that serves only them.
//! - `prometheus`: the counters as Prometheus text (`/metrics`).
//! - `status`: the JSON status object (`/status`, `/ui/status`).
//! - `ui`: the status page, its files and the headers they are sent with.
//! - `host`: the loopback-host rule.

mod host;
mod prometheus;
mod status;
mod ui;

pub use host::{forbidden_host, loopback_host};
use prometheus::{bus_errors, bus_metrics, prometheus};
use status::status_json;
use ui::{ui_reply, UI, UI_CSS, UI_JS};

use crate::go::http::{go_reply, not_found};
use crate::log::Logger;
use crate::net::head::RequestInfo;
use crate::net::peer::Conn;
use crate::net::reply::ReplyBody;
use crate::net::server::{Routed, Service};
use crate::net::shutdown::Shutdown;
use hyper::{Response, StatusCode};
use ssehub_core::bus::{Bus, BusStats, FailureClass};
use ssehub_core::hub::Hub;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

/// A mode's operator endpoints.
#[derive(Clone)]
pub struct Ops {
    mode: &'static str,
    started: Instant,
    /// Triggered: draining, so `/readyz` says 503.
    shutdown: Shutdown,
    bus: Option<Arc<dyn Bus>>,
}

impl Ops {
    pub fn new(mode: &'static str, shutdown: Shutdown) -> Ops {
        Ops {
            mode,
            started: Instant::now(),
            shutdown,
            bus: None,
        }
    }

    /// Shows the bus too (`--redis`).
    pub fn with_bus(mut self, bus: Arc<dyn Bus>) -> Ops {
        self.bus = Some(bus);
        self
    }

    /// The bus's stats, when it is Redis.
    fn redis(&self) -> Option<BusStats> {
        self.bus
            .as_ref()
            .map(|b| b.stats())
            .filter(|s| s.kind == "redis")
    }

    /// The answer for an operator path, if it is one.
    pub fn reply(&self, path: &str, hub: &Hub, log: &Logger) -> Option<Response<ReplyBody>> {
        let dropped = log.dropped();
        let text = "text/plain; charset=utf-8";
        Some(match path {
            "/metrics" => {
                let mut body = prometheus(self.mode, &hub.stats(), dropped);
                if let Some(bus) = self.redis() {
                    for (name, kind, help, value) in bus_metrics(&bus) {
                        let mode = self.mode;
                        let _ = write!(
                            body,
                            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{mode=\"{mode}\"}} {value}\n"
                        );
                    }
                    bus_errors(&mut body, self.mode, &bus);
                }
                body.push_str(&crate::process::prometheus());
                go_reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    body,
                )
            }
            "/status" => go_reply(
                StatusCode::OK,
                "application/json",
                self.status(hub, dropped),
            ),
            "/ui/status" => ui_reply("application/json", self.status(hub, dropped)),
            "/healthz" => go_reply(StatusCode::OK, text, "ok\n".into()),
            "/readyz" if self.shutdown.is_triggered() => {
                go_reply(StatusCode::SERVICE_UNAVAILABLE, text, "draining\n".into())
            }
            "/readyz" => go_reply(StatusCode::OK, text, "ready\n".into()),
            "/ui" => super::net::reply::reply(
                StatusCode::MOVED_PERMANENTLY,
                &[("Location", "/ui/"), ("Content-Length", "0")],
                ReplyBody::empty(),
            ),
            "/ui/" => ui_reply("text/html; charset=utf-8", UI.into()),
            "/ui/app.css" => ui_reply("text/css; charset=utf-8", UI_CSS.into()),
            "/ui/app.js" => ui_reply("text/javascript; charset=utf-8", UI_JS.into()),
            _ => return None,
        })
    }

    /// `/status`, with a `bus` object when the bus is Redis.
    fn status(&self, hub: &Hub, dropped: u64) -> String {
        let mut json = status_json(self.mode, hub, dropped, self.started);
        if let Some(bus) = self.redis() {
            let mut fields = serde_json::Map::new();
            for (name, _, _, value) in bus_metrics(&bus) {
                let key = name.trim_start_matches("ssehub_bus_").to_string();
                fields.insert(key, serde_json::json!(value));
            }
            let errors: serde_json::Map<String, serde_json::Value> = FailureClass::ALL
                .iter()
                .map(|c| (c.name().to_string(), serde_json::json!(bus.errors.get(*c))))
                .collect();
            fields.insert("errors".into(), serde_json::Value::Object(errors));
            fields.insert("connected".into(), serde_json::json!(bus.connected));
            fields.insert("last_error".into(), serde_json::json!(bus.last_error));
            json.pop();
            let _ = write!(json, ",\"bus\":{}}}", serde_json::Value::Object(fields));
        }
        json
    }

    /// A listener that serves only these endpoints (channels' `--metrics`),
    /// to requests that name a loopback host (see [`loopback_host`]).
    pub fn service(&self, hub: Hub, log: Arc<Logger>) -> Arc<dyn Service> {
        Arc::new(OpsService {
            ops: self.clone(),
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
    /// Every request is an operator page (or 404), for a loopback host.
    fn route(&self, _req: &dyn RequestInfo, _conn: &Conn) -> Routed {
        let (ops, hub, log) = (self.ops.clone(), self.hub.clone(), self.log.clone());
        Routed::now(move |req, conn| {
            if !loopback_host(&req, conn) {
                return forbidden_host();
            }
            ops.reply(req.uri().path(), &hub, &log)
                .unwrap_or_else(not_found)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ui::UI_HEADERS;
    use super::*;
    use ssehub_core::hub::Stats;

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
        assert!(text.contains(&format!(
            "ssehub_build_info{{mode=\"demo\",version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        let hub = Hub::new(ssehub_core::hub::HubConfig {
            heartbeat: None,
            ..ssehub_core::hub::HubConfig::default()
        });
        let sub = hub.register().unwrap();
        hub.join(sub.id(), "news");
        let json: serde_json::Value =
            serde_json::from_str(&status_json("demo", &hub, 0, Instant::now())).unwrap();
        assert_eq!(json["connected_clients"], 1);
        assert_eq!(json["mode"], "demo");
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["largest_channels"][0]["channel"], "news");
        let keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        assert!(
            keys.iter()
                .all(|k| !k.chars().any(|c| c.is_ascii_uppercase())),
            "{keys:?}"
        );
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

    fn request(target: &str, hosts: &[&str]) -> hyper::Request<()> {
        let mut req = hyper::Request::get(target);
        for host in hosts {
            req = req.header("host", *host);
        }
        req.body(()).unwrap()
    }

    #[test]
    fn every_name_a_request_carries_must_be_loopback() {
        let local = conn_on("127.0.0.1:8001");
        let cases: [(&str, &[&str], bool); 10] = [
            // Two Host headers: refused whatever they say.
            ("/", &["localhost", "attacker.example"], false),
            ("/", &["attacker.example", "localhost"], false),
            ("/", &["localhost", "localhost"], false),
            // HTTP/2's :authority (or an absolute-form target), with or
            // without a Host beside it.
            ("http://127.0.0.1:8001/status", &[], true),
            ("http://[::1]:8001/status", &["localhost"], true),
            ("http://user@localhost/status", &[], true),
            ("http://attacker.example/status", &[], false),
            ("http://attacker.example/status", &["localhost"], false),
            ("http://localhost@attacker.example/", &["localhost"], false),
            ("http://127.0.0.1/status", &["attacker.example"], false),
        ];
        for (target, hosts, want) in cases {
            let req = request(target, hosts);
            assert_eq!(loopback_host(&req, &local), want, "{target} {hosts:?}");
        }
    }

    #[test]
    fn the_status_page_and_its_files_carry_the_security_headers() {
        let ops = Ops::new("demo", Shutdown::default());
        let hub = Hub::new(ssehub_core::hub::HubConfig {
            heartbeat: None,
            ..ssehub_core::hub::HubConfig::default()
        });
        let log = Logger::new(crate::log::Sink::Off, crate::log::Stamp::Bare);
        for path in ["/ui/", "/ui/status", "/ui/app.css", "/ui/app.js"] {
            let res = ops.reply(path, &hub, &log).unwrap();
            for (name, value) in UI_HEADERS {
                assert_eq!(res.headers()[name], value, "{path} {name}");
            }
        }
        assert!(
            !UI.contains("<style") && !UI.contains("style="),
            "inline style"
        );
        assert!(UI.contains("<script src=\"app.js\" defer></script>"));
        assert_eq!(UI.matches("<script").count(), 1, "inline script");
    }
}

#[cfg(test)]
mod ops_tests {
    use super::*;
    use crate::log::Sink;

    #[test]
    fn readiness_turns_503_while_draining_and_liveness_stays() {
        let shutdown = Shutdown::default();
        let ops = Ops::new("jwt", shutdown.clone());
        let hub = Hub::new(ssehub_core::hub::HubConfig {
            heartbeat: None,
            ..ssehub_core::hub::HubConfig::default()
        });
        let log = Logger::new(Sink::Off, crate::log::Stamp::Bare);
        let status = |path: &str| ops.reply(path, &hub, &log).map(|r| r.status().as_u16());
        assert_eq!(status("/readyz"), Some(200));
        assert_eq!(status("/healthz"), Some(200));
        assert_eq!(status("/ui/"), Some(200));
        assert_eq!(status("/nothing"), None);
        shutdown.trigger();
        assert_eq!(status("/readyz"), Some(503));
        assert_eq!(status("/healthz"), Some(200));
    }
}
