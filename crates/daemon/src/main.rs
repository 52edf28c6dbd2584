//! `ssehub <mode> [flags]`: the standalone daemon as a plain binary, for
//! operators and for the npm launcher (`bin/ssehub.js`), which only
//! spawns it.

fn main() {
    follow_launcher();
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(ssehub_daemon::run(args));
}

/// Started by the npm launcher (which names itself in
/// `SSEHUB_LAUNCHER_PID`): stop when it dies, even by SIGKILL, which it
/// cannot pass on. SIGTERM, so the stop is as graceful as an operator's.
#[cfg(target_os = "linux")]
fn follow_launcher() {
    let Some(pid) = std::env::var("SSEHUB_LAUNCHER_PID")
        .ok()
        .and_then(|p| p.parse::<libc::pid_t>().ok())
    else {
        return;
    };
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid change or read only this
    // process's attributes.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != pid {
            // The launcher died before the link was made: stopped, as by
            // a signal.
            std::process::exit(0);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn follow_launcher() {}
