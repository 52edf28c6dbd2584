//! One native client connection: the writer task that owns the socket.
//!
//! It writes the response head, then loops: take every frame queued since
//! the last write and send them as one HTTP chunk with one vectored write
//! (many events, one syscall, under load), while watching the read side
//! for the peer going away. A graceful close flushes the queue and ends
//! the chunked body; a slow or dead peer is just dropped.

use crate::hub::Subscription;
use crate::queue::CloseReason;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// At most this many frames go into one vectored write (IOV_MAX is 1024;
/// two slices are taken by the chunk header and trailer).
const MAX_FRAMES_PER_WRITE: usize = 512;

/// How one stream is written.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Status line, headers and the first body bytes, already encoded.
    pub head: Bytes,
    /// Wrap the body in HTTP/1.1 chunked encoding (off for HTTP/1.0).
    pub chunked: bool,
    /// A write that makes no progress this long closes the client.
    pub write_timeout: Option<Duration>,
}

/// Serves one client on its socket until it closes.
pub async fn serve_tcp(
    mut stream: tokio::net::TcpStream,
    sub: Subscription,
    settings: StreamSettings,
) {
    serve_tcp_on(&mut stream, sub, settings).await;
}

/// [`serve_tcp`] on a borrowed socket, for a caller that must do something
/// (forget its fd) after the stream ends and before the socket closes.
pub async fn serve_tcp_on(
    stream: &mut tokio::net::TcpStream,
    sub: Subscription,
    settings: StreamSettings,
) {
    // Borrowed halves: no allocation and no lock per read or write.
    let (reader, writer) = stream.split();
    serve_halves(reader, writer, sub, settings).await;
}

/// Serves one client on any byte stream (the tests use in-memory pipes).
pub async fn serve<S>(stream: S, sub: Subscription, settings: StreamSettings)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (reader, writer) = tokio::io::split(stream);
    serve_halves(reader, writer, sub, settings).await;
}

async fn serve_halves<R, W>(
    mut reader: R,
    mut writer: W,
    sub: Subscription,
    mut settings: StreamSettings,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The head is written once: it must not live as long as the stream
    // (a few hundred bytes per idle client).
    let head = std::mem::take(&mut settings.head);
    let outcome = tokio::select! {
        biased;
        closed = write_loop(&mut writer, &sub, &settings, head) => closed,
        () = peer_gone(&mut reader) => CloseReason::Client,
    };
    // A write loop that ended on its own already reported its reason;
    // a peer that left must be recorded before the subscription drops.
    sub.close(outcome);
    if matches!(outcome, CloseReason::Server | CloseReason::Shutdown) {
        let _ = writer.shutdown().await;
    }
}

/// Resolves when the peer closes its side or the connection fails. Any
/// bytes a client sends after its request are read and ignored.
async fn peer_gone<R: AsyncRead + Unpin>(reader: &mut R) {
    std::future::poll_fn(|cx| discard_until_eof(reader, cx)).await
}

