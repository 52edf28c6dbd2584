//! The FIFO on Windows: a named pipe. `-F NAME` serves `\\.\pipe\NAME`
//! (or the `\\.\pipe\...` name given), inbound only and local only. Each
//! writer gets an instance of its own, read to its end as a controller's
//! lines are; `FIFO_WRITERS` instances wait for writers at once. Who may
//! write is the pipe's default security: its creator, SYSTEM and
//! administrators (there is no mode to set).

use super::super::control;
use super::super::Channels;
use super::FifoError;
use crate::net::limits::FIFO_WRITERS;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use tokio::task::JoinSet;
use windows_sys::Win32::Foundation::ERROR_NO_DATA;

/// The first pipe instance, made at start, and the full name.
pub(in super::super) struct Fifo {
    name: String,
    first: NamedPipeServer,
}

/// Why `--fifo-mode` does not apply here.
pub(in super::super) const MODE_UNSUPPORTED: Option<&str> = Some(
    "the FIFO is a named pipe on Windows, with no mode: only its creator, SYSTEM and administrators may write to it",
);

/// How long to wait before making an instance again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// The pipe's full name for `-F path`.
fn pipe_name(path: &str) -> Option<String> {
    const PREFIX: &str = r"\\.\pipe\";
    let bare = |s: &str| !s.is_empty() && !s.contains(['\\', '/']);
    match path.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => {
            bare(&path[PREFIX.len()..]).then(|| path.to_string())
        }
        _ => bare(path).then(|| format!("{PREFIX}{path}")),
    }
}

/// Makes the pipe's first instance: failing when another process serves
/// the name, so two daemons never split one FIFO's writers. Must be
/// called inside the tokio runtime.
pub(in super::super) fn open(path: &str, _mode: u32) -> Result<Fifo, FifoError> {
    let name = pipe_name(path).ok_or(FifoError::NotAPipeName)?;
    let first = options()
        .first_pipe_instance(true)
        .create(&name)
        .map_err(FifoError::Create)?;
    Ok(Fifo { name, first })
}

fn options() -> ServerOptions {
    let mut options = ServerOptions::new();
    options.access_outbound(false).reject_remote_clients(true);
    options
}

/// A named pipe has no mode bits to warn about.
pub(in super::super) fn world_writable(_path: &str) -> Option<u32> {
    None
}

/// Serves the pipe until shutdown with `FIFO_WRITERS` instances, each
/// waiting for a writer, reading it to its end, then made again. Several
/// are kept waiting because a writer that finds none gets
/// `ERROR_PIPE_BUSY` (and many, `echo` or Node's `fs` among them, do not
/// wait and retry).
pub(in super::super) async fn read(ch: Arc<Channels>, fifo: Fifo, id: u64, path: String) {
    let mut first = Some(fifo.first);
    let mut instances = JoinSet::new();
    for _ in 0..FIFO_WRITERS {
        let (ch, name, path) = (ch.clone(), fifo.name.clone(), path.clone());
        instances.spawn(serve_instance(ch, name, first.take(), id, path));
    }
    while instances.join_next().await.is_some() {}
}

/// One instance after another (starting with `made`, if given): waits for
/// a writer and reads its lines until it closes, until shutdown.
async fn serve_instance(
    ch: Arc<Channels>,
    name: String,
    mut made: Option<NamedPipeServer>,
    id: u64,
    path: String,
) {
    loop {
        let instance = match made.take() {
            Some(instance) => instance,
            None => match next_instance(&ch, &name).await {
                Some(instance) => instance,
                None => return,
            },
        };
        tokio::select! {
            connected = instance.connect() => match connected {
                // ERROR_NO_DATA: the writer came and went before it was
                // seen. What it wrote is read all the same.
                Err(e) if e.raw_os_error() != Some(ERROR_NO_DATA as i32) => ch
                    .log
                    .line(format_args!("Warning: FIFO {name}: {e}")),
                _ => {}
            },
            _ = ch.shutdown.wait() => return,
        }
        let lines = control::read_lines(instance, None, |input| {
            ch.control_input(id, &path, input, false)
        });
        tokio::select! {
            ended = lines => ch.log_ended(id, &path, ended),
            _ = ch.shutdown.wait() => return,
        }
    }
}

/// Another instance of the pipe, retried until it is made or the daemon
/// stops.
async fn next_instance(ch: &Channels, name: &str) -> Option<NamedPipeServer> {
    loop {
        match options().create(name) {
            Ok(server) => return Some(server),
            Err(e) => ch
                .log
                .line(format_args!("Warning: FIFO {name}: {e}; retrying")),
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = ch.shutdown.wait() => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pipe_name;

    #[test]
    fn pipe_names() {
        assert_eq!(pipe_name("sse").as_deref(), Some(r"\\.\pipe\sse"));
        assert_eq!(pipe_name(r"\\.\pipe\sse").as_deref(), Some(r"\\.\pipe\sse"));
        assert_eq!(pipe_name(r"\\.\PIPE\sse").as_deref(), Some(r"\\.\PIPE\sse"));
        assert_eq!(pipe_name(r"C:\tmp\sse.fifo"), None);
        assert_eq!(pipe_name("/tmp/sse.fifo"), None);
        assert_eq!(pipe_name(""), None);
        assert_eq!(pipe_name(r"\\.\pipe\"), None);
    }
}
