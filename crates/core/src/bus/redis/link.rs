//! The command connection: one per node, shared by the publisher and the
//! follower's reads (on a Redis Cluster, a cluster connection routed by
//! key). It is made on demand and checked before anything else goes on
//! it: both scripts loaded (once per connection, not per call; on a
//! cluster, on every master), Redis's clock read. When an exchange
//! on it times out or breaks it is dropped whole, so nothing more is
//! written to a connection Redis may be stalled on; the next exchange
//! makes a new one.

use super::endpoint::{Commands, Endpoint};
use super::scripts::{Lua, Scripts};
use crate::bus::{Failure, FailureClass};
use redis::{ErrorKind, FromRedisValue, RedisError, ServerErrorKind, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use tokio::time::timeout_at;

/// One connection made by [`Link::get`], numbered so that a caller drops
/// the one it saw fail and not a newer one.
#[derive(Clone)]
pub(super) struct Live {
    conn: Commands,
    number: u64,
}

/// Redis's clock as last read: its time in µs at a local instant.
#[derive(Clone, Copy)]
struct Clock {
    at: Instant,
    redis_us: u64,
}

pub(super) struct Link {
    endpoint: Arc<Endpoint>,
    scripts: Scripts,
    live: tokio::sync::Mutex<Option<Live>>,
    made: AtomicU64,
    /// Whether the last connection made was to a Redis Cluster, whose
    /// scripts publish with SPUBLISH (sharded Pub/Sub).
    sharded: AtomicBool,
    clock: std::sync::Mutex<Option<Clock>>,
}

impl Link {
    pub(super) fn new(endpoint: Arc<Endpoint>) -> Link {
        Link {
            endpoint,
            scripts: Scripts::new(),
            live: tokio::sync::Mutex::new(None),
            made: AtomicU64::new(0),
            sharded: AtomicBool::new(false),
            clock: std::sync::Mutex::new(None),
        }
    }

    /// The connection, made first (by `until`) if there is none.
    pub(super) async fn get(&self, until: Instant) -> Result<Live, Failure> {
        let made = timeout_at(until.into(), async {
            let mut live = self.live.lock().await;
            if let Some(l) = &*live {
                return Ok(l.clone());
            }
            let made = self.connect().await?;
            *live = Some(made.clone());
            Ok(made)
        })
        .await;
        made.unwrap_or_else(|_| Err(timed_out("connecting")))
    }

    async fn connect(&self) -> Result<Live, Failure> {
        let mut conn = self.endpoint.commands().await?;
        load_scripts(&mut conn, &self.scripts).await?;
        // The clock of the node that runs the scripts (on a cluster, the
        // master of the bus's slot): the deadlines are written in it.
        let time = conn
            .at_home(&redis::cmd("TIME"))
            .await
            .map_err(|e| classify(&e))?;
        let time = <(u64, u64)>::from_redis_value(time)
            .map_err(|e| Failure::new(FailureClass::Other, format!("TIME answered {e}")))?;
        self.anchor(Instant::now(), time);
        self.sharded.store(conn.is_cluster(), Relaxed);
        Ok(Live {
            conn,
            number: self.made.fetch_add(1, Relaxed),
        })
    }

    /// Whether the scripts publish with SPUBLISH (a Redis Cluster).
    pub(super) fn sharded(&self) -> bool {
        self.sharded.load(Relaxed)
    }

    /// Forgets `live` if it is still the connection.
    pub(super) async fn drop_live(&self, live: &Live) {
        let mut current = self.live.lock().await;
        if current.as_ref().is_some_and(|l| l.number == live.number) {
            *current = None;
        }
    }

    /// Runs a script by its hash; `fill` adds its keys and arguments.
    /// A Redis that forgot the script (`SCRIPT FLUSH`) says `NOSCRIPT`
    /// without running anything: it is loaded again and run once more.
    pub(super) async fn eval(
        &self,
        which: Lua,
        fill: &(dyn Fn(&mut redis::Cmd) + Sync),
        until: Instant,
    ) -> Result<Value, Failure> {
        let live = self.get(until).await?;
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.scripts.hash(which));
        fill(&mut cmd);
        match self.exchange(&live, &cmd, until).await {
            Err(Exchange::NoScript) => {
                self.reload(&live, until).await?;
                self.exchange(&live, &cmd, until)
                    .await
                    .map_err(Exchange::into_failure)
            }
            other => other.map_err(Exchange::into_failure),
        }
    }

    async fn exchange(
        &self,
        live: &Live,
        cmd: &redis::Cmd,
        until: Instant,
    ) -> Result<Value, Exchange> {
        let mut conn = live.conn.clone();
        match timeout_at(until.into(), cmd.query_async::<Value>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failed(live, &e).await),
            Err(_) => {
                self.drop_live(live).await;
                Err(Exchange::Failed(timed_out("waiting for an answer")))
            }
        }
    }

    /// Loads the scripts again (Redis forgot them: `SCRIPT FLUSH`, or a
    /// cluster master that took over).
    async fn reload(&self, live: &Live, until: Instant) -> Result<(), Failure> {
        let mut conn = live.conn.clone();
        match timeout_at(until.into(), load_scripts(&mut conn, &self.scripts)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(f)) => {
                self.drop_live(live).await;
                Err(f)
            }
            Err(_) => {
                self.drop_live(live).await;
                Err(timed_out("loading the scripts"))
            }
        }
    }

    /// An error answer or a broken connection; the latter is dropped.
    async fn failed(&self, live: &Live, e: &RedisError) -> Exchange {
        if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) {
            return Exchange::NoScript;
        }
        // READONLY: a failover made this Redis a replica; the next
        // connection asks the endpoint for the primary again.
        let demoted = e.code() == Some("READONLY");
        if demoted || e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
            self.drop_live(live).await;
        }
        Exchange::Failed(classify(e))
    }

    /// Notes Redis's clock: `(seconds, µs)` read at about `at`. Read from
    /// an answer's arrival, the estimate can only be behind Redis's clock
    /// (by the answer's travel), so a deadline made from it is early.
    pub(super) fn anchor(&self, at: Instant, (secs, micros): (u64, u64)) {
        let redis_us = secs.saturating_mul(1_000_000).saturating_add(micros);
        if let Ok(mut clock) = self.clock.lock() {
            *clock = Some(Clock { at, redis_us });
        }
    }

    /// The local instant `when` on Redis's clock, in µs (None before the
    /// first connection).
    pub(super) fn redis_time(&self, when: Instant) -> Option<u64> {
        let clock = (*self.clock.lock().ok()?)?;
        Some(if when >= clock.at {
            clock.redis_us + (when - clock.at).as_micros() as u64
        } else {
            clock
                .redis_us
                .saturating_sub((clock.at - when).as_micros() as u64)
        })
    }
}

