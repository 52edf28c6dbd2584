//! `ssehub channels`: the SSE-Server channel daemon (Bert Bos's C server)
//! as a drop-in. Web clients subscribe to the channels named by the path
//! segments under a prefix (none: every channel); events are published by
//! an HTTP query on the same port, by text lines on the control port and
//! by the FIFO (see [`super::control`]); `status` logs a table, `halt`
//! ends every stream and exits 0.
//!
//! Ours, beyond the original: the control port and the metrics listener
//! bind loopback unless given a host; the FIFO is created 0600; optional
//! `--metrics [HOST:]PORT` serves `/metrics` and `/status`; heartbeats
//! come from the hub; HTTP/1.0 gets a proper close-delimited reply.

use super::args::{getopt, Opt};
use super::control::{self, Ended, Input, Line, Pair};
use super::fifo;
use super::http::{date, is_http10, reply, ReplyBody};
use super::log::{self, Logger, Sink, Stamp};
use super::server::{
    self, Conn, Handler, Hooks, Listener, NativeStream, NoHooks, RequestHead, Shutdown,
};
use super::{body::HubBody, metrics};
use crate::frame::Event;
use crate::hub::Subscription;
use crate::hub::{Hub, HubConfig};
use crate::queue::CloseReason;
use crate::runtime::RUNTIME;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const USAGE: &str = "Usage: ssehub channels [-n] [-u urlpath] [-p port] [-l logfile] [-c ssl-cert] [-k ssl-privkey] [-F fifo] [-P controlport] [-U user] [-C configfile] [-a] [-h]";

