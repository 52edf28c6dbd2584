//! Go compatibility for the two modes whose originals are Go servers (jwt,
//! demo): text as Go formats and scans it, and Go's `math/rand` source for
//! the demo's random strings. Hand-written on purpose: the replies must
//! match the originals byte for byte, which no general crate promises.
//!
//! - [`http`]: `net/http`'s replies: header order, `http.Error`,
//!   `http.NotFound`, `ServeMux`'s redirect.
//! - [`text`]: `fmt.Sscanf("%d")`, `time.Duration.String`, JSON strings,
//!   RFC 3339 times, OS errors.
//! - [`rand`]: `math/rand`'s additive lagged Fibonacci source.

pub mod http;
pub mod rand;
pub mod text;
