//! The standard process metrics (the names Prometheus client libraries
//! use): CPU time, resident memory, open and allowed descriptors, start
//! time. Read from `/proc` on Linux; elsewhere they are left out.

use std::fmt::Write;

/// The process metrics as Prometheus text, or nothing where `/proc` is
/// not there.
pub fn prometheus() -> String {
    let mut out = String::new();
    let Some(p) = read() else { return out };
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    metric(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
        p.cpu_seconds,
    );
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size, in bytes.",
        p.rss_bytes as f64,
    );
    metric(
        "process_open_fds",
        "gauge",
        "Open file descriptors.",
        p.open_fds as f64,
    );
    metric(
        "process_max_fds",
        "gauge",
        "The most file descriptors the process may open.",
        p.max_fds as f64,
    );
    metric(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        p.start_time,
    );
    out
}

/// One reading of the process.
struct Process {
    cpu_seconds: f64,
    rss_bytes: u64,
    open_fds: usize,
    max_fds: u64,
    start_time: f64,
}

fn read() -> Option<Process> {
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
    Some(Process {
        cpu_seconds,
        rss_bytes: rss_pages * page,
        open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count(),
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
    #[test]
    fn the_process_metrics_are_read_and_plausible() {
        let text = super::prometheus();
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .expect(name);
            line.split(' ').nth(1).unwrap().parse().unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 3.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 3600.0,
            "{started} vs {now}"
        );
        assert!(value("process_cpu_seconds_total") >= 0.0);
    }
}