const HELP: &str = "\
ssehub channels sends server-sent events to HTTP clients (drop-in for SSE-Server)
Usage: ssehub channels [options]
  --controlport, -P <[host:]port>  Listen for commands on <port> (default host 127.0.0.1)
  --fifo, -F <file>         Listen for commands on <fifo> (created mode 0600)
  --port, -p <[host:]port>  Listen for web clients on <port> (default 8080, every interface)
  --urlpath, -u <path>      URL path must begin with <path> (whole segments)
  --cert, -c <certfile>     Turn on TLS (web and control port), certificate <cert>
  --privkey, -k <privkey>   TLS private key from file <privkey>
  --logfile, -l <file>      Append a log to <file> (exclusive lock)
  --user, -U <user>         Run as <user> after binding
  --config, -C <file>       Read options (\"-p 8080\" lines, # comments) from <file>
  --nodaemon, -n            Run in foreground (log to stdout unless -l)
  --allowcommands, -a       Allow commands in URL queries
  --metrics <[host:]port>   Serve /metrics and /status (default host 127.0.0.1)
  --fifo-mode <octal>       Mode of a FIFO we create (default 0600)
  --heartbeat <secs>        Comment on idle streams every <secs> (default 15, 0 = off)
  --max-clients <n>         Streaming clients at once; past it, 503 (default 10000, 0 = no limit)
  --help, -h                This help
Control lines: \"channel/type = data\", \"channel = data\", \"status\", \"halt\".";

const OPTS: &[Opt] = &[
    Opt {
        short: Some('n'),
        long: "nodaemon",
        arg: false,
    },
    Opt {
        short: Some('u'),
        long: "urlpath",
        arg: true,
    },
    Opt {
        short: Some('p'),
        long: "port",
        arg: true,
    },
    Opt {
        short: Some('l'),
        long: "logfile",
        arg: true,
    },
    Opt {
        short: Some('c'),
        long: "cert",
        arg: true,
    },
    Opt {
        short: Some('k'),
        long: "privkey",
        arg: true,
    },
    Opt {
        short: Some('F'),
        long: "fifo",
        arg: true,
    },
    Opt {
        short: Some('f'),
        long: "fifo",
        arg: true,
    },
    Opt {
        short: Some('P'),
        long: "controlport",
        arg: true,
    },
    Opt {
        short: Some('U'),
        long: "user",
        arg: true,
    },
    Opt {
        short: Some('C'),
        long: "config",
        arg: true,
    },
    Opt {
        short: Some('a'),
        long: "allowcommands",
        arg: false,
    },
    Opt {
        short: Some('h'),
        long: "help",
        arg: false,
    },
    Opt {
        short: None,
        long: "background",
        arg: false,
    },
    Opt {
        short: None,
        long: "metrics",
        arg: true,
    },
    Opt {
        short: None,
        long: "fifo-mode",
        arg: true,
    },
    Opt {
        short: None,
        long: "heartbeat",
        arg: true,
    },
    Opt {
        short: None,
        long: "max-clients",
        arg: true,
    },
];

/// The channel every all-channels client joins; no path segment or
/// control line can name it (segments are never empty).
const ALL: &str = "";

/// The mode's settings: flags, then the config file for those unset.
#[derive(Debug, Default)]
struct Config {
    nodaemon: bool,
    /// Set by the launcher for its detached copy: there is no stdout.
    background: bool,
    urlpath: Option<String>,
    port: Option<String>,
    logfile: Option<String>,
    cert: Option<String>,
    privkey: Option<String>,
    fifo: Option<String>,
    controlport: Option<String>,
    user: Option<String>,
    config: Option<String>,
    allowcommands: bool,
    metrics: Option<String>,
    fifo_mode: Option<String>,
    heartbeat: Option<String>,
    max_clients: Option<String>,
}

/// A reason to stop before serving: message and exit code.
#[derive(Debug)]
struct Fail {
    code: i32,
    msg: String,
}

fn fail(code: i32, msg: impl Into<String>) -> Fail {
    Fail {
        code,
        msg: msg.into(),
    }
}

impl Config {
    /// Sets one option; `only_unset` is for config-file values.
    fn set(&mut self, name: &str, value: Option<String>, only_unset: bool) {
        let slot = match name {
            "nodaemon" => return self.nodaemon = true,
            "allowcommands" => return self.allowcommands = true,
            "background" => return self.background = true,
            "urlpath" => &mut self.urlpath,
            "port" => &mut self.port,
            "logfile" => &mut self.logfile,
            "cert" => &mut self.cert,
            "privkey" => &mut self.privkey,
            "fifo" => &mut self.fifo,
            "controlport" => &mut self.controlport,
            "user" => &mut self.user,
            "config" => &mut self.config,
            "metrics" => &mut self.metrics,
            "fifo-mode" => &mut self.fifo_mode,
            "heartbeat" => &mut self.heartbeat,
            "max-clients" => &mut self.max_clients,
            _ => return,
        };
        if !(only_unset && slot.is_some()) {
            *slot = value;
        }
    }
}

/// Parses the command line (and config file); `Ok(None)` means `--help`.
fn parse(args: &[String]) -> Result<Option<Config>, Fail> {
    let opts =
        getopt(args, OPTS).map_err(|e| fail(64, format!("{e} (see ssehub channels --help)")))?;
    let mut config = Config::default();
    for (name, value) in opts {
        if name == "help" {
            return Ok(None);
        }
        config.set(name, value, false);
    }
    if let Some(path) = config.config.clone() {
        read_config(&path, &mut config)?;
    }
    match (&config.cert, &config.privkey) {
        (Some(_), None) => return Err(fail(64, "Option --cert (-c) requires --privkey (-k)")),
        (None, Some(_)) => return Err(fail(64, "Option --privkey (-k) requires --cert (-c)")),
        _ => {}
    }
    if config
        .urlpath
        .as_deref()
        .is_some_and(|p| !p.starts_with('/'))
    {
        return Err(fail(
            64,
            "The URL path (--urlpath, -u) must start with a slash (/)",
        ));
    }
    Ok(Some(config))
}

/// Reads `option value` lines into the options not set on the command
/// line. Option words may be written `-p`, `--port` or `port`.
fn read_config(path: &str, config: &mut Config) -> Result<(), Fail> {
    let text = std::fs::read(path)
        .map_err(|e| fail(66, format!("cannot read configuration file {path}: {e}")))?;
    let text = String::from_utf8_lossy(&text);
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let mut words = line.split_whitespace();
        let Some(word) = words.next().filter(|w| !w.starts_with('#')) else {
            continue;
        };
        let opt = config_option(word)
            .ok_or_else(|| fail(65, format!("{path}:{n}: Incorrect option: {word}")))?;
        let value = words.next().map(String::from);
        if let Some(extra) = words.next() {
            return Err(fail(65, format!("{path}:{n}: Unexpected text: {extra}")));
        }
        match (opt.arg, &value) {
            (true, None) => {
                return Err(fail(
                    65,
                    format!("{path}:{n}: Missing argument after {word}"),
                ))
            }
            (false, Some(v)) => return Err(fail(65, format!("{path}:{n}: Unexpected text: {v}"))),
            _ => config.set(opt.long, value, true),
        }
    }
    Ok(())
}

