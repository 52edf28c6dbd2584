//! ceiling: the benchmark's reference server. It does the least work that
//! delivers the bytes the ssehub servers deliver, so that the suite can
//! show each server's deliveries/s as a share of what the machine can do.
//!
//! It answers any GET with the ssehub addon's response head and `:ok`
//! chunk, and keeps the socket. A broadcast encodes the event once, chunk
//! framing included, into one `Bytes`, and queues a reference to it on
//! every client; each client's task writes all that is queued with one
//! vectored write (resumed after a partial write). No hub, no channels, no
//! JS: per client, a mutex-guarded `Vec` and a `Notify`.
//!
//! It speaks the benchmark's control protocol itself, one JSON object a
//! line on stdin/stdout (see bench/servers/common.js):
//!
//! ```text
//! {"cmd":"burst","count":N,"size":B}   -> {"done":"burst","sent":N,"sendMs":...}
//! {"cmd":"paced","rate":R,"seconds":S,"size":B}
//!                                      -> {"done":"paced","sent":N,"worstSendLateMs":...}
//! {"cmd":"clients"}                    -> {"clients":N}
//! {"cmd":"quit"}                       (exits; so does EOF on stdin)
//! ```
//!
//! and `{"ready":true,"port":P,"path":"/sse","pid":PID}` once listening.
//! Runtime worker threads: one per core, or `SSEHUB_THREADS`.

use bytes::Bytes;
use std::collections::HashMap;
use std::io::{self, BufRead, IoSlice, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// The most slices one `writev` takes (Linux `IOV_MAX`).
const IOV_MAX: usize = 1024;
/// Longest request head accepted.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// The path the runner is told to request (any GET is served).
const PATH: &str = "/sse";
/// Paced sends sleep until this close to their time, then spin.
const SPIN: Duration = Duration::from_micros(100);

const NOT_ALLOWED: &[u8] = b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n\
Content-Length: 0\r\nConnection: close\r\n\r\n";

// ---------------------------------------------------------------- wire

/// Wall-clock microseconds since the epoch (CLOCK_REALTIME, the clock
/// the load client stamps arrivals with).
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// An event's data, as common.js payload(): `t=<µs> n=<seq> ` padded
/// with `x` to `size` bytes (trimmed, not padded, if it is longer).
fn payload(sent_us: u64, seq: u64, size: usize) -> String {
    let mut data = format!("t={sent_us} n={seq} ");
    if data.len() >= size {
        data.truncate(data.trim_end().len());
    } else {
        data.extend(std::iter::repeat_n('x', size - data.len()));
    }
    data
}

/// One event in one HTTP chunk: `<hex len>\r\ndata: <data>\n\n\r\n`.
fn frame(data: &str) -> Bytes {
    let body = data.len() + "data: \n\n".len();
    Bytes::from(format!("{body:x}\r\ndata: {data}\n\n\r\n"))
}

/// The response head of the ssehub addon (the headers of `sse` 0.0.8,
/// a Date, chunked), followed by its first chunk, `:ok`.
fn response_head(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
         Cache-Control: no-cache, no-transform\r\nConnection: keep-alive\r\n\
         Date: {}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n:ok\n\n\r\n",
        http_date(secs)
    )
}

/// An IMF-fixdate (RFC 9110), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, secs) = (unix_secs / 86_400, unix_secs % 86_400);
    // Days to a civil date (H. Hinnant's algorithm, for days >= 0).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

// ---------------------------------------------------------------- clients

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One connection's queue of frames not yet written.
#[derive(Default)]
struct Client {
    queue: Mutex<Vec<Bytes>>,
    wake: Notify,
}

impl Client {
    /// Queues a frame; true if the queue was empty, so the writer needs
    /// waking (a non-empty queue was signalled already, and not yet taken).
    fn push(&self, frame: Bytes) -> bool {
        let mut queue = lock(&self.queue);
        queue.push(frame);
        queue.len() == 1
    }

