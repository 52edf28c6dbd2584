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
function adopt(native, req, headers) {
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
  socket.destroy()
  return id
}

module.exports = { canAdopt, adopt }
