//! The client side of one SSE stream, parsed byte by byte without
//! buffering the body: the HTTP response head, the chunked framing, and
//! just enough of the SSE grammar to count events and read the send
//! timestamp a benchmark server embeds in each event (`data: t=<µs> ...`).
//!
//! Every parser keeps its state across calls, so input may be split at
//! any byte, as TCP reads split it.

/// Longest response head accepted, to refuse garbage early.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Why a stream cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The response status was not 200.
    Status(u16),
    /// The head or the chunked framing is malformed.
    Malformed(&'static str),
}

/// A response head, once complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub chunked: bool,
}

/// Collects the response head until its blank line.
#[derive(Debug, Default)]
pub struct HeadReader {
    buf: Vec<u8>,
}

impl HeadReader {
    /// Feeds bytes; once the head is complete, returns it with the number
    /// of bytes of `input` it took (the rest is body).
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<(Head, usize)>, ParseError> {
        let start = self.buf.len().saturating_sub(3);
        self.buf.extend_from_slice(input);
        let Some(end) = find(&self.buf[start..], b"\r\n\r\n").map(|i| start + i + 4) else {
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(ParseError::Malformed("response head too long"));
            }
            return Ok(None);
        };
        let taken = end - (self.buf.len() - input.len());
        let head = parse_head(&self.buf[..end])?;
        self.buf = Vec::new();
        Ok(Some((head, taken)))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: &[u8]) -> Result<Head, ParseError> {
    let text = std::str::from_utf8(head).map_err(|_| ParseError::Malformed("head not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    if !parts.next().unwrap_or_default().starts_with("HTTP/1.") {
        return Err(ParseError::Malformed("not an HTTP/1 response"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(ParseError::Malformed("no status code"))?;
    if status != 200 {
        return Err(ParseError::Status(status));
    }
    let chunked = lines.any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
    });
    Ok(Head { chunked })
}

/// Where the chunked decoder is within the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size; `in_ext` once past a `;` extension.
    Size {
        value: u64,
        digits: u8,
        in_ext: bool,
    },
    /// Got the size line's CR, expecting its LF.
    SizeLf { value: u64 },
    /// Inside the chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CR after the data.
    DataCr,
    /// Expecting the LF after the data.
    DataLf,
    /// The last chunk arrived; anything after it is ignored.
    End,
}

const CHUNK_START: Chunk = Chunk::Size {
    value: 0,
    digits: 0,
    in_ext: false,
};

/// Removes HTTP/1.1 chunked framing, handing out the payload in slices.
#[derive(Debug)]
pub struct Dechunker {
    state: Chunk,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker { state: CHUNK_START }
    }
}

impl Dechunker {
    /// Feeds framed bytes, calling `payload` with every run of body bytes.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        mut payload: impl FnMut(&[u8]),
    ) -> Result<(), ParseError> {
        while !input.is_empty() {
            if let Chunk::Data(left) = self.state {
                let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                payload(&input[..take]);
                input = &input[take..];
                let left = left - take as u64;
                self.state = if left == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left)
                };
                continue;
            }
            self.state = self.framing_byte(input[0])?;
            input = &input[1..];
        }
        Ok(())
    }

    /// One byte outside the chunk data.
    fn framing_byte(&self, byte: u8) -> Result<Chunk, ParseError> {
        let next = match (self.state, byte) {
            (Chunk::Size { value, .. }, b'\r') => Chunk::SizeLf { value },
            (Chunk::Size { value, in_ext, .. }, _) if in_ext => Chunk::Size {
                value,
                digits: 1,
                in_ext,
            },
            (Chunk::Size { value, digits, .. }, b';') if digits > 0 => Chunk::Size {
                value,
                digits,
                in_ext: true,
            },
            (Chunk::Size { value, digits, .. }, _) => {
                let digit = (byte as char)
                    .to_digit(16)
                    .ok_or(ParseError::Malformed("bad chunk size"))?;
                if digits >= 15 {
                    return Err(ParseError::Malformed("chunk size too long"));
                }
                Chunk::Size {
                    value: value * 16 + u64::from(digit),
                    digits: digits + 1,
                    in_ext: false,
                }
            }
            (Chunk::SizeLf { value: 0 }, b'\n') => Chunk::End,
            (Chunk::SizeLf { value }, b'\n') => Chunk::Data(value),
            (Chunk::DataCr, b'\r') => Chunk::DataLf,
            (Chunk::DataLf, b'\n') => CHUNK_START,
            (Chunk::End, _) => Chunk::End,
            _ => return Err(ParseError::Malformed("bad chunk framing")),
        };
        Ok(next)
    }
}

