//! `ssehub jwt`: the JWT hub, a drop-in for chabberwock/sse. Clients
//! stream `/events/` with `Authorization: Bearer <JWT>`; the control
//! listener issues tokens (`/token/`) and emits raw payloads (`/emit/`) to
//! one user of a channel or, with userId `*`, to the whole channel. Ours
//! adds `/status` and `/metrics` on the control listener, which answers
//! only requests for a loopback host while it is bound to loopback.
//!
//! - `routes`: both listeners' requests.
//! - `access`: tokens from a page (query, cookie) and CORS.
//! - `token`: the tokens, byte-compatible with the original's.

use super::app::{self, App, Common};
use super::cli::{go_flags, Flag};
use super::exit::{self, Fail};
use super::log::{Logger, Sink, Stamp};
use super::net::stream::Refuse;
use super::ops::Ops;
use super::scale::{self, RedisSources};
use ssehub_core::hub::Hub;
use ssehub_core::runtime::RUNTIME;
use std::sync::Arc;

mod access;
mod routes;
pub(super) mod token;

pub use routes::bearer;

const HELP: &str = "\
usage: ssehub jwt [-bind ADDR] [-bindctl ADDR] (-secret KEY | -secret-file FILE | -generate-secret)
                 [-heartbeat SECS] [-max-clients N] [-max-header-size N] [-tls-cert FILE -tls-key FILE]
                 [-token-param NAME] [-token-cookie NAME] [-cors-origins LIST] [-refuse 503|retry]
                 [-redis URL | -redis-file FILE] [-history N]

The JWT hub (drop-in for chabberwock/sse).
  -bind ADDR         client listener, /events/ (default :8000, every interface)
  -bindctl ADDR      control listener: /token/, /emit/, /status, /metrics
                     (default 127.0.0.1:8001; keep it private)
  -secret KEY        HMAC key that signs and checks tokens (required)
  -secret-file FILE  read the key from FILE (trailing newline removed)
  -generate-secret   make a random key and print it to stderr
  -heartbeat SECS    comment line on idle streams every SECS (default 15, 0 = off)
  -max-clients N     streaming clients at once; past it, 503 (default: the
                     open-file limit less a reserve; 0 = no limit)
  -max-header-size N longest request head accepted, in bytes (default 16384)
  -tls-cert FILE     TLS (and HTTP/2 by ALPN) on the client listener: PEM
  -tls-key FILE      certificate chain and private key
  -token-param NAME  query parameter a token may come in (default access_token)
  -token-cookie NAME cookie a token may come in (default ssehub_token)
  -cors-origins LIST origins allowed to stream from a page, comma-separated
                     (credentials allowed for them; * = any, no credentials)
  -refuse 503|retry  past the client limit or while stopping: 503 (default), or
                     200 with a retry: hint, so that browsers come back
  -redis URL         share sessions with every node on this Redis (redis://host:port/db):
                     an /emit/ on any node reaches the user's streams on all of them
  -redis-file FILE   read that URL from FILE instead (keeps a password out of ps);
                     without either, SSEHUB_REDIS_URL if set
  -history N         number events (id: lines) and keep the last N per user and
                     channel for Last-Event-ID (in Redis with -redis, for every node)";

const FLAGS: &[Flag] = &[
    Flag {
        name: "bind",
        boolean: false,
    },
    Flag {
        name: "bindctl",
        boolean: false,
    },
    Flag {
        name: "secret",
        boolean: false,
    },
    Flag {
        name: "secret-file",
        boolean: false,
    },
    Flag {
        name: "generate-secret",
        boolean: true,
    },
    Flag {
        name: "heartbeat",
        boolean: false,
    },
    Flag {
        name: "max-clients",
        boolean: false,
    },
    Flag {
        name: "max-header-size",
        boolean: false,
    },
    Flag {
        name: "tls-cert",
        boolean: false,
    },
    Flag {
        name: "token-param",
        boolean: false,
    },
    Flag {
        name: "token-cookie",
        boolean: false,
    },
    Flag {
        name: "cors-origins",
        boolean: false,
    },
    Flag {
        name: "refuse",
        boolean: false,
    },
    Flag {
        name: "tls-key",
        boolean: false,
    },
    Flag {
        name: "redis",
        boolean: false,
    },
    Flag {
        name: "redis-file",
        boolean: false,
    },
    Flag {
        name: "history",
        boolean: false,
    },
    Flag {
        name: "h",
        boolean: true,
    },
    Flag {
        name: "help",
        boolean: true,
    },
];

/// The mode's settings, from its flags.
struct Config {
    bind: String,
    bindctl: String,
    secret: Vec<u8>,
    /// The options every mode shares (TLS: on the client listener).
    common: Common,
    access: access::Access,
}

/// Shared state of one jwt hub.
struct Jwt {
    hub: Hub,
    /// Where emits go: this hub, or every node's through Redis.
    bus: Arc<dyn ssehub_core::bus::Bus>,
    secret: Vec<u8>,
    /// Go `log`-style lines on stderr.
    log: Arc<Logger>,
    ops: Ops,
    access: access::Access,
    refuse: Refuse,
}

/// Runs the jwt mode; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let config = match parse(args) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{HELP}");
            return exit::OK;
        }
        Err(msg) => {
            eprintln!("ssehub jwt: {msg}");
            return exit::USAGE;
        }
    };
    match RUNTIME.block_on(serve(config)) {
        Ok(code) => code,
        Err(f) => f.report("jwt"),
    }
}

