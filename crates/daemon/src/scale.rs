//! `--redis` and `--history`, shared by the channels and jwt modes: the
//! bus a mode publishes through, and what a publish came to.
//!
//! Without either flag a mode runs as it always did (the local bus, no
//! ids). `--history N` numbers events (`id:` lines) and keeps the last N
//! for `Last-Event-ID`: in this process, or with `--redis URL` in Redis
//! streams shared by every node.
//!
//! A Redis URL may hold a password, and a command line is visible to every
//! user (`ps`): the URL can also come from a file (`--redis-file`, read
//! before any privilege is dropped) or from `SSEHUB_REDIS_URL`, and is
//! masked wherever it is printed ([`redact`]).

use super::exit::{self, fail, Fail};
pub use ssehub_core::bus::redis::redact;
use ssehub_core::bus::redis::{RedisBus, RedisConfig, DEFAULT_TTL};
use ssehub_core::bus::{Bus, BusError, Local, Published, Receipt};
use ssehub_core::hub::{defaults, Hub, HubConfig};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Events kept when `--history` is not given but `--redis` is: none (a
/// Redis without history still shares live events).
pub const NO_HISTORY: usize = 0;
/// The most `--history` takes.
const MAX_HISTORY: usize = 1_000_000;

/// A `history` value: a number of events, at most [`MAX_HISTORY`].
pub fn parse_history(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n <= MAX_HISTORY)
        .ok_or_else(|| {
            format!("history takes a number of events from 0 to {MAX_HISTORY}, not '{value}'")
        })
}

/// The environment variable a Redis URL may come in.
pub const REDIS_URL_VAR: &str = "SSEHUB_REDIS_URL";

/// Where a mode may find its Redis URL: the flag's value, the file flag's
/// path, and [`REDIS_URL_VAR`]'s value (used when neither flag is given).
pub struct RedisSources<'a> {
    pub url: Option<String>,
    pub file: Option<&'a str>,
    pub env: Option<String>,
    /// The two flags as the mode spells them (`--redis`, `--redis-file`).
    pub flags: [&'static str; 2],
}

/// The Redis URL to use, if any. Both flags at once is a usage error
/// (which one was meant?); a file that cannot be read is `code_unreadable`.
pub fn redis_url(from: RedisSources, code_unreadable: i32) -> Result<Option<String>, Fail> {
    let [flag, file_flag] = from.flags;
    match (from.url, from.file) {
        (Some(_), Some(_)) => Err(fail(
            exit::USAGE,
            format!("{flag} and {file_flag} name the Redis URL twice; give one of them"),
        )),
        (Some(url), None) => Ok(Some(url)),
        (None, Some(path)) => read_url_file(path, file_flag, code_unreadable).map(Some),
        (None, None) => Ok(from.env.filter(|v| !v.is_empty())),
    }
}

/// The URL in `path`, whitespace around it trimmed.
fn read_url_file(path: &str, flag: &str, code_unreadable: i32) -> Result<String, Fail> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(code_unreadable, format!("{flag}: cannot read {path}: {e}")))?;
    let url = text.trim();
    if url.is_empty() {
        return Err(fail(exit::USAGE, format!("{flag}: {path} is empty")));
    }
    Ok(url.to_string())
}

/// A mode's hub and the bus it publishes through (made inside the
/// runtime): with Redis, the history is kept in Redis, not in the hub.
pub async fn engine(
    config: HubConfig,
    redis: Option<&str>,
    history: usize,
) -> Result<(Hub, Arc<dyn Bus>), Fail> {
    let hub = Hub::new(config.keeping(history, redis.is_some()));
    let bus = bus_for(&hub, redis, history).await?;
    Ok((hub, bus))
}

/// The environment variable that sets how long a channel's Redis keys
/// outlive its last publish, in seconds (default a day).
pub const REDIS_TTL_VAR: &str = "SSEHUB_REDIS_TTL";

/// The environment variable naming a PEM file of CA certificates to
/// check a `rediss://` Redis with, in place of the system's roots.
pub const REDIS_CA_VAR: &str = "SSEHUB_REDIS_CA";

/// The CA certificates [`REDIS_CA_VAR`] names, read at start (before any
/// privilege is dropped).
fn redis_ca(path: Option<&str>) -> Result<Option<Vec<u8>>, Fail> {
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| {
        fail(
            exit::NO_INPUT,
            format!("{REDIS_CA_VAR}: cannot read {path}: {e}"),
        )
    })?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(fail(
            exit::USAGE,
            format!("{REDIS_CA_VAR}: {path} holds no PEM certificate"),
        ));
    }
    Ok(Some(pem))
}

/// How long to wait at start for the first connection's outcome: a
/// Redis that refuses the credentials answers at once; one that cannot be
/// reached is tried again in the background after this.
const FIRST_CONNECTION: Duration = Duration::from_secs(5);

