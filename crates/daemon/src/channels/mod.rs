//! `ssehub channels`: the SSE-Server channel daemon (Bert Bos's C server)
//! as a drop-in. Web clients subscribe to the channels named by the path
//! segments under a prefix (none: every channel); events are published by
//! an HTTP query on the same port, by text lines on the control port and
//! by the FIFO; `status` logs a table, `halt` ends every stream and exits.
//!
//! - `config`: the flags and the config file.
//! - `routes`: what a web request is, and the answers.
//! - `control`: the text protocol of the control port and the FIFO.
//! - `publishers`: where events come in: the control port, the FIFO, the query.
//! - `fifo/`: the FIFO: a FIFO file on Unix, a named pipe on Windows.
//! - `table`: connections and clients, for `status` and the log.
//!
//! Ours, beyond the original: the control port and the metrics listener
//! bind loopback unless given a host; the FIFO is created 0600 and
//! reopened when replaced; optional `--metrics [HOST:]PORT` serves
//! `/metrics` and `/status`; heartbeats come from the hub; HTTP/1.0 gets a
//! proper close-delimited reply; the log never delays a delivery.

use super::app::{self, App, Common};
use super::exit::{self, fail, Fail};
use super::log::{self, Logger, Sink, Stamp};
use super::net::limits;
use super::net::stream::Refuse;
use super::ops::Ops;
use super::scale::{self, settle_now};
use config::{Config, HELP, USAGE};
use ssehub_core::bus::{Body, Bus, BusError, Message, Receipt};
use ssehub_core::hub::Hub;
use ssehub_core::runtime::RUNTIME;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

mod config;
pub(super) mod control;
mod fifo;
mod publishers;
mod routes;
mod table;

/// Recipient lines per log block (see `log_recipients`).
const LOG_BLOCK_LINES: usize = 1024;

/// The channel every all-channels client joins; no path segment or
/// control line can name it (segments are never empty).
const ALL: &str = "";

/// Runs the channels mode; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let config = match config::parse(args) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{HELP}");
            return exit::OK;
        }
        Err(f) => {
            let code = f.report("channels");
            if f.code == exit::USAGE && f.msg.contains("see ssehub") {
                eprintln!("{USAGE}");
            }
            return code;
        }
    };
    if !config.nodaemon && !config.background {
        return super::background::detach("channels", args, &["-n", "--background"]);
    }
    match start(config, args) {
        Ok(code) => code,
        Err(f) => f.report("channels"),
    }
}

/// Everything checked and opened before serving.
struct Setup {
    config: Config,
    /// The options every mode shares, from the flags and the config file.
    common: Common,
    log: Logger,
    /// The log's row in the `status` table.
    log_slot: Option<(u64, String)>,
    tls: Option<TlsAcceptor>,
    fifo_mode: u32,
}

fn start(config: Config, args: &[String]) -> Result<i32, Fail> {
    let mut common = Common {
        redis: config.redis.clone(),
        tls: config.cert.clone().zip(config.privkey.clone()),
        ..Common::default()
    };
    let shared = |common: &mut Common, name: &str, value: &Option<String>| match value {
        Some(v) => common
            .set(name, v)
            .map(|_| ())
            .map_err(|e| fail(exit::USAGE, format!("--{e}"))),
        None => Ok(()),
    };
    shared(&mut common, "heartbeat", &config.heartbeat)?;
    if let (Some(_), Some(why)) = (&config.fifo_mode, fifo::MODE_UNSUPPORTED) {
        return Err(fail(exit::USAGE, format!("--fifo-mode: {why}")));
    }
    let fifo_mode = match config.fifo_mode.as_deref() {
        None => 0o600,
        Some(v) => u32::from_str_radix(v, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                fail(
                    exit::USAGE,
                    format!("--fifo-mode takes an octal mode like 0600, not '{v}'"),
                )
            })?,
    };
    shared(&mut common, "max-clients", &config.max_clients)?;
    shared(&mut common, "refuse", &config.refuse)?;
    shared(&mut common, "history", &config.history)?;
    shared(&mut common, "max-header-size", &config.max_header_size)?;
    let (sink, log_slot) = match &config.logfile {
        Some(path) => match log::open_locked(path) {
            Ok(f) => (Sink::File(f), Some((3, path.clone()))),
            Err(log::OpenError::Locked) => {
                return Err(fail(
                    exit::TEMP_FAIL,
                    format!("Cannot get an exclusive lock on {path}"),
                ))
            }
            Err(log::OpenError::Open(e)) => {
                return Err(fail(exit::NO_INPUT, format!("Log file {path}: {e}")))
            }
        },
        None if config.nodaemon && !config.background => {
            (Sink::Stdout, Some((1, "<stdout>".into())))
        }
        None => (Sink::Off, None),
    };
    // Read now, before any privilege is dropped.
    let tls = common.tls_acceptor()?;
    let setup = Setup {
        config,
        common,
        log: Logger::new(sink, Stamp::Iso),
        log_slot,
        tls,
        fifo_mode,
    };
    RUNTIME.block_on(serve(setup, args))
}

