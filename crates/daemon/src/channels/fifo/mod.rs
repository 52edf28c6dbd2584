//! The channels mode's FIFO: a second way in for control lines, for
//! local programs. One side per system:
//! - `unix.rs`: a FIFO file (`mkfifo`), made private, read by one reader
//!   for every writer, opened again when its path is replaced.
//! - `windows.rs`: a named pipe (`\\.\pipe\NAME`), one instance a
//!   writer, a bounded number at once.
//!
//! Both give: `open(path, mode)` (at start, so a failure stops it),
//! `read(ch, fifo, id, path)` (until shutdown), `world_writable(path)`
//! (the start-up warning) and `MODE_UNSUPPORTED` (why `--fifo-mode`
//! cannot apply, where it cannot).

use std::io;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(super) use unix::{open, read, world_writable, MODE_UNSUPPORTED};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(super) use windows::{open, read, world_writable, MODE_UNSUPPORTED};

/// Why the FIFO could not be set up (and the exit code for it).
#[derive(Debug)]
pub(super) enum FifoError {
    /// It did not exist and could not be created (EX_CANTCREAT).
    Create(io::Error),
    /// The path exists but is not a FIFO (EX_NOINPUT).
    #[cfg(unix)]
    NotAFifo,
    /// It could not be opened (EX_NOINPUT).
    #[cfg(unix)]
    Open(io::Error),
    /// Windows: not a name a named pipe can have (EX_USAGE).
    #[cfg(windows)]
    NotAPipeName,
}

impl FifoError {
    pub(super) fn exit_code(&self) -> i32 {
        match self {
            FifoError::Create(_) => 73,
            #[cfg(unix)]
            FifoError::NotAFifo | FifoError::Open(_) => 66,
            #[cfg(windows)]
            FifoError::NotAPipeName => crate::exit::USAGE,
        }
    }
}

impl std::fmt::Display for FifoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FifoError::Create(e) => write!(f, "cannot create it: {e}"),
            #[cfg(unix)]
            FifoError::NotAFifo => write!(f, "it exists and is not a FIFO"),
            #[cfg(unix)]
            FifoError::Open(e) => write!(f, "cannot open it: {e}"),
            #[cfg(windows)]
            FifoError::NotAPipeName => write!(
                f,
                "on Windows the FIFO is a named pipe: give a NAME without \\ or / (served as \\\\.\\pipe\\NAME), or \\\\.\\pipe\\NAME"
            ),
        }
    }
}
