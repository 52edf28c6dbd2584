//! The channels mode's FIFO: created if missing (mode 0600 by default,
//! not SSE-Server's world-writable 0666) and opened read-write, so that
//! writers coming and going never make it report end of file.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use tokio::net::unix::pipe;

/// Why the FIFO could not be set up (and the exit code for it).
#[derive(Debug)]
pub enum FifoError {
    /// It did not exist and could not be created (EX_CANTCREAT).
    Create(io::Error),
    /// The path exists but is not a FIFO (EX_NOINPUT).
    NotAFifo,
    /// It could not be opened (EX_NOINPUT).
    Open(io::Error),
}

impl FifoError {
    pub fn exit_code(&self) -> i32 {
        match self {
            FifoError::Create(_) => 73,
            FifoError::NotAFifo | FifoError::Open(_) => 66,
        }
    }
}

impl std::fmt::Display for FifoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FifoError::Create(e) => write!(f, "cannot create it: {e}"),
            FifoError::NotAFifo => write!(f, "it exists and is not a FIFO"),
            FifoError::Open(e) => write!(f, "cannot open it: {e}"),
        }
    }
}

/// Creates the FIFO at `path` with `mode` if it is missing, then opens it.
/// Must be called inside the tokio runtime.
pub fn open(path: &str, mode: u32) -> Result<pipe::Receiver, FifoError> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.file_type().is_fifo() => return Err(FifoError::NotAFifo),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(path, mode)?,
        Err(e) => return Err(FifoError::Open(e)),
    }
    open_read_write(path)
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
pub fn identity(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The permission bits of an existing FIFO that every user may write to
/// (a FIFO left by SSE-Server is 0666): anyone could then publish.
pub fn world_writable(path: &str) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o002 != 0).then_some(mode)
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
            let mut rx = open(&path, 0o600).expect("fifo");
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