fn config_option(word: &str) -> Option<&'static Opt> {
    OPTS.iter().find(|o| {
        o.long != "help"
            && o.long != "config"
            && (word == o.long
                || word.strip_prefix("--") == Some(o.long)
                || (word.len() == 2
                    && word.starts_with('-')
                    && o.short == word[1..].chars().next()))
    })
}

/// Runs the channels mode; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let config = match parse(args) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{HELP}");
            return 0;
        }
        Err(f) => {
            eprintln!("ssehub channels: {}", f.msg);
            if f.code == 64 && f.msg.contains("see ssehub") {
                eprintln!("{USAGE}");
            }
            return f.code;
        }
    };
    match start(config, args) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("ssehub channels: {}", f.msg);
            f.code
        }
    }
}

/// Everything checked and opened before serving.
struct Setup {
    config: Config,
    log: Logger,
    /// The log's row in the `status` table.
    log_slot: Option<(u64, String)>,
    tls: Option<TlsAcceptor>,
    heartbeat: Option<Duration>,
    fifo_mode: u32,
    max_clients: usize,
}

fn start(config: Config, args: &[String]) -> Result<i32, Fail> {
    let heartbeat = match config.heartbeat.as_deref() {
        None => Some(Duration::from_secs(15)),
        Some(v) => match v.parse::<u64>() {
            Ok(0) => None,
            Ok(s) => Some(Duration::from_secs(s)),
            Err(_) => {
                return Err(fail(
                    64,
                    format!("--heartbeat takes whole seconds, not '{v}'"),
                ))
            }
        },
    };
    let fifo_mode = match config.fifo_mode.as_deref() {
        None => 0o600,
        Some(v) => u32::from_str_radix(v, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                fail(
                    64,
                    format!("--fifo-mode takes an octal mode like 0600, not '{v}'"),
                )
            })?,
    };
    let max_clients = match config.max_clients.as_deref() {
        None => server::DEFAULT_MAX_CLIENTS,
        Some(v) => server::parse_max_clients(v).map_err(|e| fail(64, format!("--{e}")))?,
    };
    let (sink, log_slot) = match &config.logfile {
        Some(path) => match log::open_locked(path) {
            Ok(f) => (Sink::File(f), Some((3, path.clone()))),
            Err(log::OpenError::Locked) => {
                return Err(fail(75, format!("Cannot get an exclusive lock on {path}")))
            }
            Err(log::OpenError::Open(e)) => return Err(fail(66, format!("Log file {path}: {e}"))),
        },
        None if config.nodaemon && !config.background => {
            (Sink::Stdout, Some((1, "<stdout>".into())))
        }
        None => (Sink::Off, None),
    };
    let tls = match (&config.cert, &config.privkey) {
        (Some(c), Some(k)) => Some(super::tls::acceptor(c, k).map_err(|e| fail(69, e))?),
        _ => None,
    };
    let setup = Setup {
        config,
        log: Logger::new(sink, Stamp::Iso),
        log_slot,
        tls,
        heartbeat,
        fifo_mode,
        max_clients,
    };
    RUNTIME.block_on(serve(setup, args))
}

