'use strict'
// The native transport: Rust takes over an accepted plain-TCP socket.
// JS stops reading, Rust duplicates the fd (CLOEXEC), writes the response
// head and owns the stream; then JS destroys its own copy. `destroy()`
// only closes Node's fd: `end()` or `resetAndDestroy()` would send a FIN
// or RST on the shared connection.

/** Whether this request's socket can be handed to Rust. */
function canAdopt(req, res) {
  if (process.platform === 'win32') return false
  const socket = req.socket
  if (!socket || socket.encrypted || socket.destroyed) return false
  const handle = socket._handle
  if (!handle || typeof handle.fd !== 'number' || handle.fd < 0 || typeof handle.readStop !== 'function') return false
  if (!socket.remoteAddress || socket.remotePort === undefined) return false // Unix-domain socket
  if (req.httpVersionMajor !== 1) return false
  if (req.method === 'HEAD' || hasBody(req)) return false
  if (res.headersSent) return false
  return true
}

function hasBody(req) {
  const length = req.headers['content-length']
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined
}

/**
 * Hands the socket to the hub. Returns the client id; throws (leaving the
 * socket to Node) if Rust refuses it.
 */
function adopt(native, req, res, headers) {
  const socket = req.socket
  const handle = socket._handle
  handle.readStop()
  let id
  try {
    id = native.adopt(handle.fd, req.httpVersionMinor !== 0, headers)
  } catch (err) {
    handle.readStart()
    throw err
  }
  const addresses = socketStub(socket)
  socket.destroy()
  release(req, res, socket, addresses)
  return id
}

/** What is still true of a socket once Rust owns it: its addresses. */
function socketStub(socket) {
  return Object.freeze({
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    remoteFamily: socket.remoteFamily,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    encrypted: false,
    destroyed: true,
    readyState: 'closed',
  })
}

/**
 * Lets go of Node's destroyed Socket: `req` and `res` would otherwise keep
 * it, its parser state and its listeners alive for the whole stream (about
 * 2 KiB a client). `req.socket` becomes a frozen record of the addresses.
 */
function release(req, res, socket, addresses) {
  if (typeof res.detachSocket === 'function' && res.socket === socket) res.detachSocket(socket)
  // Node's http server binds these to the socket and its connection state;
  // `res` stays reachable as `client.res` but will never finish: unbind them.
  if (typeof res._onPendingData === 'function') res._onPendingData = noop
  res.removeAllListeners('finish')
  req.socket = addresses
  if (req.client === socket) req.client = addresses
}

function noop() {}

module.exports = { canAdopt, adopt }
