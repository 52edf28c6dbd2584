//! ssehub's engine: everything the Node addon and the daemon share.
//!
//! Module map:
//! - [`frame`]: one event into its SSE wire bytes, validated, done once.
//! - [`queue`]: one client's bounded outgoing queue and why a client closed.
//! - [`replay`]: the ring of recent events for `Last-Event-ID` resumes.
//! - [`hub`]: clients, channels, fan-out, heartbeats; used by every transport.
//! - [`bus`]: how a publish reaches every node's hub: at once (local) or
//!   through Redis (feature `redis`: shared channels, history in streams,
//!   resume anywhere).
//! - [`batch`]: the one batching policy: queued frames into writes.
//! - [`writer`]: the future that owns one native socket (the response
//!   head, batched, vectored, chunked writes; disconnect detection).
//! - [`runtime`]: the process-wide tokio runtime.

pub mod batch;
pub mod bus;
pub mod frame;
pub mod hub;
pub mod queue;
pub mod replay;
pub mod runtime;
pub mod writer;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
