//! The standalone daemon, `ssehub <mode>`: pure Rust on tokio + hyper, one
//! module per mode, each a drop-in for an existing SSE server.
//!
//! - [`body`]: a hub subscription as a streaming hyper response body.
//! - `channels`: the SSE-Server channel daemon (C, Bert Bos).
//! - `jwt`: the JWT hub (Go, chabberwock/sse).
//! - `demo`: the test stream server (Go, mpetazzoni/sse-server).

pub mod body;

/// Usage printed for an unknown or missing mode.
const USAGE: &str =
    "usage: ssehub <channels|jwt|demo> [flags]   (ssehub <mode> --help for a mode's flags)";

/// Runs the daemon with `args` (the words after `ssehub`) and returns the
/// process exit code. Blocks until the daemon stops.
pub fn run(args: Vec<String>) -> i32 {
    let Some((mode, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return 64;
    };
    match mode.as_str() {
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            0
        }
        _ => {
            let _ = rest;
            eprintln!("ssehub: unknown mode '{mode}'\n{USAGE}");
            64
        }
    }
}