/// The shared state of one channels daemon.
struct Channels {
    hub: Hub,
    log: Arc<Logger>,
    /// The URL path prefix, without a trailing slash.
    prefix: String,
    allow_commands: bool,
    /// One log line per event instead of one per recipient.
    log_summary: bool,
    shutdown: super::net::shutdown::Shutdown,
    table: table::Table,
    log_slot: Option<(u64, String)>,
    ops: Ops,
    /// How a stream is refused at the client limit or in the drain.
    refuse: Refuse,
    /// Where publishes go: this hub, or every node's through Redis.
    bus: Arc<dyn Bus>,
}

/// Binds with SSE-Server's wording of the error.
async fn bind(spec: &str, default_host: &str) -> Result<TcpListener, Fail> {
    app::bind(spec, default_host)
        .await
        .map_err(|f| fail(f.code, format!("C{}", &f.msg[1..])))
}

async fn serve(setup: Setup, args: &[String]) -> Result<i32, Fail> {
    let Setup {
        config,
        common,
        log,
        log_slot,
        tls,
        fifo_mode,
    } = setup;
    let log = Arc::new(log);
    let said = log.clone();
    // Numbers as SSE-Server gave them: descriptors after stdio (and the log).
    let first_id = if matches!(&log_slot, Some((3, _))) {
        4
    } else {
        3
    };
    let mut app = App::new(common.limits, first_id, move |sig| {
        said.line(format_args!("Received {sig}, stopping"));
    })?;
    let next = || app.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let port = config.port.clone().unwrap_or_else(|| "8080".into());
    let http = bind(&port, "").await?;
    let http_id = next();
    let fifo = match &config.fifo {
        Some(path) => {
            let rx = fifo::open(path, fifo_mode)
                .map_err(|e| fail(e.exit_code(), format!("FIFO file {path}: {e}")))?;
            Some((rx, next(), path.clone()))
        }
        None => None,
    };
    let control = match &config.controlport {
        Some(spec) => Some((bind(spec, "127.0.0.1").await?, next())),
        None => None,
    };
    let metrics_tcp = match &config.metrics {
        Some(spec) => Some(bind(spec, "127.0.0.1").await?),
        None => None,
    };
    let uid = match &config.user {
        Some(user) => Some(switch_user(user)?),
        None => None,
    };
    let engine = app.start(&common, "channels").await?;
    let ch = Arc::new(Channels {
        hub: engine.hub.clone(),
        log: log.clone(),
        prefix: config
            .urlpath
            .clone()
            .unwrap_or_else(|| "/".into())
            .trim_end_matches('/')
            .into(),
        allow_commands: config.allowcommands,
        log_summary: config.log_summary,
        shutdown: app.shutdown.clone(),
        table: table::Table::default(),
        log_slot,
        ops: engine.ops.clone(),
        refuse: common.refuse,
        bus: engine.bus.clone(),
    });
    let port_of = |l: &TcpListener| l.local_addr().map_or(0, |a| a.port());
    ch.log_startup(
        &config,
        args,
        port_of(&http),
        control.as_ref().map(|(l, _)| l),
        metrics_tcp.as_ref(),
        uid,
    );
    if let Some(path) = &config.fifo {
        ch.warn_if_world_writable(path, fifo_mode);
    }
    super::background::ready();

    app.serve(
        http,
        tls.clone(),
        engine.budget.web_connections,
        Arc::new(routes::Web(ch.clone())),
    );
    let fifo_info = fifo.as_ref().map(|(_, id, path)| (*id, path.clone()));
    if let Some((rx, id, path)) = fifo {
        ch.table
            .insert(id, path.clone(), table::Role::Controller("FIFO"));
        app.spawn(fifo::read(ch.clone(), rx, id, path));
    }
    let control_id = control.as_ref().map(|(_, id)| *id);
    if let Some((tcp, _)) = control {
        let listener = app.listener(tcp, tls.clone(), limits::PRIVATE_CONNECTIONS);
        app.spawn(publishers::control_port(ch.clone(), listener));
    }
    if let Some(tcp) = metrics_tcp {
        app.serve_ops(tcp, ch.ops.service(ch.hub.clone(), log.clone()));
    }

    let code = app.run(&engine).await;
    if let Some(id) = control_id {
        ch.log
            .line(format_args!("Closing connection {id} (control port)"));
    }
    if let Some((id, path)) = fifo_info {
        ch.log
            .line(format_args!("Closing connection {id} ({path})"));
    }
    ch.log
        .line(format_args!("Closing connection {http_id} (http port)"));
    ch.log.line("Stopping");
    ch.log.flush();
    Ok(code)
}