/// Reads and drops whatever is readable; ready at EOF or on an error.
/// The buffer lives on the stack of one poll, not in the task (which every
/// idle client keeps), so it can be big enough that a chatty client costs
/// one read per 4 KiB rather than one per few bytes.
fn discard_until_eof<R: AsyncRead + Unpin>(
    reader: &mut R,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<()> {
    use std::task::Poll;
    let mut sink = [0u8; 4096];
    loop {
        let mut buf = tokio::io::ReadBuf::new(&mut sink);
        match std::pin::Pin::new(&mut *reader).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
            Poll::Ready(Ok(())) => continue,
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Writes by the one batching policy ([`crate::batch`]): every frame
/// queued since the last write goes out in one vectored write, joined by
/// the kernel, not copied.
async fn write_loop<W: AsyncWrite + Unpin>(
    writer: &mut W,
    sub: &Subscription,
    settings: &StreamSettings,
    head: Bytes,
) -> CloseReason {
    // Writes are boxed: their state (a timer among it) is on the heap only
    // while a write is under way, not in every idle client's task.
    let head = VecDeque::from([head]);
    if let Err(reason) = Box::pin(write_frames(writer, &head, settings)).await {
        return reason;
    }
    drop(head);
    let mut batch = VecDeque::new();
    loop {
        if let Err(reason) = sub.next_batch(&mut batch).await {
            if settings.chunked && matches!(reason, CloseReason::Server | CloseReason::Shutdown) {
                let end = VecDeque::from([Bytes::from_static(b"0\r\n\r\n")]);
                let _ = Box::pin(write_frames(writer, &end, settings)).await;
            }
            return reason;
        }
        let body = Box::pin(async {
            if settings.chunked {
                write_chunked(writer, &batch, settings).await
            } else {
                write_frames(writer, &batch, settings).await
            }
        });
        let written = tokio::select! {
            written = body => written,
            reason = sub.aborted() => Err(reason),
        };
        if let Err(reason) = written {
            return reason;
        }
        batch.clear();
    }
}

async fn write_chunked<W: AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &VecDeque<Bytes>,
    settings: &StreamSettings,
) -> Result<(), CloseReason> {
    let (front, back) = batch.as_slices();
    for group in front
        .chunks(MAX_FRAMES_PER_WRITE)
        .chain(back.chunks(MAX_FRAMES_PER_WRITE))
    {
        let len: usize = group.iter().map(Bytes::len).sum();
        if len == 0 {
            continue; // an empty chunk would end the body
        }
        let header = Bytes::from(format!("{len:x}\r\n"));
        let trailer = Bytes::from_static(b"\r\n");
        let mut slices = Vec::with_capacity(group.len() + 2);
        slices.push(IoSlice::new(&header));
        slices.extend(group.iter().map(|b| IoSlice::new(b)));
        slices.push(IoSlice::new(&trailer));
        timed_write(writer, &mut slices, settings.write_timeout).await?;
    }
    Ok(())
}

async fn write_frames<W: AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &VecDeque<Bytes>,
    settings: &StreamSettings,
) -> Result<(), CloseReason> {
    let (front, back) = batch.as_slices();
    for group in front
        .chunks(MAX_FRAMES_PER_WRITE)
        .chain(back.chunks(MAX_FRAMES_PER_WRITE))
    {
        let mut slices: Vec<IoSlice> = group.iter().map(|b| IoSlice::new(b)).collect();
        timed_write(writer, &mut slices, settings.write_timeout).await?;
    }
    Ok(())
}

async fn timed_write<W: AsyncWrite + Unpin>(
    writer: &mut W,
    slices: &mut [IoSlice<'_>],
    timeout: Option<Duration>,
) -> Result<(), CloseReason> {
    let write = write_all_vectored(writer, slices);
    let result = match timeout {
        Some(limit) => match tokio::time::timeout(limit, write).await {
            Ok(result) => result,
            Err(_) => return Err(CloseReason::Timeout),
        },
        None => write.await,
    };
    result.map_err(|_| CloseReason::Client)
}

/// Writes every slice, resuming after partial writes.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let n = writer.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// Encodes a response head: the status line, the headers in order, a
/// `Date`, and `Transfer-Encoding: chunked` when the body is chunked.
pub fn response_head(status: &str, headers: &[(String, String)], chunked: bool) -> String {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("Date: ");
    head.push_str(&httpdate::fmt_http_date(std::time::SystemTime::now()));
    head.push_str("\r\n");
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Wraps body bytes in one HTTP chunk.
pub fn chunk(body: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Event;
    use crate::hub::{Hub, HubConfig};
    use tokio::io::AsyncReadExt;

    fn settings(chunked: bool) -> StreamSettings {
        StreamSettings {
            head: Bytes::from_static(b"HEAD|"),
            chunked,
            write_timeout: None,
        }
    }

    #[tokio::test]
    async fn chunked_stream_batches_and_ends_cleanly() {
        let hub = Hub::new(HubConfig {
            heartbeat: None,
            ..HubConfig::default()
        });
        let sub = hub.register().unwrap();
        let id = sub.id();
        hub.broadcast(&Event::data("a")).unwrap();
        hub.broadcast(&Event::data("b")).unwrap();
        hub.close_client(id, CloseReason::Server);
        let (server, mut client) = tokio::io::duplex(4096);
        serve(server, sub, settings(true)).await;
        let mut wire = String::new();
        client.read_to_string(&mut wire).await.unwrap();
        assert_eq!(wire, "HEAD|12\r\ndata: a\n\ndata: b\n\n\r\n0\r\n\r\n");
        assert_eq!(hub.client_count(), 0);
    }

    #[tokio::test]
    async fn a_peer_that_leaves_is_reported_as_client() {
        let hub = Hub::new(HubConfig {
            heartbeat: None,
            ..HubConfig::default()
        });
        let reasons = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = reasons.clone();
        hub.on_close(move |_, why| log.lock().unwrap().push(why));
        let sub = hub.register().unwrap();
        let (server, client) = tokio::io::duplex(64);
        drop(client);
        serve(server, sub, settings(false)).await;
        assert_eq!(*reasons.lock().unwrap(), [CloseReason::Client]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_times_out() {
        let hub = Hub::new(HubConfig {
            heartbeat: None,
            ..HubConfig::default()
        });
        let sub = hub.register().unwrap();
        hub.send_to(sub.id(), Bytes::from(vec![b'x'; 1000]));
        let (server, _client) = tokio::io::duplex(16);
        let mut s = settings(false);
        s.write_timeout = Some(Duration::from_secs(5));
        let reasons = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = reasons.clone();
        hub.on_close(move |_, why| log.lock().unwrap().push(why));
        serve(server, sub, s).await;
        assert_eq!(*reasons.lock().unwrap(), [CloseReason::Timeout]);
    }

    #[tokio::test]
    async fn an_empty_frame_does_not_end_a_chunked_body() {
        let hub = Hub::new(HubConfig {
            heartbeat: None,
            ..HubConfig::default()
        });
        let sub = hub.register().unwrap();
        let id = sub.id();
        hub.send_to(id, Bytes::new());
        hub.broadcast(&Event::data("a")).unwrap();
        hub.close_client(id, CloseReason::Server);
        let (server, mut client) = tokio::io::duplex(4096);
        serve(server, sub, settings(true)).await;
        let mut wire = String::new();
        client.read_to_string(&mut wire).await.unwrap();
        assert_eq!(wire, "HEAD|9\r\ndata: a\n\n\r\n0\r\n\r\n");
    }

    /// A reader that counts its reads and yields `total` bytes, then EOF.
    struct Chatty {
        left: usize,
        reads: usize,
    }

    impl AsyncRead for Chatty {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            self.reads += 1;
            let n = self.left.min(buf.remaining());
            buf.put_slice(&vec![b'x'; n]);
            self.left -= n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn the_peer_probe_reads_in_big_gulps() {
        let mut chatty = Chatty {
            left: 64 * 1024,
            reads: 0,
        };
        peer_gone(&mut chatty).await;
        assert!(chatty.reads <= 17, "{} reads for 64 KiB", chatty.reads);
    }

    #[test]
    fn heads_end_with_date_and_encoding() {
        let head = response_head("200 OK", &[("A".into(), "b".into())], true);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\nA: b\r\nDate: "));
        assert!(head.ends_with("GMT\r\nTransfer-Encoding: chunked\r\n\r\n"));
        assert_eq!(chunk(b":ok\n\n"), b"5\r\n:ok\n\n\r\n");
    }
}

#[cfg(test)]
mod slow_tests {
    use super::*;
    use crate::hub::{Hub, HubConfig};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_is_closed_as_slow() {
        let hub = Hub::new(HubConfig {
            heartbeat: None,
            max_queue_bytes: 64 * 1024,
            ..HubConfig::default()
        });
        let reasons = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = reasons.clone();
        hub.on_close(move |_, why| log.lock().unwrap().push(why));
        let sub = hub.register().unwrap();
        let id = sub.id();
        let (server, _client) = tokio::io::duplex(16 * 1024);
        let settings = StreamSettings {
            head: Bytes::from_static(b"H"),
            chunked: true,
            write_timeout: None,
        };
        let task = tokio::spawn(serve(server, sub, settings));
        let frame = Bytes::from(vec![b'x'; 1000]);
        let mut pushed = 0;
        while hub.send_to(id, frame.clone()) {
            pushed += 1;
            if pushed % 10 == 0 {
                tokio::task::yield_now().await;
            }
            assert!(pushed < 10_000, "never closed as slow");
        }
        // The writer is blocked on the full pipe: it must still let go.
        task.await.unwrap();
        assert_eq!(*reasons.lock().unwrap(), [CloseReason::Slow]);
        assert_eq!(hub.client_count(), 0);
    }
}
