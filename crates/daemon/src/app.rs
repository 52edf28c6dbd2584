//! The start-up and stop every mode shares: the options every mode takes
//! ([`Common`]), listeners bound with one error style, the descriptor
//! budget, the hub, its bus and the operator side ([`App::start`]), the
//! signals, the tasks, the drain. A mode parses its own syntax into a
//! [`Common`], makes an [`App`], starts its [`Engine`] there, builds its
//! state and its [`Service`]s on it and waits in [`App::run`].

use super::exit::{self, fail, Fail};
use super::net::addr;
use super::net::limits::{self, Limits, ONE_SHOT_HEADROOM, PRIVATE_RESERVE};
use super::net::server::{self, Listener, Service};
use super::net::shutdown::{self, Shutdown};
use super::net::stream::Refuse;
use super::ops::Ops;
use super::scale;
use ssehub_core::bus::Bus;
use ssehub_core::hub::{defaults, Hub, HubConfig};
use ssehub_core::queue::CloseReason;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The options every mode shares, whatever their syntax (SSE-Server's GNU
/// flags, Go flags, the demo's environment): each mode's parser fills one
/// through [`Common::set`], and [`App::start`] starts the mode from it.
#[derive(Debug, Clone)]
pub struct Common {
    /// Between heartbeat comments on an idle stream; `None`: none.
    pub heartbeat: Option<Duration>,
    /// Streaming clients at once as asked (`None`: the default, which
    /// follows the open-file limit; 0: no limit). See [`Budget`].
    pub max_clients: Option<usize>,
    /// How a stream is refused at the client limit or in the drain.
    pub refuse: Refuse,
    /// What a request head may be, on every listener of the mode.
    pub limits: Limits,
    /// PEM certificate chain and private key: TLS on the web listener.
    pub tls: Option<(String, String)>,
    /// The Redis URL publishes go through (`None`: this process only).
    pub redis: Option<String>,
    /// Events numbered and kept for `Last-Event-ID` (0: none).
    pub history: usize,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            heartbeat: Some(defaults::HEARTBEAT),
            max_clients: None,
            refuse: Refuse::default(),
            limits: Limits::default(),
            tls: None,
            redis: None,
            history: scale::NO_HISTORY,
        }
    }
}

