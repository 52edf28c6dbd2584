//! The FIFO on Unix: created if missing (mode 0600 by default, not
//! SSE-Server's world-writable 0666) and opened read-write, so that
//! writers coming and going never make it report end of file; opened
//! again when its path is removed or replaced.

use super::super::control;
use super::super::Channels;
use super::FifoError;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::unix::pipe;

/// How often the FIFO's path is checked for a replaced file.
const FIFO_CHECK: Duration = Duration::from_secs(1);

/// The opened FIFO, and the mode to make it with again.
pub(in super::super) struct Fifo {
    rx: pipe::Receiver,
    mode: u32,
}

/// Every `--fifo-mode` applies.
pub(in super::super) const MODE_UNSUPPORTED: Option<&str> = None;

/// Creates the FIFO at `path` with `mode` if it is missing, then opens it.
/// Must be called inside the tokio runtime.
pub(in super::super) fn open(path: &str, mode: u32) -> Result<Fifo, FifoError> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.file_type().is_fifo() => return Err(FifoError::NotAFifo),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(path, mode)?,
        Err(e) => return Err(FifoError::Open(e)),
    }
    let rx = open_read_write(path)?;
    Ok(Fifo { rx, mode })
}

/// Opened for reading and writing: we are a writer ourselves, so the reader
/// never sees end-of-file when the last publisher closes.
#[cfg(target_os = "linux")]
fn open_read_write(path: &str) -> Result<pipe::Receiver, FifoError> {
    pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(path)
        .map_err(FifoError::Open)
}

/// Elsewhere (macOS, the BSDs) tokio has no `read_write` option: the FIFO
/// is opened O_RDWR | O_NONBLOCK with std (which these systems allow for a
/// FIFO, as Linux does), then handed to tokio.
#[cfg(not(target_os = "linux"))]
fn open_read_write(path: &str) -> Result<pipe::Receiver, FifoError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(FifoError::Open)?;
    pipe::Receiver::from_file(file).map_err(FifoError::Open)
}

/// Which file `path` names now (device and inode), to notice that the
/// FIFO was removed or replaced; `None` when nothing is there.
fn identity(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The permission bits of an existing FIFO that every user may write to
/// (a FIFO left by SSE-Server is 0666): anyone could then publish.
pub(in super::super) fn world_writable(path: &str) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o002 != 0).then_some(mode)
}

/// Reads the FIFO until shutdown. When its path is removed or replaced
/// (a new FIFO made there), the new one is opened: writers to it would
/// otherwise hang while the old file is read forever.
pub(in super::super) async fn read(ch: Arc<Channels>, mut fifo: Fifo, id: u64, path: String) {
    loop {
        let opened = identity(&path);
        let replaced = async {
            loop {
                tokio::time::sleep(FIFO_CHECK).await;
                if identity(&path) != opened {
                    return;
                }
            }
        };
        let lines = control::read_lines(fifo.rx, None, |input| {
            ch.control_input(id, &path, input, false)
        });
        tokio::select! {
            ended = lines => return ch.log_ended(id, &path, ended),
            _ = replaced => {}
            _ = ch.shutdown.wait() => return,
        }
        fifo = match reopen(&ch, &path, fifo.mode).await {
            Some(fifo) => fifo,
            None => return,
        };
    }
}

/// Opens the FIFO at `path` again (making it with `mode` if it is gone),
/// retrying until it works or the daemon stops.
async fn reopen(ch: &Channels, path: &str, mode: u32) -> Option<Fifo> {
    loop {
        match open(path, mode) {
            Ok(fifo) => {
                ch.log.line(format_args!(
                    "FIFO {path} was replaced; reading the new one"
                ));
                return Some(fifo);
            }
            Err(e) => ch
                .log
                .line(format_args!("Warning: FIFO file {path}: {e}; retrying")),
        }
        tokio::select! {
            _ = tokio::time::sleep(FIFO_CHECK) => {}
            _ = ch.shutdown.wait() => return None,
        }
    }
}

fn create(path: &str, mode: u32) -> Result<(), FifoError> {
    let c_path = CString::new(Path::new(path).as_os_str().as_bytes())
        .map_err(|e| FifoError::Create(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    // SAFETY: mkfifo reads one NUL-terminated path.
    if unsafe { libc::mkfifo(c_path.as_ptr(), mode as libc::mode_t) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(FifoError::Create(e));
        }
    }
    // The umask may have narrowed or widened nothing; set exactly `mode`.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(FifoError::Create)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn creates_a_private_fifo_and_reads_from_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let path = std::env::temp_dir().join(format!("ssehub-fifo-{}", std::process::id()));
        let path = path.to_string_lossy().into_owned();
        let _ = std::fs::remove_file(&path);
        rt.block_on(async {
            let mut rx = open(&path, 0o600).expect("fifo").rx;
            let meta = std::fs::metadata(&path).unwrap();
            assert!(meta.file_type().is_fifo());
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            assert_eq!(world_writable(&path), None);
            std::fs::write(&path, b"a=1\n").unwrap();
            let mut buf = [0u8; 4];
            rx.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"a=1\n");
        });
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"plain").unwrap();
        rt.block_on(async {
            assert!(matches!(open(&path, 0o600), Err(FifoError::NotAFifo)));
        });
        std::fs::remove_file(&path).unwrap();
    }
}
