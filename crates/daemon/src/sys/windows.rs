//! The Windows side of [`super`]: Win32 through `windows-sys`.

use super::{LocalTime, ProcessReading, SwitchError};
use std::future::Future;
use std::io;
use std::process::Command;
use windows_sys::Win32::Foundation::{FILETIME, SYSTEMTIME};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

/// Handles one process may hold ("Pushing the Limits of Windows:
/// Handles"): Windows has no descriptor limit below it to raise; memory
/// bounds the clients first.
const HANDLE_LIMIT: usize = 1 << 24;

/// How many sockets this process may open: Windows' handle limit.
pub(crate) fn open_file_limit() -> usize {
    HANDLE_LIMIT
}

/// Completes with the name of the first console event that asks a
/// process to stop: Ctrl+C, Ctrl+Break, the console window closed, the
/// system shutting down. (Closing and shutdown give the process a few
/// seconds: the drain is cut short there.) Must be called inside the
/// tokio runtime.
pub(crate) fn stop_signals() -> io::Result<impl Future<Output = &'static str> + Send> {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_shutdown};
    let mut c = ctrl_c()?;
    let mut brk = ctrl_break()?;
    let mut close = ctrl_close()?;
    let mut shutdown = ctrl_shutdown()?;
    Ok(async move {
        tokio::select! {
            _ = c.recv() => "CTRL_C_EVENT",
            _ = brk.recv() => "CTRL_BREAK_EVENT",
            _ = close.recv() => "CTRL_CLOSE_EVENT",
            _ = shutdown.recv() => "CTRL_SHUTDOWN_EVENT",
        }
    })
}

/// The background copy has no console and its own process group, so that
/// closing the console or its Ctrl+C does not stop it.
pub(crate) fn detach(command: &mut Command) {
    use std::os::windows::process::CommandExt;
    use windows_sys::Win32::System::Threading::{CREATE_NEW_PROCESS_GROUP, DETACHED_PROCESS};
    command.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
}

/// Points the standard error handle at NUL and closes the parent's pipe
/// (its reader then sees the end); std looks the handle up on every write.
pub(crate) fn silence_stderr() {
    use std::os::windows::io::IntoRawHandle;
    use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::Console::{GetStdHandle, SetStdHandle, STD_ERROR_HANDLE};
    if let Ok(nul) = std::fs::OpenOptions::new().write(true).open("NUL") {
        // The NUL handle stays open for the life of the process.
        let handle = nul.into_raw_handle();
        // SAFETY: the pipe's handle is ours (inherited as stderr) and is
        // closed once nothing refers to it; the NUL handle is never closed.
        unsafe {
            let pipe = GetStdHandle(STD_ERROR_HANDLE);
            let real = !pipe.is_null() && pipe != INVALID_HANDLE_VALUE;
            if SetStdHandle(STD_ERROR_HANDLE, handle) != 0 && real {
                CloseHandle(pipe);
            }
        }
    }
}

/// Opens `path` for appending (made if missing), sharing it with readers
/// and renamers but no other writer; `None` when another process writes
/// it. (Not a lock: a Windows lock is mandatory, and would keep operators
/// from reading the log.)
pub(crate) fn append_held(path: &str) -> io::Result<Option<std::fs::File>> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Foundation::ERROR_SHARING_VIOLATION;
    use windows_sys::Win32::Storage::FileSystem::{FILE_SHARE_DELETE, FILE_SHARE_READ};
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_DELETE)
        .open(path);
    match opened {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION as i32) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The local time now, with the offset of the zone's current rule
