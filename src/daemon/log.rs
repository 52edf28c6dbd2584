//! Log lines: where they go (nowhere, stdout, stderr or an exclusively
//! locked file) and the timestamp each mode's original put in front.

use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Where log lines are written.
pub enum Sink {
    /// Logging is off (a background daemon without `-l`).
    Off,
    Stdout,
    Stderr,
    /// An appended file holding an exclusive `flock`.
    File(File),
}

/// The prefix in front of every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// No prefix (the demo server prints bare lines).
    Bare,
    /// `2026-11-22 02:02:36+0000 ` (SSE-Server, `strftime("%F %T%z")`).
    Iso,
    /// `2026/11/22 02:02:36 ` (Go's `log` package).
    GoLog,
}

/// A line logger shared by every task of one mode.
pub struct Logger {
    /// The destination; a mutex keeps lines whole.
    sink: Mutex<Sink>,
    /// The timestamp style.
    stamp: Stamp,
    /// Set while writes fail (disk full, ...): the failure is reported on
    /// stderr once, not once per line, and again after a recovery.
    failing: AtomicBool,
}

/// Why a log file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// It could not be opened for appending.
    Open(io::Error),
    /// Another process holds its lock.
    Locked,
}

impl Logger {
    pub fn new(sink: Sink, stamp: Stamp) -> Logger {
        Logger {
            sink: Mutex::new(sink),
            stamp,
            failing: AtomicBool::new(false),
        }
    }

    /// Whether lines go anywhere; lets callers skip building costly lines.
    pub fn enabled(&self) -> bool {
        !matches!(*self.lock(), Sink::Off)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one line (a newline is added). A write error never stops the
    /// server (a full disk, a removed file): it is reported once on stderr.
    pub fn line(&self, msg: impl Display) {
        let mut sink = self.lock();
        if matches!(*sink, Sink::Off) {
            return;
        }
        let text = match self.stamp {
            Stamp::Bare => format!("{msg}\n"),
            Stamp::Iso => format!("{} {msg}\n", local_time(c"%F %T%z")),
            Stamp::GoLog => format!("{} {msg}\n", local_time(c"%Y/%m/%d %H:%M:%S")),
        };
        let written = match &mut *sink {
            Sink::Off => Ok(()),
            Sink::Stdout => io::stdout().lock().write_all(text.as_bytes()),
            Sink::Stderr => io::stderr().lock().write_all(text.as_bytes()),
            Sink::File(f) => f.write_all(text.as_bytes()),
        };
        self.note(written);
    }

    /// Reports the first failed write of a run of failures, and recovery.
    fn note(&self, written: io::Result<()>) {
        match written {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    let _ = writeln!(io::stderr(), "ssehub: log writes work again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    let _ = writeln!(
                        io::stderr(),
                        "ssehub: cannot write the log ({e}); serving on, lines are lost until it works again"
                    );
                }
            }
        }
    }
}

/// Opens `path` for appending and takes an exclusive, non-blocking lock.
pub fn open_locked(path: &str) -> Result<File, OpenError> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(OpenError::Open)?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(OpenError::Locked);
    }
    Ok(file)
}

/// The local time formatted by `strftime`.
pub fn local_time(format: &std::ffi::CStr) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: time/localtime_r/strftime write only into the locals given,
    // and strftime is bounded by buf's length.
    let n = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        libc::strftime(buf.as_mut_ptr().cast(), buf.len(), format.as_ptr(), &tm)
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_stamp_has_the_sse_server_shape() {
        let s = local_time(c"%F %T%z");
        // 2026-11-22 02:02:36+0000
        assert_eq!(s.len(), 24, "{s}");
        assert_eq!(&s[4..5], "-");
        assert_eq!(&s[10..11], " ");
        assert!(s[19..].starts_with('+') || s[19..].starts_with('-'));
    }

    #[test]
    fn a_full_disk_is_reported_once_and_never_stops_logging() {
        let Ok(full) = OpenOptions::new().append(true).open("/dev/full") else {
            return; // no /dev/full on this system
        };
        let log = Logger::new(Sink::File(full), Stamp::Iso);
        log.line("lost");
        assert!(log.failing.load(Ordering::Relaxed));
        log.line("lost too"); // no panic, no second report
        assert!(log.enabled());
    }

    #[test]
    fn a_second_lock_on_the_same_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("ssehub-log-{}", std::process::id()));
        let path = dir.to_string_lossy().into_owned();
        let first = open_locked(&path).expect("first lock");
        assert!(matches!(open_locked(&path), Err(OpenError::Locked)));
        drop(first);
        assert!(open_locked(&path).is_ok());
        let _ = std::fs::remove_file(&path);
    }
}
