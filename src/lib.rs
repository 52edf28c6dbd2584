//! ssehub: a Server-Sent Events hub with a Rust engine, for Node.js and as
//! a standalone daemon.
//!
//! Module map:
//! - [`batch`]: the one batching policy: queued frames into writes.
//! - [`frame`]: one event into its SSE wire bytes, validated, done once.
//! - [`queue`]: one client's bounded outgoing queue and why a client closed.
//! - [`replay`]: the ring of recent events for `Last-Event-ID` resumes.
//! - [`hub`]: clients, channels, fan-out, heartbeats; used by every transport.
//! - [`bus`]: how a publish reaches every node's hub: at once (local) or
//!   through Redis (shared channels, history in streams, resume anywhere).
//! - [`conn`]: the writer task that owns one native socket (batched,
//!   vectored, chunked writes; disconnect detection).
//! - [`runtime`]: the process-wide tokio runtime.
//! - `node`: the napi binding (`NativeHub`) that index.js drives (feature
//!   `node`).
//! - [`daemon`]: `ssehub <mode>`, the standalone servers on hyper (feature
//!   `daemon`; `src/main.rs` is its binary).

pub mod batch;
pub mod bus;
pub mod conn;
pub mod frame;
pub mod hub;
pub mod queue;
pub mod replay;
pub mod runtime;

#[cfg(feature = "daemon")]
pub mod daemon;
#[cfg(feature = "node")]
mod node;