/// A connection, listener or controller, for the `status` table.
#[derive(Debug, Clone)]
enum Role {
    /// A web connection that has not asked for a stream yet.
    Waiting,
    /// A streaming client and its channels (empty: all channels).
    Client(Vec<String>),
    /// A controller: `FIFO`, `socket` or `HTTP`.
    Controller(&'static str),
}

/// One row of the table.
struct Entry {
    host: String,
    role: Role,
}

/// The shared state of one channels daemon.
struct Channels {
    hub: Hub,
    log: Logger,
    /// The URL path prefix, without a trailing slash.
    prefix: String,
    allow_commands: bool,
    shutdown: Shutdown,
    /// Connections and controllers by number.
    table: Mutex<BTreeMap<u64, Entry>>,
    log_slot: Option<(u64, String)>,
    /// Numbers for connections, as SSE-Server numbered them by descriptor.
    ids: Arc<AtomicU64>,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Quotes a string for a log line (newlines shown as `\n`).
fn shown(s: &str) -> String {
    s.replace('\n', "\\n").replace('\r', "\\r")
}

async fn serve(setup: Setup, args: &[String]) -> Result<i32, Fail> {
    let Setup {
        config,
        log,
        log_slot,
        tls,
        heartbeat,
        fifo_mode,
        max_clients,
    } = setup;
    let first_id = if matches!(&log_slot, Some((3, _))) {
        4
    } else {
        3
    };
    let ids = Arc::new(AtomicU64::new(first_id));
    let next = || ids.fetch_add(1, Ordering::Relaxed);
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
    let ch = Arc::new(Channels {
        hub: Hub::new(HubConfig {
            heartbeat,
            max_clients,
            ..HubConfig::default()
        }),
        log,
        prefix: config
            .urlpath
            .clone()
            .unwrap_or_else(|| "/".into())
            .trim_end_matches('/')
            .into(),
        allow_commands: config.allowcommands,
        shutdown: Shutdown::default(),
        table: Mutex::new(BTreeMap::new()),
        log_slot,
        ids: ids.clone(),
        started: Instant::now(),
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

    let said = ch.clone();
    server::on_signals(ch.shutdown.clone(), move |sig| {
        said.log.line(format_args!("Received {sig}, stopping"));
    })
    .map_err(|e| fail(71, format!("cannot watch signals: {e}")))?;

    let mut tasks = Vec::new();
    let app = ch.clone();
    let handler: Handler = Arc::new(move |req, conn| Box::pin(web(app.clone(), req, conn)));
    let listener = Listener {
        tcp: http,
        tls: tls.clone(),
        max_connections: server::connection_cap(max_clients),
        ids: ids.clone(),
    };
    let hooks: Arc<dyn Hooks> = Arc::new(WebHooks(ch.clone()));
    tasks.push(tokio::spawn(server::serve(
        listener,
        handler,
        hooks,
        ch.shutdown.clone(),
    )));
    if let Some((_, id, path)) = &fifo {
        lock(&ch.table).insert(
            *id,
            Entry {
                host: path.clone(),
                role: Role::Controller("FIFO"),
            },
        );
    }
    let fifo_info = fifo.as_ref().map(|(_, id, path)| (*id, path.clone()));
    if let Some((rx, id, path)) = fifo {
        tasks.push(tokio::spawn(read_fifo(ch.clone(), rx, id, path)));
    }
    let control_id = control.as_ref().map(|(_, id)| *id);
    if let Some((tcp, _)) = control {
        tasks.push(tokio::spawn(control_port(ch.clone(), tcp, tls.clone())));
    }
    if let Some(tcp) = metrics_tcp {
        let app = ch.clone();
        let handler: Handler = Arc::new(move |req, _| Box::pin(metrics_http(app.clone(), req)));
        let listener = Listener {
            tcp,
            tls: None,
            max_connections: 64,
            ids: Arc::new(AtomicU64::new(0)),
        };
        tasks.push(tokio::spawn(server::serve(
            listener,
            handler,
            Arc::new(NoHooks),
            ch.shutdown.clone(),
        )));
    }

    ch.shutdown.wait().await;
    ch.hub.close_all(CloseReason::Shutdown);
    for task in tasks {
        let _ = task.await;
    }
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
    Ok(0)
}

async fn bind(spec: &str, default_host: &str) -> Result<TcpListener, Fail> {
    server::bind(spec, default_host)
        .await
        .map_err(|e| fail(73, format!("Cannot listen on {spec}: {e}")))
}

/// Drops root: the group and user of `name`. Returns the uid.
fn switch_user(name: &str) -> Result<u32, Fail> {
    let c_name =
        std::ffi::CString::new(name).map_err(|_| fail(67, format!("Unknown user: {name}")))?;
    // SAFETY: getpwnam returns static storage (or NULL), read at once;
    // setgid/setuid change credentials only (glibc applies them to every
    // thread of the process).
    unsafe {
        let pw = libc::getpwnam(c_name.as_ptr());
        if pw.is_null() {
            return Err(fail(67, format!("Unknown user: {name}")));
        }
        let (uid, gid) = ((*pw).pw_uid, (*pw).pw_gid);
        if libc::setgroups(0, std::ptr::null()) != 0 && libc::getuid() == 0 {
            return Err(fail(
                69,
                format!(
                    "Cannot switch to user {name}: {}",
                    std::io::Error::last_os_error()
                ),
            ));
        }
        if libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
            return Err(fail(
                69,
                format!(
                    "Cannot switch to user {name}: {}",
                    std::io::Error::last_os_error()
                ),
            ));
        }
        Ok(uid)
    }
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
        log.line(format_args!("Command: ssehub channels {}", args.join(" ")));
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

    fn set_role(&self, id: u64, role: Role) {
        if let Some(e) = lock(&self.table).get_mut(&id) {
            e.role = role;
        }
    }

    /// Frames and publishes one event to `channels` and the all-channels
    /// clients; logs each recipient as SSE-Server does.
    fn publish(&self, channels: &[&str], event: &str, data: &str) {
        let frame = Event {
            event: (event != "message").then_some(event),
            data: Some(data),
            ..Event::default()
        }
        .encode();
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                return self.log.line(format_args!(
                    "Warning: not sending event \"{}\": {e}",
                    shown(event)
                ))
            }
        };
        let mut keys: Vec<&str> = channels.to_vec();
        keys.push(ALL);
        self.hub.publish_frame(&keys, frame, None);
        if self.log.enabled() {
            self.log_recipients(channels, event, data);
        }
    }