/// Drops root: the group and user of `name`. Returns the uid.
fn switch_user(name: &str) -> Result<u32, Fail> {
    use crate::sys::SwitchError;
    crate::sys::switch_user(name).map_err(|e| match e {
        #[cfg(unix)]
        SwitchError::Unknown => fail(exit::NO_USER, format!("Unknown user: {name}")),
        #[cfg(unix)]
        SwitchError::Refused(e) => fail(
            exit::UNAVAILABLE,
            format!("Cannot switch to user {name}: {e}"),
        ),
        #[cfg(windows)]
        SwitchError::Unsupported(why) => fail(
            exit::UNAVAILABLE,
            format!("Cannot switch to user {name}: {why}"),
        ),
    })
}

impl Channels {
    fn log_startup(
        &self,
        config: &Config,
        args: &[String],
        http_port: u16,
        control: Option<&TcpListener>,
        metrics: Option<&TcpListener>,
        uid: Option<u32>,
    ) {
        let log = &self.log;
        log.line("===================================================");
        // Masked: a --redis URL may carry a password.
        let command: Vec<String> = args.iter().map(|a| scale::redact(a)).collect();
        log.line(format_args!(
            "Command: ssehub channels {}",
            command.join(" ")
        ));
        if let Some(c) = &config.config {
            log.line(format_args!("Read configuration from {c}"));
        }
        log.line(format_args!(
            "URL path prefix is {}",
            config.urlpath.as_deref().unwrap_or("/")
        ));
        log.line(format_args!("Web server listening on port {http_port}"));
        if let Some(l) = &config.logfile {
            log.line(format_args!("Logging to file {l}"));
        }
        if let (Some(c), Some(k)) = (&config.cert, &config.privkey) {
            log.line(format_args!("SSL enabled, cert {c} and private key {k}"));
        }
        if let Some(f) = &config.fifo {
            log.line(format_args!("Controller listening on FIFO {f}"));
        }
        if let Some(addr) = control.and_then(|l| l.local_addr().ok()) {
            log.line(format_args!(
                "Controller listening on port {} ({})",
                addr.port(),
                addr.ip()
            ));
        }
        if let Some(addr) = metrics.and_then(|l| l.local_addr().ok()) {
            log.line(format_args!(
                "Metrics and status on http://{addr}/metrics and /status"
            ));
        }
        if let (Some(u), Some(uid)) = (&config.user, uid) {
            log.line(format_args!("Running as user {u} ({uid})"));
        }
        log.line(if self.allow_commands {
            "Commands allowed on web and control port"
        } else {
            "Commands not allowed on web or control port"
        });
        if config.background {
            log.line(format_args!(
                "Running in background, process id {}",
                std::process::id()
            ));
        }
    }