/// How far the current line has matched `data:` and the timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Matched this many bytes of `data:`.
    Prefix(u8),
    /// A data line, after its colon: spaces and a quote are skipped.
    DataStart,
    /// Got the `t`, expecting `=`.
    DataT,
    /// Reading the timestamp's digits.
    Digits(u64),
    /// A data line whose timestamp (if any) is known; the rest is skipped.
    DataRest(Option<u64>),
    /// Any other line (comment, `event:`, `id:`...): skipped.
    Other,
}

const FIELD_DATA: &[u8] = b"data:";

/// Counts SSE events in a byte stream. An event is dispatched by a blank
/// line after at least one `data` field, as in the spec; comments such as
/// `:ok` or heartbeats are not events.
#[derive(Debug)]
pub struct EventCounter {
    line: Line,
    line_len: usize,
    /// The pending event has a data field.
    has_data: bool,
    /// The pending event's timestamp, from its first data line.
    sent_us: Option<u64>,
    /// The previous byte was a CR, so a LF right after it ends nothing.
    after_cr: bool,
}

impl Default for EventCounter {
    fn default() -> Self {
        EventCounter {
            line: Line::Prefix(0),
            line_len: 0,
            has_data: false,
            sent_us: None,
            after_cr: false,
        }
    }
}

impl EventCounter {
    /// Feeds body bytes; calls `event` with each complete event's
    /// embedded send time in microseconds, if it had one.
    pub fn feed(&mut self, input: &[u8], mut event: impl FnMut(Option<u64>)) {
        let mut i = 0;
        while i < input.len() {
            if self.skips_rest_of_line() {
                // Fast path: nothing on this line matters any more.
                match input[i..].iter().position(|&b| b == b'\n' || b == b'\r') {
                    Some(n) => i += n,
                    None => return,
                }
            }
            self.byte(input[i], &mut event);
            i += 1;
        }
    }

    fn skips_rest_of_line(&self) -> bool {
        matches!(self.line, Line::Other | Line::DataRest(_)) && !self.after_cr
    }

    fn byte(&mut self, byte: u8, event: &mut impl FnMut(Option<u64>)) {
        let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
        match byte {
            b'\n' if after_cr => {}
            b'\n' | b'\r' => self.end_line(event),
            _ => {
                self.line_len += 1;
                self.line = advance(self.line, byte);
            }
        }
    }

    fn end_line(&mut self, event: &mut impl FnMut(Option<u64>)) {
        if self.line_len == 0 {
            if self.has_data {
                event(self.sent_us);
            }
            self.has_data = false;
            self.sent_us = None;
        } else if let Some(sent) = data_line_timestamp(self.line) {
            self.has_data = true;
            self.sent_us = self.sent_us.or(sent);
        }
        self.line = Line::Prefix(0);
        self.line_len = 0;
    }
}

/// The next match state of a line after one more (non-newline) byte.
fn advance(line: Line, byte: u8) -> Line {
    match line {
        Line::Prefix(n) if FIELD_DATA[n as usize] == byte => {
            if n as usize + 1 == FIELD_DATA.len() {
                Line::DataStart
            } else {
                Line::Prefix(n + 1)
            }
        }
        Line::Prefix(_) => Line::Other,
        Line::DataStart if byte == b' ' || byte == b'"' => Line::DataStart,
        Line::DataStart if byte == b't' => Line::DataT,
        Line::DataT if byte == b'=' => Line::Digits(0),
        Line::Digits(v) if byte.is_ascii_digit() => {
            Line::Digits(v.saturating_mul(10).saturating_add(u64::from(byte - b'0')))
        }
        Line::Digits(v) => Line::DataRest(Some(v)),
        Line::DataStart | Line::DataT => Line::DataRest(None),
        Line::DataRest(_) | Line::Other => line,
    }
}

/// For a finished line: `Some(timestamp)` if it was a data line.
fn data_line_timestamp(line: Line) -> Option<Option<u64>> {
    match line {
        Line::DataStart | Line::DataT => Some(None),
        Line::Digits(v) => Some(Some(v)),
        Line::DataRest(t) => Some(t),
        Line::Prefix(_) | Line::Other => None,
    }
}