/// Reads the flags; `Ok(None)` for `-h`.
fn parse(args: &[String]) -> Result<Option<Config>, String> {
    let flags = go_flags(args, FLAGS).map_err(|e| format!("{e} (see ssehub jwt -help)"))?;
    let mut config = Config {
        bind: ":8000".into(),
        bindctl: "127.0.0.1:8001".into(),
        secret: Vec::new(),
        common: Common::default(),
        access: access::Access::default(),
    };
    let (mut cert, mut key) = (None, None);
    let (mut secret, mut generate) = (None, false);
    let (mut redis, mut redis_file) = (None, None);
    for (name, value) in flags {
        match name {
            "h" | "help" => return Ok(None),
            "bind" => config.bind = value,
            "bindctl" => config.bindctl = value,
            "secret" => secret = Some(value),
            "secret-file" => secret = Some(read_secret_file(&value)?),
            "generate-secret" => generate = value == "true" || value == "1",
            "tls-cert" => cert = Some(value),
            "token-param" => config.access.param = value,
            "token-cookie" => config.access.cookie = value,
            "cors-origins" => config.access.origins = access::parse_origins(&value)?,
            "tls-key" => key = Some(value),
            "redis" => redis = Some(value),
            "redis-file" => redis_file = Some(value),
            shared => {
                config
                    .common
                    .set(shared, &value)
                    .map_err(|e| format!("-{e}"))?;
            }
        }
    }
    config.common.tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("-tls-cert and -tls-key go together".into()),
    };
    config.secret = choose_secret(secret, generate)?.into_bytes();
    config.common.redis = scale::redis_url(
        RedisSources {
            url: redis,
            file: redis_file.as_deref(),
            env: std::env::var(scale::REDIS_URL_VAR).ok(),
            flags: ["-redis", "-redis-file"],
        },
        exit::USAGE,
    )
    .map_err(|f| f.msg)?;
    Ok(Some(config))
}

fn read_secret_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {path}: {e}"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// The key to use: given, or generated on request; never a guessable one.
fn choose_secret(given: Option<String>, generate: bool) -> Result<String, String> {
    match given {
        Some(s) if s.is_empty() => Err("the secret is empty; pass -secret KEY, or -generate-secret".into()),
        Some(s) if s == "secret" => Err(
            "refusing the original's default key 'secret' (anyone could forge tokens); pass a real -secret KEY, or -generate-secret".into(),
        ),
        Some(s) => {
            if s.len() < 16 {
                eprintln!("ssehub jwt: warning: the secret is shorter than 16 bytes; tokens are easier to forge");
            }
            Ok(s)
        }
        None if generate => {
            let s = token::generate_secret().map_err(|e| format!("cannot generate a secret: {e}"))?;
            eprintln!("ssehub jwt: generated secret (sign and check tokens with it): {s}");
            Ok(s)
        }
        None => Err("no -secret given; pass -secret KEY (or -secret-file FILE), or -generate-secret to create a random one".into()),
    }
}

async fn serve(config: Config) -> Result<i32, Fail> {
    let log = Arc::new(Logger::new(Sink::Stderr, Stamp::GoLog));
    let said = log.clone();
    let common = &config.common;
    let mut app = App::new(common.limits, 1, move |sig| {
        said.line(format_args!("Received {sig}, stopping."));
    })?;
    let tls = common.tls_acceptor()?;
    let clients = app::bind(&config.bind, "").await?;
    let control = app::bind(&config.bindctl, "127.0.0.1").await?;
    let engine = app.start(common, "jwt").await?;
    let jwt = Arc::new(Jwt {
        hub: engine.hub.clone(),
        bus: engine.bus.clone(),
        secret: config.secret,
        log,
        ops: engine.ops.clone(),
        access: config.access,
        refuse: common.refuse,
    });
    let shown = |l: &tokio::net::TcpListener| l.local_addr().map_or("?".into(), |a| a.to_string());
    jwt.log.line(format_args!(
        "Listening for clients on {}, control on {}",
        shown(&clients),
        shown(&control)
    ));
    app.serve(
        clients,
        tls,
        engine.budget.web_connections,
        Arc::new(routes::Clients(jwt.clone())),
    );
    app.serve_ops(control, Arc::new(routes::Control(jwt.clone())));
    let code = app.run(&engine).await;
    jwt.log.flush();
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    use routes::{channel_key, user_key};

    #[test]
    fn bearer_is_cut_like_the_original() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer(b"BEARER abc"), Some("abc"));
        assert_eq!(bearer(b"bearerXabc"), Some("abc"));
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearer "), Some(""));
        assert_eq!(bearer(b"Basic abcdef"), None);
    }

    #[test]
    fn keys_never_collide() {
        assert_ne!(user_key("ab", "c"), user_key("a", "bc"));
        assert_ne!(channel_key("u1:ab"), user_key("a", "b"));
    }

    #[test]
    fn a_secret_is_required_and_never_the_default() {
        let err = parse(&words("-bind :1")).err().unwrap();
        assert!(err.contains("-generate-secret"), "{err}");
        assert!(parse(&words("-secret secret")).is_err());
        assert!(parse(&words("-secret")).is_err());
        let c = parse(&words("-secret MySuperPassword42 -bindctl 127.0.0.1:0"))
            .unwrap()
            .unwrap();
        assert_eq!(c.secret, b"MySuperPassword42");
        assert_eq!(c.bind, ":8000");
        assert_eq!(c.bindctl, "127.0.0.1:0");
        let g = parse(&words("-generate-secret")).unwrap().unwrap();
        assert!(g.secret.len() >= 40);
        assert!(parse(&words("-help")).unwrap().is_none());
        assert!(parse(&words("-heartbeat x -secret abcdefghijklmnopq")).is_err());
    }
}
