'use strict'
// The JS fallback transport, for sockets Rust cannot own (TLS, HTTP/2,
// Unix-domain sockets, Windows, requests with a body, a response pipelined
// behind another). The hub still does framing, fan-out, heartbeats and
// replay; it hands each batch of frames back to JS, which writes it to
// `res`. Same API, same bytes.
//
// The hub sends a client's next batch only once JS has written the last
// (`ack`): what waits for a slow reader waits in the client's bounded queue
// in Rust, where `maxQueueBytes` applies exactly as on the native transport.

const { bindRaw } = require('./raw')
const { flushes } = require('../reasons')

class FallbackStream {
  /**
   * Registers the client first: past `maxClients` or during shutdown this
   * throws (lib/codes.js) before any head is written, so a 503 can go out.
   * @param {import('./index').Link} link what the SSE lends its transports
   * @param {Record<string,string|string[]>} headers response headers, in order
   */
  constructor(link, req, res, headers) {
    this._link = link
    this._engine = link.engine
    this._server = link.server
    /** Set once `res.end()` was called by user code (or the hub ended the stream). */
    this._ended = false
    this.kind = 'fallback'
    this.id = this._engine.attach()
    this._req = req
    this.res = res
    this._ack = () => this._engine.ack(this.id)
    if (req.socket && typeof req.socket.setNoDelay === 'function') req.socket.setNoDelay(true)
    try {
      res.writeHead(200, headers)
    } catch (err) {
      this._engine.closeClient(this.id, 'client') // never opened: do not hold a slot
      throw err
    }
    const gone = () => this._engine.closeClient(this.id, 'client')
    this._gone = gone
    res.on('close', gone)
    res.on('error', gone)
    // A response pipelined behind another has no socket yet, and gets no
    // 'close' when the connection dies first: watch the connection too.
    this._socket = req.httpVersionMajor < 2 && req.socket && typeof req.socket.once === 'function' ? req.socket : null
    if (this._socket) this._socket.once('close', gone)
    // User code's res.write/end go through the hub, in order with events;
    // the stream itself writes with the originals.
    this._own = bindRaw(this, res)
  }

  /**
   * Writes one batch from the hub. The next comes only once Node has
   * written this one: what waits for a slow reader waits in the hub's
   * queue, where the slow-client rule (`maxQueueBytes`) is applied.
   */
  deliver(buffer) {
    const res = this.res
    if (res.finished || res.destroyed) return // (writableEnded is user code's view)
    if (this._own.write.call(res, buffer)) this._ack()
    else res.once('drain', this._ack)
  }

  /** Ends the response after the hub reported the close. */
  ended(reason) {
    this._ended = true
    if (this._socket) this._socket.removeListener('close', this._gone)
    const res = this.res
    res.removeListener('drain', this._ack)
    if (res.finished || res.destroyed) return
    if (!flushes(reason)) return res.destroy()
    if (this._server && this._server.listening === false) this._letConnectionGo()
    this._own.end.call(res)
  }

  /**
   * During `server.close()` the connection must not stay open for more
   * requests once the stream ended, or the server never finishes closing.
   */
  _letConnectionGo() {
    const stream = this._req.stream
    if (stream && stream.session && typeof stream.session.close === 'function') {
      stream.session.close() // HTTP/2: GOAWAY, the session ends after its streams
    } else {
      this.res.shouldKeepAlive = false
      this.res._last = true // Node's http server ends the socket after this response
    }
  }
}

module.exports = { FallbackStream }
