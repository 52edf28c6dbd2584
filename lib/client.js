'use strict'
// One connected SSE client: the `sse` 0.0.8 client API (`req`, `res`,
// `send`, `close`, the `'close'` event) plus ids, channels and close reasons.

const { EventEmitter } = require('node:events')
const { toFields } = require('./message')
const { dropEmptyListenerTable } = require('./listeners')

class Client extends EventEmitter {
  /**
   * Created by SSE for each accepted request; not meant to be built by hand.
   * @param {import('./sse')} sse
   */
  constructor(sse, id, req, res, stream, lastEventId) {
    super()
    dropEmptyListenerTable(this)
    this._sse = sse
    /** The hub's id for this client (unique within its SSE instance). */
    this.id = id
    this.req = req
    this.res = res
    /**
     * 'native' (Rust owns the socket), 'fallback' (JS writes `res`), or
     * 'none' for a request that was refused (then the client is closed).
     */
    this.transport = stream ? stream.kind : 'none'
    /** The `Last-Event-ID` the client reconnected with, or null. */
    this.lastEventId = lastEventId
    /** The peer's address, kept after the socket was handed to Rust. */
    this.remoteAddress = req.socket ? req.socket.remoteAddress : undefined
    /** Why the stream ended, once it has; null while open. */
    this.closeReason = null
    /** The transport's stream (lib/transports); null when refused. */
    this._stream = stream
  }

  /**
   * A client for a request that got no stream (HEAD, past `maxClients`,
   * during shutdown, a connection already gone): already closed, so code
   * that uses what `handleRequest` returns never gets null. Its 'close'
   * fires on the next tick, for listeners added right after.
   */
  static refused(sse, req, res) {
    const client = new Client(sse, 0, req, res, null, null)
    client.closeReason = 'refused'
    process.nextTick(() => client.emit('close', 'refused'))
    return client
  }

  /** The hub (a getter, not a field: one slot less per client). */
  get _engine() {
    return this._sse._engine
  }

  /** True once the stream has ended. */
  get closed() {
    return this.closeReason !== null
  }

  /**
   * Sends one event to this client: `send(data)`, `send(event, data)`,
   * `send(event, data, id)` or `send({ event, data, id, retry })`.
   * Returns false (never throws) if the client has gone; throws a
   * TypeError for a field that cannot be framed.
   */
  send(first) {
    if (this.closed) return false
    let queued
    // The commonest form, send(text), takes no argument array at all.
    if (arguments.length === 1 && typeof first === 'string') {
      queued = this._sse._sendData(this.id, first)
    } else {
      const fields = toFields(Array.prototype.slice.call(arguments, 0, 3))
      if (fields === null) return true
      queued = this._sse._sendFields(this.id, fields)
    }
    this._sse._flushSoon()
    return queued
  }

  /** Ends the stream, after everything already sent has been written. */
  close() {
    if (!this.closed) this._engine.closeClient(this.id, 'server')
  }

  /** The hub's events for this client: a batch (fallback) or the end. */
  _onHubEvent(reason, data) {
    if (data) this._stream.deliver(data)
    if (!reason || this.closed) return
    this._stream.ended(reason)
    this._ended(reason)
  }

  /** Joins a channel; `sse.publish(channel, ...)` then reaches this client. */
  join(channel) {
    checkChannel('join', channel)
    if (this.closed) return false
    return this._engine.join(this.id, String(channel))
  }

  /** Leaves a channel. Returns false if the client was not in it. */
  leave(channel) {
    checkChannel('leave', channel)
    return this._engine.leave(this.id, String(channel))
  }

  /** The channels this client has joined. */
  get channels() {
    return this.closed ? [] : this._engine.channelsOf(this.id)
  }

  /** Bytes queued for this client and not yet written. */
  get queuedBytes() {
    if (this.closed) return 0
    return this._engine.queuedBytes(this.id) || 0
  }

  /** Called by SSE when the hub reports the stream ended. */
  _ended(reason) {
    if (this.closed) return
    this.closeReason = reason
    this.emit('close', reason)
  }
}

/** A channel name: not missing, not empty (a mistake `String()` would hide as 'undefined'). */
function checkChannel(method, channel) {
  if (channel === undefined || channel === null || channel === '') {
    const got = channel === '' ? "''" : String(channel)
    throw new TypeError(`ssehub: client.${method}() needs a channel name, e.g. client.${method}('room'), got ${got}`)
  }
}

module.exports = Client
