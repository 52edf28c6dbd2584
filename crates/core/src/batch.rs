//! The one batching policy every writer follows: what a client's queued
//! frames become when its writer wakes. Every frame queued since the last
//! write goes out in that wake-up (no timer, no added latency); small frames
//! are joined into writes of at most [`MAX_JOIN`] bytes, each allocated to
//! its exact size; a frame that size or bigger goes out as it is, shared
//! with every other client it was fanned out to, never copied.
//!
//! The native socket writer ([`crate::writer`]) joins without copying:
//! vectored writes of at most [`MAX_SLICES_PER_WRITE`] slices, as HTTP
//! chunks of at most [`MAX_FRAMES_PER_CHUNK`] frames; the writers that need
//! one buffer per write (a hyper body chunk, a buffer handed to JS) take
//! them from [`next_write`].

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Most bytes copied into one joined write. Joining whole batches copied
/// up to the queue limit per client, so 1,000 stalled clients held a
/// private megabyte each.
pub const MAX_JOIN: usize = 64 * 1024;

/// At most this many frames go into one HTTP chunk, so that a chunk and
/// its framing (a size line, a CRLF) fit one vectored write.
pub const MAX_FRAMES_PER_CHUNK: usize = 510;

/// At most this many slices go into one vectored write (IOV_MAX is 1024).
pub const MAX_SLICES_PER_WRITE: usize = MAX_FRAMES_PER_CHUNK + 2;

/// Takes the next write off the front of `batch`: one frame, or several
/// small ones joined up to [`MAX_JOIN`] into a buffer of exactly their size.
pub fn next_write(batch: &mut VecDeque<Bytes>) -> Bytes {
    let Some(first) = batch.pop_front() else {
        return Bytes::new();
    };
    let joined_len = joinable(first.len(), batch);
    if joined_len == first.len() {
        return first;
    }
    let mut joined = BytesMut::with_capacity(joined_len);
    joined.extend_from_slice(&first);
    while joined.len() < joined_len {
        if let Some(frame) = batch.pop_front() {
            joined.extend_from_slice(&frame);
        }
    }
    joined.freeze()
}

/// The length of `first` and the frames after it that fit in one write.
fn joinable(first: usize, batch: &VecDeque<Bytes>) -> usize {
    let mut len = first;
    for frame in batch {
        if len + frame.len() > MAX_JOIN {
            break;
        }
        len += frame.len();
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(sizes: &[usize]) -> VecDeque<Bytes> {
        sizes.iter().map(|n| Bytes::from(vec![b'x'; *n])).collect()
    }

    fn writes(batch: &mut VecDeque<Bytes>) -> Vec<Bytes> {
        std::iter::from_fn(|| (!batch.is_empty()).then(|| next_write(batch))).collect()
    }

    #[test]
    fn small_frames_are_joined_big_ones_pass_as_they_are() {
        let mut batch = frames(&[10, 20, MAX_JOIN, 5, MAX_JOIN - 10, 11]);
        let big = batch[2].clone();
        let out = writes(&mut batch);
        let sizes: Vec<usize> = out.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [30, MAX_JOIN, MAX_JOIN - 5, 11]);
        assert_eq!(out[1].as_ptr(), big.as_ptr(), "a big frame is not copied");
    }

    #[test]
    fn a_joined_write_holds_exactly_its_bytes() {
        // A joined write is allocated to its size, not to MAX_JOIN.
        let mut batch = frames(&[100, 100]);
        let joined = next_write(&mut batch);
        assert_eq!(joined.len(), 200);
        let mut owned = BytesMut::from(joined);
        assert!(owned.capacity() < 1024, "capacity {}", owned.capacity());
        owned.clear();
    }
}
