//! The text control protocol of the channels mode, spoken on the control
//! port and the FIFO: one `channel/type = data` (or `channel = data`)
//! publish or one command (`status`, `halt`) per line.
//!
//! Unlike SSE-Server, every line of a read is handled (not just the
//! first), CRLF endings are accepted, and bad input (an over-long line,
//! invalid UTF-8, a NUL byte) is reported instead of misread.

use crate::net::limits::{CONTROL_LINE, PATH_CHANNELS};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// One parsed control line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// An event for the subscribers of `channel` (and all-channel clients).
    Publish {
        /// The text left of `=` as written (trimmed), for the log.
        target: &'a str,
        channel: &'a str,
        /// The event type; `message` when the line names none.
        event: &'a str,
        data: &'a str,
    },
    /// A line without `=`.
    Command(&'a str),
    /// Nothing but blanks.
    Empty,
}

/// Blanks trimmed by the protocol: space and tab (and CRs at the end).
fn blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses one line (without its `\n`). Space and tab are trimmed at both
/// ends and around the first `=`, CRs at the end (so `\r\r\n` from a
/// confused writer adds no empty `data:` line); the channel ends at the
/// first `/`. A CR inside the data stays: framing splits it into `data:`
/// lines, it can never inject a field.
pub fn parse(line: &str) -> Line<'_> {
    let line = line
        .trim_end_matches(|c| c == '\r' || blank(c))
        .trim_start_matches(blank);
    if line.is_empty() {
        return Line::Empty;
    }
    let Some((left, data)) = line.split_once('=') else {
        return Line::Command(line);
    };
    let target = left.trim_end_matches(blank);
    let data = data.trim_start_matches(blank);
    let (channel, event) = target.split_once('/').unwrap_or((target, "message"));
    Line::Publish {
        target,
        channel,
        event,
        data,
    }
}

/// What a reader of control lines hands on.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A complete line, decoded (invalid UTF-8 replaced).
    Line { text: String, lossy: bool },
    /// A line holding a NUL byte: refused.
    Nul,
    /// A line longer than [`CONTROL_LINE`]; its bytes are dropped.
    TooLong,
}

/// Splits a byte stream into lines, however reads cut it.
#[derive(Default)]
pub struct Splitter {
    /// Bytes of the line being received.
    buf: Vec<u8>,
    /// Dropping the rest of an over-long line until its newline.
    skipping: bool,
}

impl Splitter {
    /// Feeds `data`; every finished line (or problem) is passed to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut impl FnMut(Input)) {
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            let (chunk, rest) = match nl {
                Some(at) => (&data[..at], Some(&data[at + 1..])),
                None => (data, None),
            };
            if !self.skipping {
                if self.buf.len() + chunk.len() > CONTROL_LINE {
                    self.buf.clear();
                    self.skipping = true;
                    out(Input::TooLong);
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            match rest {
                Some(rest) => {
                    if !std::mem::take(&mut self.skipping) {
                        out(decode(std::mem::take(&mut self.buf)));
                    }
                    data = rest;
                }
                None => break,
            }
        }
    }

    /// At end of input: the unterminated last line, if any. SSE-Server
    /// handled whatever one read brought, so `printf 'a=1' | nc` publishes;
    /// the rest of an over-long line stays dropped.
    pub fn finish(&mut self) -> Option<Input> {
        let skipping = std::mem::take(&mut self.skipping);
        let rest = std::mem::take(&mut self.buf);
        (!skipping && !rest.is_empty()).then(|| decode(rest))
    }
}

fn decode(bytes: Vec<u8>) -> Input {
    if bytes.contains(&0) {
        return Input::Nul;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Input::Line { text, lossy: false },
        Err(e) => Input::Line {
            text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            lossy: true,
        },
    }
}

/// Why a controller stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// End of input (an unterminated last line was handled first).
    Eof,
    /// A read failed (a reset peer); `partial` bytes of an unterminated
    /// line were dropped, since the peer may have died mid-line.
    Error { error: String, partial: usize },
    /// `on_input` asked to stop (e.g. after an over-long line).
    Stopped,
    /// Nothing came within the idle time.
    Idle,
}

