//! The standalone daemon, `ssehub <mode>`: pure Rust on tokio + hyper, one
//! folder per mode, each a drop-in for an existing SSE server, all on the
//! shared [`ssehub_core::hub`] (one hub per mode instance). `crates/daemon/src/main.rs` is its
//! binary; the npm launcher (`bin/ssehub.js`) only spawns that.
//!
//! Modes:
//! - `channels/`: the SSE-Server channel daemon (C, Bert Bos): web streams
//!   by path, publishing by query, a text control port and a FIFO.
//! - `jwt/`: the JWT hub (Go, chabberwock/sse), with its tokens.
//! - `demo`: the test stream server (Go, mpetazzoni/sse-server).
//!
//! Shared rooms:
//! - `net/`: the accept loop, connections, request heads and bodies,
//!   replies, addresses, TLS, shutdown (its `mod.rs` maps it).
//! - `go/`: Go-compatible text and `math/rand`, for the Go originals.
//! - `app`: what every mode shares: its common options (`Common`), the one
//!   start-up (`App::start`: descriptor budget, hub, bus, operator side)
//!   and the stop.
//! - `background`: SSE-Server's start in the background, by re-exec.
//! - `exit`: the one start-up error type and the named exit codes.
//! - `cli`: Go `flag` and GNU `getopt_long` argument parsing.
//! - `log`: log sinks and timestamps.
//! - `ops/`: the operator side: Prometheus text, JSON status, health,
//!   readiness, the status page (`ops/ui/`), the loopback-host rule.
//! - `process`: the standard process metrics (`/proc`, Win32).
//! - `sys/`: every call to the operating system, its Unix and its Windows
//!   side (descriptors, stop signals, detaching, local time, service
//!   names, users, the held log file, process readings).
//! - `scale`: `--redis` and `--history`: the bus a mode publishes through.

mod app;
mod background;
mod channels;
mod cli;
mod demo;
mod exit;
mod go;
mod jwt;
mod log;
mod net;
mod ops;
mod process;
mod scale;
mod sys;

/// The parsers, for the property tests and fuzz targets only: not an API.
#[doc(hidden)]
pub mod fuzz {
    pub mod control {
        pub use crate::channels::control::*;
        pub use crate::net::limits::CONTROL_LINE;
    }
    pub mod demo {
        pub use crate::demo::{limit, message_parts, resume_from};
    }
    pub mod http {
        pub use crate::go::text::scan_int;
        pub use crate::net::form::{body_pairs, go_parse_query, go_unescape};
    }
    pub mod jwt {
        pub use crate::jwt::bearer;
    }
    pub mod token {
        pub use crate::jwt::token::{issue, verify, Invalid};
    }
}

/// `ssehub --help`: each mode with what it replaces.
const USAGE: &str = "\
usage: ssehub <mode> [flags]        ssehub <mode> --help for a mode's flags

modes:
  channels  channel streams by URL path, a text control port and a FIFO
            (drop-in for SSE-Server, Bert Bos's C daemon)
  jwt       per-user streams authorized by JWT, a control API to emit
            (drop-in for chabberwock/sse, Go)
  demo      a numbered test stream with Last-Event-ID resume
            (drop-in for mpetazzoni/sse-server, Go)

  ssehub --version   prints the version";

/// Runs the daemon with `args` (the words after `ssehub`) and returns the
/// process exit code. Blocks until the daemon stops.
pub fn run(args: Vec<String>) -> i32 {
    ssehub_core::runtime::use_every_core();
    let Some((mode, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return exit::USAGE;
    };
    match mode.as_str() {
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            exit::OK
        }
        "-V" | "--version" | "version" => {
            println!("ssehub {}", env!("CARGO_PKG_VERSION"));
            exit::OK
        }
        "channels" => channels::run(rest),
        "demo" => demo::run(rest),
        "jwt" => jwt::run(rest),
        _ => {
            eprintln!("ssehub: unknown mode '{mode}'\n{USAGE}");
            exit::USAGE
        }
    }
}