    fn log_recipients(&self, channels: &[&str], event: &str, data: &str) {
        let table = lock(&self.table);
        let mut found = false;
        for (id, e) in table.iter() {
            let Role::Client(chs) = &e.role else { continue };
            if chs.is_empty() || chs.iter().any(|c| channels.contains(&c.as_str())) {
                found = true;
                self.log.line(format_args!(
                    "Sent event \"{}\" with data \"{}\" to web client {id} ({})",
                    shown(event),
                    shown(data),
                    e.host
                ));
            }
        }
        if !found {
            self.log.line("No subscribed web clients");
        }
    }

    /// `status`, `halt` or an unknown command.
    fn command(&self, cmd: &str) {
        match cmd {
            "halt" => self.shutdown.trigger(),
            "status" => self.status_table(),
            _ => self
                .log
                .line(format_args!("Warning: Unknown command: {}", shown(cmd))),
        }
    }

    /// The `status` table, in SSE-Server's layout.
    fn status_table(&self) {
        let log = &self.log;
        log.line("---- Logfile ------------------------------------");
        match &self.log_slot {
            Some((fd, name)) => log.line(format_args!("{fd:3}  {name}")),
            None => log.line("Not logging"),
        }
        log.line("---- Controllers --------------------------------");
        let table = lock(&self.table);
        for (id, e) in table.iter() {
            if let Role::Controller(kind) = e.role {
                log.line(format_args!("{id:3}  {kind:<6}  {}", e.host));
            }
        }
        log.line("---- Clients ------------------------------------");
        for (id, e) in table.iter() {
            let what = match &e.role {
                Role::Controller(_) => continue,
                Role::Waiting => "waiting for headers".to_string(),
                Role::Client(chs) if chs.is_empty() => "all channels".to_string(),
                Role::Client(chs) => {
                    let names: Vec<String> =
                        chs.iter().take(3).map(|c| format!("\"{c}\"")).collect();
                    let more = if chs.len() > 3 { "..." } else { "" };
                    format!("{}{more}", names.join(", "))
                }
            };
            log.line(format_args!("{id:3}  {:<15}  {what}", e.host));
        }
        log.line("-------------------------------------------------");
    }

    /// Handles one input of a controller; false closes the controller.
    fn control_input(&self, id: u64, host: &str, input: Input, close_on_long: bool) -> bool {
        let text = match input {
            Input::TooLong => {
                self.log.line(format_args!(
                    "Warning: line longer than {} bytes from {id} ({host})",
                    control::MAX_LINE
                ));
                return !close_on_long;
            }
            Input::Nul => {
                self.log.line(format_args!(
                    "Warning: ignoring a line with a NUL byte from {id} ({host})"
                ));
                return true;
            }
            Input::Line { text, lossy } => {
                if lossy {
                    self.log.line(format_args!(
                        "Warning: invalid UTF-8 from {id} ({host}), replaced by U+FFFD"
                    ));
                }
                text
            }
        };
        match control::parse(&text) {
            Line::Empty => self.log.line(format_args!(
                "Warning: ignoring an empty line from {id} ({host})"
            )),
            Line::Command(cmd) => {
                self.log
                    .line(format_args!("Received from {id} ({host}): {cmd}"));
                self.command(cmd);
            }
            Line::Publish {
                target,
                channel,
                event,
                data,
            } => {
                self.log
                    .line(format_args!("Received from {id} ({host}): {target}={data}"));
                self.publish(&[channel], event, data);
            }
        }
        true
    }