    /// Warns when the FIFO (found, not created by us) lets every user
    /// publish, unless that mode was asked for with `--fifo-mode`.
    fn warn_if_world_writable(&self, path: &str, asked: u32) {
        if let Some(mode) = fifo::world_writable(path).filter(|m| *m != asked) {
            self.log.line(format_args!(
                "Warning: FIFO {path} is writable by every user (mode {mode:04o}); anyone can publish. chmod 600 it, or pass --fifo-mode {mode:04o} to keep it so"
            ));
        }
    }

    /// Publishes one event to `channels` and the all-channels clients;
    /// logs its recipients as SSE-Server does (or, with `--log-summary`,
    /// how many there were). Through Redis, returns the receipt still to
    /// come; a publish that failed is logged, never dropped silently.
    fn publish(&self, channels: &[&str], event: &str, data: &str) -> Option<Receipt> {
        let message = Message {
            channels: Some(
                channels
                    .iter()
                    .chain(&[ALL])
                    .map(|c| c.to_string())
                    .collect(),
            ),
            body: Body::Event {
                event: (event != "message").then(|| event.to_string()),
                data: Some(data.to_string()),
                id: None,
                retry: None,
            },
        };
        let delivered = match settle_now(self.bus.publish(message)) {
            Ok(Ok(published)) => published.reached.unwrap_or(0),
            Ok(Err(e)) => {
                self.not_published(event, &e);
                return None;
            }
            Err(pending) => {
                self.log_publish(channels, event, data, 1);
                return Some(pending);
            }
        };
        self.log_publish(channels, event, data, delivered);
        None
    }

    fn not_published(&self, event: &str, e: &BusError) {
        match e {
            BusError::Frame(e) => self
                .log
                .line(format_args!("Warning: not sending event \"{event}\": {e}")),
            e => self
                .log
                .line(format_args!("Error: event \"{event}\" not published: {e}")),
        }
    }

    /// Waits for a publish through Redis in the background, logging a
    /// failure (a controller or the FIFO has nobody to answer).
    fn follow_up(self: &Arc<Self>, receipt: Receipt, event: &str) {
        let (ch, event) = (self.clone(), event.to_string());
        tokio::spawn(async move {
            if let Err(e) = receipt.await {
                ch.not_published(&event, &e);
            }
        });
    }

    fn log_publish(&self, channels: &[&str], event: &str, data: &str, delivered: usize) {
        if self.log.accepting() {
            self.log_recipients(channels, event, data);
        } else if self.log.enabled() {
            // The log is behind: its lines would be dropped anyway.
            self.log.drop_lines(delivered.max(1));
        }
    }

    /// One line per recipient, as SSE-Server logs them, made in one block
    /// (see [`Logger::lines`]); the table is read under its lock, which
    /// only the log and connection changes take.
    fn log_recipients(&self, channels: &[&str], event: &str, data: &str) {
        self.table.with_recipients(channels, |recipients| {
            if recipients.is_empty() {
                return self.log.line("No subscribed web clients");
            }
            if self.log_summary {
                return self.log.line(format_args!(
                    "Sent event \"{event}\" with data \"{data}\" to {} web clients",
                    recipients.len()
                ));
            }
            let head = format!("Sent event \"{event}\" with data \"{data}\" to web client ");
            // Blocks of a bounded size: one per 1,024 recipients keeps each
            // allocation small (a whole 19,000-client block is 1.5 MB, which
            // glibc maps and unmaps per event) and lets the log thread
            // start writing while the rest is made.
            for chunk in recipients.chunks(LOG_BLOCK_LINES) {
                self.log.lines(&head, chunk);
            }
        });
    }
}