/// The bus for a mode's hub (made inside the runtime). With Redis, the
/// first connection is awaited (up to [`FIRST_CONNECTION`]): a refusal no
/// retry mends (a wrong password or ACL user, a Redis Cluster) stops the
/// daemon with a message that says so; Redis being unreachable does not.
pub async fn bus_for(hub: &Hub, redis: Option<&str>, history: usize) -> Result<Arc<dyn Bus>, Fail> {
    let Some(url) = redis else {
        return Ok(Arc::new(Local::new(hub.clone(), history > 0)));
    };
    let config = RedisConfig {
        url: url.to_string(),
        prefix: defaults::REDIS_PREFIX.into(),
        history,
        ttl: redis_ttl(std::env::var(REDIS_TTL_VAR).ok().as_deref())?,
        ca: redis_ca(std::env::var(REDIS_CA_VAR).ok().as_deref())?,
    };
    let bus = RedisBus::start(hub, config).map_err(|e| fail(exit::USAGE, e))?;
    if let Ok(Err(failure)) = tokio::time::timeout(FIRST_CONNECTION, bus.ready()).await {
        let at = redact(url);
        if failure.class.is_fatal() {
            return Err(fail(exit::UNAVAILABLE, format!("Redis at {at}: {failure}")));
        }
        eprintln!("Redis at {at} not reached yet, trying again in the background: {failure}");
    }
    Ok(Arc::new(bus))
}

/// The TTL from [`REDIS_TTL_VAR`]'s value: whole seconds from 1.
fn redis_ttl(value: Option<&str>) -> Result<Duration, Fail> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_TTL);
    };
    v.parse::<u64>()
        .ok()
        .filter(|s| (1..=1 << 31).contains(s))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            fail(
                exit::USAGE,
                format!("{REDIS_TTL_VAR} takes a number of seconds from 1, not '{v}'"),
            )
        })
}

/// A publish's outcome now if it has one (the local bus always does),
/// else the receipt to wait for.
pub fn settle_now(mut receipt: Receipt) -> Result<Result<Published, BusError>, Receipt> {
    let mut cx = Context::from_waker(Waker::noop());
    match receipt.as_mut().poll(&mut cx) {
        Poll::Ready(outcome) => Ok(outcome),
        Poll::Pending => Err(receipt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources<'a>(
        url: Option<&str>,
        file: Option<&'a str>,
        env: Option<&str>,
    ) -> RedisSources<'a> {
        RedisSources {
            url: url.map(String::from),
            file,
            env: env.map(String::from),
            flags: ["--redis", "--redis-file"],
        }
    }

    #[test]
    fn the_redis_url_from_a_flag_a_file_or_the_environment() {
        let path = std::env::temp_dir().join(format!("ssehub-redis-url-{}", std::process::id()));
        std::fs::write(&path, "  redis://:pw@h:1/0\n").unwrap();
        let file = path.to_str().unwrap();
        let got = |s| redis_url(s, exit::NO_INPUT).map_err(|f| (f.code, f.msg));
        assert_eq!(
            got(sources(Some("redis://a"), None, Some("redis://env"))),
            Ok(Some("redis://a".into()))
        );
        assert_eq!(
            got(sources(None, Some(file), Some("redis://env"))),
            Ok(Some("redis://:pw@h:1/0".into()))
        );
        assert_eq!(
            got(sources(None, None, Some("redis://env"))),
            Ok(Some("redis://env".into()))
        );
        assert_eq!(got(sources(None, None, Some(""))), Ok(None));
        assert_eq!(got(sources(None, None, None)), Ok(None));
        let both = got(sources(Some("redis://a"), Some(file), None)).unwrap_err();
        assert_eq!(both.0, exit::USAGE);
        assert!(both.1.contains("--redis and --redis-file"), "{}", both.1);
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            got(sources(None, Some(file), None)).unwrap_err().0,
            exit::USAGE
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            got(sources(None, Some(file), None)).unwrap_err().0,
            exit::NO_INPUT
        );
    }

    #[test]
    fn the_ttl_takes_whole_seconds() {
        assert_eq!(redis_ttl(None).unwrap(), DEFAULT_TTL);
        assert_eq!(redis_ttl(Some("")).unwrap(), DEFAULT_TTL);
        assert_eq!(redis_ttl(Some("60")).unwrap(), Duration::from_secs(60));
        for bad in ["0", "-1", "1.5", "x"] {
            let e = redis_ttl(Some(bad)).unwrap_err();
            assert_eq!(e.code, exit::USAGE);
            assert!(e.msg.contains(REDIS_TTL_VAR), "{}", e.msg);
        }
    }

    #[test]
    fn history_takes_a_bounded_count() {
        assert_eq!(parse_history("0").unwrap(), 0);
        assert_eq!(parse_history("500").unwrap(), 500);
        for bad in ["-1", "x", "1000001", ""] {
            let e = parse_history(bad).unwrap_err();
            assert!(e.starts_with("history takes"), "{e}");
        }
    }
}
