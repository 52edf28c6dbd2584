//! The network pieces every mode shares, one concept a file:
//!
//! - [`server`]: the accept loop (connection cap, TLS, graceful drain) and
//!   the one request path: the gate, then the native writer or hyper.
//! - [`head`]: the gate: request heads read within Node's limits, and the
//!   framing rules every request is checked against.
//! - [`limits`]: every limit a request or a connection is held to.
//! - [`stream`]: an opened event stream, servable by either path.
//! - [`rewind`]: the gate's bytes handed back to hyper.
//! - [`h2`]: HTTP/2's limits: idle connections closed, a slow stream
//!   reset alone.
//! - [`idle`]: the idle budget: connections without a stream, the oldest
//!   evicted past it.
//! - [`peer`]: one accepted connection as a handler sees it.
//! - [`body`]: a hub subscription as a streaming hyper response body.
//! - [`reply`]: the response body type and replies in an exact header order.
//! - [`form`]: request bodies read with a limit, forms as Go reads them.
//! - [`addr`]: `[host:]port` specs, binding, canonical peer addresses.
//! - [`tls`]: a rustls acceptor from PEM files.
//! - [`shutdown`]: the stop signal and the signals that trigger it.

pub mod addr;
pub mod body;
pub mod form;
pub mod h2;
pub mod head;
pub mod idle;
pub mod limits;
pub mod peer;
pub mod reply;
pub mod rewind;
pub mod server;
pub mod shutdown;
pub mod stream;
pub mod tls;
