#![no_main]
//! The control-port / FIFO text protocol: a byte stream cut into reads
//! anywhere, split into lines, each line parsed. The lines must not depend
//! on where the reads were cut, and every parse must keep its invariants.

use libfuzzer_sys::fuzz_target;
use ssehub_daemon::fuzz::control::{self, Input, Line, Splitter};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, stream)) = data.split_first() else {
        return;
    };
    // The two high bits set put a line of nearly CONTROL_LINE bytes in front
    // (within 32 bytes of the limit either way), so the over-long-line
    // path and its exact boundary are reached within libFuzzer's input
    // length; such long streams are cut into larger reads.
    let stride = usize::from(knob & 0x3f).max(1);
    let (stream, stride) = if knob & 0xc0 == 0xc0 {
        let mut long = vec![b'x'; control::CONTROL_LINE - 32 + usize::from(knob & 0x3f)];
        long.extend_from_slice(stream);
        (long, stride * 1024)
    } else {
        (stream.to_vec(), stride)
    };
    let whole = lines(&[&stream]);
    let cut: Vec<&[u8]> = stream.chunks(stride).collect();
    assert_eq!(
        lines(&cut),
        whole,
        "where the reads were cut changed the lines"
    );
    for input in &whole {
        if let Input::Line { text, .. } = input {
            assert!(!text.contains('\n'));
            // Invalid bytes become U+FFFD (3 bytes) at most.
            assert!(text.len() <= 3 * control::CONTROL_LINE);
            check_line(text);
        }
    }
});

fn lines(reads: &[&[u8]]) -> Vec<Input> {
    let mut splitter = Splitter::default();
    let mut out = Vec::new();
    for read in reads {
        splitter.feed(read, &mut |input| out.push(input));
    }
    out
}

fn blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn check_line(text: &str) {
    match control::parse(text) {
        Line::Empty => {
            let body = text.trim_end_matches(|c| c == '\r' || blank(c));
            assert!(body.trim_start_matches(blank).is_empty());
        }
        Line::Command(cmd) => {
            assert!(!cmd.is_empty() && !cmd.contains('='));
            assert!(!cmd.starts_with(blank) && !cmd.ends_with(blank));
        }
        Line::Publish {
            target,
            channel,
            event,
            data,
        } => {
            assert!(!channel.contains('/'));
            assert!(!target.contains('=') && !target.ends_with(blank));
            assert!(!data.starts_with(blank) && !data.ends_with(|c| c == '\r' || blank(c)));
            if target.contains('/') {
                assert_eq!(format!("{channel}/{event}"), target);
            } else {
                assert_eq!((channel, event), (target, "message"));
            }
        }
    }
}
