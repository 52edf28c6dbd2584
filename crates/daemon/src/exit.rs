//! How a mode stops before serving: one error type for every mode, and the
//! exit codes DAEMON.md documents (the BSD `sysexits.h` names SSE-Server
//! uses).

/// Stopped by `halt` or a signal, or `--help`.
pub const OK: i32 = 0;
/// A bad flag or flag value (`EX_USAGE`).
pub const USAGE: i32 = 64;
/// A bad line in a config file (`EX_DATAERR`).
pub const DATA: i32 = 65;
/// A file that cannot be read (`EX_NOINPUT`).
pub const NO_INPUT: i32 = 66;
/// An unknown user for `-U` (`EX_NOUSER`).
#[cfg(unix)]
pub const NO_USER: i32 = 67;
/// TLS files unusable, or privileges not dropped (`EX_UNAVAILABLE`).
pub const UNAVAILABLE: i32 = 69;
/// An internal setup failure: signals, a runtime, a child (`EX_OSERR`).
pub const OS: i32 = 71;
/// A port or FIFO that cannot be created (`EX_CANTCREAT`).
pub const CANT_CREATE: i32 = 73;
/// The log file is locked by another process (`EX_TEMPFAIL`).
pub const TEMP_FAIL: i32 = 75;

/// A reason to stop before serving: the one-line message and exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: i32,
    pub msg: String,
}

/// A [`Fail`] with `code` and `msg`.
pub fn fail(code: i32, msg: impl Into<String>) -> Fail {
    Fail {
        code,
        msg: msg.into(),
    }
}

impl Fail {
    /// Prints the message as `ssehub <mode>: <msg>` and gives the code.
    pub fn report(&self, mode: &str) -> i32 {
        eprintln!("ssehub {mode}: {}", self.msg);
        self.code
    }
}
