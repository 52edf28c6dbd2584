//! Log lines: where they go (nowhere, stdout, stderr or an exclusively
//! locked file), the timestamp each mode's original put in front, and how
//! they get there without ever delaying a delivery.
//!
//! A line is formatted by the caller and handed to one writer thread over
//! a bounded queue, never written on a runtime worker: a sink that blocks
//! (stdout on a pipe nobody reads, a slow disk) stalls only that thread.
//! The thread writes through a buffer, flushed when the queue runs dry and
//! at least every 100 ms, and at exit. When the queue is full, lines are
//! dropped and counted (`dropped()`, a metric), and the writer says so in
//! one summary line once it catches up. Lines are whole: one writer, and
//! every control character a client could put in a line (CR, LF, ...) is
//! written escaped, so no client can forge a line.

use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where log lines are written.
pub enum Sink {
    /// Logging is off (a background daemon without `-l`).
    Off,
    Stdout,
    Stderr,
    /// An appended file no other daemon writes (`open_locked`).
    File(File),
}

/// The prefix in front of every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// No prefix (the demo server prints bare lines).
    Bare,
    /// `2026-11-22 02:02:36+0000 ` (SSE-Server, `strftime("%F %T%z")`).
    Iso,
    /// `2026/11/22 02:02:36 ` (Go's `log` package).
    GoLog,
}

/// Lines queued for the writer before new ones are dropped.
const QUEUE_LINES: usize = 64 * 1024;
/// The longest a written line waits in the writer's buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// The longest a stop waits for the log to drain into a blocked sink.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(2);

/// What the writer thread is sent.
enum Msg {
    Line(String),
    /// Many whole lines at once (newlines included), counted as `.1`.
    Block(String, usize),
    /// Flush everything, then answer.
    Flush(SyncSender<()>),
}

/// A line logger shared by every task of one mode.
pub struct Logger {
    /// `None` when logging is off.
    queue: Option<SyncSender<Msg>>,
    stamp: Stamp,
    /// Lines dropped because the writer could not keep up.
    dropped: Arc<AtomicU64>,
    /// Lines queued and not yet taken by the writer: a full queue drops a
    /// line before it is even formatted.
    queued: Arc<AtomicUsize>,
}

/// Why a log file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// It could not be opened for appending.
    Open(io::Error),
    /// Another process holds its lock.
    Locked,
}

impl Logger {
    pub fn new(sink: Sink, stamp: Stamp) -> Logger {
        let dropped = Arc::new(AtomicU64::new(0));
        let out: Box<dyn Write + Send> = match sink {
            Sink::Off => {
                return Logger {
                    queue: None,
                    stamp,
                    dropped,
                    queued: Arc::default(),
                }
            }
            Sink::Stdout => Box::new(io::stdout()),
            Sink::Stderr => Box::new(io::stderr()),
            Sink::File(f) => Box::new(f),
        };
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let (counter, queued) = (dropped.clone(), Arc::new(AtomicUsize::new(0)));
        let taken = queued.clone();
        let started = std::thread::Builder::new()
            .name("ssehub-log".into())
            .spawn(move || write_lines(rx, out, &counter, &taken));
        Logger {
            queue: started.is_ok().then_some(tx),
            stamp,
            dropped,
            queued,
        }
    }