/// (standard or daylight time).
pub(crate) fn local_time() -> LocalTime {
    use windows_sys::Win32::System::SystemInformation::GetLocalTime;
    use windows_sys::Win32::System::SystemServices::{
        TIME_ZONE_ID_DAYLIGHT, TIME_ZONE_ID_STANDARD,
    };
    use windows_sys::Win32::System::Time::{GetTimeZoneInformation, TIME_ZONE_INFORMATION};
    // SAFETY: both calls fill one local struct each.
    let (st, zone, tz): (SYSTEMTIME, u32, TIME_ZONE_INFORMATION) = unsafe {
        let mut st = std::mem::zeroed();
        GetLocalTime(&mut st);
        let mut tz = std::mem::zeroed();
        let zone = GetTimeZoneInformation(&mut tz);
        (st, zone, tz)
    };
    // Bias is minutes west of UTC (UTC = local + bias).
    let bias = tz.Bias
        + match zone {
            TIME_ZONE_ID_DAYLIGHT => tz.DaylightBias,
            TIME_ZONE_ID_STANDARD => tz.StandardBias,
            _ => 0,
        };
    LocalTime {
        year: i32::from(st.wYear),
        month: u32::from(st.wMonth),
        day: u32::from(st.wDay),
        hour: u32::from(st.wHour),
        minute: u32::from(st.wMinute),
        second: u32::from(st.wSecond),
        offset_minutes: -bias,
    }
}

/// A TCP service name's port, as Winsock's `getservbyname` (the system's
/// `drivers\etc\services`) knows it.
pub(crate) fn port_by_name(name: &str) -> Option<u16> {
    use windows_sys::Win32::Networking::WinSock::{getservbyname, WSAStartup, WSADATA};
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: WSAStartup fills one local struct (and counts a reference,
    // kept for the process's life); getservbyname reads two NUL-terminated
    // strings and returns per-thread storage (or NULL), read at once.
    let port = unsafe {
        let mut data: WSADATA = std::mem::zeroed();
        if WSAStartup(0x0202, &mut data) != 0 {
            return None;
        }
        let ent = getservbyname(name.as_ptr().cast(), c"tcp".as_ptr().cast());
        if ent.is_null() {
            return None;
        }
        (*ent).s_port
    };
    Some(u16::from_be(port as u16))
}

/// Windows has no `setuid`: a service runs as the account it is given.
pub(crate) fn switch_user(_name: &str) -> Result<u32, SwitchError> {
    Err(SwitchError::Unsupported(
        "Windows has no setuid; run the daemon as that account (the service's Log On account, or runas)",
    ))
}

/// CPU times, working set, handle count and start time, as Prometheus'
/// Go client reads them on Windows.
pub(crate) fn process_reading() -> Option<ProcessReading> {
    use windows_sys::Win32::System::ProcessStatus::{
        K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS,
    };
    use windows_sys::Win32::System::Threading::{GetProcessHandleCount, GetProcessTimes};
    // SAFETY: each call reads this process (a pseudo-handle that needs no
    // closing) into locals of the sizes given.
    unsafe {
        let me = GetCurrentProcess();
        let zero = || FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut created, mut exited, mut kernel, mut user) = (zero(), zero(), zero(), zero());
        if GetProcessTimes(me, &mut created, &mut exited, &mut kernel, &mut user) == 0 {
            return None;
        }
        let mut memory: PROCESS_MEMORY_COUNTERS = std::mem::zeroed();
        let size = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
        if K32GetProcessMemoryInfo(me, &mut memory, size) == 0 {
            return None;
        }
        let mut handles = 0u32;
        if GetProcessHandleCount(me, &mut handles) == 0 {
            return None;
        }
        Some(ProcessReading {
            cpu_seconds: (ticks(kernel) + ticks(user)) as f64 / 1e7,
            rss_bytes: memory.WorkingSetSize as u64,
            open_fds: u64::from(handles),
            max_fds: HANDLE_LIMIT as u64,
            start_time: since_unix_epoch(created),
        })
    }
}

/// A FILETIME's 100-nanosecond ticks.
fn ticks(t: FILETIME) -> u64 {
    (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)
}

/// A FILETIME (ticks since 1601) in seconds since 1970.
fn since_unix_epoch(t: FILETIME) -> f64 {
    const EPOCH_DIFFERENCE: u64 = 116_444_736_000_000_000;
    ticks(t).saturating_sub(EPOCH_DIFFERENCE) as f64 / 1e7
}