    /// Swaps everything queued into `batch` (which must be empty).
    fn take(&self, batch: &mut Vec<Bytes>) {
        std::mem::swap(&mut *lock(&self.queue), batch);
    }
}

#[derive(Default)]
struct Clients {
    by_id: Mutex<HashMap<u64, Arc<Client>>>,
    next_id: AtomicU64,
}

impl Clients {
    fn add(&self, client: Arc<Client>) -> u64 {
        let id = self.next_id.fetch_add(1, Relaxed);
        lock(&self.by_id).insert(id, client);
        id
    }

    fn remove(&self, id: u64) {
        lock(&self.by_id).remove(&id);
    }

    fn count(&self) -> usize {
        lock(&self.by_id).len()
    }

    /// Queues one encoded frame on every client (a refcount each);
    /// returns the clients whose writers need waking.
    fn broadcast(&self, frame: &Bytes) -> Vec<Arc<Client>> {
        let by_id = lock(&self.by_id);
        let mut woken = Vec::with_capacity(by_id.len());
        for client in by_id.values() {
            if client.push(frame.clone()) {
                woken.push(client.clone());
            }
        }
        woken
    }
}

/// Sends from the control thread. Waking a tokio task from a thread
/// outside the runtime costs a queue lock and often a futex call, once per
/// client and event; so the wake-ups of one broadcast are handed to one
/// task on the runtime, as the ssehub hub does (`batch_foreign_wakes`).
struct Sender {
    clients: Arc<Clients>,
    runtime: Handle,
}

impl Sender {
    fn send(&self, frame: &Bytes) {
        let woken = self.clients.broadcast(frame);
        if !woken.is_empty() {
            self.runtime.spawn(async move {
                for client in woken {
                    client.wake.notify_one();
                }
            });
        }
    }
}

// ---------------------------------------------------------------- connections

async fn accept_loop(listener: TcpListener, clients: Arc<Clients>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, clients.clone()));
            }
            Err(e) => {
                // EMFILE and the like: back off rather than spin.
                eprintln!("ceiling: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve(mut stream: TcpStream, clients: Arc<Clients>) {
    let _ = stream.set_nodelay(true);
    match read_request_head(&mut stream).await {
        Ok(true) => {}
        Ok(false) => {
            let _ = stream.write_all(NOT_ALLOWED).await;
            return;
        }
        Err(_) => return,
    }
    let client = Arc::new(Client::default());
    // Queued before the client is visible, so it goes out first (the
    // writer takes its queue before it first waits).
    client.push(Bytes::from(response_head(SystemTime::now())));
    let id = clients.add(client.clone());
    let _ = pump(&mut stream, &client).await;
    clients.remove(id);
}

/// Reads up to the blank line; true if the request is a GET.
async fn read_request_head(stream: &mut TcpStream) -> io::Result<bool> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if head[from..].windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head.starts_with(b"GET "));
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
}

/// Writes whatever is queued, batch after batch, until the client goes.
async fn pump(stream: &mut TcpStream, client: &Client) -> io::Result<()> {
    let mut batch = Vec::new();
    let mut sink = [0u8; 256];
    loop {
        client.take(&mut batch);
        if batch.is_empty() {
            tokio::select! {
                () = client.wake.notified() => continue,
                read = stream.read(&mut sink) => match read {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue, // nothing a client sends matters
                    Err(e) => return Err(e),
                },
            }
        }
        write_batch(stream, &batch).await?;
        batch.clear();
    }
}