    /// Whether lines go anywhere; lets callers skip building costly lines.
    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Whether a line now would be queued (logging on, the queue not
    /// full): lets a caller skip building lines that would be dropped.
    pub fn accepting(&self) -> bool {
        self.enabled() && self.queued.load(Ordering::Relaxed) < QUEUE_LINES
    }

    /// Counts `n` lines as dropped without making them.
    pub fn drop_lines(&self, n: usize) {
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Lines dropped so far because the sink could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues one line (a newline is added); never blocks.
    pub fn line(&self, msg: impl Display) {
        let Some(queue) = &self.queue else { return };
        if self.queued.load(Ordering::Relaxed) >= QUEUE_LINES {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let text = match self.stamp {
            Stamp::Bare => escaped(&msg.to_string()),
            stamp => {
                let mut text = stamped(stamp);
                text.push_str(&escaped(&msg.to_string()));
                text
            }
        };
        self.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(TrySendError::Full(_)) = queue.try_send(Msg::Line(text)) {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues many lines sharing one text: for each of `tails`, the stamp,
    /// `head`, then the tail, as one message to the writer (a publish to
    /// 10,000 clients logs 10,000 lines: one allocation and one hand-off,
    /// not ten thousand). `head` is escaped once; a tail is written as it
    /// is unless it holds a control character (the channels table makes
    /// its clients' names once, at connect, so nothing is formatted here).
    pub fn lines(&self, head: &str, tails: &[impl AsRef<str>]) {
        let Some(queue) = &self.queue else { return };
        let count = tails.len();
        if count == 0 {
            return;
        }
        if self.queued.load(Ordering::Relaxed) >= QUEUE_LINES {
            self.dropped.fetch_add(count as u64, Ordering::Relaxed);
            return;
        }
        let mut prefix = match self.stamp {
            Stamp::Bare => String::new(),
            stamp => stamped(stamp),
        };
        prefix.push_str(&escaped(head));
        let tails_len: usize = tails.iter().map(|t| t.as_ref().len()).sum();
        let mut block = String::with_capacity((prefix.len() + 1) * count + tails_len);
        for tail in tails {
            let tail = tail.as_ref();
            block.push_str(&prefix);
            if has_control(tail) {
                block.push_str(&escaped(tail));
            } else {
                block.push_str(tail);
            }
            block.push('\n');
        }
        self.queued.fetch_add(count, Ordering::Relaxed);
        if let Err(TrySendError::Full(_)) = queue.try_send(Msg::Block(block, count)) {
            self.queued.fetch_sub(count, Ordering::Relaxed);
            self.dropped.fetch_add(count as u64, Ordering::Relaxed);
        }
    }

    /// Writes out every queued line; waits at most [`FLUSH_AT_EXIT`] for a
    /// sink that does not take them.
    pub fn flush(&self) {
        let Some(queue) = &self.queue else { return };
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let deadline = Instant::now() + FLUSH_AT_EXIT;
        let mut msg = Msg::Flush(done_tx);
        loop {
            match queue.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    msg = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = done_rx.recv_timeout(left);
    }
}

impl Drop for Logger {
    /// Writes out what is queued; the writer thread then ends.
    fn drop(&mut self) {
        self.flush();
    }
}

/// The writer thread: lines into a buffer, flushed when the queue runs
/// dry or every [`FLUSH_EVERY`], drops reported at each flush.
fn write_lines(
    rx: mpsc::Receiver<Msg>,
    out: Box<dyn Write + Send>,
    dropped: &AtomicU64,
    queued: &AtomicUsize,
) {
    let mut out = Output::new(out);
    let mut reported = 0;
    let mut last_flush = Instant::now();
    loop {
        let idle = match rx.recv_timeout(FLUSH_EVERY) {
            Ok(Msg::Line(text)) => {
                queued.fetch_sub(1, Ordering::Relaxed);
                out.line(&text);
                false
            }
            Ok(Msg::Block(text, count)) => {
                queued.fetch_sub(count, Ordering::Relaxed);
                out.block(&text);
                false
            }
            Ok(Msg::Flush(done)) => {
                report_drops(&mut out, dropped, &mut reported);
                out.flush();
                let _ = done.try_send(());
                false
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if idle || last_flush.elapsed() >= FLUSH_EVERY {
            report_drops(&mut out, dropped, &mut reported);
            out.flush();
            last_flush = Instant::now();
        }
    }
    report_drops(&mut out, dropped, &mut reported);
    out.flush();
}

/// One summary line for the lines dropped since the last one.
fn report_drops(out: &mut Output, dropped: &AtomicU64, reported: &mut u64) {
    let lost = dropped.load(Ordering::Relaxed);
    if lost != *reported {
        out.line(&format!(
            "Warning: {} log lines dropped: the log could not keep up",
            lost - *reported
        ));
        *reported = lost;
    }
}

/// The writer's buffered sink, and its failure reports.
struct Output {
    buf: BufWriter<Box<dyn Write + Send>>,
    /// Set while writes fail (disk full, ...): the failure is reported on
    /// stderr once, not once per line, and again after a recovery.
    failing: bool,
}

impl Output {
    fn new(out: Box<dyn Write + Send>) -> Output {
        Output {
            buf: BufWriter::with_capacity(64 * 1024, out),
            failing: false,
        }
    }

    fn line(&mut self, text: &str) {
        let written = self
            .buf
            .write_all(text.as_bytes())
            .and_then(|()| self.buf.write_all(b"\n"));
        if let Err(e) = written {
            self.failed(&e);
        }
    }

    fn block(&mut self, text: &str) {
        if let Err(e) = self.buf.write_all(text.as_bytes()) {
            self.failed(&e);
        }
    }

    /// Writes the buffer out; only a write that reached the sink says the
    /// sink works again.
    fn flush(&mut self) {
        if self.buf.buffer().is_empty() {
            return;
        }
        match self.buf.flush() {
            Ok(()) if self.failing => {
                self.failing = false;
                let _ = writeln!(io::stderr(), "ssehub: log writes work again");
            }
            Ok(()) => {}
            Err(e) => self.failed(&e),
        }
    }

    /// A write error never stops the server (a full disk, a removed file):
    /// reported once, and what the buffer held is dropped.
    fn failed(&mut self, e: &io::Error) {
        if !std::mem::replace(&mut self.failing, true) {
            let _ = writeln!(
                io::stderr(),
                "ssehub: cannot write the log ({e}); serving on, lines are lost until it works again"
            );
        }
        let inner = std::mem::replace(
            &mut self.buf,
            BufWriter::new(Box::new(io::sink()) as Box<dyn Write + Send>),
        );
        let (inner, _) = inner.into_parts();
        self.buf = BufWriter::with_capacity(64 * 1024, inner);
    }
}

/// `text` with every control character but tab escaped (`\n`, `\r`,
/// `\x1b`), so that one call is always exactly one line.
fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\t')
}

/// `text` with its control characters (but tab) written as escapes, so
/// one log line stays one line whatever a peer sent.
fn escaped(text: &str) -> String {
    if !has_control(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Opens `path` for appending, held so that no second daemon writes it
/// (`sys::append_held`: a `flock`; on Windows, no other writer shared in).
pub fn open_locked(path: &str) -> Result<File, OpenError> {
    match crate::sys::append_held(path) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(OpenError::Locked),
        Err(e) => Err(OpenError::Open(e)),
    }
}

/// A line's timestamp and the space after it, made once a second per
/// thread, not once per line (a publish to 10,000 clients logs 10,000
/// lines).
// LAST is const already: clippy 1.96 asks for it all the same when
// checking for windows-gnu (not for Linux).
#[allow(clippy::missing_const_for_thread_local)]
fn stamped(stamp: Stamp) -> String {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<(u64, Option<Stamp>, String)> = const { RefCell::new((0, None, String::new())) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != now || last.1 != Some(stamp) {
            let time = crate::sys::local_time();
            *last = (now, Some(stamp), format!("{} ", format_stamp(stamp, &time)));
        }
        let mut text = String::with_capacity(last.2.len() + 96);
        text.push_str(&last.2);
        text
    })
}

/// `t` as the originals print it: `strftime("%F %T%z")` for
/// [`Stamp::Iso`], Go's `log` layout (`%Y/%m/%d %H:%M:%S`) otherwise.
fn format_stamp(stamp: Stamp, t: &crate::sys::LocalTime) -> String {
    let clock = format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second);
    match stamp {
        Stamp::Iso => {
            let sign = if t.offset_minutes < 0 { '-' } else { '+' };
            let off = t.offset_minutes.unsigned_abs();
            let (year, month, day) = (t.year, t.month, t.day);
            format!(
                "{year:04}-{month:02}-{day:02} {clock}{sign}{:02}{:02}",
                off / 60,
                off % 60
            )
        }
        _ => format!("{:04}/{:02}/{:02} {clock}", t.year, t.month, t.day),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> String {
        let p = std::env::temp_dir().join(format!("ssehub-{name}-{}", std::process::id()));
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn iso_stamp_has_the_sse_server_shape() {
        let s = format_stamp(Stamp::Iso, &crate::sys::local_time());
        // 2026-11-22 02:02:36+0000
        assert_eq!(s.len(), 24, "{s}");
        assert_eq!(&s[4..5], "-");
        assert_eq!(&s[10..11], " ");
        assert!(s[19..].starts_with('+') || s[19..].starts_with('-'));
    }

    /// The stamps are the C library's `strftime` of the same local time.
    #[cfg(unix)]
    #[test]
    fn stamps_are_what_strftime_prints() {
        let strftime = |format: &std::ffi::CStr| {
            let mut buf = [0u8; 64];
            // SAFETY: time/localtime_r/strftime write only into the locals
            // given, and strftime is bounded by buf's length.
            let n = unsafe {
                let now = libc::time(std::ptr::null_mut());
                let mut tm: libc::tm = std::mem::zeroed();
                libc::localtime_r(&now, &mut tm);
                libc::strftime(buf.as_mut_ptr().cast(), buf.len(), format.as_ptr(), &tm)
            };
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let pairs = [
            (Stamp::Iso, c"%F %T%z"),
            (Stamp::GoLog, c"%Y/%m/%d %H:%M:%S"),
        ];
        for (stamp, format) in pairs {
            // Read again when a second passed in between.
            let (ours, theirs) = loop {
                let t = crate::sys::local_time();
                let theirs = strftime(format);
                if crate::sys::local_time() == t {
                    break (format_stamp(stamp, &t), theirs);
                }
            };
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn lines_reach_the_file_whole_and_escaped() {
        let path = temp("log-lines");
        let log = Logger::new(Sink::File(open_locked(&path).unwrap()), Stamp::Bare);
        log.line("one");
        log.line("x\r\nForged: line\u{1b}");
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "one\nx\\r\\nForged: line\\x1b\n");
        drop(log);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_block_of_lines_is_one_line_per_item_each_escaped() {
        let path = temp("log-block");
        let log = Logger::new(Sink::File(open_locked(&path).unwrap()), Stamp::Bare);
        log.line("before");
        log.lines("sent \"a\nb\" to ", &["1 (h)", "2 (x\ry)"]);
        log.lines("nobody ", &[] as &[&str]);
        log.line("after");
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "before\nsent \"a\\nb\" to 1 (h)\nsent \"a\\nb\" to 2 (x\\ry)\nafter\n"
        );
        drop(log);
        std::fs::remove_file(&path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_sink_that_blocks_loses_lines_but_never_blocks_the_caller() {
        // A pipe nobody reads: its buffer fills, the writer blocks in write.
        let mut fds = [0; 2];
        // SAFETY: pipe fills two descriptors we then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: fds[1] is ours; the File owns it from here.
        let writer = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
        let log = Logger::new(Sink::File(writer), Stamp::Bare);
        let started = Instant::now();
        for i in 0..(QUEUE_LINES + 50_000) {
            log.line(format_args!("line {i} {}", "x".repeat(100)));
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never blocked");
        assert!(log.dropped() > 0, "lines beyond the queue are counted");
        // SAFETY: closing the read end we own lets the writer fail and end.
        unsafe { libc::close(fds[0]) };
    }

    #[test]
    fn a_full_disk_is_reported_once_and_never_stops_logging() {
        use std::fs::OpenOptions;
        let Ok(full) = OpenOptions::new().append(true).open("/dev/full") else {
            return; // no /dev/full on this system
        };
        let log = Logger::new(Sink::File(full), Stamp::Iso);
        log.line("lost");
        log.flush();
        log.line("lost too"); // no panic, no second report
        log.flush();
        assert!(log.enabled());
    }

    #[test]
    fn a_second_lock_on_the_same_file_is_refused() {
        let path = temp("log-lock");
        let first = open_locked(&path).expect("first lock");
        assert!(matches!(open_locked(&path), Err(OpenError::Locked)));
        drop(first);
        assert!(open_locked(&path).is_ok());
        let _ = std::fs::remove_file(&path);
    }
}
