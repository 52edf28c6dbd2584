//! One native client connection: the writer task that owns the socket.
//!
//! It writes the response head, then loops: take every frame queued since
//! the last write and send them as one HTTP chunk with one vectored write
//! (many events, one syscall, under load), while watching the read side
//! for the peer going away. A graceful close flushes the queue and ends
//! the chunked body; a slow or dead peer is just dropped.
//!
//! [`head`] is the one HTTP/1 response head encoder (the addon's native
//! streams and every daemon reply on the gate's path use it), with
//! [`chunk`].

pub mod head;
pub use head::{chunk, response_head};

use crate::hub::Subscription;
use crate::queue::CloseReason;
use bytes::Buf;
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::batch::{MAX_FRAMES_PER_CHUNK, MAX_SLICES_PER_WRITE};

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

/// The writer of one stream, a future that ends when the client is gone.
///
/// Hand-written rather than an `async fn`, because every idle client keeps
/// one for as long as it is connected: this is the socket, the
/// subscription, the settings and the frames being written, each once
/// (about 120 bytes with a TCP socket; nested `async fn`s would each store
/// what is moved into them). A timer is allocated only while a write is
/// stalled.
pub struct Writer<S> {
    io: S,
    sub: Subscription,
    chunked: bool,
    write_timeout: Option<Duration>,
    /// What is being written, front first: the head, or one batch with
    /// its chunk framing. Swapped with the queue's when it is empty.
    out: VecDeque<Bytes>,
    /// Armed while a write makes no progress.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Writing the response head (`out` holds it, written as it is).
    Head,
    /// Writing a batch, or waiting for the next.
    Streaming,
    /// Writing the end of a chunked body after a graceful close.
    Ending(CloseReason),
    /// Shutting the write side down after a graceful close.
    ShuttingDown(CloseReason),
    Done,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Writer<S> {
    pub fn new(io: S, sub: Subscription, settings: StreamSettings) -> Self {
        Writer {
            io,
            sub,
            chunked: settings.chunked,
            write_timeout: settings.write_timeout,
            // The head is written once and let go with the deque's slot.
            out: VecDeque::from([settings.head]),
            stall: None,
            phase: Phase::Head,
        }
    }

    /// Takes the next batch into `out`, framed; `Err` when the client is
    /// closed (and nothing it should still get is left) or the peer left.
    fn poll_next_batch(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CloseReason>> {
        debug_assert!(self.out.is_empty());
        match self.sub.poll_batch(cx, &mut self.out) {
            Poll::Ready(Ok(())) => {
                if self.chunked {
                    frame_chunks(&mut self.out);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(reason)) => Poll::Ready(Err(reason)),
            Poll::Pending if discard_until_eof(&mut self.io, cx).is_ready() => {
                Poll::Ready(Err(CloseReason::Client))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes all of `out`, many slices per vectored write. While it is
    /// blocked, a close that drops the queue (slow, timeout, peer gone),
    /// the peer leaving, or no progress for the write timeout end it.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CloseReason>> {
        while !self.out.is_empty() {
            match poll_write_front(&mut self.io, cx, &self.out) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    return Poll::Ready(Err(CloseReason::Client));
                }
                Poll::Ready(Ok(written)) => {
                    advance(&mut self.out, written);
                    self.rearm_stall();
                }
                Poll::Pending => return self.poll_blocked(cx),
            }
        }
        self.stall = None;
        Poll::Ready(Ok(()))
    }

    /// A blocked write: pending unless something should end it.
    fn poll_blocked(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CloseReason>> {
        if let Poll::Ready(reason) = self.sub.poll_aborted(cx) {
            return Poll::Ready(Err(reason));
        }
        if discard_until_eof(&mut self.io, cx).is_ready() {
            return Poll::Ready(Err(CloseReason::Client));
        }
        if let Some(limit) = self.write_timeout {
            let stall = self
                .stall
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
            if stall.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(CloseReason::Timeout));
            }
        }
        Poll::Pending
    }

    /// Progress was made: the write timeout starts again.
    fn rearm_stall(&mut self) {
        if let (Some(stall), Some(limit)) = (self.stall.as_mut(), self.write_timeout) {
            stall.as_mut().reset(tokio::time::Instant::now() + limit);
        }
    }

    /// Runs the phases; the close reason once the stream is over.
    fn poll_phases(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        loop {
            match self.phase {
                Phase::Head | Phase::Streaming => {
                    if let Err(reason) = ready!(self.poll_write_out(cx)) {
                        return Poll::Ready(reason);
                    }
                    if self.phase == Phase::Head {
                        // Its one slot goes too: an idle client keeps none.
                        self.out = VecDeque::new();
                        self.phase = Phase::Streaming;
                    }
                    match ready!(self.poll_next_batch(cx)) {
                        Ok(()) => {}
                        Err(reason) if reason.flushes() => {
                            if self.chunked {
                                self.out.push_back(Bytes::from_static(b"0\r\n\r\n"));
                            }
                            self.phase = Phase::Ending(reason);
                        }
                        Err(reason) => return Poll::Ready(reason),
                    }
                }
                Phase::Ending(reason) => {
                    // The end of the body is best effort: the peer may be gone.
                    let _ = ready!(self.poll_write_out(cx));
                    self.phase = Phase::ShuttingDown(reason);
                }
                Phase::ShuttingDown(reason) => {
                    let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                    return Poll::Ready(reason);
                }
                Phase::Done => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Writer<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.phase == Phase::Done {
            return Poll::Ready(());
        }
        let reason = ready!(this.poll_phases(cx));
        // A stream that ended on its own already reported its reason; a
        // peer that left must be recorded before the subscription drops.
        this.sub.close(reason);
        this.phase = Phase::Done;
        this.out.clear();
        this.stall = None;
        Poll::Ready(())
    }
}

/// One vectored write of the front of `out`: up to [`MAX_SLICES_PER_WRITE`]
/// frames. The slices of a few frames (the usual case) are made on the
/// stack, more in a vector: an array for the most would be 8 KiB to fill
/// per write.
fn poll_write_front<W: AsyncWrite + Unpin>(
    io: &mut W,
    cx: &mut Context<'_>,
    out: &VecDeque<Bytes>,
) -> Poll<std::io::Result<usize>> {
    const ON_STACK: usize = 16;
    let count = out.len().min(MAX_SLICES_PER_WRITE);
    if count <= ON_STACK {
        let mut slices = [IoSlice::new(&[]); ON_STACK];
        for (slice, frame) in slices.iter_mut().zip(out) {
            *slice = IoSlice::new(frame);
        }
        Pin::new(io).poll_write_vectored(cx, &slices[..count])
    } else {
        let slices: Vec<IoSlice> = out.iter().take(count).map(|b| IoSlice::new(b)).collect();
        Pin::new(io).poll_write_vectored(cx, &slices)
    }
}

/// Frames a batch as HTTP chunks in place: a size line before and a CRLF
/// after each group of up to [`MAX_FRAMES_PER_CHUNK`] frames, so a group
/// and its framing fit one vectored write. Frames are moved, not copied.
fn frame_chunks(out: &mut VecDeque<Bytes>) {
    if out.len() <= MAX_FRAMES_PER_CHUNK {
        let len: usize = out.iter().map(Bytes::len).sum();
        if len == 0 {
            out.clear(); // an empty chunk would end the body
        } else {
            out.push_front(chunk_size_line(len));
            out.push_back(Bytes::from_static(b"\r\n"));
        }
        return;
    }
    let frames: Vec<Bytes> = out.drain(..).collect();
    for group in frames.chunks(MAX_FRAMES_PER_CHUNK) {
        let len: usize = group.iter().map(Bytes::len).sum();
        if len > 0 {
            out.push_back(chunk_size_line(len));
            out.extend(group.iter().cloned());
            out.push_back(Bytes::from_static(b"\r\n"));
        }
    }
}

fn chunk_size_line(len: usize) -> Bytes {
    Bytes::from(format!("{len:x}\r\n"))
}

/// Drops `written` bytes off the front of `out`.
fn advance(out: &mut VecDeque<Bytes>, mut written: usize) {
    while written > 0 {
        let Some(front) = out.front_mut() else { return };
        if written < front.len() {
            front.advance(written);
            return;
        }
        written -= front.len();
        out.pop_front();
    }
    // Empty frames at the front are written too.
    while out.front().is_some_and(Bytes::is_empty) {
        out.pop_front();
    }
}

/// Reads and drops whatever is readable; ready at EOF or on an error.
/// The buffer lives on the stack of one poll, not in the writer (which
/// every idle client keeps), so it can be big enough that a chatty client
/// costs one read per 4 KiB rather than one per few bytes.
fn discard_until_eof<R: AsyncRead + Unpin>(reader: &mut R, cx: &mut Context<'_>) -> Poll<()> {
    let mut sink = [0u8; 4096];
    loop {
        let mut buf = tokio::io::ReadBuf::new(&mut sink);
        match Pin::new(&mut *reader).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
            Poll::Ready(Ok(())) => continue,
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Event;
    use crate::hub::{Hub, HubConfig, Origin, Target};
    use tokio::io::AsyncReadExt;

    /// Serves one client on an in-memory pipe until it closes.
    async fn serve<S>(stream: S, sub: crate::hub::Subscription, settings: StreamSettings)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        Writer::new(stream, sub, settings).await
    }

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
        hub.fan_out(
            Target::All,
            Event::data("a").encode().unwrap(),
            Origin::Published(None),
        );
        hub.fan_out(
            Target::All,
            Event::data("b").encode().unwrap(),
            Origin::Published(None),
        );
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
        hub.send_raw(sub.id(), Bytes::from(vec![b'x'; 1000]));
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
        hub.send_raw(id, Bytes::new());
        hub.fan_out(
            Target::All,
            Event::data("a").encode().unwrap(),
            Origin::Published(None),
        );
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
        ) -> std::task::Poll<std::io::Result<()>> {
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
        std::future::poll_fn(|cx| discard_until_eof(&mut chatty, cx)).await;
        assert!(chatty.reads <= 17, "{} reads for 64 KiB", chatty.reads);
    }

    #[test]
    fn an_idle_stream_keeps_a_small_task() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let hub = Hub::new(HubConfig {
            heartbeat: None,
            ..HubConfig::default()
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_nonblocking(true).unwrap();
        let stream = tokio::net::TcpStream::from_std(client).unwrap();
        let writer = Writer::new(stream, hub.register().unwrap(), settings(true));
        // Every idle client keeps one for as long as it is connected (the
        // async fns it replaced were 728 bytes).
        let size = std::mem::size_of_val(&writer);
        assert!(size <= 160, "the writer is {size} bytes");
    }

    #[test]
    fn big_batches_are_framed_as_several_chunks() {
        let mut out: VecDeque<Bytes> = (0..1200).map(|_| Bytes::from_static(b"ab")).collect();
        frame_chunks(&mut out);
        let wire: Vec<u8> = out.iter().flat_map(|b| b.to_vec()).collect();
        let body = "ab".repeat(510);
        let last = "ab".repeat(180);
        let want = format!("3fc\r\n{body}\r\n3fc\r\n{body}\r\n168\r\n{last}\r\n");
        assert_eq!(String::from_utf8(wire).unwrap(), want);
        let mut written: VecDeque<Bytes> = ["abc", "de", "", "f"]
            .map(|s: &'static str| Bytes::from_static(s.as_bytes()))
            .into();
        advance(&mut written, 4);
        assert_eq!(
            written,
            [
                Bytes::from_static(b"e"),
                Bytes::new(),
                Bytes::from_static(b"f")
            ]
        );
        advance(&mut written, 1);
        assert_eq!(written, [Bytes::from_static(b"f")]);
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
        let task = tokio::spawn(Writer::new(server, sub, settings));
        let frame = Bytes::from(vec![b'x'; 1000]);
        let mut pushed = 0;
        while hub.send_raw(id, frame.clone()) {
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
