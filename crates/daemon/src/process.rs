//! The standard process metrics (the names Prometheus client libraries
//! use): CPU time, resident memory, open and allowed descriptors, start
//! time. Read by `sys::process_reading`: from `/proc` on Linux, from
//! Win32 on Windows (handles for descriptors); elsewhere they are left out.

use std::fmt::Write;

/// The process metrics as Prometheus text, or nothing where they cannot
/// be read.
pub fn prometheus() -> String {
    let mut out = String::new();
    let Some(p) = crate::sys::process_reading() else {
        return out;
    };
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