    /// The pairs of a publishing query, in order.
    fn run_query(&self, conn: &Conn, channels: &[String], query: &str) {
        let host = conn.peer.ip().to_string();
        let targets: Vec<&str> = channels.iter().map(String::as_str).collect();
        for pair in control::query_pairs(query) {
            match pair {
                Pair::Event(name, value) => {
                    self.log.line(format_args!(
                        "Received from {} ({host}): {}={}",
                        conn.id,
                        shown(&name),
                        shown(&value)
                    ));
                    self.publish(&targets, &name, &value);
                }
                Pair::Command(cmd) => {
                    self.log.line(format_args!(
                        "Received from {} ({host}): {}",
                        conn.id,
                        shown(&cmd)
                    ));
                    if self.allow_commands {
                        self.command(&cmd);
                    } else {
                        self.log.line("Commands not allowed from web clients.");
                    }
                }
            }
        }
    }
}

/// Logs web connections as SSE-Server does and keeps the table.
struct WebHooks(Arc<Channels>);

impl Hooks for WebHooks {
    fn take_stream(&self, head: &RequestHead<'_>, conn: &Conn) -> Option<NativeStream> {
        native_stream(&self.0, head, conn)
    }

    fn opened(&self, conn: &Conn) {
        let host = conn.peer.ip().to_string();
        self.0.log.line(format_args!(
            "Got new web connection {} from {host}",
            conn.id
        ));
        lock(&self.0.table).insert(
            conn.id,
            Entry {
                host,
                role: Role::Waiting,
            },
        );
    }

    fn closed(&self, conn: &Conn) {
        lock(&self.0.table).remove(&conn.id);
        self.0.log.line(format_args!(
            "Closing connection {} ({})",
            conn.id,
            conn.peer.ip()
        ));
    }

