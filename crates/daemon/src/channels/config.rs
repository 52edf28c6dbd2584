//! The channels mode's settings: SSE-Server's flags (GNU `getopt_long`)
//! and its config file of `option value` lines, plus ours.

use crate::cli::{getopt, Opt};
use crate::exit::{self, fail, Fail};
use crate::scale::{self, RedisSources};

pub(super) const USAGE: &str = "Usage: ssehub channels [-n] [-u urlpath] [-p port] [-l logfile] [-c ssl-cert] [-k ssl-privkey] [-F fifo] [-P controlport] [-U user] [-C configfile] [-a] [--metrics [host:]port] [--fifo-mode octal] [--heartbeat secs] [--max-clients n] [--max-header-size bytes] [--log-summary] [--refuse 503|retry] [--redis url | --redis-file path] [--history n] [-h]";

pub(super) const HELP: &str = "\
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
  --max-clients <n>         Streaming clients at once; past it, 503 (default: the open-file
                            limit less a reserve for the control side; 0 = no limit)
  --max-header-size <bytes> Longest request head accepted (default 16384, as Node)
  --log-summary             Log one line per published event, not one per recipient
  --refuse <503|retry>      Past the client limit or while stopping: 503 (default), or
                            200 with a retry: hint, so that browsers come back by themselves
  --redis <url>             Share channels with every node on this Redis (redis://host:port/db)
  --redis-file <path>       Read that URL from <path> instead (keeps a password out of ps);
                            without either, SSEHUB_REDIS_URL if set
  --history <n>             Number events (id: lines) and keep the last <n> per channel for
                            Last-Event-ID (in Redis with --redis, shared by every node)
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
    Opt {
        short: None,
        long: "max-header-size",
        arg: true,
    },
    Opt {
        short: None,
        long: "log-summary",
        arg: false,
    },
    Opt {
        short: None,
        long: "refuse",
        arg: true,
    },
    Opt {
        short: None,
        long: "redis",
        arg: true,
    },
    Opt {
        short: None,
        long: "redis-file",
        arg: true,
    },
    Opt {
        short: None,
        long: "history",
        arg: true,
    },
];

/// The mode's settings: flags, then the config file for those unset.
#[derive(Debug, Default)]
pub(super) struct Config {
    pub(super) nodaemon: bool,
    /// Set by the launcher for its detached copy: there is no stdout.
    pub(super) background: bool,
    pub(super) urlpath: Option<String>,
    pub(super) port: Option<String>,
    pub(super) logfile: Option<String>,
    pub(super) cert: Option<String>,
    pub(super) privkey: Option<String>,
    pub(super) fifo: Option<String>,
    pub(super) controlport: Option<String>,
    pub(super) user: Option<String>,
    pub(super) config: Option<String>,
    pub(super) allowcommands: bool,
    pub(super) metrics: Option<String>,
    pub(super) fifo_mode: Option<String>,
    pub(super) heartbeat: Option<String>,
    pub(super) max_clients: Option<String>,
    pub(super) max_header_size: Option<String>,
    /// One log line per event instead of one per recipient.
    pub(super) log_summary: bool,
    pub(super) refuse: Option<String>,
    /// The Redis URL: `--redis`, else read from `--redis-file` or taken
    /// from `SSEHUB_REDIS_URL` once the options are read.
    pub(super) redis: Option<String>,
    pub(super) redis_file: Option<String>,
    pub(super) history: Option<String>,
}

impl Config {
    /// Sets one option; `only_unset` is for config-file values.
    fn set(&mut self, name: &str, value: Option<String>, only_unset: bool) {
        let slot = match name {
            "nodaemon" => return self.nodaemon = true,
            "allowcommands" => return self.allowcommands = true,
            "background" => return self.background = true,
            "log-summary" => return self.log_summary = true,
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
            "max-header-size" => &mut self.max_header_size,
            "refuse" => &mut self.refuse,
            "redis" => &mut self.redis,
            "redis-file" => &mut self.redis_file,
            "history" => &mut self.history,
            _ => return,
        };
        if !(only_unset && slot.is_some()) {
            *slot = value;
        }
    }
}

/// Parses the command line (and config file); `Ok(None)` means `--help`.
pub(super) fn parse(args: &[String]) -> Result<Option<Config>, Fail> {
    let opts = getopt(args, OPTS)
        .map_err(|e| fail(exit::USAGE, format!("{e} (see ssehub channels --help)")))?;
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
    // Here, before any privilege is dropped: the file may be root's only.
    config.redis = scale::redis_url(
        RedisSources {
            url: config.redis.take(),
            file: config.redis_file.as_deref(),
            env: std::env::var(scale::REDIS_URL_VAR).ok(),
            flags: ["--redis", "--redis-file"],
        },
        exit::NO_INPUT,
    )?;
    match (&config.cert, &config.privkey) {
        (Some(_), None) => {
            return Err(fail(
                exit::USAGE,
                "Option --cert (-c) requires --privkey (-k)",
            ))
        }
        (None, Some(_)) => {
            return Err(fail(
                exit::USAGE,
                "Option --privkey (-k) requires --cert (-c)",
            ))
        }
        _ => {}
    }
    if config
        .urlpath
        .as_deref()
        .is_some_and(|p| !p.starts_with('/'))
    {
        return Err(fail(
            exit::USAGE,
            "The URL path (--urlpath, -u) must start with a slash (/)",
        ));
    }
    Ok(Some(config))
}

/// Reads `option value` lines into the options not set on the command
/// line. Option words may be written `-p`, `--port` or `port`.
fn read_config(path: &str, config: &mut Config) -> Result<(), Fail> {
    let text = std::fs::read(path).map_err(|e| {
        fail(
            exit::NO_INPUT,
            format!("cannot read configuration file {path}: {e}"),
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let mut words = line.split_whitespace();
        let Some(word) = words.next().filter(|w| !w.starts_with('#')) else {
            continue;
        };
        let opt = config_option(word)
            .ok_or_else(|| fail(exit::DATA, format!("{path}:{n}: Incorrect option: {word}")))?;
        let value = words.next().map(String::from);
        if let Some(extra) = words.next() {
            return Err(fail(
                exit::DATA,
                format!("{path}:{n}: Unexpected text: {extra}"),
            ));
        }
        match (opt.arg, &value) {
            (true, None) => {
                return Err(fail(
                    exit::DATA,
                    format!("{path}:{n}: Missing argument after {word}"),
                ))
            }
            (false, Some(v)) => {
                return Err(fail(
                    exit::DATA,
                    format!("{path}:{n}: Unexpected text: {v}"),
                ))
            }
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
