//! The standalone daemon, `ssehub <mode>`: pure Rust on tokio + hyper, one
//! module per mode, each a drop-in for an existing SSE server, all on the
//! shared [`crate::hub`] (one hub per mode instance).
//!
//! Modes:
//! - [`channels`]: the SSE-Server channel daemon (C, Bert Bos), with its
//!   text protocol in [`control`] and its FIFO in [`fifo`].
//! - [`jwt`]: the JWT hub (Go, chabberwock/sse), with its tokens in
//!   [`token`].
//! - [`demo`]: the test stream server (Go, mpetazzoni/sse-server).
//!
//! Shared pieces:
//! - [`server`]: the accept loop: hyper per connection, optional TLS, a
//!   connection cap, graceful shutdown on SIGTERM/SIGINT.
//! - [`http`]: the response body type, exact-order headers, Go-style form
//!   and number parsing.
//! - [`body`]: a hub subscription as a streaming hyper response body.
//! - [`metrics`]: hub counters as Prometheus text and JSON status.
//! - [`log`]: log sinks (stdout, stderr, locked file) and timestamps.
//! - [`tls`]: rustls acceptor from PEM files.
//! - [`args`]: Go `flag` and GNU `getopt_long` style argument parsing.
//! - [`gorand`]: Go's `math/rand` source, for the demo's random strings.

pub mod args;
pub mod body;
pub mod channels;
pub mod control;
pub mod demo;
pub mod fifo;
pub mod gorand;
pub mod http;
pub mod jwt;
pub mod log;
pub mod metrics;
pub mod server;
pub mod tls;
pub mod token;

/// Usage printed for an unknown or missing mode.
const USAGE: &str =
    "usage: ssehub <channels|jwt|demo> [flags]   (ssehub <mode> --help for a mode's flags)";

/// Runs the daemon with `args` (the words after `ssehub`) and returns the
/// process exit code. Blocks until the daemon stops.
pub fn run(args: Vec<String>) -> i32 {
    crate::runtime::use_every_core();
    let Some((mode, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return 64;
    };
    match mode.as_str() {
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            0
        }
        "channels" => channels::run(rest),
        "demo" => demo::run(rest),
        "jwt" => jwt::run(rest),
        _ => {
            eprintln!("ssehub: unknown mode '{mode}'\n{USAGE}");
            64
        }
    }
}
