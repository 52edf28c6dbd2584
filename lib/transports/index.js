'use strict'
// The transports behind one client API (better-sse's shape): the SSE opens
// a stream on one of them per request, and the rest of the library never
// asks which one it has. Every stream has
//
//   id              the hub's id for its client
//   kind            'native' (Rust owns the socket) or 'fallback' (JS writes)
//   deliver(batch)  a batch of frames from the hub, to write (fallback)
//   ended(reason)   the hub closed the client: finish the response
//
// and is opened with a Link: what the SSE lends its transports, nothing
// more (they never reach into the SSE itself).
//
// - native.js:   an accepted plain-TCP socket handed to Rust (fd takeover).
// - fallback.js: Node's `res` written by JS (TLS, HTTP/2, Unix sockets,
//   requests with a body, Bun, Deno, Windows).
// - fetch.js:    a Fetch `Response` whose body JS enqueues (`sse.fetch`).
// - raw.js:      `res.write` / `res.end` by user code, on either kind.

/**
 * @typedef {object} Link
 * @property {import('../engine').Engine} engine the Rust engine, in order
 * @property {import('http').Server | null} server the server the SSE is on
 * @property {() => void} flushSoon wakes the writers at the end of the tick
 */

const { canAdopt, NativeStream } = require('./native')
const { FallbackStream } = require('./fallback')
const { FetchStream, readRequest } = require('./fetch')

module.exports = { canAdopt, NativeStream, FallbackStream, FetchStream, readRequest }
