//! `--redis` and `--history`, shared by the channels and jwt modes: the
//! bus a mode publishes through, and what a publish came to.
//!
//! Without either flag a mode runs as it always did (the local bus, no
//! ids). `--history N` numbers events (`id:` lines) and keeps the last N
//! for `Last-Event-ID`: in this process, or with `--redis URL` in Redis
//! streams shared by every node.

use super::exit::{self, fail, Fail};
use ssehub_core::bus::redis::{RedisBus, RedisConfig};
use ssehub_core::bus::{Bus, BusError, Local, Published, Receipt};
use ssehub_core::hub::Hub;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Events kept when `--history` is not given but `--redis` is: none (a
/// Redis without history still shares live events).
pub const NO_HISTORY: usize = 0;
/// The most `--history` takes.
const MAX_HISTORY: usize = 1_000_000;

/// Parses `--history`'s value.
pub fn parse_history(value: Option<&str>, flag: &str) -> Result<usize, Fail> {
    let Some(v) = value else {
        return Ok(NO_HISTORY);
    };
    v.parse::<usize>()
        .ok()
        .filter(|n| *n <= MAX_HISTORY)
        .ok_or_else(|| {
            fail(
                exit::USAGE,
                format!("{flag} takes a number of events from 0 to {MAX_HISTORY}, not '{v}'"),
            )
        })
}

/// The bus for a mode's hub (made inside the runtime).
pub fn bus_for(hub: &Hub, redis: Option<&str>, history: usize) -> Result<Arc<dyn Bus>, Fail> {
    let Some(url) = redis else {
        return Ok(Arc::new(Local::new(hub.clone(), history > 0)));
    };
    let config = RedisConfig {
        url: url.to_string(),
        prefix: "ssehub:".into(),
        history,
    };
    match RedisBus::start(hub, config) {
        Ok(bus) => Ok(Arc::new(bus)),
        Err(e) => Err(fail(exit::USAGE, e)),
    }
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

    #[test]
    fn history_takes_a_bounded_count() {
        assert_eq!(parse_history(None, "--history").unwrap(), 0);
        assert_eq!(parse_history(Some("500"), "--history").unwrap(), 500);
        for bad in ["-1", "x", "1000001", ""] {
            let e = parse_history(Some(bad), "--history").unwrap_err();
            assert_eq!(e.code, exit::USAGE);
            assert!(e.msg.contains("--history"), "{}", e.msg);
        }
    }
}