/// Reads lines from `reader` until it ends, `on_input` returns false, or
/// (with `idle` set) nothing comes for that long.
pub async fn read_lines<R>(
    mut reader: R,
    idle: Option<Duration>,
    mut on_input: impl FnMut(Input) -> bool,
) -> Ended
where
    R: AsyncRead + Unpin,
{
    let mut splitter = Splitter::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = reader.read(&mut buf);
        let read = match idle {
            Some(idle) => match tokio::time::timeout(idle, read).await {
                Ok(read) => read,
                Err(_) => return Ended::Idle,
            },
            None => read.await,
        };
        let n = match read {
            Ok(0) => {
                if let Some(last) = splitter.finish() {
                    on_input(last);
                }
                return Ended::Eof;
            }
            Ok(n) => n,
            Err(e) => {
                let partial = splitter.buf.len();
                return Ended::Error {
                    error: e.to_string(),
                    partial,
                };
            }
        };
        let mut go_on = true;
        splitter.feed(&buf[..n], &mut |input| {
            if go_on {
                go_on = on_input(input);
            }
        });
        if !go_on {
            return Ended::Stopped;
        }
    }
}

/// SSE-Server's `%XX` decoding for paths and queries: only a `%` followed
/// by two hex digits is decoded, `+` stays `+`.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |at: usize| b.get(at).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One pair of a publishing query.
#[derive(Debug, PartialEq, Eq)]
pub enum Pair {
    /// `name=value`, both decoded: an event of type name.
    Event(String, String),
    /// A pair without `=`: a command.
    Command(String),
}

/// Splits a query at `&` and `;` into events and commands, in order.
pub fn query_pairs(query: &str) -> Vec<Pair> {
    query
        .split(['&', ';'])
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Pair::Event(unescape(k), unescape(v)),
            None => Pair::Command(unescape(p)),
        })
        .collect()
}

/// The channels named by the path segments after the prefix (decoded,
/// empty segments skipped, first occurrence kept), in linear time; `None`
/// past [`PATH_CHANNELS`].
pub fn path_channels(rest: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        let name = unescape(seg);
        if seen.insert(name.clone()) {
            if out.len() == PATH_CHANNELS {
                return None;
            }
            out.push(name);
        }
    }
    Some(out)
}

