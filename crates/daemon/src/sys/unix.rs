//! The Unix side of [`super`]: libc, `/proc` on Linux.

use super::{LocalTime, ProcessReading, SwitchError};
use std::future::Future;
use std::io;
use std::process::Command;

/// How many descriptors this process may open: the soft limit, first
/// raised to the hard one (as Go's runtime does at start).
pub(crate) fn open_file_limit() -> usize {
    // SAFETY: getrlimit/setrlimit read and write one local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    }
}

/// Completes with the name of the first stop signal: SIGTERM or SIGINT.
/// Must be called inside the tokio runtime.
pub(crate) fn stop_signals() -> io::Result<impl Future<Output = &'static str> + Send> {
    use tokio::signal::unix::{signal, SignalKind};
    // Node installs its own SIGTERM/SIGINT handlers (they reset the tty and
    // re-raise, killing the process); tokio's handler would chain to them.
    // Restore the defaults first so that only tokio's handler runs.
    // SAFETY: setting a disposition to SIG_DFL has no memory effects.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// The background copy leaves our session, so that closing the terminal
/// does not stop it.
pub(crate) fn detach(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// Points stderr at /dev/null (the parent's pipe is let go).
pub(crate) fn silence_stderr() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto fd 2 replaces our stderr; no memory involved.
        unsafe { libc::dup2(null.as_raw_fd(), 2) };
    }
}

/// Opens `path` for appending (made if missing) under an exclusive,
/// non-blocking `flock`; `None` when another process holds it.
pub(crate) fn append_held(path: &str) -> io::Result<Option<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The local time now, as `localtime_r` (the TZ rules of libc) gives it.
pub(crate) fn local_time() -> LocalTime {
    // SAFETY: time and localtime_r write only into the locals given.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        offset_minutes: (tm.tm_gmtoff / 60) as i32,
    }
}

/// A TCP service name's port, as `getservbyname` (`/etc/services`,
/// NSS) knows it.
pub(crate) fn port_by_name(name: &str) -> Option<u16> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getservbyname reads two NUL-terminated strings and returns
    // a pointer to static storage (or NULL), read at once.
    let port = unsafe {
        let ent = libc::getservbyname(name.as_ptr(), c"tcp".as_ptr());
        if ent.is_null() {
            return None;
        }
        (*ent).s_port
    };
    Some(u16::from_be(port as u16))
}

/// Drops root: the group and user of `name`. Returns the uid.
pub(crate) fn switch_user(name: &str) -> Result<u32, SwitchError> {
    let c_name = std::ffi::CString::new(name).map_err(|_| SwitchError::Unknown)?;
    // SAFETY: getpwnam returns static storage (or NULL), read at once;
    // setgid/setuid change credentials only (glibc applies them to every
    // thread of the process).
    unsafe {
        let pw = libc::getpwnam(c_name.as_ptr());
        if pw.is_null() {
            return Err(SwitchError::Unknown);
        }
        let (uid, gid) = ((*pw).pw_uid, (*pw).pw_gid);
        if libc::setgroups(0, std::ptr::null()) != 0 && libc::getuid() == 0 {
            return Err(SwitchError::Refused(io::Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
            return Err(SwitchError::Refused(io::Error::last_os_error()));
        }
        Ok(uid)
    }
}

/// The process read from `/proc` (Linux); `None` where it is not there.
pub(crate) fn process_reading() -> Option<ProcessReading> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which may hold spaces and ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf and getrlimit read process-wide values into locals.
    let (ticks_per_s, page, max_fds) = unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        (
            libc::sysconf(libc::_SC_CLK_TCK) as f64,
            libc::sysconf(libc::_SC_PAGESIZE) as u64,
            lim.rlim_cur,
        )
    };
    // utime and stime are fields 14 and 15 of stat(5), starttime 22; the
    // slice starts at field 3.
    let cpu_seconds = (tick(11)? + tick(12)?) / ticks_per_s;
    let started_after_boot = tick(19)? / ticks_per_s;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(ProcessReading {
        cpu_seconds,
        rss_bytes: rss_pages * page,
        open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count() as u64,
        max_fds,
        start_time: boot_time()? + started_after_boot,
    })
}

/// The boot time since the epoch (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_ports() {
        // /etc/services is not on every machine (minimal containers).
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(port_by_name("http"), Some(80));
        }
        assert_eq!(port_by_name("no-such-service-here"), None);
    }
}
