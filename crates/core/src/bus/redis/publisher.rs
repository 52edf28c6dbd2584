//! The publisher task: publishes in order, each batch one script call.
//!
//! Every publish has a deadline, [`PUBLISH_TIMEOUT`] after it was made;
//! past it the caller is told Redis did not take the event. That must
//! stay true: a batch carries its deadline (less [`MARGIN`], on Redis's
//! clock) and the script refuses to run after it, and a connection on
//! which an answer did not come in time is dropped, so nothing more is
//! written to a Redis that may be stalled (`SIGSTOP`, a long fork).
//! Publishes that waited too long to be sent are refused unsent.

use super::link::{timed_out, Link};
use super::scripts::Lua;
use super::Shared;
use crate::bus::{BusError, Failure, FailureClass, Published};
use bytes::Bytes;
use redis::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a publish may take, from the call to Redis's answer.
pub(super) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);
/// Kept between the script's deadline and the caller's: time for the
/// answer of a script that ran just before its deadline to come back.
const MARGIN: Duration = Duration::from_secs(1);
/// Publishes in one script call, at most...
const MAX_BATCH: usize = 512;
/// ...and bytes of events, past the first.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// One publish waiting for its batch.
pub(super) struct Publish {
    /// Its targets: (storage key, Pub/Sub channel), each once.
    pub(super) targets: Vec<(String, String)>,
    pub(super) event: Bytes,
    pub(super) deadline: Instant,
    pub(super) done: oneshot::Sender<Result<Published, BusError>>,
}

/// What the script is told besides the events.
pub(super) struct Settings {
    pub(super) seq: String,
    pub(super) start: String,
    pub(super) history: usize,
    pub(super) ttl: Duration,
}

pub(super) async fn run(
    link: Arc<Link>,
    mut queue: mpsc::UnboundedReceiver<Publish>,
    shared: Arc<Shared>,
    settings: Settings,
) {
    loop {
        let first = tokio::select! {
            p = queue.recv() => p,
            _ = shared.shutdown.notified() => None,
        };
        let Some(first) = first else { break };
        let batch = gather(first, &mut queue);
        let (late, batch): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|p| Instant::now() + MARGIN >= p.deadline);
        for p in late {
            answer(&shared, p, Err(timed_out("waiting to be sent")));
        }
        if !batch.is_empty() {
            let answers = send(&link, &batch, &settings).await;
            for (p, a) in batch.into_iter().zip(answers) {
                answer(&shared, p, a);
            }
        }
        if shared.closed.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    // Whatever is still queued was never sent.
    queue.close();
    while let Some(p) = queue.recv().await {
        let _ = p.done.send(Err(BusError::Closed));
    }
}

/// `first` and whatever else is waiting, up to the batch's bounds.
fn gather(first: Publish, queue: &mut mpsc::UnboundedReceiver<Publish>) -> Vec<Publish> {
    let mut bytes = first.event.len();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        match queue.try_recv() {
            Ok(p) => {
                bytes += p.event.len();
                batch.push(p);
            }
            Err(_) => break,
        }
    }
    batch
}

fn answer(shared: &Shared, p: Publish, outcome: Result<Published, Failure>) {
    let outcome = outcome.map_err(|f| {
        shared.failed_publish(&f);
        BusError::Redis(f)
    });
    let _ = p.done.send(outcome);
}

/// One script call for the batch: an answer per publish.
async fn send(
    link: &Link,
    batch: &[Publish],
    settings: &Settings,
) -> Vec<Result<Published, Failure>> {
    let until = batch
        .iter()
        .map(|p| p.deadline)
        .min()
        .unwrap_or_else(Instant::now);
    let all = |f: Failure| batch.iter().map(|_| Err(f.clone())).collect();
    // Connecting first: the clock the deadline is written in comes with it.
    if let Err(f) = link.get(until).await {
        return all(f);
    }
    let Some(deadline) = link.redis_time(until - MARGIN) else {
        return all(timed_out("reading Redis's clock"));
    };
    let sharded = link.sharded();
    let (targets, indexes) = targets_of(batch);
    let fill = |cmd: &mut redis::Cmd| {
        cmd.arg(targets.len() + 2)
            .arg(&settings.seq)
            .arg(&settings.start);
        for (key, _) in &targets {
            cmd.arg(key);
        }
        cmd.arg(deadline)
            .arg(settings.history)
            .arg(settings.ttl.as_secs().max(1))
            .arg(u8::from(sharded));
        for (_, channel) in &targets {
            cmd.arg(channel);
        }
        for (p, own) in batch.iter().zip(&indexes) {
            cmd.arg(own.len()).arg(own).arg(&p.event[..]);
        }
    };
    match link.eval(Lua::Publish, &fill, until).await {
        Ok(value) => answers(link, &value, batch.len()),
        Err(f) => all(f),
    }
}

/// The batch's distinct targets, and per publish its targets' 1-based
/// places among them.
fn targets_of(batch: &[Publish]) -> (Vec<&(String, String)>, Vec<Vec<usize>>) {
    let mut targets = Vec::new();
    let mut place: HashMap<&str, usize> = HashMap::new();
    let indexes = batch
        .iter()
        .map(|p| {
            p.targets
                .iter()
                .map(|t| {
                    *place.entry(t.0.as_str()).or_insert_with(|| {
                        targets.push(t);
                        targets.len()
                    })
                })
                .collect()
        })
        .collect();
    (targets, indexes)
}

/// The script's answer: Redis's time, then an id or a refusal per event.
fn answers(link: &Link, value: &Value, n: usize) -> Vec<Result<Published, Failure>> {
    let Value::Array(items) = value else {
        let f = Failure::new(FailureClass::Other, format!("unexpected answer {value:?}"));
        return (0..n).map(|_| Err(f.clone())).collect();
    };
    if let (Some(s), Some(us)) = (number(items.first()), number(items.get(1))) {
        link.anchor(Instant::now(), (s, us));
    }
    (0..n)
        .map(|i| match items.get(i + 2) {
            Some(v) => match number(Some(v)) {
                Some(id) => Ok(Published {
                    id: Some(id),
                    reached: None,
                }),
                None => Err(Failure::new(FailureClass::Other, text(v))),
            },
            None => Err(Failure::new(
                FailureClass::Other,
                "no answer for this event",
            )),
        })
        .collect()
}

pub(super) fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(targets: &[&str]) -> Publish {
        Publish {
            targets: targets
                .iter()
                .map(|t| (t.to_string(), t.to_string()))
                .collect(),
            event: Bytes::from_static(b"x"),
            deadline: Instant::now(),
            done: oneshot::channel().0,
        }
    }

    #[test]
    fn a_batch_names_each_target_once() {
        let batch = [publish(&["a", "b"]), publish(&["b"]), publish(&["c", "a"])];
        let (targets, indexes) = targets_of(&batch);
        let names: Vec<&str> = targets.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(indexes, [vec![1, 2], vec![2], vec![3, 1]]);
    }
}