/// The part of `path` after `prefix` when the prefix matches whole
/// segments (`/my/sse` matches `/my/sse` and `/my/sse/x`, not
/// `/my/ssefoo`); `None` when it does not match.
pub fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let prefix = prefix.trim_end_matches('/');
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish<'a>(target: &'a str, channel: &'a str, event: &'a str, data: &'a str) -> Line<'a> {
        Line::Publish {
            target,
            channel,
            event,
            data,
        }
    }

    #[test]
    fn lines_parse_like_sse_server() {
        assert_eq!(
            parse("color/q1 = go"),
            publish("color/q1", "color", "q1", "go")
        );
        assert_eq!(
            parse("  number=plain  "),
            publish("number", "number", "message", "plain")
        );
        assert_eq!(
            parse("page /  t y = x y"),
            publish("page /  t y", "page ", "  t y", "x y")
        );
        assert_eq!(
            parse("a b/ev=to escaped channel"),
            publish("a b/ev", "a b", "ev", "to escaped channel")
        );
        assert_eq!(parse("c = a=b"), publish("c", "c", "message", "a=b"));
        assert_eq!(parse("\tstatus\r"), Line::Command("status"));
        assert_eq!(parse("a=1 \r\r"), publish("a", "a", "message", "1"));
        assert_eq!(parse("a=1\rb"), publish("a", "a", "message", "1\rb"));
        assert_eq!(parse("halt"), Line::Command("halt"));
        assert_eq!(parse(" \t\r"), Line::Empty);
        assert_eq!(parse("=x"), publish("", "", "message", "x"));
    }

    fn collect(chunks: &[&[u8]]) -> Vec<Input> {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut |i| out.push(i));
        }
        out
    }

    fn line(t: &str) -> Input {
        Input::Line {
            text: t.into(),
            lossy: false,
        }
    }

    #[test]
    fn every_line_of_a_read_is_handled_however_reads_split() {
        assert_eq!(collect(&[b"a=1\nb=2\nc"]), [line("a=1"), line("b=2")]);
        assert_eq!(
            collect(&[b"a=", b"1\r\n", b"\n"]),
            [line("a=1\r"), line("")]
        );
    }

    #[test]
    fn bad_bytes_are_reported() {
        assert_eq!(collect(&[b"a\0b\n"]), [Input::Nul]);
        assert_eq!(
            collect(&[b"x=\xff\n"]),
            [Input::Line {
                text: "x=\u{fffd}".into(),
                lossy: true
            }]
        );
        let long = vec![b'x'; CONTROL_LINE + 10];
        assert_eq!(
            collect(&[&long, b"still long\nok\n"]),
            [Input::TooLong, line("ok")]
        );
    }

    #[test]
    fn query_pairs_and_escapes() {
        assert_eq!(
            query_pairs("x%3Dy=1+2+3&status&;semi=2&nl=a%0Ab&bad=%zz"),
            [
                Pair::Event("x=y".into(), "1+2+3".into()),
                Pair::Command("status".into()),
                Pair::Command("".into()),
                Pair::Event("semi".into(), "2".into()),
                Pair::Event("nl".into(), "a\nb".into()),
                Pair::Event("bad".into(), "%zz".into()),
            ]
        );
    }

    #[test]
    fn paths_and_prefixes() {
        assert_eq!(path_channels("/a%20b//c+d/").unwrap(), ["a b", "c+d"]);
        assert_eq!(path_channels("/x/x").unwrap(), ["x"]);
        assert!(path_channels("").unwrap().is_empty());
        let at_cap: String = (0..PATH_CHANNELS).map(|i| format!("/c{i}")).collect();
        assert_eq!(path_channels(&at_cap).unwrap().len(), PATH_CHANNELS);
        assert_eq!(
            path_channels(&format!("{at_cap}/c0/c1")).unwrap().len(),
            PATH_CHANNELS
        );
        assert!(path_channels(&format!("{at_cap}/one-more")).is_none());
        assert_eq!(strip_prefix("/my/sse/color", "/my/sse"), Some("/color"));
        assert_eq!(strip_prefix("/my/sse", "/my/sse/"), Some(""));
        assert_eq!(strip_prefix("/my/ssefoo", "/my/sse"), None);
        assert_eq!(strip_prefix("/anything", "/"), Some("/anything"));
    }

    #[tokio::test]
    async fn an_unterminated_last_line_is_handled_at_end_of_input() {
        let data: &[u8] = b"a=1\nb=2";
        let mut seen = Vec::new();
        assert_eq!(
            read_lines(data, None, |i| {
                seen.push(i);
                true
            })
            .await,
            Ended::Eof
        );
        assert_eq!(seen, [line("a=1"), line("b=2")]);
        let mut s = Splitter::default();
        s.feed(&vec![b'x'; CONTROL_LINE + 1], &mut |_| {});
        assert_eq!(
            s.finish(),
            None,
            "the rest of an over-long line stays dropped"
        );
    }

    #[tokio::test]
    async fn a_failed_read_drops_the_partial_line_and_says_so() {
        let reader = tokio_test_reader(b"a=1\nhalf a li");
        let mut seen = Vec::new();
        let ended = read_lines(reader, None, |i| {
            seen.push(i);
            true
        })
        .await;
        assert_eq!(
            ended,
            Ended::Error {
                error: "connection reset".into(),
                partial: 9
            }
        );
        assert_eq!(seen, [line("a=1")]);
    }

    /// A reader that yields `data`, then fails as a reset peer would.
    fn tokio_test_reader(data: &'static [u8]) -> impl AsyncRead + Unpin {
        let failing = FailAfter(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        ));
        tokio::io::AsyncReadExt::chain(data, failing)
    }

    struct FailAfter(std::io::Error);

    impl AsyncRead for FailAfter {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let e = std::io::Error::new(self.0.kind(), self.0.to_string());
            std::task::Poll::Ready(Err(e))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_controller_is_let_go_after_the_idle_time() {
        let (_writer, reader) = tokio::io::duplex(64);
        let started = tokio::time::Instant::now();
        let ended = read_lines(reader, Some(Duration::from_secs(600)), |_| true).await;
        assert_eq!(ended, Ended::Idle);
        assert_eq!(started.elapsed().as_secs(), 600);
    }

    #[tokio::test]
    async fn read_lines_stops_when_asked() {
        let data: &[u8] = b"a=1\nb=2\nc=3\n";
        let mut seen = Vec::new();
        let ended = read_lines(data, None, |i| {
            seen.push(i);
            seen.len() < 2
        })
        .await;
        assert_eq!(ended, Ended::Stopped);
        assert_eq!(seen, [line("a=1"), line("b=2")]);
    }
}
