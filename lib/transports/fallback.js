'use strict'
// The JS fallback transport, for sockets Rust cannot own (TLS, HTTP/2,
// Unix-domain sockets, Windows, requests with a body). The hub still does
// framing, fan-out, heartbeats and replay; it hands each batch of frames
// back to JS, which writes it to `res`. Same API, same bytes.

class FallbackStream {
  /**
   * @param {object} native the NativeHub
   * @param {import('http').ServerResponse} res
   * @param {Record<string,string>} headers response headers, in order
   * @param {number} maxQueueBytes bytes `res` may buffer before the client is slow
   */
  constructor(native, req, res, headers, maxQueueBytes) {
    this.native = native
    this.res = res
    this.maxQueueBytes = maxQueueBytes
    /** The biggest batch written since the response buffer was last empty. */
    this.biggest = 0
    if (req.socket && typeof req.socket.setNoDelay === 'function') req.socket.setNoDelay(true)
    res.writeHead(200, headers)
    this.id = native.attach()
    res.on('close', () => native.closeClient(this.id, 'client'))
    res.on('error', () => native.closeClient(this.id, 'client'))
  }

  /** Writes one batch of frames; a client that stops reading is closed as slow. */
  write(buffer) {
    if (this.res.writableEnded || this.res.destroyed) return
    // As in the native queue, one batch bigger than the limit is not counted,
    // only the backlog beside it: else one huge event drops every reader.
    if (this.res.writableLength === 0) this.biggest = 0
    this.biggest = Math.max(this.biggest, buffer.length)
    this.res.write(buffer)
    const uncounted = this.biggest > this.maxQueueBytes ? this.biggest : 0
    if (this.res.writableLength - uncounted > this.maxQueueBytes) this.native.closeClient(this.id, 'slow')
  }

  /** Ends the response after the hub reported the close. */
  end(reason) {
    if (this.res.writableEnded || this.res.destroyed) return
    if (reason === 'slow' || reason === 'timeout') this.res.destroy()
    else this.res.end()
  }
}

module.exports = { FallbackStream }
