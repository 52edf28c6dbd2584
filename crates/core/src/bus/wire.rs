//! An event as it travels through Redis: the publisher encodes it once
//! (`encode`), the script puts `<id>\n` in front, and that one message is
//! both what PUBLISH sends and what the channel's stream keeps, so live
//! delivery and replay read the same bytes (`decode`).
//!
//! The encoding is length-prefixed fields, `<tag><len>:<bytes>`, so any
//! byte may appear in a channel name or a payload. Tags: `c` a channel
//! (repeated; none means a broadcast), `e` event, `d` data, `i` an id of
//! the publisher's own, `r` retry, `x` a raw frame, `n` (empty) the frame
//! carries the bus's id.

use super::{Body, Message};
use bytes::{BufMut, Bytes, BytesMut};

/// Encodes a message; `numbered` asks receivers to write the id.
pub fn encode(message: &Message, numbered: bool) -> Bytes {
    let mut out = BytesMut::new();
    if numbered {
        field(&mut out, b'n', b"");
    }
    for channel in message.channels.iter().flatten() {
        field(&mut out, b'c', channel.as_bytes());
    }
    match &message.body {
        Body::Event {
            event,
            data,
            id,
            retry,
        } => {
            if let Some(e) = event {
                field(&mut out, b'e', e.as_bytes());
            }
            if let Some(d) = data {
                field(&mut out, b'd', d.as_bytes());
            }
            if let Some(i) = id {
                field(&mut out, b'i', i.as_bytes());
            }
            if let Some(r) = retry {
                field(&mut out, b'r', r.to_string().as_bytes());
            }
        }
        Body::Raw(raw) => field(&mut out, b'x', raw),
    }
    out.freeze()
}

fn field(out: &mut BytesMut, tag: u8, value: &[u8]) {
    out.put_u8(tag);
    out.put_slice(value.len().to_string().as_bytes());
    out.put_u8(b':');
    out.put_slice(value);
}

/// An event read back from Redis.
#[derive(Debug, PartialEq, Eq)]
pub struct Numbered {
    pub seq: u64,
    pub numbered: bool,
    pub message: Message,
}

/// Decodes `<id>\n<fields>`; `None` for anything malformed (another
/// program's message on our channel, say), which is skipped.
pub fn decode(bytes: &[u8]) -> Option<Numbered> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let seq = std::str::from_utf8(&bytes[..newline]).ok()?.parse().ok()?;
    let mut rest = &bytes[newline + 1..];
    let (mut numbered, mut channels) = (false, Vec::new());
    let (mut event, mut data, mut id, mut retry, mut raw) = (None, None, None, None, None);
    while !rest.is_empty() {
        let tag = rest[0];
        let colon = rest.iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&rest[1..colon]).ok()?.parse().ok()?;
        let value = rest.get(colon + 1..colon + 1 + len)?;
        rest = &rest[colon + 1 + len..];
        let text = || String::from_utf8(value.to_vec()).ok();
        match tag {
            b'n' => numbered = true,
            b'c' => channels.push(text()?),
            b'e' => event = Some(text()?),
            b'd' => data = Some(text()?),
            b'i' => id = Some(text()?),
            b'r' => retry = Some(text()?.parse().ok()?),
            b'x' => raw = Some(Bytes::copy_from_slice(value)),
            _ => return None,
        }
    }
    let body = match raw {
        Some(raw) => Body::Raw(raw),
        None => Body::Event {
            event,
            data,
            id,
            retry,
        },
    };
    Some(Numbered {
        seq,
        numbered,
        message: Message {
            channels: (!channels.is_empty()).then_some(channels),
            body,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: Message, numbered: bool) {
        let mut bytes = b"42\n".to_vec();
        bytes.extend_from_slice(&encode(&message, numbered));
        let back = decode(&bytes).unwrap();
        assert_eq!(back.seq, 42);
        assert_eq!(back.numbered, numbered);
        assert_eq!(back.message, message);
    }

    #[test]
    fn every_field_and_any_byte_survive() {
        round_trip(
            Message {
                channels: Some(vec!["a:1\n".into(), "".into(), "ü".into()]),
                body: Body::Event {
                    event: Some("tick".into()),
                    data: Some("line 1\nline 2:".into()),
                    id: Some("7".into()),
                    retry: Some(1500),
                },
            },
            false,
        );
        round_trip(
            Message {
                channels: None,
                body: Body::Raw(Bytes::from_static(b"data: x\n\n\0")),
            },
            true,
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn any_event_round_trips(
            channels in proptest::collection::vec(".{0,8}", 0..4),
            data in proptest::option::of(".{0,40}"),
            event in proptest::option::of("[a-z]{0,8}"),
            retry in proptest::option::of(0u64..100_000),
        ) {
            let message = Message {
                channels: (!channels.is_empty()).then_some(channels),
                body: Body::Event { event, data, id: None, retry },
            };
            let mut bytes = b"7\n".to_vec();
            bytes.extend_from_slice(&encode(&message, true));
            proptest::prop_assert_eq!(decode(&bytes).map(|n| n.message), Some(message));
        }
    }

    #[test]
    fn malformed_messages_are_refused_not_misread() {
        for bad in [
            &b"x\nd1:a"[..],
            b"1\nd9:short",
            b"1\nq1:a",
            b"no newline",
            b"1\nd1a",
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