/// One vectored write per batch (per IOV_MAX frames), resumed after a
/// partial write until all is written.
async fn write_batch(stream: &mut TcpStream, batch: &[Bytes]) -> io::Result<()> {
    for group in batch.chunks(IOV_MAX) {
        let mut slices: Vec<IoSlice<'_>> = group.iter().map(|b| IoSlice::new(b)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = stream.write_vectored(rest).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- control

/// The raw value of `"key":` in a one-line JSON object: a string's
/// contents or a number's digits. Enough for the commands the runner
/// sends (flat objects, no escapes).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let at = line.find(&quoted)? + quoted.len();
    let rest = line[at..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(text) = rest.strip_prefix('"') {
        return text.split('"').next();
    }
    let end = rest
        .find(|c: char| c == ',' || c == '}' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn number(line: &str, key: &str) -> Result<f64, String> {
    let value = field(line, key).ok_or_else(|| format!("missing {key}"))?;
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!("bad {key}: {value:?}")),
    }
}

fn json_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn reply(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// What the Node servers report about their event loop; there is none.
const NO_LOOP: &str = "\"elu\":null,\"loopDelayP99Ms\":null,\"loopDelayMaxMs\":null";

/// `count` broadcasts, each stamped when it is encoded. Between two, the
/// control thread yields the core (as a Node server returns to its event
/// loop between broadcasts): on a machine with fewer cores than busy
/// threads, sending back to back starves the writers it feeds.
fn burst(sender: &Sender, count: u64, size: usize) -> String {
    let started = Instant::now();
    for seq in 0..count {
        sender.send(&frame(&payload(now_us(), seq, size)));
        std::thread::yield_now();
    }
    let send_ms = started.elapsed().as_secs_f64() * 1e3;
    format!("{{\"done\":\"burst\",\"sent\":{count},\"sendMs\":{send_ms:.3},{NO_LOOP}}}")
}

/// `rate` events a second for `seconds`, as common.js paced(): each
/// carries its scheduled time, and a late send is never skipped.
fn paced(sender: &Sender, rate: f64, seconds: f64, size: usize) -> String {
    let total = (rate * seconds).round() as u64;
    let interval_us = 1e6 / rate;
    let start = Instant::now() + Duration::from_millis(50);
    let start_us = now_us() + 50_000;
    let mut worst_late = Duration::ZERO;
    for seq in 0..total {
        let offset_us = (seq as f64 * interval_us).round() as u64;
        let due = start + Duration::from_micros(offset_us);
        wait_until(due);
        worst_late = worst_late.max(Instant::now().saturating_duration_since(due));
        sender.send(&frame(&payload(start_us + offset_us, seq, size)));
    }
    let late_ms = worst_late.as_secs_f64() * 1e3;
    format!("{{\"done\":\"paced\",\"sent\":{total},\"worstSendLateMs\":{late_ms:.3},{NO_LOOP}}}")
}

/// Sleeps until just before `due`, then spins (timer wake-ups are late by
/// tens of µs, which would show as latency).
fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// One command line: the reply, or None for `quit`.
fn handle(line: &str, sender: &Sender) -> Option<String> {
    let run = || -> Result<String, String> {
        let size = || number(line, "size").map(|n| n as usize);
        match field(line, "cmd") {
            Some("burst") => Ok(burst(sender, number(line, "count")? as u64, size()?)),
            Some("paced") => {
                let rate = number(line, "rate")?;
                if rate <= 0.0 {
                    return Err("rate must be positive".into());
                }
                Ok(paced(sender, rate, number(line, "seconds")?, size()?))
            }
            Some("clients") => Ok(format!("{{\"clients\":{}}}", sender.clients.count())),
            Some(other) => Err(format!("unknown command {other}")),
            None => Err(format!("not a command: {line}")),
        }
    };
    if field(line, "cmd") == Some("quit") {
        return None;
    }
    Some(run().unwrap_or_else(|e| format!("{{\"error\":{}}}", json_str(&e))))
}

/// Commands run one at a time, in order, on this (the main) thread.
fn serve_commands(sender: &Sender) {
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        match handle(&line, sender) {
            Some(answer) => reply(&answer),
            None => return,
        }
    }
}

// ---------------------------------------------------------------- main

fn worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::env::var("SSEHUB_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(cores)
}

async fn listen() -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    socket.listen(4096)
}

fn main() -> ExitCode {
    let threads = worker_threads();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            reply(&format!(
                "{{\"error\":{}}}",
                json_str(&format!("runtime: {e}"))
            ));
            return ExitCode::from(70);
        }
    };
    let listener = match runtime
        .block_on(listen())
        .and_then(|l| Ok((l.local_addr()?, l)))
    {
        Ok(listening) => listening,
        Err(e) => {
            reply(&format!(
                "{{\"error\":{}}}",
                json_str(&format!("listen: {e}"))
            ));
            return ExitCode::from(71);
        }
    };
    let (address, listener) = listener;
    let clients = Arc::new(Clients::default());
    runtime.spawn(accept_loop(listener, clients.clone()));
    reply(&format!(
        "{{\"ready\":true,\"port\":{},\"path\":{},\"pid\":{},\"driverPid\":{},\"threads\":{threads}}}",
        address.port(),
        json_str(PATH),
        std::process::id(),
        std::os::unix::process::parent_id(),
    ));
    serve_commands(&Sender {
        clients,
        runtime: runtime.handle().clone(),
    });
    // Quit or EOF: exit without winding the connection tasks down.
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_matches_common_js() {
        let data = payload(1_700_000_000_000_000, 7, 100);
        assert_eq!(data.len(), 100);
        assert!(data.starts_with("t=1700000000000000 n=7 xxx"));
        assert_eq!(payload(12, 3, 4), "t=12 n=3");
    }

    #[test]
    fn frames_one_event_per_chunk() {
        assert_eq!(&frame("t=1 n=0")[..], b"f\r\ndata: t=1 n=0\n\n\r\n");
        let big = frame(&payload(1, 2, 100));
        assert!(big.starts_with(b"6c\r\ndata: t=1 n=2 x"));
        assert_eq!(big.len(), 4 + 108 + 2);
    }

    #[test]
    fn head_is_the_addons() {
        let head = response_head(UNIX_EPOCH + Duration::from_secs(784_111_777));
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
             Cache-Control: no-cache, no-transform\r\nConnection: keep-alive\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\n:ok\n\n\r\n"
        );
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(4_107_542_399), "Sun, 28 Feb 2100 23:59:59 GMT");
    }

    #[test]
    fn reads_the_runners_commands() {
        let line = r#"{"cmd":"paced","rate":10,"seconds":2.5,"size":100}"#;
        assert_eq!(field(line, "cmd"), Some("paced"));
        assert_eq!(number(line, "seconds"), Ok(2.5));
        assert_eq!(number(line, "size"), Ok(100.0));
        assert!(number(line, "count").is_err());
        assert_eq!(field(r#"{ "cmd" : "quit" }"#, "cmd"), Some("quit"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let sender = Sender {
            clients: Arc::default(),
            runtime: runtime.handle().clone(),
        };
        assert_eq!(handle(r#"{"cmd":"quit"}"#, &sender), None);
        let answer = |line| handle(line, &sender).unwrap();
        assert_eq!(answer(r#"{"cmd":"clients"}"#), r#"{"clients":0}"#);
        let sent = answer(r#"{"cmd":"burst","count":3,"size":10}"#);
        assert!(sent.starts_with(r#"{"done":"burst","sent":3,"sendMs":"#));
        assert!(answer(r#"{"cmd":"paced","rate":0,"seconds":1,"size":9}"#).contains("error"));
        assert!(answer(r#"{"cmd":"nope"}"#).starts_with(r#"{"error":"#));
    }

    #[test]
    fn a_broadcast_queues_one_shared_frame_per_client() {
        let clients = Clients::default();
        let (a, b) = (Arc::new(Client::default()), Arc::new(Client::default()));
        clients.add(a.clone());
        let id = clients.add(b.clone());
        let frame = frame("x");
        assert_eq!(clients.broadcast(&frame).len(), 2); // both to wake
        clients.remove(id);
        assert!(clients.broadcast(&frame).is_empty()); // woken already
        let mut batch = Vec::new();
        a.take(&mut batch);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0].as_ptr(), frame.as_ptr()); // shared, not copied
        batch.clear();
        b.take(&mut batch);
        assert_eq!(batch.len(), 1);
    }
}