    fn tls_failed(&self, conn: &Conn, err: &std::io::Error) {
        self.0
            .log
            .line(format_args!("Cannot set up SSL to {}: {err}", conn.id));
    }
}

/// The web port: streams, publishing queries, SSE-Server's replies.
async fn web(ch: Arc<Channels>, req: Request<Incoming>, conn: Conn) -> Response<ReplyBody> {
    let method = req.method().as_str();
    if method != "GET" && method != "HEAD" {
        conn.close_after_reply();
        return plain(StatusCode::METHOD_NOT_ALLOWED, "Bad request\n");
    }
    let Some(rest) = control::strip_prefix(req.uri().path(), &ch.prefix) else {
        conn.close_after_reply();
        return plain(StatusCode::NOT_FOUND, "Not found\n");
    };
    if method == "HEAD" {
        conn.close_after_reply();
        return ok_text();
    }
    let channels = control::path_channels(rest);
    match req.uri().query() {
        Some(query) => {
            ch.set_role(conn.id, Role::Controller("HTTP"));
            ch.run_query(&conn, &channels, query);
            conn.close_after_reply();
            ok_text()
        }
        None => stream(&ch, &conn, channels, is_http10(&req)),
    }
}

fn stream(
    ch: &Arc<Channels>,
    conn: &Conn,
    channels: Vec<String>,
    http10: bool,
) -> Response<ReplyBody> {
    let Some(sub) = open_stream(ch, conn.id, channels) else {
        conn.close_after_reply();
        return plain(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable\n");
    };
    if http10 {
        conn.close_after_reply();
    }
    let (ending, id) = (ch.clone(), conn.id);
    let body = ReplyBody::stream(HubBody::new(sub, None, conn))
        .on_end(move |_| ending.set_role(id, Role::Waiting));
    reply(StatusCode::OK, &stream_headers(http10), body)
}

/// Registers a stream client of `channels` (none: all), logs it as
/// SSE-Server does and records its role. `None` when the hub is full.
fn open_stream(ch: &Arc<Channels>, id: u64, channels: Vec<String>) -> Option<Subscription> {
    let sub = ch.hub.register().ok()?;
    if channels.is_empty() {
        ch.hub.join(sub.id(), ALL);
    }
    for c in &channels {
        ch.hub.join(sub.id(), c);
    }
    ch.log.line(match channels.as_slice() {
        [] => format!("Client {id} requests all channels"),
        [a] => format!("Client {id} requests channel \"{a}\""),
        [a, b] => format!("Client {id} requests channels \"{a}\" and \"{b}\""),
        [a, b, ..] => format!("Client {id} requests channels \"{a}\", \"{b}\" and more"),
    });
    ch.set_role(id, Role::Client(channels));
    Some(sub)
}

/// SSE-Server's stream headers, in its order, plus `X-Accel-Buffering`.
fn stream_headers(http10: bool) -> Vec<(&'static str, &'static str)> {
    let mut headers = cors(vec![("Server", "SSE-Server/0.1")]);
    if !http10 {
        headers.push(("Transfer-Encoding", "chunked"));
    }
    headers.extend([
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
    ]);
    if !http10 {
        headers.extend([
            ("Keep-Alive", "timeout=600, max=100"),
            ("Connection", "Keep-Alive"),
        ]);
    }
    headers.push(("X-Accel-Buffering", "no"));
    headers
}

/// A stream request served by the hub's native writer (see
/// `server::NativeStream`): same headers and bytes as the hyper path, a
/// fraction of the memory per idle client.
fn native_stream(ch: &Arc<Channels>, head: &RequestHead<'_>, conn: &Conn) -> Option<NativeStream> {
    if head.method != "GET" || head.target.contains('?') {
        return None;
    }
    let rest = control::strip_prefix(head.target, &ch.prefix)?;
    let channels = control::path_channels(rest);
    let sub = open_stream(ch, conn.id, channels)?;
    let version = if head.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut text = format!("{version} 200 OK\r\n");
    for (name, value) in stream_headers(head.http10) {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let (ending, id) = (ch.clone(), conn.id);
    Some(NativeStream {
        sub,
        head: Bytes::from(text),
        chunked: !head.http10,
        on_end: Some(Box::new(move || ending.set_role(id, Role::Waiting))),
    })
}

fn cors(mut headers: Vec<(&'static str, &'static str)>) -> Vec<(&'static str, &'static str)> {
    headers.extend([
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "GET"),
        (
            "Access-Control-Allow-Headers",
            "Cache-Control,Last-Event-Id,X-Requested-With",
        ),
    ]);
    headers
}

/// The `OK` answer to a publishing query (and to HEAD).
fn ok_text() -> Response<ReplyBody> {
    let mut headers = cors(vec![("Server", "SSE-Server/0.1")]);
    headers.extend([
        ("Content-Type", "text/plain"),
        ("Content-Length", "4"),
        ("Cache-Control", "no-cache"),
    ]);
    reply(StatusCode::OK, &headers, ReplyBody::full("OK\r\n"))
}

/// 404 and 405 in SSE-Server's header order.
fn plain(status: StatusCode, body: &'static str) -> Response<ReplyBody> {
    let len = body.len().to_string();
    let headers: [(&str, &str); 3] = if status == StatusCode::NOT_FOUND {
        [
            ("Server", "SSE-Server/0.1"),
            ("Content-Length", &len),
            ("Content-Type", "text/plain"),
        ]
    } else {
        [
            ("Server", "SSE-Server/0.1"),
            ("Content-Type", "text/plain"),
            ("Content-Length", &len),
        ]
    };
    reply(status, &headers, ReplyBody::full(body))
}

/// The metrics listener: `/metrics` and `/status`.
async fn metrics_http(ch: Arc<Channels>, req: Request<Incoming>) -> Response<ReplyBody> {
    match req.uri().path() {
        "/metrics" => metrics::metrics_reply("channels", &ch.hub.stats()),
        "/status" => metrics::status_reply("channels", &ch.hub.stats(), ch.started),
        _ => reply(
            StatusCode::NOT_FOUND,
            &[
                ("Date", &date()),
                ("Content-Length", "10"),
                ("Content-Type", "text/plain"),
            ],
            ReplyBody::full("Not found\n"),
        ),
    }
}

/// Reads the FIFO until shutdown. A too-long line is dropped, not fatal.
async fn read_fifo(ch: Arc<Channels>, rx: tokio::net::unix::pipe::Receiver, id: u64, path: String) {
    let lines = control::read_lines(rx, |input| ch.control_input(id, &path, input, false));
    tokio::select! {
        ended = lines => {
            if let Ended::Error { error, .. } = ended {
                ch.log.line(format_args!("Warning: reading the FIFO {path}: {error}"));
            }
        }
        _ = ch.shutdown.wait() => {}
    }
}

/// Accepts controllers until shutdown.
async fn control_port(ch: Arc<Channels>, tcp: TcpListener, tls: Option<TlsAcceptor>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(1024));
    loop {
        let accepted = tokio::select! {
            r = tcp.accept() => r,
            _ = ch.shutdown.wait() => break,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            ch.log.line(format_args!(
                "Warning: too many controllers; refusing a connection from {}",
                server::canonical(peer).ip()
            ));
            continue;
        };
        let id = ch.ids.fetch_add(1, Ordering::Relaxed);
        let host = server::canonical(peer).ip().to_string();
        ch.log.line(format_args!(
            "Got new controller connection {id} from {host}"
        ));
        let ch = ch.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => controller(&ch, stream, id, &host).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(server::head_timeout(), handshake).await {
                        Ok(Ok(s)) => controller(&ch, s, id, &host).await,
                        Ok(Err(e)) => ch.log.line(format_args!("Cannot set up SSL to {id}: {e}")),
                        Err(_) => ch.log.line(format_args!(
                            "Cannot set up SSL to {id}: handshake timed out"
                        )),
                    }
                }
            }
            ch.log
                .line(format_args!("Closing connection {id} ({host})"));
            drop(permit);
        });
    }
}

