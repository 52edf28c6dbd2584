'use strict'
// The native transport: Rust takes over an accepted plain-TCP socket.
// JS stops reading, Rust duplicates the fd (CLOEXEC), writes the response
// head and owns the stream; then JS destroys its own copy. `destroy()`
// only closes Node's fd: `end()` or `resetAndDestroy()` would send a FIN
// or RST on the shared connection.
//
// What user code written for `sse` does with `client.req` and `client.res`
// keeps working: `req.socket` becomes the NativeStream (addresses, socket
// options applied to the Rust-owned fd, `destroy()`), `res.write` and
// `res.end` go through the client's queue in order with its events, and
// `'close'` on req, res and socket fires when the stream ends.

const { EventEmitter } = require('node:events')
const { writeRaw, endRaw } = require('./raw')
const { dropEmptyListenerTable } = require('../listeners')
const { flushes } = require('../reasons')

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
  // Pipelined behind a response still being written: the socket is not this
  // response's yet, and taking it over would cut the earlier one short.
  if (res.socket !== socket || socket._httpMessage !== res) return false
  return true
}

function hasBody(req) {
  const length = req.headers['content-length']
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined
}

/**
 * One native stream, and the connection its req and res show for Node's
 * Socket (`req.socket`, `res.socket`): addresses, socket options applied to
 * the Rust-owned fd, `destroy()`, `'close'`. One object for both, since an
 * idle client keeps it for as long as it is connected.
 */
class NativeStream extends EventEmitter {
  /**
   * Hands the socket to the hub. Throws (leaving the socket to Node) if
   * Rust refuses it; the error's `code` says why (lib/codes.js).
   */
  constructor(link, req, res, headers) {
    const socket = req.socket
    const handle = socket._handle
    handle.readStop()
    let id
    try {
      id = link.engine.adopt(handle.fd, req.httpVersionMinor !== 0, headers)
    } catch (err) {
      handle.readStart()
      throw err
    }
    super()
    dropEmptyListenerTable(this)
    this.id = id
    this._link = link
    this._req = req
    this._res = res
    this._ended = false
    this._finished = false
    this._ignoreAbort = true
    this.destroyed = false
    this.remoteAddress = socket.remoteAddress
    this.remotePort = socket.remotePort
    this.localAddress = socket.localAddress
    this.localPort = socket.localPort
    this._server = socket.server || socket._server || null
    holdServer(this._server)
    bindRequest(this, req)
    socket.once('close', () => (this._ignoreAbort = false))
    socket.destroy()
    release(req, res, socket, this)
    bindResponse(this, res)
  }

  get kind() {
    return 'native'
  }

  /** The stand-in for Node's Socket is the stream itself. */
  get socket() {
    return this
  }

  get remoteFamily() {
    // A TCP peer's address is IPv4 or IPv6 (mapped ones included): only
    // IPv6 has a ':'. (node:net's isIPv6 would cost its 10 ms load.)
    return String(this.remoteAddress).includes(':') ? 'IPv6' : 'IPv4'
  }

  get encrypted() {
    return false
  }

  get readyState() {
    return this.destroyed ? 'closed' : 'open'
  }

  get writable() {
    return !this.destroyed
  }

  address() {
    return { address: this.localAddress, family: this.remoteFamily, port: this.localPort }
  }

  setNoDelay(noDelay = true) {
    this._link.engine.setNoDelay(this.id, Boolean(noDelay))
    return this
  }

  setKeepAlive(enable = false, initialDelay = 0) {
    const delayMs = Number.isFinite(initialDelay) && initialDelay > 0 ? Math.min(initialDelay, 0xffffffff) : 0
    this._link.engine.setKeepAlive(this.id, Boolean(enable), Math.floor(delayMs))
    return this
  }

  /**
   * Recorded, and `callback` becomes a 'timeout' listener as on a Socket;
   * the stream itself is guarded by the hub's `writeTimeout` and heartbeats.
   */
  setTimeout(ms, callback) {
    this.timeout = Number(ms) || 0
    if (typeof callback === 'function') this.once('timeout', callback)
    return this
  }

  /** Ends the stream at once, dropping what is still queued. */
  destroy() {
    if (!this.destroyed) this._link.engine.closeClient(this.id, 'client')
    return this
  }

  /** Ends the stream after what is queued, like `client.close()`. */
  end() {
    if (!this.destroyed) this._link.engine.closeClient(this.id, 'server')
    return this
  }

  ref() {
    return this
  }

  unref() {
    return this
  }