impl Common {
    /// Takes the shared option `name` (spelled as the long flags spell it:
    /// `heartbeat`, `max-clients`, `refuse`, `max-header-size`, `history`)
    /// from its text; `Ok(false)` when `name` is not one of them. The error
    /// names the option in that spelling (`max-clients takes ...`), for
    /// the mode to prefix as its syntax writes it (`--`, `-`, `MAX_CLIENTS: `).
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, String> {
        match name {
            "heartbeat" => self.heartbeat = parse_heartbeat(value)?,
            "max-clients" => self.max_clients = Some(parse_max_clients(value)?),
            "refuse" => self.refuse = Refuse::parse(value)?,
            "max-header-size" => self.limits.max_head = limits::parse_max_head(value)?,
            "history" => self.history = scale::parse_history(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The TLS acceptor for [`Common::tls`], if it is set: the files are
    /// read now (a mode calls this before it drops privileges).
    pub fn tls_acceptor(&self) -> Result<Option<TlsAcceptor>, Fail> {
        let Some((cert, key)) = &self.tls else {
            return Ok(None);
        };
        super::net::tls::acceptor(cert, key)
            .map(Some)
            .map_err(|e| fail(exit::UNAVAILABLE, e))
    }
}

/// A `heartbeat` value: whole seconds, 0 for none.
fn parse_heartbeat(value: &str) -> Result<Option<Duration>, String> {
    let secs: u64 = value
        .parse()
        .map_err(|_| format!("heartbeat takes whole seconds, not '{value}'"))?;
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

/// The idle budget of a web listener serving `web_connections` at once:
/// a tenth of them, at most [`ONE_SHOT_HEADROOM`]. This is never more than
/// the headroom [`Budget`] adds to the client limit (a tenth of the
/// descriptors, at most the same), so idle connections can never take a
/// streaming client's place (see `net::idle`).
fn idle_budget(web_connections: usize) -> usize {
    (web_connections / 10).clamp(1, ONE_SHOT_HEADROOM)
}

/// The web port's share of the descriptors, and the client limit.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Connections the web port serves at once.
    pub web_connections: usize,
    /// Streaming clients at once (0 = as many as the descriptors allow).
    pub max_clients: usize,
}

impl Budget {
    /// The budget for an asked client limit (`None`: the default, which
    /// follows the open-file limit).
    pub fn new(asked: Option<usize>) -> Budget {
        Budget::for_limit(crate::sys::open_file_limit(), asked)
    }

    fn for_limit(fds: usize, asked: Option<usize>) -> Budget {
        let web = fds.saturating_sub(PRIVATE_RESERVE).max(16);
        let headroom = ONE_SHOT_HEADROOM.min(web / 10).max(1);
        let max_clients = match asked {
            None => web - headroom,
            Some(n) => n,
        };
        let web_connections = match max_clients {
            0 => web,
            n => n.saturating_add(headroom).min(web),
        };
        Budget {
            web_connections,
            max_clients,
        }
    }
}

/// A `max-clients` value: a whole number, 0 for no limit.
fn parse_max_clients(value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("max-clients takes a whole number (0 = no limit), not '{value}'"))
}

/// Binds `[host:]port` (an empty host: every interface), or the one-line
/// error every mode gives for it.
pub async fn bind(spec: &str, default_host: &str) -> Result<TcpListener, Fail> {
    addr::bind(spec, default_host)
        .await
        .map_err(|e| fail(exit::CANT_CREATE, format!("cannot listen on {spec}: {e}")))
}

/// What every mode runs on, started once from its [`Common`] options by
/// [`App::start`].
pub struct Engine {
    /// The web port's share of the descriptors and the client limit.
    pub budget: Budget,
    /// The mode's one hub: its clients, channels and history.
    pub hub: Hub,
    /// Where publishes go: this hub, or every node's through Redis.
    pub bus: Arc<dyn Bus>,
    /// The operator side: metrics, status, health, readiness, the page.
    pub ops: Ops,
}

/// A running mode: its stop signal and its tasks.
pub struct App {
    pub shutdown: Shutdown,
    pub limits: Limits,
    tasks: Vec<JoinHandle<()>>,
    /// Stops the operator listeners once the drain is over, so that
    /// `/readyz` can say 503 while it lasts.
    ops_stop: Shutdown,
    ops_tasks: Vec<JoinHandle<()>>,
    /// Connection numbers, shared by every listener (log lines use them).
    pub ids: Arc<AtomicU64>,
}

impl App {
    /// Watches SIGTERM/SIGINT (`said` is told which one came); every
    /// listener of the app holds requests to `limits`.
    pub fn new(
        limits: Limits,
        first_id: u64,
        said: impl Fn(&str) + Send + 'static,
    ) -> Result<App, Fail> {
        let shutdown = Shutdown::default();
        shutdown::on_signals(shutdown.clone(), said)
            .map_err(|e| fail(exit::OS, format!("cannot watch signals: {e}")))?;
        Ok(App {
            shutdown,
            limits,
            tasks: Vec::new(),
            ops_stop: Shutdown::default(),
            ops_tasks: Vec::new(),
            ids: Arc::new(AtomicU64::new(first_id)),
        })
    }

    /// The one start-up of a mode's engine (made inside the runtime): the
    /// descriptor budget for `common`'s client limit, the hub with its
    /// heartbeat and limit, the bus (Redis, awaited, when `common` names
    /// one) and the operator side of `mode`, which stays up through the
    /// drain.
    pub async fn start(&self, common: &Common, mode: &'static str) -> Result<Engine, Fail> {
        let budget = Budget::new(common.max_clients);
        let config = HubConfig {
            heartbeat: common.heartbeat,
            max_clients: budget.max_clients,
            ..HubConfig::default()
        };
        let (hub, bus) = scale::engine(config, common.redis.as_deref(), common.history).await?;
        let ops = Ops::new(mode, self.shutdown.clone()).with_bus(bus.clone());
        Ok(Engine {
            budget,
            hub,
            bus,
            ops,
        })
    }

    /// Serves HTTP on `tcp` with `service`, at most `max_connections` at
    /// once, of which at most [`idle_budget`] without an event stream.
    pub fn serve(
        &mut self,
        tcp: TcpListener,
        tls: Option<TlsAcceptor>,
        max_connections: usize,
        service: Arc<dyn Service>,
    ) {
        let mut listener = self.listener(tcp, tls, max_connections);
        listener.max_idle = idle_budget(max_connections);
        let task = server::serve(listener, service, self.shutdown.clone());
        self.spawn(task);
    }

    /// Serves an operator listener (metrics, health, status): it stays up
    /// through the drain, answering `/readyz` with 503, and stops last.
    pub fn serve_ops(&mut self, tcp: TcpListener, service: Arc<dyn Service>) {
        let listener = self.listener(tcp, None, limits::PRIVATE_CONNECTIONS);
        let task = server::serve(listener, service, self.ops_stop.clone());
        self.ops_tasks.push(tokio::spawn(task));
    }

    /// A listener on `tcp` with this app's limits and numbering, every
    /// connection allowed to stay idle (operator and control listeners
    /// serve no streams; their cap is all they need).
    pub fn listener(
        &self,
        tcp: TcpListener,
        tls: Option<TlsAcceptor>,
        max_connections: usize,
    ) -> Listener {
        Listener {
            tcp,
            tls,
            max_connections,
            max_idle: max_connections,
            ids: self.ids.clone(),
            limits: self.limits,
        }
    }

    /// Runs `task` until it ends; [`App::run`] waits for it.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    /// Waits for the stop signal, ends every stream of `engine`'s hub
    /// cleanly, waits for the tasks (each listener drains within its grace
    /// time), then the operator listeners, and stops the bus.
    pub async fn run(self, engine: &Engine) -> i32 {
        self.shutdown.wait().await;
        engine.hub.close_all(CloseReason::Shutdown);
        for task in self.tasks {
            let _ = task.await;
        }
        self.ops_stop.trigger();
        for task in self.ops_tasks {
            let _ = task.await;
        }
        engine.bus.shutdown();
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_client_limit_follows_the_descriptors_and_keeps_a_reserve() {
        let b = Budget::for_limit(20_000, None);
        assert_eq!(b.web_connections, 20_000 - PRIVATE_RESERVE);
        assert_eq!(b.max_clients, b.web_connections - ONE_SHOT_HEADROOM);
        let small = Budget::for_limit(256, None);
        assert_eq!(small.web_connections, 128);
        assert!(small.max_clients < small.web_connections);
        let asked = Budget::for_limit(20_000, Some(100));
        assert_eq!((asked.max_clients, asked.web_connections), (100, 1_100));
        let unlimited = Budget::for_limit(20_000, Some(0));
        assert_eq!(unlimited.web_connections, 20_000 - PRIVATE_RESERVE);
        let too_many = Budget::for_limit(1_000, Some(50_000));
        assert_eq!(too_many.web_connections, 1_000 - PRIVATE_RESERVE);
    }

    #[test]
    fn idle_connections_leave_room_for_every_streaming_client() {
        for fds in [16, 256, 300, 1_024, 20_000, 1 << 20] {
            for asked in [None, Some(0), Some(1), Some(2), Some(100), Some(10_000)] {
                let b = Budget::for_limit(fds, asked);
                let idle = idle_budget(b.web_connections);
                assert!(idle >= 1);
                if b.max_clients > 0 && b.max_clients < b.web_connections {
                    assert!(
                        b.max_clients + idle <= b.web_connections,
                        "{fds} fds, {asked:?}: {b:?}, idle {idle}"
                    );
                }
            }
        }
        assert_eq!(idle_budget(20_000), ONE_SHOT_HEADROOM);
    }

    #[test]
    fn the_shared_options_parse_alike_in_every_mode() {
        let mut c = Common::default();
        assert_eq!(c.heartbeat, Some(defaults::HEARTBEAT));
        assert_eq!(c.set("heartbeat", "0"), Ok(true));
        assert_eq!(c.heartbeat, None);
        assert_eq!(c.set("heartbeat", "7"), Ok(true));
        assert_eq!(c.heartbeat, Some(Duration::from_secs(7)));
        assert_eq!(c.set("max-clients", "0"), Ok(true));
        assert_eq!(c.max_clients, Some(0));
        assert_eq!(c.set("refuse", "retry"), Ok(true));
        assert_eq!(c.refuse, Refuse::Retry);
        assert_eq!(c.set("max-header-size", "2048"), Ok(true));
        assert_eq!(c.limits.max_head, 2048);
        assert_eq!(c.set("history", "10"), Ok(true));
        assert_eq!(c.history, 10);
        assert_eq!(c.set("port", "1"), Ok(false));
        for (name, bad) in [
            ("heartbeat", "x"),
            ("max-clients", "-1"),
            ("refuse", "no"),
            ("max-header-size", "10"),
            ("history", "x"),
        ] {
            let e = c.set(name, bad).unwrap_err();
            assert!(e.starts_with(&format!("{name} takes ")), "{e}");
        }
    }
}