/// Loads both scripts: pipelined on one Redis; on a cluster, one command
/// each, to the master of the bus's slot (where they run; a master that
/// takes over answers NOSCRIPT and gets them then).
async fn load_scripts(conn: &mut Commands, scripts: &Scripts) -> Result<(), Failure> {
    let loaded = if conn.is_cluster() {
        let mut done = Ok(());
        for source in scripts.sources() {
            let load = redis::cmd("SCRIPT").arg("LOAD").arg(source).clone();
            done = done.and(conn.at_home(&load).await.map(drop));
        }
        done
    } else {
        let mut pipe = redis::pipe();
        for source in scripts.sources() {
            pipe.cmd("SCRIPT").arg("LOAD").arg(source).ignore();
        }
        pipe.query_async::<()>(conn).await
    };
    loaded.map_err(|e| classify(&e))
}

enum Exchange {
    NoScript,
    Failed(Failure),
}

impl Exchange {
    fn into_failure(self) -> Failure {
        match self {
            Exchange::NoScript => {
                Failure::new(FailureClass::Other, "NOSCRIPT after loading the script")
            }
            Exchange::Failed(f) => f,
        }
    }
}

pub(super) fn timed_out(what: &str) -> Failure {
    Failure::new(FailureClass::Unavailable, format!("timed out {what}"))
}

/// The class of a Redis error, by its code first (what Redis said), then
/// by what happened to the connection.
pub(super) fn classify(e: &RedisError) -> Failure {
    let class = match e.code() {
        Some("OOM") => FailureClass::Oom,
        Some("NOAUTH" | "WRONGPASS" | "NOPERM") => FailureClass::Auth,
        Some("CROSSSLOT" | "MOVED" | "ASK" | "CLUSTERDOWN" | "TRYAGAIN") => FailureClass::Cluster,
        Some("LOADING" | "MASTERDOWN" | "READONLY" | "BUSY" | "LATE") => FailureClass::Unavailable,
        _ if e.kind() == ErrorKind::AuthenticationFailed => FailureClass::Auth,
        Some(_) => FailureClass::Other,
        None => FailureClass::Unavailable,
    };
    Failure::new(class, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classed_by_what_an_operator_does() {
        let io = RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert_eq!(classify(&io).class, FailureClass::Unavailable);
        let auth = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        ));
        assert_eq!(classify(&auth).class, FailureClass::Auth);
        // Parsed server errors carry their code.
        for (reply, class) in [
            (
                "-OOM command not allowed when used memory > 'maxmemory'.\r\n",
                FailureClass::Oom,
            ),
            (
                "-WRONGPASS invalid username-password pair\r\n",
                FailureClass::Auth,
            ),
            ("-NOAUTH Authentication required.\r\n", FailureClass::Auth),
            (
                "-NOPERM this user has no permissions\r\n",
                FailureClass::Auth,
            ),
            (
                "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
                FailureClass::Cluster,
            ),
            ("-MOVED 3999 127.0.0.1:6381\r\n", FailureClass::Cluster),
            (
                "-LOADING Redis is loading the dataset in memory\r\n",
                FailureClass::Unavailable,
            ),
            (
                "-LATE ssehub: the batch reached Redis after its deadline\r\n",
                FailureClass::Unavailable,
            ),
            (
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                FailureClass::Other,
            ),
        ] {
            let value = redis::parse_redis_value(reply.as_bytes()).unwrap();
            let Value::ServerError(e) = value else {
                panic!("{reply}: {value:?}")
            };
            let e: RedisError = e.into();
            assert_eq!(classify(&e).class, class, "{reply}");
        }
    }
}
