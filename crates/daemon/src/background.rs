//! Running in the background (SSE-Server's default without `-n`): this
//! process starts a detached copy of itself in the foreground mode and
//! waits until that copy has bound its ports. Only then does it print
//! `Background process started, process id N` and exit 0; if the copy
//! fails first, its error is printed and its exit code returned. A
//! re-exec rather than `fork`: forking a process whose runtime threads are
//! running is unsafe, and binding before forking would split the setup.

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};

/// Set in the copy's environment: its stderr is the parent's pipe.
const ENV: &str = "SSEHUB_BACKGROUND_CHILD";
/// What the copy writes on that pipe once it serves.
const READY: &[u8] = b"\0ssehub-ready\n";

/// Starts the copy (`args` plus `extra`) and reports as described above.
pub fn detach(mode: &str, args: &[String], extra: &[&str]) -> i32 {
    match spawn_and_wait(mode, args, extra) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ssehub {mode}: cannot start in the background: {e}");
            71
        }
    }
}

fn spawn_and_wait(mode: &str, args: &[String], extra: &[&str]) -> io::Result<i32> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .arg(mode)
        .args(args)
        .args(extra)
        .env(ENV, "1")
        // The copy outlives us by design: it must not follow our death.
        .env_remove("SSEHUB_LAUNCHER_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    crate::sys::detach(&mut command);
    let mut child = command.spawn()?;
    let mut said = Vec::new();
    if let Some(mut pipe) = child.stderr.take() {
        // Ends when the copy is ready (it then lets go of the pipe) or exits.
        let _ = pipe.read_to_end(&mut said);
    }
    if let Some(at) = find(&said, READY) {
        io::stderr().write_all(&said[..at])?;
        println!("Background process started, process id {}", child.id());
        return Ok(0);
    }
    io::stderr().write_all(&said)?;
    let status = child.wait()?;
    Ok(status.code().unwrap_or(71).max(1))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// In the copy: tells the waiting parent that the daemon serves, then lets
/// go of the pipe (stderr goes to /dev/null, or NUL, from here on). Does
/// nothing in a daemon started in the foreground.
pub fn ready() {
    if std::env::var_os(ENV).is_none() {
        return;
    }
    let _ = io::stderr().write_all(READY);
    crate::sys::silence_stderr();
}
