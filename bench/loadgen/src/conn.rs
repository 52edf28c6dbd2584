//! One SSE client connection: connect, send the request, then read and
//! count events until the server closes. Reads go into one buffer per
//! thread (borrowed only between awaits), so an idle connection costs a
//! socket and a few dozen bytes of parser state, and an event costs no
//! allocation.

use crate::parse::{ParseError, StreamParser};
use crate::stats::{now_us, Stats};
use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::OwnedSemaphorePermit;

const READ_BUFFER_BYTES: usize = 256 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUFFER_BYTES]);
}

/// Where and how every connection connects.
pub struct Target {
    pub server: SocketAddr,
    /// Local addresses to spread connections over (none: let the kernel pick).
    pub sources: Vec<IpAddr>,
    /// The raw HTTP request, sent once per connection.
    pub request: Vec<u8>,
    /// Time allowed for connecting and getting the response head.
    pub establish_timeout: Duration,
    /// Hold each connection without reading after the head (a stalled client).
    pub stall: bool,
    /// SO_RCVBUF for each connection, when set.
    pub recv_buffer: Option<u32>,
}

/// Why a connection did not get established.
struct Failure {
    kind: &'static str,
    message: String,
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        let kind = match e.raw_os_error() {
            Some(libc::EMFILE) | Some(libc::ENFILE) => "fd_limit",
            Some(libc::EADDRNOTAVAIL) => "no_local_port",
            Some(libc::ECONNREFUSED) => "refused",
            Some(libc::ECONNRESET) => "reset",
            _ => "io",
        };
        Failure {
            kind,
            message: e.to_string(),
        }
    }
}

impl From<ParseError> for Failure {
    fn from(e: ParseError) -> Self {
        let kind = match e {
            ParseError::Status(_) => "http_status",
            ParseError::Malformed(_) => "bad_response",
        };
        Failure {
            kind,
            message: format!("{e:?}"),
        }
    }
}

/// The event count of one connection in the current phase.
#[derive(Default)]
struct PhaseCount {
    generation: u64,
    received: u64,
    completed: bool,
}

/// A connection's parser plus its share of the phase accounting.
#[derive(Default)]
struct Reader {
    parser: StreamParser,
    phase: PhaseCount,
}

enum ReadOutcome {
    Bytes { established: bool },
    WouldBlock,
    Closed,
}

impl Reader {
    /// Reads what the socket has into the thread's buffer and parses it.
    ///
    /// A short read means the socket is drained, so its readiness is
    /// cleared right away (by answering WouldBlock to `try_io`) instead
    /// of by a second, empty read: one syscall per wake-up, not two.
    /// Tokio only clears readiness observed before the read, so data
    /// that arrives meanwhile still wakes the task.
    fn read_ready(&mut self, stream: &TcpStream, stats: &Stats) -> Result<ReadOutcome, Failure> {
        READ_BUFFER.with(|cell| {
            let mut buf = cell.borrow_mut();
            let mut outcome = Ok(ReadOutcome::WouldBlock);
            let read = stream.try_io(Interest::READABLE, || {
                let n = read_fd(stream, &mut buf)?;
                outcome = match n {
                    0 => Ok(ReadOutcome::Closed),
                    n => self
                        .parse(&buf[..n], stats)
                        .map(|established| ReadOutcome::Bytes { established }),
                };
                if n > 0 && n < buf.len() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(())
            });
            match read {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e.into()),
                _ => outcome.map_err(Failure::from),
            }
        })
    }

    /// Parses one read; all its events share one receive timestamp.
    fn parse(&mut self, bytes: &[u8], stats: &Stats) -> Result<bool, ParseError> {
        let mut events = 0u64;
        let mut first_sent = u64::MAX;
        let mut recv_us = 0u64;
        let established = self.parser.feed(bytes, |sent| {
            if events == 0 {
                recv_us = now_us();
            }
            events += 1;
            if let Some(sent) = sent {
                first_sent = first_sent.min(sent);
                stats.latency.record(recv_us.saturating_sub(sent));
            }
        })?;
        if events > 0 {
            stats.record_read(events, first_sent, recv_us);
            self.count_phase_events(events, stats);
        }
        Ok(established)
    }

    fn count_phase_events(&mut self, events: u64, stats: &Stats) {
        let generation = stats.generation.load(Relaxed);
        if self.phase.generation != generation {
            self.phase = PhaseCount {
                generation,
                ..PhaseCount::default()
            };
        }
        self.phase.received += events;
        if !self.phase.completed && self.phase.received >= stats.expected.load(Relaxed) {
            self.phase.completed = true;
            stats.completed.fetch_add(1, Relaxed);
        }
    }
}

/// Runs connection number `index` until the server closes it. The permit
/// (the connect concurrency limit) is held until it is established.
pub async fn run(
    index: usize,
    target: Arc<Target>,
    stats: Arc<Stats>,
    permit: OwnedSemaphorePermit,
) {
    let mut reader = Reader::default();
    let established = tokio::time::timeout(
        target.establish_timeout,
        establish(index, &target, &stats, &mut reader),
    )
    .await;
    drop(permit);
    let stream = match established {
        Ok(Ok(stream)) => stream,
        Ok(Err(failure)) => return stats.record_failure(failure.kind, failure.message),
        Err(_) => return stats.record_failure("timeout", "no response head in time".into()),
    };
    stats.established.fetch_add(1, Relaxed);
    stats.live.fetch_add(1, Relaxed);
    stats.last_established_us.fetch_max(now_us(), Relaxed);
    if target.stall {
        // Never read again: the server must notice and drop this client.
        std::future::pending::<()>().await;
    }
    // The stream ends when the server closes it or breaks the framing.
    let _ = read_events(&stream, &stats, &mut reader).await;
    stats.live.fetch_sub(1, Relaxed);
    stats.closed.fetch_add(1, Relaxed);
}

async fn establish(
    index: usize,
    target: &Target,
    stats: &Stats,
    reader: &mut Reader,
) -> Result<TcpStream, Failure> {
    let mut stream = connect(index, target).await?;
    stream.write_all(&target.request).await?;
    loop {
        stream.readable().await?;
        match reader.read_ready(&stream, stats)? {
            ReadOutcome::Bytes { established: true } => return Ok(stream),
            ReadOutcome::Bytes { .. } | ReadOutcome::WouldBlock => {}
            ReadOutcome::Closed => {
                return Err(Failure {
                    kind: "closed_early",
                    message: "closed before the response head".into(),
                })
            }
        }
    }
}

async fn connect(index: usize, target: &Target) -> io::Result<TcpStream> {
    let socket = match target.server {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(bytes) = target.recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    if !target.sources.is_empty() {
        let source = target.sources[index % target.sources.len()];
        bind_without_port(&socket, source)?;
    }
    let stream = socket.connect(target.server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Binds the source address but lets connect() pick the port, so the
/// port range is shared per destination rather than used up at bind().
fn bind_without_port(socket: &TcpSocket, source: IpAddr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd and a pointer to a live c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.bind(SocketAddr::new(source, 0))
}

/// One read(2) into `buf`, on the socket tokio registered.
fn read_fd(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid fd and a writable buffer of the given length.
    let n = unsafe { libc::read(stream.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

async fn read_events(
    stream: &TcpStream,
    stats: &Stats,
    reader: &mut Reader,
) -> Result<(), Failure> {
    loop {
        stream.readable().await?;
        if let ReadOutcome::Closed = reader.read_ready(stream, stats)? {
            return Ok(());
        }
    }
}