/// The whole client side of one stream: head, then (de)chunked body.
#[derive(Debug)]
pub enum StreamParser {
    Head(HeadReader),
    Body {
        dechunker: Option<Dechunker>,
        counter: EventCounter,
    },
}

impl Default for StreamParser {
    fn default() -> Self {
        StreamParser::Head(HeadReader::default())
    }
}

impl StreamParser {
    /// Feeds bytes read from the socket. Returns true when this call
    /// completed the response head (the connection is established).
    pub fn feed(
        &mut self,
        input: &[u8],
        event: impl FnMut(Option<u64>),
    ) -> Result<bool, ParseError> {
        match self {
            StreamParser::Head(reader) => match reader.feed(input)? {
                None => Ok(false),
                Some((head, taken)) => {
                    *self = StreamParser::Body {
                        dechunker: head.chunked.then(Dechunker::default),
                        counter: EventCounter::default(),
                    };
                    self.feed(&input[taken..], event)?;
                    Ok(true)
                }
            },
            StreamParser::Body { dechunker, counter } => {
                let mut event = event;
                match dechunker {
                    Some(d) => d.feed(input, |payload| counter.feed(payload, &mut event))?,
                    None => counter.feed(input, event),
                }
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of(parts: &[&[u8]]) -> Result<(bool, Vec<Option<u64>>), ParseError> {
        let mut parser = StreamParser::default();
        let mut seen = Vec::new();
        let mut established = false;
        for part in parts {
            established |= parser.feed(part, |t| seen.push(t))?;
        }
        Ok((established, seen))
    }

    fn bytewise(all: &[u8]) -> Vec<&[u8]> {
        all.chunks(1).collect()
    }

    const CHUNKED_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

    #[test]
    fn counts_events_in_a_chunked_stream() {
        let mut all = CHUNKED_HEAD.to_vec();
        all.extend_from_slice(b"5\r\n:ok\n\n\r\n");
        all.extend_from_slice(b"1e\r\ndata: t=123 pad\n\ndata: hello\n\n\r\n");
        all.extend_from_slice(b"3;ext=1\r\n:\n\n\r\n");
        let whole = events_of(&[&all]).unwrap();
        assert_eq!(whole, (true, vec![Some(123), None]));
        assert_eq!(events_of(&bytewise(&all)).unwrap(), whole);
    }

    #[test]
    fn an_event_split_across_chunks_counts_once() {
        let mut all = CHUNKED_HEAD.to_vec();
        all.extend_from_slice(b"7\r\ndata: t\r\n8\r\n=42 x\n\n\n\r\n");
        assert_eq!(events_of(&[&all]).unwrap().1, vec![Some(42)]);
    }

    #[test]
    fn reads_an_unchunked_http10_stream_with_crlf_lines() {
        let all = b"HTTP/1.0 200 OK\r\n\r\nevent: x\r\nid: 3\r\ndata: \"t=7 q\"\r\n\r\ndata: a\rdata: b\r\r";
        let whole = events_of(&[all]).unwrap();
        assert_eq!(whole, (true, vec![Some(7), None]));
        assert_eq!(events_of(&bytewise(all)).unwrap(), whole);
    }

    #[test]
    fn takes_the_timestamp_of_the_first_data_line() {
        let all = b"HTTP/1.1 200 OK\r\n\r\ndata: t=1\ndata: t=2\n\n";
        assert_eq!(events_of(&[all]).unwrap().1, vec![Some(1)]);
    }

    #[test]
    fn a_non_200_status_is_an_error() {
        let all = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(events_of(&[all]), Err(ParseError::Status(404)));
    }

    #[test]
    fn bad_chunk_framing_is_an_error() {
        let mut all = CHUNKED_HEAD.to_vec();
        all.extend_from_slice(b"zz\r\n");
        assert!(matches!(events_of(&[&all]), Err(ParseError::Malformed(_))));
    }

    #[test]
    fn the_head_alone_establishes_without_events() {
        assert_eq!(events_of(&[CHUNKED_HEAD]).unwrap(), (true, vec![]));
        assert_eq!(events_of(&[&CHUNKED_HEAD[..20]]).unwrap(), (false, vec![]));
    }
}
