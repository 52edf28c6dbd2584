//! What the daemon asks of the operating system, each in one place with
//! its Unix side (`unix.rs`) and its Windows side (`windows.rs`). Outside
//! this folder only the channels mode's FIFO (`channels/fifo/`) and the
//! binary's link to the npm launcher (`main.rs`, Linux) name one.
//!
//! - `open_file_limit`: how many descriptors (handles) the process may
//!   open, for the client budget.
//! - `stop_signals`: what asks the daemon to stop (SIGTERM and SIGINT;
//!   Windows' console events).
//! - `detach` / `silence_stderr`: a background copy leaves our session
//!   (console), then lets go of the pipe its parent waits on.
//! - `append_held`: a log file no second daemon writes at once.
//! - `local_time`: the wall clock and its offset, for log stamps.
//! - `port_by_name`: a TCP service name (`http-alt`) as a port.
//! - `switch_user`: dropping root for `-U user`.
//! - `process_reading`: CPU, memory and descriptors for `/metrics`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

/// The local wall-clock time, to the second, and its offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// East of UTC, in minutes (`+0100` is 60).
    pub offset_minutes: i32,
}

/// Why `switch_user` did not switch.
#[derive(Debug)]
pub(crate) enum SwitchError {
    /// No such user.
    #[cfg(unix)]
    Unknown,
    /// The system refused (not root, or a failing call).
    #[cfg(unix)]
    Refused(std::io::Error),
    /// The system has no such thing (Windows: run the service as that
    /// account instead).
    #[cfg(windows)]
    Unsupported(&'static str),
}

/// One reading of this process, for the standard process metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessReading {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    /// Since the Unix epoch, in seconds.
    pub start_time: f64,
}