/// One control-port connection: lines until EOF, a too-long line, or
/// shutdown. No reply is ever written.
async fn controller<S>(ch: &Arc<Channels>, stream: S, id: u64, host: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    lock(&ch.table).insert(
        id,
        Entry {
            host: host.to_string(),
            role: Role::Controller("socket"),
        },
    );
    let lines = control::read_lines(stream, |input| ch.control_input(id, host, input, true));
    tokio::select! {
        ended = lines => {
            if let Ended::Error { error, partial } = ended {
                ch.log.line(format_args!("Warning: reading from {id} ({host}): {error}"));
                if partial > 0 {
                    ch.log.line(format_args!(
                        "Warning: dropped an unterminated line of {partial} bytes from {id} ({host})"
                    ));
                }
            }
        }
        _ = ch.shutdown.wait() => {}
    }
    lock(&ch.table).remove(&id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_and_their_errors() {
        let c = parse(&words(
            "-n -p 18080 -P 18081 -F sse.fifo -l sse.log -u /my/sse -a",
        ))
        .unwrap()
        .unwrap();
        assert!(c.nodaemon && c.allowcommands);
        assert_eq!(c.port.as_deref(), Some("18080"));
        assert_eq!(c.fifo.as_deref(), Some("sse.fifo"));
        assert_eq!(c.urlpath.as_deref(), Some("/my/sse"));
        assert!(parse(&words("-h")).unwrap().is_none());
        let e = parse(&words("-u relative")).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (
                64,
                "The URL path (--urlpath, -u) must start with a slash (/)"
            )
        );
        assert_eq!(parse(&words("-c cert.pem")).unwrap_err().code, 64);
        assert_eq!(parse(&words("-x")).unwrap_err().code, 64);
        assert_eq!(parse(&words("stray")).unwrap_err().code, 64);
    }

    #[test]
    fn config_file_fills_unset_options_only() {
        let path = std::env::temp_dir().join(format!("ssehub-conf-{}", std::process::id()));
        std::fs::write(
            &path,
            "# comment\n\n-p 9000\n--urlpath /x\nfifo f.fifo\n-a\n",
        )
        .unwrap();
        let p = path.to_string_lossy().into_owned();
        let c = parse(&words(&format!("-p 1 -C {p}"))).unwrap().unwrap();
        assert_eq!(c.port.as_deref(), Some("1"));
        assert_eq!(c.urlpath.as_deref(), Some("/x"));
        assert_eq!(c.fifo.as_deref(), Some("f.fifo"));
        assert!(c.allowcommands);
        std::fs::write(&path, "-p 1 2\n").unwrap();
        let e = parse(&words(&format!("-C {p}"))).unwrap_err();
        assert_eq!((e.code, e.msg), (65, format!("{p}:1: Unexpected text: 2")));
        std::fs::write(&path, "--bogus 1\n").unwrap();
        assert_eq!(parse(&words(&format!("-C {p}"))).unwrap_err().code, 65);
        std::fs::remove_file(&path).unwrap();
        let e = parse(&words(&format!("-C {p}"))).unwrap_err();
        assert_eq!(e.code, 66);
        assert!(
            e.msg
                .starts_with(&format!("cannot read configuration file {p}: ")),
            "{}",
            e.msg
        );
    }
}