  /** Called when the hub reports the stream ended: tell req, res and socket. */
  ended(reason) {
    const graceful = flushes(reason)
    this._ended = true
    this._closed(graceful)
    releaseServer(this._server)
    const req = this._req
    const res = this._res
    Object.setPrototypeOf(req, Object.getPrototypeOf(Object.getPrototypeOf(req)))
    if (graceful && req.complete) req.resume()
    else if (!req.destroyed) req.destroy()
    if (graceful) {
      this._finished = true
      res.emit('finish')
    }
    res.destroyed = true
    res.emit('close')
  }

  /** The socket's side of the end: 'end' (graceful) and 'close'. */
  _closed(graceful) {
    if (this.destroyed) return
    this.destroyed = true
    if (graceful) this.emit('end')
    this.emit('close', false)
  }
}

/** The last `setTimeout` value (see README: no idle timeout fires). */
NativeStream.prototype.timeout = 0

/**
 * Node counts the connection as gone once its Socket is destroyed, so
 * `server.close()` would finish (and its 'close' fire) while streams are
 * still open, unlike with `sse`: count each native stream as a connection
 * until it ends.
 */
function holdServer(server) {
  if (server && typeof server._connections === 'number') server._connections++
}

function releaseServer(server) {
  if (!server || typeof server._connections !== 'number') return
  server._connections--
  if (typeof server._emitCloseIfDrained === 'function') server._emitCloseIfDrained()
}

/** The NativeStream behind a bound req or res (shared methods, no closures). */
const kStream = Symbol('ssehub.nativeStream')

/**
 * Node aborts the request when its Socket closes, which here is at once:
 * that abort is ignored, and a `req.destroy()` by the app ends the stream.
 */
function bindRequest(stream, req) {
  req[kStream] = stream
  Object.setPrototypeOf(req, derived(Object.getPrototypeOf(req), REQUEST))
}

/**
 * `proto` with `overrides` on top, made once per prototype (Express gives
 * `req`/`res` its own). A swapped prototype, not own properties: a dozen
 * properties added to a live ServerResponse turn it into a slow
 * dictionary-mode object, over 2 KiB more per client.
 */
function derived(proto, overrides) {
  let cache = DERIVED.get(overrides)
  if (!cache) DERIVED.set(overrides, (cache = new WeakMap()))
  let made = cache.get(proto)
  if (!made) cache.set(proto, (made = Object.create(proto, overrides)))
  return made
}

const DERIVED = new WeakMap()

const method = (fn) => ({ value: fn, configurable: true, writable: true })

const REQUEST = {
  destroy: method(function destroy() {
    const stream = this[kStream]
    if (!stream._ignoreAbort && !stream.destroyed) stream.destroy()
    return this
  }),
}
const getter = (fn) => ({ get: fn, configurable: true })

/** What `client.res` does once Rust owns the socket: writes and ends go to the stream. */
const RESPONSE = {
  write: method(function write(chunk, encoding, callback) {
    return writeRaw(this[kStream], chunk, encoding, callback)
  }),
  end: method(function end(chunk, encoding, callback) {
    endRaw(this[kStream], this, chunk, encoding, callback)
    return this
  }),
  flushHeaders: method(function flushHeaders() {}),
  destroy: method(function destroy() {
    this[kStream].destroy()
    return this
  }),
  writableLength: getter(function writableLength() {
    const stream = this[kStream]
    return stream.destroyed ? 0 : stream._link.engine.queuedBytes(stream.id) || 0
  }),
  writableEnded: getter(function writableEnded() {
    return this[kStream]._ended
  }),
  writableFinished: getter(function writableFinished() {
    return this[kStream]._finished === true
  }),
  finished: getter(function finished() {
    return this[kStream]._ended
  }),
}

function bindResponse(stream, res) {
  // Node's own checks (writeHead, setHeader after the head) then throw
  // ERR_HTTP_HEADERS_SENT as they would with `sse`: the head is written.
  res._header = res._header || 'HTTP/1.1 200 OK\r\n\r\n'
  res._headerSent = true
  res[kStream] = stream
  Object.setPrototypeOf(res, derived(Object.getPrototypeOf(res), RESPONSE))
}

/**
 * Lets go of Node's destroyed Socket: `req` and `res` would otherwise keep
 * it, its parser state and its listeners alive for the whole stream (about
 * 2 KiB a client). `req.socket` and `res.socket` become the NativeStream.
 */
function release(req, res, socket, detached) {
  if (typeof res.detachSocket === 'function' && res.socket === socket) res.detachSocket(socket)
  // Node's http server binds these to the socket and its connection state;
  // the stream now ends through the hub: unbind them.
  if (typeof res._onPendingData === 'function') res._onPendingData = noop
  res.removeAllListeners('finish')
  dropEmptyListenerTable(res)
  req.socket = detached
  res.socket = detached
  if (req.client === socket) req.client = detached
}

function noop() {}

module.exports = { canAdopt, NativeStream }
